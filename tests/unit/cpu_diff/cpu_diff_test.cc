// Differential test of vmrr's software CPU against Unicorn: templated and random-byte
// instruction sequences in 64-bit long mode and 32-bit protected mode, comparing GPRs, RIP,
// defined flags, the data region and the stack. VMRR_DIFF_ITERATIONS sets the number of
// cases per test (default 100,000 per test: 200,000 per mode, about 25 s in a release
// build); VMRR_DIFF_SEED varies the seed; VMRR_DIFF_ONLY=N reruns case N alone. Sanitizer
// builds run 5,000 per test by default.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/unit/cpu_diff/diff_harness.h"
#include "tests/unit/cpu_diff/generator.h"

#if defined(__SANITIZE_ADDRESS__)
#define VMRR_DIFF_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VMRR_DIFF_SANITIZED 1
#endif
#endif

namespace vmrr::testing {
namespace {

uint64_t Iterations() {
  if (const char* e = std::getenv("VMRR_DIFF_ITERATIONS")) return std::strtoull(e, nullptr, 0);
#ifdef VMRR_DIFF_SANITIZED
  return 5000;
#else
  return 100000;
#endif
}

uint64_t Seed() {
  if (const char* e = std::getenv("VMRR_DIFF_SEED")) return std::strtoull(e, nullptr, 0);
  return 0x766d7272;  // "vmrr"
}

struct Stats {
  uint64_t cases = 0, rejected = 0, both_faulted = 0, same_vector = 0, skipped = 0,
           mismatches = 0;
  std::vector<uint64_t> per_template = std::vector<uint64_t>(TemplateCount(), 0);
};

// Unicorn failing to run a case it should run (a generator gap, not a CPU difference):
// counted and bounded instead of compared.
bool UnicornCouldNotRun(const DiffOutcome& u) { return !u.error.empty(); }

// vmrr_mode differs from mode to run vmrr's side with paging where Unicorn runs flat.
void RunCases(FlatMode mode, bool templated, uint64_t seed_salt, FlatMode vmrr_mode,
              uint64_t divisor = 1) {
  VmrrSide vmrr(vmrr_mode);
  UnicornSide uc(mode);
  const uint64_t n = std::max<uint64_t>(1, Iterations() / divisor);
  const char* only = std::getenv("VMRR_DIFF_ONLY");  // rerun one case by its index
  Stats st;
  std::string reports;
  for (uint64_t index = 0; index < n; ++index) {
    if (only && index != std::strtoull(only, nullptr, 0)) continue;
    // Each case has its own generator seed, so a reported index can be rerun alone.
    Rng rng(Seed() ^ seed_salt ^ ((index + 1) * 0x9e3779b97f4a7c15ull));
    DiffCase c;
    unsigned t = 0;
    for (;;) {
      const bool ok = templated ? GenerateTemplated(rng, mode, 5, &c, &t)
                                : GenerateRandomBytes(rng, mode, &c);
      if (ok) break;
      ++st.rejected;
    }
    ++st.cases;
    if (templated) {
      ++st.per_template[t];
      c.single_step = (st.cases % 8) == 0;
    } else {
      c.single_step = (st.cases % 16) == 0;
    }
    const DiffOutcome v = vmrr.Run(c);
    const DiffOutcome u = uc.Run(c);
    if (UnicornCouldNotRun(u) && v.error.empty()) {
      ++st.skipped;
      continue;
    }
    if (v.faulted && u.faulted) {
      ++st.both_faulted;
      if (v.vector == u.vector) ++st.same_vector;
    }
    const std::string report = CompareOutcomes(c, v, u);
    if (!report.empty()) {
      ++st.mismatches;
      if (st.mismatches <= 25) reports += "case " + std::to_string(index) + ": " + report;
    }
  }
  std::printf("%s%s %s: %llu cases (%llu rejected candidates), %llu faulted in both (%llu with "
              "the vector confirmed by Unicorn), %llu skipped, %llu mismatches\n",
              FlatModeName(mode), vmrr_mode != mode ? " (vmrr paged)" : "",
              templated ? "templated" : "random-bytes",
              static_cast<unsigned long long>(st.cases),
              static_cast<unsigned long long>(st.rejected),
              static_cast<unsigned long long>(st.both_faulted),
              static_cast<unsigned long long>(st.same_vector),
              static_cast<unsigned long long>(st.skipped),
              static_cast<unsigned long long>(st.mismatches));
  if (templated) {
    std::string cov = "  first template:";
    for (unsigned i = 0; i < TemplateCount(); ++i) {
      cov += " " + std::string(TemplateName(i)) + "=" + std::to_string(st.per_template[i]);
    }
    std::printf("%s\n", cov.c_str());
  }
  if (!only) {
    EXPECT_EQ(st.cases, n);
  }
  // Skips are generator gaps (an access Unicorn has no memory for); they must stay rare.
  EXPECT_LE(st.skipped * 100, st.cases) << "too many cases Unicorn could not run";
  EXPECT_EQ(st.mismatches, 0u) << reports;
}

TEST(CpuDiff, Templated64) { RunCases(FlatMode::kLong64, true, 0x64, FlatMode::kLong64); }
TEST(CpuDiff, Templated32) { RunCases(FlatMode::kProt32, true, 0x32, FlatMode::kProt32); }
TEST(CpuDiff, RandomBytes64) { RunCases(FlatMode::kLong64, false, 0x6464, FlatMode::kLong64); }
TEST(CpuDiff, RandomBytes32) { RunCases(FlatMode::kProt32, false, 0x3232, FlatMode::kProt32); }
// vmrr with 32-bit paging (4 MiB identity pages) against Unicorn's flat 32-bit mode: the same
// results through vmrr's 2-level walk and TLB.
TEST(CpuDiff, Templated32Paged) {
  RunCases(FlatMode::kProt32, true, 0x3250, FlatMode::kProt32Paged, 4);
}
// Real mode (16-bit code, 66h/67h forms): random bytes only.
TEST(CpuDiff, RandomBytesReal) { RunCases(FlatMode::kReal, false, 0x1616, FlatMode::kReal, 4); }

// The harness itself: a deliberately different case must be reported (the test can fail).
TEST(CpuDiff, HarnessDetectsDifferences) {
  VmrrSide vmrr(FlatMode::kLong64);
  UnicornSide uc(FlatMode::kLong64);
  Rng rng(1);
  DiffCase c;
  ASSERT_TRUE(GenerateTemplated(rng, FlatMode::kLong64, 1, &c));
  c.code = {0x48, 0xff, 0xc0};  // inc rax
  c.gpr[kRax] = 41;
  DiffOutcome v = vmrr.Run(c);
  DiffOutcome u = uc.Run(c);
  EXPECT_EQ(CompareOutcomes(c, v, u), "");
  EXPECT_EQ(v.gpr[kRax], 42u);
  EXPECT_EQ(v.retired, 3u);  // inc + pushf + hlt
  u.gpr[kRax] = 43;
  EXPECT_NE(CompareOutcomes(c, v, u).find("rax: vmrr 0x2a unicorn 0x2b"), std::string::npos);
  v.data[5] ^= 1;
  EXPECT_NE(CompareOutcomes(c, v, u).find("data[0x8005]"), std::string::npos);
}

}  // namespace
}  // namespace vmrr::testing
