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
//! Checksums are XXH3-64: they catch damage. A sealed image (crate::seal)
//! also has every chunk encrypted and authenticated, and a tag over the
//! header, page map and chunk index: they catch tampering.

use crate::filesystems::{self, Guarded};
use crate::seal::{Seal, TAG, WRAPPED};
use anyhow::{bail, Result};
use std::mem::{offset_of, size_of};
use xxhash_rust::xxh3::xxh3_64;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

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
/// filesystems ([`Header::filesystems`]); 4: and how the image is sealed
/// ([`Header::seal`]).
pub const VERSION: u32 = 4;
/// [`RawHeader::key`] of an image in clear (`kjump hibernate --key none`).
pub const KEY_NONE: u32 = 0;
/// [`RawHeader::key`] of an image sealed under a key wrapped by a
/// passphrase.
pub const KEY_PASSPHRASE: u32 = 1;
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
pub const HEADER_SUMMED: usize = offset_of!(RawHeader, sum);

/// Block 0 as it lies on the device: the one definition of the header's
/// layout. [`Header`] is its checked, decoded form.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawHeader {
    pub magic: [u8; 8],
    pub version: U32,
    pub page_size: U32,
    pub build_id_len: U32,
    pub build_id: [u8; 40],
    _pad0: [u8; 4],
    pub entry: U64,
    pub nonce: U64,
    pub nr_ranges: U64,
    pub map_off: U64,
    pub map_len: U64,
    pub map_sum: U64,
    pub nr_chunks: U64,
    pub index_off: U64,
    pub index_len: U64,
    pub index_sum: U64,
    pub image_end: U64,
    pub used_pages: U64,
    pub data_pages: U64,
    pub free_pages: U64,
    pub machine: U64,
    /// [`KEY_NONE`] or [`KEY_PASSPHRASE`].
    pub key: U32,
    _pad1: [u8; 68],
    pub nr_filesystems: U32,
    _pad2: [u8; 4],
    pub filesystems: [RawGuarded; filesystems::MAX],
    _pad3: [u8; 16],
    /// XXH3-64 of the bytes before it.
    pub sum: U64,
    _pad4: [u8; 56],
    /// An invalidated image's reason, NUL-padded (see [`MAGIC_INVALID`]).
    pub reason: [u8; SEAL_AT - INVALID_REASON],
    /// A sealed image's key handling: zeros in an image in clear, and once
    /// an image is resumed.
    pub seal: RawSeal,
}

/// Where block 0 holds [`RawSeal`]: its last 128 bytes.
pub const SEAL_AT: usize = PAGE as usize - size_of::<RawSeal>();

/// A sealed image's key handling in the header (see [`Seal`]).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawSeal {
    pub argon_m_kib: U32,
    pub argon_t: U32,
    pub argon_p: U32,
    _pad0: [u8; 4],
    pub salt: [u8; 16],
    pub nonce_prefix: [u8; 16],
    pub wrapped_key: [u8; WRAPPED],
    /// The tag over [`tagged_header`], the page map and the chunk index.
    pub tag: [u8; TAG],
    _pad1: [u8; 16],
}

/// A guarded filesystem in the header: UUID and write generation.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawGuarded {
    pub uuid: [u8; 16],
    pub state: U64,
}

const _: () = assert!(size_of::<RawHeader>() == PAGE as usize);
const _: () = assert!(offset_of!(RawHeader, nonce) == 72);
const _: () = assert!(offset_of!(RawHeader, nr_filesystems) == 256);
const _: () = assert!(offset_of!(RawHeader, sum) == 448);
const _: () = assert!(offset_of!(RawHeader, reason) == INVALID_REASON);
const _: () = assert!(offset_of!(RawHeader, seal) == SEAL_AT);
const _: () = assert!(size_of::<RawSeal>() == 128);

impl RawHeader {
    /// Block 0 seen as a header, whatever its magic; None if shorter.
    pub fn view(block0: &[u8]) -> Option<&RawHeader> {
        RawHeader::ref_from_prefix(block0).ok().map(|(h, _)| h)
    }

    fn view_mut(block0: &mut [u8]) -> &mut RawHeader {
        RawHeader::mut_from_prefix(block0).expect("a whole block").0
    }
}

pub fn sum(bytes: &[u8]) -> u64 {
    xxh3_64(bytes)
}

/// What a sealed image's tag covers of block 0: the header its checksum
/// covers, and the seal's fields before the tag (all but the checksum,
/// the reason and the tag itself).
pub fn tagged_header(block0: &[u8]) -> Vec<u8> {
    let seal = SEAL_AT..SEAL_AT + offset_of!(RawSeal, tag);
    [&block0[..HEADER_SUMMED], &block0[seal]].concat()
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
    /// How a sealed image's key is kept; None for an image in clear.
    pub seal: Option<Seal>,
}

