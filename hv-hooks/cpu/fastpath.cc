// Specialised handlers for the hottest register-only forms (MOV/ALU/INC/DEC on 32- and 64-bit
// registers), chosen once at decode time. They compute exactly what the generic handlers in
// alu.cc and datamove.cc compute, without the operand-kind switches; the differential tests
// run both paths.
#include <Zydis/Zydis.h>

#include <cstring>
#include <utility>

#include "hv-hooks/cpu/core.h"

namespace vmrr {
namespace {

constexpr uint64_t kArith = kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagOf;

template <unsigned N>
constexpr uint64_t Mask() {
  return N == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * N)) - 1;
}
template <unsigned N>
constexpr uint64_t Sign() {
  return uint64_t{1} << (8 * N - 1);
}

template <unsigned N>
inline uint64_t Szp(uint64_t r) {
  uint64_t f = 0;
  if (r == 0) f |= kFlagZf;
  if (r & Sign<N>()) f |= kFlagSf;
  if (!__builtin_parity(static_cast<unsigned>(r & 0xff))) f |= kFlagPf;
  return f;
}

enum FastAluKind { kAdd, kOr, kAnd, kSub, kXor, kCmp, kTest };

// The result (in *out) and the arithmetic flags of a K b on N-byte operands (both masked).
template <FastAluKind K, unsigned N>
inline uint64_t AluFlags(uint64_t a, uint64_t b, uint64_t* out) {
  uint64_t r, f;
  switch (K) {
    case kAdd:
      r = (a + b) & Mask<N>();
      f = Szp<N>(r);
      if (r < a) f |= kFlagCf;
      if (((a ^ r) & (b ^ r)) & Sign<N>()) f |= kFlagOf;
      if ((a ^ b ^ r) & 0x10) f |= kFlagAf;
      break;
    case kSub:
    case kCmp:
      r = (a - b) & Mask<N>();
      f = Szp<N>(r);
      if (a < b) f |= kFlagCf;
      if (((a ^ b) & (a ^ r)) & Sign<N>()) f |= kFlagOf;
      if ((a ^ b ^ r) & 0x10) f |= kFlagAf;
      break;
    case kAnd:
    case kTest:
      r = a & b;
      f = Szp<N>(r);
      break;
    case kOr:
      r = a | b;
      f = Szp<N>(r);
      break;
    case kXor:
      r = a ^ b;
      f = Szp<N>(r);
      break;
  }
  *out = r;
  return f;
}

template <FastAluKind K, unsigned N, bool kImm>
void FastAlu(CpuCore& c, const Op& op) {
  uint64_t& dst = c.s.gpr[op.o[0].reg];
  const uint64_t a = dst & Mask<N>();
  const uint64_t b = (kImm ? op.o[1].disp : c.s.gpr[op.o[1].reg]) & Mask<N>();
  uint64_t r;
  const uint64_t f = AluFlags<K, N>(a, b, &r);
  if (K != kCmp && K != kTest) dst = r;  // 32-bit results zero-extend
  c.s.rflags = (c.s.rflags & ~kArith) | f;
}

template <bool kInc, unsigned N>
void FastIncDec(CpuCore& c, const Op& op) {
  uint64_t& dst = c.s.gpr[op.o[0].reg];
  const uint64_t a = dst & Mask<N>();
  const uint64_t r = (kInc ? a + 1 : a - 1) & Mask<N>();
  dst = r;
  uint64_t f = Szp<N>(r);
  if ((a ^ 1 ^ r) & 0x10) f |= kFlagAf;
  if (kInc ? r == Sign<N>() : a == Sign<N>()) f |= kFlagOf;
  constexpr uint64_t kMask = kArith & ~kFlagCf;
  c.s.rflags = (c.s.rflags & ~kMask) | f;
}

// SHL/SHR/SAR of a 32/64-bit register by an immediate (or the implied 1): alu.cc's OpShift for
// those forms (a count of 0 changes no flag; a 32-bit destination is still written, so its
// upper half is cleared).
enum FastShiftKind { kShlK, kShrK, kSarK };

