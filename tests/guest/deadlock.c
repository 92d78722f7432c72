// SPDX-License-Identifier: GPL-2.0-only
/*
 * deadlock: the kvm->lock / group_lock ABBA between KVM and the vfio core.
 *
 * Two threads of a child process race:
 *   opener   VFIO_GROUP_GET_DEVICE_FD + close() on a vfio_test_mdev device,
 *            whose open_device()/close_device() take kvm->lock; stock 6.1
 *            calls them with the group's group_lock held.
 *   releaser KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO), KVM_DEV_VFIO_GROUP_ADD,
 *            close(); the close runs kvm_device_release(), which calls
 *            vfio_file_set_kvm(NULL) with kvm->lock held, and stock 6.1
 *            takes group_lock in there.
 * kvm_device_release() runs when the KVM device's file is released: on the
 * last close of its fd (the fd holds a VM reference, so this always comes
 * before the VM's destruction, never from it).
 *
 * The parent is a watchdog: no progress for DEADLOCK_STALL seconds is a
 * hang; it then prints both threads' kernel stacks and waits for the kernel's
 * hung-task report. VFIO_MODE says which outcome is expected:
 *   stock  the deadlock, within DEADLOCK_TIMEOUT seconds; the run ends with
 *          the tasks stuck, the harness powers the guest off. The kernel's
 *          hung-task report is expected ("# expect-splat: hung-task").
 *   ours   DEADLOCK_ITERS rounds of each thread, no hang, no hung-task
 *          report; every DEADLOCK_VM_CYCLE rounds the releaser also closes
 *          its VM and creates a new one (stock keeps one VM: its vfio holds
 *          no VM reference, and the test driver would touch a freed VM).
 *          And the race must have happened: at least DEADLOCK_MIN_RACED
 *          releases of a KVM VFIO device ran while an open or close of
 *          the device was in the driver, inside vfio's locks, on its way
 *          to, waiting for or holding the VM's kvm->lock (stock's deadlock
 *          window), through at least DEADLOCK_MIN_VMS VMs.
 * How a raced release is seen: the releaser notes the CLOCK_MONOTONIC time
 * before and after each close() of a KVM VFIO device fd (that close() is
 * the release: kvm_device_release()), and the test driver keeps, for each
 * open/close with a VM, when it entered, went for kvm->lock, got it and
 * left (its debugfs "kvm_lock"); a release whose interval meets such a
 * span ran while that open or close held vfio's locks around its
 * kvm->lock. Also counted, and printed: the releases that met the part of
 * a span where the driver waited for or held kvm->lock, and how often the
 * driver found kvm->lock held by someone else (its mutex_trylock()
 * failed): rare on ours, whose release holds kvm->lock for microseconds,
 * since it no longer waits for vfio's group_lock under it.
 * Knobs (environment): DEADLOCK_ITERS (1000), DEADLOCK_TIMEOUT (240),
 * DEADLOCK_STALL (10), DEADLOCK_DELAY_MS (1), DEADLOCK_HOLD_MS (1),
 * DEADLOCK_VM_CYCLE (8, ours only), DEADLOCK_MIN_RACED (300),
 * DEADLOCK_MIN_VMS (100), DEADLOCK_LINK_US (2000: how long each KVM VFIO
 * device keeps the group linked before its release).
 *
 * Output is TAP on stdout.
 */
#include "tap.h"
#include "rnd.h"
#include <pthread.h>
#include <stdbool.h>
#include <sys/klog.h>
#include <sys/syscall.h>
#include <linux/kvm.h>

#define MDEV_UUID	"5a1d0ec7-0000-4000-8000-00000000dead"
#define HUNG_TIMEOUT	5
#define NTESTS_STOCK	6
#define NTESTS_OURS	8
#define MAX_RELEASES	(1 << 16)
#define VTM_KVM_LOCK	"/sys/kernel/debug/vfio_test_mdev/kvm_lock"

struct shared {
	uint64_t opens;		/* opener rounds */
	uint64_t releases;	/* releaser rounds */
	uint64_t vms;		/* VMs created */
	int tid_opener;
	int tid_releaser;
	int ready;		/* child set up, first round done */
	int stop;
	int failed;		/* a worker hit an error (not a hang) */
	char err[256];
};

/* A release of a KVM VFIO device: close() entered and returned (0: not yet). */
struct interval {
	uint64_t start;
	uint64_t end;
};

