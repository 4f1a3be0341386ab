// Machine: run loop exactness, guest exit, hostile guests, snapshots and digests.
#include <gtest/gtest.h>
#include <xxhash.h>

#include "hv-hooks/machine/platform_devices.h"
#include "hv-hooks/machine/loader.h"
#include "hv-hooks/machine/machine.h"
#include "logformat/byte_order.h"
#include "tests/unit/machine/test_images.h"

namespace vmrr {
namespace {

using test::FakeEnvironment;

MachineConfig SmallConfig() {
  MachineConfig c;
  c.memory_bytes = 16ull << 20;
  return c;
}

struct Recorder : MachineObserver {
  void OnInterrupt(uint64_t icount, uint8_t vector) override { events.emplace_back(icount, vector); }
  std::vector<std::pair<uint64_t, uint8_t>> events;
};

TEST(MachineRun, HelloGuestWritesConsoleAndExitsWithDebugExitStatus) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::CodeGuest(test::kHelloCode), "hello");
  const MachineResult r = m.Run();
  EXPECT_EQ(r.stop, MachineStop::kGuestExit);
  EXPECT_EQ(r.exit_status, 7);  // (3 << 1) | 1
  EXPECT_EQ(env.console, "Hi");
  // out dx,eax is the 8th instruction: it retires, then the machine stops.
  EXPECT_EQ(r.icount, 8u);
  // Run after the exit returns the exit again without executing.
  EXPECT_EQ(m.Run().stop, MachineStop::kGuestExit);
  EXPECT_EQ(m.icount(), 8u);
}

TEST(MachineRun, TargetIcountStopsExactly) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::TimerGuest(false), "timer");
  for (uint64_t target : {1ull, 17ull, 1000ull, 123457ull, 2'500'001ull}) {
    const MachineResult r = m.Run(target);
    EXPECT_EQ(r.stop, MachineStop::kTargetReached);
    EXPECT_EQ(r.icount, target);
    EXPECT_EQ(m.icount(), target);
  }
}

struct TimerRun {
  std::vector<std::pair<uint64_t, uint8_t>> irqs;
  std::string console;
  MachineResult result;
  uint64_t digest;
};

TimerRun RunTimerGuest(bool use_hlt, uint64_t chunk) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  Recorder rec;
  m.SetObserver(&rec);
  m.LoadKernelBytes(test::TimerGuest(use_hlt), "timer");
  MachineResult r;
  // Running in chunks must not change where interrupts land.
  for (uint64_t t = chunk;; t += chunk) {
    r = m.Run(t);
    if (r.stop != MachineStop::kTargetReached) break;
  }
  return {rec.events, env.console, r, m.StateDigest(DigestScope::kFull)};
}

TEST(MachineRun, TimerInterruptsLandAtTheSameIcountInEveryRun) {
  const TimerRun a = RunTimerGuest(false, ~uint64_t{0} / 2);
  const TimerRun b = RunTimerGuest(false, 777'777);
  ASSERT_EQ(a.result.stop, MachineStop::kGuestExit);
  EXPECT_EQ(a.result.exit_status, 1);
  EXPECT_EQ(a.console, "TTTTT");
  ASSERT_EQ(a.irqs.size(), 5u);
  for (const auto& [icount, vector] : a.irqs) EXPECT_EQ(vector, 0x20);
  EXPECT_EQ(a.irqs, b.irqs);
  EXPECT_EQ(a.result.icount, b.result.icount);
  EXPECT_EQ(a.digest, b.digest);
  // PIT count 1193 at 1.193182 MHz = 999,847 ns = as many instructions in icount mode.
  for (size_t i = 1; i < a.irqs.size(); ++i) {
    const uint64_t gap = a.irqs[i].first - a.irqs[i - 1].first;
    EXPECT_NEAR(static_cast<double>(gap), 999'847.0, 8.0) << i;
  }
}

TEST(MachineRun, HaltingGuestSkipsIdleTimeInIcountMode) {
  const TimerRun a = RunTimerGuest(true, ~uint64_t{0} / 2);
  const TimerRun b = RunTimerGuest(true, 3);
  ASSERT_EQ(a.result.stop, MachineStop::kGuestExit);
  EXPECT_EQ(a.console, "TTTTT");
  EXPECT_EQ(a.irqs, b.irqs);
  EXPECT_EQ(a.digest, b.digest);
  // Idle time costs no instructions: five ticks in well under a thousand instructions.
  EXPECT_LT(a.result.icount, 1000u);
}

TEST(MachineRun, EveryHltIsAnInputPointInIcountMode) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::TimerGuest(true), "timer");
  ASSERT_EQ(m.Run().stop, MachineStop::kGuestExit);
  // Fewer than 1000 instructions: no icount-spaced input point was due, yet the UART asked
  // for input at each HLT that idled (the first tick arrives right after STI, before any HLT;
  // the other four each end an HLT).
  EXPECT_EQ(env.console_polls, 4);
}

