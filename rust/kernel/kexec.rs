// SPDX-License-Identifier: GPL-2.0

//! Loaded kexec images.
//!
//! C header: [`include/linux/kexec.h`](srctree/include/linux/kexec.h).

use crate::{bindings, power::IrqsDisabled, prelude::*};
use core::{marker::PhantomData, ptr::NonNull};

/// The loaded kexec image, borrowed under the kexec lock.
///
/// # Invariants
///
/// `ptr` points to a valid `struct kimage` and the kexec lock is held for
/// `'a`, so the image is neither unloaded nor replaced, and no other task
/// starts it.
pub struct Image<'a> {
    ptr: NonNull<bindings::kimage>,
    _lock: PhantomData<&'a mut bindings::kimage>,
}

impl<'a> Image<'a> {
    /// Borrows the image at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct kimage`, and the caller must hold
    /// the kexec lock (`kexec_trylock()`) for `'a`.
    pub unsafe fn from_raw(ptr: NonNull<bindings::kimage>) -> Self {
        // INVARIANT: the caller's duties are the invariants.
        Self {
            ptr,
            _lock: PhantomData,
        }
    }

    /// Whether the image was loaded with `KEXEC_PRESERVE_CONTEXT`, i.e.
    /// starting it is a jump that may return.
    pub fn preserve_context(&self) -> bool {
        // SAFETY: the image is valid and the lock keeps it stable.
        unsafe { self.ptr.as_ref().preserve_context() != 0 }
    }

    /// The physical address the next start jumps to: the entry, or after a
    /// jump came back, the image's re-entry point.
    pub fn start(&self) -> usize {
        // SAFETY: as in `preserve_context`.
        unsafe { self.ptr.as_ref().start }
    }

    /// Jumps into a preserve-context image and returns when it jumps back.
    ///
    /// The caller must have quiesced the machine (devices, secondary CPUs,
    /// system core) and saved the processor state; `_irqs` proves that
    /// interrupts are off. Updates [`Image::start`] to the re-entry point.
    /// Fails with `EINVAL` for an image that does not preserve context:
    /// starting it would never return.
    pub fn jump(&mut self, _irqs: &IrqsDisabled) -> Result {
        if !self.preserve_context() {
            return Err(EINVAL);
        }
        // SAFETY: the image is valid, we hold the lock (`&mut self`), it
        // preserves context so `machine_kexec()` returns, and the caller
        // met the quiesce requirements above.
        unsafe { bindings::machine_kexec(self.ptr.as_ptr()) };
        Ok(())
    }
}

/// Records this CPU's registers in its crash note and refreshes the
/// vmcoreinfo note, as a crash would: the ELF core header that kexec-tools
/// gives a jumped-to kernel points at these notes, and without them its
/// /proc/vmcore does not come up.
///
/// `_irqs` proves interrupts are off, so the notes are this CPU's.
#[cfg(CONFIG_CRASH_DUMP)]
pub fn save_crash_notes(_irqs: &IrqsDisabled) {
    // SAFETY: `pt_regs` is plain integers, for which all-zero is valid.
    let mut regs: bindings::pt_regs = unsafe { core::mem::zeroed() };
    // SAFETY: `regs` is a valid `pt_regs` to fill; no saved registers are
    // passed, so the current ones are recorded.
    unsafe { bindings::crash_setup_regs(&mut regs, core::ptr::null_mut()) };
    // SAFETY: interrupts are off, so the CPU id stays ours while the note
    // is written; `regs` is valid for the call.
    unsafe { bindings::crash_save_cpu(&mut regs, bindings::raw_smp_processor_id()) };
    // SAFETY: no preconditions; it only rewrites the vmcoreinfo note.
    unsafe { bindings::crash_save_vmcoreinfo() };
}
