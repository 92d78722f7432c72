// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench: the guest half of `make bench` (tests/bench/bench.sh runs it as the
 * harness test /tests/bench). It times vfio operations on the vfio.ko the
 * guest runs and prints every sample on the TAP channel; the host does the
 * statistics. Settings come from /tests/bench.conf (KEY=VALUE lines, which
 * the host writes; the environment wins) and VFIO_MODE from the harness:
 *
 *   VFIO_MODE=stock|ours  run the operations once on that vfio.ko
 *   VFIO_MODE=swap        the guest boots on stock with ours where DKMS puts
 *                         it: BENCH_ROUNDS rounds of the operations on stock
 *                         and on ours (order stock ours ours stock ...,
 *                         switching with vfio-swap), then the swap downtime
 *                         of BENCH_SWAP_SETS (op 6)
 *
 * Operations (names as in the results), each BENCH_ITERS timed iterations
 * after BENCH_WARMUP untimed ones unless noted (warm-up at most a tenth):
 *   1 open_close_{pci,mdev}[_vm]  VFIO_GROUP_GET_DEVICE_FD + close(), the
 *                                 device's first open and last close, on
 *                                 vfio-pci (edu; s390x: zPCI) and the test
 *                                 mdev, without and with a VM attached to
 *                                 the group (a KVM VFIO device holding it);
 *                                 vfio-pci's: BENCH_PCI_ITERS (its enable and
 *                                 reset take ms under TCG)
 *   2 get_info, config_pread,     VFIO_DEVICE_GET_INFO and a 4-byte config
 *     group_status,               space pread on an open vfio-pci device;
 *     zero_pread                  VFIO_GROUP_GET_STATUS on its group; and,
 *                                 as the boot's baseline, a 4-byte pread of
 *                                 /dev/zero (no vfio code at all), in the
 *                                 same loop
 *   3 {map,unmap}_{4k,2m}[_4t]    VFIO_IOMMU_MAP_DMA / UNMAP_DMA of 4 KiB
 *                                 and 2 MiB on the vfio-pci container, one
 *                                 thread, and 4 threads on that container
 *                                 (each its own IOVA range; samples pooled)
 *   4 kvm_group_add/_del,         KVM_DEV_VFIO_GROUP_ADD / _DEL on a KVM
 *     vm_create_destroy           VFIO device; a VM created with a KVM VFIO
 *                                 device holding the group, then destroyed
 *                                 (BENCH_VM_ITERS)
 *   5 release_open_<N>ms          close() of a KVM VFIO device holding the
 *                                 mdev's group while an open of that mdev
 *                                 sleeps N ms in open_device() without
 *                                 kvm->lock (the test driver's delay_ms,
 *                                 lock_kvm=0): stock waits for the open
 *                                 (group_lock), ours does not. BENCH_RELEASE
 *                                 = "N:ITERS,..."
 *   6 swap_to_{ours,stock}        scripts/vfio-swap with K devices (PCI
 *                                 functions and test mdevs), from its start
 *                                 until every device is bound again and
 *                                 opens (swap_open open); steps timed from
 *                                 outside through vfio-swap's INSMOD, RMMOD,
 *                                 MODPROBE and VFIO_REBIND programs, which
 *                                 point back at this program (argv[0])
 * KVM operations are skipped without /dev/kvm (s390x under TCG).
 *
 * Output: TAP (plan first, one result per operation), and per operation
 *   # S MODE ROUND OP NS NS ...      its samples in ns (16 per line)
 *   # W DIR K ITER total=NS check=NS save=NS unload=NS load=NS deps=NS
 *       restore=NS reopen=NS          one swap (op 6), its steps in ns
 */
#include "../guest/tap.h"
#include "../guest/rnd.h"
#include <pthread.h>
#include <libgen.h>
#include <sys/syscall.h>
#include <linux/kvm.h>

#define MDEV_UUID_FMT	"5a1d0ec7-bec0-4000-8000-00000000b00%d"
#define N_MDEVS		4
#define BENCH_CONF	"/tests/bench.conf"
#define SWAP_DIR	"/tmp/bench-swap"
#define PER_LINE	16
#define NTHREADS	4
#define SZ_4K		4096UL
#define SZ_2M		(2UL << 20)

static long iters, warmup, vm_iters, pci_iters;
static int arch_s390x;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* KEY=VALUE lines of the host's settings into the environment. */
static void load_conf(void)
{
	char line[512], *eq, *nl;
	FILE *f = fopen(BENCH_CONF, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		eq = strchr(line, '=');
		if (line[0] == '#' || !eq)
			continue;
		*eq = '\0';
		setenv(line, eq + 1, 0);
	}
	fclose(f);
}

/* ------------------------------------------------------------ samples */

struct series {
	const char *op;
	uint64_t *v;
	long n;
	long cap;
	int err;		/* first -errno a timed call returned */
	const char *what;	/* and which call */
};

static void series_init(struct series *s, const char *op, long cap)
{
	memset(s, 0, sizeof(*s));
	s->op = op;
	s->cap = cap;
	s->v = calloc(cap ? cap : 1, sizeof(*s->v));
	if (!s->v)
		bail("out of memory");
}

static void series_add(struct series *s, uint64_t ns)
{
	if (s->n < s->cap)
		s->v[s->n++] = ns;
}

