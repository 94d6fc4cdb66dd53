// SPDX-License-Identifier: GPL-2.0

//! Jumps with Debian's kexec-tools: round trips, the recipes a user
//! types, CPUs A keeps offline, paging modes.

use super::dump::dump_of_a;
use super::guest::{boot_on, Guest};
use super::images::{base_image, carrying_b};
use super::trips::{round_trips, Trips};
use super::verdict::{Failure, TestResult, Verdict};
use super::{disks::ext2_disk, kaslr::kaslr_moved, REF_JUMP_REPORTS};
use crate::Ctx;

/// A stock kexec-tools recipe: A's and B's command lines.
pub(crate) struct Recipe {
    /// A's boot parameters.
    a_args: &'static str,
    /// B's, passed to kexec --append.
    b_args: &'static str,
    /// Whether B searches its whole dump for A's marker and checks A's
    /// tagged pages in it (one trip only).
    scan_dump: bool,
    /// The reliability report's line for that dump.
    dump_fact: &'static str,
    /// Whether A checks, after the first return, where its offline CPUs
    /// wait and that it can still hotplug its own.
    park_check: bool,
}

/// The recipe upstream kernels need too. B runs in [256, 384) MiB, which
/// A reserved (crashkernel=), minus the last MiB that holds the ELF core
/// header, plus the 64 KiB below 1 MiB that A also reserved (memmap=$)
/// for B's SMP trampoline; A keeps its kernel out with nokaslr, B too.
const UPSTREAM_RECIPE: Recipe = Recipe {
    a_args: "nokaslr crashkernel=128M@256M memmap=64K$576K",
    b_args: "nokaslr memmap=exactmap memmap=64K@576K memmap=127M@256M memmap=1M$383M",
    scan_dump: true,
    dump_fact: "dump of A, kexec-tools upstream recipe: found / wrong / total",
    park_check: false,
};

/// What a new user types, read off the kexec-tools man page and A's
/// /proc/iomem: A keeps KASLR and has only crashkernel=; B gets
/// --mem-min/--mem-max over the reservation and an exactmap of it plus
/// A's RAM below 640 KiB (no low-memory reservation), KASLR on. The
/// scenario computes B's options from the reservation ("crashkernel").
const NEW_USER: Recipe = Recipe {
    a_args: "crashkernel=160M",
    b_args: "",
    scan_dump: false,
    dump_fact: "dump of A, kexec-tools new user recipe: found / wrong / total",
    park_check: false,
};

/// [`NEW_USER`] with B checking its dump of A (KASLR on in A: its direct
/// map is not where the upstream recipe's is).
const NEW_USER_DUMP: Recipe = Recipe {
    scan_dump: true,
    ..NEW_USER
};

const JUMP_CONF: &str = "MEM_MIB=32\n";

/// MiB of A's memory tagged with its physical address when B scans its
/// dump (what a user's A holds).
const TAG_MIB: u32 = 400;

/// Boots A with the jump scenario and B's kernel and initramfs inside.
fn boot_jump(ctx: &Ctx, trips: u32, recipe: &Recipe) -> Result<Guest, Failure> {
    boot_jump_on(ctx, trips, recipe, 2)
}

/// [`boot_jump`] with `cpus` CPUs.
fn boot_jump_on(ctx: &Ctx, trips: u32, recipe: &Recipe, cpus: u32) -> Result<Guest, Failure> {
    // Scanning all of B's dump is slow under TCG: once, for the recipe
    // the reference is compared on.
    let vmcore_check = u32::from(trips == 1 && recipe.scan_dump);
    let range = if recipe.b_args.is_empty() {
        "B_MIN=crashkernel\nB_MAX=crashkernel\n"
    } else {
        "B_MIN=0x10000000\nB_MAX=0x17ffffff\n"
    };
    let conf = format!(
        "{JUMP_CONF}{range}TRIPS={trips}\nVMCORE_CHECK={vmcore_check}\nTAG_MIB={TAG_MIB}\nB_ARGS='{}'\nPARK_CHECK={}\n",
        recipe.b_args,
        u32::from(recipe.park_check),
    );
    let script = include_str!("../../../scenarios/jump.sh");
    let mut b = base_image(ctx)?;
    if vmcore_check == 1 {
        b = b
            .host_binary("/usr/bin/makedumpfile", "bin/makedumpfile")
            .map_err(Failure::new)?;
    }
    let b = b
        .file("init", script.as_bytes(), 0o755)
        .file("etc/kj.conf", conf.as_bytes(), 0o644)
        .finish();
    let a = base_image(ctx)?
        .file("init", script.as_bytes(), 0o755)
        .file("etc/kj.conf", conf.as_bytes(), 0o644);
    let a = carrying_b(ctx, a, &b)?;
    boot_on(ctx, a, recipe.a_args, Some(ext2_disk(ctx, 16)?), cpus)
}

