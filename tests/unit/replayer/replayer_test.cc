// ReplayingEnvironment against logs written by RecordingEnvironment: random input sequences
// replay exactly, every divergence kind is detected with the right icount, cut logs replay
// up to their last whole frame.
#include <gtest/gtest.h>

#include <random>

#include "logformat/log_reader.h"
#include "recorder/recording_environment.h"
#include "replayer/record_source.h"
#include "replayer/replaying_environment.h"
#include "tests/unit/recorder/fake_environment.h"

namespace vmrr {
namespace {

using test::FakeEnvironment;

// One call the machine makes, and what it got back while recording.
struct Op {
  enum Kind { kTime, kConsole, kNet, kEntropy, kOut } kind;
  uint64_t icount;
  size_t size = 0;  // max bytes / entropy size
  int64_t time = 0;
  std::vector<uint8_t> result;
  bool got = false;
};

// Builds a random script and records it; returns the log bytes.
std::vector<uint8_t> RecordRandom(uint32_t seed, size_t n, std::vector<Op>* ops,
                                  size_t frame_bytes = 256 * 1024) {
  std::mt19937 rng(seed);
  FakeEnvironment fake;
  std::vector<uint8_t> bytes;
  log::WriterOptions wo;
  wo.max_frame_bytes = frame_bytes;
  wo.max_frame_age_ns = 0;
  log::LogWriter w(std::make_unique<log::VectorSink>(&bytes), log::LogHeader{}, wo);
  RecordingEnvironment env(fake, w);
  uint64_t icount = 0;
  int polled_here = 0;  // bit per poll kind already polled at this icount
  for (size_t i = 0; i < n; ++i) {
    uint64_t step = rng() % 4 == 0 ? 0 : rng() % 5000;
    if (step) polled_here = 0;
    icount += step;
    Op op{static_cast<Op::Kind>(rng() % 5), icount};
    // Two polls of one kind at one icount with nothing logged between are indistinguishable
    // in the log (only non-empty polls are logged); the machine never does that, nor do we.
    if (op.kind == Op::kConsole || op.kind == Op::kNet) {
      int bit = 1 << op.kind;
      if (polled_here & bit) {
        op.icount = ++icount;
        polled_here = 0;
      }
      polled_here |= bit;
    } else if (op.kind != Op::kOut) {
      polled_here = 0;  // a logged input separates polls
    }
    switch (op.kind) {
      case Op::kTime:
        fake.times.push_back(static_cast<int64_t>(rng()) * 1000 - 7);
        op.time = env.SampleTime(op.icount);
        break;
      case Op::kConsole: {
        std::vector<uint8_t> typed(rng() % 3 == 0 ? rng() % 20 : 0);
        for (auto& b : typed) b = static_cast<uint8_t>(rng());
        fake.console.push_back(typed);
        op.size = 1 + rng() % 16;
        op.result = env.PollConsoleInput(op.icount, op.size);
        if (!op.result.empty()) polled_here = 0;
        break;
      }
      case Op::kNet: {
        std::vector<uint8_t> frame(rng() % 3 == 0 ? 1 + rng() % 1500 : 0);
        for (auto& b : frame) b = static_cast<uint8_t>(rng());
        fake.frames.push_back(frame);
        op.got = env.PollNetFrame(op.icount, &op.result);
        if (op.got) polled_here = 0;
        break;
      }
      case Op::kEntropy:
        op.result.resize(1 + rng() % 64);
        env.GetEntropy(op.icount, op.result);
        break;
      case Op::kOut:
        op.result.resize(1 + rng() % 8);
        for (auto& b : op.result) b = static_cast<uint8_t>(rng());
        if (rng() % 2) env.ConsoleOutput(op.icount, op.result);
        else env.NetFrameSent(op.icount, op.result);
        op.size = 1;
        break;
    }
    ops->push_back(op);
  }
  w.Finish(icount + 1, log::End{});
  return bytes;
}

// Replays one op, EXPECTing the recorded result.
void ReplayOp(ReplayingEnvironment& env, const Op& op) {
  switch (op.kind) {
    case Op::kTime: EXPECT_EQ(env.SampleTime(op.icount), op.time); break;
    case Op::kConsole: EXPECT_EQ(env.PollConsoleInput(op.icount, op.size), op.result); break;
    case Op::kNet: {
      std::vector<uint8_t> f;
      EXPECT_EQ(env.PollNetFrame(op.icount, &f), op.got);
      if (op.got) {
        EXPECT_EQ(f, op.result);
      }
      break;
    }
    case Op::kEntropy: {
      std::vector<uint8_t> e(op.result.size());
      env.GetEntropy(op.icount, e);
      EXPECT_EQ(e, op.result);
      break;
    }
    case Op::kOut: env.ConsoleOutput(op.icount, op.result); break;
  }
}

TEST(ReplayingEnvironment, RandomInputSequencesReplayExactly) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::vector<Op> ops;
    std::vector<uint8_t> bytes = RecordRandom(seed, 400, &ops, seed % 2 ? 512 : 256 * 1024);
    log::LogReader reader = log::LogReader::FromBytes(bytes);
    ASSERT_TRUE(reader.complete());
    LogRecordSource source(reader, LogPosition{});
    std::vector<uint8_t> console;
    ReplayingEnvironmentOptions o;
    o.console_out = [&](uint64_t, std::span<const uint8_t> b) { console.insert(console.end(), b.begin(), b.end()); };
    ReplayingEnvironment env(source, o);
    std::vector<uint8_t> expect_console;
    for (const Op& op : ops) {
      ReplayOp(env, op);
      if (op.kind == Op::kOut) expect_console.insert(expect_console.end(), op.result.begin(), op.result.end());
    }
    EXPECT_EQ(console, expect_console);
    EXPECT_EQ(env.PeekInput(), nullptr) << "every logged input consumed, seed " << seed;
    EXPECT_NO_THROW(env.CheckNoInputBefore(~uint64_t{0}));
    if (HasFailure()) FAIL() << "seed " << seed;
  }
}

