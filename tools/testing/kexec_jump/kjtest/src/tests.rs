// SPDX-License-Identifier: GPL-2.0

//! The end-to-end tests: each boots a real kernel in QEMU and checks what
//! it does. One function per behaviour.

use crate::{initramfs::Initramfs, qemu::Vm, qemu::VmConfig, Ctx};
use std::{fs, time::Duration};

/// A test that did not fail.
pub enum Verdict {
    /// It passed.
    Pass,
    /// The reference failed exactly as documented.
    Known(String),
}

/// Why a test failed, with the console lines around it.
pub struct Failure {
    /// One line.
    pub reason: String,
    /// Console excerpt.
    pub excerpt: Vec<String>,
}

/// A test's result.
pub type TestResult = Result<Verdict, Failure>;

/// A registered test.
pub struct TestCase {
    /// Name, after the behaviour it checks.
    pub name: &'static str,
    /// The test.
    pub run: fn(&Ctx) -> TestResult,
    /// The kernels it runs on: tests of the Rust test devices need a
    /// kernel with Rust (not `c`), tests of Rust code need ours.
    pub kernels: &'static [&'static str],
    /// The reference is documented to fail it (README): on the reference
    /// only that exact failure passes, and a pass is reported as wrong.
    pub ref_fails: bool,
    /// Kernel reports that are part of the reference's documented failure
    /// (a piece of each report line); any other report fails the test.
    pub ref_reports: &'static [&'static str],
}

/// The reference's B has empty crash notes (nothing fills them at a
/// jump), so its /proc/vmcore setup asks vmalloc for 0 bytes and WARNs.
const REF_EMPTY_NOTES: &[&str] = &["at mm/vmalloc.c:3838 __vmalloc_node_range_noprof"];

/// Every kernel: ours, ours without Rust (the C sequence), the reference.
const ALL: &[&str] = &["ours", "c", "ref"];
/// The kernels with Rust, so with the test devices.
const WITH_DEVICES: &[&str] = &["ours", "ref"];
/// Only ours: the Rust code itself.
const OURS: &[&str] = &["ours"];

