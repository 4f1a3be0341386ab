#!/usr/bin/env python3
"""Writes the x87/SSE seeds of tests/fuzz/corpus/cpu_exec (fp_*): guest code assembled with GNU
as/ld at the flat machine's code address (0xb000), behind fuzz_cpu_exec's 33-byte header
(flags, register seeds). Byte 2's bits 6-7 choose the FPU set-up (0: x87+SSE with #XM,
1: no OSXMMEXCPT, 2: CR0.TS, 3: the flat machine's CR0/CR4); its bits 0-5 the slice length.
Usage: make_fp_seeds.py OUTDIR"""
import os
import subprocess
import sys
import tempfile

# name: (mode flags byte, fp set-up, .code directive, assembly)
DATA = """
    .balign 16
d0: .double 1.5, -2.25, 3.0e300, 5e-324
d1: .double 0.1, 7.0, -0.0, 1.0
i0: .long 0x1d80, 0x1f80, 0x9fc0, 0x7f80
big: .double 1e308
"""
SEEDS = {
    "fp_long64_sse": (0x44, 0, ".code64", """
    lea d0(%rip), %rsi
    movapd (%rsi), %xmm0
    movapd 16(%rsi), %xmm1
    mulpd %xmm0, %xmm0
    addpd 32(%rsi), %xmm1
    divsd %xmm1, %xmm0
    sqrtpd %xmm0, %xmm2
    minps %xmm1, %xmm2
    maxpd 48(%rsi), %xmm2
    cmpltpd %xmm1, %xmm2
    cvtsi2sd %rax, %xmm3
    cvttsd2si %xmm0, %rbx
    cvtsd2ss %xmm1, %xmm4
    cvtps2pd %xmm4, %xmm5
    ucomisd %xmm0, %xmm1
    comiss %xmm4, %xmm5
    shufps $0x1b, %xmm1, %xmm0
    unpcklpd %xmm0, %xmm1
    pxor %xmm6, %xmm6
    paddd %xmm1, %xmm6
    pcmpeqb %xmm0, %xmm6
    pmovmskb %xmm6, %ecx
    movdqu 1(%rsi), %xmm7
    movdqa %xmm7, 64(%rsi)
    movq %xmm7, %rdx
    movsd 8(%rsi), %xmm8
    andpd %xmm0, %xmm8
    stmxcsr 80(%rsi)
    hlt
"""),
    "fp_long64_sse_xm": (0x04, 0, ".code64", """
    lea d0(%rip), %rsi
    ldmxcsr i0(%rip)          /* ZM clear: 1/0 raises #XM (vector 19) */
    movsd d1+24(%rip), %xmm0
    pxor %xmm1, %xmm1
    divsd %xmm1, %xmm0
    hlt
"""),
    "fp_long64_sse_ud": (0x04, 1, ".code64", """
    ldmxcsr i0(%rip)          /* no OSXMMEXCPT: the unmasked 1/0 raises #UD */
    movsd d1+24(%rip), %xmm0
    xorps %xmm1, %xmm1
    divsd %xmm1, %xmm0
    hlt
"""),
    "fp_long64_ts_nm": (0x04, 2, ".code64", """
    fld1                      /* CR0.TS: #NM (vector 7) */
    addps %xmm0, %xmm1
    hlt
"""),
    "fp_long64_x87": (0x44, 0, ".code64", """
    lea d0(%rip), %rsi
    fninit
    fld1
    fldpi
    fldl (%rsi)
    fmull 8(%rsi)
    faddp
    fdivrp
    fsqrt
    fldl 16(%rsi)
    fmul %st(0), %st(0)       /* overflow to inf */
    fxch
    fcomi %st(1), %st
    fstpl 64(%rsi)
    fistpl 72(%rsi)
    fildll 8(%rsi)
    fchs
    fabs
    frndint
    fnstsw %ax
    fnstcw 76(%rsi)
    fnstenv 96(%rsi)
    fxsave 512(%rsi)
    fxrstor 512(%rsi)
    hlt
"""),
    "fp_long64_slices_saveload": (0x74, 0, ".code64", """
    lea d0(%rip), %rsi
    mov $40, %ecx
1:  movapd (%rsi), %xmm0
    mulpd 16(%rsi), %xmm0
    addpd %xmm0, %xmm1
    fldl (%rsi)
    fmull 8(%rsi)
    fstpl 64(%rsi)
    dec %ecx
    jnz 1b
    hlt
"""),
    "fp_prot32_x87_sse": (0x42, 0, ".code32", """
    mov $d0, %esi
    fninit
    fldl (%esi)
    fdivl 8(%esi)
    fstps 64(%esi)
    movss 64(%esi), %xmm0
    addss %xmm0, %xmm0
    cvtss2sd %xmm0, %xmm1
    movsd %xmm1, 72(%esi)
    fldl 72(%esi)
    fucomip %st(0), %st
    hlt
"""),
    "fp_real_sse_x87": (0x40, 0, ".code16", """
    mov $d0, %si
    fninit
    fld1
    fadd %st(0), %st
    fstpl 64(%si)
    movups (%si), %xmm0
    mulps %xmm0, %xmm0
    movups %xmm0, 80(%si)
    hlt
"""),
}


def assemble(code_dir, body):
    with tempfile.TemporaryDirectory() as t:
        src = os.path.join(t, "s.S")
        with open(src, "w") as f:
            f.write(f"    .text\n    {code_dir}\n    .globl _start\n_start:\n{body}\n{DATA}\n")
        obj, out = os.path.join(t, "s.o"), os.path.join(t, "s.bin")
        subprocess.run(["as", "--64", "-o", obj, src], check=True)
        subprocess.run(["ld", "-m", "elf_x86_64", "-Ttext=0xb000", "--oformat", "binary", "-o", out, obj],
                       check=True)
        return open(out, "rb").read()


def main():
    outdir = sys.argv[1]
    for name, (flags, fp, code_dir, body) in SEEDS.items():
        code = assemble(code_dir, body)
        seeds = bytearray(32)
        seeds[1] = (fp << 6) | 7  # byte 2 of the input: FP set-up, slice length 8
        seeds[0] = 0x13           # byte 1: interrupt vector / rax high byte
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(bytes([flags]) + bytes(seeds) + code)
        print(name, len(code), "bytes of code")


if __name__ == "__main__":
    main()
