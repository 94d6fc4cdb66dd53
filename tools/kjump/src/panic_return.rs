// SPDX-License-Identifier: GPL-2.0

//! B's way back to A when B's kernel panics.
//!
//! kjump catches its own errors and panics in B and jumps back to A. A
//! panic of B's kernel (an oops, the OOM killer finding nothing to kill
//! but B's init, a SIGBUS that kills init) never reaches kjump: B's kernel
//! would reboot and A's session would be lost. So B's init loads, as B's
//! crash image (kexec_load(2) with KEXEC_ON_CRASH, into the small
//! crashkernel= reservation A gives B), these few instructions; B's
//! kernel runs them on a panic, after it stopped its other CPUs, and they
//! enter A's jump-back entry as a kernel jumping back would.
//!
//! On entry (relocate_kernel_64.S, a non-preserving image): 64-bit mode,
//! interrupts off, paging on with B's 1:1 table, which maps B's RAM and
//! this segment but not A's control page; CR4 = PAE (+ LA57); GDT and IDT
//! invalidated. A's jump-back entry needs its own page mapped 1:1, A's
//! paging mode (B is the same kernel as A, and B's kernel checked A's CR4
//! when A's kjump loaded it) and its re-entry word at 0(%rsp). So this
//! code loads a table of its own (built by [`build`]: 2 MiB pages mapping
//! this segment and the entry's 2 MiB 1:1, four levels or five as CR4.LA57
//! says), takes the stack at the end of its second page, pushes 0 (B is
//! dead: A's kernel refuses to enter it again) and jumps to the entry.
//! Everything else (A's GDT, IDT, CR0, CR4, CR3) the entry restores.
//!
//! Only on the CPU A jumped from (B's boot CPU, which A's kernel resumes
//! as its own): the CPU that panics runs this code while B's others are
//! halted, and a panic on another CPU cannot be handed over without
//! starting that one again. B's init runs on its boot CPU (where kjump's
//! own failures, an OOM of init or a SIGBUS on /proc/vmcore panic); on
//! any other CPU this code resets the machine at once (an empty IDT and
//! an exception: a triple fault), as panic=10 would have done later.
//!
//! Not with host memory encryption (SME/SEV): these tables carry no
//! encryption bit, so A's pages would be read as ciphertext; B then keeps
//! its panic=10 reboot.

use crate::sys::{self, Segment};
use anyhow::{bail, Context, Result};
use core::arch::global_asm;

global_asm!(
    r#"
    .pushsection .rodata.kjump_panic_return, "a"
    .balign 16
    .globl kjump_panic_return_start
kjump_panic_return_start:
    xorl    %eax, %eax
    cpuid
    cmpl    $0xb, %eax
    jb      2f
    movl    $0xb, %eax
    xorl    %ecx, %ecx
    cpuid
    testw   %bx, %bx
    jz      2f
    movl    %edx, %r8d
    jmp     3f
2:  movl    $1, %eax
    cpuid
    shrl    $24, %ebx
    movl    %ebx, %r8d
3:  cmpl    kj_pr_apic(%rip), %r8d
    jne     4f
    movq    %cr4, %rax
    movq    kj_pr_pml4(%rip), %rcx
    btq     $12, %rax
    jnc     1f
    movq    kj_pr_pml5(%rip), %rcx
1:  movq    %rcx, %cr3
    movq    kj_pr_stack(%rip), %rsp
    pushq   $0
    jmpq    *kj_pr_entry(%rip)
4:  lidt    kj_pr_no_idt(%rip)
    ud2
kj_pr_no_idt:
    .word   0
    .quad   0
    .balign 8
kj_pr_apic:
    .quad   0
kj_pr_pml4:
    .quad   0
kj_pr_pml5:
    .quad   0
kj_pr_stack:
    .quad   0
kj_pr_entry:
    .quad   0
    .globl kjump_panic_return_end
kjump_panic_return_end:
    .popsection
"#,
    options(att_syntax)
);

extern "C" {
    static kjump_panic_return_start: u8;
    static kjump_panic_return_end: u8;
}

