// SPDX-License-Identifier: GPL-2.0-only
/*
 * fuzz: seeded random ioctls on vfio container, group and device fds.
 *
 * A fixed set of fds (the "world") is built, then FUZZ_CALLS ioctls are made
 * on them, one at a time, each a function of the seed alone:
 *   raw      a VFIO ioctl number (';', 100..121) with a random argument
 *   s.NAME   a VFIO ioctl with a well-formed argument of which some fields
 *            take edge values: argsz 0/1/minsz-1/minsz/huge, unknown flags,
 *            indexes and counts at and past their limits, fds of every kind,
 *            structs running into an unmapped guard page, bad pointers
 *   mut      a VFIO number with direction/size bits set, or type/nr nudged
 *   vfio_rand, rand  a random number of type ';', a random 32-bit number
 * The world is rebuilt every FUZZ_RESET calls (all fds closed and opened
 * again in the same order, so fd numbers repeat), which undoes what the
 * calls did to it (containers set, IOMMUs chosen, DMA mapped, IRQs wired).
 *
 * World (fd kinds): ctr_bare (a container alone), ctr_pci + grp_pci +
 * dev_pci (edu on amd64, the zPCI virtio-rng on s390x, in a type1v2
 * container), ctr_mdev + grp_mdev + dev_mdev (a vfio_test_mdev device, in
 * its own type1v2 container), grp_free (a second mdev's group, no
 * container).
 *
 * Everything the kernel may write through a pointer of ours lands in fixed
 * mappings (REGION_BASE): arguments are built there, pointers inside
 * arguments point there (or nowhere: NULL, a hole, kernel or non-canonical
 * addresses), so the same seed makes the same calls with the same bytes on
 * every boot, and a random pointer never scribbles on the fuzzer.
 *
 * Left out, because they would wedge or wreck the guest rather than test
 * vfio: read/write/mmap of the device (BAR and config writes can start the
 * edu's DMA or move its BARs); the VFS's own ioctls (FIFREEZE, FIOCLEX, ...,
 * see vfs_ioctl_excluded()); DMA mappings of anything but two small buffers
 * of the fuzzer's (no pinning of all memory); IOEVENTFDs on eventfds that
 * are ever signalled (an edu register write from an ioeventfd could raise
 * the interrupt that signals it again); IOEVENTFD offsets >= 2^63, which
 * oops Debian 6.1's vfio-pci-core (see avoid_known_oops()); dirty bitmap
 * page sizes of 0, on which Debian 6.1's vfio_iommu_type1 shifts by
 * __ffs(0) (UBSAN: shift-out-of-bounds, in the debug lane). Device resets
 * (the edu has none: EINVAL), hot resets, IRQ set-up and low-power entry
 * are in.
 *
 * Output: TAP; the errno histogram as "# hist KIND NAME RESULT COUNT" lines
 * sorted by kind, name and result (RESULT: an errno name, or =N for a return
 * value N < 10, >9 for larger ones, e.g. a new fd): diff two runs of the same
 * seed with tests/guest/fuzz_compare.sh.
 * Usage: fuzz [SEED [CALLS]], or the environment:
 * FUZZ_SEED (1), FUZZ_CALLS (1000000), FUZZ_RESET (2000),
 * FUZZ_STALL (60 s without progress is a hang), FUZZ_TRACE=FROM:TO (print
 * calls FROM..TO-1).
 */
#include "tap.h"
#include "rnd.h"
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define NTESTS		7

#define REGION_BASE	0x100000000000ULL
#define REGION_SIZE	(1UL << 20)
#define DMA_BASE	(REGION_BASE + 0x200000ULL)
#define DMA_SIZE	(256UL << 10)
#define HOLE_ADDR	(REGION_BASE + 0x10000000ULL)
#define PAGE		4096UL
#define STRUCT_MAX	4096UL	/* bytes of an argument we fill */

#define MDEV_A		"5a1d0ec7-0000-4000-8000-00000000f0a1"
#define MDEV_B		"5a1d0ec7-0000-4000-8000-00000000f0b2"

/* Eventfds that are never signalled: the only ones IOEVENTFD may get. */
#define EFD_IO_FIRST	900
#define N_EFD_IO	2
#define N_EFD_IRQ	4

enum kind { K_CTR_BARE, K_CTR_PCI, K_CTR_MDEV, K_GRP_FREE, K_GRP_PCI,
	    K_GRP_MDEV, K_DEV_PCI, K_DEV_MDEV, NKINDS };

static const char *const kind_name[NKINDS] = {
	"ctr_bare", "ctr_pci", "ctr_mdev", "grp_free", "grp_pci", "grp_mdev",
	"dev_pci", "dev_mdev",
};

enum family { F_CTR, F_GRP, F_DEV };

static enum family family_of(int k)
{
	return k <= K_CTR_MDEV ? F_CTR : k <= K_GRP_MDEV ? F_GRP : F_DEV;
}

/* Names of ioctl numbers 100..121 by the family they belong to. */
static const char *const ctr_nr_name[22] = {
	"GET_API_VERSION", "CHECK_EXTENSION", "SET_IOMMU", "GROUP_GET_STATUS",
	"GROUP_SET_CONTAINER", "GROUP_UNSET_CONTAINER", "GROUP_GET_DEVICE_FD",
	"DEVICE_GET_INFO", "DEVICE_GET_REGION_INFO", "DEVICE_GET_IRQ_INFO",
	"DEVICE_SET_IRQS", "DEVICE_RESET", "IOMMU_GET_INFO", "IOMMU_MAP_DMA",
	"IOMMU_UNMAP_DMA", "IOMMU_ENABLE", "IOMMU_DISABLE", "IOMMU_DIRTY_PAGES",
	"nr118", "nr119", "nr120", "nr121",
};

