// SPDX-License-Identifier: GPL-2.0

//! The kjump tests: A boots with crashkernel= and nothing else, KASLR on,
//! and uses only `kjump load`, `kjump exec` and, in B, `kjump back`.

use super::dump::dump_of_a;
use super::guest::{boot_disks, boot_on, number_after, Guest};
use super::images::{base_image, kjump_image, with_b};
use super::kaslr::kaslr_moved;
use super::trips::{round_trips, Trips};
use super::verdict::{Failure, TestResult, Verdict};
use crate::Ctx;

/// A's only boot parameter for kjump (plus the console the harness adds).
pub(super) const A_ARGS: &str = "crashkernel=160M";

/// The machine and the run.
pub(super) struct Shape {
    pub cpus: u32,
    pub mem_mib: u32,
    pub trips: u32,
    /// CPU that runs `kjump exec`.
    pub exec_cpu: u32,
    /// Trip after which A unloads and reloads B (0: never).
    pub reload: u32,
    /// A's marker page lies above this physical address.
    pub mark_above: u64,
    /// MiB of A's memory tagged with its addresses ("auto": most of what
    /// is free; "0": none).
    pub tag_mib: &'static str,
    /// B checks A's dump on its first boot.
    pub dump: bool,
}

/// Boots A with the kjump scenario, B's kernel and initramfs inside.
pub(super) fn boot_kjump(ctx: &Ctx, s: &Shape) -> Result<Guest, Failure> {
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
    boot_disks(ctx, initrd, A_ARGS, Vec::new(), s.cpus, s.mem_mib)
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
    let d = dump_of_a(g, tagged)?;
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
    let mut t = KjumpTrips {
        ctx,
        s,
        all,
        tagged,
        b_trips: 0,
    };
    round_trips(&mut g, s.trips, t.tagged.is_some(), &mut t)?;
    Ok(code)
}

/// B's side of the kjump round trips, A's clock, and B's reload.
pub(super) struct KjumpTrips<'a> {
    ctx: &'a Ctx,
    s: &'a Shape,
    /// "cpus=0-N": every CPU, in A and in B.
    all: String,
    /// A's tagfill line, if A tagged.
    tagged: Option<String>,
    /// B's trips since it booted.
    b_trips: u32,
}

impl<'a> KjumpTrips<'a> {
    /// The checks of kjump.sh's B side and of A's clock, for another A
    /// that prints A's lines in kjump.sh's order (debian.sh).
    pub(super) fn new(ctx: &'a Ctx, s: &'a Shape) -> Self {
        Self {
            ctx,
            s,
            all: format!("cpus=0-{}", s.cpus - 1),
            tagged: None,
            b_trips: 0,
        }
    }
}

impl Trips for KjumpTrips<'_> {
    /// B boots on the first trip and after a reload; it is resumed
    /// otherwise.
    fn b_side(&mut self, g: &mut Guest, i: u32) -> Result<Option<Verdict>, Failure> {
        let all = &self.all;
        if i == 1 || i == self.s.reload + 1 {
            let up = g.step("KJ: B up", 180)?;
            if !up.contains(all) {
                return Err(g.fail(format!("want {all} in B: {up}")));
            }
            let st = g.step("KJ: B status", 30)?;
            if !st.contains("this kernel: B") {
                return Err(g.fail(format!("kjump status in B: {st}")));
            }
            if self.s.dump {
                let tagged = self.tagged.as_deref().filter(|_| i == 1);
                check_dump(self.ctx, g, tagged)?;
            }
            self.b_trips = 0;
        } else {
            let r = g.step("KJ: B back returned", 120)?;
            if !r.contains("returned 0 kjump: B resumed after") {
                return Err(g.fail(format!("kjump back: {r}")));
            }
            let r = g.step(&format!("KJ: B resumed {}", self.b_trips), 30)?;
            if !r.contains(all) {
                return Err(g.fail(format!("B did not get its CPUs back: {r}")));
            }
            g.step("KJ: B memory intact", 60)?;
        }
        self.b_trips += 1;
        Ok(None)
    }

    /// A has all its CPUs, kjump's report, and its clock kept time.
    fn a_resumed(&mut self, g: &mut Guest, i: u32, back: &str) -> Result<(), Failure> {
        let all = &self.all;
        if !back.contains(all) || !back.contains("kjump: back in A after") {
            return Err(g.fail(format!(
                "want {all} and kjump's report after jump {i}: {back}"
            )));
        }
        g.step("KJ: A time ok", 60).map(drop)
    }

    /// A failed resident reload leaves B whole: the next trip resumes it
    /// and B checks its memory. Then the reload.
    fn a_between(&mut self, g: &mut Guest, i: u32) -> Result<(), Failure> {
        let reload = self.s.reload;
        if reload > 0 && i + 1 == reload {
            let l = g.step("KJ: A resident-efault:", 120)?;
            println!("    {}", l.trim_start_matches("KJ: A "));
        }
        if i == reload {
            g.step("KJ: A reloaded B", 120)?;
        }
        Ok(())
    }
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
    kaslr_moved(at, BOOTS, "boots came back")
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
            .map_err(Failure::new)?
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
