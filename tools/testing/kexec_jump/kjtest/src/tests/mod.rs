// SPDX-License-Identifier: GPL-2.0

//! The end-to-end tests: each boots a real kernel in QEMU and checks what
//! it does. One function per behaviour.

use crate::{initramfs::Initramfs, qemu::Vm, qemu::VmConfig, Ctx};

mod basics;
mod benchmarks;
mod busy;
mod devices;
mod hibernate;
mod jump;
mod kjump;
mod physical;

pub use hibernate::bench as hibernate_bench;
pub use jump::TIMELINE;
pub use kjump::demo;
pub use physical::one_physical_call;
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
/// jump), so its /proc/vmcore setup asks vmalloc for 0 bytes and WARNs;
/// then its jump-back helper load takes all of B's memory, and the
/// allocation that finds none left reports it.
const REF_JUMP_REPORTS: &[&str] = &[
    "at mm/vmalloc.c:3838 __vmalloc_node_range_noprof",
    "kexec: page allocation failure",
];

/// Every kernel: ours, ours without Rust (the C sequence), the reference.
const ALL: &[&str] = &["ours", "c", "ref"];
/// The kernels with Rust, so with the test devices.
const WITH_DEVICES: &[&str] = &["ours", "ref"];
/// Only ours: the Rust code itself.
const OURS: &[&str] = &["ours"];
/// The patched kernels, with and without Rust.
const OURS_AND_C: &[&str] = &["ours", "c"];

/// All tests, in the order they run.
pub const TESTS: &[TestCase] = &[
    TestCase {
        name: "boot_to_init",
        run: basics::boot_to_init,
        kernels: ALL,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "exec_without_image_is_einval",
        run: basics::exec_without_image_is_einval,
        kernels: ALL,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "plain_kexec_reboots",
        run: basics::plain_kexec_reboots,
        kernels: ALL,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "rust_doctests",
        run: basics::rust_doctests,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "jump_round_trip",
        run: jump::jump_round_trip,
        kernels: ALL,
        ref_fails: true,
        ref_reports: REF_JUMP_REPORTS,
    },
    TestCase {
        name: "jump_20_round_trips",
        run: jump::jump_20_round_trips,
        kernels: ALL,
        ref_fails: true,
        ref_reports: REF_JUMP_REPORTS,
    },
    TestCase {
        name: "jump_round_trip_cpu_max",
        run: jump::jump_round_trip_cpu_max,
        kernels: OURS_AND_C,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "jump_back_across_paging_modes_is_refused",
        run: jump::jump_back_across_paging_modes_is_refused,
        kernels: OURS_AND_C,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "offline_cpus_parked_in_a_after_jump_back",
        run: jump::offline_cpus_parked_in_a_after_jump_back,
        kernels: OURS_AND_C,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "physical_mode_call_100",
        run: physical::physical_mode_call_100,
        kernels: ALL,
        ref_fails: true,
        ref_reports: &[],
    },
    TestCase {
        name: "platform_quiet_during_call",
        run: physical::platform_quiet_during_call,
        kernels: ALL,
        ref_fails: true,
        ref_reports: &[],
    },
    TestCase {
        name: "kjump_call_100",
        run: physical::kjump_call_100,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "physical_mode_int3_returns",
        run: physical::physical_mode_int3_returns,
        kernels: ALL,
        ref_fails: true,
        ref_reports: &[],
    },
    TestCase {
        name: "physical_mode_fault_is_reported",
        run: physical::physical_mode_fault_is_reported,
        kernels: ALL,
        ref_fails: true,
        ref_reports: &[],
    },
    TestCase {
        name: "device_callbacks_in_order",
        run: devices::device_callbacks_in_order,
        kernels: WITH_DEVICES,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "failed_step_unwinds",
        run: devices::failed_step_unwinds,
        kernels: WITH_DEVICES,
        ref_fails: true,
        ref_reports: &[],
    },
    TestCase {
        name: "freeze_failure_unwinds",
        run: devices::freeze_failure_unwinds,
        kernels: WITH_DEVICES,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "switch_floors",
        run: benchmarks::switch_floors,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "ladder_floor",
        run: benchmarks::ladder_floor,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "hibernate_floors",
        run: hibernate::hibernate_floors,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "exec_during_load_is_ebusy",
        run: busy::exec_during_load_is_ebusy,
        kernels: ALL,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "concurrent_exec_one_gets_ebusy",
        run: busy::concurrent_exec_one_gets_ebusy,
        kernels: ALL,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "kexec_tools_new_user_recipe_10_boots",
        run: jump::kexec_tools_new_user_recipe_10_boots,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "kjump_round_trips_10_boots",
        run: kjump::kjump_round_trips_10_boots,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "kjump_4_cpus_5_gib_reload",
        run: kjump::kjump_4_cpus_5_gib_reload,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "kexec_load_fuzz",
        run: kjump::kexec_load_fuzz,
        kernels: OURS_AND_C,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "kjump_refuses_misuse",
        run: kjump::kjump_refuses_misuse,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "soak_round_trips",
        run: kjump::soak_round_trips,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "hibernate_resume_round_trip",
        run: hibernate::hibernate_resume_round_trip,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "hibernate_refuses_bad_images",
        run: hibernate::hibernate_refuses_bad_images,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "hibernate_device_must_be_kjumps",
        run: hibernate::hibernate_device_must_be_kjumps,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "hibernate_with_full_page_cache",
        run: hibernate::hibernate_with_full_page_cache,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "hibernate_refuses_changed_filesystem",
        run: hibernate::hibernate_refuses_changed_filesystem,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "hibernate_failure_in_b_keeps_a",
        run: hibernate::hibernate_failure_in_b_keeps_a,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "hibernate_power_cut_never_resumes",
        run: hibernate::hibernate_power_cut_never_resumes,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "hibernate_70_percent_of_ram",
        run: hibernate::hibernate_70_percent_of_ram,
        kernels: OURS,
        ref_fails: false,
        ref_reports: &[],
    },
    TestCase {
        name: "kjump_refused_by_reference",
        run: kjump::kjump_refused_by_reference,
        kernels: &["ref"],
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

    /// Waits for `needle`; a "KJ: FAIL" line from the guest, or a
    /// "NAME: FAIL" line from one of kj-guest's commands, fails at once.
    pub fn step(&mut self, needle: &str, secs: u64) -> Result<String, Failure> {
        match self
            .vm
            .expect_any(&[needle, "KJ: FAIL", ": FAIL "], SECS(secs))
        {
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
        .map(|i| {
            i.file(
                "etc/kj-prelude.sh",
                include_str!("../../../scenarios/prelude.sh").as_bytes(),
                0o644,
            )
            .file(
                "etc/kj-dump.sh",
                include_str!("../../../scenarios/dump_check.sh").as_bytes(),
                0o644,
            )
        })
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })
}

/// The initramfs of a kjump scenario: the base image, kjump, `script` as
/// /init and `conf` as /etc/kj.conf; with `dump`, makedumpfile too.
pub(crate) fn kjump_image(
    ctx: &Ctx,
    script: &str,
    conf: &str,
    dump: bool,
) -> Result<Initramfs, Failure> {
    let mut image = base_image(ctx)?.host_file(&ctx.kjump_bin, "bin/kjump", 0o755);
    if dump {
        image = image.and_then(|i| i.host_binary("/usr/bin/makedumpfile", "bin/makedumpfile"));
    }
    image
        .map(|i| {
            i.file("init", script.as_bytes(), 0o755)
                .file("etc/kj.conf", conf.as_bytes(), 0o644)
        })
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })
}

