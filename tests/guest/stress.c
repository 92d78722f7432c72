// SPDX-License-Identifier: GPL-2.0-only
/*
 * stress: randomized concurrent vfio, KVM, mdev and module operations for a
 * set time, then checks that nothing leaked or broke.
 *
 * STRESS_THREADS threads of a child process each run a seeded stream of
 * operations (thread n's stream is a function of STRESS_SEED and n, so a
 * run's per-thread sequences are reproducible; their interleaving is not):
 *   open     a device (edu/virtio-rng on vfio-pci, or one of the test
 *            driver's mdevs): container, group, SET_CONTAINER, SET_IOMMU,
 *            GET_DEVICE_FD, a GET_INFO, the fds closed in random order
 *   group    open a group, SET_CONTAINER, UNSET_CONTAINER, close
 *   vm       KVM_CREATE_VM, the KVM VFIO device, KVM_DEV_VFIO_GROUP_ADD of
 *            a group, maybe the device opened meanwhile, maybe GROUP_DEL,
 *            everything closed in random order (VM first, device last, ...)
 *   shared   the same, on a group (and its container) that all threads
 *            share: a dup() of a group fd from a table, opened on first use
 *            and now and then closed (while other threads still use their
 *            dups), so one thread's device open/close races another's KVM
 *            VFIO device add/release on the same group
 *   fork     a child process does "open" or "vm" and exits without
 *            closing anything
 *   mdev     create or remove one of the test driver's mdevs (a remove
 *            waits while another thread has the device open)
 *   rebind   unbind the PCI device from vfio-pci and bind it again (the
 *            unbind waits while another thread has the device open)
 *   closerace  a container file's last close (a child's exit) racing the
 *            detach of the container's last group (the parent), see
 *            do_closerace(); the first STRESS_RACE_SECS seconds run only
 *            this (and some mdev create/remove), the rest is the mix
 *   modules  at most every STRESS_MODCYCLE seconds, alone (no other
 *            operation runs meanwhile, nothing of ours is open): unload the
 *            test driver, vfio-pci, type1 and, when nothing else holds it,
 *            vfio itself; load them again, rebind the device
 * The parent watches: no operation finishing for STRESS_STALL seconds is a
 * hang (every thread's kernel stack goes to the output).
 *
 * VFIO_MODE=stock runs the same operations but closerace (stock 6.1 has
 * that use-after-free: soft lockup or oops), and with the test driver's
 * lock_kvm off: stock 6.1 deadlocks when a driver takes kvm->lock in
 * open_device() while a KVM VFIO device is released (the deadlock test's
 * subject), and it keeps no VM reference for an open device, so the driver
 * would touch a freed VM (kvm_ref's subject). Ours runs with lock_kvm on.
 *
 * After the run: no hang, every kind of operation succeeded at least once,
 * the kernel log clean, reference counts of vfio, vfio_iommu_type1, mdev,
 * vfio_test_mdev, kvm and kvm_amd/kvm_intel back at their values from
 * before, no VM left in KVM's debugfs, and the whole vfio stack unloads.
 * Usage: stress [SEED [SECS]], or the environment:
 * STRESS_SEED (time-based if unset; printed), STRESS_SECS (75; the run goes
 * on past it until every operation has succeeded once, which a slow debug
 * kernel may need, but not past STRESS_MAX_SECS, 2 * STRESS_SECS),
 * STRESS_THREADS (4), STRESS_STALL (60), STRESS_MODCYCLE (20),
 * STRESS_RACE_SECS (30),
 * STRESS_HOLD_MS (0: the test driver's hold_ms, ours only), STRESS_OPS
 * (comma-separated operation names to run; default all, for stock all but
 * closerace).
 * Output is TAP on stdout.
 */
#include "tap.h"
#include "rnd.h"
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/kvm.h>

#define NTESTS		8
#define MAX_THREADS	16
#define NPOOL		4	/* the test driver's max_instances */

static const char *const pool[NPOOL] = {
	"5a1d0ec7-0000-4000-8000-0000005e0001",
	"5a1d0ec7-0000-4000-8000-0000005e0002",
	"5a1d0ec7-0000-4000-8000-0000005e0003",
	"5a1d0ec7-0000-4000-8000-0000005e0004",
};

