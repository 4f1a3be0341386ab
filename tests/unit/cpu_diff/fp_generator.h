// Generator of x87/MMX/SSE/SSE2 differential cases (64-bit mode). Every case is
//     FXRSTOR64 [r15 + kFxIn]     ; FP state in: x87 ST/FCW/FSW/FTW, MM, XMM0-15, MXCSR
//     1-3 FP/SIMD instructions     ; operands from special values and random bits
//     FXSAVE64  [r15 + kFxOut]    ; FP state out, compared field by field
// with R15 = kDataBase and every memory operand [r15 + disp32] inside the data region, so the
// same bytes run on vmrr, on Unicorn and on the host CPU (host_oracle.h).
#pragma once

#include <cstdint>

#include "tests/unit/cpu_diff/diff_harness.h"
#include "tests/unit/cpu_diff/generator.h"

namespace vmrr::testing {

inline constexpr int kFxIn = 0x1000, kFxOut = 0x1200;  // data offsets of the two images
inline constexpr unsigned kFpOperandArea = 0x1000;      // data[0, 0x1000): memory operands

unsigned FpFormCount();
const char* FpFormName(unsigned index);

// Special float32/float64 operands: +-0, +-inf, QNaN/SNaN with payloads, denormals, the
// largest/smallest normals, integer-indefinite boundaries (2^31, 2^63 and neighbours),
// rounding ties; or random values (exponent near the extremes, or random bits).
uint32_t F32Operand(Rng& rng);
uint64_t F64Operand(Rng& rng);

// Fills c with one FP case; *first_form is the first instruction's form.
void GenerateFp(Rng& rng, DiffCase* c, unsigned* first_form);

}  // namespace vmrr::testing
