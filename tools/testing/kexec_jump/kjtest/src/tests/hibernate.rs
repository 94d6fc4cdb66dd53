// SPDX-License-Identifier: GPL-2.0

//! Hibernation through kexec jump: `kjump hibernate` in A, a power-off,
//! a cold boot of the same kernel, command line and initramfs, whose
//! initramfs hook resumes A with `kjump resume`. /dev/vda is the resume
//! device, /dev/vdb an ext2 disk A writes to.

use super::disks::{ext2_disk, host, raw_disk};
use super::guest::{boot_disks, number_after, Guest, SECS};
use super::images::kjump_image;
use super::verdict::{Failure, TestResult, Verdict};
use crate::qemu::Disk;
use crate::Ctx;
use std::{fs, path::PathBuf, process::Command};

/// The one boot entry: the reservation and the resume device.
pub(super) const ARGS: &str = "crashkernel=160M kjump.resume=/dev/vda";
/// A resume device's UUID, given by kjump format --uuid.
const UUID: &str = "6b6a756d-7000-4000-8000-000000000001";
const DEVICE_SCRIPT: &str = include_str!("../../../scenarios/device.sh");
pub(super) const HOOK: &str =
    include_str!("../../../../../kjump/initramfs-tools/scripts/local-premount/kjump");
pub(super) const SCRIPT: &str = include_str!("../../../scenarios/hibernate.sh");

/// A's initramfs: the hibernate scenario, kjump, the initramfs hook, and
/// this kernel as B.
pub(super) fn image(ctx: &Ctx, conf: &str) -> Result<Vec<u8>, Failure> {
    Ok(kjump_image(ctx, SCRIPT, conf, false)?
        .file("scripts/local-premount/kjump", HOOK.as_bytes(), 0o755)
        .host_file(&ctx.kernel, "boot/bzImage", 0o644)
        .map_err(Failure::new)?
        .finish())
}

fn boot(ctx: &Ctx, initrd: &[u8], disks: &[&PathBuf]) -> Result<Guest, Failure> {
    boot_args(ctx, initrd, disks, ARGS)
}

pub(super) fn boot_args(
    ctx: &Ctx,
    initrd: &[u8],
    disks: &[&PathBuf],
    args: &str,
) -> Result<Guest, Failure> {
    boot_mem(ctx, initrd, disks, args, 1024)
}

fn boot_mem(
    ctx: &Ctx,
    initrd: &[u8],
    disks: &[&PathBuf],
    args: &str,
    mem_mib: u32,
) -> Result<Guest, Failure> {
    boot_disks(
        ctx,
        initrd.to_vec(),
        args,
        disks.iter().map(|d| Disk::File(d.to_path_buf())).collect(),
        2,
        mem_mib,
    )
}

/// A boot that finds no image to resume on /dev/vda, for a reason
/// holding `why`: returns kjump's line.
pub(super) fn not_resumed(g: &mut Guest, why: &str) -> Result<String, Failure> {
    let l = g.step("no resume from /dev/vda", 300)?;
    if !l.contains(why) {
        return Err(g.fail(format!("want \"{why}\": {l}")));
    }
    Ok(l)
}

/// B gave up, for a reason holding `why`, and jumped back: A says so and
/// goes on with both CPUs and its process memory intact. Returns B's
/// line.
pub(super) fn a_back_after_failure(g: &mut Guest, why: &str) -> Result<String, Failure> {
    let b = g.step("kjump: hibernate failed in B:", 300)?;
    if !b.contains(why) {
        return Err(g.fail(format!("B's failure: {b}")));
    }
    // A says why too: B left it on the device's first block.
    let a = g.step("kjump: B came back without a resumed image", 120)?;
    if !a.contains(why) {
        return Err(g.fail(format!("A does not say why B failed ({why}): {a}")));
    }
    let l = g.step("KJ: A back after a failed hibernation", 60)?;
    if !l.contains("cpus=0-1") {
        return Err(g.fail(format!("A's CPUs: {l}")));
    }
    Ok(b)
}

/// A's process memory, held across every failed hibernation, is intact.
pub(super) fn a_intact_at_the_end(g: &mut Guest) -> Result<(), Failure> {
    g.step("KJ: A memory intact", 120)?;
    g.step("KJ: done", 60)?;
    Ok(())
}

/// A normal boot that hibernates: returns B's report line.
pub(super) fn hibernate(g: &mut Guest) -> Result<String, Failure> {
    g.step("KJ: normal boot", 120)?;
    g.step("KJ: A holds", 120)?;
    g.step("kjump: hibernating to /dev/vda", 120)?;
    let written = g.step("kjump: image written", 600)?;
    g.step("kjump: powering off", 60)?;
    g.vm.wait_exit(SECS(60)).map_err(|e| g.fail(e))?;
    Ok(written)
}