enum op { OP_OPEN, OP_GROUP, OP_VM, OP_SHARED, OP_FORK, OP_MDEV, OP_REBIND,
	  OP_MODULES, OP_CLOSERACE, NOPS };

static const char *const op_name[NOPS] = {
	"open", "group", "vm", "shared", "fork", "mdev", "rebind", "modules",
	"closerace",
};

/*
 * Weights of the operations (OP_MODULES: rate-limited on top). OP_CLOSERACE
 * is off for stock unless STRESS_OPS names it (see do_closerace()).
 */
static unsigned int op_weight[NOPS] = { 25, 8, 15, 25, 6, 12, 5, 2, 6 };

#define NERR	136

struct shared {
	uint64_t done;			/* operations finished: progress */
	uint64_t att[NOPS];
	uint64_t ok[NOPS];
	uint64_t err[NOPS][NERR];	/* failures by errno */
	uint64_t vms;
	int stop;
	int tids[MAX_THREADS];
	char fatal[256];
	char step[64];			/* what the modules operation is doing */
	int race_go[MAX_THREADS];	/* closerace: the parent is closing */
};

static struct shared *sh;
static pthread_rwlock_t excl;
static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static int shared_grp[NPOOL + 1] = { -1, -1, -1, -1, -1 };
static int shared_ctr[NPOOL + 1] = { -1, -1, -1, -1, -1 };
static double last_modcycle;
static char pci_bdf[64];
static __thread int worker_no;
static int have_kvm, kvm_fd = -1, ours;
static long hold_ms, modcycle_s, race_s;
static double t_start;
static const char *vendor = "kvm_amd";

struct sess {
	int ctr, grp, dev, vm, kvfio;
};

static void sess_init(struct sess *s)
{
	s->ctr = s->grp = s->dev = s->vm = s->kvfio = -1;
}

static void count_err(enum op op, int e)
{
	__atomic_add_fetch(&sh->err[op][e > 0 && e < NERR ? e : 0], 1, __ATOMIC_RELAXED);
}

/* Target 0 is the PCI device, 1..NPOOL the mdevs. */
static int target_group(int t)
{
	return t ? mdev_group(pool[t - 1]) : pci_group(pci_bdf);
}

static const char *target_name(int t)
{
	return t ? pool[t - 1] : pci_bdf;
}

/* Closes a session's fds in an order of r's choosing. */
static void sess_close(struct rnd *r, struct sess *s)
{
	int *fds[5] = { &s->ctr, &s->grp, &s->dev, &s->vm, &s->kvfio };

	for (int i = 4; i > 0; i--) {
		int j = rnd_below(r, i + 1);
		int *t = fds[i];

		fds[i] = fds[j];
		fds[j] = t;
	}
	for (int i = 0; i < 5; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Opens the group of target t into s: 0 or -errno. */
static int sess_group(struct sess *s, int t)
{
	int g = target_group(t);

	if (g < 0)
		return -ENOENT;
	s->grp = open_group(g);
	return s->grp < 0 ? -errno : 0;
}

/* A container for the session's group, SET_CONTAINER, SET_IOMMU: 0 or -errno. */
static int sess_attach(struct sess *s)
{
	s->ctr = open_container();
	if (s->ctr < 0)
		return -errno;
	if (ioctl(s->grp, VFIO_GROUP_SET_CONTAINER, &s->ctr) ||
	    ioctl(s->ctr, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return -errno;
	return 0;
}

/* sess_attach(), then GET_DEVICE_FD and GET_INFO: 0 or -errno. */
static int sess_device(struct sess *s, int t)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int ret;

	ret = sess_attach(s);
	if (ret)
		return ret;
	s->dev = ioctl(s->grp, VFIO_GROUP_GET_DEVICE_FD, target_name(t));
	if (s->dev < 0)
		return -errno;
	if (ioctl(s->dev, VFIO_DEVICE_GET_INFO, &info))
		return -errno;
	return 0;
}

/* A VM with a KVM VFIO device, the session's group added: 0 or -errno. */
static int sess_vm(struct sess *s)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_GROUP,
		.attr = KVM_DEV_VFIO_GROUP_ADD,
		.addr = (uint64_t)(uintptr_t)&s->grp,
	};

	s->vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (s->vm < 0)
		return -errno;
	__atomic_add_fetch(&sh->vms, 1, __ATOMIC_RELAXED);
	if (ioctl(s->vm, KVM_CREATE_DEVICE, &cd))
		return -errno;
	s->kvfio = cd.fd;
	if (ioctl(s->kvfio, KVM_SET_DEVICE_ATTR, &attr))
		return -errno;
	return 0;
}

static int group_del(struct sess *s)
{
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_GROUP,
		.attr = KVM_DEV_VFIO_GROUP_DEL,
		.addr = (uint64_t)(uintptr_t)&s->grp,
	};

	return ioctl(s->kvfio, KVM_SET_DEVICE_ATTR, &attr) ? -errno : 0;
}