static const char *const dev_nr_name[22] = {
	"GET_API_VERSION", "CHECK_EXTENSION", "SET_IOMMU", "GROUP_GET_STATUS",
	"GROUP_SET_CONTAINER", "GROUP_UNSET_CONTAINER", "GROUP_GET_DEVICE_FD",
	"DEVICE_GET_INFO", "DEVICE_GET_REGION_INFO", "DEVICE_GET_IRQ_INFO",
	"DEVICE_SET_IRQS", "DEVICE_RESET", "DEVICE_GET_PCI_HOT_RESET_INFO",
	"DEVICE_PCI_HOT_RESET", "DEVICE_QUERY_GFX_PLANE",
	"DEVICE_GET_GFX_DMABUF", "DEVICE_IOEVENTFD", "DEVICE_FEATURE",
	"nr118", "nr119", "nr120", "nr121",
};

/* Structured calls. */
enum sop {
	S_API, S_CHECK_EXT, S_SET_IOMMU, S_IOMMU_INFO, S_MAP, S_UNMAP,
	S_DIRTY, S_IOMMU_ONOFF,
	S_GSTATUS, S_SET_CTR, S_UNSET_CTR, S_GET_FD,
	S_DINFO, S_REGION, S_IRQ_INFO, S_SET_IRQS, S_RESET, S_HR_INFO,
	S_HR, S_IOEVENTFD, S_FEATURE, S_GFX,
	NSOPS
};

static const char *const sop_name[NSOPS] = {
	"API_VERSION", "CHECK_EXTENSION", "SET_IOMMU", "IOMMU_GET_INFO",
	"IOMMU_MAP_DMA", "IOMMU_UNMAP_DMA", "IOMMU_DIRTY_PAGES",
	"IOMMU_ENABLE_DISABLE",
	"GROUP_GET_STATUS", "GROUP_SET_CONTAINER", "GROUP_UNSET_CONTAINER",
	"GROUP_GET_DEVICE_FD",
	"DEVICE_GET_INFO", "DEVICE_GET_REGION_INFO", "DEVICE_GET_IRQ_INFO",
	"DEVICE_SET_IRQS", "DEVICE_RESET", "DEVICE_GET_PCI_HOT_RESET_INFO",
	"DEVICE_PCI_HOT_RESET", "DEVICE_IOEVENTFD", "DEVICE_FEATURE",
	"DEVICE_GFX",
};

static const enum sop fam_sops[3][10] = {
	[F_CTR] = { S_API, S_CHECK_EXT, S_SET_IOMMU, S_IOMMU_INFO, S_MAP,
		    S_MAP, S_UNMAP, S_UNMAP, S_DIRTY, S_IOMMU_ONOFF },
	[F_GRP] = { S_GSTATUS, S_SET_CTR, S_SET_CTR, S_UNSET_CTR, S_GET_FD,
		    S_GET_FD, S_GET_FD, S_GSTATUS, S_SET_CTR, S_GET_FD },
	[F_DEV] = { S_DINFO, S_REGION, S_IRQ_INFO, S_SET_IRQS, S_SET_IRQS,
		    S_RESET, S_HR_INFO, S_HR, S_IOEVENTFD, S_FEATURE },
};

/* Histogram name ids: 0..21 raw numbers, 32.. structured, then these. */
#define ID_SOP		32
#define ID_MUT		(ID_SOP + NSOPS)
#define ID_VRAND	(ID_MUT + 1)
#define ID_RAND		(ID_MUT + 2)
#define NIDS		(ID_MUT + 3)
#define NRES		4200	/* errnos < 4096, then 4096 + value (0..10) */

struct shared {
	uint64_t calls;		/* progress, read by the watchdog */
	uint64_t resets;
	uint64_t reset_failures;
	uint64_t fds_got;	/* fds the calls returned (closed at once) */
	int tid;
	int done;
	char err[256];
	uint32_t hist[NKINDS][NIDS][NRES];
};

static struct shared *sh;
static int world[NKINDS];
static int efd_irq[N_EFD_IRQ];
static char pci_bdf[64];
static int pci_grp, mdev_a_grp, mdev_b_grp;
static uint8_t *region;		/* REGION_BASE */
static long trace_from = -1, trace_to = -1;

/* -------------------------------------------------------------- the world */

static int open_world(char *why, size_t len)
{
	int c;

	world[K_CTR_BARE] = open_container();
	world[K_CTR_PCI] = open_container();
	world[K_GRP_PCI] = open_group(pci_grp);
	world[K_CTR_MDEV] = open_container();
	world[K_GRP_MDEV] = open_group(mdev_a_grp);
	world[K_GRP_FREE] = open_group(mdev_b_grp);
	for (int k = 0; k < NKINDS; k++) {
		if (k != K_DEV_PCI && k != K_DEV_MDEV && world[k] < 0) {
			snprintf(why, len, "open %s: %s", kind_name[k], strerror(errno));
			return -1;
		}
	}
	c = world[K_CTR_PCI];
	if (ioctl(world[K_GRP_PCI], VFIO_GROUP_SET_CONTAINER, &c) ||
	    ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
		snprintf(why, len, "pci group into a type1v2 container: %s", strerror(errno));
		return -1;
	}
	c = world[K_CTR_MDEV];
	if (ioctl(world[K_GRP_MDEV], VFIO_GROUP_SET_CONTAINER, &c) ||
	    ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
		snprintf(why, len, "mdev group into a type1v2 container: %s", strerror(errno));
		return -1;
	}
	world[K_DEV_PCI] = ioctl(world[K_GRP_PCI], VFIO_GROUP_GET_DEVICE_FD, pci_bdf);
	if (world[K_DEV_PCI] < 0) {
		snprintf(why, len, "GET_DEVICE_FD(%s): %s", pci_bdf, strerror(errno));
		return -1;
	}
	world[K_DEV_MDEV] = ioctl(world[K_GRP_MDEV], VFIO_GROUP_GET_DEVICE_FD, MDEV_A);
	if (world[K_DEV_MDEV] < 0) {
		snprintf(why, len, "GET_DEVICE_FD(%s): %s", MDEV_A, strerror(errno));
		return -1;
	}
	return 0;
}

static void close_world(void)
{
	static const int order[NKINDS] = {
		K_DEV_MDEV, K_DEV_PCI, K_GRP_FREE, K_GRP_MDEV, K_CTR_MDEV,
		K_GRP_PCI, K_CTR_PCI, K_CTR_BARE,
	};

	for (int i = 0; i < NKINDS; i++) {
		if (world[order[i]] >= 0)
			close(world[order[i]]);
		world[order[i]] = -1;
	}
}

