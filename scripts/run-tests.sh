#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Everything a fresh Debian machine needs to run all tests: install the
# toolchain, build the three kernels (ours, ours with the C sequence,
# the reference), build the harness, then
# run the style gates, the compile-fail check of the jump sequence, the
# unit tests, the end-to-end tests in QEMU on all three kernels.
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"
cd "$KJ_ROOT"

"$KJ_ROOT/scripts/setup-toolchain.sh"
"$KJ_ROOT/scripts/build-kernel.sh" all
"$KJ_ROOT/scripts/build-harness.sh"

echo "== style"
"$KJ_ROOT/scripts/check-series.sh"
echo "== per-patch gates (clippy, rustfmtcheck, rustdoc, nojump) of the patches changed since they were gated"
"$KJ_ROOT/scripts/check-bisect.sh" --changed
echo "== the jump sequence refuses to compile out of order"
"$KJ_ROOT/scripts/check-ladder-order.sh"
cargo fmt --all --check || die "cargo fmt: run cargo fmt --all"
cargo clippy --release --workspace --all-targets --quiet -- -D warnings ||
	die "clippy warnings in the harness"

echo "== unit tests"
cargo test --workspace --release --quiet
echo "== hibernation image decoders under fuzzing (fixed seed)"
cargo test --release -p kjump --quiet decoders_survive_mutated_images -- --nocapture |
	grep "image fuzz:" || die "the image fuzz test printed no count"

echo "== end-to-end tests"
exec "$KJ_ROOT/target/release/kjtest" run --kernel all "$@"
