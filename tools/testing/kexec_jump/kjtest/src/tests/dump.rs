// SPDX-License-Identifier: GPL-2.0

//! B's dump of A: the lines of `check_dump_of_a` (scenarios/dump_check.sh)
//! read into figures.

use super::guest::{number_after, Guest};
use super::verdict::Failure;

/// What B found of A's tagged pages in its dump, and whether makedumpfile
/// read the dump.
pub(crate) struct DumpOfA {
    pub tagged: u64,
    pub found: u64,
    pub wrong: u64,
    /// makedumpfile -d 31 wrote a dump (bytes), or why not.
    pub makedumpfile: Result<u64, String>,
    /// makedumpfile --dump-dmesg found A's log line, or why not.
    pub dmesg: Result<(), String>,
}

impl DumpOfA {
    /// "found / wrong / total".
    pub fn tags(&self) -> String {
        format!("{} / {} / {}", self.found, self.wrong, self.tagged)
    }
}

/// Reads B's dump lines; `tagged`: A's "tagfill: tagged N pages" line.
pub(crate) fn dump_of_a(g: &mut Guest, tagged: &str) -> Result<DumpOfA, Failure> {
    let tagged = number_after(tagged, "tagged ")
        .ok_or_else(|| g.fail(format!("no tag count from A: {tagged}")))?;
    let l = g.step("KJ: B tagscan:", 600)?;
    let (found, wrong) = match (number_after(&l, "found "), number_after(&l, "wrong ")) {
        (Some(f), Some(w)) => (f, w),
        _ => return Err(g.fail(format!("no tag figures: {l}"))),
    };
    println!("    {}", l.trim_start_matches("KJ: B "));
    let l = g.step("KJ: B makedumpfile", 600)?;
    let bytes = number_after(&l, "bytes=").unwrap_or(0);
    let makedumpfile = if l.contains("rc=0 ") && bytes >= 1 << 20 {
        Ok(bytes)
    } else {
        Err(l.clone())
    };
    let l = g.step("KJ: B dump-dmesg", 300)?;
    let dmesg = if l.contains("rc=0 ") && number_after(&l, "A's line: ").unwrap_or(0) >= 1 {
        Ok(())
    } else {
        Err(l.clone())
    };
    Ok(DumpOfA {
        tagged,
        found,
        wrong,
        makedumpfile,
        dmesg,
    })
}
