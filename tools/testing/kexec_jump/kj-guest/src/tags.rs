// SPDX-License-Identifier: GPL-2.0

//! Is a dump all of A? `tagfill` (in A) fills memory with pages that each
//! carry their own physical address; `tagscan` (in B) walks every page of
//! /proc/vmcore and counts the tagged pages it finds at their own address
//! (found) and at another one (wrong).

use crate::{sys, vmcore};
use std::{fs, os::unix::fs::FileExt, path::Path, thread, time::Duration};

const PAGE: usize = 4096;
const MAGIC: u64 = u64::from_le_bytes(*b"KJTAGPAG");

/// The physical address of every page of `buf` (page aligned), from one
/// read of /proc/self/pagemap.
fn phys_pages(buf: &[u8]) -> Result<Vec<u64>, String> {
    let f = fs::File::open("/proc/self/pagemap").map_err(|e| format!("pagemap: {e}"))?;
    let mut raw = vec![0u8; buf.len() / PAGE * 8];
    f.read_exact_at(&mut raw, (buf.as_ptr() as usize / PAGE * 8) as u64)
        .map_err(|e| format!("pagemap: {e}"))?;
    raw.chunks_exact(8)
        .map(|e| {
            let e = u64::from_le_bytes(e.try_into().expect("8 bytes"));
            let pfn = e & ((1 << 55) - 1);
            if e >> 63 == 0 || pfn == 0 {
                Err(format!("pagemap: a page not present ({e:#x})"))
            } else {
                Ok(pfn * PAGE as u64)
            }
        })
        .collect()
}

/// `tagfill --mib N --nonce X --check FILE`: N MiB of locked pages, each
/// starting with MAGIC, X and its own physical address; held until FILE
/// exists, then says whether any page moved meanwhile (a moved page would
/// be found at another address without the dump being wrong).
pub fn fill(mib: usize, nonce: u64, check: &Path) -> Result<(), String> {
    let mut mem = vec![0u8; (mib << 20) + PAGE];
    let off = mem.as_ptr().align_offset(PAGE);
    let buf = &mut mem[off..off + (mib << 20)];
    // Touch every page, then lock them: mlock() keeps them in RAM and,
    // with vm.compact_unevictable_allowed=0 (the scenario sets it), in
    // place.
    buf.iter_mut().step_by(PAGE).for_each(|b| *b = 1);
    sys::mlock_range(buf.as_ptr(), buf.len()).map_err(|e| format!("mlock: {e}"))?;
    let phys = phys_pages(buf)?;
    for (page, pa) in buf.chunks_exact_mut(PAGE).zip(&phys) {
        page[..8].copy_from_slice(&MAGIC.to_le_bytes());
        page[8..16].copy_from_slice(&nonce.to_le_bytes());
        page[16..24].copy_from_slice(&pa.to_le_bytes());
    }
    println!("tagfill: tagged {} pages", phys.len());
    sys::drain_stdout();
    while !check.exists() {
        thread::sleep(Duration::from_millis(100));
    }
    let now = phys_pages(buf)?;
    let moved = phys.iter().zip(&now).filter(|(a, b)| a != b).count();
    println!("tagfill: moved {moved} of {} pages", phys.len());
    Ok(())
}

/// What a scan found.
#[derive(Default)]
struct Scan {
    found: u64,
    wrong: u64,
    first_wrong: Option<(u64, u64)>,
    pages: u64,
}

impl Scan {
    /// One page of the dump at physical address `at`.
    fn page(&mut self, at: u64, head: &[u8], nonce: u64) {
        self.pages += 1;
        let word = |i: usize| u64::from_le_bytes(head[i * 8..i * 8 + 8].try_into().expect("8"));
        if word(0) != MAGIC || word(1) != nonce {
            return;
        }
        if word(2) == at {
            self.found += 1;
        } else {
            self.wrong += 1;
            self.first_wrong.get_or_insert((at, word(2)));
        }
    }
}

/// `tagscan NONCE`: every page of the direct-map PT_LOADs of /proc/vmcore
/// (the kernel-text one repeats some of them), read 1 MiB at a time.
pub fn scan(nonce: u64) -> Result<String, String> {
    let f = fs::File::open("/proc/vmcore").map_err(|e| format!("/proc/vmcore: {e}"))?;
    let mut s = Scan::default();
    let mut chunk = vec![0u8; 1 << 20];
    let mut skipped = 0;
    for l in vmcore::pt_loads(&f)?
        .iter()
        .filter(|l| l.vaddr < vmcore::START_KERNEL_MAP)
    {
        // A header whose end wraps (kexec-tools' [1 MiB, --mem-min) on an
        // unpatched kernel) describes no RAM: reading it would go on for
        // ever through whatever memory follows.
        if l.paddr.checked_add(l.size).is_none_or(|end| end > 1 << 46) {
            skipped += 1;
            continue;
        }
        let mut done = 0;
        while done < l.size {
            let n = (l.size - done).min(chunk.len() as u64) as usize;
            f.read_exact_at(&mut chunk[..n], l.off + done)
                .map_err(|e| format!("read at {:#x}: {e}", l.paddr + done))?;
            for (i, page) in chunk[..n].chunks(PAGE).enumerate() {
                if page.len() >= 24 {
                    s.page(l.paddr + done + (i * PAGE) as u64, page, nonce);
                }
            }
            done += n as u64;
        }
    }
    let wrong = s.first_wrong.map_or(String::new(), |(at, tag)| {
        format!(" (first: {tag:#x} at {at:#x})")
    });
    let skipped = if skipped > 0 {
        format!(", {skipped} wrapping PT_LOAD(s) skipped")
    } else {
        String::new()
    };
    Ok(format!(
        "tagscan: found {} wrong {} of {} pages read{wrong}{skipped}",
        s.found, s.wrong, s.pages
    ))
}
