// SPDX-License-Identifier: GPL-2.0

//! kjump: kexec jump with one command.
//!
//! In kernel A: `kjump load` puts kernel B, resident, into the memory A
//! reserved with crashkernel=; `kjump exec` jumps to B and returns when B
//! jumps back. In B: `kjump back` jumps back to A. `kjump call` runs a
//! physical-mode program and returns; `kjump status` says what is loaded.
//! `kjump hibernate` saves A to a disk through B and powers off;
//! `kjump resume`, in the next boot, brings A back from it.

mod aligned;
mod bzimage;
mod call;
mod cpio;
mod device;
mod elfcore;
mod filesystems;
mod hibernate;
mod image;
mod load;
mod machine;
mod memmap;
mod purgatory;
mod resume;
mod state;
mod sys;
mod vmcore;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::fs;

#[derive(Parser)]
#[command(
    name = "kjump",
    version,
    about = "Jump to another kernel and back (kexec jump)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load kernel B into the memory reserved with crashkernel=
    Load {
        /// B's bzImage
        kernel: String,
        /// B's initramfs
        #[arg(long)]
        initrd: Option<String>,
        /// B's command line (kjump adds elfcorehdr= and kexec_jump_back_entry=)
        #[arg(long, default_value = "")]
        append: String,
    },
    /// Jump to the loaded B; returns when B jumps back
    Exec,
    /// Unload B (its memory in the reservation is given up)
    Unload,
    /// In B: jump back to the kernel that started it
    Back,
    /// Run a physical-mode program and return
    Call {
        /// ELF executable (PT_LOAD physical addresses) or raw binary
        program: String,
        /// Physical address of a raw binary
        #[arg(long, value_parser = parse_addr)]
        at: Option<u64>,
        /// Entry address (default: the ELF entry, or --at)
        #[arg(long, value_parser = parse_addr)]
        entry: Option<u64>,
        /// Load it in place into the reservation and keep it loaded:
        /// `kjump exec` calls it again, copying nothing
        #[arg(long)]
        resident: bool,
    },
    /// What is loaded, where B lives, whether this is A or B, jumps so far
    Status,
    /// Make DEVICE kjump's resume device: refused if it is mounted, a
    /// swap area, held (LVM, MD, dm), a whole disk with partitions, or
    /// carries another signature (--force overrides only that)
    Format {
        /// Block device (its contents are lost)
        device: String,
        /// Overwrite another filesystem's or volume's signature
        #[arg(long)]
        force: bool,
        /// The UUID to give it (default: a random one)
        #[arg(long)]
        uuid: Option<String>,
    },
    /// Save this kernel to DEVICE through a jump to B, and power off
    Hibernate {
        /// The resume device, made kjump's by kjump format (/dev/... or
        /// UUID=...)
        #[arg(long)]
        device: String,
        /// B's bzImage (default: this kernel's, /boot/vmlinuz-RELEASE)
        #[arg(long)]
        kernel: Option<String>,
        /// More of B's command line
        #[arg(long, default_value = "")]
        append: String,
        /// The next boot's entry has kjump.resume=DEVICE, though this
        /// boot's command line has not (otherwise refused: the image
        /// would never be looked for)
        #[arg(long)]
        resume_elsewhere: bool,
        /// Drop the clean page cache first when this kernel uses more
        /// than MIB (default: 2/5 of its RAM, as swsusp's image_size)
        #[arg(long, value_name = "MIB")]
        image_size: Option<u64>,
    },
    /// Resume the kernel saved on DEVICE; returns if it did not, with exit
    /// code 1 (no image), 2 (an image that could not be resumed, now
    /// invalidated) or 3 (such an image kept: the boot must stop)
    Resume {
        /// Block device holding the image
        #[arg(long)]
        device: String,
    },
}

fn parse_addr(s: &str) -> Result<u64, String> {
    let v = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    v.map_err(|_| format!("'{s}' is not an address (decimal or 0x...)"))
}

