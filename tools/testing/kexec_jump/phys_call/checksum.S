/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A program for kexec jump's physical-mode call: loaded with
 * kexec --load-preserve-context --args-none, entered with paging on the
 * identity map, interrupts off, the return address at 0(%rsp).
 *
 * It computes the FNV-1a hash of the buffer at physical address kj_buf
 * (kj_len bytes), counts its calls in its own memory (which the jump keeps
 * between calls), and stores hash and count right after the buffer.
 * kj-guest patches kj_buf and kj_len in after the "KJPARAMS" tag.
 *
 * Assembled with --defsym KJ_PAYLOAD=N it carries N more bytes that it
 * never reads: the benchmark's build, so that the jump has pages to swap.
 * With --defsym KJ_ZEROS=N it takes N more bytes of zeroed memory (.bss:
 * in memory, not in the file): the switch benchmark's builds, whose image
 * is 16 to 256 MiB.
 *
 * With --defsym KJ_INT3=1 it executes int3 first (the trampoline's #BP
 * handler returns) and leaves its re-entry point in the slot at 8(%rsp)
 * before returning, so every call after the first enters at .Lreentry,
 * which counts the re-entries; the count word is calls | reentries << 32.
 *
 * With --defsym KJ_FAULT=1 it reads an unmapped address first: the page
 * fault is the trampoline's to report.
 */
	.include "params.inc"
	kj_params_head
kj_buf:	.quad	0
kj_len:	.quad	0
kj_calls:
	.quad	0
kj_reentries:
	.quad	0

	.ifdef	KJ_INT3
.Lreentry:
	incq	kj_reentries(%rip)
	.endif
.Lrun:
	.ifdef	KJ_INT3
	int3
	.endif
	.ifdef	KJ_FAULT
	movabsq	0x7ff000000000, %rax
	.endif
	movq	kj_buf(%rip), %rsi
	movq	kj_len(%rip), %rcx
	movabsq	$0xcbf29ce484222325, %rax	/* FNV-1a offset basis */
	movabsq	$0x100000001b3, %r8		/* FNV-1a prime */
1:	testq	%rcx, %rcx
	jz	2f
	movzbl	(%rsi), %edx
	xorq	%rdx, %rax
	imulq	%r8, %rax
	incq	%rsi
	decq	%rcx
	jmp	1b
2:	incq	kj_calls(%rip)
	movq	%rax, (%rsi)
	movq	kj_calls(%rip), %rax
	movq	kj_reentries(%rip), %rdx
	shlq	$32, %rdx
	orq	%rdx, %rax
	movq	%rax, 8(%rsi)
	.ifdef	KJ_INT3
	leaq	.Lreentry(%rip), %rdx
	movq	%rdx, 8(%rsp)
	.endif
	ret

	.ifdef	KJ_PAYLOAD
	.data
	.fill	KJ_PAYLOAD, 1, 0xa5
	.endif

	.ifdef	KJ_ZEROS
	.bss
	.skip	KJ_ZEROS
	.endif
