/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kexec_jump_64.S - jump into a preserve-context kexec image and back
 *
 * machine_kexec() copies the page that starts at kexec_jump_call into the
 * image's control page and then calls kexec_jump_call() in kernel text.
 * The load-time page table (PA_TABLE_PAGE) maps all RAM 1:1 and maps the
 * kernel-text page of kexec_jump_call onto the control page, so the code
 * keeps running across each CR3 switch.
 *
 * unsigned long kexec_jump_call(unsigned long head,       %rdi
 *				 unsigned long page_list,  %rsi
 *				 unsigned long start);     %rdx
 *
 *   head       first entry of the image's indirection list (image->head)
 *   page_list  PA_CONTROL_PAGE, VA_CONTROL_PAGE, PA_TABLE_PAGE, PA_SWAP_PAGE
 *   start      the image's entry (first jump) or re-entry point (later ones)
 *   returns    the image's re-entry point: where the next jump must go
 *
 * Interrupts must be off. The caller has saved what C owns (FPU, MSRs, TSS,
 * LDT: save_processor_state()); this file saves and restores what the
 * round trip itself destroys: callee-saved registers, RFLAGS, RSP, CR0, CR3,
 * CR4, GDTR, IDTR, SS and the GS base, in the control page's data area.
 *
 * Jump out: switch to the 1:1 page table, swap every source page of the
 * image with its destination page (A's memory under the image is kept in
 * the source pages, not overwritten), then call the entry on a stack at the
 * top of the control page:
 *
 *   0(%rsp)  return address: the jump-back entry into this page
 *   8(%rsp)  the re-entry slot, holding start
 *
 * kexec-tools' purgatory passes 0(%rsp) to the new kernel as
 * kexec_jump_back_entry=. Nothing is passed in registers.
 *
 * Jump back: the callee either returns with "ret" (a physical-mode program;
 * it may first overwrite the slot) or, being a kernel, calls the jump-back
 * entry from its own kexec_jump_call(). Either way the word at 0(%rsp) on
 * arrival is the callee's re-entry point, and is what we return. The jump
 * back needs only that the entry's page is mapped 1:1 in the callee's
 * page table; every register and the stack are taken as garbage. Memory is
 * swapped back (the callee's pages go to the source pages, so it can be
 * resumed by the next jump) and A's state is restored.
 *
 * IBT and return thunks: kexec_jump_call() is reached by a direct call and
 * everything else by call/ret inside this page, after machine_kexec() has
 * turned CET off, so no ENDBR is needed; the returns are plain "ret"
 * (ANNOTATE_UNRET_SAFE) because the return thunk is not mapped 1:1. Built
 * and tested with CONFIG_X86_KERNEL_IBT=y.
 */

#include <linux/linkage.h>
#include <asm/asm-offsets.h>
#include <asm/kexec.h>
#include <asm/msr-index.h>
#include <asm/nospec-branch.h>
#include <asm/page_types.h>
#include <asm/processor-flags.h>
#include <asm/segment.h>
#include <asm/unwind_hints.h>

#define PTR(x)		((x) << 3)

/* Data area of the control page, after the code. */
#define DATA(x)		(KEXEC_CONTROL_CODE_MAX_SIZE + (x))
#define KJ_RSP		DATA(0x00)
#define KJ_CR0		DATA(0x08)
#define KJ_CR3		DATA(0x10)
#define KJ_CR4		DATA(0x18)
#define KJ_GS_BASE	DATA(0x20)
#define KJ_GDTR		DATA(0x28)	/* 10 bytes */
#define KJ_IDTR		DATA(0x38)	/* 10 bytes */
#define KJ_PA_TABLE	DATA(0x48)
#define KJ_PA_SWAP	DATA(0x50)
#define KJ_HEAD		DATA(0x58)
#define KJ_VA_CONTROL	DATA(0x60)

/* Indirection list entry flags, as in include/linux/kexec.h. */
#define KJ_IND_DESTINATION	0x1
#define KJ_IND_INDIRECTION	0x2
#define KJ_IND_DONE		0x4
#define KJ_IND_SOURCE		0x8

	.text
	.align PAGE_SIZE
	.code64
SYM_CODE_START_NOALIGN(kexec_jump_call)
	UNWIND_HINT_END_OF_STACK
	ANNOTATE_NOENDBR
	pushq	%rbx
	pushq	%rbp
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	pushfq

	/* Save A's state through the control page's kernel mapping. */
	movq	PTR(VA_CONTROL_PAGE)(%rsi), %r11
	movq	%r11, KJ_VA_CONTROL(%r11)
	movq	%rsp, KJ_RSP(%r11)
	movq	%cr0, %rax
	movq	%rax, KJ_CR0(%r11)
	movq	%cr3, %rax
	movq	%rax, KJ_CR3(%r11)
	movq	%cr4, %r13
	movq	%r13, KJ_CR4(%r11)
	sgdt	KJ_GDTR(%r11)
	sidt	KJ_IDTR(%r11)
	movq	%rdx, %r12
	movl	$MSR_GS_BASE, %ecx
	rdmsr
	movl	%eax, KJ_GS_BASE(%r11)
	movl	%edx, KJ_GS_BASE+4(%r11)
	movq	%r12, %rdx

	/* IF off, DF clear: the string copies below count upwards. */
	pushq	$0
	popfq

	movq	PTR(PA_CONTROL_PAGE)(%rsi), %r8
	movq	PTR(PA_TABLE_PAGE)(%rsi), %r9
	movq	PTR(PA_SWAP_PAGE)(%rsi), %r10
	movq	%r9, KJ_PA_TABLE(%r11)
	movq	%r10, KJ_PA_SWAP(%r11)
	movq	%rdi, KJ_HEAD(%r11)

	/* This page stays mapped (onto the control page) across the switch. */
	movq	%r9, %cr3
	leaq	PAGE_SIZE(%r8), %rsp
	leaq	(kj_identity_mapped - kexec_jump_call)(%r8), %rax
	pushq	%rax
	ANNOTATE_UNRET_SAFE
	ret
	int3
