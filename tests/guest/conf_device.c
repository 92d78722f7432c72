// SPDX-License-Identifier: GPL-2.0-only
/*
 * conf_device: the vfio device fd uAPI on vfio-pci, differential.
 *
 * The device fd's file operations and VFIO_DEVICE_FEATURE dispatch belong to
 * the vfio core, SET_IRQS validation and the capability chains are core
 * helpers (vfio_set_irqs_validate_and_prepare, vfio_info_cap_add/shift);
 * the rest is vfio-pci-core reached through the core. Expected values are
 * what stock 6.1 returns on these devices. Covers: GET_INFO (argsz, flags,
 * counts, s390x zPCI capability chain), GET_REGION_INFO of every region
 * (and the MSI-X mappable capability of the e1000e BAR holding its table),
 * config space reads and writes (BAR sizing, read-only fields), BAR access by
 * read/write and mmap (edu: identification and liveness registers), mmap
 * refusals, GET_IRQ_INFO of every index, SET_IRQS validation, INTx and MSI
 * delivered to eventfds (edu raises them), RESET, hot-reset info, every
 * VFIO_DEVICE_FEATURE probed, and several device fds open at once.
 * Devices: edu + e1000e (amd64), the zPCI virtio-rng (s390x).
 * Guest test: static, TAP on stdout.
 */
#include "tap.h"
#include <endian.h>
#include <sys/eventfd.h>

/*
 * The plan: how many checks (skips included) this test makes on each
 * architecture. Update with the count the harness reports ("planned N
 * subtests, ran M") when checks are added or removed.
 */
#define CHECKS_AMD64	234
#define CHECKS_S390X	114

#define EDU_ID		0x00
#define EDU_LIVENESS	0x04
#define EDU_IRQ_STATUS	0x24
#define EDU_IRQ_RAISE	0x60
#define EDU_IRQ_ACK	0x64

#define RW	(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)
#define RWM	(RW | VFIO_REGION_INFO_FLAG_MMAP)
#define NOREG	0xffffffffu	/* GET_REGION_INFO fails with EINVAL */

struct region_want {
	unsigned long long size;
	unsigned int flags;
};

/* Stock answers per device: regions 0..8 (BAR0-5, ROM, config, VGA). */
struct dev_want {
	const char *name;
	unsigned int info_flags;
	struct region_want reg[VFIO_PCI_NUM_REGIONS];
	long irq_count[VFIO_PCI_NUM_IRQS];	/* -EINVAL: index refused */
	unsigned int irq_flags[VFIO_PCI_NUM_IRQS];
	long hot_reset_info;		/* GET_PCI_HOT_RESET_INFO, argsz 16 */
	long hot_reset;			/* PCI_HOT_RESET without group fds */
	const char *caps;		/* GET_INFO chain: "id.version ..." */
};

#define IRQ_EV	VFIO_IRQ_INFO_EVENTFD
#define IRQ_INTX	(IRQ_EV | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED)
#define IRQ_NR	(IRQ_EV | VFIO_IRQ_INFO_NORESIZE)

static const struct dev_want edu_want = {
	.name = "edu",
	.info_flags = VFIO_DEVICE_FLAGS_PCI,
	.reg = {
		{ 0x100000, RWM }, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 },
		{ 0, 0 }, { 256, RW }, { 0, NOREG },
	},
	.irq_count = { 1, 1, 0, -EINVAL, 1 },
	.irq_flags = { IRQ_INTX, IRQ_NR, IRQ_NR, 0, IRQ_NR },
	/* on the root bus: neither a slot nor a bus reset */
	.hot_reset_info = -ENODEV,
	.hot_reset = -ENODEV,
};

