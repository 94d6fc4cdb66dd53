// SPDX-License-Identifier: GPL-2.0-only
/*
 * kexec_ranges.c - preserve-context images of many ranges, filled in parts
 *
 * A hibernation image resumed through kexec jump is the first kernel's
 * used pages: thousands of ranges, up to most of RAM. kexec_load() takes
 * 16 segments and needs all their bytes in user memory at once, and the
 * kimage page allocator walks lists, O(pages^2) at that size.
 *
 * A ranges image (KEXEC_PRESERVE_CONTEXT | KEXEC_RANGES) declares all its
 * destinations in one call: up to KEXEC_RANGES_MAX page-aligned ranges in
 * ascending order, without data, each wholly System RAM. Every page gets a
 * zeroed source page at once, so that no source page is a destination
 * page the swap would overwrite before reading it (the invariant the
 * kimage allocator keeps, kept here with two xarrays instead of lists).
 * Later calls with KEXEC_PRESERVE_CONTEXT | KEXEC_FILL copy data into
 * those source pages, any number of segments per call, each inside one
 * declared range, so the caller needs memory only for the part it writes.
 * Pages never filled stay zero.
 */

#define pr_fmt(fmt) "kexec: " fmt

#include <linux/highmem.h>
#include <linux/ioport.h>
#include <linux/kexec.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "kexec_internal.h"

/*
 * A ranges image may ask for most of RAM: when memory runs out, its load
 * fails with -ENOMEM rather than waking the OOM killer or warning.
 */
#define KIMAGE_RANGES_GFP	(__GFP_RETRY_MAYFAIL | __GFP_NOWARN)

