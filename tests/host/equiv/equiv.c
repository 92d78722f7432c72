// SPDX-License-Identifier: GPL-2.0-only
/*
 * equiv - stock 6.1's vfio core and ours give the same answers, on every input
 *
 * tests/host/equiv_test.sh compiles the pure parts of Debian's
 * drivers/vfio/vfio_main.c and iova_bitmap.c with their names prefixed
 * stock_, the same parts of src/ prefixed ours_, both against kstub.h, and
 * links them with this program. Each test feeds both the same inputs and
 * compares everything observable: return values, output arguments, WARNs,
 * the bytes they leave in buffers, and for the IOVA bitmap every pin request,
 * every callback with its range, and what ends up in the user's bitmap.
 * No device in the test guests implements migration or DMA logging, so this
 * is where those paths are proved against stock. TAP on stdout.
 */
#include <stdio.h>
#include <stdarg.h>
#include "kstub.h"
#include "linux/iova_bitmap.h"

unsigned long kstub_warns, kstub_allocs, kstub_fail_alloc;
unsigned long kstub_user_base, kstub_user_len;
unsigned char *kstub_user_mem;
long kstub_pinned;

/* Both sides' entry points */
#define SIDE_DECLS(p)							\
int p##vfio_mig_get_next_state(struct vfio_device *device,		\
			       enum vfio_device_mig_state cur_fsm,	\
			       enum vfio_device_mig_state new_fsm,	\
			       enum vfio_device_mig_state *next_fsm);	\
int p##vfio_set_irqs_validate_and_prepare(struct vfio_irq_set *hdr,	\
					  int num_irqs, int max_irq_type,\
					  size_t *data_size);		\
struct vfio_info_cap_header *p##vfio_info_cap_add(struct vfio_info_cap *caps,\
						  size_t size, u16 id,	\
						  u16 version);		\
void p##vfio_info_cap_shift(struct vfio_info_cap *caps, size_t offset);\
int p##vfio_info_add_capability(struct vfio_info_cap *caps,		\
				struct vfio_info_cap_header *cap,	\
				size_t size);				\
struct iova_bitmap *p##iova_bitmap_alloc(unsigned long iova, size_t length,\
					 unsigned long page_size,	\
					 u64 *data);			\
void p##iova_bitmap_free(struct iova_bitmap *bitmap);			\
int p##iova_bitmap_for_each(struct iova_bitmap *bitmap, void *opaque,	\
			    iova_bitmap_fn_t fn);			\
void p##iova_bitmap_set(struct iova_bitmap *bitmap, unsigned long iova,	\
			size_t length);

SIDE_DECLS(stock_)
SIDE_DECLS(ours_)

struct side {
	const char *name;
	int (*mig_next)(struct vfio_device *, enum vfio_device_mig_state,
			enum vfio_device_mig_state, enum vfio_device_mig_state *);
	int (*irqs)(struct vfio_irq_set *, int, int, size_t *);
	struct vfio_info_cap_header *(*cap_add)(struct vfio_info_cap *, size_t, u16, u16);
	void (*cap_shift)(struct vfio_info_cap *, size_t);
	int (*add_cap)(struct vfio_info_cap *, struct vfio_info_cap_header *, size_t);
	struct iova_bitmap *(*bm_alloc)(unsigned long, size_t, unsigned long, u64 *);
	void (*bm_free)(struct iova_bitmap *);
	int (*bm_for_each)(struct iova_bitmap *, void *, iova_bitmap_fn_t);
	void (*bm_set)(struct iova_bitmap *, unsigned long, size_t);
};

#define SIDE(p) {							\
	#p, p##vfio_mig_get_next_state, p##vfio_set_irqs_validate_and_prepare,\
	p##vfio_info_cap_add, p##vfio_info_cap_shift,			\
	p##vfio_info_add_capability, p##iova_bitmap_alloc,		\
	p##iova_bitmap_free, p##iova_bitmap_for_each, p##iova_bitmap_set }

static const struct side sides[2] = { SIDE(stock_), SIDE(ours_) };

/* ------------------------------------------------------------------ TAP */
static int tests, failures;

static void result(bool pass, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", pass ? "" : "not ", ++tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures += !pass;
}

/* A case that differs: shown for the first few of each test */
static unsigned long mismatches;

