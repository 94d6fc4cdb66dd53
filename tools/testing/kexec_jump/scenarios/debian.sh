#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Kernel A's side of debian_systemd_kjump_round_trip, on a Debian
# bookworm system with systemd as PID 1: run by kj-scenario.service
# (pulled in by systemd.wants= on the command line), its output on
# /dev/console. kjump is the packaged one (/usr/sbin/kjump); B, its
# kernel and initramfs in /var/lib/kjtest, runs kjump.sh's B side.
# /etc/kj.conf (written by the harness) sets:
#   TRIPS    round trips A -> B -> A
#   MEM_MIB  MiB of process memory A and B fill before and check after
# kj-memhold.service, started with the system, holds 64 MiB of a known
# pattern across all the trips and checks it at the end; a transient
# timer (systemd-run) fires every second and must go on after each trip.
# Every line for the harness starts with "KJ: ", in kjump.sh's order
# around the trips, with the system's state before and after.

. /etc/kj-prelude.sh

unit_prop() { systemctl show -p "$2" --value "$1"; }
# The failed units, each with why (its Result) and its last log line.
failed_units() {
	for u in $(systemctl list-units --failed --plain --no-legend | awk '{print $1}'); do
		printf '%s (%s: %s) ' "$u" "$(systemctl show -P Result "$u")" \
			"$(journalctl -q -o cat -n 1 -u "$u" 2>/dev/null)"
	done
}

# journal_says TAG TEXT: logs TEXT with logger, and finds it in journald
# within 10 s (journald is alive and takes messages).
journal_says() {
	logger -t "$1" "$2"
	n=0
	until journalctl -q -o cat -t "$1" 2>/dev/null | grep -qxF "$2"; do
		n=$((n + 1))
		[ $n -lt 100 ] || die "journald did not log '$2' within 10 s"
		sleep 0.1
	done
}

state=$(systemctl is-system-running --wait)
mark "A system at boot state=$state failed=[$(failed_units)] init=$(cat /proc/1/comm)"
journald=$(unit_prop systemd-journald MainPID)
hold=$(unit_prop kj-memhold MainPID)
[ "$hold" -gt 0 ] || die "kj-memhold.service is not running: $(systemctl status kj-memhold 2>&1 | tail -n3)"
n=0
until grep -q filled /run/kj-memhold.out 2>/dev/null; do
	n=$((n + 1))
	[ $n -lt 300 ] || die "kj-memhold: $(cat /run/kj-memhold.out 2>&1)"
	sleep 0.1
done
journal_says kjtest "before the jumps"
# A timer (CLOCK_MONOTONIC, every second) that keeps firing across jumps.
# Its service starts every second: systemd's start limit (5 starts in
# 10 s) must not count against it.
systemd-run --quiet --unit=kj-tick --on-active=1 --on-unit-active=1 \
	--timer-property=AccuracySec=100ms --property=StartLimitIntervalSec=0 \
	/bin/sh -c 'echo tick >>/run/kj-tick' ||
	die "systemd-run of the timer kj-tick failed"
# kjump is the package's: dpkg knows every file it installed.
pkg=$(dpkg-query -W -f='${Status} ${Version}' kjump 2>&1)
for f in $(dpkg-query -L kjump | grep -e /usr/sbin/kjump -e man8/kjump.8.gz -e completions/kjump -e initramfs-tools/); do
	[ -d "$f" ] || [ -s "$f" ] || die "package file $f missing"
done
mark "A package kjump $pkg at $(command -v kjump): $(dpkg-query -L kjump | grep -c -e man8/ -e completions/ -e initramfs-tools/hooks/kjump -e local-premount/kjump) man/completion/hook files"
mark "A up cpus=$(cat /sys/devices/system/cpu/online) $(grep -m1 'Kernel code' /proc/iomem) journald=$journald memhold=$hold"

kjump load /var/lib/kjtest/bzImage --initrd /var/lib/kjtest/initrd \
	--append "console=ttyS0 panic=-1 rdinit=/init" >/tmp/load.out 2>&1 ||
	die "A load: $(tail -n1 /tmp/load.out)"
mark "A loaded: $(tail -n1 /tmp/load.out)"
mark "A status: $(kjump status | tr '\n' ';')"

i=0
while [ $i -lt "$TRIPS" ]; do
	i=$((i + 1))
	hold_memory $i
	timed_exec $i kjump exec
	check_memory A
	# The system goes on: journald (the same process) takes messages, the
	# service holding memory since boot is the same process, nothing
	# failed.
	journal_says kjtest "after jump $i"
	[ "$(unit_prop systemd-journald MainPID)" = "$journald" ] || die "journald restarted after jump $i"
	[ "$(unit_prop kj-memhold MainPID)" = "$hold" ] || die "kj-memhold.service is not the same process after jump $i"
	ticks=$(cat /run/kj-tick 2>/dev/null | wc -l)
	n=0
	until [ "$(cat /run/kj-tick 2>/dev/null | wc -l)" -gt "$ticks" ]; do
		n=$((n + 1))
		[ $n -lt 50 ] || die "the timer kj-tick.timer did not fire within 5 s after jump $i"
		sleep 0.1
	done
	mark "A system after $i state=$(systemctl is-system-running) failed=[$(failed_units)] journal ok timer ok"
	[ $i -eq 1 ] && mark "A MemFree after first $(kj-guest free)"
done
mark "A MemFree after last $(kj-guest free)"
mark "A done"

# The service's memory, filled at boot, checked after all the jumps.
touch /run/kj-memhold.go
n=0
while [ "$(unit_prop kj-memhold ActiveState)" = active ] && [ $n -lt 300 ]; do
	sleep 0.1
	n=$((n + 1))
done
mark "A memhold $(unit_prop kj-memhold Result) $(tail -n1 /run/kj-memhold.out)"
mark "A journald restarts=$(unit_prop systemd-journald NRestarts) pid=$(unit_prop systemd-journald MainPID) was=$journald"
mark "A system at the end state=$(systemctl is-system-running) failed=[$(failed_units)]"
mark "A powering off"
systemctl --no-block poweroff
