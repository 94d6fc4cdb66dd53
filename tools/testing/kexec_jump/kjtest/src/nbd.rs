// SPDX-License-Identifier: GPL-2.0

//! A disk with a volatile write cache, for QEMU: an NBD server (fixed
//! newstyle handshake, simple replies) on a unix socket, backed by a host
//! file. Written blocks stay in memory until a FLUSH (or a write with
//! FUA) commits them to the file, as in a drive's write cache; a power
//! cut drops them. The test can cut the power (at once, or at the write
//! that passes a number of bytes) and make writes fail with EIO.
//!
//! QEMU attaches it with `-drive driver=nbd,server.type=unix,...,
//! cache=writeback`: the guest sees a write-back cache and flushes it.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{self, Read, Write},
    os::unix::{
        fs::FileExt,
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    thread,
};

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const FLAG_C_NO_ZEROES: u32 = 2;

const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = 0x8000_0001;
const INFO_EXPORT: u16 = 0;

const TX_HAS_FLAGS: u16 = 1;
const TX_SEND_FLUSH: u16 = 4;
const TX_SEND_FUA: u16 = 8;
const TX_SEND_TRIM: u16 = 32;
const TX_SEND_WRITE_ZEROES: u16 = 64;

const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const CMD_TRIM: u16 = 4;
const CMD_WRITE_ZEROES: u16 = 6;
const CMD_FLAG_FUA: u16 = 1;

const EIO: u32 = 5;
const EINVAL: u32 = 22;

/// The cache's unit.
const BLOCK: u64 = 4096;
/// The longest request served (QEMU's are at most 32 MiB).
const MAX_REQUEST: u32 = 64 << 20;

/// What the disk does wrong, from when the test arms it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Nothing.
    None,
    /// The power is cut at the WRITE that would take the bytes written
    /// since arming past this many: it and every unflushed block are lost.
    CutAfter(u64),
    /// The power is cut right after a WRITE to block 0 that comes once
    /// this many bytes were written since arming, and the drive had put
    /// only block 0 of its cache on its media: a drive may write its
    /// cache in any order, and this one is the worst for a format that
    /// commits by writing block 0 last.
    CutAtBlock0After(u64),
    /// Every WRITE (or WRITE_ZEROES) reaching past this byte fails with
    /// EIO and changes nothing.
    FailWritesPast(u64),
}

/// A power cut, as the disk saw it.
#[derive(Clone, Debug)]
pub struct Cut {
    /// Bytes written since the fault was armed, up to the cut.
    pub written: u64,
    /// Unflushed 4 KiB blocks lost.
    pub lost_blocks: usize,
}

#[derive(Default)]
struct Counts {
    written: u64,
    flushes: u64,
    failed_writes: u64,
}

struct State {
    file: File,
    size: u64,
    /// The volatile cache: written blocks not yet committed to `file`.
    cache: BTreeMap<u64, Box<[u8]>>,
    fault: Fault,
    counts: Counts,
    cut: Option<Cut>,
    /// Power cuts so far: a connection made before the last one is dead.
    cuts: u64,
    /// Guests (connections) so far.
    guests: u64,
    /// Connections of a guest whose power was cut: open (the guest's
    /// requests hang, as on a dead disk) until the next guest connects.
    dead: Vec<UnixStream>,
    stop: bool,
}

impl State {
    /// Block `n` as the guest sees it: cached, or from the file.
    fn block(&self, n: u64) -> io::Result<Box<[u8]>> {
        if let Some(b) = self.cache.get(&n) {
            return Ok(b.clone());
        }
        let mut b = vec![0u8; BLOCK as usize].into_boxed_slice();
        let mut at = 0;
        while at < b.len() {
            match self.file.read_at(&mut b[at..], n * BLOCK + at as u64)? {
                0 => break,
                r => at += r,
            }
        }
        Ok(b)
    }

