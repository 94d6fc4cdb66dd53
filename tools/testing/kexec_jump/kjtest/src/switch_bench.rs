// SPDX-License-Identifier: GPL-2.0

//! `kjtest switch-bench [ROUNDS]`: what a switch costs when B is swapped
//! in and out at every jump (Debian's kexec-tools, the stock path) and when
//! B is resident (kjump), in one run:
//!
//! - a physical-mode program of 16, 64 and 256 MiB: the test device's
//!   switch_cycles (TSC cycles from A's syscore suspend to its syscore
//!   resume: the jump out, the program, the jump back), resident and
//!   swapped on ours, and the reference's first call (it survives no
//!   second); the floors: resident at 256 MiB at least 10x faster than
//!   swapped, and within 1.2x of resident at 16 MiB;
//! - a kernel B already booted (ping-pong): the time A is away around
//!   `kexec -e` / `kjump exec` by the TSC, beside a cold boot of the same
//!   kernel to /init.
//!
//! Every figure is printed as min / median / max and compared as the
//! ratio of each round's pair, "no difference" when the ranges overlap.
//! Figures are from an emulated machine (TCG); only the ratios mean
//! something.

use crate::floors::{judge, Bound, Outcome};
use crate::stats::{self, show};
use crate::tests::{self, boot_on, kjump_image, number_after, with_b, Failure};
use crate::Ctx;

/// What one boot of the switch scenario measured.
pub struct Switches {
    /// switch_cycles of trips 2..=trips.
    pub cycles: Vec<f64>,
    /// TSC cycles A was away (around kexec -e or kjump exec), trips 2..=trips.
    pub away: Vec<f64>,
    /// The same for trip 1, in which B boots.
    pub first_away: f64,
    /// The TSC at A's /init: cycles from reset to /init.
    pub boot_tsc: f64,
    /// "MemFree=.. Slab=.. PageTables=.." after the first and the last trip.
    pub meminfo: (String, String),
}

/// Boots ours with the switch scenario: `trips` round trips with B loaded
/// by `loader` in a `b_mib` MiB range.
pub fn switches(
    ctx: &Ctx,
    loader: &str,
    b_mib: u32,
    trips: u32,
    meminfo_at: u32,
) -> Result<Switches, String> {
    let conf = format!("LOADER={loader}\nTRIPS={trips}\nB_MIB={b_mib}\nMEMINFO_AT={meminfo_at}\n");
    let script = include_str!("../../scenarios/switch.sh");
    let run = || -> Result<Switches, Failure> {
        let initrd = with_b(ctx, || kjump_image(ctx, script, &conf, false))?;
        let args = match loader {
            "kexec" => format!("nokaslr crashkernel={b_mib}M@256M"),
            _ => format!("crashkernel={b_mib}M"),
        };
        let mut g = boot_on(ctx, initrd, &args, None, 2)?;
        let init = g.step("KJ: A init tsc ", 120)?;
        let boot_tsc = number_after(&init, "tsc ").unwrap_or(0) as f64;
        g.step("KJ: A loaded", 120)?;
        let mut cycles = Vec::new();
        let mut away = Vec::new();
        let mut first_away = 0.0;
        let mut first = String::new();
        for i in 1..=trips {
            let l = g.step(&format!("KJ: A trip {i} "), 180)?;
            if !l.contains("cpus=0-1") {
                return Err(g.fail(format!("CPU1 did not come back: {l}")));
            }
            let c = number_after(&l, "switch_cycles ")
                .ok_or_else(|| g.fail(format!("no figure: {l}")))?;
            let a = number_after(&l, "away_cycles ")
                .ok_or_else(|| g.fail(format!("no time away: {l}")))? as f64;
            if i > 1 {
                cycles.push(c as f64);
                away.push(a);
            } else {
                first_away = a;
            }
            if i == meminfo_at {
                first = g.step("KJ: A meminfo first", 60)?;
            }
        }
        let last = g.step("KJ: A meminfo last", 60)?;
        g.step("KJ: A done", 60)?;
        Ok(Switches {
            cycles,
            away,
            first_away,
            boot_tsc,
            meminfo: (first, last),
        })
    };
    run().map_err(|f| format!("{loader} {b_mib} MiB: {}", f.reason))
}

/// B's sizes in the physical-mode part, MiB (builds in target/kj).
const PROGRAM_MIB: [u64; 3] = [16, 64, 256];

