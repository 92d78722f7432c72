// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-core: the VFIO device core
 *
 * Owns struct vfio_device: device sets, allocation and registration, the
 * device file and VFIO_DEVICE_FEATURE, the helpers for vfio drivers, the
 * KVM reference a device holds while open, and the module itself.  Groups
 * live in group.c, containers in container.c; the lock order of the module
 * is written down at the top of group.c.
 *
 * Based on drivers/vfio/vfio_main.c of Linux 6.1,
 * Copyright (C) 2012 Red Hat, Inc.  All rights reserved.
 *     Author: Alex Williamson <alex.williamson@redhat.com>
 * derived from the original vfio,
 * Copyright 2010 Cisco Systems, Inc.  All rights reserved.
 *     Author: Tom Lyon, pugs@cisco.com
 */

/*
 * genksyms expands every structure that an exported signature reaches and
 * that some included header defines, so this list is exactly the one of the
 * kernel's vfio_main.c, which the export CRCs were computed from.
 */
#include <linux/cdev.h>
#include <linux/compat.h>
#include <linux/device.h>
#include <linux/file.h>
#include <linux/anon_inodes.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/iommu.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/stat.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>
#include <linux/wait.h>
#include <linux/sched/signal.h>
#include <linux/pm_runtime.h>
#include <linux/interval_tree.h>
#include <linux/iova_bitmap.h>
#include "vfio.h"
/*
 * Only for the prototypes of kvm_get_kvm_safe() and kvm_put_kvm() that
 * symbol_get() needs.  Hidden from genksyms: it defines struct kvm, which the
 * exports reach through vfio_device->kvm, and including it visibly changes
 * the CRCs of 13 exports (measured).
 */
#ifndef __GENKSYMS__
#include <linux/kvm_host.h>
#endif

#define DRIVER_VERSION	"1.0"
#define DRIVER_AUTHOR	"Alex Williamson <alex.williamson@redhat.com>"
#define DRIVER_DESC	"VFIO - User Level meta-driver (vfio-core: kvm lock-order fix)"

static struct vfio {
	struct class		*device_class;	/* "vfio-dev" */
	struct ida		device_ida;	/* vfio_device->index */
} vfio;

static DEFINE_XARRAY(vfio_device_set_xa);
static const struct file_operations vfio_device_fops;

/*
 * Device sets
 */

/**
 * vfio_assign_device_set - Put a device into the device set of an id
 * @device: the device, before registration
 * @set_id: any non-NULL pointer; devices passing the same one share a set
 *
 * The devices of a set share one lock, held around their open_device() and
 * close_device(), so a driver can act on all of them (e.g. a bus reset)
 * when none is open.  A device registered without a set gets a set of its
 * own.
 *
 * Return: 0 or a negative errno.
 */
int vfio_assign_device_set(struct vfio_device *device, void *set_id)
{
	unsigned long idx = (unsigned long)set_id;
	struct vfio_device_set *new_dev_set;
	struct vfio_device_set *dev_set;

	if (WARN_ON(!set_id))
		return -EINVAL;

	/* Fast path: the set exists, take a reference under the xa lock */
	xa_lock(&vfio_device_set_xa);
	dev_set = xa_load(&vfio_device_set_xa, idx);
	if (dev_set)
		goto found_get_ref;
	xa_unlock(&vfio_device_set_xa);

	new_dev_set = kzalloc(sizeof(*new_dev_set), GFP_KERNEL);
	if (!new_dev_set)
		return -ENOMEM;
	mutex_init(&new_dev_set->lock);
	INIT_LIST_HEAD(&new_dev_set->device_list);
	new_dev_set->set_id = set_id;

	/* Install ours unless another caller installed one meanwhile */
	xa_lock(&vfio_device_set_xa);
	dev_set = __xa_cmpxchg(&vfio_device_set_xa, idx, NULL, new_dev_set,
			       GFP_KERNEL);
	if (!dev_set) {
		dev_set = new_dev_set;
		goto found_get_ref;
	}

	kfree(new_dev_set);
	if (xa_is_err(dev_set)) {
		xa_unlock(&vfio_device_set_xa);
		return xa_err(dev_set);
	}

found_get_ref:
	dev_set->device_count++;
	xa_unlock(&vfio_device_set_xa);
	mutex_lock(&dev_set->lock);
	device->dev_set = dev_set;
	list_add_tail(&device->dev_set_list, &dev_set->device_list);
	mutex_unlock(&dev_set->lock);
	return 0;
}
EXPORT_SYMBOL_GPL(vfio_assign_device_set);

static void vfio_release_device_set(struct vfio_device *device)
{
	struct vfio_device_set *dev_set = device->dev_set;

	if (!dev_set)
		return;

	mutex_lock(&dev_set->lock);
	list_del(&device->dev_set_list);
	mutex_unlock(&dev_set->lock);

	xa_lock(&vfio_device_set_xa);
	if (!--dev_set->device_count) {
		__xa_erase(&vfio_device_set_xa,
			   (unsigned long)dev_set->set_id);
		mutex_destroy(&dev_set->lock);
		kfree(dev_set);
	}
	xa_unlock(&vfio_device_set_xa);
}

