// SPDX-License-Identifier: GPL-2.0

//! Local interrupt control.
//!
//! C header: [`include/linux/irqflags.h`](srctree/include/linux/irqflags.h).
//!
//! Interrupts are disabled by saving the interrupt state and restored by
//! putting that state back (`local_irq_save()`/`local_irq_restore()`), never
//! by a bare disable/enable pair: a section nested in another one, or one
//! entered with interrupts already off, leaves them as it found them.

use crate::bindings;
use core::marker::PhantomData;

/// Proof that local interrupts are disabled on this CPU.
///
/// Only [`with_local_irqs_disabled`] makes one, and it only lends it
/// out: a token cannot be moved, forgotten or outlive the section that
/// restores the saved state, so sections can only nest, and the innermost
/// one is always left first.
///
/// # Invariants
///
/// Local interrupts are disabled on the CPU running the code that holds a
/// reference to this token, for as long as the reference lives.
pub struct LocalIrqsDisabled {
    /// Not `Send` or `Sync`: the proof is about the CPU that made it.
    _not_send: PhantomData<*mut ()>,
}

/// Runs `f` with local interrupts disabled and restores the previous
/// interrupt state afterwards.
///
/// `f` must not enable interrupts itself; code that may (anything that
/// sleeps) cannot be called with interrupts off anyway.
///
/// # Examples
///
/// ```
/// use kernel::irqflags::{irqs_disabled, with_local_irqs_disabled};
///
/// assert!(!irqs_disabled());
/// with_local_irqs_disabled(|_outer| {
///     assert!(irqs_disabled());
///     // A nested section leaves interrupts off for the outer one.
///     with_local_irqs_disabled(|_inner| assert!(irqs_disabled()));
///     assert!(irqs_disabled());
/// });
/// assert!(!irqs_disabled());
/// ```
pub fn with_local_irqs_disabled<T>(f: impl FnOnce(&LocalIrqsDisabled) -> T) -> T {
    // SAFETY: saving the state and disabling interrupts on the local CPU
    // has no preconditions.
    let flags = unsafe { bindings::local_irq_save() };
    // INVARIANT: interrupts are off from here until the restore below,
    // which runs after `f` and with it every borrow of `token`.
    let token = LocalIrqsDisabled {
        _not_send: PhantomData,
    };
    let ret = f(&token);
    // SAFETY: `flags` came from `local_irq_save()` on this CPU (the token
    // is not `Send`, and interrupts stayed off, so we did not migrate).
    unsafe { bindings::local_irq_restore(flags) };
    ret
}

/// Whether local interrupts are disabled on this CPU right now.
pub fn irqs_disabled() -> bool {
    // SAFETY: reads this CPU's interrupt flag; no preconditions.
    unsafe { bindings::irqs_disabled() }
}
