/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vfio-core: private interfaces between the files of vfio.ko
 *
 * The type definitions in this header are reached by genksyms from the
 * exported symbols (struct vfio_device points to struct vfio_group, and
 * vfio_register_iommu_driver() takes struct vfio_iommu_driver_ops).  Their
 * members, names and order must stay exactly those of the target kernel's
 * drivers/vfio/vfio.h, or the export CRCs stop matching the kernel's
 * Module.symvers and the distro's vfio modules refuse to load.
 */
#ifndef __VFIO_CORE_VFIO_H__
#define __VFIO_CORE_VFIO_H__

#include <linux/device.h>
#include <linux/cdev.h>
#include <linux/module.h>

struct iommu_group;
struct kvm;
struct vfio_device;
struct vfio_container;

/* How the devices of a vfio_group reach memory. */
enum vfio_group_type {
	/* A physical device translated by a real IOMMU. */
	VFIO_IOMMU,

	/*
	 * A mediated device whose DMA goes through its parent driver; vfio
	 * creates a private iommu_group for it because userspace finds groups
	 * in sysfs.
	 */
	VFIO_EMULATED_IOMMU,

	/*
	 * A physical device without any IOMMU (CONFIG_VFIO_NOIOMMU only): the
	 * user can DMA anywhere, so it needs CAP_SYS_RAWIO and taints.
	 */
	VFIO_NO_IOMMU,
};

/*
 * One per iommu_group with devices bound to vfio drivers; see group.c for
 * what guards which member.  Exactly the distro layout: no member is added,
 * hidden or not (the locks vfio-core adds are module globals).
 */
struct vfio_group {
	struct device			dev;
	struct cdev			cdev;
	/*
	 * Count of registered vfio_devices using this group, plus one while
	 * the group is being created.  iommu_group stays valid while it is
	 * non-zero.
	 */
	refcount_t			drivers;
	unsigned int			container_users;
	struct iommu_group		*iommu_group;
	struct vfio_container		*container;
	struct list_head		device_list;
	struct mutex			device_lock;	/* device_list */
	struct list_head		vfio_next;
	struct list_head		container_next;
	enum vfio_group_type		type;
	/* container, container_users, opened_file: see group.c */
	struct mutex			group_lock;
	struct kvm			*kvm;
	struct file			*opened_file;
	struct blocking_notifier_head	notifier;
};

/* events for the backend driver notify callback */
enum vfio_iommu_notify_type {
	VFIO_IOMMU_CONTAINER_CLOSE = 0,
};

/**
 * struct vfio_iommu_driver_ops - The callbacks of an IOMMU backend
 * @name: the backend's name
 * @owner: its module, held by every container that uses the backend
 * @open: make an instance for the IOMMU model in @arg (VFIO_SET_IOMMU)
 * @release: free an instance, once its container's last group has left
 * @ioctl: VFIO_CHECK_EXTENSION, also without an instance (NULL), and every
 *	   ioctl the container passes through
 * @attach_group: add an iommu_group to an instance
 * @detach_group: take it out again
 * @pin_pages: vfio_pin_pages()
 * @unpin_pages: vfio_unpin_pages()
 * @register_device: a device of an attached group opens for the first time
 * @unregister_device: that device's last close; both or neither are set
 * @dma_rw: vfio_dma_rw()
 * @group_iommu_domain: the iommu_domain of an attached group (the 6.1 core
 *			does not call it)
 * @notify: an event, such as the close of the container file
 *
 * Filled in by the IOMMU backends (vfio_iommu_type1); the layout is part of
 * the ABI between vfio.ko and those modules.
 */
struct vfio_iommu_driver_ops {
	char		*name;
	struct module	*owner;
	void		*(*open)(unsigned long arg);
	void		(*release)(void *iommu_data);
	long		(*ioctl)(void *iommu_data, unsigned int cmd,
				 unsigned long arg);
	int		(*attach_group)(void *iommu_data,
					struct iommu_group *group,
					enum vfio_group_type);
	void		(*detach_group)(void *iommu_data,
					struct iommu_group *group);
	int		(*pin_pages)(void *iommu_data,
				     struct iommu_group *group,
				     dma_addr_t user_iova,
				     int npage, int prot,
				     struct page **pages);
	void		(*unpin_pages)(void *iommu_data,
				       dma_addr_t user_iova, int npage);
	void		(*register_device)(void *iommu_data,
					   struct vfio_device *vdev);
	void		(*unregister_device)(void *iommu_data,
					     struct vfio_device *vdev);
	int		(*dma_rw)(void *iommu_data, dma_addr_t user_iova,
				  void *data, size_t count, bool write);
	struct iommu_domain *(*group_iommu_domain)(void *iommu_data,
						   struct iommu_group *group);
	void		(*notify)(void *iommu_data,
				  enum vfio_iommu_notify_type event);
};

/* A registered backend, on the list of container.c */
struct vfio_iommu_driver {
	const struct vfio_iommu_driver_ops	*ops;
	struct list_head			vfio_next;
};

/* container.c: containers, IOMMU backends, and a group's place in both */
int vfio_register_iommu_driver(const struct vfio_iommu_driver_ops *ops);
void vfio_unregister_iommu_driver(const struct vfio_iommu_driver_ops *ops);
int __init vfio_container_init(void);
void vfio_container_cleanup(void);
struct vfio_container *vfio_container_from_file(struct file *filep);
int vfio_container_attach_group(struct vfio_container *container,
				struct vfio_group *group);
void vfio_group_detach_container(struct vfio_group *group);
int vfio_group_use_container(struct vfio_group *group);
void vfio_group_unuse_container(struct vfio_group *group);
void vfio_device_container_register(struct vfio_device *device);
void vfio_device_container_unregister(struct vfio_device *device);
bool vfio_group_enforced_coherent(struct vfio_group *group);

/* vfio_main.c */
bool vfio_assert_device_open(struct vfio_device *device);
bool vfio_device_try_get_registration(struct vfio_device *device);
void vfio_device_put_registration(struct vfio_device *device);
struct file *vfio_device_alloc_file(struct vfio_device *device);

/* group.c: groups, the group file and opening a device through it */
int vfio_device_set_group(struct vfio_device *device,
			  enum vfio_group_type type);
void vfio_device_remove_group(struct vfio_device *device);
void vfio_device_group_register(struct vfio_device *device);
void vfio_device_group_unregister(struct vfio_device *device);
void vfio_device_group_close(struct vfio_device *device);
int __init vfio_group_init(void);
void vfio_group_cleanup(void);

/* kvm.c: the VM a group is linked to, and the reference a device holds */
#ifdef CONFIG_HAVE_KVM
void vfio_group_set_kvm(struct vfio_group *group, struct kvm *kvm);
void vfio_device_ref_kvm(struct vfio_device *device);
void vfio_device_unref_kvm(struct vfio_device *device);
#else
static inline void vfio_group_set_kvm(struct vfio_group *group,
				      struct kvm *kvm)
{
}

static inline void vfio_device_ref_kvm(struct vfio_device *device)
{
}

static inline void vfio_device_unref_kvm(struct vfio_device *device)
{
}
#endif

#ifdef CONFIG_VFIO_NOIOMMU
extern bool vfio_noiommu __read_mostly;
#else
enum { vfio_noiommu = false };
#endif

#endif /* __VFIO_CORE_VFIO_H__ */
