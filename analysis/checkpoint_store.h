// CheckpointStore: checkpoints of a replay's whole position (ReplayMachine::Save: machine
// snapshot + replaying environment + log position) kept while a ReplayMachine advances, so
// that the replay can seek to any icount: GoTo restores the nearest checkpoint at or before
// it and runs forward exactly to it. Memory-bounded: when the checkpoints held exceed the
// byte budget, checkpoints are evicted so that spacing grows with age (dense near the newest
// position, exponentially sparser further back; the first one is always kept).
//
// Checkpoints are incremental: each holds the machine's state without RAM
// (ReplayMachine::SavedCore, a few KiB) and a map of RAM pages shared with the other
// checkpoints, in which only the pages the guest (or a device's DMA) dirtied since the
// previous Take or restore are new copies: GuestMemory's dirty tracking, which this store owns
// (it clears the dirty bits after each Take and restore). A restore writes back only the pages
// whose content differs between the current memory and the checkpoint's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
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

  // Guest pages held (shared pages counted once).
  size_t pages_held() const { return counts_->pages; }

 private:
  // RAM as pages shared between checkpoints: a map of 64-page chunks, each an array of page
  // pointers; a null pointer is a page (or chunk) of zeros. Immutable once built.
  static constexpr size_t kChunkPages = 64;
  struct Counts {
    size_t pages = 0, chunks = 0;
  };
  struct Page {
    explicit Page(Counts* c) : counts(c) { ++counts->pages; }
    ~Page() { --counts->pages; }
    Counts* counts;
    uint8_t bytes[kGuestPageSize];
  };
  struct Chunk {
    explicit Chunk(Counts* c) : counts(c) { ++counts->chunks; }
    Chunk(const Chunk& o) : counts(o.counts), pages(o.pages) { ++counts->chunks; }
    ~Chunk() { --counts->chunks; }
    Counts* counts;
    std::array<std::shared_ptr<const Page>, kChunkPages> pages;
  };
  using PageMap = std::vector<std::shared_ptr<const Chunk>>;

  struct Entry {
    uint64_t icount = 0;
    size_t core_bytes = 0;
    ReplayMachine::SavedCore core;
    std::shared_ptr<const PageMap> pages;
  };
  static size_t CoreBytesOf(const ReplayMachine::SavedCore& s);
  // The map of `mem` now: current_ plus the dirty pages (all pages when there is no current_).
  std::shared_ptr<const PageMap> Capture(const GuestMemory& mem);
  void Thin();
  void Restore(ReplayMachine& rm, const Entry& e);
  void Recount();

  // Declared first so that it outlives every page and chunk.
  std::unique_ptr<Counts> counts_ = std::make_unique<Counts>();
  std::shared_ptr<const PageMap> memory_;  // what RAM held at the last Take or restore
  size_t budget_;
  size_t bytes_held_ = 0;
  size_t core_bytes_ = 0;
  uint64_t current_ = 0;  // icount of the latest Take: the position thinning measures from
  std::vector<Entry> checkpoints_;  // sorted by icount
  std::optional<MachineResult> end_;
};

}  // namespace vmrr::analysis