static void series_fail(struct series *s, const char *what, int err)
{
	if (!s->err) {
		s->err = err ? err : -EIO;
		s->what = what;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The samples on the TAP channel and one TAP result for the operation. */
static void series_report(struct series *s, const char *mode, int round)
{
	uint64_t *sorted;
	long i;

	for (i = 0; i < s->n; i++) {
		if (i % PER_LINE == 0)
			printf("%s# S %s %d %s", i ? "\n" : "", mode, round, s->op);
		printf(" %llu", (unsigned long long)s->v[i]);
	}
	if (s->n)
		printf("\n");
	if (s->err) {
		ok(0, "%s %s: %s", mode, s->op, s->what);
		diag("  %s after %ld samples", errname(s->err), s->n);
	} else if (!s->n) {
		ok(0, "%s %s: no samples", mode, s->op);
	} else {
		sorted = malloc(s->n * sizeof(*sorted));
		if (!sorted)
			bail("out of memory");
		memcpy(sorted, s->v, s->n * sizeof(*sorted));
		qsort(sorted, s->n, sizeof(*sorted), cmp_u64);
		ok(1, "%s %s: %ld samples, median %.1f us", mode, s->op, s->n,
		   sorted[s->n / 2] / 1000.0);
		free(sorted);
	}
	fflush(stdout);
	free(s->v);
	s->v = NULL;
}

/* ------------------------------------------------------------ set-up */

struct bench {
	char bdf[32];
	char mdev[64];
	int pci_group;		/* group numbers, -1: none */
	int mdev_group;
	int pci_c, pci_g;	/* container and group fds of the PCI device */
	int mdev_c, mdev_g;
	int kvm;		/* /dev/kvm, -1: none */
	int anchor;		/* a VM kept for the whole run */
	const char *no_kvm;	/* why there is no KVM */
	const char *no_mdev;
	const char *no_pci;
};

static void mdev_uuid(int i, char *buf, size_t len)
{
	snprintf(buf, len, MDEV_UUID_FMT, i);
}

/* Which vfio runs, as a diagnostic. */
static void vfio_version_diag(void)
{
	char v[32] = "none";

	read_file("/sys/module/vfio/version", v, sizeof(v));
	diag("vfio version %s", v);
}

static void setup(struct bench *b)
{
	const char *what;
	int ret;

	memset(b, 0, sizeof(*b));
	b->pci_group = b->mdev_group = -1;
	b->pci_c = b->pci_g = b->mdev_c = b->mdev_g = -1;
	b->kvm = b->anchor = -1;
	if (modprobe("vfio_pci") || modprobe("vfio_iommu_type1"))
		bail("modprobe vfio_pci vfio_iommu_type1");
	vfio_version_diag();
	ret = conf_pci_device(b->bdf, sizeof(b->bdf), &b->pci_group);
	if (ret) {
		b->no_pci = "no PCI device for vfio-pci in this guest";
	} else if (group_attach(b->pci_group, &b->pci_c, &b->pci_g, &what)) {
		bail("PCI device %s: %s", b->bdf, what);
	}
	if (modprobe("vfio_test_mdev")) {
		b->no_mdev = "no vfio_test_mdev module";
	} else {
		mdev_uuid(1, b->mdev, sizeof(b->mdev));
		ret = mdev_create(b->mdev);
		if (ret && ret != -EEXIST)
			bail("create mdev %s", b->mdev);
		b->mdev_group = mdev_group(b->mdev);
		if (b->mdev_group < 0)
			bail("no group for mdev %s", b->mdev);
		if (group_attach(b->mdev_group, &b->mdev_c, &b->mdev_g, &what))
			bail("mdev %s: %s", b->mdev, what);
		if (vtm_set("delay_ms", 0) || vtm_set("hold_ms", 0) ||
		    vtm_set("lock_kvm", 1) || vtm_set("fail_open", 0))
			bail("set the test driver's knobs");
	}
	if (!arch_s390x) {
		modprobe("kvm_amd");
		modprobe("kvm_intel");
	}
	b->kvm = open("/dev/kvm", O_RDWR);
	if (b->kvm < 0) {
		b->no_kvm = arch_s390x ? "no KVM on s390x under TCG (no SIE)" : "no /dev/kvm";
	} else {
		/*
		 * Never KVM's last VM: without it, each VM destroyed switches
		 * virtualization off and the next create on again, which
		 * hangs TCG guests after a few dozen rounds (deadlock.c).
		 */
		b->anchor = ioctl(b->kvm, KVM_CREATE_VM, 0);
		if (b->anchor < 0)
			bail("KVM_CREATE_VM");
	}
	mount_debugfs();
}

static void teardown(struct bench *b)
{
	int *fds[] = { &b->pci_g, &b->pci_c, &b->mdev_g, &b->mdev_c, &b->anchor, &b->kvm };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* A KVM VFIO device on vm, holding group fd gfd (-1: none): its fd. */
static int kvm_vfio_dev(int vm, int gfd)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_GROUP,
		.attr = KVM_DEV_VFIO_GROUP_ADD,
		.addr = (uint64_t)(uintptr_t)&gfd,
	};

	if (ioctl(vm, KVM_CREATE_DEVICE, &cd))
		return -1;
	if (gfd >= 0 && ioctl(cd.fd, KVM_SET_DEVICE_ATTR, &attr)) {
		int err = errno;

		close(cd.fd);
		errno = err;
		return -1;
	}
	return cd.fd;
}

static long kvm_vfio_attr(int dev, int gfd, uint64_t which)
{
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_GROUP,
		.attr = which,
		.addr = (uint64_t)(uintptr_t)&gfd,
	};

	return io(dev, KVM_SET_DEVICE_ATTR, &attr);
}

/* ------------------------------------------------------------ operations */

/* The skip reason of an operation here, NULL when it runs. */
struct op {
	const char *name;
	int needs;		/* NEED_* */
};

#define NEED_PCI	1
#define NEED_MDEV	2
#define NEED_KVM	4

