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
# Each patch that passes is recorded in patches/bisect-gated by a chained
# hash: the gate's inputs (this script, the export script, the config
# fragments, the base tarball's name), then every patch of the prefix and
# the new files it adds, but for new files under Documentation/ (no build
# reads them; checkpatch, which does, runs on the whole series in
# check-series.sh every time). A change to a patch changes its hash and
# the hash of every patch after it.
#
# The tree (build/src/bisect) and its two builds stay between runs, with
# a copy of every patch applied to the tree: a later run undoes, newest
# first, the applied patches from the first one to gate on (patch sets
# each file it touches to a new time, so make rebuilds what they touch),
# then applies and gates from there. The first run is about as long as
# one kernel build in each configuration, each patch one to five minutes.
#
# Usage: scripts/check-bisect.sh            gate the whole series, record it
#        scripts/check-bisect.sh --changed  gate only from the first patch
#                                           whose hash is not recorded (the
#                                           test command runs this form)
# (after scripts/build-kernel.sh ours nojump)
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

RECORD=$KJ_ROOT/patches/bisect-gated
BASE=$KJ_BUILD/src/base
TREE=$KJ_BUILD/src/bisect
OUT=$KJ_BUILD/out/bisect
SERIES=$KJ_BUILD/bisect-series
CONFIG=$KJ_BUILD/out/ours/.config
NOJUMP_OUT=$KJ_BUILD/out/bisect-nojump
NOJUMP_CONFIG=$KJ_BUILD/out/nojump/.config

# One line a patch, in series order: "<chained sha256> <patch file>".
chain_hashes() {
	local h files f
	h=$(cat "$KJ_ROOT/scripts/check-bisect.sh" "$KJ_ROOT/scripts/export-series.sh" \
		"$KJ_ROOT"/kernel/configs/*.config <(basename "$KJ_TARBALL") |
		sha256sum | cut -d' ' -f1)
	grep -v -e '^#' -e '^$' "$KJ_ROOT/patches/series" | while read -r -a files; do
		h=$({
			echo "$h"
			cat "$KJ_ROOT/patches/${files[0]}"
			for f in "${files[@]:1}"; do
				[ "${f#Documentation/}" = "$f" ] || continue
				echo "$f"
				cat "$KJ_ROOT/$f"
			done
		} | sha256sum | cut -d' ' -f1)
		echo "$h ${files[0]}"
	done
}

mapfile -t hashes < <(chain_hashes)
[ "${#hashes[@]}" -gt 0 ] || die "no patches in patches/series"
recorded=()
[ -f "$RECORD" ] && mapfile -t recorded < <(grep -v '^#' "$RECORD")
# The first patch whose chained hash is not the recorded one (0-based).
first=0
if [ "${1:-}" = --changed ]; then
	while [ "$first" -lt "${#hashes[@]}" ] &&
		[ "${hashes[$first]}" = "${recorded[$first]:-}" ]; do
		first=$((first + 1))
	done
	if [ "$first" -eq "${#hashes[@]}" ]; then
		echo "check-bisect: all ${#hashes[@]} patches gated as they are (patches/bisect-gated)"
		exit 0
	fi
	echo "check-bisect: gating from ${hashes[$first]#* }, the first patch not gated as it is"
elif [ -n "${1:-}" ]; then
	die "usage: $0 [--changed]"
fi

# After patch index $1 (0-based) passed: the record is the series up to it.
record() {
	{
		echo "# SPDX-License-Identifier: GPL-2.0"
		echo "# Written by scripts/check-bisect.sh: the patches that passed every"
		echo "# per-patch gate, by chained hash of the gate's inputs. Do not edit."
		printf '%s\n' "${hashes[@]:0:$(($1 + 1))}"
	} >"$RECORD"
}

[ -f "$BASE/Makefile" ] || die "no base tree: run scripts/build-kernel.sh first"
[ -f "$CONFIG" ] || die "no configuration in $CONFIG: run scripts/build-kernel.sh ours first"
[ -f "$NOJUMP_CONFIG" ] ||
	die "no configuration in $NOJUMP_CONFIG: run scripts/build-kernel.sh nojump first"

"$KJ_ROOT/scripts/export-series.sh" "$SERIES" >/dev/null
mapfile -t exported < <(ls "$SERIES"/[0-9][0-9][0-9][0-9]-*.patch | grep -v /0000-)
[ "${#exported[@]}" -eq "${#hashes[@]}" ] ||
	die "the exported series has ${#exported[@]} patches, patches/series ${#hashes[@]}"

# What is applied to the tree: copies named by index, 0000.patch on.
APPLIED=$TREE/.kj-applied
fresh() {
	rm -rf "$TREE" "$OUT" "$NOJUMP_OUT"
	# patch writes each file anew and renames it: base/ stays intact.
	cp -al "$BASE" "$TREE"
	mkdir -p "$APPLIED" "$OUT" "$NOJUMP_OUT"
}
[ -d "$APPLIED" ] && [ -f "$OUT/.config" ] && [ -f "$NOJUMP_OUT/.config" ] || fresh
mapfile -t applied < <(ls "$APPLIED")
# Keep the applied patches before $first that are still the series'.
keep=0
while [ "$keep" -lt "${#applied[@]}" ] && [ "$keep" -lt "$first" ] &&
	cmp -s "$APPLIED/${applied[$keep]}" "${exported[$keep]}"; do
	keep=$((keep + 1))
done
for ((j = ${#applied[@]} - 1; j >= keep; j--)); do
	if ! patch -d "$TREE" -p1 -R --batch --silent <"$APPLIED/${applied[$j]}" >/dev/null; then
		echo "check-bisect: cannot undo ${applied[$j]}: starting from the base tree" >&2
		fresh
		keep=0
		break
	fi
	rm "$APPLIED/${applied[$j]}"
done
cmp -s "$CONFIG" "$OUT/.config" || cp "$CONFIG" "$OUT/.config"
cmp -s "$NOJUMP_CONFIG" "$NOJUMP_OUT/.config" || cp "$NOJUMP_CONFIG" "$NOJUMP_OUT/.config"

for ((i = keep; i < ${#exported[@]}; i++)); do
	p=${exported[$i]}
	name=$(basename "$p")
	patch -d "$TREE" -p1 --batch --forward --silent <"$p" >/dev/null ||
		die "$name does not apply"
	cp "$p" "$APPLIED/$(printf %04d "$i").patch"
	[ "$i" -ge "$first" ] || continue
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
	record "$i"
	echo "ok - $name: checkpatch, clippy, rustfmt and rustdoc clean, builds with and without KEXEC_JUMP ($((SECONDS - start)) s)"
done
echo "check-bisect: every prefix of the series builds"
