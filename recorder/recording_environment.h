// RecordingEnvironment: the Environment of a recording. It wraps another Environment (the
// live host) and appends every input it hands the machine to the log, stamped with the icount
// the machine passed: SampleTime -> TimeSample, a non-empty console poll -> ConsoleIn, a
// received frame -> NetRx, GetEntropy -> Entropy, the answer of an idle wait with nothing
// scheduled -> IdleWake. Outputs go on to the inner environment and
// into per-channel running digests (output_digest.h); the session writes them as Output
// records at its digest points (AppendOutputRecords). WaitForInput waits in slices of at most
// max_idle_wait_ns, flushing aged frames between them, so
// that an idle guest's log is still flushed often (SIGKILL loses at most the last frame).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "hv-hooks/environment.h"
#include "logformat/log_writer.h"
#include "logformat/record.h"
#include "hv-hooks/session/output_digest.h"

namespace vmrr {

struct RecordingEnvironmentOptions {
  // Upper bound on one WaitForInput call, so that a frame opened before an idle period is
  // closed by age (LogWriter::Poll) while the guest sleeps. 0: no bound.
  int64_t max_idle_wait_ns = 50'000'000;
  // Called between the slices of an idle wait (progress display while the guest sleeps).
  std::function<void()> on_idle_slice;
};

class RecordingEnvironment : public Environment {
 public:
  // `inner` and `writer` must outlive this object.
  RecordingEnvironment(Environment& inner, log::LogWriter& writer,
                       RecordingEnvironmentOptions options = {});

  int64_t SampleTime(uint64_t icount) override;
  std::vector<uint8_t> PollConsoleInput(uint64_t icount, size_t max_bytes) override;
  bool PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) override;
  void GetEntropy(uint64_t icount, std::span<uint8_t> out) override;
  void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) override;
  void NetFrameSent(uint64_t icount, std::span<const uint8_t> frame) override;
  bool WaitForInput(uint64_t icount, int64_t deadline_host_ns) override;

  // Appends an Output record for each channel whose total changed since its last Output
  // record, or for both channels when `all` (checkpoints: a replay starting there takes its
  // output state from these records).
  void AppendOutputRecords(uint64_t icount, bool all);
  // A recording that starts from a running machine (a shadow gone live) continues the guest's
  // output: its Output records count from these (a replay from its first checkpoint takes them).
  void SeedOutputs(const OutputDigest& console, const OutputDigest& net) {
    outputs_[0] = console;
    outputs_[1] = net;
  }

  const OutputDigest& output(log::OutputChannel channel) const {
    return outputs_[static_cast<size_t>(channel)];
  }
  uint64_t inputs_logged() const { return inputs_logged_; }
  // Async-signal-safe: a wait in progress (or the next one) returns false at its next
  // slice, so that a stop request reaches a guest idle in HLT.
  void InterruptWait() { interrupted_.store(true); }

 private:
  Environment& inner_;
  log::LogWriter& writer_;
  RecordingEnvironmentOptions options_;
  OutputDigest outputs_[2];
  uint64_t written_totals_[2] = {~uint64_t{0}, ~uint64_t{0}};
  uint64_t inputs_logged_ = 0;
  std::atomic<bool> interrupted_{false};
};

}  // namespace vmrr