/// Runs `trips` round trips A -> B -> A with Debian's kexec-tools and checks
/// A and B after each. Returns the known failure on the reference.
fn jump_trips(ctx: &Ctx, trips: u32) -> TestResult {
    jump_trips_with(ctx, trips, &UPSTREAM_RECIPE).map(|(v, _)| v)
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

/// The round trips of [`jump_trips`] with `recipe`; also returns where
/// A's kernel was ("Kernel code" in /proc/iomem).
fn jump_trips_with(ctx: &Ctx, trips: u32, recipe: &Recipe) -> Result<(Verdict, String), Failure> {
    let mut g = boot_jump(ctx, trips, recipe)?;
    if ctx.name == "ref" {
        g.vm.tolerate(REF_JUMP_REPORTS);
    }
    let up = g.step("KJ: A up", 60)?;
    if !up.contains("cpus=0-1") {
        return Err(g.fail(format!("want 2 CPUs in A: {up}")));
    }
    let code = up
        .split_whitespace()
        .find_map(|w| w.strip_prefix("code="))
        .unwrap_or("")
        .to_string();
    // The new user's B: inside the reservation A reports.
    let mut b_kernel_in = None;
    if recipe.b_args.is_empty() {
        let l = g.step("KJ: A reservation ", 60)?;
        let range = l
            .split_whitespace()
            .nth(3)
            .and_then(|r| r.trim_end_matches(':').split_once('-'))
            .and_then(|(a, b)| {
                let hex = |x: &str| u64::from_str_radix(x.trim_start_matches("0x"), 16).ok();
                Some((hex(a)?, hex(b)? + 1))
            });
        b_kernel_in = Some(range.ok_or_else(|| g.fail(format!("no reservation: {l}")))?);
    }
    let tagged = if trips == 1 && recipe.scan_dump {
        Some(g.step("KJ: A tagfill: tagged", 300)?)
    } else {
        None
    };
    g.step("KJ: A loaded", 300)?;
    let mut t = KexecTrips {
        ctx,
        recipe,
        trips,
        b_kernel_in,
        tagged,
        b_cpus: String::new(),
    };
    let v = round_trips(&mut g, trips, t.tagged.is_some(), &mut t)?;
    Ok((v, code))
}

/// B's side of the kexec-tools round trips, and A's disk.
struct KexecTrips<'a> {
    ctx: &'a Ctx,
    recipe: &'a Recipe,
    trips: u32,
    /// The range B's kernel must lie in (the new user's recipe).
    b_kernel_in: Option<(u64, u64)>,
    /// A's tagfill line, when B checks its dump of A.
    tagged: Option<String>,
    /// B's online CPUs when it came up ("cpus=0-1"): B resumed has them
    /// all again.
    b_cpus: String,
}

