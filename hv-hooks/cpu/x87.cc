// The x87 instruction set (issue 11, FPU_NOTES.md "Branch x87"): the register stack (TOP,
// abridged tags, overflow/underflow), loads and stores in every format (real 32/64/80, integer
// 16/32/64, packed BCD, constants), arithmetic, compares and classification, the stack and
// flag side of the transcendentals (their values come from x87_math.cc), the environment
// instructions (FNSTENV/FLDENV/FNSAVE/FRSTOR in their 16/32-bit, real/protected layouts), and
// the instruction/data pointers and opcode. The control instructions FNINIT, FNCLEX, FLDCW,
// FNSTCW, FNSTSW, FWAIT and FXSAVE/FXRSTOR are in fpu.cc.
//
// One handler (OpX87) serves every x87 mnemonic: decode.cc puts the 11-bit FOP (low 3 bits of
// the D8-DF escape, then the ModR/M byte) in Op::aux, and the handler decodes it as the
// hardware does (SDM Vol. 2 Table A-7..A-22).
//
// Determinism: values are classified in software first (SDM Vol. 1 8.2.2, Table 8-3:
// pseudo-NaNs, pseudo-infinities and unnormals are unsupported and raise IE, whatever the
// host would do; pseudo-denormals are accepted as denormals), stack faults are decided in
// software, and only the basic IEEE operations (add, sub, mul, div, sqrt, round to integer,
// scale, extract, partial remainder, conversions between the x87 formats and to integers) run
// on the host x87, on 80-bit values in memory (fld tbyte / op / fstp tbyte), under a host
// control word built from the guest's precision and rounding control. The host computes with
// IE/DE/ZE/PE masked; OE/UE take the guest's masks so that an unmasked overflow or underflow
// with a register destination leaves the exponent-adjusted result (bias 24576) the SDM
// specifies; the host's flags are read with FNSTSW and cleared with FNCLEX before anything
// could trap on the host. Condition codes the SDM leaves undefined are left unchanged.
#include <Zydis/Zydis.h>

#include <cstring>

#include "hv-hooks/cpu/core.h"
#include "hv-hooks/cpu/x87_math.h"