/* ------------------------------------------------------------- arguments */

static const uint32_t interesting32[] = {
	0, 1, 2, 3, 4, 7, 8, 15, 16, 24, 32, 0x7f, 0x80, 0xff, 0x100, 0xfff,
	0x1000, 0x1001, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe,
	0xffffffff,
};

/* A value for a u32 field: edge values, an fd of ours, or random. */
static uint32_t r32(struct rnd *r)
{
	switch (rnd_below(r, 8)) {
	case 0: case 1: case 2:
		return interesting32[rnd_below(r, sizeof(interesting32) / 4)];
	case 3:
		return world[rnd_below(r, NKINDS)];
	case 4:
		return efd_irq[rnd_below(r, N_EFD_IRQ)];
	case 5:
		return rnd_below(r, 64);
	default:
		return (uint32_t)rnd_next(r);
	}
}

/* A user pointer that the kernel may read or write: ours, or bad. */
static uint64_t rptr(struct rnd *r)
{
	switch (rnd_below(r, 10)) {
	case 0: return 0;
	case 1: return HOLE_ADDR + rnd_below(r, 64) * PAGE;
	case 2: return 0xffff888000000000ULL + rnd_below(r, 1 << 20) * PAGE;
	case 3: return 0x8000000000000000ULL | rnd_next(r);
	case 4: return REGION_BASE + REGION_SIZE - rnd_below(r, 64);
	case 5: return DMA_BASE + rnd_below(r, DMA_SIZE / PAGE) * PAGE;
	case 6: return rnd_next(r);
	default: return REGION_BASE + 0x80000 + rnd_below(r, 0x70000);
	}
}

/* A value for a u64 field: sizes, addresses, edge values. */
static uint64_t r64(struct rnd *r)
{
	static const uint64_t v[] = {
		0, 1, PAGE - 1, PAGE, PAGE + 1, 1ULL << 20, 1ULL << 30,
		1ULL << 32, 1ULL << 39, 1ULL << 48, 1ULL << 52, 1ULL << 63,
		~0ULL, ~0ULL - PAGE + 1, 0xfee00000ULL, 0x7fffffffffffULL,
	};

	switch (rnd_below(r, 6)) {
	case 0: case 1: return v[rnd_below(r, sizeof(v) / 8)];
	case 2: return rptr(r);
	case 3: return r32(r);
	case 4: return rnd_below(r, 64) * PAGE;
	default: return rnd_next(r);
	}
}

/*
 * Debian 6.1's vfio_iommu_type1 (not vfio.ko) computes __ffs() of a dirty
 * bitmap's page size before checking it, an undefined shift for 0 (UBSAN
 * reports it in the debug lane): such page sizes are never generated.
 */
static uint64_t nonzero(uint64_t v)
{
	return v ? v : 1;
}

/* An argsz for a struct of minsz (whose natural size is full). */
static uint32_t rargsz(struct rnd *r, uint32_t minsz, uint32_t full)
{
	switch (rnd_below(r, 12)) {
	case 0: return 0;
	case 1: return minsz - 1;
	case 2: return minsz + 1;
	case 3: return full + rnd_below(r, 64);
	case 4: return r32(r);
	case 5: return STRUCT_MAX;
	case 6: case 7: return minsz;
	default: return full;
	}
}

/* Random bytes with edge values sprinkled in, n bytes at p. */
static void rfill(struct rnd *r, uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i + 8 <= n) {
		uint64_t v;

		switch (rnd_below(r, 4)) {
		case 0: v = r32(r) | (uint64_t)r32(r) << 32; break;
		case 1: v = r64(r); break;
		case 2: v = 0; break;
		default: v = rnd_next(r); break;
		}
		memcpy(p + i, &v, 8);
		i += 8;
	}
	for (; i < n; i++)
		p[i] = rnd_next(r);
}

/*
 * Where an argument of len bytes goes: a page of the region, or so close to
 * its end that part of it lies in the guard page after it.
 */
static uint8_t *rplace(struct rnd *r, size_t len)
{
	if (rnd_chance(r, 100)) {
		size_t in = rnd_below(r, len + 1);

		return region + REGION_SIZE - in;
	}
	return region + rnd_below(r, 64) * PAGE;
}

static const char *const uuids[] = {
	MDEV_A, MDEV_B, "5a1d0ec7-0000-4000-8000-00000000f0c3",
	"5A1D0EC7-0000-4000-8000-00000000F0A1",
};

/* A name for GET_DEVICE_FD, NUL-terminated unless it ends in the guard. */
static uint64_t rname(struct rnd *r)
{
	char name[512];
	size_t len;
	uint8_t *p;

	switch (rnd_below(r, 12)) {
	case 0: snprintf(name, sizeof(name), "%s", pci_bdf); break;
	case 1: snprintf(name, sizeof(name), "%s", uuids[rnd_below(r, 4)]); break;
	case 2: snprintf(name, sizeof(name), "%s ", pci_bdf); break;
	case 3: snprintf(name, sizeof(name), "%s vf_token=%s", pci_bdf, uuids[rnd_below(r, 4)]); break;
	case 4: snprintf(name, sizeof(name), "%s vf_token=", uuids[rnd_below(r, 2)]); break;
	case 5: snprintf(name, sizeof(name), "%.*s", (int)rnd_below(r, 12), pci_bdf); break;
	case 6: name[0] = '\0'; break;
	case 7: {
		len = 4096 - 2 + rnd_below(r, 4);
		p = rplace(r, 16);
		if (p + len + 1 > region + REGION_SIZE)
			p = region;
		memset(p, 'a', len);
		p[len] = '\0';
		return (uint64_t)(uintptr_t)p;
	}
	case 8: {
		len = rnd_below(r, 64);
		p = region + REGION_SIZE - len;
		memset(p, 'b', len);	/* no NUL before the guard */
		return (uint64_t)(uintptr_t)p;
	}
	case 9: return rptr(r);
	default:
		len = rnd_below(r, 48);
		for (size_t i = 0; i < len; i++)
			name[i] = 32 + rnd_below(r, 95);
		name[len] = '\0';
		break;
	}
	len = strlen(name) + 1;
	p = rplace(r, len);
	if (p + len > region + REGION_SIZE)
		p = region + REGION_SIZE - len;
	memcpy(p, name, len);
	return (uint64_t)(uintptr_t)p;
}

