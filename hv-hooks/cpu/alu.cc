// Integer arithmetic and logic with their flags: ADD/ADC/SUB/SBB/CMP/AND/OR/XOR/TEST,
// INC/DEC/NEG/NOT, shifts and rotates (incl. SHLD/SHRD, RCL/RCR), XADD, CMPXCHG(8B/16B),
// BCD adjust, flag-only instructions. Undefined flags follow QEMU (what Unicorn models):
// AF=0 after logic ops and shifts, OF from the last single-bit step for multi-bit shifts.
#include <Zydis/Zydis.h>

#include "hv-hooks/cpu/core.h"

namespace vmrr {
namespace {

constexpr uint64_t kArith = kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagOf;

inline uint64_t Szp(uint64_t r, unsigned size) {
  r &= SizeMask(size);
  uint64_t f = 0;
  if (r == 0) f |= kFlagZf;
  if (r & SignBit(size)) f |= kFlagSf;
  if (Parity(r)) f |= kFlagPf;
  return f;
}
inline void SetFlags(CpuCore& c, uint64_t mask, uint64_t f) {
  c.s.rflags = (c.s.rflags & ~mask) | (f & mask);
}

enum AluKind { kAdd, kOr, kAdc, kSbb, kAnd, kSub, kXor, kCmp, kTest };

inline uint64_t AddFlags(uint64_t a, uint64_t b, uint64_t r, unsigned size, bool carry) {
  const uint64_t m = SizeMask(size);
  uint64_t f = Szp(r, size);
  if (carry ? (r & m) <= a : (r & m) < a) f |= kFlagCf;
  if (((a ^ r) & (b ^ r)) & SignBit(size)) f |= kFlagOf;
  if ((a ^ b ^ r) & 0x10) f |= kFlagAf;
  return f;
}
inline uint64_t SubFlags(uint64_t a, uint64_t b, uint64_t r, unsigned size, bool borrow) {
  uint64_t f = Szp(r, size);
  if (borrow ? a <= b : a < b) f |= kFlagCf;
  if (((a ^ b) & (a ^ r)) & SignBit(size)) f |= kFlagOf;
  if ((a ^ b ^ r) & 0x10) f |= kFlagAf;
  return f;
}

template <AluKind K>
void OpAlu(CpuCore& c, const Op& op) {
  uint64_t a, b;
  if (!c.Read(op, op.o[0], &a) || !c.Read(op, op.o[1], &b)) return;
  const unsigned size = op.o[0].size;
  const uint64_t m = SizeMask(size);
  a &= m;
  b &= m;
  uint64_t r, f;
  const bool cf = c.s.rflags & kFlagCf;
  switch (K) {
    case kAdd: r = (a + b) & m; f = AddFlags(a, b, r, size, false); break;
    case kAdc: r = (a + b + cf) & m; f = AddFlags(a, b, r, size, cf); break;
    case kSub: case kCmp: r = (a - b) & m; f = SubFlags(a, b, r, size, false); break;
    case kSbb: r = (a - b - cf) & m; f = SubFlags(a, b, r, size, cf); break;
    case kAnd: case kTest: r = a & b; f = Szp(r, size); break;
    case kOr: r = a | b; f = Szp(r, size); break;
    case kXor: r = a ^ b; f = Szp(r, size); break;
  }
  if (K != kCmp && K != kTest && !c.Write(op, op.o[0], r)) return;
  SetFlags(c, kArith, f);
}

template <bool kInc>
void OpIncDec(CpuCore& c, const Op& op) {
  uint64_t a;
  if (!c.Read(op, op.o[0], &a)) return;
  const unsigned size = op.o[0].size;
  a &= SizeMask(size);
  const uint64_t r = (kInc ? a + 1 : a - 1) & SizeMask(size);
  if (!c.Write(op, op.o[0], r)) return;
  uint64_t f = Szp(r, size);
  if ((a ^ 1 ^ r) & 0x10) f |= kFlagAf;
  if (kInc ? r == SignBit(size) : a == SignBit(size)) f |= kFlagOf;
  SetFlags(c, kArith & ~kFlagCf, f);
}

void OpNeg(CpuCore& c, const Op& op) {
  uint64_t a;
  if (!c.Read(op, op.o[0], &a)) return;
  const unsigned size = op.o[0].size;
  a &= SizeMask(size);
  const uint64_t r = (0 - a) & SizeMask(size);
  if (!c.Write(op, op.o[0], r)) return;
  SetFlags(c, kArith, SubFlags(0, a, r, size, false));
}

void OpNot(CpuCore& c, const Op& op) {
  uint64_t a;
  if (!c.Read(op, op.o[0], &a)) return;
  c.Write(op, op.o[0], ~a);
}

enum ShiftKind { kShl, kShr, kSar, kRol, kRor, kRcl, kRcr };

template <ShiftKind K>
void OpShift(CpuCore& c, const Op& op) {
  uint64_t a, b = 1;
  if (!c.Read(op, op.o[0], &a)) return;
  if (op.nops > 1 && !c.Read(op, op.o[1], &b)) return;
  const unsigned size = op.o[0].size, bits = 8 * size;
  const uint64_t m = SizeMask(size), sb = SignBit(size);
  a &= m;
  unsigned cnt = static_cast<unsigned>(b) & (size == 8 ? 0x3f : 0x1f);
  if (K == kRcl || K == kRcr) {
    if (size == 1) cnt %= 9;
    if (size == 2) cnt %= 17;
  }
  if (cnt == 0) {
    // No flags change, but a 32-bit register destination is still written: its upper half
    // is cleared in 64-bit mode (as on hardware).
    if (op.o[0].kind == kOpReg && size == 4) c.SetReg(op.o[0].reg, 4, a);
    return;
  }
  uint64_t r, f = 0, mask;
  switch (K) {
    case kShl: case kShr: case kSar: {
      uint64_t tmp;
      if (K == kShl) {
        tmp = (a << (cnt - 1)) & m;
        r = (a << cnt) & m;
        if (cnt > bits) tmp = 0, r = 0;
        if (tmp & sb) f |= kFlagCf;
      } else if (K == kShr) {
        tmp = a >> (cnt - 1);
        r = a >> cnt;
        if (cnt > bits) tmp = 0, r = 0;
        if (tmp & 1) f |= kFlagCf;
      } else {
        const int64_t sa = SignExtend(a, size);
        const unsigned c1 = cnt - 1 > 63 ? 63 : cnt - 1;
        tmp = static_cast<uint64_t>(sa >> c1) & m;
        r = static_cast<uint64_t>(sa >> (cnt > 63 ? 63 : cnt)) & m;
        if (tmp & 1) f |= kFlagCf;
      }
      if ((tmp ^ r) & sb) f |= kFlagOf;
      f |= Szp(r, size);
      mask = kArith;
      break;
    }
    case kRol: case kRor: {
      const unsigned rc = cnt % bits;
      if (K == kRol) {
        r = rc ? ((a << rc) | (a >> (bits - rc))) & m : a;
        if (r & 1) f |= kFlagCf;
        if (((r & sb) != 0) != ((r & 1) != 0)) f |= kFlagOf;
      } else {
        r = rc ? ((a >> rc) | (a << (bits - rc))) & m : a;
        if (r & sb) f |= kFlagCf;
        if (((r & sb) != 0) != ((r & (sb >> 1)) != 0)) f |= kFlagOf;
      }
      mask = kFlagCf | kFlagOf;
      break;
    }
    default: {  // RCL/RCR: bit-serial through CF
      uint64_t x = a, cf = (c.s.rflags & kFlagCf) ? 1 : 0;
      for (unsigned i = 0; i < cnt; ++i) {
        if (K == kRcl) {
          const uint64_t out = (x & sb) ? 1 : 0;
          x = ((x << 1) | cf) & m;
          cf = out;
        } else {
          const uint64_t out = x & 1;
          x = (x >> 1) | (cf ? sb : 0);
          cf = out;
        }
      }
      r = x;
      if (cf) f |= kFlagCf;
      if ((a ^ r) & sb) f |= kFlagOf;
      mask = kFlagCf | kFlagOf;
      break;
    }
  }
  if (!c.Write(op, op.o[0], r)) return;
  SetFlags(c, mask, f);
}

template <bool kLeft>
void OpShiftDouble(CpuCore& c, const Op& op) {
  uint64_t a, s, b;
  if (!c.Read(op, op.o[0], &a) || !c.Read(op, op.o[1], &s) || !c.Read(op, op.o[2], &b)) return;
  const unsigned size = op.o[0].size, bits = 8 * size;
  const uint64_t m = SizeMask(size), sb = SignBit(size);
  a &= m;
  s &= m;
  const unsigned cnt = static_cast<unsigned>(b) & (size == 8 ? 0x3f : 0x1f);
  if (cnt == 0) {
    if (op.o[0].kind == kOpReg && size == 4) c.SetReg(op.o[0].reg, 4, a);  // see OpShift
    return;
  }
  uint64_t r, tmp, f = 0;
  if (size == 2) {
    // Intel behaviour for counts above 16: the operand is shifted as dst:src:dst.
    if (kLeft) {
      const uint64_t v = (a << 32) | (s << 16) | a;
      r = (v << cnt >> 32) & m;
      tmp = (v << (cnt - 1) >> 32) & m;
    } else {
      const uint64_t v = a | (s << 16) | (a << 32);
      r = (v >> cnt) & m;
      tmp = (v >> (cnt - 1)) & m;
    }
  } else if (kLeft) {
    r = ((a << cnt) | (s >> (bits - cnt))) & m;
    tmp = cnt == 1 ? a : ((a << (cnt - 1)) | (s >> (bits - cnt + 1))) & m;
  } else {
    r = ((a >> cnt) | (s << (bits - cnt))) & m;
    tmp = cnt == 1 ? a : ((a >> (cnt - 1)) | (s << (bits - cnt + 1))) & m;
  }
  if (kLeft ? (tmp & sb) : (tmp & 1)) f |= kFlagCf;
  if ((tmp ^ r) & sb) f |= kFlagOf;
  f |= Szp(r, size);
  if (!c.Write(op, op.o[0], r)) return;
  SetFlags(c, kArith, f);
}

void OpXadd(CpuCore& c, const Op& op) {
  uint64_t a, b;
  if (!c.Read(op, op.o[0], &a) || !c.Read(op, op.o[1], &b)) return;
  const unsigned size = op.o[0].size;
  a &= SizeMask(size);
  b &= SizeMask(size);
  const uint64_t r = (a + b) & SizeMask(size);
  if (!c.Write(op, op.o[0], r)) return;
  c.Write(op, op.o[1], a);
  if (op.o[0].kind == kOpReg && op.o[0].reg == op.o[1].reg && op.o[0].high8 == op.o[1].high8) {
    c.Write(op, op.o[0], r);
  }
  SetFlags(c, kArith, AddFlags(a, b, r, size, false));
}

void OpCmpxchg(CpuCore& c, const Op& op) {
  uint64_t d, src;
  if (!c.Read(op, op.o[0], &d) || !c.Read(op, op.o[1], &src)) return;
  const unsigned size = op.o[0].size;
  const uint64_t m = SizeMask(size);
  d &= m;
  const uint64_t acc = c.GetReg(kRax, size);
  const uint64_t r = (acc - d) & m;
  const uint64_t f = SubFlags(acc, d, r, size, false);
  if (acc == d) {
    if (!c.Write(op, op.o[0], src)) return;
  } else {
    // The destination is written back even when unequal (the locked cycle always writes).
    if (op.o[0].kind == kOpMem && !c.Write(op, op.o[0], d)) return;
    c.SetReg(kRax, size, d);
  }
  SetFlags(c, kArith, f);
}

void OpCmpxchgWide(CpuCore& c, const Op& op) {
  const Operand& o = op.o[0];
  if (o.kind != kOpMem) return c.Ud();
  const uint64_t ea = c.EffectiveAddress(op, o);
  if (o.size == 16) {
    if (ea & 15) return c.Gp(0);
    uint64_t lo, hi;
    if (!c.ReadSeg(o.seg, ea, 8, &lo) || !c.ReadSeg(o.seg, ea + 8, 8, &hi)) return;
    if (!c.ProbeWrite(o.seg, ea, 8) || !c.ProbeWrite(o.seg, ea + 8, 8)) return;
    const bool eq = lo == c.s.gpr[kRax] && hi == c.s.gpr[kRdx];
    uint64_t nlo = eq ? c.s.gpr[kRbx] : lo, nhi = eq ? c.s.gpr[kRcx] : hi;
    if (!c.WriteSeg(o.seg, ea, 8, nlo) || !c.WriteSeg(o.seg, ea + 8, 8, nhi)) return;
    if (!eq) {
      c.s.gpr[kRax] = lo;
      c.s.gpr[kRdx] = hi;
    }
    SetFlags(c, kFlagZf, eq ? kFlagZf : 0);
    return;
  }
  uint64_t v;
  if (!c.ReadSeg(o.seg, ea, 8, &v)) return;
  const uint64_t cmp = (c.s.gpr[kRax] & 0xffffffffu) | (c.s.gpr[kRdx] << 32);
  const bool eq = v == cmp;
  const uint64_t nv = eq ? ((c.s.gpr[kRbx] & 0xffffffffu) | (c.s.gpr[kRcx] << 32)) : v;
  if (!c.WriteSeg(o.seg, ea, 8, nv)) return;
  if (!eq) {
    c.SetReg(kRax, 4, v & 0xffffffffu);
    c.SetReg(kRdx, 4, v >> 32);
  }
  SetFlags(c, kFlagZf, eq ? kFlagZf : 0);
}

// Flag-only instructions.
void OpClc(CpuCore& c, const Op&) { c.s.rflags &= ~kFlagCf; }
void OpStc(CpuCore& c, const Op&) { c.s.rflags |= kFlagCf; }
void OpCmc(CpuCore& c, const Op&) { c.s.rflags ^= kFlagCf; }
void OpCld(CpuCore& c, const Op&) { c.s.rflags &= ~kFlagDf; }
void OpStd(CpuCore& c, const Op&) { c.s.rflags |= kFlagDf; }
void OpLahf(CpuCore& c, const Op&) {
  c.SetReg(kRax, 1, (c.s.rflags & 0xd5) | 2, true);
}
void OpSahf(CpuCore& c, const Op&) {
  SetFlags(c, 0xd5, c.GetReg(kRax, 1, true));
}

// BCD adjust (16/32-bit modes only; Zydis rejects them in 64-bit mode).
void OpDaa(CpuCore& c, const Op&) {
  uint64_t al = c.GetReg(kRax, 1), f = c.s.rflags;
  const uint64_t old_al = al;
  const bool old_cf = f & kFlagCf;
  uint64_t nf = 0;
  if ((al & 0xf) > 9 || (f & kFlagAf)) { al = (al + 6) & 0xff; nf |= kFlagAf; }
  if (old_al > 0x99 || old_cf) { al = (al + 0x60) & 0xff; nf |= kFlagCf; }
  c.SetReg(kRax, 1, al);
  SetFlags(c, kArith & ~kFlagOf, nf | Szp(al, 1));
}
void OpDas(CpuCore& c, const Op&) {
  uint64_t al = c.GetReg(kRax, 1), f = c.s.rflags;
  const uint64_t old_al = al;
  const bool old_cf = f & kFlagCf;
  uint64_t nf = 0;
  if ((al & 0xf) > 9 || (f & kFlagAf)) {
    nf |= kFlagAf;
    if (al < 6 || old_cf) nf |= kFlagCf;
    al = (al - 6) & 0xff;
  }
  if (old_al > 0x99 || old_cf) { al = (al - 0x60) & 0xff; nf |= kFlagCf; }
  c.SetReg(kRax, 1, al);
  SetFlags(c, kArith & ~kFlagOf, nf | Szp(al, 1));
}
template <bool kAdd>
void OpAaaAas(CpuCore& c, const Op&) {
  uint64_t ax = c.GetReg(kRax, 2);
  uint64_t nf = 0;
  if ((ax & 0xf) > 9 || (c.s.rflags & kFlagAf)) {
    if (kAdd) ax = ax + 0x106;
    else ax = (ax - 0x106) & 0xffff;  // SDM: AX <- AX - 6 (AL borrows from AH); AH <- AH - 1
    nf = kFlagAf | kFlagCf;
  }
  ax &= 0xff0f;
  c.SetReg(kRax, 2, ax);
  SetFlags(c, kFlagAf | kFlagCf, nf);
}
void OpAam(CpuCore& c, const Op& op) {
  const uint64_t base = op.o[0].disp & 0xff;
  if (base == 0) return c.FaultNoErr(0);
  const uint64_t al = c.GetReg(kRax, 1);
  const uint64_t nal = al % base;
  c.SetReg(kRax, 2, ((al / base) << 8) | nal);
  SetFlags(c, kArith, Szp(nal, 1));
}
void OpAad(CpuCore& c, const Op& op) {
  const uint64_t base = op.o[0].disp & 0xff;
  const uint64_t ax = c.GetReg(kRax, 2);
  const uint64_t al = ((ax & 0xff) + ((ax >> 8) & 0xff) * base) & 0xff;
  c.SetReg(kRax, 2, al);
  SetFlags(c, kArith, Szp(al, 1));
}

}  // namespace

void RegisterAlu(Handler* t) {
  t[ZYDIS_MNEMONIC_ADD] = OpAlu<kAdd>;
  t[ZYDIS_MNEMONIC_OR] = OpAlu<kOr>;
  t[ZYDIS_MNEMONIC_ADC] = OpAlu<kAdc>;
  t[ZYDIS_MNEMONIC_SBB] = OpAlu<kSbb>;
  t[ZYDIS_MNEMONIC_AND] = OpAlu<kAnd>;
  t[ZYDIS_MNEMONIC_SUB] = OpAlu<kSub>;
  t[ZYDIS_MNEMONIC_XOR] = OpAlu<kXor>;
  t[ZYDIS_MNEMONIC_CMP] = OpAlu<kCmp>;
  t[ZYDIS_MNEMONIC_TEST] = OpAlu<kTest>;
  t[ZYDIS_MNEMONIC_INC] = OpIncDec<true>;
  t[ZYDIS_MNEMONIC_DEC] = OpIncDec<false>;
  t[ZYDIS_MNEMONIC_NEG] = OpNeg;
  t[ZYDIS_MNEMONIC_NOT] = OpNot;
  t[ZYDIS_MNEMONIC_SHL] = OpShift<kShl>;
  t[ZYDIS_MNEMONIC_SHR] = OpShift<kShr>;
  t[ZYDIS_MNEMONIC_SAR] = OpShift<kSar>;
  t[ZYDIS_MNEMONIC_ROL] = OpShift<kRol>;
  t[ZYDIS_MNEMONIC_ROR] = OpShift<kRor>;
  t[ZYDIS_MNEMONIC_RCL] = OpShift<kRcl>;
  t[ZYDIS_MNEMONIC_RCR] = OpShift<kRcr>;
  t[ZYDIS_MNEMONIC_SHLD] = OpShiftDouble<true>;
  t[ZYDIS_MNEMONIC_SHRD] = OpShiftDouble<false>;
  t[ZYDIS_MNEMONIC_XADD] = OpXadd;
  t[ZYDIS_MNEMONIC_CMPXCHG] = OpCmpxchg;
  t[ZYDIS_MNEMONIC_CMPXCHG8B] = OpCmpxchgWide;
  t[ZYDIS_MNEMONIC_CMPXCHG16B] = OpCmpxchgWide;
  t[ZYDIS_MNEMONIC_CLC] = OpClc;
  t[ZYDIS_MNEMONIC_STC] = OpStc;
  t[ZYDIS_MNEMONIC_CMC] = OpCmc;
  t[ZYDIS_MNEMONIC_CLD] = OpCld;
  t[ZYDIS_MNEMONIC_STD] = OpStd;
  t[ZYDIS_MNEMONIC_LAHF] = OpLahf;
  t[ZYDIS_MNEMONIC_SAHF] = OpSahf;
  t[ZYDIS_MNEMONIC_DAA] = OpDaa;
  t[ZYDIS_MNEMONIC_DAS] = OpDas;
  t[ZYDIS_MNEMONIC_AAA] = OpAaaAas<true>;
  t[ZYDIS_MNEMONIC_AAS] = OpAaaAas<false>;
  t[ZYDIS_MNEMONIC_AAM] = OpAam;
  t[ZYDIS_MNEMONIC_AAD] = OpAad;
}

}  // namespace vmrr
