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
 *   6 linking the group to a VM pins kvm.ko, once however many VMs
 *     link it (ours resolves KVM's functions when a group is linked,
 *     not on every open); an unlink by any of them (GROUP_DEL) unpins
 *     it, and the VMs' later release changes nothing                  ours
 *     stock: kvm.ko's count never moves
 *   7 cleanup: mdev removed, counts at baseline                         both
 * Output is TAP on stdout.
 */
#include "tap.h"
#include "rnd.h"
#include <stdbool.h>
#include <linux/kvm.h>

#define MDEV_UUID	"5a1d0ec7-0000-4000-8000-0000000ef001"
#define NTESTS		7

static bool ours;
static const char *vendor;	/* kvm_amd or kvm_intel */
static int group_fd = -1;

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

static void set_knob(const char *knob, int val)
{
	if (vtm_set(knob, val))
		bail("cannot set %s/%s", VTM_PARAMS, knob);
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

/* KVM_DEV_VFIO_GROUP_DEL of our group from the VM's KVM VFIO device. */
static int vm_group_del(struct vm *vm)
{
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_GROUP,
		.attr = KVM_DEV_VFIO_GROUP_DEL,
		.addr = (uint64_t)(uintptr_t)&group_fd,
	};

	return ioctl(vm->kvm_vfio_fd, KVM_SET_DEVICE_ATTR, &attr) ? -errno : 0;
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
	long base_kvm, base_vendor, r_kvm, r_vendor;
	long r_linked, r_relinked, r_del;
	struct vm vm, vm2;
	int kvm_fd, keeper, container, group, d1, d2, err;
	const char *what;
	bool alive, pass;

	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(NTESTS);
	ours = mode_is_ours();

	mount_debugfs();

	/* 1: kvm.ko not loaded */
	if (module_loaded("kvm")) {
		modprobe_q(1, "kvm_amd");
		modprobe_q(1, "kvm_intel");
		modprobe_q(1, "kvm");
	}
	if (!module_loaded("vfio_iommu_type1") &&
	    modprobe_q(0, "vfio_iommu_type1"))
		bail("modprobe vfio_iommu_type1");
	if (!module_loaded("vfio_test_mdev") && modprobe_q(0, "vfio_test_mdev"))
		bail("modprobe vfio_test_mdev");
	set_knob("fail_open", 0);
	set_knob("lock_kvm", 1);
	if (mdev_create(MDEV_UUID) || (group = mdev_group(MDEV_UUID)) < 0)
		bail("create mdev %s with an IOMMU group", MDEV_UUID);
	if (group_attach(group, &container, &group_fd, &what))
		bail("%s: /dev/vfio/%d in a type1 container", what, group);
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

	if (modprobe_q(0, "kvm_amd") && modprobe_q(0, "kvm_intel"))
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
	base_kvm = mod_refcnt("kvm");
	base_vendor = mod_refcnt(vendor);
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
	r_kvm = mod_refcnt("kvm");
	r_vendor = mod_refcnt(vendor);
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
	r_kvm = mod_refcnt("kvm");
	r_vendor = mod_refcnt(vendor);
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
	r_kvm = mod_refcnt("kvm");
	r_vendor = mod_refcnt(vendor);
	ok(pass && !alive && r_kvm == base_kvm && r_vendor == base_vendor,
	   "failed open_device() leaves no reference: VM %s after its fds closed, kvm refcnt %ld/%ld, %s refcnt %ld/%ld",
	   alive ? "ALIVE" : "gone", r_kvm, base_kvm, vendor, r_vendor,
	   base_vendor);

	/* 6: a linked group pins kvm.ko once; unlinking unpins it */
	vm_create(kvm_fd, &vm);
	r_linked = mod_refcnt("kvm");
	vm_create(kvm_fd, &vm2);
	r_relinked = mod_refcnt("kvm");
	err = vm_group_del(&vm2);
	r_del = mod_refcnt("kvm");
	vm_close_fds(&vm2);
	vm_close_fds(&vm);
	r_kvm = mod_refcnt("kvm");
	diag("kvm refcnt: baseline %ld, group linked %ld, linked by a second VM %ld, after GROUP_DEL %ld (%s), VMs closed %ld",
	     base_kvm, r_linked, r_relinked, r_del, err ? strerror(-err) : "ok",
	     r_kvm);
	pass = !err && r_relinked == r_linked && r_del == base_kvm &&
	       r_kvm == base_kvm && !vm_alive(&vm) && !vm_alive(&vm2);
	if (ours)
		ok(pass && r_linked > base_kvm,
		   "ours: linking the group pins kvm.ko once (+%ld), GROUP_DEL unpins it",
		   r_linked - base_kvm);
	else
		ok(pass && r_linked == base_kvm,
		   "stock: kvm.ko's count never moves (stock takes no reference of KVM)");

	/* 7: cleanup */
	close(group_fd);
	err = mdev_remove(MDEV_UUID);
	ok(!err && vtm_stat("open_now") == 0 && mod_refcnt("kvm") == base_kvm &&
	   mod_refcnt(vendor) == base_vendor,
	   "cleanup: mdev removed (%s), open now %lld, kvm refcnt %ld, %s refcnt %ld",
	   err ? strerror(-err) : "ok", vtm_stat("open_now"), mod_refcnt("kvm"),
	   vendor, mod_refcnt(vendor));
	close(keeper);
	close(kvm_fd);
	close(container);
	return tap_done();
}
