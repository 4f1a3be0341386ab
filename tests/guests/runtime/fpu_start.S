/* rt_cpu_init of the fpu guest (overrides the empty weak one in start.S, which calls it
 * before kmain): x87 and SSE on, as an OS does before running FP code. CR0: MP (bit 1) and NE
 * (bit 5, #MF as an exception) set, EM (bit 2) and TS (bit 3) clear; CR4: OSFXSR (bit 9) and
 * OSXMMEXCPT (bit 10); FNINIT (FCW 037FH: all masked, 64-bit precision, round to nearest);
 * MXCSR 1F80H (all masked, round to nearest). Linked only into the fpu guest (exempt from
 * check_no_simd.sh). */
    .text
    .code64
    .globl rt_cpu_init
rt_cpu_init:
    movq %cr0, %rax
    andq $~0xc, %rax                /* EM, TS */
    orq $0x22, %rax                 /* MP, NE */
    movq %rax, %cr0
    movq %cr4, %rax
    orq $0x600, %rax                /* OSFXSR, OSXMMEXCPT */
    movq %rax, %cr4
    fninit
    pushq $0x1f80
    ldmxcsr (%rsp)
    addq $8, %rsp
    ret