/// All tests, in the order they run.
pub const TESTS: &[TestCase] = &[
    TestCase {
        name: "boot_to_init",
        run: boot_to_init,
        kernels: ALL,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "exec_without_image_is_einval",
        run: exec_without_image_is_einval,
        kernels: ALL,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "plain_kexec_reboots",
        run: plain_kexec_reboots,
        kernels: ALL,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "rust_doctests",
        run: rust_doctests,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "jump_round_trip",
        run: jump_round_trip,
        kernels: ALL,
        ref_fails: true,
        ref_reports: REF_EMPTY_NOTES,
    },
    TestCase {
        name: "jump_20_round_trips",
        run: jump_20_round_trips,
        kernels: ALL,
        ref_fails: true,
        ref_reports: REF_EMPTY_NOTES,
    },
    TestCase {
        name: "physical_mode_call_100",
        run: physical_mode_call_100,
        kernels: ALL,
        ref_fails: true,
        ref_reports: &[],
    },
    TestCase {
        name: "physical_mode_int3_returns",
        run: physical_mode_int3_returns,
        kernels: ALL,
        ref_fails: true,
        ref_reports: &[],
    },
    TestCase {
        name: "physical_mode_fault_is_reported",
        run: physical_mode_fault_is_reported,
        kernels: ALL,
        ref_fails: true,
        ref_reports: &[],
    },
    TestCase {
        name: "device_callbacks_in_order",
        run: device_callbacks_in_order,
        kernels: WITH_DEVICES,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "failed_step_unwinds",
        run: failed_step_unwinds,
        kernels: WITH_DEVICES,
        ref_fails: true,
        ref_reports: &[],
    },
    TestCase {
        name: "freeze_failure_unwinds",
        run: freeze_failure_unwinds,
        kernels: WITH_DEVICES,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "exec_during_load_is_ebusy",
        run: exec_during_load_is_ebusy,
        kernels: ALL,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "concurrent_exec_one_gets_ebusy",
        run: concurrent_exec_one_gets_ebusy,
        kernels: ALL,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "kjump_round_trips",
        run: crate::kjump::kjump_round_trips,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
];

pub(crate) const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The guest's serial console, with the test's failure conventions.
pub struct Guest {
    vm: Vm,
}

impl Guest {
    pub(crate) fn fail(&self, reason: String) -> Failure {
        let t = self.vm.transcript();
        Failure {
            reason,
            excerpt: t[t.len().saturating_sub(25)..]
                .iter()
                .map(|l| l.text.clone())
                .collect(),
        }
    }

    /// Waits for `needle`; a "KJ: FAIL" line from the guest fails at once.
    pub fn step(&mut self, needle: &str, secs: u64) -> Result<String, Failure> {
        match self.vm.expect_any(&[needle, "KJ: FAIL"], SECS(secs)) {
            Ok((0, l)) => Ok(l.text),
            Ok((_, l)) => Err(self.fail(l.text.trim_start_matches("KJ: ").to_string())),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The console lines holding `what` after the last line holding
    /// `mark`.
    pub fn said_since(&self, mark: &str, what: &str) -> Vec<String> {
        let t = self.vm.transcript();
        let from = t
            .iter()
            .rposition(|l| l.text.contains(mark))
            .map_or(0, |i| i + 1);
        t[from..]
            .iter()
            .filter(|l| l.text.contains(what))
            .map(|l| l.text.clone())
            .collect()
    }

    /// Whether `why`, a failed wait, is the reference's documented death:
    /// the guest gone (a triple fault) with nothing from the physical-mode
    /// program after the last line holding `mark`.
    fn ref_died_after(&self, ctx: &Ctx, why: &str, mark: &str) -> bool {
        ctx.name == "ref"
            && why.starts_with("QEMU exited")
            && self.said_since(mark, "physcall:").is_empty()
    }

    /// The console so far.
    pub fn vm(&self) -> &Vm {
        &self.vm
    }
}

/// The busybox + kexec-tools + kj-guest image every test starts from.
pub(crate) fn base_image(ctx: &Ctx) -> Result<Initramfs, Failure> {
    let guest = &ctx.guest_bin;
    Initramfs::new()
        .busybox()
        .and_then(|i| i.host_binary("/usr/sbin/kexec", "sbin/kexec"))
        .and_then(|i| i.host_file(guest, "bin/kj-guest", 0o755))
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })
}

/// A test's /init: mounts, then `body`.
fn init_script(body: &str) -> Vec<u8> {
    format!(
        "#!/bin/sh\nmount -t proc proc /proc\nmount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n{body}"
    )
    .into_bytes()
}

/// A fresh 16 MiB ext2 image in the test's scratch directory.
fn ext2_disk(ctx: &Ctx) -> Result<std::path::PathBuf, Failure> {
    let path = ctx.scratch.join("disk.img");
    let fail = |reason: String| Failure {
        reason,
        excerpt: vec![],
    };
    fs::File::create(&path)
        .and_then(|f| f.set_len(16 << 20))
        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let out = std::process::Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2"])
        .arg(&path)
        .output()
        .map_err(|e| fail(format!("mke2fs: {e}: run scripts/setup-toolchain.sh")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "mke2fs: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(path)
}

fn boot(ctx: &Ctx, initrd: Vec<u8>, append: &str) -> Result<Guest, Failure> {
    boot_with_disk(ctx, initrd, append, None)
}

fn boot_with_disk(
    ctx: &Ctx,
    initrd: Vec<u8>,
    append: &str,
    disk: Option<std::path::PathBuf>,
) -> Result<Guest, Failure> {
    boot_on(ctx, initrd, append, disk, 2)
}

/// Boots `ctx`'s kernel with `initrd`, `disk` and `cpus` CPUs.
pub(crate) fn boot_on(
    ctx: &Ctx,
    initrd: Vec<u8>,
    append: &str,
    disk: Option<std::path::PathBuf>,
    cpus: u32,
) -> Result<Guest, Failure> {
    let setup = |reason: String| Failure {
        reason,
        excerpt: vec![],
    };
    if !ctx.kernel.exists() {
        return Err(setup(format!(
            "kernel {} missing: run scripts/build-kernel.sh",
            ctx.kernel.display()
        )));
    }
    let path = ctx.scratch.join("initrd.cpio");
    fs::write(&path, initrd).map_err(|e| setup(format!("{}: {e}", path.display())))?;
    let cfg = VmConfig {
        kernel: ctx.kernel.clone(),
        initrd: path,
        append: format!("console=ttyS0 panic=-1 rdinit=/init {append}"),
        smp: cpus,
        mem_mib: 1024,
        disk,
    };
    let vm = Vm::start(&cfg, &ctx.scratch.join("console.log")).map_err(setup)?;
    Ok(Guest { vm })
}

const BOOT_INIT: &str = r#"echo "KJ: init up cpus=$(cat /sys/devices/system/cpu/online)"
kj-guest memhold --mib 8 --seed 1 --check /tmp/go >/tmp/m &
until grep -q filled /tmp/m 2>/dev/null; do sleep 0.1; done
touch /tmp/go
wait
sed 's/^/KJ: /' /tmp/m
echo "KJ: done"
poweroff -f
"#;

/// The kernel boots to /init with both CPUs, and a process can use memory.
fn boot_to_init(ctx: &Ctx) -> TestResult {
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

const EXEC_INIT: &str = r#"kj-guest exec
echo "KJ: done"
poweroff -f
"#;

/// kexec -e with nothing loaded fails with EINVAL, and the system goes on.
fn exec_without_image_is_einval(ctx: &Ctx) -> TestResult {
    let image = base_image(ctx)?.file("init", &init_script(EXEC_INIT), 0o755);
    let mut g = boot(ctx, image.finish(), "")?;
    let l = g.step("exec:", 60)?;
    if !l.contains("errno 22") {
        return Err(g.fail(format!("want EINVAL: {l}")));
    }
    g.step("KJ: done", 30)?;
    Ok(Verdict::Pass)
}

const REBOOT_INIT: &str = r#"case " $(cat /proc/cmdline) " in
*" kj_rebooted "*)
	echo "KJ: rebooted kernel up"
	;;
*)
	kexec -l /boot/bzImage --initrd=/boot/initrd \
		--append="console=ttyS0 panic=-1 rdinit=/init kj_rebooted" >/tmp/load.out 2>&1 ||
		echo "KJ: FAIL load: $(tail -n1 /tmp/load.out)"
	echo "KJ: loaded"
	kexec -e
	echo "KJ: FAIL kexec -e returned $?"
	;;
esac
poweroff -f
"#;

/// An image loaded without `--load-preserve-context` still reboots into it
/// for good: kernel_kexec() goes through the Rust door in our kernel too.
fn plain_kexec_reboots(ctx: &Ctx) -> TestResult {
    let init = init_script(REBOOT_INIT);
    let inner = base_image(ctx)?.file("init", &init, 0o755).finish();
    let outer = base_image(ctx)?
        .file("init", &init, 0o755)
        .file("boot/initrd", &inner, 0o644)
        .host_file(&ctx.kernel, "boot/bzImage", 0o644)
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })?;
    let mut g = boot(ctx, outer.finish(), "")?;
    g.step("KJ: loaded", 120)?;
    g.step("KJ: rebooted kernel up", 180)?;
    Ok(Verdict::Pass)
}