const PAGE: u64 = 4096;
const HUGE: u64 = 2 << 20;
/// Present and writable; for a page directory entry, also a 2 MiB page.
const TABLE: u64 = 0x3;
const HUGE_PAGE: u64 = 0x83;

/// Pages of the segment: code, stack, the top tables, then up to two
/// PDPTs and two page directories, taken as the two mappings need them.
const STACK: u64 = 1;
const PML5: u64 = 2;
const PML4: u64 = 3;
const FIRST_FREE: u64 = 4;
/// Bytes the segment takes in B's crashkernel= reservation.
pub const SIZE: u64 = 8 * PAGE;

/// The code, as assembled above.
fn code() -> &'static [u8] {
    assembled!(kjump_panic_return_start, kjump_panic_return_end)
}

/// The segment to load at physical `at` (page-aligned): code that enters
/// A's jump-back entry `entry` from a panic of B's kernel on the CPU
/// whose APIC ID is `apic_id`, and its tables.
pub fn build(at: u64, entry: u64, apic_id: u64) -> Result<Vec<u8>> {
    if !at.is_multiple_of(PAGE) || at % HUGE + SIZE > HUGE || entry == 0 {
        bail!("the panic return needs a page-aligned home inside one 2 MiB page, and an entry: {at:#x}, {entry:#x}");
    }
    let code = code();
    if code.len() < 40 {
        bail!("the panic return is missing from this build");
    }
    let mut seg = vec![0u8; SIZE as usize];
    let word = |page: u64, index: u64| (page * PAGE + index * 8) as usize;
    let phys = |page: u64| at + page * PAGE;
    let mut next_free = FIRST_FREE;
    // The next level's page under `page`'s entry `index`, made if absent.
    let mut descend = |seg: &mut [u8], page: u64, index: u64| {
        let o = word(page, index);
        let e = u64::from_le_bytes(seg[o..o + 8].try_into().unwrap());
        if e != 0 {
            return (e & !0xfff) - at;
        }
        let new = next_free;
        next_free += 1;
        seg[o..o + 8].copy_from_slice(&(phys(new) | TABLE).to_le_bytes());
        new * PAGE
    };
    seg[word(PML5, 0)..][..8].copy_from_slice(&(phys(PML4) | TABLE).to_le_bytes());
    for addr in [at, entry] {
        let pdpt = descend(&mut seg, PML4, (addr >> 39) & 511) / PAGE;
        let pd = descend(&mut seg, pdpt, (addr >> 30) & 511) / PAGE;
        let huge = (addr & !(HUGE - 1)) | HUGE_PAGE;
        seg[word(pd, (addr >> 21) & 511)..][..8].copy_from_slice(&huge.to_le_bytes());
    }
    let n = code.len();
    seg[..n].copy_from_slice(code);
    for (slot, value) in [apic_id, phys(PML4), phys(PML5), phys(STACK + 1), entry]
        .into_iter()
        .enumerate()
    {
        seg[n - 40 + slot * 8..][..8].copy_from_slice(&value.to_le_bytes());
    }
    Ok(seg)
}

/// In B: loads the panic return as B's crash image, at the start of B's
/// crashkernel= reservation, to enter A's jump-back `entry`.
pub fn arm(entry: u64) -> Result<()> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .flat_map(str::split_whitespace);
    if let Some(f) = flags.into_iter().find(|f| ["sme", "sev"].contains(f)) {
        bail!("host memory encryption is on ({f})");
    }
    let apic_id =
        boot_cpu_apic_id(&cpuinfo).context("no initial apicid of CPU 0 in /proc/cpuinfo")?;
    let res = crate::memmap::iomem()?
        .reservation
        .context("B's kernel has no crashkernel= reservation")?;
    if res.len() < SIZE {
        bail!(
            "B's crashkernel= reservation is {} bytes, the panic return needs {SIZE}",
            res.len()
        );
    }
    let seg = Segment {
        bytes: build(res.start, entry, apic_id)?,
        mem: res.start,
        memsz: SIZE,
    };
    sys::kexec_load(res.start, &[seg], sys::KEXEC_ON_CRASH)
        .map_err(|e| anyhow::anyhow!(sys::explain("loading B's panic return", &e)))
}

