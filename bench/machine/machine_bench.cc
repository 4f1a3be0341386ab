// Whole-guest speed of the Machine (software CPU + devices + run loop) in icount mode with a
// silent environment: guest instructions per second for the timer, disk and stress guests,
// and what a snapshot, a restore and a full-state digest cost on a 128 MiB machine.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "hv-hooks/environment.h"
#include "hv-hooks/machine/machine.h"

namespace vmrr {
namespace {

class SilentEnvironment final : public Environment {
 public:
  int64_t SampleTime(uint64_t) override { return now_ += 1000; }
  std::vector<uint8_t> PollConsoleInput(uint64_t, size_t) override { return {}; }
  bool PollNetFrame(uint64_t, std::vector<uint8_t>*) override { return false; }
  void GetEntropy(uint64_t, std::span<uint8_t> out) override {
    for (auto& b : out) b = static_cast<uint8_t>(seed_ = seed_ * 6364136223846793005ull + 1442695040888963407ull) ;
  }
  void ConsoleOutput(uint64_t, std::span<const uint8_t> bytes) override { console_bytes += bytes.size(); }
  void NetFrameSent(uint64_t, std::span<const uint8_t>) override {}
  bool WaitForInput(uint64_t, int64_t) override { return false; }
  uint64_t console_bytes = 0;

 private:
  int64_t now_ = 1'700'000'000'000'000'000;
  uint64_t seed_ = 1;
};

std::string GuestPath(const char* name) { return std::string(VMRR_GUEST_DIR) + "/" + name + ".elf"; }

const std::string& DiskImage() {
  static const std::string path = [] {
    std::string p = "/tmp/vmrr_bench_disk_" + std::to_string(getpid()) + ".img";
    std::ofstream f(p, std::ios::binary);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < (1 << 20) / 8; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      f.write(reinterpret_cast<const char*>(&x), 8);
    }
    return p;
  }();
  return path;
}

void RunGuest(benchmark::State& state, const char* name, bool disk) {
  uint64_t instructions = 0;
  int status = 0;
  for (auto _ : state) {
    SilentEnvironment env;
    MachineConfig c;
    if (disk) c.disk_image = DiskImage();
    Machine m(c, env);
    try {
      m.LoadKernel(GuestPath(name));
    } catch (const MachineError& e) {
      state.SkipWithError(e.what());
      return;
    }
    const MachineResult r = m.Run(20'000'000'000ull);
    instructions += r.icount;
    status = r.exit_status;
    if (r.stop != MachineStop::kGuestExit) {
      state.SkipWithError((std::string("guest did not exit: ") + MachineStopName(r.stop)).c_str());
      return;
    }
  }
  state.counters["guest_instr_per_s"] = benchmark::Counter(static_cast<double>(instructions),
                                                           benchmark::Counter::kIsRate);
  state.counters["guest_instr"] = static_cast<double>(instructions / state.iterations());
  state.counters["exit_status"] = status;
}

void BM_TimerGuest(benchmark::State& s) { RunGuest(s, "timer", false); }
void BM_DiskGuest(benchmark::State& s) { RunGuest(s, "disk", true); }
void BM_StressGuest(benchmark::State& s) { RunGuest(s, "stress", false); }
BENCHMARK(BM_TimerGuest)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DiskGuest)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StressGuest)->Unit(benchmark::kMillisecond)->UseRealTime();

// A machine mid-way through the stress guest (128 MiB RAM, a few MiB of it in use).
struct Booted {
  SilentEnvironment env;
  Machine m{MachineConfig{}, env};
  Booted() {
    m.LoadKernel(GuestPath("stress"));
    m.Run(20'000'000);
  }
};

void BM_SaveSnapshot(benchmark::State& state) {
  Booted b;
  size_t bytes = 0;
  for (auto _ : state) bytes = b.m.SaveSnapshot().size();
  state.counters["snapshot_bytes"] = static_cast<double>(bytes);
}
void BM_LoadSnapshot(benchmark::State& state) {
  Booted b;
  const std::vector<uint8_t> snap = b.m.SaveSnapshot();
  for (auto _ : state) b.m.LoadSnapshot(snap);
}
void BM_DigestFull(benchmark::State& state) {
  Booted b;
  for (auto _ : state) benchmark::DoNotOptimize(b.m.StateDigest(DigestScope::kFull));
}
void BM_DigestCpu(benchmark::State& state) {
  Booted b;
  for (auto _ : state) benchmark::DoNotOptimize(b.m.StateDigest(DigestScope::kCpu));
}
BENCHMARK(BM_SaveSnapshot)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadSnapshot)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DigestFull)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DigestCpu)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vmrr

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::remove(vmrr::DiskImage().c_str());
  return 0;
}
