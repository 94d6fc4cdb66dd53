// SPDX-License-Identifier: GPL-2.0

//! The physical-mode checksum program (phys_call/checksum.S): loaded with
//! kexec-tools as a preserve-context image, or by `kjump call --resident`
//! in place into the reservation, and called through kexec jump.

use crate::memstat::MemStat;
use crate::sys;
use std::{fs, path::Path};

/// Bytes of the buffer the program hashes; its results follow them.
const BUF_LEN: usize = 4096 - 16;

/// The program with the buffer's address patched in.
const PATCHED: &str = "/tmp/physcall.elf";

/// A kexec-tools address argument (decimal or 0x-prefixed hexadecimal).
fn parse_addr(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("'{s}' is not an address"))
}

/// Loads the physical-mode program at `path` with kexec-tools, as a
/// preserve-context image between `mem_min` and `mem_max`.
pub(crate) fn kexec_load_program(path: &str, mem_min: &str, mem_max: &str) -> Result<(), String> {
    let out = std::process::Command::new("kexec")
        .args(["--load-preserve-context", "--args-none", path])
        .arg(format!("--mem-min={mem_min}"))
        .arg(format!("--mem-max={mem_max}"))
        .output()
        .map_err(|e| format!("kexec: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "kexec load: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// FNV-1a, 64 bit: what the physical-mode program computes.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// One locked page of this process outside `[lo, hi]`: the program reads
/// and writes it by physical address. Not one inside the window the image
/// is loaded into: the jump would swap it with one of the image's pages,
/// and the program would hash that instead. The allocator hands out runs
/// of neighbouring pages, so a few tries can all land in the window: take
/// one page more than the window holds (capped), and one of them is
/// outside it. The others are unmapped; the page found stays mapped for
/// the life of the process (every call needs it).
pub(crate) fn locked_page_outside(lo: u64, hi: u64) -> Result<(&'static mut [u8], u64), String> {
    const PAGE: usize = 4096;
    let window = usize::try_from(hi.saturating_sub(lo) / PAGE as u64).unwrap_or(usize::MAX);
    let pages = window.saturating_add(2).min(65536);
    let len = pages * PAGE;
    let map = sys::map_anon(len).map_err(|e| format!("mmap: {e}"))?;
    sys::mlock_range(map, len).map_err(|e| format!("mlock: {e}"))?;
    let mut found = None;
    for i in 0..pages {
        let page = map.wrapping_add(i * PAGE) as usize;
        let phys = sys::phys_addr(page)?;
        if !(lo..=hi).contains(&phys) {
            found = Some((i, phys));
            break;
        }
    }
    let Some((i, phys)) = found else {
        return Err(format!(
            "no page outside [{lo:#x}, {hi:#x}] in {pages} locked pages"
        ));
    };
    let page = map.wrapping_add(i * PAGE);
    let after = (pages - i - 1) * PAGE;
    if i > 0 {
        sys::unmap(map, i * PAGE).map_err(|e| format!("munmap: {e}"))?;
    }
    if after > 0 {
        sys::unmap(page.wrapping_add(PAGE), after).map_err(|e| format!("munmap: {e}"))?;
    }
    // SAFETY: `page` is a mapped, locked, readable and writable page of
    // this process that nothing else references and nothing unmaps: it is
    // handed out once, as the only reference, for the rest of the process.
    let buf = unsafe { std::slice::from_raw_parts_mut(page, PAGE) };
    buf.fill(1);
    Ok((buf, phys))
}

/// The loaded program and the locked page it hashes.
pub struct Program {
    buf: &'static mut [u8],
    /// Where the program was told the buffer is.
    phys: u64,
    calls: u64,
    /// The program leaves its re-entry point for the next call (the int3
    /// build) and counts its re-entries in the high half of the count.
    reentry: bool,
    /// Loaded by kjump on the first call (which `kjump call --resident`
    /// makes), not yet loaded before it.
    kjump: bool,
}

impl Program {
    /// Loads the program at `elf` between `mem_min` and `mem_max`, told the
    /// physical address of a locked page of this process; with `kjump`,
    /// the first call loads it (resident) instead.
    pub fn load(elf: &Path, mem_min: &str, mem_max: &str, kjump: bool) -> Result<Self, String> {
        let (lo, hi) = (parse_addr(mem_min)?, parse_addr(mem_max)?);
        let (buf, phys) = locked_page_outside(lo, hi)?;

        let mut image = fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
        let at = image
            .windows(8)
            .position(|w| w == b"KJPARAMS")
            .ok_or("no KJPARAMS tag in the program")?
            + 8;
        image[at..at + 8].copy_from_slice(&phys.to_le_bytes());
        image[at + 8..at + 16].copy_from_slice(&(BUF_LEN as u64).to_le_bytes());
        fs::write(PATCHED, &image).map_err(|e| format!("{PATCHED}: {e}"))?;
        if kjump {
            println!("physcall: buffer at physical {phys:#x}, kjump loads on call 1");
            return Ok(Self {
                buf,
                phys,
                calls: 0,
                reentry: false,
                kjump,
            });
        }
        kexec_load_program(PATCHED, mem_min, mem_max)?;
        println!("physcall: loaded, buffer at physical {phys:#x}");
        sys::drain_stdout();
        Ok(Self {
            buf,
            phys,
            calls: 0,
            reentry: false,
            kjump,
        })
    }

    /// How many calls the program has counted, as it last wrote back.
    pub fn counted(&self) -> u64 {
        u64::from_le_bytes(self.buf[BUF_LEN + 8..].try_into().expect("8 bytes"))
    }

    /// Whether the buffer's page has moved since the program was loaded.
    fn moved(&self) -> Option<String> {
        match sys::phys_addr(self.buf.as_ptr() as usize) {
            Ok(now) if now == self.phys => None,
            Ok(now) => Some(format!("buffer moved from {:#x} to {now:#x}", self.phys)),
            Err(e) => Some(format!("buffer's physical address: {e}")),
        }
    }

    /// Fills the buffer, calls the program once and checks what it wrote
    /// back: the buffer's hash and its own call count. A failed jump
    /// returns the errno untouched, for callers that expect one.
    pub fn call(&mut self) -> Result<Result<(), String>, std::io::Error> {
        let call = self.calls + 1;
        for (i, b) in self.buf[..BUF_LEN].iter_mut().enumerate() {
            *b = crate::pattern(call, i as u64) as u8;
        }
        self.buf[BUF_LEN..].fill(0);
        // mlock() does not pin a page against migration: say so if the
        // program would hash a page that is no longer ours.
        if let Some(moved) = self.moved() {
            return Ok(Err(format!("call {call}: {moved} before the call")));
        }
        if self.kjump && call == 1 {
            let out = std::process::Command::new("kjump")
                .args(["call", "--resident", PATCHED])
                .output()?;
            if !out.status.success() {
                return Ok(Err(format!(
                    "kjump call --resident: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        } else {
            sys::kexec_exec()?;
        }
        if let Some(moved) = self.moved() {
            return Ok(Err(format!("call {call}: {moved} during the call")));
        }
        self.calls = call;
        let word =
            |at: usize| u64::from_le_bytes(self.buf[at..at + 8].try_into().expect("8 bytes"));
        let (hash, count) = (word(BUF_LEN), word(BUF_LEN + 8));
        let want = fnv1a(&self.buf[..BUF_LEN]);
        // Every call after the first enters at the re-entry point.
        let want_count = if self.reentry {
            call | (call - 1) << 32
        } else {
            call
        };
        if hash != want || count != want_count {
            return Ok(Err(format!(
                "call {call}: program returned hash {hash:#x} count {count:#x}, want {want:#x} count {want_count:#x}"
            )));
        }
        Ok(Ok(()))
    }
}

/// How `physcall` loads and calls the program.
pub struct How {
    /// The program leaves a re-entry point for the next call.
    pub reentry: bool,
    /// kjump loads it resident (`kjump call --resident`, then plain jumps).
    pub kjump: bool,
    /// Print the test device's switch cycles after every call.
    pub cycles: bool,
}

/// The call after which the memory check takes its first figures.
const WARM_UP: u64 = 10;

/// `physcall`: loads the program and calls it `calls` times.
pub fn run(elf: &Path, calls: u64, how: &How, mem_min: &str, mem_max: &str) -> Result<(), String> {
    let mut program = Program::load(elf, mem_min, mem_max, how.kjump)?;
    program.reentry = how.reentry;
    let mut first = None;
    for call in 1..=calls {
        // Where the reference's guest dies: shown, so that the tests can
        // tell that death from any other.
        if call == 2 {
            println!("physcall: calling 2");
            sys::drain_stdout();
        }
        program.call().map_err(|e| format!("call {call}: {e}"))??;
        if how.cycles {
            let c = fs::read_to_string("/sys/devices/kj_testdev0/switch_cycles")
                .map_err(|e| format!("switch_cycles: {e}"))?;
            println!("physcall: call {call} switch_cycles {}", c.trim());
        }
        if call == 1 || call % 10 == 0 {
            println!("physcall: call {call} ok");
            sys::drain_stdout();
        }
        // The kernel's memory after call 10 and after the last: nothing
        // else runs meanwhile, so a page kept per jump adds up to one per
        // call. Not after call 1: the first jumps set up once what later
        // ones reuse (up to 600 kB, measured), which would hide a leak.
        if call == WARM_UP && calls > 2 * WARM_UP {
            first = Some(MemStat::now()?);
        }
    }
    if let Some(first) = first {
        let last = MemStat::now()?;
        println!(
            "physcall: memory after call {WARM_UP}: {}; after call {calls}: {}",
            first.line(),
            last.line()
        );
    }
    println!("physcall: {calls} calls ok");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
