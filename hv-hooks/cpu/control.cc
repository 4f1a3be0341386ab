// Control transfer: JMP/Jcc/JCXZ/LOOPcc, CALL/RET (near and far, with privilege-changing
// far returns). The condition-code evaluation shared with SETcc/CMOVcc is CpuCore::Cond.
#include <Zydis/Zydis.h>

#include "hv-hooks/cpu/core.h"

namespace vmrr {
namespace {

// Validates and sets a near branch target (IP width = operand size).
bool BranchTo(CpuCore& c, uint64_t target, unsigned osize) {
  if (osize == 2) target &= 0xffff;
  else if (osize == 4) target &= 0xffffffffu;
  if (c.long64()) {
    if (!IsCanonical(target)) {
      c.Gp(0);
      return false;
    }
  } else if (target > c.s.seg[kCs].limit) {
    c.Gp(0);
    return false;
  }
  c.next_rip = target;
  c.end_block = true;
  return true;
}

uint64_t RelTarget(CpuCore& c, const Op& op) { return c.next_rip + op.o[0].disp; }

void OpJmp(CpuCore& c, const Op& op) {
  const Operand& o = op.o[0];
  if (o.kind == kOpImm) {
    BranchTo(c, RelTarget(c, op), op.osize);
    return;
  }
  if (o.kind == kOpPtr) {
    c.LoadCodeSegmentFar(o.sel, o.disp, false, op.osize, 0);
    return;
  }
  if (o.kind == kOpMem && op.far_branch) {
    // JMP m16:16/32/64 (Zydis reports the whole far pointer as one operand).
    const unsigned w = o.size - 2;
    const uint64_t ea = c.EffectiveAddress(op, o);
    uint64_t off, sel;
    if (!c.ReadSeg(o.seg, ea, w, &off) || !c.ReadSeg(o.seg, ea + w, 2, &sel)) return;
    c.LoadCodeSegmentFar(static_cast<uint16_t>(sel), off, false, w, 0);
    return;
  }
  uint64_t t;
  if (!c.Read(op, o, &t)) return;
  BranchTo(c, t, op.osize);
}

void OpJcc(CpuCore& c, const Op& op) {
  if (c.Cond(op.cond)) BranchTo(c, RelTarget(c, op), op.osize);
}

void OpJcxz(CpuCore& c, const Op& op) {
  if (c.GetReg(kRcx, op.asize) == 0) BranchTo(c, RelTarget(c, op), op.osize);
}

void OpLoop(CpuCore& c, const Op& op) {
  const uint64_t cx = (c.GetReg(kRcx, op.asize) - 1) & c.AddrMask(op.asize);
  bool take = cx != 0;
  if (op.mnemonic == ZYDIS_MNEMONIC_LOOPE) take = take && (c.s.rflags & kFlagZf);
  if (op.mnemonic == ZYDIS_MNEMONIC_LOOPNE) take = take && !(c.s.rflags & kFlagZf);
  if (take) {
    if (!BranchTo(c, RelTarget(c, op), op.osize)) return;
  }
  c.SetReg(kRcx, op.asize, cx);
}

void OpCall(CpuCore& c, const Op& op) {
  const Operand& o = op.o[0];
  const unsigned w = op.osize;
  if (o.kind == kOpPtr) {
    c.LoadCodeSegmentFar(o.sel, o.disp, true, w, c.next_rip);
    return;
  }
  if (o.kind == kOpMem && op.far_branch) {
    const unsigned fw = o.size - 2;
    const uint64_t ea = c.EffectiveAddress(op, o);
    uint64_t off, sel;
    if (!c.ReadSeg(o.seg, ea, fw, &off) || !c.ReadSeg(o.seg, ea + fw, 2, &sel)) return;
    c.LoadCodeSegmentFar(static_cast<uint16_t>(sel), off, true, fw, c.next_rip);
    return;
  }
  uint64_t t;
  if (o.kind == kOpImm) {
    t = RelTarget(c, op);
  } else if (!c.Read(op, o, &t)) {
    return;
  }
  const uint64_t ret = c.next_rip;
  const uint64_t old_rsp = c.s.gpr[kRsp];
  if (!BranchTo(c, t, w)) return;
  if (!c.Push(ret, w)) {
    c.s.gpr[kRsp] = old_rsp;
    c.next_rip = ret;
  }
}

void OpRet(CpuCore& c, const Op& op) {
  const unsigned w = op.osize;
  uint64_t t;
  if (!c.PopPeek(&t, w, 0)) return;
  if (!BranchTo(c, t, w)) return;
  const uint64_t imm = op.nops > 0 && op.o[0].kind == kOpImm ? (op.o[0].disp & 0xffff) : 0;
  c.SetReg(kRsp, c.stack_size(), c.s.gpr[kRsp] + w + imm);
}

void OpRetf(CpuCore& c, const Op& op) {
  const unsigned w = op.osize;
  CpuState& s = c.s;
  uint64_t ip, csel;
  if (!c.PopPeek(&ip, w, 0) || !c.PopPeek(&csel, w, w)) return;
  const uint64_t imm = op.nops > 0 && op.o[0].kind == kOpImm ? (op.o[0].disp & 0xffff) : 0;
  const uint16_t sel = static_cast<uint16_t>(csel);
  if (c.mode == kModeReal || c.mode == kModeV86) {
    c.LoadSegmentReal(kCs, sel);
    c.SetReg(kRsp, c.stack_size(), s.gpr[kRsp] + 2 * w + imm);
    c.next_rip = w == 2 ? ip & 0xffff : ip & 0xffffffffu;
    c.end_block = true;
    return;
  }
  Segment cs;
  if (!c.CheckReturnCodeSegment(sel, &cs)) return;
  const unsigned rpl = sel & 3;
  const bool lm = s.efer & (1u << 10);
  const bool to_64 = lm && (cs.attr & kSegAttrL);
  if (!to_64) ip &= (w == 2 ? 0xffff : 0xffffffffu);
  if (to_64 ? !IsCanonical(ip) : ip > cs.limit) return c.Gp(0);
  if (rpl == s.cpl) {
    s.seg[kCs] = cs;
    c.SetReg(kRsp, c.stack_size(), s.gpr[kRsp] + 2 * w + imm);
  } else {
    uint64_t nsp, nss;
    if (!c.PopPeek(&nsp, w, 2 * w + imm) || !c.PopPeek(&nss, w, 3 * w + imm)) return;
    Segment ss;
    if (!c.CheckReturnStackSegment(static_cast<uint16_t>(nss), rpl, to_64, &ss)) return;
    s.seg[kCs] = cs;
    s.cpl = static_cast<uint8_t>(rpl);
    s.seg[kSs] = ss;
    if (to_64 || (ss.attr & kSegAttrDb)) s.gpr[kRsp] = (w == 2 ? nsp & 0xffff : nsp) + imm;
    else c.SetReg(kRsp, 2, nsp + imm);
    c.NullInaccessibleDataSegments();
  }
  c.UpdateMode();
  c.next_rip = ip;
  c.end_block = true;
}

}  // namespace

// Far JMP/CALL to a code segment (call gates and task switches are not implemented and
// raise #GP with the selector).
bool CpuCore::LoadCodeSegmentFar(uint16_t sel, uint64_t offset, bool is_call, unsigned osize,
                                 uint64_t return_rip) {
  if (mode == kModeReal || mode == kModeV86) {
    if (osize == 2) offset &= 0xffff;
    if (is_call) {
      const uint64_t old_rsp = s.gpr[kRsp];
      if (!Push(s.seg[kCs].selector, osize) || !Push(return_rip, osize)) {
        s.gpr[kRsp] = old_rsp;
        return false;
      }
    }
    LoadSegmentReal(kCs, sel);
    next_rip = offset;
    end_block = true;
    return true;
  }
  if ((sel & ~3) == 0) {
    Gp(0);
    return false;
  }
  uint64_t desc;
  if (!ReadDescriptor(sel, &desc)) {
    if (!fault) Gp(sel & ~3u);
    return false;
  }
  Segment cs = DescToSegment(sel, desc);
  const unsigned dpl = (cs.attr >> 5) & 3, rpl = sel & 3;
  if ((cs.attr & 0x18) != 0x18) {
    Gp(sel & ~3u);  // system descriptor: call gate / TSS / task gate (not implemented)
    return false;
  }
  if ((cs.attr & 4) ? dpl > s.cpl : (rpl > s.cpl || dpl != s.cpl)) {
    Gp(sel & ~3u);
    return false;
  }
  if (!(cs.attr & kSegAttrP)) {
    Fault(11, sel & ~3u);
    return false;
  }
  const bool lm = s.efer & (1u << 10);
  const bool to_64 = lm && (cs.attr & kSegAttrL);
  if (lm && (cs.attr & kSegAttrL) && (cs.attr & kSegAttrDb)) {
    Gp(sel & ~3u);
    return false;
  }
  if (!to_64) offset &= osize == 2 ? 0xffff : 0xffffffffu;
  if (to_64 ? !IsCanonical(offset) : offset > cs.limit) {
    Gp(0);
    return false;
  }
  if (is_call) {
    const uint64_t old_rsp = s.gpr[kRsp];
    if (!Push(s.seg[kCs].selector, osize) || !Push(return_rip, osize)) {
      s.gpr[kRsp] = old_rsp;
      return false;
    }
  }
  cs.selector = static_cast<uint16_t>((sel & ~3u) | s.cpl);
  s.seg[kCs] = cs;
  // Mark the descriptor accessed.
  UpdateMode();
  next_rip = offset;
  end_block = true;
  return true;
}

// Zydis names near and far returns alike; the opcode (C2/C3 vs CA/CB) tells them apart.
static void OpRetAny(CpuCore& c, const Op& op) {
  if (op.opcode == 0xca || op.opcode == 0xcb) return OpRetf(c, op);
  OpRet(c, op);
}

bool CpuCore::CheckReturnCodeSegment(uint16_t sel, Segment* cs) {
  if ((sel & ~3) == 0) {
    Gp(0);
    return false;
  }
  const unsigned rpl = sel & 3;
  uint64_t desc;
  if (rpl < s.cpl || !ReadDescriptor(sel, &desc)) {
    if (!fault) Gp(sel & ~3u);
    return false;
  }
  *cs = DescToSegment(sel, desc);
  const unsigned dpl = (cs->attr >> 5) & 3;
  if ((cs->attr & 0x18) != 0x18 || ((cs->attr & 4) ? dpl > rpl : dpl != rpl)) {
    Gp(sel & ~3u);
    return false;
  }
  if (!(cs->attr & kSegAttrP)) {
    Fault(11, sel & ~3u);
    return false;
  }
  return true;
}

bool CpuCore::CheckReturnStackSegment(uint16_t ssel, unsigned rpl, bool to_64, Segment* ss) {
  if ((ssel & ~3) == 0) {
    // A null SS is allowed only when returning to 64-bit code below CPL 3.
    if (!(to_64 && rpl != 3 && (ssel & 3) == rpl)) {
      Gp(0);
      return false;
    }
    *ss = Segment{ssel, static_cast<uint16_t>(0x93 | (rpl << 5)), 0, 0};
    return true;
  }
  uint64_t sdesc;
  if ((ssel & 3) != rpl || !ReadDescriptor(ssel, &sdesc)) {
    if (!fault) Gp(ssel & ~3u);
    return false;
  }
  *ss = DescToSegment(ssel, sdesc);
  if ((ss->attr & 0x1a) != 0x12 || ((ss->attr >> 5) & 3) != rpl) {
    Gp(ssel & ~3u);
    return false;
  }
  if (!(ss->attr & kSegAttrP)) {
    Fault(12, ssel & ~3u);
    return false;
  }
  return true;
}

void CpuCore::NullInaccessibleDataSegments() {
  for (uint8_t sg : {kEs, kDs, kFs, kGs}) {
    Segment& g = s.seg[sg];
    const unsigned dpl = (g.attr >> 5) & 3;
    const bool conforming_code = (g.attr & 0x1c) == 0x1c;
    if ((g.attr & kSegAttrS) && !conforming_code && dpl < s.cpl) {
      g.selector = 0;
      g.attr = 0;
      if (!long64()) g.base = 0;
    }
  }
}

void RegisterControl(Handler* t) {
  t[ZYDIS_MNEMONIC_JMP] = OpJmp;
  for (int m : {ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB, ZYDIS_MNEMONIC_JNB,
                ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
                ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP, ZYDIS_MNEMONIC_JNP,
                ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE,
                ZYDIS_MNEMONIC_JNLE}) {
    t[m] = OpJcc;
  }
  t[ZYDIS_MNEMONIC_JCXZ] = OpJcxz;
  t[ZYDIS_MNEMONIC_JECXZ] = OpJcxz;
  t[ZYDIS_MNEMONIC_JRCXZ] = OpJcxz;
  t[ZYDIS_MNEMONIC_LOOP] = OpLoop;
  t[ZYDIS_MNEMONIC_LOOPE] = OpLoop;
  t[ZYDIS_MNEMONIC_LOOPNE] = OpLoop;
  t[ZYDIS_MNEMONIC_CALL] = OpCall;
  t[ZYDIS_MNEMONIC_RET] = OpRetAny;
}

}  // namespace vmrr
