// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_test_mdev: a mediated device driver for vfio-core's guest tests.
 *
 * Its open_device() and close_device() take device->kvm->lock the way
 * s390's vfio-ap does, so the lock ordering between the vfio core and KVM
 * can be exercised on any architecture, under TCG.  The device itself does
 * nothing: it has no regions, no interrupts and no ioctls.
 *
 * Knobs (module parameters, writable at run time under
 * /sys/module/vfio_test_mdev/parameters/):
 *   delay_ms  sleep this long in open/close before taking kvm->lock, while
 *             the vfio core holds its own locks around the callback
 *   hold_ms   keep kvm->lock this long in open/close
 *   fail_open make open_device() fail with -EIO after taking kvm->lock
 *   lock_kvm  take kvm->lock at all (off for runs that must not touch a
 *             KVM the vfio core holds no reference to)
 *
 * What the driver saw is in /sys/kernel/debug/vfio_test_mdev/status, one
 * "key value" pair per line.  Each open/close with a VM also leaves the
 * times (ktime_get_ns(), CLOCK_MONOTONIC) when it entered the driver, went
 * for kvm->lock, got it and left, in a ring of the last VTM_RING, which
 * /sys/kernel/debug/vfio_test_mdev/kvm_lock lists, oldest first, as
 * "ENTER WANT GOT EXIT" lines of nanoseconds (writing to it empties it);
 * WANT < GOT by more than an uncontended mutex_lock() means someone else
 * held kvm->lock (kvm_lock_contended counts the times it was seen held on
 * entry).  The deadlock test matches those spans
 * against the releases of KVM VFIO devices it made, to show that the two
 * paths really met around kvm->lock.
 *
 * The parent is a platform device "vfio_test_mdev" with one mdev type, which
 * the mdev core names after the parent's bus: "platform-test".  Create an
 * instance by writing a UUID to its "create" file under
 * /sys/class/mdev_bus/vfio_test_mdev/mdev_supported_types/.
 */

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/kvm_host.h>
#include <linux/mdev.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/vfio.h>

#define VTM_NAME		"vfio_test_mdev"
#define VTM_MAX_INSTANCES	4
#define VTM_RING		4096

static unsigned int delay_ms;
module_param(delay_ms, uint, 0644);
MODULE_PARM_DESC(delay_ms, "sleep in open/close before taking kvm->lock (ms)");

static unsigned int hold_ms;
module_param(hold_ms, uint, 0644);
MODULE_PARM_DESC(hold_ms, "hold kvm->lock this long in open/close (ms)");

static bool fail_open;
module_param(fail_open, bool, 0644);
MODULE_PARM_DESC(fail_open, "make open_device() fail with -EIO");

static bool lock_kvm = true;
module_param(lock_kvm, bool, 0644);
MODULE_PARM_DESC(lock_kvm, "take device->kvm->lock in open/close (default: on)");

struct vtm_device {
	struct vfio_device vdev;
};

/* What the driver observed, for the tests; protected by vtm_stats_lock. */
struct vtm_stats {
	u64 opens;		/* open_device() calls */
	u64 open_failures;	/* of which failed */
	u64 opens_with_kvm;	/* of which had device->kvm set */
	u64 closes;		/* close_device() calls */
	u64 closes_with_kvm;	/* of which had device->kvm set */
	int open_now;		/* devices between open and close */
	bool last_open_kvm;	/* device->kvm was set at the last open */
	unsigned int last_kvm_users; /* kvm->users_count seen at last open */
	int last_error;		/* last error open_device() returned */
	u64 kvm_lock_contended;	/* open/close found kvm->lock held */
};

static DEFINE_SPINLOCK(vtm_stats_lock);
static struct vtm_stats vtm_stats;

/* An open/close with a VM around kvm->lock: when it entered, wanted, got, left. */
struct vtm_span {
	u64 enter;
	u64 want;
	u64 got;
	u64 exit;
};

/* The last VTM_RING spans; protected by vtm_stats_lock. */
static struct vtm_span vtm_spans[VTM_RING];
static unsigned int vtm_spans_next;	/* next slot to write */
static unsigned int vtm_spans_len;	/* valid entries */

static struct platform_device *vtm_pdev;
static struct mdev_parent vtm_parent;
static struct dentry *vtm_debugfs;

static struct mdev_type vtm_type = {
	.sysfs_name = "test",
	.pretty_name = "vfio-core test device",
};

