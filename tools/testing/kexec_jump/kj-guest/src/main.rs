// SPDX-License-Identifier: GPL-2.0

//! `kj-guest`: the test guests' own program, built static.
//!
//! - `memhold --mib N --seed S --check FILE`: fill N MiB with a pattern,
//!   wait until FILE exists, then check every word.
//! - `meminfo FIELD`: print a /proc/meminfo field in kB.
//! - `free`: free memory in kB, counting the pages parked on the per-CPU
//!   lists (MemFree does not, and they come and go with every exit).
//! - `physcall --elf FILE --calls N`: load the physical-mode checksum
//!   program with kexec-tools, call it N times through kexec jump, and
//!   check each result it wrote into this process's memory.
//! - `find FILE TEXT`: whether TEXT occurs in FILE (read as a stream, so
//!   it works on /proc/vmcore).
//! - `exec`: `reboot(LINUX_REBOOT_CMD_KEXEC)`, printing the real errno
//!   (kexec-tools prints a stale one after a jump that came back).

use std::{env, fs, path::Path, process::ExitCode, thread, time::Duration};

fn usage() -> ExitCode {
    eprintln!(
        "usage: kj-guest memhold --mib N --seed S --check FILE | meminfo FIELD | free | exec"
    );
    ExitCode::from(2)
}

/// The pattern word at `index` for `seed` (splitmix64: cheap, no repeats).
fn pattern(seed: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(index.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Index of the first word of `words` that differs from the pattern.
fn first_mismatch(words: &[u64], seed: u64) -> Option<usize> {
    words
        .iter()
        .enumerate()
        .find(|(i, w)| std::hint::black_box(**w) != pattern(seed, *i as u64))
        .map(|(i, _)| i)
}

fn memhold(mib: usize, seed: u64, check: &Path) -> ExitCode {
    let mut words: Vec<u64> = (0..mib * (1 << 17))
        .map(|i| pattern(seed, i as u64))
        .collect();
    std::hint::black_box(&mut words);
    println!("memhold: filled {mib} MiB seed {seed}");
    while !check.exists() {
        thread::sleep(Duration::from_millis(100));
    }
    match first_mismatch(&words, seed) {
        None => {
            println!("memhold: intact {mib} MiB");
            ExitCode::SUCCESS
        }
        Some(i) => {
            println!(
                "memhold: CORRUPT at byte offset {:#x} (want {:#x} got {:#x})",
                i * 8,
                pattern(seed, i as u64),
                words[i]
            );
            ExitCode::FAILURE
        }
    }
}

/// The value in kB of `field` in a /proc/meminfo text.
fn meminfo_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        (name == field).then(|| rest.split_whitespace().next()?.parse().ok())?
    })
}

