#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the switch benchmark: A loads B with LOADER (kexec: Debian's
# kexec-tools, B's range swapped at every jump; kjump: resident in the
# reservation) and makes TRIPS round trips; B jumps back as soon as it is
# resumed. After each trip A prints the test device's switch_cycles (TSC
# cycles from its syscore suspend to its syscore resume: the jump out,
# B's resume and suspend, the jump back) and the TSC cycles it was away
# (around kexec -e / kjump exec), and after the first and the
# last trip its free memory, slab and page tables (the soak reads them).
# /etc/kj.conf sets LOADER, TRIPS, B_MIB (B's range above 256 MiB, kexec
# only).

. /etc/kj-prelude.sh

tsc() { kj-guest tsc | sed 's/tsc: //'; }
# kB of free memory (also counting the pages on per-CPU free lists, which
# MemFree leaves out), and of what holds memory, after dropping clean
# caches.
meminfo() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	for f in MemFree Cached Shmem Slab PageTables KernelStack Percpu VmallocUsed; do
		printf '%s=%s ' $f "$(sed -n "s/^$f: *\([0-9]*\) kB/\1/p" /proc/meminfo)"
	done
	printf 'FreeWithPcp=%s ' "$(kj-guest free | sed -n 's/^free: \([0-9]*\) kB/\1/p')"
	# Tasks, and kernel workers among them: a worker pool grown by the
	# jumps' work holds kernel stacks until its idle workers are reaped.
	printf 'Tasks=%s ' "$(ls -d /proc/[0-9]* | wc -l)"
	printf 'Kworkers=%s ' "$(cat /proc/[0-9]*/comm 2>/dev/null | grep -c kworker)"
}

case " $(cat /proc/cmdline) " in
*" kexec_jump_back_entry="*)
	if [ "$LOADER" = kexec ]; then
		entry=$(sed -n 's/.*kexec_jump_back_entry=\(0x[0-9a-fA-F]*\).*/\1/p' /proc/cmdline)
		kexec --load-jump-back-helper --entry="$entry" || die "B helper load"
		while :; do kexec -e; done
	fi
	while :; do kjump back >/dev/null; done
	;;
esac

# Cycles from reset to here: a cold boot of this kernel to /init.
mark "A init tsc $(tsc)"

if [ "$LOADER" = kexec ]; then
	top=$((0x10000000 + B_MIB * 1048576))
	kexec --load-preserve-context /boot/bzImage --initrd=/boot/initrd \
		--mem-min=0x10000000 --mem-max=$(printf '%#x' $((top - 1))) \
		--append="console=ttyS0 panic=-1 rdinit=/init memmap=exactmap memmap=640K@0 memmap=$((B_MIB - 1))M@256M memmap=1M\$$((256 + B_MIB - 1))M" \
		>/tmp/load.out 2>&1 || die "load: $(tail -n1 /tmp/load.out)"
else
	kjump load /boot/bzImage --initrd /boot/initrd \
		--append "console=ttyS0 panic=-1 rdinit=/init" >/tmp/load.out 2>&1 ||
		die "load: $(tail -n1 /tmp/load.out)"
fi
mark "A loaded"
i=0
while [ $i -lt "$TRIPS" ]; do
	i=$((i + 1))
	kj-guest drain
	t0=$(tsc)
	if [ "$LOADER" = kexec ]; then kexec -e; else kjump exec >/dev/null; fi
	t1=$(tsc)
	mark "A trip $i switch_cycles $(cat /sys/devices/kj_testdev0/switch_cycles) away_cycles $((t1 - t0)) cpus=$(cat /sys/devices/system/cpu/online)"
	[ $i -eq "${MEMINFO_AT:-1}" ] && mark "A meminfo first $(meminfo)"
done
mark "A meminfo last $(meminfo)"
mark "A done"
poweroff -f
