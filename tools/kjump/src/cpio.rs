// SPDX-License-Identifier: GPL-2.0

//! A newc cpio archive (what the kernel unpacks as an initramfs), for
//! B's initramfs of one program.

/// An archive entry: a directory, a regular file or a character device.
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    CharDev(&'a str, u32, u32),
}

fn put(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(4) * 4, 0);
}

/// The archive of `entries`, with its trailer.
pub fn newc(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let ino = i as u32 + 1;
        match *e {
            Entry::Dir(name) => put(&mut out, ino, name, 0o040755, (0, 0), &[]),
            Entry::File(name, data, perm) => {
                put(&mut out, ino, name, 0o100000 | perm, (0, 0), data)
            }
            Entry::CharDev(name, major, minor) => {
                put(&mut out, ino, name, 0o020600, (major, minor), &[])
            }
        }
    }
    put(&mut out, 0, "TRAILER!!!", 0, (0, 0), &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_terminated() {
        let a = newc(&[Entry::Dir("dev"), Entry::File("init", b"abcde", 0o755)]);
        assert!(a.starts_with(b"070701"));
        assert_eq!(a.len() % 4, 0);
        let s = String::from_utf8_lossy(&a);
        assert!(s.contains("init\0") && s.contains("abcde") && s.contains("TRAILER!!!"));
        // The file's mode and size fields.
        assert!(s.contains("000081ed") && s.contains("00000005"));
    }
}
