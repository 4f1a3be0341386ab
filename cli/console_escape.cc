// Ctrl-A x / Ctrl-A Ctrl-A filtering of live console input, with the read-ahead that keeps
// the escape from waking an idle guest.
#include "cli/console_escape.h"

#include <algorithm>

namespace vmrr::cli {

namespace {
constexpr size_t kReadAheadBytes = 4096;
}  // namespace

void EscapeEnvironment::Filter(std::span<const uint8_t> in) {
  for (uint8_t b : in) {
    if (after_ctrl_a_) {
      after_ctrl_a_ = false;
      if (b == 'x' || b == 'X') {
        quit_requested_ = true;
        if (on_quit_) on_quit_();
        continue;
      }
      pending_.push_back(0x01);
      if (b == 0x01) continue;  // Ctrl-A Ctrl-A sends one Ctrl-A
    } else if (b == 0x01) {
      after_ctrl_a_ = true;
      continue;
    }
    pending_.push_back(b);
  }
}

std::vector<uint8_t> EscapeEnvironment::PollConsoleInput(uint64_t icount, size_t max_bytes) {
  if (!enabled_) return inner_.PollConsoleInput(icount, max_bytes);
  // Read only when nothing read ahead is left: one read per poll, as without the escape.
  if (pending_.empty()) Filter(inner_.PollConsoleInput(icount, max_bytes));
  const size_t n = std::min(max_bytes, pending_.size());
  std::vector<uint8_t> out(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(n));
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(n));
  return out;
}

bool EscapeEnvironment::WaitForInput(uint64_t icount, int64_t deadline_host_ns) {
  if (!enabled_) return inner_.WaitForInput(icount, deadline_host_ns);
  for (;;) {
    if (!pending_.empty()) return true;
    if (!inner_.WaitForInput(icount, deadline_host_ns)) return false;
    const std::vector<uint8_t> in = inner_.PollConsoleInput(icount, kReadAheadBytes);
    if (in.empty()) return true;  // the input is the network's (or the console's end)
    Filter(in);
  }
}

}  // namespace vmrr::cli
