// SPDX-License-Identifier: GPL-2.0

//! `PARTUUID=` device names, as the kernel's `root=PARTUUID=` reads them:
//! a GPT partition's unique GUID, or for an MBR disk its signature and the
//! partition number (`1234abcd-02`). Read from the partition tables
//! themselves, so no udev or libblkid is needed in an initramfs.

use std::{fs, os::unix::fs::FileExt};

/// The PARTUUID of partition `partno` (1-based) of a disk whose first
/// sectors are `head` (at least 2 sectors and the GPT entry array), with
/// `sector`-byte sectors. None for no table or no such partition.
pub fn of_partition(head: &[u8], sector: usize, partno: u32) -> Option<String> {
    let n = partno.checked_sub(1)? as usize;
    let gpt = head.get(sector..sector + 92)?;
    if &gpt[..8] == b"EFI PART" {
        let le32 = |o: usize| u32::from_le_bytes(gpt[o..o + 4].try_into().unwrap()) as usize;
        let le64 = |o: usize| u64::from_le_bytes(gpt[o..o + 8].try_into().unwrap());
        let (entries_lba, count, size) = (le64(72), le32(80), le32(84));
        if n >= count || size < 32 {
            return None;
        }
        let at = usize::try_from(entries_lba).ok()?.checked_mul(sector)? + n * size;
        let guid = head.get(at + 16..at + 32)?;
        if guid.iter().all(|&b| b == 0) {
            return None;
        }
        return Some(guid_string(guid.try_into().ok()?));
    }
    if head.get(510..512)? != [0x55, 0xaa] || n >= 4 {
        return None;
    }
    let sig = u32::from_le_bytes(head[440..444].try_into().unwrap());
    // An MBR entry of type 0 is unused.
    (head[446 + 16 * n + 4] != 0).then(|| format!("{sig:08x}-{partno:02x}"))
}

/// A GUID as text: its first three fields are little-endian on disk.
fn guid_string(g: &[u8; 16]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{}",
        u32::from_le_bytes(g[..4].try_into().unwrap()),
        u16::from_le_bytes(g[4..6].try_into().unwrap()),
        u16::from_le_bytes(g[6..8].try_into().unwrap()),
        g[8],
        g[9],
        g[10..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// The partition whose PARTUUID is `want` (any case), as /dev/NAME.
pub fn find(want: &str) -> Option<String> {
    let want = want.to_ascii_lowercase();
    for entry in fs::read_dir("/sys/class/block").ok()?.flatten() {
        let name = entry.file_name().into_string().ok()?;
        let sys = entry.path();
        let Some(partno) = fs::read_to_string(sys.join("partition"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
        else {
            continue;
        };
        // The partition's folder sits in its disk's.
        let disk = fs::canonicalize(&sys)
            .ok()?
            .parent()?
            .file_name()?
            .to_str()?
            .to_string();
        if partuuid(&disk, partno).is_some_and(|p| p == want) {
            return Some(format!("/dev/{name}"));
        }
    }
    None
}

/// The PARTUUID of partition `partno` of /dev/`disk`.
fn partuuid(disk: &str, partno: u32) -> Option<String> {
    let sector: usize = fs::read_to_string(format!("/sys/block/{disk}/queue/logical_block_size"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let f = fs::File::open(format!("/dev/{disk}")).ok()?;
    // The table, and GPT's 128 entries of 128 bytes from LBA 2.
    let mut head = vec![0u8; sector * 2 + 128 * 128];
    f.read_exact_at(&mut head, 0).ok()?;
    of_partition(&head, sector, partno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt_and_mbr_partuuids_are_read() {
        let mut d = vec![0u8; 512 * 2 + 128 * 128];
        d[510..512].copy_from_slice(&[0x55, 0xaa]);
        d[440..444].copy_from_slice(&0x1234_abcdu32.to_le_bytes());
        d[446 + 16 + 4] = 0x83;
        assert_eq!(of_partition(&d, 512, 2).as_deref(), Some("1234abcd-02"));
        assert_eq!(of_partition(&d, 512, 1), None);
        assert_eq!(of_partition(&d, 512, 5), None);
        d[512..520].copy_from_slice(b"EFI PART");
        d[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
        d[512 + 80..512 + 84].copy_from_slice(&128u32.to_le_bytes());
        d[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
        let guid = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
            0xc9, 0x3b,
        ];
        let at = 2 * 512 + 128 + 16;
        d[at..at + 16].copy_from_slice(&guid);
        assert_eq!(
            of_partition(&d, 512, 2).as_deref(),
            Some("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
        );
        assert_eq!(of_partition(&d, 512, 1), None);
        assert_eq!(of_partition(&d, 512, 0), None);
        assert_eq!(of_partition(&d[..600], 512, 2), None);
    }
}
