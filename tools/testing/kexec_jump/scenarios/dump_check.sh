# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the jump scenarios (/etc/kj-dump.sh): is B's /proc/vmcore all
# of A? A tags pages with their own physical address and puts a line in its
# kernel log; B finds the tags in its dump and the line in the log that
# makedumpfile reads out of it. Needs mark() and die().

# In A: tag MIB MiB (auto: three quarters of what is available) of locked
# pages with a fresh nonce, and log a line; sets TAG_OPTS, B's option.
tag_a_memory() {
	mib=$1
	if [ "$mib" = auto ]; then
		mib=$(($(sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo) * 3 / 4096))
	fi
	nonce=0x$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
	# Locked pages stay in place only if compaction leaves them alone.
	echo 0 >/proc/sys/vm/compact_unevictable_allowed
	rm -f /tmp/tags.go
	kj-guest tagfill --mib "$mib" --nonce "$nonce" --check /tmp/tags.go >/tmp/tags.out 2>&1 &
	TAG_PID=$!
	until grep -q tagged /tmp/tags.out 2>/dev/null; do
		grep -q FAIL /tmp/tags.out 2>/dev/null && die "$(cat /tmp/tags.out)"
		sleep 0.2
	done
	echo "KJMARK-A-KMSG-$nonce" >/dev/kmsg
	mark "A $(cat /tmp/tags.out)"
	TAG_OPTS="kj_tags=$nonce"
}

# In A, after the jump: the tagged pages did not move meanwhile.
tags_stayed() {
	touch /tmp/tags.go
	# Waited for, so its memory is free again when the caller next reads
	# MemFree.
	wait "$TAG_PID"
	grep -q moved /tmp/tags.out || die "tagfill: $(cat /tmp/tags.out)"
	mark "A $(tail -n1 /tmp/tags.out)"
}

# In B: the tags in the dump, makedumpfile -d 31, and A's log line out of
# the dump with makedumpfile --dump-dmesg.
check_dump_of_a() {
	nonce=$(sed -n 's/.*kj_tags=\(0x[0-9a-f]*\).*/\1/p' /proc/cmdline)
	[ -n "$nonce" ] || return 0
	mark "B $(kj-guest tagscan "$nonce")"
	{
		makedumpfile -F -d 31 /proc/vmcore 2>/tmp/md.err
		echo $? >/tmp/md.rc
	} | wc -c >/tmp/md.bytes
	mark "B makedumpfile rc=$(cat /tmp/md.rc) bytes=$(cat /tmp/md.bytes) $(grep -v '^$' /tmp/md.err | head -n3 | tr '\n' ';')"
	makedumpfile --dump-dmesg /proc/vmcore /tmp/dmesg >/tmp/dmesg.out 2>&1
	rc=$?
	mark "B dump-dmesg rc=$rc lines=$(grep -c . /tmp/dmesg 2>/dev/null) A's line: $(grep -c "KJMARK-A-KMSG-$nonce" /tmp/dmesg 2>/dev/null) $(grep -v '^$' /tmp/dmesg.out | head -n3 | tr '\n' ';')"
}