/// A hibernates holding 256 MiB, 16 MiB more in 64 KiB pieces (so the image
/// has many ranges) and a file open for writing; the next
/// boot (same kernel, command line and initramfs) resumes it: the memory
/// is intact, A writes more and closes the file; the host's e2fsck finds
/// the disk clean and the file holds both writes. The boot after that is
/// a normal one: the image was resumed once. kjump leaves B loaded after
/// the resume (`KJUMP_KEEP_B=1`): `kexec -e` into it gets `ENOEXEC` (B
/// never jumped back; the kernel that restored A handed it no re-entry
/// point), where it used to jump into whatever the dead restoring kernel
/// left at its old entry. Both boots run with
/// `init_on_free=1`: after the resume, fresh pages (which the kernel then
/// does not clear on allocation) read as zero, not as what C left there.
pub(super) fn hibernate_resume_round_trip(ctx: &Ctx) -> TestResult {
    let resume = raw_disk(ctx, "resume.img", 1024)?;
    let data = ext2_disk(ctx, 16)?;
    // The device named by the UUID kjump format gives it, on both sides.
    let initrd = image(
        ctx,
        &format!(
            "MEM_MIB=256\nDATA=1\nHIBERNATE=1\nFRAGMENT_MIB=32\nZERO_CHECK=1\nKEEP_B=1\nFORMAT_ARGS='--uuid {UUID}'\n"
        ),
    )?;
    let boot = |ctx: &Ctx, initrd: &[u8], disks: &[&PathBuf]| {
        boot_args(
            ctx,
            initrd,
            disks,
            &format!("crashkernel=160M kjump.resume=UUID={UUID} init_on_free=1"),
        )
    };

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
    // B stayed loaded (KJUMP_KEEP_B): it never jumped back, the kernel
    // that restored A did, so entering B again must be refused.
    let exec = g.step("KJ: A exec after the resume:", 120)?;
    if !exec.contains("errno 8 ") {
        return Err(g.fail(format!("want ENOEXEC for kexec -e into B: {exec}")));
    }
    println!("    {}", exec.trim_start_matches("KJ: A "));
    let zero = g.step("KJ: A zero-check:", 300)?;
    println!(
        "    init_on_free=1: {}",
        zero.trim_start_matches("KJ: A zero-check: ")
    );
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
        .map_err(|f| Failure::new(format!("e2fsck -fn on A's data disk: {}", f.reason)))?;
    let log = host(
        Command::new("debugfs")
            .args(["-R", "cat /log.txt"])
            .arg(&data),
    )?;
    if !log.contains("written before hibernation") || !log.contains("written after resume") {
        return Err(Failure::new(format!("A's file after the resume: {log:?}")));
    }
    println!(
        "    e2fsck -fn clean ({} lines); the file holds both writes",
        fsck.lines().count()
    );

    let mut g = boot(ctx, &initrd, &[&resume, &data])?;
    let l = g.step(&format!("no resume from UUID={UUID}"), 120)?;
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
    let written = hibernate(&mut g)?;
    // In clear (--key none, the default), and A and B say so.
    let said = g.said_since("KJ: normal boot", "kjump: the image will NOT be encrypted");
    if said.is_empty() || !written.trim_end().ends_with(", not encrypted") {
        return Err(g.fail(format!("want an image in clear, said so: {written}")));
    }
    let good = fs::read(&resume).map_err(|e| Failure::new(format!("{}: {e}", resume.display())))?;
    let end = {
        let h = &good[..4096];
        u64::from_le_bytes(h[144..152].try_into().unwrap()) as usize
    };

    let no_hibernate = image(ctx, "MEM_MIB=0\nDATA=0\nHIBERNATE=0\nSTATUS=1\n")?;
    let mut flipped = good[..end].to_vec();
    flipped[4096 + 1000] ^= 0x40;
    let other_build = cases_other_build(&good[..end]);
    let cases: [(&str, Vec<u8>, &str); 6] = [
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
        // The same machine? More RAM changes the firmware's memory map.
        (
            "the machine with 1152 MiB instead of 1024",
            good[..end].to_vec(),
            "from another machine or firmware",
        ),
        // Not the image's fault: the resuming kernel has too little free
        // memory (most of it reserved).
        (
            "a resuming kernel short of memory",
            good[..end].to_vec(),
            "not enough memory to resume",
        ),
    ];
    let path = ctx.scratch.join("bad.img");
    for (what, bytes, why) in cases {
        fs::write(&path, &bytes).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
        let args = match what.contains("short of memory") {
            true => "nokaslr crashkernel=800M kjump.resume=/dev/vda",
            false => ARGS,
        };
        let mem = if what.contains("1152 MiB") {
            1152
        } else {
            1024
        };
        let mut g = boot_mem(ctx, &no_hibernate, &[&path], args, mem)?;
        let l = g.step("no resume from /dev/vda", 300)?;
        if !l.contains(why) {
            return Err(g.fail(format!("{what}: want \"{why}\": {l}")));
        }
        g.step("KJ: normal boot", 60)?;
        g.step("KJ: done", 60)?;
        // Found but not resumed: invalidated before the boot went on.
        let block0 =
            fs::read(&path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
        let found = bytes.starts_with(b"KJHIBIMG");
        let invalidated = block0.starts_with(b"KJINVALD");
        if found != invalidated || (found && !l.contains("the image is invalidated")) {
            return Err(g.fail(format!(
                "{what}: image found {found}, invalidated {invalidated}: {l}"
            )));
        }
        // kjump status, before the hook and after it.
        let status = g.said_since("Run /init as init process", "KJ: status ");
        if found
            && !(status.len() == 2
                && status[0].contains("NOT encrypted (--key none)")
                && status[1].contains("the image there was invalidated: "))
        {
            return Err(g.fail(format!("{what}: kjump status said {status:?}")));
        }
        println!("    {what}: {}", l.trim_start_matches("kjump: "));
    }
    // The last invalidated image is never resumed, not even by a kernel
    // that could.
    let mut g = boot(ctx, &no_hibernate, &[&path])?;
    let l = g.step("no resume from /dev/vda", 300)?;
    if !l.contains("the image there was invalidated: ") {
        return Err(g.fail(format!("want the invalidated image refused: {l}")));
    }
    g.step("KJ: normal boot", 60)?;
    println!(
        "    then a kernel that could resume it: {}",
        l.trim_start_matches("kjump: ")
    );
    drop(g);
    // kjump.resume_failed=halt: another build's image is kept and the boot
    // stops before anything is mounted.
    fs::write(&path, cases_other_build(&good[..end]))
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let halt = format!("{ARGS} kjump.resume_failed=halt");
    let mut g = boot_args(ctx, &no_hibernate, &[&path], &halt)?;
    let l = g.step("no resume from /dev/vda, the boot must stop", 300)?;
    g.step("the boot stops", 60)?;
    std::thread::sleep(std::time::Duration::from_secs(3));
    if !g.said_since("the boot stops", "KJ: normal boot").is_empty() {
        return Err(g.fail("the boot went on after kjump kept the image".into()));
    }
    drop(g);
    let block0 = fs::read(&path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    if !block0.starts_with(b"KJHIBIMG") {
        return Err(Failure::new(
            "kjump.resume_failed=halt: the image was not kept".into(),
        ));
    }
    println!(
        "    kjump.resume_failed=halt: {}",
        l.trim_start_matches("kjump: ")
    );
    Ok(Verdict::Pass)
}

/// `image` with another build id in its header (checksum fixed).
fn cases_other_build(image: &[u8]) -> Vec<u8> {
    let mut other = image.to_vec();
    other[20] ^= 0xff;
    // The header's checksum covers its first 448 bytes and follows them.
    let sum = xxhash_rust::xxh3::xxh3_64(&other[..448]);
    other[448..456].copy_from_slice(&sum.to_le_bytes());
    other
}

/// kjump format and kjump hibernate refuse every device that is not
/// kjump's, each with its one line, and leave its first MiB as it was: no
/// signature (hibernate), another filesystem's signature, mounted (even
/// with --force), a whole disk with a partition table, an active swap
/// area, a swap signature; then --force formats the former swap device
/// with a given UUID, and kjump status finds it by that UUID.
pub(super) fn hibernate_device_must_be_kjumps(ctx: &Ctx) -> TestResult {
    let blank = raw_disk(ctx, "blank.img", 64)?;
    let ext2 = ext2_disk(ctx, 16)?;
    let parted = raw_disk(ctx, "parted.img", 64)?;
    // One MBR partition (type 0x83) from sector 2048 on; the disk's
    // signature makes its PARTUUID 6b6a756d-01.
    let mut mbr = vec![0u8; 512];
    mbr[440..444].copy_from_slice(&0x6b6a_756du32.to_le_bytes());
    mbr[446 + 4] = 0x83;
    mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&65536u32.to_le_bytes());
    mbr[510..].copy_from_slice(&[0x55, 0xaa]);
    fs::OpenOptions::new()
        .write(true)
        .open(&parted)
        .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, &mbr, 0))
        .map_err(|e| Failure::new(format!("{}: {e}", parted.display())))?;
    let initrd = kjump_image(ctx, DEVICE_SCRIPT, "", false)?
        .host_file(&ctx.kernel, "boot/bzImage", 0o644)
        .map_err(Failure::new)?
        .finish();
    let mut g = boot_args(
        ctx,
        &initrd,
        &[&blank, &ext2, &parted],
        &format!("crashkernel=160M kjump.resume=UUID={UUID}"),
    )?;
    for (what, why) in [
        ("no signature", "has no kjump signature"),
        ("foreign signature", "carries an ext2/3/4 filesystem"),
        ("mounted", "is mounted on /mnt"),
        (
            "whole disk with partitions",
            "is a whole disk with partitions (vdc1)",
        ),
        ("active swap", "is an active swap area"),
        ("swap signature", "carries a swap area"),
    ] {
        let l = g.step(&format!("KJ: refused {what}:"), 120)?;
        if !l.contains(why) {
            return Err(g.fail(format!("{what}: want \"{why}\": {l}")));
        }
        println!(
            "    {}",
            l.split_once("refused ").map_or(l.as_str(), |x| x.1)
        );
    }
    let l = g.step("KJ: formatted by PARTUUID:", 60)?;
    if !l.contains("/dev/vdc1 is kjump's now") {
        return Err(g.fail(format!("want PARTUUID=6B6A756D-01 to name /dev/vdc1: {l}")));
    }
    let l = g.step("KJ: formatted:", 60)?;
    if !l.contains(&format!("UUID={UUID}")) || !l.contains("over a swap area (--force)") {
        return Err(g.fail(format!("want the swap device formatted with the UUID: {l}")));
    }
    let l = g.step("KJ: status:", 60)?;
    if !l.contains(&format!(
        "resume device UUID={UUID}: no hibernation image there"
    )) {
        return Err(g.fail(format!("want kjump status to find the device by UUID: {l}")));
    }
    g.step("KJ: done", 60)?;
    Ok(Verdict::Pass)
}

