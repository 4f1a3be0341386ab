// x87/MMX/SSE/SSE2 case generator of the differential test (see fp_generator.h). Encodings
// are written out by hand from the SDM opcode maps (legacy prefix, REX, 0F map, ModRM with
// mod=10/rm=111+REX.B for [r15 + disp32] or mod=11 for registers).
#include "tests/unit/cpu_diff/fp_generator.h"

#include <cstring>
#include <deque>
#include <initializer_list>
#include <string>
#include <vector>

namespace vmrr::testing {
namespace {

enum Dom : uint8_t { kF32, kF64, kInt, kBits, kF80, kBcd, kEnv, kSave };

enum Kind : uint8_t {
  kXmmRm,      // op xmm, xmm/m
  kXmmRmImm,   // op xmm, xmm/m, imm8
  kXmmGpr,     // op xmm, r/m32 (r/m64 with REX.W)
  kGprXmm,     // op r32/r64, xmm/m
  kGprXmmReg,  // op r32, xmm (register only: PMOVMSKB)
  kRmXmm,      // op xmm/m, xmm (stores)
  kRmXmmGpr,   // op r/m32 (r/m64), xmm (MOVD/MOVQ 66 0F 7E)
  kMmRm,       // op mm, mm/m
  kMmGpr,      // op mm, r/m32 (r/m64)
  kRmMm,       // op mm/m64, mm
  kRmMmGpr,    // op r/m32 (r/m64), mm
  kGprMmReg,   // op r32, mm (PMOVMSKB)
  kMemOnly,    // op m (modrm.reg = digit)
  kFixed,      // fixed bytes, no operands
  kX87Reg,     // op[0], op[1] + i (i = 0..7)
  // Branch simd:
  kXmmMem,     // op xmm, m (memory only)
  kMemXmm,     // op m, xmm (memory only)
  kMemMm,      // op m64, mm (memory only)
  kMemGpr,     // op m32/m64, r (MOVNTI)
  kXmmMm,      // op xmm, mm/m64
  kMmXmm,      // op mm, xmm/m
  kXmmMmReg,   // op xmm, mm (register only)
  kMmXmmReg,   // op mm, xmm (register only)
  kShiftImm,   // op xmm|mm (rm, register), imm8 with modrm.reg = digit
  kGprXmmImm,  // op r32, xmm, imm8 (PEXTRW)
  kGprMmImm,   // op r32, mm, imm8
  kXmmGprImm,  // op xmm, r32/m16, imm8 (PINSRW)
  kMmGprImm,   // op mm, r32/m16, imm8
  kMmRmImm,    // op mm, mm/m64, imm8 (PSHUFW, PALIGNR mm)
};

struct Form {
  const char* name;
  uint8_t pfx;                 // 0, 66, F2, F3
  uint8_t op[3];               // opcode bytes (count in nop)
  uint8_t nop;
  Kind kind;
  uint8_t msize;               // memory operand size (with REX.W: 8 for the GPR forms)
  bool aligned;                // a 16-byte memory operand must be aligned (#GP otherwise)
  Dom dom;
  uint8_t digit;               // modrm.reg of kMemOnly
};

#define OP2(b) {0x0f, b, 0}, 2
std::vector<Form> BuildForms() {
  std::vector<Form> f;
  struct Arith { const char* n; uint8_t op; };
  const Arith kArith[] = {{"add", 0x58}, {"mul", 0x59}, {"sub", 0x5c}, {"min", 0x5d},
                          {"div", 0x5e}, {"max", 0x5f}, {"sqrt", 0x51}};
  static std::deque<std::string> names;  // keeps the composed names alive (stable addresses)
  auto name = [&](std::string s) {
    names.push_back(std::move(s));
    return names.back().c_str();
  };
  for (const Arith& a : kArith) {
    f.push_back({name(std::string(a.n) + "ps"), 0, OP2(a.op), kXmmRm, 16, true, kF32, 0});
    f.push_back({name(std::string(a.n) + "pd"), 0x66, OP2(a.op), kXmmRm, 16, true, kF64, 0});
    f.push_back({name(std::string(a.n) + "ss"), 0xf3, OP2(a.op), kXmmRm, 4, false, kF32, 0});
    f.push_back({name(std::string(a.n) + "sd"), 0xf2, OP2(a.op), kXmmRm, 8, false, kF64, 0});
  }
  const Arith kLogic[] = {{"and", 0x54}, {"andn", 0x55}, {"or", 0x56}, {"xor", 0x57}};
  for (const Arith& a : kLogic) {
    f.push_back({name(std::string(a.n) + "ps"), 0, OP2(a.op), kXmmRm, 16, true, kF32, 0});
    f.push_back({name(std::string(a.n) + "pd"), 0x66, OP2(a.op), kXmmRm, 16, true, kF64, 0});
  }
  f.push_back({"cmpps", 0, OP2(0xc2), kXmmRmImm, 16, true, kF32, 0});
  f.push_back({"cmppd", 0x66, OP2(0xc2), kXmmRmImm, 16, true, kF64, 0});
  f.push_back({"cmpss", 0xf3, OP2(0xc2), kXmmRmImm, 4, false, kF32, 0});
  f.push_back({"cmpsd", 0xf2, OP2(0xc2), kXmmRmImm, 8, false, kF64, 0});
  f.push_back({"comiss", 0, OP2(0x2f), kXmmRm, 4, false, kF32, 0});
  f.push_back({"comisd", 0x66, OP2(0x2f), kXmmRm, 8, false, kF64, 0});
  f.push_back({"ucomiss", 0, OP2(0x2e), kXmmRm, 4, false, kF32, 0});
  f.push_back({"ucomisd", 0x66, OP2(0x2e), kXmmRm, 8, false, kF64, 0});
  // Conversions.
  f.push_back({"cvtps2pd", 0, OP2(0x5a), kXmmRm, 8, false, kF32, 0});
  f.push_back({"cvtpd2ps", 0x66, OP2(0x5a), kXmmRm, 16, true, kF64, 0});
  f.push_back({"cvtss2sd", 0xf3, OP2(0x5a), kXmmRm, 4, false, kF32, 0});
  f.push_back({"cvtsd2ss", 0xf2, OP2(0x5a), kXmmRm, 8, false, kF64, 0});
  f.push_back({"cvtdq2ps", 0, OP2(0x5b), kXmmRm, 16, true, kInt, 0});
  f.push_back({"cvtps2dq", 0x66, OP2(0x5b), kXmmRm, 16, true, kF32, 0});
  f.push_back({"cvttps2dq", 0xf3, OP2(0x5b), kXmmRm, 16, true, kF32, 0});
  f.push_back({"cvtdq2pd", 0xf3, OP2(0xe6), kXmmRm, 8, false, kInt, 0});
  f.push_back({"cvtpd2dq", 0xf2, OP2(0xe6), kXmmRm, 16, true, kF64, 0});
  f.push_back({"cvttpd2dq", 0x66, OP2(0xe6), kXmmRm, 16, true, kF64, 0});
  f.push_back({"cvtsi2ss", 0xf3, OP2(0x2a), kXmmGpr, 4, false, kInt, 0});
  f.push_back({"cvtsi2sd", 0xf2, OP2(0x2a), kXmmGpr, 4, false, kInt, 0});
  f.push_back({"cvtss2si", 0xf3, OP2(0x2d), kGprXmm, 4, false, kF32, 0});
  f.push_back({"cvttss2si", 0xf3, OP2(0x2c), kGprXmm, 4, false, kF32, 0});
  f.push_back({"cvtsd2si", 0xf2, OP2(0x2d), kGprXmm, 8, false, kF64, 0});
  f.push_back({"cvttsd2si", 0xf2, OP2(0x2c), kGprXmm, 8, false, kF64, 0});
  // Shuffles and unpacks.
  f.push_back({"shufps", 0, OP2(0xc6), kXmmRmImm, 16, true, kF32, 0});
  f.push_back({"shufpd", 0x66, OP2(0xc6), kXmmRmImm, 16, true, kF64, 0});
  f.push_back({"unpcklps", 0, OP2(0x14), kXmmRm, 16, true, kF32, 0});
  f.push_back({"unpckhps", 0, OP2(0x15), kXmmRm, 16, true, kF32, 0});
  f.push_back({"unpcklpd", 0x66, OP2(0x14), kXmmRm, 16, true, kF64, 0});
  f.push_back({"unpckhpd", 0x66, OP2(0x15), kXmmRm, 16, true, kF64, 0});
  f.push_back({"pshufd", 0x66, OP2(0x70), kXmmRmImm, 16, true, kInt, 0});
  f.push_back({"pshufhw", 0xf3, OP2(0x70), kXmmRmImm, 16, true, kInt, 0});
  f.push_back({"pshuflw", 0xf2, OP2(0x70), kXmmRmImm, 16, true, kInt, 0});
  // Moves.
  f.push_back({"movaps", 0, OP2(0x28), kXmmRm, 16, true, kBits, 0});
  f.push_back({"movaps.st", 0, OP2(0x29), kRmXmm, 16, true, kBits, 0});
  f.push_back({"movapd", 0x66, OP2(0x28), kXmmRm, 16, true, kBits, 0});
  f.push_back({"movapd.st", 0x66, OP2(0x29), kRmXmm, 16, true, kBits, 0});
  f.push_back({"movups", 0, OP2(0x10), kXmmRm, 16, false, kBits, 0});
  f.push_back({"movups.st", 0, OP2(0x11), kRmXmm, 16, false, kBits, 0});
  f.push_back({"movupd", 0x66, OP2(0x10), kXmmRm, 16, false, kBits, 0});
  f.push_back({"movupd.st", 0x66, OP2(0x11), kRmXmm, 16, false, kBits, 0});
  f.push_back({"movss", 0xf3, OP2(0x10), kXmmRm, 4, false, kF32, 0});
  f.push_back({"movss.st", 0xf3, OP2(0x11), kRmXmm, 4, false, kF32, 0});
  f.push_back({"movsd", 0xf2, OP2(0x10), kXmmRm, 8, false, kF64, 0});
  f.push_back({"movsd.st", 0xf2, OP2(0x11), kRmXmm, 8, false, kF64, 0});
  f.push_back({"movdqa", 0x66, OP2(0x6f), kXmmRm, 16, true, kBits, 0});
  f.push_back({"movdqa.st", 0x66, OP2(0x7f), kRmXmm, 16, true, kBits, 0});
  f.push_back({"movdqu", 0xf3, OP2(0x6f), kXmmRm, 16, false, kBits, 0});
  f.push_back({"movdqu.st", 0xf3, OP2(0x7f), kRmXmm, 16, false, kBits, 0});
  f.push_back({"movd/q xmm,r/m", 0x66, OP2(0x6e), kXmmGpr, 4, false, kInt, 0});
  f.push_back({"movd/q r/m,xmm", 0x66, OP2(0x7e), kRmXmmGpr, 4, false, kInt, 0});
  f.push_back({"movq xmm,xmm/m64", 0xf3, OP2(0x7e), kXmmRm, 8, false, kInt, 0});
  f.push_back({"movq xmm/m64,xmm", 0x66, OP2(0xd6), kRmXmm, 8, false, kInt, 0});
  // Integer SIMD, SSE2 (66) and MMX forms.
  const Arith kInt2[] = {
      {"paddb", 0xfc},   {"paddw", 0xfd},   {"paddd", 0xfe},     {"paddq", 0xd4},
      {"psubb", 0xf8},   {"psubw", 0xf9},   {"psubd", 0xfa},     {"psubq", 0xfb},
      {"paddsb", 0xec},  {"paddsw", 0xed},  {"paddusb", 0xdc},   {"paddusw", 0xdd},
      {"psubsb", 0xe8},  {"psubsw", 0xe9},  {"psubusb", 0xd8},   {"psubusw", 0xd9},
      {"pcmpeqb", 0x74}, {"pcmpeqw", 0x75}, {"pcmpeqd", 0x76},   {"pcmpgtb", 0x64},
      {"pcmpgtw", 0x65}, {"pcmpgtd", 0x66}, {"pand", 0xdb},      {"pandn", 0xdf},
      {"por", 0xeb},     {"pxor", 0xef},    {"punpcklbw", 0x60}, {"punpcklwd", 0x61},
      {"punpckldq", 0x62}, {"punpckhbw", 0x68}, {"punpckhwd", 0x69}, {"punpckhdq", 0x6a}};
  for (const Arith& a : kInt2) {
    f.push_back({name(std::string(a.n) + " xmm"), 0x66, OP2(a.op), kXmmRm, 16, true, kInt, 0});
    // The low unpacks read 32 bits of memory in the MMX form.
    const bool low_unpack = a.op >= 0x60 && a.op <= 0x62;
    f.push_back({name(std::string(a.n) + " mm"), 0, OP2(a.op), kMmRm,
                 static_cast<uint8_t>(low_unpack ? 4 : 8), false, kInt, 0});
  }
  f.push_back({"punpcklqdq", 0x66, OP2(0x6c), kXmmRm, 16, true, kInt, 0});
  f.push_back({"punpckhqdq", 0x66, OP2(0x6d), kXmmRm, 16, true, kInt, 0});
  f.push_back({"pmovmskb xmm", 0x66, OP2(0xd7), kGprXmmReg, 0, false, kInt, 0});
  f.push_back({"pmovmskb mm", 0, OP2(0xd7), kGprMmReg, 0, false, kInt, 0});
  f.push_back({"movd/q mm,r/m", 0, OP2(0x6e), kMmGpr, 4, false, kInt, 0});
  f.push_back({"movd/q r/m,mm", 0, OP2(0x7e), kRmMmGpr, 4, false, kInt, 0});
  f.push_back({"movq mm,mm/m64", 0, OP2(0x6f), kMmRm, 8, false, kInt, 0});
  f.push_back({"movq mm/m64,mm", 0, OP2(0x7f), kRmMm, 8, false, kInt, 0});
  // MXCSR and the x87 control instructions on main.
  f.push_back({"ldmxcsr", 0, {0x0f, 0xae, 0}, 2, kMemOnly, 4, false, kInt, 2});
  f.push_back({"stmxcsr", 0, {0x0f, 0xae, 0}, 2, kMemOnly, 4, false, kInt, 3});
  f.push_back({"fldcw", 0, {0xd9, 0, 0}, 1, kMemOnly, 2, false, kInt, 5});
  f.push_back({"fnstcw", 0, {0xd9, 0, 0}, 1, kMemOnly, 2, false, kInt, 7});
  f.push_back({"fnstsw m16", 0, {0xdd, 0, 0}, 1, kMemOnly, 2, false, kInt, 7});
  f.push_back({"fnstsw ax", 0, {0xdf, 0xe0, 0}, 2, kFixed, 0, false, kInt, 0});
  f.push_back({"fninit", 0, {0xdb, 0xe3, 0}, 2, kFixed, 0, false, kInt, 0});
  f.push_back({"fnclex", 0, {0xdb, 0xe2, 0}, 2, kFixed, 0, false, kInt, 0});
  f.push_back({"fwait", 0, {0x9b, 0, 0}, 1, kFixed, 0, false, kInt, 0});
  f.push_back({"emms", 0, {0x0f, 0x77, 0}, 2, kFixed, 0, false, kInt, 0});
  // Branch simd: the rest of SSE/SSE2, SSE3, SSSE3 (not MASKMOVQ/MASKMOVDQU: they store
  // through DS:RDI, which the host side cannot point at the same place).
  const Arith kInt3[] = {
      {"psrlw", 0xd1},   {"psrld", 0xd2},    {"psrlq", 0xd3},    {"psraw", 0xe1},
      {"psrad", 0xe2},   {"psllw", 0xf1},    {"pslld", 0xf2},    {"psllq", 0xf3},
      {"pmullw", 0xd5},  {"pmulhw", 0xe5},   {"pmulhuw", 0xe4},  {"pmuludq", 0xf4},
      {"pmaddwd", 0xf5}, {"psadbw", 0xf6},   {"pavgb", 0xe0},    {"pavgw", 0xe3},
      {"pminub", 0xda},  {"pmaxub", 0xde},   {"pminsw", 0xea},   {"pmaxsw", 0xee},
      {"packsswb", 0x63}, {"packssdw", 0x6b}, {"packuswb", 0x67}};
  for (const Arith& a : kInt3) {
    f.push_back({name(std::string(a.n) + " xmm"), 0x66, OP2(a.op), kXmmRm, 16, true, kInt, 0});
    f.push_back({name(std::string(a.n) + " mm"), 0, OP2(a.op), kMmRm, 8, false, kInt, 0});
  }
  struct Ssse3 { const char* n; uint8_t op; };
  const Ssse3 kSsse3[] = {{"pshufb", 0x00},   {"phaddw", 0x01},   {"phaddd", 0x02},
                          {"phaddsw", 0x03},  {"pmaddubsw", 0x04}, {"phsubw", 0x05},
                          {"phsubd", 0x06},   {"phsubsw", 0x07},  {"psignb", 0x08},
                          {"psignw", 0x09},   {"psignd", 0x0a},   {"pmulhrsw", 0x0b},
                          {"pabsb", 0x1c},    {"pabsw", 0x1d},    {"pabsd", 0x1e}};
  for (const Ssse3& a : kSsse3) {
    f.push_back({name(std::string(a.n) + " xmm"), 0x66, {0x0f, 0x38, a.op}, 3, kXmmRm, 16, true, kInt, 0});
    f.push_back({name(std::string(a.n) + " mm"), 0, {0x0f, 0x38, a.op}, 3, kMmRm, 8, false, kInt, 0});
  }
  f.push_back({"palignr xmm", 0x66, {0x0f, 0x3a, 0x0f}, 3, kXmmRmImm, 16, true, kInt, 0});
  f.push_back({"palignr mm", 0, {0x0f, 0x3a, 0x0f}, 3, kMmRmImm, 8, false, kInt, 0});
  struct Shift { const char* n; uint8_t op, digit; bool xmm_only; };
  const Shift kShifts[] = {{"psrlw imm", 0x71, 2, false}, {"psraw imm", 0x71, 4, false},
                           {"psllw imm", 0x71, 6, false}, {"psrld imm", 0x72, 2, false},
                           {"psrad imm", 0x72, 4, false}, {"pslld imm", 0x72, 6, false},
                           {"psrlq imm", 0x73, 2, false}, {"psrldq", 0x73, 3, true},
                           {"psllq imm", 0x73, 6, false}, {"pslldq", 0x73, 7, true}};
  for (const Shift& sh : kShifts) {
    f.push_back({name(std::string(sh.n) + " xmm"), 0x66, OP2(sh.op), kShiftImm, 0, false, kInt, sh.digit});
    if (!sh.xmm_only) f.push_back({name(std::string(sh.n) + " mm"), 0, OP2(sh.op), kShiftImm, 0, false, kInt, sh.digit});
  }
  f.push_back({"movlps/movhlps", 0, OP2(0x12), kXmmRm, 8, false, kF32, 0});
  f.push_back({"movhps/movlhps", 0, OP2(0x16), kXmmRm, 8, false, kF32, 0});
  f.push_back({"movlps.st", 0, OP2(0x13), kMemXmm, 8, false, kF32, 0});
  f.push_back({"movhps.st", 0, OP2(0x17), kMemXmm, 8, false, kF32, 0});
  f.push_back({"movlpd", 0x66, OP2(0x12), kXmmMem, 8, false, kF64, 0});
  f.push_back({"movhpd", 0x66, OP2(0x16), kXmmMem, 8, false, kF64, 0});
  f.push_back({"movlpd.st", 0x66, OP2(0x13), kMemXmm, 8, false, kF64, 0});
  f.push_back({"movhpd.st", 0x66, OP2(0x17), kMemXmm, 8, false, kF64, 0});
  f.push_back({"rcpps", 0, OP2(0x53), kXmmRm, 16, true, kF32, 0});
  f.push_back({"rcpss", 0xf3, OP2(0x53), kXmmRm, 4, false, kF32, 0});
  f.push_back({"rsqrtps", 0, OP2(0x52), kXmmRm, 16, true, kF32, 0});
  f.push_back({"rsqrtss", 0xf3, OP2(0x52), kXmmRm, 4, false, kF32, 0});
  f.push_back({"cvtpi2ps", 0, OP2(0x2a), kXmmMm, 8, false, kInt, 0});
  f.push_back({"cvtpi2pd", 0x66, OP2(0x2a), kXmmMm, 8, false, kInt, 0});
  f.push_back({"cvtps2pi", 0, OP2(0x2d), kMmXmm, 8, false, kF32, 0});
  f.push_back({"cvttps2pi", 0, OP2(0x2c), kMmXmm, 8, false, kF32, 0});
  f.push_back({"cvtpd2pi", 0x66, OP2(0x2d), kMmXmm, 16, true, kF64, 0});
  f.push_back({"cvttpd2pi", 0x66, OP2(0x2c), kMmXmm, 16, true, kF64, 0});
  f.push_back({"pextrw xmm", 0x66, OP2(0xc5), kGprXmmImm, 0, false, kInt, 0});
  f.push_back({"pextrw mm", 0, OP2(0xc5), kGprMmImm, 0, false, kInt, 0});
  f.push_back({"pinsrw xmm", 0x66, OP2(0xc4), kXmmGprImm, 2, false, kInt, 0});
  f.push_back({"pinsrw mm", 0, OP2(0xc4), kMmGprImm, 2, false, kInt, 0});
  f.push_back({"pshufw", 0, OP2(0x70), kMmRmImm, 8, false, kInt, 0});
  f.push_back({"movmskps", 0, OP2(0x50), kGprXmmReg, 0, false, kF32, 0});
  f.push_back({"movmskpd", 0x66, OP2(0x50), kGprXmmReg, 0, false, kF64, 0});
  f.push_back({"movq2dq", 0xf3, OP2(0xd6), kXmmMmReg, 0, false, kInt, 0});
  f.push_back({"movdq2q", 0xf2, OP2(0xd6), kMmXmmReg, 0, false, kInt, 0});
  f.push_back({"movntps", 0, OP2(0x2b), kMemXmm, 16, true, kBits, 0});
  f.push_back({"movntpd", 0x66, OP2(0x2b), kMemXmm, 16, true, kBits, 0});
  f.push_back({"movntdq", 0x66, OP2(0xe7), kMemXmm, 16, true, kBits, 0});
  f.push_back({"movntq", 0, OP2(0xe7), kMemMm, 8, false, kBits, 0});
  f.push_back({"movnti", 0, OP2(0xc3), kMemGpr, 4, false, kBits, 0});
  f.push_back({"lddqu", 0xf2, OP2(0xf0), kXmmMem, 16, false, kBits, 0});
  f.push_back({"addsubps", 0xf2, OP2(0xd0), kXmmRm, 16, true, kF32, 0});
  f.push_back({"addsubpd", 0x66, OP2(0xd0), kXmmRm, 16, true, kF64, 0});
  f.push_back({"haddps", 0xf2, OP2(0x7c), kXmmRm, 16, true, kF32, 0});
  f.push_back({"haddpd", 0x66, OP2(0x7c), kXmmRm, 16, true, kF64, 0});
  f.push_back({"hsubps", 0xf2, OP2(0x7d), kXmmRm, 16, true, kF32, 0});
  f.push_back({"hsubpd", 0x66, OP2(0x7d), kXmmRm, 16, true, kF64, 0});
  f.push_back({"movshdup", 0xf3, OP2(0x16), kXmmRm, 16, true, kF32, 0});
  f.push_back({"movsldup", 0xf3, OP2(0x12), kXmmRm, 16, true, kF32, 0});
  f.push_back({"movddup", 0xf2, OP2(0x12), kXmmRm, 8, false, kF64, 0});
  // x87 (branch x87): memory forms [r15 + disp32] with the escape and modrm.reg digit.
  struct X87Mem { const char* n; uint8_t esc, digit, size; Dom dom; };
  const X87Mem kX87Mem[] = {
      {"fld m32", 0xd9, 0, 4, kF32},     {"fld m64", 0xdd, 0, 8, kF64},
      {"fld m80", 0xdb, 5, 10, kF80},    {"fild m16", 0xdf, 0, 2, kInt},
      {"fild m32", 0xdb, 0, 4, kInt},    {"fild m64", 0xdf, 5, 8, kInt},
      {"fbld", 0xdf, 4, 10, kBcd},       {"fst m32", 0xd9, 2, 4, kF80},
      {"fstp m32", 0xd9, 3, 4, kF80},    {"fst m64", 0xdd, 2, 8, kF80},
      {"fstp m64", 0xdd, 3, 8, kF80},    {"fstp m80", 0xdb, 7, 10, kF80},
      {"fist m16", 0xdf, 2, 2, kF80},    {"fistp m16", 0xdf, 3, 2, kF80},
      {"fist m32", 0xdb, 2, 4, kF80},    {"fistp m32", 0xdb, 3, 4, kF80},
      {"fistp m64", 0xdf, 7, 8, kF80},   {"fisttp m16", 0xdf, 1, 2, kF80},
      {"fisttp m32", 0xdb, 1, 4, kF80},  {"fisttp m64", 0xdd, 1, 8, kF80},
      {"fbstp", 0xdf, 6, 10, kF80},      {"fldenv", 0xd9, 4, 28, kEnv},
      {"frstor", 0xdd, 4, 108, kSave},
  };
  for (const X87Mem& m : kX87Mem) {
    f.push_back({m.n, 0, {m.esc, 0, 0}, 1, kMemOnly, m.size, false, m.dom, m.digit});
  }
  static const char* const kArithNames[8] = {"fadd", "fmul", "fcom", "fcomp",
                                             "fsub", "fsubr", "fdiv", "fdivr"};
  static const char* const kIntNames[8] = {"fiadd", "fimul", "ficom", "ficomp",
                                           "fisub", "fisubr", "fidiv", "fidivr"};
  for (uint8_t dg = 0; dg < 8; ++dg) {
    f.push_back({name(std::string(kArithNames[dg]) + " m32"), 0, {0xd8, 0, 0}, 1, kMemOnly, 4, false, kF32, dg});
    f.push_back({name(std::string(kArithNames[dg]) + " m64"), 0, {0xdc, 0, 0}, 1, kMemOnly, 8, false, kF64, dg});
    f.push_back({name(std::string(kIntNames[dg]) + " m32"), 0, {0xda, 0, 0}, 1, kMemOnly, 4, false, kInt, dg});
    f.push_back({name(std::string(kIntNames[dg]) + " m16"), 0, {0xde, 0, 0}, 1, kMemOnly, 2, false, kInt, dg});
    f.push_back({name(std::string(kArithNames[dg]) + " st0,sti"), 0, {0xd8, static_cast<uint8_t>(0xc0 + 8 * dg), 0}, 2, kX87Reg, 0, false, kF80, 0});
  }
  struct X87R { const char* n; uint8_t esc, base; };
  const X87R kX87Regs[] = {
      {"fld sti", 0xd9, 0xc0},     {"fxch", 0xd9, 0xc8},        {"fst sti", 0xdd, 0xd0},
      {"fstp sti", 0xdd, 0xd8},    {"ffree", 0xdd, 0xc0},       {"fucom", 0xdd, 0xe0},
      {"fucomp", 0xdd, 0xe8},      {"fadd sti,st0", 0xdc, 0xc0}, {"fmul sti,st0", 0xdc, 0xc8},
      {"fsubr sti,st0", 0xdc, 0xe0}, {"fsub sti,st0", 0xdc, 0xe8}, {"fdivr sti,st0", 0xdc, 0xf0},
      {"fdiv sti,st0", 0xdc, 0xf8}, {"faddp", 0xde, 0xc0},      {"fmulp", 0xde, 0xc8},
      {"fsubrp", 0xde, 0xe0},      {"fsubp", 0xde, 0xe8},       {"fdivrp", 0xde, 0xf0},
      {"fdivp", 0xde, 0xf8},       {"fcmovb", 0xda, 0xc0},      {"fcmove", 0xda, 0xc8},
      {"fcmovbe", 0xda, 0xd0},     {"fcmovu", 0xda, 0xd8},      {"fcmovnb", 0xdb, 0xc0},
      {"fcmovne", 0xdb, 0xc8},     {"fcmovnbe", 0xdb, 0xd0},    {"fcmovnu", 0xdb, 0xd8},
      {"fucomi", 0xdb, 0xe8},      {"fcomi", 0xdb, 0xf0},       {"fucomip", 0xdf, 0xe8},
      {"fcomip", 0xdf, 0xf0},
  };
  for (const X87R& r : kX87Regs) f.push_back({r.n, 0, {r.esc, r.base, 0}, 2, kX87Reg, 0, false, kF80, 0});
  struct X87F { const char* n; uint8_t a, b; };
  // Not generated: the transcendentals (FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X,
  // FYL2XP1: #UD on branch x87, MPFR on branch x87math; the hardware's results are not the
  // correctly rounded ones vmrr will give, so neither Unicorn nor the host is their oracle),
  // FNSTENV/FNSAVE (they store FIP/FDP, host addresses on the host).
  const X87F kX87Fixed[] = {
      {"fchs", 0xd9, 0xe0},   {"fabs", 0xd9, 0xe1},    {"ftst", 0xd9, 0xe4},
      {"fxam", 0xd9, 0xe5},   {"fld1", 0xd9, 0xe8},    {"fldl2t", 0xd9, 0xe9},
      {"fldl2e", 0xd9, 0xea}, {"fldpi", 0xd9, 0xeb},   {"fldlg2", 0xd9, 0xec},
      {"fldln2", 0xd9, 0xed}, {"fldz", 0xd9, 0xee},    {"fxtract", 0xd9, 0xf4},
      {"fprem1", 0xd9, 0xf5}, {"fdecstp", 0xd9, 0xf6}, {"fincstp", 0xd9, 0xf7},
      {"fprem", 0xd9, 0xf8},  {"fsqrt", 0xd9, 0xfa},   {"frndint", 0xd9, 0xfc},
      {"fscale", 0xd9, 0xfd}, {"fnop", 0xd9, 0xd0},    {"fucompp", 0xda, 0xe9},
      {"fcompp", 0xde, 0xd9},
  };
  for (const X87F& x : kX87Fixed) f.push_back({x.n, 0, {x.a, x.b, 0}, 2, kFixed, 0, false, kF80, 0});
  return f;
}
#undef OP2

const std::vector<Form>& Forms() {
  static const std::vector<Form> f = BuildForms();
  return f;
}

// ---- operand values -------------------------------------------------------------------

constexpr uint32_t kF32Special[] = {
    0x00000000, 0x80000000, 0x7f800000, 0xff800000,  // +-0, +-inf
    0x7fc00000, 0xffc00000, 0x7fc00001, 0xffe12345,  // QNaNs (default, payloads)
    0x7f800001, 0x7fbfffff, 0xff812345, 0xffa00000,  // SNaNs
    0x00000001, 0x807fffff, 0x00400000, 0x80000003,  // denormals
    0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff,  // smallest/largest normals
    0x3f800000, 0xbf800000, 0x3f000000, 0x3fc00000,  // 1, -1, 0.5, 1.5
    0x40200000, 0xbfc00000, 0xbf000000, 0x40400000,  // 2.5, -1.5, -0.5, 3
    0x4f000000, 0xcf000000, 0x4effffff, 0xcf000001,  // 2^31, -2^31 and neighbours
    0x5f000000, 0xdf000000, 0x5effffff, 0xdf000001,  // 2^63, -2^63 and neighbours
    0x4b800000, 0x4b800001, 0x34000000, 0x00ffffff,  // 2^24, 2^-23, 2^-125-ish
    0x7f000000, 0x01000000, 0x0c000000, 0x72000000,  // 2^127, 2^-125, tiny/huge
    0x3f7fffff, 0x3f800001, 0x40000000, 0x3eaaaaab,  // around 1, 2, 1/3
};

constexpr uint64_t kF64Special[] = {
    0x0000000000000000, 0x8000000000000000, 0x7ff0000000000000, 0xfff0000000000000,
    0x7ff8000000000000, 0xfff8000000000000, 0x7ff8000000000123, 0xfffabcdef0123456,
    0x7ff0000000000001, 0x7ff7ffffffffffff, 0xfff0000000000abc, 0x7ff4000000000000,
    0x0000000000000001, 0x800fffffffffffff, 0x0008000000000000, 0x8000000000000003,
    0x0010000000000000, 0x8010000000000000, 0x7fefffffffffffff, 0xffefffffffffffff,
    0x3ff0000000000000, 0xbff0000000000000, 0x3fe0000000000000, 0x3ff8000000000000,
    0x4004000000000000, 0xbff8000000000000, 0xbfe0000000000000, 0x4008000000000000,
    0x41e0000000000000, 0xc1e0000000000000, 0x41dfffffffc00000, 0x41dfffffffe00000,
    0xc1e0000000100000, 0xc1e0000000200000, 0x41dfffffffffffff, 0xc1e00000001fffff,
    0x43e0000000000000, 0xc3e0000000000000, 0x43dfffffffffffff, 0xc3e0000000000001,
    0x47efffffe0000000, 0x47efffffe0000001, 0x47effffff0000000, 0x47f0000000000000,
    0x3810000000000000, 0x380fffffffffffff, 0x36a0000000000000, 0x3690000000000000,
    0x3698000000000000, 0x36a8000000000000, 0x3ff0000000000001, 0x3fefffffffffffff,
    0x7fe0000000000000, 0x0020000000000000, 0x3fd5555555555555, 0x4340000000000001,
};

}  // namespace

uint32_t F32Operand(Rng& rng) {
  const unsigned k = static_cast<unsigned>(rng.Below(10));
  if (k < 5) return kF32Special[rng.Below(sizeof kF32Special / sizeof kF32Special[0])];
  const uint32_t sign = static_cast<uint32_t>(rng.Below(2)) << 31;
  const uint32_t mant = static_cast<uint32_t>(rng.Next()) & 0x7fffff;
  if (k < 7) {
    static const uint32_t kExp[] = {0, 1, 2, 24, 100, 126, 127, 128, 150, 190, 253, 254, 255};
    return sign | kExp[rng.Below(sizeof kExp / sizeof kExp[0])] << 23 | mant;
  }
  if (k < 9) return sign | static_cast<uint32_t>(rng.Below(40) + 107) << 23 | mant;  // ~[2^-20, 2^20)
  return static_cast<uint32_t>(rng.Next());
}

uint64_t F64Operand(Rng& rng) {
  const unsigned k = static_cast<unsigned>(rng.Below(10));
  if (k < 5) return kF64Special[rng.Below(sizeof kF64Special / sizeof kF64Special[0])];
  const uint64_t sign = rng.Below(2) << 63;
  const uint64_t mant = rng.Next() & 0xfffffffffffffull;
  if (k < 7) {
    static const uint64_t kExp[] = {0, 1, 2, 0x36a, 0x380, 0x381, 0x3fe, 0x3ff, 0x400,
                                    0x41e, 0x43e, 0x47e, 0x47f, 0x7fd, 0x7fe, 0x7ff};
    return sign | kExp[rng.Below(sizeof kExp / sizeof kExp[0])] << 52 | mant;
  }
  if (k < 9) return sign | (rng.Below(60) + 0x3e0) << 52 | mant;
  return rng.Next();
}

namespace {

struct F80 {
  uint64_t mant;
  uint16_t se;
};

// Special extended-precision values, including the encodings the 387 and later no longer
// support (pseudo-NaN, pseudo-infinity, unnormal: invalid operands) and pseudo-denormals.
F80 F80Operand(Rng& rng) {
  static const F80 kSpecial[] = {
      {0, 0},                              {0, 0x8000},                          // +-0
      {0x8000000000000000ull, 0x7fff},     {0x8000000000000000ull, 0xffff},      // +-inf
      {0xc000000000000000ull, 0xffff},     {0xc000000000000001ull, 0x7fff},      // QNaNs
      {0x8000000000000001ull, 0x7fff},     {0xbfffffffffffffffull, 0xffff},      // SNaNs
      {0x0000000000000001ull, 0},          {0x7fffffffffffffffull, 0x8000},      // denormals
      {0x8000000000000000ull, 0},          {0xffffffffffffffffull, 0x8000},      // pseudo-denormals
      {0x8000000000000000ull, 1},          {0xffffffffffffffffull, 0x7ffe},      // min/max normal
      {0x4000000000000000ull, 0x3fff},     {0x0000000000000000ull, 0x7fff},      // unnormal, pseudo-inf
      {0x4000000000000000ull, 0x7fff},     {0x0000000000000001ull, 0x4000},      // pseudo-NaN, unnormal
      {0x8000000000000000ull, 0x3fff},     {0x8000000000000000ull, 0xbfff},      // +-1
      {0xc000000000000000ull, 0x3fff},     {0xa000000000000000ull, 0x4000},      // 1.5, 2.5
      {0x8000000000000000ull, 0x401e},     {0x8000000000000000ull, 0xc01e},      // +-2^31
      {0xffffffffffffffffull, 0x401d},     {0x8000000000000000ull, 0x403e},      // ~2^31, 2^63
      {0x8000000000000000ull, 0xc03e},     {0xffffffffffffffffull, 0x403d},      // -2^63, ~2^63
      {0x8000000000000000ull, 0x400e},     {0xffff000000000000ull, 0x400d},      // 2^15, ~2^15
      {0xde0b6b3a763fffffull, 0x4037},     {0xde0b6b3a76400000ull, 0x4037},      // ~10^18
      {0xc90fdaa22168c235ull, 0x4000},     {0xc90fdaa22168c235ull, 0x403e},      // pi, pi*2^62
      {0x8000000000000000ull, 0x43ff},     {0x8000000000000000ull, 0x3c01},      // huge/tiny for scale
  };
  const unsigned k = static_cast<unsigned>(rng.Below(10));
  if (k < 4) return kSpecial[rng.Below(sizeof kSpecial / sizeof kSpecial[0])];
  const uint16_t sign = static_cast<uint16_t>(rng.Below(2) << 15);
  const uint64_t mant = rng.Next() | 0x8000000000000000ull;
  if (k < 6) {
    static const uint16_t kExp[] = {1, 2, 0x3f80, 0x3c00, 0x3ffe, 0x3fff, 0x4000, 0x401e,
                                    0x403e, 0x407f, 0x43fe, 0x7ffd, 0x7ffe};
    return {mant, static_cast<uint16_t>(sign | kExp[rng.Below(sizeof kExp / sizeof kExp[0])])};
  }
  if (k < 8) return {mant, static_cast<uint16_t>(sign | (0x3fff - 30 + rng.Below(70)))};
  if (k < 9) {  // exactly representable small integers and halves: FRNDINT, FIST ties
    const uint64_t v = rng.Below(1 << 12) + 1;
    const int lz = __builtin_clzll(v);
    return {v << lz, static_cast<uint16_t>(sign | (0x3fff + 62 - lz))};
  }
  return {rng.Next(), static_cast<uint16_t>(rng.Next())};
}

uint64_t IntOperand(Rng& rng) {
  switch (rng.Below(4)) {
    case 0: return EdgeValue(rng, 8);
    case 1: {  // lanes of edge values of one width
      const unsigned w = 1u << rng.Below(4);
      uint64_t v = 0;
      for (unsigned i = 0; i < 8; i += w) v |= (EdgeValue(rng, w) & (w == 8 ? ~0ull : (1ull << (8 * w)) - 1)) << (8 * i);
      return v;
    }
    case 2: return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(EdgeValue(rng, 4))));
    default: return rng.Next();
  }
}

