#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Set up everything and show one kexec jump round trip (A -> B -> A) on our
# kernel in QEMU, with the timeline of its phases.
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"
cd "$KJ_ROOT"

"$KJ_ROOT/scripts/setup-toolchain.sh"
"$KJ_ROOT/scripts/build-kernel.sh" ours
"$KJ_ROOT/scripts/build-harness.sh"
exec "$KJ_ROOT/target/release/kjtest" demo "$@"
