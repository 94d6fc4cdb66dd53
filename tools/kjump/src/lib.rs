// SPDX-License-Identifier: GPL-2.0

//! kjump: kexec jump with one command. The library behind the `kjump`
//! CLI, one module a concern, shared with its tests and the harness.

pub mod aligned;
pub mod bzimage;
pub mod call;
pub mod device;
pub mod elfcore;
pub mod filesystems;
pub mod hibernate;
pub mod image;
pub mod jump;
pub mod load;
pub mod machine;
pub mod memmap;
pub mod panic_return;
pub mod partuuid;
pub mod purgatory;
pub mod resume;
pub mod seal;
pub mod state;
pub mod status;
pub mod sys;
pub mod vmcore;

/// With KJUMP_TRACE set: prints `what` and the seconds since the first
/// call, on stderr (where the time of a slow step goes).
pub fn trace(what: &str) {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    if std::env::var_os("KJUMP_TRACE").is_some() {
        let t = START.get_or_init(std::time::Instant::now).elapsed();
        eprintln!("kjump: trace {:.3} {what}", t.as_secs_f64());
    }
}
