// SPDX-License-Identifier: GPL-2.0-only
/*
 * conf_dma: DMA mapping through the container, differential.
 *
 * The container passes these ioctls to vfio_iommu_type1, which builds its
 * info capability chain with the vfio core's vfio_info_cap_add/shift.
 * Expected values are what stock 6.1 returns. Covers: IOMMU_GET_INFO (argsz,
 * page sizes, the capability chain: migration, DMA entries available, IOVA
 * ranges); MAP_DMA argument checks, maps, overlaps (EEXIST), adjacent maps,
 * unbacked vaddr; UNMAP_DMA checks, bisecting (v2: EINVAL; v1: size 0),
 * empty ranges, VFIO_DMA_UNMAP_FLAG_ALL and its invalid combinations, vaddr
 * invalidation and update (VFIO_UPDATE_VADDR); dirty page tracking; and, on
 * amd64, a real device DMA (edu's DMA engine) through a mapping.
 * Device: edu (amd64) or the zPCI virtio-rng (s390x; IOVAs start at 4 GiB
 * there, taken from the IOVA range capability).
 * Guest test: static, TAP on stdout.
 */
#include "tap.h"
#include <endian.h>

/*
 * The plan: how many checks (skips included) this test makes on each
 * architecture. Update with the count the harness reports ("planned N
 * subtests, ran M") when checks are added or removed.
 */
#define CHECKS_AMD64	106
#define CHECKS_S390X	100

#define MB		(1ULL << 20)
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_DMA_BUF	0x40000

static int c, g;
static char bdf[64];
static uint64_t base;		/* IOVA the maps start at */
static uint64_t last_end;	/* end of the last valid IOVA range */
static uint8_t *mem;		/* 8 MiB of anonymous memory */

/* The container's maps: -errno, map 0, unmap the size unmapped. */
static long map(uint64_t iova, uint64_t size, void *vaddr, uint32_t flags)
{
	return dma_map(c, iova, size, (uintptr_t)vaddr, flags);
}

static long unmap(uint64_t iova, uint64_t size, uint32_t flags)
{
	return dma_unmap(c, iova, size, flags);
}

#define RW	(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

static long dma_avail(void)
{
	static char buf[4096];
	struct vfio_iommu_type1_info *ii = (struct vfio_iommu_type1_info *)buf;
	unsigned int off;

	memset(buf, 0, sizeof(buf));
	ii->argsz = sizeof(buf);
	if (io(c, VFIO_IOMMU_GET_INFO, ii))
		return -errno;
	for (off = ii->cap_offset; off && off < sizeof(buf); ) {
		struct vfio_info_cap_header *h = (void *)(buf + off);

		if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)
			return ((struct vfio_iommu_type1_info_dma_avail *)h)->avail;
		off = h->next;
	}
	return -ENOENT;
}

