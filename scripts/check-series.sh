#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Style gates on the series, run in the patched tree: checkpatch.pl --strict
# on every patch of the exported (mailable) series and on every new C,
# assembly and Rust file, and rustfmtcheck.
# (clippy runs in the build itself: scripts/build-kernel.sh builds ours
# with CLIPPY=1 and fails on warnings in the series' Rust.)
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

tree=$KJ_BUILD/src/ours
[ -f "$tree/scripts/checkpatch.pl" ] || die "no patched tree: run scripts/build-kernel.sh ours"
cd "$tree"

fail=0
checkpatch() {
	local out
	out=$(perl scripts/checkpatch.pl --strict --no-tree --quiet "$@" 2>/dev/null) || true
	if [ -n "$out" ]; then
		echo "$out"
		fail=1
	fi
}

# The series as it would be mailed (new files included). Fixes: tags are
# checked against git history, which the base tarball does not carry:
# UNKNOWN_COMMIT_ID is the one check left out here (the cover letter says
# to verify the IDs in a kernel git tree before mailing). CAMELCASE: the
# ELF types the kernel uses (Elf64_Phdr) are spelled that way.
"$KJ_ROOT/scripts/export-series.sh" "$KJ_BUILD/series" >/dev/null
for p in "$KJ_BUILD"/series/[0-9][0-9][0-9][0-9]-*.patch; do
	case $p in */0000-*) continue ;; esac
	checkpatch --ignore UNKNOWN_COMMIT_ID,CAMELCASE "$p"
done
while read -r f; do
	checkpatch --ignore CAMELCASE -f "$f"
done < <(cd "$KJ_ROOT" && find arch drivers fs include kernel rust tools/testing/selftests -type f \
	\( -name '*.c' -o -name '*.h' -o -name '*.S' -o -name '*.rs' \) 2>/dev/null)

make -s O="$KJ_BUILD/out/ours" "${KJ_MAKE_ARGS[@]}" rustfmtcheck || fail=1

# Per patch: each Rust file a patch adds or changes is rustfmt-clean as
# that patch leaves it (so every commit of the mailed series is, not only
# the last). The exported patches are applied in turn to copies of the
# base files they touch. Clippy and rustdoc at every patch need a build
# of each prefix: scripts/check-bisect.sh.
stage=$KJ_BUILD/series-rustfmt
rm -rf "$stage"
mkdir -p "$stage"
cp .rustfmt.toml "$stage/"
for p in "$KJ_BUILD"/series/[0-9][0-9][0-9][0-9]-*.patch; do
	case $p in */0000-*) continue ;; esac
	files=$(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p")
	for f in $files; do
		[ -e "$stage/$f" ] || [ ! -e "$KJ_BUILD/src/base/$f" ] && continue
		mkdir -p "$stage/$(dirname "$f")"
		cp "$KJ_BUILD/src/base/$f" "$stage/$f"
	done
	patch -d "$stage" -p1 --batch --forward --silent <"$p" >/dev/null ||
		die "$(basename "$p") does not apply to the base tree"
	for f in $files; do
		case $f in *.rs) ;; *) continue ;; esac
		# Through stdin, so that rustfmt leaves the file's modules alone
		# (it then exits 0 even with a diff: compare its output).
		rustfmt --edition 2021 --config-path "$stage/.rustfmt.toml" --emit stdout \
			<"$stage/$f" 2>/dev/null | cmp -s - "$stage/$f" || {
			echo "$(basename "$p"): $f is not rustfmt-clean at this patch"
			fail=1
		}
	done
done

# rustdoc of the kernel crate: no warning (broken links, missing docs) in
# the series' files.
log=$KJ_BUILD/out/ours/rustdoc.log
make -s O="$KJ_BUILD/out/ours" "${KJ_MAKE_ARGS[@]}" rustdoc >"$log" 2>&1 || {
	tail -n 20 "$log"
	fail=1
}
if grep -A6 '^warning' "$log" | grep -E -- '--> .*rust/kernel/(interrupt|irqflags|kexec|power)\.rs'; then
	echo "rustdoc warnings in the series (see $log)"
	fail=1
fi

[ $fail -eq 0 ] || die "style check failed"
echo "check-series: checkpatch --strict and rustfmt at every patch, rustfmtcheck, rustdoc: clean"
