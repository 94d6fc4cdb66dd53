// SPDX-License-Identifier: GPL-2.0

//! `kjump hibernate`: in A, load B (resident, with an initramfs that is
//! kjump itself) and jump; in B, kjump runs as init, writes A's used pages
//! to the device and powers off. When A runs again (resumed by
//! `kjump resume` after a cold boot, or because B came back), it unloads
//! B and says which.
//!
//! Sealed (`--key passphrase`): A makes the image's key and wraps it with
//! the passphrase; the key reaches B inside B's initramfs, which is built
//! in A's memory and loaded into the reservation (never a file, never on
//! a command line); B seals every chunk with it (crate::seal).

use crate::{
    aligned::AlignedBuf,
    device, elfcore,
    filesystems::{self, Guarded},
    image,
    image::{Chunk, Header, Run, CHUNK_RAW, CHUNK_RAW_MAX, PAGE},
    load,
    seal::{self, DataKey},
    sys,
    vmcore::{FreeMap, Vmcore},
};
use anyhow::{bail, Context, Result};
use object::elf::NT_GNU_BUILD_ID;
use rustix::rand::GetRandomFlags;
use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::{Seek, SeekFrom, Write},
    os::unix::fs::FileExt,
    sync::{mpsc, Mutex},
    time::Instant,
};
use zeroize::{Zeroize, Zeroizing};

/// Where B finds the image's key ([`DataKey::handoff`]) in its initramfs.
const KEY_FILE: &str = "kjump.seal";

/// Pages below 1 MiB are not A's to restore: A reserves them at boot
/// (BIOS data, its real-mode trampoline, which the jump itself saves and
/// restores), and B and C use them for their own trampolines.
const FIRST_PFN: u64 = (1 << 20) / PAGE;

/// The most ranges `kexec_load(KEXEC_RANGES)` takes.
const KEXEC_RANGES_MAX: usize = 1 << 18;

/// The kernel's build id, from /sys/kernel/notes (the GNU build-id note).
pub fn own_build_id() -> Result<Vec<u8>> {
    let notes = fs::read("/sys/kernel/notes").context("/sys/kernel/notes")?;
    if let Some(id) = elfcore::find_note(&notes, 4, b"GNU", Some(NT_GNU_BUILD_ID)) {
        return Ok(id.to_vec());
    }
    bail!("this kernel has no build id (CONFIG_BUILD_ID / --build-id): images cannot be matched to it")
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// A number that tells this hibernation from any other: it ties the
/// "resumed" mark on the device to this run. Uniqueness is all it needs,
/// so GRND_INSECURE: plain getrandom() blocks until the kernel's random
/// pool is ready, which early after boot under emulation took a second.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let n = rustix::rand::getrandom(&mut b, GetRandomFlags::INSECURE).unwrap_or(0);
    let mut v = u64::from_le_bytes(b);
    // Kernels before 5.6 lack GRND_INSECURE: the clock then.
    if n != 8 {
        v ^= (sys::boottime() * 1e9) as u64;
    }
    v
}

/// A value `key=` on this kernel's command line.
pub fn cmdline_value(key: &str) -> Option<String> {
    let c = fs::read_to_string("/proc/cmdline").ok()?;
    c.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .map(String::from)
}

/// B runs this very binary as its init, with nothing else in its
/// initramfs: a dynamically linked kjump would find no loader or
/// libraries there, B's kernel would panic for want of an init, and A's
/// session would be lost. Refuse it in A.
fn static_binary(exe: &[u8]) -> Result<()> {
    const PT_INTERP: u32 = 3;
    let num = |at: usize, len: usize| -> Option<u64> {
        let b = exe.get(at..at.checked_add(len)?)?;
        Some(b.iter().rev().fold(0, |v, x| v << 8 | u64::from(*x)))
    };
    let headers = (|| {
        let (off, size, n) = (num(0x20, 8)?, num(0x36, 2)?, num(0x38, 2)?);
        (0..n)
            .map(|i| num(usize::try_from(off + i * size).ok()?, 4))
            .collect::<Option<Vec<_>>>()
    })();
    match headers {
        None => bail!("/proc/self/exe is not an ELF file kjump can read"),
        Some(types) if types.contains(&u64::from(PT_INTERP)) => bail!(
            "this kjump is dynamically linked: B runs it as its init with no libraries, and would not start; use a static build (scripts/build-harness.sh makes one)"
        ),
        Some(_) => Ok(()),
    }
}

/// The drivers between `dev` and its bus that are loadable modules (they
/// have /sys/module/NAME/initstate): B boots with kjump as its only
/// initramfs content, so it cannot load them and would not find the disk.
fn modular_drivers(dev: &str) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(rdev) = fs::metadata(dev).map(|m| m.rdev()) else {
        return Vec::new();
    };
    let sys = format!("/sys/dev/block/{}:{}", libc::major(rdev), libc::minor(rdev));
    let Ok(mut at) = fs::canonicalize(sys) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    loop {
        if let Some(name) = fs::read_link(at.join("driver/module"))
            .ok()
            .and_then(|m| Some(m.file_name()?.to_str()?.to_string()))
        {
            if std::path::Path::new("/sys/module")
                .join(&name)
                .join("initstate")
                .exists()
                && !out.contains(&name)
            {
                out.push(name);
            }
        }
        if !at.pop() || at == std::path::Path::new("/sys/devices") {
            break;
        }
    }
    out
}

