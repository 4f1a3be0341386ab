// TimeTravel over a recorded interrupt-driven guest (test::TimerGuest: a busy loop the PIT
// interrupts five times, each ISR printing 'T'). Every expected position comes from an
// independent forward pass of a plain ReplayMachine: an instruction-by-instruction trace of
// RIP and CPU digest, and the icounts at which the machine observer saw each interrupt
// delivered (each delivery pushes an interrupt frame, the guest's only memory writes).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "analysis/time_travel.h"
#include "hv-hooks/machine/machine.h"
#include "logformat/log_reader.h"
#include "recorder/recording_session.h"
#include "replayer/replay_machine.h"
#include "tests/unit/machine/test_images.h"

namespace vmrr::analysis {
namespace {

constexpr uint64_t kIsr = 0x100080;       // TimerCode's ISR entry
constexpr uint64_t kLoopInc = 0x100030;   // "inc rcx" in the busy loop

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "vmrr_time_travel_" + std::to_string(getpid()) + "_" + name;
}

struct Deliveries : MachineObserver {
  void OnInterrupt(uint64_t icount, uint8_t) override { at.push_back(icount); }
  std::vector<uint64_t> at;
};

// Writes `code` (with TimerGuest's IDT) as an ELF at `kernel` and records it in icount mode
// into `log` with `config`'s intervals; returns the recording's end (the guest's exit).
uint64_t RecordTimerGuest(const std::vector<uint8_t>& code, const std::string& kernel, const std::string& log,
                          SessionConfig config = {}) {
  const std::vector<uint8_t> elf =
      test::MakeElf64(0x100000, {{0x100000, code}, {0x200000, test::IdtWithTimerVector(kIsr)}});
  std::ofstream(kernel, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(elf.data()), static_cast<std::streamsize>(elf.size()));
  config.machine.memory_bytes = 16ull << 20;
  config.kernel_path = kernel;
  test::FakeEnvironment host;
  RecordingSession session(config, host, log, "time_travel_test", log::WriterOptions{});
  const RecordSummary rs = session.Run(0, {});
  EXPECT_EQ(rs.result.stop, MachineStop::kGuestExit);
  EXPECT_EQ(host.console, "TTTTT");
  return rs.result.icount;
}

class TimeTravelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // TimerGuest with the PIT divisor 0x4a9 lowered to 0x20: the same five interrupts in a
    // fortieth of the instructions, so that the oracle can step through all of them (also in
    // the sanitizer build).
    kernel_ = TempPath("timer.elf");
    log_ = TempPath("timer.vmrr");
    seeded_log_ = TempPath("timer-seeded.vmrr");
    const std::vector<uint8_t> code = test::TimerCode(false, 0x20);
    end_ = RecordTimerGuest(code, kernel_, log_);
    // The same run recorded with a log checkpoint every 10,000 instructions.
    SessionConfig s;
    s.digest_interval = 10'000;
    s.checkpoint_interval = 10'000;
    s.machine_digest_interval = 10'000;
    ASSERT_EQ(RecordTimerGuest(code, kernel_, seeded_log_, s), end_);

