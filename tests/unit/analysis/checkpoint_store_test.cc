// The checkpoint store over a recorded guest (test::TimerGuest: PIT interrupts, console
// output): GoTo to any icount, in any order, reaches the state a fresh replay from the start
// reaches there; the byte budget holds and thinning spaces old checkpoints sparser; taking
// checkpoints does not change the replay.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "analysis/checkpoint_store.h"
#include "hv-hooks/machine/machine.h"
#include "hv-hooks/session/session_config.h"
#include "logformat/log_reader.h"
#include "recorder/recording_session.h"
#include "replayer/replay_machine.h"
#include "replayer/replaying_environment.h"
#include "tests/unit/machine/test_images.h"

namespace vmrr::analysis {
namespace {

// A scripted host (as in replay_stop_test.cc): fixed time steps, no input, counter entropy.
class ScriptedHost : public Environment {
 public:
  int64_t SampleTime(uint64_t) override { return now_ns += 1000; }
  std::vector<uint8_t> PollConsoleInput(uint64_t, size_t) override { return {}; }
  bool PollNetFrame(uint64_t, std::vector<uint8_t>*) override { return false; }
  void GetEntropy(uint64_t, std::span<uint8_t> out) override {
    for (auto& b : out) b = next_entropy++;
  }
  void ConsoleOutput(uint64_t, std::span<const uint8_t> bytes) override {
    console_out.append(bytes.begin(), bytes.end());
  }
  void NetFrameSent(uint64_t, std::span<const uint8_t>) override {}
  bool WaitForInput(uint64_t, int64_t) override { return false; }

  int64_t now_ns = 1'700'000'000'000'000'000;
  uint8_t next_entropy = 1;
  std::string console_out;
};

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "vmrr_checkpoint_store_" + std::to_string(getpid()) + "_" + name;
}

class CheckpointStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    kernel_ = TempPath("timer.elf");
    {
      const std::vector<uint8_t> elf = test::TimerGuest(false);
      std::ofstream f(kernel_, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(elf.data()), static_cast<std::streamsize>(elf.size()));
    }
    log_ = TempPath("timer.vmrr");
    SessionConfig c;
    c.machine.memory_bytes = 16ull << 20;
    c.kernel_path = kernel_;
    ScriptedHost host;
    RecordingSession session(c, host, log_, "checkpoint_store_test", log::WriterOptions{});
    const RecordSummary rs = session.Run(0, {});
    ASSERT_EQ(rs.result.stop, MachineStop::kGuestExit);
    ASSERT_EQ(host.console_out, "TTTTT");
    end_icount_ = rs.result.icount;
  }
  static void TearDownTestSuite() {
    std::remove(kernel_.c_str());
    std::remove(log_.c_str());
  }

  void SetUp() override {
    reader_.emplace(log::LogReader::Open(log_));
    config_ = DecodeSessionConfig(reader_->header().machine_config);
  }
  std::unique_ptr<ReplayMachine> NewReplay() {
    ReplayingEnvironmentOptions o;
    o.log_complete = reader_->complete();
    return std::make_unique<ReplayMachine>(*reader_, config_, std::nullopt, reader_->checkpoints().front(), o);
  }
  // Replays forward from the start taking a checkpoint every `every` instructions (the last
  // one before the replay stops); returns the replay's stop.
  MachineResult Fill(ReplayMachine& rm, CheckpointStore& store, uint64_t every,
                     std::vector<size_t>* bytes_after_take = nullptr) {
    for (;;) {
      store.Take(rm);
      if (bytes_after_take) bytes_after_take->push_back(store.bytes_held());
      const MachineResult r = rm.RunTo(rm.machine().icount() + every);
      if (r.stop != MachineStop::kTargetReached) return r;
    }
  }
  // Digests a fresh replay from the start reaches at each of `icounts` (one forward pass);
  // points past the end get the digest at the end.
  std::map<uint64_t, uint64_t> ReferenceDigests(std::vector<uint64_t> icounts) {
    std::sort(icounts.begin(), icounts.end());
    auto rm = NewReplay();
    std::map<uint64_t, uint64_t> out;
    for (uint64_t ic : icounts) {
      if (rm->machine().icount() < ic && rm->machine().icount() < end_icount_) rm->RunTo(ic);
      EXPECT_EQ(rm->machine().icount(), std::min(ic, end_icount_));
      out[ic] = rm->machine().StateDigest(DigestScope::kFull);
    }
    return out;
  }

  static inline std::string kernel_, log_;
  static inline uint64_t end_icount_ = 0;
  std::optional<log::LogReader> reader_;
  SessionConfig config_;
};