/// kexec_jump_back_entry= of this kernel's command line: Ok(None) in A.
pub(crate) fn back_entry() -> Result<Option<u64>> {
    let cmdline = fs::read_to_string("/proc/cmdline").context("/proc/cmdline")?;
    parse_back_entry(&cmdline)
}

/// kexec_jump_back_entry= of `cmdline`: a non-zero hex address, or None.
fn parse_back_entry(cmdline: &str) -> Result<Option<u64>> {
    let Some(v) = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("kexec_jump_back_entry="))
    else {
        return Ok(None);
    };
    match v.strip_prefix("0x").map(|h| u64::from_str_radix(h, 16)) {
        Some(Ok(e)) if e != 0 => Ok(Some(e)),
        _ => bail!("malformed kexec_jump_back_entry={v} on the command line"),
    }
}

/// With KJUMP_TRACE set: prints `what` and the seconds since the first
/// call, on stderr (where the time of a slow step goes).
pub(crate) fn trace(what: &str) {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    if std::env::var_os("KJUMP_TRACE").is_some() {
        let t = START.get_or_init(std::time::Instant::now).elapsed();
        eprintln!("kjump: trace {:.3} {what}", t.as_secs_f64());
    }
}

fn loaded() -> bool {
    fs::read_to_string("/sys/kernel/kexec_loaded").is_ok_and(|s| s.trim() == "1")
}

/// Syncs (the other kernel may never come back), jumps, counts the jump
/// and returns the seconds this kernel was away (CLOCK_BOOTTIME).
pub(crate) fn jump(what: &str) -> Result<f64> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let t0 = sys::boottime();
    sys::reboot_kexec().map_err(|e| anyhow::anyhow!(sys::explain(what, &e)))?;
    state::count_jump();
    Ok(sys::boottime() - t0)
}

fn exec() -> Result<()> {
    if !loaded() {
        bail!("nothing is loaded: run kjump load first");
    }
    let away = jump("jump")?;
    println!(
        "kjump: back in A after {away:.3} s away (jump {})",
        state::jumps()
    );
    Ok(())
}

fn unload() -> Result<()> {
    sys::kexec_load(0, &[], sys::KEXEC_PRESERVE_CONTEXT)
        .map_err(|e| anyhow::anyhow!(sys::explain("unloading", &e)))?;
    state::clear();
    println!("kjump: unloaded");
    Ok(())
}

pub(crate) fn back() -> Result<()> {
    let Some(entry) = back_entry()? else {
        bail!(
            "no kexec_jump_back_entry= on the command line: this kernel was not started by a jump"
        );
    };
    // kexec_load() takes no image without a segment: one of no memory.
    let seg = sys::Segment {
        bytes: Vec::new(),
        mem: 0,
        memsz: 0,
    };
    sys::kexec_load(entry, &[seg], sys::KEXEC_PRESERVE_CONTEXT)
        .map_err(|e| anyhow::anyhow!(sys::explain("loading the jump back", &e)))?;
    let away = jump("jump back")?;
    println!(
        "kjump: B resumed after {away:.3} s away (jump back {})",
        state::jumps()
    );
    Ok(())
}

fn status() -> Result<()> {
    match back_entry()? {
        Some(e) => println!("this kernel: B (started by a jump; jump-back entry {e:#x})"),
        None => println!("this kernel: A"),
    }
    let iomem = memmap::iomem()?;
    match iomem.reservation {
        Some(r) => println!(
            "reservation: {:#x}-{:#x} ({} MiB)",
            r.start,
            r.end - 1,
            r.len() >> 20
        ),
        None => println!("reservation: none (boot with crashkernel= to load B)"),
    }
    println!("image loaded: {}", if loaded() { "yes" } else { "no" });
    if let Some(s) = state::load() {
        println!(
            "B: {} in {:#x}-{:#x} ({} MiB)",
            s.kernel,
            s.b_ram.start,
            s.b_ram.end - 1,
            s.b_ram.len() >> 20
        );
    }
    println!("jumps so far: {}", state::jumps());
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    for dev in cmdline
        .split_whitespace()
        .filter_map(|a| a.strip_prefix("kjump.resume="))
    {
        let state = match device::resolve(dev) {
            Ok(d) => resume_device_state(&d),
            Err(e) => e.to_string(),
        };
        println!("resume device {dev}: {state}");
    }
    Ok(())
}

