# SPDX-License-Identifier: GPL-2.0
#
# Sourced first by the scenarios' /init (in every image as
# /etc/kj-prelude.sh): file systems, the test's settings (/etc/kj.conf,
# when the test wrote one) and the helpers the scenarios share. Every line
# for the harness starts with "KJ: "; mark() adds the uptime.

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -f /etc/kj.conf ] && . /etc/kj.conf

mark() { echo "KJ: $* @$(cut -d' ' -f1 /proc/uptime)"; }
die() { mark "FAIL $*"; poweroff -f; }

# hold_memory SEED [--mlock]: a process holding MEM_MIB MiB of a known
# pattern, until check_memory() tells it to check the pattern.
hold_memory() {
	# The old output goes first: the new process truncates it only once
	# it runs, and the wait below would read the old "filled".
	rm -f /tmp/go /tmp/memhold.out
	kj-guest memhold --mib "$MEM_MIB" --seed "$1" --check /tmp/go $2 \
		>/tmp/memhold.out 2>&1 &
	HOLD_PID=$!
	until grep -q -e filled -e mlock: /tmp/memhold.out 2>/dev/null; do
		sleep 0.1
	done
	grep -q filled /tmp/memhold.out || die "memhold: $(cat /tmp/memhold.out)"
}

# check_memory WHO: the held pattern is intact; says "WHO memory intact".
check_memory() {
	touch /tmp/go
	wait "$HOLD_PID"
	grep -q intact /tmp/memhold.out || die "memory: $(cat /tmp/memhold.out)"
	mark "$1 memory intact"
}