TEST_F(CheckpointStoreTest, GoToAnyIcountInRandomOrderMatchesAFreshReplay) {
  ASSERT_EQ(reader_->checkpoints().front().icount, 0u);
  ASSERT_GT(end_icount_, 20'000u) << "the guest is long enough for many checkpoints";
  const uint64_t every = end_icount_ / 40;
  auto rm = NewReplay();
  CheckpointStore store;
  const MachineResult end = Fill(*rm, store, every);
  EXPECT_EQ(end.stop, MachineStop::kGuestExit);
  EXPECT_EQ(end.icount, end_icount_);
  const std::vector<uint64_t> held = store.icounts();
  ASSERT_GE(held.size(), 30u);
  EXPECT_EQ(held.front(), 0u);

  std::vector<uint64_t> points = {0, 1, end_icount_ - 1, end_icount_, end_icount_ + 12345};
  for (uint64_t c : held) points.insert(points.end(), {c, c + 1, c + every / 2, c + every - 1});
  std::mt19937_64 rng(13);
  for (int i = 0; i < 40; ++i) points.push_back(rng() % (end_icount_ + 100));
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  const std::map<uint64_t, uint64_t> reference = ReferenceDigests(points);

  std::shuffle(points.begin(), points.end(), rng);
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t ic : points) {
    const MachineResult r = store.GoTo(*rm, ic);
    const uint64_t expect_icount = std::min(ic, end_icount_);
    EXPECT_EQ(r.icount, expect_icount) << "GoTo " << ic;
    EXPECT_EQ(rm->machine().icount(), expect_icount) << "GoTo " << ic;
    EXPECT_EQ(r.stop, ic >= end_icount_ ? MachineStop::kGuestExit : MachineStop::kTargetReached) << "GoTo " << ic;
    EXPECT_EQ(rm->machine().StateDigest(DigestScope::kFull), reference.at(ic)) << "GoTo " << ic;
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(store.end());
  EXPECT_EQ(store.end()->icount, end_icount_);
  std::printf("[ info ] guest: %llu instructions; %zu checkpoints every %llu, %zu bytes held (%zu per checkpoint); "
              "%zu GoTos in %.1f ms (%.3f ms each)\n",
              static_cast<unsigned long long>(end_icount_), store.size(), static_cast<unsigned long long>(every),
              store.bytes_held(), store.bytes_held() / store.size(), points.size(), ms, ms / points.size());
}

TEST_F(CheckpointStoreTest, WithACheckpointAtTheEndGoToPastItStopsAtTheEnd) {
  auto rm = NewReplay();
  CheckpointStore store;
  const MachineResult end = Fill(*rm, store, end_icount_ / 4);
  ASSERT_EQ(end.icount, end_icount_);
  const uint64_t end_digest = rm->machine().StateDigest(DigestScope::kFull);
  store.Take(*rm);  // after the guest exited: running on from it would leave the recording
  store.NoteEnd(end);
  ASSERT_EQ(store.icounts().back(), end_icount_);
  for (uint64_t ic : {end_icount_ + 1, end_icount_, end_icount_ + 1'000'000, end_icount_ / 2, end_icount_ + 1}) {
    const MachineResult r = store.GoTo(*rm, ic);
    if (ic < end_icount_) {
      EXPECT_EQ(r.stop, MachineStop::kTargetReached);
      continue;
    }
    EXPECT_EQ(r.stop, MachineStop::kGuestExit) << "GoTo " << ic;
    EXPECT_EQ(r.icount, end_icount_) << "GoTo " << ic;
    EXPECT_EQ(r.exit_status, end.exit_status) << "GoTo " << ic;
    EXPECT_EQ(rm->machine().icount(), end_icount_) << "GoTo " << ic;
    EXPECT_EQ(rm->machine().StateDigest(DigestScope::kFull), end_digest) << "GoTo " << ic;
  }
}

TEST_F(CheckpointStoreTest, TheBudgetHoldsAndThinningKeepsTheFirstAndSpacesOldOnesSparser) {
  // Measure the first checkpoint (all of RAM) and what one more costs (incremental: the pages
  // dirtied since), then allow about ten more for a run that takes ~200.
  const uint64_t every = end_icount_ / 200;
  size_t first = 0, one = 0;
  {
    auto rm = NewReplay();
    CheckpointStore probe;
    probe.Take(*rm);
    first = probe.bytes_held();
    rm->RunTo(every);
    probe.Take(*rm);
    one = probe.bytes_held() - first;
  }
  ASSERT_GT(one, 0u);
  EXPECT_LT(one, first / 2) << "a later checkpoint holds only what changed";
  const size_t budget = first + one * 10 + one / 2;
  auto rm = NewReplay();
  CheckpointStore store(budget);
  std::vector<size_t> held_after;
  const MachineResult end = Fill(*rm, store, every, &held_after);
  EXPECT_EQ(end.stop, MachineStop::kGuestExit);
  ASSERT_GE(held_after.size(), 150u);
  for (size_t i = 0; i < held_after.size(); ++i) EXPECT_LE(held_after[i], budget) << "after Take " << i;
  const std::vector<uint64_t> ic = store.icounts();
  ASSERT_GE(ic.size(), 6u);
  EXPECT_EQ(ic.front(), 0u) << "the first checkpoint is kept";
  EXPECT_EQ(ic.back(), (held_after.size() - 1) * every) << "the newest checkpoint is kept";
  // Gaps, oldest first: the older half's spacing is sparser than the newer half's, and the
  // oldest gap is several times the newest.
  std::vector<uint64_t> gaps;
  for (size_t i = 1; i < ic.size(); ++i) gaps.push_back(ic[i] - ic[i - 1]);
  const size_t half = gaps.size() / 2;
  uint64_t older = 0, newer = 0;
  for (size_t i = 0; i < half; ++i) older += gaps[i];
  for (size_t i = gaps.size() - half; i < gaps.size(); ++i) newer += gaps[i];
  EXPECT_GT(older, 2 * newer);
  EXPECT_GE(gaps.front(), 4 * gaps.back());
  std::string spacing;
  for (uint64_t c : ic) spacing += " " + std::to_string(c);
  std::printf("[ info ] budget %zu (%zu per checkpoint): %zu held at%s\n", budget, one, ic.size(), spacing.c_str());

  // The thinned store still seeks exactly.
  std::vector<uint64_t> points = {0, end_icount_, end_icount_ / 3, end_icount_ / 2 + 7, ic[1] + 1, ic.back() - 1};
  const std::map<uint64_t, uint64_t> reference = ReferenceDigests(points);
  for (uint64_t p : points) {
    store.GoTo(*rm, p);
    EXPECT_EQ(rm->machine().StateDigest(DigestScope::kFull), reference.at(p)) << "GoTo " << p;
  }
}

TEST_F(CheckpointStoreTest, TakingCheckpointsAndSeekingDoesNotChangeTheReplay) {
  const uint64_t every = end_icount_ / 50;
  std::vector<uint64_t> plain, with_store;
  {
    auto rm = NewReplay();
    for (;;) {
      plain.push_back(rm->machine().StateDigest(DigestScope::kFull));
      if (rm->RunTo(rm->machine().icount() + every).stop != MachineStop::kTargetReached) break;
    }
    plain.push_back(rm->machine().StateDigest(DigestScope::kFull));
  }
  {
    auto rm = NewReplay();
    CheckpointStore store;
    for (;;) {
      store.Take(*rm);
      with_store.push_back(rm->machine().StateDigest(DigestScope::kFull));
      if (rm->RunTo(rm->machine().icount() + every).stop != MachineStop::kTargetReached) break;
    }
    with_store.push_back(rm->machine().StateDigest(DigestScope::kFull));
    EXPECT_EQ(with_store, plain);
    // Seek back to the middle and replay forward again from there: the same digests.
    const size_t mid = with_store.size() / 2;
    store.GoTo(*rm, mid * every);
    for (size_t i = mid; i + 1 < plain.size(); ++i) {
      EXPECT_EQ(rm->machine().StateDigest(DigestScope::kFull), plain[i]) << "step " << i;
      rm->RunTo(rm->machine().icount() + every);
    }
    EXPECT_EQ(rm->machine().StateDigest(DigestScope::kFull), plain.back());
  }
}

}  // namespace
}  // namespace vmrr::analysis
