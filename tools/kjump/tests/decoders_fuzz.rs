// SPDX-License-Identifier: GPL-2.0

//! The image decoders under fuzzing: an image read back is untrusted
//! input. From a fixed seed, valid images are built in memory and
//! mutated with the structure in mind (header words, map and index
//! entries set to edge values, bytes flipped, the image cut short), the
//! checksums (and a sealed image's tag, with its key) mostly recomputed so
//! that the mutation reaches the checks behind them; each is run through
//! `open()` and `load_chunks()`. Half the images are sealed. No
//! input may panic (overflow checks are on for kjump), none may allocate
//! more than [`ALLOC_BOUND`] at once, and every segment handed on must lie
//! in the image's page map.

mod common;

use common::{build, fix_sums, Rng, OWN};
use kjump::image::{Header, CHUNK_RAW_MAX, PAGE};
use kjump::resume::{load_chunks, open};
use kjump::seal::DataKey;
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
/// This "kernel's" RAM.
const RAM_PAGES: u64 = 1 << 16;

/// The key of the sealed images, with the nonce prefix their header
/// names (as the resume gets it: unwrapped, the seal from the header).
fn key_for(block0: &[u8]) -> Option<DataKey> {
    let seal = Header::decode(block0).ok()?.seal?;
    DataKey::from_bytes(&[7; 32], seal).ok()
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
        let key = key_for(&img[..PAGE as usize]);
        fix_sums(img, key.as_ref());
    }
}

/// Runs one input through the decoders: accepted or refused, nothing
/// else; every segment handed on inside the map.
fn run_one(img: &[u8]) -> bool {
    let key = img.get(..PAGE as usize).and_then(key_for);
    let Ok(image) = open(img, &OWN, RAM_PAGES, key) else {
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
    assert!(run_one(&build(&mut rng, None)), "a valid image was refused");
    let sealed = common::key(7, 1);
    assert!(
        run_one(&build(&mut rng, Some(&sealed))),
        "a valid sealed image was refused"
    );
    let (mut tried_sealed, mut accepted_sealed) = (0u64, 0u64);
    while tried < 200_000 && start.elapsed().as_secs() < 60 {
        // Half sealed, each with its own nonce prefix.
        let key = (rng.below(2) == 0).then(|| common::key(7, rng.next() as u8));
        let mut img = build(&mut rng, key.as_ref());
        for _ in 0..1 + rng.below(3) {
            if img.len() >= PAGE as usize {
                mutate(&mut rng, &mut img);
            }
        }
        LARGEST.store(0, Ordering::Relaxed);
        let ok = run_one(&img);
        accepted += u64::from(ok);
        if key.is_some() {
            tried_sealed += 1;
            accepted_sealed += u64::from(ok);
        }
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest <= ALLOC_BOUND,
            "input {tried} made an allocation of {largest} bytes"
        );
        tried += 1;
    }
    println!(
        "image fuzz: {tried} mutated images tried from a fixed seed ({tried_sealed} sealed), {accepted} accepted ({accepted_sealed} sealed), {} refused, none panicked or allocated over {ALLOC_BOUND} bytes",
        tried - accepted
    );
    assert!(tried >= 1000, "only {tried} inputs in the time allowed");
}
