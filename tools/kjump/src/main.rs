// SPDX-License-Identifier: GPL-2.0

//! kjump: kexec jump with one command.
//!
//! In kernel A: `kjump load` puts kernel B, resident, into the memory A
//! reserved with crashkernel=; `kjump exec` jumps to B and returns when B
//! jumps back. In B: `kjump back` jumps back to A. `kjump call` runs a
//! physical-mode program and returns; `kjump status` says what is loaded.
//! `kjump hibernate` saves A to a disk through B and powers off;
//! `kjump resume`, in the next boot, brings A back from it.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use kjump::{call, device, hibernate, jump, load, resume, status};
use std::fs;

#[derive(Parser)]
#[command(
    name = "kjump",
    version,
    about = "Jump to another kernel and back (kexec jump)"
)]
pub(crate) struct Cli {
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
        /// Block device: /dev/NAME, PARTUUID= or UUID= (its contents are lost)
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
        /// `passphrase`: the image is sealed (encrypted and authenticated)
        /// under a new key, wrapped by a passphrase asked for on the
        /// terminal; `none` (the default): the image is in clear, readable
        /// by whoever can read DEVICE
        #[arg(long, value_enum)]
        key: Option<Key>,
        /// The passphrase is FILE's first line (implies --key passphrase;
        /// refused with --key none)
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<String>,
    },
    /// Resume the kernel saved on DEVICE; returns if it did not, with exit
    /// code 1 (no image), 2 (an image that could not be resumed, now
    /// invalidated), 3 (such an image kept: the boot must stop) or 4 (a
    /// sealed image not unsealed, wrong passphrase: kept sealed, the boot
    /// goes on)
    Resume {
        /// Block device holding the image
        #[arg(long)]
        device: String,
    },
}

/// How `kjump hibernate` keeps the image's contents.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Key {
    None,
    Passphrase,
}

/// The passphrase to seal an image with: FILE's first line, or typed
/// twice on the terminal; None for an image in clear (`--key none`, the
/// default). `--key none` with a passphrase file is a contradiction the
/// caller refuses before this.
fn passphrase(key: Option<Key>, file: Option<&str>) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    if let Some(f) = file {
        let mut f = fs::File::open(f).with_context(|| f.to_string())?;
        return resume::read_passphrase(&mut f).map(Some);
    }
    if key != Some(Key::Passphrase) {
        return Ok(None);
    }
    let ask = |prompt| {
        resume::ask_passphrase("/dev/tty", prompt).context(
            "--key passphrase asks for the passphrase on this process's terminal, and it has none: give it with --passphrase-file",
        )
    };
    let p = ask("kjump: passphrase for the image: ")?;
    if ask("kjump: the passphrase again: ")? != p {
        anyhow::bail!("the passphrases differ");
    }
    Ok(Some(p))
}

/// A command line kjump cannot follow: one line saying why, and exit
/// code 2 (as for every command-line error).
fn usage_error(why: &str) -> ! {
    eprintln!("kjump: {why}");
    std::process::exit(2);
}

fn parse_addr(s: &str) -> Result<u64, String> {
    let v = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    v.map_err(|_| format!("'{s}' is not an address (decimal or 0x...)"))
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
    // Clap's errors are followed by a usage summary: one line instead,
    // as for every other misuse.
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        use clap::error::ErrorKind;
        if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            e.exit();
        }
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or_default();
        usage_error(&format!(
            "{} (see kjump --help)",
            first.strip_prefix("error: ").unwrap_or(first)
        ))
    });
    let r = match cli.cmd {
        Cmd::Load {
            kernel,
            initrd,
            append,
        } => load::load(load::Request {
            kernel: &kernel,
            initrd: initrd.as_deref().map(load::Initrd::File),
            append: &append,
            runtime: 0,
        }),
        Cmd::Exec => jump::exec(),
        Cmd::Unload => jump::unload(),
        Cmd::Back => jump::back(),
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
        Cmd::Status => status::status(),
        Cmd::Format {
            device,
            force,
            uuid,
        } => (|| {
            let uuid = match uuid {
                Some(u) => Some(device::parse_uuid(&u).context("--uuid: not a UUID")?),
                None => None,
            };
            let dev = device::resolve(&device)?;
            println!("kjump: {}", device::format(&dev, force, uuid)?);
            Ok(())
        })(),
        Cmd::Hibernate {
            device,
            kernel,
            append,
            resume_elsewhere,
            image_size,
            key,
            passphrase_file,
        } => {
            if key == Some(Key::None) && passphrase_file.is_some() {
                usage_error(
                    "--key none and --passphrase-file contradict each other: an image in clear has no passphrase (drop one)",
                );
            }
            passphrase(key, passphrase_file.as_deref()).and_then(|p| {
                hibernate::hibernate(
                    &device,
                    &kernel.unwrap_or_else(default_kernel),
                    &append,
                    resume_elsewhere,
                    image_size,
                    p,
                )
            })
        }
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
                resume::NoResume::Sealed(e) => (no.exit_code(), e, "booting normally"),
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