std::vector<log::Record> Inputs() {
  return {{10, log::TimeSample{5}},
          {20, log::ConsoleIn{{'a', 'b', 'c'}}},
          {30, log::Entropy{{1, 2, 3, 4}}},
          {30, log::NetRx{{7, 7}}},
          {40, log::Digest{log::DigestScope::kCpu, 99}},  // not an input: ignored
          {50, log::TimeSample{6}}};
}

// A divergence is never thrown through the machine: the environment records it (and gives a
// neutral answer); CheckNoInputBefore, called from outside the machine, throws it.
template <typename F>
Divergence ExpectDivergence(ReplayingEnvironment& env, F f) {
  try {
    f();
  } catch (const Divergence& d) {
    return d;
  }
  if (env.failure()) {
    try {
      std::rethrow_exception(env.failure());
    } catch (const Divergence& d) {
      return d;
    } catch (...) {
    }
  }
  ADD_FAILURE() << "no divergence";
  return Divergence(Divergence::Kind::kEnd, 0, "");
}

TEST(ReplayingEnvironment, ConsumesInLogOrderAndIgnoresOtherKinds) {
  VectorRecordSource s(Inputs());
  ReplayingEnvironment env(s);
  EXPECT_EQ(env.SampleTime(10), 5);
  EXPECT_TRUE(env.PollConsoleInput(15, 8).empty());
  std::vector<uint8_t> f;
  EXPECT_FALSE(env.PollNetFrame(20, &f));  // the ConsoleIn at 20 comes first
  EXPECT_EQ(env.PollConsoleInput(20, 8), (std::vector<uint8_t>{'a', 'b', 'c'}));
  EXPECT_TRUE(env.PollConsoleInput(20, 8).empty());
  uint8_t e[4];
  EXPECT_FALSE(env.PollNetFrame(30, &f));  // entropy at 30 is logged before the frame
  env.GetEntropy(30, e);
  EXPECT_EQ(e[3], 4);
  EXPECT_TRUE(env.PollNetFrame(30, &f));
  EXPECT_EQ(f, (std::vector<uint8_t>{7, 7}));
  EXPECT_NO_THROW(env.CheckNoInputBefore(50));
  EXPECT_TRUE(env.WaitForInput(40, 12345));  // a wait with a deadline: not an input
  EXPECT_EQ(env.SampleTime(50), 6);
  EXPECT_EQ(env.inputs_consumed(), 5u);
  EXPECT_FALSE(env.failure());
}

