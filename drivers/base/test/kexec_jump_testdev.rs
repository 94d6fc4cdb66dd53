// SPDX-License-Identifier: GPL-2.0

//! Test devices for kexec jump.
//!
//! Registers two devices, `/sys/devices/kj_testdev0` and `kj_testdev1`,
//! whose system-sleep callbacks record the order they run in, a syscore
//! entry for each that records into its log, and a CPU hotplug teardown
//! step that records into device 0's log only when it is told to fail.
//! Each device has:
//!
//! - `events`: the callbacks run since the last clear, oldest first,
//!   space-separated; writing anything clears the log;
//! - `fail`: the name of one callback (`freeze`, `syscore_suspend`, ...)
//!   that returns `-EIO` until `none` is written. Device 0 also takes
//!   `cpu_offline`: taking the last possible CPU offline fails, after the
//!   others went down.
//!
//! Device 0 also has `hold`: writing N (at most 60) makes the writer
//! sleep N seconds uninterruptibly, a task the freezer cannot freeze, so
//! a transition started meanwhile fails to freeze tasks.
//!
//! Device 0 also has `switch_cycles` (device 1's reads empty): TSC cycles
//! from its syscore suspend to its syscore resume in the last transition,
//! i.e. the machine's last step before a kexec jump to its first after it.
//! Syscore entries suspend in reverse order of registration, so device
//! 0's, registered last, goes first and comes back last: the window holds
//! the other syscore entries, the processor state save and
//! `machine_kexec()`, the same in any kernel. Device 1's suspends after
//! it: a failure there makes `syscore_suspend()` unwind device 0's.
//!
//! Device 1 is registered last, so it is suspended first: a failure in
//! device 0 happens after device 1 was already frozen, and whatever the
//! kexec jump does to unwind shows in device 1's log.

use core::{
    fmt::Write,
    sync::atomic::{AtomicU64, AtomicU8, Ordering},
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
const EVENTS: [&str; 19] = [
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
    "cpu_offline",
];
/// No event: what `fail` holds when nothing fails.
const NONE: u8 = 0;
/// `dev_pm_ops.complete`, recorded by `pm_complete()`.
const COMPLETE: u8 = 11;
/// The syscore entry's suspend, recorded in device 0's log.
const SYSCORE_SUSPEND: u8 = 17;
/// Taking the last possible CPU offline, recorded in device 0's log.
const CPU_OFFLINE: u8 = 18;
/// Recorded but not a name `fail` accepts: resuming cannot fail.
const SYSCORE_RESUME: u8 = 19;

/// The name of `event` as the files show it.
fn event_name(event: u8) -> &'static str {
    match event {
        SYSCORE_RESUME => "syscore_resume",
        e => EVENTS.get(usize::from(e)).copied().unwrap_or("?"),
    }
}

/// The number of events a log holds; later ones are only counted.
const LOG_LEN: usize = 64;

/// `Log::state`: the generation, bumped by every clear, above
/// `LEN_BITS` bits of the number of events recorded in it.
const LEN_BITS: u32 = 8;
const LEN_MASK: u64 = (1 << LEN_BITS) - 1;
/// The count stops one past the log: the reader then shows the overflow.
const LEN_MAX: u64 = LOG_LEN as u64 + 1;
const _: () = assert!(LEN_MAX <= LEN_MASK);
/// A slot holds its generation above `EVENT_BITS` bits of the event.
const EVENT_BITS: u32 = u8::BITS;

/// One device's event log and failure switch.
///
/// Several callers may record at once (callbacks of different devices,
/// the syscore entry) while a `write` to `events` clears the log, so the
/// whole log position lives in one atomic word, `state`, and each slot
/// carries the generation it was recorded in. A slot is then written by
/// exactly one recorder per generation and a clear can neither lose nor
/// duplicate one.
struct Log {
    /// Slot `i` of generation `g` holds `g << EVENT_BITS | event`.
    events: [AtomicU64; LOG_LEN],
    /// `generation << LEN_BITS | count`: see `LEN_BITS`.
    state: AtomicU64,
    /// The event that fails with `-EIO`, or `NONE`.
    fail: AtomicU8,
}

impl Log {
    const fn new() -> Self {
        Self {
            // Generation 0 is never current: no slot is valid before its
            // first write.
            events: [const { AtomicU64::new(0) }; LOG_LEN],
            state: AtomicU64::new(1 << LEN_BITS),
            fail: AtomicU8::new(NONE),
        }
    }