impl Trips for KexecTrips<'_> {
    /// B boots on the first trip and is resumed on the others.
    fn b_side(&mut self, g: &mut Guest, i: u32) -> Result<Option<Verdict>, Failure> {
        let (ctx, recipe, trips) = (self.ctx, self.recipe, self.trips);
        if i > 1 {
            let resumed = g.step(&format!("KJ: B resumed {}", i - 1), 120)?;
            if !resumed.split_whitespace().any(|w| w == self.b_cpus) {
                return Err(g.fail(format!(
                    "B did not get its CPUs back ({} when it came up): {resumed}",
                    self.b_cpus
                )));
            }
            g.step("KJ: B memory intact", 60)?;
            return Ok(None);
        }
        let up = g.step("KJ: B up", 120)?;
        self.b_cpus = up
            .split_whitespace()
            .find(|w| w.starts_with("cpus="))
            .ok_or_else(|| g.fail(format!("B's CPUs are missing from: {up}")))?
            .to_string();
        if let Some(range) = self.b_kernel_in {
            check_b_kernel(g, &up, range)?;
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
        // The reference's B may have no /proc/vmcore at all.
        if let Some(tagged) = self
            .tagged
            .as_ref()
            .filter(|_| dump.contains("A's marker:"))
        {
            recipe_dump(ctx, g, tagged, recipe.dump_fact)?;
        }
        match g.step("KJ: B helper loaded", 120) {
            // The helper's zero-length segment makes the kernel set
            // aside all of B's memory: ENOMEM, or the OOM killer first.
            Err(f)
                if ctx.name == "ref"
                    && (f.reason.contains("Cannot allocate memory")
                        || f.reason.contains("load: Killed")) =>
            {
                Ok(Some(Verdict::Known(format!(
                    "B's kexec --load-jump-back-helper exhausts B's memory ({})",
                    f.reason
                ))))
            }
            r => r.map(|_| None),
        }
    }

    fn a_resumed(&mut self, g: &mut Guest, _i: u32, back: &str) -> Result<(), Failure> {
        if !back.contains("cpus=0-1") {
            return Err(g.fail(format!("want 2 CPUs after the jump: {back}")));
        }
        Ok(())
    }

    fn a_checked(&mut self, g: &mut Guest, _i: u32) -> Result<(), Failure> {
        g.step("KJ: A disk intact", 60).map(drop)
    }
}

/// B's dump of A with kexec-tools, as a new user gets it, printed beside
/// kjump's. kexec-tools 2.0.25 leaves the vmcoreinfo PT_NOTE and A's RAM
/// from 1 MiB to --mem-min (but A's kernel image) out of a preserve-context
/// image's ELF core header; on our kernels B adds both back (patch 16), so
/// every tagged page is found at its address, makedumpfile -d 31 writes a
/// dump and --dump-dmesg reads A's log. The reference is shown.
fn recipe_dump(ctx: &Ctx, g: &mut Guest, tagged: &str, fact: &'static str) -> Result<(), Failure> {
    let d = dump_of_a(g, tagged)?;
    crate::report::fact(fact, ctx.name, d.tags());
    let show = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(l) => l.clone(),
    };
    let md = d.makedumpfile.clone().map(|_| ());
    println!(
        "    kexec-tools' dump: {} of {} tagged pages found ({:.0}%), {} elsewhere; makedumpfile -d 31: {}; --dump-dmesg: {}",
        d.found,
        d.tagged,
        100.0 * d.found as f64 / d.tagged.max(1) as f64,
        d.wrong,
        show(&md),
        show(&d.dmesg)
    );
    if ctx.name == "ref" {
        return Ok(());
    }
    if d.wrong != 0 || d.found != d.tagged {
        return Err(g.fail(format!(
            "kexec-tools' dump of A is not all of A: {} found / wrong / total",
            d.tags()
        )));
    }
    for (what, r) in [("-d 31", &md), ("--dump-dmesg", &d.dmesg)] {
        if let Err(l) = r {
            return Err(g.fail(format!("makedumpfile {what} on kexec-tools' dump: {l}")));
        }
    }
    Ok(())
}

/// [`jump_round_trip`] on QEMU's `-cpu max` (SMEP, SMAP, UMIP, FSGSBASE
/// and LA57 on, so A and B run in 5-level paging; QEMU 7.2's TCG has no
/// PCID, INVPCID or CET), and a physical-mode program called 10 times
/// there: the trampoline's control-register order must hold with those
/// features on, in both directions.
pub(super) fn jump_round_trip_cpu_max(ctx: &Ctx) -> TestResult {
    // Both boots keep their consoles in the test's directory, so the
    // report check reads both.
    let max = Ctx {
        cpu: Some("max"),
        ..ctx.clone()
    };
    jump_trips_with(&max, 1, &CPU_MAX_RECIPE)?;
    super::physical::physical_calls(&max, 10)
}

