// SSE/SSE2 floating point (issue 11, see FPU_NOTES.md): scalar and packed single/double
// ADD/SUB/MUL/DIV/SQRT/MIN/MAX, CMPcc, (U)COMIS, and the FP conversions; the MMX/SSE2 integer
// SIMD, shuffles and moves not in fpu.cc; SSE3 and SSSE3 (branch `simd`, second half).
//
// Determinism: every operation is the very same SSE/SSE2 instruction executed on the host
// (SSE2 is the x86-64 baseline; IEEE 754 fixes every result and flag of these instructions,
// including the x86-specific NaN propagation, MIN/MAX operand order and integer indefinite,
// so they are identical on every x86-64 host). The instruction runs in inline asm (volatile,
// so the compiler can neither fold nor move it across the MXCSR switch) under a host MXCSR
// built from the guest's: rounding control, DAZ and FTZ copied, every exception masked, flags
// cleared (HostCsrScope: loaded only when the host's value differs in a way that matters).
// The flags the host raised are merged into the guest's sticky flags, and the host MXCSR's
// control bits are restored before returning.
//
// Unmasked guest exceptions: the result is
// computed with every exception masked; if a flag arose whose guest mask is clear, the
// result is discarded (destination unchanged) and #XM (CR4.OSXMMEXCPT=1) or #UD is raised.
// If an unmasked exception is a pre-computation one (IE, DE, ZE), only the pre-computation
// flags are merged (the SDM: post-computation exceptions are then not checked); otherwise all
// flags are merged, except that an unmasked underflow drops PE (as the hardware reports it).
// With UM=0, exact tiny results are detected in software (ExecXmm). Checked against the host
// hardware taking the real #XM (SIGFPE) in cpu_sse_test.cc.
#include <Zydis/Zydis.h>
#include <emmintrin.h>

#include <cstring>
#include <limits>

#include "hv-hooks/cpu/core.h"
#include "hv-hooks/cpu/xmm_mem.h"

namespace vmrr {

namespace {
constexpr uint64_t kCr4Osxmmexcpt = 1u << 10;

using Vec = __m128i;
using HostFn = void (*)(Vec& d, Vec s);

// From two 64-bit halves, loaded as such: q is usually written as two 8-byte stores just
// before, and one 16-byte load of those would miss store-to-load forwarding (a stall of
// about a dozen cycles each time).
Vec ToVec(const uint64_t q[2]) {
  uint64_t lo = q[0], hi = q[1];
  asm("" : "+r"(lo), "+r"(hi));  // keep the loads 8-byte wide
  return _mm_unpacklo_epi64(_mm_cvtsi64_si128(static_cast<long long>(lo)),
                            _mm_cvtsi64_si128(static_cast<long long>(hi)));
}
void FromVec(Vec v, uint64_t q[2]) { std::memcpy(q, &v, 16); }

uint32_t HostGetCsr() {
  uint32_t v;
  asm volatile("stmxcsr %0" : "=m"(v));
  return v;
}
void HostSetCsr(uint32_t v) { asm volatile("ldmxcsr %0" : : "m"(v)); }

// The host MXCSR for a guest MXCSR: FTZ (15), RC (13-14), DAZ (6); all masks set, no flags.
uint32_t HostCsrFor(uint32_t guest) { return (guest & 0xe040u) | 0x1f80u; }

// The host MXCSR around one guest operation (every asm statement here is volatile, so the
// compiler keeps them in order). The operation must run under HostCsrFor(control): the
// guest's RC/DAZ/FTZ, every exception masked, and no flag set that could be mistaken for one
// the operation raised. ldmxcsr is slow, so it is only executed when the host's current
// value differs from that in a way that matters:
// - control bits (RC, DAZ, FTZ, masks) different: loaded, and the host's whole value put
//   back afterwards (host code must never run under the guest's rounding);
// - a host flag set that the guest does not already hold as a masked sticky flag: loaded
//   (cleared). A flag the guest already holds, masked, may stay set on the host: whether the
//   operation raises it again changes nothing (merging it is a no-op and it cannot fault;
//   the fault rules of SseCommit only drop flags), so reading it back as raised is harmless.
// So for the usual guest (MXCSR 1F80H plus sticky flags, as the host's own) a run of SSE
// instructions costs two stmxcsr each and no ldmxcsr. The host's sticky flags are not host
// state anything relies on; its control bits are always restored.
class HostCsrScope {
 public:
  HostCsrScope(uint32_t control, uint32_t guest_mxcsr) : saved_(HostGetCsr()) {
    const uint32_t want = HostCsrFor(control);
    const uint32_t keep = guest_mxcsr & (guest_mxcsr >> 7) & 0x3fu;
    restore_ = (saved_ & ~0x3fu) != want;
    if (restore_ || (saved_ & 0x3fu & ~keep)) HostSetCsr(want);
  }
  ~HostCsrScope() {
    if (restore_) HostSetCsr(saved_);
  }
  HostCsrScope(const HostCsrScope&) = delete;
  HostCsrScope& operator=(const HostCsrScope&) = delete;
  // The flags raised so far (plus any the guest already holds, see above).
  static uint32_t Flags() { return HostGetCsr() & 0x3fu; }

