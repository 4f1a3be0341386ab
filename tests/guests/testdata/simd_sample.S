/* Input of the guests.no_simd_detects test: check_no_simd.sh must reject this. */
    .text
    .globl sample
sample:
    movaps %xmm0, %xmm1
    fldz
    ret
