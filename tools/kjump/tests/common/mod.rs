// SPDX-License-Identifier: GPL-2.0

//! What the image tests share: a seeded generator and images built in
//! memory, in clear or sealed.

// Each test uses part of it.
#![allow(dead_code)]

use kjump::image::{self, encode_index, encode_runs, Chunk, Header, Run, PAGE};
use kjump::seal::{DataKey, Seal};

/// This "kernel's" build id.
pub const OWN: [u8; 20] = [0x42; 20];

/// xorshift64*: fixed seed, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// An edge value or a random one.
    pub fn edge(&mut self) -> u64 {
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
pub fn build(rng: &mut Rng, key: Option<&DataKey>) -> Vec<u8> {
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
        let comp = match key {
            Some(k) => k.seal_chunk(chunks.len() as u64, &comp),
            None => comp,
        };
        let off = img.len() as u64;
        chunks.push(Chunk {
            off,
            comp_len: comp.len() as u32,
            raw_len: raw.len() as u32,
            sum: if key.is_some() { 0 } else { image::sum(&comp) },
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
    let mut h = Header {
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
        seal: key.map(|k| k.seal.clone()),
    };
    if let Some(k) = key {
        let tag = k.tag(&[&image::tagged_header(&h.encode()), &map, &index]);
        h.seal.as_mut().unwrap().tag = tag;
    }
    img[..PAGE as usize].copy_from_slice(&h.encode());
    img
}

/// A key for test images, its nonce prefix from `prefix`.
pub fn key(byte: u8, prefix: u8) -> DataKey {
    let seal = Seal {
        argon_m_kib: 64 << 10,
        argon_t: 3,
        argon_p: 1,
        nonce_prefix: [prefix; 16],
        ..Default::default()
    };
    DataKey::from_bytes(&[byte; 32], seal).unwrap()
}

/// Recomputes every checksum the header names, as far as its offsets
/// still make sense, so that a mutation gets past them; and a sealed
/// image's tag, with `key`.
pub fn fix_sums(img: &mut [u8], key: Option<&DataKey>) {
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
        let sealed = h.seal.is_some();
        if let Ok(chunks) = image::decode_index(&img[r.clone()], sealed) {
            let mut fixed = chunks.clone();
            for c in fixed.iter_mut().filter(|_| !sealed) {
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
    let map = span(h.map_off, h.map_len);
    let index = span(h.index_off, h.index_len);
    if let (Some(k), true, Some(m), Some(i)) = (key, h2.seal.is_some(), map, index) {
        let tag = k.tag(&[&image::tagged_header(&h2.encode()), &img[m], &img[i]]);
        h2.seal.as_mut().unwrap().tag = tag;
    }
    img[..PAGE as usize].copy_from_slice(&h2.encode());
}