// 8 bytes of the domain (two lanes for 32-bit floats).
uint64_t Qword(Rng& rng, Dom d) {
  switch (d) {
    case kF32: return F32Operand(rng) | uint64_t{F32Operand(rng)} << 32;
    case kF64: return F64Operand(rng);
    case kInt: return IntOperand(rng);
    default: return rng.Next();
  }
}

Dom Near(Rng& rng, Dom d) {
  // Mostly the form's domain; sometimes another, so conversions and moves see everything.
  if (rng.Chance(75)) return d == kBits ? static_cast<Dom>(rng.Below(4)) : d;
  return static_cast<Dom>(rng.Below(4));
}

void Put(std::vector<uint8_t>& d, size_t off, const void* p, size_t n) {
  std::memcpy(&d[off], p, n);
}

const int kGprChoices[] = {0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};  // no RSP, no R15

struct Emitter {
  Rng& rng;
  DiffCase* c;
  std::vector<uint8_t>& code;
  // Each instruction of a case has its own slice of the operand area, so that a store
  // (FNSTSW, MOVAPS...) never feeds a later load of the case: a Unicorn deviation in the
  // stored value would otherwise spread to registers the classification cannot follow.
  uint32_t region = 0;
  static constexpr uint32_t kRegion = kFpOperandArea / 3 / 16 * 16;

