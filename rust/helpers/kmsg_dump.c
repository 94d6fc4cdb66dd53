// SPDX-License-Identifier: GPL-2.0

#include <linux/kmsg_dump.h>

void rust_helper_kmsg_dump(enum kmsg_dump_reason reason)
{
	kmsg_dump(reason);
}
