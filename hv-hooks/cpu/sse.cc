// SSE/SSE2 floating point (issue 11, see FPU_NOTES.md): scalar and packed single/double
// ADD/SUB/MUL/DIV/SQRT/MIN/MAX, CMPcc, (U)COMIS, and the FP conversions.
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

Vec ToVec(const uint64_t q[2]) { return _mm_set_epi64x(static_cast<long long>(q[1]), static_cast<long long>(q[0])); }
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
void ExecXmm(CpuCore& c, const Op& op, HostFn fn, unsigned bytes, unsigned uf_lanes = 0,
             unsigned uf_size = 0) {
  if (!CheckSseAvailable(c)) return;
  uint64_t sq[2];
  if (!ReadSrc(c, op, op.o[1], bytes, sq)) return;
  uint64_t* dq = c.s.xmm[op.o[0].reg];
  Vec d = ToVec(dq);
  const bool um_clear = !(c.s.mxcsr & 0x800);
  const uint32_t mxcsr = um_clear ? c.s.mxcsr & ~0x8000u : c.s.mxcsr;
  uint32_t flags = RunHost(mxcsr, c.s.mxcsr, fn, d, ToVec(sq));
  if (um_clear && uf_lanes && AnyDenormal(d, uf_size, uf_lanes)) flags |= 0x10;
  if (!SseCommit(c, flags)) return;
  FromVec(d, dq);
}

template <HostFn kFn, unsigned kBytes, unsigned kUfLanes = 0, unsigned kUfSize = 0>
void OpXmm(CpuCore& c, const Op& op) { ExecXmm(c, op, kFn, kBytes, kUfLanes, kUfSize); }

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

}  // namespace

// SSE2 MOVSD (F2 0F 10/11) shares its mnemonic with the string MOVSD, like CMPSD.
Handler SseMovsdHandler() { return OpMovScalar<8>; }

// SSE2 CMPSD (F2 0F C2) shares its mnemonic with the string CMPSD; decode.cc asks for it here.
Handler SseCmpsdHandler() { return OpCmp<kCmpsd, 8>; }

void RegisterSse(Handler* t) {
  t[ZYDIS_MNEMONIC_ADDSS] = OpXmm<HAddss, 4, 1, 4>;
  t[ZYDIS_MNEMONIC_ADDSD] = OpXmm<HAddsd, 8, 1, 8>;
  t[ZYDIS_MNEMONIC_ADDPS] = OpXmm<HAddps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_ADDPD] = OpXmm<HAddpd, 16, 2, 8>;
  t[ZYDIS_MNEMONIC_SUBSS] = OpXmm<HSubss, 4, 1, 4>;
  t[ZYDIS_MNEMONIC_SUBSD] = OpXmm<HSubsd, 8, 1, 8>;
  t[ZYDIS_MNEMONIC_SUBPS] = OpXmm<HSubps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_SUBPD] = OpXmm<HSubpd, 16, 2, 8>;
  t[ZYDIS_MNEMONIC_MULSS] = OpXmm<HMulss, 4, 1, 4>;
  t[ZYDIS_MNEMONIC_MULSD] = OpXmm<HMulsd, 8, 1, 8>;
  t[ZYDIS_MNEMONIC_MULPS] = OpXmm<HMulps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_MULPD] = OpXmm<HMulpd, 16, 2, 8>;
  t[ZYDIS_MNEMONIC_DIVSS] = OpXmm<HDivss, 4, 1, 4>;
  t[ZYDIS_MNEMONIC_DIVSD] = OpXmm<HDivsd, 8, 1, 8>;
  t[ZYDIS_MNEMONIC_DIVPS] = OpXmm<HDivps, 16, 4, 4>;
  t[ZYDIS_MNEMONIC_DIVPD] = OpXmm<HDivpd, 16, 2, 8>;
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
}

}  // namespace vmrr
