// SPDX-License-Identifier: GPL-2.0

//! The steps that quiesce the machine before a jump and bring it back
//! afterwards. They are kexec jump's own, as hibernation keeps its sequence
//! static in `kernel/power/hibernate.c`: no other code may freeze the
//! system.
//!
//! C headers: [`include/linux/suspend.h`](srctree/include/linux/suspend.h),
//! [`include/linux/pm.h`](srctree/include/linux/pm.h),
//! [`include/linux/freezer.h`](srctree/include/linux/freezer.h),
//! [`include/linux/syscore_ops.h`](srctree/include/linux/syscore_ops.h),
//! [`include/linux/kexec.h`](srctree/include/linux/kexec.h).
//!
//! [`with_quiesced`] is the only way in: it enters every step in order,
//! lends its closure a proof that all of them are entered, and leaves
//! them in reverse order, after the closure and on every error path alike.
//! Each step is a guard whose constructor takes the step before it by
//! exclusive borrow:
//!
//! [`SystemTransitionLocked`] -> [`PreparedConsole`] -> [`FrozenTasks`] ->
//! [`SuspendedConsole`] -> [`SuspendedDevices`] -> [`SuspendedDevicesLate`]
//! -> [`QuietPlatform`] -> [`SecondaryCpusOffline`] -> (interrupts off) ->
//! [`SuspendedSyscore`].
//!
//! so steps can only be entered in this order, none skipped or entered
//! twice, and each is left before the one it borrows. The guards never
//! leave this module: the closure gets a shared reference to the last one,
//! which it can neither keep, forget (the PM core would stay unbalanced)
//! nor hand to another task (no guard is `Send` or `Sync`: the freezer and
//! CPU hotplug belong to the task that entered the step).
//!
//! A guard exists only once its C call succeeded. A constructor that fails
//! first undoes whatever its own step did partway, with `PMSG_RECOVER` as
//! the PM core does inside `dpm_suspend_end()`; a step that was fully
//! entered is left with the resume message of its [`Messages`].

use core::marker::PhantomData;
use kernel::{
    bindings,
    error::to_result,
    irqflags::{with_local_irqs_disabled, LocalIrqsDisabled},
    prelude::*,
};

/// What each guard holds beside its borrow: the `*mut ()` makes the guards
/// neither `Send` nor `Sync`, so no step is left by another task.
type Step<'a> = PhantomData<(&'a mut (), *mut ())>;

/// A power-management transition message (`pm_message_t`).
#[derive(Clone, Copy)]
struct Message(i32);

impl Message {
    const FREEZE: Message = Message(bindings::PM_EVENT_FREEZE as i32);
    const RESTORE: Message = Message(bindings::PM_EVENT_RESTORE as i32);
    const RECOVER: Message = Message(bindings::PM_EVENT_RECOVER as i32);

    fn to_raw(self) -> bindings::pm_message_t {
        bindings::pm_message_t { event: self.0 }
    }
}

/// How devices are quiesced, and how they come back once the transition
/// happened. Only the pairs below exist: a device cannot be frozen for one
/// transition and resumed as after another.
#[derive(Clone, Copy)]
pub(crate) struct Messages {
    suspend: Message,
    resume: Message,
}

impl Messages {
    /// A jump: devices are frozen as for a snapshot (`PMSG_FREEZE`) and
    /// restored afterwards (`PMSG_RESTORE`), since the image may have
    /// driven or reset them meanwhile; a later step's failure restores
    /// them too, as the C sequence does.
    pub(crate) const JUMP: Messages = Messages {
        suspend: Message::FREEZE,
        resume: Message::RESTORE,
    };
}

/// No other system transition (suspend, hibernation, another kexec jump)
/// can run: the current task holds `system_transition_mutex`, as `reboot()`
/// does around `kernel_kexec()`. The first link of the chain.
///
/// # Invariants
///
/// The current task, in process context, holds `system_transition_mutex`
/// for `'a`.
pub(crate) struct SystemTransitionLocked<'a>(Step<'a>);