/// A's initramfs for a jump: `image` as it is, plus this kernel and
/// another copy of `image` as kernel B and its initramfs.
pub(crate) fn with_b(
    ctx: &Ctx,
    image: impl Fn() -> Result<Initramfs, Failure>,
) -> Result<Vec<u8>, Failure> {
    let b = image()?.finish();
    let a = image()?
        .file("boot/initrd", &b, 0o644)
        .host_file(&ctx.kernel, "boot/bzImage", 0o644)
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })?;
    Ok(a.finish())
}

/// A test's /init: mounts, then `body`.
pub(crate) fn init_script(body: &str) -> Vec<u8> {
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
    boot_sized(ctx, initrd, append, disk, cpus, 1024)
}

/// Boots `ctx`'s kernel with `initrd`, `disk`, `cpus` CPUs and `mem_mib`
/// MiB of RAM.
pub(crate) fn boot_sized(
    ctx: &Ctx,
    initrd: Vec<u8>,
    append: &str,
    disk: Option<std::path::PathBuf>,
    cpus: u32,
    mem_mib: u32,
) -> Result<Guest, Failure> {
    boot_disks(
        ctx,
        initrd,
        append,
        disk.into_iter().collect(),
        cpus,
        mem_mib,
    )
}

/// Boots `ctx`'s kernel with `initrd`, `disks` (/dev/vda first), `cpus`
/// CPUs and `mem_mib` MiB of RAM.
pub(crate) fn boot_disks(
    ctx: &Ctx,
    initrd: Vec<u8>,
    append: &str,
    disks: Vec<std::path::PathBuf>,
    cpus: u32,
    mem_mib: u32,
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
        threads: ctx.threads,
        mem_mib,
        disks,
        cpu: ctx.cpu,
    };
    // A test that boots more than once keeps every console, for the
    // report check: console.log, console-2.log, ...
    let log = (1..)
        .map(|n| match n {
            1 => ctx.scratch.join("console.log"),
            n => ctx.scratch.join(format!("console-{n}.log")),
        })
        .find(|p| !p.exists())
        .expect("a free log name");
    let vm = Vm::start(&cfg, &log).map_err(setup)?;
    Ok(Guest { vm })
}

