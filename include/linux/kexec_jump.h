/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_KEXEC_JUMP_H
#define _LINUX_KEXEC_JUMP_H

struct kimage;

/*
 * kernel/kexec_jump/ (Rust, CONFIG_KEXEC_JUMP_RUST): the preserve-context
 * branch of kernel_kexec(). Quiesces the system, jumps into @image (which
 * must be kexec_image, loaded with KEXEC_PRESERVE_CONTEXT, with the kexec
 * lock held) and resumes when it jumps back. Returns 0 or a negative
 * errno; every step entered has been left again.
 */
int kexec_jump_rust(struct kimage *image);

#endif /* _LINUX_KEXEC_JUMP_H */
