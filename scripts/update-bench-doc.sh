#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Put the benchmark tables of the last test run into the testing guide
# (tools/testing/kexec_jump/README.md) and the admin guide, so every
# figure there is one a run measured, never typed.
# The floor tests of the test command (switch_floors, ladder_floor,
# hibernate_floors) write their raw rounds to build/bench/NAME.tsv;
# `kjtest tables NAME` makes the table from them and judges the floors
# again. Each table goes between the markers
#   the testing guide:  <!-- bench:NAME --> ... <!-- /bench:NAME -->
#   the admin guide:    .. bench:NAME ... .. /bench:NAME  (a literal block)
#
# Usage: scripts/update-bench-doc.sh
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

kjtest=$KJ_ROOT/target/release/kjtest
[ -x "$kjtest" ] || die "$kjtest missing: run scripts/build-harness.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in switch ladder hibernate; do
	"$kjtest" tables "$name" >"$tmp/$name" ||
		die "no recorded rounds for $name: run the test command (or kjtest run --only ${name}_floor*)"
done
# Not in the test command: these tables change only after a run here of
# `kjtest hibernate-bench 256 3 --mixed` and `kjtest sealed-bench 256 3`
# (with and without --cpu-max).
names="switch ladder hibernate"
for name in hibernate-mixed hibernate-sealed hibernate-sealed-max; do
	[ -f "$KJ_ROOT/build/bench/$name.tsv" ] || continue
	"$kjtest" tables "$name" >"$tmp/$name" || die "kjtest tables $name"
	names="$names $name"
done

python3 - "$tmp" "$KJ_ROOT/tools/testing/kexec_jump/README.md" \
	"$KJ_ROOT/Documentation/admin-guide/kexec-jump.rst" $names <<'PY'
import sys

tmp, testing, guide = sys.argv[1:4]
names = sys.argv[4:]


def replace(path, begin, end, body):
    text = open(path).read()
    i = text.find(begin)
    j = text.find(end, i)
    if i < 0 or j < 0:
        sys.exit(f"{path}: markers {begin!r} ... {end!r} missing")
    open(path, "w").write(text[:i + len(begin)] + "\n" + body + text[j:])


for name in names:
    table = open(f"{tmp}/{name}").read()
    replace(testing, f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->", table)
    block = "::\n\n" + "".join(f"  {l.rstrip()}\n" if l.strip() else "\n" for l in table.splitlines()) + "\n"
    replace(guide, f".. bench:{name}\n", f".. /bench:{name}", block)
PY
echo "the testing guide and the admin guide now hold the tables of the last run"
