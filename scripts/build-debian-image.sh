#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# A Debian bookworm root filesystem built from Debian's packages with
# mmdebstrap, for the end-to-end tests on a real system: systemd as
# PID 1 (systemd-sysv), udev, D-Bus (logind needs it), kmod,
# initramfs-tools and e2fsprogs, then the kjump package
# (scripts/build-packages.sh) installed with dpkg, made into an ext4
# image with mkfs.ext4 -d. Root on /dev/vda, no initramfs needed (the
# test kernel has ext4 and virtio-blk built in).
#
# Cached under build/debian/: the package tree by a hash of this
# script's recipe (suite, mirror, packages), the image by that and the
# kjump package's hash; a second run with the same inputs only prints
# the image's path. Needs root (mmdebstrap's root mode, chroot).
#
# Usage: scripts/build-debian-image.sh [KJUMP_DEB]
# Result: build/debian/root-KEY.ext4 (its path on stdout); the test
#         boots a copy of it, never the image itself.
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"
cd "$KJ_ROOT"

SUITE=bookworm
MIRROR=${KJ_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=systemd,systemd-sysv,udev,dbus,kmod,initramfs-tools,e2fsprogs,mawk
IMAGE_MIB=1024
OUT=$KJ_BUILD/debian

[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap's root mode, chroot)"
for tool in mmdebstrap mkfs.ext4 chroot sha256sum; do
	command -v $tool >/dev/null || die "$tool not found (run scripts/setup-toolchain.sh)"
done

deb=${1:-}
if [ -z "$deb" ]; then
	deb=$("$KJ_ROOT/scripts/build-packages.sh" | tail -n1) || die "building the kjump package failed"
fi
[ -f "$deb" ] || die "kjump package $deb not found"

# The recipe: what decides the package tree's contents.
recipe() {
	printf '%s\n' "$SUITE" "$MIRROR" "$PACKAGES" "$IMAGE_MIB"
	sed -n '/^[[:space:]]*# recipe-begin/,/^[[:space:]]*# recipe-end/p' "$0"
}
base_key=$(recipe | sha256sum | cut -c1-16)
key=$( (echo "$base_key" && sha256sum <"$deb") | sha256sum | cut -c1-16)
image=$OUT/root-$key.ext4
if [ -f "$image" ]; then
	echo "$image"
	exit 0
fi
mkdir -p "$OUT"

base=$OUT/base-$base_key
if [ ! -f "$base/.kj-done" ]; then
	start=$SECONDS
	echo "build-debian-image: mmdebstrap $SUITE ($PACKAGES)" >&2
	rm -rf "$base" "$base.tmp"
	mkdir -p "$base.tmp"
	# recipe-begin
	# A fixed machine ID: no first-boot setup (systemd-firstboot would ask
	# for a locale on the console). Root on /dev/vda, mounted rw by the
	# kernel: no fsck at boot.
	mmdebstrap --quiet --variant=essential --mode=root \
		--aptopt='APT::Install-Recommends "false"' \
		--include="$PACKAGES" \
		--customize-hook='echo kjdebian >"$1/etc/hostname"' \
		--customize-hook='echo "/dev/vda / ext4 rw,errors=remount-ro 0 0" >"$1/etc/fstab"' \
		"$SUITE" "$base.tmp" "$MIRROR" >&2 ||
		die "mmdebstrap failed"
	# After mmdebstrap, which empties it for reproducibility.
	echo 4b4a6465626961e6b2f4c1a5e3d7f901 >"$base.tmp/etc/machine-id"
	# recipe-end
	touch "$base.tmp/.kj-done"
	mv "$base.tmp" "$base"
	echo "build-debian-image: package tree in $((SECONDS - start)) s" >&2
fi

start=$SECONDS
tree=$OUT/tree-$key
rm -rf "$tree" "$image.tmp"
cp -a "$base" "$tree"
rm -f "$tree/.kj-done"
cp "$deb" "$tree/tmp/kjump.deb"
chroot "$tree" dpkg -i /tmp/kjump.deb >&2 || die "dpkg -i $(basename "$deb") in the image failed"
rm "$tree/tmp/kjump.deb"
chroot "$tree" kjump --version >&2 || die "the installed kjump does not run"
truncate -s ${IMAGE_MIB}M "$image.tmp"
mkfs.ext4 -q -F -L kjroot -d "$tree" "$image.tmp" || die "mkfs.ext4 -d failed"
rm -rf "$tree"
mv "$image.tmp" "$image"
# Trees and images of other inputs go.
find "$OUT" -maxdepth 1 -name 'root-*.ext4' ! -name "root-$key.ext4" -delete
find "$OUT" -maxdepth 1 -name 'base-*' ! -name "base-$base_key" -exec rm -rf {} +
echo "build-debian-image: image in $((SECONDS - start)) s" >&2
echo "$image"