/// A keeps CPUs offline that B starts: with `maxcpus=1` on two CPUs, then
/// with `nosmt` on two cores of two threads. After the jump back every
/// CPU A keeps offline must wait in A's own kernel text (the physical
/// address of its instruction pointer, read from QEMU's monitor), not in
/// B's memory where B parked it; and A must still take each of its CPUs
/// down and up again.
pub(super) fn offline_cpus_parked_in_a_after_jump_back(ctx: &Ctx) -> TestResult {
    let maxcpus = Recipe {
        a_args: "nokaslr crashkernel=128M@256M memmap=64K$576K maxcpus=1",
        ..PARK_RECIPE
    };
    parked_in_a(ctx, &maxcpus, "cpus=0-1")?;
    let smt = Ctx {
        threads: 2,
        ..ctx.clone()
    };
    let nosmt = Recipe {
        a_args: "nokaslr crashkernel=128M@256M memmap=64K$576K nosmt",
        ..PARK_RECIPE
    };
    parked_in_a(&smt, &nosmt, "cpus=0-3")
}

/// The upstream recipe for [`offline_cpus_parked_in_a_after_jump_back`].
const PARK_RECIPE: Recipe = Recipe {
    scan_dump: false,
    park_check: true,
    ..UPSTREAM_RECIPE
};

/// One boot of [`offline_cpus_parked_in_a_after_jump_back`]; B must come
/// up with `b_cpus`.
fn parked_in_a(ctx: &Ctx, recipe: &Recipe, b_cpus: &str) -> TestResult {
    let cpus = if ctx.threads > 1 { 4 } else { 2 };
    let mut g = boot_jump_on(ctx, 1, recipe, cpus)?;
    let up = g.step("KJ: A up", 60)?;
    let code = up
        .split_whitespace()
        .find_map(|w| w.strip_prefix("code="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        })
        .ok_or_else(|| g.fail(format!("no kernel code range for A: {up}")))?;
    g.step("KJ: A loaded", 300)?;
    g.step("KJ: A jumping 1", 120)?;
    let b = g.step("KJ: B up", 120)?;
    if !b.contains(b_cpus) {
        return Err(g.fail(format!("want B up with {b_cpus}: {b}")));
    }
    g.step("KJ: A resumed 1", 300)?;
    let l = g.step("KJ: A parked? offline=", 60)?;
    let offline = cpu_list(
        l.split("offline=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or(""),
    )
    .ok_or_else(|| g.fail(format!("no offline CPUs in A: {l}")))?;
    for cpu in offline {
        let at = parked_at(&g, cpu)?;
        if at < code.0 || at > code.1 {
            return Err(g.fail(format!(
                "CPU{cpu} waits at physical {at:#x}, outside A's kernel code {:#x}-{:#x}",
                code.0, code.1
            )));
        }
        println!("    CPU{cpu} offline in A, halted at {at:#x} in A's kernel code");
    }
    let l = g.step("KJ: A hotplug ok", 120)?;
    println!("    {}", l.trim_start_matches("KJ: "));
    g.step("KJ: A done", 120)?;
    Ok(Verdict::Pass)
}

/// The physical address vCPU `cpu` is halted at, from QEMU's monitor.
fn parked_at(g: &Guest, cpu: u32) -> Result<u64, Failure> {
    let mon = |cmd: &str| {
        g.vm()
            .monitor(cmd, cpu)
            .map_err(|e| g.fail(format!("CPU{cpu}: {e}")))
    };
    let regs = mon("info registers")?;
    let field = |name: &str| {
        regs.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_string)
    };
    if field("HLT=").as_deref() != Some("1") {
        return Err(g.fail(format!("CPU{cpu} is offline in A but not halted")));
    }
    let rip = field("RIP=").ok_or_else(|| g.fail(format!("CPU{cpu}: no RIP in: {regs}")))?;
    let gpa = mon(&format!("gva2gpa 0x{rip}"))?;
    gpa.trim()
        .strip_prefix("gpa: 0x")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| {
            g.fail(format!(
                "CPU{cpu} halted at {rip}, which its page tables do not map: {}",
                gpa.trim()
            ))
        })
}

/// The CPUs of a sysfs CPU list ("1", "1,3", "1-3").
pub(super) fn cpu_list(list: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?);
    }
    Some(cpus)
}

/// The upstream recipe without the dump scan, which `jump_round_trip`
/// already makes on the default CPU.
const CPU_MAX_RECIPE: Recipe = Recipe {
    scan_dump: false,
    ..UPSTREAM_RECIPE
};

