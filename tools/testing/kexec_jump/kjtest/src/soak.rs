// SPDX-License-Identifier: GPL-2.0

//! `kjtest soak [TRIPS]`: many round trips A -> B -> A in one boot of our
//! kernel (lockdep, debug objects, KFENCE and the lockup detectors on),
//! with B resident (kjump). Prints A's free memory (with and without the
//! per-CPU free lists) and what holds memory (page cache, shmem, slab,
//! page tables, kernel stacks, per-CPU areas, vmalloc, tasks) half way
//! and after the last trip, and their deltas; fails on any kernel report
//! in the console (the harness's rule) or on free memory (counting the
//! per-CPU lists) lost at more than LEAK_KB_PER_TRIP a trip.

use crate::switch_bench::switches;
use crate::Ctx;

/// kB of free memory (with the per-CPU lists) lost per trip above which
/// the soak counts a leak. What else moves between two measurements, by
/// up to about 250 kB whatever the number of trips (measured): the kernel
/// worker pool grows by a few workers, each with a stack and a task, until
/// idle ones are reaped minutes later; slab pages of /proc inodes; the
/// page tables of the measuring processes. A leak of 8 pages a trip
/// stands out of that after 16 trips.
const LEAK_KB_PER_TRIP: i64 = 32;

fn field(line: &str, name: &str) -> Option<i64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))?
        .parse()
        .ok()
}

/// What a soak of `trips` round trips found, between the trip `from`
/// and the last: one line per figure, the leaks (empty if none), and the
/// free memory (with the per-CPU lists) lost, in kB.
///
/// The first trips grow what the jump's work needs once (more kernel
/// workers, each with its stack and task, until the pool's idle workers
/// are reaped minutes later): the baseline is taken half way, so that a
/// loss counted is one that every trip repeats.
pub struct Soak {
    pub from: u32,
    pub lines: Vec<String>,
    pub leaks: Vec<String>,
    pub free_lost_kb: i64,
}

pub fn soak(ctx: &Ctx, trips: u32) -> Result<Soak, String> {
    if trips < 2 {
        return Err("need at least 2 trips".into());
    }
    let from = (trips / 2).max(1);
    let s = switches(ctx, "kjump", 160, trips, from)?;
    let (first, last) = &s.meminfo;
    let mut out = Soak {
        from,
        lines: Vec::new(),
        leaks: Vec::new(),
        free_lost_kb: 0,
    };
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
        out.lines.push(format!(
            "{name:<12} {a:>9} kB -> {b:>9} kB  ({:+} kB)",
            b - a
        ));
        if name == "FreeWithPcp" {
            out.free_lost_kb = lost;
        }
        if name == "FreeWithPcp" && lost > LEAK_KB_PER_TRIP * i64::from(trips - from) {
            out.leaks
                .push(format!("{name} {lost} kB over {} trips", trips - from));
        }
    }
    for name in ["Tasks", "Kworkers"] {
        if let (Some(a), Some(b)) = (field(first, name), field(last, name)) {
            out.lines
                .push(format!("{name:<12} {a:>9}    -> {b:>9}     ({:+})", b - a));
        }
    }
    Ok(out)
}

pub fn run(ctx: &Ctx, trips: u32) -> Result<(), String> {
    let s = soak(ctx, trips)?;
    println!(
        "soak: {trips} round trips (kjump, resident B), A after trip {} and after trip {trips}:",
        s.from
    );
    for l in &s.lines {
        println!("    {l}");
    }
    if s.leaks.is_empty() {
        println!("soak: no leak above {LEAK_KB_PER_TRIP} kB a trip, no kernel report");
        Ok(())
    } else {
        Err(format!("leak: {}", s.leaks.join(", ")))
    }
}