TEST(MachineRun, BreakpointsHitAtEveryBoundaryIncludingAfterIoExits) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::CodeGuest(test::kHelloCode), "hello");
  m.AddBreakpoint(0x100007);  // right after the first OUT (an I/O exit)
  m.AddBreakpoint(0x10000a);  // right after the second OUT
  MachineResult r = m.Run();
  EXPECT_EQ(r.stop, MachineStop::kBreakpoint);
  EXPECT_EQ(r.icount, 3u);
  EXPECT_EQ(m.cpu().state().rip, 0x100007u);
  EXPECT_EQ(env.console, "H");
  r = m.Run();  // continuing executes the instruction at the breakpoint
  EXPECT_EQ(r.stop, MachineStop::kBreakpoint);
  EXPECT_EQ(r.icount, 5u);
  EXPECT_EQ(m.cpu().state().rip, 0x10000au);
  m.ClearBreakpoints();
  r = m.Run();
  EXPECT_EQ(r.stop, MachineStop::kGuestExit);
  EXPECT_EQ(env.console, "Hi");
}

TEST(MachineRun, HltWithInterruptsDisabledIsHaltedForever) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::CodeGuest({0x90, 0xf4}), "cli-hlt");  // nop; hlt (IF=0 at entry)
  const MachineResult r = m.Run();
  EXPECT_EQ(r.stop, MachineStop::kHaltedForever);
  EXPECT_EQ(r.icount, 2u);
}

TEST(MachineRun, HltWithNothingToWaitForEndsWhenNoInputCanArrive) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::CodeGuest({0xfb, 0xf4}), "sti-hlt");  // sti; hlt
  const MachineResult r = m.Run();
  EXPECT_EQ(r.stop, MachineStop::kHaltedForever);
  EXPECT_GE(env.waits, 1);
}

TEST(MachineRun, TripleFaultIsShutdown) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  // nop; ud2 with IDTR limit 0: #UD -> #GP -> #DF -> triple fault.
  m.LoadKernelBytes(test::CodeGuest({0x90, 0x0f, 0x0b}), "ud2");
  const MachineResult r = m.Run();
  EXPECT_EQ(r.stop, MachineStop::kShutdown);
  EXPECT_EQ(r.icount, 1u);
  EXPECT_TRUE(m.cpu().state().shutdown);
  EXPECT_EQ(m.Run().stop, MachineStop::kShutdown);
}

