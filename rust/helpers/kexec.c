// SPDX-License-Identifier: GPL-2.0

#include <linux/kexec.h>

#ifdef CONFIG_KEXEC_CORE
/* The kexec lock's helpers are private to kernel/. */
#include "../../kernel/kexec_internal.h"

void rust_helper_crash_setup_regs(struct pt_regs *newregs,
				  struct pt_regs *oldregs)
{
	crash_setup_regs(newregs, oldregs);
}

bool rust_helper_kexec_trylock(void)
{
	return kexec_trylock();
}

void rust_helper_kexec_unlock(void)
{
	kexec_unlock();
}
#endif
