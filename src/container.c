// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-core: the legacy VFIO container, /dev/vfio/vfio
 *
 * Every open of /dev/vfio/vfio makes a container: one IOMMU address space,
 * which groups join with VFIO_GROUP_SET_CONTAINER (group.c) and which one
 * IOMMU backend implements once VFIO_SET_IOMMU has picked it among the
 * registered ones (vfio_iommu_type1, or the built-in no-IOMMU backend).  The
 * container answers three ioctls itself; every other one is the backend's.
 * The file holds a reference on the container and so does each attached
 * group, so a container, its groups and their devices close in any order.
 *
 * Based on drivers/vfio/container.c of Linux 6.1,
 * Copyright (C) 2012 Red Hat, Inc.  All rights reserved.
 *
 * What guards what (the lock order of the module is at the top of group.c):
 *
 * vfio.iommu_drivers_lock, a mutex: the list of registered backends.
 *
 * container->group_lock, an rw_semaphore: the container's groups and backend
 *   (group_list, iommu_driver, iommu_data, noiommu, and group->container of
 *   its groups).  Held for writing to attach or detach a group and to set the
 *   backend, for reading around every call into the backend made for the
 *   container: extension queries, the pass-through ioctls (MAP_DMA, ...) and
 *   the notification that the file is closed.  Stock 6.1 makes the last two
 *   calls without it, so a detach of the last group in another task can free
 *   the backend's data under them.
 *
 * vfio.container_ref_lock, a spinlock and innermost: group->container once
 *   more, for vfio_group_enforced_coherent().  KVM asks that with kv->lock
 *   held, inside kvm->lock, and drivers take kvm->lock in open_device() under
 *   group->group_lock: so it must find and pin the container without
 *   group_lock.  container->group_lock is safe there: nothing under it takes
 *   group_lock, kvm->lock or kv->lock.
 *
 * group->group_lock (group.c) is held by every caller of the functions here
 *   that change a group's container or its users.
 *
 * An open device counts as a user of its group's container
 * (group->container_users).  That keeps the group attached and the backend
 * set, so the calls made for a device (register_device(), unregister_device(),
 * pin_pages(), unpin_pages(), dma_rw()) take no container lock.  They must
 * not: drivers call vfio_unpin_pages() from their dma_unmap() callback, under
 * an UNMAP_DMA that holds container->group_lock for reading, and a second
 * down_read() there would wait forever behind a writer queued in between.
 */
#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/iommu.h>
#include <linux/miscdevice.h>
#include <linux/slab.h>
#include <linux/vfio.h>
#include <uapi/linux/vfio.h>

#include "vfio.h"

/*
 * genksyms reaches this type from the exports of this file (through
 * vfio_device, vfio_group): its members, their types and their order are the
 * kernel's.  It stays out of vfio.h, whose other users' CRCs were computed
 * without it.
 */
struct vfio_container {
	struct kref			kref;
	struct list_head		group_list;
	struct rw_semaphore		group_lock;
	struct vfio_iommu_driver	*iommu_driver;
	void				*iommu_data;
	bool				noiommu;
};

static struct vfio {
	struct mutex		iommu_drivers_lock;	/* iommu_drivers_list */
	struct list_head	iommu_drivers_list;
	spinlock_t		container_ref_lock;	/* see above */
} vfio = {
	.iommu_drivers_lock = __MUTEX_INITIALIZER(vfio.iommu_drivers_lock),
	.iommu_drivers_list = LIST_HEAD_INIT(vfio.iommu_drivers_list),
	.container_ref_lock = __SPIN_LOCK_UNLOCKED(vfio.container_ref_lock),
};

#ifdef CONFIG_VFIO_NOIOMMU
bool vfio_noiommu __read_mostly;
module_param_named(enable_unsafe_noiommu_mode, vfio_noiommu, bool, 0644);
MODULE_PARM_DESC(enable_unsafe_noiommu_mode,
		 "Allow devices without an IOMMU to be used through VFIO.  UNSAFE: the device can DMA anywhere, there is no isolation and no protection of the host kernel, it cannot be used to assign devices to virtual machines, it requires CAP_SYS_RAWIO and it taints the kernel. (default: false)");
#endif

/*
 * The no-IOMMU backend
 *
 * It translates nothing: it accepts only the VFIO_NOIOMMU_IOMMU model, only
 * from a caller with CAP_SYS_RAWIO, and has neither pin_pages nor dma_rw.
 */

