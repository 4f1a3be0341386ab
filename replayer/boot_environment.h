// The environment a replay machine is built with: building a host-clock machine takes a time
// sample, which belongs to the recording's start (before its first snapshot), not to the log
// position a replay starts from; the snapshot then overwrites the clock. It answers every
// question neutrally and is never asked anything once the replay runs.
#pragma once

#include "hv-hooks/machine/machine.h"

namespace vmrr {

class BootEnvironment : public Environment {
 public:
  int64_t SampleTime(uint64_t) override { return 0; }
  std::vector<uint8_t> PollConsoleInput(uint64_t, size_t) override { return {}; }
  bool PollNetFrame(uint64_t, std::vector<uint8_t>*) override { return false; }
  void GetEntropy(uint64_t, std::span<uint8_t> out) override {
    for (auto& b : out) b = 0;
  }
  void ConsoleOutput(uint64_t, std::span<const uint8_t>) override {}
  void NetFrameSent(uint64_t, std::span<const uint8_t>) override {}
  bool WaitForInput(uint64_t, int64_t) override { return true; }
};

}  // namespace vmrr