/// Like swsusp's image_size: when A uses more than `target_mib` (by
/// default 2/5 of its RAM, swsusp's default), drop its clean page cache
/// before the jump. A counts its page cache as used, so a full one makes
/// the image larger and can make it too large to resume: the resuming
/// kernel needs a free page for every used page of A at once. What A uses
/// beyond that stays; the resume checks that it fits.
fn shrink(target_mib: Option<u64>) -> Result<()> {
    use crate::resume::meminfo_kib;
    let total = meminfo_kib("MemTotal:");
    let used = |free: u64| total.saturating_sub(free) >> 10;
    let target = target_mib.unwrap_or((total >> 10) * 2 / 5);
    let before = used(meminfo_kib("MemFree:"));
    if before <= target {
        return Ok(());
    }
    sys::sync();
    fs::write("/proc/sys/vm/drop_caches", "1").context("dropping the page cache")?;
    let after = used(meminfo_kib("MemFree:"));
    println!(
        "kjump: A used {before} MiB, more than the image size {target} MiB: dropped {} MiB of clean page cache",
        before.saturating_sub(after)
    );
    Ok(())
}

/// The next boot must look for the image, or it boots normally and the
/// image goes stale: refuse unless this boot's command line has
/// kjump.resume= naming `dev` (the same device), as the next boot of the
/// same entry will, or the caller says the next boot's entry has it.
fn next_boot_resumes(dev: &str, elsewhere: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if elsewhere {
        return Ok(());
    }
    let want = fs::metadata(dev).with_context(|| dev.to_string())?.rdev();
    let cmdline = fs::read_to_string("/proc/cmdline").context("/proc/cmdline")?;
    let named = cmdline
        .split_whitespace()
        .filter_map(|a| a.strip_prefix("kjump.resume="))
        .filter_map(|d| device::resolve(d).ok())
        .any(|d| fs::metadata(d).is_ok_and(|m| m.rdev() == want));
    if !named {
        bail!(
            "this boot's command line has no kjump.resume={dev}, so the next boot would not look for the image: add it to the boot entry (or pass --resume-elsewhere if the next boot's entry has it)"
        );
    }
    Ok(())
}

/// `dev` read-only, with O_DIRECT where it allows: B looks at every disk
/// for A's mark, and must not be able to write any of them by mistake.
fn open_direct_readonly(dev: &str) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = |flags| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(dev)
    };
    open(libc::O_DIRECT).or_else(|_| open(0))
}

/// Block 0 of `dev`, read or written past the page cache (A reads the
/// device again after the jump, when other kernels have written it).
fn block0(dev: &str, write: Option<&[u8]>) -> Result<Vec<u8>> {
    let f = match write {
        Some(_) => device::open_exclusive(dev),
        None => open_direct_readonly(dev),
    }
    .with_context(|| dev.to_string())?;
    let mut page = AlignedBuf::new(PAGE as usize);
    match write {
        Some(b) => {
            page.bytes_mut()[..b.len()].copy_from_slice(b);
            f.write_all_at(page.bytes(), 0)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("marking {dev}"))?;
        }
        None => f
            .read_exact_at(page.bytes_mut(), 0)
            .with_context(|| dev.to_string())?,
    }
    Ok(page.bytes().to_vec())
}

/// Block 0 of a device claimed for the hibernation `nonce`.
fn claim(nonce: u64) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[..8].copy_from_slice(image::MAGIC_CLAIM);
    c[8..].copy_from_slice(&nonce.to_le_bytes());
    c
}

/// Block 0 of a device whose hibernation `nonce` failed in B: the claim,
/// then why (NUL-terminated, cut to the block), for A to say.
fn failure(nonce: u64, why: &str) -> Vec<u8> {
    let mut b = claim(nonce).to_vec();
    b.extend(why.bytes().take(PAGE as usize - b.len() - 1));
    b
}

/// Why B failed, when B's kernel came back to A without kjump saying.
const STOPPED: &str =
    "B's kernel stopped before the image was complete (a panic, see B's messages)";

/// A failure that the test harness asks of B (`kjump.inject=what` on
/// B's command line), to show that A survives it.
fn injected(what: &str) -> bool {
    cmdline_value("kjump.inject").as_deref() == Some(what)
}

/// In A, after the jump: why B failed, if B could leave it on `block0`.
fn failure_in_b(block0: &[u8], nonce: u64) -> Option<String> {
    let text = block0.strip_prefix(&claim(nonce)[..])?;
    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
    (end > 0).then(|| String::from_utf8_lossy(&text[..end]).into_owned())
}

