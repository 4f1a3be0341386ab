// libFuzzer target for the software CPU: random bytes executed as guest code in every mode
// (real, 16-bit and 32-bit protected, 32-bit paged, 64-bit long mode) on a small RAM-only
// machine with a bounded instruction budget. Any input must leave the host intact (no crash,
// no hang, no allocation in proportion to guest values), and the CPU's own invariants must
// hold: the instruction count never passes the target, a save/load round trip mid-run
// changes nothing, and running the same input twice gives the same state (determinism).
//
// Input layout: mode/flags u8, then 32 bytes of register seeds, then code (up to 16 KiB,
// written at kCodeBase and mirrored into the data region so that jumps land on bytes too).
// Bits 6-7 of byte 2 (the slice length uses bits 0-5 of it) choose the FPU set-up:
//   0: x87 and SSE usable (CR0.MP|NE, EM=TS=0, CR4.OSFXSR|OSXMMEXCPT): unmasked SIMD
//      exceptions raise #XM; 1: the same without OSXMMEXCPT (they raise #UD); 2: as 0 plus
//      CR0.TS (every x87/SSE instruction raises #NM); 3: the flat machine's own CR0/CR4
//      (OSFXSR clear: SSE raises #UD, x87 usable).
//
// Speed (>= 1,000 executions per second under ASan+UBSan): one machine and one CPU for the
// whole process. Between inputs the CPU is Reset (icount, pending events, TLB, decoded
// blocks), the platform's counters are cleared, and every RAM page written since the last
// input is zeroed (the memory's dirty bits name them; the untouched ones are still zero), so
// each input starts from the same state as on a fresh machine.
//   flags bit 0-2: mode (0 real, 1 prot16, 2 prot32, 3 prot32 paged, 4+ long64)
//   flags bit 3:   raise the interrupt line every 97 instructions (vector from the input)
//   flags bit 4:   run in slices of 1..64 instructions instead of one budget
//   flags bit 5:   save/load round trip between slices (the first 8, then every 8th)
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

constexpr uint64_t kCr0Mp = 1u << 1, kCr0Em = 1u << 2, kCr0Ts = 1u << 3, kCr0Ne = 1u << 5;
constexpr uint64_t kCr4Osfxsr = 1u << 9, kCr4Osxmmexcpt = 1u << 10;

constexpr uint64_t kRamBytes = 1 << 20;
constexpr uint64_t kBudget = 500;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Outcome {
  std::vector<uint8_t> state;  // SaveBytes: every register, icount and pending events
  uint64_t icount;
  std::vector<uint8_t> ram;    // every page written during the run: index, then contents
};

// The flat machine of one mode: its state and the RAM pages MakeFlatState wrote (GDT, IDT,
// page tables), built once and copied in for each input.
struct FlatImage {
  bool built = false;
  CpuState state;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> pages;
};

struct Machine {
  TestPlatform platform{kRamBytes};
  Cpu cpu{platform};
  FlatImage images[5];
};

Machine& TheMachine() {
  static Machine* m = new Machine;  // never destroyed: no exit-time teardown to fuzz
  return *m;
}

// Back to the state of a new machine: RAM all zero, CPU reset, platform counters cleared.
void ResetMachine(Machine& m) {
  GuestMemory& mem = m.platform.memory();
  for (uint64_t p = 0; p < mem.pages(); ++p) {
    if (mem.IsDirty(p)) std::memset(mem.data() + p * kGuestPageSize, 0, kGuestPageSize);
  }
  mem.ClearDirty();
  m.cpu.Reset();  // also unmarks the code pages (no decoded block is left)
  m.platform.acks = 0;
  m.platform.outs.clear();
  m.platform.port_in_value = 0xffffffffu;
  m.platform.tsc = 0;
}

