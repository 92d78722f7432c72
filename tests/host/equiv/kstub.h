/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kstub.h - just enough of the kernel for the pure parts of the vfio core to
 * compile and run in user space, so that stock 6.1's code and ours can be
 * compared on every input (tests/host/equiv_test.sh).
 *
 * Allocations can be made to fail (kstub_fail_alloc), user pinning works on
 * a fake user address space backed by test memory (kstub_user_*), and every
 * WARN_ON() that fires is counted (kstub_warns).
 */
#ifndef KSTUB_H
#define KSTUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <linux/types.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int32_t s32;

#define __user
#define __init
#define unlikely(x) __builtin_expect(!!(x), 0)
#define EXPORT_SYMBOL(sym)
#define EXPORT_SYMBOL_GPL(sym)
#define GFP_KERNEL 0
#define U32_MAX ((u32)~0U)
#define BITS_PER_BYTE 8
#define BITS_PER_TYPE(t) (sizeof(t) * BITS_PER_BYTE)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define offsetofend(T, m) (offsetof(T, m) + sizeof(((T *)0)->m))
#define min(a, b) ((a) < (b) ? (a) : (b))
#define min_t(t, a, b) ((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define __ffs(x) ((unsigned long)__builtin_ctzl(x))

extern unsigned long kstub_warns;
#define WARN_ON(cond) ({ bool __c = !!(cond); if (__c) kstub_warns++; __c; })

#define MAX_ERRNO 4095
#define IS_ERR_VALUE(x) ((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)
static inline void *ERR_PTR(long error) { return (void *)error; }
static inline long PTR_ERR(const void *ptr) { return (long)ptr; }
static inline bool IS_ERR(const void *ptr) { return IS_ERR_VALUE(ptr); }

/* Allocations: the one numbered kstub_fail_alloc (from 1) fails. */
extern unsigned long kstub_allocs, kstub_fail_alloc;
static inline bool kstub_alloc_fails(void)
{
	return ++kstub_allocs == kstub_fail_alloc;
}
static inline void *kzalloc(size_t size, int gfp)
{
	(void)gfp;
	return kstub_alloc_fails() ? NULL : calloc(1, size);
}
static inline void *krealloc(const void *p, size_t size, int gfp)
{
	(void)gfp;
	return kstub_alloc_fails() ? NULL : realloc((void *)p, size);
}
static inline void kfree(const void *p) { free((void *)p); }

/* Pages: small ones by default, so that the tests walk many windows fast */
#ifndef KSTUB_PAGE_SHIFT
#define KSTUB_PAGE_SHIFT 12
#endif
#define PAGE_SHIFT KSTUB_PAGE_SHIFT
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define offset_in_page(p) ((unsigned long)(p) & (PAGE_SIZE - 1))
#define FOLL_WRITE 0x01
struct page;
static inline unsigned long __get_free_page(int gfp)
{
	(void)gfp;
	return kstub_alloc_fails() ? 0 : (unsigned long)aligned_alloc(PAGE_SIZE, PAGE_SIZE);
}
static inline void free_page(unsigned long addr) { free((void *)addr); }

/*
 * The fake user address space: [kstub_user_base, + kstub_user_len) is
 * mapped writable, backed by kstub_user_mem; nothing else is.  Every pin
 * request is logged.
 */
extern unsigned long kstub_user_base, kstub_user_len;
extern unsigned char *kstub_user_mem;
extern long kstub_pinned;
void kstub_log_pin(unsigned long start, int nr, long ret);
static inline long pin_user_pages_fast(unsigned long start, int nr_pages,
				       unsigned int gup_flags, struct page **pages)
{
	unsigned long addr = start & ~(PAGE_SIZE - 1);
	long n = 0;

	(void)gup_flags;
	while (n < nr_pages && addr >= kstub_user_base &&
	       addr + PAGE_SIZE <= kstub_user_base + kstub_user_len) {
		pages[n++] = (struct page *)(kstub_user_mem + (addr - kstub_user_base));
		addr += PAGE_SIZE;
	}
	if (!n)
		n = nr_pages ? -EFAULT : 0;
	kstub_log_pin(start, nr_pages, n);
	if (n > 0)
		kstub_pinned += n;
	return n;
}
static inline void unpin_user_pages(struct page **pages, unsigned long npages)
{
	(void)pages;
	kstub_pinned -= npages;
}
static inline void *kmap_local_page(struct page *page) { return page; }
static inline void kunmap_local(const void *addr) { (void)addr; }
static inline void bitmap_set(unsigned long *map, unsigned int start, unsigned int nbits)
{
	for (; nbits && start % 64; nbits--, start++)
		map[start / 64] |= 1UL << (start % 64);
	for (; nbits >= 64; nbits -= 64, start += 64)
		map[start / 64] = ~0UL;
	for (; nbits; nbits--, start++)
		map[start / 64] |= 1UL << (start % 64);
}

/* The vfio types the extracted functions use */
#include <linux/vfio.h>

struct vfio_device {
	unsigned int migration_flags;
};

struct vfio_info_cap {
	struct vfio_info_cap_header *buf;
	size_t size;
};

#endif /* KSTUB_H */