// ACPI power registers (platform_layout.h, the FADT's sleep control and reset registers).
TEST(MachineRun, AcpiSleepTypeS5PowersOffAndTheResetRegisterResets) {
  struct Case {
    const char* name;
    uint8_t port_low, value;
    MachineStop want;
  };
  // mov dx, 0x06XX; mov al, value; out dx, al; hlt
  const Case cases[] = {
      {"S5 with SLP_EN", 0x00, (5 << 2) | 0x20, MachineStop::kPowerOff},
      {"reset value", 0x02, 0x01, MachineStop::kReset},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeEnvironment env;
    Machine m(SmallConfig(), env);
    m.LoadKernelBytes(test::CodeGuest({0x66, 0xba, c.port_low, 0x06, 0xb0, c.value, 0xee, 0xf4}),
                      c.name);
    const MachineResult r = m.Run();
    EXPECT_EQ(r.stop, c.want);
    EXPECT_EQ(r.icount, 3u);  // the OUT retired, the HLT did not run
    EXPECT_EQ(m.Run().stop, c.want);  // the machine stays stopped
  }
  // Writes that are not a request: S5 without SLP_EN, another sleep type, another reset value.
  const uint8_t ignored[][2] = {{0x00, 5 << 2}, {0x00, (3 << 2) | 0x20}, {0x02, 0x06}};
  for (const auto& w : ignored) {
    FakeEnvironment env;
    Machine m(SmallConfig(), env);
    // out; then the debug-exit port with 0 (status 1)
    m.LoadKernelBytes(test::CodeGuest({0x66, 0xba, w[0], 0x06, 0xb0, w[1], 0xee, 0x66, 0xba, 0xf4,
                                       0x00, 0x31, 0xc0, 0xef, 0xf4}),
                      "ignored");
    const MachineResult r = m.Run();
    EXPECT_EQ(r.stop, MachineStop::kGuestExit) << int{w[0]} << " " << int{w[1]};
    EXPECT_EQ(r.exit_status, 1);
  }
}

TEST(MachineRun, RequestStopBeforeRunStopsAtOnce) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::TimerGuest(false), "timer");
  m.RequestStop();
  const MachineResult r = m.Run();
  EXPECT_EQ(r.stop, MachineStop::kExitRequested);
  EXPECT_EQ(r.icount, 0u);
  EXPECT_EQ(m.Run(10).stop, MachineStop::kTargetReached);
}

TEST(MachineRun, RdrandTakesEntropyFromTheEnvironment) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  // rdrand rax; mov dx,0xf4; out dx,eax (exit code = low byte pattern)
  m.LoadKernelBytes(test::CodeGuest({0x48, 0x0f, 0xc7, 0xf0, 0x66, 0xba, 0xf4, 0x00, 0xef, 0xf4}),
                    "rdrand");
  const uint64_t before = env.entropy_counter;
  const MachineResult r = m.Run();
  EXPECT_EQ(r.stop, MachineStop::kGuestExit);
  EXPECT_EQ(env.entropy_counter - before, 8u);
  // FakeEnvironment's bytes are counter values: rax = 0x0706050403020100 + 8*k per byte.
  const uint32_t b0 = static_cast<uint32_t>(before);
  const uint32_t eax = (b0 & 0xff) | ((b0 + 1) & 0xff) << 8 | ((b0 + 2) & 0xff) << 16 |
                       ((b0 + 3) & 0xff) << 24;
  EXPECT_EQ(r.exit_status, static_cast<int>((eax << 1) | 1));
}

