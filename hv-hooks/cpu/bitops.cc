// Bit operations: BT/BTS/BTR/BTC (incl. memory bit strings), BSF/BSR, TZCNT/LZCNT/POPCNT,
// BMI1 (ANDN, BEXTR, BLSI, BLSMSK, BLSR), SETcc, CMOVcc, BSWAP, MOVBE.
#include <Zydis/Zydis.h>

#include "hv-hooks/cpu/core.h"

namespace vmrr {
namespace {

constexpr uint64_t kArith = kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagOf;

inline void SetFlags(CpuCore& c, uint64_t mask, uint64_t f) {
  c.s.rflags = (c.s.rflags & ~mask) | (f & mask);
}
inline uint64_t Sz(uint64_t r, unsigned size) {
  r &= SizeMask(size);
  return (r == 0 ? kFlagZf : 0) | ((r & SignBit(size)) ? kFlagSf : 0);
}

enum BtKind { kBt, kBts, kBtr, kBtc };

template <BtKind K>
void OpBt(CpuCore& c, const Op& op) {
  const Operand& d = op.o[0];
  const unsigned size = d.size, bits = 8 * size;
  uint64_t off;
  if (!c.Read(op, op.o[1], &off)) return;
  uint64_t v, bit;
  uint64_t ea = 0;
  if (d.kind == kOpMem) {
    ea = c.EffectiveAddress(op, d);
    if (op.o[1].kind == kOpReg) {
      const int64_t soff = SignExtend(off, op.o[1].size);
      ea = (ea + static_cast<uint64_t>((soff >> (bits == 64 ? 6 : bits == 32 ? 5 : 4)) * static_cast<int64_t>(size))) &
           c.AddrMask(op.asize);
    }
    bit = off & (bits - 1);
    if (!c.ReadSeg(d.seg, ea, size, &v)) return;
  } else {
    bit = off & (bits - 1);
    v = c.GetReg(d.reg, size);
  }
  const bool old = (v >> bit) & 1;
  if (K != kBt) {
    uint64_t nv = K == kBts ? v | (uint64_t{1} << bit)
                : K == kBtr ? v & ~(uint64_t{1} << bit)
                            : v ^ (uint64_t{1} << bit);
    if (d.kind == kOpMem) {
      if (!c.WriteSeg(d.seg, ea, size, nv)) return;
    } else {
      c.SetReg(d.reg, size, nv);
    }
  }
  SetFlags(c, kFlagCf, old ? kFlagCf : 0);
}

template <bool kForward>
void OpBsf(CpuCore& c, const Op& op) {
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  const unsigned size = op.o[0].size;
  v &= SizeMask(size);
  uint64_t f = Sz(v, size) | (Parity(v) ? kFlagPf : 0);
  if (v != 0) {
    const uint64_t r = kForward ? __builtin_ctzll(v) : 63 - __builtin_clzll(v);
    c.SetReg(op.o[0].reg, size, r);
  }
  SetFlags(c, kArith, f);
}

template <bool kTz>
void OpCount(CpuCore& c, const Op& op) {
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  const unsigned size = op.o[0].size, bits = 8 * size;
  v &= SizeMask(size);
  uint64_t r;
  if (v == 0) r = bits;
  else r = kTz ? __builtin_ctzll(v) : __builtin_clzll(v) - (64 - bits);
  c.SetReg(op.o[0].reg, size, r);
  SetFlags(c, kArith, (v == 0 ? kFlagCf : 0) | Sz(r, size));
}

void OpPopcnt(CpuCore& c, const Op& op) {
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  const unsigned size = op.o[0].size;
  v &= SizeMask(size);
  c.SetReg(op.o[0].reg, size, __builtin_popcountll(v));
  SetFlags(c, kArith, v == 0 ? kFlagZf : 0);
}

void OpAndn(CpuCore& c, const Op& op) {
  uint64_t a, b;
  if (!c.Read(op, op.o[1], &a) || !c.Read(op, op.o[2], &b)) return;
  const unsigned size = op.o[0].size;
  const uint64_t r = ~a & b & SizeMask(size);
  c.SetReg(op.o[0].reg, size, r);
  SetFlags(c, kArith, Sz(r, size) | (Parity(r) ? kFlagPf : 0));
}

void OpBextr(CpuCore& c, const Op& op) {
  uint64_t a, ctl;
  if (!c.Read(op, op.o[1], &a) || !c.Read(op, op.o[2], &ctl)) return;
  const unsigned size = op.o[0].size, bits = 8 * size;
  a &= SizeMask(size);
  const unsigned start = ctl & 0xff, len = (ctl >> 8) & 0xff;
  uint64_t r = start >= bits ? 0 : a >> start;
  if (len < 64) r &= (uint64_t{1} << len) - 1;
  c.SetReg(op.o[0].reg, size, r);
  SetFlags(c, kArith, r == 0 ? kFlagZf : 0);
}

enum BlsKind { kBlsi, kBlsmsk, kBlsr };
template <BlsKind K>
void OpBls(CpuCore& c, const Op& op) {
  uint64_t a;
  if (!c.Read(op, op.o[1], &a)) return;
  const unsigned size = op.o[0].size;
  a &= SizeMask(size);
  uint64_t r = K == kBlsi ? (0 - a) & a : K == kBlsmsk ? (a - 1) ^ a : (a - 1) & a;
  r &= SizeMask(size);
  c.SetReg(op.o[0].reg, size, r);
  const bool cf = K == kBlsi ? a != 0 : a == 0;
  SetFlags(c, kArith, Sz(r, size) | (cf ? kFlagCf : 0));
}

void OpSetcc(CpuCore& c, const Op& op) { c.Write(op, op.o[0], c.Cond(op.cond) ? 1 : 0); }

void OpCmovcc(CpuCore& c, const Op& op) {
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  const unsigned size = op.o[0].size;
  if (c.Cond(op.cond)) c.SetReg(op.o[0].reg, size, v);
  else if (size == 4) c.SetReg(op.o[0].reg, 4, c.GetReg(op.o[0].reg, 4));  // zero-extends
}

void OpBswap(CpuCore& c, const Op& op) {
  const unsigned size = op.o[0].size;
  const uint8_t r = op.o[0].reg;
  if (size == 8) c.s.gpr[r] = __builtin_bswap64(c.s.gpr[r]);
  else if (size == 4) c.SetReg(r, 4, __builtin_bswap32(static_cast<uint32_t>(c.s.gpr[r])));
  else c.SetReg(r, 2, 0);  // 16-bit BSWAP is undefined; hardware and QEMU give 0
}

void OpMovbe(CpuCore& c, const Op& op) {
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  const unsigned size = op.o[0].size;
  if (size == 8) v = __builtin_bswap64(v);
  else if (size == 4) v = __builtin_bswap32(static_cast<uint32_t>(v));
  else v = __builtin_bswap16(static_cast<uint16_t>(v));
  c.Write(op, op.o[0], v);
}

}  // namespace

void RegisterBitOps(Handler* t) {
  t[ZYDIS_MNEMONIC_BT] = OpBt<kBt>;
  t[ZYDIS_MNEMONIC_BTS] = OpBt<kBts>;
  t[ZYDIS_MNEMONIC_BTR] = OpBt<kBtr>;
  t[ZYDIS_MNEMONIC_BTC] = OpBt<kBtc>;
  t[ZYDIS_MNEMONIC_BSF] = OpBsf<true>;
  t[ZYDIS_MNEMONIC_BSR] = OpBsf<false>;
  t[ZYDIS_MNEMONIC_TZCNT] = OpCount<true>;
  t[ZYDIS_MNEMONIC_LZCNT] = OpCount<false>;
  t[ZYDIS_MNEMONIC_POPCNT] = OpPopcnt;
  t[ZYDIS_MNEMONIC_ANDN] = OpAndn;
  t[ZYDIS_MNEMONIC_BEXTR] = OpBextr;
  t[ZYDIS_MNEMONIC_BLSI] = OpBls<kBlsi>;
  t[ZYDIS_MNEMONIC_BLSMSK] = OpBls<kBlsmsk>;
  t[ZYDIS_MNEMONIC_BLSR] = OpBls<kBlsr>;
  t[ZYDIS_MNEMONIC_BSWAP] = OpBswap;
  t[ZYDIS_MNEMONIC_MOVBE] = OpMovbe;
  for (int m : {ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB,
                ZYDIS_MNEMONIC_SETNB, ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ,
                ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE, ZYDIS_MNEMONIC_SETS,
                ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETNP,
                ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE,
                ZYDIS_MNEMONIC_SETNLE}) {
    t[m] = OpSetcc;
  }
  for (int m : {ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB,
                ZYDIS_MNEMONIC_CMOVNB, ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ,
                ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE, ZYDIS_MNEMONIC_CMOVS,
                ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVNP,
                ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE,
                ZYDIS_MNEMONIC_CMOVNLE}) {
    t[m] = OpCmovcc;
  }
}

}  // namespace vmrr
