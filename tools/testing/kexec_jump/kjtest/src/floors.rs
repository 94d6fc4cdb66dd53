// SPDX-License-Identifier: GPL-2.0

//! Benchmark floors, judged by code, and the raw rounds they were judged
//! on, kept for the documentation's tables.
//!
//! A floor bounds the ratio of two series, round by round (a[i] / b[i]).
//! It is met when the median of the paired ratios is within it. When the
//! median misses, the floor is missed *beyond the spread* only if the two
//! series do not overlap once scaled by the bound (every value of `a`
//! beyond every value of `bound * b`): only then does the run show the
//! miss; otherwise one run cannot tell, and that is printed, not failed.

use crate::stats::{paired, Spread};
use std::{fmt::Write as _, fs, path::PathBuf};

/// The bound a floor sets on a / b.
#[derive(Clone, Copy)]
pub enum Bound {
    /// a / b >= x: a is at least x times b.
    AtLeast(f64),
    /// a / b <= x: a is at most x times b.
    AtMost(f64),
}

/// How a floor came out.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Met,
    /// The median missed it, the spread does not show a miss.
    WithinSpread,
    /// Missed in every pairing of the two ranges.
    Missed,
}

/// Judges `a / b` against `bound`; returns the outcome and one line that
/// says what was compared and how it came out.
pub fn judge(name: &str, a: &[f64], b: &[f64], bound: Bound) -> (Outcome, String) {
    let (Some(sa), Some(sb), Some(r)) = (Spread::of(a), Spread::of(b), Spread::of(&paired(a, b)))
    else {
        return (Outcome::Missed, format!("floor {name}: no figures"));
    };
    let (met, beyond, want) = match bound {
        Bound::AtLeast(x) => (r.median >= x, sa.max < x * sb.min, format!(">= {x}")),
        Bound::AtMost(x) => (r.median <= x, sa.min > x * sb.max, format!("<= {x}")),
    };
    let outcome = if met {
        Outcome::Met
    } else if beyond {
        Outcome::Missed
    } else {
        Outcome::WithinSpread
    };
    let word = match outcome {
        Outcome::Met => "met",
        Outcome::WithinSpread => "missed by the median, within the spread",
        Outcome::Missed => "MISSED beyond the spread",
    };
    let line = format!(
        "floor {name}: want {want}, paired {}x over {} rounds: {word}",
        r.show(1.0, 2),
        a.len().min(b.len())
    );
    (outcome, line)
}

/// Where the raw rounds of the benchmarks go: build/bench/.
pub fn dir() -> PathBuf {
    crate::root().join("build/bench")
}

/// Writes `series` (name, one value per round) to build/bench/NAME.tsv,
/// one line per value: "series<TAB>round<TAB>value".
pub fn record(name: &str, series: &[(&str, &[f64])]) -> Result<(), String> {
    let out = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .current_dir(crate::root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let mut text = format!(
        "# run: {} at {}\n# series\tround\tvalue\n",
        out("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        out("git", &["rev-parse", "--short", "HEAD"])
    );
    for (s, values) in series {
        for (i, v) in values.iter().enumerate() {
            let _ = writeln!(text, "{s}\t{}\t{v}", i + 1);
        }
    }
    let dir = dir();
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}.tsv"));
    fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Rounds read back from build/bench/NAME.tsv.
pub struct Recorded {
    /// "DATE at COMMIT" of the run that wrote them.
    pub run: String,
    /// The values of each series, in order.
    pub series: Vec<(String, Vec<f64>)>,
}

impl Recorded {
    /// The values of the series named `name`.
    pub fn get(&self, name: &str) -> Result<&[f64], String> {
        self.series
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .ok_or_else(|| format!("no series '{name}' in the recorded rounds"))
    }
}

/// Reads build/bench/NAME.tsv back.
pub fn load(name: &str) -> Result<Recorded, String> {
    let path = dir().join(format!("{name}.tsv"));
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let run = text
        .lines()
        .find_map(|l| l.strip_prefix("# run: "))
        .unwrap_or("an unknown run")
        .to_string();
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.split('\t');
        let (Some(s), Some(_), Some(v)) = (f.next(), f.next(), f.next()) else {
            return Err(format!("{}: bad line '{line}'", path.display()));
        };
        let v: f64 = v
            .parse()
            .map_err(|_| format!("{}: bad value '{line}'", path.display()))?;
        match out.iter_mut().find(|(n, _)| n == s) {
            Some((_, values)) => values.push(v),
            None => out.push((s.to_string(), vec![v])),
        }
    }
    Ok(Recorded { run, series: out })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn floors_judged_against_the_spread() {
        let at_least = Bound::AtLeast(10.0);
        assert_eq!(
            judge("x", &[100.0, 120.0], &[5.0, 6.0], at_least).0,
            Outcome::Met
        );
        // Median ratio 9.5, but 110 >= 10 * 9: the ranges overlap.
        assert_eq!(
            judge("x", &[90.0, 95.0, 110.0], &[10.0, 10.0, 9.0], at_least).0,
            Outcome::WithinSpread
        );
        assert_eq!(
            judge("x", &[50.0, 60.0], &[10.0, 9.0], at_least).0,
            Outcome::Missed
        );
        let at_most = Bound::AtMost(1.0);
        assert_eq!(
            judge("y", &[1.0, 2.0], &[2.0, 2.0], at_most).0,
            Outcome::Met
        );
        assert_eq!(
            judge("y", &[3.0, 2.5], &[2.0, 2.4], at_most).0,
            Outcome::Missed
        );
        assert_eq!(judge("y", &[], &[1.0], at_most).0, Outcome::Missed);
    }
}
