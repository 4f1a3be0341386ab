/* Multiboot 1 entry of fwcfg_probe (a kernel written for qemu-system-x86_64 -kernel): the
 * header (no flags: nothing asked of the loader), then 32-bit protected mode with the
 * kernel's own stack; kmain never returns (it exits through isa-debug-exit). */
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .code32
    .globl _start
_start:
    cli
    cld
    movl $stack_top, %esp
    call kmain
1:  hlt
    jmp 1b

    .bss
    .balign 16
    .space 1024
stack_top:
    .section .note.GNU-stack, "", @progbits
