#include "analysis/checkpoint_store.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace vmrr::analysis {

CheckpointStore::CheckpointStore(size_t budget_bytes) : budget_(budget_bytes) {}

size_t CheckpointStore::CoreBytesOf(const ReplayMachine::SavedCore& s) {
  // The core state plus the environment's look-ahead (records already read from the log);
  // a record's own heap payload (a console input's bytes) is small and counted as its size.
  return sizeof(Entry) + s.core.capacity() + s.env.ahead.size() * sizeof(log::Record);
}

void CheckpointStore::Recount() {
  // Every page and chunk alive is held by a checkpoint or by memory_ (the base of the next
  // Take), each counted once however many maps share it.
  size_t map_bytes = 0;
  for (const Entry& e : checkpoints_) map_bytes += e.pages->capacity() * sizeof(PageMap::value_type);
  bytes_held_ = core_bytes_ + map_bytes + counts_->pages * sizeof(Page) + counts_->chunks * sizeof(Chunk);
}

std::shared_ptr<const CheckpointStore::PageMap> CheckpointStore::Capture(const GuestMemory& mem) {
  const uint64_t pages = mem.pages();
  const size_t chunks = static_cast<size_t>((pages + kChunkPages - 1) / kChunkPages);
  auto map = std::make_shared<PageMap>(memory_ && memory_->size() == chunks ? *memory_ : PageMap(chunks));
  const bool all = !memory_ || memory_->size() != chunks;
  for (size_t c = 0; c < chunks; ++c) {
    const uint64_t first = c * kChunkPages, end = std::min<uint64_t>(pages, first + kChunkPages);
    bool changed = false;
    for (uint64_t p = first; p < end && !changed; ++p) changed = all ? mem.MayBeNonZero(p) : mem.IsDirty(p);
    if (!changed) continue;
    auto chunk = (*map)[c] ? std::make_shared<Chunk>(*(*map)[c]) : std::make_shared<Chunk>(counts_.get());
    bool any = false;
    for (uint64_t p = first; p < end; ++p) {
      std::shared_ptr<const Page>& slot = chunk->pages[p - first];
      if (all ? mem.MayBeNonZero(p) : mem.IsDirty(p)) {
        const uint8_t* src = mem.data() + p * kGuestPageSize;
        if (std::all_of(src, src + kGuestPageSize, [](uint8_t b) { return b == 0; })) {
          slot = nullptr;
        } else if (!slot || std::memcmp(slot->bytes, src, kGuestPageSize) != 0) {
          auto page = std::make_shared<Page>(counts_.get());
          std::memcpy(page->bytes, src, kGuestPageSize);
          slot = std::move(page);
        }
      }
      any |= slot != nullptr;
    }
    (*map)[c] = any ? std::move(chunk) : nullptr;
  }
  return map;
}

void CheckpointStore::Take(ReplayMachine& rm) {
  GuestMemory& mem = rm.machine().memory();
  Entry e;
  e.icount = rm.machine().icount();
  e.core = rm.SaveCore();
  e.core.core.shrink_to_fit();
  e.core_bytes = CoreBytesOf(e.core);
  e.pages = Capture(mem);
  memory_ = e.pages;
  mem.ClearDirty();
  auto it = std::lower_bound(checkpoints_.begin(), checkpoints_.end(), e.icount,
                             [](const Entry& c, uint64_t ic) { return c.icount < ic; });
  core_bytes_ += e.core_bytes;
  if (it != checkpoints_.end() && it->icount == e.icount) {
    core_bytes_ -= it->core_bytes;
    *it = std::move(e);
  } else {
    it = checkpoints_.insert(it, std::move(e));
  }
  current_ = it->icount;
  Recount();
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
    core_bytes_ -= checkpoints_[victim].core_bytes;
    checkpoints_.erase(checkpoints_.begin() + static_cast<std::ptrdiff_t>(victim));
    Recount();
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

void CheckpointStore::Restore(ReplayMachine& rm, const Entry& e) {
  GuestMemory& mem = rm.machine().memory();
  const PageMap& want = *e.pages;
  const PageMap* have = memory_ && memory_->size() == want.size() ? memory_.get() : nullptr;
  const uint64_t pages = mem.pages();
  // Core state first: it is checked before anything changes, and throws on bad bytes.
  rm.RestoreCore(e.core);
  for (size_t c = 0; c < want.size(); ++c) {
    const uint64_t first = c * kChunkPages, end = std::min<uint64_t>(pages, first + kChunkPages);
    const bool same_chunk = have && (*have)[c] == want[c];
    for (uint64_t p = first; p < end; ++p) {
      // Pages neither the maps nor the dirty bits tell apart hold the same bytes already.
      if (same_chunk && !mem.IsDirty(p)) continue;
      const std::shared_ptr<const Page>& w = want[c] ? want[c]->pages[p - first] : nullptr;
      if (have && !mem.IsDirty(p)) {
        const std::shared_ptr<const Page> h = (*have)[c] ? (*have)[c]->pages[p - first] : nullptr;
        if (h == w) continue;
      }
      uint8_t* dst = mem.data() + p * kGuestPageSize;
      if (w) {
        if (std::memcmp(dst, w->bytes, kGuestPageSize) == 0) continue;
        std::memcpy(dst, w->bytes, kGuestPageSize);
      } else {
        if (!mem.MayBeNonZero(p) || std::all_of(dst, dst + kGuestPageSize, [](uint8_t b) { return b == 0; })) continue;
        std::memset(dst, 0, kGuestPageSize);
      }
      mem.NoteWrite(p * kGuestPageSize, kGuestPageSize);  // decoded code on the page is dropped
    }
  }
  mem.ClearDirty();
  memory_ = e.pages;
}

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
  if (r.icount < icount && IsGuestEnd(r.stop)) {
    end_ = r;
  }
  return r;
}

}  // namespace vmrr::analysis
