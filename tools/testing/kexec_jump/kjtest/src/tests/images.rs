// SPDX-License-Identifier: GPL-2.0

//! The tests' initramfs images: the base every test starts from, the
//! kjump scenarios', and A's image carrying kernel B.

use super::verdict::Failure;
use crate::{initramfs::Initramfs, Ctx};

/// The busybox + kexec-tools + kj-guest image every test starts from.
pub(crate) fn base_image(ctx: &Ctx) -> Result<Initramfs, Failure> {
    let guest = &ctx.guest_bin;
    Initramfs::new()
        .busybox()
        .and_then(|i| i.host_binary("/usr/sbin/kexec", "sbin/kexec"))
        .and_then(|i| i.host_file(guest, "bin/kj-guest", 0o755))
        .map(|i| {
            i.file(
                "etc/kj-prelude.sh",
                include_str!("../../../scenarios/prelude.sh").as_bytes(),
                0o644,
            )
            .file(
                "etc/kj-dump.sh",
                include_str!("../../../scenarios/dump_check.sh").as_bytes(),
                0o644,
            )
        })
        .map_err(Failure::new)
}

/// The initramfs of a kjump scenario: the base image, kjump, `script` as
/// /init and `conf` as /etc/kj.conf; with `dump`, makedumpfile too.
pub(crate) fn kjump_image(
    ctx: &Ctx,
    script: &str,
    conf: &str,
    dump: bool,
) -> Result<Initramfs, Failure> {
    let mut image = base_image(ctx)?.host_file(&ctx.kjump_bin, "bin/kjump", 0o755);
    if dump {
        image = image.and_then(|i| i.host_binary("/usr/bin/makedumpfile", "bin/makedumpfile"));
    }
    image
        .map(|i| {
            i.file("init", script.as_bytes(), 0o755)
                .file("etc/kj.conf", conf.as_bytes(), 0o644)
        })
        .map_err(Failure::new)
}

/// A's initramfs for a jump: `image` as it is, plus this kernel and
/// another copy of `image` as kernel B and its initramfs.
pub(crate) fn with_b(
    ctx: &Ctx,
    image: impl Fn() -> Result<Initramfs, Failure>,
) -> Result<Vec<u8>, Failure> {
    let b = image()?.finish();
    carrying_b(ctx, image()?, &b)
}

/// `a`'s bytes with this kernel as B (/boot/bzImage) and `b` as B's
/// initramfs (/boot/initrd).
pub(super) fn carrying_b(ctx: &Ctx, a: Initramfs, b: &[u8]) -> Result<Vec<u8>, Failure> {
    a.file("boot/initrd", b, 0o644)
        .host_file(&ctx.kernel, "boot/bzImage", 0o644)
        .map(Initramfs::finish)
        .map_err(Failure::new)
}

/// A test's /init: mounts, then `body`.
pub(crate) fn init_script(body: &str) -> Vec<u8> {
    format!(
        "#!/bin/sh\nmount -t proc proc /proc\nmount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n{body}"
    )
    .into_bytes()
}

#[cfg(test)]
mod unit {
    use std::{fs, path::Path, process::Command};

    /// Every guest script parses (`sh -n`): a syntax error would
    /// otherwise show only as a dead init in a guest.
    #[test]
    fn guest_scripts_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let hook = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../kjump/initramfs-tools/scripts/local-premount/kjump");
        let mut scripts: Vec<_> = fs::read_dir(&dir)
            .expect("scenarios/")
            .map(|e| e.expect("an entry").path())
            .collect();
        scripts.push(hook);
        assert!(scripts.len() > 5);
        for s in scripts {
            let out = Command::new("sh").arg("-n").arg(&s).output().expect("sh");
            assert!(
                out.status.success(),
                "{}: {}",
                s.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
