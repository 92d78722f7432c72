// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-core: VFIO groups, /dev/vfio/$GROUP
 *
 * A vfio_group stands for one iommu_group whose devices are bound to vfio
 * drivers.  This file owns everything about it: creating and finding groups,
 * the group character devices, the group file and its ioctls, the part of
 * opening a device that needs the group (container, KVM), and the vfio_file_*
 * helpers that KVM calls on a group file.
 *
 * Based on drivers/vfio/vfio_main.c of Linux 6.1,
 * Copyright (C) 2012 Red Hat, Inc.  All rights reserved.
 *     Author: Alex Williamson <alex.williamson@redhat.com>
 *
 * Lock order of vfio.ko, outermost first:
 *
 *   vfio.group_lock (this file: the list of all groups)
 *     group->group_lock
 *
 *   device->dev_set->lock (open_count of the devices of a set)
 *     group->group_lock (container, container_users, opened_file; held
 *                        across the driver's open_device()/close_device()
 *                        and the container register/unregister)
 *       driver locks, e.g. kvm->lock taken by vfio_ap's open_device()
 *       container->group_lock, then the container.c iommu driver list lock
 *     group->kvm_ref_lock
 *
 *   group->device_lock (the device list of a group; the driver's match()
 *                       runs under it, no other vfio lock is taken inside)
 *
 *   kvm->lock (KVM calls vfio_file_set_kvm() with it held)
 *     group->kvm_ref_lock
 *
 * group->kvm_ref_lock is a spinlock and innermost: it only guards group->kvm,
 * and nothing is taken under it but the references of
 * vfio_device_get_kvm_safe() (module and KVM refcounts, no locks).  Because
 * vfio_file_set_kvm() takes nothing else, kvm->lock never nests outside
 * group_lock, which is what stock 6.1 deadlocked on (vfio_ap takes kvm->lock
 * in open_device() under group_lock, KVM called vfio_file_set_kvm() under
 * kvm->lock and that took group_lock).
 *
 * The last KVM reference of a device is dropped under dev_set->lock, outside
 * group_lock; if it is the VM's last one, KVM's teardown runs there and may
 * take kvm->lock and group->kvm_ref_lock (through vfio_file_set_kvm()).
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
	struct class		*class;		/* "vfio", /dev/vfio/$GROUP */
	struct list_head	group_list;
	struct mutex		group_lock;	/* protects group_list */
	struct ida		group_ida;	/* minors of the groups */
	dev_t			group_devt;
} vfio;

static const struct file_operations vfio_group_fops;

/*
 * Group objects
 */

/*
 * Return the group of @iommu_group with a new drivers reference, or NULL.
 * Groups on the list always have drivers > 0 and a valid iommu_group: the
 * last drivers reference is dropped with vfio.group_lock held, which also
 * unlinks the group.
 */
static struct vfio_group *
vfio_group_find_from_iommu(struct iommu_group *iommu_group)
{
	struct vfio_group *group;

	lockdep_assert_held(&vfio.group_lock);

	list_for_each_entry(group, &vfio.group_list, vfio_next) {
		if (group->iommu_group == iommu_group) {
			refcount_inc(&group->drivers);
			return group;
		}
	}
	return NULL;
}

static void vfio_group_release(struct device *dev)
{
	struct vfio_group *group = container_of(dev, struct vfio_group, dev);

	mutex_destroy(&group->device_lock);
	mutex_destroy(&group->group_lock);
	WARN_ON(group->iommu_group);
	ida_free(&vfio.group_ida, MINOR(group->dev.devt));
	kfree(group);
}

/*
 * Allocate a group holding a reference on @iommu_group and one drivers
 * reference for the caller.  Freed through put_device(&group->dev) once the
 * iommu_group reference is gone.
 */
static struct vfio_group *vfio_group_alloc(struct iommu_group *iommu_group,
					   enum vfio_group_type type)
{
	struct vfio_group *group;
	int minor;

	group = kzalloc(sizeof(*group), GFP_KERNEL);
	if (!group)
		return ERR_PTR(-ENOMEM);

