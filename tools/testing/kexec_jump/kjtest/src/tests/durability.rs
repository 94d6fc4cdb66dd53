// SPDX-License-Identifier: GPL-2.0

//! Hibernation on a disk that keeps only what it was told to: the resume
//! device is the harness's NBD server (crate::nbd), whose write cache is
//! volatile until a flush. The power is cut during B's write and during
//! a resume's invalidation, and writes fail with EIO.

use super::disks::raw_disk;
use super::guest::{boot_disks, Guest, SECS};
use super::hibernate::{
    a_back_after_failure, a_intact_at_the_end, hibernate, image, not_resumed, resumed, ARGS,
};
use super::verdict::{Failure, TestResult, Verdict};
use crate::nbd::{Cut, Fault, Nbd};
use crate::qemu::Disk;
use crate::Ctx;
use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::Instant,
};

/// A 256 MiB file served as the resume device.
fn device(ctx: &Ctx) -> Result<(Nbd, PathBuf), Failure> {
    static SOCKETS: AtomicU32 = AtomicU32::new(0);
    let file = raw_disk(ctx, "resume.img", 256)?;
    // A short path: a socket's name has at most 107 bytes.
    let socket = std::env::temp_dir().join(format!(
        "kjtest-{}-{}.nbd",
        std::process::id(),
        SOCKETS.fetch_add(1, Ordering::Relaxed)
    ));
    Ok((Nbd::serve(&file, &socket).map_err(Failure::new)?, file))
}

/// A guest of `mem_mib` MiB with `initrd`, resuming from the server.
fn boot(ctx: &Ctx, nbd: &Nbd, initrd: &[u8], mem_mib: u32) -> Result<Guest, Failure> {
    let disk = Disk::Nbd(nbd.socket().to_path_buf());
    boot_disks(ctx, initrd.to_vec(), ARGS, vec![disk], 2, mem_mib)
}

/// Block 0 as the disk keeps it (what a flush committed).
fn block0(file: &Path) -> Result<Vec<u8>, Failure> {
    let mut b = fs::read(file).map_err(|e| Failure::new(format!("{}: {e}", file.display())))?;
    b.truncate(4096);
    Ok(b)
}

/// Waits for the power cut `what` while the guest runs: a guest that
/// gets past it (`past`) or fails ends the wait at once.
fn until_cut(g: &mut Guest, nbd: &Nbd, what: &str, past: &str) -> Result<Cut, Failure> {
    let deadline = Instant::now() + SECS(600);
    loop {
        if let Some(cut) = nbd.cut() {
            return Ok(cut);
        }
        match g.vm.expect_any(&[past, "KJ: FAIL", ": FAIL "], SECS(1)) {
            Ok((_, l)) => return Err(g.fail(format!("no power cut {what}: {}", l.text))),
            Err(e) if e.starts_with("timed out") && Instant::now() < deadline => {}
            Err(e) => return Err(g.fail(format!("waiting for the cut {what}: {e}"))),
        }
    }
}

/// A's boot that checks that no resume ran and hibernates, and a boot
/// that only checks.
const HIBERNATE: &str = "MEM_MIB=64\nDATA=0\nHIBERNATE=1\nFORMAT=0\n";
const CHECK: &str = "MEM_MIB=0\nDATA=0\nHIBERNATE=0\n";

/// A's hibernation, once the boot found no image for a reason holding
/// `why`, with `fault` armed as A jumps to B: returns the cut `what` it
/// made.
fn hibernate_cut(
    g: &mut Guest,
    nbd: &Nbd,
    why: &str,
    fault: Fault,
    what: &str,
) -> Result<Cut, Failure> {
    not_resumed(g, why)?;
    g.step("kjump: hibernating to /dev/vda", 300)?;
    nbd.arm(fault);
    until_cut(g, nbd, what, "kjump: image written")
}

