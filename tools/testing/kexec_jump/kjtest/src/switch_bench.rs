// SPDX-License-Identifier: GPL-2.0

//! `kjtest switch-bench [TRIPS]`: what a switch A -> B -> A costs when B
//! is swapped in and out at every jump (Debian's kexec-tools, the stock
//! path) and when B is resident (kjump), for two sizes of B's range, in
//! the same run on the same kernel (ours; the unpatched kernel cannot make
//! a second round trip). The figure is the test device's switch_cycles:
//! TSC cycles from A's syscore suspend to its syscore resume, which holds
//! the jump out, B's resume and suspend and the jump back; B does nothing
//! else. The first trip (B's boot) is left out; medians of the rest.
//! Figures are from an emulated machine (TCG); only the ratios mean
//! something.

use crate::tests::{boot_on, kjump_image, with_b, Failure};
use crate::Ctx;

/// What one boot of the switch scenario measured.
pub struct Switches {
    /// switch_cycles of trips 2..=trips.
    pub cycles: Vec<f64>,
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
        g.step("KJ: A loaded", 120)?;
        let mut cycles = Vec::new();
        let mut first = String::new();
        for i in 1..=trips {
            let l = g.step(&format!("KJ: A trip {i} "), 180)?;
            if !l.contains("cpus=0-1") {
                return Err(g.fail(format!("CPU1 did not come back: {l}")));
            }
            let c = crate::tests::number_after(&l, "switch_cycles ")
                .ok_or_else(|| g.fail(format!("no figure: {l}")))?;
            if i > 1 {
                cycles.push(c as f64);
            }
            if i == meminfo_at {
                first = g.step("KJ: A meminfo first", 60)?;
            }
        }
        let last = g.step("KJ: A meminfo last", 60)?;
        g.step("KJ: A done", 60)?;
        Ok(Switches {
            cycles,
            meminfo: (first, last),
        })
    };
    run().map_err(|f| format!("{loader} {b_mib} MiB: {}", f.reason))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(ctx: &Ctx, trips: u32) -> Result<(), String> {
    if trips < 2 {
        return Err("need at least 2 trips (the first is B's boot)".into());
    }
    println!("median switch_cycles of trips 2..{trips} (TCG), ours kernel:");
    println!(
        "{:<10} {:>16} {:>16} {:>14}",
        "B's range", "kexec-tools", "kjump", "kexec/kjump"
    );
    for b_mib in [128, 384] {
        let swap = median(switches(ctx, "kexec", b_mib, trips, 1)?.cycles);
        let resident = median(switches(ctx, "kjump", b_mib, trips, 1)?.cycles);
        println!(
            "{:<10} {swap:>16.0} {resident:>16.0} {:>13.2}x",
            format!("{b_mib} MiB"),
            swap / resident
        );
    }
    Ok(())
}