/// In B: the disk A marked for this hibernation. B's names for disks
/// need not be A's (drivers probe in another order), so `hint`, A's name,
/// is tried first, then every block device, until one carries the mark.
fn claimed_device(hint: &str, nonce: u64) -> Result<String> {
    let want = claim(nonce);
    for _ in 0..100 {
        let names = fs::read_dir("/sys/class/block")
            .map(|d| {
                d.filter_map(|e| Some(format!("/dev/{}", e.ok()?.file_name().to_str()?)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for dev in std::iter::once(hint.to_string()).chain(names) {
            if block0(&dev, None).is_ok_and(|h| h[..16] == want) {
                return Ok(dev);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bail!("no disk carries this hibernation's mark (A's {hint}, kjump.nonce={nonce:x}) after 10 s")
}

/// Processes that hold memfd_secret() memory: hibernation would write it
/// to disk, so the kernel's own hibernation refuses while any exists, and
/// so does kjump.
fn secretmem_holders() -> Vec<String> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|c| c.is_ascii_digit()))
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|m| m.contains("secretmem"))
        })
        .collect()
}

/// B's own crashkernel=, for its panic return (crate::panic_return): the
/// kernel reserves it 16 MiB-aligned, inside B's memory.
const B_PANIC_RESERVATION_MIB: u64 = 1;

/// B's initramfs: kjump as /init and, for a sealed image, the key. The
/// key goes into a second archive appended to the first (the kernel
/// unpacks both): it is copied into the result only, whose every copy
/// kjump zeroes once B is loaded (crate::load), so A keeps no copy in the
/// memory the image saves.
fn b_initramfs(exe: &[u8], key: Option<&DataKey>) -> Vec<u8> {
    let mut main = newc::Archive::new();
    main.add_char_dev("dev/console", 0o600, 5, 1);
    main.add_dir("proc");
    main.add_dir("sys");
    main.add_file("init", exe, 0o755);
    let main = main.finish();
    let Some(key) = key else {
        return main;
    };
    // Built around zeros, then the key written in place: the archive's
    // own buffer never holds it.
    let mut keys = newc::Archive::new();
    keys.add_file(KEY_FILE, &[0u8; seal::HANDOFF], 0o400);
    let keys = keys.finish();
    let name = format!("{KEY_FILE}\0");
    let at = keys
        .windows(name.len())
        .position(|w| w == name.as_bytes())
        .expect("the key's entry")
        + name.len();
    let at = main.len() + at.next_multiple_of(4);
    let mut out = Vec::with_capacity(main.len() + keys.len());
    out.extend_from_slice(&main);
    out.extend_from_slice(&keys);
    out[at..at + seal::HANDOFF].copy_from_slice(&key.handoff());
    out
}

/// In A: hibernate to `dev` through a kexec jump to `kernel`; the image
/// sealed by `passphrase`, or in clear without one.
pub fn hibernate(
    dev: &str,
    kernel: &str,
    append: &str,
    resume_elsewhere: bool,
    image_size_mib: Option<u64>,
    passphrase: Option<Zeroizing<Vec<u8>>>,
) -> Result<()> {
    let t0 = Instant::now();
    crate::trace("hibernate start");
    let dev = &device::resolve(dev)?;
    device::check_for_image(dev)?;
    next_boot_resumes(dev, resume_elsewhere)?;
    own_build_id()?;
    let mut exe = fs::read("/proc/self/exe").context("/proc/self/exe")?;
    static_binary(&exe)?;
    let modules = modular_drivers(dev);
    if !modules.is_empty() {
        bail!(
            "{dev}'s drivers are modules ({}): B starts with kjump alone and could not load them; build them into the kernel (=y)",
            modules.join(", ")
        );
    }
    let secret = secretmem_holders();
    if !secret.is_empty() {
        bail!(
            "process {} holds memfd_secret memory, which an image would put on disk: refused, as the kernel's hibernation refuses it",
            secret.join(", ")
        );
    }
    crate::trace("checks done");
    let consoles: Vec<String> = fs::read_to_string("/proc/cmdline")
        .unwrap_or_default()
        .split_whitespace()
        .filter(|w| w.starts_with("console="))
        .map(String::from)
        .collect();
    let nonce = random_u64();
    let key = passphrase.map(|p| DataKey::new(&p, nonce)).transpose()?;
    let initrd = b_initramfs(&exe, key.as_ref());
    // Not needed any more: zeroed, so that the image does not carry it
    // (a freed buffer may stay in A's heap).
    exe.zeroize();
    let sealed = key.is_some();
    drop(key);
    crate::trace("initramfs built");
    // Mark the device for B (and invalidate any older image on it: A is
    // running, so an older image is stale).
    block0(dev, Some(&claim(nonce)))?;
    // B's boot is on the way to the power-off, and B needs one disk:
    // loglevel=5 keeps B's boot chatter off the (possibly slow, serial)
    // console, warnings and errors still show; pty.legacy_count=0 (B
    // opens no pty; registering 256 BSD ones was half a second under
    // emulation), i8042.nokbd i8042.noaux (no keyboard or mouse: probing
    // the mouse was another half second).
    shrink(image_size_mib)?;
    // A's filesystems as the disks hold them, after a sync (a mount's
    // own superblock update may still wait in the page cache).
    sys::sync();
    let (guarded, unguarded) = filesystems::record()?;
    if !unguarded.is_empty() {
        println!(
            "kjump: not guarded against changes before the resume (not ext2/3/4): {}",
            unguarded.join(", ")
        );
    }
    let fs_arg: Vec<String> = guarded.iter().map(|g| g.to_arg()).collect();
    let b_cmdline = format!(
        "{} loglevel=5 pty.legacy_count=0 i8042.nokbd i8042.noaux rdinit=/init panic=10 kunit.enable=0 crashkernel={B_PANIC_RESERVATION_MIB}M kjump.hibernate={dev} kjump.nonce={nonce:x} kjump.machine={:x} kjump.fs={} kjump.key={} {append}",
        consoles.join(" "),
        crate::machine::id(),
        if fs_arg.is_empty() { "-".to_string() } else { fs_arg.join(",") },
        if sealed { "passphrase" } else { "none" }
    );
    load::load(load::Request {
        kernel,
        initrd: Some(load::Initrd::Bytes(initrd)),
        append: &b_cmdline,
        // One image writer at least (see writers()), and B's own
        // reservation for its panic return.
        runtime: 2 * WRITER_BYTES + (B_PANIC_RESERVATION_MIB << 20),
    })?;
    crate::trace("load returned");
    if sealed {
        println!("kjump: the image will be sealed (XChaCha20-Poly1305, its key wrapped by the passphrase through Argon2id)");
    } else {
        println!("kjump: the image will NOT be encrypted (--key none): whoever can read {dev} can read this kernel's memory");
    }
    println!(
        "kjump: hibernating to {dev} (B loaded in {:.2} s)",
        t0.elapsed().as_secs_f64()
    );
    crate::trace("jumping");
    let jumped = crate::jump::jump("hibernate");
    // Whatever happened, B is spent: a cold boot overwrote it, or it gave up.
    // With KJUMP_KEEP_B=1 (tests), B stays loaded: after a resume the
    // kernel itself must refuse to enter it again.
    let unloaded = if std::env::var_os("KJUMP_KEEP_B").is_some_and(|v| v == "1") {
        Ok(())
    } else {
        sys::kexec_load(0, &[], sys::KEXEC_PRESERVE_CONTEXT)
    };
    crate::state::clear();
    let away = jumped?;
    unloaded.map_err(|e| anyhow::anyhow!(sys::explain("unloading B", &e)))?;
    let hb = block0(dev, None)?;
    let resumed = image::RawHeader::view(&hb)
        .is_some_and(|r| &r.magic == image::MAGIC_RESUMED && r.nonce.get() == nonce);
    if !resumed {
        match failure_in_b(&hb, nonce) {
            Some(why) => bail!("B came back without a resumed image on {dev}: {why}"),
            None => bail!("B came back without a resumed image on {dev} (see B's messages above)"),
        }
    }
    println!("kjump: resumed from the image on {dev} after {away:.1} s");
    let end = image::RawHeader::view(&hb).map_or(0, |r| r.image_end.get());
    // A is back whatever happens here: a failure is reported, not fatal.
    match wipe(dev, end) {
        Ok(how) => println!(
            "kjump: wiped the image's {} MiB on {dev} ({how})",
            end.saturating_sub(PAGE) >> 20
        ),
        Err(e) => println!("kjump: the image's data stay on {dev}: {e:#}"),
    }
    Ok(())
}

/// In A, resumed: the image's data on `dev` (up to `end`) goes, so that
/// this memory is not left on the disk. Zeroed through the block layer
/// (fallocate on a block device: PUNCH_HOLE is BLKZEROOUT without the
/// fallback, done by discard or write-zeroes; ZERO_RANGE is BLKZEROOUT),
/// else written with zeros. Block 0 keeps its resumed mark and says so.
fn wipe(dev: &str, end: u64) -> Result<&'static str> {
    use rustix::fs::{fallocate, FallocateFlags};
    let file = device::open_exclusive(dev).with_context(|| dev.to_string())?;
    let end = end.min(device::image_limit((&file).seek(SeekFrom::End(0))?));
    let len = end.saturating_sub(PAGE);
    let how = if len == 0 {
        "nothing to wipe"
    } else if fallocate(
        &file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        PAGE,
        len,
    )
    .is_ok()
    {
        "discarded"
    } else if fallocate(&file, FallocateFlags::ZERO_RANGE, PAGE, len).is_ok() {
        "zeroed"
    } else {
        let zeros = AlignedBuf::new(1 << 20);
        let mut at = PAGE;
        while at < end {
            let n = (end - at).min(1 << 20);
            file.write_all_at(&zeros.bytes()[..n as usize], at)
                .with_context(|| format!("zeroing the image on {dev}"))?;
            at += n;
        }
        "overwritten with zeros"
    };
    let mut b = AlignedBuf::new(PAGE as usize);
    file.read_exact_at(b.bytes_mut(), 0)
        .with_context(|| dev.to_string())?;
    let noted = image::noted(
        b.bytes(),
        &format!("its data wiped after the resume: {how}"),
    );
    b.bytes_mut().copy_from_slice(&noted);
    file.write_all_at(b.bytes(), 0)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("marking the image on {dev} wiped"))?;
    Ok(how)
}

