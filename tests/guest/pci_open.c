// SPDX-License-Identifier: GPL-2.0-only
/*
 * pci_open: the type1 container/group/device path of vfio on a real (emulated)
 * PCI device. Binds QEMU's edu device (1234:11e8) and the rest of its IOMMU
 * group to vfio-pci, then walks the uAPI step by step, each step a TAP line
 * that carries errno on failure. Guest test: static, TAP on stdout.
 */
#include "tap.h"
#include <endian.h>

#define NSTEPS		32	/* the STEP()s below */
#define DMA_IOVA	0x10000000ULL
#define DMA_SIZE	(1UL << 20)

/* A step's check; a failed one shows its errno and stops the test. */
static void step(int pass, int err, const char *what)
{
	char why[128] = "";

	if (!pass && err)
		snprintf(why, sizeof(why), ": %s (errno %d)", strerror(err), err);
	if (ok(pass, "%s%s", what, why))
		return;
	/* the later steps depend on the failed one */
	diag("bailing out after %d failed step(s)", tap_failed);
	exit(tap_done());
}

/* errno is reset after each step, so a failed step shows its own errno. */
#define STEP(cond, ...)						\
	do {							\
		int ok_ = !!(cond);				\
		int err_ = errno;				\
		char what_[256];				\
								\
		snprintf(what_, sizeof(what_), __VA_ARGS__);	\
		step(ok_, err_, what_);				\
		errno = 0;					\
	} while (0)

static int bind_group(int group, int *count)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices", group);
	d = opendir(path);
	if (!d)
		return -1;
	*count = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		ret = pci_bind(e->d_name, "vfio-pci");
		if (ret) {
			diag("cannot bind %s to vfio-pci: %s", e->d_name, strerror(-ret));
			errno = -ret;
			ret = -1;
			break;
		}
		(*count)++;
	}
	closedir(d);
	return ret;
}

