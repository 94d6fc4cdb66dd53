// SPDX-License-Identifier: GPL-2.0
/*
 * kexec jump: the kexec_load() flags of preserve-context images and a
 * physical-mode call, seen from user space.
 *
 * - Ranges images (KEXEC_PRESERVE_CONTEXT | KEXEC_RANGES): each refusal
 *   of a declaration with its errno, then a declaration of two pages of
 *   System RAM, loaded and unloaded.
 * - KEXEC_FILL: refused with nothing declared and outside the declared
 *   ranges, accepted inside them.
 * - Resident images (KEXEC_RESIDENT, needs crashkernel=): a load whose
 *   last buffer is unmapped fails with EFAULT and leaves what was loaded
 *   (nothing, or a resident program that is then called).
 * - Physical-mode calls: a program of a few bytes loaded at a page of
 *   System RAM and run with reboot(LINUX_REBOOT_CMD_KEXEC) returns to
 *   the caller, also when it executes int3.
 *
 * The programs are entered with paging on the identity map and the return
 * address at 0(%rsp); each increments two words of a locked page of this
 * process by physical address (from /proc/self/pagemap), the second after
 * its int3 if it has one, and returns with ret.
 *
 * Needs root and a kernel with kexec jump (CONFIG_KEXEC_JUMP). Every image
 * it loads is unloaded before it exits.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include <linux/kexec.h>
#include <linux/reboot.h>

#include "../kselftest.h"

/* The series' flags, for older installed headers. */
#ifndef KEXEC_RESIDENT
#define KEXEC_RESIDENT		0x00000010
#endif
#ifndef KEXEC_RANGES
#define KEXEC_RANGES		0x00000020
#endif
#ifndef KEXEC_FILL
#define KEXEC_FILL		0x00000040
#endif

#define PAGE			4096UL
#define PRESERVE		KEXEC_PRESERVE_CONTEXT
#define NR_TESTS		18

/* Where a physical-mode program is loaded (as kexec-tools' default). */
#define PROG_DEST		0x1000000UL

/* The words of the marker page each program increments. */
#define MARK_CALL		0
#define MARK_INT3		16
#define MARK_RESIDENT		32
#define MARK_NOT_LOADED		48

/* Top-level System RAM ranges from /proc/iomem, and the reservation. */
struct ram {
	unsigned long start[64], end[64];	/* end inclusive */
	int nr;
	unsigned long crash_start, crash_end;
};

static struct ram ram;
static uint8_t page_buf[PAGE];	/* data for loads that must not read it */
static unsigned long base;	/* four pages of System RAM */
static uint64_t *mark;		/* the locked marker page */
static unsigned long mark_phys;

static long kexec_load(unsigned long entry, unsigned long nr,
		       struct kexec_segment *segs, unsigned long flags)
{
	return syscall(__NR_kexec_load, entry, nr, segs, flags);
}

static void unload(void)
{
	kexec_load(0, 0, NULL, 0);
}

static int loaded_state(void)
{
	char c = '?';
	int fd = open("/sys/kernel/kexec_loaded", O_RDONLY);

	if (fd < 0)
		return -1;
	if (read(fd, &c, 1) != 1)
		c = '?';
	close(fd);
	return c == '1' ? 1 : c == '0' ? 0 : -1;
}

/* A destination only: a range of a ranges image. */
static struct kexec_segment range(unsigned long mem, unsigned long memsz)
{
	struct kexec_segment s = {
		.buf = NULL, .bufsz = 0,
		.mem = (void *)mem, .memsz = memsz,
	};

	return s;
}

static struct kexec_segment seg(const void *buf, unsigned long bufsz,
				unsigned long mem, unsigned long memsz)
{
	struct kexec_segment s = {
		.buf = buf, .bufsz = bufsz,
		.mem = (void *)mem, .memsz = memsz,
	};

	return s;
}

