// SPDX-License-Identifier: GPL-2.0

//! The kjump tests: A boots with crashkernel= and nothing else, KASLR on,
//! and uses only `kjump load`, `kjump exec` and, in B, `kjump back`.

use crate::tests::{base_image, boot_on, number_after, Failure, Guest, TestResult, Verdict};
use crate::Ctx;

/// A's only boot parameter for kjump (plus the console the harness adds).
const A_ARGS: &str = "crashkernel=160M";

fn setup(e: String) -> Failure {
    Failure {
        reason: e,
        excerpt: vec![],
    }
}

/// Boots A with the kjump scenario, B's kernel and initramfs inside.
fn boot_kjump(ctx: &Ctx, trips: u32, dump: bool) -> Result<Guest, Failure> {
    let conf = format!("TRIPS={trips}\nMEM_MIB=32\nDUMP={}\n", u32::from(dump));
    let script = include_str!("../../scenarios/kjump.sh");
    let image = || -> Result<_, Failure> {
        base_image(ctx)?
            .host_file(&ctx.kjump_bin, "bin/kjump", 0o755)
            .and_then(|i| i.host_binary("/usr/bin/makedumpfile", "bin/makedumpfile"))
            .map(|i| {
                i.file("init", script.as_bytes(), 0o755)
                    .file("etc/kj.conf", conf.as_bytes(), 0o644)
            })
            .map_err(setup)
    };
    let b = image()?.finish();
    let a = image()?
        .file("boot/initrd", &b, 0o644)
        .host_file(&ctx.kernel, "boot/bzImage", 0o644)
        .map_err(setup)?;
    boot_on(ctx, a.finish(), A_ARGS, None, 2)
}

/// B's dump of A: as many bytes of RAM as A has outside the reservation,
/// A's page-cache marker at the physical address A named, and
/// makedumpfile -d 31 (which walks A's page structures through
/// vmcoreinfo) turning it into a filtered dump.
fn check_dump(g: &mut Guest) -> Result<(), Failure> {
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
    let l = g.step("KJ: B makedumpfile", 600)?;
    let bytes = number_after(&l, "bytes=").unwrap_or(0);
    if !l.contains("rc=0 ") || bytes < 1 << 20 {
        return Err(g.fail(format!("makedumpfile -d 31 failed on B's dump: {l}")));
    }
    println!("    makedumpfile -d 31 -F wrote {} KiB", bytes >> 10);
    Ok(())
}

/// `trips` round trips with kjump; A and B each check a process's memory
/// after every return, A gets both CPUs back each time.
fn kjump_trips(ctx: &Ctx, trips: u32) -> TestResult {
    let mut g = boot_kjump(ctx, trips, true)?;
    let up = g.step("KJ: A up", 60)?;
    if !up.contains("cpus=0-1") {
        return Err(g.fail(format!("want 2 CPUs in A: {up}")));
    }
    let loaded = g.step("KJ: A loaded", 300)?;
    if !loaded.contains("resident") {
        return Err(g.fail(format!("kjump load: {loaded}")));
    }
    for i in 1..=trips {
        g.step(&format!("KJ: A jumping {i}"), 60)?;
        if i == 1 {
            g.step("KJ: B up", 180)?;
            let st = g.step("KJ: B status", 30)?;
            if !st.contains("this kernel: B") {
                return Err(g.fail(format!("kjump status in B: {st}")));
            }
            check_dump(&mut g)?;
        } else {
            let r = g.step("KJ: B back returned", 120)?;
            if !r.contains("returned 0 kjump: B resumed after") {
                return Err(g.fail(format!("kjump back: {r}")));
            }
            g.step(&format!("KJ: B resumed {}", i - 1), 30)?;
            g.step("KJ: B memory intact", 60)?;
        }
        g.step("KJ: B jumping back", 120)?;
        let back = g.step(&format!("KJ: A resumed {i} "), 180)?;
        if !back.contains("cpus=0-1") || !back.contains("kjump: back in A after") {
            return Err(g.fail(format!(
                "want 2 CPUs and kjump's report after jump {i}: {back}"
            )));
        }
        g.step("KJ: A memory intact", 60)?;
    }
    g.step("KJ: A done", 60)?;
    Ok(Verdict::Pass)
}

/// A (KASLR on, crashkernel= only) loads B with `kjump load`, jumps with
/// `kjump exec` three times; B's dump is complete and makedumpfile reads
/// it; B resumes each time with its memory intact.
pub fn kjump_round_trips(ctx: &Ctx) -> TestResult {
    kjump_trips(ctx, 3)
}