/// The drive loses what was not flushed, and no boot resumes what it
/// must not. On one server, one after another:
/// - A hibernation, the power cut right after B wrote block 0, the
///   header, once all else: the drive kept the header alone of what was
///   not flushed, and nothing was lost with it.
/// - A boot of 1152 MiB (another machine's firmware map) finds the image
///   whole (header, page map and chunk index) but refuses it; the power
///   is cut at its first write, the invalidation: the image is as it was.
/// - The same boot again: it invalidates the image and goes on; the
///   power is cut then (what is not flushed is lost): the disk holds the
///   image invalidated.
/// - Three boots each find nothing to resume (the image invalidated,
///   then no image) and hibernate, the power cut at 10%, 50% and 99% of
///   B's bytes (with blocks in the cache: a write-back cache).
/// - A hibernation with no cut, and a boot that resumes A intact.
pub(super) fn hibernate_volatile_cache_cuts(ctx: &Ctx) -> TestResult {
    let (nbd, file) = device(ctx)?;
    let again = image(ctx, HIBERNATE)?;
    let check = image(ctx, CHECK)?;
    let first = image(ctx, &HIBERNATE.replace("FORMAT=0", "FORMAT=1"))?;

    let mut g = boot(ctx, &nbd, &first, 1024)?;
    let why = "no hibernation image there";
    let fault = Fault::CutAtBlock0After(1 << 20);
    let cut = hibernate_cut(&mut g, &nbd, why, fault, "at the header")?;
    drop(g);
    if cut.lost_blocks > 0 {
        return Err(Failure::new(format!(
            "B wrote the header while {} blocks of its image were not flushed",
            cut.lost_blocks
        )));
    }
    let head = block0(&file)?;
    if !head.starts_with(b"KJHIBIMG") {
        return Err(Failure::new(format!(
            "block 0 kept at the cut is no header: {:?}",
            String::from_utf8_lossy(&head[..8])
        )));
    }
    // B writes block 0 twice (zeros first, the header last) and the image.
    let image_end = u64::from_le_bytes(head[144..152].try_into().expect("8 bytes"));
    let total = image_end + 4096;
    println!(
        "    cut right after the header: nothing else unflushed; B wrote {} MiB, {} flushes",
        total >> 20,
        nbd.flushes()
    );

    nbd.arm(Fault::CutAfter(0));
    let mut g = boot(ctx, &nbd, &check, 1152)?;
    until_cut(&mut g, &nbd, "at the invalidation", "KJ: normal boot")?;
    drop(g);
    if block0(&file)? != head {
        return Err(Failure::new(
            "a write cut with the power changed block 0".into(),
        ));
    }
    println!("    cut at the invalidation's write: the image as it was");

    let mut g = boot(ctx, &nbd, &check, 1152)?;
    let l = not_resumed(&mut g, "from another machine")?;
    if !l.contains("the image is invalidated") {
        return Err(g.fail(format!("want the image invalidated: {l}")));
    }
    g.step("KJ: normal boot", 60)?;
    let cut = nbd.cut_now();
    drop(g);
    if !block0(&file)?.starts_with(b"KJINVALD") {
        return Err(Failure::new(format!(
            "the boot went on before the invalidation was flushed ({} blocks lost at the cut)",
            cut.lost_blocks
        )));
    }
    println!(
        "    cut once the boot went on: {}",
        l.trim_start_matches("kjump: ")
    );

    let mut why = "the image there was invalidated";
    for pct in [10, 50, 99] {
        let mut g = boot(ctx, &nbd, &again, 1024)?;
        let fault = Fault::CutAfter(total * pct / 100);
        let cut = hibernate_cut(&mut g, &nbd, why, fault, &format!("at {pct}%"))?;
        drop(g);
        if cut.lost_blocks == 0 {
            return Err(Failure::new(format!(
                "nothing was in the cache at the cut at {pct}%: the guest's writes are not cached"
            )));
        }
        println!(
            "    cut at {pct}%, after {} of B's {} MiB: {} unflushed blocks lost",
            cut.written >> 20,
            total >> 20,
            cut.lost_blocks
        );
        why = "no hibernation image there";
    }

    let mut g = boot(ctx, &nbd, &again, 1024)?;
    not_resumed(&mut g, why)?;
    hibernate(&mut g)?;
    drop(g);
    let mut g = boot(ctx, &nbd, &again, 1024)?;
    g.step("kjump: image on /dev/vda is valid", 300)?;
    resumed(&mut g)?;
    println!("    then a hibernation with no cut: A resumed intact");
    Ok(Verdict::Pass)
}

/// B cannot lose A to a failing disk: every write past 16 MiB fails with
/// EIO once A has jumped; B says so and jumps back, A goes on with its
/// memory intact, and the next boot finds no image.
pub(super) fn hibernate_io_error_keeps_a(ctx: &Ctx) -> TestResult {
    let (nbd, _file) = device(ctx)?;
    let a = image(ctx, "MEM_MIB=64\nDATA=0\nHIBERNATE=1\nEXPECT_FAIL=1\n")?;
    let mut g = boot(ctx, &nbd, &a, 1024)?;
    g.step("kjump: hibernating to /dev/vda", 300)?;
    nbd.arm(Fault::FailWritesPast(16 << 20));
    let b = a_back_after_failure(&mut g, "Input/output error")?;
    a_intact_at_the_end(&mut g)?;
    if nbd.failed_writes() == 0 {
        return Err(g.fail("B failed, but no write did".into()));
    }
    drop(g);
    println!("    {}", b.trim_start_matches("kjump: "));
    let mut g = boot(ctx, &nbd, &image(ctx, CHECK)?, 1024)?;
    let l = not_resumed(&mut g, "no hibernation image there")?;
    g.step("KJ: normal boot", 60)?;
    g.step("KJ: done", 60)?;
    println!("    the next boot: {}", l.trim_start_matches("kjump: "));
    Ok(Verdict::Pass)
}