    fn read(&self, off: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len);
        let mut at = off;
        while out.len() < len {
            let b = self.block(at / BLOCK)?;
            let from = (at % BLOCK) as usize;
            let n = (BLOCK as usize - from).min(len - out.len());
            out.extend_from_slice(&b[from..from + n]);
            at += n as u64;
        }
        Ok(out)
    }

    /// Puts `data` (zeros if None) at `off` into the cache.
    fn write(&mut self, off: u64, len: usize, data: Option<&[u8]>) -> io::Result<()> {
        let mut done = 0;
        while done < len {
            let at = off + done as u64;
            let mut b = self.block(at / BLOCK)?;
            let from = (at % BLOCK) as usize;
            let n = (BLOCK as usize - from).min(len - done);
            match data {
                Some(d) => b[from..from + n].copy_from_slice(&d[done..done + n]),
                None => b[from..from + n].fill(0),
            }
            self.cache.insert(at / BLOCK, b);
            done += n;
        }
        Ok(())
    }

    /// Commits block `n` of the cache to the file.
    fn commit(&mut self, n: u64) -> io::Result<()> {
        match self.cache.remove(&n) {
            Some(b) => {
                let len = (self.size - n * BLOCK).min(BLOCK) as usize;
                self.file.write_all_at(&b[..len], n * BLOCK)
            }
            None => Ok(()),
        }
    }

    /// Commits the cache to the file.
    fn flush(&mut self) -> io::Result<()> {
        let blocks: Vec<u64> = self.cache.keys().copied().collect();
        for n in blocks {
            self.commit(n)?;
        }
        self.counts.flushes += 1;
        Ok(())
    }

    /// The power goes: the cache is lost.
    fn cut(&mut self) -> Cut {
        let cut = Cut {
            written: self.counts.written,
            lost_blocks: self.cache.len(),
        };
        self.cache.clear();
        self.fault = Fault::None;
        self.cut = Some(cut.clone());
        self.cuts += 1;
        cut
    }
}

struct Shared(Mutex<State>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The server. Dropping it stops it.
pub struct Nbd {
    socket: PathBuf,
    shared: Arc<Shared>,
}

impl Nbd {
    /// Serves `file` (its length is the disk's size) on `socket`.
    pub fn serve(file: &Path, socket: &Path) -> Result<Nbd, String> {
        let err = |p: &Path, e: io::Error| format!("{}: {e}", p.display());
        let f = File::options()
            .read(true)
            .write(true)
            .open(file)
            .map_err(|e| err(file, e))?;
        let size = f.metadata().map_err(|e| err(file, e))?.len();
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).map_err(|e| err(socket, e))?;
        let shared = Arc::new(Shared(Mutex::new(State {
            file: f,
            size,
            cache: BTreeMap::new(),
            fault: Fault::None,
            counts: Counts::default(),
            cut: None,
            cuts: 0,
            guests: 0,
            dead: Vec::new(),
            stop: false,
        })));
        let s = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let mut st = s.lock();
                if st.stop {
                    return;
                }
                // A new guest: the power is on again.
                st.dead.clear();
                st.guests += 1;
                let guest = st.guests;
                drop(st);
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                thread::spawn(move || connection(&s, stream, guest));
            }
        });
        Ok(Nbd {
            socket: socket.to_path_buf(),
            shared,
        })
    }

    /// The socket QEMU connects to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Arms `fault`, and counts from zero.
    pub fn arm(&self, fault: Fault) {
        let mut st = self.shared.lock();
        st.fault = fault;
        st.counts = Counts::default();
        st.cut = None;
    }

    /// FLUSHes (and FUA writes) since arming.
    pub fn flushes(&self) -> u64 {
        self.shared.lock().counts.flushes
    }

    /// WRITEs failed with EIO since arming.
    pub fn failed_writes(&self) -> u64 {
        self.shared.lock().counts.failed_writes
    }

    /// The cut, once there was one.
    pub fn cut(&self) -> Option<Cut> {
        self.shared.lock().cut.clone()
    }

    /// Cuts the power now: what is not flushed is lost, and nothing is
    /// served until the next guest connects.
    pub fn cut_now(&self) -> Cut {
        self.shared.lock().cut()
    }
}

