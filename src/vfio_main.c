// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-core: the VFIO device core
 *
 * Owns struct vfio_device: device sets, the life of a device from allocation
 * through registration to release, the device file with VFIO_DEVICE_FEATURE
 * (migration and DMA logging), the helpers vfio drivers call, the KVM
 * reference a device holds while open, and the module itself.  Groups live in
 * group.c, containers in container.c, the dirty bitmap walk in iova_bitmap.c;
 * the lock order of the module is written down at the top of group.c.
 *
 * Behaviour and ABI follow drivers/vfio/vfio_main.c of Linux 6.1,
 * Copyright (C) 2012 Red Hat, Inc.  All rights reserved.
 *     Author: Alex Williamson <alex.williamson@redhat.com>
 * itself derived from the original vfio,
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
#include <linux/nospec.h>
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

#define DRIVER_VERSION	"1.0"
#define DRIVER_AUTHOR	"Alex Williamson <alex.williamson@redhat.com>"
#define DRIVER_DESC	"VFIO - User Level meta-driver (vfio-core: kvm lock-order fix)"

static struct vfio {
	struct class		*device_class;	/* "vfio-dev" */
	struct ida		device_ida;	/* vfio_device->index */
} vfio;

/*
 * The device sets, indexed by set_id.  The xarray's lock also guards the
 * device_count of every set in it: a set is freed when its count drops to 0.
 */
static DEFINE_XARRAY(vfio_device_set_xa);
static const struct file_operations vfio_device_fops;

/*
 * Device sets
 */

static struct vfio_device_set *vfio_device_set_alloc(void *set_id)
{
	struct vfio_device_set *dev_set;

	dev_set = kzalloc(sizeof(*dev_set), GFP_KERNEL);
	if (!dev_set)
		return NULL;

	dev_set->set_id = set_id;
	mutex_init(&dev_set->lock);
	INIT_LIST_HEAD(&dev_set->device_list);
	return dev_set;
}

static void vfio_device_set_free(struct vfio_device_set *dev_set)
{
	mutex_destroy(&dev_set->lock);
	kfree(dev_set);
}

/* The set of @set_id, created if needed, with one more device counted. */
static struct vfio_device_set *vfio_device_set_get(void *set_id)
{
	unsigned long idx = (unsigned long)set_id;
	struct vfio_device_set *dev_set, *new;

	xa_lock(&vfio_device_set_xa);
	dev_set = xa_load(&vfio_device_set_xa, idx);
	if (dev_set)
		dev_set->device_count++;
	xa_unlock(&vfio_device_set_xa);
	if (dev_set)
		return dev_set;

	/* Allocate unlocked, then install unless a racing caller did first */
	new = vfio_device_set_alloc(set_id);
	if (!new)
		return ERR_PTR(-ENOMEM);

	xa_lock(&vfio_device_set_xa);
	dev_set = __xa_cmpxchg(&vfio_device_set_xa, idx, NULL, new, GFP_KERNEL);
	if (!dev_set)
		dev_set = new;
	if (!xa_is_err(dev_set))
		dev_set->device_count++;
	xa_unlock(&vfio_device_set_xa);

	if (dev_set != new)
		vfio_device_set_free(new);
	if (xa_is_err(dev_set))
		return ERR_PTR(xa_err(dev_set));
	return dev_set;
}

/* Uncount a device of @dev_set; the last one frees the set. */
static void vfio_device_set_put(struct vfio_device_set *dev_set)
{
	bool last;

	xa_lock(&vfio_device_set_xa);
	last = !--dev_set->device_count;
	if (last)
		__xa_erase(&vfio_device_set_xa, (unsigned long)dev_set->set_id);
	xa_unlock(&vfio_device_set_xa);

	if (last)
		vfio_device_set_free(dev_set);
}

/**
 * vfio_assign_device_set - Put a device into the device set of an id
 * @device: the device, before registration
 * @set_id: any non-NULL pointer; devices passing the same one share a set
 *
 * The devices of a set share one lock, held around their open_device() and
 * close_device(), so a driver can act on all of them (e.g. a bus reset)
 * when none is open.  A device registered without a set gets a set of its
 * own.  The device leaves the set when it is released.
 *
 * Return: 0, -EINVAL for a NULL @set_id, or -ENOMEM.
 */
int vfio_assign_device_set(struct vfio_device *device, void *set_id)
{
	struct vfio_device_set *dev_set;

	if (WARN_ON(!set_id))
		return -EINVAL;

	dev_set = vfio_device_set_get(set_id);
	if (IS_ERR(dev_set))
		return PTR_ERR(dev_set);

	mutex_lock(&dev_set->lock);
	device->dev_set = dev_set;
	list_add_tail(&device->dev_set_list, &dev_set->device_list);
	mutex_unlock(&dev_set->lock);
	return 0;
}
EXPORT_SYMBOL_GPL(vfio_assign_device_set);