	minor = ida_alloc_max(&vfio.group_ida, MINORMASK, GFP_KERNEL);
	if (minor < 0) {
		kfree(group);
		return ERR_PTR(minor);
	}

	device_initialize(&group->dev);
	group->dev.devt = MKDEV(MAJOR(vfio.group_devt), minor);
	group->dev.class = vfio.class;
	group->dev.release = vfio_group_release;
	cdev_init(&group->cdev, &vfio_group_fops);
	group->cdev.owner = THIS_MODULE;

	refcount_set(&group->drivers, 1);
	mutex_init(&group->group_lock);
	spin_lock_init(&group->kvm_ref_lock);
	INIT_LIST_HEAD(&group->device_list);
	mutex_init(&group->device_lock);
	BLOCKING_INIT_NOTIFIER_HEAD(&group->notifier);
	group->type = type;

	/* Dropped when the last driver leaves, in vfio_device_remove_group() */
	iommu_group_ref_get(iommu_group);
	group->iommu_group = iommu_group;

	return group;
}

/*
 * Create the group of @iommu_group and its /dev/vfio/ node.  The caller holds
 * vfio.group_lock from its lookup on, so two devices of one iommu_group cannot
 * both create a group for it.
 */
static struct vfio_group *vfio_create_group(struct iommu_group *iommu_group,
					    enum vfio_group_type type)
{
	struct vfio_group *group;
	int ret;

	lockdep_assert_held(&vfio.group_lock);

	group = vfio_group_alloc(iommu_group, type);
	if (IS_ERR(group))
		return group;

	ret = dev_set_name(&group->dev, "%s%d",
			   type == VFIO_NO_IOMMU ? "noiommu-" : "",
			   iommu_group_id(iommu_group));
	if (ret)
		goto err_put;

	ret = cdev_device_add(&group->cdev, &group->dev);
	if (ret)
		goto err_put;

	list_add(&group->vfio_next, &vfio.group_list);
	return group;

err_put:
	group->iommu_group = NULL;
	iommu_group_put(iommu_group);
	put_device(&group->dev);
	return ERR_PTR(ret);
}

/*
 * A group for a device that has no iommu_group of its own: an emulated
 * (mediated) device, or a device without IOMMU in noiommu mode.  The
 * iommu_group exists only because userspace finds groups through it.
 */
static struct vfio_group *vfio_noiommu_group_alloc(struct device *dev,
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
	group = vfio_create_group(iommu_group, type);
	mutex_unlock(&vfio.group_lock);
	if (IS_ERR(group)) {
		ret = PTR_ERR(group);
		goto err_remove_device;
	}

	/* The group holds its own reference now */
	iommu_group_put(iommu_group);
	return group;

err_remove_device:
	iommu_group_remove_device(dev);
err_put_iommu_group:
	iommu_group_put(iommu_group);
	return ERR_PTR(ret);
}

static struct vfio_group *vfio_group_find_or_alloc(struct device *dev)
{
	struct iommu_group *iommu_group;
	struct vfio_group *group;

	iommu_group = iommu_group_get(dev);
	if (!iommu_group && vfio_noiommu) {
		/*
		 * No iommu_group means no IOMMU translates this device: give
		 * it a fake group, and taint, since its user can DMA anywhere.
		 */
		group = vfio_noiommu_group_alloc(dev, VFIO_NO_IOMMU);
		if (!IS_ERR(group)) {
			add_taint(TAINT_USER, LOCKDEP_STILL_OK);
			dev_warn(dev, "Adding kernel taint for vfio-noiommu group on device\n");
		}
		return group;
	}

	if (!iommu_group)
		return ERR_PTR(-EINVAL);

	/*
	 * vfio always maps with IOMMU_CACHE, userspace has no way to make
	 * non-coherent DMA coherent again.  Only meaningful with a real
	 * iommu_group, hence checked here.
	 */
	if (!device_iommu_capable(dev, IOMMU_CAP_CACHE_COHERENCY)) {
		iommu_group_put(iommu_group);
		return ERR_PTR(-EINVAL);
	}

