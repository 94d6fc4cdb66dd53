// SPDX-License-Identifier: GPL-2.0

//! An x86 bzImage and the boot_params ("zero page") of its 64-bit boot
//! protocol (Documentation/arch/x86/boot.rst).

use crate::memmap::FirmwareEntry;
use anyhow::{bail, Result};
use std::mem::{offset_of, size_of};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

const XLF_KERNEL_64: u16 = 1 << 0;
const XLF_CAN_BE_LOADED_ABOVE_4G: u16 = 1 << 1;
/// boot_params can hold this many e820 entries (E820_MAX_ENTRIES_ZEROPAGE).
pub const E820_MAX: usize = 128;
/// Where the setup header starts, in a bzImage and in boot_params.
const HDR_START: usize = offset_of!(BootParams, hdr);

/// The setup header, as far as boot protocol 2.15 (struct setup_header).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SetupHeader {
    pub setup_sects: u8,
    _legacy0: [u8; 14],
    /// The jump over the header: its second byte says where it ends.
    pub jump: [u8; 2],
    pub header: [u8; 4],
    pub version: U16,
    _legacy1: [u8; 8],
    pub type_of_loader: u8,
    pub loadflags: u8,
    _legacy2: [u8; 6],
    pub ramdisk_image: U32,
    pub ramdisk_size: U32,
    _legacy3: [u8; 8],
    pub cmd_line_ptr: U32,
    pub initrd_addr_max: U32,
    pub kernel_alignment: U32,
    pub relocatable_kernel: u8,
    pub min_alignment: u8,
    pub xloadflags: U16,
    pub cmdline_size: U32,
    _platform: [u8; 36],
    pub init_size: U32,
    pub handover_offset: U32,
    pub kernel_info_offset: U32,
}

/// One e820 entry of boot_params (struct boot_e820_entry).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BootE820Entry {
    pub addr: U64,
    pub size: U64,
    pub kind: U32,
}

/// The zero page (struct boot_params), with the fields kjump fills.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BootParams {
    _pad0: [u8; 0x70],
    pub acpi_rsdp_addr: U64,
    _pad1: [u8; 0x48],
    pub ext_ramdisk_image: U32,
    pub ext_ramdisk_size: U32,
    pub ext_cmd_line_ptr: U32,
    _pad2: [u8; 0x11c],
    pub e820_entries: u8,
    _pad3: [u8; 8],
    pub hdr: SetupHeader,
    _pad4: [u8; 0x64],
    pub e820_table: [BootE820Entry; E820_MAX],
    _pad5: [u8; 0x330],
}

const _: () = assert!(size_of::<BootParams>() == 4096);
const _: () = assert!(offset_of!(BootParams, ext_ramdisk_image) == 0x0c0);
const _: () = assert!(offset_of!(BootParams, e820_entries) == 0x1e8);
const _: () = assert!(HDR_START == 0x1f1);
const _: () = assert!(offset_of!(BootParams, hdr) + offset_of!(SetupHeader, header) == 0x202);
const _: () = assert!(offset_of!(BootParams, hdr) + offset_of!(SetupHeader, cmd_line_ptr) == 0x228);
const _: () = assert!(offset_of!(BootParams, hdr) + offset_of!(SetupHeader, init_size) == 0x260);
const _: () = assert!(offset_of!(BootParams, e820_table) == 0x2d0);

/// What kjump needs of a bzImage.
pub struct BzImage {
    /// The setup header as the kernel has it, to the end its jump names.
    header: Vec<u8>,
    /// The protected-mode kernel, loaded at a kernel_alignment boundary.
    pub payload: Vec<u8>,
    /// Bytes the kernel needs from its load address to decompress.
    pub init_size: u64,
    pub alignment: u64,
    pub cmdline_size: u64,
    pub above_4g: bool,
}

