// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the checks of ranges images (kexec_ranges.c): what a
 * KEXEC_RANGES declaration and a KEXEC_FILL call may ask for. Every
 * refusal happens before anything is allocated or copied, so the tests
 * need no loaded image: a bare struct kimage and a few pages of RAM
 * whose addresses are declared but never written.
 */

#include <kunit/test.h>
#include <linux/gfp.h>
#include <linux/kexec.h>
#include <linux/mm.h>
#include <linux/pfn.h>

#include "kexec_internal.h"

/* Four pages of RAM; ranges are declared over pages 0 and 2-3. */
struct ranges_ctx {
	struct kimage *image;
	struct page *pages;
	unsigned long pa;
};

static int ranges_test_init(struct kunit *test)
{
	struct ranges_ctx *ctx;

	ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ctx);
	ctx->image = kunit_kzalloc(test, sizeof(*ctx->image), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ctx->image);
	ctx->pages = alloc_pages(GFP_KERNEL, 2);
	KUNIT_ASSERT_NOT_NULL(test, ctx->pages);
	ctx->pa = page_to_phys(ctx->pages);
	test->priv = ctx;
	return 0;
}

static void ranges_test_exit(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;

	kimage_ranges_free(ctx->image);
	__free_pages(ctx->pages, 2);
}

static struct kexec_segment range(unsigned long mem, unsigned long memsz)
{
	return (struct kexec_segment){ .mem = mem, .memsz = memsz };
}

/* Declares pages 0 and 2-3 of the context's RAM. */
static void declare_two(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;
	struct kexec_segment r[] = {
		range(ctx->pa, PAGE_SIZE),
		range(ctx->pa + 2 * PAGE_SIZE, 2 * PAGE_SIZE),
	};

	KUNIT_ASSERT_EQ(test, kimage_ranges_init(ctx->image, r, 2), 0);
	KUNIT_ASSERT_EQ(test, ctx->image->nr_ranges, 2UL);
}

static void ranges_declared_in_order_are_taken(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;
	struct kimage *image = ctx->image;
	unsigned long pa = ctx->pa;

	declare_two(test);
	KUNIT_EXPECT_TRUE(test, kimage_ranges_intersect(image, pa, pa));
	KUNIT_EXPECT_TRUE(test, kimage_ranges_intersect(image, 0, pa));
	KUNIT_EXPECT_FALSE(test, kimage_ranges_intersect(image, 0, pa - 1));
	/* The gap between the ranges, to its last byte. */
	KUNIT_EXPECT_FALSE(test, kimage_ranges_intersect(image, pa + PAGE_SIZE,
							 pa + 2 * PAGE_SIZE - 1));
	KUNIT_EXPECT_TRUE(test, kimage_ranges_intersect(image, pa + PAGE_SIZE,
							pa + 2 * PAGE_SIZE));
	KUNIT_EXPECT_TRUE(test, kimage_ranges_intersect(image,
							pa + 4 * PAGE_SIZE - 1,
							ULONG_MAX));
	KUNIT_EXPECT_FALSE(test, kimage_ranges_intersect(image,
							 pa + 4 * PAGE_SIZE,
							 ULONG_MAX));
	KUNIT_EXPECT_TRUE(test, kimage_ranges_intersect(image, 0, ULONG_MAX));
}