static struct mdev_type *vtm_types[] = {
	&vtm_type,
};

static void vtm_log_span(const struct vtm_span *span, bool contended)
{
	spin_lock(&vtm_stats_lock);
	if (contended)
		vtm_stats.kvm_lock_contended++;
	vtm_spans[vtm_spans_next] = *span;
	vtm_spans_next = (vtm_spans_next + 1) % VTM_RING;
	if (vtm_spans_len < VTM_RING)
		vtm_spans_len++;
	spin_unlock(&vtm_stats_lock);
}

/*
 * Take and drop kvm->lock as a driver that configures its KVM would.
 * Returns kvm->users_count as seen under the lock, 0 without a KVM.
 */
static unsigned int vtm_touch_kvm(struct kvm *kvm)
{
	unsigned int delay = READ_ONCE(delay_ms);
	unsigned int hold = READ_ONCE(hold_ms);
	struct vtm_span span = { .enter = ktime_get_ns() };
	bool contended;
	unsigned int users;

	if (delay)
		msleep(delay);

	if (!kvm || !READ_ONCE(lock_kvm))
		return 0;

	span.want = ktime_get_ns();
	/*
	 * mutex_lock() as vfio-ap does, never a trylock first: lockdep records
	 * no dependency for a lock taken by a trylock, so it would not see the
	 * group_lock -> kvm->lock order. The contention count is a hint only.
	 */
	contended = mutex_is_locked(&kvm->lock);
	mutex_lock(&kvm->lock);
	span.got = ktime_get_ns();
	users = refcount_read(&kvm->users_count);
	if (hold)
		msleep(hold);
	mutex_unlock(&kvm->lock);
	span.exit = ktime_get_ns();
	vtm_log_span(&span, contended);

	return users;
}

static int vtm_open_device(struct vfio_device *vdev)
{
	struct kvm *kvm = vdev->kvm;
	unsigned int users;
	int ret = 0;

	/* Counted on entry: a test may find this call stuck on kvm->lock. */
	spin_lock(&vtm_stats_lock);
	vtm_stats.opens++;
	vtm_stats.last_open_kvm = kvm;
	if (kvm)
		vtm_stats.opens_with_kvm++;
	spin_unlock(&vtm_stats_lock);

	users = vtm_touch_kvm(kvm);
	if (READ_ONCE(fail_open))
		ret = -EIO;

	spin_lock(&vtm_stats_lock);
	vtm_stats.last_kvm_users = users;
	if (ret) {
		vtm_stats.open_failures++;
		vtm_stats.last_error = ret;
	} else {
		vtm_stats.open_now++;
	}
	spin_unlock(&vtm_stats_lock);

	return ret;
}

static void vtm_close_device(struct vfio_device *vdev)
{
	struct kvm *kvm = vdev->kvm;

	spin_lock(&vtm_stats_lock);
	vtm_stats.closes++;
	if (kvm)
		vtm_stats.closes_with_kvm++;
	spin_unlock(&vtm_stats_lock);

	vtm_touch_kvm(kvm);

	spin_lock(&vtm_stats_lock);
	vtm_stats.open_now--;
	spin_unlock(&vtm_stats_lock);
}

static void vtm_release_dev(struct vfio_device *vdev)
{
	vfio_free_device(vdev);
}

static const struct vfio_device_ops vtm_dev_ops = {
	.name = VTM_NAME,
	.open_device = vtm_open_device,
	.close_device = vtm_close_device,
	.release = vtm_release_dev,
};

static int vtm_probe(struct mdev_device *mdev)
{
	struct vtm_device *vtm;
	int ret;

	vtm = vfio_alloc_device(vtm_device, vdev, &mdev->dev, &vtm_dev_ops);
	if (IS_ERR(vtm))
		return PTR_ERR(vtm);

	ret = vfio_register_emulated_iommu_dev(&vtm->vdev);
	if (ret)
		goto err_put;

	dev_set_drvdata(&mdev->dev, vtm);
	return 0;

err_put:
	vfio_put_device(&vtm->vdev);
	return ret;
}

static void vtm_remove(struct mdev_device *mdev)
{
	struct vtm_device *vtm = dev_get_drvdata(&mdev->dev);

	vfio_unregister_group_dev(&vtm->vdev);
	vfio_put_device(&vtm->vdev);
}

