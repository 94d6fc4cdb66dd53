// SPDX-License-Identifier: GPL-2.0

#include <linux/kexec.h>

#ifdef CONFIG_KEXEC_CORE
void rust_helper_crash_setup_regs(struct pt_regs *newregs,
				  struct pt_regs *oldregs)
{
	crash_setup_regs(newregs, oldregs);
}
#endif