/*
 * One result: @ret and @err from kexec_load(), @want the errno it must
 * fail with (0: it must succeed).
 */
static void expect(const char *name, long ret, int err, int want)
{
	int got = ret ? err : 0;

	if (got == want) {
		ksft_test_result_pass("%s\n", name);
		return;
	}
	ksft_print_msg("%s: got %s (%d), want %s (%d)\n", name,
		       got ? strerror(got) : "success", got,
		       want ? strerror(want) : "success", want);
	ksft_test_result_fail("%s\n", name);
}

static void read_iomem(void)
{
	char line[256], name[64];
	unsigned long s, e;
	FILE *f = fopen("/proc/iomem", "r");

	if (!f)
		ksft_exit_fail_msg("/proc/iomem: %s\n", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %lx-%lx : %63[^\n]", &s, &e, name) != 3)
			continue;
		if (line[0] != ' ' && !strcmp(name, "System RAM") &&
		    ram.nr < 64) {
			ram.start[ram.nr] = s;
			ram.end[ram.nr++] = e;
		} else if (!strcmp(name, "Crash kernel")) {
			ram.crash_start = s;
			ram.crash_end = e;
		}
	}
	fclose(f);
}

/* Four pages in the largest System RAM range, 15 MiB into it if it can. */
static unsigned long pick_base(void)
{
	unsigned long best = 0, size = 0, s, e;
	int i;

	for (i = 0; i < ram.nr; i++) {
		s = (ram.start[i] + PAGE - 1) & ~(PAGE - 1);
		e = ram.end[i] + 1;
		if (e > s && e - s > size) {
			size = e - s;
			best = s;
		}
	}
	if (size < 4 * PAGE)
		return 0;
	if (size >= (15UL << 20) + 4 * PAGE)
		best += 15UL << 20;
	return best;
}

static bool is_ram(unsigned long addr)
{
	int i;

	for (i = 0; i < ram.nr; i++)
		if (addr >= ram.start[i] && addr <= ram.end[i])
			return true;
	return false;
}

/* A page below the end of RAM that no System RAM range holds. */
static unsigned long pick_hole(void)
{
	unsigned long addr;
	int i;

	for (i = 0; i < ram.nr; i++) {
		addr = (ram.end[i] + PAGE) & ~(PAGE - 1);
		if (!is_ram(addr) && !is_ram(addr + PAGE - 1))
			return addr;
	}
	return 0;
}

static unsigned long phys_addr(const void *p)
{
	uint64_t entry = 0;
	off_t off = (unsigned long)p / PAGE * sizeof(entry);
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry), off) != sizeof(entry))
		entry = 0;
	close(fd);
	if (!(entry & (1ULL << 63)))
		return 0;
	return (entry & ((1ULL << 55) - 1)) * PAGE;
}

/* A locked page of this process, not at @avoid, by physical address. */
static void map_marker(unsigned long avoid)
{
	void *p[8];
	int i, n;

	for (n = 0; n < 8; n++) {
		p[n] = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
		if (p[n] == MAP_FAILED)
			ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
		memset(p[n], 0, PAGE);
		mark_phys = phys_addr(p[n]);
		if (mark_phys && mark_phys != avoid)
			break;
	}
	if (n == 8 || !mark_phys)
		ksft_exit_fail_msg("no physical address for a locked page\n");
	for (i = 0; i < n; i++)
		munmap(p[i], PAGE);
	mark = p[n];
}

/*
 * The program: movabs $mark_phys, %rax; incq first(%rax); [int3;]
 * incq first+8(%rax); ret. Returns its length.
 */
static size_t make_prog(uint8_t *code, unsigned int first, bool int3)
{
	size_t n = 0;

	code[n++] = 0x48;
	code[n++] = 0xb8;
	memcpy(code + n, &mark_phys, 8);
	n += 8;
	code[n++] = 0x48;
	code[n++] = 0xff;
	code[n++] = 0x40;
	code[n++] = first;
	if (int3)
		code[n++] = 0xcc;
	code[n++] = 0x48;
	code[n++] = 0xff;
	code[n++] = 0x40;
	code[n++] = first + 8;
	code[n++] = 0xc3;
	return n;
}

