// libFuzzer target for the software CPU: random bytes executed as guest code in every mode
// (real, 16-bit and 32-bit protected, 32-bit paged, 64-bit long mode) on a small RAM-only
// machine with a bounded instruction budget. Any input must leave the host intact (no crash,
// no hang, no allocation in proportion to guest values), and the CPU's own invariants must
// hold: the instruction count never passes the target, a save/load round trip mid-run
// changes nothing, and running the same input twice gives the same state (determinism).
//
// Input layout: mode/flags u8, then 32 bytes of register seeds, then code (up to 16 KiB,
// written at kCodeBase and mirrored into the data region so that jumps land on bytes too).
//   flags bit 0-2: mode (0 real, 1 prot16, 2 prot32, 3 prot32 paged, 4+ long64)
//   flags bit 3:   raise the interrupt line every 97 instructions (vector from the input)
//   flags bit 4:   run in slices of 1..64 instructions instead of one budget
//   flags bit 5:   save/load round trip between slices
//   flags bit 6:   run twice from the same start and compare (determinism)
//   flags bit 7:   CPL 3 (user mode) in protected/long mode
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "hv-hooks/cpu/cpu.h"
#include "tests/unit/cpu/flat_machine.h"

namespace {

using namespace vmrr;
using namespace vmrr::testing;

constexpr uint64_t kRamBytes = 1 << 20;
constexpr uint64_t kBudget = 10000;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Outcome {
  std::vector<uint8_t> state;  // SaveBytes: every register, icount and pending events
  uint64_t icount;
  std::vector<uint8_t> ram_digest;
};

Outcome RunOnce(const uint8_t* data, size_t size) {
  const uint8_t flags = data[0];
  const FlatMode modes[] = {FlatMode::kReal, FlatMode::kProt16, FlatMode::kProt32,
                            FlatMode::kProt32Paged, FlatMode::kLong64};
  const FlatMode mode = modes[(flags & 7) > 4 ? 4 : flags & 7];
  TestPlatform platform(kRamBytes);
  platform.next_vector = size > 1 ? data[1] : 0x20;
  Cpu cpu(platform);
  CpuState s = MakeFlatState(mode, platform.memory());
  const uint8_t* seeds = data + 1;
  for (int i = 0; i < 16 && 1 + 2 * i + 1 < 33 && size > 2u + 2 * i; ++i) {
    // Small register values, mostly pointing into RAM so that memory forms do something.
    s.gpr[i] = (uint64_t{seeds[2 * i]} << 8 | seeds[2 * i + 1]) * 7;
  }
  s.gpr[kRsp] = kStackTop;
  if (mode == FlatMode::kReal || mode == FlatMode::kProt16) {
    for (auto& r : s.gpr) r &= 0xffff;
  }
  if ((flags & 0x80) && mode != FlatMode::kReal) {
    // User mode: code and data segments with DPL 3 (the flat GDT's are ring 0, so the hidden
    // parts are set directly, as a loader would after an IRET).
    for (auto& g : s.seg) g.attr |= 3 << 5, g.selector |= 3;
    s.cpl = 3;
    if (mode == FlatMode::kLong64) {
      // Pages are user-accessible already (U/S set in every level).
      Put64(platform.memory(), kTssBase + 4, kStackTop - 0x100);  // RSP0
    }
  }
  if (flags & 0x08) s.rflags |= kFlagIf;
  const size_t header = 33;
  if (size > header) {
    const size_t n = std::min<size_t>(size - header, kCodeSize);
    platform.memory().Write(kCodeBase, data + header, n);
    platform.memory().Write(kDataBase, data + header, std::min<size_t>(n, kDataSize));
  }
  cpu.SetState(s);

  uint64_t slice = 1 + (size > 2 ? data[2] % 64 : 0);
  std::vector<uint8_t> saved;
  for (int round = 0; round < 200 && cpu.icount() < kBudget; ++round) {
    uint64_t target = (flags & 0x10) ? cpu.icount() + slice : kBudget;
    if (flags & 0x08) target = std::min<uint64_t>(target, (cpu.icount() / 97 + 1) * 97);
    target = std::min<uint64_t>(target, kBudget);
    const uint64_t before = cpu.icount();
    const RunResult r = cpu.Run(target);
    Check(r.icount == cpu.icount());
    Check(cpu.icount() <= target);
    Check(cpu.icount() >= before);
    if (r.reason == StopReason::kShutdown) break;
    if (flags & 0x08) cpu.SetIntrLine(cpu.icount() % 194 < 97);
    if (r.reason == StopReason::kHalted) {
      if (!(flags & 0x08)) break;
      cpu.SetIntrLine(true);  // wake it (if IF allows); otherwise the loop bound ends it
    }
    if (flags & 0x20) {
      saved = cpu.SaveBytes();
      const uint64_t icount_before = cpu.icount();
      const uint64_t rip_before = cpu.state().rip;
      cpu.LoadBytes(saved);
      Check(cpu.icount() == icount_before);
      Check(cpu.state().rip == rip_before);
      Check(cpu.SaveBytes() == saved);
    }
  }
  Outcome o{cpu.SaveBytes(), cpu.icount(), {}};
  // A cheap digest of RAM: every 64th byte and the low pages that descriptor tables live in.
  const uint8_t* ram = platform.memory().data();
  for (uint64_t i = 0; i < kRamBytes; i += 64) o.ram_digest.push_back(ram[i]);
  o.ram_digest.insert(o.ram_digest.end(), ram, ram + 0x10000);
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Outcome a = RunOnce(data, size);
  if (data[0] & 0x40) {
    const Outcome b = RunOnce(data, size);
    Check(a.state == b.state);
    Check(a.icount == b.icount);
    Check(a.ram_digest == b.ram_digest);
  }
  return 0;
}
