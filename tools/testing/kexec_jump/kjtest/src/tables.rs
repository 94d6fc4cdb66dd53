// SPDX-License-Identifier: GPL-2.0

//! `kjtest tables NAME`: the documentation's table for a benchmark, made
//! from the rounds its last run recorded (build/bench/NAME.tsv), with the
//! floors judged again from them. scripts/update-bench-doc.sh puts the
//! output into the testing guide and the admin guide, so no figure there
//! is typed by hand.

use crate::floors::{judge, load, Bound, Recorded};
use crate::stats::{show, verdict};

/// Rows "what | a | b | a/b paired" for the series "A: what", "B: what".
fn paired_rows(r: &Recorded, sides: [&str; 2], rows: &[(&str, &str)]) -> Result<String, String> {
    let mut out = format!(
        "| | {} | {} | {}/{}, paired |\n| --- | --- | --- | --- |\n",
        sides[0], sides[1], sides[0], sides[1]
    );
    for (what, unit) in rows {
        let a = r.get(&format!("{}: {what}", sides[0]))?;
        let b = r.get(&format!("{}: {what}", sides[1]))?;
        out += &format!(
            "| {what} | {} {unit} | {} {unit} | {} |\n",
            show(a, 1.0, 1),
            show(b, 1.0, 1),
            verdict(a, b)
        );
    }
    Ok(out)
}

fn switch(r: &Recorded) -> Result<String, String> {
    let (r16, r256, s256) = (
        r.get("resident 16 MiB")?,
        r.get("resident 256 MiB")?,
        r.get("swapped 256 MiB")?,
    );
    let mut out = String::from("| B | one switch, Mcycles |\n| --- | --- |\n");
    for (name, v) in [
        ("resident 16 MiB", r16),
        ("resident 256 MiB", r256),
        ("swapped 256 MiB", s256),
    ] {
        out += &format!("| {name} | {} |\n", show(v, 1.0, 1));
    }
    out += "\n";
    for (_, line) in crate::switch_bench::judged_floors(r16, r256, s256) {
        out += &format!("- {line}\n");
    }
    Ok(out)
}

/// The rows of a hibernation table: two times, then the image's size.
const HIBERNATE_ROWS: [(&str, &str); 3] = [
    ("hibernate start -> powered off", "s"),
    ("boot -> A running again", "s"),
    ("image on the device", "MiB"),
];

/// A hibernation table of `sides[0]` against `sides[1]`, with the floor
/// `bound` judged on the first `judged` rows.
fn hibernation(
    r: &Recorded,
    sides: [&str; 2],
    judged: usize,
    bound: f64,
) -> Result<String, String> {
    let mut out = paired_rows(r, sides, &HIBERNATE_ROWS)?;
    out += "\n";
    for (what, _) in &HIBERNATE_ROWS[..judged] {
        let (a, b) = (
            r.get(&format!("{}: {what}", sides[0]))?,
            r.get(&format!("{}: {what}", sides[1]))?,
        );
        let name = format!("{}/{}, {what}", sides[0], sides[1]);
        out += "- ";
        out += &judge(&name, a, b, Bound::AtMost(bound)).1;
        out += "\n";
    }
    Ok(out)
}

fn ladder(r: &Recorded) -> Result<String, String> {
    let mut rows: Vec<(&str, &str)> = crate::bench::PHASES.iter().map(|p| (*p, "ms")).collect();
    rows.push(("whole ladder", "ms"));
    let mut out = paired_rows(r, ["Rust", "C"], &rows)?;
    out += "\n- ";
    let (a, b) = (r.get("Rust: whole ladder")?, r.get("C: whole ladder")?);
    out += &judge("Rust ladder / C ladder", a, b, Bound::AtMost(1.0)).1;
    out += "\n";
    Ok(out)
}

/// The table for `name` (switch, hibernate or ladder), headed by the run
/// it comes from.
pub fn table(name: &str) -> Result<String, String> {
    let r = load(name)?;
    let body = match name {
        "switch" => switch(&r)?,
        // kjump no slower and its image no larger than the kernel's.
        "hibernate" | "hibernate-mixed" => hibernation(&r, ["kjump", "kernel"], 3, 1.0)?,
        // Sealing costs at most 10% of either time.
        "hibernate-sealed" | "hibernate-sealed-max" => {
            hibernation(&r, ["sealed", "clear"], 2, 1.1)?
        }
        "ladder" => ladder(&r)?,
        _ => {
            return Err(format!(
                "no table '{name}' (switch, hibernate, hibernate-mixed, hibernate-sealed, hibernate-sealed-max, ladder)"
            ))
        }
    };
    let rounds = r.series.first().map_or(0, |(_, v)| v.len());
    let by = match name {
        "hibernate-mixed" => "`kjtest hibernate-bench 256 3 --mixed`",
        "hibernate-sealed" => "`kjtest sealed-bench 256 3`",
        "hibernate-sealed-max" => "`kjtest sealed-bench 256 3 --cpu-max`",
        _ => "the test command",
    };
    Ok(format!(
        "From {by}, run of {} ({rounds} rounds, min / median / max):\n\n{body}",
        r.run
    ))
}