/* Undo vfio_assign_device_set(), if the device was put in a set. */
static void vfio_device_leave_set(struct vfio_device *device)
{
	struct vfio_device_set *dev_set = device->dev_set;

	if (!dev_set)
		return;

	mutex_lock(&dev_set->lock);
	list_del(&device->dev_set_list);
	mutex_unlock(&dev_set->lock);
	vfio_device_set_put(dev_set);
}

/**
 * vfio_device_set_open_count - How many times the devices of a set are open
 * @dev_set: the device set; its lock must be held
 *
 * Return: the sum of the open counts of the devices in @dev_set.
 */
unsigned int vfio_device_set_open_count(struct vfio_device_set *dev_set)
{
	unsigned int open_count = 0;
	struct vfio_device *device;

	lockdep_assert_held(&dev_set->lock);

	list_for_each_entry(device, &dev_set->device_list, dev_set_list)
		open_count += device->open_count;
	return open_count;
}
EXPORT_SYMBOL_GPL(vfio_device_set_open_count);

/*
 * The life of a device: allocation, registration, unregistration, release
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

/* device.release, reached through the last vfio_put_device() */
static void vfio_device_release(struct device *dev)
{
	struct vfio_device *device = container_of(dev, struct vfio_device,
						  device);

	vfio_device_leave_set(device);
	ida_free(&vfio.device_ida, device->index);

	/*
	 * The memory is the driver's to free, in its release op (most use
	 * vfio_free_device()): vfio-ccw embeds the vfio_device in a structure
	 * with a lifetime of its own.
	 */
	device->ops->release(device);
}

/**
 * vfio_init_device - Initialize a vfio_device the driver allocated itself
 * @device: the zeroed vfio_device
 * @dev: the device to drive
 * @ops: the driver callbacks; @ops->init, if set, initializes the rest
 *
 * Only for vfio-ccw; other drivers use vfio_alloc_device().  After success
 * the device is released with vfio_put_device().
 *
 * Return: 0, or a negative errno with nothing left to undo.
 */
int vfio_init_device(struct vfio_device *device, struct device *dev,
		     const struct vfio_device_ops *ops)
{
	int index, ret;

	index = ida_alloc_max(&vfio.device_ida, MINORMASK, GFP_KERNEL);
	if (index < 0) {
		dev_dbg(dev, "no vfio device index left: %d\n", index);
		return index;
	}

	device->index = index;
	device->dev = dev;
	device->ops = ops;
	init_completion(&device->comp);

	if (ops->init) {
		ret = ops->init(device);
		if (ret)
			goto err_free_index;
	}

	/* From here on, the last vfio_put_device() calls vfio_device_release() */
	device_initialize(&device->device);
	device->device.release = vfio_device_release;
	device->device.class = vfio.device_class;
	device->device.parent = dev;
	return 0;

err_free_index:
	/* @ops->init may have put the device in a set before failing */
	vfio_device_leave_set(device);
	ida_free(&vfio.device_ida, index);
	return ret;
}
EXPORT_SYMBOL_GPL(vfio_init_device);

/**
 * _vfio_alloc_device - Allocate and initialize a vfio_device
 * @size: size of the driver structure that embeds the vfio_device first
 * @dev: the device to drive
 * @ops: the driver callbacks; @ops->init, if set, initializes the rest
 *
 * Drivers use the vfio_alloc_device() wrapper.  After success the structure
 * is released with vfio_put_device().
 *
 * Return: the vfio_device or an ERR_PTR().
 */
struct vfio_device *_vfio_alloc_device(size_t size, struct device *dev,
				       const struct vfio_device_ops *ops)
{
	struct vfio_device *device;
	int ret;

	if (WARN_ON(size < sizeof(*device)))
		return ERR_PTR(-EINVAL);

	device = kvzalloc(size, GFP_KERNEL);
	if (!device)
		return ERR_PTR(-ENOMEM);

	ret = vfio_init_device(device, dev, ops);
	if (ret) {
		kvfree(device);
		return ERR_PTR(ret);
	}
	return device;
}
EXPORT_SYMBOL_GPL(_vfio_alloc_device);

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

static int vfio_device_register(struct vfio_device *device,
				enum vfio_group_type type)
{
	int ret;

	/* Finds or creates the group; device->group holds a drivers ref */
	ret = vfio_device_set_group(device, type);
	if (ret)
		return ret;

	/* A device its driver put in no set is a set of its own */
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

	/* The registration reference, dropped by vfio_unregister_group_dev() */
	refcount_set(&device->refcount, 1);

	/* Last: from here on the group's users can find and open the device */
	vfio_device_group_register(device);
	return 0;

err_remove_group:
	vfio_device_remove_group(device);
	return ret;
}

