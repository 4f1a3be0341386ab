// The virtual clock: guest time as a deterministic function of the instruction count and of
// host time samples taken at deterministic points. Every device reads time here, and every
// timed device event (PIT, LAPIC timer, RTC, virtio-blk completion) is a guest-time deadline
// that the clock converts into the icount at which it is due, so the run loop can stop exactly
// there.
//
// Model. Guest time is piecewise linear in icount with slope 1 ns per instruction (a 1 GHz
// machine at one instruction per cycle):
//     now_ns = anchor_ns + (icount - anchor_icount)
// The anchor moves only forward, at three kinds of points:
//  - Mode::kIcount: never from the host. AdvanceIdleTo (HLT with a timer pending) moves time
//    straight to the deadline, so an idle guest neither stalls nor spins. Fully synthetic:
//    the same run gives the same times live, recorded or replayed.
//  - Mode::kHost: Sample(icount, host_ns) every sample_interval instructions and on HLT
//    wake-up moves the anchor to max(extrapolated now, host_ns - epoch_ns). Taking the max
//    keeps time monotonic when the guest runs faster than wall time or the host clock steps
//    back; a sample that is ahead jumps time forward. Samples come from the Environment and
//    are logged, so replay reproduces them.
// A sample can only bring time forward, so after every Sample/AdvanceIdleTo the run loop must
// recompute device deadlines (they can only move earlier in icount).
#pragma once

#include <cstdint>

#include "hv-hooks/substrate/state_io.h"

namespace vmrr {

// The CPU (or the machine on its behalf) says how many instructions have retired.
class IcountSource {
 public:
  virtual ~IcountSource() = default;
  virtual uint64_t icount() const = 0;
};

inline constexpr uint64_t kNoDeadline = ~uint64_t{0};

class VirtualClock : public Stateful {
 public:
  enum class Mode : uint8_t { kIcount = 0, kHost = 1 };

  // icount-mode machines boot at this wall-clock time (2024-01-01T00:00:00Z), so that the
  // RTC reads the same date in every run.
  static constexpr int64_t kDefaultIcountEpochNs = 1704067200LL * 1000000000LL;
  static constexpr uint64_t kDefaultSampleInterval = 1'000'000;  // instructions

  VirtualClock(const IcountSource& icount, Mode mode,
               uint64_t sample_interval = kDefaultSampleInterval);

  // Power-on. epoch_ns: the host wall-clock time that guest time 0 corresponds to (host
  // mode: the first time sample; icount mode: kDefaultIcountEpochNs or a configured value).
  void Reset(int64_t epoch_ns);

  Mode mode() const { return s_.mode; }
  uint64_t icount() const { return icount_.icount(); }

  // Guest nanoseconds since power-on.
  uint64_t NowNs() const;
  // Guest wall-clock time (ns since the Unix epoch), for the RTC.
  int64_t WallClockNs() const { return s_.epoch_ns + static_cast<int64_t>(NowNs()); }
  // The icount at which guest time reaches deadline_ns as things stand now (the current icount
  // if it already has; kNoDeadline for kNoDeadline).
  uint64_t IcountForDeadline(uint64_t deadline_ns) const;
  // Host-clock time at which guest time reaches deadline_ns, for HLT idle sleeping (host mode).
  int64_t HostTimeForDeadline(uint64_t deadline_ns) const;

  // Input points: every sample_interval instructions (both modes) the machine takes a time
  // sample (host mode) and polls the Environment for console/network input, then calls
  // MarkInputPoint (Sample does so itself). NextInputPointIcount is where the next one is due.
  uint64_t NextInputPointIcount() const;
  void MarkInputPoint();
  // Host mode: takes a host time sample (from Environment::SampleTime) at the current icount
  // and marks an input point. In icount mode time ignores the sample.
  void Sample(int64_t host_ns);
  // HLT with nothing but timers to wait for: time jumps to deadline_ns (never backwards).
  // In host mode the machine sleeps and Samples instead; this is for icount mode (and for
  // replay of neither: replay reproduces the samples).
  void AdvanceIdleTo(uint64_t deadline_ns);

  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

 private:
  struct State {
    Mode mode = Mode::kIcount;
    uint64_t sample_interval = 0;
    int64_t epoch_ns = 0;
    uint64_t anchor_icount = 0;
    uint64_t anchor_ns = 0;
    uint64_t last_sample_icount = 0;
  };
  void MoveAnchorTo(uint64_t ns);

  const IcountSource& icount_;
  State s_;
};

}  // namespace vmrr