int main(void)
{
	struct vfio_group_status gstatus = { .argsz = sizeof(gstatus) };
	struct vfio_iommu_type1_info iinfo = { .argsz = sizeof(iinfo) };
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap) };
	struct vfio_device_info dinfo = { .argsz = sizeof(dinfo) };
	struct vfio_region_info cfg = { .argsz = sizeof(cfg) };
	struct vfio_region_info bar0 = { .argsz = sizeof(bar0) };
	char bdf[NAME_MAX + 1], path[PATH_MAX], drv[64];
	int container, group_fd, device, group, members = 0, iommu, ret;
	uint16_t ids[2];
	uint32_t ident;
	ssize_t n;
	void *buf;

	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(NSTEPS);

	STEP(pci_find(EDU_VENDOR, EDU_DEVICE, bdf, sizeof(bdf)), "found the edu device %04x:%04x",
	     EDU_VENDOR, EDU_DEVICE);
	diag("edu is %s", bdf);

	ret = modprobe("vfio_pci");
	STEP(ret == 0, "modprobe vfio_pci (status %d)", ret);

	group = pci_group(bdf);
	STEP(group >= 0, "%s has an IOMMU group", bdf);
	diag("IOMMU group %d", group);

	STEP(!bind_group(group, &members), "bound IOMMU group %d to vfio-pci", group);
	pci_driver(bdf, drv, sizeof(drv));
	diag("%d device(s) in the group, %s is bound to %s", members, bdf, drv);

	container = open_container();
	STEP(container >= 0, "open /dev/vfio/vfio");

	ret = ioctl(container, VFIO_GET_API_VERSION);
	STEP(ret == VFIO_API_VERSION, "VFIO_GET_API_VERSION is %d (got %d)", VFIO_API_VERSION, ret);

	ret = ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU);
	STEP(ret == 1, "VFIO_CHECK_EXTENSION(VFIO_TYPE1_IOMMU) (got %d)", ret);
	iommu = ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1 ?
		VFIO_TYPE1v2_IOMMU : VFIO_TYPE1_IOMMU;
	diag("using %s", iommu == VFIO_TYPE1v2_IOMMU ? "VFIO_TYPE1v2_IOMMU" : "VFIO_TYPE1_IOMMU");

	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	group_fd = open_group(group);
	STEP(group_fd >= 0, "open %s", path);

	ret = ioctl(group_fd, VFIO_GROUP_GET_STATUS, &gstatus);
	STEP(!ret && (gstatus.flags & VFIO_GROUP_FLAGS_VIABLE),
	     "VFIO_GROUP_GET_STATUS: viable (flags %#x)", gstatus.flags);
	STEP(!(gstatus.flags & VFIO_GROUP_FLAGS_CONTAINER_SET),
	     "group has no container yet");

	ret = ioctl(group_fd, VFIO_GROUP_SET_CONTAINER, &container);
	STEP(!ret, "VFIO_GROUP_SET_CONTAINER");
	ret = ioctl(group_fd, VFIO_GROUP_GET_STATUS, &gstatus);
	STEP(!ret && (gstatus.flags & VFIO_GROUP_FLAGS_CONTAINER_SET),
	     "VFIO_GROUP_GET_STATUS: container set (flags %#x)", gstatus.flags);

	ret = ioctl(container, VFIO_SET_IOMMU, iommu);
	STEP(!ret, "VFIO_SET_IOMMU(%d)", iommu);

	ret = ioctl(container, VFIO_IOMMU_GET_INFO, &iinfo);
	STEP(!ret && (iinfo.flags & VFIO_IOMMU_INFO_PGSIZES) && iinfo.iova_pgsizes,
	     "VFIO_IOMMU_GET_INFO (page sizes %#llx)", (unsigned long long)iinfo.iova_pgsizes);

	buf = mmap(NULL, DMA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	STEP(buf != MAP_FAILED, "mmap a %lu byte buffer", DMA_SIZE);
	memset(buf, 0x5a, DMA_SIZE);

	map.vaddr = (uintptr_t)buf;
	map.iova = DMA_IOVA;
	map.size = DMA_SIZE;
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	ret = ioctl(container, VFIO_IOMMU_MAP_DMA, &map);
	STEP(!ret, "VFIO_IOMMU_MAP_DMA iova %#llx size %#lx", DMA_IOVA, DMA_SIZE);

	device = ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, bdf);
	STEP(device >= 0, "VFIO_GROUP_GET_DEVICE_FD(%s)", bdf);

	ret = ioctl(device, VFIO_DEVICE_GET_INFO, &dinfo);
	STEP(!ret, "VFIO_DEVICE_GET_INFO");
	STEP(dinfo.flags & VFIO_DEVICE_FLAGS_PCI, "device is PCI (flags %#x)", dinfo.flags);
	STEP(dinfo.num_regions >= VFIO_PCI_NUM_REGIONS, "%u regions (>= %d)",
	     dinfo.num_regions, VFIO_PCI_NUM_REGIONS);
	STEP(dinfo.num_irqs >= VFIO_PCI_NUM_IRQS, "%u irqs (>= %d)", dinfo.num_irqs, VFIO_PCI_NUM_IRQS);

	cfg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	ret = ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &cfg);
	STEP(!ret && cfg.size >= 256 && (cfg.flags & VFIO_REGION_INFO_FLAG_READ),
	     "config region info (size %#llx flags %#x)", (unsigned long long)cfg.size, cfg.flags);

	n = pread(device, ids, sizeof(ids), cfg.offset);
	STEP(n == sizeof(ids), "read the config space IDs");
	STEP(le16toh(ids[0]) == EDU_VENDOR && le16toh(ids[1]) == EDU_DEVICE,
	     "config space says %04x:%04x", le16toh(ids[0]), le16toh(ids[1]));

	bar0.index = VFIO_PCI_BAR0_REGION_INDEX;
	ret = ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &bar0);
	STEP(!ret && bar0.size && (bar0.flags & VFIO_REGION_INFO_FLAG_READ),
	     "BAR0 region info (size %#llx flags %#x)", (unsigned long long)bar0.size, bar0.flags);
	n = pread(device, &ident, sizeof(ident), bar0.offset);
	STEP(n == sizeof(ident) && (le32toh(ident) & 0xff) == 0xed,
	     "edu identification register %#x", le32toh(ident));

	unmap.iova = DMA_IOVA;
	unmap.size = DMA_SIZE;
	ret = ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap);
	STEP(!ret && unmap.size == DMA_SIZE, "VFIO_IOMMU_UNMAP_DMA (unmapped %#llx)",
	     (unsigned long long)unmap.size);
	munmap(buf, DMA_SIZE);

	STEP(!close(device), "close the device");
	ret = ioctl(group_fd, VFIO_GROUP_UNSET_CONTAINER);
	STEP(!ret, "VFIO_GROUP_UNSET_CONTAINER");
	STEP(!close(group_fd), "close the group");
	STEP(!close(container), "close the container");

	/* Everything is released: the group can be opened again. */
	group_fd = open_group(group);
	STEP(group_fd >= 0, "reopen %s after release", path);
	close(group_fd);

	return tap_done();
}
