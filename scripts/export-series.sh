#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Export the series as mailable patches: git format-patch output, one
# commit per line of patches/series (the patch's changes plus the new
# files listed with it), numbered, with a cover letter.
#
# The commits are made in a scratch git repository that holds only the
# base-tree files the series touches: the diffs, index lines and
# diffstats are the ones a full tree would give.
#
# Usage: scripts/export-series.sh [OUTDIR]   (default: build/series)
# Send with: git send-email OUTDIR/*.patch
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

SERIES=$KJ_ROOT/patches/series
COVER=$KJ_ROOT/patches/cover-letter
BASE=$KJ_BUILD/src/base
OUT=${1:-$KJ_BUILD/series}
WORK=$KJ_BUILD/export-git

[ -f "$BASE/Makefile" ] || die "no base tree in $BASE: run scripts/build-kernel.sh first"
[ -f "$SERIES" ] || die "$SERIES not found"
[ -f "$COVER" ] || die "$COVER not found"

# Every patch and every new file must be in the series exactly once
# (kernel/configs/ holds this repository's test configs: not mailed).
mapfile -t lines < <(grep -v -e '^#' -e '^[[:space:]]*$' "$SERIES")
listed=$(printf '%s\n' "${lines[@]}" | tr ' ' '\n' | sed '/^$/d' | sort)
dups=$(uniq -d <<<"$listed")
[ -z "$dups" ] || die "listed twice in $SERIES: $dups"
have=$( (cd "$KJ_ROOT" && ls patches/*.patch | sed 's|^patches/||' &&
	find arch drivers fs include kernel rust Documentation tools/testing/selftests -type f 2>/dev/null |
	grep -v '^kernel/configs/') | sort)
missing=$(comm -13 <(echo "$listed") <(echo "$have"))
[ -z "$missing" ] || die "not in $SERIES: $(echo $missing)"
gone=$(comm -23 <(echo "$listed") <(echo "$have"))
[ -z "$gone" ] || die "in $SERIES but not in the repository: $(echo $gone)"

rm -rf "$WORK" "$OUT"
mkdir -p "$WORK" "$OUT"
git -C "$WORK" init -q
git -C "$WORK" config user.name "Kexec Jump Team"
git -C "$WORK" config user.email "kexec-jump@example.org"

for line in "${lines[@]}"; do
	read -r patch _ <<<"$line"
	sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$KJ_ROOT/patches/$patch"
done | sort -u | while read -r f; do
	[ -e "$BASE/$f" ] || continue
	mkdir -p "$WORK/$(dirname "$f")"
	cp "$BASE/$f" "$WORK/$f"
done
git -C "$WORK" add -A
git -C "$WORK" commit -q -m "base: Debian linux-source-6.12, the files the series touches"

for line in "${lines[@]}"; do
	read -r patch files <<<"$line"
	p=$KJ_ROOT/patches/$patch
	patch -d "$WORK" -p1 --batch --silent --no-backup-if-mismatch <"$p" >/dev/null ||
		die "$patch does not apply in order"
	for f in $files; do
		mkdir -p "$WORK/$(dirname "$f")"
		cp "$KJ_ROOT/$f" "$WORK/$f"
	done
	author=$(sed -n 's/^From: //p;/^$/q' "$p")
	subject=$(sed -n 's/^Subject: \(\[PATCH\] \)\{0,1\}//p;/^$/q' "$p")
	# The body: after the header's blank line, up to the "---" line.
	body=$(sed -n '/^$/,/^---$/p' "$p" | sed '1d;$d')
	git -C "$WORK" add -A
	git -C "$WORK" commit -q --author="$author" -F - <<<"$subject

$body"
done

n=${#lines[@]}
git -C "$WORK" format-patch -q --numbered --cover-letter -o "$OUT" "HEAD~$n"
# Fill the cover letter's placeholders from patches/cover-letter: its
# first line is the subject, the rest the blurb.
cover=$(ls "$OUT"/0000-*.patch)
python3 - "$cover" "$COVER" <<'EOF'
import sys
path, src = sys.argv[1], open(sys.argv[2]).read().split("\n", 1)
text = open(path).read()
text = text.replace("*** SUBJECT HERE ***", src[0].strip())
text = text.replace("*** BLURB HERE ***", src[1].strip())
open(path, "w").write(text)
EOF
echo "exported $n patches and a cover letter to $OUT"
