// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio-core: the legacy VFIO container, /dev/vfio/vfio
 *
 * A container is created for every open of /dev/vfio/vfio.  Groups are added
 * to it with VFIO_GROUP_SET_CONTAINER (group.c), after which VFIO_SET_IOMMU
 * binds it to one of the registered IOMMU backends (vfio_iommu_type1, or the
 * built-in no-IOMMU backend with CONFIG_VFIO_NOIOMMU).  Every ioctl this file
 * does not handle itself is forwarded to that backend.  The container is
 * reference counted: the file holds one reference and each attached group
 * holds one, so the container, its groups and their devices may be closed in
 * any order.
 *
 * Locking
 *
 * vfio.iommu_drivers_lock (mutex) protects vfio.iommu_drivers_list.  It is
 *   taken alone by vfio_register_iommu_driver() and
 *   vfio_unregister_iommu_driver(), and nested inside container->group_lock
 *   while the list is walked for VFIO_CHECK_EXTENSION and VFIO_SET_IOMMU.
 *
 * container->group_lock (rw_semaphore) protects container->group_list,
 *   container->iommu_driver, container->iommu_data and container->noiommu.
 *   It is taken for writing to attach or detach a group and to set the
 *   IOMMU backend, and for reading to query extensions.
 *
 * group->group_lock (mutex, owned by group.c) is held by the callers of
 *   vfio_container_attach_group(), vfio_group_detach_container(),
 *   vfio_device_assign_container(), vfio_device_container_register() and
 *   vfio_device_container_unregister(); vfio_device_unassign_container()
 *   takes it itself.  It protects group->container and
 *   group->container_users.
 *
 * The resulting order is:
 *
 *   group->group_lock
 *     container->group_lock
 *       vfio.iommu_drivers_lock
 *
 * IOMMU backend callbacks run with container->group_lock held (->notify() on
 * close of the container file too, unlike stock 6.1: see vfio_fops_release()),
 * except ->ioctl() for pass-through ioctls, and the per-device ones: ->register_device() and
 * ->unregister_device() run under group->group_lock only; ->pin_pages(),
 * ->unpin_pages() and ->dma_rw() under no vfio lock.  Those rely on the
 * device being open: an open device holds a container user, so
 * group->container and the backend cannot change under it.
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
 * The member names, types and order are seen by genksyms through the
 * vfio_group pointer in struct vfio_device: keep them as in the kernel.
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
	struct list_head		iommu_drivers_list;
	struct mutex			iommu_drivers_lock; /* iommu_drivers_list */
} vfio;

#ifdef CONFIG_VFIO_NOIOMMU
bool vfio_noiommu __read_mostly;
module_param_named(enable_unsafe_noiommu_mode, vfio_noiommu, bool, 0644);
MODULE_PARM_DESC(enable_unsafe_noiommu_mode,
		 "Allow devices without an IOMMU to be used through VFIO.  UNSAFE: the device can DMA anywhere, there is no isolation and no protection of the host kernel, it cannot be used to assign devices to virtual machines, it requires CAP_SYS_RAWIO and it taints the kernel. (default: false)");
#endif

/*
 * The no-IOMMU backend: accepts only VFIO_NOIOMMU_IOMMU, and only for callers
 * with CAP_SYS_RAWIO.  It translates nothing, so it has no pin_pages or
 * dma_rw and the user DMAs to whatever addresses it likes.
 */
