// SPDX-License-Identifier: GPL-2.0

#include <linux/cpu.h>
#include <linux/suspend.h>

int rust_helper_suspend_disable_secondary_cpus(void)
{
	return suspend_disable_secondary_cpus();
}

void rust_helper_suspend_enable_secondary_cpus(void)
{
	suspend_enable_secondary_cpus();
}

void rust_helper_pm_prepare_console(void)
{
	pm_prepare_console();
}

void rust_helper_pm_restore_console(void)
{
	pm_restore_console();
}
