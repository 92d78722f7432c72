// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-core: VFIO groups, /dev/vfio/$GROUP
 *
 * A vfio_group stands for an iommu_group whose devices are bound to vfio
 * drivers.  This file owns everything about it: finding and creating groups
 * as devices register, the group character devices, the group file and its
 * ioctls, opening a device through its group (container, KVM) and the
 * vfio_file_*() helpers KVM calls on a group file.  Containers live in
 * container.c, the VM references in kvm.c, devices in vfio_main.c.
 *
 * Based on drivers/vfio/vfio_main.c of Linux 6.1,
 * Copyright (C) 2012 Red Hat, Inc.  All rights reserved.
 *     Author: Alex Williamson <alex.williamson@redhat.com>
 *
 * Lock order of vfio.ko, and of the KVM locks around it.  Each lock is
 * taken only while holding none of the locks listed below it; any lock may
 * be taken without those above it:
 *
 *   device->dev_set->lock          the open_count of a set's devices
 *   vfio.group_lock                this file: the list of groups
 *   group->device_lock             a group's device list; the driver's
 *                                  match() runs under it
 *   group->group_lock              container, container_users, opened_file;
 *                                  held around the driver's open_device() and
 *                                  close_device()
 *   kvm->lock                      taken by drivers in open/close_device()
 *                                  (vfio_ap, s390 zPCI), held by KVM around
 *                                  kvm_vfio_release()
 *   kv->lock                       KVM: a KVM VFIO device's group list
 *   container->group_lock          container.c (rwsem): a container's groups
 *                                  and backend
 *   vfio.iommu_drivers_lock        container.c: the registered backends
 *   backend and driver locks       e.g. type1's iommu->lock, what the
 *                                  drivers' dma_unmap() takes under UNMAP_DMA
 *                                  and their match() under device_lock
 *
 *   vfio.container_ref_lock        container.c: group->container for readers
 *                                  without group_lock
 *   vfio_kvm.lock                  kvm.c: every group->kvm, KVM's functions
 *                                  and their users
 *
 * The two spinlocks are innermost: taken under any of the above, with
 * nothing taken under them.
 *
 * KVM holds its own locks when it calls the vfio_file_*() helpers:
 * vfio_file_set_kvm() under kv->lock (KVM_DEV_VFIO_GROUP_ADD/DEL) or
 * kvm->lock (kvm_vfio_release()), vfio_file_enforced_coherent() under kv->lock
 * (kvm_vfio_update_coherency(), itself under kvm->lock on release).  So
 * those helpers take only locks listed below kv->lock: never
 * group->group_lock, which drivers hold when they take kvm->lock.  Stock 6.1
 * took group_lock in both: the first is the kvm->lock <-> group_lock deadlock
 * vfio-core exists to fix, the second a kv->lock -> group_lock -> kvm->lock
 * cycle that lockdep reports.  vfio_file_iommu_group() still takes
 * group_lock, as upstream does; it is built only with SPAPR_TCE_IOMMU
 * (ppc64), where no driver takes kvm->lock.
 *
 * A device's VM reference is put under dev_set->lock alone; when it is the
 * VM's last, KVM destroys the VM there (kvm.c).
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

static struct vfio {
	struct mutex		group_lock;	/* group_list */
	struct list_head	group_list;
	struct ida		group_ida;	/* minors of /dev/vfio/$GROUP */
	dev_t			group_devt;
	struct class		*class;		/* "vfio" */
} vfio = {
	.group_lock = __MUTEX_INITIALIZER(vfio.group_lock),
	.group_list = LIST_HEAD_INIT(vfio.group_list),
	.group_ida = IDA_INIT(vfio.group_ida),
};

static const struct file_operations vfio_group_fops;

/*
 * Groups
 *
 * A group lives on vfio.group_list from its creation by its first device
 * until its last device leaves (group->drivers reaches 0, under
 * vfio.group_lock).  Its memory lives on as long as its struct device: an
 * open group file keeps the cdev, and with it the device.
 */

