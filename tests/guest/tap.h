/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tap.h: shared helpers of the C programs of tests/guest: TAP output,
 * ioctl results as values or -errno, sysfs and PCI binding helpers, a group
 * in a type1 container, DMA maps, and what the uAPI conformance tests
 * (conf_*.c) have in common.
 *
 * The conformance tests are differential: every expected value is what the
 * stock 6.1 vfio stack returns, so the same program passes on the stock
 * vfio.ko and must pass on ours. Each check prints what it got on failure.
 * Header-only (static functions), included by one program each.
 */
#ifndef CONF_TAP_H
#define CONF_TAP_H

#define _GNU_SOURCE
/* Paths and names are bounded by their buffers on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>

#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8
#define E1000E_VENDOR	0x8086
#define E1000E_DEVICE	0x10d3
#define VRNG_VENDOR	0x1af4
#define VRNG_DEVICE	0x1005

static int tap_n;
static int tap_failed;
static int tap_planned = -1;

static inline void tap_vline(int ok, const char *directive, const char *fmt, va_list ap)
{
	tap_n++;
	if (!ok)
		tap_failed++;
	printf("%s %d - ", ok ? "ok" : "not ok", tap_n);
	vprintf(fmt, ap);
	if (directive)
		printf(" # %s", directive);
	printf("\n");
	fflush(stdout);
}

/* One check: ok when cond is true. */
static inline int __attribute__((format(printf, 2, 3))) ok(int cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vline(cond, NULL, fmt, ap);
	va_end(ap);
	return cond;
}

/* A case that does not apply here: "ok N - what # SKIP why". */
static inline void __attribute__((format(printf, 2, 3))) skip(const char *why, const char *fmt, ...)
{
	char d[256];
	va_list ap;

	snprintf(d, sizeof(d), "SKIP %s", why);
	va_start(ap, fmt);
	tap_vline(1, d, fmt, ap);
	va_end(ap);
}

static inline void __attribute__((format(printf, 1, 2))) diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/*
 * The plan, before the first result: the number of results the test will
 * print. The harness fails a test whose plan is missing, comes late or
 * does not match what ran, so a test cut short cannot pass.
 */
static inline void tap_plan(int n)
{
	printf("1..%d\n", n);
	fflush(stdout);
	tap_planned = n;
}

/*
 * The test cannot run here (what it checks is missing): "1..0 # SKIP why"
 * instead of a plan, and exit 0. The harness counts it as a skipped test.
 */
