// SPDX-License-Identifier: GPL-2.0

//! `kjump call`: run a program in physical mode and come back. The program
//! is an ELF executable whose PT_LOAD physical addresses say where it goes,
//! or a raw binary with --at; it returns with `ret` (or calls the address
//! at 0(%rsp)). Its pages are swapped in for the call and out after it,
//! and the program is unloaded; with --resident it is loaded in place into
//! the crashkernel= reservation instead and stays loaded: `kjump exec`
//! calls it again with no page copied (what a program called often wants).

use crate::{memmap, state, sys};
use anyhow::{bail, Context, Result};
use object::read::elf::{FileHeader, ProgramHeader};
use std::fs;

const PAGE: u64 = 4096;

/// Segments and entry of an ELF program.
fn elf_segments(bytes: &[u8]) -> Result<(Vec<sys::Segment>, u64)> {
    let hdr = object::elf::FileHeader64::<object::Endianness>::parse(bytes)
        .context("not a 64-bit ELF file")?;
    let e = hdr.endian()?;
    let mut segs = Vec::new();
    for ph in hdr.program_headers(e, bytes)? {
        if ph.p_type(e) != object::elf::PT_LOAD || ph.p_memsz(e) == 0 {
            continue;
        }
        let paddr = ph.p_paddr(e);
        let head = paddr % PAGE;
        let data = ph
            .data(e, bytes)
            .map_err(|_| anyhow::anyhow!("PT_LOAD beyond the file"))?;
        let mut buf = vec![0u8; head as usize];
        buf.extend_from_slice(data);
        let memsz = (head + ph.p_memsz(e)).div_ceil(PAGE) * PAGE;
        segs.push(sys::Segment {
            bytes: buf,
            mem: paddr - head,
            memsz,
        });
    }
    if segs.is_empty() {
        bail!("no PT_LOAD segment");
    }
    Ok((segs, hdr.e_entry(e)))
}

/// How to call: the program's path, a raw binary's address, the entry,
/// and whether it stays resident in the reservation.
pub struct Request<'a> {
    pub path: &'a str,
    pub at: Option<u64>,
    pub entry: Option<u64>,
    pub resident: bool,
}

/// The span of `segs`, which must lie inside the reservation.
fn inside_reservation(path: &str, segs: &[sys::Segment]) -> Result<memmap::Range> {
    let res = memmap::reservation(&memmap::iomem()?)?;
    let span = memmap::Range {
        start: segs.iter().map(|s| s.mem).min().unwrap_or(0),
        end: segs.iter().map(|s| s.mem + s.memsz).max().unwrap_or(0),
    };
    if span.start < res.start || span.end > res.end {
        bail!(
            "{path} lies at {:#x}-{:#x}, outside the reservation {:#x}-{:#x}: \
             link it inside, or call it without --resident",
            span.start,
            span.end - 1,
            res.start,
            res.end - 1
        );
    }
    Ok(span)
}

pub fn call(req: &Request) -> Result<()> {
    let (path, at, entry) = (req.path, req.at, req.entry);
    let bytes = fs::read(path).with_context(|| path.to_string())?;
    let (segs, entry) = if bytes.starts_with(b"\x7fELF") {
        let (s, e) = elf_segments(&bytes).with_context(|| path.to_string())?;
        (s, entry.unwrap_or(e))
    } else {
        let Some(at) = at else {
            bail!("{path} is not ELF: give its physical address with --at");
        };
        if at % PAGE != 0 {
            bail!("--at {at:#x} is not page aligned");
        }
        let memsz = (bytes.len() as u64).div_ceil(PAGE) * PAGE;
        let seg = sys::Segment {
            bytes,
            mem: at,
            memsz,
        };
        (vec![seg], entry.unwrap_or(at))
    };
    if !segs
        .iter()
        .any(|s| entry >= s.mem && entry < s.mem + s.memsz)
    {
        bail!("entry {entry:#x} is outside the program");
    }
    let mut flags = sys::KEXEC_PRESERVE_CONTEXT;
    if req.resident {
        let span = inside_reservation(path, &segs)?;
        if fs::read_to_string("/sys/kernel/kexec_crash_loaded").is_ok_and(|s| s.trim() == "1") {
            bail!("a crash kernel is loaded in the reservation: unload it first (kexec -p -u)");
        }
        flags |= sys::KEXEC_RESIDENT;
        sys::kexec_load(entry, &segs, flags)
            .map_err(|e| anyhow::anyhow!(sys::explain("loading the program", &e)))?;
        state::save(&state::State {
            kernel: path.to_string(),
            b_ram: span,
            reservation: memmap::reservation(&memmap::iomem()?)?,
            jumps: state::jumps(),
        })?;
    } else {
        sys::kexec_load(entry, &segs, flags)
            .map_err(|e| anyhow::anyhow!(sys::explain("loading the program", &e)))?;
    }
    let t0 = sys::boottime();
    let r = sys::reboot_kexec();
    let dt = sys::boottime() - t0;
    if !req.resident {
        let _ = sys::kexec_load(0, &[], sys::KEXEC_PRESERVE_CONTEXT);
    }
    r.map_err(|e| anyhow::anyhow!(sys::explain("calling the program", &e)))?;
    state::count_jump();
    let stays = if req.resident {
        " (resident: kjump exec calls it again)"
    } else {
        ""
    };
    println!("kjump: {path} returned after {dt:.3} s{stays}");
    Ok(())
}
