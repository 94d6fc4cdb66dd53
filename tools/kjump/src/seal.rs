// SPDX-License-Identifier: GPL-2.0

//! Sealed hibernation images (Documentation/admin-guide/kexec-jump.rst,
//! "Sealed images"): every chunk is encrypted and authenticated with
//! XChaCha20-Poly1305 under a key made for this one hibernation; the
//! header, page map and chunk index are authenticated by a tag under the
//! same key; the key is kept for the next boot wrapped by a passphrase
//! stretched with Argon2id.
//!
//! Nonces: a random 16-byte prefix per image, then the chunk's sequence
//! number (u64); the header tag takes sequence number `u64::MAX`, which
//! no chunk reaches. The key is new for every image, so no nonce repeats
//! under one key even if the prefix did.

use anyhow::{bail, Result};
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use rustix::rand::GetRandomFlags;
use zeroize::Zeroizing;

/// Bytes the AEAD tag adds to each sealed piece.
pub const TAG: usize = 16;
/// Bytes of a wrapped key: the key and its tag.
pub const WRAPPED: usize = 32 + TAG;
/// Bytes of [`DataKey::handoff`].
pub const HANDOFF: usize = 32 + 12 + 16 + 16 + WRAPPED;
/// Argon2id's costs for a new image: 64 MiB and 3 passes (RFC 9106's
/// second recommended option), one lane (the argon2 crate computes lanes
/// one after another: more would cost time, not add strength).
pub const ARGON_M_KIB: u32 = 64 << 10;
pub const ARGON_T: u32 = 3;
pub const ARGON_P: u32 = 1;
/// The most a header may ask the resume to spend: 256 MiB, 16 passes, 8
/// lanes (a damaged header must not exhaust the resuming kernel).
const ARGON_M_MAX: u32 = 256 << 10;
const ARGON_T_MAX: u32 = 16;
const ARGON_P_MAX: u32 = 8;

/// A sealed image's key handling as its header keeps it: nothing here is
/// secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Seal {
    /// Argon2id's memory (KiB), passes and lanes.
    pub argon_m_kib: u32,
    pub argon_t: u32,
    pub argon_p: u32,
    /// Argon2id's salt, random per image.
    pub salt: [u8; 16],
    /// The first 16 bytes of every nonce under the image's key.
    pub nonce_prefix: [u8; 16],
    /// The image's key, sealed under the passphrase's key.
    pub wrapped_key: [u8; WRAPPED],
    /// The tag over the header, page map and chunk index.
    pub tag: [u8; TAG],
}

impl Default for Seal {
    fn default() -> Self {
        Self {
            argon_m_kib: 0,
            argon_t: 0,
            argon_p: 0,
            salt: [0; 16],
            nonce_prefix: [0; 16],
            wrapped_key: [0; WRAPPED],
            tag: [0; TAG],
        }
    }
}

/// The key of one image, on the heap: a move copies the pointer, never
/// the key (a copy left behind on a stack is not zeroed). Zeroed when
/// dropped.
pub struct DataKey {
    key: Zeroizing<Box<[u8]>>,
    /// The public part: nonce prefix, wrapped key, Argon2id's parameters.
    pub seal: Seal,
}

/// Fills `buf` from the kernel's random pool, waiting until it is ready
/// (getrandom() without GRND_INSECURE: a key must never be guessable).
fn random(buf: &mut [u8]) -> Result<()> {
    let mut at = 0;
    while at < buf.len() {
        match rustix::rand::getrandom(&mut buf[at..], GetRandomFlags::empty()) {
            Ok(n) => at += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => bail!("getrandom: {e}"),
        }
    }
    Ok(())
}

