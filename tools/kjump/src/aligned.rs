// SPDX-License-Identifier: GPL-2.0

//! Page-aligned buffers, for devices opened for O_DIRECT I/O.

/// A page-aligned buffer, for O_DIRECT reads and writes.
pub struct AlignedBuf {
    ptr: *mut u8,
    pub cap: usize,
}

impl AlignedBuf {
    const ALIGN: usize = 4096;

    /// `cap` zeroed bytes (at least one page).
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(Self::ALIGN);
        let layout = std::alloc::Layout::from_size_align(cap, Self::ALIGN).expect("a valid layout");
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Self { ptr, cap }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` holds `cap` initialized bytes, owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.cap) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` holds `cap` initialized bytes, owned by `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.cap) }
    }
}

// SAFETY: the buffer owns its allocation alone, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.cap, Self::ALIGN).expect("as in new");
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, layout) };
    }
}
