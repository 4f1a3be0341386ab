// Segmentation (limit/type/canonical checks), paging (32-bit, PAE, 4-level) with the
// software TLB, A/D bits and architectural #PF error codes, and every guest memory access
// (RAM through host pointers, everything else through the platform's MMIO).
#include "hv-hooks/cpu/core.h"

#include <algorithm>

namespace vmrr {
namespace {

constexpr unsigned kMaxPhysBits = 40;  // reported in CPUID 0x80000008
constexpr uint64_t kPhysMask = ((uint64_t{1} << kMaxPhysBits) - 1) & ~uint64_t{0xfff};
constexpr uint64_t kPteP = 1, kPteW = 2, kPteU = 4, kPteA = 0x20, kPteD = 0x40, kPtePs = 0x80;
constexpr uint64_t kPteNx = uint64_t{1} << 63;

}  // namespace

bool CpuCore::Linear(uint8_t seg, uint64_t off, unsigned size, Access acc, uint64_t* lin) {
  const Segment& sg = s.seg[seg];
  if (long64()) {
    uint64_t a = (seg == kFs || seg == kGs) ? sg.base + off : off;
    if (!IsCanonical(a)) {
      if (seg == kSs) Fault(12, 0); else Gp(0);
      return false;
    }
    *lin = a;
    return true;
  }
  if (mode != kModeReal && mode != kModeV86) {
    const uint16_t a = sg.attr;
    if (!(a & kSegAttrP) || (seg != kCs && (sg.selector & ~3) == 0 && !(a & kSegAttrS) )) {
      if (seg == kSs) Fault(12, 0); else Gp(0);
      return false;
    }
    const bool code = (a & 8) != 0;
    if (acc == kWrite && (code || !(a & 2))) { if (seg == kSs) Fault(12, 0); else Gp(0); return false; }
    if (acc == kRead && code && !(a & 2)) { Gp(0); return false; }
  }
  // Limit check (expand-down data segments are valid above the limit).
  const uint64_t last = off + size - 1;
  const bool expand_down = (sg.attr & kSegAttrS) && !(sg.attr & 8) && (sg.attr & 4) &&
                           mode != kModeReal;
  bool ok;
  if (expand_down) {
    uint64_t upper = (sg.attr & kSegAttrDb) ? 0xffffffffu : 0xffffu;
    ok = off > sg.limit && last <= upper;
  } else {
    ok = last <= sg.limit && last >= off;
  }
  if (!ok) {
    if (seg == kSs) Fault(12, 0); else Gp(0);
    return false;
  }
  *lin = (sg.base + off) & 0xffffffffu;
  return true;
}


// Walks the page tables for lin. Sets A (and D for writes), fills the TLB entry, and raises
// #PF with the architectural error code when the access is not allowed (unless probe).
bool CpuCore::Translate(uint64_t lin, Access acc, bool user, TlbEntry** out, bool probe) {
  const uint64_t vpage = lin >> 12;
  TlbEntry& e = tlb[TlbIndex(vpage)];
  const uint8_t need = acc == kRead ? (user ? kRightR_U : kRightR_S)
                       : acc == kWrite ? (user ? kRightW_U : kRightW_S)
                                       : (user ? kRightX_U : kRightX_S);
  if (e.vpage == vpage && (e.rights & need)) {
    *out = &e;
    return true;
  }
  uint64_t phys_page;
  uint8_t rights;
  if (!paging()) {
    phys_page = vpage << 12;
    rights = 0x3f;
  } else {
    const bool pae = s.cr4 & 0x20;
    const bool lma = s.efer & (1u << 10);
    const bool nxe = s.efer & (1u << 11);
    const bool wp = s.cr0 & 0x10000;
    bool w_all = true, u_all = true, nx = false;
    uint64_t entry_addr[4];
    unsigned levels = 0;
    uint32_t err_base = (acc == kWrite ? 2u : 0u) | (user ? 4u : 0u) |
                        ((acc == kExec && (nxe || (s.cr4 & (1u << 20)))) ? 16u : 0u);
    auto fail = [&](bool present, bool rsvd) {
      if (probe) return false;
      s.cr2 = lin;
      Fault(14, err_base | (present ? 1u : 0u) | (rsvd ? 8u : 0u));
      return false;
    };
    uint64_t ent = 0;
    if (!lma && !pae) {
      uint64_t pde_addr = (s.cr3 & 0xfffff000u) + ((lin >> 22) & 0x3ff) * 4;
      uint64_t pde;
      if (!ReadPhys(pde_addr, 4, &pde)) return false;
      if (!(pde & kPteP)) return fail(false, false);
      entry_addr[levels++] = pde_addr;
      w_all &= (pde & kPteW) != 0;
      u_all &= (pde & kPteU) != 0;
      if ((pde & kPtePs) && (s.cr4 & 0x10)) {
        ent = pde;
        phys_page = ((pde & 0xffc00000u) | (((pde >> 13) & 0xff) << 32)) + (lin & 0x3ff000);
      } else {
        uint64_t pte_addr = (pde & 0xfffff000u) + ((lin >> 12) & 0x3ff) * 4;
        if (!ReadPhys(pte_addr, 4, &ent)) return false;
        if (!(ent & kPteP)) return fail(false, false);
        entry_addr[levels++] = pte_addr;
        w_all &= (ent & kPteW) != 0;
        u_all &= (ent & kPteU) != 0;
        phys_page = ent & 0xfffff000u;
      }
    } else {
      const uint64_t rsvd_common = ~kPhysMask & 0x000ffffffffff000ull;
      const uint64_t nx_rsvd = nxe ? 0 : kPteNx;
      uint64_t table;
      int level;
      if (lma) {
        table = s.cr3 & kPhysMask;
        level = 4;
      } else {
        uint64_t pdpte;
        uint64_t a = (s.cr3 & 0xffffffe0u) + ((lin >> 30) & 3) * 8;
        if (!ReadPhys(a, 8, &pdpte)) return false;
        if (!(pdpte & kPteP)) return fail(false, false);
        if (pdpte & (rsvd_common | 0x1e6 | kPteNx)) return fail(true, true);
        table = pdpte & kPhysMask;
        level = 2;
      }
      for (;; --level) {
        const unsigned shift = 12 + 9 * (level - 1);
        const uint64_t a = table + ((lin >> shift) & 511) * 8;
        if (!ReadPhys(a, 8, &ent)) return false;
        if (!(ent & kPteP)) return fail(false, false);
        uint64_t rsvd = rsvd_common | nx_rsvd;
        const bool ps = (ent & kPtePs) && (level == 2 || level == 3);
        if (level == 4 && (ent & kPtePs)) rsvd |= kPtePs;
        if (level == 3 && (ent & kPtePs) && lma) rsvd |= 0x3fffe000;  // 1 GiB page offset bits
        if (level == 2 && ps) rsvd |= 0x1fe000;
        if (!lma && level == 3) rsvd |= kPtePs;
        if (ent & rsvd) return fail(true, true);
        entry_addr[levels++] = a;
        w_all &= (ent & kPteW) != 0;
        u_all &= (ent & kPteU) != 0;
        nx |= nxe && (ent & kPteNx);
        if (level == 1 || ps) {
          const uint64_t leaf_mask = (uint64_t{1} << shift) - 1;  // offset bits of the leaf
          phys_page = (ent & kPhysMask & ~leaf_mask) + (lin & leaf_mask & ~uint64_t{0xfff});
          break;
        }
        table = ent & kPhysMask;
      }
    }
    // Permission check.
    bool ok = true;
    if (user && !u_all) ok = false;
    if (acc == kWrite && !w_all && (user || wp)) ok = false;
    if (acc == kExec && nx) ok = false;
    if (!ok) return fail(true, false);
    if (probe) {
      e = TlbEntry{};
      return true;
    }
    // Accessed bits on every level, dirty on the leaf for writes.
    for (unsigned i = 0; i < levels; ++i) {
      const unsigned esz = (!lma && !pae) ? 4 : 8;
      uint64_t v;
      if (!ReadPhys(entry_addr[i], esz, &v)) return false;
      uint64_t nv = v | kPteA;
      if (i == levels - 1 && acc == kWrite) nv |= kPteD;
      if (nv != v && !WritePhys(entry_addr[i], esz, nv)) return false;
      if (i == levels - 1) ent = nv;
    }
    const bool dirty = (ent & kPteD) != 0;
    rights = kRightR_S | kRightX_S * !nx;
    if (u_all) rights |= kRightR_U | (nx ? 0 : kRightX_U);
    if (dirty && (w_all || !wp)) rights |= kRightW_S;
    if (dirty && w_all && u_all) rights |= kRightW_U;
  }
  if (!(s.efer & (1u << 10)) && !paging()) phys_page &= 0xfffff000u;
  e.vpage = vpage;
  e.ppage = phys_page;
  e.host = TlbHost(vpage, phys_page);
  e.rights = rights;
  *out = &e;
  return true;
}

bool CpuCore::WalkNoSideEffects(uint64_t lin, uint64_t* gpa) const {
  // Read-only walk over RAM: no TLB fill, no A/D updates, no faults, no MMIO reads.
  if (!paging()) {
    *gpa = lin & 0xffffffffu;
    return true;
  }
  auto rd = [&](uint64_t a, unsigned n, uint64_t* v) {
    *v = 0;
    return mem.Read(a, v, n);
  };
  const bool pae = s.cr4 & 0x20, lma = s.efer & (1u << 10);
  // A non-canonical address has no translation in long mode (an access to it is #GP).
  if (lma && static_cast<uint64_t>(static_cast<int64_t>(lin << 16) >> 16) != lin) return false;
  uint64_t ent;
  if (!lma && !pae) {
    uint64_t pde;
    if (!rd((s.cr3 & 0xfffff000u) + ((lin >> 22) & 0x3ff) * 4, 4, &pde) || !(pde & kPteP)) {
      return false;
    }
    if ((pde & kPtePs) && (s.cr4 & 0x10)) {
      *gpa = (pde & 0xffc00000u) + (lin & 0x3fffff);
      return true;
    }
    if (!rd((pde & 0xfffff000u) + ((lin >> 12) & 0x3ff) * 4, 4, &ent) || !(ent & kPteP)) {
      return false;
    }
    *gpa = (ent & 0xfffff000u) + (lin & 0xfff);
    return true;
  }
  uint64_t table;
  int level;
  if (lma) {
    table = s.cr3 & kPhysMask;
    level = 4;
  } else {
    uint64_t pdpte;
    if (!rd((s.cr3 & 0xffffffe0u) + ((lin >> 30) & 3) * 8, 8, &pdpte) || !(pdpte & kPteP)) {
      return false;
    }
    table = pdpte & kPhysMask;
    level = 2;
  }
  for (;; --level) {
    const unsigned shift = 12 + 9 * (level - 1);
    if (!rd(table + ((lin >> shift) & 511) * 8, 8, &ent) || !(ent & kPteP)) return false;
    if (level == 1 || ((ent & kPtePs) && level <= 3)) {
      const uint64_t m = (uint64_t{1} << shift) - 1;
      *gpa = (ent & kPhysMask & ~m) + (lin & m);
      return true;
    }
    table = ent & kPhysMask;
  }
}

bool CpuCore::ReadPhys(uint64_t gpa, unsigned size, uint64_t* v) {
  if (const uint8_t* p = mem.Span(gpa, size)) {
    *v = LoadN(p, size);
    return true;
  }
  *v = platform.MmioRead(gpa, size) & SizeMask(size);
  end_block = true;
  NoteBlockCut();
  return true;
}

bool CpuCore::WritePhys(uint64_t gpa, unsigned size, uint64_t v) {
  if (uint8_t* p = mem.Span(gpa, size)) {
    StoreN(p, size, v);
    mem.NoteWrite(gpa, size);
    return true;
  }
  platform.MmioWrite(gpa, size, v & SizeMask(size));
  end_block = true;
  NoteBlockCut();
  return true;
}

void CpuCore::CheckWatch(uint64_t lin, unsigned size, uint8_t kind) {
  if (watch_stop) return;  // the first watched access of an instruction is the one reported
  for (const Watchpoint& w : watchpoints) {
    // Overlap of [lin, lin + size) and [w.linear, w.linear + w.length), free of overflow at
    // the top of the address space.
    const bool overlap = lin >= w.linear ? lin - w.linear < w.length : w.linear - lin < size;
    if (!(w.kinds & kind) || !overlap) continue;
    watch_stop = true;
    watch_hit.icount = icount;
    watch_hit.rip = s.rip;
    watch_hit.address = std::max(lin, w.linear);
    watch_hit.kind = kind;
    watch_hit.watch = w;
    return;
  }
}

bool CpuCore::ReadLin(uint64_t lin, unsigned size, uint64_t* v, Access acc) {
  const bool user = s.cpl == 3 && !sys_access;
  if (!long64() && !(s.efer & (1u << 10))) lin &= 0xffffffffu;
  const unsigned off = lin & 0xfff;
  TlbEntry* e;
  if (off + size <= 4096) {
    if (!Translate(lin, acc, user, &e)) return false;
    if (e->host) {
      *v = LoadN(e->host + off, size);
      return true;
    }
    if (!watch_pages.empty() && acc != kExec) CheckWatch(lin, size, kWatchRead);
    return ReadPhys(e->ppage + off, size, v);
  }
  // Split across two pages: both translations before any access.
  const unsigned first = 4096 - off;
  TlbEntry* e2;
  if (!Translate(lin, acc, user, &e)) return false;
  const uint64_t p1 = e->ppage + off;
  if (!Translate(lin + first, acc, user, &e2)) return false;
  const uint64_t p2 = e2->ppage;
  if (!watch_pages.empty() && acc != kExec) CheckWatch(lin, size, kWatchRead);
  uint64_t lo, hi;
  if (!ReadPhys(p1, first, &lo) || !ReadPhys(p2, size - first, &hi)) return false;
  *v = lo | (hi << (8 * first));
  return true;
}

bool CpuCore::WriteLin(uint64_t lin, unsigned size, uint64_t v) {
  const bool user = s.cpl == 3 && !sys_access;
  if (!long64() && !(s.efer & (1u << 10))) lin &= 0xffffffffu;
  const unsigned off = lin & 0xfff;
  TlbEntry* e;
  if (off + size <= 4096) {
    if (!Translate(lin, kWrite, user, &e)) return false;
    if (e->host) {
      StoreN(e->host + off, size, v);
      mem.NoteWrite(e->ppage + off, size);
      return true;
    }
    if (!watch_pages.empty()) CheckWatch(lin, size, kWatchWrite);
    return WritePhys(e->ppage + off, size, v);
  }
  const unsigned first = 4096 - off;
  TlbEntry* e2;
  if (!Translate(lin, kWrite, user, &e)) return false;
  const uint64_t p1 = e->ppage + off;
  if (!Translate(lin + first, kWrite, user, &e2)) return false;
  const uint64_t p2 = e2->ppage;
  if (!watch_pages.empty()) CheckWatch(lin, size, kWatchWrite);
  return WritePhys(p1, first, v) && WritePhys(p2, size - first, v >> (8 * first));
}

bool CpuCore::ReadSys(uint64_t lin, unsigned size, uint64_t* v) {
  sys_access = true;
  bool ok = ReadLin(lin, size, v, kRead);
  sys_access = false;
  return ok;
}

bool CpuCore::WriteSys(uint64_t lin, unsigned size, uint64_t v) {
  sys_access = true;
  bool ok = WriteLin(lin, size, v);
  sys_access = false;
  return ok;
}

bool CpuCore::ProbeWrite(uint8_t seg, uint64_t off, unsigned size) {
  uint64_t lin;
  if (!Linear(seg, off, size, kWrite, &lin)) return false;
  const bool user = s.cpl == 3;
  TlbEntry* e;
  if (!long64() && !(s.efer & (1u << 10))) lin &= 0xffffffffu;
  if (!Translate(lin, kWrite, user, &e)) return false;
  if (((lin & 0xfff) + size) > 4096 && !Translate(lin + size - 1, kWrite, user, &e)) return false;
  return true;
}

bool CpuCore::Read(const Op& op, const Operand& o, uint64_t* v) {
  switch (o.kind) {
    case kOpReg:
      *v = GetReg(o.reg, o.size, o.high8);
      return true;
    case kOpImm:
      *v = o.disp;
      return true;
    case kOpMem:
      return ReadSeg(o.seg, EffectiveAddress(op, o), o.size, v);
    case kOpSreg:
      *v = s.seg[o.reg].selector;
      return true;
    default:
      *v = 0;
      return true;
  }
}

bool CpuCore::Write(const Op& op, const Operand& o, uint64_t v) {
  switch (o.kind) {
    case kOpReg:
      SetReg(o.reg, o.size, v, o.high8);
      return true;
    case kOpMem:
      return WriteSeg(o.seg, EffectiveAddress(op, o), o.size, v);
    default:
      return true;
  }
}

bool CpuCore::Push(uint64_t v, unsigned size) {
  const unsigned ss = stack_size();
  const uint64_t sp = (s.gpr[kRsp] - size) & AddrMask(ss);
  if (!WriteSeg(kSs, sp, size, v)) return false;
  SetReg(kRsp, ss, sp);
  return true;
}

bool CpuCore::Pop(uint64_t* v, unsigned size) {
  const unsigned ss = stack_size();
  const uint64_t sp = s.gpr[kRsp] & AddrMask(ss);
  if (!ReadSeg(kSs, sp, size, v)) return false;
  SetReg(kRsp, ss, sp + size);
  return true;
}

bool CpuCore::PopPeek(uint64_t* v, unsigned size, uint64_t at_offset) {
  const unsigned ss = stack_size();
  const uint64_t sp = (s.gpr[kRsp] + at_offset) & AddrMask(ss);
  return ReadSeg(kSs, sp, size, v);
}

}  // namespace vmrr
