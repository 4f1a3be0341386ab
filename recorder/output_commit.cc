// ConsoleCommitter: held console bytes, released in order on acknowledgement.
#include "recorder/output_commit.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace vmrr {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ConsoleCommitter::ConsoleCommitter(int fd, bool positional, size_t max_held)
    : fd_(fd), positional_(positional), max_held_(max_held == 0 ? 1 : max_held) {}

void ConsoleCommitter::Hold(uint64_t need_offset, uint64_t need_icount, std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  std::unique_lock<std::mutex> lock(mu_);
  HoldLocked(lock, false, need_offset, need_icount, bytes);
}

void ConsoleCommitter::HoldFrame(uint64_t need_offset, uint64_t need_icount, std::span<const uint8_t> frame) {
  std::unique_lock<std::mutex> lock(mu_);
  HoldLocked(lock, true, need_offset, need_icount, frame);
}

void ConsoleCommitter::set_console_base(uint64_t console_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  produced_ = released_ = console_bytes;
}

void ConsoleCommitter::set_net_sender(std::function<void(std::span<const uint8_t>)> send) {
  std::lock_guard<std::mutex> lock(mu_);
  net_send_ = std::move(send);
}

void ConsoleCommitter::HoldLocked(std::unique_lock<std::mutex>& lock, bool frame, uint64_t need_offset,
                                  uint64_t need_icount, std::span<const uint8_t> bytes) {
  bool waited = false;
  while (held_ > 0 && held_ + bytes.size() > max_held_ && !interrupted_.load()) {
    if (!waited) ++waits_;
    waited = true;
    cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  chunks_.push_back(Chunk{frame, frame ? frames_produced_ : produced_, need_offset, need_icount,
                          std::vector<uint8_t>(bytes.begin(), bytes.end()), NowNs()});
  if (frame) ++frames_produced_;
  else produced_ += bytes.size();
  held_ += bytes.size();
  max_held_seen_ = std::max(max_held_seen_, held_);
  ReleaseLocked();  // an acknowledgement may already cover it
}

void ConsoleCommitter::Acknowledged(uint64_t offset, uint64_t icount) {
  std::lock_guard<std::mutex> lock(mu_);
  acked_offset_ = std::max(acked_offset_, offset);
  acked_icount_ = std::max(acked_icount_, icount);
  ReleaseLocked();
}

void ConsoleCommitter::WriteOut(const Chunk& c) {
  if (c.frame) {
    if (net_send_) net_send_(c.bytes);
    return;
  }
  const uint8_t* p = c.bytes.data();
  size_t n = c.bytes.size();
  uint64_t at = c.offset;
  while (n > 0) {
    ssize_t w = positional_ ? ::pwrite(fd_, p, n, static_cast<off_t>(at)) : ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "vmrr: console output lost: write failed: %s\n", std::strerror(errno));
      return;
    }
    p += w;
    n -= static_cast<size_t>(w);
    at += static_cast<uint64_t>(w);
  }
}

void ConsoleCommitter::ReleaseLocked() {
  bool any = false;
  while (!chunks_.empty() && (unprotected_ || (chunks_.front().need_offset <= acked_offset_ &&
                                                 chunks_.front().need_icount <= acked_icount_))) {
    WriteOut(chunks_.front());
    if (figures_ && !unprotected_) figures_->Sample("commit", NowNs() - chunks_.front().held_at_ns);
    if (chunks_.front().frame) ++frames_released_;
    else released_ += chunks_.front().bytes.size();
    held_ -= chunks_.front().bytes.size();
    chunks_.pop_front();
    any = true;
  }
  if (any) cv_.notify_all();
}

void ConsoleCommitter::ReleaseUnprotected() {
  std::lock_guard<std::mutex> lock(mu_);
  unprotected_ = true;
  ReleaseLocked();
}

bool ConsoleCommitter::unprotected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unprotected_;
}

bool ConsoleCommitter::WaitAllReleased(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return chunks_.empty(); });
}

uint64_t ConsoleCommitter::produced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return produced_;
}
uint64_t ConsoleCommitter::released() const {
  std::lock_guard<std::mutex> lock(mu_);
  return released_;
}
uint64_t ConsoleCommitter::frames_produced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return frames_produced_;
}
uint64_t ConsoleCommitter::frames_released() const {
  std::lock_guard<std::mutex> lock(mu_);
  return frames_released_;
}
uint64_t ConsoleCommitter::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_;
}
uint64_t ConsoleCommitter::max_held_seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_held_seen_;
}
uint64_t ConsoleCommitter::backpressure_waits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waits_;
}

}  // namespace vmrr