/**
 * vfio_device_set_open_count - How many times the devices of a set are open
 * @dev_set: the device set; its lock must be held
 *
 * Return: the sum of the open counts of the devices in @dev_set.
 */
unsigned int vfio_device_set_open_count(struct vfio_device_set *dev_set)
{
	struct vfio_device *cur;
	unsigned int open_count = 0;

	lockdep_assert_held(&dev_set->lock);

	list_for_each_entry(cur, &dev_set->device_list, dev_set_list)
		open_count += cur->open_count;
	return open_count;
}
EXPORT_SYMBOL_GPL(vfio_device_set_open_count);

/*
 * Device objects
 */

/**
 * vfio_device_put_registration - Drop a registration reference
 * @device: the device
 *
 * The last one lets vfio_unregister_group_dev() finish.
 */
void vfio_device_put_registration(struct vfio_device *device)
{
	if (refcount_dec_and_test(&device->refcount))
		complete(&device->comp);
}

/**
 * vfio_device_try_get_registration - Take a registration reference
 * @device: the device
 *
 * Return: false if the device is being unregistered.
 */
bool vfio_device_try_get_registration(struct vfio_device *device)
{
	return refcount_inc_not_zero(&device->refcount);
}

/* device.release, reached through vfio_put_device() */
static void vfio_device_release(struct device *dev)
{
	struct vfio_device *device =
			container_of(dev, struct vfio_device, device);

	vfio_release_device_set(device);
	ida_free(&vfio.device_ida, device->index);

	/*
	 * The driver frees the memory in its release op (vfio_free_device()
	 * for most): vfio-ccw embeds the vfio_device in a structure with a
	 * lifetime of its own.
	 */
	device->ops->release(device);
}

/**
 * _vfio_alloc_device - Allocate and initialize a vfio_device
 * @size: size of the driver structure embedding the vfio_device first
 * @dev: the device to drive
 * @ops: the driver callbacks; @ops->init, if set, initializes the rest
 *
 * Drivers use the vfio_alloc_device() wrapper.  After success, release the
 * structure with vfio_put_device().
 *
 * Return: the vfio_device or an ERR_PTR().
 */
struct vfio_device *_vfio_alloc_device(size_t size, struct device *dev,
				       const struct vfio_device_ops *ops)
{
	struct vfio_device *device;
	int ret;

	if (WARN_ON(size < sizeof(struct vfio_device)))
		return ERR_PTR(-EINVAL);

	device = kvzalloc(size, GFP_KERNEL);
	if (!device)
		return ERR_PTR(-ENOMEM);

	ret = vfio_init_device(device, dev, ops);
	if (ret)
		goto err_free;
	return device;

err_free:
	kvfree(device);
	return ERR_PTR(ret);
}
EXPORT_SYMBOL_GPL(_vfio_alloc_device);

/**
 * vfio_init_device - Initialize a vfio_device the driver allocated itself
 * @device: the zeroed vfio_device
 * @dev: the device to drive
 * @ops: the driver callbacks; @ops->init, if set, initializes the rest
 *
 * Only for vfio-ccw; other drivers use vfio_alloc_device().
 *
 * Return: 0 or a negative errno.
 */
int vfio_init_device(struct vfio_device *device, struct device *dev,
		     const struct vfio_device_ops *ops)
{
	int ret;

	ret = ida_alloc_max(&vfio.device_ida, MINORMASK, GFP_KERNEL);
	if (ret < 0) {
		dev_dbg(dev, "Error to alloc index\n");
		return ret;
	}

	device->index = ret;
	init_completion(&device->comp);
	device->dev = dev;
	device->ops = ops;

	if (ops->init) {
		ret = ops->init(device);
		if (ret)
			goto err_uninit;
	}

	device_initialize(&device->device);
	device->device.release = vfio_device_release;
	device->device.class = vfio.device_class;
	device->device.parent = device->dev;
	return 0;

err_uninit:
	/* @ops->init may have joined a device set */
	vfio_release_device_set(device);
	ida_free(&vfio.device_ida, device->index);
	return ret;
}
EXPORT_SYMBOL_GPL(vfio_init_device);

/**
 * vfio_free_device - Free a vfio_device from vfio_alloc_device()
 * @device: the device
 *
 * For a driver's release op; a driver with nothing else to free can use it
 * as its release op.
 */
void vfio_free_device(struct vfio_device *device)
{
	kvfree(device);
}
EXPORT_SYMBOL_GPL(vfio_free_device);

/*
 * Registration
 */

static int __vfio_register_dev(struct vfio_device *device,
			       enum vfio_group_type type)
{
	int ret;

	/* Takes a drivers reference on the group for the device */
	ret = vfio_device_set_group(device, type);
	if (ret)
		return ret;

	if (!device->dev_set) {
		ret = vfio_assign_device_set(device, device);
		if (ret)
			goto err_remove_group;
	}

	ret = dev_set_name(&device->device, "vfio%d", device->index);
	if (ret)
		goto err_remove_group;

	ret = device_add(&device->device);
	if (ret)
		goto err_remove_group;

	/* The registration reference, dropped by unregister */
	refcount_set(&device->refcount, 1);

	vfio_device_group_register(device);
	return 0;

err_remove_group:
	vfio_device_remove_group(device);
	return ret;
}

