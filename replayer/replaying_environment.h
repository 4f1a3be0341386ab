// ReplayingEnvironment: the Environment of a replay. Inputs come from the log's input records
// (TimeSample, ConsoleIn, NetRx, Entropy) in log order, each at exactly the icount at which
// the machine asks:
//  - SampleTime / GetEntropy at icount X: the next logged input must be of that kind at X
//    (and, for entropy, of the requested size), else Divergence.
//  - PollConsoleInput / PollNetFrame at X: the next logged input, if it is of that kind at X,
//    is returned; otherwise the poll is empty (the recorder logs only non-empty polls).
//  - a logged input whose icount is below the one asked for was skipped: Divergence.
// Other record kinds in the source are ignored (the session verifies them). Outputs are
// folded into running digests (the session compares them with Output records) and handed
// to optional sinks instead of the host. WaitForInput returns at once (replay never sleeps)
// with the answer the live wait gave: false only where a complete log shows that nothing
// ever arrived again.
#pragma once

#include <cstdint>
#include <deque>
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
  // Called at every idle wait before it returns (the replay session uses it to stop the
  // machine where the recording was stopped during a wait).
  std::function<void()> on_wait;
  // The machine's current icount (idle waits are not passed one). Without it idle waits
  // report input whenever any is left.
  std::function<uint64_t()> icount;
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
  bool WaitForInput(int64_t deadline_host_ns) override;

  // Throws Divergence(kMissedInput) if a logged input below `icount` was not consumed; the
  // session calls it at each verification point.
  void CheckNoInputBefore(uint64_t icount);
  // The next logged input not yet consumed, if any.
  const log::Record* PeekInput();

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
  }

 private:
  // Returns the next input record, or throws Divergence/LogExhausted for a required input
  // (`what` names the call for messages).
  const log::Record* Expect(uint64_t icount, uint8_t kind, const char* what);
  void Consume();

  RecordSource& inputs_;
  ReplayingEnvironmentOptions options_;
  const log::Record* Ahead(size_t i);  // the i-th input not yet consumed

  std::deque<log::Record> ahead_;  // inputs read from the source, not yet consumed
  bool source_done_ = false;
  OutputDigest outputs_[2];
  uint64_t inputs_consumed_ = 0;
};

}  // namespace vmrr