 private:
  uint32_t saved_;
  bool restore_;
};

// Runs fn(d, s) under the control bits of `control` (the guest MXCSR, possibly adjusted);
// returns the exception flags it raised (see HostCsrScope).
uint32_t RunHost(uint32_t control, uint32_t guest_mxcsr, HostFn fn, Vec& d, Vec s) {
  HostCsrScope scope(control, guest_mxcsr);
  fn(d, s);
  return HostCsrScope::Flags();
}

// Merges flags into the guest MXCSR and decides the fault. false = fault raised (the caller
// must not write its destination).
bool SseCommit(CpuCore& c, uint32_t flags) {
  const uint32_t unmasked = flags & ~(c.s.mxcsr >> 7) & 0x3f;
  if (unmasked & 7) flags &= 7;
  else if (unmasked & 0x10) flags &= ~0x20u;  // unmasked underflow: PE not reported (hardware)
  c.s.mxcsr |= flags;
  if (!unmasked) return true;
  if (c.s.cr4 & kCr4Osxmmexcpt) c.FaultNoErr(19);
  else c.Ud();
  return false;
}

bool MemLinear(CpuCore& c, const Op& op, const Operand& o, unsigned size, Access acc,
               unsigned align, uint64_t* lin) {
  const uint64_t off = c.EffectiveAddress(op, o);
  if (!c.Linear(o.seg, off, size, acc, lin)) return false;
  if (align && (*lin & (align - 1))) {
    c.Gp(0);
    return false;
  }
  return true;
}

// Reads an XMM register or `bytes` (4, 8 or 16; 16 must be aligned, as legacy SSE requires)
// of memory into the low bytes of q (the rest zero).
bool ReadSrc(CpuCore& c, const Op& op, const Operand& o, unsigned bytes, uint64_t q[2]) {
  if (o.kind == kOpXmm) {
    q[0] = c.s.xmm[o.reg][0];
    q[1] = c.s.xmm[o.reg][1];
    return true;
  }
  q[0] = q[1] = 0;
  if (XmmFastRead(c, op, o, bytes, bytes == 16 ? 16 : 0, q)) return true;
  uint64_t lin;
  if (!MemLinear(c, op, o, bytes, kRead, bytes == 16 ? 16 : 0, &lin)) return false;
  if (bytes == 4) {
    uint64_t v;
    if (!c.ReadLin(lin, 4, &v)) return false;
    q[0] = v & 0xffffffffu;
    return true;
  }
  if (!c.ReadLin(lin, 8, &q[0])) return false;
  return bytes != 16 || c.ReadLin(lin + 8, 8, &q[1]);
}

// ---- xmm, xmm/m: one host instruction, destination = o[0] ------------------------------

#define VMRR_SSE_FN(NAME, INSN) \
  void NAME(Vec& d, Vec s) { asm volatile(INSN " %1, %0" : "+x"(d) : "x"(s)); }
VMRR_SSE_FN(HAddss, "addss") VMRR_SSE_FN(HAddsd, "addsd") VMRR_SSE_FN(HAddps, "addps")
VMRR_SSE_FN(HAddpd, "addpd") VMRR_SSE_FN(HSubss, "subss") VMRR_SSE_FN(HSubsd, "subsd")
VMRR_SSE_FN(HSubps, "subps") VMRR_SSE_FN(HSubpd, "subpd") VMRR_SSE_FN(HMulss, "mulss")
VMRR_SSE_FN(HMulsd, "mulsd") VMRR_SSE_FN(HMulps, "mulps") VMRR_SSE_FN(HMulpd, "mulpd")
VMRR_SSE_FN(HDivss, "divss") VMRR_SSE_FN(HDivsd, "divsd") VMRR_SSE_FN(HDivps, "divps")
VMRR_SSE_FN(HDivpd, "divpd") VMRR_SSE_FN(HSqrtss, "sqrtss") VMRR_SSE_FN(HSqrtsd, "sqrtsd")
VMRR_SSE_FN(HSqrtps, "sqrtps") VMRR_SSE_FN(HSqrtpd, "sqrtpd") VMRR_SSE_FN(HMinss, "minss")
VMRR_SSE_FN(HMinsd, "minsd") VMRR_SSE_FN(HMinps, "minps") VMRR_SSE_FN(HMinpd, "minpd")
VMRR_SSE_FN(HMaxss, "maxss") VMRR_SSE_FN(HMaxsd, "maxsd") VMRR_SSE_FN(HMaxps, "maxps")
VMRR_SSE_FN(HMaxpd, "maxpd")
VMRR_SSE_FN(HCvtss2sd, "cvtss2sd") VMRR_SSE_FN(HCvtsd2ss, "cvtsd2ss")
VMRR_SSE_FN(HCvtdq2ps, "cvtdq2ps") VMRR_SSE_FN(HCvtps2dq, "cvtps2dq")
VMRR_SSE_FN(HCvttps2dq, "cvttps2dq") VMRR_SSE_FN(HCvtdq2pd, "cvtdq2pd")
VMRR_SSE_FN(HCvtpd2dq, "cvtpd2dq") VMRR_SSE_FN(HCvttpd2dq, "cvttpd2dq")
VMRR_SSE_FN(HCvtps2pd, "cvtps2pd") VMRR_SSE_FN(HCvtpd2ps, "cvtpd2ps")
#undef VMRR_SSE_FN

template <uint8_t kPred>
void HCmpps(Vec& d, Vec s) { asm volatile("cmpps %2, %1, %0" : "+x"(d) : "x"(s), "i"(kPred)); }
template <uint8_t kPred>
void HCmppd(Vec& d, Vec s) { asm volatile("cmppd %2, %1, %0" : "+x"(d) : "x"(s), "i"(kPred)); }
template <uint8_t kPred>
void HCmpss(Vec& d, Vec s) { asm volatile("cmpss %2, %1, %0" : "+x"(d) : "x"(s), "i"(kPred)); }
template <uint8_t kPred>
void HCmpsd(Vec& d, Vec s) { asm volatile("cmpsd %2, %1, %0" : "+x"(d) : "x"(s), "i"(kPred)); }

// True if one of the first `lanes` elements of size esize (4 or 8) is a denormal.
bool AnyDenormal(Vec v, unsigned esize, unsigned lanes) {
  uint8_t b[16];
  std::memcpy(b, &v, 16);
  for (unsigned i = 0; i < lanes; ++i) {
    if (esize == 4) {
      uint32_t x;
      std::memcpy(&x, b + 4 * i, 4);
      if ((x & 0x7f800000u) == 0 && (x & 0x007fffffu) != 0) return true;
    } else {
      uint64_t x;
      std::memcpy(&x, b + 8 * i, 8);
      if ((x & 0x7ff0000000000000ull) == 0 && (x & 0x000fffffffffffffull) != 0) return true;
    }
  }
  return false;
}

// Executes fn on (dest, source of `bytes`) and writes the destination unless a fault.
// uf_lanes/uf_size: the FP result elements that can underflow (0 = the operation cannot).
// With UE unmasked the SDM signals underflow for every tiny result, exact ones included, and
// FTZ does not apply; the masked host run flags only tiny *and* inexact results, so an exact
// one (a denormal result, FTZ off) is detected here.
void ExecXmmOn(CpuCore& c, const Op& op, HostFn fn, const uint64_t sq[2], unsigned uf_lanes,
               unsigned uf_size) {
  uint64_t* dq = c.s.xmm[op.o[0].reg];
  Vec d = ToVec(dq);
  const bool um_clear = !(c.s.mxcsr & 0x800);
  const uint32_t mxcsr = um_clear ? c.s.mxcsr & ~0x8000u : c.s.mxcsr;
  uint32_t flags = RunHost(mxcsr, c.s.mxcsr, fn, d, ToVec(sq));
  if (um_clear && uf_lanes && AnyDenormal(d, uf_size, uf_lanes)) flags |= 0x10;
  if (!SseCommit(c, flags)) return;
  FromVec(d, dq);
}

void ExecXmm(CpuCore& c, const Op& op, HostFn fn, unsigned bytes, unsigned uf_lanes = 0,
             unsigned uf_size = 0) {
  if (!CheckSseAvailable(c)) return;
  uint64_t sq[2];
  if (!ReadSrc(c, op, op.o[1], bytes, sq)) return;
  ExecXmmOn(c, op, fn, sq, uf_lanes, uf_size);
}

template <HostFn kFn, unsigned kBytes, unsigned kUfLanes = 0, unsigned kUfSize = 0>
void OpXmm(CpuCore& c, const Op& op) { ExecXmm(c, op, kFn, kBytes, kUfLanes, kUfSize); }
// ADD/SUB/MUL/DIV (and ADDSUB): lane i of the result from lane i of both operands.
// The common case costs one stmxcsr and no ldmxcsr: the guest's MXCSR control is the host's
// (round to nearest, no DAZ/FTZ, every exception masked; the host's control is checked once
// per Run and every path restores it), so the host raises exactly the architectural flags.
// The host's sticky flags are kept a subset of the guest's (HostCsrScope clears any other),
// so after the operation a host flag the guest does not hold is one this operation raised:
// then the general path runs it again and merges; otherwise nothing changes. A flag set by
// host code in between only sends one operation to the general path, which clears it; the
// result is the same on either path.
template <HostFn kFn, unsigned kBytes, unsigned kLanes, unsigned kSize>
void OpXmmBasic(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  uint64_t sq[2];
  if (op.o[1].kind == kOpXmm) {  // the register form without a call
    sq[0] = c.s.xmm[op.o[1].reg][0];
    sq[1] = c.s.xmm[op.o[1].reg][1];
  } else if (!ReadSrc(c, op, op.o[1], kBytes, sq)) {
    return;
  }
  uint64_t* dq = c.s.xmm[op.o[0].reg];
  if (c.host_mxcsr_default && (c.s.mxcsr & 0xffffffc0u) == 0x1f80u) {
    Vec r = ToVec(dq);
    kFn(r, ToVec(sq));
    if ((HostGetCsr() & 0x3fu & ~c.s.mxcsr) == 0) {
      FromVec(r, dq);
      return;
    }
  }
  ExecXmmOn(c, op, kFn, sq, kLanes, kSize);
}

// CMPPS/CMPPD/CMPSS/CMPSD xmm, xmm/m, imm8: predicates 0-7 (imm bits 3-7 ignored by legacy
// SSE; the host instruction gets the predicate as an immediate).
constexpr HostFn kCmpps[8] = {HCmpps<0>, HCmpps<1>, HCmpps<2>, HCmpps<3>,
                              HCmpps<4>, HCmpps<5>, HCmpps<6>, HCmpps<7>};
constexpr HostFn kCmppd[8] = {HCmppd<0>, HCmppd<1>, HCmppd<2>, HCmppd<3>,
                              HCmppd<4>, HCmppd<5>, HCmppd<6>, HCmppd<7>};
constexpr HostFn kCmpss[8] = {HCmpss<0>, HCmpss<1>, HCmpss<2>, HCmpss<3>,
                              HCmpss<4>, HCmpss<5>, HCmpss<6>, HCmpss<7>};
constexpr HostFn kCmpsd[8] = {HCmpsd<0>, HCmpsd<1>, HCmpsd<2>, HCmpsd<3>,
                              HCmpsd<4>, HCmpsd<5>, HCmpsd<6>, HCmpsd<7>};

template <const HostFn* kTable, unsigned kBytes>
void OpCmp(CpuCore& c, const Op& op) {
  ExecXmm(c, op, kTable[op.o[2].disp & 7], kBytes);
}

// ---- (U)COMISS / (U)COMISD: ZF PF CF from the host, OF SF AF cleared ---------------------

template <bool kDouble, bool kUnordered>
void HostCompare(Vec a, Vec b, uint8_t* zf, uint8_t* pf, uint8_t* cf) {
  if (kDouble && kUnordered)
    asm volatile("ucomisd %3, %4\n\tsetz %0\n\tsetp %1\n\tsetc %2"
                 : "=q"(*zf), "=q"(*pf), "=q"(*cf) : "x"(b), "x"(a) : "cc");
  else if (kDouble)
    asm volatile("comisd %3, %4\n\tsetz %0\n\tsetp %1\n\tsetc %2"
                 : "=q"(*zf), "=q"(*pf), "=q"(*cf) : "x"(b), "x"(a) : "cc");
  else if (kUnordered)
    asm volatile("ucomiss %3, %4\n\tsetz %0\n\tsetp %1\n\tsetc %2"
                 : "=q"(*zf), "=q"(*pf), "=q"(*cf) : "x"(b), "x"(a) : "cc");
  else
    asm volatile("comiss %3, %4\n\tsetz %0\n\tsetp %1\n\tsetc %2"
                 : "=q"(*zf), "=q"(*pf), "=q"(*cf) : "x"(b), "x"(a) : "cc");
}

template <bool kDouble, bool kUnordered>
void OpComis(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  uint64_t sq[2];
  if (!ReadSrc(c, op, op.o[1], kDouble ? 8 : 4, sq)) return;
  const Vec a = ToVec(c.s.xmm[op.o[0].reg]), b = ToVec(sq);
  uint8_t zf, pf, cf;
  uint32_t flags;
  {
    HostCsrScope scope(c.s.mxcsr, c.s.mxcsr);
    HostCompare<kDouble, kUnordered>(a, b, &zf, &pf, &cf);
    flags = HostCsrScope::Flags();
  }
  if (!SseCommit(c, flags)) return;
  c.s.rflags = (c.s.rflags & ~(kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagOf)) |
               (zf ? kFlagZf : 0) | (pf ? kFlagPf : 0) | (cf ? kFlagCf : 0);
}

// ---- CVTSI2SS/SD: xmm, r/m32/64 ----------------------------------------------------------

template <bool kDouble>
void OpCvtsi2s(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  const bool wide = op.o[1].size == 8;
  uint64_t* dq = c.s.xmm[op.o[0].reg];
  Vec d = ToVec(dq);
  uint32_t flags;
  {
    HostCsrScope scope(c.s.mxcsr, c.s.mxcsr);
    if (kDouble && wide) asm volatile("cvtsi2sdq %1, %0" : "+x"(d) : "r"(v));
    else if (kDouble) asm volatile("cvtsi2sdl %k1, %0" : "+x"(d) : "r"(v));
    else if (wide) asm volatile("cvtsi2ssq %1, %0" : "+x"(d) : "r"(v));
    else asm volatile("cvtsi2ssl %k1, %0" : "+x"(d) : "r"(v));
    flags = HostCsrScope::Flags();
  }
  if (!SseCommit(c, flags)) return;
  FromVec(d, dq);
}

// ---- CVT(T)SS2SI / CVT(T)SD2SI: r32/64, xmm/m ---------------------------------------------

template <bool kDouble, bool kTruncate>
void OpCvts2si(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  uint64_t sq[2];
  if (!ReadSrc(c, op, op.o[1], kDouble ? 8 : 4, sq)) return;
  const bool wide = op.o[0].size == 8;
  const Vec s = ToVec(sq);
  uint64_t r = 0;
  uint32_t flags;
  {
  HostCsrScope scope(c.s.mxcsr, c.s.mxcsr);
  if (kDouble && kTruncate) {
    if (wide) asm volatile("cvttsd2siq %1, %0" : "=r"(r) : "x"(s));
    else asm volatile("cvttsd2sil %1, %k0" : "=r"(r) : "x"(s));
  } else if (kDouble) {
    if (wide) asm volatile("cvtsd2siq %1, %0" : "=r"(r) : "x"(s));
    else asm volatile("cvtsd2sil %1, %k0" : "=r"(r) : "x"(s));
  } else if (kTruncate) {
    if (wide) asm volatile("cvttss2siq %1, %0" : "=r"(r) : "x"(s));
    else asm volatile("cvttss2sil %1, %k0" : "=r"(r) : "x"(s));
  } else {
    if (wide) asm volatile("cvtss2siq %1, %0" : "=r"(r) : "x"(s));
    else asm volatile("cvtss2sil %1, %k0" : "=r"(r) : "x"(s));
  }
  flags = HostCsrScope::Flags();
  }
  if (!SseCommit(c, flags)) return;
  c.SetReg(op.o[0].reg, wide ? 8 : 4, r);
}


// ---- integer SIMD (MMX and SSE2 forms), shuffles, unpacks: plain C++ -----------------------
// No host instruction: these are pure bit manipulations, portable as written.

// Loads the destination (MMX: 8 bytes, XMM: 16) and reads the source: MMX register, XMM
// register, or memory (MMX: the operand's size, 4 or 8 bytes, no alignment; XMM: 16 bytes,
// aligned). false = fault pending.
bool IntOperands(CpuCore& c, const Op& op, bool mmx, uint8_t d[16], uint8_t s[16]) {
  uint64_t dq[2] = {0, 0}, sq[2] = {0, 0};
  const Operand& so = op.o[1];
  if (mmx) {
    dq[0] = c.s.st[op.o[0].reg].mant;
    if (so.kind == kOpMmx) {
      sq[0] = c.s.st[so.reg].mant;
    } else {
      const unsigned n = so.size == 4 ? 4 : 8;
      uint64_t lin;
      if (!MemLinear(c, op, so, n, kRead, 0, &lin) || !c.ReadLin(lin, n, &sq[0])) return false;
      if (n == 4) sq[0] &= 0xffffffffu;
    }
  } else {
    dq[0] = c.s.xmm[op.o[0].reg][0];
    dq[1] = c.s.xmm[op.o[0].reg][1];
    if (!ReadSrc(c, op, so, 16, sq)) return false;
  }
  std::memcpy(d, dq, 16);
  std::memcpy(s, sq, 16);
  return true;
}

void StoreInt(CpuCore& c, const Op& op, bool mmx, const uint8_t r[16]) {
  uint64_t q[2];
  std::memcpy(q, r, 16);
  if (mmx) {
    SetMmx(c.s, op.o[0].reg, q[0]);
    MmxTransition(c.s);
  } else {
    c.s.xmm[op.o[0].reg][0] = q[0];
    c.s.xmm[op.o[0].reg][1] = q[1];
  }
}

template <class K>
void OpInt(CpuCore& c, const Op& op) {
  const bool mmx = op.o[0].kind == kOpMmx;
  if (!(mmx ? CheckMmxAvailable(c) : CheckSseAvailable(c))) return;
  uint8_t d[16], s[16], r[16] = {};
  if (!IntOperands(c, op, mmx, d, s)) return;
  K::Apply(d, s, r, mmx ? 8u : 16u, op);
  StoreInt(c, op, mmx, r);
}

template <typename T>
T Lane(const uint8_t* p, unsigned i) {
  T v;
  std::memcpy(&v, p + i * sizeof(T), sizeof(T));
  return v;
}
template <typename T>
void SetLane(uint8_t* p, unsigned i, T v) { std::memcpy(p + i * sizeof(T), &v, sizeof(T)); }

template <typename T, T (*F)(T, T)>
struct Lanewise {
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned n, const Op&) {
    for (unsigned i = 0; i < n / sizeof(T); ++i) SetLane<T>(r, i, F(Lane<T>(d, i), Lane<T>(s, i)));
  }
};

template <typename T> T Add(T a, T b) { return static_cast<T>(a + b); }
template <typename T> T Sub(T a, T b) { return static_cast<T>(a - b); }
template <typename T>  // T signed or unsigned 8/16-bit: saturate to T's range
T Sat(int v) {
  constexpr int lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  return static_cast<T>(v < lo ? lo : v > hi ? hi : v);
}
template <typename T> T AddSat(T a, T b) { return Sat<T>(int{a} + int{b}); }
template <typename T> T SubSat(T a, T b) { return Sat<T>(int{a} - int{b}); }
template <typename T> T CmpEq(T a, T b) { return a == b ? static_cast<T>(~T{0}) : T{0}; }
template <typename T> T CmpGt(T a, T b) {  // T signed
  return a > b ? static_cast<T>(-1) : T{0};
}

// PUNPCKL*/PUNPCKH* (and UNPCKL/H PS/PD): interleave the low (kHigh = false) or high halves.
template <typename T, bool kHigh>
struct Unpack {
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned n, const Op&) {
    const unsigned lanes = n / sizeof(T), base = kHigh ? lanes / 2 : 0;
    for (unsigned i = 0; i < lanes / 2; ++i) {
      SetLane<T>(r, 2 * i, Lane<T>(d, base + i));
      SetLane<T>(r, 2 * i + 1, Lane<T>(s, base + i));
    }
  }
};