static void vfio_group_release(struct device *dev)
{
	struct vfio_group *group = container_of(dev, struct vfio_group, dev);

	/* The last device took the iommu_group reference with it */
	WARN_ON(group->iommu_group);
	mutex_destroy(&group->group_lock);
	mutex_destroy(&group->device_lock);
	ida_free(&vfio.group_ida, MINOR(group->dev.devt));
	kfree(group);
}

/* From here on put_device(&group->dev) frees the group and its minor. */
static void vfio_group_setup(struct vfio_group *group, int minor,
			     enum vfio_group_type type)
{
	group->type = type;
	refcount_set(&group->drivers, 1);
	mutex_init(&group->group_lock);
	mutex_init(&group->device_lock);
	INIT_LIST_HEAD(&group->device_list);
	BLOCKING_INIT_NOTIFIER_HEAD(&group->notifier);

	device_initialize(&group->dev);
	group->dev.class = vfio.class;
	group->dev.devt = MKDEV(MAJOR(vfio.group_devt), minor);
	group->dev.release = vfio_group_release;
	cdev_init(&group->cdev, &vfio_group_fops);
	group->cdev.owner = THIS_MODULE;
}

/*
 * Create the group of @iommu_group, with its /dev/vfio/ node, and one drivers
 * reference for the caller.  Under vfio.group_lock from the caller's lookup
 * on, so that two devices of one iommu_group cannot both create a group for
 * it.
 */
static struct vfio_group *vfio_group_create(struct iommu_group *iommu_group,
					    enum vfio_group_type type)
{
	struct vfio_group *group;
	int minor, ret;

	lockdep_assert_held(&vfio.group_lock);

	group = kzalloc(sizeof(*group), GFP_KERNEL);
	if (!group)
		return ERR_PTR(-ENOMEM);

	minor = ida_alloc_max(&vfio.group_ida, MINORMASK, GFP_KERNEL);
	if (minor < 0) {
		kfree(group);
		return ERR_PTR(minor);
	}
	vfio_group_setup(group, minor, type);

	ret = dev_set_name(&group->dev, "%s%d",
			   type == VFIO_NO_IOMMU ? "noiommu-" : "",
			   iommu_group_id(iommu_group));
	if (ret)
		goto err_put_group;

	/* The group's own reference, put when its last device leaves */
	iommu_group_ref_get(iommu_group);
	group->iommu_group = iommu_group;

	ret = cdev_device_add(&group->cdev, &group->dev);
	if (ret)
		goto err_put_iommu_group;

	list_add(&group->vfio_next, &vfio.group_list);
	return group;

err_put_iommu_group:
	group->iommu_group = NULL;
	iommu_group_put(iommu_group);
err_put_group:
	put_device(&group->dev);
	return ERR_PTR(ret);
}

/* The group of @iommu_group with a new drivers reference, or NULL. */
static struct vfio_group *vfio_group_lookup(struct iommu_group *iommu_group)
{
	struct vfio_group *group;

	/* A listed group has drivers > 0: refcount_inc() cannot revive one */
	lockdep_assert_held(&vfio.group_lock);

	list_for_each_entry(group, &vfio.group_list, vfio_next) {
		if (group->iommu_group == iommu_group) {
			refcount_inc(&group->drivers);
			return group;
		}
	}
	return NULL;
}

/*
 * A group of its own for a device that no IOMMU translates: an emulated
 * (mediated) device, or in noiommu mode a device without an iommu_group.
 * The iommu_group is made up because userspace finds groups through it.
 */
static struct vfio_group *vfio_group_create_private(struct device *dev,
						    enum vfio_group_type type)
{
	struct iommu_group *iommu_group;
	struct vfio_group *group;
	int ret;

	iommu_group = iommu_group_alloc();
	if (IS_ERR(iommu_group))
		return ERR_CAST(iommu_group);

	ret = iommu_group_set_name(iommu_group, "vfio-noiommu");
	if (ret)
		goto err_put_iommu_group;

	ret = iommu_group_add_device(iommu_group, dev);
	if (ret)
		goto err_put_iommu_group;

