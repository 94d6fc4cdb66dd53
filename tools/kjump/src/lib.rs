// SPDX-License-Identifier: GPL-2.0

//! kjump: kexec jump with one command. The library behind the `kjump`
//! CLI, one module a concern, shared with its tests and the harness.

/// The bytes a `global_asm!` block placed between the symbols `$start`
/// and `$end` (declared `static u8` in an `extern "C"` block), as a slice.
macro_rules! assembled {
    ($start:ident, $end:ident) => {
        // SAFETY: the caller's global_asm! block defines both symbols in
        // one read-only section, `$start` before `$end`; the bytes between
        // are initialized, never written, and live as long as the program.
        unsafe {
            let start = core::ptr::addr_of!($start);
            let end = core::ptr::addr_of!($end);
            core::slice::from_raw_parts(start, end.offset_from(start) as usize)
        }
    };
}

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
