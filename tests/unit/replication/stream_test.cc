// The shadow's streamed log (GrowingLog) against LogReader on the same bytes, cut at random
// places; damage in the stream refused; and console output commit (ConsoleCommitter): held
// until an acknowledgement covers both its stream offset and its icount, written at absolute
// offsets, bounded with backpressure.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "logformat/error.h"
#include "logformat/log_reader.h"
#include "logformat/log_writer.h"
#include "recorder/output_commit.h"
#include "recorder/primary_link.h"
#include "replayer/following_replay.h"

namespace vmrr {
namespace {

std::vector<uint8_t> MakeLog(uint32_t seed, std::vector<log::Record>* expected) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes;
  log::WriterOptions wo;
  wo.max_frame_bytes = 300;
  wo.max_frame_age_ns = 0;
  wo.snapshot_chunk_bytes = 1000;
  log::LogHeader header;
  header.engine_version = "test";
  header.machine_config = {1, 2, 3};
  log::LogWriter w(std::make_unique<log::VectorSink>(&bytes), header, wo);
  std::vector<uint8_t> blob(4000);
  for (auto& b : blob) b = static_cast<uint8_t>(rng());
  w.AppendSnapshot(0, 0, blob, 42);
  uint64_t icount = 0;
  for (int i = 0; i < 2000; ++i) {
    icount += rng() % 3 == 0 ? 0 : rng() % 10000;
    if (rng() % 2) {
      w.Append(log::Record{icount, log::TimeSample{static_cast<int64_t>(rng())}});
    } else {
      std::vector<uint8_t> e(1 + rng() % 40);
      for (auto& b : e) b = static_cast<uint8_t>(rng());
      w.Append(log::Record{icount, log::Entropy{e}});
    }
  }
  w.Finish(icount, log::End{log::EndReason::kGuestExit, 3, 99});
  log::LogReader reader = log::LogReader::FromBytes(bytes);
  std::vector<log::Record> frame;
  for (size_t f = 0; f < reader.frames().size(); ++f) {
    reader.ReadFrame(f, &frame);
    expected->insert(expected->end(), frame.begin(), frame.end());
  }
  return bytes;
}

TEST(GrowingLog, StreamCutAnywhereGivesTheReadersRecords) {
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    std::vector<log::Record> expected;
    const std::vector<uint8_t> bytes = MakeLog(seed, &expected);
    std::mt19937 rng(seed * 77);
    GrowingLog g;
    GrowingLog::Cursor cursor(g, 0);
    std::vector<log::Record> got;
    size_t pos = 0;
    uint64_t prev_held = 0;
    while (pos < bytes.size()) {
      const size_t n = std::min<size_t>(bytes.size() - pos, 1 + rng() % 700);
      g.Append({bytes.data() + pos, n});
      pos += n;
      log::Record r;
      while (cursor.Next(&r)) got.push_back(r);
      // held_below: no record below it may still be missing.
      EXPECT_GE(g.held_below(), prev_held);
      prev_held = g.held_below();
      for (size_t i = got.size(); i < expected.size(); ++i) ASSERT_GE(expected[i].icount, g.held_below());
    }
    EXPECT_TRUE(g.finished());
    EXPECT_FALSE(cursor.MayGrow());
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(got[i] == expected[i]) << "record " << i;
    EXPECT_EQ(g.header().machine_config, (std::vector<uint8_t>{1, 2, 3}));
  }
}

TEST(GrowingLog, SyncIcountRaisesHeldBelow) {
  std::vector<log::Record> expected;
  const std::vector<uint8_t> bytes = MakeLog(9, &expected);
  GrowingLog g;
  g.Append({bytes.data(), 200});
  g.SetSyncIcount(5);
  EXPECT_EQ(g.held_below(), 5u);
  g.SetSyncIcount(3);  // never goes back
  EXPECT_EQ(g.held_below(), 5u);
}

TEST(GrowingLog, DamagedFrameIsRefused) {
  std::vector<log::Record> expected;
  std::vector<uint8_t> bytes = MakeLog(4, &expected);
  log::LogReader reader = log::LogReader::FromBytes(bytes);
  ASSERT_GT(reader.frames().size(), 10u);
  const log::FrameInfo& f = reader.frames()[8];
  for (uint64_t where : {f.offset + 2, f.offset + 30, f.offset + log::kFrameHeaderSize + 3}) {
    std::vector<uint8_t> bad = bytes;
    bad[where] ^= 0x40;
    GrowingLog g;
    bool threw = false;
    try {
      g.Append(bad);
    } catch (const log::LogError& e) {
      threw = true;
      EXPECT_EQ(e.code(), log::ErrorCode::kDamaged);
    }
    EXPECT_TRUE(threw) << "offset " << where;
    EXPECT_FALSE(g.finished());
  }
  // Not a log at all.
  GrowingLog g;
  std::vector<uint8_t> junk(100, 'x');
  EXPECT_THROW(g.Append(junk), log::LogError);
}

