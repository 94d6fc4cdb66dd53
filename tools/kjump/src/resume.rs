// SPDX-License-Identifier: GPL-2.0

//! `kjump resume`: in a freshly booted kernel C, check the whole image on
//! the device, mark it resumed (so it is never resumed twice), load A's
//! pages as a ranges image (KEXEC_RANGES, then KEXEC_FILL a chunk at a
//! time) and jump back into A.

use crate::{
    aligned::AlignedBuf,
    hibernate::{hex, own_build_id},
    image::{self, Chunk, Header, Run, PAGE},
    sys::{self, KexecSegment},
};
use anyhow::{bail, Context, Result};
use std::{
    fs::File,
    io::{Seek, SeekFrom},
    os::unix::fs::FileExt,
};

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

    /// A chunk, checked against its checksum and decompressed.
    fn chunk(&self, i: usize) -> Result<Vec<u8>> {
        let c = self.chunks[i];
        let buf = self.read(c.off, u64::from(c.comp_len))?;
        let comp = &buf.bytes()[..c.comp_len as usize];
        if image::sum(comp) != c.sum {
            bail!("chunk {i} of the image is corrupt (checksum)");
        }
        // A chunk that did not shrink is stored as it is.
        if c.comp_len == c.raw_len {
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
/// them).
pub fn open<R: ReadAt>(mut file: R, own: &[u8], ram_pages: u64) -> Result<Image<R>> {
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
    };
    let map = img.read(header.map_off, header.map_len)?;
    let map = &map.bytes()[..header.map_len as usize];
    if image::sum(map) != header.map_sum {
        bail!("the image's page map is corrupt (checksum)");
    }
    img.map = image::decode_runs(map)?;
    let index = img.read(header.index_off, header.index_len)?;
    let index = &index.bytes()[..header.index_len as usize];
    if image::sum(index) != header.index_sum {
        bail!("the image's chunk index is corrupt (checksum)");
    }
    img.chunks = image::decode_index(index)?;
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
/// ascending) and hands each one's runs to `fill` as segments. A second
/// thread reads and decompresses the next chunk while `fill` runs. The
/// data pages must add up to the header's count.
pub fn load_chunks<R: ReadAt>(
    img: &Image<R>,
    mut fill: impl FnMut(&[KexecSegment]) -> Result<()>,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>>>(1);
    std::thread::scope(|scope| {
        // Owned here, so that a failure below drops it before the scope
        // waits for the reader: its blocked send then fails and it stops
        // (held outside, the reader waited forever and so did the boot).
        let rx = rx;
        scope.spawn(move || {
            for i in 0..img.chunks.len() {
                let c = img.chunk(i);
                let stop = c.is_err();
                if tx.send(c).is_err() || stop {
                    break;
                }
            }
        });
        let (mut next, mut pages) = (0u64, 0u64);
        for i in 0..img.chunks.len() {
            let raw = rx.recv().context("the chunk reader stopped")??;
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
}

impl NoResume {
    pub fn exit_code(&self) -> i32 {
        match self {
            NoResume::NoImage(_) => 1,
            NoResume::Invalidated(_) => 2,
            NoResume::Kept(_) => 3,
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
    let why = match file.try_clone() {
        Ok(f) => resume_image(f, dev).err(),
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

/// Checks the image on `file` and, if it is valid, resumes A from it:
/// returns only if the resume failed.
///
/// The whole image is checked while it is loaded into a ranges image,
/// before the device is written or anything runs from it. A valid one is
/// marked resumed on the device before the jump.
fn resume_image(file: File, dev: &str) -> Result<()> {
    let img = open(
        file,
        &own_build_id()?,
        (meminfo_kib("MemTotal:") << 10) / PAGE,
    )?;
    let h = &img.header;
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

/// MiB a resume needs beyond A's pages: two chunks in flight, raw and
/// compressed, and the kernel's bookkeeping of the ranges image (about 15
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
