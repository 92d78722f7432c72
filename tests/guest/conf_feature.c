// SPDX-License-Identifier: GPL-2.0-only
/*
 * conf_feature: VFIO_DEVICE_FEATURE with a device that implements the
 * core's features, differential.
 *
 * No device in the guests implements migration or DMA logging, so the core's
 * handling of those features (the argument checks, the migration state
 * steps, the data fd, the range tree, the dirty bitmap walk) is reached only
 * with the test driver (tests/kmod) set to implement them: its "features"
 * knob gives new instances mig_ops (with and without P2P) and log_ops, which
 * step through vfio_mig_get_next_state() as real drivers do and report what
 * they were given in debugfs. Expected values are what stock 6.1 returns.
 * Covers: every core feature (and a driver one) under every combination of
 * GET/SET/PROBE, an unknown flag and argsz around the payload size; the
 * migration arcs a driver is asked to take for every transition, the data fd
 * of STOP_COPY/RESUMING, errors of the driver and faults on the payload in
 * each direction; DMA logging start (range count, alignment, overflow,
 * overlap, the page size the driver reports back, a fault undoing the
 * start), stop, and report (page size and range checks, faults on the
 * bitmap, the bits a driver marks, unaligned bitmaps, a walk over two
 * windows, a window that cannot be pinned, driver errors); and vfio's line
 * in the kernel log at load.
 * Guest test: static, TAP on stdout.
 */
#include "tap.h"
#include "rnd.h"
#include <stdbool.h>

/*
 * The plan: how many checks (skips included) this test makes on each
 * architecture. Update with the count the harness reports ("planned N
 * subtests, ran M") when checks are added or removed.
 */
#define CHECKS_AMD64	190
#define CHECKS_S390X	190

#define UUID_P2P	"c0f0c0f0-0000-4000-8000-00000000fea7"
#define UUID_BASE	"c0f0c0f0-0000-4000-8000-00000000fea8"
#define VTM_FEATURES	"/sys/kernel/debug/vfio_test_mdev/features"

#define G	VFIO_DEVICE_FEATURE_GET
#define S	VFIO_DEVICE_FEATURE_SET
#define P	VFIO_DEVICE_FEATURE_PROBE
#define HDR	sizeof(struct vfio_device_feature)

enum { ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P };

static long pgsz;

/* The value of key in the driver's features file; -1 if there is none. */
static long long feat(const char *key)
{
	return key_value(VTM_FEATURES, key);
}

/* The arcs the driver's last migration_set_state() took ("-": none) */
static const char *arcs(void)
{
	static char buf[2048];
	char *p = NULL, *e;

	if (!read_file(VTM_FEATURES, buf, sizeof(buf)))
		p = strstr(buf, "mig_arcs ");
	if (!p)
		return "?";
	p += strlen("mig_arcs ");
	e = strchr(p, '\n');
	if (e)
		*e = '\0';
	return p;
}

/*
 * Two pages: the first read-write, the second as asked. at_end(len): a
 * buffer of len bytes that ends where the second page begins.
 */
static unsigned char *pages;

static void second_page(int prot)
{
	if (mprotect(pages + pgsz, pgsz, prot))
		bail("mprotect");
}

static void *at_end(size_t len)
{
	return pages + pgsz - len;
}

/*
 * VFIO_DEVICE_FEATURE with a header at hdr and len bytes of payload from
 * data (none if NULL) behind it; the payload comes back in data.
 */
static long feature_at(int d, struct vfio_device_feature *hdr, uint32_t flags,
		       uint32_t argsz, void *data, size_t len)
{
	long r;

	hdr->argsz = argsz;
	hdr->flags = flags;
	if (data)
		memcpy(hdr->data, data, len);
	r = io(d, VFIO_DEVICE_FEATURE, hdr);
	if (data)
		memcpy(data, hdr->data, len);
	return r;
}

static long feature(int d, uint32_t flags, uint32_t argsz, void *data, size_t len)
{
	static uint64_t buf[512];

	memset(buf, 0, sizeof(buf));
	return feature_at(d, (struct vfio_device_feature *)buf, flags, argsz, data, len);
}