TEST(MachineRun, ApicMsrsReachTheLocalApic) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  // mov ecx,0x1b; rdmsr; shr eax,8; mov dx,0xf4; out dx,eax; hlt
  m.LoadKernelBytes(test::CodeGuest({0xb9, 0x1b, 0x00, 0x00, 0x00, 0x0f, 0x32, 0xc1, 0xe8, 0x08,
                                     0x66, 0xba, 0xf4, 0x00, 0xef, 0xf4}),
                    "apic-base");
  MachineResult r = m.Run();
  ASSERT_EQ(r.stop, MachineStop::kGuestExit);
  EXPECT_EQ(r.exit_status, static_cast<int>(((m.devices().lapic().apic_base_msr() >> 8) << 1) | 1));
  EXPECT_EQ(m.devices().lapic().apic_base_msr() & ~uint64_t{0xfff}, 0xfee00000u);

  // Enable the LAPIC (SVR), LVT timer in TSC-deadline mode (vector 0x40), wrmsr
  // IA32_TSC_DEADLINE = 5000, read it back through rdmsr, exit with it.
  FakeEnvironment env2;
  Machine m2(SmallConfig(), env2);
  m2.LoadKernelBytes(test::CodeGuest({0xb8, 0xf0, 0x00, 0xe0, 0xfe, 0xc7, 0x00, 0xff, 0x01, 0x00,
                                      0x00, 0xb8, 0x20, 0x03, 0xe0, 0xfe, 0xc7, 0x00, 0x40, 0x00,
                                      0x04, 0x00, 0xb9, 0xe0, 0x06, 0x00, 0x00, 0xb8, 0x88, 0x13,
                                      0x00, 0x00, 0x31, 0xd2, 0x0f, 0x30, 0x31, 0xc0, 0x0f, 0x32,
                                      0x66, 0xba, 0xf4, 0x00, 0xef, 0xf4}),
                     "tsc-deadline");
  r = m2.Run();
  ASSERT_EQ(r.stop, MachineStop::kGuestExit);
  EXPECT_EQ(r.exit_status, (5000 << 1) | 1);
  EXPECT_EQ(m2.devices().lapic().tsc_deadline(), 5000u);
}

// Guests that do what no kernel should: each must end in an architectural stop (or reach
// the instruction limit) and leave a machine that still snapshots and restores.
TEST(MachineRun, HostileGuestsNeverHurtTheHost) {
  const std::vector<std::vector<uint8_t>> guests = {
      // movabs rax,0xfeb00000; jmp rax: execute from the virtio MMIO window
      {0x48, 0xb8, 0x00, 0x00, 0xb0, 0xfe, 0x00, 0x00, 0x00, 0x00, 0xff, 0xe0},
      // mov rdi,0x7ff000; mov rcx,-1; rep stosq: write past the end of RAM
      {0x48, 0xc7, 0xc7, 0x00, 0xf0, 0x7f, 0x00, 0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0xf3,
       0x48, 0xab},
      // mov qword [0x9000],0; mov rax,cr3; mov cr3,rax; nop: unmap everything
      {0x48, 0xc7, 0x04, 0x25, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x20, 0xd8,
       0x0f, 0x22, 0xd8, 0x90},
      // mov dx,0x1234; l: in al,dx; jmp l: an I/O exit per two instructions
      {0x66, 0xba, 0x34, 0x12, 0xec, 0xeb, 0xfd},
      // int3 without an IDT
      {0xcc},
      // 0xff bytes
      std::vector<uint8_t>(64, 0xff),
  };
  for (size_t i = 0; i < guests.size(); ++i) {
    FakeEnvironment env;
    Machine m(SmallConfig(), env);
    m.LoadKernelBytes(test::CodeGuest(guests[i]), "hostile");
    const MachineResult r = m.Run(200'000);
    EXPECT_TRUE(r.stop == MachineStop::kShutdown || r.stop == MachineStop::kTargetReached)
        << i << ": " << MachineStopName(r.stop);
    const uint64_t digest = m.StateDigest(DigestScope::kFull);
    const std::vector<uint8_t> snap = m.SaveSnapshot();
    FakeEnvironment env2;
    Machine copy(SmallConfig(), env2);
    copy.LoadSnapshot(snap);
    EXPECT_EQ(copy.StateDigest(DigestScope::kFull), digest) << i;
  }
}

TEST(MachineConfigCheck, RejectsBadMemorySizes) {
  FakeEnvironment env;
  for (uint64_t bytes : {0ull, 4096ull, (1ull << 20), (4ull << 30), (16ull << 20) + 100}) {
    MachineConfig c;
    c.memory_bytes = bytes;
    try {
      Machine m(c, env);
      ADD_FAILURE() << bytes;
    } catch (const MachineError& e) {
      EXPECT_EQ(e.code(), MachineError::Code::kConfig);
    }
  }
}

TEST(MachineConfigCheck, MissingDiskImageIsDiskError) {
  FakeEnvironment env;
  MachineConfig c = SmallConfig();
  c.disk_image = "/nonexistent/vmrr-disk.img";
  try {
    Machine m(c, env);
    ADD_FAILURE();
  } catch (const MachineError& e) {
    EXPECT_EQ(e.code(), MachineError::Code::kDisk);
  }
}

TEST(MachineKernel, MalformedKernelIsKernelErrorAndMissingFileToo) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  const std::vector<uint8_t> junk = {1, 2, 3, 4};
  try {
    m.LoadKernelBytes(junk, "junk");
    ADD_FAILURE();
  } catch (const MachineError& e) {
    EXPECT_EQ(e.code(), MachineError::Code::kKernel);
    EXPECT_NE(std::string(e.what()).find("junk"), std::string::npos);
  }
  EXPECT_THROW(m.LoadKernel("/nonexistent/kernel.elf"), MachineError);
}