static void mismatch(const char *fmt, ...)
{
	va_list ap;

	if (++mismatches > 5)
		return;
	printf("# differs: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static u64 rnd_state;

static u64 rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* --------------------------------------------------- migration arcs */
static void test_mig(void)
{
	static const unsigned int fixed[] = {
		~0U, ~0U - 1, ~0U - 2, ~0U - 3, 0x80000001U, 0x10U, 0x13U,
	};
	unsigned long cases = 0;
	unsigned int f, cur, new;

	mismatches = 0;
	for (f = 0; f < 16 + ARRAY_SIZE(fixed); f++) {
		struct vfio_device dev = {
			.migration_flags = f < 16 ? f : fixed[f - 16],
		};

		for (cur = 0; cur < 10; cur++) {
			for (new = 0; new < 10; new++) {
				unsigned int c = cur == 9 ? ~0U : cur;
				unsigned int n = new == 9 ? ~0U : new;
				enum vfio_device_mig_state next[2] = { 0xdead, 0xdead };
				unsigned long warns[2];
				int ret[2], s;

				for (s = 0; s < 2; s++) {
					kstub_warns = 0;
					ret[s] = sides[s].mig_next(&dev, c, n, &next[s]);
					warns[s] = kstub_warns;
				}
				cases++;
				if (ret[0] != ret[1] || next[0] != next[1] ||
				    warns[0] != warns[1])
					mismatch("flags %#x %u -> %u: stock %d next %#x warns %lu, ours %d next %#x warns %lu",
						 dev.migration_flags, c, n, ret[0], next[0], warns[0],
						 ret[1], next[1], warns[1]);
			}
		}
	}
	result(!mismatches, "vfio_mig_get_next_state: %lu (flags, cur, new) cases, %lu differ",
	       cases, mismatches);
}

/* A full walk from every state to every other, on ours: only driver arcs */
static bool mig_arc_ok(unsigned int flags, unsigned int a, unsigned int b)
{
	bool p2p = flags & VFIO_MIGRATION_P2P;
	unsigned int x = a < b ? a : b, y = a < b ? b : a;

#define ARC(s, t) (x == VFIO_DEVICE_STATE_##s && y == VFIO_DEVICE_STATE_##t)
	if (ARC(STOP, STOP_COPY) || ARC(STOP, RESUMING))
		return true;
	if (p2p)
		return ARC(STOP, RUNNING_P2P) || ARC(RUNNING, RUNNING_P2P);
	return ARC(STOP, RUNNING);
#undef ARC
}

static void test_mig_walks(void)
{
	unsigned int flags, cur, new;
	unsigned long walks = 0;

	mismatches = 0;
	for (flags = 1; flags <= 3; flags += 2) {
		struct vfio_device dev = { .migration_flags = flags };

		for (cur = 1; cur <= 5; cur++) {
			for (new = 1; new <= 5; new++) {
				enum vfio_device_mig_state at = cur, next;
				int steps = 0;

				if ((cur == 5 || new == 5) && !(flags & VFIO_MIGRATION_P2P))
					continue;
				walks++;
				while (at != new && steps++ < 8) {
					if (sides[1].mig_next(&dev, at, new, &next) ||
					    !mig_arc_ok(flags, at, next)) {
						mismatch("flags %#x %u -> %u: step %u -> %u", flags, cur,
							 new, at, next);
						break;
					}
					at = next;
				}
				if (at != new)
					mismatch("flags %#x %u -> %u: stuck at %u", flags, cur, new, at);
			}
		}
	}
	result(!mismatches, "ours walks %lu transitions along driver arcs only", walks);
}

/* --------------------------------------------------------- SET_IRQS */
static void test_irqs(void)
{
	static const u32 argszs[] = { 0, 19, 20, 21, 23, 24, 28, 36, 52, 4096, U32_MAX };
	static const u32 idxs[] = { 0, 1, 3, 4, 5, U32_MAX };
	static const u32 starts[] = { 0, 1, 2, 3, 7, U32_MAX - 1, U32_MAX };
	static const u32 counts[] = { 0, 1, 2, 4, 8, 0x7fffffff, U32_MAX - 1, U32_MAX };
	static const int nums[] = { 0, 1, 4, 8, INT_MAX, -1 };
	static const int maxes[] = { 0, 1, 4, 9, -1 };
	static const u32 hiflags[] = { 0, 1U << 6, 1U << 31 };
	unsigned int a, fl, h, i, st, c, n, m, d;
	unsigned long cases = 0;

	mismatches = 0;
	for (a = 0; a < ARRAY_SIZE(argszs); a++)
	for (fl = 0; fl < 64; fl++)
	for (h = 0; h < ARRAY_SIZE(hiflags); h++)
	for (i = 0; i < ARRAY_SIZE(idxs); i++)
	for (st = 0; st < ARRAY_SIZE(starts); st++)
	for (c = 0; c < ARRAY_SIZE(counts); c++)
	for (n = 0; n < ARRAY_SIZE(nums); n++)
	for (m = 0; m < ARRAY_SIZE(maxes); m++)
	for (d = 0; d < 2; d++) {
		struct vfio_irq_set hdr = {
			.argsz = argszs[a], .flags = fl | hiflags[h],
			.index = idxs[i], .start = starts[st], .count = counts[c],
		};
		size_t size[2] = { 12345, 12345 };
		int ret[2], s;

		for (s = 0; s < 2; s++)
			ret[s] = sides[s].irqs(&hdr, nums[n], maxes[m], d ? &size[s] : NULL);
		cases++;
		if (ret[0] != ret[1] || size[0] != size[1])
			mismatch("argsz %u flags %#x index %u start %u count %u num %d max %d%s: stock %d/%zu, ours %d/%zu",
				 hdr.argsz, hdr.flags, hdr.index, hdr.start, hdr.count, nums[n],
				 maxes[m], d ? "" : " (no data_size)", ret[0], size[0], ret[1], size[1]);
	}
	result(!mismatches, "vfio_set_irqs_validate_and_prepare: %lu cases, %lu differ",
	       cases, mismatches);
}

/* ------------------------------------------------- info capabilities */

/* What one side did with a script of additions: compared byte for byte */
struct cap_trace {
	long rets[16];		/* per step: -errno, or the offset returned */
	size_t sizes[16];	/* caps->size after each step */
	unsigned char buf[4096];
	size_t len;
};

static void cap_script(const struct side *s, u64 seed, unsigned long fail, struct cap_trace *t)
{
	struct vfio_info_cap caps = { NULL, 0 };
	unsigned char body[64];
	int step, steps;

	memset(t, 0, sizeof(*t));
	rnd_state = seed;
	steps = 1 + rnd() % 8;
	kstub_allocs = 0;
	kstub_fail_alloc = fail;
	for (step = 0; step < steps; step++) {
		size_t size = sizeof(struct vfio_info_cap_header) + rnd() % 48;
		u16 id = rnd(), version = rnd();
		struct vfio_info_cap_header *h;
		unsigned int k;

		for (k = 0; k < sizeof(body); k++)
			body[k] = rnd();
		if (rnd() & 1) {
			h = s->cap_add(&caps, size, id, version);
			if (IS_ERR(h)) {
				t->rets[step] = PTR_ERR(h);
			} else {
				t->rets[step] = (unsigned char *)h - (unsigned char *)caps.buf;
				memcpy(h + 1, body, size - sizeof(*h));
			}
		} else {
			struct vfio_info_cap_header *cap = (void *)body;

			cap->id = id;
			cap->version = version;
			cap->next = rnd();	/* must not matter */
			t->rets[step] = s->add_cap(&caps, cap, size);
		}
		t->sizes[step] = caps.size;
	}
	if (caps.size) {
		static const size_t offsets[] = { 0, 8, 16, 24, 40, 4096 };

		s->cap_shift(&caps, offsets[rnd() % ARRAY_SIZE(offsets)]);
		t->len = caps.size;
		memcpy(t->buf, caps.buf, caps.size);
	}
	kfree(caps.buf);
	kstub_fail_alloc = 0;
}

static void test_caps(void)
{
	static struct cap_trace t[2];
	unsigned long cases = 0, fail;
	u64 seed;

	mismatches = 0;
	for (seed = 1; seed <= 20000; seed++) {
		for (fail = 0; fail <= 9; fail++) {
			cap_script(&sides[0], seed, fail, &t[0]);
			cap_script(&sides[1], seed, fail, &t[1]);
			cases++;
			if (memcmp(&t[0], &t[1], sizeof(t[0])))
				mismatch("capability script %llu, allocation %lu failing",
					 (unsigned long long)seed, fail);
		}
	}
	result(!mismatches, "vfio_info_cap_add/add_capability/cap_shift: %lu scripts, %lu differ",
	       cases, mismatches);
}

/* ------------------------------------------------------- IOVA bitmap */

/* Everything one side did, in order: compared value for value */
struct trace {
	u64 *v;
	size_t n, cap;
};

static struct trace *cur_trace;

static void trace_add(u64 a, u64 b, u64 c)
{
	struct trace *t = cur_trace;

	if (t->n + 3 > t->cap) {
		t->cap = t->cap ? 2 * t->cap : 1024;
		t->v = realloc(t->v, t->cap * sizeof(*t->v));
		if (!t->v)
			abort();
	}
	t->v[t->n++] = a;
	t->v[t->n++] = b;
	t->v[t->n++] = c;
}

enum { EV_PIN = 1, EV_CB, EV_ALLOC, EV_WALK, EV_PINNED };

void kstub_log_pin(unsigned long start, int nr, long ret)
{
	trace_add(EV_PIN, start - kstub_user_base, ((u64)(u32)nr << 32) | (u32)ret);
}

struct walk {
	const struct side *side;
	u64 seed;
	unsigned int calls, fail_at;
};

static int report_cb(struct iova_bitmap *bm, unsigned long iova, size_t length, void *opaque)
{
	struct walk *w = opaque;
	int k;

	trace_add(EV_CB, iova, length);
	if (++w->calls == w->fail_at)
		return -EIO;
	rnd_state = w->seed * 7919 + w->calls;
	if (!length)
		return 0;
	/* The first and last IOVA, a whole window now and then, random runs */
	w->side->bm_set(bm, iova, 1);
	w->side->bm_set(bm, iova + length - 1, 1);
	if (rnd() % 4 == 0)
		w->side->bm_set(bm, iova, length);
	for (k = 0; k < 3; k++) {
		unsigned long off = rnd() % length;
		unsigned long len = 1 + rnd() % (length - off);

		w->side->bm_set(bm, iova + off, len);
	}
	return 0;
}

struct bm_case {
	unsigned long iova, length, page_size, data_off, user_len;
	unsigned long fail_alloc;
	unsigned int fail_cb;
};

static void bm_run(const struct side *s, const struct bm_case *c, u64 seed,
		   unsigned char *mem, struct trace *t)
{
	struct walk w = { .side = s, .seed = seed, .fail_at = c->fail_cb };
	struct iova_bitmap *bm;
	unsigned long k;

	t->n = 0;
	cur_trace = t;
	for (k = 0; k < c->user_len; k++)
		mem[k] = (unsigned char)(k * 131 + 7);
	kstub_user_mem = mem;
	kstub_user_base = 0x7f0000000000UL;
	kstub_user_len = c->user_len;
	kstub_pinned = 0;
	kstub_allocs = 0;
	kstub_fail_alloc = c->fail_alloc;

	bm = s->bm_alloc(c->iova, c->length, c->page_size,
			 (u64 *)(kstub_user_base + c->data_off));
	kstub_fail_alloc = 0;
	trace_add(EV_ALLOC, IS_ERR(bm) ? (u64)PTR_ERR(bm) : 0, kstub_pinned);
	if (!IS_ERR(bm)) {
		trace_add(EV_WALK, s->bm_for_each(bm, &w, report_cb), kstub_pinned);
		s->bm_free(bm);
	}
	trace_add(EV_PINNED, kstub_pinned, 0);
}

static void test_iova_bitmap(void)
{
	/* One window: a page of page pointers' worth of user pages */
	const unsigned long wbytes = PAGE_SIZE / sizeof(void *) * PAGE_SIZE;
	static const unsigned int shifts[] = { 12, 21, 13, 0, 3, 30 };
	static const unsigned long offs[] = { 0, 1, 8, PAGE_SIZE - 1, PAGE_SIZE + 17 };
	unsigned long iovas[] = { 0, 4096, 12345, 1UL << 40, -(1UL << 44) };
	static struct trace t[2];
	unsigned char *mem[2];
	unsigned long cases = 0, wrapping = 0, max_user = 4 * wbytes + 2 * PAGE_SIZE;
	unsigned int si, ii, li, oi, ui, fi;

	mem[0] = malloc(max_user);
	mem[1] = malloc(max_user);
	if (!mem[0] || !mem[1])
		abort();
	mismatches = 0;
	for (si = 0; si < ARRAY_SIZE(shifts); si++) {
		unsigned long ps = 1UL << shifts[si];
		/* IOVA span of one window: wbytes of bits */
		unsigned long wspan = (wbytes * 8) << shifts[si];
		unsigned long lengths[] = {
			1, ps - 1 ? ps - 1 : 1, ps, 7 * ps + 1, 64 * ps, 64 * ps + 1,
			wspan - ps, wspan, wspan + 1, 2 * wspan + wspan / 2, 1UL << 50, 0,
		};

		for (ii = 0; ii < ARRAY_SIZE(iovas); ii++)
		for (li = 0; li < ARRAY_SIZE(lengths); li++)
		for (oi = 0; oi < ARRAY_SIZE(offs); oi++)
		for (ui = 0; ui < 3; ui++)
		for (fi = 0; fi < 6; fi++) {
			/* bytes of bitmap the range needs, as a driver sees it */
			unsigned long need = ((lengths[li] - 1) >> shifts[si]) / 8 + 1;
			unsigned long full = offs[oi] + need + PAGE_SIZE;
			struct bm_case c = {
				.iova = iovas[ii], .length = lengths[li], .page_size = ps,
				.data_off = offs[oi],
				.fail_alloc = fi < 3 ? fi : 0,
				.fail_cb = fi < 3 ? 0 : fi - 2,
			};

			/* all of it mapped, a partial window, nothing */
			if (full > max_user)
				full = max_user;
			c.user_len = ui == 0 ? full : ui == 1 ? (full / 2) & ~(PAGE_SIZE - 1) : 0;
			/*
			 * DMA_LOGGING_REPORT refuses a range that wraps
			 * (-EOVERFLOW); there the IOVAs a driver marks wrap
			 * too, and stock truncates their page index (see the
			 * last test), so only ranges that fit are compared.
			 */
			if (c.length > ULONG_MAX - c.iova) {
				wrapping++;
				continue;
			}
			/* sample the expensive ones */
			if (need > 64 * PAGE_SIZE && (fi || oi % 2))
				continue;
			bm_run(&sides[0], &c, cases, mem[0], &t[0]);
			bm_run(&sides[1], &c, cases, mem[1], &t[1]);
			cases++;
			if (t[0].n != t[1].n || memcmp(t[0].v, t[1].v, t[0].n * sizeof(u64)) ||
			    memcmp(mem[0], mem[1], c.user_len))
				mismatch("iova %#lx length %#lx page %#lx bitmap+%lu mapped %lu fail alloc %lu cb %u",
					 c.iova, c.length, ps, c.data_off, c.user_len,
					 c.fail_alloc, c.fail_cb);
		}
	}
	result(!mismatches,
	       "iova_bitmap alloc/for_each/set/free (%lu-byte pages): %lu cases, %lu differ (%lu wrapping ranges not compared)",
	       PAGE_SIZE, cases, mismatches, wrapping);
	free(mem[0]);
	free(mem[1]);
	free(t[0].v);
	free(t[1].v);
}

/* Ours only: an IOVA outside the window leaves the bitmap alone */
static void test_iova_bitmap_outside(void)
{
	unsigned char *mem = calloc(1, 4 * PAGE_SIZE);
	struct trace t = { 0 };
	struct iova_bitmap *bm;
	unsigned long k, set = 0;

	kstub_user_mem = mem;
	kstub_user_base = 0x7f0000000000UL;
	kstub_user_len = 4 * PAGE_SIZE;
	kstub_pinned = 0;
	cur_trace = &t;
	bm = sides[1].bm_alloc(0, 64 * PAGE_SIZE * 8, 1, (u64 *)kstub_user_base);
	if (!IS_ERR(bm)) {
		sides[1].bm_set(bm, 1UL << 62, 4096);
		sides[1].bm_free(bm);
	}
	for (k = 0; k < 4 * PAGE_SIZE; k++)
		set |= mem[k];
	result(!IS_ERR(bm) && !set && !kstub_pinned,
	       "ours: iova_bitmap_set() beyond the window sets nothing");
	free(t.v);
	free(mem);
}

/*
 * equiv [FIRST [bitmap]]: number the tests from FIRST and print no plan
 * (the caller prints one for several runs); "bitmap": only the IOVA bitmap.
 */
int main(int argc, char **argv)
{
	bool all = argc < 3 || strcmp(argv[2], "bitmap");

	if (argc > 1)
		tests = atoi(argv[1]) - 1;
	else
		printf("1..6\n");
	if (all) {
		test_mig();
		test_mig_walks();
		test_irqs();
		test_caps();
	}
	test_iova_bitmap();
	test_iova_bitmap_outside();
	printf("# equiv (%lu-byte pages): %d failed\n", PAGE_SIZE, failures);
	return failures ? 1 : 0;
}
