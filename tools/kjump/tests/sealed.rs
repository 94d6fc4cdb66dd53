// SPDX-License-Identifier: GPL-2.0

//! Sealed images: one round-trips, and every change an attacker without
//! the key can make is refused with its reason, even with every checksum
//! recomputed: a bit in a chunk, the page map, the chunk index or the
//! header; a chunk swapped with another of the same image; a chunk from
//! another image under another key.

mod common;

use common::{build, fix_sums, key, Rng, OWN};
use kjump::image::{Header, PAGE};
use kjump::resume::{load_chunks, open};
use kjump::seal::DataKey;

/// Where the image on `img` puts its pages, or why it is refused.
fn resume(img: &[u8], k: Option<DataKey>) -> Result<Vec<(u64, u64)>, String> {
    let image = open(img, &OWN, 1 << 16, k).map_err(|e| e.to_string())?;
    let mut pages = Vec::new();
    load_chunks(&image, |segs| {
        pages.extend(segs.iter().map(|s| s.dest()));
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(pages)
}

/// An image of two chunks or more, sealed under a key made of `byte`,
/// or in clear with `byte` 0.
fn sealed(seed: u64, byte: u8) -> Vec<u8> {
    let mut rng = Rng(seed);
    loop {
        let k = (byte != 0).then(|| key(byte, byte));
        let img = build(&mut rng, k.as_ref());
        if Header::decode(&img[..PAGE as usize]).unwrap().nr_chunks >= 2 {
            return img;
        }
    }
}

/// A change to an image, given its header.
type Edit = dyn FnOnce(&mut Vec<u8>, &Header);

/// `img` changed by `edit`, its checksums recomputed (no key: the tag
/// stays), then resumed with the key of byte 1.
fn refused(img: &[u8], edit: impl FnOnce(&mut Vec<u8>, &Header)) -> String {
    let mut bad = img.to_vec();
    let h = Header::decode(&img[..PAGE as usize]).unwrap();
    edit(&mut bad, &h);
    fix_sums(&mut bad, None);
    resume(&bad, Some(key(1, 1))).expect_err("a changed image was resumed")
}

#[test]
fn sealed_image_round_trips() {
    let img = sealed(11, 1);
    // The same pages as the image in clear, and no page in clear on it.
    let clear = sealed(11, 0);
    assert_eq!(
        resume(&img, Some(key(1, 1))).unwrap(),
        resume(&clear, None).unwrap()
    );
    let page = &clear[PAGE as usize + 16..PAGE as usize + 48];
    assert!(!img.windows(page.len()).any(|w| w == page));
    // Another key: nothing.
    let e = resume(&img, Some(key(2, 1))).unwrap_err();
    assert!(e.contains("fails authentication"), "{e}");
    // The same key without the image's nonce prefix: nothing either.
    let e = resume(&img, Some(key(1, 2))).unwrap_err();
    assert!(e.contains("fails authentication"), "{e}");
    // No key, or a key for an image in clear: refused.
    assert!(resume(&img, None).is_err());
    assert!(resume(&clear, Some(key(1, 1))).is_err());
}

#[test]
fn every_change_is_refused() {
    let img = sealed(12, 1);
    let auth = "the image's header, page map or chunk index fails authentication";
    let chunk = |i: usize| format!("chunk {i} of the image fails authentication");
    let index = |img: &[u8], h: &Header, i: usize| {
        let at = (h.index_off + 24 * i as u64) as usize;
        let off = u64::from_le_bytes(img[at..at + 8].try_into().unwrap()) as usize;
        let len = u32::from_le_bytes(img[at + 8..at + 12].try_into().unwrap()) as usize;
        off..off + len
    };
    let cases: Vec<(&str, String, Box<Edit>)> = vec![
        (
            "a bit in chunk 1",
            chunk(1),
            Box::new(move |b, h| {
                let r = index(b, h, 1);
                b[r.start + 5] ^= 1;
            }),
        ),
        (
            "a bit in the page map",
            auth.into(),
            Box::new(|b, h| b[h.map_off as usize + 3] ^= 1),
        ),
        (
            "a bit in the chunk index",
            auth.into(),
            Box::new(|b, h| b[h.index_off as usize + 17] ^= 1),
        ),
        (
            "a bit in the header (A's entry)",
            auth.into(),
            Box::new(|b, _| b[64] ^= 1),
        ),
        (
            "a bit in the seal's nonce prefix",
            auth.into(),
            Box::new(|b, _| b[kjump::image::SEAL_AT + 32] ^= 1),
        ),
        (
            "chunk 0's bytes where chunk 1's were",
            chunk(1),
            Box::new(move |b, h| {
                let (r0, r1) = (index(b, h, 0), index(b, h, 1));
                let c0 = b[r0].to_vec();
                let n = c0.len().min(r1.len());
                b[r1.start..r1.start + n].copy_from_slice(&c0[..n]);
            }),
        ),
    ];
    for (what, why, edit) in cases {
        let e = refused(&img, edit);
        assert_eq!(e, why, "{what}");
    }
    // Chunk 0 of an image like it, sealed under another key.
    let other = sealed(12, 2);
    let e = refused(&img, |b, h| {
        let (r, o) = (index(b, h, 0), index(&other, h, 0));
        assert_eq!(r, o, "the same layout");
        b[r].copy_from_slice(&other[o]);
    });
    assert_eq!(e, chunk(0));
    // The tag itself.
    let e = refused(&img, |b, _| b[kjump::image::SEAL_AT + 96] ^= 1);
    assert_eq!(e, auth);
}
