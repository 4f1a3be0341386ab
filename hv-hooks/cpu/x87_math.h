// x87 transcendental instructions (FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1)
// as pure functions of their operands and the control word: no CpuState, no host FPU, no
// libm. Computed with MPFR and rounded once to the 64-bit significand in the guest's FCW.RC
// (FCW.PC does not apply to these instructions, SDM Vol. 1 8.1.5.2), in the 80-bit extended
// exponent range: correctly rounded, hence one answer on every host. This differs from Intel
// hardware (which reduces arguments with a 66-bit pi and is not correctly rounded) by design;
// see FPU_NOTES.md.
//
// The caller (the x87 stack handlers) checks for empty registers and stack over/underflow,
// sets C2 and raises #MF; these functions report what the instruction computes and flags.
#pragma once

#include <cstdint>

#include "hv-hooks/cpu/cpu.h"

namespace vmrr {

struct X87MathResult {
  // The result that goes to ST(0) (for FPATAN/FYL2X/FYL2XP1: the value stored in ST(1)
  // before the pop). FSINCOS: sin, replaces the old ST(0) (becomes ST(1)). FPTAN: tan
  // (the caller then pushes r1).
  X87Reg r0;
  // FSINCOS: cos (pushed, becomes ST(0)). FPTAN: the value to push: 1.0, or the NaN itself
  // when r0 is a NaN (FPTAN of a NaN or of an infinity; the host hardware pushes the NaN).
  // Zero for the other functions.
  X87Reg r1;
  // FSW bits as the instruction sets them: IE(0) DE(1) ZE(2) OE(3) UE(4) PE(5), and C1
  // (bit 9) when the magnitude was rounded up (FSINCOS: C1 of the cosine). IE, DE, ZE and PE
  // are reported as with those exceptions masked (masked IE: r0 = the QNaN indefinite or the
  // propagated NaN; ZE: the signed infinity); if an unmasked IE/ZE/DE is in flags the caller
  // does not store. OE and UE follow the guest's FCW.OM/UM: masked, the rounded result
  // (infinity or the largest finite value by RC; a denormal, UE only if inexact); unmasked,
  // the SDM's response for register destinations, which the caller stores: the 64-bit
  // rounded result with its exponent adjusted by -/+24576, UE also when exact.
  uint16_t flags;
  // FSIN/FCOS/FSINCOS/FPTAN with |x| >= 2^63: the caller sets C2 = 1 and leaves ST(0)
  // unchanged (r0/r1/flags are then meaningless, flags is 0).
  bool out_of_range;
};

// FSW bits used in X87MathResult::flags.
inline constexpr uint16_t kX87Ie = 1u << 0, kX87De = 1u << 1, kX87Ze = 1u << 2,
                          kX87Oe = 1u << 3, kX87Ue = 1u << 4, kX87Pe = 1u << 5,
                          kX87C1 = 1u << 9;

X87MathResult X87Fsin(X87Reg x, uint16_t fcw);
X87MathResult X87Fcos(X87Reg x, uint16_t fcw);
X87MathResult X87Fsincos(X87Reg x, uint16_t fcw);
X87MathResult X87Fptan(X87Reg x, uint16_t fcw);
X87MathResult X87Fpatan(X87Reg st1, X87Reg st0, uint16_t fcw);  // atan(st1/st0), quadrant by signs
X87MathResult X87F2xm1(X87Reg x, uint16_t fcw);                  // 2^x - 1
X87MathResult X87Fyl2x(X87Reg st1, X87Reg st0, uint16_t fcw);    // st1 * log2(st0)
X87MathResult X87Fyl2xp1(X87Reg st1, X87Reg st0, uint16_t fcw);  // st1 * log2(st0 + 1)

}  // namespace vmrr
