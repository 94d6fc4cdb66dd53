// SPDX-License-Identifier: GPL-2.0

//! `kjtest demo`: one kjump round trip, and the console lines its
//! timeline shows.

use super::guest::SECS;
use super::kjump::{boot_kjump, Shape};
use super::verdict::Failure;
use crate::Ctx;

/// Console lines worth a place in the demo's timeline.
pub const TIMELINE: [&str; 9] = [
    "KJ: ",
    "Freezing user space",
    "Disabling non-boot CPUs",
    "Enabling non-boot CPUs",
    "Restarting tasks",
    "kexec_jump:",
    "Command line:",
    "Run /init",
    "reboot: Power down",
];

/// The demo: one kjump round trip on our kernel (A with crashkernel=
/// only, KASLR on); returns the console.
pub fn demo(ctx: &Ctx) -> Result<Vec<crate::qemu::Line>, Failure> {
    let mut g = boot_kjump(
        ctx,
        &Shape {
            cpus: 2,
            mem_mib: 1024,
            trips: 1,
            exec_cpu: 0,
            reload: 0,
            mark_above: 1 << 20,
            tag_mib: "0",
            dump: true,
        },
    )?;
    g.step("KJ: A done", 600)?;
    let _ = g.vm.wait_exit(SECS(30));
    Ok(g.vm().transcript().to_vec())
}
