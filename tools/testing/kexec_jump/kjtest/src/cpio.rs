// SPDX-License-Identifier: GPL-2.0

//! A writer for the `newc` cpio format, the format of an initramfs.

use std::collections::BTreeSet;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// An archive being built in memory.
#[derive(Default)]
pub struct Cpio {
    data: Vec<u8>,
    dirs: BTreeSet<String>,
    ino: u32,
}

impl Cpio {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, path: &str, mode: u32, rdev: (u32, u32), body: &[u8]) {
        let name = path.trim_start_matches('/');
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            body.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.data.extend_from_slice(b"070701");
        for f in fields {
            self.data.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(body);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    fn parents(&mut self, path: &str) {
        let name = path.trim_matches('/');
        let mut at = 0;
        while let Some(i) = name[at..].find('/') {
            let dir = name[..at + i].to_string();
            at += i + 1;
            self.add_dir(&dir);
        }
    }

    /// Adds directory `path` (mode 0755) unless it is there already.
    pub fn add_dir(&mut self, path: &str) {
        let name = path.trim_matches('/').to_string();
        if name.is_empty() || self.dirs.contains(&name) {
            return;
        }
        self.parents(&name);
        self.dirs.insert(name.clone());
        self.entry(&name, S_IFDIR | 0o755, (0, 0), &[]);
    }

    /// Adds a regular file.
    pub fn add_file(&mut self, path: &str, bytes: &[u8], mode: u32) {
        self.parents(path);
        self.entry(path, S_IFREG | (mode & 0o7777), (0, 0), bytes);
    }

    /// Adds a symbolic link `path` -> `target`.
    pub fn add_symlink(&mut self, path: &str, target: &str) {
        self.parents(path);
        self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes());
    }

    /// Adds a character device node.
    pub fn add_char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.parents(path);
        self.entry(path, S_IFCHR | (mode & 0o7777), (major, minor), &[]);
    }

    /// Ends the archive with its trailer and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        while !self.data.len().is_multiple_of(512) {
            self.data.push(0);
        }
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn header_layout() {
        let mut c = Cpio::new();
        c.add_file("a", b"xy", 0o644);
        let d = c.finish();
        assert_eq!(&d[..6], b"070701");
        // 6 + 13 * 8 header bytes, then "a\0", padded to 4: 112 bytes.
        assert_eq!(&d[110..112], b"a\0");
        assert_eq!(&d[112..114], b"xy");
        assert_eq!(d.len() % 512, 0);
    }

    #[test]
    fn host_cpio_reads_it() {
        let mut c = Cpio::new();
        c.add_file("/etc/x/conf", b"hello\n", 0o644);
        c.add_symlink("bin/sh", "busybox");
        let dir = std::env::temp_dir().join(format!("kjtest-cpio-{}", std::process::id()));
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