/// A full page cache does not stop a resume: A (1536 MiB) writes and
/// reads 900 MiB of a file and holds 256 MiB. With `--image-size 65536`
/// (nothing dropped) its used pages do not fit the resuming kernel: the
/// resume is refused for want of memory and the image invalidated, as
/// every resume was before kjump shrank A. By default kjump drops the
/// clean page cache first (A uses more than 2/5 of its RAM), and A
/// hibernates and resumes with its memory intact.
pub(super) fn hibernate_with_full_page_cache(ctx: &Ctx) -> TestResult {
    const MEM: u32 = 1536;
    let resume = raw_disk(ctx, "resume.img", u64::from(MEM))?;
    let data = ext2_disk(ctx, 1200)?;
    for (shrink, args) in [(false, "--image-size 65536"), (true, "")] {
        let initrd = image(
            ctx,
            &format!("MEM_MIB=256\nDATA=1\nCACHE_MIB=900\nHIBERNATE=1\nHIBERNATE_ARGS='{args}'\n"),
        )?;
        let mut g = boot_mem(ctx, &initrd, &[&resume, &data], ARGS, MEM)?;
        let written = hibernate(&mut g)?;
        let said = |what: &str| {
            g.said_since("KJ: normal boot", what)
                .pop()
                .unwrap_or_default()
        };
        let cache = said("KJ: A page cache:");
        let dropped = said("kjump: A used");
        if shrink == dropped.is_empty() {
            return Err(g.fail(format!("shrink {shrink}, kjump said: {dropped:?}")));
        }
        if shrink {
            println!("    {}", dropped.trim_start_matches("kjump: "));
        }
        drop(g);
        let mut g = boot_mem(ctx, &initrd, &[&resume, &data], ARGS, MEM)?;
        if !shrink {
            let l = g.step("no resume from /dev/vda", 300)?;
            if !l.contains("not enough memory to resume") || !l.contains("invalidated") {
                return Err(g.fail(format!("want the resume refused for memory: {l}")));
            }
            println!(
                "    without shrinking ({}): {}",
                cache.trim_start_matches("KJ: A page cache: "),
                l.trim_start_matches("kjump: ")
            );
            continue;
        }
        g.step("KJ: A resumed", 600)?;
        g.step("KJ: A memory intact", 300)?;
        g.step("KJ: done", 60)?;
        println!("    shrunk: {}", written.trim_start_matches("kjump: "));
    }
    Ok(Verdict::Pass)
}

