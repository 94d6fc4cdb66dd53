// SPDX-License-Identifier: GPL-2.0

//! `fuzz --seed S --secs T`: bad kexec_load() input for preserve-context
//! images. First the regression cases, each with the errno it must get;
//! then random segment lists (counts, addresses, sizes, buffers, flags and
//! entries drawn around the edges the kernel checks) until T seconds have
//! passed. Anything that loads is unloaded at once, never started. The
//! kernel must answer every call; the harness checks the console for
//! reports and then makes a jump.

use crate::sys;
use libc::{EADDRNOTAVAIL, EFAULT, EINVAL, ENOENT, ENOMEM};
use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

const PRESERVE: u64 = 0x2;
const ON_CRASH: u64 = 0x1;
const RESIDENT: u64 = 0x10;
const RANGES: u64 = 0x20;
const FILL: u64 = 0x40;
const PAGE: u64 = 4096;
/// A destination in A's RAM that nothing else uses during the test.
const RAM: u64 = 0x0100_0000;

/// A segment's buffer: an offset into the test buffer, a bogus pointer
/// (None), or NULL (`NULL_BUF`, for ranges, which carry no data).
const NULL_BUF: Option<usize> = Some(usize::MAX);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One kexec_load() call: entry, segments (buffer offset or a bogus
/// pointer, bufsz, mem, memsz), flags.
struct Case {
    entry: u64,
    segs: Vec<(Option<usize>, usize, u64, u64)>,
    flags: u64,
}

fn seg(mem: u64, memsz: u64) -> (Option<usize>, usize, u64, u64) {
    (Some(0), memsz.min(PAGE) as usize, mem, memsz)
}

/// A range of a ranges image: destination only.
fn range(mem: u64, memsz: u64) -> (Option<usize>, usize, u64, u64) {
    (NULL_BUF, 0, mem, memsz)
}

/// A case: entry, segments, flags.
fn case(entry: u64, segs: Vec<(Option<usize>, usize, u64, u64)>, flags: u64) -> Case {
    Case { entry, segs, flags }
}

/// The named bad inputs and the errno each must get (0: it loads).
fn regressions() -> Vec<(&'static str, Case, i32)> {
    let one = |mem, memsz, flags| case(mem, vec![seg(mem, memsz)], flags);
    vec![
        (
            "overlapping segments",
            case(
                RAM,
                vec![seg(RAM, 2 * PAGE), seg(RAM + PAGE, PAGE)],
                PRESERVE,
            ),
            EINVAL,
        ),
        (
            "segment outside RAM",
            one(1 << 40, PAGE, PRESERVE),
            EADDRNOTAVAIL,
        ),
        (
            "segment in a hole below 1 MiB",
            one(0xa0000, PAGE, PRESERVE),
            EADDRNOTAVAIL,
        ),
        (
            "bufsz > memsz",
            case(RAM, vec![(Some(0), 2 * PAGE as usize, RAM, PAGE)], PRESERVE),
            EINVAL,
        ),
        ("unaligned mem", one(RAM + 1, PAGE, PRESERVE), EADDRNOTAVAIL),
        (
            "unaligned memsz",
            one(RAM, PAGE + 1, PRESERVE),
            EADDRNOTAVAIL,
        ),
        (
            "wrapping segment",
            one(!(PAGE - 1), 2 * PAGE, PRESERVE),
            EADDRNOTAVAIL,
        ),
        (
            "17 segments",
            case(
                RAM,
                (0..17).map(|i| seg(RAM + i * PAGE, PAGE)).collect(),
                PRESERVE,
            ),
            EINVAL,
        ),
        ("unknown flag 0x80", one(RAM, PAGE, PRESERVE | 0x80), EINVAL),
        (
            "ranges with data",
            one(RAM, PAGE, PRESERVE | RANGES),
            EINVAL,
        ),
        (
            "ranges out of order",
            case(
                RAM,
                vec![range(RAM + PAGE, PAGE), range(RAM, PAGE)],
                PRESERVE | RANGES,
            ),
            EINVAL,
        ),
        (
            "overlapping ranges",
            case(
                RAM,
                vec![range(RAM, 2 * PAGE), range(RAM + PAGE, PAGE)],
                PRESERVE | RANGES,
            ),
            EINVAL,
        ),
        (
            "range outside RAM",
            case(RAM, vec![range(1 << 40, PAGE)], PRESERVE | RANGES),
            EADDRNOTAVAIL,
        ),
        (
            "unaligned range",
            case(RAM, vec![range(RAM + 1, PAGE)], PRESERVE | RANGES),
            EADDRNOTAVAIL,
        ),
        (
            "range of no memory",
            case(RAM, vec![range(RAM, 0)], PRESERVE | RANGES),
            EADDRNOTAVAIL,
        ),
        (
            "ranges for a crash",
            case(RAM, vec![range(RAM, PAGE)], PRESERVE | RANGES | ON_CRASH),
            EINVAL,
        ),
        (
            "ranges and resident",
            case(RAM, vec![range(RAM, PAGE)], PRESERVE | RANGES | RESIDENT),
            EINVAL,
        ),
        (
            "ranges without preserve-context",
            case(RAM, vec![range(RAM, PAGE)], RANGES),
            EINVAL,
        ),
        (
            "ranges and fill at once",
            case(RAM, vec![range(RAM, PAGE)], PRESERVE | RANGES | FILL),
            EINVAL,
        ),
        (
            "fill with no ranges image",
            one(RAM, PAGE, PRESERVE | FILL),
            ENOENT,
        ),
        (
            "ranges with entry 0",
            case(0, vec![range(RAM, PAGE)], PRESERVE | RANGES),
            EINVAL,
        ),
        (
            "20 ranges (more than 16: loads)",
            case(
                RAM,
                (0..20).map(|i| range(RAM + 2 * i * PAGE, PAGE)).collect(),
                PRESERVE | RANGES,
            ),
            0,
        ),
        (
            "foreign architecture",
            one(RAM, PAGE, PRESERVE | 3 << 16),
            EINVAL,
        ),
        (
            "resident without preserve-context",
            one(RAM, PAGE, RESIDENT),
            EINVAL,
        ),
        (
            "resident for a crash",
            one(RAM, PAGE, RESIDENT | PRESERVE | ON_CRASH),
            EINVAL,
        ),
        (
            "resident outside the reservation",
            one(RAM, PAGE, RESIDENT | PRESERVE),
            EADDRNOTAVAIL,
        ),
        (
            "bogus buffer pointer",
            case(RAM, vec![(None, PAGE as usize, RAM, PAGE)], PRESERVE),
            EFAULT,
        ),
        (
            "jump-back helper with entry 0",
            case(0, vec![(Some(0), 0, 0, 0)], PRESERVE),
            EINVAL,
        ),
        (
            "entry at the top of the address space",
            case(u64::MAX - 2 * PAGE, vec![(Some(0), 0, 0, 0)], PRESERVE),
            EADDRNOTAVAIL,
        ),
        (
            "entry outside every segment (the helper's shape)",
            case(0x1234_5000, vec![(Some(0), 0, 0, 0)], PRESERVE),
            0,
        ),
    ]
}

/// The physical address width in /proc/cpuinfo's "address sizes".
fn phys_bits() -> Result<u32, String> {
    let info = fs::read_to_string("/proc/cpuinfo").map_err(|e| format!("/proc/cpuinfo: {e}"))?;
    info.lines()
        .find_map(|l| {
            let (name, rest) = l.split_once(':')?;
            (name.trim() == "address sizes")
                .then(|| rest.split_whitespace().next()?.parse().ok())?
        })
        .ok_or_else(|| "no address sizes in /proc/cpuinfo".into())
}

/// The end of the System RAM region of /proc/iomem that holds `addr`.
fn ram_end(addr: u64) -> Result<u64, String> {
    iomem_top()?
        .into_iter()
        .find(|(lo, hi, name)| name == "System RAM" && *lo <= addr && addr <= *hi)
        .map(|(_, hi, _)| hi + 1)
        .ok_or_else(|| format!("{addr:#x} is in no System RAM region of /proc/iomem"))
}

/// The top-level resources of /proc/iomem: first byte, last byte, name.
fn iomem_top() -> Result<Vec<(u64, u64, String)>, String> {
    let iomem = fs::read_to_string("/proc/iomem").map_err(|e| format!("/proc/iomem: {e}"))?;
    Ok(iomem
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| {
            let (range, name) = l.split_once(" : ")?;
            let (lo, hi) = range.split_once('-')?;
            Some((
                u64::from_str_radix(lo, 16).ok()?,
                u64::from_str_radix(hi, 16).ok()?,
                name.to_string(),
            ))
        })
        .collect())
}