/// The upstream recipe with a B in 4-level paging (`no5lvl`), for an A in
/// 5-level paging.
const FOUR_LEVEL_B_RECIPE: Recipe = Recipe {
    b_args: "nokaslr no5lvl memmap=exactmap memmap=64K@576K memmap=127M@256M memmap=1M$383M",
    scan_dump: false,
    ..UPSTREAM_RECIPE
};

/// The upstream recipe with an A in 4-level paging (`no5lvl`), for a B in
/// 5-level paging.
const FOUR_LEVEL_A_RECIPE: Recipe = Recipe {
    a_args: "nokaslr no5lvl crashkernel=128M@256M memmap=64K$576K",
    scan_dump: false,
    ..UPSTREAM_RECIPE
};

/// On `-cpu max` a kernel runs in 5-level paging unless booted with
/// `no5lvl`. A in 5-level paging jumps to a B in 4-level, then A in
/// 4-level to a B in 5-level. The jump-back entry cannot change paging
/// modes, so each B's `kexec --load-jump-back-helper` must be refused
/// (`EOPNOTSUPP`, and the kernel says why) instead of the jump back
/// resetting the machine.
pub(super) fn jump_back_across_paging_modes_is_refused(ctx: &Ctx) -> TestResult {
    let max = Ctx {
        cpu: Some("max"),
        ..ctx.clone()
    };
    paging_modes_refused(
        &max,
        &FOUR_LEVEL_B_RECIPE,
        "5-level paging, this one in 4-level",
    )?;
    paging_modes_refused(
        &max,
        &FOUR_LEVEL_A_RECIPE,
        "4-level paging, this one in 5-level",
    )
}

/// One boot of [`jump_back_across_paging_modes_is_refused`].
fn paging_modes_refused(ctx: &Ctx, recipe: &Recipe, want: &str) -> TestResult {
    let mut g = boot_jump(ctx, 1, recipe)?;
    g.step("KJ: A loaded", 300)?;
    g.step("KJ: A jumping 1", 120)?;
    g.step("KJ: B up", 120)?;
    let refused = match g.step("KJ: B helper loaded", 120) {
        Ok(l) => return Err(g.fail(format!("the helper loaded across paging modes: {l}"))),
        Err(f) => f.reason,
    };
    if !refused.contains("Operation not supported") {
        return Err(g.fail(format!("want EOPNOTSUPP for the helper: {refused}")));
    }
    let why = g.said_since("KJ: A jumping 1", "jump back refused: ");
    match why.first() {
        Some(l) if l.contains(want) => {
            println!("    {}", l.split_once("] ").map_or(l.as_str(), |(_, m)| m));
            Ok(Verdict::Pass)
        }
        _ => Err(g.fail(format!("no reason in B's log for: {refused}"))),
    }
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

/// Boots in [`kexec_tools_new_user_recipe_10_boots`].
const BOOTS: u32 = 10;

/// The kexec-tools recipe a new user types (A: KASLR on, crashkernel=
/// only; B: --mem-min/--mem-max over the reservation, an exactmap of it
/// and of A's low 640 KiB, KASLR on, no low-memory reservation), ten
/// boots of one round trip each: B's kernel lies inside the reservation
/// (its decompressor's KASLR keeps to the exactmap), B's real-mode
/// trampoline lands on A's and A still gets both CPUs back, every time;
/// A's kernel moved between boots (KASLR at work). On boot 1, B checks its
/// dump of A (all of A's tagged pages, makedumpfile).
pub(super) fn kexec_tools_new_user_recipe_10_boots(ctx: &Ctx) -> TestResult {
    let mut at = Vec::new();
    for boot in 1..=BOOTS {
        let recipe = if boot == 1 { &NEW_USER_DUMP } else { &NEW_USER };
        let (v, code) = jump_trips_with(ctx, 1, recipe).map_err(|mut f| {
            f.reason = format!("boot {boot}: {}", f.reason);
            f
        })?;
        if let Verdict::Known(_) = v {
            return Ok(v);
        }
        at.push(code);
    }
    kaslr_moved(at, BOOTS, "round trips with both CPUs back")
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(cpu_list("1"), Some(vec![1]));
        assert_eq!(cpu_list("1,3\n"), Some(vec![1, 3]));
        assert_eq!(cpu_list("1-3,5"), Some(vec![1, 2, 3, 5]));
        assert_eq!(cpu_list(""), None);
    }
}
