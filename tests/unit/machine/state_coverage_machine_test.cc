// State coverage of the Machine's own run-loop state (where the loop must next look at timers
// and input, and whether a device access since may have moved a deadline): it must reach the
// snapshot, and a machine restored from a snapshot taken anywhere (right after an I/O
// instruction, between deadlines) must go on exactly like the original, interrupt for
// interrupt and byte for byte, also when it had run elsewhere before the restore.
#include <gtest/gtest.h>

#include "hv-hooks/machine/machine.h"
#include "tests/unit/machine/test_images.h"

namespace vmrr {
namespace {

MachineConfig Config() {
  MachineConfig c;
  c.memory_bytes = 16ull << 20;
  return c;
}

// test_images.h has a FakeEnvironment too, but this binary also links the device tests'
// test::FakeEnvironment (another class of the same name), so this file has its own.
class Env : public Environment {
 public:
  int64_t SampleTime(uint64_t) override { return now_ns += 1000; }
  std::vector<uint8_t> PollConsoleInput(uint64_t, size_t) override { return {}; }
  bool PollNetFrame(uint64_t, std::vector<uint8_t>*) override { return false; }
  void GetEntropy(uint64_t, std::span<uint8_t> out) override {
    for (auto& b : out) b = static_cast<uint8_t>(entropy++);
  }
  void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) override {
    console.append(bytes.begin(), bytes.end());
    console_icounts.insert(console_icounts.end(), bytes.size(), icount);
  }
  void NetFrameSent(uint64_t, std::span<const uint8_t>) override {}
  bool WaitForInput(uint64_t, int64_t) override { return false; }