	mutex_lock(&vfio.group_lock);
	group = vfio_group_find_from_iommu(iommu_group);
	if (!group)
		group = vfio_create_group(iommu_group, VFIO_IOMMU);
	mutex_unlock(&vfio.group_lock);

	/* A vfio_group holds its own iommu_group reference */
	iommu_group_put(iommu_group);
	return group;
}

/* Return the registered device of @group for @dev, with a registration ref. */
static struct vfio_device *vfio_group_get_device(struct vfio_group *group,
						 struct device *dev)
{
	struct vfio_device *device;

	mutex_lock(&group->device_lock);
	list_for_each_entry(device, &group->device_list, group_next) {
		if (device->dev == dev &&
		    vfio_device_try_get_registration(device)) {
			mutex_unlock(&group->device_lock);
			return device;
		}
	}
	mutex_unlock(&group->device_lock);
	return NULL;
}

/**
 * vfio_device_set_group - Attach a device being registered to its group
 * @device: the vfio_device being registered
 * @type: VFIO_IOMMU to use the iommu_group of the device (or, in noiommu
 *        mode, a fake one if it has none); VFIO_EMULATED_IOMMU for a new
 *        private group
 *
 * Finds or creates the group and sets @device->group, which then holds one
 * drivers reference on it; vfio_device_remove_group() drops it.
 *
 * Return: 0, -EBUSY if the device is already registered in the group, or
 * another negative errno.
 */
int vfio_device_set_group(struct vfio_device *device,
			  enum vfio_group_type type)
{
	struct vfio_device *existing;
	struct vfio_group *group;

	if (type == VFIO_IOMMU)
		group = vfio_group_find_or_alloc(device->dev);
	else
		group = vfio_noiommu_group_alloc(device->dev, type);
	if (IS_ERR(group))
		return PTR_ERR(group);

	device->group = group;

	existing = vfio_group_get_device(group, device->dev);
	if (existing) {
		/* The drivers reference keeps group->iommu_group valid */
		dev_WARN(device->dev, "Device already exists on group %d\n",
			 iommu_group_id(group->iommu_group));
		vfio_device_put_registration(existing);
		vfio_device_remove_group(device);
		return -EBUSY;
	}
	return 0;
}

/**
 * vfio_device_remove_group - Drop the group reference of a device
 * @device: a device that went through vfio_device_set_group()
 *
 * The last device to leave a group destroys it: the /dev/vfio/ node goes, the
 * container is detached and group->iommu_group is cleared, so an open group
 * file sees -ENODEV from then on.
 */
void vfio_device_remove_group(struct vfio_device *device)
{
	struct vfio_group *group = device->group;
	struct iommu_group *iommu_group;

	if (group->type == VFIO_NO_IOMMU || group->type == VFIO_EMULATED_IOMMU)
		iommu_group_remove_device(device->dev);

	/* Pairs with the reference taken in vfio_device_set_group() */
	if (!refcount_dec_and_mutex_lock(&group->drivers, &vfio.group_lock))
		return;
	list_del(&group->vfio_next);

	/*
	 * Delete the node while still holding vfio.group_lock: a device of the
	 * same iommu_group probing right now must not find the old name in
	 * sysfs when it creates the group again.
	 */
	cdev_device_del(&group->cdev, &group->dev);

	mutex_lock(&group->group_lock);
	/* Every device and notifier user holds a drivers reference */
	WARN_ON(!list_empty(&group->device_list));
	WARN_ON(group->notifier.head);

	/* No device is left; a NULL iommu_group turns away new users */
	if (group->container)
		vfio_group_detach_container(group);
	iommu_group = group->iommu_group;
	group->iommu_group = NULL;
	mutex_unlock(&group->group_lock);
	mutex_unlock(&vfio.group_lock);

	iommu_group_put(iommu_group);
	put_device(&group->dev);
}

/**
 * vfio_device_group_register - Make a registered device visible in its group
 * @device: the device, with device->group set
 *
 * From here on VFIO_GROUP_GET_DEVICE_FD can find the device.
 */
