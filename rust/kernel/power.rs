// SPDX-License-Identifier: GPL-2.0

//! System sleep: the steps that quiesce the machine before a transition
//! (hibernation image, kexec jump) and bring it back afterwards.
//!
//! C headers: [`include/linux/suspend.h`](srctree/include/linux/suspend.h),
//! [`include/linux/pm.h`](srctree/include/linux/pm.h),
//! [`include/linux/freezer.h`](srctree/include/linux/freezer.h),
//! [`include/linux/syscore_ops.h`](srctree/include/linux/syscore_ops.h).
//!
//! Each step is a guard: creating it enters the step and dropping it leaves
//! the step again. A constructor that fails leaves nothing behind, so a
//! sequence of guards built with `?` unwinds exactly the steps that were
//! entered, in reverse order, on every path.

use crate::{bindings, error::to_result, prelude::*};
use core::marker::PhantomData;

/// A power-management transition message (`pm_message_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message(i32);

impl Message {
    /// Quiesce devices for a snapshot of the system (`PMSG_FREEZE`).
    pub const FREEZE: Message = Message(bindings::PM_EVENT_FREEZE as i32);
    /// Restore devices after a snapshot was taken or used (`PMSG_RESTORE`).
    pub const RESTORE: Message = Message(bindings::PM_EVENT_RESTORE as i32);

    fn to_raw(self) -> bindings::pm_message_t {
        bindings::pm_message_t { event: self.0 }
    }
}

/// Proof that local interrupts are disabled on this CPU.
///
/// Not `Send`: the proof is about the CPU that created it.
pub struct IrqsDisabled(PhantomData<*mut ()>);

impl IrqsDisabled {
    /// Disables local interrupts until the guard is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::power::IrqsDisabled;
    ///
    /// assert!(!IrqsDisabled::are_disabled());
    /// let irqs = IrqsDisabled::disable();
    /// assert!(IrqsDisabled::are_disabled());
    /// drop(irqs);
    /// assert!(!IrqsDisabled::are_disabled());
    /// ```
    pub fn disable() -> Self {
        // SAFETY: disabling interrupts on the local CPU has no preconditions.
        unsafe { bindings::local_irq_disable() };
        Self(PhantomData)
    }
}

impl IrqsDisabled {
    /// Whether local interrupts are disabled on this CPU right now.
    pub fn are_disabled() -> bool {
        // SAFETY: reads this CPU's interrupt flag; no preconditions.
        unsafe { bindings::irqs_disabled() }
    }
}

impl Drop for IrqsDisabled {
    fn drop(&mut self) {
        // SAFETY: interrupts were disabled by `disable`; nothing that relies on
        // them being off outlives this guard, since those borrow it.
        unsafe { bindings::local_irq_enable() };
    }
}

/// The console switched to the suspend console (`pm_prepare_console()`).
pub struct PreparedConsole(());

impl PreparedConsole {
    /// Switches the console; the switch is undone on drop.
    pub fn prepare() -> Self {
        // SAFETY: always callable from process context.
        unsafe { bindings::pm_prepare_console() };
        Self(())
    }
}

impl Drop for PreparedConsole {
    fn drop(&mut self) {
        // SAFETY: paired with `pm_prepare_console()` in `prepare`.
        unsafe { bindings::pm_restore_console() };
    }
}

/// User space and freezable kernel threads are frozen.
pub struct FrozenTasks(());

impl FrozenTasks {
    /// Freezes all tasks. On failure the freezer has already thawed them.
    pub fn freeze() -> Result<Self> {
        // SAFETY: called from process context, not from a freezable task
        // (the caller is the task running the transition).
        to_result(unsafe { bindings::freeze_processes() }).map_err(|_| EBUSY)?;
        Ok(Self(()))
    }
}

impl Drop for FrozenTasks {
    fn drop(&mut self) {
        // SAFETY: tasks were frozen by `freeze`.
        unsafe { bindings::thaw_processes() };
    }
}

/// Console output is held back while devices are down.
pub struct SuspendedConsole(());

impl SuspendedConsole {
    /// Suspends the consoles; they resume on drop.
    pub fn suspend() -> Self {
        // SAFETY: no preconditions.
        unsafe { bindings::suspend_console() };
        Self(())
    }
}

impl Drop for SuspendedConsole {
    fn drop(&mut self) {
        // SAFETY: paired with `suspend_console()` in `suspend`.
        unsafe { bindings::resume_console() };
    }
}

/// Devices went through their `prepare` and `suspend`/`freeze` callbacks
/// (`dpm_suspend_start()`).
pub struct SuspendedDevices {
    resume: Message,
}

