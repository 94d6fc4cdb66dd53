#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the host test harness (kjtest) and the static guest program
# (kj-guest) and kjump that the test initramfs images carry.
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"
cd "$KJ_ROOT"

command -v cargo >/dev/null || die "cargo not found"
cargo build --release --quiet -p kjtest || die "building kjtest failed"
RUSTFLAGS="-C target-feature=+crt-static" \
	cargo build --release --quiet -p kj-guest -p kjump --target x86_64-unknown-linux-gnu ||
	die "building kj-guest and kjump failed"
# A dynamically linked kjump too (target/release/kjump, what a plain cargo
# build makes): hibernate_failure_in_b_keeps_a shows that A refuses it.
cargo build --release --quiet -p kjump || die "building the dynamic kjump failed"

# The physical-mode program, linked where kj-guest physcall loads it: its
# benchmark build with 1 MiB of payload for the jump to swap, a build that
# executes int3 and leaves a re-entry point, and one that page-faults.
# The builds linked at 256 MiB live in a crashkernel=...@256M reservation
# (kjump call --resident): the checksum program, and the switch
# benchmark's with 16, 64 and 256 MiB of zeroed memory.
mkdir -p target/kj
for prog in checksum bench int3 fault checksum-256m switch-16m switch-64m switch-256m; do
	defs=()
	at=0x1000000
	case $prog in
	bench) defs=(--defsym KJ_PAYLOAD=0x100000) ;;
	int3) defs=(--defsym KJ_INT3=1) ;;
	fault) defs=(--defsym KJ_FAULT=1) ;;
	checksum-256m) at=0x10000000 ;;
	switch-*) at=0x10000000 defs=(--defsym KJ_ZEROS=$((${prog//[^0-9]/} << 20))) ;;
	esac
	as --64 -I tools/testing/kexec_jump/phys_call "${defs[@]}" -o target/kj/$prog.o tools/testing/kexec_jump/phys_call/checksum.S ||
		die "assembling the physical-mode program failed (binutils installed?)"
	ld -N -nostdlib -static --no-warn-rwx-segments -Ttext=$at -e _start \
		-o target/kj/$prog.elf target/kj/$prog.o ||
		die "linking the physical-mode program failed"
done

# The program that reads PCI command registers and GPE enables during a
# call (kj-guest platform).
as --64 -I tools/testing/kexec_jump/phys_call -o target/kj/platform.o tools/testing/kexec_jump/phys_call/platform.S ||
	die "assembling platform.S failed"
ld -N -nostdlib -static --no-warn-rwx-segments -Ttext=0x1000000 -e _start \
	-o target/kj/platform.elf target/kj/platform.o || die "linking platform.elf failed"

# The program kjump call runs in its tests: it says hello on the UART.
as --64 -o target/kj/hello.o tools/testing/kexec_jump/phys_call/hello.S ||
	die "assembling hello.S failed"
ld -N -nostdlib -static --no-warn-rwx-segments -Ttext=0x1000000 -e _start \
	-o target/kj/hello.elf target/kj/hello.o || die "linking hello.elf failed"
