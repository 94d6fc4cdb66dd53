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
//! are from an emulated machine (TCG); only the ratios mean something,
//! each round of one kernel paired with the round of the other made next
//! to it.

use crate::stats::{self, show};
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
    tests::number_after(line, key).map(|n| n as f64)
}

/// One boot's figures: the ladder phases (ms), the switch and the memcpy
/// (TSC cycles; the switch needs the test devices, which c lacks).
struct Sample {
    phases: [f64; 3],
    switch: Option<f64>,
    memcpy: Option<f64>,
}

impl Sample {
    fn ladder(&self) -> f64 {
        self.phases.iter().sum()
    }
}

/// `rounds` boots of each of two kernels, one physical-mode call each.
/// Rounds alternate between the kernels (a, b, a, b..), so a busy spell of
/// the machine weighs on both alike and round i of each is a pair.
fn samples(ctxs: [&Ctx; 2], rounds: usize) -> Result<[Vec<Sample>; 2], String> {
    let pages = load_pages(&ctxs[0].bench_prog)?;
    let mut out: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=rounds {
        for (k, ctx) in ctxs.iter().enumerate() {
            let kernel = ctx.name;
            let lines = tests::one_physical_call(ctx, pages)
                .map_err(|f| format!("{kernel} round {round}: {}", f.reason))?;
            let missing = || format!("{kernel} round {round}: no phase mark in the console");
            out[k].push(Sample {
                phases: phases(&lines).ok_or_else(missing)?,
                switch: figure(&lines, "KJ: switch_cycles "),
                memcpy: figure(&lines, &format!("memcpy: {pages} pages ")),
            });
        }
    }
    Ok(out)
}

/// Prints one row: the two sides as min / median / max and a / b paired.
fn row(name: &str, a: &[f64], b: &[f64], div: f64, prec: usize) {
    println!(
        "{name:<34} {:>26} {:>26}   {}",
        show(a, div, prec),
        show(b, div, prec),
        stats::verdict(a, b)
    );
}

/// `kjtest bench`: ours and the reference, `rounds` boots each,
/// alternating; every figure as min / median / max, ours/ref paired.
pub fn run(ctx_for: impl Fn(&'static str) -> Ctx, rounds: usize) -> Result<(), String> {
    let (ours, reference) = (ctx_for("ours"), ctx_for("ref"));
    let [o, r] = samples([&ours, &reference], rounds)?;
    let pages = load_pages(&ours.bench_prog)?;
    println!("\n{rounds} boots per kernel, alternating (TCG), min / median / max:");
    println!("{:<34} {:>26} {:>26}   ours/ref, paired", "", "ours", "ref");
    for (i, name) in PHASES.iter().enumerate() {
        let (a, b): (Vec<f64>, Vec<f64>) = (
            o.iter().map(|x| x.phases[i]).collect(),
            r.iter().map(|x| x.phases[i]).collect(),
        );
        row(&format!("{name}, ms"), &a, &b, 1.0, 1);
    }
    let ladder = |v: &[Sample]| v.iter().map(Sample::ladder).collect::<Vec<_>>();
    row("whole ladder, ms", &ladder(&o), &ladder(&r), 1.0, 1);
    let all = |v: &[Sample], f: fn(&Sample) -> Option<f64>, what: &str| {
        v.iter()
            .map(f)
            .collect::<Option<Vec<f64>>>()
            .ok_or(format!("a boot printed no {what}"))
    };
    let (os, rs) = (
        all(&o, |x| x.switch, "switch")?,
        all(&r, |x| x.switch, "switch")?,
    );
    let (om, rm) = (
        all(&o, |x| x.memcpy, "memcpy")?,
        all(&r, |x| x.memcpy, "memcpy")?,
    );
    row("one switch, Mcycles", &os, &rs, 1e6, 2);
    row(
        &format!("memcpy of {pages} pages, Mcycles"),
        &om,
        &rm,
        1e6,
        2,
    );
    row(
        "switch / memcpy",
        &stats::paired(&os, &om),
        &stats::paired(&rs, &rm),
        1.0,
        1,
    );
    Ok(())
}

/// The ladder floor in the test command: the Rust sequence (ours) no
/// slower than the same series' C sequence (c), whole ladder, `rounds`
/// boots each, alternating; the rounds go to build/bench/ladder.tsv.
pub fn ladder_floor(ours: &Ctx, c: &Ctx, rounds: usize) -> Result<(), String> {
    use crate::floors::{judge, record, Bound, Outcome};
    let [o, r] = samples([ours, c], rounds)?;
    let ladder = |v: &[Sample]| v.iter().map(Sample::ladder).collect::<Vec<_>>();
    let (a, b) = (ladder(&o), ladder(&r));
    let mut series: Vec<(String, Vec<f64>)> = Vec::new();
    for (side, v) in [("Rust", &o), ("C", &r)] {
        for (i, name) in PHASES.iter().enumerate() {
            series.push((
                format!("{side}: {name}"),
                v.iter().map(|x| x.phases[i]).collect(),
            ));
        }
    }
    series.push(("Rust: whole ladder".into(), a.clone()));
    series.push(("C: whole ladder".into(), b.clone()));
    let named: Vec<(&str, &[f64])> = series
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    record("ladder", &named)?;
    println!("{rounds} boots each, alternating, min / median / max, ms:");
    println!(
        "{:<34} {:>26} {:>26}   Rust/C, paired",
        "", "Rust (ours)", "C (c)"
    );
    row("whole ladder", &a, &b, 1.0, 1);
    let (outcome, line) = judge("Rust ladder / C ladder", &a, &b, Bound::AtMost(1.0));
    println!("{line}");
    match outcome {
        Outcome::Missed => Err(line),
        _ => Ok(()),
    }
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