impl SuspendedDevices {
    /// Runs `dpm_suspend_start(suspend)`; the drop resumes with `resume`.
    pub fn start(suspend: Message, resume: Message) -> Result<Self> {
        let this = Self { resume };
        // SAFETY: called from process context with tasks frozen.
        to_result(unsafe { bindings::dpm_suspend_start(suspend.to_raw()) })?;
        // A failure leaves some devices prepared or suspended: dropping
        // `this` on the `?` above runs `dpm_resume_end()` for them.
        Ok(this)
    }
}

impl Drop for SuspendedDevices {
    fn drop(&mut self) {
        // SAFETY: `dpm_suspend_start()` ran; `dpm_resume_end()` completes
        // and resumes every device it prepared or suspended.
        unsafe { bindings::dpm_resume_end(self.resume.to_raw()) };
    }
}

/// Devices went through their `late` and `noirq` callbacks
/// (`dpm_suspend_end()`).
pub struct SuspendedDevicesLate<'a> {
    resume: Message,
    _devices: PhantomData<&'a SuspendedDevices>,
}

impl<'a> SuspendedDevicesLate<'a> {
    /// Runs `dpm_suspend_end(suspend)`; the drop runs
    /// `dpm_resume_start(resume)`. On failure `dpm_suspend_end()` has
    /// already resumed the devices it reached.
    pub fn end(_devices: &'a SuspendedDevices, suspend: Message, resume: Message) -> Result<Self> {
        // SAFETY: `_devices` proves `dpm_suspend_start()` succeeded.
        to_result(unsafe { bindings::dpm_suspend_end(suspend.to_raw()) })?;
        Ok(Self {
            resume,
            _devices: PhantomData,
        })
    }
}

impl Drop for SuspendedDevicesLate<'_> {
    fn drop(&mut self) {
        // SAFETY: paired with a successful `dpm_suspend_end()`.
        unsafe { bindings::dpm_resume_start(self.resume.to_raw()) };
    }
}

/// All CPUs but the boot CPU are offline.
pub struct SecondaryCpusOffline(());

impl SecondaryCpusOffline {
    /// Takes the secondary CPUs offline; they come back on drop.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::power::SecondaryCpusOffline;
    ///
    /// let online = SecondaryCpusOffline::online();
    /// let cpus = SecondaryCpusOffline::disable()?;
    /// assert_eq!(SecondaryCpusOffline::online(), 1);
    /// drop(cpus);
    /// assert_eq!(SecondaryCpusOffline::online(), online);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn disable() -> Result<Self> {
        let this = Self(());
        // SAFETY: called from process context with devices suspended.
        to_result(unsafe { bindings::suspend_disable_secondary_cpus() })?;
        // On failure the CPUs already taken down come back when `this`
        // is dropped by the `?` above.
        Ok(this)
    }
}

impl SecondaryCpusOffline {
    /// The number of CPUs online right now.
    pub fn online() -> u32 {
        // SAFETY: reads the online mask's weight; no preconditions.
        unsafe { bindings::num_online_cpus() }
    }
}

impl Drop for SecondaryCpusOffline {
    fn drop(&mut self) {
        // SAFETY: brings back exactly the CPUs frozen by `disable`.
        unsafe { bindings::suspend_enable_secondary_cpus() };
    }
}

/// System core operations (timekeeping, interrupt controllers) are
/// suspended.
pub struct SuspendedSyscore<'a>(PhantomData<&'a IrqsDisabled>);

impl<'a> SuspendedSyscore<'a> {
    /// Runs `syscore_suspend()`; on failure it has resumed what it reached.
    pub fn suspend(_irqs: &'a IrqsDisabled) -> Result<Self> {
        // SAFETY: `_irqs` proves interrupts are off, with one CPU online.
        to_result(unsafe { bindings::syscore_suspend() })?;
        Ok(Self(PhantomData))
    }
}

impl Drop for SuspendedSyscore<'_> {
    fn drop(&mut self) {
        // SAFETY: paired with a successful `syscore_suspend()`, and
        // interrupts are still off (the borrow of `IrqsDisabled`).
        unsafe { bindings::syscore_resume() };
    }
}

/// The processor state (`save_processor_state()`) is saved and is restored
/// on drop.
pub struct SavedProcessorState<'a>(PhantomData<&'a IrqsDisabled>);

impl<'a> SavedProcessorState<'a> {
    /// Saves the state of the local CPU.
    pub fn save(_irqs: &'a IrqsDisabled) -> Self {
        // SAFETY: interrupts are off, so nothing changes the state between
        // the save and the restore but the transition itself.
        unsafe { bindings::save_processor_state() };
        Self(PhantomData)
    }
}

impl Drop for SavedProcessorState<'_> {
    fn drop(&mut self) {
        // SAFETY: paired with `save_processor_state()` on this CPU.
        unsafe { bindings::restore_processor_state() };
    }
}
