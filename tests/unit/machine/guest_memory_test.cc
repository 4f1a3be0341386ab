// GuestMemory: bounds checks at the edges of RAM, zero fill, dirty-page tracking, and the
// code-write observer that keeps the CPU's decoded blocks coherent with DMA and stores.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "hv-hooks/substrate/guest_memory.h"

namespace vmrr {
namespace {

struct RecordingObserver : CodeWriteObserver {
  std::vector<std::pair<uint64_t, uint64_t>> writes;
  void OnCodeWrite(uint64_t gpa, uint64_t len) override { writes.emplace_back(gpa, len); }
};

TEST(GuestMemory, SizeRoundsUpToPagesAndStartsZeroed) {
  GuestMemory mem(3 * kGuestPageSize + 1);
  EXPECT_EQ(mem.size(), 4 * kGuestPageSize);
  std::vector<uint8_t> buf(mem.size(), 0xff);
  ASSERT_TRUE(mem.Read(0, buf.data(), buf.size()));
  for (uint8_t b : buf) ASSERT_EQ(b, 0);
}

TEST(GuestMemory, AccessesLeavingRamAreRefused) {
  GuestMemory mem(2 * kGuestPageSize);
  uint8_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_TRUE(mem.Write(mem.size() - 8, b, 8));
  EXPECT_FALSE(mem.Write(mem.size() - 7, b, 8));
  EXPECT_FALSE(mem.Read(UINT64_MAX - 3, b, 8));  // would wrap around
  EXPECT_EQ(mem.Span(mem.size(), 1), nullptr);
  EXPECT_NE(mem.Span(mem.size(), 0), nullptr);
  EXPECT_EQ(mem.Span(UINT64_MAX, 2), nullptr);
  uint8_t out[8] = {};
  ASSERT_TRUE(mem.Read(mem.size() - 8, out, 8));
  EXPECT_EQ(out[7], 8);
}

TEST(GuestMemory, WritesMarkDirtyPagesUntilCleared) {
  GuestMemory mem(4 * kGuestPageSize);
  uint8_t b[2] = {9, 9};
  ASSERT_TRUE(mem.Write(kGuestPageSize - 1, b, 2));  // straddles pages 0 and 1
  EXPECT_TRUE(mem.IsDirty(0));
  EXPECT_TRUE(mem.IsDirty(1));
  EXPECT_FALSE(mem.IsDirty(2));
  mem.ClearDirty();
  EXPECT_FALSE(mem.IsDirty(0));
  mem.NoteWrite(3 * kGuestPageSize + 5, 1);
  EXPECT_TRUE(mem.IsDirty(3));
}

TEST(GuestMemory, WritesToCodePagesReachTheObserver) {
  GuestMemory mem(4 * kGuestPageSize);
  RecordingObserver observer;
  mem.SetCodeWriteObserver(&observer);
  mem.MarkCode(2);
  uint8_t b[4] = {};
  ASSERT_TRUE(mem.Write(kGuestPageSize, b, 4));  // page 1: not code
  EXPECT_TRUE(observer.writes.empty());
  ASSERT_TRUE(mem.Write(2 * kGuestPageSize - 2, b, 4));  // reaches into page 2
  ASSERT_EQ(observer.writes.size(), 1u);
  EXPECT_EQ(observer.writes[0], (std::pair<uint64_t, uint64_t>{2 * kGuestPageSize - 2, 4}));
  mem.UnmarkCode(2);
  ASSERT_TRUE(mem.Write(2 * kGuestPageSize, b, 4));
  EXPECT_EQ(observer.writes.size(), 1u);
}

}  // namespace
}  // namespace vmrr
