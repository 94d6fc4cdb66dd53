// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the check /proc/vmcore makes of the ELF core header it
 * is given: a PT_LOAD whose end wraps around the address space is left
 * out (made PT_NULL), every other header is kept as it was. The check
 * runs once at boot, so these tests are in the init section too.
 */

#include <kunit/test.h>
#include <linux/elf.h>
#include <linux/mm.h>

#include "internal.h"

/* An ELF64 core header as parse_crash_elf64_headers() reads it. */
struct core_header {
	Elf64_Ehdr ehdr;
	Elf64_Phdr phdr[6];
};

static void __init put_phdr(Elf64_Phdr *p, u32 type, u64 offset, u64 memsz)
{
	p->p_type = type;
	p->p_offset = offset;
	p->p_paddr = offset;
	p->p_filesz = memsz;
	p->p_memsz = memsz;
}

static void __init wrapping_ptloads_are_left_out(struct kunit *test)
{
	struct core_header *h;
	int i;

	h = kunit_kzalloc(test, sizeof(*h), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, h);
	h->ehdr.e_phnum = ARRAY_SIZE(h->phdr);
	put_phdr(&h->phdr[0], PT_NOTE, 0x1000, 0x400);
	put_phdr(&h->phdr[1], PT_LOAD, 0x100000, 0x7ff00000);
	/* What kexec-tools writes for 1 MiB to --mem-min, wrapped. */
	put_phdr(&h->phdr[2], PT_LOAD, 0x100000, -0x100000ULL + 0x1000);
	/* Ends exactly where a page-rounded end still fits. */
	put_phdr(&h->phdr[3], PT_LOAD, U64_MAX & PAGE_MASK & ~0xfffffULL,
		 0x100000 - PAGE_SIZE);
	/* Ends inside the last page: rounding it up would wrap. */
	put_phdr(&h->phdr[4], PT_LOAD, U64_MAX & PAGE_MASK, 1);
	/* A PT_NOTE is never a range of memory: left alone even if huge. */
	put_phdr(&h->phdr[5], PT_NOTE, U64_MAX - 1, 0x10);

	drop_wrapping_ptloads_elf64((char *)h);

	KUNIT_EXPECT_EQ(test, h->ehdr.e_phnum, (Elf64_Half)ARRAY_SIZE(h->phdr));
	KUNIT_EXPECT_EQ(test, h->phdr[0].p_type, (Elf64_Word)PT_NOTE);
	KUNIT_EXPECT_EQ(test, h->phdr[1].p_type, (Elf64_Word)PT_LOAD);
	KUNIT_EXPECT_EQ(test, h->phdr[2].p_type, (Elf64_Word)PT_NULL);
	KUNIT_EXPECT_EQ(test, h->phdr[3].p_type, (Elf64_Word)PT_LOAD);
	KUNIT_EXPECT_EQ(test, h->phdr[4].p_type, (Elf64_Word)PT_NULL);
	KUNIT_EXPECT_EQ(test, h->phdr[5].p_type, (Elf64_Word)PT_NOTE);
	/* Only the type changes: a reader can still print what was left out. */
	for (i = 0; i < ARRAY_SIZE(h->phdr); i++)
		KUNIT_EXPECT_NE_MSG(test, h->phdr[i].p_memsz, 0ULL, "phdr %d", i);
}

/*
 * Neither the cases nor the suite may be __initdata: KUnit's list of
 * results refers to them after boot.
 */
static struct kunit_case __refdata vmcore_header_test_cases[] = {
	KUNIT_CASE(wrapping_ptloads_are_left_out),
	{}
};

static struct kunit_suite vmcore_header_test_suite = {
	.name = "vmcore_header",
	.test_cases = vmcore_header_test_cases,
};

kunit_test_init_section_suites(&vmcore_header_test_suite);

MODULE_DESCRIPTION("KUnit tests for /proc/vmcore's ELF header checks");
MODULE_LICENSE("GPL");
