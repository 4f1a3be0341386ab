// Test doubles shared by the device tests (an icount source, a scripted Environment, an IRQ
// recorder) and the one save/restore test every stateful component runs.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "hv-hooks/devices/irq.h"
#include "hv-hooks/environment.h"
#include "hv-hooks/substrate/state_io.h"
#include "hv-hooks/substrate/virtual_clock.h"

namespace vmrr::test {

struct FakeIcount : IcountSource {
  uint64_t value = 0;
  uint64_t icount() const override { return value; }
};

struct FakeEnvironment : Environment {
  int64_t time_ns = 0;
  std::deque<uint8_t> console_in;
  std::deque<std::vector<uint8_t>> net_in;
  uint8_t next_entropy = 0;
  std::vector<uint8_t> console_out;
  std::vector<uint64_t> console_out_icounts;
  std::vector<std::vector<uint8_t>> net_out;
  size_t entropy_calls = 0;

  int64_t SampleTime(uint64_t) override { return time_ns; }
  std::vector<uint8_t> PollConsoleInput(uint64_t, size_t max_bytes) override {
    std::vector<uint8_t> out;
    while (!console_in.empty() && out.size() < max_bytes) {
      out.push_back(console_in.front());
      console_in.pop_front();
    }
    return out;
  }
  bool PollNetFrame(uint64_t, std::vector<uint8_t>* frame) override {
    if (net_in.empty()) return false;
    *frame = net_in.front();
    net_in.pop_front();
    return true;
  }
  void GetEntropy(uint64_t, std::span<uint8_t> out) override {
    ++entropy_calls;
    for (uint8_t& b : out) b = next_entropy++;
  }
  void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) override {
    console_out.insert(console_out.end(), bytes.begin(), bytes.end());
    console_out_icounts.push_back(icount);
  }
  void NetFrameSent(uint64_t, std::span<const uint8_t> frame) override {
    net_out.emplace_back(frame.begin(), frame.end());
  }
  bool WaitForInput(uint64_t, int64_t) override { return false; }
};

// Records every line's level and counts rising edges.
struct IrqRecorder : IrqSink {
  bool level[32] = {};
  int rises[32] = {};
  void SetIrq(unsigned line, bool asserted) override {
    if (asserted && !level[line]) ++rises[line];
    level[line] = asserted;
  }
};

// crosvm's suspendable test: snapshot, mutate, restore, snapshot again, compare. Then every
// truncation of the snapshot must be refused with StateError and leave the component intact,
// and corrupted bytes must either load or be refused, never crash.
inline void ExpectSaveMutateRestore(Stateful& component, const std::function<void()>& mutate) {
  std::vector<uint8_t> before = SaveToBytes(component);
  mutate();
  std::vector<uint8_t> after = SaveToBytes(component);
  EXPECT_NE(before, after) << "the mutation did not change saved state: test is vacuous";
  LoadFromBytes(component, before);
  EXPECT_EQ(SaveToBytes(component), before) << "restore did not reproduce the snapshot";

  for (size_t len = 0; len < before.size(); ++len) {
    std::vector<uint8_t> cut(before.begin(), before.begin() + static_cast<ptrdiff_t>(len));
    EXPECT_THROW(LoadFromBytes(component, cut), StateError) << "prefix of " << len << " bytes";
  }
  EXPECT_EQ(SaveToBytes(component), before) << "a refused load changed the component";
  std::vector<uint8_t> longer = before;
  longer.push_back(0);
  EXPECT_THROW(LoadFromBytes(component, longer), StateError);

  for (size_t i = 0; i < before.size(); ++i) {
    std::vector<uint8_t> bad = before;
    bad[i] ^= 0xa5;
    try {
      LoadFromBytes(component, bad);
    } catch (const StateError&) {
    }
  }
  LoadFromBytes(component, before);
  EXPECT_EQ(SaveToBytes(component), before);
}

}  // namespace vmrr::test
