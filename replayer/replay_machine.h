// ReplayMachine: a Machine restored from one of a log's checkpoints and fed by a
// ReplayingEnvironment reading the log's inputs from just after that checkpoint. The replay
// session drives one; divergence search drives two side by side. It can save and restore its
// whole replay position (machine snapshot + environment + log position), and applies the
// test-only bit flip when it runs past the flip's icount.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hv-hooks/machine/machine.h"
#include "logformat/log_reader.h"
#include "hv-hooks/session/session_config.h"
#include "replayer/record_source.h"
#include "replayer/replaying_environment.h"

namespace vmrr {

class BootEnvironment;  // boot_environment.h

// Test-only fault injection: after the machine reaches `icount`, bit `bit` of the guest
// byte at `gpa` is inverted (models a host memory fault during replay).
struct BitFlip {
  uint64_t icount = 0;
  uint64_t gpa = 0;
  unsigned bit = 0;
};

// Loads a log's checkpoint into `machine`. A checkpoint after the first may be a delta
// snapshot (Machine::SaveSnapshotDelta): its chain of bases is loaded first, from the full
// snapshot it starts from. Throws log::LogError (damaged chunks) and MachineError (a bad
// snapshot, a base the log does not hold); after a throw the machine may hold the state of an
// earlier checkpoint of the chain.
void LoadCheckpoint(const log::LogReader& reader, const log::CheckpointInfo& checkpoint, Machine& machine);

class ReplayMachine {
 public:
  // Throws MachineError (disk, snapshot) and log::LogError (damaged snapshot or log).
  ReplayMachine(const log::LogReader& reader, const SessionConfig& config,
                const std::optional<std::string>& disk_path, const log::CheckpointInfo& start,
                ReplayingEnvironmentOptions env_options, std::optional<BitFlip> flip = std::nullopt);
  ~ReplayMachine();

  // Runs to `target` (absolute icount), inverting the flip bit on the way if due. A failure
  // the environment or an observer reported (Fail) stops the machine at the instruction
  // boundary after it, consistent; RunTo then throws it (Divergence, LogExhausted). A host
  // failure that is not the log's (a disk read) throws MachineError(kHost).
  MachineResult RunTo(uint64_t target);
  // Reports a failure from inside the machine (an observer's callback): the machine stops at
  // the next instruction boundary and RunTo throws `failure`. Only the first one counts.
  void Fail(std::exception_ptr failure);

  struct Saved {
    std::vector<uint8_t> snapshot;
    ReplayingEnvironment::State env;
    LogPosition position;
    bool flip_pending = false;
  };
  Saved Save() const;
  void Restore(const Saved& saved);
  // The same without guest RAM (Machine::SaveCoreState): for checkpoint stores that keep the
  // memory pages themselves. RestoreCore leaves RAM as it is.
  struct SavedCore {
    std::vector<uint8_t> core;
    ReplayingEnvironment::State env;
    LogPosition position;
    bool flip_pending = false;
  };
  SavedCore SaveCore() const;
  void RestoreCore(const SavedCore& saved);
  // Moves the replay to one of the log's own checkpoints (its snapshot, and the log's inputs
  // from just after it), as if it had been constructed there. Throws LogError (damaged
  // snapshot) and MachineError(kSnapshot), leaving the replay where it was.
  void SeekToCheckpoint(const log::CheckpointInfo& checkpoint);

  Machine& machine() { return *machine_; }
  ReplayingEnvironment& env() { return env_; }
  bool flip_pending() const { return flip_ && !flip_done_; }

 private:
  const log::LogReader& reader_;
  std::unique_ptr<BootEnvironment> boot_env_;
  LogRecordSource inputs_;
  ReplayingEnvironment env_;
  std::unique_ptr<Machine> machine_;
  MachineResult Run(uint64_t target);

  std::optional<BitFlip> flip_;
  std::exception_ptr failure_;
  bool flip_done_ = false;
};

}  // namespace vmrr
