// The Cpu facade, the run loop (blocks, exact icount, events, breakpoints), the decoded-block
// cache with its invalidation on code writes, and save/load of the CPU state.
#include "hv-hooks/cpu/cpu.h"

#include <Zydis/Zydis.h>

#include <algorithm>
#include <cassert>

#include "hv-hooks/cpu/core.h"

namespace vmrr {


const char* StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kTargetReached: return "target reached";
    case StopReason::kHalted: return "halted";
    case StopReason::kShutdown: return "shutdown";
    case StopReason::kBreakpoint: return "breakpoint";
    case StopReason::kExitRequested: return "exit requested";
    case StopReason::kWatchpoint: return "watchpoint";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------
// CpuCore lifecycle

CpuCore::CpuCore(CpuPlatform& p) : platform(p), mem(p.memory()) {
  auto* d = new ZydisDecoder[7];
  static const ZydisMachineMode kModes[7] = {
      ZYDIS_MACHINE_MODE_REAL_16,        ZYDIS_MACHINE_MODE_LEGACY_16,
      ZYDIS_MACHINE_MODE_LEGACY_32,      ZYDIS_MACHINE_MODE_LONG_COMPAT_16,
      ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_MACHINE_MODE_LONG_64,
      ZYDIS_MACHINE_MODE_REAL_16};
  static const ZydisStackWidth kStack[7] = {
      ZYDIS_STACK_WIDTH_16, ZYDIS_STACK_WIDTH_16, ZYDIS_STACK_WIDTH_32, ZYDIS_STACK_WIDTH_16,
      ZYDIS_STACK_WIDTH_32, ZYDIS_STACK_WIDTH_64, ZYDIS_STACK_WIDTH_16};
  for (int i = 0; i < 7; ++i) {
    ZyanStatus st = ZydisDecoderInit(&d[i], kModes[i], kStack[i]);
    assert(ZYAN_SUCCESS(st));
    (void)st;
  }
  decoders = d;
  mem.SetCodeWriteObserver(this);
  Reset();
}

CpuCore::~CpuCore() {
  mem.SetCodeWriteObserver(nullptr);
  delete[] static_cast<ZydisDecoder*>(decoders);
}

void CpuCore::Reset() {
  s = CpuState{};
  s.rflags = 2;
  s.cr0 = 0x60000010;
  s.gpr[kRdx] = 0x600;  // family/model/stepping signature in EDX at reset
  for (int i = 0; i < 6; ++i) {
    s.seg[i] = Segment{0, 0x93, 0xffff, 0};
  }
  s.seg[kCs] = Segment{0xf000, 0x9b, 0xffff, 0xffff0000};
  s.rip = 0xfff0;
  s.gdtr = {0, 0xffff};
  s.idtr = {0, 0x3ff};
  s.ldtr = Segment{0, 0x82, 0xffff, 0};
  s.tr = Segment{0, 0x8b, 0xffff, 0};
  s.dr[6] = 0xffff0ff0;
  s.dr[7] = 0x400;
  s.pat = 0x0007040600070406ull;
  s.apic_base = 0xfee00900;
  s.xcr0 = 1;
  // x87 after RESET (SDM Vol. 3 Table 9-1): FCW 0040H, FSW 0, FTW 5555H (every register
  // valid, holding +0.0), pointers and opcode 0; MXCSR 1F80H, XMM registers 0.
  s.fcw = 0x0040;
  s.ftw = 0xff;
  icount = 0;
  intr = false;
  nmi_pending = false;
  exit_requested = false;
  async_exit.store(false);
  watch_stop = false;
  last_delivery_icount = ~uint64_t{0};
  deliveries_without_retire = 0;
  UpdateMode();
  FlushTlb(true);
  FlushBlocks();
}

void CpuCore::UpdateMode() {
  fetch_vpage = ~uint64_t{0};
  const uint16_t cs = s.seg[kCs].attr;
  if (!(s.cr0 & 1)) {
    mode = kModeReal;
  } else if (s.efer & (1u << 10)) {  // LMA
    mode = (cs & kSegAttrL) ? kModeLong64 : (cs & kSegAttrDb) ? kModeCompat32 : kModeCompat16;
  } else if (s.rflags & kFlagVm) {
    mode = kModeV86;
  } else {
    mode = (cs & kSegAttrDb) ? kModeProt32 : kModeProt16;
  }
  ip_mask = mode == kModeLong64 ? ~uint64_t{0}
            : (mode == kModeProt32 || mode == kModeCompat32) ? 0xffffffffu
                                                              : 0xffffu;
}

void CpuCore::FlushTlb(bool include_global) {
  (void)include_global;  // global pages are flushed too: correct, only slower
  for (auto& e : tlb) e = TlbEntry{};
  fetch_vpage = ~uint64_t{0};
}

void CpuCore::FlushBlocks() {
  for (auto& [key, b] : blocks) {
    retired_blocks.push_back(std::move(b));
  }
  blocks.clear();
  for (auto& [page, keys] : page_blocks) {
    if (page < mem.pages()) mem.UnmarkCode(page);
  }
  page_blocks.clear();
  std::fill(std::begin(jump_cache), std::end(jump_cache), JumpCacheEntry{});
  std::fill(std::begin(smc_pressure), std::end(smc_pressure), uint8_t{0});
  if (current_block) end_block = true;
  if (!current_block) retired_blocks.clear();
}

void CpuCore::OnCodeWrite(uint64_t gpa, uint64_t len) {
  // Only the blocks whose bytes the write overlaps are stale (a block never leaves its page
  // and depends on nothing but its bytes and the mode); the others on the page stay, so
  // code storing next to itself (data or stack on a code page) keeps its decoded blocks.
  const uint64_t end = gpa + (len ? len : 1);
  uint64_t first = gpa >> kGuestPageShift;
  uint64_t last = (end - 1) >> kGuestPageShift;
  for (uint64_t p = first; p <= last; ++p) {
    auto it = page_blocks.find(p);
    if (it == page_blocks.end()) continue;
    std::vector<uint64_t>& keys = it->second;
    size_t kept = 0;
    bool invalidated = false;
    for (uint64_t key : keys) {
      auto bit = blocks.find(key);
      if (bit == blocks.end()) continue;
      Block* b = bit->second.get();
      if (b->phys >= end || b->phys + b->bytes <= gpa) {
        keys[kept++] = key;
        continue;
      }
      if (JumpCacheEntry& slot = jump_cache[JumpCacheIndex(b->phys)]; slot.block == b) slot = JumpCacheEntry{};
      if (b == current_block) end_block = true;  // the next instruction is re-decoded
      retired_blocks.push_back(std::move(bit->second));
      blocks.erase(bit);
      ++stat_invalidations;
      invalidated = true;
    }
    keys.resize(kept);
    if (kept == 0) {
      page_blocks.erase(it);
      if (p < mem.pages()) mem.UnmarkCode(p);
    }
    uint8_t& pressure = smc_pressure[p % kSmcSlots];
    if (invalidated) pressure = static_cast<uint8_t>(std::min(pressure + 2, 6));
  }
  if (!current_block) retired_blocks.clear();
}

Block* CpuCore::LookupBlockSlow(uint64_t phys, JumpCacheEntry& slot) {
  const uint64_t key = BlockKey(phys, mode);
  auto it = blocks.find(key);
  if (it == blocks.end()) return nullptr;
  slot = JumpCacheEntry{key, it->second.get()};
  return slot.block;
}

// ---------------------------------------------------------------------------------------
// Run loop

bool CpuCore::CheckEvents() {
  if (icount < s.interrupt_shadow_until) return false;
  if (nmi_pending && !s.nmi_blocked) {
    nmi_pending = false;
    s.halted = false;
    s.nmi_blocked = true;
    Deliver(2, false, 0, false, s.rip, true);
    return true;
  }
  if (intr && (s.rflags & kFlagIf)) {
    s.halted = false;
    uint8_t vector = platform.AckInterrupt();
    Deliver(vector, false, 0, false, s.rip, true);
    return true;
  }
  return false;
}

namespace {

// Runs up to n ops of a block from base_rip; returns whether the last one run retired.
// Every way an instruction stops the block but a watched access (a fault, HLT, a branch, an
// event) sets end_block, so the common case tests two flags per instruction. RIP and
// next_rip are stored before each op that may read them or fault (not before a rip_free one)
// and RIP once after the last op; the ops of a block are consecutive, so each op's RIP
// follows from the block's and its offset.
template <bool kExact>
inline bool RunOps(CpuCore& c, const Op* ops, uint64_t n, uint64_t base_rip, uint64_t ip_mask) {
  for (uint64_t i = 0; i < n; ++i) {
    const Op& op = ops[i];
    if (!op.rip_free) {
      const uint64_t rip = (base_rip + op.offset) & ip_mask;
      c.s.rip = rip;
      c.next_rip = (rip + op.len) & ip_mask;
    }
    if (kExact && op.exact) op.exact(c, op);
    else op.fn(c, op);
    if (__builtin_expect(c.end_block | c.watch_stop, 0)) {
      if (c.fault) {
        if (i > 0) c.deliveries_without_retire = 0;
        return false;
      }
      c.s.rip = op.rip_free ? (base_rip + op.offset + op.len) & ip_mask : c.next_rip;
      ++c.icount;
      c.deliveries_without_retire = 0;
      return true;
    }
    ++c.icount;
  }
  if (n == 0) return false;
  const Op& last = ops[n - 1];
  c.s.rip = last.rip_free ? (base_rip + last.offset + last.len) & ip_mask : c.next_rip;
  c.deliveries_without_retire = 0;
  return true;
}

}  // namespace

RunResult CpuCore::Run(uint64_t target_icount) {
  target = target_icount;
  exit_requested = false;
  host_mxcsr_default = HostMxcsrIsDefault();
  bool first = true;
  Op single;  // an instruction decoded outside the block cache (MMIO, page-straddling)
  for (;;) {
    // The rare cases behind one test per block.
    if (__builtin_expect(s.shutdown | s.halted | exit_requested | watch_stop | intr | nmi_pending |
                             async_exit.load(std::memory_order_relaxed),
                         0)) {
      if (s.shutdown) return {StopReason::kShutdown, icount};
      if (icount >= target) return {StopReason::kTargetReached, icount};
      // An asynchronous stop is taken before any pending event is delivered, so that it stops
      // the CPU exactly where Run(target = this icount) would: never between an interrupt's
      // delivery and its handler's first instruction.
      if (intr | nmi_pending | async_exit.load(std::memory_order_relaxed)) {
        if (async_exit.exchange(false, std::memory_order_relaxed)) return {StopReason::kExitRequested, icount};
        // A delivered event moves RIP to its handler: that is a new position, whose breakpoint
        // counts even at the start of a Run (only the instruction Run started at is skipped).
        if (CheckEvents()) first = false;
      }
      if (s.shutdown | s.halted | exit_requested | watch_stop) {
        if (watch_stop) {  // an event delivery, or a faulting instruction, touched a watched range
          watch_stop = false;
          return {StopReason::kWatchpoint, icount};
        }
        if (s.shutdown) return {StopReason::kShutdown, icount};
        if (s.halted) return {StopReason::kHalted, icount};
        return {StopReason::kExitRequested, icount};
      }
    } else if (icount >= target) {
      return {StopReason::kTargetReached, icount};
    }

    if (!breakpoints.empty() && !first && BpPageMaybe(s.seg[kCs].base + s.rip) &&
        breakpoints.count(s.seg[kCs].base + s.rip)) {
      return {StopReason::kBreakpoint, icount};
    }
    first = false;

    uint64_t lin;
    TlbEntry* te = nullptr;
    uint64_t phys;
    Block* b;
    bool in_ram;
    if (mode == kModeLong64 && (s.rip >> 12) == fetch_vpage && s.cpl == fetch_cpl) {
      // Same code page as the last block: the translation is still in the TLB.
      phys = fetch_ppage | (s.rip & 0xfff);
      in_ram = true;
      b = LookupBlock(phys);
    } else {
      if (!Linear(kCs, s.rip, 1, kExec, &lin) ||
          !Translate(lin, kExec, s.cpl == 3, &te)) {
        DeliverPendingFault();
        continue;
      }
      phys = te->ppage | (lin & 0xfff);
      // A watched page's entry has no host pointer but is still RAM: its code is cached.
      in_ram = te->host != nullptr || mem.Span(te->ppage, kGuestPageSize) != nullptr;
      b = in_ram ? LookupBlock(phys) : nullptr;
      if (in_ram && mode == kModeLong64) {
        fetch_vpage = s.rip >> 12;
        fetch_ppage = te->ppage;
        fetch_cpl = s.cpl;
      }
    }
    const Op* ops;
    uint64_t nops;
    if (b) {
      ops = b->ops();
      nops = b->nops;
    } else if (in_ram && (decode_remaining = target - icount, b = DecodeBlock(phys)) != nullptr) {
      ops = b->ops();
      nops = b->nops;
    } else {
      // Executing from MMIO or across a page boundary: decode one instruction uncached.
      if (!DecodeAt(s.rip, &single)) {
        DeliverPendingFault();
        continue;
      }
      ops = &single;
      nops = 1;
    }

    uint64_t n = std::min<uint64_t>(nops, target - icount);
    if (icount < s.interrupt_shadow_until) n = std::min<uint64_t>(n, s.interrupt_shadow_until - icount);
    const bool tf = (s.rflags & kFlagTf) != 0;
    if (tf) n = 1;
    if (__builtin_expect(!breakpoints.empty(), 0) && n > 1) n = OpsBeforeBreakpoint(ops, n, ip_mask);

    current_block = b;
    const uint64_t base_rip = s.rip;
    end_block = false;
    // A block stopped inside (a target, a breakpoint, single-step) runs its ops' exact
    // handlers: DeadFlagPass elided flags only where the whole block runs.
    const bool retired_last = n < nops && b && b->flags_elided
                                  ? RunOps<true>(*this, ops, n, base_rip, ip_mask)
                                  : RunOps<false>(*this, ops, n, base_rip, ip_mask);
    current_block = nullptr;
    retired_blocks.clear();
    // The rare outcomes, behind one test.
    if (__builtin_expect(fault | halted_now | tf | watch_stop | exit_requested, 0)) {
      if (fault) {
        DeliverPendingFault();
        continue;
      }
      if (halted_now) {
        halted_now = false;
        s.halted = true;
      }
      if (tf && retired_last) {
        s.dr[6] |= 0x4000;
        Deliver(1, false, 0, false, s.rip, true);
      }
      if (watch_stop) {
        watch_stop = false;
        return {StopReason::kWatchpoint, icount};
      }
      if (exit_requested) return {StopReason::kExitRequested, icount};
    }
  }
}

// How many of the first n ops of the block at s.rip run before one whose linear RIP is a
// breakpoint (op 0 is never counted: the loop top checked it, or it is the first instruction
// of this Run). One ordered-set lookup per block, so that breakpoints cost nothing in blocks
// that hold none.
uint64_t CpuCore::OpsBeforeBreakpoint(const Op* ops, uint64_t n, uint64_t ip_mask) const {
  const uint64_t base = s.seg[kCs].base;
  const uint64_t last_ip = (s.rip + ops[n - 1].offset) & ip_mask;  // offsets ascend
  // A block spans at most two pages; neither holding a breakpoint is the common case.
  if (!BpPageMaybe(base + s.rip) && !BpPageMaybe(base + last_ip)) return n;
  if (last_ip >= s.rip) {  // the usual case: no IP wrap inside the block
    auto it = breakpoints.upper_bound(base + s.rip);
    if (it == breakpoints.end() || *it > base + last_ip) return n;
  }
  for (uint64_t i = 1; i < n; ++i)
    if (breakpoints.count(base + ((s.rip + ops[i].offset) & ip_mask))) return i;
  return n;
}

// ---------------------------------------------------------------------------------------
// Cpu facade

Cpu::Cpu(CpuPlatform& platform) : core_(std::make_unique<CpuCore>(platform)) {}
Cpu::~Cpu() = default;
void Cpu::Reset() { core_->Reset(); }
const CpuState& Cpu::state() const { return core_->s; }
void Cpu::SetState(const CpuState& state) {
  core_->s = state;
  core_->UpdateMode();
  core_->FlushTlb(true);
  core_->FlushBlocks();
}
RunResult Cpu::Run(uint64_t target_icount) { return core_->Run(target_icount); }
uint64_t Cpu::icount() const { return core_->icount; }
void Cpu::set_icount(uint64_t icount) { core_->icount = icount; }
void Cpu::SetIntrLine(bool high) {
  core_->intr = high;
  if (high) core_->end_block = true;  // a callback raised it: look at it after this insn
}
bool Cpu::intr_line() const { return core_->intr; }
void Cpu::InjectNmi() {
  core_->nmi_pending = true;
  core_->end_block = true;
}
bool Cpu::InterruptsAccepted() const {
  return (core_->s.rflags & kFlagIf) && core_->icount >= core_->s.interrupt_shadow_until;
}
void Cpu::RequestExit() {
  core_->exit_requested = true;
  core_->end_block = true;
}
void Cpu::RequestExitAsync() { core_->async_exit.store(true, std::memory_order_relaxed); }
void Cpu::AddBreakpoint(uint64_t linear_rip) {
  core_->breakpoints.insert(linear_rip);
  core_->RebuildBpPages();
}
void Cpu::RemoveBreakpoint(uint64_t linear_rip) {
  core_->breakpoints.erase(linear_rip);
  core_->RebuildBpPages();
}
void Cpu::ClearBreakpoints() {
  core_->breakpoints.clear();
  core_->RebuildBpPages();
}
void Cpu::SetWatchpoints(std::vector<Watchpoint> watchpoints) {
  CpuCore& c = *core_;
  c.watch_pages.clear();
  for (const Watchpoint& w : watchpoints) {
    if (w.length == 0) continue;
    const uint64_t first = w.linear >> 12;
    const uint64_t last_byte = w.length - 1 > ~uint64_t{0} - w.linear ? ~uint64_t{0} : w.linear + w.length - 1;
    c.watch_pages.emplace_back(first, last_byte >> 12);
  }
  std::erase_if(watchpoints, [](const Watchpoint& w) { return w.length == 0; });
  c.watchpoints = std::move(watchpoints);
  // Re-derive every TLB entry's host pointer; the translations themselves stay as they are.
  for (TlbEntry& e : c.tlb)
    if (e.vpage != kNoTlbPage) e.host = c.TlbHost(e.vpage, e.ppage);
}
const std::vector<Watchpoint>& Cpu::watchpoints() const { return core_->watchpoints; }
const WatchHit& Cpu::last_watch_hit() const { return core_->watch_hit; }
uint64_t Cpu::last_delivery_icount() const { return core_->last_delivery_icount; }
bool Cpu::TranslateLinear(uint64_t linear, uint64_t* gpa) const {
  return core_->WalkNoSideEffects(linear, gpa);
}
uint64_t Cpu::blocks_decoded() const { return core_->stat_blocks_decoded; }
uint64_t Cpu::block_invalidations() const { return core_->stat_invalidations; }
uint64_t Cpu::ops_flags_elided() const { return core_->stat_flags_elided; }
const char* Cpu::ModelName() { return "vmrr deterministic x86-64 CPU v1"; }

// ---------------------------------------------------------------------------------------
// Save/load

namespace {
// 2: deliveries_without_retire. 3: the TLB and the fetch-page cache (translations the guest
// can observe when it edits page tables without INVLPG). 4: the x87/MMX/SSE state.
constexpr uint32_t kCpuStateVersion = 4;

void PutSeg(StateWriter& w, const Segment& g) {
  w.U16(g.selector);
  w.U16(g.attr);
  w.U32(g.limit);
  w.U64(g.base);
}
Segment GetSeg(StateReader& r) {
  Segment g;
  g.selector = r.U16();
  g.attr = r.U16();
  g.limit = r.U32();
  g.base = r.U64();
  return g;
}
}  // namespace

void Cpu::SaveState(StateWriter& w) const {
  // Saving changes nothing. The TLB is saved with the registers: a guest that edits its page
  // tables without INVLPG goes on seeing the cached translations, and a CPU restored from
  // these bytes must see exactly the same ones.
  const CpuState& s = core_->s;
  w.Begin("CPU0", kCpuStateVersion);
  for (uint64_t r : s.gpr) w.U64(r);
  w.U64(s.rip);
  w.U64(s.rflags);
  for (const Segment& g : s.seg) PutSeg(w, g);
  PutSeg(w, s.ldtr);
  PutSeg(w, s.tr);
  w.U64(s.gdtr.base);
  w.U16(s.gdtr.limit);
  w.U64(s.idtr.base);
  w.U16(s.idtr.limit);
  for (uint64_t v : {s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.xcr0}) w.U64(v);
  for (uint64_t v : s.dr) w.U64(v);
  for (uint64_t v : {s.efer, s.star, s.lstar, s.cstar, s.sfmask, s.kernel_gs_base,
                     s.sysenter_cs, s.sysenter_esp, s.sysenter_eip, s.tsc_offset, s.tsc_aux,
                     s.apic_base, s.pat, s.misc_enable, s.mtrr_def_type}) {
    w.U64(v);
  }
  for (const X87Reg& x : s.st) {
    w.U64(x.mant);
    w.U16(x.sign_exp);
  }
  w.U16(s.fcw);
  w.U16(s.fsw);
  w.U8(s.ftw);
  w.U16(s.fop);
  w.U64(s.fip);
  w.U64(s.fdp);
  w.U16(s.fcs);
  w.U16(s.fds);
  for (const auto& x : s.xmm) {
    w.U64(x[0]);
    w.U64(x[1]);
  }
  w.U32(s.mxcsr);
  w.U8(s.cpl);
  w.Bool(s.halted);
  w.Bool(s.shutdown);
  w.U64(s.interrupt_shadow_until);
  w.Bool(s.nmi_blocked);
  w.U64(core_->icount);
  w.Bool(core_->intr);
  w.Bool(core_->nmi_pending);
  w.U32(core_->deliveries_without_retire);
  // Valid TLB entries in index order (the host pointer is derived from the page on load).
  const CpuCore& c = *core_;
  uint32_t valid = 0;
  for (const TlbEntry& e : c.tlb) valid += e.vpage != kNoTlbPage;
  w.U32(valid);
  for (unsigned i = 0; i < kTlbSize; ++i) {
    const TlbEntry& e = c.tlb[i];
    if (e.vpage == kNoTlbPage) continue;
    w.U16(static_cast<uint16_t>(i));
    w.U64(e.vpage);
    w.U64(e.ppage);
    w.U8(e.rights);
  }
  w.U64(c.fetch_vpage);
  w.U64(c.fetch_ppage);
  w.U8(c.fetch_cpl);
}

void Cpu::LoadState(StateReader& r) {
  // Version 2 lacks the TLB, so it cannot say what a guest that edited its page tables
  // without INVLPG would see next; version 3 lacks the x87/SSE registers. Both are refused
  // rather than guessed.
  const uint32_t version = r.Begin("CPU0", kCpuStateVersion);
  if (version < 3)
    r.Fail("CPU0: state version older than 3 (no saved TLB) cannot be restored");
  if (version < kCpuStateVersion)
    r.Fail("CPU0: state version 3 (no x87/SSE registers) cannot be restored by this build");
  CpuState s;
  for (uint64_t& v : s.gpr) v = r.U64();
  s.rip = r.U64();
  s.rflags = r.U64();
  for (Segment& g : s.seg) g = GetSeg(r);
  s.ldtr = GetSeg(r);
  s.tr = GetSeg(r);
  s.gdtr.base = r.U64();
  s.gdtr.limit = r.U16();
  s.idtr.base = r.U64();
  s.idtr.limit = r.U16();
  for (uint64_t* v : {&s.cr0, &s.cr2, &s.cr3, &s.cr4, &s.cr8, &s.xcr0}) *v = r.U64();
  for (uint64_t& v : s.dr) v = r.U64();
  for (uint64_t* v : {&s.efer, &s.star, &s.lstar, &s.cstar, &s.sfmask, &s.kernel_gs_base,
                      &s.sysenter_cs, &s.sysenter_esp, &s.sysenter_eip, &s.tsc_offset,
                      &s.tsc_aux, &s.apic_base, &s.pat, &s.misc_enable, &s.mtrr_def_type}) {
    *v = r.U64();
  }
  for (X87Reg& x : s.st) {
    x.mant = r.U64();
    x.sign_exp = r.U16();
  }
  s.fcw = r.U16();
  s.fsw = r.U16();
  s.ftw = r.U8();
  s.fop = r.U16();
  s.fip = r.U64();
  s.fdp = r.U64();
  s.fcs = r.U16();
  s.fds = r.U16();
  for (auto& x : s.xmm) {
    x[0] = r.U64();
    x[1] = r.U64();
  }
  s.mxcsr = r.U32();
  s.cpl = static_cast<uint8_t>(r.Bounded(r.U8(), 3, "cpl"));
  s.halted = r.Bool();
  s.shutdown = r.Bool();
  s.interrupt_shadow_until = r.U64();
  s.nmi_blocked = r.Bool();
  uint64_t icount = r.U64();
  bool intr = r.Bool();
  bool nmi = r.Bool();
  const uint32_t stalled = r.U32();
  if (stalled > CpuCore::kMaxDeliveriesWithoutRetire) r.Fail("CPU0: delivery count out of range");
  CpuCore& c = *core_;
  // The TLB is read into a side table: nothing changes until every check has passed.
  std::vector<std::pair<uint16_t, TlbEntry>> tlb;
  const uint64_t valid = r.Bounded(r.U32(), kTlbSize, "CPU0: TLB entry count");
  tlb.reserve(valid);
  for (uint64_t k = 0; k < valid; ++k) {
    const uint16_t index = r.U16();
    TlbEntry e;
    e.vpage = r.U64();
    e.ppage = r.U64();
    e.rights = r.U8();
    if (index >= kTlbSize || (k && index <= tlb.back().first)) r.Fail("CPU0: TLB indices not increasing");
    if (e.vpage == kNoTlbPage || e.vpage >> 52 || TlbIndex(e.vpage) != index)
      r.Fail("CPU0: TLB entry in the wrong slot");
    if ((e.ppage & 0xfff) || e.ppage >> 52) r.Fail("CPU0: TLB physical page not page-aligned");
    if (e.rights & ~kRightsAll) r.Fail("CPU0: TLB rights");
    tlb.emplace_back(index, e);
  }
  const uint64_t fetch_vpage = r.U64();
  const uint64_t fetch_ppage = r.U64();
  const uint8_t fetch_cpl = static_cast<uint8_t>(r.Bounded(r.U8(), 3, "CPU0: fetch CPL"));
  if (fetch_vpage != kNoTlbPage && (fetch_vpage >> 52 || (fetch_ppage & 0xfff) || !c.mem.Span(fetch_ppage, kGuestPageSize)))
    r.Fail("CPU0: fetch page outside guest RAM");
  // Consistency rules the CPU relies on; anything else is not a state this CPU produced.
  if (!(s.rflags & 2) || (s.rflags & ~uint64_t{0x3f7fd7})) r.Fail("CPU0: invalid rflags");
  if ((s.cr0 & 0x80000000u) && !(s.cr0 & 1)) r.Fail("CPU0: CR0.PG without CR0.PE");
  if (s.cr0 >> 32 || s.cr4 >> 32) r.Fail("CPU0: reserved CR0/CR4 bits");
  if ((s.efer & (1u << 10)) && !(s.cr0 & 0x80000000u)) r.Fail("CPU0: EFER.LMA without paging");
  if (s.efer & ~uint64_t{0xd01}) r.Fail("CPU0: reserved EFER bits");
  if (s.rip >> 32 && !((s.efer & (1u << 10)) && (s.seg[kCs].attr & kSegAttrL))) {
    r.Fail("CPU0: RIP above 4 GiB outside 64-bit mode");
  }
  // FXRSTOR/LDMXCSR/XSETBV refuse these values, so no run of this CPU produces them.
  if (s.mxcsr & ~kMxcsrMask) r.Fail("CPU0: reserved MXCSR bits");
  if (s.fop >> 11) r.Fail("CPU0: x87 opcode wider than 11 bits");
  if (!(s.xcr0 & 1) || (s.xcr0 & ~kXcr0Supported)) r.Fail("CPU0: invalid XCR0");
  if (s.interrupt_shadow_until > icount + 2) r.Fail("CPU0: interrupt shadow too far ahead");
  c.s = s;
  c.icount = icount;
  c.intr = intr;
  c.nmi_pending = nmi;
  c.watch_stop = false;
  c.last_delivery_icount = ~uint64_t{0};
  c.deliveries_without_retire = stalled;
  c.UpdateMode();
  c.FlushTlb(true);
  for (auto& [index, e] : tlb) {
    e.host = c.TlbHost(e.vpage, e.ppage);
    c.tlb[index] = e;
  }
  c.fetch_vpage = fetch_vpage;
  c.fetch_ppage = fetch_ppage;
  c.fetch_cpl = fetch_cpl;
  c.async_exit.store(false);  // a stop asked of the state just replaced
  c.FlushBlocks();
}

std::vector<uint8_t> Cpu::SaveBytes() const {
  StateWriter w;
  SaveState(w);
  return w.Take();
}

void Cpu::LoadBytes(std::span<const uint8_t> bytes) {
  // Parse and validate fully before anything changes: trailing bytes are an error too.
  std::vector<uint8_t> before = SaveBytes();
  StateReader r(bytes);
  LoadState(r);
  try {
    r.ExpectEnd();
  } catch (...) {
    StateReader back(before);
    LoadState(back);
    throw;
  }
}

}  // namespace vmrr
