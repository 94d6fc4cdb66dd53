// SPDX-License-Identifier: GPL-2.0

//! A's memory as B sees it: /proc/vmcore's ELF core, read by physical
//! address, its VMCOREINFO, and the free-page map A recorded at the jump
//! (kernel/kexec_free_map.c).

use crate::elfcore;
use anyhow::{bail, Context, Result};
use memmap2::MmapOptions;
use object::elf::{FileHeader64, PT_LOAD, PT_NOTE};
use object::read::elf::{FileHeader, ProgramHeader};
use std::{fs::File, os::unix::fs::FileExt};

type Elf = FileHeader64<object::LittleEndian>;
/// "SFREEMAP": the descriptor's magic.
const FREE_MAP_MAGIC: u64 = 0x5041_4d45_4552_4653;

/// A physical range of A's RAM and where /proc/vmcore holds it.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub paddr: u64,
    pub len: u64,
    pub offset: u64,
}

pub struct Vmcore {
    file: File,
    /// Physical PT_LOADs, ascending, overlaps removed.
    pub loads: Vec<Load>,
    pub vmcoreinfo: String,
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// The VMCOREINFO note's text among ELF notes.
fn find_vmcoreinfo(notes: &[u8]) -> Option<String> {
    let desc = elfcore::find_note(notes, 4, b"VMCOREINFO", None)?;
    Some(String::from_utf8_lossy(desc).into())
}

impl Vmcore {
    pub fn open(path: &str) -> Result<Self> {
        let file = File::open(path).with_context(|| {
            format!("{path}: this kernel was not started with elfcorehdr= (kjump load gives it)")
        })?;
        let e = object::LittleEndian;
        let mut eh = [0u8; 64];
        file.read_exact_at(&mut eh, 0)
            .with_context(|| path.to_string())?;
        let hdr = Elf::parse(&eh[..])
            .ok()
            .filter(|h| h.is_little_endian())
            .with_context(|| format!("{path} is not a little-endian ELF64 core"))?;
        let table_end = hdr.e_phoff(e) + u64::from(hdr.e_phentsize(e)) * u64::from(hdr.e_phnum(e));
        let mut head = vec![0u8; table_end as usize];
        file.read_exact_at(&mut head, 0)?;
        let mut loads = Vec::new();
        let mut vmcoreinfo = String::new();
        for p in hdr.program_headers(e, &*head)? {
            let (offset, paddr, filesz) = (p.p_offset(e), p.p_paddr(e), p.p_filesz(e));
            match p.p_type(e) {
                PT_LOAD if filesz > 0 => loads.push(Load {
                    paddr,
                    len: filesz,
                    offset,
                }),
                PT_NOTE => {
                    let mut notes = vec![0u8; filesz as usize];
                    file.read_exact_at(&mut notes, offset)?;
                    if let Some(v) = find_vmcoreinfo(&notes) {
                        vmcoreinfo = v;
                    }
                }
                _ => {}
            }
        }
        Ok(Vmcore {
            file,
            loads: disjoint(loads),
            vmcoreinfo,
        })
    }

