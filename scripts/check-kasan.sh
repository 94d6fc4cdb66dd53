#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Ours once more with KASAN (tools/testing/kexec_jump/kasan/kasan.config on
# top of ours' .config, built in build/out/kasan/ours), then the tests that
# drive the series' own C and Rust hardest: the KUnit suites, the device
# callbacks and their unwind (a failing step and a failing freeze),
# physical-mode calls that trap, kjump's refusals, the kexec_load fuzzer,
# B's failures, and a sealed hibernation with its resume (the ranges and
# fill loads). A "BUG: KASAN:" line on any console fails its
# test, as every kernel report does.
#
# Left out: tests whose guests are sized for the plain kernel. KASAN's
# shadow (an eighth of RAM) and quarantine leave too little: kj-guest is
# OOM-killed in B's small memory in jump_round_trip and in
# kjump_round_trips_10_boots, and the resuming kernel of
# hibernate_resume_round_trip refuses (rightly) an image of A's 546 MiB of
# pages with 574 MiB available.
#
# Not part of run-tests.sh: one more kernel build (about 10 minutes on 2
# cores) and KASAN's slower boots do not fit in its 70 minutes. Run it
# after changing the series' C or Rust.
#
# Usage: scripts/check-kasan.sh [TEST...]   (after scripts/build-kernel.sh ours)
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

SRC=$KJ_BUILD/src/ours
OUT=$KJ_BUILD/out/kasan/ours
FRAG=$KJ_ROOT/tools/testing/kexec_jump/kasan/kasan.config
TESTS=(
	kunit_suites
	device_callbacks_in_order
	failed_step_unwinds
	freeze_failure_unwinds
	physical_mode_int3_returns
	physical_mode_fault_is_reported
	kjump_refuses_misuse
	kexec_load_fuzz
	hibernate_failure_in_b_keeps_a
	hibernate_io_error_keeps_a
	hibernate_sealed_round_trip
)
# Or the tests named on the command line.
[ $# -eq 0 ] || TESTS=("$@")

[ -f "$KJ_BUILD/out/ours/.config" ] || die "run scripts/build-kernel.sh ours first"
[ -x "$KJ_ROOT/target/release/kjtest" ] || die "run scripts/build-harness.sh first"
mkdir -p "$OUT"
cp "$KJ_BUILD/out/ours/.config" "$OUT/.config"
"$SRC/scripts/kconfig/merge_config.sh" -m -O "$OUT" "$OUT/.config" "$FRAG" \
	>"$OUT/merge_config.log" 2>&1 || die "merge_config.sh failed (see $OUT/merge_config.log)"
make -s -C "$SRC" O="$OUT" "${KJ_MAKE_ARGS[@]}" olddefconfig >/dev/null
while read -r line; do
	case $line in CONFIG_*) grep -qxF "$line" "$OUT/.config" ||
		die "$line did not take effect (unmet dependency?)" ;;
	esac
done <"$FRAG"
start=$SECONDS
make -s -C "$SRC" O="$OUT" "${KJ_MAKE_ARGS[@]}" -j"$KJ_JOBS" bzImage \
	>"$OUT/build.log" 2>&1 || {
	grep -E 'error' "$OUT/build.log" | head -n 10 >&2
	die "the KASAN kernel does not build (log: $OUT/build.log)"
}
echo "built the KASAN kernel in $((SECONDS - start)) s"

failed=0
for t in "${TESTS[@]}"; do
	KJ_KERNEL_OUT=$KJ_BUILD/out/kasan "$KJ_ROOT/target/release/kjtest" run \
		--kernel ours --only "$t" || failed=$((failed + 1))
done
[ "$failed" -eq 0 ] || die "$failed of ${#TESTS[@]} tests failed on the KASAN kernel"
echo "check-kasan: ${#TESTS[@]} tests passed on the KASAN kernel, no KASAN report"