TEST(ReplayingEnvironment, IdleWaitsReturnAtOnceWithTheRecordingsAnswer) {
  // A wait with nothing scheduled returns the logged IdleWake, whatever else the log holds.
  VectorRecordSource s({{10, log::IdleWake{true}}, {10, log::TimeSample{5}}, {20, log::IdleWake{false}},
                        {20, log::TimeSample{6}}});
  ReplayingEnvironment env(s);
  EXPECT_TRUE(env.WaitForInput(10, Environment::kWaitForever));
  EXPECT_EQ(env.SampleTime(10), 5);
  EXPECT_TRUE(env.WaitForInput(15, 777));  // a finite deadline: answered at once, nothing consumed
  EXPECT_FALSE(env.WaitForInput(20, Environment::kWaitForever));  // input followed, yet the wait said no
  EXPECT_EQ(env.SampleTime(20), 6);
  EXPECT_FALSE(env.failure());
  // A forever-wait the log has no IdleWake for is a divergence, reported and answered neutrally.
  VectorRecordSource t({{10, log::TimeSample{5}}});
  int reported = 0;
  ReplayingEnvironmentOptions o;
  o.on_failure = [&](std::exception_ptr) { ++reported; };
  ReplayingEnvironment env2(t, o);
  EXPECT_EQ(ExpectDivergence(env2, [&] { env2.WaitForInput(10, Environment::kWaitForever); }).kind(),
            Divergence::Kind::kInput);
  EXPECT_EQ(env2.SampleTime(10), 0) << "after a failure every answer is neutral";
  EXPECT_EQ(reported, 1) << "only the first failure is reported";
  // stop_in_wait: the recording was stopped in this wait; only the IdleWake that wait logged
  // is consumed, nothing after it.
  VectorRecordSource u({{10, log::IdleWake{true}}, {12, log::TimeSample{1}}});
  ReplayingEnvironmentOptions so;
  so.stop_in_wait = [](uint64_t icount) { return icount == 10 || icount == 11; };
  ReplayingEnvironment env3(u, so);
  EXPECT_FALSE(env3.WaitForInput(11, Environment::kWaitForever));
  EXPECT_EQ(env3.inputs_consumed(), 0u) << "an IdleWake of another icount stays";
  EXPECT_FALSE(env3.WaitForInput(10, Environment::kWaitForever));
  EXPECT_EQ(env3.inputs_consumed(), 1u);
  EXPECT_EQ(env3.PeekInput()->icount, 12u);
}

TEST(ReplayingEnvironment, DetectsEveryInputDivergence) {
  {  // time asked at the wrong icount
    VectorRecordSource s(Inputs());
    ReplayingEnvironment env(s);
    Divergence d = ExpectDivergence(env, [&] { env.SampleTime(9); });
    EXPECT_EQ(d.kind(), Divergence::Kind::kInput);
    EXPECT_EQ(d.icount(), 9u);
    EXPECT_NE(std::string(d.what()).find("TimeSample at icount 10"), std::string::npos) << d.what();
  }
  {  // the wrong kind at the right icount
    VectorRecordSource s(Inputs());
    ReplayingEnvironment env(s);
    uint8_t e[4];
    EXPECT_EQ(ExpectDivergence(env, [&] { env.GetEntropy(10, e); }).kind(), Divergence::Kind::kInput);
  }
  {  // a logged time sample skipped: reported at the logged icount
    VectorRecordSource s(Inputs());
    ReplayingEnvironment env(s);
    Divergence d = ExpectDivergence(env, [&] { env.PollConsoleInput(11, 8); });
    EXPECT_EQ(d.kind(), Divergence::Kind::kMissedInput);
    EXPECT_EQ(d.icount(), 10u);
  }
  {  // console input logged at 20 but the machine polls only at 25
    VectorRecordSource s(Inputs());
    ReplayingEnvironment env(s);
    env.SampleTime(10);
    Divergence d = ExpectDivergence(env, [&] { env.PollConsoleInput(25, 8); });
    EXPECT_EQ(d.kind(), Divergence::Kind::kMissedInput);
    EXPECT_EQ(d.icount(), 20u);
    EXPECT_EQ(ExpectDivergence(env, [&] { env.CheckNoInputBefore(21); }).icount(), 20u);
    EXPECT_NO_THROW(env.CheckNoInputBefore(20));
  }
  {  // sizes
    VectorRecordSource s(Inputs());
    ReplayingEnvironment env(s);
    env.SampleTime(10);
    EXPECT_EQ(ExpectDivergence(env, [&] { env.PollConsoleInput(20, 2); }).kind(), Divergence::Kind::kInputSize);
  }
  {
    VectorRecordSource s(Inputs());
    ReplayingEnvironment env(s);
    env.SampleTime(10);
    env.PollConsoleInput(20, 3);
    uint8_t e[5];
    EXPECT_EQ(ExpectDivergence(env, [&] { env.GetEntropy(30, e); }).kind(), Divergence::Kind::kInputSize);
  }
  {  // a complete log that ends: the machine must not ask for more
    VectorRecordSource s({});
    ReplayingEnvironment env(s);
    EXPECT_TRUE(env.PollConsoleInput(5, 8).empty());
    EXPECT_EQ(ExpectDivergence(env, [&] { env.SampleTime(5); }).kind(), Divergence::Kind::kInput);
  }
  {  // a cut log that ends: LogExhausted, not a divergence
    VectorRecordSource s({});
    ReplayingEnvironmentOptions o;
    o.log_complete = false;
    ReplayingEnvironment env(s, o);
    EXPECT_EQ(env.SampleTime(5), 0);
    EXPECT_THROW(std::rethrow_exception(env.failure()), LogExhausted);
  }
}