// ---- snapshots ---------------------------------------------------------------------------

TEST(MachineSnapshot, RestoreReplaysTheSameFuture) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::TimerGuest(false), "timer");
  ASSERT_EQ(m.Run(1'500'000).stop, MachineStop::kTargetReached);
  const std::vector<uint8_t> snap = m.SaveSnapshot();
  const uint64_t digest_at_snap = m.StateDigest(DigestScope::kFull);
  const std::string console_at_snap = env.console;

  const MachineResult first = m.Run(3'200'000);
  const uint64_t digest_first = m.StateDigest(DigestScope::kFull);
  const uint64_t cpu_first = m.StateDigest(DigestScope::kCpu);
  const std::string out_first = env.console.substr(console_at_snap.size());
  ASSERT_FALSE(out_first.empty());

  m.LoadSnapshot(snap);
  EXPECT_EQ(m.icount(), 1'500'000u);
  EXPECT_EQ(m.StateDigest(DigestScope::kFull), digest_at_snap);
  const size_t mark = env.console.size();
  const MachineResult second = m.Run(3'200'000);
  EXPECT_EQ(second.stop, first.stop);
  EXPECT_EQ(second.icount, first.icount);
  EXPECT_EQ(m.StateDigest(DigestScope::kFull), digest_first);
  EXPECT_EQ(m.StateDigest(DigestScope::kCpu), cpu_first);
  EXPECT_EQ(env.console.substr(mark), out_first);

  // A fresh machine with the same config continues identically from the snapshot.
  FakeEnvironment env2;
  Machine fresh(SmallConfig(), env2);
  fresh.LoadSnapshot(snap);
  EXPECT_EQ(fresh.StateDigest(DigestScope::kFull), digest_at_snap);
  const MachineResult third = fresh.Run(3'200'000);
  EXPECT_EQ(third.icount, first.icount);
  EXPECT_EQ(fresh.StateDigest(DigestScope::kFull), digest_first);
  EXPECT_EQ(env2.console, out_first);
  // And runs to the same end.
  const MachineResult end_a = m.Run();
  const MachineResult end_b = fresh.Run();
  EXPECT_EQ(end_a.stop, MachineStop::kGuestExit);
  EXPECT_EQ(end_a.icount, end_b.icount);
  EXPECT_EQ(m.StateDigest(DigestScope::kFull), fresh.StateDigest(DigestScope::kFull));
}

TEST(MachineSnapshot, DigestsSeeMemoryAndCpuChanges) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::TimerGuest(false), "timer");
  const uint64_t full = m.StateDigest(DigestScope::kFull);
  const uint64_t cpu = m.StateDigest(DigestScope::kCpu);
  EXPECT_NE(full, cpu);
  uint8_t b = 0x5a;
  m.memory().Write(0x500000, &b, 1);
  EXPECT_NE(m.StateDigest(DigestScope::kFull), full);
  EXPECT_EQ(m.StateDigest(DigestScope::kCpu), cpu);
  m.Run(1);
  EXPECT_NE(m.StateDigest(DigestScope::kCpu), cpu);
}