void vfio_device_group_register(struct vfio_device *device)
{
	mutex_lock(&device->group->device_lock);
	list_add(&device->group_next, &device->group->device_list);
	mutex_unlock(&device->group->device_lock);
}

/**
 * vfio_device_group_unregister - Undo vfio_device_group_register()
 * @device: the device
 */
void vfio_device_group_unregister(struct vfio_device *device)
{
	mutex_lock(&device->group->device_lock);
	list_del(&device->group_next);
	mutex_unlock(&device->group->device_lock);
}

/* The device of @group that @buf names, with a registration reference. */
static struct vfio_device *vfio_device_get_from_name(struct vfio_group *group,
						     char *buf)
{
	struct vfio_device *it, *device = ERR_PTR(-ENODEV);

	mutex_lock(&group->device_lock);
	list_for_each_entry(it, &group->device_list, group_next) {
		int ret;

		if (it->ops->match) {
			ret = it->ops->match(it, buf);
			if (ret < 0) {
				device = ERR_PTR(ret);
				break;
			}
		} else {
			ret = !strcmp(dev_name(it->dev), buf);
		}

		if (ret && vfio_device_try_get_registration(it)) {
			device = it;
			break;
		}
	}
	mutex_unlock(&group->device_lock);

	return device;
}

/*
 * Opening and closing a device through its group
 */

/*
 * Give the device a KVM reference of its own if the group is linked to a VM.
 * Reading group->kvm and taking the reference under kvm_ref_lock keeps the
 * VM from being freed in between: KVM unlinks the group (under the same
 * lock) before it frees the VM.
 */
static void vfio_device_group_get_kvm_safe(struct vfio_device *device)
{
	struct vfio_group *group = device->group;

	lockdep_assert_held(&device->dev_set->lock);

	spin_lock(&group->kvm_ref_lock);
	if (group->kvm)
		vfio_device_get_kvm_safe(device, group->kvm);
	spin_unlock(&group->kvm_ref_lock);
}

/* The open_count 0 -> 1 transition: the driver's open_device() */
static int vfio_device_first_open(struct vfio_device *device)
{
	struct vfio_group *group = device->group;
	int ret = 0;

	lockdep_assert_held(&device->dev_set->lock);

	vfio_device_group_get_kvm_safe(device);

	mutex_lock(&group->group_lock);
	if (device->ops->open_device) {
		ret = device->ops->open_device(device);
		if (ret)
			goto err_unlock;
	}
	vfio_device_container_register(device);
	mutex_unlock(&group->group_lock);
	return 0;

err_unlock:
	mutex_unlock(&group->group_lock);
	vfio_device_put_kvm(device);
	return ret;
}

/* The open_count 1 -> 0 transition: the driver's close_device() */
static void vfio_device_last_close(struct vfio_device *device)
{
	struct vfio_group *group = device->group;

	lockdep_assert_held(&device->dev_set->lock);

	mutex_lock(&group->group_lock);
	if (device->ops->close_device)
		device->ops->close_device(device);
	vfio_device_container_unregister(device);
	mutex_unlock(&group->group_lock);

	vfio_device_put_kvm(device);
}

/*
 * Open @device for a new device file: use the container of the group, pin
 * the driver module and, on the first open, call the driver's open_device().
 * Undone by vfio_device_group_close().
 */
static int vfio_device_group_open(struct vfio_device *device)
{
	int ret;

	mutex_lock(&device->group->group_lock);
	ret = vfio_device_assign_container(device);
	mutex_unlock(&device->group->group_lock);
	if (ret)
		return ret;

	if (!try_module_get(device->dev->driver->owner)) {
		ret = -ENODEV;
		goto err_unassign_container;
	}

	mutex_lock(&device->dev_set->lock);
	/* open_count is already 1 in open_device(), as drivers expect */
	device->open_count++;
	if (device->open_count == 1) {
		ret = vfio_device_first_open(device);
		if (ret)
			goto err_undo_count;
	}
	mutex_unlock(&device->dev_set->lock);
	return 0;

err_undo_count:
	device->open_count--;
	mutex_unlock(&device->dev_set->lock);
	module_put(device->dev->driver->owner);
err_unassign_container:
	vfio_device_unassign_container(device);
	return ret;
}