/**
 * vfio_register_group_dev - Register a device with an IOMMU
 * @device: the initialized device
 *
 * The device joins the group of its iommu_group (or a noiommu group when
 * enabled) and shows up in /sys/class/vfio-dev.
 *
 * Return: 0 or a negative errno.
 */
int vfio_register_group_dev(struct vfio_device *device)
{
	return __vfio_register_dev(device, VFIO_IOMMU);
}
EXPORT_SYMBOL_GPL(vfio_register_group_dev);

/**
 * vfio_register_emulated_iommu_dev - Register a device without IOMMU
 * @device: the initialized device
 *
 * For devices whose DMA the driver mediates (it uses vfio_pin_pages() or
 * vfio_dma_rw()); the user must not be able to make the device DMA on its
 * own.  The device gets a private group.
 *
 * Return: 0 or a negative errno.
 */
int vfio_register_emulated_iommu_dev(struct vfio_device *device)
{
	return __vfio_register_dev(device, VFIO_EMULATED_IOMMU);
}
EXPORT_SYMBOL_GPL(vfio_register_emulated_iommu_dev);

/**
 * vfio_unregister_group_dev - Unregister a device
 * @device: a registered device
 *
 * Waits until every device file is closed, asking the driver every 10
 * seconds (its request op) to make the user let go.  The wait becomes
 * uninterruptible once a signal interrupted it.
 */
void vfio_unregister_group_dev(struct vfio_device *device)
{
	unsigned int i = 0;
	bool interrupted = false;
	long rc;

	vfio_device_put_registration(device);
	rc = try_wait_for_completion(&device->comp);
	while (rc <= 0) {
		if (device->ops->request)
			device->ops->request(device, i++);

		if (interrupted) {
			rc = wait_for_completion_timeout(&device->comp,
							 HZ * 10);
		} else {
			rc = wait_for_completion_interruptible_timeout(&device->comp,
								       HZ * 10);
			if (rc < 0) {
				interrupted = true;
				dev_warn(device->dev,
					 "Device is currently in use, task \"%s\" (%d) blocked until device is released",
					 current->comm, task_pid_nr(current));
			}
		}
	}

	vfio_device_group_unregister(device);

	/* Pairs with device_add() in __vfio_register_dev() */
	device_del(&device->device);

	vfio_device_remove_group(device);
}
EXPORT_SYMBOL_GPL(vfio_unregister_group_dev);

/*
 * The KVM reference of an open device
 *
 * vfio.ko must load without kvm.ko, so it reaches KVM through symbol_get().
 * vfio_device_get_kvm_safe() keeps the module reference of its
 * symbol_get(kvm_put_kvm) for as long as device->kvm holds a VM reference:
 * that pins kvm.ko, so vfio_device_put_kvm() can look kvm_put_kvm() up
 * again without failing and needs no state beyond device->kvm.
 */

/**
 * vfio_device_get_kvm_safe - Take a KVM reference for an opening device
 * @device: the device, being opened for the first time
 * @kvm: the VM the device is to be used with
 *
 * Sets device->kvm, for the driver's open_device(), if the VM is not already
 * being destroyed.  The caller keeps @kvm from being freed during the call,
 * possibly with a spinlock held: this neither sleeps nor takes locks.
 */
void vfio_device_get_kvm_safe(struct vfio_device *device, struct kvm *kvm)
{
	void (*put)(struct kvm *kvm);
	bool (*get)(struct kvm *kvm);
	bool got;

	lockdep_assert_held(&device->dev_set->lock);

	/* @kvm comes from kvm.ko, which a live VM keeps loaded */
	put = symbol_get(kvm_put_kvm);
	if (WARN_ON(!put))
		return;

	get = symbol_get(kvm_get_kvm_safe);
	if (WARN_ON(!get))
		goto err_put_symbol;

	got = get(kvm);
	symbol_put(kvm_get_kvm_safe);
	if (!got)
		goto err_put_symbol;

	/* The kvm_put_kvm module reference stays until vfio_device_put_kvm() */
	device->kvm = kvm;
	return;

err_put_symbol:
	symbol_put(kvm_put_kvm);
}

/**
 * vfio_device_put_kvm - Drop the KVM reference of a device
 * @device: the device, after its last close or a failed first open
 *
 * Drops what vfio_device_get_kvm_safe() took, if anything, and clears
 * device->kvm.  May free the VM.
 */
void vfio_device_put_kvm(struct vfio_device *device)
{
	void (*put)(struct kvm *kvm);

	lockdep_assert_held(&device->dev_set->lock);

	if (!device->kvm)
		return;

	/*
	 * Cannot fail: the reference kept since vfio_device_get_kvm_safe()
	 * pins kvm.ko.  If it did, leak both references rather than unpin
	 * kvm.ko under a live VM reference.
	 */
	put = symbol_get(kvm_put_kvm);
	if (!WARN_ON(!put)) {
		put(device->kvm);
		symbol_put(kvm_put_kvm);
		/* The reference kept since vfio_device_get_kvm_safe() */
		symbol_put(kvm_put_kvm);
	}
	device->kvm = NULL;
}

/*
 * The device file
 */