/// Where the switch builds are linked (build-harness.sh).
const PROGRAM_AT: u64 = 0x1000_0000;

/// Boots `ctx`'s kernel with the `mib` MiB build of the checksum program
/// and makes `calls` physical-mode calls, loaded resident by kjump or by
/// kexec-tools (swapped at every call); returns each call's switch
/// cycles.
fn program_calls(ctx: &Ctx, mib: u64, calls: u32, resident: bool) -> Result<Vec<f64>, String> {
    let name = format!("switch-{mib}m.elf");
    let prog = ctx.phys_prog.with_file_name(&name);
    let top = PROGRAM_AT + ((mib + 16) << 20) - 1;
    let body = format!(
        "kj-guest physcall --elf /boot/{name} --calls {calls} --cycles \
         --mem-min {PROGRAM_AT:#x} --mem-max {top:#x}{}",
        if resident { " --kjump" } else { "" }
    );
    let init = format!("echo \"KJ: A up\"\n{body}\necho \"KJ: done\"\npoweroff -f\n");
    let image = tests::base_image(ctx)
        .and_then(|i| {
            i.file("init", &tests::init_script(&init), 0o755)
                .host_file(&prog, &format!("boot/{name}"), 0o644)
                .and_then(|i| i.host_file(&ctx.kjump_bin, "bin/kjump", 0o755))
                .map_err(Failure::new)
        })
        .map_err(|f| f.reason)?;
    // The reservation is where the resident program lives; the swap path
    // gets the same machine without it.
    let args = if resident {
        format!("nokaslr crashkernel={}M@256M", mib + 16)
    } else {
        "nokaslr".to_string()
    };
    let how = if resident { "resident" } else { "swapped" };
    let run = || -> Result<Vec<f64>, Failure> {
        let mut g = boot_on(ctx, image.finish(), &args, None, 2)?;
        let mut cycles = Vec::new();
        for i in 1..=calls {
            let l = g.step(&format!("physcall: call {i} switch_cycles "), 600)?;
            let c = number_after(&l, "switch_cycles ")
                .ok_or_else(|| g.fail(format!("no figure: {l}")))?;
            cycles.push(c as f64);
        }
        g.step("KJ: done", 120)?;
        Ok(cycles)
    };
    run().map_err(|f| format!("{} {mib} MiB {how}: {}", ctx.name, f.reason))
}

const CYCLES_M: f64 = 1e6;

/// The physical-mode part: one switch with a program of 16, 64 and 256
/// MiB, resident (kjump) and swapped (kexec-tools) on ours, and the
/// reference's first call (it survives no second), `rounds` each.
/// Fails if a floor is missed beyond the spread.
fn program_switches(ours: &Ctx, reference: &Ctx, rounds: u32) -> Result<(), String> {
    println!(
        "one switch (syscore suspend to syscore resume) with a physical-mode program, \
         Mcycles min / median / max of {rounds}:"
    );
    println!(
        "{:<8} {:>24} {:>24} {:>24} {:>32}",
        "image",
        "resident (kjump)",
        "swapped (kexec-tools)",
        "reference (1st call)",
        "swapped/resident, paired"
    );
    let mut resident = Vec::new();
    let mut swapped = Vec::new();
    for mib in PROGRAM_MIB {
        let r = program_calls(ours, mib, rounds, true)?;
        let s = program_calls(ours, mib, rounds, false)?;
        let mut f = Vec::new();
        for _ in 0..rounds {
            f.extend(program_calls(reference, mib, 1, false)?);
        }
        println!(
            "{:<8} {:>24} {:>24} {:>24} {:>32}",
            format!("{mib} MiB"),
            show(&r, CYCLES_M, 1),
            show(&s, CYCLES_M, 1),
            show(&f, CYCLES_M, 1),
            stats::verdict(&s, &r)
        );
        resident.push(r);
        swapped.push(s);
    }
    judge_floors(&resident[0], &resident[2], &swapped[2])
}

/// The two floors of the resident switch, each judged against the spread
/// (crate::floors): its outcome and its line.
pub fn judged_floors(r16: &[f64], r256: &[f64], s256: &[f64]) -> [(Outcome, String); 2] {
    [
        judge(
            "swapped/resident at 256 MiB",
            s256,
            r256,
            Bound::AtLeast(10.0),
        ),
        judge(
            "resident 256 MiB / resident 16 MiB",
            r256,
            r16,
            Bound::AtMost(1.2),
        ),
    ]
}

