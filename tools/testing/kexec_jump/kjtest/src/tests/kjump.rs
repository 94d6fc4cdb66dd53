// SPDX-License-Identifier: GPL-2.0

//! The kjump tests: A boots with crashkernel= and nothing else, KASLR on,
//! and uses only `kjump load`, `kjump exec` and, in B, `kjump back`.

use crate::tests::{
    base_image, boot_on, boot_sized, kjump_image, number_after, with_b, Failure, Guest, TestResult,
    Verdict, SECS,
};
use crate::Ctx;

/// A's only boot parameter for kjump (plus the console the harness adds).
const A_ARGS: &str = "crashkernel=160M";

fn setup(e: String) -> Failure {
    Failure {
        reason: e,
        excerpt: vec![],
    }
}

/// The machine and the run.
struct Shape {
    cpus: u32,
    mem_mib: u32,
    trips: u32,
    /// CPU that runs `kjump exec`.
    exec_cpu: u32,
    /// Trip after which A unloads and reloads B (0: never).
    reload: u32,
    /// A's marker page lies above this physical address.
    mark_above: u64,
    /// MiB of A's memory tagged with its addresses ("auto": most of what
    /// is free; "0": none).
    tag_mib: &'static str,
    /// B checks A's dump on its first boot.
    dump: bool,
}

/// Boots A with the kjump scenario, B's kernel and initramfs inside.
fn boot_kjump(ctx: &Ctx, s: &Shape) -> Result<Guest, Failure> {
    let conf = format!(
        "TRIPS={}\nMEM_MIB=32\nDUMP={}\nEXEC_CPU={}\nRELOAD={}\nMARK_ABOVE={:#x}\nTAG_MIB={}\n",
        s.trips,
        u8::from(s.dump),
        s.exec_cpu,
        s.reload,
        s.mark_above,
        s.tag_mib
    );
    let script = include_str!("../../../scenarios/kjump.sh");
    let initrd = with_b(ctx, || kjump_image(ctx, script, &conf, true))?;
    boot_sized(ctx, initrd, A_ARGS, None, s.cpus, s.mem_mib)
}

/// B's dump of A: as many bytes of RAM as A has outside the reservation,
/// A's page-cache marker at the physical address A named, every page A
/// tagged with its address found there and none elsewhere (`tagged`: A's
/// tagfill line, if A tagged), makedumpfile -d 31 (which walks A's page
/// structures through vmcoreinfo) turning it into a filtered dump and
/// --dump-dmesg reading A's kernel log out of it.
fn check_dump(ctx: &Ctx, g: &mut Guest, tagged: Option<&str>) -> Result<(), Failure> {
    let l = g.step("KJ: B vmcore", 300)?;
    let (ram, expect) = (
        number_after(&l, "vmcore-ram: "),
        number_after(&l, "expect="),
    );
    match (ram, expect) {
        (Some(r), Some(e)) if r == e && e > 0 => {
            println!("    B's /proc/vmcore holds {r} bytes of A's RAM: all of it outside B")
        }
        _ => return Err(g.fail(format!("B's dump is not all of A's RAM: {l}"))),
    }
    let l = g.step("KJ: B marker", 120)?;
    if !l.contains("KJMARK-A-PAGE-CACHE") {
        return Err(g.fail(format!("B's dump lacks A's marker page: {l}")));
    }
    let Some(tagged) = tagged else {
        return Ok(());
    };
    let d = super::dump_of_a(g, tagged)?;
    crate::report::fact(
        "dump of A, kjump: found / wrong / total",
        ctx.name,
        d.tags(),
    );
    if d.found != d.tagged || d.wrong != 0 {
        return Err(g.fail(format!("B's dump is not all of A: tags {}", d.tags())));
    }
    println!(
        "    all {} pages A tagged are in B's dump at their own address, none elsewhere",
        d.tagged
    );
    let bytes = d
        .makedumpfile
        .map_err(|l| g.fail(format!("makedumpfile -d 31 failed on B's dump: {l}")))?;
    println!("    makedumpfile -d 31 -F wrote {} KiB", bytes >> 10);
    d.dmesg.map_err(|l| {
        g.fail(format!(
            "makedumpfile --dump-dmesg: no line of A's log: {l}"
        ))
    })?;
    println!("    makedumpfile --dump-dmesg read A's log line out of the dump");
    Ok(())
}

