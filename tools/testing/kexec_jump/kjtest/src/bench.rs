// SPDX-License-Identifier: GPL-2.0

//! `kjtest bench`: the cost of one physical-mode call, ours and the
//! reference in the same run, side by side with their ratio.
//!
//! - The suspend and resume ladder: both kernels print the same
//!   power-management messages, so its phases are read off their printk
//!   timestamps. (The processor-state restore resets sched_clock to where
//!   it was saved, so the time away in the image does not show there.)
//! - The switch: TSC cycles from the test device's syscore suspend to its
//!   syscore resume (the last step before the jump to the first after it:
//!   `machine_kexec()`, the trampoline swapping the program's pages out and
//!   back, the program). The program carries 1 MiB so the swap has work;
//!   the yardstick is a plain memcpy of as many pages, timed in the guest.
//!
//! One call per boot: the reference survives only its first call. Figures
//! are from an emulated machine (TCG); only the ratios mean something.

use crate::{tests, Ctx};
use std::{fs, path::Path};

/// Messages that open each phase, in order, and the phase they close.
const MARKS: [&str; 4] = [
    "Freezing user space processes",
    "Disabling non-boot CPUs",
    "Enabling non-boot CPUs",
    "Restarting tasks",
];

/// Phase names: from one mark to the next.
pub const PHASES: [&str; 3] = [
    "freeze + device suspend",
    "CPUs off, jump, CPUs back",
    "device resume",
];

/// The printk timestamp (seconds) at the start of `line`, `[   12.345]`.
fn printk_time(line: &str) -> Option<f64> {
    let inner = line.trim_start().strip_prefix('[')?;
    inner[..inner.find(']')?].trim().parse().ok()
}

/// Phase durations in ms from a console transcript, or None if a mark is
/// missing.
pub fn phases(lines: &[String]) -> Option<[f64; 3]> {
    let mut at = [0.0; 4];
    let mut from = 0;
    for (i, mark) in MARKS.iter().enumerate() {
        let k = lines[from..].iter().position(|l| l.contains(mark))? + from;
        at[i] = printk_time(&lines[k])?;
        from = k + 1;
    }
    Some([0, 1, 2].map(|i| (at[i + 1] - at[i]) * 1000.0))
}

/// Pages the kernel swaps for the program at `elf`: its PT_LOAD segments'
/// memory sizes, each rounded up to whole pages.
fn load_pages(elf: &Path) -> Result<usize, String> {
    let b = fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let num = |at: usize, len: usize| -> Option<u64> {
        let bytes = b.get(at..at + len)?;
        Some(bytes.iter().rev().fold(0, |v, x| v << 8 | u64::from(*x)))
    };
    let bad = || format!("{}: not a 64-bit ELF file", elf.display());
    if b.get(..5) != Some(b"\x7fELF\x02") {
        return Err(bad());
    }
    let (phoff, phentsize, phnum) = (
        num(0x20, 8).ok_or_else(bad)? as usize,
        num(0x36, 2).ok_or_else(bad)? as usize,
        num(0x38, 2).ok_or_else(bad)? as usize,
    );
    let mut pages = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if num(ph, 4).ok_or_else(bad)? == 1 {
            pages += num(ph + 0x28, 8).ok_or_else(bad)?.div_ceil(4096) as usize;
        }
    }
    Ok(pages)
}

