// SPDX-License-Identifier: GPL-2.0

//! kjump on a real system: a Debian bookworm root filesystem built from
//! Debian's packages (scripts/build-debian-image.sh: mmdebstrap, the kjump
//! package from scripts/build-packages.sh installed with dpkg, ext4),
//! booted on virtio with systemd as PID 1, the kernel mounting root=
//! itself (no initramfs generator involved yet). B is our kernel
//! with kjump.sh's B side in its initramfs, as in the busybox kjump tests.

use super::guest::{boot_disks, Guest, SECS};
use super::images::kjump_image;
use super::kjump::{KjumpTrips, Shape, A_ARGS};
use super::trips::{round_trips, Trips};
use super::verdict::{Failure, TestResult, Verdict};
use crate::{initramfs::Initramfs, qemu::Disk, Ctx};
use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

/// Round trips from the Debian system.
const TRIPS: u32 = 3;

/// A's kernel: ours, whose configuration has what systemd needs
/// (kernel/configs/kexec_jump_systemd.config); the first option missing
/// from it fails the test.
fn debian_kernel(ctx: &Ctx) -> Result<PathBuf, Failure> {
    let want = include_str!("../../../../../../kernel/configs/kexec_jump_systemd.config");
    let config_path = ctx.kernel.ancestors().nth(4).map(|o| o.join(".config"));
    let config = config_path
        .as_ref()
        .and_then(|p| fs::read_to_string(p).ok())
        .unwrap_or_default();
    match want
        .lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .find(|l| !config.lines().any(|c| c == *l))
    {
        Some(missing) => Err(Failure::new(format!(
            "{} lacks {missing}, which systemd needs: run scripts/build-kernel.sh ours",
            ctx.kernel.display()
        ))),
        None => Ok(ctx.kernel.clone()),
    }
}

