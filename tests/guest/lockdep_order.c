// SPDX-License-Identifier: GPL-2.0-only
/*
 * lockdep_order: the kvm->lock / group_lock inversion, named by lockdep
 * without a race (debug lane only: needs a kernel with lockdep).
 *
 * One task, one round, in order, nothing concurrent and no widening knobs,
 * so the deadlock itself cannot happen; lockdep sees both lock orders taken
 * and reports the cycle the first time:
 *   open path    VFIO_GROUP_GET_DEVICE_FD + close() on a vfio_test_mdev
 *                device of a group that a VM's KVM VFIO device holds: the
 *                driver's open_device()/close_device() take kvm->lock, which
 *                stock 6.1 calls with the group's group_lock held
 *                (group_lock -> kvm->lock)
 *   release path close() of the KVM VFIO device: kvm_device_release() holds
 *                kvm->lock and calls vfio_file_set_kvm(NULL), which takes
 *                group_lock in stock 6.1 (kvm->lock -> group_lock); it also
 *                takes the device's kv->lock, under which KVM called
 *                vfio_file_enforced_coherent() at KVM_DEV_VFIO_GROUP_ADD,
 *                and that took group_lock too (kvm->lock -> kv->lock ->
 *                group_lock)
 * VFIO_MODE=stock passes only if lockdep reports the circular dependency
 * between &group->group_lock and &kvm->lock (it declares "# expect-splat:
 * lockdep" to the harness, which then fails it on any other report, and
 * checks the report's content itself); ours only if lockdep reports nothing
 * at all and is still on afterwards.
 * Output is TAP on stdout.
 */
#include "tap.h"
#include "rnd.h"
#include "kreport.h"
#include <stdbool.h>
#include <linux/kvm.h>

#define MDEV_UUID	"5a1d0ec7-0000-4000-8000-00000000c1c1"
#define NTESTS		7

int main(void)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_GROUP,
		.attr = KVM_DEV_VFIO_GROUP_ADD,
	};
	int kfd, container, group, group_fd, kvm_fd, vm_fd, dev_fd, err;
	long long opens_kvm, closes_kvm;
	const char *what, *rep;
	char *log;
	bool ours;

	ours = kr_start(NTESTS, "lockdep");
	kfd = kmsg_open();

	/* 1: setup */
	if (!kr_armed())
		bail("lockdep is off or the kernel reported before the test (not the debug kernel, or a report while booting)");
	mount_debugfs();
	need_module("vfio_iommu_type1");
	need_module("vfio_test_mdev");
	check_flavour();
	if (!module_loaded("kvm_amd") && !module_loaded("kvm_intel") &&
	    modprobe_q(0, "kvm_amd") && modprobe_q(0, "kvm_intel"))
		bail("neither kvm_amd nor kvm_intel loads");
	vtm_knob("delay_ms", 0);
	vtm_knob("hold_ms", 0);
	vtm_knob("fail_open", 0);
	vtm_knob("lock_kvm", 1);
	if (mdev_create(MDEV_UUID) || (group = mdev_group(MDEV_UUID)) < 0)
		bail("create mdev %s with an IOMMU group", MDEV_UUID);
	if (group_attach(group, &container, &group_fd, &what))
		bail("%s: /dev/vfio/%d in a type1 container", what, group);
	kvm_fd = open("/dev/kvm", O_RDWR);
	if (kvm_fd < 0)
		bail("open /dev/kvm");
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		bail("KVM_CREATE_VM");
	if (ioctl(vm_fd, KVM_CREATE_DEVICE, &cd))
		bail("KVM_CREATE_DEVICE");
	attr.addr = (uint64_t)(uintptr_t)&group_fd;
	if (ioctl(cd.fd, KVM_SET_DEVICE_ATTR, &attr))
		bail("KVM_DEV_VFIO_GROUP_ADD");
	ok(1, "setup: lockdep on, no report so far, mdev %s in /dev/vfio/%d, a VM whose KVM VFIO device holds the group",
	   MDEV_UUID, group);

	/* 2: the open path */
	opens_kvm = vtm_stat("opens_with_kvm");
	closes_kvm = vtm_stat("closes_with_kvm");
	dev_fd = ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, MDEV_UUID);
	err = errno;
	if (dev_fd >= 0)
		close(dev_fd);
	ok(dev_fd >= 0 && vtm_stat("opens_with_kvm") == opens_kvm + 1 &&
	   vtm_stat("closes_with_kvm") == closes_kvm + 1,
	   "open path: device opened (%s) and closed, the driver took kvm->lock in open_device() and close_device()",
	   dev_fd >= 0 ? "ok" : strerror(err));

	/* 3: the release path */
	close(cd.fd);
	close(vm_fd);
	ok(1, "release path: KVM VFIO device and VM closed");

	/* 4, 5: what lockdep said */
	usleep(200000);
	log = kr_read(kfd);
	if (!log)
		bail("cannot read the kernel log");
	kr_verdict(log, ours, KR_LOCKDEP, "open path, then release path");
	rep = kr_find(log, KR_LOCKDEP, 0);
	if (ours)
		ok(kr_lockdep_on(), "ours: lockdep still on after both paths (debug_locks 1)");
	else
		ok(rep && kr_names(rep, "possible circular locking dependency", 1) &&
		   kr_names(rep, "&group->group_lock", 30) && kr_names(rep, "&kvm->lock", 30),
		   "stock: the first report is the circular dependency &group->group_lock <-> &kvm->lock");
	free(log);

	/* 6: cleanup */
	close(group_fd);
	close(container);
	close(kvm_fd);
	err = mdev_remove(MDEV_UUID);
	ok(!err && vtm_stat("open_now") == 0, "cleanup: mdev removed (%s), open now %lld",
	   err ? strerror(-err) : "ok", vtm_stat("open_now"));
	return tap_done();
}
