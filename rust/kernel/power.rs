// SPDX-License-Identifier: GPL-2.0

//! System sleep: the steps that quiesce the machine before a transition
//! (a kexec jump, a hibernation image) and bring it back afterwards.
//!
//! C headers: [`include/linux/suspend.h`](srctree/include/linux/suspend.h),
//! [`include/linux/pm.h`](srctree/include/linux/pm.h),
//! [`include/linux/freezer.h`](srctree/include/linux/freezer.h),
//! [`include/linux/syscore_ops.h`](srctree/include/linux/syscore_ops.h).
//!
//! Each step is a guard, and the steps form a chain: the constructor of a
//! step takes the step before it by exclusive borrow, so the steps can only
//! be entered in order, none can be skipped or entered twice, and the
//! borrow checker makes each step be left (dropped) before the one it
//! borrows:
//!
//! [`SystemTransitionLocked`] -> [`PreparedConsole`] -> [`FrozenTasks`] ->
//! [`SuspendedConsole`] -> [`SuspendedDevices`] -> [`SuspendedDevicesLate`]
//! -> [`SecondaryCpusOffline`] -> (interrupts off) -> [`SuspendedSyscore`].
//!
//! The guards are not `Send`: the mutex, the freezer and CPU hotplug
//! belong to the task that entered the step, which must also leave it.
//!
//! ```no_run
//! use kernel::interrupt::with_local_interrupts_disabled;
//! use kernel::power::*;
//!
//! fn quiesce_and(
//!     locked: &mut SystemTransitionLocked<'_>,
//!     transition: impl FnOnce(&SuspendedSyscore<'_>),
//! ) -> Result {
//!     let mut console = PreparedConsole::prepare(locked);
//!     let mut tasks = FrozenTasks::freeze(&mut console)?;
//!     let mut output = SuspendedConsole::suspend(&mut tasks);
//!     let mut devices = SuspendedDevices::start(&mut output, Message::FREEZE, Message::RESTORE)?;
//!     let mut late = SuspendedDevicesLate::end(&mut devices)?;
//!     let mut cpus = SecondaryCpusOffline::disable(&mut late)?;
//!     with_local_interrupts_disabled(|irqs| {
//!         let syscore = SuspendedSyscore::suspend(&mut cpus, irqs)?;
//!         transition(&syscore);
//!         Ok(())
//!     })
//! }
//! ```
//!
//! A guard exists only once its C call succeeded. A constructor that fails
//! first undoes whatever its own step did partway, so a chain built with
//! `?` leaves exactly the steps it entered, in reverse order, on every path.
//!
//! Messages: a step that fails partway undoes its partial work with
//! [`Message::RECOVER`], as the PM core does inside `dpm_suspend_end()` and
//! as hibernation does when its image cannot be made; a step that was
//! fully entered is left with the resume message its caller chose.

use crate::{bindings, error::to_result, interrupt::LocalInterruptDisabled, prelude::*};
use core::marker::PhantomData;

/// What each guard holds beside its borrow: the `*mut ()` makes the guards
/// neither `Send` nor `Sync`, so no step is left by another task.
type Step<'a> = PhantomData<(&'a mut (), *mut ())>;

/// A power-management transition message (`pm_message_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message(i32);

impl Message {
    /// Quiesce devices for a snapshot of the system (`PMSG_FREEZE`).
    pub const FREEZE: Message = Message(bindings::PM_EVENT_FREEZE as i32);
    /// Resume devices after a snapshot was used: they may have been reset
    /// meanwhile (`PMSG_RESTORE`).
    pub const RESTORE: Message = Message(bindings::PM_EVENT_RESTORE as i32);
    /// Resume devices after a freeze that failed: nothing else touched them
    /// (`PMSG_RECOVER`).
    pub const RECOVER: Message = Message(bindings::PM_EVENT_RECOVER as i32);

    fn to_raw(self) -> bindings::pm_message_t {
        bindings::pm_message_t { event: self.0 }
    }
}

/// No other system transition (suspend, hibernation, another kexec jump)
/// can run: the current task holds `system_transition_mutex`, as `reboot()`
/// does around `kernel_kexec()`. The first link of the chain.
///
/// # Invariants
///
/// The current task holds `system_transition_mutex` for `'a`.
pub struct SystemTransitionLocked<'a>(Step<'a>);

impl SystemTransitionLocked<'_> {
    /// Stands for the `system_transition_mutex` the current task holds.
    ///
    /// # Safety
    ///
    /// The current task holds `system_transition_mutex`, and keeps holding
    /// it while the returned value lives.
    pub unsafe fn assume_held() -> Self {
        // INVARIANT: by the caller's guarantee.
        Self(PhantomData)
    }
}

/// The console is switched to the suspend console (`pm_prepare_console()`).
///
/// # Invariants
///
/// `pm_prepare_console()` was called and `pm_restore_console()` was not.
#[must_use = "dropping the guard restores the console at once"]
pub struct PreparedConsole<'a>(Step<'a>);

