// SPDX-License-Identifier: GPL-2.0

//! The kexec jump test devices (drivers/base/test/kexec_jump_testdev.rs):
//! `/sys/devices/kj_testdevN/{events,fail}`.

use crate::physcall::Program;
use std::{fs, path::Path};

const DEVICES: [&str; 2] = ["kj_testdev0", "kj_testdev1"];

fn attr(dev: &str, name: &str) -> String {
    format!("/sys/devices/{dev}/{name}")
}

fn write(path: &str, value: &str) -> Result<(), String> {
    fs::write(path, value).map_err(|e| format!("{path}: {e}"))
}

fn clear_events() -> Result<(), String> {
    DEVICES
        .iter()
        .try_for_each(|d| write(&attr(d, "events"), "\n"))
}

/// "dev0=[...] dev1=[...] cpus=...": both logs and the online CPUs.
fn state() -> Result<String, String> {
    let mut out = String::new();
    for (i, d) in DEVICES.iter().enumerate() {
        let path = attr(d, "events");
        let events = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        out += &format!("dev{i}=[{}] ", events.trim());
    }
    let cpus = fs::read_to_string("/sys/devices/system/cpu/online")
        .map_err(|e| format!("cpu/online: {e}"))?;
    Ok(out + &format!("cpus={}", cpus.trim()))
}

/// `events`: one call of the program, with both devices' logs.
pub fn events(elf: &Path, mem_min: &str, mem_max: &str) -> Result<(), String> {
    let mut program = Program::load(elf, mem_min, mem_max, false)?;
    clear_events()?;
    program.call().map_err(|e| format!("jump: {e}"))??;
    println!("events: call ok {}", state()?);
    Ok(())
}

/// `unwind`: for each `devN:callback` in `steps`, makes that callback fail
/// and starts the program; prints the errno and what each device went
/// through. Then one call with nothing failing must work.
pub fn unwind(elf: &Path, steps: &[String], mem_min: &str, mem_max: &str) -> Result<(), String> {
    let mut program = Program::load(elf, mem_min, mem_max, false)?;
    for step in steps {
        let (dev, callback) = step
            .split_once(':')
            .and_then(|(d, c)| {
                Some((
                    *DEVICES.get(d.strip_prefix("dev")?.parse::<usize>().ok()?)?,
                    c,
                ))
            })
            .ok_or_else(|| format!("bad step {step}: want devN:callback"))?;
        clear_events()?;
        write(&attr(dev, "fail"), callback)?;
        let result = program.call();
        write(&attr(dev, "fail"), "none")?;
        let outcome = match result {
            Ok(_) => "jumped".to_string(),
            Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(0)),
        };
        println!("unwind: {step} {outcome} {}", state()?);
        crate::sys::drain_stdout();
    }
    clear_events()?;
    program
        .call()
        .map_err(|e| format!("call after the failures: {e}"))??;
    println!("unwind: call ok {}", state()?);
    Ok(())
}