/**
 * vfio_register_group_dev - Register a device translated by an IOMMU
 * @device: the initialized device
 *
 * The device joins the group of its iommu_group (or a noiommu group when
 * enabled), shows up in /sys/class/vfio-dev and can be opened from then on.
 *
 * Return: 0 or a negative errno.
 */
int vfio_register_group_dev(struct vfio_device *device)
{
	return vfio_device_register(device, VFIO_IOMMU);
}
EXPORT_SYMBOL_GPL(vfio_register_group_dev);

/**
 * vfio_register_emulated_iommu_dev - Register a device without an IOMMU
 * @device: the initialized device
 *
 * For devices whose DMA the driver mediates (it uses vfio_pin_pages() or
 * vfio_dma_rw()): the user must not be able to make the device DMA on its
 * own.  The device gets a group of its own.
 *
 * Return: 0 or a negative errno.
 */
int vfio_register_emulated_iommu_dev(struct vfio_device *device)
{
	return vfio_device_register(device, VFIO_EMULATED_IOMMU);
}
EXPORT_SYMBOL_GPL(vfio_register_emulated_iommu_dev);

/*
 * Wait until the last registration reference is gone: every device file is
 * closed.  Asks the driver (request op) to make the user let go, at once and
 * then every 10 seconds.  A signal ends only the interruptible part: the
 * wait goes on uninterruptibly, with a warning naming the blocked task.
 */
static void vfio_device_wait_for_users(struct vfio_device *device)
{
	bool interruptible = true;
	unsigned int requests = 0;
	long left;

	if (try_wait_for_completion(&device->comp))
		return;

	do {
		if (device->ops->request)
			device->ops->request(device, requests++);

		if (!interruptible) {
			left = wait_for_completion_timeout(&device->comp,
							   10 * HZ);
			continue;
		}

		left = wait_for_completion_interruptible_timeout(&device->comp,
								 10 * HZ);
		if (left < 0) {
			interruptible = false;
			dev_warn(device->dev,
				 "Device is currently in use, task \"%s\" (%d) blocked until device is released",
				 current->comm, task_pid_nr(current));
		}
	} while (left <= 0);
}

/**
 * vfio_unregister_group_dev - Unregister a device
 * @device: a registered device
 *
 * Waits until every file of the device is closed (see above), then removes
 * the device from its group and from sysfs.  The caller still holds the
 * device and releases it with vfio_put_device().
 */
void vfio_unregister_group_dev(struct vfio_device *device)
{
	vfio_device_put_registration(device);
	vfio_device_wait_for_users(device);

	vfio_device_group_unregister(device);
	device_del(&device->device);
	vfio_device_remove_group(device);
}
EXPORT_SYMBOL_GPL(vfio_unregister_group_dev);

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

static int vfio_device_fops_release(struct inode *inode, struct file *filep)
{
	struct vfio_device *device = filep->private_data;

	vfio_device_group_close(device);

	/* Taken by VFIO_GROUP_GET_DEVICE_FD, owned by the file */
	vfio_device_put_registration(device);
	return 0;
}

/* A device whose driver has dev_pm_ops is resumed around each ioctl. */
static bool vfio_device_has_runtime_pm(struct vfio_device *device)
{
	return device->dev->driver && device->dev->driver->pm;
}

static int vfio_device_pm_runtime_get(struct vfio_device *device)
{
	int ret;

	if (!vfio_device_has_runtime_pm(device))
		return 0;

	ret = pm_runtime_resume_and_get(device->dev);
	if (!ret)
		return 0;

	dev_info_ratelimited(device->dev, "vfio: runtime resume failed %d\n",
			     ret);
	return -EIO;
}

static void vfio_device_pm_runtime_put(struct vfio_device *device)
{
	if (vfio_device_has_runtime_pm(device))
		pm_runtime_put(device->dev);
}

/*
 * Migration: the state machine
 *
 * The states of a migrating device form a tree rooted at STOP, and a driver
 * implements exactly the arcs between a state and its parent, both ways:
 *
 *	RUNNING -- RUNNING_P2P -- STOP -- STOP_COPY
 *	                           |
 *	                           +----- RESUMING
 *
 * A device without VFIO_MIGRATION_P2P lacks RUNNING_P2P and goes between
 * RUNNING and STOP directly.  Any other transition is split into these arcs
 * along the path through the tree.  ERROR is outside the tree: no arc leads
 * into or out of it.
 */
#define VFIO_MIG_NEEDS_BASE	VFIO_MIGRATION_STOP_COPY
#define VFIO_MIG_NEEDS_P2P	(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P)

struct vfio_mig_state {
	u8 parent;	/* one arc closer to STOP */
	u32 needs;	/* the migration_flags a device needs for the state */
};

