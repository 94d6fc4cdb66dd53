// SPDX-License-Identifier: GPL-2.0

//! Page-aligned buffers, for devices opened for O_DIRECT I/O.

use memmap2::MmapMut;

/// A page-aligned buffer, for O_DIRECT reads and writes: an anonymous
/// mapping, so aligned and zeroed by the kernel.
pub struct AlignedBuf {
    map: MmapMut,
    pub cap: usize,
}

impl AlignedBuf {
    /// `cap` zeroed bytes (at least one page).
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(4096);
        let map = MmapMut::map_anon(cap).unwrap_or_else(|e| panic!("{cap} bytes of memory: {e}"));
        Self { map, cap }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }
}
