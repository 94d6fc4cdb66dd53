// SPDX-License-Identifier: GPL-2.0

//! The image decoders under fuzzing: an image read back is untrusted
//! input. From a fixed seed, valid images are built in memory and
//! mutated with the structure in mind (header words, map and index
//! entries set to edge values, bytes flipped, the image cut short), the
//! checksums mostly recomputed so that the mutation reaches the checks
//! behind them; each is run through `open()` and `load_chunks()`. No
//! input may panic (overflow checks are on for kjump), none may allocate
//! more than [`ALLOC_BOUND`] at once, and every segment handed on must lie
//! in the image's page map.

use kjump::image::{self, encode_index, encode_runs, Chunk, Header, Run, CHUNK_RAW_MAX, PAGE};
use kjump::resume::{load_chunks, open};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest single allocation seen, over all threads.
static LARGEST: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The bound on any one allocation the decoders make: a chunk's
/// decompressed bytes, and a page map of MAX_RANGES ranges (4 MiB).
const ALLOC_BOUND: usize = 2 * CHUNK_RAW_MAX;
/// This "kernel's" RAM and build id.
const RAM_PAGES: u64 = 1 << 16;
const OWN: [u8; 20] = [0x42; 20];

/// xorshift64*: fixed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// An edge value or a random one.
    fn edge(&mut self) -> u64 {
        const EDGES: [u64; 9] = [
            0,
            1,
            15,
            16,
            4096,
            1 << 32,
            u64::MAX,
            u64::MAX / 16,
            1 << 40,
        ];
        match self.below(3) {
            0 => self.next(),
            _ => EDGES[self.below(EDGES.len() as u64) as usize],
        }
    }
}

/// A valid image of a few runs in a few chunks, some compressed.
fn build(rng: &mut Rng) -> Vec<u8> {
    let mut runs = Vec::new();
    let mut pfn = 256 + rng.below(64);
    for _ in 0..1 + rng.below(6) {
        let pages = 1 + rng.below(5);
        runs.push(Run { pfn, pages });
        pfn += pages + rng.below(32);
    }
    let mut img = vec![0u8; PAGE as usize];
    let mut chunks = Vec::new();
    let per_chunk = 1 + rng.below(3) as usize;
    let mut data_pages = 0;
    for group in runs.chunks(per_chunk) {
        let mut raw = Vec::new();
        for r in group {
            raw.extend_from_slice(&encode_runs(&[*r]));
            for i in 0..r.pages * PAGE {
                // Compressible or not, by run.
                raw.push(if r.pfn % 2 == 0 {
                    (i / 64) as u8
                } else {
                    rng.next() as u8
                });
            }
            data_pages += r.pages;
        }
        let comp = Some(lz4_flex::block::compress(&raw))
            .filter(|c| c.len() < raw.len())
            .unwrap_or_else(|| raw.clone());
        let off = img.len() as u64;
        chunks.push(Chunk {
            off,
            comp_len: comp.len() as u32,
            raw_len: raw.len() as u32,
            sum: image::sum(&comp),
        });
        img.extend_from_slice(&comp);
        img.resize(img.len().div_ceil(PAGE as usize) * PAGE as usize, 0);
    }
    let map = encode_runs(&runs);
    let index = encode_index(&chunks);
    let map_off = img.len() as u64;
    img.extend_from_slice(&map);
    img.resize(img.len().div_ceil(PAGE as usize) * PAGE as usize, 0);
    let index_off = img.len() as u64;
    img.extend_from_slice(&index);
    img.resize(img.len().div_ceil(PAGE as usize) * PAGE as usize, 0);
    let h = Header {
        build_id: OWN.to_vec(),
        entry: 0x100_0000,
        nonce: rng.next(),
        nr_ranges: runs.len() as u64,
        map_off,
        map_len: map.len() as u64,
        map_sum: image::sum(&map),
        nr_chunks: chunks.len() as u64,
        index_off,
        index_len: index.len() as u64,
        index_sum: image::sum(&index),
        image_end: img.len() as u64,
        used_pages: runs.iter().map(|r| r.pages).sum(),
        data_pages,
        free_pages: 0,
        machine: 1,
        filesystems: Vec::new(),
    };
    img[..PAGE as usize].copy_from_slice(&h.encode());
    img
}

