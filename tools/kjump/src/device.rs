// SPDX-License-Identifier: GPL-2.0

//! A resume device that is kjump's. `kjump format` writes a signature
//! (magic, version, UUID) into the device's last 4 KiB block, outside the
//! area an image uses, once it has checked that nothing else lives there:
//! not mounted, not an active swap area, held by nothing (LVM, MD, dm),
//! not a whole disk with partitions, and no other signature at the places
//! blkid looks first (`--force` overrides only that last check). Then
//! `kjump hibernate` writes only to a device that carries the signature,
//! opened with O_EXCL, and a device can be named `UUID=` by it (or
//! `PARTUUID=` by its partition table).

use crate::image::PAGE;
use anyhow::{bail, Context, Result};
use std::{
    fs::{self, File, OpenOptions},
    os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt},
};

/// The signature block's first bytes.
const MAGIC: &[u8; 8] = b"KJDEVICE";
const VERSION: u32 = 1;

/// A device's kjump signature.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Signature {
    pub uuid: [u8; 16],
}

impl Signature {
    fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; PAGE as usize];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[16..32].copy_from_slice(&self.uuid);
        let sum = crate::image::sum(&b[..64]);
        b[64..72].copy_from_slice(&sum.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let sum = u64::from_le_bytes(b.get(64..72)?.try_into().ok()?);
        (b.get(..8)? == MAGIC && crate::image::sum(&b[..64]) == sum).then(|| Signature {
            uuid: b[16..32].try_into().expect("16 bytes"),
        })
    }

    /// The UUID in its usual form, 8-4-4-4-12 hex digits.
    pub fn uuid_string(&self) -> String {
        let h = crate::hibernate::hex(&self.uuid);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

/// A UUID from its usual form (dashes optional).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(u)
}

/// A block device's size in bytes.
fn size_of(f: &File) -> Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = f;
    Ok(f.seek(SeekFrom::End(0))?)
}

/// The signature on `dev`, if it has one (read-only).
pub fn signature(dev: &str) -> Result<Option<Signature>> {
    let f = File::open(dev).with_context(|| dev.to_string())?;
    let len = size_of(&f)?;
    if len < 2 * PAGE {
        return Ok(None);
    }
    let mut b = vec![0u8; PAGE as usize];
    f.read_exact_at(&mut b, len - PAGE)
        .with_context(|| format!("reading {dev}'s last block"))?;
    Ok(Signature::decode(&b))
}

/// Where an image on a device of `dev_len` bytes must end: before the
/// signature block.
pub fn image_limit(dev_len: u64) -> u64 {
    dev_len.saturating_sub(PAGE)
}

/// `dev`'s device number, checked to be a block device.
fn rdev(dev: &str) -> Result<u64> {
    let m = fs::metadata(dev).with_context(|| dev.to_string())?;
    if !m.file_type().is_block_device() {
        bail!("{dev} is not a block device");
    }
    Ok(m.rdev())
}

/// "major:minor" of a device number.
fn majmin(rdev: u64) -> String {
    format!("{}:{}", libc::major(rdev), libc::minor(rdev))
}

/// Why `dev` is in use, if it is: each reason one line. None of these can
/// be overridden: writing the device would destroy live data.
fn in_use(dev: &str) -> Result<Vec<String>> {
    let rdev = rdev(dev)?;
    let mm = majmin(rdev);
    let mut why = Vec::new();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for l in mountinfo.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(2) == Some(&mm.as_str()) {
            why.push(format!("{dev} is mounted on {}", f.get(4).unwrap_or(&"?")));
        }
    }
    let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
    for l in swaps.lines().skip(1) {
        let name = l.split_whitespace().next().unwrap_or("");
        if fs::metadata(name).is_ok_and(|m| m.rdev() == rdev) {
            why.push(format!("{dev} is an active swap area"));
        }
    }
    let sys = format!("/sys/dev/block/{mm}");
    let holders: Vec<String> = fs::read_dir(format!("{sys}/holders"))
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_string()))
                .collect()
        })
        .unwrap_or_default();
    if !holders.is_empty() {
        why.push(format!(
            "{dev} is held by {} (LVM, MD or dm)",
            holders.join(", ")
        ));
    }
    let parts: Vec<String> = fs::read_dir(&sys)
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                e.path()
                    .join("partition")
                    .exists()
                    .then(|| e.file_name().to_string_lossy().into_owned())
            })
            .collect()
        })
        .unwrap_or_default();
    if !parts.is_empty() {
        why.push(format!(
            "{dev} is a whole disk with partitions ({}): name a partition",
            parts.join(", ")
        ));
    }
    Ok(why)
}

/// The signature of something else at one of the places blkid probes
/// first, if there is one: (what, offset, bytes).
const FOREIGN: &[(&str, usize, &[u8])] = &[
    ("an ext2/3/4 filesystem", 1080, &[0x53, 0xef]),
    ("a swap area", 4086, b"SWAPSPACE2"),
    ("a swap area", 4086, b"SWAP-SPACE"),
    ("a LUKS volume", 0, b"LUKS\xba\xbe"),
    ("an LVM physical volume", 512, b"LABELONE"),
    ("an XFS filesystem", 0, b"XFSB"),
    ("a btrfs filesystem", 0x10040, b"_BHRfS_M"),
    ("an MD RAID member", 0, &[0xfc, 0x4e, 0x2b, 0xa9]),
    ("an MD RAID member", 4096, &[0xfc, 0x4e, 0x2b, 0xa9]),
    ("a GPT partition table", 512, b"EFI PART"),
    ("an NTFS filesystem", 3, b"NTFS    "),
    ("a squashfs filesystem", 0, b"hsqs"),
    ("an ISO 9660 filesystem", 0x8001, b"CD001"),
    ("a boot sector or MBR partition table", 510, &[0x55, 0xaa]),
];