static int do_open(struct rnd *r)
{
	int t = rnd_below(r, NPOOL + 1);
	struct sess s;
	int ret;

	sess_init(&s);
	ret = sess_group(&s, t);
	if (!ret)
		ret = sess_device(&s, t);
	if (!ret && rnd_chance(r, 300))
		usleep(rnd_below(r, 20000));
	sess_close(r, &s);
	return ret;
}

static int do_group(struct rnd *r)
{
	int t = rnd_below(r, NPOOL + 1);
	struct sess s;
	int ret;

	sess_init(&s);
	ret = sess_group(&s, t);
	if (!ret) {
		s.ctr = open_container();
		if (s.ctr < 0 || ioctl(s.grp, VFIO_GROUP_SET_CONTAINER, &s.ctr) ||
		    ioctl(s.grp, VFIO_GROUP_UNSET_CONTAINER))
			ret = -errno;
	}
	sess_close(r, &s);
	return ret;
}

static int do_vm(struct rnd *r)
{
	int t = rnd_below(r, NPOOL + 1);
	struct sess s;
	int ret;

	if (!have_kvm)
		return -EOPNOTSUPP;
	sess_init(&s);
	ret = sess_group(&s, t);
	if (!ret)
		ret = sess_vm(&s);
	if (!ret && rnd_chance(r, 700)) {
		ret = sess_device(&s, t);
		/* the device open, the VM's fds go first now and then */
		if (!ret && rnd_chance(r, 300)) {
			close(s.kvfio);
			close(s.vm);
			s.kvfio = s.vm = -1;
		}
	}
	if (!ret && s.kvfio >= 0 && rnd_chance(r, 250))
		ret = group_del(&s);
	sess_close(r, &s);
	return ret;
}

/* Closes the shared table's fds of target t; shared_lock held. */
static void shared_close(int t)
{
	if (shared_grp[t] >= 0)
		close(shared_grp[t]);
	if (shared_ctr[t] >= 0)
		close(shared_ctr[t]);
	shared_grp[t] = shared_ctr[t] = -1;
}

/* A dup() of the shared group fd of target t, set up on first use. */
static int shared_dup(struct rnd *r, int t)
{
	struct sess s;
	int ret = 0, fd = -1;

	pthread_mutex_lock(&shared_lock);
	if (shared_grp[t] < 0) {
		sess_init(&s);
		ret = sess_group(&s, t);
		if (!ret)
			ret = sess_attach(&s);
		if (ret) {
			sess_close(r, &s);
		} else {
			shared_grp[t] = s.grp;
			shared_ctr[t] = s.ctr;
		}
	}
	if (!ret) {
		fd = dup(shared_grp[t]);
		if (fd < 0)
			ret = -errno;
	}
	if (rnd_chance(r, 100))
		shared_close(t);
	pthread_mutex_unlock(&shared_lock);
	return ret ? ret : fd;
}

static int do_shared(struct rnd *r)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int t = rnd_below(r, NPOOL + 1);
	struct sess s;
	int ret = 0, g;

	g = shared_dup(r, t);
	if (g < 0)
		return g;
	sess_init(&s);
	s.grp = g;
	if (have_kvm && rnd_chance(r, 500)) {
		ret = sess_vm(&s);
		if (!ret && rnd_chance(r, 200))
			ret = group_del(&s);
	}
	if (!ret && rnd_chance(r, 700)) {
		s.dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, target_name(t));
		if (s.dev < 0 || ioctl(s.dev, VFIO_DEVICE_GET_INFO, &info))
			ret = -errno;
	}
	if (ret == -ENODEV || ret == -EINVAL) {
		/* a group whose device went away: start afresh next time */
		pthread_mutex_lock(&shared_lock);
		shared_close(t);
		pthread_mutex_unlock(&shared_lock);
	}
	sess_close(r, &s);
	return ret;
}

