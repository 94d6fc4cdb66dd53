/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The smallest physical-mode program for `kjump call`: prints a line on
 * the 8250 UART at 0x3f8 (polling, no interrupts) and returns with ret.
 * Entered with paging on the identity map, interrupts off, the return
 * address at 0(%rsp).
 */
	.text
	.code64
	.globl	_start
_start:
	leaq	msg(%rip), %rsi
1:	movb	(%rsi), %cl
	testb	%cl, %cl
	jz	3f
	movw	$0x3fd, %dx		/* line status: wait for an empty THR */
2:	inb	%dx, %al
	testb	$0x20, %al
	jz	2b
	movw	$0x3f8, %dx
	movb	%cl, %al
	outb	%al, %dx
	incq	%rsi
	jmp	1b
3:	ret

msg:	.asciz	"KJ: physical mode says hello\r\n"
