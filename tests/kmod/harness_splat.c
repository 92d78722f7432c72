// SPDX-License-Identifier: GPL-2.0-only
/*
 * harness_splat: kernel reports on demand, for the test harness's own
 * self-tests (tests/guest/selftest_*), which check that a boot with such a
 * report fails, and for the right reason.
 *
 * Write one command to /sys/kernel/debug/harness_splat/trigger:
 *   warn           a WARN() in the writer's context
 *   warn-later MS  a WARN() from a delayed work item MS milliseconds later:
 *                  a report that comes after the test that caused it ended
 *   hang S         the writer sleeps S seconds uninterruptibly: a hung-task
 *                  report once kernel.hung_task_timeout_secs is below S
 *   leak           64 bytes allocated and forgotten, for kmemleak
 *   lockdep        two mutexes taken in one order, then in the other (one
 *                  task, no deadlock): lockdep's circular-dependency report
 *   kasan          a read of 64 freed bytes: KASAN's use-after-free report
 *   ubsan          a shift by more than the type's width: UBSAN's report
 * The last three fail with EOPNOTSUPP on a kernel without that checker.
 */

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

static struct dentry *hs_dir;
static DEFINE_MUTEX(hs_lock_a);
static DEFINE_MUTEX(hs_lock_b);

static void hs_warn_fn(struct work_struct *work)
{
	WARN(1, "harness_splat: a WARN from a delayed work item, as asked\n");
}

static DECLARE_DELAYED_WORK(hs_warn_work, hs_warn_fn);

/* A before B, then B before A: an inversion lockdep reports. */
static void hs_lock_inversion(void)
{
	mutex_lock(&hs_lock_a);
	mutex_lock(&hs_lock_b);
	mutex_unlock(&hs_lock_b);
	mutex_unlock(&hs_lock_a);

	mutex_lock(&hs_lock_b);
	mutex_lock(&hs_lock_a);
	mutex_unlock(&hs_lock_a);
	mutex_unlock(&hs_lock_b);
}

static int hs_use_after_free(void)
{
	char *p = kmalloc(64, GFP_KERNEL);
	char c;

	if (!p)
		return -ENOMEM;
	kfree(p);
	c = READ_ONCE(p[8]);
	pr_info("harness_splat: read %d from freed memory, as asked\n", c);
	return 0;
}

static void hs_bad_shift(unsigned int width)
{
	OPTIMIZER_HIDE_VAR(width);
	pr_info("harness_splat: 1 << %u is %u, as asked\n", width, 1U << width);
}

static ssize_t hs_trigger_write(struct file *file, const char __user *ubuf,
				size_t len, loff_t *ppos)
{
	char buf[32], *arg;
	unsigned int n = 0;
	void *leak;
	int ret;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	strim(buf);
	arg = strchr(buf, ' ');
	if (arg) {
		*arg++ = '\0';
		if (kstrtouint(arg, 10, &n))
			return -EINVAL;
	}

	if (!strcmp(buf, "warn")) {
		WARN(1, "harness_splat: a WARN, as asked\n");
	} else if (!strcmp(buf, "warn-later") && arg) {
		schedule_delayed_work(&hs_warn_work, msecs_to_jiffies(n));
	} else if (!strcmp(buf, "hang") && arg) {
		msleep(n * 1000);
	} else if (!strcmp(buf, "lockdep") && !arg) {
		if (!IS_ENABLED(CONFIG_PROVE_LOCKING))
			return -EOPNOTSUPP;
		hs_lock_inversion();
	} else if (!strcmp(buf, "kasan") && !arg) {
		if (!IS_ENABLED(CONFIG_KASAN))
			return -EOPNOTSUPP;
		ret = hs_use_after_free();
		if (ret)
			return ret;
	} else if (!strcmp(buf, "ubsan") && !arg) {
		if (!IS_ENABLED(CONFIG_UBSAN_SHIFT))
			return -EOPNOTSUPP;
		hs_bad_shift(40);
	} else if (!strcmp(buf, "leak") && !arg) {
		leak = kmalloc(64, GFP_KERNEL);
		if (!leak)
			return -ENOMEM;
		pr_info("harness_splat: leaked 64 bytes at %p, as asked\n", leak);
	} else {
		return -EINVAL;
	}
	return len;
}

static const struct file_operations hs_trigger_fops = {
	.owner = THIS_MODULE,
	.write = hs_trigger_write,
	.llseek = noop_llseek,
};

static int __init hs_init(void)
{
	hs_dir = debugfs_create_dir("harness_splat", NULL);
	debugfs_create_file("trigger", 0200, hs_dir, NULL, &hs_trigger_fops);
	return 0;
}

static void __exit hs_exit(void)
{
	debugfs_remove_recursive(hs_dir);
	cancel_delayed_work_sync(&hs_warn_work);
}

module_init(hs_init);
module_exit(hs_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kernel reports on demand for the test harness's self-tests");
