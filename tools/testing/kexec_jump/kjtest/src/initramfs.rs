// SPDX-License-Identifier: GPL-2.0

//! Test initramfs images: busybox, kexec-tools with its libraries, the
//! guest program and a test's own /init.

use newc::Archive;
use std::{fs, path::Path, process::Command};

const SETUP_HINT: &str = "run scripts/setup-toolchain.sh";

/// An initramfs being built.
pub struct Initramfs {
    cpio: Archive,
}

fn read(host: &Path) -> Result<Vec<u8>, String> {
    fs::read(host).map_err(|e| format!("{}: {e} ({SETUP_HINT})", host.display()))
}

impl Initramfs {
    /// The skeleton every image has: the console node and mount points.
    pub fn new() -> Self {
        let mut cpio = Archive::new();
        for d in ["dev", "proc", "sys", "tmp", "mnt", "etc", "boot"] {
            cpio.add_dir(d);
        }
        cpio.add_char_dev("dev/console", 0o600, 5, 1);
        Self { cpio }
    }

    /// Adds the static busybox and a link for each of its applets.
    pub fn busybox(mut self) -> Result<Self, String> {
        let host = Path::new("/bin/busybox");
        self.cpio.add_file("bin/busybox", &read(host)?, 0o755);
        let out = Command::new(host)
            .arg("--list")
            .output()
            .map_err(|e| format!("/bin/busybox --list: {e} ({SETUP_HINT})"))?;
        for applet in String::from_utf8_lossy(&out.stdout).lines() {
            if applet != "busybox" && !applet.is_empty() {
                self.cpio.add_symlink(&format!("bin/{applet}"), "busybox");
            }
        }
        Ok(self)
    }

    /// Adds a host binary at `guest` with every shared library `ldd` names
    /// (and the ELF interpreter) at the same paths.
    pub fn host_binary(mut self, host: &str, guest: &str) -> Result<Self, String> {
        self.cpio.add_file(guest, &read(Path::new(host))?, 0o755);
        let out = Command::new("ldd")
            .arg(host)
            .output()
            .map_err(|e| format!("ldd {host}: {e}"))?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/.../libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
            let lib = match line.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(lib) = lib.filter(|l| l.starts_with('/')) {
                self.cpio.add_file(lib, &read(Path::new(lib))?, 0o755);
            }
        }
        Ok(self)
    }

    /// Adds a file from memory.
    pub fn file(mut self, guest: &str, bytes: &[u8], mode: u32) -> Self {
        self.cpio.add_file(guest, bytes, mode);
        self
    }

    /// Adds a file from the host.
    pub fn host_file(self, host: &Path, guest: &str, mode: u32) -> Result<Self, String> {
        let bytes = read(host)?;
        Ok(self.file(guest, &bytes, mode))
    }

    /// The archive's bytes (uncompressed; the kernel takes it as it is).
    pub fn finish(self) -> Vec<u8> {
        self.cpio.finish()
    }
}

impl Default for Initramfs {
    fn default() -> Self {
        Self::new()
    }
}
