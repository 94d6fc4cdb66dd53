// SPDX-License-Identifier: GPL-2.0

//! The hibernation image on the resume device: what `kjump hibernate`
//! writes in B and `kjump resume` reads in C (documented in
//! Documentation/admin-guide/kexec-jump.rst, "Hibernation image").
//!
//! ```text
//! | header (4 KiB) | chunk | chunk | ... | page map | chunk index |
//! ```
//!
//! The header is written last, after a flush of everything else, and
//! flushed itself: until then block 0 holds no valid header, so a write
//! cut short leaves nothing to resume. All numbers are little-endian.
//! Checksums are XXH3-64.

use crate::filesystems::{self, Guarded};
use anyhow::{bail, Result};
use xxhash_rust::xxh3::xxh3_64;

pub const PAGE: u64 = 4096;
/// Block 0 of a complete image.
pub const MAGIC: &[u8; 8] = b"KJHIBIMG";
/// Block 0 of an image that was resumed (so it never is again).
pub const MAGIC_RESUMED: &[u8; 8] = b"KJRESUMD";
/// Block 0 of an image that was found but not resumed: `kjump resume`
/// writes it, with the reason at [`INVALID_REASON`], before the boot goes
/// on, so that no later boot resumes A over filesystems this boot changed.
pub const MAGIC_INVALID: &[u8; 8] = b"KJINVALD";
/// Where an invalidated image's block 0 holds the reason (NUL-padded);
/// the header fields before it are left for inspection.
pub const INVALID_REASON: usize = 512;
/// Block 0 while a hibernation is under way: A marks the device with this
/// and the run's nonce, and B writes only to the disk that carries them.
pub const MAGIC_CLAIM: &[u8; 8] = b"KJCLAIM1";
/// 2: the header records the machine ([`Header::machine`]); 3: and A's
/// filesystems ([`Header::filesystems`]).
pub const VERSION: u32 = 3;
/// Bytes of page data a chunk holds before compression.
pub const CHUNK_RAW: usize = 4 << 20;
/// The most bytes a chunk holds decompressed: its page data may pass
/// CHUNK_RAW by the page that crossed it, and each page may open a run
/// (a 16-byte run header).
pub const CHUNK_RAW_MAX: usize = CHUNK_RAW + PAGE as usize + 16 * (CHUNK_RAW / PAGE as usize + 1);
/// The most ranges a ranges image may declare (KEXEC_RANGES).
pub const MAX_RANGES: u64 = 1 << 18;
/// Page frames beyond x86_64's 52-bit physical address space: no page
/// map entry reaches them, so a page frame times PAGE never overflows.
pub const MAX_PFN: u64 = 1 << (52 - 12);
/// Bytes of the header covered by its checksum (which follows them).
pub const HEADER_SUMMED: usize = 448;
/// Where the header lists A's guarded filesystems: a count, then 24 bytes
/// each (UUID, generation).
const FILESYSTEMS: usize = 256;

pub fn sum(bytes: &[u8]) -> u64 {
    xxh3_64(bytes)
}

/// The header, block 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    /// GNU build id of A's kernel: C resumes only into the same build.
    pub build_id: Vec<u8>,
    /// A's jump-back entry.
    pub entry: u64,
    /// Chosen by A for this hibernation: tells A, once back, that it was
    /// resumed from this very image.
    pub nonce: u64,
    /// Ranges of A's used pages: (first page frame, pages) pairs.
    pub nr_ranges: u64,
    pub map_off: u64,
    pub map_len: u64,
    pub map_sum: u64,
    /// Chunks and their index: (offset, compressed, raw bytes, checksum).
    pub nr_chunks: u64,
    pub index_off: u64,
    pub index_len: u64,
    pub index_sum: u64,
    /// Bytes of the device the image uses.
    pub image_end: u64,
    /// A's used pages (all restored), of which data pages are stored
    /// (the others are zero), and pages left out as free.
    pub used_pages: u64,
    pub data_pages: u64,
    pub free_pages: u64,
    /// A's machine and firmware (crate::machine::id()): C resumes only on
    /// the same.
    pub machine: u64,
    /// A's ext2/3/4 filesystems as it left them (crate::filesystems).
    pub filesystems: Vec<Guarded>,
}

