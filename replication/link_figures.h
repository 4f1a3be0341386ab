// LinkFigures: what each end of the replication link measured about it (`--stats FILE` on
// `vmrr record --replicate` and `vmrr shadow`), for bench/ft: named counters and named series
// of durations, written as key=value lines (a series as comma-separated microseconds, so that
// a benchmark can merge runs before taking percentiles). Host timing only: nothing here reaches
// the machine or the log.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace vmrr::link {

class LinkFigures {
 public:
  void Count(const std::string& name, uint64_t add = 1) {
    std::lock_guard<std::mutex> lock(mu_);
    counters_[name] += add;
  }
  void Set(const std::string& name, uint64_t value) {
    std::lock_guard<std::mutex> lock(mu_);
    counters_[name] = value;
  }
  // A duration in ns; kept as whole microseconds. Series stop growing at kMaxSamples.
  void Sample(const std::string& name, int64_t ns) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint32_t>& s = series_[name];
    if (s.size() < kMaxSamples) s.push_back(static_cast<uint32_t>(ns < 0 ? 0 : std::min<int64_t>(ns / 1000, UINT32_MAX)));
  }
  // key=value lines; false if the file cannot be written.
  bool Write(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mu_);
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return false;
    for (const auto& [k, v] : counters_) std::fprintf(f, "%s=%llu\n", k.c_str(), static_cast<unsigned long long>(v));
    for (const auto& [k, s] : series_) {
      std::fprintf(f, "%s_us=", k.c_str());
      for (size_t i = 0; i < s.size(); ++i) std::fprintf(f, i ? ",%u" : "%u", s[i]);
      std::fprintf(f, "\n");
    }
    return std::fclose(f) == 0;
  }

  static constexpr size_t kMaxSamples = 1'000'000;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> counters_;
  std::map<std::string, std::vector<uint32_t>> series_;
};

}  // namespace vmrr::link