/* A child does "open" or "vm" and exits with everything open. */
static int do_fork(struct rnd *r)
{
	int t = rnd_below(r, NPOOL + 1), vm = have_kvm && rnd_chance(r, 500);
	struct sess s;
	int st, ret;
	pid_t pid;

	sess_init(&s);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		ret = sess_group(&s, t);
		if (!ret && vm)
			ret = sess_vm(&s);
		if (!ret)
			ret = sess_device(&s, t);
		_exit(ret < 0 ? -ret : 0);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	if (!WIFEXITED(st))
		return -EINTR;
	return -WEXITSTATUS(st);
}

/*
 * The container file's last close racing the last group's detach: a child
 * keeps a copy of the container fd only, the parent closes its container fd
 * and then its group fd while the child exits. vfio_fops_release() (the
 * child's exit) reads container->iommu_driver and calls its notify() on
 * container->iommu_data without the container's group_lock, while the
 * group's release (the parent) detaches the last group and frees that
 * iommu_data under it: a use-after-free (the notify spins on the freed
 * iommu->lock: soft lockup; or oopses). Stock 6.1 has it, so VFIO_MODE=stock
 * leaves it out unless STRESS_OPS names it. The child's exit and the
 * parent's close are lined up through a flag in shared memory, each after a
 * random spin, which hits the window within seconds under TCG.
 */
static int do_closerace(struct rnd *r)
{
	int t = rnd_below(r, NPOOL + 1), st, ret;
	unsigned int d1 = rnd_below(r, 20000), d2 = rnd_below(r, 20000);
	int *go = &sh->race_go[worker_no];
	struct sess s;
	pid_t pid;

	sess_init(&s);
	ret = sess_group(&s, t);
	if (!ret)
		ret = sess_attach(&s);
	if (ret) {
		sess_close(r, &s);
		return ret;
	}
	__atomic_store_n(go, 0, __ATOMIC_RELEASE);
	pid = fork();
	if (pid < 0) {
		sess_close(r, &s);
		return -errno;
	}
	if (!pid) {
		close(s.grp);
		while (!__atomic_load_n(go, __ATOMIC_ACQUIRE))
			;
		for (volatile unsigned int i = 0; i < d1; i++)
			;
		_exit(0);
	}
	close(s.ctr);
	__atomic_store_n(go, 1, __ATOMIC_RELEASE);
	for (volatile unsigned int i = 0; i < d2; i++)
		;
	close(s.grp);
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return 0;
}

static int do_mdev(struct rnd *r)
{
	const char *u = pool[rnd_below(r, NPOOL)];

	return rnd_chance(r, 500) ? mdev_create(u) : mdev_remove(u);
}

static int do_rebind(void)
{
	int ret = pci_bind(pci_bdf, "");

	return ret ? ret : pci_bind(pci_bdf, "vfio-pci");
}

static int set_knobs(void)
{
	return vtm_set("lock_kvm", ours) || vtm_set("hold_ms", ours ? hold_ms : 0) ||
	       vtm_set("delay_ms", 0) || vtm_set("fail_open", 0) ? -EIO : 0;
}

/* Notes the step that follows, for the hang report; passes ret on. */
static int mod_step(const char *next, int ret)
{
	snprintf(sh->step, sizeof(sh->step), "after %s (%d)", next, ret);
	return ret;
}

/*
 * The whole stack out and in again; runs alone (the write lock), with no
 * vfio fd of ours open. VMs that ours kept for an open device are gone
 * with the device's last close, so nothing holds vfio but its modules.
 */
