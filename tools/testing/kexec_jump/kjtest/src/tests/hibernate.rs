// SPDX-License-Identifier: GPL-2.0

//! Hibernation through kexec jump: `kjump hibernate` in A, a power-off,
//! a cold boot of the same kernel, command line and initramfs, whose
//! initramfs hook resumes A with `kjump resume`. /dev/vda is the resume
//! device, /dev/vdb an ext2 disk A writes to.

use crate::tests::{
    boot_disks, kjump_image, number_after, Failure, Guest, TestResult, Verdict, SECS,
};
use crate::Ctx;
use std::{fs, path::PathBuf, process::Command};

/// The one boot entry: the reservation and the resume device.
const ARGS: &str = "crashkernel=160M kjump.resume=/dev/vda";
const HOOK: &str =
    include_str!("../../../../../kjump/initramfs-tools/scripts/local-premount/kjump");
const SCRIPT: &str = include_str!("../../../scenarios/hibernate.sh");

fn setup(reason: String) -> Failure {
    Failure {
        reason,
        excerpt: vec![],
    }
}

/// A's initramfs: the hibernate scenario, kjump, the initramfs hook, and
/// this kernel as B.
fn image(ctx: &Ctx, conf: &str) -> Result<Vec<u8>, Failure> {
    Ok(kjump_image(ctx, SCRIPT, conf, false)?
        .file("scripts/local-premount/kjump", HOOK.as_bytes(), 0o755)
        .host_file(&ctx.kernel, "boot/bzImage", 0o644)
        .map_err(setup)?
        .finish())
}