static void check_info(void)
{
	static char buf[4096];
	struct vfio_iommu_type1_info *ii = (struct vfio_iommu_type1_info *)buf;
	struct vfio_iommu_type1_info small = { .argsz = 15 };
	unsigned int off, n = 0, order = 0;
	uint32_t need;

	expect(io(c, VFIO_IOMMU_GET_INFO, &small), -EINVAL, "GET_INFO with argsz 15");
	small.argsz = 16;
	small.cap_offset = 0xabcd;
	expect(io(c, VFIO_IOMMU_GET_INFO, &small), 0, "GET_INFO with argsz 16 (no cap_offset)");
	/* type1 flags the chain even when it cannot say where it is */
	expect(small.flags, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, "argsz 16: flags PGSIZES | CAPS");
	expect(small.cap_offset, 0xabcd, "argsz 16: cap_offset untouched");
	small.argsz = sizeof(small);
	expect(io(c, VFIO_IOMMU_GET_INFO, &small), 0, "GET_INFO with argsz %zu", sizeof(small));
	expect(small.flags, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, "flags PGSIZES | CAPS");
	expect(small.cap_offset, 0, "chain not copied into a short buffer");
	need = small.argsz;
	ok(need > sizeof(small), "argsz grows to %u for the chain", need);
	diag("iova_pgsizes %#llx", (unsigned long long)small.iova_pgsizes);
	/* intel-iommu: 4K, 2M, 1G; s390-iommu: every multiple of 4K */
	expect(small.iova_pgsizes, is_s390x() ? (long)0xfffffffffffff000ULL : 0x40201000L,
	       "iova_pgsizes (%#llx)", (unsigned long long)small.iova_pgsizes);
	expect(io(c, VFIO_IOMMU_GET_INFO, NULL), -EFAULT, "GET_INFO(NULL)");

	memset(buf, 0, sizeof(buf));
	ii->argsz = need;
	expect(io(c, VFIO_IOMMU_GET_INFO, ii), 0, "GET_INFO with exactly argsz %u", need);
	expect(ii->cap_offset, sizeof(*ii), "cap_offset");
	expect(ii->argsz, need, "argsz kept");
	/* stock order: migration, DMA available, IOVA ranges */
	for (off = ii->cap_offset; off && off + 8 <= need && n < 8; n++) {
		struct vfio_info_cap_header *h = (void *)(buf + off);

		order = order * 10 + h->id;
		ok(h->version == 1 && (!h->next || (h->next > off && h->next < need)),
		   "cap id %u version %u at %u, next %u", h->id, h->version, off, h->next);
		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
			struct vfio_iommu_type1_info_cap_migration *m = (void *)h;

			ok(m->flags == 0 && m->pgsize_bitmap == (small.iova_pgsizes & -small.iova_pgsizes) &&
			   m->max_dirty_bitmap_size == ((0x7fffffffULL + 63) / 64) * 8,
			   "migration cap: flags %u pgsizes %#llx max bitmap %#llx", m->flags,
			   (unsigned long long)m->pgsize_bitmap,
			   (unsigned long long)m->max_dirty_bitmap_size);
		} else if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
			struct vfio_iommu_type1_info_dma_avail *a = (void *)h;

			expect(a->avail, 65535, "DMA entries available (dma_entry_limit)");
		} else if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;

			ok(r->nr_iovas >= 1, "%u IOVA ranges", r->nr_iovas);
			for (unsigned int i = 0; i < r->nr_iovas; i++) {
				uint64_t s = r->iova_ranges[i].start, e = r->iova_ranges[i].end;
				uint64_t b = (s < 16 * MB ? 16 * MB : s + 2 * MB - 1) & ~(2 * MB - 1);

				diag("  IOVA range %#llx-%#llx", (unsigned long long)s, (unsigned long long)e);
				if (!base && b < e && e - b >= 64 * MB)
					base = b;
				last_end = e;
			}
		}
		off = h->next;
	}
	expect(order, 231, "caps in stock order (ids 2, 3, 1)");
	ok(base != 0, "an IOVA window for the tests at %#llx", (unsigned long long)base);
}

static void check_map(void)
{
	struct vfio_iommu_type1_dma_map m = { .argsz = 31 };

	expect(io(c, VFIO_IOMMU_MAP_DMA, &m), -EINVAL, "MAP_DMA with argsz 31");
	expect(map(base, MB, mem, RW | 8), -EINVAL, "MAP_DMA with an unknown flag");
	expect(map(base, MB, mem, 0), -EINVAL, "MAP_DMA neither read nor write");
	expect(map(base, MB, mem, RW | VFIO_DMA_MAP_FLAG_VADDR), -EINVAL, "MAP_DMA VADDR with read/write");
	expect(map(base, 0, mem, RW), -EINVAL, "MAP_DMA size 0");
	expect(map(base + 1, MB, mem, RW), -EINVAL, "MAP_DMA unaligned IOVA");
	expect(map(base, MB, mem + 1, RW), -EINVAL, "MAP_DMA unaligned vaddr");
	expect(map(base, MB + 1, mem, RW), -EINVAL, "MAP_DMA unaligned size");
	expect(map(~0ULL - 4095, 8192, mem, RW), -EINVAL, "MAP_DMA IOVA wraps");
	if (last_end != ~0ULL)
		expect(map((last_end + 1) & ~4095ULL, MB, mem, RW), -EINVAL, "MAP_DMA beyond the IOVA ranges");
	else
		skip("IOVA range reaches 2^64", "MAP_DMA beyond the IOVA ranges");
	expect(dma_avail(), 65535, "no entry used by the failures");

	expect(map(base, MB, mem, RW), 0, "MAP_DMA 1 MiB at %#llx", (unsigned long long)base);
	expect(dma_avail(), 65534, "one DMA entry used");
	expect(map(base, MB, mem, RW), -EEXIST, "MAP_DMA the same range again");
	expect(map(base + MB / 2, MB, mem, RW), -EEXIST, "MAP_DMA overlapping its end");
	expect(map(base - MB, 2 * MB, mem, RW), -EEXIST, "MAP_DMA overlapping its start");
	expect(map(base - MB, 4 * MB, mem, RW), -EEXIST, "MAP_DMA covering it");
	expect(map(base + 4096, 4096, mem, RW), -EEXIST, "MAP_DMA inside it");
	expect(map(base + MB, MB, mem + MB, VFIO_DMA_MAP_FLAG_READ), 0, "MAP_DMA the adjacent MiB read-only");
	expect(map(base + 2 * MB, MB, (void *)(uintptr_t)(1ULL << 40), RW), -EFAULT,
	       "MAP_DMA of unbacked vaddr");
	expect(dma_avail(), 65533, "two DMA entries used");
}

