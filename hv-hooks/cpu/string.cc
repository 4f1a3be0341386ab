// String instructions (MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS) with REP/REPE/REPNE.
// Every iteration retires as one instruction: a REP loop stops at the run's target icount
// or when an event is pending, leaving RIP on the instruction so it resumes exactly there.
#include <Zydis/Zydis.h>

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
  for (;;) {
    uint64_t count = c.GetReg(kRcx, op.asize);
    if (count == 0) break;
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