fn meminfo(field: &str) -> ExitCode {
    let text = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    match meminfo_field(&text, field) {
        Some(kb) => {
            println!("meminfo: {field} {kb}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("meminfo: no field {field} in /proc/meminfo");
            ExitCode::FAILURE
        }
    }
}

/// Pages on the per-CPU free lists, summed from a /proc/zoneinfo text.
fn pcp_pages(zoneinfo: &str) -> u64 {
    zoneinfo
        .lines()
        .filter_map(|l| l.trim().strip_prefix("count:"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

fn free() -> ExitCode {
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let zoneinfo = fs::read_to_string("/proc/zoneinfo").unwrap_or_default();
    let Some(kb) = meminfo_field(&meminfo, "MemFree") else {
        eprintln!("free: no MemFree in /proc/meminfo");
        return ExitCode::FAILURE;
    };
    println!("free: {} kB", kb + pcp_pages(&zoneinfo) * 4);
    ExitCode::SUCCESS
}

extern "C" {
    fn reboot(cmd: i32) -> i32;
    fn __errno_location() -> *mut i32;
    fn mlock(addr: *const u8, len: usize) -> i32;
}

/// `LINUX_REBOOT_CMD_KEXEC` from include/uapi/linux/reboot.h.
const LINUX_REBOOT_CMD_KEXEC: i32 = 0x4558_4543;

/// Offset of the first `needle` in `reader`, read in chunks.
fn find_in(mut reader: impl std::io::Read, needle: &[u8]) -> std::io::Result<Option<u64>> {
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    let mut base = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        carry.extend_from_slice(&buf[..n]);
        if let Some(i) = carry.windows(needle.len()).position(|w| w == needle) {
            return Ok(Some(base + i as u64));
        }
        let keep = carry.len().min(needle.len() - 1);
        base += (carry.len() - keep) as u64;
        carry.drain(..carry.len() - keep);
    }
}

/// FNV-1a, 64 bit: what the physical-mode program computes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Physical address of the page holding `addr`, from /proc/self/pagemap.
fn phys_addr(addr: usize) -> Result<u64, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open("/proc/self/pagemap").map_err(|e| format!("pagemap: {e}"))?;
    let mut entry = [0u8; 8];
    f.seek(SeekFrom::Start((addr / 4096 * 8) as u64))
        .and_then(|_| f.read_exact(&mut entry))
        .map_err(|e| format!("pagemap: {e}"))?;
    let e = u64::from_le_bytes(entry);
    if e >> 63 == 0 || e & ((1 << 55) - 1) == 0 {
        return Err(format!("pagemap: page at {addr:#x} not present ({e:#x})"));
    }
    Ok((e & ((1 << 55) - 1)) * 4096 + (addr % 4096) as u64)
}

/// Calls `reboot(LINUX_REBOOT_CMD_KEXEC)`; the errno on failure.
fn kexec_exec() -> Result<(), std::io::Error> {
    // SAFETY: reboot() takes no pointers; with this command it runs the
    // loaded kexec image and, for a jump, returns when it jumps back.
    if unsafe { reboot(LINUX_REBOOT_CMD_KEXEC) } == 0 {
        return Ok(());
    }
    // SAFETY: __errno_location() returns this thread's errno slot.
    Err(std::io::Error::from_raw_os_error(unsafe {
        *__errno_location()
    }))
}

/// Bytes of the buffer the program hashes; its results follow them.
const BUF_LEN: usize = 4096 - 16;

fn physcall(elf: &Path, calls: u64, mem_min: &str, mem_max: &str) -> Result<(), String> {
    // One locked page: the program reads and writes it by physical address.
    let layout = std::alloc::Layout::from_size_align(4096, 4096).expect("page layout");
    // SAFETY: the layout has a non-zero size.
    let page = unsafe { std::alloc::alloc_zeroed(layout) };
    if page.is_null() {
        return Err("out of memory".into());
    }
    // SAFETY: `page` is a live 4096-byte allocation, never freed.
    let buf = unsafe { std::slice::from_raw_parts_mut(page, 4096) };
    // SAFETY: locks our own live page in place.
    if unsafe { mlock(page, 4096) } != 0 {
        return Err(format!("mlock: {}", std::io::Error::last_os_error()));
    }
    let phys = phys_addr(page as usize)?;

    let mut image = fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let at = image
        .windows(8)
        .position(|w| w == b"KJPARAMS")
        .ok_or("no KJPARAMS tag in the program")?
        + 8;
    image[at..at + 8].copy_from_slice(&phys.to_le_bytes());
    image[at + 8..at + 16].copy_from_slice(&(BUF_LEN as u64).to_le_bytes());
    let patched = "/tmp/physcall.elf";
    fs::write(patched, &image).map_err(|e| format!("{patched}: {e}"))?;
    let out = std::process::Command::new("kexec")
        .args(["--load-preserve-context", "--args-none", patched])
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
    println!("physcall: loaded, buffer at physical {phys:#x}");

    for call in 1..=calls {
        for (i, b) in buf[..BUF_LEN].iter_mut().enumerate() {
            *b = pattern(call, i as u64) as u8;
        }
        buf[BUF_LEN..].fill(0);
        kexec_exec().map_err(|e| format!("call {call}: {e}"))?;
        let word = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
        let (hash, count) = (word(BUF_LEN), word(BUF_LEN + 8));
        let want = fnv1a(&buf[..BUF_LEN]);
        if hash != want || count != call {
            return Err(format!(
                "call {call}: program returned hash {hash:#x} count {count}, want {want:#x} count {call}"
            ));
        }
        if call == 1 || call % 10 == 0 {
            println!("physcall: call {call} ok");
        }
    }
    println!("physcall: {calls} calls ok");
    Ok(())
}

fn exec() -> ExitCode {
    match kexec_exec() {
        Ok(()) => {
            println!("exec: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("exec: errno {} ({e})", e.raw_os_error().unwrap_or(0));
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let opt = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    match args.first().map(String::as_str) {
        Some("memhold") => {
            let (Some(mib), Some(seed), Some(check)) = (
                opt("--mib").and_then(|v| v.parse().ok()),
                opt("--seed").and_then(|v| v.parse().ok()),
                opt("--check"),
            ) else {
                return usage();
            };
            memhold(mib, seed, Path::new(&check))
        }
        Some("meminfo") if args.len() == 2 => meminfo(&args[1]),
        Some("free") => free(),
        Some("find") if args.len() == 3 && !args[2].is_empty() => {
            match fs::File::open(&args[1]).and_then(|f| find_in(f, args[2].as_bytes())) {
                Ok(Some(at)) => println!("find: found at offset {at:#x}"),
                Ok(None) => println!("find: not found"),
                Err(e) => {
                    println!("find: {}: {e}", args[1]);
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Some("physcall") => {
            let (Some(elf), Some(calls)) =
                (opt("--elf"), opt("--calls").and_then(|v| v.parse().ok()))
            else {
                return usage();
            };
            let mem_min = opt("--mem-min").unwrap_or_else(|| "0x1000000".into());
            let mem_max = opt("--mem-max").unwrap_or_else(|| "0x10fffff".into());
            match physcall(Path::new(&elf), calls, &mem_min, &mem_max) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    println!("physcall: FAIL {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("exec") => exec(),
        _ => usage(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_differs_by_seed_and_index() {
        assert_ne!(pattern(1, 0), pattern(2, 0));
        assert_ne!(pattern(1, 0), pattern(1, 1));
    }

    #[test]
    fn mismatch_is_found() {
        let mut words: Vec<u64> = (0..1000).map(|i| pattern(7, i)).collect();
        assert_eq!(first_mismatch(&words, 7), None);
        words[617] ^= 1;
        assert_eq!(first_mismatch(&words, 7), Some(617));
    }

    #[test]
    fn find_spans_chunk_edges() {
        let mut data = vec![0u8; (1 << 20) + 10];
        data[(1 << 20) - 3..(1 << 20) + 3].copy_from_slice(b"KJMARK");
        assert_eq!(find_in(&data[..], b"KJMARK").unwrap(), Some((1 << 20) - 3));
        assert_eq!(find_in(&data[..], b"NOPE").unwrap(), None);
    }

    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn pcp_counts_are_summed() {
        let z = "Node 0, zone DMA32\n  pagesets\n    cpu: 0\n              count: 10\n              high:  20\n    cpu: 1\n              count: 5\n";
        assert_eq!(pcp_pages(z), 15);
    }

    #[test]
    fn meminfo_parses() {
        let text = "MemTotal:        1000 kB\nMemFree:          234 kB\n";
        assert_eq!(meminfo_field(text, "MemFree"), Some(234));
        assert_eq!(meminfo_field(text, "Cached"), None);
    }
}
