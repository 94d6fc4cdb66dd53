// SPDX-License-Identifier: GPL-2.0

#include <linux/irqflags.h>

void rust_helper_local_irq_disable(void)
{
	local_irq_disable();
}

void rust_helper_local_irq_enable(void)
{
	local_irq_enable();
}

bool rust_helper_irqs_disabled(void)
{
	return irqs_disabled();
}
