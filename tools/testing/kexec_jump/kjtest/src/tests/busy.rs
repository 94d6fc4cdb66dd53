// SPDX-License-Identifier: GPL-2.0

//! The kexec lock: exec during a load, two execs at once.

use super::guest::{boot_with_program, number_after};
use super::verdict::{TestResult, Verdict};
use crate::Ctx;

/// `kexec -e` while a crash image is being loaded (the load holds the
/// kexec lock) fails with EBUSY, and the load is not disturbed.
pub(super) fn exec_during_load_is_ebusy(ctx: &Ctx) -> TestResult {
    let mut g = boot_with_program(
        ctx,
        "kj-guest busy --mem 0x10000000 --size 0x7800000",
        // nokaslr: a randomly placed kernel may sit where crashkernel= wants.
        "nokaslr crashkernel=128M@256M",
    )?;
    g.step("busy: kexec -e during a load: errno 16", 300)?;
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

/// Two `kexec -e` at once: the reboot system call serializes them, the
/// one that waits cannot be frozen, so the other's freezer gives up with
/// EBUSY and the waiting one then jumps. Exactly one jump happens, the
/// system carries on.
pub(super) fn concurrent_exec_one_gets_ebusy(ctx: &Ctx) -> TestResult {
    let mut g = boot_with_program(ctx, "kj-guest race --elf /boot/checksum.elf", "")?;
    let l = g.step("race: first", 300)?;
    let got_ebusy = l.matches("errno 16").count();
    let jumped = l.matches("jumped").count();
    if got_ebusy != 1 || jumped != 1 || number_after(&l, "calls ") != Some(1) {
        return Err(g.fail(format!(
            "want one EBUSY, one jump and one call counted: {l}"
        )));
    }
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}
