#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the kernel's own hibernation, beside kjump's: the same load,
# swap on /dev/vdb. Resume first, as initramfs-tools does (writing the
# swap device's numbers to /sys/power/resume restores an image there and
# does not return). /etc/kj.conf sets MEM_MIB, MLOCK and HIBERNATE as for
# hibernate.sh.

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
. /etc/kj.conf

mark() { echo "KJ: $* @$(cut -d' ' -f1 /proc/uptime)"; }
die() { mark "FAIL $*"; poweroff -f; }

cat /sys/block/vdb/dev >/sys/power/resume 2>/dev/null
mark "normal boot"
[ "$HIBERNATE" = 0 ] && { mark "done"; poweroff -f; }

mkswap /dev/vdb >/dev/null && swapon /dev/vdb || die "swap on /dev/vdb"
rm -f /tmp/go
lock=""
[ "$MLOCK" = 1 ] && lock=--mlock
kj-guest memhold --mib "$MEM_MIB" --seed 77 --check /tmp/go $lock >/tmp/memhold.out 2>&1 &
HOLD_PID=$!
until grep -q -e filled -e mlock: /tmp/memhold.out 2>/dev/null; do sleep 0.1; done
grep -q filled /tmp/memhold.out || die "memhold: $(cat /tmp/memhold.out)"
mark "A holds $MEM_MIB MiB"
mark "hibernate start"
# Power off when the image is written, as kjump does (not ACPI S4).
echo shutdown >/sys/power/disk
if echo disk >/sys/power/state 2>/tmp/err; then
	mark "A resumed cpus=$(cat /sys/devices/system/cpu/online)"
	touch /tmp/go
	wait "$HOLD_PID"
	grep -q intact /tmp/memhold.out || die "memory: $(cat /tmp/memhold.out)"
	mark "A memory intact"
else
	mark "kernel hibernation failed: $(cat /tmp/err)"
fi
mark "done"
poweroff -f
