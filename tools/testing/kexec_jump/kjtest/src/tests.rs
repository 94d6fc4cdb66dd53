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
}

/// All tests, in the order they run.
pub const TESTS: &[TestCase] = &[
    TestCase {
        name: "boot_to_init",
        run: boot_to_init,
    },
    TestCase {
        name: "exec_without_image_is_einval",
        run: exec_without_image_is_einval,
    },
    TestCase {
        name: "jump_round_trip",
        run: jump_round_trip,
    },
    TestCase {
        name: "jump_20_round_trips",
        run: jump_20_round_trips,
    },
    TestCase {
        name: "physical_mode_call_100",
        run: physical_mode_call_100,
    },
];

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The guest's serial console, with the test's failure conventions.
pub struct Guest {
    vm: Vm,
}

impl Guest {
    fn fail(&self, reason: String) -> Failure {
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

    /// The console so far.
    pub fn vm(&self) -> &Vm {
        &self.vm
    }
}

/// The busybox + kexec-tools + kj-guest image every test starts from.
fn base_image(ctx: &Ctx) -> Result<Initramfs, Failure> {
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
        smp: 2,
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
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Runs `trips` round trips A -> B -> A with Debian's kexec-tools and checks
/// A and B after each. Returns the known failure on the reference.
fn jump_trips(ctx: &Ctx, trips: u32) -> TestResult {
    let mut g = boot_jump(ctx, trips)?;
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
            let dump = g.step("KJ: B vmcore", 300)?;
            let shows_a = dump.contains("A's marker: find: found")
                && dump.contains("B's marker: find: not found");
            if ctx.name == "ours" && trips == 1 && !shows_a {
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

const PHYSCALL_INIT: &str = r#"echo "KJ: A up"
kj-guest physcall --elf /boot/checksum.elf --calls 100
echo "KJ: done"
poweroff -f
"#;

/// A program assembled in this repository is called 100 times in physical
/// mode: each call hashes a buffer in A's process memory, found by its
/// physical address, and counts its calls in its own memory; A checks both
/// after every return.
fn physical_mode_call_100(ctx: &Ctx) -> TestResult {
    let image = base_image(ctx)?
        .file("init", &init_script(PHYSCALL_INIT), 0o755)
        .host_file(&ctx.phys_prog, "boot/checksum.elf", 0o644)
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })?;
    let mut g = boot(ctx, image.finish(), "")?;
    g.step("physcall: loaded", 120)?;
    g.step("physcall: call 1 ok", 120)?;
    match g.step("physcall: 100 calls ok", 900) {
        Err(f) if ctx.name == "ref" && f.reason.starts_with("QEMU exited") => {
            return Ok(Verdict::Known(
                "the first call returns, the second kills the guest".into(),
            ));
        }
        r => r?,
    };
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

/// Boots with the checksum program and makes one call: the benchmark's
/// sample. Returns the console.
pub fn one_physical_call(ctx: &Ctx) -> Result<Vec<String>, Failure> {
    let body =
        "kj-guest physcall --elf /boot/checksum.elf --calls 1\necho \"KJ: done\"\npoweroff -f\n";
    let image = base_image(ctx)?
        .file("init", &init_script(body), 0o755)
        .host_file(&ctx.phys_prog, "boot/checksum.elf", 0o644)
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })?;
    let mut g = boot(ctx, image.finish(), "")?;
    g.step("physcall: 1 calls ok", 300)?;
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
    fn number_after_parses() {
        let l = "KJ: A MemFree after first free: 812345 kB @3.2";
        assert_eq!(number_after(l, "MemFree "), None);
        assert_eq!(number_after(l, "free: "), Some(812345));
    }
}