static const char *why_not(const struct bench *b, int needs)
{
	if ((needs & NEED_PCI) && b->no_pci)
		return b->no_pci;
	if ((needs & NEED_MDEV) && b->no_mdev)
		return b->no_mdev;
	if ((needs & NEED_KVM) && b->no_kvm)
		return b->no_kvm;
	return NULL;
}

/* 1: first open and last close of the device name in group gfd, n times. */
static void op_open_close(struct series *s, int gfd, const char *name, long n)
{
	long warm = warmup < n / 10 ? warmup : n / 10;

	for (long i = 0; i < warm + n; i++) {
		uint64_t t0 = now_ns();
		int fd = ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, name);

		if (fd < 0) {
			series_fail(s, "VFIO_GROUP_GET_DEVICE_FD", -errno);
			return;
		}
		close(fd);
		if (i >= warm)
			series_add(s, now_ns() - t0);
	}
}

static void op_open_close_vm(struct bench *b, struct series *s, int gfd, const char *name,
			     long n)
{
	int dev = kvm_vfio_dev(b->anchor, gfd);

	if (dev < 0) {
		series_fail(s, "KVM VFIO device with the group", -errno);
		return;
	}
	op_open_close(s, gfd, name, n);
	close(dev);
}

/*
 * 2: dispatch on an open vfio-pci device, and its group; and a pread of
 * /dev/zero, which runs no vfio code: what the same syscall path costs in
 * this boot, so that a difference between the boots of stock and ours that
 * is not vfio's shows up as such.
 */
static void op_dispatch(struct bench *b, struct series *info, struct series *cfg,
			struct series *gst, struct series *zero)
{
	struct vfio_region_info r = { .argsz = sizeof(r), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	int dev = ioctl(b->pci_g, VFIO_GROUP_GET_DEVICE_FD, b->bdf);
	int zfd = open("/dev/zero", O_RDONLY);
	uint32_t id;

	if (dev < 0 || zfd < 0 || ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &r)) {
		const char *what = dev < 0 ? "open the device" :
				   zfd < 0 ? "open /dev/zero" : "VFIO_DEVICE_GET_REGION_INFO";

		series_fail(info, what, -errno);
		series_fail(cfg, what, -errno);
		series_fail(gst, what, -errno);
		series_fail(zero, what, -errno);
		if (dev >= 0)
			close(dev);
		if (zfd >= 0)
			close(zfd);
		return;
	}
	for (long i = 0; i < warmup + iters; i++) {
		struct vfio_device_info di = { .argsz = sizeof(di) };
		struct vfio_group_status st = { .argsz = sizeof(st) };
		uint64_t t0 = now_ns(), t1, t2, t3, t4;

		if (ioctl(dev, VFIO_DEVICE_GET_INFO, &di))
			series_fail(info, "VFIO_DEVICE_GET_INFO", -errno);
		t1 = now_ns();
		if (pread(dev, &id, sizeof(id), r.offset) != sizeof(id))
			series_fail(cfg, "pread config space", -errno);
		t2 = now_ns();
		if (ioctl(b->pci_g, VFIO_GROUP_GET_STATUS, &st))
			series_fail(gst, "VFIO_GROUP_GET_STATUS", -errno);
		t3 = now_ns();
		if (pread(zfd, &id, sizeof(id), 0) != sizeof(id))
			series_fail(zero, "pread /dev/zero", -errno);
		t4 = now_ns();
		if (i >= warmup) {
			series_add(info, t1 - t0);
			series_add(cfg, t2 - t1);
			series_add(gst, t3 - t2);
			series_add(zero, t4 - t3);
		}
	}
	close(zfd);
	close(dev);
}

/* 3: MAP_DMA / UNMAP_DMA of size at iova, n times; samples into map/unmap. */
struct dma_job {
	int container;
	uint64_t iova;
	size_t size;
	long n;			/* iterations, warm-up included */
	struct series map, unmap;
	pthread_barrier_t *start;
};