static const struct dev_want e1000e_want = {
	.name = "e1000e",
	.info_flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
	.reg = {
		{ 0x20000, RWM }, { 0x20000, RWM }, { 0x20, RW },
		{ 0x4000, RWM | VFIO_REGION_INFO_FLAG_CAPS }, { 0, 0 }, { 0, 0 },
		{ 0x40000, VFIO_REGION_INFO_FLAG_READ }, { 4096, RW }, { 0, NOREG },
	},
	.irq_count = { 1, 1, 5, 1, 1 },
	.irq_flags = { IRQ_INTX, IRQ_NR, IRQ_NR, IRQ_NR, IRQ_NR },
	.hot_reset_info = -ENODEV,
	.hot_reset = -ENODEV,
};

static const struct dev_want vrng_want = {
	.name = "virtio-rng (zPCI)",
	.info_flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_CAPS,
	/* no BAR mmap on s390 (VFIO_PCI_MMAP is off there) */
	.reg = {
		{ 0, 0 }, { 0x1000, RW }, { 0, 0 }, { 0, 0 }, { 0x4000, RW }, { 0, 0 },
		{ 0, 0 }, { 256, RW }, { 0, NOREG },
	},
	.irq_count = { 0, 0, 2, -EINVAL, 1 },
	.irq_flags = { IRQ_INTX, IRQ_NR, IRQ_NR, 0, IRQ_NR },
	/* a slot reset exists: one dependent device, no room for it */
	.hot_reset_info = -ENOSPC,
	.hot_reset = -EINVAL,
	/* zPCI BASE v2, GROUP v2, PFIP v1 (no UTIL string in QEMU) */
	.caps = "1.2 2.2 4.1",
};

static int container, dev_group;
static char bdf[64];

