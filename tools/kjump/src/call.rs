// SPDX-License-Identifier: GPL-2.0

//! `kjump call`: run a program in physical mode and come back. The program
//! is an ELF executable whose PT_LOAD physical addresses say where it goes,
//! or a raw binary with --at; it returns with `ret` (or calls the address
//! at 0(%rsp)). Its pages are swapped in for the call and out after it.

use crate::sys;
use anyhow::{bail, Context, Result};
use object::read::elf::{FileHeader, ProgramHeader};

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

pub fn call(path: &str, at: Option<u64>, entry: Option<u64>) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| path.to_string())?;
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
    sys::kexec_load(entry, &segs, sys::KEXEC_PRESERVE_CONTEXT)
        .map_err(|e| anyhow::anyhow!(sys::explain("loading the program", &e)))?;
    let t0 = sys::boottime();
    let r = sys::reboot_kexec();
    let dt = sys::boottime() - t0;
    let _ = sys::kexec_load(0, &[], sys::KEXEC_PRESERVE_CONTEXT);
    r.map_err(|e| anyhow::anyhow!(sys::explain("calling the program", &e)))?;
    println!("kjump: {path} returned after {dt:.3} s");
    Ok(())
}