/**
 * vfio_assert_device_open - Check that a device is open
 * @device: the device
 *
 * Warns once if it is not.
 *
 * Return: true if open_device() was called and close_device() was not yet.
 */
bool vfio_assert_device_open(struct vfio_device *device)
{
	return !WARN_ON_ONCE(!READ_ONCE(device->open_count));
}

/**
 * vfio_device_alloc_file - Create the file of an opened device
 * @device: the device, opened; the file takes over a registration reference
 *
 * Return: the file or an ERR_PTR().
 */
struct file *vfio_device_alloc_file(struct vfio_device *device)
{
	struct file *filep;

	/* Not anon_inode_getfd(): f_mode needs the flags below first */
	filep = anon_inode_getfile("[vfio-device]", &vfio_device_fops,
				   device, O_RDWR);
	if (IS_ERR(filep))
		return filep;

	/* The regions of the device are accessed with pread()/pwrite() */
	filep->f_mode |= (FMODE_PREAD | FMODE_PWRITE);
	return filep;
}

/* Resume a device with runtime PM for an ioctl; 0 or -EIO. */
static int vfio_device_pm_runtime_get(struct vfio_device *device)
{
	struct device *dev = device->dev;

	if (dev->driver && dev->driver->pm) {
		int ret;

		ret = pm_runtime_resume_and_get(dev);
		if (ret) {
			dev_info_ratelimited(dev,
					     "vfio: runtime resume failed %d\n",
					     ret);
			return -EIO;
		}
	}

	return 0;
}

static void vfio_device_pm_runtime_put(struct vfio_device *device)
{
	struct device *dev = device->dev;

	if (dev->driver && dev->driver->pm)
		pm_runtime_put(dev);
}

static int vfio_device_fops_release(struct inode *inode, struct file *filep)
{
	struct vfio_device *device = filep->private_data;

	vfio_device_group_close(device);

	/* Taken by VFIO_GROUP_GET_DEVICE_FD, owned by the file */
	vfio_device_put_registration(device);
	return 0;
}

/**
 * vfio_mig_get_next_state - The next step towards a migration state
 * @device: the device, with its migration_flags set
 * @cur_fsm: the state the device is in
 * @new_fsm: the state to reach
 * @next_fsm: set to the next state to go to
 *
 * Splits the arc from @cur_fsm to @new_fsm into arcs a driver implements,
 * skipping the states the device does not support; a driver calls it until
 * @next_fsm is @new_fsm.  Drivers implement RESUMING <-> STOP <-> STOP_COPY,
 * plus RUNNING <-> RUNNING_P2P <-> STOP with P2P or RUNNING <-> STOP without.
 *
 * Return: 0, or -EINVAL if @new_fsm is not reachable (or not supported).
 */
