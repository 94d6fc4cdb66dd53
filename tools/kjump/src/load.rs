// SPDX-License-Identifier: GPL-2.0

//! `kjump load`: B's layout in the reservation, its memory map, command
//! line, dump header and purgatory, loaded as a resident image.
//!
//! Reservation, low to high:
//!
//! ```text
//! | kernel (init_size) | boot_params | command line | ...free... | initrd | purgatory | ELF core header |
//! |<------------------------------ B's RAM ---------------------------->|<-- reserved in B's map -->|
//! ```
//!
//! B's e820 map lists B's RAM, A's RAM below 1 MiB and A's non-RAM
//! entries; nothing else of A's RAM, so B's decompressor (KASLR on),
//! memblock and page allocator all stay inside. The purgatory and the
//! dump header are reserved in B's map, so B keeps them.

use crate::{bzimage, elfcore, memmap, purgatory, state, sys};
use anyhow::{bail, Context, Result};
use memmap::Range;
use std::fs;
use zeroize::Zeroize;

const PAGE: u64 = 4096;

fn up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

fn down(x: u64, a: u64) -> u64 {
    x / a * a
}

/// The EFI system table's ACPI RSDP, if A booted through EFI; on BIOS
/// machines B finds it by scanning low memory, as any kernel does.
fn acpi_rsdp() -> u64 {
    let Ok(t) = fs::read_to_string("/sys/firmware/efi/systab") else {
        return 0;
    };
    let find = |k: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
    };
    find("ACPI20=").or_else(|| find("ACPI=")).unwrap_or(0)
}

/// B's initramfs: a file, or bytes made in memory (kjump hibernate's;
/// writing them to a file first cost a second in a debug kernel).
pub enum Initrd<'a> {
    File(&'a str),
    Bytes(Vec<u8>),
}

/// What to load.
pub struct Request<'a> {
    pub kernel: &'a str,
    pub initrd: Option<Initrd<'a>>,
    pub append: &'a str,
    /// Memory B's own work needs once it runs, beyond what B's kernel
    /// itself takes after boot ([`B_KERNEL_OVERHEAD`]): 0 for a B that
    /// brings its own, the image writers for a hibernation's B.
    pub runtime: u64,
}

/// What B's kernel holds after boot beyond its image and initrd (page
/// structures, slab, per-CPU areas, the unpacked initramfs): measured as
/// 23 MiB for the test kernel in 160 MiB with 2 CPUs (106 MiB available
/// to B's kjump), doubled for other configurations and CPU counts.
pub const B_KERNEL_OVERHEAD: u64 = 48 << 20;

fn mib(x: u64) -> u64 {
    x.div_ceil(1 << 20)
}

