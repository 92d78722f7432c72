// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvm_ref: the vfio core's own reference on the VM of an open device.
 *
 * The VM is observed through its debugfs directory,
 * /sys/kernel/debug/kvm/<pid>-<vm fd>/, which KVM removes when it destroys
 * the VM, and through the reference counts of kvm.ko and of the vendor module
 * (every live VM holds one on kvm_amd/kvm_intel). The device is a
 * vfio_test_mdev, whose status file says whether it was given a VM.
 *
 * Checks, VFIO_MODE=ours (stock: differential, see each):
 *   1 with kvm.ko unloaded, vfio opens the device (device->kvm NULL)   both
 *   2 vfio.ko depends on no kvm module (modules.dep, modinfo)          both
 *   3 a device opened with a VM holds a VM reference of its own (the
 *     driver sees 3 users: VM fd, KVM VFIO device, vfio) and keeps the
 *     VM alive after the VM fd and the KVM VFIO device fd are closed  ours
 *     stock: the VM is destroyed at once, the device still open (the
 *     driver is told not to touch kvm->lock for that: freed memory)
 *   4 the VM stays while a second fd of the device is open, and goes
 *     away with the last close; kvm.ko and the vendor module are back
 *     at their reference counts from before                           ours
 *     stock: no VM left, counts at baseline
 *   5 an open_device() that fails (fail_open) leaves no reference:
 *     closing the VM's fds destroys it, counts back at baseline        both
 *   6 cleanup: mdev removed, counts at baseline                         both
 * Output is TAP on stdout.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/vfio.h>

#define MDEV_UUID	"5a1d0ec7-0000-4000-8000-0000000ef001"
#define MDEV_PARENT	"/sys/class/mdev_bus/vfio_test_mdev"
#define MDEV_DEVICES	"/sys/bus/mdev/devices"
#define VTM_PARAMS	"/sys/module/vfio_test_mdev/parameters"
#define VTM_STATUS	"/sys/kernel/debug/vfio_test_mdev/status"
#define NTESTS		6

static bool ours;
static int test_no;
static int failures;
static char group_path[300];
static const char *vendor;	/* kvm_amd or kvm_intel */
static int group_fd = -1;

static void ok(bool pass, const char *fmt, ...)
{
	va_list ap;

	if (!pass)
		failures++;
	printf("%s %d - ", pass ? "ok" : "not ok", ++test_no);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void bail(const char *fmt, ...)
{
	va_list ap;

	printf("not ok %d - ", ++test_no);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\nBail out! %s\n", strerror(errno));
	fflush(stdout);
	exit(1);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	return 0;
}

static int read_file(const char *path, char *buf, size_t len)
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
	return 0;
}

static long long vtm_stat(const char *key)
{
	char buf[1024], *p;
	size_t klen = strlen(key);

	if (read_file(VTM_STATUS, buf, sizeof(buf)))
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (!strncmp(p, key, klen) && p[klen] == ' ')
			return strtoll(p + klen + 1, NULL, 10);
	return -1;
}

/* Runs a command, its output to *out (if given); returns its exit code. */
static int run(char *out, size_t len, const char *const argv[])
{
	int pfd[2], st;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	while (out && got + 1 < len &&
	       (n = read(pfd[0], out + got, len - 1 - got)) > 0)
		got += n;
	if (out)
		out[got] = '\0';
	close(pfd[0]);
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int modprobe(const char *opt, const char *name)
{
	const char *argv[] = { "modprobe", "-q", opt, name, NULL };

	if (!*opt) {
		argv[2] = name;
		argv[3] = NULL;
	}
	return run(NULL, 0, argv);
}

static bool module_loaded(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return !access(path, F_OK);
}

/* A module's reference count, -1 when it is not loaded. */
static long refcnt(const char *name)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", name);
	if (read_file(path, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

static void set_knob(const char *knob, int val)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", VTM_PARAMS, knob);
	if (write_file(path, val ? "1" : "0"))
		bail("cannot set %s", path);
}

static void create_mdev(void)
{
	char path[512], link[256], *grp;
	struct dirent *de;
	DIR *d;
	int ret;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", MDEV_DEVICES, MDEV_UUID);
	if (access(path, F_OK)) {
		d = opendir(MDEV_PARENT "/mdev_supported_types");
		if (!d)
			bail("no %s/mdev_supported_types", MDEV_PARENT);
		while ((de = readdir(d)) && de->d_name[0] == '.')
			;
		if (!de)
			bail("vfio_test_mdev has no mdev type");
		snprintf(path, sizeof(path),
			 MDEV_PARENT "/mdev_supported_types/%s/create",
			 de->d_name);
		closedir(d);
		ret = write_file(path, MDEV_UUID);
		if (ret)
			bail("create mdev: %s", strerror(-ret));
	}
	snprintf(path, sizeof(path), "%s/%s/iommu_group", MDEV_DEVICES,
		 MDEV_UUID);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		bail("readlink %s", path);
	link[n] = '\0';
	grp = strrchr(link, '/');
	snprintf(group_path, sizeof(group_path), "/dev/vfio/%s",
		 grp ? grp + 1 : link);
}

static void open_group(void)
{
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	int container = open("/dev/vfio/vfio", O_RDWR);

	if (container < 0)
		bail("open /dev/vfio/vfio");
	group_fd = open(group_path, O_RDWR);
	if (group_fd < 0)
		bail("open %s", group_path);
	if (ioctl(group_fd, VFIO_GROUP_GET_STATUS, &gs) ||
	    !(gs.flags & VFIO_GROUP_FLAGS_VIABLE))
		bail("group %s not viable", group_path);
	if (ioctl(group_fd, VFIO_GROUP_SET_CONTAINER, &container) ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		bail("attach %s to a type1 container", group_path);
}

static int open_device(void)
{
	return ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, MDEV_UUID);
}

struct vm {
	int fd;
	int kvm_vfio_fd;
	char dir[96];	/* its debugfs directory */
};

/* A VM with a KVM VFIO device that knows our group. */
static void vm_create(int kvm_fd, struct vm *vm)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_GROUP,
		.attr = KVM_DEV_VFIO_GROUP_ADD,
		.addr = (uint64_t)(uintptr_t)&group_fd,
	};

	vm->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		bail("KVM_CREATE_VM");
	if (ioctl(vm->fd, KVM_CREATE_DEVICE, &cd))
		bail("KVM_CREATE_DEVICE");
	vm->kvm_vfio_fd = cd.fd;
	if (ioctl(cd.fd, KVM_SET_DEVICE_ATTR, &attr))
		bail("KVM_DEV_VFIO_GROUP_ADD");
	snprintf(vm->dir, sizeof(vm->dir), "/sys/kernel/debug/kvm/%d-%d",
		 (int)getpid(), vm->fd);
}

