// SPDX-License-Identifier: GPL-2.0

//! An x86 bzImage and the boot_params ("zero page") of its 64-bit boot
//! protocol (Documentation/arch/x86/boot.rst).

use crate::memmap::FirmwareEntry;
use anyhow::{bail, Result};

const HDR_START: usize = 0x1f1;
const XLF_KERNEL_64: u16 = 1 << 0;
const XLF_CAN_BE_LOADED_ABOVE_4G: u16 = 1 << 1;
/// boot_params can hold this many e820 entries (E820_MAX_ENTRIES_ZEROPAGE).
pub const E820_MAX: usize = 128;

/// What kjump needs of a bzImage.
pub struct BzImage {
    /// The setup header, from 0x1f1 to its end.
    header: Vec<u8>,
    /// The protected-mode kernel, loaded at a kernel_alignment boundary.
    pub payload: Vec<u8>,
    /// Bytes the kernel needs from its load address to decompress.
    pub init_size: u64,
    pub alignment: u64,
    pub cmdline_size: u64,
    pub above_4g: bool,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

pub fn parse(bytes: &[u8]) -> Result<BzImage> {
    if bytes.len() < 0x270 || &bytes[0x202..0x206] != b"HdrS" {
        bail!("not a bzImage (no HdrS setup header)");
    }
    let version = u16_at(bytes, 0x206);
    if version < 0x020c {
        bail!("boot protocol {version:#x} is too old: need 2.12 (a 64-bit entry)");
    }
    let xloadflags = u16_at(bytes, 0x236);
    if xloadflags & XLF_KERNEL_64 == 0 || bytes[0x234] == 0 {
        bail!("not a relocatable 64-bit kernel");
    }
    let hdr_end = 0x202 + bytes[0x201] as usize;
    let setup_sects = match bytes[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let payload_start = (setup_sects + 1) * 512;
    if payload_start >= bytes.len() || hdr_end > payload_start {
        bail!("truncated bzImage");
    }
    let init_size = u32_at(bytes, 0x260) as u64;
    let alignment = u32_at(bytes, 0x230) as u64;
    if !alignment.is_power_of_two() || alignment < 4096 {
        bail!("bad kernel_alignment {alignment:#x}");
    }
    Ok(BzImage {
        header: bytes[HDR_START..hdr_end].to_vec(),
        payload: bytes[payload_start..].to_vec(),
        init_size,
        alignment,
        cmdline_size: u32_at(bytes, 0x238) as u64,
        above_4g: xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G != 0,
    })
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Where boot_params point.
pub struct BootInfo<'a> {
    pub cmdline: u64,
    pub initrd: Option<(u64, u64)>,
    pub e820: &'a [FirmwareEntry],
    pub acpi_rsdp: u64,
}

impl BzImage {
    /// The 4 KiB zero page for this kernel.
    pub fn boot_params(&self, info: &BootInfo) -> Result<Vec<u8>> {
        if info.e820.len() > E820_MAX {
            bail!(
                "{} memory map entries: boot_params holds {E820_MAX}",
                info.e820.len()
            );
        }
        let mut bp = vec![0u8; 4096];
        bp[HDR_START..HDR_START + self.header.len()].copy_from_slice(&self.header);
        bp[0x210] = 0xff; // type_of_loader: not a registered boot loader
        put32(&mut bp, 0x228, info.cmdline as u32);
        put32(&mut bp, 0x0c8, (info.cmdline >> 32) as u32);
        if let Some((addr, size)) = info.initrd {
            put32(&mut bp, 0x218, addr as u32);
            put32(&mut bp, 0x21c, size as u32);
            put32(&mut bp, 0x0c0, (addr >> 32) as u32);
            put32(&mut bp, 0x0c4, (size >> 32) as u32);
        }
        bp[0x070..0x078].copy_from_slice(&info.acpi_rsdp.to_le_bytes());
        bp[0x1e8] = info.e820.len() as u8;
        for (i, e) in info.e820.iter().enumerate() {
            let off = 0x2d0 + i * 20;
            bp[off..off + 8].copy_from_slice(&e.range.start.to_le_bytes());
            bp[off + 8..off + 16].copy_from_slice(&e.range.len().to_le_bytes());
            put32(&mut bp, off + 16, e.e820_type);
        }
        Ok(bp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memmap::Range;

    fn fake() -> Vec<u8> {
        let mut b = vec![0u8; 5 * 512 + 4096];
        b[0x1f1] = 4;
        b[0x201] = 0x6a;
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        b[0x230..0x234].copy_from_slice(&0x200000u32.to_le_bytes());
        b[0x234] = 1;
        b[0x236] = 3;
        b[0x260..0x264].copy_from_slice(&0x800000u32.to_le_bytes());
        b
    }

    #[test]
    fn parses_and_fills_zero_page() {
        let k = parse(&fake()).unwrap();
        assert_eq!(k.payload.len(), 4096);
        assert_eq!(k.init_size, 0x800000);
        let e = [FirmwareEntry {
            range: Range {
                start: 0x1000,
                end: 0x9f000,
            },
            e820_type: 1,
        }];
        let info = BootInfo {
            cmdline: 0x1_2345_6000,
            initrd: None,
            e820: &e,
            acpi_rsdp: 0,
        };
        let bp = k.boot_params(&info).unwrap();
        assert_eq!(&bp[0x202..0x206], b"HdrS");
        assert_eq!(u32_at(&bp, 0x228), 0x2345_6000);
        assert_eq!(u32_at(&bp, 0x0c8), 1);
        assert_eq!(bp[0x1e8], 1);
        assert_eq!(u32_at(&bp, 0x2d0 + 16), 1);
    }

    #[test]
    fn refuses_non_kernels() {
        assert!(parse(b"hello").is_err());
        let mut b = fake();
        b[0x236] = 0;
        assert!(parse(&b).is_err());
    }
}