static void *vfio_noiommu_open(unsigned long arg)
{
	if (arg != VFIO_NOIOMMU_IOMMU)
		return ERR_PTR(-EINVAL);

	return capable(CAP_SYS_RAWIO) ? NULL : ERR_PTR(-EPERM);
}

static void vfio_noiommu_release(void *iommu_data)
{
}

static long vfio_noiommu_ioctl(void *iommu_data, unsigned int cmd,
			       unsigned long arg)
{
	if (cmd != VFIO_CHECK_EXTENSION)
		return -ENOTTY;

	return vfio_noiommu && arg == VFIO_NOIOMMU_IOMMU;
}

static int vfio_noiommu_attach_group(void *iommu_data,
				     struct iommu_group *iommu_group,
				     enum vfio_group_type type)
{
	return 0;
}

static void vfio_noiommu_detach_group(void *iommu_data,
				      struct iommu_group *iommu_group)
{
}

static const struct vfio_iommu_driver_ops vfio_noiommu_ops = {
	.name		= "vfio-noiommu",
	.owner		= THIS_MODULE,
	.open		= vfio_noiommu_open,
	.release	= vfio_noiommu_release,
	.ioctl		= vfio_noiommu_ioctl,
	.attach_group	= vfio_noiommu_attach_group,
	.detach_group	= vfio_noiommu_detach_group,
};

/*
 * The registered backends
 */

static struct vfio_iommu_driver *
vfio_iommu_driver_find(const struct vfio_iommu_driver_ops *ops)
{
	struct vfio_iommu_driver *driver;

	lockdep_assert_held(&vfio.iommu_drivers_lock);

	list_for_each_entry(driver, &vfio.iommu_drivers_list, vfio_next)
		if (driver->ops == ops)
			return driver;
	return NULL;
}

/**
 * vfio_register_iommu_driver - Offer an IOMMU backend to containers
 * @ops: the backend's callbacks, valid until vfio_unregister_iommu_driver()
 *
 * For the module init of a backend such as vfio_iommu_type1.  Containers
 * consider the backend from then on, for VFIO_CHECK_EXTENSION and
 * VFIO_SET_IOMMU, and a container using it holds a reference on @ops->owner.
 *
 * Context: process context.
 * Return: 0; -EINVAL if @ops is registered already or has only one of
 * register_device and unregister_device; -ENOMEM.
 */
int vfio_register_iommu_driver(const struct vfio_iommu_driver_ops *ops)
{
	struct vfio_iommu_driver *driver;
	int ret = 0;

	if (WARN_ON(!ops->register_device != !ops->unregister_device))
		return -EINVAL;

	driver = kzalloc(sizeof(*driver), GFP_KERNEL);
	if (!driver)
		return -ENOMEM;
	driver->ops = ops;

	mutex_lock(&vfio.iommu_drivers_lock);
	if (vfio_iommu_driver_find(ops))
		ret = -EINVAL;
	else
		list_add(&driver->vfio_next, &vfio.iommu_drivers_list);
	mutex_unlock(&vfio.iommu_drivers_lock);

	if (ret)
		kfree(driver);
	return ret;
}
EXPORT_SYMBOL_GPL(vfio_register_iommu_driver);

/**
 * vfio_unregister_iommu_driver - Withdraw an IOMMU backend
 * @ops: the callbacks given to vfio_register_iommu_driver()
 *
 * For the module exit of a backend, which runs only once no container holds
 * its module.  An @ops that is not registered is ignored.
 *
 * Context: process context.
 */
void vfio_unregister_iommu_driver(const struct vfio_iommu_driver_ops *ops)
{
	struct vfio_iommu_driver *driver;

	mutex_lock(&vfio.iommu_drivers_lock);
	driver = vfio_iommu_driver_find(ops);
	if (driver)
		list_del(&driver->vfio_next);
	mutex_unlock(&vfio.iommu_drivers_lock);

	kfree(driver);
}
EXPORT_SYMBOL_GPL(vfio_unregister_iommu_driver);

/*
 * Containers and their backend
 */

static void vfio_container_free(struct kref *kref)
{
	kfree(container_of(kref, struct vfio_container, kref));
}