/// A sparse raw disk of `mib` MiB in the scratch directory.
fn raw_disk(ctx: &Ctx, name: &str, mib: u64) -> Result<PathBuf, Failure> {
    let path = ctx.scratch.join(name);
    fs::File::create(&path)
        .and_then(|f| f.set_len(mib << 20))
        .map_err(|e| setup(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// A 16 MiB ext2 disk.
fn ext2_disk(ctx: &Ctx) -> Result<PathBuf, Failure> {
    let path = raw_disk(ctx, "data.img", 16)?;
    host(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext2"])
            .arg(&path),
    )?;
    Ok(path)
}

/// Runs a host tool; its output, or why it failed.
fn host(cmd: &mut Command) -> Result<String, Failure> {
    let what = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| setup(format!("{what}: {e}: run scripts/setup-toolchain.sh")))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(setup(format!("{what} failed: {}", text.trim())));
    }
    Ok(text)
}

fn boot(ctx: &Ctx, initrd: &[u8], disks: &[&PathBuf]) -> Result<Guest, Failure> {
    boot_disks(
        ctx,
        initrd.to_vec(),
        ARGS,
        disks.iter().map(|d| d.to_path_buf()).collect(),
        2,
        1024,
    )
}

/// A normal boot that hibernates: returns B's report line.
fn hibernate(g: &mut Guest) -> Result<String, Failure> {
    g.step("KJ: normal boot", 120)?;
    g.step("KJ: A holds", 120)?;
    g.step("kjump: hibernating to /dev/vda", 120)?;
    let written = g.step("kjump: image written", 600)?;
    g.step("kjump: powering off", 60)?;
    g.vm.wait_exit(SECS(60)).map_err(|e| g.fail(e))?;
    Ok(written)
}

/// A hibernates holding 256 MiB and a file open for writing; the next
/// boot (same kernel, command line and initramfs) resumes it: the memory
/// is intact, A writes more and closes the file; the host's e2fsck finds
/// the disk clean and the file holds both writes. The boot after that is
/// a normal one: the image was resumed once.
pub(super) fn hibernate_resume_round_trip(ctx: &Ctx) -> TestResult {
    let resume = raw_disk(ctx, "resume.img", 1024)?;
    let data = ext2_disk(ctx)?;
    let initrd = image(ctx, "MEM_MIB=256\nDATA=1\nHIBERNATE=1\n")?;

    let mut g = boot(ctx, &initrd, &[&resume, &data])?;
    let written = hibernate(&mut g)?;
    let ranges = number_after(&written, "pages in ").unwrap_or(0);
    println!("    {}", written.trim_start_matches("kjump: "));
    if ranges <= 16 {
        return Err(g.fail(format!("want an image of more than 16 ranges: {written}")));
    }

    let mut g = boot(ctx, &initrd, &[&resume, &data])?;
    g.step("kjump: image on /dev/vda is valid", 300)?;
    g.step("kjump: resuming A", 300)?;
    let l = g.step("KJ: A resumed", 300)?;
    if !l.contains("cpus=0-1") {
        return Err(g.fail(format!("A's CPUs after the resume: {l}")));
    }
    g.step("KJ: A memory intact", 120)?;
    g.step("KJ: done", 60)?;
    g.vm.wait_exit(SECS(60)).map_err(|e| g.fail(e))?;
    let boot_to_a =
        g.vm.transcript()
            .iter()
            .find(|l| l.text.contains("KJ: A resumed"))
            .map(|l| l.at.as_secs_f64())
            .unwrap_or(0.0);
    println!("    resumed: A running again {boot_to_a:.1} s after C's QEMU started");

    let fsck = host(Command::new("e2fsck").args(["-fn"]).arg(&data))
        .map_err(|f| setup(format!("e2fsck -fn on A's data disk: {}", f.reason)))?;
    let log = host(
        Command::new("debugfs")
            .args(["-R", "cat /log.txt"])
            .arg(&data),
    )?;
    if !log.contains("written before hibernation") || !log.contains("written after resume") {
        return Err(setup(format!("A's file after the resume: {log:?}")));
    }
    println!(
        "    e2fsck -fn clean ({} lines); the file holds both writes",
        fsck.lines().count()
    );

    let mut g = boot(ctx, &initrd, &[&resume, &data])?;
    let l = g.step("no resume from /dev/vda", 120)?;
    if !l.contains("already resumed") {
        return Err(g.fail(format!("the third boot: {l}")));
    }
    g.step("KJ: normal boot", 60)?;
    Ok(Verdict::Pass)
}

/// Damaged images: each is refused with its reason, and the boot goes on.
pub(super) fn hibernate_refuses_bad_images(ctx: &Ctx) -> TestResult {
    let resume = raw_disk(ctx, "resume.img", 1024)?;
    let initrd = image(ctx, "MEM_MIB=64\nDATA=0\nHIBERNATE=1\n")?;
    let mut g = boot(ctx, &initrd, &[&resume])?;
    hibernate(&mut g)?;
    let good = fs::read(&resume).map_err(|e| setup(format!("{}: {e}", resume.display())))?;
    let end = {
        let h = &good[..4096];
        u64::from_le_bytes(h[144..152].try_into().unwrap()) as usize
    };

    let no_hibernate = image(ctx, "MEM_MIB=0\nDATA=0\nHIBERNATE=0\n")?;
    let mut flipped = good[..end].to_vec();
    flipped[4096 + 1000] ^= 0x40;
    let mut other_build = good[..end].to_vec();
    other_build[20] ^= 0xff;
    let sum = xxhash_rust::xxh3::xxh3_64(&other_build[..192]);
    other_build[192..200].copy_from_slice(&sum.to_le_bytes());
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "a flipped byte in a chunk",
            flipped,
            "chunk 0 of the image is corrupt",
        ),
        (
            "a truncated device",
            good[..end / 2].to_vec(),
            "the image is truncated",
        ),
        (
            "an image of another build",
            other_build,
            "from another kernel build",
        ),
        (
            "a device of zeros",
            vec![0u8; 1 << 20],
            "no hibernation image there",
        ),
    ];
    for (what, bytes, why) in cases {
        let path = ctx.scratch.join("bad.img");
        fs::write(&path, &bytes).map_err(|e| setup(format!("{}: {e}", path.display())))?;
        let mut g = boot(ctx, &no_hibernate, &[&path])?;
        let l = g.step("no resume from /dev/vda", 300)?;
        if !l.contains(why) {
            return Err(g.fail(format!("{what}: want \"{why}\": {l}")));
        }
        g.step("KJ: normal boot", 60)?;
        g.step("KJ: done", 60)?;
        println!("    {what}: {}", l.trim_start_matches("kjump: "));
    }
    Ok(Verdict::Pass)
}