/// Whether a top-level resource of /proc/iomem holds `addr`.
fn claimed(addr: u64) -> Result<bool, String> {
    Ok(iomem_top()?
        .iter()
        .any(|(lo, hi, _)| *lo <= addr && addr <= *hi))
}

/// The regression cases sized from this machine: an entry just past the
/// CPU's physical address width; a ranges image of the kernel's managed
/// pages (MemTotal) less 32 MiB: not more than RAM, so the kernel starts
/// allocating, but more than can be free while `buffer` (64 MiB) is held,
/// so the load must fail with ENOMEM, not wake the OOM killer (which would
/// kill us); and a range from the last page of System RAM into the hole
/// that follows it (A boots with `mem=`, which leaves the RAM above
/// unclaimed up to the firmware's reserved range).
fn machine_cases() -> Result<Vec<(&'static str, Case, i32)>, String> {
    let text = fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
    let kib = crate::memstat::field(&text, "MemTotal").ok_or("no MemTotal in /proc/meminfo")?;
    let total = (kib * 1024).saturating_sub(32 << 20) & !(PAGE - 1);
    let end = ram_end(RAM)?;
    if RAM + total > end {
        return Err(format!(
            "System RAM at {RAM:#x} is smaller than {total} bytes"
        ));
    }
    if claimed(end)? {
        return Err(format!(
            "no hole after System RAM at {end:#x}: boot with mem= below the RAM size"
        ));
    }
    Ok(vec![
        (
            "range from RAM into the hole after it",
            Case {
                entry: RAM,
                segs: vec![range(end - PAGE, 2 * PAGE)],
                flags: PRESERVE | RANGES,
            },
            EADDRNOTAVAIL,
        ),
        (
            "entry past the CPU's physical address width",
            Case {
                entry: 1 << phys_bits()?,
                segs: vec![(Some(0), 0, 0, 0)],
                flags: PRESERVE,
            },
            EADDRNOTAVAIL,
        ),
        (
            "ranges of MemTotal - 32 MiB, more than is free",
            Case {
                entry: RAM,
                segs: vec![range(RAM, total)],
                flags: PRESERVE | RANGES,
            },
            ENOMEM,
        ),
    ])
}