TEST(MachineSnapshot, ZeroPagesAreElided) {
  FakeEnvironment env;
  MachineConfig c = SmallConfig();
  c.memory_bytes = 256ull << 20;
  Machine m(c, env);
  m.LoadKernelBytes(test::CodeGuest(test::kHelloCode), "hello");
  // 256 MiB of mostly zero RAM: a few pages of kernel, GDT and page tables.
  EXPECT_LT(m.SaveSnapshot().size(), 64u * 1024);
}

TEST(MachineSnapshot, MalformedSnapshotsAreRejectedAndChangeNothing) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::TimerGuest(false), "timer");
  m.Run(1'200'000);
  const std::vector<uint8_t> good = m.SaveSnapshot();
  m.Run(2'000'000);
  const uint64_t digest = m.StateDigest(DigestScope::kFull);

  std::vector<std::vector<uint8_t>> bad;
  bad.emplace_back();                                                 // empty
  bad.emplace_back(good.begin(), good.begin() + good.size() / 2);     // truncated
  bad.emplace_back(good.begin(), good.end() - 1);                     // last byte missing
  bad.push_back(good);
  bad.back().push_back(0);                                            // trailing byte
  bad.push_back(good);
  bad.back()[good.size() - 3] ^= 0xff;                                // LZ4 payload damage
  for (size_t cut = 100; cut < good.size(); cut += good.size() / 7) {
    bad.emplace_back(good.begin(), good.begin() + cut);
  }
  // Damage behind a valid checksum reaches the section parsers: each must refuse it.
  auto reseal = [](std::vector<uint8_t> body) {
    const uint64_t sum = XXH3_64bits(body.data(), body.size());
    AppendLe(body, sum, 8);
    return body;
  };
  const std::vector<uint8_t> body(good.begin(), good.end() - 8);
  for (size_t cut : {size_t{0}, size_t{5}, body.size() / 3, body.size() / 2, body.size() - 1}) {
    bad.push_back(reseal(std::vector<uint8_t>(body.begin(), body.begin() + cut)));
  }
  {
    std::vector<uint8_t> b = body;
    b.push_back(0);  // trailing byte inside the body
    bad.push_back(reseal(b));
    b = body;
    b.at(0) = 'X';  // first section tag
    bad.push_back(reseal(b));
  }
  for (size_t i = 0; i < bad.size(); ++i) {
    try {
      m.LoadSnapshot(bad[i]);
      ADD_FAILURE() << "case " << i << " accepted";
    } catch (const MachineError& e) {
      EXPECT_EQ(e.code(), MachineError::Code::kSnapshot) << i;
    }
    EXPECT_EQ(m.StateDigest(DigestScope::kFull), digest) << "case " << i << " changed the machine";
  }

  // A machine with another memory size refuses it by name.
  FakeEnvironment env2;
  MachineConfig other = SmallConfig();
  other.memory_bytes = 32ull << 20;
  Machine m2(other, env2);
  try {
    m2.LoadSnapshot(good);
    ADD_FAILURE();
  } catch (const MachineError& e) {
    EXPECT_NE(std::string(e.what()).find("memory size"), std::string::npos) << e.what();
  }
}

