#include "analysis/checkpoint_store.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace vmrr::analysis {

CheckpointStore::CheckpointStore(size_t budget_bytes) : budget_(budget_bytes) {}

size_t CheckpointStore::BytesOf(const ReplayMachine::Saved& s) {
  // The snapshot bytes plus the environment's look-ahead (records already read from the log);
  // a record's own heap payload (a console input's bytes) is small and counted as its size.
  return sizeof(Entry) + s.snapshot.capacity() + s.env.ahead.size() * sizeof(log::Record);
}

void CheckpointStore::Take(ReplayMachine& rm) {
  Entry e;
  e.icount = rm.machine().icount();
  e.saved = rm.Save();
  e.saved.snapshot.shrink_to_fit();
  e.bytes = BytesOf(e.saved);
  auto it = std::lower_bound(checkpoints_.begin(), checkpoints_.end(), e.icount,
                             [](const Entry& c, uint64_t ic) { return c.icount < ic; });
  if (it != checkpoints_.end() && it->icount == e.icount) {
    bytes_held_ -= it->bytes;
    bytes_held_ += e.bytes;
    *it = std::move(e);
  } else {
    bytes_held_ += e.bytes;
    it = checkpoints_.insert(it, std::move(e));
  }
  current_ = it->icount;
  Thin();
}

// While over budget, evict the checkpoint (never the first, never the one just taken at the
// current position) whose removal leaves the smallest gap relative to its distance from the
// current position: gap(i-1, i+1) / distance(i). Spacing thus grows in proportion to the
// distance from the current position, i.e. checkpoints k steps back sit at roughly
// geometrically growing distances (dense near the newest position, sparse far back).
void CheckpointStore::Thin() {
  while (bytes_held_ > budget_ && checkpoints_.size() > 2) {
    size_t victim = 0;
    double best = 0;
    for (size_t i = 1; i + 1 < checkpoints_.size(); ++i) {
      if (checkpoints_[i].icount == current_) continue;
      const uint64_t gap = checkpoints_[i + 1].icount - checkpoints_[i - 1].icount;
      const uint64_t ic = checkpoints_[i].icount;
      const uint64_t dist = ic > current_ ? ic - current_ : current_ - ic;
      const double cost = static_cast<double>(gap) / static_cast<double>(std::max<uint64_t>(dist, 1));
      if (victim == 0 || cost < best) victim = i, best = cost;
    }
    if (victim == 0) {
      // Only the first, the current and the last remain interior-free: drop the last if it is
      // not the current one.
      if (checkpoints_.back().icount == current_) break;
      victim = checkpoints_.size() - 1;
    }
    bytes_held_ -= checkpoints_[victim].bytes;
    checkpoints_.erase(checkpoints_.begin() + static_cast<std::ptrdiff_t>(victim));
  }
}

std::optional<uint64_t> CheckpointStore::NearestAtOrBefore(uint64_t icount) const {
  auto it = std::upper_bound(checkpoints_.begin(), checkpoints_.end(), icount,
                             [](uint64_t ic, const Entry& c) { return ic < c.icount; });
  if (it == checkpoints_.begin()) return std::nullopt;
  return std::prev(it)->icount;
}

void CheckpointStore::NoteEnd(const MachineResult& end) { end_ = end; }

std::vector<uint64_t> CheckpointStore::icounts() const {
  std::vector<uint64_t> out;
  out.reserve(checkpoints_.size());
  for (const Entry& e : checkpoints_) out.push_back(e.icount);
  return out;
}

void CheckpointStore::Restore(ReplayMachine& rm, const Entry& e) { rm.Restore(e.saved); }

MachineResult CheckpointStore::GoTo(ReplayMachine& rm, uint64_t icount) {
  uint64_t target = icount;
  bool to_end = false;
  if (end_ && target >= end_->icount) {
    // Past (or at) the end: run into the stop from a checkpoint before it, so the stop is
    // reproduced rather than run past.
    target = end_->icount;
    to_end = true;
  }
  // The nearest checkpoint at or before target (strictly before it when going to the end).
  auto it = std::upper_bound(checkpoints_.begin(), checkpoints_.end(), target,
                             [](uint64_t ic, const Entry& c) { return ic < c.icount; });
  if (to_end) {
    while (it != checkpoints_.begin() && std::prev(it)->icount >= target) --it;
    if (it == checkpoints_.begin()) {
      // Only checkpoints at the stop itself: restore the one there.
      if (checkpoints_.empty() || checkpoints_.front().icount != target) {
        throw std::out_of_range("CheckpointStore::GoTo: no checkpoint at or before icount " +
                                std::to_string(icount));
      }
      Restore(rm, checkpoints_.front());
      return *end_;
    }
  }
  if (it == checkpoints_.begin()) {
    throw std::out_of_range("CheckpointStore::GoTo: no checkpoint at or before icount " +
                            std::to_string(icount));
  }
  const Entry& from = *std::prev(it);
  Restore(rm, from);
  if (from.icount == target && !to_end) return MachineResult{MachineStop::kTargetReached, target, 0};
  const MachineResult r = rm.RunTo(icount);
  // The replay's own stops end the recording; a breakpoint or a RequestStop does not.
  if (r.icount < icount && (r.stop == MachineStop::kGuestExit || r.stop == MachineStop::kShutdown ||
                            r.stop == MachineStop::kHaltedForever)) {
    end_ = r;
  }
  return r;
}

}  // namespace vmrr::analysis
