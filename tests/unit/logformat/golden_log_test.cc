// A golden log (tests/data/golden/timer-host.vlog, see its README.md) decoded record by record
// with the log reader and compared with known values. These bytes were written by an earlier
// vmrr: a change to the encoder and the decoder together passes every round trip but fails
// here. A failure means the log format changed: bump its version (logformat/FORMAT.md) and
// decide consciously; never regenerate the golden log to make this pass.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "hv-hooks/session/output_digest.h"
#include "hv-hooks/session/session_config.h"
#include "logformat/log_reader.h"

namespace vmrr::log {
namespace {

// VMRR_GOLDEN_DIR in the environment points the test at another copy (to see it fail).
std::string GoldenPath(const std::string& file) {
  const char* dir = std::getenv("VMRR_GOLDEN_DIR");
  return std::string(dir ? dir : VMRR_GOLDEN_DIR) + "/" + file;
}

std::vector<Record> AllRecords(const LogReader& reader) {
  std::vector<Record> all, frame;
  for (size_t i = 0; i < reader.frames().size(); ++i) {
    reader.ReadFrame(i, &frame);
    all.insert(all.end(), frame.begin(), frame.end());
  }
  return all;
}

template <typename T>
std::vector<std::pair<uint64_t, T>> OfKind(const std::vector<Record>& records) {
  std::vector<std::pair<uint64_t, T>> out;
  for (const Record& r : records)
    if (const T* b = std::get_if<T>(&r.body)) out.emplace_back(r.icount, *b);
  return out;
}

TEST(GoldenLog, TimerHostClockLogDecodesToItsKnownValues) {
  const LogReader reader = LogReader::Open(GoldenPath("timer-host.vlog"));
  ASSERT_TRUE(reader.complete()) << reader.tail().message;
  EXPECT_EQ(reader.file_size(), 9106u);

  // Header.
  const LogHeader& h = reader.header();
  EXPECT_EQ(h.major, 1);
  EXPECT_EQ(h.minor, 1);
  EXPECT_EQ(h.engine_version, "0.1.0");
  EXPECT_EQ(h.host_description, "vm Linux 6.18.44-fc-v1045 x86_64");
  EXPECT_EQ(h.creation_time_unix_ns, 1796137563465280541ull);
  ASSERT_EQ(h.images.size(), 1u);
  EXPECT_EQ(h.images[0].name, "kernel:timer.elf");
  EXPECT_EQ(h.images[0].size, 57432u);
  const std::array<uint8_t, 16> kernel_hash = {0x3e, 0x7f, 0xda, 0xf5, 0xcf, 0x2a, 0x6d, 0x9f,
                                               0x2a, 0x26, 0x00, 0x76, 0xb0, 0x65, 0xcb, 0x2b};
  EXPECT_EQ(h.images[0].xxh128, kernel_hash);
  // The session configuration inside it (the session codec's encoding, version 2): this
  // build needs version 5 (CPU state v4, the ACPI power registers, fw_cfg) and refuses it
  // clearly.
  try {
    DecodeSessionConfig(h.machine_config);
    ADD_FAILURE() << "a version 2 session configuration was accepted";
  } catch (const SessionConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("is 2, older than the 5"), std::string::npos) << e.what();
  }

  // Frames and the footer's index.
  EXPECT_EQ(reader.frames().size(), 6u);
  ASSERT_EQ(reader.checkpoints().size(), 1u);
  EXPECT_EQ(reader.checkpoints()[0].icount, 0u);
  EXPECT_EQ(reader.checkpoints()[0].snapshot_size, 15612u);
  EXPECT_EQ(reader.ReadSnapshot(reader.checkpoints()[0]).size(), 15612u);

  // Every record decodes; counts per kind.
  const std::vector<Record> records = AllRecords(reader);
  std::map<uint8_t, int> counts;
  for (const Record& r : records) ++counts[r.kind_number()];
  const std::map<uint8_t, int> want_counts = {
      {uint8_t(RecordKind::kTimeSample), 67}, {uint8_t(RecordKind::kIrqDelivered), 89},
      {uint8_t(RecordKind::kOutput), 6},      {uint8_t(RecordKind::kDigest), 13},
      {uint8_t(RecordKind::kCheckpoint), 1},  {uint8_t(RecordKind::kSnapshotChunk), 1},
      {uint8_t(RecordKind::kMarker), 1},      {uint8_t(RecordKind::kEnd), 1}};
  EXPECT_EQ(counts, want_counts);
  ASSERT_EQ(records.size(), 179u);

