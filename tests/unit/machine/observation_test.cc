// Observing the machine never changes it: state digests and snapshots taken at any point leave
// the run exactly as an unobserved one, even for a guest that edits its page tables without
// INVLPG and so depends on what the TLB holds.
#include <gtest/gtest.h>

#include "hv-hooks/machine/machine.h"
#include "tests/unit/machine/test_images.h"

namespace vmrr {
namespace {

using test::FakeEnvironment;

// Reads [0x400000] (the TLB caches the 2 MiB identity page 2), points page directory entry 2
// (0xb010, the loader's identity map) at 0x600000 without INVLPG, then 200 times reads
// [0x400000] and prints it on COM1, and exits with status 1:
//   mov al,[0x400000]; mov rbx,0x600083; mov [0xb010],rbx; mov ecx,200
//   1: mov al,[0x400000]; mov dx,0x3f8; out dx,al; dec ecx; jnz 1b
//   mov dx,0xf4; xor eax,eax; out dx,eax; hlt
const std::vector<uint8_t> kStalePteCode = {
    0x8a, 0x04, 0x25, 0x00, 0x00, 0x40, 0x00, 0x48, 0xc7, 0xc3, 0x83, 0x00, 0x60, 0x00,
    0x48, 0x89, 0x1c, 0x25, 0x10, 0xb0, 0x00, 0x00, 0xb9, 0xc8, 0x00, 0x00, 0x00, 0x8a,
    0x04, 0x25, 0x00, 0x00, 0x40, 0x00, 0x66, 0xba, 0xf8, 0x03, 0xee, 0xff, 0xc9, 0x75,
    0xf0, 0x66, 0xba, 0xf4, 0x00, 0x31, 0xc0, 0xef, 0xf4};
constexpr uint64_t kStalePteInstructions = 4 + 200 * 5 + 3;

std::vector<uint8_t> StalePteGuest() {
  return test::MakeElf64(0x100000, {{0x100000, kStalePteCode},
                                    {0x400000, std::vector<uint8_t>(16, 'A')},
                                    {0x600000, std::vector<uint8_t>(16, 'B')}});
}

// The same, for the code's own page: 0x100000 jumps to code at 0x400000, which points PDE 2 at
// 0x600000 (where the same code prints 'B') without INVLPG, then 200 times reads [0x1000]
// (TLB slot 1, the slot of code page 0x400: the code's TLB entry is evicted, only the
// fetch-page cache still holds the stale translation) and prints 'A':
//   0x100000: mov eax,0x400000; jmp rax
//   0x400000: mov rbx,0x600083; mov [0xb010],rbx; mov ecx,200
//             1: mov al,[0x1000]; mov al,'A'; mov dx,0x3f8; out dx,al; dec ecx; jnz 1b
//             mov dx,0xf4; xor eax,eax; out dx,eax; hlt
const std::vector<uint8_t> kJumpTo400000 = {0xb8, 0x00, 0x00, 0x40, 0x00, 0xff, 0xe0};
const std::vector<uint8_t> kStaleCodePageCode = {
    0x48, 0xc7, 0xc3, 0x83, 0x00, 0x60, 0x00, 0x48, 0x89, 0x1c, 0x25, 0x10, 0xb0, 0x00, 0x00, 0xb9,
    0xc8, 0x00, 0x00, 0x00, 0x8a, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00, 0xb0, 0x41, 0x66, 0xba, 0xf8,
    0x03, 0xee, 0xff, 0xc9, 0x75, 0xee, 0x66, 0xba, 0xf4, 0x00, 0x31, 0xc0, 0xef, 0xf4};
constexpr size_t kLetterOffset = 28;  // the immediate of mov al,'A'
constexpr uint64_t kStaleCodeInstructions = 2 + 3 + 200 * 6 + 3;

std::vector<uint8_t> StaleCodePageGuest() {
  std::vector<uint8_t> b = kStaleCodePageCode;
  b[kLetterOffset] = 'B';
  return test::MakeElf64(0x100000, {{0x100000, kJumpTo400000}, {0x400000, kStaleCodePageCode}, {0x600000, b}});
}

struct Guest {
  std::vector<uint8_t> image;
  uint64_t instructions;
};
std::vector<Guest> Guests() {
  return {{StalePteGuest(), kStalePteInstructions}, {StaleCodePageGuest(), kStaleCodeInstructions}};
}

MachineConfig Config() {
  MachineConfig c;
  c.memory_bytes = 8ull << 20;
  return c;
}

struct Outcome {
  std::string console;
  MachineResult result;
  uint64_t digest = 0;
};

// Runs the guest to its end, taking a CPU digest and a whole-machine digest every `every`
// instructions (0: never), and a snapshot at each of those points too when `snapshots`.
Outcome RunObserved(const std::vector<uint8_t>& image, uint64_t every, bool snapshots) {
  FakeEnvironment env;
  Machine m(Config(), env);
  m.LoadKernelBytes(image, "stale");
  MachineResult r;
  for (;;) {
    r = m.Run(every ? m.icount() + every : ~uint64_t{0});
    if (r.stop != MachineStop::kTargetReached) break;
    (void)m.StateDigest(DigestScope::kCpu);
    (void)m.StateDigest(DigestScope::kFull);
    if (snapshots) (void)m.SaveSnapshot();
  }
  return {env.console, r, m.StateDigest(DigestScope::kFull)};
}

TEST(Observation, TheGuestSeesTheStaleTranslationItsTlbHolds) {
  for (const Guest& g : Guests()) {
    const Outcome plain = RunObserved(g.image, 0, false);
    EXPECT_EQ(plain.result.stop, MachineStop::kGuestExit);
    EXPECT_EQ(plain.result.icount, g.instructions);
    // The page directory now says 'B', but no INVLPG was done: every access is the cached one.
    EXPECT_EQ(plain.console, std::string(200, 'A'));
  }
}

TEST(Observation, DigestsAndSnapshotsAtAnyIntervalChangeNothing) {
  for (const Guest& g : Guests()) {
    const Outcome plain = RunObserved(g.image, 0, false);
    for (uint64_t every : {1ull, 7ull, 1000ull, 1'000'000ull}) {
      for (bool snapshots : {false, true}) {
        const Outcome o = RunObserved(g.image, every, snapshots);
        EXPECT_EQ(o.console, plain.console) << "every " << every << " snapshots " << snapshots;
        EXPECT_EQ(o.result.icount, plain.result.icount) << every;
        EXPECT_EQ(o.digest, plain.digest) << every;
      }
    }
  }
}

TEST(Observation, ARunRestoredAtEveryPointFinishesExactlyAsTheOriginal) {
  for (const Guest& g : Guests()) {
    const Outcome plain = RunObserved(g.image, 0, false);
    FakeEnvironment env_a, env_b;
    Machine a(Config(), env_a), b(Config(), env_b);
    a.LoadKernelBytes(g.image, "stale");
    b.LoadKernelBytes(g.image, "stale");
    for (uint64_t at = 0; at < g.instructions; ++at) {
      ASSERT_EQ(a.Run(at).stop, MachineStop::kTargetReached);
      const std::vector<uint8_t> snap = a.SaveSnapshot();
      b.LoadSnapshot(snap);
      ASSERT_EQ(b.StateDigest(DigestScope::kFull), a.StateDigest(DigestScope::kFull)) << at;
      env_b.console.clear();
      const MachineResult r = b.Run();
      ASSERT_EQ(r.stop, MachineStop::kGuestExit) << at;
      ASSERT_EQ(r.icount, g.instructions) << at;
      // b printed what a has still to print.
      ASSERT_EQ(env_a.console + env_b.console, plain.console) << "restored at icount " << at;
      ASSERT_EQ(b.StateDigest(DigestScope::kFull), plain.digest) << at;
    }
  }
}

}  // namespace
}  // namespace vmrr
