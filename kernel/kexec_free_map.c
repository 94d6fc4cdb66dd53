// SPDX-License-Identifier: GPL-2.0-only
/*
 * kexec_free_map.c - tell the image jumped to which of our pages are free
 *
 * A kernel started by kexec jump that saves this kernel's memory (for
 * hibernation) need not save the pages this kernel's page allocator holds
 * free. This kernel knows them exactly at the jump, when it runs on one
 * CPU with interrupts off and nothing allocates: machine_kexec() records
 * them there, in a bitmap allocated when the image was loaded.
 *
 * The other kernel reads the bitmap through /proc/vmcore. VMCOREINFO
 * carries KEXEC_JUMP_FREE_MAP=<physical address> of a descriptor, struct
 * kexec_free_map_desc below (little-endian u64 words):
 *
 *   magic    KEXEC_FREE_MAP_MAGIC
 *   valid    1 from the record to the return of the jump, else 0
 *   pfn_end  the bitmap covers page frames [0, pfn_end)
 *   nr_pages bitmap pages
 *   dir      physical address of nr_pages u64 words: each bitmap page's
 *            physical address; bit n of bitmap page k (bit n % 8 of byte
 *            n / 8) is page frame k * PAGE_SIZE * 8 + n; set means free.
 *
 * Pages on per-CPU free lists count as used (pcp lists are drained when
 * the map is allocated, so there are few).
 */

#include <linux/gfp.h>
#include <linux/kexec.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/nmi.h>
#include <linux/slab.h>
#include <linux/vmcore_info.h>

#include "kexec_internal.h"

#define KEXEC_FREE_MAP_MAGIC	0x50414d4545524653ULL	/* "SFREEMAP" */
#define BITS_PER_MAP_PAGE	(PAGE_SIZE * BITS_PER_BYTE)

struct kexec_free_map_desc {
	u64 magic;
	u64 valid;
	u64 pfn_end;
	u64 nr_pages;
	u64 dir;
};

struct kexec_free_map {
	unsigned long pfn_end;
	unsigned long nr_pages;
	u64 *dir;
	unsigned long *bits[];
};

static struct kexec_free_map_desc kexec_free_map_desc = {
	.magic = KEXEC_FREE_MAP_MAGIC,
};

#ifdef CONFIG_VMCORE_INFO
/* Called by crash_save_vmcoreinfo_init(), before the note is made. */
void kexec_free_map_vmcoreinfo(void)
{
	vmcoreinfo_append_str("KEXEC_JUMP_FREE_MAP=%llx\n",
			      (unsigned long long)__pa_symbol(&kexec_free_map_desc));
}
#endif

void kimage_free_map_free(struct kimage *image)
{
	struct kexec_free_map *map = image->free_map;
	unsigned long i;

	if (!map)
		return;
	for (i = 0; i < map->nr_pages; i++)
		free_page((unsigned long)map->bits[i]);
	free_pages_exact(map->dir, map->nr_pages * sizeof(u64));
	kfree(map);
	image->free_map = NULL;
}

int kimage_free_map_alloc(struct kimage *image)
{
	unsigned long pfn_end = max_pfn, nr, i;
	struct kexec_free_map *map;

	nr = DIV_ROUND_UP(pfn_end, BITS_PER_MAP_PAGE);
	map = kzalloc(struct_size(map, bits, nr), GFP_KERNEL);
	if (!map)
		return -ENOMEM;
	map->pfn_end = pfn_end;
	image->free_map = map;
	map->dir = alloc_pages_exact(nr * sizeof(u64), GFP_KERNEL);
	if (!map->dir)
		goto nomem;
	for (i = 0; i < nr; i++) {
		map->bits[i] = (unsigned long *)get_zeroed_page(GFP_KERNEL);
		if (!map->bits[i])
			goto nomem;
		map->nr_pages = i + 1;
		map->dir[i] = virt_to_phys(map->bits[i]);
	}
	drain_all_pages(NULL);
	return 0;
nomem:
	kimage_free_map_free(image);
	return -ENOMEM;
}

static void kexec_free_map_set(struct kexec_free_map *map, unsigned long pfn,
			       unsigned long nr)
{
	for (; nr && pfn < map->pfn_end; pfn++, nr--)
		__set_bit(pfn % BITS_PER_MAP_PAGE, map->bits[pfn / BITS_PER_MAP_PAGE]);
}

/* Called by machine_kexec() with interrupts off, on the only CPU online. */
void kimage_free_map_record(struct kimage *image)
{
	struct kexec_free_map *map = image->free_map;
	struct zone *zone;
	unsigned long i;

	if (!map)
		return;
	for (i = 0; i < map->nr_pages; i++)
		clear_page(map->bits[i]);
	for_each_populated_zone(zone) {
		unsigned int order, t;
		unsigned long flags;
		struct page *page;

		spin_lock_irqsave(&zone->lock, flags);
		for (order = 0; order < NR_PAGE_ORDERS; order++) {
			for (t = 0; t < MIGRATE_TYPES; t++)
				list_for_each_entry(page,
						    &zone->free_area[order].free_list[t],
						    buddy_list)
					kexec_free_map_set(map, page_to_pfn(page),
							   1UL << order);
			/* Millions of pages with interrupts off. */
			touch_nmi_watchdog();
		}
		spin_unlock_irqrestore(&zone->lock, flags);
	}
	kexec_free_map_desc.pfn_end = map->pfn_end;
	kexec_free_map_desc.nr_pages = map->nr_pages;
	kexec_free_map_desc.dir = virt_to_phys(map->dir);
	kexec_free_map_desc.valid = 1;
}

/*
 * Called by machine_kexec() when the image has jumped back, still with
 * interrupts off. The image may have been a kernel that restored this one
 * over its own memory (a hibernation resume): the pages free here then
 * hold what that kernel left. With init_on_free an allocation takes them
 * as zeroed and with page poisoning as poisoned, so make them so, as
 * hibernation does after its restore. The map still says which pages are
 * free: nothing has run here since it was recorded.
 */
void kimage_free_map_forget(struct kimage *image)
{
	struct kexec_free_map *map = image->free_map;
	unsigned long i, bit, n = 0;

	kexec_free_map_desc.valid = 0;
	if (!map || !(page_poisoning_enabled() || want_init_on_free()))
		return;
	for (i = 0; i < map->nr_pages; i++) {
		for_each_set_bit(bit, map->bits[i], BITS_PER_MAP_PAGE) {
			struct page *page = pfn_to_page(i * BITS_PER_MAP_PAGE + bit);

			if (page_poisoning_enabled())
				__kernel_poison_pages(page, 1);
			else
				clear_highpage(page);
			/* Gigabytes with interrupts off. */
			if (!(++n % 65536))
				touch_nmi_watchdog();
		}
	}
}
