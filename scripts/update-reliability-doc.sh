#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Copy the reliability report of a test run into the admin guide, so the
# figures there are the ones a run printed, never typed. The log is the
# output of scripts/run-tests.sh (or kjtest run --kernel all); the
# paragraph before the block gets the run's date, commit and summary.
#
# Usage: scripts/update-reliability-doc.sh LOG
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

log=${1:-}
[ -f "$log" ] || die "usage: $(basename "$0") LOG (the output of scripts/run-tests.sh)"
doc=$KJ_ROOT/Documentation/admin-guide/kexec-jump.rst
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
[ -n "$summary" ] || die "$log has no summary line: the run did not finish"
xfail=$(sed -n 's/^\([0-9]*\) expected failures (XFAIL.*/\1/p' "$log" | tail -n1)
[ -n "$xfail" ] || die "$log has no expected-failure count"
summary="$summary; $xfail expected failures of the reference"
grep -q '^reliability report:$' "$log" || die "$log has no reliability report"
commit=$(git -C "$KJ_ROOT" rev-parse --short HEAD)

python3 - "$log" "$doc" "$summary" "$commit" "$(date -u +%F)" <<'EOF'
import sys
import textwrap

log, doc, summary, commit, day = sys.argv[1:6]
lines = open(log).read().splitlines()
start = lines.index("reliability report:") + 1
block = []
for line in lines[start:]:
    if not line.strip():
        break
    block.append(line if line.startswith("  ") else "  " + line)
text = open(doc).read()
head = "The test command ends with a reliability report; "
i = text.index(head)
j = text.index("::\n\n", i) + len("::\n\n")
k = j
while k < len(text) and text[k:k + 2] == "  ":
    k = text.index("\n", k) + 1
para = textwrap.fill(f"{head}on {day} (at {commit}: \"{summary}\")::", 72,
                     break_on_hyphens=False) + "\n\n"
text = text[:i] + para + "\n".join(block) + "\n" + text[k:]
open(doc, "w").write(text)
EOF
echo "updated the reliability report in $doc from $log"