    // The oracle: one plain forward replay, stepped one instruction at a time.
    log::LogReader reader = log::LogReader::Open(log_);
    const SessionConfig config = DecodeSessionConfig(reader.header().machine_config);
    ReplayingEnvironmentOptions o;
    ReplayMachine rm(reader, config, std::nullopt, reader.checkpoints().front(), o);
    Deliveries d;
    rm.machine().SetObserver(&d);
    for (uint64_t i = 0;; ++i) {
      ASSERT_EQ(rm.machine().icount(), i);
      rip_.push_back(rm.machine().cpu().state().rip);
      digest_.push_back(rm.machine().StateDigest(DigestScope::kCpu));
      rsp_.push_back(rm.machine().cpu().state().gpr[kRsp]);
      if (i == end_) break;
      rm.RunTo(i + 1);
    }
    deliveries_ = d.at;
  }
  static void TearDownTestSuite() {
    std::remove(kernel_.c_str());
    std::remove(log_.c_str());
    std::remove(seeded_log_.c_str());
  }

  void SetUp() override {
    reader_.emplace(log::LogReader::Open(log_));
    config_ = DecodeSessionConfig(reader_->header().machine_config);
    TimeTravelOptions o;
    o.checkpoint_interval = 1000;  // many windows and slices on a short recording
    o.slice = 300;
    tt_.emplace(*reader_, config_, std::nullopt, o);
  }

  void ExpectAt(uint64_t icount) {
    ASSERT_EQ(tt_->icount(), icount);
    EXPECT_EQ(tt_->machine().cpu().state().rip, rip_[icount]) << "icount " << icount;
    EXPECT_EQ(tt_->machine().StateDigest(DigestScope::kCpu), digest_[icount]) << "icount " << icount;
  }
  std::vector<uint64_t> TraceHits(uint64_t rip) const {
    std::vector<uint64_t> out;
    for (uint64_t i = 1; i < rip_.size(); ++i)
      if (rip_[i] == rip) out.push_back(i);
    return out;
  }
  // The interrupt frame's 48 bytes below the (16-byte aligned) RSP of the first delivery.
  Watchpoint FrameWatch() const {
    const uint64_t top = rsp_[deliveries_.front()] & ~uint64_t{15};
    return Watchpoint{top - 48, 48, kWatchWrite};
  }

  static inline std::string kernel_, log_, seeded_log_;
  static inline uint64_t end_ = 0;
  static inline std::vector<uint64_t> rip_, digest_, rsp_, deliveries_;
  std::optional<log::LogReader> reader_;
  SessionConfig config_;
  std::optional<TimeTravel> tt_;
};

