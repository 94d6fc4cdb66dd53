#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the kexec jump tests. Kernel A and kernel B boot the same
# initramfs; B is told apart by kexec_jump_back_entry= on its command line.
# /etc/kj.conf (written by the harness) sets:
#   TRIPS    round trips A -> B -> A to make in one boot of A
#   MEM_MIB  MiB of process memory A (and B) fill before and check after
#   VMCORE_CHECK  1: B searches A's memory in /proc/vmcore (slow under TCG),
#                 finds A's tagged pages (TAG_MIB MiB) and runs makedumpfile
#   PARK_CHECK  1: after the first return A names its offline CPUs, waits
#               while the harness looks at them, then takes each of its
#               CPUs down and up again (or up and down, if offline)
#   B_MIN, B_MAX, B_ARGS   the physical range B runs in, and B's options
#                          that keep it there (memmap=, nokaslr); B_MIN=
#                          crashkernel: A's crashkernel= reservation, and
#                          B_ARGS the exactmap a user computes from it
# Every line for the harness starts with "KJ: ".

. /etc/kj-prelude.sh
. /etc/kj-dump.sh

# kexec -e returns once the image has jumped back. Its exit code says
# nothing then (kexec-tools reports a stale errno), so the harness judges the
# jump by what B printed in between; the output is kept for the log.
# Every jump is also judged by what this kernel logged across it (see
# quiet_since()).
jump() {
	JUMPS=$((JUMPS + 1))
	log_mark "jump-$JUMPS"
	# Let the console finish our line before the kernel prints its own.
	kj-guest drain
	kexec -e >/tmp/jump.out 2>&1
	rc=$?
	quiet_since "jump-$JUMPS" "$1 jump"
	mark "$1 kexec -e returned $rc $(tail -n1 /tmp/jump.out)"
}

# B's jump back (b_jumps_back's JUMP).
jump_back() { jump B; }

case " $(cat /proc/cmdline) " in
*" kexec_jump_back_entry="*)
	entry=$(sed -n 's/.*kexec_jump_back_entry=\(0x[0-9a-fA-F]*\).*/\1/p' /proc/cmdline)
	code=$(sed -n 's/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : Kernel code$/\1-\2/p' /proc/iomem)
	mark "B up entry=$entry cpus=$(cat /sys/devices/system/cpu/online) code=$code"
	# A's memory in the dump: A wrote a marker that exists only in its own
	# page cache; a string only B holds must not be found (B's memory is
	# not part of A's dump).
	if [ -e /proc/vmcore ] && [ "$VMCORE_CHECK" = 1 ]; then
		at=$(sed -n 's/.*kj_marker=\(0x[0-9a-f]*\).*/\1/p' /proc/cmdline)
		mark "B $(kj-guest vmcore-at "$at")"
		a=$(kj-guest find /proc/vmcore "KJMARK$(echo -A-PAGE-CACHE)")
		b=$(kj-guest find /proc/vmcore "KJMARK$(echo -B-ONLY-MEMORY)")
		mark "B vmcore present, A's marker: $a, B's marker: $b"
		check_dump_of_a
	elif [ -e /proc/vmcore ]; then
		mark "B vmcore present, not searched"
	else
		mark "B vmcore missing"
	fi
	kexec --load-jump-back-helper --entry="$entry" >/tmp/load.out 2>&1 ||
		die "B helper load: $(tail -n1 /tmp/load.out)"
	mark "B helper loaded"
	b_jumps_back jump_back
	;;
esac

code=$(sed -n 's/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : Kernel code$/\1-\2/p' /proc/iomem)
mark "A up cpus=$(cat /sys/devices/system/cpu/online) code=$code"

# What a user reads off /proc/iomem: the reservation, in MiB, and B's
# memory map inside it (the last MiB reserved: kexec-tools puts the ELF
# core header there), with all of A's RAM below 640 KiB.
if [ "$B_MIN" = crashkernel ]; then
	r=$(sed -n 's/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : Crash kernel$/\1 \2/p' /proc/iomem)
	[ -n "$r" ] || die "no Crash kernel in /proc/iomem"
	set -- $r
	B_MIN=0x$1
	B_MAX=0x$2
	start=$((B_MIN >> 20))
	mib=$(((B_MAX + 1 - B_MIN) >> 20))
	B_ARGS="memmap=exactmap memmap=640K@0 memmap=$((mib - 1))M@${start}M memmap=1M\$$((start + mib - 1))M"
	mark "A reservation $B_MIN-$B_MAX: B_ARGS $B_ARGS"