	mutex_lock(&vfio.group_lock);
	group = vfio_group_create(iommu_group, type);
	mutex_unlock(&vfio.group_lock);
	if (IS_ERR(group)) {
		ret = PTR_ERR(group);
		goto err_remove_device;
	}

	/* Ours goes: the group holds one of its own */
	iommu_group_put(iommu_group);
	return group;

err_remove_device:
	iommu_group_remove_device(dev);
err_put_iommu_group:
	iommu_group_put(iommu_group);
	return ERR_PTR(ret);
}

/*
 * No IOMMU translates @dev: refused, unless noiommu mode gives it a group,
 * which taints the kernel since its user can DMA anywhere.
 */
static struct vfio_group *vfio_group_for_unprotected(struct device *dev)
{
	struct vfio_group *group;

	if (!vfio_noiommu)
		return ERR_PTR(-EINVAL);

	group = vfio_group_create_private(dev, VFIO_NO_IOMMU);
	if (IS_ERR(group))
		return group;

	add_taint(TAINT_USER, LOCKDEP_STILL_OK);
	dev_warn(dev, "Adding kernel taint for vfio-noiommu group on device\n");
	return group;
}

/* The group of the iommu_group of @dev, found or created. */
static struct vfio_group *vfio_group_for_iommu(struct device *dev)
{
	struct iommu_group *iommu_group;
	struct vfio_group *group;

	iommu_group = iommu_group_get(dev);
	if (!iommu_group)
		return vfio_group_for_unprotected(dev);

	/*
	 * vfio maps with IOMMU_CACHE, and a user has no way to make DMA
	 * coherent again if the IOMMU cannot enforce it.
	 */
	if (device_iommu_capable(dev, IOMMU_CAP_CACHE_COHERENCY)) {
		mutex_lock(&vfio.group_lock);
		group = vfio_group_lookup(iommu_group);
		if (!group)
			group = vfio_group_create(iommu_group, VFIO_IOMMU);
		mutex_unlock(&vfio.group_lock);
	} else {
		group = ERR_PTR(-EINVAL);
	}

	iommu_group_put(iommu_group);
	return group;
}

/*
 * The devices of a group
 */

/* A match function for vfio_group_find_device(): the vfio_device of @dev */
static int vfio_device_is_for(struct vfio_device *device, void *dev)
{
	return device->dev == dev;
}

/*
 * A match function for vfio_group_find_device(): the device that
 * VFIO_GROUP_GET_DEVICE_FD names with @name, by the driver's match() or
 * else by its device name.  match() may refuse the name (< 0).
 */
static int vfio_device_is_named(struct vfio_device *device, void *name)
{
	if (device->ops->match)
		return device->ops->match(device, name);

	return !strcmp(dev_name(device->dev), name);
}

/*
 * The first device of @group that @match accepts (> 0) and that is still
 * registered, with a registration reference.  A negative @match ends the
 * search with that error; none found is -ENODEV.
 */
static struct vfio_device *
vfio_group_find_device(struct vfio_group *group,
		       int (*match)(struct vfio_device *device, void *key),
		       void *key)
{
	struct vfio_device *device, *found = ERR_PTR(-ENODEV);
	int ret;

	mutex_lock(&group->device_lock);
	list_for_each_entry(device, &group->device_list, group_next) {
		ret = match(device, key);
		if (ret < 0) {
			found = ERR_PTR(ret);
			break;
		}
		if (ret && vfio_device_try_get_registration(device)) {
			found = device;
			break;
		}
	}
	mutex_unlock(&group->device_lock);

	return found;
}

/**
 * vfio_device_set_group - Put a registering device into its group
 * @device: the vfio_device being registered
 * @type: VFIO_IOMMU for the group of the device's iommu_group (in noiommu
 *	  mode, a made-up one if it has none); VFIO_EMULATED_IOMMU for a new
 *	  group of its own
 *
 * Finds or creates the group and sets device->group, which holds a drivers
 * reference on it until vfio_device_remove_group().
 *
 * Return: 0; -EBUSY if the device is registered in the group already
 * (stock 6.1 oopses on a NULL group there); -EINVAL if no IOMMU translates
 * the device or it cannot enforce cache coherency; another negative errno.
 */