const DOCTEST_INIT: &str = "echo \"KJ: done\"\npoweroff -f\n";

/// The Rust doctests of rust/kernel/ run as a KUnit suite at boot
/// (kunit.enable=1), read as KTAP: every result is "ok" and none is
/// skipped (a skipped doctest tests nothing). Among them those of
/// kernel::interrupt (nested sections restore the state they found) and
/// kernel::power (the quiesce chain compiles as documented).
fn rust_doctests(ctx: &Ctx) -> TestResult {
    let image = base_image(ctx)?.file("init", &init_script(DOCTEST_INIT), 0o755);
    let mut g = boot(ctx, image.finish(), "kunit.enable=1")?;
    g.step("KJ: done", 600)?;
    let lines: Vec<String> = g.vm().transcript().iter().map(|l| l.text.clone()).collect();
    let results = ktap_results(&lines);
    if let Some(bad) = results.iter().find(|t| t.starts_with("not ok ")) {
        return Err(g.fail(format!("doctest failed: {bad}")));
    }
    if let Some(skipped) = results.iter().find(|t| t.contains("# SKIP")) {
        return Err(g.fail(format!("doctest skipped: {skipped}")));
    }
    let passed = |part: &str| results.iter().filter(|t| t.contains(part)).count();
    let (interrupt, power) = (passed("_interrupt_rs_"), passed("_power_rs_"));
    if interrupt < 1 || power < 1 {
        return Err(g.fail(format!(
            "want the interrupt (1) and power (1) doctests to pass, saw {interrupt} and {power} of {} results",
            results.len()
        )));
    }
    if !results.iter().any(|t| t.ends_with(" rust_doctests_kernel")) {
        return Err(g.fail("no result line for the rust_doctests_kernel suite".into()));
    }
    println!(
        "    {} KUnit results ok, {interrupt} interrupt and {power} power doctests among them",
        results.len()
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

/// Where kernel B runs: [256, 384) MiB, which A reserved (A_ARGS), minus
/// the last MiB that holds the ELF core header, plus the 64 KiB below 1 MiB
/// that A also reserved for B's SMP trampoline. B must not randomize where
/// its kernel is decompressed: KASLR ignores memmap=exactmap and would pick
/// a spot anywhere in A's memory.
const JUMP_CONF: &str = "B_MIN=0x10000000\nB_MAX=0x17ffffff\n\
B_ARGS='nokaslr memmap=exactmap memmap=64K@576K memmap=127M@256M memmap=1M$383M'\n\
MEM_MIB=32\n";

/// A keeps B's range and B's low-memory chunk to itself: nokaslr so its
/// kernel is not placed there, crashkernel= and memmap=$ so it never
/// allocates there.
const A_ARGS: &str = "nokaslr crashkernel=128M@256M memmap=64K$576K";

/// Boots A with the jump scenario and B's kernel and initramfs inside.
fn boot_jump(ctx: &Ctx, trips: u32) -> Result<Guest, Failure> {
    let vmcore_check = u32::from(trips == 1);
    let conf = format!("{JUMP_CONF}TRIPS={trips}\nVMCORE_CHECK={vmcore_check}\n");
    let script = include_str!("../../scenarios/jump.sh");
    let b = base_image(ctx)?
        .file("init", script.as_bytes(), 0o755)
        .file("etc/kj.conf", conf.as_bytes(), 0o644)
        .finish();
    let a = base_image(ctx)?
        .file("init", script.as_bytes(), 0o755)
        .file("etc/kj.conf", conf.as_bytes(), 0o644)
        .file("boot/initrd", &b, 0o644)
        .host_file(&ctx.kernel, "boot/bzImage", 0o644)
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })?;
    boot_with_disk(ctx, a.finish(), A_ARGS, Some(ext2_disk(ctx)?))
}