std::string FileContents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::span<const uint8_t> Bytes(const char* s) { return {reinterpret_cast<const uint8_t*>(s), std::strlen(s)}; }

TEST(ConsoleCommitter, HeldUntilOffsetAndIcountAreAcknowledged) {
  char path[] = "/tmp/vmrr_commit_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ConsoleCommitter c(fd, true, 1 << 20);
  c.Hold(100, 5, Bytes("abc"));
  c.Hold(150, 9, Bytes("de"));
  EXPECT_EQ(FileContents(path), "");
  c.Acknowledged(99, 4);  // neither far enough (acknowledgements only grow)
  EXPECT_EQ(FileContents(path), "");
  c.Acknowledged(120, 4);  // the stream is far enough, the icount not
  EXPECT_EQ(FileContents(path), "");
  c.Acknowledged(120, 5);
  EXPECT_EQ(FileContents(path), "abc");
  EXPECT_EQ(c.held(), 2u);
  c.Acknowledged(150, 9);
  EXPECT_EQ(FileContents(path), "abcde");
  EXPECT_TRUE(c.WaitAllReleased(10));
  // A later output already covered by an acknowledgement goes out at once.
  c.Hold(140, 8, Bytes("f"));
  EXPECT_EQ(FileContents(path), "abcdef");
  // Positional: someone else (a shadow) writing the same bytes at the same offsets changes nothing.
  ASSERT_EQ(pwrite(fd, "abcdef", 6, 0), 6);
  EXPECT_EQ(FileContents(path), "abcdef");
  ::close(fd);
  ::unlink(path);
}

TEST(ConsoleCommitter, FullBufferBlocksTheGuestUntilAcknowledged) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ConsoleCommitter c(fds[1], false, 4);
  c.Hold(10, 1, Bytes("xyz"));
  std::atomic<bool> returned{false};
  std::thread guest([&] {
    c.Hold(20, 2, Bytes("uvw"));  // 6 > 4 bytes: waits for room
    returned.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_FALSE(returned.load());
  EXPECT_EQ(c.backpressure_waits(), 1u);
  c.Acknowledged(10, 1);
  guest.join();
  EXPECT_TRUE(returned.load());
  EXPECT_EQ(c.held(), 3u);
  c.Acknowledged(20, 2);
  char buf[16] = {};
  ASSERT_EQ(read(fds[0], buf, sizeof buf), 6);
  EXPECT_STREQ(buf, "xyzuvw");
  EXPECT_LE(c.max_held_seen(), 4u);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(ConsoleCommitter, InterruptUnblocksWithoutDropping) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ConsoleCommitter c(fds[1], false, 2);
  c.Hold(10, 1, Bytes("ab"));
  std::thread guest([&] { c.Hold(20, 2, Bytes("cd")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  c.Interrupt();
  guest.join();
  EXPECT_EQ(c.held(), 4u);  // held beyond the bound, nothing dropped
  EXPECT_EQ(c.released(), 0u);
  ::close(fds[0]);
  ::close(fds[1]);
}

// --on-shadow-loss continue: once released unprotected, what was held goes out in order and
// everything later at once, with no acknowledgement; a guest blocked on the full buffer resumes.
TEST(ConsoleCommitter, ReleaseUnprotectedReleasesHeldAndLaterOutput) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ConsoleCommitter c(fds[1], false, 2);
  c.Hold(10, 1, Bytes("ab"));
  std::atomic<bool> returned{false};
  std::thread guest([&] {
    c.Hold(20, 2, Bytes("cd"));
    returned.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(returned.load());
  EXPECT_FALSE(c.unprotected());
  c.ReleaseUnprotected();
  guest.join();
  c.Hold(1000, 1000, Bytes("e"));
  EXPECT_TRUE(c.unprotected());
  EXPECT_EQ(c.held(), 0u);
  EXPECT_EQ(c.released(), 5u);
  char buf[16] = {};
  ASSERT_EQ(read(fds[0], buf, sizeof buf), 5);
  EXPECT_STREQ(buf, "abcde");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(ShadowLossPolicy, Parses) {
  ShadowLossPolicy p = ShadowLossPolicy::kContinue;
  int ms = -1;
  std::string error;
  EXPECT_TRUE(ParseShadowLossPolicy("hold", &p, &ms, &error));
  EXPECT_EQ(p, ShadowLossPolicy::kHold);
  EXPECT_EQ(ms, 0);
  EXPECT_TRUE(ParseShadowLossPolicy("continue", &p, &ms, &error));
  EXPECT_EQ(p, ShadowLossPolicy::kContinue);
  EXPECT_EQ(ms, 0);
  EXPECT_TRUE(ParseShadowLossPolicy("continue:250", &p, &ms, &error));
  EXPECT_EQ(ms, 250);
  for (const char* bad : {"", "Hold", "continue:", "continue:-1", "continue:1x", "continue:12345678", "drop"})
    EXPECT_FALSE(ParseShadowLossPolicy(bad, &p, &ms, &error)) << bad;
}

}  // namespace
}  // namespace vmrr
