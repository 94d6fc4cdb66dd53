// SPDX-License-Identifier: GPL-2.0

//! The ladder as the test devices see it: callback order, and every
//! step failing in turn.

use super::guest::{boot_with_program, boot_with_program_on};
use super::verdict::{TestResult, Verdict};
use crate::Ctx;

/// What `name=[...]` holds in a line of the guest's.
fn bracketed<'a>(line: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let start = line.find(&format!("{name}=["))? + name.len() + 2;
    let len = line[start..].find(']')?;
    Some(line[start..start + len].split_whitespace().collect())
}

/// The ladder as the test devices see it, for one jump that goes well:
/// each device also has a syscore entry, run with one CPU and interrupts
/// off between the noirq phases.
const DEV0_JUMP: &str = "prepare freeze freeze_late freeze_noirq syscore_suspend \
                         syscore_resume restore_noirq restore_early restore complete";
const DEV1_JUMP: &str = DEV0_JUMP;

/// One jump (a physical-mode call): each test device is prepared, frozen
/// (normal, late, noirq), its syscore step is suspended and resumed, and it
/// is restored in the exact reverse order, then completed.
pub(super) fn device_callbacks_in_order(ctx: &Ctx) -> TestResult {
    let mut g = boot_with_program(ctx, "kj-guest events --elf /boot/checksum.elf", "")?;
    let l = g.step("events: call ok", 300)?;
    for (dev, want) in [("dev0", DEV0_JUMP), ("dev1", DEV1_JUMP)] {
        let got = bracketed(&l, dev).unwrap_or_default().join(" ");
        if got != want {
            return Err(g.fail(format!("{dev} saw [{got}], want [{want}]")));
        }
    }
    if !l.contains("cpus=0-1") {
        return Err(g.fail(format!("want both CPUs back: {l}")));
    }
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

/// Checks that a device's log leaves every step it entered: each
/// suspend-side callback that succeeded is undone by its resume-side
/// partner (from the PM core's own recovery or from the caller), innermost
/// first. `failed` is the callback that was made to fail: never entered.
fn unwound(events: &[&str], failed: &str) -> Result<(), String> {
    const PAIRS: [(&str, &[&str]); 5] = [
        ("prepare", &["complete"]),
        ("freeze", &["thaw", "restore"]),
        ("freeze_late", &["thaw_early", "restore_early"]),
        ("freeze_noirq", &["thaw_noirq", "restore_noirq"]),
        ("syscore_suspend", &["syscore_resume"]),
    ];
    let mut entered: Vec<&str> = Vec::new();
    let mut failed_seen = false;
    for e in events {
        if *e == failed && !failed_seen {
            failed_seen = true;
        } else if PAIRS.iter().any(|(s, _)| s == e) {
            entered.push(e);
        } else {
            let top = entered
                .pop()
                .ok_or(format!("{e} without a step to leave"))?;
            let (_, undo) = PAIRS.iter().find(|(s, _)| *s == top).expect("pushed");
            if !undo.contains(e) {
                return Err(format!("{e} while {top} was the step to leave"));
            }
        }
    }
    match entered.last() {
        Some(left) => Err(format!("{left} never undone")),
        None => Ok(()),
    }
}

/// The failures injected, in order: `devN:callback`. Device 1 is frozen
/// before device 0 in each phase but prepared after it, so each failure
/// finds the other device already in the step.
const UNWIND_STEPS: [&str; 9] = [
    "dev0:freeze_late",
    "dev0:freeze_noirq",
    "dev0:cpu_offline",
    "dev0:syscore_suspend",
    "dev1:syscore_suspend",
    "dev1:freeze_late",
    "dev1:freeze_noirq",
    "dev1:prepare",
    "dev0:freeze",
];

/// The steps at which the reference leaves devices suspended: those where
/// dpm_suspend_start() fails.
const REF_LEAKING_STEPS: [&str; 2] = ["dev1:prepare", "dev0:freeze"];

/// Each step of the ladder fails in turn, on a guest with 4 CPUs: a
/// device callback, taking the last CPU offline (after CPUs 1 and 2 went
/// down), device 0's syscore entry (the first to suspend) and device 1's
/// (after device 0's) return -EIO. kexec -e returns EIO, the callback made
/// to fail ran, both devices leave every step they entered, all 4 CPUs are
/// online, and user space runs on; afterwards a jump works.
pub(super) fn failed_step_unwinds(ctx: &Ctx) -> TestResult {
    let cmd = format!(
        "kj-guest unwind --elf /boot/checksum.elf --steps {}",
        UNWIND_STEPS.join(",")
    );
    let mut g = boot_with_program_on(ctx, &cmd, "", 4)?;
    let mut leaks = Vec::new();
    // Faults whose kexec -e returned, and of those, the ones whose every
    // entered callback was undone with all CPUs back.
    let (mut injected, mut unwound_steps) = (0, 0);
    let mut tally =
        crate::report::Tally::new("ladder faults injected / unwound", ctx.name, "0 / 0".into());
    for step in UNWIND_STEPS {
        let l = g.step(&format!("unwind: {step} "), 300)?;
        injected += 1;
        tally.value = format!("{injected} / {unwound_steps}");
        if !l.contains(" errno 5 ") {
            return Err(g.fail(format!("want EIO from kexec -e: {l}")));
        }
        if !l.contains("cpus=0-3") {
            return Err(g.fail(format!("want all 4 CPUs back: {l}")));
        }
        let cpus = l
            .split_whitespace()
            .find(|w| w.starts_with("cpus="))
            .unwrap_or("");
        println!(
            "    fault {step:<22} -> errno 5, {cpus}, dev0=[{}] dev1=[{}]",
            bracketed(&l, "dev0").unwrap_or_default().join(" "),
            bracketed(&l, "dev1").unwrap_or_default().join(" ")
        );
        let failed = step.split_once(':').map_or("", |(_, c)| c);
        let leaks_before = leaks.len();
        for dev in ["dev0", "dev1"] {
            let events = bracketed(&l, dev).unwrap_or_default();
            let failed_here = if step.starts_with(dev) { failed } else { "" };
            if !failed_here.is_empty() && !events.contains(&failed_here) {
                return Err(g.fail(format!(
                    "{step}: the callback made to fail never ran: {dev}=[{}]",
                    events.join(" ")
                )));
            }
            if let Err(e) = unwound(&events, failed_here) {
                leaks.push(format!("{step}: {dev} {e} [{}]", events.join(" ")));
            }
        }
        if leaks.len() == leaks_before {
            unwound_steps += 1;
            tally.value = format!("{injected} / {unwound_steps}");
        }
    }
    // The upstream ladder does not resume devices when
    // dpm_suspend_start() fails: they stay prepared or frozen. Exactly
    // those steps leak there, each of them, and no other.
    let leaking_steps = |step: &str| leaks.iter().any(|l| l.starts_with(&format!("{step}: ")));
    if !leaks.is_empty() {
        let documented = UNWIND_STEPS
            .iter()
            .all(|s| leaking_steps(s) == REF_LEAKING_STEPS.contains(s));
        if ctx.name == "ref" && documented {
            return Ok(Verdict::Known(format!(
                "devices left suspended after dpm_suspend_start() fails: {}",
                leaks.join("; ")
            )));
        }
        return Err(g.fail(leaks.join("; ")));
    }
    let l = g.step("unwind: call ok", 300)?;
    for (dev, want) in [("dev0", DEV0_JUMP), ("dev1", DEV1_JUMP)] {
        let got = bracketed(&l, dev).unwrap_or_default().join(" ");
        if got != want {
            return Err(g.fail(format!(
                "after the failures {dev} saw [{got}], want [{want}]"
            )));
        }
    }
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

/// A task the freezer cannot freeze (asleep uninterruptibly in a write to
/// test device 0's `hold`), then `kexec -e`.
const FREEZE_FAIL: &str = include_str!("../../../scenarios/freeze_fail.sh");

/// Freezing tasks fails (a task asleep uninterruptibly refuses): `kexec
/// -e` returns EBUSY, no device callback ran, both CPUs are online; once
/// the task is done a jump works.
pub(super) fn freeze_failure_unwinds(ctx: &Ctx) -> TestResult {
    let mut g = boot_with_program(ctx, FREEZE_FAIL, "")?;
    let mut tally = crate::report::Tally::new(
        "freezer faults injected / unwound",
        ctx.name,
        "0 / 0".into(),
    );
    let l = g.step("exec:", 120)?;
    tally.value = "1 / 0".into();
    if !l.contains("errno 16") {
        return Err(g.fail(format!("want EBUSY from kexec -e: {l}")));
    }
    let after = g.step("KJ: after", 60)?;
    for dev in ["dev0", "dev1"] {
        let events = bracketed(&after, dev).unwrap_or_default();
        if !events.is_empty() {
            return Err(g.fail(format!("{dev} ran callbacks: {after}")));
        }
    }
    if !after.contains("cpus=0-1") {
        return Err(g.fail(format!("want both CPUs online: {after}")));
    }
    g.step("KJ: hold over", 60)?;
    tally.value = "1 / 1".into();
    g.step("physcall: 1 calls ok", 120)?;
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn balanced_logs_are_unwound() {
        let jump: Vec<&str> = DEV0_JUMP.split(' ').collect();
        assert_eq!(unwound(&jump, ""), Ok(()));
        let late = [
            "prepare",
            "freeze",
            "freeze_late",
            "thaw_early",
            "restore",
            "complete",
        ];
        assert_eq!(unwound(&late, ""), Ok(()));
        assert_eq!(
            unwound(&["prepare", "freeze", "complete"], "freeze"),
            Ok(())
        );
    }

    #[test]
    fn leaks_and_wrong_order_are_caught() {
        assert!(unwound(&["prepare", "freeze"], "").is_err());
        assert!(unwound(&["prepare", "freeze", "complete"], "").is_err());
        assert!(unwound(&["prepare", "restore"], "").is_err());
        assert!(unwound(&["complete"], "").is_err());
    }

    #[test]
    fn bracketed_lists_parse() {
        let l = "unwind: dev0:freeze errno 5 dev0=[prepare freeze] dev1=[] cpus=0-1";
        assert_eq!(bracketed(l, "dev0"), Some(vec!["prepare", "freeze"]));
        assert_eq!(bracketed(l, "dev1"), Some(vec![]));
        assert_eq!(bracketed(l, "dev2"), None);
    }
}
