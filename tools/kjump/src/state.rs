// SPDX-License-Identifier: GPL-2.0

//! What kjump loaded and how many jumps it made, for `kjump status`. The
//! kernel knows only that an image is loaded; the rest is kept in a file
//! of this kernel's runtime directory (a tmpfs, gone at reboot).

use crate::memmap::Range;
use anyhow::{Context, Result};
use std::fs;

const DIR: &str = "/run/kjump";
const FILE: &str = "/run/kjump/state";

pub struct State {
    pub kernel: String,
    pub b_ram: Range,
    pub reservation: Range,
    pub jumps: u64,
}

pub fn save(s: &State) -> Result<()> {
    fs::create_dir_all(DIR).with_context(|| DIR.to_string())?;
    let text = format!(
        "kernel={}\nb_ram={:#x}-{:#x}\nreservation={:#x}-{:#x}\njumps={}\n",
        s.kernel, s.b_ram.start, s.b_ram.end, s.reservation.start, s.reservation.end, s.jumps
    );
    fs::write(FILE, text).with_context(|| FILE.to_string())
}

fn range(v: &str) -> Option<Range> {
    let (a, b) = v.split_once('-')?;
    let p = |x: &str| u64::from_str_radix(x.trim_start_matches("0x"), 16).ok();
    Some(Range {
        start: p(a)?,
        end: p(b)?,
    })
}

pub fn load() -> Option<State> {
    let text = fs::read_to_string(FILE).ok()?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(str::to_string)
    };
    Some(State {
        kernel: get("kernel")?,
        b_ram: range(&get("b_ram")?)?,
        reservation: range(&get("reservation")?)?,
        jumps: get("jumps")?.parse().ok()?,
    })
}

/// Forgets what was loaded (the jump count stays).
pub fn clear() {
    if let Some(s) = load() {
        let _ = fs::remove_file(FILE);
        let _ = fs::write(format!("{DIR}/jumps"), format!("{}\n", s.jumps));
    }
}

/// Counts a jump made from this kernel.
pub fn count_jump() {
    if let Some(mut s) = load() {
        s.jumps += 1;
        let _ = save(&s);
    } else {
        let _ = fs::create_dir_all(DIR);
        let n = fs::read_to_string(format!("{DIR}/jumps"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let _ = fs::write(format!("{DIR}/jumps"), format!("{}\n", n + 1));
    }
}

/// Jumps made from this kernel (B counts its jumps back).
pub fn jumps() -> u64 {
    load().map(|s| s.jumps).unwrap_or_else(|| {
        fs::read_to_string(format!("{DIR}/jumps"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    })
}
