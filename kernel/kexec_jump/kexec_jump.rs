// SPDX-License-Identifier: GPL-2.0

//! kexec jump: quiesce the machine, jump into a preserve-context kexec
//! image, and resume exactly where we were when it jumps back.
//!
//! `kernel_kexec()` calls [`kexec_jump`], which takes the kexec lock and,
//! for an image loaded with `KEXEC_PRESERVE_CONTEXT`, runs the whole
//! sequence, [`jump`]: one guard per step, so the steps are left in the
//! reverse order they were entered, on the way back from the image and on
//! every error path alike.

use kernel::{
    error::from_result,
    kexec::{Image, Lock},
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

/// `kernel_kexec()`, the one door from C: starts the loaded image.
///
/// Takes the kexec lock (`EBUSY` while another task loads, unloads or
/// starts an image) and fails with `EINVAL` if nothing is loaded. An image
/// loaded with `KEXEC_PRESERVE_CONTEXT` is jumped into: returns 0 once it
/// has jumped back and the system is resumed, or a negative errno if a
/// step failed (every step entered has been left). Any other image is
/// booted for good by the C reboot path.
#[no_mangle]
pub extern "C" fn kexec_jump() -> core::ffi::c_int {
    from_result(|| {
        let mut lock = Lock::try_lock()?;
        let mut image = lock.image().ok_or(EINVAL)?;
        if !image.preserve_context() {
            image.reboot();
            return Ok(0);
        }
        jump(&mut image)?;
        pr_info!("resumed; next jump enters at {:#x}\n", image.start());
        Ok(0)
    })
}