static const struct vfio_mig_state vfio_mig_states[] = {
	[VFIO_DEVICE_STATE_ERROR] = { VFIO_DEVICE_STATE_ERROR, ~0U },
	[VFIO_DEVICE_STATE_STOP] = { VFIO_DEVICE_STATE_STOP, VFIO_MIG_NEEDS_BASE },
	[VFIO_DEVICE_STATE_RUNNING] = { VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_MIG_NEEDS_BASE },
	[VFIO_DEVICE_STATE_STOP_COPY] = { VFIO_DEVICE_STATE_STOP, VFIO_MIG_NEEDS_BASE },
	[VFIO_DEVICE_STATE_RESUMING] = { VFIO_DEVICE_STATE_STOP, VFIO_MIG_NEEDS_BASE },
	[VFIO_DEVICE_STATE_RUNNING_P2P] = { VFIO_DEVICE_STATE_STOP, VFIO_MIG_NEEDS_P2P },
};

static bool vfio_mig_state_supported(struct vfio_device *device,
				     enum vfio_device_mig_state state)
{
	u32 needs;

	if (state >= ARRAY_SIZE(vfio_mig_states))
		return false;
	needs = vfio_mig_states[state].needs;
	return (device->migration_flags & needs) == needs;
}

/* The state one arc from @from towards @to; distinct states of the tree. */
static enum vfio_device_mig_state
vfio_mig_step(enum vfio_device_mig_state from, enum vfio_device_mig_state to)
{
	enum vfio_device_mig_state state;

	/* Down, if @to lies below @from: to the child on the way to @to */
	for (state = to; state != VFIO_DEVICE_STATE_STOP;
	     state = vfio_mig_states[state].parent)
		if (vfio_mig_states[state].parent == from)
			return state;

	/* Up otherwise */
	return vfio_mig_states[from].parent;
}

/**
 * vfio_mig_get_next_state - The next step towards a migration state
 * @device: the device, with its migration_flags set
 * @cur_fsm: the state the device is in
 * @new_fsm: the state to reach
 * @next_fsm: set to the state to go to next
 *
 * Splits the transition from @cur_fsm to @new_fsm into the arcs a driver
 * implements: RESUMING <-> STOP <-> STOP_COPY, plus RUNNING <-> RUNNING_P2P
 * <-> STOP with VFIO_MIGRATION_P2P or RUNNING <-> STOP without.  A driver
 * calls it, and takes the step, until @next_fsm is @new_fsm.
 *
 * Return: 0; or -EINVAL if the device does not support @new_fsm (it warns
 * when it does not support @cur_fsm), or if either is ERROR.
 */
int vfio_mig_get_next_state(struct vfio_device *device,
			    enum vfio_device_mig_state cur_fsm,
			    enum vfio_device_mig_state new_fsm,
			    enum vfio_device_mig_state *next_fsm)
{
	enum vfio_device_mig_state next = cur_fsm;

	if (WARN_ON(!vfio_mig_state_supported(device, cur_fsm)))
		return -EINVAL;
	if (!vfio_mig_state_supported(device, new_fsm))
		return -EINVAL;

	if (cur_fsm == VFIO_DEVICE_STATE_ERROR ||
	    new_fsm == VFIO_DEVICE_STATE_ERROR) {
		*next_fsm = VFIO_DEVICE_STATE_ERROR;
		return -EINVAL;
	}

	/* Walk the path, passing through the states the device lacks */
	while (next != new_fsm) {
		next = vfio_mig_step(next, new_fsm);
		if (vfio_mig_state_supported(device, next))
			break;
	}
	*next_fsm = next;
	return 0;
}
EXPORT_SYMBOL_GPL(vfio_mig_get_next_state);

/*
 * VFIO_DEVICE_FEATURE
 *
 * The core implements the migration and DMA logging features for a device
 * whose driver set mig_ops or log_ops; all other features are the driver's
 * (its device_feature op).  Each core feature is one row of
 * vfio_core_features[]; vfio_ioctl_device_feature() checks the header and
 * the row's directions and size, reads the payload in and calls the row's
 * handler, which does only what is particular to the feature.
 */

/* The payloads of the core features, as read from and written to the user */
union vfio_feature_data {
	struct vfio_device_feature_migration migration;
	struct vfio_device_feature_mig_state mig_state;
	struct vfio_device_feature_dma_logging_control log_control;
	struct vfio_device_feature_dma_logging_report log_report;
};

/* The driver ops a core feature needs */
enum vfio_feature_ops {
	VFIO_FEATURE_MIG_OPS,
	VFIO_FEATURE_LOG_OPS,
};

struct vfio_core_feature {
	u32 directions;	/* VFIO_DEVICE_FEATURE_GET and/or _SET */
	u32 size;	/* payload the user must pass for a GET or SET */
	bool read;	/* the handler needs the payload read in */
	enum vfio_feature_ops ops;
	/* @udata is the user's payload, @data its copy if @read */
	int (*handler)(struct vfio_device *device, u32 flags,
		       union vfio_feature_data *data, void __user *udata);
};

