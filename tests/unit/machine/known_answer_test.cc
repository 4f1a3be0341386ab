// Known answers: the exact 64-bit values of OutputDigest over a fixed byte sequence and of
// Machine::StateDigest of a fixed tiny machine at fixed points. Every log carries these
// values (Output, Digest, Checkpoint and End records), and a replay compares its own against
// them, so a change here silently invalidates every existing log even when recorder and
// replayer still agree with each other.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "hv-hooks/machine/machine.h"
#include "hv-hooks/session/output_digest.h"
#include "tests/unit/machine/test_images.h"

namespace vmrr {
namespace {

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Expected values computed outside vmrr: a separate C program calling libxxhash's
// XXH3_64bits_withSeed directly, seed = the previous digest, starting from 0. The calls cover
// XXH3's 1-3 byte, 9-16 byte, empty and >240 byte (long input) paths. A change means the
// Output records of every existing log no longer match: that needs the session configuration
// version bumped (hv-hooks/session/session_config.h) and a conscious decision.
TEST(KnownAnswer, XXH3OfTheEmptyInputIsThePublishedValue) {
  // xxHash's reference value for XXH3_64bits("", 0), seed 0: the library is the one we think.
  EXPECT_EQ(XXH3_64bits_withSeed("", 0, 0), 0x2d06800538d394c2ull);
}

TEST(KnownAnswer, OutputDigestChainsXXH3OverEveryCall) {
  OutputDigest d;
  EXPECT_EQ(d.total_bytes, 0u);
  EXPECT_EQ(d.digest, 0u);
  d.Add(Bytes("Hi"));
  EXPECT_EQ(d.total_bytes, 2u);
  EXPECT_EQ(d.digest, 0xc49d853c40ebbe00ull);
  d.Add(Bytes("RESULT hello ok\n"));
  EXPECT_EQ(d.total_bytes, 18u);
  EXPECT_EQ(d.digest, 0x162e7c76812d1a9cull);
  d.Add({});  // an empty call still advances the chain
  EXPECT_EQ(d.total_bytes, 18u);
  EXPECT_EQ(d.digest, 0xb0f81497ddea6313ull);
  std::vector<uint8_t> all(256);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint8_t>(i);
  d.Add(all);
  EXPECT_EQ(d.total_bytes, 274u);
  EXPECT_EQ(d.digest, 0xfa4ae7bf58b82b6full);
}

// The state digests of a 16 MiB icount-clock machine running the hand-assembled hello guest
// (test_images.h: prints "Hi", exits with status 7 after 8 instructions), observed with this
// version (session configuration 5, CPU state 4: the CPU digests are those of version 3; the
// whole-machine ones changed with the acpi-pm device in version 4 and with the fw-cfg device
// in version 5). A change means the state encoding (CPU, devices, clock or the memory walk) changed,
// which invalidates the Digest, Checkpoint and End records of every existing log: bump the
// session configuration version in hv-hooks/session/session_config.h (so old logs are refused
// with a clear message instead of diverging), then update these constants.
constexpr uint64_t kHelloCpuDigestAt0 = 0x67d733868a6f1a2bull;
constexpr uint64_t kHelloFullDigestAt0 = 0x30b2170cb21c0cfeull;
constexpr uint64_t kHelloCpuDigestAtEnd = 0xc9aacaab90a49439ull;
constexpr uint64_t kHelloFullDigestAtEnd = 0x155d6cda9b1f7ebdull;

TEST(KnownAnswer, StateDigestsOfTheHelloMachine) {
  test::FakeEnvironment env;
  MachineConfig config;
  config.memory_bytes = 16ull << 20;
  ASSERT_EQ(config.clock_mode, VirtualClock::Mode::kIcount);
  Machine m(config, env);
  m.LoadKernelBytes(test::CodeGuest(test::kHelloCode), "hello");
  ASSERT_EQ(m.icount(), 0u);
  EXPECT_EQ(m.StateDigest(DigestScope::kCpu), kHelloCpuDigestAt0);
  EXPECT_EQ(m.StateDigest(DigestScope::kFull), kHelloFullDigestAt0);
  const MachineResult r = m.Run();
  ASSERT_EQ(r.stop, MachineStop::kGuestExit);
  ASSERT_EQ(r.icount, 8u);
  ASSERT_EQ(env.console, "Hi");
  EXPECT_EQ(m.StateDigest(DigestScope::kCpu), kHelloCpuDigestAtEnd);
  EXPECT_EQ(m.StateDigest(DigestScope::kFull), kHelloFullDigestAtEnd);
}

}  // namespace
}  // namespace vmrr