TEST_F(TimeTravelTest, TheOracleSeesFiveDeliveries) {
  std::printf("recording: %llu instructions\n", static_cast<unsigned long long>(end_));
  ASSERT_EQ(deliveries_.size(), 5u);
  EXPECT_GT(end_, 50'000u);
  EXPECT_EQ(tt_->begin_icount(), 0u);
  EXPECT_EQ(tt_->end_icount(), end_);
  ASSERT_TRUE(tt_->end_record());
  EXPECT_EQ(tt_->end_record()->reason, log::EndReason::kGuestExit);
}

TEST_F(TimeTravelTest, StepsForwardAndBackwardMatchTheTrace) {
  for (uint64_t i = 0; i < 1500; ++i) {
    ExpectAt(i);
    ASSERT_EQ(tt_->StepForward().kind, TravelStop::Kind::kTarget);
  }
  for (uint64_t i = 1500; i > 0; --i) {
    ExpectAt(i);
    ASSERT_EQ(tt_->StepBackward().kind, TravelStop::Kind::kTarget);
  }
  ExpectAt(0);
  EXPECT_EQ(tt_->StepBackward().kind, TravelStop::Kind::kBegin);
  // Backwards from the end, across every delivery.
  EXPECT_EQ(tt_->GoTo(end_).kind, TravelStop::Kind::kEnd);
  ExpectAt(end_);
  EXPECT_EQ(tt_->StepForward().kind, TravelStop::Kind::kEnd);
  for (uint64_t i = end_; i > end_ - 3000; --i) {
    ExpectAt(i);
    tt_->StepBackward();
  }
}

TEST_F(TimeTravelTest, GoToRandomIcountsMatchesTheTrace) {
  std::mt19937_64 rng(7);
  for (int k = 0; k < 200; ++k) {
    const uint64_t at = rng() % (end_ + 1);
    tt_->GoTo(at);
    ExpectAt(at);
  }
  tt_->GoTo(end_ + 1000);  // clamped
  ExpectAt(end_);
}

TEST_F(TimeTravelTest, BreakpointForwardAndBackward) {
  const std::vector<uint64_t> hits = TraceHits(kLoopInc);
  ASSERT_GE(hits.size(), 10u);
  tt_->AddBreakpoint(kLoopInc);
  for (int k = 0; k < 3; ++k) {
    const TravelStop s = tt_->ContinueForward();
    ASSERT_EQ(s.kind, TravelStop::Kind::kBreakpoint);
    EXPECT_EQ(s.icount, hits[k]);
    ExpectAt(hits[k]);
  }
  TravelStop s = tt_->ContinueBackward();
  ASSERT_EQ(s.kind, TravelStop::Kind::kBreakpoint);
  ExpectAt(hits[1]);
  // From the end, backwards over every hit in order.
  tt_->GoTo(end_);
  for (size_t k = hits.size(); k-- > hits.size() - 8;) {
    s = tt_->ContinueBackward();
    ASSERT_EQ(s.kind, TravelStop::Kind::kBreakpoint);
    ExpectAt(hits[k]);
  }
  tt_->RemoveBreakpoint(kLoopInc);
  EXPECT_EQ(tt_->ContinueBackward().kind, TravelStop::Kind::kBegin);
  ExpectAt(0);
  EXPECT_EQ(tt_->ContinueForward().kind, TravelStop::Kind::kEnd);
  ExpectAt(end_);
}

TEST_F(TimeTravelTest, BreakpointOnTheInterruptHandlerEntry) {
  // The ISR's first instruction is reached by a delivery at a boundary: the stop is at the
  // delivery's icount with RIP at the handler (a state after the delivery).
  tt_->AddBreakpoint(kIsr);
  for (size_t k = 0; k < 3; ++k) {
    const TravelStop s = tt_->ContinueForward();
    ASSERT_EQ(s.kind, TravelStop::Kind::kBreakpoint);
    EXPECT_EQ(s.icount, deliveries_[k]);
    EXPECT_EQ(tt_->machine().cpu().state().rip, kIsr);
  }
  const TravelStop s = tt_->ContinueBackward();
  ASSERT_EQ(s.kind, TravelStop::Kind::kBreakpoint);
  EXPECT_EQ(s.icount, deliveries_[1]);
  EXPECT_EQ(tt_->icount(), deliveries_[1]);
  EXPECT_EQ(tt_->machine().cpu().state().rip, kIsr);
  // Stepping from there executes the handler's first instruction.
  tt_->StepForward();
  ExpectAt(deliveries_[1] + 1);
}

TEST_F(TimeTravelTest, WatchpointOnTheInterruptFrame) {
  tt_->SetWatchpoints({FrameWatch()});
  for (size_t k = 0; k < deliveries_.size(); ++k) {
    const TravelStop s = tt_->ContinueForward();
    ASSERT_EQ(s.kind, TravelStop::Kind::kWatchpoint) << k;
    EXPECT_EQ(s.watch.icount, deliveries_[k]);
    EXPECT_EQ(s.watch.kind, kWatchWrite);
  }
  EXPECT_EQ(tt_->ContinueForward().kind, TravelStop::Kind::kEnd);
  for (size_t k = deliveries_.size(); k-- > 0;) {
    const TravelStop s = tt_->ContinueBackward();
    ASSERT_EQ(s.kind, TravelStop::Kind::kWatchpoint) << k;
    EXPECT_EQ(s.icount, deliveries_[k]);
    ExpectAt(deliveries_[k]);  // before the delivery that wrote the frame
  }
  EXPECT_EQ(tt_->ContinueBackward().kind, TravelStop::Kind::kBegin);
}

TEST_F(TimeTravelTest, LastWriteBeforeDoesNotMove) {
  const Watchpoint w = FrameWatch();
  const uint64_t here = (deliveries_[3] + deliveries_[4]) / 2;
  tt_->GoTo(here);
  const std::optional<WatchHit> h = tt_->LastWriteBefore(w.linear + 8, 8);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->icount, deliveries_[3]);
  ExpectAt(here);
  tt_->GoTo(deliveries_[0]);
  EXPECT_FALSE(tt_->LastWriteBefore(w.linear, w.length));
  ExpectAt(deliveries_[0]);
}

TEST_F(TimeTravelTest, InterruptStopsABackwardSearch) {
  tt_->GoTo(end_);
  tt_->AddBreakpoint(0x1);  // never executed: the search would go back to the beginning
  int polls = 0;
  const TravelStop s = tt_->ContinueBackward([&] { return ++polls >= 3; });
  EXPECT_EQ(s.kind, TravelStop::Kind::kInterrupted);
  EXPECT_EQ(polls, 3);
  ExpectAt(tt_->icount());
}