/* The ranges of a DMA logging start must fit in one page */
#define VFIO_LOG_MAX_RANGES \
	(PAGE_SIZE / sizeof(struct vfio_device_feature_dma_logging_range))

static int vfio_feature_migration(struct vfio_device *device, u32 flags,
				  union vfio_feature_data *data,
				  void __user *udata)
{
	data->migration.flags = device->migration_flags;
	if (copy_to_user(udata, &data->migration, sizeof(data->migration)))
		return -EFAULT;
	return 0;
}

/* Hand the data transfer file of a migration state to the user as an fd. */
static int vfio_mig_install_data_fd(struct file *filp,
				    struct vfio_device_feature_mig_state *mig,
				    void __user *udata)
{
	int ret;

	mig->data_fd = get_unused_fd_flags(O_CLOEXEC);
	if (mig->data_fd < 0) {
		ret = mig->data_fd;
		goto err_fput;
	}

	if (copy_to_user(udata, mig, sizeof(*mig))) {
		ret = -EFAULT;
		goto err_put_fd;
	}

	fd_install(mig->data_fd, filp);
	return 0;

err_put_fd:
	put_unused_fd(mig->data_fd);
err_fput:
	fput(filp);
	return ret;
}

static int vfio_feature_mig_device_state(struct vfio_device *device,
					 u32 flags,
					 union vfio_feature_data *data,
					 void __user *udata)
{
	const struct vfio_migration_ops *ops = device->mig_ops;
	struct vfio_device_feature_mig_state *mig = &data->mig_state;
	enum vfio_device_mig_state state;
	struct file *filp = NULL;
	int ret;

	if (flags & VFIO_DEVICE_FEATURE_GET) {
		ret = ops->migration_get_state(device, &state);
		if (ret)
			return ret;
		mig->device_state = state;
	} else {
		/* Entering a data transfer state yields its file */
		filp = ops->migration_set_state(device, mig->device_state);
		if (!IS_ERR_OR_NULL(filp))
			return vfio_mig_install_data_fd(filp, mig, udata);
	}

	/* No file: data_fd is -1, reported even along with a failed SET */
	mig->data_fd = -1;
	if (copy_to_user(udata, mig, sizeof(*mig)))
		return -EFAULT;
	return PTR_ERR_OR_ZERO(filp);
}

/* Whether [@iova, @iova + @length) ends beyond what an unsigned long holds */
static bool vfio_log_range_overflows(u64 iova, u64 length)
{
	u64 end;

	return check_add_overflow(iova, length, &end) || end > ULONG_MAX;
}

/*
 * Read the user's ranges into @nodes and @root: each must be aligned to the
 * page size, fit in an unsigned long and overlap none of the others.
 */
static int
vfio_log_read_ranges(struct vfio_device_feature_dma_logging_control *ctl,
		     struct interval_tree_node *nodes,
		     struct rb_root_cached *root)
{
	struct vfio_device_feature_dma_logging_range __user *uranges;
	struct vfio_device_feature_dma_logging_range range;
	u32 i;

	uranges = u64_to_user_ptr(ctl->ranges);
	for (i = 0; i < ctl->num_ranges; i++) {
		if (copy_from_user(&range, &uranges[i], sizeof(range)))
			return -EFAULT;
		if (!IS_ALIGNED(range.iova, ctl->page_size) ||
		    !IS_ALIGNED(range.length, ctl->page_size))
			return -EINVAL;
		if (vfio_log_range_overflows(range.iova, range.length))
			return -EOVERFLOW;

		nodes[i].start = range.iova;
		nodes[i].last = range.iova + range.length - 1;
		if (interval_tree_iter_first(root, nodes[i].start,
					     nodes[i].last))
			return -EINVAL;
		interval_tree_insert(&nodes[i], root);
	}
	return 0;
}

static int vfio_feature_log_start(struct vfio_device *device, u32 flags,
				  union vfio_feature_data *data,
				  void __user *udata)
{
	struct vfio_device_feature_dma_logging_control *ctl = &data->log_control;
	struct rb_root_cached root = RB_ROOT_CACHED;
	struct interval_tree_node *nodes;
	int ret;

	if (!ctl->num_ranges)
		return -EINVAL;
	if (ctl->num_ranges > VFIO_LOG_MAX_RANGES)
		return -E2BIG;

	nodes = kmalloc_array(ctl->num_ranges, sizeof(*nodes), GFP_KERNEL);
	if (!nodes)
		return -ENOMEM;

	ret = vfio_log_read_ranges(ctl, nodes, &root);
	if (ret)
		goto out_free;

	ret = device->log_ops->log_start(device, &root, ctl->num_ranges,
					 &ctl->page_size);
	if (ret)
		goto out_free;

	/* The user learns the page size the driver chose, or nothing starts */
	if (copy_to_user(udata, ctl, sizeof(*ctl))) {
		device->log_ops->log_stop(device);
		ret = -EFAULT;
	}

out_free:
	kfree(nodes);
	return ret;
}