template <FastShiftKind K, unsigned N>
void FastShift(CpuCore& c, const Op& op) {
  uint64_t& dst = c.s.gpr[op.o[0].reg];
  const uint64_t a = dst & Mask<N>();
  const unsigned cnt = static_cast<unsigned>(op.nops > 1 ? op.o[1].disp : 1) & (N == 8 ? 0x3f : 0x1f);
  if (cnt == 0) {
    dst = a;
    return;
  }
  uint64_t tmp, r, f = 0;
  if (K == kShlK) {
    tmp = (a << (cnt - 1)) & Mask<N>();
    r = (a << cnt) & Mask<N>();
    if (tmp & Sign<N>()) f |= kFlagCf;
  } else if (K == kShrK) {
    tmp = a >> (cnt - 1);
    r = a >> cnt;
    if (tmp & 1) f |= kFlagCf;
  } else {
    const int64_t sa = SignExtend(a, N);
    tmp = static_cast<uint64_t>(sa >> (cnt - 1)) & Mask<N>();
    r = static_cast<uint64_t>(sa >> cnt) & Mask<N>();
    if (tmp & 1) f |= kFlagCf;
  }
  if ((tmp ^ r) & Sign<N>()) f |= kFlagOf;
  f |= Szp<N>(r);
  dst = r;
  c.s.rflags = (c.s.rflags & ~kArith) | f;
}

// IMUL r32/64, r32/64 and IMUL r32/64, r32/64, imm: muldiv.cc's OpImul for those forms (CF and
// OF on a truncated product; SF, ZF, PF from the result, AF cleared, as SetMulFlags does).
template <unsigned N, bool kThree>
void FastImul(CpuCore& c, const Op& op) {
  const int64_t a = SignExtend(c.s.gpr[op.o[kThree ? 1 : 0].reg] & Mask<N>(), N);
  const int64_t b = SignExtend((kThree ? op.o[2].disp : c.s.gpr[op.o[1].reg]) & Mask<N>(), N);
  const __int128 p = static_cast<__int128>(a) * b;
  const uint64_t lo = static_cast<uint64_t>(p) & Mask<N>();
  c.s.gpr[op.o[0].reg] = lo;
  uint64_t f = Szp<N>(lo);
  if (p != static_cast<__int128>(SignExtend(lo, N))) f |= kFlagCf | kFlagOf;
  c.s.rflags = (c.s.rflags & ~kArith) | f;
}

// The same operations when the block's dead-flag pass (DeadFlagPass) proved that nothing reads
// the flags they write: only the result is computed.
template <FastAluKind K, unsigned N, bool kImm>
void FastAluNoFlags(CpuCore& c, const Op& op) {
  uint64_t& dst = c.s.gpr[op.o[0].reg];
  const uint64_t b = kImm ? op.o[1].disp : c.s.gpr[op.o[1].reg];
  switch (K) {
    case kAdd: dst = (dst + b) & Mask<N>(); break;
    case kSub: dst = (dst - b) & Mask<N>(); break;
    case kAnd: dst = (dst & b) & Mask<N>(); break;
    case kOr: dst = (dst | b) & Mask<N>(); break;
    case kXor: dst = (dst ^ b) & Mask<N>(); break;
    case kCmp:
    case kTest: break;  // flags only, and they are dead
  }
}

template <bool kInc, unsigned N>
void FastIncDecNoFlags(CpuCore& c, const Op& op) {
  uint64_t& dst = c.s.gpr[op.o[0].reg];
  dst = (kInc ? dst + 1 : dst - 1) & Mask<N>();
}

template <unsigned N, bool kImm>
void FastMov(CpuCore& c, const Op& op) {
  c.s.gpr[op.o[0].reg] = (kImm ? op.o[1].disp : c.s.gpr[op.o[1].reg]) & Mask<N>();
}

// MOV between a register and memory in 64-bit mode (segment base ignored): a TLB hit on a RAM
// page is served here; anything else (miss, MMIO, page-crossing, non-canonical) takes the
// generic path, which walks, faults and sets A/D bits.
template <unsigned N>
[[gnu::always_inline]] inline bool FastLinear(const CpuCore& c, const Op& op, const Operand& o, uint64_t* lin) {
  uint64_t a = o.disp;
  if (o.base == kRipReg) a += c.next_rip;
  else if (o.base != kNoReg) a += c.s.gpr[o.base];
  if (o.index != kNoReg) a += c.s.gpr[o.index] * o.scale;
  if (op.asize == 4) a &= 0xffffffffu;
  if (o.seg == kFs || o.seg == kGs) a += c.s.seg[o.seg].base;  // the only bases 64-bit mode uses
  *lin = a;
  return static_cast<uint64_t>(static_cast<int64_t>(a << 16) >> 16) == a &&
         (a & 0xfff) + N <= 4096;
}

