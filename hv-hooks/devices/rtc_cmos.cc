// RtcCmos: civil-time conversion, register encoding, flag computation (after the Motorola
// MC146818A datasheet).
#include "hv-hooks/devices/rtc_cmos.h"

#include <algorithm>
#include <iterator>

namespace vmrr {

namespace {
enum : uint8_t {
  kSeconds = 0x00, kSecondsAlarm = 0x01, kMinutes = 0x02, kMinutesAlarm = 0x03, kHours = 0x04,
  kHoursAlarm = 0x05, kWeekday = 0x06, kDay = 0x07, kMonth = 0x08, kYear = 0x09, kRegA = 0x0a,
  kRegB = 0x0b, kRegC = 0x0c, kRegD = 0x0d, kCentury = 0x32,
};
enum : uint8_t { kBSet = 0x80, kBPie = 0x40, kBAie = 0x20, kBUie = 0x10, kBBinary = 0x04,
                 kB24h = 0x02 };
enum : uint8_t { kCIrqf = 0x80, kCPf = 0x40, kCAf = 0x20, kCUf = 0x10 };
constexpr int64_t kNsPerSecond = 1000000000;
constexpr int64_t kUipWindowNs = 244000;  // UIP is set 244 us before each update

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
}  // namespace

RtcCmos::RtcCmos(const VirtualClock& clock, IrqLine irq8) : clock_(clock), irq_(irq8) {
  cmos_[kRegA] = 0x26;  // 32.768 kHz time base, 1024 Hz periodic rate
  cmos_[kRegB] = kB24h;
  cmos_[kRegD] = 0x80;  // valid RAM and time
}

// Days-from-civil and civil-from-days (H. Hinnant's algorithms, proleptic Gregorian).
RtcCmos::Fields RtcCmos::FieldsFromSeconds(int64_t seconds) {
  int64_t days = FloorDiv(seconds, 86400);
  int64_t rem = seconds - days * 86400;
  Fields f;
  f.hour = static_cast<unsigned>(rem / 3600);
  f.minute = static_cast<unsigned>(rem / 60 % 60);
  f.second = static_cast<unsigned>(rem % 60);
  f.weekday = static_cast<unsigned>(((days % 7) + 7 + 4) % 7) + 1;  // 1970-01-01: Thursday
  int64_t z = days + 719468;
  int64_t era = FloorDiv(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  f.day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  f.month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  f.year = yoe + era * 400 + (f.month <= 2 ? 1 : 0);
  return f;
}

int64_t RtcCmos::SecondsFromFields(const Fields& f) {
  int64_t y = f.year - (f.month <= 2 ? 1 : 0);
  int64_t era = FloorDiv(y, 400);
  int64_t yoe = y - era * 400;
  int64_t m = f.month;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + f.day - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  return days * 86400 + f.hour * 3600 + f.minute * 60 + f.second;
}

int64_t RtcCmos::NsIntoSecond() const {
  int64_t w = PhasedWallNs();
  return w - FloorDiv(w, kNsPerSecond) * kNsPerSecond;
}

int64_t RtcCmos::CurrentSeconds() const {
  if (cmos_[kRegB] & kBSet) return frozen_seconds_;
  return FloorDiv(PhasedWallNs(), kNsPerSecond) + offset_s_;
}

uint8_t RtcCmos::Encode(unsigned v) const {
  if (cmos_[kRegB] & kBBinary) return static_cast<uint8_t>(v);
  return static_cast<uint8_t>(((v / 10 % 10) << 4) | (v % 10));
}

unsigned RtcCmos::Decode(uint8_t v) const {
  if (cmos_[kRegB] & kBBinary) return v;
  return ((v >> 4) & 0x0f) * 10 + (v & 0x0f);
}

uint8_t RtcCmos::ReadTimeRegister(unsigned index) const {
  Fields f = FieldsFromSeconds(CurrentSeconds());
  switch (index) {
    case kSeconds: return Encode(f.second);
    case kMinutes: return Encode(f.minute);
    case kHours:
      if (cmos_[kRegB] & kB24h) return Encode(f.hour);
      // 12-hour: 12, 1..11 with bit 7 set for PM.
      return static_cast<uint8_t>(Encode(f.hour % 12 == 0 ? 12 : f.hour % 12) |
                                  (f.hour >= 12 ? 0x80 : 0));
    case kWeekday: return Encode(f.weekday);
    case kDay: return Encode(f.day);
    case kMonth: return Encode(f.month);
    case kYear: return Encode(static_cast<unsigned>(((f.year % 100) + 100) % 100));
    case kCentury: return Encode(static_cast<unsigned>(f.year / 100 % 100));
  }
  return 0;
}

void RtcCmos::WriteTimeRegister(unsigned index, uint8_t value) {
  int64_t now_s = CurrentSeconds();
  Fields f = FieldsFromSeconds(now_s);
  switch (index) {
    case kSeconds: f.second = Decode(value) % 60; break;
    case kMinutes: f.minute = Decode(value) % 60; break;
    case kHours:
      if (cmos_[kRegB] & kB24h) {
        f.hour = Decode(value) % 24;
      } else {
        unsigned h = Decode(value & 0x7f) % 12;  // 12 AM = 0, 12 PM = 12
        f.hour = h + ((value & 0x80) ? 12 : 0);
      }
      break;
    case kWeekday: return;  // derived from the date here, not an independent counter
    case kDay: f.day = Decode(value); break;
    case kMonth: f.month = Decode(value); break;
    case kYear: f.year = f.year / 100 * 100 + Decode(value) % 100; break;
    case kCentury: f.year = Decode(value) % 100 * 100 + f.year % 100; break;
  }
  if (f.month < 1 || f.month > 12) f.month = 1;
  if (f.day < 1 || f.day > 31) f.day = 1;
  int64_t new_s = SecondsFromFields(f);
  if (cmos_[kRegB] & kBSet) {
    frozen_seconds_ = new_s;
  } else {
    offset_s_ += new_s - now_s;
  }
}

uint64_t RtcCmos::PeriodNs() const {
  unsigned rs = cmos_[kRegA] & 0x0f;
  if (rs == 0) return 0;
  if (rs <= 2) rs += 7;  // rates 1 and 2 duplicate 8 and 9 on a 32.768 kHz base
  // 32768 Hz >> (rs - 1): period = 2^(rs-1) / 32768 s.
  return (uint64_t{1} << (rs - 1)) * 1000000000ull / 32768;
}

void RtcCmos::CatchUp() {
  uint64_t now = clock_.NowNs();
  if (now <= checked_ns_) return;
  int64_t wall_now = PhasedWallNs();
  int64_t wall_before = wall_now - static_cast<int64_t>(now - checked_ns_);
  bool divider_on = (cmos_[kRegA] & 0x70) == 0x20;
  uint64_t period = PeriodNs();
  if (period && divider_on && now / period != checked_ns_ / period) cmos_[kRegC] |= kCPf;
  if (!(cmos_[kRegB] & kBSet) && divider_on &&
      FloorDiv(wall_now, kNsPerSecond) != FloorDiv(wall_before, kNsPerSecond)) {
    cmos_[kRegC] |= kCUf;
    // Alarm: each alarm byte matches its field or is a don't-care (0xc0-0xff).
    auto match = [&](uint8_t alarm, unsigned reg) {
      return (alarm & 0xc0) == 0xc0 || alarm == ReadTimeRegister(reg);
    };
    if (match(cmos_[kSecondsAlarm], kSeconds) && match(cmos_[kMinutesAlarm], kMinutes) &&
        match(cmos_[kHoursAlarm], kHours)) {
      cmos_[kRegC] |= kCAf;
    }
  }
  checked_ns_ = now;
  UpdateIrq();
}

void RtcCmos::UpdateIrq() {
  uint8_t c = cmos_[kRegC] & (kCPf | kCAf | kCUf);
  uint8_t enabled = cmos_[kRegB] & (kBPie | kBAie | kBUie);
  // Flag bits line up with their enable bits (PF/PIE 6, AF/AIE 5, UF/UIE 4).
  bool irq = (c & enabled) != 0;
  cmos_[kRegC] = static_cast<uint8_t>(c | (irq ? kCIrqf : 0));
  if (irq != (irq_level_ != 0)) {
    irq_level_ = irq;
    irq_.Set(irq);
  }
}

uint64_t RtcCmos::NextDeadlineNs() const {
  uint64_t now = clock_.NowNs();
  uint64_t best = kNoDeadline;
  if ((cmos_[kRegA] & 0x70) != 0x20) return best;
  uint64_t period = PeriodNs();
  if ((cmos_[kRegB] & kBPie) && period) best = (now / period + 1) * period;
  if (cmos_[kRegB] & (kBUie | kBAie)) {
    int64_t to_next = kNsPerSecond - NsIntoSecond();
    best = std::min(best, now + static_cast<uint64_t>(to_next));
  }
  return best;
}

void RtcCmos::RunTimers() { CatchUp(); }

void RtcCmos::SetCmosByte(uint8_t index, uint8_t value) {
  if (index >= 0x0e && index < 128 && index != kCentury) cmos_[index] = value;
}

uint64_t RtcCmos::Read(uint64_t offset, unsigned size) {
  if (size != 1) return AllOnes(size);
  if (offset == 0) return 0xff;  // the index register is write-only
  unsigned i = index_;
  switch (i) {
    case kSeconds: case kMinutes: case kHours: case kWeekday: case kDay: case kMonth:
    case kYear: case kCentury:
      return ReadTimeRegister(i);
    case kRegA: {
      uint8_t a = cmos_[kRegA] & 0x7f;
      int64_t into = NsIntoSecond();
      if (!(cmos_[kRegB] & kBSet) && (a & 0x70) == 0x20 && into >= kNsPerSecond - kUipWindowNs) {
        a |= 0x80;
      }
      return a;
    }
    case kRegC: {
      CatchUp();
      uint8_t c = cmos_[kRegC];
      cmos_[kRegC] = 0;  // reading C clears every flag and releases IRQ8
      UpdateIrq();
      return c;
    }
    case kRegD: return 0x80;
    default: return cmos_[i];
  }
}

void RtcCmos::Write(uint64_t offset, unsigned size, uint64_t value) {
  if (size != 1) return;
  uint8_t v = static_cast<uint8_t>(value);
  if (offset == 0) {
    index_ = v & 0x7f;  // bit 7 is the NMI mask, not part of the index
    return;
  }
  unsigned i = index_;
  switch (i) {
    case kSeconds: case kMinutes: case kHours: case kWeekday: case kDay: case kMonth:
    case kYear: case kCentury:
      WriteTimeRegister(i, v);
      break;
    case kRegA:
      CatchUp();
      cmos_[kRegA] = v & 0x7f;
      break;
    case kRegB: {
      CatchUp();
      bool was_set = cmos_[kRegB] & kBSet;
      bool set = v & kBSet;
      if (!was_set && set) frozen_seconds_ = CurrentSeconds();
      // SET also clears UIE (datasheet).
      cmos_[kRegB] = set ? static_cast<uint8_t>(v & ~kBUie) : v;
      if (was_set && !set) {
        // Leaving SET: the clock restarts from the written time at the start of a second.
        int64_t wall = clock_.WallClockNs();
        int64_t into = wall - FloorDiv(wall, kNsPerSecond) * kNsPerSecond;
        phase_ns_ = (kNsPerSecond - into) % kNsPerSecond;
        offset_s_ = frozen_seconds_ - FloorDiv(wall + phase_ns_, kNsPerSecond);
      }
      UpdateIrq();
      break;
    }
    case kRegC: case kRegD: break;  // read-only
    default: cmos_[i] = v; break;
  }
}

void RtcCmos::SaveState(StateWriter& out) const {
  out.Begin("RTC0", 1);
  for (uint8_t b : cmos_) out.U8(b);
  out.U8(index_);
  out.I64(offset_s_);
  out.I64(phase_ns_);
  out.I64(frozen_seconds_);
  out.U64(checked_ns_);
  out.U8(irq_level_);
}

void RtcCmos::LoadState(StateReader& in) {
  in.Begin("RTC0", 1);
  uint8_t cmos[128];
  for (uint8_t& b : cmos) b = in.U8();
  uint8_t index = static_cast<uint8_t>(in.Bounded(in.U8(), 127, "RTC index"));
  int64_t offset = in.I64();
  int64_t phase = in.I64();
  int64_t frozen = in.I64();
  // Years 0-9999 are within +-10^12 s of any wall time; beyond that arithmetic could overflow.
  constexpr int64_t kLimit = 1000000000000LL;
  if (offset > kLimit || offset < -kLimit || frozen > kLimit || frozen < -kLimit) {
    in.Fail("RTC time offset out of range");
  }
  if (phase < 0 || phase >= kNsPerSecond) in.Fail("RTC second phase out of range");
  uint64_t checked = in.U64();
  uint8_t level = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "RTC irq level"));
  std::copy(std::begin(cmos), std::end(cmos), cmos_);
  index_ = index;
  offset_s_ = offset;
  phase_ns_ = phase;
  frozen_seconds_ = frozen;
  checked_ns_ = checked;
  irq_level_ = level;
}

}  // namespace vmrr
