#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Compile-fail check of the kexec jump sequence: the steps of
# kernel/kexec_jump/kexec_jump.rs can only be entered in order, none
# skipped, and none left before the steps built on it. Each mutation below
# breaks that order in the source and must be refused by the compiler with
# the error named; the unchanged file must compile with the same command.
#
# Uses the exact rustc command kbuild recorded for the object in the ours
# build (build/out/ours), on copies in a scratch directory: the tree and
# the build are left untouched. Run after scripts/build-kernel.sh ours.
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

OUT=$KJ_BUILD/out/ours
SRC=$KJ_BUILD/src/ours
REL=kernel/kexec_jump/kexec_jump
CMD_FILE=$OUT/kernel/kexec_jump/.kexec_jump.o.cmd
SCRATCH=$KJ_BUILD/ladder-check

[ -f "$CMD_FILE" ] || die "$CMD_FILE missing: run scripts/build-kernel.sh ours first"
cmd=$(sed -n "s/^savedcmd_$(echo "$REL" | sed 's|/|\\/|g').o := //p" "$CMD_FILE")
[ -n "$cmd" ] || die "no saved command in $CMD_FILE"
grep -qF "$SRC/$REL.rs" <<<"$cmd" || die "saved command does not name $SRC/$REL.rs"

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"

# compile FILE: runs the saved command on FILE, output into the scratch dir.
compile() {
	local file=$1 c=$cmd
	c=${c//"$SRC/$REL.rs"/"$file"}
	c=${c//"$REL.o"/"$SCRATCH/out.o"}
	c=${c//"$REL.d"/"$SCRATCH/out.d"}
	# kbuild exports RUSTC_BOOTSTRAP=1 for the -Z flags it passes.
	(cd "$OUT" && RUSTC_BOOTSTRAP=1 eval "$c") >"$SCRATCH/log" 2>&1
}

compile "$SRC/$REL.rs" || {
	cat "$SCRATCH/log" >&2
	die "the unchanged sequence does not compile with the saved command"
}
echo "ok - the sequence as written compiles"

# name | sed script | the error the compiler must give
mutations=(
	"devices suspended before tasks are frozen|s/SuspendedDevices::start(&mut output,/SuspendedDevices::start(\&mut tasks,/|error\[E0308\]"
	"secondary CPUs left online before syscore|s/SuspendedSyscore::suspend(&mut cpus, irqs)/SuspendedSyscore::suspend(\&mut late, irqs)/|error\[E0308\]"
	"syscore suspended without interrupts off|s/SuspendedSyscore::suspend(&mut cpus, irqs)/SuspendedSyscore::suspend(\&mut cpus, \&())/|error\[E0308\]"
	"jump without the last step|s/image.jump(&syscore)/image.jump(\&cpus)/|error\[E0308\]"
	"CPUs offline swapped with late device suspend|/let mut late = /{h;d};/let mut cpus = /{G}|error\[E0425\]"
	"devices resumed while CPUs are still offline|/let mut cpus = /a\\    drop(late);|error\[E0505\]"
	"a step entered twice|/let mut late = /a\\    let _again = SuspendedDevicesLate::end(\&mut devices)?;|error\[E0499\]"
	"console prepared without system_transition_mutex|s/PreparedConsole::prepare(transition)/PreparedConsole::prepare(\&mut ())/|error\[E0308\]"
	"a step handed to another thread|/let mut tasks = /a\\    fn send<T: Send>(_: T) {} send(\&tasks);|error\[E0277\]"
)

failed=0
for m in "${mutations[@]}"; do
	IFS='|' read -r name script want <<<"$m"
	sed -e "$script" "$SRC/$REL.rs" >"$SCRATCH/mutant.rs"
	if cmp -s "$SRC/$REL.rs" "$SCRATCH/mutant.rs"; then
		echo "FAIL - $name: the mutation did not change the source"
		failed=1
	elif compile "$SCRATCH/mutant.rs"; then
		echo "FAIL - $name: compiles"
		failed=1
	elif ! grep -q "$want" "$SCRATCH/log"; then
		echo "FAIL - $name: refused, but not with $want:"
		grep -m3 '^error' "$SCRATCH/log" | sed 's/^/    /'
		failed=1
	else
		echo "ok - $name: refused ($(grep -m1 "$want" "$SCRATCH/log" | cut -c1-80))"
	fi
done
[ $failed = 0 ] || die "a reordered sequence compiled, or failed for another reason"