/// The number after `key` in `line`.
pub(crate) fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Runs `trips` round trips A -> B -> A with Debian's kexec-tools and checks
/// A and B after each. Returns the known failure on the reference.
fn jump_trips(ctx: &Ctx, trips: u32) -> TestResult {
    let mut g = boot_jump(ctx, trips)?;
    if ctx.name == "ref" {
        g.vm.tolerate(REF_EMPTY_NOTES);
    }
    let up = g.step("KJ: A up", 60)?;
    if !up.contains("cpus=0-1") {
        return Err(g.fail(format!("want 2 CPUs in A: {up}")));
    }
    g.step("KJ: A loaded", 300)?;
    let mut free_first = None;
    for i in 1..=trips {
        g.step(&format!("KJ: A jumping {i}"), 120)?;
        if i == 1 {
            g.step("KJ: B up", 120)?;
            // With a dump, B first reads A's marker back at the physical
            // address A gave, then scans the whole dump.
            let mut dump = g.step("KJ: B vmcore", 300)?;
            if dump.contains("KJ: B vmcore-at:") {
                if ctx.name != "ref" && !dump.contains("KJMARK-A-PAGE-CACHE") {
                    return Err(g.fail(format!("B's dump lacks A's marker page: {dump}")));
                }
                dump = g.step("KJ: B vmcore present", 300)?;
            }
            let shows_a = dump.contains("A's marker: find: found")
                && dump.contains("B's marker: find: not found");
            if ctx.name != "ref" && trips == 1 && !shows_a {
                return Err(g.fail(format!("B does not see A's memory: {dump}")));
            }
            match g.step("KJ: B helper loaded", 120) {
                // The helper's zero-length segment makes the kernel set
                // aside all of B's memory: ENOMEM, or the OOM killer first.
                Err(f)
                    if ctx.name == "ref"
                        && (f.reason.contains("Cannot allocate memory")
                            || f.reason.contains("load: Killed")) =>
                {
                    return Ok(Verdict::Known(format!(
                        "B's kexec --load-jump-back-helper exhausts B's memory ({})",
                        f.reason
                    )));
                }
                r => r?,
            };
        } else {
            g.step(&format!("KJ: B resumed {}", i - 1), 120)?;
            g.step("KJ: B memory intact", 60)?;
        }
        g.step("KJ: B jumping back", 120)?;
        let back = g.step(&format!("KJ: A resumed {i} "), 180)?;
        if !back.contains("cpus=0-1") {
            return Err(g.fail(format!("want 2 CPUs after the jump: {back}")));
        }
        g.step("KJ: A memory intact", 60)?;
        g.step("KJ: A disk intact", 60)?;
        if i == 1 {
            let l = g.step("KJ: A MemFree after first", 30)?;
            free_first = number_after(&l, "free: ");
        }
    }
    let l = g.step("KJ: A MemFree after last", 30)?;
    if let (Some(first), Some(last)) = (free_first, number_after(&l, "free: ")) {
        if trips > 1 && last + 1024 < first {
            return Err(g.fail(format!(
                "free memory fell by {} kB over {trips} round trips",
                first - last
            )));
        }
        println!("    free memory after trip 1: {first} kB, after trip {trips}: {last} kB");
    } else {
        return Err(g.fail("no MemFree figures from the guest".into()));
    }
    g.step("KJ: A done", 60)?;
    Ok(Verdict::Pass)
}

