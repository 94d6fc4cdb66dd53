// SPDX-License-Identifier: GPL-2.0

//! The two system calls kjump is about: kexec_load(2) and
//! reboot(LINUX_REBOOT_CMD_KEXEC), with errno turned into a message that
//! names the fix.

use std::io;

/// kexec_load(2) flags (include/uapi/linux/kexec.h).
pub const KEXEC_PRESERVE_CONTEXT: u64 = 0x2;
/// Load in place into the crash kernel reservation; jumps swap nothing.
pub const KEXEC_RESIDENT: u64 = 0x10;
/// Declare a ranges image: destinations only, filled later.
pub const KEXEC_RANGES: u64 = 0x20;
/// Copy data into the loaded ranges image.
pub const KEXEC_FILL: u64 = 0x40;

const LINUX_REBOOT_MAGIC1: libc::c_int = 0xfee1_dead_u32 as libc::c_int;
const LINUX_REBOOT_MAGIC2: libc::c_int = 672_274_793;
const LINUX_REBOOT_CMD_KEXEC: libc::c_int = 0x4558_4543;

/// One segment as kexec_load(2) takes it.
#[repr(C)]
pub struct KexecSegment {
    pub buf: *const u8,
    pub bufsz: usize,
    pub mem: u64,
    pub memsz: u64,
}

/// A segment to load: bytes and where they go.
pub struct Segment {
    pub bytes: Vec<u8>,
    pub mem: u64,
    pub memsz: u64,
}

/// Loads an image; `segments` may be empty only for an unload.
pub fn kexec_load(entry: u64, segments: &[Segment], flags: u64) -> io::Result<()> {
    let raw: Vec<KexecSegment> = segments
        .iter()
        .map(|s| KexecSegment {
            buf: s.bytes.as_ptr(),
            bufsz: s.bytes.len(),
            mem: s.mem,
            memsz: s.memsz,
        })
        .collect();
    // SAFETY: `raw` points into `segments`, which outlive the call.
    unsafe { kexec_load_raw(entry, &raw, flags) }
}

/// kexec_load(2) with segments as the kernel takes them.
///
/// # Safety
///
/// Every `buf` in `raw` points to `bufsz` readable bytes (or is null with
/// `bufsz` 0) for the duration of the call.
pub unsafe fn kexec_load_raw(entry: u64, raw: &[KexecSegment], flags: u64) -> io::Result<()> {
    // SAFETY: the kernel only reads `raw.len()` entries and, by the
    // caller's promise, valid buffers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_kexec_load,
            entry,
            raw.len() as libc::c_ulong,
            raw.as_ptr(),
            flags as libc::c_ulong,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Starts the loaded image; returns once a preserve-context image has
/// jumped back.
pub fn reboot_kexec() -> io::Result<()> {
    // SAFETY: reboot(2) with the kexec command takes no pointer argument.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_reboot,
            LINUX_REBOOT_MAGIC1,
            LINUX_REBOOT_MAGIC2,
            LINUX_REBOOT_CMD_KEXEC,
            0usize,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Powers the machine off (syncs first); returns only on failure.
pub fn power_off() -> io::Error {
    // SAFETY: sync(2) and reboot(2) with the power-off command take no
    // pointer argument.
    unsafe {
        libc::sync();
        libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF);
    }
    io::Error::last_os_error()
}

/// mount(2) of a pseudo filesystem (`fstype` on `target`, no options).
pub fn mount(fstype: &str, target: &str) -> io::Result<()> {
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL in a mount argument");
    let (fstype, target) = (c(fstype), c(target));
    let _ = std::fs::create_dir_all(target.to_str().unwrap_or("/"));
    // SAFETY: all pointers are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Seconds on CLOCK_BOOTTIME, which includes the time A was away.
pub fn boottime() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the kernel to fill in.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Whether kernel lockdown forbids kexec_load, and in which mode.
pub fn lockdown() -> Option<String> {
    let s = std::fs::read_to_string("/sys/kernel/security/lockdown").ok()?;
    let mode = s.split_whitespace().find(|w| w.starts_with('['))?;
    let mode = mode.trim_matches(|c| c == '[' || c == ']');
    (mode != "none").then(|| mode.to_string())
}

/// Why kexec_load() said EPERM: no CAP_SYS_BOOT, kexec_load disabled by
/// sysctl, or kernel lockdown (Secure Boot turns it on).
fn eperm_reason() -> String {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return "needs root (CAP_SYS_BOOT)".to_string();
    }
    let disabled = std::fs::read_to_string("/proc/sys/kernel/kexec_load_disabled")
        .is_ok_and(|s| s.trim() == "1");
    if disabled {
        return "kexec_load is disabled until reboot (kernel.kexec_load_disabled=1)".to_string();
    }
    match lockdown() {
        Some(mode) => format!(
            "kernel lockdown ({mode}) forbids kexec_load, and kexec jump has no signed \
             path: boot without lockdown (Secure Boot off) to use it"
        ),
        None => "refused by a security module or kernel lockdown (mount securityfs on \
                 /sys/kernel/security to see which), or CAP_SYS_BOOT is missing"
            .to_string(),
    }
}

/// One line that says why `what` failed and what to do about it.
pub fn explain(what: &str, e: &io::Error) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) => eperm_reason(),
        Some(libc::EBUSY) => {
            "kexec is busy, or the reservation holds a crash kernel (unload it: kexec -p -u)"
                .to_string()
        }
        Some(libc::EINVAL) => "this kernel lacks kexec jump (CONFIG_KEXEC_JUMP) or resident \
                               images (KEXEC_RESIDENT), or nothing is loaded"
            .to_string(),
        Some(libc::EADDRNOTAVAIL) => "a segment lies outside the reservation".to_string(),
        Some(libc::ENOSYS) => "this kernel has no kexec (CONFIG_KEXEC)".to_string(),
        _ => String::new(),
    };
    if hint.is_empty() {
        format!("{what}: {e}")
    } else {
        format!("{what}: {e}: {hint}")
    }
}
