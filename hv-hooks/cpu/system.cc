// System instructions and the privileged state they touch: segment loads and descriptors,
// control/debug registers, MSRs, CPUID (the one fixed model), RFLAGS rules, port I/O and its
// permission bitmap, HLT/CLI/STI, descriptor-table instructions, SYSCALL/SYSRET,
// SYSENTER/SYSEXIT, SWAPGS, RDTSC(P)/RDRAND/RDSEED (through the platform, never the host).
#include <Zydis/Zydis.h>

#include <cstring>

#include "hv-hooks/cpu/core.h"

namespace vmrr {
namespace {

constexpr uint64_t kCr0Pe = 1, kCr0Ts = 8, kCr0Et = 0x10,
                   kCr0Wp = 1u << 16, kCr0Nw = 1u << 29, kCr0Cd = 1u << 30,
                   kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Tsd = 1u << 2, kCr4De = 1u << 3, kCr4Pse = 1u << 4, kCr4Pae = 1u << 5,
                   kCr4Mce = 1u << 6, kCr4Pge = 1u << 7, kCr4Pce = 1u << 8,
                   kCr4Osfxsr = 1u << 9, kCr4Osxmmexcpt = 1u << 10, kCr4Osxsave = 1u << 18;
constexpr uint64_t kCr4Supported =
    kCr4Tsd | kCr4De | kCr4Pse | kCr4Pae | kCr4Mce | kCr4Pge | kCr4Pce | kCr4Osfxsr |
    kCr4Osxmmexcpt | kCr4Osxsave;
constexpr uint64_t kEferSce = 1, kEferLme = 1u << 8, kEferLma = 1u << 10, kEferNxe = 1u << 11;

// Flat segments loaded by SYSCALL/SYSRET/SYSENTER/SYSEXIT (attr layout in cpu.h).
constexpr uint16_t kAttrCode64Dpl0 = 0xa09b, kAttrCode64Dpl3 = 0xa0fb;
constexpr uint16_t kAttrCode32Dpl0 = 0xc09b, kAttrCode32Dpl3 = 0xc0fb;
constexpr uint16_t kAttrDataDpl0 = 0xc093, kAttrDataDpl3 = 0xc0f3;

Segment Flat(uint16_t sel, uint16_t attr) { return Segment{sel, attr, 0xffffffffu, 0}; }

bool RequireCpl0(CpuCore& c) {
  if (c.s.cpl != 0) {
    c.Gp(0);
    return false;
  }
  return true;
}

bool RequireProtected(CpuCore& c) {
  if (!c.protected_mode() || (c.s.rflags & kFlagVm)) {
    c.Ud();
    return false;
  }
  return true;
}

// ---- flags ---------------------------------------------------------------------------------

void OpCli(CpuCore& c, const Op&) {
  if (c.protected_mode() && c.s.cpl > ((c.s.rflags & kFlagIopl) >> 12)) return c.Gp(0);
  c.s.rflags &= ~kFlagIf;
}

void OpSti(CpuCore& c, const Op&) {
  if (c.protected_mode() && c.s.cpl > ((c.s.rflags & kFlagIopl) >> 12)) return c.Gp(0);
  // Interrupts stay inhibited until after the next instruction, but only if STI set IF.
  if (!(c.s.rflags & kFlagIf)) c.s.interrupt_shadow_until = c.icount + 2;
  c.s.rflags |= kFlagIf;
  c.end_block = true;
}

void OpPushf(CpuCore& c, const Op& op) {
  if ((c.s.rflags & kFlagVm) && ((c.s.rflags & kFlagIopl) >> 12) < 3) return c.Gp(0);
  c.Push(c.s.rflags & ~(kFlagVm | kFlagRf), op.osize);
}

void OpPopf(CpuCore& c, const Op& op) {
  const unsigned iopl = (c.s.rflags & kFlagIopl) >> 12;
  if ((c.s.rflags & kFlagVm) && iopl < 3) return c.Gp(0);
  uint64_t v;
  if (!c.Pop(&v, op.osize)) return;
  uint64_t mask = kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagTf | kFlagIf |
                  kFlagDf | kFlagOf | kFlagIopl | kFlagNt | kFlagRf | kFlagAc | kFlagId;
  if (c.protected_mode()) {
    if (c.s.rflags & kFlagVm) {
      mask &= ~kFlagIopl;
    } else if (c.s.cpl > 0) {
      mask &= ~kFlagIopl;
      if (c.s.cpl > iopl) mask &= ~kFlagIf;
    }
  }
  if (op.osize == 2) mask &= 0xffff;
  v &= ~kFlagRf;
  c.SetRflags(v, mask);
  if (op.osize != 2 && c.protected_mode() && c.s.cpl == 0) c.s.rflags &= ~(kFlagVif | kFlagVip);
  c.end_block = true;
}

// ---- HLT, I/O ------------------------------------------------------------------------------

void OpHlt(CpuCore& c, const Op&) {
  if (!RequireCpl0(c)) return;
  c.halted_now = true;
  c.end_block = true;
}

void OpIn(CpuCore& c, const Op& op) {
  const unsigned size = op.o[0].size;
  const uint16_t port = static_cast<uint16_t>(
      op.o[1].kind == kOpImm ? op.o[1].disp : c.s.gpr[kRdx] & 0xffff);
  if (!c.IoAllowed(port, size)) return;
  const uint32_t v = c.platform.PortIn(port, size);
  c.SetReg(kRax, size, v);
  c.end_block = true;
}

void OpOut(CpuCore& c, const Op& op) {
  const unsigned size = op.o[1].size;
  const uint16_t port = static_cast<uint16_t>(
      op.o[0].kind == kOpImm ? op.o[0].disp : c.s.gpr[kRdx] & 0xffff);
  if (!c.IoAllowed(port, size)) return;
  c.platform.PortOut(port, size, static_cast<uint32_t>(c.GetReg(kRax, size)));
  c.end_block = true;
}

// ---- CPUID, MSRs, TSC, entropy ---------------------------------------------------------------

void OpCpuid(CpuCore& c, const Op&) {
  uint32_t out[4];
  c.Cpuid(static_cast<uint32_t>(c.s.gpr[kRax]), static_cast<uint32_t>(c.s.gpr[kRcx]), out);
  c.s.gpr[kRax] = out[0];
  c.s.gpr[kRbx] = out[1];
  c.s.gpr[kRcx] = out[2];
  c.s.gpr[kRdx] = out[3];
}

void OpRdmsr(CpuCore& c, const Op&) {
  if (!RequireCpl0(c)) return;
  uint64_t v;
  if (!c.ReadMsr(static_cast<uint32_t>(c.s.gpr[kRcx]), &v)) return c.Gp(0);
  c.s.gpr[kRax] = v & 0xffffffffu;
  c.s.gpr[kRdx] = v >> 32;
}

void OpWrmsr(CpuCore& c, const Op&) {
  if (!RequireCpl0(c)) return;
  const uint64_t v = (c.s.gpr[kRdx] << 32) | (c.s.gpr[kRax] & 0xffffffffu);
  if (!c.WriteMsr(static_cast<uint32_t>(c.s.gpr[kRcx]), v)) {
    if (!c.fault) c.Gp(0);
    return;
  }
  c.end_block = true;
}

uint64_t GuestTsc(CpuCore& c) { return c.platform.ReadTsc() + c.s.tsc_offset; }

void OpRdtsc(CpuCore& c, const Op&) {
  if ((c.s.cr4 & kCr4Tsd) && c.s.cpl > 0 && c.protected_mode()) return c.Gp(0);
  const uint64_t t = GuestTsc(c);
  c.s.gpr[kRax] = t & 0xffffffffu;
  c.s.gpr[kRdx] = t >> 32;
}

void OpRdtscp(CpuCore& c, const Op& op) {
  OpRdtsc(c, op);
  if (!c.fault) c.s.gpr[kRcx] = c.s.tsc_aux & 0xffffffffu;
}

void OpRdrand(CpuCore& c, const Op& op) {
  uint64_t v = 0;
  const bool ok = c.platform.ReadRandom(&v);
  if (!ok) v = 0;
  c.SetReg(op.o[0].reg, op.o[0].size, v);
  c.s.rflags &= ~(kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagOf);
  if (ok) c.s.rflags |= kFlagCf;
}

void OpRdpmc(CpuCore& c, const Op&) {
  // No performance counters are advertised (CPUID leaf 0xa is zero): every counter index is
  // invalid, which the architecture answers with #GP(0).
  c.Gp(0);
}

// ---- control and debug registers -----------------------------------------------------------

void OpMovCr(CpuCore& c, const Op& op) {
  if (c.s.rflags & kFlagVm) return c.Gp(0);
  if (!RequireCpl0(c)) return;
  const bool to_cr = op.o[0].kind == kOpCr;
  const unsigned n = to_cr ? op.o[0].reg : op.o[1].reg;
  const unsigned size = c.long64() ? 8 : 4;
  if (to_cr) {
    const uint64_t v = c.GetReg(op.o[1].reg, size);
    c.SetCr(n, v);
    c.end_block = true;
    return;
  }
  uint64_t v;
  switch (n) {
    case 0: v = c.s.cr0; break;
    case 2: v = c.s.cr2; break;
    case 3: v = c.s.cr3; break;
    case 4: v = c.s.cr4; break;
    case 8: v = c.s.cr8; break;
    default: return c.Ud();
  }
  c.SetReg(op.o[0].reg, size, v);
}

void OpMovDr(CpuCore& c, const Op& op) {
  if (c.s.rflags & kFlagVm) return c.Gp(0);
  if (!RequireCpl0(c)) return;
  const bool to_dr = op.o[0].kind == kOpDr;
  unsigned n = to_dr ? op.o[0].reg : op.o[1].reg;
  if (n == 4 || n == 5) {
    if (c.s.cr4 & kCr4De) return c.Ud();
    n += 2;
  }
  if (n > 7) return c.Ud();
  const unsigned size = c.long64() ? 8 : 4;
  if (to_dr) {
    uint64_t v = c.GetReg(op.o[1].reg, size);
    if ((n == 6 || n == 7) && (v >> 32) != 0) return c.Gp(0);
    if (n == 6) v = (v & 0x0000e00f) | 0xffff0ff0;
    if (n == 7) v = (v & 0xffff2bff) | 0x400;
    c.s.dr[n] = v;
    return;
  }
  c.SetReg(op.o[0].reg, size, c.s.dr[n]);
}

void OpClts(CpuCore& c, const Op&) {
  if (!RequireCpl0(c)) return;
  c.s.cr0 &= ~kCr0Ts;
}

void OpLmsw(CpuCore& c, const Op& op) {
  if (!RequireCpl0(c)) return;
  uint64_t v;
  if (!c.Read(op, op.o[0], &v)) return;
  // Loads PE, MP, EM and TS; cannot clear PE.
  const uint64_t nv = (c.s.cr0 & ~uint64_t{0xe}) | (v & 0xf) | (c.s.cr0 & kCr0Pe);
  c.SetCr(0, nv);
  c.end_block = true;
}

void OpSmsw(CpuCore& c, const Op& op) {
  c.Write(op, op.o[0], c.s.cr0 & SizeMask(op.o[0].size));
}

void OpInvlpg(CpuCore& c, const Op& op) {
  if (!RequireCpl0(c)) return;
  uint64_t lin;
  const uint64_t off = c.EffectiveAddress(op, op.o[0]);
  const Segment& sg = c.s.seg[op.o[0].seg];
  lin = c.long64() ? ((op.o[0].seg == kFs || op.o[0].seg == kGs) ? sg.base + off : off)
                   : (sg.base + off) & 0xffffffffu;
  const uint64_t vpage = lin >> 12;
  for (auto& e : c.tlb) {
    if (e.vpage == vpage) e = TlbEntry{};
  }
  c.fetch_vpage = ~uint64_t{0};
  c.end_block = true;
}

void OpNopPrivileged(CpuCore& c, const Op&) {  // WBINVD, INVD
  RequireCpl0(c);
}

// ---- descriptor tables ---------------------------------------------------------------------

void OpLoadDt(CpuCore& c, const Op& op) {  // LGDT, LIDT
  if (c.protected_mode() && !RequireCpl0(c)) return;
  if (c.s.rflags & kFlagVm) return c.Gp(0);
  const Operand& o = op.o[0];
  if (o.kind != kOpMem) return c.Ud();
  const uint64_t ea = c.EffectiveAddress(op, o);
  uint64_t limit, base;
  const unsigned bsize = c.long64() ? 8 : 4;
  if (!c.ReadSeg(o.seg, ea, 2, &limit) ||
      !c.ReadSeg(o.seg, (ea + 2) & c.AddrMask(op.asize), bsize, &base)) {
    return;
  }
  if (!c.long64() && op.osize == 2) base &= 0xffffff;
  if (c.long64() && !IsCanonical(base)) return c.Gp(0);
  DescriptorTable& t = op.mnemonic == ZYDIS_MNEMONIC_LGDT ? c.s.gdtr : c.s.idtr;
  t.base = base;
  t.limit = static_cast<uint16_t>(limit);
  c.end_block = true;
}

void OpStoreDt(CpuCore& c, const Op& op) {  // SGDT, SIDT
  const Operand& o = op.o[0];
  if (o.kind != kOpMem) return c.Ud();
  const DescriptorTable& t = op.mnemonic == ZYDIS_MNEMONIC_SGDT ? c.s.gdtr : c.s.idtr;
  const uint64_t ea = c.EffectiveAddress(op, o);
  if (!c.ProbeWrite(o.seg, ea, 2)) return;
  const unsigned bsize = c.long64() ? 8 : 4;
  if (!c.ProbeWrite(o.seg, (ea + 2) & c.AddrMask(op.asize), bsize)) return;
  c.WriteSeg(o.seg, ea, 2, t.limit);
  c.WriteSeg(o.seg, (ea + 2) & c.AddrMask(op.asize), bsize, t.base);
}

// Reads a system descriptor from the GDT (16 bytes in long mode). false = fault raised.
bool ReadSystemDescriptor(CpuCore& c, uint16_t sel, uint64_t* lo, uint64_t* hi) {
  if (sel & 4) {
    c.Gp(sel & ~3u);
    return false;
  }
  const uint64_t index = sel & ~7u;
  const unsigned bytes = (c.s.efer & kEferLma) ? 16 : 8;
  if (index + bytes - 1 > c.s.gdtr.limit) {
    c.Gp(sel & ~3u);
    return false;
  }
  if (!c.ReadSys(c.s.gdtr.base + index, 8, lo)) return false;
  *hi = 0;
  if (bytes == 16 && !c.ReadSys(c.s.gdtr.base + index + 8, 8, hi)) return false;
  return true;
}

void OpLldt(CpuCore& c, const Op& op) {
  if (!RequireProtected(c) || !RequireCpl0(c)) return;
  uint64_t v;
  if (!c.Read(op, op.o[0], &v)) return;
  const uint16_t sel = static_cast<uint16_t>(v);
  if ((sel & 0xfffc) == 0) {
    c.s.ldtr = Segment{sel, 0, 0, 0};
    return;
  }
  uint64_t lo, hi;
  if (!ReadSystemDescriptor(c, sel, &lo, &hi)) return;
  Segment sg = CpuCore::DescToSegment(sel, lo);
  if ((sg.attr & kSegAttrS) || (sg.attr & 0xf) != 2) return c.Gp(sel & ~3u);
  if (!(sg.attr & kSegAttrP)) return c.Fault(11, sel & ~3u);
  if (c.s.efer & kEferLma) sg.base |= (hi & 0xffffffffu) << 32;
  c.s.ldtr = sg;
}

void OpLtr(CpuCore& c, const Op& op) {
  if (!RequireProtected(c) || !RequireCpl0(c)) return;
  uint64_t v;
  if (!c.Read(op, op.o[0], &v)) return;
  const uint16_t sel = static_cast<uint16_t>(v);
  if ((sel & 0xfffc) == 0) return c.Gp(0);
  uint64_t lo, hi;
  if (!ReadSystemDescriptor(c, sel, &lo, &hi)) return;
  Segment sg = CpuCore::DescToSegment(sel, lo);
  const unsigned type = sg.attr & 0xf;
  const bool lm = c.s.efer & kEferLma;
  if ((sg.attr & kSegAttrS) || !(type == 9 || (!lm && type == 1))) return c.Gp(sel & ~3u);
  if (!(sg.attr & kSegAttrP)) return c.Fault(11, sel & ~3u);
  if (lm) sg.base |= (hi & 0xffffffffu) << 32;
  // Mark the TSS busy in the descriptor and in the loaded copy.
  const uint64_t busy = lo | (uint64_t{2} << 40);
  if (!c.WriteSys(c.s.gdtr.base + (sel & ~7u), 8, busy)) return;
  sg.attr |= 2;
  c.s.tr = sg;
}

void OpSldtStr(CpuCore& c, const Op& op) {
  if (!RequireProtected(c)) return;
  const Segment& sg = op.mnemonic == ZYDIS_MNEMONIC_SLDT ? c.s.ldtr : c.s.tr;
  c.Write(op, op.o[0], sg.selector);
}

// LAR, LSL, VERR, VERW: descriptor checks that report through ZF instead of faulting.
enum DescQuery { kLar, kLsl, kVerr, kVerw };
template <DescQuery Q>
void OpDescQuery(CpuCore& c, const Op& op) {
  if (!RequireProtected(c)) return;
  const Operand& src = Q == kLar || Q == kLsl ? op.o[1] : op.o[0];
  uint64_t v;
  if (!c.Read(op, src, &v)) return;
  const uint16_t sel = static_cast<uint16_t>(v);
  c.s.rflags &= ~kFlagZf;
  if ((sel & 0xfffc) == 0) return;
  uint64_t desc;
  if (!c.ReadDescriptor(sel, &desc)) return;  // outside its table: ZF=0 (or a fault)
  const Segment sg = CpuCore::DescToSegment(sel, desc);
  const unsigned type = sg.attr & 0xf;
  const bool system = !(sg.attr & kSegAttrS);
  const bool code = !system && (type & 8);
  const bool conforming = code && (type & 4);
  const unsigned dpl = (sg.attr >> 5) & 3;
  const bool lm = c.s.efer & kEferLma;
  if (system) {
    if (Q == kVerr || Q == kVerw) return;
    bool ok;
    if (lm) ok = type == 2 || type == 9 || type == 11 || (Q == kLar && type == 12);
    else ok = type == 1 || type == 2 || type == 3 || type == 9 || type == 11 ||
              (Q == kLar && (type == 4 || type == 5 || type == 12));
    if (!ok) return;
  }
  if (!conforming && dpl < std::max<unsigned>(c.s.cpl, sel & 3)) return;
  if (Q == kVerr && code && !(type & 2)) return;
  if (Q == kVerw && (code || !(type & 2))) return;
  c.s.rflags |= kFlagZf;
  if (Q == kLar) c.SetReg(op.o[0].reg, op.o[0].size, (desc >> 32) & 0x00f0ff00);
  if (Q == kLsl) c.SetReg(op.o[0].reg, op.o[0].size, sg.limit);
}

void OpArpl(CpuCore& c, const Op& op) {
  if (!RequireProtected(c)) return;
  uint64_t d, s;
  if (!c.Read(op, op.o[0], &d) || !c.Read(op, op.o[1], &s)) return;
  if ((d & 3) < (s & 3)) {
    if (!c.Write(op, op.o[0], (d & ~uint64_t{3}) | (s & 3))) return;
    c.s.rflags |= kFlagZf;
  } else {
    c.s.rflags &= ~kFlagZf;
  }
}

void OpBound(CpuCore& c, const Op& op) {
  uint64_t idx, lo, hi;
  const unsigned n = op.o[0].size;
  if (!c.Read(op, op.o[0], &idx)) return;
  const uint64_t ea = c.EffectiveAddress(op, op.o[1]);
  if (!c.ReadSeg(op.o[1].seg, ea, n, &lo) ||
      !c.ReadSeg(op.o[1].seg, (ea + n) & c.AddrMask(op.asize), n, &hi)) {
    return;
  }
  const int64_t i = SignExtend(idx, n);
  if (i < SignExtend(lo, n) || i > SignExtend(hi, n)) c.FaultNoErr(5);
}

void OpSalc(CpuCore& c, const Op&) { c.SetReg(kRax, 1, (c.s.rflags & kFlagCf) ? 0xff : 0); }

// ---- fast system calls ---------------------------------------------------------------------

void OpSyscall(CpuCore& c, const Op&) {
  if (!(c.s.efer & kEferSce) || !c.long64()) return c.Ud();
  CpuState& s = c.s;
  s.gpr[kRcx] = c.next_rip;
  s.gpr[kR11] = s.rflags & ~kFlagRf;
  const uint16_t sel = static_cast<uint16_t>(s.star >> 32) & 0xfffc;
  s.seg[kCs] = Flat(sel, kAttrCode64Dpl0);
  s.seg[kSs] = Flat(static_cast<uint16_t>(sel + 8), kAttrDataDpl0);
  s.rflags = (s.rflags & ~s.sfmask & ~kFlagRf) | 2;
  s.cpl = 0;
  c.next_rip = s.lstar;
  c.UpdateMode();
  c.end_block = true;
}

void OpSysret(CpuCore& c, const Op& op) {
  if (!(c.s.efer & kEferSce) || !c.long64()) return c.Ud();
  if (!RequireCpl0(c)) return;
  CpuState& s = c.s;
  const uint16_t base = static_cast<uint16_t>(s.star >> 48);
  if (op.osize == 8) {
    if (!IsCanonical(s.gpr[kRcx])) return c.Gp(0);
    s.seg[kCs] = Flat(static_cast<uint16_t>((base + 16) | 3), kAttrCode64Dpl3);
    c.next_rip = s.gpr[kRcx];
  } else {
    s.seg[kCs] = Flat(static_cast<uint16_t>(base | 3), kAttrCode32Dpl3);
    c.next_rip = s.gpr[kRcx] & 0xffffffffu;
  }
  s.seg[kSs].selector = static_cast<uint16_t>((base + 8) | 3);
  s.seg[kSs].attr = kAttrDataDpl3;
  s.seg[kSs].base = 0;
  s.seg[kSs].limit = 0xffffffffu;
  s.cpl = 3;
  c.SetRflags(s.gpr[kR11], ~uint64_t{0});
  s.rflags &= ~(kFlagRf | kFlagVm);
  c.UpdateMode();
  c.end_block = true;
}

void OpSysenter(CpuCore& c, const Op&) {
  CpuState& s = c.s;
  if (!c.protected_mode() || (s.sysenter_cs & 0xfffc) == 0) return c.Gp(0);
  const bool lm = s.efer & kEferLma;
  const uint16_t sel = static_cast<uint16_t>(s.sysenter_cs) & 0xfffc;
  s.rflags &= ~(kFlagVm | kFlagIf | kFlagRf);
  s.seg[kCs] = Flat(sel, lm ? kAttrCode64Dpl0 : kAttrCode32Dpl0);
  s.seg[kSs] = Flat(static_cast<uint16_t>(sel + 8), kAttrDataDpl0);
  s.cpl = 0;
  s.gpr[kRsp] = lm ? s.sysenter_esp : s.sysenter_esp & 0xffffffffu;
  c.next_rip = lm ? s.sysenter_eip : s.sysenter_eip & 0xffffffffu;
  c.UpdateMode();
  c.end_block = true;
}

void OpSysexit(CpuCore& c, const Op& op) {
  CpuState& s = c.s;
  if (!c.protected_mode() || (s.rflags & kFlagVm) || (s.sysenter_cs & 0xfffc) == 0) {
    return c.Gp(0);
  }
  if (!RequireCpl0(c)) return;
  const uint16_t base = static_cast<uint16_t>(s.sysenter_cs);
  if (op.osize == 8) {
    if (!IsCanonical(s.gpr[kRdx]) || !IsCanonical(s.gpr[kRcx])) return c.Gp(0);
    s.seg[kCs] = Flat(static_cast<uint16_t>((base + 32) | 3), kAttrCode64Dpl3);
    s.seg[kSs] = Flat(static_cast<uint16_t>((base + 40) | 3), kAttrDataDpl3);
    s.gpr[kRsp] = s.gpr[kRcx];
    c.next_rip = s.gpr[kRdx];
  } else {
    s.seg[kCs] = Flat(static_cast<uint16_t>((base + 16) | 3), kAttrCode32Dpl3);
    s.seg[kSs] = Flat(static_cast<uint16_t>((base + 24) | 3), kAttrDataDpl3);
    s.gpr[kRsp] = s.gpr[kRcx] & 0xffffffffu;
    c.next_rip = s.gpr[kRdx] & 0xffffffffu;
  }
  s.cpl = 3;
  c.UpdateMode();
  c.end_block = true;
}

void OpSwapgs(CpuCore& c, const Op&) {
  if (!c.long64()) return c.Ud();
  if (!RequireCpl0(c)) return;
  std::swap(c.s.seg[kGs].base, c.s.kernel_gs_base);
}

}  // namespace

// ---- CpuCore members -------------------------------------------------------------------------

Segment CpuCore::DescToSegment(uint16_t sel, uint64_t desc) {
  Segment sg;
  sg.selector = sel;
  sg.base = ((desc >> 16) & 0xffffff) | (((desc >> 56) & 0xff) << 24);
  uint32_t limit = static_cast<uint32_t>((desc & 0xffff) | (((desc >> 48) & 0xf) << 16));
  if (desc & (1ull << 55)) limit = (limit << 12) | 0xfff;
  sg.limit = limit;
  sg.attr = static_cast<uint16_t>(((desc >> 40) & 0xff) | (((desc >> 52) & 0xf) << 12));
  return sg;
}

bool CpuCore::ReadDescriptor(uint16_t sel, uint64_t* desc) {
  const uint64_t index = sel & ~7u;
  uint64_t base, limit;
  if (sel & 4) {
    if ((s.ldtr.selector & 0xfffc) == 0 || !(s.ldtr.attr & kSegAttrP)) return false;
    base = s.ldtr.base;
    limit = s.ldtr.limit;
  } else {
    base = s.gdtr.base;
    limit = s.gdtr.limit;
  }
  if (index + 7 > limit) return false;
  return ReadSys(base + index, 8, desc);
}

void CpuCore::LoadSegmentReal(uint8_t seg, uint16_t sel) {
  Segment& sg = s.seg[seg];
  sg.selector = sel;
  sg.base = uint64_t{sel} << 4;
  if (s.rflags & kFlagVm) {
    sg.limit = 0xffff;
    sg.attr = seg == kCs ? 0xfb : 0xf3;
  }
  if (seg == kCs || seg == kSs) UpdateMode();
}

bool CpuCore::LoadSegment(uint8_t seg, uint16_t sel) {
  if (!protected_mode() || (s.rflags & kFlagVm)) {
    LoadSegmentReal(seg, sel);
    return true;
  }
  const unsigned rpl = sel & 3;
  if ((sel & 0xfffc) == 0) {
    if (seg == kSs) {
      // A null SS is allowed only in 64-bit mode below CPL 3 with RPL == CPL.
      if (!long64() || s.cpl == 3 || rpl != s.cpl) {
        Gp(0);
        return false;
      }
    }
    Segment& sg = s.seg[seg];
    sg.selector = sel;
    sg.attr = seg == kSs ? static_cast<uint16_t>((s.cpl << 5) | 0x4000) : 0;  // unusable
    sg.base = (seg == kFs || seg == kGs) && long64() ? 0 : 0;
    sg.limit = 0;
    return true;
  }
  uint64_t desc;
  if (!ReadDescriptor(sel, &desc)) {
    if (!fault) Gp(sel & 0xfffc);
    return false;
  }
  Segment sg = DescToSegment(sel, desc);
  const unsigned type = sg.attr & 0xf;
  const unsigned dpl = (sg.attr >> 5) & 3;
  const bool code = (sg.attr & kSegAttrS) && (type & 8);
  const bool data = (sg.attr & kSegAttrS) && !(type & 8);
  if (seg == kSs) {
    if (rpl != s.cpl || !data || !(type & 2) || dpl != s.cpl) {
      Gp(sel & 0xfffc);
      return false;
    }
    if (!(sg.attr & kSegAttrP)) {
      Fault(12, sel & 0xfffc);
      return false;
    }
  } else {
    const bool readable_code = code && (type & 2);
    if (!data && !readable_code) {
      Gp(sel & 0xfffc);
      return false;
    }
    const bool conforming = code && (type & 4);
    if (!conforming && dpl < std::max<unsigned>(s.cpl, rpl)) {
      Gp(sel & 0xfffc);
      return false;
    }
    if (!(sg.attr & kSegAttrP)) {
      Fault(11, sel & 0xfffc);
      return false;
    }
  }
  if (!(desc & (1ull << 40))) {  // set the accessed bit, as the hardware does
    const uint64_t table = (sel & 4) ? s.ldtr.base : s.gdtr.base;
    if (!WriteSys(table + (sel & ~7u), 8, desc | (1ull << 40))) return false;
    sg.attr |= 1;
  }
  s.seg[seg] = sg;
  if (seg == kSs) UpdateMode();
  return true;
}

bool CpuCore::SetCr(unsigned n, uint64_t v) {
  switch (n) {
    case 0: {
      if (v >> 32) {
        Gp(0);
        return false;
      }
      v |= kCr0Et;
      if (((v & kCr0Pg) && !(v & kCr0Pe)) || ((v & kCr0Nw) && !(v & kCr0Cd))) {
        Gp(0);
        return false;
      }
      const bool paging_on = (v & kCr0Pg) && !(s.cr0 & kCr0Pg);
      const bool paging_off = !(v & kCr0Pg) && (s.cr0 & kCr0Pg);
      if (paging_on && (s.efer & kEferLme)) {
        if (!(s.cr4 & kCr4Pae) || (s.seg[kCs].attr & kSegAttrL)) {
          Gp(0);
          return false;
        }
        s.efer |= kEferLma;
      }
      if (paging_off && (s.efer & kEferLma)) {
        if (long64()) {
          Gp(0);
          return false;
        }
        s.efer &= ~kEferLma;
      }
      const uint64_t changed = s.cr0 ^ v;
      s.cr0 = v;
      if (changed & (kCr0Pg | kCr0Pe | kCr0Wp)) FlushTlb(true);
      UpdateMode();
      end_block = true;
      return true;
    }
    case 2:
      s.cr2 = v;
      return true;
    case 3:
      s.cr3 = (s.efer & kEferLma) ? v & 0x000ffffffffff000ull : v & 0xffffffffu;
      FlushTlb(false);
      end_block = true;
      return true;
    case 4: {
      if (v & ~kCr4Supported) {
        Gp(0);
        return false;
      }
      if ((s.efer & kEferLma) && !(v & kCr4Pae)) {
        Gp(0);
        return false;
      }
      const uint64_t changed = s.cr4 ^ v;
      s.cr4 = v;
      if (changed & (kCr4Pse | kCr4Pae | kCr4Pge)) FlushTlb(true);
      end_block = true;
      return true;
    }
    case 8:
      if (v >> 4) {
        Gp(0);
        return false;
      }
      s.cr8 = v;
      return true;
    default:
      Ud();
      return false;
  }
}

bool CpuCore::ReadMsr(uint32_t idx, uint64_t* v) {
  uint64_t platform_value;
  if (platform.ReadMsr(idx, &platform_value)) {
    *v = platform_value;
    return true;
  }
  switch (idx) {
    case 0x10: *v = platform.ReadTsc() + s.tsc_offset; return true;         // IA32_TSC
    case 0x1b: *v = s.apic_base; return true;                               // IA32_APIC_BASE
    case 0x3a: *v = 1; return true;  // IA32_FEATURE_CONTROL: locked, nothing enabled
    case 0x8b: *v = 0; return true;  // IA32_BIOS_SIGN_ID (microcode revision)
    case 0x174: *v = s.sysenter_cs; return true;
    case 0x175: *v = s.sysenter_esp; return true;
    case 0x176: *v = s.sysenter_eip; return true;
    case 0x1a0: *v = s.misc_enable; return true;
    case 0x277: *v = s.pat; return true;
    case 0xc0000080: *v = s.efer; return true;
    case 0xc0000081: *v = s.star; return true;
    case 0xc0000082: *v = s.lstar; return true;
    case 0xc0000083: *v = s.cstar; return true;
    case 0xc0000084: *v = s.sfmask; return true;
    case 0xc0000100: *v = s.seg[kFs].base; return true;
    case 0xc0000101: *v = s.seg[kGs].base; return true;
    case 0xc0000102: *v = s.kernel_gs_base; return true;
    case 0xc0000103: *v = s.tsc_aux; return true;
    default: return false;
  }
}

bool CpuCore::WriteMsr(uint32_t idx, uint64_t v) {
  if (platform.WriteMsr(idx, v)) {
    if (idx == 0x1b) s.apic_base = v;
    return true;
  }
  const bool canonical = IsCanonical(v);
  switch (idx) {
    case 0x10: s.tsc_offset = v - platform.ReadTsc(); return true;
    case 0x1b:
      if (v & ~uint64_t{0x000000fffffffd00ull}) return false;
      s.apic_base = v;
      return true;
    case 0x174: s.sysenter_cs = v & 0xffff; return true;
    case 0x175: if (!canonical) return false; s.sysenter_esp = v; return true;
    case 0x176: if (!canonical) return false; s.sysenter_eip = v; return true;
    case 0x1a0: s.misc_enable = v; return true;
    // IA32_BIOS_SIGN_ID: software writes 0 before CPUID(1) to read the microcode revision
    // back; the revision stays 0.
    case 0x8b: return true;
    case 0x277:
      for (int i = 0; i < 8; ++i) {
        const unsigned t = (v >> (8 * i)) & 0xff;
        if (t == 2 || t == 3 || t > 7) return false;
      }
      s.pat = v;
      return true;
    case 0xc0000080: {
      if (v & ~(kEferSce | kEferLme | kEferLma | kEferNxe)) return false;
      uint64_t nv = (v & ~kEferLma) | (s.efer & kEferLma);
      if (((nv ^ s.efer) & kEferLme) && paging()) return false;
      const bool nx_changed = (nv ^ s.efer) & kEferNxe;
      s.efer = nv;
      if (nx_changed) FlushTlb(true);
      return true;
    }
    case 0xc0000081: s.star = v; return true;
    case 0xc0000082: if (!canonical) return false; s.lstar = v; return true;
    case 0xc0000083: if (!canonical) return false; s.cstar = v; return true;
    case 0xc0000084: s.sfmask = v & 0xffffffffu; return true;
    case 0xc0000100: if (!canonical) return false; s.seg[kFs].base = v; return true;
    case 0xc0000101: if (!canonical) return false; s.seg[kGs].base = v; return true;
    case 0xc0000102: if (!canonical) return false; s.kernel_gs_base = v; return true;
    case 0xc0000103: s.tsc_aux = v & 0xffffffffu; return true;
    default: return false;
  }
}

void CpuCore::SetRflags(uint64_t v, uint64_t mask) {
  constexpr uint64_t kDefined = 0x3f7fd5;  // bits 0,2,4,6-11,12-14,16-21
  const uint64_t old = s.rflags;
  s.rflags = ((s.rflags & ~mask) | (v & mask)) & kDefined;
  s.rflags |= 2;
  if ((old ^ s.rflags) & kFlagVm) UpdateMode();
}

bool CpuCore::IoAllowed(uint16_t port, unsigned size) {
  if (!protected_mode()) return true;
  const unsigned iopl = (s.rflags & kFlagIopl) >> 12;
  if (!(s.rflags & kFlagVm) && s.cpl <= iopl) return true;
  // Consult the I/O permission bitmap of the current (32/64-bit) TSS.
  const unsigned type = s.tr.attr & 0xf;
  if ((type != 9 && type != 11) || s.tr.limit < 0x67) {
    Gp(0);
    return false;
  }
  uint64_t map_base;
  if (!ReadSys(s.tr.base + 0x66, 2, &map_base)) return false;
  const uint64_t at = map_base + port / 8;
  if (at + 1 > s.tr.limit) {
    Gp(0);
    return false;
  }
  uint64_t bits;
  if (!ReadSys(s.tr.base + at, 2, &bits)) return false;
  const uint64_t want = ((uint64_t{1} << size) - 1) << (port & 7);
  if (bits & want) {
    Gp(0);
    return false;
  }
  return true;
}

void CpuCore::Cpuid(uint32_t leaf, uint32_t sub, uint32_t out[4]) const {
  out[0] = out[1] = out[2] = out[3] = 0;
  auto str = [&](const char* text, int first) {
    for (int i = 0; i < 4 && first + i < 4; ++i) {
      std::memcpy(&out[first + i], text + 4 * i, 4);
    }
  };
  switch (leaf) {
    case 0:
      out[0] = 0x16;  // highest basic leaf
      std::memcpy(&out[1], "Genu", 4);
      std::memcpy(&out[3], "ineI", 4);
      std::memcpy(&out[2], "ntel", 4);
      return;
    case 1:
      out[0] = 0x000006f1;          // family 6, model 15, stepping 1
      out[1] = (8u << 8) | (1u << 16);  // CLFLUSH line 64 bytes, one logical CPU, APIC ID 0
      out[2] = (1u << 0)            // SSE3
               | (1u << 9)          // SSSE3
               | (1u << 13)         // CMPXCHG16B
               | (1u << 22)         // MOVBE
               | (1u << 23)         // POPCNT
               | (1u << 24)         // TSC-deadline timer
               | (1u << 26)         // XSAVE/XRSTOR/XSETBV/XGETBV, XCR0
               | ((s.cr4 & kCr4Osxsave) ? (1u << 27) : 0u)  // OSXSAVE: CR4.OSXSAVE as set
               | (1u << 30)         // RDRAND
               | (1u << 31);        // running under a hypervisor
      out[3] = (1u << 0)            // FPU (x87 on chip)
               | (1u << 2)          // DE
               | (1u << 3)          // PSE
               | (1u << 4)          // TSC
               | (1u << 5)          // MSR
               | (1u << 6)          // PAE
               | (1u << 8)          // CMPXCHG8B
               | (1u << 9)          // APIC
               | (1u << 11)         // SYSENTER/SYSEXIT
               | (1u << 13)         // PGE
               | (1u << 15)         // CMOV
               | (1u << 16)         // PAT
               | (1u << 19)         // CLFLUSH
               | (1u << 23)         // MMX
               | (1u << 24)         // FXSAVE/FXRSTOR
               | (1u << 25)         // SSE
               | (1u << 26);        // SSE2
      return;
    case 6:
      out[0] = 1u << 2;  // ARAT: the local APIC timer runs whatever the C-state
      return;
    case 7:
      if (sub == 0) out[1] = (1u << 3) | (1u << 18);  // BMI1, RDSEED
      return;
    case 0xd:
      // XSAVE state components: x87 and SSE only, standard form, XSAVEOPT.
      if (sub == 0) {
        out[0] = static_cast<uint32_t>(kXcr0Supported);  // XCR0 bits that may be set
        out[1] = 576;  // size for the components XCR0 enables (legacy area + header)
        out[2] = 576;  // size for every supported component
      } else if (sub == 1) {
        out[0] = 1;    // XSAVEOPT
      }
      return;
    case 0x15:
      // TSC and core crystal clock: the TSC and the local APIC timer both count guest
      // nanoseconds (1 GHz), so crystal = 1 GHz and TSC/crystal = 1/1. A kernel reads its TSC
      // and APIC timer frequencies here instead of calibrating them against the PIT.
      out[0] = 1;              // denominator
      out[1] = 1;              // numerator
      out[2] = 1'000'000'000;  // crystal Hz
      return;
    case 0x16:
      out[0] = 1000;  // base MHz
      out[1] = 1000;  // maximum MHz
      out[2] = 1000;  // bus (reference) MHz
      return;
    case 0x80000000:
      out[0] = 0x80000008;
      return;
    case 0x80000007:
      out[3] = 1u << 8;  // invariant TSC
      return;
    case 0x80000001:
      out[2] = (1u << 0) | (1u << 5);  // LAHF/SAHF in 64-bit mode, LZCNT
      out[3] = (1u << 11) | (1u << 20) | (1u << 27) | (1u << 29);  // SYSCALL, NX, RDTSCP, LM
      return;
    case 0x80000002:
    case 0x80000003:
    case 0x80000004: {
      static const char kBrand[49] = "vmrr deterministic x86-64 CPU v1                ";
      str(kBrand + 16 * (leaf - 0x80000002), 0);
      return;
    }
    case 0x80000008:
      out[0] = 0x3028;  // 40 physical, 48 linear address bits
      return;
    default:
      return;
  }
}

void RegisterSystem(Handler* t) {
  t[ZYDIS_MNEMONIC_CLI] = OpCli;
  t[ZYDIS_MNEMONIC_STI] = OpSti;
  t[ZYDIS_MNEMONIC_PUSHF] = OpPushf;
  t[ZYDIS_MNEMONIC_PUSHFD] = OpPushf;
  t[ZYDIS_MNEMONIC_PUSHFQ] = OpPushf;
  t[ZYDIS_MNEMONIC_POPF] = OpPopf;
  t[ZYDIS_MNEMONIC_POPFD] = OpPopf;
  t[ZYDIS_MNEMONIC_POPFQ] = OpPopf;
  t[ZYDIS_MNEMONIC_HLT] = OpHlt;
  t[ZYDIS_MNEMONIC_IN] = OpIn;
  t[ZYDIS_MNEMONIC_OUT] = OpOut;
  t[ZYDIS_MNEMONIC_CPUID] = OpCpuid;
  t[ZYDIS_MNEMONIC_RDMSR] = OpRdmsr;
  t[ZYDIS_MNEMONIC_WRMSR] = OpWrmsr;
  t[ZYDIS_MNEMONIC_RDTSC] = OpRdtsc;
  t[ZYDIS_MNEMONIC_RDTSCP] = OpRdtscp;
  t[ZYDIS_MNEMONIC_RDRAND] = OpRdrand;
  t[ZYDIS_MNEMONIC_RDSEED] = OpRdrand;
  t[ZYDIS_MNEMONIC_RDPMC] = OpRdpmc;
  t[ZYDIS_MNEMONIC_CLTS] = OpClts;
  t[ZYDIS_MNEMONIC_LMSW] = OpLmsw;
  t[ZYDIS_MNEMONIC_SMSW] = OpSmsw;
  t[ZYDIS_MNEMONIC_INVLPG] = OpInvlpg;
  t[ZYDIS_MNEMONIC_WBINVD] = OpNopPrivileged;
  t[ZYDIS_MNEMONIC_INVD] = OpNopPrivileged;
  t[ZYDIS_MNEMONIC_LGDT] = OpLoadDt;
  t[ZYDIS_MNEMONIC_LIDT] = OpLoadDt;
  t[ZYDIS_MNEMONIC_SGDT] = OpStoreDt;
  t[ZYDIS_MNEMONIC_SIDT] = OpStoreDt;
  t[ZYDIS_MNEMONIC_LLDT] = OpLldt;
  t[ZYDIS_MNEMONIC_LTR] = OpLtr;
  t[ZYDIS_MNEMONIC_SLDT] = OpSldtStr;
  t[ZYDIS_MNEMONIC_STR] = OpSldtStr;
  t[ZYDIS_MNEMONIC_LAR] = OpDescQuery<kLar>;
  t[ZYDIS_MNEMONIC_LSL] = OpDescQuery<kLsl>;
  t[ZYDIS_MNEMONIC_VERR] = OpDescQuery<kVerr>;
  t[ZYDIS_MNEMONIC_VERW] = OpDescQuery<kVerw>;
  t[ZYDIS_MNEMONIC_ARPL] = OpArpl;
  t[ZYDIS_MNEMONIC_BOUND] = OpBound;
  t[ZYDIS_MNEMONIC_SALC] = OpSalc;
  t[ZYDIS_MNEMONIC_SYSCALL] = OpSyscall;
  t[ZYDIS_MNEMONIC_SYSRET] = OpSysret;
  t[ZYDIS_MNEMONIC_SYSENTER] = OpSysenter;
  t[ZYDIS_MNEMONIC_SYSEXIT] = OpSysexit;
  t[ZYDIS_MNEMONIC_SWAPGS] = OpSwapgs;
}

Handler MovCrHandler() { return OpMovCr; }
Handler MovDrHandler() { return OpMovDr; }

}  // namespace vmrr