static long open_device(int *gfd, const char *name, int group)
{
	*gfd = open_group(group);
	if (*gfd < 0)
		return -errno;
	if (io(*gfd, VFIO_GROUP_SET_CONTAINER, &container))
		return -errno;
	/* the first group sets the IOMMU, later ones join it */
	ion(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
	return io(*gfd, VFIO_GROUP_GET_DEVICE_FD, name);
}

static off_t region_off(unsigned int index)
{
	return (off_t)index << 40;	/* vfio-pci's VFIO_PCI_INDEX_TO_OFFSET */
}

static void check_info(int d, const struct dev_want *w)
{
	struct vfio_device_info di = { .argsz = sizeof(di) };
	char big[1024];
	struct vfio_device_info *bi = (struct vfio_device_info *)big;

	di.argsz = 15;
	expect(io(d, VFIO_DEVICE_GET_INFO, &di), -EINVAL, "%s: GET_INFO with argsz 15", w->name);
	di.argsz = 16;
	expect(io(d, VFIO_DEVICE_GET_INFO, &di), 0, "%s: GET_INFO with argsz 16 (no cap_offset)", w->name);
	expect(io(d, VFIO_DEVICE_GET_INFO, NULL), -EFAULT, "%s: GET_INFO(NULL)", w->name);
	di.argsz = sizeof(di);
	expect(io(d, VFIO_DEVICE_GET_INFO, &di), 0, "%s: GET_INFO", w->name);
	expect(di.flags, w->info_flags, "%s: GET_INFO flags", w->name);
	expect(di.num_regions, VFIO_PCI_NUM_REGIONS, "%s: num_regions", w->name);
	expect(di.num_irqs, VFIO_PCI_NUM_IRQS, "%s: num_irqs", w->name);
	if (!(w->info_flags & VFIO_DEVICE_FLAGS_CAPS)) {
		expect(di.cap_offset, 0, "%s: no capability chain", w->name);
		expect(di.argsz, sizeof(di), "%s: argsz unchanged", w->name);
		return;
	}
	/* zPCI: the chain does not fit, argsz says how much is needed */
	expect(di.cap_offset, 0, "%s: chain not copied into a short buffer", w->name);
	ok(di.argsz > sizeof(di), "%s: argsz grows to %u for the chain", w->name, di.argsz);
	memset(big, 0, sizeof(big));
	bi->argsz = sizeof(big);
	expect(io(d, VFIO_DEVICE_GET_INFO, bi), 0, "%s: GET_INFO with room for the chain", w->name);
	expect(bi->cap_offset, sizeof(*bi), "%s: cap_offset", w->name);
	{
		unsigned int off = bi->cap_offset, n = 0;
		char chain[128] = "";

		while (off && off + sizeof(struct vfio_info_cap_header) <= sizeof(big) && n < 16) {
			struct vfio_info_cap_header *h = (struct vfio_info_cap_header *)(big + off);
			size_t l = strlen(chain);

			snprintf(chain + l, sizeof(chain) - l, "%s%u.%u", n ? " " : "", h->id, h->version);
			if (h->next && h->next <= off)
				break;
			off = h->next;
			n++;
		}
		ok(off == 0 && bi->argsz == sizeof(big), "%s: the chain ends inside argsz (%u caps)", w->name, n);
		ok(!strcmp(chain, w->caps), "%s: capability chain \"%s\" (stock: \"%s\")", w->name, chain, w->caps);
	}
}

static void check_regions(int d, const struct dev_want *w)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri) };

	ri.argsz = 23;
	expect(io(d, VFIO_DEVICE_GET_REGION_INFO, &ri), -EINVAL, "%s: GET_REGION_INFO with argsz 23", w->name);
	for (unsigned int i = 0; i <= VFIO_PCI_NUM_REGIONS; i++) {
		long r;

		memset(&ri, 0, sizeof(ri));
		ri.argsz = sizeof(ri);
		ri.index = i;
		r = io(d, VFIO_DEVICE_GET_REGION_INFO, &ri);
		if (i == VFIO_PCI_NUM_REGIONS || w->reg[i].flags == NOREG) {
			expect(r, -EINVAL, "%s: region %u info", w->name, i);
			continue;
		}
		expect(r, 0, "%s: region %u info", w->name, i);
		ok(ri.size == w->reg[i].size && ri.flags == w->reg[i].flags &&
		   ri.offset == (unsigned long long)region_off(i),
		   "%s: region %u size %#llx flags %#x offset %#llx (stock: %#llx %#x)", w->name, i,
		   (unsigned long long)ri.size, ri.flags, (unsigned long long)ri.offset,
		   w->reg[i].size, w->reg[i].flags);
		if (ri.flags & VFIO_REGION_INFO_FLAG_CAPS) {
			char big[256];
			struct vfio_region_info *bi = (struct vfio_region_info *)big;
			struct vfio_info_cap_header *h;

			expect(ri.cap_offset, 0, "%s: region %u: chain not copied into a short buffer", w->name, i);
			expect(ri.argsz, sizeof(ri) + sizeof(*h), "%s: region %u: argsz asks for the chain", w->name, i);
			memset(big, 0, sizeof(big));
			bi->argsz = sizeof(big);
			bi->index = i;
			expect(io(d, VFIO_DEVICE_GET_REGION_INFO, bi), 0, "%s: region %u info with room", w->name, i);
			expect(bi->cap_offset, sizeof(*bi), "%s: region %u: cap_offset", w->name, i);
			h = (struct vfio_info_cap_header *)(big + sizeof(*bi));
			ok(h->id == VFIO_REGION_INFO_CAP_MSIX_MAPPABLE && h->version == 1 && h->next == 0,
			   "%s: region %u: MSIX_MAPPABLE cap (id %u version %u next %u)", w->name, i,
			   h->id, h->version, h->next);
		}
	}
}