static void vfio_container_put(struct vfio_container *container)
{
	kref_put(&container->kref, vfio_container_free);
}

/*
 * Whether @container may consider @driver: one that holds groups only the
 * backends of its kind (no-IOMMU groups the no-IOMMU backend, others the
 * rest); an empty one any.
 */
static bool vfio_container_may_use(struct vfio_container *container,
				   const struct vfio_iommu_driver *driver)
{
	lockdep_assert_held(&container->group_lock);

	if (!IS_ENABLED(CONFIG_VFIO_NOIOMMU) ||
	    list_empty(&container->group_list))
		return true;

	return container->noiommu == (driver->ops == &vfio_noiommu_ops);
}

/* VFIO_CHECK_EXTENSION to a backend: to an instance, or to none (NULL). */
static long vfio_iommu_driver_check(const struct vfio_iommu_driver *driver,
				    void *iommu_data, unsigned long arg)
{
	return driver->ops->ioctl(iommu_data, VFIO_CHECK_EXTENSION, arg);
}

/* Attach every group of @container to a new instance of a backend. */
static int vfio_container_attach_all(struct vfio_container *container,
				     const struct vfio_iommu_driver *driver,
				     void *iommu_data)
{
	struct vfio_group *group;
	int ret;

	lockdep_assert_held_write(&container->group_lock);

	list_for_each_entry(group, &container->group_list, container_next) {
		ret = driver->ops->attach_group(iommu_data, group->iommu_group,
						group->type);
		if (ret)
			goto err_detach;
	}
	return 0;

err_detach:
	list_for_each_entry_continue_reverse(group, &container->group_list,
					     container_next)
		driver->ops->detach_group(iommu_data, group->iommu_group);
	return ret;
}

/*
 * Make @driver the backend of @container for IOMMU model @model: open an
 * instance and attach all groups to it.  The caller's reference on the
 * backend's module becomes the container's.
 */
static int vfio_container_adopt(struct vfio_container *container,
				struct vfio_iommu_driver *driver,
				unsigned long model)
{
	void *iommu_data;
	int ret;

	lockdep_assert_held_write(&container->group_lock);

	iommu_data = driver->ops->open(model);
	if (IS_ERR(iommu_data))
		return PTR_ERR(iommu_data);

	ret = vfio_container_attach_all(container, driver, iommu_data);
	if (ret) {
		driver->ops->release(iommu_data);
		return ret;
	}

	container->iommu_driver = driver;
	container->iommu_data = iommu_data;
	return 0;
}

/* Undo vfio_container_adopt(), when the last group leaves. */
static void vfio_container_drop_backend(struct vfio_container *container)
{
	struct vfio_iommu_driver *driver = container->iommu_driver;

	lockdep_assert_held_write(&container->group_lock);

	driver->ops->release(container->iommu_data);
	module_put(driver->ops->owner);
	container->iommu_driver = NULL;
	container->iommu_data = NULL;
}

/*
 * The container's ioctls
 *
 * Each runs with container->group_lock held as its entry in
 * vfio_container_ioctls[] says; the dispatcher takes it.
 */

static long vfio_container_get_api_version(struct vfio_container *container,
					   unsigned int cmd, unsigned long arg)
{
	return VFIO_API_VERSION;
}

/*
 * VFIO_CHECK_EXTENSION.  The container has no extensions of its own: with a
 * backend, the backend answers; before, every backend the container may use
 * is asked in turn until one says yes, and the last answer counts.
 */
static long vfio_container_check_extension(struct vfio_container *container,
					   unsigned int cmd, unsigned long arg)
{
	struct vfio_iommu_driver *driver;
	long ret = 0;

	lockdep_assert_held(&container->group_lock);

	if (container->iommu_driver)
		return vfio_iommu_driver_check(container->iommu_driver,
					       container->iommu_data, arg);

	mutex_lock(&vfio.iommu_drivers_lock);
	list_for_each_entry(driver, &vfio.iommu_drivers_list, vfio_next) {
		if (!vfio_container_may_use(container, driver) ||
		    !try_module_get(driver->ops->owner))
			continue;

		ret = vfio_iommu_driver_check(driver, NULL, arg);
		module_put(driver->ops->owner);
		if (ret > 0)
			break;
	}
	mutex_unlock(&vfio.iommu_drivers_lock);

	return ret;
}