/// The key Argon2id makes of `passphrase` with the costs in `seal`.
fn passphrase_key(passphrase: &[u8], seal: &Seal) -> Result<XChaCha20Poly1305> {
    let (m, t, p) = (seal.argon_m_kib, seal.argon_t, seal.argon_p);
    if !(ARGON_M_KIB..=ARGON_M_MAX).contains(&m)
        || !(1..=ARGON_T_MAX).contains(&t)
        || !(1..=ARGON_P_MAX).contains(&p)
    {
        bail!("the image asks for Argon2id costs out of bounds (m={m} KiB t={t} p={p})");
    }
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|e| anyhow::anyhow!("Argon2id parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, &seal.salt, &mut kek[..])
        .map_err(|e| anyhow::anyhow!("Argon2id: {e}"))?;
    Ok(XChaCha20Poly1305::new((&*kek).into()))
}

/// What the wrapped key is bound to: the costs, salt and nonce prefix it
/// was made with, and the hibernation's nonce.
fn wrap_ad(seal: &Seal, run: u64) -> Vec<u8> {
    let mut ad = b"kjump key".to_vec();
    for v in [seal.argon_m_kib, seal.argon_t, seal.argon_p] {
        ad.extend_from_slice(&v.to_le_bytes());
    }
    ad.extend_from_slice(&seal.salt);
    ad.extend_from_slice(&seal.nonce_prefix);
    ad.extend_from_slice(&run.to_le_bytes());
    ad
}

impl DataKey {
    /// A fresh random key for the hibernation `run`, wrapped by
    /// `passphrase`.
    pub fn new(passphrase: &[u8], run: u64) -> Result<Self> {
        let mut key = Self::zero_key();
        random(&mut key)?;
        let mut seal = Seal {
            argon_m_kib: ARGON_M_KIB,
            argon_t: ARGON_T,
            argon_p: ARGON_P,
            ..Default::default()
        };
        random(&mut seal.salt)?;
        random(&mut seal.nonce_prefix)?;
        // The passphrase's key is new with every salt and wraps one key
        // only: a fixed nonce is safe.
        let wrapped = passphrase_key(passphrase, &seal)?
            .encrypt(
                &XNonce::default(),
                Payload {
                    msg: &key[..],
                    aad: &wrap_ad(&seal, run),
                },
            )
            .map_err(|_| anyhow::anyhow!("wrapping the image key"))?;
        seal.wrapped_key.copy_from_slice(&wrapped);
        Ok(Self { key, seal })
    }

    /// The key sealed in `seal` for the hibernation `run`, if
    /// `passphrase` is the one it was wrapped with.
    pub fn unwrap(seal: &Seal, passphrase: &[u8], run: u64) -> Result<Self> {
        let key = passphrase_key(passphrase, seal)?
            .decrypt(
                &XNonce::default(),
                Payload {
                    msg: &seal.wrapped_key,
                    aad: &wrap_ad(seal, run),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                anyhow::anyhow!("the passphrase does not unseal the image's key (wrong passphrase, or its key fields were changed)")
            })?;
        Self::from_bytes(&key, seal.clone())
    }

    /// A key and its seal, as a test or B has them.
    pub fn from_bytes(key: &[u8], seal: Seal) -> Result<Self> {
        if key.len() != 32 {
            bail!("a key of {} bytes", key.len());
        }
        let mut k = Self::zero_key();
        k.copy_from_slice(key);
        Ok(Self { key: k, seal })
    }

    /// 32 zero bytes on the heap, for a key to be written into.
    fn zero_key() -> Zeroizing<Box<[u8]>> {
        Zeroizing::new(vec![0u8; 32].into_boxed_slice())
    }

    /// The key and its seal (all but the tag) for B, which writes the
    /// image: key, Argon2id's costs, salt, nonce prefix, wrapped key.
    pub fn handoff(&self) -> Zeroizing<Vec<u8>> {
        let s = &self.seal;
        let mut b = Zeroizing::new(Vec::with_capacity(HANDOFF));
        b.extend_from_slice(&self.key);
        for v in [s.argon_m_kib, s.argon_t, s.argon_p] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&s.salt);
        b.extend_from_slice(&s.nonce_prefix);
        b.extend_from_slice(&s.wrapped_key);
        b
    }

    /// The key as [`DataKey::handoff`] gave it.
    pub fn from_handoff(b: &[u8]) -> Result<Self> {
        if b.len() != HANDOFF {
            bail!("a key handoff of {} bytes, not {HANDOFF}", b.len());
        }
        let word = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let mut seal = Seal {
            argon_m_kib: word(32),
            argon_t: word(36),
            argon_p: word(40),
            ..Default::default()
        };
        seal.salt.copy_from_slice(&b[44..60]);
        seal.nonce_prefix.copy_from_slice(&b[60..76]);
        seal.wrapped_key.copy_from_slice(&b[76..]);
        Self::from_bytes(&b[..32], seal)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&self.key))
    }

    fn nonce(&self, seq: u64) -> XNonce {
        let mut n = XNonce::default();
        n[..16].copy_from_slice(&self.seal.nonce_prefix);
        n[16..].copy_from_slice(&seq.to_le_bytes());
        n
    }

    /// Chunk `seq` encrypted, its tag appended.
    pub fn seal_chunk(&self, seq: u64, plain: &[u8]) -> Vec<u8> {
        self.cipher()
            .encrypt(&self.nonce(seq), plain)
            .expect("XChaCha20-Poly1305 takes any chunk")
    }

    /// Chunk `seq` decrypted, if it is the image's chunk `seq` unchanged.
    pub fn open_chunk(&self, seq: u64, sealed: &[u8]) -> Result<Vec<u8>> {
        self.cipher()
            .decrypt(&self.nonce(seq), sealed)
            .map_err(|_| anyhow::anyhow!("chunk {seq} of the image fails authentication"))
    }

    /// The tag over `parts` (the header, page map and chunk index): the
    /// AEAD of nothing, with them as associated data.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG] {
        let aad = parts.concat();
        let t = self
            .cipher()
            .encrypt(
                &self.nonce(u64::MAX),
                Payload {
                    msg: &[],
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 takes any associated data");
        t.try_into().expect("a 16-byte tag")
    }

    /// Whether `tag` is the tag over `parts` (compared in constant time).
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8; TAG]) -> Result<()> {
        let aad = parts.concat();
        self.cipher()
            .decrypt(
                &self.nonce(u64::MAX),
                Payload {
                    msg: tag,
                    aad: &aad,
                },
            )
            .map(|_| ())
            .map_err(|_| {
                anyhow::anyhow!("the image's header, page map or chunk index fails authentication")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_wraps_and_unwraps_only_with_its_passphrase() {
        let k = DataKey::new(b"right", 7).unwrap();
        let again = DataKey::unwrap(&k.seal, b"right", 7).unwrap();
        assert_eq!(*again.handoff(), *k.handoff());
        let b = DataKey::from_handoff(&k.handoff()).unwrap();
        assert_eq!((&*b.key, &b.seal), (&*k.key, &k.seal));
        assert!(DataKey::unwrap(&k.seal, b"wrong", 7).is_err());
        // Bound to the hibernation and to the salt.
        assert!(DataKey::unwrap(&k.seal, b"right", 8).is_err());
        let mut s = k.seal.clone();
        s.salt[0] ^= 1;
        assert!(DataKey::unwrap(&s, b"right", 7).is_err());
        // Costs out of bounds are refused before Argon2id runs.
        s = k.seal.clone();
        s.argon_m_kib = u32::MAX;
        let e = DataKey::unwrap(&s, b"right", 7).err().unwrap().to_string();
        assert!(e.contains("out of bounds"), "{e}");
    }

    #[test]
    fn chunks_open_only_in_place() {
        let k = DataKey::from_bytes(&[1; 32], Seal::default()).unwrap();
        let c = k.seal_chunk(3, b"pages");
        assert_eq!(c.len(), 5 + TAG);
        assert_eq!(k.open_chunk(3, &c).unwrap(), b"pages");
        assert!(k.open_chunk(4, &c).is_err());
        let other = DataKey::from_bytes(&[2; 32], Seal::default()).unwrap();
        assert!(other.open_chunk(3, &c).is_err());
        let t = k.tag(&[b"a", b"b"]);
        assert!(k.verify(&[b"a", b"b"], &t).is_ok());
        assert!(k.verify(&[b"a", b"c"], &t).is_err());
        assert!(other.verify(&[b"a", b"b"], &t).is_err());
    }
}