/// Boots with every build of the checksum program (/boot/checksum.elf,
/// bench.elf, int3.elf, fault.elf, checksum-256m.elf), platform.elf and kjump, and runs `body` between "KJ: A up" and
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
        .and_then(|i| i.host_file(&progs.join("platform.elf"), "boot/platform.elf", 0o644))
        .and_then(|i| {
            i.host_file(
                &progs.join("checksum-256m.elf"),
                "boot/checksum-256m.elf",
                0o644,
            )
        })
        .and_then(|i| i.host_file(&ctx.kjump_bin, "bin/kjump", 0o755))
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })?;
    boot_on(ctx, image.finish(), append, None, cpus)
}

/// What B found of A's tagged pages in its dump, and whether makedumpfile
/// read the dump: the lines of `check_dump_of_a` (scenarios/dump_check.sh).
pub(crate) struct DumpOfA {
    pub tagged: u64,
    pub found: u64,
    pub wrong: u64,
    /// makedumpfile -d 31 wrote a dump (bytes), or why not.
    pub makedumpfile: Result<u64, String>,
    /// makedumpfile --dump-dmesg found A's log line, or why not.
    pub dmesg: Result<(), String>,
}

impl DumpOfA {
    /// "found / wrong / total".
    pub fn tags(&self) -> String {
        format!("{} / {} / {}", self.found, self.wrong, self.tagged)
    }
}

/// Reads B's dump lines; `tagged`: A's "tagfill: tagged N pages" line.
pub(crate) fn dump_of_a(g: &mut Guest, tagged: &str) -> Result<DumpOfA, Failure> {
    let tagged = number_after(tagged, "tagged ")
        .ok_or_else(|| g.fail(format!("no tag count from A: {tagged}")))?;
    let l = g.step("KJ: B tagscan:", 600)?;
    let (found, wrong) = match (number_after(&l, "found "), number_after(&l, "wrong ")) {
        (Some(f), Some(w)) => (f, w),
        _ => return Err(g.fail(format!("no tag figures: {l}"))),
    };
    println!("    {}", l.trim_start_matches("KJ: B "));
    let l = g.step("KJ: B makedumpfile", 600)?;
    let bytes = number_after(&l, "bytes=").unwrap_or(0);
    let makedumpfile = if l.contains("rc=0 ") && bytes >= 1 << 20 {
        Ok(bytes)
    } else {
        Err(l.clone())
    };
    let l = g.step("KJ: B dump-dmesg", 300)?;
    let dmesg = if l.contains("rc=0 ") && number_after(&l, "A's line: ").unwrap_or(0) >= 1 {
        Ok(())
    } else {
        Err(l.clone())
    };
    Ok(DumpOfA {
        tagged,
        found,
        wrong,
        makedumpfile,
        dmesg,
    })
}

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
        return Err(Failure {
            reason: format!("A's kernel at one address in {boots} boots: is KASLR on? {at:?}"),
            excerpt: vec![],
        });
    }
    Ok(Verdict::Pass)
}

/// The number after `key` in `line`.
pub(crate) fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(super::jump::cpu_list("1"), Some(vec![1]));
        assert_eq!(super::jump::cpu_list("1,3\n"), Some(vec![1, 3]));
        assert_eq!(super::jump::cpu_list("1-3,5"), Some(vec![1, 2, 3, 5]));
        assert_eq!(super::jump::cpu_list(""), None);
    }

    #[test]
    fn number_after_parses() {
        let l = "KJ: A MemFree after first free: 812345 kB @3.2";
        assert_eq!(number_after(l, "MemFree "), None);
        assert_eq!(number_after(l, "free: "), Some(812345));
    }

    /// Every guest script parses (`sh -n`): a syntax error would
    /// otherwise show only as a dead init in a guest.
    #[test]
    fn guest_scripts_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let hook = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../kjump/initramfs-tools/scripts/local-premount/kjump");
        let mut scripts: Vec<_> = fs::read_dir(&dir)
            .expect("scenarios/")
            .map(|e| e.expect("an entry").path())
            .collect();
        scripts.push(hook);
        assert!(scripts.len() > 5);
        for s in scripts {
            let out = std::process::Command::new("sh")
                .arg("-n")
                .arg(&s)
                .output()
                .expect("sh");
            assert!(
                out.status.success(),
                "{}: {}",
                s.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