/// [`judged_floors`], printed; fails with the floors missed beyond the
/// spread.
fn judge_floors(r16: &[f64], r256: &[f64], s256: &[f64]) -> Result<(), String> {
    let judged = judged_floors(r16, r256, s256);
    for (_, line) in &judged {
        println!("{line}");
    }
    let missed: Vec<&str> = judged
        .iter()
        .filter(|(o, _)| *o == Outcome::Missed)
        .map(|(_, l)| l.as_str())
        .collect();
    match missed.is_empty() {
        true => Ok(()),
        false => Err(missed.join("; ")),
    }
}

/// The switch floors in the test command: `rounds` calls of the resident
/// program at 16 and 256 MiB and of the swapped one at 256 MiB (one boot
/// each), the rounds written to build/bench/switch.tsv.
pub fn floors(ctx: &Ctx, rounds: u32) -> Result<(), String> {
    let r16 = program_calls(ctx, 16, rounds, true)?;
    let r256 = program_calls(ctx, 256, rounds, true)?;
    let s256 = program_calls(ctx, 256, rounds, false)?;
    let m = |v: &[f64]| v.iter().map(|c| c / CYCLES_M).collect::<Vec<_>>();
    let (r16, r256, s256) = (m(&r16), m(&r256), m(&s256));
    crate::floors::record(
        "switch",
        &[
            ("resident 16 MiB", &r16),
            ("resident 256 MiB", &r256),
            ("swapped 256 MiB", &s256),
        ],
    )?;
    println!(
        "one switch, Mcycles min / median / max of {rounds}: resident 16 MiB {}, resident 256 MiB {}, swapped 256 MiB {}",
        show(&r16, 1.0, 1),
        show(&r256, 1.0, 1),
        show(&s256, 1.0, 1)
    );
    judge_floors(&r16, &r256, &s256)
}

/// The ping-pong part: A -> B -> A with a kernel B, B swapped
/// (kexec-tools) and resident (kjump), the time A is away by the TSC,
/// trip 1 (B boots) apart from trips 2.. (B is resumed), and beside them a
/// cold boot of the same kernel to /init (the TSC at A's /init, counted
/// from reset).
fn ping_pong(ctx: &Ctx, trips: u32) -> Result<(), String> {
    println!(
        "\nA -> B -> A with a kernel B (128 MiB range), time A is away, Mcycles \
         min / median / max of trips 2..{trips}:"
    );
    let swap = switches(ctx, "kexec", 128, trips, 1)?;
    let res = switches(ctx, "kjump", 128, trips, 1)?;
    println!(
        "{:<34} {:>24} {:>24}",
        "", "swapped (kexec-tools)", "resident (kjump)"
    );
    println!(
        "{:<34} {:>24} {:>24}",
        "ping-pong, B resumed",
        show(&swap.away, CYCLES_M, 1),
        show(&res.away, CYCLES_M, 1)
    );
    println!(
        "{:<34} {:>24} {:>24}",
        "  of it syscore to syscore",
        show(&swap.cycles, CYCLES_M, 1),
        show(&res.cycles, CYCLES_M, 1)
    );
    println!(
        "{:<34} {:>24.1} {:>24.1}",
        "trip 1 (B boots cold inside)",
        swap.first_away / CYCLES_M,
        res.first_away / CYCLES_M
    );
    println!(
        "{:<34} {:>24.1} {:>24.1}",
        "cold boot to /init (A, from reset)",
        swap.boot_tsc / CYCLES_M,
        res.boot_tsc / CYCLES_M
    );
    println!(
        "ping-pong swapped/resident, paired: {}",
        stats::verdict(&swap.away, &res.away)
    );
    println!(
        "ping-pong resident / its cold boot to /init: {}",
        stats::verdict(&res.away, &vec![res.boot_tsc; res.away.len()])
    );
    Ok(())
}

pub fn run(ours: &Ctx, reference: &Ctx, rounds: u32) -> Result<(), String> {
    if rounds < 2 {
        return Err("need at least 2 rounds".into());
    }
    let floors = program_switches(ours, reference, rounds);
    ping_pong(ours, rounds + 1)?;
    println!("\n(TCG on a shared machine: read the ratios, not the cycles)");
    floors
}