    /// Records `event`; returns `-EIO` if the device was told to fail it.
    fn record(&self, event: u8) -> c_int {
        // Claim the next slot in one read-modify-write: concurrent
        // recorders get distinct slots, and a concurrent clear comes
        // either before the claim (slot 0 of the new generation) or after
        // it (the event belongs to the cleared generation). Past the end
        // the claim fails and the count stays one past the log.
        let claim = self
            .state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                (s & LEN_MASK < LEN_MAX).then_some(s + 1)
            });
        if let Ok(s) = claim {
            let generation = s >> LEN_BITS;
            // `s & LEN_MASK` is at most `LOG_LEN`: the cast is lossless.
            if let Some(slot) = self.events.get((s & LEN_MASK) as usize) {
                // `fetch_max`, not `store`: a recorder of a cleared
                // generation that writes late never hides a newer event.
                slot.fetch_max(
                    (generation << EVENT_BITS) | u64::from(event),
                    Ordering::Relaxed,
                );
            }
        }
        if self.fail.load(Ordering::Relaxed) == event {
            pr_info!("failing {}\n", event_name(event));
            return EIO.to_errno();
        }
        0
    }

    /// Empties the log: starts a new generation with no event.
    fn clear(&self) {
        // Cannot fail: the closure always returns `Some`.
        let _ = self
            .state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(((s >> LEN_BITS) + 1) << LEN_BITS)
            });
    }

    /// Writes the events of the current generation, oldest first.
    ///
    /// Every access is `Relaxed`: each slot is one atomic word that says
    /// itself which generation it belongs to, so there is nothing else to
    /// publish. By coherence the reader sees every event whose `record()`
    /// happens before the read (e.g. callbacks that ran before the `read`
    /// system call), in the order their slots were claimed, and never one
    /// of a cleared generation. A slot claimed but not yet written by a
    /// concurrent recorder, or rewritten after a concurrent clear, reads
    /// as `?`.
    fn show(&self, page: &mut Page<'_>) {
        let state = self.state.load(Ordering::Relaxed);
        let generation = state >> LEN_BITS;
        let len = state & LEN_MASK;
        for (i, slot) in self.events.iter().take(len as usize).enumerate() {
            if i > 0 {
                page.push(" ");
            }
            let value = slot.load(Ordering::Relaxed);
            if value >> EVENT_BITS == generation {
                // The low byte is the event: the cast keeps just it.
                page.push(event_name(value as u8));
            } else {
                page.push("?");
            }
        }
        if len > LOG_LEN as u64 {
            page.push(" ...");
        }
    }
}

/// A cell for a C structure that C code links and writes, or that C code
/// only reads but takes by a mutable pointer. Rust code only passes its
/// address; whether it may be shared between threads is argued for each
/// `T` in its `Sync` implementation below.
#[repr(transparent)]
struct Shared<T>(Opaque<T>);

// SAFETY: Rust writes a test device's `init_name` and `type_` only in
// `TestDevices::register_device()`, before `device_register()` makes the
// device reachable from other threads; after that only the driver core
// and the PM core write it, under their own locks (the device lock,
// `dpm_list_mtx`, the kobject's reference count), and Rust only passes
// its address.
unsafe impl Sync for Shared<bindings::device> {}

// SAFETY: Rust writes an entry's `ops` and `data` only in
// `TestDevices::init()`, before
// `register_syscore()` publishes it; `register_syscore()` and
// `unregister_syscore()` write its list node under `syscore_lock`,
// and `syscore_suspend()`/`syscore_resume()` read it on one CPU with
// interrupts off. Rust only passes its address.
unsafe impl Sync for Shared<bindings::syscore> {}

// SAFETY: the sysfs attributes are initialized at compile time and never
// written: sysfs only reads their name, mode and callbacks.
unsafe impl Sync for Shared<bindings::device_attribute> {}

// SAFETY: the attribute group is initialized at compile time and never
// written: sysfs only reads its attribute table.
unsafe impl Sync for Shared<bindings::attribute_group> {}

// SAFETY: the device type is initialized at compile time and never
// written: the driver core only reads its name, groups, release and PM
// operations, all of which are `Sync` statics.
unsafe impl Sync for Shared<bindings::device_type> {}

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

