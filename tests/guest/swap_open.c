// SPDX-License-Identifier: GPL-2.0-only
/*
 * swap_open: helper of the guest test swap.sh (not a test of its own).
 *
 *   swap_open open DEV...          open each device the way QEMU does
 *                                  (container, group, type1 IOMMU, device
 *                                  fd), check it answers, close it again
 *   swap_open hold DEV             the same, but keep everything open and
 *                                  print "holding DEV pid PID" until killed
 *   swap_open modinfo IN OUT K=V   copy the module IN to OUT with its
 *                                  modinfo entry "K=..." replaced by "K=V"
 *                                  (padded with NULs; V no longer than the
 *                                  old value), e.g. another vermagic
 *
 * DEV is a PCI address (/sys/bus/pci/devices/DEV) or an mdev UUID
 * (/sys/bus/mdev/devices/DEV). For a PCI device the vendor ID read through
 * the config space region must match sysfs. One line per device on stdout;
 * errors on stderr with errno; exit 0 only if every step worked.
 */
#include "tap.h"

struct vdev {
	int container;
	int group;
	int device;
};

static int fail(const char *dev, const char *what)
{
	int err = errno;

	fprintf(stderr, "swap_open: %s: %s: %s (errno %d)\n", dev, what,
		strerror(err), err);
	return -1;
}

/* The sysfs directory of DEV and whether it is a PCI device. */
static int dev_dir(const char *dev, char *dir, size_t len, int *pci)
{
	struct stat st;

	snprintf(dir, len, "/sys/bus/pci/devices/%s", dev);
	*pci = 1;
	if (!stat(dir, &st))
		return 0;
	snprintf(dir, len, "/sys/bus/mdev/devices/%s", dev);
	*pci = 0;
	return stat(dir, &st);
}

static int check_pci(const char *dev, const char *dir, int fd)
{
	struct vfio_region_info cfg = { .argsz = sizeof(cfg) };
	char path[PATH_MAX + 16];
	long vendor;
	uint16_t id;

	cfg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &cfg))
		return fail(dev, "VFIO_DEVICE_GET_REGION_INFO(config)");
	if (pread(fd, &id, sizeof(id), cfg.offset) != sizeof(id))
		return fail(dev, "read the config space");
	snprintf(path, sizeof(path), "%s/vendor", dir);
	vendor = read_num(path);
	if (vendor < 0)
		return fail(dev, "read its sysfs vendor");
	/* The config space is little endian on every architecture. */
	id = (uint16_t)(((const uint8_t *)&id)[0] | ((const uint8_t *)&id)[1] << 8);
	if (id != vendor) {
		errno = EIO;
		fprintf(stderr, "swap_open: %s: vendor %#06x through vfio, %#06lx in sysfs\n",
			dev, id, (unsigned long)vendor);
		return -1;
	}
	return 0;
}

static int open_dev(const char *dev, struct vdev *v)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	char dir[PATH_MAX];
	const char *what;
	int pci, group;

	if (dev_dir(dev, dir, sizeof(dir), &pci))
		return fail(dev, "no such PCI device or mdev");
	group = group_of(dir);
	if (group < 0)
		return fail(dev, "no IOMMU group");
	if (group_attach(group, &v->container, &v->group, &what))
		return fail(dev, what);
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		return fail(dev, "VFIO_GET_API_VERSION");
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, dev);
	if (v->device < 0)
		return fail(dev, "VFIO_GROUP_GET_DEVICE_FD");
	if (pci) {
		if (ioctl(v->device, VFIO_DEVICE_GET_INFO, &info))
			return fail(dev, "VFIO_DEVICE_GET_INFO");
		if (!(info.flags & VFIO_DEVICE_FLAGS_PCI)) {
			errno = ENODEV;
			return fail(dev, "not a vfio PCI device");
		}
		if (check_pci(dev, dir, v->device))
			return -1;
	}
	printf("opened %s (%s, group /dev/vfio/%d)\n", dev, pci ? "pci" : "mdev", group);
	return 0;
}

static int close_dev(const char *dev, struct vdev *v)
{
	if (close(v->device))
		return fail(dev, "close the device");
	if (ioctl(v->group, VFIO_GROUP_UNSET_CONTAINER))
		return fail(dev, "VFIO_GROUP_UNSET_CONTAINER");
	if (close(v->group) || close(v->container))
		return fail(dev, "close the group or container");
	return 0;
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

/* Replace the modinfo entry KEY=... of a module file; see the top. */
static int patch_modinfo(const char *in, const char *out, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t klen, newlen, oldlen, size;
	char *buf, *p, *end;
	FILE *f;
	long sz;

	if (!eq) {
		fprintf(stderr, "swap_open: modinfo: '%s' is not KEY=VALUE\n", kv);
		return -1;
	}
	klen = eq - kv + 1;
	newlen = strlen(kv);
	f = fopen(in, "rb");
	if (!f)
		return fail(in, "open");
	if (fseek(f, 0, SEEK_END) || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		return fail(in, "size");
	size = sz;
	buf = malloc(size + 1);
	if (!buf || fread(buf, 1, size, f) != size)
		return fail(in, "read");
	fclose(f);
	buf[size] = '\0';
	end = buf + size;
	/* An entry starts after a NUL: "\0KEY=". */
	for (p = buf + 1; p + klen < end; p++) {
		if (p[-1] == '\0' && !memcmp(p, kv, klen))
			break;
	}
	if (p + klen >= end) {
		errno = ENOENT;
		return fail(in, "no such modinfo entry");
	}
	oldlen = strnlen(p, end - p);
	if (newlen > oldlen) {
		errno = E2BIG;
		return fail(in, "new value longer than the old one");
	}
	memset(p, 0, oldlen);
	memcpy(p, kv, newlen);
	f = fopen(out, "wb");
	if (!f || fwrite(buf, 1, size, f) != size || fclose(f))
		return fail(out, "write");
	free(buf);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: swap_open open DEV... | hold DEV | modinfo IN OUT KEY=VALUE\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct vdev v;
	int i, rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3)
		return usage();
	if (!strcmp(argv[1], "open")) {
		for (i = 2; i < argc; i++) {
			if (open_dev(argv[i], &v) || close_dev(argv[i], &v))
				rc = 1;
		}
		return rc;
	}
	if (!strcmp(argv[1], "hold") && argc == 3) {
		signal(SIGTERM, on_term);
		if (open_dev(argv[2], &v))
			return 1;
		printf("holding %s pid %d\n", argv[2], (int)getpid());
		for (;;)
			pause();
	}
	if (!strcmp(argv[1], "modinfo") && argc == 5)
		return patch_modinfo(argv[2], argv[3], argv[4]) ? 1 : 0;
	return usage();
}