template <unsigned N>
void FastLoad64(CpuCore& c, const Op& op) {
  uint64_t lin;
  if (FastLinear<N>(c, op, op.o[1], &lin)) {
    const TlbEntry& e = c.tlb[TlbIndex(lin >> 12)];
    const uint8_t need = c.s.cpl == 3 ? kRightR_U : kRightR_S;
    if (e.vpage == (lin >> 12) && (e.rights & need) && e.host) {
      uint64_t v = 0;
      std::memcpy(&v, e.host + (lin & 0xfff), N);
      c.s.gpr[op.o[0].reg] = v;  // 32-bit loads zero-extend
      return;
    }
  }
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  c.SetReg(op.o[0].reg, N, v);
}

// Reads the N-byte memory operand o in 64-bit mode: a TLB hit on RAM inline, anything else
// through the generic path (which may fault: false).
template <unsigned N>
[[gnu::always_inline]] inline bool FastRead64(CpuCore& c, const Op& op, const Operand& o, uint64_t* v) {
  uint64_t lin;
  if (FastLinear<N>(c, op, o, &lin)) {
    const TlbEntry& e = c.tlb[TlbIndex(lin >> 12)];
    const uint8_t need = c.s.cpl == 3 ? kRightR_U : kRightR_S;
    if (e.vpage == (lin >> 12) && (e.rights & need) && e.host) [[likely]] {
      *v = LoadN(e.host + (lin & 0xfff), N);
      return true;
    }
  }
  if (!c.Read(op, o, v)) return false;
  *v &= Mask<N>();
  return true;
}

// MOVZX/MOVSX r32/r64, m8/m16 and MOVSXD r64, m32 in 64-bit mode: datamove.cc's OpMovzx and
// OpMovsx for those forms.
template <unsigned S, bool kSigned, unsigned D>
void FastLoadExt64(CpuCore& c, const Op& op) {
  uint64_t v;
  if (!FastRead64<S>(c, op, op.o[1], &v)) return;
  const uint64_t x = kSigned ? static_cast<uint64_t>(SignExtend(v, S)) : v;
  c.s.gpr[op.o[0].reg] = x & Mask<D>();  // a 32-bit destination zero-extends
}

template <unsigned S, bool kSigned>
Handler LoadExtFor(unsigned d) {
  return d == 8 ? FastLoadExt64<S, kSigned, 8> : FastLoadExt64<S, kSigned, 4>;
}

// ALU r, [m] (ADD/OR/AND/SUB/XOR/CMP) and CMP/TEST [m], r/imm in 64-bit mode: alu.cc's OpAlu
// for those forms (the load first; a faulting load changes nothing).
template <FastAluKind K, unsigned N>
void FastAluRegMem(CpuCore& c, const Op& op) {
  uint64_t b;
  if (!FastRead64<N>(c, op, op.o[1], &b)) return;
  uint64_t& dst = c.s.gpr[op.o[0].reg];
  uint64_t r;
  const uint64_t f = AluFlags<K, N>(dst & Mask<N>(), b, &r);
  if (K != kCmp) dst = r;
  c.s.rflags = (c.s.rflags & ~kArith) | f;
}

template <FastAluKind K, unsigned N, bool kImm>
void FastCmpMem(CpuCore& c, const Op& op) {
  uint64_t a;
  if (!FastRead64<N>(c, op, op.o[0], &a)) return;
  const uint64_t b = (kImm ? op.o[1].disp : c.s.gpr[op.o[1].reg]) & Mask<N>();
  uint64_t r;
  c.s.rflags = (c.s.rflags & ~kArith) | AluFlags<K, N>(a, b, &r);
}

template <FastAluKind K>
Handler AluRegMemFor(unsigned n) {
  return n == 8 ? FastAluRegMem<K, 8> : FastAluRegMem<K, 4>;
}
template <FastAluKind K>
Handler CmpMemFor(unsigned n, bool imm) {
  if (n == 8) return imm ? FastCmpMem<K, 8, true> : FastCmpMem<K, 8, false>;
  return imm ? FastCmpMem<K, 4, true> : FastCmpMem<K, 4, false>;
}

