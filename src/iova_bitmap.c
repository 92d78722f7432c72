// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-core: IOVA bitmaps, the dirty page reports of DMA logging
 *
 * VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT hands the kernel a user bitmap with
 * one bit per page of an IOVA range: bit n % 64 of u64 number n / 64 stands
 * for the page at iova + n * page_size.  The bitmap may be far too large to
 * pin at once, so an iova_bitmap is an iterator over windows of it:
 *
 *	bitmap = iova_bitmap_alloc(iova, length, page_size, data);
 *	if (IS_ERR(bitmap))
 *		return PTR_ERR(bitmap);
 *	ret = iova_bitmap_for_each(bitmap, opaque, report_fn);
 *	iova_bitmap_free(bitmap);
 *
 * A window is a run of user pages of the bitmap, pinned; one page of
 * struct page pointers holds them all (with 4 KiB pages and 8-byte
 * pointers: 512 pages, 2 MiB of bitmap, 64 GiB of IOVA at 4 KiB per bit).
 * iova_bitmap_for_each() calls report_fn once per window with the part of
 * the IOVA range the window covers, and report_fn marks the dirty IOVAs in
 * it with iova_bitmap_set().  Windows are placed by byte of the bitmap, so a
 * window may start anywhere in a user page.
 *
 * Behaviour follows drivers/vfio/iova_bitmap.c of Linux 6.1,
 * Copyright (c) 2022, Oracle and/or its affiliates.
 * Copyright (c) 2022, NVIDIA CORPORATION & AFFILIATES. All rights reserved
 */
#include <linux/iova_bitmap.h>
#include <linux/mm.h>
#include <linux/highmem.h>

#define BITS_PER_PAGE (PAGE_SIZE * BITS_PER_BYTE)

/* As many user pages as one page of pointers to them holds */
#define IOVA_BITMAP_WINDOW_PAGES (PAGE_SIZE / sizeof(struct page *))

/*
 * genksyms sees both structures through iova_bitmap_set(): their members,
 * with these names, types and order, are part of its export CRC.
 */

/* The window: the pinned part of the user bitmap */
struct iova_bitmap_map {
	/* the IOVA that bit 0 of the window's first byte stands for */
	unsigned long iova;

	/* log2 of the IOVA size of one bit */
	unsigned long pgshift;

	/* where the window's first byte lies within pages[0] */
	unsigned long pgoff;

	/* pinned user pages, 0 between windows */
	unsigned long npages;

	/* one page holding the pinned pages */
	struct page **pages;
};

/* The iterator */
struct iova_bitmap {
	/* the current window */
	struct iova_bitmap_map mapped;

	/* the user bitmap */
	u8 __user *bitmap;

	/* byte of the user bitmap where the current window starts */
	unsigned long mapped_base_index;

	/* bytes of the user bitmap that the IOVA range needs */
	unsigned long mapped_total_index;

	/* the IOVA range */
	unsigned long iova;
	size_t length;
};

/* The IOVA span that @bytes of the bitmap stand for. */
static unsigned long iova_bitmap_span(struct iova_bitmap *bitmap,
				      unsigned long bytes)
{
	return (bytes * BITS_PER_BYTE) << bitmap->mapped.pgshift;
}

/* The byte of the bitmap holding the bit of the IOVA @offset into the range. */
static unsigned long iova_bitmap_byte(struct iova_bitmap *bitmap,
				      unsigned long offset)
{
	return (offset >> bitmap->mapped.pgshift) / BITS_PER_BYTE;
}

static bool iova_bitmap_done(struct iova_bitmap *bitmap)
{
	return bitmap->mapped_base_index >= bitmap->mapped_total_index;
}

/* The first IOVA of the current window. */
static unsigned long iova_bitmap_window_iova(struct iova_bitmap *bitmap)
{
	return bitmap->iova +
	       iova_bitmap_span(bitmap, bitmap->mapped_base_index);
}

/*
 * Pin the window that starts at byte mapped_base_index: the pages up to the
 * end of the bitmap (one more if the start is not page aligned), at most
 * IOVA_BITMAP_WINDOW_PAGES.  Fewer pinned pages make a shorter window.
 */
static int iova_bitmap_pin_window(struct iova_bitmap *bitmap)
{
	struct iova_bitmap_map *window = &bitmap->mapped;
	u8 __user *start = bitmap->bitmap + bitmap->mapped_base_index;
	unsigned long left = bitmap->mapped_total_index -
			     bitmap->mapped_base_index;
	unsigned long want;
	long pinned;

	want = DIV_ROUND_UP(left, PAGE_SIZE) + !!offset_in_page(start);
	want = min_t(unsigned long, want, IOVA_BITMAP_WINDOW_PAGES);

	pinned = pin_user_pages_fast((unsigned long)start, want, FOLL_WRITE,
				     window->pages);
	if (pinned <= 0)
		return -EFAULT;

	window->npages = pinned;
	window->pgoff = offset_in_page(start);
	window->iova = iova_bitmap_window_iova(bitmap);
	return 0;
}

static void iova_bitmap_unpin_window(struct iova_bitmap *bitmap)
{
	struct iova_bitmap_map *window = &bitmap->mapped;

	if (window->npages)
		unpin_user_pages(window->pages, window->npages);
	window->npages = 0;
}

/*
 * The IOVA length the current window covers: as many bytes as are pinned,
 * or left in the bitmap, clamped to the end of the range.
 */