impl<'a> PreparedConsole<'a> {
    /// Switches the console; the switch is undone on drop.
    pub fn prepare(_transition: &'a mut SystemTransitionLocked<'_>) -> Self {
        // SAFETY: callable from process context; it cannot fail.
        unsafe { bindings::pm_prepare_console() };
        // INVARIANT: the console was just prepared.
        Self(PhantomData)
    }
}

impl Drop for PreparedConsole<'_> {
    fn drop(&mut self) {
        // SAFETY: prepared, by the type invariant.
        unsafe { bindings::pm_restore_console() };
    }
}

/// User space and freezable kernel threads are frozen, and no allocation
/// may start I/O (`pm_restrict_gfp_mask()`): devices are suspended next.
///
/// # Invariants
///
/// `freeze_processes()` succeeded, then `pm_restrict_gfp_mask()` was
/// called, and neither `pm_restore_gfp_mask()` nor `thaw_processes()`
/// was.
#[must_use = "dropping the guard thaws the tasks at once"]
pub struct FrozenTasks<'a>(Step<'a>);

impl<'a> FrozenTasks<'a> {
    /// Freezes all tasks and restricts the GFP mask. Fails with `EBUSY` if
    /// a task refuses to freeze; the freezer has then thawed the tasks it
    /// froze.
    pub fn freeze(_console: &'a mut PreparedConsole<'_>) -> Result<Self> {
        // SAFETY: called from process context by the task running the
        // transition, which the freezer skips.
        to_result(unsafe { bindings::freeze_processes() }).map_err(|_| EBUSY)?;
        // SAFETY: `system_transition_mutex` is held (the borrowed chain
        // starts with `SystemTransitionLocked`).
        unsafe { bindings::pm_restrict_gfp_mask() };
        // INVARIANT: the tasks were just frozen, the mask restricted.
        Ok(Self(PhantomData))
    }
}

impl Drop for FrozenTasks<'_> {
    fn drop(&mut self) {
        // SAFETY: restricted and frozen, by the type invariant; the mutex
        // is still held.
        unsafe { bindings::pm_restore_gfp_mask() };
        // SAFETY: frozen, by the type invariant.
        unsafe { bindings::thaw_processes() };
    }
}

/// Console output is held back while devices are down.
///
/// # Invariants
///
/// `suspend_console()` was called and `resume_console()` was not.
#[must_use = "dropping the guard resumes the console at once"]
pub struct SuspendedConsole<'a>(Step<'a>);

impl<'a> SuspendedConsole<'a> {
    /// Suspends the consoles; they resume on drop.
    pub fn suspend(_tasks: &'a mut FrozenTasks<'_>) -> Self {
        // SAFETY: no preconditions; it cannot fail.
        unsafe { bindings::suspend_console() };
        // INVARIANT: the consoles were just suspended.
        Self(PhantomData)
    }
}

impl Drop for SuspendedConsole<'_> {
    fn drop(&mut self) {
        // SAFETY: suspended, by the type invariant.
        unsafe { bindings::resume_console() };
    }
}

/// Devices went through their `prepare` and `freeze` (or `suspend`)
/// callbacks: `dpm_suspend_start()`.
///
/// # Invariants
///
/// `dpm_suspend_start(suspend)` succeeded and `dpm_resume_end()` was not
/// called.
#[must_use = "dropping the guard resumes the devices at once"]
pub struct SuspendedDevices<'a> {
    suspend: Message,
    resume: Message,
    _console: Step<'a>,
}

impl<'a> SuspendedDevices<'a> {
    /// Runs `dpm_suspend_start(suspend)`; the drop runs
    /// `dpm_resume_end(resume)`.
    ///
    /// On failure some devices may be prepared or frozen:
    /// `dpm_suspend_start()` leaves them to its caller, so they are
    /// resumed here with [`Message::RECOVER`] before the error is returned.
    pub fn start(
        _console: &'a mut SuspendedConsole<'_>,
        suspend: Message,
        resume: Message,
    ) -> Result<Self> {
        // SAFETY: process context, tasks frozen (the borrowed chain).
        let ret = unsafe { bindings::dpm_suspend_start(suspend.to_raw()) };
        if let Err(e) = to_result(ret) {
            // SAFETY: `dpm_suspend_start()` ran; `dpm_resume_end()`
            // resumes and completes exactly the devices it reached.
            unsafe { bindings::dpm_resume_end(Message::RECOVER.to_raw()) };
            return Err(e);
        }
        // INVARIANT: `dpm_suspend_start()` just succeeded.
        Ok(Self {
            suspend,
            resume,
            _console: PhantomData,
        })
    }
}

impl Drop for SuspendedDevices<'_> {
    fn drop(&mut self) {
        // SAFETY: suspended, by the type invariant.
        unsafe { bindings::dpm_resume_end(self.resume.to_raw()) };
    }
}