/* Runs the loaded image; 0 once it has jumped back, else an errno. */
static int call_image(void)
{
	/* The jump suspends the console: let this process's lines out. */
	fflush(stdout);
	tcdrain(STDOUT_FILENO);
	if (syscall(__NR_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		    LINUX_REBOOT_CMD_KEXEC, NULL))
		return errno;
	return 0;
}

static void test_ranges(void)
{
	unsigned long hole = pick_hole();
	struct kexec_segment s[2];
	const unsigned long flags = PRESERVE | KEXEC_RANGES;
	long ret;
	int before, loaded;

	s[0] = seg(page_buf, PAGE, base, PAGE);
	ret = kexec_load(base, 1, s, flags);
	expect("ranges_with_data_einval", ret, errno, EINVAL);

	s[0] = range(base + 1, PAGE);
	ret = kexec_load(base, 1, s, flags);
	expect("ranges_unaligned_eaddrnotavail", ret, errno, EADDRNOTAVAIL);

	s[0] = range(base, 0);
	ret = kexec_load(base, 1, s, flags);
	expect("ranges_empty_eaddrnotavail", ret, errno, EADDRNOTAVAIL);

	s[0] = range(base + 2 * PAGE, PAGE);
	s[1] = range(base, PAGE);
	ret = kexec_load(base, 2, s, flags);
	expect("ranges_out_of_order_einval", ret, errno, EINVAL);

	s[0] = range(base, 2 * PAGE);
	s[1] = range(base + PAGE, PAGE);
	ret = kexec_load(base, 2, s, flags);
	expect("ranges_overlapping_einval", ret, errno, EINVAL);

	if (hole) {
		s[0] = range(hole, PAGE);
		ret = kexec_load(base, 1, s, flags);
		expect("ranges_outside_ram_eaddrnotavail", ret, errno,
		       EADDRNOTAVAIL);
	} else {
		ksft_test_result_skip("%s: no hole in System RAM\n",
				      "ranges_outside_ram_eaddrnotavail");
	}

	s[0] = range(base, PAGE);
	ret = kexec_load(0, 1, s, flags);
	expect("ranges_entry_zero_einval", ret, errno, EINVAL);

	ret = kexec_load(base, 1, s, flags | KEXEC_RESIDENT);
	expect("ranges_and_resident_einval", ret, errno, EINVAL);

	ret = kexec_load(base, 1, s, flags | KEXEC_FILL);
	expect("ranges_and_fill_einval", ret, errno, EINVAL);

	/* Two pages of System RAM with a page between them. */
	s[0] = range(base, PAGE);
	s[1] = range(base + 2 * PAGE, PAGE);
	before = loaded_state();
	ret = kexec_load(base, 2, s, flags);
	if (ret) {
		expect("ranges_two_pages_load_unload", ret, errno, 0);
		return;
	}
	loaded = loaded_state();
	unload();
	if (before == 0 && loaded == 1 && loaded_state() == 0) {
		ksft_test_result_pass("ranges_two_pages_load_unload\n");
		return;
	}
	ksft_print_msg("kexec_loaded %d, then %d, %d unloaded: want 0, 1, 0\n",
		       before, loaded, loaded_state());
	ksft_test_result_fail("ranges_two_pages_load_unload\n");
}

