// SPDX-License-Identifier: GPL-2.0

//! Test devices for kexec jump.
//!
//! Registers two devices, `/sys/devices/kj_testdev0` and `kj_testdev1`,
//! whose system-sleep callbacks record the order they run in, and a
//! syscore entry that records into device 0's log. Each device has:
//!
//! - `events`: the callbacks run since the last clear, oldest first,
//!   space-separated; writing anything clears the log;
//! - `fail`: the name of one callback (`freeze`, `syscore_suspend`, ...)
//!   that returns `-EIO` until `none` is written.
//!
//! Device 0 also has `switch_cycles` (device 1's reads empty): TSC cycles
//! from its syscore suspend to its syscore resume in the last transition,
//! i.e. the machine's last step before a kexec jump to its first after it.
//! Syscore entries suspend
//! in reverse order of registration, so this late one goes first and comes
//! back last: the window holds the other syscore entries, the processor
//! state save and `machine_kexec()`, the same in any kernel.
//!
//! Device 1 is registered last, so it is suspended first: a failure in
//! device 0 happens after device 1 was already frozen, and whatever the
//! kexec jump does to unwind shows in device 1's log.

use core::{
    fmt::Write,
    sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering},
};
use kernel::{
    bindings, c_str,
    ffi::{c_char, c_int, c_void},
    page::PAGE_SIZE,
    prelude::*,
    types::Opaque,
};

module! {
    type: TestDevices,
    name: "kexec_jump_testdev",
    author: "Kexec Jump Team",
    description: "Devices whose PM callbacks record their order and can fail",
    license: "GPL",
}

/// The callbacks a test device records, by the names the files use.
const EVENTS: [&str; 18] = [
    "none",
    "prepare",
    "freeze",
    "freeze_late",
    "freeze_noirq",
    "thaw_noirq",
    "thaw_early",
    "thaw",
    "restore_noirq",
    "restore_early",
    "restore",
    "complete",
    "poweroff",
    "poweroff_late",
    "poweroff_noirq",
    "suspend",
    "resume",
    "syscore_suspend",
];
const NONE: u8 = 0;
const COMPLETE: u8 = 11;
const SYSCORE_SUSPEND: u8 = 17;
/// Recorded but not a name `fail` accepts: resuming cannot fail.
const SYSCORE_RESUME: u8 = 18;

fn event_name(event: u8) -> &'static str {
    match event {
        SYSCORE_RESUME => "syscore_resume",
        e => EVENTS.get(usize::from(e)).copied().unwrap_or("?"),
    }
}

const LOG_LEN: usize = 64;

/// One device's event log and failure switch.
///
/// Callbacks of one device never run concurrently with each other (the PM
/// core calls them one at a time, syscore with interrupts off on one CPU),
/// so plain atomics are enough; readers may see a log being appended to.
struct Log {
    events: [AtomicU8; LOG_LEN],
    len: AtomicUsize,
    fail: AtomicU8,
}

impl Log {
    const fn new() -> Self {
        Self {
            events: [const { AtomicU8::new(NONE) }; LOG_LEN],
            len: AtomicUsize::new(0),
            fail: AtomicU8::new(NONE),
        }
    }

    /// Records `event`; returns `-EIO` if the device was told to fail it.
    fn record(&self, event: u8) -> c_int {
        let at = self.len.load(Ordering::Relaxed);
        if let Some(slot) = self.events.get(at) {
            slot.store(event, Ordering::Relaxed);
        }
        // Past the end only the count grows: the reader shows the overflow.
        self.len.store(at + 1, Ordering::Release);
        if self.fail.load(Ordering::Relaxed) == event {
            pr_info!("failing {}\n", event_name(event));
            return EIO.to_errno();
        }
        0
    }
}

/// A `Sync` cell for the C structures the PM core links and writes.
#[repr(transparent)]
struct Shared<T>(Opaque<T>);