fn random_case(r: &mut Rng) -> Case {
    let addr = |r: &mut Rng| -> u64 {
        match r.below(8) {
            0 => 0,
            1 => RAM + r.below(64) * PAGE,
            2 => r.below(1 << 32) & !(PAGE - 1),
            3 => r.next(),
            4 => u64::MAX - r.below(4) * PAGE,
            5 => 0xa0000 + r.below(0x60) * PAGE,
            6 => (1 << 40) + r.below(16) * PAGE,
            _ => RAM + r.below(1 << 16),
        }
    };
    let size = |r: &mut Rng| -> u64 {
        match r.below(6) {
            0 => 0,
            1 => PAGE * (1 + r.below(8)),
            2 => r.below(3 * PAGE),
            3 => u64::MAX - r.below(PAGE),
            4 => 1 << (20 + r.below(30)),
            _ => PAGE,
        }
    };
    let n = match r.below(10) {
        0 => 0,
        1 => 16 + r.below(4),
        _ => 1 + r.below(4),
    };
    let segs = (0..n)
        .map(|_| {
            let memsz = size(r);
            let bufsz = match r.below(4) {
                0 => 0,
                1 => size(r),
                _ => memsz,
            };
            let buf = match r.below(8) {
                0 => None,
                1 => NULL_BUF,
                _ => Some(0),
            };
            (buf, bufsz as usize, addr(r), memsz)
        })
        .collect();
    let mut flags = PRESERVE;
    for bit in [ON_CRASH, RESIDENT, 0x4, 0x8, RANGES, FILL, 0x80, 1 << 16] {
        if r.below(6) == 0 {
            flags |= bit;
        }
    }
    if r.below(8) == 0 {
        flags &= !PRESERVE;
    }
    Case {
        entry: addr(r),
        segs,
        flags,
    }
}

