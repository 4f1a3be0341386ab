// A scripted Environment for recorder/replayer tests: inputs come from queues the test fills
// (or from a seeded generator), outputs are collected. No host access.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "hv-hooks/environment.h"

namespace vmrr::test {

class FakeEnvironment : public Environment {
 public:
  std::deque<int64_t> times;
  std::deque<std::vector<uint8_t>> console;  // one entry per poll (empty = nothing typed)
  std::deque<std::vector<uint8_t>> frames;   // one entry per poll (empty = no frame)
  uint8_t next_entropy = 1;
  std::vector<uint8_t> console_out, net_out;
  int waits = 0;
  int64_t last_deadline = 0;

  int64_t SampleTime(uint64_t) override {
    int64_t t = times.empty() ? 0 : times.front();
    if (!times.empty()) times.pop_front();
    return t;
  }
  std::vector<uint8_t> PollConsoleInput(uint64_t, size_t max_bytes) override {
    if (console.empty()) return {};
    std::vector<uint8_t> b = std::move(console.front());
    console.pop_front();
    if (b.size() > max_bytes) {
      console.push_front(std::vector<uint8_t>(b.begin() + max_bytes, b.end()));
      b.resize(max_bytes);
    }
    return b;
  }
  bool PollNetFrame(uint64_t, std::vector<uint8_t>* frame) override {
    if (frames.empty()) return false;
    std::vector<uint8_t> f = std::move(frames.front());
    frames.pop_front();
    if (f.empty()) return false;
    *frame = std::move(f);
    return true;
  }
  void GetEntropy(uint64_t, std::span<uint8_t> out) override {
    for (auto& b : out) b = next_entropy++;
  }
  void ConsoleOutput(uint64_t, std::span<const uint8_t> bytes) override {
    console_out.insert(console_out.end(), bytes.begin(), bytes.end());
  }
  void NetFrameSent(uint64_t, std::span<const uint8_t> frame) override {
    net_out.insert(net_out.end(), frame.begin(), frame.end());
  }
  bool WaitForInput(uint64_t, int64_t deadline) override {
    ++waits;
    last_deadline = deadline;
    return false;
  }
};

}  // namespace vmrr::test