    /// A VMCOREINFO value (`KEY=value`).
    pub fn info(&self, key: &str) -> Option<&str> {
        self.vmcoreinfo
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    /// All of /proc/vmcore mapped read-only: A's pages read as memory,
    /// without a copy and a temporary mapping per page as read() makes.
    pub fn map(&self) -> Result<Mapping> {
        let len = self
            .loads
            .iter()
            .map(|l| l.offset + l.len)
            .max()
            .unwrap_or(0);
        let len = len.div_ceil(4096) * 4096;
        // SAFETY: /proc/vmcore is A's memory as the kernel keeps it for
        // us: nothing truncates it or writes it while it is mapped.
        let map = unsafe {
            MmapOptions::new()
                .len(len as usize)
                .map_copy_read_only(&self.file)
        };
        map.context("mmap /proc/vmcore")
    }

    /// Reads A's bytes at physical address `paddr`.
    pub fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<()> {
        let l = self
            .loads
            .iter()
            .find(|l| paddr >= l.paddr && paddr + buf.len() as u64 <= l.paddr + l.len)
            .with_context(|| format!("A's memory at {paddr:#x} is not in the dump"))?;
        self.file
            .read_exact_at(buf, l.offset + (paddr - l.paddr))
            .with_context(|| format!("reading A's memory at {paddr:#x}"))
    }

    /// The page frames A's page allocator held free at the jump, as a
    /// bitmap (bit set: free), or None if A recorded none.
    pub fn free_map(&self) -> Result<Option<FreeMap>> {
        let Some(at) = self.info("KEXEC_JUMP_FREE_MAP") else {
            return Ok(None);
        };
        let at = u64::from_str_radix(at, 16).context("KEXEC_JUMP_FREE_MAP=")?;
        let mut d = [0u8; 40];
        self.read_phys(at, &mut d)?;
        let (magic, valid, pfn_end, nr_pages, dir) = (
            u64_at(&d, 0),
            u64_at(&d, 8),
            u64_at(&d, 16),
            u64_at(&d, 24),
            u64_at(&d, 32),
        );
        if magic != FREE_MAP_MAGIC || valid != 1 {
            return Ok(None);
        }
        if nr_pages != pfn_end.div_ceil(4096 * 8) {
            bail!("A's free-page map is inconsistent ({nr_pages} pages for {pfn_end} frames)");
        }
        let mut dir_bytes = vec![0u8; nr_pages as usize * 8];
        self.read_phys(dir, &mut dir_bytes)?;
        let mut bits = vec![0u8; nr_pages as usize * 4096];
        for (i, page) in bits.chunks_exact_mut(4096).enumerate() {
            self.read_phys(u64_at(&dir_bytes, i * 8), page)?;
        }
        Ok(Some(FreeMap { bits, pfn_end }))
    }
}

/// PT_LOADs cut so that no physical byte is in two (the kernel text is
/// also described by its own PT_LOAD), ascending.
fn disjoint(mut loads: Vec<Load>) -> Vec<Load> {
    loads.sort_by_key(|l| (l.paddr, std::cmp::Reverse(l.len)));
    let mut out: Vec<Load> = Vec::new();
    for mut l in loads {
        if let Some(last) = out.last() {
            let end = last.paddr + last.len;
            if l.paddr + l.len <= end {
                continue;
            }
            if l.paddr < end {
                let cut = end - l.paddr;
                l = Load {
                    paddr: end,
                    len: l.len - cut,
                    offset: l.offset + cut,
                };
            }
        }
        out.push(l);
    }
    out
}

pub struct FreeMap {
    bits: Vec<u8>,
    pfn_end: u64,
}

impl FreeMap {
    pub fn is_free(&self, pfn: u64) -> bool {
        pfn < self.pfn_end && self.bits[(pfn / 8) as usize] & (1 << (pfn % 8)) != 0
    }
}

/// /proc/vmcore, mapped read-only by [`Vmcore::map`].
pub type Mapping = memmap2::Mmap;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_loads_are_cut() {
        let l = |paddr, len, offset| Load { paddr, len, offset };
        let d = disjoint(vec![
            l(0x100000, 0x100000, 0),
            l(0x180000, 0x10000, 0x900000),
            l(0x1f0000, 0x20000, 0x800000),
        ]);
        let got: Vec<_> = d.iter().map(|l| (l.paddr, l.len, l.offset)).collect();
        assert_eq!(
            got,
            [(0x100000, 0x100000, 0), (0x200000, 0x10000, 0x810000)]
        );
    }

    #[test]
    fn vmcoreinfo_note_is_found() {
        let mut n = Vec::new();
        for (name, desc) in [
            (&b"CORE\0"[..], &b"xx"[..]),
            (b"VMCOREINFO\0", b"A=1\nB=2\n"),
        ] {
            n.extend_from_slice(&(name.len() as u32).to_le_bytes());
            n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            n.extend_from_slice(&0u32.to_le_bytes());
            n.extend_from_slice(name);
            n.resize(n.len().div_ceil(4) * 4, 0);
            n.extend_from_slice(desc);
            n.resize(n.len().div_ceil(4) * 4, 0);
        }
        assert_eq!(find_vmcoreinfo(&n).as_deref(), Some("A=1\nB=2\n"));
    }
}
