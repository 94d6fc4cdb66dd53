#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Compile-fail check of the kexec jump sequence. Inside
# kernel/kexec_jump/quiesce.rs the steps can only be entered in order, none
# skipped, and none left before the steps built on it; from
# kernel/kexec_jump/kexec_jump.rs, the caller, no step can be had as an
# owned guard (to forget or keep), the proof of a quiesced machine cannot
# leave the closure or the task, no second sequence can start inside the
# first, and devices cannot get a mismatched pair of messages. Each
# mutation below breaks one of these in the source and must be refused by
# the compiler with the error named; the unchanged files must compile with
# the same command.
#
# Uses the exact rustc command kbuild recorded for the object in the ours
# build (build/out/ours), on copies in a scratch directory: the tree and
# the build are left untouched. Run after scripts/build-kernel.sh ours.
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

OUT=$KJ_BUILD/out/ours
SRC=$KJ_BUILD/src/ours
DIR=kernel/kexec_jump
REL=$DIR/kexec_jump
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

# The crate root and its module, copied side by side: `mod quiesce;`
# resolves next to the root the command names.
cp "$SRC/$REL.rs" "$SCRATCH/root.rs"
cp "$SRC/$DIR/quiesce.rs" "$SCRATCH/quiesce.rs"
compile "$SCRATCH/root.rs" || {
	cat "$SCRATCH/log" >&2
	die "the unchanged sequence does not compile with the saved command"
}
echo "ok - the sequence as written compiles"

# name # file (root: kexec_jump.rs, quiesce) # sed script # the error the
# compiler must give
mutations=(
	"devices suspended before tasks are frozen#quiesce#s/SuspendedDevices::start(&mut output,/SuspendedDevices::start(\&mut tasks,/#error\[E0308\]"
	"secondary CPUs left online before syscore#quiesce#s/SuspendedSyscore::suspend(&mut cpus, irqs)/SuspendedSyscore::suspend(\&mut late, irqs)/#error\[E0308\]"
	"syscore suspended without interrupts off#quiesce#s/SuspendedSyscore::suspend(&mut cpus, irqs)/SuspendedSyscore::suspend(\&mut cpus, \&())/#error\[E0308\]"
	"platform quiesced before the devices' noirq callbacks#quiesce#s/QuietPlatform::quiesce(&mut late)/QuietPlatform::quiesce(\&mut devices)/#error\[E0308\]"
	"CPUs offline swapped with late device suspend#quiesce#/let mut late = /{h;d};/let mut cpus = /{G}#error\[E0425\]"
	"devices resumed while CPUs are still offline#quiesce#/let mut cpus = /a\\    drop(late);#error\[E0505\]"
	"a step entered twice#quiesce#/let mut late = /a\\    let _again = SuspendedDevicesLate::end(\&mut devices)?;#error\[E0499\]"
	"console prepared without system_transition_mutex#quiesce#s/PreparedConsole::prepare(locked)/PreparedConsole::prepare(\&mut ())/#error\[E0308\]"
	"a step handed to another thread#quiesce#/let mut tasks = /a\\    fn send<T: Send>(_: T) {} send(\&tasks);#error\[E0277\]"
	"a guard owned by the caller, to forget#root#/^fn jump(/a\\    core::mem::forget(quiesce::PreparedConsole::prepare(locked));#error\[E0603\]"
	"the proof kept past the sequence#root#s/with_quiesced(locked, Messages::JUMP, parking, |_quiesced| {/let mut kept = None; with_quiesced(locked, Messages::JUMP, parking, |_quiesced| { kept = Some(_quiesced);/#error\[E0521\]"
	"the proof sent to another thread#root#s/with_quiesced(locked, Messages::JUMP, parking, |_quiesced| {/with_quiesced(locked, Messages::JUMP, parking, |_quiesced| { fn send<T: Send>(_: T) {} send(_quiesced);/#error\[E0277\]"
	"a second sequence inside the first#root#s/with_quiesced(locked, Messages::JUMP, parking, |_quiesced| {/with_quiesced(locked, Messages::JUMP, parking, |_quiesced| { let _ = with_quiesced(locked, Messages::JUMP, quiesce::CpuParking::Jump, |_| ());/#error\[E0500\]"
	"a mismatched message pair#root#s/Messages::JUMP, parking/Messages { suspend: todo!(), resume: todo!() }, parking/#error\[E0451\]"
)

failed=0
for m in "${mutations[@]}"; do
	IFS='#' read -r name which script want <<<"$m"
	case $which in
	root) orig=$SRC/$REL.rs target=root.rs ;;
	quiesce) orig=$SRC/$DIR/quiesce.rs target=quiesce.rs ;;
	esac
	cp "$SRC/$REL.rs" "$SCRATCH/root.rs"
	cp "$SRC/$DIR/quiesce.rs" "$SCRATCH/quiesce.rs"
	sed -e "$script" "$orig" >"$SCRATCH/$target"
	if cmp -s "$orig" "$SCRATCH/$target"; then
		echo "FAIL - $name: the mutation did not change the source"
		failed=1
	elif compile "$SCRATCH/root.rs"; then
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
[ $failed = 0 ] || die "a broken sequence compiled, or failed for another reason"
