// SPDX-License-Identifier: GPL-2.0-only
/*
 * dma_race: a container's IOMMU backend used while the detach of the
 * container's last group frees it (debug lane: KASAN names what happens).
 *
 * Each round puts a group (a vfio_test_mdev device's) alone in a fresh type1
 * container, then races, on two threads of a child process:
 *   dma      (default) VFIO_IOMMU_MAP_DMA + VFIO_IOMMU_UNMAP_DMA in a loop
 *            on the container fd against close() of the group fd, whose
 *            release detaches the container's last group and so releases
 *            the backend (kfree of its vfio_iommu). Stock 6.1 hands these
 *            ioctls to the backend without the container's lock: the ioctl
 *            uses the freed vfio_iommu.
 *   release  (argument "release"; tests/guest/release_race.sh) the last
 *            close() of the container fd against the same close() of the
 *            group fd: the container's release calls the backend's
 *            notify() on its iommu_data, which stock 6.1 reads without the
 *            lock too (what the stress test's closerace operation found).
 * The thread's side starts after a random spin, so the two meet at varying
 * points. Before each round the container gets DMA_RACE_MAPS (default 1024)
 * more mappings of 4 KiB: detaching its last group unmaps them all
 * (vfio_iommu_unmap_unpin_all()) holding the backend's lock, so the other
 * side, which read the backend's pointer without the container's lock,
 * waits on that lock for a long while and takes it just as the backend is
 * freed. That is plain uAPI use, no knob of the kernel's: it turns a
 * window of a few instructions into one of milliseconds. Rounds go on for DMA_RACE_SECS (default 20) seconds, or until the
 * kernel taints itself (a report). The parent only watches: after a report
 * stock may oops and leave the child stuck on a lock the oopsed thread
 * held, so no progress for DMA_RACE_STALL (10) seconds ends the race too.
 * Then the kernel log is read:
 *   stock  passes only if KASAN reported a use-after-free in the backend
 *          (declared to the harness as "# expect-splat: kasan"; an oops
 *          that follows it in the same run is declared too, any other
 *          report fails the test)
 *   ours   passes only if the kernel reported nothing at all, nothing got
 *          stuck, and the two sides really overlapped in some rounds
 * Knobs (environment): DMA_RACE_SECS, DMA_RACE_STALL, DMA_RACE_MAPS,
 * DMA_RACE_SEED (time-based if unset).
 * Output is TAP on stdout.
 */
#include "tap.h"
#include "rnd.h"
#include "kreport.h"
#include <pthread.h>
#include <stdbool.h>

#define MDEV_UUID	"5a1d0ec7-0000-4000-8000-00000000d4a0"
#define NTESTS		6
#define IOVA		0x100000ULL
#define IOVA_FILL	0x10000000ULL
#define TAINT_ALLOWED	(4096 | 8192)	/* out-of-tree, unsigned */

/* Shared between the racing child and the watching parent. */
struct race {
	bool release;		/* the "release" race, else "dma" */
	int ctr;		/* dma: the container fd; release: its dup */
	void *buf;		/* dma: the page mapped */
	unsigned int spin;	/* this round's spin before acting */
	int round;		/* bumped by the child to start a round */
	int done;		/* the thread finished its round */
	double t_close[2];	/* release: when its close() began, ended */
	double t_io[2][2];	/* dma: the last two ioctl rounds' start, end */
	int stop;		/* the parent: no more rounds */
	int rounds, overlaps;
	long maps_fill;		/* mappings added before each round */
	uint64_t calls, maps, einval, other;
	int other_err;
	char err[128];		/* the child gave up: why */
};

static struct race *R;

static void spin(unsigned int n)
{
	for (volatile unsigned int i = 0; i < n; i++)
		;
}