/// Runs `cmd`, failing with its name and stderr's last line.
fn run(cmd: &mut Command, what: &str) -> Result<String, Failure> {
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Failure::new(format!("{what}: {e}")))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let last = err.lines().last().unwrap_or_default();
        return Err(Failure::new(format!(
            "{what} failed ({}): {last}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The root filesystem image (built once, then cached by its inputs), and
/// how long getting it took.
fn root_image() -> Result<(PathBuf, f64), Failure> {
    let start = Instant::now();
    let script = crate::root().join("scripts/build-debian-image.sh");
    let out = run(&mut Command::new(&script), "scripts/build-debian-image.sh")?;
    let path = out.lines().last().unwrap_or_default().trim();
    let path = PathBuf::from(path);
    if !path.is_file() {
        return Err(Failure::new(format!(
            "scripts/build-debian-image.sh named no image: {out}"
        )));
    }
    Ok((path, start.elapsed().as_secs_f64()))
}

/// A copy of `image` for this test with the scenario's files written
/// into it by debugfs: B's kernel and initramfs, kj-guest, the A side
/// and its units.
fn test_disk(ctx: &Ctx, image: &Path) -> Result<PathBuf, Failure> {
    let disk = ctx.scratch.join("root.ext4");
    run(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(image)
            .arg(&disk),
        "cp of the root filesystem image",
    )?;
    let b_initrd = kjump_image(
        ctx,
        include_str!("../../../scenarios/kjump.sh"),
        "MEM_MIB=32\nDUMP=0\n",
        false,
    )?
    .finish();
    let files = ctx.scratch.join("files");
    fs::create_dir_all(&files).map_err(|e| Failure::new(format!("{}: {e}", files.display())))?;
    let put = |name: &str, bytes: &[u8], mode: u32| -> Result<PathBuf, Failure> {
        let p = files.join(name);
        let err = |e: std::io::Error| Failure::new(format!("{}: {e}", p.display()));
        fs::write(&p, bytes).map_err(err)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(err)?;
        Ok(p)
    };
    let read = |p: &Path| fs::read(p).map_err(|e| Failure::new(format!("{}: {e}", p.display())));
    // (directory in the image, name, host file)
    let writes = [
        (
            "/var/lib/kjtest",
            "bzImage",
            put("bzImage", &read(&ctx.kernel)?, 0o644)?,
        ),
        (
            "/var/lib/kjtest",
            "initrd",
            put("initrd", &b_initrd, 0o644)?,
        ),
        (
            "/usr/local/bin",
            "kj-guest",
            put("kj-guest", &read(&ctx.guest_bin)?, 0o755)?,
        ),
        (
            "/usr/local/sbin",
            "kj-scenario",
            put(
                "kj-scenario",
                include_bytes!("../../../scenarios/debian.sh"),
                0o755,
            )?,
        ),
        (
            "/etc",
            "kj-prelude.sh",
            put(
                "kj-prelude.sh",
                include_bytes!("../../../scenarios/prelude.sh"),
                0o644,
            )?,
        ),
        (
            "/etc",
            "kj.conf",
            put(
                "kj.conf",
                format!("TRIPS={TRIPS}\nMEM_MIB=32\n").as_bytes(),
                0o644,
            )?,
        ),
        (
            "/etc/systemd/system",
            "kj-scenario.service",
            put(
                "kj-scenario.service",
                include_bytes!("../../../debian/kj-scenario.service"),
                0o644,
            )?,
        ),
        (
            "/etc/systemd/system",
            "kj-memhold.service",
            put(
                "kj-memhold.service",
                include_bytes!("../../../debian/kj-memhold.service"),
                0o644,
            )?,
        ),
    ];
    let mut cmds = String::from("mkdir /var/lib/kjtest\n");
    for (dir, name, host) in &writes {
        cmds += &format!("cd {dir}\nwrite {} {name}\n", host.display());
    }
    let cmd_file = put("debugfs.cmds", cmds.as_bytes(), 0o644)?;
    let out = run(
        Command::new("debugfs")
            .arg("-w")
            .arg("-f")
            .arg(&cmd_file)
            .arg(&disk),
        "debugfs -w",
    )?;
    // debugfs goes on after a failed command: each write must have made
    // its file.
    for (dir, name, _) in &writes {
        let path = format!("{dir}/{name}");
        let stat = run(
            Command::new("debugfs")
                .arg("-R")
                .arg(format!("stat {path}"))
                .arg(&disk),
            "debugfs stat",
        )?;
        if !stat.contains("Type: regular") {
            return Err(Failure::new(format!(
                "debugfs did not write {path} into the image: {out}"
            )));
        }
    }
    Ok(disk)
}

/// A line "KJ: A system WHEN state=STATE failed=[UNITS] ..." says
/// running with no failed unit.
fn running(g: &Guest, line: &str, when: &str) -> Result<(), Failure> {
    if line.contains(" state=running ") && line.contains(" failed=[] ") {
        return Ok(());
    }
    Err(g.fail(format!(
        "systemd {when}: want running with no failed unit: {line}"
    )))
}

/// The kjump checks of each trip (B's side, A's clock and memory), and
/// after each the Debian system's: journald takes messages and is the
/// same process, the service holding memory since boot too, a timer
/// armed before the trips fires again, and systemd says running with no
/// failed unit.
struct DebianTrips<'a>(KjumpTrips<'a>);

impl Trips for DebianTrips<'_> {
    fn b_side(&mut self, g: &mut Guest, i: u32) -> Result<Option<Verdict>, Failure> {
        self.0.b_side(g, i)
    }

    fn a_resumed(&mut self, g: &mut Guest, i: u32, line: &str) -> Result<(), Failure> {
        self.0.a_resumed(g, i, line)
    }

    fn a_checked(&mut self, g: &mut Guest, i: u32) -> Result<(), Failure> {
        let l = g.step(&format!("KJ: A system after {i} "), 60)?;
        running(g, &l, &format!("after jump {i}"))?;
        if !l.contains("journal ok timer ok") {
            return Err(g.fail(format!("journald and the timer after jump {i}: {l}")));
        }
        Ok(())
    }
}

/// A Debian bookworm system (systemd as PID 1, udev, journald; ext4 root
/// on virtio; kjump from its Debian package) boots to `systemctl
/// is-system-running` = running with no failed unit, loads B with `kjump
/// load` and makes round trips with `kjump exec`: each time B comes up
/// (then is resumed) and checks its memory, A gets its CPUs back, its
/// clock and a sleeper keep time, a process's memory is intact, the
/// kernel log stays quiet, journald (the same process) takes a message,
/// a service started at boot holding 64 MiB is the same process, a
/// timer firing every second fires again, and systemd still says
/// running with no failed unit. At the end the
/// service's memory is intact, journald never restarted, and systemd
/// powers the machine off cleanly.
pub fn debian_systemd_kjump_round_trip(ctx: &Ctx) -> TestResult {
    let kernel = debian_kernel(ctx)?;
    let (image, took) = root_image()?;
    println!(
        "    root filesystem {} ready in {took:.0} s",
        image.file_name().unwrap_or_default().to_string_lossy()
    );
    let disk = test_disk(ctx, &image)?;
    let a = Ctx {
        kernel,
        ..ctx.clone()
    };
    let append = format!(
        "root=/dev/vda rw rootfstype=ext4 {A_ARGS} systemd.wants=kj-memhold.service \
         systemd.wants=kj-scenario.service"
    );
    let s = Shape {
        cpus: 2,
        mem_mib: 1024,
        trips: TRIPS,
        exec_cpu: 0,
        reload: 0,
        mark_above: 0,
        tag_mib: "0",
        dump: false,
    };
    // The harness always passes an initramfs: this one has no /init, so
    // the kernel mounts root= itself and starts /sbin/init (systemd).
    let mut g = boot_disks(
        &a,
        Initramfs::new().finish(),
        &append,
        vec![Disk::File(disk)],
        s.cpus,
        s.mem_mib,
    )?;
    let l = g.step("KJ: A system ", 600)?;
    running(&g, &l, "at boot")?;
    if !l.contains("init=systemd") {
        return Err(g.fail(format!("PID 1 is not systemd: {l}")));
    }
    let at = g.vm().transcript().last().map(|l| l.at.as_secs_f64());
    println!("    systemd running after {:.0} s", at.unwrap_or_default());
    let l = g.step("KJ: A package kjump", 60)?;
    if !l.contains("install ok installed") || !l.contains(" at /usr/sbin/kjump: ") {
        return Err(g.fail(format!("kjump is not the package's: {l}")));
    }
    let up = g.step("KJ: A up", 60)?;
    if !up.contains("cpus=0-1") {
        return Err(g.fail(format!("want cpus=0-1 in A: {up}")));
    }
    let loaded = g.step("KJ: A loaded", 120)?;
    if !loaded.contains("resident") {
        return Err(g.fail(format!("kjump load: {loaded}")));
    }
    let start = Instant::now();
    round_trips(
        &mut g,
        TRIPS,
        false,
        &mut DebianTrips(KjumpTrips::new(ctx, &s)),
    )?;
    println!(
        "    {TRIPS} round trips from systemd in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    let l = g.step("KJ: A memhold ", 60)?;
    if !l.contains("success memhold: intact 64 MiB") {
        return Err(g.fail(format!("the service holding memory since boot: {l}")));
    }
    let l = g.step("KJ: A journald ", 30)?;
    let pid = |key: &str| {
        l.split(key)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
    };
    if !l.contains("restarts=0") || pid(" pid=") != pid(" was=") {
        return Err(g.fail(format!("journald restarted: {l}")));
    }
    let l = g.step("KJ: A system at the end ", 30)?;
    running(&g, &l, "at the end")?;
    g.step("reboot: Power down", 180)?;
    g.vm.wait_exit(SECS(30)).map_err(|e| g.fail(e))?;
    println!("    journald and the service kept, systemd running, clean poweroff");
    Ok(Verdict::Pass)
}