unsigned Imm(const Op& op) { return static_cast<unsigned>(op.o[2].disp & 0xff); }

struct Pshufd {
  static void Apply(const uint8_t*, const uint8_t* s, uint8_t* r, unsigned, const Op& op) {
    for (unsigned i = 0; i < 4; ++i) SetLane<uint32_t>(r, i, Lane<uint32_t>(s, (Imm(op) >> (2 * i)) & 3));
  }
};
template <bool kHigh>
struct Pshufw8 {  // PSHUFLW / PSHUFHW: one quadword's words shuffled, the other copied
  static void Apply(const uint8_t*, const uint8_t* s, uint8_t* r, unsigned, const Op& op) {
    const unsigned base = kHigh ? 4 : 0, other = kHigh ? 0 : 4;
    for (unsigned i = 0; i < 4; ++i) {
      SetLane<uint16_t>(r, base + i, Lane<uint16_t>(s, base + ((Imm(op) >> (2 * i)) & 3)));
      SetLane<uint16_t>(r, other + i, Lane<uint16_t>(s, other + i));
    }
  }
};
struct Shufps {
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned, const Op& op) {
    const unsigned m = Imm(op);
    SetLane<uint32_t>(r, 0, Lane<uint32_t>(d, m & 3));
    SetLane<uint32_t>(r, 1, Lane<uint32_t>(d, (m >> 2) & 3));
    SetLane<uint32_t>(r, 2, Lane<uint32_t>(s, (m >> 4) & 3));
    SetLane<uint32_t>(r, 3, Lane<uint32_t>(s, (m >> 6) & 3));
  }
};
struct Shufpd {
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned, const Op& op) {
    SetLane<uint64_t>(r, 0, Lane<uint64_t>(d, Imm(op) & 1));
    SetLane<uint64_t>(r, 1, Lane<uint64_t>(s, (Imm(op) >> 1) & 1));
  }
};

// PMOVMSKB r32/r64, mm/xmm: the top bit of each byte, zero-extended.
void OpPmovmskb(CpuCore& c, const Op& op) {
  const Operand& so = op.o[1];
  const bool mmx = so.kind == kOpMmx;
  if (!(mmx ? CheckMmxAvailable(c) : CheckSseAvailable(c))) return;
  uint64_t q[2] = {mmx ? c.s.st[so.reg].mant : c.s.xmm[so.reg][0], mmx ? 0 : c.s.xmm[so.reg][1]};
  uint64_t mask = 0;
  for (unsigned i = 0; i < (mmx ? 8u : 16u); ++i) mask |= ((q[i / 8] >> (8 * (i % 8) + 7)) & 1) << i;
  c.SetReg(op.o[0].reg, 8, mask);
  if (mmx) MmxTransition(c.s);
}

// MOVSS / MOVSD (SSE2): register to register moves the low element only; a load zeroes the
// rest of the destination; a store writes the low element.
template <unsigned kBytes>
void OpMovScalar(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  const Operand& d = op.o[0];
  const Operand& s = op.o[1];
  constexpr uint64_t mask = kBytes == 8 ? ~uint64_t{0} : 0xffffffffu;
  if (d.kind == kOpXmm && s.kind == kOpXmm) {
    uint64_t& lo = c.s.xmm[d.reg][0];
    lo = (lo & ~mask) | (c.s.xmm[s.reg][0] & mask);
    return;
  }
  if (d.kind == kOpXmm) {
    uint64_t v;
    if (!c.Read(op, s, &v)) return;
    c.s.xmm[d.reg][0] = v & mask;
    c.s.xmm[d.reg][1] = 0;
    return;
  }
  c.Write(op, d, c.s.xmm[s.reg][0] & mask);
}


// ==== the rest of SSE/SSE2, SSE3 and SSSE3 (branch `simd`) =================================

bool CheckFor(CpuCore& c, bool mmx) { return mmx ? CheckMmxAvailable(c) : CheckSseAvailable(c); }
// Instructions with an XMM and an MMX operand (CVTPI2PS, MOVQ2DQ...): the legacy SSE rules
// (EM or !OSFXSR -> #UD, TS -> #NM), then a pending x87 exception -> #MF (SDM Vol. 3 Tables
// 23-4..23-7).
bool CheckSseMmx(CpuCore& c) { return CheckSseAvailable(c) && CheckMmxAvailable(c); }