static void check_unmap(void)
{
	struct vfio_iommu_type1_dma_unmap u = { .argsz = 23 };

	expect(io(c, VFIO_IOMMU_UNMAP_DMA, &u), -EINVAL, "UNMAP_DMA with argsz 23");
	expect(unmap(base, MB, 8), -EINVAL, "UNMAP_DMA with an unknown flag");
	expect(unmap(base + 1, MB, 0), -EINVAL, "UNMAP_DMA unaligned IOVA");
	expect(unmap(base, 0, 0), -EINVAL, "UNMAP_DMA size 0");
	expect(unmap(base, MB + 1, 0), -EINVAL, "UNMAP_DMA unaligned size");
	expect(unmap(~0ULL - 4095, 8192, 0), -EINVAL, "UNMAP_DMA IOVA wraps");
	expect(unmap(base + MB / 2, MB, 0), -EINVAL, "UNMAP_DMA bisecting two maps (v2)");
	expect(unmap(base, MB / 2, 0), -EINVAL, "UNMAP_DMA the first half of a map (v2)");
	expect(unmap(base + 16 * MB, MB, 0), 0, "UNMAP_DMA where nothing is mapped: size 0");
	expect(unmap(base, 0, VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP), -EINVAL,
	       "UNMAP_DMA ALL with GET_DIRTY_BITMAP");
	expect(unmap(base, 0, VFIO_DMA_UNMAP_FLAG_ALL), -EINVAL, "UNMAP_DMA ALL with an IOVA");
	expect(unmap(0, MB, VFIO_DMA_UNMAP_FLAG_ALL), -EINVAL, "UNMAP_DMA ALL with a size");
	expect(unmap(base, MB, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP), -EINVAL,
	       "UNMAP_DMA GET_DIRTY_BITMAP without room for the bitmap");
	expect(unmap(base, MB, 0), MB, "UNMAP_DMA the first map exactly");
	expect(dma_avail(), 65534, "one DMA entry left");

	/* vaddr invalidation and update */
	expect(unmap(base + MB, MB, VFIO_DMA_UNMAP_FLAG_VADDR), MB, "UNMAP_DMA VADDR invalidates");
	expect(unmap(base + MB, MB, VFIO_DMA_UNMAP_FLAG_VADDR), -EINVAL, "UNMAP_DMA VADDR twice");
	expect(map(base + MB, MB, mem + 2 * MB, VFIO_DMA_MAP_FLAG_VADDR), 0, "MAP_DMA VADDR sets the new vaddr");
	expect(map(base + MB, MB, mem + 2 * MB, VFIO_DMA_MAP_FLAG_VADDR), -EINVAL,
	       "MAP_DMA VADDR on a valid vaddr");
	expect(map(base + 8 * MB, MB, mem, VFIO_DMA_MAP_FLAG_VADDR), -ENOENT, "MAP_DMA VADDR where nothing is mapped");
	expect(unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR), MB,
	       "UNMAP_DMA ALL|VADDR invalidates every vaddr");
	expect(map(base + MB, MB, mem + MB, VFIO_DMA_MAP_FLAG_VADDR), 0, "MAP_DMA VADDR restores it");

	expect(map(base, MB, mem, RW), 0, "MAP_DMA the first MiB again");
	expect(map(base + 4 * MB, 2 * MB, mem + 4 * MB, RW), 0, "MAP_DMA 2 MiB more");
	expect(unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL), 4 * MB, "UNMAP_DMA ALL: every map, 4 MiB");
	expect(unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL), 0, "UNMAP_DMA ALL again: nothing");
	expect(dma_avail(), 65535, "all DMA entries free");
	expect(unmap(base, 64 * MB, 0), 0, "UNMAP_DMA of the emptied window: size 0");
}

