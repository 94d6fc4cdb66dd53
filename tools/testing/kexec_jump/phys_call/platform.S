/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A program for kexec jump's physical-mode call that looks at the
 * platform while A is quiesced: entered like checksum.S (paging on the
 * identity map, interrupts off, the return address at 0(%rsp)).
 *
 * It stores at kj_out, as little-endian words:
 *  - 256 16-bit words: the PCI command register of each function on bus
 *    0 (devfn 0 to 255, configuration mechanism 1), 0xffff where no
 *    function answers;
 *  - then kj_gpe_len bytes read from I/O port kj_gpe on: the ACPI GPE0
 *    enable registers.
 * kj-guest patches kj_out, kj_gpe and kj_gpe_len in after "KJPARAMS".
 */
	.include "params.inc"
	kj_params_head
kj_out:	.quad	0
kj_gpe:	.quad	0
kj_gpe_len:
	.quad	0

/* %eax = the dword at offset \reg of bus 0, devfn %ecx. */
	.macro	pci_read reg
	movl	%ecx, %eax
	shll	$8, %eax
	orl	$(0x80000000 | \reg), %eax
	movw	$0xcf8, %dx
	outl	%eax, %dx
	movw	$0xcfc, %dx
	inl	%dx, %eax
	.endm

.Lrun:
	movq	kj_out(%rip), %rdi
	xorl	%ecx, %ecx
1:	pci_read 0			/* vendor and device ID */
	cmpw	$0xffff, %ax
	je	2f
	pci_read 4			/* command, status */
2:	movw	%ax, (%rdi,%rcx,2)
	incl	%ecx
	cmpl	$256, %ecx
	jb	1b

	leaq	512(%rdi), %rdi
	movq	kj_gpe(%rip), %rdx
	movq	kj_gpe_len(%rip), %rcx
3:	testq	%rcx, %rcx
	jz	4f
	inb	%dx, %al
	movb	%al, (%rdi)
	incq	%rdi
	incl	%edx
	decq	%rcx
	jmp	3b
4:	ret
