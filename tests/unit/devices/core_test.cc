// Tests of the machine core: bus routing, the state stream, the virtual clock.
#include <gtest/gtest.h>

#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/state_io.h"
#include "hv-hooks/substrate/virtual_clock.h"
#include "test_support.h"

namespace vmrr {
namespace {

struct ScratchDevice : BusDevice {
  uint64_t last_offset = ~0ull, last_value = 0;
  unsigned last_size = 0;
  int reads = 0;
  uint64_t Read(uint64_t offset, unsigned size) override {
    ++reads;
    last_offset = offset;
    last_size = size;
    return 0x1122334455667788ull;
  }
  void Write(uint64_t offset, unsigned size, uint64_t value) override {
    last_offset = offset;
    last_size = size;
    last_value = value;
  }
};

TEST(Bus, RoutesWithOffsetRelativeToBase) {
  PortBus bus;
  ScratchDevice a, b;
  bus.Insert(a, 0x3f8, 8);
  bus.Insert(b, 0x20, 2);
  bus.Write(0x3fb, 1, 0x1ab);
  EXPECT_EQ(a.last_offset, 3u);
  EXPECT_EQ(a.last_value, 0xabu) << "value is masked to the access size";
  EXPECT_EQ(bus.Read(0x21, 1), 0x88u);
  EXPECT_EQ(b.last_offset, 1u);
  EXPECT_EQ(bus.Read(0x20, 2), 0x7788u);
  EXPECT_EQ(b.last_size, 2u);
}

TEST(Bus, UnassignedReadsAllOnesAndWritesAreDropped) {
  MmioBus bus;
  ScratchDevice a;
  bus.Insert(a, 0x1000, 0x10);
  EXPECT_EQ(bus.Read(0x2000, 1), 0xffu);
  EXPECT_EQ(bus.Read(0x2000, 2), 0xffffu);
  EXPECT_EQ(bus.Read(0x2000, 4), 0xffffffffu);
  EXPECT_EQ(bus.Read(0x2000, 8), ~0ull);
  EXPECT_EQ(bus.Read(0xfff, 1), 0xffu);
  // Straddling the end of a range, or an odd size, is not routed.
  EXPECT_EQ(bus.Read(0x100e, 4), 0xffffffffu);
  EXPECT_EQ(bus.Read(0x1000, 3), 0xffffffu);
  EXPECT_EQ(a.reads, 0);
  bus.Write(0x2000, 4, 1);
  EXPECT_EQ(a.last_size, 0u);
}

TEST(Bus, RefusesOverlapsAndEmptyRanges) {
  PortBus bus;
  ScratchDevice a, b;
  bus.Insert(a, 0x40, 4);
  EXPECT_THROW(bus.Insert(b, 0x43, 1), BusError);
  EXPECT_THROW(bus.Insert(b, 0x3f, 2), BusError);
  EXPECT_THROW(bus.Insert(b, 0x30, 0x20), BusError);
  EXPECT_THROW(bus.Insert(b, 0x50, 0), BusError);
  EXPECT_THROW(bus.Insert(b, ~0ull, 2), BusError);
  bus.Insert(b, 0x44, 1);  // adjacent is fine
  bus.Insert(b, 0x3f, 1);
}

TEST(StateIo, RoundTripsFieldsAndRefusesDamage) {
  StateWriter w;
  w.Begin("TEST", 2);
  w.U8(1);
  w.U16(0x1234);
  w.U32(0xdeadbeef);
  w.U64(0x0102030405060708ull);
  uint8_t blob[3] = {7, 8, 9};
  w.Bytes(blob);
  std::vector<uint8_t> bytes = w.Take();

  StateReader r(bytes);
  EXPECT_EQ(r.Begin("TEST", 2), 2u);
  EXPECT_EQ(r.U8(), 1);
  EXPECT_EQ(r.U16(), 0x1234);
  EXPECT_EQ(r.U32(), 0xdeadbeefu);
  EXPECT_EQ(r.U64(), 0x0102030405060708ull);
  EXPECT_EQ(r.Bytes(3), std::vector<uint8_t>({7, 8, 9}));
  r.ExpectEnd();

  StateReader newer(bytes);
  EXPECT_THROW(newer.Begin("TEST", 1), StateError);
  StateReader other(bytes);
  EXPECT_THROW(other.Begin("PIC2", 9), StateError);
  StateReader limited(bytes);
  limited.Begin("TEST", 2);
  limited.U8(), limited.U16(), limited.U32(), limited.U64();
  EXPECT_THROW(limited.Bytes(2), StateError) << "length above the caller's cap";

  // A huge length prefix must be refused before anything is allocated.
  StateWriter huge;
  huge.U64(~0ull);
  StateReader hr(huge.bytes());
  EXPECT_THROW(hr.Bytes(~0ull), StateError);
}

TEST(VirtualClock, IcountModeIsOneNanosecondPerInstruction) {
  test::FakeIcount ic;
  VirtualClock clock(ic, VirtualClock::Mode::kIcount);
  clock.Reset(VirtualClock::kDefaultIcountEpochNs);
  ic.value = 12345;
  EXPECT_EQ(clock.NowNs(), 12345u);
  EXPECT_EQ(clock.WallClockNs(), VirtualClock::kDefaultIcountEpochNs + 12345);
  EXPECT_EQ(clock.IcountForDeadline(20000), 20000u);
  EXPECT_EQ(clock.IcountForDeadline(100), 12345u) << "a past deadline is due now";
  EXPECT_EQ(clock.IcountForDeadline(kNoDeadline), kNoDeadline);
  clock.Sample(999999999999);  // icount mode ignores host time
  EXPECT_EQ(clock.NowNs(), 12345u);
  clock.AdvanceIdleTo(50000);
  EXPECT_EQ(clock.NowNs(), 50000u);
  ic.value += 10;
  EXPECT_EQ(clock.NowNs(), 50010u);
  EXPECT_EQ(clock.IcountForDeadline(60000), ic.value + 9990);
  clock.AdvanceIdleTo(10);  // never backwards
  EXPECT_EQ(clock.NowNs(), 50010u);
}

TEST(VirtualClock, HostModeFollowsSamplesAndStaysMonotonic) {
  test::FakeIcount ic;
  VirtualClock clock(ic, VirtualClock::Mode::kHost, 1000);
  const int64_t boot = 1'700'000'000'000'000'000;
  clock.Reset(boot);
  EXPECT_EQ(clock.NextInputPointIcount(), 1000u);
  ic.value = 1000;
  clock.Sample(boot + 5'000'000);  // wall time ran ahead of the instructions
  EXPECT_EQ(clock.NowNs(), 5'000'000u);
  EXPECT_EQ(clock.NextInputPointIcount(), 2000u);
  ic.value = 1500;
  EXPECT_EQ(clock.NowNs(), 5'000'500u) << "between samples: 1 ns per instruction";
  ic.value = 2000;
  clock.Sample(boot + 4'000'000);  // host clock stepped back: time must not
  EXPECT_EQ(clock.NowNs(), 5'001'000u);
  ic.value = 2100;
  EXPECT_EQ(clock.NowNs(), 5'001'100u);
  EXPECT_EQ(clock.IcountForDeadline(6'000'000), 2100u + 998'900u);
  EXPECT_EQ(clock.HostTimeForDeadline(6'000'000), boot + 6'000'000);
}

TEST(VirtualClock, IcountModeHasInputPointsToo) {
  test::FakeIcount ic;
  VirtualClock clock(ic, VirtualClock::Mode::kIcount, 500);
  clock.Reset(0);
  EXPECT_EQ(clock.NextInputPointIcount(), 500u);
  ic.value = 700;
  clock.MarkInputPoint();
  EXPECT_EQ(clock.NextInputPointIcount(), 1200u);
}

TEST(VirtualClock, SaveMutateRestore) {
  test::FakeIcount ic;
  VirtualClock clock(ic, VirtualClock::Mode::kHost, 1000);
  clock.Reset(1000);
  ic.value = 10;
  test::ExpectSaveMutateRestore(clock, [&] {
    ic.value = 5000;
    clock.Sample(9'000'000);
  });
}

}  // namespace
}  // namespace vmrr
