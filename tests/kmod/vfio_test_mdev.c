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
 *   features  what an instance created from now on implements of the
 *             core's VFIO_DEVICE_FEATUREs (tests/guest/conf_feature.c):
 *             bit 0 migration (mig_ops, VFIO_MIGRATION_STOP_COPY), bit 1
 *             with VFIO_MIGRATION_P2P, bit 2 DMA logging (log_ops)
 *   mig_error, mig_get_error, log_error  a negative errno for
 *             migration_set_state(), migration_get_state() and every log
 *             op to fail with (0: succeed)
 *   log_page_size  if not 0, log_start() reports this page size back
 *   dirty_step  log_read_and_clear() marks one byte of IOVA every
 *             dirty_step bytes of the range it is given (0: all of it)
 *
 * What the driver saw is in /sys/kernel/debug/vfio_test_mdev/status, one
 * "key value" pair per line; what the feature ops saw is in .../features
 * the same way (mig_arcs: the arcs the last migration_set_state() took, as
 * "FROM>TO" state numbers).  Each open/close with a VM also leaves the
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

#include <linux/anon_inodes.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/interval_tree.h>
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

static unsigned int features;
module_param(features, uint, 0644);
MODULE_PARM_DESC(features, "new instances: 1 migration, 2 with P2P, 4 DMA logging");

static int mig_error;
module_param(mig_error, int, 0644);
MODULE_PARM_DESC(mig_error, "errno for migration_set_state() to fail with");

static int mig_get_error;
module_param(mig_get_error, int, 0644);
MODULE_PARM_DESC(mig_get_error, "errno for migration_get_state() to fail with");

static int log_error;
module_param(log_error, int, 0644);
MODULE_PARM_DESC(log_error, "errno for the DMA logging ops to fail with");

static unsigned long log_page_size;
module_param(log_page_size, ulong, 0644);
MODULE_PARM_DESC(log_page_size, "page size log_start() reports back (0: as asked)");

static unsigned long dirty_step;
module_param(dirty_step, ulong, 0644);
MODULE_PARM_DESC(dirty_step, "mark one byte every dirty_step bytes of IOVA (0: all)");

struct vtm_device {
	struct vfio_device vdev;
	enum vfio_device_mig_state mig_state;	/* under vtm_feat_lock */
};

/* What the feature ops saw, for the tests; protected by vtm_feat_lock. */
struct vtm_feat {
	char arcs[128];
	int mig_state;
	u64 log_starts, log_stops, log_reads;
	u64 log_nnodes, log_nodes, log_node_sum, log_min_start, log_max_last;
	u64 log_page_size;
	bool logging;
	u64 read_first_iova, read_first_length, read_last_iova, read_last_length;
};

static DEFINE_MUTEX(vtm_feat_lock);
static struct vtm_feat vtm_feat;

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
	struct vtm_device *vtm = container_of(vdev, struct vtm_device, vdev);
	struct kvm *kvm = vdev->kvm;
	unsigned int users;
	int ret = 0;

	/* A device starts RUNNING, as far as migration goes */
	mutex_lock(&vtm_feat_lock);
	vtm->mig_state = VFIO_DEVICE_STATE_RUNNING;
	vtm_feat.mig_state = vtm->mig_state;
	mutex_unlock(&vtm_feat_lock);

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

static const struct file_operations vtm_mig_fops = {
	.owner = THIS_MODULE,
};

/* Step through the arcs vfio_mig_get_next_state() gives, as drivers do. */
static struct file *vtm_mig_set_state(struct vfio_device *vdev,
				      enum vfio_device_mig_state new)
{
	struct vtm_device *vtm = container_of(vdev, struct vtm_device, vdev);
	enum vfio_device_mig_state next;
	struct file *filp = NULL;
	int err = READ_ONCE(mig_error);
	int ret, steps = 0;
	size_t len;

	if (err)
		return ERR_PTR(err);

	mutex_lock(&vtm_feat_lock);
	vtm_feat.arcs[0] = '\0';
	while (vtm->mig_state != new && !IS_ERR(filp)) {
		ret = vfio_mig_get_next_state(vdev, vtm->mig_state, new, &next);
		if (ret || ++steps > 8) {
			filp = ERR_PTR(ret ? ret : -ELOOP);
			break;
		}
		len = strlen(vtm_feat.arcs);
		snprintf(vtm_feat.arcs + len, sizeof(vtm_feat.arcs) - len, "%s%u>%u",
			 len ? "," : "", vtm->mig_state, next);
		vtm->mig_state = next;
		/* Entering a data transfer state gives its data file */
		if (next == new && (new == VFIO_DEVICE_STATE_STOP_COPY ||
				    new == VFIO_DEVICE_STATE_RESUMING))
			filp = anon_inode_getfile("[vtm-migration]", &vtm_mig_fops,
						  NULL, O_RDWR);
	}
	vtm_feat.mig_state = vtm->mig_state;
	mutex_unlock(&vtm_feat_lock);
	return filp;
}

static int vtm_mig_get_state(struct vfio_device *vdev,
			     enum vfio_device_mig_state *state)
{
	struct vtm_device *vtm = container_of(vdev, struct vtm_device, vdev);
	int err = READ_ONCE(mig_get_error);

	if (err)
		return err;
	mutex_lock(&vtm_feat_lock);
	*state = vtm->mig_state;
	mutex_unlock(&vtm_feat_lock);
	return 0;
}

