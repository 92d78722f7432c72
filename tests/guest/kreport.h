/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kreport.h: the debug kernel's reports in the kernel log, for the guest
 * tests of the debug lane (tests/vm/debug-kernel.sh) that expect a report on
 * stock and none on ours: lockdep, KASAN, UBSAN, might-sleep, list debugging,
 * object debugging and any other WARNING/BUG/oops/hang.
 *
 * A test takes the log from a point on (kmsg_open() of rnd.h), runs, reads
 * it with kr_read() and asks kr_verdict() for its one check: on stock a
 * report of the expected class must be there (its first lines are printed),
 * on ours none of any class may be. The check itself is the test's verdict,
 * whatever the harness does with the console.
 * Header-only, included by one program each, after tap.h and rnd.h.
 */
#ifndef KREPORT_H
#define KREPORT_H

enum kr_class {
	KR_LOCKDEP, KR_KASAN, KR_UBSAN, KR_SLEEP, KR_LIST, KR_ODEBUG, KR_OTHER,
	KR_NCLASS
};

static const char *const kr_class_name[KR_NCLASS] = {
	"lockdep", "KASAN", "UBSAN", "might-sleep", "list-debug",
	"debugobjects", "WARN/BUG/oops/hang",
};

/* The class of the report that starts with line msg, or -1. */
static inline int kr_classify(const char *msg)
{
	static const char *const lockdep[] = {
		"possible circular locking", "possible recursive locking",
		"inconsistent lock state", "suspicious RCU usage",
		"lock held when returning", "bad unlock balance",
		"held lock freed", "irq lock inversion", "MAX_LOCKDEP",
		"DEBUG_LOCKS_WARN_ON", "Invalid wait context",
		"lock held at task exit",
	};
	static const char *const other[] = {
		"WARNING:", "BUG:", "Oops", "general protection fault",
		"Kernel panic", "kernel BUG at", "refcount_t:",
		"blocked for more than", "soft lockup", "detected stalls",
	};
	size_t i;

	for (i = 0; i < sizeof(lockdep) / sizeof(lockdep[0]); i++)
		if (strstr(msg, lockdep[i]))
			return KR_LOCKDEP;
	if (strstr(msg, "BUG: KASAN:"))
		return KR_KASAN;
	if (strstr(msg, "UBSAN:"))
		return KR_UBSAN;
	if (strstr(msg, "sleeping function called from invalid context") ||
	    strstr(msg, "scheduling while atomic"))
		return KR_SLEEP;
	if (strstr(msg, "list_add corruption") || strstr(msg, "list_del corruption"))
		return KR_LIST;
	if (strstr(msg, "ODEBUG:"))
		return KR_ODEBUG;
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (strstr(msg, other[i]))
			return KR_OTHER;
	return -1;
}

/*
 * The kernel log since kmsg_open() as text, one record a line (the caller
 * frees it); "" if it cannot be read.
 */
static inline char *kr_read(int fd)
{
	size_t n, len = 0, cap = 1 << 16;
	char *log = malloc(cap), rec[8192], *msg;

	if (!log)
		return NULL;
	log[0] = '\0';
	while ((msg = kmsg_next(fd, rec, sizeof(rec)))) {
		/* /dev/kmsg escapes a record's own newlines as \x0a */
		for (char *e; (e = strstr(msg, "\\x0a"));) {
			*e = '\n';
			memmove(e + 1, e + 4, strlen(e + 4) + 1);
		}
		n = strlen(msg);
		if (len + n + 2 > cap) {
			char *p = realloc(log, cap = 2 * cap + n);

			if (!p)
				break;
			log = p;
		}
		memcpy(log + len, msg, n);
		len += n;
		log[len++] = '\n';
		log[len] = '\0';
	}
	return log;
}

/*
 * A test of the debug lane starts: line-buffered TAP, its plan, and on
 * stock the class of report it must provoke declared to the harness
 * ("# expect-splat: CLASS", see tests/vm/run.sh). Returns 1 for ours.
 */
static inline int kr_start(int ntests, const char *stock_class)
{
	int ours;

	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(ntests);
	ours = mode_is_ours();
	if (!ours)
		printf("# expect-splat: %s\n", stock_class);
	return ours;
}

/* The first line of the n-th report of class c in log (n from 0), or NULL. */
static inline const char *kr_find(const char *log, int c, int n)
{
	const char *p = log, *nl;
	char line[512];
	size_t l;

	for (; p && *p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		l = nl ? (size_t)(nl - p) : strlen(p);
		if (l >= sizeof(line))
			l = sizeof(line) - 1;
		memcpy(line, p, l);
		line[l] = '\0';
		if (kr_classify(line) == c && n-- == 0)
			return p;
	}
	return NULL;
}

static inline int kr_count(const char *log, int c)
{
	int n = 0;

	while (kr_find(log, c, n))
		n++;
	return n;
}

/* Prints the first lines of the report that starts at p as diagnostics. */
static inline void kr_show(const char *p, int lines)
{
	const char *nl;

	for (; p && *p && lines-- > 0; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		diag("  | %.*s", nl ? (int)(nl - p) : (int)strlen(p), p);
	}
}

/* Does the report starting at p name s within its first lines? */
static inline int kr_names(const char *p, const char *s, int lines)
{
	const char *end = p, *nl, *q;

	while (*end && lines-- > 0) {
		nl = strchr(end, '\n');
		end = nl ? nl + 1 : end + strlen(end);
	}
	q = strstr(p, s);
	return q && q + strlen(s) <= end;
}

/*
 * The check of a test that expects a report of class want on stock (want
 * -1: none there either) and none on ours: prints every report's first
 * lines, one TAP line; 1 if it passed.
 */
static inline int kr_verdict(const char *log, int ours, int want, const char *what)
{
	int count[KR_NCLASS], total = 0;
	const char *p;

	for (int c = 0; c < KR_NCLASS; c++) {
		count[c] = kr_count(log, c);
		total += count[c];
		if (count[c])
			diag("%d %s report(s); the first:", count[c], kr_class_name[c]);
		p = kr_find(log, c, 0);
		if (p)
			kr_show(p, c == KR_LOCKDEP || c == KR_KASAN ? 40 : 20);
	}
	if (ours || want < 0)
		return ok(total == 0, "%s: no kernel report (%d)", what, total);
	return ok(count[want] > 0, "%s: %s reported it, as expected on stock (%d report(s))",
		  what, kr_class_name[want], count[want]);
}

/* lockdep on and not yet switched off by an earlier report in this boot. */
static inline int kr_lockdep_on(void)
{
	char buf[4096], *p;

	if (read_file("/proc/lockdep_stats", buf, sizeof(buf)))
		return 0;
	p = strstr(buf, "debug_locks:");
	return p && atoi(p + strlen("debug_locks:")) == 1;
}

/*
 * Nothing was reported in this boot before: no taint but out-of-tree and
 * unsigned modules (a report taints, KASAN reports only once per boot and
 * lockdep switches itself off after one), and lockdep is on. Else a clean
 * run would prove nothing.
 */
static inline int kr_armed(void)
{
	long taint = read_num("/proc/sys/kernel/tainted");

	return taint >= 0 && !(taint & ~(4096L | 8192L)) && kr_lockdep_on();
}

/* The kernel has KASAN (its report function is in kallsyms). */
static inline int kr_kasan_on(void)
{
	char line[256];
	int found = 0;
	FILE *f = fopen("/proc/kallsyms", "r");

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, " kasan_report\n") != NULL;
	if (f)
		fclose(f);
	return found;
}

#endif /* KREPORT_H */
