// VerifiedReplay: a ReplayMachine plus the checks of every verification record of the log:
// it runs the machine to each Digest/Output/Checkpoint/End record's icount and compares
// state digests, output digests, the end of the run, and (as the CPU accepts them)
// interrupts against IrqDelivered records. Any difference throws Divergence.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "logformat/log_reader.h"
#include "hv-hooks/session/session_config.h"
#include "replayer/divergence.h"
#include "replayer/record_source.h"
#include "replayer/replay_machine.h"

namespace vmrr {

class VerifiedReplay : private MachineObserver {
 public:
  VerifiedReplay(const log::LogReader& reader, const SessionConfig& config,
                 const std::optional<std::string>& disk_path, const log::CheckpointInfo& start,
                 ReplayingEnvironmentOptions env_options, std::optional<BitFlip> flip = std::nullopt);
  ~VerifiedReplay() override;

  enum class Stop {
    kEnd,     // the End record was reached and matched
    kUntil,   // stopped at `until`
    kLogEnd,  // a cut log: replayed to its last whole frame
  };
  // Throws Divergence (the first difference), LogError (damaged frame).
  Stop Run(uint64_t until);

  ReplayMachine& replay() { return machine_; }
  uint64_t digests_checked() const { return digests_; }
  uint64_t outputs_checked() const { return outputs_; }
  uint64_t interrupts_checked() const { return irqs_; }
  uint64_t last_match_icount() const { return last_match_; }
  // Last Checkpoint / Digest{machine} that matched: the whole machine was equal there.
  uint64_t last_full_match_icount() const { return last_full_match_; }
  const log::CheckpointInfo& last_checkpoint() const { return last_checkpoint_; }
  const std::optional<log::End>& end() const { return end_; }
  const MachineResult& last_result() const { return result_; }
  std::optional<uint64_t> recording_wall_ns() const { return recording_wall_ns_; }

 private:
  void OnInterrupt(uint64_t icount, uint8_t vector) override;
  // The first record in ahead_ that is not an IrqDelivered (reading more as needed).
  const log::Record* NextNonIrq();
  bool Fill();
  void Check(const log::Record& r);

  const log::LogReader& reader_;
  SessionConfig config_;
  ReplayMachine machine_;
  LogRecordSource verification_;
  std::deque<log::Record> ahead_;
  bool verification_done_ = false;
  uint64_t start_icount_;
  uint64_t digests_ = 0, outputs_ = 0, irqs_ = 0;
  uint64_t last_match_;
  uint64_t last_full_match_;
  log::CheckpointInfo last_checkpoint_;
  std::optional<log::End> end_;
  MachineResult result_;
  std::optional<uint64_t> recording_wall_ns_;
  // The icount of an End record whose recording was stopped by the user: an idle wait there
  // was cut short by the stop (the machine skipped its input point), so the replay stops too.
  std::optional<uint64_t> stopped_at_;
};

}  // namespace vmrr
