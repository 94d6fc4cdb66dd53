#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the two test kernels from the Debian 6.12 base tree:
#   ours - the base tree with this repository's series applied,
#   ref  - the unpatched base tree (the upstream C kexec jump).
# Both get tinyconfig plus the same fragment, so they differ only by the
# series. Re-running after an edit copies only changed files into the tree,
# so make rebuilds incrementally.
#
# Usage: scripts/build-kernel.sh [ours|ref|all]
# Result: build/out/{ours,ref}/arch/x86/boot/bzImage
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

# Repository folders that hold new files at their kernel paths.
OVERLAY_DIRS=(arch drivers include kernel rust Documentation)
COMMON_CONFIG=kernel/configs/kexec_jump_test.config
SERIES_CONFIG=kernel/configs/kexec_jump_series.config

SRC=$KJ_BUILD/src
OUT=$KJ_BUILD/out

kmake() {
	local tree=$1; shift
	make -s -C "$SRC/$tree" O="$OUT/$tree" "${KJ_MAKE_ARGS[@]}" "$@"
}

extract_base() {
	[ -f "$SRC/ref/Makefile" ] && return
	[ -f "$KJ_TARBALL" ] ||
		die "base tarball $KJ_TARBALL not found (run scripts/setup-toolchain.sh)"
	echo "extracting $KJ_TARBALL"
	rm -rf "$SRC/ref.tmp"
	mkdir -p "$SRC/ref.tmp"
	tar -xJf "$KJ_TARBALL" -C "$SRC/ref.tmp" --strip-components=1 ||
		die "cannot extract $KJ_TARBALL"
	[ -f "$SRC/ref.tmp/Makefile" ] || die "$KJ_TARBALL holds no kernel tree"
	mv "$SRC/ref.tmp" "$SRC/ref"
}

# Stage the series (new files, then patches on pristine copies) in a scratch
# tree, then copy into the tree only the files whose content changed.
apply_series() {
	local stage=$KJ_BUILD/series-stage tree=$SRC/ours f p
	local manifest=$tree/.kj-series-files

	if [ ! -f "$tree/Makefile" ]; then
		echo "copying base tree for ours"
		rm -rf "$tree"
		cp -a "$SRC/ref" "$tree.tmp" && mv "$tree.tmp" "$tree"
	fi

	rm -rf "$stage"
	mkdir -p "$stage"
	(cd "$KJ_ROOT" && for d in "${OVERLAY_DIRS[@]}"; do
		[ -d "$d" ] && find "$d" -type f
	done) | while read -r f; do
		mkdir -p "$stage/$(dirname "$f")"
		cp "$KJ_ROOT/$f" "$stage/$f"
	done

	for p in "$KJ_ROOT"/patches/*.patch; do
		[ -e "$p" ] || continue
		sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p" | while read -r f; do
			[ -e "$stage/$f" ] || [ ! -e "$SRC/ref/$f" ] && continue
			mkdir -p "$stage/$(dirname "$f")"
			cp "$SRC/ref/$f" "$stage/$f"
		done
		patch -d "$stage" -p1 --batch --forward --silent --no-backup-if-mismatch \
			-r - <"$p" >/dev/null ||
			die "patch $(basename "$p") does not apply to the base tree"
	done

	(cd "$stage" && find . -type f | sed 's|^\./||' | sort) >"$stage.list"
	while read -r f; do
		cmp -s "$stage/$f" "$tree/$f" && continue
		mkdir -p "$tree/$(dirname "$f")"
		cp "$stage/$f" "$tree/$f"
	done <"$stage.list"

	# Files the series no longer carries go back to the base version.
	if [ -f "$manifest" ]; then
		comm -23 "$manifest" "$stage.list" | while read -r f; do
			if [ -e "$SRC/ref/$f" ]; then
				cp "$SRC/ref/$f" "$tree/$f"
			else
				rm -f "$tree/$f"
			fi
		done
	fi
	mv "$stage.list" "$manifest"
}

# tinyconfig + fragments, regenerated only when a fragment changes.
configure() {
	local tree=$1 out=$OUT/$1 frags=("$KJ_ROOT/$COMMON_CONFIG") sum line sym want
	[ "$tree" = ours ] && [ -f "$KJ_ROOT/$SERIES_CONFIG" ] &&
		frags+=("$KJ_ROOT/$SERIES_CONFIG")
	sum=$(cat "${frags[@]}" | sha256sum | cut -d' ' -f1)
	[ -f "$out/.config" ] && [ "$(cat "$out/.kj-config-sum" 2>/dev/null)" = "$sum" ] &&
		return
	mkdir -p "$out"
	kmake "$tree" rustavailable >/dev/null 2>"$out/rustavailable.log" ||
		die "Rust is not available to the kernel build: $(head -n1 "$out/rustavailable.log")"
	kmake "$tree" tinyconfig >/dev/null
	"$SRC/$tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
		"${frags[@]}" >"$out/merge_config.log" 2>&1 ||
		die "merge_config.sh failed for $tree (see $out/merge_config.log)"
	kmake "$tree" olddefconfig >/dev/null

	# Every requested option must have survived: a typo or an unmet
	# dependency is silently dropped by Kconfig.
	grep -h -E '^(CONFIG_|# CONFIG_.* is not set)' "${frags[@]}" | while read -r line; do
		case $line in
		"# "*)
			sym=${line#\# }
			sym=${sym%% *}
			grep -q "^$sym=" "$out/.config" &&
				die "config option $sym must be unset but is $(grep "^$sym=" "$out/.config")"
			;;
		*)
			grep -qxF "$line" "$out/.config" ||
				die "config option $line did not take effect for $tree (unknown option or unmet dependency)"
			;;
		esac
	done
	echo "$sum" >"$out/.kj-config-sum"
}

build() {
	local tree=$1 start=$SECONDS lint=()
	echo "building $tree kernel"
	configure "$tree"
	# Our Rust is built through clippy: same code, plus the lints.
	[ "$tree" = ours ] && lint=(CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver)
	kmake "$tree" "${lint[@]}" -j"$KJ_JOBS" bzImage >"$OUT/$tree/build.log" 2>&1 || {
		grep -E 'error|Error' "$OUT/$tree/build.log" | head -n 20 >&2
		die "$tree kernel build failed (full log: $OUT/$tree/build.log)"
	}
	# The base tree has objtool warnings of its own (".text+0x0:
	# unreachable instruction" in vmlinux.o); the series must add none
	# for its own code.
	if [ "$tree" = ours ] && grep 'warning: objtool' "$OUT/ours/build.log" |
		grep -E 'kexec_jump|kj_|machine_kexec' >&2; then
		die "objtool warnings in the series' code"
	fi
	if [ "$tree" = ours ] && grep -B8 -E -- '--> .*(kernel/kexec_jump/|rust/kernel/(power|kexec)\.rs)' \
		"$OUT/ours/build.log" >&2; then
		die "compiler or clippy warnings in the series' Rust code"
	fi
	echo "built $OUT/$tree/arch/x86/boot/bzImage in $((SECONDS - start)) s"
}

which=${1:-all}
case $which in
ours | ref | all) ;;
*) die "unknown kernel '$which' (want ours, ref or all)" ;;
esac

mkdir -p "$SRC" "$OUT"
extract_base
case $which in
ref) build ref ;;
ours) apply_series && build ours ;;
all) build ref && apply_series && build ours ;;
esac