/// Writes the image's pieces one after another on the device, each
/// padded to whole pages, through a page-aligned buffer (the device is
/// opened with O_DIRECT where it allows: no copy into B's small page
/// cache, no writeback behind it).
struct Writer {
    file: File,
    dev_len: u64,
    off: u64,
    chunks: Vec<Chunk>,
    buf: AlignedBuf,
}

impl Writer {
    /// Writes `bytes` at `at`, padded with zeros to whole pages.
    fn write_at(&mut self, bytes: &[u8], at: u64) -> Result<u64> {
        let padded = (bytes.len() as u64).div_ceil(PAGE) * PAGE;
        if at + padded > self.dev_len {
            bail!(
                "the device is too small for A's image: {} MiB written and more to come, the device has {} MiB",
                at >> 20,
                self.dev_len >> 20
            );
        }
        let cap = self.buf.cap;
        for (i, piece) in bytes.chunks(cap).enumerate() {
            let len = piece.len().div_ceil(PAGE as usize) * PAGE as usize;
            let b = self.buf.bytes_mut();
            b[..piece.len()].copy_from_slice(piece);
            b[piece.len()..len].fill(0);
            self.file
                .write_all_at(&self.buf.bytes()[..len], at + (i * cap) as u64)
                .context("writing the image")?;
        }
        Ok(padded)
    }