static void test_fill(void)
{
	static uint8_t data[2 * PAGE];
	uint8_t code[32];
	struct kexec_segment s[2];
	long ret;

	unload();
	s[0] = seg(data, PAGE, base, PAGE);
	ret = kexec_load(0, 1, s, PRESERVE | KEXEC_FILL);
	expect("fill_nothing_declared_enoent", ret, errno, ENOENT);

	/* A preserve-context image of segments declares no ranges. */
	s[0] = seg(code, make_prog(code, MARK_CALL, false), PROG_DEST, PAGE);
	ret = kexec_load(PROG_DEST, 1, s, PRESERVE);
	if (ret) {
		ksft_print_msg("loading a program: %s\n", strerror(errno));
		ksft_test_result_fail("fill_segments_image_enoent\n");
	} else {
		s[0] = seg(data, PAGE, PROG_DEST, PAGE);
		ret = kexec_load(0, 1, s, PRESERVE | KEXEC_FILL);
		expect("fill_segments_image_enoent", ret, errno, ENOENT);
	}
	unload();

	s[0] = range(base, PAGE);
	s[1] = range(base + 2 * PAGE, PAGE);
	if (kexec_load(base, 2, s, PRESERVE | KEXEC_RANGES)) {
		ksft_print_msg("declaring two ranges: %s\n", strerror(errno));
		ksft_test_result_fail("fill_outside_ranges_eaddrnotavail\n");
		ksft_test_result_fail("fill_inside_range\n");
		return;
	}
	/* The page between the two ranges. */
	s[0] = seg(data, PAGE, base + PAGE, PAGE);
	ret = kexec_load(0, 1, s, PRESERVE | KEXEC_FILL);
	expect("fill_outside_ranges_eaddrnotavail", ret, errno, EADDRNOTAVAIL);

	memset(data, 0x5a, sizeof(data));
	s[0] = seg(data, PAGE, base, PAGE);
	s[1] = seg(data + PAGE, PAGE, base + 2 * PAGE, PAGE);
	ret = kexec_load(0, 2, s, PRESERVE | KEXEC_FILL);
	expect("fill_inside_range", ret, errno, 0);
	unload();
}

/* Calls the loaded program and checks the two words it increments. */
static bool called(const char *what, unsigned int first, uint64_t want)
{
	int err = call_image();

	if (err) {
		ksft_print_msg("%s: reboot(LINUX_REBOOT_CMD_KEXEC): %s\n",
			       what, strerror(err));
		return false;
	}
	if (phys_addr(mark) != mark_phys) {
		ksft_print_msg("%s: the marker page moved\n", what);
		return false;
	}
	if (mark[first / 8] != want || mark[first / 8 + 1] != want) {
		ksft_print_msg("%s: returned, marker %llu/%llu, want %llu/%llu\n",
			       what, (unsigned long long)mark[first / 8],
			       (unsigned long long)mark[first / 8 + 1],
			       (unsigned long long)want,
			       (unsigned long long)want);
		return false;
	}
	return true;
}

static void test_physical(const char *name, unsigned int first, bool int3,
			  int calls)
{
	uint8_t code[32];
	struct kexec_segment s;
	bool ok = true;
	int i;

	s = seg(code, make_prog(code, first, int3), PROG_DEST, PAGE);
	if (kexec_load(PROG_DEST, 1, &s, PRESERVE)) {
		ksft_print_msg("%s: loading the program: %s\n", name,
			       strerror(errno));
		ksft_test_result_fail("%s\n", name);
		return;
	}
	for (i = 1; ok && i <= calls; i++)
		ok = called(name, first, i);
	unload();
	if (ok && int3)
		ksft_print_msg("%s: int3 taken and returned from in %d calls\n",
			       name, calls);
	ksft_test_result(ok, "%s\n", name);
}