static struct shared *sh;
static struct interval *rel;	/* shared: the releases, in order */
static bool ours;
static int group;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void worker_fail(const char *what)
{
	snprintf(sh->err, sizeof(sh->err), "%s: %s", what, strerror(errno));
	__atomic_store_n(&sh->failed, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
}

static bool stopping(void)
{
	return __atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST);
}

struct releaser_args {
	int kvm_fd;
	int group_fd;
	long vm_cycle;
	long link_us;
};

/* Round n: a KVM VFIO device that knows the group, closed again. */
static int kvm_vfio_round(int vm_fd, int group_fd, long link_us, uint64_t n)
{
	struct interval *iv = n < MAX_RELEASES ? &rel[n] : NULL;
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_GROUP,
		.attr = KVM_DEV_VFIO_GROUP_ADD,
		.addr = (uint64_t)(uintptr_t)&group_fd,
	};

	if (ioctl(vm_fd, KVM_CREATE_DEVICE, &cd)) {
		worker_fail("KVM_CREATE_DEVICE");
		return -1;
	}
	if (ioctl(cd.fd, KVM_SET_DEVICE_ATTR, &attr)) {
		worker_fail("KVM_DEV_VFIO_GROUP_ADD");
		close(cd.fd);
		return -1;
	}
	/*
	 * The group stays linked for a while, as a VM's groups are for its
	 * whole life, so that the opener's opens find the VM and take its
	 * kvm->lock while this release comes.  Without it the link lasts
	 * microseconds and the race depends on the core's timing: the
	 * opener saw a VM in 1 to 8 of 1000 opens on some runs.
	 */
	if (link_us)
		usleep(link_us);
	/* kvm_device_release(): kvm->lock, then vfio_file_set_kvm(NULL) */
	if (iv)
		iv->start = mono_ns();
	close(cd.fd);
	if (iv)
		iv->end = mono_ns();
	return 0;
}

static void *releaser(void *p)
{
	struct releaser_args *a = p;
	uint64_t n = 0;
	int vm_fd = -1;

	__atomic_store_n(&sh->tid_releaser, (int)syscall(SYS_gettid),
			 __ATOMIC_SEQ_CST);
	while (!stopping()) {
		if (vm_fd < 0) {
			vm_fd = ioctl(a->kvm_fd, KVM_CREATE_VM, 0);
			if (vm_fd < 0) {
				worker_fail("KVM_CREATE_VM");
				break;
			}
			__atomic_add_fetch(&sh->vms, 1, __ATOMIC_SEQ_CST);
		}
		if (kvm_vfio_round(vm_fd, a->group_fd, a->link_us,
				   __atomic_load_n(&sh->releases, __ATOMIC_SEQ_CST)))
			break;
		__atomic_add_fetch(&sh->releases, 1, __ATOMIC_SEQ_CST);
		if (a->vm_cycle && ++n % a->vm_cycle == 0) {
			close(vm_fd);
			vm_fd = -1;
		}
	}
	if (vm_fd >= 0)
		close(vm_fd);
	return NULL;
}

static void child(long vm_cycle, long link_us)
{
	struct releaser_args ra = { .vm_cycle = vm_cycle, .link_us = link_us };
	const char *what;
	pthread_t thr;
	int container, fd;

	if (group_attach(group, &container, &ra.group_fd, &what)) {
		worker_fail(what);
		_exit(1);
	}
	ra.kvm_fd = open("/dev/kvm", O_RDWR);
	if (ra.kvm_fd < 0) {
		worker_fail("open /dev/kvm");
		_exit(1);
	}
	/*
	 * A VM that lives as long as the child: with it, the VMs the releaser
	 * cycles through are never KVM's last, so KVM does not switch
	 * virtualization off and on again each time, which hangs guests
	 * under QEMU's TCG after a few dozen rounds (even without vfio).
	 */
	if (ioctl(ra.kvm_fd, KVM_CREATE_VM, 0) < 0) {
		worker_fail("KVM_CREATE_VM");
		_exit(1);
	}
	/* A first round of each, unraced, to catch setup errors. */
	fd = ioctl(ra.group_fd, VFIO_GROUP_GET_DEVICE_FD, MDEV_UUID);
	if (fd < 0) {
		worker_fail("VFIO_GROUP_GET_DEVICE_FD");
		_exit(1);
	}
	close(fd);
	__atomic_store_n(&sh->tid_opener, (int)syscall(SYS_gettid),
			 __ATOMIC_SEQ_CST);
	__atomic_store_n(&sh->ready, 1, __ATOMIC_SEQ_CST);

	if (pthread_create(&thr, NULL, releaser, &ra)) {
		worker_fail("pthread_create");
		_exit(1);
	}
	while (!stopping()) {
		fd = ioctl(ra.group_fd, VFIO_GROUP_GET_DEVICE_FD, MDEV_UUID);
		if (fd < 0) {
			worker_fail("VFIO_GROUP_GET_DEVICE_FD");
			break;
		}
		close(fd);
		__atomic_add_fetch(&sh->opens, 1, __ATOMIC_SEQ_CST);
	}
	pthread_join(thr, NULL);
	_exit(0);
}