fn foreign(head: &[u8]) -> Option<&'static str> {
    FOREIGN
        .iter()
        .find(|(_, at, magic)| head.get(*at..*at + magic.len()) == Some(*magic))
        .map(|(what, _, _)| *what)
}

/// Opens `dev` for writing with O_EXCL: the kernel refuses it while the
/// device is mounted or held. With O_DIRECT where the device allows.
pub fn open_exclusive(dev: &str) -> std::io::Result<File> {
    let open = |flags| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_EXCL | flags)
            .open(dev)
    };
    open(libc::O_DIRECT).or_else(|_| open(0))
}

/// `kjump format`: makes `dev` kjump's. Returns what it did, in one line.
pub fn format(dev: &str, force: bool, uuid: Option<[u8; 16]>) -> Result<String> {
    let why = in_use(dev)?;
    if !why.is_empty() {
        bail!("{}: not formatted", why.join("; "));
    }
    let f = open_exclusive(dev).with_context(|| format!("{dev} (opened exclusively)"))?;
    let len = size_of(&f)?;
    if len < 16 << 20 {
        bail!("{dev} has {} KiB: too small for any image", len >> 10);
    }
    let mut head = crate::aligned::AlignedBuf::new(0x11000);
    f.read_exact_at(head.bytes_mut(), 0)
        .with_context(|| format!("reading {dev}"))?;
    let mut note = String::new();
    if let Some(what) = foreign(head.bytes()) {
        if !force {
            bail!("{dev} carries {what}: not formatted (kjump format --force overwrites it)");
        }
        note = format!(", over {what} (--force)");
    }
    let sig = Signature {
        uuid: uuid.unwrap_or_else(|| {
            let mut u = [0u8; 16];
            u[..8].copy_from_slice(&crate::hibernate::random_u64().to_le_bytes());
            u[8..].copy_from_slice(&crate::hibernate::random_u64().to_le_bytes());
            u
        }),
    };
    let mut block = crate::aligned::AlignedBuf::new(PAGE as usize);
    block.bytes_mut().copy_from_slice(&sig.encode());
    f.write_all_at(block.bytes(), len - PAGE)
        .with_context(|| format!("writing {dev}'s signature"))?;
    // No image is valid on a device formatted after it was written.
    block.bytes_mut().fill(0);
    f.write_all_at(block.bytes(), 0)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {dev}"))?;
    Ok(format!(
        "{dev} is kjump's now: UUID={}, {} MiB for images{note}",
        sig.uuid_string(),
        image_limit(len) >> 20
    ))
}

/// The device a name means: `/dev/...` as it is, `UUID=` the block device
/// whose kjump signature has that UUID, `PARTUUID=` the partition with
/// that GPT unique GUID or MBR signature and number.
pub fn resolve(name: &str) -> Result<String> {
    if let Some(p) = name.strip_prefix("PARTUUID=") {
        return crate::partuuid::find(p).with_context(|| format!("no partition has {name}"));
    }
    let Some(u) = name.strip_prefix("UUID=") else {
        return Ok(name.to_string());
    };
    let want = parse_uuid(u).with_context(|| format!("{name}: not a UUID"))?;
    let names: Vec<String> = fs::read_dir("/sys/class/block")
        .map(|d| {
            d.filter_map(|e| Some(format!("/dev/{}", e.ok()?.file_name().to_str()?)))
                .collect()
        })
        .unwrap_or_default();
    names
        .into_iter()
        .find(|d| signature(d).ok().flatten().is_some_and(|s| s.uuid == want))
        .with_context(|| format!("no block device has the kjump signature {name}"))
}

/// For `kjump hibernate`: `dev` is kjump's, and nothing uses it.
pub fn check_for_image(dev: &str) -> Result<()> {
    let why = in_use(dev)?;
    if !why.is_empty() {
        bail!("{}", why.join("; "));
    }
    if signature(dev)?.is_none() {
        bail!("{dev} has no kjump signature: make it kjump's first (kjump format {dev}; its contents are lost)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip_and_foreign_ones_are_seen() {
        let s = Signature { uuid: [7; 16] };
        assert_eq!(Signature::decode(&s.encode()), Some(s));
        let mut b = s.encode();
        b[20] ^= 1;
        assert_eq!(Signature::decode(&b), None);
        assert_eq!(s.uuid_string(), "07070707-0707-0707-0707-070707070707");
        assert_eq!(parse_uuid(&s.uuid_string()), Some([7; 16]));
        assert_eq!(parse_uuid("07"), None);
        let mut head = vec![0u8; 0x11000];
        assert_eq!(foreign(&head), None);
        head[1080..1082].copy_from_slice(&[0x53, 0xef]);
        assert_eq!(foreign(&head), Some("an ext2/3/4 filesystem"));
    }
}
