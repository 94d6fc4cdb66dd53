// SPDX-License-Identifier: GPL-2.0

//! kexec_load() fuzzed with bad preserve-context input, then a jump.

use super::guest::{boot_on, number_after};
use super::images::{kjump_image, with_b};
use super::kjump::A_ARGS;
use super::verdict::{TestResult, Verdict};
use crate::Ctx;

/// kexec_load() with bad preserve-context input: the regression cases
/// (overlap, outside RAM, a hole below 1 MiB, bufsz > memsz, unaligned,
/// wrapping, 17 segments, unknown flags and architecture, resident misuse,
/// a bogus buffer, entry 0, a range from RAM into the unclaimed hole
/// `mem=768M` leaves before the firmware's reserved range), each with its
/// errno, then 20 s of random input from a fixed seed; no kernel report,
/// and a jump works after.
/// Last, with `kexec_load_limit_reboot` at 2, a ranges image is loaded
/// and filled 10 times: fills do not count as loads.
pub(super) fn kexec_load_fuzz(ctx: &Ctx) -> TestResult {
    let conf = "SEED=0x6b6a756d70\nSECS=20\n";
    let script = include_str!("../../../scenarios/fuzz.sh");
    let initrd = with_b(ctx, || kjump_image(ctx, script, conf, false))?;
    let mut g = boot_on(ctx, initrd, &format!("{A_ARGS} mem=768M"), None, 2)?;
    let mut tally = crate::report::Tally::new(
        "bad kexec_load() inputs tried / a jump after them",
        ctx.name,
        "0 / not made".into(),
    );
    let l = g.step("KJ: A fuzz:", 180)?;
    println!("    {}", l.trim_start_matches("KJ: A "));
    let tried = number_after(&l, "fuzz: ").unwrap_or(0) + number_after(&l, "; ").unwrap_or(0);
    // The random cases' errnos as the fuzzer counted them.
    let errnos = l
        .split_once(" (")
        .and_then(|(_, r)| r.split_once(')'))
        .map_or(String::new(), |(e, _)| format!(" ({e})"));
    tally.value = format!("{tried}{errnos} / not made");
    g.step("KJ: B up", 180)?;
    let back = g.step("KJ: A resumed", 120)?;
    if !back.contains("cpus=0-1") {
        return Err(g.fail(format!("after the fuzzing: {back}")));
    }
    tally.value = format!("{tried}{errnos} / A -> B -> A");
    // Fills are not loads: under kexec_load_limit_reboot=2, a ranges
    // load, 10 fills and the unload succeed.
    let fill = g.step("KJ: A fill-limit:", 60)?;
    println!("    {}", fill.trim_start_matches("KJ: A "));
    Ok(Verdict::Pass)
}