static void check_dirty(void)
{
	struct {
		struct vfio_iommu_type1_dirty_bitmap d;
		struct vfio_iommu_type1_dirty_bitmap_get r;
	} db;
	struct {
		struct vfio_iommu_type1_dma_unmap u;
		struct vfio_bitmap b;
	} ub;
	uint64_t bits[4];
	int all = 1;

	memset(&db, 0, sizeof(db));
	db.d.argsz = 7;
	db.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START;
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), -EINVAL, "DIRTY_PAGES with argsz 7");
	db.d.argsz = sizeof(db.d);
	db.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), -EINVAL, "DIRTY_PAGES START|STOP");
	db.d.flags = 8;
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), -EINVAL, "DIRTY_PAGES unknown flag");
	expect(map(base, MB, mem, RW), 0, "MAP_DMA 1 MiB to track");
	db.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START;
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), 0, "DIRTY_PAGES START");
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), 0, "DIRTY_PAGES START again");
	db.d.argsz = sizeof(db);
	db.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	db.r.iova = base;
	db.r.size = MB;
	db.r.bitmap.pgsize = 4096;
	db.r.bitmap.size = sizeof(bits);
	db.r.bitmap.data = (__u64 *)bits;
	memset(bits, 0, sizeof(bits));
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), 0, "DIRTY_PAGES GET_BITMAP");
	for (int i = 0; i < 4; i++)
		all &= bits[i] == ~0ULL;
	ok(all, "an IOMMU-backed map without pinning scope is all dirty (%#llx...)", (unsigned long long)bits[0]);
	db.r.bitmap.pgsize = 8192;
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), -EINVAL, "DIRTY_PAGES GET_BITMAP with another page size");
	db.r.bitmap.pgsize = 4096;
	db.r.bitmap.size = 8;
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), -EINVAL, "DIRTY_PAGES GET_BITMAP with a short bitmap");

	memset(&ub, 0, sizeof(ub));
	ub.u.argsz = sizeof(ub);
	ub.u.flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	ub.u.iova = base;
	ub.u.size = MB;
	ub.b.pgsize = 4096;
	ub.b.size = sizeof(bits);
	ub.b.data = (__u64 *)bits;
	expect(io(c, VFIO_IOMMU_UNMAP_DMA, &ub), 0, "UNMAP_DMA with GET_DIRTY_BITMAP while tracking");
	expect(ub.u.size, MB, "it unmapped 1 MiB");
	db.d.argsz = sizeof(db.d);
	db.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), 0, "DIRTY_PAGES STOP");
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), 0, "DIRTY_PAGES STOP again");
}

static void edu_wr(int d, unsigned int off, uint32_t v)
{
	v = htole32(v);
	if (pwrite(d, &v, 4, off) != 4)
		diag("edu write %#x failed: %s", off, strerror(errno));
}

static uint32_t edu_rd(int d, unsigned int off)
{
	uint32_t v = 0;

	if (pread(d, &v, 4, off) != 4)
		return 0xffffffff;
	return le32toh(v);
}

/*
 * edu copies 1 KiB RAM -> device -> RAM through two IOVAs (< 256 MiB); QEMU
 * 7.2's edu aborts on a transfer that fills its whole 4 KiB buffer.
 */