/*
 * VFIO_SET_IOMMU: @arg is an IOMMU model, as VFIO_CHECK_EXTENSION names them.
 * The first backend the container may use that supports the model, opens
 * with it and takes every group, becomes the container's backend.  The error
 * is that of the last backend that failed to, else -ENODEV.
 *
 * /dev/vfio/vfio needs no privilege, and a backend can take IOMMU
 * resources: only a user who proved access to a group by adding it may set
 * one.  It cannot be changed; the last group out unsets it.
 */
static long vfio_container_set_iommu(struct vfio_container *container,
				     unsigned int cmd, unsigned long arg)
{
	struct vfio_iommu_driver *driver;
	long ret = -ENODEV;

	lockdep_assert_held_write(&container->group_lock);

	if (list_empty(&container->group_list) || container->iommu_driver)
		return -EINVAL;

	mutex_lock(&vfio.iommu_drivers_lock);
	list_for_each_entry(driver, &vfio.iommu_drivers_list, vfio_next) {
		if (!vfio_container_may_use(container, driver) ||
		    !try_module_get(driver->ops->owner))
			continue;

		if (vfio_iommu_driver_check(driver, NULL, arg) > 0) {
			ret = vfio_container_adopt(container, driver, arg);
			if (!ret)
				break;
		}
		module_put(driver->ops->owner);
	}
	mutex_unlock(&vfio.iommu_drivers_lock);

	return ret;
}

/* Any other ioctl: the backend's (MAP_DMA, UNMAP_DMA, dirty tracking...). */
static long vfio_container_backend_ioctl(struct vfio_container *container,
					 unsigned int cmd, unsigned long arg)
{
	struct vfio_iommu_driver *driver = container->iommu_driver;

	/*
	 * Read-held: a detach of the last group, or the close of the last
	 * group file, cannot release the backend under the call.
	 */
	lockdep_assert_held_read(&container->group_lock);

	if (!driver)
		return -EINVAL;

	return driver->ops->ioctl(container->iommu_data, cmd, arg);
}

enum vfio_container_lock {
	VFIO_CONTAINER_UNLOCKED,
	VFIO_CONTAINER_READ,	/* container->group_lock read-held */
	VFIO_CONTAINER_WRITE,	/* container->group_lock write-held */
};

struct vfio_container_ioctl {
	unsigned int		cmd;
	enum vfio_container_lock lock;
	long (*handler)(struct vfio_container *container, unsigned int cmd,
			unsigned long arg);
};

static const struct vfio_container_ioctl vfio_container_ioctls[] = {
	{ VFIO_GET_API_VERSION,	VFIO_CONTAINER_UNLOCKED,
	  vfio_container_get_api_version },
	{ VFIO_CHECK_EXTENSION,	VFIO_CONTAINER_READ,
	  vfio_container_check_extension },
	{ VFIO_SET_IOMMU,	VFIO_CONTAINER_WRITE,
	  vfio_container_set_iommu },
};

static const struct vfio_container_ioctl vfio_container_passthrough = {
	.lock		= VFIO_CONTAINER_READ,
	.handler	= vfio_container_backend_ioctl,
};

static const struct vfio_container_ioctl *
vfio_container_ioctl_find(unsigned int cmd)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vfio_container_ioctls); i++)
		if (vfio_container_ioctls[i].cmd == cmd)
			return &vfio_container_ioctls[i];
	return &vfio_container_passthrough;
}

static long vfio_fops_unl_ioctl(struct file *filep, unsigned int cmd,
				unsigned long arg)
{
	struct vfio_container *container = filep->private_data;
	const struct vfio_container_ioctl *ioctl;
	long ret;

	if (!container)
		return -EINVAL;

	ioctl = vfio_container_ioctl_find(cmd);
	switch (ioctl->lock) {
	case VFIO_CONTAINER_READ:
		down_read(&container->group_lock);
		ret = ioctl->handler(container, cmd, arg);
		up_read(&container->group_lock);
		break;
	case VFIO_CONTAINER_WRITE:
		down_write(&container->group_lock);
		ret = ioctl->handler(container, cmd, arg);
		up_write(&container->group_lock);
		break;
	default:
		ret = ioctl->handler(container, cmd, arg);
		break;
	}
	return ret;
}

/*
 * The container file, /dev/vfio/vfio
 */