/* The declared range holding @addr, or NULL. */
static struct kexec_segment *kimage_range_at(struct kimage *image,
					     unsigned long addr)
{
	unsigned long lo = 0, hi = image->nr_ranges;

	while (lo < hi) {
		unsigned long mid = lo + (hi - lo) / 2;
		struct kexec_segment *r = &image->ranges[mid];

		if (addr < r->mem)
			hi = mid;
		else if (addr - r->mem >= r->memsz)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/* Whether [start, end] (end inclusive) meets a declared range. */
bool kimage_ranges_intersect(struct kimage *image, unsigned long start,
			     unsigned long end)
{
	unsigned long lo = 0, hi = image->nr_ranges;

	/* The first range that ends after start... */
	while (lo < hi) {
		unsigned long mid = lo + (hi - lo) / 2;
		struct kexec_segment *r = &image->ranges[mid];

		if (r->mem + r->memsz - 1 < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* ...begins at or before end. */
	return lo < image->nr_ranges && image->ranges[lo].mem <= end;
}

/*
 * Takes a copy of the declared ranges, checked: no data, page aligned,
 * not empty, ascending without overlap, below the destination limit, all
 * System RAM, no more pages than RAM has.
 */
int kimage_ranges_init(struct kimage *image, struct kexec_segment *ranges,
		       unsigned long nr)
{
	unsigned long i, pages = 0;

	for (i = 0; i < nr; i++) {
		struct kexec_segment *r = &ranges[i];
		unsigned long end = r->mem + r->memsz;

		if (r->buf || r->bufsz)
			return -EINVAL;
		if (!r->memsz || ((r->mem | r->memsz) & ~PAGE_MASK))
			return -EADDRNOTAVAIL;
		if (end < r->mem || end >= KEXEC_DESTINATION_MEMORY_LIMIT)
			return -EADDRNOTAVAIL;
		if (i && r->mem < ranges[i - 1].mem + ranges[i - 1].memsz)
			return -EINVAL;
		if (!kexec_range_is_ram(r->mem, r->memsz))
			return -EADDRNOTAVAIL;
		pages += r->memsz >> PAGE_SHIFT;
		cond_resched();
	}
	if (pages > totalram_pages())
		return -ENOMEM;

	image->ranges = kvmemdup(ranges, nr * sizeof(*ranges), GFP_KERNEL);
	if (!image->ranges)
		return -ENOMEM;
	image->nr_ranges = nr;
	xa_init(&image->range_entries);
	xa_init(&image->range_parked);
	return 0;
}

void kimage_ranges_free(struct kimage *image)
{
	if (!image->nr_ranges)
		return;
	/* The parked pages are on image->dest_pages: freed with it. */
	xa_destroy(&image->range_parked);
	xa_destroy(&image->range_entries);
	kvfree(image->ranges);
	image->ranges = NULL;
	image->nr_ranges = 0;
}

/*
 * A source page for @dest (KIMAGE_NO_DEST for an indirection page) that
 * is @dest itself or no destination at all. A page that is another
 * range's destination is parked until that destination's turn; if that
 * destination already has its source page, the two trade places.
 */
struct page *kimage_range_alloc_page(struct kimage *image, gfp_t gfp_mask,
				     unsigned long dest)
{
	struct page *page = NULL;

	if (dest != KIMAGE_NO_DEST)
		page = xa_erase(&image->range_parked, dest >> PAGE_SHIFT);
	if (page) {
		list_del(&page->lru);
		return page;
	}
	for (;;) {
		kimage_entry_t *old;
		unsigned long addr;
		int err;

		page = kimage_alloc_pages(gfp_mask | KIMAGE_RANGES_GFP, 0);
		if (!page)
			return NULL;
		if (page_to_boot_pfn(page) >
		    (KEXEC_SOURCE_MEMORY_LIMIT >> PAGE_SHIFT)) {
			list_add(&page->lru, &image->unusable_pages);
			continue;
		}
		addr = page_to_boot_pfn(page) << PAGE_SHIFT;
		if (addr == dest || !kimage_range_at(image, addr))
			return page;

		old = xa_load(&image->range_entries, addr >> PAGE_SHIFT);
		if (old) {
			struct page *old_page;

			/* Its data moves home; its old page is no destination. */
			old_page = boot_pfn_to_page(*old >> PAGE_SHIFT);
			copy_highpage(page, old_page);
			*old = addr | (*old & ~PAGE_MASK);
			/* An indirection page must not be highmem (32-bit). */
			if (!(gfp_mask & __GFP_HIGHMEM) && PageHighMem(old_page)) {
				kimage_free_pages(old_page);
				continue;
			}
			return old_page;
		}
		err = xa_err(xa_store(&image->range_parked, addr >> PAGE_SHIFT,
				      page, GFP_KERNEL | KIMAGE_RANGES_GFP));
		if (err) {
			kimage_free_pages(page);
			return NULL;
		}
		list_add(&page->lru, &image->dest_pages);
	}
}

/* Gives every page of every declared range a zeroed source page. */
int kimage_load_ranges(struct kimage *image)
{
	unsigned long i;

	for (i = 0; i < image->nr_ranges; i++) {
		struct kexec_segment *r = &image->ranges[i];
		unsigned long addr;
		int ret;

		ret = kimage_set_destination(image, r->mem);
		if (ret)
			return ret;
		for (addr = r->mem; addr - r->mem < r->memsz; addr += PAGE_SIZE) {
			struct page *page;

			page = kimage_range_alloc_page(image, GFP_HIGHUSER, addr);
			if (!page)
				return -ENOMEM;
			clear_highpage(page);
			ret = kimage_add_page(image, page_to_boot_pfn(page) << PAGE_SHIFT);
			if (ret)
				return ret;
			/* kimage_add_entry() left image->entry past the new entry. */
			ret = xa_err(xa_store(&image->range_entries, addr >> PAGE_SHIFT,
					      image->entry - 1,
					      GFP_KERNEL | KIMAGE_RANGES_GFP));
			if (ret)
				return ret;
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
	}
	return 0;
}

/*
 * KEXEC_FILL: copies each segment's data into the source pages of its
 * destinations. All segments are checked before any byte is copied:
 * page-aligned, bufsz == memsz, inside one declared range.
 */
int kimage_fill(struct kimage *image, unsigned long nr,
		struct kexec_segment *segs)
{
	unsigned long i;

	for (i = 0; i < nr; i++) {
		struct kexec_segment *s = &segs[i];
		struct kexec_segment *r = kimage_range_at(image, s->mem);

		if (!s->memsz || s->bufsz != s->memsz)
			return -EINVAL;
		if ((s->mem | s->memsz) & ~PAGE_MASK)
			return -EADDRNOTAVAIL;
		if (!r || s->memsz > r->memsz - (s->mem - r->mem))
			return -EADDRNOTAVAIL;
	}
	for (i = 0; i < nr; i++) {
		const char __user *buf = segs[i].buf;
		unsigned long addr = segs[i].mem;
		unsigned long end = addr + segs[i].memsz;

		for (; addr < end; addr += PAGE_SIZE, buf += PAGE_SIZE) {
			kimage_entry_t *entry;
			unsigned long left;
			void *ptr;

			entry = xa_load(&image->range_entries, addr >> PAGE_SHIFT);
			if (WARN_ON_ONCE(!entry))
				return -EINVAL;
			ptr = kmap_local_page(boot_pfn_to_page(*entry >> PAGE_SHIFT));
			left = copy_from_user(ptr, buf, PAGE_SIZE);
			kunmap_local(ptr);
			if (left)
				return -EFAULT;
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
	}
	return 0;
}