static void check_irq_info(int d, const struct dev_want *w)
{
	struct vfio_irq_info ii = { .argsz = sizeof(ii) };

	ii.argsz = 15;
	expect(io(d, VFIO_DEVICE_GET_IRQ_INFO, &ii), -EINVAL, "%s: GET_IRQ_INFO with argsz 15", w->name);
	for (unsigned int i = 0; i <= VFIO_PCI_NUM_IRQS; i++) {
		long r;

		memset(&ii, 0, sizeof(ii));
		ii.argsz = sizeof(ii);
		ii.index = i;
		r = io(d, VFIO_DEVICE_GET_IRQ_INFO, &ii);
		if (i == VFIO_PCI_NUM_IRQS || w->irq_count[i] < 0) {
			expect(r, -EINVAL, "%s: irq %u info", w->name, i);
			continue;
		}
		expect(r, 0, "%s: irq %u info", w->name, i);
		ok(ii.count == w->irq_count[i] && ii.flags == w->irq_flags[i],
		   "%s: irq %u count %u flags %#x (stock: %ld %#x)", w->name, i, ii.count, ii.flags,
		   w->irq_count[i], w->irq_flags[i]);
	}
}

static void check_set_irqs(int d, const struct dev_want *w)
{
	struct vfio_irq_set s = { .argsz = sizeof(s) };
	int efd = eventfd(0, EFD_NONBLOCK);
	unsigned int irq = w->irq_count[VFIO_PCI_INTX_IRQ_INDEX] ? VFIO_PCI_INTX_IRQ_INDEX :
			   VFIO_PCI_MSIX_IRQ_INDEX;

	s.argsz = 19;
	s.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
	expect(io(d, VFIO_DEVICE_SET_IRQS, &s), -EINVAL, "%s: SET_IRQS with argsz 19", w->name);
	s.argsz = sizeof(s);
	s.index = VFIO_PCI_NUM_IRQS;
	expect(io(d, VFIO_DEVICE_SET_IRQS, &s), -EINVAL, "%s: SET_IRQS index %d", w->name, VFIO_PCI_NUM_IRQS);
	s.index = irq;
	s.count = 1;
	s.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER;
	expect(io(d, VFIO_DEVICE_SET_IRQS, &s), -EINVAL, "%s: SET_IRQS with two data types", w->name);
	s.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER | (1u << 10);
	expect(io(d, VFIO_DEVICE_SET_IRQS, &s), -EINVAL, "%s: SET_IRQS with an unknown flag", w->name);
	s.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
	s.start = 0;
	s.count = 0xffffffffu;
	expect(io(d, VFIO_DEVICE_SET_IRQS, &s), -EINVAL, "%s: SET_IRQS count ~0", w->name);
	s.start = 0xfffffff0u;
	s.count = 0x20;
	expect(io(d, VFIO_DEVICE_SET_IRQS, &s), -EINVAL, "%s: SET_IRQS start+count wraps", w->name);
	s.start = w->irq_count[irq];
	s.count = 1;
	expect(io(d, VFIO_DEVICE_SET_IRQS, &s), -EINVAL, "%s: SET_IRQS start past the vectors", w->name);
	s.start = 0;
	s.count = 1;
	s.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	expect(io(d, VFIO_DEVICE_SET_IRQS, &s), -EINVAL, "%s: SET_IRQS eventfd without room for it", w->name);
	s.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK;
	expect(io(d, VFIO_DEVICE_SET_IRQS, &s), -ENOTTY, "%s: SET_IRQS with two actions", w->name);
	if (!w->irq_count[VFIO_PCI_MSIX_IRQ_INDEX])
		expect(set_irq_none(d, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0), -EINVAL,
		       "%s: SET_IRQS on MSI-X, which it lacks", w->name);
	if (w->irq_count[VFIO_PCI_MSI_IRQ_INDEX] > 0) {
		int fds[32], nv = w->irq_count[VFIO_PCI_MSI_IRQ_INDEX];

		for (int i = 0; i <= nv; i++)
			fds[i] = efd;
		/* the core refuses start + count > vectors before vfio-pci sees it */
		expect(set_irq_eventfds(d, VFIO_PCI_MSI_IRQ_INDEX, 0, nv + 1, fds), -EINVAL,
		       "%s: SET_IRQS(MSI) with %d eventfds for %d vectors", w->name, nv + 1, nv);
	}
	if (w->irq_count[VFIO_PCI_MSIX_IRQ_INDEX] > 0) {
		int fds[32], nv = w->irq_count[VFIO_PCI_MSIX_IRQ_INDEX];

		for (int i = 0; i <= nv; i++)
			fds[i] = efd;
		expect(set_irq_eventfds(d, VFIO_PCI_MSIX_IRQ_INDEX, nv - 1, 2, fds), -EINVAL,
		       "%s: SET_IRQS(MSI-X) vectors %d-%d of %d", w->name, nv - 1, nv, nv);
		expect(set_irq_eventfds(d, VFIO_PCI_MSIX_IRQ_INDEX, 0, nv, fds), 0,
		       "%s: SET_IRQS(MSI-X, %d eventfds)", w->name, nv);
		expect(set_irq_eventfds(d, VFIO_PCI_MSIX_IRQ_INDEX, nv - 1, 1, fds), 0,
		       "%s: SET_IRQS(MSI-X) swaps the last vector's eventfd", w->name);
		expect(set_irq_eventfds(d, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, fds), -EINVAL,
		       "%s: INTx while MSI-X is on", w->name);
		expect(set_irq_none(d, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0), 0,
		       "%s: SET_IRQS(MSI-X) off", w->name);
	}
	expect(set_irq_eventfds(d, VFIO_PCI_REQ_IRQ_INDEX, 0, 1, &efd), 0, "%s: SET_IRQS(REQ, eventfd)", w->name);
	expect(set_irq_none(d, VFIO_PCI_REQ_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0), 0,
	       "%s: SET_IRQS(REQ) unset", w->name);
	close(efd);
}

