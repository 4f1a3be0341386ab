// Fast paths for XMM memory operands (SSE loads/stores in sse.cc and fpu.cc): in 64-bit mode,
// with no FS/GS override (segment base ignored, as in fastpath.cc), an access that stays in
// one page, is aligned as required and hits a TLB entry with the needed rights and a host
// pointer (RAM, not watched) is served directly. Anything else returns false and the caller
// takes its generic path, which raises the faults (#GP alignment, #PF, canonical) in the
// architectural order; the fast path only ever serves accesses that path would complete
// without a fault, so both give the same result.
#pragma once

#include <cstring>

#include "hv-hooks/cpu/core.h"

namespace vmrr {

inline bool XmmFastLinear(const CpuCore& c, const Op& op, const Operand& o, unsigned bytes,
                          unsigned align, uint64_t* lin) {
  if (c.mode != kModeLong64 || o.seg == kFs || o.seg == kGs) return false;
  uint64_t a = o.disp;
  if (o.base == kRipReg) a += c.next_rip;
  else if (o.base != kNoReg) a += c.s.gpr[o.base];
  if (o.index != kNoReg) a += c.s.gpr[o.index] * o.scale;
  if (op.asize == 4) a &= 0xffffffffu;
  *lin = a;
  return static_cast<uint64_t>(static_cast<int64_t>(a << 16) >> 16) == a &&
         (a & 0xfff) + bytes <= 4096 && (align == 0 || (a & (align - 1)) == 0);
}

// Reads `bytes` (4, 8 or 16) into the low bytes of q (q must be zeroed by the caller for
// 4 and 8). false = not served here.
inline bool XmmFastRead(CpuCore& c, const Op& op, const Operand& o, unsigned bytes,
                        unsigned align, uint64_t q[2]) {
  uint64_t lin;
  if (!XmmFastLinear(c, op, o, bytes, align, &lin)) return false;
  const TlbEntry& e = c.tlb[TlbIndex(lin >> 12)];
  const uint8_t need = c.s.cpl == 3 ? kRightR_U : kRightR_S;
  if (e.vpage != (lin >> 12) || !(e.rights & need) || !e.host) return false;
  std::memcpy(q, e.host + (lin & 0xfff), bytes);
  return true;
}

inline bool XmmFastWrite(CpuCore& c, const Op& op, const Operand& o, unsigned bytes,
                         unsigned align, const uint64_t q[2]) {
  uint64_t lin;
  if (!XmmFastLinear(c, op, o, bytes, align, &lin)) return false;
  const TlbEntry& e = c.tlb[TlbIndex(lin >> 12)];
  const uint8_t need = c.s.cpl == 3 ? kRightW_U : kRightW_S;
  if (e.vpage != (lin >> 12) || !(e.rights & need) || !e.host) return false;
  std::memcpy(e.host + (lin & 0xfff), q, bytes);
  c.mem.NoteWrite(e.ppage + (lin & 0xfff), bytes);  // may invalidate decoded code
  return true;
}

}  // namespace vmrr
