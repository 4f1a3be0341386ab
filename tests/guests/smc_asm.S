/* Code for the smc guest that modifies itself; kept in .text like any other code (the image
 * is one RWX segment). */
    .text
    .code64

/* uint32_t smc_patch_next(uint32_t value): writes value into the immediate of the very next
 * instruction, which then returns it. */
    .globl smc_patch_next
smc_patch_next:
    movl %edi, 1f+1(%rip)
1:  movl $0, %eax
    ret

/* uint32_t smc_loop_patch(uint32_t n): for i in 0..n-1 { patch "add $imm, %eax" to imm = i;
 * execute it }, so it returns 0 + 1 + ... + (n - 1). */
    .globl smc_loop_patch
smc_loop_patch:
    xorl %eax, %eax
    xorl %ecx, %ecx
    testl %edi, %edi
    jz 3f
2:  movl %ecx, 4f+1(%rip)
4:  addl $0x7fffffff, %eax           /* opcode 05 imm32: the immediate is rewritten */
    incl %ecx
    cmpl %edi, %ecx
    jb 2b
3:  ret

/* uint32_t smc_text_target(void): returns 0x5eed unless patched (padded to 16 bytes). */
    .globl smc_text_target
    .globl smc_text_target_end
    .balign 16
smc_text_target:
    movl $0x5eed, %eax
    ret
    .skip 10, 0x90
smc_text_target_end:
