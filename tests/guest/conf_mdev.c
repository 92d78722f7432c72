// SPDX-License-Identifier: GPL-2.0-only
/*
 * conf_mdev: the emulated-IOMMU path and the KVM coupling, differential.
 *
 * The device is a vfio_test_mdev instance (tests/kmod): registered with
 * vfio_register_emulated_iommu_dev(), so its group is a fake IOMMU group the
 * vfio core makes, and the device has no ioctl/read/write/mmap ops of its
 * own: what the device fd answers is the core's. Expected values are what
 * stock 6.1 returns. Covers: the emulated group's status and container;
 * type1 with only emulated groups (no IOMMU domain: page sizes, no IOVA
 * ranges, maps that pin nothing, UPDATE_VADDR refused, dirty tracking
 * scoped to pinned pages); GET_DEVICE_FD by UUID; the device fd's
 * fallbacks (EINVAL, ENOTTY); open/close reaching the driver once per first
 * open/last close; a failing open_device() unwinding (the group and
 * container usable after it); removing the mdev while its fd is open (the
 * remove waits for the close); and, on amd64, the KVM VFIO device:
 * KVM_DEV_VFIO_GROUP_ADD/DEL with group, non-vfio, container and device
 * fds, and the VM reaching the driver's open_device() after an ADD only.
 * The test driver has no pin/unpin or dma_rw knob; on s390x the pinning
 * path is driven through vfio_ccw instead: an mdev on the virtio-ccw
 * subchannel runs a SENSE ID channel program whose CCW and data buffer live
 * in a type1 map, so vfio-ccw pins and unpins them through
 * vfio_pin_pages()/vfio_unpin_pages(); the region capability chains and
 * SET_IRQS go through the core helpers too. vfio_dma_rw() has no 6.1 user
 * reachable here.
 * Guest test: static, TAP on stdout.
 */
#include "tap.h"
#include "rnd.h"
#include <endian.h>
#include <sys/eventfd.h>
#include <linux/kvm.h>
#include <linux/vfio_ccw.h>

/*
 * The plan: how many checks (skips included) this test makes on each
 * architecture. Update with the count the harness reports ("planned N
 * subtests, ran M") when checks are added or removed.
 */
#define CHECKS_AMD64	107
#define CHECKS_S390X	116

#define UUID		"c0f0c0f0-0000-4000-8000-00000000c0f1"
#define MDEV_DIR	MDEV_DEVICES "/" UUID
#define MB		(1ULL << 20)

static int c, g, group;

static void check_container(void)
{
	static char buf[1024];
	struct vfio_iommu_type1_info *ii = (struct vfio_iommu_type1_info *)buf;
	struct {
		struct vfio_iommu_type1_dirty_bitmap d;
		struct vfio_iommu_type1_dirty_bitmap_get r;
	} db;
	uint64_t bits[4] = { ~0ULL, ~0ULL, ~0ULL, ~0ULL };
	unsigned int off, order = 0;
	void *mem = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	expect(ion(c, VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR), 0, "emulated: CHECK_EXTENSION(UPDATE_VADDR)");
	expect(ion(c, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU), 1, "emulated: CHECK_EXTENSION(DMA_CC), no domain");
	expect(ion(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 1, "emulated: CHECK_EXTENSION(TYPE1v2)");
	memset(buf, 0, sizeof(buf));
	ii->argsz = sizeof(buf);
	expect(io(c, VFIO_IOMMU_GET_INFO, ii), 0, "emulated: IOMMU_GET_INFO");
	expect(ii->flags, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, "emulated: info flags");
	ok(ii->iova_pgsizes == (uint64_t)~(getpagesize() - 1ULL), "emulated: page sizes PAGE_MASK (%#llx)",
	   (unsigned long long)ii->iova_pgsizes);
	for (off = ii->cap_offset; off && off < sizeof(buf); ) {
		struct vfio_info_cap_header *h = (void *)(buf + off);

		order = order * 10 + h->id;
		off = h->next;
	}
	expect(order, 23, "emulated: caps migration, DMA available, no IOVA ranges");

	/* nothing is pinned at map time without an IOMMU domain */
	expect(dma_map(c, MB, MB, 1ULL << 40, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE), 0,
	       "emulated: MAP_DMA of unbacked vaddr");
	expect(dma_map(c, 8 * MB, MB, (uintptr_t)mem, VFIO_DMA_MAP_FLAG_READ), 0, "emulated: MAP_DMA of real memory");
	expect(dma_map(c, MB, MB, (uintptr_t)mem, VFIO_DMA_MAP_FLAG_READ), -EEXIST, "emulated: MAP_DMA overlap");
	expect(dma_unmap(c, MB, MB, VFIO_DMA_UNMAP_FLAG_VADDR), -EBUSY, "emulated: UNMAP_DMA VADDR with an mdev");
	expect(dma_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR), -EBUSY,
	       "emulated: UNMAP_DMA ALL|VADDR with an mdev");

	memset(&db, 0, sizeof(db));
	db.d.argsz = sizeof(db.d);
	db.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START;
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), 0, "emulated: DIRTY_PAGES START");
	db.d.argsz = sizeof(db);
	db.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	db.r.iova = MB;
	db.r.size = MB;
	db.r.bitmap.pgsize = getpagesize();
	db.r.bitmap.size = sizeof(bits);
	db.r.bitmap.data = (__u64 *)bits;
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), 0, "emulated: DIRTY_PAGES GET_BITMAP");
	ok(!bits[0] && !bits[1] && !bits[2] && !bits[3], "emulated: nothing pinned, nothing dirty (%#llx)",
	   (unsigned long long)bits[0]);
	db.d.argsz = sizeof(db.d);
	db.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
	expect(io(c, VFIO_IOMMU_DIRTY_PAGES, &db), 0, "emulated: DIRTY_PAGES STOP");
	expect(dma_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL), 2 * MB, "emulated: UNMAP_DMA ALL");
	munmap(mem, MB);
}

static void check_device_fd(int d)
{
	struct vfio_device_info di = { .argsz = sizeof(di) };
	struct vfio_region_info ri = { .argsz = sizeof(ri) };
	const unsigned int P = VFIO_DEVICE_FEATURE_PROBE, G = VFIO_DEVICE_FEATURE_GET,
			   S = VFIO_DEVICE_FEATURE_SET;
	const size_t sz = sizeof(struct vfio_device_feature) + 64;
	char buf[16];
	void *p;

	expect(io(d, VFIO_DEVICE_GET_INFO, &di), -EINVAL, "mdev fd: GET_INFO (no ioctl op)");
	expect(io(d, VFIO_DEVICE_GET_REGION_INFO, &ri), -EINVAL, "mdev fd: GET_REGION_INFO (no ioctl op)");
	expect(ion(d, VFIO_DEVICE_RESET, 0), -EINVAL, "mdev fd: RESET (no ioctl op)");
	expect(rv(pread(d, buf, sizeof(buf), 0)), -EINVAL, "mdev fd: read (no read op)");
	expect(rv(pwrite(d, buf, sizeof(buf), 0)), -EINVAL, "mdev fd: write (no write op)");
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, d, 0);
	expect(p == MAP_FAILED ? -errno : 0, -EINVAL, "mdev fd: mmap (no mmap op)");
	if (p != MAP_FAILED)
		munmap(p, 4096);
	expect(device_feature(d, VFIO_DEVICE_FEATURE_MIGRATION | P | G, sz), -ENOTTY, "mdev fd: FEATURE MIGRATION probe");
	expect(device_feature(d, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | P | S, sz), -ENOTTY,
	       "mdev fd: FEATURE MIG_DEVICE_STATE probe");
	expect(device_feature(d, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | P | S, sz), -ENOTTY,
	       "mdev fd: FEATURE DMA_LOGGING_START probe");
	expect(device_feature(d, VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP | P | S, sz), -ENOTTY,
	       "mdev fd: FEATURE DMA_LOGGING_STOP probe");
	expect(device_feature(d, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT | P | G, sz), -ENOTTY,
	       "mdev fd: FEATURE DMA_LOGGING_REPORT probe");
	expect(device_feature(d, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY | P | S, sz), -ENOTTY,
	       "mdev fd: FEATURE LOW_POWER_ENTRY probe (no device_feature op)");
	expect(device_feature(d, VFIO_DEVICE_FEATURE_PCI_VF_TOKEN | P | S, sz), -ENOTTY,
	       "mdev fd: FEATURE PCI_VF_TOKEN probe");
	expect(device_feature(d, VFIO_DEVICE_FEATURE_MIGRATION | G | S, sz), -EINVAL, "mdev fd: FEATURE get+set");
	expect(device_feature(d, VFIO_DEVICE_FEATURE_MIGRATION | P | (1u << 20), sz), -EINVAL,
	       "mdev fd: FEATURE unknown flag");
	expect(device_feature(d, VFIO_DEVICE_FEATURE_MIGRATION | P | G, 4), -EINVAL, "mdev fd: FEATURE argsz 4");
}

/* The device opens without a VM now (when: after what). */
static void open_without_vm(const char *when, const char *why)
{
	long d = io(g, VFIO_GROUP_GET_DEVICE_FD, UUID);

	expect(d, EXPECT_FD, "GET_DEVICE_FD after %s", when);
	expect(vtm_stat("last_open_kvm"), 0, "... %s", why);
	if (d >= 0)
		close(d);
}

/* The KVM VFIO device and the VM reaching open_device(). */
static void check_kvm(void)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	struct kvm_device_attr a = { .group = KVM_DEV_VFIO_GROUP };
	int kvm, vm, kd, devnull, bad = -1, fd;
	long d, opens, kvm_opens, closes_kvm;

	if (is_s390x()) {
		skip("no KVM in the s390x TCG guest (no SIE)", "KVM VFIO device");
		return;
	}
	if (modprobe("kvm_amd") && modprobe("kvm_intel")) {
		skip("no kvm vendor module loads", "KVM VFIO device");
		return;
	}
	kvm = open("/dev/kvm", O_RDWR);
	vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
	if (!ok(vm >= 0, "KVM_CREATE_VM")) {
		diag("  %s", strerror(errno));
		return;
	}
	expect(io(vm, KVM_CREATE_DEVICE, &cd), 0, "KVM_CREATE_DEVICE(VFIO)");
	kd = cd.fd;
	a.attr = KVM_DEV_VFIO_GROUP_ADD;
	expect(io(kd, KVM_HAS_DEVICE_ATTR, &a), 0, "KVM_HAS_DEVICE_ATTR(GROUP_ADD)");
	a.attr = KVM_DEV_VFIO_GROUP_DEL;
	expect(io(kd, KVM_HAS_DEVICE_ATTR, &a), 0, "KVM_HAS_DEVICE_ATTR(GROUP_DEL)");
	a.attr = KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE;
	expect(io(kd, KVM_HAS_DEVICE_ATTR, &a), -ENXIO, "KVM_HAS_DEVICE_ATTR(SET_SPAPR_TCE), not on this arch");

	devnull = open("/dev/null", O_RDWR);
	d = io(g, VFIO_GROUP_GET_DEVICE_FD, UUID);
	a.attr = KVM_DEV_VFIO_GROUP_ADD;
	a.addr = (uintptr_t)&bad;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -EBADF, "GROUP_ADD(-1)");
	a.addr = (uintptr_t)&devnull;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -EINVAL, "GROUP_ADD(/dev/null): not a vfio group");
	a.addr = (uintptr_t)&c;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -EINVAL, "GROUP_ADD(container fd)");
	fd = d;
	a.addr = (uintptr_t)&fd;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -EINVAL, "GROUP_ADD(device fd)");
	a.addr = 0;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -EFAULT, "GROUP_ADD(NULL)");
	a.attr = KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE;
	a.addr = (uintptr_t)&g;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -ENXIO, "GROUP_SET_SPAPR_TCE");
	a.group = 99;
	a.attr = KVM_DEV_VFIO_GROUP_ADD;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -ENXIO, "attribute group 99");
	a.group = KVM_DEV_VFIO_GROUP;
	if (d >= 0)
		close(d);	/* opened before the ADD: no VM for it */

	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), 0, "GROUP_ADD(group)");
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -EEXIST, "GROUP_ADD(group) again");
	opens = vtm_stat("opens");
	kvm_opens = vtm_stat("opens_with_kvm");
	closes_kvm = vtm_stat("closes_with_kvm");
	d = io(g, VFIO_GROUP_GET_DEVICE_FD, UUID);
	expect(d, EXPECT_FD, "GET_DEVICE_FD with the group added to a VM");
	expect(vtm_stat("opens"), opens + 1, "the driver's open_device() ran");
	expect(vtm_stat("opens_with_kvm"), kvm_opens + 1, "... with device->kvm set");
	expect(vtm_stat("last_open_kvm"), 1, "last_open_kvm");

	a.attr = KVM_DEV_VFIO_GROUP_DEL;
	a.addr = (uintptr_t)&devnull;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -ENOENT, "GROUP_DEL(/dev/null)");
	a.addr = (uintptr_t)&bad;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -EBADF, "GROUP_DEL(-1)");
	a.addr = (uintptr_t)&g;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), 0, "GROUP_DEL(group) with the device open");
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), -ENOENT, "GROUP_DEL(group) again");
	if (d >= 0)
		close(d);
	expect(vtm_stat("closes_with_kvm"), closes_kvm + 1, "close_device() still had the VM it opened with");
	expect(vtm_stat("open_now"), 0, "no device open");

	open_without_vm("GROUP_DEL", "opens without a VM");

	/* closing the KVM device drops the group's VM too */
	a.attr = KVM_DEV_VFIO_GROUP_ADD;
	expect(io(kd, KVM_SET_DEVICE_ATTR, &a), 0, "GROUP_ADD(group) once more");
	close(kd);
	open_without_vm("the KVM device fd is closed", "without a VM: the KVM device's release dropped it");
	close(vm);
	open_without_vm("the VM is closed", "opens without a VM");
	close(devnull);
	close(kvm);
}

/* The mdev goes away while its fd is open: the remove waits for the close. */
static void check_remove(void)
{
	int st = 0, done;
	long d;
	pid_t pid;

	d = io(g, VFIO_GROUP_GET_DEVICE_FD, UUID);
	if (!expect(d, EXPECT_FD, "remove: GET_DEVICE_FD"))
		return;
	pid = write_file_child(MDEV_DIR "/remove", "1");
	done = wait_child(pid, &st, 1500);
	ok(done == 0, "remove: blocks while the device fd is open");
	close(d);
	if (!done)
		done = wait_child(pid, &st, 30000);
	ok(done == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "remove: completes once the fd is closed (%#x)", st);
	if (done != 1)
		kill_child(pid, &st);
	ok(access(MDEV_DIR, F_OK) && errno == ENOENT, "remove: the mdev is gone");
	expect(group_flags(g), -ENODEV, "remove: the group fd is dead");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, UUID), -ENODEV, "remove: no device to get");
	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EINVAL, "remove: the group was detached");
	{
		struct vfio_iommu_type1_info ii = { .argsz = sizeof(ii) };

		expect(io(c, VFIO_IOMMU_GET_INFO, &ii), -EINVAL, "remove: the container lost its only group");
	}
}


#define CCW_UUID	"c0f0c0f0-0000-4000-8000-00000000cc01"
#define CCW_IOVA	0x10000ULL

/* The first I/O subchannel (type 0): the guest's virtio-ccw device. */
static int find_io_subchannel(char *sch, size_t len)
{
	static const char *const type[] = { "type" };
	static const long io_subchannel[] = { 0 };

	return bus_find("css", type, io_subchannel, 1, sch, len);
}

static long ccw_start(int d, uint32_t cpa, struct ccw_io_region *r)
{
	uint32_t w;

	memset(r, 0, sizeof(*r));
	w = htobe32(0xc0ffee01);			/* intparm */
	memcpy(r->orb_area, &w, 4);
	w = htobe32(0x00800000 | 0x00400000);	/* fmt 1, prefetch */
	memcpy(r->orb_area + 4, &w, 4);
	w = htobe32(cpa);
	memcpy(r->orb_area + 8, &w, 4);
	w = htobe32(0x4 << 12);			/* scsw fctl: start */
	memcpy(r->scsw_area, &w, 4);
	return rv(pwrite(d, r, sizeof(*r), VFIO_CCW_CONFIG_REGION_INDEX));
}

