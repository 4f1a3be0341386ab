// CMOS RTC tests against the MC146818A datasheet: time registers from the virtual clock,
// BCD/binary, 12/24 h, SET, UIP window, register C flags and IRQ8, civil-date conversion.
#include <gtest/gtest.h>

#include "hv-hooks/devices/rtc_cmos.h"
#include "test_support.h"

namespace vmrr {
namespace {

class RtcTest : public ::testing::Test {
 protected:
  RtcTest() : clock(ic, VirtualClock::Mode::kIcount), rtc(clock, IrqLine(&irqs, 8)) {
    clock.Reset(VirtualClock::kDefaultIcountEpochNs);  // 2024-01-01 00:00:00 UTC, a Monday
  }
  uint8_t Rd(uint8_t index) {
    rtc.Write(0, 1, index);
    return static_cast<uint8_t>(rtc.Read(1, 1));
  }
  void Wr(uint8_t index, uint8_t v) {
    rtc.Write(0, 1, index);
    rtc.Write(1, 1, v);
  }

  test::FakeIcount ic;
  VirtualClock clock;
  test::IrqRecorder irqs;
  RtcCmos rtc;
};

TEST_F(RtcTest, ReadsVirtualClockDateInBcd) {
  EXPECT_EQ(Rd(0x00), 0x00);
  EXPECT_EQ(Rd(0x04), 0x00);
  EXPECT_EQ(Rd(0x06), 0x02) << "Monday (1 = Sunday)";
  EXPECT_EQ(Rd(0x07), 0x01);
  EXPECT_EQ(Rd(0x08), 0x01);
  EXPECT_EQ(Rd(0x09), 0x24);
  EXPECT_EQ(Rd(0x32), 0x20);
  ic.value = (13ull * 3600 + 59 * 60 + 58) * 1000000000ull;
  EXPECT_EQ(Rd(0x04), 0x13);
  EXPECT_EQ(Rd(0x02), 0x59);
  EXPECT_EQ(Rd(0x00), 0x58);
  EXPECT_EQ(Rd(0x0d), 0x80) << "valid RAM and time";
}

TEST_F(RtcTest, BinaryAnd12HourModes) {
  ic.value = (13ull * 3600 + 5 * 60 + 7) * 1000000000ull;
  Wr(0x0b, 0x04);  // binary, 12 hour
  EXPECT_EQ(Rd(0x04), 0x81) << "1 PM: hour 1 with bit 7";
  EXPECT_EQ(Rd(0x02), 5);
  EXPECT_EQ(Rd(0x09), 24);
  Wr(0x0b, 0x00);  // BCD 12 hour
  ic.value = 30ull * 60 * 1000000000ull;  // 00:30 = 12:30 AM
  EXPECT_EQ(Rd(0x04), 0x12);
}

TEST_F(RtcTest, SetBitFreezesAndGuestSetsTheTime) {
  Wr(0x0b, 0x82);  // SET, 24 h, BCD
  Wr(0x09, 0x99);
  Wr(0x32, 0x19);
  Wr(0x08, 0x12);
  Wr(0x07, 0x31);
  Wr(0x04, 0x23);
  Wr(0x02, 0x59);
  Wr(0x00, 0x50);
  ic.value += 5'000'000'000;  // frozen while SET
  EXPECT_EQ(Rd(0x00), 0x50);
  Wr(0x0b, 0x02);
  ic.value += 12'000'000'000;
  EXPECT_EQ(Rd(0x00), 0x02);
  EXPECT_EQ(Rd(0x02), 0x00);
  EXPECT_EQ(Rd(0x04), 0x00);
  EXPECT_EQ(Rd(0x07), 0x01);
  EXPECT_EQ(Rd(0x08), 0x01);
  EXPECT_EQ(Rd(0x09), 0x00);
  EXPECT_EQ(Rd(0x32), 0x20) << "rolled over into 2000";
  EXPECT_EQ(Rd(0x06), 0x07) << "2000-01-01 was a Saturday";
}

TEST_F(RtcTest, UpdateInProgressInLast244Microseconds) {
  ic.value = 999'700'000;
  EXPECT_EQ(Rd(0x0a) & 0x80, 0x00);
  ic.value = 999'760'000;
  EXPECT_EQ(Rd(0x0a) & 0x80, 0x80);
  ic.value = 1'000'000'000;
  EXPECT_EQ(Rd(0x0a) & 0x80, 0x00);
}

TEST_F(RtcTest, PeriodicInterruptOnIrq8UntilRegisterCRead) {
  Wr(0x0a, 0x26);  // 1024 Hz
  Wr(0x0b, 0x42);  // PIE
  uint64_t d = rtc.NextDeadlineNs();
  EXPECT_EQ(d, 976562u);
  ic.value = clock.IcountForDeadline(d);
  rtc.RunTimers();
  EXPECT_TRUE(irqs.level[8]);
  EXPECT_EQ(Rd(0x0c), 0xc0) << "IRQF | PF";
  EXPECT_FALSE(irqs.level[8]);
  EXPECT_EQ(Rd(0x0c), 0x00);
}

TEST_F(RtcTest, UpdateEndedFlagEachSecondWithoutInterruptEnable) {
  ic.value = 1'500'000'000;
  uint8_t c = Rd(0x0c);
  EXPECT_EQ(c & 0x10, 0x10) << "UF set";
  EXPECT_EQ(c & 0x40, 0x40) << "PF is set at the periodic rate even without PIE";
  EXPECT_EQ(c & 0x80, 0x00) << "no IRQF without enables";
  EXPECT_FALSE(irqs.level[8]);
}

TEST_F(RtcTest, AlarmInterrupt) {
  Wr(0x01, 0x05);
  Wr(0x03, 0xc0);  // don't care
  Wr(0x05, 0xff);  // don't care
  Wr(0x0b, 0x22);  // AIE
  ic.value = 4'000'000'000;
  rtc.RunTimers();
  EXPECT_FALSE(irqs.level[8]);
  Rd(0x0c);
  ic.value = clock.IcountForDeadline(rtc.NextDeadlineNs());
  EXPECT_EQ(ic.value, 5'000'000'000u);
  rtc.RunTimers();
  EXPECT_TRUE(irqs.level[8]);
  EXPECT_EQ(Rd(0x0c) & 0xa0, 0xa0);
}

TEST_F(RtcTest, CmosRamAndNmiBitInIndex) {
  Wr(0x80 | 0x20, 0x42);
  EXPECT_EQ(Rd(0x20), 0x42);
  rtc.SetCmosByte(0x34, 0x99);
  EXPECT_EQ(Rd(0x34), 0x99);
}

TEST_F(RtcTest, FarFutureYearSurvivesSnapshot) {
  Wr(0x32, 0x99);
  Wr(0x09, 0x99);
  EXPECT_EQ(Rd(0x32), 0x99);
  EXPECT_EQ(Rd(0x09), 0x99);
  std::vector<uint8_t> saved = SaveToBytes(rtc);
  LoadFromBytes(rtc, saved);  // found by the virtqueue fuzzer's sibling check: must not refuse
  EXPECT_EQ(Rd(0x32), 0x99);
  Wr(0x32, 0xff);  // invalid BCD is reduced, never overflows
  EXPECT_NO_THROW(LoadFromBytes(rtc, SaveToBytes(rtc)));
}

TEST(RtcCivilTime, KnownDates) {
  auto f = RtcCmos::FieldsFromSeconds(951782400);  // 2000-02-29 00:00:00
  EXPECT_EQ(f.year, 2000);
  EXPECT_EQ(f.month, 2u);
  EXPECT_EQ(f.day, 29u);
  EXPECT_EQ(f.weekday, 3u);  // Tuesday
  EXPECT_EQ(RtcCmos::SecondsFromFields(f), 951782400);
  auto e = RtcCmos::FieldsFromSeconds(0);
  EXPECT_EQ(e.weekday, 5u);  // Thursday
  auto g = RtcCmos::FieldsFromSeconds(4102444799);  // 2099-12-31 23:59:59
  EXPECT_EQ(g.year, 2099);
  EXPECT_EQ(g.second, 59u);
}

TEST_F(RtcTest, SaveMutateRestore) {
  Wr(0x0b, 0x42);
  test::ExpectSaveMutateRestore(rtc, [&] {
    Wr(0x20, 1);
    Wr(0x04, 0x05);
  });
  EXPECT_EQ(Rd(0x04), 0x00);
}

}  // namespace
}  // namespace vmrr
