// Fixture for the directed CPU tests: a flat machine (tests/unit/cpu/flat_machine.h) plus
// helpers to load hand-assembled code, run to HLT and read results and exception frames.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <vector>

#include "hv-hooks/cpu/cpu.h"
#include "tests/unit/cpu/flat_machine.h"

namespace vmrr::testing {

inline constexpr uint64_t kStatus = kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagOf;

class CpuTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kRam = 4 << 20;
  TestPlatform platform{kRam};
  Cpu cpu{platform};

  GuestMemory& mem() { return platform.memory(); }
  const CpuState& st() const { return cpu.state(); }
  uint64_t reg(GprIndex r) const { return cpu.state().gpr[r]; }

  // Writes code at `at` (default kCodeBase) followed by nothing (callers end with HLT, F4).
  void Code(const std::vector<uint8_t>& bytes, uint64_t at = kCodeBase) {
    mem().Write(at, bytes.data(), bytes.size());
  }

  // Sets up a flat state of the given mode at kCodeBase with `code`, applying `tweak` to the
  // state before it is installed.
  void Start(FlatMode mode, const std::vector<uint8_t>& code,
             const std::function<void(CpuState&)>& tweak = {}) {
    CpuState s = MakeFlatState(mode, mem());
    Code(code);
    if (tweak) tweak(s);
    cpu.SetState(s);
  }

  // Runs until HLT (or another stop) with a generous budget.
  RunResult RunToHalt(uint64_t budget = 1000000) { return cpu.Run(cpu.icount() + budget); }

  // Exception vector whose stub handler halted, or -1 if the CPU did not fault.
  int FaultVector() const {
    const uint64_t rip = cpu.state().rip;
    if (cpu.state().halted && rip > kFaultStubs && rip <= kFaultStubs + 256) {
      return static_cast<int>(rip - kFaultStubs - 1);
    }
    return -1;
  }
  // Reads the n-th 64-bit slot of the long-mode exception frame at RSP (with an error code,
  // slot 0 is the error code and slot 1 the RIP).
  uint64_t Frame64(unsigned n) { return Get64(mem(), cpu.state().gpr[kRsp] + 8 * n); }
  uint32_t Frame32(unsigned n) {
    uint32_t v = 0;
    mem().Read(cpu.state().gpr[kRsp] + 4 * n, &v, 4);
    return v;
  }
};

}  // namespace vmrr::testing
