// SPDX-License-Identifier: GPL-2.0

//! `kjtest`: boots the kexec jump test kernels in QEMU and checks them.
//!
//! `kjtest run [--kernel ours|c|ref|both|all] [--only NAME] [--list]` runs
//! the end-to-end tests on our kernel, our kernel with the C sequence
//! (`c`) and the reference; `kjtest demo` shows one round trip on our kernel with
//! the timeline of its phases; `kjtest bench [ROUNDS]` compares the cost
//! of the suspend/resume ladder of ours and the reference.

mod bench;
mod floors;
mod initramfs;
mod nbd;
mod qemu;
mod report;
mod soak;
mod stats;
mod switch_bench;
mod tables;
mod tests;

use report::{Outcome, Report};
use std::{env, fs, path::PathBuf, process::ExitCode, time::Instant};

/// What a test needs to know about where it runs.
#[derive(Clone)]
pub struct Ctx {
    /// `ours`, `c` or `ref`.
    pub name: &'static str,
    /// The kernel's bzImage.
    pub kernel: PathBuf,
    /// The static guest program.
    pub guest_bin: PathBuf,
    /// The physical-mode program (ELF), built by scripts/build-harness.sh.
    pub phys_prog: PathBuf,
    /// Its benchmark build, with 1 MiB of payload.
    pub bench_prog: PathBuf,
    /// The physical-mode program `kjump call` runs (prints on the UART).
    pub hello_prog: PathBuf,
    /// The static kjump CLI, built by scripts/build-harness.sh.
    pub kjump_bin: PathBuf,
    /// A directory for this test on this kernel.
    pub scratch: PathBuf,
    /// QEMU's CPU model, if not its default (`-cpu`).
    pub cpu: Option<&'static str>,
    /// Threads per core of the guest's CPUs (1: no SMT).
    pub threads: u32,
}

pub(crate) fn root() -> PathBuf {
    let root = env::var_os("KJ_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../.."));
    fs::canonicalize(&root).unwrap_or(root)
}

pub(crate) fn ctx(kernel: &'static str, test: &str) -> Ctx {
    let root = root();
    let scratch = root.join("build/test").join(kernel).join(test);
    let _ = fs::remove_dir_all(&scratch);
    let _ = fs::create_dir_all(&scratch);
    Ctx {
        name: kernel,
        // KJ_KERNEL_OUT: another build's output folders (the mutation
        // check's kernels), else build/out.
        kernel: env::var_os("KJ_KERNEL_OUT")
            .map_or_else(|| root.join("build/out"), PathBuf::from)
            .join(kernel)
            .join("arch/x86/boot/bzImage"),
        guest_bin: root.join("target/x86_64-unknown-linux-gnu/release/kj-guest"),
        phys_prog: root.join("target/kj/checksum.elf"),
        bench_prog: root.join("target/kj/bench.elf"),
        hello_prog: root.join("target/kj/hello.elf"),
        kjump_bin: root.join("target/x86_64-unknown-linux-gnu/release/kjump"),
        scratch,
        cpu: None,
        threads: 1,
    }
}