static const struct vfio_migration_ops vtm_mig_ops = {
	.migration_set_state = vtm_mig_set_state,
	.migration_get_state = vtm_mig_get_state,
};

static int vtm_log_start(struct vfio_device *vdev, struct rb_root_cached *ranges,
			 u32 nnodes, u64 *page_size)
{
	struct interval_tree_node *node;
	int err = READ_ONCE(log_error);

	mutex_lock(&vtm_feat_lock);
	vtm_feat.log_starts++;
	vtm_feat.log_nnodes = nnodes;
	vtm_feat.log_page_size = *page_size;
	vtm_feat.log_nodes = 0;
	vtm_feat.log_node_sum = 0;
	vtm_feat.log_min_start = ULONG_MAX;
	vtm_feat.log_max_last = 0;
	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX); node;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX)) {
		vtm_feat.log_nodes++;
		vtm_feat.log_node_sum += node->start + node->last;
		vtm_feat.log_min_start = min_t(u64, vtm_feat.log_min_start, node->start);
		vtm_feat.log_max_last = max_t(u64, vtm_feat.log_max_last, node->last);
	}
	if (!err) {
		vtm_feat.logging = true;
		if (READ_ONCE(log_page_size))
			*page_size = READ_ONCE(log_page_size);
	}
	mutex_unlock(&vtm_feat_lock);
	return err;
}

static int vtm_log_stop(struct vfio_device *vdev)
{
	mutex_lock(&vtm_feat_lock);
	vtm_feat.log_stops++;
	vtm_feat.logging = false;
	mutex_unlock(&vtm_feat_lock);
	return READ_ONCE(log_error);
}

static int vtm_log_read_and_clear(struct vfio_device *vdev, unsigned long iova,
				  unsigned long length, struct iova_bitmap *dirty)
{
	unsigned long step = READ_ONCE(dirty_step), off;

	mutex_lock(&vtm_feat_lock);
	if (!vtm_feat.log_reads++) {
		vtm_feat.read_first_iova = iova;
		vtm_feat.read_first_length = length;
	}
	vtm_feat.read_last_iova = iova;
	vtm_feat.read_last_length = length;
	mutex_unlock(&vtm_feat_lock);

	if (READ_ONCE(log_error))
		return READ_ONCE(log_error);
	if (!step) {
		iova_bitmap_set(dirty, iova, length);
		return 0;
	}
	for (off = 0; off < length; off += step) {
		iova_bitmap_set(dirty, iova + off, 1);
		cond_resched();
	}
	return 0;
}

static const struct vfio_log_ops vtm_log_ops = {
	.log_start = vtm_log_start,
	.log_stop = vtm_log_stop,
	.log_read_and_clear = vtm_log_read_and_clear,
};

static const struct vfio_device_ops vtm_dev_ops = {
	.name = VTM_NAME,
	.open_device = vtm_open_device,
	.close_device = vtm_close_device,
	.release = vtm_release_dev,
};

static int vtm_probe(struct mdev_device *mdev)
{
	unsigned int f = READ_ONCE(features);
	struct vtm_device *vtm;
	int ret;

	vtm = vfio_alloc_device(vtm_device, vdev, &mdev->dev, &vtm_dev_ops);
	if (IS_ERR(vtm))
		return PTR_ERR(vtm);

	/* mig_ops and log_ops are fixed before registration */
	if (f & 1) {
		vtm->vdev.mig_ops = &vtm_mig_ops;
		vtm->vdev.migration_flags = VFIO_MIGRATION_STOP_COPY;
		if (f & 2)
			vtm->vdev.migration_flags |= VFIO_MIGRATION_P2P;
	}
	if (f & 4)
		vtm->vdev.log_ops = &vtm_log_ops;

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

static int vtm_features_show(struct seq_file *s, void *unused)
{
	struct vtm_feat f;

	mutex_lock(&vtm_feat_lock);
	f = vtm_feat;
	mutex_unlock(&vtm_feat_lock);

	seq_printf(s, "mig_state %d\n", f.mig_state);
	seq_printf(s, "mig_arcs %s\n", f.arcs[0] ? f.arcs : "-");
	seq_printf(s, "log_starts %llu\n", f.log_starts);
	seq_printf(s, "log_stops %llu\n", f.log_stops);
	seq_printf(s, "log_reads %llu\n", f.log_reads);
	seq_printf(s, "logging %d\n", f.logging);
	seq_printf(s, "log_nnodes %llu\n", f.log_nnodes);
	seq_printf(s, "log_nodes %llu\n", f.log_nodes);
	seq_printf(s, "log_node_sum %llu\n", f.log_node_sum);
	seq_printf(s, "log_min_start %llu\n", f.log_min_start);
	seq_printf(s, "log_max_last %llu\n", f.log_max_last);
	seq_printf(s, "log_page_size %llu\n", f.log_page_size);
	seq_printf(s, "read_first_iova %llu\n", f.read_first_iova);
	seq_printf(s, "read_first_length %llu\n", f.read_first_length);
	seq_printf(s, "read_last_iova %llu\n", f.read_last_iova);
	seq_printf(s, "read_last_length %llu\n", f.read_last_length);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vtm_features);

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
	debugfs_create_file("features", 0444, vtm_debugfs, NULL,
			    &vtm_features_fops);
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