/// Reads a bzImage's setup header and cuts off the real-mode setup.
pub fn parse(bytes: &[u8]) -> Result<BzImage> {
    let h = bytes
        .get(HDR_START..)
        .and_then(|b| SetupHeader::ref_from_prefix(b).ok())
        .map(|(h, _)| h)
        .filter(|h| &h.header == b"HdrS");
    let Some(h) = h else {
        bail!("not a bzImage (no HdrS setup header)");
    };
    let version = h.version.get();
    if version < 0x020c {
        bail!("boot protocol {version:#x} is too old: need 2.12 (a 64-bit entry)");
    }
    let xloadflags = h.xloadflags.get();
    if xloadflags & XLF_KERNEL_64 == 0 || h.relocatable_kernel == 0 {
        bail!("not a relocatable 64-bit kernel");
    }
    let hdr_end =
        offset_of!(BootParams, hdr) + offset_of!(SetupHeader, header) + h.jump[1] as usize;
    let setup_sects = match h.setup_sects {
        0 => 4,
        n => n as usize,
    };
    let payload_start = (setup_sects + 1) * 512;
    if payload_start >= bytes.len() || hdr_end > payload_start {
        bail!("truncated bzImage");
    }
    let alignment = u64::from(h.kernel_alignment.get());
    if !alignment.is_power_of_two() || alignment < 4096 {
        bail!("bad kernel_alignment {alignment:#x}");
    }
    Ok(BzImage {
        header: bytes[HDR_START..hdr_end].to_vec(),
        payload: bytes[payload_start..].to_vec(),
        init_size: u64::from(h.init_size.get()),
        alignment,
        cmdline_size: u64::from(h.cmdline_size.get()),
        above_4g: xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G != 0,
    })
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
        let mut page = vec![0u8; 4096];
        page[HDR_START..HDR_START + self.header.len()].copy_from_slice(&self.header);
        let bp = BootParams::mut_from_bytes(&mut page).expect("one page");
        bp.hdr.type_of_loader = 0xff; // not a registered boot loader
        bp.hdr.cmd_line_ptr.set(info.cmdline as u32);
        bp.ext_cmd_line_ptr.set((info.cmdline >> 32) as u32);
        if let Some((addr, size)) = info.initrd {
            bp.hdr.ramdisk_image.set(addr as u32);
            bp.hdr.ramdisk_size.set(size as u32);
            bp.ext_ramdisk_image.set((addr >> 32) as u32);
            bp.ext_ramdisk_size.set((size >> 32) as u32);
        }
        bp.acpi_rsdp_addr.set(info.acpi_rsdp);
        bp.e820_entries = info.e820.len() as u8;
        for (raw, e) in bp.e820_table.iter_mut().zip(info.e820) {
            raw.addr.set(e.range.start);
            raw.size.set(e.range.len());
            raw.kind.set(e.e820_type);
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memmap::Range;

    /// A bzImage of 4 setup sectors, boot protocol 2.15, and one page
    /// of payload.
    fn fake() -> Vec<u8> {
        let mut b = vec![0u8; 5 * 512 + 4096];
        let h = SetupHeader::mut_from_prefix(&mut b[HDR_START..]).unwrap().0;
        h.setup_sects = 4;
        h.jump = [0xeb, 0x6a];
        h.header = *b"HdrS";
        h.version.set(0x020f);
        h.kernel_alignment.set(0x200000);
        h.relocatable_kernel = 1;
        h.xloadflags.set(3);
        h.init_size.set(0x800000);
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
        let page = k.boot_params(&info).unwrap();
        let bp = BootParams::ref_from_bytes(&page).unwrap();
        assert_eq!(&bp.hdr.header, b"HdrS");
        assert_eq!(bp.hdr.cmd_line_ptr.get(), 0x2345_6000);
        assert_eq!(bp.ext_cmd_line_ptr.get(), 1);
        assert_eq!(bp.e820_entries, 1);
        assert_eq!(bp.e820_table[0].kind.get(), 1);
        assert_eq!(bp.hdr.type_of_loader, 0xff);
    }

    #[test]
    fn refuses_non_kernels() {
        assert!(parse(b"hello").is_err());
        let mut b = fake();
        SetupHeader::mut_from_prefix(&mut b[HDR_START..])
            .unwrap()
            .0
            .xloadflags
            .set(0);
        assert!(parse(&b).is_err());
    }
}
