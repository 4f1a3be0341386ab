// libFuzzer target for Cpu::LoadBytes: hostile snapshot bytes. LoadBytes must either reject
// them with StateError and leave the CPU exactly as it was, or accept them; an accepted state
// must then run (a bounded number of instructions on a small RAM-only machine) without
// harming the host, and save back to the same bytes it was loaded from.
//
// Speed: one machine and one CPU for the whole process, returned to a new machine's state
// before each input (RAM pages written since the last input zeroed, CPU Reset), then given
// the long-mode flat state with x87 and SSE enabled (CR0.MP|NE, CR4.OSFXSR|OSXMMEXCPT) as
// the state a rejected load must leave untouched.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
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

struct Machine {
  TestPlatform platform{1 << 20};
  Cpu cpu{platform};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Machine* machine = new Machine;  // never destroyed: no exit-time teardown to fuzz
  TestPlatform& platform = machine->platform;
  Cpu& cpu = machine->cpu;
  GuestMemory& mem = platform.memory();
  for (uint64_t p = 0; p < mem.pages(); ++p) {
    if (mem.IsDirty(p)) std::memset(mem.data() + p * kGuestPageSize, 0, kGuestPageSize);
  }
  mem.ClearDirty();
  cpu.Reset();
  platform.acks = 0;
  platform.outs.clear();
  CpuState start = MakeFlatState(FlatMode::kLong64, mem);
  start.cr0 |= 0x22;    // MP, NE (EM and TS clear)
  start.cr4 |= 0x600;   // OSFXSR, OSXMMEXCPT
  cpu.SetState(start);
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
    // 8 x 64 instructions: enough to reach faults, mode changes and the restored TLB, few
    // enough that an accepted state costs well under a millisecond under ASan.
    for (int i = 0; i < 8; ++i) {
      const RunResult r = cpu.Run(start + 64 * (i + 1) < start ? ~uint64_t{0} : start + 64 * (i + 1));
      if (r.reason == StopReason::kShutdown || r.reason == StopReason::kHalted) break;
    }
  }
  return 0;
}