/**
 * vfio_device_group_close - Close a device opened through its group
 * @device: the device, opened by VFIO_GROUP_GET_DEVICE_FD
 *
 * Calls the driver's close_device() on the last close and releases what the
 * open took, except the registration reference, which stays with the caller.
 */
void vfio_device_group_close(struct vfio_device *device)
{
	mutex_lock(&device->dev_set->lock);
	vfio_assert_device_open(device);
	/* open_count is still 1 in close_device(), as drivers expect */
	if (device->open_count == 1)
		vfio_device_last_close(device);
	device->open_count--;
	mutex_unlock(&device->dev_set->lock);

	module_put(device->dev->driver->owner);
	vfio_device_unassign_container(device);
}

/*
 * The group file, /dev/vfio/$GROUP
 */

/*
 * Only the user that set the container can unset it, and only while no
 * device file holds the container: container_users must be exactly 1.
 */
static int vfio_group_ioctl_unset_container(struct vfio_group *group)
{
	int ret = 0;

	mutex_lock(&group->group_lock);
	if (!group->container) {
		ret = -EINVAL;
		goto out_unlock;
	}
	if (group->container_users != 1) {
		ret = -EBUSY;
		goto out_unlock;
	}
	vfio_group_detach_container(group);

out_unlock:
	mutex_unlock(&group->group_lock);
	return ret;
}

static int vfio_group_ioctl_set_container(struct vfio_group *group,
					  int __user *arg)
{
	struct vfio_container *container;
	struct fd f;
	int ret;
	int fd;

	if (get_user(fd, arg))
		return -EFAULT;

	f = fdget(fd);
	if (!f.file)
		return -EBADF;

	mutex_lock(&group->group_lock);
	if (group->container || WARN_ON(group->container_users)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	if (!group->iommu_group) {
		ret = -ENODEV;
		goto out_unlock;
	}

	container = vfio_container_from_file(f.file);
	if (container)
		ret = vfio_container_attach_group(container, group);
	else
		ret = -EINVAL;

out_unlock:
	mutex_unlock(&group->group_lock);
	fdput(f);
	return ret;
}

static int vfio_group_ioctl_get_device_fd(struct vfio_group *group,
					  char __user *arg)
{
	struct vfio_device *device;
	struct file *filep;
	char *buf;
	int fdno;
	int ret;

	buf = strndup_user(arg, PAGE_SIZE);
	if (IS_ERR(buf))
		return PTR_ERR(buf);

	device = vfio_device_get_from_name(group, buf);
	kfree(buf);
	if (IS_ERR(device))
		return PTR_ERR(device);

	fdno = get_unused_fd_flags(O_CLOEXEC);
	if (fdno < 0) {
		ret = fdno;
		goto err_put_registration;
	}

	ret = vfio_device_group_open(device);
	if (ret)
		goto err_put_fdno;

	filep = vfio_device_alloc_file(device);
	if (IS_ERR(filep)) {
		ret = PTR_ERR(filep);
		goto err_close_device;
	}

	if (group->type == VFIO_NO_IOMMU)
		dev_warn(device->dev, "vfio-noiommu device opened by user (%s:%d)\n",
			 current->comm, task_pid_nr(current));

	/* The registration reference now belongs to the file */
	fd_install(fdno, filep);
	return fdno;

err_close_device:
	vfio_device_group_close(device);
err_put_fdno:
	put_unused_fd(fdno);
err_put_registration:
	vfio_device_put_registration(device);
	return ret;
}

static int vfio_group_ioctl_get_status(struct vfio_group *group,
				       struct vfio_group_status __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_group_status, flags);
	struct vfio_group_status status;

	if (copy_from_user(&status, arg, minsz))
		return -EFAULT;

	if (status.argsz < minsz)
		return -EINVAL;

	status.flags = 0;

	mutex_lock(&group->group_lock);
	if (!group->iommu_group) {
		mutex_unlock(&group->group_lock);
		return -ENODEV;
	}

	if (group->container)
		status.flags |= VFIO_GROUP_FLAGS_CONTAINER_SET |
				VFIO_GROUP_FLAGS_VIABLE;
	else if (!iommu_group_dma_owner_claimed(group->iommu_group))
		status.flags |= VFIO_GROUP_FLAGS_VIABLE;
	mutex_unlock(&group->group_lock);

	if (copy_to_user(arg, &status, minsz))
		return -EFAULT;
	return 0;
}