impl SystemTransitionLocked<'_> {
    /// Stands for the `system_transition_mutex` the current task holds.
    ///
    /// # Safety
    ///
    /// The current task, in process context, holds
    /// `system_transition_mutex` and keeps holding it while the returned
    /// value lives.
    pub(crate) unsafe fn assume_held() -> Self {
        // INVARIANT: by the caller's guarantee.
        Self(PhantomData)
    }
}

/// Enters every step, runs `transition` with the machine quiesced, and
/// leaves every step again.
///
/// `transition` runs on the only online CPU with local interrupts off: it
/// must not sleep.
///
/// Fails with the first step's error, `EBUSY` if a task refuses to freeze;
/// every step entered has then been left, and `transition` did not run.
pub(crate) fn with_quiesced<T>(
    locked: &mut SystemTransitionLocked<'_>,
    messages: Messages,
    transition: impl FnOnce(&SuspendedSyscore<'_>) -> T,
) -> Result<T> {
    let mut console = PreparedConsole::prepare(locked);
    let mut tasks = FrozenTasks::freeze(&mut console)?;
    let mut output = SuspendedConsole::suspend(&mut tasks);
    let mut devices = SuspendedDevices::start(&mut output, messages)?;
    let mut late = SuspendedDevicesLate::end(&mut devices)?;
    let mut platform = QuietPlatform::quiesce(&mut late);
    let mut cpus = SecondaryCpusOffline::disable(&mut platform)?;
    with_local_irqs_disabled(|irqs| {
        let syscore = SuspendedSyscore::suspend(&mut cpus, irqs)?;
        Ok(transition(&syscore))
    })
}

/// The console is switched to the suspend console (`pm_prepare_console()`).
///
/// # Invariants
///
/// `pm_prepare_console()` was called and `pm_restore_console()` was not.
struct PreparedConsole<'a>(Step<'a>);