// A memory write of `size` bytes that must not fault half-way: the whole range is checked first.
bool StoreLinear(CpuCore& c, const Op& op, const Operand& o, unsigned size, unsigned align,
                 uint64_t* lin) {
  return MemLinear(c, op, o, size, kWrite, align, lin) &&
         c.ProbeWrite(o.seg, c.EffectiveAddress(op, o), size);
}
bool Store128(CpuCore& c, const Op& op, const Operand& o, bool aligned, const uint64_t q[2]) {
  uint64_t lin;
  return StoreLinear(c, op, o, 16, aligned ? 16 : 0, &lin) && c.WriteLin(lin, 8, q[0]) &&
         c.WriteLin(lin + 8, 8, q[1]);
}
bool Load128(CpuCore& c, const Op& op, const Operand& o, bool aligned, uint64_t q[2]) {
  if (o.kind == kOpXmm) return ReadSrc(c, op, o, 16, q);
  uint64_t lin;
  return MemLinear(c, op, o, 16, kRead, aligned ? 16 : 0, &lin) && c.ReadLin(lin, 8, &q[0]) &&
         c.ReadLin(lin + 8, 8, &q[1]);
}

// ---- moves ---------------------------------------------------------------------------------

// MOVLPS/MOVLPD (kHigh = false) and MOVHPS/MOVHPD: xmm <- m64 into one half (the other kept),
// or m64 <- one half. No alignment.
template <bool kHigh>
void OpMovHalf(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  const Operand& d = op.o[0];
  const Operand& s = op.o[1];
  if (d.kind == kOpXmm) {
    uint64_t v;
    if (!c.Read(op, s, &v)) return;
    c.s.xmm[d.reg][kHigh ? 1 : 0] = v;
    return;
  }
  c.Write(op, d, c.s.xmm[s.reg][kHigh ? 1 : 0]);
}
// MOVHLPS xmm1, xmm2: low of xmm1 <- high of xmm2. MOVLHPS: high of xmm1 <- low of xmm2.
template <bool kLh>
void OpMovHlLh(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  const uint64_t v = c.s.xmm[op.o[1].reg][kLh ? 0 : 1];
  c.s.xmm[op.o[0].reg][kLh ? 1 : 0] = v;
}

// MOVNTPS/MOVNTPD/MOVNTDQ m128, xmm: an aligned store (the non-temporal hint has no effect
// here). LDDQU xmm, m128: an unaligned load.
void OpMovnt128(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  Store128(c, op, op.o[0], true, c.s.xmm[op.o[1].reg]);
}
void OpLddqu(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  uint64_t q[2];
  if (!Load128(c, op, op.o[1], false, q)) return;
  c.s.xmm[op.o[0].reg][0] = q[0];
  c.s.xmm[op.o[0].reg][1] = q[1];
}
// MOVNTQ m64, mm (MMX rules and transition).
void OpMovntq(CpuCore& c, const Op& op) {
  if (!CheckMmxAvailable(c)) return;
  if (!c.Write(op, op.o[0], c.s.st[op.o[1].reg].mant)) return;
  MmxTransition(c.s);
}
// MOVNTI m32/m64, r32/r64: a general-purpose store (no CR0/CR4 condition, SDM).
void OpMovnti(CpuCore& c, const Op& op) {
  c.Write(op, op.o[0], c.GetReg(op.o[1].reg, op.o[1].size));
}

// MOVQ2DQ xmm, mm and MOVDQ2Q mm, xmm.
void OpMovq2dq(CpuCore& c, const Op& op) {
  if (!CheckSseMmx(c)) return;
  c.s.xmm[op.o[0].reg][0] = c.s.st[op.o[1].reg].mant;
  c.s.xmm[op.o[0].reg][1] = 0;
  MmxTransition(c.s);
}
void OpMovdq2q(CpuCore& c, const Op& op) {
  if (!CheckSseMmx(c)) return;
  SetMmx(c.s, op.o[0].reg, c.s.xmm[op.o[1].reg][0]);
  MmxTransition(c.s);
}

// MOVMSKPS / MOVMSKPD r32/r64, xmm: the sign bits, zero-extended.
template <bool kDouble>
void OpMovmskp(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  const uint64_t* x = c.s.xmm[op.o[1].reg];
  uint64_t m;
  if (kDouble) m = (x[0] >> 63) | ((x[1] >> 63) << 1);
  else m = ((x[0] >> 31) & 1) | ((x[0] >> 62) & 2) | (((x[1] >> 31) & 1) << 2) | ((x[1] >> 63) << 3);
  c.SetReg(op.o[0].reg, 8, m);
}

// MOVSLDUP / MOVSHDUP xmm, xmm/m128 (aligned): the even (odd) singles duplicated.
template <unsigned kOdd>
void OpMovsdup(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  uint64_t q[2];
  if (!ReadSrc(c, op, op.o[1], 16, q)) return;
  for (unsigned i = 0; i < 2; ++i) {
    const uint64_t e = (q[i] >> (32 * kOdd)) & 0xffffffffu;
    c.s.xmm[op.o[0].reg][i] = e | (e << 32);
  }
}
// MOVDDUP xmm, xmm/m64 (no alignment).
void OpMovddup(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  uint64_t q[2];
  if (!ReadSrc(c, op, op.o[1], 8, q)) return;
  c.s.xmm[op.o[0].reg][0] = c.s.xmm[op.o[0].reg][1] = q[0];
}

// MASKMOVQ mm1, mm2 / MASKMOVDQU xmm1, xmm2: the bytes of the first operand whose mask byte
// (second operand) has bit 7 set are stored to DS:rDI (segment override allowed, address size
// from the instruction). The whole destination range is checked before any byte is written, so
// a fault leaves memory unchanged. Implementation choice (the SDM leaves it open): with an
// all-zero mask nothing is accessed and no memory fault is raised.
void OpMaskmov(CpuCore& c, const Op& op) {
  const bool mmx = op.o[0].kind == kOpMmx;
  if (!CheckFor(c, mmx)) return;
  const unsigned n = mmx ? 8 : 16;
  uint64_t dq[2], mq[2];
  if (mmx) {
    dq[0] = c.s.st[op.o[0].reg].mant;
    mq[0] = c.s.st[op.o[1].reg].mant;
    dq[1] = mq[1] = 0;
  } else {
    dq[0] = c.s.xmm[op.o[0].reg][0];
    dq[1] = c.s.xmm[op.o[0].reg][1];
    mq[0] = c.s.xmm[op.o[1].reg][0];
    mq[1] = c.s.xmm[op.o[1].reg][1];
  }
  uint8_t data[16], mask[16];
  std::memcpy(data, dq, 16);
  std::memcpy(mask, mq, 16);
  bool any = false;
  for (unsigned i = 0; i < n; ++i) any |= (mask[i] & 0x80) != 0;
  if (any) {
    const uint8_t seg = op.seg_ovr != 0xff ? op.seg_ovr : static_cast<uint8_t>(kDs);
    const uint64_t amask = c.AddrMask(op.asize);
    const uint64_t base = c.s.gpr[kRdi] & amask;
    uint64_t lin[16];
    for (unsigned i = 0; i < n; ++i)  // check every byte (the offset wraps in the address size)
      if ((mask[i] & 0x80) && (!c.Linear(seg, (base + i) & amask, 1, kWrite, &lin[i]) ||
                               !c.ProbeWrite(seg, (base + i) & amask, 1)))
        return;
    for (unsigned i = 0; i < n; ++i)
      if ((mask[i] & 0x80) && !c.WriteLin(lin[i], 1, data[i])) return;
  }
  if (mmx) MmxTransition(c.s);
}

// ---- shifts ---------------------------------------------------------------------------------

enum ShiftKind { kShl, kShr, kSar };

template <typename T, ShiftKind K>
T ShiftLane(T v, uint64_t count) {
  constexpr unsigned bits = 8 * sizeof(T);
  const bool neg = (static_cast<uint64_t>(v) >> (bits - 1)) & 1;
  if (count >= bits) return K == kSar && neg ? static_cast<T>(~T{0}) : T{0};
  const unsigned n = static_cast<unsigned>(count);
  const uint64_t x = static_cast<uint64_t>(v);
  if (K == kShl) return static_cast<T>(x << n);
  if (K == kShr) return static_cast<T>(x >> n);
  const uint64_t sx = neg ? x | ~(~uint64_t{0} >> (64 - bits)) : x;  // sign-extended to 64 bits
  return static_cast<T>(sx >> n);
}

// PSLL/PSRL/PSRA W/D/Q: count from imm8, or from the low quadword of mm/m64 or xmm/m128
// (the m128 aligned); a count wider than the element gives 0 (sign fill for PSRA).
template <typename T, ShiftKind K>
void OpShift(CpuCore& c, const Op& op) {
  const bool mmx = op.o[0].kind == kOpMmx;
  if (!CheckFor(c, mmx)) return;
  uint8_t d[16] = {}, s[16] = {}, r[16] = {};
  uint64_t count;
  if (op.o[1].kind == kOpImm) {
    uint64_t dq[2] = {mmx ? c.s.st[op.o[0].reg].mant : c.s.xmm[op.o[0].reg][0],
                      mmx ? 0 : c.s.xmm[op.o[0].reg][1]};
    std::memcpy(d, dq, 16);
    count = op.o[1].disp & 0xff;
  } else {
    if (!IntOperands(c, op, mmx, d, s)) return;
    count = Lane<uint64_t>(s, 0);
  }
  const unsigned n = mmx ? 8 : 16;
  for (unsigned i = 0; i < n / sizeof(T); ++i) SetLane<T>(r, i, ShiftLane<T, K>(Lane<T>(d, i), count));
  StoreInt(c, op, mmx, r);
}

// PSLLDQ / PSRLDQ xmm, imm8: byte shifts of the whole register; a count above 15 gives 0.
template <bool kLeft>
void OpByteShift(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  uint8_t d[16], r[16] = {};
  std::memcpy(d, c.s.xmm[op.o[0].reg], 16);
  const unsigned k = static_cast<unsigned>(op.o[1].disp & 0xff);
  for (unsigned i = 0; i < 16; ++i) {
    if (kLeft && i >= k) r[i] = d[i - k];
    if (!kLeft && i + k < 16) r[i] = d[i + k];
  }
  std::memcpy(c.s.xmm[op.o[0].reg], r, 16);
}