static int edu_dma(int d, uint64_t src, uint64_t dst, uint32_t cmd)
{
	edu_wr(d, EDU_DMA_SRC, src);
	edu_wr(d, EDU_DMA_SRC + 4, src >> 32);
	edu_wr(d, EDU_DMA_DST, dst);
	edu_wr(d, EDU_DMA_DST + 4, dst >> 32);
	edu_wr(d, EDU_DMA_CNT, 1024);
	edu_wr(d, EDU_DMA_CMD, cmd);
	for (int i = 0; i < 300; i++) {
		if (!(edu_rd(d, EDU_DMA_CMD) & 1))
			return 0;
		usleep(10000);
	}
	return -1;
}

static void check_device_dma(void)
{
	uint16_t cmd;
	long d;

	if (is_s390x() || base >= 256 * MB) {
		skip(is_s390x() ? "no edu on s390x" : "no IOVA below 256 MiB", "device DMA through a map");
		return;
	}
	d = io(g, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (!expect(d, EXPECT_FD, "edu device fd"))
		return;
	if (pread(d, &cmd, 2, (7ULL << 40) + 4) == 2) {
		cmd |= htole16(0x6);
		if (pwrite(d, &cmd, 2, (7ULL << 40) + 4) != 2)
			diag("cannot enable bus mastering");
	}
	memset(mem, 0xa5, 4096);
	for (int i = 0; i < 4096; i++)
		mem[i] = i * 7;
	memset(mem + MB, 0, 4096);
	expect(map(base, MB, mem, VFIO_DMA_MAP_FLAG_READ), 0, "MAP_DMA the source, read-only");
	expect(map(base + MB, MB, mem + MB, VFIO_DMA_MAP_FLAG_WRITE), 0, "MAP_DMA the target, write-only");
	ok(!edu_dma(d, base, EDU_DMA_BUF, 1), "edu DMA from IOVA %#llx into the device", (unsigned long long)base);
	ok(!edu_dma(d, EDU_DMA_BUF, base + MB, 3), "edu DMA from the device to IOVA %#llx",
	   (unsigned long long)(base + MB));
	ok(!memcmp(mem, mem + MB, 1024), "the data went through both maps");
	expect(unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL), 2 * MB, "UNMAP_DMA ALL after the DMA");
	close(d);
}

/* v1 semantics: an unmap inside a map is a success that unmaps nothing. */
static void check_v1(void)
{
	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), 0, "UNSET_CONTAINER");
	close(c);
	c = open_container();
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), 0, "SET_CONTAINER to a new container");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0, "SET_IOMMU(TYPE1), v1");
	expect(map(base, MB, mem, RW), 0, "v1: MAP_DMA 1 MiB");
	expect(unmap(base + MB / 2, MB / 2, 0), 0, "v1: UNMAP_DMA of its second half: size 0");
	expect(unmap(base, MB / 2, 0), MB, "v1: UNMAP_DMA of its first half unmaps all of it");
	expect(unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL), 0, "v1: UNMAP_DMA ALL: nothing left");
	{
		struct vfio_iommu_type1_dirty_bitmap db = {
			.argsz = sizeof(db), .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
		};

		expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), -EACCES, "v1: DIRTY_PAGES");
	}
}

int main(void)
{
	int group = -1;

	conf_start(CHECKS_AMD64, CHECKS_S390X);
	if (conf_pci_setup(bdf, sizeof(bdf), &group))
		return tap_done();
	mem = mmap(NULL, 8 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!ok(mem != MAP_FAILED, "8 MiB of memory"))
		return tap_done();
	memset(mem, 0x5a, 8 * MB);

	c = open_container();
	g = open_group(group);
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), 0, "SET_CONTAINER");
	{
		struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m) };

		expect(io(c, VFIO_IOMMU_MAP_DMA, &m), -EINVAL, "MAP_DMA before SET_IOMMU");
	}
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "SET_IOMMU(TYPE1v2)");
	check_info();
	if (!base)
		return tap_done();
	check_map();
	check_unmap();
	check_dirty();
	check_device_dma();
	check_v1();
	close(g);
	close(c);
	return tap_done();
}