static inline void __attribute__((noreturn, format(printf, 1, 2))) tap_skip_all(const char *fmt, ...)
{
	va_list ap;

	printf("1..0 # SKIP ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(0);
}

/*
 * A step that all the rest needs failed: "not ok N - what", then "Bail out!"
 * with errno as the step left it, and exit status 1.
 */
static inline void __attribute__((noreturn, format(printf, 1, 2))) bail(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	tap_vline(0, NULL, fmt, ap);
	va_end(ap);
	printf("Bail out! %s\n", strerror(err));
	fflush(stdout);
	exit(1);
}

/* The vfio.ko flavour under test (VFIO_MODE): 1 ours, 0 stock, else bail out. */
static inline int mode_is_ours(void)
{
	const char *mode = getenv("VFIO_MODE");

	if (!mode || (strcmp(mode, "stock") && strcmp(mode, "ours")))
		bail("VFIO_MODE must be stock or ours, not '%s'", mode ? mode : "");
	return !strcmp(mode, "ours");
}

static inline const char *errname(long v)
{
	static char buf[32];

	switch (v) {
	case -EPERM: return "EPERM";
	case -ENOENT: return "ENOENT";
	case -EIO: return "EIO";
	case -E2BIG: return "E2BIG";
	case -EBADF: return "EBADF";
	case -EAGAIN: return "EAGAIN";
	case -ENOMEM: return "ENOMEM";
	case -EFAULT: return "EFAULT";
	case -EBUSY: return "EBUSY";
	case -EEXIST: return "EEXIST";
	case -ENODEV: return "ENODEV";
	case -EINVAL: return "EINVAL";
	case -ENOSPC: return "ENOSPC";
	case -ENOTTY: return "ENOTTY";
	case -ENXIO: return "ENXIO";
	case -ERANGE: return "ERANGE";
	case -EOVERFLOW: return "EOVERFLOW";
	case -EOPNOTSUPP: return "EOPNOTSUPP";
	case -ENAMETOOLONG: return "ENAMETOOLONG";
	}
	if (v < 0 && v > -4096)
		snprintf(buf, sizeof(buf), "errno %ld", -v);
	else
		snprintf(buf, sizeof(buf), "%ld", v);
	return buf;
}

/*
 * The result of a call that returns -1/errno: the value or -errno.
 * want >= 0 matches any value >= 0 when want is EXPECT_FD.
 */
#define EXPECT_FD	(-100000L)

static inline long rv(long r)
{
	return r < 0 ? -errno : r;
}

static inline long io(int fd, unsigned long req, const void *arg)
{
	return rv(ioctl(fd, req, arg));
}

/* An ioctl whose argument is a number, not a pointer. */
static inline long ion(int fd, unsigned long req, unsigned long arg)
{
	return rv(ioctl(fd, req, arg));
}

/* Check a value-or-errno against the stock one; prints what it got. */
static inline int __attribute__((format(printf, 3, 4)))
expect(long got, long want, const char *fmt, ...)
{
	char what[512], w[32];
	int good = want == EXPECT_FD ? got >= 0 : got == want;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (want == EXPECT_FD)
		snprintf(w, sizeof(w), "fd");
	else
		snprintf(w, sizeof(w), "%s", errname(want));
	if (good)
		return ok(1, "%s = %s", what, w);
	ok(0, "%s = %s", what, w);
	diag("  got %s", errname(got));
	return 0;
}

/* The exit status: 0 when every planned check ran and passed. */
static inline int tap_done(void)
{
	if (tap_failed)
		printf("# %d of %d checks failed\n", tap_failed, tap_n);
	if (tap_n != tap_planned)
		printf("# planned %d checks, ran %d\n", tap_planned, tap_n);
	fflush(stdout);
	return tap_failed || tap_n != tap_planned ? 1 : 0;
}

/* ARCH from the harness, else the machine's. */
static inline const char *test_arch(void)
{
	static struct utsname u;
	const char *a = getenv("ARCH");

	if (a && *a && strcmp(a, "unknown"))
		return a;
	uname(&u);
	return strcmp(u.machine, "x86_64") ? u.machine : "amd64";
}

static inline int is_s390x(void)
{
	return !strcmp(test_arch(), "s390x");
}

static inline int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	err = errno;
	close(fd);
	if (n < 0)
		return -err;
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

static inline int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

static inline long read_num(const char *path)
{
	char buf[64];

	if (read_file(path, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 0);
}

/* Runs a program, returns its exit status (-1 if it did not exit). */
static inline int run_cmd(const char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (!pid) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			close(fd);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline int modprobe(const char *mod)
{
	const char *argv[] = { "modprobe", mod, NULL };

	return run_cmd(argv);
}

/* The last component of what the symlink path points to: 0, or -errno. */
static inline int link_name(const char *path, char *name, size_t len)
{
	char link[PATH_MAX];
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	char *p;

	if (n < 0)
		return -errno;
	link[n] = '\0';
	p = strrchr(link, '/');
	snprintf(name, len, "%s", p ? p + 1 : link);
	return 0;
}

/* The IOMMU group number of a device (its sysfs directory), or -1. */
static inline int group_of(const char *devdir)
{
	char path[PATH_MAX], name[NAME_MAX + 1];

	snprintf(path, sizeof(path), "%s/iommu_group", devdir);
	if (link_name(path, name, sizeof(name)))
		return -1;
	return atoi(name);
}

static inline int pci_group(const char *bdf)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", bdf);
	return group_of(dir);
}

/*
 * The first device on /sys/bus/BUS whose n sysfs attributes attr[] read as
 * the numbers val[]: its name in name. 1 found, 0 not.
 */
static inline int bus_find(const char *bus, const char *const attr[], const long val[], int n,
			   char *name, size_t len)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *e;
	int found = 0, i;
	DIR *d;

	snprintf(dir, sizeof(dir), "/sys/bus/%s/devices", bus);
	d = opendir(dir);
	while (d && !found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		for (i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/%s/%s", dir, e->d_name, attr[i]);
			if (read_num(path) != val[i])
				break;
		}
		if (i < n)
			continue;
		snprintf(name, len, "%s", e->d_name);
		found = 1;
	}
	if (d)
		closedir(d);
	return found;
}

/* The first PCI device with these IDs: its name in bdf. */
static inline int pci_find(unsigned int ven, unsigned int dev, char *bdf, size_t len)
{
	static const char *const ids[] = { "vendor", "device" };
	const long val[] = { ven, dev };

	return bus_find("pci", ids, val, 2, bdf, len);
}

/* The driver a device (its sysfs directory) is bound to, "" when none. */
static inline void dev_driver(const char *devdir, char *drv, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/driver", devdir);
	if (link_name(path, drv, len))
		drv[0] = '\0';
}

/* The driver a PCI device is bound to, "" when none. */
static inline void pci_driver(const char *bdf, char *drv, size_t len)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", bdf);
	dev_driver(dir, drv, len);
}

/*
 * Bind a PCI device to driver (driver_override, unbind, drivers_probe);
 * driver "" leaves it unbound. 0 when it ends up bound as asked.
 */
