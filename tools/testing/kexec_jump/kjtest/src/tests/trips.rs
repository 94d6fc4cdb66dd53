// SPDX-License-Identifier: GPL-2.0

//! The round-trip driver shared by the kexec-tools tests (jump.rs) and
//! the kjump tests (kjump.rs): what every trip A -> B -> A checks, with
//! one check of A's free memory over the trips.

use super::guest::{number_after, Guest};
use super::verdict::{Failure, TestResult, Verdict};

/// What one scenario's round trips check beside what every trip does.
/// The hooks run in the order the scenario prints its lines.
pub(super) trait Trips {
    /// B's side of trip `i`, after A's "jumping i", up to B's jump back.
    /// `Some` ends the trips with that verdict (a documented failure of
    /// the reference).
    fn b_side(&mut self, g: &mut Guest, i: u32) -> Result<Option<Verdict>, Failure>;

    /// Checks A's "resumed i" line, and what A says before its memory
    /// check.
    fn a_resumed(&mut self, g: &mut Guest, i: u32, line: &str) -> Result<(), Failure>;

    /// What A says after its memory check, before its free memory.
    fn a_checked(&mut self, _g: &mut Guest, _i: u32) -> Result<(), Failure> {
        Ok(())
    }

    /// What A does after trip `i` is checked, before its next jump.
    fn a_between(&mut self, _g: &mut Guest, _i: u32) -> Result<(), Failure> {
        Ok(())
    }
}

/// `trips` round trips, from A's first jump to "A done": B's side, then
/// A back with its process memory intact, after the first trip its
/// tagged pages where they were (with `tagged`), and A's free memory
/// kept over the trips.
pub(super) fn round_trips(
    g: &mut Guest,
    trips: u32,
    tagged: bool,
    t: &mut impl Trips,
) -> TestResult {
    let mut first = 0;
    for i in 1..=trips {
        g.step(&format!("KJ: A jumping {i}"), 120)?;
        if let Some(v) = t.b_side(g, i)? {
            return Ok(v);
        }
        g.step("KJ: B jumping back", 120)?;
        let back = g.step(&format!("KJ: A resumed {i} "), 180)?;
        t.a_resumed(g, i, &back)?;
        g.step("KJ: A memory intact", 60)?;
        if i == 1 && tagged {
            let l = g.step("KJ: A tagfill: moved", 60)?;
            if !l.contains("moved 0 of") {
                return Err(g.fail(format!("tagged pages moved, the count is void: {l}")));
            }
        }
        t.a_checked(g, i)?;
        if i == 1 {
            first = free_kb(g, "KJ: A MemFree after first")?;
        }
        t.a_between(g, i)?;
    }
    let last = free_kb(g, "KJ: A MemFree after last")?;
    if let Some(lost) = free_lost(first, last, trips) {
        return Err(g.fail(format!(
            "A's free memory fell by {lost} kB over {trips} round trips"
        )));
    }
    // With one trip both figures are after it: nothing to compare.
    if trips > 1 {
        println!("    A's free memory after trip 1: {first} kB, after trip {trips}: {last} kB");
    }
    g.step("KJ: A done", 60)?;
    Ok(Verdict::Pass)
}

/// A's free memory (kB, counting the per-CPU lists) on its line `needle`;
/// a line without the figure fails: the check would be void.
fn free_kb(g: &mut Guest, needle: &str) -> Result<u64, Failure> {
    let l = g.step(needle, 60)?;
    number_after(&l, "free: ").ok_or_else(|| g.fail("no MemFree figures from the guest".into()))
}

/// Trips from which on A's free memory is compared: a leak adds up over
/// many, while over a few one-off growth moves it too (and B's reload in
/// kjump_4_cpus_5_gib_reload).
const FREE_CHECK_TRIPS: u32 = 10;

/// The kB A lost over `trips` trips, `first` and `last` kB free after
/// the first and the last, if that is more than 1 MiB.
fn free_lost(first: u64, last: u64, trips: u32) -> Option<u64> {
    (trips >= FREE_CHECK_TRIPS && last + 1024 < first).then(|| first - last)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn free_memory_may_move_by_1_mib() {
        assert_eq!(free_lost(900_000, 898_976, 20), None);
        assert_eq!(free_lost(900_000, 898_975, 20), Some(1025));
        assert_eq!(free_lost(900_000, 910_000, 20), None);
        assert_eq!(free_lost(900_000, 800_000, 4), None);
    }
}