TEST(ReplayingEnvironment, OutputDigestsMatchTheRecordersAndDifferOnOtherBytes) {
  FakeEnvironment fake;
  std::vector<uint8_t> bytes;
  log::LogWriter w(std::make_unique<log::VectorSink>(&bytes), log::LogHeader{});
  RecordingEnvironment rec(fake, w);
  VectorRecordSource s({});
  ReplayingEnvironment rep(s);
  const uint8_t a[] = {'x', 'y'}, b[] = {'x', 'z'};
  rec.ConsoleOutput(1, a);
  rep.ConsoleOutput(1, a);
  rec.NetFrameSent(2, b);
  rep.NetFrameSent(2, b);
  EXPECT_EQ(rec.output(log::OutputChannel::kConsole), rep.output(log::OutputChannel::kConsole));
  EXPECT_EQ(rec.output(log::OutputChannel::kNet), rep.output(log::OutputChannel::kNet));
  rec.ConsoleOutput(3, a);
  rep.ConsoleOutput(3, b);
  EXPECT_NE(rec.output(log::OutputChannel::kConsole), rep.output(log::OutputChannel::kConsole));
}

TEST(ReplayingEnvironment, CutLogsReplayUpToTheirLastWholeFrame) {
  std::vector<Op> ops;
  std::vector<uint8_t> bytes = RecordRandom(77, 600, &ops, 300);
  size_t header = log::LogReader::FromBytes(bytes).header_size();
  size_t checked = 0;
  for (size_t cut = header; cut < bytes.size(); cut += 97) {
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + cut);
    log::LogReader reader = log::LogReader::FromBytes(prefix);
    ASSERT_NE(reader.tail().state, log::TailState::kDamaged) << cut;
    if (reader.frames().empty()) continue;
    uint64_t last = reader.frames().back().header.last_icount;
    LogRecordSource source(reader, LogPosition{});
    ReplayingEnvironmentOptions o;
    o.log_complete = false;
    ReplayingEnvironment env(source, o);
    // Everything strictly before the last logged icount is whole; records at that icount
    // may continue in the frame that was cut off.
    for (const Op& op : ops) {
      if (op.icount >= last) break;
      ReplayOp(env, op);
    }
    EXPECT_NO_THROW(env.CheckNoInputBefore(last)) << cut;
    ++checked;
    if (HasFailure()) FAIL() << "cut at " << cut;
  }
  EXPECT_GT(checked, 20u);
}

TEST(LogRecordSource, StartsRightAfterACheckpoint) {
  std::vector<uint8_t> bytes;
  {
    log::LogWriter w(std::make_unique<log::VectorSink>(&bytes), log::LogHeader{});
    w.Append({5, log::TimeSample{1}});
    w.Append({10, log::TimeSample{2}});  // before the snapshot at 10: already taken in
    std::vector<uint8_t> blob(3000, 0xab);
    w.AppendSnapshot(10, 1, blob, 0x1234);
    w.Append({10, log::TimeSample{3}});
    w.Append({20, log::TimeSample{4}});
    w.Finish(30, log::End{});
  }
  log::LogReader reader = log::LogReader::FromBytes(bytes);
  ASSERT_EQ(reader.checkpoints().size(), 1u);
  LogRecordSource src(reader, PositionAfterCheckpoint(reader, reader.checkpoints()[0]));
  ReplayingEnvironment env(src);
  EXPECT_EQ(env.SampleTime(10), 3);
  EXPECT_EQ(env.SampleTime(20), 4);
  log::CheckpointInfo bogus = reader.checkpoints()[0];
  bogus.snapshot_id = 9;
  EXPECT_THROW(PositionAfterCheckpoint(reader, bogus), log::LogError);
}

}  // namespace
}  // namespace vmrr
