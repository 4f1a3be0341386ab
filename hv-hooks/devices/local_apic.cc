// LocalApic and IoApic: register models and delivery between them (after the Intel SDM vol. 3
// ch. 11 and the 82093AA I/O APIC datasheet).
#include "hv-hooks/devices/local_apic.h"

#include <algorithm>
#include <iterator>

namespace vmrr {

namespace {
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kSvrEnable = 1u << 8;
constexpr uint64_t kApicBaseEnable = 1u << 11;
constexpr uint32_t kEsrIllegalVector = 1u << 6;
// Writable bits of each LVT entry (cmci, timer, thermal, perf, lint0, lint1, error).
constexpr uint32_t kLvtWritable[7] = {0x000107ff, 0x000710ff, 0x000107ff, 0x000107ff,
                                      0x0001a7ff, 0x0001a7ff, 0x000100ff};
}  // namespace

LocalApic::LocalApic(const VirtualClock& clock) : clock_(clock) {
  for (uint32_t& l : s_.lvt) l = kLvtMasked;
}

int LocalApic::Highest(const uint32_t bits[8]) {
  for (int i = 7; i >= 0; --i) {
    if (bits[i]) return i * 32 + 31 - __builtin_clz(bits[i]);
  }
  return -1;
}

uint8_t LocalApic::Ppr() const {
  int isrv = Highest(s_.isr);
  uint8_t isr_class = isrv < 0 ? 0 : static_cast<uint8_t>(isrv & 0xf0);
  return (s_.tpr & 0xf0) >= isr_class ? s_.tpr : isr_class;
}

bool LocalApic::Enabled() const {
  return (s_.apic_base & kApicBaseEnable) && (s_.svr & kSvrEnable);
}

bool LocalApic::AcceptsExtInt() const {
  uint32_t l = s_.lvt[kLvtLint0];
  return (s_.apic_base & kApicBaseEnable) && !(l & kLvtMasked) && ((l >> 8) & 7) == 7;
}

bool LocalApic::HasDeliverable() const {
  if (!(s_.apic_base & kApicBaseEnable)) return false;
  int v = Highest(s_.irr);
  return v >= 0 && (v & 0xf0) > (Ppr() & 0xf0);
}

uint8_t LocalApic::Acknowledge() {
  if (!HasDeliverable()) return static_cast<uint8_t>(s_.svr & 0xff);
  int v = Highest(s_.irr);
  s_.irr[v / 32] &= ~(1u << (v % 32));
  s_.isr[v / 32] |= 1u << (v % 32);
  Changed();
  return static_cast<uint8_t>(v);
}

void LocalApic::AcceptInterrupt(uint8_t vector, bool level) {
  if (!(s_.apic_base & kApicBaseEnable)) return;
  if (vector < 16) {
    s_.esr_pending |= kEsrIllegalVector;
    return;
  }
  // A software-disabled APIC holds what it has but accepts no new fixed interrupts.
  if (!(s_.svr & kSvrEnable)) return;
  s_.irr[vector / 32] |= 1u << (vector % 32);
  if (level) {
    s_.tmr[vector / 32] |= 1u << (vector % 32);
  } else {
    s_.tmr[vector / 32] &= ~(1u << (vector % 32));
  }
  Changed();
}

void LocalApic::Changed() {
  if (listener_) listener_->InterruptStateChanged();
}

void LocalApic::Eoi() {
  int v = Highest(s_.isr);
  if (v < 0) return;
  s_.isr[v / 32] &= ~(1u << (v % 32));
  bool level = s_.tmr[v / 32] & (1u << (v % 32));
  if (level && ioapic_) ioapic_->EndOfInterrupt(static_cast<uint8_t>(v));
  Changed();
}

unsigned LocalApic::DivideShift() const {
  unsigned v = (s_.divide_config & 3) | ((s_.divide_config & 8) >> 1);
  return (v + 1) & 7;  // 0b111 -> divide by 1
}

void LocalApic::StartTimer() {
  s_.timer_start_ns = clock_.NowNs();
  if (TimerMode() == 2 || s_.initial_count == 0) {
    s_.timer_expiry_ns = kNoDeadline;
    return;
  }
  unsigned __int128 end =
      static_cast<unsigned __int128>(s_.initial_count) << DivideShift();
  end += s_.timer_start_ns;
  s_.timer_expiry_ns = end >= kNoDeadline ? kNoDeadline : static_cast<uint64_t>(end);
}

uint32_t LocalApic::CurrentCount() const {
  if (TimerMode() == 2 || s_.timer_expiry_ns == kNoDeadline) return 0;
  uint64_t now = clock_.NowNs();
  if (now >= s_.timer_expiry_ns) return 0;
  return static_cast<uint32_t>((s_.timer_expiry_ns - now + (uint64_t{1} << DivideShift()) - 1) >>
                               DivideShift());
}

void LocalApic::FireTimer() {
  uint32_t lvt = s_.lvt[kLvtTimer];
  if (!(lvt & kLvtMasked)) AcceptInterrupt(static_cast<uint8_t>(lvt & 0xff), false);
}

uint64_t LocalApic::NextDeadlineNs() const {
  if (TimerMode() == 2) return s_.tsc_deadline ? s_.tsc_deadline : kNoDeadline;
  return s_.timer_expiry_ns;
}

void LocalApic::RunTimers() {
  uint64_t now = clock_.NowNs();
  if (TimerMode() == 2) {
    if (s_.tsc_deadline && now >= s_.tsc_deadline) {
      s_.tsc_deadline = 0;
      FireTimer();
    }
    return;
  }
  if (s_.timer_expiry_ns == kNoDeadline || now < s_.timer_expiry_ns) return;
  FireTimer();
  if (TimerMode() == 1) {
    uint64_t period = static_cast<uint64_t>(s_.initial_count) << DivideShift();
    // Periods that passed while the run loop was elsewhere collapse into the one interrupt
    // just raised (the IRR bit can hold only one).
    uint64_t missed = (now - s_.timer_expiry_ns) / period;
    s_.timer_start_ns = s_.timer_expiry_ns + missed * period;
    s_.timer_expiry_ns = s_.timer_start_ns + period;
  } else {
    s_.timer_expiry_ns = kNoDeadline;
  }
}

void LocalApic::set_apic_base_msr(uint64_t value) {
  // Relocation is not supported: the base stays at 0xfee00000; BSP and enable are kept.
  s_.apic_base = 0xfee00000 | (value & (kApicBaseEnable | (1u << 8)));
  Changed();
}

void LocalApic::set_tsc_deadline(uint64_t tsc) {
  if (TimerMode() != 2) return;  // writes outside TSC-deadline mode are ignored
  s_.tsc_deadline = tsc;
}

void LocalApic::set_tpr(uint8_t tpr) {
  s_.tpr = tpr;
  Changed();
}

uint32_t LocalApic::ReadRegister(unsigned reg) const {
  switch (reg) {
    case 0x02: return s_.id << 24;
    case 0x03: return 0x00050014;  // version 0x14, max LVT entry 5 (+CMCI reads as reserved)
    case 0x08: return s_.tpr;
    case 0x09: return 0;  // APR: arbitration priority is meaningless with one CPU
    case 0x0a: return Ppr();
    case 0x0b: return 0;  // EOI is write-only
    case 0x0d: return s_.ldr;
    case 0x0e: return s_.dfr;
    case 0x0f: return s_.svr;
    case 0x28: return s_.esr;
    case 0x2f: return s_.lvt[kLvtCmci];
    case 0x30: return s_.icr_lo;
    case 0x31: return s_.icr_hi;
    case 0x32: return s_.lvt[kLvtTimer];
    case 0x33: return s_.lvt[kLvtThermal];
    case 0x34: return s_.lvt[kLvtPerf];
    case 0x35: return s_.lvt[kLvtLint0];
    case 0x36: return s_.lvt[kLvtLint1];
    case 0x37: return s_.lvt[kLvtError];
    case 0x38: return s_.initial_count;
    case 0x39: return CurrentCount();
    case 0x3e: return s_.divide_config;
  }
  if (reg >= 0x10 && reg < 0x18) return s_.isr[reg - 0x10];
  if (reg >= 0x18 && reg < 0x20) return s_.tmr[reg - 0x18];
  if (reg >= 0x20 && reg < 0x28) return s_.irr[reg - 0x20];
  return 0;
}

void LocalApic::WriteRegister(unsigned reg, uint32_t v) {
  auto write_lvt = [&](int i) {
    uint32_t value = v & kLvtWritable[i];
    if (!(s_.svr & kSvrEnable)) value |= kLvtMasked;  // a disabled APIC keeps LVTs masked
    s_.lvt[i] = value;
  };
  switch (reg) {
    case 0x02: s_.id = v >> 24; break;
    case 0x08: set_tpr(static_cast<uint8_t>(v)); break;
    case 0x0b: Eoi(); break;
    case 0x0d: s_.ldr = v & 0xff000000; break;
    case 0x0e: s_.dfr = v | 0x0fffffff; break;
    case 0x0f:
      s_.svr = v & 0x13ff;
      if (!(v & kSvrEnable)) {
        for (uint32_t& l : s_.lvt) l |= kLvtMasked;
      }
      Changed();
      break;
    case 0x28:  // a write transfers the errors detected since the last one
      s_.esr = s_.esr_pending;
      s_.esr_pending = 0;
      break;
    case 0x2f: write_lvt(kLvtCmci); break;
    case 0x30: {
      s_.icr_lo = v & 0x000ccfff;  // delivery status (bit 12) always reads idle
      unsigned mode = (v >> 8) & 7, shorthand = (v >> 18) & 3;
      bool to_self = shorthand == 1 || shorthand == 2 ||
                     (shorthand == 0 && !(v & (1u << 11)) && (s_.icr_hi >> 24) == s_.id) ||
                     (shorthand == 0 && (s_.icr_hi >> 24) == 0xff);
      // Only fixed-mode IPIs to this CPU mean anything on a uniprocessor machine.
      if (mode == 0 && to_self) AcceptInterrupt(static_cast<uint8_t>(v & 0xff), false);
      break;
    }
    case 0x31: s_.icr_hi = v & 0xff000000; break;
    case 0x32: {
      unsigned old_mode = TimerMode();
      write_lvt(kLvtTimer);
      if (TimerMode() == 3) s_.lvt[kLvtTimer] &= ~(1u << 18);  // reserved mode: treat as 1
      if (TimerMode() != old_mode) {
        // Switching modes disarms the timer (SDM 11.5.4.1).
        s_.timer_expiry_ns = kNoDeadline;
        s_.tsc_deadline = 0;
        s_.initial_count = 0;
      }
      break;
    }
    case 0x33: write_lvt(kLvtThermal); break;
    case 0x34: write_lvt(kLvtPerf); break;
    case 0x35: write_lvt(kLvtLint0); Changed(); break;
    case 0x36: write_lvt(kLvtLint1); break;
    case 0x37: write_lvt(kLvtError); break;
    case 0x38:
      if (TimerMode() == 2) break;
      s_.initial_count = v;
      StartTimer();
      break;
    case 0x3e: {
      // Keep the current count continuous across a divider change by restarting from it.
      uint32_t current = CurrentCount();
      s_.divide_config = v & 0xb;
      if (s_.timer_expiry_ns != kNoDeadline && current) {
        uint64_t now = clock_.NowNs();
        s_.timer_expiry_ns = now + (static_cast<uint64_t>(current) << DivideShift());
        s_.timer_start_ns = now;
      }
      break;
    }
    default: break;  // read-only or reserved
  }
}

uint64_t LocalApic::Read(uint64_t offset, unsigned size) {
  if (size != 4 || (offset & 0xf)) return 0;  // only aligned dword accesses are defined
  return ReadRegister(static_cast<unsigned>(offset >> 4));
}

void LocalApic::Write(uint64_t offset, unsigned size, uint64_t value) {
  if (size != 4 || (offset & 0xf)) return;
  WriteRegister(static_cast<unsigned>(offset >> 4), static_cast<uint32_t>(value));
}

void LocalApic::SaveState(StateWriter& out) const {
  out.Begin("LAPC", 1);
  out.U64(s_.apic_base);
  out.U32(s_.id);
  out.U8(s_.tpr);
  out.U32(s_.ldr);
  out.U32(s_.dfr);
  out.U32(s_.svr);
  for (uint32_t v : s_.isr) out.U32(v);
  for (uint32_t v : s_.tmr) out.U32(v);
  for (uint32_t v : s_.irr) out.U32(v);
  out.U32(s_.esr);
  out.U32(s_.esr_pending);
  out.U32(s_.icr_lo);
  out.U32(s_.icr_hi);
  for (uint32_t v : s_.lvt) out.U32(v);
  out.U32(s_.initial_count);
  out.U32(s_.divide_config);
  out.U64(s_.timer_start_ns);
  out.U64(s_.timer_expiry_ns);
  out.U64(s_.tsc_deadline);
}

void LocalApic::LoadState(StateReader& in) {
  in.Begin("LAPC", 1);
  State s;
  s.apic_base = in.U64();
  if ((s.apic_base & ~(kApicBaseEnable | (1u << 8))) != 0xfee00000) in.Fail("APIC base moved");
  s.id = static_cast<uint32_t>(in.Bounded(in.U32(), 0xff, "APIC ID"));
  s.tpr = in.U8();
  s.ldr = in.U32();
  s.dfr = in.U32();
  s.svr = static_cast<uint32_t>(in.Bounded(in.U32(), 0x13ff, "APIC SVR"));
  for (uint32_t& v : s.isr) v = in.U32();
  for (uint32_t& v : s.tmr) v = in.U32();
  for (uint32_t& v : s.irr) v = in.U32();
  s.esr = in.U32();
  s.esr_pending = in.U32();
  s.icr_lo = in.U32();
  s.icr_hi = in.U32();
  for (int i = 0; i < kLvtCount; ++i) {
    s.lvt[i] = in.U32();
    if (s.lvt[i] & ~kLvtWritable[i]) in.Fail("APIC LVT entry has reserved bits set");
  }
  s.initial_count = in.U32();
  s.divide_config = static_cast<uint32_t>(in.Bounded(in.U32(), 0xb, "APIC divide config"));
  s.timer_start_ns = in.U64();
  s.timer_expiry_ns = in.U64();
  s.tsc_deadline = in.U64();
  s_ = s;
  Changed();
}

// ---- I/O APIC ---------------------------------------------------------------------------

namespace {
constexpr uint64_t kRedirMasked = 1u << 16;
constexpr uint64_t kRedirLevel = 1u << 15;
constexpr uint64_t kRedirRemoteIrr = 1u << 14;
constexpr uint64_t kRedirDeliveryStatus = 1u << 12;
// Writable: vector, delivery mode, destination mode, polarity, trigger, mask, destination.
constexpr uint64_t kRedirWritable = 0xff00000000000000ull | 0x1afff;
}  // namespace

IoApic::IoApic(LocalApic& lapic) : lapic_(lapic) {
  for (uint64_t& r : redir_) r = kRedirMasked;
}

void IoApic::Service() {
  for (unsigned pin = 0; pin < kPins; ++pin) {
    uint32_t bit = 1u << pin;
    if (!(irr_ & bit)) continue;
    uint64_t& r = redir_[pin];
    if (r & kRedirMasked) continue;
    bool level = r & kRedirLevel;
    if (level && (r & kRedirRemoteIrr)) continue;  // waiting for the EOI
    // Single CPU: fixed and lowest-priority messages all reach the one local APIC, whatever
    // the destination field says. NMI/SMI/INIT/ExtINT delivery modes are not modelled.
    unsigned mode = (r >> 8) & 7;
    if (mode == 0 || mode == 1) lapic_.AcceptInterrupt(static_cast<uint8_t>(r & 0xff), level);
    if (level) {
      r |= kRedirRemoteIrr;
    } else {
      irr_ &= ~bit;  // an edge is consumed by its delivery
    }
  }
}

void IoApic::SetIrq(unsigned pin, bool asserted) {
  if (pin >= kPins) return;
  uint32_t bit = 1u << pin;
  bool was = level_ & bit;
  if (asserted) level_ |= bit; else level_ &= ~bit;
  if (redir_[pin] & kRedirLevel) {
    if (asserted) irr_ |= bit; else irr_ &= ~bit;
  } else if (asserted && !was) {
    irr_ |= bit;
  }
  Service();
}

void IoApic::EndOfInterrupt(uint8_t vector) {
  for (unsigned pin = 0; pin < kPins; ++pin) {
    uint64_t& r = redir_[pin];
    if ((r & 0xff) == vector && (r & kRedirLevel) && (r & kRedirRemoteIrr)) {
      r &= ~kRedirRemoteIrr;
    }
  }
  Service();
}

uint64_t IoApic::Read(uint64_t offset, unsigned size) {
  if (size != 4) return AllOnes(size);
  if (offset == 0x00) return select_;
  if (offset != 0x10) return 0;
  uint32_t reg = select_;
  if (reg == 0) return id_ << 24;
  if (reg == 1) return ((kPins - 1) << 16) | 0x11;  // 24 entries, version 0x11
  if (reg == 2) return id_ << 24;                   // arbitration ID
  if (reg >= 0x10 && reg < 0x10 + 2 * kPins) {
    unsigned pin = (reg - 0x10) / 2;
    uint64_t r = redir_[pin] & ~kRedirDeliveryStatus;
    return (reg & 1) ? static_cast<uint32_t>(r >> 32) : static_cast<uint32_t>(r);
  }
  return 0;
}

void IoApic::Write(uint64_t offset, unsigned size, uint64_t value) {
  if (size != 4) return;
  uint32_t v = static_cast<uint32_t>(value);
  if (offset == 0x00) {
    select_ = v & 0xff;
    return;
  }
  if (offset != 0x10) return;
  uint32_t reg = select_;
  if (reg == 0) {
    id_ = (v >> 24) & 0x0f;
  } else if (reg >= 0x10 && reg < 0x10 + 2 * kPins) {
    unsigned pin = (reg - 0x10) / 2;
    uint64_t& r = redir_[pin];
    uint64_t ro = r & (kRedirRemoteIrr | kRedirDeliveryStatus);
    uint64_t nv = (reg & 1) ? ((r & 0xffffffffull) | (static_cast<uint64_t>(v) << 32))
                            : ((r & 0xffffffff00000000ull) | v);
    r = (nv & kRedirWritable) | ro;
    if (!(r & kRedirLevel)) r &= ~kRedirRemoteIrr;
    // Re-evaluate: a line asserted while masked is delivered on unmask.
    if ((r & kRedirLevel) && (level_ & (1u << pin))) irr_ |= 1u << pin;
    Service();
  }
}

void IoApic::SaveState(StateWriter& out) const {
  out.Begin("IOAP", 1);
  out.U32(select_);
  out.U32(id_);
  out.U32(irr_);
  out.U32(level_);
  for (uint64_t r : redir_) out.U64(r);
}

void IoApic::LoadState(StateReader& in) {
  in.Begin("IOAP", 1);
  uint32_t select = static_cast<uint32_t>(in.Bounded(in.U32(), 0xff, "IOAPIC select"));
  uint32_t id = static_cast<uint32_t>(in.Bounded(in.U32(), 0x0f, "IOAPIC id"));
  uint32_t irr = in.U32();
  uint32_t level = in.U32();
  if ((irr | level) >> kPins) in.Fail("IOAPIC pin bits beyond pin 23");
  uint64_t redir[kPins];
  for (uint64_t& r : redir) {
    r = in.U64();
    if (r & ~(kRedirWritable | kRedirRemoteIrr)) in.Fail("IOAPIC entry has reserved bits set");
  }
  select_ = select;
  id_ = id;
  irr_ = irr;
  level_ = level;
  std::copy(std::begin(redir), std::end(redir), redir_);
}

}  // namespace vmrr
