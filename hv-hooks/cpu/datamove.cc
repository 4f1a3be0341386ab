// Data movement: MOV (incl. segment registers), MOVZX/MOVSX/MOVSXD, LEA, XCHG, PUSH/POP
// (incl. segment registers, PUSHA/POPA), ENTER/LEAVE, CBW/CWD families, LDS/LES/LFS/LGS/LSS,
// XLAT, and the no-operation group (NOP, PAUSE, fences, prefetches, CLFLUSH, ENDBR).
#include <Zydis/Zydis.h>

#include "hv-hooks/cpu/core.h"

namespace vmrr {
namespace {

void OpMov(CpuCore& c, const Op& op) {
  const Operand& d = op.o[0];
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  if (d.kind == kOpSreg) {
    if (d.reg == kCs) return c.Ud();
    if (!c.LoadSegment(d.reg, static_cast<uint16_t>(v))) return;
    if (d.reg == kSs) c.s.interrupt_shadow_until = c.icount + 2;
    c.end_block = true;
    return;
  }
  c.Write(op, d, v);
}

void OpMovzx(CpuCore& c, const Op& op) {
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  c.SetReg(op.o[0].reg, op.o[0].size, v & SizeMask(op.o[1].size));
}

void OpMovsx(CpuCore& c, const Op& op) {
  uint64_t v;
  if (!c.Read(op, op.o[1], &v)) return;
  c.SetReg(op.o[0].reg, op.o[0].size, static_cast<uint64_t>(SignExtend(v, op.o[1].size)));
}

// CLFLUSH m8: no cache to flush, but the address is checked as a one-byte load would be
// (segment limits, #GP for a non-canonical address, #PF for a missing translation; SDM Vol. 2A
// CLFLUSH "Protected Mode Exceptions"), without reading it: a line of MMIO is not touched.
void OpClflush(CpuCore& c, const Op& op) {
  uint64_t lin;
  if (!c.Linear(op.o[0].seg, c.EffectiveAddress(op, op.o[0]), 1, kRead, &lin)) return;
  TlbEntry* te;
  c.Translate(lin, kRead, c.s.cpl == 3, &te);
}

void OpLea(CpuCore& c, const Op& op) {
  c.SetReg(op.o[0].reg, op.o[0].size, c.EffectiveAddress(op, op.o[1]));
}

void OpXchg(CpuCore& c, const Op& op) {
  uint64_t a, b;
  if (!c.Read(op, op.o[0], &a) || !c.Read(op, op.o[1], &b)) return;
  if (op.o[0].kind == kOpMem) {
    if (!c.Write(op, op.o[0], b)) return;
    c.Write(op, op.o[1], a);
  } else {
    if (!c.Write(op, op.o[1], a)) return;
    c.Write(op, op.o[0], b);
  }
}

void OpPush(CpuCore& c, const Op& op) {
  uint64_t v;
  if (!c.Read(op, op.o[0], &v)) return;
  c.Push(v, op.osize);
}

void OpPop(CpuCore& c, const Op& op) {
  const Operand& d = op.o[0];
  const unsigned size = op.osize;
  uint64_t v;
  if (!c.PopPeek(&v, size, 0)) return;
  const uint64_t old_rsp = c.s.gpr[kRsp];
  if (d.kind == kOpSreg) {
    if (!c.LoadSegment(d.reg, static_cast<uint16_t>(v))) return;
    c.SetReg(kRsp, c.stack_size(), old_rsp + size);
    if (d.reg == kSs) c.s.interrupt_shadow_until = c.icount + 2;
    c.end_block = true;
    return;
  }
  // The destination address is computed with the incremented stack pointer.
  c.SetReg(kRsp, c.stack_size(), old_rsp + size);
  if (!c.Write(op, d, v)) {
    c.s.gpr[kRsp] = old_rsp;
    return;
  }
}

void OpPusha(CpuCore& c, const Op& op) {
  const unsigned w = op.osize, ss = c.stack_size();
  const uint64_t sp = c.s.gpr[kRsp];
  for (unsigned i = 0; i < 8; ++i) {
    const uint64_t v = i == kRsp ? sp : c.s.gpr[i];
    if (!c.WriteSeg(kSs, (sp - w * (i + 1)) & c.AddrMask(ss), w, v)) return;
  }
  c.SetReg(kRsp, ss, sp - 8 * w);
}

void OpPopa(CpuCore& c, const Op& op) {
  const unsigned w = op.osize;
  uint64_t v[8];
  for (unsigned i = 0; i < 8; ++i) {
    if (!c.PopPeek(&v[7 - i], w, i * w)) return;
  }
  for (unsigned i = 0; i < 8; ++i) {
    if (i != kRsp) c.SetReg(static_cast<uint8_t>(i), w, v[i]);
  }
  c.SetReg(kRsp, c.stack_size(), c.s.gpr[kRsp] + 8 * w);
}

void OpEnter(CpuCore& c, const Op& op) {
  const unsigned w = op.osize, ss = c.stack_size();
  const uint64_t alloc = op.o[0].disp & 0xffff;
  const unsigned level = op.o[1].disp & 31;
  const uint64_t m = c.AddrMask(ss);
  uint64_t sp = (c.s.gpr[kRsp] - w) & m;
  if (!c.WriteSeg(kSs, sp, w, c.GetReg(kRbp, w))) return;
  const uint64_t frame = sp;
  uint64_t bp = c.s.gpr[kRbp];
  for (unsigned i = 1; i < level; ++i) {
    bp = (bp - w) & c.AddrMask(ss);
    uint64_t v;
    if (!c.ReadSeg(kSs, bp, w, &v)) return;
    sp = (sp - w) & m;
    if (!c.WriteSeg(kSs, sp, w, v)) return;
  }
  if (level > 0) {
    sp = (sp - w) & m;
    if (!c.WriteSeg(kSs, sp, w, frame)) return;
  }
  sp = (sp - alloc) & m;
  // The final stack top must be writable (architecturally checked before completion).
  uint64_t lin;
  if (!c.Linear(kSs, sp, 1, kWrite, &lin)) return;
  c.SetReg(kRbp, w, frame);
  c.SetReg(kRsp, ss, sp);
}

void OpLeave(CpuCore& c, const Op& op) {
  const unsigned w = op.osize, ss = c.stack_size();
  const uint64_t bp = c.s.gpr[kRbp] & c.AddrMask(ss);
  uint64_t v;
  if (!c.ReadSeg(kSs, bp, w, &v)) return;
  c.SetReg(kRsp, ss, bp + w);
  c.SetReg(kRbp, w, v);
}

void OpCbw(CpuCore& c, const Op& op) {
  const unsigned w = op.osize;
  c.SetReg(kRax, w, static_cast<uint64_t>(SignExtend(c.GetReg(kRax, w / 2), w / 2)));
}

void OpCwd(CpuCore& c, const Op& op) {
  const unsigned w = op.osize;
  const bool neg = c.GetReg(kRax, w) & SignBit(w);
  c.SetReg(kRdx, w, neg ? ~uint64_t{0} : 0);
}

void OpLoadFar(CpuCore& c, const Op& op) {
  const Operand& src = op.o[1];
  if (src.kind != kOpMem) return c.Ud();
  const unsigned w = op.o[0].size;
  const uint64_t ea = c.EffectiveAddress(op, src);
  uint64_t off, sel;
  if (!c.ReadSeg(src.seg, ea, w, &off) ||
      !c.ReadSeg(src.seg, (ea + w) & c.AddrMask(op.asize), 2, &sel)) {
    return;
  }
  uint8_t seg = kDs;
  switch (op.mnemonic) {
    case ZYDIS_MNEMONIC_LES: seg = kEs; break;
    case ZYDIS_MNEMONIC_LSS: seg = kSs; break;
    case ZYDIS_MNEMONIC_LFS: seg = kFs; break;
    case ZYDIS_MNEMONIC_LGS: seg = kGs; break;
    default: break;
  }
  if (!c.LoadSegment(seg, static_cast<uint16_t>(sel))) return;
  c.SetReg(op.o[0].reg, w, off);
  c.end_block = true;
}

void OpXlat(CpuCore& c, const Op& op) {
  const uint8_t seg = op.seg_ovr != 0xff ? op.seg_ovr : static_cast<uint8_t>(kDs);
  const uint64_t a = (c.s.gpr[kRbx] + c.GetReg(kRax, 1)) & c.AddrMask(op.asize);
  uint64_t v;
  if (!c.ReadSeg(seg, a, 1, &v)) return;
  c.SetReg(kRax, 1, v);
}

void OpNop(CpuCore&, const Op&) {}

}  // namespace

void RegisterDataMove(Handler* t) {
  t[ZYDIS_MNEMONIC_MOV] = OpMov;
  t[ZYDIS_MNEMONIC_MOVZX] = OpMovzx;
  t[ZYDIS_MNEMONIC_MOVSX] = OpMovsx;
  t[ZYDIS_MNEMONIC_MOVSXD] = OpMovsx;
  t[ZYDIS_MNEMONIC_LEA] = OpLea;
  t[ZYDIS_MNEMONIC_XCHG] = OpXchg;
  t[ZYDIS_MNEMONIC_PUSH] = OpPush;
  t[ZYDIS_MNEMONIC_POP] = OpPop;
  t[ZYDIS_MNEMONIC_PUSHA] = OpPusha;
  t[ZYDIS_MNEMONIC_PUSHAD] = OpPusha;
  t[ZYDIS_MNEMONIC_POPA] = OpPopa;
  t[ZYDIS_MNEMONIC_POPAD] = OpPopa;
  t[ZYDIS_MNEMONIC_ENTER] = OpEnter;
  t[ZYDIS_MNEMONIC_LEAVE] = OpLeave;
  t[ZYDIS_MNEMONIC_CBW] = OpCbw;
  t[ZYDIS_MNEMONIC_CWDE] = OpCbw;
  t[ZYDIS_MNEMONIC_CDQE] = OpCbw;
  t[ZYDIS_MNEMONIC_CWD] = OpCwd;
  t[ZYDIS_MNEMONIC_CDQ] = OpCwd;
  t[ZYDIS_MNEMONIC_CQO] = OpCwd;
  t[ZYDIS_MNEMONIC_LDS] = OpLoadFar;
  t[ZYDIS_MNEMONIC_LES] = OpLoadFar;
  t[ZYDIS_MNEMONIC_LFS] = OpLoadFar;
  t[ZYDIS_MNEMONIC_LGS] = OpLoadFar;
  t[ZYDIS_MNEMONIC_LSS] = OpLoadFar;
  t[ZYDIS_MNEMONIC_XLAT] = OpXlat;
  for (int m : {ZYDIS_MNEMONIC_NOP, ZYDIS_MNEMONIC_PAUSE, ZYDIS_MNEMONIC_LFENCE,
                ZYDIS_MNEMONIC_SFENCE, ZYDIS_MNEMONIC_MFENCE, ZYDIS_MNEMONIC_PREFETCH,
                ZYDIS_MNEMONIC_PREFETCHNTA, ZYDIS_MNEMONIC_PREFETCHT0,
                ZYDIS_MNEMONIC_PREFETCHT1, ZYDIS_MNEMONIC_PREFETCHT2,
                ZYDIS_MNEMONIC_PREFETCHW, ZYDIS_MNEMONIC_ENDBR32,
                ZYDIS_MNEMONIC_ENDBR64}) {
    t[m] = OpNop;
  }
  t[ZYDIS_MNEMONIC_CLFLUSH] = OpClflush;
}

}  // namespace vmrr
