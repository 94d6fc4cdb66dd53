// SPDX-License-Identifier: GPL-2.0

//! A's memory, as the running kernel reports it: its RAM and the crash
//! kernel reservation (/proc/iomem), and the firmware's map
//! (/sys/firmware/memmap), from which B's e820 map is made.

use anyhow::{bail, Context, Result};
use std::fs;

/// A physical range, end exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the range holds no byte.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// e820 types (arch/x86/include/asm/e820/types.h).
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

/// An entry of the firmware's memory map.
#[derive(Clone, Copy, Debug)]
pub struct FirmwareEntry {
    pub range: Range,
    pub e820_type: u32,
}

/// One /proc/iomem line: nesting depth, range, name.
fn iomem_lines(text: &str) -> Result<Vec<(usize, Range, String)>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let depth = line.len() - line.trim_start().len();
        let Some((span, name)) = line.trim_start().split_once(" : ") else {
            continue;
        };
        let Some((a, b)) = span.split_once('-') else {
            continue;
        };
        let start = u64::from_str_radix(a, 16).context("bad /proc/iomem line")?;
        let last = u64::from_str_radix(b, 16).context("bad /proc/iomem line")?;
        out.push((
            depth,
            Range {
                start,
                end: last + 1,
            },
            name.to_string(),
        ));
    }
    Ok(out)
}

/// A's RAM and the crash kernel reservation.
pub struct Iomem {
    pub ram: Vec<Range>,
    pub reservation: Option<Range>,
}

pub fn iomem() -> Result<Iomem> {
    let text = fs::read_to_string("/proc/iomem").context("reading /proc/iomem")?;
    let lines = iomem_lines(&text)?;
    if lines.iter().all(|(_, r, _)| r.start == 0) {
        bail!("/proc/iomem shows no addresses: run kjump as root");
    }
    Ok(Iomem {
        ram: lines
            .iter()
            .filter(|(d, _, n)| *d == 0 && n == "System RAM")
            .map(|(_, r, _)| *r)
            .collect(),
        reservation: lines
            .iter()
            .find(|(_, _, n)| n == "Crash kernel")
            .map(|(_, r, _)| *r),
    })
}

/// The reservation, or an error that says which boot parameter adds one.
pub fn reservation(iomem: &Iomem) -> Result<Range> {
    iomem.reservation.ok_or_else(|| {
        anyhow::anyhow!(
            "no memory is reserved for B: boot this kernel with crashkernel=256M \
             (or larger than B needs)"
        )
    })
}

/// The e820 type of a memory map entry's name, as /sys/firmware/memmap
/// and /proc/iomem spell them; None for what is not memory (PCI windows,
/// APICs).
fn e820_type(name: &str) -> Option<u32> {
    Some(match name {
        "System RAM" => E820_RAM,
        "Reserved" | "reserved" => E820_RESERVED,
        "ACPI Tables" => 3,
        "ACPI Non-volatile Storage" => 4,
        "Unusable memory" => 5,
        "Persistent Memory" => 7,
        "Persistent Memory (legacy)" => 12,
        "Soft Reserved" => 0xefff_ffff,
        _ => return None,
    })
}

/// The firmware's map, sorted: /sys/firmware/memmap (the map as the
/// firmware gave it), or else /proc/iomem's top-level entries, as
/// kexec-tools falls back to.
pub fn firmware_map() -> Result<Vec<FirmwareEntry>> {
    let mut out = match sysfs_map() {
        Ok(m) => m,
        Err(_) => iomem_map()?,
    };
    out.sort_by_key(|e| e.range.start);
    Ok(out)
}

fn sysfs_map() -> Result<Vec<FirmwareEntry>> {
    let mut out = Vec::new();
    for ent in fs::read_dir("/sys/firmware/memmap")? {
        let p = ent?.path();
        let num = |f: &str| -> Result<u64> {
            let s = fs::read_to_string(p.join(f))?;
            let s = s.trim().trim_start_matches("0x");
            Ok(u64::from_str_radix(s, 16)?)
        };
        let name = fs::read_to_string(p.join("type"))?;
        out.push(FirmwareEntry {
            range: Range {
                start: num("start")?,
                end: num("end")? + 1,
            },
            e820_type: e820_type(name.trim()).unwrap_or(E820_RESERVED),
        });
    }
    Ok(out)
}