template <unsigned N>
void FastStore64(CpuCore& c, const Op& op) {
  uint64_t lin;
  const uint64_t v = c.s.gpr[op.o[1].reg];
  if (FastLinear<N>(c, op, op.o[0], &lin)) {
    const TlbEntry& e = c.tlb[TlbIndex(lin >> 12)];
    const uint8_t need = c.s.cpl == 3 ? kRightW_U : kRightW_S;
    if (e.vpage == (lin >> 12) && (e.rights & need) && e.host) {
      std::memcpy(e.host + (lin & 0xfff), &v, N);
      c.mem.NoteWrite(e.ppage + (lin & 0xfff), N);
      return;
    }
  }
  c.Write(op, op.o[0], v & Mask<N>());
}

// Jcc rel in 64-bit mode (the operand size is 64 bits there but with a 66H prefix): the
// condition as a constant, the target checked for canonical form as BranchTo does.
template <uint8_t CC>
void FastJcc64(CpuCore& c, const Op& op) {
  if (!c.Cond(CC)) return;
  const uint64_t t = c.next_rip + op.o[0].disp;
  if (!IsCanonical(t)) {
    c.Gp(0);
    return;
  }
  c.next_rip = t;
  c.end_block = true;
}

template <size_t... I>
Handler FastJccFor(uint8_t cc, std::index_sequence<I...>) {
  static constexpr Handler table[] = {FastJcc64<static_cast<uint8_t>(I)>...};
  return table[cc & 15];
}

bool IsJcc(unsigned mnemonic) {
  switch (mnemonic) {
    case ZYDIS_MNEMONIC_JO: case ZYDIS_MNEMONIC_JNO: case ZYDIS_MNEMONIC_JB: case ZYDIS_MNEMONIC_JNB:
    case ZYDIS_MNEMONIC_JZ: case ZYDIS_MNEMONIC_JNZ: case ZYDIS_MNEMONIC_JBE: case ZYDIS_MNEMONIC_JNBE:
    case ZYDIS_MNEMONIC_JS: case ZYDIS_MNEMONIC_JNS: case ZYDIS_MNEMONIC_JP: case ZYDIS_MNEMONIC_JNP:
    case ZYDIS_MNEMONIC_JL: case ZYDIS_MNEMONIC_JNL: case ZYDIS_MNEMONIC_JLE: case ZYDIS_MNEMONIC_JNLE:
      return true;
    default:
      return false;
  }
}

// PUSH r64 and POP r64 in 64-bit mode: datamove.cc's OpPush/OpPop for those forms (PUSH RSP
// pushes the value before the decrement; POP RSP leaves the value loaded), through the inline
// TLB-hit path of WriteSeg/ReadSeg.
void FastPush64(CpuCore& c, const Op& op) {
  const uint64_t sp = c.s.gpr[kRsp] - 8;
  if (!c.WriteSeg(kSs, sp, 8, c.s.gpr[op.o[0].reg])) return;
  c.s.gpr[kRsp] = sp;
}

void FastPop64(CpuCore& c, const Op& op) {
  const uint64_t sp = c.s.gpr[kRsp];
  uint64_t v;
  if (!c.ReadSeg(kSs, sp, 8, &v)) return;
  c.s.gpr[kRsp] = sp + 8;
  c.s.gpr[op.o[0].reg] = v;
}

// CALL rel and RET (C3) in 64-bit mode with the 64-bit operand size: control.cc's OpCall and
// OpRet for those forms (the target's canonical check before the push; on a faulting push or
// pop nothing changes).
void FastCallRel64(CpuCore& c, const Op& op) {
  const uint64_t t = c.next_rip + op.o[0].disp;
  if (!IsCanonical(t)) {
    c.Gp(0);
    return;
  }
  const uint64_t sp = c.s.gpr[kRsp] - 8;
  if (!c.WriteSeg(kSs, sp, 8, c.next_rip)) return;
  c.s.gpr[kRsp] = sp;
  c.next_rip = t;
  c.end_block = true;
}

void FastRet64(CpuCore& c, const Op&) {
  const uint64_t sp = c.s.gpr[kRsp];
  uint64_t t;
  if (!c.ReadSeg(kSs, sp, 8, &t)) return;
  if (!IsCanonical(t)) {
    c.Gp(0);
    return;
  }
  c.s.gpr[kRsp] = sp + 8;
  c.next_rip = t;
  c.end_block = true;
}