/// What another boot writes between the hibernation and the resume.
const OTHER_BOOT: &str = r#"#!/bin/sh
. /etc/kj-prelude.sh
mkdir -p /mnt
mount -t ext2 /dev/vdb /mnt || die "mount /dev/vdb"
echo "written by another boot" >/mnt/other.txt
umount /mnt || die "umount /dev/vdb"
mark "other boot wrote A's disk"
poweroff -f
"#;

/// A filesystem changed between the hibernation and the resume is never
/// resumed over: A hibernates with its ext2 disk mounted and a file open
/// for writing; another boot (an entry without kjump.resume=) mounts that
/// disk read-write and writes a file; the resume then refuses and
/// invalidates the image, the boot goes on, the host's `e2fsck -fn` is
/// clean and the other boot's file is intact.
pub(super) fn hibernate_refuses_changed_filesystem(ctx: &Ctx) -> TestResult {
    let resume = raw_disk(ctx, "resume.img", 1024)?;
    let data = ext2_disk(ctx, 16)?;
    let initrd = image(ctx, "MEM_MIB=64\nDATA=1\nHIBERNATE=1\n")?;
    let mut g = boot(ctx, &initrd, &[&resume, &data])?;
    hibernate(&mut g)?;
    drop(g);
    let other = kjump_image(ctx, OTHER_BOOT, "", false)?.finish();
    let mut g = boot_args(ctx, &other, &[&resume, &data], "crashkernel=160M")?;
    g.step("KJ: other boot wrote A's disk", 120)?;
    g.vm.wait_exit(SECS(60)).map_err(|e| g.fail(e))?;
    drop(g);
    let check = image(ctx, "MEM_MIB=0\nDATA=0\nHIBERNATE=0\n")?;
    let mut g = boot(ctx, &check, &[&resume, &data])?;
    let l = g.step("no resume from /dev/vda", 300)?;
    if !l.contains("the image is invalidated") || !l.contains("was changed since A hibernated") {
        return Err(g.fail(format!("want the resume refused: {l}")));
    }
    g.step("KJ: normal boot", 60)?;
    g.step("KJ: done", 60)?;
    drop(g);
    let fsck = host(Command::new("e2fsck").args(["-fn"]).arg(&data))
        .map_err(|f| Failure::new(format!("e2fsck -fn on A's data disk: {}", f.reason)))?;
    let file = host(
        Command::new("debugfs")
            .args(["-R", "cat /other.txt"])
            .arg(&data),
    )?;
    if !file.contains("written by another boot") {
        return Err(Failure::new(format!("the other boot's file: {file:?}")));
    }
    println!("    {}", l.trim_start_matches("kjump: "));
    println!(
        "    e2fsck -fn clean ({} lines); the other boot's file intact",
        fsck.lines().count()
    );
    Ok(Verdict::Pass)
}

/// What B's kernel prints when the test makes it panic (kjump.inject=crash
/// or oom): these lines are caused on purpose.
pub(super) const B_PANICS: &[&str] = &[
    "Kernel panic - not syncing: sysrq triggered crash",
    "Kernel panic - not syncing: System is deadlocked on memory",
    "Kernel panic - not syncing: Attempted to kill init!",
    "init invoked oom-killer:",
    "Out of memory and no killable processes",
];