// MakeFlatState(mode) on the reset machine, from the cached image after the first time.
CpuState FlatState(Machine& m, FlatMode mode) {
  GuestMemory& mem = m.platform.memory();
  FlatImage& img = m.images[static_cast<int>(mode)];
  if (!img.built) {
    img.state = MakeFlatState(mode, mem);  // RAM is all zero here: the dirty pages are its
    for (uint64_t p = 0; p < mem.pages(); ++p) {
      if (!mem.IsDirty(p)) continue;
      const uint8_t* b = mem.data() + p * kGuestPageSize;
      img.pages.emplace_back(p, std::vector<uint8_t>(b, b + kGuestPageSize));
    }
    img.built = true;
    return img.state;
  }
  for (const auto& [page, bytes] : img.pages) mem.Write(page * kGuestPageSize, bytes.data(), bytes.size());
  return img.state;
}

// The pages written since the last ResetMachine, for the determinism comparison.
std::vector<uint8_t> WrittenPages(const GuestMemory& mem) {
  std::vector<uint8_t> out;
  for (uint64_t p = 0; p < mem.pages(); ++p) {
    if (!mem.IsDirty(p)) continue;
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(p >> (8 * i)));
    out.insert(out.end(), mem.data() + p * kGuestPageSize, mem.data() + (p + 1) * kGuestPageSize);
  }
  return out;
}

// want_full: also the saved state and the written pages (for the determinism comparison).
Outcome RunOnce(const uint8_t* data, size_t size, bool want_full) {
  const uint8_t flags = data[0];
  const FlatMode modes[] = {FlatMode::kReal, FlatMode::kProt16, FlatMode::kProt32,
                            FlatMode::kProt32Paged, FlatMode::kLong64};
  const FlatMode mode = modes[(flags & 7) > 4 ? 4 : flags & 7];
  Machine& m = TheMachine();
  ResetMachine(m);
  TestPlatform& platform = m.platform;
  Cpu& cpu = m.cpu;
  platform.next_vector = size > 1 ? data[1] : 0x20;
  CpuState s = FlatState(m, mode);
  switch (size > 2 ? data[2] >> 6 : 0) {
    case 0:
      s.cr0 = (s.cr0 | kCr0Mp | kCr0Ne) & ~(kCr0Em | kCr0Ts);
      s.cr4 |= kCr4Osfxsr | kCr4Osxmmexcpt;
      break;
    case 1:
      s.cr0 = (s.cr0 | kCr0Mp | kCr0Ne) & ~(kCr0Em | kCr0Ts);
      s.cr4 |= kCr4Osfxsr;
      break;
    case 2:
      s.cr0 = (s.cr0 | kCr0Mp | kCr0Ne | kCr0Ts) & ~kCr0Em;
      s.cr4 |= kCr4Osfxsr | kCr4Osxmmexcpt;
      break;
    default:
      break;
  }
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
    // The round trip costs three saves and a load (and the load drops every decoded block and
    // the TLB, a third of an input's time when it ran at the first 8 slices and every 8th):
    // done at the first 2 slices and at every 32nd after that.
    if ((flags & 0x20) && (round < 2 || round % 32 == 0)) {
      saved = cpu.SaveBytes();
      const uint64_t icount_before = cpu.icount();
      const uint64_t rip_before = cpu.state().rip;
      cpu.LoadBytes(saved);
      Check(cpu.icount() == icount_before);
      Check(cpu.state().rip == rip_before);
      Check(cpu.SaveBytes() == saved);
    }
  }
  Outcome o{{}, cpu.icount(), {}};
  if (want_full) {
    o.state = cpu.SaveBytes();
    // Every page written (tables, code, stack, whatever the guest stored to), in full.
    o.ram = WrittenPages(platform.memory());
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool twice = (data[0] & 0x40) != 0;
  const Outcome a = RunOnce(data, size, twice);
  if (twice) {
    const Outcome b = RunOnce(data, size, true);
    Check(a.state == b.state);
    Check(a.icount == b.icount);
    Check(a.ram == b.ram);
  }
  return 0;
}