int vfio_device_set_group(struct vfio_device *device,
			  enum vfio_group_type type)
{
	struct vfio_device *twin;
	struct vfio_group *group;

	if (type == VFIO_IOMMU)
		group = vfio_group_for_iommu(device->dev);
	else
		group = vfio_group_create_private(device->dev, type);
	if (IS_ERR(group))
		return PTR_ERR(group);
	device->group = group;

	twin = vfio_group_find_device(group, vfio_device_is_for, device->dev);
	if (IS_ERR(twin))
		return 0;

	/* Our drivers reference keeps group->iommu_group valid here */
	dev_WARN(device->dev, "Device already exists on group %d\n",
		 iommu_group_id(group->iommu_group));
	vfio_device_put_registration(twin);
	vfio_device_remove_group(device);
	return -EBUSY;
}

/*
 * The last device left @group: from now on the group file finds no
 * iommu_group, and answers -ENODEV.  Returns the group's iommu_group
 * reference for the caller to put.
 */
static struct iommu_group *vfio_group_orphan(struct vfio_group *group)
{
	struct iommu_group *iommu_group = group->iommu_group;

	lockdep_assert_held(&group->group_lock);

	/* Device files and notifier users hold drivers references */
	WARN_ON(!list_empty(&group->device_list));
	WARN_ON(group->notifier.head);

	if (group->container)
		vfio_group_detach_container(group);
	group->iommu_group = NULL;
	return iommu_group;
}

/**
 * vfio_device_remove_group - Take a device out of its group
 * @device: a device that went through vfio_device_set_group()
 *
 * Drops the device's drivers reference.  The last device out destroys the
 * group: its /dev/vfio/ node goes and it leaves its container.
 */
void vfio_device_remove_group(struct vfio_device *device)
{
	struct vfio_group *group = device->group;
	struct iommu_group *iommu_group;

	/* A made-up iommu_group was made for this device alone */
	if (group->type != VFIO_IOMMU)
		iommu_group_remove_device(device->dev);

	if (!refcount_dec_and_mutex_lock(&group->drivers, &vfio.group_lock))
		return;

	/*
	 * The node goes while vfio.group_lock is held: a device of the same
	 * iommu_group that probes now must find its name free when it creates
	 * the group anew.
	 */
	list_del(&group->vfio_next);
	cdev_device_del(&group->cdev, &group->dev);

	mutex_lock(&group->group_lock);
	iommu_group = vfio_group_orphan(group);
	mutex_unlock(&group->group_lock);
	mutex_unlock(&vfio.group_lock);

	iommu_group_put(iommu_group);
	put_device(&group->dev);
}

/**
 * vfio_device_group_register - Let VFIO_GROUP_GET_DEVICE_FD find a device
 * @device: a registered device, with device->group set
 */
void vfio_device_group_register(struct vfio_device *device)
{
	struct vfio_group *group = device->group;

	mutex_lock(&group->device_lock);
	list_add(&device->group_next, &group->device_list);
	mutex_unlock(&group->device_lock);
}

/**
 * vfio_device_group_unregister - Undo vfio_device_group_register()
 * @device: the device
 */
void vfio_device_group_unregister(struct vfio_device *device)
{
	struct vfio_group *group = device->group;

	mutex_lock(&group->device_lock);
	list_del(&device->group_next);
	mutex_unlock(&group->device_lock);
}

/*
 * Opening and closing a device through its group
 */

static int vfio_device_use_container(struct vfio_device *device)
{
	struct vfio_group *group = device->group;
	int ret;

	mutex_lock(&group->group_lock);
	ret = vfio_group_use_container(group);
	mutex_unlock(&group->group_lock);
	return ret;
}

static void vfio_device_unuse_container(struct vfio_device *device)
{
	struct vfio_group *group = device->group;

	mutex_lock(&group->group_lock);
	vfio_group_unuse_container(group);
	mutex_unlock(&group->group_lock);
}