impl Drop for Nbd {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        // Wakes the listener, which then sees `stop`.
        let _ = UnixStream::connect(&self.socket);
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Connection `guest`: the handshake, then its requests. A guest whose
/// power was cut gets no more replies: its connection stays open and
/// unanswered until the next guest connects. A guest that goes (QEMU
/// exited or was killed) takes the disk's power with it: what it did not
/// flush is lost.
fn connection(shared: &Shared, mut s: UnixStream, guest: u64) {
    let (size, power) = {
        let st = shared.lock();
        (st.size, st.cuts)
    };
    let r = handshake(&mut s, size).and_then(|go| match go {
        true => requests(shared, &mut s, power),
        false => Ok(()),
    });
    // A guest killed mid-request is no news; a protocol error is a bug.
    if let Some(e) = r.err().filter(|e| e.kind() == io::ErrorKind::InvalidData) {
        eprintln!("kjtest nbd: {e}");
    }
    let mut st = shared.lock();
    if st.cuts != power {
        st.dead.push(s);
    } else if st.guests == guest {
        st.cache.clear();
    }
}

fn read_u32(s: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    s.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(s: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    s.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// An option's reply.
fn opt_reply(s: &mut impl Write, opt: u32, kind: u32, data: &[u8]) -> io::Result<()> {
    let mut b = Vec::with_capacity(20 + data.len());
    b.extend_from_slice(&OPT_REPLY_MAGIC.to_be_bytes());
    b.extend_from_slice(&opt.to_be_bytes());
    b.extend_from_slice(&kind.to_be_bytes());
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    s.write_all(&b)
}

/// The fixed newstyle handshake: whether the client went on to the
/// transmission phase (NBD_OPT_GO or NBD_OPT_EXPORT_NAME; the name is
/// not looked at: there is one export).
fn handshake(s: &mut UnixStream, size: u64) -> io::Result<bool> {
    let tx_flags = TX_HAS_FLAGS | TX_SEND_FLUSH | TX_SEND_FUA | TX_SEND_TRIM | TX_SEND_WRITE_ZEROES;
    let mut hello = NBDMAGIC.to_be_bytes().to_vec();
    hello.extend_from_slice(&IHAVEOPT.to_be_bytes());
    hello.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    s.write_all(&hello)?;
    let no_zeroes = read_u32(s)? & FLAG_C_NO_ZEROES != 0;
    loop {
        if read_u64(s)? != IHAVEOPT {
            return Err(bad("option without IHAVEOPT"));
        }
        let opt = read_u32(s)?;
        let len = read_u32(s)?;
        if len > 4096 {
            return Err(bad("option data over 4 KiB"));
        }
        let mut data = vec![0u8; len as usize];
        s.read_exact(&mut data)?;
        let mut export = size.to_be_bytes().to_vec();
        export.extend_from_slice(&tx_flags.to_be_bytes());
        match opt {
            OPT_EXPORT_NAME => {
                if !no_zeroes {
                    export.extend_from_slice(&[0u8; 124]);
                }
                s.write_all(&export)?;
                return Ok(true);
            }
            OPT_INFO | OPT_GO => {
                let mut info = INFO_EXPORT.to_be_bytes().to_vec();
                info.extend_from_slice(&export);
                opt_reply(s, opt, REP_INFO, &info)?;
                opt_reply(s, opt, REP_ACK, &[])?;
                if opt == OPT_GO {
                    return Ok(true);
                }
            }
            OPT_ABORT => {
                opt_reply(s, opt, REP_ACK, &[])?;
                return Ok(false);
            }
            _ => opt_reply(s, opt, REP_ERR_UNSUP, &[])?,
        }
    }
}

/// A simple reply.
fn reply(s: &mut impl Write, handle: u64, error: u32, data: &[u8]) -> io::Result<()> {
    let mut b = Vec::with_capacity(16 + data.len());
    b.extend_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
    b.extend_from_slice(&error.to_be_bytes());
    b.extend_from_slice(&handle.to_be_bytes());
    b.extend_from_slice(data);
    s.write_all(&b)
}

/// Serves requests until the client disconnects, or until the power is
/// cut (the cut after `power` cuts): the request that meets the cut gets
/// no reply.
fn requests(shared: &Shared, s: &mut UnixStream, power: u64) -> io::Result<()> {
    loop {
        if read_u32(s)? != REQUEST_MAGIC {
            return Err(bad("request without its magic"));
        }
        let mut h = [0u8; 24];
        s.read_exact(&mut h)?;
        let flags = u16::from_be_bytes([h[0], h[1]]);
        let cmd = u16::from_be_bytes([h[2], h[3]]);
        let handle = u64::from_be_bytes(h[4..12].try_into().expect("8 bytes"));
        let off = u64::from_be_bytes(h[12..20].try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(h[20..24].try_into().expect("4 bytes"));
        let payload = match cmd {
            CMD_WRITE if len <= MAX_REQUEST => {
                let mut d = vec![0u8; len as usize];
                s.read_exact(&mut d)?;
                Some(d)
            }
            CMD_WRITE => return Err(bad("a write over 64 MiB")),
            _ => None,
        };
        if cmd == CMD_DISC {
            return Ok(());
        }
        let mut st = shared.lock();
        if st.stop || st.cuts != power {
            return Ok(());
        }
        let in_disk = off
            .checked_add(u64::from(len))
            .is_some_and(|end| end <= st.size);
        let (error, data) = match cmd {
            CMD_READ | CMD_WRITE | CMD_WRITE_ZEROES | CMD_TRIM if !in_disk || len > MAX_REQUEST => {
                (EINVAL, Vec::new())
            }
            CMD_READ => match st.read(off, len as usize) {
                Ok(d) => (0, d),
                Err(_) => (EIO, Vec::new()),
            },
            CMD_WRITE | CMD_WRITE_ZEROES | CMD_TRIM => {
                let end = off + u64::from(len);
                match st.fault {
                    Fault::FailWritesPast(limit) if cmd != CMD_TRIM && end > limit => {
                        st.counts.failed_writes += 1;
                        (EIO, Vec::new())
                    }
                    Fault::CutAfter(n)
                        if cmd == CMD_WRITE && st.counts.written + u64::from(len) > n =>
                    {
                        st.cut();
                        return Ok(());
                    }
                    Fault::CutAtBlock0After(n)
                        if cmd == CMD_WRITE && off < BLOCK && st.counts.written >= n =>
                    {
                        st.counts.written += u64::from(len);
                        let _ = st.write(off, len as usize, payload.as_deref());
                        let _ = st.commit(0);
                        st.cut();
                        return Ok(());
                    }
                    _ => {
                        if cmd == CMD_WRITE {
                            st.counts.written += u64::from(len);
                        }
                        // A trimmed range reads as zeros here.
                        let r = st
                            .write(off, len as usize, payload.as_deref())
                            .and_then(|_| match flags & CMD_FLAG_FUA != 0 {
                                true => st.flush(),
                                false => Ok(()),
                            });
                        (if r.is_ok() { 0 } else { EIO }, Vec::new())
                    }
                }
            }
            CMD_FLUSH => (if st.flush().is_ok() { 0 } else { EIO }, Vec::new()),
            _ => (EINVAL, Vec::new()),
        };
        drop(st);
        reply(s, handle, error, &data)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A client that speaks just enough NBD: NBD_OPT_GO, then requests.
    struct Client(UnixStream);

    impl Client {
        fn connect(nbd: &Nbd) -> (Client, u64) {
            let mut s = UnixStream::connect(nbd.socket()).expect("connect");
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut hello = [0u8; 18];
            s.read_exact(&mut hello).unwrap();
            assert_eq!(hello[..8], NBDMAGIC.to_be_bytes());
            s.write_all(&3u32.to_be_bytes()).unwrap();
            // An option the server does not know, then GO for "".
            let mut opt = IHAVEOPT.to_be_bytes().to_vec();
            opt.extend_from_slice(&8u32.to_be_bytes());
            opt.extend_from_slice(&0u32.to_be_bytes());
            opt.extend_from_slice(&IHAVEOPT.to_be_bytes());
            opt.extend_from_slice(&OPT_GO.to_be_bytes());
            opt.extend_from_slice(&6u32.to_be_bytes());
            opt.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            s.write_all(&opt).unwrap();
            let mut rep = |want: u32| {
                let mut h = [0u8; 20];
                s.read_exact(&mut h).unwrap();
                assert_eq!(u32::from_be_bytes(h[12..16].try_into().unwrap()), want);
                let mut d = vec![0u8; u32::from_be_bytes(h[16..20].try_into().unwrap()) as usize];
                s.read_exact(&mut d).unwrap();
                d
            };
            rep(REP_ERR_UNSUP);
            let info = rep(REP_INFO);
            rep(REP_ACK);
            let size = u64::from_be_bytes(info[2..10].try_into().unwrap());
            (Client(s), size)
        }

        /// A request; its error and data, or None without a reply.
        fn request(
            &mut self,
            cmd: u16,
            flags: u16,
            off: u64,
            len: u32,
            data: &[u8],
        ) -> Option<(u32, Vec<u8>)> {
            let mut b = REQUEST_MAGIC.to_be_bytes().to_vec();
            b.extend_from_slice(&flags.to_be_bytes());
            b.extend_from_slice(&cmd.to_be_bytes());
            b.extend_from_slice(&7u64.to_be_bytes());
            b.extend_from_slice(&off.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(data);
            self.0.write_all(&b).unwrap();
            let mut h = [0u8; 16];
            self.0.read_exact(&mut h).ok()?;
            let error = u32::from_be_bytes(h[4..8].try_into().unwrap());
            let mut d = vec![
                0u8;
                if cmd == CMD_READ && error == 0 {
                    len as usize
                } else {
                    0
                }
            ];
            self.0.read_exact(&mut d).unwrap();
            Some((error, d))
        }
    }

    fn server(name: &str) -> (Nbd, PathBuf) {
        let dir = std::env::temp_dir();
        let file = dir.join(format!("kjtest-unit-{}-{name}.img", std::process::id()));
        File::create(&file).unwrap().set_len(1 << 20).unwrap();
        let sock = dir.join(format!("kjtest-unit-{}-{name}.nbd", std::process::id()));
        (Nbd::serve(&file, &sock).unwrap(), file)
    }

    #[test]
    fn writes_reach_the_file_only_when_flushed() {
        let (nbd, file) = server("flush");
        let (mut c, size) = Client::connect(&nbd);
        assert_eq!(size, 1 << 20);
        let data = vec![0xabu8; 6000];
        assert_eq!(
            c.request(CMD_WRITE, 0, 1000, 6000, &data),
            Some((0, vec![]))
        );
        // The guest reads what it wrote; the file does not have it yet.
        let (e, d) = c.request(CMD_READ, 0, 999, 6002, &[]).unwrap();
        assert_eq!((e, d[0], &d[1..6001], d[6001]), (0, 0, &data[..], 0));
        assert!(std::fs::read(&file).unwrap().iter().all(|&b| b == 0));
        assert_eq!(c.request(CMD_FLUSH, 0, 0, 0, &[]), Some((0, vec![])));
        assert_eq!(std::fs::read(&file).unwrap()[1000..7000], data[..]);
        // FUA commits too; WRITE_ZEROES is cached like a write.
        c.request(CMD_WRITE_ZEROES, 0, 1000, 100, &[]).unwrap();
        c.request(CMD_WRITE, CMD_FLAG_FUA, 8192, 4, b"fua!")
            .unwrap();
        let f = std::fs::read(&file).unwrap();
        assert_eq!((&f[8192..8196], f[1000]), (&b"fua!"[..], 0));
        assert_eq!(nbd.flushes(), 2);
        // Past the end of the disk.
        assert_eq!(
            c.request(CMD_READ, 0, (1 << 20) - 1, 2, &[]),
            Some((EINVAL, vec![]))
        );
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn a_cut_loses_what_was_not_flushed() {
        let (nbd, file) = server("cut");
        let (mut c, _) = Client::connect(&nbd);
        nbd.arm(Fault::CutAfter(8192));
        c.request(CMD_WRITE, 0, 0, 4096, &[1u8; 4096]).unwrap();
        c.request(CMD_FLUSH, 0, 0, 0, &[]).unwrap();
        c.request(CMD_WRITE, 0, 4096, 4096, &[2u8; 4096]).unwrap();
        assert!(nbd.cut().is_none());
        // The write that passes 8192 bytes meets the cut: no reply, and
        // nothing answered after it.
        assert_eq!(c.request(CMD_WRITE, 0, 8192, 4096, &[3u8; 4096]), None);
        let cut = nbd.cut().expect("a cut");
        assert_eq!((cut.written, cut.lost_blocks), (8192, 1));
        let f = std::fs::read(&file).unwrap();
        assert!(f[..4096].iter().all(|&b| b == 1) && f[4096..].iter().all(|&b| b == 0));
        // The next guest finds the disk as it was flushed.
        let (mut c, _) = Client::connect(&nbd);
        let (_, d) = c.request(CMD_READ, 0, 0, 8192, &[]).unwrap();
        assert!(d[..4096].iter().all(|&b| b == 1) && d[4096..].iter().all(|&b| b == 0));
        c.request(CMD_WRITE, 0, 0, 4, b"lost").unwrap();
        assert_eq!(nbd.cut_now().lost_blocks, 1);
        assert_eq!(c.request(CMD_READ, 0, 0, 4, &[]), None);
        assert_eq!(std::fs::read(&file).unwrap()[0], 1);
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn a_cut_at_block_0_keeps_only_block_0() {
        let (nbd, file) = server("block0");
        let (mut c, _) = Client::connect(&nbd);
        nbd.arm(Fault::CutAtBlock0After(4096));
        // Block 0 before the bytes: served as any write.
        c.request(CMD_WRITE, 0, 0, 4096, &[1u8; 4096]).unwrap();
        c.request(CMD_WRITE, 0, 8192, 4096, &[2u8; 4096]).unwrap();
        assert_eq!(c.request(CMD_WRITE, 0, 0, 512, &[3u8; 512]), None);
        let cut = nbd.cut().expect("a cut");
        assert_eq!((cut.written, cut.lost_blocks), (8704, 1));
        let f = std::fs::read(&file).unwrap();
        assert!(f[..512].iter().all(|&b| b == 3) && f[512..4096].iter().all(|&b| b == 1));
        assert!(f[4096..].iter().all(|&b| b == 0));
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn writes_past_the_limit_fail() {
        let (nbd, file) = server("eio");
        let (mut c, _) = Client::connect(&nbd);
        nbd.arm(Fault::FailWritesPast(65536));
        assert_eq!(
            c.request(CMD_WRITE, 0, 61440, 4096, &[1u8; 4096]),
            Some((0, vec![]))
        );
        assert_eq!(
            c.request(CMD_WRITE, 0, 61441, 4096, &[1u8; 4096]),
            Some((EIO, vec![]))
        );
        assert_eq!(
            c.request(CMD_WRITE_ZEROES, 0, 65536, 4096, &[]),
            Some((EIO, vec![]))
        );
        assert_eq!(nbd.failed_writes(), 2);
        let (_, d) = c.request(CMD_READ, 0, 65536, 1, &[]).unwrap();
        assert_eq!(d, [0]);
        let _ = std::fs::remove_file(file);
    }
}