static int vfio_feature_log_stop(struct vfio_device *device, u32 flags,
				 union vfio_feature_data *data,
				 void __user *udata)
{
	return device->log_ops->log_stop(device);
}

static int vfio_log_report_window(struct iova_bitmap *dirty,
				  unsigned long iova, size_t length,
				  void *opaque)
{
	struct vfio_device *device = opaque;

	return device->log_ops->log_read_and_clear(device, iova, length, dirty);
}

static int vfio_feature_log_report(struct vfio_device *device, u32 flags,
				   union vfio_feature_data *data,
				   void __user *udata)
{
	struct vfio_device_feature_dma_logging_report *report =
		&data->log_report;
	struct iova_bitmap *dirty;
	int ret;

	if (report->page_size < SZ_4K || !is_power_of_2(report->page_size))
		return -EINVAL;
	if (vfio_log_range_overflows(report->iova, report->length))
		return -EOVERFLOW;

	dirty = iova_bitmap_alloc(report->iova, report->length,
				  report->page_size,
				  u64_to_user_ptr(report->bitmap));
	if (IS_ERR(dirty))
		return PTR_ERR(dirty);

	ret = iova_bitmap_for_each(dirty, device, vfio_log_report_window);
	iova_bitmap_free(dirty);
	return ret;
}

#define VFIO_FEATURE_GET_SET (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)

static const struct vfio_core_feature vfio_core_features[] = {
	[VFIO_DEVICE_FEATURE_MIGRATION] = {
		.directions = VFIO_DEVICE_FEATURE_GET,
		.size = sizeof(struct vfio_device_feature_migration),
		.ops = VFIO_FEATURE_MIG_OPS,
		.handler = vfio_feature_migration,
	},
	[VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE] = {
		.directions = VFIO_FEATURE_GET_SET,
		.size = sizeof(struct vfio_device_feature_mig_state),
		.read = true,
		.ops = VFIO_FEATURE_MIG_OPS,
		.handler = vfio_feature_mig_device_state,
	},
	[VFIO_DEVICE_FEATURE_DMA_LOGGING_START] = {
		.directions = VFIO_DEVICE_FEATURE_SET,
		.size = sizeof(struct vfio_device_feature_dma_logging_control),
		.read = true,
		.ops = VFIO_FEATURE_LOG_OPS,
		.handler = vfio_feature_log_start,
	},
	[VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP] = {
		.directions = VFIO_DEVICE_FEATURE_SET,
		.size = 0,
		.ops = VFIO_FEATURE_LOG_OPS,
		.handler = vfio_feature_log_stop,
	},
	[VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT] = {
		.directions = VFIO_DEVICE_FEATURE_GET,
		.size = sizeof(struct vfio_device_feature_dma_logging_report),
		.read = true,
		.ops = VFIO_FEATURE_LOG_OPS,
		.handler = vfio_feature_log_report,
	},
};

/* The core's row for feature @id, or NULL if the feature is the driver's */
static const struct vfio_core_feature *vfio_core_feature(u32 id)
{
	if (id >= ARRAY_SIZE(vfio_core_features))
		return NULL;
	id = array_index_nospec(id, ARRAY_SIZE(vfio_core_features));
	return vfio_core_features[id].handler ? &vfio_core_features[id] : NULL;
}

static bool vfio_device_has_feature_ops(struct vfio_device *device,
					enum vfio_feature_ops ops)
{
	if (ops == VFIO_FEATURE_MIG_OPS)
		return device->mig_ops;
	return device->log_ops;
}

/* No unknown flag, and GET together with SET only to probe */
static bool vfio_feature_flags_valid(u32 flags)
{
	u32 known = VFIO_DEVICE_FEATURE_MASK | VFIO_FEATURE_GET_SET |
		    VFIO_DEVICE_FEATURE_PROBE;

	if (flags & ~known)
		return false;
	return (flags & VFIO_FEATURE_GET_SET) != VFIO_FEATURE_GET_SET ||
	       (flags & VFIO_DEVICE_FEATURE_PROBE);
}

static int vfio_ioctl_device_feature(struct vfio_device *device,
				     struct vfio_device_feature __user *arg)
{
	size_t hdrsz = offsetofend(struct vfio_device_feature, flags);
	const struct vfio_core_feature *feature;
	struct vfio_device_feature hdr;
	union vfio_feature_data data;
	size_t datasz;
	int ret;

	if (copy_from_user(&hdr, arg, hdrsz))
		return -EFAULT;
	if (hdr.argsz < hdrsz || !vfio_feature_flags_valid(hdr.flags))
		return -EINVAL;
	datasz = hdr.argsz - hdrsz;