/* vfio_ccw: the emulated-IOMMU pinning path on s390x. */
static void check_ccw(void)
{
	struct vfio_device_info di = { .argsz = sizeof(di) };
	struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m) };
	struct ccw_io_region r;
	char sch[64], path[PATH_MAX], drv[NAME_MAX + 1], big[256];
	int cg, cc, efd, grp;
	uint8_t *mem;
	long d;
	ssize_t n;

	if (!is_s390x()) {
		skip("vfio_ccw is s390x only", "vfio_ccw pinning path");
		return;
	}
	if (!ok(modprobe("vfio_ccw") == 0, "modprobe vfio_ccw") ||
	    !ok(find_io_subchannel(sch, sizeof(sch)), "an I/O subchannel"))
		return;
	diag("subchannel %s", sch);
	snprintf(path, sizeof(path), "/sys/bus/css/devices/%s/driver/unbind", sch);
	write_file(path, sch);
	snprintf(path, sizeof(path), "/sys/bus/css/devices/%s/driver_override", sch);
	ok(!write_file(path, "vfio_ccw"), "driver_override vfio_ccw");
	ok(!write_file("/sys/bus/css/drivers/vfio_ccw/bind", sch), "bind %s to vfio_ccw", sch);
	snprintf(path, sizeof(path), "/sys/bus/css/devices/%s", sch);
	dev_driver(path, drv, sizeof(drv));
	if (!ok(!strcmp(drv, "vfio_ccw"), "%s is on vfio_ccw (%s)", sch, drv))
		return;
	snprintf(path, sizeof(path), "/sys/bus/css/devices/%s/mdev_supported_types/vfio_ccw-io/create", sch);
	if (!ok(!write_file(path, CCW_UUID), "create the vfio_ccw mdev"))
		return;
	grp = mdev_group(CCW_UUID);
	cg = open_group(grp);
	cc = open_container();
	expect(group_flags(cg), VFIO_GROUP_FLAGS_VIABLE, "ccw group viable");
	expect(io(cg, VFIO_GROUP_SET_CONTAINER, &cc), 0, "ccw: SET_CONTAINER");
	expect(ion(cc, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "ccw: SET_IOMMU");
	d = io(cg, VFIO_GROUP_GET_DEVICE_FD, CCW_UUID);
	if (!expect(d, EXPECT_FD, "ccw: GET_DEVICE_FD"))
		goto out;
	expect(io(d, VFIO_DEVICE_GET_INFO, &di), 0, "ccw: GET_INFO");
	ok(di.flags == (VFIO_DEVICE_FLAGS_CCW | VFIO_DEVICE_FLAGS_RESET) && di.num_regions == 4 &&
	   di.num_irqs == VFIO_CCW_NUM_IRQS, "ccw: flags %#x, %u regions, %u irqs (stock: %#x, 4, %d)",
	   di.flags, di.num_regions, di.num_irqs, VFIO_DEVICE_FLAGS_CCW | VFIO_DEVICE_FLAGS_RESET,
	   VFIO_CCW_NUM_IRQS);
	for (unsigned int i = 0; i < 5; i++) {
		struct vfio_region_info *ri = (struct vfio_region_info *)big;
		struct vfio_region_info_cap_type *ct;
		long ret;

		memset(big, 0, sizeof(big));
		ri->argsz = sizeof(*ri);
		ri->index = i;
		ret = io(d, VFIO_DEVICE_GET_REGION_INFO, ri);
		if (i == 4) {
			expect(ret, -EINVAL, "ccw: region %u info", i);
			continue;
		}
		expect(ret, 0, "ccw: region %u info", i);
		if (i == 0) {
			ok(ri->size == sizeof(struct ccw_io_region) && ri->flags == 3,
			   "ccw: I/O region size %llu flags %#x", (unsigned long long)ri->size, ri->flags);
			continue;
		}
		ok((ri->flags & VFIO_REGION_INFO_FLAG_CAPS) && !ri->cap_offset &&
		   ri->argsz == sizeof(*ri) + sizeof(*ct),
		   "ccw: region %u flags %#x, argsz %u asks for its type cap", i, ri->flags, ri->argsz);
		ri->argsz = sizeof(big);
		expect(io(d, VFIO_DEVICE_GET_REGION_INFO, ri), 0, "ccw: region %u info with room", i);
		ct = (struct vfio_region_info_cap_type *)(big + ri->cap_offset);
		ok(ri->cap_offset == sizeof(*ri) && ct->header.id == VFIO_REGION_INFO_CAP_TYPE &&
		   ct->header.version == 1 && !ct->header.next && ct->type == VFIO_REGION_TYPE_CCW &&
		   ct->subtype == i, "ccw: region %u cap at %u: id %u v%u type %u subtype %u", i,
		   ri->cap_offset, ct->header.id, ct->header.version, ct->type, ct->subtype);
	}
	efd = eventfd(0, EFD_NONBLOCK);
	expect(set_irq_eventfds(d, VFIO_CCW_IO_IRQ_INDEX, 0, 1, &efd), 0, "ccw: SET_IRQS(I/O, eventfd)");
	expect(set_irq_eventfds(d, VFIO_CCW_IO_IRQ_INDEX, 0, 2, (int[]){ efd, efd }), -EINVAL,
	       "ccw: SET_IRQS(I/O) with 2 eventfds for 1 vector");

	mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memset(mem, 0, 4096);
	/* format-1 CCW: SENSE ID, SLI, 8 bytes into IOVA + 0x100 */
	mem[0] = 0xe4;
	mem[1] = 0x20;
	mem[3] = 8;
	*(uint32_t *)(mem + 4) = htobe32(CCW_IOVA + 0x100);
	m.vaddr = (uintptr_t)mem;
	m.iova = CCW_IOVA;
	m.size = 4096;
	m.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	expect(io(cc, VFIO_IOMMU_MAP_DMA, &m), 0, "ccw: MAP_DMA the channel program");

	/* a CCW address nothing maps: pinning it fails in type1 */
	expect(ccw_start(d, CCW_IOVA + 0x10000, &r), -EINVAL, "ccw: start at an unmapped IOVA (pin fails)");
	expect(ccw_start(d, CCW_IOVA, &r), sizeof(r), "ccw: start SENSE ID (CCW and data pinned)");
	ok(wait_readable(efd, 10000), "ccw: the I/O interrupt reaches the eventfd");
	n = pread(d, &r, sizeof(r), VFIO_CCW_CONFIG_REGION_INDEX);
	expect(n, sizeof(r), "ccw: read the I/O region");
	ok(r.irb_area[8] == 0x0c && r.irb_area[9] == 0, "ccw: device end, channel end (dstat %#x cstat %#x)",
	   r.irb_area[8], r.irb_area[9]);
	ok(mem[0x100] == 0xff && mem[0x101] == 0x38 && mem[0x102] == 0x32,
	   "ccw: SENSE ID data in the mapped page (%02x %02x%02x: virtio control unit 3832)",
	   mem[0x100], mem[0x101], mem[0x102]);
	{
		struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = CCW_IOVA, .size = 4096 };

		expect(io(cc, VFIO_IOMMU_UNMAP_DMA, &u), 0, "ccw: UNMAP_DMA after the I/O (pages unpinned)");
		expect(u.size, 4096, "ccw: unmapped one page");
	}
	expect(set_irq_none(d, VFIO_CCW_IO_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0), 0,
	       "ccw: SET_IRQS(I/O) DATA_NONE, count 0");
	expect(set_irq_none(d, VFIO_CCW_IO_IRQ_INDEX, VFIO_IRQ_SET_ACTION_MASK, 0, 1), -EINVAL,
	       "ccw: SET_IRQS(I/O) mask (trigger only)");
	close(d);
	close(efd);
	munmap(mem, 4096);