static uint32_t bar_rd(int d, unsigned int bar, off_t off)
{
	uint32_t v = 0xdeadbeef;

	if (pread(d, &v, 4, region_off(bar) + off) != 4)
		return 0xdeadbeef;
	return le32toh(v);
}

static long bar_wr(int d, unsigned int bar, off_t off, uint32_t v)
{
	v = htole32(v);
	return rv(pwrite(d, &v, 4, region_off(bar) + off));
}

static uint32_t cfg_rd(int d, off_t off, int size)
{
	uint32_t v = 0;

	if (pread(d, &v, size, region_off(VFIO_PCI_CONFIG_REGION_INDEX) + off) != size)
		return 0xdeadbeef;
	return le32toh(v);
}

static long cfg_wr(int d, off_t off, uint32_t v, int size)
{
	v = htole32(v);
	return rv(pwrite(d, &v, size, region_off(VFIO_PCI_CONFIG_REGION_INDEX) + off));
}

static void check_config(int d, unsigned int ven, unsigned int devid, const char *name, int edu)
{
	uint8_t buf[256];
	uint32_t bar0;

	expect(rv(pread(d, buf, sizeof(buf), region_off(VFIO_PCI_CONFIG_REGION_INDEX))), 256,
	       "%s: read the whole 256 bytes of config space", name);
	ok(cfg_rd(d, 0, 2) == ven && cfg_rd(d, 2, 2) == devid, "%s: config IDs %04x:%04x", name,
	   cfg_rd(d, 0, 2), cfg_rd(d, 2, 2));
	expect(cfg_wr(d, 0, 0xffff, 2), 2, "%s: write to the read-only vendor ID is taken", name);
	expect(cfg_rd(d, 0, 2), ven, "%s: vendor ID unchanged", name);
	expect(rv(pread(d, buf, 4, region_off(VFIO_PCI_CONFIG_REGION_INDEX) + 4096)), -EFAULT,
	       "%s: read past the config space", name);
	expect(rv(pread(d, buf, 4, region_off(20))), -EINVAL, "%s: read of region index 20", name);
	if (!edu)
		return;
	/* BAR sizing is virtualized: the 1 MiB BAR0 answers its size mask */
	bar0 = cfg_rd(d, 0x10, 4);
	expect(cfg_wr(d, 0x10, 0xffffffff, 4), 4, "%s: write ~0 to BAR0", name);
	expect(cfg_rd(d, 0x10, 4), 0xfff00000, "%s: BAR0 reads back its size mask", name);
	expect(cfg_wr(d, 0x10, bar0, 4), 4, "%s: restore BAR0", name);
	expect(cfg_rd(d, 0x10, 4), bar0, "%s: BAR0 restored", name);
	/* memory decode and bus master for the BAR and MSI tests */
	expect(cfg_wr(d, 4, cfg_rd(d, 4, 2) | 0x6, 2), 2, "%s: enable memory and bus master", name);
	ok((cfg_rd(d, 4, 2) & 0x6) == 0x6, "%s: command register %#x", name, cfg_rd(d, 4, 2));
}