/// The number of test devices.
const NDEV: usize = 2;
/// The devices' names, as in `/sys/devices/`.
const DEVICE_NAMES: [&str; NDEV] = ["kj_testdev0", "kj_testdev1"];
/// The same names for the driver core.
const DEVICE_CNAMES: [&CStr; NDEV] = [c_str!("kj_testdev0"), c_str!("kj_testdev1")];

/// Each device's log; device 0's also holds the syscore entry's events.
static LOGS: [Log; NDEV] = [const { Log::new() }; NDEV];

/// The test devices, linked into the driver core once registered.
static DEVICES: [Shared<bindings::device>; NDEV] = [const {
    // SAFETY: all-zero is a valid, unregistered `struct device`.
    unsafe { Shared::zeroed() }
}; NDEV];
/// Each device's syscore entry, linked into the syscore list once
/// registered; its `data` is the device's index.
static SYSCORES: [Shared<bindings::syscore>; NDEV] = [const {
    // SAFETY: all-zero is a valid, unregistered `struct syscore`.
    unsafe { Shared::zeroed() }
}; NDEV];

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

/// The TSC at the last syscore suspend.
static SUSPEND_TSC: AtomicU64 = AtomicU64::new(0);
/// The cycles from the last syscore suspend to the resume after it.
static SWITCH_CYCLES: AtomicU64 = AtomicU64::new(0);

/// The time-stamp counter.
fn tsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and only reads the counter;
    // the intrinsic has no precondition.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The log of the syscore entry whose `data` is `data`: the index of its
/// device.
fn syscore_log(data: *mut c_void) -> Option<&'static Log> {
    LOGS.get(data as usize)
}

/// `syscore_ops.suspend`: records into the device's log; device 0's also
/// notes the TSC.
extern "C" fn syscore_suspend(data: *mut c_void) -> c_int {
    if data as usize == 0 {
        SUSPEND_TSC.store(tsc(), Ordering::Relaxed);
    }
    syscore_log(data).map_or(0, |log| log.record(SYSCORE_SUSPEND))
}

/// `syscore_ops.resume`: the event; device 0's also the cycles since its
/// suspend.
extern "C" fn syscore_resume(data: *mut c_void) {
    if data as usize == 0 {
        let cycles = tsc().wrapping_sub(SUSPEND_TSC.load(Ordering::Relaxed));
        SWITCH_CYCLES.store(cycles, Ordering::Relaxed);
    }
    if let Some(log) = syscore_log(data) {
        log.record(SYSCORE_RESUME);
    }
}

/// CPU hotplug teardown (`CPUHP_AP_ONLINE_DYN`): fails with `-EIO` for the
/// last possible CPU while device 0 is told to fail `cpu_offline`. Taking
/// the secondary CPUs offline goes up from CPU 1, so the others are offline
/// by then and must come back.
extern "C" fn cpu_teardown(cpu: core::ffi::c_uint) -> c_int {
    // SAFETY: `nr_cpu_ids` is set once during boot, before any CPU can be
    // taken offline, and only read afterwards.
    let last = unsafe { bindings::nr_cpu_ids } - 1;
    if cpu == last && LOGS[0].fail.load(Ordering::Relaxed) == CPU_OFFLINE {
        return LOGS[0].record(CPU_OFFLINE);
    }
    0
}

/// Devices are static and never freed; the driver core wants a release.
extern "C" fn release(_dev: *mut bindings::device) {}

/// A sysfs `show` buffer being filled, borrowed for `'a`: at most the
/// one `show` call that was given it.
struct Page<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Page<'a> {
    /// # Safety
    ///
    /// `buf` must be valid for reads and writes of `PAGE_SIZE` bytes for
    /// `'a`, and nothing else may access them during `'a`: true of the
    /// buffer sysfs passes to a `show` while that `show` runs.
    unsafe fn new(buf: *mut c_char) -> Page<'a> {
        // SAFETY: the caller guarantees `PAGE_SIZE` bytes at `buf`, ours
        // alone for `'a`; `u8` has no alignment or validity requirement.
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

