// ReplayingEnvironment: the Environment of a replay. Inputs come from the log's input records
// (TimeSample, ConsoleIn, NetRx, Entropy) in log order, each at exactly the icount at which
// the machine asks:
//  - SampleTime / GetEntropy at icount X: the next logged input must be of that kind at X
//    (and, for entropy, of the requested size), else Divergence.
//  - PollConsoleInput / PollNetFrame at X: the next logged input, if it is of that kind at X,
//    is returned; otherwise the poll is empty (the recorder logs only non-empty polls).
//  - a logged input whose icount is below the one asked for was skipped: Divergence.
//  - WaitForInput returns at once (replay never sleeps); with kWaitForever it returns the
//    logged IdleWake answer at X, which must be the next input.
// Other record kinds in the source are ignored (the session verifies them). Outputs are
// folded into running digests (the session compares them with Output records) and handed
// to optional sinks instead of the host.
// Nothing is thrown through the machine: a call the log cannot answer returns a neutral
// answer, and the failure (Divergence, LogExhausted) goes to on_failure, whose owner stops
// the machine at the instruction boundary (Machine::StopForHostError) and rethrows it from
// outside the machine (failure()).
#pragma once

#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <optional>

#include "hv-hooks/environment.h"
#include "logformat/record.h"
#include "hv-hooks/session/output_digest.h"
#include "replayer/divergence.h"
#include "replayer/record_source.h"

namespace vmrr {

struct ReplayingEnvironmentOptions {
  std::function<void(uint64_t icount, std::span<const uint8_t> bytes)> console_out;
  std::function<void(uint64_t icount, std::span<const uint8_t> frame)> net_out;
  // What the machine asks for after the last logged input: false -> LogExhausted (a cut log:
  // the recording went on but the log does not say how); true -> Divergence (a complete log
  // ended, the machine must not want more).
  bool log_complete = true;
  // Asked at every idle wait first: true if the recording was stopped during this wait (the
  // replay session then stops the machine too); the wait returns at once, consuming only the
  // IdleWake the cut wait logged, if it is the next input.
  std::function<bool(uint64_t icount)> stop_in_wait;
  // The first input the log cannot answer (see above); later ones are not reported.
  std::function<void(std::exception_ptr failure)> on_failure;
};

class ReplayingEnvironment : public Environment {
 public:
  // `inputs` must outlive this object.
  explicit ReplayingEnvironment(RecordSource& inputs, ReplayingEnvironmentOptions options = {});

  int64_t SampleTime(uint64_t icount) override;
  std::vector<uint8_t> PollConsoleInput(uint64_t icount, size_t max_bytes) override;
  bool PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) override;
  void GetEntropy(uint64_t icount, std::span<uint8_t> out) override;
  void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) override;
  void NetFrameSent(uint64_t icount, std::span<const uint8_t> frame) override;
  bool WaitForInput(uint64_t icount, int64_t deadline_host_ns) override;

  // The first failure (Divergence or LogExhausted), or null.
  std::exception_ptr failure() const { return failure_; }

  // Throws Divergence(kMissedInput) if a logged input below `icount` was not consumed; the
  // session calls it at each verification point.
  void CheckNoInputBefore(uint64_t icount);
  // The i-th logged input not yet consumed, if any.
  const log::Record* PeekInput(size_t i = 0);

  const OutputDigest& output(log::OutputChannel c) const { return outputs_[static_cast<size_t>(c)]; }
  void set_output(log::OutputChannel c, const OutputDigest& d) { outputs_[static_cast<size_t>(c)] = d; }
  uint64_t inputs_consumed() const { return inputs_consumed_; }

  // The environment's own replay state (the source's position is saved by its owner), so
  // that a machine snapshot plus this restores a replay at an earlier point.
  struct State {
    std::deque<log::Record> ahead;
    bool source_done = false;
    OutputDigest outputs[2];
    uint64_t inputs_consumed = 0;
  };
  State SaveState() const { return State{ahead_, source_done_, {outputs_[0], outputs_[1]}, inputs_consumed_}; }
  void LoadState(const State& s) {
    ahead_ = s.ahead;
    source_done_ = s.source_done;
    outputs_[0] = s.outputs[0];
    outputs_[1] = s.outputs[1];
    inputs_consumed_ = s.inputs_consumed;
    failure_ = nullptr;
  }

 private:
  // Returns the next input record, or reports Divergence/LogExhausted for a required input and
  // returns nullptr (`what` names the call for messages).
  const log::Record* Expect(uint64_t icount, uint8_t kind, const char* what);
  // False (and the failure reported) if a logged input below `icount` was never asked for.
  bool NoInputSkippedBefore(uint64_t icount);
  void Fail(std::exception_ptr failure);
  void Consume();

  RecordSource& inputs_;
  ReplayingEnvironmentOptions options_;
  const log::Record* Ahead(size_t i);  // the i-th input not yet consumed

  std::deque<log::Record> ahead_;  // inputs read from the source, not yet consumed
  bool source_done_ = false;
  OutputDigest outputs_[2];
  uint64_t inputs_consumed_ = 0;
  std::exception_ptr failure_;
};

}  // namespace vmrr