fi
echo "written by A before the jump" >/tmp/a.txt

# The virtio disk: a file written and synced before the first jump must
# read back from the disk (not the page cache: remount) after each return,
# and a new write must reach the disk.
if [ -b /dev/vda ]; then
	mount -t ext2 /dev/vda /mnt || die "mount /dev/vda"
	dd if=/dev/urandom of=/mnt/before bs=1k count=512 2>/dev/null
	md5sum /mnt/before >/tmp/before.md5
	sync
fi
check_disk() {
	[ -b /dev/vda ] || return 0
	umount /mnt && mount -t ext2 /dev/vda /mnt || die "remount /dev/vda"
	md5sum -c -s /tmp/before.md5 || die "disk: file written before the jump changed"
	dd if=/dev/urandom of=/mnt/after bs=1k count=64 2>/dev/null && sync || die "disk: write after the jump"
	md5sum /mnt/after >/tmp/after.md5
	umount /mnt && mount -t ext2 /dev/vda /mnt && md5sum -c -s /tmp/after.md5 ||
		die "disk: file written after the jump did not read back"
	mark "$1 disk intact"
}
# A marker in A's page cache, for B to read back from its dump at the
# physical address A passes it. kexec-tools builds the dump's program
# headers as if B owned all memory from 1 MiB to B_MAX and adds back only
# A's kernel image, so the marker's page must lie above B_MAX or in the
# kernel image (freed init memory).
TAG_OPTS=
marker_at=none
if [ "$VMCORE_CHECK" = 1 ]; then
	marker_at=$(kj-guest markfile /tmp/marker "KJMARK$(echo -A-PAGE-CACHE)" "$B_MAX") ||
		die "marker: $marker_at"
	mark "A marker page at $marker_at"
	tag_a_memory "$TAG_MIB"
fi
kexec --load-preserve-context /boot/bzImage --initrd=/boot/initrd \
	--mem-min="$B_MIN" --mem-max="$B_MAX" \
	--append="console=ttyS0 panic=-1 rdinit=/init $B_ARGS kj_marker=$marker_at $TAG_OPTS" >/tmp/load.out 2>&1 ||
	die "A load: $(tail -n1 /tmp/load.out)"
mark "A loaded"

# The CPUs A keeps offline must wait in A's memory after a return (the
# harness reads each one's place from QEMU's monitor while A sleeps), and
# A must still be able to hotplug its own.
park_check() {
	mark "A parked? offline=$(cat /sys/devices/system/cpu/offline)"
	sleep 5
	cycled=
	for c in /sys/devices/system/cpu/cpu[1-9]*; do
		[ -e "$c/online" ] || continue
		if [ "$(cat "$c/online")" = 1 ]; then
			echo 0 >"$c/online" && echo 1 >"$c/online" || die "${c##*/}: offline and online"
		elif echo 1 >"$c/online" 2>/dev/null; then
			echo 0 >"$c/online" || die "${c##*/}: back offline"
		else
			continue
		fi
		cycled="$cycled ${c##*/}"
	done
	mark "A hotplug ok:$cycled online=$(cat /sys/devices/system/cpu/online)"
}

i=0
while [ $i -lt "$TRIPS" ]; do
	i=$((i + 1))
	hold_memory $i
	mark "A jumping $i"
	jump A
	mark "A resumed $i cpus=$(cat /sys/devices/system/cpu/online)"
	[ $i -eq 1 ] && [ "$PARK_CHECK" = 1 ] && park_check
	check_memory A
	[ $i -eq 1 ] && [ -n "$TAG_OPTS" ] && tags_stayed
	[ "$(cat /tmp/a.txt)" = "written by A before the jump" ] || die "A file changed"
	check_disk A
	free=$(kj-guest free)
	[ $i -eq 1 ] && mark "A MemFree after first $free"
	mark "A trip $i $free"
done
mark "A MemFree after last $(kj-guest free)"
mark "A done"
poweroff -f
