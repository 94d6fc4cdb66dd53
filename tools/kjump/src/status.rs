// SPDX-License-Identifier: GPL-2.0

//! `kjump status`: which kernel this is, what is loaded, what the resume
//! devices hold.

use crate::{device, hibernate, image, jump::back_entry, jump::loaded, memmap, state};
use anyhow::Result;
use std::fs;

/// Prints what kjump knows about this kernel and its devices.
pub fn status() -> Result<()> {
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
                "a hibernation image of kernel build {}, {} MiB, {}",
                hibernate::hex(&h.build_id),
                h.image_end >> 20,
                match h.seal {
                    Some(s) => format!(
                        "sealed (XChaCha20-Poly1305, key wrapped by a passphrase, Argon2id {} MiB)",
                        s.argon_m_kib >> 10
                    ),
                    None => "NOT encrypted (--key none)".to_string(),
                }
            ),
            Err(e) => e.to_string(),
        },
    }
}
