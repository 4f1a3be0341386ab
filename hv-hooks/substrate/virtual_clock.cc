// VirtualClock: piecewise-linear guest time, deadline conversion, save/load.
#include "hv-hooks/substrate/virtual_clock.h"

#include <algorithm>

namespace vmrr {

VirtualClock::VirtualClock(const IcountSource& icount, Mode mode, uint64_t sample_interval)
    : icount_(icount) {
  s_.mode = mode;
  s_.sample_interval = std::max<uint64_t>(sample_interval, 1);
  s_.epoch_ns = mode == Mode::kIcount ? kDefaultIcountEpochNs : 0;
  s_.anchor_icount = icount.icount();
}

void VirtualClock::Reset(int64_t epoch_ns) {
  s_.epoch_ns = epoch_ns;
  s_.anchor_icount = icount();
  s_.anchor_ns = 0;
  s_.last_sample_icount = s_.anchor_icount;
}

uint64_t VirtualClock::NowNs() const {
  uint64_t ic = icount();
  // An icount below the anchor happens only if the machine restored an older CPU state
  // without restoring the clock; clamp rather than go backwards.
  uint64_t delta = ic >= s_.anchor_icount ? ic - s_.anchor_icount : 0;
  uint64_t now = s_.anchor_ns + delta;
  return now < s_.anchor_ns ? ~uint64_t{0} : now;
}

uint64_t VirtualClock::IcountForDeadline(uint64_t deadline_ns) const {
  if (deadline_ns == kNoDeadline) return kNoDeadline;
  uint64_t now = NowNs();
  uint64_t ic = icount();
  if (deadline_ns <= now) return ic;
  uint64_t ahead = deadline_ns - now;
  return ic + ahead < ic ? kNoDeadline : ic + ahead;
}

int64_t VirtualClock::HostTimeForDeadline(uint64_t deadline_ns) const {
  if (deadline_ns >= static_cast<uint64_t>(INT64_MAX - s_.epoch_ns)) return INT64_MAX;
  return s_.epoch_ns + static_cast<int64_t>(deadline_ns);
}

void VirtualClock::MarkInputPoint() { s_.last_sample_icount = icount(); }

uint64_t VirtualClock::NextInputPointIcount() const {
  uint64_t next = s_.last_sample_icount + s_.sample_interval;
  return next < s_.last_sample_icount ? kNoDeadline : next;
}

void VirtualClock::MoveAnchorTo(uint64_t ns) {
  uint64_t now = NowNs();
  s_.anchor_icount = icount();
  s_.anchor_ns = std::max(now, ns);
}

void VirtualClock::Sample(int64_t host_ns) {
  if (s_.mode == Mode::kHost) {
    int64_t guest = host_ns - s_.epoch_ns;
    MoveAnchorTo(guest > 0 ? static_cast<uint64_t>(guest) : 0);
  }
  MarkInputPoint();
}

void VirtualClock::AdvanceIdleTo(uint64_t deadline_ns) {
  if (deadline_ns == kNoDeadline) return;
  MoveAnchorTo(deadline_ns);
}

void VirtualClock::SaveState(StateWriter& out) const {
  out.Begin("VCLK", 1);
  out.U8(static_cast<uint8_t>(s_.mode));
  out.U64(s_.sample_interval);
  out.I64(s_.epoch_ns);
  out.U64(s_.anchor_icount);
  out.U64(s_.anchor_ns);
  out.U64(s_.last_sample_icount);
}

void VirtualClock::LoadState(StateReader& in) {
  in.Begin("VCLK", 1);
  State s;
  s.mode = static_cast<Mode>(in.Bounded(in.U8(), 1, "clock mode"));
  s.sample_interval = in.U64();
  if (s.sample_interval == 0) in.Fail("clock sample interval is 0");
  s.epoch_ns = in.I64();
  s.anchor_icount = in.U64();
  s.anchor_ns = in.U64();
  s.last_sample_icount = in.U64();
  s_ = s;
}

}  // namespace vmrr