impl Header {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; PAGE as usize];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(PAGE as u32).to_le_bytes());
        let id = &self.build_id[..self.build_id.len().min(40)];
        b[16..20].copy_from_slice(&(id.len() as u32).to_le_bytes());
        b[20..20 + id.len()].copy_from_slice(id);
        let words = [
            self.entry,
            self.nonce,
            self.nr_ranges,
            self.map_off,
            self.map_len,
            self.map_sum,
            self.nr_chunks,
            self.index_off,
            self.index_len,
            self.index_sum,
            self.image_end,
            self.used_pages,
            self.data_pages,
            self.free_pages,
            self.machine,
        ];
        for (i, w) in words.iter().enumerate() {
            b[64 + 8 * i..72 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        let fs = &self.filesystems[..self.filesystems.len().min(filesystems::MAX)];
        b[FILESYSTEMS..FILESYSTEMS + 4].copy_from_slice(&(fs.len() as u32).to_le_bytes());
        for (i, g) in fs.iter().enumerate() {
            let at = FILESYSTEMS + 8 + 24 * i;
            b[at..at + 16].copy_from_slice(&g.uuid);
            b[at + 16..at + 24].copy_from_slice(&g.state.to_le_bytes());
        }
        let s = sum(&b[..HEADER_SUMMED]);
        b[HEADER_SUMMED..HEADER_SUMMED + 8].copy_from_slice(&s.to_le_bytes());
        b
    }

    /// Decodes block 0, or says in a few words why it holds no image.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() < PAGE as usize {
            bail!("the device is shorter than one block");
        }
        if &b[..8] == MAGIC_RESUMED {
            bail!("the image there was already resumed");
        }
        if &b[..8] == MAGIC_INVALID {
            bail!("the image there was invalidated: {}", invalid_reason(b));
        }
        if &b[..8] != MAGIC {
            bail!("no hibernation image there");
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        if u64_at(HEADER_SUMMED) != sum(&b[..HEADER_SUMMED]) {
            bail!("the image header is corrupt (checksum)");
        }
        if u32_at(8) != VERSION || u64::from(u32_at(12)) != PAGE {
            bail!(
                "image version {} with {}-byte pages is not this kjump's",
                u32_at(8),
                u32_at(12)
            );
        }
        let id_len = (u32_at(16) as usize).min(40);
        let w = |i: usize| u64_at(64 + 8 * i);
        let nr_fs = u32_at(FILESYSTEMS) as usize;
        if nr_fs > filesystems::MAX {
            bail!("the image header lists {nr_fs} filesystems");
        }
        let filesystems = (0..nr_fs)
            .map(|i| {
                let at = FILESYSTEMS + 8 + 24 * i;
                Guarded {
                    uuid: b[at..at + 16].try_into().unwrap(),
                    state: u64_at(at + 16),
                }
            })
            .collect();
        Ok(Header {
            build_id: b[20..20 + id_len].to_vec(),
            entry: w(0),
            nonce: w(1),
            nr_ranges: w(2),
            map_off: w(3),
            map_len: w(4),
            map_sum: w(5),
            nr_chunks: w(6),
            index_off: w(7),
            index_len: w(8),
            index_sum: w(9),
            image_end: w(10),
            used_pages: w(11),
            data_pages: w(12),
            free_pages: w(13),
            machine: w(14),
            filesystems,
        })
    }
}

/// Block 0 with the image invalidated for `why` (see [`MAGIC_INVALID`]).
pub fn invalidated(block0: &[u8], why: &str) -> Vec<u8> {
    let mut b = block0[..PAGE as usize].to_vec();
    b[..8].copy_from_slice(MAGIC_INVALID);
    let room = PAGE as usize - INVALID_REASON - 1;
    let why = &why.as_bytes()[..why.len().min(room)];
    b[INVALID_REASON..].fill(0);
    b[INVALID_REASON..INVALID_REASON + why.len()].copy_from_slice(why);
    b
}

/// The reason an invalidated block 0 records (printable text only).
pub fn invalid_reason(block0: &[u8]) -> String {
    let r = &block0[INVALID_REASON..PAGE as usize];
    let end = r.iter().position(|&c| c == 0).unwrap_or(r.len());
    String::from_utf8_lossy(&r[..end])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl Header {
    /// Checks every size and offset against what it means and against
    /// `dev_len`, the device's length, before anything is read or
    /// allocated from them: an image read back is untrusted input.
    pub fn check_sizes(&self, dev_len: u64) -> Result<()> {
        if self.image_end > dev_len {
            bail!(
                "the image is truncated: it needs {} bytes, the device has {dev_len}",
                self.image_end
            );
        }
        let inside = |off: u64, len: u64| {
            off >= PAGE
                && off.is_multiple_of(PAGE)
                && off.checked_add(len).is_some_and(|e| e <= self.image_end)
        };
        if !inside(self.map_off, self.map_len) || !inside(self.index_off, self.index_len) {
            bail!("the image header points outside the image");
        }
        let sized = |n: u64, each: u64, len: u64| n.checked_mul(each) == Some(len);
        if self.nr_ranges == 0
            || self.nr_ranges > MAX_RANGES
            || !sized(self.nr_ranges, 16, self.map_len)
            || !sized(self.nr_chunks, 24, self.index_len)
            || self.nr_chunks > self.image_end / PAGE
            || self.used_pages > MAX_PFN
            || self.data_pages > self.used_pages
        {
            bail!("the image header's sizes disagree with each other");
        }
        Ok(())
    }
}

/// A run of pages: first page frame and count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    pub pfn: u64,
    pub pages: u64,
}

pub fn encode_runs(runs: &[Run]) -> Vec<u8> {
    runs.iter()
        .flat_map(|r| r.pfn.to_le_bytes().into_iter().chain(r.pages.to_le_bytes()))
        .collect()
}