/* dma: MAP/UNMAP until the container has no backend (-EINVAL). */
static void dma_side(void)
{
	long r;

	for (;;) {
		R->t_io[0][0] = R->t_io[1][0];
		R->t_io[0][1] = R->t_io[1][1];
		R->t_io[1][0] = now_s();
		r = dma_map(R->ctr, IOVA, 4096, (uint64_t)(uintptr_t)R->buf,
			    VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
		if (!r) {
			R->maps++;
			r = dma_unmap(R->ctr, IOVA, 4096, 0);
			r = r < 0 ? r : 0;
		}
		R->t_io[1][1] = now_s();
		R->calls++;
		if (r == -EINVAL) {
			R->einval++;
			return;
		}
		if (r) {
			R->other++;
			R->other_err = -r;
			return;
		}
	}
}

/* The child's second thread: its side of each round. */
static void *side(void *unused)
{
	int seen = 0, round;

	(void)unused;
	for (;;) {
		while ((round = __atomic_load_n(&R->round, __ATOMIC_ACQUIRE)) == seen)
			;
		if (round < 0)
			return NULL;
		seen = round;
		spin(R->spin);
		if (R->release) {
			/* the container file's last close */
			R->t_close[0] = now_s();
			close(R->ctr);
			R->t_close[1] = now_s();
		} else {
			dma_side();
		}
		__atomic_store_n(&R->done, 1, __ATOMIC_RELEASE);
	}
}

/* The child: rounds until the parent stops it; its exit status. */
static int child(int group, uint64_t seed)
{
	const char *what;
	int grp, ctr;
	double c0, c1;
	struct rnd rnd;
	pthread_t thr;

	rnd_init(&rnd, seed, 0);
	if (pthread_create(&thr, NULL, side, NULL)) {
		snprintf(R->err, sizeof(R->err), "pthread_create failed");
		return 1;
	}
	while (!__atomic_load_n(&R->stop, __ATOMIC_ACQUIRE)) {
		if (group_attach(group, &ctr, &grp, &what)) {
			snprintf(R->err, sizeof(R->err), "round %d: %s: %s", R->rounds,
				 what, strerror(errno));
			break;
		}
		for (long i = 0; i < R->maps_fill; i++)
			if (dma_map(ctr, IOVA_FILL + i * 4096, 4096, (uint64_t)(uintptr_t)R->buf,
				    VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) {
				snprintf(R->err, sizeof(R->err), "round %d: MAP_DMA %ld of %ld: %s",
					 R->rounds, i, R->maps_fill, strerror(errno));
				break;
			}
		if (R->err[0])
			break;
		R->spin = rnd_below(&rnd, 20000);
		R->done = 0;
		memset(R->t_io, 0, sizeof(R->t_io));
		if (R->release) {
			R->ctr = dup(ctr);
			close(ctr);
		} else {
			R->ctr = ctr;
		}
		__atomic_store_n(&R->round, R->rounds + 1, __ATOMIC_RELEASE);
		spin(rnd_below(&rnd, 20000));
		/* The release of the group: the last group leaves the container. */
		c0 = now_s();
		close(grp);
		c1 = now_s();
		while (!__atomic_load_n(&R->done, __ATOMIC_ACQUIRE))
			usleep(100);
		/* The two sides overlapped: a close() or ioctl ran during ours. */
		if (R->release ? R->t_close[0] < c1 && c0 < R->t_close[1] :
		    (R->t_io[0][0] < c1 && c0 < R->t_io[0][1]) ||
		    (R->t_io[1][0] < c1 && c0 < R->t_io[1][1]))
			R->overlaps++;
		if (!R->release)
			close(ctr);
		__atomic_add_fetch(&R->rounds, 1, __ATOMIC_RELEASE);
		if (R->other)
			break;
	}
	__atomic_store_n(&R->round, -1, __ATOMIC_RELEASE);
	pthread_join(thr, NULL);
	return R->err[0] || R->other;
}

/*
 * Stock: a racing MAP_DMA that took the freed backend's lock goes on to map
 * through the freed backend's domain list (KASAN's free metadata overwrote
 * it) and oopses. That oops, after the use-after-free and in the same run,
 * is its consequence: declared to the harness as expected too.
 */
static void declare_aftermath(const char *log)
{
	const char *uaf = kr_find(log, KR_KASAN, 0);

	if (uaf && (strstr(uaf, "general protection fault") || strstr(uaf, "Oops") ||
		    strstr(uaf, "BUG: unable to handle"))) {
		diag("an oops follows the use-after-free: the racing ioctl went on with the freed backend");
		printf("# expect-splat: oops\n");
	}
}

/*
 * Stock, after the use-after-free: what the racing ioctls did with the freed
 * backend can leave its objects unreferenced (a mapping put into the freed
 * tree, the memory of a task that oopsed), and kmemleak finds that at the
 * end of the boot, where it would be taken for a leak of its own (seen in
 * about half the runs). Scan as the harness does, twice (objects must be
 * 5 s old): what it finds is the use-after-free's aftermath, shown here and
 * declared; it is then cleared, so that the end-of-boot scans report only
 * what comes after it.
 */
static void declare_leaks(void)
{
	static char buf[4096];
	const char *kl = "/sys/kernel/debug/kmemleak";

	if (access(kl, F_OK))
		return;
	sleep(6);
	if (write_file(kl, "scan"))
		return;
	sleep(5);
	if (write_file(kl, "scan"))
		return;
	if (read_file(kl, buf, sizeof(buf)) || !strstr(buf, "unreferenced object"))
		return;
	diag("kmemleak, scanned after the use-after-free; the first lines:");
	for (char *l = strtok(buf, "\n"), *end = buf + 1000; l && l < end; l = strtok(NULL, "\n"))
		diag("  | %s", l);
	printf("# expect-splat: kmemleak\n");
	write_file(kl, "clear");
}

static long taint(void)
{
	return read_num("/proc/sys/kernel/tainted");
}

int main(int argc, char **argv)
{
	double secs = env_long("DMA_RACE_SECS", 20), stall = env_long("DMA_RACE_STALL", 10);
	uint64_t seed = env_u64("DMA_RACE_SEED", 0);
	int kfd, group, st = 0, last = 0, n;
	double t0, t, tlast;
	bool ours, stuck = false, exited = false;
	const char *race;
	long taint0;
	char *log;
	pid_t pid;

	ours = kr_start(NTESTS, "kasan");
	R = mmap(NULL, sizeof(*R), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (R == MAP_FAILED)
		bail("mmap");
	R->release = argc > 1 && !strcmp(argv[1], "release");
	R->maps_fill = env_long("DMA_RACE_MAPS", 1024);
	race = R->release ? "the container's last close" : "MAP_DMA/UNMAP_DMA";
	if (!seed)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	diag("%s racing the detach of the container's last group (%ld mappings), %.0fs, DMA_RACE_SEED=%llu",
	     race, R->maps_fill, secs, (unsigned long long)seed);
	kfd = kmsg_open();

	/* 1: setup */
	if (!kr_kasan_on())
		bail("this kernel has no KASAN (not the debug kernel)");
	if (!kr_armed())
		bail("the kernel reported before the test (KASAN reports once a boot)");
	mount_debugfs();
	need_module("vfio_iommu_type1");
	need_module("vfio_test_mdev");
	check_flavour();
	if (mdev_create(MDEV_UUID) || (group = mdev_group(MDEV_UUID)) < 0)
		bail("create mdev %s with an IOMMU group", MDEV_UUID);
	R->buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (R->buf == MAP_FAILED)
		bail("mmap");
	taint0 = taint();
	ok(1, "setup: KASAN on, no report so far, mdev %s in /dev/vfio/%d, taint %ld",
	   MDEV_UUID, group, taint0);

	/* 2: the race, watched */
	pid = fork();
	if (pid < 0)
		bail("fork");
	if (!pid)
		_exit(child(group, seed));
	t0 = tlast = now_s();
	for (;;) {
		usleep(100000);
		t = now_s();
		if (waitpid(pid, &st, WNOHANG) == pid) {
			exited = true;
			break;
		}
		n = __atomic_load_n(&R->rounds, __ATOMIC_ACQUIRE);
		if (n != last) {
			last = n;
			tlast = t;
		}
		if (t - t0 >= secs || (taint() & ~taint0 & ~TAINT_ALLOWED))
			__atomic_store_n(&R->stop, 1, __ATOMIC_RELEASE);
		if (t - tlast >= stall) {
			stuck = true;
			break;
		}
	}
	diag("%d rounds in %.1fs, %d with both sides at once; %llu ioctl rounds, %llu maps, %llu EINVAL, %llu other (%s)%s%s",
	     R->rounds, tlast - t0, R->overlaps, (unsigned long long)R->calls,
	     (unsigned long long)R->maps, (unsigned long long)R->einval,
	     (unsigned long long)R->other, R->other ? strerror(R->other_err) : "-",
	     R->err[0] ? "; " : "", R->err);
	if (stuck)
		diag("no round finished for %.0fs: the race is stuck (pid %d left behind)",
		     stall, (int)pid);
	if (ours)
		ok(exited && WIFEXITED(st) && !WEXITSTATUS(st) && R->overlaps > 0,
		   "ours: %d rounds, %d of them overlapping, %s", R->rounds, R->overlaps,
		   stuck ? "STUCK" : exited && WIFEXITED(st) && !WEXITSTATUS(st) ?
		   "no error" : "an error");
	else
		ok(R->rounds > 0 || stuck, "stock: the race ran (%d rounds%s)", R->rounds,
		   stuck ? ", then got stuck" : "");

	/* 3: the kernel's reports */
	usleep(500000);
	log = kr_read(kfd);
	if (!log)
		bail("cannot read the kernel log");
	kr_verdict(log, ours, KR_KASAN, race);
	if (!ours)
		declare_aftermath(log);

	/* 4: the report is about the backend's data */
	if (ours) {
		ok((taint() & ~taint0 & ~TAINT_ALLOWED) == 0, "ours: no new taint (%ld, before %ld)",
		   taint(), taint0);
	} else {
		const char *p = kr_find(log, KR_KASAN, 0);

		ok(p && kr_names(p, "use-after-free", 1) &&
		   kr_names(p, "vfio_iommu_type1", 40),
		   "stock: a use-after-free in vfio_iommu_type1's data, after %d rounds",
		   R->rounds);
	}
	free(log);

	/* 5: cleanup */
	if (stuck) {
		if (!ours)
			declare_leaks();
		skip("stuck tasks hold the device; the harness powers off", "cleanup");
		return tap_done();
	}
	n = mdev_remove(MDEV_UUID);
	ok(!n, "cleanup: mdev removed (%s)", n ? strerror(-n) : "ok");
	if (!ours)
		declare_leaks();
	return tap_done();
}
