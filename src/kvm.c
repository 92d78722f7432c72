// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-core: the VM a group is linked to, and the VM reference of a device
 *
 * KVM links a group to a VM with vfio_file_set_kvm() when userspace adds the
 * group to the VM's KVM VFIO device, and unlinks it (NULL) when the group is
 * deleted from that device or the device is released, always before the VM
 * can be freed.  A device of a linked group that is opened for the first
 * time takes a reference on the VM of its own: its driver finds the VM in
 * device->kvm from open_device() on, and the VM lives at least until the
 * device's last close_device() has returned, when vfio drops the reference
 * (or as soon as open_device() fails).
 *
 * vfio.ko must load without kvm.ko, so it calls kvm_get_kvm_safe() and
 * kvm_put_kvm() through symbol_get().  It looks them up once, when a first
 * group is linked, not on every open, and keeps them, with the references on
 * kvm.ko that symbol_get() took, for as long as anything may use them: a
 * group that is linked or a device that holds a VM reference.  The last such
 * user puts them, so the reference counts of kvm.ko (and of the vendor
 * module, through the VMs) are back where they were once vfio holds no VM,
 * and kvm.ko cannot be unloaded while vfio may still put a VM.  (A VM pins
 * kvm.ko itself as well: it holds its vendor module, which depends on
 * kvm.ko.)  A VM's life through vfio thus costs two lookups, where upstream's
 * fix pays two per device open.
 *
 * vfio_kvm.lock guards every group->kvm, the count of users and the two
 * functions.  It is a spinlock and innermost in the lock order written at
 * the top of group.c: KVM links and unlinks with kvm->lock or kv->lock held
 * and first opens take it under dev_set->lock, so under it nothing sleeps
 * and no other lock is taken; it covers only reference counting
 * (symbol_get(), symbol_put(), kvm_get_kvm_safe()).  kvm_put_kvm() may
 * destroy the VM, which sleeps: it is called without the lock.
 */
#include <linux/kvm_host.h>
#include <linux/lockdep.h>
#include <linux/module.h>
#include <linux/spinlock.h>
#include <linux/vfio.h>

#include "vfio.h"

static struct {
	spinlock_t	lock;	/* all of vfio_kvm, and every group->kvm */
	unsigned int	users;	/* linked groups + devices holding a VM */
	bool		(*get)(struct kvm *kvm);
	void		(*put)(struct kvm *kvm);
} vfio_kvm = {
	.lock = __SPIN_LOCK_UNLOCKED(vfio_kvm.lock),
};

/* Drop KVM's functions and the references on kvm.ko that came with them. */
static void vfio_kvm_unresolve(void)
{
	lockdep_assert_held(&vfio_kvm.lock);

	if (vfio_kvm.get)
		symbol_put(kvm_get_kvm_safe);
	if (vfio_kvm.put)
		symbol_put(kvm_put_kvm);
	vfio_kvm.get = NULL;
	vfio_kvm.put = NULL;
}

/* Look up both of KVM's functions, pinning kvm.ko, or neither. */
static void vfio_kvm_resolve(void)
{
	lockdep_assert_held(&vfio_kvm.lock);

	vfio_kvm.get = symbol_get(kvm_get_kvm_safe);
	vfio_kvm.put = symbol_get(kvm_put_kvm);
	if (vfio_kvm.get && vfio_kvm.put)
		return;

	/* KVM just handed us a VM, so kvm.ko is loaded and live */
	WARN_ONCE(1, "vfio: kvm.ko lacks kvm_get_kvm_safe() or kvm_put_kvm()\n");
	vfio_kvm_unresolve();
}

static void vfio_kvm_add_user(void)
{
	lockdep_assert_held(&vfio_kvm.lock);

	if (!vfio_kvm.users++)
		vfio_kvm_resolve();
}

static void vfio_kvm_del_user(void)
{
	lockdep_assert_held(&vfio_kvm.lock);

	if (WARN_ON(!vfio_kvm.users))
		return;
	if (!--vfio_kvm.users)
		vfio_kvm_unresolve();
}

/**
 * vfio_group_set_kvm - Link a group to a VM, or unlink it
 * @group: the group
 * @kvm: the VM, or NULL
 *
 * For vfio_file_set_kvm().  Relinking to another VM replaces the link, and
 * any VM's unlink removes it, as in stock 6.1.  Devices already open keep
 * the VM they were opened with.
 *
 * Context: any sleepable context, kvm->lock or kv->lock may be held; takes
 * vfio_kvm.lock only.
 */
void vfio_group_set_kvm(struct vfio_group *group, struct kvm *kvm)
{
	spin_lock(&vfio_kvm.lock);
	if (kvm && !group->kvm)
		vfio_kvm_add_user();
	else if (!kvm && group->kvm)
		vfio_kvm_del_user();
	group->kvm = kvm;
	spin_unlock(&vfio_kvm.lock);
}

/**
 * vfio_device_ref_kvm - Give an opening device a reference on its group's VM
 * @device: the device, before its driver's open_device()
 *
 * Sets device->kvm if the group is linked to a VM that is not already being
 * destroyed.  The linked VM cannot be freed under the lock: KVM unlinks the
 * group, which takes the same lock, before it puts its own reference.
 * Undone by vfio_device_unref_kvm().
 *
 * Context: device->dev_set->lock held.
 */
void vfio_device_ref_kvm(struct vfio_device *device)
{
	struct kvm *kvm;

	lockdep_assert_held(&device->dev_set->lock);

	spin_lock(&vfio_kvm.lock);
	kvm = device->group->kvm;
	if (kvm && vfio_kvm.get && vfio_kvm.get(kvm)) {
		device->kvm = kvm;
		vfio_kvm_add_user();
	}
	spin_unlock(&vfio_kvm.lock);
}

/**
 * vfio_device_unref_kvm - Drop the VM reference of a device
 * @device: the device, after its last close_device() or a failed
 *	    open_device()
 *
 * Leaves the device as if vfio_device_ref_kvm() had not been called.  May
 * destroy the VM.
 *
 * Context: device->dev_set->lock held; may sleep.
 */
void vfio_device_unref_kvm(struct vfio_device *device)
{
	struct kvm *kvm = device->kvm;
	void (*put)(struct kvm *kvm);

	lockdep_assert_held(&device->dev_set->lock);

	if (!kvm)
		return;
	device->kvm = NULL;

	/* Resolved for as long as this device is one of the users */
	spin_lock(&vfio_kvm.lock);
	put = vfio_kvm.put;
	spin_unlock(&vfio_kvm.lock);

	put(kvm);

	spin_lock(&vfio_kvm.lock);
	vfio_kvm_del_user();
	spin_unlock(&vfio_kvm.lock);
}
