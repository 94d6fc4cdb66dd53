// SPDX-License-Identifier: GPL-2.0

//! Jumps with Debian's kexec-tools: round trips, the recipes a user
//! types, and the demo.

use super::*;

/// A stock kexec-tools recipe: A's and B's command lines.
pub(crate) struct Recipe {
    /// A's boot parameters.
    a_args: &'static str,
    /// B's, passed to kexec --append.
    b_args: &'static str,
    /// Where B's kernel must end up, if the test checks it.
    b_kernel_in: Option<(u64, u64)>,
    /// Whether B searches its whole dump for A's marker (one trip only).
    scan_dump: bool,
}

/// The recipe upstream kernels need too. B runs in [256, 384) MiB, which
/// A reserved (crashkernel=), minus the last MiB that holds the ELF core
/// header, plus the 64 KiB below 1 MiB that A also reserved (memmap=$)
/// for B's SMP trampoline; A keeps its kernel out with nokaslr, B too.
const UPSTREAM_RECIPE: Recipe = Recipe {
    a_args: "nokaslr crashkernel=128M@256M memmap=64K$576K",
    b_args: "nokaslr memmap=exactmap memmap=64K@576K memmap=127M@256M memmap=1M$383M",
    b_kernel_in: None,
    scan_dump: true,
};

/// What a new user types: no low-memory reservation in A, so B's
/// real-mode trampoline lands on A's (B gets all of A's low RAM).
const NO_LOW_RESERVATION: Recipe = Recipe {
    a_args: "nokaslr crashkernel=128M@256M",
    b_args: "nokaslr memmap=exactmap memmap=640K@0 memmap=127M@256M memmap=1M$383M",
    b_kernel_in: None,
    scan_dump: false,
};

/// B with KASLR on: its decompressor must stay inside the exactmap ranges.
const B_KASLR: Recipe = Recipe {
    a_args: "nokaslr crashkernel=128M@256M memmap=64K$576K",
    b_args: "memmap=exactmap memmap=64K@576K memmap=127M@256M memmap=1M$383M",
    b_kernel_in: Some((0x1000_0000, 0x17f0_0000)),
    scan_dump: false,
};

const JUMP_CONF: &str = "B_MIN=0x10000000\nB_MAX=0x17ffffff\nMEM_MIB=32\n";

/// Boots A with the jump scenario and B's kernel and initramfs inside.
fn boot_jump(ctx: &Ctx, trips: u32, recipe: &Recipe) -> Result<Guest, Failure> {
    // Scanning all of B's dump is slow under TCG: once, for the recipe
    // the reference is compared on.
    let vmcore_check = u32::from(trips == 1 && recipe.scan_dump);
    let conf = format!(
        "{JUMP_CONF}TRIPS={trips}\nVMCORE_CHECK={vmcore_check}\nB_ARGS='{}'\n",
        recipe.b_args
    );
    let script = include_str!("../../../scenarios/jump.sh");
    let b = base_image(ctx)?
        .file("init", script.as_bytes(), 0o755)
        .file("etc/kj.conf", conf.as_bytes(), 0o644)
        .finish();
    let a = base_image(ctx)?
        .file("init", script.as_bytes(), 0o755)
        .file("etc/kj.conf", conf.as_bytes(), 0o644)
        .file("boot/initrd", &b, 0o644)
        .host_file(&ctx.kernel, "boot/bzImage", 0o644)
        .map_err(|e| Failure {
            reason: e,
            excerpt: vec![],
        })?;
    boot_with_disk(ctx, a.finish(), recipe.a_args, Some(ext2_disk(ctx)?))
}

/// Runs `trips` round trips A -> B -> A with Debian's kexec-tools and checks
/// A and B after each. Returns the known failure on the reference.
fn jump_trips(ctx: &Ctx, trips: u32) -> TestResult {
    jump_trips_with(ctx, trips, &UPSTREAM_RECIPE)
}

/// B's kernel ("Kernel code" in B's /proc/iomem) inside `range`.
fn check_b_kernel(g: &Guest, line: &str, range: (u64, u64)) -> Result<(), Failure> {
    let code = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("code="))
        .and_then(|v| {
            let (a, b) = v.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        });
    match code {
        Some((a, b)) if a >= range.0 && b < range.1 => {
            println!(
                "    B's kernel at {a:#x}-{b:#x}, inside {:#x}-{:#x}",
                range.0, range.1
            );
            Ok(())
        }
        _ => Err(g.fail(format!("B's kernel is not inside {range:x?}: {line}"))),
    }
}