/*
 * open_count 0 -> 1: the driver's open_device(), with the group's VM in
 * device->kvm if it is linked to one, then the backend learns of the device.
 */
static int vfio_device_first_open(struct vfio_device *device)
{
	struct vfio_group *group = device->group;
	int ret = 0;

	lockdep_assert_held(&device->dev_set->lock);

	vfio_device_ref_kvm(device);

	mutex_lock(&group->group_lock);
	if (device->ops->open_device)
		ret = device->ops->open_device(device);
	if (!ret)
		vfio_device_container_register(device);
	mutex_unlock(&group->group_lock);

	if (ret)
		vfio_device_unref_kvm(device);
	return ret;
}

/* open_count 1 -> 0: the reverse of vfio_device_first_open() */
static void vfio_device_last_close(struct vfio_device *device)
{
	struct vfio_group *group = device->group;

	lockdep_assert_held(&device->dev_set->lock);

	mutex_lock(&group->group_lock);
	if (device->ops->close_device)
		device->ops->close_device(device);
	vfio_device_container_unregister(device);
	mutex_unlock(&group->group_lock);

	vfio_device_unref_kvm(device);
}

/*
 * Open @device for one more file: a container user, the driver module, and
 * on the first open the driver's open_device().  The caller holds a
 * registration reference.  Undone by vfio_device_group_close().
 */
static int vfio_device_group_open(struct vfio_device *device)
{
	struct module *owner = device->dev->driver->owner;
	int ret;

	ret = vfio_device_use_container(device);
	if (ret)
		return ret;

	if (!try_module_get(owner)) {
		ret = -ENODEV;
		goto err_unuse_container;
	}

	mutex_lock(&device->dev_set->lock);
	/* Drivers see open_count 1 already in open_device() */
	if (!device->open_count++) {
		ret = vfio_device_first_open(device);
		if (ret)
			device->open_count--;
	}
	mutex_unlock(&device->dev_set->lock);
	if (ret)
		goto err_module_put;
	return 0;

err_module_put:
	module_put(owner);
err_unuse_container:
	vfio_device_unuse_container(device);
	return ret;
}

/**
 * vfio_device_group_close - Close a device opened through its group
 * @device: a device opened by VFIO_GROUP_GET_DEVICE_FD
 *
 * The last close calls the driver's close_device().  Everything the open
 * took is released, except the registration reference, which stays with the
 * caller.
 */
void vfio_device_group_close(struct vfio_device *device)
{
	mutex_lock(&device->dev_set->lock);
	vfio_assert_device_open(device);
	/* Drivers still see open_count 1 in close_device() */
	if (device->open_count == 1)
		vfio_device_last_close(device);
	device->open_count--;
	mutex_unlock(&device->dev_set->lock);

	module_put(device->dev->driver->owner);
	vfio_device_unuse_container(device);
}

/*
 * The group file, /dev/vfio/$GROUP
 */

/* The argument of the group ioctls that take one by value */
union vfio_group_ioctl_arg {
	struct vfio_group_status	status;
	int				container_fd;
};

#define VFIO_GROUP_STATUS_MINSZ	offsetofend(struct vfio_group_status, flags)

/* VFIO_GROUP_GET_STATUS: viable, and whether a container is set. */
static int vfio_group_get_status(struct vfio_group *group,
				 union vfio_group_ioctl_arg *arg)
{
	struct vfio_group_status *status = &arg->status;

	lockdep_assert_held(&group->group_lock);

	if (status->argsz < VFIO_GROUP_STATUS_MINSZ)
		return -EINVAL;
	if (!group->iommu_group)
		return -ENODEV;

	/* In a container, the group owns its DMA; else, no driver may */
	if (group->container)
		status->flags = VFIO_GROUP_FLAGS_VIABLE |
				VFIO_GROUP_FLAGS_CONTAINER_SET;
	else if (iommu_group_dma_owner_claimed(group->iommu_group))
		status->flags = 0;
	else
		status->flags = VFIO_GROUP_FLAGS_VIABLE;
	return 0;
}