/* The kernel log; the caller frees it. */
static char *kernel_log(void)
{
	int len = klogctl(10, NULL, 0);	/* SYSLOG_ACTION_SIZE_BUFFER */
	char *buf;

	if (len <= 0)
		len = 1 << 20;
	buf = calloc(1, len + 1);
	if (!buf)
		return NULL;
	len = klogctl(3, buf, len);	/* SYSLOG_ACTION_READ_ALL */
	if (len < 0)
		len = 0;
	buf[len] = '\0';
	return buf;
}

/* Prints text line by line as diagnostics, prefix before each, at most max. */
static void diag_lines(const char *prefix, const char *text, int max)
{
	const char *nl;

	for (; *text && max > 0; max--) {
		nl = strchr(text, '\n');
		diag("%s%.*s", prefix, nl ? (int)(nl - text) : (int)strlen(text), text);
		if (!nl)
			break;
		text = nl + 1;
	}
}

/* Prints up to max_lines lines of the kernel log from the first report. */
static bool hung_task_report(int max_lines)
{
	char *log = kernel_log(), *p;

	if (!log)
		return false;
	p = strstr(log, "blocked for more than");
	if (!p) {
		free(log);
		return false;
	}
	while (p > log && p[-1] != '\n')
		p--;
	diag_lines("dmesg: ", p, max_lines);
	free(log);
	return true;
}

