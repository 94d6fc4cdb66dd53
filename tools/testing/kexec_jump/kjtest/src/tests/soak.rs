// SPDX-License-Identifier: GPL-2.0

//! The soak in the test command: many kjump round trips in one boot, A's
//! free memory and what holds memory compared (crate::soak).

use super::verdict::{Failure, TestResult, Verdict};
use crate::Ctx;

/// The soak in the test command: 24 round trips with kjump in one boot of
/// our debug kernel; A's free memory (counting the per-CPU free lists)
/// after trip 12 and after trip 24 must not drop by more than 32 kB a
/// trip; slab, page tables, kernel stacks, per-CPU areas, vmalloc and
/// tasks are printed beside it. (`kjtest soak N` runs longer soaks.)
pub(super) fn soak_round_trips(ctx: &Ctx) -> TestResult {
    const TRIPS: u32 = 24;
    let s = crate::soak::soak(ctx, TRIPS).map_err(Failure::new)?;
    for l in &s.lines {
        println!("    {l}");
    }
    crate::report::fact(
        "soak round trips / free kB lost a trip",
        ctx.name,
        format!(
            "{TRIPS} / {:.1}",
            s.free_lost_kb as f64 / f64::from(TRIPS - s.from)
        ),
    );
    if s.leaks.is_empty() {
        Ok(Verdict::Pass)
    } else {
        Err(Failure::new(format!("leak: {}", s.leaks.join(", "))))
    }
}