int vfio_mig_get_next_state(struct vfio_device *device,
			    enum vfio_device_mig_state cur_fsm,
			    enum vfio_device_mig_state new_fsm,
			    enum vfio_device_mig_state *next_fsm)
{
	enum { VFIO_DEVICE_NUM_STATES = VFIO_DEVICE_STATE_RUNNING_P2P + 1 };
	/*
	 * next[from][to] is the first step from @from towards @to.  The path
	 * through the full state machine (with P2P):
	 *   RUNNING - RUNNING_P2P - STOP - { STOP_COPY, RESUMING }
	 * ERROR is final.
	 */
	static const u8 next[VFIO_DEVICE_NUM_STATES][VFIO_DEVICE_NUM_STATES] = {
		[VFIO_DEVICE_STATE_STOP] = {
			[VFIO_DEVICE_STATE_STOP] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_RUNNING] = VFIO_DEVICE_STATE_RUNNING_P2P,
			[VFIO_DEVICE_STATE_STOP_COPY] = VFIO_DEVICE_STATE_STOP_COPY,
			[VFIO_DEVICE_STATE_RESUMING] = VFIO_DEVICE_STATE_RESUMING,
			[VFIO_DEVICE_STATE_RUNNING_P2P] = VFIO_DEVICE_STATE_RUNNING_P2P,
			[VFIO_DEVICE_STATE_ERROR] = VFIO_DEVICE_STATE_ERROR,
		},
		[VFIO_DEVICE_STATE_RUNNING] = {
			[VFIO_DEVICE_STATE_STOP] = VFIO_DEVICE_STATE_RUNNING_P2P,
			[VFIO_DEVICE_STATE_RUNNING] = VFIO_DEVICE_STATE_RUNNING,
			[VFIO_DEVICE_STATE_STOP_COPY] = VFIO_DEVICE_STATE_RUNNING_P2P,
			[VFIO_DEVICE_STATE_RESUMING] = VFIO_DEVICE_STATE_RUNNING_P2P,
			[VFIO_DEVICE_STATE_RUNNING_P2P] = VFIO_DEVICE_STATE_RUNNING_P2P,
			[VFIO_DEVICE_STATE_ERROR] = VFIO_DEVICE_STATE_ERROR,
		},
		[VFIO_DEVICE_STATE_STOP_COPY] = {
			[VFIO_DEVICE_STATE_STOP] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_RUNNING] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_STOP_COPY] = VFIO_DEVICE_STATE_STOP_COPY,
			[VFIO_DEVICE_STATE_RESUMING] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_RUNNING_P2P] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_ERROR] = VFIO_DEVICE_STATE_ERROR,
		},
		[VFIO_DEVICE_STATE_RESUMING] = {
			[VFIO_DEVICE_STATE_STOP] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_RUNNING] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_STOP_COPY] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_RESUMING] = VFIO_DEVICE_STATE_RESUMING,
			[VFIO_DEVICE_STATE_RUNNING_P2P] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_ERROR] = VFIO_DEVICE_STATE_ERROR,
		},
		[VFIO_DEVICE_STATE_RUNNING_P2P] = {
			[VFIO_DEVICE_STATE_STOP] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_RUNNING] = VFIO_DEVICE_STATE_RUNNING,
			[VFIO_DEVICE_STATE_STOP_COPY] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_RESUMING] = VFIO_DEVICE_STATE_STOP,
			[VFIO_DEVICE_STATE_RUNNING_P2P] = VFIO_DEVICE_STATE_RUNNING_P2P,
			[VFIO_DEVICE_STATE_ERROR] = VFIO_DEVICE_STATE_ERROR,
		},
		[VFIO_DEVICE_STATE_ERROR] = {
			[VFIO_DEVICE_STATE_STOP] = VFIO_DEVICE_STATE_ERROR,
			[VFIO_DEVICE_STATE_RUNNING] = VFIO_DEVICE_STATE_ERROR,
			[VFIO_DEVICE_STATE_STOP_COPY] = VFIO_DEVICE_STATE_ERROR,
			[VFIO_DEVICE_STATE_RESUMING] = VFIO_DEVICE_STATE_ERROR,
			[VFIO_DEVICE_STATE_RUNNING_P2P] = VFIO_DEVICE_STATE_ERROR,
			[VFIO_DEVICE_STATE_ERROR] = VFIO_DEVICE_STATE_ERROR,
		},
	};
	/* The migration_flags a device needs to support each state */
	static const unsigned int needs[VFIO_DEVICE_NUM_STATES] = {
		[VFIO_DEVICE_STATE_STOP] = VFIO_MIGRATION_STOP_COPY,
		[VFIO_DEVICE_STATE_RUNNING] = VFIO_MIGRATION_STOP_COPY,
		[VFIO_DEVICE_STATE_STOP_COPY] = VFIO_MIGRATION_STOP_COPY,
		[VFIO_DEVICE_STATE_RESUMING] = VFIO_MIGRATION_STOP_COPY,
		[VFIO_DEVICE_STATE_RUNNING_P2P] =
			VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
		[VFIO_DEVICE_STATE_ERROR] = ~0U,
	};
	unsigned int flags = device->migration_flags;

	if (WARN_ON(cur_fsm >= ARRAY_SIZE(next) ||
		    (needs[cur_fsm] & flags) != needs[cur_fsm]))
		return -EINVAL;

	if (new_fsm >= ARRAY_SIZE(next) ||
	    (needs[new_fsm] & flags) != needs[new_fsm])
		return -EINVAL;

	/* Walk through the states the device lacks */
	*next_fsm = next[cur_fsm][new_fsm];
	while ((needs[*next_fsm] & flags) != needs[*next_fsm])
		*next_fsm = next[*next_fsm][new_fsm];

	return (*next_fsm != VFIO_DEVICE_STATE_ERROR) ? 0 : -EINVAL;
}
EXPORT_SYMBOL_GPL(vfio_mig_get_next_state);

/* Install @filp, from the driver, as a new fd and report it to the user. */
static int vfio_ioctl_mig_return_fd(struct file *filp, void __user *arg,
				    struct vfio_device_feature_mig_state *mig)
{
	int ret;
	int fd;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_fput;
	}

	mig->data_fd = fd;
	if (copy_to_user(arg, mig, sizeof(*mig))) {
		ret = -EFAULT;
		goto err_put_unused;
	}
	fd_install(fd, filp);
	return 0;

err_put_unused:
	put_unused_fd(fd);
err_fput:
	fput(filp);
	return ret;
}

static int
vfio_ioctl_device_feature_mig_device_state(struct vfio_device *device,
					   u32 flags, void __user *arg,
					   size_t argsz)
{
	size_t minsz =
		offsetofend(struct vfio_device_feature_mig_state, data_fd);
	struct vfio_device_feature_mig_state mig;
	struct file *filp = NULL;
	int ret;

	if (!device->mig_ops)
		return -ENOTTY;

	ret = vfio_check_feature(flags, argsz,
				 VFIO_DEVICE_FEATURE_SET |
				 VFIO_DEVICE_FEATURE_GET,
				 sizeof(mig));
	if (ret != 1)
		return ret;

	if (copy_from_user(&mig, arg, minsz))
		return -EFAULT;

	if (flags & VFIO_DEVICE_FEATURE_GET) {
		enum vfio_device_mig_state curr_state;

		ret = device->mig_ops->migration_get_state(device,
							   &curr_state);
		if (ret)
			return ret;
		mig.device_state = curr_state;
		goto out_copy;
	}

	/* SET: a data transfer state comes with a file to transfer through */
	filp = device->mig_ops->migration_set_state(device, mig.device_state);
	if (IS_ERR(filp) || !filp)
		goto out_copy;

	return vfio_ioctl_mig_return_fd(filp, arg, &mig);
out_copy:
	mig.data_fd = -1;
	if (copy_to_user(arg, &mig, sizeof(mig)))
		return -EFAULT;
	if (IS_ERR(filp))
		return PTR_ERR(filp);
	return 0;
}

