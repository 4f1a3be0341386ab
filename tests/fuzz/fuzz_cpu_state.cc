// libFuzzer target for Cpu::LoadBytes: hostile snapshot bytes. LoadBytes must either reject
// them with StateError and leave the CPU exactly as it was, or accept them; an accepted state
// must then run (a bounded number of instructions on a small RAM-only machine) without
// harming the host, and save back to the same bytes it was loaded from.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "hv-hooks/cpu/cpu.h"
#include "hv-hooks/substrate/state_io.h"
#include "tests/unit/cpu/flat_machine.h"

namespace {

using namespace vmrr;
using namespace vmrr::testing;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  TestPlatform platform(1 << 20);
  Cpu cpu(platform);
  cpu.SetState(MakeFlatState(FlatMode::kLong64, platform.memory()));
  // Some code to run if the state is accepted: the input itself, at the flat code address.
  platform.memory().Write(kCodeBase, data, std::min<size_t>(size, kCodeSize));
  const std::vector<uint8_t> before = cpu.SaveBytes();
  bool loaded = false;
  try {
    cpu.LoadBytes(std::span<const uint8_t>(data, size));
    loaded = true;
  } catch (const StateError&) {
    Check(cpu.SaveBytes() == before);  // a rejected load changes nothing
  }
  if (loaded) {
    Check(cpu.SaveBytes() == std::vector<uint8_t>(data, data + size));
    const uint64_t start = cpu.icount();
    // 8 x 1000 instructions: enough to reach faults, mode changes and the restored TLB, few
    // enough that an accepted state costs milliseconds, not the whole fuzzing budget.
    for (int i = 0; i < 8; ++i) {
      const RunResult r = cpu.Run(start + 1000 * (i + 1) < start ? ~uint64_t{0} : start + 1000 * (i + 1));
      if (r.reason == StopReason::kShutdown || r.reason == StopReason::kHalted) break;
    }
  }
  return 0;
}
