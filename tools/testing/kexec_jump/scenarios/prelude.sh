# SPDX-License-Identifier: GPL-2.0
#
# Sourced first by the scenarios' /init (in every image as
# /etc/kj-prelude.sh): file systems, the test's settings (/etc/kj.conf,
# when the test wrote one) and the helpers the scenarios share. Every line
# for the harness starts with "KJ: "; mark() adds the uptime.

# Not again where they are mounted (under systemd, debian.sh).
[ -e /proc/self ] || mount -t proc proc /proc
[ -d /sys/kernel ] || mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev 2>/dev/null
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

# b_jumps_back JUMP: B's side once it is up: jumps back to A with the
# function JUMP (called with the jump's number; it returns when A jumps to
# B again), then checks that B came back with its CPUs and its memory,
# for as long as A jumps to it.
b_jumps_back() {
	hold_memory 11
	n=0
	while :; do
		mark "B jumping back"
		"$1" "$n"
		n=$((n + 1))
		mark "B resumed $n cpus=$(cat /sys/devices/system/cpu/online)"
		check_memory B
		hold_memory $((11 + n))
	done
}

# log_mark NAME: a mark in the kernel log, for quiet_since().
log_mark() { echo "KJLOG-$1" >/dev/kmsg; }

# quiet_since NAME WHAT: dies unless the kernel logged, since log_mark NAME,
# no warning or error and nothing naming kexec above debug: a jump prints
# nothing of its own at the default log level. The PM core's and CPU
# hotplug's info lines (as in hibernation) are left alone, and so are
# notices (a CPU that A onlines for the first time to park it calibrates
# its delay loop, which under emulation says so at notice level), and so
# is the clocksource watchdog's "Long readout interval": its own two reads
# of the clocks were far apart, i.e. the host did not run the emulated
# CPU meanwhile (it then skips its check; a clock that really drifted
# still says "unstable", which counts). Reads
# "<level>[time] text" records (dmesg -r); levels of 8 and more are user
# space's.
quiet_since() {
	loud=$(dmesg -r | awk -v b="KJLOG-$1" '
		index($0, b) { on = 1; next }
		on && match($0, /^<[0-9]+>/) {
			lvl = substr($0, 2, RLENGTH - 2) + 0
			text = $0
			sub(/^<[0-9]+>(\[[^]]*\])? */, "", text)
			if (text ~ /^clocksource: Long readout interval/)
				next
			if (lvl < 8 && (lvl <= 4 || (lvl <= 6 && tolower(text) ~ /kexec/)))
				printf "level %d: %s | ", lvl, text
		}')
	[ -z "$loud" ] || die "$2 logged: $loud"
}

# timed_exec I CMD...: jump I of a round trip through CMD (kjump exec),
# quiet, with a 1 s sleeper armed and CLOCK_MONOTONIC read around it:
# the clock never goes back, and the sleeper's timer, which ran out while
# A was away, fires at once when A is back (a timer lost across the jump
# never would). Leaves CMD's output in /tmp/exec.out.
timed_exec() {
	i=$1
	shift
	rm -f /tmp/woke
	(sleep 1 && touch /tmp/woke) &
	sleeper=$!
	before=$(mono_ns)
	mark "A jumping $i"
	log_mark "exec-$i"
	kj-guest drain
	"$@" >/tmp/exec.out 2>&1 || die "A exec: $(tail -n1 /tmp/exec.out)"
	quiet_since "exec-$i" "A kjump exec"
	after=$(mono_ns)
	mark "A resumed $i cpus=$(cat /sys/devices/system/cpu/online) $(tail -n1 /tmp/exec.out)"
	[ "$after" -ge "$before" ] || die "CLOCK_MONOTONIC went back: $before -> $after"
	n=0
	while [ ! -e /tmp/woke ] && [ $n -lt 20 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ -e /tmp/woke ] || die "the sleeper armed before jump $i did not wake within 2 s of the jump back"
	wait $sleeper
	mark "A time ok: monotonic +$(((after - before) / 1000000)) ms, sleeper woke"
}

mono_ns() { kj-guest clock | sed 's/.*monotonic \([0-9]*\) ns/\1/'; }