// SAFETY: the PM and driver cores serialize every access to these
// structures; Rust code only passes their addresses.
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    const fn new(value: T) -> Self {
        Self(Opaque::new(value))
    }

    /// # Safety
    ///
    /// All-zero bytes must be a valid `T`.
    const unsafe fn zeroed() -> Self {
        // SAFETY: the caller guarantees that all-zero is a valid `T`.
        Self::new(unsafe { core::mem::zeroed() })
    }

    const fn get(&self) -> *mut T {
        self.0.get()
    }
}

const NDEV: usize = 2;
const DEVICE_NAMES: [&str; NDEV] = ["kj_testdev0", "kj_testdev1"];
const DEVICE_CNAMES: [&CStr; NDEV] = [c_str!("kj_testdev0"), c_str!("kj_testdev1")];

static LOGS: [Log; NDEV] = [const { Log::new() }; NDEV];

static DEVICES: [Shared<bindings::device>; NDEV] = [const {
    // SAFETY: all-zero is a valid, unregistered `struct device`.
    unsafe { Shared::zeroed() }
}; NDEV];
// SAFETY: all-zero is a valid, unregistered `struct syscore`.
static SYSCORE: Shared<bindings::syscore> = unsafe { Shared::zeroed() };

/// The log of the device at `dev`, and its index.
fn log_of(dev: *mut bindings::device) -> Option<(usize, &'static Log)> {
    DEVICES
        .iter()
        .position(|d| d.get() == dev)
        .map(|i| (i, &LOGS[i]))
}

/// A `dev_pm_ops` callback that records `E`.
extern "C" fn pm_callback<const E: u8>(dev: *mut bindings::device) -> c_int {
    log_of(dev).map_or(0, |(_, log)| log.record(E))
}

/// `dev_pm_ops.complete`, which returns nothing.
extern "C" fn pm_complete(dev: *mut bindings::device) {
    if let Some((_, log)) = log_of(dev) {
        log.record(COMPLETE);
    }
}

/// TSC at the last syscore suspend, and the cycles to the resume after it.
static SUSPEND_TSC: AtomicU64 = AtomicU64::new(0);
static SWITCH_CYCLES: AtomicU64 = AtomicU64::new(0);

fn tsc() -> u64 {
    // SAFETY: reading the time-stamp counter has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

extern "C" fn syscore_suspend(_data: *mut c_void) -> c_int {
    SUSPEND_TSC.store(tsc(), Ordering::Relaxed);
    LOGS[0].record(SYSCORE_SUSPEND)
}

extern "C" fn syscore_resume(_data: *mut c_void) {
    let cycles = tsc().wrapping_sub(SUSPEND_TSC.load(Ordering::Relaxed));
    SWITCH_CYCLES.store(cycles, Ordering::Relaxed);
    LOGS[0].record(SYSCORE_RESUME);
}

/// Devices are static and never freed; the driver core wants a release.
extern "C" fn release(_dev: *mut bindings::device) {}

/// A sysfs `show` buffer being filled.
struct Page {
    buf: &'static mut [u8],
    len: usize,
}

impl Page {
    /// # Safety
    ///
    /// `buf` must be the page-sized buffer sysfs passed to a `show`.
    unsafe fn new(buf: *mut c_char) -> Self {
        // SAFETY: the caller passes sysfs' buffer: PAGE_SIZE bytes, ours
        // alone until `show` returns.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), PAGE_SIZE) };
        Self { buf, len: 0 }
    }

    /// Appends `s`, cut to what fits.
    fn push(&mut self, s: &str) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
    }
}

impl core::fmt::Write for Page {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.push(s);
        Ok(())
    }
}

/// The body of a `show`: finds the device's log and fills sysfs' page
/// with `fill`, or fails with `ENODEV` for a device that is not ours.
///
/// # Safety
///
/// `buf` must be the page buffer sysfs passed to the `show`.
unsafe fn show(
    dev: *mut bindings::device,
    buf: *mut c_char,
    fill: impl FnOnce(usize, &Log, &mut Page),
) -> isize {
    let Some((index, log)) = log_of(dev) else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: the caller passes sysfs' page buffer.
    let mut page = unsafe { Page::new(buf) };
    fill(index, log, &mut page);
    page.push("\n");
    page.len as isize
}

