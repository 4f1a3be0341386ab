/* 64-bit entry of every ELF64 guest (boot contract: long mode, identity-mapped 4 GiB,
 * RDI = RAM size, IF = 0). Switches to the image's own stack, zeroes .bss, calls
 * rt_cpu_init (empty here, weak: the fpu guest's fpu_start.S enables x87/SSE in it), then
 * kmain(ram_bytes), and exits with its return value. The multiboot stub jumps here too. */
    .section .text.start, "ax"
    .code64
    .globl _start
_start:
    cli
    cld
    movq $boot_stack_top, %rsp
    movq %rdi, %r12                 /* RAM size survives the bss clear */
    movq $__bss_start, %rdi
    movq $__bss_end, %rcx
    subq %rdi, %rcx
    shrq $3, %rcx                   /* the linker script aligns both ends to 8 */
    xorl %eax, %eax
    rep stosq
    call rt_cpu_init
    movq %r12, %rdi
    call kmain
    movl %eax, %edi
    call rt_exit
1:  hlt
    jmp 1b

    .weak rt_cpu_init
rt_cpu_init:
    ret

    .section .bss
    .balign 16
boot_stack:
    .skip 16384
    .globl boot_stack_top
boot_stack_top:
