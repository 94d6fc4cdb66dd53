// SPDX-License-Identifier: GPL-2.0

//! `kjump resume`: in a freshly booted kernel C, check the whole image on
//! the device, mark it resumed (so it is never resumed twice), load A's
//! pages as a ranges image (KEXEC_RANGES, then KEXEC_FILL a chunk at a
//! time) and jump back into A. A sealed image's key is unwrapped first,
//! with the passphrase.

use crate::{
    aligned::AlignedBuf,
    hibernate::{hex, own_build_id},
    image::{self, Chunk, Header, Run, PAGE},
    seal::DataKey,
    sys::{self, KexecSegment},
};
use anyhow::{bail, Context, Result};
use std::{
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    os::unix::fs::FileExt,
};
use zeroize::Zeroizing;

/// Where an image is read from: the resume device, or bytes in memory
/// (the decoders' fuzz test).
pub trait ReadAt: Sync {
    /// Fills `buf` from `off` on.
    fn read_range(&self, buf: &mut [u8], off: u64) -> std::io::Result<()>;
    /// Bytes there are to read.
    fn size(&mut self) -> std::io::Result<u64>;
}

impl ReadAt for File {
    fn read_range(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        FileExt::read_exact_at(self, buf, off)
    }
    fn size(&mut self) -> std::io::Result<u64> {
        self.seek(SeekFrom::End(0))
    }
}

impl ReadAt for &[u8] {
    fn read_range(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        let bytes = usize::try_from(off)
            .ok()
            .and_then(|o| self.get(o..o.checked_add(buf.len())?))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
    fn size(&mut self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }
}

/// An image on its device, its header, page map and chunk index read
/// and checked by [`open`].
pub struct Image<R> {
    file: R,
    header: Header,
    map: Vec<Run>,
    chunks: Vec<Chunk>,
    /// A sealed image's key.
    key: Option<DataKey>,
}

impl<R: ReadAt> Image<R> {
    /// Reads `len` bytes at `off` (a page boundary: every piece of the
    /// image starts on one and is padded to whole pages). The device is
    /// read with O_DIRECT where it allows, so the page cache does not add
    /// the image's size to this kernel's memory while A's pages are
    /// loaded; the buffer holds the padded length.
    fn read(&self, off: u64, len: u64) -> Result<AlignedBuf> {
        let padded = len.div_ceil(PAGE) * PAGE;
        let mut b = AlignedBuf::new(padded as usize);
        self.file
            .read_range(&mut b.bytes_mut()[..padded as usize], off)
            .with_context(|| format!("reading the image at {off:#x}"))?;
        Ok(b)
    }

    /// A chunk, checked against its checksum, opened if sealed, and
    /// decompressed.
    fn chunk(&self, i: usize) -> Result<Vec<u8>> {
        let c = self.chunks[i];
        let buf = self.read(c.off, u64::from(c.comp_len))?;
        let stored = &buf.bytes()[..c.comp_len as usize];
        // A sealed chunk has no checksum: its tag checks it.
        let opened;
        let comp = match &self.key {
            Some(k) => {
                opened = k.open_chunk(i as u64, stored)?;
                &opened[..]
            }
            None if image::sum(stored) != c.sum => {
                bail!("chunk {i} of the image is corrupt (checksum)")
            }
            None => stored,
        };
        // A chunk that did not shrink is stored as it is.
        if comp.len() == c.raw_len as usize {
            return Ok(comp.to_vec());
        }
        lz4_flex::block::decompress(comp, c.raw_len as usize)
            .ok()
            .filter(|raw| raw.len() == c.raw_len as usize)
            .with_context(|| format!("chunk {i} of the image does not decompress"))
    }

    /// Whether pages [pfn, pfn + pages) lie in one range of the map.
    pub fn in_map(&self, pfn: u64, pages: u64) -> bool {
        let i = self.map.partition_point(|r| r.pfn + r.pages <= pfn);
        self.map
            .get(i)
            .is_some_and(|r| r.pfn <= pfn && pfn + pages <= r.pfn + r.pages)
    }
}

/// Checks everything in the image on `file` but the chunks; `own` is
/// this kernel's build id, `ram_pages` the pages of RAM it has (no image
/// of more pages can be loaded, and every allocation here is bounded by
/// them), `key` a sealed image's key.
pub fn open<R: ReadAt>(
    mut file: R,
    own: &[u8],
    ram_pages: u64,
    key: Option<DataKey>,
) -> Result<Image<R>> {
    let dev_len = file.size()?;
    let mut hb = AlignedBuf::new(PAGE as usize);
    file.read_range(hb.bytes_mut(), 0)
        .map_err(|_| anyhow::anyhow!("the device is shorter than one block"))?;
    let header = Header::decode(hb.bytes())?;
    if header.build_id != own {
        bail!(
            "the image is from another kernel build ({}; this kernel is {})",
            hex(&header.build_id),
            hex(own)
        );
    }
    if header.seal.is_some() != key.is_some() {
        bail!("the image is sealed, or not, unlike what its key says");
    }
    header.check_sizes(dev_len)?;
    if header.used_pages > ram_pages || header.nr_chunks > header.data_pages {
        bail!(
            "the image's {} pages in {} chunks cannot be this kernel's to load ({ram_pages} pages of RAM)",
            header.used_pages,
            header.nr_chunks
        );
    }
    let bounded = |off: u64, len: u64| {
        off >= PAGE && off.checked_add(len).is_some_and(|e| e <= header.image_end)
    };
    let mut img = Image {
        file,
        header: header.clone(),
        map: Vec::new(),
        chunks: Vec::new(),
        key,
    };
    let map = img.read(header.map_off, header.map_len)?;
    let map = &map.bytes()[..header.map_len as usize];
    let index = img.read(header.index_off, header.index_len)?;
    let index = &index.bytes()[..header.index_len as usize];
    if let (Some(k), Some(s)) = (&img.key, &header.seal) {
        k.verify(&[&image::tagged_header(hb.bytes()), map, index], &s.tag)?;
    }
    if image::sum(map) != header.map_sum {
        bail!("the image's page map is corrupt (checksum)");
    }
    img.map = image::decode_runs(map)?;
    if image::sum(index) != header.index_sum {
        bail!("the image's chunk index is corrupt (checksum)");
    }
    img.chunks = image::decode_index(index, img.key.is_some())?;
    let used: u64 = img.map.iter().map(|r| r.pages).sum();
    if img.map.len() as u64 != header.nr_ranges
        || img.chunks.len() as u64 != header.nr_chunks
        || used != header.used_pages
        || img.map.first().is_some_and(|r| r.pfn < (1 << 20) / PAGE)
    {
        bail!("the image's page map or index disagrees with its header");
    }
    if img
        .chunks
        .iter()
        .any(|c| !bounded(c.off, u64::from(c.comp_len)))
    {
        bail!("a chunk of the image lies outside it");
    }
    Ok(img)
}

/// Checks every chunk (checksum, decompression, runs inside the map and
/// ascending) and hands each one's runs to `fill` as segments, in order.
/// Reader threads (one a CPU, at most [`READERS_MAX`]) read, open and
/// decompress the next chunks while `fill` runs: reader `w` takes chunks
/// `w`, `w + n`, ... and hands them over through its own one-slot queue,
/// so they arrive in order. The data pages must add up to the header's
/// count.
pub fn load_chunks<R: ReadAt>(
    img: &Image<R>,
    mut fill: impl FnMut(&[KexecSegment]) -> Result<()>,
) -> Result<()> {
    let n = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(READERS_MAX);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| std::sync::mpsc::sync_channel::<Result<Vec<u8>>>(1))
        .unzip();
    std::thread::scope(|scope| {
        // Owned here, so that a failure below drops them before the scope
        // waits for the readers: their blocked sends then fail and they
        // stop (held outside, a reader waited forever and so did the boot).
        let rxs = rxs;
        for (w, tx) in txs.into_iter().enumerate() {
            scope.spawn(move || {
                for i in (w..img.chunks.len()).step_by(n) {
                    let c = img.chunk(i);
                    let stop = c.is_err();
                    if tx.send(c).is_err() || stop {
                        break;
                    }
                }
            });
        }
        let (mut next, mut pages) = (0u64, 0u64);
        for i in 0..img.chunks.len() {
            let raw = rxs[i % n].recv().context("a chunk reader stopped")??;
            let runs = image::chunk_runs(&raw)?;
            let mut segs = Vec::with_capacity(runs.len());
            for (run, at) in runs {
                if run.pfn < next || !img.in_map(run.pfn, run.pages) {
                    bail!("chunk {i} holds pages outside the image's page map");
                }
                next = run.pfn + run.pages;
                pages += run.pages;
                let len = (run.pages * PAGE) as usize;
                let (mem, memsz) = (run.pfn * PAGE, run.pages * PAGE);
                segs.push(KexecSegment::new(&raw[at..at + len], mem, memsz));
            }
            fill(&segs)?;
        }
        if pages != img.header.data_pages {
            bail!(
                "the image holds {pages} data pages, its header says {}",
                img.header.data_pages
            );
        }
        Ok(())
    })
}

/// Why `kjump resume` did not resume; the initramfs hook acts on the exit
/// code.
pub enum NoResume {
    /// Nothing to resume: no image, one resumed or invalidated before, or
    /// no device to read (exit code 1).
    NoImage(anyhow::Error),
    /// An image was there and could not be resumed: it is invalidated
    /// now, and the boot goes on (exit code 2).
    Invalidated(anyhow::Error),
    /// An image could not be resumed and is still valid: the user asked
    /// for that (`kjump.resume_failed=halt`) or writing the device failed.
    /// The boot must not go on and change what A has mounted (exit code 3).
    Kept(anyhow::Error),
    /// A sealed image whose key this boot could not unwrap (wrong
    /// passphrase, three times): it stays as it is, sealed, and the boot
    /// goes on (exit code 4). Nobody without the passphrase can use it,
    /// and the filesystem guard refuses it later if this boot changes A's
    /// filesystems.
    Sealed(anyhow::Error),
}

impl NoResume {
    pub fn exit_code(&self) -> i32 {
        match self {
            NoResume::NoImage(_) => 1,
            NoResume::Invalidated(_) => 2,
            NoResume::Kept(_) => 3,
            NoResume::Sealed(_) => 4,
        }
    }
}

/// Whether this boot's command line asks to keep an image that cannot be
/// resumed and stop the boot (`kjump.resume_failed=halt`).
fn keep_on_failure() -> bool {
    std::fs::read_to_string("/proc/cmdline").is_ok_and(|c| {
        c.split_whitespace()
            .any(|a| a == "kjump.resume_failed=halt")
    })
}

/// Resumes A from the image on `dev` if there is a valid one of this
/// kernel build: returns only when it did not.
///
/// Once block 0 holds an image header, every outcome but the jump into A
/// invalidates the image durably before this returns (unless
/// `kjump.resume_failed=halt`): otherwise the boot goes on, fsck and
/// journal replay change the filesystems A has mounted, and a later boot
/// of the right kernel would resume A over them.
pub fn resume(dev: &str) -> NoResume {
    let file = match crate::device::open_exclusive(dev) {
        Ok(f) => f,
        Err(e) => return NoResume::NoImage(anyhow::anyhow!("{dev}: {e}")),
    };
    let mut block = AlignedBuf::new(PAGE as usize);
    if file.read_exact_at(block.bytes_mut(), 0).is_err() {
        return NoResume::NoImage(anyhow::anyhow!("the device is shorter than one block"));
    }
    if &block.bytes()[..8] != image::MAGIC {
        let why = Header::decode(block.bytes())
            .err()
            .unwrap_or_else(|| anyhow::anyhow!("no hibernation image there"));
        return NoResume::NoImage(why);
    }
    let key = match unseal(block.bytes(), dev) {
        Ok(k) => k,
        Err(e) => return NoResume::Sealed(e.context("the image is kept, sealed")),
    };
    let why = match file.try_clone() {
        Ok(f) => resume_image(f, dev, key).err(),
        Err(e) => Some(e.into()),
    }
    .unwrap_or_else(|| anyhow::anyhow!("A came back to this kernel instead of resuming"));
    if keep_on_failure() {
        return NoResume::Kept(why.context(format!(
            "the image is kept (kjump.resume_failed=halt): boot kernel build {} to resume it",
            hex(&block.bytes()[20..20 + (block.bytes()[16] as usize).min(40)])
        )));
    }
    let mut bad = AlignedBuf::new(PAGE as usize);
    bad.bytes_mut()
        .copy_from_slice(&image::invalidated(block.bytes(), &format!("{why:#}")));
    match file
        .write_all_at(bad.bytes(), 0)
        .and_then(|_| file.sync_all())
    {
        Ok(()) => NoResume::Invalidated(why.context("the image is invalidated")),
        Err(e) => NoResume::Kept(why.context(format!(
            "invalidating the image failed ({e}): it is still there, and resuming it later would lose what this boot changes"
        ))),
    }
}

/// A sealed image's key, unwrapped with the passphrase: from the file
/// named by `kjump.passphrase_file=` (one try: unattended boots and
/// tests), else typed on the console (three tries). None for an image in
/// clear, or one [`resume_image`] refuses whatever the key (a damaged
/// header, another kernel build: no passphrase is asked for those).
fn unseal(block0: &[u8], dev: &str) -> Result<Option<DataKey>> {
    let Ok(h) = Header::decode(block0) else {
        return Ok(None);
    };
    let Some(seal) = &h.seal else {
        return Ok(None);
    };
    if own_build_id().ok().as_deref() != Some(&h.build_id[..]) {
        return Ok(None);
    }
    if let Some(path) = crate::hibernate::cmdline_value("kjump.passphrase_file") {
        let pass = read_passphrase(&mut File::open(&path).with_context(|| path.clone())?)?;
        return DataKey::unwrap(seal, &pass, h.nonce).map(Some);
    }
    let mut why = anyhow::anyhow!("no passphrase");
    for attempt in 1..=3 {
        let pass = ask_passphrase(
            "/dev/console",
            &format!("kjump: passphrase for the hibernation image on {dev} (try {attempt} of 3): "),
        )?;
        match DataKey::unwrap(seal, &pass, h.nonce) {
            Ok(k) => return Ok(Some(k)),
            Err(e) => {
                eprintln!("kjump: {e}");
                why = e;
            }
        }
    }
    Err(why.context("three tries"))
}

/// The longest passphrase read: its buffer never grows, so no copy of
/// it is left behind unzeroed.
const PASSPHRASE_MAX: usize = 1024;

/// A passphrase: the first line of `from`, without its newline.
pub fn read_passphrase(from: &mut impl Read) -> Result<Zeroizing<Vec<u8>>> {
    let mut pass = Zeroizing::new(Vec::with_capacity(PASSPHRASE_MAX));
    let mut byte = [0u8];
    while from.read(&mut byte).context("reading the passphrase")? == 1 && byte[0] != b'\n' {
        if pass.len() == PASSPHRASE_MAX {
            bail!("a passphrase of more than {PASSPHRASE_MAX} bytes");
        }
        pass.push(byte[0]);
    }
    if pass.last() == Some(&b'\r') {
        pass.pop();
    }
    if pass.is_empty() {
        bail!("an empty passphrase");
    }
    Ok(pass)
}

/// A passphrase typed on the terminal `tty` after `prompt`, not echoed.
/// Echo goes off (and what was typed before is dropped) before the
/// prompt shows: a passphrase typed as soon as it shows is never echoed.
pub fn ask_passphrase(tty: &str, prompt: &str) -> Result<Zeroizing<Vec<u8>>> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(tty)
        .with_context(|| tty.to_string())?;
    let saved = tcgetattr(&tty).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes -= LocalModes::ECHO;
        tcsetattr(&tty, OptionalActions::Flush, &quiet).context("turning echo off")?;
    }
    tty.write_all(prompt.as_bytes())?;
    let pass = read_passphrase(&mut tty);
    if let Some(t) = &saved {
        let _ = tcsetattr(&tty, OptionalActions::Now, t);
    }
    let _ = tty.write_all(b"\n");
    pass
}

