#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what building and testing the kexec jump series needs on a Debian
# bookworm machine. Idempotent: packages and tools already present are kept.
set -euo pipefail

BINDGEN_VERSION=0.73.2

die() { echo "setup-toolchain: $*" >&2; exit 1; }

PKGS=(
	linux-source-6.12 rustc-web rust-web-src rust-web-clippy
	clang-19 lld-19 llvm-19 libclang-19-dev
	qemu-system-x86 kexec-tools busybox-static makedumpfile
	flex bison bc libelf-dev libssl-dev cpio xz-utils make gcc
	e2fsprogs binutils patch perl python3 git
	mmdebstrap
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
	echo "setup-toolchain: installing ${missing[*]}"
	apt-get update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null || die "apt-get install failed: ${missing[*]}"
fi

[ -f /usr/src/linux-source-6.12.tar.xz ] ||
	die "base tarball /usr/src/linux-source-6.12.tar.xz missing after install"

bindgen="$HOME/.cargo/bin/bindgen"
if ! "$bindgen" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
	command -v cargo >/dev/null || die "cargo not found (needed for bindgen-cli)"
	echo "setup-toolchain: installing bindgen-cli $BINDGEN_VERSION"
	cargo install --quiet --locked --version "$BINDGEN_VERSION" bindgen-cli ||
		die "cargo install bindgen-cli $BINDGEN_VERSION failed"
fi

echo "setup-toolchain: ok"