static long vfio_group_fops_unl_ioctl(struct file *filep,
				      unsigned int cmd, unsigned long arg)
{
	struct vfio_group *group = filep->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VFIO_GROUP_GET_DEVICE_FD:
		return vfio_group_ioctl_get_device_fd(group, uarg);
	case VFIO_GROUP_GET_STATUS:
		return vfio_group_ioctl_get_status(group, uarg);
	case VFIO_GROUP_SET_CONTAINER:
		return vfio_group_ioctl_set_container(group, uarg);
	case VFIO_GROUP_UNSET_CONTAINER:
		return vfio_group_ioctl_unset_container(group);
	default:
		return -ENOTTY;
	}
}

static int vfio_group_fops_open(struct inode *inode, struct file *filep)
{
	struct vfio_group *group =
		container_of(inode->i_cdev, struct vfio_group, cdev);
	int ret;

	mutex_lock(&group->group_lock);

	/*
	 * The last driver may be leaving (vfio_device_remove_group()); once
	 * drivers is 0 it stays 0.
	 */
	if (refcount_read(&group->drivers) == 0) {
		ret = -ENODEV;
		goto out_unlock;
	}

	if (group->type == VFIO_NO_IOMMU && !capable(CAP_SYS_RAWIO)) {
		ret = -EPERM;
		goto out_unlock;
	}

	/* A group has one user at a time */
	if (group->opened_file) {
		ret = -EBUSY;
		goto out_unlock;
	}
	group->opened_file = filep;
	filep->private_data = group;
	ret = 0;
out_unlock:
	mutex_unlock(&group->group_lock);
	return ret;
}

static int vfio_group_fops_release(struct inode *inode, struct file *filep)
{
	struct vfio_group *group = filep->private_data;

	filep->private_data = NULL;

	mutex_lock(&group->group_lock);
	/*
	 * Each device file holds a reference on the group file, so no device
	 * is open here.
	 */
	WARN_ON(group->notifier.head);
	if (group->container)
		vfio_group_detach_container(group);
	group->opened_file = NULL;
	mutex_unlock(&group->group_lock);
	return 0;
}

static const struct file_operations vfio_group_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= vfio_group_fops_unl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.open		= vfio_group_fops_open,
	.release	= vfio_group_fops_release,
};

/*
 * Helpers for KVM, which holds a group file
 */

/**
 * vfio_file_iommu_group - The iommu_group of a VFIO group file
 * @file: a VFIO group file
 *
 * Only for the SPAPR TCE code of KVM; NULL on other platforms.
 *
 * Return: the iommu_group with a reference the caller must put, or NULL if
 * @file is not a group file or its group has lost its devices.
 */
struct iommu_group *vfio_file_iommu_group(struct file *file)
{
	struct vfio_group *group = file->private_data;
	struct iommu_group *iommu_group = NULL;

	if (!IS_ENABLED(CONFIG_SPAPR_TCE_IOMMU))
		return NULL;

	if (!vfio_file_is_group(file))
		return NULL;

	mutex_lock(&group->group_lock);
	if (group->iommu_group) {
		iommu_group = group->iommu_group;
		iommu_group_ref_get(iommu_group);
	}
	mutex_unlock(&group->group_lock);
	return iommu_group;
}
EXPORT_SYMBOL_GPL(vfio_file_iommu_group);

/**
 * vfio_file_is_group - Whether a file is a VFIO group file
 * @file: the file to check
 *
 * Return: true if @file was opened from /dev/vfio/$GROUP.
 */