/// Checks the image on `file` and, if it is valid, resumes A from it:
/// returns only if the resume failed.
///
/// The whole image is checked while it is loaded into a ranges image,
/// before the device is written or anything runs from it. A valid one is
/// marked resumed on the device before the jump.
fn resume_image(file: File, dev: &str, key: Option<DataKey>) -> Result<()> {
    let mut img = open(
        file,
        &own_build_id()?,
        (meminfo_kib("MemTotal:") << 10) / PAGE,
        key,
    )?;
    let h = &img.header.clone();
    if h.seal.is_none()
        && crate::hibernate::cmdline_value("kjump.resume_sealed").as_deref() == Some("required")
    {
        bail!("the image is not sealed, and this boot resumes sealed images only (kjump.resume_sealed=required)");
    }
    if h.machine != crate::machine::id() {
        bail!(
            "the image is from another machine or firmware: the firmware memory map or the BIOS identity differs from this boot's"
        );
    }
    crate::filesystems::check(&h.filesystems)?;
    // A's pages and this process's chunk buffers must fit at once: check
    // before anything is loaded, or the OOM killer ends kjump half way
    // and nothing invalidates the image.
    let need = ((h.used_pages * PAGE) >> 20) + RESUME_HEADROOM_MIB;
    let have = meminfo_kib("MemAvailable:") >> 10;
    if have < need {
        bail!(
            "not enough memory to resume: A's {} MiB of pages need {need} MiB, this kernel has {have} MiB available",
            (h.used_pages * PAGE) >> 20
        );
    }
    let flags = sys::KEXEC_PRESERVE_CONTEXT;
    let ranges: Vec<KexecSegment> = img
        .map
        .iter()
        .map(|r| KexecSegment::range(r.pfn * PAGE, r.pages * PAGE))
        .collect();
    let free_before = mem_free_kib();
    sys::kexec_load_raw(h.entry, &ranges, flags | sys::KEXEC_RANGES)
        .map_err(|e| anyhow::anyhow!(sys::explain("declaring A's pages", &e)))?;
    let jumped = (|| -> Result<()> {
        load_chunks(&img, |segs| {
            let flags = sys::KEXEC_PRESERVE_CONTEXT | sys::KEXEC_FILL;
            sys::kexec_load_raw(0, segs, flags)
                .map_err(|e| anyhow::anyhow!(sys::explain("loading A's pages", &e)))
        })?;
        // All of A is loaded: the key is zeroed, not left in this kernel's
        // memory, which A gets back as free pages.
        img.key = None;
        println!(
            "kjump: image on {dev} is valid: {} pages in {} ranges, {} with data, {} MiB",
            h.used_pages,
            h.nr_ranges,
            h.data_pages,
            h.image_end >> 20
        );
        let taken = free_before.saturating_sub(mem_free_kib()) >> 10;
        let pages = (h.used_pages * PAGE) >> 20;
        println!(
            "kjump: loading A took {taken} MiB of this kernel's memory for {pages} MiB of A's pages ({:+} MiB)",
            taken as i64 - pages as i64
        );
        // At most once: marked resumed before anything runs from it.
        let mut block = AlignedBuf::new(PAGE as usize);
        img.file
            .read_exact_at(block.bytes_mut(), 0)
            .and_then(|_| {
                block.bytes_mut()[..8].copy_from_slice(image::MAGIC_RESUMED);
                // The wrapped key goes: nobody can unseal the image again.
                block.bytes_mut()[image::SEAL_AT..].fill(0);
                img.file.write_all_at(block.bytes(), 0)
            })
            .and_then(|_| img.file.sync_all())
            .with_context(|| format!("marking the image on {dev} resumed"))?;
        println!("kjump: resuming A");
        crate::jump::jump("resume").map(|_| ())
    })();
    // Only a failure comes back here: leave nothing half-loaded behind.
    let _ = sys::kexec_load(0, &[], flags);
    jumped?;
    bail!("A came back to this kernel instead of resuming")
}

/// Threads that read chunks for a resume: each holds at most two chunks
/// (one queued, one being made), raw and compressed; two keep what is in
/// flight within the headroom below, whatever the chunks' size.
const READERS_MAX: usize = 2;

/// MiB a resume needs beyond A's pages: the chunks in flight (at most
/// 2 * READERS_MAX + 1, raw and compressed: 40 MiB with the largest
/// chunks) and the kernel's bookkeeping of the ranges image (about 15
/// MiB for 134 MiB of pages, measured).
const RESUME_HEADROOM_MIB: u64 = 64;

/// A field of /proc/meminfo, in KiB (0 if missing).
pub(crate) fn meminfo_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// MemFree of /proc/meminfo, in KiB.
fn mem_free_kib() -> u64 {
    meminfo_kib("MemFree:")
}