	feature = vfio_core_feature(hdr.flags & VFIO_DEVICE_FEATURE_MASK);
	if (!feature) {
		if (!device->ops->device_feature)
			return -ENOTTY;
		return device->ops->device_feature(device, hdr.flags,
						   arg->data, datasz);
	}

	if (!vfio_device_has_feature_ops(device, feature->ops))
		return -ENOTTY;

	/* 1: do the GET or SET; else the answer, 0 for a successful PROBE */
	ret = vfio_check_feature(hdr.flags, datasz, feature->directions,
				 feature->size);
	if (ret != 1)
		return ret;

	if (feature->read && copy_from_user(&data, arg->data, feature->size))
		return -EFAULT;
	return feature->handler(device, hdr.flags, &data, arg->data);
}

static long vfio_device_ioctl(struct vfio_device *device, unsigned int cmd,
			      unsigned long arg)
{
	if (cmd == VFIO_DEVICE_FEATURE)
		return vfio_ioctl_device_feature(device, (void __user *)arg);
	if (!device->ops->ioctl)
		return -EINVAL;
	return device->ops->ioctl(device, cmd, arg);
}

static long vfio_device_fops_unl_ioctl(struct file *filep, unsigned int cmd,
				       unsigned long arg)
{
	struct vfio_device *device = filep->private_data;
	int ret;

	/* The driver's ioctls run with the device resumed */
	ret = vfio_device_pm_runtime_get(device);
	if (!ret) {
		/* An int, as in stock: a driver's long result is truncated */
		ret = vfio_device_ioctl(device, cmd, arg);
		vfio_device_pm_runtime_put(device);
	}
	return ret;
}

/* read, write and mmap are the driver's; -EINVAL if it has none */
static ssize_t vfio_device_fops_read(struct file *filep, char __user *buf,
				     size_t count, loff_t *ppos)
{
	struct vfio_device *device = filep->private_data;

	if (!device->ops->read)
		return -EINVAL;
	return device->ops->read(device, buf, count, ppos);
}

static ssize_t vfio_device_fops_write(struct file *filep,
				      const char __user *buf,
				      size_t count, loff_t *ppos)
{
	struct vfio_device *device = filep->private_data;

	if (!device->ops->write)
		return -EINVAL;
	return device->ops->write(device, buf, count, ppos);
}

static int vfio_device_fops_mmap(struct file *filep,
				 struct vm_area_struct *vma)
{
	struct vfio_device *device = filep->private_data;

	if (!device->ops->mmap)
		return -EINVAL;
	return device->ops->mmap(device, vma);
}

static const struct file_operations vfio_device_fops = {
	.owner		= THIS_MODULE,
	.read		= vfio_device_fops_read,
	.write		= vfio_device_fops_write,
	.mmap		= vfio_device_fops_mmap,
	.unlocked_ioctl	= vfio_device_fops_unl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.release	= vfio_device_fops_release,
};

/*
 * Helpers for vfio drivers: info capability chains and SET_IRQS
 *
 * A capability chain is built in a kernel buffer, each capability's next
 * field holding the offset of the following one from the start of the
 * buffer (0 ends the chain), and copied to the user after the fixed part of
 * an info structure once vfio_info_cap_shift() rebased the offsets.
 */

/**
 * vfio_info_cap_add - Append a capability to an info capability chain
 * @caps: the chain; its buffer grows by @size
 * @size: size of the capability, header included
 * @id: capability id
 * @version: capability version
 *
 * On failure the whole chain is freed and @caps is empty.
 *
 * Return: the new capability, zeroed but for its header, or
 * ERR_PTR(-ENOMEM).
 */
struct vfio_info_cap_header *vfio_info_cap_add(struct vfio_info_cap *caps,
					       size_t size, u16 id, u16 version)
{
	struct vfio_info_cap_header *cap, *last;
	void *buf;

	buf = krealloc(caps->buf, caps->size + size, GFP_KERNEL);
	if (!buf) {
		kfree(caps->buf);
		caps->buf = NULL;
		caps->size = 0;
		return ERR_PTR(-ENOMEM);
	}

	/* All of it reaches the user */
	cap = buf + caps->size;
	memset(cap, 0, size);
	cap->id = id;
	cap->version = version;

	/* The first capability ends up linking to itself at offset 0 */
	last = buf;
	while (last->next)
		last = buf + last->next;
	last->next = caps->size;

	caps->buf = buf;
	caps->size += size;
	return cap;
}
EXPORT_SYMBOL_GPL(vfio_info_cap_add);

/**
 * vfio_info_cap_shift - Rebase the next offsets of a capability chain
 * @caps: the chain, not empty
 * @offset: where the chain starts in the user's buffer
 */
void vfio_info_cap_shift(struct vfio_info_cap *caps, size_t offset)
{
	void *buf = caps->buf;
	struct vfio_info_cap_header *cap = buf;
	u32 next;

	while (cap->next) {
		next = cap->next;
		cap->next += offset;
		cap = buf + next;
	}
}
EXPORT_SYMBOL(vfio_info_cap_shift);