bool vfio_file_is_group(struct file *file)
{
	return file->f_op == &vfio_group_fops;
}
EXPORT_SYMBOL_GPL(vfio_file_is_group);

/**
 * vfio_file_enforced_coherent - Whether the DMA of a group is always coherent
 * @file: a VFIO group file
 *
 * The IOMMU of an enforced coherent group ignores no-snoop, so its user
 * needs no cache maintenance instructions (e.g. wbinvd on x86).  Coherency
 * is known only once a container is set; until then, and for a file that is
 * not a group file, this reports true.
 *
 * Return: false if the user may need cache maintenance, true otherwise.
 */
bool vfio_file_enforced_coherent(struct file *file)
{
	struct vfio_group *group = file->private_data;
	bool ret;

	if (!vfio_file_is_group(file))
		return true;

	mutex_lock(&group->group_lock);
	if (group->container)
		ret = vfio_container_ioctl_check_extension(group->container,
							   VFIO_DMA_CC_IOMMU);
	else
		ret = true;
	mutex_unlock(&group->group_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(vfio_file_enforced_coherent);

/**
 * vfio_file_set_kvm - Link a VFIO group to a VM, or unlink it
 * @file: a VFIO group file
 * @kvm: the VM, or NULL to unlink
 *
 * A device of the group opened for the first time afterwards gets its own
 * reference on @kvm in device->kvm for the driver's open_device(), dropped
 * after its last close.  KVM calls this with kvm->lock held, and unlinks the
 * group before the VM is freed.  Takes only group->kvm_ref_lock, never
 * group->group_lock, which is held around drivers' open_device().
 */
void vfio_file_set_kvm(struct file *file, struct kvm *kvm)
{
	struct vfio_group *group = file->private_data;

	if (!vfio_file_is_group(file))
		return;

	spin_lock(&group->kvm_ref_lock);
	group->kvm = kvm;
	spin_unlock(&group->kvm_ref_lock);
}
EXPORT_SYMBOL_GPL(vfio_file_set_kvm);

/**
 * vfio_file_has_dev - Whether a VFIO file gives access to a device
 * @file: the VFIO file to check
 * @device: the device
 *
 * Return: true if @file is the group file of the group of @device.
 */
bool vfio_file_has_dev(struct file *file, struct vfio_device *device)
{
	struct vfio_group *group = file->private_data;

	if (!vfio_file_is_group(file))
		return false;

	return group == device->group;
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
 * chrdev region of /dev/vfio/$GROUP.  On failure nothing is left set up.
 *
 * Return: 0 or a negative errno.
 */
int __init vfio_group_init(void)
{
	int ret;

	ida_init(&vfio.group_ida);
	mutex_init(&vfio.group_lock);
	INIT_LIST_HEAD(&vfio.group_list);

	ret = vfio_container_init();
	if (ret)
		goto err_destroy;

	vfio.class = class_create(THIS_MODULE, "vfio");
	if (IS_ERR(vfio.class)) {
		ret = PTR_ERR(vfio.class);
		goto err_container;
	}
	vfio.class->devnode = vfio_devnode;

	ret = alloc_chrdev_region(&vfio.group_devt, 0, MINORMASK + 1, "vfio");
	if (ret)
		goto err_class;
	return 0;

err_class:
	class_destroy(vfio.class);
	vfio.class = NULL;
err_container:
	vfio_container_cleanup();
err_destroy:
	mutex_destroy(&vfio.group_lock);
	ida_destroy(&vfio.group_ida);
	return ret;
}

/**
 * vfio_group_cleanup - Undo vfio_group_init()
 *
 * All groups must be gone, which they are once every vfio driver has
 * unregistered its devices.
 */
void vfio_group_cleanup(void)
{
	WARN_ON(!list_empty(&vfio.group_list));
	unregister_chrdev_region(vfio.group_devt, MINORMASK + 1);
	class_destroy(vfio.class);
	vfio.class = NULL;
	vfio_container_cleanup();
	mutex_destroy(&vfio.group_lock);
	ida_destroy(&vfio.group_ida);
}