/// B cannot lose A: a dynamically linked kjump is refused in A (B would
/// have no init), and a panic in B's kjump (injected with
/// kjump.inject=panic on B's command line) jumps back: A says why, goes
/// on with both CPUs and its process memory intact, and the device holds
/// no image. Then B's kernel itself panics, once mid-image (sysrq crash,
/// writes in flight) and once out of memory (B's init holds all it can):
/// B's panic return enters A's jump-back entry, and A is back each time,
/// saying that B's kernel stopped. Last, a panic on B's other CPU resets
/// the machine at once (the return works on the CPU A jumped from only).
pub(super) fn hibernate_failure_in_b_keeps_a(ctx: &Ctx) -> TestResult {
    let resume = raw_disk(ctx, "resume.img", 1024)?;
    let dynamic = crate::root().join("target/release/kjump");
    let initrd = kjump_image(
        ctx,
        SCRIPT,
        "MEM_MIB=64\nDATA=0\nHIBERNATE=1\nEXPECT_FAIL=1\nHIBERNATE_ARGS='--append kjump.inject=panic'\nINJECT_KERNEL='crash oom'\n",
        false,
    )?
    .file("scripts/local-premount/kjump", HOOK.as_bytes(), 0o755)
    .host_file(&ctx.kernel, "boot/bzImage", 0o644)
    .and_then(|i| {
        i.host_binary(
            dynamic
                .to_str()
                .ok_or("target/release/kjump: not a UTF-8 path")?,
            "bin/kjump-dynamic",
        )
    })
    .map_err(|e| Failure::new(format!("{e} (scripts/build-harness.sh builds the dynamic kjump)")))?
    .finish();
    let mut g = boot(ctx, &initrd, &[&resume])?;
    let l = g.step("KJ: A dynamic kjump refused:", 120)?;
    if !l.contains("dynamically linked") {
        return Err(g.fail(format!("want the dynamic kjump refused: {l}")));
    }
    g.vm.tolerate(B_PANICS);
    let b = a_back_after_failure(&mut g, "kjump panicked in B: injected")?;
    for (how, panic) in [
        ("crash", B_PANICS[0]),
        ("oom", "Kernel panic - not syncing: "),
    ] {
        let armed = g.step("kjump: a panic of B's kernel", 300)?;
        if !armed.contains("jumps back to A") {
            return Err(g.fail(format!("B's panic return not armed: {armed}")));
        }
        let l = g.step(panic, 300)?;
        let a = g.step("kjump: B came back without a resumed image", 300)?;
        if !a.contains("B's kernel stopped before the image was complete") {
            return Err(g.fail(format!("A does not say B's kernel stopped: {a}")));
        }
        let back = g.step("KJ: A back after B's kernel failed", 60)?;
        if !back.contains(&format!("({how}) cpus=0-1")) {
            return Err(g.fail(format!("A's CPUs after B's {how}: {back}")));
        }
        println!(
            "    B's {how}: \"{}\"; A back",
            l.trim().split_once("] ").map_or(l.trim(), |x| x.1)
        );
    }
    a_intact_at_the_end(&mut g)?;
    // Then, with the reservation shrunk to 96 MiB: refused in A, before
    // the jump, for B's kernel plus one image writer.
    let small =
        g.vm.transcript()
            .iter()
            .find(|l| l.text.contains("KJ: A small reservation refused:"))
            .map(|l| l.text.clone())
            .unwrap_or_default();
    if !small.contains("but the reservation is 96 MiB: boot A with crashkernel=") {
        return Err(g.fail(format!(
            "want a 96 MiB reservation refused in A: \"{small}\""
        )));
    }
    println!("    {}", small.split_once("refused: ").map_or("", |x| x.1));
    let block0 =
        fs::read(&resume).map_err(|e| Failure::new(format!("{}: {e}", resume.display())))?;
    if block0.starts_with(b"KJHIBIMG") {
        return Err(Failure::new(
            "an image is on the device after B gave up".into(),
        ));
    }
    println!("    {}", b.trim_start_matches("kjump: "));
    drop(g);

    // A panic on a CPU other than the one A jumped from cannot enter A
    // (A would resume on the wrong CPU): the machine resets at once.
    let elsewhere = image(
        ctx,
        "MEM_MIB=16\nDATA=0\nHIBERNATE=1\nEXPECT_FAIL=1\nHIBERNATE_ARGS='--append kjump.inject=crash-elsewhere'\n",
    )?;
    let mut g = boot(ctx, &elsewhere, &[&resume])?;
    g.vm.tolerate(B_PANICS);
    g.step("kjump: a panic of B's kernel jumps back to A", 300)?;
    g.step(B_PANICS[0], 300)?;
    let cpu = g.step("CPU: ", 30)?;
    if cpu.contains("CPU: 0 ") {
        return Err(g.fail(format!("the panic ran on B's boot CPU: {cpu}")));
    }
    g.vm.wait_exit(SECS(60)).map_err(|e| g.fail(e))?;
    if let Some(l) =
        g.vm.transcript()
            .iter()
            .find(|l| l.text.contains("KJ: A back"))
    {
        return Err(Failure::new(format!(
            "A came back on the wrong CPU: {}",
            l.text
        )));
    }
    println!("    B's crash on another CPU: the machine reset at once");
    Ok(Verdict::Pass)
}

