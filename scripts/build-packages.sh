#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the Debian packages of this repository, from a staged tree with
# dpkg-deb:
#   kjump - the static kjump in /usr/sbin; kjump(8) and a page per
#           subcommand, made from kjump's CLI definition by kjump-mangen;
#           bash, zsh and fish completions (clap_complete); the
#           initramfs-tools hook and local-premount script.
# Result: build/packages/kjump_VERSION_amd64.deb; prints its path.
set -euo pipefail
. "$(dirname "$0")/kjenv.sh"
cd "$KJ_ROOT"

TARGET=x86_64-unknown-linux-gnu
OUT=$KJ_BUILD/packages

command -v cargo >/dev/null || die "cargo not found"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (Debian's dpkg package)"
command -v gzip >/dev/null || die "gzip not found"

# The binary the package ships is the static one the initramfs needs.
RUSTFLAGS="-C target-feature=+crt-static" \
	cargo build --release --quiet -p kjump --target $TARGET ||
	die "building the static kjump failed"
cargo build --release --quiet -p kjump-mangen || die "building kjump-mangen failed"
file -b target/$TARGET/release/kjump 2>/dev/null | grep -q 'static' ||
	ldd target/$TARGET/release/kjump 2>&1 | grep -q 'not a dynamic executable' ||
	die "target/$TARGET/release/kjump is not statically linked"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' tools/kjump/Cargo.toml | head -n1)
[ -n "$version" ] || die "no version in tools/kjump/Cargo.toml"
stage=$OUT/kjump.stage
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$OUT"

install -D -m 0755 target/$TARGET/release/kjump "$stage/usr/sbin/kjump"

gen=$OUT/kjump.gen
rm -rf "$gen"
target/release/kjump-mangen "$gen" || die "kjump-mangen failed"
[ -s "$gen/kjump.8" ] || die "kjump-mangen wrote no kjump.8"
mkdir -p "$stage/usr/share/man/man8"
for page in "$gen"/*.8; do
	gzip -9n <"$page" >"$stage/usr/share/man/man8/$(basename "$page").gz"
done
install -D -m 0644 "$gen/kjump.bash" "$stage/usr/share/bash-completion/completions/kjump"
install -D -m 0644 "$gen/_kjump" "$stage/usr/share/zsh/vendor-completions/_kjump"
install -D -m 0644 "$gen/kjump.fish" "$stage/usr/share/fish/vendor_completions.d/kjump.fish"

it=tools/kjump/initramfs-tools
install -D -m 0755 $it/hooks/kjump "$stage/usr/share/initramfs-tools/hooks/kjump"
install -D -m 0755 $it/scripts/local-premount/kjump \
	"$stage/usr/share/initramfs-tools/scripts/local-premount/kjump"

mkdir -p "$stage/usr/share/doc/kjump"
cat >"$stage/usr/share/doc/kjump/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: kjump

Files: *
License: GPL-2.0
 On Debian systems, the full text of the GNU General Public License
 version 2 can be found in /usr/share/common-licenses/GPL-2.
COPYRIGHT

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: kjump
Version: $version
Architecture: amd64
Maintainer: kexec jump series <kexec-jump@localhost>
Section: admin
Priority: optional
Installed-Size: $size
Suggests: initramfs-tools
Description: jump to another kernel and back (kexec jump)
 kjump loads a second kernel into the memory reserved with crashkernel=,
 jumps to it and back, calls physical-mode programs, and hibernates the
 running kernel through the second one without swap or ACPI. The
 initramfs-tools hook resumes a hibernated kernel before the root
 filesystem is mounted (kjump.resume= on the kernel command line).
CONTROL
# Existing initramfs images get the hook: what dh_installinitramfs adds.
echo "activate-noawait update-initramfs" >"$stage/DEBIAN/triggers"
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"

# The same files make the same package (the root filesystem image is
# cached by its hash): every time stamp is the last commit's.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb=$OUT/kjump_${version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null ||
	die "dpkg-deb failed"
dpkg-deb --info "$deb" >/dev/null || die "$deb is not a valid package"
echo "$deb"