/// Recomputes every checksum the header names, as far as its offsets
/// still make sense, so that a mutation gets past them.
fn fix_sums(img: &mut [u8]) {
    let Ok(h) = Header::decode(&img[..PAGE as usize]).or_else(|_| {
        let mut b = img[..PAGE as usize].to_vec();
        b[..8].copy_from_slice(image::MAGIC);
        let n = image::HEADER_SUMMED;
        let s = image::sum(&b[..n]);
        b[n..n + 8].copy_from_slice(&s.to_le_bytes());
        Header::decode(&b)
    }) else {
        return;
    };
    let total = img.len();
    let span = |off: u64, len: u64| {
        let o = usize::try_from(off).ok()?;
        let e = o.checked_add(usize::try_from(len).ok()?)?;
        (e <= total).then_some(o..e)
    };
    let mut h2 = h.clone();
    if let Some(r) = span(h.index_off, h.index_len) {
        if let Ok(chunks) = image::decode_index(&img[r.clone()]) {
            let mut fixed = chunks.clone();
            for c in &mut fixed {
                if let Some(cr) = span(c.off, u64::from(c.comp_len)) {
                    c.sum = image::sum(&img[cr]);
                }
            }
            let enc = encode_index(&fixed);
            img[r.clone()].copy_from_slice(&enc);
        }
        h2.index_sum = image::sum(&img[r]);
    }
    if let Some(r) = span(h.map_off, h.map_len) {
        h2.map_sum = image::sum(&img[r]);
    }
    img[..PAGE as usize].copy_from_slice(&h2.encode());
}

/// One mutation of a valid image.
fn mutate(rng: &mut Rng, img: &mut Vec<u8>) {
    // An earlier mutation may have left no header to work from.
    let h = Header::decode(&img[..PAGE as usize]).ok();
    let pick = match h {
        Some(_) => rng.below(6),
        None => 3 + rng.below(3),
    };
    match (pick, h) {
        // A header word.
        (0, Some(mut h)) => {
            let v = rng.edge();
            match rng.below(12) {
                0 => h.nr_ranges = v,
                1 => h.map_off = v,
                2 => h.map_len = v,
                3 => h.nr_chunks = v,
                4 => h.index_off = v,
                5 => h.index_len = v,
                6 => h.image_end = v,
                7 => h.used_pages = v,
                8 => h.data_pages = v,
                9 => h.entry = v,
                10 => h.build_id.clear(),
                _ => h.free_pages = v,
            }
            img[..PAGE as usize].copy_from_slice(&h.encode());
        }
        // A word of the page map or of the chunk index.
        (1 | 2, Some(h)) => {
            let (off, len) = match rng.below(2) {
                0 => (h.map_off, h.map_len),
                _ => (h.index_off, h.index_len),
            };
            let at = off.saturating_add(rng.below(len / 4) * 4) as usize;
            if len >= 8 && at < img.len() {
                let v = rng.edge().to_le_bytes();
                let n = (img.len() - at).min(if rng.below(2) == 0 { 4 } else { 8 });
                img[at..at + n].copy_from_slice(&v[..n]);
            }
        }
        // Bytes anywhere.
        (3 | 4, _) => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(img.len() as u64) as usize;
                img[at] ^= 1 << rng.below(8);
            }
        }
        // Cut short.
        _ => {
            let len = rng.below(img.len() as u64) as usize;
            img.truncate(len.max(1));
        }
    }
    if rng.below(8) != 0 && img.len() >= PAGE as usize {
        fix_sums(img);
    }
}

/// Runs one input through the decoders: accepted or refused, nothing
/// else; every segment handed on inside the map.
fn run_one(img: &[u8]) -> bool {
    let Ok(image) = open(img, &OWN, RAM_PAGES) else {
        return false;
    };
    load_chunks(&image, |segs| {
        for s in segs {
            let (mem, memsz) = s.dest();
            assert!(
                image.in_map(mem / PAGE, memsz / PAGE),
                "a segment outside the map passed"
            );
            assert_eq!(s.bufsz() as u64, memsz);
        }
        Ok(())
    })
    .is_ok()
}

#[test]
fn decoders_survive_mutated_images() {
    let mut rng = Rng(0x6b6a_756d_7066_757a);
    let (mut tried, mut accepted) = (0u64, 0u64);
    let start = std::time::Instant::now();
    // A valid image first: the harness itself must accept it.
    assert!(run_one(&build(&mut rng)), "a valid image was refused");
    while tried < 200_000 && start.elapsed().as_secs() < 60 {
        let mut img = build(&mut rng);
        for _ in 0..1 + rng.below(3) {
            if img.len() >= PAGE as usize {
                mutate(&mut rng, &mut img);
            }
        }
        LARGEST.store(0, Ordering::Relaxed);
        accepted += u64::from(run_one(&img));
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest <= ALLOC_BOUND,
            "input {tried} made an allocation of {largest} bytes"
        );
        tried += 1;
    }
    println!(
        "image fuzz: {tried} mutated images tried from a fixed seed, {accepted} accepted, {} refused, none panicked or allocated over {ALLOC_BOUND} bytes",
        tried - accepted
    );
    assert!(tried >= 1000, "only {tried} inputs in the time allowed");
}
