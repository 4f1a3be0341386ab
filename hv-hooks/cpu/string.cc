// String instructions (MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS) with REP/REPE/REPNE.
// Every iteration retires as one instruction: a REP loop stops at the run's target icount
// or when an event is pending, leaving RIP on the instruction so it resumes exactly there.
#include <Zydis/Zydis.h>

#include <algorithm>
#include <cstring>

#include "hv-hooks/cpu/core.h"

namespace vmrr {
namespace {

enum StrKind { kMovs, kCmps, kStos, kLods, kScas, kIns, kOuts };

template <StrKind K, unsigned N>
bool Iteration(CpuCore& c, const Op& op, uint64_t amask) {
  const int64_t step = (c.s.rflags & kFlagDf) ? -static_cast<int64_t>(N) : N;
  const uint8_t src_seg = op.seg_ovr != 0xff ? op.seg_ovr : static_cast<uint8_t>(kDs);
  const uint64_t si = c.s.gpr[kRsi] & amask, di = c.s.gpr[kRdi] & amask;
  const unsigned as = op.asize;
  uint64_t a, b;
  switch (K) {
    case kMovs:
      if (!c.ReadSeg(src_seg, si, N, &a) || !c.WriteSeg(kEs, di, N, a)) return false;
      c.SetReg(kRsi, as, si + step);
      c.SetReg(kRdi, as, di + step);
      return true;
    case kStos:
      if (!c.WriteSeg(kEs, di, N, c.GetReg(kRax, N))) return false;
      c.SetReg(kRdi, as, di + step);
      return true;
    case kLods:
      if (!c.ReadSeg(src_seg, si, N, &a)) return false;
      c.SetReg(kRax, N, a);
      c.SetReg(kRsi, as, si + step);
      return true;
    case kCmps: case kScas: {
      if (K == kCmps) {
        if (!c.ReadSeg(src_seg, si, N, &a) || !c.ReadSeg(kEs, di, N, &b)) return false;
      } else {
        a = c.GetReg(kRax, N);
        if (!c.ReadSeg(kEs, di, N, &b)) return false;
      }
      const uint64_t m = SizeMask(N), r = (a - b) & m;
      uint64_t f = 0;
      if (r == 0) f |= kFlagZf;
      if (r & SignBit(N)) f |= kFlagSf;
      if (Parity(r)) f |= kFlagPf;
      if (a < b) f |= kFlagCf;
      if (((a ^ b) & (a ^ r)) & SignBit(N)) f |= kFlagOf;
      if ((a ^ b ^ r) & 0x10) f |= kFlagAf;
      const uint64_t mask = kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagOf;
      c.s.rflags = (c.s.rflags & ~mask) | f;
      if (K == kCmps) c.SetReg(kRsi, as, si + step);
      c.SetReg(kRdi, as, di + step);
      return true;
    }
    case kIns: {
      const uint16_t port = static_cast<uint16_t>(c.s.gpr[kRdx]);
      if (!c.ProbeWrite(kEs, di, N)) return false;
      const uint64_t v = c.platform.PortIn(port, N);
      c.end_block = true;
      if (!c.WriteSeg(kEs, di, N, v)) return false;
      c.SetReg(kRdi, as, di + step);
      return true;
    }
    case kOuts: {
      const uint16_t port = static_cast<uint16_t>(c.s.gpr[kRdx]);
      if (!c.ReadSeg(src_seg, si, N, &a)) return false;
      c.platform.PortOut(port, N, static_cast<uint32_t>(a));
      c.end_block = true;
      c.SetReg(kRsi, as, si + step);
      return true;
    }
  }
  return false;
}

// The host address of [lin, lin + len) if the TLB already maps it to one RAM page with the
// rights needed; nullptr otherwise (the slow path then walks and faults exactly as it should).
uint8_t* TlbHit(CpuCore& c, uint64_t lin, uint64_t len, uint8_t need, uint64_t* gpa) {
  if (static_cast<uint64_t>(static_cast<int64_t>(lin << 16) >> 16) != lin) return nullptr;
  if ((lin & 0xfff) + len > 4096) return nullptr;
  const TlbEntry& e = c.tlb[TlbIndex(lin >> 12)];
  if (e.vpage != (lin >> 12) || !(e.rights & need) || !e.host) return nullptr;
  *gpa = e.ppage + (lin & 0xfff);
  return e.host + (lin & 0xfff);
}

// REP MOVS/STOS in 64-bit mode, DF=0: as many whole iterations as fit in the current source
// and destination pages, the remaining count and the icount budget, in one copy or fill.
// Returns the iterations done (0 = use the per-iteration path).
template <StrKind K, unsigned N>
uint64_t FastChunk(CpuCore& c, const Op& op, uint64_t count, uint64_t limit) {
  const uint64_t amask = c.AddrMask(op.asize);
  const uint64_t di = c.s.gpr[kRdi] & amask, si = c.s.gpr[kRsi] & amask;
  const bool user = c.s.cpl == 3;
  uint64_t n = std::min(count, limit);
  n = std::min<uint64_t>(n, (4096 - (di & 0xfff)) / N);
  if (K == kMovs) n = std::min<uint64_t>(n, (4096 - (si & 0xfff)) / N);
  if (n == 0) return 0;
  if (op.asize != 8 && (di + n * N > amask || si + n * N > amask)) return 0;  // wraps
  uint64_t dgpa, sgpa = 0;
  uint8_t* dst = TlbHit(c, di, n * N, user ? kRightW_U : kRightW_S, &dgpa);
  if (!dst) return 0;
  if (K == kMovs) {
    const uint8_t* src = TlbHit(c, si, n * N, user ? kRightR_U : kRightR_S, &sgpa);
    if (!src) return 0;
    if (sgpa < dgpa + n * N && dgpa < sgpa + n * N) return 0;  // overlapping: element by element
    std::memcpy(dst, src, n * N);
    c.SetReg(kRsi, op.asize, si + n * N);
  } else {
    const uint64_t v = c.s.gpr[kRax];
    if (N == 1) {
      std::memset(dst, static_cast<int>(v & 0xff), n);
    } else {
      for (uint64_t i = 0; i < n; ++i) std::memcpy(dst + i * N, &v, N);
    }
  }
  c.SetReg(kRdi, op.asize, di + n * N);
  c.SetReg(kRcx, op.asize, count - n);
  c.mem.NoteWrite(dgpa, n * N);  // may invalidate decoded code (sets end_block)
  return n;
}

template <StrKind K, unsigned N>
void OpString(CpuCore& c, const Op& op) {
  if ((K == kIns || K == kOuts) && !c.IoAllowed(static_cast<uint16_t>(c.s.gpr[kRdx]), N)) return;
  const uint64_t amask = c.AddrMask(op.asize);
  if (!op.rep) {
    Iteration<K, N>(c, op, amask);
    return;
  }
  const bool cond = K == kCmps || K == kScas;
  const uint64_t budget = c.target > c.icount ? c.target - c.icount : 1;
  uint64_t done = 0;
  const bool fast = (K == kMovs || K == kStos) && c.long64() && !(c.s.rflags & kFlagDf) &&
                    (K == kStos || (op.seg_ovr != kFs && op.seg_ovr != kGs));
  for (;;) {
    uint64_t count = c.GetReg(kRcx, op.asize);
    if (count == 0) break;
    if (fast) {
      const bool was_end_fast = c.end_block;
      c.end_block = false;
      const uint64_t n = FastChunk<K, N>(c, op, count, budget - done);
      const bool code_write = c.end_block;
      c.end_block = was_end_fast || code_write;
      if (n > 0) {
        done += n;
        if (count - n == 0) break;
        const bool event = (c.intr && (c.s.rflags & kFlagIf)) || c.nmi_pending ||
                           c.exit_requested || code_write || (c.s.rflags & kFlagTf);
        if (done >= budget || event) {
          c.icount += done - 1;
          c.next_rip = c.s.rip;
          c.end_block = true;
          return;
        }
        continue;
      }
    }
    const bool was_end = c.end_block;
    c.end_block = false;
    if (!Iteration<K, N>(c, op, amask)) {
      c.icount += done;  // the iterations before the faulting one retired
      return;
    }
    const bool io_event = c.end_block;  // MMIO/port access or a store into cached code
    c.end_block = was_end || io_event;
    c.SetReg(kRcx, op.asize, count - 1);
    ++done;
    if (count - 1 == 0) break;
    if (cond) {
      const bool zf = c.s.rflags & kFlagZf;
      if (op.rep == 1 ? !zf : zf) break;
    }
    const bool event = (c.intr && (c.s.rflags & kFlagIf)) || c.nmi_pending || c.exit_requested ||
                       io_event || (c.s.rflags & kFlagTf);
    if (done >= budget || event) {
      // Interrupted between iterations: RIP stays on this instruction.
      c.icount += done - 1;
      c.next_rip = c.s.rip;
      c.end_block = true;
      return;
    }
  }
  if (done > 0) c.icount += done - 1;
}

}  // namespace

void RegisterString(Handler* t) {
  t[ZYDIS_MNEMONIC_MOVSB] = OpString<kMovs, 1>;
  t[ZYDIS_MNEMONIC_MOVSW] = OpString<kMovs, 2>;
  t[ZYDIS_MNEMONIC_MOVSD] = OpString<kMovs, 4>;
  t[ZYDIS_MNEMONIC_MOVSQ] = OpString<kMovs, 8>;
  t[ZYDIS_MNEMONIC_CMPSB] = OpString<kCmps, 1>;
  t[ZYDIS_MNEMONIC_CMPSW] = OpString<kCmps, 2>;
  t[ZYDIS_MNEMONIC_CMPSD] = OpString<kCmps, 4>;
  t[ZYDIS_MNEMONIC_CMPSQ] = OpString<kCmps, 8>;
  t[ZYDIS_MNEMONIC_STOSB] = OpString<kStos, 1>;
  t[ZYDIS_MNEMONIC_STOSW] = OpString<kStos, 2>;
  t[ZYDIS_MNEMONIC_STOSD] = OpString<kStos, 4>;
  t[ZYDIS_MNEMONIC_STOSQ] = OpString<kStos, 8>;
  t[ZYDIS_MNEMONIC_LODSB] = OpString<kLods, 1>;
  t[ZYDIS_MNEMONIC_LODSW] = OpString<kLods, 2>;
  t[ZYDIS_MNEMONIC_LODSD] = OpString<kLods, 4>;
  t[ZYDIS_MNEMONIC_LODSQ] = OpString<kLods, 8>;
  t[ZYDIS_MNEMONIC_SCASB] = OpString<kScas, 1>;
  t[ZYDIS_MNEMONIC_SCASW] = OpString<kScas, 2>;
  t[ZYDIS_MNEMONIC_SCASD] = OpString<kScas, 4>;
  t[ZYDIS_MNEMONIC_SCASQ] = OpString<kScas, 8>;
  t[ZYDIS_MNEMONIC_INSB] = OpString<kIns, 1>;
  t[ZYDIS_MNEMONIC_INSW] = OpString<kIns, 2>;
  t[ZYDIS_MNEMONIC_INSD] = OpString<kIns, 4>;
  t[ZYDIS_MNEMONIC_OUTSB] = OpString<kOuts, 1>;
  t[ZYDIS_MNEMONIC_OUTSW] = OpString<kOuts, 2>;
  t[ZYDIS_MNEMONIC_OUTSD] = OpString<kOuts, 4>;
}

}  // namespace vmrr