static inline int pci_bind(const char *bdf, const char *driver)
{
	char path[PATH_MAX], drv[64];
	int ret;

	pci_driver(bdf, drv, sizeof(drv));
	if (!strcmp(drv, driver))
		return 0;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	ret = write_file(path, *driver ? driver : "\n");
	if (ret)
		return ret;
	if (drv[0]) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
		ret = write_file(path, bdf);
		if (ret)
			return ret;
	}
	if (!*driver)
		return 0;
	ret = write_file("/sys/bus/pci/drivers_probe", bdf);
	if (ret)
		return ret;
	pci_driver(bdf, drv, sizeof(drv));
	return strcmp(drv, driver) ? -ENODEV : 0;
}

/* Waits up to ms for fd to become readable: 1 readable, 0 timeout. */
static inline int wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do {
		r = poll(&p, 1, ms);
	} while (r < 0 && errno == EINTR);
	return r > 0 && (p.revents & POLLIN);
}

/* waitpid with a timeout: 1 exited (status in *st), 0 still running. */
static inline int wait_child(pid_t pid, int *st, int ms)
{
	for (int i = 0; i < ms / 20 + 1; i++) {
		pid_t r = waitpid(pid, st, WNOHANG);

		if (r == pid)
			return 1;
		if (r < 0)
			return -1;
		usleep(20000);
	}
	return 0;
}

/*
 * Writes s to path in a child process, for a write that blocks (a device
 * removal waiting for a close): its pid. The child closes every fd but
 * stdio first: an inherited device fd would keep the device busy forever.
 */
static inline pid_t write_file_child(const char *path, const char *s)
{
	pid_t pid = fork();

	if (!pid) {
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		_exit(write_file(path, s) ? 1 : 0);
	}
	return pid;
}

/* A child wait_child() did not see exit: killed and reaped. */
static inline void kill_child(pid_t pid, int *st)
{
	kill(pid, SIGKILL);
	wait_child(pid, st, 5000);
}

static inline int open_container(void)
{
	return open("/dev/vfio/vfio", O_RDWR);
}

static inline int open_group(int group)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	return open(path, O_RDWR);
}

static inline long group_flags(int gfd)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	long r = io(gfd, VFIO_GROUP_GET_STATUS, &st);

	return r < 0 ? r : (long)st.flags;
}

/*
 * Opens the group number group and a container, puts the group in it and
 * sets the type1 IOMMU (v2 where the container offers it), the way QEMU
 * does: 0 with the fds in *cfd and *gfd, or -1 with errno set and *what
 * naming the step that failed (what it opened stays open).
 */
static inline int group_attach(int group, int *cfd, int *gfd, const char **what)
{
	long flags, iommu;

	*gfd = -1;
	*what = "open /dev/vfio/vfio";
	*cfd = open_container();
	if (*cfd < 0)
		return -1;
	*what = "open the group";
	*gfd = open_group(group);
	if (*gfd < 0)
		return -1;
	*what = "group not viable";
	flags = group_flags(*gfd);
	if (flags < 0 || !(flags & VFIO_GROUP_FLAGS_VIABLE)) {
		errno = flags < 0 ? -flags : EBUSY;
		return -1;
	}
	*what = "VFIO_GROUP_SET_CONTAINER";
	if (ioctl(*gfd, VFIO_GROUP_SET_CONTAINER, cfd))
		return -1;
	*what = "VFIO_SET_IOMMU";
	iommu = ioctl(*cfd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1 ?
		VFIO_TYPE1v2_IOMMU : VFIO_TYPE1_IOMMU;
	return ioctl(*cfd, VFIO_SET_IOMMU, iommu) ? -1 : 0;
}

/* VFIO_IOMMU_MAP_DMA on container c: 0 or -errno. */
static inline long dma_map(int c, uint64_t iova, uint64_t size, uint64_t vaddr, uint32_t flags)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m), .flags = flags, .vaddr = vaddr, .iova = iova, .size = size,
	};

	return io(c, VFIO_IOMMU_MAP_DMA, &m);
}

/* VFIO_IOMMU_UNMAP_DMA on container c: the size unmapped, or -errno. */
static inline long dma_unmap(int c, uint64_t iova, uint64_t size, uint32_t flags)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u), .flags = flags, .iova = iova, .size = size,
	};
	long r = io(c, VFIO_IOMMU_UNMAP_DMA, &u);

	return r < 0 ? r : (long)u.size;
}

/* VFIO_DEVICE_FEATURE with these flags, argsz and 64 bytes of zeroes behind it. */
static inline long device_feature(int d, unsigned int flags, size_t argsz)
{
	struct {
		struct vfio_device_feature f;
		uint8_t data[64];
	} __attribute__((packed)) buf;

	memset(&buf, 0, sizeof(buf));
	buf.f.argsz = argsz;
	buf.f.flags = flags;
	return io(d, VFIO_DEVICE_FEATURE, &buf);
}

