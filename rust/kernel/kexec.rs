// SPDX-License-Identifier: GPL-2.0

//! kexec images that preserve context: jumping into them and back.
//!
//! C header: [`include/linux/kexec.h`](srctree/include/linux/kexec.h).
//!
//! The kexec lock and the choice between a jump and a reboot stay in C
//! (`kernel_kexec()`); this module only sees an image it was handed under
//! that lock.

use crate::{bindings, prelude::*};
use core::{marker::PhantomData, ptr::NonNull};

/// The loaded image, loaded with `KEXEC_PRESERVE_CONTEXT`: starting it is a
/// jump that returns when the image jumps back.
///
/// # Invariants
///
/// `ptr` is `kexec_image`, a valid `struct kimage` with `preserve_context`
/// set, and the kexec lock is held for `'a`: nobody unloads, replaces or
/// starts it meanwhile.
pub struct PreserveContextImage<'a> {
    ptr: NonNull<bindings::kimage>,
    _lock: PhantomData<&'a mut bindings::kimage>,
}

impl<'a> PreserveContextImage<'a> {
    /// Borrows the loaded image. Fails with `EINVAL` if `ptr` is null or
    /// the image was not loaded with `KEXEC_PRESERVE_CONTEXT`.
    ///
    /// # Safety
    ///
    /// `ptr` is null or `kexec_image`, and the caller holds the kexec lock
    /// for `'a`.
    pub unsafe fn from_raw(ptr: *mut bindings::kimage) -> Result<Self> {
        let ptr = NonNull::new(ptr).ok_or(EINVAL)?;
        // SAFETY: `ptr` is the loaded image, kept valid by the lock.
        if unsafe { ptr.as_ref().preserve_context() } == 0 {
            return Err(EINVAL);
        }
        // INVARIANT: checked above; the caller holds the lock for `'a`.
        Ok(Self {
            ptr,
            _lock: PhantomData,
        })
    }

    /// The physical address the next jump enters at: the entry, or, once
    /// the image has jumped back, the re-entry point it left.
    pub fn start(&self) -> usize {
        // SAFETY: valid and stable, by the type invariant.
        unsafe { self.ptr.as_ref().start }
    }

    /// Jumps into the image and returns when it jumps back; [`Self::start`]
    /// is then the image's re-entry point. `machine_kexec()` saves and
    /// restores the processor state itself.
    ///
    /// # Safety
    ///
    /// The machine is quiesced for the jump: devices are suspended (their
    /// `noirq` callbacks included), every other CPU is offline, local
    /// interrupts are off and the system core is suspended.
    pub unsafe fn jump(&mut self) {
        // SAFETY: the image is valid and preserves context, so
        // `machine_kexec()` returns; we hold the lock (`&mut self`), and
        // the caller guarantees the quiesced machine it needs.
        unsafe { bindings::machine_kexec(self.ptr.as_ptr()) };
    }
}
