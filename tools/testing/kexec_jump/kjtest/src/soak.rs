// SPDX-License-Identifier: GPL-2.0

//! `kjtest soak [TRIPS]`: many round trips A -> B -> A in one boot of our
//! kernel (lockdep, debug objects, KFENCE and the lockup detectors on),
//! with B resident (kjump). Prints A's free memory (with and without the
//! per-CPU free lists) and what holds memory (page cache, shmem, slab,
//! page tables, kernel stacks, per-CPU areas, vmalloc) after the first
//! trip and after the last, and their deltas; fails on any kernel report
//! in the console (the harness's rule) or a leak of more than 4 kB a trip
//! in any of them but MemFree (which moves with the per-CPU lists).

use crate::switch_bench::switches;
use crate::Ctx;

/// kB per trip above which a delta counts as a leak.
const LEAK_KB_PER_TRIP: i64 = 4;

fn field(line: &str, name: &str) -> Option<i64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))?
        .parse()
        .ok()
}

pub fn run(ctx: &Ctx, trips: u32) -> Result<(), String> {
    if trips < 2 {
        return Err("need at least 2 trips".into());
    }
    let s = switches(ctx, "kjump", 160, trips)?;
    let (first, last) = &s.meminfo;
    println!(
        "soak: {trips} round trips (kjump, resident B), A after trip 1 and after trip {trips}:"
    );
    let mut leaked = Vec::new();
    // Free memory counting the per-CPU lists is what a leak lowers;
    // MemFree alone moves with what those lists happen to hold. The other
    // fields say where memory went.
    for (name, lost_is_more) in [
        ("FreeWithPcp", true),
        ("MemFree", true),
        ("Cached", false),
        ("Shmem", false),
        ("Slab", false),
        ("PageTables", false),
        ("KernelStack", false),
        ("Percpu", false),
        ("VmallocUsed", false),
    ] {
        let (a, b) = match (field(first, name), field(last, name)) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(format!("no {name} figures: '{first}' '{last}'")),
        };
        // Growth of what is used, or loss of what is free.
        let lost = if lost_is_more { a - b } else { b - a };
        println!("    {name:<12} {a:>9} kB -> {b:>9} kB  ({:+} kB)", b - a);
        if name != "MemFree" && lost > LEAK_KB_PER_TRIP * i64::from(trips - 1) {
            leaked.push(format!("{name} {lost} kB over {} trips", trips - 1));
        }
    }
    if leaked.is_empty() {
        println!("soak: no leak above {LEAK_KB_PER_TRIP} kB a trip, no kernel report");
        Ok(())
    } else {
        Err(format!("leak: {}", leaked.join(", ")))
    }
}
