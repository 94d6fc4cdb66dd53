#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of hibernate_device_must_be_kjumps: /dev/vda blank, /dev/vdb an
# ext2 filesystem, /dev/vdc a disk with an MBR partition table (one
# partition, PARTUUID 6b6a756d-01). kjump
# format and kjump hibernate must refuse each device that is not kjump's,
# with one line, and leave its first MiB as it was.

. /etc/kj-prelude.sh

head1m() { head -c 1048576 "$1" | md5sum | cut -d' ' -f1; }

# refused WHAT DEV CMD...: CMD fails, and DEV's first MiB is unchanged.
refused() {
	what=$1 dev=$2
	shift 2
	before=$(head1m "$dev")
	if out=$("$@" 2>&1); then
		die "$what: accepted: $out"
	fi
	[ "$(head1m "$dev")" = "$before" ] || die "$what: $dev changed"
	mark "refused $what: $(echo "$out" | tail -n1)"
}

refused "no signature" /dev/vda kjump hibernate --device /dev/vda --kernel /boot/bzImage
refused "foreign signature" /dev/vdb kjump format /dev/vdb
mkdir -p /mnt
mount -t ext2 /dev/vdb /mnt || die "mount /dev/vdb"
refused "mounted" /dev/vdb kjump format --force /dev/vdb
umount /mnt
refused "whole disk with partitions" /dev/vdc kjump format --force /dev/vdc
mkswap /dev/vda >/dev/null && swapon /dev/vda || die "swap on /dev/vda"
refused "active swap" /dev/vda kjump format --force /dev/vda
swapoff /dev/vda
refused "swap signature" /dev/vda kjump format /dev/vda
# A partition named as the kernel's root= names it (MBR signature 6b6a756d).
out=$(kjump format PARTUUID=6B6A756D-01 2>&1) || die "format PARTUUID=: $out"
mark "formatted by PARTUUID: $out"
out=$(kjump format --force --uuid 6b6a756d-7000-4000-8000-000000000001 /dev/vda 2>&1) ||
	die "format --force: $out"
mark "formatted: $out"
mark "status: $(kjump status | grep 'resume device' | tr '\n' ';')"
mark "done"
poweroff -f