/// Devices went through their `late` and `noirq` callbacks as well:
/// `dpm_suspend_end()`.
///
/// # Invariants
///
/// `dpm_suspend_end()` succeeded and `dpm_resume_start()` was not called.
#[must_use = "dropping the guard resumes the devices at once"]
pub struct SuspendedDevicesLate<'a> {
    resume: Message,
    _devices: Step<'a>,
}

impl<'a> SuspendedDevicesLate<'a> {
    /// Runs `dpm_suspend_end()` with the messages `devices` was started
    /// with; the drop runs `dpm_resume_start()`. On failure
    /// `dpm_suspend_end()` has already recovered the devices it reached.
    pub fn end(devices: &'a mut SuspendedDevices<'_>) -> Result<Self> {
        // SAFETY: `devices` proves that `dpm_suspend_start()` succeeded.
        to_result(unsafe { bindings::dpm_suspend_end(devices.suspend.to_raw()) })?;
        // INVARIANT: `dpm_suspend_end()` just succeeded.
        Ok(Self {
            resume: devices.resume,
            _devices: PhantomData,
        })
    }
}

impl Drop for SuspendedDevicesLate<'_> {
    fn drop(&mut self) {
        // SAFETY: suspended late, by the type invariant.
        unsafe { bindings::dpm_resume_start(self.resume.to_raw()) };
    }
}

/// All CPUs but this one are offline (`suspend_disable_secondary_cpus()`).
///
/// # Invariants
///
/// `suspend_disable_secondary_cpus()` succeeded and
/// `suspend_enable_secondary_cpus()` was not called.
#[must_use = "dropping the guard brings the CPUs back at once"]
pub struct SecondaryCpusOffline<'a>(Step<'a>);

impl<'a> SecondaryCpusOffline<'a> {
    /// Takes the secondary CPUs offline; they come back on drop. On
    /// failure the CPUs already taken down are brought back first.
    pub fn disable(_devices: &'a mut SuspendedDevicesLate<'_>) -> Result<Self> {
        // SAFETY: process context, devices suspended (the borrowed chain).
        let ret = unsafe { bindings::suspend_disable_secondary_cpus() };
        if let Err(e) = to_result(ret) {
            // SAFETY: on failure the CPUs taken down so far stay down and
            // CPU hotplug stays disabled until the caller thaws them.
            unsafe { bindings::suspend_enable_secondary_cpus() };
            return Err(e);
        }
        // INVARIANT: the secondary CPUs were just taken offline.
        Ok(Self(PhantomData))
    }
}

impl Drop for SecondaryCpusOffline<'_> {
    fn drop(&mut self) {
        // SAFETY: offline, by the type invariant.
        unsafe { bindings::suspend_enable_secondary_cpus() };
    }
}

/// System core operations (timekeeping, interrupt controllers) are
/// suspended: `syscore_suspend()`. The last step before a transition.
///
/// As in suspend and hibernation, `system_state` is `SYSTEM_SUSPEND` while
/// the step lasts: syscore callbacks may take sleeping locks with
/// interrupts off, and the atomic-sleep checks must not report them.
///
/// # Invariants
///
/// `syscore_suspend()` succeeded and `syscore_resume()` was not called;
/// local interrupts stay disabled and this CPU is the only one online for
/// `'a`.
#[must_use = "dropping the guard resumes the system core at once"]
pub struct SuspendedSyscore<'a>(PhantomData<(Step<'a>, &'a LocalInterruptDisabled)>);

/// Sets `system_state`.
///
/// # Safety
///
/// Only one CPU is online and local interrupts are disabled, so nothing
/// reads or writes `system_state` concurrently.
unsafe fn set_system_state(state: bindings::system_states) {
    // SAFETY: no concurrent access, by the caller's guarantee.
    unsafe { bindings::system_state = state };
}

impl<'a> SuspendedSyscore<'a> {
    /// Runs `syscore_suspend()`, which resumes what it reached on failure.
    pub fn suspend(
        _cpus: &'a mut SecondaryCpusOffline<'_>,
        _irqs: &'a LocalInterruptDisabled,
    ) -> Result<Self> {
        // SAFETY: one CPU online (`_cpus`), interrupts off (`_irqs`).
        unsafe { set_system_state(bindings::system_states_SYSTEM_SUSPEND) };
        // SAFETY: one CPU online and interrupts off, as `syscore_suspend()`
        // requires.
        if let Err(e) = to_result(unsafe { bindings::syscore_suspend() }) {
            // SAFETY: as above.
            unsafe { set_system_state(bindings::system_states_SYSTEM_RUNNING) };
            return Err(e);
        }
        // INVARIANT: just suspended; the borrows hold the rest for `'a`.
        Ok(Self(PhantomData))
    }
}

impl Drop for SuspendedSyscore<'_> {
    fn drop(&mut self) {
        // SAFETY: suspended, by the type invariant, with interrupts still
        // off and one CPU online.
        unsafe { bindings::syscore_resume() };
        // SAFETY: interrupts off and one CPU online, by the type invariant.
        unsafe { set_system_state(bindings::system_states_SYSTEM_RUNNING) };
    }
}
