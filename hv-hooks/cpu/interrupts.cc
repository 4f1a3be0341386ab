// Exception and interrupt delivery through the IVT/IDT in every mode (privilege change with
// TSS stack switch, IST, error codes, #DF and triple fault), and the instructions that enter
// and leave handlers: INT n, INT3, INT1, INTO, IRET.
#include <Zydis/Zydis.h>

#include "hv-hooks/cpu/core.h"

namespace vmrr {
namespace {

bool Contributory(uint8_t v) { return v == 0 || (v >= 10 && v <= 13); }
}  // namespace

void CpuCore::Fault(uint8_t vector, uint32_t error, bool has_error) {
  if (fault) return;  // the first fault of an instruction is the one reported
  fault = true;
  fault_vector = vector;
  fault_error = error;
  fault_has_error = has_error;
  end_block = true;
}

void CpuCore::DeliverPendingFault() {
  fault = false;
  Deliver(fault_vector, fault_has_error, fault_error, false, s.rip);
}

// One delivery attempt. Returns false with a fault pending (and no state changed) if the
// delivery itself faulted.
static bool DeliverOnce(CpuCore& c, uint8_t vector, bool has_error, uint32_t error,
                        bool software, uint64_t return_rip, bool external) {
  CpuState& s = c.s;
  const uint32_t ext = external || !software ? 1 : 0;
  const uint32_t idt_err = vector * 8u + 2u + ext;
  if (c.mode == kModeReal) {
    if (vector * 4u + 3u > s.idtr.limit) {
      c.Gp(idt_err);
      return false;
    }
    uint64_t ent;
    if (!c.ReadSys(s.idtr.base + vector * 4u, 4, &ent)) return false;
    const uint64_t sp = s.gpr[kRsp] & 0xffff;
    const uint64_t vals[3] = {s.rflags & 0xffff, s.seg[kCs].selector, return_rip & 0xffff};
    for (int i = 0; i < 3; ++i) {
      if (!c.WriteSeg(kSs, (sp - 2 * (i + 1)) & 0xffff, 2, vals[i])) return false;
    }
    c.SetReg(kRsp, 2, sp - 6);
    const uint16_t sel = static_cast<uint16_t>(ent >> 16);
    s.seg[kCs].selector = sel;
    s.seg[kCs].base = uint64_t{sel} << 4;
    s.rip = ent & 0xffff;
    s.rflags &= ~(kFlagIf | kFlagTf | kFlagAc | kFlagRf);
    return true;
  }

  const bool lm = (s.efer & (1u << 10)) != 0;
  const unsigned gate_size = lm ? 16 : 8;
  if (vector * gate_size + gate_size - 1 > s.idtr.limit) {
    c.Gp(idt_err);
    return false;
  }
  uint64_t lo, hi = 0;
  if (!c.ReadSys(s.idtr.base + vector * gate_size, 8, &lo)) return false;
  if (lm && !c.ReadSys(s.idtr.base + vector * gate_size + 8, 8, &hi)) return false;
  const unsigned type = (lo >> 40) & 0x1f;
  const unsigned gate_dpl = (lo >> 45) & 3;
  const bool present = (lo >> 47) & 1;
  bool gate32, trap;
  if (lm) {
    if (type != 0x0e && type != 0x0f) { c.Gp(idt_err); return false; }
    gate32 = true;
    trap = type == 0x0f;
  } else {
    if (type != 0x06 && type != 0x07 && type != 0x0e && type != 0x0f) {
      c.Gp(idt_err);  // task gates are not implemented: reported as #GP
      return false;
    }
    gate32 = type & 8;
    trap = type & 1;
  }
  if (software && gate_dpl < s.cpl) { c.Gp(vector * 8u + 2u); return false; }
  if (!present) { c.Fault(11, idt_err); return false; }
  const uint16_t sel = static_cast<uint16_t>(lo >> 16);
  uint64_t offset = (lo & 0xffff) | ((lo >> 32) & 0xffff0000u);
  if (lm) offset |= (hi & 0xffffffffu) << 32;
  else if (!gate32) offset &= 0xffff;
  if ((sel & ~3) == 0) { c.Gp(ext); return false; }
  uint64_t desc;
  if (!c.ReadDescriptor(sel, &desc)) { if (!c.fault) c.Gp((sel & ~3u) + ext); return false; }
  Segment cs = CpuCore::DescToSegment(sel, desc);
  const unsigned dpl = (cs.attr >> 5) & 3;
  if ((cs.attr & 0x18) != 0x18 || dpl > s.cpl) { c.Gp((sel & ~3u) + ext); return false; }
  if (!(cs.attr & kSegAttrP)) { c.Fault(11, (sel & ~3u) + ext); return false; }
  if (lm && (!(cs.attr & kSegAttrL) || (cs.attr & kSegAttrDb))) { c.Gp((sel & ~3u) + ext); return false; }
  const bool conforming = cs.attr & 4;
  const bool to_inner = !conforming && dpl < s.cpl;
  const unsigned ist = lm ? ((lo >> 32) & 7) : 0;

  if (lm) {
    if (!IsCanonical(offset)) { c.Gp(ext); return false; }
    uint64_t rsp = s.gpr[kRsp];
    unsigned new_cpl = to_inner ? dpl : s.cpl;
    if (to_inner || ist) {
      const uint64_t off = ist ? 0x24 + (ist - 1) * 8 : 4 + dpl * 8;
      if (off + 7 > s.tr.limit) { c.Fault(10, (s.tr.selector & ~3u) + ext); return false; }
      if (!c.ReadSys(s.tr.base + off, 8, &rsp)) return false;
    }
    rsp &= ~uint64_t{0xf};
    const uint64_t frame[6] = {s.seg[kSs].selector, s.gpr[kRsp], s.rflags,
                               s.seg[kCs].selector, return_rip, error};
    const unsigned n = has_error ? 6 : 5;
    uint64_t sp = rsp;
    for (unsigned i = 0; i < n; ++i) {
      sp -= 8;
      if (!IsCanonical(sp)) { c.Fault(12, ext); return false; }
      if (!c.WriteSys(sp, 8, frame[i])) return false;
    }
    if (to_inner) {
      s.seg[kSs] = Segment{static_cast<uint16_t>(new_cpl), 0, 0, 0};
      s.seg[kSs].attr = 0x93 | static_cast<uint16_t>(new_cpl << 5);
    }
    s.gpr[kRsp] = sp;
    cs.selector = static_cast<uint16_t>((sel & ~3u) | new_cpl);
    s.seg[kCs] = cs;
    s.cpl = static_cast<uint8_t>(new_cpl);
    s.rip = offset;
  } else {
    // SDM, interrupt delivery in protected mode: an entry point beyond the code segment's
    // limit is #GP(0) (a contributory fault during delivery, so #DF for an exception).
    if (offset > cs.limit) { c.Gp(ext); return false; }
    const unsigned w = gate32 ? 4 : 2;
    Segment ss = s.seg[kSs];
    uint64_t esp = s.gpr[kRsp];
    unsigned new_cpl = s.cpl;
    if (to_inner) {
      new_cpl = dpl;
      uint64_t nsp, nss;
      const bool tss32 = (s.tr.attr & 8) != 0;
      const uint64_t off = tss32 ? 4 + dpl * 8 : 2 + dpl * 4;
      if (off + (tss32 ? 5 : 3) > s.tr.limit) { c.Fault(10, (s.tr.selector & ~3u) + ext); return false; }
      if (!c.ReadSys(s.tr.base + off, tss32 ? 4 : 2, &nsp) ||
          !c.ReadSys(s.tr.base + off + (tss32 ? 4 : 2), 2, &nss)) {
        return false;
      }
      const uint16_t ssel = static_cast<uint16_t>(nss);
      if ((ssel & ~3) == 0) { c.Fault(10, ext); return false; }
      if ((ssel & 3) != dpl) { c.Fault(10, (ssel & ~3u) + ext); return false; }
      uint64_t sdesc;
      if (!c.ReadDescriptor(ssel, &sdesc)) { if (!c.fault) c.Fault(10, (ssel & ~3u) + ext); return false; }
      ss = CpuCore::DescToSegment(ssel, sdesc);
      if (((ss.attr >> 5) & 3) != dpl || (ss.attr & 0x1a) != 0x12) {
        c.Fault(10, (ssel & ~3u) + ext);
        return false;
      }
      if (!(ss.attr & kSegAttrP)) { c.Fault(12, (ssel & ~3u) + ext); return false; }
      esp = nsp;
    }
    const uint64_t mask = (ss.attr & kSegAttrDb) ? 0xffffffffu : 0xffffu;
    uint64_t frame[6];
    unsigned n = 0;
    if (to_inner) {
      frame[n++] = s.seg[kSs].selector;
      frame[n++] = s.gpr[kRsp];
    }
    frame[n++] = s.rflags;
    frame[n++] = s.seg[kCs].selector;
    frame[n++] = return_rip;
    if (has_error) frame[n++] = error;
    uint64_t sp = esp;
    for (unsigned i = 0; i < n; ++i) {
      sp = (sp - w) & mask;
      if (sp + w - 1 > ss.limit && !(ss.attr & 4)) { c.Fault(12, to_inner ? (ss.selector & ~3u) + ext : 0); return false; }
      if (!c.WriteSys((ss.base + sp) & 0xffffffffu, w, frame[i])) return false;
    }
    if (to_inner) {
      s.seg[kSs] = ss;
    }
    if (mask == 0xffff) s.gpr[kRsp] = (s.gpr[kRsp] & ~uint64_t{0xffff}) | sp;
    else s.gpr[kRsp] = sp;
    cs.selector = static_cast<uint16_t>((sel & ~3u) | new_cpl);
    s.seg[kCs] = cs;
    s.cpl = static_cast<uint8_t>(new_cpl);
    s.rip = offset;
  }
  s.rflags &= ~(kFlagTf | kFlagNt | kFlagRf | kFlagVm);
  if (!trap) s.rflags &= ~kFlagIf;
  c.UpdateMode();
  return true;
}

void CpuCore::Deliver(uint8_t vector, bool has_error, uint32_t error, bool software,
                      uint64_t return_rip, bool external) {
  s.halted = false;
  last_delivery_icount = icount;
  if (++deliveries_without_retire > kMaxDeliveriesWithoutRetire) {
    s.shutdown = true;  // stuck in deliveries that never reach an instruction: see core.h
    return;
  }
  for (int attempt = 0;; ++attempt) {
    fault = false;
    if (DeliverOnce(*this, vector, has_error, error, software, return_rip, external)) {
      end_block = true;
      return;
    }
    const uint8_t second = fault_vector;
    fault = false;
    if (vector == 8 || attempt >= 2) {
      s.shutdown = true;  // triple fault
      return;
    }
    if ((Contributory(vector) && Contributory(second)) ||
        (vector == 14 && (Contributory(second) || second == 14))) {
      vector = 8;
      has_error = true;
      error = 0;
    } else {
      vector = second;
      has_error = fault_has_error;
      error = fault_error;
    }
    software = false;
    external = false;
    return_rip = s.rip;
  }
}

namespace {

// INT n / INT3 / INTO / INT1: the instruction retires only if its delivery succeeded; a
// fault during delivery is the instruction's fault (reported at the INT instruction).
void SoftInt(CpuCore& c, uint8_t vector, bool software) {
  if (c.mode == kModeV86) return c.Gp(0);
  if (!DeliverOnce(c, vector, false, 0, software, c.next_rip, false)) return;
  c.next_rip = c.s.rip;
  c.end_block = true;
}

void OpInt(CpuCore& c, const Op& op) { SoftInt(c, static_cast<uint8_t>(op.o[0].disp), true); }
void OpInt3(CpuCore& c, const Op&) { SoftInt(c, 3, true); }
void OpInt1(CpuCore& c, const Op&) { SoftInt(c, 1, false); }
void OpInto(CpuCore& c, const Op&) {
  if (c.s.rflags & kFlagOf) SoftInt(c, 4, true);
}

void SetFlagsFromIret(CpuCore& c, uint64_t f, unsigned osize, unsigned old_cpl) {
  uint64_t mask = kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagTf | kFlagDf |
                  kFlagOf | kFlagNt | kFlagRf | kFlagAc | kFlagId;
  const unsigned iopl = (c.s.rflags >> 12) & 3;
  if (old_cpl <= iopl) mask |= kFlagIf;
  if (old_cpl == 0) mask |= kFlagIopl | kFlagVif | kFlagVip;
  if (c.mode == kModeReal) mask |= kFlagIf | kFlagIopl;
  if (osize == 2) mask &= 0xffff;
  c.s.rflags = ((c.s.rflags & ~mask) | (f & mask)) | 2;
}

// After a return to an outer level: data segments the new CPL may not use become null.
void OpIret(CpuCore& c, const Op& op) {
  CpuState& s = c.s;
  const unsigned w = op.osize;
  if (c.mode == kModeReal) {
    uint64_t ip, cs, fl;
    if (!c.PopPeek(&ip, w, 0) || !c.PopPeek(&cs, w, w) || !c.PopPeek(&fl, w, 2 * w)) return;
    const unsigned ss = c.stack_size();
    c.SetReg(kRsp, ss, s.gpr[kRsp] + 3 * w);
    c.LoadSegmentReal(kCs, static_cast<uint16_t>(cs));
    SetFlagsFromIret(c, fl, w, 0);
    c.next_rip = ip & (w == 2 ? 0xffff : 0xffffffffu);
    c.end_block = true;
    return;
  }
  if (c.mode == kModeV86) return c.Gp(0);
  if ((s.rflags & kFlagNt) && !(s.efer & (1u << 10))) return c.Gp(0);  // task return: unsupported
  const bool lm = (s.efer & (1u << 10)) != 0;
  uint64_t ip, csel, fl;
  if (!c.PopPeek(&ip, w, 0) || !c.PopPeek(&csel, w, w) || !c.PopPeek(&fl, w, 2 * w)) return;
  const uint16_t sel = static_cast<uint16_t>(csel);
  if (!lm && (fl & kFlagVm) && s.cpl == 0 && w == 4) return c.Gp(0);  // V86 unsupported
  Segment cs;
  if (!c.CheckReturnCodeSegment(sel, &cs)) return;
  const unsigned rpl = sel & 3;
  if (lm && (cs.attr & kSegAttrL) && (cs.attr & kSegAttrDb)) return c.Gp(sel & ~3u);
  const bool to_64 = lm && (cs.attr & kSegAttrL);
  const bool pop_stack = rpl > s.cpl || c.long64();
  uint64_t nsp = 0, nss = 0;
  Segment ss = s.seg[kSs];
  if (pop_stack) {
    if (!c.PopPeek(&nsp, w, 3 * w) || !c.PopPeek(&nss, w, 4 * w)) return;
    if (!c.CheckReturnStackSegment(static_cast<uint16_t>(nss), rpl, to_64, &ss)) return;
  }
  if (to_64) {
    if (!IsCanonical(ip)) return c.Gp(0);
  } else {
    ip &= 0xffffffffu;
    if (ip > cs.limit) return c.Gp(0);
  }
  const unsigned old_cpl = s.cpl;
  if (!pop_stack) c.SetReg(kRsp, c.stack_size(), s.gpr[kRsp] + 3 * w);
  s.seg[kCs] = cs;
  s.cpl = static_cast<uint8_t>(rpl);
  SetFlagsFromIret(c, fl, w, old_cpl);
  if (pop_stack) {
    s.seg[kSs] = ss;
    if (to_64 || (ss.attr & kSegAttrDb)) s.gpr[kRsp] = w == 2 ? (s.gpr[kRsp] & ~0xffffull) | (nsp & 0xffff) : nsp;
    else s.gpr[kRsp] = (s.gpr[kRsp] & ~0xffffull) | (nsp & 0xffff);
    if (rpl > old_cpl) c.NullInaccessibleDataSegments();
  }
  s.nmi_blocked = false;
  c.UpdateMode();
  c.next_rip = ip;
  c.end_block = true;
}

}  // namespace

void RegisterInterrupts(Handler* t) {
  t[ZYDIS_MNEMONIC_INT] = OpInt;
  t[ZYDIS_MNEMONIC_INT3] = OpInt3;
  t[ZYDIS_MNEMONIC_INT1] = OpInt1;
  t[ZYDIS_MNEMONIC_INTO] = OpInto;
  t[ZYDIS_MNEMONIC_IRET] = OpIret;
  t[ZYDIS_MNEMONIC_IRETD] = OpIret;
  t[ZYDIS_MNEMONIC_IRETQ] = OpIret;
}

}  // namespace vmrr