/// The power is cut (QEMU killed) while B writes the image over an older,
/// complete image, after 10%, 50% and 99% of the pages: each next boot
/// finds no image and boots normally. (A's boot here lacks kjump.resume=,
/// so that the older image is there to be wrongly resumed; A hibernates
/// with --resume-elsewhere, after a first boot in which kjump refuses
/// without it and leaves the device untouched.)
pub(super) fn hibernate_power_cut_never_resumes(ctx: &Ctx) -> TestResult {
    let resume = raw_disk(ctx, "resume.img", 1024)?;
    let no_resume = "crashkernel=160M";
    let refused = image(ctx, "MEM_MIB=0\nDATA=0\nHIBERNATE=1\n")?;
    let mut g = boot_args(ctx, &refused, &[&resume], no_resume)?;
    let l = g.step(
        "kjump: this boot's command line has no kjump.resume=/dev/vda",
        300,
    )?;
    g.step("KJ: FAIL kjump hibernate", 60).or_else(|f| {
        match f.reason.contains("FAIL kjump hibernate") {
            true => Ok(String::new()),
            false => Err(f),
        }
    })?;
    drop(g);
    let head = fs::read(&resume).map_err(|e| Failure::new(format!("{}: {e}", resume.display())))?;
    if head[..1 << 20].iter().any(|&b| b != 0) {
        return Err(Failure::new(
            "the refused hibernation wrote to the device".into(),
        ));
    }
    println!(
        "    without kjump.resume=: {}",
        l.trim_start_matches("kjump: ")
    );
    let first = image(
        ctx,
        "MEM_MIB=64\nDATA=0\nHIBERNATE=1\nHIBERNATE_ARGS=--resume-elsewhere\n",
    )?;
    let mut g = boot_args(ctx, &first, &[&resume], no_resume)?;
    hibernate(&mut g)?;
    // The later boots keep the complete image (and the signature) there.
    let initrd = image(
        ctx,
        "MEM_MIB=64\nDATA=0\nHIBERNATE=1\nHIBERNATE_ARGS=--resume-elsewhere\nFORMAT=0\n",
    )?;
    let complete =
        fs::read(&resume).map_err(|e| Failure::new(format!("{}: {e}", resume.display())))?;
    let check = image(ctx, "MEM_MIB=0\nDATA=0\nHIBERNATE=0\n")?;
    for pct in [10, 50, 99] {
        fs::write(&resume, &complete)
            .map_err(|e| Failure::new(format!("{}: {e}", resume.display())))?;
        let mut g = boot_args(ctx, &initrd, &[&resume], no_resume)?;
        g.step("kjump: hibernating to /dev/vda", 300)?;
        g.step(&format!("kjump: hibernate {pct}%"), 600)?;
        drop(g);
        let mut g = boot(ctx, &check, &[&resume])?;
        let l = not_resumed(&mut g, "no hibernation image there").map_err(|f| {
            Failure::with_excerpt(format!("after a cut at {pct}%: {}", f.reason), f.excerpt)
        })?;
        g.step("KJ: normal boot", 60)?;
        g.step("KJ: done", 60)?;
        println!("    cut at {pct}%: {}", l.trim_start_matches("kjump: "));
    }
    Ok(Verdict::Pass)
}

const KERNEL_SCRIPT: &str = include_str!("../../../scenarios/kernel_hibernate.sh");

/// The kernel's own hibernation (swap on /dev/vdb) with `conf`; /dev/vda
/// is an unused disk, so that the swap disk is vdb as in the kjump runs.
fn kernel_image(ctx: &Ctx, conf: &str) -> Result<Vec<u8>, Failure> {
    Ok(kjump_image(ctx, KERNEL_SCRIPT, conf, false)?.finish())
}

/// What the kernel's hibernation did: "failed: ..." with its reason, or
/// "powered off" once it wrote an image.
fn kernel_hibernation_outcome(g: &mut Guest) -> Result<String, Failure> {
    g.step("KJ: hibernate start", 300)?;
    match g
        .vm
        .expect_any(&["KJ: kernel hibernation failed", "KJ: FAIL"], SECS(900))
    {
        Ok((0, l)) => {
            let why: Vec<String> = g
                .said_since("KJ: hibernate start", "PM: hibernation:")
                .into_iter()
                .filter(|l| {
                    ["rror", "free", "ailed", "short"]
                        .iter()
                        .any(|w| l.contains(w))
                })
                .map(|l| l.split("] ").last().unwrap_or(&l).to_string())
                .collect();
            Ok(format!(
                "failed: {} [{}]",
                l.text.split("failed: ").last().unwrap_or(""),
                why.join("; ")
            ))
        }
        Ok((_, l)) => Err(g.fail(l.text)),
        Err(e) if e.starts_with("QEMU exited") => Ok("powered off with an image".into()),
        Err(e) => Err(g.fail(e)),
    }
}