fn jump_trips_with(ctx: &Ctx, trips: u32, recipe: &Recipe) -> TestResult {
    let mut g = boot_jump(ctx, trips, recipe)?;
    if ctx.name == "ref" {
        g.vm.tolerate(REF_EMPTY_NOTES);
    }
    let up = g.step("KJ: A up", 60)?;
    if !up.contains("cpus=0-1") {
        return Err(g.fail(format!("want 2 CPUs in A: {up}")));
    }
    g.step("KJ: A loaded", 300)?;
    let mut free_first = None;
    for i in 1..=trips {
        g.step(&format!("KJ: A jumping {i}"), 120)?;
        if i == 1 {
            let up = g.step("KJ: B up", 120)?;
            if let Some(range) = recipe.b_kernel_in {
                check_b_kernel(&g, &up, range)?;
            }
            // kexec-tools' header has a PT_LOAD for [1 MiB, --mem-min)
            // whose end wraps: B must leave it out, and say so.
            let wrapped = g.said_since("KJ: A jumping 1", "wraps around, left out");
            if ctx.name != "ref" && wrapped.is_empty() {
                return Err(g.fail("B took kexec-tools' wrapping PT_LOAD silently".into()));
            }
            // With a dump, B first reads A's marker back at the physical
            // address A gave, then scans the whole dump.
            let mut dump = g.step("KJ: B vmcore", 300)?;
            if dump.contains("KJ: B vmcore-at:") {
                if ctx.name != "ref" && !dump.contains("KJMARK-A-PAGE-CACHE") {
                    return Err(g.fail(format!("B's dump lacks A's marker page: {dump}")));
                }
                dump = g.step("KJ: B vmcore present", 300)?;
            }
            let shows_a = dump.contains("A's marker: find: found")
                && dump.contains("B's marker: find: not found");
            if ctx.name != "ref" && trips == 1 && recipe.scan_dump && !shows_a {
                return Err(g.fail(format!("B does not see A's memory: {dump}")));
            }
            match g.step("KJ: B helper loaded", 120) {
                // The helper's zero-length segment makes the kernel set
                // aside all of B's memory: ENOMEM, or the OOM killer first.
                Err(f)
                    if ctx.name == "ref"
                        && (f.reason.contains("Cannot allocate memory")
                            || f.reason.contains("load: Killed")) =>
                {
                    return Ok(Verdict::Known(format!(
                        "B's kexec --load-jump-back-helper exhausts B's memory ({})",
                        f.reason
                    )));
                }
                r => r?,
            };
        } else {
            g.step(&format!("KJ: B resumed {}", i - 1), 120)?;
            g.step("KJ: B memory intact", 60)?;
        }
        g.step("KJ: B jumping back", 120)?;
        let back = g.step(&format!("KJ: A resumed {i} "), 180)?;
        if !back.contains("cpus=0-1") {
            return Err(g.fail(format!("want 2 CPUs after the jump: {back}")));
        }
        g.step("KJ: A memory intact", 60)?;
        g.step("KJ: A disk intact", 60)?;
        if i == 1 {
            let l = g.step("KJ: A MemFree after first", 30)?;
            free_first = number_after(&l, "free: ");
        }
    }
    let l = g.step("KJ: A MemFree after last", 30)?;
    if let (Some(first), Some(last)) = (free_first, number_after(&l, "free: ")) {
        if trips > 1 && last + 1024 < first {
            return Err(g.fail(format!(
                "free memory fell by {} kB over {trips} round trips",
                first - last
            )));
        }
        println!("    free memory after trip 1: {first} kB, after trip {trips}: {last} kB");
    } else {
        return Err(g.fail("no MemFree figures from the guest".into()));
    }
    g.step("KJ: A done", 60)?;
    Ok(Verdict::Pass)
}

/// A -> B -> A: B boots with kexec_jump_back_entry=, finds A's memory in
/// /proc/vmcore, jumps back with the helper, and A resumes with both CPUs, a process's memory intact and its
/// virtio disk working (old file reads back from disk, new write lands).
pub(super) fn jump_round_trip(ctx: &Ctx) -> TestResult {
    jump_trips(ctx, 1)
}

/// 20 round trips in one boot; B is resumed, not rebooted, each time, its
/// process memory intact; A's MemFree stays within 1 MiB.
pub(super) fn jump_20_round_trips(ctx: &Ctx) -> TestResult {
    jump_trips(ctx, 20)
}

/// Debian's kexec-tools, A without a low-memory reservation: B builds its
/// real-mode trampoline over A's; A must still get CPU1 back (twice).
pub(super) fn jump_without_low_reservation(ctx: &Ctx) -> TestResult {
    jump_trips_with(ctx, 2, &NO_LOW_RESERVATION)
}

/// B started with memmap=exactmap and KASLR on: its kernel lands inside
/// the exactmap ranges, and A comes back.
pub(super) fn jump_b_kaslr_stays_in_exactmap(ctx: &Ctx) -> TestResult {
    jump_trips_with(ctx, 1, &B_KASLR)
}

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
