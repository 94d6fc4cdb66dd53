#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the kexec_load() fuzz test: A runs the regression cases and
# SECS seconds of random bad input (seed SEED), then jumps to B and back
# with kjump, to show the kernel is still whole. /etc/kj.conf sets SEED
# and SECS.

. /etc/kj-prelude.sh

case " $(cat /proc/cmdline) " in
*" kexec_jump_back_entry="*)
	mark "B up"
	while :; do kjump back >/dev/null; done
	;;
esac

out=$(kj-guest fuzz --seed "$SEED" --secs "$SECS") || die "$out"
mark "A $out"
kjump load /boot/bzImage --initrd /boot/initrd \
	--append "console=ttyS0 panic=-1 rdinit=/init" >/tmp/load.out 2>&1 ||
	die "load: $(tail -n1 /tmp/load.out)"
kj-guest drain
kjump exec >/tmp/exec.out 2>&1 || die "exec: $(tail -n1 /tmp/exec.out)"
mark "A resumed cpus=$(cat /sys/devices/system/cpu/online)"
# Last: it lowers kexec_load_limit_reboot for good.
out=$(kj-guest fill-limit) || die "$out"
mark "A $out"
poweroff -f