  // [r15 + disp32] or a register in rm (rm_reg >= 0).
  void Insn(const Form& f, bool w, int reg, int rm_reg, uint32_t disp, int imm) {
    if (f.pfx) code.push_back(f.pfx);
    const uint8_t rex = static_cast<uint8_t>(0x40 | (w ? 8 : 0) | (reg >= 8 ? 4 : 0) |
                                             (rm_reg < 0 || rm_reg >= 8 ? 1 : 0));
    if (rex != 0x40) code.push_back(rex);
    for (unsigned i = 0; i < f.nop; ++i) code.push_back(f.op[i]);
    if (rm_reg < 0) {
      code.push_back(static_cast<uint8_t>(0x80 | (reg & 7) << 3 | 7));
      for (int i = 0; i < 4; ++i) code.push_back(static_cast<uint8_t>(disp >> (8 * i)));
    } else {
      code.push_back(static_cast<uint8_t>(0xc0 | (reg & 7) << 3 | (rm_reg & 7)));
    }
    if (imm >= 0) code.push_back(static_cast<uint8_t>(imm));
  }

  // A memory operand of n bytes in the operand area, filled with a value of domain d.
  uint32_t MemOperand(unsigned n, bool aligned, Dom d) {
    if (n > 16) {  // FLDENV/FRSTOR images
      const uint32_t off = region + static_cast<uint32_t>(rng.Below((kRegion - n) / 4)) * 4;
      uint16_t fcw = 0x037f;
      if (rng.Chance(40)) fcw = static_cast<uint16_t>(rng.Next());
      const uint16_t fsw = static_cast<uint16_t>(rng.Next());
      uint16_t ftw = static_cast<uint16_t>(rng.Next());
      if (rng.Chance(30)) ftw = 0;       // all valid
      if (rng.Chance(20)) ftw = 0xffff;  // all empty
      Put(c->data, off, &fcw, 2);
      Put(c->data, off + 4, &fsw, 2);
      Put(c->data, off + 8, &ftw, 2);
      for (unsigned i = 0; d == kSave && i < 8; ++i) {
        const F80 v = F80Operand(rng);
        Put(c->data, off + 28 + 10 * i, &v.mant, 8);
        Put(c->data, off + 36 + 10 * i, &v.se, 2);
      }
      return off;
    }
    uint32_t off;
    if (n == 16 && aligned && !rng.Chance(4)) {
      off = static_cast<uint32_t>(rng.Below(kRegion / 16)) * 16;
    } else if (rng.Chance(70) && n > 0) {
      off = static_cast<uint32_t>(rng.Below(kRegion / n)) * n;
    } else {
      off = static_cast<uint32_t>(rng.Below(kRegion - 16));
    }
    off += region;
    if (d == kF80 && n == 10) {
      const F80 v = F80Operand(rng);
      Put(c->data, off, &v.mant, 8);
      Put(c->data, off + 8, &v.se, 2);
      return off;
    }
    if (d == kBcd) {  // 18 BCD digits and a sign byte; sometimes invalid digits
      uint8_t b[10];
      for (int i = 0; i < 9; ++i) {
        b[i] = static_cast<uint8_t>(rng.Below(10) | rng.Below(10) << 4);
        if (rng.Chance(3)) b[i] = static_cast<uint8_t>(rng.Next());
      }
      if (rng.Chance(30)) std::memset(b + rng.Below(9), 0, 1);
      b[9] = static_cast<uint8_t>(rng.Chance(50) ? 0x80 : 0);
      if (rng.Chance(5)) b[9] = static_cast<uint8_t>(rng.Next());
      Put(c->data, off, b, 10);
      return off;
    }
    for (unsigned i = 0; i < n; i += 8) {
      const uint64_t q = Qword(rng, Near(rng, d));
      Put(c->data, off + i, &q, n - i < 8 ? n - i : 8);
    }
    return off;
  }
};

