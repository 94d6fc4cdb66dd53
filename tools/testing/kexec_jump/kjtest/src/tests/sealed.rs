// SPDX-License-Identifier: GPL-2.0

//! Sealed hibernation images (`kjump hibernate --passphrase-file`): A's
//! memory nowhere on the disk, the image's key and the passphrase nowhere
//! on the disk, in a console or in B's memory, the passphrase typed on
//! the console with three tries, the image wiped after the resume.

use super::guest::{boot_stopping_at_poweroff, Guest, SECS};
use super::hibernate::{
    boot_args, hibernate, powered_off, resumed, used_bytes, ARGS, HOOK, SCRIPT,
};
use super::images::kjump_image;
use super::verdict::{Failure, TestResult, Verdict};
use crate::qemu::Disk;
use crate::Ctx;
use std::{fs, path::Path, path::PathBuf};

/// The images' passphrase, in /etc/kj-pass of every boot.
const PASS: &str = "correct horse battery staple";
/// Wrong passphrases typed on the console, none a piece of another.
const TYPED_WRONG: [&str; 3] = ["Tr0ub4dor&3", "hunter2hunter2", "open sesame"];
/// The guests' RAM, all of it saved at a power-off.
const RAM_MIB: u32 = 1024;

/// The 1 MiB kj-guest memhold holds with `seed`, from kj-guest itself
/// (static, so it runs here too): one definition of the pattern.
fn memhold_secret(ctx: &Ctx, seed: u64) -> Result<Vec<u8>, Failure> {
    let out = std::process::Command::new(&ctx.guest_bin)
        .args(["pattern", "--mib", "1", "--seed", &seed.to_string()])
        .output()
        .map_err(|e| Failure::new(format!("{}: {e}", ctx.guest_bin.display())))?;
    if !out.status.success() || out.stdout.len() != 1 << 20 {
        return Err(Failure::new(format!(
            "kj-guest pattern gave {} bytes: {}",
            out.stdout.len(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

/// Where in `bytes` a 32-byte piece of `secret` lies (a piece every 512
/// bytes of it, any alignment), if any.
fn find_secret(bytes: &[u8], secret: &[u8]) -> Option<usize> {
    let pieces: std::collections::HashMap<u64, &[u8]> = secret
        .chunks(512)
        .map(|c| (u64::from_le_bytes(c[..8].try_into().unwrap()), &c[..32]))
        .collect();
    (0..bytes.len().saturating_sub(32)).find(|&at| {
        let w = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        pieces.get(&w).is_some_and(|p| &bytes[at..at + 32] == *p)
    })
}

/// What must not leak, by name: the image's key as bytes and as hex
/// digits, and every passphrase used.
fn secrets(key: &[u8]) -> Vec<(String, Vec<u8>)> {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut s = vec![
        ("the image key".to_string(), key.to_vec()),
        ("the image key in hex".to_string(), hex.clone().into_bytes()),
        (
            "the image key in HEX".to_string(),
            hex.to_uppercase().into_bytes(),
        ),
    ];
    for p in std::iter::once(PASS).chain(TYPED_WRONG) {
        s.push((format!("the passphrase {p:?}"), p.as_bytes().to_vec()));
    }
    s
}

/// The first of `needles` found in `hay`: its name and where.
fn find_any(hay: &[u8], needles: &[(String, Vec<u8>)]) -> Option<(String, usize)> {
    needles
        .iter()
        .find_map(|(name, n)| memchr::memmem::find(hay, n).map(|at| (name.clone(), at)))
}

/// Fails if `hay` (`what`) holds one of `needles`.
fn none_in(hay: &[u8], what: &str, needles: &[(String, Vec<u8>)]) -> Result<(), Failure> {
    match find_any(hay, needles) {
        Some((name, at)) => Err(Failure::new(format!("{name} is in {what} at {at:#x}"))),
        None => Ok(()),
    }
}

/// The sealed image's key, unwrapped as the resume does it: with kjump's
/// own code and the passphrase.
fn image_key(block0: &[u8]) -> Result<Vec<u8>, Failure> {
    let h = kjump::image::Header::decode(block0)
        .map_err(|e| Failure::new(format!("the image's header: {e:#}")))?;
    let seal = h
        .seal
        .as_ref()
        .ok_or_else(|| Failure::new("the image is not sealed".into()))?;
    let key = kjump::seal::DataKey::unwrap(seal, PASS.as_bytes(), h.nonce)
        .map_err(|e| Failure::new(format!("unwrapping the image key: {e:#}")))?;
    // The handoff starts with the key itself.
    Ok(key.handoff()[..32].to_vec())
}

/// B's RAM from kjump load's line "loaded ... at 0xSTART-0xLAST (...".
fn b_ram(loaded: &str) -> Option<std::ops::Range<usize>> {
    let (start, last) = loaded
        .split(" at 0x")
        .nth(1)?
        .split_once(" (")?
        .0
        .split_once("-0x")?;
    let n = |s| usize::from_str_radix(s, 16).ok();
    Some(n(start)?..n(last)? + 1)
}

/// The guest's RAM once it has powered off (started with
/// `boot_stopping_at_poweroff`), read into memory; the file goes.
fn ram_at_poweroff(g: &mut Guest, ctx: &Ctx) -> Result<Vec<u8>, Failure> {
    g.vm.wait_stopped(SECS(120)).map_err(|e| g.fail(e))?;
    let path = ctx.scratch.join("ram.bin");
    g.vm.save_memory(RAM_MIB, &path).map_err(|e| g.fail(e))?;
    let ram = fs::read(&path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let _ = fs::remove_file(&path);
    Ok(ram)
}

/// Types the passphrases `typed` at the resume's prompts, in order.
fn type_passphrases(g: &mut Guest, typed: &[&str]) -> Result<(), Failure> {
    for (i, p) in typed.iter().enumerate() {
        let prompt = format!("(try {} of 3): ", i + 1);
        g.vm.expect_prompt(&prompt, SECS(300))
            .and_then(|_| g.vm.type_line(p))
            .map_err(|e| g.fail(e))?;
    }
    Ok(())
}

/// The console logs of every boot of the test so far.
fn console_logs(scratch: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut logs: Vec<PathBuf> = fs::read_dir(scratch)
        .map_err(|e| Failure::new(format!("{}: {e}", scratch.display())))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("console") && n.ends_with(".log"))
        })
        .collect();
    logs.sort();
    Ok(logs)
}

/// A's initramfs for the hibernate scenario with `conf`, with the
/// passphrase in /etc/kj-pass and a wrong one in /etc/kj-wrong.
fn sealed_image(ctx: &Ctx, conf: &str) -> Result<Vec<u8>, Failure> {
    Ok(kjump_image(ctx, SCRIPT, conf, false)?
        .file("scripts/local-premount/kjump", HOOK.as_bytes(), 0o755)
        .file("etc/kj-pass", format!("{PASS}\n").as_bytes(), 0o600)
        .file("etc/kj-wrong", format!("{PASS}r\n").as_bytes(), 0o600)
        .host_file(&ctx.kernel, "boot/bzImage", 0o644)
        .map_err(Failure::new)?
        .finish())
}

/// A sealed image (`--passphrase-file`), and what must not leak from it.
///
/// A first tries key options that contradict each other (`--key none`
/// with `--passphrase-file`, `--key` twice) and `--key passphrase`
/// without a terminal: each refused in one line, exit code 2 for the
/// command line, 1 for the missing terminal. A holds a 1 MiB random
/// secret (kj-guest memhold) and hibernates; no piece of the secret is on
/// the disk. The harness unwraps the image's key from the header with the
/// passphrase (kjump's own code): the key (bytes, hex) and the passphrase
/// are nowhere on the disk, and the key is nowhere in the guest's RAM
/// when B has powered off (A's and B's memory, saved by QEMU; A's secret
/// and B's kernel command line found in that copy show it is whole), nor
/// the passphrase in B's part of it.
///
/// The next boots: with `kjump.passphrase_file=` naming a wrong one (one
/// try), then with three wrong passphrases typed on the serial console:
/// each refuses in one line, goes on and leaves the image as it was,
/// sealed, and `kjump status` says so before and after. The last boot:
/// one wrong passphrase typed, then the right one: A resumes intact and
/// wipes the image (block 0 marked resumed, its key fields zero, the data
/// area zeros); when A powers off, the key is nowhere in the guest's RAM
/// (the resuming kernel's memory is A's free memory then). No console of
/// any boot holds the key or a passphrase.
pub(super) fn hibernate_sealed_round_trip(ctx: &Ctx) -> TestResult {
    const SEED: u64 = 77;
    let read = |p: &PathBuf| fs::read(p).map_err(|e| Failure::new(format!("{}: {e}", p.display())));
    let resume = super::disks::raw_disk(ctx, "resume.img", 1024)?;
    let a = sealed_image(
        ctx,
        "MEM_MIB=1\nDATA=0\nHIBERNATE=1\nKEY_MISUSE=1\nHIBERNATE_ARGS='--passphrase-file /etc/kj-pass'\n",
    )?;
    let disk = || vec![Disk::File(resume.clone())];
    let mut g = boot_stopping_at_poweroff(ctx, a.clone(), ARGS, disk())?;
    for (args, rc, why) in [
        (
            "--key none --passphrase-file /etc/kj-pass:",
            "rc=2 lines=1:",
            "contradict each other",
        ),
        (
            "--key none --key passphrase:",
            "rc=2 lines=1:",
            "'--key <KEY>' cannot be used multiple times",
        ),
        (
            " --key passphrase:",
            "rc=1 lines=1:",
            "it has none: give it with --passphrase-file",
        ),
    ] {
        let l = g.step("KJ: key misuse", 120)?;
        if !l.contains(args) || !l.contains(rc) || !l.contains(why) {
            return Err(g.fail(format!("want {args} refused, {rc} \"{why}\": {l}")));
        }
        println!(
            "    refused {}",
            l.split_once(": kjump: ").map_or(&l[..], |x| x.1)
        );
    }
    g.step("kjump: hibernating to /dev/vda", 120)?;
    let written = g.step("kjump: image written", 600)?;
    g.step("kjump: powering off", 60)?;
    let said = g.said_since("KJ: normal boot", "kjump: the image will be sealed");
    if said.is_empty() || !written.trim_end().ends_with(", sealed") {
        return Err(g.fail(format!("want a sealed image: {written}")));
    }
    let loaded = g.said_since("KJ: normal boot", "kjump: loaded ").pop();
    let b = loaded
        .as_deref()
        .and_then(b_ram)
        .ok_or_else(|| g.fail(format!("B's RAM, from kjump load: {loaded:?}")))?;
    let ram = ram_at_poweroff(&mut g, ctx)?;
    drop(g);

    let image = read(&resume)?;
    let end = u64::from_le_bytes(image[144..152].try_into().unwrap()) as usize;
    // The search finds the secret where it is (any alignment)...
    let secret = memhold_secret(ctx, SEED)?;
    let mut probe = vec![0u8; 4096 + 3];
    probe[3..].copy_from_slice(&secret[32768..32768 + 4096]);
    if find_secret(&probe, &secret).is_none() {
        return Err(Failure::new("the secret search misses the secret".into()));
    }
    // ...and it is nowhere on the disk.
    if let Some(at) = find_secret(&image[..end], &secret) {
        return Err(Failure::new(format!(
            "A's secret is on the disk at {at:#x}"
        )));
    }
    println!(
        "    {}; no piece of A's 1 MiB secret in its {} MiB",
        written.trim_start_matches("kjump: "),
        end >> 20
    );

    // The key and the passphrases: the search finds each where it is...
    let key = image_key(&image[..4096])?;
    let leaks = secrets(&key);
    for (name, n) in &leaks {
        let mut probe = vec![0u8; 4096];
        probe[1001..1001 + n.len()].copy_from_slice(n);
        if find_any(&probe, &leaks).is_none_or(|(found, at)| found != *name || at != 1001) {
            return Err(Failure::new(format!("the leak search misses {name}")));
        }
    }
    // ...and none of them is on the disk, or in the RAM when B is done.
    none_in(&image, "the resume device after the hibernation", &leaks)?;
    let (a_secret, b_log) = (
        &secret[..64],
        b"Kernel command line: console=ttyS0 loglevel=5 ",
    );
    let (in_a, in_b) = (
        memchr::memmem::find(&ram, a_secret),
        memchr::memmem::find(&ram[b.clone()], b_log),
    );
    if in_a.is_none() || in_b.is_none() {
        return Err(Failure::new(format!(
            "the RAM saved at B's power-off lacks A's secret ({in_a:?}) or B's kernel log ({in_b:?}): not a whole copy"
        )));
    }
    none_in(&ram, "the RAM at B's power-off", &leaks[..3])?;
    none_in(&ram[b.clone()], "B's RAM at its power-off", &leaks[3..])?;
    // B handled all of A's memory in clear: none of it may stay behind.
    if let Some(at) = find_secret(&ram[b.clone()], &secret) {
        return Err(Failure::new(format!(
            "a piece of A's secret is in B's RAM at its power-off at {at:#x}"
        )));
    }
    println!(
        "    the image key and passphrases nowhere on the disk; the key nowhere in the {RAM_MIB} MiB of RAM at B's power-off, no passphrase nor any of A's secret in B's {} MiB",
        b.len() >> 20
    );
    drop(ram);

    // Wrong passphrases, from a file (one try), typed (three): refused,
    // the boot goes on, the image unchanged, and kjump status says so.
    let check = sealed_image(ctx, "MEM_MIB=0\nDATA=0\nHIBERNATE=0\nSTATUS=1\n")?;
    let mut status = String::new();
    for typed in [None, Some(&TYPED_WRONG)] {
        let args = match typed {
            None => format!("{ARGS} kjump.passphrase_file=/etc/kj-wrong"),
            Some(_) => ARGS.to_string(),
        };
        let mut g = boot_args(ctx, &check, &[&resume], &args)?;
        let before = g.step("KJ: status before:", 120)?;
        if let Some(t) = typed {
            type_passphrases(&mut g, t)?;
        }
        let l = g.step("no resume from /dev/vda", 300)?;
        let tries = if typed.is_some() { "three tries" } else { "" };
        if !l.contains("the image is kept, sealed")
            || !l.contains("wrong passphrase")
            || !l.contains(tries)
        {
            return Err(g.fail(format!("want the wrong passphrase refused: {l}")));
        }
        let after = g.step("KJ: status after:", 60)?;
        for s in [&before, &after] {
            if !s.contains("a hibernation image of kernel build")
                || !s.contains(", sealed (XChaCha20-Poly1305")
            {
                return Err(g.fail(format!("want kjump status to show the sealed image: {s}")));
            }
        }
        g.step("KJ: normal boot", 60)?;
        g.step("KJ: done", 60)?;
        drop(g);
        status = after;
        if read(&resume)?[..end] != image[..end] {
            return Err(Failure::new("a wrong passphrase changed the image".into()));
        }
        let how = if typed.is_some() {
            "three typed"
        } else {
            "from a file"
        };
        println!(
            "    wrong passphrase {how}: {}",
            l.trim_start_matches("kjump: ")
        );
    }
    println!(
        "    then kjump status: {}",
        status
            .split_once("status after: ")
            .map_or(&status[..], |x| x.1)
    );

    // A wrong passphrase typed, then the right one: A comes back intact
    // and wipes the image.
    let mut g = boot_stopping_at_poweroff(ctx, a, ARGS, disk())?;
    type_passphrases(&mut g, &[TYPED_WRONG[0], PASS])?;
    g.step("kjump: image on /dev/vda is valid", 300)?;
    let wiped = g.step("kjump: wiped the image's", 300)?;
    g.step("KJ: A resumed", 120)?;
    g.step("KJ: A memory intact", 120)?;
    g.step("KJ: done", 60)?;
    let ram = ram_at_poweroff(&mut g, ctx)?;
    drop(g);
    if memchr::memmem::find(&ram, a_secret).is_none() {
        return Err(Failure::new(
            "the RAM saved at A's power-off lacks A's secret: not a whole copy".into(),
        ));
    }
    none_in(
        &ram,
        "the RAM at A's power-off after the resume",
        &leaks[..3],
    )?;
    // Shown, not judged: what the resuming kernel's tty layer kept of
    // what was typed is not kjump's to clear (kjump zeroes its copies).
    let typed = memchr::memmem::find(&ram, TYPED_WRONG[0].as_bytes());
    println!(
        "    the passphrase typed wrong at the resume, in the RAM at A's power-off: {}",
        typed.map_or("nowhere".to_string(), |at| format!("at {at:#x}"))
    );
    drop(ram);
    let after = read(&resume)?;
    let seal_at = 4096 - 128;
    if !after.starts_with(b"KJRESUMD") || after[seal_at..4096].iter().any(|&b| b != 0) {
        return Err(Failure::new(
            "after the resume, block 0 is not marked resumed with its key fields zeroed".into(),
        ));
    }
    if let Some(at) = after[4096..end].iter().position(|&b| b != 0) {
        return Err(Failure::new(format!(
            "after the resume, the image's data is still there at {:#x}",
            4096 + at
        )));
    }
    none_in(&after, "the resume device after the resume", &leaks)?;
    println!(
        "    a wrong passphrase typed, then the right one: A intact; {}; the key nowhere in the RAM at A's power-off",
        wiped.trim_start_matches("kjump: ")
    );

    // No console of the four boots holds the key or a passphrase.
    let logs = console_logs(&ctx.scratch)?;
    if logs.len() != 4 {
        return Err(Failure::new(format!("want 4 console logs, found {logs:?}")));
    }
    for log in &logs {
        none_in(&read(log)?, &log.display().to_string(), &leaks)?;
    }
    println!("    no console of the 4 boots (A and B, the refusals, the resume) holds the key or a passphrase");
    Ok(Verdict::Pass)
}

/// One hibernation and resume of A holding `mib` MiB, sealed or in clear:
/// seconds from "hibernate start" to the guest gone, seconds from the
/// next guest's start to A running again, MiB of the image on its device.
fn sample(ctx: &Ctx, mib: u32, sealed: bool) -> Result<[f64; 3], Failure> {
    let resume = super::disks::raw_disk(ctx, "resume.img", 1024)?;
    let (hibernate_args, resume_args) = match sealed {
        true => (
            "HIBERNATE_ARGS='--passphrase-file /etc/kj-pass'\n",
            format!("{ARGS} kjump.passphrase_file=/etc/kj-pass"),
        ),
        false => ("", ARGS.to_string()),
    };
    let conf = format!("MEM_MIB={mib}\nMLOCK=0\nDATA=0\nHIBERNATE=1\n{hibernate_args}");
    let initrd = sealed_image(ctx, &conf)?;
    let mut g = boot_args(ctx, &initrd, &[&resume], ARGS)?;
    let written = hibernate(&mut g)?;
    if written.trim_end().ends_with(", sealed") != sealed {
        return Err(g.fail(format!("want sealed {sealed}: {written}")));
    }
    let to_off = powered_off(&mut g)?;
    let bytes = used_bytes(&resume)?;
    let mut g = boot_args(ctx, &initrd, &[&resume], &resume_args)?;
    let to_a = resumed(&mut g)?;
    Ok([to_off, to_a, bytes as f64 / 1048576.0])
}

/// Sealed (`--passphrase-file`) against clear (`--key none`) images: A
/// holding `mib` MiB hibernates and resumes `rounds` times each way,
/// alternating, on the guest of `kjtest hibernate-bench` (which compares
/// clear images with the kernel's own hibernation). Prints each figure as
/// min / median / max and sealed/clear as the ratios of each round's
/// pair, writes the rounds to build/bench/hibernate-sealed.tsv, and
/// judges the floor of issue 20: sealing costs at most 10% of the time to
/// power off and of the time to resume (the resume's includes Argon2id,
/// 64 MiB and 3 passes). Fails if a run fails or the floor is missed
/// beyond the spread.
pub fn bench(ctx: &Ctx, mib: u32, rounds: u32) -> Result<(), String> {
    use crate::floors::{judge, record, Bound, Outcome};
    use crate::stats::{show, verdict};
    let (mut clear, mut sealed) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        clear.push(sample(ctx, mib, false).map_err(|f| format!("clear: {}", f.reason))?);
        sealed.push(sample(ctx, mib, true).map_err(|f| format!("sealed: {}", f.reason))?);
    }
    let model = match ctx.cpu {
        Some(m) => format!("CPU model {m}"),
        None => "CPU model qemu64: no AVX2, no AES-NI".to_string(),
    };
    println!(
        "sealed-bench: 1 GiB guest, 2 CPUs, QEMU TCG ({model}), A holds {mib} MiB; {} rounds, min / median / max",
        clear.len()
    );
    println!(
        "{:<32} {:>20} {:>20}   sealed/clear, paired",
        "", "clear (--key none)", "sealed (passphrase)"
    );
    let rows = [
        ("hibernate start -> powered off", "s"),
        ("boot -> A running again", "s"),
        ("image on the device", "MiB"),
    ];
    let (mut series, mut missed) = (Vec::new(), Vec::new());
    for (i, (what, unit)) in rows.into_iter().enumerate() {
        let c: Vec<f64> = clear.iter().map(|s| s[i]).collect();
        let s: Vec<f64> = sealed.iter().map(|s| s[i]).collect();
        println!(
            "{what:<32} {:>18} {unit} {:>18} {unit}   {}",
            show(&c, 1.0, 1),
            show(&s, 1.0, 1),
            verdict(&s, &c)
        );
        if unit == "s" {
            let (outcome, line) =
                judge(&format!("sealed/clear, {what}"), &s, &c, Bound::AtMost(1.1));
            println!("{line}");
            if outcome == Outcome::Missed {
                missed.push(line);
            }
        }
        series.push((format!("clear: {what}"), c));
        series.push((format!("sealed: {what}"), s));
    }
    let named: Vec<(&str, &[f64])> = series
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    record(
        match ctx.cpu {
            Some(_) => "hibernate-sealed-max",
            None => "hibernate-sealed",
        },
        &named,
    )?;
    match missed.is_empty() {
        true => Ok(()),
        false => Err(missed.join("; ")),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn leaks_are_found_and_b_ram_parsed() {
        let l = "kjump: loaded /boot/bzImage at 0x35000000-0x3effffff (B's RAM 160 MiB, resident); A's dump: 862 MiB in 3 ranges";
        assert_eq!(b_ram(l), Some(0x3500_0000..0x3f00_0000));
        assert_eq!(b_ram("kjump: loaded nothing"), None);
        let leaks = secrets(&[0xab; 32]);
        let mut hay = vec![0u8; 100];
        assert_eq!(find_any(&hay, &leaks), None);
        hay.extend_from_slice(&"AB".repeat(32).into_bytes());
        assert_eq!(
            find_any(&hay, &leaks),
            Some(("the image key in HEX".into(), 100))
        );
    }
}
