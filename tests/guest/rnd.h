/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * rnd.h: what the randomized guest tests (stress.c, fuzz.c) share on top of
 * tap.h: a seeded PRNG (splitmix64: one 64-bit state, so a run is
 * reproduced from its seed alone), knobs from the environment, the kernel
 * log since a point in time (/dev/kmsg), module reference counts, the test
 * driver's mdevs, and KVM's VM directories in debugfs.
 * Header-only, included by one program each, after tap.h.
 */
#ifndef RND_H
#define RND_H

#include <sys/mount.h>

#define MDEV_PARENT	"/sys/class/mdev_bus/vfio_test_mdev"
#define MDEV_DEVICES	"/sys/bus/mdev/devices"
#define VTM_PARAMS	"/sys/module/vfio_test_mdev/parameters"
#define VTM_STATUS	"/sys/kernel/debug/vfio_test_mdev/status"
#define KVM_DEBUGFS	"/sys/kernel/debug/kvm"

struct rnd {
	uint64_t s;
};

static inline uint64_t rnd_next(struct rnd *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A number in [0, n); n > 0. */
static inline uint64_t rnd_below(struct rnd *r, uint64_t n)
{
	return rnd_next(r) % n;
}

/* True with probability per_mille / 1000. */
static inline int rnd_chance(struct rnd *r, unsigned int per_mille)
{
	return rnd_below(r, 1000) < per_mille;
}

/* An independent stream for worker n of a run seeded with seed. */
static inline void rnd_init(struct rnd *r, uint64_t seed, uint64_t n)
{
	r->s = seed ^ (n * 0xd1b54a32d192ed03ULL);
	rnd_next(r);
}

static inline long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 0) : def;
}

static inline uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The kernel log from now on: a /dev/kmsg reader at its end. */
static inline int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

static inline int kmsg_bad(const char *msg)
{
	static const char *const bad[] = {
		"WARNING:", "BUG:", "Oops", "lockdep",
		"possible circular locking", "possible recursive locking",
		"blocked for more than", "general protection fault",
		"Kernel panic", "UBSAN:", "KASAN:", "list_add corruption",
		"list_del corruption", "refcount_t:", "stack-protector",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (strstr(msg, bad[i]))
			return 1;
	return 0;
}

/*
 * The next record logged since kmsg_open(): its message (in rec, of size
 * size, cut at its first newline), or NULL when there is none yet.
 */
static inline char *kmsg_next(int fd, char *rec, size_t size)
{
	char *msg, *nl;
	ssize_t n;

	if (fd < 0)
		return NULL;
	do
		n = read(fd, rec, size - 1);
	while (n < 0 && errno == EPIPE);	/* overwritten records: go on */
	if (n <= 0)
		return NULL;
	rec[n] = '\0';
	msg = strchr(rec, ';');
	msg = msg ? msg + 1 : rec;
	nl = strchr(msg, '\n');
	if (nl)
		*nl = '\0';
	return msg;
}

/*
 * Reads the records logged since kmsg_open() and prints up to max_diag of
 * the bad ones (and, with verbose, every record) as diagnostics; returns
 * how many were bad.
 */
static inline int kmsg_scan(int fd, int max_diag, int verbose)
{
	char rec[8192], *msg;
	int bad = 0;

	if (fd < 0)
		return -1;
	while ((msg = kmsg_next(fd, rec, sizeof(rec)))) {
		if (kmsg_bad(msg)) {
			if (bad++ < max_diag)
				diag("dmesg: %s", msg);
		} else if (verbose) {
			diag("dmesg: %s", msg);
		}
	}
	return bad;
}

static inline int module_loaded(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return !access(path, F_OK);
}

/* A module's reference count, -1 when it is not loaded. */
static inline long mod_refcnt(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", name);
	return read_num(path);
}

/* modprobe [-r] NAME..., quietly; its exit status. */
static inline int modprobe_q(int remove, const char *name)
{
	const char *argv[] = { "modprobe", "-q", remove ? "-r" : name,
			       remove ? name : NULL, NULL };

	return run_cmd(argv);
}

static inline void mount_debugfs(void)
{
	if (access(KVM_DEBUGFS, F_OK) && access("/sys/kernel/debug/vfio_test_mdev", F_OK))
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
}

/* The number of VM directories in KVM's debugfs (-1: no such directory). */
static inline int kvm_vm_dirs(void)
{
	DIR *d = opendir(KVM_DEBUGFS);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && e->d_type == DT_DIR)
			n++;
	closedir(d);
	return n;
}

static inline int vtm_set(const char *knob, long val)
{
	char path[128], v[32];

	snprintf(path, sizeof(path), "%s/%s", VTM_PARAMS, knob);
	snprintf(v, sizeof(v), "%ld", val);
	return write_file(path, v);
}

/* Loads a module unless it is loaded; bails out if it does not load. */
static inline void need_module(const char *name)
{
	if (!module_loaded(name) && modprobe_q(0, name))
		bail("modprobe %s", name);
}

/* Sets a knob of the test driver; bails out if it cannot. */
static inline void vtm_knob(const char *knob, long val)
{
	if (vtm_set(knob, val))
		bail("cannot set %s/%s", VTM_PARAMS, knob);
}

/* The number after "key " in a file of "key value" lines, -1 if none. */
static inline long long key_value(const char *path, const char *key)
{
	char buf[2048], *p;
	size_t klen = strlen(key);

	if (read_file(path, buf, sizeof(buf)))
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (!strncmp(p, key, klen) && p[klen] == ' ')
			return strtoll(p + klen + 1, NULL, 10);
	return -1;
}

/* The value of key in the test driver's status file, -1 if unreadable. */
static inline long long vtm_stat(const char *key)
{
	return key_value(VTM_STATUS, key);
}

/* Creates the test driver's mdev uuid: 0, or -errno (-EEXIST: it exists). */
static inline int mdev_create(const char *uuid)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/mdev_supported_types/platform-test/create",
		 MDEV_PARENT);
	return write_file(path, uuid);
}

static inline int mdev_remove(const char *uuid)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s/remove", MDEV_DEVICES, uuid);
	return write_file(path, "1");
}

/* The IOMMU group number of mdev uuid, -1 if it does not exist. */
static inline int mdev_group(const char *uuid)
{
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/%s", MDEV_DEVICES, uuid);
	return group_of(dir);
}

#endif /* RND_H */