static int do_modules(void)
{
	const char *v;
	char ver[32];

	pthread_mutex_lock(&shared_lock);
	for (int t = 0; t <= NPOOL; t++)
		shared_close(t);
	pthread_mutex_unlock(&shared_lock);
	if (mod_step("modprobe -r vfio_test_mdev", modprobe_q(1, "vfio_test_mdev")) ||
	    mod_step("unbind", pci_bind(pci_bdf, "")) ||
	    mod_step("modprobe -r vfio_pci", modprobe_q(1, "vfio_pci")) ||
	    mod_step("modprobe -r vfio_iommu_type1", modprobe_q(1, "vfio_iommu_type1")))
		return -EBUSY;
	if (mod_step("modprobe vfio_pci", modprobe("vfio_pci")) ||
	    mod_step("modprobe vfio_iommu_type1", modprobe("vfio_iommu_type1")) ||
	    mod_step("modprobe vfio_test_mdev", modprobe("vfio_test_mdev")))
		return -ENOENT;
	if (mod_step("bind to vfio-pci", pci_bind(pci_bdf, "vfio-pci")) ||
	    mod_step("knobs", set_knobs()))
		return -ENODEV;
	snprintf(sh->step, sizeof(sh->step), "done");
	v = read_file("/sys/module/vfio/version", ver, sizeof(ver)) ? "" : ver;
	if (ours == !strcmp(v, "0.3"))
		return -EPROTO;	/* the wrong vfio came back */
	return 0;
}

struct worker {
	int n;
	uint64_t seed;
};

static enum op pick(struct rnd *r)
{
	unsigned int sum = 0, x;

	for (int i = 0; i < NOPS; i++)
		sum += op_weight[i];
	x = rnd_below(r, sum);
	for (int i = 0; i < NOPS; i++) {
		if (x < op_weight[i])
			return i;
		x -= op_weight[i];
	}
	return OP_OPEN;
}

static void *worker(void *p)
{
	struct worker *w = p;
	struct rnd r;

	sh->tids[w->n] = (int)syscall(SYS_gettid);
	worker_no = w->n;
	rnd_init(&r, w->seed, w->n + 1);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		enum op op = pick(&r);
		int ret;

		/* The first race_s seconds: closerace (and mdev) only. */
		if (op_weight[OP_CLOSERACE] && now_s() - t_start < race_s)
			op = rnd_chance(&r, 200) ? OP_MDEV : OP_CLOSERACE;

		if (op == OP_MODULES) {
			int go;

			pthread_mutex_lock(&mod_lock);
			go = now_s() - last_modcycle >= modcycle_s;
			if (go)
				last_modcycle = now_s();
			pthread_mutex_unlock(&mod_lock);
			if (!go)
				continue;
			pthread_rwlock_wrlock(&excl);
			ret = do_modules();
		} else {
			pthread_rwlock_rdlock(&excl);
			switch (op) {
			case OP_OPEN: ret = do_open(&r); break;
			case OP_GROUP: ret = do_group(&r); break;
			case OP_VM: ret = do_vm(&r); break;
			case OP_SHARED: ret = do_shared(&r); break;
			case OP_FORK: ret = do_fork(&r); break;
			case OP_MDEV: ret = do_mdev(&r); break;
			case OP_CLOSERACE: ret = do_closerace(&r); break;
			default: ret = do_rebind(); break;
			}
		}
		pthread_rwlock_unlock(&excl);
		if (op == OP_VM && ret == -EOPNOTSUPP)
			continue;
		__atomic_add_fetch(&sh->att[op], 1, __ATOMIC_RELAXED);
		if (ret)
			count_err(op, -ret);
		else
			__atomic_add_fetch(&sh->ok[op], 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&sh->done, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void child(uint64_t seed, int threads)
{
	pthread_rwlockattr_t ra;
	pthread_t thr[MAX_THREADS];
	struct worker w[MAX_THREADS];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&excl, &ra);
	last_modcycle = t_start = now_s();
	if (have_kvm) {
		kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		if (kvm_fd < 0)
			have_kvm = 0;
	}
	for (int i = 0; i < threads; i++) {
		w[i].n = i;
		w[i].seed = seed;
		if (pthread_create(&thr[i], NULL, worker, &w[i])) {
			snprintf(sh->fatal, sizeof(sh->fatal), "pthread_create failed");
			__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
			threads = i;
			break;
		}
	}
	for (int i = 0; i < threads; i++)
		pthread_join(thr[i], NULL);
	_exit(sh->fatal[0] ? 1 : 0);
}

static void dump_stacks(pid_t pid)
{
	char path[96], buf[4096], *s, *nl;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stack", pid, e->d_name);
		if (read_file(path, buf, sizeof(buf)))
			continue;
		diag("task %s:", e->d_name);
		for (s = buf; s && *s; s = nl ? nl + 1 : NULL) {
			nl = strchr(s, '\n');
			diag("  %.*s", nl ? (int)(nl - s) : (int)strlen(s), s);
		}
	}
	if (d)
		closedir(d);
}