static int vfio_fops_open(struct inode *inode, struct file *filep)
{
	struct vfio_container *container;

	container = kzalloc(sizeof(*container), GFP_KERNEL_ACCOUNT);
	if (!container)
		return -ENOMEM;

	kref_init(&container->kref);
	init_rwsem(&container->group_lock);
	INIT_LIST_HEAD(&container->group_list);
	filep->private_data = container;
	return 0;
}

static int vfio_fops_release(struct inode *inode, struct file *filep)
{
	struct vfio_container *container = filep->private_data;
	struct vfio_iommu_driver *driver;

	/*
	 * The groups may keep the backend after the file is gone: tell it that
	 * no new mapping can come.  Read-held for the same reason as the
	 * pass-through ioctls; stock 6.1 does this unlocked and corrupts the
	 * backend's lists when the last group detaches meanwhile
	 * (tests/guest/stress.c, operation closerace).
	 */
	down_read(&container->group_lock);
	driver = container->iommu_driver;
	if (driver && driver->ops->notify)
		driver->ops->notify(container->iommu_data,
				    VFIO_IOMMU_CONTAINER_CLOSE);
	up_read(&container->group_lock);

	filep->private_data = NULL;
	vfio_container_put(container);
	return 0;
}

static const struct file_operations vfio_fops = {
	.owner = THIS_MODULE,
	.open = vfio_fops_open,
	.release = vfio_fops_release,
	.unlocked_ioctl = vfio_fops_unl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice vfio_dev = {
	.minor = VFIO_MINOR,
	.name = "vfio",
	.nodename = "vfio/vfio",
	.mode = 0666,
	.fops = &vfio_fops,
};

/**
 * vfio_container_from_file - The container of a /dev/vfio/vfio file
 * @filep: any file, of which the caller holds a reference
 *
 * Return: the container, or NULL if @filep is not a container file.
 */
struct vfio_container *vfio_container_from_file(struct file *filep)
{
	if (filep->f_op != &vfio_fops)
		return NULL;

	/* Set until ->release(), which the caller's reference holds off */
	WARN_ON(!filep->private_data);
	return filep->private_data;
}

/*
 * A group's place in a container
 */

/*
 * Change group->container: under group->group_lock and the write lock of
 * the container it joins or leaves, and vfio.container_ref_lock for
 * vfio_group_get_container().
 */
static void vfio_group_publish_container(struct vfio_group *group,
					 struct vfio_container *container)
{
	lockdep_assert_held(&group->group_lock);

	spin_lock(&vfio.container_ref_lock);
	group->container = container;
	spin_unlock(&vfio.container_ref_lock);
}

/* The container of @group with a reference, or NULL; no group_lock needed. */
static struct vfio_container *vfio_group_get_container(struct vfio_group *group)
{
	struct vfio_container *container;

	spin_lock(&vfio.container_ref_lock);
	container = group->container;
	/* Safe: the group's own reference is put only after it left */
	if (container)
		kref_get(&container->kref);
	spin_unlock(&vfio.container_ref_lock);
	return container;
}

/*
 * Whether @group is (still) in @container.  A true answer stays true while
 * the caller holds container->group_lock.
 */
static bool vfio_group_in_container(struct vfio_group *group,
				    struct vfio_container *container)
{
	bool ret;

	lockdep_assert_held(&container->group_lock);

	spin_lock(&vfio.container_ref_lock);
	ret = group->container == container;
	spin_unlock(&vfio.container_ref_lock);
	return ret;
}

/*
 * The user, not the kernel, owns the DMA of a VFIO_IOMMU group's devices
 * while it is in a container: this fails while a kernel driver has one.
 */
static int vfio_group_claim_dma(struct vfio_group *group)
{
	if (group->type != VFIO_IOMMU)
		return 0;

	return iommu_group_claim_dma_owner(group->iommu_group, group);
}

static void vfio_group_unclaim_dma(struct vfio_group *group)
{
	if (group->type == VFIO_IOMMU)
		iommu_group_release_dma_owner(group->iommu_group);
}

/* Attach @group to the backend of @container, if it has one yet. */
static int vfio_container_backend_attach(struct vfio_container *container,
					 struct vfio_group *group)
{
	struct vfio_iommu_driver *driver = container->iommu_driver;

	lockdep_assert_held_write(&container->group_lock);

	if (!driver)
		return 0;

	return driver->ops->attach_group(container->iommu_data,
					 group->iommu_group, group->type);
}

static void vfio_container_backend_detach(struct vfio_container *container,
					  struct vfio_group *group)
{
	struct vfio_iommu_driver *driver = container->iommu_driver;

	lockdep_assert_held_write(&container->group_lock);

	if (driver)
		driver->ops->detach_group(container->iommu_data,
					  group->iommu_group);
}

/*
 * Make @group a member of @container, with a reference on it; its file is
 * the first user of the container.
 */
static void vfio_container_link(struct vfio_container *container,
				struct vfio_group *group)
{
	lockdep_assert_held_write(&container->group_lock);

	kref_get(&container->kref);
	list_add(&group->container_next, &container->group_list);
	container->noiommu = group->type == VFIO_NO_IOMMU;
	group->container_users = 1;
	vfio_group_publish_container(group, container);
}

/* Undo vfio_container_link(), except the reference */
static void vfio_container_unlink(struct vfio_container *container,
				  struct vfio_group *group)
{
	lockdep_assert_held_write(&container->group_lock);

	vfio_group_publish_container(group, NULL);
	group->container_users = 0;
	list_del(&group->container_next);
}

/**
 * vfio_container_attach_group - VFIO_GROUP_SET_CONTAINER
 * @container: the container to join
 * @group: a group with devices and without a container
 *
 * The group's first container user is its file; the group holds a reference
 * on the container until it leaves.
 *
 * Context: group->group_lock held.
 * Return: 0; -EPERM for a no-IOMMU group without CAP_SYS_RAWIO or a group of
 * the other kind than those in @container; the error of claiming the DMA or
 * of attaching the group to the backend.
 */
int vfio_container_attach_group(struct vfio_container *container,
				struct vfio_group *group)
{
	bool noiommu = group->type == VFIO_NO_IOMMU;
	int ret;

	lockdep_assert_held(&group->group_lock);

	if (noiommu && !capable(CAP_SYS_RAWIO))
		return -EPERM;

	down_write(&container->group_lock);

	if (!list_empty(&container->group_list) &&
	    container->noiommu != noiommu) {
		ret = -EPERM;
		goto out_unlock;
	}

	ret = vfio_group_claim_dma(group);
	if (ret)
		goto out_unlock;

	ret = vfio_container_backend_attach(container, group);
	if (ret)
		goto err_unclaim;

	vfio_container_link(container, group);
	up_write(&container->group_lock);
	return 0;

err_unclaim:
	vfio_group_unclaim_dma(group);
out_unlock:
	up_write(&container->group_lock);
	return ret;
}

/**
 * vfio_group_detach_container - Take a group out of its container
 * @group: a group in a container, with no device open
 *
 * For VFIO_GROUP_UNSET_CONTAINER, the close of the group file and the
 * removal of the group's last device: vfio_container_attach_group() in
 * reverse.  The last group out releases the container's backend.
 *
 * Context: group->group_lock held.
 */
void vfio_group_detach_container(struct vfio_group *group)
{
	struct vfio_container *container = group->container;

	lockdep_assert_held(&group->group_lock);
	WARN_ON(group->container_users != 1);

	down_write(&container->group_lock);
	vfio_container_unlink(container, group);
	vfio_container_backend_detach(container, group);
	vfio_group_unclaim_dma(group);
	if (container->iommu_driver && list_empty(&container->group_list))
		vfio_container_drop_backend(container);
	up_write(&container->group_lock);

	/* The group's reference, from vfio_container_link() */
	vfio_container_put(container);
}

/*
 * Whether VFIO_SET_IOMMU has set a backend.  Once true for a container that
 * a group of the caller's, locked, is in, it stays true until that group
 * leaves.
 */
static bool vfio_container_has_backend(struct vfio_container *container)
{
	bool ret;

	down_read(&container->group_lock);
	ret = container->iommu_driver;
	up_read(&container->group_lock);
	return ret;
}

/**
 * vfio_group_use_container - Count an opening device as a container user
 * @group: the group of the device
 *
 * A device can only be opened in a container with a backend.  Its file pins
 * the group file as well, so the group cannot leave the container while the
 * device is open.  Undone by vfio_group_unuse_container().
 *
 * Context: group->group_lock held.
 * Return: 0; -EINVAL without a container or backend; -EPERM for a no-IOMMU
 * group without CAP_SYS_RAWIO.
 */
int vfio_group_use_container(struct vfio_group *group)
{
	struct vfio_container *container = group->container;

	lockdep_assert_held(&group->group_lock);

	if (!container || !vfio_container_has_backend(container))
		return -EINVAL;
	if (WARN_ON(!group->container_users))
		return -EINVAL;
	if (group->type == VFIO_NO_IOMMU && !capable(CAP_SYS_RAWIO))
		return -EPERM;

	group->container_users++;
	get_file(group->opened_file);
	return 0;
}

/**
 * vfio_group_unuse_container - Undo vfio_group_use_container()
 * @group: the group of the device
 *
 * Context: group->group_lock held.
 */
void vfio_group_unuse_container(struct vfio_group *group)
{
	lockdep_assert_held(&group->group_lock);

	WARN_ON(group->container_users <= 1);
	group->container_users--;
	/* Never the last reference to run now: fput() defers the release */
	fput(group->opened_file);
}

/**
 * vfio_group_enforced_coherent - Whether a group's DMA is cache coherent
 * @group: a group whose file the caller holds
 *
 * Stock 6.1's answer, which it gives under group->group_lock: in a
 * container, the container's VFIO_CHECK_EXTENSION(VFIO_DMA_CC_IOMMU) != 0;
 * without one, true.  Taken here without group_lock (see the top of this
 * file): the container is found and pinned under vfio.container_ref_lock,
 * and asked under its group_lock, read-held, if the group is still in it.
 * If it left meanwhile, it had no container for a moment since the call,
 * and true is what stock answers then.
 *
 * Return: the answer.
 */
bool vfio_group_enforced_coherent(struct vfio_group *group)
{
	struct vfio_container *container;
	bool coherent = true;

	container = vfio_group_get_container(group);
	if (!container)
		return true;

	down_read(&container->group_lock);
	if (vfio_group_in_container(group, container))
		coherent = vfio_container_check_extension(container,
							  VFIO_CHECK_EXTENSION,
							  VFIO_DMA_CC_IOMMU) != 0;
	up_read(&container->group_lock);

	vfio_container_put(container);
	return coherent;
}

/*
 * Calls into the backend for an open device
 */

/*
 * The backend of the container of an open device, and its instance data:
 * stable without any container lock while the device is open (see the top
 * of this file).  NULL if the container has none.
 */
static const struct vfio_iommu_driver_ops *
vfio_device_backend(struct vfio_device *device, void **iommu_data)
{
	struct vfio_container *container = device->group->container;

	*iommu_data = container->iommu_data;
	return container->iommu_driver ? container->iommu_driver->ops : NULL;
}

/**
 * vfio_device_container_register - Tell the backend of a device's first open
 * @device: the device, with a container user
 *
 * Context: group->group_lock held.
 */
void vfio_device_container_register(struct vfio_device *device)
{
	const struct vfio_iommu_driver_ops *ops;
	void *iommu_data;

	lockdep_assert_held(&device->group->group_lock);

	ops = vfio_device_backend(device, &iommu_data);
	if (ops && ops->register_device)
		ops->register_device(iommu_data, device);
}

/**
 * vfio_device_container_unregister - Tell the backend of a device's last close
 * @device: the device, still with a container user
 *
 * Context: group->group_lock held.
 */
void vfio_device_container_unregister(struct vfio_device *device)
{
	const struct vfio_iommu_driver_ops *ops;
	void *iommu_data;

	lockdep_assert_held(&device->group->group_lock);

	ops = vfio_device_backend(device, &iommu_data);
	if (ops && ops->unregister_device)
		ops->unregister_device(iommu_data, device);
}

/**
 * vfio_pin_pages - Pin the user pages behind a range of IOVAs
 * @device: an open device of an emulated IOMMU
 *	    (vfio_register_emulated_iommu_dev())
 * @iova: the IOVA of the first page
 * @npage: how many pages, at most VFIO_PIN_PAGES_MAX_ENTRIES
 * @prot: the access needed, IOMMU_READ and/or IOMMU_WRITE
 * @pages: the host pages, filled in
 *
 * Pins the user memory that the container maps at @iova.  The driver must
 * unpin it with vfio_unpin_pages(), at the latest when its dma_unmap()
 * callback says the range goes.
 *
 * Context: process context; may sleep.
 * Return: the number of pages pinned; -EINVAL for bad arguments or a device
 * that is not open; -E2BIG for too many pages; -ENOTTY if the backend cannot
 * pin; or the backend's error.
 */
int vfio_pin_pages(struct vfio_device *device, dma_addr_t iova,
		   int npage, int prot, struct page **pages)
{
	const struct vfio_iommu_driver_ops *ops;
	void *iommu_data;

	if (!pages || !npage || !vfio_assert_device_open(device))
		return -EINVAL;
	if (npage > VFIO_PIN_PAGES_MAX_ENTRIES)
		return -E2BIG;

	ops = vfio_device_backend(device, &iommu_data);
	if (unlikely(!ops || !ops->pin_pages))
		return -ENOTTY;

	return ops->pin_pages(iommu_data, device->group->iommu_group, iova,
			      npage, prot, pages);
}
EXPORT_SYMBOL(vfio_pin_pages);

/**
 * vfio_unpin_pages - Unpin what vfio_pin_pages() pinned
 * @device: the open device that pinned the pages
 * @iova: the IOVA of the first page
 * @npage: how many pages, 1 to VFIO_PIN_PAGES_MAX_ENTRIES
 *
 * May be called from the driver's dma_unmap() callback.  Bad arguments, or
 * a device that is not open, only warn.
 *
 * Context: process context; may sleep.
 */
void vfio_unpin_pages(struct vfio_device *device, dma_addr_t iova, int npage)
{
	const struct vfio_iommu_driver_ops *ops;
	void *iommu_data;

	if (WARN_ON(npage <= 0 || npage > VFIO_PIN_PAGES_MAX_ENTRIES) ||
	    WARN_ON(!vfio_assert_device_open(device)))
		return;

	ops = vfio_device_backend(device, &iommu_data);
	ops->unpin_pages(iommu_data, iova, npage);
}
EXPORT_SYMBOL(vfio_unpin_pages);

/**
 * vfio_dma_rw - Copy between a kernel buffer and user memory by IOVA
 * @device: an open device
 * @iova: the IOVA of the user memory
 * @data: the kernel buffer
 * @len: how many bytes
 * @write: true to copy @data to the user memory, false the other way
 *
 * Lets a driver emulate its device's DMA with the CPU, through the
 * container's mappings; nothing is pinned.
 *
 * Context: process context; may sleep.
 * Return: 0; -EINVAL for bad arguments or a device that is not open;
 * -ENOTTY if the backend cannot; or the backend's error.
 */
int vfio_dma_rw(struct vfio_device *device, dma_addr_t iova, void *data,
		size_t len, bool write)
{
	const struct vfio_iommu_driver_ops *ops;
	void *iommu_data;

	if (!data || !len || !vfio_assert_device_open(device))
		return -EINVAL;

	ops = vfio_device_backend(device, &iommu_data);
	if (unlikely(!ops || !ops->dma_rw))
		return -ENOTTY;

	return ops->dma_rw(iommu_data, iova, data, len, write);
}
EXPORT_SYMBOL(vfio_dma_rw);

/*
 * Module init and exit of the container part
 */

/**
 * vfio_container_init - Set up the backends and /dev/vfio/vfio
 *
 * The built-in no-IOMMU backend is registered before the device node
 * appears, so no container can miss it.
 *
 * Return: 0 or a negative errno, with nothing set up.
 */
int __init vfio_container_init(void)
{
	int ret;

	if (IS_ENABLED(CONFIG_VFIO_NOIOMMU)) {
		ret = vfio_register_iommu_driver(&vfio_noiommu_ops);
		if (ret)
			return ret;
	}

	ret = misc_register(&vfio_dev);
	if (ret) {
		pr_err("vfio: misc device register failed\n");
		goto err_noiommu;
	}
	return 0;

err_noiommu:
	if (IS_ENABLED(CONFIG_VFIO_NOIOMMU))
		vfio_unregister_iommu_driver(&vfio_noiommu_ops);
	return ret;
}

/**
 * vfio_container_cleanup - Undo vfio_container_init()
 */
void vfio_container_cleanup(void)
{
	misc_deregister(&vfio_dev);
	if (IS_ENABLED(CONFIG_VFIO_NOIOMMU))
		vfio_unregister_iommu_driver(&vfio_noiommu_ops);
}
