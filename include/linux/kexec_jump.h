/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_KEXEC_JUMP_H
#define _LINUX_KEXEC_JUMP_H

/*
 * kernel/kexec_jump/ (Rust): kernel_kexec() with CONFIG_KEXEC_JUMP. Takes
 * the kexec lock, jumps into a preserve-context image and resumes when it
 * jumps back, or boots any other image with kexec_reboot_locked().
 * Returns 0 or a negative errno; every step entered has been left again.
 */
int kexec_jump(void);

/* kernel/kexec_core.c: boot the loaded image for good; kexec lock held. */
void kexec_reboot_locked(void);

#endif /* _LINUX_KEXEC_JUMP_H */