/// What block 0 of a resume device says, in a few words.
fn resume_device_state(dev: &str) -> String {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0u8; image::PAGE as usize];
    match fs::File::open(dev).and_then(|f| f.read_exact_at(&mut b, 0)) {
        Err(e) => format!("unreadable ({e})"),
        Ok(()) => match image::Header::decode(&b) {
            Ok(h) => format!(
                "a hibernation image of kernel build {}, {} MiB",
                hibernate::hex(&h.build_id),
                h.image_end >> 20
            ),
            Err(e) => e.to_string(),
        },
    }
}

/// /boot/vmlinuz-RELEASE of the running kernel.
fn default_kernel() -> String {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("/boot/vmlinuz-{}", release.trim())
}

fn main() {
    // As B's init (kjump hibernate's initramfs): write A's image.
    if std::process::id() == 1 {
        hibernate::run_as_init();
    }
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Load {
            kernel,
            initrd,
            append,
        } => load::load(load::Request {
            kernel: &kernel,
            initrd: initrd.as_deref().map(load::Initrd::File),
            append: &append,
        }),
        Cmd::Exec => exec(),
        Cmd::Unload => unload(),
        Cmd::Back => back(),
        Cmd::Call {
            program,
            at,
            entry,
            resident,
        } => call::call(&call::Request {
            path: &program,
            at,
            entry,
            resident,
        }),
        Cmd::Status => status(),
        Cmd::Format {
            device,
            force,
            uuid,
        } => (|| {
            let uuid = match uuid {
                Some(u) => Some(device::parse_uuid(&u).context("--uuid: not a UUID")?),
                None => None,
            };
            println!("kjump: {}", device::format(&device, force, uuid)?);
            Ok(())
        })(),
        Cmd::Hibernate {
            device,
            kernel,
            append,
            resume_elsewhere,
            image_size,
        } => hibernate::hibernate(
            &device,
            &kernel.unwrap_or_else(default_kernel),
            &append,
            resume_elsewhere,
            image_size,
        ),
        Cmd::Resume { device } => {
            // A UUID= device may still be probing: look for it up to 10 s.
            let mut named = device::resolve(&device);
            for _ in 0..100 {
                if named.is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
                named = device::resolve(&device);
            }
            let no = match named {
                Ok(dev) => resume::resume(&dev),
                Err(e) => resume::NoResume::NoImage(e),
            };
            let (code, why, next) = match &no {
                resume::NoResume::NoImage(e) => (no.exit_code(), e, "booting normally"),
                resume::NoResume::Invalidated(e) => (no.exit_code(), e, "booting normally"),
                resume::NoResume::Kept(e) => (no.exit_code(), e, "the boot must stop"),
            };
            eprintln!("kjump: no resume from {device}, {next}: {why:#}");
            std::process::exit(code);
        }
    };
    if let Err(e) = r {
        eprintln!("kjump: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_entry_is_parsed_or_refused() {
        let ok = parse_back_entry("console=ttyS0 kexec_jump_back_entry=0x169b149 quiet");
        assert_eq!(ok.unwrap(), Some(0x169b149));
        assert_eq!(parse_back_entry("console=ttyS0").unwrap(), None);
        for bad in ["0x", "0x0", "169b149", "0xzz", ""] {
            let line = format!("kexec_jump_back_entry={bad}");
            assert!(parse_back_entry(&line).is_err(), "{line}");
        }
    }
}
