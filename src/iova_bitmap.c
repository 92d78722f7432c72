// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-core: IOVA bitmaps, for reporting dirty pages to userspace
 *
 * VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT hands the kernel a user buffer with
 * one bit per page of an IOVA range.  The buffer may be far too large to pin
 * at once, so it is walked in windows: each window pins as many pages of the
 * buffer as one page of struct page pointers can hold, and the driver's
 * callback is called once per window with the IOVA range the window covers.
 * The callback marks dirty IOVAs with iova_bitmap_set().
 *
 * Usage:
 *
 *	bitmap = iova_bitmap_alloc(iova, length, page_size, data);
 *	if (IS_ERR(bitmap))
 *		return PTR_ERR(bitmap);
 *	ret = iova_bitmap_for_each(bitmap, opaque, report_fn);
 *	iova_bitmap_free(bitmap);
 *
 * The user buffer is an array of u64: bit n % 64 of u64 number n / 64 stands
 * for the page at iova + n * page_size.  Windows are tracked in bytes of the
 * buffer, so a window may start at any byte.
 */
#include <linux/highmem.h>
#include <linux/iova_bitmap.h>
#include <linux/mm.h>

#define BITS_PER_PAGE (PAGE_SIZE * BITS_PER_BYTE)

/*
 * The member names, types and order of both structures below are seen by
 * genksyms through iova_bitmap_set(): keep them as in the kernel.
 */

/* The currently pinned window of the user bitmap. */
struct iova_bitmap_map {
	/* IOVA of bit 0 of the first pinned user page */
	unsigned long iova;

	/* log2 of the IOVA size of one bit */
	unsigned long pgshift;

	/* byte offset of the window's first byte within pages[0] */
	unsigned long pgoff;

	/* number of entries of @pages that are pinned */
	unsigned long npages;

	/* one page holding the pinned user pages */
	struct page **pages;
};

struct iova_bitmap {
	/* the pinned window */
	struct iova_bitmap_map mapped;

	/* the user bitmap */
	u8 __user *bitmap;

	/* byte of the user bitmap at the start of the window */
	unsigned long mapped_base_index;

	/* number of bytes of the user bitmap covering the whole IOVA range */
	unsigned long mapped_total_index;

	/* the whole IOVA range */
	unsigned long iova;
	size_t length;
};

/*
 * Helpers converting between byte indexes into the user bitmap and IOVA
 * offsets.  An offset is relative to the IOVA of bit 0 of byte 0.
 */
static unsigned long iova_bitmap_offset_to_index(struct iova_bitmap *bitmap,
						 unsigned long offset)
{
	return (offset >> bitmap->mapped.pgshift) / BITS_PER_TYPE(u8);
}

static unsigned long iova_bitmap_index_to_offset(struct iova_bitmap *bitmap,
						 unsigned long index)
{
	return (index * BITS_PER_TYPE(u8)) << bitmap->mapped.pgshift;
}

/* IOVA of the first bit of the window. */
static unsigned long iova_bitmap_mapped_iova(struct iova_bitmap *bitmap)
{
	return bitmap->iova +
	       iova_bitmap_index_to_offset(bitmap, bitmap->mapped_base_index);
}

/*
 * Pin the window of the user bitmap starting at byte @mapped_base_index: up
 * to the end of the bitmap, but no more pages than fit in @mapped.pages.
 */
static int iova_bitmap_get(struct iova_bitmap *bitmap)
{
	struct iova_bitmap_map *mapped = &bitmap->mapped;
	unsigned long left = bitmap->mapped_total_index -
			     bitmap->mapped_base_index;
	u8 __user *addr = bitmap->bitmap + bitmap->mapped_base_index;
	unsigned long npages;
	long ret;

	/* An unaligned start needs one more page to reach the same length. */
	npages = DIV_ROUND_UP(left, PAGE_SIZE) + !!offset_in_page(addr);
	npages = min(npages, PAGE_SIZE / sizeof(struct page *));

	ret = pin_user_pages_fast((unsigned long)addr, npages, FOLL_WRITE,
				  mapped->pages);
	if (ret <= 0)
		return -EFAULT;

	mapped->npages = ret;
	mapped->iova = iova_bitmap_mapped_iova(bitmap);
	mapped->pgoff = offset_in_page(addr);
	return 0;
}

/* Unpin the current window, if any. */
static void iova_bitmap_put(struct iova_bitmap *bitmap)
{
	struct iova_bitmap_map *mapped = &bitmap->mapped;

	if (!mapped->npages)
		return;

	unpin_user_pages(mapped->pages, mapped->npages);
	mapped->npages = 0;
}

/**
 * iova_bitmap_alloc() - Set up an IOVA bitmap and pin its first window
 * @iova: first IOVA of the range
 * @length: length of the range in bytes, not 0
 * @page_size: IOVA size of one bit, a power of two
 * @data: the user bitmap, one bit per @page_size of the range
 *
 * Return: the new bitmap, to be released with iova_bitmap_free(), or an
 * ERR_PTR(): -ENOMEM, or -EFAULT if @data cannot be pinned for writing.
 */