/// Round trips with kjump; A and B each check a process's memory after
/// every return, A gets all its CPUs back each time, its monotonic clock
/// never goes back and a sleeper armed before the jump wakes after it.
/// Returns where A's kernel was ("Kernel code" in /proc/iomem).
fn kjump_trips(ctx: &Ctx, s: &Shape) -> Result<String, Failure> {
    let mut g = boot_kjump(ctx, s)?;
    let all = format!("cpus=0-{}", s.cpus - 1);
    let up = g.step("KJ: A up", 120)?;
    let code = up
        .split_whitespace()
        .find(|w| w.contains('-') && w.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .unwrap_or("")
        .to_string();
    if !up.contains(&all) {
        return Err(g.fail(format!("want {all} in A: {up}")));
    }
    let tagged = if s.tag_mib != "0" {
        Some(g.step("KJ: A tagfill: tagged", 300)?)
    } else {
        None
    };
    let loaded = g.step("KJ: A loaded", 300)?;
    if !loaded.contains("resident") {
        return Err(g.fail(format!("kjump load: {loaded}")));
    }
    // B boots on the first trip and after a reload; it is resumed otherwise.
    let mut b_trips = 0;
    let mut free_first = None;
    for i in 1..=s.trips {
        g.step(&format!("KJ: A jumping {i}"), 60)?;
        if i == 1 || i == s.reload + 1 {
            let up = g.step("KJ: B up", 180)?;
            if !up.contains(&all) {
                return Err(g.fail(format!("want {all} in B: {up}")));
            }
            let st = g.step("KJ: B status", 30)?;
            if !st.contains("this kernel: B") {
                return Err(g.fail(format!("kjump status in B: {st}")));
            }
            if s.dump {
                check_dump(ctx, &mut g, tagged.as_deref().filter(|_| i == 1))?;
            }
            b_trips = 0;
        } else {
            let r = g.step("KJ: B back returned", 120)?;
            if !r.contains("returned 0 kjump: B resumed after") {
                return Err(g.fail(format!("kjump back: {r}")));
            }
            let r = g.step(&format!("KJ: B resumed {b_trips}"), 30)?;
            if !r.contains(&all) {
                return Err(g.fail(format!("B did not get its CPUs back: {r}")));
            }
            g.step("KJ: B memory intact", 60)?;
        }
        b_trips += 1;
        g.step("KJ: B jumping back", 120)?;
        let back = g.step(&format!("KJ: A resumed {i} "), 180)?;
        if !back.contains(&all) || !back.contains("kjump: back in A after") {
            return Err(g.fail(format!(
                "want {all} and kjump's report after jump {i}: {back}"
            )));
        }
        g.step("KJ: A time ok", 60)?;
        g.step("KJ: A memory intact", 60)?;
        if i == 1 && tagged.is_some() {
            let l = g.step("KJ: A tagfill: moved", 60)?;
            if !l.contains("moved 0 of") {
                return Err(g.fail(format!("tagged pages moved, the count is void: {l}")));
            }
        }
        if i == 1 {
            let l = g.step("KJ: A MemFree after first", 60)?;
            free_first = number_after(&l, "free: ");
        }
        // A failed resident reload leaves B whole: the next trip
        // resumes it and B checks its memory.
        if s.reload > 0 && i + 1 == s.reload {
            let l = g.step("KJ: A resident-efault:", 120)?;
            println!("    {}", l.trim_start_matches("KJ: A "));
        }
        if i == s.reload {
            g.step("KJ: A reloaded B", 120)?;
        }
    }
    // Many round trips cost A no memory (counting the per-CPU lists).
    let l = g.step("KJ: A MemFree after last", 60)?;
    if let (Some(first), Some(last)) = (free_first, number_after(&l, "free: ")) {
        if s.trips >= 10 && last + 1024 < first {
            return Err(g.fail(format!(
                "A's free memory fell by {} kB over {} round trips",
                first - last,
                s.trips
            )));
        }
        // With one trip both figures are after it: nothing to compare.
        if s.trips > 1 {
            println!(
                "    A's free memory after trip 1: {first} kB, after trip {}: {last} kB",
                s.trips
            );
        }
    }
    g.step("KJ: A done", 60)?;
    Ok(code)
}

/// Boots of A in [`kjump_round_trips_10_boots`].
const BOOTS: u32 = 10;

/// Ten boots of A (KASLR on, crashkernel= only): each loads B with
/// `kjump load` and jumps with `kjump exec`; B jumps back with `kjump
/// back`, A resumes with both CPUs and a process's memory intact. The
/// first boot makes 20 round trips (B resumed with its memory intact from
/// the second on, A's free memory within 1 MiB after them) and checks B's
/// dump of A: complete (every
/// page A tagged with its address is there, at that address, and none
/// elsewhere), read by makedumpfile -d 31 and --dump-dmesg. A's kernel
/// must have moved between boots (KASLR at work).
pub fn kjump_round_trips_10_boots(ctx: &Ctx) -> TestResult {
    let mut at = Vec::new();
    for boot in 1..=BOOTS {
        let first = boot == 1;
        let code = kjump_trips(
            ctx,
            &Shape {
                cpus: 2,
                mem_mib: 1024,
                trips: if first { 20 } else { 1 },
                exec_cpu: 0,
                reload: 0,
                mark_above: 1 << 20,
                tag_mib: if first { "auto" } else { "0" },
                dump: first,
            },
        )
        .map_err(|mut f| {
            f.reason = format!("boot {boot}: {}", f.reason);
            f
        })?;
        at.push(code);
    }
    super::kaslr_moved(at, BOOTS, "boots came back")
}

/// The same on a bigger machine: 4 CPUs, `kjump exec` run on CPU 3 (not
/// the boot CPU), 5 GiB of RAM with A's marker page above 4 GiB (the dump
/// must hold it), and B unloaded and loaded again after the second trip
/// (B boots afresh on the third). After the first trip a resident reload
/// whose last buffer is unmapped gets EFAULT, and the second trip resumes
/// B with its memory intact (nothing of it was overwritten).
pub fn kjump_4_cpus_5_gib_reload(ctx: &Ctx) -> TestResult {
    kjump_trips(
        ctx,
        &Shape {
            cpus: 4,
            mem_mib: 5120,
            trips: 4,
            exec_cpu: 3,
            reload: 2,
            mark_above: 1 << 32,
            tag_mib: "0",
            dump: true,
        },
    )
    .map(|_| Verdict::Pass)
}

/// The misuse a person will try, stage by stage (one boot each), and the
/// line each must get: `(try name, exit code is zero, text in the line)`.
/// One try: its name, whether it must succeed, text its line must hold.
type Try = (&'static str, bool, &'static str);

const MISUSE: &[(&str, &str, &[Try])] = &[
    (
        "none",
        "",
        &[
            (
                "load",
                false,
                "no memory is reserved for B: boot this kernel with crashkernel=",
            ),
            ("exec", false, "nothing is loaded: run kjump load first"),
            (
                "back",
                false,
                "no kexec_jump_back_entry= on the command line",
            ),
            ("status", true, "jumps so far: 0"),
            ("load-user", false, "run kjump as root"),
            (
                "call-user",
                false,
                "Operation not permitted (os error 1): needs root (CAP_SYS_BOOT)",
            ),
            ("call-entry", false, "entry 0x10 is outside the program"),
            (
                "call-raw",
                false,
                "is not ELF: give its physical address with --at",
            ),
            ("call", true, "kjump: /boot/hello.elf returned after"),
            ("call-again", true, "kjump: /boot/hello.elf returned after"),
        ],
    ),
    (
        "small",
        "crashkernel=16M",
        &[
            (
                "load-small",
                false,
                "cannot hold B: boot A with crashkernel=",
            ),
            ("load-notkernel", false, "not a bzImage"),
        ],
    ),
    (
        "busy",
        "crashkernel=160M",
        &[
            ("crash-load", true, ""),
            (
                "load-over-crash",
                false,
                "a crash kernel is loaded in the reservation",
            ),
            ("crash-unload", true, ""),
            ("load", true, "resident"),
            ("crash-over-resident", false, "Device or resource busy"),
            ("shrink", false, "Device or resource busy"),
            ("unload", true, ""),
            ("shrink-after-unload", true, ""),
            ("disable", true, ""),
            (
                "call-disabled",
                false,
                "kexec_load is disabled until reboot",
            ),
        ],
    ),
    (
        "lockdown",
        "crashkernel=160M lockdown=integrity",
        &[
            ("lockdown-mode", true, "[integrity]"),
            (
                "load-locked",
                false,
                "kernel lockdown (integrity) forbids kexec_load",
            ),
            ("kexec-locked", false, "Operation not permitted"),
            (
                "call-locked",
                false,
                "kernel lockdown (integrity) forbids kexec_load",
            ),
        ],
    ),
];

/// Each misuse of kjump is refused with one line that names the fix (no
/// reservation, not root, nothing loaded, not B, a bad program or kernel,
/// a B too large); a crash image and a resident image exclude each other
/// in the reservation (EBUSY), also for shrinking it; `kjump call` runs a
/// program that prints on the UART and returns, twice.
pub fn kjump_refuses_misuse(ctx: &Ctx) -> TestResult {
    misuse(ctx, MISUSE)
}

/// The unpatched kernel has no resident images: `kjump load` says the
/// kernel lacks them, in one line.
pub fn kjump_refused_by_reference(ctx: &Ctx) -> TestResult {
    misuse(
        ctx,
        &[(
            "reference",
            "crashkernel=160M",
            &[(
                "load-on-reference",
                false,
                "Invalid argument (os error 22): this kernel lacks kexec jump (CONFIG_KEXEC_JUMP) or resident images (KEXEC_RESIDENT)",
            )],
        )],
    )
}

fn misuse(ctx: &Ctx, stages: &[(&str, &str, &[Try])]) -> TestResult {
    let script = include_str!("../../../scenarios/kjump_errors.sh");
    let passwd = "root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n";
    let group = "root:x:0:\nnogroup:x:65534:\n";
    for (stage, args, tries) in stages {
        let conf = format!("STAGE={stage}\n");
        let a = base_image(ctx)?
            .host_file(&ctx.kjump_bin, "bin/kjump", 0o755)
            .and_then(|i| i.host_file(&ctx.kernel, "boot/bzImage", 0o644))
            .and_then(|i| i.host_file(&ctx.hello_prog, "boot/hello.elf", 0o644))
            .map_err(setup)?
            .file("init", script.as_bytes(), 0o755)
            .file("etc/kj.conf", conf.as_bytes(), 0o644)
            .file("etc/passwd", passwd.as_bytes(), 0o644)
            .file("etc/group", group.as_bytes(), 0o644);
        let mut g = boot_on(ctx, a.finish(), args, None, 2)?;
        let mut calls = 0;
        for (name, ok, text) in *tries {
            let l = g.step(&format!("KJ: try {name} rc="), 120)?;
            let rc0 = l.contains(" rc=0:");
            if rc0 != *ok || !l.contains(text) {
                return Err(g.fail(format!(
                    "{stage}/{name}: want rc {}, '{text}': {l}",
                    if *ok { "0" } else { "!= 0" }
                )));
            }
            if name.starts_with("call") && *ok {
                // Each call's program printed its line once.
                calls += 1;
                let hellos = g
                    .vm()
                    .transcript()
                    .iter()
                    .filter(|x| x.text.contains("KJ: physical mode says hello"))
                    .count();
                if hellos != calls {
                    return Err(g.fail(format!("{calls} calls, {hellos} lines from the program")));
                }
            }
        }
        g.step("KJ: done", 30)?;
        println!(
            "    {stage}: {} refusals and results as documented",
            tries.len()
        );
    }
    Ok(Verdict::Pass)
}

/// kexec_load() with bad preserve-context input: the regression cases
/// (overlap, outside RAM, a hole below 1 MiB, bufsz > memsz, unaligned,
/// wrapping, 17 segments, unknown flags and architecture, resident misuse,
/// a bogus buffer, entry 0, a range from RAM into the unclaimed hole
/// `mem=768M` leaves before the firmware's reserved range), each with its
/// errno, then 20 s of random input from a fixed seed; no kernel report,
/// and a jump works after.
/// Last, with `kexec_load_limit_reboot` at 2, a ranges image is loaded
/// and filled 10 times: fills do not count as loads.
pub fn kexec_load_fuzz(ctx: &Ctx) -> TestResult {
    let conf = "SEED=0x6b6a756d70\nSECS=20\n";
    let script = include_str!("../../../scenarios/fuzz.sh");
    let initrd = with_b(ctx, || kjump_image(ctx, script, conf, false))?;
    let mut g = boot_on(ctx, initrd, &format!("{A_ARGS} mem=768M"), None, 2)?;
    let mut tally = crate::report::Tally::new(
        "bad kexec_load() inputs tried / a jump after them",
        ctx.name,
        "0 / not made".into(),
    );
    let l = g.step("KJ: A fuzz:", 180)?;
    println!("    {}", l.trim_start_matches("KJ: A "));
    let tried = number_after(&l, "fuzz: ").unwrap_or(0) + number_after(&l, "; ").unwrap_or(0);
    tally.value = format!("{tried} / not made");
    g.step("KJ: B up", 180)?;
    let back = g.step("KJ: A resumed", 120)?;
    if !back.contains("cpus=0-1") {
        return Err(g.fail(format!("after the fuzzing: {back}")));
    }
    tally.value = format!("{tried} / A -> B -> A");
    // Fills are not loads: under kexec_load_limit_reboot=2, a ranges
    // load, 10 fills and the unload succeed.
    let fill = g.step("KJ: A fill-limit:", 60)?;
    println!("    {}", fill.trim_start_matches("KJ: A "));
    Ok(Verdict::Pass)
}

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

/// The soak in the test command: 24 round trips with kjump in one boot of
/// our debug kernel; A's free memory (counting the per-CPU free lists)
/// after trip 12 and after trip 24 must not drop by more than 32 kB a
/// trip; slab, page tables, kernel stacks, per-CPU areas, vmalloc and
/// tasks are printed beside it. (`kjtest soak N` runs longer soaks.)
pub fn soak_round_trips(ctx: &Ctx) -> TestResult {
    const TRIPS: u32 = 24;
    let s = crate::soak::soak(ctx, TRIPS).map_err(setup)?;
    for l in &s.lines {
        println!("    {l}");
    }
    crate::report::fact(
        "soak round trips / free kB lost a trip",
        ctx.name,
        format!(
            "{TRIPS} / {:.1}",
            s.free_lost_kb as f64 / f64::from(TRIPS - s.from)
        ),
    );
    if s.leaks.is_empty() {
        Ok(Verdict::Pass)
    } else {
        Err(setup(format!("leak: {}", s.leaks.join(", "))))
    }
}
