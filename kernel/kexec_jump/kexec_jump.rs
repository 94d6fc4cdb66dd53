// SPDX-License-Identifier: GPL-2.0

//! kexec jump: quiesce the machine, jump into a preserve-context kexec
//! image, and resume exactly where we were when it jumps back.
//!
//! `kernel_kexec()` takes the kexec lock and hands a preserve-context image
//! to [`kexec_jump_rust`]. [`quiesce::with_quiesced`] enters the steps
//! around the jump in order and leaves them in the reverse order, on the
//! way back from the image and on every error path alike.

mod quiesce;

use kernel::{bindings, error::from_result, kexec::PreserveContextImage, prelude::*};
use quiesce::{with_quiesced, Messages, SystemTransitionLocked};

const __LOG_PREFIX: &[u8] = b"kexec_jump\0";

/// Quiesces the machine, jumps into `image` and brings everything back.
fn jump(image: &mut PreserveContextImage<'_>, locked: &mut SystemTransitionLocked<'_>) -> Result {
    with_quiesced(locked, Messages::JUMP, |_quiesced| {
        // SAFETY: `_quiesced` proves that devices, the other CPUs, local
        // interrupts and the system core are down until this returns.
        unsafe { image.jump() }
    })
}

/// Jumps into a preserve-context image and resumes when it jumps back.
///
/// Returns 0 once the image has jumped back and the system is resumed, or
/// a negative errno if a step failed; every step entered has been left.
///
/// # Safety
///
/// `image` is `kexec_image`, loaded with `KEXEC_PRESERVE_CONTEXT`; the
/// caller holds the kexec lock and `system_transition_mutex` (`reboot()`
/// takes it) until this returns, and may sleep.
#[no_mangle]
pub unsafe extern "C" fn kexec_jump_rust(image: *mut bindings::kimage) -> core::ffi::c_int {
    from_result(|| {
        // SAFETY: the caller's duties are those of `from_raw`.
        let mut image = unsafe { PreserveContextImage::from_raw(image) }?;
        // SAFETY: this function's caller holds `system_transition_mutex`
        // until it returns (its `# Safety` section), and `locked` is
        // dropped before then, at the end of this closure.
        let mut locked = unsafe { SystemTransitionLocked::assume_held() };
        jump(&mut image, &mut locked)?;
        pr_debug!("resumed; next jump enters at {:#x}\n", image.start());
        Ok(0)
    })
}

// The prototype in include/linux/kexec_jump.h, as bindgen saw it, must be
// this function's: both branches must have the same type.
const _: () = {
    if true {
        bindings::kexec_jump_rust
    } else {
        kexec_jump_rust
    };
};