impl<'a> PreparedConsole<'a> {
    /// Switches the console; the switch is undone on drop.
    fn prepare(_locked: &'a mut SystemTransitionLocked<'_>) -> Self {
        // SAFETY: process context (`_locked`); it cannot fail.
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
struct FrozenTasks<'a>(Step<'a>);

impl<'a> FrozenTasks<'a> {
    /// Freezes all tasks and restricts the GFP mask. Fails with `EBUSY` if
    /// a task refuses to freeze; the freezer has then thawed the tasks it
    /// froze.
    fn freeze(_console: &'a mut PreparedConsole<'_>) -> Result<Self> {
        // SAFETY: process context, by the task running the transition,
        // which the freezer skips.
        to_result(unsafe { bindings::freeze_processes() }).map_err(|_| EBUSY)?;
        // SAFETY: `system_transition_mutex` is held (the chain starts with
        // `SystemTransitionLocked`).
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
struct SuspendedConsole<'a>(Step<'a>);

impl<'a> SuspendedConsole<'a> {
    /// Suspends the consoles; they resume on drop.
    fn suspend(_tasks: &'a mut FrozenTasks<'_>) -> Self {
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
/// `dpm_suspend_start(messages.suspend)` succeeded and `dpm_resume_end()`
/// was not called.
struct SuspendedDevices<'a> {
    messages: Messages,
    _console: Step<'a>,
}

impl<'a> SuspendedDevices<'a> {
    /// Runs `dpm_suspend_start()`; the drop runs `dpm_resume_end()`.
    ///
    /// On failure some devices may be prepared or frozen:
    /// `dpm_suspend_start()` leaves them to its caller, so they are
    /// resumed here with `PMSG_RECOVER` before the error is returned.
    fn start(_console: &'a mut SuspendedConsole<'_>, messages: Messages) -> Result<Self> {
        // SAFETY: process context, tasks frozen (the borrowed chain).
        let ret = unsafe { bindings::dpm_suspend_start(messages.suspend.to_raw()) };
        if let Err(e) = to_result(ret) {
            // SAFETY: `dpm_suspend_start()` ran; `dpm_resume_end()`
            // resumes and completes exactly the devices it reached.
            unsafe { bindings::dpm_resume_end(Message::RECOVER.to_raw()) };
            return Err(e);
        }
        // INVARIANT: `dpm_suspend_start()` just succeeded.
        Ok(Self {
            messages,
            _console: PhantomData,
        })
    }
}

impl Drop for SuspendedDevices<'_> {
    fn drop(&mut self) {
        // SAFETY: suspended, by the type invariant.
        unsafe { bindings::dpm_resume_end(self.messages.resume.to_raw()) };
    }
}

/// Devices went through their `late` and `noirq` callbacks as well:
/// `dpm_suspend_end()`.
///
/// # Invariants
///
/// `dpm_suspend_end()` succeeded and `dpm_resume_start()` was not called.
struct SuspendedDevicesLate<'a> {
    resume: Message,
    _devices: Step<'a>,
}

impl<'a> SuspendedDevicesLate<'a> {
    /// Runs `dpm_suspend_end()` with the messages `devices` was started
    /// with; the drop runs `dpm_resume_start()`. On failure
    /// `dpm_suspend_end()` has already recovered the devices it reached.
    fn end(devices: &'a mut SuspendedDevices<'_>) -> Result<Self> {
        let messages = devices.messages;
        // SAFETY: `devices` proves that `dpm_suspend_start()` succeeded.
        to_result(unsafe { bindings::dpm_suspend_end(messages.suspend.to_raw()) })?;
        // INVARIANT: `dpm_suspend_end()` just succeeded.
        Ok(Self {
            resume: messages.resume,
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

/// No ACPI event handler of this kernel runs and no device masters the
/// bus: `kexec_jump_quiesce_platform()`, where hibernation runs
/// `platform_pre_snapshot()`.
///
/// # Invariants
///
/// `kexec_jump_quiesce_platform()` was called and
/// `kexec_jump_resume_platform()` was not.
struct QuietPlatform<'a>(Step<'a>);

impl<'a> QuietPlatform<'a> {
    /// Stops ACPI events and bus mastering. The drop lets ACPI events run
    /// again; bus mastering comes back with each device's config space
    /// when the devices are restored.
    fn quiesce(_late: &'a mut SuspendedDevicesLate<'_>) -> Self {
        // SAFETY: process context, the devices' noirq callbacks done (the
        // borrowed chain).
        unsafe { bindings::kexec_jump_quiesce_platform() };
        // INVARIANT: just called.
        Self(PhantomData)
    }
}

impl Drop for QuietPlatform<'_> {
    fn drop(&mut self) {
        // SAFETY: quiesced, by the type invariant.
        unsafe { bindings::kexec_jump_resume_platform() };
    }
}

/// All CPUs but this one are offline.
///
/// # Invariants
///
/// `suspend_disable_secondary_cpus()` succeeded and
/// `suspend_enable_secondary_cpus()` was not called.
struct SecondaryCpusOffline<'a>(Step<'a>);

impl<'a> SecondaryCpusOffline<'a> {
    /// Takes the secondary CPUs offline; they come back on drop. On
    /// failure the CPUs already taken down are brought back first.
    fn disable(_platform: &'a mut QuietPlatform<'_>) -> Result<Self> {
        // SAFETY: process context, devices and platform quiesced (the
        // borrowed chain).
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
/// suspended: `syscore_suspend()`. The last step: a shared reference to
/// it proves that the machine is quiesced.
///
/// As in suspend and hibernation, `system_state` is `SYSTEM_SUSPEND` while
/// the step lasts: syscore callbacks may take sleeping locks with
/// interrupts off, and the atomic-sleep checks must not report them.
///
/// # Invariants
///
/// `syscore_suspend()` succeeded and `syscore_resume()` was not called;
/// local interrupts stay disabled and this CPU is the only one online for
/// `'a`, and every step before this one is entered.
pub(crate) struct SuspendedSyscore<'a>(PhantomData<(Step<'a>, &'a LocalIrqsDisabled)>);

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
    fn suspend(
        _cpus: &'a mut SecondaryCpusOffline<'_>,
        _irqs: &'a LocalIrqsDisabled,
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