static void check_bar(int d)
{
	volatile uint32_t *bar;
	void *p;

	expect(bar_rd(d, 0, EDU_ID) & 0xff, 0xed, "edu: identification register (%#x)", bar_rd(d, 0, EDU_ID));
	expect(bar_wr(d, 0, EDU_LIVENESS, 0x12345678), 4, "edu: write the liveness register");
	expect(bar_rd(d, 0, EDU_LIVENESS), 0xedcba987, "edu: liveness register returns the inverse");

	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, d, region_off(0));
	if (!ok(p != MAP_FAILED, "edu: mmap BAR0"))
		return;
	bar = p;
	expect(le32toh(bar[0]) & 0xff, 0xed, "edu: identification register through the mmap");
	bar[1] = htole32(0x0f0f0f0f);
	expect(le32toh(bar[1]), 0xf0f0f0f0, "edu: liveness through the mmap");
	munmap(p, 4096);

	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, d, region_off(0));
	expect(p == MAP_FAILED ? -errno : 0, -EINVAL, "edu: private mmap refused");
	if (p != MAP_FAILED)
		munmap(p, 4096);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, d, region_off(0) + 0x100000);
	expect(p == MAP_FAILED ? -errno : 0, -EINVAL, "edu: mmap past the end of BAR0 refused");
	if (p != MAP_FAILED)
		munmap(p, 4096);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, d, region_off(1));
	expect(p == MAP_FAILED ? -errno : 0, -EINVAL, "edu: mmap of the empty BAR1 refused");
	if (p != MAP_FAILED)
		munmap(p, 4096);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, d, region_off(VFIO_PCI_CONFIG_REGION_INDEX));
	expect(p == MAP_FAILED ? -errno : 0, -EINVAL, "edu: mmap of config space refused");
	if (p != MAP_FAILED)
		munmap(p, 4096);
}

/* edu raises an interrupt, the eventfd must fire; then ack and unmask. */
static void edu_irq(int d, int efd, const char *what, int intx)
{
	uint64_t cnt = 0;
	ssize_t n;

	expect(bar_wr(d, 0, EDU_IRQ_RAISE, 1), 4, "edu %s: raise an interrupt", what);
	ok(wait_readable(efd, 5000), "edu %s: the eventfd fires", what);
	n = read(efd, &cnt, sizeof(cnt));
	ok(n == sizeof(cnt) && cnt >= 1, "edu %s: eventfd count %llu", what, (unsigned long long)cnt);
	expect(bar_rd(d, 0, EDU_IRQ_STATUS), 1, "edu %s: interrupt status", what);
	expect(bar_wr(d, 0, EDU_IRQ_ACK, 1), 4, "edu %s: ack", what);
	if (intx)
		expect(set_irq_none(d, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0, 1), 0,
		       "edu %s: SET_IRQS unmask", what);
}

