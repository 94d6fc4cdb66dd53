// SPDX-License-Identifier: GPL-2.0

//! `kjump resume`: in a freshly booted kernel C, check the whole image on
//! the device, mark it resumed (so it is never resumed twice), load A's
//! pages as a ranges image (KEXEC_RANGES, then KEXEC_FILL a chunk at a
//! time) and jump back into A.

use crate::{
    hibernate::{hex, own_build_id},
    image::{self, Chunk, Header, Run, PAGE},
    sys::{self, KexecSegment},
};
use anyhow::{bail, Context, Result};
use std::{
    fs::{File, OpenOptions},
    io::{Seek, SeekFrom},
    os::unix::{fs::FileExt, io::AsRawFd},
};

struct Image {
    file: File,
    header: Header,
    map: Vec<Run>,
    chunks: Vec<Chunk>,
}

impl Image {
    fn read(&self, off: u64, len: u64) -> Result<Vec<u8>> {
        let mut b = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut b, off)
            .with_context(|| format!("reading the image at {off:#x}"))?;
        // Read once per pass: keep the page cache out of C's peak memory.
        // SAFETY: posix_fadvise(2) on our own descriptor takes no pointer.
        unsafe {
            libc::posix_fadvise(
                self.file.as_raw_fd(),
                off as i64,
                len as i64,
                libc::POSIX_FADV_DONTNEED,
            )
        };
        Ok(b)
    }

    /// A chunk, checked against its checksum and decompressed.
    fn chunk(&self, i: usize) -> Result<Vec<u8>> {
        let c = self.chunks[i];
        let comp = self.read(c.off, u64::from(c.comp_len))?;
        if image::sum(&comp) != c.sum {
            bail!("chunk {i} of the image is corrupt (checksum)");
        }
        lz4_flex::block::decompress(&comp, c.raw_len as usize)
            .ok()
            .filter(|raw| raw.len() == c.raw_len as usize)
            .with_context(|| format!("chunk {i} of the image does not decompress"))
    }

    /// Whether pages [pfn, pfn + pages) lie in one range of the map.
    fn in_map(&self, pfn: u64, pages: u64) -> bool {
        let i = self.map.partition_point(|r| r.pfn + r.pages <= pfn);
        self.map
            .get(i)
            .is_some_and(|r| r.pfn <= pfn && pfn + pages <= r.pfn + r.pages)
    }
}

/// Opens and checks everything but the chunks.
fn open(dev: &str) -> Result<Image> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .with_context(|| dev.to_string())?;
    let dev_len = file.seek(SeekFrom::End(0))?;
    let mut hb = vec![0u8; PAGE as usize];
    file.read_exact_at(&mut hb, 0)
        .map_err(|_| anyhow::anyhow!("the device is shorter than one block"))?;
    let header = Header::decode(&hb)?;
    let own = own_build_id()?;
    if header.build_id != own {
        bail!(
            "the image is from another kernel build ({}; this kernel is {})",
            hex(&header.build_id),
            hex(&own)
        );
    }
    if header.image_end > dev_len {
        bail!(
            "the image is truncated: it needs {} bytes, the device has {dev_len}",
            header.image_end
        );
    }
    let bounded = |off: u64, len: u64| {
        off >= PAGE && off.checked_add(len).is_some_and(|e| e <= header.image_end)
    };
    if !bounded(header.map_off, header.map_len) || !bounded(header.index_off, header.index_len) {
        bail!("the image header points outside the image");
    }
    let mut img = Image {
        file,
        header: header.clone(),
        map: Vec::new(),
        chunks: Vec::new(),
    };
    let map = img.read(header.map_off, header.map_len)?;
    if image::sum(&map) != header.map_sum {
        bail!("the image's page map is corrupt (checksum)");
    }
    img.map = image::decode_runs(&map)?;
    let index = img.read(header.index_off, header.index_len)?;
    if image::sum(&index) != header.index_sum {
        bail!("the image's chunk index is corrupt (checksum)");
    }
    img.chunks = image::decode_index(&index)?;
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

/// Every chunk: checksum, decompression, runs inside the map and
/// ascending; the data pages add up. Nothing is changed yet.
fn check_chunks(img: &Image) -> Result<()> {
    let (mut next, mut pages) = (0u64, 0u64);
    for i in 0..img.chunks.len() {
        let raw = img.chunk(i)?;
        for (run, _) in image::chunk_runs(&raw)? {
            if run.pfn < next || !img.in_map(run.pfn, run.pages) {
                bail!("chunk {i} holds pages outside the image's page map");
            }
            next = run.pfn + run.pages;
            pages += run.pages;
        }
    }
    if pages != img.header.data_pages {
        bail!(
            "the image holds {pages} data pages, its header says {}",
            img.header.data_pages
        );
    }
    Ok(())
}

/// Checks the image on `dev` and, if it is valid, resumes A from it:
/// returns only if there is nothing to resume or the resume failed.
pub fn resume(dev: &str) -> Result<()> {
    let img = open(dev)?;
    check_chunks(&img)?;
    let h = &img.header;
    println!(
        "kjump: image on {dev} is valid: {} pages in {} ranges, {} with data, {} MiB",
        h.used_pages,
        h.nr_ranges,
        h.data_pages,
        h.image_end >> 20
    );
    // At most once: mark it resumed before anything can run from it.
    img.file
        .write_all_at(image::MAGIC_RESUMED, 0)
        .and_then(|_| img.file.sync_all())
        .with_context(|| format!("marking the image on {dev} resumed"))?;

    let ranges: Vec<KexecSegment> = img
        .map
        .iter()
        .map(|r| KexecSegment {
            buf: std::ptr::null(),
            bufsz: 0,
            mem: r.pfn * PAGE,
            memsz: r.pages * PAGE,
        })
        .collect();
    let flags = sys::KEXEC_PRESERVE_CONTEXT;
    let free_before = mem_free_kib();
    // SAFETY: the ranges carry no buffers.
    unsafe { sys::kexec_load_raw(h.entry, &ranges, flags | sys::KEXEC_RANGES) }
        .map_err(|e| anyhow::anyhow!(sys::explain("declaring A's pages", &e)))?;
    let filled = (|| -> Result<()> {
        for i in 0..img.chunks.len() {
            let raw = img.chunk(i)?;
            let segs: Vec<KexecSegment> = image::chunk_runs(&raw)?
                .into_iter()
                .map(|(run, at)| KexecSegment {
                    buf: raw[at..].as_ptr(),
                    bufsz: (run.pages * PAGE) as usize,
                    mem: run.pfn * PAGE,
                    memsz: run.pages * PAGE,
                })
                .collect();
            // SAFETY: each buffer is a run's bytes inside `raw`, which
            // chunk_runs() bounded and which outlives the call.
            unsafe { sys::kexec_load_raw(0, &segs, flags | sys::KEXEC_FILL) }
                .map_err(|e| anyhow::anyhow!(sys::explain("loading A's pages", &e)))?;
        }
        let taken = free_before.saturating_sub(mem_free_kib()) >> 10;
        let pages = (h.used_pages * PAGE) >> 20;
        println!(
            "kjump: loading A took {taken} MiB of this kernel's memory for {pages} MiB of A's pages ({:+} MiB)",
            taken as i64 - pages as i64
        );
        println!("kjump: resuming A");
        crate::jump("resume").map(|_| ())
    })();
    // Only a failure comes back here: leave nothing half-loaded behind.
    let _ = sys::kexec_load(0, &[], flags);
    filled?;
    bail!("A came back to this kernel instead of resuming")
}

/// MemFree of /proc/meminfo, in KiB.
fn mem_free_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemFree:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