static inline long type1_refcnt(void)
{
	return read_num("/sys/module/vfio_iommu_type1/refcnt");
}

/*
 * The PCI device the tests use on this architecture: QEMU's edu on amd64,
 * the zPCI virtio-rng-pci on s390x. Bound to vfio-pci; its group in *group.
 */
static inline int conf_pci_device(char *bdf, size_t len, int *group)
{
	unsigned int ven = is_s390x() ? VRNG_VENDOR : EDU_VENDOR;
	unsigned int dev = is_s390x() ? VRNG_DEVICE : EDU_DEVICE;

	if (!pci_find(ven, dev, bdf, len))
		return -ENOENT;
	if (pci_bind(bdf, "vfio-pci"))
		return -ENODEV;
	*group = pci_group(bdf);
	return *group < 0 ? -ENOENT : 0;
}

/*
 * The vfio.ko under test is the one the harness booted this guest for
 * (VFIO_MODE, VFIO_SRCVERSION): stock is version 0.3, ours has a version
 * and it is not 0.3, and the loaded module's srcversion is the one of the
 * file the harness packed. One check; call once vfio is loaded.
 */
static inline int check_flavour(void)
{
	const char *mode = getenv("VFIO_MODE");
	const char *want = getenv("VFIO_SRCVERSION");
	char ver[32] = "", src[64] = "";
	int have_ver, good;

	have_ver = !read_file("/sys/module/vfio/version", ver, sizeof(ver)) && *ver;
	read_file("/sys/module/vfio/srcversion", src, sizeof(src));
	if (!mode || (strcmp(mode, "stock") && strcmp(mode, "ours")))
		return ok(0, "vfio.ko flavour: VFIO_MODE must be stock or ours, not '%s'", mode ? mode : "");
	good = have_ver && !strcmp(mode, "stock") == !strcmp(ver, "0.3") &&
	       (!want || !*want || !strcmp(src, want));
	return ok(good, "vfio.ko is the %s one (version %s, srcversion %s; the harness packed %s)", mode,
		  have_ver ? ver : "MISSING", *src ? src : "MISSING", want && *want ? want : "(not told)");
}

/*
 * A conformance test starts: line-buffered TAP, its plan (the checks it
 * makes on amd64 and on s390x: the guests have different devices, and the
 * checks a guest cannot make are skips) and where it runs.
 */
static inline void conf_start(int checks_amd64, int checks_s390x)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(is_s390x() ? checks_s390x : checks_amd64);
	diag("arch %s, mode %s", test_arch(), getenv("VFIO_MODE") ? getenv("VFIO_MODE") : "?");
}

/*
 * vfio-pci loaded, the flavour checked and the test's PCI device bound to
 * it (conf_pci_device()), each a check: 0, or the failing -errno.
 */
static inline int conf_pci_setup(char *bdf, size_t len, int *group)
{
	int ret;

	ok(modprobe("vfio_pci") == 0, "modprobe vfio_pci");
	check_flavour();
	ret = conf_pci_device(bdf, len, group);
	if (!ok(!ret, "a PCI device for the tests bound to vfio-pci (%s)", errname(ret)))
		return ret;
	diag("device %s, IOMMU group %d", bdf, *group);
	return 0;
}

/* VFIO_DEVICE_SET_IRQS with count eventfds (fd -1 unassigns one). */
static inline long set_irq_eventfds(int dev, unsigned int index, unsigned int start,
				    unsigned int count, const int *fds)
{
	char buf[sizeof(struct vfio_irq_set) + 32 * sizeof(int32_t)];
	struct vfio_irq_set *s = (struct vfio_irq_set *)buf;

	if (count > 32)
		return -E2BIG;
	memset(buf, 0, sizeof(buf));
	s->argsz = sizeof(*s) + count * sizeof(int32_t);
	s->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	s->index = index;
	s->start = start;
	s->count = count;
	memcpy(s->data, fds, count * sizeof(int32_t));
	return io(dev, VFIO_DEVICE_SET_IRQS, s);
}

/* VFIO_DEVICE_SET_IRQS, no data: flags action (e.g. trigger, count 0). */
static inline long set_irq_none(int dev, unsigned int index, unsigned int action,
				unsigned int start, unsigned int count)
{
	struct vfio_irq_set s = {
		.argsz = sizeof(s),
		.flags = VFIO_IRQ_SET_DATA_NONE | action,
		.index = index,
		.start = start,
		.count = count,
	};

	return io(dev, VFIO_DEVICE_SET_IRQS, &s);
}

#endif /* CONF_TAP_H */