static int vfio_ioctl_device_feature_migration(struct vfio_device *device,
					       u32 flags, void __user *arg,
					       size_t argsz)
{
	struct vfio_device_feature_migration mig = {
		.flags = device->migration_flags,
	};
	int ret;

	if (!device->mig_ops)
		return -ENOTTY;

	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET,
				 sizeof(mig));
	if (ret != 1)
		return ret;
	if (copy_to_user(arg, &mig, sizeof(mig)))
		return -EFAULT;
	return 0;
}

/* The ranges of a DMA logging request must fit in one page */
#define LOG_MAX_RANGES \
	(PAGE_SIZE / sizeof(struct vfio_device_feature_dma_logging_range))

static int
vfio_ioctl_device_feature_logging_start(struct vfio_device *device,
					u32 flags, void __user *arg,
					size_t argsz)
{
	size_t minsz =
		offsetofend(struct vfio_device_feature_dma_logging_control,
			    ranges);
	struct vfio_device_feature_dma_logging_range __user *ranges;
	struct vfio_device_feature_dma_logging_control control;
	struct vfio_device_feature_dma_logging_range range;
	struct rb_root_cached root = RB_ROOT_CACHED;
	struct interval_tree_node *nodes;
	u64 iova_end;
	u32 nnodes;
	int i, ret;

	if (!device->log_ops)
		return -ENOTTY;

	ret = vfio_check_feature(flags, argsz,
				 VFIO_DEVICE_FEATURE_SET,
				 sizeof(control));
	if (ret != 1)
		return ret;

	if (copy_from_user(&control, arg, minsz))
		return -EFAULT;

	nnodes = control.num_ranges;
	if (!nnodes)
		return -EINVAL;

	if (nnodes > LOG_MAX_RANGES)
		return -E2BIG;

	ranges = u64_to_user_ptr(control.ranges);
	nodes = kmalloc_array(nnodes, sizeof(struct interval_tree_node),
			      GFP_KERNEL);
	if (!nodes)
		return -ENOMEM;

	for (i = 0; i < nnodes; i++) {
		if (copy_from_user(&range, &ranges[i], sizeof(range))) {
			ret = -EFAULT;
			goto out_free;
		}
		if (!IS_ALIGNED(range.iova, control.page_size) ||
		    !IS_ALIGNED(range.length, control.page_size)) {
			ret = -EINVAL;
			goto out_free;
		}

		if (check_add_overflow(range.iova, range.length, &iova_end) ||
		    iova_end > ULONG_MAX) {
			ret = -EOVERFLOW;
			goto out_free;
		}

		nodes[i].start = range.iova;
		nodes[i].last = range.iova + range.length - 1;
		/* The ranges must not overlap */
		if (interval_tree_iter_first(&root, nodes[i].start,
					     nodes[i].last)) {
			ret = -EINVAL;
			goto out_free;
		}
		interval_tree_insert(nodes + i, &root);
	}

	ret = device->log_ops->log_start(device, &root, nnodes,
					 &control.page_size);
	if (ret)
		goto out_free;

	/* The driver may have changed the page size */
	if (copy_to_user(arg, &control, sizeof(control))) {
		ret = -EFAULT;
		device->log_ops->log_stop(device);
	}

out_free:
	kfree(nodes);
	return ret;
}

static int
vfio_ioctl_device_feature_logging_stop(struct vfio_device *device,
				       u32 flags, void __user *arg,
				       size_t argsz)
{
	int ret;

	if (!device->log_ops)
		return -ENOTTY;

	ret = vfio_check_feature(flags, argsz,
				 VFIO_DEVICE_FEATURE_SET, 0);
	if (ret != 1)
		return ret;

	return device->log_ops->log_stop(device);
}

static int vfio_device_log_read_and_clear(struct iova_bitmap *iter,
					  unsigned long iova, size_t length,
					  void *opaque)
{
	struct vfio_device *device = opaque;

	return device->log_ops->log_read_and_clear(device, iova, length, iter);
}

static int
vfio_ioctl_device_feature_logging_report(struct vfio_device *device,
					 u32 flags, void __user *arg,
					 size_t argsz)
{
	size_t minsz =
		offsetofend(struct vfio_device_feature_dma_logging_report,
			    bitmap);
	struct vfio_device_feature_dma_logging_report report;
	struct iova_bitmap *iter;
	u64 iova_end;
	int ret;

	if (!device->log_ops)
		return -ENOTTY;

	ret = vfio_check_feature(flags, argsz,
				 VFIO_DEVICE_FEATURE_GET,
				 sizeof(report));
	if (ret != 1)
		return ret;

	if (copy_from_user(&report, arg, minsz))
		return -EFAULT;

	if (report.page_size < SZ_4K || !is_power_of_2(report.page_size))
		return -EINVAL;

	if (check_add_overflow(report.iova, report.length, &iova_end) ||
	    iova_end > ULONG_MAX)
		return -EOVERFLOW;

	iter = iova_bitmap_alloc(report.iova, report.length,
				 report.page_size,
				 u64_to_user_ptr(report.bitmap));
	if (IS_ERR(iter))
		return PTR_ERR(iter);

	ret = iova_bitmap_for_each(iter, device,
				   vfio_device_log_read_and_clear);

	iova_bitmap_free(iter);
	return ret;
}