    /// Appends `bytes`; returns where they start.
    fn write(&mut self, bytes: &[u8]) -> Result<u64> {
        let at = self.off;
        self.off += self.write_at(bytes, at)?;
        Ok(at)
    }

    /// Appends chunk `c`, sealed if the image is.
    fn chunk(&mut self, c: Compressed) -> Result<()> {
        let off = self.write(&c.comp)?;
        self.chunks.push(Chunk {
            off,
            comp_len: c.comp.len() as u32,
            raw_len: c.raw_len,
            sum: c.sum,
        });
        Ok(())
    }
}

/// Gathers data pages into a chunk's runs.
struct ChunkBuilder {
    raw: Vec<u8>,
    /// Where the open run's header is in `raw`, and its next page frame.
    run: Option<(usize, u64)>,
}

impl ChunkBuilder {
    /// A chunk's buffer, large enough from the start: a buffer that grew
    /// would leave copies of A's pages in what it freed.
    fn buffer() -> Vec<u8> {
        Vec::with_capacity(CHUNK_RAW + 2 * PAGE as usize)
    }

    fn new() -> Self {
        Self {
            raw: Self::buffer(),
            run: None,
        }
    }

    /// Adds a page; returns the chunk once it is full.
    fn page(&mut self, pfn: u64, data: &[u8]) -> Option<Vec<u8>> {
        match self.run {
            Some((hdr, next)) if next == pfn => {
                let pages = u64::from_le_bytes(self.raw[hdr + 8..hdr + 16].try_into().unwrap());
                self.raw[hdr + 8..hdr + 16].copy_from_slice(&(pages + 1).to_le_bytes());
            }
            _ => {
                let hdr = self.raw.len();
                self.raw
                    .extend_from_slice(&image::encode_runs(&[Run { pfn, pages: 1 }]));
                self.run = Some((hdr, pfn));
            }
        }
        self.raw.extend_from_slice(data);
        self.run = self.run.map(|(h, _)| (h, pfn + 1));
        (self.raw.len() >= CHUNK_RAW).then(|| self.take())
    }

    fn take(&mut self) -> Vec<u8> {
        self.run = None;
        std::mem::replace(&mut self.raw, Self::buffer())
    }
}

/// A chunk as a worker left it: LZ4, or stored as it is; sealed if the
/// image is.
struct Compressed {
    seq: usize,
    comp: Vec<u8>,
    raw_len: u32,
    sum: u64,
}

/// LZ4 of `raw` when it comes out smaller; else `raw` itself (a chunk
/// whose stored length is its raw length is not compressed). Data that
/// does not compress costs the whole compression time and saves nothing,
/// so eight 8 KiB samples spread over the chunk decide first.
/// What one compression writer holds at most: the chunk it compresses and
/// its output, one queued behind it and one finished, waiting its turn.
pub const WRITER_BYTES: u64 = 4 * CHUNK_RAW_MAX as u64;

/// Writers for B's image: one a CPU (at most 8), as many as half of what
/// B's memory has available can hold (the other half stays for the page
/// cache of /proc/vmcore and the block layer). B's reservation, not its
/// CPU count, sets the bound: a machine with many CPUs and a small
/// crashkernel= must not run B out of memory.
fn writers(available: u64, cpus: usize) -> Result<usize> {
    let fit = (available / 2 / WRITER_BYTES) as usize;
    if fit == 0 {
        bail!(
            "B has {} MiB of memory available, one image writer needs {} MiB: boot A with a larger crashkernel=",
            available >> 20,
            (2 * WRITER_BYTES) >> 20
        );
    }
    let n = fit.min(cpus).min(8);
    println!(
        "kjump: B has {} MiB available: {n} image writer(s)",
        available >> 20
    );
    Ok(n)
}

fn compress(seq: usize, mut raw: Vec<u8>, key: Option<&DataKey>) -> Compressed {
    let raw_len = raw.len() as u32;
    let mut packed = if worth_compressing(&raw) {
        lz4_flex::block::compress(&raw)
    } else {
        Vec::new()
    };
    let smaller = !packed.is_empty() && packed.len() < raw.len();
    let comp = match key {
        None if smaller => packed,
        None => raw,
        Some(k) => {
            let sealed = k.seal_chunk(seq as u64, if smaller { &packed } else { &raw });
            // A's pages stay in B's memory in clear only until sealed.
            raw.zeroize();
            packed.zeroize();
            sealed
        }
    };
    Compressed {
        seq,
        // A sealed chunk's tag checks it: no checksum.
        sum: if key.is_some() { 0 } else { image::sum(&comp) },
        comp,
        raw_len,
    }
}

/// Whether LZ4 shrinks one of 64 samples of `raw` by an eighth or more
/// (a chunk of random bytes is stored as it is).
fn worth_compressing(raw: &[u8]) -> bool {
    // Many small samples: where random data meets other pages (a process's
    // random buffer next to page cache or kernel text), a region that
    // packs well is caught if it spans 64 KiB.
    const SAMPLES: usize = 64;
    const SAMPLE: usize = 1 << 10;
    if raw.len() < SAMPLES * SAMPLE {
        return true;
    }
    let step = raw.len() / SAMPLES;
    // On the stack and wiped: the samples are A's memory in clear.
    let mut out = [0u8; 2 * SAMPLE];
    let packs = (0..SAMPLES).any(|i| {
        lz4_flex::block::compress_into(&raw[i * step..i * step + SAMPLE], &mut out)
            .is_ok_and(|n| n < SAMPLE * 7 / 8)
    });
    out.zeroize();
    packs
}

