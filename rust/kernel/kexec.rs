// SPDX-License-Identifier: GPL-2.0

//! Loaded kexec images.
//!
//! C header: [`include/linux/kexec.h`](srctree/include/linux/kexec.h).

use crate::{bindings, power::IrqsDisabled, prelude::*};
use core::{marker::PhantomData, ptr::NonNull};

/// The kexec lock (`kexec_trylock()`): whoever holds it may load, unload
/// or start an image, and nobody else may.
///
/// # Invariants
///
/// The kexec lock is held from the creation of a `Lock` until its drop.
pub struct Lock(());

impl Lock {
    /// Takes the kexec lock, or fails with `EBUSY` while another task
    /// loads, unloads or starts an image.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::kexec::Lock;
    ///
    /// let mut lock = Lock::try_lock()?;
    /// // Another `kexec -e` or `kexec -l` meanwhile is turned away.
    /// assert_eq!(Lock::try_lock().err(), Some(EBUSY));
    /// // Nothing is loaded while the tests run at boot: `kexec -e` now
    /// // would fail with `EINVAL`.
    /// assert!(lock.image().is_none());
    /// drop(lock);
    /// let _lock = Lock::try_lock()?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_lock() -> Result<Self> {
        // SAFETY: an atomic compare-and-exchange; no preconditions.
        if unsafe { bindings::kexec_trylock() } {
            // INVARIANT: the lock was just taken.
            Ok(Self(()))
        } else {
            Err(EBUSY)
        }
    }

    /// The image `kexec -e` starts (`kexec_image`), if one is loaded.
    pub fn image(&mut self) -> Option<Image<'_>> {
        // SAFETY: loads and unloads take the lock, which we hold, so the
        // pointer is stable; reading it copies it.
        let ptr = NonNull::new(unsafe { bindings::kexec_image })?;
        // INVARIANT: `ptr` is the loaded image and `self` holds the lock
        // for the borrow.
        Some(Image {
            ptr,
            _lock: PhantomData,
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: the lock is held by the type invariant.
        unsafe { bindings::kexec_unlock() };
    }
}

/// The loaded kexec image, borrowed under the kexec lock.
///
/// # Invariants
///
/// `ptr` is `kexec_image`, a valid `struct kimage`, and the kexec lock is
/// held for `'a`, so the image is neither unloaded nor replaced, and no
/// other task starts it.
pub struct Image<'a> {
    ptr: NonNull<bindings::kimage>,
    _lock: PhantomData<&'a mut Lock>,
}

impl<'a> Image<'a> {
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

    /// Boots the image for good, as a kexec reboot: shuts the system down
    /// and starts it. Does not return for an image that does not preserve
    /// context.
    pub fn reboot(&mut self) {
        // SAFETY: the image is `kexec_image` and the lock is held.
        unsafe { bindings::kexec_reboot_locked() };
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