/// A mlocks 70% of RAM (1.5 GiB guest) with known data, hibernates with
/// kjump and resumes intact; loading A's pages costs the resuming kernel
/// no more than their size plus 64 MiB. The kernel's own hibernation on
/// the same guest and load is shown beside it (it needs as much free
/// memory as the image and is expected to fail). kjump's boots run with
/// `page_poison=1`: after the resume, fresh pages hold the poison the
/// kernel checks on allocation, not what the resuming kernel left there.
pub(super) fn hibernate_70_percent_of_ram(ctx: &Ctx) -> TestResult {
    const MEM: u32 = 1536;
    let hold = MEM * 70 / 100;
    let conf = format!("MEM_MIB={hold}\nMLOCK=1\nDATA=0\nHIBERNATE=1\n");
    let resume = raw_disk(ctx, "resume.img", u64::from(MEM))?;
    let initrd = image(ctx, &format!("{conf}ZERO_CHECK=1\n"))?;
    let args = format!("{ARGS} page_poison=1");
    let mut g = boot_mem(ctx, &initrd, &[&resume], &args, MEM)?;
    let written = hibernate(&mut g)?;
    let mut g = boot_mem(ctx, &initrd, &[&resume], &args, MEM)?;
    let l = g.step("kjump: loading A took", 600)?;
    let extra: i64 = l
        .rsplit_once('(')
        .and_then(|(_, x)| x.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| g.fail(format!("unreadable: {l}")))?;
    if extra > 64 {
        return Err(g.fail(format!(
            "loading A's pages cost more than 64 MiB over their size: {l}"
        )));
    }
    println!("    {}", l.trim_start_matches("kjump: "));
    g.step("kjump: resuming A", 600)?;
    g.step("KJ: A resumed", 600)?;
    g.step("KJ: A memory intact", 300)?;
    let zero = g.step("KJ: A zero-check:", 300)?;
    println!(
        "    page_poison=1: {}",
        zero.trim_start_matches("KJ: A zero-check: ")
    );
    g.step("KJ: done", 60)?;
    let image_mib = number_after(&written, "free left out, ").unwrap_or(0);
    println!("    kjump:  {hold} MiB mlocked of {MEM} MiB: hibernated ({image_mib} MiB image), resumed intact");

    let unused = raw_disk(ctx, "unused.img", 1)?;
    let swap = raw_disk(ctx, "swap.img", u64::from(MEM))?;
    let mut g = boot_mem(ctx, &kernel_image(ctx, &conf)?, &[&unused, &swap], "", MEM)?;
    let outcome = kernel_hibernation_outcome(&mut g)?;
    println!("    kernel: {hold} MiB mlocked of {MEM} MiB: echo disk > /sys/power/state {outcome}");
    Ok(Verdict::Pass)
}

