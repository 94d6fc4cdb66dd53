# SPDX-License-Identifier: GPL-2.0
# boot_to_init: CPUs online, a process fills and checks memory.
echo "KJ: init up cpus=$(cat /sys/devices/system/cpu/online)"
kj-guest memhold --mib 8 --seed 1 --check /tmp/go >/tmp/m &
until grep -q filled /tmp/m 2>/dev/null; do sleep 0.1; done
touch /tmp/go
wait
sed 's/^/KJ: /' /tmp/m
echo "KJ: done"
poweroff -f