/* Prints a task's state and kernel stack; returns its state letter. */
static char dump_task(pid_t pid, int tid, const char *role, char *stack,
		      size_t len)
{
	char path[96], buf[512], *s;
	char state = '?';

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	if (!read_file(path, buf, sizeof(buf))) {
		s = strrchr(buf, ')');
		if (s && s[1] == ' ')
			state = s[2];
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", pid, tid);
	if (read_file(path, buf, sizeof(buf)))
		buf[0] = '\0';
	diag("%s (tid %d): state %c, wchan %s", role, tid, state, buf);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", pid, tid);
	if (read_file(path, stack, len)) {
		stack[0] = '\0';
		diag("  (no %s)", path);
	}
	diag_lines("  ", stack, INT_MAX);
	return state;
}

/* An open/close of the driver with a VM (its debugfs "kvm_lock"). */
struct span {
	uint64_t enter, want, got, exit;
};

/* The driver's spans, in time order, into *sp; how many, -1 if unreadable. */
static long read_spans(struct span **sp)
{
	size_t cap = 8192, n = 0;
	unsigned long long e, w, g, x;
	char line[128];
	FILE *f;

	*sp = malloc(cap * sizeof(**sp));
	f = fopen(VTM_KVM_LOCK, "r");
	if (!f || !*sp) {
		if (f)
			fclose(f);
		return -1;
	}
	while (n < cap && fgets(line, sizeof(line), f))
		if (sscanf(line, "%llu %llu %llu %llu", &e, &w, &g, &x) == 4)
			(*sp)[n++] = (struct span){ e, w, g, x };
	fclose(f);
	return n;
}

/*
 * Of the first n releases, how many met a span (from its WANT on, with
 * from_want; else from its ENTER) of the driver. Both in time order: one
 * opener, one releaser.
 */
static uint64_t raced_releases(uint64_t n, const struct span *sp, long ns, bool from_want)
{
	uint64_t raced = 0;
	long j = 0;

	for (uint64_t i = 0; i < n && i < MAX_RELEASES; i++) {
		if (!rel[i].end)
			continue;
		while (j < ns && sp[j].exit < rel[i].start)
			j++;
		if (j < ns && (from_want ? sp[j].want : sp[j].enter) <= rel[i].end)
			raced++;
	}
	return raced;
}

int main(void)
{
	long iters = env_long("DEADLOCK_ITERS", 1000);
	long timeout = env_long("DEADLOCK_TIMEOUT", 240);
	long stall = env_long("DEADLOCK_STALL", 10);
	long delay_ms = env_long("DEADLOCK_DELAY_MS", 1);
	long hold_ms = env_long("DEADLOCK_HOLD_MS", 1);
	long vm_cycle = env_long("DEADLOCK_VM_CYCLE", 8);
	long min_raced = env_long("DEADLOCK_MIN_RACED", 300);
	long min_vms = env_long("DEADLOCK_MIN_VMS", 100);
	long link_us = env_long("DEADLOCK_LINK_US", 2000);
	uint64_t raced = 0, raced_lock = 0;
	struct span *sp = NULL;
	long nsp;
	char stack_o[4096], stack_r[4096], v[16];
	uint64_t last_o = 0, last_r = 0, o, r;
	double t0, last_progress, t_ready = 0, t;
	bool hung = false, ready = false, timed_out = false;
	char st_o, st_r;
	pid_t pid;
	int status, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ours = mode_is_ours();
	tap_plan(ours ? NTESTS_OURS : NTESTS_STOCK);
	if (!ours) {
		vm_cycle = 0;
		/* stock's deadlock leaves two tasks blocked for good */
		printf("# expect-splat: hung-task\n");
	}
	diag("mode %s: iters %ld, timeout %lds, stall %lds, delay %ldms, hold %ldms, vm cycle %ld, link %ldus",
	     ours ? "ours" : "stock", iters, timeout, stall, delay_ms, hold_ms,
	     vm_cycle, link_us);

	/* setup */
	snprintf(v, sizeof(v), "%d", HUNG_TIMEOUT);
	if (write_file("/proc/sys/kernel/hung_task_timeout_secs", v))
		bail("cannot set hung_task_timeout_secs");
	mount_debugfs();
	need_module("vfio_iommu_type1");
	need_module("vfio_test_mdev");
	if (!module_loaded("kvm_amd") && !module_loaded("kvm_intel") &&
	    modprobe_q(0, "kvm_amd") && modprobe_q(0, "kvm_intel"))
		bail("neither kvm_amd nor kvm_intel loads");
	vtm_knob("delay_ms", delay_ms);
	vtm_knob("hold_ms", hold_ms);
	vtm_knob("fail_open", 0);
	vtm_knob("lock_kvm", 1);
	if (mdev_create(MDEV_UUID) || (group = mdev_group(MDEV_UUID)) < 0)
		bail("create mdev %s with an IOMMU group", MDEV_UUID);
	if (hung_task_report(0))
		diag("a hung-task report is already in the kernel log");
	if (write_file(VTM_KVM_LOCK, "0"))
		bail("cannot empty %s", VTM_KVM_LOCK);
	ok(true, "setup: modules, knobs, mdev %s in /dev/vfio/%d", MDEV_UUID,
	   group);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	rel = mmap(NULL, MAX_RELEASES * sizeof(*rel), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || rel == MAP_FAILED)
		bail("mmap");
	pid = fork();
	if (pid < 0)
		bail("fork");
	if (!pid)
		child(vm_cycle, link_us);

	/* The watchdog. */
	t0 = now_s();
	last_progress = t0;
	for (;;) {
		usleep(100000);
		t = now_s();
		if (waitpid(pid, &status, WNOHANG) == pid) {
			pid = 0;
			break;
		}
		if (!ready && __atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST)) {
			ready = true;
			t_ready = t;
		}
		o = __atomic_load_n(&sh->opens, __ATOMIC_SEQ_CST);
		r = __atomic_load_n(&sh->releases, __ATOMIC_SEQ_CST);
		if (o != last_o || r != last_r) {
			last_o = o;
			last_r = r;
			last_progress = t;
		}
		if (t - last_progress >= stall) {
			hung = true;
			break;
		}
		if (ours && o >= (uint64_t)iters && r >= (uint64_t)iters)
			__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
		if (!timed_out && t - t0 >= timeout) {
			timed_out = true;
			__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
		}
	}
	o = __atomic_load_n(&sh->opens, __ATOMIC_SEQ_CST);
	r = __atomic_load_n(&sh->releases, __ATOMIC_SEQ_CST);

	/* the race ran */
	if (!ready) {
		ok(false, "race started: %s", sh->err[0] ? sh->err : "child died");
	} else if (sh->failed) {
		ok(false, "race ran: %s", sh->err);
	} else {
		ok(true, "race started: VM, KVM VFIO device, group added, device opened");
	}
	diag("opener %llu rounds, releaser %llu rounds, %llu VMs, %.1fs",
	     (unsigned long long)o, (unsigned long long)r,
	     (unsigned long long)sh->vms,
	     hung ? last_progress - t_ready : now_s() - t_ready);

	/* the outcome: stock deadlocked; ours raced, enough, and did not */
	st_o = st_r = '?';
	if (hung) {
		diag("no progress for %lds; last progress %.1fs after the race started",
		     stall, last_progress - t_ready);
		st_o = dump_task(pid, sh->tid_opener, "opener", stack_o,
				 sizeof(stack_o));
		st_r = dump_task(pid, sh->tid_releaser, "releaser", stack_r,
				 sizeof(stack_r));
	}
	nsp = read_spans(&sp);
	raced = nsp > 0 ? raced_releases(r, sp, nsp, false) : 0;
	raced_lock = nsp > 0 ? raced_releases(r, sp, nsp, true) : 0;
	diag("%llu of %llu releases ran while an open/close with a VM was in the driver (%ld such open/closes kept), %llu of them while it waited for or held kvm->lock; the driver found kvm->lock held %lld times",
	     (unsigned long long)raced, (unsigned long long)r, nsp,
	     (unsigned long long)raced_lock, vtm_stat("kvm_lock_contended"));
	if (hung && r < MAX_RELEASES && rel[r].start && !rel[r].end)
		diag("release %llu entered close() %.1fs before the hang was called and never returned",
		     (unsigned long long)r, (now_s() * 1e9 - rel[r].start) / 1e9);
	if (ours) {
		ok(!hung && !sh->failed && o >= (uint64_t)iters &&
		   r >= (uint64_t)iters,
		   "ours: %llu open/close and %llu KVM VFIO device rounds raced, %s",
		   (unsigned long long)o, (unsigned long long)r,
		   hung ? "HUNG" : timed_out ? "too slow (timeout)" : "no hang");
		ok(!hung && nsp >= 0 && raced >= (uint64_t)min_raced,
		   "ours: %llu KVM VFIO device releases ran while an open/close was in the driver inside vfio's locks, around kvm->lock (at least %ld)",
		   (unsigned long long)raced, min_raced);
		ok(sh->vms >= (uint64_t)min_vms, "ours: through %llu VMs (at least %ld)",
		   (unsigned long long)sh->vms, min_vms);
	} else {
		ok(hung && ready, "stock: deadlock reproduced (expected on stock) after %llu opener / %llu releaser rounds, %.1fs",
		   (unsigned long long)o, (unsigned long long)r,
		   ready ? last_progress - t_ready : 0.0);
		ok(hung && st_o == 'D' && st_r == 'D' &&
		   strstr(stack_r, "kvm_device_release") &&
		   strstr(stack_r, "vfio_file_set_kvm") &&
		   strstr(stack_o, "vtm_"),
		   "stock: ABBA: opener in the driver's open/close waits for kvm->lock, releaser in kvm_device_release waits in vfio_file_set_kvm");
	}

	/* the kvm->lock path ran */
	ok(vtm_stat("opens_with_kvm") > 0,
	   "the driver saw device->kvm: %lld of %lld opens",
	   vtm_stat("opens_with_kvm"), vtm_stat("opens"));

	if (!read_file(VTM_STATUS, stack_o, sizeof(stack_o)))
		diag_lines("vfio_test_mdev: ", stack_o, INT_MAX);

	/* the kernel's hung-task detector */
	if (hung) {
		for (i = 0; i < 4 * HUNG_TIMEOUT + 10; i++) {
			if (hung_task_report(0))
				break;
			sleep(1);
		}
	}
	if (ours) {
		bool rep = hung_task_report(60);

		ok(!rep, "ours: no hung-task report in the kernel log");
	} else {
		ok(hung_task_report(60),
		   "stock: hung-task report (\"blocked for more than\") in the kernel log");
	}

	/* cleanup (ours): stock's deadlocked tasks hold the device for good */
	free(sp);
	if (!ours) {
		if (hung)
			diag("leaving pid %d stuck; the harness powers off", pid);
		return tap_done();
	}
	if (hung) {
		ok(false, "cleanup: the tasks are stuck (stacks above)");
		return tap_done();
	}
	if (pid)
		waitpid(pid, &status, 0);
	i = mdev_remove(MDEV_UUID);
	ok(!i && vtm_stat("open_now") == 0 &&
	   vtm_stat("opens") == vtm_stat("closes") + vtm_stat("open_failures"),
	   "cleanup: mdev removed (%s), opens %lld = closes %lld, open now %lld",
	   i ? strerror(-i) : "ok", vtm_stat("opens"), vtm_stat("closes"),
	   vtm_stat("open_now"));
	return tap_done();
}
