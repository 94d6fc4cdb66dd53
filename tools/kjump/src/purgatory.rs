// SPDX-License-Identifier: GPL-2.0

//! The few instructions that run between A's jump and B's kernel.
//!
//! A's kexec_jump_call() calls the image's entry in 64-bit mode, paging on
//! with a 1:1 map of all RAM, CS = 0x10 and DS = ES = SS = 0x18 (what the
//! 64-bit boot protocol asks for), and the jump-back entry at 0(%rsp).
//! The kernel learns that entry from its command line, so this code
//! appends " kexec_jump_back_entry=0x<16 hex digits>" to B's command line
//! (kjump left room for it), then enters the kernel's 64-bit entry with
//! %rsi = boot_params. It runs once: later jumps resume B where it left.

use anyhow::{bail, Result};
use core::arch::global_asm;

global_asm!(
    r#"
    .pushsection .rodata.kjump_purgatory, "a"
    .balign 16
    .globl kjump_purgatory_start
kjump_purgatory_start:
    cld
    movq    (%rsp), %rax
    movq    kj_cmdline_end(%rip), %rdi
    leaq    kj_back_arg(%rip), %rsi
    movl    $(kj_back_arg_end - kj_back_arg), %ecx
    rep movsb
    movl    $16, %ecx
1:  rolq    $4, %rax
    movl    %eax, %edx
    andl    $15, %edx
    addl    $48, %edx
    cmpl    $57, %edx
    jbe     2f
    addl    $39, %edx
2:  movb    %dl, (%rdi)
    incq    %rdi
    decl    %ecx
    jnz     1b
    movb    $0, (%rdi)
    movq    kj_boot_params(%rip), %rsi
    xorl    %ebp, %ebp
    xorl    %edi, %edi
    jmpq    *kj_kernel_entry(%rip)
kj_back_arg:
    .ascii  " kexec_jump_back_entry=0x"
kj_back_arg_end:
    .balign 8
kj_cmdline_end:
    .quad   0
kj_boot_params:
    .quad   0
kj_kernel_entry:
    .quad   0
    .globl kjump_purgatory_end
kjump_purgatory_end:
    .popsection
"#,
    options(att_syntax)
);

extern "C" {
    static kjump_purgatory_start: u8;
    static kjump_purgatory_end: u8;
}

/// Bytes the purgatory appends to the command line, without the NUL.
pub const CMDLINE_ROOM: usize = " kexec_jump_back_entry=0x".len() + 16;

/// The purgatory, with the address to append the command line at, the
/// boot_params address and the kernel's 64-bit entry filled in.
pub fn build(cmdline_end: u64, boot_params: u64, kernel_entry: u64) -> Result<Vec<u8>> {
    let code: &[u8] = assembled!(kjump_purgatory_start, kjump_purgatory_end);
    if code.len() < 24 {
        bail!("purgatory is missing from this build");
    }
    let mut out = code.to_vec();
    let n = out.len();
    out[n - 24..n - 16].copy_from_slice(&cmdline_end.to_le_bytes());
    out[n - 16..n - 8].copy_from_slice(&boot_params.to_le_bytes());
    out[n - 8..].copy_from_slice(&kernel_entry.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn slots_are_filled_at_the_end() {
        let p = super::build(1, 2, 3).unwrap();
        let n = p.len();
        assert_eq!(&p[n - 24..n - 16], &1u64.to_le_bytes());
        assert_eq!(&p[n - 8..], &3u64.to_le_bytes());
        assert_eq!(p[0], 0xfc, "starts with cld");
    }
}
