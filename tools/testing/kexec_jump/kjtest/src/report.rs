// SPDX-License-Identifier: GPL-2.0

//! Test outcomes, printed as they come and summed up at the end.

use std::sync::Mutex;
use std::time::Duration;

/// How one test went on one kernel.
pub enum Outcome {
    /// It did what it should.
    Pass,
    /// It did not; the reason.
    Fail(String),
    /// The reference kernel failed exactly as documented; counts as passed.
    KnownFailure(String),
}

/// One test on one kernel.
pub struct Result {
    /// Test name.
    pub test: &'static str,
    /// `ours`, `c` or `ref`.
    pub kernel: &'static str,
    /// What happened.
    pub outcome: Outcome,
    /// Wall time.
    pub took: Duration,
    /// The console lines that show why, for failures.
    pub excerpt: Vec<String>,
}

/// All results so far.
#[derive(Default)]
pub struct Report {
    results: Vec<Result>,
    /// Kernel reports seen in the consoles, per kernel: (all, documented).
    reports: Vec<(&'static str, usize, usize)>,
}

/// Figures for the reliability report, from the tests that measured them.
static FACTS: Mutex<Vec<(&'static str, &'static str, String)>> = Mutex::new(Vec::new());

/// A figure a test builds up as it observes it, recorded for the
/// reliability report when the test ends, however it ends: a failure
/// shows as the figure it had reached, not as a missing line.
pub struct Tally {
    what: &'static str,
    kernel: &'static str,
    /// The figure so far.
    pub value: String,
}

impl Tally {
    /// A figure that starts at `value`.
    pub fn new(what: &'static str, kernel: &'static str, value: String) -> Self {
        Tally {
            what,
            kernel,
            value,
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        fact(self.what, self.kernel, std::mem::take(&mut self.value));
    }
}

/// Records a figure for the reliability report: what, on which kernel.
pub fn fact(what: &'static str, kernel: &'static str, value: String) {
    FACTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((what, kernel, value));
}

impl Report {
    /// Counts the kernel reports in one test's consoles.
    pub fn saw_reports(&mut self, kernel: &'static str, all: usize, documented: usize) {
        match self.reports.iter_mut().find(|r| r.0 == kernel) {
            Some(r) => {
                r.1 += all;
                r.2 += documented;
            }
            None => self.reports.push((kernel, all, documented)),
        }
    }

    /// The reliability report: faults, bad inputs, kernel reports.
    fn reliability(&self) {
        println!();
        println!("reliability report:");
        const REPORTS: &str = "kernel reports (WARNING, BUG, lockdep..)";
        let facts = FACTS.lock().unwrap_or_else(|e| e.into_inner());
        let w = facts
            .iter()
            .map(|(what, _, _)| what.len())
            .fold(REPORTS.len(), usize::max);
        for (what, kernel, value) in facts.iter() {
            println!("  {what:<w$} {kernel:<5} {value}");
        }
        for (kernel, all, documented) in &self.reports {
            println!(
                "  {REPORTS:<w$} {kernel:<5} {all} ({documented} of them documented failures of the reference)"
            );
        }
    }

    /// Records and prints one result.
    pub fn add(&mut self, r: Result) {
        let secs = r.took.as_secs_f64();
        match &r.outcome {
            Outcome::Pass => println!("ok - {}/{} ({secs:.1} s)", r.kernel, r.test),
            Outcome::KnownFailure(why) => println!(
                "ok - {}/{} ({secs:.1} s; reference fails as documented: {why})",
                r.kernel, r.test
            ),
            Outcome::Fail(why) => {
                println!("FAIL - {}/{} ({secs:.1} s): {why}", r.kernel, r.test);
                for l in &r.excerpt {
                    println!("    | {l}");
                }
            }
        }
        self.results.push(r);
    }

    fn cell(&self, test: &str, kernel: &str) -> &'static str {
        match self
            .results
            .iter()
            .find(|r| r.test == test && r.kernel == kernel)
            .map(|r| &r.outcome)
        {
            Some(Outcome::Pass) => "pass",
            Some(Outcome::KnownFailure(_)) => "fails (documented)",
            Some(Outcome::Fail(_)) => "FAIL",
            None => "-",
        }
    }

    /// Number of documented failures of the reference.
    pub fn known(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::KnownFailure(_)))
            .count()
    }

    /// Number of results that failed.
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
            .count()
    }

    /// The results as KTAP, what kselftest and KUnit print and CI systems
    /// read: the reference failing as documented is "ok" with an XFAIL
    /// directive, so it is never mistaken for a plain pass.
    pub fn ktap(&self) -> Vec<String> {
        let mut out = vec![
            "KTAP version 1".to_string(),
            format!("1..{}", self.results.len()),
        ];
        for (i, r) in self.results.iter().enumerate() {
            let n = i + 1;
            let name = format!("{}/{}", r.kernel, r.test);
            let one_line = |s: &str| s.replace('\n', " ");
            out.push(match &r.outcome {
                Outcome::Pass => format!("ok {n} {name}"),
                Outcome::KnownFailure(why) => format!("ok {n} {name} # XFAIL {}", one_line(why)),
                Outcome::Fail(why) => {
                    format!("not ok {n} {name} # {}", one_line(why).replace('#', ""))
                }
            });
        }
        out
    }

    /// Prints the side-by-side table and the closing count line.
    pub fn summary(&self) {
        println!();
        for l in self.ktap() {
            println!("{l}");
        }
        let mut tests: Vec<&str> = Vec::new();
        for r in &self.results {
            if !tests.contains(&r.test) {
                tests.push(r.test);
            }
        }
        println!();
        println!("{:<36} {:<8} {:<8} {:<20}", "test", "ours", "c", "ref");
        for t in tests {
            println!(
                "{:<36} {:<8} {:<8} {:<20}",
                t,
                self.cell(t, "ours"),
                self.cell(t, "c"),
                self.cell(t, "ref")
            );
        }
        self.reliability();
        // Again at the end, where a log cut to its head and tail keeps it:
        // each failure with the last console lines before it.
        for r in &self.results {
            if let Outcome::Fail(why) = &r.outcome {
                println!("\nFAIL {}/{}: {why}", r.kernel, r.test);
                for l in &r.excerpt[r.excerpt.len().saturating_sub(12)..] {
                    println!("    | {l}");
                }
            }
        }
        println!();
        // Expected failures apart, so the last line counts only real
        // passes and failures.
        println!(
            "{} expected failures (XFAIL: the reference failing as documented)",
            self.known()
        );
        println!(
            "{} passed, {} failed",
            self.results.len() - self.failed() - self.known(),
            self.failed()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(kernel: &'static str, outcome: Outcome) -> Result {
        Result {
            test: "t",
            kernel,
            outcome,
            took: Duration::ZERO,
            excerpt: vec![],
        }
    }

    #[test]
    fn known_failure_counts_as_passed() {
        let mut r = Report::default();
        r.add(result("ours", Outcome::Pass));
        r.add(result("ref", Outcome::KnownFailure("x".into())));
        assert_eq!(r.failed(), 0);
        r.add(result("ours", Outcome::Fail("y".into())));
        assert_eq!(r.failed(), 1);
        assert_eq!(r.cell("t", "ref"), "fails (documented)");
        assert_eq!(
            r.ktap(),
            [
                "KTAP version 1",
                "1..3",
                "ok 1 ours/t",
                "ok 2 ref/t # XFAIL x",
                "not ok 3 ours/t # y",
            ]
        );
    }
}
