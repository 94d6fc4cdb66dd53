/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_KEXEC_JUMP_H
#define _LINUX_KEXEC_JUMP_H

struct kimage;

/*
 * kernel/kexec_jump/: quiesce the system, jump into the preserve-context
 * @image and resume when it jumps back. Called with the kexec lock held.
 * Returns 0 or a negative errno; every step entered has been left again.
 */
int kexec_jump(struct kimage *image);

#endif /* _LINUX_KEXEC_JUMP_H */
