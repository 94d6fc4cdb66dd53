// SPDX-License-Identifier: GPL-2.0

//! The two system calls kjump is about: kexec_load(2) and
//! reboot(LINUX_REBOOT_CMD_KEXEC), with errno turned into a message that
//! names the fix.

use rustix::mount::MountFlags;
use rustix::system::{reboot, RebootCommand};
use rustix::time::ClockId;
use std::io;
use std::marker::PhantomData;

/// kexec_load(2) flags (include/uapi/linux/kexec.h).
/// Load the image a panic starts, into the crashkernel= reservation.
pub const KEXEC_ON_CRASH: u64 = 0x1;
/// Keep the caller's context: the image can jump back.
pub const KEXEC_PRESERVE_CONTEXT: u64 = 0x2;
/// Load in place into the crash kernel reservation; jumps swap nothing.
pub const KEXEC_RESIDENT: u64 = 0x10;
/// Declare a ranges image: destinations only, filled later.
pub const KEXEC_RANGES: u64 = 0x20;
/// Copy data into the loaded ranges image.
pub const KEXEC_FILL: u64 = 0x40;

/// One segment as kexec_load(2) takes it, borrowing its bytes: the
/// borrow is what makes [`kexec_load`] safe to call.
#[repr(C)]
pub struct KexecSegment<'a> {
    buf: *const u8,
    bufsz: usize,
    mem: u64,
    memsz: u64,
    bytes: PhantomData<&'a [u8]>,
}

impl<'a> KexecSegment<'a> {
    /// `bytes` copied to physical `mem`, zero-filled up to `memsz`.
    pub fn new(bytes: &'a [u8], mem: u64, memsz: u64) -> Self {
        Self {
            buf: bytes.as_ptr(),
            bufsz: bytes.len(),
            mem,
            memsz,
            bytes: PhantomData,
        }
    }

    /// A destination without bytes (a ranges image's declaration): the
    /// kernel wants `buf` NULL, which an empty slice's pointer is not.
    pub fn range(mem: u64, memsz: u64) -> Self {
        Self {
            buf: std::ptr::null(),
            ..Self::new(&[], mem, memsz)
        }
    }

    /// How many bytes this segment carries.
    pub fn bufsz(&self) -> usize {
        self.bufsz
    }

    /// Where the segment goes: physical address and size.
    pub fn dest(&self) -> (u64, u64) {
        (self.mem, self.memsz)
    }
}

/// A segment to load: bytes and where they go.
pub struct Segment {
    pub bytes: Vec<u8>,
    pub mem: u64,
    pub memsz: u64,
}

impl Segment {
    /// This segment as kexec_load(2) takes it.
    pub fn raw(&self) -> KexecSegment<'_> {
        KexecSegment::new(&self.bytes, self.mem, self.memsz)
    }
}

/// Loads an image from owned segments; empty `segments` unload.
pub fn kexec_load(entry: u64, segments: &[Segment], flags: u64) -> io::Result<()> {
    let raw: Vec<KexecSegment> = segments.iter().map(Segment::raw).collect();
    kexec_load_raw(entry, &raw, flags)
}

/// kexec_load(2) with segments as the kernel takes them.
pub fn kexec_load_raw(entry: u64, raw: &[KexecSegment], flags: u64) -> io::Result<()> {
    // SAFETY: the kernel reads `raw.len()` entries, each `buf` pointing to
    // `bufsz` bytes (or none) that `KexecSegment` borrows for at least as
    // long as `raw` lives; it writes nothing of ours.
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

/// The CPUs online now, from /sys/devices/system/cpu/online ("0-3,6").
pub fn online_cpus() -> Vec<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    text.trim()
        .split(',')
        .filter_map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            Some(a.parse().ok()?..=b.parse().ok()?)
        })
        .flatten()
        .collect()
}

/// Runs the calling thread only on `cpus`.
pub fn run_on(cpus: &[usize]) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    cpus.iter().for_each(|&c| set.set(c));
    rustix::thread::sched_setaffinity(None, &set).map_err(io::Error::from)
}

/// Starts the loaded image; returns once a preserve-context image has
/// jumped back.
pub fn reboot_kexec() -> io::Result<()> {
    reboot(RebootCommand::Kexec).map_err(io::Error::from)
}

/// Powers the machine off (syncs first); returns only on failure.
pub fn power_off() -> io::Error {
    sync();
    match reboot(RebootCommand::PowerOff) {
        Ok(()) => io::Error::other("reboot(POWER_OFF) returned"),
        Err(e) => e.into(),
    }
}

/// Flushes every filesystem's dirty data to its disk.
pub fn sync() {
    rustix::fs::sync();
}

/// mount(2) of a pseudo filesystem (`fstype` on `target`, no options).
pub fn mount(fstype: &str, target: &str) -> io::Result<()> {
    let _ = std::fs::create_dir_all(target);
    rustix::mount::mount(fstype, target, fstype, MountFlags::empty(), None).map_err(io::Error::from)
}

/// Seconds on CLOCK_BOOTTIME, which includes the time A was away.
pub fn boottime() -> f64 {
    let ts = rustix::time::clock_gettime(ClockId::Boottime);
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
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
    if !is_root() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_has_no_buffer() {
        let r = KexecSegment::range(0x10_0000, 0x1000);
        assert!(r.buf.is_null() && r.bufsz == 0);
        assert_eq!(r.dest(), (0x10_0000, 0x1000));
    }
}