// A memory operand the 64-bit fast paths serve (any segment: FastLinear adds FS/GS bases).
bool FlatMem(const Operand& o) { return o.kind == kOpMem; }

bool PlainReg(const Operand& o) {
  return o.kind == kOpReg && !o.high8 && (o.size == 4 || o.size == 8);
}

// The register forms the fast handlers serve: a plain 32/64-bit destination register and, as
// a second operand, an immediate or a register of the same size.
struct RegForm {
  bool ok = false;  // destination is a plain register (no LOCK)
  unsigned n = 0;   // its size
  bool imm = false, reg = false;
};
RegForm RegFormOf(const Op& op) {
  RegForm f;
  if (op.lock || op.nops < 1 || !PlainReg(op.o[0])) return f;
  f.ok = true;
  f.n = op.o[0].size;
  const bool two = op.nops >= 2;
  f.imm = two && op.o[1].kind == kOpImm;
  f.reg = two && PlainReg(op.o[1]) && op.o[1].size == f.n;
  return f;
}

template <FastAluKind K>
Handler AluFor(unsigned n, bool imm) {
  if (n == 8) return imm ? FastAlu<K, 8, true> : FastAlu<K, 8, false>;
  return imm ? FastAlu<K, 4, true> : FastAlu<K, 4, false>;
}

template <FastAluKind K>
Handler AluNoFlagsFor(unsigned n, bool imm) {
  if (n == 8) return imm ? FastAluNoFlags<K, 8, true> : FastAluNoFlags<K, 8, false>;
  return imm ? FastAluNoFlags<K, 4, true> : FastAluNoFlags<K, 4, false>;
}

// What DeadFlagPass needs to know of one op.
struct FlagUse {
  bool transparent = false;  // cannot fault, stop the block, touch memory or read the flags
  uint64_t writes = 0;       // the arithmetic flags it writes
  Handler no_flags = nullptr;  // the same op without its flag update
};

FlagUse FlagUseOf(const Op& op, CpuMode mode) {
  FlagUse u;
  if (op.lock) return u;
  if ((op.mnemonic == ZYDIS_MNEMONIC_LEA || op.mnemonic == ZYDIS_MNEMONIC_NOP) &&
      op.fn == HandlerFor(op.mnemonic)) {
    u.transparent = true;
    return u;
  }
  const Handler fast = FastHandlerFor(op, mode);
  const RegForm f = RegFormOf(op);
  if (!fast || op.fn != fast || !f.ok) return u;
  const unsigned n = f.n;
  const bool imm = f.imm, reg = f.reg;
  if (op.nops >= 2 && !imm && !reg) return u;  // a memory source (FastAluRegMem, MOV loads)
  switch (op.mnemonic) {
    case ZYDIS_MNEMONIC_MOV:
      u.transparent = true;  // register or immediate source only (above)
      return u;
    case ZYDIS_MNEMONIC_ADD: u.no_flags = AluNoFlagsFor<kAdd>(n, imm); break;
    case ZYDIS_MNEMONIC_OR: u.no_flags = AluNoFlagsFor<kOr>(n, imm); break;
    case ZYDIS_MNEMONIC_AND: u.no_flags = AluNoFlagsFor<kAnd>(n, imm); break;
    case ZYDIS_MNEMONIC_SUB: u.no_flags = AluNoFlagsFor<kSub>(n, imm); break;
    case ZYDIS_MNEMONIC_XOR: u.no_flags = AluNoFlagsFor<kXor>(n, imm); break;
    case ZYDIS_MNEMONIC_CMP: u.no_flags = AluNoFlagsFor<kCmp>(n, imm); break;
    case ZYDIS_MNEMONIC_TEST: u.no_flags = AluNoFlagsFor<kTest>(n, imm); break;
    case ZYDIS_MNEMONIC_INC:
      u.no_flags = n == 8 ? FastIncDecNoFlags<true, 8> : FastIncDecNoFlags<true, 4>;
      u.transparent = true;
      u.writes = kArith & ~kFlagCf;
      return u;
    case ZYDIS_MNEMONIC_DEC:
      u.no_flags = n == 8 ? FastIncDecNoFlags<false, 8> : FastIncDecNoFlags<false, 4>;
      u.transparent = true;
      u.writes = kArith & ~kFlagCf;
      return u;
    default:
      return u;
  }
  u.transparent = true;
  u.writes = kArith;
  return u;
}

