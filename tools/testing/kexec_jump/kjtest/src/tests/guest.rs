// SPDX-License-Identifier: GPL-2.0

//! The guest: booting a kernel in QEMU with a test's initramfs and disks,
//! and reading its serial console with the tests' failure conventions.

use super::images::{base_image, init_script};
use super::verdict::Failure;
use crate::qemu::{Disk, Vm, VmConfig};
use crate::Ctx;
use std::{fs, path::PathBuf, time::Duration};

pub(crate) const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The guest's serial console, with the test's failure conventions.
pub struct Guest {
    pub(super) vm: Vm,
}

impl Guest {
    /// A failure for `reason`, with the console's last 25 lines.
    pub(crate) fn fail(&self, reason: String) -> Failure {
        let t = self.vm.transcript();
        let excerpt = t[t.len().saturating_sub(25)..]
            .iter()
            .map(|l| l.text.clone())
            .collect();
        Failure::with_excerpt(reason, excerpt)
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
    pub(super) fn ref_died_after(&self, ctx: &Ctx, why: &str, mark: &str) -> bool {
        ctx.name == "ref"
            && why.starts_with("QEMU exited")
            && self.said_since(mark, "physcall:").is_empty()
    }

    /// The console so far.
    pub fn vm(&self) -> &Vm {
        &self.vm
    }
}

/// The number after `key` in `line`.
pub(crate) fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Boots `ctx`'s kernel with `initrd` on the usual machine: 2 CPUs, 1 GiB.
pub(super) fn boot(ctx: &Ctx, initrd: Vec<u8>, append: &str) -> Result<Guest, Failure> {
    boot_on(ctx, initrd, append, None, 2)
}

/// Boots `ctx`'s kernel with `initrd`, `disk` and `cpus` CPUs.
pub(crate) fn boot_on(
    ctx: &Ctx,
    initrd: Vec<u8>,
    append: &str,
    disk: Option<PathBuf>,
    cpus: u32,
) -> Result<Guest, Failure> {
    boot_disks(
        ctx,
        initrd,
        append,
        disk.into_iter().map(Disk::File).collect(),
        cpus,
        1024,
    )
}

/// Boots `ctx`'s kernel with `initrd`, `disks` (/dev/vda first), `cpus`
/// CPUs and `mem_mib` MiB of RAM.
pub(crate) fn boot_disks(
    ctx: &Ctx,
    initrd: Vec<u8>,
    append: &str,
    disks: Vec<Disk>,
    cpus: u32,
    mem_mib: u32,
) -> Result<Guest, Failure> {
    boot_vm(ctx, initrd, append, disks, cpus, mem_mib, false)
}

/// [`boot_disks`] with 2 CPUs and 1 GiB, where the guest's power-off
/// stops it (`Vm::wait_stopped`) and its memory can be saved.
pub(crate) fn boot_stopping_at_poweroff(
    ctx: &Ctx,
    initrd: Vec<u8>,
    append: &str,
    disks: Vec<Disk>,
) -> Result<Guest, Failure> {
    boot_vm(ctx, initrd, append, disks, 2, 1024, true)
}

fn boot_vm(
    ctx: &Ctx,
    initrd: Vec<u8>,
    append: &str,
    disks: Vec<Disk>,
    cpus: u32,
    mem_mib: u32,
    stop_at_poweroff: bool,
) -> Result<Guest, Failure> {
    if !ctx.kernel.exists() {
        return Err(Failure::new(format!(
            "kernel {} missing: run scripts/build-kernel.sh",
            ctx.kernel.display()
        )));
    }
    let path = ctx.scratch.join("initrd.cpio");
    fs::write(&path, initrd).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let cfg = VmConfig {
        kernel: ctx.kernel.clone(),
        initrd: path,
        append: format!("console=ttyS0 panic=-1 rdinit=/init {append}"),
        smp: cpus,
        threads: ctx.threads,
        mem_mib,
        disks,
        cpu: ctx.cpu,
        stop_at_poweroff,
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
    let vm = Vm::start(&cfg, &log).map_err(Failure::new)?;
    Ok(Guest { vm })
}

/// Boots with every build of the checksum program (/boot/checksum.elf,
/// bench.elf, int3.elf, fault.elf, checksum-256m.elf), platform.elf and
/// kjump, and runs `body` between "KJ: A up" and "KJ: done".
pub(super) fn boot_with_program(ctx: &Ctx, body: &str, append: &str) -> Result<Guest, Failure> {
    boot_with_program_on(ctx, body, append, 2)
}

/// [`boot_with_program`] on a guest with `cpus` CPUs.
pub(super) fn boot_with_program_on(
    ctx: &Ctx,
    body: &str,
    append: &str,
    cpus: u32,
) -> Result<Guest, Failure> {
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
        .map_err(Failure::new)?;
    boot_on(ctx, image.finish(), append, None, cpus)
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
