// SPDX-License-Identifier: GPL-2.0

//! A writer for the `newc` cpio format, the format the kernel unpacks as
//! an initramfs (the kernel's
//! Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Shared by kjump (B's initramfs of one program) and the test harness
//! (the test images).
//!
//! ```
//! let mut a = newc::Archive::new();
//! a.add_char_dev("dev/console", 0o600, 5, 1);
//! a.add_file("init", b"#!/bin/sh\n", 0o755);
//! let bytes = a.finish();
//! assert!(bytes.starts_with(b"070701"));
//! ```

use std::collections::BTreeSet;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// An archive being built in memory. Paths are relative to the archive's
/// root (a leading `/` is dropped); the directories above each entry are
/// added first, once.
#[derive(Default)]
pub struct Archive {
    data: Vec<u8>,
    dirs: BTreeSet<String>,
    ino: u32,
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one header, `path` and `body`, each padded to 4 bytes.
    fn entry(&mut self, path: &str, mode: u32, rdev: (u32, u32), body: &[u8]) {
        let name = path.trim_start_matches('/');
        let size = u32::try_from(body.len()).expect("newc: an entry of 4 GiB or more");
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            size,
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        self.data.extend_from_slice(b"070701");
        for f in fields {
            self.data.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad(4);
        self.data.extend_from_slice(body);
        self.pad(4);
    }

    fn pad(&mut self, to: usize) {
        self.data.resize(self.data.len().next_multiple_of(to), 0);
    }

    /// Adds the directories above `path`.
    fn parents(&mut self, path: &str) {
        if let Some((dir, _)) = path.trim_matches('/').rsplit_once('/') {
            self.add_dir(dir);
        }
    }

    /// Adds directory `path` (mode 0755) unless it is there already.
    pub fn add_dir(&mut self, path: &str) {
        let name = path.trim_matches('/');
        if name.is_empty() || self.dirs.contains(name) {
            return;
        }
        self.parents(name);
        self.dirs.insert(name.to_string());
        self.entry(name, S_IFDIR | 0o755, (0, 0), &[]);
    }

    /// Adds a regular file holding `bytes`, with permissions `mode`.
    ///
    /// # Panics
    ///
    /// If `bytes` is 4 GiB or more: newc sizes have 32 bits.
    pub fn add_file(&mut self, path: &str, bytes: &[u8], mode: u32) {
        self.parents(path);
        self.entry(path, S_IFREG | (mode & 0o7777), (0, 0), bytes);
    }

    /// Adds a symbolic link `path` -> `target`.
    pub fn add_symlink(&mut self, path: &str, target: &str) {
        self.parents(path);
        self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes());
    }

    /// Adds a character device node `major`:`minor` with permissions
    /// `mode`.
    pub fn add_char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.parents(path);
        self.entry(path, S_IFCHR | (mode & 0o7777), (major, minor), &[]);
    }

    /// Ends the archive with its trailer, padded to 512 bytes as cpio(1)
    /// does, and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.pad(512);
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The names in `a`, in order.
    fn names(a: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        while a[at..].starts_with(b"070701") {
            let field = |i: usize| {
                let f = &a[at + 6 + i * 8..at + 14 + i * 8];
                usize::from_str_radix(std::str::from_utf8(f).unwrap(), 16).unwrap()
            };
            let (size, namesize) = (field(6), field(11));
            let name = &a[at + 110..at + 110 + namesize - 1];
            out.push(String::from_utf8(name.to_vec()).unwrap());
            at = (at + 110 + namesize).next_multiple_of(4);
            at = (at + size).next_multiple_of(4);
        }
        out
    }

    #[test]
    fn header_layout() {
        let mut c = Archive::new();
        c.add_file("a", b"xy", 0o644);
        let d = c.finish();
        assert_eq!(&d[..6], b"070701");
        // 6 + 13 * 8 header bytes, then "a\0", padded to 4: 112 bytes.
        assert_eq!(&d[110..112], b"a\0");
        assert_eq!(&d[112..114], b"xy");
        assert_eq!(d.len() % 512, 0);
        let s = String::from_utf8_lossy(&d);
        // The file's mode and size fields.
        assert!(s.contains("000081a4") && s.contains("00000002"));
    }

    #[test]
    fn parents_come_first_and_once() {
        let mut c = Archive::new();
        c.add_dir("dev");
        c.add_char_dev("/dev/console", 0o600, 5, 1);
        c.add_file("etc/x/a", b"", 0o644);
        c.add_file("etc/x/b", b"", 0o644);
        c.add_dir("etc/");
        assert_eq!(
            names(&c.finish()),
            [
                "dev",
                "dev/console",
                "etc",
                "etc/x",
                "etc/x/a",
                "etc/x/b",
                "TRAILER!!!"
            ]
        );
    }

    #[test]
    fn host_cpio_reads_it() {
        let mut c = Archive::new();
        c.add_file("/etc/x/conf", b"hello\n", 0o644);
        c.add_symlink("bin/sh", "busybox");
        let dir = std::env::temp_dir().join(format!("newc-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("t.cpio"), c.finish()).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg("cpio -i --quiet -d < t.cpio && cat etc/x/conf && readlink bin/sh")
            .current_dir(&dir)
            .output()
            .expect("cpio is installed by scripts/setup-toolchain.sh");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\nbusybox\n");
    }
}
