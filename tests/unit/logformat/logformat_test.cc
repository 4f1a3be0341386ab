// Tests of the log format: round trips of every record kind across frames, seeking,
// snapshots, age-based frame closing, detection and location of damage in every region,
// recovery from truncation at every offset, version and kind compatibility.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include <gtest/gtest.h>

#include "logformat/format.h"
#include "logformat/log_reader.h"
#include "logformat/log_writer.h"
#include "logformat/record_codec.h"
#include "logformat/varint.h"

namespace vmrr::log {
namespace {

LogHeader TestHeader() {
  LogHeader h;
  h.engine_version = "vmrr-test";
  h.host_description = "unit test host";
  h.creation_time_unix_ns = 1'700'000'000'000'000'000ull;
  h.machine_config = {1, 2, 3, 4, 5};
  ImageHash image;
  image.name = "disk:test.img";
  image.size = 1 << 20;
  for (int i = 0; i < 16; ++i) image.xxh128[i] = static_cast<uint8_t>(i * 17);
  h.images.push_back(image);
  return h;
}

std::vector<uint8_t> RandomBytes(std::mt19937_64& rng, size_t max) {
  std::vector<uint8_t> v(rng() % (max + 1));
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// A random stream touching every kind, with non-decreasing icounts.
std::vector<Record> RandomRecords(uint64_t seed, size_t n) {
  std::mt19937_64 rng(seed);
  std::vector<Record> out;
  uint64_t icount = rng() % 1000;
  int64_t t = 1'000'000'000;
  for (size_t i = 0; i < n; ++i) {
    icount += (rng() % 4 == 0) ? 0 : rng() % 200000;
    Record r;
    r.icount = icount;
    switch (i % 12) {
      case 0: t += static_cast<int64_t>(rng() % 3'000'000); r.body = TimeSample{t}; break;
      case 1: r.body = ConsoleIn{RandomBytes(rng, 20)}; break;
      case 2: r.body = NetRx{RandomBytes(rng, 1500)}; break;
      case 3: r.body = Entropy{RandomBytes(rng, 8)}; break;
      case 4: r.body = IrqDelivered{static_cast<uint32_t>(rng() % 256)}; break;
      case 5: r.body = Output{OutputChannel(rng() % 2), rng() % 100000, rng()}; break;
      case 6: r.body = Digest{DigestScope(rng() % 2), rng()}; break;
      case 7: r.body = Checkpoint{rng() % 10, rng() % 100000, rng()}; break;
      case 8: {
        uint64_t total = 150 + rng() % 1000;
        uint64_t off = rng() % 100;
        std::vector<uint8_t> b = RandomBytes(rng, 50);
        r.body = SnapshotChunk{rng() % 10, off, total, b};
        break;
      }
      case 9: r.body = Marker{"marker " + std::to_string(rng() % 1000)}; break;
      case 10: r.body = End{EndReason(rng() % 5), static_cast<int32_t>(rng()), rng()}; break;
      default: r.body = UnknownRecord{static_cast<uint8_t>(20 + rng() % 10), RandomBytes(rng, 30)}; break;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<uint8_t> WriteLog(const std::vector<Record>& records, WriterOptions options, bool finish = true,
                              std::vector<FrameInfo>* frames_out = nullptr) {
  std::vector<uint8_t> bytes;
  {
    LogWriter w(std::make_unique<VectorSink>(&bytes), TestHeader(), std::move(options));
    for (const Record& r : records) w.Append(r);
    if (finish) w.Finish(records.empty() ? 0 : records.back().icount, End{EndReason::kGuestExit, 3, 42});
    else w.Flush();
  }
  (void)frames_out;
  return bytes;
}

std::vector<Record> ReadAll(const LogReader& reader) {
  std::vector<Record> all, frame;
  for (size_t i = 0; i < reader.frames().size(); ++i) {
    reader.ReadFrame(i, &frame);
    all.insert(all.end(), frame.begin(), frame.end());
  }
  return all;
}

WriterOptions SmallFrames(size_t bytes = 512) {
  WriterOptions o;
  o.max_frame_bytes = bytes;
  o.max_frame_age_ns = 0;
  return o;
}

TEST(LogFormat, VarintRejectsOverlongAndOverflow) {
  std::vector<uint8_t> eleven(11, 0x80);
  const uint8_t* p = eleven.data();
  uint64_t v;
  EXPECT_FALSE(GetVarint(&p, eleven.data() + eleven.size(), &v));
  std::vector<uint8_t> overflow(9, 0xff);
  overflow.push_back(0x02);  // bit 64 and above
  p = overflow.data();
  EXPECT_FALSE(GetVarint(&p, overflow.data() + overflow.size(), &v));
  std::vector<uint8_t> max;
  PutVarint(max, UINT64_MAX);
  p = max.data();
  ASSERT_TRUE(GetVarint(&p, max.data() + max.size(), &v));
  EXPECT_EQ(v, UINT64_MAX);
  for (int64_t x : std::vector<int64_t>{0, 1, -1, 1234567, -1234567, INT64_MAX, INT64_MIN})
    EXPECT_EQ(UnZigZag(ZigZag(x)), x);
}

TEST(LogFormat, RoundTripEveryKindAcrossFrames) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    std::vector<Record> records = RandomRecords(seed, 3000);
    std::vector<uint8_t> bytes = WriteLog(records, SmallFrames(700 + seed * 300));
    LogReader reader = LogReader::FromBytes(bytes);
    EXPECT_TRUE(reader.complete()) << reader.tail().message;
    EXPECT_EQ(reader.header(), TestHeader());
    EXPECT_GT(reader.frames().size(), 20u);
    std::vector<Record> back = ReadAll(reader);
    ASSERT_EQ(back.size(), records.size() + 1);  // + End written by Finish
    for (size_t i = 0; i < records.size(); ++i) ASSERT_EQ(back[i], records[i]) << "record " << i;
    EXPECT_EQ(std::get<End>(back.back().body), (End{EndReason::kGuestExit, 3, 42}));
  }
}

TEST(LogFormat, UncompressedFramesRoundTrip) {
  std::vector<Record> records = RandomRecords(9, 500);
  WriterOptions o = SmallFrames(1000);
  o.compress = false;
  LogReader reader = LogReader::FromBytes(WriteLog(records, o));
  for (const FrameInfo& f : reader.frames()) EXPECT_EQ(f.header.codec, FrameCodec::kRaw);
  std::vector<Record> back = ReadAll(reader);
  back.pop_back();
  EXPECT_EQ(back, records);
}

TEST(LogFormat, SeekFindsTheFrameHoldingAnIcount) {
  std::vector<Record> records = RandomRecords(4, 4000);
  LogReader reader = LogReader::FromBytes(WriteLog(records, SmallFrames()));
  std::mt19937_64 rng(5);
  std::vector<Record> frame;
  for (int trial = 0; trial < 300; ++trial) {
    uint64_t target = rng() % (records.back().icount + 10);
    size_t f = reader.FindFrame(target);
    // The expected answer by linear search over the records: the first record at or after target.
    auto it = std::find_if(records.begin(), records.end(), [&](const Record& r) { return r.icount >= target; });
    if (it == records.end()) {
      // Only the End record (at the last icount) can follow.
      EXPECT_GE(f, reader.frames().size() - 1);
      continue;
    }
    ASSERT_LT(f, reader.frames().size());
    reader.ReadFrame(f, &frame);
    bool found = std::any_of(frame.begin(), frame.end(), [&](const Record& r) { return r == *it; });
    EXPECT_TRUE(found) << "target " << target << " frame " << f;
    if (f > 0) {
      EXPECT_LT(reader.frames()[f - 1].header.last_icount, target);
    }
  }
}

TEST(LogFormat, SnapshotsSplitAcrossFramesAndReassemble) {
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> blob1(3'500'000), blob2(10);
  std::mt19937_64 rng(7);
  for (auto& b : blob1) b = static_cast<uint8_t>(rng() % 7);  // compressible, not trivially
  for (auto& b : blob2) b = static_cast<uint8_t>(rng());
  WriterOptions o = SmallFrames(4096);
  o.snapshot_chunk_bytes = 1 << 20;
  {
    LogWriter w(std::make_unique<VectorSink>(&bytes), TestHeader(), o);
    w.Append(Record{5, TimeSample{100}});
    w.AppendSnapshot(10, 1, blob1, 0xabc);
    w.Append(Record{20, Digest{DigestScope::kCpu, 9}});
    w.AppendSnapshot(30, 2, blob2, 0xdef);
    w.Finish(40, End{});
  }
  for (bool finished : {true, false}) {
    std::vector<uint8_t> b = bytes;
    if (!finished) {
      // Drop footer and trailer: the scan must rebuild the same checkpoint index.
      LogReader full = LogReader::FromBytes(bytes);
      b.resize(full.frames().back().end_offset());
    }
    LogReader reader = LogReader::FromBytes(b);
    EXPECT_EQ(reader.complete(), finished);
    ASSERT_EQ(reader.checkpoints().size(), 2u);
    EXPECT_EQ(reader.checkpoints()[0].icount, 10u);
    EXPECT_EQ(reader.checkpoints()[1].snapshot_size, 10u);
    EXPECT_EQ(reader.ReadSnapshot(reader.checkpoints()[0]), blob1);
    EXPECT_EQ(reader.ReadSnapshot(reader.checkpoints()[1]), blob2);
    // 3.5 MB in 1 MiB chunks: four chunk frames.
    size_t chunk_frames = 0;
    std::vector<Record> recs;
    for (size_t i = 0; i < reader.frames().size(); ++i) {
      reader.ReadFrame(i, &recs);
      if (std::holds_alternative<SnapshotChunk>(recs[0].body)) {
        ++chunk_frames;
        EXPECT_EQ(recs.size(), 1u);
      }
    }
    EXPECT_EQ(chunk_frames, 5u);
  }
}

TEST(LogFormat, FramesCloseByAge) {
  uint64_t now = 0;
  WriterOptions o;
  o.max_frame_bytes = 1 << 20;
  o.max_frame_age_ns = 1000;
  o.clock = [&] { return now; };
  std::vector<uint8_t> bytes;
  LogWriter w(std::make_unique<VectorSink>(&bytes), TestHeader(), o);
  w.Append(Record{1, TimeSample{1}});
  now = 500;
  w.Append(Record{2, TimeSample{2}});
  w.Poll();
  EXPECT_EQ(w.frames_written(), 0u);
  now = 1000;
  w.Poll();
  EXPECT_EQ(w.frames_written(), 1u);
  w.Append(Record{3, TimeSample{3}});
  now = 5000;
  w.Append(Record{4, TimeSample{4}});  // the frame is old: closes on append
  EXPECT_EQ(w.frames_written(), 2u);
}

TEST(LogFormat, TimeSamplesAreCompactBeforeCompression) {
  std::vector<uint8_t> raw;
  RecordEncoder enc(0);
  std::mt19937_64 rng(11);
  int64_t t = 1'700'000'000'000'000'000;
  uint64_t icount = 0;
  const int n = 10000;
  size_t first = 0;
  for (int i = 0; i < n; ++i) {
    icount += 50'000;                                    // sampled every 50k instructions
    t += 500'000 + static_cast<int64_t>(rng() % 4000) - 2000;  // 500 us +- 2 us jitter
    enc.Encode(Record{icount, TimeSample{t}}, raw);
    if (i == 0) first = raw.size();
  }
  double per_record = double(raw.size() - first) / (n - 1);
  EXPECT_LE(per_record, 6.0);
}

TEST(LogFormat, WriterRefusesWhatTheReaderWouldReject) {
  std::vector<uint8_t> bytes;
  LogWriter w(std::make_unique<VectorSink>(&bytes), TestHeader(), SmallFrames());
  w.Append(Record{10, TimeSample{1}});
  EXPECT_THROW(w.Append(Record{9, TimeSample{2}}), LogError);
  EXPECT_THROW(w.Append(Record{11, SnapshotChunk{1, 90, 100, std::vector<uint8_t>(20)}}), LogError);
  EXPECT_THROW(w.Append(Record{11, UnknownRecord{3, {}}}), LogError);  // a known kind number
  EXPECT_EQ(w.records_written(), 1u);
}

TEST(LogFormat, NewerMajorVersionIsRefused) {
  LogHeader h = TestHeader();
  h.major = kFormatMajor + 1;
  std::vector<uint8_t> bytes = EncodeHeader(h);
  try {
    LogReader::FromBytes(bytes);
    FAIL() << "a newer major version was accepted";
  } catch (const LogError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNewerVersion);
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos);
  }
}

TEST(LogFormat, NewerMinorVersionIsRead) {
  LogHeader h = TestHeader();
  h.minor = kFormatMinor + 5;
  std::vector<uint8_t> bytes;
  {
    LogWriter w(std::make_unique<VectorSink>(&bytes), h, SmallFrames());
    w.Append(Record{1, UnknownRecord{25, {1, 2, 3}}});
    w.Append(Record{2, TimeSample{7}});
    w.Finish(3, End{});
  }
  LogReader reader = LogReader::FromBytes(bytes);
  EXPECT_EQ(reader.header().minor, kFormatMinor + 5);
  std::vector<Record> all = ReadAll(reader);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(std::get<UnknownRecord>(all[0].body).kind, 25);
  EXPECT_EQ(std::get<TimeSample>(all[1].body).host_ns, 7);
}

TEST(LogFormat, NotALogAndEmptyFile) {
  for (std::vector<uint8_t> bytes : {std::vector<uint8_t>{}, std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o', '\n', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}) {
    try {
      LogReader::FromBytes(bytes);
      FAIL();
    } catch (const LogError& e) {
      EXPECT_EQ(e.code(), ErrorCode::kNotALog);
    }
  }
}

// Flipping any bit of the file must be noticed, by the open (header, frame header, footer)
// or by decoding the frame (payload), and located in the right region.
TEST(LogFormat, BitFlipInEveryRegionIsDetectedAndLocated) {
  std::vector<Record> records = RandomRecords(21, 120);
  std::vector<uint8_t> bytes = WriteLog(records, SmallFrames(600));
  LogReader clean = LogReader::FromBytes(bytes);
  ASSERT_GE(clean.frames().size(), 3u);
  std::mt19937_64 rng(3);
  for (uint64_t offset = 0; offset < bytes.size(); ++offset) {
    std::vector<uint8_t> bad = bytes;
    bad[offset] ^= static_cast<uint8_t>(1u << (rng() % 8));
    // Which frame (if any) holds this byte.
    int64_t frame = -1;
    for (size_t i = 0; i < clean.frames().size(); ++i)
      if (offset >= clean.frames()[i].offset && offset < clean.frames()[i].end_offset()) frame = static_cast<int64_t>(i);
    bool detected = false;
    uint64_t located = 0;
    try {
      LogReader r = LogReader::FromBytes(bad);
      if (r.tail().state != TailState::kComplete) {
        detected = true;
        located = r.tail().offset;
        if (frame >= 0 && r.tail().state == TailState::kDamaged && r.tail().frame >= 0) {
          EXPECT_EQ(r.tail().frame, frame) << "offset " << offset;
        }
      } else {
        std::vector<Record> recs;
        for (size_t i = 0; i < r.frames().size(); ++i) {
          try {
            r.ReadFrame(i, &recs);
          } catch (const LogError& e) {
            detected = true;
            located = e.offset();
            EXPECT_EQ(static_cast<int64_t>(i), frame) << "offset " << offset;
            break;
          }
        }
      }
    } catch (const LogError& e) {
      detected = true;
      located = e.offset();
      EXPECT_LT(offset, clean.header_size()) << "only header damage may fail the open";
      // A flip in the body-size field makes the header claim more bytes than there are.
      if (e.code() == ErrorCode::kTruncated) {
        EXPECT_TRUE(offset >= 12 && offset < 16) << offset;
      }
    }
    ASSERT_TRUE(detected) << "flip at offset " << offset << " went unnoticed";
    if (offset >= 12 && offset < 16) {
      // body size: located at the header or where the file ends short of the claimed size
    } else if (offset < clean.header_size()) {
      EXPECT_LE(located, clean.header_size()) << "offset " << offset;
    } else if (frame >= 0) {
      // Located at the damaged frame (or, when the flip is in a footer-indexed frame header, at
      // the footer that disagrees with it).
      const FrameInfo& f = clean.frames()[frame];
      bool at_frame = located >= f.offset && located <= f.end_offset();
      bool at_footer = located >= clean.frames().back().end_offset();
      EXPECT_TRUE(at_frame || at_footer) << "offset " << offset << " located " << located;
    } else {
      EXPECT_GE(located, clean.frames().back().end_offset()) << "offset " << offset;
    }
  }
}

TEST(LogFormat, TruncationAtEveryOffsetRecoversEveryWholeFrame) {
  std::vector<Record> records = RandomRecords(31, 200);
  std::vector<uint8_t> bytes = WriteLog(records, SmallFrames(500));
  LogReader clean = LogReader::FromBytes(bytes);
  std::vector<Record> all = ReadAll(clean);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    std::vector<uint8_t> part(bytes.begin(), bytes.begin() + cut);
    try {
      LogReader r = LogReader::FromBytes(part);
      size_t whole = 0;
      for (const FrameInfo& f : clean.frames()) whole += f.end_offset() <= cut;
      ASSERT_EQ(r.frames().size(), whole) << "cut at " << cut;
      EXPECT_NE(r.tail().state, TailState::kComplete);
      EXPECT_NE(r.tail().state, TailState::kDamaged) << r.tail().message;
      bool at_boundary = cut == clean.header_size() ||
                         std::any_of(clean.frames().begin(), clean.frames().end(),
                                     [&](const FrameInfo& f) { return f.end_offset() == cut; });
      if (at_boundary) {
        EXPECT_EQ(r.tail().state, TailState::kUnfinished) << "cut at " << cut;
      } else if (cut < clean.frames().back().end_offset()) {
        EXPECT_EQ(r.tail().state, TailState::kCutMidFrame) << "cut at " << cut;
      }
      std::vector<Record> got = ReadAll(r);
      ASSERT_LE(got.size(), all.size());
      EXPECT_TRUE(std::equal(got.begin(), got.end(), all.begin())) << "cut at " << cut;
    } catch (const LogError& e) {
      EXPECT_LT(cut, clean.header_size()) << "cut at " << cut << ": " << e.what();
      EXPECT_TRUE(e.code() == ErrorCode::kTruncated || e.code() == ErrorCode::kNotALog) << e.what();
    }
  }
}

TEST(LogFormat, FileWriterStreamsFramesBeforeFinish) {
  std::string path = (std::filesystem::temp_directory_path() / ("vmrr-log-test-" + std::to_string(getpid()))).string();
  auto w = LogWriter::CreateFile(path, TestHeader(), SmallFrames(300));
  std::vector<Record> records = RandomRecords(41, 100);
  for (const Record& r : records) w->Append(r);
  // Mid-recording, the file already holds every closed frame and reads as unfinished.
  {
    LogReader live = LogReader::Open(path);
    EXPECT_EQ(live.tail().state, TailState::kUnfinished);
    EXPECT_EQ(live.frames().size(), w->frames_written());
    EXPECT_GT(live.frames().size(), 3u);
  }
  w->Finish(records.back().icount, End{EndReason::kStopped, 0, 1});
  LogReader done = LogReader::Open(path);
  EXPECT_TRUE(done.complete());
  std::remove(path.c_str());
  try {
    LogReader::Open(path);
    FAIL();
  } catch (const LogError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
}

TEST(LogFormat, HostileSizesAreRefusedBeforeAllocation) {
  // A frame header claiming a huge payload must be refused by the limits, not allocated.
  std::vector<uint8_t> bytes = EncodeHeader(TestHeader());
  FrameHeader h;
  h.stored_size = 0xfffffff0u;
  h.raw_size = 0xfffffff0u;
  h.record_count = 5;
  uint8_t head[kFrameHeaderSize];
  EncodeFrameHeader(h, head);
  bytes.insert(bytes.end(), head, head + kFrameHeaderSize);
  LogReader r = LogReader::FromBytes(bytes);
  EXPECT_EQ(r.tail().state, TailState::kDamaged);
  EXPECT_NE(r.tail().message.find("exceeds the limit"), std::string::npos) << r.tail().message;
  EXPECT_TRUE(r.frames().empty());
}

}  // namespace
}  // namespace vmrr::log
