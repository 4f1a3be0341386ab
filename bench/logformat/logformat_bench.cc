// Log writer and reader throughput (records/s, MB/s of raw record bytes) and bytes per record
// on a realistic event mix: mostly TimeSample and Digest, some ConsoleIn, NetRx and Entropy.
// Targets on one core: write >= 20 M records/s, read >= 40 M records/s, TimeSample <= 6 bytes
// per record before compression. Run: build/release/bench/logformat/bench_logformat
#include <benchmark/benchmark.h>

#include <random>

#include "logformat/log_reader.h"
#include "logformat/log_writer.h"
#include "logformat/record_codec.h"

namespace vmrr::log {
namespace {

// icount advances ~50k instructions between events; time samples 500 us apart with jitter.
const std::vector<Record>& Mix() {
  static const std::vector<Record> records = [] {
    std::mt19937_64 rng(1);
    std::vector<Record> out;
    uint64_t icount = 0;
    int64_t t = 1'700'000'000'000'000'000;
    for (int i = 0; i < 1'000'000; ++i) {
      unsigned pick = static_cast<unsigned>(rng() % 100);
      icount += 40'000 + rng() % 20'000;
      Record r{icount, TimeSample{}};
      if (pick < 70) {
        t += 500'000 + static_cast<int64_t>(rng() % 4000) - 2000;
        r.body = TimeSample{t};
      } else if (pick < 90) {
        r.body = Digest{DigestScope::kCpu, rng()};
      } else if (pick < 93) {
        r.body = ConsoleIn{std::vector<uint8_t>(1 + rng() % 4, 'a')};
      } else if (pick < 96) {
        std::vector<uint8_t> frame(60 + rng() % 200);
        for (auto& b : frame) b = static_cast<uint8_t>(rng() % 16);  // headers + repetitive payload
        r.body = NetRx{std::move(frame)};
      } else {
        std::vector<uint8_t> e(8);
        for (auto& b : e) b = static_cast<uint8_t>(rng());
        r.body = Entropy{std::move(e)};
      }
      out.push_back(std::move(r));
    }
    return out;
  }();
  return records;
}

WriterOptions BenchOptions() {
  WriterOptions o;
  o.max_frame_age_ns = 0;  // size-closed frames: the figure measures the codec, not a clock
  return o;
}

void BM_Write(benchmark::State& state) {
  const auto& records = Mix();
  std::vector<uint8_t> bytes;
  bytes.reserve(64 << 20);
  uint64_t raw = 0, stored = 0;
  for (auto _ : state) {
    bytes.clear();
    LogWriter w(std::make_unique<VectorSink>(&bytes), LogHeader{}, BenchOptions());
    for (const Record& r : records) w.Append(r);
    w.Flush();
    raw = w.raw_bytes();
    stored = w.bytes_written();
    benchmark::DoNotOptimize(bytes.data());
  }
  double n = double(records.size());
  state.counters["records/s"] = benchmark::Counter(n, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["raw_MB/s"] = benchmark::Counter(double(raw) / 1e6, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["raw_bytes/record"] = double(raw) / n;
  state.counters["stored_bytes/record"] = double(stored) / n;
}
BENCHMARK(BM_Write)->Unit(benchmark::kMillisecond);

void BM_Read(benchmark::State& state) {
  const auto& records = Mix();
  std::vector<uint8_t> bytes;
  {
    LogWriter w(std::make_unique<VectorSink>(&bytes), LogHeader{}, BenchOptions());
    for (const Record& r : records) w.Append(r);
    w.Finish(records.back().icount, End{});
  }
  LogReader reader = LogReader::FromBytes(bytes);
  uint64_t raw = 0;
  for (const FrameInfo& f : reader.frames()) raw += f.header.raw_size;
  std::vector<Record> frame;
  for (auto _ : state) {
    uint64_t count = 0;
    for (size_t i = 0; i < reader.frames().size(); ++i) {
      reader.ReadFrame(i, &frame);
      count += frame.size();
    }
    benchmark::DoNotOptimize(count);
  }
  double n = double(records.size() + 1);
  state.counters["records/s"] = benchmark::Counter(n, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["raw_MB/s"] = benchmark::Counter(double(raw) / 1e6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Read)->Unit(benchmark::kMillisecond);

// Bytes of TimeSample records alone, before compression, in the same stream.
void BM_TimeSampleSize(benchmark::State& state) {
  const auto& records = Mix();
  uint64_t bytes = 0, count = 0;
  std::vector<uint8_t> out;
  for (auto _ : state) {
    RecordEncoder enc(0);
    bytes = count = 0;
    for (const Record& r : records) {
      out.clear();
      enc.Encode(r, out);
      if (std::holds_alternative<TimeSample>(r.body)) {
        bytes += out.size();
        ++count;
      }
    }
  }
  state.counters["timesample_bytes/record"] = double(bytes) / double(count);
}
BENCHMARK(BM_TimeSampleSize)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace vmrr::log

BENCHMARK_MAIN();
