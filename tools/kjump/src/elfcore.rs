// SPDX-License-Identifier: GPL-2.0

//! The ELF core header B's /proc/vmcore is built from: A's CPU notes, its
//! vmcoreinfo note, its kernel text and every byte of its RAM outside B's
//! range, at the addresses A's kernel maps them.

use crate::memmap::Range;
use anyhow::{bail, Context, Result};
use object::elf::{FileHeader64, PT_LOAD, PT_NOTE};
use object::read::elf::{FileHeader, NoteIterator, ProgramHeader};
use std::{fs, io::Read};

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
/// x86_64's __START_KERNEL_map: kernel text is mapped from here.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// The descriptor of the first note called `name` (without its NUL) in
/// an ELF note segment aligned to `align`, and of type `kind` if given.
pub fn find_note<'a>(
    notes: &'a [u8],
    align: u64,
    name: &[u8],
    kind: Option<u32>,
) -> Option<&'a [u8]> {
    let e = object::LittleEndian;
    let mut it = NoteIterator::<FileHeader64<_>>::new(e, align, notes).ok()?;
    while let Ok(Some(n)) = it.next() {
        if n.name() == name && kind.is_none_or(|k| n.n_type(e) == k) {
            return Some(n.desc());
        }
    }
    None
}

/// Where A's kernel maps memory, from /proc/kcore's program headers.
pub struct KernelMaps {
    /// Virtual address of physical 0 in the direct map.
    pub page_offset: u64,
    /// The kernel text segment: virtual, physical, size.
    pub text: (u64, u64, u64),
}

pub fn kernel_maps() -> Result<KernelMaps> {
    let mut head = vec![0u8; 1 << 16];
    let n = fs::File::open("/proc/kcore")
        .and_then(|mut f| f.read(&mut head))
        .context("/proc/kcore (CONFIG_PROC_KCORE, and root)")?;
    head.truncate(n);
    let hdr = object::elf::FileHeader64::<object::Endianness>::parse(&*head)
        .context("/proc/kcore is not ELF")?;
    let e = hdr.endian()?;
    let mut page_offset = None;
    let mut text = None;
    for ph in hdr.program_headers(e, &*head)? {
        if ph.p_type(e) != PT_LOAD {
            continue;
        }
        let (v, p, sz) = (ph.p_vaddr(e), ph.p_paddr(e), ph.p_memsz(e));
        if p == u64::MAX {
            continue;
        }
        if v >= START_KERNEL_MAP {
            text.get_or_insert((v, p, sz));
        } else {
            page_offset.get_or_insert(v - p);
        }
    }
    match (page_offset, text) {
        (Some(page_offset), Some(text)) => Ok(KernelMaps { page_offset, text }),
        _ => bail!("/proc/kcore does not show the direct map and kernel text"),
    }
}

fn hex_file(path: &str) -> Result<u64> {
    let s = fs::read_to_string(path).with_context(|| path.to_string())?;
    let s = s.split_whitespace().next().unwrap_or("");
    u64::from_str_radix(s.trim_start_matches("0x"), 16).with_context(|| format!("{path}: {s}"))
}

/// A's notes: the crash note of each possible CPU (the one that jumps is
/// filled at the jump), then vmcoreinfo.
pub fn notes() -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut cpus: Vec<u32> = fs::read_dir("/sys/devices/system/cpu")?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("cpu")?
                .parse()
                .ok()
        })
        .collect();
    cpus.sort();
    for c in cpus {
        let dir = format!("/sys/devices/system/cpu/cpu{c}");
        let Ok(addr) = hex_file(&format!("{dir}/crash_notes")) else {
            continue;
        };
        let size = fs::read_to_string(format!("{dir}/crash_notes_size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        out.push((addr, size));
    }
    if out.is_empty() {
        bail!("no CPU crash notes in /sys: this kernel lacks CONFIG_CRASH_DUMP");
    }
    let info = fs::read_to_string("/sys/kernel/vmcoreinfo").context("/sys/kernel/vmcoreinfo")?;
    let mut it = info.split_whitespace();
    let mut hex = |what: &str| {
        let v = it.next().unwrap_or("").trim_start_matches("0x");
        u64::from_str_radix(v, 16).with_context(|| format!("vmcoreinfo {what}: {info}"))
    };
    let addr = hex("address")?;
    let size = hex("size")?;
    out.push((addr, size));
    Ok(out)
}

fn phdr(out: &mut Vec<u8>, kind: u32, offset: u64, vaddr: u64, paddr: u64, size: u64) {
    let flags: u32 = if kind == PT_LOAD { 7 } else { 0 };
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    for v in [offset, vaddr, paddr, size, size, 0u64] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// The header: notes first, then kernel text, then each RAM range, as
/// /proc/vmcore wants them (p_offset is a physical address).
pub fn build(notes: &[(u64, u64)], maps: &KernelMaps, ram: &[Range]) -> Result<Vec<u8>> {
    let phnum = notes.len() + 1 + ram.len();
    if phnum > u16::MAX as usize {
        bail!("too many ranges for an ELF core header");
    }
    for r in ram {
        if r.start >= r.end || r.end.checked_add(maps.page_offset).is_none() {
            bail!("bad RAM range {:#x}-{:#x}", r.start, r.end);
        }
    }
    let mut out = Vec::with_capacity(EHDR_SIZE + phnum * PHDR_SIZE);
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
    out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // entry
    out.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [EHDR_SIZE as u16, PHDR_SIZE as u16, phnum as u16, 0, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for &(addr, size) in notes {
        phdr(&mut out, PT_NOTE, addr, 0, addr, size);
    }
    let (tv, tp, ts) = maps.text;
    phdr(&mut out, PT_LOAD, tp, tv, tp, ts);
    for r in ram {
        phdr(
            &mut out,
            PT_LOAD,
            r.start,
            r.start + maps.page_offset,
            r.start,
            r.len(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parses_and_covers_ram() {
        let maps = KernelMaps {
            page_offset: 0xffff_8880_0000_0000,
            text: (0xffff_ffff_8100_0000, 0x100_0000, 0x200_0000),
        };
        let ram = [
            Range {
                start: 0x1000,
                end: 0x9f000,
            },
            Range {
                start: 0x100000,
                end: 0x1000_0000,
            },
        ];
        let h = build(&[(0x5000, 0x100), (0x6000, 0x200)], &maps, &ram).unwrap();
        let f = object::elf::FileHeader64::<object::Endianness>::parse(&*h).unwrap();
        let e = f.endian().unwrap();
        let ph = f.program_headers(e, &*h).unwrap();
        assert_eq!(ph.len(), 5);
        let loads: u64 = ph.iter().skip(3).map(|p| p.p_filesz(e)).sum();
        assert_eq!(loads, 0x9e000 + 0xff0_0000);
        assert_eq!(ph[4].p_vaddr(e), 0xffff_8880_0010_0000);
    }

    #[test]
    fn wrapping_range_is_refused() {
        let maps = KernelMaps {
            page_offset: u64::MAX - 10,
            text: (0, 0, 0),
        };
        assert!(build(&[], &maps, &[Range { start: 0, end: 100 }]).is_err());
    }
}