static void vm_close_fds(struct vm *vm)
{
	close(vm->kvm_vfio_fd);
	close(vm->fd);
}

static bool vm_alive(const struct vm *vm)
{
	return !access(vm->dir, F_OK);
}

/* Test 2: no kvm module among vfio's dependencies. */
static void check_depends(void)
{
	static const char *const argv[] = { "modinfo", "-F", "depends",
					    "vfio", NULL };
	char path[160], line[4096], deps[256], *p = NULL;
	struct utsname u;
	FILE *f;
	int rc;

	uname(&u);
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", u.release);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		p = strstr(line, "/vfio.ko");
		if (p && (p[8] == ':' || !strncmp(p + 8, ".xz:", 4) ||
			  !strncmp(p + 8, ".zst:", 5)))
			break;
		p = NULL;
	}
	if (f)
		fclose(f);
	rc = run(deps, sizeof(deps), argv);
	if (rc)
		snprintf(deps, sizeof(deps), "(modinfo failed: %d)", rc);
	deps[strcspn(deps, "\n")] = '\0';
	diag("modules.dep: %.*s", p ? (int)strcspn(line, "\n") : 6,
	     p ? line : "(none)");
	diag("modinfo -F depends vfio: '%s'", deps);
	ok(p && !strstr(strchr(line, ':'), "kvm") && !rc &&
	   !strstr(deps, "kvm"),
	   "vfio.ko depends on no kvm module");
}