static void *dma_loop(void *p)
{
	struct dma_job *j = p;
	void *buf = mmap(NULL, j->size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (buf == MAP_FAILED) {
		series_fail(&j->map, "mmap", -errno);
		return NULL;
	}
	memset(buf, 0x5a, j->size);
	if (j->start)
		pthread_barrier_wait(j->start);
	for (long i = 0; i < j->n; i++) {
		uint64_t t0 = now_ns(), t1, t2;
		long r = dma_map(j->container, j->iova, j->size, (uintptr_t)buf,
				 VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);

		t1 = now_ns();
		if (r < 0) {
			series_fail(&j->map, "VFIO_IOMMU_MAP_DMA", r);
			break;
		}
		r = dma_unmap(j->container, j->iova, j->size, 0);
		t2 = now_ns();
		if (r != (long)j->size) {
			series_fail(&j->unmap, "VFIO_IOMMU_UNMAP_DMA", r < 0 ? r : -EIO);
			break;
		}
		if (i >= warmup) {
			series_add(&j->map, t1 - t0);
			series_add(&j->unmap, t2 - t1);
		}
	}
	munmap(buf, j->size);
	return NULL;
}

/* Pools the threads' samples (and first error) into the series s. */
static void pool(struct series *s, const struct series *t)
{
	for (long i = 0; i < t->n; i++)
		series_add(s, t->v[i]);
	if (t->err)
		series_fail(s, t->what, t->err);
}

static void op_dma(struct bench *b, size_t size, int threads, struct series *map,
		   struct series *unmap)
{
	struct dma_job job[NTHREADS];
	pthread_t thr[NTHREADS];
	pthread_barrier_t start;
	int i;

	pthread_barrier_init(&start, NULL, threads);
	for (i = 0; i < threads; i++) {
		job[i] = (struct dma_job){
			.container = b->pci_c,
			.iova = (1ULL << 32) + (uint64_t)i * (64ULL << 20),
			.size = size,
			.n = warmup + iters,
			.start = threads > 1 ? &start : NULL,
		};
		series_init(&job[i].map, map->op, iters);
		series_init(&job[i].unmap, unmap->op, iters);
	}
	if (threads == 1) {
		dma_loop(&job[0]);
	} else {
		for (i = 0; i < threads; i++)
			if (pthread_create(&thr[i], NULL, dma_loop, &job[i]))
				bail("pthread_create");
		for (i = 0; i < threads; i++)
			pthread_join(thr[i], NULL);
	}
	for (i = 0; i < threads; i++) {
		pool(map, &job[i].map);
		pool(unmap, &job[i].unmap);
		free(job[i].map.v);
		free(job[i].unmap.v);
	}
	pthread_barrier_destroy(&start);
}

/* 4: KVM VFIO group add/del; VM create/destroy with the group attached. */
static void op_kvm_group(struct bench *b, struct series *add, struct series *del)
{
	int dev = kvm_vfio_dev(b->anchor, -1);

	if (dev < 0) {
		series_fail(add, "KVM_CREATE_DEVICE", -errno);
		return;
	}
	for (long i = 0; i < warmup + iters; i++) {
		uint64_t t0 = now_ns(), t1, t2;
		long r = kvm_vfio_attr(dev, b->pci_g, KVM_DEV_VFIO_GROUP_ADD);

		t1 = now_ns();
		if (r) {
			series_fail(add, "KVM_DEV_VFIO_GROUP_ADD", r);
			break;
		}
		r = kvm_vfio_attr(dev, b->pci_g, KVM_DEV_VFIO_GROUP_DEL);
		t2 = now_ns();
		if (r) {
			series_fail(del, "KVM_DEV_VFIO_GROUP_DEL", r);
			break;
		}
		if (i >= warmup) {
			series_add(add, t1 - t0);
			series_add(del, t2 - t1);
		}
	}
	close(dev);
}

static void op_vm_cycle(struct bench *b, struct series *s)
{
	long warm = warmup < vm_iters / 10 ? warmup : vm_iters / 10;

	for (long i = 0; i < warm + vm_iters; i++) {
		uint64_t t0 = now_ns();
		int vm = ioctl(b->kvm, KVM_CREATE_VM, 0), dev;

		if (vm < 0) {
			series_fail(s, "KVM_CREATE_VM", -errno);
			return;
		}
		dev = kvm_vfio_dev(vm, b->pci_g);
		if (dev < 0) {
			series_fail(s, "KVM VFIO device with the group", -errno);
			close(vm);
			return;
		}
		close(dev);
		close(vm);	/* the last reference: KVM destroys the VM here */
		if (i >= warm)
			series_add(s, now_ns() - t0);
	}
}

/* 5: release of a KVM VFIO device during a slow open_device(). */
struct opener {
	int gfd;
	const char *name;
	int fd;
	int err;
	uint64_t took;		/* ns in VFIO_GROUP_GET_DEVICE_FD */
};

static void *opener(void *p)
{
	struct opener *o = p;
	uint64_t t0 = now_ns();

	o->fd = ioctl(o->gfd, VFIO_GROUP_GET_DEVICE_FD, o->name);
	o->err = o->fd < 0 ? -errno : 0;
	o->took = now_ns() - t0;
	return NULL;
}

static void op_release(struct bench *b, struct series *s, long ms, long n)
{
	struct opener o = { .gfd = b->mdev_g, .name = b->mdev };
	uint64_t waited = 0, opened = 0;
	pthread_t thr;
	long i;

	if (vtm_set("lock_kvm", 0) || vtm_set("delay_ms", ms)) {
		series_fail(s, "set the test driver's knobs", -errno);
		return;
	}
	for (i = 0; i < n + 1; i++) {
		int dev = kvm_vfio_dev(b->anchor, b->mdev_g);
		long long before = vtm_stat("opens");
		uint64_t t0, t1, ts;

		if (dev < 0) {
			series_fail(s, "KVM VFIO device with the group", -errno);
			break;
		}
		ts = now_ns();
		if (pthread_create(&thr, NULL, opener, &o))
			bail("pthread_create");
		/* Until the open is inside open_device() (counted on entry). */
		while (vtm_stat("opens") == before && now_ns() - ts < 10000000000ULL)
			usleep(50);
		t0 = now_ns();
		close(dev);	/* kvm_device_release() -> vfio_file_set_kvm(NULL) */
		t1 = now_ns();
		pthread_join(thr, NULL);
		if (o.err) {
			series_fail(s, "VFIO_GROUP_GET_DEVICE_FD", o.err);
			break;
		}
		close(o.fd);
		if (i >= 1) {	/* the first round is the warm-up */
			series_add(s, t1 - t0);
			waited += t0 - ts;
			opened += o.took;
		}
	}
	if (vtm_set("delay_ms", 0) || vtm_set("lock_kvm", 1))
		series_fail(s, "reset the test driver's knobs", -errno);
	/* msleep() sleeps whole jiffies, at least one more than asked. */
	if (s->n)
		diag("release_open_%ldms: the open took %.2f ms, the release started %.2f ms after it on average",
		     ms, opened / 1e6 / s->n, waited / 1e6 / s->n);
}

/* ------------------------------------------------------------ one run */

struct release_cfg {
	long ms[8];
	long n[8];
	int count;
};

static void release_cfg(struct release_cfg *rc)
{
	const char *v = getenv("BENCH_RELEASE");
	char buf[128], *tok, *save = NULL;

	rc->count = 0;
	snprintf(buf, sizeof(buf), "%s", v && *v ? v : "1:100,10:50,100:20");
	for (tok = strtok_r(buf, ",", &save); tok && rc->count < 8;
	     tok = strtok_r(NULL, ",", &save)) {
		rc->ms[rc->count] = strtol(tok, NULL, 10);
		rc->n[rc->count] = strchr(tok, ':') ? strtol(strchr(tok, ':') + 1, NULL, 10) : 20;
		rc->count++;
	}
}

/* The operations of one run, in order; the count is fixed for the plan. */
static const struct op ops[] = {
	{ "open_close_pci", NEED_PCI },
	{ "open_close_mdev", NEED_MDEV },
	{ "open_close_pci_vm", NEED_PCI | NEED_KVM },
	{ "open_close_mdev_vm", NEED_MDEV | NEED_KVM },
	{ "get_info", NEED_PCI },
	{ "config_pread", NEED_PCI },
	{ "group_status", NEED_PCI },
	{ "zero_pread", NEED_PCI },
	{ "map_4k", NEED_PCI },
	{ "unmap_4k", NEED_PCI },
	{ "map_2m", NEED_PCI },
	{ "unmap_2m", NEED_PCI },
	{ "map_4k_4t", NEED_PCI },
	{ "unmap_4k_4t", NEED_PCI },
	{ "map_2m_4t", NEED_PCI },
	{ "unmap_2m_4t", NEED_PCI },
	{ "kvm_group_add", NEED_PCI | NEED_KVM },
	{ "kvm_group_del", NEED_PCI | NEED_KVM },
	{ "vm_create_destroy", NEED_PCI | NEED_KVM },
};
#define N_OPS	((int)(sizeof(ops) / sizeof(ops[0])))

static int run_results(void)
{
	struct release_cfg rc;

	release_cfg(&rc);
	return N_OPS + rc.count;
}

/* Index of an operation by name. */
static int op_index(const char *name)
{
	for (int i = 0; i < N_OPS; i++)
		if (!strcmp(ops[i].name, name))
			return i;
	bail("unknown operation %s", name);
}

static void run_ops(const char *mode, int round)
{
	struct series s[N_OPS];
	struct release_cfg rc;
	char names[8][32];
	struct bench b;
	const char *why;
	int i;

	setup(&b);
	diag("%s round %d: PCI %s (group %d), mdev %s (group %d), KVM %s", mode, round,
	     b.no_pci ? "none" : b.bdf, b.pci_group, b.no_mdev ? "none" : b.mdev,
	     b.mdev_group, b.no_kvm ? "none" : "yes");
	for (i = 0; i < N_OPS; i++)
		series_init(&s[i], ops[i].name,
			    !strcmp(ops[i].name, "vm_create_destroy") ? vm_iters :
			    !strncmp(ops[i].name, "open_close_pci", 14) ? pci_iters :
			    strstr(ops[i].name, "_4t") ? iters * NTHREADS : iters);
#define S(name) (&s[op_index(name)])
#define RUNS(name) (!why_not(&b, ops[op_index(name)].needs))
	if (RUNS("open_close_pci"))
		op_open_close(S("open_close_pci"), b.pci_g, b.bdf, pci_iters);
	if (RUNS("open_close_mdev"))
		op_open_close(S("open_close_mdev"), b.mdev_g, b.mdev, iters);
	if (RUNS("open_close_pci_vm"))
		op_open_close_vm(&b, S("open_close_pci_vm"), b.pci_g, b.bdf, pci_iters);
	if (RUNS("open_close_mdev_vm"))
		op_open_close_vm(&b, S("open_close_mdev_vm"), b.mdev_g, b.mdev, iters);
	if (RUNS("get_info"))
		op_dispatch(&b, S("get_info"), S("config_pread"), S("group_status"),
			    S("zero_pread"));
	if (RUNS("map_4k")) {
		op_dma(&b, SZ_4K, 1, S("map_4k"), S("unmap_4k"));
		op_dma(&b, SZ_2M, 1, S("map_2m"), S("unmap_2m"));
		op_dma(&b, SZ_4K, NTHREADS, S("map_4k_4t"), S("unmap_4k_4t"));
		op_dma(&b, SZ_2M, NTHREADS, S("map_2m_4t"), S("unmap_2m_4t"));
	}
	if (RUNS("kvm_group_add"))
		op_kvm_group(&b, S("kvm_group_add"), S("kvm_group_del"));
	if (RUNS("vm_create_destroy"))
		op_vm_cycle(&b, S("vm_create_destroy"));
#undef RUNS
#undef S
	for (i = 0; i < N_OPS; i++) {
		why = why_not(&b, ops[i].needs);
		if (why) {
			skip(why, "%s %s", mode, ops[i].name);
			free(s[i].v);
		} else {
			series_report(&s[i], mode, round);
		}
	}

	release_cfg(&rc);
	for (i = 0; i < rc.count; i++) {
		struct series r;

		snprintf(names[i], sizeof(names[i]), "release_open_%ldms", rc.ms[i]);
		why = why_not(&b, NEED_MDEV | NEED_KVM);
		if (why) {
			skip(why, "%s %s", mode, names[i]);
			continue;
		}
		series_init(&r, names[i], rc.n[i]);
		op_release(&b, &r, rc.ms[i], rc.n[i]);
		series_report(&r, mode, round);
	}
	teardown(&b);
}

/* Runs the operations in a child process (nothing of vfio stays open). */
static void run_ops_child(const char *mode, int round)
{
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		bail("fork");
	if (!pid) {
		run_ops(mode, round);
		fflush(stdout);
		_exit(tap_failed ? 1 : 0);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) > 1)
		bail("%s round %d: the operations died (status %#x)", mode, round, st);
	tap_failed += WEXITSTATUS(st);
	tap_n += run_results();
}

