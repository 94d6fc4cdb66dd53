// SPDX-License-Identifier: GPL-2.0

//! This kernel's memory as a leak check reads it: free pages (the per-CPU
//! lists included) and the two kinds of kernel memory that move without a
//! leak, kernel stacks (worker threads come and go) and unreclaimable
//! slab, each in kB, taken after the page cache and reclaimable slab are
//! dropped so that they do not move the free figure.

use std::fs;

/// One reading of /proc/meminfo and /proc/zoneinfo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemStat {
    /// MemFree plus the pages on the per-CPU free lists.
    pub free: u64,
    /// KernelStack.
    pub stacks: u64,
    /// SUnreclaim.
    pub slab: u64,
}

impl MemStat {
    /// Drops clean caches, then reads.
    pub fn now() -> Result<Self, String> {
        crate::sys::sync();
        fs::write("/proc/sys/vm/drop_caches", "3").map_err(|e| format!("drop_caches: {e}"))?;
        // The counters keep per-CPU deltas (up to a threshold of about a
        // hundred pages each) until they fold them in: fold them now, or
        // the figures move by hundreds of kB with nothing allocated.
        fs::write("/proc/sys/vm/stat_refresh", "1").map_err(|e| format!("stat_refresh: {e}"))?;
        let meminfo = fs::read_to_string("/proc/meminfo").map_err(|e| format!("meminfo: {e}"))?;
        let zoneinfo =
            fs::read_to_string("/proc/zoneinfo").map_err(|e| format!("zoneinfo: {e}"))?;
        Self::parse(&meminfo, &zoneinfo)
            .ok_or_else(|| "no MemFree, KernelStack or SUnreclaim".into())
    }

    fn parse(meminfo: &str, zoneinfo: &str) -> Option<Self> {
        Some(MemStat {
            free: field(meminfo, "MemFree")? + pcp_pages(zoneinfo) * 4,
            stacks: field(meminfo, "KernelStack")?,
            slab: field(meminfo, "SUnreclaim")?,
        })
    }

    /// "free F kB stacks S kB slab U kB", as the harness reads it.
    pub fn line(&self) -> String {
        format!(
            "free {} kB stacks {} kB slab {} kB",
            self.free, self.stacks, self.slab
        )
    }
}

/// The value in kB of `name` in a /proc/meminfo text.
pub fn field(meminfo: &str, name: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let (n, rest) = l.split_once(':')?;
        (n == name).then(|| rest.split_whitespace().next()?.parse().ok())?
    })
}

/// Pages on the per-CPU free lists, summed from a /proc/zoneinfo text.
pub fn pcp_pages(zoneinfo: &str) -> u64 {
    zoneinfo
        .lines()
        .filter_map(|l| l.trim().strip_prefix("count:"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcp_counts_are_summed() {
        let z = "Node 0, zone DMA32\n  pagesets\n    cpu: 0\n              count: 10\n              high:  20\n    cpu: 1\n              count: 5\n";
        assert_eq!(pcp_pages(z), 15);
    }

    #[test]
    fn meminfo_parses() {
        let text = "MemTotal: 1000 kB\nMemFree: 234 kB\nKernelStack: 16 kB\nSUnreclaim: 8 kB\n";
        assert_eq!(field(text, "MemFree"), Some(234));
        assert_eq!(field(text, "Cached"), None);
        let s = MemStat::parse(text, "count: 2\n").unwrap();
        assert_eq!(s.line(), "free 242 kB stacks 16 kB slab 8 kB");
    }
}
