#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the kjump tests. A boots with crashkernel= only (KASLR on) and
# loads B with `kjump load`; B is told apart by kexec_jump_back_entry=.
# /etc/kj.conf (written by the harness) sets:
#   TRIPS    round trips A -> B -> A in one boot of A
#   MEM_MIB  MiB of process memory A and B fill before and check after
#   DUMP     1: B checks A's dump (size, marker, A's tagged pages,
#            makedumpfile -d 31 and --dump-dmesg)
#   TAG_MIB  MiB of A's memory tagged with its addresses (auto: most of
#            what is free; 0: none)
#   MARK_ABOVE  the marker page lies above this physical address
#   EXEC_CPU  CPU that runs kjump exec
#   RELOAD   trip after which A unloads B and loads it again (0: never);
#            after the trip before it, A first tries a resident reload
#            whose last buffer is unmapped: EFAULT, and B, entered by the
#            next trip, must still be whole
# Around each jump A also checks time: CLOCK_MONOTONIC does not go back,
# a sleeping process armed before the jump wakes after it.
# Every line for the harness starts with "KJ: ".

. /etc/kj-prelude.sh
. /etc/kj-dump.sh

# A's RAM outside the reservation, in bytes, from /proc/iomem: what a
# complete dump of A holds.
# B's jump back N (b_jumps_back's JUMP): quiet, and its result said.
kjump_back() {
	log_mark "back-$1"
	kj-guest drain
	kjump back >/tmp/back.out 2>&1
	rc=$?
	quiet_since "back-$1" "B kjump back"
	mark "B back returned $rc $(tail -n1 /tmp/back.out)"
}

ram_outside_reservation() {
	total=0
	for r in $(sed -n 's/^\([0-9a-f]*\)-\([0-9a-f]*\) : System RAM$/\1:\2/p' /proc/iomem); do
		total=$((total + 0x${r#*:} - 0x${r%:*} + 1))
	done
	r=$(sed -n 's/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : Crash kernel$/\1:\2/p' /proc/iomem)
	echo $((total - (0x${r#*:} - 0x${r%:*} + 1)))
}

case " $(cat /proc/cmdline) " in
*" kexec_jump_back_entry="*)
	mark "B up cpus=$(cat /sys/devices/system/cpu/online)"
	mark "B status: $(kjump status | tr '\n' ';')"
	mark "B RAM: $(grep 'System RAM' /proc/iomem | tr '\n' ';')"
	if [ "$DUMP" = 1 ]; then
		expect=$(sed -n 's/.*kj_expect=\([0-9]*\).*/\1/p' /proc/cmdline)
		at=$(sed -n 's/.*kj_marker=\(0x[0-9a-f]*\).*/\1/p' /proc/cmdline)
		mark "B vmcore $(kj-guest vmcore-ram) expect=$expect"
		mark "B marker $(kj-guest vmcore-at "$at")"
		check_dump_of_a
	fi
	b_jumps_back kjump_back
	;;
esac

mark "A up cpus=$(cat /sys/devices/system/cpu/online) $(grep -m1 'Kernel code' /proc/iomem)"
expect=$(ram_outside_reservation)
marker_at=$(kj-guest markfile /tmp/marker "KJMARK$(echo -A-PAGE-CACHE)" "$MARK_ABOVE") ||
	die "marker: $marker_at"
TAG_OPTS=
[ "$DUMP" = 1 ] && [ "${TAG_MIB:-0}" != 0 ] && tag_a_memory "$TAG_MIB"
kjump load /boot/bzImage --initrd /boot/initrd \
	--append "console=ttyS0 panic=-1 rdinit=/init kj_expect=$expect kj_marker=$marker_at $TAG_OPTS" \
	>/tmp/load.out 2>&1 || die "A load: $(tail -n1 /tmp/load.out)"
mark "A loaded: $(tail -n1 /tmp/load.out)"
mark "A status: $(kjump status | tr '\n' ';')"

i=0
while [ $i -lt "$TRIPS" ]; do
	i=$((i + 1))
	hold_memory $i
	timed_exec $i taskset -c "$EXEC_CPU" kjump exec
	check_memory A
	[ $i -eq 1 ] && [ -n "$TAG_OPTS" ] && tags_stayed
	[ $i -eq 1 ] && mark "A MemFree after first $(kj-guest free)"
	if [ $((i + 1)) -eq "$RELOAD" ]; then
		out=$(kj-guest resident-efault) || die "$out"
		mark "A $out"
	fi
	if [ $i -eq "$RELOAD" ]; then
		kjump unload >/tmp/unload.out 2>&1 || die "A unload: $(tail -n1 /tmp/unload.out)"
		kjump load /boot/bzImage --initrd /boot/initrd \
			--append "console=ttyS0 panic=-1 rdinit=/init kj_expect=$expect kj_marker=$marker_at" \
			>/tmp/load.out 2>&1 || die "A reload: $(tail -n1 /tmp/load.out)"
		mark "A reloaded B: $(kjump status | tr '\n' ';')"
	fi
done
mark "A MemFree after last $(kj-guest free)"
mark "A done"
poweroff -f
