// SPDX-License-Identifier: GPL-2.0

//! `kj-guest`: the test guests' own program, built static.
//!
//! - `pattern --mib N --seed S`: write memhold's N MiB to stdout (the
//!   harness runs it on the host to search a disk for them).
//! - `memhold --mib N --seed S --check FILE [--mix]`: fill N MiB with a
//!   pattern (with `--mix`, the mixed workload of `mix.rs`), wait until
//!   FILE exists, then check every word.
//! - `mixed --mib N --seed S`: write the mixed workload to stdout (the
//!   harness makes a disk of it, for a page cache that is not random).
//! - `meminfo FIELD`: print a /proc/meminfo field in kB.
//! - `zero-check --mib N`: N MiB of fresh anonymous pages must read as
//!   zero (the kernel hands them out with `__GFP_ZERO`).
//! - `free`: free memory in kB, counting the pages parked on the per-CPU
//!   lists (MemFree does not, and they come and go with every exit).
//! - `physcall --elf FILE --calls N`: load the physical-mode checksum
//!   program with kexec-tools, call it N times through kexec jump, and
//!   check each result it wrote into this process's memory.
//! - `find FILE TEXT`: whether TEXT occurs in FILE (read as a stream, so
//!   it works on /proc/vmcore).
//! - `drain`: wait until the console has sent what was written to it.
//! - `exec`: `reboot(LINUX_REBOOT_CMD_KEXEC)`, printing the real errno
//!   (kexec-tools prints a stale one after a jump that came back).
//! - `events --elf FILE`: one call of the program; the test devices' logs.
//! - `unwind --elf FILE --steps devN:callback,...`: make each callback fail
//!   in turn and start the program; errno and the devices' logs each time.
//! - `busy --mem ADDR --size BYTES`: `kexec -e` while a crash image load
//!   into [ADDR, ADDR + BYTES) holds the kexec lock must get EBUSY.
//! - `race --elf FILE`: two threads start the program at once; prints
//!   what each got and how many calls the program counted.
//! - `markfile DIR TEXT ABOVE`: a page-cache page holding TEXT where a
//!   preserve-context dump has A's memory; print its physical address.
//! - `vmcore-at ADDR`: what /proc/vmcore holds at physical ADDR.
//! - `vmcore-ram`: bytes of RAM the dump holds (direct-map PT_LOADs).
//! - `fuzz --seed S --secs T`: bad kexec_load() input, named and random.
//! - `fill-limit`: fills of a ranges image do not count against
//!   `kexec_load_limit_reboot` (sets it to 2: run last).
//! - `resident-efault`: a resident reload whose last buffer is unmapped
//!   gets EFAULT and leaves the loaded resident image whole.
//! - `platform --elf FILE`: one call of phys_call/platform.S; during it no
//!   PCI function on bus 0 masters the bus and no ACPI GPE is enabled.
//! - `clock`: CLOCK_MONOTONIC in ns.
//! - `memcpy --pages N`: TSC cycles of a plain copy of N pages (the best
//!   of several), the benchmark's yardstick for a jump's page swap.

mod busy;
mod fuzz;
mod memstat;
mod mix;
mod physcall;
mod platform;
mod sys;
mod tags;
mod testdev;
mod vmcore;

use std::{env, fs, path::Path, process::ExitCode, thread, time::Duration};

fn usage() -> ExitCode {
    eprintln!(
        "usage: kj-guest memhold --mib N --seed S --check FILE [--mlock | --mix] | pattern --mib N --seed S | mixed --mib N --seed S | fragment --mib N | meminfo FIELD | free | zero-check --mib N | \
         find FILE TEXT | drain | exec | physcall --elf FILE --calls N [--reentry] [--kjump] [--cycles] | events --elf FILE | \
         unwind --elf FILE --steps LIST | race --elf FILE | markfile DIR TEXT ABOVE | vmcore-at ADDR | vmcore-ram | fuzz --seed S --secs T | fill-limit | resident-efault | platform --elf FILE | clock | tsc | tagfill --mib N --nonce X --check FILE | tagscan NONCE | busy --mem ADDR --size BYTES | memcpy --pages N"
    );
    ExitCode::from(2)
}