  // TimeSample: second-order delta coding decoded back to absolute host times.
  const auto samples = OfKind<TimeSample>(records);
  ASSERT_EQ(samples.size(), 67u);
  EXPECT_EQ(samples[0].first, 0u);
  EXPECT_EQ(samples[0].second.host_ns, 1796137563465860215);
  EXPECT_EQ(samples[1].first, 4698u);
  EXPECT_EQ(samples[1].second.host_ns, 1796137563466503992);
  EXPECT_EQ(samples.back().first, 12542820u);
  EXPECT_EQ(samples.back().second.host_ns, 1796137564148303304);

  const auto irqs = OfKind<IrqDelivered>(records);
  ASSERT_EQ(irqs.size(), 89u);
  EXPECT_EQ(irqs.front().first, 4621u);
  EXPECT_EQ(irqs.front().second.vector, 0x20u);  // PIT through the 8259
  EXPECT_EQ(irqs.back().first, 12542820u);

  const auto snapshot = OfKind<Checkpoint>(records);
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].second.snapshot_id, 0u);
  EXPECT_EQ(snapshot[0].second.snapshot_size, 15612u);
  EXPECT_EQ(snapshot[0].second.state_digest, 0xc903bc387331ac32ull);

  const auto digests = OfKind<Digest>(records);
  ASSERT_EQ(digests.size(), 13u);
  EXPECT_EQ(digests[0].first, 0u);
  EXPECT_EQ(digests[0].second.scope, DigestScope::kMachine);
  EXPECT_EQ(digests[0].second.hash, 0xc903bc387331ac32ull);
  EXPECT_EQ(digests[1].first, 1'000'000u);
  EXPECT_EQ(digests[1].second.scope, DigestScope::kCpu);
  EXPECT_EQ(digests[1].second.hash, 0x195aaa28af110f90ull);
  EXPECT_EQ(digests.back().first, 12'000'000u);
  EXPECT_EQ(digests.back().second.hash, 0x411410f1e5993e86ull);

  const auto markers = OfKind<Marker>(records);
  ASSERT_EQ(markers.size(), 1u);
  EXPECT_EQ(markers[0].second.text, "vmrr-record wall_ns=682730957");

  ASSERT_TRUE(std::holds_alternative<End>(records.back().body));
  const End& end = std::get<End>(records.back().body);
  EXPECT_EQ(records.back().icount, 12544602u);
  EXPECT_EQ(end.reason, EndReason::kGuestExit);
  EXPECT_EQ(end.exit_code, 0);
  EXPECT_EQ(end.final_digest, 0xe66fbe283e2b11c4ull);

  // The last console Output record is the digest of the console bytes checked in beside the
  // log, chained one byte per call (the UART transmits a byte per THR write): the expected
  // output file and the log agree without a replay.
  std::ifstream console_file(GoldenPath("timer-host.console"), std::ios::binary);
  ASSERT_TRUE(console_file);
  const std::vector<uint8_t> console((std::istreambuf_iterator<char>(console_file)), {});
  OutputDigest printed;
  for (uint8_t b : console) printed.Add({&b, 1});
  const auto outputs = OfKind<Output>(records);
  const Output* last_console = nullptr;
  for (const auto& [icount, o] : outputs)
    if (o.channel == OutputChannel::kConsole) last_console = &o;
  ASSERT_NE(last_console, nullptr);
  EXPECT_EQ(last_console->total_bytes, 1192u);
  EXPECT_EQ(last_console->digest, 0xb465578ffb7fafb5ull);
  EXPECT_EQ(printed.total_bytes, last_console->total_bytes);
  EXPECT_EQ(printed.digest, last_console->digest);
}

}  // namespace
}  // namespace vmrr::log
