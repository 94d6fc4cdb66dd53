// SPDX-License-Identifier: GPL-2.0

//! kexec jump: quiesce the machine, jump into a preserve-context kexec
//! image, and resume exactly where we were when it jumps back.
//!
//! `kernel_kexec()` calls [`kexec_jump`] for an image loaded with
//! `KEXEC_PRESERVE_CONTEXT`. The whole sequence is [`jump`]: one guard per
//! step, so the steps are left in the reverse order they were entered, on
//! the way back from the image and on every error path alike.

use core::ptr::NonNull;
use kernel::{
    bindings,
    error::from_result,
    kexec::Image,
    power::{
        FrozenTasks, IrqsDisabled, Message, PreparedConsole, SavedProcessorState,
        SecondaryCpusOffline, SuspendedConsole, SuspendedDevices, SuspendedDevicesLate,
        SuspendedSyscore,
    },
    prelude::*,
};

const __LOG_PREFIX: &[u8] = b"kexec_jump\0";

/// Quiesces the machine, jumps into `image` and brings everything back.
fn jump(image: &mut Image<'_>) -> Result {
    let _console = PreparedConsole::prepare();
    let _tasks = FrozenTasks::freeze()?;
    let _console_output = SuspendedConsole::suspend();
    let devices = SuspendedDevices::start(Message::FREEZE, Message::RESTORE)?;
    let _devices_late = SuspendedDevicesLate::end(&devices, Message::FREEZE, Message::RESTORE)?;
    let _cpus = SecondaryCpusOffline::disable()?;
    let irqs = IrqsDisabled::disable();
    let _syscore = SuspendedSyscore::suspend(&irqs)?;
    let _cpu_state = SavedProcessorState::save(&irqs);
    #[cfg(CONFIG_CRASH_DUMP)]
    kernel::kexec::save_crash_notes(&irqs);

    image.jump(&irqs)
}

/// Runs a kexec jump into `image`; `kernel_kexec()`'s preserve-context path.
///
/// Returns 0 once the image has jumped back and the system is resumed, or
/// a negative errno if a step failed (everything entered has been left).
///
/// # Safety
///
/// `image` must point to the loaded kexec image, and the caller must hold
/// the kexec lock until this returns.
#[no_mangle]
pub unsafe extern "C" fn kexec_jump(image: *mut bindings::kimage) -> core::ffi::c_int {
    from_result(|| {
        let image = NonNull::new(image).ok_or(EINVAL)?;
        // SAFETY: the caller passes the loaded image and holds the lock.
        let mut image = unsafe { Image::from_raw(image) };
        jump(&mut image)?;
        pr_info!("resumed; next jump enters at {:#x}\n", image.start());
        Ok(0)
    })
}