/// Bytes of `path` in non-zero 4 KiB blocks: what an image occupies on
/// its device, measured the same way for both.
pub(super) fn used_bytes(path: &PathBuf) -> Result<u64, Failure> {
    let data = fs::read(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    Ok(data
        .chunks(4096)
        .filter(|b| b.iter().any(|&x| x != 0))
        .count() as u64
        * 4096)
}

/// When the first console line holding `what` arrived, in seconds since
/// the guest started.
fn seconds_at(g: &Guest, what: &str) -> Result<f64, Failure> {
    g.vm.transcript()
        .iter()
        .find(|l| l.text.contains(what))
        .map(|l| l.at.as_secs_f64())
        .ok_or_else(|| g.fail(format!("no line holding {what:?}")))
}

/// One hibernation and resume: seconds from "hibernate start" to the
/// guest gone, seconds from the next guest's start to A running again,
/// bytes of the image on its device.
struct Sample {
    to_off: f64,
    to_a: f64,
    bytes: u64,
}

/// Both sides' second boot: A back, its memory intact.
pub(super) fn resumed(g: &mut Guest) -> Result<f64, Failure> {
    g.step("KJ: A resumed", 600)?;
    g.step("KJ: A memory intact", 300)?;
    g.step("KJ: done", 60)?;
    seconds_at(g, "KJ: A resumed")
}

pub(super) fn powered_off(g: &mut Guest) -> Result<f64, Failure> {
    g.vm.wait_exit(SECS(900)).map_err(|e| g.fail(e))?;
    let start = seconds_at(g, "KJ: hibernate start")?;
    let end = g.vm.transcript().last().map_or(0.0, |l| l.at.as_secs_f64());
    Ok(end - start)
}

/// The page cache disk of a mixed workload, if any, for the guest's
/// kj.conf: `CACHE_DISK=` naming it as the guest's disk `dev`.
fn cache_conf(cache: Option<&PathBuf>, dev: &str) -> String {
    cache.map_or(String::new(), |_| format!("CACHE_DISK=/dev/{dev}\n"))
}

fn kjump_sample(ctx: &Ctx, conf: &str, cache: Option<&PathBuf>) -> Result<Sample, Failure> {
    let resume = raw_disk(ctx, "resume.img", 1024)?;
    let initrd = image(ctx, &(conf.to_string() + &cache_conf(cache, "vdb")))?;
    let disks: Vec<&PathBuf> = std::iter::once(&resume).chain(cache).collect();
    let mut g = boot(ctx, &initrd, &disks)?;
    hibernate(&mut g)?;
    let to_off = powered_off(&mut g)?;
    let bytes = used_bytes(&resume)?;
    let mut g = boot(ctx, &initrd, &disks)?;
    let to_a = resumed(&mut g)?;
    Ok(Sample {
        to_off,
        to_a,
        bytes,
    })
}

fn kernel_sample(ctx: &Ctx, conf: &str, cache: Option<&PathBuf>) -> Result<Sample, Failure> {
    let unused = raw_disk(ctx, "unused.img", 1)?;
    let swap = raw_disk(ctx, "swap.img", 1024)?;
    let initrd = kernel_image(ctx, &(conf.to_string() + &cache_conf(cache, "vdc")))?;
    let disks: Vec<&PathBuf> = [&unused, &swap].into_iter().chain(cache).collect();
    let mut g = boot_args(ctx, &initrd, &disks, "")?;
    g.step("KJ: hibernate start", 300)?;
    let to_off = powered_off(&mut g)?;
    if !g
        .said_since("KJ: hibernate start", "KJ: kernel hibernation failed")
        .is_empty()
    {
        return Err(g.fail("the kernel's hibernation failed".into()));
    }
    let bytes = used_bytes(&swap)?;
    let mut g = boot_args(ctx, &initrd, &disks, "")?;
    let to_a = resumed(&mut g)?;
    Ok(Sample {
        to_off,
        to_a,
        bytes,
    })
}

/// One row of the hibernation benchmark: name, unit, divisor, the figure.
type Row = (&'static str, &'static str, f64, fn(&Sample) -> f64);

/// The hibernation benchmark's rows.
const ROWS: [Row; 3] = [
    ("hibernate start -> powered off", "s", 1.0, |s| s.to_off),
    ("boot -> A running again", "s", 1.0, |s| s.to_a),
    ("image on the device", "MiB", 1048576.0, |s| s.bytes as f64),
];

/// MiB of page cache in the mixed workload: a disk of the mixed bytes,
/// read in full.
const MIXED_CACHE_MIB: u32 = 96;

/// The mixed workload's page cache disk: `mib` MiB of kj-guest's mixed
/// bytes (text, zeros, code, random), made by the same static binary the
/// guest runs.
fn mixed_disk(ctx: &Ctx, mib: u32) -> Result<PathBuf, String> {
    let out = std::process::Command::new(&ctx.guest_bin)
        .args(["mixed", "--mib", &mib.to_string(), "--seed", "91"])
        .output()
        .map_err(|e| format!("{}: {e}", ctx.guest_bin.display()))?;
    if !out.status.success() || out.stdout.len() != (mib as usize) << 20 {
        return Err(format!(
            "kj-guest mixed gave {} bytes: {}",
            out.stdout.len(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let path = ctx.scratch.join("cache.img");
    fs::write(&path, &out.stdout).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// kjump hibernate + resume against the kernel's own hibernation to a
/// swap device, same guest (1 GiB, 2 CPUs, TCG), same load (a process
/// holding `mib` MiB), `rounds` runs of each, alternating. With `mixed`,
/// the process holds text, zeros, machine code and random data, a
/// quarter each, and A first reads a 96 MiB disk of the same mix (page
/// cache); without, the process holds random bytes. Prints each
/// figure as min / median / max and kjump/kernel as the ratios of each
/// round's pair ("no difference" when the two ranges overlap), writes the
/// rounds to build/bench/hibernate.tsv (hibernate-mixed.tsv), and judges
/// the floors: kjump no slower to power off and to resume, its image no
/// larger. Fails if either side fails or a floor is missed beyond the
/// spread.
pub fn bench(ctx: &Ctx, mib: u32, rounds: u32, mixed: bool) -> Result<(), String> {
    use crate::floors::{judge, record, Bound, Outcome};
    use crate::stats::{show, verdict};
    let conf = format!(
        "MEM_MIB={mib}\nMLOCK=0\nDATA=0\nHIBERNATE=1\nMIX={}\n",
        u8::from(mixed)
    );
    let cache = match mixed {
        true => Some(mixed_disk(ctx, MIXED_CACHE_MIB)?),
        false => None,
    };
    let (mut ks, mut cs) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        ks.push(
            kjump_sample(ctx, &conf, cache.as_ref()).map_err(|f| format!("kjump: {}", f.reason))?,
        );
        cs.push(
            kernel_sample(ctx, &conf, cache.as_ref())
                .map_err(|f| format!("kernel: {}", f.reason))?,
        );
    }
    let load = match mixed {
        true => format!("A holds {mib} MiB of text, zeros, code and random data and {MIXED_CACHE_MIB} MiB of page cache of the same mix"),
        false => format!("A holds {mib} MiB of random data"),
    };
    println!(
        "hibernate-bench: 1 GiB guest, 2 CPUs, QEMU TCG, {load}; {} rounds, min / median / max",
        ks.len()
    );
    println!(
        "{:<32} {:>20} {:>20}   kjump/kernel, paired",
        "", "kjump", "kernel (swap)"
    );
    let mut series = Vec::new();
    let mut missed = Vec::new();
    for (what, unit, div, f) in ROWS {
        let k: Vec<f64> = ks.iter().map(|s| f(s) / div).collect();
        let c: Vec<f64> = cs.iter().map(|s| f(s) / div).collect();
        println!(
            "{what:<32} {:>18} {unit} {:>18} {unit}   {}",
            show(&k, 1.0, 1),
            show(&c, 1.0, 1),
            verdict(&k, &c)
        );
        let (outcome, line) = judge(&format!("kjump/kernel, {what}"), &k, &c, Bound::AtMost(1.0));
        println!("{line}");
        if outcome == Outcome::Missed {
            missed.push(line);
        }
        series.push((format!("kjump: {what}"), k));
        series.push((format!("kernel: {what}"), c));
    }
    let named: Vec<(&str, &[f64])> = series
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    record(
        if mixed {
            "hibernate-mixed"
        } else {
            "hibernate"
        },
        &named,
    )?;
    match missed.is_empty() {
        true => Ok(()),
        false => Err(missed.join("; ")),
    }
}

/// The hibernation floors in the test command: `bench` with 256 MiB, 3
/// rounds.
pub(super) fn hibernate_floors(ctx: &Ctx) -> TestResult {
    bench(ctx, 256, 3, false).map_err(Failure::new)?;
    Ok(Verdict::Pass)
}