pub fn load(req: Request) -> Result<()> {
    crate::trace("load start");
    let iomem = memmap::iomem()?;
    let res = memmap::reservation(&iomem)?;
    if fs::read_to_string("/sys/kernel/kexec_crash_loaded").is_ok_and(|s| s.trim() == "1") {
        bail!("a crash kernel is loaded in the reservation: unload it first (kexec -p -u)");
    }
    let mut image = fs::read(req.kernel).with_context(|| req.kernel.to_string())?;
    crate::trace("kernel read");
    let kernel = bzimage::parse(&image).with_context(|| req.kernel.to_string())?;
    let initrd = match req.initrd {
        Some(Initrd::File(p)) => Some(fs::read(p).with_context(|| p.to_string())?),
        Some(Initrd::Bytes(b)) => Some(b),
        None => None,
    };

    // The dump header's size depends only on how many ranges it has.
    crate::trace("initrd read");
    let notes = elfcore::notes()?;
    let maps = elfcore::kernel_maps()?;
    let a_ram = memmap::subtract(&iomem.ram, res);
    let elfhdr = elfcore::build(&notes, &maps, &a_ram)?;
    crate::trace("dump header built");
    let top_len = up(PAGE + elfhdr.len() as u64, PAGE);
    if res.len() < top_len + kernel.init_size {
        bail!(
            "the reservation ({} MiB) cannot hold B: boot A with crashkernel={}M or more",
            mib(res.len()),
            mib(kernel.init_size) * 2 + 64
        );
    }
    let top = down(res.end - top_len, PAGE);
    let purg_at = top;
    let elfhdr_at = top + PAGE;

    let load_at = up(res.start, kernel.alignment);
    let kernel_len = up((kernel.payload.len() as u64).max(kernel.init_size), PAGE);
    let bp_at = load_at + kernel_len;
    let cmdline = format!(
        "{} elfcorehdr={:#x}@{:#x}",
        req.append.trim(),
        elfhdr.len(),
        elfhdr_at
    );
    let cmdline_len = (cmdline.len() + purgatory::CMDLINE_ROOM + 1) as u64;
    if kernel.cmdline_size != 0 && cmdline_len > kernel.cmdline_size {
        bail!(
            "B's command line is {} bytes with what kjump adds; B takes {}",
            cmdline_len,
            kernel.cmdline_size
        );
    }
    let cmdline_at = bp_at + PAGE;
    let low_end = cmdline_at + up(cmdline_len, PAGE);

    let initrd_at = match &initrd {
        Some(i) => {
            let at = down(top - i.len() as u64, PAGE);
            if !kernel.above_4g && at + i.len() as u64 > 1 << 32 {
                bail!("the reservation is above 4 GiB and B cannot take an initrd there");
            }
            Some(at)
        }
        None => None,
    };
    let mut need = low_end + initrd.as_ref().map_or(0, |i| up(i.len() as u64, PAGE)) + top_len;
    if req.runtime != 0 {
        need += B_KERNEL_OVERHEAD + req.runtime;
    }
    if initrd_at.is_some_and(|at| at < low_end) || need - res.start > res.len() {
        bail!(
            "B needs {} MiB but the reservation is {} MiB: boot A with crashkernel={}M",
            mib(need - res.start),
            mib(res.len()),
            mib(need - res.start) + 64
        );
    }

    let b_ram = Range {
        start: res.start,
        end: top,
    };
    let e820 = memmap::e820_for_b(
        &memmap::firmware_map()?,
        b_ram,
        Range {
            start: top,
            end: res.end,
        },
    );
    let bp = kernel.boot_params(&bzimage::BootInfo {
        cmdline: cmdline_at,
        initrd: initrd_at.zip(initrd.as_ref().map(|i| i.len() as u64)),
        e820: &e820,
        acpi_rsdp: acpi_rsdp(),
    })?;
    let mut bp_seg = bp;
    bp_seg.extend_from_slice(cmdline.as_bytes());
    let purg = purgatory::build(cmdline_at + cmdline.len() as u64, bp_at, load_at + 0x200)?;
    let mut top_seg = purg;
    top_seg.resize(PAGE as usize, 0);
    top_seg.extend_from_slice(&elfhdr);

    crate::trace("boot params and purgatory built");
    let mut segs = vec![
        sys::Segment {
            memsz: kernel_len,
            bytes: kernel.payload,
            mem: load_at,
        },
        sys::Segment {
            memsz: low_end - bp_at,
            bytes: bp_seg,
            mem: bp_at,
        },
    ];
    if let (Some(at), Some(i)) = (initrd_at, initrd) {
        segs.push(sys::Segment {
            memsz: up(i.len() as u64, PAGE),
            bytes: i,
            mem: at,
        });
    }
    segs.push(sys::Segment {
        memsz: top_len,
        bytes: top_seg,
        mem: top,
    });
    crate::trace("segments ready");
    let loaded = sys::kexec_load(
        purg_at,
        &segs,
        sys::KEXEC_PRESERVE_CONTEXT | sys::KEXEC_RESIDENT,
    );
    // B's initramfs may carry a hibernation image's key: now that the
    // kernel has copied it into the reservation, A keeps no copy.
    for s in &mut segs {
        s.bytes.zeroize();
    }
    // The file as read, too: a hibernation saves A's heap, and a freed
    // buffer may stay in it; zero pages cost the image nothing.
    image.zeroize();
    loaded.map_err(|e| anyhow::anyhow!(sys::explain("loading B", &e)))?;

    crate::trace("kexec_load returned");
    let dumped: u64 = a_ram.iter().map(Range::len).sum();
    state::save(&state::State {
        kernel: req.kernel.to_string(),
        b_ram,
        reservation: res,
        jumps: state::jumps(),
    })?;
    println!(
        "kjump: loaded {} at {:#x}-{:#x} (B's RAM {} MiB, resident); A's dump: {} MiB in {} ranges",
        req.kernel,
        b_ram.start,
        b_ram.end - 1,
        mib(b_ram.len()),
        dumped >> 20,
        a_ram.len()
    );
    crate::trace("load done");
    Ok(())
}
