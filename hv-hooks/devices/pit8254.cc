// Pit8254: counter arithmetic from elapsed guest time, register access state machines,
// IRQ0 edges (after the Intel 8254 datasheet).
#include "hv-hooks/devices/pit8254.h"

#include <algorithm>

namespace vmrr {

namespace {
enum : uint8_t { kLsb = 1, kMsb = 2, kWord0 = 3, kWord1 = 4 };

uint16_t ToBcd(uint32_t v) {
  v %= 10000;
  return static_cast<uint16_t>((v % 10) | ((v / 10 % 10) << 4) | ((v / 100 % 10) << 8) |
                               ((v / 1000 % 10) << 12));
}
uint32_t FromBcd(uint16_t v) {
  uint32_t r = 0;
  for (int shift = 12; shift >= 0; shift -= 4) r = r * 10 + std::min<uint32_t>((v >> shift) & 15, 9);
  return r;
}
uint8_t EffectiveMode(uint8_t m) { return m >= 6 ? m - 4 : m; }
}  // namespace

Pit8254::Pit8254(const VirtualClock& clock, IrqLine irq0) : clock_(clock), irq0_(irq0) {
  counters_[2].gate = 0;  // port 0x61 bit 0 is clear at reset
  // OUT is undefined at power-on (datasheet); taking it as high means that programming
  // counter 0 in mode 2 or 3 (which drives OUT high) gives no IRQ0 edge before the first
  // period ends, which is what guests expect of a PIT a BIOS left in mode 3.
  counters_[0].out_seen = 1;
}

uint64_t Pit8254::Ticks(const Counter& c) const {
  uint64_t now = clock_.NowNs();
  if (!c.gate || now <= c.resume_ns) return c.paused_ticks;
  return c.paused_ticks + static_cast<uint64_t>(static_cast<unsigned __int128>(now - c.resume_ns) *
                                                kFrequencyHz / 1000000000u);
}

uint64_t Pit8254::TickToNs(const Counter& c, uint64_t tick) const {
  if (!c.gate) return kNoDeadline;
  uint64_t rel = tick > c.paused_ticks ? tick - c.paused_ticks : 0;
  // First guest ns at which Ticks() reaches tick: ceil(rel * 1e9 / f) after resume.
  unsigned __int128 ns = (static_cast<unsigned __int128>(rel) * 1000000000u + kFrequencyHz - 1) /
                         kFrequencyHz;
  unsigned __int128 t = ns + c.resume_ns;
  return t >= kNoDeadline ? kNoDeadline : static_cast<uint64_t>(t);
}

bool Pit8254::OutAt(const Counter& c, uint64_t d) const {
  if (!c.counting) return EffectiveMode(c.mode) != 0;
  uint64_t n = c.count;
  uint8_t m = EffectiveMode(c.mode);
  if (!c.gate && (m == 2 || m == 3)) return true;  // GATE low forces OUT high in modes 2 and 3
  switch (m) {
    case 0: return d >= n;        // interrupt on terminal count: low until it reaches 0
    case 1: return d >= n;        // one-shot (gate never triggers on a PC: stays high)
    case 2: return d % n != n - 1;  // rate generator: low for the last tick of each period
    case 3: return d % n < (n + 1) / 2;  // square wave: high for the first (larger) half
    case 4:
    case 5: return d != n;        // strobe: low for one tick at terminal count
  }
  return true;
}

bool Pit8254::Out(unsigned counter) const {
  const Counter& c = counters_[counter % 3];
  return OutAt(c, Ticks(c));
}

uint16_t Pit8254::CurrentCount(const Counter& c) const {
  uint64_t d = Ticks(c);
  uint64_t n = c.count;
  uint64_t v;
  switch (EffectiveMode(c.mode)) {
    case 2: v = n - d % n; break;
    case 3: v = n - (2 * d) % n; break;  // counts down by two each tick
    default: v = (n - d) & 0xffff; break;  // one-shot modes wrap and keep counting
  }
  if (!c.counting) v = n;
  return c.bcd ? ToBcd(static_cast<uint32_t>(v)) : static_cast<uint16_t>(v);
}

void Pit8254::LoadCount(int n, uint32_t value) {
  Counter& c = counters_[n];
  uint32_t v = c.bcd ? FromBcd(static_cast<uint16_t>(value)) : value & 0xffff;
  if (v == 0) v = c.bcd ? 10000 : 0x10000;
  c.count = v;
  c.resume_ns = clock_.NowNs();
  c.paused_ticks = 0;
  c.loaded = 1;
  // Modes 1 and 5 wait for a rising GATE edge; the others start on the next clock.
  uint8_t m = EffectiveMode(c.mode);
  c.counting = (m == 1 || m == 5) ? 0 : 1;
  c.status &= ~0x40;  // null count clears once the count is in the counting element
  c.period_seen = 0;
  if (n == 0) RunTimers();
}

void Pit8254::Latch(int n) {
  Counter& c = counters_[n];
  if (c.count_latched) return;  // a latch holds until read; later latches are ignored
  c.latched = CurrentCount(c);
  c.count_latched = c.rw_mode;
}

void Pit8254::Control(uint8_t v) {
  unsigned sel = v >> 6;
  if (sel == 3) {  // read-back command
    for (int n = 0; n < 3; ++n) {
      if (!(v & (2u << n))) continue;
      if (!(v & 0x20)) Latch(n);
      Counter& c = counters_[n];
      if (!(v & 0x10) && !c.status_latched) {
        c.status = static_cast<uint8_t>((Out(n) ? 0x80 : 0) | (c.status & 0x40) |
                                        (c.rw_mode << 4) | (c.mode << 1) | c.bcd);
        c.status_latched = 1;
      }
    }
    return;
  }
  Counter& c = counters_[sel];
  unsigned access = (v >> 4) & 3;
  if (access == 0) {
    Latch(static_cast<int>(sel));
    return;
  }
  c.rw_mode = static_cast<uint8_t>(access);
  c.read_state = c.write_state = static_cast<uint8_t>(access);
  c.mode = (v >> 1) & 7;
  c.bcd = v & 1;
  c.counting = 0;  // writing a control word stops the counter until a count is written
  c.loaded = 0;
  c.count_latched = 0;
  c.status = 0x40;  // null count
  if (sel == 0) RunTimers();
}

uint64_t Pit8254::Read(uint64_t offset, unsigned size) {
  if (size != 1 || offset == 3) return AllOnes(size);  // the control word is write-only
  Counter& c = counters_[offset];
  if (c.status_latched) {
    c.status_latched = 0;
    return c.status;
  }
  if (c.count_latched) {
    switch (c.count_latched) {
      case kLsb: c.count_latched = 0; return c.latched & 0xff;
      case kMsb: c.count_latched = 0; return c.latched >> 8;
      default: c.count_latched = kMsb; return c.latched & 0xff;
    }
  }
  uint16_t count = CurrentCount(c);
  switch (c.read_state) {
    case kLsb: return count & 0xff;
    case kMsb: return count >> 8;
    case kWord0: c.read_state = kWord1; return count & 0xff;
    case kWord1: c.read_state = kWord0; return count >> 8;
  }
  return 0xff;
}

void Pit8254::Write(uint64_t offset, unsigned size, uint64_t value) {
  if (size != 1) return;
  uint8_t v = static_cast<uint8_t>(value);
  if (offset == 3) {
    Control(v);
    return;
  }
  Counter& c = counters_[offset];
  int n = static_cast<int>(offset);
  switch (c.write_state) {
    case kLsb: LoadCount(n, v); break;
    case kMsb: LoadCount(n, static_cast<uint32_t>(v) << 8); break;
    case kWord0:
      c.write_latch = v;
      c.write_state = kWord1;
      // Mode 0: writing the first byte stops the count (OUT goes low) until the second.
      if (EffectiveMode(c.mode) == 0) {
        c.counting = 0;
        if (n == 0) RunTimers();
      }
      break;
    case kWord1:
      c.write_state = kWord0;
      LoadCount(n, c.write_latch | (static_cast<uint32_t>(v) << 8));
      break;
    default: break;  // no access mode programmed yet
  }
}

void Pit8254::SetGate(unsigned n, bool level) {
  if (n > 2) return;
  Counter& c = counters_[n];
  if ((c.gate != 0) == level) return;
  uint8_t m = EffectiveMode(c.mode);
  if (!level) {
    c.paused_ticks = Ticks(c);  // modes 0/4 resume from here; 2/3 reload on the next edge
    c.gate = 0;
  } else {
    c.gate = 1;
    c.resume_ns = clock_.NowNs();
    if (m != 0 && m != 4) {
      // A rising edge (re)triggers modes 1 and 5 and reloads modes 2 and 3.
      c.paused_ticks = 0;
      c.period_seen = 0;
      if (c.loaded) c.counting = 1;
    }
  }
  if (n == 0) RunTimers();
}

uint64_t Pit8254::Port61::Read(uint64_t, unsigned size) {
  if (size != 1) return AllOnes(size);
  // The DRAM refresh request toggles every 15.085 us; BIOS delay loops count its edges.
  uint64_t refresh = (pit_->clock_.NowNs() / 15085) & 1;
  return pit_->counters_[2].gate | (pit_->speaker_enable_ << 1) | (refresh << 4) |
         (pit_->Out(2) ? 0x20 : 0);
}

void Pit8254::Port61::Write(uint64_t, unsigned size, uint64_t value) {
  if (size != 1) return;
  pit_->speaker_enable_ = (value >> 1) & 1;
  pit_->SetGate(2, value & 1);
}

uint64_t Pit8254::NextDeadlineNs() const {
  const Counter& c = counters_[0];
  if (!c.counting) return kNoDeadline;
  uint64_t d = Ticks(c);
  uint64_t n = c.count;
  switch (EffectiveMode(c.mode)) {
    case 0:
    case 1:
      return d >= n ? kNoDeadline : TickToNs(c, n);
    case 4:
    case 5:
      if (d > n) return kNoDeadline;
      return TickToNs(c, d < n ? n : n + 1);
    case 2:
      // Rising edge at the start of each period (after the low tick).
      return TickToNs(c, (d / n + 1) * n);
    case 3: {
      uint64_t base = d / n * n;
      uint64_t half = (n + 1) / 2;
      return TickToNs(c, d - base < half ? base + half : base + n);
    }
  }
  return kNoDeadline;
}

void Pit8254::RunTimers() {
  Counter& c = counters_[0];
  uint64_t d = Ticks(c);
  bool out = OutAt(c, d);
  uint8_t m = EffectiveMode(c.mode);
  if (c.counting && (m == 2 || m == 3)) {
    uint64_t periods = d / c.count;
    if (periods > c.period_seen) {
      // A period boundary passed: OUT went low and high again at least once. The PIC latches
      // one edge however many passed (the run loop stops at each, so normally exactly one).
      c.period_seen = periods;
      irq0_.Set(false);
      c.out_seen = 0;
    }
  }
  if (out != (c.out_seen != 0)) {
    c.out_seen = out;
    irq0_.Set(out);
  }
}

void Pit8254::SaveState(StateWriter& out) const {
  out.Begin("PIT0", 1);
  for (const Counter& c : counters_) {
    out.U32(c.count);
    out.U64(c.resume_ns);
    out.U64(c.paused_ticks);
    out.U8(c.gate);
    out.U8(c.loaded);
    out.U16(c.latched);
    for (uint8_t b : {c.count_latched, c.status_latched, c.status, c.read_state, c.write_state,
                      c.write_latch, c.rw_mode, c.mode, c.bcd, c.counting, c.out_seen}) {
      out.U8(b);
    }
    out.U64(c.period_seen);
  }
  out.U8(speaker_enable_);
}

void Pit8254::LoadState(StateReader& in) {
  in.Begin("PIT0", 1);
  Counter cs[3];
  for (Counter& c : cs) {
    c.count = in.U32();
    if (c.count == 0 || c.count > 0x10000) in.Fail("PIT count out of range");
    c.resume_ns = in.U64();
    c.paused_ticks = in.U64();
    c.gate = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIT gate"));
    c.loaded = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIT loaded"));
    c.latched = in.U16();
    c.count_latched = static_cast<uint8_t>(in.Bounded(in.U8(), kWord0, "PIT count latch"));
    c.status_latched = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIT status latch"));
    c.status = in.U8();
    c.read_state = static_cast<uint8_t>(in.Bounded(in.U8(), kWord1, "PIT read state"));
    c.write_state = static_cast<uint8_t>(in.Bounded(in.U8(), kWord1, "PIT write state"));
    c.write_latch = in.U8();
    c.rw_mode = static_cast<uint8_t>(in.Bounded(in.U8(), 3, "PIT access mode"));
    c.mode = static_cast<uint8_t>(in.Bounded(in.U8(), 7, "PIT mode"));
    c.bcd = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIT BCD"));
    c.counting = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIT counting"));
    c.out_seen = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "PIT out"));
    c.period_seen = in.U64();
  }
  uint8_t speaker = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "speaker enable"));
  if (!cs[0].gate || !cs[1].gate) in.Fail("PIT counters 0 and 1 have GATE wired high");
  for (int i = 0; i < 3; ++i) counters_[i] = cs[i];
  speaker_enable_ = speaker;
}

}  // namespace vmrr
