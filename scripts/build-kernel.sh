#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the test kernels from the Debian 6.12 base tree:
#   ours - the base tree with this repository's whole series applied,
#   c    - the same tree with the series' C sequence (CONFIG_KEXEC_JUMP
#          without CONFIG_KEXEC_JUMP_RUST); Rust only for the test
#          devices, so the C sequence's unwinding is observed too,
#   ref  - the base tree with only the test devices (drivers/, patch
#          0001): the upstream C kexec jump, observed the same way.
# and two kernels that are only built, never booted, to show the series
# builds where kexec jump is off:
#   nojump - ours' tree for x86_64 with KEXEC=y and KEXEC_JUMP=n (the
#            x86_64_defconfig case),
#   arm64  - ours' tree for arm64 with KEXEC=y (clang cross build).
# All get tinyconfig plus the same fragment (ours, c and ref also the
# Rust one), so they differ only by the series and by the sequence; ours
# also gets what systemd needs as PID 1 (kernel/configs/
# kexec_jump_systemd.config), for the Debian system test.
# Re-running after an edit copies only changed files into the tree, so
# make rebuilds incrementally. The pristine tree stays in build/src/base;
# ref and ours are hard-linked copies whose changed files are replaced.
#
# Usage: scripts/build-kernel.sh [ours|c|ref|nojump|arm64|all]
# Result: build/out/{ours,c,ref,nojump}/arch/x86/boot/bzImage,
#         build/out/arm64/arch/arm64/boot/Image
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

# Repository folders that hold new files at their kernel paths, and the
# part of the series the reference kernel gets too.
OVERLAY_DIRS=(arch drivers fs include kernel rust Documentation tools/testing/selftests)
REF_OVERLAY_DIRS=(drivers)
REF_PATCHES=(0001-driver-core-add-kexec-jump-test-devices.patch)
COMMON_CONFIG=kernel/configs/kexec_jump_test.config
RUST_CONFIG=kernel/configs/kexec_jump_rust.config
SERIES_CONFIG=kernel/configs/kexec_jump_series.config
C_CONFIG=kernel/configs/kexec_jump_c.config
NO_JUMP_CONFIG=kernel/configs/kexec_no_jump.config
SYSTEMD_CONFIG=kernel/configs/kexec_jump_systemd.config

SRC=$KJ_BUILD/src
OUT=$KJ_BUILD/out

# The source tree a kernel is built from: c, nojump and arm64 are ours
# in other configurations.
src_of() {
	case $1 in c | nojump | arm64) echo ours ;; *) echo "$1" ;; esac
}

arch_of() {
	case $1 in arm64) echo arm64 ;; *) echo x86 ;; esac
}

# What a kernel's build makes: arm64's boot image is Image.
target_of() {
	case $1 in arm64) echo Image ;; *) echo bzImage ;; esac
}

kmake() {
	local tree=$1; shift
	make -s -C "$SRC/$(src_of "$tree")" O="$OUT/$tree" ARCH="$(arch_of "$tree")" \
		"${KJ_MAKE_ARGS[@]}" "$@"
}

extract_base() {
	[ -f "$SRC/base/Makefile" ] && return
	# Trees extracted before base/ existed hold the pristine tree in ref/.
	if [ -f "$SRC/ref/Makefile" ] && [ ! -f "$SRC/ref/.kj-series-files" ]; then
		mv "$SRC/ref" "$SRC/base"
		return
	fi
	[ -f "$KJ_TARBALL" ] ||
		die "base tarball $KJ_TARBALL not found (run scripts/setup-toolchain.sh)"
	echo "extracting $KJ_TARBALL"
	rm -rf "$SRC/base.tmp"
	mkdir -p "$SRC/base.tmp"
	tar -xJf "$KJ_TARBALL" -C "$SRC/base.tmp" --strip-components=1 ||
		die "cannot extract $KJ_TARBALL"
	[ -f "$SRC/base.tmp/Makefile" ] || die "$KJ_TARBALL holds no kernel tree"
	mv "$SRC/base.tmp" "$SRC/base"
}

# Stage a part of the series (new files, then patches on pristine copies)
# in a scratch tree, then copy into the tree only the files whose content
# changed. Usage: apply_series TREE "OVERLAY_DIR..." PATCH...
apply_series() {
	local tree=$SRC/$1 dirs=$2 stage=$KJ_BUILD/series-stage-$1 f p
	local manifest=$SRC/$1/.kj-series-files
	shift 2

	if [ ! -f "$tree/Makefile" ]; then
		echo "linking base tree for $(basename "$tree")"
		rm -rf "$tree.tmp"
		cp -al "$SRC/base" "$tree.tmp" && mv "$tree.tmp" "$tree"
	fi

	rm -rf "$stage"
	mkdir -p "$stage"
	# shellcheck disable=SC2086 # $dirs is a list of folder names
	(cd "$KJ_ROOT" && for d in $dirs; do
		[ -d "$d" ] && find "$d" -type f
	done) | while read -r f; do
		mkdir -p "$stage/$(dirname "$f")"
		cp "$KJ_ROOT/$f" "$stage/$f"
	done

	for p in "$@"; do
		[ -e "$p" ] || die "patch $p not found"
		sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p" | while read -r f; do
			[ -e "$stage/$f" ] || [ ! -e "$SRC/base/$f" ] && continue
			mkdir -p "$stage/$(dirname "$f")"
			cp "$SRC/base/$f" "$stage/$f"
		done
		patch -d "$stage" -p1 --batch --forward --silent --no-backup-if-mismatch \
			-r - <"$p" >/dev/null ||
			die "patch $(basename "$p") does not apply to the base tree"
	done

	(cd "$stage" && find . -type f | sed 's|^\./||' | sort) >"$stage.list"
	# --remove-destination: never write through a hard link into base/.
	while read -r f; do
		cmp -s "$stage/$f" "$tree/$f" && continue
		mkdir -p "$tree/$(dirname "$f")"
		cp --remove-destination "$stage/$f" "$tree/$f"
	done <"$stage.list"

	# Files the series no longer carries go back to the base version.
	if [ -f "$manifest" ]; then
		comm -23 "$manifest" "$stage.list" | while read -r f; do
			if [ -e "$SRC/base/$f" ]; then
				cp --remove-destination "$SRC/base/$f" "$tree/$f"
			else
				rm -f "$tree/$f"
			fi
		done
	fi
	mv "$stage.list" "$manifest"
}