/// The initial APIC ID of processor 0 (the CPU the kernel booted on, here
/// the one A jumped from), as CPUID gives it.
fn boot_cpu_apic_id(cpuinfo: &str) -> Option<u64> {
    let cpu0 = cpuinfo.split("\n\n").find(|c| {
        c.lines().any(|l| {
            l.split_once(':')
                .is_some_and(|(k, v)| k.trim() == "processor" && v.trim() == "0")
        })
    })?;
    cpu0.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim() == "initial apicid")
        })
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Where `vaddr` leads in the four-level table of `seg` loaded at `at`,
/// if it is mapped (for the tests).
#[cfg(test)]
fn walk(seg: &[u8], at: u64, vaddr: u64) -> Option<u64> {
    let entry = |table: u64, index: u64| {
        let o = (table - at + index * 8) as usize;
        u64::from_le_bytes(seg[o..o + 8].try_into().unwrap())
    };
    let mut table = at + PML4 * PAGE;
    for shift in [39, 30] {
        let e = entry(table, (vaddr >> shift) & 511);
        if e & 1 == 0 {
            return None;
        }
        table = e & !0xfff;
    }
    let e = entry(table, (vaddr >> 21) & 511);
    (e & 0x81 == 0x81).then(|| (e & !0xfff) + (vaddr & (HUGE - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_itself_and_the_entry_one_to_one() {
        for (at, entry) in [
            (0x0b00_0000, 0x0123_4567),       // both below 1 GiB, apart
            (0x0b00_0000, 0x0b00_5000),       // one 2 MiB page
            (0x0b00_0000, 0x1_4000_0123),     // another PDPT entry
            (0x0b00_0000, 0x88_0000_0800),    // another PML4 entry
            (0x7f_c000_0000, 0x7f_c010_0040), // high, one page directory
        ] {
            let seg = build(at, entry, 0).unwrap();
            for a in [at, at + SIZE - 1, entry, entry & !0xfff] {
                assert_eq!(walk(&seg, at, a), Some(a), "{at:#x} {entry:#x}: {a:#x}");
            }
            let pml5 = u64::from_le_bytes(seg[(PML5 * PAGE) as usize..][..8].try_into().unwrap());
            assert_eq!(pml5, (at + PML4 * PAGE) | TABLE);
        }
    }

    #[test]
    fn slots_hold_the_tables_the_stack_and_the_entry() {
        let seg = build(0x0b00_0000, 0x1234_5000, 3).unwrap();
        let n = code().len();
        let word = |i: usize| u64::from_le_bytes(seg[n - 40 + i * 8..][..8].try_into().unwrap());
        assert_eq!(word(0), 3);
        assert_eq!(word(1), 0x0b00_0000 + PML4 * PAGE);
        assert_eq!(word(2), 0x0b00_0000 + PML5 * PAGE);
        assert_eq!(word(3), 0x0b00_0000 + 2 * PAGE);
        assert_eq!(word(4), 0x1234_5000);
        assert_eq!(
            seg[..4],
            [0x31, 0xc0, 0x0f, 0xa2],
            "starts with xor %eax, %eax; cpuid"
        );
    }

    #[test]
    fn the_boot_cpu_apic_id_is_processor_0s() {
        let cpuinfo = "processor\t: 0\napicid\t\t: 4\ninitial apicid\t: 4\n\nprocessor\t: 1\ninitial apicid\t: 6\n";
        assert_eq!(boot_cpu_apic_id(cpuinfo), Some(4));
        assert_eq!(
            boot_cpu_apic_id("processor\t: 1\ninitial apicid\t: 6\n"),
            None
        );
    }

    #[test]
    fn refuses_what_cannot_be_mapped() {
        assert!(build(0x0b00_0100, 0x1000, 0).is_err());
        assert!(build(0x0b00_0000, 0, 0).is_err());
        assert!(
            build(0x0b1f_f000, 0x1000, 0).is_err(),
            "crosses a 2 MiB page"
        );
    }
}
