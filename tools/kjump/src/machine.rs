// SPDX-License-Identifier: GPL-2.0

//! Which machine and firmware a kernel runs on, as one number: a hash of
//! the firmware's memory map (/sys/firmware/memmap, as the firmware handed
//! it over, before any memmap= option) and of the DMI identity of the
//! board and BIOS where the kernel exposes it (/sys/class/dmi/id). An
//! image records A's; a resume on a machine whose number differs (another
//! computer with the same kernel, a firmware update that moved ACPI
//! tables or reserved memory, other RAM) is refused.

use std::fs;

/// DMI fields that name the machine and its firmware.
const DMI: [&str; 8] = [
    "sys_vendor",
    "product_name",
    "product_uuid",
    "board_vendor",
    "board_name",
    "bios_vendor",
    "bios_version",
    "bios_date",
];

/// The firmware memory map's entries, in order: "start end type" each.
fn memmap() -> Vec<String> {
    let mut entries: Vec<(u64, String)> = fs::read_dir("/sys/firmware/memmap")
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                let n: u64 = e.file_name().to_str()?.parse().ok()?;
                let field = |f: &str| fs::read_to_string(e.path().join(f)).ok();
                let line = format!(
                    "{} {} {}",
                    field("start")?.trim(),
                    field("end")?.trim(),
                    field("type")?.trim()
                );
                Some((n, line))
            })
            .collect()
        })
        .unwrap_or_default();
    entries.sort();
    entries.into_iter().map(|(_, l)| l).collect()
}

/// This machine's number (never 0, which images of no machine carry).
pub fn id() -> u64 {
    let mut text = memmap().join("\n");
    for f in DMI {
        let v = fs::read_to_string(format!("/sys/class/dmi/id/{f}")).unwrap_or_default();
        text.push_str(&format!("\n{f}={}", v.trim()));
    }
    crate::image::sum(text.as_bytes()).max(1)
}
