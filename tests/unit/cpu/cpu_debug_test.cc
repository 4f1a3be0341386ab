// Host-side debugging aids of the CPU: breakpoints that split a decoded block instead of
// single-stepping it, and watchpoints of any number and length in the memory path (only the
// watched pages leave the TLB's fast path). The expected stops come from the hand-assembled
// code below, instruction by instruction.
#include <gtest/gtest.h>

#include "tests/unit/cpu/cpu_test_util.h"

namespace vmrr::testing {
namespace {

// Straight-line long-mode code, one decoded block up to the HLT:
const std::vector<uint8_t> kCode = {
    0x48, 0xc7, 0xc0, 0x2a, 0x00, 0x00, 0x00,              // +0  mov rax, 42          (icount 0)
    0x48, 0x89, 0x04, 0x25, 0x00, 0x80, 0x00, 0x00,        // +7  mov [0x8000], rax    (1)
    0x48, 0x8b, 0x1c, 0x25, 0x08, 0x80, 0x00, 0x00,        // +15 mov rbx, [0x8008]    (2)
    0x48, 0xff, 0xc0,                                      // +23 inc rax              (3)
    0x48, 0x89, 0x04, 0x25, 0x08, 0x80, 0x00, 0x00,        // +26 mov [0x8008], rax    (4)
    0x50,                                                  // +34 push rax             (5)
    0xf4,                                                  // +35 hlt                  (6)
};
const uint64_t kInsnOffsets[] = {0, 7, 15, 23, 26, 34, 35};

class CpuDebugTest : public CpuTest {
 protected:
  void StartCode() { Start(FlatMode::kLong64, kCode); }
  RunResult Continue() { return cpu.Run(cpu.icount() + 1000); }
};

TEST_F(CpuDebugTest, BreakpointInsideABlockStopsBeforeIt) {
  StartCode();
  cpu.AddBreakpoint(kCodeBase + 15);
  cpu.AddBreakpoint(kCodeBase + 26);
  RunResult r = Continue();
  EXPECT_EQ(r.reason, StopReason::kBreakpoint);
  EXPECT_EQ(r.icount, 2u);
  EXPECT_EQ(st().rip, kCodeBase + 15);
  EXPECT_EQ(Get64(mem(), kDataBase), 42u);  // the instruction before it retired
  r = Continue();
  EXPECT_EQ(r.reason, StopReason::kBreakpoint);
  EXPECT_EQ(r.icount, 4u);
  EXPECT_EQ(st().rip, kCodeBase + 26);
  r = Continue();
  EXPECT_EQ(r.reason, StopReason::kHalted);
  EXPECT_EQ(reg(kRax), 43u);
}

TEST_F(CpuDebugTest, BreakpointOnEachInstructionStopsAtItsIcount) {
  for (size_t i = 1; i < std::size(kInsnOffsets); ++i) {
    SCOPED_TRACE(i);
    StartCode();
    cpu.set_icount(0);
    cpu.ClearBreakpoints();
    cpu.AddBreakpoint(kCodeBase + kInsnOffsets[i]);
    cpu.AddBreakpoint(kCodeBase + 0x1000);  // elsewhere: must not matter
    const RunResult r = Continue();
    EXPECT_EQ(r.reason, StopReason::kBreakpoint);
    EXPECT_EQ(r.icount, i);
    EXPECT_EQ(st().rip, kCodeBase + kInsnOffsets[i]);
  }
}

TEST_F(CpuDebugTest, WriteWatchpointStopsAfterTheWritingInstruction) {
  StartCode();
  cpu.SetWatchpoints({{kDataBase + 4, 2, kWatchWrite}});  // inside the 8-byte store at +7
  RunResult r = Continue();
  ASSERT_EQ(r.reason, StopReason::kWatchpoint);
  EXPECT_EQ(r.icount, 2u);
  EXPECT_EQ(st().rip, kCodeBase + 15);
  const WatchHit& h = cpu.last_watch_hit();
  EXPECT_EQ(h.icount, 1u);
  EXPECT_EQ(h.rip, kCodeBase + 7);
  EXPECT_EQ(h.address, kDataBase + 4);
  EXPECT_EQ(h.kind, kWatchWrite);
  EXPECT_EQ(Get64(mem(), kDataBase), 42u);
  // The read of 0x8008 and the write there do not overlap [0x8004, 0x8006).
  r = Continue();
  EXPECT_EQ(r.reason, StopReason::kHalted);
  EXPECT_EQ(Get64(mem(), kDataBase + 8), 43u);
  EXPECT_EQ(reg(kRbx), 0u);
}

TEST_F(CpuDebugTest, ReadAndAccessWatchpoints) {
  StartCode();
  cpu.SetWatchpoints({{kDataBase + 8, 8, kWatchRead}});
  RunResult r = Continue();
  ASSERT_EQ(r.reason, StopReason::kWatchpoint);
  EXPECT_EQ(cpu.last_watch_hit().icount, 2u);
  EXPECT_EQ(cpu.last_watch_hit().kind, kWatchRead);
  EXPECT_EQ(Continue().reason, StopReason::kHalted);  // the write at icount 4 is not watched

  StartCode();
  cpu.set_icount(0);
  cpu.SetWatchpoints({{kDataBase + 15, 1, kWatchRead | kWatchWrite}});
  r = Continue();
  ASSERT_EQ(r.reason, StopReason::kWatchpoint);
  EXPECT_EQ(cpu.last_watch_hit().icount, 2u);
  EXPECT_EQ(cpu.last_watch_hit().address, kDataBase + 15);
  r = Continue();
  ASSERT_EQ(r.reason, StopReason::kWatchpoint);
  EXPECT_EQ(r.icount, 5u);
  EXPECT_EQ(cpu.last_watch_hit().icount, 4u);
  EXPECT_EQ(cpu.last_watch_hit().kind, kWatchWrite);
}

TEST_F(CpuDebugTest, StackWriteOfPushIsWatched) {
  StartCode();
  cpu.SetWatchpoints({{kStackTop - 8, 8, kWatchWrite}});
  const RunResult r = Continue();
  ASSERT_EQ(r.reason, StopReason::kWatchpoint);
  EXPECT_EQ(cpu.last_watch_hit().icount, 5u);
  EXPECT_EQ(cpu.last_watch_hit().rip, kCodeBase + 34);
  EXPECT_EQ(Get64(mem(), kStackTop - 8), 43u);
}

TEST_F(CpuDebugTest, WatchpointSetWhileThePageIsInTheTlb) {
  StartCode();
  ASSERT_EQ(cpu.Run(2).reason, StopReason::kTargetReached);  // the store to 0x8000 filled the TLB
  cpu.SetWatchpoints({{kDataBase + 8, 8, kWatchWrite}});
  const RunResult r = Continue();
  ASSERT_EQ(r.reason, StopReason::kWatchpoint);
  EXPECT_EQ(r.icount, 5u);
  EXPECT_EQ(cpu.last_watch_hit().icount, 4u);
  cpu.SetWatchpoints({});
  EXPECT_EQ(Continue().reason, StopReason::kHalted);
}

TEST_F(CpuDebugTest, WatchpointsAreNotStateAndDoNotChangeExecution) {
  StartCode();
  const std::vector<uint8_t> before = cpu.SaveBytes();
  cpu.SetWatchpoints({{kDataBase, 16, kWatchRead | kWatchWrite}, {kStackTop - 8, 8, kWatchWrite}});
  EXPECT_EQ(cpu.SaveBytes(), before);
  int stops = 0;
  while (Continue().reason == StopReason::kWatchpoint) ++stops;
  EXPECT_EQ(stops, 4);  // icounts 1, 2, 4, 5
  const std::vector<uint8_t> watched_end = cpu.SaveBytes();

  const uint8_t zeros[16] = {};
  mem().Write(kDataBase, zeros, sizeof zeros);  // as the first run found it
  StartCode();
  cpu.set_icount(0);
  cpu.SetWatchpoints({});
  EXPECT_EQ(Continue().reason, StopReason::kHalted);
  const std::vector<uint8_t> plain_end = cpu.SaveBytes();
  ASSERT_EQ(plain_end.size(), watched_end.size());
  for (size_t i = 0; i < plain_end.size(); ++i) EXPECT_EQ(plain_end[i], watched_end[i]) << "byte " << i;
}

TEST_F(CpuDebugTest, RepStringIntoAWatchedRange) {
  // rep stosb: 16 bytes of AL at 0x8100; the watched byte is the ninth.
  Start(FlatMode::kLong64, {0xf3, 0xaa, 0xf4}, [](CpuState& s) {
    s.gpr[kRax] = 0x5a;
    s.gpr[kRdi] = kDataBase + 0x100;
    s.gpr[kRcx] = 16;
  });
  cpu.SetWatchpoints({{kDataBase + 0x108, 1, kWatchWrite}});
  const RunResult r = Continue();
  ASSERT_EQ(r.reason, StopReason::kWatchpoint);
  EXPECT_EQ(cpu.last_watch_hit().icount, 0u);
  EXPECT_EQ(cpu.last_watch_hit().address, kDataBase + 0x108);
  while (Continue().reason == StopReason::kWatchpoint) {
  }
  uint8_t out[16] = {};
  mem().Read(kDataBase + 0x100, out, 16);
  for (unsigned i = 0; i < 16; ++i) EXPECT_EQ(out[i], 0x5a) << i;
  EXPECT_EQ(reg(kRcx), 0u);
}

TEST_F(CpuDebugTest, WatchpointsAtTheTopOfTheAddressSpace) {
  StartCode();
  cpu.SetWatchpoints({{~uint64_t{0} - 3, 4, kWatchWrite},
                      {~uint64_t{0} - 0xfff, ~uint64_t{0}, kWatchRead},  // length past the end
                      {kDataBase, 0, kWatchWrite}});                      // empty: ignored
  EXPECT_EQ(cpu.watchpoints().size(), 2u);
  EXPECT_EQ(Continue().reason, StopReason::kHalted);
  EXPECT_EQ(reg(kRax), 43u);
}

}  // namespace
}  // namespace vmrr::testing
