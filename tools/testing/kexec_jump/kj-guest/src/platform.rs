// SPDX-License-Identifier: GPL-2.0

//! `platform --elf FILE`: one physical-mode call of phys_call/platform.S,
//! which reads, while A is quiesced for the jump, the command register of
//! every PCI function on bus 0 and the ACPI GPE0 enable registers. During
//! the call no function may master the bus and no GPE may be enabled;
//! after it, the functions that mastered the bus and the GPEs that were
//! enabled before are so again. One function without a driver is left
//! mastering first, as firmware may leave one.

use crate::{physcall, sys};
use std::{fs, path::Path};

const PCI_COMMAND_MASTER: u16 = 0x4;
/// The program with its parameters patched in.
const PATCHED: &str = "/tmp/platform.elf";
/// Functions on bus 0 (devfn 0 to 255): one 16-bit word each.
const FUNCTIONS: usize = 256;

/// Where the program is loaded (as physcall's default window).
const MEM_MIN: u64 = 0x100_0000;
const MEM_MAX: u64 = 0x10f_ffff;

fn io(what: &str, e: std::io::Error) -> String {
    format!("{what}: {e}")
}

/// The command register of every bus-0 function in sysfs, by devfn.
fn functions() -> Result<Vec<(u8, u16)>, String> {
    let dir = "/sys/bus/pci/devices";
    let mut out = vec![];
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(slot) = name.strip_prefix("0000:00:") else {
            continue;
        };
        let devfn = slot
            .split_once('.')
            .and_then(|(d, f)| Some(u8::from_str_radix(d, 16).ok()? << 3 | f.parse::<u8>().ok()?))
            .ok_or_else(|| format!("{name}: not a PCI address"))?;
        let path = entry.path().join("config");
        let config = fs::read(&path).map_err(|e| io(&path.display().to_string(), e))?;
        if config.len() < 6 {
            return Err(format!("{}: {} bytes", path.display(), config.len()));
        }
        out.push((devfn, u16::from_le_bytes([config[4], config[5]])));
    }
    out.sort_unstable();
    Ok(out)
}

fn masters(functions: &[(u8, u16)]) -> Vec<u8> {
    functions
        .iter()
        .filter(|(_, cmd)| cmd & PCI_COMMAND_MASTER != 0)
        .map(|(devfn, _)| *devfn)
        .collect()
}

/// Sets Bus Master Enable in a bus-0 function that no driver has and that
/// is no bridge, as firmware may leave one: nothing in this kernel will
/// stop it. Returns its devfn.
fn leave_one_mastering() -> Result<u8, String> {
    use std::os::unix::fs::FileExt;
    let dir = "/sys/bus/pci/devices";
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("/0000:00:"))
        .collect();
    names.sort();
    for path in names {
        let class = fs::read_to_string(path.join("class")).map_err(|e| io("class", e))?;
        if path.join("driver").exists() || class.starts_with("0x06") {
            continue;
        }
        let config = path.join("config");
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&config)
            .map_err(|e| io(&config.display().to_string(), e))?;
        let mut cmd = [0u8; 2];
        file.read_exact_at(&mut cmd, 4)
            .map_err(|e| io("command", e))?;
        let cmd = u16::from_le_bytes(cmd) | PCI_COMMAND_MASTER;
        file.write_all_at(&cmd.to_le_bytes(), 4)
            .map_err(|e| io("command", e))?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let devfn = functions()?
            .into_iter()
            .find(|(d, c)| {
                format!("0000:00:{:02x}.{}", d >> 3, d & 7) == name && c & PCI_COMMAND_MASTER != 0
            })
            .ok_or_else(|| format!("{name}: Bus Master Enable did not stick"))?
            .0;
        return Ok(devfn);
    }
    Err("no bus-0 function without a driver to leave mastering".into())
}