#define ENDOF(type, field)	(offsetof(type, field) + sizeof(((type *)0)->field))

/*
 * Builds a well-formed argument for op with some fields at edge values;
 * returns the ioctl number, *arg gets the argument.
 */
static unsigned long structured(struct rnd *r, enum sop op, uint64_t *arg)
{
	uint8_t *p = rplace(r, 512);
	size_t room = region + REGION_SIZE - p;
	uint8_t tmp[STRUCT_MAX];

	memset(tmp, 0, sizeof(tmp));
	if (rnd_chance(r, 150))
		rfill(r, tmp, 256);
	*arg = (uint64_t)(uintptr_t)p;

	switch (op) {
	case S_API:
		*arg = r64(r);
		return VFIO_GET_API_VERSION;
	case S_CHECK_EXT:
		*arg = rnd_chance(r, 800) ? rnd_below(r, 12) : r64(r);
		return VFIO_CHECK_EXTENSION;
	case S_SET_IOMMU:
		*arg = rnd_chance(r, 800) ? rnd_below(r, 12) : r64(r);
		return VFIO_SET_IOMMU;
	case S_IOMMU_INFO: {
		struct vfio_iommu_type1_info *i = (void *)tmp;

		i->argsz = rargsz(r, ENDOF(struct vfio_iommu_type1_info, iova_pgsizes),
				  rnd_chance(r, 500) ? 256 : sizeof(*i));
		if (rnd_chance(r, 200))
			i->flags = r32(r);
		break;
	}
	case S_MAP: {
		struct vfio_iommu_type1_dma_map *m = (void *)tmp;

		m->argsz = rargsz(r, ENDOF(struct vfio_iommu_type1_dma_map, size), sizeof(*m));
		m->flags = rnd_chance(r, 700) ? rnd_below(r, 8) : r32(r);
		m->vaddr = rnd_chance(r, 700) ? DMA_BASE + rnd_below(r, DMA_SIZE / PAGE) * PAGE : r64(r);
		m->iova = rnd_chance(r, 600) ? rnd_below(r, 256) * PAGE : r64(r);
		m->size = rnd_chance(r, 600) ? (1 + rnd_below(r, 16)) * PAGE : r64(r);
		break;
	}
	case S_UNMAP: {
		struct vfio_iommu_type1_dma_unmap *u = (void *)tmp;
		struct vfio_bitmap *b = (void *)u->data;
		int dirty = rnd_chance(r, 250);

		u->argsz = rargsz(r, ENDOF(struct vfio_iommu_type1_dma_unmap, size),
				  sizeof(*u) + (dirty ? sizeof(*b) : 0));
		u->flags = rnd_chance(r, 700) ? (dirty ? VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP :
						 rnd_below(r, 8)) : r32(r);
		u->iova = rnd_chance(r, 600) ? rnd_below(r, 256) * PAGE : r64(r);
		u->size = rnd_chance(r, 600) ? (1 + rnd_below(r, 16)) * PAGE : r64(r);
		b->pgsize = rnd_chance(r, 700) ? PAGE : nonzero(r64(r));
		b->size = rnd_chance(r, 700) ? 8 * (1 + rnd_below(r, 8)) : r64(r);
		b->data = (__u64 *)(uintptr_t)rptr(r);
		break;
	}
	case S_DIRTY: {
		struct vfio_iommu_type1_dirty_bitmap *d = (void *)tmp;
		struct vfio_iommu_type1_dirty_bitmap_get *g = (void *)d->data;

		d->argsz = rargsz(r, ENDOF(struct vfio_iommu_type1_dirty_bitmap, flags),
				  sizeof(*d) + sizeof(*g));
		d->flags = rnd_chance(r, 800) ? 1U << rnd_below(r, 3) : r32(r);
		g->iova = rnd_chance(r, 600) ? rnd_below(r, 256) * PAGE : r64(r);
		g->size = rnd_chance(r, 600) ? (1 + rnd_below(r, 16)) * PAGE : r64(r);
		g->bitmap.pgsize = rnd_chance(r, 700) ? PAGE : nonzero(r64(r));
		g->bitmap.size = rnd_chance(r, 700) ? 8 * (1 + rnd_below(r, 8)) : r64(r);
		g->bitmap.data = (__u64 *)(uintptr_t)rptr(r);
		break;
	}
	case S_IOMMU_ONOFF:
		*arg = r64(r);
		return rnd_chance(r, 500) ? VFIO_IOMMU_ENABLE : VFIO_IOMMU_DISABLE;
	case S_GSTATUS: {
		struct vfio_group_status *s = (void *)tmp;

		s->argsz = rargsz(r, sizeof(*s), sizeof(*s));
		s->flags = r32(r);
		break;
	}
	case S_SET_CTR: {
		int32_t fd;

		switch (rnd_below(r, 4)) {
		case 0: fd = world[rnd_below(r, 3)]; break;
		case 1: fd = world[rnd_below(r, NKINDS)]; break;
		case 2: fd = efd_irq[0]; break;
		default: fd = r32(r); break;
		}
		memcpy(tmp, &fd, sizeof(fd));
		if (rnd_chance(r, 100))
			*arg = rptr(r);
		break;
	}
	case S_UNSET_CTR:
		*arg = r64(r);
		return VFIO_GROUP_UNSET_CONTAINER;
	case S_GET_FD:
		*arg = rname(r);
		return VFIO_GROUP_GET_DEVICE_FD;
	case S_DINFO: {
		struct vfio_device_info *i = (void *)tmp;

		i->argsz = rargsz(r, ENDOF(struct vfio_device_info, num_irqs),
				  rnd_chance(r, 500) ? 256 : sizeof(*i));
		break;
	}
	case S_REGION: {
		struct vfio_region_info *i = (void *)tmp;

		i->argsz = rargsz(r, ENDOF(struct vfio_region_info, offset),
				  rnd_chance(r, 500) ? 512 : sizeof(*i));
		i->index = rnd_chance(r, 800) ? rnd_below(r, 12) : r32(r);
		break;
	}
	case S_IRQ_INFO: {
		struct vfio_irq_info *i = (void *)tmp;

		i->argsz = rargsz(r, ENDOF(struct vfio_irq_info, count), sizeof(*i));
		i->index = rnd_chance(r, 800) ? rnd_below(r, 8) : r32(r);
		break;
	}
	case S_SET_IRQS: {
		struct vfio_irq_set *s = (void *)tmp;
		static const uint32_t dt[] = { VFIO_IRQ_SET_DATA_NONE,
			VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD };
		uint32_t count = rnd_chance(r, 800) ? rnd_below(r, 4) : r32(r);
		uint32_t data;
		int32_t *fds = (int32_t *)s->data;

		s->flags = rnd_chance(r, 850) ? dt[rnd_below(r, 3)] |
			   (VFIO_IRQ_SET_ACTION_MASK << rnd_below(r, 3)) : r32(r);
		s->index = rnd_chance(r, 800) ? rnd_below(r, 6) : r32(r);
		s->start = rnd_chance(r, 800) ? rnd_below(r, 3) : r32(r);
		s->count = count;
		data = s->flags & VFIO_IRQ_SET_DATA_EVENTFD ? 4 :
		       s->flags & VFIO_IRQ_SET_DATA_BOOL ? 1 : 0;
		if (count > 64)
			count = 64;
		for (uint32_t i = 0; i < count; i++) {
			if (data == 4) {
				int32_t fd = rnd_chance(r, 600) ? efd_irq[rnd_below(r, N_EFD_IRQ)] :
					     rnd_chance(r, 500) ? -1 : (int32_t)r32(r);
				fds[i] = fd;
			} else {
				s->data[i] = rnd_below(r, 3);
			}
		}
		if (rnd_chance(r, 300)) {
			/* valid bounds: one IRQ of INTx/MSI/MSI-X/ERR/REQ */
			s->start = 0;
			s->count = rnd_below(r, 2);
		}
		s->argsz = rargsz(r, ENDOF(struct vfio_irq_set, count),
				  sizeof(*s) + data * s->count);
		break;
	}
	case S_RESET:
		*arg = r64(r);
		return VFIO_DEVICE_RESET;
	case S_HR_INFO: {
		struct vfio_pci_hot_reset_info *i = (void *)tmp;

		i->argsz = rargsz(r, sizeof(*i), sizeof(*i) +
				  rnd_below(r, 4) * sizeof(struct vfio_pci_dependent_device));
		i->flags = rnd_chance(r, 900) ? 0 : r32(r);
		break;
	}
	case S_HR: {
		struct vfio_pci_hot_reset *h = (void *)tmp;
		uint32_t n = rnd_chance(r, 800) ? rnd_below(r, 4) : r32(r);

		h->flags = rnd_chance(r, 900) ? 0 : r32(r);
		h->count = n;
		if (n > 64)
			n = 64;
		for (uint32_t i = 0; i < n; i++)
			h->group_fds[i] = rnd_chance(r, 500) ? world[K_GRP_PCI] :
					  (int32_t)r32(r);
		h->argsz = rargsz(r, ENDOF(struct vfio_pci_hot_reset, count),
				  sizeof(*h) + 4 * h->count);
		break;
	}
	case S_IOEVENTFD: {
		struct vfio_device_ioeventfd *e = (void *)tmp;
		static const uint32_t sizes[] = { 1, 2, 4, 8 };

		e->argsz = rargsz(r, sizeof(*e), sizeof(*e));
		e->flags = rnd_chance(r, 800) ? sizes[rnd_below(r, 4)] : r32(r);
		e->offset = rnd_chance(r, 700) ? rnd_below(r, 6) * (1ULL << 40) +
			    rnd_below(r, 0x100) : r64(r);
		e->data = r64(r);
		e->fd = rnd_chance(r, 700) ? EFD_IO_FIRST + (int)rnd_below(r, N_EFD_IO) :
			rnd_chance(r, 500) ? -1 : world[rnd_below(r, NKINDS)];
		break;
	}
	case S_FEATURE: {
		struct vfio_device_feature *f = (void *)tmp;
		uint32_t fl = rnd_below(r, 12);
		int32_t efd = efd_irq[rnd_below(r, N_EFD_IRQ)];

		if (rnd_chance(r, 800))
			fl |= (VFIO_DEVICE_FEATURE_GET << rnd_below(r, 3)) |
			      (rnd_chance(r, 300) ? VFIO_DEVICE_FEATURE_PROBE : 0);
		else
			fl = r32(r);
		f->flags = fl;
		if (rnd_chance(r, 500))
			memcpy(f->data, &efd, sizeof(efd));	/* low power wakeup */
		else
			rfill(r, f->data, 64);
		f->argsz = rargsz(r, ENDOF(struct vfio_device_feature, flags),
				  sizeof(*f) + rnd_below(r, 80));
		break;
	}
	case S_GFX: {
		uint32_t *a = (uint32_t *)tmp;

		a[0] = rargsz(r, 12, 64);
		a[1] = r32(r);
		*arg = (uint64_t)(uintptr_t)p;
		memcpy(p, tmp, room < 64 ? room : 64);
		return rnd_chance(r, 500) ? VFIO_DEVICE_QUERY_GFX_PLANE : VFIO_DEVICE_GET_GFX_DMABUF;
	}
	default:
		break;
	}
	memcpy(p, tmp, room < 512 ? room : 512);
	switch (op) {
	case S_IOMMU_INFO: return VFIO_IOMMU_GET_INFO;
	case S_MAP: return VFIO_IOMMU_MAP_DMA;
	case S_UNMAP: return VFIO_IOMMU_UNMAP_DMA;
	case S_DIRTY: return VFIO_IOMMU_DIRTY_PAGES;
	case S_GSTATUS: return VFIO_GROUP_GET_STATUS;
	case S_SET_CTR: return VFIO_GROUP_SET_CONTAINER;
	case S_DINFO: return VFIO_DEVICE_GET_INFO;
	case S_REGION: return VFIO_DEVICE_GET_REGION_INFO;
	case S_IRQ_INFO: return VFIO_DEVICE_GET_IRQ_INFO;
	case S_SET_IRQS: return VFIO_DEVICE_SET_IRQS;
	case S_HR_INFO: return VFIO_DEVICE_GET_PCI_HOT_RESET_INFO;
	case S_HR: return VFIO_DEVICE_PCI_HOT_RESET;
	case S_IOEVENTFD: return VFIO_DEVICE_IOEVENTFD;
	case S_FEATURE: return VFIO_DEVICE_FEATURE;
	default: return VFIO_GET_API_VERSION;
	}
}