// ---- integer arithmetic ---------------------------------------------------------------------

uint16_t MulLo(uint16_t a, uint16_t b) { return static_cast<uint16_t>(uint32_t{a} * b); }
int16_t MulHiS(int16_t a, int16_t b) {  // high half of the 32-bit product
  return static_cast<int16_t>(static_cast<uint32_t>(int32_t{a} * int32_t{b}) >> 16);
}
uint16_t MulHiU(uint16_t a, uint16_t b) { return static_cast<uint16_t>((uint32_t{a} * b) >> 16); }
template <typename T> T Avg(T a, T b) { return static_cast<T>((uint32_t{a} + b + 1) >> 1); }
template <typename T> T Min(T a, T b) { return a < b ? a : b; }
template <typename T> T Max(T a, T b) { return a > b ? a : b; }
// Arithmetic right shift of a signed 32-bit value, written without shifting a negative number.
int32_t Sar32(int32_t v, unsigned n) { return v >= 0 ? v >> n : ~(~v >> n); }
int16_t MulHrs(int16_t a, int16_t b) {  // PMULHRSW: ((a*b >> 14) + 1) >> 1, low 16 bits
  const int32_t t = Sar32(int32_t{a} * int32_t{b}, 14) + 1;
  return static_cast<int16_t>(static_cast<uint16_t>(static_cast<uint32_t>(Sar32(t, 1))));
}
// PSIGN: -a (wrapping), 0 or a by the sign of b. U unsigned; the sign is the top bit.
template <typename U>
U Sign(U a, U b) {
  constexpr U top = static_cast<U>(U{1} << (8 * sizeof(U) - 1));
  if (b & top) return static_cast<U>(0u - static_cast<uint32_t>(a));
  return b == 0 ? U{0} : a;
}

struct Pmuludq {  // low dword of each quadword, 64-bit products
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned n, const Op&) {
    for (unsigned i = 0; i < n / 8; ++i)
      SetLane<uint64_t>(r, i, uint64_t{Lane<uint32_t>(d, 2 * i)} * Lane<uint32_t>(s, 2 * i));
  }
};
struct Pmaddwd {
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned n, const Op&) {
    for (unsigned i = 0; i < n / 4; ++i) {
      const int64_t v = int64_t{Lane<int16_t>(d, 2 * i)} * Lane<int16_t>(s, 2 * i) +
                        int64_t{Lane<int16_t>(d, 2 * i + 1)} * Lane<int16_t>(s, 2 * i + 1);
      SetLane<uint32_t>(r, i, static_cast<uint32_t>(static_cast<uint64_t>(v)));  // 2^31 wraps
    }
  }
};
struct Psadbw {  // per quadword: sum of |d - s| over 8 bytes in the low word, the rest zero
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned n, const Op&) {
    for (unsigned q = 0; q < n / 8; ++q) {
      unsigned sum = 0;
      for (unsigned i = 8 * q; i < 8 * q + 8; ++i) sum += d[i] > s[i] ? d[i] - s[i] : s[i] - d[i];
      SetLane<uint16_t>(r, 4 * q, static_cast<uint16_t>(sum));
    }
  }
};
template <typename S, typename D>  // PACKSSWB/PACKSSDW/PACKUSWB: d's elements, then s's
struct Pack {
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned n, const Op&) {
    const unsigned m = n / sizeof(S);
    for (unsigned i = 0; i < m; ++i) {
      SetLane<D>(r, i, Sat<D>(Lane<S>(d, i)));
      SetLane<D>(r, m + i, Sat<D>(Lane<S>(s, i)));
    }
  }
};
struct Pshufw {  // PSHUFW mm, mm/m64, imm8
  static void Apply(const uint8_t*, const uint8_t* s, uint8_t* r, unsigned, const Op& op) {
    for (unsigned i = 0; i < 4; ++i) SetLane<uint16_t>(r, i, Lane<uint16_t>(s, (Imm(op) >> (2 * i)) & 3));
  }
};

// ---- SSSE3 ----------------------------------------------------------------------------------

struct Pshufb {  // index bit 7 set -> 0; else the byte of d at the index's low 3 (MMX) / 4 bits
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned n, const Op&) {
    for (unsigned i = 0; i < n; ++i) r[i] = (s[i] & 0x80) ? 0 : d[s[i] & (n - 1)];
  }
};
// PHADD/PHSUB: adjacent pairs of d, then of s; the subtraction is even - odd.
template <typename T, T (*F)(T, T)>
struct Horizontal {
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned n, const Op&) {
    const unsigned half = n / sizeof(T) / 2;
    for (unsigned i = 0; i < half; ++i) {
      SetLane<T>(r, i, F(Lane<T>(d, 2 * i), Lane<T>(d, 2 * i + 1)));
      SetLane<T>(r, half + i, F(Lane<T>(s, 2 * i), Lane<T>(s, 2 * i + 1)));
    }
  }
};
struct Pmaddubsw {  // unsigned bytes of d times signed bytes of s, pairs added with saturation
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned n, const Op&) {
    for (unsigned i = 0; i < n / 2; ++i) {
      const int v = int{d[2 * i]} * int{static_cast<int8_t>(s[2 * i])} +
                    int{d[2 * i + 1]} * int{static_cast<int8_t>(s[2 * i + 1])};
      SetLane<int16_t>(r, i, Sat<int16_t>(v));
    }
  }
};
template <typename U>  // PABS: |s| as an unsigned element (80H -> 80H)
struct Pabs {
  static void Apply(const uint8_t*, const uint8_t* s, uint8_t* r, unsigned n, const Op&) {
    constexpr U top = static_cast<U>(U{1} << (8 * sizeof(U) - 1));
    for (unsigned i = 0; i < n / sizeof(U); ++i) {
      const U v = Lane<U>(s, i);
      SetLane<U>(r, i, (v & top) ? static_cast<U>(0u - static_cast<uint32_t>(v)) : v);
    }
  }
};
struct Palignr {  // (d:s) shifted right by imm8 bytes; the low n bytes kept
  static void Apply(const uint8_t* d, const uint8_t* s, uint8_t* r, unsigned n, const Op& op) {
    uint8_t cat[32];
    std::memcpy(cat, s, n);
    std::memcpy(cat + n, d, n);
    const unsigned k = Imm(op);
    for (unsigned i = 0; i < n; ++i) r[i] = i + k < 2 * n ? cat[i + k] : 0;
  }
};

// ---- PEXTRW / PINSRW ------------------------------------------------------------------------

// PEXTRW r32/r64, mm/xmm, imm8 (register source; the SSE4.1 memory form is not registered).
void OpPextrw(CpuCore& c, const Op& op) {
  const Operand& s = op.o[1];
  const bool mmx = s.kind == kOpMmx;
  if (!CheckFor(c, mmx)) return;
  const unsigned i = static_cast<unsigned>(op.o[2].disp) & (mmx ? 3 : 7);
  const uint64_t q = mmx ? c.s.st[s.reg].mant : c.s.xmm[s.reg][i / 4];
  c.SetReg(op.o[0].reg, 8, (q >> (16 * (i % 4))) & 0xffff);
  if (mmx) MmxTransition(c.s);
}
// PINSRW mm/xmm, r32/m16, imm8.
void OpPinsrw(CpuCore& c, const Op& op) {
  const Operand& d = op.o[0];
  const bool mmx = d.kind == kOpMmx;
  if (!CheckFor(c, mmx)) return;
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  const unsigned i = static_cast<unsigned>(op.o[2].disp) & (mmx ? 3 : 7);
  const unsigned sh = 16 * (i % 4);
  uint64_t& q = mmx ? c.s.st[d.reg].mant : c.s.xmm[d.reg][i / 4];
  const uint64_t nq = (q & ~(uint64_t{0xffff} << sh)) | ((v & 0xffff) << sh);
  if (mmx) {
    SetMmx(c.s, d.reg, nq);
    MmxTransition(c.s);
  } else {
    q = nq;
  }
}

// ---- SSE3 floating point: two SSE2 host operations on rearranged lanes ---------------------
// ADDSUBPS/PD: the even lanes are d - s, the odd ones d + s. Each host operation sees +0 in the
// lanes it does not produce (0 ± 0 raises no flag), and those lanes are masked off afterwards.
// HADD/HSUB: the pairs are gathered with integer shuffles (no FP operation, no flag) into two
// vectors, then one ADDPS/SUBPS (ADDPD/SUBPD) gives every result lane. Operand order: the
// lower element is the first operand in both (HSUB: lower - upper). The SDM writes HADD as
// "upper + lower", but the order only shows when both are NaN, and the hardware returns the
// lower element's NaN (found by the host-instruction sweep in cpu_simd_test.cc, Intel host).