/// Decodes a page map: ascending, non-overlapping, non-empty runs.
pub fn decode_runs(b: &[u8]) -> Result<Vec<Run>> {
    if !b.len().is_multiple_of(16) {
        bail!("page map of {} bytes", b.len());
    }
    let runs: Vec<Run> = b
        .chunks_exact(16)
        .map(|c| Run {
            pfn: u64::from_le_bytes(c[..8].try_into().unwrap()),
            pages: u64::from_le_bytes(c[8..].try_into().unwrap()),
        })
        .collect();
    let mut end = 0;
    for r in &runs {
        if r.pages == 0 || r.pfn < end || r.pfn.checked_add(r.pages).is_none_or(|e| e > MAX_PFN) {
            bail!("page map out of order at page frame {:#x}", r.pfn);
        }
        end = r.pfn + r.pages;
    }
    Ok(runs)
}

/// One chunk in the index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Chunk {
    pub off: u64,
    pub comp_len: u32,
    pub raw_len: u32,
    pub sum: u64,
}

pub fn encode_index(chunks: &[Chunk]) -> Vec<u8> {
    let mut b = Vec::with_capacity(chunks.len() * 24);
    for c in chunks {
        b.extend_from_slice(&c.off.to_le_bytes());
        b.extend_from_slice(&c.comp_len.to_le_bytes());
        b.extend_from_slice(&c.raw_len.to_le_bytes());
        b.extend_from_slice(&c.sum.to_le_bytes());
    }
    b
}

/// Decodes a chunk index: every chunk page-aligned, not empty, no larger
/// decompressed than [`CHUNK_RAW_MAX`], and stored no larger than that
/// (a chunk that does not shrink is stored as it is).
pub fn decode_index(b: &[u8]) -> Result<Vec<Chunk>> {
    if !b.len().is_multiple_of(24) {
        bail!("chunk index of {} bytes", b.len());
    }
    let chunks: Vec<Chunk> = b
        .chunks_exact(24)
        .map(|c| Chunk {
            off: u64::from_le_bytes(c[..8].try_into().unwrap()),
            comp_len: u32::from_le_bytes(c[8..12].try_into().unwrap()),
            raw_len: u32::from_le_bytes(c[12..16].try_into().unwrap()),
            sum: u64::from_le_bytes(c[16..].try_into().unwrap()),
        })
        .collect();
    for (i, c) in chunks.iter().enumerate() {
        if !c.off.is_multiple_of(PAGE)
            || c.comp_len == 0
            || c.comp_len > c.raw_len
            || c.raw_len as usize > CHUNK_RAW_MAX
        {
            bail!("chunk {i} of the index has impossible sizes");
        }
    }
    Ok(chunks)
}

/// A chunk's content, decompressed: runs of pages, each a 16-byte run
/// header (page frame, pages) and the pages' bytes. Returns each run and
/// the offset of its bytes in `raw`.
pub fn chunk_runs(raw: &[u8]) -> Result<Vec<(Run, usize)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        if raw.len() - at < 16 {
            bail!("chunk ends inside a run header");
        }
        let run = decode_runs(&raw[at..at + 16])?[0];
        let len = run
            .pages
            .checked_mul(PAGE)
            .filter(|&l| l <= (raw.len() - at - 16) as u64);
        let Some(len) = len else {
            bail!("run at page frame {:#x} overruns its chunk", run.pfn);
        };
        out.push((run, at + 16));
        at += 16 + len as usize;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = Header {
            build_id: vec![0xab; 20],
            entry: 0x1234_5000,
            nonce: 7,
            nr_ranges: 3,
            image_end: 1 << 30,
            filesystems: vec![Guarded {
                uuid: [3; 16],
                state: 77,
            }],
            ..Default::default()
        };
        let mut b = h.encode();
        assert_eq!(Header::decode(&b).unwrap(), h);
        b[100] ^= 1;
        assert!(Header::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        b[..8].copy_from_slice(MAGIC_RESUMED);
        assert!(Header::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("already"));
        let b = invalidated(&h.encode(), "another kernel build\n");
        let e = Header::decode(&b).unwrap_err().to_string();
        assert_eq!(e, "the image there was invalidated: another kernel build?");
        assert!(Header::decode(&[0u8; 4096]).is_err());
    }

    #[test]
    fn runs_must_ascend() {
        let ok = [Run { pfn: 1, pages: 2 }, Run { pfn: 3, pages: 1 }];
        assert_eq!(decode_runs(&encode_runs(&ok)).unwrap(), ok);
        let overlap = [Run { pfn: 1, pages: 2 }, Run { pfn: 2, pages: 1 }];
        assert!(decode_runs(&encode_runs(&overlap)).is_err());
        assert!(decode_runs(&encode_runs(&[Run { pfn: 1, pages: 0 }])).is_err());
    }

    #[test]
    fn chunk_runs_are_bounded() {
        let mut raw = encode_runs(&[Run { pfn: 9, pages: 1 }]);
        raw.extend_from_slice(&[1u8; PAGE as usize]);
        assert_eq!(chunk_runs(&raw).unwrap(), [(Run { pfn: 9, pages: 1 }, 16)]);
        raw.pop();
        assert!(chunk_runs(&raw).is_err());
    }
}
