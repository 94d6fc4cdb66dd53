#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the kernel's own hibernation, beside kjump's: the same load,
# swap on /dev/vdb. Resume first, as initramfs-tools does (writing the
# swap device's numbers to /sys/power/resume restores an image there and
# does not return). /etc/kj.conf sets MEM_MIB, MLOCK, MIX, CACHE_DISK and
# HIBERNATE as for hibernate.sh.

. /etc/kj-prelude.sh

cat /sys/block/vdb/dev >/sys/power/resume 2>/dev/null
mark "normal boot"
[ "$HIBERNATE" = 0 ] && { mark "done"; poweroff -f; }

mkswap /dev/vdb >/dev/null && swapon /dev/vdb || die "swap on /dev/vdb"
lock=""
[ "$MLOCK" = 1 ] && lock=--mlock
[ "$MIX" = 1 ] && lock=--mix
hold_memory 77 $lock
if [ -n "$CACHE_DISK" ]; then
	# Held open: the last close of a disk drops its page cache.
	exec 4<"$CACHE_DISK"
	dd if="$CACHE_DISK" of=/dev/null bs=1M 2>/dev/null || die "reading $CACHE_DISK"
	mark "A page cache: $(grep -e '^Buffers' -e '^Cached' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
	mark "A $(head -n1 /tmp/memhold.out)"
fi
mark "A holds $MEM_MIB MiB"
mark "hibernate start"
# Power off when the image is written, as kjump does (not ACPI S4).
echo shutdown >/sys/power/disk
if echo disk >/sys/power/state 2>/tmp/err; then
	mark "A resumed cpus=$(cat /sys/devices/system/cpu/online)"
	check_memory A
else
	mark "kernel hibernation failed: $(cat /tmp/err)"
fi
mark "done"
poweroff -f
