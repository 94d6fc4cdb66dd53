// SPDX-License-Identifier: GPL-2.0

//! Booting, an exec with nothing loaded, a plain kexec reboot, the Rust
//! doctests.

use super::guest::boot;
use super::images::{base_image, carrying_b, init_script};
use super::verdict::{TestResult, Verdict};
use crate::Ctx;

const BOOT_INIT: &str = include_str!("../../../scenarios/boot_to_init.sh");

/// The kernel boots to /init with both CPUs, and a process can use memory.
pub(super) fn boot_to_init(ctx: &Ctx) -> TestResult {
    let image = base_image(ctx)?.file("init", &init_script(BOOT_INIT), 0o755);
    let mut g = boot(ctx, image.finish(), "")?;
    let up = g.step("KJ: init up", 60)?;
    if !up.contains("cpus=0-1") {
        return Err(g.fail(format!("want 2 CPUs online: {up}")));
    }
    g.step("memhold: intact", 60)?;
    g.step("KJ: done", 30)?;
    Ok(Verdict::Pass)
}

const EXEC_INIT: &str = include_str!("../../../scenarios/exec_nothing.sh");

/// kexec -e with nothing loaded fails with EINVAL, and the system goes on.
pub(super) fn exec_without_image_is_einval(ctx: &Ctx) -> TestResult {
    let image = base_image(ctx)?.file("init", &init_script(EXEC_INIT), 0o755);
    let mut g = boot(ctx, image.finish(), "")?;
    let l = g.step("exec:", 60)?;
    if !l.contains("errno 22") {
        return Err(g.fail(format!("want EINVAL: {l}")));
    }
    g.step("KJ: done", 30)?;
    Ok(Verdict::Pass)
}

const REBOOT_INIT: &str = include_str!("../../../scenarios/plain_reboot.sh");

/// An image loaded without `--load-preserve-context` still reboots into it
/// for good: kernel_kexec() goes through the Rust door in our kernel too.
pub(super) fn plain_kexec_reboots(ctx: &Ctx) -> TestResult {
    let init = init_script(REBOOT_INIT);
    let inner = base_image(ctx)?.file("init", &init, 0o755).finish();
    let outer = carrying_b(ctx, base_image(ctx)?.file("init", &init, 0o755), &inner)?;
    let mut g = boot(ctx, outer, "")?;
    g.step("KJ: loaded", 120)?;
    g.step("KJ: rebooted kernel up", 180)?;
    Ok(Verdict::Pass)
}

/// The suites ours must run: the Rust doctests and patch 18's C suites.
const KUNIT_SUITES: [&str; 3] = ["rust_doctests_kernel", "kexec_ranges", "vmcore_header"];

const DOCTEST_INIT: &str = "echo \"KJ: done\"\npoweroff -f\n";

/// The KUnit suites of ours run at boot (kunit.enable=1), read as KTAP:
/// the Rust doctests of rust/kernel/ and the series' C suites (patch 18:
/// ranges images, wrapping PT_LOAD headers). Every result is "ok" and
/// none is skipped (a skipped test tests nothing); among them the
/// kernel::irqflags doctest (nested sections restore the state they
/// found) and a result line for each suite.
pub(super) fn kunit_suites(ctx: &Ctx) -> TestResult {
    let image = base_image(ctx)?.file("init", &init_script(DOCTEST_INIT), 0o755);
    let mut g = boot(ctx, image.finish(), "kunit.enable=1")?;
    g.step("KJ: done", 600)?;
    let lines: Vec<String> = g.vm().transcript().iter().map(|l| l.text.clone()).collect();
    let results = ktap_results(&lines);
    if let Some(bad) = results.iter().find(|t| t.starts_with("not ok ")) {
        return Err(g.fail(format!("KUnit test failed: {bad}")));
    }
    if let Some(skipped) = results.iter().find(|t| t.contains("# SKIP")) {
        return Err(g.fail(format!("KUnit test skipped: {skipped}")));
    }
    let passed = |part: &str| results.iter().filter(|t| t.contains(part)).count();
    let irqflags = passed("_irqflags_rs_");
    if irqflags < 1 {
        return Err(g.fail(format!(
            "want the irqflags doctest to pass, saw {irqflags} of {} results",
            results.len()
        )));
    }
    for suite in KUNIT_SUITES {
        if !results.iter().any(|t| t.ends_with(&format!(" {suite}"))) {
            return Err(g.fail(format!("no result line for the {suite} suite")));
        }
    }
    println!(
        "    {} KUnit results ok, {irqflags} irqflags doctest among them, suites {}",
        results.len(),
        KUNIT_SUITES.join(" ")
    );
    Ok(Verdict::Pass)
}

/// KTAP result lines ("ok N name", "not ok N name", maybe "# SKIP ..."),
/// with the printk timestamp and the suite's indentation removed.
fn ktap_results(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| {
            l.split_once("] ")
                .map_or(l.as_str(), |(_, t)| t)
                .trim_start()
        })
        .filter(|t| t.starts_with("ok ") || t.starts_with("not ok "))
        .collect()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn ktap_results_keep_skips_visible() {
        let lines: Vec<String> = [
            "[    1.0]     ok 1 rust_doctest_kernel_interrupt_rs_0",
            "[    1.1]     ok 2 rust_doctest_kernel_power_rs_0 # SKIP no CPUs",
            "[    1.2] not ok 3 rust_doctests_kernel",
            "[    1.3] other",
        ]
        .iter()
        .map(|l| l.to_string())
        .collect();
        let r = ktap_results(&lines);
        assert_eq!(r.len(), 3);
        assert!(r[1].contains("# SKIP"));
        assert!(r[2].starts_with("not ok "));
    }
}
