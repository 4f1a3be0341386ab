// Multiply and divide: MUL, IMUL (one, two and three operands), DIV, IDIV with #DE.
// Undefined flags follow QEMU: SF/ZF/PF from the low half of the product, AF=0; DIV/IDIV
// leave the flags unchanged.
#include <Zydis/Zydis.h>

#include "hv-hooks/cpu/core.h"

namespace vmrr {
namespace {

using u128 = unsigned __int128;
using i128 = __int128;

void SetMulFlags(CpuCore& c, uint64_t low, unsigned size, bool overflow) {
  uint64_t f = 0;
  low &= SizeMask(size);
  if (overflow) f |= kFlagCf | kFlagOf;
  if (low == 0) f |= kFlagZf;
  if (low & SignBit(size)) f |= kFlagSf;
  if (Parity(low)) f |= kFlagPf;
  const uint64_t mask = kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagOf;
  c.s.rflags = (c.s.rflags & ~mask) | f;
}

// Stores a double-width result in AX, DX:AX, EDX:EAX or RDX:RAX.
void StoreWide(CpuCore& c, unsigned size, uint64_t lo, uint64_t hi) {
  if (size == 1) {
    c.SetReg(kRax, 2, (lo & 0xff) | ((hi & 0xff) << 8));
  } else {
    c.SetReg(kRax, size, lo);
    c.SetReg(kRdx, size, hi);
  }
}

void OpMul(CpuCore& c, const Op& op) {
  uint64_t b;
  if (!c.Read(op, op.o[0], &b)) return;
  const unsigned size = op.o[0].size;
  const uint64_t m = SizeMask(size);
  const u128 p = static_cast<u128>(c.GetReg(kRax, size)) * (b & m);
  const uint64_t lo = static_cast<uint64_t>(p) & m;
  const uint64_t hi = size == 8 ? static_cast<uint64_t>(p >> 64)
                                : static_cast<uint64_t>(p >> (8 * size)) & m;
  StoreWide(c, size, lo, hi);
  SetMulFlags(c, lo, size, hi != 0);
}

void OpImul(CpuCore& c, const Op& op) {
  if (op.nops == 1) {
    uint64_t b;
    if (!c.Read(op, op.o[0], &b)) return;
    const unsigned size = op.o[0].size;
    const i128 p = static_cast<i128>(SignExtend(c.GetReg(kRax, size), size)) *
                   SignExtend(b, size);
    const uint64_t m = SizeMask(size);
    const uint64_t lo = static_cast<uint64_t>(p) & m;
    const uint64_t hi = size == 8 ? static_cast<uint64_t>(p >> 64)
                                  : static_cast<uint64_t>(p >> (8 * size)) & m;
    StoreWide(c, size, lo, hi);
    SetMulFlags(c, lo, size, p != static_cast<i128>(SignExtend(lo, size)));
    return;
  }
  uint64_t a, b;
  const Operand& s1 = op.nops == 3 ? op.o[1] : op.o[0];
  const Operand& s2 = op.nops == 3 ? op.o[2] : op.o[1];
  if (!c.Read(op, s1, &a) || !c.Read(op, s2, &b)) return;
  const unsigned size = op.o[0].size;
  const i128 p = static_cast<i128>(SignExtend(a, size)) * SignExtend(b, size);
  const uint64_t lo = static_cast<uint64_t>(p) & SizeMask(size);
  c.SetReg(op.o[0].reg, size, lo);
  SetMulFlags(c, lo, size, p != static_cast<i128>(SignExtend(lo, size)));
}

void OpDiv(CpuCore& c, const Op& op) {
  uint64_t b;
  if (!c.Read(op, op.o[0], &b)) return;
  const unsigned size = op.o[0].size;
  const uint64_t m = SizeMask(size);
  b &= m;
  if (b == 0) return c.FaultNoErr(0);
  u128 n;
  if (size == 1) n = c.GetReg(kRax, 2);
  else n = (static_cast<u128>(c.GetReg(kRdx, size)) << (8 * size)) | c.GetReg(kRax, size);
  const u128 q = n / b, r = n % b;
  if (q > m) return c.FaultNoErr(0);
  StoreWide(c, size, static_cast<uint64_t>(q), static_cast<uint64_t>(r));
}

void OpIdiv(CpuCore& c, const Op& op) {
  uint64_t bv;
  if (!c.Read(op, op.o[0], &bv)) return;
  const unsigned size = op.o[0].size;
  const int64_t b = SignExtend(bv, size);
  if (b == 0) return c.FaultNoErr(0);
  i128 n;
  if (size == 1) {
    n = static_cast<int16_t>(c.GetReg(kRax, 2));
  } else {
    const u128 un = (static_cast<u128>(c.GetReg(kRdx, size)) << (8 * size)) | c.GetReg(kRax, size);
    const unsigned bits = 16 * size;
    n = bits == 128 ? static_cast<i128>(un)
                    : static_cast<i128>(un << (128 - bits)) >> (128 - bits);
  }
  // INT128_MIN / -1 cannot occur: n has at most 128 significant bits only for size 8, where
  // the quotient check below rejects it before overflow (computed on magnitudes).
  const i128 lim = static_cast<i128>(1) << (8 * size - 1);
  if (size == 8 && b == -1 && n == (static_cast<i128>(1) << 127)) return c.FaultNoErr(0);
  const i128 q = n / b, r = n % b;
  if (q >= lim || q < -lim) return c.FaultNoErr(0);
  StoreWide(c, size, static_cast<uint64_t>(q), static_cast<uint64_t>(r));
}

}  // namespace

void RegisterMulDiv(Handler* t) {
  t[ZYDIS_MNEMONIC_MUL] = OpMul;
  t[ZYDIS_MNEMONIC_IMUL] = OpImul;
  t[ZYDIS_MNEMONIC_DIV] = OpDiv;
  t[ZYDIS_MNEMONIC_IDIV] = OpIdiv;
}

}  // namespace vmrr