static void *vfio_noiommu_open(unsigned long arg)
{
	if (arg != VFIO_NOIOMMU_IOMMU)
		return ERR_PTR(-EINVAL);
	if (!capable(CAP_SYS_RAWIO))
		return ERR_PTR(-EPERM);

	return NULL;
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
 * A container of VFIO_NO_IOMMU groups may only use the no-IOMMU backend, and
 * the no-IOMMU backend may only serve such a container.
 */
static bool vfio_iommu_driver_allowed(struct vfio_container *container,
				      const struct vfio_iommu_driver *driver)
{
	if (!IS_ENABLED(CONFIG_VFIO_NOIOMMU))
		return true;

	return container->noiommu == (driver->ops == &vfio_noiommu_ops);
}

/**
 * vfio_register_iommu_driver - make an IOMMU backend available to containers
 * @ops: the backend's callbacks; must stay valid until
 *	 vfio_unregister_iommu_driver(@ops)
 *
 * Called by IOMMU backend modules such as vfio_iommu_type1 at load time.
 * Containers find the backend on VFIO_CHECK_EXTENSION and VFIO_SET_IOMMU, and
 * hold a reference on @ops->owner while they use it.
 *
 * Context: process context; takes vfio.iommu_drivers_lock.
 * Return: 0 on success; -EINVAL if @ops is already registered or provides
 * only one of ->register_device and ->unregister_device; -ENOMEM.
 */
int vfio_register_iommu_driver(const struct vfio_iommu_driver_ops *ops)
{
	struct vfio_iommu_driver *driver, *tmp;

	if (WARN_ON(!ops->register_device != !ops->unregister_device))
		return -EINVAL;

	driver = kzalloc(sizeof(*driver), GFP_KERNEL);
	if (!driver)
		return -ENOMEM;
	driver->ops = ops;

	mutex_lock(&vfio.iommu_drivers_lock);
	list_for_each_entry(tmp, &vfio.iommu_drivers_list, vfio_next) {
		if (tmp->ops == ops) {
			mutex_unlock(&vfio.iommu_drivers_lock);
			kfree(driver);
			return -EINVAL;
		}
	}
	list_add(&driver->vfio_next, &vfio.iommu_drivers_list);
	mutex_unlock(&vfio.iommu_drivers_lock);

	return 0;
}
EXPORT_SYMBOL_GPL(vfio_register_iommu_driver);

/**
 * vfio_unregister_iommu_driver - withdraw an IOMMU backend
 * @ops: the callbacks passed to vfio_register_iommu_driver()
 *
 * Containers already using the backend keep a reference on its module, so
 * this is called from the backend's module exit only once none does.  An
 * @ops that is not registered is ignored.
 *
 * Context: process context; takes vfio.iommu_drivers_lock.
 */
void vfio_unregister_iommu_driver(const struct vfio_iommu_driver_ops *ops)
{
	struct vfio_iommu_driver *driver, *found = NULL;

	mutex_lock(&vfio.iommu_drivers_lock);
	list_for_each_entry(driver, &vfio.iommu_drivers_list, vfio_next) {
		if (driver->ops == ops) {
			list_del(&driver->vfio_next);
			found = driver;
			break;
		}
	}
	mutex_unlock(&vfio.iommu_drivers_lock);

	kfree(found);
}
EXPORT_SYMBOL_GPL(vfio_unregister_iommu_driver);

static void vfio_container_release(struct kref *kref)
{
	kfree(container_of(kref, struct vfio_container, kref));
}

static void vfio_container_get(struct vfio_container *container)
{
	kref_get(&container->kref);
}

static void vfio_container_put(struct vfio_container *container)
{
	kref_put(&container->kref, vfio_container_release);
}

/*
 * Tell the backend about a device on its first open, and that it is gone on
 * its last close, both under group->group_lock.  The device holds a
 * container user in between, so group->container and its backend are
 * stable.
 */
void vfio_device_container_register(struct vfio_device *device)
{
	struct vfio_container *container = device->group->container;
	struct vfio_iommu_driver *driver = container->iommu_driver;

	lockdep_assert_held(&device->group->group_lock);

	if (driver && driver->ops->register_device)
		driver->ops->register_device(container->iommu_data, device);
}

void vfio_device_container_unregister(struct vfio_device *device)
{
	struct vfio_container *container = device->group->container;
	struct vfio_iommu_driver *driver = container->iommu_driver;

	lockdep_assert_held(&device->group->group_lock);

	if (driver && driver->ops->unregister_device)
		driver->ops->unregister_device(container->iommu_data, device);
}

/*
 * VFIO_CHECK_EXTENSION on a container.  There are no extensions of the
 * container itself: once a backend is set the question goes to it alone;
 * before that every registered backend is asked and the first positive
 * answer wins.  A container that already holds groups only asks the backends
 * those groups may use.
 */
long vfio_container_ioctl_check_extension(struct vfio_container *container,
					  unsigned long arg)
{
	struct vfio_iommu_driver *driver;
	long ret = 0;

	down_read(&container->group_lock);

	driver = container->iommu_driver;
	if (driver) {
		ret = driver->ops->ioctl(container->iommu_data,
					 VFIO_CHECK_EXTENSION, arg);
		goto out_unlock;
	}

	mutex_lock(&vfio.iommu_drivers_lock);
	list_for_each_entry(driver, &vfio.iommu_drivers_list, vfio_next) {
		if (!list_empty(&container->group_list) &&
		    !vfio_iommu_driver_allowed(container, driver))
			continue;
		if (!try_module_get(driver->ops->owner))
			continue;

		ret = driver->ops->ioctl(NULL, VFIO_CHECK_EXTENSION, arg);
		module_put(driver->ops->owner);
		if (ret > 0)
			break;
	}
	mutex_unlock(&vfio.iommu_drivers_lock);

out_unlock:
	up_read(&container->group_lock);
	return ret;
}

/*
 * Attach every group of @container to a freshly opened backend instance;
 * on failure, detach again the ones already attached.
 */
static int vfio_container_attach_groups(struct vfio_container *container,
					struct vfio_iommu_driver *driver,
					void *data)
{
	struct vfio_group *group;
	int ret = -ENODEV;

	lockdep_assert_held_write(&container->group_lock);

	list_for_each_entry(group, &container->group_list, container_next) {
		ret = driver->ops->attach_group(data, group->iommu_group,
						group->type);
		if (ret)
			goto err_detach;
	}
	return ret;

err_detach:
	list_for_each_entry_continue_reverse(group, &container->group_list,
					     container_next)
		driver->ops->detach_group(data, group->iommu_group);
	return ret;
}

/*
 * VFIO_SET_IOMMU: @arg names the IOMMU model, with the same values as
 * VFIO_CHECK_EXTENSION.  The first allowed backend that claims the model and
 * opens and attaches all groups becomes the container's backend, and keeps a
 * reference on its module until the last group is detached.
 *
 * Opening /dev/vfio/vfio needs no privilege, so a backend (which may consume
 * IOMMU resources) can only be set once the user has proven access to a
 * group by adding it.  Once set, it cannot be changed; removing every group
 * unsets it.
 */
static long vfio_ioctl_set_iommu(struct vfio_container *container,
				 unsigned long arg)
{
	struct vfio_iommu_driver *driver;
	long ret = -ENODEV;

	down_write(&container->group_lock);

	if (list_empty(&container->group_list) || container->iommu_driver) {
		ret = -EINVAL;
		goto out_unlock;
	}

	mutex_lock(&vfio.iommu_drivers_lock);
	list_for_each_entry(driver, &vfio.iommu_drivers_list, vfio_next) {
		void *data;

		if (!vfio_iommu_driver_allowed(container, driver))
			continue;
		if (!try_module_get(driver->ops->owner))
			continue;

		/* Only a backend that supports model @arg is opened with it. */
		if (driver->ops->ioctl(NULL, VFIO_CHECK_EXTENSION, arg) <= 0) {
			module_put(driver->ops->owner);
			continue;
		}

		data = driver->ops->open(arg);
		if (IS_ERR(data)) {
			ret = PTR_ERR(data);
			module_put(driver->ops->owner);
			continue;
		}

		ret = vfio_container_attach_groups(container, driver, data);
		if (ret) {
			driver->ops->release(data);
			module_put(driver->ops->owner);
			continue;
		}

		container->iommu_driver = driver;
		container->iommu_data = data;
		break;
	}
	mutex_unlock(&vfio.iommu_drivers_lock);

out_unlock:
	up_write(&container->group_lock);
	return ret;
}

static long vfio_fops_unl_ioctl(struct file *filep, unsigned int cmd,
				unsigned long arg)
{
	struct vfio_container *container = filep->private_data;
	struct vfio_iommu_driver *driver;

	if (!container)
		return -EINVAL;

	switch (cmd) {
	case VFIO_GET_API_VERSION:
		return VFIO_API_VERSION;
	case VFIO_CHECK_EXTENSION:
		return vfio_container_ioctl_check_extension(container, arg);
	case VFIO_SET_IOMMU:
		return vfio_ioctl_set_iommu(container, arg);
	}

	/* Everything else belongs to the backend, once there is one. */
	driver = container->iommu_driver;
	if (!driver)
		return -EINVAL;

	return driver->ops->ioctl(container->iommu_data, cmd, arg);
}

static int vfio_fops_open(struct inode *inode, struct file *filep)
{
	struct vfio_container *container;

	container = kzalloc(sizeof(*container), GFP_KERNEL_ACCOUNT);
	if (!container)
		return -ENOMEM;

	kref_init(&container->kref);
	INIT_LIST_HEAD(&container->group_list);
	init_rwsem(&container->group_lock);

	filep->private_data = container;
	return 0;
}

static int vfio_fops_release(struct inode *inode, struct file *filep)
{
	struct vfio_container *container = filep->private_data;
	struct vfio_iommu_driver *driver;

	/*
	 * Groups may keep the container and its backend alive after the file
	 * is gone; let the backend know that no new mappings can come.
	 *
	 * Under group_lock: detaching the last group (in another task, through
	 * a group fd) releases the backend and frees iommu_data under it.
	 * Stock 6.1 reads both unlocked, and a container fd closed while the
	 * last group detaches ends in a use-after-free in the backend's
	 * notify() (list corruption, soft lockups: tests/guest/stress.c,
	 * operation closerace).
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
	.owner		= THIS_MODULE,
	.open		= vfio_fops_open,
	.release	= vfio_fops_release,
	.unlocked_ioctl	= vfio_fops_unl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/*
 * Return the container of @file if it is an open /dev/vfio/vfio, else NULL.
 * The caller holds a reference on @file, so ->release() has not run and
 * private_data is still set.
 */
struct vfio_container *vfio_container_from_file(struct file *file)
{
	struct vfio_container *container;

	if (file->f_op != &vfio_fops)
		return NULL;

	container = file->private_data;
	WARN_ON(!container);
	return container;
}

static struct miscdevice vfio_dev = {
	.minor		= VFIO_MINOR,
	.name		= "vfio",
	.fops		= &vfio_fops,
	.nodename	= "vfio/vfio",
	.mode		= 0666,
};

/*
 * Add @group to @container (VFIO_GROUP_SET_CONTAINER).  A VFIO_IOMMU group
 * is claimed for user DMA ownership first, which fails while a kernel driver
 * uses one of its devices.  The group becomes the container's first user and
 * takes a reference on it.
 */
int vfio_container_attach_group(struct vfio_container *container,
				struct vfio_group *group)
{
	bool noiommu = group->type == VFIO_NO_IOMMU;
	struct vfio_iommu_driver *driver;
	int ret;

	lockdep_assert_held(&group->group_lock);

	if (noiommu && !capable(CAP_SYS_RAWIO))
		return -EPERM;

	down_write(&container->group_lock);

	/* Groups with and without an IOMMU never share a container. */
	if (!list_empty(&container->group_list) &&
	    container->noiommu != noiommu) {
		ret = -EPERM;
		goto out_unlock;
	}

	if (group->type == VFIO_IOMMU) {
		ret = iommu_group_claim_dma_owner(group->iommu_group, group);
		if (ret)
			goto out_unlock;
	}

	driver = container->iommu_driver;
	if (driver) {
		ret = driver->ops->attach_group(container->iommu_data,
						group->iommu_group,
						group->type);
		if (ret)
			goto err_release_owner;
	}

	group->container = container;
	group->container_users = 1;
	container->noiommu = noiommu;
	list_add(&group->container_next, &container->group_list);
	vfio_container_get(container);
	up_write(&container->group_lock);
	return 0;

err_release_owner:
	if (group->type == VFIO_IOMMU)
		iommu_group_release_dma_owner(group->iommu_group);
out_unlock:
	up_write(&container->group_lock);
	return ret;
}

/*
 * Remove @group from its container (VFIO_GROUP_UNSET_CONTAINER, close of the
 * group, or removal of its last device).  No device of the group may be open.
 * The last group out takes the backend with it.
 */
void vfio_group_detach_container(struct vfio_group *group)
{
	struct vfio_container *container = group->container;
	struct vfio_iommu_driver *driver;

	lockdep_assert_held(&group->group_lock);
	WARN_ON(group->container_users != 1);

	down_write(&container->group_lock);

	driver = container->iommu_driver;
	if (driver)
		driver->ops->detach_group(container->iommu_data,
					  group->iommu_group);

	if (group->type == VFIO_IOMMU)
		iommu_group_release_dma_owner(group->iommu_group);

	group->container = NULL;
	group->container_users = 0;
	list_del(&group->container_next);

	if (driver && list_empty(&container->group_list)) {
		driver->ops->release(container->iommu_data);
		module_put(driver->ops->owner);
		container->iommu_driver = NULL;
		container->iommu_data = NULL;
	}

	up_write(&container->group_lock);

	vfio_container_put(container);
}

/*
 * Account an opening device as a user of its group's container.  The device
 * can only be opened once the container has a backend.  The device also pins
 * the group file, so the group stays attached while the device is open.
 */
int vfio_device_assign_container(struct vfio_device *device)
{
	struct vfio_group *group = device->group;

	lockdep_assert_held(&group->group_lock);

	if (!group->container || !group->container->iommu_driver ||
	    WARN_ON(!group->container_users))
		return -EINVAL;

	if (group->type == VFIO_NO_IOMMU && !capable(CAP_SYS_RAWIO))
		return -EPERM;

	get_file(group->opened_file);
	group->container_users++;
	return 0;
}

/* Undo vfio_device_assign_container(); called without group->group_lock. */
void vfio_device_unassign_container(struct vfio_device *device)
{
	struct vfio_group *group = device->group;

	mutex_lock(&group->group_lock);
	WARN_ON(group->container_users <= 1);
	group->container_users--;
	fput(group->opened_file);
	mutex_unlock(&group->group_lock);
}

/**
 * vfio_pin_pages - pin user pages by IOVA for an emulated-IOMMU device
 * @device: an open device registered with vfio_register_emulated_iommu_dev()
 * @iova: IOVA of the first page, in the address space of the container
 * @npage: number of contiguous pages, at most VFIO_PIN_PAGES_MAX_ENTRIES
 * @prot: IOMMU_READ and/or IOMMU_WRITE access needed
 * @pages: filled with the @npage pinned host pages
 *
 * Pins the user memory mapped at @iova in the container's backend.  Release
 * with vfio_unpin_pages().
 *
 * Return: the number of pages pinned, or -EINVAL for bad arguments or a
 * device that is not open, -E2BIG if @npage is too large, -ENOTTY if the
 * backend cannot pin, or the backend's error.
 */
int vfio_pin_pages(struct vfio_device *device, dma_addr_t iova,
		   int npage, int prot, struct page **pages)
{
	struct vfio_group *group = device->group;
	struct vfio_container *container;
	struct vfio_iommu_driver *driver;

	if (!pages || !npage || !vfio_assert_device_open(device))
		return -EINVAL;

	if (npage > VFIO_PIN_PAGES_MAX_ENTRIES)
		return -E2BIG;

	/* Stable while @device is open, see the locking notes above. */
	container = group->container;
	driver = container->iommu_driver;
	if (unlikely(!driver || !driver->ops->pin_pages))
		return -ENOTTY;

	return driver->ops->pin_pages(container->iommu_data,
				      group->iommu_group, iova, npage, prot,
				      pages);
}
EXPORT_SYMBOL(vfio_pin_pages);

/**
 * vfio_unpin_pages - unpin pages pinned by vfio_pin_pages()
 * @device: the open device that pinned them
 * @iova: IOVA of the first page
 * @npage: number of contiguous pages, 1 to VFIO_PIN_PAGES_MAX_ENTRIES
 *
 * Bad arguments, or a device that is not open, trigger a warning and are
 * otherwise ignored.
 */
void vfio_unpin_pages(struct vfio_device *device, dma_addr_t iova, int npage)
{
	struct vfio_container *container;
	struct vfio_iommu_driver *driver;

	if (WARN_ON(npage <= 0 || npage > VFIO_PIN_PAGES_MAX_ENTRIES))
		return;

	if (WARN_ON(!vfio_assert_device_open(device)))
		return;

	/* Stable while @device is open, see the locking notes above. */
	container = device->group->container;
	driver = container->iommu_driver;

	driver->ops->unpin_pages(container->iommu_data, iova, npage);
}
EXPORT_SYMBOL(vfio_unpin_pages);

/**
 * vfio_dma_rw - copy between a kernel buffer and user memory by IOVA
 * @device: an open device
 * @iova: IOVA of the user memory, in the address space of the container
 * @data: kernel buffer
 * @len: number of bytes to copy
 * @write: true to copy from @data to the user memory, false the other way
 *
 * Lets a driver emulate DMA of its device with the CPU.  The user memory is
 * accessed through the container's mappings without being pinned.
 *
 * Return: 0 on success, -EINVAL for bad arguments or a device that is not
 * open, -ENOTTY if the backend cannot do it, or the backend's error.
 */
int vfio_dma_rw(struct vfio_device *device, dma_addr_t iova, void *data,
		size_t len, bool write)
{
	struct vfio_container *container;
	struct vfio_iommu_driver *driver;

	if (!data || !len || !vfio_assert_device_open(device))
		return -EINVAL;

	/* Stable while @device is open, see the locking notes above. */
	container = device->group->container;
	driver = container->iommu_driver;
	if (unlikely(!driver || !driver->ops->dma_rw))
		return -ENOTTY;

	return driver->ops->dma_rw(container->iommu_data, iova, data, len,
				   write);
}
EXPORT_SYMBOL(vfio_dma_rw);

int __init vfio_container_init(void)
{
	int ret;

	mutex_init(&vfio.iommu_drivers_lock);
	INIT_LIST_HEAD(&vfio.iommu_drivers_list);

	ret = misc_register(&vfio_dev);
	if (ret) {
		pr_err("vfio: misc device register failed\n");
		return ret;
	}

	if (IS_ENABLED(CONFIG_VFIO_NOIOMMU)) {
		ret = vfio_register_iommu_driver(&vfio_noiommu_ops);
		if (ret)
			goto err_deregister;
	}
	return 0;

err_deregister:
	misc_deregister(&vfio_dev);
	return ret;
}

void vfio_container_cleanup(void)
{
	if (IS_ENABLED(CONFIG_VFIO_NOIOMMU))
		vfio_unregister_iommu_driver(&vfio_noiommu_ops);
	misc_deregister(&vfio_dev);
	mutex_destroy(&vfio.iommu_drivers_lock);
}
