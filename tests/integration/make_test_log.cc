// Writes logs for the CLI integration tests: a complete one, and copies of it cut short,
// damaged, or stamped with a newer major version, so the tests check vmrr's answer to each.
#include <cstdio>
#include <fstream>
#include <string>

#include "logformat/log_reader.h"
#include "logformat/log_writer.h"

using namespace vmrr::log;

static void Save(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                               static_cast<std::streamsize>(b.size()));
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  LogHeader h;
  h.engine_version = "integration";
  h.host_description = "test";
  std::vector<uint8_t> bytes;
  WriterOptions o;
  o.max_frame_bytes = 256;
  o.max_frame_age_ns = 0;
  {
    LogWriter w(std::make_unique<VectorSink>(&bytes), h, o);
    for (uint64_t i = 1; i <= 1000; ++i) {
      w.Append(Record{i * 1000, TimeSample{static_cast<int64_t>(i * 1'000'000)}});
      if (i % 10 == 0) w.Append(Record{i * 1000, Digest{DigestScope::kCpu, i * 7}});
      if (i % 100 == 0) w.Append(Record{i * 1000, ConsoleIn{{'x', 'y'}}});
    }
    std::vector<uint8_t> blob(5000, 1);
    w.AppendSnapshot(1'000'000, 1, blob, 5);
    w.Finish(1'000'001, End{EndReason::kGuestExit, 0, 99});
  }
  Save(dir + "/complete.vlog", bytes);
  LogReader reader = LogReader::FromBytes(bytes);
  const FrameInfo& mid = reader.frames()[reader.frames().size() / 2];
  // Cut inside a frame, as a recorder killed mid-write leaves it.
  Save(dir + "/truncated.vlog", std::vector<uint8_t>(bytes.begin(), bytes.begin() + mid.offset + 30));
  // One bit flipped in a frame's payload.
  std::vector<uint8_t> damaged = bytes;
  damaged[mid.offset + kFrameHeaderSize + 3] ^= 0x10;
  Save(dir + "/damaged.vlog", damaged);
  LogHeader newer = h;
  newer.major = kFormatMajor + 1;
  Save(dir + "/newer.vlog", EncodeHeader(newer));
  Save(dir + "/not-a-log.vlog", {'#', '!', '/', 'b', 'i', 'n', '/', 's', 'h', '\n'});
  std::printf("%zu frames, damaged frame %zu at offset %llu\n", reader.frames().size(), reader.frames().size() / 2,
              static_cast<unsigned long long>(mid.offset));
  return 0;
}