/* VFIO_GROUP_SET_CONTAINER: join the container of an open /dev/vfio/vfio. */
static int vfio_group_set_container(struct vfio_group *group,
				    union vfio_group_ioctl_arg *arg)
{
	struct vfio_container *container;
	struct fd f;
	int ret;

	lockdep_assert_held(&group->group_lock);

	/* fdput() defers a release, so it is harmless under group_lock */
	f = fdget(arg->container_fd);
	if (!f.file)
		return -EBADF;

	container = vfio_container_from_file(f.file);
	if (group->container || WARN_ON(group->container_users))
		ret = -EINVAL;
	else if (!group->iommu_group)
		ret = -ENODEV;
	else if (!container)
		ret = -EINVAL;
	else
		ret = vfio_container_attach_group(container, group);

	fdput(f);
	return ret;
}

/*
 * VFIO_GROUP_UNSET_CONTAINER: only while the group file is the container's
 * one user, i.e. no device of the group is open.
 */
static int vfio_group_unset_container(struct vfio_group *group,
				      union vfio_group_ioctl_arg *arg)
{
	lockdep_assert_held(&group->group_lock);

	if (!group->container)
		return -EINVAL;
	if (group->container_users != 1)
		return -EBUSY;

	vfio_group_detach_container(group);
	return 0;
}

/* VFIO_GROUP_GET_DEVICE_FD: open a device by name, as a new file. */
static long vfio_group_get_device_fd(struct vfio_group *group,
				     void __user *arg)
{
	struct vfio_device *device;
	struct file *filep;
	char *name;
	int fd, ret;

	name = strndup_user(arg, PAGE_SIZE);
	if (IS_ERR(name))
		return PTR_ERR(name);

	device = vfio_group_find_device(group, vfio_device_is_named, name);
	kfree(name);
	if (IS_ERR(device))
		return PTR_ERR(device);

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_put_registration;
	}

	ret = vfio_device_group_open(device);
	if (ret)
		goto err_put_fd;

	filep = vfio_device_alloc_file(device);
	if (IS_ERR(filep)) {
		ret = PTR_ERR(filep);
		goto err_close_device;
	}

	if (group->type == VFIO_NO_IOMMU)
		dev_warn(device->dev, "vfio-noiommu device opened by user (%s:%d)\n",
			 current->comm, task_pid_nr(current));

	/* The file owns the registration reference from here on */
	fd_install(fd, filep);
	return fd;

err_close_device:
	vfio_device_group_close(device);
err_put_fd:
	put_unused_fd(fd);
err_put_registration:
	vfio_device_put_registration(device);
	return ret;
}

/*
 * The ioctls of a group file.  Those with a @locked handler run it with
 * group->group_lock held, on a copy of the first @in bytes of the argument,
 * and copy @out bytes back once it succeeded; the user's memory is never
 * touched under the lock.  One with an @unlocked handler gets the user's
 * pointer and takes what it needs itself.
 */
struct vfio_group_ioctl {
	unsigned int	cmd;
	unsigned int	in;
	unsigned int	out;
	int		(*locked)(struct vfio_group *group,
				  union vfio_group_ioctl_arg *arg);
	long		(*unlocked)(struct vfio_group *group,
				    void __user *arg);
};

static const struct vfio_group_ioctl vfio_group_ioctls[] = {
	{
		.cmd = VFIO_GROUP_GET_STATUS,
		.in = VFIO_GROUP_STATUS_MINSZ,
		.out = VFIO_GROUP_STATUS_MINSZ,
		.locked = vfio_group_get_status,
	}, {
		.cmd = VFIO_GROUP_SET_CONTAINER,
		.in = sizeof(int),
		.locked = vfio_group_set_container,
	}, {
		.cmd = VFIO_GROUP_UNSET_CONTAINER,
		.locked = vfio_group_unset_container,
	}, {
		.cmd = VFIO_GROUP_GET_DEVICE_FD,
		.unlocked = vfio_group_get_device_fd,
	},
};