/// The I/O port and length of the GPE0 enable registers, from the FADT
/// (GPE0_BLK at offset 80, GPE0_BLK_LEN at 92: status half, enable half).
fn gpe0_enable() -> Result<(u16, usize), String> {
    let path = "/sys/firmware/acpi/tables/FACP";
    let fadt = fs::read(path).map_err(|e| io(path, e))?;
    if fadt.len() < 93 {
        return Err(format!("{path}: {} bytes", fadt.len()));
    }
    let blk = u32::from_le_bytes(fadt[80..84].try_into().expect("4 bytes"));
    let len = usize::from(fadt[92]);
    let port = u16::try_from(blk + (len / 2) as u32)
        .ok()
        .filter(|_| blk != 0);
    match port {
        Some(port) if (2..=32).contains(&len) => Ok((port, len / 2)),
        _ => Err(format!(
            "FADT GPE0 block {blk:#x}, {len} bytes: no I/O GPE block to check"
        )),
    }
}

/// The GPEs whose enable bit is set, by sysfs ("EN").
fn gpes_enabled() -> Result<Vec<String>, String> {
    let dir = "/sys/firmware/acpi/interrupts";
    let mut out = vec![];
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_gpe = name.len() == 5
            && name.starts_with("gpe")
            && name[3..].chars().all(|c| c.is_ascii_hexdigit());
        if !is_gpe {
            continue;
        }
        let text = fs::read_to_string(entry.path()).map_err(|e| io(&name, e))?;
        if text.contains("  EN") {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// `platform`: the checks above, around one call.
pub fn run(elf: &Path) -> Result<(), String> {
    let stray = leave_one_mastering()?;
    println!("platform: function {stray:02x} left mastering the bus without a driver");
    let before = functions()?;
    let masters_before = masters(&before);
    let gpes_before = gpes_enabled()?;
    let (port, len) = gpe0_enable()?;
    println!(
        "platform: bus 0 masters {masters_before:02x?}, GPEs enabled {gpes_before:?}, enables at port {port:#x}"
    );
    if masters_before.is_empty() || gpes_before.is_empty() {
        return Err("no bus master or no enabled GPE before the call: nothing to check".into());
    }

    let (buf, phys) = physcall::locked_page_outside(MEM_MIN, MEM_MAX)?;
    let mut image = fs::read(elf).map_err(|e| io(&elf.display().to_string(), e))?;
    let at = image
        .windows(8)
        .position(|w| w == b"KJPARAMS")
        .ok_or("no KJPARAMS tag in the program")?
        + 8;
    for (i, v) in [phys, u64::from(port), len as u64].into_iter().enumerate() {
        image[at + 8 * i..at + 8 * i + 8].copy_from_slice(&v.to_le_bytes());
    }
    fs::write(PATCHED, &image).map_err(|e| io(PATCHED, e))?;
    physcall::kexec_load_program(PATCHED, &format!("{MEM_MIN:#x}"), &format!("{MEM_MAX:#x}"))?;
    // What the program did not write stays recognizable.
    buf.fill(0x5a);
    sys::drain_stdout();
    sys::kexec_exec().map_err(|e| format!("kexec -e: {e}"))?;

    let word = |devfn: usize| u16::from_le_bytes([buf[2 * devfn], buf[2 * devfn + 1]]);
    let mut problems = vec![];
    for devfn in 0..FUNCTIONS {
        let listed = before.iter().any(|(d, _)| usize::from(*d) == devfn);
        let cmd = word(devfn);
        if listed == (cmd == 0xffff) {
            problems.push(format!(
                "function {devfn:02x}: listed {listed}, read {cmd:#06x}"
            ));
        } else if listed && cmd & PCI_COMMAND_MASTER != 0 {
            problems.push(format!(
                "function {devfn:02x} masters the bus (command {cmd:#06x})"
            ));
        }
    }
    let enables = &buf[2 * FUNCTIONS..2 * FUNCTIONS + len];
    if enables.iter().any(|&b| b != 0) {
        problems.push(format!("GPE enable registers {enables:02x?}"));
    }
    if !problems.is_empty() {
        return Err(format!("during the call: {}", problems.join("; ")));
    }
    let masters_after = masters(&functions()?);
    let gpes_after = gpes_enabled()?;
    if masters_after != masters_before || gpes_after != gpes_before {
        return Err(format!(
            "after the call: bus 0 masters {masters_after:02x?}, GPEs enabled {gpes_after:?}"
        ));
    }
    println!(
        "platform: during the call no bus master and no GPE enabled; after it {} masters and {} GPEs back",
        masters_after.len(),
        gpes_after.len()
    );
    Ok(())
}
