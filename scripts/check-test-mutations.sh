#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The test suite fails where it must: each mutation below breaks one
# thing on purpose, in the kernel or in a guest scenario, and the test
# named must then fail with the reason given (a fixed string of its
# failure). A test that still passes, or fails for another reason, fails
# this check.
#
# Kernel mutations change one file of the patched tree (build/src/ours)
# and build a copy of that kernel's output folder (build/mutants/TREE):
# the tree is restored on exit, and build/out is left alone. Scenario
# mutations change a copy of the repository (a git worktree of HEAD in
# build/mutants/src) and build kjtest from it; the kernels and guest
# programs are the ones scripts/build-kernel.sh and build-harness.sh
# built. Not part of run-tests.sh (each kernel mutation is a build); run
# it after changing a test's checks.
#
# Usage: scripts/check-test-mutations.sh [NAME...]   (default: all)
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"

MUT=$KJ_BUILD/mutants
SRC=$KJ_BUILD/src/ours
WT=$MUT/src

[ -f "$KJ_BUILD/out/ours/arch/x86/boot/bzImage" ] || die "run scripts/build-kernel.sh first"
[ -x "$KJ_ROOT/target/release/kjtest" ] || die "run scripts/build-harness.sh first"

# name # where: kernel TREE FILE, or scenario FILE # sed script # test #
# kernel to run it on # the reason the test must fail with
mutations=(
	"resident jumps copy the image (a floor missed)#kernel ours arch/x86/kernel/machine_kexec_64.c#s/^\t\tmachine_kexec_jump(image);$/\t\tfor (unsigned long i = 0; image->resident \&\& i < image->nr_segments; i++)\n\t\t\tmemcpy(phys_to_virt(image->segment[i].mem), phys_to_virt(image->segment[i].mem), image->segment[i].memsz);\n&/#switch_floors#ours#beyond the spread"
	"a page leaked per jump#kernel ours kernel/kexec_core.c#0,/^\tif (kexec_image->preserve_context) {$/s//&\n\t\t(void)alloc_page(GFP_KERNEL);/#jumps_keep_no_memory#ours#free memory fell by"
	"the C sequence leaves devices frozen when dpm_suspend_start() fails#kernel c kernel/kexec_core.c#/^\t\t\tdpm_resume_end(PMSG_RECOVER);$/d#failed_step_unwinds#c#never undone"
	"a self-detected RCU stall#scenario tools/testing/kexec_jump/scenarios/jump.sh#s/^\tcheck_memory A$/\tcheck_memory A; echo 'rcu: INFO: rcu_preempt self-detected stall on CPU' >\/dev\/kmsg/#jump_round_trip#ours#self-detected stall"
	"an OOM kill of the guest helper#scenario tools/testing/kexec_jump/scenarios/jump.sh#s/^\tcheck_memory A$/\tcheck_memory A; for i in 1 2 3 4 5 6 7 8; do kj-guest fragment --mib 200 >\/dev\/null 2>\&1 \& done; sleep 5/#jump_round_trip#ours#invoked oom-killer"
)

restore=()
cleanup() {
	local f
	for f in "${restore[@]}"; do
		[ -f "$f.kj-orig" ] && mv -f "$f.kj-orig" "$f"
	done
	git -C "$KJ_ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# run_test BINARY KERNEL TEST WANT [ENV...]: the test must fail with WANT.
run_test() {
	local bin=$1 kernel=$2 test=$3 want=$4 log
	shift 4
	log=$MUT/$test-$kernel.log
	if env "$@" KJ_ROOT="$KJ_ROOT" "$bin" run --kernel "$kernel" --only "$test" >"$log" 2>&1; then
		echo "not ok - $test on $kernel still passes (log: $log)"
		return 1
	fi
	if ! grep -qF -- "$want" "$log"; then
		echo "not ok - $test on $kernel failed, but not with \"$want\" (log: $log)"
		return 1
	fi
	echo "ok - $test on $kernel fails: $(grep -F -- "$want" "$log" | head -n1 | cut -c1-150)"
}

mkdir -p "$MUT"
failed=0
for m in "${mutations[@]}"; do
	IFS='#' read -r name where script test kernel want <<<"$m"
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qxF "$name"; then
		continue
	fi
	echo "# mutation: $name"
	case $where in
	kernel\ *)
		read -r _ tree file <<<"$where"
		f=$SRC/$file
		cp -p "$f" "$f.kj-orig"
		restore+=("$f")
		# A new file, not a write through the hard link into base/.
		sed "$script" "$f.kj-orig" >"$f.new" && mv -f "$f.new" "$f"
		cmp -s "$f" "$f.kj-orig" && die "mutation '$name' changed nothing in $file"
		rm -rf "${MUT:?}/$tree"
		cp -a "$KJ_BUILD/out/$tree" "$MUT/$tree"
		# As scripts/build-kernel.sh builds it: ours' Rust through clippy.
		lint=()
		[ "$tree" = ours ] && lint=(CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver)
		make -s -C "$SRC" O="$MUT/$tree" "${KJ_MAKE_ARGS[@]}" "${lint[@]}" -j"$KJ_JOBS" bzImage \
			>"$MUT/build-$tree.log" 2>&1 || die "the mutant $tree kernel does not build ($MUT/build-$tree.log)"
		mv -f "$f.kj-orig" "$f"
		run_test "$KJ_ROOT/target/release/kjtest" "$kernel" "$test" "$want" KJ_KERNEL_OUT="$MUT" ||
			failed=1
		;;
	scenario\ *)
		file=${where#scenario }
		git -C "$KJ_ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || true
		git -C "$KJ_ROOT" worktree add --detach "$WT" HEAD >/dev/null 2>&1 ||
			die "cannot make a worktree in $WT"
		sed -i "$script" "$WT/$file"
		git -C "$WT" diff --quiet && die "mutation '$name' changed nothing in $file"
		CARGO_TARGET_DIR=$MUT/target cargo build --release --quiet \
			--manifest-path "$WT/Cargo.toml" -p kjtest || die "the mutant kjtest does not build"
		run_test "$MUT/target/release/kjtest" "$kernel" "$test" "$want" || failed=1
		;;
	esac
done
[ $failed -eq 0 ] || die "a mutation was not caught"
echo "check-test-mutations: every mutation fails its test with its reason"
