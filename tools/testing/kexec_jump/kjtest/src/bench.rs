// SPDX-License-Identifier: GPL-2.0

//! `kjtest bench`: the cost of the suspend and resume ladder around one
//! physical-mode call, ours and the reference in the same run.
//!
//! Both kernels print the same power-management messages, so the phases
//! are read off their printk timestamps. One call per boot: the reference
//! survives only its first call. Figures are from an emulated machine
//! (TCG); only the ratio means something.

use crate::{tests, Ctx};

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

/// Runs `rounds` boots per kernel and prints the median of each phase.
pub fn run(ctx_for: impl Fn(&'static str) -> Ctx, rounds: usize) -> Result<(), String> {
    let mut medians = Vec::new();
    for kernel in ["ours", "ref"] {
        let mut samples: Vec<[f64; 3]> = Vec::new();
        for round in 1..=rounds {
            let ctx = ctx_for(kernel);
            let lines = tests::one_physical_call(&ctx)
                .map_err(|f| format!("{kernel} round {round}: {}", f.reason))?;
            let p =
                phases(&lines).ok_or(format!("{kernel} round {round}: a phase mark is missing"))?;
            samples.push(p);
        }
        let median = [0, 1, 2].map(|i| {
            let mut v: Vec<f64> = samples.iter().map(|s| s[i]).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        });
        medians.push(median);
    }
    println!("\nmedian of {rounds} boots per kernel, ms (TCG):");
    println!(
        "{:<28} {:>10} {:>10} {:>8}",
        "phase", "ours", "ref", "ours/ref"
    );
    for (i, name) in PHASES.iter().enumerate() {
        let (o, r) = (medians[0][i], medians[1][i]);
        println!("{name:<28} {o:>10.1} {r:>10.1} {:>7.2}x", o / r);
    }
    let (o, r): (f64, f64) = (medians[0].iter().sum(), medians[1].iter().sum());
    println!("{:<28} {o:>10.1} {r:>10.1} {:>7.2}x", "whole ladder", o / r);
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
}