static void test_resident(void)
{
	const char *bad = "resident_unmapped_buffer_efault";
	const char *keep = "resident_reload_unmapped_buffer_keeps_image";
	unsigned long at = ram.crash_start;
	struct kexec_segment s[2];
	uint8_t code[32], other[32];
	int before, after;
	void *gone;
	long ret;
	bool ok;

	if (!ram.crash_end) {
		ksft_test_result_skip("%s: no crashkernel= reservation\n", bad);
		ksft_test_result_skip("%s: no crashkernel= reservation\n", keep);
		return;
	}
	gone = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (gone == MAP_FAILED || munmap(gone, PAGE))
		ksft_exit_fail_msg("mmap/munmap: %s\n", strerror(errno));

	/* Nothing loaded: nothing loaded after it. */
	unload();
	s[0] = seg(other, make_prog(other, MARK_NOT_LOADED, false), at, PAGE);
	s[1] = seg(gone, PAGE, at + PAGE, PAGE);
	before = loaded_state();
	ret = kexec_load(at, 2, s, PRESERVE | KEXEC_RESIDENT);
	after = loaded_state();
	if (before != after) {
		ksft_print_msg("%s: kexec_loaded %d before, %d after\n", bad,
			       before, after);
		ksft_test_result_fail("%s\n", bad);
	} else {
		expect(bad, ret, errno, EFAULT);
	}

	/* A resident program loaded: still loaded, and still whole. */
	s[0] = seg(code, make_prog(code, MARK_RESIDENT, false), at, PAGE);
	if (kexec_load(at, 1, s, PRESERVE | KEXEC_RESIDENT)) {
		ksft_print_msg("%s: loading a resident program: %s\n", keep,
			       strerror(errno));
		ksft_test_result_fail("%s\n", keep);
		return;
	}
	s[0] = seg(other, make_prog(other, MARK_NOT_LOADED, false), at, PAGE);
	ret = kexec_load(at, 2, s, PRESERVE | KEXEC_RESIDENT);
	ok = ret && errno == EFAULT;
	if (!ok)
		ksft_print_msg("%s: the reload got %s, want %s\n", keep,
			       ret ? strerror(errno) : "success",
			       strerror(EFAULT));
	if (ok && loaded_state() != 1) {
		ksft_print_msg("%s: kexec_loaded %d after the reload, want 1\n",
			       keep, loaded_state());
		ok = false;
	}
	if (ok)
		ok = called(keep, MARK_RESIDENT, 1);
	if (ok && (mark[MARK_NOT_LOADED / 8] || mark[MARK_NOT_LOADED / 8 + 1])) {
		ksft_print_msg("%s: the refused program ran\n", keep);
		ok = false;
	}
	unload();
	ksft_test_result(ok, "%s\n", keep);
}

int main(void)
{
	struct kexec_segment s;
	long ret;

	ksft_print_header();
#ifndef __x86_64__
	ksft_exit_skip("the physical-mode programs are x86_64 code\n");
#endif
	if (geteuid())
		ksft_exit_skip("kexec_load() needs root\n");
	/* KEXEC_FILL with no ranges image: ENOENT if the kernel has it. */
	s = seg(page_buf, PAGE, PROG_DEST, PAGE);
	ret = kexec_load(0, 1, &s, PRESERVE | KEXEC_FILL);
	if (ret && errno != ENOENT)
		ksft_exit_skip("no kexec jump ranges images in this kernel (KEXEC_FILL: %s)\n",
			       strerror(errno));

	read_iomem();
	base = pick_base();
	if (!base)
		ksft_exit_fail_msg("no System RAM in /proc/iomem\n");
	map_marker(PROG_DEST);
	ksft_print_msg("ranges at %#lx, hole at %#lx, programs at %#lx\n",
		       base, pick_hole(), PROG_DEST);
	ksft_print_msg("reservation %#lx-%#lx, marker page at %#lx\n",
		       ram.crash_start, ram.crash_end, mark_phys);
	ksft_set_plan(NR_TESTS);

	test_ranges();
	test_fill();
	test_physical("physical_call_returns", MARK_CALL, false, 2);
	test_physical("physical_call_int3_returns", MARK_INT3, true, 2);
	test_resident();

	ksft_finished();
}