/// The number after `key` on the first line that has it.
fn figure(lines: &[String], key: &str) -> Option<f64> {
    let line = lines.iter().find(|l| l.contains(key))?;
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One boot's figures: the ladder phases (ms), the switch and the memcpy
/// (TSC cycles).
struct Sample {
    phases: [f64; 3],
    switch: f64,
    memcpy: f64,
}

/// Runs `rounds` boots per kernel and prints the medians side by side.
pub fn run(ctx_for: impl Fn(&'static str) -> Ctx, rounds: usize) -> Result<(), String> {
    let pages = load_pages(&ctx_for("ours").bench_prog)?;
    // Rounds alternate between the kernels, so a busy spell of the
    // machine weighs on both alike.
    let kernels = ["ours", "ref"];
    let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=rounds {
        for (k, kernel) in kernels.iter().enumerate() {
            let ctx = ctx_for(kernel);
            let lines = tests::one_physical_call(&ctx, pages)
                .map_err(|f| format!("{kernel} round {round}: {}", f.reason))?;
            let missing = |what: &str| format!("{kernel} round {round}: no {what} in the console");
            samples[k].push(Sample {
                phases: phases(&lines).ok_or_else(|| missing("phase mark"))?,
                switch: figure(&lines, "KJ: switch_cycles ").ok_or_else(|| missing("switch"))?,
                memcpy: figure(&lines, &format!("memcpy: {pages} pages "))
                    .ok_or_else(|| missing("memcpy"))?,
            });
        }
    }
    let medians = samples.map(|s| {
        let phases = [0, 1, 2].map(|i| median(s.iter().map(|x| x.phases[i]).collect()));
        let switch = median(s.iter().map(|x| x.switch).collect());
        let memcpy = median(s.iter().map(|x| x.memcpy).collect());
        (phases, switch, memcpy)
    });
    let [(op, os, om), (rp, rs, rm)] = [medians[0], medians[1]];
    println!("\nmedian of {rounds} boots per kernel (TCG):");
    println!("{:<34} {:>12} {:>12} {:>9}", "", "ours", "ref", "ours/ref");
    for (i, name) in PHASES.iter().enumerate() {
        println!(
            "{:<34} {:>12.1} {:>12.1} {:>8.2}x",
            format!("{name}, ms"),
            op[i],
            rp[i],
            op[i] / rp[i]
        );
    }
    let (o, r): (f64, f64) = (op.iter().sum(), rp.iter().sum());
    println!(
        "{:<34} {o:>12.1} {r:>12.1} {:>8.2}x",
        "whole ladder, ms",
        o / r
    );
    println!(
        "{:<34} {os:>12.0} {rs:>12.0} {:>8.2}x",
        "one switch, cycles",
        os / rs
    );
    println!(
        "{:<34} {om:>12.0} {rm:>12.0} {:>8.2}x",
        format!("memcpy of {pages} pages, cycles"),
        om / rm
    );
    println!(
        "{:<34} {:>11.1}x {:>11.1}x",
        "switch / memcpy",
        os / om,
        rs / rm
    );
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn phases_from_printk() {
        let lines: Vec<String> = [
            "[    1.000000] Freezing user space processes",
            "noise",
            "[    1.250000] Disabling non-boot CPUs ...",
            "[    1.750000] Enabling non-boot CPUs ...",
            "[    2.000000] Restarting tasks ... done.",
        ]
        .map(String::from)
        .to_vec();
        let p = phases(&lines).unwrap();
        assert!((p[0] - 250.0).abs() < 1e-6 && (p[1] - 500.0).abs() < 1e-6);
        assert!(phases(&lines[..3]).is_none());
    }

    #[test]
    fn figures_are_found() {
        let lines = [
            "x",
            "KJ: switch_cycles 12345",
            "memcpy: 257 pages 999 cycles",
        ]
        .map(String::from);
        assert_eq!(figure(&lines, "KJ: switch_cycles "), Some(12345.0));
        assert_eq!(figure(&lines, "memcpy: 257 pages "), Some(999.0));
        assert_eq!(figure(&lines, "nothing "), None);
    }

    #[test]
    fn load_pages_of_a_built_program() {
        let elf = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../../target/kj/bench.elf"
        );
        // Built by scripts/build-harness.sh, which runs before the tests.
        assert_eq!(load_pages(Path::new(elf)), Ok(257));
        assert!(load_pages(Path::new(env!("CARGO_MANIFEST_DIR"))).is_err());
    }
}
