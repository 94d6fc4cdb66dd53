#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Bisectability: apply the exported series one patch at a time to a copy
# of the base tree and, after each patch, run checkpatch --strict on it,
# build bzImage with clippy in ours' configuration, rustfmtcheck, rustdoc
# where the patch changes Rust, and
# build bzImage in the nojump configuration (KEXEC=y, KEXEC_JUMP=n). Every
# prefix of the series must build without errors and without warnings in
# the series' files, with and without kexec jump.
#
# Incremental after the first build (about as long as one kernel build,
# plus a few minutes a patch). Not part of run-tests.sh, to keep that
# under the hour; run it before exporting the series for mail.
#
# Usage: scripts/check-bisect.sh   (after scripts/build-kernel.sh ours nojump)
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

BASE=$KJ_BUILD/src/base
TREE=$KJ_BUILD/src/bisect
OUT=$KJ_BUILD/out/bisect
SERIES=$KJ_BUILD/bisect-series
CONFIG=$KJ_BUILD/out/ours/.config
NOJUMP_OUT=$KJ_BUILD/out/bisect-nojump
NOJUMP_CONFIG=$KJ_BUILD/out/nojump/.config

[ -f "$BASE/Makefile" ] || die "no base tree: run scripts/build-kernel.sh first"
[ -f "$CONFIG" ] || die "no configuration in $CONFIG: run scripts/build-kernel.sh ours first"
[ -f "$NOJUMP_CONFIG" ] ||
	die "no configuration in $NOJUMP_CONFIG: run scripts/build-kernel.sh nojump first"

"$KJ_ROOT/scripts/export-series.sh" "$SERIES" >/dev/null
rm -rf "$TREE" "$OUT" "$NOJUMP_OUT"
cp -al "$BASE" "$TREE"
mkdir -p "$OUT" "$NOJUMP_OUT"
cp "$CONFIG" "$OUT/.config"
cp "$NOJUMP_CONFIG" "$NOJUMP_OUT/.config"

for p in "$SERIES"/[0-9][0-9][0-9][0-9]-*.patch; do
	name=$(basename "$p")
	[ "$name" = 0000-cover-letter.patch ] && continue
	# patch writes each file anew and renames it: base/ stays intact.
	patch -d "$TREE" -p1 --batch --forward --silent <"$p" >/dev/null ||
		die "$name does not apply"
	# As check-series.sh: checkpatch exits non-zero on any complaint, so
	# its output, not its status, decides. CamelCase: the ELF types.
	out=$(perl "$TREE/scripts/checkpatch.pl" --strict --no-tree --quiet \
		--ignore UNKNOWN_COMMIT_ID,CAMELCASE "$p" 2>/dev/null) || true
	[ -z "$out" ] || die "$name: checkpatch --strict complains: $out"
	make -s -C "$TREE" O="$OUT" "${KJ_MAKE_ARGS[@]}" olddefconfig >/dev/null
	start=$SECONDS
	make -s -C "$TREE" O="$OUT" "${KJ_MAKE_ARGS[@]}" CLIPPY=1 \
		CLIPPY_DRIVER=/usr/bin/clippy-driver -j"$KJ_JOBS" bzImage \
		>"$OUT/build-$name.log" 2>&1 || {
		grep -E 'error' "$OUT/build-$name.log" | head -n 10 >&2
		die "$name: the kernel does not build (log: $OUT/build-$name.log)"
	}
	if grep -E -- '--> .*(kexec_jump|rust/kernel/(interrupt|kexec|power)\.rs)' \
		"$OUT/build-$name.log" >&2; then
		die "$name: compiler warnings in the series' code"
	fi
	make -s -C "$TREE" O="$OUT" "${KJ_MAKE_ARGS[@]}" rustfmtcheck ||
		die "$name: rustfmtcheck complains"
	# rustdoc where the patch changes Rust: no warning in the series' files.
	if grep -q '^+++ b/.*\.rs' "$p"; then
		make -s -C "$TREE" O="$OUT" "${KJ_MAKE_ARGS[@]}" rustdoc \
			>"$OUT/rustdoc-$name.log" 2>&1 || die "$name: rustdoc fails (log: $OUT/rustdoc-$name.log)"
		if grep -A6 '^warning' "$OUT/rustdoc-$name.log" |
			grep -E -- '--> .*rust/kernel/(irqflags|kexec|power)\.rs'; then
			die "$name: rustdoc warnings in the series' files"
		fi
	fi
	make -s -C "$TREE" O="$NOJUMP_OUT" "${KJ_MAKE_ARGS[@]}" olddefconfig >/dev/null
	make -s -C "$TREE" O="$NOJUMP_OUT" "${KJ_MAKE_ARGS[@]}" -j"$KJ_JOBS" bzImage \
		>"$NOJUMP_OUT/build-$name.log" 2>&1 || {
		grep -E 'error' "$NOJUMP_OUT/build-$name.log" | head -n 10 >&2
		die "$name: the kernel does not build without KEXEC_JUMP (log: $NOJUMP_OUT/build-$name.log)"
	}
	echo "ok - $name: checkpatch, clippy, rustfmt and rustdoc clean, builds with and without KEXEC_JUMP ($((SECONDS - start)) s)"
done
echo "check-bisect: every prefix of the series builds"