static int vfio_ioctl_device_feature(struct vfio_device *device,
				     struct vfio_device_feature __user *arg)
{
	size_t minsz = offsetofend(struct vfio_device_feature, flags);
	struct vfio_device_feature feature;

	if (copy_from_user(&feature, arg, minsz))
		return -EFAULT;

	if (feature.argsz < minsz)
		return -EINVAL;

	/* No flags beyond the known ones */
	if (feature.flags &
	    ~(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_SET |
	      VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE))
		return -EINVAL;

	/* GET and SET together only with PROBE */
	if (!(feature.flags & VFIO_DEVICE_FEATURE_PROBE) &&
	    (feature.flags & VFIO_DEVICE_FEATURE_SET) &&
	    (feature.flags & VFIO_DEVICE_FEATURE_GET))
		return -EINVAL;

	switch (feature.flags & VFIO_DEVICE_FEATURE_MASK) {
	case VFIO_DEVICE_FEATURE_MIGRATION:
		return vfio_ioctl_device_feature_migration(device,
							   feature.flags,
							   arg->data,
							   feature.argsz - minsz);
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
		return vfio_ioctl_device_feature_mig_device_state(device,
								  feature.flags,
								  arg->data,
								  feature.argsz - minsz);
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
		return vfio_ioctl_device_feature_logging_start(device,
							       feature.flags,
							       arg->data,
							       feature.argsz - minsz);
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
		return vfio_ioctl_device_feature_logging_stop(device,
							      feature.flags,
							      arg->data,
							      feature.argsz - minsz);
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		return vfio_ioctl_device_feature_logging_report(device,
								feature.flags,
								arg->data,
								feature.argsz - minsz);
	default:
		if (unlikely(!device->ops->device_feature))
			return -ENOTTY;
		return device->ops->device_feature(device, feature.flags,
						   arg->data,
						   feature.argsz - minsz);
	}
}

static long vfio_device_fops_unl_ioctl(struct file *filep,
				       unsigned int cmd, unsigned long arg)
{
	struct vfio_device *device = filep->private_data;
	int ret;

	ret = vfio_device_pm_runtime_get(device);
	if (ret)
		return ret;

	switch (cmd) {
	case VFIO_DEVICE_FEATURE:
		ret = vfio_ioctl_device_feature(device, (void __user *)arg);
		break;

	default:
		if (unlikely(!device->ops->ioctl))
			ret = -EINVAL;
		else
			ret = device->ops->ioctl(device, cmd, arg);
		break;
	}

	vfio_device_pm_runtime_put(device);
	return ret;
}

static ssize_t vfio_device_fops_read(struct file *filep, char __user *buf,
				     size_t count, loff_t *ppos)
{
	struct vfio_device *device = filep->private_data;

	if (unlikely(!device->ops->read))
		return -EINVAL;

	return device->ops->read(device, buf, count, ppos);
}

static ssize_t vfio_device_fops_write(struct file *filep,
				      const char __user *buf,
				      size_t count, loff_t *ppos)
{
	struct vfio_device *device = filep->private_data;

	if (unlikely(!device->ops->write))
		return -EINVAL;

	return device->ops->write(device, buf, count, ppos);
}

static int vfio_device_fops_mmap(struct file *filep, struct vm_area_struct *vma)
{
	struct vfio_device *device = filep->private_data;

	if (unlikely(!device->ops->mmap))
		return -EINVAL;

	return device->ops->mmap(device, vma);
}

static const struct file_operations vfio_device_fops = {
	.owner		= THIS_MODULE,
	.release	= vfio_device_fops_release,
	.read		= vfio_device_fops_read,
	.write		= vfio_device_fops_write,
	.unlocked_ioctl	= vfio_device_fops_unl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= vfio_device_fops_mmap,
};

/*
 * Helpers for vfio drivers
 */

/**
 * vfio_info_cap_add - Append a capability to an info capability chain
 * @caps: the chain; its buffer grows by @size
 * @size: size of the capability, header included
 * @id: capability id
 * @version: capability version
 *
 * The chain starts at offset 0 of @caps->buf, next offsets are relative to
 * it; call vfio_info_cap_shift() before copying the chain to the user after
 * the fixed part of the info structure.  On failure the chain is freed.
 *
 * Return: the new, zeroed capability or ERR_PTR(-ENOMEM).
 */
struct vfio_info_cap_header *vfio_info_cap_add(struct vfio_info_cap *caps,
					       size_t size, u16 id, u16 version)
{
	void *buf;
	struct vfio_info_cap_header *header, *tmp;

	buf = krealloc(caps->buf, caps->size + size, GFP_KERNEL);
	if (!buf) {
		kfree(caps->buf);
		caps->buf = NULL;
		caps->size = 0;
		return ERR_PTR(-ENOMEM);
	}

	caps->buf = buf;
	header = buf + caps->size;

	/* All of it goes to the user */
	memset(header, 0, size);

	header->id = id;
	header->version = version;

	/* Link it after the last capability */
	for (tmp = buf; tmp->next; tmp = buf + tmp->next)
		;

	tmp->next = caps->size;
	caps->size += size;

	return header;
}
EXPORT_SYMBOL_GPL(vfio_info_cap_add);