static long mig_set(int d, uint32_t state, int *fd)
{
	struct vfio_device_feature_mig_state m = { .device_state = state, .data_fd = 1234 };
	long r = feature(d, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | S, HDR + sizeof(m), &m, sizeof(m));

	*fd = m.data_fd;
	return r;
}

static long mig_get(int d)
{
	struct vfio_device_feature_mig_state m = { .device_state = 77, .data_fd = 1234 };
	long r = feature(d, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | G, HDR + sizeof(m), &m, sizeof(m));

	if (r)
		return r;
	return m.data_fd == -1 ? (long)m.device_state : -1000 - m.data_fd;
}

static int open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* fd is the driver's migration data file, close-on-exec; closes it */
static int is_data_fd(int fd)
{
	char path[64], link[128];
	ssize_t n;
	int cloexec;

	if (fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = '\0';
	cloexec = fcntl(fd, F_GETFD) & FD_CLOEXEC;
	close(fd);
	return cloexec && !strcmp(link, "anon_inode:[vtm-migration]");
}

/* ----------------------------------------------- the flags x argsz matrix */

/*
 * The core's features: which directions, how large a payload, and whether
 * the device has the ops. Stock 6.1's order of checks: header (argsz, unknown
 * flags, GET+SET without PROBE), the ops (-ENOTTY), then vfio_check_feature().
 */
struct core_feature {
	uint32_t id, dirs, size;
	const char *name;
};

static const struct core_feature core[] = {
	{ VFIO_DEVICE_FEATURE_MIGRATION, G, 8, "MIGRATION" },
	{ VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, G | S, 8, "MIG_DEVICE_STATE" },
	{ VFIO_DEVICE_FEATURE_DMA_LOGGING_START, S, 24, "DMA_LOGGING_START" },
	{ VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, S, 0, "DMA_LOGGING_STOP" },
	{ VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, G, 32, "DMA_LOGGING_REPORT" },
	{ VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, G | S, 0, "LOW_POWER_ENTRY (driver's)" },
	{ 0xffff, G | S, 0, "feature 0xffff (driver's)" },
};

/* 1: the core does the GET or SET; else its answer */
static long model(const struct core_feature *f, bool has_ops, uint32_t flags, uint32_t argsz)
{
	uint32_t gs = flags & (G | S);

	if (argsz < HDR || (flags & ~(VFIO_DEVICE_FEATURE_MASK | G | S | P)))
		return -EINVAL;
	if (gs == (G | S) && !(flags & P))
		return -EINVAL;
	if (!has_ops)
		return -ENOTTY;
	if (gs & ~f->dirs)
		return -EINVAL;
	if (flags & P)
		return 0;
	if (!gs || argsz - HDR < f->size)
		return -EINVAL;
	return 1;
}

/* A payload that makes the GET or SET succeed */
static void valid_payload(uint32_t id, uint64_t *pl, uint64_t *range, uint64_t *bits)
{
	struct vfio_device_feature_mig_state mig = { .device_state = RUNNING };	/* no step */
	struct vfio_device_feature_dma_logging_control ctl = {
		.page_size = 4096, .num_ranges = 1, .ranges = (uintptr_t)range,
	};
	struct vfio_device_feature_dma_logging_report rep = {
		.iova = 0x100000, .length = 0x10000, .page_size = 4096, .bitmap = (uintptr_t)bits,
	};

	memset(pl, 0, 64);
	range[0] = 0x100000;
	range[1] = 0x10000;
	switch (id) {
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
		memcpy(pl, &mig, sizeof(mig));
		break;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
		memcpy(pl, &ctl, sizeof(ctl));
		break;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		memcpy(pl, &rep, sizeof(rep));
		break;
	}
}

static void check_matrix(int d, const char *dev, bool mig, bool log)
{
	static const uint32_t flagsets[] = { 0, G, S, P, G | S, G | P, S | P, G | S | P, P | (1u << 19), G | (1u << 31) };
	uint64_t pl[8], range[2], bits[4];
	unsigned int fi, fl, a, bad = 0, n = 0;

	for (fi = 0; fi < sizeof(core) / sizeof(core[0]); fi++) {
		const struct core_feature *f = &core[fi];
		bool has = f->id == VFIO_DEVICE_FEATURE_MIGRATION ||
			   f->id == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE ? mig :
			   f->id >= VFIO_DEVICE_FEATURE_DMA_LOGGING_START &&
			   f->id <= VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT ? log : false;
		uint32_t sizes[] = { 0, HDR - 1, HDR, HDR + f->size - 1, HDR + f->size, HDR + f->size + 64 };

		for (fl = 0; fl < sizeof(flagsets) / sizeof(flagsets[0]); fl++) {
			for (a = 0; a < sizeof(sizes) / sizeof(sizes[0]); a++) {
				long want = model(f, has, flagsets[fl], sizes[a]), got;

				if (want == 1)
					want = 0;
				valid_payload(f->id, pl, range, bits);
				got = feature(d, f->id | flagsets[fl], sizes[a], pl, sizeof(pl));
				n++;
				if (got != want && bad++ < 10)
					diag("  %s: %s flags %#x argsz %u: got %s, stock gives %s", dev, f->name,
					     flagsets[fl], sizes[a], errname(got), errname(want));
			}
		}
	}
	ok(!bad, "%s: every core feature x GET/SET/PROBE/unknown flag x argsz: %u of %u as stock",
	   dev, n - bad, n);
	if (log)
		feature(d, VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP | S, HDR, NULL, 0);
}

/* ------------------------------------------------------------- migration */

/* A SET to state to, the arcs the driver is asked to take, and a data fd or not */
struct mig_step {
	uint32_t to;
	const char *arcs;
	int fd;
};

static void mig_walk(int d, const char *dev, const struct mig_step *walk, unsigned int n)
{
	unsigned int i;
	int fd;

	for (i = 0; i < n; i++) {
		expect(mig_set(d, walk[i].to, &fd), 0, "%s: MIG_DEVICE_STATE set %u", dev, walk[i].to);
		ok(!strcmp(arcs(), walk[i].arcs), "%s: ... the driver steps %s (%s)", dev, walk[i].arcs, arcs());
		if (walk[i].fd)
			ok(is_data_fd(fd), "%s: ... data_fd is the driver's file, close-on-exec (%d)", dev, fd);
		else
			ok(fd == -1, "%s: ... data_fd -1 (%d)", dev, fd);
	}
}

static void check_migration(int d, const char *dev, bool p2p)
{
	struct vfio_device_feature_migration mf = { .flags = 99 };
	struct vfio_device_feature *hdr;
	int fd, fds;

	expect(feature(d, VFIO_DEVICE_FEATURE_MIGRATION | G, HDR + 8, &mf, sizeof(mf)), 0, "%s: MIGRATION get", dev);
	expect(mf.flags, VFIO_MIGRATION_STOP_COPY | (p2p ? VFIO_MIGRATION_P2P : 0), "%s: ... the device's flags", dev);
	second_page(PROT_READ);
	hdr = at_end(HDR);
	expect(feature_at(d, hdr, VFIO_DEVICE_FEATURE_MIGRATION | G, HDR + 8, NULL, 0), -EFAULT,
	       "%s: MIGRATION get into a read-only page", dev);
	second_page(PROT_READ | PROT_WRITE);

	expect(mig_get(d), RUNNING, "%s: MIG_DEVICE_STATE get: RUNNING, data_fd -1", dev);
	if (p2p) {
		static const struct mig_step walk[] = {
			{ STOP, "2>5,5>1", 0 }, { STOP_COPY, "1>3", 1 }, { RESUMING, "3>1,1>4", 1 },
			{ RUNNING, "4>1,1>5,5>2", 0 }, { RUNNING_P2P, "2>5", 0 },
			{ STOP_COPY, "5>1,1>3", 1 }, { RUNNING_P2P, "3>1,1>5", 0 },
			{ RESUMING, "5>1,1>4", 1 }, { RUNNING, "4>1,1>5,5>2", 0 },
			{ RESUMING, "2>5,5>1,1>4", 1 }, { STOP_COPY, "4>1,1>3", 1 },
			{ RUNNING, "3>1,1>5,5>2", 0 }, { RUNNING, "-", 0 },
		};

		mig_walk(d, dev, walk, sizeof(walk) / sizeof(walk[0]));
	} else {
		static const struct mig_step walk[] = {
			{ STOP, "2>1", 0 }, { RUNNING, "1>2", 0 }, { STOP_COPY, "2>1,1>3", 1 },
			{ RESUMING, "3>1,1>4", 1 }, { RUNNING, "4>1,1>2", 0 },
		};

		mig_walk(d, dev, walk, sizeof(walk) / sizeof(walk[0]));
		expect(mig_set(d, RUNNING_P2P, &fd), -EINVAL, "%s: set RUNNING_P2P without P2P", dev);
		ok(fd == -1, "%s: ... data_fd -1 reported with the error (%d)", dev, fd);
	}
	expect(mig_set(d, ERROR, &fd), -EINVAL, "%s: set ERROR", dev);
	ok(fd == -1, "%s: ... data_fd -1 (%d)", dev, fd);
	expect(mig_set(d, 6, &fd), -EINVAL, "%s: set state 6 (unknown)", dev);
	expect(mig_set(d, ~0u, &fd), -EINVAL, "%s: set state ~0", dev);
	expect(mig_get(d), RUNNING, "%s: still RUNNING", dev);

	/* the driver's errors, with data_fd -1 reported along */
	ok(!vtm_set("mig_error", -EIO), "mig_error=-EIO");
	expect(mig_set(d, STOP, &fd), -EIO, "%s: set fails in the driver", dev);
	ok(fd == -1, "%s: ... data_fd -1 reported with the error (%d)", dev, fd);
	ok(!vtm_set("mig_error", 0), "mig_error=0");
	ok(!vtm_set("mig_get_error", -EAGAIN), "mig_get_error=-EAGAIN");
	expect(mig_get(d), -EAGAIN, "%s: get fails in the driver", dev);
	ok(!vtm_set("mig_get_error", 0), "mig_get_error=0");

	/* faults on the payload, each way */
	second_page(PROT_NONE);
	hdr = at_end(HDR);
	expect(feature_at(d, hdr, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | S, HDR + 8, NULL, 0), -EFAULT,
	       "%s: set with the payload unreadable", dev);
	expect(feature_at(d, hdr, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | P | S, HDR + 8, NULL, 0), 0,
	       "%s: probe does not read the payload", dev);
	second_page(PROT_READ);
	expect(feature_at(d, hdr, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | G, HDR + 8, NULL, 0), -EFAULT,
	       "%s: get into a read-only payload", dev);
	/* a read-only payload page holds device_state 0 (ERROR): make it STOP */
	second_page(PROT_READ | PROT_WRITE);
	*(uint32_t *)(pages + pgsz) = STOP;
	second_page(PROT_READ);
	expect(feature_at(d, hdr, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | S, HDR + 8, NULL, 0), -EFAULT,
	       "%s: set STOP with a read-only payload: done, not reported", dev);
	ok(!strcmp(arcs(), p2p ? "2>5,5>1" : "2>1"), "%s: ... the driver did step (%s)", dev, arcs());
	second_page(PROT_READ | PROT_WRITE);
	*(uint32_t *)(pages + pgsz) = STOP_COPY;
	second_page(PROT_READ);
	fds = open_fds();
	expect(feature_at(d, hdr, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | S, HDR + 8, NULL, 0), -EFAULT,
	       "%s: set STOP_COPY with a read-only payload", dev);
	expect(open_fds(), fds, "%s: ... no data fd left behind", dev);
	second_page(PROT_READ | PROT_WRITE);
	expect(mig_get(d), STOP_COPY, "%s: ... in STOP_COPY", dev);
	expect(mig_set(d, RUNNING, &fd), 0, "%s: back to RUNNING", dev);
}

/* ----------------------------------------------------------- DMA logging */

static long log_start(int d, uint64_t page_size, uint32_t n, const uint64_t *ranges, uint64_t *page_out)
{
	struct vfio_device_feature_dma_logging_control c = {
		.page_size = page_size, .num_ranges = n, .ranges = (uintptr_t)ranges,
	};
	long r = feature(d, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | S, HDR + sizeof(c), &c, sizeof(c));

	if (page_out)
		*page_out = c.page_size;
	return r;
}

static long log_stop(int d)
{
	return feature(d, VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP | S, HDR, NULL, 0);
}

static long log_report(int d, uint64_t iova, uint64_t length, uint64_t page_size, void *bitmap)
{
	struct vfio_device_feature_dma_logging_report rep = {
		.iova = iova, .length = length, .page_size = page_size, .bitmap = (uintptr_t)bitmap,
	};

	return feature(d, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT | G, HDR + sizeof(rep), &rep, sizeof(rep));
}

/*
 * Bit n of a bitmap at map, as the kernel sets it: in the u64 words of the
 * page, counted from the byte map points to (on big-endian s390x an
 * unaligned bitmap is not the u64 array the uAPI describes, on stock too).
 */
static int bit(const void *map, uint64_t n)
{
	uint64_t a = (uintptr_t)map * 8 + n;

	return (*(const uint64_t *)(uintptr_t)(a / 64 * 8) >> (a % 64)) & 1;
}

static void check_log_start(int d, const char *dev)
{
	static uint64_t r[2 * 257];
	uint64_t page = 0, stops;
	unsigned int i;
	struct vfio_device_feature *hdr;

	expect(log_start(d, 4096, 0, r, NULL), -EINVAL, "%s: LOGGING_START with no range", dev);
	expect(log_start(d, 4096, 257, r, NULL), -E2BIG, "%s: ... with 257 ranges", dev);
	expect(log_start(d, 4096, 1, NULL, NULL), -EFAULT, "%s: ... ranges at NULL", dev);
	r[0] = 0x1001; r[1] = 0x1000;
	expect(log_start(d, 4096, 1, r, NULL), -EINVAL, "%s: ... an unaligned iova", dev);
	r[0] = 0x1000; r[1] = 0x1001;
	expect(log_start(d, 4096, 1, r, NULL), -EINVAL, "%s: ... an unaligned length", dev);
	r[0] = 0x3000; r[1] = 0x3000;
	expect(log_start(d, 0x3000, 1, r, NULL), -EINVAL, "%s: ... page size 0x3000 (IS_ALIGNED() takes it as a mask)", dev);
	r[0] = 0x10000; r[1] = 0x1000;
	expect(log_start(d, 0x1000, 1, r, NULL), 0, "%s: ... one range", dev);
	r[0] = -0x1000ULL; r[1] = 0x2000;
	expect(log_start(d, 4096, 1, r, NULL), -EOVERFLOW, "%s: ... a range past 2^64", dev);
	r[0] = 0x1000; r[1] = 0x3000; r[2] = 0x3000; r[3] = 0x1000;
	expect(log_start(d, 4096, 2, r, NULL), -EINVAL, "%s: ... overlapping ranges", dev);
	r[0] = 0; r[1] = 0x1000; r[2] = 0x2000; r[3] = 0x1000; r[4] = 0x1000; r[5] = 0x1000; r[6] = 0x2000; r[7] = 0x1000;
	expect(log_start(d, 4096, 4, r, NULL), -EINVAL, "%s: ... the fourth overlaps the second", dev);
	for (i = 0; i < 256; i++) {
		r[2 * i] = (uint64_t)i << 20;
		r[2 * i + 1] = 0x1000ULL * (1 + i % 16);
	}
	expect(log_start(d, 4096, 256, r, &page), 0, "%s: ... 256 ranges", dev);
	expect(feat("log_nnodes"), 256, "%s: ... the driver is given 256 nodes", dev);
	expect(feat("log_nodes"), 256, "%s: ... all in its tree", dev);
	expect(feat("log_max_last"), (255LL << 20) + 0x10000 - 1, "%s: ... the last one ending right", dev);
	expect(page, 4096, "%s: ... page size reported back as asked", dev);
	expect(log_stop(d), 0, "%s: LOGGING_STOP", dev);

	r[0] = 0x200000; r[1] = 0x4000; r[2] = 0x100000; r[3] = 0x2000; r[4] = 0x104000; r[5] = 0x1000;
	ok(!vtm_set("log_page_size", 8192), "log_page_size=8192");
	expect(log_start(d, 4096, 3, r, &page), 0, "%s: LOGGING_START with 3 ranges", dev);
	expect(feat("log_node_sum"), 0x200000 + 0x203fff + 0x100000 + 0x101fff + 0x104000 + 0x104fff,
	       "%s: ... the driver sees each range as [start, last]", dev);
	expect(feat("log_min_start"), 0x100000, "%s: ... lowest start", dev);
	expect(feat("log_page_size"), 4096, "%s: ... page size given to the driver", dev);
	expect(page, 8192, "%s: ... page size the driver chose, reported back", dev);
	expect(feat("logging"), 1, "%s: ... logging", dev);
	expect(log_stop(d), 0, "%s: LOGGING_STOP", dev);
	expect(feat("logging"), 0, "%s: ... stopped", dev);
	ok(!vtm_set("log_page_size", 0), "log_page_size=0");

	ok(!vtm_set("log_error", -EBUSY), "log_error=-EBUSY");
	expect(log_start(d, 4096, 3, r, &page), -EBUSY, "%s: LOGGING_START fails in the driver", dev);
	expect(log_stop(d), -EBUSY, "%s: LOGGING_STOP fails in the driver", dev);
	ok(!vtm_set("log_error", 0), "log_error=0");

	/* the page size cannot be reported back: the start is undone */
	stops = feat("log_stops");
	second_page(PROT_READ | PROT_WRITE);
	hdr = at_end(HDR);
	{
		struct vfio_device_feature_dma_logging_control *c = (void *)(pages + pgsz);

		memset(c, 0, sizeof(*c));
		c->page_size = 4096;
		c->num_ranges = 3;
		c->ranges = (uintptr_t)r;
	}
	second_page(PROT_READ);
	expect(feature_at(d, hdr, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | S, HDR + 24, NULL, 0), -EFAULT,
	       "%s: LOGGING_START with a read-only control", dev);
	expect(feat("log_stops"), stops + 1, "%s: ... the driver was stopped again", dev);
	expect(feat("logging"), 0, "%s: ... not logging", dev);
	second_page(PROT_NONE);
	expect(feature_at(d, hdr, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | S, HDR + 24, NULL, 0), -EFAULT,
	       "%s: LOGGING_START with an unreadable control", dev);
	second_page(PROT_READ | PROT_WRITE);
}

static void check_log_report(int d, const char *dev)
{
	/* 2 MiB of bitmap is one window with 4 KiB pages and 8-byte pointers */
	size_t wbytes = pgsz / sizeof(void *) * pgsz, maplen = wbytes + 4 * pgsz;
	unsigned char *map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t wspan = (uint64_t)wbytes * 8 * 4096, n, i;
	long reads;
	int good;

	if (map == MAP_FAILED)
		bail("mmap the bitmap");
	expect(log_report(d, 0x100000, 0x40000, 0, map), -EINVAL, "%s: LOGGING_REPORT page size 0", dev);
	expect(log_report(d, 0x100000, 0x40000, 2048, map), -EINVAL, "%s: ... page size 2048", dev);
	expect(log_report(d, 0x100000, 0x40000, 4097, map), -EINVAL, "%s: ... page size 4097", dev);
	expect(log_report(d, 0x100000, 0x40000, 0x3000, map), -EINVAL, "%s: ... page size 0x3000", dev);
	expect(log_report(d, -0x1000ULL, 0x2000, 4096, map), -EOVERFLOW, "%s: ... a range past 2^64", dev);
	expect(log_report(d, -0x1000ULL, 0x1000, 4096, map), -EOVERFLOW, "%s: ... a range to 2^64", dev);
	expect(log_report(d, 0x100000, 0x40000, 4096, NULL), -EFAULT, "%s: ... bitmap at NULL", dev);
	second_page(PROT_READ);
	expect(log_report(d, 0x100000, 0x40000, 4096, pages + pgsz), -EFAULT, "%s: ... a read-only bitmap", dev);
	second_page(PROT_READ | PROT_WRITE);

	/* the whole range dirty: 64 pages, 64 bits */
	reads = feat("log_reads");
	memset(map, 0, 64);
	expect(log_report(d, 0x100000, 0x40000, 4096, map), 0, "%s: LOGGING_REPORT 64 pages", dev);
	expect(feat("log_reads"), reads + 1, "%s: ... one window", dev);
	expect(feat("read_last_iova"), 0x100000, "%s: ... the driver reads from the start", dev);
	expect(feat("read_last_length"), 0x40000, "%s: ... all of it", dev);
	ok(*(uint64_t *)map == ~0ULL && !map[8], "%s: ... 64 bits set, none beyond (%#llx)", dev,
	   (unsigned long long)*(uint64_t *)map);

	/* every third page, a length that ends inside a page, from a bitmap's odd byte */
	ok(!vtm_set("dirty_step", 3 * 4096), "dirty_step=3 pages");
	memset(map, 0, 64);
	expect(log_report(d, 0x7000, 40 * 4096 + 1, 4096, map + 1), 0, "%s: LOGGING_REPORT 40 pages + 1 byte at bitmap + 1", dev);
	expect(feat("read_last_length"), 40 * 4096 + 1, "%s: ... the driver gets the length asked", dev);
	for (good = !map[0], i = 0; i < 48; i++)
		good &= bit(map + 1, i) == (i <= 40 && i % 3 == 0);
	ok(good, "%s: ... bits 0, 3, ..., 39 set, none else (%02x %02x %02x %02x %02x %02x)", dev,
	   map[0], map[1], map[2], map[3], map[4], map[5]);

	/* two windows: 64 GiB and 3 more pages, marks every GiB */
	ok(!vtm_set("dirty_step", 1UL << 30), "dirty_step=1 GiB");
	n = wspan + 3 * 4096;
	reads = feat("log_reads");
	expect(log_report(d, 0, n, 4096, map), 0, "%s: LOGGING_REPORT over %llu GiB and 3 pages", dev,
	       (unsigned long long)(wspan >> 30));
	expect(feat("log_reads"), reads + 2, "%s: ... two windows", dev);
	expect(feat("read_last_iova"), (long long)wspan, "%s: ... the second starts after %llu GiB", dev,
	       (unsigned long long)(wspan >> 30));
	expect(feat("read_last_length"), 3 * 4096, "%s: ... and is 3 pages long", dev);
	for (good = 1, i = 0; i < (wspan >> 30); i++)
		good &= bit(map, i << 18);
	good &= bit(map, wspan >> 12);
	ok(good, "%s: ... a bit every GiB, in both windows", dev);

	/* the same from an unaligned bitmap: the first window one byte short */
	memset(map, 0, maplen);
	reads = feat("log_reads");
	expect(log_report(d, 0, n, 4096, map + 1), 0, "%s: LOGGING_REPORT over 2 windows at bitmap + 1", dev);
	expect(feat("log_reads"), reads + 2, "%s: ... two windows", dev);
	expect(feat("read_last_iova"), (long long)(wspan - 8 * 4096), "%s: ... the first one byte (8 pages) short", dev);
	expect(feat("read_last_length"), 11 * 4096, "%s: ... the second 11 pages", dev);

	/* the second window cannot be pinned: the first is reported, then -EFAULT */
	if (mprotect(map + wbytes, maplen - wbytes, PROT_READ))
		bail("mprotect");
	reads = feat("log_reads");
	expect(log_report(d, 0, n, 4096, map), -EFAULT, "%s: LOGGING_REPORT whose second window is read-only", dev);
	expect(feat("log_reads"), reads + 1, "%s: ... after the first window", dev);
	mprotect(map, maplen, PROT_READ | PROT_WRITE);

	ok(!vtm_set("dirty_step", 0), "dirty_step=0");
	ok(!vtm_set("log_error", -EIO), "log_error=-EIO");
	expect(log_report(d, 0x100000, 0x40000, 4096, map), -EIO, "%s: LOGGING_REPORT fails in the driver", dev);
	ok(!vtm_set("log_error", 0), "log_error=0");
	munmap(map, maplen);
}

/* ----------------------------------------------------------------- setup */

/*
 * vfio's line in the kernel log at load: stock's, or ours naming itself,
 * its version and the fix (the packaging's end-to-end test greps for it).
 */
static void check_load_line(void)
{
	const char *want = mode_is_ours() ?
		"vfio-core 1.0: vfio core with the vfio/KVM lock-order fix" :
		"VFIO - User Level meta-driver version: 0.3";
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK), found = 0;
	char rec[2048];
	ssize_t n;

	/* From the start of the buffer: the record of the load is there */
	while (fd >= 0 && !found) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		rec[n] = '\0';
		found = strstr(rec, want) != NULL;
	}
	if (fd >= 0)
		close(fd);
	ok(found, "the kernel log has \"%s\"", want);
}

