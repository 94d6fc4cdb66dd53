// SPDX-License-Identifier: GPL-2.0

//! The few system calls the guest makes without a wrapper in `std`.

use std::io::Error;

extern "C" {
    fn reboot(cmd: i32) -> i32;
    fn __errno_location() -> *mut i32;
    fn mlock(addr: *const u8, len: usize) -> i32;
    fn syscall(number: i64, ...) -> i64;
    fn tcdrain(fd: i32) -> i32;
    fn mmap(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> *mut u8;
    fn clock_gettime(clock: i32, ts: *mut [i64; 2]) -> i32;
    fn munmap(addr: *mut u8, len: usize) -> i32;
}

/// `len` bytes of fresh, zeroed anonymous memory: its address. The caller
/// writes it through the pointer and unmaps pieces with [`unmap`].
pub fn map_anon(len: usize) -> Result<*mut u8, Error> {
    const PROT_RW: i32 = 3;
    const MAP_PRIVATE_ANON: i32 = 0x22;
    // SAFETY: asks for a fresh private mapping at an address the kernel
    // chooses; no existing memory is touched. Failure is MAP_FAILED.
    let p = unsafe { mmap(std::ptr::null_mut(), len, PROT_RW, MAP_PRIVATE_ANON, -1, 0) };
    if p as isize == -1 {
        Err(errno())
    } else {
        Ok(p)
    }
}

/// `len` bytes of anonymous memory whose pages the kernel allocated at
/// once (`MAP_POPULATE` of a writable private mapping: a write fault per
/// page, each page from the page allocator with `__GFP_ZERO`), never
/// written by this process: its address.
pub fn map_anon_populated(len: usize) -> Result<*const u8, Error> {
    const PROT_RW: i32 = 3;
    const MAP_PRIVATE_ANON_POPULATE: i32 = 0x22 | 0x8000;
    // SAFETY: as in `map_anon`.
    let p = unsafe {
        mmap(
            std::ptr::null_mut(),
            len,
            PROT_RW,
            MAP_PRIVATE_ANON_POPULATE,
            -1,
            0,
        )
    };
    if p as isize == -1 {
        Err(errno())
    } else {
        Ok(p)
    }
}

/// Unmaps `len` bytes at `at`, page aligned, inside a mapping from
/// [`map_anon`]; the caller never touches them again.
pub fn unmap(at: *mut u8, len: usize) -> Result<(), Error> {
    // SAFETY: no reference into [at, at + len) exists (the caller only
    // holds the raw pointer) and it is not used after this.
    if unsafe { munmap(at, len) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = [0i64; 2];
    // SAFETY: `ts` has the layout of struct timespec on x86_64.
    unsafe { clock_gettime(1, &mut ts) };
    ts[0] as u64 * 1_000_000_000 + ts[1] as u64
}

/// `LINUX_REBOOT_CMD_KEXEC` from include/uapi/linux/reboot.h.
const LINUX_REBOOT_CMD_KEXEC: i32 = 0x4558_4543;
/// The x86_64 system call number of kexec_load().
const SYS_KEXEC_LOAD: i64 = 246;
/// `KEXEC_ON_CRASH` from include/uapi/linux/kexec.h.
const KEXEC_ON_CRASH: u64 = 1;

fn errno() -> Error {
    // SAFETY: __errno_location() returns this thread's errno slot.
    Error::from_raw_os_error(unsafe { *__errno_location() })
}

/// `reboot(LINUX_REBOOT_CMD_KEXEC)`: starts the loaded kexec image; for a
/// jump, returns when the image jumps back.
pub fn kexec_exec() -> Result<(), Error> {
    // SAFETY: reboot() takes no pointers; with this command it runs the
    // loaded kexec image and, for a jump, returns when it jumps back.
    if unsafe { reboot(LINUX_REBOOT_CMD_KEXEC) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Writes every filesystem's dirty data back.
pub fn sync() {
    // SAFETY: sync(2) takes no argument and cannot fail.
    unsafe { libc::sync() };
}

/// Waits until what this process wrote to stdout has gone out. On the
/// serial console the next jump's kernel messages would otherwise cut into
/// a line still being sent.
pub fn drain_stdout() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: tcdrain() takes a descriptor; on one that is not a terminal it
    // fails with ENOTTY, which is fine.
    unsafe { tcdrain(1) };
}

/// Locks `len` bytes at `addr` in memory.
pub fn mlock_range(addr: *const u8, len: usize) -> Result<(), Error> {
    // SAFETY: mlock() only changes the mapping's attributes; a bad range
    // fails with an errno.
    if unsafe { mlock(addr, len) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// `struct kexec_segment` from include/uapi/linux/kexec.h.
#[repr(C)]
pub struct RawSegment {
    pub buf: *const u8,
    pub bufsz: usize,
    pub mem: u64,
    pub memsz: u64,
}

/// kexec_load(2) as it is: the kernel reads `segs` and, through their
/// `buf` pointers, whatever they point at (bogus pointers get EFAULT).
pub fn kexec_load(entry: u64, segs: &[RawSegment], flags: u64) -> Result<(), Error> {
    // SAFETY: `segs` is valid for its length; the kernel validates every
    // user pointer in it and copies nothing back.
    let ret = unsafe {
        syscall(
            SYS_KEXEC_LOAD,
            entry,
            segs.len() as u64,
            segs.as_ptr(),
            flags,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Loads `data` as a one-segment crash image at physical `mem` (inside the
/// crashkernel= reservation), or unloads the crash image if `data` is empty.
pub fn kexec_load_crash(mem: u64, data: &[u8]) -> Result<(), Error> {
    let seg = RawSegment {
        buf: data.as_ptr(),
        bufsz: data.len(),
        mem,
        memsz: data.len() as u64,
    };
    let nr = u64::from(!data.is_empty());
    // SAFETY: `seg` describes `data`, which outlives the call; with
    // nr = 0 the kernel does not read `seg`.
    let ret = unsafe {
        syscall(
            SYS_KEXEC_LOAD,
            mem,
            nr,
            &seg as *const RawSegment,
            KEXEC_ON_CRASH,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Physical address of the byte at `addr`, from /proc/self/pagemap.
pub fn phys_addr(addr: usize) -> Result<u64, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open("/proc/self/pagemap").map_err(|e| format!("pagemap: {e}"))?;
    let mut entry = [0u8; 8];
    f.seek(SeekFrom::Start((addr / 4096 * 8) as u64))
        .and_then(|_| f.read_exact(&mut entry))
        .map_err(|e| format!("pagemap: {e}"))?;
    let e = u64::from_le_bytes(entry);
    if e >> 63 == 0 || e & ((1 << 55) - 1) == 0 {
        return Err(format!("pagemap: page at {addr:#x} not present ({e:#x})"));
    }
    Ok((e & ((1 << 55) - 1)) * 4096 + (addr % 4096) as u64)
}

/// Maps `len` bytes of `file` read-only and shared (its page cache).
/// The mapping stays until the process exits.
pub fn map_shared(file: &std::fs::File, len: usize) -> Result<*const u8, Error> {
    use std::os::fd::AsRawFd;
    const PROT_READ: i32 = 1;
    const MAP_SHARED: i32 = 1;
    // SAFETY: a fresh mapping chosen by the kernel, of an open file; the
    // kernel checks the arguments and fails with an errno.
    let p = unsafe {
        mmap(
            std::ptr::null_mut(),
            len,
            PROT_READ,
            MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if p as isize == -1 {
        Err(errno())
    } else {
        Ok(p)
    }
}
