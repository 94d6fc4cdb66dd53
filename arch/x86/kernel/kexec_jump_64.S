/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kexec_jump_64.S - jump into a preserve-context kexec image and back
 *
 * unsigned long kexec_jump_call(unsigned long head,        %rdi
 *				 unsigned long *page_list,  %rsi
 *				 unsigned long start,       %rdx
 *				 unsigned long sme_active); %rcx
 *
 *   head        first entry of the image's indirection list (image->head)
 *   page_list   [PA_CONTROL_PAGE], [VA_CONTROL_PAGE], [PA_TABLE_PAGE],
 *               [PA_SWAP_PAGE], [PA_JUMP_STACK], [PA_RM_AREA],
 *               [PA_RM_SAVE], [RM_SIZE], [DEBUG_PORT], [NO_RETURN]
 *   start       the image's entry (first jump) or re-entry point (later)
 *   sme_active  nonzero if host memory encryption is active
 *   returns     the image's re-entry point: where the next jump must go
 *
 * Interrupts off, CET off (S_CET clear), one CPU online. The caller saved
 * what C owns (save_processor_state()); this file saves and restores what
 * the round trip itself destroys: callee-saved registers, RFLAGS, RSP, CR0,
 * CR3, CR4, GDTR, IDTR, SS and the GS base.
 *
 * machine_kexec() copies the page at kexec_jump_call (section
 * .text..kexec_jump: no call-depth thunk, no kprobe) to the control page.
 * The load-time page table (PA_TABLE_PAGE) maps all RAM 1:1 and maps the
 * kernel-text page of kexec_jump_call onto the control page, so the code
 * keeps running across each CR3 switch. Control page: code up to
 * KEXEC_CONTROL_CODE_MAX_SIZE, then the data area (saved state, a GDT and
 * an IDT of its own). The callee's stack is the page PA_JUMP_STACK.
 *
 * Each CR3 switch keeps an IDT, a GDT and a stack that the tables on both
 * sides map, so an NMI or machine check in between finds them: between
 * A's table and the 1:1 table, the copies in the control page at its
 * direct-map address (machine_kexec_prepare() maps that page there in the
 * 1:1 table too; gates to the stubs' kernel-text address, which both
 * tables map, to this code or its copy); between the callee's table and
 * the 1:1 table, those at its physical address (the entry contract: the
 * callee maps this page 1:1), with the stack at the top of the page.
 * Never the physical ones under A's table, where they may be user
 * memory (with SMAP, an implicit supervisor access to it faults).
 *
 * Jump out: switch to the 1:1 table; known CR4 (CET and global pages off,
 * MCE kept on TDX guests) before known CR0 (WP off); own GDT (CS
 * reloaded) and IDT; flush caches if SME is on; copy the real-mode
 * trampoline (RM_SIZE bytes, a multiple of 8, at PA_RM_AREA) to
 * PA_RM_SAVE; swap every source page of the image with its destination
 * page; call the entry with
 *
 *   0(%rsp)  return address: the jump-back entry, in the control page
 *   8(%rsp)  the re-entry slot, holding start
 *
 * Nothing is passed in registers. kexec-tools' purgatory hands 0(%rsp) to
 * the new kernel as kexec_jump_back_entry=. With NO_RETURN set (a ranges
 * image: a saved kernel restored over this one), both words are 0 and the
 * entry is jumped to: the kernel it resumes gets 0 as the re-entry point,
 * and kernel_kexec() there refuses to enter that image again.
 *
 * Jump back: the callee either returns with "ret" (a physical-mode
 * program; it may first overwrite the slot) or, being a kernel, calls the
 * jump-back entry from its own kexec_jump_call(). Either way the word at
 * 0(%rsp) on arrival is the callee's re-entry point, and is what this
 * returns. The entry needs only that its page is mapped 1:1 and that the
 * callee runs in A's paging mode (4- or 5-level: the entry cannot change
 * CR4.LA57 with paging on; a kernel loading an image that enters here
 * reads A's CR4 at KEXEC_JUMP_DATA_CR4, beside KEXEC_JUMP_MAGIC, and
 * refuses a mismatch); every other register, CR4 bit and descriptor table
 * is taken as the callee's. Global pages go off first, then the 1:1
 * table, the own GDT, IDT and stack, a cache flush if SME is on, the swap
 * back (the callee's pages go to the source pages, so it can be resumed
 * by the next jump), the real-mode trampoline copied back (the
 * 1:1 table maps it writable; a callee kernel may have put its own there)
 * and A's state: CR0 before CR4 (CR4.CET needs
 * CR0.WP), CR4 without PGE before CR3 (PCIDE needs a zero PCID, which the
 * 1:1 table's CR3 has), CR4.PGE only once CR3 is A's, so that no global
 * entry made under the 1:1 table (which maps this kernel-text page onto
 * the control page) outlives it. CR4.FRED stays clear: the FRED MSRs are
 * the callee's until restore_processor_state() writes A's and sets it.
 *
 * Exceptions while the 1:1 table is live (in the swap loop, or in a
 * physical-mode callee that keeps our IDT): #BP and NMI return; any other
 * vector halts, instead of a triple fault. If DEBUG_PORT is not 0 (the
 * "kexec_debug" parameter) it first prints the vector, error code, RIP,
 * CR2 and the general registers on the 8250 UART at that port.
 *
 * IBT and return thunks: kexec_jump_call() is reached by a direct call;
 * everything else by call/ret inside the page or by the IDT, with CET off,
 * so no ENDBR is needed. Returns are plain "ret" (ANNOTATE_UNRET_SAFE):
 * the return thunk is not mapped 1:1. Built with CONFIG_X86_KERNEL_IBT,
 * CONFIG_MITIGATION_RETPOLINE and CONFIG_MITIGATION_RETHUNK, objtool
 * clean, and run that way in QEMU (whose TCG does not enforce CET, so the
 * CET rules above are kept by reading the SDM, not by a test).
 *
 * Fixes made to relocate_kernel_64.S's preserve-context path from 6.13 on,
 * and how they apply here (this file does not share that code):
 *  - "Restore GDT on return from ::preserve_context kexec": applies; the
 *    GDTR and IDTR are saved and reloaded (and the GS base rewritten).
 *  - "Fix stack and handling of re-entry point for ::preserve_context":
 *    applies; the re-entry point is read at 0(%rsp) on arrival, and the
 *    callee's stack is a page of its own, not the end of the swap page.
 *  - "Ensure preserve_context flag is set on return to kernel" and "Use
 *    correct swap page in swap_pages function": not applicable; the
 *    swap loop has one meaning, swap, and one swap page, PA_SWAP_PAGE.
 *  - "Push kjump return address even for non-kjump kexec": not
 *    applicable; only preserve-context images come here.
 *  - "Disable global pages before writing to control page" and the CR4
 *    ordering rules (CET needs WP, PCIDE needs PCID 0): applied on both
 *    ways, see above.
 *  - The exception handlers in the control page (6.15/6.16 debugging
 *    support): applied; they halt where the machine would otherwise
 *    reset, and print only with "kexec_debug", as mainline's do.
 *  - Kept from 6.12: CR4.MCE on TDX guests (which machine_kexec_prepare()
 *    refuses for jumps), wbinvd with SME (here on both ways), and the
 *    call-depth-thunk exclusion for the copied page.
 */

#include <linux/linkage.h>
#include <linux/stringify.h>
#include <asm/alternative.h>
#include <asm/asm-offsets.h>
#include <asm/kexec.h>
#include <asm/msr-index.h>
#include <asm/nospec-branch.h>
#include <asm/page_types.h>
#include <asm/processor-flags.h>
#include <asm/segment.h>
#include <asm/trapnr.h>
#include <asm/unwind_hints.h>

#define PTR(x)		((x) << 3)

/* Data area of the control page, after the code. */
#define DATA(x)		(KEXEC_CONTROL_CODE_MAX_SIZE + (x))
#define KJ_RSP		DATA(0x00)
#define KJ_CR0		DATA(0x08)
#define KJ_CR3		DATA(0x10)
#define KJ_CR4		DATA(KEXEC_JUMP_DATA_CR4)	/* 0x18 */
#define KJ_GS_BASE	DATA(0x20)
#define KJ_GDTR		DATA(0x28)	/* A's, 10 bytes */
#define KJ_IDTR		DATA(0x38)	/* A's, 10 bytes */
#define KJ_PA_TABLE	DATA(0x48)
#define KJ_PA_SWAP	DATA(0x50)
#define KJ_HEAD		DATA(0x58)
#define KJ_VA_CONTROL	DATA(0x60)
#define KJ_PA_STACK	DATA(0x68)
#define KJ_OWN_GDTR	DATA(0x70)	/* 10 bytes */
#define KJ_OWN_IDTR	DATA(0x80)	/* 10 bytes */
#define KJ_RM_AREA	DATA(0x90)
#define KJ_RM_SAVE	DATA(0x98)
#define KJ_RM_SIZE	DATA(0xa0)
#define KJ_DEBUG_PORT	DATA(0xa8)	/* 0: no exception report */
#define KJ_SME		DATA(0xb0)	/* sme_active */
#define KJ_MAGIC	DATA(KEXEC_JUMP_DATA_MAGIC)	/* 0xb8 */
#define KJ_VA_GDTR	DATA(0xc0)	/* 10 bytes */
#define KJ_VA_IDTR	DATA(0xd0)	/* 10 bytes */
#define KJ_NO_RETURN	DATA(0xe0)	/* nonzero: the callee never comes back */
#define KJ_IDT		DATA(0x100)	/* KJ_NR_VECTORS gates of 16 bytes */
#define KJ_CONSTS	DATA(0x300)	/* a copy of .Lconsts, at most 0x100 */
#define KJ_VA_IDT	DATA(0x400)	/* KJ_NR_VECTORS gates of 16 bytes */
#define KJ_SWITCH_STACK	PAGE_SIZE	/* top of a stack in the last 0x200 */
#define KJ_CONST(x)	(KJ_CONSTS + (x) - .Lconsts)

/* The exception vectors the own IDT covers, and the size of each stub. */
#define KJ_NR_VECTORS	32
#define KJ_STUB_SIZE	9

/* Indirection list entry flags, as in include/linux/kexec.h. */
#define KJ_IND_DESTINATION	0x1
#define KJ_IND_INDIRECTION	0x2
#define KJ_IND_DONE		0x4
#define KJ_IND_SOURCE		0x8

	.section .text..kexec_jump, "ax"
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
	movq	%rdx, %r14		/* start */
	movq	%rcx, %r12		/* sme_active */
	movq	%rdi, %rbx		/* head */
	movl	$MSR_GS_BASE, %ecx
	rdmsr
	movl	%eax, KJ_GS_BASE(%r11)
	movl	%edx, KJ_GS_BASE+4(%r11)

	/* The GDT and the messages: data, kept out of the code's page. */
	movq	%rsi, %rax
	leaq	.Lconsts(%rip), %rsi
	leaq	KJ_CONSTS(%r11), %rdi
	movl	$(.Lconsts_end - .Lconsts), %ecx
	rep movsb
	movq	%rax, %rsi
	movq	%rbx, %rdi

	/* IF off, DF clear: the string copies below count upwards. */
	pushq	$0
	popfq

	movq	PTR(PA_CONTROL_PAGE)(%rsi), %r8
	movq	PTR(PA_TABLE_PAGE)(%rsi), %r9
	movq	PTR(PA_SWAP_PAGE)(%rsi), %r10
	movq	PTR(PA_JUMP_STACK)(%rsi), %r15
	movq	%r9, KJ_PA_TABLE(%r11)
	movq	%r10, KJ_PA_SWAP(%r11)
	movq	%r15, KJ_PA_STACK(%r11)
	movq	%rdi, KJ_HEAD(%r11)
	movq	PTR(PA_RM_AREA)(%rsi), %rax
	movq	%rax, KJ_RM_AREA(%r11)
	movq	PTR(PA_RM_SAVE)(%rsi), %rax
	movq	%rax, KJ_RM_SAVE(%r11)
	movq	PTR(RM_SIZE)(%rsi), %rax
	movq	%rax, KJ_RM_SIZE(%r11)
	movq	PTR(DEBUG_PORT)(%rsi), %rax
	movq	%rax, KJ_DEBUG_PORT(%r11)
	movq	PTR(NO_RETURN)(%rsi), %rax
	movq	%rax, KJ_NO_RETURN(%r11)
	movq	%r12, KJ_SME(%r11)
	/* A's CR4 above and this say which paging mode the way back wants. */
	movabsq	$KEXEC_JUMP_MAGIC, %rax
	movq	%rax, KJ_MAGIC(%r11)

	/*
	 * IDT, GDT and stack that A's table and the 1:1 table both map, at
	 * the control page's direct-map address; the gates lead to the stubs'
	 * kernel-text address. Built once a jump: the way back loads them
	 * again before it switches to A's table.
	 */
	leaq	KJ_VA_IDT(%r11), %rdi
	movabsq	$kj_vectors, %rax
	call	kj_build_idt
	movw	$(.Lgdt_end - .Lgdt - 1), KJ_VA_GDTR(%r11)
	leaq	KJ_CONST(.Lgdt)(%r11), %rax
	movq	%rax, KJ_VA_GDTR+2(%r11)
	movw	$(KJ_NR_VECTORS * 16 - 1), KJ_VA_IDTR(%r11)
	leaq	KJ_VA_IDT(%r11), %rax
	movq	%rax, KJ_VA_IDTR+2(%r11)
	lgdt	KJ_VA_GDTR(%r11)
	lidt	KJ_VA_IDTR(%r11)
	leaq	KJ_SWITCH_STACK(%r11), %rsp

	/* This page stays mapped (onto the control page) across the switch. */
	movq	%r9, %cr3
	leaq	(.Lidentity_mapped - kexec_jump_call)(%r8), %rax
	pushq	%rax
	ANNOTATE_UNRET_SAFE
	ret
	int3

.Lidentity_mapped:
	UNWIND_HINT_END_OF_STACK
	/*
	 * CR4 first: with CR4.CET clear, CR0.WP may be cleared. Keep only the
	 * paging mode (clearing PGE flushes global TLB entries too) and, on
	 * TDX guests, MCE, which they may not be allowed to clear.
	 */
	andl	$(X86_CR4_PAE | X86_CR4_LA57), %r13d
	ALTERNATIVE "", __stringify(orl $X86_CR4_MCE, %r13d), X86_FEATURE_TDX_GUEST
	movq	%r13, %cr4
	/* Paging and protection on; write protection, alignment checks off. */
	movq	%cr0, %rax
	andq	$~(X86_CR0_AM | X86_CR0_WP | X86_CR0_TS | X86_CR0_EM), %rax
	orl	$(X86_CR0_PG | X86_CR0_PE), %eax
	movq	%rax, %cr0
	movq	%r9, %cr3
	call	kj_load_descriptors
	leaq	PAGE_SIZE(%r15), %rsp

	/*
	 * With SME, cache lines written encrypted may be flushed over the
	 * plain copies below: flush them first.
	 */
	testq	%r12, %r12
	jz	1f
	wbinvd
1:	movq	KJ_RM_AREA(%r8), %rsi
	movq	KJ_RM_SAVE(%r8), %rdi
	movq	KJ_RM_SIZE(%r8), %rcx
	shrq	$3, %rcx
	rep movsq
	movq	KJ_HEAD(%r8), %rdi
	call	kj_swap_pages

	/*
	 * A restore: the callee is a saved kernel's jump-back entry, and this
	 * kernel is gone once it runs. Hand it no re-entry point (0), so that
	 * it never enters what was here.
	 */
	cmpq	$0, KJ_NO_RETURN(%r8)
	je	1f
	pushq	$0			/* the re-entry slot */
	pushq	$0			/* no return address */
	ANNOTATE_RETPOLINE_SAFE
	jmp	*%r14
1:	pushq	%r14			/* the re-entry slot */
	ANNOTATE_RETPOLINE_SAFE
	call	*%r14

	/*
	 * The jump-back entry. Any CR3 that maps this page 1:1 will do; the
	 * stack is the callee's and only its top word is read. Drop global
	 * pages (and CET, PCIDE) first, so no translation of the callee's
	 * survives the switch to the 1:1 table.
	 */
	movq	0(%rsp), %rbp
	movq	%cr4, %rax
	andl	$(X86_CR4_PAE | X86_CR4_LA57), %eax
	ALTERNATIVE "", __stringify(orl $X86_CR4_MCE, %eax), X86_FEATURE_TDX_GUEST
	movq	%rax, %cr4
	/*
	 * The callee's IDT and stack may be unmapped in the 1:1 table: take
	 * this page's own, which both tables map 1:1, before the switch.
	 */
	leaq	kexec_jump_call(%rip), %r8
	leaq	KJ_SWITCH_STACK(%r8), %rsp
	call	kj_load_descriptors
	movq	KJ_PA_TABLE(%r8), %rax
	movq	%rax, %cr3
	movq	KJ_PA_STACK(%r8), %rsp
	addq	$PAGE_SIZE, %rsp
	cld
	/* As on the way out: the callee's encrypted lines before the copy. */
	cmpq	$0, KJ_SME(%r8)
	je	1f
	wbinvd
1:	movq	KJ_HEAD(%r8), %rdi
	movq	KJ_PA_SWAP(%r8), %r10
	call	kj_swap_pages
	movq	KJ_RM_SAVE(%r8), %rsi
	movq	KJ_RM_AREA(%r8), %rdi
	movq	KJ_RM_SIZE(%r8), %rcx
	shrq	$3, %rcx
	rep movsq

	/* What is needed after the switch back to A's own page table. */
	movq	KJ_CR0(%r8), %r13
	movq	KJ_CR4(%r8), %r12
	movq	KJ_CR3(%r8), %r9
	movq	KJ_VA_CONTROL(%r8), %r8
	/*
	 * A's table may map the physical addresses of the own IDT, GDT and
	 * stack as user memory: take the copies at the direct-map address,
	 * built on the way out, which both tables map.
	 */
	lgdt	KJ_VA_GDTR(%r8)
	lidt	KJ_VA_IDTR(%r8)
	leaq	KJ_SWITCH_STACK(%r8), %rsp
	movabsq	$.Lvirtual_mapped, %rax
	pushq	%rax
	ANNOTATE_UNRET_SAFE
	ret
	int3

.Lvirtual_mapped:
	UNWIND_HINT_END_OF_STACK
	ANNOTATE_NOENDBR
	/*
	 * FRED stays off until restore_processor_state() has written A's
	 * FRED MSRs again: until then they are the callee's.
	 */
	btrq	$X86_CR4_FRED_BIT, %r12
	movq	%r13, %cr0		/* WP first: CR4.CET needs it */
	movq	%r12, %rax
	andq	$~X86_CR4_PGE, %rax
	movq	%rax, %cr4		/* PCIDE: CR3's PCID is still 0 */
	movq	%r9, %cr3
	/*
	 * Global pages, under A's table only. Setting PGE also flushes every
	 * TLB entry of every PCID, so nothing made under the 1:1 table (PCID
	 * 0) survives either.
	 */
	movq	%r12, %cr4
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
SYM_CODE_END(kexec_jump_call)

/*
 * Load the own GDT and IDT, in the control page at %r8 (running 1:1),
 * and reload CS and the data segments from that GDT: the descriptors
 * cached from the table in use before may be anybody's. Clobbers %rax,
 * %rcx, %rdx, %rdi.
 */
SYM_CODE_START_LOCAL_NOALIGN(kj_load_descriptors)
	UNWIND_HINT_END_OF_STACK
	leaq	KJ_CONST(.Lgdt)(%r8), %rax
	movw	$(.Lgdt_end - .Lgdt - 1), KJ_OWN_GDTR(%r8)
	movq	%rax, KJ_OWN_GDTR+2(%r8)
	lgdt	KJ_OWN_GDTR(%r8)
	pushq	$__KERNEL_CS
	leaq	1f(%rip), %rax
	pushq	%rax
	lretq
1:	UNWIND_HINT_END_OF_STACK	/* reached by the lretq only */
	movl	$__KERNEL_DS, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss

	/* The gates lead to the stubs here: the page runs 1:1. */
	leaq	KJ_IDT(%r8), %rdi
	leaq	kj_vectors(%rip), %rax
	call	kj_build_idt
	leaq	KJ_IDT(%r8), %rax
	movw	$(KJ_NR_VECTORS * 16 - 1), KJ_OWN_IDTR(%r8)
	movq	%rax, KJ_OWN_IDTR+2(%r8)
	lidt	KJ_OWN_IDTR(%r8)
	ANNOTATE_UNRET_SAFE
	ret
	int3
SYM_CODE_END(kj_load_descriptors)

/*
 * Write KJ_NR_VECTORS interrupt gates (DPL 0, no IST) at %rdi, to the
 * stubs starting at %rax. Clobbers %rax, %rcx, %rdx, %rdi.
 */
SYM_CODE_START_LOCAL_NOALIGN(kj_build_idt)
	UNWIND_HINT_END_OF_STACK
	xorl	%ecx, %ecx
1:	movq	%rax, %rdx
	movw	%dx, 0(%rdi)
	movw	$__KERNEL_CS, 2(%rdi)
	movw	$0x8e00, 4(%rdi)
	shrq	$16, %rdx
	movw	%dx, 6(%rdi)
	shrq	$16, %rdx
	movq	%rdx, 8(%rdi)
	addq	$KJ_STUB_SIZE, %rax
	addq	$16, %rdi
	incl	%ecx
	cmpl	$KJ_NR_VECTORS, %ecx
	jb	1b
	ANNOTATE_UNRET_SAFE
	ret
	int3
SYM_CODE_END(kj_build_idt)

/*
 * Swap each source page of the indirection list with its destination page,
 * through the swap page. Doing it twice restores both sides.
 *
 * %rdi: list head entry, %r10: swap page. Clobbers %rax, %rbx, %rcx, %rdx,
 * %rsi, %rdi. Preserves %r8 to %r15 and %rbp.
 */
SYM_CODE_START_LOCAL_NOALIGN(kj_swap_pages)
	UNWIND_HINT_END_OF_STACK
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
	ANNOTATE_UNRET_SAFE
	ret
	int3
SYM_CODE_END(kj_swap_pages)

/*
 * One stub per vector, KJ_STUB_SIZE bytes each: an error code of 0 where
 * the CPU pushes none (EXCEPTION_ERRCODE_MASK), the vector, a jump.
 */
SYM_CODE_START_LOCAL_NOALIGN(kj_vectors)
	/* Its address goes into gates; CET is off wherever they are used. */
	ANNOTATE_NOENDBR
	vector = 0
	.rept	KJ_NR_VECTORS
	UNWIND_HINT_END_OF_STACK	/* each stub is an entry of its own */
	.if	(EXCEPTION_ERRCODE_MASK >> vector) & 1
	.byte	0x66, 0x90		/* nop: the CPU pushed an error code */
	.else
	.byte	0x6a, 0			/* pushq $0 */
	.endif
	.byte	0x6a, vector		/* pushq $vector */
	.byte	0xe9			/* jmp kj_exception */
	.long	kj_exception - (. + 4)
	vector = vector + 1
	.endr
	/* The IDT is built on the stride: fail to assemble if it is off. */
	.if	. - kj_vectors - KJ_NR_VECTORS * KJ_STUB_SIZE
	.error	"kexec_jump_64.S: a vector stub is not KJ_STUB_SIZE bytes"
	.endif
SYM_CODE_END(kj_vectors)

/*
 * 0(%rsp) vector, 8 error code, 16 RIP, 24 CS, 32 RFLAGS, 40 RSP, 48 SS.
 * #BP and NMI return; anything else is reported (if KJ_DEBUG_PORT is
 * set) and halts the CPU.
 */
SYM_CODE_START_LOCAL_NOALIGN(kj_exception)
	UNWIND_HINT_END_OF_STACK
	cmpq	$X86_TRAP_BP, (%rsp)
	je	.Liret
	cmpq	$X86_TRAP_NMI, (%rsp)
	je	.Liret
	pushq	%r15
	pushq	%r14
	pushq	%r13
	pushq	%r12
	pushq	%r11
	pushq	%r10
	pushq	%r9
	pushq	%r8
	pushq	%rbp
	pushq	%rdi
	pushq	%rsi
	pushq	%rdx
	pushq	%rcx
	pushq	%rbx
	pushq	%rax
	/* 0..112(%rsp) the registers above, 120 vector, 128 error, 136 RIP */
	leaq	kexec_jump_call(%rip), %r8
	/* Only the control page has data; the kernel-text original has none. */
	movabsq	$KEXEC_JUMP_MAGIC, %rax
	cmpq	%rax, KJ_MAGIC(%r8)
	jne	2f
	cmpq	$0, KJ_DEBUG_PORT(%r8)
	je	2f
	leaq	KJ_CONST(.Lmsg_vector)(%r8), %rsi
	movq	120(%rsp), %r9
	call	kj_put_field
	leaq	KJ_CONST(.Lmsg_error)(%r8), %rsi
	movq	128(%rsp), %r9
	call	kj_put_field
	leaq	KJ_CONST(.Lmsg_rip)(%r8), %rsi
	movq	136(%rsp), %r9
	call	kj_put_field
	leaq	KJ_CONST(.Lmsg_cr2)(%r8), %rsi
	movq	%cr2, %r9
	call	kj_put_field
	leaq	KJ_CONST(.Lregs)(%r8), %rsi
	movq	%rsp, %rbx
1:	movq	(%rbx), %r9
	call	kj_put_field		/* advances %rsi to the next name */
	addq	$8, %rbx
	cmpb	$0, (%rsi)
	jnz	1b
	movl	$'\n', %r11d
	call	kj_putc
2:	cli
	hlt
	jmp	2b
.Liret:
	addq	$16, %rsp
	iretq
SYM_CODE_END(kj_exception)

/* Print the string at %rsi, then %r9 in hex; %rsi ends after the NUL. */
SYM_CODE_START_LOCAL_NOALIGN(kj_put_field)
	UNWIND_HINT_END_OF_STACK
1:	movzbl	(%rsi), %r11d
	incq	%rsi
	testl	%r11d, %r11d
	jz	2f
	call	kj_putc
	jmp	1b
2:	movl	$16, %ecx
3:	rolq	$4, %r9
	movl	%r9d, %r11d
	andl	$0xf, %r11d
	addl	$'0', %r11d
	cmpl	$'9', %r11d
	jbe	4f
	addl	$('a' - '9' - 1), %r11d
4:	call	kj_putc
	decl	%ecx
	jnz	3b
	ANNOTATE_UNRET_SAFE
	ret
	int3
SYM_CODE_END(kj_put_field)

/*
 * Write the byte in %r11 to the UART at KJ_DEBUG_PORT of the control page
 * at %r8. Clobbers %eax, %edx.
 */
SYM_CODE_START_LOCAL_NOALIGN(kj_putc)
	UNWIND_HINT_END_OF_STACK
	movl	KJ_DEBUG_PORT(%r8), %edx
	addl	$5, %edx		/* line status register */
1:	inb	%dx, %al
	testb	$0x20, %al		/* transmitter holding register empty */
	jz	1b
	subl	$5, %edx
	movl	%r11d, %eax
	outb	%al, %dx
	ANNOTATE_UNRET_SAFE
	ret
	int3
SYM_CODE_END(kj_putc)

	/* Fails to assemble if the code outgrows its half of the page. */
	.skip KEXEC_CONTROL_CODE_MAX_SIZE - (. - kexec_jump_call), 0xcc

/*
 * Data the copied code uses: kexec_jump_call() copies it to KJ_CONSTS in
 * the control page. Not in the code's page, where objtool would read it as
 * instructions.
 */
	.pushsection .rodata
	.balign	8
.Lconsts:
/* null, 32-bit code, __KERNEL_CS (64-bit code), __KERNEL_DS */
.Lgdt:
	.quad	0
	.quad	0x00cf9b000000ffff
	.quad	0x00af9b000000ffff
	.quad	0x00cf93000000ffff
.Lgdt_end:
.Lmsg_vector:	.asciz	"\nkexec_jump: exception "
.Lmsg_error:	.asciz	" error "
.Lmsg_rip:	.asciz	" rip "
.Lmsg_cr2:	.asciz	" cr2 "
.Lregs:		.asciz	"\nkexec_jump: rax "
		.asciz	" rbx "
		.asciz	" rcx "
		.asciz	" rdx "
		.asciz	"\nkexec_jump: rsi "
		.asciz	" rdi "
		.asciz	" rbp "
		.asciz	" r8 "
		.asciz	"\nkexec_jump: r9 "
		.asciz	" r10 "
		.asciz	" r11 "
		.asciz	" r12 "
		.asciz	"\nkexec_jump: r13 "
		.asciz	" r14 "
		.asciz	" r15 "
		.byte	0
.Lconsts_end:
	.if	.Lconsts_end - .Lconsts > KJ_VA_IDT - KJ_CONSTS
	.error	"kexec_jump_64.S: .Lconsts overlaps KJ_VA_IDT"
	.endif
	.popsection
