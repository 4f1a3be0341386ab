// CheckpointStore: checkpoints of a replay's whole position (ReplayMachine::Save: machine
// snapshot + replaying environment + log position) kept while a ReplayMachine advances, so
// that the replay can seek to any icount: GoTo restores the nearest checkpoint at or before
// it and runs forward exactly to it. Memory-bounded: when the checkpoints held exceed the
// byte budget, checkpoints are evicted so that spacing grows with age (dense near the newest
// position, exponentially sparser further back; the first one is always kept).
//
// Each checkpoint is a full ReplayMachine::Saved (its machine snapshot is LZ4-compressed with
// zero pages elided); checkpoints do not yet share unchanged pages (see README.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "hv-hooks/machine/machine.h"
#include "replayer/replay_machine.h"

namespace vmrr::analysis {

class CheckpointStore {
 public:
  static constexpr size_t kDefaultBudgetBytes = size_t{256} << 20;
  explicit CheckpointStore(size_t budget_bytes = kDefaultBudgetBytes);

  // Stores a checkpoint of `rm`'s whole replay position at its current icount (replacing one
  // already held at that icount), then evicts by the thinning rule while over budget. The
  // newest and the first checkpoint are never evicted, so a single checkpoint larger than the
  // budget is still kept (bytes_held() then exceeds the budget). Does not change rm's future.
  void Take(ReplayMachine& rm);
  // Tells the store where the replay stops (a RunTo that returned before its target: guest
  // exit, shutdown, halted forever). GoTo also learns it itself when it runs into one of
  // those stops (not a breakpoint's or RequestStop's).
  void NoteEnd(const MachineResult& end);

  // Restores the nearest checkpoint at or before `icount` into `rm` and runs forward exactly
  // to `icount` (RunTo); returns the MachineResult (kTargetReached at `icount`, or the stop if
  // the replay stops first: a GoTo past the end stops where the replay stops). Throws
  // std::out_of_range if no checkpoint is at or before `icount`; whatever RunTo throws
  // (Divergence, LogExhausted, MachineError) propagates.
  MachineResult GoTo(ReplayMachine& rm, uint64_t icount);

  // The icount of the nearest checkpoint at or before `icount`, if any.
  std::optional<uint64_t> NearestAtOrBefore(uint64_t icount) const;

  size_t size() const { return checkpoints_.size(); }
  size_t bytes_held() const { return bytes_held_; }
  size_t budget_bytes() const { return budget_; }
  std::vector<uint64_t> icounts() const;
  const std::optional<MachineResult>& end() const { return end_; }

 private:
  struct Entry {
    uint64_t icount = 0;
    size_t bytes = 0;
    ReplayMachine::Saved saved;
  };
  static size_t BytesOf(const ReplayMachine::Saved& s);
  void Thin();
  void Restore(ReplayMachine& rm, const Entry& e);

  size_t budget_;
  size_t bytes_held_ = 0;
  uint64_t current_ = 0;  // icount of the latest Take: the position thinning measures from
  std::vector<Entry> checkpoints_;  // sorted by icount
  std::optional<MachineResult> end_;
};

}  // namespace vmrr::analysis