fn iomem_map() -> Result<Vec<FirmwareEntry>> {
    let text = fs::read_to_string("/proc/iomem").context("reading /proc/iomem")?;
    Ok(iomem_lines(&text)?
        .into_iter()
        .filter(|(d, _, _)| *d == 0)
        .filter_map(|(_, range, name)| {
            Some(FirmwareEntry {
                range,
                e820_type: e820_type(&name)?,
            })
        })
        .collect())
}

/// `ram` minus `hole`.
pub fn subtract(ram: &[Range], hole: Range) -> Vec<Range> {
    let mut out = Vec::new();
    for r in ram {
        if r.end <= hole.start || r.start >= hole.end {
            out.push(*r);
            continue;
        }
        if r.start < hole.start {
            out.push(Range {
                start: r.start,
                end: hole.start,
            });
        }
        if r.end > hole.end {
            out.push(Range {
                start: hole.end,
                end: r.end,
            });
        }
    }
    out
}

/// Low memory: B's real-mode trampoline must live below 1 MiB.
pub const LOW_MEM_END: u64 = 1 << 20;

/// B's e820 map: A's RAM below 1 MiB (B builds its real-mode trampoline
/// there; A keeps a copy of its own over the jump), `ram` as RAM,
/// `reserved` as reserved, and every non-RAM entry of the firmware's map
/// as it is. Nothing else of A's RAM appears, so nothing of B can go there.
pub fn e820_for_b(fw: &[FirmwareEntry], ram: Range, reserved: Range) -> Vec<FirmwareEntry> {
    let mut out: Vec<FirmwareEntry> = Vec::new();
    for e in fw {
        if e.e820_type != E820_RAM {
            out.push(*e);
        } else if e.range.start < LOW_MEM_END {
            out.push(FirmwareEntry {
                range: Range {
                    start: e.range.start,
                    end: e.range.end.min(LOW_MEM_END),
                },
                e820_type: E820_RAM,
            });
        }
    }
    out.push(FirmwareEntry {
        range: ram,
        e820_type: E820_RAM,
    });
    out.push(FirmwareEntry {
        range: reserved,
        e820_type: E820_RESERVED,
    });
    out.sort_by_key(|e| e.range.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const IOMEM: &str = concat!(
        "00000000-00000fff : Reserved\n",
        "00001000-0009fbff : System RAM\n",
        "00100000-3ffdffff : System RAM\n",
        "  01000000-01ffffff : Kernel code\n",
        "  10000000-17ffffff : Crash kernel\n",
        "fee00000-fee00fff : Local APIC\n",
    );

    #[test]
    fn iomem_finds_ram_and_reservation() {
        let l = iomem_lines(IOMEM).unwrap();
        assert_eq!(l.len(), 6);
        let crash = l.iter().find(|(_, _, n)| n == "Crash kernel").unwrap();
        assert_eq!(crash.0, 2);
        assert_eq!(
            crash.1,
            Range {
                start: 0x1000_0000,
                end: 0x1800_0000
            }
        );
    }

    #[test]
    fn subtract_splits_and_trims() {
        let ram = [
            Range { start: 0, end: 100 },
            Range {
                start: 200,
                end: 300,
            },
        ];
        let got = subtract(
            &ram,
            Range {
                start: 50,
                end: 250,
            },
        );
        assert_eq!(
            got,
            vec![
                Range { start: 0, end: 50 },
                Range {
                    start: 250,
                    end: 300
                }
            ]
        );
    }

    #[test]
    fn b_sees_only_its_range_and_low_memory() {
        let fw = [
            FirmwareEntry {
                range: Range {
                    start: 0,
                    end: 0x9fc00,
                },
                e820_type: E820_RAM,
            },
            FirmwareEntry {
                range: Range {
                    start: 0xf0000,
                    end: 0x100000,
                },
                e820_type: 2,
            },
            FirmwareEntry {
                range: Range {
                    start: 0x100000,
                    end: 0x4000_0000,
                },
                e820_type: E820_RAM,
            },
            FirmwareEntry {
                range: Range {
                    start: 0xfeff_c000,
                    end: 0xff00_0000,
                },
                e820_type: 2,
            },
        ];
        let ram = Range {
            start: 0x1000_0000,
            end: 0x17f0_0000,
        };
        let res = Range {
            start: 0x17f0_0000,
            end: 0x1800_0000,
        };
        let m = e820_for_b(&fw, ram, res);
        let rams: Vec<Range> = m
            .iter()
            .filter(|e| e.e820_type == E820_RAM)
            .map(|e| e.range)
            .collect();
        assert_eq!(
            rams,
            vec![
                Range {
                    start: 0,
                    end: 0x9fc00
                },
                ram
            ]
        );
        assert_eq!(m.len(), 5);
    }
}