/// # Safety
///
/// Called by sysfs: `buf` is its page buffer.
unsafe extern "C" fn events_show(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs calls `show` with its page buffer.
    unsafe {
        show(dev, buf, |_, log, page| {
            let len = log.len.load(Ordering::Acquire);
            for (i, e) in log.events.iter().take(len).enumerate() {
                if i > 0 {
                    page.push(" ");
                }
                page.push(event_name(e.load(Ordering::Relaxed)));
            }
            if len > LOG_LEN {
                page.push(" ...");
            }
        })
    }
}

extern "C" fn events_store(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    _buf: *const c_char,
    count: usize,
) -> isize {
    match log_of(dev) {
        Some((_, log)) => {
            log.len.store(0, Ordering::Release);
            count as isize
        }
        None => ENODEV.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by sysfs: `buf` is its page buffer.
unsafe extern "C" fn fail_show(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs calls `show` with its page buffer.
    unsafe {
        show(dev, buf, |_, log, page| {
            page.push(event_name(log.fail.load(Ordering::Relaxed)))
        })
    }
}

/// # Safety
///
/// Called by sysfs: `buf` holds `count` bytes.
unsafe extern "C" fn fail_store(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    let Some((index, log)) = log_of(dev) else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: sysfs passes `count` readable bytes at `buf`.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    let name = core::str::from_utf8(input).unwrap_or("").trim();
    // Syscore callbacks belong to device 0's log.
    let valid = |e: usize| e != usize::from(SYSCORE_SUSPEND) || index == 0;
    match EVENTS.iter().position(|n| *n == name).filter(|e| valid(*e)) {
        Some(e) => {
            log.fail.store(e as u8, Ordering::Relaxed);
            count as isize
        }
        None => EINVAL.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by sysfs: `buf` is its page buffer.
unsafe extern "C" fn switch_cycles_show(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs calls `show` with its page buffer.
    unsafe {
        show(dev, buf, |index, _, page| {
            // Only device 0 carries the syscore entry. Writing cannot
            // fail: `Page` cuts what does not fit.
            if index == 0 {
                let _ = write!(page, "{}", SWITCH_CYCLES.load(Ordering::Relaxed));
            }
        })
    }
}

/// A sysfs `show` callback.
type ShowFn = unsafe extern "C" fn(
    *mut bindings::device,
    *mut bindings::device_attribute,
    *mut c_char,
) -> isize;
/// A sysfs `store` callback.
type StoreFn = unsafe extern "C" fn(
    *mut bindings::device,
    *mut bindings::device_attribute,
    *const c_char,
    usize,
) -> isize;

/// `DEVICE_ATTR_RW(name)`, or `DEVICE_ATTR_RO(name)` without `store`.
const fn attr(
    name: &'static CStr,
    show: ShowFn,
    store: Option<StoreFn>,
) -> Shared<bindings::device_attribute> {
    Shared::new(bindings::device_attribute {
        attr: bindings::attribute {
            name: name.as_char_ptr(),
            mode: if store.is_some() { 0o644 } else { 0o444 },
        },
        show: Some(show),
        store,
    })
}

static EVENTS_ATTR: Shared<bindings::device_attribute> =
    attr(c_str!("events"), events_show, Some(events_store));
static FAIL_ATTR: Shared<bindings::device_attribute> =
    attr(c_str!("fail"), fail_show, Some(fail_store));
static SWITCH_CYCLES_ATTR: Shared<bindings::device_attribute> =
    attr(c_str!("switch_cycles"), switch_cycles_show, None);

/// A NULL-terminated table of pointers, as sysfs takes them.
#[repr(transparent)]
struct PtrTable<T, const N: usize>([*mut T; N]);

// SAFETY: the tables are never written after compile time.
unsafe impl<T, const N: usize> Sync for PtrTable<T, N> {}

// `attr` is the first field of a `device_attribute` (`repr(C)`), so the
// attribute's address is the device attribute's.
static ATTRS: PtrTable<bindings::attribute, 4> = PtrTable([
    EVENTS_ATTR.get().cast(),
    FAIL_ATTR.get().cast(),
    SWITCH_CYCLES_ATTR.get().cast(),
    core::ptr::null_mut(),
]);

static GROUP: Shared<bindings::attribute_group> = Shared::new(bindings::attribute_group {
    attrs: ATTRS.0.as_ptr().cast_mut(),
    // SAFETY: all-zero is a valid rest of an `attribute_group`.
    ..unsafe { core::mem::zeroed() }
});

static GROUPS: PtrTable<bindings::attribute_group, 2> =
    PtrTable([GROUP.get(), core::ptr::null_mut()]);

static PM_OPS: bindings::dev_pm_ops = bindings::dev_pm_ops {
    prepare: Some(pm_callback::<1>),
    freeze: Some(pm_callback::<2>),
    freeze_late: Some(pm_callback::<3>),
    freeze_noirq: Some(pm_callback::<4>),
    thaw_noirq: Some(pm_callback::<5>),
    thaw_early: Some(pm_callback::<6>),
    thaw: Some(pm_callback::<7>),
    restore_noirq: Some(pm_callback::<8>),
    restore_early: Some(pm_callback::<9>),
    restore: Some(pm_callback::<10>),
    complete: Some(pm_complete),
    poweroff: Some(pm_callback::<12>),
    poweroff_late: Some(pm_callback::<13>),
    poweroff_noirq: Some(pm_callback::<14>),
    suspend: Some(pm_callback::<15>),
    resume: Some(pm_callback::<16>),
    // SAFETY: all-zero is a valid rest of a `dev_pm_ops` (no callback).
    ..unsafe { core::mem::zeroed() }
};

static SYSCORE_OPS: bindings::syscore_ops = bindings::syscore_ops {
    suspend: Some(syscore_suspend),
    resume: Some(syscore_resume),
    shutdown: None,
};

/// The device type: its PM callbacks and sysfs files.
static DEVICE_TYPE: Shared<bindings::device_type> = Shared::new(bindings::device_type {
    name: c_str!("kj_testdev").as_char_ptr(),
    groups: GROUPS.0.as_ptr().cast_mut().cast(),
    release: Some(release),
    pm: &PM_OPS,
    // SAFETY: all-zero is a valid rest of a `device_type`.
    ..unsafe { core::mem::zeroed() }
});

/// The registered devices and syscore entry; dropping unregisters them.
struct TestDevices {
    registered: usize,
}

impl TestDevices {
    fn register_device(&mut self) -> Result {
        let i = self.registered;
        let dev = DEVICES[i].get();
        // SAFETY: `dev` is a zeroed, unregistered static device that only
        // this function touches before registering it.
        unsafe {
            (*dev).init_name = DEVICE_CNAMES[i].as_char_ptr();
            (*dev).type_ = DEVICE_TYPE.get();
        }
        // SAFETY: `dev` is set up as above.
        let ret = unsafe { bindings::device_register(dev) };
        if ret != 0 {
            // SAFETY: a failed device_register() needs put_device().
            unsafe { bindings::put_device(dev) };
            return Err(Error::from_errno(ret));
        }
        self.registered += 1;
        Ok(())
    }
}

impl kernel::Module for TestDevices {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut this = TestDevices { registered: 0 };
        while this.registered < NDEV {
            this.register_device()?;
        }
        let syscore = SYSCORE.get();
        // SAFETY: `syscore` is the zeroed static entry, not yet registered.
        unsafe {
            (*syscore).ops = &SYSCORE_OPS;
            bindings::register_syscore(syscore);
        }
        pr_info!("{} and {} registered\n", DEVICE_NAMES[0], DEVICE_NAMES[1]);
        Ok(this)
    }
}

impl Drop for TestDevices {
    fn drop(&mut self) {
        if self.registered == NDEV {
            // SAFETY: registered in `init`.
            unsafe { bindings::unregister_syscore(SYSCORE.get()) };
        }
        for dev in DEVICES.iter().take(self.registered).rev() {
            // SAFETY: registered by `register_device`.
            unsafe { bindings::device_unregister(dev.get()) };
        }
    }
}
