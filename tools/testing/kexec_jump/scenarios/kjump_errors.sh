#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the kjump refusal tests: every misuse gets one line naming the
# fix, and the resident image and a crash image exclude each other in the
# reservation. /etc/kj.conf sets STAGE:
#   none   A has no crashkernel=
#   small  A has a reservation too small for B
#   busy   A has a reservation: crash image vs resident image, then
#          kexec_load disabled by sysctl
#   lockdown  A runs with lockdown=integrity
#   reference  the unpatched kernel: no resident images
# Each try prints "KJ: try NAME rc=N: LINE": its error or its last line.

. /etc/kj-prelude.sh

try() {
	name=$1
	shift
	"$@" >/tmp/try.out 2>&1
	rc=$?
	# kexec-tools goes on printing after its error line: show that one.
	line=$(grep -m1 'failed: ' /tmp/try.out) || line=$(tail -n1 /tmp/try.out)
	echo "KJ: try $name rc=$rc: $line"
}

case $STAGE in
none)
	try load kjump load /boot/bzImage
	try exec kjump exec
	try back kjump back
	try status kjump status
	try load-user su nobody -c "kjump load /boot/bzImage"
	try call-user su nobody -c "kjump call /boot/hello.elf"
	try call-entry kjump call /boot/hello.elf --entry 0x10
	try call-raw kjump call /etc/kj.conf
	try call kjump call /boot/hello.elf
	try call-again kjump call /boot/hello.elf
	;;
small)
	try load-small kjump load /boot/bzImage
	try load-notkernel kjump load /etc/kj.conf
	;;
busy)
	try crash-load kexec -p /boot/bzImage --append="console=ttyS0"
	try load-over-crash kjump load /boot/bzImage
	try crash-unload kexec -p -u
	try load kjump load /boot/bzImage --append="console=ttyS0"
	try crash-over-resident kexec -p /boot/bzImage --append="console=ttyS0"
	try shrink sh -c "echo 0 > /sys/kernel/kexec_crash_size"
	try unload kexec -u
	try shrink-after-unload sh -c "echo 0 > /sys/kernel/kexec_crash_size"
	try disable sh -c "echo 1 > /proc/sys/kernel/kexec_load_disabled"
	try call-disabled kjump call /boot/hello.elf
	;;
lockdown)
	mount -t securityfs securityfs /sys/kernel/security
	try lockdown-mode cat /sys/kernel/security/lockdown
	try load-locked kjump load /boot/bzImage
	try kexec-locked kexec --load-preserve-context /boot/bzImage --mem-min=0x10000000 --mem-max=0x17ffffff
	try call-locked kjump call /boot/hello.elf
	;;
reference)
	try load-on-reference kjump load /boot/bzImage
	;;
esac
echo "KJ: done"
poweroff -f
