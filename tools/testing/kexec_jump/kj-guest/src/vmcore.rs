// SPDX-License-Identifier: GPL-2.0

//! A marker at a known physical address in the jumping kernel, and what
//! the jumped-to kernel's /proc/vmcore holds there.

use crate::sys;
use std::{fs, os::unix::fs::FileExt};

/// Physical address of the page-cache page of the one-page file `path`.
fn file_phys(path: &str) -> Result<u64, String> {
    let f = fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let p = sys::map_shared(&f, 4096).map_err(|e| format!("mmap {path}: {e}"))?;
    // SAFETY: `p` is a readable one-page mapping; reading faults the page
    // in, so that pagemap shows it.
    let _ = unsafe { std::ptr::read_volatile(p) };
    sys::phys_addr(p as usize)
}

/// The kernel image, "Kernel code" to "Kernel bss" in /proc/iomem.
fn kernel_image() -> Option<(u64, u64)> {
    let iomem = fs::read_to_string("/proc/iomem").ok()?;
    let range = |name: &str| {
        let line = iomem.lines().find(|l| l.ends_with(name))?;
        let (s, e) = line.trim().split_once(' ')?.0.split_once('-')?;
        Some((
            u64::from_str_radix(s, 16).ok()?,
            u64::from_str_radix(e, 16).ok()?,
        ))
    };
    Some((range(": Kernel code")?.0, range(": Kernel bss")?.1))
}

/// `markfile DIR TEXT ABOVE`: writes one-page files holding TEXT into DIR
/// until one's page-cache page lies where kexec-tools puts A's memory in
/// a preserve-context image's dump: above ABOVE (the jumped-to kernel's
/// top) or in A's kernel image. Returns its physical address. Where the
/// allocator puts page cache is not ours to choose; the files that miss
/// are kept until then, so that each try gets another page.
pub fn markfile(dir: &str, text: &str, above: u64) -> Result<u64, String> {
    let image = kernel_image().ok_or("no kernel image in /proc/iomem")?;
    fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
    // Up to 256 MiB: the low memory below a 384 MiB top, all of it.
    for i in 0..65536 {
        let path = format!("{dir}/{i}");
        fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?;
        let phys = file_phys(&path)?;
        if phys > above || (image.0..=image.1).contains(&phys) {
            // The misses have done their job; give their pages back.
            for j in 0..i {
                let _ = fs::remove_file(format!("{dir}/{j}"));
            }
            return Ok(phys);
        }
    }
    Err(format!("no page above {above:#x} or in the kernel image"))
}

/// A PT_LOAD of /proc/vmcore: file offset, virtual and physical address, size.
pub(crate) struct Load {
    pub off: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub size: u64,
}

/// The kernel text mapping: a PT_LOAD there repeats part of the direct map.
pub(crate) const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

pub(crate) fn pt_loads(f: &fs::File) -> Result<Vec<Load>, String> {
    let mut eh = [0u8; 64];
    f.read_exact_at(&mut eh, 0)
        .map_err(|e| format!("ELF header: {e}"))?;
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8"));
    if &eh[..4] != b"\x7fELF" {
        return Err("/proc/vmcore: no ELF header".into());
    }
    let (phoff, phentsize, phnum) = (u64_at(&eh, 0x20), u16_at(&eh, 0x36), u16_at(&eh, 0x38));
    let mut loads = Vec::new();
    for i in 0..phnum {
        let mut ph = [0u8; 56];
        f.read_exact_at(&mut ph, phoff + i * phentsize)
            .map_err(|e| format!("program header {i}: {e}"))?;
        if u32::from_le_bytes(ph[..4].try_into().expect("4")) != 1 {
            continue;
        }
        loads.push(Load {
            off: u64_at(&ph, 8),
            vaddr: u64_at(&ph, 16),
            paddr: u64_at(&ph, 24),
            size: u64_at(&ph, 40),
        });
    }
    Ok(loads)
}

fn open_vmcore() -> Result<fs::File, String> {
    fs::File::open("/proc/vmcore").map_err(|e| format!("/proc/vmcore: {e}"))
}

/// `vmcore-at ADDR`: the PT_LOAD of /proc/vmcore that covers physical ADDR
/// and the text at that spot, or why there is none.
pub fn vmcore_at(addr: u64) -> Result<String, String> {
    let f = open_vmcore()?;
    let loads = pt_loads(&f)?;
    for l in &loads {
        let (paddr, size) = (l.paddr, l.size);
        if (paddr..paddr + size).contains(&addr) {
            let mut text = [0u8; 24];
            f.read_exact_at(&mut text, l.off + addr - paddr)
                .map_err(|e| format!("read at {addr:#x}: {e}"))?;
            let text: String = text
                .iter()
                .map(|&c| if c.is_ascii_graphic() { c as char } else { '.' })
                .collect();
            return Ok(format!("{addr:#x} in PT_LOAD {paddr:#x}+{size:#x}: {text}"));
        }
    }
    let list: Vec<String> = loads
        .iter()
        .map(|l| format!("{:#x}+{:#x}", l.paddr, l.size))
        .collect();
    Ok(format!(
        "{addr:#x} not covered; PT_LOADs {}",
        list.join(" ")
    ))
}

/// `vmcore-ram`: bytes of RAM /proc/vmcore holds, counting the direct-map
/// PT_LOADs (not the kernel text one, which repeats part of them).
pub fn vmcore_ram() -> Result<u64, String> {
    let loads = pt_loads(&open_vmcore()?)?;
    Ok(loads
        .iter()
        .filter(|l| l.vaddr < START_KERNEL_MAP)
        .map(|l| l.size)
        .sum())
}