int main(void)
{
	const char *mode = getenv("VFIO_MODE");
	long base_kvm, base_vendor, r_kvm, r_vendor;
	struct vm vm;
	int kvm_fd, keeper, d1, d2, err;
	bool alive, pass;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("1..%d\n", NTESTS);
	if (!mode || (strcmp(mode, "stock") && strcmp(mode, "ours")))
		bail("VFIO_MODE must be stock or ours, not '%s'",
		     mode ? mode : "");
	ours = !strcmp(mode, "ours");

	if (access("/sys/kernel/debug/kvm", F_OK) &&
	    access(VTM_STATUS, F_OK))
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);

	/* 1: kvm.ko not loaded */
	if (module_loaded("kvm")) {
		modprobe("-r", "kvm_amd");
		modprobe("-r", "kvm_intel");
		modprobe("-r", "kvm");
	}
	if (!module_loaded("vfio_iommu_type1") &&
	    modprobe("", "vfio_iommu_type1"))
		bail("modprobe vfio_iommu_type1");
	if (!module_loaded("vfio_test_mdev") && modprobe("", "vfio_test_mdev"))
		bail("modprobe vfio_test_mdev");
	set_knob("fail_open", 0);
	set_knob("lock_kvm", 1);
	create_mdev();
	open_group();
	d1 = open_device();
	err = errno;
	ok(!module_loaded("kvm") && d1 >= 0 && vtm_stat("last_open_kvm") == 0,
	   "kvm.ko %s, vfio opens the device: %s",
	   module_loaded("kvm") ? "STILL LOADED" : "not loaded",
	   d1 >= 0 ? "ok" : strerror(err));
	if (d1 >= 0)
		close(d1);

	/* 2 */
	check_depends();

	if (modprobe("", "kvm_amd") && modprobe("", "kvm_intel"))
		bail("neither kvm_amd nor kvm_intel loads");
	vendor = module_loaded("kvm_amd") ? "kvm_amd" : "kvm_intel";
	kvm_fd = open("/dev/kvm", O_RDWR);
	if (kvm_fd < 0)
		bail("open /dev/kvm");
	/*
	 * A VM for the whole test, so that the ones it makes are never KVM's
	 * last: KVM switching virtualization off and on again with each hangs
	 * guests under QEMU's TCG after a few dozen rounds.
	 */
	keeper = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (keeper < 0)
		bail("KVM_CREATE_VM");
	base_kvm = refcnt("kvm");
	base_vendor = refcnt(vendor);
	diag("baseline: kvm refcnt %ld, %s refcnt %ld", base_kvm, vendor,
	     base_vendor);

	/* 3: the VM outlives its fds while the device is open */
	if (!ours)
		set_knob("lock_kvm", 0);
	vm_create(kvm_fd, &vm);
	d1 = open_device();
	if (d1 < 0)
		bail("VFIO_GROUP_GET_DEVICE_FD");
	d2 = open_device();
	if (d2 < 0)
		bail("second VFIO_GROUP_GET_DEVICE_FD");
	diag("device opened with VM %s: device->kvm %s, kvm users %lld",
	     vm.dir, vtm_stat("last_open_kvm") == 1 ? "set" : "NULL",
	     vtm_stat("last_kvm_users"));
	/* ours: the VM fd, the KVM VFIO device and vfio's own reference */
	pass = vtm_stat("last_open_kvm") == 1 && vm_alive(&vm) &&
	       (!ours || vtm_stat("last_kvm_users") == 3);
	vm_close_fds(&vm);
	alive = vm_alive(&vm);
	r_kvm = refcnt("kvm");
	r_vendor = refcnt(vendor);
	diag("VM and KVM VFIO fds closed: VM %s, kvm refcnt %ld, %s refcnt %ld",
	     alive ? "alive" : "gone", r_kvm, vendor, r_vendor);
	if (ours)
		ok(pass && alive && r_vendor == base_vendor + 1,
		   "ours: the VM outlives its fds while the device is open");
	else
		ok(pass && !alive && r_vendor == base_vendor,
		   "stock: the VM is destroyed while the device is still open (stock holds no VM reference; expected)");

	/* 4: and goes away with the device's last close */
	close(d1);
	alive = vm_alive(&vm);
	diag("first device fd closed: VM %s", alive ? "alive" : "gone");
	pass = alive == ours;
	close(d2);
	alive = vm_alive(&vm);
	r_kvm = refcnt("kvm");
	r_vendor = refcnt(vendor);
	diag("last device fd closed: VM %s, kvm refcnt %ld, %s refcnt %ld, closes with kvm %lld",
	     alive ? "alive" : "gone", r_kvm, vendor, r_vendor,
	     vtm_stat("closes_with_kvm"));
	ok(pass && !alive && r_kvm == base_kvm && r_vendor == base_vendor,
	   ours ? "ours: the VM stays while a device fd is open and goes away with the last close, refcnts at baseline"
		: "stock: no VM left after the device's last close (it went with its fds), refcnts at baseline");
	set_knob("lock_kvm", 1);

	/* 5: a failing open_device() leaves no reference */
	set_knob("fail_open", 1);
	vm_create(kvm_fd, &vm);
	d1 = open_device();
	err = errno;
	pass = d1 < 0 && err == EIO && vtm_stat("last_open_kvm") == 1 &&
	       vtm_stat("last_error") == -EIO;
	diag("open with fail_open: %s, device->kvm %s, last_error %lld",
	     d1 < 0 ? strerror(err) : "SUCCEEDED",
	     vtm_stat("last_open_kvm") == 1 ? "set" : "NULL",
	     vtm_stat("last_error"));
	if (d1 >= 0)
		close(d1);
	set_knob("fail_open", 0);
	vm_close_fds(&vm);
	alive = vm_alive(&vm);
	r_kvm = refcnt("kvm");
	r_vendor = refcnt(vendor);
	ok(pass && !alive && r_kvm == base_kvm && r_vendor == base_vendor,
	   "failed open_device() leaves no reference: VM %s after its fds closed, kvm refcnt %ld/%ld, %s refcnt %ld/%ld",
	   alive ? "ALIVE" : "gone", r_kvm, base_kvm, vendor, r_vendor,
	   base_vendor);

	/* 6: cleanup */
	close(group_fd);
	snprintf(vm.dir, sizeof(vm.dir), "%s/%s/remove", MDEV_DEVICES,
		 MDEV_UUID);
	err = write_file(vm.dir, "1");
	ok(!err && vtm_stat("open_now") == 0 && refcnt("kvm") == base_kvm &&
	   refcnt(vendor) == base_vendor,
	   "cleanup: mdev removed (%s), open now %lld, kvm refcnt %ld, %s refcnt %ld",
	   err ? strerror(-err) : "ok", vtm_stat("open_now"), refcnt("kvm"),
	   vendor, refcnt(vendor));
	close(keeper);
	close(kvm_fd);
	return failures ? 1 : 0;
}