/* Every task in D state with its kernel stack; sysrq w to the console. */
static void dump_blocked(void)
{
	char path[128], buf[4096], comm[64], *s, *nl;
	struct dirent *p, *t;
	DIR *pd, *td;

	write_file("/proc/sysrq-trigger", "w");
	pd = opendir("/proc");
	while (pd && (p = readdir(pd))) {
		if (p->d_name[0] < '0' || p->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task", p->d_name);
		td = opendir(path);
		while (td && (t = readdir(td))) {
			if (t->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/task/%s/stat", p->d_name, t->d_name);
			if (read_file(path, buf, sizeof(buf)))
				continue;
			s = strrchr(buf, ')');
			if (!s || s[1] != ' ' || s[2] != 'D')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/task/%s/comm", p->d_name, t->d_name);
			if (read_file(path, comm, sizeof(comm)))
				comm[0] = '\0';
			diag("blocked (D) task %s/%s %s:", p->d_name, t->d_name, comm);
			snprintf(path, sizeof(path), "/proc/%s/task/%s/stack", p->d_name, t->d_name);
			if (read_file(path, buf, sizeof(buf)))
				continue;
			for (s = buf; s && *s; s = nl ? nl + 1 : NULL) {
				nl = strchr(s, '\n');
				diag("  %.*s", nl ? (int)(nl - s) : (int)strlen(s), s);
			}
		}
		if (td)
			closedir(td);
	}
	if (pd)
		closedir(pd);
}

static const char *const refmods[] = {
	"vfio", "vfio_iommu_type1", "mdev", "vfio_test_mdev", "vfio_pci",
	"kvm", NULL /* vendor */,
};
#define NREF	(sizeof(refmods) / sizeof(refmods[0]))

static void refcnts(long *out)
{
	for (size_t i = 0; i < NREF; i++)
		out[i] = mod_refcnt(refmods[i] ? refmods[i] : vendor);
}

/* "name now/before" of the modules that are loaded, for the TAP line. */
static void refcnt_line(char *line, size_t size, const long *now, const long *base)
{
	size_t len = 0;

	line[0] = '\0';
	for (size_t i = 0; i < NREF && len < size; i++) {
		if (now[i] < 0 && base[i] < 0)
			continue;
		len += snprintf(line + len, size - len, "%s%s %ld/%ld", len ? ", " : "",
				refmods[i] ? refmods[i] : vendor, now[i], base[i]);
	}
}

/* Back to the state of the baseline: no mdevs, the device on vfio-pci. */
static int settle(char *why, size_t len)
{
	const char *mods[] = { "vfio_pci", "vfio_iommu_type1", "vfio_test_mdev" };

	for (size_t i = 0; i < 3; i++) {
		if (!module_loaded(mods[i]) && modprobe(mods[i])) {
			snprintf(why, len, "modprobe %s", mods[i]);
			return -1;
		}
	}
	for (int i = 0; i < NPOOL; i++) {
		int ret = mdev_remove(pool[i]);

		if (ret && ret != -ENOENT) {
			snprintf(why, len, "remove mdev %s: %s", pool[i], strerror(-ret));
			return -1;
		}
	}
	if (pci_bind(pci_bdf, "vfio-pci")) {
		snprintf(why, len, "bind %s to vfio-pci", pci_bdf);
		return -1;
	}
	if (set_knobs()) {
		snprintf(why, len, "test driver knobs");
		return -1;
	}
	return 0;
}

/* STRESS_OPS: the operations to run, by name ("open,vm,..."); all by default. */
static void select_ops(const char *list)
{
	char all[256], name[32];

	if (!list || !*list)
		return;
	snprintf(all, sizeof(all), ",%s,", list);
	for (int op = 0; op < NOPS; op++) {
		snprintf(name, sizeof(name), ",%s,", op_name[op]);
		if (!strstr(all, name))
			op_weight[op] = 0;
		else if (!op_weight[op])
			op_weight[op] = 10;
	}
}

/* Every operation that runs in this guest has succeeded at least once. */
static int covered(void)
{
	for (int op = 0; op < NOPS; op++) {
		if ((op == OP_VM && !have_kvm) || !op_weight[op])
			continue;
		if (!__atomic_load_n(&sh->ok[op], __ATOMIC_ACQUIRE))
			return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	const char *mode = getenv("VFIO_MODE");
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : env_u64("STRESS_SEED", 0);
	long secs = argc > 2 ? strtol(argv[2], NULL, 0) : env_long("STRESS_SECS", 75);
	long threads = env_long("STRESS_THREADS", 4);
	long stall = env_long("STRESS_STALL", 60);
	long max_secs = env_long("STRESS_MAX_SECS", 2 * secs);
	long base[NREF], now[NREF];
	uint64_t last = 0, d;
	int kfd, keeper = -1, grp, st = 0, hung = 0, bad, vms, pass, fine;
	double t0, tlast, t;
	char why[256], line[1024];
	size_t len;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* amd64 has KVM (nested SVM under TCG): its VM operations are half the point */
	if (!is_s390x()) {
		if (module_loaded("kvm_amd") || !modprobe("kvm_amd"))
			vendor = "kvm_amd";
		else if (module_loaded("kvm_intel") || !modprobe("kvm_intel"))
			vendor = "kvm_intel";
		if (!module_loaded(vendor) || access("/dev/kvm", F_OK))
			tap_skip_all("no KVM on amd64 (neither kvm_amd nor kvm_intel loads): no VM operations to stress");
	}
	tap_plan(NTESTS);
	ours = mode && !strcmp(mode, "ours");
	hold_ms = env_long("STRESS_HOLD_MS", 0);
	modcycle_s = env_long("STRESS_MODCYCLE", 20);
	race_s = env_long("STRESS_RACE_SECS", 30);
	if (!ours)
		op_weight[OP_CLOSERACE] = 0;
	select_ops(getenv("STRESS_OPS"));
	if (!seed)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (threads < 1 || threads > MAX_THREADS)
		threads = 4;
	diag("stress: mode %s, STRESS_SEED=%llu STRESS_SECS=%ld STRESS_THREADS=%ld STRESS_MODCYCLE=%ld STRESS_RACE_SECS=%ld STRESS_HOLD_MS=%ld (rerun with these)",
	     mode ? mode : "?", (unsigned long long)seed, secs, threads, modcycle_s,
	     op_weight[OP_CLOSERACE] ? race_s : 0, hold_ms);
	kfd = kmsg_open();
	mount_debugfs();

	/* 1: setup */
	if (!module_loaded("vfio_pci") && modprobe("vfio_pci"))
		return !ok(0, "setup: modprobe vfio_pci");
	if (conf_pci_device(pci_bdf, sizeof(pci_bdf), &grp))
		return !ok(0, "setup: no PCI device on vfio-pci");
	if (settle(why, sizeof(why)))
		return !ok(0, "setup: %s", why);
	have_kvm = module_loaded(vendor) && !access("/dev/kvm", F_OK);
	if (have_kvm) {
		/*
		 * A VM for the whole run: the ones the threads make are never
		 * KVM's last, so KVM does not switch virtualization off and on
		 * each time (that hangs TCG guests after a few dozen rounds).
		 */
		int k = open("/dev/kvm", O_RDWR | O_CLOEXEC);

		keeper = k < 0 ? -1 : ioctl(k, KVM_CREATE_VM, 0);
		if (k >= 0)
			close(k);
		if (keeper < 0)
			have_kvm = 0;
	}
	usleep(100000);
	refcnts(base);
	refcnt_line(line, sizeof(line), base, base);
	ok(have_kvm || is_s390x(), "setup: %s %s, KVM %s, lock_kvm %d; refcnt (x/x) %s",
	   is_s390x() ? "virtio-rng" : "edu", pci_bdf,
	   have_kvm ? vendor : "none (no VM operations)", ours, line);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return !ok(0, "mmap: %s", strerror(errno));

	/* 2: the run */
	pid = fork();
	if (pid < 0)
		return !ok(0, "fork: %s", strerror(errno));
	if (!pid)
		child(seed, threads);
	t0 = tlast = now_s();
	for (;;) {
		usleep(100000);
		t = now_s();
		if (waitpid(pid, &st, WNOHANG) == pid) {
			pid = 0;
			break;
		}
		d = __atomic_load_n(&sh->done, __ATOMIC_ACQUIRE);
		if (d != last) {
			last = d;
			tlast = t;
		}
		if (t - tlast >= stall) {
			hung = 1;
			break;
		}
		/* past secs, go on until each operation got through once */
		if (t - t0 >= secs && (covered() || t - t0 >= max_secs))
			__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	}
	t = now_s();
	diag("%llu operations in %.1fs (%.1f/s), %llu VMs created",
	     (unsigned long long)sh->done, t - t0, sh->done / (t - t0),
	     (unsigned long long)sh->vms);
	if (t - t0 >= secs + 1)
		diag("ran %.0fs past STRESS_SECS for every operation to succeed once (at most until STRESS_MAX_SECS)",
		     t - t0 - secs);
	fine = covered();
	for (int op = 0; op < NOPS; op++) {
		len = snprintf(line, sizeof(line), "%-8s %6llu tries %6llu ok", op_name[op],
			       (unsigned long long)sh->att[op], (unsigned long long)sh->ok[op]);
		for (int e = 0; e < NERR && len < sizeof(line) - 32; e++)
			if (sh->err[op][e])
				len += snprintf(line + len, sizeof(line) - len, ", %s %llu",
						errname(-e), (unsigned long long)sh->err[op][e]);
		diag("%s", line);
	}
	if (hung) {
		diag("no operation finished for %lds; modules operation: %s", stall,
		     sh->step[0] ? sh->step : "never ran");
		diag("the kernel stacks of the stress threads:");
		dump_stacks(pid);
		dump_blocked();
		bad = kmsg_scan(kfd, 60, 0);
		ok(0, "no hang: STUCK after %.1fs (seed %llu)", tlast - t0, (unsigned long long)seed);
		ok(0, "every operation succeeded at least once: not checked (hung)");
		ok(bad == 0, "kernel log clean (%d bad lines)", bad);
		for (int i = 5; i <= NTESTS; i++)
			ok(0, "not checked: the stress threads are stuck");
		return 1;
	}
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && !sh->fatal[0],
	   "no hang: %.1fs of stress, stress process %s%s", t - t0,
	   WIFEXITED(st) ? "exited" : "killed by a signal", sh->fatal);

	/* 3: coverage */
	ok(fine, "every operation succeeded at least once");

	/* 4: kernel log during the run */
	bad = kmsg_scan(kfd, 40, 0);
	ok(bad == 0, "kernel log clean during the run (%d bad lines)", bad);

	/* 5: reference counts */
	pass = !settle(why, sizeof(why));
	if (!pass)
		diag("settle: %s", why);
	usleep(200000);
	refcnts(now);
	refcnt_line(line, sizeof(line), now, base);
	for (size_t i = 0; i < NREF; i++)
		if (now[i] != base[i])
			pass = 0;
	ok(pass && vtm_stat("open_now") == 0, "refcnt after/before: %s; test driver open now %lld",
	   line, vtm_stat("open_now"));

	/* 6, 7: no VM left but the keeper, none after it */
	vms = kvm_vm_dirs();
	if (have_kvm)
		ok(vms == 1, "VMs left in %s: %d (the keeper's only)", KVM_DEBUGFS, vms - 1);
	else
		skip("no KVM in the s390x TCG guest (no SIE)", "VMs left");
	if (keeper >= 0)
		close(keeper);
	for (int i = 0; i < 20 && kvm_vm_dirs() > 0; i++)
		usleep(100000);
	vms = kvm_vm_dirs();
	if (!have_kvm && vms < 0)
		skip("no KVM in the s390x TCG guest (no SIE)", "no VM after the keeper is closed");
	else
		ok(vms <= 0, "no VM after the keeper is closed: %d", vms);

	/* 8: the stack unloads */
	for (int i = 0; i < NPOOL; i++)
		mdev_remove(pool[i]);
	pci_bind(pci_bdf, "");
	modprobe_q(1, "vfio_pci");
	modprobe_q(1, "vfio_test_mdev");
	modprobe_q(1, "vfio_iommu_type1");
	modprobe_q(1, "vfio");
	bad = kmsg_scan(kfd, 40, 0);
	ok(!module_loaded("vfio") && bad == 0, "the vfio stack unloads (vfio %s), kernel log clean (%d bad lines)",
	   module_loaded("vfio") ? "STILL LOADED" : "gone", bad);
	return tap_done();
}