/// Prints progress every tenth of the work, and at 99%.
struct Progress {
    total: u64,
    done: u64,
    next_tenth: u64,
    said_99: bool,
    start: Instant,
}

impl Progress {
    fn add(&mut self, pages: u64, bytes_out: u64) {
        self.done += pages;
        let pct = self.done * 100 / self.total.max(1);
        let at_99 = pct >= 99 && !self.said_99;
        if pct < self.next_tenth * 10 && !at_99 {
            return;
        }
        while self.next_tenth * 10 <= pct {
            self.next_tenth += 1;
        }
        self.said_99 |= pct >= 99;
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let rate = (self.done * PAGE) as f64 / secs / 1e6;
        let eta = secs * (self.total.saturating_sub(self.done)) as f64 / self.done.max(1) as f64;
        println!(
            "kjump: hibernate {pct}% {}/{} pages, {rate:.1} MB/s, {} MiB written, ETA {eta:.0} s",
            self.done,
            self.total,
            bytes_out >> 20
        );
    }
}

/// A's pages to consider: every page frame of the dump's RAM from 1 MiB
/// on, in ascending runs.
fn candidate_runs(core: &Vmcore) -> Vec<(u64, u64, u64)> {
    core.loads
        .iter()
        .filter_map(|l| {
            let first = l.paddr.div_ceil(PAGE).max(FIRST_PFN);
            let end = (l.paddr + l.len) / PAGE;
            (end > first).then_some((first, end, l.offset + (first * PAGE - l.paddr)))
        })
        .collect()
}