static const struct vfio_group_ioctl *vfio_group_ioctl_find(unsigned int cmd)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vfio_group_ioctls); i++)
		if (vfio_group_ioctls[i].cmd == cmd)
			return &vfio_group_ioctls[i];
	return NULL;
}

static long vfio_group_fops_unl_ioctl(struct file *filep, unsigned int cmd,
				      unsigned long arg)
{
	struct vfio_group *group = filep->private_data;
	void __user *uarg = (void __user *)arg;
	const struct vfio_group_ioctl *ioctl;
	union vfio_group_ioctl_arg karg;
	int ret;

	ioctl = vfio_group_ioctl_find(cmd);
	if (!ioctl)
		return -ENOTTY;
	if (ioctl->unlocked)
		return ioctl->unlocked(group, uarg);

	if (copy_from_user(&karg, uarg, ioctl->in))
		return -EFAULT;

	mutex_lock(&group->group_lock);
	ret = ioctl->locked(group, &karg);
	mutex_unlock(&group->group_lock);

	if (!ret && copy_to_user(uarg, &karg, ioctl->out))
		return -EFAULT;
	return ret;
}

/* One user at a time, of a group that still has devices. */
static int vfio_group_may_open(struct vfio_group *group)
{
	lockdep_assert_held(&group->group_lock);

	/* 0 once the last device left; it never rises again */
	if (!refcount_read(&group->drivers))
		return -ENODEV;
	if (group->type == VFIO_NO_IOMMU && !capable(CAP_SYS_RAWIO))
		return -EPERM;
	if (group->opened_file)
		return -EBUSY;
	return 0;
}

static int vfio_group_fops_open(struct inode *inode, struct file *filep)
{
	struct vfio_group *group =
		container_of(inode->i_cdev, struct vfio_group, cdev);
	int ret;

	mutex_lock(&group->group_lock);
	ret = vfio_group_may_open(group);
	if (!ret) {
		group->opened_file = filep;
		filep->private_data = group;
	}
	mutex_unlock(&group->group_lock);
	return ret;
}

static int vfio_group_fops_release(struct inode *inode, struct file *filep)
{
	struct vfio_group *group = filep->private_data;

	filep->private_data = NULL;

	/* Device files pin the group file: none is open now */
	mutex_lock(&group->group_lock);
	WARN_ON(group->notifier.head);
	if (group->container)
		vfio_group_detach_container(group);
	group->opened_file = NULL;
	mutex_unlock(&group->group_lock);
	return 0;
}

