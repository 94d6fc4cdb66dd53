// SPDX-License-Identifier: GPL-2.0

//! Booting, an exec with nothing loaded, a plain kexec reboot, the Rust
//! doctests, the series' kselftest.

use super::guest::{boot, number_after};
use super::images::{base_image, carrying_b, init_script};
use super::verdict::{Failure, TestResult, Verdict};
use crate::Ctx;
use std::{fs, io::ErrorKind, path::PathBuf, process::Command};

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

/// Patch 19's kselftest, at its kernel path in this repository.
const KSELFTEST_C: &str = "tools/testing/selftests/kexec/kexec_jump_test.c";

/// The kselftest's output goes to a file and is shown after it exits, so
/// that no kernel line printed around a jump cuts into a result line.
const KSELFTEST_INIT: &str = "echo \"KJ: A up\"\n\
    /bin/kexec_jump_test >/tmp/ktap.txt 2>&1\n\
    echo \"KJ: kselftest exit $?\"\n\
    echo \"KJ: ktap begin\"\n\
    cat /tmp/ktap.txt\n\
    echo \"KJ: ktap end\"\n\
    echo \"KJ: done\"\n\
    poweroff -f\n";

/// (ours) Patch 19's kselftest, `tools/testing/selftests/kexec/
/// kexec_jump_test.c`, compiled here (static, `-Wall -Werror`) against
/// ours' kselftest.h and uapi headers, run as root in a guest with
/// `crashkernel=64M` (its resident cases need the reservation). Its KTAP
/// output must hold the plan and exactly that many results, each "ok",
/// none skipped (a skipped case tests nothing), and it must exit 0. A
/// host without gcc fails the test: it would otherwise test nothing.
pub(super) fn kselftest_kexec_jump(ctx: &Ctx) -> TestResult {
    let bin = build_kselftest(ctx)?;
    let image = base_image(ctx)?
        .host_file(&bin, "bin/kexec_jump_test", 0o755)
        .map_err(Failure::new)?
        .file("init", &init_script(KSELFTEST_INIT), 0o755);
    let mut g = boot(ctx, image.finish(), "crashkernel=64M")?;
    let exit = g.step("KJ: kselftest exit", 600)?;
    g.step("KJ: done", 60)?;
    let lines: Vec<String> = g.vm().transcript().iter().map(|l| l.text.clone()).collect();
    let from = lines.iter().position(|l| l.contains("KJ: ktap begin"));
    let to = lines.iter().rposition(|l| l.contains("KJ: ktap end"));
    let (Some(from), Some(to)) = (from, to) else {
        return Err(g.fail("the kselftest's output was not shown".into()));
    };
    let results = check_ktap(&lines[from + 1..to]).map_err(|e| g.fail(e))?;
    if number_after(&exit, "exit ") != Some(0) {
        return Err(g.fail(format!("kexec_jump_test failed: {exit}")));
    }
    println!("    kexec_jump_test: {results} of {results} KTAP results ok");
    Ok(Verdict::Pass)
}

/// Runs `cmd`; a failure says `what` failed and why.
fn run_host(cmd: &mut Command, what: &str) -> Result<(), Failure> {
    let out = cmd.output().map_err(|e| {
        Failure::new(match e.kind() {
            ErrorKind::NotFound => format!(
                "{what}: {e}: the kselftest is built on the host, install it (apt-get install gcc libc6-dev make)"
            ),
            _ => format!("{what}: {e}"),
        })
    })?;
    if !out.status.success() {
        return Err(Failure::new(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Compiles the kselftest as the harness ships it: ours' uapi headers
/// (`make headers` into build/kselftest), the test staged beside a copy of
/// ours' kselftest.h as in the kernel tree, `gcc -static`.
fn build_kselftest(ctx: &Ctx) -> Result<PathBuf, Failure> {
    let root = crate::root();
    let tree = root.join("build/src/ours");
    let hdr = root.join("build/kselftest");
    if !tree.join("tools/testing/selftests/kselftest.h").exists() {
        return Err(Failure::new(format!(
            "no patched tree in {}: run scripts/build-kernel.sh ours",
            tree.display()
        )));
    }
    run_host(
        Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(&tree)
            .arg(format!("O={}", hdr.display()))
            .arg("headers"),
        "make headers",
    )?;
    let stage = ctx.scratch.join("selftests");
    let copy = |from: PathBuf, to: PathBuf| {
        fs::create_dir_all(to.parent().expect("a parent"))
            .and_then(|()| fs::copy(&from, &to))
            .map_err(|e| Failure::new(format!("{}: {e}", from.display())))
    };
    copy(
        tree.join("tools/testing/selftests/kselftest.h"),
        stage.join("kselftest.h"),
    )?;
    let src = stage.join("kexec/kexec_jump_test.c");
    copy(root.join(KSELFTEST_C), src.clone())?;
    let bin = ctx.scratch.join("kexec_jump_test");
    run_host(
        Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-Werror", "-I"])
            .arg(&stage)
            .arg("-I")
            .arg(hdr.join("usr/include"))
            .arg("-o")
            .arg(&bin)
            .arg(&src),
        "gcc",
    )?;
    Ok(bin)
}

/// Checks a kselftest's KTAP output: the version line, the plan, then
/// exactly as many results, numbered in order, each "ok" with no
/// directive (no SKIP, XFAIL or error), no "Bail out!". Returns the number
/// of results; a failure names the case and the diagnostics before it.
fn check_ktap(lines: &[String]) -> Result<usize, String> {
    let (mut version, mut plan, mut seen) = (false, None::<usize>, 0usize);
    let mut diag: Vec<&str> = Vec::new();
    for l in lines.iter().map(|l| l.trim_end()) {
        if l == "TAP version 13" {
            version = true;
        } else if let Some(p) = l.strip_prefix("1..") {
            let n = p
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<usize>().ok());
            if p.contains('#') || n.is_none() {
                return Err(format!("kselftest plan: {l}"));
            }
            plan = n;
        } else if l.starts_with("Bail out!") {
            return Err(format!("kselftest bailed out: {l}"));
        } else if let Some(d) = l.strip_prefix("# ") {
            diag.push(d);
        } else if let Some((ok, rest)) = l
            .strip_prefix("ok ")
            .map(|r| (true, r))
            .or_else(|| l.strip_prefix("not ok ").map(|r| (false, r)))
        {
            seen += 1;
            let (num, name) = rest.split_once(' ').unwrap_or((rest, ""));
            let why = if diag.is_empty() {
                String::new()
            } else {
                format!(" ({})", diag.join("; "))
            };
            if num.parse::<usize>() != Ok(seen) {
                return Err(format!("kselftest result {seen} numbered {num}: {l}"));
            }
            if !ok {
                return Err(format!("kselftest case failed: {name}{why}"));
            }
            if name.contains('#') {
                return Err(format!("kselftest case not passed: {name}{why}"));
            }
            diag.clear();
        }
    }
    let Some(plan) = plan.filter(|_| version) else {
        return Err("no KTAP header and plan from the kselftest".into());
    };
    if plan == 0 || seen != plan {
        return Err(format!("kselftest planned {plan} results, printed {seen}"));
    }
    Ok(seen)
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

    fn ktap(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn check_ktap_wants_every_planned_result_ok() {
        let good = "TAP version 13\n1..2\n# note\nok 1 a\n[ 1.0] PM: x\nok 2 b\n# Totals: pass:2";
        assert_eq!(check_ktap(&ktap(good)), Ok(2));
        let bad = "TAP version 13\n1..2\nok 1 a\n# b: got EINVAL (22), want ENOENT (2)\nnot ok 2 b";
        let e = check_ktap(&ktap(bad)).unwrap_err();
        assert!(e.contains("failed: b") && e.contains("want ENOENT"), "{e}");
        let skip = "TAP version 13\n1..2\nok 1 a\nok 2 # SKIP b: no crashkernel=";
        assert!(check_ktap(&ktap(skip)).unwrap_err().contains("SKIP"));
        let short = "TAP version 13\n1..3\nok 1 a\nok 2 b";
        assert!(check_ktap(&ktap(short)).unwrap_err().contains("planned 3"));
        let none = "TAP version 13\n1..0 # SKIP kexec_load() needs root";
        assert!(check_ktap(&ktap(none)).unwrap_err().contains("needs root"));
        let order = "TAP version 13\n1..2\nok 2 a\nok 1 b";
        assert!(check_ktap(&ktap(order)).is_err());
        assert!(check_ktap(&ktap("ok 1 a")).is_err());
    }
}