struct iova_bitmap *iova_bitmap_alloc(unsigned long iova, size_t length,
				      unsigned long page_size, u64 __user *data)
{
	struct iova_bitmap *bitmap;
	int ret;

	bitmap = kzalloc(sizeof(*bitmap), GFP_KERNEL);
	if (!bitmap)
		return ERR_PTR(-ENOMEM);

	bitmap->bitmap = (u8 __user *)data;
	bitmap->iova = iova;
	bitmap->length = length;
	bitmap->mapped.iova = iova;
	bitmap->mapped.pgshift = __ffs(page_size);
	bitmap->mapped_total_index =
		iova_bitmap_offset_to_index(bitmap, length - 1) + 1;

	bitmap->mapped.pages = (struct page **)__get_free_page(GFP_KERNEL);
	if (!bitmap->mapped.pages) {
		ret = -ENOMEM;
		goto err_free;
	}

	ret = iova_bitmap_get(bitmap);
	if (ret)
		goto err_free;

	return bitmap;

err_free:
	iova_bitmap_free(bitmap);
	return ERR_PTR(ret);
}

/**
 * iova_bitmap_free() - Release an IOVA bitmap
 * @bitmap: the bitmap from iova_bitmap_alloc()
 *
 * Unpins the current window and frees everything @bitmap holds.
 */
void iova_bitmap_free(struct iova_bitmap *bitmap)
{
	iova_bitmap_put(bitmap);
	if (bitmap->mapped.pages)
		free_page((unsigned long)bitmap->mapped.pages);
	kfree(bitmap);
}

/*
 * Number of bytes of the user bitmap from the start of the window to the end
 * of the pinned pages or of the bitmap, whichever comes first.
 */
static unsigned long iova_bitmap_mapped_remaining(struct iova_bitmap *bitmap)
{
	unsigned long pinned = (bitmap->mapped.npages << PAGE_SHIFT) -
			       bitmap->mapped.pgoff;
	unsigned long left = bitmap->mapped_total_index -
			     bitmap->mapped_base_index;

	return min(left, pinned);
}

/*
 * Length of the IOVA range covered by the window, clamped to the end of the
 * whole range.
 */
static unsigned long iova_bitmap_mapped_length(struct iova_bitmap *bitmap)
{
	unsigned long last = bitmap->iova + bitmap->length - 1;
	unsigned long iova = iova_bitmap_mapped_iova(bitmap);
	unsigned long length;

	length = iova_bitmap_index_to_offset(bitmap,
					     iova_bitmap_mapped_remaining(bitmap));
	if (iova + length - 1 > last)
		length -= (iova + length - 1) - last;

	return length;
}

static bool iova_bitmap_done(struct iova_bitmap *bitmap)
{
	return bitmap->mapped_base_index >= bitmap->mapped_total_index;
}

/* Move the window past the range just reported and pin the next one. */
static int iova_bitmap_advance(struct iova_bitmap *bitmap)
{
	unsigned long last = iova_bitmap_mapped_length(bitmap) - 1;

	bitmap->mapped_base_index +=
		iova_bitmap_offset_to_index(bitmap, last) + 1;

	iova_bitmap_put(bitmap);
	if (iova_bitmap_done(bitmap))
		return 0;

	return iova_bitmap_get(bitmap);
}

/**
 * iova_bitmap_for_each() - Walk an IOVA bitmap window by window
 * @bitmap: the bitmap from iova_bitmap_alloc()
 * @opaque: passed on to @fn
 * @fn: called for each window with the IOVA range the window covers; it
 *	may call iova_bitmap_set() for IOVAs within that range only
 *
 * Pins each window of the user bitmap in turn, starting with the one
 * iova_bitmap_alloc() pinned, until the whole range has been covered.
 *
 * Return: 0 once the whole range has been walked; the first non-zero value
 * returned by @fn, which stops the walk; or -EFAULT if a window of the user
 * bitmap cannot be pinned.
 */
int iova_bitmap_for_each(struct iova_bitmap *bitmap, void *opaque,
			 iova_bitmap_fn_t fn)
{
	int ret = 0;

	while (!iova_bitmap_done(bitmap)) {
		ret = fn(bitmap, iova_bitmap_mapped_iova(bitmap),
			 iova_bitmap_mapped_length(bitmap), opaque);
		if (ret)
			break;

		ret = iova_bitmap_advance(bitmap);
		if (ret)
			break;
	}

	return ret;
}

/**
 * iova_bitmap_set() - Mark an IOVA range in the user bitmap
 * @bitmap: the bitmap passed to the iova_bitmap_for_each() callback
 * @iova: first IOVA to mark
 * @length: length of the range to mark, not 0
 *
 * Sets the bits of every page of the range [@iova, @iova + @length - 1].
 * Only to be called from the iova_bitmap_for_each() callback, for IOVAs
 * within the range it was passed; bits beyond the pinned window are
 * silently dropped.
 */
void iova_bitmap_set(struct iova_bitmap *bitmap,
		     unsigned long iova, size_t length)
{
	struct iova_bitmap_map *mapped = &bitmap->mapped;
	unsigned long first_bit = mapped->pgoff * BITS_PER_BYTE;
	unsigned long cur_bit = first_bit +
				((iova - mapped->iova) >> mapped->pgshift);
	unsigned long last_bit = first_bit +
				 ((iova + length - 1 - mapped->iova) >>
				  mapped->pgshift);

	do {
		unsigned long page_idx = cur_bit / BITS_PER_PAGE;
		unsigned int offset = cur_bit % BITS_PER_PAGE;
		unsigned int nbits = min(BITS_PER_PAGE - offset,
					 last_bit - cur_bit + 1);
		void *kaddr;

		if (unlikely(page_idx >= mapped->npages))
			break;

		kaddr = kmap_local_page(mapped->pages[page_idx]);
		bitmap_set(kaddr, offset, nbits);
		kunmap_local(kaddr);
		cur_bit += nbits;
	} while (cur_bit <= last_bit);
}
EXPORT_SYMBOL_GPL(iova_bitmap_set);