out:
	close(cg);
	close(cc);
	ok(!mdev_remove(CCW_UUID), "ccw: remove the mdev");
}

int main(void)
{
	long d, d2, opens, closes, fails;
	int ret;

	/* The test driver is what most of this test checks through. */
	if (modprobe("vfio_test_mdev"))
		tap_skip_all("vfio_test_mdev does not load (not built for this kernel?): no emulated-IOMMU device");
	conf_start(CHECKS_AMD64, CHECKS_S390X);
	ok(modprobe("vfio_iommu_type1") == 0, "modprobe vfio_iommu_type1");
	check_flavour();
	check_ccw();
	ok(1, "modprobe vfio_test_mdev");
	ret = mdev_create(UUID);
	if (!ok(!ret, "create mdev %s (%s)", UUID, errname(ret)))
		return tap_done();
	group = mdev_group(UUID);
	diag("mdev group %d", group);
	g = open_group(group);
	if (!expect(rv(g), EXPECT_FD, "open /dev/vfio/%d", group))
		return tap_done();
	expect(rv(open_group(group)), -EBUSY, "a second open of the emulated group");
	expect(group_flags(g), VFIO_GROUP_FLAGS_VIABLE, "emulated group: viable");
	c = open_container();
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, UUID), -EINVAL, "GET_DEVICE_FD without a container");
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), 0, "SET_CONTAINER");
	expect(group_flags(g), VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET, "container set");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, UUID), -EINVAL, "GET_DEVICE_FD before SET_IOMMU");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "SET_IOMMU(TYPE1v2) with an emulated group");
	check_container();

	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, "C0F0C0F0-0000-4000-8000-00000000C0F1"), -ENODEV,
	       "GET_DEVICE_FD(upper-case UUID)");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, UUID " "), -ENODEV, "GET_DEVICE_FD(UUID + blank): no match op");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, "c0f0c0f0"), -ENODEV, "GET_DEVICE_FD(a prefix)");

	opens = vtm_stat("opens");
	closes = vtm_stat("closes");
	d = io(g, VFIO_GROUP_GET_DEVICE_FD, UUID);
	if (!expect(d, EXPECT_FD, "GET_DEVICE_FD(%s)", UUID))
		return tap_done();
	expect(vtm_stat("opens"), opens + 1, "first open reaches open_device()");
	expect(vtm_stat("last_open_kvm"), 0, "no VM");
	d2 = io(g, VFIO_GROUP_GET_DEVICE_FD, UUID);
	expect(d2, EXPECT_FD, "a second device fd");
	expect(vtm_stat("opens"), opens + 1, "the second open does not");
	check_device_fd(d);
	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EBUSY, "UNSET_CONTAINER with devices open");
	close(d);
	expect(vtm_stat("closes"), closes, "closing one of two fds does not reach close_device()");
	if (d2 >= 0)
		close(d2);
	expect(vtm_stat("closes"), closes + 1, "the last close does");
	expect(vtm_stat("open_now"), 0, "nothing open in the driver");

	/* a failing open_device() leaves the group as it was */
	fails = vtm_stat("open_failures");
	ok(!vtm_set("fail_open", 1), "fail_open=1");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, UUID), -EIO, "GET_DEVICE_FD when open_device() fails");
	expect(vtm_stat("open_failures"), fails + 1, "the driver failed one open");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, UUID), -EIO, "and again");
	ok(!vtm_set("fail_open", 0), "fail_open=0");
	d = io(g, VFIO_GROUP_GET_DEVICE_FD, UUID);
	expect(d, EXPECT_FD, "GET_DEVICE_FD works after the failures");
	if (d >= 0)
		close(d);
	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), 0, "UNSET_CONTAINER: no user left behind by them");
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), 0, "SET_CONTAINER again");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "SET_IOMMU again");

	check_kvm();
	if (!is_s390x())
		skip("vfio_test_mdev has no pin/unpin or dma_rw knob (vfio_ccw covers pinning on s390x)",
		     "vfio_pin_pages/vfio_unpin_pages/vfio_dma_rw");
	check_remove();
	close(g);
	close(c);
	return tap_done();
}