static void ranges_with_data_are_refused(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;
	struct kexec_segment r = range(ctx->pa, PAGE_SIZE);

	r.bufsz = PAGE_SIZE;
	KUNIT_EXPECT_EQ(test, kimage_ranges_init(ctx->image, &r, 1), -EINVAL);
	r.bufsz = 0;
	r.buf = (void __user *)PAGE_SIZE;
	KUNIT_EXPECT_EQ(test, kimage_ranges_init(ctx->image, &r, 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, ctx->image->nr_ranges, 0UL);
}

static void ranges_empty_or_unaligned_are_refused(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;
	struct kexec_segment bad[] = {
		range(ctx->pa, 0),
		range(ctx->pa + 1, PAGE_SIZE),
		range(ctx->pa, PAGE_SIZE + 1),
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		KUNIT_EXPECT_EQ_MSG(test,
				    kimage_ranges_init(ctx->image, &bad[i], 1),
				    -EADDRNOTAVAIL, "range %d", i);
	KUNIT_EXPECT_EQ(test, ctx->image->nr_ranges, 0UL);
}

static void ranges_wrapping_are_refused(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;
	struct kexec_segment r = range(PAGE_MASK, 2 * PAGE_SIZE);

	KUNIT_EXPECT_EQ(test, kimage_ranges_init(ctx->image, &r, 1),
			-EADDRNOTAVAIL);
}

static void ranges_out_of_order_are_refused(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;
	unsigned long pa = ctx->pa;
	struct kexec_segment descending[] = {
		range(pa + 2 * PAGE_SIZE, PAGE_SIZE),
		range(pa, PAGE_SIZE),
	};
	struct kexec_segment overlapping[] = {
		range(pa, 2 * PAGE_SIZE),
		range(pa + PAGE_SIZE, PAGE_SIZE),
	};

	KUNIT_EXPECT_EQ(test, kimage_ranges_init(ctx->image, descending, 2),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, kimage_ranges_init(ctx->image, overlapping, 2),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, ctx->image->nr_ranges, 0UL);
}

static void ranges_outside_ram_are_refused(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;
	/* The page after the last page frame: no System RAM there. */
	struct kexec_segment r = range(PFN_PHYS(max_pfn), PAGE_SIZE);

	KUNIT_EXPECT_EQ(test, kimage_ranges_init(ctx->image, &r, 1),
			-EADDRNOTAVAIL);
}

/*
 * Each refused fill is checked before any page is looked up: were one
 * taken, the page lookup of this never loaded image would warn.
 */
static void fills_outside_a_range_are_refused(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;
	unsigned long pa = ctx->pa;
	struct kexec_segment bad[] = {
		range(pa + PAGE_SIZE, PAGE_SIZE),	/* the gap */
		range(pa, 2 * PAGE_SIZE),		/* past range 0 */
		range(pa + 3 * PAGE_SIZE, 2 * PAGE_SIZE), /* past range 1 */
		range(pa - PAGE_SIZE, 2 * PAGE_SIZE),	/* before range 0 */
		range(pa + 4 * PAGE_SIZE, PAGE_SIZE),	/* after the last */
		range(pa + 1, PAGE_SIZE),		/* unaligned */
	};
	int i;

	declare_two(test);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		bad[i].bufsz = bad[i].memsz;
		KUNIT_EXPECT_EQ_MSG(test, kimage_fill(ctx->image, 1, &bad[i]),
				    -EADDRNOTAVAIL, "segment %d", i);
	}
}

static void fills_without_whole_data_are_refused(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;
	struct kexec_segment s = range(ctx->pa + 2 * PAGE_SIZE, 2 * PAGE_SIZE);

	declare_two(test);
	s.bufsz = PAGE_SIZE;
	KUNIT_EXPECT_EQ(test, kimage_fill(ctx->image, 1, &s), -EINVAL);
	s.bufsz = 0;
	s.memsz = 0;
	KUNIT_EXPECT_EQ(test, kimage_fill(ctx->image, 1, &s), -EINVAL);
}

/* One bad segment refuses the whole call, wherever it is. */
static void fills_are_checked_before_any_copy(struct kunit *test)
{
	struct ranges_ctx *ctx = test->priv;
	struct kexec_segment s[] = {
		range(ctx->pa, PAGE_SIZE),
		range(ctx->pa + PAGE_SIZE, PAGE_SIZE),
	};

	declare_two(test);
	s[0].bufsz = s[0].memsz;
	s[1].bufsz = s[1].memsz;
	KUNIT_EXPECT_EQ(test, kimage_fill(ctx->image, 2, s), -EADDRNOTAVAIL);
}

static struct kunit_case kexec_ranges_test_cases[] = {
	KUNIT_CASE(ranges_declared_in_order_are_taken),
	KUNIT_CASE(ranges_with_data_are_refused),
	KUNIT_CASE(ranges_empty_or_unaligned_are_refused),
	KUNIT_CASE(ranges_wrapping_are_refused),
	KUNIT_CASE(ranges_out_of_order_are_refused),
	KUNIT_CASE(ranges_outside_ram_are_refused),
	KUNIT_CASE(fills_outside_a_range_are_refused),
	KUNIT_CASE(fills_without_whole_data_are_refused),
	KUNIT_CASE(fills_are_checked_before_any_copy),
	{}
};

static struct kunit_suite kexec_ranges_test_suite = {
	.name = "kexec_ranges",
	.init = ranges_test_init,
	.exit = ranges_test_exit,
	.test_cases = kexec_ranges_test_cases,
};

kunit_test_suite(kexec_ranges_test_suite);

MODULE_DESCRIPTION("KUnit tests for kexec ranges images");
MODULE_LICENSE("GPL");