impl Header {
    /// Block 0 for this header, its checksum filled in.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; PAGE as usize];
        let r = RawHeader::view_mut(&mut b);
        r.magic = *MAGIC;
        r.version.set(VERSION);
        r.page_size.set(PAGE as u32);
        let id = &self.build_id[..self.build_id.len().min(r.build_id.len())];
        r.build_id_len.set(id.len() as u32);
        r.build_id[..id.len()].copy_from_slice(id);
        r.entry.set(self.entry);
        r.nonce.set(self.nonce);
        r.nr_ranges.set(self.nr_ranges);
        r.map_off.set(self.map_off);
        r.map_len.set(self.map_len);
        r.map_sum.set(self.map_sum);
        r.nr_chunks.set(self.nr_chunks);
        r.index_off.set(self.index_off);
        r.index_len.set(self.index_len);
        r.index_sum.set(self.index_sum);
        r.image_end.set(self.image_end);
        r.used_pages.set(self.used_pages);
        r.data_pages.set(self.data_pages);
        r.free_pages.set(self.free_pages);
        r.machine.set(self.machine);
        let fs = &self.filesystems[..self.filesystems.len().min(filesystems::MAX)];
        r.nr_filesystems.set(fs.len() as u32);
        for (raw, g) in r.filesystems.iter_mut().zip(fs) {
            raw.uuid = g.uuid;
            raw.state.set(g.state);
        }
        if let Some(s) = &self.seal {
            r.key.set(KEY_PASSPHRASE);
            r.seal.argon_m_kib.set(s.argon_m_kib);
            r.seal.argon_t.set(s.argon_t);
            r.seal.argon_p.set(s.argon_p);
            r.seal.salt = s.salt;
            r.seal.nonce_prefix = s.nonce_prefix;
            r.seal.wrapped_key = s.wrapped_key;
            r.seal.tag = s.tag;
        }
        let s = sum(&b[..HEADER_SUMMED]);
        RawHeader::view_mut(&mut b).sum.set(s);
        b
    }

    /// Decodes block 0, or says in a few words why it holds no image.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let Some(r) = RawHeader::view(b) else {
            bail!("the device is shorter than one block");
        };
        if &r.magic == MAGIC_RESUMED {
            match invalid_reason(b) {
                why if why.is_empty() => bail!("the image there was already resumed"),
                why => bail!("the image there was already resumed ({why})"),
            }
        }
        if &r.magic == MAGIC_INVALID {
            bail!("the image there was invalidated: {}", invalid_reason(b));
        }
        if &r.magic != MAGIC {
            bail!("no hibernation image there");
        }
        if r.sum.get() != sum(&b[..HEADER_SUMMED]) {
            bail!("the image header is corrupt (checksum)");
        }
        if r.version.get() != VERSION || u64::from(r.page_size.get()) != PAGE {
            bail!(
                "image version {} with {}-byte pages is not this kjump's",
                r.version.get(),
                r.page_size.get()
            );
        }
        let id_len = (r.build_id_len.get() as usize).min(r.build_id.len());
        let nr_fs = r.nr_filesystems.get() as usize;
        if nr_fs > filesystems::MAX {
            bail!("the image header lists {nr_fs} filesystems");
        }
        let filesystems = r.filesystems[..nr_fs]
            .iter()
            .map(|g| Guarded {
                uuid: g.uuid,
                state: g.state.get(),
            })
            .collect();
        let seal = match r.key.get() {
            KEY_NONE => None,
            KEY_PASSPHRASE => Some(Seal {
                argon_m_kib: r.seal.argon_m_kib.get(),
                argon_t: r.seal.argon_t.get(),
                argon_p: r.seal.argon_p.get(),
                salt: r.seal.salt,
                nonce_prefix: r.seal.nonce_prefix,
                wrapped_key: r.seal.wrapped_key,
                tag: r.seal.tag,
            }),
            k => bail!("the image is sealed in a way this kjump does not know ({k})"),
        };
        Ok(Header {
            build_id: r.build_id[..id_len].to_vec(),
            entry: r.entry.get(),
            nonce: r.nonce.get(),
            nr_ranges: r.nr_ranges.get(),
            map_off: r.map_off.get(),
            map_len: r.map_len.get(),
            map_sum: r.map_sum.get(),
            nr_chunks: r.nr_chunks.get(),
            index_off: r.index_off.get(),
            index_len: r.index_len.get(),
            index_sum: r.index_sum.get(),
            image_end: r.image_end.get(),
            used_pages: r.used_pages.get(),
            data_pages: r.data_pages.get(),
            free_pages: r.free_pages.get(),
            machine: r.machine.get(),
            filesystems,
            seal,
        })
    }
}

/// Block 0 with the image invalidated for `why` (see [`MAGIC_INVALID`]).
pub fn invalidated(block0: &[u8], why: &str) -> Vec<u8> {
    let mut b = noted(block0, why);
    RawHeader::view_mut(&mut b).magic = *MAGIC_INVALID;
    b
}

/// Block 0 with `why` at [`INVALID_REASON`], its magic unchanged.
pub fn noted(block0: &[u8], why: &str) -> Vec<u8> {
    let mut b = block0[..PAGE as usize].to_vec();
    let r = RawHeader::view_mut(&mut b);
    let why = &why.as_bytes()[..why.len().min(r.reason.len() - 1)];
    r.reason.fill(0);
    r.reason[..why.len()].copy_from_slice(why);
    b
}

/// The reason an invalidated block 0 records (printable text only).
pub fn invalid_reason(block0: &[u8]) -> String {
    let r = RawHeader::view(block0).map_or(&[][..], |h| &h.reason[..]);
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
    /// Bytes stored: LZ4 or raw, and a sealed chunk's tag.
    pub comp_len: u32,
    pub raw_len: u32,
    /// XXH3-64 of the stored bytes; 0 in a sealed image (the tag checks).
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
/// (a chunk that does not shrink is stored as it is) and, if `sealed`,
/// its tag.
pub fn decode_index(b: &[u8], sealed: bool) -> Result<Vec<Chunk>> {
    let tag = if sealed { TAG as u32 } else { 0 };
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
            || c.comp_len <= tag
            || c.comp_len - tag > c.raw_len
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
        let sealed = Header {
            seal: Some(Seal {
                argon_m_kib: 1 << 16,
                salt: [5; 16],
                tag: [6; TAG],
                ..Default::default()
            }),
            ..h.clone()
        };
        let b = sealed.encode();
        assert_eq!(Header::decode(&b).unwrap(), sealed);
        // The tag covers the seal's fields but not the tag.
        assert_eq!(tagged_header(&b).len(), HEADER_SUMMED + 96);
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