/* An argument for a raw number: a value, a bad pointer, or random bytes. */
static uint64_t raw_arg(struct rnd *r)
{
	uint8_t *p;
	uint32_t a;

	if (rnd_chance(r, 350))
		return rnd_chance(r, 500) ? r64(r) : rptr(r);
	p = rplace(r, 256);
	rfill(r, p, region + REGION_SIZE - p < 256 ? region + REGION_SIZE - p : 256);
	if (region + REGION_SIZE - p >= 4) {
		a = rargsz(r, 8 + rnd_below(r, 24), 16 + rnd_below(r, 48));
		memcpy(p, &a, 4);
	}
	return (uint64_t)(uintptr_t)p;
}

/* The VFS's own ioctls: they act on the file, not on vfio. */
static int vfs_ioctl_excluded(unsigned long cmd)
{
	unsigned int type = (cmd >> 8) & 0xff;

	switch (type) {
	case 0x00:	/* FIBMAP, FIGETBSZ */
	case 'T':	/* FIONBIO, FIOCLEX, FIOASYNC, FIONREAD, FIOQSIZE, ... */
	case 'X':	/* FIFREEZE, FITHAW, FITRIM */
	case 'f':	/* FS_IOC_GETFLAGS, FS_IOC_FIEMAP, ... */
	case 0x94:	/* FICLONE, FIDEDUPERANGE, FS_IOC_GETFSLABEL */
	case 0x15:	/* FS_IOC_GETFSUUID and friends */
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------ the fuzzer */

static void record(int kind, int id, long ret)
{
	int res;

	if (ret < 0)
		res = -ret < 4096 ? (int)-ret : 4095;
	else
		res = 4096 + (ret > 9 ? 10 : (int)ret);
	sh->hist[kind][id][res]++;
}

/*
 * Debian 6.1's vfio-pci-core (not vfio.ko) oopses on a VFIO_DEVICE_IOEVENTFD
 * whose offset has bit 63 set: vfio_pci_ioeventfd() takes it as a negative
 * loff_t, so the BAR index is negative, passes the "> BAR5" check and
 * indexes pci_resource_len() out of bounds. Stock and ours alike; such
 * offsets are made positive here, in the argument itself.
 */
static void avoid_known_oops(int kind, unsigned long cmd, uint64_t arg)
{
	uint8_t *p = (uint8_t *)(uintptr_t)arg + offsetof(struct vfio_device_ioeventfd, offset);
	uint64_t off;

	if (kind != K_DEV_PCI || cmd != VFIO_DEVICE_IOEVENTFD ||
	    arg < REGION_BASE || arg > REGION_BASE + REGION_SIZE - 16)
		return;
	memcpy(&off, p, sizeof(off));
	off &= ~(1ULL << 63);
	memcpy(p, &off, sizeof(off));
}

static void fuzz_one(struct rnd *r, uint64_t n)
{
	int kind = rnd_below(r, NKINDS);
	enum family fam = family_of(kind);
	unsigned long cmd;
	uint64_t arg;
	int id, sel = rnd_below(r, 100);
	long ret;

	if (sel < 45) {
		enum sop op = rnd_chance(r, 850) ? fam_sops[fam][rnd_below(r, 10)] :
			      (enum sop)rnd_below(r, NSOPS);

		cmd = structured(r, op, &arg);
		id = ID_SOP + op;
	} else if (sel < 70) {
		unsigned int nr = rnd_below(r, 22);

		cmd = _IO(VFIO_TYPE, VFIO_BASE + nr);
		arg = raw_arg(r);
		id = nr;
	} else if (sel < 82) {
		unsigned int nr = VFIO_BASE + rnd_below(r, 22);

		switch (rnd_below(r, 4)) {
		case 0: cmd = _IOC(1 + rnd_below(r, 3), VFIO_TYPE, nr, rnd_below(r, 1 << 14)); break;
		case 1: cmd = _IOC(_IOC_NONE, VFIO_TYPE, nr, 1 + rnd_below(r, 0x3fff)); break;
		case 2: cmd = _IO(VFIO_TYPE ^ (1 << rnd_below(r, 8)), nr); break;
		default: cmd = _IO(VFIO_TYPE, nr + 22 + rnd_below(r, 200)) & 0xffff; break;
		}
		if (vfs_ioctl_excluded(cmd))
			cmd = _IO(VFIO_TYPE, 0);
		arg = raw_arg(r);
		id = ID_MUT;
	} else if (sel < 90) {
		cmd = _IOC(rnd_below(r, 4), VFIO_TYPE, rnd_below(r, 256), rnd_below(r, 1 << 14));
		arg = raw_arg(r);
		id = ID_VRAND;
	} else {
		do {
			cmd = (uint32_t)rnd_next(r);
		} while (vfs_ioctl_excluded(cmd));
		arg = raw_arg(r);
		id = ID_RAND;
	}

	avoid_known_oops(kind, cmd, arg);
	if ((long)n >= trace_from && (long)n < trace_to) {
		uint8_t *a = (uint8_t *)(uintptr_t)arg;
		char hex[80] = "";

		if (arg >= REGION_BASE && arg <= REGION_BASE + REGION_SIZE - 32)
			for (int i = 0; i < 32; i++)
				sprintf(hex + 2 * i, "%02x", a[i]);
		ret = rv(ioctl(world[kind], cmd, arg));
		diag("trace %llu %s cmd %#lx arg %#llx [%s] = %s",
		     (unsigned long long)n, kind_name[kind], cmd,
		     (unsigned long long)arg, hex, errname(ret));
	} else {
		ret = rv(ioctl(world[kind], cmd, arg));
	}
	record(kind, id, ret);
	/* New fds (a device opened by GET_DEVICE_FD): closed at once. */
	if (ret > 2 && cmd == VFIO_GROUP_GET_DEVICE_FD && family_of(kind) == F_GRP) {
		close(ret);
		sh->fds_got++;
	}
}

static int fuzz_child(uint64_t seed, long calls, long reset_every)
{
	char why[256];
	struct rnd r;

	sh->tid = (int)syscall(SYS_gettid);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	rnd_init(&r, seed, 0);
	if (open_world(why, sizeof(why))) {
		snprintf(sh->err, sizeof(sh->err), "world: %s", why);
		return 1;
	}
	for (long n = 0; n < calls; n++) {
		if (n && n % reset_every == 0) {
			close_world();
			sh->resets++;
			if (open_world(why, sizeof(why))) {
				sh->reset_failures++;
				snprintf(sh->err, sizeof(sh->err), "rebuild at call %ld: %s", n, why);
				return 1;
			}
		}
		fuzz_one(&r, n);
		__atomic_store_n(&sh->calls, n + 1, __ATOMIC_RELEASE);
	}
	close_world();
	return 0;
}

/* ------------------------------------------------------------ reporting */

static const char *res_name(int res, char *buf, size_t len)
{
	if (res >= 4096) {
		if (res - 4096 > 9)
			return ">9";
		snprintf(buf, len, "=%d", res - 4096);
		return buf;
	}
	snprintf(buf, len, "%s", errname(-res));
	for (char *s = buf; *s; s++)
		if (*s == ' ')
			*s = '_';
	return buf;
}

static const char *id_name(int kind, int id, char *buf, size_t len)
{
	if (id < 22)
		snprintf(buf, len, "raw.%s", family_of(kind) == F_CTR ?
			 ctr_nr_name[id] : dev_nr_name[id]);
	else if (id >= ID_SOP && id < ID_MUT)
		snprintf(buf, len, "s.%s", sop_name[id - ID_SOP]);
	else
		snprintf(buf, len, "%s", id == ID_MUT ? "mut" : id == ID_VRAND ?
			 "vfio_rand" : "rand");
	return buf;
}

static void print_hist(void)
{
	char nb[64], rb[32];
	uint64_t tot[NKINDS] = { 0 };

	for (int k = 0; k < NKINDS; k++)
		for (int id = 0; id < NIDS; id++)
			for (int res = 0; res < NRES; res++) {
				uint32_t c = sh->hist[k][id][res];

				if (!c)
					continue;
				tot[k] += c;
				printf("# hist %s %s %s %u\n", kind_name[k],
				       id_name(k, id, nb, sizeof(nb)),
				       res_name(res, rb, sizeof(rb)), c);
			}
	for (int k = 0; k < NKINDS; k++)
		printf("# hist-total %s %llu\n", kind_name[k], (unsigned long long)tot[k]);
	fflush(stdout);
}

static void dump_stack(pid_t pid, int tid)
{
	char path[96], buf[4096], *s, *nl;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", pid, tid);
	if (read_file(path, buf, sizeof(buf))) {
		diag("(no %s)", path);
		return;
	}
	for (s = buf; s && *s; s = nl ? nl + 1 : NULL) {
		nl = strchr(s, '\n');
		diag("  %.*s", nl ? (int)(nl - s) : (int)strlen(s), s);
	}
}

static int setup_devices(char *why, size_t len)
{
	const char *mods[] = { "vfio_pci", "vfio_iommu_type1", "vfio_test_mdev" };
	int ret;

	for (size_t i = 0; i < 3; i++) {
		if (!module_loaded(mods[i]) && modprobe(mods[i])) {
			snprintf(why, len, "modprobe %s failed", mods[i]);
			return -1;
		}
	}
	ret = conf_pci_device(pci_bdf, sizeof(pci_bdf), &pci_grp);
	if (ret) {
		snprintf(why, len, "no PCI device for vfio-pci: %s", strerror(-ret));
		return -1;
	}
	vtm_set("lock_kvm", 0);
	vtm_set("fail_open", 0);
	vtm_set("delay_ms", 0);
	vtm_set("hold_ms", 0);
	for (int i = 0; i < 2; i++) {
		const char *u = i ? MDEV_B : MDEV_A;

		ret = mdev_create(u);
		if (ret && ret != -EEXIST) {
			snprintf(why, len, "create mdev %s: %s", u, strerror(-ret));
			return -1;
		}
	}
	mdev_a_grp = mdev_group(MDEV_A);
	mdev_b_grp = mdev_group(MDEV_B);
	if (mdev_a_grp < 0 || mdev_b_grp < 0) {
		snprintf(why, len, "no IOMMU group for the mdevs");
		return -1;
	}
	return 0;
}

static int map_fixed(uint64_t addr, size_t len, int prot)
{
	void *p = mmap((void *)(uintptr_t)addr, len, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	return p == (void *)(uintptr_t)addr ? 0 : -1;
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : env_u64("FUZZ_SEED", 1);
	long calls = argc > 2 ? strtol(argv[2], NULL, 0) : env_long("FUZZ_CALLS", 1000000);
	long reset_every = env_long("FUZZ_RESET", 2000);
	long stall = env_long("FUZZ_STALL", 60);
	const char *tr = getenv("FUZZ_TRACE");
	const char *mode = getenv("VFIO_MODE");
	long base_vfio, base_t1, base_vtm, r_vfio, r_t1, r_vtm;
	uint64_t last = 0, c;
	double t0, tlast, t;
	char why[256];
	int kfd, st, bad, hung = 0, exited = 0;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(NTESTS);
	if (tr && *tr) {
		trace_from = strtol(tr, NULL, 0);
		trace_to = strchr(tr, ':') ? strtol(strchr(tr, ':') + 1, NULL, 0) : trace_from + 1;
	}
	diag("fuzz: mode %s, FUZZ_SEED=%llu FUZZ_CALLS=%ld FUZZ_RESET=%ld (rerun with these)",
	     mode ? mode : "?", (unsigned long long)seed, calls, reset_every);
	if (reset_every < 1)
		reset_every = 1;
	kfd = kmsg_open();
	mount_debugfs();

	/* 1: the vfio.ko this boot is for (the comparison needs it); 2: setup */
	for (int i = 0; i < N_EFD_IRQ; i++)
		efd_irq[i] = -1;
	for (int k = 0; k < NKINDS; k++)
		world[k] = -1;
	if (setup_devices(why, sizeof(why))) {
		ok(0, "setup: %s", why);
		printf("Bail out! setup failed\n");
		return 1;
	}
	if (!check_flavour()) {
		printf("Bail out! not the vfio.ko this boot is for\n");
		return 1;
	}
	for (int i = 0; i < N_EFD_IO; i++) {
		int e = eventfd(0, EFD_CLOEXEC);

		if (e < 0 || dup2(e, EFD_IO_FIRST + i) < 0)
			return !ok(0, "eventfds: %s", strerror(errno));
		close(e);
	}
	for (int i = 0; i < N_EFD_IRQ; i++)
		efd_irq[i] = eventfd(0, EFD_CLOEXEC);
	if (map_fixed(REGION_BASE, REGION_SIZE, PROT_READ | PROT_WRITE) ||
	    map_fixed(REGION_BASE + REGION_SIZE, PAGE, PROT_NONE) ||
	    map_fixed(DMA_BASE, DMA_SIZE, PROT_READ | PROT_WRITE) ||
	    map_fixed(DMA_BASE + DMA_SIZE, PAGE, PROT_NONE)) {
		ok(0, "fixed mappings at %#llx: %s", REGION_BASE, strerror(errno));
		return 1;
	}
	region = (uint8_t *)(uintptr_t)REGION_BASE;
	memset((void *)(uintptr_t)DMA_BASE, 0x5a, DMA_SIZE);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return !ok(0, "mmap the shared state: %s", strerror(errno));
	base_vfio = mod_refcnt("vfio");
	base_t1 = mod_refcnt("vfio_iommu_type1");
	base_vtm = mod_refcnt("vfio_test_mdev");
	ok(1, "setup: %s %s (group %d), mdevs in groups %d and %d; refcnt vfio %ld, type1 %ld, vfio_test_mdev %ld",
	   is_s390x() ? "virtio-rng" : "edu", pci_bdf, pci_grp, mdev_a_grp,
	   mdev_b_grp, base_vfio, base_t1, base_vtm);

	/* 3: the calls, in a child; the parent watches for progress */
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return !ok(0, "fork: %s", strerror(errno));
	if (!pid) {
		st = fuzz_child(seed, calls, reset_every);
		fflush(stdout);
		_exit(st);
	}
	t0 = tlast = now_s();
	for (;;) {
		usleep(100000);
		t = now_s();
		if (waitpid(pid, &st, WNOHANG) == pid) {
			exited = 1;
			break;
		}
		c = __atomic_load_n(&sh->calls, __ATOMIC_ACQUIRE);
		if (c != last) {
			last = c;
			tlast = t;
		}
		if (t - tlast >= stall) {
			hung = 1;
			break;
		}
	}
	t = now_s();
	c = sh->calls;
	diag("%llu calls in %.1fs: %.0f calls/s; %llu world rebuilds, %llu device fds got and closed",
	     (unsigned long long)c, t - t0, c / (t - t0 > 0 ? t - t0 : 1),
	     (unsigned long long)sh->resets, (unsigned long long)sh->fds_got);
	if (hung) {
		diag("no progress for %lds at call %llu; the fuzzer's kernel stack:", stall,
		     (unsigned long long)c);
		dump_stack(pid, sh->tid);
		diag("rerun: FUZZ_SEED=%llu FUZZ_TRACE=%llu:%llu", (unsigned long long)seed,
		     (unsigned long long)c, (unsigned long long)c + 1);
	}
	ok(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0 && c == (uint64_t)calls,
	   "%llu of %ld calls made, seed %llu%s%s%s", (unsigned long long)c, calls,
	   (unsigned long long)seed, hung ? ", HUNG" : "",
	   exited && WIFSIGNALED(st) ? ", fuzzer killed by a signal" : "",
	   sh->err[0] ? sh->err : "");

	/* 4: the world could always be rebuilt */
	ok(!sh->reset_failures && sh->resets == (uint64_t)((calls - 1) / reset_every),
	   "the world was rebuilt %llu times, %llu failed",
	   (unsigned long long)sh->resets, (unsigned long long)sh->reset_failures);

	print_hist();
	if (hung) {
		ok(0, "kernel log: not checked, the fuzzer is stuck");
		ok(0, "refcounts: not checked, the fuzzer is stuck");
		ok(0, "unload: not checked, the fuzzer is stuck");
		return 1;
	}

	/* 5: refcounts back */
	usleep(200000);
	r_vfio = mod_refcnt("vfio");
	r_t1 = mod_refcnt("vfio_iommu_type1");
	r_vtm = mod_refcnt("vfio_test_mdev");
	ok(r_vfio == base_vfio && r_t1 == base_t1 && r_vtm == base_vtm &&
	   vtm_stat("open_now") == 0,
	   "refcnt after: vfio %ld/%ld, type1 %ld/%ld, vfio_test_mdev %ld/%ld, mdevs open %lld",
	   r_vfio, base_vfio, r_t1, base_t1, r_vtm, base_vtm, vtm_stat("open_now"));

	/* 6: the whole stack unloads */
	mdev_remove(MDEV_A);
	mdev_remove(MDEV_B);
	pci_bind(pci_bdf, "");
	modprobe_q(1, "vfio_pci");
	modprobe_q(1, "vfio_test_mdev");
	modprobe_q(1, "vfio_iommu_type1");
	modprobe_q(1, "vfio");
	ok(!module_loaded("vfio"), "the vfio stack unloads: vfio %s",
	   module_loaded("vfio") ? "STILL LOADED" : "gone");

	/* 7: kernel log */
	bad = kmsg_scan(kfd, 40, 0);
	ok(bad == 0, "kernel log clean during the run (%d bad lines)", bad);
	return tap_done();
}