impl core::fmt::Write for Page<'_> {
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
/// `buf` must be the page buffer sysfs passed to the `show` that calls
/// this function, which is still running.
unsafe fn show(
    dev: *mut bindings::device,
    buf: *mut c_char,
    fill: impl FnOnce(usize, &Log, &mut Page<'_>),
) -> isize {
    let Some((index, log)) = log_of(dev) else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: the caller passes sysfs' page buffer, ours until the `show`
    // returns; `page` is dropped before this function returns and `fill`
    // cannot keep it, as it takes any lifetime.
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
    unsafe { show(dev, buf, |_, log, page| log.show(page)) }
}

/// Writing anything to `events` clears the log.
extern "C" fn events_store(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    _buf: *const c_char,
    count: usize,
) -> isize {
    match log_of(dev) {
        Some((_, log)) => {
            log.clear();
            count as isize
        }
        None => ENODEV.to_errno() as isize,
    }
}

/// The text sysfs passed to a `store`, trimmed; empty if it is not UTF-8.
///
/// # Safety
///
/// `buf` must hold `count` readable bytes for `'a`.
unsafe fn store_text<'a>(buf: *const c_char, count: usize) -> &'a str {
    // SAFETY: the caller guarantees `count` readable bytes at `buf`.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    core::str::from_utf8(input).unwrap_or("").trim()
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
    let name = unsafe { store_text(buf, count) };
    // CPU hotplug belongs to device 0's log.
    let valid = |e: usize| e != usize::from(CPU_OFFLINE) || index == 0;
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

/// Writing N to device 0's `hold` sleeps N seconds (at most 60) in
/// uninterruptible sleep, where the freezer cannot freeze the writer.
///
/// # Safety
///
/// Called by sysfs: `buf` holds `count` bytes.
unsafe extern "C" fn hold_store(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    match log_of(dev) {
        Some((0, _)) => {}
        Some(_) => return EINVAL.to_errno() as isize,
        None => return ENODEV.to_errno() as isize,
    }
    // SAFETY: sysfs passes `count` readable bytes at `buf`.
    match unsafe { store_text(buf, count) }.parse::<u32>().ok() {
        Some(secs @ 1..=60) => {
            // SAFETY: process context (a sysfs write); it only sleeps.
            unsafe { bindings::msleep(secs * 1000) };
            count as isize
        }
        _ => EINVAL.to_errno() as isize,
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

/// `DEVICE_ATTR_RW(name)`, or `DEVICE_ATTR_RO(name)` without `store`, or
/// `DEVICE_ATTR_WO(name)` without `show`.
const fn attr(
    name: &'static CStr,
    show: Option<ShowFn>,
    store: Option<StoreFn>,
) -> Shared<bindings::device_attribute> {
    Shared::new(bindings::device_attribute {
        attr: bindings::attribute {
            name: name.as_char_ptr(),
            mode: match (show.is_some(), store.is_some()) {
                (true, true) => 0o644,
                (true, false) => 0o444,
                _ => 0o200,
            },
            // SAFETY: all-zero is a valid rest of an `attribute` (with
            // lockdep: no lock class key, lockdep not ignored).
            ..unsafe { core::mem::zeroed() }
        },
        show,
        store,
    })
}

/// The device files: `events`, `fail`, `switch_cycles` and `hold`.
static EVENTS_ATTR: Shared<bindings::device_attribute> =
    attr(c_str!("events"), Some(events_show), Some(events_store));
static FAIL_ATTR: Shared<bindings::device_attribute> =
    attr(c_str!("fail"), Some(fail_show), Some(fail_store));
static SWITCH_CYCLES_ATTR: Shared<bindings::device_attribute> =
    attr(c_str!("switch_cycles"), Some(switch_cycles_show), None);
static HOLD_ATTR: Shared<bindings::device_attribute> = attr(c_str!("hold"), None, Some(hold_store));

/// A NULL-terminated table of pointers, as sysfs takes them.
#[repr(transparent)]
struct PtrTable<T, const N: usize>([*mut T; N]);

// SAFETY: `ATTRS` is initialized at compile time and never written (sysfs
// only reads it); its pointers lead to the `Sync` attributes above.
unsafe impl Sync for PtrTable<bindings::attribute, 5> {}

// SAFETY: `GROUPS` is initialized at compile time and never written (the
// driver core only reads it); its pointer leads to the `Sync` `GROUP`.
unsafe impl Sync for PtrTable<bindings::attribute_group, 2> {}

/// The device files, for their attribute group.
// `attr` is the first field of a `device_attribute` (`repr(C)`), so the
// attribute's address is the device attribute's.
static ATTRS: PtrTable<bindings::attribute, 5> = PtrTable([
    EVENTS_ATTR.get().cast(),
    FAIL_ATTR.get().cast(),
    SWITCH_CYCLES_ATTR.get().cast(),
    HOLD_ATTR.get().cast(),
    core::ptr::null_mut(),
]);

/// The one attribute group of a test device.
static GROUP: Shared<bindings::attribute_group> = Shared::new(bindings::attribute_group {
    attrs: ATTRS.0.as_ptr().cast_mut(),
    // SAFETY: all-zero is a valid rest of an `attribute_group`.
    ..unsafe { core::mem::zeroed() }
});

/// The device type's attribute groups.
static GROUPS: PtrTable<bindings::attribute_group, 2> =
    PtrTable([GROUP.get(), core::ptr::null_mut()]);

/// The system-sleep callbacks, each recording its own event.
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

/// The syscore entry's callbacks; it has nothing to do at shutdown.
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

/// The registered devices, syscore entries and CPU hotplug step;
/// dropping unregisters them.
struct TestDevices {
    /// How many of `DEVICES` are registered, in order.
    registered: usize,
    /// The dynamic CPU hotplug state `cpu_teardown` runs in, once set up.
    cpuhp_state: Option<bindings::cpuhp_state>,
}

impl TestDevices {
    /// Registers the next device of `DEVICES`.
    fn register_device(&mut self) -> Result {
        let i = self.registered;
        let dev = DEVICES[i].get();
        // SAFETY: `dev` is a zeroed static device that is not registered
        // yet, so no other thread can reach it: `init`, which runs once,
        // calls this function once per device.
        unsafe {
            (*dev).init_name = DEVICE_CNAMES[i].as_char_ptr();
            (*dev).type_ = DEVICE_TYPE.get();
        }
        // SAFETY: `dev` is a valid, unregistered device with a name and a
        // type, and it is static, so it outlives its registration.
        let ret = unsafe { bindings::device_register(dev) };
        if ret != 0 {
            // SAFETY: `device_register()` initialized `dev` even though it
            // failed; `put_device()` drops the reference it left, and the
            // release callback has nothing to free.
            unsafe { bindings::put_device(dev) };
            return Err(Error::from_errno(ret));
        }
        self.registered += 1;
        Ok(())
    }
}

impl kernel::Module for TestDevices {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut this = TestDevices {
            registered: 0,
            cpuhp_state: None,
        };
        while this.registered < NDEV {
            this.register_device()?;
        }
        // Device 1's entry first: entries suspend in reverse order.
        for i in (0..NDEV).rev() {
            let syscore = SYSCORES[i].get();
            // SAFETY: `syscore` is a zeroed static entry, not registered
            // yet, so no other thread reads `ops` or `data` while they are
            // written; the entry and its ops are static, so they outlive
            // the registration. `data` is the index, not a pointer.
            unsafe {
                (*syscore).ops = &SYSCORE_OPS;
                (*syscore).data = i as *mut c_void;
                bindings::register_syscore(syscore);
            }
        }
        // SAFETY: the name is a static C string and the callback a
        // function that lives forever; no startup call is asked for.
        let ret = unsafe {
            bindings::__cpuhp_setup_state(
                bindings::cpuhp_state_CPUHP_AP_ONLINE_DYN,
                c_str!("kj_testdev:online").as_char_ptr(),
                false,
                None,
                Some(cpu_teardown),
                false,
            )
        };
        // A dynamic state comes back as its positive number.
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        this.cpuhp_state = Some(ret as bindings::cpuhp_state);
        pr_info!("{} and {} registered\n", DEVICE_NAMES[0], DEVICE_NAMES[1]);
        Ok(this)
    }
}

impl Drop for TestDevices {
    fn drop(&mut self) {
        if let Some(state) = self.cpuhp_state {
            // SAFETY: `init` set the state up, and only this drop removes
            // it; no teardown call is asked for.
            unsafe { bindings::__cpuhp_remove_state(state, false) };
        }
        if self.registered == NDEV {
            for entry in &SYSCORES {
                // SAFETY: `init` registered both entries after both
                // devices, and only this drop unregisters them.
                unsafe { bindings::unregister_syscore(entry.get()) };
            }
        }
        for dev in DEVICES.iter().take(self.registered).rev() {
            // SAFETY: `register_device` registered the first
            // `self.registered` devices, and only this drop unregisters them.
            unsafe { bindings::device_unregister(dev.get()) };
        }
    }
}