/**
 * vfio_info_add_capability - Append a copy of a capability to a chain
 * @caps: the chain
 * @cap: the capability, with its id and version set
 * @size: size of @cap, header included
 *
 * Return: 0, or -ENOMEM with the chain freed.
 */
int vfio_info_add_capability(struct vfio_info_cap *caps,
			     struct vfio_info_cap_header *cap, size_t size)
{
	struct vfio_info_cap_header *copy;

	copy = vfio_info_cap_add(caps, size, cap->id, cap->version);
	if (IS_ERR(copy))
		return PTR_ERR(copy);

	/* The body only: the header of the copy is already linked */
	memcpy(copy + 1, cap + 1, size - sizeof(*copy));
	return 0;
}
EXPORT_SYMBOL(vfio_info_add_capability);

/* Bytes per IRQ of the data a SET_IRQS carries, or -EINVAL */
static int vfio_irq_set_data_bytes(u32 flags)
{
	switch (flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
	case VFIO_IRQ_SET_DATA_NONE:
		return 0;
	case VFIO_IRQ_SET_DATA_BOOL:
		return sizeof(u8);
	case VFIO_IRQ_SET_DATA_EVENTFD:
		return sizeof(s32);
	default:
		return -EINVAL;
	}
}

/**
 * vfio_set_irqs_validate_and_prepare - Check a VFIO_DEVICE_SET_IRQS header
 * @hdr: the header, copied from the user
 * @num_irqs: number of IRQs of the index @hdr->index
 * @max_irq_type: number of IRQ indexes of the device
 * @data_size: set to the size of the data that follows the header; may be
 *             NULL only if @hdr carries no data
 *
 * Checks the header on its own (argsz, index, unknown flags, start + count
 * not wrapping), then against the device (the IRQ range, the data type and
 * the size of the data).  @data_size is set to 0 once the header is valid on
 * its own.
 *
 * Return: 0, or -EINVAL if the header is invalid.
 */
int vfio_set_irqs_validate_and_prepare(struct vfio_irq_set *hdr, int num_irqs,
				       int max_irq_type, size_t *data_size)
{
	size_t hdrsz = offsetofend(struct vfio_irq_set, count);
	u32 known = VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK;
	size_t bytes;
	int per_irq;

	if (hdr->argsz < hdrsz || hdr->index >= max_irq_type ||
	    hdr->count >= U32_MAX - hdr->start || (hdr->flags & ~known))
		return -EINVAL;

	if (data_size)
		*data_size = 0;

	if (hdr->start >= num_irqs || hdr->start + hdr->count > num_irqs)
		return -EINVAL;

	per_irq = vfio_irq_set_data_bytes(hdr->flags);
	if (per_irq <= 0)
		return per_irq;

	bytes = (size_t)hdr->count * per_irq;
	if (hdr->argsz - hdrsz < bytes || !data_size)
		return -EINVAL;
	*data_size = bytes;
	return 0;
}
EXPORT_SYMBOL(vfio_set_irqs_validate_and_prepare);

/*
 * The module
 */

static int __init vfio_init(void)
{
	int ret;

	ida_init(&vfio.device_ida);

	/* Containers and groups: /dev/vfio/vfio and /dev/vfio/$GROUP */
	ret = vfio_group_init();
	if (ret)
		goto err_destroy_ida;

	/* Registered devices: /sys/class/vfio-dev/vfio$INDEX */
	vfio.device_class = class_create(THIS_MODULE, "vfio-dev");
	if (IS_ERR(vfio.device_class)) {
		ret = PTR_ERR(vfio.device_class);
		vfio.device_class = NULL;
		goto err_group_cleanup;
	}

	pr_info("vfio-core " DRIVER_VERSION ": vfio core with the vfio/KVM lock-order fix\n");
	return 0;

err_group_cleanup:
	vfio_group_cleanup();
err_destroy_ida:
	ida_destroy(&vfio.device_ida);
	return ret;
}
module_init(vfio_init);

static void __exit vfio_cleanup(void)
{
	xa_destroy(&vfio_device_set_xa);
	class_destroy(vfio.device_class);
	vfio.device_class = NULL;
	vfio_group_cleanup();
	ida_destroy(&vfio.device_ida);
}
module_exit(vfio_cleanup);

MODULE_DESCRIPTION(DRIVER_DESC);
MODULE_VERSION(DRIVER_VERSION);
MODULE_AUTHOR(DRIVER_AUTHOR);
MODULE_LICENSE("GPL v2");
/* Loaded on the first open of /dev/vfio/vfio, with the type1 backend after */
MODULE_ALIAS_MISCDEV(VFIO_MINOR);
MODULE_ALIAS("devname:vfio/vfio");
MODULE_SOFTDEP("post: vfio_iommu_type1 vfio_iommu_spapr_tce");