SYM_CODE_END(kexec_jump_call)

SYM_CODE_START_LOCAL_NOALIGN(kj_identity_mapped)
	UNWIND_HINT_END_OF_STACK
	ANNOTATE_NOENDBR
	/*
	 * Known CR4 and CR0 for the copy and the callee: keep only the paging
	 * mode (clearing PGE also drops global TLB entries), paging and
	 * protection on, write protection and alignment checks off.
	 */
	andl	$(X86_CR4_PAE | X86_CR4_LA57), %r13d
	movq	%r13, %cr4
	movq	%cr0, %rax
	andq	$~(X86_CR0_AM | X86_CR0_WP | X86_CR0_TS | X86_CR0_EM), %rax
	orl	$(X86_CR0_PG | X86_CR0_PE), %eax
	movq	%rax, %cr0
	movq	%r9, %cr3

	call	kj_swap_pages

	pushq	%rdx			/* the re-entry slot */
	ANNOTATE_RETPOLINE_SAFE
	call	*%rdx

	/*
	 * The jump-back entry. Any CR3 that maps this page 1:1 will do; the
	 * stack is the callee's and only its top word is read.
	 */
	movq	0(%rsp), %rbp
	leaq	kexec_jump_call(%rip), %r8
	movq	KJ_PA_TABLE(%r8), %rax
	movq	%rax, %cr3
	leaq	PAGE_SIZE(%r8), %rsp
	cld
	movq	KJ_HEAD(%r8), %rdi
	movq	KJ_PA_SWAP(%r8), %r10
	call	kj_swap_pages

	/* Values needed after the switch back to A's own page table. */
	movq	KJ_CR4(%r8), %r12
	movq	KJ_CR3(%r8), %r9
	movq	KJ_VA_CONTROL(%r8), %r8
	movabsq	$kj_virtual_mapped, %rax
	pushq	%rax
	ANNOTATE_UNRET_SAFE
	ret
	int3
SYM_CODE_END(kj_identity_mapped)

SYM_CODE_START_LOCAL_NOALIGN(kj_virtual_mapped)
	UNWIND_HINT_END_OF_STACK
	ANNOTATE_NOENDBR
	/* CR4 first: PCIDE may only be set while CR3's PCID is zero. */
	movq	%r12, %cr4
	movq	%r9, %cr3
	movq	KJ_CR0(%r8), %rax
	movq	%rax, %cr0
	lgdt	KJ_GDTR(%r8)
	lidt	KJ_IDTR(%r8)
	movl	$__KERNEL_DS, %eax
	movl	%eax, %ss
	movl	$MSR_GS_BASE, %ecx
	movl	KJ_GS_BASE(%r8), %eax
	movl	KJ_GS_BASE+4(%r8), %edx
	wrmsr
	movq	KJ_RSP(%r8), %rsp

	movq	%rbp, %rax
	popfq
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbp
	popq	%rbx
	ANNOTATE_UNRET_SAFE
	ret
	int3
SYM_CODE_END(kj_virtual_mapped)

/*
 * Swap each source page of the indirection list with its destination page,
 * through the swap page. Doing it twice restores both sides.
 *
 * %rdi: list head entry, %r10: swap page. Clobbers %rax, %rbx, %rcx, %rsi,
 * %rdi, %r11. Preserves %rdx, %r8, %r9, %r10.
 */
SYM_CODE_START_LOCAL_NOALIGN(kj_swap_pages)
	UNWIND_HINT_END_OF_STACK
	movq	%rdx, %r11		/* keep the caller's %rdx */
	movq	%rdi, %rcx
	xorl	%edx, %edx		/* current destination page */
	jmp	.Ldispatch
.Lnext_entry:
	movq	(%rbx), %rcx
	addq	$8, %rbx
.Ldispatch:
	movq	%rcx, %rax
	andq	$PAGE_MASK, %rax
	testb	$KJ_IND_DESTINATION, %cl
	jz	1f
	movq	%rax, %rdx
	jmp	.Lnext_entry
1:	testb	$KJ_IND_INDIRECTION, %cl
	jz	1f
	movq	%rax, %rbx
	jmp	.Lnext_entry
1:	testb	$KJ_IND_DONE, %cl
	jnz	.Lswap_done
	testb	$KJ_IND_SOURCE, %cl
	jz	.Lnext_entry

	movq	%rax, %rsi		/* source -> swap */
	movq	%r10, %rdi
	movl	$(PAGE_SIZE / 8), %ecx
	rep movsq
	movq	%rdx, %rsi		/* destination -> source */
	movq	%rax, %rdi
	movl	$(PAGE_SIZE / 8), %ecx
	rep movsq
	movq	%r10, %rsi		/* swap -> destination */
	movq	%rdx, %rdi
	movl	$(PAGE_SIZE / 8), %ecx
	rep movsq
	addq	$PAGE_SIZE, %rdx
	jmp	.Lnext_entry

.Lswap_done:
	movq	%r11, %rdx
	ANNOTATE_UNRET_SAFE
	ret
	int3
SYM_CODE_END(kj_swap_pages)

	/* Fails to assemble if the code outgrows its half of the page. */
	.skip KEXEC_CONTROL_CODE_MAX_SIZE - (. - kexec_jump_call), 0xcc