static struct mdev_driver vtm_mdev_driver = {
	.device_api = VFIO_DEVICE_API_AP_STRING,
	.max_instances = VTM_MAX_INSTANCES,
	.driver = {
		.name = VTM_NAME,
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.probe = vtm_probe,
	.remove = vtm_remove,
};

static int vtm_status_show(struct seq_file *s, void *unused)
{
	struct vtm_stats st;

	spin_lock(&vtm_stats_lock);
	st = vtm_stats;
	spin_unlock(&vtm_stats_lock);

	seq_printf(s, "opens %llu\n", st.opens);
	seq_printf(s, "open_failures %llu\n", st.open_failures);
	seq_printf(s, "opens_with_kvm %llu\n", st.opens_with_kvm);
	seq_printf(s, "closes %llu\n", st.closes);
	seq_printf(s, "closes_with_kvm %llu\n", st.closes_with_kvm);
	seq_printf(s, "open_now %d\n", st.open_now);
	seq_printf(s, "last_open_kvm %d\n", st.last_open_kvm);
	seq_printf(s, "last_kvm_users %u\n", st.last_kvm_users);
	seq_printf(s, "last_error %d\n", st.last_error);
	seq_printf(s, "kvm_lock_contended %llu\n", st.kvm_lock_contended);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vtm_status);

static int vtm_kvm_lock_show(struct seq_file *s, void *unused)
{
	struct vtm_span *spans;
	unsigned int i, len, first;

	spans = kmalloc_array(VTM_RING, sizeof(*spans), GFP_KERNEL);
	if (!spans)
		return -ENOMEM;
	spin_lock(&vtm_stats_lock);
	len = vtm_spans_len;
	first = (vtm_spans_next + VTM_RING - len) % VTM_RING;
	for (i = 0; i < len; i++)
		spans[i] = vtm_spans[(first + i) % VTM_RING];
	spin_unlock(&vtm_stats_lock);

	for (i = 0; i < len; i++)
		seq_printf(s, "%llu %llu %llu %llu\n", spans[i].enter, spans[i].want,
			   spans[i].got, spans[i].exit);
	kfree(spans);
	return 0;
}

static int vtm_kvm_lock_open(struct inode *inode, struct file *file)
{
	return single_open(file, vtm_kvm_lock_show, inode->i_private);
}

static ssize_t vtm_kvm_lock_write(struct file *file, const char __user *buf,
				  size_t len, loff_t *ppos)
{
	spin_lock(&vtm_stats_lock);
	vtm_spans_len = 0;
	vtm_spans_next = 0;
	spin_unlock(&vtm_stats_lock);
	return len;
}

static const struct file_operations vtm_kvm_lock_fops = {
	.owner = THIS_MODULE,
	.open = vtm_kvm_lock_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.write = vtm_kvm_lock_write,
	.release = single_release,
};

static int __init vtm_init(void)
{
	int ret;

	ret = mdev_register_driver(&vtm_mdev_driver);
	if (ret)
		return ret;

	vtm_pdev = platform_device_register_simple(VTM_NAME, PLATFORM_DEVID_NONE,
						   NULL, 0);
	if (IS_ERR(vtm_pdev)) {
		ret = PTR_ERR(vtm_pdev);
		goto err_driver;
	}

	ret = mdev_register_parent(&vtm_parent, &vtm_pdev->dev,
				   &vtm_mdev_driver, vtm_types,
				   ARRAY_SIZE(vtm_types));
	if (ret)
		goto err_pdev;

	vtm_debugfs = debugfs_create_dir(VTM_NAME, NULL);
	debugfs_create_file("status", 0444, vtm_debugfs, NULL,
			    &vtm_status_fops);
	debugfs_create_file("kvm_lock", 0644, vtm_debugfs, NULL,
			    &vtm_kvm_lock_fops);
	return 0;

err_pdev:
	platform_device_unregister(vtm_pdev);
err_driver:
	mdev_unregister_driver(&vtm_mdev_driver);
	return ret;
}

static void __exit vtm_exit(void)
{
	debugfs_remove_recursive(vtm_debugfs);
	mdev_unregister_parent(&vtm_parent);
	platform_device_unregister(vtm_pdev);
	mdev_unregister_driver(&vtm_mdev_driver);
}

module_init(vtm_init);
module_exit(vtm_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vfio mdev test driver taking kvm->lock in open/close");