// FSW condition codes an x87 form leaves undefined (SDM Vol. 2, "FPU Flags Affected" of
// each instruction): C0 C2 C3 for loads, stores, arithmetic, FXCH, FCMOVcc, FINCSTP/FDECSTP;
// all four for FFREE and FNOP. Plus C1 of FCOMI/FUCOMI(P): the SDM says "set to 0" but a
// Xeon leaves it unchanged when there is no stack underflow (vmrr follows the SDM).
uint16_t UndefinedCc(const Form& f) {
  const bool x87 = f.pfx == 0 && f.op[0] >= 0xd8 && f.op[0] <= 0xdf;
  if (!x87) return 0;
  const std::string n = f.name;
  auto starts = [&](const char* p) { return n.rfind(p, 0) == 0; };
  if (starts("ffree") || starts("fnop")) return 0x4700;
  if (starts("fcomi") || starts("fucomi")) return 0x0200;
  if (starts("fcom") || starts("fucom") || starts("ficom") || starts("ftst") || starts("fxam") ||
      starts("fprem") || starts("fldenv") || starts("frstor") || starts("fn") ||
      starts("fldcw") || starts("fwait")) {
    return 0;
  }
  return 0x4500;
}

}  // namespace

unsigned FpFormCount() { return static_cast<unsigned>(Forms().size()); }
const char* FpFormName(unsigned index) {
  return index < Forms().size() ? Forms()[index].name : "?";
}