/// A -> B -> A: B boots with kexec_jump_back_entry=, finds A's memory in
/// /proc/vmcore, jumps back with the helper, and A resumes with both CPUs, a process's memory intact and its
/// virtio disk working (old file reads back from disk, new write lands).
fn jump_round_trip(ctx: &Ctx) -> TestResult {
    jump_trips(ctx, 1)
}

/// 20 round trips in one boot; B is resumed, not rebooted, each time, its
/// process memory intact; A's MemFree stays within 1 MiB.
fn jump_20_round_trips(ctx: &Ctx) -> TestResult {
    jump_trips(ctx, 20)
}

/// A program assembled in this repository is called 100 times in physical
/// mode: each call hashes a buffer in A's process memory, found by its
/// physical address, and counts its calls in its own memory; A checks both
/// after every return.
fn physical_mode_call_100(ctx: &Ctx) -> TestResult {
    let mut g = boot_with_program(
        ctx,
        "kj-guest physcall --elf /boot/checksum.elf --calls 100",
        "",
    )?;
    g.step("physcall: loaded", 120)?;
    g.step("physcall: call 1 ok", 120)?;
    g.step("physcall: calling 2", 60)?;
    match g.step("physcall: 100 calls ok", 900) {
        // Exactly the documented death: during the second call.
        Err(f) if g.ref_died_after(ctx, &f.reason, "physcall: calling 2") => {
            return Ok(Verdict::Known(
                "the first call returns, the second kills the guest".into(),
            ));
        }
        r => r?,
    };
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

/// A physical-mode program that executes int3 survives it: the
/// trampoline's own IDT returns from #BP. It is called 10 times, and every
/// call after the first enters at the re-entry point the program left in
/// its slot at 8(%rsp) (it counts those entries).
fn physical_mode_int3_returns(ctx: &Ctx) -> TestResult {
    let mut g = boot_with_program(
        ctx,
        "kj-guest physcall --elf /boot/int3.elf --calls 10 --reentry",
        "",
    )?;
    g.step("physcall: loaded", 120)?;
    match g.step("physcall: call 1 ok", 120) {
        // No IDT while the 1:1 table is live: #BP triple-faults.
        Err(f) if g.ref_died_after(ctx, &f.reason, "physcall: loaded") => {
            return Ok(Verdict::Known(
                "the program's int3 resets the guest on the first call".into(),
            ));
        }
        r => r?,
    };
    g.step("physcall: 10 calls ok", 300)?;
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

/// A physical-mode program that reads an unmapped address: the page
/// fault is reported on the serial console (vector 14, the faulting
/// address in CR2, the registers) and the CPU halts, where a machine
/// without an IDT resets silently.
fn physical_mode_fault_is_reported(ctx: &Ctx) -> TestResult {
    let mut g = boot_with_program(ctx, "kj-guest physcall --elf /boot/fault.elf --calls 1", "")?;
    g.step("physcall: loaded", 120)?;
    let l = match g.vm.expect_any(&["kexec_jump: exception "], SECS(120)) {
        Ok((_, l)) => l.text,
        Err(e) if g.ref_died_after(ctx, &e, "physcall: loaded") => {
            return Ok(Verdict::Known(
                "the page fault resets the guest with nothing on the console".into(),
            ));
        }
        Err(e) => return Err(g.fail(e)),
    };
    if !l.contains("exception 000000000000000e") || !l.contains("cr2 00007ff000000000") {
        return Err(g.fail(format!("want vector 14 at CR2 0x7ff000000000: {l}")));
    }
    let regs =
        g.vm.expect_any(&["kexec_jump: r13 "], SECS(30))
            .map_err(|e| g.fail(format!("no register dump: {e}")))?;
    if !regs.1.text.contains(" r15 ") {
        return Err(g.fail(format!("register dump cut short: {}", regs.1.text)));
    }
    if g.vm.wait_exit(SECS(3)).is_ok() {
        return Err(g.fail("QEMU exited after the report: the CPU did not halt".into()));
    }
    Ok(Verdict::Pass)
}

/// Boots with every build of the checksum program (/boot/checksum.elf,
/// bench.elf, int3.elf, fault.elf) and runs `body` between "KJ: A up" and
/// "KJ: done".
fn boot_with_program(ctx: &Ctx, body: &str, append: &str) -> Result<Guest, Failure> {
    boot_with_program_on(ctx, body, append, 2)
}

/// [`boot_with_program`] on a guest with `cpus` CPUs.
fn boot_with_program_on(ctx: &Ctx, body: &str, append: &str, cpus: u32) -> Result<Guest, Failure> {
    let init = format!("echo \"KJ: A up\"\n{body}\necho \"KJ: done\"\npoweroff -f\n");
    let progs = ctx.phys_prog.with_file_name("");
    let image = base_image(ctx)?
        .file("init", &init_script(&init), 0o755)
        .host_file(&ctx.phys_prog, "boot/checksum.elf", 0o644)
        .and_then(|i| i.host_file(&ctx.bench_prog, "boot/bench.elf", 0o644))
        .and_then(|i| i.host_file(&progs.join("int3.elf"), "boot/int3.elf", 0o644))
        .and_then(|i| i.host_file(&progs.join("fault.elf"), "boot/fault.elf", 0o644))
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })?;
    boot_on(ctx, image.finish(), append, None, cpus)
}

/// What `name=[...]` holds in a line of the guest's.
fn bracketed<'a>(line: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let start = line.find(&format!("{name}=["))? + name.len() + 2;
    let len = line[start..].find(']')?;
    Some(line[start..start + len].split_whitespace().collect())
}

/// The ladder as the test devices see it, for one jump that goes well:
/// each device also has a syscore entry, run with one CPU and interrupts
/// off between the noirq phases.
const DEV0_JUMP: &str = "prepare freeze freeze_late freeze_noirq syscore_suspend \
                         syscore_resume restore_noirq restore_early restore complete";
const DEV1_JUMP: &str = DEV0_JUMP;

/// One jump (a physical-mode call): each test device is prepared, frozen
/// (normal, late, noirq), its syscore step is suspended and resumed, and it
/// is restored in the exact reverse order, then completed.
fn device_callbacks_in_order(ctx: &Ctx) -> TestResult {
    let mut g = boot_with_program(ctx, "kj-guest events --elf /boot/checksum.elf", "")?;
    let l = g.step("events: call ok", 300)?;
    for (dev, want) in [("dev0", DEV0_JUMP), ("dev1", DEV1_JUMP)] {
        let got = bracketed(&l, dev).unwrap_or_default().join(" ");
        if got != want {
            return Err(g.fail(format!("{dev} saw [{got}], want [{want}]")));
        }
    }
    if !l.contains("cpus=0-1") {
        return Err(g.fail(format!("want both CPUs back: {l}")));
    }
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

/// Checks that a device's log leaves every step it entered: each
/// suspend-side callback that succeeded is undone by its resume-side
/// partner (from the PM core's own recovery or from the caller), innermost
/// first. `failed` is the callback that was made to fail: never entered.
fn unwound(events: &[&str], failed: &str) -> Result<(), String> {
    const PAIRS: [(&str, &[&str]); 5] = [
        ("prepare", &["complete"]),
        ("freeze", &["thaw", "restore"]),
        ("freeze_late", &["thaw_early", "restore_early"]),
        ("freeze_noirq", &["thaw_noirq", "restore_noirq"]),
        ("syscore_suspend", &["syscore_resume"]),
    ];
    let mut entered: Vec<&str> = Vec::new();
    let mut failed_seen = false;
    for e in events {
        if *e == failed && !failed_seen {
            failed_seen = true;
        } else if PAIRS.iter().any(|(s, _)| s == e) {
            entered.push(e);
        } else {
            let top = entered
                .pop()
                .ok_or(format!("{e} without a step to leave"))?;
            let (_, undo) = PAIRS.iter().find(|(s, _)| *s == top).expect("pushed");
            if !undo.contains(e) {
                return Err(format!("{e} while {top} was the step to leave"));
            }
        }
    }
    match entered.last() {
        Some(left) => Err(format!("{left} never undone")),
        None => Ok(()),
    }
}

/// The failures injected, in order: `devN:callback`. Device 1 is frozen
/// before device 0 in each phase but prepared after it, so each failure
/// finds the other device already in the step.
const UNWIND_STEPS: [&str; 9] = [
    "dev0:freeze_late",
    "dev0:freeze_noirq",
    "dev0:cpu_offline",
    "dev0:syscore_suspend",
    "dev1:syscore_suspend",
    "dev1:freeze_late",
    "dev1:freeze_noirq",
    "dev1:prepare",
    "dev0:freeze",
];

/// The steps at which the reference leaves devices suspended: those where
/// dpm_suspend_start() fails.
const REF_LEAKING_STEPS: [&str; 2] = ["dev1:prepare", "dev0:freeze"];

/// Each step of the ladder fails in turn, on a guest with 4 CPUs: a
/// device callback, taking the last CPU offline (after CPUs 1 and 2 went
/// down), device 0's syscore entry (the first to suspend) and device 1's
/// (after device 0's) return -EIO. kexec -e returns EIO, the callback made
/// to fail ran, both devices leave every step they entered, all 4 CPUs are
/// online, and user space runs on; afterwards a jump works.
fn failed_step_unwinds(ctx: &Ctx) -> TestResult {
    let cmd = format!(
        "kj-guest unwind --elf /boot/checksum.elf --steps {}",
        UNWIND_STEPS.join(",")
    );
    let mut g = boot_with_program_on(ctx, &cmd, "", 4)?;
    let mut leaks = Vec::new();
    for step in UNWIND_STEPS {
        let l = g.step(&format!("unwind: {step} "), 300)?;
        if !l.contains(" errno 5 ") {
            return Err(g.fail(format!("want EIO from kexec -e: {l}")));
        }
        if !l.contains("cpus=0-3") {
            return Err(g.fail(format!("want all 4 CPUs back: {l}")));
        }
        let failed = step.split_once(':').map_or("", |(_, c)| c);
        for dev in ["dev0", "dev1"] {
            let events = bracketed(&l, dev).unwrap_or_default();
            let failed_here = if step.starts_with(dev) { failed } else { "" };
            if !failed_here.is_empty() && !events.contains(&failed_here) {
                return Err(g.fail(format!(
                    "{step}: the callback made to fail never ran: {dev}=[{}]",
                    events.join(" ")
                )));
            }
            if let Err(e) = unwound(&events, failed_here) {
                leaks.push(format!("{step}: {dev} {e} [{}]", events.join(" ")));
            }
        }
    }
    // The upstream ladder does not resume devices when
    // dpm_suspend_start() fails: they stay prepared or frozen. Exactly
    // those steps leak there, each of them, and no other.
    let leaking_steps = |step: &str| leaks.iter().any(|l| l.starts_with(&format!("{step}: ")));
    if !leaks.is_empty() {
        let documented = UNWIND_STEPS
            .iter()
            .all(|s| leaking_steps(s) == REF_LEAKING_STEPS.contains(s));
        if ctx.name == "ref" && documented {
            return Ok(Verdict::Known(format!(
                "devices left suspended after dpm_suspend_start() fails: {}",
                leaks.join("; ")
            )));
        }
        return Err(g.fail(leaks.join("; ")));
    }
    let l = g.step("unwind: call ok", 300)?;
    for (dev, want) in [("dev0", DEV0_JUMP), ("dev1", DEV1_JUMP)] {
        let got = bracketed(&l, dev).unwrap_or_default().join(" ");
        if got != want {
            return Err(g.fail(format!(
                "after the failures {dev} saw [{got}], want [{want}]"
            )));
        }
    }
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

/// A task the freezer cannot freeze (asleep uninterruptibly in a write to
/// test device 0's `hold`), then `kexec -e`.
const FREEZE_FAIL: &str = r#"echo 2000 > /sys/power/pm_freeze_timeout
echo > /sys/devices/kj_testdev0/events
echo > /sys/devices/kj_testdev1/events
(echo 20 > /sys/devices/kj_testdev0/hold; echo "KJ: hold over") &
sleep 1
kexec --load-preserve-context --args-none /boot/checksum.elf \
	--mem-min=0x1000000 --mem-max=0x10fffff || echo "KJ: FAIL load"
kj-guest exec
echo "KJ: after dev0=[$(cat /sys/devices/kj_testdev0/events)] dev1=[$(cat /sys/devices/kj_testdev1/events)] cpus=$(cat /sys/devices/system/cpu/online)"
wait
kj-guest physcall --elf /boot/checksum.elf --calls 1"#;

/// Freezing tasks fails (a task asleep uninterruptibly refuses): `kexec
/// -e` returns EBUSY, no device callback ran, both CPUs are online; once
/// the task is done a jump works.
fn freeze_failure_unwinds(ctx: &Ctx) -> TestResult {
    let mut g = boot_with_program(ctx, FREEZE_FAIL, "")?;
    let l = g.step("exec:", 120)?;
    if !l.contains("errno 16") {
        return Err(g.fail(format!("want EBUSY from kexec -e: {l}")));
    }
    let after = g.step("KJ: after", 60)?;
    for dev in ["dev0", "dev1"] {
        let events = bracketed(&after, dev).unwrap_or_default();
        if !events.is_empty() {
            return Err(g.fail(format!("{dev} ran callbacks: {after}")));
        }
    }
    if !after.contains("cpus=0-1") {
        return Err(g.fail(format!("want both CPUs online: {after}")));
    }
    g.step("KJ: hold over", 60)?;
    g.step("physcall: 1 calls ok", 120)?;
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

/// `kexec -e` while a crash image is being loaded (the load holds the
/// kexec lock) fails with EBUSY, and the load is not disturbed.
fn exec_during_load_is_ebusy(ctx: &Ctx) -> TestResult {
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
fn concurrent_exec_one_gets_ebusy(ctx: &Ctx) -> TestResult {
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

/// Where the benchmark's build of the program is loaded: it is 1 MiB
/// bigger than the checksum program's window.
const BENCH_MEM: &str = "--mem-min 0x1000000 --mem-max 0x1ffffff";

/// The benchmark's sample: boots with the 1 MiB build of the checksum
/// program, makes one call, reads the test device's switch cycles, then
/// times a plain copy of `pages` pages. Returns the console.
pub fn one_physical_call(ctx: &Ctx, pages: usize) -> Result<Vec<String>, Failure> {
    let body = format!(
        "kj-guest physcall --elf /boot/bench.elf --calls 1 {BENCH_MEM}\n\
         echo \"KJ: switch_cycles $(cat /sys/devices/kj_testdev0/switch_cycles)\"\n\
         kj-guest memcpy --pages {pages}"
    );
    let mut g = boot_with_program(ctx, &body, "")?;
    g.step("physcall: 1 calls ok", 300)?;
    g.step("KJ: switch_cycles", 60)?;
    g.step("memcpy:", 120)?;
    g.step("KJ: done", 60)?;
    Ok(g.vm.transcript().iter().map(|l| l.text.clone()).collect())
}

/// Console lines worth a place in the demo's timeline.
pub const TIMELINE: [&str; 9] = [
    "KJ: ",
    "Freezing user space",
    "Disabling non-boot CPUs",
    "Enabling non-boot CPUs",
    "Restarting tasks",
    "kexec_jump:",
    "Command line:",
    "Run /init",
    "reboot: Power down",
];

/// The demo: one round trip on our kernel; returns the console.
pub fn demo(ctx: &Ctx) -> Result<Vec<crate::qemu::Line>, Failure> {
    let mut g = boot_jump(ctx, 1)?;
    g.step("KJ: A done", 600)?;
    let _ = g.vm.wait_exit(SECS(30));
    Ok(g.vm().transcript().to_vec())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn balanced_logs_are_unwound() {
        let jump: Vec<&str> = DEV0_JUMP.split(' ').collect();
        assert_eq!(unwound(&jump, ""), Ok(()));
        let late = [
            "prepare",
            "freeze",
            "freeze_late",
            "thaw_early",
            "restore",
            "complete",
        ];
        assert_eq!(unwound(&late, ""), Ok(()));
        assert_eq!(
            unwound(&["prepare", "freeze", "complete"], "freeze"),
            Ok(())
        );
    }

    #[test]
    fn leaks_and_wrong_order_are_caught() {
        assert!(unwound(&["prepare", "freeze"], "").is_err());
        assert!(unwound(&["prepare", "freeze", "complete"], "").is_err());
        assert!(unwound(&["prepare", "restore"], "").is_err());
        assert!(unwound(&["complete"], "").is_err());
    }

    #[test]
    fn bracketed_lists_parse() {
        let l = "unwind: dev0:freeze errno 5 dev0=[prepare freeze] dev1=[] cpus=0-1";
        assert_eq!(bracketed(l, "dev0"), Some(vec!["prepare", "freeze"]));
        assert_eq!(bracketed(l, "dev1"), Some(vec![]));
        assert_eq!(bracketed(l, "dev2"), None);
    }

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

    #[test]
    fn number_after_parses() {
        let l = "KJ: A MemFree after first free: 812345 kB @3.2";
        assert_eq!(number_after(l, "MemFree "), None);
        assert_eq!(number_after(l, "free: "), Some(812345));
    }
}
