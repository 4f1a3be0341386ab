// Output commit: console bytes and network frames the guest sends leave the primary only once
// the shadow has acknowledged the log that produces them. ConsoleCommitter holds both, in the
// guest's order (bounded: a full buffer blocks the guest's output, never drops it) and releases
// them in that order as acknowledgements arrive; CommitEnvironment puts it between the machine
// and the host, closing the open log frame at every output so that the wait is one round trip.
// Released console bytes go to a file at their absolute position in the guest's output (so a
// byte released twice, by the primary and by the shadow that took over, lands on itself) or,
// without a file, to a stream in order. Released frames go to the network sender (at least
// once: the shadow that takes over sends again every frame the primary had not said it
// released, so a frame can arrive twice, as TCP segments can).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "hv-hooks/environment.h"
#include "replication/link_figures.h"

namespace vmrr {

class ConsoleCommitter {
 public:
  // `positional`: fd is a regular file written with pwrite at each byte's offset; otherwise a
  // stream written in order. `max_held`: bytes held before Hold blocks.
  ConsoleCommitter(int fd, bool positional, size_t max_held);
  // Before anything is held: the guest's console output so far was `console_bytes` long (a
  // shadow that went live and replicates onward): the next byte lands at that offset, and the
  // counts (produced, released) include them.
  void set_console_base(uint64_t console_bytes);

  // Machine thread: holds `bytes` (the next ones of the guest's output) until an
  // acknowledgement covers stream offset `need_offset` and icount `need_icount`. Blocks while
  // the buffer is full, until room is made or Interrupt() is called (the bytes are then held
  // beyond the bound: nothing is dropped).
  void Hold(uint64_t need_offset, uint64_t need_icount, std::span<const uint8_t> bytes);
  // The same for one network frame (its bytes count against `max_held` too), released through
  // the sender (set_net_sender; without one a released frame goes nowhere).
  void HoldFrame(uint64_t need_offset, uint64_t need_icount, std::span<const uint8_t> frame);
  // Called with the committer's lock held, from the machine or the link thread.
  void set_net_sender(std::function<void(std::span<const uint8_t>)> send);
  // Link thread: the shadow holds the stream up to `offset` and the log up to `icount`.
  void Acknowledged(uint64_t offset, uint64_t icount);
  // Waits until every byte held so far is released; false on timeout.
  bool WaitAllReleased(int timeout_ms);
  // Async-signal-safe: a blocked Hold returns (the machine is being stopped).
  void Interrupt() { interrupted_.store(true); }
  // The shadow is gone and the primary continues unprotected (--on-shadow-loss continue):
  // every held byte is released now, and every later one as soon as it is held.
  void ReleaseUnprotected();
  bool unprotected() const;

  uint64_t produced() const;
  uint64_t released() const;
  uint64_t held() const;  // console bytes and frame bytes
  uint64_t frames_produced() const;
  uint64_t frames_released() const;
  // Largest number of bytes ever held at once, and how often Hold had to wait for room.
  uint64_t max_held_seen() const;
  uint64_t backpressure_waits() const;
  // Each chunk's time from Hold to its release goes to `figures` as "commit" (bench/ft).
  void set_figures(link::LinkFigures* figures) { figures_ = figures; }

 private:
  struct Chunk {
    bool frame;       // a network frame (else console bytes)
    uint64_t offset;  // of its first byte in the guest's console output, or the frame's index
    uint64_t need_offset;
    uint64_t need_icount;
    std::vector<uint8_t> bytes;
    int64_t held_at_ns;
  };
  void ReleaseLocked();
  void WriteOut(const Chunk& c);
  void HoldLocked(std::unique_lock<std::mutex>& lock, bool frame, uint64_t need_offset, uint64_t need_icount,
                  std::span<const uint8_t> bytes);

  int fd_;
  bool positional_;
  size_t max_held_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> chunks_;
  uint64_t produced_ = 0;
  uint64_t released_ = 0;
  uint64_t frames_produced_ = 0;
  uint64_t frames_released_ = 0;
  std::function<void(std::span<const uint8_t>)> net_send_;
  uint64_t held_ = 0;
  uint64_t acked_offset_ = 0;
  uint64_t acked_icount_ = 0;
  uint64_t max_held_seen_ = 0;
  uint64_t waits_ = 0;
  bool unprotected_ = false;
  link::LinkFigures* figures_ = nullptr;
  std::atomic<bool> interrupted_{false};
};

class CommitEnvironment : public Environment {
 public:
  // `commit_point(icount)` closes the open log frame (sending it to the shadow) and returns the
  // stream offset and sync icount an acknowledgement must reach for output made now.
  struct Point {
    uint64_t offset;
    uint64_t icount;
  };
  CommitEnvironment(Environment& inner, ConsoleCommitter& console, std::function<Point(uint64_t icount)> commit_point)
      : inner_(inner), console_(console), commit_point_(std::move(commit_point)) {}

  int64_t SampleTime(uint64_t icount) override { return inner_.SampleTime(icount); }
  std::vector<uint8_t> PollConsoleInput(uint64_t icount, size_t max_bytes) override {
    return inner_.PollConsoleInput(icount, max_bytes);
  }
  bool PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) override { return inner_.PollNetFrame(icount, frame); }
  void GetEntropy(uint64_t icount, std::span<uint8_t> out) override { inner_.GetEntropy(icount, out); }
  void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) override {
    const Point p = commit_point_(icount);
    console_.Hold(p.offset, p.icount, bytes);
  }
  void NetFrameSent(uint64_t icount, std::span<const uint8_t> frame) override {
    const Point p = commit_point_(icount);
    console_.HoldFrame(p.offset, p.icount, frame);
  }
  bool WaitForInput(uint64_t icount, int64_t deadline_host_ns) override {
    return inner_.WaitForInput(icount, deadline_host_ns);
  }

 private:
  Environment& inner_;
  ConsoleCommitter& console_;
  std::function<Point(uint64_t)> commit_point_;
};

}  // namespace vmrr