TEST_F(TimeTravelTest, TheLogsOwnCheckpointsSeedTheStore) {
  log::LogReader reader = log::LogReader::Open(seeded_log_);
  ASSERT_GE(reader.checkpoints().size(), 8u);
  TimeTravelOptions o;
  o.checkpoint_interval = 1000;
  TimeTravel tt(reader, config_, std::nullopt, o);
  tt.GoTo(end_ - 10);
  EXPECT_EQ(tt.machine().StateDigest(DigestScope::kCpu), digest_[end_ - 10]);
  EXPECT_GE(tt.log_checkpoints_used(), 1u);
  EXPECT_LT(tt.instructions_replayed(), 12'000u) << "replayed from the last log checkpoint, not from 0";
  std::mt19937_64 rng(11);
  for (int k = 0; k < 50; ++k) {
    const uint64_t at = rng() % (end_ + 1);
    tt.GoTo(at);
    ASSERT_EQ(tt.machine().StateDigest(DigestScope::kCpu), digest_[at]) << "icount " << at;
  }
  tt.SetWatchpoints({FrameWatch()});
  tt.GoTo(end_);
  for (size_t k = deliveries_.size(); k-- > 0;) {
    const TravelStop s = tt.ContinueBackward();
    ASSERT_EQ(s.kind, TravelStop::Kind::kWatchpoint) << k;
    EXPECT_EQ(s.icount, deliveries_[k]);
  }
}

TEST_F(TimeTravelTest, CheckpointsStayWithinTheBudget) {
  TimeTravelOptions o;
  o.checkpoint_interval = 2000;
  o.slice = 1000;
  o.checkpoint_memory = 64 << 10;
  TimeTravel small(*reader_, config_, std::nullopt, o);
  small.GoTo(end_);
  const size_t one = small.checkpoints().bytes_held() / std::max<size_t>(small.checkpoints().size(), 1);
  EXPECT_LE(small.checkpoints().bytes_held(), o.checkpoint_memory + one);
  EXPECT_GE(small.checkpoints().size(), 2u);
  std::mt19937_64 rng(3);
  for (int k = 0; k < 30; ++k) {
    const uint64_t at = rng() % (end_ + 1);
    small.GoTo(at);
    ASSERT_EQ(small.machine().StateDigest(DigestScope::kCpu), digest_[at]);
  }
  EXPECT_LE(small.checkpoints().bytes_held(), o.checkpoint_memory + one);
}

// The same guest with an ISR whose first instruction writes memory (push rax ... pop rax):
// the stack slot below the interrupt frame is written by the delivery (the frame) and then by
// the handler's first instruction, at the same icount, in two different states of it.
class HandlerWriteTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::vector<uint8_t> code = test::TimerCode(false, 0x80);
    code.resize(0x80);
    code.insert(code.end(), {0x50, 0xff, 0xc3, 0xb0, 0x20, 0xe6, 0x20, 0x66, 0xba, 0xf8, 0x03, 0xb0, 0x54,
                             0xee, 0x58, 0x48, 0xcf});
    kernel_ = TempPath("isr-push.elf");
    log_ = TempPath("isr-push.vmrr");
    RecordTimerGuest(code, kernel_, log_);
    // Oracle: the delivery icounts, and the RIP and RSP just before each delivery.
    log::LogReader reader = log::LogReader::Open(log_);
    const SessionConfig config = DecodeSessionConfig(reader.header().machine_config);
    ReplayMachine rm(reader, config, std::nullopt, reader.checkpoints().front(), ReplayingEnvironmentOptions{});
    Deliveries d;
    rm.machine().SetObserver(&d);
    rm.RunTo(~uint64_t{0});
    deliveries_ = d.at;
    ReplayMachine again(reader, config, std::nullopt, reader.checkpoints().front(), ReplayingEnvironmentOptions{});
    for (uint64_t ic : deliveries_) {
      again.RunTo(ic);
      rip_before_.push_back(again.machine().cpu().state().rip);
      rsp_before_.push_back(again.machine().cpu().state().gpr[kRsp]);
    }
  }
  static void TearDownTestSuite() {
    std::remove(kernel_.c_str());
    std::remove(log_.c_str());
  }
  void SetUp() override {
    reader_.emplace(log::LogReader::Open(log_));
    config_ = DecodeSessionConfig(reader_->header().machine_config);
    TimeTravelOptions o;
    o.checkpoint_interval = 1000;
    o.slice = 300;
    tt_.emplace(*reader_, config_, std::nullopt, o);
    // The frame (40 bytes below the aligned RSP) and the pushed RAX below it.
    const uint64_t top = rsp_before_.front() & ~uint64_t{15};
    tt_->SetWatchpoints({Watchpoint{top - 48, 48, kWatchWrite}});
  }
  uint64_t rip() { return tt_->machine().cpu().state().rip; }

  static inline std::string kernel_, log_;
  static inline std::vector<uint64_t> deliveries_, rip_before_, rsp_before_;
  std::optional<log::LogReader> reader_;
  SessionConfig config_;
  std::optional<TimeTravel> tt_;
};