Vec And(Vec a, Vec b) { return _mm_and_si128(a, b); }
void HAddsubps(Vec& d, Vec s) {
  const Vec even = _mm_set_epi32(0, -1, 0, -1), odd = _mm_set_epi32(-1, 0, -1, 0);
  Vec a = And(d, even), e = And(d, odd);
  asm volatile("subps %1, %0" : "+x"(a) : "x"(And(s, even)));
  asm volatile("addps %1, %0" : "+x"(e) : "x"(And(s, odd)));
  d = _mm_or_si128(And(a, even), And(e, odd));
}
void HAddsubpd(Vec& d, Vec s) {
  const Vec lo = _mm_set_epi64x(0, -1), hi = _mm_set_epi64x(-1, 0);
  Vec a = And(d, lo), e = And(d, hi);
  asm volatile("subpd %1, %0" : "+x"(a) : "x"(And(s, lo)));
  asm volatile("addpd %1, %0" : "+x"(e) : "x"(And(s, hi)));
  d = _mm_or_si128(And(a, lo), And(e, hi));
}
// (d0 d2 s0 s2) and (d1 d3 s1 s3).
Vec EvenPs(Vec d, Vec s) {
  return _mm_unpacklo_epi64(_mm_shuffle_epi32(d, 0x08), _mm_shuffle_epi32(s, 0x08));
}
Vec OddPs(Vec d, Vec s) {
  return _mm_unpacklo_epi64(_mm_shuffle_epi32(d, 0x0d), _mm_shuffle_epi32(s, 0x0d));
}
void HHaddps(Vec& d, Vec s) {
  Vec a = EvenPs(d, s);
  asm volatile("addps %1, %0" : "+x"(a) : "x"(OddPs(d, s)));
  d = a;
}
void HHsubps(Vec& d, Vec s) {
  Vec a = EvenPs(d, s);
  asm volatile("subps %1, %0" : "+x"(a) : "x"(OddPs(d, s)));
  d = a;
}
void HHaddpd(Vec& d, Vec s) {
  Vec a = _mm_unpacklo_epi64(d, s);
  asm volatile("addpd %1, %0" : "+x"(a) : "x"(_mm_unpackhi_epi64(d, s)));
  d = a;
}
void HHsubpd(Vec& d, Vec s) {
  Vec a = _mm_unpacklo_epi64(d, s);
  asm volatile("subpd %1, %0" : "+x"(a) : "x"(_mm_unpackhi_epi64(d, s)));
  d = a;
}

// ---- CVTPI2PS / CVTPI2PD / CVT(T)PS2PI / CVT(T)PD2PI ----------------------------------------
// The SSE2 XMM-only conversion on the host (CVTDQ2PS, CVTDQ2PD, CVT(T)PS2DQ, CVT(T)PD2DQ: the
// same conversion and flags per element), never the host's MMX forms (they would change the
// host's x87 state). Unused source lanes are zero (exact, no flag).

// CVTPI2PS xmm, mm/m64 (kDouble = false) / CVTPI2PD xmm, mm/m64. With an MMX source: the MMX
// rules (#MF) and transition; with a memory source neither (SDM).
template <bool kDouble>
void OpCvtpi2p(CpuCore& c, const Op& op) {
  const Operand& so = op.o[1];
  const bool mmx = so.kind == kOpMmx;
  if (!(mmx ? CheckSseMmx(c) : CheckSseAvailable(c))) return;
  uint64_t src;
  if (mmx) {
    src = c.s.st[so.reg].mant;
  } else {
    uint64_t lin;
    if (!MemLinear(c, op, so, 8, kRead, 0, &lin) || !c.ReadLin(lin, 8, &src)) return;
  }
  const uint64_t sq[2] = {src, 0};
  Vec d = _mm_setzero_si128();
  const uint32_t flags = RunHost(c.s.mxcsr, c.s.mxcsr, kDouble ? HCvtdq2pd : HCvtdq2ps, d, ToVec(sq));
  if (!SseCommit(c, flags)) return;
  uint64_t r[2];
  FromVec(d, r);
  c.s.xmm[op.o[0].reg][0] = r[0];
  if (kDouble) c.s.xmm[op.o[0].reg][1] = r[1];
  if (mmx) MmxTransition(c.s);
}

// CVT(T)PS2PI mm, xmm/m64 and CVT(T)PD2PI mm, xmm/m128 (aligned).
template <bool kDouble, bool kTruncate>
void OpCvtp2pi(CpuCore& c, const Op& op) {
  if (!CheckSseMmx(c)) return;
  uint64_t sq[2];
  if (!ReadSrc(c, op, op.o[1], kDouble ? 16 : 8, sq)) return;
  if (!kDouble) sq[1] = 0;
  const HostFn fn = kDouble ? (kTruncate ? HCvttpd2dq : HCvtpd2dq)
                            : (kTruncate ? HCvttps2dq : HCvtps2dq);
  Vec d = _mm_setzero_si128();
  const uint32_t flags = RunHost(c.s.mxcsr, c.s.mxcsr, fn, d, ToVec(sq));
  if (!SseCommit(c, flags)) return;
  uint64_t r[2];
  FromVec(d, r);
  SetMmx(c.s, op.o[0].reg, r[0]);
  MmxTransition(c.s);
}

// ---- RCPPS/RCPSS/RSQRTPS/RSQRTSS ------------------------------------------------------------
// Not the host instruction: Intel and AMD approximations differ. This implementation returns
// the correctly rounded (round to nearest) single-precision value of 1/x and 1/sqrt(x),
// computed with integer arithmetic only, so it is the same on every host; its relative error
// (<= 2^-24) is within the SDM's bound |rel err| <= 1.5 * 2^-12. It will generally differ from
// a real Intel or AMD part in the low bits. Special cases as the SDM gives them: no MXCSR flag,
// MXCSR RC/DAZ/FTZ ignored; ±0 and denormals (treated as ±0) give ±inf; ±inf gives ±0 (RCP)
// and +inf gives +0 (RSQRT); a NaN is returned quiet; RSQRT of a negative non-zero number (not
// a denormal, which counts as -0) gives the QNaN indefinite FFC00000H; RCP results that are
// tiny (below 2^-126 after rounding) are flushed to ±0 — the SDM leaves inputs in
// (1.11111111110100000000000B*2^125, 1.00000000000110000000001B*2^126) to the implementation,
// and the rule here gives a normal result exactly down to the input 2^126.

uint32_t RcpBits(uint32_t x) {
  const uint32_t sign = x & 0x80000000u, e = (x >> 23) & 0xff, f = x & 0x7fffffu;
  if (e == 0xff) return f ? x | 0x400000u : sign;  // NaN quieted / ±inf -> ±0
  if (e == 0) return sign | 0x7f800000u;           // ±0, denormal -> ±inf
  // x = M * 2^(e-150), M in [2^23, 2^24). 1/x = (2^47 / M) * 2^(-47-(e-150)).
  const uint64_t m = f | 0x800000u;
  uint64_t q = (uint64_t{1} << 47) / m;  // in (2^23, 2^24]
  const uint64_t rem = (uint64_t{1} << 47) - q * m;
  // Round to nearest: up when rem/m > 1/2. A tie (2 rem == m) would need 2^48/m odd, i.e. m a
  // power of two, which divides exactly.
  if (2 * rem > m) ++q;
  int exp = 150 - static_cast<int>(e) - 47 + 23 + 127;  // biased exponent for q in [2^23,2^24)
  if (q >= (uint64_t{1} << 24)) {  // M = 2^23, or rounded up to 2^24
    q >>= 1;
    ++exp;
  }
  if (exp <= 0) return sign;  // tiny: flushed to ±0
  return sign | (static_cast<uint32_t>(exp) << 23) | (static_cast<uint32_t>(q) & 0x7fffffu);
}

uint64_t Isqrt(uint64_t v) {  // floor(sqrt(v)), bit by bit
  uint64_t r = 0;
  for (int b = 31; b >= 0; --b) {
    const uint64_t t = r | (uint64_t{1} << b);
    if (t * t <= v) r = t;
  }
  return r;
}

uint32_t RsqrtBits(uint32_t x) {
  const uint32_t sign = x & 0x80000000u, e = (x >> 23) & 0xff, f = x & 0x7fffffu;
  if (e == 0xff && f) return x | 0x400000u;         // NaN quieted
  if (e == 0) return sign | 0x7f800000u;            // ±0, denormal -> ±inf
  if (sign) return 0xffc00000u;                      // negative (incl. -inf): indefinite
  if (e == 0xff) return 0;                           // +inf -> +0
  // x = M * 2^E with E = e - 150 made even (M in [2^23, 2^25)).
  uint64_t m = f | 0x800000u;
  int ex = static_cast<int>(e) - 150;
  if (ex & 1) {
    m <<= 1;
    --ex;
  }
  // 1/sqrt(x) = sqrt(2^76 / M) * 2^(-38 - E/2); t = sqrt(2^76/M) in (2^25.5, 2^26.5].
  // y = floor(t) = floor(sqrt(floor(2^76/M))); 2^76/M <= 2^53 fits.
  const uint64_t y = Isqrt(static_cast<uint64_t>((static_cast<unsigned __int128>(1) << 76) / m));
  const unsigned drop = y >= (uint64_t{1} << 26) ? 3 : 2;  // keep 24 significant bits
  uint64_t q = y >> drop;
  // Round to nearest: t > (q + 1/2) * 2^drop, an integer, iff y >= it (t is never exactly that
  // integer: t is either irrational or a power of two, whose discarded bits are 0).
  if ((y & ((uint64_t{1} << drop) - 1)) >= (uint64_t{1} << (drop - 1))) ++q;
  int exp = 23 + static_cast<int>(drop) - 38 - ex / 2 + 127;  // value = q * 2^(drop-38-E/2)
  if (q >= (uint64_t{1} << 24)) {
    q >>= 1;
    ++exp;
  }
  return (static_cast<uint32_t>(exp) << 23) | (static_cast<uint32_t>(q) & 0x7fffffu);
}

// RCPPS/RSQRTPS xmm, xmm/m128 (aligned), RCPSS/RSQRTSS xmm, xmm/m32 (the rest kept).
template <uint32_t (*F)(uint32_t), bool kPacked>
void OpApprox(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  uint64_t sq[2];
  if (!ReadSrc(c, op, op.o[1], kPacked ? 16 : 4, sq)) return;
  uint64_t* dq = c.s.xmm[op.o[0].reg];
  for (unsigned i = 0; i < (kPacked ? 4u : 1u); ++i) {
    const unsigned sh = 32 * (i % 2);
    const uint32_t r = F(static_cast<uint32_t>(sq[i / 2] >> sh));
    dq[i / 2] = (dq[i / 2] & ~(uint64_t{0xffffffffu} << sh)) | (uint64_t{r} << sh);
  }
}

}  // namespace

// SSE2 MOVSD (F2 0F 10/11) shares its mnemonic with the string MOVSD, like CMPSD.
Handler SseMovsdHandler() { return OpMovScalar<8>; }