/* An instance with these features, opened: the device fd, or -1 */
static int open_instance(const char *uuid, int features, int *c, int *g)
{
	const char *what = "";
	int ret, group, r;
	long d;

	ok(!vtm_set("features", features), "features=%d", features);
	ret = mdev_create(uuid);
	ok(!ret, "create mdev %s (%s)", uuid, errname(ret));
	ok(!vtm_set("features", 0), "features=0");
	if (ret)
		return -1;
	group = mdev_group(uuid);
	r = group_attach(group, c, g, &what);
	if (!ok(!r, "group %d in a type1 container%s%s", group, r ? ": failed at " : "", r ? what : ""))
		return -1;
	d = io(*g, VFIO_GROUP_GET_DEVICE_FD, uuid);
	expect(d, EXPECT_FD, "GET_DEVICE_FD(%s)", uuid);
	return d;
}

static void close_instance(const char *uuid, int d, int c, int g)
{
	if (d >= 0)
		close(d);
	if (g >= 0)
		close(g);
	if (c >= 0)
		close(c);
	ok(!mdev_remove(uuid), "remove mdev %s", uuid);
}

int main(void)
{
	int c = -1, g = -1, d;

	/* The test driver is the device every check goes through. */
	if (modprobe("vfio_test_mdev"))
		tap_skip_all("vfio_test_mdev does not load (not built for this kernel?)");
	if (access(VTM_PARAMS "/features", F_OK))
		tap_skip_all("this vfio_test_mdev has no features knob");
	conf_start(CHECKS_AMD64, CHECKS_S390X);
	pgsz = getpagesize();
	pages = mmap(NULL, 2 * pgsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED)
		bail("mmap");
	ok(modprobe("vfio_iommu_type1") == 0, "modprobe vfio_iommu_type1");
	check_flavour();
	check_load_line();

	/* migration with P2P, and DMA logging */
	d = open_instance(UUID_P2P, 7, &c, &g);
	if (d >= 0) {
		check_matrix(d, "mig+p2p+log", true, true);
		check_migration(d, "mig+p2p", true);
		check_log_start(d, "log");
		check_log_report(d, "log");
	}
	close_instance(UUID_P2P, d, c, g);

	/* migration without P2P, no logging */
	d = open_instance(UUID_BASE, 1, &c, &g);
	if (d >= 0) {
		check_matrix(d, "mig", true, false);
		check_migration(d, "mig", false);
	}
	close_instance(UUID_BASE, d, c, g);
	return tap_done();
}