static unsigned long iova_bitmap_window_length(struct iova_bitmap *bitmap)
{
	struct iova_bitmap_map *window = &bitmap->mapped;
	unsigned long iova = iova_bitmap_window_iova(bitmap);
	unsigned long last = bitmap->iova + bitmap->length - 1;
	unsigned long bytes, length;

	bytes = min(bitmap->mapped_total_index - bitmap->mapped_base_index,
		    (window->npages << PAGE_SHIFT) - window->pgoff);
	length = iova_bitmap_span(bitmap, bytes);
	if (iova + length - 1 > last)
		length = last - iova + 1;
	return length;
}

/* Move past the @length of IOVA just reported; pin the next window, if any. */
static int iova_bitmap_next_window(struct iova_bitmap *bitmap,
				   unsigned long length)
{
	bitmap->mapped_base_index += iova_bitmap_byte(bitmap, length - 1) + 1;
	iova_bitmap_unpin_window(bitmap);
	if (iova_bitmap_done(bitmap))
		return 0;
	return iova_bitmap_pin_window(bitmap);
}

/**
 * iova_bitmap_alloc() - Set up an IOVA bitmap and pin its first window
 * @iova: first IOVA of the range
 * @length: length of the range in bytes, not 0
 * @page_size: IOVA size of one bit, a power of two
 * @data: the user bitmap, one bit per @page_size of the range
 *
 * Return: the bitmap, to be released with iova_bitmap_free(); or
 * ERR_PTR(-ENOMEM), or ERR_PTR(-EFAULT) if @data cannot be pinned for
 * writing.
 */
struct iova_bitmap *iova_bitmap_alloc(unsigned long iova, size_t length,
				      unsigned long page_size, u64 __user *data)
{
	struct iova_bitmap *bitmap;
	int ret = -ENOMEM;

	bitmap = kzalloc(sizeof(*bitmap), GFP_KERNEL);
	if (!bitmap)
		return ERR_PTR(-ENOMEM);

	bitmap->iova = iova;
	bitmap->length = length;
	bitmap->bitmap = (u8 __user *)data;
	bitmap->mapped.pgshift = __ffs(page_size);
	bitmap->mapped_total_index = iova_bitmap_byte(bitmap, length - 1) + 1;

	bitmap->mapped.pages = (struct page **)__get_free_page(GFP_KERNEL);
	if (bitmap->mapped.pages)
		ret = iova_bitmap_pin_window(bitmap);
	if (ret) {
		iova_bitmap_free(bitmap);
		return ERR_PTR(ret);
	}
	return bitmap;
}

/**
 * iova_bitmap_free() - Release an IOVA bitmap
 * @bitmap: the bitmap from iova_bitmap_alloc()
 *
 * Unpins the current window, if any, and frees @bitmap.
 */
void iova_bitmap_free(struct iova_bitmap *bitmap)
{
	iova_bitmap_unpin_window(bitmap);
	free_page((unsigned long)bitmap->mapped.pages);
	kfree(bitmap);
}

/**
 * iova_bitmap_for_each() - Walk an IOVA bitmap window by window
 * @bitmap: the bitmap from iova_bitmap_alloc()
 * @opaque: passed on to @fn
 * @fn: called for each window with the IOVA range it covers; it may call
 *	iova_bitmap_set() for IOVAs within that range
 *
 * Starts with the window iova_bitmap_alloc() pinned, and pins each next
 * one in turn until the whole range has been covered.
 *
 * Return: 0 once the whole range has been walked; else the first non-zero
 * return of @fn, which ends the walk, or -EFAULT if a window of the user
 * bitmap cannot be pinned.
 */
int iova_bitmap_for_each(struct iova_bitmap *bitmap, void *opaque,
			 iova_bitmap_fn_t fn)
{
	unsigned long length;
	int ret;

	while (!iova_bitmap_done(bitmap)) {
		length = iova_bitmap_window_length(bitmap);
		ret = fn(bitmap, iova_bitmap_window_iova(bitmap), length,
			 opaque);
		if (!ret)
			ret = iova_bitmap_next_window(bitmap, length);
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * iova_bitmap_set() - Mark an IOVA range dirty in the user bitmap
 * @bitmap: the bitmap passed to the iova_bitmap_for_each() callback
 * @iova: first IOVA to mark
 * @length: length of the range to mark, not 0
 *
 * Sets the bit of every page of [@iova, @iova + @length - 1].  Only for the
 * iova_bitmap_for_each() callback, with IOVAs within the range it was
 * passed: bits beyond the pinned window are dropped.
 */
void iova_bitmap_set(struct iova_bitmap *bitmap,
		     unsigned long iova, size_t length)
{
	struct iova_bitmap_map *window = &bitmap->mapped;
	unsigned long base = window->pgoff * BITS_PER_BYTE;
	unsigned long bit = base + ((iova - window->iova) >> window->pgshift);
	unsigned long last = base + ((iova + length - 1 - window->iova) >>
				     window->pgshift);

	/* Page by page of the window, each mapped while its bits are set */
	do {
		unsigned long page = bit / BITS_PER_PAGE;
		unsigned long first = bit % BITS_PER_PAGE;
		unsigned long count = min(BITS_PER_PAGE - first, last - bit + 1);
		void *kaddr;

		if (unlikely(page >= window->npages))
			return;

		kaddr = kmap_local_page(window->pages[page]);
		bitmap_set(kaddr, first, count);
		kunmap_local(kaddr);
		bit += count;
	} while (bit <= last);
}
EXPORT_SYMBOL_GPL(iova_bitmap_set);
