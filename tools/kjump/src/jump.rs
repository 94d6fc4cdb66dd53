// SPDX-License-Identifier: GPL-2.0

//! Jumping between kernels: to B and back, with the jump-back entry the
//! kernel gave B on its command line.

use crate::{state, sys};
use anyhow::{bail, Context, Result};
use std::fs;

/// kexec_jump_back_entry= of this kernel's command line: Ok(None) in A.
pub fn back_entry() -> Result<Option<u64>> {
    let cmdline = fs::read_to_string("/proc/cmdline").context("/proc/cmdline")?;
    parse_back_entry(&cmdline)
}

/// kexec_jump_back_entry= of `cmdline`: a non-zero hex address, or None.
pub fn parse_back_entry(cmdline: &str) -> Result<Option<u64>> {
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

pub fn loaded() -> bool {
    fs::read_to_string("/sys/kernel/kexec_loaded").is_ok_and(|s| s.trim() == "1")
}

/// Syncs (the other kernel may never come back), jumps, counts the jump
/// and returns the seconds this kernel was away (CLOCK_BOOTTIME).
pub fn jump(what: &str) -> Result<f64> {
    sys::sync();
    let t0 = sys::boottime();
    sys::reboot_kexec().map_err(|e| anyhow::anyhow!(sys::explain(what, &e)))?;
    state::count_jump();
    Ok(sys::boottime() - t0)
}

pub fn exec() -> Result<()> {
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

pub fn unload() -> Result<()> {
    sys::kexec_load(0, &[], sys::KEXEC_PRESERVE_CONTEXT)
        .map_err(|e| anyhow::anyhow!(sys::explain("unloading", &e)))?;
    state::clear();
    println!("kjump: unloaded");
    Ok(())
}

pub fn back() -> Result<()> {
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