/**
 * vfio_info_cap_shift - Rebase the next offsets of a capability chain
 * @caps: the chain
 * @offset: where the chain will start in the user buffer
 */
void vfio_info_cap_shift(struct vfio_info_cap *caps, size_t offset)
{
	struct vfio_info_cap_header *tmp;
	void *buf = (void *)caps->buf;

	for (tmp = buf; tmp->next; tmp = buf + tmp->next - offset)
		tmp->next += offset;
}
EXPORT_SYMBOL(vfio_info_cap_shift);

/**
 * vfio_info_add_capability - Append a copy of a capability to a chain
 * @caps: the chain
 * @cap: the capability, with its id and version set
 * @size: size of @cap, header included
 *
 * Return: 0 or -ENOMEM.
 */
int vfio_info_add_capability(struct vfio_info_cap *caps,
			     struct vfio_info_cap_header *cap, size_t size)
{
	struct vfio_info_cap_header *header;

	header = vfio_info_cap_add(caps, size, cap->id, cap->version);
	if (IS_ERR(header))
		return PTR_ERR(header);

	/* The header was filled in, and next must stay as linked */
	memcpy(header + 1, cap + 1, size - sizeof(*header));

	return 0;
}
EXPORT_SYMBOL(vfio_info_add_capability);

/**
 * vfio_set_irqs_validate_and_prepare - Check a VFIO_DEVICE_SET_IRQS header
 * @hdr: the header, copied from the user
 * @num_irqs: number of IRQs of the index @hdr->index
 * @max_irq_type: number of IRQ indexes of the device
 * @data_size: set to the size of the data that follows the header; may be
 *             NULL only if @hdr carries no data
 *
 * Return: 0, or -EINVAL if the header is invalid.
 */
int vfio_set_irqs_validate_and_prepare(struct vfio_irq_set *hdr, int num_irqs,
				       int max_irq_type, size_t *data_size)
{
	unsigned long minsz;
	size_t size;

	minsz = offsetofend(struct vfio_irq_set, count);

	if (hdr->argsz < minsz || hdr->index >= max_irq_type ||
	    hdr->count >= (U32_MAX - hdr->start) ||
	    (hdr->flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK |
			    VFIO_IRQ_SET_ACTION_TYPE_MASK)))
		return -EINVAL;

	if (data_size)
		*data_size = 0;

	if (hdr->start >= num_irqs || hdr->start + hdr->count > num_irqs)
		return -EINVAL;

	switch (hdr->flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
	case VFIO_IRQ_SET_DATA_NONE:
		size = 0;
		break;
	case VFIO_IRQ_SET_DATA_BOOL:
		size = sizeof(uint8_t);
		break;
	case VFIO_IRQ_SET_DATA_EVENTFD:
		size = sizeof(int32_t);
		break;
	default:
		return -EINVAL;
	}

	if (size) {
		if (hdr->argsz - minsz < hdr->count * size)
			return -EINVAL;

		if (!data_size)
			return -EINVAL;

		*data_size = hdr->count * size;
	}

	return 0;
}
EXPORT_SYMBOL(vfio_set_irqs_validate_and_prepare);

/*
 * Module init and exit
 */

static int __init vfio_init(void)
{
	int ret;

	ida_init(&vfio.device_ida);

	/* Containers, then groups: /dev/vfio/vfio and /dev/vfio/$GROUP */
	ret = vfio_group_init();
	if (ret)
		goto err_destroy_ida;

	/* /sys/class/vfio-dev/vfioX */
	vfio.device_class = class_create(THIS_MODULE, "vfio-dev");
	if (IS_ERR(vfio.device_class)) {
		ret = PTR_ERR(vfio.device_class);
		vfio.device_class = NULL;
		goto err_group_cleanup;
	}

	pr_info(DRIVER_DESC " version: " DRIVER_VERSION "\n");
	return 0;

err_group_cleanup:
	vfio_group_cleanup();
err_destroy_ida:
	ida_destroy(&vfio.device_ida);
	return ret;
}

static void __exit vfio_cleanup(void)
{
	class_destroy(vfio.device_class);
	vfio.device_class = NULL;
	vfio_group_cleanup();
	ida_destroy(&vfio.device_ida);
	xa_destroy(&vfio_device_set_xa);
}

module_init(vfio_init);
module_exit(vfio_cleanup);

MODULE_VERSION(DRIVER_VERSION);
MODULE_LICENSE("GPL v2");
MODULE_AUTHOR(DRIVER_AUTHOR);
MODULE_DESCRIPTION(DRIVER_DESC);
MODULE_ALIAS_MISCDEV(VFIO_MINOR);
MODULE_ALIAS("devname:vfio/vfio");
MODULE_SOFTDEP("post: vfio_iommu_type1 vfio_iommu_spapr_tce");