namespace vmrr {
namespace {

constexpr uint16_t kIe = 1, kDe = 2, kZe = 4, kOe = 8, kUe = 0x10, kPe = 0x20, kSf = 0x40,
                   kEs = 0x80, kC0 = 0x100, kC1 = 0x200, kC2 = 0x400, kC3 = 0x4000,
                   kBusy = 0x8000;
constexpr uint16_t kPre = kIe | kDe | kZe;  // exceptions detected before the operation
constexpr X87Reg kIndefinite{0xc000000000000000ull, 0xffff};
constexpr X87Reg kPlusZero{0, 0};

// ---- the stack -----------------------------------------------------------------------------

unsigned Top(const CpuState& s) { return (s.fsw >> 11) & 7; }
void SetTop(CpuState& s, unsigned t) {
  s.fsw = static_cast<uint16_t>((s.fsw & ~(7u << 11)) | ((t & 7) << 11));
}
unsigned Phys(const CpuState& s, unsigned i) { return (Top(s) + i) & 7; }
bool Empty(const CpuState& s, unsigned i) { return !((s.ftw >> Phys(s, i)) & 1); }
X87Reg& St(CpuState& s, unsigned i) { return s.st[Phys(s, i)]; }
void SetSt(CpuState& s, unsigned i, X87Reg v) {
  const unsigned p = Phys(s, i);
  s.st[p] = v;
  s.ftw = static_cast<uint8_t>(s.ftw | (1u << p));
}
void Pop(CpuState& s) {
  s.ftw = static_cast<uint8_t>(s.ftw & ~(1u << Top(s)));
  SetTop(s, Top(s) + 1);
}
void PushValue(CpuState& s, X87Reg v) {
  SetTop(s, Top(s) - 1);
  SetSt(s, 0, v);
}

void SetC1(CpuState& s, bool v) { s.fsw = static_cast<uint16_t>(v ? s.fsw | kC1 : s.fsw & ~kC1); }
void SetCc(CpuState& s, uint16_t cc) {  // C0 C2 C3 (C1 separately)
  s.fsw = static_cast<uint16_t>((s.fsw & ~(kC0 | kC2 | kC3)) | (cc & (kC0 | kC2 | kC3)));
}

// ES and B follow the flags and masks (an unmasked flagged exception is pending).
void UpdateEs(CpuState& s) {
  const bool es = (s.fsw & ~s.fcw & 0x3f) != 0;
  s.fsw = static_cast<uint16_t>(es ? s.fsw | kEs | kBusy : s.fsw & ~(kEs | kBusy));
}
void Flag(CpuState& s, uint16_t ex) {
  s.fsw = static_cast<uint16_t>(s.fsw | (ex & 0x3f));
  UpdateEs(s);
}
bool Masked(const CpuState& s, uint16_t ex) { return (s.fcw & ex) == ex; }

// Stack underflow / overflow (SDM Vol. 1 8.5.1.1): IE and SF, C1 = 0 / 1. true = masked (the
// caller then stores the QNaN indefinite where the result would go).
bool StackUnderflow(CpuState& s) {
  SetC1(s, false);
  s.fsw |= kSf;
  Flag(s, kIe);
  return Masked(s, kIe);
}
bool StackOverflow(CpuState& s) {
  SetC1(s, true);
  s.fsw |= kSf;
  Flag(s, kIe);
  return Masked(s, kIe);
}
// Checks that a push has room. false: overflow handled (masked: the indefinite was pushed).
bool CanPush(CpuState& s) {
  if (Empty(s, 7)) return true;
  if (StackOverflow(s)) PushValue(s, kIndefinite);
  return false;
}
void PushChecked(CpuState& s, X87Reg v) {
  if (!CanPush(s)) return;
  PushValue(s, v);
  SetC1(s, false);
}

// ---- classification (SDM Vol. 1 8.2.2, Table 8-3) ------------------------------------------

enum Cls { kZero, kDenormal, kNormal, kInf, kQnan, kSnan, kUnsupported };
Cls Classify(const X87Reg& r) {
  const unsigned e = r.sign_exp & 0x7fff;
  const bool j = r.mant >> 63;
  if (e == 0) return r.mant == 0 ? kZero : kDenormal;  // pseudo-denormals (J=1) included
  if (!j) return kUnsupported;                         // unnormal, pseudo-NaN, pseudo-inf
  if (e == 0x7fff) {
    if ((r.mant << 1) == 0) return kInf;
    return (r.mant >> 62) & 1 ? kQnan : kSnan;
  }
  return kNormal;
}
bool IsNan(Cls k) { return k == kQnan || k == kSnan; }
bool Negative(const X87Reg& r) { return r.sign_exp >> 15; }

// ---- the host x87 --------------------------------------------------------------------------

// The host control word: the guest's PC and RC, reserved bit 6, the given masks. The
// reserved precision control 01 is made explicit as 11 (64-bit significand, what Intel parts
// do with it), so the host's treatment of the reserved value never matters.
uint16_t HostCw(uint16_t guest, uint16_t masks) {
  uint16_t pc_rc = guest & 0x0f00;
  if ((pc_rc & 0x0300) == 0x0100) pc_rc |= 0x0300;
  return static_cast<uint16_t>(pc_rc | 0x40 | masks);
}
// For operations with a register destination: IE, DE, ZE, PE masked; OE, UE as the guest has
// them (the host then stores the exponent-adjusted result of an unmasked overflow/underflow).
uint16_t ArithCw(uint16_t guest) { return HostCw(guest, static_cast<uint16_t>(0x27 | (guest & 0x18))); }
uint16_t AllMaskedCw(uint16_t guest) { return HostCw(guest, 0x3f); }

constexpr uint16_t kHostSwMask = 0x3f | kC0 | kC1 | kC2 | kC3;

// a in host ST(0), b in ST(1); r = ST(0) after INSN.
#define VMRR_X87_BIN(NAME, INSN)                                                         \
  uint16_t NAME(const X87Reg& a, const X87Reg& b, uint16_t cw, X87Reg* r) {             \
    uint16_t saved = 0, sw = 0;                                                          \
    asm volatile("fnstcw %[saved]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\t" \
                 INSN "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\tfstp %%st(0)\n\t"     \
                 "fldcw %[saved]"                                                        \
                 : [r] "=m"(*r), [sw] "=m"(sw), [saved] "+m"(saved)                      \
                 : [a] "m"(a), [b] "m"(b), [cw] "m"(cw)                                  \
                 : "st", "st(1)");                                                       \
    return static_cast<uint16_t>(sw & kHostSwMask);                                      \
  }
VMRR_X87_BIN(HostFadd, "fadd %%st(1), %%st")
VMRR_X87_BIN(HostFmul, "fmul %%st(1), %%st")
VMRR_X87_BIN(HostFsub, "fsub %%st(1), %%st")
VMRR_X87_BIN(HostFsubr, "fsubr %%st(1), %%st")
VMRR_X87_BIN(HostFdiv, "fdiv %%st(1), %%st")
VMRR_X87_BIN(HostFdivr, "fdivr %%st(1), %%st")
VMRR_X87_BIN(HostFprem, "fprem")
VMRR_X87_BIN(HostFprem1, "fprem1")
VMRR_X87_BIN(HostFscale, "fscale")
#undef VMRR_X87_BIN

#define VMRR_X87_UN(NAME, INSN)                                                          \
  uint16_t NAME(const X87Reg& a, uint16_t cw, X87Reg* r) {                              \
    uint16_t saved = 0, sw = 0;                                                          \
    asm volatile("fnstcw %[saved]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[a]\n\t" INSN        \
                 "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\tfldcw %[saved]"            \
                 : [r] "=m"(*r), [sw] "=m"(sw), [saved] "+m"(saved)                      \
                 : [a] "m"(a), [cw] "m"(cw)                                              \
                 : "st");                                                                \
    return static_cast<uint16_t>(sw & kHostSwMask);                                      \
  }
VMRR_X87_UN(HostFsqrt, "fsqrt")
VMRR_X87_UN(HostFrndint, "frndint")
#undef VMRR_X87_UN

// FXTRACT: r0 = significand (ST(0)), r1 = exponent (ST(1)).
uint16_t HostFxtract(const X87Reg& a, uint16_t cw, X87Reg* r0, X87Reg* r1) {
  uint16_t saved = 0, sw = 0;
  asm volatile("fnstcw %[saved]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[a]\n\tfxtract\n\t"
               "fnstsw %[sw]\n\tfnclex\n\tfstpt %[r0]\n\tfstpt %[r1]\n\tfldcw %[saved]"
               : [r0] "=m"(*r0), [r1] "=m"(*r1), [sw] "=m"(sw), [saved] "+m"(saved)
               : [a] "m"(a), [cw] "m"(cw)
               : "st", "st(1)");
  return static_cast<uint16_t>(sw & kHostSwMask);
}

// Arithmetic with a real memory operand, as the host's own memory form (the conversion of
// the operand and the operation are one instruction there: which of DE, ZE and IE the
// hardware reports, and which NaN it returns, follow from that).
#define VMRR_X87_MEM(NAME, T, INSN)                                                      \
  uint16_t NAME(const X87Reg& a, const T& m, uint16_t cw, X87Reg* r) {                   \
    uint16_t saved = 0, sw = 0;                                                          \
    asm volatile("fnstcw %[saved]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[a]\n\t" INSN      \
                 " %[m]\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\tfldcw %[saved]"        \
                 : [r] "=m"(*r), [sw] "=m"(sw), [saved] "+m"(saved)                      \
                 : [a] "m"(a), [m] "m"(m), [cw] "m"(cw)                                  \
                 : "st");                                                                \
    return static_cast<uint16_t>(sw & kHostSwMask);                                      \
  }
VMRR_X87_MEM(HostFadds, uint32_t, "fadds") VMRR_X87_MEM(HostFmuls, uint32_t, "fmuls")
VMRR_X87_MEM(HostFsubs, uint32_t, "fsubs") VMRR_X87_MEM(HostFsubrs, uint32_t, "fsubrs")
VMRR_X87_MEM(HostFdivs, uint32_t, "fdivs") VMRR_X87_MEM(HostFdivrs, uint32_t, "fdivrs")
VMRR_X87_MEM(HostFaddl, uint64_t, "faddl") VMRR_X87_MEM(HostFmull, uint64_t, "fmull")
VMRR_X87_MEM(HostFsubl, uint64_t, "fsubl") VMRR_X87_MEM(HostFsubrl, uint64_t, "fsubrl")
VMRR_X87_MEM(HostFdivl, uint64_t, "fdivl") VMRR_X87_MEM(HostFdivrl, uint64_t, "fdivrl")
#undef VMRR_X87_MEM

// Stores from 80 bits to a narrower format (every exception masked on the host).
#define VMRR_X87_ST(NAME, T, INSN)                                                       \
  uint16_t NAME(const X87Reg& a, uint16_t cw, T* r) {                                    \
    uint16_t saved = 0, sw = 0;                                                          \
    asm volatile("fnstcw %[saved]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[a]\n\t" INSN        \
                 " %[r]\n\tfnstsw %[sw]\n\tfnclex\n\tfldcw %[saved]"                     \
                 : [r] "=m"(*r), [sw] "=m"(sw), [saved] "+m"(saved)                      \
                 : [a] "m"(a), [cw] "m"(cw)                                              \
                 : "st");                                                                \
    return static_cast<uint16_t>(sw & kHostSwMask);                                      \
  }
VMRR_X87_ST(HostToF32, uint32_t, "fstps")
VMRR_X87_ST(HostToF64, uint64_t, "fstpl")
VMRR_X87_ST(HostToI16, uint16_t, "fistps")
VMRR_X87_ST(HostToI32, uint32_t, "fistpl")
VMRR_X87_ST(HostToI64, uint64_t, "fistpll")
#undef VMRR_X87_ST

// Loads from a narrower real format (exact; IE for an SNaN, DE for a denormal).
#define VMRR_X87_LD(NAME, T, INSN)                                                       \
  uint16_t NAME(const T& a, X87Reg* r) {                                                 \
    uint16_t saved = 0, sw = 0;                                                          \
    const uint16_t cw = 0x37f;                                                           \
    asm volatile("fnstcw %[saved]\n\tfnclex\n\tfldcw %[cw]\n\t" INSN                     \
                 " %[a]\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\tfldcw %[saved]"       \
                 : [r] "=m"(*r), [sw] "=m"(sw), [saved] "+m"(saved)                      \
                 : [a] "m"(a), [cw] "m"(cw)                                              \
                 : "st");                                                                \
    return static_cast<uint16_t>(sw & (kIe | kDe));                                      \
  }
VMRR_X87_LD(HostFromF32, uint32_t, "flds")
VMRR_X87_LD(HostFromF64, uint64_t, "fldl")
#undef VMRR_X87_LD

// An integer as an 80-bit value (exact).
X87Reg FromInt(int64_t v) {
  if (v == 0) return kPlusZero;
  const bool neg = v < 0;
  uint64_t m = neg ? ~static_cast<uint64_t>(v) + 1 : static_cast<uint64_t>(v);
  const int lz = __builtin_clzll(m);
  m <<= lz;
  return X87Reg{m, static_cast<uint16_t>((neg ? 0x8000 : 0) | (0x3fff + 63 - lz))};
}

// ---- memory --------------------------------------------------------------------------------

const Operand* MemOperand(const Op& op) {
  for (unsigned i = 0; i < op.nops; ++i)
    if (op.o[i].kind == kOpMem) return &op.o[i];
  return nullptr;
}

bool MemRead(CpuCore& c, const Op& op, unsigned size, uint8_t* out) {
  const Operand* o = MemOperand(op);
  if (!o) {
    c.Ud();
    return false;
  }
  uint64_t lin;
  if (!c.Linear(o->seg, c.EffectiveAddress(op, *o), size, kRead, &lin)) return false;
  for (unsigned i = 0; i < size;) {
    const unsigned n = size - i >= 8 ? 8 : size - i >= 4 ? 4 : size - i >= 2 ? 2 : 1;
    uint64_t v;
    if (!c.ReadLin(lin + i, n, &v)) return false;
    std::memcpy(out + i, &v, n);
    i += n;
  }
  return true;
}

bool MemWrite(CpuCore& c, const Op& op, unsigned size, const uint8_t* in) {
  const Operand* o = MemOperand(op);
  if (!o) {
    c.Ud();
    return false;
  }
  const uint64_t off = c.EffectiveAddress(op, *o);
  uint64_t lin;
  if (!c.Linear(o->seg, off, size, kWrite, &lin) || !c.ProbeWrite(o->seg, off, size)) return false;
  for (unsigned i = 0; i < size;) {
    const unsigned n = size - i >= 8 ? 8 : size - i >= 4 ? 4 : size - i >= 2 ? 2 : 1;
    uint64_t v = 0;
    std::memcpy(&v, in + i, n);
    if (!c.WriteLin(lin + i, n, v)) return false;
    i += n;
  }
  return true;
}

template <typename T>
bool MemReadT(CpuCore& c, const Op& op, T* v) {
  uint8_t b[sizeof(T)];
  if (!MemRead(c, op, sizeof(T), b)) return false;
  std::memcpy(v, b, sizeof(T));
  return true;
}
template <typename T>
bool MemWriteT(CpuCore& c, const Op& op, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  return MemWrite(c, op, sizeof(T), b);
}

bool ReadM80(CpuCore& c, const Op& op, X87Reg* r) {
  uint8_t b[10];
  if (!MemRead(c, op, 10, b)) return false;
  std::memcpy(&r->mant, b, 8);
  std::memcpy(&r->sign_exp, b + 8, 2);
  return true;
}
bool WriteM80(CpuCore& c, const Op& op, const X87Reg& r) {
  uint8_t b[10];
  std::memcpy(b, &r.mant, 8);
  std::memcpy(b + 8, &r.sign_exp, 2);
  return MemWrite(c, op, 10, b);
}

// A real or integer memory operand of the arithmetic/compare groups as an 80-bit value:
// kind 0 m32real, 1 m32int, 2 m64real, 3 m16int (the escape byte's bits 1-2). *ex gets the
// conversion's IE/DE.
bool ReadArithOperand(CpuCore& c, const Op& op, unsigned kind, X87Reg* r, uint16_t* ex) {
  *ex = 0;
  switch (kind) {
    case 0: {
      uint32_t v;
      if (!MemReadT(c, op, &v)) return false;
      *ex = HostFromF32(v, r);
      return true;
    }
    case 1: {
      uint32_t v;
      if (!MemReadT(c, op, &v)) return false;
      *r = FromInt(static_cast<int32_t>(v));
      return true;
    }
    case 2: {
      uint64_t v;
      if (!MemReadT(c, op, &v)) return false;
      *ex = HostFromF64(v, r);
      return true;
    }
    default: {
      uint16_t v;
      if (!MemReadT(c, op, &v)) return false;
      *r = FromInt(static_cast<int16_t>(v));
      return true;
    }
  }
}

// ---- pointers (SDM Vol. 1 8.1.8, 8.1.9) -----------------------------------------------------
// Every non-control instruction records its address, CS, opcode and, with a memory operand,
// the operand's offset and segment selector. Register-only instructions leave FDP/FDS.
void RecordPointers(CpuCore& c, const Op& op) {
  CpuState& s = c.s;
  s.fip = c.long64() ? s.rip : s.rip & 0xffffffffu;
  s.fcs = s.seg[kCs].selector;
  s.fop = static_cast<uint16_t>(op.aux & 0x7ff);
  if (const Operand* o = MemOperand(op)) {
    s.fdp = c.EffectiveAddress(op, *o);
    s.fds = s.seg[o->seg].selector;
  }
}

// ---- committing results ----------------------------------------------------------------------

// Applies the flags of an operation with a register destination. false: an unmasked IE, DE
// or ZE occurred, and the destination (and the stack) must be left unchanged.
bool CommitArith(CpuState& s, uint16_t sw) {
  const uint16_t ex = sw & 0x3f;
  const uint16_t unmasked = ex & ~s.fcw & 0x3f;
  if (unmasked & kPre) {
    Flag(s, ex & kPre);
    return false;
  }
  SetC1(s, sw & kC1);
  Flag(s, ex);
  return true;
}

// Writes v to ST(i) after CommitArith accepted it, then pops if asked.
void WriteResult(CpuState& s, unsigned i, const X87Reg& v, bool pop) {
  SetSt(s, i, v);
  if (pop) Pop(s);
}

enum Arith { kAdd = 0, kMul = 1, kSub = 4, kSubr = 5, kDiv = 6, kDivr = 7 };

// d op src with d the destination operand (dst register's value), as the x87 does it.
uint16_t HostArith(unsigned kind, const X87Reg& d, const X87Reg& src, uint16_t cw, X87Reg* r) {
  switch (kind) {
    case kAdd: return HostFadd(d, src, cw, r);
    case kMul: return HostFmul(d, src, cw, r);
    case kSub: return HostFsub(d, src, cw, r);
    case kSubr: return HostFsubr(d, src, cw, r);
    case kDiv: return HostFdiv(d, src, cw, r);
    default: return HostFdivr(d, src, cw, r);
  }
}

// An arithmetic operation: ST(dst) = ST(dst) op src (pre: flags of the source's conversion).
void DoArith(CpuState& s, unsigned kind, unsigned dst, const X87Reg& src, uint16_t pre,
             bool pop) {
  const X87Reg d = St(s, dst);
  X87Reg r;
  uint16_t sw;
  if (Classify(d) == kUnsupported || Classify(src) == kUnsupported) {
    r = kIndefinite;
    sw = kIe;
  } else {
    sw = static_cast<uint16_t>(HostArith(kind, d, src, ArithCw(s.fcw), &r) | pre);
  }
  if (CommitArith(s, sw)) WriteResult(s, dst, r, pop);
}

// ST(0) = ST(0) op m32real/m64real through the host's memory form.
void DoArithReal(CpuCore& c, const Op& op, unsigned kind, bool m64) {
  CpuState& s = c.s;
  const X87Reg d = St(s, 0);
  X87Reg r;
  uint16_t sw;
  const uint16_t cw = ArithCw(s.fcw);
  uint32_t f = 0;
  uint64_t q = 0;
  if (m64 ? !MemReadT(c, op, &q) : !MemReadT(c, op, &f)) return;
  if (Classify(d) == kUnsupported) {
    r = kIndefinite;
    sw = kIe;
  } else if (m64) {
    switch (kind) {
      case kAdd: sw = HostFaddl(d, q, cw, &r); break;
      case kMul: sw = HostFmull(d, q, cw, &r); break;
      case kSub: sw = HostFsubl(d, q, cw, &r); break;
      case kSubr: sw = HostFsubrl(d, q, cw, &r); break;
      case kDiv: sw = HostFdivl(d, q, cw, &r); break;
      default: sw = HostFdivrl(d, q, cw, &r); break;
    }
  } else {
    switch (kind) {
      case kAdd: sw = HostFadds(d, f, cw, &r); break;
      case kMul: sw = HostFmuls(d, f, cw, &r); break;
      case kSub: sw = HostFsubs(d, f, cw, &r); break;
      case kSubr: sw = HostFsubrs(d, f, cw, &r); break;
      case kDiv: sw = HostFdivs(d, f, cw, &r); break;
      default: sw = HostFdivrs(d, f, cw, &r); break;
    }
  }
  if (CommitArith(s, sw)) SetSt(s, 0, r);
}

// ---- compares --------------------------------------------------------------------------------

enum Order { kGreater, kLess, kEqual, kUnordered };
// Compares a with b. quiet: QNaN operands do not raise IE (FUCOM*). *ex: IE or DE.
Order Compare(const X87Reg& a, const X87Reg& b, bool quiet, uint16_t* ex) {
  const Cls ka = Classify(a), kb = Classify(b);
  *ex = 0;
  if (ka == kUnsupported || kb == kUnsupported || ka == kSnan || kb == kSnan) {
    *ex = kIe;
    return kUnordered;
  }
  if (IsNan(ka) || IsNan(kb)) {
    if (!quiet) *ex = kIe;
    return kUnordered;
  }
  if (ka == kDenormal || kb == kDenormal) *ex = kDe;
  if (ka == kZero && kb == kZero) return kEqual;
  // Magnitude order: (effective exponent, significand), a pseudo-denormal scaling as exponent 1.
  auto mag = [](const X87Reg& r, unsigned* e) {
    const unsigned x = r.sign_exp & 0x7fff;
    *e = x == 0 ? 1 : x;
    return r.mant;
  };
  const bool na = Negative(a) && ka != kZero, nb = Negative(b) && kb != kZero;
  if (na != nb) return na ? kLess : kGreater;
  unsigned ea, eb;
  const uint64_t ma = mag(a, &ea), mb = mag(b, &eb);
  int cmp;  // magnitude compare
  if (ka == kZero) cmp = -1;
  else if (kb == kZero) cmp = 1;
  else if (ea != eb) cmp = ea < eb ? -1 : 1;
  else cmp = ma == mb ? 0 : ma < mb ? -1 : 1;
  if (cmp == 0) return kEqual;
  if (na) cmp = -cmp;
  return cmp < 0 ? kLess : kGreater;
}

uint16_t CcOf(Order o) {
  switch (o) {
    case kGreater: return 0;
    case kLess: return kC0;
    case kEqual: return kC3;
    default: return kC0 | kC2 | kC3;
  }
}

// FCOM/FUCOM/FICOM family: compare ST(0) with src, set C0 C2 C3, C1 = 0; then pop `pops`
// times. st1_src: src is ST(i) (checked for empty).
void DoCompare(CpuState& s, const X87Reg* src, int src_reg, bool quiet, unsigned pops,
               uint16_t pre) {
  if (Empty(s, 0) || (src_reg >= 0 && Empty(s, static_cast<unsigned>(src_reg)))) {
    if (!StackUnderflow(s)) return;
    SetCc(s, kC0 | kC2 | kC3);
  } else {
    const X87Reg b = src_reg >= 0 ? St(s, static_cast<unsigned>(src_reg)) : *src;
    uint16_t ex;
    const Order o = Compare(St(s, 0), b, quiet, &ex);
    ex |= pre;
    if (ex & kIe) ex = kIe;
    if (ex & ~s.fcw & 0x3f) {
      Flag(s, ex);
      return;
    }
    SetC1(s, false);
    SetCc(s, CcOf(o));
    Flag(s, ex);
  }
  for (unsigned i = 0; i < pops; ++i) Pop(s);
}

// FCOMI/FUCOMI(P): ZF PF CF from the compare, OF SF AF cleared.
void DoComi(CpuCore& c, unsigned i, bool quiet, bool pop) {
  CpuState& s = c.s;
  uint64_t f;
  if (Empty(s, 0) || Empty(s, i)) {
    if (!StackUnderflow(s)) return;
    f = kFlagZf | kFlagPf | kFlagCf;
  } else {
    uint16_t ex;
    const Order o = Compare(St(s, 0), St(s, i), quiet, &ex);
    if (ex & ~s.fcw & 0x3f) {
      Flag(s, ex);
      return;
    }
    SetC1(s, false);
    Flag(s, ex);
    switch (o) {
      case kGreater: f = 0; break;
      case kLess: f = kFlagCf; break;
      case kEqual: f = kFlagZf; break;
      default: f = kFlagZf | kFlagPf | kFlagCf; break;
    }
  }
  s.rflags = (s.rflags & ~(kFlagZf | kFlagPf | kFlagCf | kFlagOf | kFlagSf | kFlagAf)) | f;
  if (pop) Pop(s);
}

// FXAM (SDM Vol. 2 FXAM table): C3 C2 C0 class, C1 sign.
void DoFxam(CpuState& s) {
  const X87Reg& r = St(s, 0);
  SetC1(s, Negative(r));
  if (Empty(s, 0)) return SetCc(s, kC3 | kC0);
  switch (Classify(r)) {
    case kUnsupported: return SetCc(s, 0);
    case kQnan: case kSnan: return SetCc(s, kC0);
    case kNormal: return SetCc(s, kC2);
    case kInf: return SetCc(s, kC2 | kC0);
    case kZero: return SetCc(s, kC3);
    case kDenormal: return SetCc(s, kC3 | kC2);
  }
}

// ---- stores ----------------------------------------------------------------------------------

// Stores ST(0) to memory in format fmt (0 m32real, 1 m64real, 2 m16int, 3 m32int, 4 m64int),
// with truncation for FISTTP. Unmasked exceptions other than PE: nothing stored, no pop.
void DoStore(CpuCore& c, const Op& op, unsigned fmt, bool pop, bool truncate) {
  CpuState& s = c.s;
  uint64_t bits = 0;
  uint16_t sw = 0;
  const unsigned size = fmt == 0 ? 4 : fmt == 1 ? 8 : fmt == 2 ? 2 : fmt == 3 ? 4 : 8;
  const bool integer = fmt >= 2;
  // The indefinite of the format.
  const uint64_t indefinite = fmt == 0 ? 0xffc00000u : fmt == 1 ? 0xfff8000000000000ull
                            : fmt == 2 ? 0x8000u : fmt == 3 ? 0x80000000u : 0x8000000000000000ull;
  if (Empty(s, 0)) {
    if (!StackUnderflow(s)) return;
    bits = indefinite;
  } else {
    const X87Reg v = St(s, 0);
    if (Classify(v) == kUnsupported) {
      sw = kIe;
      bits = indefinite;
    } else {
      uint16_t cw = AllMaskedCw(s.fcw);
      if (truncate) cw |= 0x0c00;
      switch (fmt) {
        case 0: { uint32_t x; sw = HostToF32(v, cw, &x); bits = x; break; }
        case 1: { uint64_t x; sw = HostToF64(v, cw, &x); bits = x; break; }
        case 2: { uint16_t x; sw = HostToI16(v, cw, &x); bits = x; break; }
        case 3: { uint32_t x; sw = HostToI32(v, cw, &x); bits = x; break; }
        default: { uint64_t x; sw = HostToI64(v, cw, &x); bits = x; break; }
      }
      // FIST(P)/FISTTP: #IA #P only; FST(P): #IA #O #U #P (SDM Vol. 2).
      sw &= static_cast<uint16_t>(integer ? (kIe | kPe | kC1) : (kIe | kOe | kUe | kPe | kC1));
    }
    const uint16_t ex = sw & 0x3f;
    if (ex & ~s.fcw & (kIe | kOe | kUe)) {
      Flag(s, ex & (kIe | kOe | kUe));
      return;
    }
  }
  uint8_t b[8];
  std::memcpy(b, &bits, 8);
  if (!MemWrite(c, op, size, b)) return;
  if (!Empty(s, 0)) SetC1(s, sw & kC1);
  Flag(s, sw);
  if (pop) Pop(s);
}

// ---- packed BCD --------------------------------------------------------------------------

void DoFbld(CpuCore& c, const Op& op) {
  uint8_t b[10];
  if (!MemRead(c, op, 10, b)) return;
  // 18 digits; invalid digits (A-F) are weighted like digits (the SDM leaves them undefined).
  uint64_t v = 0;
  for (int i = 8; i >= 0; --i) v = v * 100 + (b[i] >> 4) * 10 + (b[i] & 15);
  X87Reg r = kPlusZero;
  if (v) {
    const int lz = __builtin_clzll(v);
    r = X87Reg{v << lz, static_cast<uint16_t>(0x3fff + 63 - lz)};
  }
  if (b[9] & 0x80) r.sign_exp |= 0x8000;
  PushChecked(c.s, r);
}

void DoFbstp(CpuCore& c, const Op& op) {
  CpuState& s = c.s;
  uint8_t b[10] = {};
  const uint8_t indefinite[10] = {0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff};
  uint16_t sw = 0;
  if (Empty(s, 0)) {
    if (!StackUnderflow(s)) return;
    std::memcpy(b, indefinite, 10);
  } else {
    const X87Reg v = St(s, 0);
    const Cls k = Classify(v);
    X87Reg r = v;
    if (k == kUnsupported || k == kInf || IsNan(k)) {
      sw = kIe;
    } else {
      sw = HostFrndint(v, AllMaskedCw(s.fcw), &r) & (kIe | kPe | kC1);
      // |r| must be at most 10^18 - 1 (an integer below 2^60).
      const unsigned e = r.sign_exp & 0x7fff;
      uint64_t mag = 0;
      if (r.mant != 0) {
        if (e > 0x3fff + 59) sw |= kIe;
        else mag = e < 0x3fff ? 0 : r.mant >> (63 - (e - 0x3fff));
      }
      if (mag > 999999999999999999ull) sw |= kIe;
      if (!(sw & kIe)) {
        for (unsigned i = 0; i < 9; ++i) {
          const unsigned lo = static_cast<unsigned>(mag % 10);
          mag /= 10;
          const unsigned hi = static_cast<unsigned>(mag % 10);
          mag /= 10;
          b[i] = static_cast<uint8_t>(hi << 4 | lo);
        }
        b[9] = Negative(r) ? 0x80 : 0;
      }
    }
    if (sw & kIe) {
      sw = kIe;
      std::memcpy(b, indefinite, 10);
    }
    if (sw & ~s.fcw & kIe) {
      Flag(s, kIe);
      return;
    }
  }
  if (!MemWrite(c, op, 10, b)) return;
  if (!Empty(s, 0)) SetC1(s, sw & kC1);
  Flag(s, sw);
  Pop(s);
}

// ---- one-operand operations on ST(0) ------------------------------------------------------

// FSQRT, FRNDINT: ST(0) = f(ST(0)).
void DoUnary(CpuState& s, uint16_t (*fn)(const X87Reg&, uint16_t, X87Reg*)) {
  if (Empty(s, 0)) {
    if (StackUnderflow(s)) SetSt(s, 0, kIndefinite);
    return;
  }
  const X87Reg a = St(s, 0);
  X87Reg r;
  uint16_t sw;
  if (Classify(a) == kUnsupported) {
    r = kIndefinite;
    sw = kIe;
  } else {
    sw = fn(a, ArithCw(s.fcw), &r);
  }
  if (CommitArith(s, sw)) SetSt(s, 0, r);
}

// FPREM/FPREM1. The SDM's partial remainder for exponent differences of 64 or more reduces by
// an implementation-dependent N in 32..63; this one uses N = 32 + (D mod 32), computing the
// step as the exact truncating remainder against ST(1) scaled by 2^(D-N). C0 C3 C1 = Q2 Q1
// Q0, C2 = 1 when incomplete (then the quotient bits are left unchanged).
void DoPrem(CpuState& s, bool ieee) {
  if (Empty(s, 0) || Empty(s, 1)) {
    if (StackUnderflow(s)) SetSt(s, 0, kIndefinite);
    return;
  }
  const X87Reg a = St(s, 0), b = St(s, 1);
  const Cls ka = Classify(a), kb = Classify(b);
  X87Reg r;
  uint16_t sw;
  if (ka == kUnsupported || kb == kUnsupported) {
    r = kIndefinite;
    sw = kIe;
  } else {
    // True (normalised) binary exponents of finite non-zero operands.
    auto exp_of = [](const X87Reg& x) {
      const int e = (x.sign_exp & 0x7fff) == 0 ? 1 : (x.sign_exp & 0x7fff);
      return e - __builtin_clzll(x.mant);
    };
    const bool finite = (ka == kNormal || ka == kDenormal) && (kb == kNormal || kb == kDenormal);
    const int d = finite ? exp_of(a) - exp_of(b) : 0;
    const uint16_t cw = ArithCw(s.fcw);
    const int n = 32 + (d & 31);
    if (d >= 64) {
      // ST(1) scaled by 2^(d-n) (exact): normalised with the exponent of ST(0) minus n, or,
      // when that is below the normal range (ST(1) a denormal), the denormal significand
      // shifted left by d-n (it stays below 2^63 then). The step truncates for FPREM1 too
      // (SDM pseudo-code).
      const int eb = exp_of(b) + (d - n);
      const X87Reg bs = eb >= 1
          ? X87Reg{b.mant << __builtin_clzll(b.mant), static_cast<uint16_t>((b.sign_exp & 0x8000) | eb)}
          : X87Reg{b.mant << (d - n), static_cast<uint16_t>(b.sign_exp & 0x8000)};
      sw = HostFprem(a, bs, cw, &r);
      sw = static_cast<uint16_t>((sw & 0x3f) | kC2 | (s.fsw & (kC0 | kC1 | kC3)));
    } else {
      sw = ieee ? HostFprem1(a, b, cw, &r) : HostFprem(a, b, cw, &r);
    }
  }
  const uint16_t ex = sw & 0x3f;
  if (ex & ~s.fcw & kPre) {
    Flag(s, ex & kPre);
    return;
  }
  s.fsw = static_cast<uint16_t>((s.fsw & ~(kC0 | kC1 | kC2 | kC3)) | (sw & (kC0 | kC1 | kC2 | kC3)));
  Flag(s, ex);
  SetSt(s, 0, r);
}

void DoFscale(CpuState& s) {
  if (Empty(s, 0) || Empty(s, 1)) {
    if (StackUnderflow(s)) SetSt(s, 0, kIndefinite);
    return;
  }
  const X87Reg a = St(s, 0), b = St(s, 1);
  X87Reg r;
  uint16_t sw;
  if (Classify(a) == kUnsupported || Classify(b) == kUnsupported) {
    r = kIndefinite;
    sw = kIe;
  } else {
    sw = HostFscale(a, b, ArithCw(s.fcw), &r);
  }
  if (CommitArith(s, sw)) SetSt(s, 0, r);
}

void DoFxtract(CpuState& s) {
  if (Empty(s, 0)) {
    if (!StackUnderflow(s)) return;
    // Masked: ST(0) and the pushed value are both the indefinite.
    SetSt(s, 0, kIndefinite);
    if (CanPush(s)) PushValue(s, kIndefinite);
    return;
  }
  if (!Empty(s, 7)) {
    if (StackOverflow(s)) {
      SetSt(s, 0, kIndefinite);
      PushValue(s, kIndefinite);
    }
    return;
  }
  const X87Reg a = St(s, 0);
  X87Reg sig, ex;
  uint16_t sw;
  if (Classify(a) == kUnsupported) {
    sig = ex = kIndefinite;
    sw = kIe;
  } else {
    sw = HostFxtract(a, ArithCw(s.fcw), &sig, &ex);
  }
  if (!CommitArith(s, sw)) return;
  SetSt(s, 0, ex);
  PushValue(s, sig);
}

// ---- transcendentals (the math is x87_math.cc: correctly rounded with MPFR) ----------------
// The stack, flag and pointer handling of FSIN/FCOS/FSINCOS/FPTAN/FPATAN/F2XM1/FYL2X/FYL2XP1.
// An unmasked IE/DE/ZE leaves everything unchanged; with |x| >= 2^63 FSIN/FCOS/FSINCOS/FPTAN
// set C2 and leave ST(0); otherwise C2 = 0.

// Applies the math result's flags like CommitArith. false: nothing may be written.
bool CommitMath(CpuState& s, const X87MathResult& m) { return CommitArith(s, m.flags); }

// FSIN, FCOS, F2XM1: ST(0) = f(ST(0)).
void DoMathUnary(CpuState& s, X87MathResult (*fn)(X87Reg, uint16_t), bool reduces) {
  if (Empty(s, 0)) {
    if (StackUnderflow(s)) SetSt(s, 0, kIndefinite);
    return;
  }
  const X87Reg a = St(s, 0);
  X87MathResult m{};
  if (Classify(a) == kUnsupported) {
    m.r0 = kIndefinite;
    m.flags = kIe;
  } else {
    m = fn(a, s.fcw);
  }
  if (reduces && m.out_of_range) {
    s.fsw |= kC2;
    return;
  }
  if (!CommitMath(s, m)) return;
  if (reduces) s.fsw &= static_cast<uint16_t>(~kC2);
  SetSt(s, 0, m.r0);
}

// FSINCOS (ST(0) = sin, push cos) and FPTAN (ST(0) = tan, push 1.0).
void DoMathPush(CpuState& s, bool sincos) {
  if (Empty(s, 0) || !Empty(s, 7)) {
    const bool masked = Empty(s, 0) ? StackUnderflow(s) : StackOverflow(s);
    if (masked) {
      SetSt(s, 0, kIndefinite);
      PushValue(s, kIndefinite);
    }
    return;
  }
  const X87Reg a = St(s, 0);
  X87MathResult m{};
  if (Classify(a) == kUnsupported) {
    m.r0 = m.r1 = kIndefinite;
    m.flags = kIe;
  } else {
    m = sincos ? X87Fsincos(a, s.fcw) : X87Fptan(a, s.fcw);
  }
  if (m.out_of_range) {
    s.fsw |= kC2;
    return;
  }
  if (!CommitMath(s, m)) return;
  s.fsw &= static_cast<uint16_t>(~kC2);
  SetSt(s, 0, m.r0);
  PushValue(s, m.r1);  // FSINCOS: cos; FPTAN: 1.0, or the NaN result itself
}

// FPATAN, FYL2X, FYL2XP1: ST(1) = f(ST(1), ST(0)), pop.
void DoMathBinary(CpuState& s, X87MathResult (*fn)(X87Reg, X87Reg, uint16_t)) {
  if (Empty(s, 0) || Empty(s, 1)) {
    if (StackUnderflow(s)) {
      SetSt(s, 1, kIndefinite);
      Pop(s);
    }
    return;
  }
  const X87Reg st0 = St(s, 0), st1 = St(s, 1);
  X87MathResult m{};
  if (Classify(st0) == kUnsupported || Classify(st1) == kUnsupported) {
    m.r0 = kIndefinite;
    m.flags = kIe;
  } else {
    m = fn(st1, st0, s.fcw);
  }
  if (!CommitMath(s, m)) return;
  SetSt(s, 1, m.r0);
  Pop(s);
}

// ---- environment ---------------------------------------------------------------------------

// The full tag word (SDM Vol. 1 8.1.7): 00 valid, 01 zero, 10 special, 11 empty, per
// physical register.
uint16_t FullTag(const CpuState& s) {
  uint16_t t = 0;
  for (unsigned i = 0; i < 8; ++i) {
    unsigned tag;
    if (!((s.ftw >> i) & 1)) tag = 3;
    else {
      switch (Classify(s.st[i])) {
        case kZero: tag = 1; break;
        case kNormal: tag = 0; break;
        default: tag = 2; break;
      }
    }
    t = static_cast<uint16_t>(t | tag << (2 * i));
  }
  return t;
}
uint8_t AbridgedTag(uint16_t full) {
  uint8_t t = 0;
  for (unsigned i = 0; i < 8; ++i)
    if (((full >> (2 * i)) & 3) != 3) t = static_cast<uint8_t>(t | 1u << i);
  return t;
}

template <typename T>
void Put(uint8_t* img, unsigned at, T v) { std::memcpy(img + at, &v, sizeof v); }
template <typename T>
T Get(const uint8_t* img, unsigned at) {
  T v;
  std::memcpy(&v, img + at, sizeof v);
  return v;
}

bool RealFormat(const CpuCore& c) { return !c.protected_mode() || c.mode == kModeV86; }

// The environment image (SDM Vol. 1 Figures 8-9 to 8-12): 14 bytes (16-bit operand size) or
// 28 (32/64-bit). Reserved halves of the 32-bit format are written as 1s, as the hardware
// does; in real and virtual-8086 mode the pointers are 20/32-bit linear addresses.
unsigned BuildEnv(const CpuCore& c, bool o16, uint8_t* img) {
  const CpuState& s = c.s;
  const uint16_t tag = FullTag(s);
  const bool real = RealFormat(c);
  const uint32_t ip = real ? static_cast<uint32_t>((uint64_t{s.fcs} << 4) + s.fip)
                           : static_cast<uint32_t>(s.fip);
  const uint32_t dp = real ? static_cast<uint32_t>((uint64_t{s.fds} << 4) + s.fdp)
                           : static_cast<uint32_t>(s.fdp);
  if (o16) {
    Put<uint16_t>(img, 0, s.fcw);
    Put<uint16_t>(img, 2, s.fsw);
    Put<uint16_t>(img, 4, tag);
    Put<uint16_t>(img, 6, static_cast<uint16_t>(ip));
    if (real) {
      Put<uint16_t>(img, 8, static_cast<uint16_t>(((ip >> 16) & 0xf) << 12 | (s.fop & 0x7ff)));
      Put<uint16_t>(img, 10, static_cast<uint16_t>(dp));
      Put<uint16_t>(img, 12, static_cast<uint16_t>(((dp >> 16) & 0xf) << 12));
    } else {
      Put<uint16_t>(img, 8, s.fcs);
      Put<uint16_t>(img, 10, static_cast<uint16_t>(dp));
      Put<uint16_t>(img, 12, s.fds);
    }
    return 14;
  }
  Put<uint32_t>(img, 0, 0xffff0000u | s.fcw);
  Put<uint32_t>(img, 4, 0xffff0000u | s.fsw);
  Put<uint32_t>(img, 8, 0xffff0000u | tag);
  if (real) {
    Put<uint32_t>(img, 12, 0xffff0000u | (ip & 0xffff));
    Put<uint32_t>(img, 16, ((ip >> 16) & 0xffff) << 12 | (s.fop & 0x7ffu));
    Put<uint32_t>(img, 20, 0xffff0000u | (dp & 0xffff));
    Put<uint32_t>(img, 24, ((dp >> 16) & 0xffff) << 12);
  } else {
    Put<uint32_t>(img, 12, ip);
    Put<uint32_t>(img, 16, s.fcs | uint32_t{s.fop & 0x7ffu} << 16);
    Put<uint32_t>(img, 20, dp);
    Put<uint32_t>(img, 24, 0xffff0000u | s.fds);
  }
  return 28;
}

void LoadEnv(CpuCore& c, bool o16, const uint8_t* img) {
  CpuState& s = c.s;
  const bool real = RealFormat(c);
  uint16_t tag;
  if (o16) {
    s.fcw = Get<uint16_t>(img, 0);
    s.fsw = Get<uint16_t>(img, 2);
    tag = Get<uint16_t>(img, 4);
    const uint16_t w8 = Get<uint16_t>(img, 8), w12 = Get<uint16_t>(img, 12);
    if (real) {
      s.fip = Get<uint16_t>(img, 6) | static_cast<uint32_t>(w8 >> 12) << 16;
      s.fop = w8 & 0x7ff;
      s.fdp = Get<uint16_t>(img, 10) | static_cast<uint32_t>(w12 >> 12) << 16;
      s.fcs = s.fds = 0;
    } else {
      s.fip = Get<uint16_t>(img, 6);
      s.fcs = w8;
      s.fdp = Get<uint16_t>(img, 10);
      s.fds = w12;
    }
  } else {
    s.fcw = Get<uint16_t>(img, 0);
    s.fsw = Get<uint16_t>(img, 4);
    tag = Get<uint16_t>(img, 8);
    const uint32_t d16 = Get<uint32_t>(img, 16), d24 = Get<uint32_t>(img, 24);
    if (real) {
      s.fip = (Get<uint32_t>(img, 12) & 0xffff) | ((d16 >> 12) & 0xffff) << 16;
      s.fop = d16 & 0x7ff;
      s.fdp = (Get<uint32_t>(img, 20) & 0xffff) | ((d24 >> 12) & 0xffff) << 16;
      s.fcs = s.fds = 0;
    } else {
      s.fip = Get<uint32_t>(img, 12);
      s.fcs = static_cast<uint16_t>(d16);
      s.fop = (d16 >> 16) & 0x7ff;
      s.fdp = Get<uint32_t>(img, 20);
      s.fds = static_cast<uint16_t>(d24);
    }
  }
  s.ftw = AbridgedTag(tag);
  UpdateEs(s);
}

bool EnvO16(const Op& op) { return op.osize == 2; }

void DoFnstenv(CpuCore& c, const Op& op) {
  uint8_t img[28];
  const unsigned n = BuildEnv(c, EnvO16(op), img);
  if (!MemWrite(c, op, n, img)) return;
  c.s.fcw |= 0x3f;  // then every exception is masked
  UpdateEs(c.s);
}

void DoFldenv(CpuCore& c, const Op& op) {
  uint8_t img[28];
  const bool o16 = EnvO16(op);
  if (!MemRead(c, op, o16 ? 14 : 28, img)) return;
  LoadEnv(c, o16, img);
}

void DoFnsave(CpuCore& c, const Op& op) {
  uint8_t img[108];
  const unsigned n = BuildEnv(c, EnvO16(op), img);
  for (unsigned i = 0; i < 8; ++i) {
    const X87Reg& r = c.s.st[(Top(c.s) + i) & 7];
    Put<uint64_t>(img, n + 10 * i, r.mant);
    Put<uint16_t>(img, n + 10 * i + 8, r.sign_exp);
  }
  if (!MemWrite(c, op, n + 80, img)) return;
  FpuInit(c.s);
}

void DoFrstor(CpuCore& c, const Op& op) {
  uint8_t img[108];
  const bool o16 = EnvO16(op);
  const unsigned n = o16 ? 14 : 28;
  if (!MemRead(c, op, n + 80, img)) return;
  LoadEnv(c, o16, img);
  for (unsigned i = 0; i < 8; ++i) {
    X87Reg& r = c.s.st[(Top(c.s) + i) & 7];
    r.mant = Get<uint64_t>(img, n + 10 * i);
    r.sign_exp = Get<uint16_t>(img, n + 10 * i + 8);
  }
}

// ---- constants (SDM Vol. 1 8.3.8: rounded per FCW.RC from the internal 66-bit constants) ----

X87Reg Constant(uint8_t which, uint16_t fcw) {
  const unsigned rc = (fcw >> 10) & 3;  // 0 nearest, 1 down, 2 up, 3 chop
  const bool down_or_chop = rc == 1 || rc == 3;
  switch (which) {
    case 0xe8: return X87Reg{0x8000000000000000ull, 0x3fff};  // +1.0
    case 0xe9: return X87Reg{0xd49a784bcd1b8afeull + (rc == 2 ? 1 : 0), 0x4000};  // log2(10)
    case 0xea: return X87Reg{0xb8aa3b295c17f0bcull - (down_or_chop ? 1 : 0), 0x3fff};  // log2(e)
    case 0xeb: return X87Reg{0xc90fdaa22168c235ull - (down_or_chop ? 1 : 0), 0x4000};  // pi
    case 0xec: return X87Reg{0x9a209a84fbcff799ull - (down_or_chop ? 1 : 0), 0x3ffd};  // log10(2)
    case 0xed: return X87Reg{0xb17217f7d1cf79acull - (down_or_chop ? 1 : 0), 0x3ffe};  // ln(2)
    default: return kPlusZero;
  }
}

bool CmovCond(const CpuState& s, unsigned cc) {  // cc: 0 B, 1 E, 2 BE, 3 U
  const uint64_t f = s.rflags;
  switch (cc) {
    case 0: return f & kFlagCf;
    case 1: return f & kFlagZf;
    case 2: return f & (kFlagCf | kFlagZf);
    default: return f & kFlagPf;
  }
}

// ---- register forms -------------------------------------------------------------------------

void RegisterForm(CpuCore& c, unsigned esc, unsigned modrm) {
  CpuState& s = c.s;
  const unsigned reg = (modrm >> 3) & 7, i = modrm & 7;
  switch (esc) {
    case 0:  // D8: ST(0) = ST(0) op ST(i); D0 FCOM, D8 FCOMP
      if (reg == 2 || reg == 3) return DoCompare(s, nullptr, static_cast<int>(i), false, reg - 2, 0);
      if (Empty(s, 0) || Empty(s, i)) {
        if (StackUnderflow(s)) SetSt(s, 0, kIndefinite);
        return;
      }
      return DoArith(s, reg, 0, St(s, i), 0, false);
    case 4:  // DC: ST(i) = ST(i) op ST(0) (the SUB/SUBR and DIV/DIVR encodings swapped)
    case 6: {  // DE: the same, then pop; DE D9 FCOMPP
      if (reg == 2 || reg == 3) {
        if (esc == 6 && reg == 3) {
          if (i != 1) return c.Ud();
          return DoCompare(s, nullptr, 1, false, 2, 0);  // FCOMPP
        }
        return DoCompare(s, nullptr, static_cast<int>(i), false, esc == 6 ? 1 : reg - 2, 0);
      }
      static constexpr unsigned kSwap[8] = {kAdd, kMul, 0, 0, kSubr, kSub, kDivr, kDiv};
      if (Empty(s, 0) || Empty(s, i)) {
        if (StackUnderflow(s)) {
          SetSt(s, i, kIndefinite);
          if (esc == 6) Pop(s);
        }
        return;
      }
      return DoArith(s, kSwap[reg], i, St(s, 0), 0, esc == 6);
    }
    case 1:  // D9
      switch (reg) {
        case 0: {  // FLD ST(i)
          if (!CanPush(s)) return;
          if (Empty(s, i)) {
            if (StackUnderflow(s)) PushValue(s, kIndefinite);
            return;
          }
          const X87Reg v = St(s, i);
          PushValue(s, v);
          return SetC1(s, false);
        }
        case 1: {  // FXCH
          if (Empty(s, 0) || Empty(s, i)) {
            if (!StackUnderflow(s)) return;
            if (Empty(s, 0)) SetSt(s, 0, kIndefinite);
            if (Empty(s, i)) SetSt(s, i, kIndefinite);
          } else {
            SetC1(s, false);
          }
          const X87Reg t = St(s, 0);
          St(s, 0) = St(s, i);
          St(s, i) = t;
          return;
        }
        case 2:  // FNOP (D9 D0)
          if (i != 0) return c.Ud();
          return;
        case 3:  // FSTP1 alias
          break;
        case 4:
          switch (i) {
            case 0: case 1:  // FCHS, FABS
              if (Empty(s, 0)) {
                if (StackUnderflow(s)) SetSt(s, 0, kIndefinite);
                return;
              }
              St(s, 0).sign_exp = static_cast<uint16_t>(i == 0 ? St(s, 0).sign_exp ^ 0x8000
                                                              : St(s, 0).sign_exp & 0x7fff);
              return SetC1(s, false);
            case 4: {  // FTST
              const X87Reg zero = kPlusZero;
              return DoCompare(s, &zero, -1, false, 0, 0);
            }
            case 5:
              return DoFxam(s);
            default:
              return c.Ud();
          }
        case 5:
          if (i == 7) return c.Ud();
          return PushChecked(s, Constant(static_cast<uint8_t>(0xe8 + i), s.fcw));
        case 6:
          switch (i) {
            case 0: return DoMathUnary(s, X87F2xm1, false);
            case 1: return DoMathBinary(s, X87Fyl2x);
            case 2: return DoMathPush(s, false);  // FPTAN
            case 3: return DoMathBinary(s, X87Fpatan);
            case 4: return DoFxtract(s);
            case 5: return DoPrem(s, true);
            case 6: SetTop(s, Top(s) - 1); return SetC1(s, false);  // FDECSTP
            default: SetTop(s, Top(s) + 1); return SetC1(s, false);  // FINCSTP
          }
        default:
          switch (i) {
            case 0: return DoPrem(s, false);
            case 1: return DoMathBinary(s, X87Fyl2xp1);
            case 2: return DoUnary(s, HostFsqrt);
            case 3: return DoMathPush(s, true);  // FSINCOS
            case 4: return DoUnary(s, HostFrndint);
            case 5: return DoFscale(s);
            case 6: return DoMathUnary(s, X87Fsin, true);
            default: return DoMathUnary(s, X87Fcos, true);
          }
      }
      break;
    case 2:  // DA: FCMOVB/E/BE/U, DA E9 FUCOMPP
    case 3:  // DB: FCMOVNB/NE/NBE/NU, E8 FUCOMI, F0 FCOMI, E0-E4 legacy
      if (reg < 4) {
        if (Empty(s, 0) || Empty(s, i)) {
          if (StackUnderflow(s)) SetSt(s, 0, kIndefinite);
          return;
        }
        const bool cond = CmovCond(s, reg);
        if (cond == (esc == 2)) SetSt(s, 0, St(s, i));
        return;
      }
      if (esc == 2) {
        if (modrm != 0xe9) return c.Ud();
        return DoCompare(s, nullptr, 1, true, 2, 0);
      }
      if (reg == 5) return DoComi(c, i, true, false);
      if (reg == 6) return DoComi(c, i, false, false);
      if (reg == 4 && (i == 0 || i == 1 || i == 4)) return;  // FENI/FDISI/FSETPM: no-ops
      return c.Ud();
    case 5:  // DD
      switch (reg) {
        case 0:  // FFREE
          s.ftw = static_cast<uint8_t>(s.ftw & ~(1u << Phys(s, i)));
          return;
        case 1: {  // FXCH4 alias
          return RegisterForm(c, 1, 0xc8 | i);
        }
        case 2: case 3:  // FST, FSTP ST(i)
          break;
        case 4: return DoCompare(s, nullptr, static_cast<int>(i), true, 0, 0);  // FUCOM
        case 5: return DoCompare(s, nullptr, static_cast<int>(i), true, 1, 0);  // FUCOMP
        default: return c.Ud();
      }
      break;
    default:  // DF
      switch (reg) {
        case 0:  // FFREEP
          s.ftw = static_cast<uint8_t>(s.ftw & ~(1u << Phys(s, i)));
          return Pop(s);
        case 1: return RegisterForm(c, 1, 0xc8 | i);  // FXCH7 alias
        case 2: case 3: break;                        // FSTP8/FSTP9 aliases
        case 5: return DoComi(c, i, true, true);      // FUCOMIP
        case 6: return DoComi(c, i, false, true);     // FCOMIP
        default: return c.Ud();
      }
      break;
  }
  // FST/FSTP ST(i) (D9 D8, DD D0/D8, DF D0/D8).
  const bool pop = !(esc == 5 && reg == 2);
  if (Empty(s, 0)) {
    if (!StackUnderflow(s)) return;
    SetSt(s, i, kIndefinite);
  } else {
    SetSt(s, i, St(s, 0));
    SetC1(s, false);
  }
  if (pop) Pop(s);
}

// ---- memory forms --------------------------------------------------------------------------

void MemoryForm(CpuCore& c, const Op& op, unsigned esc, unsigned reg) {
  CpuState& s = c.s;
  if (!(esc & 1)) {  // D8 DA DC DE: arithmetic and compares with m32real/m32int/m64real/m16int
    X87Reg src;
    uint16_t pre;
    if (!ReadArithOperand(c, op, esc >> 1, &src, &pre)) return;
    if (reg == 2 || reg == 3) return DoCompare(s, &src, -1, false, reg - 2, pre);
    if (Empty(s, 0)) {
      if (StackUnderflow(s)) SetSt(s, 0, kIndefinite);
      return;
    }
    if (esc == 0 || esc == 4) return DoArithReal(c, op, reg, esc == 4);
    return DoArith(s, reg, 0, src, 0, false);  // integers convert exactly, without flags
  }
  switch (esc) {
    case 1:  // D9
      switch (reg) {
        case 0: {  // FLD m32
          uint32_t v;
          if (!MemReadT(c, op, &v)) return;
          X87Reg r;
          const uint16_t ex = HostFromF32(v, &r);
          if (!CanPush(s)) return;
          if (ex & ~s.fcw & kPre) return Flag(s, ex);
          PushValue(s, r);
          SetC1(s, false);
          return Flag(s, ex);
        }
        case 2: return DoStore(c, op, 0, false, false);
        case 3: return DoStore(c, op, 0, true, false);
        case 4: return DoFldenv(c, op);
        case 6: return DoFnstenv(c, op);
        default: return c.Ud();
      }
    case 3:  // DB
      switch (reg) {
        case 0: {  // FILD m32
          uint32_t v;
          if (!MemReadT(c, op, &v)) return;
          return PushChecked(s, FromInt(static_cast<int32_t>(v)));
        }
        case 1: return DoStore(c, op, 3, true, true);
        case 2: return DoStore(c, op, 3, false, false);
        case 3: return DoStore(c, op, 3, true, false);
        case 5: {  // FLD m80
          X87Reg r;
          if (!ReadM80(c, op, &r)) return;
          return PushChecked(s, r);
        }
        case 7: {  // FSTP m80
          X87Reg v = kIndefinite;
          if (Empty(s, 0)) {
            if (!StackUnderflow(s)) return;
          } else {
            v = St(s, 0);
          }
          if (!WriteM80(c, op, v)) return;
          if (!Empty(s, 0)) SetC1(s, false);
          return Pop(s);
        }
        default: return c.Ud();
      }
    case 5:  // DD
      switch (reg) {
        case 0: {  // FLD m64
          uint64_t v;
          if (!MemReadT(c, op, &v)) return;
          X87Reg r;
          const uint16_t ex = HostFromF64(v, &r);
          if (!CanPush(s)) return;
          if (ex & ~s.fcw & kPre) return Flag(s, ex);
          PushValue(s, r);
          SetC1(s, false);
          return Flag(s, ex);
        }
        case 1: return DoStore(c, op, 4, true, true);
        case 2: return DoStore(c, op, 1, false, false);
        case 3: return DoStore(c, op, 1, true, false);
        case 4: return DoFrstor(c, op);
        case 6: return DoFnsave(c, op);
        default: return c.Ud();
      }
    default:  // DF
      switch (reg) {
        case 0: {  // FILD m16
          uint16_t v;
          if (!MemReadT(c, op, &v)) return;
          return PushChecked(s, FromInt(static_cast<int16_t>(v)));
        }
        case 1: return DoStore(c, op, 2, true, true);
        case 2: return DoStore(c, op, 2, false, false);
        case 3: return DoStore(c, op, 2, true, false);
        case 4: return DoFbld(c, op);
        case 5: {  // FILD m64
          uint64_t v;
          if (!MemReadT(c, op, &v)) return;
          return PushChecked(s, FromInt(static_cast<int64_t>(v)));
        }
        case 6: return DoFbstp(c, op);
        default: return DoStore(c, op, 4, true, false);  // FISTP m64
      }
  }
}

// Control instructions (no pointer update): FLDENV, FNSTENV, FRSTOR, FNSAVE, and the
// 8087/287 no-ops. FNSTENV/FNSAVE and the no-ops are non-waiting.
bool IsControl(unsigned fop, bool* waiting) {
  const unsigned esc = fop >> 8, mod = (fop >> 6) & 3, reg = (fop >> 3) & 7;
  *waiting = true;
  if (mod != 3) {
    if (esc == 1 && (reg == 4 || reg == 6)) {
      *waiting = reg == 4;
      return true;
    }
    if (esc == 5 && (reg == 4 || reg == 6)) {
      *waiting = reg == 4;
      return true;
    }
    return false;
  }
  if (esc == 3 && (fop & 0xff) >= 0xe0 && (fop & 0xff) <= 0xe4) {
    *waiting = false;
    return true;
  }
  return false;
}

void OpX87(CpuCore& c, const Op& op) {
  const unsigned fop = static_cast<unsigned>(op.aux & 0x7ff);
  bool waiting;
  const bool control = IsControl(fop, &waiting);
  if (!(waiting ? CheckFpuAvailableWaiting(c) : CheckFpuAvailable(c))) return;
  const unsigned esc = fop >> 8, modrm = fop & 0xff;
  if (!control) RecordPointers(c, op);
  if ((modrm >> 6) == 3) RegisterForm(c, esc, modrm);
  else MemoryForm(c, op, esc, (modrm >> 3) & 7);
}

}  // namespace

void RegisterX87(Handler* t) {
  static constexpr ZydisMnemonic kMnemonics[] = {
      ZYDIS_MNEMONIC_FABS,    ZYDIS_MNEMONIC_FADD,    ZYDIS_MNEMONIC_FADDP,
      ZYDIS_MNEMONIC_FBLD,    ZYDIS_MNEMONIC_FBSTP,   ZYDIS_MNEMONIC_FCHS,
      ZYDIS_MNEMONIC_FCMOVB,  ZYDIS_MNEMONIC_FCMOVBE, ZYDIS_MNEMONIC_FCMOVE,
      ZYDIS_MNEMONIC_FCMOVNB, ZYDIS_MNEMONIC_FCMOVNBE, ZYDIS_MNEMONIC_FCMOVNE,
      ZYDIS_MNEMONIC_FCMOVNU, ZYDIS_MNEMONIC_FCMOVU,  ZYDIS_MNEMONIC_FCOM,
      ZYDIS_MNEMONIC_FCOMI,   ZYDIS_MNEMONIC_FCOMIP,  ZYDIS_MNEMONIC_FCOMP,
      ZYDIS_MNEMONIC_FCOMPP,  ZYDIS_MNEMONIC_FDECSTP, ZYDIS_MNEMONIC_FDISI8087_NOP,
      ZYDIS_MNEMONIC_FDIV,    ZYDIS_MNEMONIC_FDIVP,   ZYDIS_MNEMONIC_FDIVR,
      ZYDIS_MNEMONIC_FDIVRP,  ZYDIS_MNEMONIC_FENI8087_NOP, ZYDIS_MNEMONIC_FFREE,
      ZYDIS_MNEMONIC_FFREEP,  ZYDIS_MNEMONIC_FIADD,   ZYDIS_MNEMONIC_FICOM,
      ZYDIS_MNEMONIC_FICOMP,  ZYDIS_MNEMONIC_FIDIV,   ZYDIS_MNEMONIC_FIDIVR,
      ZYDIS_MNEMONIC_FILD,    ZYDIS_MNEMONIC_FIMUL,   ZYDIS_MNEMONIC_FINCSTP,
      ZYDIS_MNEMONIC_FIST,    ZYDIS_MNEMONIC_FISTP,   ZYDIS_MNEMONIC_FISTTP,
      ZYDIS_MNEMONIC_FISUB,   ZYDIS_MNEMONIC_FISUBR,  ZYDIS_MNEMONIC_FLD,
      ZYDIS_MNEMONIC_FLD1,    ZYDIS_MNEMONIC_FLDENV,  ZYDIS_MNEMONIC_FLDL2E,
      ZYDIS_MNEMONIC_FLDL2T,  ZYDIS_MNEMONIC_FLDLG2,  ZYDIS_MNEMONIC_FLDLN2,
      ZYDIS_MNEMONIC_FLDPI,   ZYDIS_MNEMONIC_FLDZ,    ZYDIS_MNEMONIC_FMUL,
      ZYDIS_MNEMONIC_FMULP,   ZYDIS_MNEMONIC_FNOP,    ZYDIS_MNEMONIC_FNSAVE,
      ZYDIS_MNEMONIC_FNSTENV, ZYDIS_MNEMONIC_FPREM,   ZYDIS_MNEMONIC_FPREM1,
      ZYDIS_MNEMONIC_FRNDINT, ZYDIS_MNEMONIC_FRSTOR,  ZYDIS_MNEMONIC_FSCALE,
      ZYDIS_MNEMONIC_FSETPM287_NOP, ZYDIS_MNEMONIC_FSQRT, ZYDIS_MNEMONIC_FST,
      ZYDIS_MNEMONIC_FSTP,    ZYDIS_MNEMONIC_FSTPNCE, ZYDIS_MNEMONIC_FSUB,
      ZYDIS_MNEMONIC_FSUBP,   ZYDIS_MNEMONIC_FSUBR,   ZYDIS_MNEMONIC_FSUBRP,
      ZYDIS_MNEMONIC_FTST,    ZYDIS_MNEMONIC_FUCOM,   ZYDIS_MNEMONIC_FUCOMI,
      ZYDIS_MNEMONIC_FUCOMIP, ZYDIS_MNEMONIC_FUCOMP,  ZYDIS_MNEMONIC_FUCOMPP,
      ZYDIS_MNEMONIC_FXAM,    ZYDIS_MNEMONIC_FXCH,    ZYDIS_MNEMONIC_FXTRACT,
      // The transcendentals (values from x87_math.cc).
      ZYDIS_MNEMONIC_F2XM1,   ZYDIS_MNEMONIC_FCOS,    ZYDIS_MNEMONIC_FPATAN,
      ZYDIS_MNEMONIC_FPTAN,   ZYDIS_MNEMONIC_FSIN,    ZYDIS_MNEMONIC_FSINCOS,
      ZYDIS_MNEMONIC_FYL2X,   ZYDIS_MNEMONIC_FYL2XP1,
  };
  for (ZydisMnemonic m : kMnemonics) t[m] = OpX87;
}

}  // namespace vmrr
