// SPDX-License-Identifier: GPL-2.0

//! The block filesystems A has mounted, as their disks hold them when A
//! hibernates. A boot between the hibernation and the resume that mounts
//! one read-write, or replays its journal, changes it under A; resuming A
//! over it then corrupts it (A's caches and its idea of the free blocks
//! are from before). swsusp cannot tell; kjump records each one's UUID
//! and a hash of the superblock fields such a boot changes, and the
//! resume refuses when any differs.
//!
//! ext2, ext3 and ext4 are guarded: a mount read-write raises the mount
//! count and sets the mount time; a journal replay clears ext4's
//! needs_recovery feature; the state word records clean or not. A's own
//! writes while it stays mounted touch none of them. Other filesystem
//! types are listed as unguarded.

use crate::{aligned::AlignedBuf, image::PAGE};
use anyhow::{bail, Result};
use std::{fs, os::unix::fs::FileExt};

/// The most filesystems an image records (its header has room for them).
pub const MAX: usize = 7;

/// One guarded filesystem: its UUID and its generation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Guarded {
    pub uuid: [u8; 16],
    pub state: u64,
}

impl Guarded {
    /// "UUIDHEX.STATEHEX", as A hands it to B on its command line.
    pub fn to_arg(self) -> String {
        format!("{}.{:x}", crate::hibernate::hex(&self.uuid), self.state)
    }

    pub fn from_arg(s: &str) -> Option<Self> {
        let (u, st) = s.split_once('.')?;
        Some(Guarded {
            uuid: crate::device::parse_uuid(u)?,
            state: u64::from_str_radix(st, 16).ok()?,
        })
    }
}

/// An ext2/3/4 superblock's UUID and generation, or None if `sb` (the
/// 1024 bytes at byte 1024 of the device) is none.
fn ext_generation(sb: &[u8]) -> Option<Guarded> {
    if sb.get(0x38..0x3a)? != [0x53, 0xef] {
        return None;
    }
    // s_mtime, s_mnt_count, s_state, s_feature_incompat.
    let fields = [0x2c..0x30, 0x34..0x36, 0x3a..0x3c, 0x60..0x64];
    let bytes: Vec<u8> = fields.iter().flat_map(|r| sb[r.clone()].to_vec()).collect();
    Some(Guarded {
        uuid: sb.get(0x68..0x78)?.try_into().ok()?,
        state: crate::image::sum(&bytes),
    })
}

/// The superblock area of `dev` as the disk holds it: read past the page
/// cache, where a mounted filesystem's newer superblock may wait.
fn on_disk_superblock(dev: &str) -> Option<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = |flags| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(dev)
    };
    let f = open(libc::O_DIRECT).or_else(|_| open(0)).ok()?;
    let mut b = AlignedBuf::new(PAGE as usize);
    f.read_exact_at(b.bytes_mut(), 0).ok()?;
    Some(b.bytes()[1024..2048].to_vec())
}

/// In A, after a sync: the mounted block filesystems, guarded (ext2/3/4)
/// and not (their device and type, to say so).
pub fn record() -> Result<(Vec<Guarded>, Vec<String>)> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    let (mut guarded, mut other, mut seen) = (Vec::new(), Vec::new(), Vec::new());
    for line in info.lines() {
        let (left, right) = line.split_once(" - ").unwrap_or((line, ""));
        let majmin = left.split_whitespace().nth(2).unwrap_or("");
        let mut r = right.split_whitespace();
        let (kind, source) = (r.next().unwrap_or(""), r.next().unwrap_or(""));
        let is_block = fs::metadata(format!("/sys/dev/block/{majmin}")).is_ok();
        if !is_block || seen.contains(&majmin.to_string()) {
            continue;
        }
        seen.push(majmin.to_string());
        match on_disk_superblock(source)
            .as_deref()
            .and_then(ext_generation)
        {
            Some(g) if kind.starts_with("ext") => guarded.push(g),
            _ => other.push(format!("{source} ({kind})")),
        }
    }
    if guarded.len() > MAX {
        bail!(
            "{} ext2/3/4 filesystems are mounted: an image guards at most {MAX}; unmount some first",
            guarded.len()
        );
    }
    Ok((guarded, other))
}

/// In C, before anything of A is loaded: every guarded filesystem that is
/// here must be as A left it. One that is not here is only reported (A
/// will find it missing; nothing can have been changed under it here).
pub fn check(guarded: &[Guarded]) -> Result<()> {
    let names: Vec<String> = fs::read_dir("/sys/class/block")
        .map(|d| {
            d.filter_map(|e| Some(format!("/dev/{}", e.ok()?.file_name().to_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let here: Vec<(String, Guarded)> = names
        .into_iter()
        .filter_map(|d| {
            let g = ext_generation(&on_disk_superblock(&d)?)?;
            Some((d, g))
        })
        .collect();
    for g in guarded {
        let uuid = crate::device::Signature { uuid: g.uuid }.uuid_string();
        match here.iter().find(|(_, h)| h.uuid == g.uuid) {
            Some((dev, h)) if h.state != g.state => bail!(
                "A's filesystem {uuid} on {dev} was changed since A hibernated (mounted read-write, or its journal replayed, by another boot): resuming A over it would corrupt it"
            ),
            Some(_) => {}
            None => println!("kjump: A's filesystem {uuid} is not here: A will find it missing"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_generations_see_mounts_and_ignore_writes() {
        let mut sb = vec![0u8; 1024];
        assert_eq!(ext_generation(&sb), None);
        sb[0x38..0x3a].copy_from_slice(&[0x53, 0xef]);
        sb[0x68..0x78].copy_from_slice(&[9; 16]);
        let g = ext_generation(&sb).unwrap();
        assert_eq!(Guarded::from_arg(&g.to_arg()), Some(g));
        // A write: s_wtime and the free counts move, the generation not.
        sb[0x30] ^= 1;
        sb[0x0c] ^= 1;
        assert_eq!(ext_generation(&sb), Some(g));
        // A mount: the mount count.
        sb[0x34] += 1;
        assert_ne!(ext_generation(&sb).unwrap().state, g.state);
    }
}