TEST(MachineSnapshot, DeltaSnapshotOverItsBaseRestoresTheWholeState) {
  FakeEnvironment env;
  Machine m(SmallConfig(), env);
  m.LoadKernelBytes(test::TimerGuest(false), "timer");
  ASSERT_EQ(m.Run(1'200'000).stop, MachineStop::kTargetReached);
  // A page the base holds non-zero and the guest never writes: the delta must set it back to
  // zero when a later write made it zero (a delta lists written pages, zero or not).
  const uint64_t scratch = m.memory().size() / 2;
  const std::vector<uint8_t> ones(kGuestPageSize, 0x5a), zeros(kGuestPageSize, 0);
  m.memory().Write(scratch, ones.data(), ones.size());
  const std::vector<uint8_t> base = m.SaveSnapshot();
  const uint64_t base_digest = m.StateDigest(DigestScope::kFull);
  m.memory().ClearDirty();
  ASSERT_EQ(m.Run(2'400'000).stop, MachineStop::kTargetReached);
  m.memory().Write(scratch, zeros.data(), zeros.size());
  const std::vector<uint8_t> delta = m.SaveSnapshotDelta(41);
  const uint64_t digest = m.StateDigest(DigestScope::kFull);
  ASSERT_NE(digest, base_digest);
  EXPECT_EQ(Machine::SnapshotBase(base), std::nullopt);
  EXPECT_EQ(Machine::SnapshotBase(delta), std::optional<uint64_t>{41});
  // Only what the guest wrote in 1.2 M instructions: smaller than the full snapshot.
  EXPECT_LT(delta.size(), m.SaveSnapshot().size());

  FakeEnvironment env2;
  Machine copy(SmallConfig(), env2);
  copy.LoadSnapshot(base);
  EXPECT_EQ(copy.StateDigest(DigestScope::kFull), base_digest);
  copy.LoadSnapshot(delta);
  EXPECT_EQ(copy.StateDigest(DigestScope::kFull), digest);
  EXPECT_EQ(copy.icount(), 2'400'000u);
  // And it runs on as the original does.
  m.Run(3'000'000);
  copy.Run(3'000'000);
  EXPECT_EQ(copy.StateDigest(DigestScope::kFull), m.StateDigest(DigestScope::kFull));

  // A delta's damage is refused like a full snapshot's, and changes nothing.
  std::vector<uint8_t> bad = delta;
  bad[bad.size() / 2] ^= 1;
  const uint64_t before = copy.StateDigest(DigestScope::kFull);
  EXPECT_THROW(copy.LoadSnapshot(bad), MachineError);
  EXPECT_THROW(Machine::SnapshotBase(bad), MachineError);
  EXPECT_EQ(copy.StateDigest(DigestScope::kFull), before);
}

TEST(MachineEnvironment, SetEnvironmentRedirectsDeviceOutput) {
  FakeEnvironment a, b;
  Machine m(SmallConfig(), a);
  m.LoadKernelBytes(test::CodeGuest(test::kHelloCode), "hello");
  m.Run(7);  // 'H' and 'i' are written by instructions 3 and 5
  m.SetEnvironment(b);
  EXPECT_EQ(&m.environment(), &b);
  m.Run();
  EXPECT_EQ(a.console, "Hi");
  EXPECT_EQ(b.console, "");
  FakeEnvironment c, d;
  Machine m2(SmallConfig(), c);
  m2.LoadKernelBytes(test::CodeGuest(test::kHelloCode), "hello");
  m2.Run(4);
  m2.SetEnvironment(d);
  m2.Run();
  EXPECT_EQ(c.console, "H");
  EXPECT_EQ(d.console, "i");
}

TEST(MachineClock, HostModeTakesTimeFromTheEnvironment) {
  FakeEnvironment env;
  MachineConfig c = SmallConfig();
  c.clock_mode = VirtualClock::Mode::kHost;
  Machine m(c, env);
  m.LoadKernelBytes(test::TimerGuest(true), "timer");
  const MachineResult r = m.Run(50'000'000);
  EXPECT_EQ(r.stop, MachineStop::kGuestExit);
  EXPECT_EQ(env.console, "TTTTT");
  EXPECT_GE(env.waits, 1);  // the HLT idled through the environment
}

}  // namespace
}  // namespace vmrr