void GenerateFp(Rng& rng, DiffCase* c, unsigned* first_form) {
  *c = DiffCase{};
  c->mode = FlatMode::kLong64;
  c->data.resize(kDataSize);
  c->stack.resize(kStackSize);
  for (auto& b : c->stack) b = static_cast<uint8_t>(rng.Next());
  for (auto& b : c->data) b = static_cast<uint8_t>(rng.Next());
  for (unsigned off = 0; off < kFpOperandArea; off += 8) {
    const uint64_t q = Qword(rng, static_cast<Dom>(rng.Below(4)));
    Put(c->data, off, &q, 8);
  }
  for (int i = 0; i < 16; ++i) c->gpr[i] = IntOperand(rng);
  c->gpr[kRsp] = kStackTop;
  c->gpr[15] = kDataBase;
  c->rflags = 2 | (rng.Next() & 0x8d5);
  c->fx_in = kFxIn;
  c->fx_out = kFxOut;

  const std::vector<Form>& forms = Forms();
  unsigned items = 1 + static_cast<unsigned>(rng.Below(3));
  std::vector<unsigned> chosen;
  Dom dom = kBits;
  for (unsigned i = 0; i < items; ++i) {
    chosen.push_back(static_cast<unsigned>(rng.Below(forms.size())));
    if (i == 0) dom = forms[chosen[0]].dom;
  }
  // RCP/RSQRT: approximations (see DiffCase::approx_xmm); alone in their case.
  if (std::string(forms[chosen[0]].name).rfind("r", 0) == 0) {
    chosen.resize(1);
    items = 1;
  }
  for (size_t i = 1; i < chosen.size(); ++i) {
    while (std::string(forms[chosen[i]].name).rfind("r", 0) == 0) {
      chosen[i] = static_cast<unsigned>(rng.Below(forms.size()));
    }
  }
  if (first_form) *first_form = chosen[0];

  // The FXRSTOR image.
  std::vector<uint8_t>& d = c->data;
  uint8_t* img = &d[kFxIn];
  std::memset(img, 0, 416);
  uint16_t fcw = 0x037f;
  if (rng.Chance(30)) fcw = static_cast<uint16_t>((rng.Next() & 0x0f3f) | 0x0040);
  if (rng.Chance(3)) fcw = static_cast<uint16_t>(rng.Next());
  uint16_t fsw = static_cast<uint16_t>((rng.Below(8) << 11) | (rng.Next() & 0x4700));
  if (rng.Chance(40)) fsw = static_cast<uint16_t>(fsw | (rng.Next() & 0x7f));  // flags and SF
  if ((fsw & 0x3f & ~fcw) != 0) fsw |= 0x8080;  // ES and B: an unmasked exception is pending
  if (rng.Chance(3)) fsw = static_cast<uint16_t>(rng.Next());  // inconsistent: as FXRSTOR allows
  const uint8_t ftw = static_cast<uint8_t>(rng.Chance(30) ? 0 : rng.Next());
  uint32_t mxcsr = 0x1f80 | static_cast<uint32_t>(rng.Below(4)) << 13;
  if (rng.Chance(30)) mxcsr |= static_cast<uint32_t>(rng.Next() & 0x3f);  // sticky flags
  if (rng.Chance(20)) mxcsr |= static_cast<uint32_t>(rng.Next() & 0x8040);  // FTZ, DAZ
  if (rng.Chance(15)) mxcsr &= ~static_cast<uint32_t>(rng.Next() & 0x1f80);  // unmask some
  bool daz_ftz = (mxcsr & 0x8040) != 0;
  std::memcpy(img + 0, &fcw, 2);
  std::memcpy(img + 2, &fsw, 2);
  img[4] = ftw;
  std::memcpy(img + 24, &mxcsr, 4);
  const uint32_t mxcsr_mask = static_cast<uint32_t>(rng.Next());
  std::memcpy(img + 28, &mxcsr_mask, 4);
  bool x87 = false;
  for (unsigned k : chosen) {
    const Dom fd = forms[k].dom;
    if (fd == kF80 || fd == kBcd || fd == kEnv || fd == kSave ||
        (forms[k].pfx == 0 && forms[k].op[0] >= 0xd8 && forms[k].op[0] <= 0xdf)) {
      x87 = true;
    }
  }
  if (x87) {
    // Mostly every register valid, sometimes a random tag set (stack overflow/underflow);
    // exceptions mostly masked; random precision and rounding control.
    img[4] = rng.Chance(60) ? 0xff : static_cast<uint8_t>(rng.Next());
    if (rng.Chance(70)) {
      fcw = static_cast<uint16_t>(0x007f | (rng.Next() & 0x0f00));
      if (rng.Chance(15)) fcw = static_cast<uint16_t>(fcw & ~(rng.Next() & 0x3f));
      std::memcpy(img, &fcw, 2);
    }
  }
  for (int i = 0; i < 8; ++i) {
    uint64_t mant = IntOperand(rng);
    uint16_t se = rng.Chance(50) ? 0xffff : static_cast<uint16_t>(rng.Next());
    if (x87 && rng.Chance(90)) {
      const F80 v = F80Operand(rng);
      mant = v.mant;
      se = v.se;
    }
    std::memcpy(img + 32 + 16 * i, &mant, 8);
    std::memcpy(img + 40 + 16 * i, &se, 2);
  }
  for (int i = 0; i < 16; ++i) {
    const Dom rd = Near(rng, dom);
    const uint64_t lo = Qword(rng, rd), hi = Qword(rng, rd);
    std::memcpy(img + 160 + 16 * i, &lo, 8);
    std::memcpy(img + 168 + 16 * i, &hi, 8);
  }

  std::vector<uint8_t>& code = c->code;
  // fxrstor64 [r15 + kFxIn]
  for (uint8_t b : {0x49, 0x0f, 0xae, 0x8f}) code.push_back(b);
  for (int i = 0; i < 4; ++i) code.push_back(static_cast<uint8_t>(kFxIn >> (8 * i)));
  Emitter e{rng, c, code};
  std::string origin = "fp:";
  int last_xmm = -1, last_mm = -1;
  for (unsigned i = 0; i < items; ++i) {
    const Form& f = forms[chosen[i]];
    e.region = i * Emitter::kRegion;
    if (i) origin += "+";
    origin += f.name;
    c->fsw_ignore = static_cast<uint16_t>(c->fsw_ignore | UndefinedCc(f));
    // Chains: the next instruction often reads the previous one's destination.
    const int xd = last_xmm >= 0 && rng.Chance(50) ? last_xmm : static_cast<int>(rng.Below(16));
    const int xs = rng.Chance(15) ? xd : static_cast<int>(rng.Below(16));
    const int md = last_mm >= 0 && rng.Chance(50) ? last_mm : static_cast<int>(rng.Below(8));
    const int ms = rng.Chance(15) ? md : static_cast<int>(rng.Below(8));
    if (std::string(f.name).rfind("r", 0) == 0) {  // rcpps rcpss rsqrtps rsqrtss
      c->approx_xmm = xd;
      c->approx_lanes = f.pfx == 0xf3 ? 1 : 0xf;
      c->approx_rsqrt = f.op[1] == 0x52;
    }
    const int g = kGprChoices[rng.Below(sizeof kGprChoices / sizeof kGprChoices[0])];
    const bool mem = rng.Chance(35);
    const bool w = rng.Chance(50);
    const unsigned gsize = w ? 8 : 4;
    int imm = -1;
    if (f.kind == kXmmRmImm) {
      imm = static_cast<int>(rng.Chance(70) && f.op[1] == 0xc2 ? rng.Below(8) : rng.Below(256));
    }
    switch (f.kind) {
      case kXmmRm:
      case kXmmRmImm:
        if (mem) e.Insn(f, false, xd, -1, e.MemOperand(f.msize, f.aligned, f.dom), imm);
        else e.Insn(f, false, xd, xs, 0, imm);
        last_xmm = xd;
        break;
      case kXmmGpr:
        if (mem) e.Insn(f, w, xd, -1, e.MemOperand(gsize, false, kInt), -1);
        else e.Insn(f, w, xd, g, 0, -1);
        last_xmm = xd;
        break;
      case kGprXmm:
        if (mem) e.Insn(f, w, g, -1, e.MemOperand(f.msize, false, f.dom), -1);
        else e.Insn(f, w, g, xs, 0, -1);
        break;
      case kGprXmmReg: e.Insn(f, false, g, xs, 0, -1); break;
      case kRmXmm:
        if (mem) e.Insn(f, false, xs, -1, e.MemOperand(f.msize, f.aligned, kBits), -1);
        else e.Insn(f, false, xs, xd, 0, -1);
        last_xmm = mem ? last_xmm : xd;
        break;
      case kRmXmmGpr:
        if (mem) e.Insn(f, w, xs, -1, e.MemOperand(gsize, false, kBits), -1);
        else e.Insn(f, w, xs, g, 0, -1);
        break;
      case kMmRm:
        if (mem) e.Insn(f, false, md, -1, e.MemOperand(f.msize, false, kInt), -1);
        else e.Insn(f, false, md, ms, 0, -1);
        last_mm = md;
        break;
      case kMmGpr:
        if (mem) e.Insn(f, w, md, -1, e.MemOperand(gsize, false, kInt), -1);
        else e.Insn(f, w, md, g, 0, -1);
        last_mm = md;
        break;
      case kRmMm:
        if (mem) e.Insn(f, false, ms, -1, e.MemOperand(8, false, kBits), -1);
        else e.Insn(f, false, ms, md, 0, -1);
        last_mm = mem ? last_mm : md;
        break;
      case kRmMmGpr:
        if (mem) e.Insn(f, w, ms, -1, e.MemOperand(gsize, false, kBits), -1);
        else e.Insn(f, w, ms, g, 0, -1);
        break;
      case kGprMmReg: e.Insn(f, false, g, ms, 0, -1); break;
      case kMemOnly: {
        const uint32_t off = e.MemOperand(f.msize, false, f.dom);
        if (f.digit == 2) {  // LDMXCSR: a valid MXCSR mostly, reserved bits (#GP) sometimes
          uint32_t v = static_cast<uint32_t>(rng.Next() & 0xffff);
          if (rng.Chance(60)) v = 0x1f80 | (v & 0x6000) | (rng.Chance(30) ? v & 0x803f : 0);
          if (rng.Chance(5)) v = static_cast<uint32_t>(rng.Next());
          if (v & 0x8040) daz_ftz = true;
          Put(d, off, &v, 4);
        } else if (f.digit == 5) {  // FLDCW
          uint16_t v = static_cast<uint16_t>(rng.Next());
          if (rng.Chance(60)) {
            v = 0x037f;
            if (rng.Chance(30)) v = static_cast<uint16_t>(v & ~(rng.Next() & 0x3f));  // unmask
          }
          Put(d, off, &v, 2);
        }
        e.Insn(f, false, f.digit, -1, off, -1);
        break;
      }
      case kFixed:
        for (unsigned k = 0; k < f.nop; ++k) code.push_back(f.op[k]);
        break;
      case kX87Reg:
        code.push_back(f.op[0]);
        code.push_back(static_cast<uint8_t>(f.op[1] + rng.Below(8)));
        break;
      case kXmmMem:
        e.Insn(f, false, xd, -1, e.MemOperand(f.msize, f.aligned, f.dom), -1);
        last_xmm = xd;
        break;
      case kMemXmm:
        e.Insn(f, false, xs, -1, e.MemOperand(f.msize, f.aligned, kBits), -1);
        break;
      case kMemMm:
        e.Insn(f, false, ms, -1, e.MemOperand(8, false, kBits), -1);
        break;
      case kMemGpr:
        e.Insn(f, w, g, -1, e.MemOperand(gsize, false, kBits), -1);
        break;
      case kXmmMm:
        if (mem) e.Insn(f, false, xd, -1, e.MemOperand(8, false, kInt), -1);
        else e.Insn(f, false, xd, ms, 0, -1);
        last_xmm = xd;
        break;
      case kMmXmm:
        if (mem) e.Insn(f, false, md, -1, e.MemOperand(f.msize, f.aligned, f.dom), -1);
        else e.Insn(f, false, md, xs, 0, -1);
        last_mm = md;
        break;
      case kXmmMmReg: e.Insn(f, false, xd, ms, 0, -1); last_xmm = xd; break;
      case kMmXmmReg: e.Insn(f, false, md, xs, 0, -1); last_mm = md; break;
      case kShiftImm: {
        // Counts around the lane widths mostly, any byte sometimes.
        const int cnt = static_cast<int>(rng.Chance(70) ? rng.Below(18) : rng.Chance(50) ? 28 + rng.Below(40) : rng.Below(256));
        if (f.pfx == 0x66) {
          e.Insn(f, false, f.digit, xd, 0, cnt);
          last_xmm = xd;
        } else {
          e.Insn(f, false, f.digit, md, 0, cnt);
          last_mm = md;
        }
        break;
      }
      case kGprXmmImm: e.Insn(f, false, g, xs, 0, static_cast<int>(rng.Below(256))); break;
      case kGprMmImm: e.Insn(f, false, g, ms, 0, static_cast<int>(rng.Below(256))); break;
      case kXmmGprImm:
        if (mem) e.Insn(f, false, xd, -1, e.MemOperand(2, false, kInt), static_cast<int>(rng.Below(256)));
        else e.Insn(f, false, xd, g, 0, static_cast<int>(rng.Below(256)));
        last_xmm = xd;
        break;
      case kMmGprImm:
        if (mem) e.Insn(f, false, md, -1, e.MemOperand(2, false, kInt), static_cast<int>(rng.Below(256)));
        else e.Insn(f, false, md, g, 0, static_cast<int>(rng.Below(256)));
        last_mm = md;
        break;
      case kMmRmImm:
        if (mem) e.Insn(f, false, md, -1, e.MemOperand(8, false, kInt), static_cast<int>(rng.Below(256)));
        else e.Insn(f, false, md, ms, 0, static_cast<int>(rng.Below(256)));
        last_mm = md;
        break;
    }
  }
  // fxsave64 [r15 + kFxOut]
  for (uint8_t b : {0x49, 0x0f, 0xae, 0x87}) code.push_back(b);
  for (int i = 0; i < 4; ++i) code.push_back(static_cast<uint8_t>(kFxOut >> (8 * i)));
  // Marks the cases that run with DAZ or FTZ (see UnicornDeviation in cpu_diff_test.cc).
  c->origin = origin + (daz_ftz ? " [daz/ftz]" : "");
}

}  // namespace vmrr::testing
