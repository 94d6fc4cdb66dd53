# SPDX-License-Identifier: GPL-2.0
# Shared settings for the series scripts; sourced, not run.

KJ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KJ_BUILD=${KJ_BUILD:-$KJ_ROOT/build}
KJ_TARBALL=${KJ_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
KJ_JOBS=${KJ_JOBS:-$(($(nproc) + 1))}

# The kernel's Rust must be built by Debian's rustc (it has the core
# sources), not the rustup one first on PATH; see the toolchain notes.
KJ_MAKE_ARGS=(
	LLVM=-19
	RUSTC=/usr/bin/rustc
	HOSTRUSTC=/usr/bin/rustc
	RUSTDOC=/usr/bin/rustdoc
	BINDGEN="$HOME/.cargo/bin/bindgen"
)
export LIBCLANG_PATH=/usr/lib/llvm-19/lib

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