/* ------------------------------------------------------------ op 6: swaps */

/*
 * Trace wrapper: vfio-swap runs $INSMOD, $RMMOD, $MODPROBE and
 * $VFIO_REBIND; those are symlinks to this program, which runs the real
 * one and appends "START END RC DEPTH NAME ARG1" (ns) to $BENCH_TRACE.
 */
static int trace_main(const char *name, int argc, char **argv)
{
	const char *log = getenv("BENCH_TRACE");
	const char *depth = getenv("BENCH_TRACE_DEPTH");
	char real[PATH_MAX], nd[16];
	uint64_t t0, t1;
	int st = 0, rc;
	pid_t pid;
	FILE *f;

	if (!strcmp(name, "vfio-rebind"))
		snprintf(real, sizeof(real), "%s", getenv("BENCH_REBIND") ? getenv("BENCH_REBIND") : "");
	else
		snprintf(real, sizeof(real), "/sbin/%s", name);
	snprintf(nd, sizeof(nd), "%d", depth ? atoi(depth) + 1 : 1);
	t0 = now_ns();
	pid = fork();
	if (!pid) {
		setenv("BENCH_TRACE_DEPTH", nd, 1);
		argv[0] = real;
		execv(real, argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return 126;
	t1 = now_ns();
	rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	f = fopen(log, "a");
	if (f) {
		fprintf(f, "%llu %llu %d %d %s %s\n", (unsigned long long)t0,
			(unsigned long long)t1, rc, depth ? atoi(depth) : 0, name,
			argc > 1 ? argv[1] : "-");
		fclose(f);
	}
	return rc;
}

static const char *scripts(void)
{
	const char *s = getenv("VFIO_CORE_SCRIPTS");

	return s && *s ? s : "/vfio-core/scripts";
}

/* Runs argv with its stdout and stderr appended to log; its exit status. */
static int run_logged(const char *const argv[], const char *log, char *const envp[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (!pid) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		if (envp)
			execve(argv[0], (char *const *)argv, envp);
		else
			execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int vfio_swap(const char *to, const char *log)
{
	char cmd[PATH_MAX], dir[64];
	const char *argv[] = { cmd, to, NULL };

	snprintf(cmd, sizeof(cmd), "%s/vfio-swap", scripts());
	snprintf(dir, sizeof(dir), "to-%s", to);
	argv[1] = dir;
	return run_logged(argv, log, NULL);
}

static int is_ours(void)
{
	char v[32] = "";

	read_file("/sys/module/vfio/version", v, sizeof(v));
	return strcmp(v, "0.3") && v[0];
}

/* Switches the running vfio to mode (stock or ours), untimed. */
static void switch_to(const char *mode)
{
	int want = !strcmp(mode, "ours");

	if (is_ours() == want)
		return;
	if (vfio_swap(mode, SWAP_DIR "/switch.log"))
		bail("vfio-swap to-%s (log %s/switch.log)", mode, SWAP_DIR);
	if (is_ours() != want)
		bail("vfio-swap to-%s left the other vfio loaded", mode);
}

struct devset {
	char pci[8][32];
	int npci;
	char mdev[N_MDEVS][64];
	int nmdev;
};

/* The PCI devices op 6 may use: edu (s390x: virtio-rng) first, then the rest. */
static void find_pci_devices(struct devset *all)
{
	static const unsigned int ids[][2] = {
		{ EDU_VENDOR, EDU_DEVICE }, { E1000E_VENDOR, E1000E_DEVICE },
		{ VRNG_VENDOR, VRNG_DEVICE },
	};
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	all->npci = 0;
	for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
		d = opendir("/sys/bus/pci/devices");
		while (d && (e = readdir(d)) && all->npci < 8) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", e->d_name);
			if (read_num(path) != ids[k][0])
				continue;
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
			if (read_num(path) != ids[k][1])
				continue;
			snprintf(all->pci[all->npci++], sizeof(all->pci[0]), "%s", e->d_name);
		}
		if (d)
			closedir(d);
	}
}

/* A set of k devices: half PCI functions (rounded up), the rest mdevs. */
static int pick_set(const struct devset *all, int k, struct devset *set)
{
	int npci = (k + 1) / 2;

	if (npci > all->npci)
		npci = all->npci;
	if (k - npci > N_MDEVS)
		npci = k - N_MDEVS;
	if (npci > all->npci || npci < 0)
		return -1;
	memset(set, 0, sizeof(*set));
	for (int i = 0; i < npci; i++)
		snprintf(set->pci[i], sizeof(set->pci[i]), "%s", all->pci[i]);
	set->npci = npci;
	set->nmdev = k - npci;
	for (int i = 0; i < set->nmdev; i++)
		mdev_uuid(i + 1, set->mdev[i], sizeof(set->mdev[i]));
	return 0;
}

/* Exactly set's devices on vfio: PCI ones bound with vfio-rebind, mdevs created. */
static int apply_set(const struct devset *set)
{
	char rebind[PATH_MAX], uuid[64], drv[64];
	const char *argv[] = { rebind, "bind", NULL, NULL };

	snprintf(rebind, sizeof(rebind), "%s/vfio-rebind", scripts());
	for (int i = 0; i < N_MDEVS; i++) {
		mdev_uuid(i + 1, uuid, sizeof(uuid));
		if (i < set->nmdev) {
			int r = mdev_create(uuid);

			if (r && r != -EEXIST)
				return r;
		} else if (mdev_group(uuid) >= 0 && mdev_remove(uuid)) {
			return -EBUSY;
		}
	}
	for (int i = 0; i < set->npci; i++) {
		pci_driver(set->pci[i], drv, sizeof(drv));
		if (!strcmp(drv, "vfio-pci"))
			continue;
		argv[2] = set->pci[i];
		if (run_logged(argv, SWAP_DIR "/setup.log", NULL))
			return -EIO;
	}
	return 0;
}

/* Every device of set bound to its vfio driver again. */
static int set_bound(const struct devset *set)
{
	char drv[64], path[PATH_MAX];

	for (int i = 0; i < set->npci; i++) {
		pci_driver(set->pci[i], drv, sizeof(drv));
		if (strcmp(drv, "vfio-pci"))
			return 0;
	}
	for (int i = 0; i < set->nmdev; i++) {
		snprintf(path, sizeof(path), "%s/%s/driver", MDEV_DEVICES, set->mdev[i]);
		if (link_name(path, drv, sizeof(drv)))
			return 0;
	}
	return 1;
}

/* swap_open open DEV...: every device of set opens. */
static int set_opens(const struct devset *set)
{
	const char *argv[2 + 8 + N_MDEVS + 1];
	char helper[64];
	int n = 0;

	snprintf(helper, sizeof(helper), "/tests/swap_open");
	argv[n++] = helper;
	argv[n++] = "open";
	for (int i = 0; i < set->npci; i++)
		argv[n++] = set->pci[i];
	for (int i = 0; i < set->nmdev; i++)
		argv[n++] = set->mdev[i];
	argv[n] = NULL;
	return run_logged(argv, SWAP_DIR "/open.log", NULL) == 0;
}

struct steps {
	uint64_t save0, save1, rm0, rm1, ins0, ins1, mp0, mp1, rs0, rs1;
};

/* The step times of one traced swap from the trace file. */
static int read_trace(const char *path, struct steps *st)
{
	unsigned long long a, b;
	char name[32], arg[256];
	int rc, depth;
	FILE *f = fopen(path, "r");

	memset(st, 0, sizeof(*st));
	if (!f)
		return -1;
	while (fscanf(f, "%llu %llu %d %d %31s %255s", &a, &b, &rc, &depth, name, arg) == 6) {
		if (depth)
			continue;	/* run by a traced program itself */
		if (!strcmp(name, "vfio-rebind") && !strcmp(arg, "save")) {
			st->save0 = a, st->save1 = b;
		} else if (!strcmp(name, "vfio-rebind") && !strcmp(arg, "restore")) {
			if (!st->rs0)
				st->rs0 = a;
			st->rs1 = b;
		} else if (!strcmp(name, "rmmod")) {
			if (!st->rm0)
				st->rm0 = a;
			st->rm1 = b;
		} else if (!strcmp(name, "insmod")) {
			if (!st->ins0)
				st->ins0 = a;
			st->ins1 = b;
		} else if (!strcmp(name, "modprobe") && arg[0] != '-') {
			/* the reloads, not a query (--show-depends in the checks) */
			if (!st->mp0)
				st->mp0 = a;
			st->mp1 = b;
		}
	}
	fclose(f);
	return 0;
}

static long long span(uint64_t a, uint64_t b)
{
	return a && b ? (long long)(b - a) : -1;
}

/* One timed swap to dir with set's devices; prints its "# W" line. */
static int timed_swap(const char *dir, const struct devset *set, int k, int iter)
{
	const char *names[] = { "insmod", "rmmod", "modprobe", "vfio-rebind" };
	char trace[128], link[128], rebind[PATH_MAX], swap[PATH_MAX], to[16];
	const char *argv[] = { swap, to, NULL };
	char *envp[16];
	char envbuf[8][PATH_MAX + 32];
	uint64_t t0, t1, t2, deadline;
	struct steps st;
	int n = 0, rc, opened = 0;

	snprintf(trace, sizeof(trace), SWAP_DIR "/trace");
	unlink(trace);
	mkdir(SWAP_DIR "/bin", 0755);
	snprintf(rebind, sizeof(rebind), "%s/vfio-rebind", scripts());
	snprintf(swap, sizeof(swap), "%s/vfio-swap", scripts());
	snprintf(to, sizeof(to), "to-%s", dir);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(link, sizeof(link), SWAP_DIR "/bin/%s", names[i]);
		unlink(link);
		if (symlink("/tests/bench", link))
			bail("symlink %s", link);
	}
	snprintf(envbuf[0], sizeof(envbuf[0]), "INSMOD=" SWAP_DIR "/bin/insmod");
	snprintf(envbuf[1], sizeof(envbuf[1]), "RMMOD=" SWAP_DIR "/bin/rmmod");
	snprintf(envbuf[2], sizeof(envbuf[2]), "MODPROBE=" SWAP_DIR "/bin/modprobe");
	snprintf(envbuf[3], sizeof(envbuf[3]), "VFIO_REBIND=" SWAP_DIR "/bin/vfio-rebind");
	snprintf(envbuf[4], sizeof(envbuf[4]), "BENCH_REBIND=%s", rebind);
	snprintf(envbuf[5], sizeof(envbuf[5]), "BENCH_TRACE=%s", trace);
	snprintf(envbuf[6], sizeof(envbuf[6]), "PATH=/sbin:/bin:/usr/sbin:/usr/bin");
	for (n = 0; n < 7; n++)
		envp[n] = envbuf[n];
	envp[n] = NULL;

	t0 = now_ns();
	rc = run_logged(argv, SWAP_DIR "/swap.log", envp);
	t1 = now_ns();
	if (rc) {
		diag("vfio-swap %s exited %d (log %s/swap.log)", to, rc, SWAP_DIR);
		return -1;
	}
	/* Downtime ends when every device is bound again and opens. */
	deadline = t1 + 30000000000ULL;
	while (now_ns() < deadline) {
		if (set_bound(set) && set_opens(set)) {
			opened = 1;
			break;
		}
		usleep(1000);
	}
	t2 = now_ns();
	if (!opened) {
		diag("after vfio-swap %s the devices did not open within 30 s (log %s/open.log)",
		     to, SWAP_DIR);
		return -1;
	}
	read_trace(trace, &st);
	printf("# W %s %d %d total=%llu check=%lld save=%lld unload=%lld load=%lld deps=%lld restore=%lld reopen=%llu\n",
	       dir, k, iter, (unsigned long long)(t2 - t0), span(t0, st.save0),
	       span(st.save0, st.save1), span(st.rm0, st.rm1), span(st.ins0, st.ins1),
	       span(st.mp0, st.mp1), span(st.rs0, st.rs1), (unsigned long long)(t2 - t1));
	fflush(stdout);
	return 0;
}

static int swap_sets(int *k, int max)
{
	const char *v = getenv("BENCH_SWAP_SETS");
	char buf[64], *tok, *save = NULL;
	int n = 0;

	if (!v)
		v = "1,4,8";
	snprintf(buf, sizeof(buf), "%s", v);
	for (tok = strtok_r(buf, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
		if (atoi(tok) > 0)
			k[n++] = atoi(tok);
	return n;
}

static void op_swap(void)
{
	long reps = env_long("BENCH_SWAP_ITERS", 5);
	struct devset all, set;
	int ks[8], nk, i, r, fo, fs;

	nk = swap_sets(ks, 8);
	if (!nk)
		return;
	switch_to("stock");
	if (modprobe("vfio_pci") || modprobe("vfio_iommu_type1"))
		bail("modprobe vfio_pci vfio_iommu_type1");
	modprobe("vfio_test_mdev");
	find_pci_devices(&all);
	diag("op 6: %d PCI function(s) available, %d test mdevs", all.npci,
	     module_loaded("vfio_test_mdev") ? N_MDEVS : 0);
	for (i = 0; i < nk; i++) {
		if (pick_set(&all, ks[i], &set) ||
		    (set.nmdev && !module_loaded("vfio_test_mdev"))) {
			skip("not enough devices in this guest", "swap with %d devices", ks[i]);
			skip("not enough devices in this guest", "swap back with %d devices", ks[i]);
			continue;
		}
		if (apply_set(&set))
			bail("set up %d devices for the swap (log %s/setup.log)", ks[i], SWAP_DIR);
		diag("op 6: %d devices: %d PCI (%s%s), %d mdevs", ks[i], set.npci, set.pci[0],
		     set.npci > 1 ? ", ..." : "", set.nmdev);
		/* Alternating, from stock: to-ours, to-stock, to-ours, ... */
		fo = fs = 0;
		for (r = 0; r < reps; r++) {
			switch_to("stock");
			fo += timed_swap("ours", &set, ks[i], r) < 0;
			switch_to("ours");
			fs += timed_swap("stock", &set, ks[i], r) < 0;
		}
		ok(!fo, "swap to-ours with %d devices, %ld times (%d failed)", ks[i], reps, fo);
		ok(!fs, "swap to-stock with %d devices, %ld times (%d failed)", ks[i], reps, fs);
		switch_to("stock");
	}
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	const char *mode, *base = basename(argv[0]);
	long rounds;
	int nsets, ks[8], per_round;

	if (!strcmp(base, "insmod") || !strcmp(base, "rmmod") || !strcmp(base, "modprobe") ||
	    !strcmp(base, "vfio-rebind"))
		return trace_main(base, argc, argv);
	load_conf();
	setvbuf(stdout, NULL, _IOLBF, 0);
	arch_s390x = is_s390x();
	iters = env_long("BENCH_ITERS", 2000);
	warmup = env_long("BENCH_WARMUP", 200);
	vm_iters = env_long("BENCH_VM_ITERS", 200);
	pci_iters = env_long("BENCH_PCI_ITERS", 500);
	rounds = env_long("BENCH_ROUNDS", 1);
	mode = getenv("VFIO_MODE") ? getenv("VFIO_MODE") : "";
	mkdir(SWAP_DIR, 0755);
	per_round = run_results();

	if (!strcmp(mode, "stock") || !strcmp(mode, "ours")) {
		tap_plan(per_round);
		diag("bench: %s, %ld iterations after %ld warm-up, VMs %ld", mode, iters, warmup,
		     vm_iters);
		run_ops_child(mode, 1);
		return tap_done();
	}
	if (strcmp(mode, "swap"))
		bail("VFIO_MODE must be stock, ours or swap, not '%s'", mode);
	/* The swap boot: bash needs /dev/fd, vfio-rebind the machine id. */
	if (access("/dev/fd", F_OK))
		symlink("/proc/self/fd", "/dev/fd");
	if (access("/etc/machine-id", F_OK))
		write_file("/etc/machine-id", "5a1d0ec75a0b40008000000000c0ffee\n");
	nsets = swap_sets(ks, 8);
	tap_plan((int)(2 * rounds * per_round + 2 * nsets));
	diag("bench: swap boot, %ld round(s) of stock and ours, %ld iterations after %ld warm-up",
	     rounds, iters, warmup);
	for (long r = 1; r <= rounds; r++) {
		/* stock ours, ours stock, ...: a linear drift cancels out */
		const char *first = r % 2 ? "stock" : "ours";
		const char *second = r % 2 ? "ours" : "stock";

		switch_to(first);
		run_ops_child(first, (int)r);
		switch_to(second);
		run_ops_child(second, (int)r);
	}
	op_swap();
	return tap_done();
}