TEST_F(HandlerWriteTest, ForwardStopsAfterTheDeliveryThenAfterThePush) {
  ASSERT_EQ(deliveries_.size(), 5u);
  for (size_t k = 0; k < deliveries_.size(); ++k) {
    TravelStop s = tt_->ContinueForward();
    ASSERT_EQ(s.kind, TravelStop::Kind::kWatchpoint);
    EXPECT_EQ(s.icount, deliveries_[k]);
    EXPECT_EQ(rip(), kIsr);  // after the delivery, before the handler's first instruction
    s = tt_->ContinueForward();
    ASSERT_EQ(s.kind, TravelStop::Kind::kWatchpoint);
    EXPECT_EQ(s.icount, deliveries_[k] + 1);
    EXPECT_EQ(s.watch.rip, kIsr);
  }
}

TEST_F(HandlerWriteTest, BackwardStopsBeforeThePushThenBeforeTheDelivery) {
  tt_->GoTo(tt_->end_icount());
  for (size_t k = deliveries_.size(); k-- > 0;) {
    TravelStop s = tt_->ContinueBackward();
    ASSERT_EQ(s.kind, TravelStop::Kind::kWatchpoint) << k;
    EXPECT_EQ(s.icount, deliveries_[k]);
    EXPECT_EQ(rip(), kIsr) << "before the push: the handler's entry, after the delivery";
    s = tt_->ContinueBackward();
    ASSERT_EQ(s.kind, TravelStop::Kind::kWatchpoint) << k;
    EXPECT_EQ(s.icount, deliveries_[k]);
    EXPECT_EQ(rip(), rip_before_[k]) << "before the delivery that wrote the frame";
  }
  EXPECT_EQ(tt_->ContinueBackward().kind, TravelStop::Kind::kBegin);
}

TEST_F(HandlerWriteTest, FromAfterADeliveryBackwardsFindsThatDelivery) {
  const TravelStop s = tt_->ContinueForward();  // the frame written by the first delivery
  ASSERT_EQ(s.kind, TravelStop::Kind::kWatchpoint);
  ASSERT_EQ(rip(), kIsr);
  const TravelStop b = tt_->ContinueBackward();
  ASSERT_EQ(b.kind, TravelStop::Kind::kWatchpoint);
  EXPECT_EQ(b.icount, deliveries_[0]);
  EXPECT_EQ(rip(), rip_before_[0]);
}

TEST_F(HandlerWriteTest, StepsUndoEachOtherAtAHandlerEntry) {
  tt_->SetWatchpoints({});
  tt_->AddBreakpoint(kIsr);
  ASSERT_EQ(tt_->ContinueForward().kind, TravelStop::Kind::kBreakpoint);
  ASSERT_EQ(tt_->icount(), deliveries_[0]);
  ASSERT_EQ(rip(), kIsr);
  const uint64_t digest = tt_->machine().StateDigest(DigestScope::kCpu);
  tt_->StepForward();
  EXPECT_EQ(tt_->icount(), deliveries_[0] + 1);
  tt_->StepBackward();
  EXPECT_EQ(tt_->icount(), deliveries_[0]);
  EXPECT_EQ(rip(), kIsr);
  EXPECT_EQ(tt_->machine().StateDigest(DigestScope::kCpu), digest);
  // From the handler's entry a step back goes to before the delivery; GoTo never lands after one.
  tt_->StepBackward();
  EXPECT_EQ(tt_->icount(), deliveries_[0]);
  EXPECT_EQ(rip(), rip_before_[0]);
  ASSERT_EQ(tt_->ContinueForward().kind, TravelStop::Kind::kBreakpoint);
  ASSERT_EQ(rip(), kIsr);
  tt_->GoTo(deliveries_[0]);
  EXPECT_EQ(rip(), rip_before_[0]);
}

}  // namespace
}  // namespace vmrr::analysis