/// The kernel reports in the consoles a test left in `scratch`.
fn console_reports(scratch: &std::path::Path) -> Vec<String> {
    let mut logs: Vec<std::path::PathBuf> = fs::read_dir(scratch)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    logs.retain(|p| p.extension().is_some_and(|x| x == "log"));
    logs.sort();
    logs.iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .filter(|l| qemu::first_report([*l]).is_some())
                .map(|l| l.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn run(args: &[String]) -> ExitCode {
    let opt = |name: &str| {
        args.windows(2)
            .find(|w| w[0] == name)
            .map(|w| w[1].as_str())
    };
    let kernels: &[&'static str] = match opt("--kernel").unwrap_or("all") {
        "ours" => &["ours"],
        "c" => &["c"],
        "ref" => &["ref"],
        "both" => &["ours", "ref"],
        "all" => &["ours", "c", "ref"],
        k => {
            eprintln!("kjtest: unknown kernel '{k}' (want ours, c, ref, both or all)");
            return ExitCode::from(2);
        }
    };
    // A test's whole name selects that test alone; a part of a name,
    // every test whose name holds it.
    let only = opt("--only");
    let exact = only.is_some_and(|o| tests::TESTS.iter().any(|t| t.name == o));
    let selected: Vec<_> = tests::TESTS
        .iter()
        .filter(|t| {
            only.is_none_or(|o| {
                if exact {
                    t.name == o
                } else {
                    t.name.contains(o)
                }
            })
        })
        .collect();
    if args.iter().any(|a| a == "--list") {
        for t in &selected {
            println!("{}", t.name);
        }
        return ExitCode::SUCCESS;
    }
    if selected.is_empty() {
        eprintln!("kjtest: no test matches '{}'", only.unwrap_or(""));
        return ExitCode::from(2);
    }
    let mut report = Report::default();
    for t in &selected {
        for &k in kernels {
            if !t.kernels.contains(&k) {
                continue;
            }
            let c = ctx(k, t.name);
            let start = Instant::now();
            let (mut outcome, excerpt) = match (t.run)(&c) {
                Ok(tests::Verdict::Pass) if k == "ref" && t.ref_fails => (
                    Outcome::Fail(
                        "the reference passed where it is documented to fail: update the documentation"
                            .into(),
                    ),
                    vec![],
                ),
                Ok(tests::Verdict::Pass) => (Outcome::Pass, vec![]),
                Ok(tests::Verdict::Known(why)) => (Outcome::KnownFailure(why), vec![]),
                Err(f) => (Outcome::Fail(f.reason), f.excerpt),
            };
            // A kernel report anywhere in the console fails the test, even
            // after the last line the test waited for, unless it is part of
            // the reference's documented failure.
            let documented = |r: &String| {
                k == "ref"
                    && matches!(outcome, Outcome::KnownFailure(_))
                    && t.ref_reports.iter().any(|d| r.contains(d))
            };
            let mut reports = console_reports(&c.scratch);
            reports.retain(|r| !t.injects.iter().any(|i| r.contains(i)));
            report.saw_reports(
                k,
                reports.len(),
                reports.iter().filter(|r| documented(r)).count(),
            );
            if let Some(report) = reports.iter().find(|r| !documented(r)) {
                let whose = if k == "ref" {
                    "the reference's own "
                } else {
                    ""
                };
                outcome = Outcome::Fail(format!("{whose}kernel report on the console: {report}"));
            } else if let (Some(report), Outcome::KnownFailure(why)) = (reports.first(), &outcome) {
                outcome = Outcome::KnownFailure(format!("{why}; and, as documented: {report}"));
            }
            report.add(report::Result {
                test: t.name,
                kernel: k,
                outcome,
                took: start.elapsed(),
                excerpt,
            });
        }
    }
    report.summary();
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn demo() -> ExitCode {
    let c = ctx("ours", "demo");
    println!("demo: kernel A boots with crashkernel=160M (KASLR on), loads kernel B with");
    println!("kjump load (resident in the reservation) and jumps with kjump exec; B boots,");
    println!("checks A's dump, jumps back with kjump back; A resumes with its memory intact.");
    println!("console: {}", c.scratch.join("console.log").display());
    match tests::demo(&c) {
        Ok(lines) => {
            println!("\ntimeline (seconds since QEMU start, emulated with TCG):");
            for l in lines {
                if tests::TIMELINE.iter().any(|m| l.text.contains(m)) {
                    println!("{:8.2}  {}", l.at.as_secs_f64(), l.text);
                }
            }
            println!("\ndemo: round trip complete");
            ExitCode::SUCCESS
        }
        Err(f) => {
            println!("demo failed: {}", f.reason);
            for l in f.excerpt {
                println!("    | {l}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The exit status of command `name`, which printed its results; its
/// error, if any, goes to stderr.
fn exit(name: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kjtest {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("demo") => demo(),
        Some("bench") => {
            let rounds = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(5);
            exit("bench", bench::run(|k| ctx(k, "bench"), rounds))
        }
        Some("soak") => {
            let trips = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(100);
            exit("soak", soak::run(&ctx("ours", "soak"), trips))
        }
        Some("hibernate-bench") => {
            let mib = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(256);
            let rounds = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(3);
            let mixed = args.iter().any(|a| a == "--mixed");
            let c = ctx("ours", "hibernate-bench");
            exit(
                "hibernate-bench",
                tests::hibernate_bench(&c, mib, rounds, mixed),
            )
        }
        Some("sealed-bench") => {
            let mib = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(256);
            let rounds = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(3);
            let mut c = ctx("ours", "sealed-bench");
            // QEMU's "max" model: TCG then gives the guest AVX2 and AES-NI.
            if args.iter().any(|a| a == "--cpu-max") {
                c.cpu = Some("max");
            }
            exit("sealed-bench", tests::sealed_bench(&c, mib, rounds))
        }
        Some("tables") => match args.get(1) {
            Some(name) => exit("tables", tables::table(name).map(|t| print!("{t}"))),
            None => {
                eprintln!("usage: kjtest tables switch|hibernate|ladder");
                ExitCode::from(2)
            }
        },
        Some("switch-bench") => {
            let rounds = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(5);
            let (ours, reference) = (ctx("ours", "switch-bench"), ctx("ref", "switch-bench"));
            exit("switch-bench", switch_bench::run(&ours, &reference, rounds))
        }
        _ => {
            eprintln!(
                "usage: kjtest run [--kernel ours|c|ref|both|all] [--only NAME] [--list] | kjtest demo | kjtest bench [ROUNDS] | kjtest switch-bench [ROUNDS] | kjtest hibernate-bench [MIB] [ROUNDS] [--mixed] | kjtest sealed-bench [MIB] [ROUNDS] [--cpu-max] | kjtest soak [TRIPS] | kjtest tables switch|hibernate|ladder"
            );
            ExitCode::from(2)
        }
    }
}