// SSE2 CMPSD (F2 0F C2) shares its mnemonic with the string CMPSD; decode.cc asks for it here.
Handler SseCmpsdHandler() { return OpCmp<kCmpsd, 8>; }

bool HostMxcsrIsDefault() { return (HostGetCsr() & ~0x3fu) == 0x1f80u; }

void RegisterSse(Handler* t) {
  t[ZYDIS_MNEMONIC_ADDSS] = OpXmmBasic<HAddss, 4, 1, 4>;
  t[ZYDIS_MNEMONIC_ADDSD] = OpXmmBasic<HAddsd, 8, 1, 8>;
  t[ZYDIS_MNEMONIC_ADDPS] = OpXmmBasic<HAddps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_ADDPD] = OpXmmBasic<HAddpd, 16, 2, 8>;
  t[ZYDIS_MNEMONIC_SUBSS] = OpXmmBasic<HSubss, 4, 1, 4>;
  t[ZYDIS_MNEMONIC_SUBSD] = OpXmmBasic<HSubsd, 8, 1, 8>;
  t[ZYDIS_MNEMONIC_SUBPS] = OpXmmBasic<HSubps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_SUBPD] = OpXmmBasic<HSubpd, 16, 2, 8>;
  t[ZYDIS_MNEMONIC_MULSS] = OpXmmBasic<HMulss, 4, 1, 4>;
  t[ZYDIS_MNEMONIC_MULSD] = OpXmmBasic<HMulsd, 8, 1, 8>;
  t[ZYDIS_MNEMONIC_MULPS] = OpXmmBasic<HMulps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_MULPD] = OpXmmBasic<HMulpd, 16, 2, 8>;
  t[ZYDIS_MNEMONIC_DIVSS] = OpXmmBasic<HDivss, 4, 1, 4>;
  t[ZYDIS_MNEMONIC_DIVSD] = OpXmmBasic<HDivsd, 8, 1, 8>;
  t[ZYDIS_MNEMONIC_DIVPS] = OpXmmBasic<HDivps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_DIVPD] = OpXmmBasic<HDivpd, 16, 2, 8>;
  t[ZYDIS_MNEMONIC_SQRTSS] = OpXmm<HSqrtss, 4>;
  t[ZYDIS_MNEMONIC_SQRTSD] = OpXmm<HSqrtsd, 8>;
  t[ZYDIS_MNEMONIC_SQRTPS] = OpXmm<HSqrtps, 16>;
  t[ZYDIS_MNEMONIC_SQRTPD] = OpXmm<HSqrtpd, 16>;
  t[ZYDIS_MNEMONIC_MINSS] = OpXmm<HMinss, 4>;
  t[ZYDIS_MNEMONIC_MINSD] = OpXmm<HMinsd, 8>;
  t[ZYDIS_MNEMONIC_MINPS] = OpXmm<HMinps, 16>;
  t[ZYDIS_MNEMONIC_MINPD] = OpXmm<HMinpd, 16>;
  t[ZYDIS_MNEMONIC_MAXSS] = OpXmm<HMaxss, 4>;
  t[ZYDIS_MNEMONIC_MAXSD] = OpXmm<HMaxsd, 8>;
  t[ZYDIS_MNEMONIC_MAXPS] = OpXmm<HMaxps, 16>;
  t[ZYDIS_MNEMONIC_MAXPD] = OpXmm<HMaxpd, 16>;
  t[ZYDIS_MNEMONIC_CMPPS] = OpCmp<kCmpps, 16>;
  t[ZYDIS_MNEMONIC_CMPPD] = OpCmp<kCmppd, 16>;
  t[ZYDIS_MNEMONIC_CMPSS] = OpCmp<kCmpss, 4>;
  // CMPSD: see SseCmpsdHandler.
  t[ZYDIS_MNEMONIC_COMISS] = OpComis<false, false>;
  t[ZYDIS_MNEMONIC_COMISD] = OpComis<true, false>;
  t[ZYDIS_MNEMONIC_UCOMISS] = OpComis<false, true>;
  t[ZYDIS_MNEMONIC_UCOMISD] = OpComis<true, true>;
  t[ZYDIS_MNEMONIC_CVTSI2SS] = OpCvtsi2s<false>;
  t[ZYDIS_MNEMONIC_CVTSI2SD] = OpCvtsi2s<true>;
  t[ZYDIS_MNEMONIC_CVTSS2SI] = OpCvts2si<false, false>;
  t[ZYDIS_MNEMONIC_CVTSD2SI] = OpCvts2si<true, false>;
  t[ZYDIS_MNEMONIC_CVTTSS2SI] = OpCvts2si<false, true>;
  t[ZYDIS_MNEMONIC_CVTTSD2SI] = OpCvts2si<true, true>;
  t[ZYDIS_MNEMONIC_CVTSS2SD] = OpXmm<HCvtss2sd, 4>;
  t[ZYDIS_MNEMONIC_CVTSD2SS] = OpXmm<HCvtsd2ss, 8, 1, 4>;
  t[ZYDIS_MNEMONIC_CVTDQ2PS] = OpXmm<HCvtdq2ps, 16>;
  t[ZYDIS_MNEMONIC_CVTPS2DQ] = OpXmm<HCvtps2dq, 16>;
  t[ZYDIS_MNEMONIC_CVTTPS2DQ] = OpXmm<HCvttps2dq, 16>;
  t[ZYDIS_MNEMONIC_CVTDQ2PD] = OpXmm<HCvtdq2pd, 8>;
  t[ZYDIS_MNEMONIC_CVTPD2DQ] = OpXmm<HCvtpd2dq, 16>;
  t[ZYDIS_MNEMONIC_CVTTPD2DQ] = OpXmm<HCvttpd2dq, 16>;
  t[ZYDIS_MNEMONIC_CVTPS2PD] = OpXmm<HCvtps2pd, 8>;
  t[ZYDIS_MNEMONIC_CVTPD2PS] = OpXmm<HCvtpd2ps, 16, 2, 4>;
  t[ZYDIS_MNEMONIC_MOVSS] = OpMovScalar<4>;
  // MOVSD: see SseMovsdHandler.
  t[ZYDIS_MNEMONIC_PADDB] = OpInt<Lanewise<uint8_t, Add<uint8_t>>>;
  t[ZYDIS_MNEMONIC_PADDW] = OpInt<Lanewise<uint16_t, Add<uint16_t>>>;
  t[ZYDIS_MNEMONIC_PADDD] = OpInt<Lanewise<uint32_t, Add<uint32_t>>>;
  t[ZYDIS_MNEMONIC_PADDQ] = OpInt<Lanewise<uint64_t, Add<uint64_t>>>;
  t[ZYDIS_MNEMONIC_PSUBB] = OpInt<Lanewise<uint8_t, Sub<uint8_t>>>;
  t[ZYDIS_MNEMONIC_PSUBW] = OpInt<Lanewise<uint16_t, Sub<uint16_t>>>;
  t[ZYDIS_MNEMONIC_PSUBD] = OpInt<Lanewise<uint32_t, Sub<uint32_t>>>;
  t[ZYDIS_MNEMONIC_PSUBQ] = OpInt<Lanewise<uint64_t, Sub<uint64_t>>>;
  t[ZYDIS_MNEMONIC_PADDSB] = OpInt<Lanewise<int8_t, AddSat<int8_t>>>;
  t[ZYDIS_MNEMONIC_PADDSW] = OpInt<Lanewise<int16_t, AddSat<int16_t>>>;
  t[ZYDIS_MNEMONIC_PADDUSB] = OpInt<Lanewise<uint8_t, AddSat<uint8_t>>>;
  t[ZYDIS_MNEMONIC_PADDUSW] = OpInt<Lanewise<uint16_t, AddSat<uint16_t>>>;
  t[ZYDIS_MNEMONIC_PSUBSB] = OpInt<Lanewise<int8_t, SubSat<int8_t>>>;
  t[ZYDIS_MNEMONIC_PSUBSW] = OpInt<Lanewise<int16_t, SubSat<int16_t>>>;
  t[ZYDIS_MNEMONIC_PSUBUSB] = OpInt<Lanewise<uint8_t, SubSat<uint8_t>>>;
  t[ZYDIS_MNEMONIC_PSUBUSW] = OpInt<Lanewise<uint16_t, SubSat<uint16_t>>>;
  t[ZYDIS_MNEMONIC_PCMPEQB] = OpInt<Lanewise<uint8_t, CmpEq<uint8_t>>>;
  t[ZYDIS_MNEMONIC_PCMPEQW] = OpInt<Lanewise<uint16_t, CmpEq<uint16_t>>>;
  t[ZYDIS_MNEMONIC_PCMPEQD] = OpInt<Lanewise<uint32_t, CmpEq<uint32_t>>>;
  t[ZYDIS_MNEMONIC_PCMPGTB] = OpInt<Lanewise<int8_t, CmpGt<int8_t>>>;
  t[ZYDIS_MNEMONIC_PCMPGTW] = OpInt<Lanewise<int16_t, CmpGt<int16_t>>>;
  t[ZYDIS_MNEMONIC_PCMPGTD] = OpInt<Lanewise<int32_t, CmpGt<int32_t>>>;
  t[ZYDIS_MNEMONIC_PMOVMSKB] = OpPmovmskb;
  t[ZYDIS_MNEMONIC_PSHUFD] = OpInt<Pshufd>;
  t[ZYDIS_MNEMONIC_PSHUFLW] = OpInt<Pshufw8<false>>;
  t[ZYDIS_MNEMONIC_PSHUFHW] = OpInt<Pshufw8<true>>;
  t[ZYDIS_MNEMONIC_SHUFPS] = OpInt<Shufps>;
  t[ZYDIS_MNEMONIC_SHUFPD] = OpInt<Shufpd>;
  t[ZYDIS_MNEMONIC_PUNPCKLBW] = OpInt<Unpack<uint8_t, false>>;
  t[ZYDIS_MNEMONIC_PUNPCKLWD] = OpInt<Unpack<uint16_t, false>>;
  t[ZYDIS_MNEMONIC_PUNPCKLDQ] = OpInt<Unpack<uint32_t, false>>;
  t[ZYDIS_MNEMONIC_PUNPCKLQDQ] = OpInt<Unpack<uint64_t, false>>;
  t[ZYDIS_MNEMONIC_PUNPCKHBW] = OpInt<Unpack<uint8_t, true>>;
  t[ZYDIS_MNEMONIC_PUNPCKHWD] = OpInt<Unpack<uint16_t, true>>;
  t[ZYDIS_MNEMONIC_PUNPCKHDQ] = OpInt<Unpack<uint32_t, true>>;
  t[ZYDIS_MNEMONIC_PUNPCKHQDQ] = OpInt<Unpack<uint64_t, true>>;
  t[ZYDIS_MNEMONIC_UNPCKLPS] = OpInt<Unpack<uint32_t, false>>;
  t[ZYDIS_MNEMONIC_UNPCKHPS] = OpInt<Unpack<uint32_t, true>>;
  t[ZYDIS_MNEMONIC_UNPCKLPD] = OpInt<Unpack<uint64_t, false>>;
  t[ZYDIS_MNEMONIC_UNPCKHPD] = OpInt<Unpack<uint64_t, true>>;
  // ---- branch `simd`: the rest of SSE/SSE2, SSE3, SSSE3 ----
  t[ZYDIS_MNEMONIC_MOVLPS] = OpMovHalf<false>;
  t[ZYDIS_MNEMONIC_MOVLPD] = OpMovHalf<false>;
  t[ZYDIS_MNEMONIC_MOVHPS] = OpMovHalf<true>;
  t[ZYDIS_MNEMONIC_MOVHPD] = OpMovHalf<true>;
  t[ZYDIS_MNEMONIC_MOVHLPS] = OpMovHlLh<false>;
  t[ZYDIS_MNEMONIC_MOVLHPS] = OpMovHlLh<true>;
  t[ZYDIS_MNEMONIC_MOVNTPS] = OpMovnt128;
  t[ZYDIS_MNEMONIC_MOVNTPD] = OpMovnt128;
  t[ZYDIS_MNEMONIC_MOVNTDQ] = OpMovnt128;
  t[ZYDIS_MNEMONIC_MOVNTQ] = OpMovntq;
  t[ZYDIS_MNEMONIC_MOVNTI] = OpMovnti;
  t[ZYDIS_MNEMONIC_LDDQU] = OpLddqu;
  t[ZYDIS_MNEMONIC_MOVQ2DQ] = OpMovq2dq;
  t[ZYDIS_MNEMONIC_MOVDQ2Q] = OpMovdq2q;
  t[ZYDIS_MNEMONIC_MOVMSKPS] = OpMovmskp<false>;
  t[ZYDIS_MNEMONIC_MOVMSKPD] = OpMovmskp<true>;
  t[ZYDIS_MNEMONIC_MOVSLDUP] = OpMovsdup<0>;
  t[ZYDIS_MNEMONIC_MOVSHDUP] = OpMovsdup<1>;
  t[ZYDIS_MNEMONIC_MOVDDUP] = OpMovddup;
  t[ZYDIS_MNEMONIC_MASKMOVQ] = OpMaskmov;
  t[ZYDIS_MNEMONIC_MASKMOVDQU] = OpMaskmov;
  t[ZYDIS_MNEMONIC_PSLLW] = OpShift<uint16_t, kShl>;
  t[ZYDIS_MNEMONIC_PSLLD] = OpShift<uint32_t, kShl>;
  t[ZYDIS_MNEMONIC_PSLLQ] = OpShift<uint64_t, kShl>;
  t[ZYDIS_MNEMONIC_PSRLW] = OpShift<uint16_t, kShr>;
  t[ZYDIS_MNEMONIC_PSRLD] = OpShift<uint32_t, kShr>;
  t[ZYDIS_MNEMONIC_PSRLQ] = OpShift<uint64_t, kShr>;
  t[ZYDIS_MNEMONIC_PSRAW] = OpShift<uint16_t, kSar>;
  t[ZYDIS_MNEMONIC_PSRAD] = OpShift<uint32_t, kSar>;
  t[ZYDIS_MNEMONIC_PSLLDQ] = OpByteShift<true>;
  t[ZYDIS_MNEMONIC_PSRLDQ] = OpByteShift<false>;
  t[ZYDIS_MNEMONIC_PMULLW] = OpInt<Lanewise<uint16_t, MulLo>>;
  t[ZYDIS_MNEMONIC_PMULHW] = OpInt<Lanewise<int16_t, MulHiS>>;
  t[ZYDIS_MNEMONIC_PMULHUW] = OpInt<Lanewise<uint16_t, MulHiU>>;
  t[ZYDIS_MNEMONIC_PMULUDQ] = OpInt<Pmuludq>;
  t[ZYDIS_MNEMONIC_PMADDWD] = OpInt<Pmaddwd>;
  t[ZYDIS_MNEMONIC_PSADBW] = OpInt<Psadbw>;
  t[ZYDIS_MNEMONIC_PAVGB] = OpInt<Lanewise<uint8_t, Avg<uint8_t>>>;
  t[ZYDIS_MNEMONIC_PAVGW] = OpInt<Lanewise<uint16_t, Avg<uint16_t>>>;
  t[ZYDIS_MNEMONIC_PMINUB] = OpInt<Lanewise<uint8_t, Min<uint8_t>>>;
  t[ZYDIS_MNEMONIC_PMAXUB] = OpInt<Lanewise<uint8_t, Max<uint8_t>>>;
  t[ZYDIS_MNEMONIC_PMINSW] = OpInt<Lanewise<int16_t, Min<int16_t>>>;
  t[ZYDIS_MNEMONIC_PMAXSW] = OpInt<Lanewise<int16_t, Max<int16_t>>>;
  t[ZYDIS_MNEMONIC_PACKSSWB] = OpInt<Pack<int16_t, int8_t>>;
  t[ZYDIS_MNEMONIC_PACKSSDW] = OpInt<Pack<int32_t, int16_t>>;
  t[ZYDIS_MNEMONIC_PACKUSWB] = OpInt<Pack<int16_t, uint8_t>>;
  t[ZYDIS_MNEMONIC_PSHUFW] = OpInt<Pshufw>;
  t[ZYDIS_MNEMONIC_PEXTRW] = OpPextrw;
  t[ZYDIS_MNEMONIC_PINSRW] = OpPinsrw;
  t[ZYDIS_MNEMONIC_CVTPI2PS] = OpCvtpi2p<false>;
  t[ZYDIS_MNEMONIC_CVTPI2PD] = OpCvtpi2p<true>;
  t[ZYDIS_MNEMONIC_CVTPS2PI] = OpCvtp2pi<false, false>;
  t[ZYDIS_MNEMONIC_CVTTPS2PI] = OpCvtp2pi<false, true>;
  t[ZYDIS_MNEMONIC_CVTPD2PI] = OpCvtp2pi<true, false>;
  t[ZYDIS_MNEMONIC_CVTTPD2PI] = OpCvtp2pi<true, true>;
  t[ZYDIS_MNEMONIC_RCPPS] = OpApprox<RcpBits, true>;
  t[ZYDIS_MNEMONIC_RCPSS] = OpApprox<RcpBits, false>;
  t[ZYDIS_MNEMONIC_RSQRTPS] = OpApprox<RsqrtBits, true>;
  t[ZYDIS_MNEMONIC_RSQRTSS] = OpApprox<RsqrtBits, false>;
  t[ZYDIS_MNEMONIC_ADDSUBPS] = OpXmmBasic<HAddsubps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_ADDSUBPD] = OpXmmBasic<HAddsubpd, 16, 2, 8>;
  t[ZYDIS_MNEMONIC_HADDPS] = OpXmm<HHaddps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_HADDPD] = OpXmm<HHaddpd, 16, 2, 8>;
  t[ZYDIS_MNEMONIC_HSUBPS] = OpXmm<HHsubps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_HSUBPD] = OpXmm<HHsubpd, 16, 2, 8>;
  t[ZYDIS_MNEMONIC_PSHUFB] = OpInt<Pshufb>;
  t[ZYDIS_MNEMONIC_PHADDW] = OpInt<Horizontal<uint16_t, Add<uint16_t>>>;
  t[ZYDIS_MNEMONIC_PHADDD] = OpInt<Horizontal<uint32_t, Add<uint32_t>>>;
  t[ZYDIS_MNEMONIC_PHADDSW] = OpInt<Horizontal<int16_t, AddSat<int16_t>>>;
  t[ZYDIS_MNEMONIC_PHSUBW] = OpInt<Horizontal<uint16_t, Sub<uint16_t>>>;
  t[ZYDIS_MNEMONIC_PHSUBD] = OpInt<Horizontal<uint32_t, Sub<uint32_t>>>;
  t[ZYDIS_MNEMONIC_PHSUBSW] = OpInt<Horizontal<int16_t, SubSat<int16_t>>>;
  t[ZYDIS_MNEMONIC_PMADDUBSW] = OpInt<Pmaddubsw>;
  t[ZYDIS_MNEMONIC_PMULHRSW] = OpInt<Lanewise<int16_t, MulHrs>>;
  t[ZYDIS_MNEMONIC_PSIGNB] = OpInt<Lanewise<uint8_t, Sign<uint8_t>>>;
  t[ZYDIS_MNEMONIC_PSIGNW] = OpInt<Lanewise<uint16_t, Sign<uint16_t>>>;
  t[ZYDIS_MNEMONIC_PSIGND] = OpInt<Lanewise<uint32_t, Sign<uint32_t>>>;
  t[ZYDIS_MNEMONIC_PABSB] = OpInt<Pabs<uint8_t>>;
  t[ZYDIS_MNEMONIC_PABSW] = OpInt<Pabs<uint16_t>>;
  t[ZYDIS_MNEMONIC_PABSD] = OpInt<Pabs<uint32_t>>;
  t[ZYDIS_MNEMONIC_PALIGNR] = OpInt<Palignr>;
}

}  // namespace vmrr
