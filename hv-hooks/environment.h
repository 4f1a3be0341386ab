// The Environment: the one seam through which the outside world reaches the machine and the
// machine's output leaves it. Live (the host), Recording (Live plus the log) and Replaying
// (the log) implement it; nothing else in hv-hooks touches the host.
//
// Contract with the machine (what makes record/replay work):
//  - Every input method is called only at a deterministic point of the guest's execution
//    (an instruction boundary chosen by icount, a device register access, HLT wake-up), and
//    is passed the icount of that point. A Recording environment logs (icount, result); a
//    Replaying one returns the logged result for the same call at the same icount.
//  - Outputs are passed with the icount at which the guest produced them, for output digests
//    and output commit.
//  - WaitForInput is the only call that may block. With a finite deadline its answer is not
//    used (what the wait observed is taken in by the SampleTime/Poll* calls that follow it),
//    so replay returns at once. With kWaitForever (nothing is scheduled) the answer decides
//    whether the guest can ever wake, so it is an input like the others: logged, replayed.
//  - An environment that cannot answer (a replay whose log says otherwise, a host failure)
//    never throws through the machine: it gives a neutral answer and reports the failure to
//    its owner, who stops the machine at the next instruction boundary
//    (Machine::StopForHostError).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vmrr {

class Environment {
 public:
  virtual ~Environment() = default;

  // ---- inputs ---------------------------------------------------------------------------
  // Host wall-clock time (ns since the Unix epoch). The virtual clock in `host` mode derives
  // guest time from these samples; it tolerates samples that go backwards.
  virtual int64_t SampleTime(uint64_t icount) = 0;
  // Console bytes that arrived since the last poll, at most max_bytes (the rest stay queued
  // in the environment for a later poll).
  virtual std::vector<uint8_t> PollConsoleInput(uint64_t icount, size_t max_bytes) = 0;
  // One received network frame, if any: true and *frame filled, else false. The NIC polls
  // only when it has a receive buffer to put the frame in, so no frame is ever dropped
  // between the environment and the guest.
  virtual bool PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) = 0;
  // Fills out completely with entropy (virtio-rng, RDRAND/RDSEED).
  virtual void GetEntropy(uint64_t icount, std::span<uint8_t> out) = 0;

  // ---- outputs --------------------------------------------------------------------------
  virtual void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) = 0;
  virtual void NetFrameSent(uint64_t icount, std::span<const uint8_t> frame) = 0;

  // ---- idle -----------------------------------------------------------------------------
  // Blocks until console or network input may be available or the host clock reaches
  // deadline_host_ns (same clock as SampleTime), whichever is first. Returns true if input
  // may be available. Replaying environments return at once (with the logged answer for
  // kWaitForever).
  static constexpr int64_t kWaitForever = INT64_MAX;
  virtual bool WaitForInput(uint64_t icount, int64_t deadline_host_ns) = 0;
};

}  // namespace vmrr