  int64_t now_ns = 1'700'000'000'000'000'000;
  uint64_t entropy = 0;
  std::string console;
  std::vector<uint64_t> console_icounts;
};

struct Events : MachineObserver {
  void OnInterrupt(uint64_t icount, uint8_t vector) override { list.emplace_back(icount, vector); }
  std::vector<std::pair<uint64_t, uint8_t>> list;
};

// A machine with an observer, to be run to the end from wherever it is.
struct Guest {
  Env env;
  Machine m{Config(), env};
  Events events;
  explicit Guest(const std::vector<uint8_t>& image) {
    m.SetObserver(&events);
    m.LoadKernelBytes(image, "guest");
  }
  struct Future {
    std::vector<std::pair<uint64_t, uint8_t>> interrupts;
    std::string console;
    std::vector<uint64_t> console_icounts;
    MachineStop stop;
    uint64_t icount;
    int exit_status;
  };
  // Runs to the end in chunks (chunking must not matter either) and reports what happened.
  Future Finish(uint64_t chunk) {
    events.list.clear();
    const size_t mark = env.console.size();
    MachineResult r;
    for (uint64_t t = m.icount() + chunk;; t += chunk) {
      r = m.Run(t);
      if (r.stop != MachineStop::kTargetReached) break;
    }
    return {events.list, env.console.substr(mark),
            std::vector<uint64_t>(env.console_icounts.begin() + static_cast<ptrdiff_t>(mark),
                                  env.console_icounts.end()),
            r.stop, r.icount, r.exit_status};
  }
};

void ExpectSameFuture(const Guest::Future& a, const Guest::Future& b, const std::string& what) {
  EXPECT_EQ(a.interrupts, b.interrupts) << what << ": interrupts (icount, vector) differ";
  EXPECT_EQ(a.console, b.console) << what;
  EXPECT_EQ(a.console_icounts, b.console_icounts) << what << ": console output at other icounts";
  EXPECT_EQ(a.stop, b.stop) << what;
  EXPECT_EQ(a.icount, b.icount) << what;
  EXPECT_EQ(a.exit_status, b.exit_status) << what;
}

TEST(StateCoverage, MachineRunLoopStateReachesTheSnapshot) {
  // Ten NOPs then an exit: the two machines below differ only in their run-loop state.
  std::vector<uint8_t> code(10, 0x90);
  code.insert(code.end(), test::kHelloCode.begin(), test::kHelloCode.end());
  const std::vector<uint8_t> image = test::CodeGuest(code);
  Guest looked(image), fresh(image);
  ASSERT_EQ(looked.m.Run(5).stop, MachineStop::kTargetReached);  // next_stop set, recheck clear
  fresh.m.cpu().set_icount(5);
  fresh.m.cpu().SetState(looked.m.cpu().state());  // recheck still set from loading the kernel
  EXPECT_NE(looked.m.SaveSnapshot(), fresh.m.SaveSnapshot())
      << "Machine: the run-loop state (next_stop, recheck) does not reach the snapshot";
  ExpectSameFuture(looked.Finish(3), fresh.Finish(3), "run-loop state");
}

// Snapshot at `at` in the original; restore into a fresh machine and into one that first ran
// the same guest to `elsewhere`; all three must have the same future.
void CheckRestoreAt(const std::vector<uint8_t>& image, uint64_t at, uint64_t elsewhere,
                    uint64_t chunk) {
  SCOPED_TRACE("snapshot at icount " + std::to_string(at));
  Guest a(image);
  if (a.m.Run(at).stop != MachineStop::kTargetReached) return;  // the guest ended earlier
  const std::vector<uint8_t> snap = a.m.SaveSnapshot();
  Guest fresh(image), used(image);
  used.m.Run(elsewhere);
  fresh.m.LoadSnapshot(snap);
  used.m.LoadSnapshot(snap);
  const Guest::Future fa = a.Finish(chunk);
  ExpectSameFuture(fa, fresh.Finish(chunk), "restored into a fresh machine");
  ExpectSameFuture(fa, used.Finish(chunk), "restored over a machine that ran elsewhere");
}

TEST(StateCoverage, MachineRestoreAnywhereInAnIdleGuest) {
  // The HLT timer guest: every instruction boundary, including those right after the PIC and
  // PIT programming (recheck pending) and the HLTs (time jumps).
  const std::vector<uint8_t> image = test::TimerGuest(true);
  Guest probe(image);
  const uint64_t end = probe.Finish(~uint64_t{0} / 2).icount;
  ASSERT_GT(end, 20u);
  for (uint64_t at = 1; at < end; ++at) CheckRestoreAt(image, at, end - 1, ~uint64_t{0} / 2);
}

TEST(StateCoverage, MachineRestoreBetweenDeadlinesInABusyGuest) {
  // The busy timer guest: a snapshot where the next stop is a PIT deadline, restored over a
  // machine whose own next stop was a later one.
  const std::vector<uint8_t> image = test::TimerGuest(false);
  // 17: right after the OUT that loads the PIT count (the loop must recompute its next stop).
  for (uint64_t at : {17ull, 1'500'000ull}) CheckRestoreAt(image, at, 2'500'000, 1'000'003);
}

TEST(StateCoverage, MachineRestoreRightAfterArmingAOneShotTimer) {
  // The busy timer guest with the PIT in mode 0 (one interrupt, at terminal count) and an exit
  // after it. The OUT that loads the count is the last device access before a long busy
  // stretch: a restored machine must still know that its next stop has to be recomputed
  // (recheck), or the interrupt lands late.
  std::vector<uint8_t> code = test::TimerCode(false);
  ASSERT_EQ(code[29], 0x34);
  code[29] = 0x30;  // PIT counter 0, lobyte/hibyte, mode 0
  ASSERT_EQ(code[45], 0x05);
  code[45] = 0x01;  // exit after one interrupt
  const std::vector<uint8_t> image = test::MakeElf64(
      0x100000, {{0x100000, code}, {0x200000, test::IdtWithTimerVector(0x100080)}});
  Guest probe(image);
  const Guest::Future whole = probe.Finish(~uint64_t{0} / 2);
  ASSERT_EQ(whole.stop, MachineStop::kGuestExit);
  ASSERT_EQ(whole.interrupts.size(), 1u);
  for (uint64_t at : {13ull, 17ull, 18ull}) CheckRestoreAt(image, at, 500'000, ~uint64_t{0} / 2);
}

}  // namespace
}  // namespace vmrr
