// SPDX-License-Identifier: GPL-2.0

//! KASLR at work: A's kernel moves between boots.

use super::verdict::{Failure, TestResult, Verdict};

/// After `boots` boots that all came back (`came`: what each did): A's
/// kernel must have sat at more than one address, `at` (KASLR at work).
pub(crate) fn kaslr_moved(mut at: Vec<String>, boots: u32, came: &str) -> TestResult {
    at.sort();
    at.dedup();
    println!(
        "    {boots} of {boots} {came}; A's kernel at {} different addresses",
        at.len()
    );
    if at.len() < 2 {
        return Err(Failure::new(format!(
            "A's kernel at one address in {boots} boots: is KASLR on? {at:?}"
        )));
    }
    Ok(Verdict::Pass)
}
