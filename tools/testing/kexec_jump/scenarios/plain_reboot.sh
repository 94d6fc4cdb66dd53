# SPDX-License-Identifier: GPL-2.0
# plain_kexec_reboots: kexec -l and -e reboot for good.
case " $(cat /proc/cmdline) " in
*" kj_rebooted "*)
	echo "KJ: rebooted kernel up"
	;;
*)
	kexec -l /boot/bzImage --initrd=/boot/initrd \
		--append="console=ttyS0 panic=-1 rdinit=/init kj_rebooted" >/tmp/load.out 2>&1 ||
		echo "KJ: FAIL load: $(tail -n1 /tmp/load.out)"
	echo "KJ: loaded"
	kexec -e
	echo "KJ: FAIL kexec -e returned $?"
	;;
esac
poweroff -f
