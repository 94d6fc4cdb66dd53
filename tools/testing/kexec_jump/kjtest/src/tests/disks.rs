// SPDX-License-Identifier: GPL-2.0

//! The guests' disks, made on the host in the test's scratch directory,
//! and the host tools that make and check them.

use super::verdict::Failure;
use crate::Ctx;
use std::{fs, path::PathBuf, process::Command};

/// A sparse raw disk `name` of `mib` MiB.
pub(super) fn raw_disk(ctx: &Ctx, name: &str, mib: u64) -> Result<PathBuf, Failure> {
    let path = ctx.scratch.join(name);
    fs::File::create(&path)
        .and_then(|f| f.set_len(mib << 20))
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// A fresh ext2 disk of `mib` MiB (sparse).
pub(super) fn ext2_disk(ctx: &Ctx, mib: u64) -> Result<PathBuf, Failure> {
    let path = raw_disk(ctx, "data.img", mib)?;
    host(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext2"])
            .arg(&path),
    )?;
    Ok(path)
}

/// Runs a host tool; its output, or why it failed.
pub(super) fn host(cmd: &mut Command) -> Result<String, Failure> {
    let what = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| Failure::new(format!("{what}: {e}: run scripts/setup-toolchain.sh")))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(Failure::new(format!("{what} failed: {}", text.trim())));
    }
    Ok(text)
}
