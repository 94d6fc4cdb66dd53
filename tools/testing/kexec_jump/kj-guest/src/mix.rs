// SPDX-License-Identifier: GPL-2.0

//! A workload that is not random bytes, for the hibernation benchmark:
//! pages of text, zeros, machine code and random data, a quarter each,
//! in turn. The same seed gives the same bytes on the host and in a
//! guest (the code pages are this static program's own file).

use std::{fs, io};

/// Bytes in a page.
pub const PAGE: usize = 4096;

const WORDS: [&str; 32] = [
    "the", "kernel", "jumps", "back", "into", "memory", "of", "a", "process", "that", "waits",
    "for", "its", "devices", "to", "resume", "and", "writes", "pages", "image", "on", "disk",
    "while", "power", "is", "off", "state", "saved", "restored", "exactly", "where", "it",
];

/// The machine code the code pages copy: this program's file.
pub fn code() -> io::Result<Vec<u8>> {
    let exe = fs::read("/proc/self/exe")?;
    if exe.len() < 2 * PAGE {
        return Err(io::Error::other("/proc/self/exe is smaller than two pages"));
    }
    Ok(exe)
}

/// Fills `out` (a page) with page `page` of the workload for `seed`.
pub fn page(seed: u64, page: u64, code: &[u8], out: &mut [u8]) {
    match page % 4 {
        0 => {
            let mut at = 0;
            let mut n = page * 1024;
            while at < out.len() {
                let w = WORDS[(crate::pattern(seed, n) % WORDS.len() as u64) as usize];
                let sep: &[u8] = if n % 12 == 11 { b".\n" } else { b" " };
                for &b in w.as_bytes().iter().chain(sep) {
                    if at < out.len() {
                        out[at] = b;
                        at += 1;
                    }
                }
                n += 1;
            }
        }
        1 => out.fill(0),
        2 => {
            let pages = (code.len() / PAGE) as u64;
            let at = ((page / 4) % pages) as usize * PAGE;
            out.copy_from_slice(&code[at..at + PAGE]);
        }
        _ => {
            for (i, w) in out.chunks_exact_mut(8).enumerate() {
                w.copy_from_slice(&crate::pattern(seed, page * 512 + i as u64).to_le_bytes());
            }
        }
    }
}

/// A page of memory, aligned as one: a zero page of the workload is then
/// a whole physical page of zeros (a heap buffer starts mid-page).
#[repr(C, align(4096))]
#[derive(Clone, PartialEq, Debug)]
pub struct Page(pub [u8; PAGE]);

/// `mib` MiB of the workload, page after page.
pub fn fill(seed: u64, mib: usize, code: &[u8]) -> Vec<Page> {
    // Not zeroed memory: the compiler would drop the zero pages' writes,
    // and they would stay unallocated instead of pages holding zeros.
    let mut pages = vec![Page([0xa5; PAGE]); mib << 8];
    for (i, p) in pages.iter_mut().enumerate() {
        page(seed, i as u64, code, &mut p.0);
    }
    pages
}

/// Byte offset of the first difference of `pages` from the workload.
pub fn first_mismatch(seed: u64, pages: &[Page], code: &[u8]) -> Option<usize> {
    let mut want = [0u8; PAGE];
    pages.iter().enumerate().find_map(|(i, p)| {
        page(seed, i as u64, code, &mut want);
        let p = std::hint::black_box(&p.0);
        p.iter()
            .zip(want)
            .position(|(a, b)| *a != b)
            .map(|at| i * PAGE + at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_each_and_repeatable() {
        let code: Vec<u8> = (0..4 * PAGE).map(|i| (i * 7) as u8).collect();
        let a = fill(5, 1, &code);
        assert_eq!(a, fill(5, 1, &code));
        assert_ne!(a, fill(6, 1, &code));
        assert_eq!(first_mismatch(5, &a, &code), None);
        assert_eq!(a.as_ptr() as usize % PAGE, 0);
        assert!(a[0].0.iter().all(|b| b.is_ascii()));
        assert!(a[1].0.iter().all(|&b| b == 0));
        assert_eq!(&a[2].0[..], &code[..PAGE]);
        assert!(a[3].0.iter().filter(|&&b| b == 0).count() < 64);
        let mut b = a.clone();
        b[3].0[9] ^= 1;
        assert_eq!(first_mismatch(5, &b, &code), Some(3 * PAGE + 9));
    }
}
