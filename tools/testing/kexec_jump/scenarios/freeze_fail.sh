# SPDX-License-Identifier: GPL-2.0
# freeze_failure_unwinds: a task the freezer cannot freeze, then kexec -e.
echo 2000 > /sys/power/pm_freeze_timeout
echo > /sys/devices/kj_testdev0/events
echo > /sys/devices/kj_testdev1/events
(echo 20 > /sys/devices/kj_testdev0/hold; echo "KJ: hold over") &
sleep 1
kexec --load-preserve-context --args-none /boot/checksum.elf \
	--mem-min=0x1000000 --mem-max=0x10fffff || echo "KJ: FAIL load"
kj-guest exec
echo "KJ: after dev0=[$(cat /sys/devices/kj_testdev0/events)] dev1=[$(cat /sys/devices/kj_testdev1/events)] cpus=$(cat /sys/devices/system/cpu/online)"
wait
kj-guest physcall --elf /boot/checksum.elf --calls 1