static void check_edu_irqs(int d)
{
	int efd = eventfd(0, EFD_NONBLOCK), efd2 = eventfd(0, EFD_NONBLOCK);

	expect(set_irq_eventfds(d, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, &efd), 0, "edu: SET_IRQS(INTx, eventfd)");
	edu_irq(d, efd, "INTx", 1);
	edu_irq(d, efd, "INTx again", 1);
	expect(set_irq_eventfds(d, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, &efd2), -EINVAL, "edu: MSI while INTx is on");
	expect(set_irq_none(d, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0), 0,
	       "edu: SET_IRQS(INTx) off");
	expect(set_irq_eventfds(d, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, &efd2), 0, "edu: SET_IRQS(MSI, eventfd)");
	edu_irq(d, efd2, "MSI", 0);
	expect(set_irq_eventfds(d, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, &efd), -EINVAL, "edu: INTx while MSI is on");
	expect(set_irq_none(d, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0), 0,
	       "edu: SET_IRQS(MSI) off");
	close(efd);
	close(efd2);
}

static void check_features(int d, const char *name)
{
	const unsigned int P = VFIO_DEVICE_FEATURE_PROBE, G = VFIO_DEVICE_FEATURE_GET,
			   S = VFIO_DEVICE_FEATURE_SET;
	const size_t sz = sizeof(struct vfio_device_feature) + 64;
	static const struct {
		unsigned int feature, flags;
		const char *what;
		long want;
	} t[] = {
		{ VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, P | S, "PCI_VF_TOKEN probe", -ENOTTY },
		{ VFIO_DEVICE_FEATURE_MIGRATION, P | G, "MIGRATION probe", -ENOTTY },
		{ VFIO_DEVICE_FEATURE_MIGRATION, G, "MIGRATION get", -ENOTTY },
		{ VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, P | G | S, "MIG_DEVICE_STATE probe", -ENOTTY },
		{ VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, S, "MIG_DEVICE_STATE set", -ENOTTY },
		{ VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, P | S, "LOW_POWER_ENTRY probe", 0 },
		{ VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, P | G, "LOW_POWER_ENTRY probe for get", -EINVAL },
		{ VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, P | S, "LOW_POWER_ENTRY_WITH_WAKEUP probe", 0 },
		{ VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, P | S, "LOW_POWER_EXIT probe", 0 },
		{ VFIO_DEVICE_FEATURE_DMA_LOGGING_START, P | S, "DMA_LOGGING_START probe", -ENOTTY },
		{ VFIO_DEVICE_FEATURE_DMA_LOGGING_START, S, "DMA_LOGGING_START set", -ENOTTY },
		{ VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, P | S, "DMA_LOGGING_STOP probe", -ENOTTY },
		{ VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, P | G, "DMA_LOGGING_REPORT probe", -ENOTTY },
		{ VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, G, "DMA_LOGGING_REPORT get", -ENOTTY },
		{ 9, P | G, "feature 9 probe", -ENOTTY },
		{ 0xffff, P | S, "feature 0xffff probe", -ENOTTY },
		{ VFIO_DEVICE_FEATURE_MIGRATION, G | S, "MIGRATION get+set without probe", -EINVAL },
		{ VFIO_DEVICE_FEATURE_MIGRATION, P | (1u << 19), "MIGRATION with an unknown flag", -EINVAL },
		{ VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, P | G | S, "LOW_POWER_EXIT probe get+set", -EINVAL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		expect(device_feature(d, t[i].feature | t[i].flags, sz), t[i].want, "%s: FEATURE %s", name, t[i].what);
	expect(device_feature(d, VFIO_DEVICE_FEATURE_MIGRATION | P | G, 7), -EINVAL, "%s: FEATURE with argsz 7", name);
	expect(io(d, VFIO_DEVICE_FEATURE, NULL), -EFAULT, "%s: FEATURE(NULL)", name);
}

static void check_misc(int d, const struct dev_want *w)
{
	struct vfio_pci_hot_reset_info hi = { .argsz = sizeof(hi) };
	struct vfio_pci_hot_reset hr = { .argsz = sizeof(hr) };
	long want = (w->info_flags & VFIO_DEVICE_FLAGS_RESET) ? 0 : -EINVAL;
	long r;

	expect(ion(d, VFIO_DEVICE_RESET, 0), want, "%s: DEVICE_RESET", w->name);
	r = io(d, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, &hi);
	diag("%s: GET_PCI_HOT_RESET_INFO %s count %u", w->name, errname(r), hi.count);
	expect(r, w->hot_reset_info, "%s: GET_PCI_HOT_RESET_INFO", w->name);
	expect(io(d, VFIO_DEVICE_PCI_HOT_RESET, &hr), w->hot_reset,
	       "%s: PCI_HOT_RESET with no group fds", w->name);
	expect(ion(d, _IO(VFIO_TYPE, VFIO_BASE + 99), 0), -ENOTTY, "%s: an unknown ioctl", w->name);
	expect(ion(d, VFIO_GROUP_GET_STATUS, 0), -ENOTTY, "%s: a group ioctl", w->name);
}

int main(void)
{
	const struct dev_want *w = is_s390x() ? &vrng_want : &edu_want;
	int g, g2 = -1;
	long d, d2, d3, n = -1;
	char nic[64];

	conf_start(CHECKS_AMD64, CHECKS_S390X);
	if (conf_pci_setup(bdf, sizeof(bdf), &dev_group))
		return tap_done();
	container = open_container();
	d = open_device(&g, bdf, dev_group);
	if (!expect(d, EXPECT_FD, "%s: device fd", w->name))
		return tap_done();

	check_info(d, w);
	check_regions(d, w);
	check_irq_info(d, w);
	check_set_irqs(d, w);
	if (is_s390x())
		check_config(d, VRNG_VENDOR, VRNG_DEVICE, w->name, 0);
	else
		check_config(d, EDU_VENDOR, EDU_DEVICE, w->name, 1);
	if (is_s390x()) {
		skip("no edu on s390x", "BAR registers and mmap");
		skip("no edu on s390x", "interrupts raised by the device");
	} else {
		check_bar(d);
		check_edu_irqs(d);
	}
	check_features(d, w->name);
	check_misc(d, w);

	/* several fds of one device, and of two devices, at once */
	d2 = io(g, VFIO_GROUP_GET_DEVICE_FD, bdf);
	d3 = io(g, VFIO_GROUP_GET_DEVICE_FD, bdf);
	expect(d2, EXPECT_FD, "%s: a second device fd", w->name);
	expect(d3, EXPECT_FD, "%s: a third device fd", w->name);
	if (!is_s390x() && pci_find(E1000E_VENDOR, E1000E_DEVICE, nic, sizeof(nic)) &&
	    !pci_bind(nic, "vfio-pci")) {
		n = open_device(&g2, nic, pci_group(nic));
		expect(n, EXPECT_FD, "e1000e: device fd next to edu's");
	} else {
		skip("no second PCI device", "a second device's fd");
	}
	close(d);
	if (!is_s390x())
		expect(bar_rd(d2, 0, EDU_ID) & 0xff, 0xed, "edu: the second fd still reaches BAR0");
	else
		expect(cfg_rd(d2, 0, 2), VRNG_VENDOR, "%s: the second fd still reads config", w->name);
	close(d2);
	check_info(d3, w);
	if (n >= 0) {
		check_info(n, &e1000e_want);
		check_regions(n, &e1000e_want);
		check_irq_info(n, &e1000e_want);
		check_set_irqs(n, &e1000e_want);
		check_config(n, E1000E_VENDOR, E1000E_DEVICE, "e1000e", 0);
		check_features(n, "e1000e");
		check_misc(n, &e1000e_want);
		close(n);
		close(g2);
	}
	close(d3);
	close(g);
	close(container);
	return tap_done();
}