# tinyconfig + fragments, regenerated only when a fragment changes.
configure() {
	local tree=$1 out=$OUT/$1 frags=() sum line sym want
	case $tree in
	nojump | arm64) frags=("$KJ_ROOT/$NO_JUMP_CONFIG") ;;
	c) frags=("$KJ_ROOT/$COMMON_CONFIG" "$KJ_ROOT/$RUST_CONFIG" "$KJ_ROOT/$C_CONFIG") ;;
	ref) frags=("$KJ_ROOT/$COMMON_CONFIG" "$KJ_ROOT/$RUST_CONFIG") ;;
	ours) frags=("$KJ_ROOT/$COMMON_CONFIG" "$KJ_ROOT/$RUST_CONFIG" "$KJ_ROOT/$SERIES_CONFIG"
		"$KJ_ROOT/$SYSTEMD_CONFIG") ;;
	esac
	sum=$(cat "${frags[@]}" | sha256sum | cut -d' ' -f1)
	[ -f "$out/.config" ] && [ "$(cat "$out/.kj-config-sum" 2>/dev/null)" = "$sum" ] &&
		return
	mkdir -p "$out"
	case $tree in
	ours | c | ref)
		kmake "$tree" rustavailable >/dev/null 2>"$out/rustavailable.log" ||
			die "Rust is not available to the kernel build: $(head -n1 "$out/rustavailable.log")"
		;;
	esac
	kmake "$tree" tinyconfig >/dev/null
	"$SRC/$(src_of "$tree")/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
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
			if grep -q "^$sym=" "$out/.config"; then
				die "config option $sym must be unset but is $(grep "^$sym=" "$out/.config")"
			fi
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
	kmake "$tree" "${lint[@]}" -j"$KJ_JOBS" "$(target_of "$tree")" >"$OUT/$tree/build.log" 2>&1 || {
		grep -E 'error|Error' "$OUT/$tree/build.log" | head -n 20 >&2
		die "$tree kernel build failed (full log: $OUT/$tree/build.log)"
	}
	# The base tree has objtool warnings of its own (".text+0x0:
	# unreachable instruction" in vmlinux.o); the series must add none
	# for its own code.
	# Any compiler warning in a file the series changes fails the build
	# (those kernels have no -Werror).
	if [ "$tree" != ref ] && grep -E '^[^ ]*(kexec|crash|vmcore)[^ ]*:[0-9]+:[0-9]+: warning:' \
		"$OUT/$tree/build.log" >&2; then
		die "compiler warnings in the series' C code ($tree)"
	fi
	if [ "$tree" != ref ] && grep 'warning: objtool' "$OUT/$tree/build.log" |
		grep -E 'kexec_jump|kj_|machine_kexec' >&2; then
		die "objtool warnings in the series' code"
	fi
	if [ "$tree" = ours ] && grep -B8 -E -- '--> .*(kernel/kexec_jump/|rust/kernel/(power|kexec|interrupt)\.rs|drivers/base/test/kexec_jump_testdev\.rs)' \
		"$OUT/ours/build.log" >&2; then
		die "compiler or clippy warnings in the series' Rust code"
	fi
	echo "built $tree kernel ($(arch_of "$tree") $(target_of "$tree")) in $((SECONDS - start)) s"
}

which=${1:-all}
case $which in
ours | c | ref | nojump | arm64 | all) ;;
*) die "unknown kernel '$which' (want ours, c, ref, nojump, arm64 or all)" ;;
esac

mkdir -p "$SRC" "$OUT"
extract_base
ref_series() {
	apply_series ref "${REF_OVERLAY_DIRS[*]}" "${REF_PATCHES[@]/#/$KJ_ROOT/patches/}"
}
our_series() {
	apply_series ours "${OVERLAY_DIRS[*]}" "$KJ_ROOT"/patches/*.patch
}
case $which in
ref) ref_series && build ref ;;
ours) our_series && build ours ;;
c | nojump | arm64) our_series && build "$which" ;;
all)
	ref_series && build ref && our_series && build ours && build c &&
		build nojump && build arm64
	;;
esac