/// KEXEC_FILL against a loaded ranges image (two ranges with a gap):
/// each fill's name, the errno it got and the one it must get.
fn fill_cases(buffer: &[u8]) -> Vec<(&'static str, i32, i32)> {
    let ranges = [
        sys::RawSegment {
            buf: std::ptr::null(),
            bufsz: 0,
            mem: RAM,
            memsz: 2 * PAGE,
        },
        sys::RawSegment {
            buf: std::ptr::null(),
            bufsz: 0,
            mem: RAM + 3 * PAGE,
            memsz: PAGE,
        },
    ];
    if let Err(e) = sys::kexec_load(RAM, &ranges, PRESERVE | RANGES) {
        return vec![(
            "a ranges image of two ranges",
            e.raw_os_error().unwrap_or(-1),
            0,
        )];
    }
    let fill = |buf: *const u8, bufsz: usize, mem: u64, memsz: u64| {
        let s = [sys::RawSegment {
            buf,
            bufsz,
            mem,
            memsz,
        }];
        match sys::kexec_load(0, &s, PRESERVE | FILL) {
            Ok(()) => 0,
            Err(e) => e.raw_os_error().unwrap_or(-1),
        }
    };
    let p = buffer.as_ptr();
    let page = PAGE as usize;
    let cases = [
        ("fill inside a range", fill(p, 2 * page, RAM, 2 * PAGE), 0),
        (
            "fill across a gap",
            fill(p, 4 * page, RAM, 4 * PAGE),
            EADDRNOTAVAIL,
        ),
        (
            "fill outside the ranges",
            fill(p, page, RAM + 2 * PAGE, PAGE),
            EADDRNOTAVAIL,
        ),
        (
            "fill with bufsz != memsz",
            fill(p, page, RAM, 2 * PAGE),
            EINVAL,
        ),
        (
            "fill unaligned",
            fill(p, page, RAM + 1, PAGE),
            EADDRNOTAVAIL,
        ),
        ("fill of no bytes", fill(p, 0, RAM, 0), EINVAL),
        (
            "fill from a bogus buffer",
            fill(0x10 as *const u8, page, RAM, PAGE),
            EFAULT,
        ),
    ];
    let _ = sys::kexec_load(0, &[], PRESERVE);
    cases.to_vec()
}