/// Prints `name: FAIL reason` for an error; the exit code says which.
fn report(name: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{name}: FAIL {e}");
            ExitCode::FAILURE
        }
    }
}

/// A number in decimal or 0x-prefixed hexadecimal.
fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The pattern word at `index` for `seed` (splitmix64: cheap, no repeats).
pub(crate) fn pattern(seed: u64, index: u64) -> u64 {
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

/// memhold's `--mix`: the mixed workload instead of the pattern.
fn memhold_mixed(mib: usize, seed: u64, check: &Path) -> ExitCode {
    let code = match mix::code() {
        Ok(c) => c,
        Err(e) => {
            println!("memhold: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pages = std::hint::black_box(mix::fill(seed, mib, &code));
    println!("memhold: filled {mib} MiB seed {seed} (mixed)");
    while !check.exists() {
        thread::sleep(Duration::from_millis(100));
    }
    match mix::first_mismatch(seed, &pages, &code) {
        None => {
            println!("memhold: intact {mib} MiB");
            ExitCode::SUCCESS
        }
        Some(at) => {
            println!("memhold: CORRUPT at byte offset {at:#x}");
            ExitCode::FAILURE
        }
    }
}

fn memhold(mib: usize, seed: u64, check: &Path, lock: bool) -> ExitCode {
    let mut words: Vec<u64> = (0..mib * (1 << 17))
        .map(|i| pattern(seed, i as u64))
        .collect();
    std::hint::black_box(&mut words);
    if lock {
        if let Err(e) = sys::mlock_range(words.as_ptr().cast(), words.len() * 8) {
            println!("memhold: mlock: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "memhold: filled {mib} MiB seed {seed}{}",
        if lock { " (mlocked)" } else { "" }
    );
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

/// `fragment --mib N`: touches N MiB, gives back every other 64 KiB of it
/// and holds the rest until killed: A's used memory in many small
/// pieces, so that a hibernation image of A has many ranges.
fn fragment(mib: usize) -> ExitCode {
    const PIECE: usize = 64 << 10;
    // munmap, not madvise: the test kernels have no madvise().
    let len = mib << 20;
    let base = match sys::map_anon(len) {
        Ok(p) => p,
        Err(e) => {
            println!("fragment: mmap: {e}");
            return ExitCode::FAILURE;
        }
    };
    for off in (0..len).step_by(4096) {
        // SAFETY: `base` is `len` writable bytes of our own mapping.
        unsafe { base.add(off).write(1) };
    }
    for off in (0..len).step_by(2 * PIECE) {
        if off + 2 * PIECE <= len {
            // SAFETY: inside the mapping, page aligned; never used again.
            if let Err(e) = sys::unmap(unsafe { base.add(off + PIECE) }, PIECE) {
                println!("fragment: munmap: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("fragment: holding {} KiB in 64 KiB pieces", (mib << 10) / 2);
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

fn meminfo(field: &str) -> ExitCode {
    let text = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    match memstat::field(&text, field) {
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

/// Maps `mib` MiB of fresh anonymous pages and counts the pages that do
/// not read as zero.
fn zero_check(mib: usize) -> Result<(), String> {
    let len = mib << 20;
    let p = sys::map_anon_populated(len).map_err(|e| format!("mmap {mib} MiB: {e}"))?;
    // SAFETY: `p` is a fresh mapping of `len` bytes, readable, that
    // nothing else refers to; it is unmapped only after the last use of
    // `words`.
    let words = unsafe { std::slice::from_raw_parts(p.cast::<u64>(), len / 8) };
    let dirty = words
        .chunks(4096 / 8)
        .filter(|page| page.iter().any(|&w| std::hint::black_box(w) != 0))
        .count();
    sys::unmap(p.cast_mut(), len).map_err(|e| format!("munmap: {e}"))?;
    if dirty > 0 {
        return Err(format!("{dirty} of {} fresh pages not zero", len / 4096));
    }
    println!("zero-check: {mib} MiB of fresh pages all zero");
    Ok(())
}

fn free() -> ExitCode {
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let zoneinfo = fs::read_to_string("/proc/zoneinfo").unwrap_or_default();
    let Some(kb) = memstat::field(&meminfo, "MemFree") else {
        eprintln!("free: no MemFree in /proc/meminfo");
        return ExitCode::FAILURE;
    };
    println!("free: {} kB", kb + memstat::pcp_pages(&zoneinfo) * 4);
    ExitCode::SUCCESS
}

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
        if let Some(i) = memchr::memmem::find(&carry, needle) {
            return Ok(Some(base + i as u64));
        }
        let keep = carry.len().min(needle.len() - 1);
        base += (carry.len() - keep) as u64;
        carry.drain(..carry.len() - keep);
    }
}

/// The fewest TSC cycles one copy of `pages` pages took, in 20 tries.
fn memcpy_cycles(pages: usize) -> u64 {
    let src = vec![0x5au8; pages * 4096];
    let mut dst = vec![0u8; pages * 4096];
    (0..20)
        .map(|_| {
            // SAFETY: reading the time-stamp counter has no side effects.
            let start = unsafe { std::arch::x86_64::_rdtsc() };
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&mut dst);
            // SAFETY: as above.
            unsafe { std::arch::x86_64::_rdtsc() }.wrapping_sub(start)
        })
        .min()
        .unwrap_or(0)
}

fn exec() -> ExitCode {
    match sys::kexec_exec() {
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
        // The bytes memhold holds, on stdout: the harness runs this on
        // the host to know what to look for on a disk.
        Some("pattern") => {
            let (Some(mib), Some(seed)) = (
                opt("--mib").and_then(|v| v.parse::<u64>().ok()),
                opt("--seed").and_then(|v| v.parse().ok()),
            ) else {
                return usage();
            };
            let bytes: Vec<u8> = (0..mib << 17)
                .flat_map(|i| pattern(seed, i).to_le_bytes())
                .collect();
            match std::io::Write::write_all(&mut std::io::stdout(), &bytes) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pattern: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("memhold") => {
            let (Some(mib), Some(seed), Some(check)) = (
                opt("--mib").and_then(|v| v.parse().ok()),
                opt("--seed").and_then(|v| v.parse().ok()),
                opt("--check"),
            ) else {
                return usage();
            };
            if args.iter().any(|a| a == "--mix") {
                return memhold_mixed(mib, seed, Path::new(&check));
            }
            memhold(
                mib,
                seed,
                Path::new(&check),
                args.iter().any(|a| a == "--mlock"),
            )
        }
        Some("mixed") => {
            let (Some(mib), Some(seed)) = (
                opt("--mib").and_then(|v| v.parse().ok()),
                opt("--seed").and_then(|v| v.parse().ok()),
            ) else {
                return usage();
            };
            let pages = mix::code().map(|code| mix::fill(seed, mib, &code));
            let write = |pages: Vec<mix::Page>| {
                let mut out = std::io::stdout().lock();
                pages
                    .iter()
                    .try_for_each(|p| std::io::Write::write_all(&mut out, &p.0))
            };
            match pages.and_then(write) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mixed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("meminfo") if args.len() == 2 => meminfo(&args[1]),
        Some("fragment") => match opt("--mib").and_then(|v| v.parse().ok()) {
            Some(mib) => fragment(mib),
            None => usage(),
        },
        Some("free") => free(),
        Some("zero-check") => match opt("--mib").and_then(|v| v.parse().ok()) {
            Some(mib) => report("zero-check", zero_check(mib)),
            None => usage(),
        },
        Some("fuzz") => {
            let seed = opt("--seed").and_then(|v| parse_num(&v)).unwrap_or(1);
            let secs = opt("--secs").and_then(|v| v.parse().ok()).unwrap_or(20);
            match fuzz::run(seed, secs) {
                Ok(s) => {
                    println!("fuzz: {s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("fuzz: FAILED {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("platform") => match opt("--elf") {
            Some(elf) => report("platform", platform::run(Path::new(&elf))),
            None => usage(),
        },
        Some("resident-efault") => match fuzz::resident_efault() {
            Ok(s) => {
                println!("resident-efault: {s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("resident-efault: FAILED {e}");
                ExitCode::FAILURE
            }
        },
        Some("fill-limit") => match fuzz::fill_limit() {
            Ok(s) => {
                println!("fill-limit: {s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("fill-limit: FAILED {e}");
                ExitCode::FAILURE
            }
        },
        Some("tagfill") => {
            let (Some(mib), Some(nonce), Some(check)) = (
                opt("--mib").and_then(|v| v.parse().ok()),
                opt("--nonce").as_deref().and_then(parse_num),
                opt("--check"),
            ) else {
                return usage();
            };
            report("tagfill", tags::fill(mib, nonce, Path::new(&check)))
        }
        Some("tagscan") if args.len() == 2 => match parse_num(&args[1]) {
            Some(nonce) => match tags::scan(nonce) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => report("tagscan", Err(e)),
            },
            None => usage(),
        },
        Some("tsc") => {
            // SAFETY: rdtsc has no preconditions on x86_64 (CR4.TSD is
            // clear in Linux user space).
            println!("tsc: {}", unsafe { std::arch::x86_64::_rdtsc() });
            ExitCode::SUCCESS
        }
        Some("clock") => {
            println!("clock: monotonic {} ns", sys::monotonic_ns());
            ExitCode::SUCCESS
        }
        Some("vmcore-ram") => match vmcore::vmcore_ram() {
            Ok(n) => {
                println!("vmcore-ram: {n}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("vmcore-ram: {e}");
                ExitCode::FAILURE
            }
        },
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
        Some(cmd @ ("physcall" | "events" | "unwind" | "race")) => {
            let Some(elf) = opt("--elf") else {
                return usage();
            };
            let elf = Path::new(&elf);
            let mem_min = opt("--mem-min").unwrap_or_else(|| "0x1000000".into());
            let mem_max = opt("--mem-max").unwrap_or_else(|| "0x10fffff".into());
            let result = match cmd {
                "physcall" => match opt("--calls").and_then(|v| v.parse().ok()) {
                    Some(calls) => {
                        let flag = |f: &str| args.iter().any(|a| a == f);
                        let how = physcall::How {
                            reentry: flag("--reentry"),
                            kjump: flag("--kjump"),
                            cycles: flag("--cycles"),
                        };
                        physcall::run(elf, calls, &how, &mem_min, &mem_max)
                    }
                    None => return usage(),
                },
                "events" => testdev::events(elf, &mem_min, &mem_max),
                "race" => busy::race(elf, &mem_min, &mem_max),
                _ => match opt("--steps") {
                    Some(steps) => {
                        let steps: Vec<String> = steps.split(',').map(String::from).collect();
                        testdev::unwind(elf, &steps, &mem_min, &mem_max)
                    }
                    None => return usage(),
                },
            };
            report(cmd, result)
        }
        Some("markfile") if args.len() == 4 => {
            let Some(above) = parse_num(&args[3]) else {
                return usage();
            };
            match vmcore::markfile(&args[1], &args[2], above) {
                Ok(a) => {
                    println!("{a:#x}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("markfile: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("vmcore-at") if args.len() == 2 => {
            match parse_num(&args[1])
                .ok_or("bad address".to_string())
                .and_then(vmcore::vmcore_at)
            {
                Ok(s) => {
                    println!("vmcore-at: {s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("vmcore-at: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("memcpy") => match opt("--pages").and_then(|v| v.parse().ok()) {
            Some(pages) => {
                println!("memcpy: {pages} pages {} cycles", memcpy_cycles(pages));
                ExitCode::SUCCESS
            }
            None => usage(),
        },
        Some("busy") => {
            let (Some(mem), Some(size)) = (
                opt("--mem").as_deref().and_then(parse_num),
                opt("--size").as_deref().and_then(parse_num),
            ) else {
                return usage();
            };
            report("busy", busy::run(mem, size as usize))
        }
        Some("exec") => exec(),
        Some("drain") => {
            sys::drain_stdout();
            ExitCode::SUCCESS
        }
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
    fn numbers_parse_in_both_bases() {
        assert_eq!(parse_num("0x10000000"), Some(0x1000_0000));
        assert_eq!(parse_num("4096"), Some(4096));
        assert_eq!(parse_num("0xg"), None);
    }
}
