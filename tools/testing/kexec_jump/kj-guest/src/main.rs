// SPDX-License-Identifier: GPL-2.0

//! `kj-guest`: the test guests' own program, built static.
//!
//! - `memhold --mib N --seed S --check FILE`: fill N MiB with a pattern,
//!   wait until FILE exists, then check every word.
//! - `meminfo FIELD`: print a /proc/meminfo field in kB.
//! - `free`: free memory in kB, counting the pages parked on the per-CPU
//!   lists (MemFree does not, and they come and go with every exit).
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
}

/// `LINUX_REBOOT_CMD_KEXEC` from include/uapi/linux/reboot.h.
const LINUX_REBOOT_CMD_KEXEC: i32 = 0x4558_4543;

fn exec() -> ExitCode {
    // SAFETY: reboot() takes no pointers; with this command it runs the
    // loaded kexec image and, for a jump, returns when it jumps back.
    let rc = unsafe { reboot(LINUX_REBOOT_CMD_KEXEC) };
    if rc == 0 {
        println!("exec: ok");
        return ExitCode::SUCCESS;
    }
    // SAFETY: __errno_location() returns this thread's errno slot.
    let errno = unsafe { *__errno_location() };
    println!(
        "exec: errno {errno} ({})",
        std::io::Error::from_raw_os_error(errno)
    );
    ExitCode::FAILURE
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