// The 64-bit mode forms with a memory source served by FastLoadExt64, FastAluRegMem and
// FastCmpMem, or nullptr.
Handler LoadOpHandlerFor(const Op& op, CpuMode mode) {
  if (mode != kModeLong64 || op.lock || op.nops < 2 || op.fn != HandlerFor(op.mnemonic)) return nullptr;
  const Operand& d = op.o[0];
  const Operand& src = op.o[1];
  if (PlainReg(d) && FlatMem(src)) {
    const unsigned n = d.size;
    switch (op.mnemonic) {
      case ZYDIS_MNEMONIC_MOVZX:
        if (src.size == 1) return LoadExtFor<1, false>(n);
        if (src.size == 2) return LoadExtFor<2, false>(n);
        return nullptr;
      case ZYDIS_MNEMONIC_MOVSX:
        if (src.size == 1) return LoadExtFor<1, true>(n);
        if (src.size == 2) return LoadExtFor<2, true>(n);
        return nullptr;
      case ZYDIS_MNEMONIC_MOVSXD:
        return n == 8 && src.size == 4 ? FastLoadExt64<4, true, 8> : nullptr;
      default:
        break;
    }
    if (src.size != n) return nullptr;
    switch (op.mnemonic) {
      case ZYDIS_MNEMONIC_ADD: return AluRegMemFor<kAdd>(n);
      case ZYDIS_MNEMONIC_OR: return AluRegMemFor<kOr>(n);
      case ZYDIS_MNEMONIC_AND: return AluRegMemFor<kAnd>(n);
      case ZYDIS_MNEMONIC_SUB: return AluRegMemFor<kSub>(n);
      case ZYDIS_MNEMONIC_XOR: return AluRegMemFor<kXor>(n);
      case ZYDIS_MNEMONIC_CMP: return AluRegMemFor<kCmp>(n);
      default: return nullptr;
    }
  }
  if (FlatMem(d) && (d.size == 4 || d.size == 8) &&
      (op.mnemonic == ZYDIS_MNEMONIC_CMP || op.mnemonic == ZYDIS_MNEMONIC_TEST)) {
    const bool imm = src.kind == kOpImm;
    if (!imm && !(PlainReg(src) && src.size == d.size)) return nullptr;
    return op.mnemonic == ZYDIS_MNEMONIC_CMP ? CmpMemFor<kCmp>(d.size, imm) : CmpMemFor<kTest>(d.size, imm);
  }
  return nullptr;
}

}  // namespace