static const struct file_operations vfio_group_fops = {
	.owner = THIS_MODULE,
	.open = vfio_group_fops_open,
	.release = vfio_group_fops_release,
	.unlocked_ioctl = vfio_group_fops_unl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

/*
 * Helpers for KVM, which holds a group file: none of them may take
 * group->group_lock (see the lock order at the top)
 */

/**
 * vfio_file_iommu_group - The iommu_group of a VFIO group file
 * @file: a VFIO group file
 *
 * For KVM's SPAPR TCE code only; other platforms get NULL.  Takes
 * group->group_lock, unlike the other vfio_file_*() helpers.
 *
 * Return: the iommu_group with a reference for the caller to put, or NULL
 * if @file is not a group file or its group has lost its devices.
 */
struct iommu_group *vfio_file_iommu_group(struct file *file)
{
	struct vfio_group *group = file->private_data;
	struct iommu_group *iommu_group;

	if (!IS_ENABLED(CONFIG_SPAPR_TCE_IOMMU) || !vfio_file_is_group(file))
		return NULL;

	mutex_lock(&group->group_lock);
	iommu_group = group->iommu_group;
	if (iommu_group)
		iommu_group_ref_get(iommu_group);
	mutex_unlock(&group->group_lock);
	return iommu_group;
}
EXPORT_SYMBOL_GPL(vfio_file_iommu_group);

/**
 * vfio_file_is_group - Whether a file is a VFIO group file
 * @file: any file
 *
 * Return: true if @file was opened from /dev/vfio/$GROUP.
 */
bool vfio_file_is_group(struct file *file)
{
	return file->f_op == &vfio_group_fops;
}
EXPORT_SYMBOL_GPL(vfio_file_is_group);

/**
 * vfio_file_enforced_coherent - Whether a group's DMA is always coherent
 * @file: a VFIO group file
 *
 * The IOMMU of an enforced coherent group ignores no-snoop, so the VM needs
 * no cache maintenance instructions (such as wbinvd on x86).  Known only
 * once the group is in a container: without one, and for a file that is not
 * a group file, this is true.  The answers are stock 6.1's, given without
 * group->group_lock (vfio_group_enforced_coherent()).
 *
 * Context: process context; KVM calls it with kv->lock held.
 * Return: false if the user may need cache maintenance, true otherwise.
 */
bool vfio_file_enforced_coherent(struct file *file)
{
	if (!vfio_file_is_group(file))
		return true;

	return vfio_group_enforced_coherent(file->private_data);
}
EXPORT_SYMBOL_GPL(vfio_file_enforced_coherent);

/**
 * vfio_file_set_kvm - Link a VFIO group to a VM, or unlink it
 * @file: a VFIO group file
 * @kvm: the VM, or NULL to unlink
 *
 * A device of the group opened for the first time while it is linked gets a
 * reference on @kvm of its own, in device->kvm for the driver's
 * open_device(), until after its last close (vfio_group_set_kvm()).  KVM
 * unlinks the group before the VM can be freed.  Any other file is ignored.
 *
 * Context: process context; KVM calls it with kv->lock or kvm->lock held.
 * Takes a spinlock only, never group->group_lock.
 */
void vfio_file_set_kvm(struct file *file, struct kvm *kvm)
{
	if (vfio_file_is_group(file))
		vfio_group_set_kvm(file->private_data, kvm);
}
EXPORT_SYMBOL_GPL(vfio_file_set_kvm);

/**
 * vfio_file_has_dev - Whether a VFIO file gives access to a device
 * @file: a VFIO file
 * @device: the device
 *
 * Return: true if @file is the group file of the group of @device.
 */
bool vfio_file_has_dev(struct file *file, struct vfio_device *device)
{
	return vfio_file_is_group(file) && file->private_data == device->group;
}
EXPORT_SYMBOL_GPL(vfio_file_has_dev);

/*
 * Module init and exit of the group part
 */

static char *vfio_devnode(struct device *dev, umode_t *mode)
{
	return kasprintf(GFP_KERNEL, "vfio/%s", dev_name(dev));
}

/**
 * vfio_group_init - Set up containers and groups
 *
 * Sets up the container part (/dev/vfio/vfio), then the "vfio" class and the
 * chrdev region of /dev/vfio/$GROUP.
 *
 * Return: 0 or a negative errno, with nothing left set up.
 */
int __init vfio_group_init(void)
{
	int ret;

	ret = vfio_container_init();
	if (ret)
		return ret;

	vfio.class = class_create(THIS_MODULE, "vfio");
	if (IS_ERR(vfio.class)) {
		ret = PTR_ERR(vfio.class);
		goto err_cleanup_container;
	}
	vfio.class->devnode = vfio_devnode;

	ret = alloc_chrdev_region(&vfio.group_devt, 0, MINORMASK + 1, "vfio");
	if (ret)
		goto err_destroy_class;
	return 0;

err_destroy_class:
	class_destroy(vfio.class);
err_cleanup_container:
	vfio.class = NULL;
	vfio_container_cleanup();
	return ret;
}

/**
 * vfio_group_cleanup - Undo vfio_group_init()
 *
 * Every group must be gone, which it is once every vfio driver has
 * unregistered its devices.
 */
void vfio_group_cleanup(void)
{
	WARN_ON(!list_empty(&vfio.group_list));
	unregister_chrdev_region(vfio.group_devt, MINORMASK + 1);
	class_destroy(vfio.class);
	vfio.class = NULL;
	vfio_container_cleanup();
	ida_destroy(&vfio.group_ida);
}
