#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the hibernation tests: one boot entry. The repository's
# initramfs hook runs first: with a valid image on the resume device it
# resumes A (which then carries on below "kjump hibernate"), otherwise it
# says why not and this is a normal boot. /etc/kj.conf sets:
#   MEM_MIB  MiB of process memory A fills before and checks after
#   MLOCK    1: that memory is mlock()ed
#   MIX      1: that memory is the mixed workload (text, zeros, code,
#            random), not the pattern
#   CACHE_DISK  a disk A reads in full first: that much page cache
#   FRAGMENT_MIB  MiB of which A keeps every other 64 KiB (many ranges)
#   DATA     1: A keeps a file open for writing on the ext2 disk /dev/vdb
#   CACHE_MIB  with DATA=1: MiB of a file A writes and reads on it first
#   HIBERNATE  0: stop after the normal boot (a check that no resume ran)
#   HIBERNATE_ARGS  more options of kjump hibernate
#   EXPECT_FAIL  1: kjump hibernate must fail and A go on (B gave up)
#   INJECT_KERNEL  with EXPECT_FAIL=1: then one more hibernation for each
#              word (crash, oom), whose B's kernel panics; A must be back
#   FORMAT     0: do not run kjump format /dev/vda before hibernating
#   FORMAT_ARGS  more options of kjump format
#   KEEP_B     1: kjump leaves B loaded; after the resume, kexec -e must be
#              refused (ENOEXEC: B did not jump back), then B is unloaded
#   ZERO_CHECK 1: after the resume, 70% of free memory as fresh anonymous
#              pages must read as zero (init_on_free, page poisoning)
#   STATUS     1: what kjump status says of /dev/vda before and after the
#              hook ("KJ: status before: ...", "KJ: status after: ...")
#   KEY_MISUSE 1: before hibernating, kjump hibernate with key options
#              it must refuse ("KJ: key misuse rc=N lines=N: ARGS: LINE")

. /etc/kj-prelude.sh

status() {
	if [ "$STATUS" = 1 ]; then
		mark "status $1: $(kjump status | grep '^resume device /dev/vda')"
	fi
}
status before
sh /scripts/local-premount/kjump
status after
mark "normal boot"
[ "$HIBERNATE" = 0 ] && { mark "done"; poweroff -f; }

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
# Used memory in many small pieces (after the big allocation, which would
# fill the holes): an image of many ranges.
if [ "${FRAGMENT_MIB:-0}" -gt 0 ]; then
	kj-guest fragment --mib "$FRAGMENT_MIB" >/tmp/fragment.out 2>&1 &
	until grep -q fragment: /tmp/fragment.out 2>/dev/null; do sleep 0.1; done
	mark "A $(cat /tmp/fragment.out)"
fi
if [ "$DATA" = 1 ]; then
	mkdir -p /mnt
	mount -t ext2 /dev/vdb /mnt || die "mount /dev/vdb"
	exec 3>>/mnt/log.txt
	echo "written before hibernation" >&3
	# A page cache of CACHE_MIB MiB: a file written and read back.
	if [ "${CACHE_MIB:-0}" -gt 0 ]; then
		dd if=/dev/zero of=/mnt/cache bs=1M count="$CACHE_MIB" 2>/dev/null || die "dd"
		sync
		cat /mnt/cache >/dev/null
		mark "A page cache: $(grep '^Cached' /proc/meminfo | tr -s ' ')"
	fi
fi
# The resume device must be kjump's; FORMAT=0 keeps what the harness put
# there (an older image on a device formatted before).
if [ "${FORMAT:-1}" = 1 ]; then
	kjump format /dev/vda $FORMAT_ARGS >/tmp/format.out 2>&1 ||
		die "kjump format: $(cat /tmp/format.out)"
	mark "A $(cat /tmp/format.out)"
fi
if [ "$KEY_MISUSE" = 1 ]; then
	for args in "--key none --passphrase-file /etc/kj-pass" \
		"--key none --key passphrase" "--key passphrase"; do
		kjump hibernate --device /dev/vda --kernel /boot/bzImage $args \
			>/tmp/misuse.out 2>&1 </dev/null
		mark "key misuse rc=$? lines=$(wc -l </tmp/misuse.out): $args: $(head -n1 /tmp/misuse.out)"
	done
fi
mark "hibernate start"
[ "$KEEP_B" = 1 ] && export KJUMP_KEEP_B=1
if [ -x /bin/kjump-dynamic ]; then
	out=$(kjump-dynamic hibernate --device /dev/vda --kernel /boot/bzImage 2>&1) &&
		die "a dynamic kjump hibernated"
	mark "A dynamic kjump refused: $out"
fi
if ! kjump hibernate --device /dev/vda --kernel /boot/bzImage $HIBERNATE_ARGS; then
	[ "$EXPECT_FAIL" = 1 ] || die "kjump hibernate"
	mark "A back after a failed hibernation cpus=$(cat /sys/devices/system/cpu/online)"
	for how in $INJECT_KERNEL; do
		kjump hibernate --device /dev/vda --kernel /boot/bzImage \
			--append kjump.inject=$how && die "hibernated with kjump.inject=$how"
		mark "A back after B's kernel failed ($how) cpus=$(cat /sys/devices/system/cpu/online)"
	done
	if [ -x /bin/kjump-dynamic ]; then
		# The reservation shrunk below B plus one image writer.
		echo $((96 << 20)) >/sys/kernel/kexec_crash_size
		out=$(kjump hibernate --device /dev/vda --kernel /boot/bzImage 2>&1) &&
			die "hibernated with a 96 MiB reservation"
		mark "A small reservation refused: $out"
	fi
	check_memory A
	mark "done"
	poweroff -f
fi
mark "A resumed cpus=$(cat /sys/devices/system/cpu/online)"
check_memory A
if [ "$KEEP_B" = 1 ]; then
	out=$(kj-guest exec)
	mark "A exec after the resume: $out"
	kjump unload >/dev/null || die "unload after the resume"
fi
if [ "$ZERO_CHECK" = 1 ]; then
	kb=$(kj-guest meminfo MemFree | cut -d' ' -f3)
	out=$(kj-guest zero-check --mib $((kb * 7 / 10 / 1024))) || die "$out"
	mark "A $out"
fi
if [ "$DATA" = 1 ]; then
	echo "written after resume" >&3
	exec 3>&-
	umount /mnt || die "umount /mnt"
fi
mark "done"
poweroff -f
