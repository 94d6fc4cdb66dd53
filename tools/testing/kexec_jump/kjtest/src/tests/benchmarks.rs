// SPDX-License-Identifier: GPL-2.0

//! The benchmark floors the test command judges (crate::floors): the
//! resident switch and the Rust ladder. The hibernation floors are in
//! hibernate.rs, beside the scenario they time.

use super::verdict::{Failure, TestResult, Verdict};
use crate::Ctx;

/// Resident B at 256 MiB at least 10x faster to switch to than swapped
/// B, and within 1.2x of resident B at 16 MiB: 5 calls each.
pub(super) fn switch_floors(ctx: &Ctx) -> TestResult {
    crate::switch_bench::floors(ctx, 5).map_err(Failure::new)?;
    Ok(Verdict::Pass)
}

/// The Rust sequence's ladder no slower than the C sequence's, in the same
/// series (ours against c): 5 boots each, alternating.
pub(super) fn ladder_floor(ctx: &Ctx) -> TestResult {
    let c = crate::ctx("c", "ladder_floor");
    crate::bench::ladder_floor(ctx, &c, 5).map_err(Failure::new)?;
    Ok(Verdict::Pass)
}