/// Calls kexec_load() for `c`; a success is unloaded at once.
fn try_case(c: &Case, buffer: &[u8]) -> i32 {
    let segs: Vec<sys::RawSegment> = c
        .segs
        .iter()
        .map(|&(buf, bufsz, mem, memsz)| sys::RawSegment {
            // A bogus pointer, or the buffer when it is large enough.
            buf: match buf {
                NULL_BUF => std::ptr::null(),
                Some(off) if off + bufsz <= buffer.len() => buffer[off..].as_ptr(),
                _ => 0x10 as *const u8,
            },
            bufsz,
            mem,
            memsz,
        })
        .collect();
    match sys::kexec_load(c.entry, &segs, c.flags) {
        Ok(()) => {
            let unload = if c.flags & ON_CRASH != 0 {
                ON_CRASH
            } else {
                PRESERVE
            };
            let _ = sys::kexec_load(0, &[], unload);
            0
        }
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

pub fn run(seed: u64, secs: u64) -> Result<String, String> {
    let buffer = vec![0x5au8; 64 << 20];
    let mut bad = Vec::new();
    let mut regs = regressions();
    regs.extend(machine_cases()?);
    for (name, case, want) in &regs {
        let got = try_case(case, &buffer);
        if got != *want {
            bad.push(format!("{name}: errno {got}, want {want}"));
        }
    }
    let fills = fill_cases(&buffer);
    for (name, got, want) in &fills {
        if got != want {
            bad.push(format!("{name}: errno {got}, want {want}"));
        }
    }
    if !bad.is_empty() {
        return Err(bad.join("; "));
    }
    let mut r = Rng(seed | 1);
    let mut seen: BTreeMap<i32, u64> = BTreeMap::new();
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        *seen
            .entry(try_case(&random_case(&mut r), &buffer))
            .or_default() += 1;
        n += 1;
    }
    let tally: Vec<String> = seen
        .iter()
        .map(|(e, k)| format!("errno {e}: {k}"))
        .collect();
    Ok(format!(
        "{} regression cases as expected; {n} random cases ({})",
        regs.len() + fills.len(),
        tally.join(", ")
    ))
}

/// `fill-limit`: with `kexec_load_limit_reboot` at 2, a ranges image of 10
/// pages and 10 fills, one a page, must all succeed: only the load counts
/// against the limit. Then the unload takes the second load; a third is
/// refused with EPERM. The limit cannot be raised again: run it last.
pub fn fill_limit() -> Result<String, String> {
    const PAGES: u64 = 10;
    const EPERM: i32 = 1;
    let limit = "/proc/sys/kernel/kexec_load_limit_reboot";
    fs::write(limit, "2").map_err(|e| format!("{limit}: {e}"))?;
    let range = [sys::RawSegment {
        buf: std::ptr::null(),
        bufsz: 0,
        mem: RAM,
        memsz: PAGES * PAGE,
    }];
    sys::kexec_load(RAM, &range, PRESERVE | RANGES)
        .map_err(|e| format!("ranges load under limit 2: {e}"))?;
    let page = vec![0xa5u8; PAGE as usize];
    for i in 0..PAGES {
        let s = [sys::RawSegment {
            buf: page.as_ptr(),
            bufsz: page.len(),
            mem: RAM + i * PAGE,
            memsz: PAGE,
        }];
        sys::kexec_load(0, &s, PRESERVE | FILL)
            .map_err(|e| format!("fill {} of {PAGES} under limit 2: {e}", i + 1))?;
    }
    sys::kexec_load(0, &[], PRESERVE).map_err(|e| format!("unload, the second load: {e}"))?;
    match sys::kexec_load(RAM, &range, PRESERVE | RANGES) {
        Err(e) if e.raw_os_error() == Some(EPERM) => {}
        r => return Err(format!("a third load: want EPERM, got {r:?}")),
    }
    Ok(format!(
        "limit 2: a ranges load, {PAGES} fills and an unload succeed, a third load gets EPERM"
    ))
}

/// The crash kernel reservation from /proc/iomem: (start, end + 1).
fn reservation() -> Result<(u64, u64), String> {
    let iomem = fs::read_to_string("/proc/iomem").map_err(|e| format!("/proc/iomem: {e}"))?;
    iomem
        .lines()
        .filter(|l| l.ends_with(" : Crash kernel"))
        .find_map(|l| {
            let (lo, hi) = l.trim_start().split(' ').next()?.split_once('-')?;
            Some((
                u64::from_str_radix(lo, 16).ok()?,
                u64::from_str_radix(hi, 16).ok()? + 1,
            ))
        })
        .ok_or_else(|| "no Crash kernel reservation in /proc/iomem".into())
}

/// `resident-efault`: a resident reload over the loaded resident image
/// whose first segment is zeros over all of the reservation but its last
/// page, and whose last segment's buffer is not mapped. It must fail with
/// EFAULT before writing a byte: the installed image (B, with its live
/// state) must still be whole for the next jump.
pub fn resident_efault() -> Result<String, String> {
    let (start, end) = reservation()?;
    let zeros = vec![0u8; (end - start - PAGE) as usize];
    let segs = [
        sys::RawSegment {
            buf: zeros.as_ptr(),
            bufsz: zeros.len(),
            mem: start,
            memsz: end - start - PAGE,
        },
        sys::RawSegment {
            buf: 0x10 as *const u8,
            bufsz: PAGE as usize,
            mem: end - PAGE,
            memsz: PAGE,
        },
    ];
    match sys::kexec_load(start, &segs, PRESERVE | RESIDENT) {
        Err(e) if e.raw_os_error() == Some(EFAULT) => Ok(format!(
            "a reload of {:#x}-{:#x} with an unmapped last buffer got EFAULT",
            start,
            end - 1
        )),
        r => Err(format!(
            "resident reload with an unmapped last buffer: want EFAULT, got {r:?}"
        )),
    }
}
