// RecordingEnvironment (what it logs, what it forwards) and the session configuration codec.
#include <gtest/gtest.h>

#include <time.h>

#include <algorithm>

#include "logformat/log_reader.h"
#include "hv-hooks/host/live_environment.h"
#include "recorder/recording_environment.h"
#include "hv-hooks/session/session_config.h"
#include "tests/unit/recorder/fake_environment.h"

namespace vmrr {
namespace {

using test::FakeEnvironment;

std::vector<log::Record> AllRecords(const std::vector<uint8_t>& bytes) {
  log::LogReader reader = log::LogReader::FromBytes(bytes);
  std::vector<log::Record> all, frame;
  for (size_t i = 0; i < reader.frames().size(); ++i) {
    reader.ReadFrame(i, &frame);
    all.insert(all.end(), frame.begin(), frame.end());
  }
  return all;
}

TEST(RecordingEnvironment, LogsEveryInputWithItsIcountAndForwardsResults) {
  FakeEnvironment fake;
  fake.times = {1000, 2000};
  fake.console = {{}, {'h', 'i'}};
  fake.frames = {{}, {9, 8, 7}};
  std::vector<uint8_t> bytes;
  {
    log::LogWriter w(std::make_unique<log::VectorSink>(&bytes), log::LogHeader{});
    RecordingEnvironment env(fake, w);
    EXPECT_EQ(env.SampleTime(10), 1000);
    EXPECT_TRUE(env.PollConsoleInput(11, 16).empty());  // empty poll: not logged
    EXPECT_EQ(env.PollConsoleInput(12, 16), (std::vector<uint8_t>{'h', 'i'}));
    std::vector<uint8_t> frame;
    EXPECT_FALSE(env.PollNetFrame(13, &frame));
    EXPECT_TRUE(env.PollNetFrame(14, &frame));
    EXPECT_EQ(frame, (std::vector<uint8_t>{9, 8, 7}));
    uint8_t rnd[3];
    env.GetEntropy(15, rnd);
    EXPECT_EQ(rnd[0], 1);
    EXPECT_EQ(rnd[2], 3);
    EXPECT_EQ(env.SampleTime(15), 2000);
    EXPECT_EQ(env.inputs_logged(), 5u);
    w.Finish(20, log::End{});
  }
  std::vector<log::Record> expect = {
      {10, log::TimeSample{1000}},       {12, log::ConsoleIn{{'h', 'i'}}},
      {14, log::NetRx{{9, 8, 7}}},       {15, log::Entropy{{1, 2, 3}}},
      {15, log::TimeSample{2000}},       {20, log::End{}},
  };
  EXPECT_EQ(AllRecords(bytes), expect);
}

TEST(RecordingEnvironment, OutputsGoToTheHostAndIntoRunningDigests) {
  FakeEnvironment fake;
  std::vector<uint8_t> bytes;
  log::LogWriter w(std::make_unique<log::VectorSink>(&bytes), log::LogHeader{});
  RecordingEnvironment env(fake, w);
  const uint8_t a[] = {'a', 'b'};
  const uint8_t f[] = {1, 2, 3, 4};
  env.ConsoleOutput(5, a);
  env.NetFrameSent(6, f);
  EXPECT_EQ(fake.console_out, (std::vector<uint8_t>{'a', 'b'}));
  EXPECT_EQ(fake.net_out, (std::vector<uint8_t>{1, 2, 3, 4}));
  OutputDigest expect;
  expect.Add(a);
  EXPECT_EQ(env.output(log::OutputChannel::kConsole), expect);
  EXPECT_EQ(env.output(log::OutputChannel::kNet).total_bytes, 4u);
  EXPECT_NE(env.output(log::OutputChannel::kNet).digest, 0u);

  env.AppendOutputRecords(7, false);  // both changed
  env.AppendOutputRecords(8, false);  // nothing changed: no record
  env.ConsoleOutput(9, a);
  env.AppendOutputRecords(10, false);  // console only
  env.AppendOutputRecords(11, true);   // both, forced
  w.Finish(12, log::End{});
  std::vector<log::Record> recs = AllRecords(bytes);
  std::vector<uint64_t> icounts;
  for (const auto& r : recs)
    if (std::holds_alternative<log::Output>(r.body)) icounts.push_back(r.icount);
  EXPECT_EQ(icounts, (std::vector<uint64_t>{7, 7, 10, 11, 11}));
  const auto& last_console = std::get<log::Output>(recs[3].body);
  EXPECT_EQ(last_console.channel, log::OutputChannel::kConsole);
  EXPECT_EQ(last_console.total_bytes, 4u);
}

TEST(RecordingEnvironment, AForeverWaitsAnswerIsLoggedAndAFiniteOnesIsNot) {
  struct Fake : FakeEnvironment {
    bool WaitForInput(uint64_t, int64_t) override { return answer; }
    bool answer = true;
  } fake;
  std::vector<uint8_t> bytes;
  {
    log::LogWriter w(std::make_unique<log::VectorSink>(&bytes), log::LogHeader{});
    RecordingEnvironment env(fake, w);
    EXPECT_TRUE(env.WaitForInput(3, Environment::kWaitForever));
    EXPECT_TRUE(env.PollConsoleInput(3, 16).empty());  // an empty poll is never logged
    EXPECT_TRUE(env.WaitForInput(5, LiveEnvironment::HostNowNs() + 1'000'000));  // not an input
    // A forever wait goes on until input may be there (the live answer false only ends a
    // slice), unless a stop cuts it short: logged too, with the answer it had.
    fake.answer = false;
    env.InterruptWait();
    EXPECT_FALSE(env.WaitForInput(8, Environment::kWaitForever));
    w.Finish(9, log::End{});
  }
  std::vector<log::Record> expect = {{3, log::IdleWake{true}}, {8, log::IdleWake{false}}, {9, log::End{}}};
  EXPECT_EQ(AllRecords(bytes), expect);
}

TEST(OutputDigest, DependsOnContentAndOrder) {
  OutputDigest x, y, z;
  const uint8_t a[] = {'a'}, b[] = {'b'};
  x.Add(a), x.Add(b);
  y.Add(b), y.Add(a);
  z.Add(a), z.Add(b);
  EXPECT_NE(x, y);
  EXPECT_EQ(x, z);
}

TEST(RecordingEnvironment, IdleWaitIsNotLoggedAndIsSlicedSoFramesGetFlushed) {
  FakeEnvironment fake;
  std::vector<uint8_t> bytes;
  uint64_t now = 0;
  log::WriterOptions wo;
  wo.clock = [&] { return now; };
  wo.max_frame_age_ns = 50;
  log::LogWriter w(std::make_unique<log::VectorSink>(&bytes), log::LogHeader{}, wo);
  RecordingEnvironment env(fake, w, RecordingEnvironmentOptions{1'000'000});  // 1 ms slices
  env.SampleTime(1);
  size_t before = bytes.size();
  now = 100;  // the open frame is now older than its age limit
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t host_now = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  // The fake returns "no input" at once, so the wait runs slice after slice until the real
  // deadline (20 ms away) and reports what the inner environment said.
  EXPECT_FALSE(env.WaitForInput(0, host_now + 20'000'000));
  EXPECT_GE(fake.waits, 2);
  EXPECT_EQ(fake.last_deadline, host_now + 20'000'000);
  EXPECT_GT(bytes.size(), before);  // the aged frame was written out
  EXPECT_EQ(env.inputs_logged(), 1u);
}

SessionConfig SampleConfig() {
  SessionConfig c;
  c.machine.memory_bytes = 64ull << 20;
  c.machine.clock_mode = VirtualClock::Mode::kHost;
  c.machine.sample_interval = 12345;
  c.machine.icount_epoch_ns = -5;
  c.machine.disk_image = "/tmp/disk.img";
  c.machine.disk_write_through = false;
  c.machine.net = true;
  c.machine.virtio_rng = false;
  c.kernel_path = "guest.elf";
  c.digest_interval = 1000;
  c.checkpoint_interval = 100000;
  c.irq_records = false;
  c.machine_digest_interval = 2000;
  c.initrd_path = "/boot/initrd.img";
  c.cmdline = "console=ttyS0 root=/dev/vda";
  return c;
}

TEST(SessionConfig, RoundTrips) {
  SessionConfig c = SampleConfig();
  EXPECT_EQ(DecodeSessionConfig(EncodeSessionConfig(c)), c);
  c.machine.disk_image.reset();
  EXPECT_EQ(DecodeSessionConfig(EncodeSessionConfig(c)), c);
}

TEST(SessionConfig, IgnoresTrailingBytesOfANewerMinorEncoding) {
  std::vector<uint8_t> b = EncodeSessionConfig(SampleConfig());
  b.push_back(0x42);
  EXPECT_EQ(DecodeSessionConfig(b), SampleConfig());
}

TEST(SessionConfig, RefusesVersion1LogsWithAMessageSayingWhy) {
  std::vector<uint8_t> b = EncodeSessionConfig(SampleConfig());
  b[4] = 1;
  b[5] = 0;
  try {
    DecodeSessionConfig(b);
    ADD_FAILURE() << "a version 1 session configuration was accepted";
  } catch (const SessionConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("older"), std::string::npos) << e.what();
  }
}

TEST(SessionConfig, RefusesVersions2To4NamingWhatTheyLack) {
  for (const uint8_t version : {2, 3, 4}) {
    std::vector<uint8_t> b = EncodeSessionConfig(SampleConfig());
    b[4] = version;
    b[5] = 0;
    try {
      DecodeSessionConfig(b);
      ADD_FAILURE() << "version " << int{version} << " was accepted";
    } catch (const SessionConfigError& e) {
      const std::string want = "is " + std::to_string(version) + ", older than the 5";
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
  // The command line is a bounded string like the paths.
  SessionConfig c = SampleConfig();
  c.cmdline = std::string(4097, 'x');
  EXPECT_THROW(DecodeSessionConfig(EncodeSessionConfig(c)), SessionConfigError);
  c.cmdline = std::string(4096, 'x');
  EXPECT_EQ(DecodeSessionConfig(EncodeSessionConfig(c)).cmdline, c.cmdline);
}

TEST(SessionConfig, TheMachineConfigurationIsTheSnapshotsEncoding) {
  // One codec: the bytes after the version and length are exactly SaveMachineConfig's.
  const SessionConfig c = SampleConfig();
  const std::vector<uint8_t> b = EncodeSessionConfig(c);
  StateWriter w;
  SaveMachineConfig(w, c.machine);
  ASSERT_LT(w.bytes().size(), 128u);  // a one-byte varint length
  ASSERT_EQ(b[6], w.bytes().size());
  EXPECT_TRUE(std::equal(w.bytes().begin(), w.bytes().end(), b.begin() + 7));
}

TEST(SessionConfig, RejectsEveryTruncationAndBadFields) {
  std::vector<uint8_t> b = EncodeSessionConfig(SampleConfig());
  for (size_t n = 0; n < b.size(); ++n)
    EXPECT_THROW(DecodeSessionConfig(std::span<const uint8_t>(b.data(), n)), SessionConfigError) << n;
  std::vector<uint8_t> bad = b;
  bad[0] = 'X';
  EXPECT_THROW(DecodeSessionConfig(bad), SessionConfigError);
  bad = b;
  bad[4] = 9;  // version 9
  EXPECT_THROW(DecodeSessionConfig(bad), SessionConfigError);
  SessionConfig c = SampleConfig();
  c.machine.memory_bytes = 0;
  EXPECT_THROW(DecodeSessionConfig(EncodeSessionConfig(c)), SessionConfigError);
  c = SampleConfig();
  c.machine.clock_mode = static_cast<VirtualClock::Mode>(2);
  EXPECT_THROW(DecodeSessionConfig(EncodeSessionConfig(c)), SessionConfigError);
  c = SampleConfig();
  c.machine.memory_bytes = (64ull << 20) + 1;  // not whole pages
  EXPECT_THROW(DecodeSessionConfig(EncodeSessionConfig(c)), SessionConfigError);
  c = SampleConfig();
  c.machine.sample_interval = 0;
  EXPECT_THROW(DecodeSessionConfig(EncodeSessionConfig(c)), SessionConfigError);
  c = SampleConfig();
  c.digest_interval = 0;
  EXPECT_THROW(DecodeSessionConfig(EncodeSessionConfig(c)), SessionConfigError);
  c = SampleConfig();
  c.machine_digest_interval = 0;
  EXPECT_THROW(DecodeSessionConfig(EncodeSessionConfig(c)), SessionConfigError);
  std::vector<uint8_t> half = EncodeSessionConfig(SampleConfig());
  half.pop_back();  // a varint cut in the middle
  EXPECT_THROW(DecodeSessionConfig(half), SessionConfigError);
  try {
    c = SampleConfig();
    c.machine.memory_bytes = 0;
    DecodeSessionConfig(EncodeSessionConfig(c));
    ADD_FAILURE() << "memory size 0 was accepted";
  } catch (const SessionConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("memory size"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vmrr