Handler FastHandlerFor(const Op& op, CpuMode mode) {
  if (mode == kModeLong64 && (op.mnemonic == ZYDIS_MNEMONIC_PUSH || op.mnemonic == ZYDIS_MNEMONIC_POP) &&
      !op.lock && op.osize == 8 && op.nops >= 1 && op.o[0].kind == kOpReg && op.o[0].size == 8 &&
      !op.o[0].high8 && op.fn == HandlerFor(op.mnemonic)) {
    return op.mnemonic == ZYDIS_MNEMONIC_PUSH ? FastPush64 : FastPop64;
  }
  if (mode == kModeLong64 && op.mnemonic == ZYDIS_MNEMONIC_CALL && op.osize == 8 && !op.far_branch &&
      op.nops >= 1 && op.o[0].kind == kOpImm && op.fn == HandlerFor(op.mnemonic)) {
    return FastCallRel64;
  }
  if (mode == kModeLong64 && op.mnemonic == ZYDIS_MNEMONIC_RET && op.opcode == 0xc3 && op.osize == 8 &&
      op.fn == HandlerFor(op.mnemonic)) {
    return FastRet64;
  }
  if (mode == kModeLong64 && IsJcc(op.mnemonic) && op.osize == 8 && op.nops >= 1 &&
      op.o[0].kind == kOpImm && op.fn == HandlerFor(op.mnemonic)) {
    return FastJccFor(op.cond, std::make_index_sequence<16>{});
  }
  if (mode == kModeLong64 && !op.lock && op.mnemonic == ZYDIS_MNEMONIC_MOV && op.nops == 2) {
    if (PlainReg(op.o[0]) && FlatMem(op.o[1]) && op.o[1].size == op.o[0].size) {
      return op.o[0].size == 8 ? FastLoad64<8> : FastLoad64<4>;
    }
    if (FlatMem(op.o[0]) && PlainReg(op.o[1]) && op.o[0].size == op.o[1].size) {
      return op.o[1].size == 8 ? FastStore64<8> : FastStore64<4>;
    }
  }
  if (Handler h = LoadOpHandlerFor(op, mode)) return h;
  const RegForm f = RegFormOf(op);
  if (!f.ok) return nullptr;
  const unsigned n = f.n;
  const bool imm = f.imm, reg = f.reg;
  switch (op.mnemonic) {
    case ZYDIS_MNEMONIC_MOV:
      if (!imm && !reg) return nullptr;
      if (n == 8) return imm ? FastMov<8, true> : FastMov<8, false>;
      return imm ? FastMov<4, true> : FastMov<4, false>;
    case ZYDIS_MNEMONIC_ADD: return imm || reg ? AluFor<kAdd>(n, imm) : nullptr;
    case ZYDIS_MNEMONIC_OR: return imm || reg ? AluFor<kOr>(n, imm) : nullptr;
    case ZYDIS_MNEMONIC_AND: return imm || reg ? AluFor<kAnd>(n, imm) : nullptr;
    case ZYDIS_MNEMONIC_SUB: return imm || reg ? AluFor<kSub>(n, imm) : nullptr;
    case ZYDIS_MNEMONIC_XOR: return imm || reg ? AluFor<kXor>(n, imm) : nullptr;
    case ZYDIS_MNEMONIC_CMP: return imm || reg ? AluFor<kCmp>(n, imm) : nullptr;
    case ZYDIS_MNEMONIC_TEST: return imm || reg ? AluFor<kTest>(n, imm) : nullptr;
    case ZYDIS_MNEMONIC_INC:
      return n == 8 ? FastIncDec<true, 8> : FastIncDec<true, 4>;
    case ZYDIS_MNEMONIC_DEC:
      return n == 8 ? FastIncDec<false, 8> : FastIncDec<false, 4>;
    case ZYDIS_MNEMONIC_SHL:
      if (op.nops > 1 && !imm) return nullptr;  // by CL: the generic handler
      return n == 8 ? FastShift<kShlK, 8> : FastShift<kShlK, 4>;
    case ZYDIS_MNEMONIC_SHR:
      if (op.nops > 1 && !imm) return nullptr;
      return n == 8 ? FastShift<kShrK, 8> : FastShift<kShrK, 4>;
    case ZYDIS_MNEMONIC_SAR:
      if (op.nops > 1 && !imm) return nullptr;
      return n == 8 ? FastShift<kSarK, 8> : FastShift<kSarK, 4>;
    case ZYDIS_MNEMONIC_IMUL:
      if (op.nops == 2 && reg) return n == 8 ? FastImul<8, false> : FastImul<4, false>;
      if (op.nops == 3 && reg && op.o[2].kind == kOpImm) return n == 8 ? FastImul<8, true> : FastImul<4, true>;
      return nullptr;
    default:
      return nullptr;
  }
}

// Backward liveness over one block's arithmetic flags. A register ALU/INC/DEC op whose flags
// are all overwritten by later ops of the block before anything could read or observe them
// (a flag reader, an op that may fault, stop the block or touch memory, the block's end) gets
// its flag-free variant; its exact handler stays in Op::exact, which the run loop uses when
// it stops inside the block (a target, a breakpoint, single-step), so that the flags are exact
// at every instruction boundary anything can see.
size_t DeadFlagPass(Op* ops, size_t n, CpuMode mode) {
  uint64_t live = kArith;  // at the block's end: everything
  size_t elided = 0;
  for (size_t i = n; i-- > 0;) {
    Op& op = ops[i];
    const FlagUse u = FlagUseOf(op, mode);
    op.rip_free = u.transparent && !(op.mnemonic == ZYDIS_MNEMONIC_LEA && op.nops >= 2 && op.o[1].base == kRipReg);
    if (!u.transparent) {
      live = kArith;
      continue;
    }
    if (u.writes && !(u.writes & live) && u.no_flags) {
      op.exact = op.fn;
      op.fn = u.no_flags;
      ++elided;
    }
    live &= ~u.writes;
  }
  return elided;
}

}  // namespace vmrr