/// In B: writes A's image to `dev`. A's used pages are those outside the
/// free map; zero pages are listed in the page map but carry no data.
/// This thread reads A's pages (mapped) and gathers chunks; one worker
/// per CPU compresses (and seals, with `key`) them; chunks are written
/// in order.
pub fn write_image(
    dev: &str,
    nonce: u64,
    entry: u64,
    machine: u64,
    filesystems: Vec<Guarded>,
    key: Option<&DataKey>,
    cpus: &[usize],
) -> Result<Header> {
    let core = Vmcore::open("/proc/vmcore")?;
    let build_id = core
        .info("BUILD-ID")
        .and_then(unhex)
        .context("A's VMCOREINFO has no BUILD-ID")?;
    let free = core.free_map()?;
    if free.is_none() {
        println!("kjump: A recorded no free-page map: saving all of its RAM");
    }
    let is_free = |pfn| free.as_ref().is_some_and(|f: &FreeMap| f.is_free(pfn));
    let runs = candidate_runs(&core);
    let total: u64 = runs
        .iter()
        .map(|&(a, b, _)| (a..b).filter(|&p| !is_free(p)).count() as u64)
        .sum();
    let map = core.map()?;
    let a_mem = &map[..];

    if device::signature(dev)?.is_none() {
        bail!("{dev} carries this hibernation's mark but no kjump signature");
    }
    let mut file = device::open_exclusive(dev).with_context(|| dev.to_string())?;
    // Up to the signature block, which stays.
    let dev_len = device::image_limit(file.seek(SeekFrom::End(0))?);
    let mut w = Writer {
        file,
        dev_len,
        off: PAGE,
        chunks: Vec::new(),
        buf: AlignedBuf::new(CHUNK_RAW + 16 * PAGE as usize),
    };
    // No header until everything else is on the device; until then, what
    // A reads there if B's kernel stops (kjump's own errors replace it).
    w.write_at(&failure(nonce, STOPPED), 0)
        .and_then(|_| w.file.sync_all().context("flushing"))
        .with_context(|| format!("invalidating {dev}"))?;
    if injected("oom") {
        // B's init holds all it can: the OOM killer finds nothing it may
        // kill, and B's kernel panics.
        let mut held: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut v = vec![0u8; 16 << 20];
            v.iter_mut().step_by(PAGE as usize).for_each(|b| *b = 1);
            held.push(v);
        }
    }
    let mut progress = Progress {
        total,
        done: 0,
        next_tenth: 1,
        said_99: false,
        start: Instant::now(),
    };
    let mut used: Vec<Run> = Vec::new();
    let (mut data_pages, mut free_pages) = (0u64, 0u64);
    let workers = writers(
        crate::resume::meminfo_kib("MemAvailable:") << 10,
        cpus.len().max(1),
    )?;

    let (job_tx, job_rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(workers);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Compressed>();
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..workers {
            let (rx, tx) = (&job_rx, done_tx.clone());
            scope.spawn(move || {
                // Every CPU, not only B's init's.
                let _ = sys::run_on(cpus);
                loop {
                    let job = rx
                        .lock()
                        .map_err(|_| ())
                        .and_then(|r| r.recv().map_err(|_| ()));
                    let Ok((seq, raw)) = job else { break };
                    if tx.send(compress(seq, raw, key)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // Chunks come back in any order: write them in sequence.
        let mut pending = BTreeMap::new();
        let mut write_ready = |w: &mut Writer, c: Option<Compressed>| -> Result<()> {
            if let Some(c) = c {
                pending.insert(c.seq, c);
            }
            while let Some(c) = pending.remove(&w.chunks.len()) {
                w.chunk(c)?;
            }
            Ok(())
        };
        let mut chunks = ChunkBuilder::new();
        let (mut seq, mut since) = (0, 0);
        for (first, end, offset) in runs {
            for pfn in first..end {
                if is_free(pfn) {
                    free_pages += 1;
                    continue;
                }
                let at = (offset + (pfn - first) * PAGE) as usize;
                let page = &a_mem[at..at + PAGE as usize];
                match used.last_mut() {
                    Some(r) if r.pfn + r.pages == pfn => r.pages += 1,
                    _ => used.push(Run { pfn, pages: 1 }),
                }
                since += 1;
                if page.iter().any(|&b| b != 0) {
                    data_pages += 1;
                    if let Some(raw) = chunks.page(pfn, page) {
                        job_tx.send((seq, raw)).context("a compressor stopped")?;
                        seq += 1;
                        while let Ok(c) = done_rx.try_recv() {
                            write_ready(&mut w, Some(c))?;
                        }
                    }
                }
                if since == 256 {
                    progress.add(since, w.off);
                    since = 0;
                    if progress.done * 2 >= progress.total {
                        // Mid-image, with writes in flight: B's kernel
                        // panics, on B's boot CPU or on another one.
                        if injected("crash") {
                            let _ = fs::write("/proc/sysrq-trigger", "c");
                        }
                        if injected("crash-elsewhere") {
                            let other =
                                cpus.iter().copied().filter(|&c| c != 0).collect::<Vec<_>>();
                            let _ = std::thread::spawn(move || {
                                let _ = sys::run_on(&other);
                                let _ = fs::write("/proc/sysrq-trigger", "c");
                            })
                            .join();
                        }
                    }
                }
            }
        }
        progress.add(since, w.off);
        if !chunks.raw.is_empty() {
            job_tx
                .send((seq, chunks.take()))
                .context("a compressor stopped")?;
        }
        drop(job_tx);
        for c in done_rx {
            write_ready(&mut w, Some(c))?;
        }
        write_ready(&mut w, None)
    })?;

    if used.len() > KEXEC_RANGES_MAX {
        bail!(
            "A's used pages form {} ranges, more than a ranges image takes ({KEXEC_RANGES_MAX})",
            used.len()
        );
    }
    let map = image::encode_runs(&used);
    let map_off = w.write(&map)?;
    let index = image::encode_index(&w.chunks);
    let index_off = w.write(&index)?;
    let mut header = Header {
        build_id,
        entry,
        nonce,
        nr_ranges: used.len() as u64,
        map_off,
        map_len: map.len() as u64,
        map_sum: image::sum(&map),
        nr_chunks: w.chunks.len() as u64,
        index_off,
        index_len: index.len() as u64,
        index_sum: image::sum(&index),
        image_end: w.off,
        used_pages: used.iter().map(|r| r.pages).sum(),
        data_pages,
        free_pages,
        machine,
        filesystems,
        seal: key.map(|k| k.seal.clone()),
    };
    if let Some(k) = key {
        let tag = k.tag(&[&image::tagged_header(&header.encode()), &map, &index]);
        header.seal.as_mut().expect("sealed").tag = tag;
    }
    // Everything else first, then the header, each flushed.
    w.file.sync_all().context("flushing the image")?;
    w.write_at(&header.encode(), 0)
        .and_then(|_| w.file.sync_all().context("flushing"))
        .context("writing the image header")?;
    w.file.flush()?;
    Ok(header)
}

/// In B: the image's key, from the initramfs A made. The file is zeroed,
/// then removed: its page (B's rootfs keeps files in memory) is freed as
/// it is, and must not hold the key then.
fn key_from_a() -> Result<DataKey> {
    let path = format!("/{KEY_FILE}");
    let bytes = Zeroizing::new(fs::read(&path).context("the image key A put in B's initramfs")?);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.write_all_at(&vec![0u8; bytes.len()], 0))
        .and_then(|_| fs::remove_file(&path))
        .context("erasing the image key A put in B's initramfs")?;
    DataKey::from_handoff(&bytes)
}

/// kjump as B's init: mounts what it needs, writes A's image to the
/// device named by kjump.hibernate= and powers off. If it cannot, it says
/// why and jumps back to A, which goes on running.
pub fn run_as_init() -> ! {
    for (fs, at) in [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev")] {
        if let Err(e) = sys::mount(fs, at) {
            println!("kjump: mounting {fs} on {at}: {e}");
        }
    }
    let booted = fs::read_to_string("/proc/uptime").unwrap_or_default();
    println!(
        "kjump: B's init runs {} s after B's start",
        booted.split_whitespace().next().unwrap_or("?")
    );
    // A panic here must not kill B's init (B's kernel would panic and
    // reboot, and A's session would be lost): it jumps back like any error.
    // The device, once found: B's failure is left on it for A to print.
    let mut claimed: Option<(String, u64)> = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<Header> {
        let dev =
            cmdline_value("kjump.hibernate").context("no kjump.hibernate= on the command line")?;
        let nonce = cmdline_value("kjump.nonce")
            .and_then(|n| u64::from_str_radix(&n, 16).ok())
            .context("no kjump.nonce= on the command line")?;
        let entry =
            crate::jump::back_entry()?.context("no kexec_jump_back_entry= on the command line")?;
        // The panic return works on the boot CPU only: B's init, whose
        // failures (an OOM, a SIGBUS on the dump) panic in its context,
        // stays there; the image writers use every CPU.
        let cpus = sys::online_cpus();
        if let Err(e) = sys::run_on(&[0]) {
            println!("kjump: binding B's init to CPU 0: {e}");
        }
        match crate::panic_return::arm(entry) {
            Ok(()) => println!("kjump: a panic of B's kernel jumps back to A"),
            Err(e) => println!("kjump: a panic of B's kernel reboots, A is lost then: {e:#}"),
        }
        let dev = claimed_device(&dev, nonce)?;
        claimed = Some((dev.clone(), nonce));
        if injected("panic") {
            panic!("injected (kjump.inject=panic)");
        }
        let t = Instant::now();
        // A's machine, as A saw it (B's firmware map is A's, but B may
        // lack A's view of DMI): handed over on B's command line.
        let machine = cmdline_value("kjump.machine")
            .and_then(|n| u64::from_str_radix(&n, 16).ok())
            .context("no kjump.machine= on the command line")?;
        let fs = cmdline_value("kjump.fs").context("no kjump.fs= on the command line")?;
        let filesystems = fs
            .split(',')
            .filter(|a| *a != "-")
            .map(|a| Guarded::from_arg(a).with_context(|| format!("kjump.fs={fs}: {a}?")))
            .collect::<Result<Vec<_>>>()?;
        let key = match cmdline_value("kjump.key").as_deref() {
            Some("none") => None,
            Some("passphrase") => Some(key_from_a()?),
            k => bail!("kjump.key={k:?} on the command line: want none or passphrase"),
        };
        let h = write_image(&dev, nonce, entry, machine, filesystems, key.as_ref(), &cpus)?;
        drop(key);
        println!(
            "kjump: image written to {dev} in {:.1} s: {} used pages in {} ranges, {} with data, {} zero, {} free left out, {} MiB, {}",
            t.elapsed().as_secs_f64(),
            h.used_pages,
            h.nr_ranges,
            h.data_pages,
            h.used_pages - h.data_pages,
            h.free_pages,
            h.image_end >> 20,
            if h.seal.is_some() { "sealed" } else { "not encrypted" }
        );
        Ok(h)
    }))
    .unwrap_or_else(|p| {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(anyhow::anyhow!("kjump panicked in B: {what}"))
    });
    match r {
        Ok(_) => {
            println!("kjump: powering off");
            let e = sys::power_off();
            println!("kjump: power off failed: {e}");
        }
        Err(e) => {
            println!("kjump: hibernate failed in B: {e:#}; jumping back to A");
            if let Some((dev, nonce)) = &claimed {
                // Best effort: the device may be what failed.
                let _ = block0(dev, Some(&failure(*nonce, &format!("{e:#}"))));
            }
            if let Err(e) = crate::jump::back() {
                println!("kjump: {e:#}; powering off");
                sys::power_off();
            }
        }
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b_failure_reaches_a_through_block0() {
        let mut b0 = failure(7, "writing /dev/vda: Input/output error");
        b0.resize(PAGE as usize, 0);
        let why = failure_in_b(&b0, 7);
        assert_eq!(why.as_deref(), Some("writing /dev/vda: Input/output error"));
        // Another hibernation's claim, or a bare claim: nothing to say.
        assert_eq!(failure_in_b(&b0, 8), None);
        let mut bare = claim(7).to_vec();
        bare.resize(PAGE as usize, 0);
        assert_eq!(failure_in_b(&bare, 7), None);
        // A reason longer than the block is cut, never overflows it.
        assert!(failure(7, &"x".repeat(10000)).len() < PAGE as usize);
    }

    #[test]
    fn writers_follow_memory_not_cpus() {
        let w = WRITER_BYTES;
        // Many CPUs, memory for two writers (half of it for them).
        assert_eq!(writers(4 * w + 1, 64).unwrap(), 2);
        assert_eq!(writers(1 << 40, 3).unwrap(), 3);
        assert_eq!(writers(1 << 40, 64).unwrap(), 8);
        let e = writers(2 * w - 1, 4).unwrap_err().to_string();
        assert!(e.contains("larger crashkernel="), "{e}");
    }

    #[test]
    fn dynamic_binaries_are_refused() {
        // An ELF header with one program header of the given type.
        let elf = |kind: u32| {
            let mut b = vec![0u8; 0x40 + 0x38];
            b[..4].copy_from_slice(b"\x7fELF");
            b[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
            b[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
            b[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
            b[0x40..0x44].copy_from_slice(&kind.to_le_bytes());
            b
        };
        assert!(static_binary(&elf(1)).is_ok());
        let e = static_binary(&elf(3)).unwrap_err().to_string();
        assert!(e.contains("dynamically linked"), "{e}");
        assert!(static_binary(&[0u8; 8]).is_err());
    }

    #[test]
    fn chunks_that_do_not_shrink_are_stored() {
        let zeros = compress(0, vec![0u8; 1 << 20], None);
        assert!((zeros.comp.len() as u32) < zeros.raw_len);
        // xorshift: bytes LZ4 cannot shrink.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(!worth_compressing(&noise));
        let stored = compress(1, noise.clone(), None);
        assert_eq!(stored.comp, noise);
        assert_eq!(stored.sum, image::sum(&noise));
        // Noise with 128 KiB of zeros: worth it, and it shrinks by about
        // that much.
        let mut gap = noise.clone();
        gap[(5 << 16) + 4096..(7 << 16) + 4096].fill(0);
        assert!(worth_compressing(&gap));
        assert!(compress(3, gap, None).comp.len() < (1 << 20) - (100 << 10));
        // Half noise, half zeros: worth it, and it shrinks.
        let mut half = noise[..1 << 19].to_vec();
        half.resize(1 << 20, 0);
        assert!(worth_compressing(&half));
        assert!(compress(2, half, None).comp.len() < 3 << 18);
    }
}
