// 8254 PIT tests against the Intel 8254 datasheet: modes 0/2/3, access modes, latch,
// read-back, BCD, IRQ0 timing at 1.193182 MHz.
#include <gtest/gtest.h>

#include "hv-hooks/devices/pit8254.h"
#include "test_support.h"

namespace vmrr {
namespace {

class PitTest : public ::testing::Test {
 protected:
  PitTest() : clock(ic, VirtualClock::Mode::kIcount), pit(clock, IrqLine(&irqs, 0)) {
    clock.Reset(0);
  }
  void Ctl(uint8_t v) { pit.Write(3, 1, v); }
  void Counter(int n, uint8_t v) { pit.Write(static_cast<uint64_t>(n), 1, v); }
  uint8_t Rd(int n) { return static_cast<uint8_t>(pit.Read(static_cast<uint64_t>(n), 1)); }
  // Runs the clock to the PIT's deadline the way the machine's run loop does.
  void RunToDeadline() {
    uint64_t d = pit.NextDeadlineNs();
    ASSERT_NE(d, kNoDeadline);
    ic.value = clock.IcountForDeadline(d);
    pit.RunTimers();
  }
  uint64_t TicksToNs(uint64_t t) { return (t * 1000000000ull + 1193181) / 1193182; }

  test::FakeIcount ic;
  VirtualClock clock;
  test::IrqRecorder irqs;
  Pit8254 pit;
};

TEST_F(PitTest, Mode2RateGeneratorPulsesIrq0EveryPeriod) {
  Ctl(0x34);  // counter 0, lobyte/hibyte, mode 2, binary
  Counter(0, 0xa9);
  Counter(0, 0x04);  // 1193: ~1 kHz
  // Programming mode 2 drives OUT high (datasheet); OUT is taken as high from power-on, so
  // the first IRQ0 edge is at the end of the first period.
  int base = irqs.rises[0];
  EXPECT_EQ(base, 0);
  for (int i = 1; i <= 5; ++i) {
    RunToDeadline();
    EXPECT_EQ(irqs.rises[0], base + i);
    EXPECT_EQ(ic.value, TicksToNs(1193ull * i)) << "edge exactly at the period boundary";
  }
}

TEST_F(PitTest, Mode0OutGoesHighAtTerminalCountOnce) {
  Ctl(0x30);  // mode 0
  Counter(0, 100);
  Counter(0, 0);
  EXPECT_FALSE(pit.Out(0));
  ic.value = TicksToNs(99);
  EXPECT_FALSE(pit.Out(0));
  RunToDeadline();
  EXPECT_EQ(ic.value, TicksToNs(100));
  EXPECT_TRUE(pit.Out(0));
  EXPECT_EQ(irqs.rises[0], 1);
  EXPECT_TRUE(irqs.level[0]) << "mode 0 OUT stays high until reprogrammed";
  EXPECT_EQ(pit.NextDeadlineNs(), kNoDeadline);
  Ctl(0x30);
  pit.RunTimers();
  EXPECT_FALSE(irqs.level[0]) << "a control word drives OUT low in mode 0";
}

TEST_F(PitTest, Mode3SquareWaveIsHighForHalfThePeriod) {
  Ctl(0x36);
  Counter(0, 100);
  Counter(0, 0);
  ic.value = TicksToNs(49);
  EXPECT_TRUE(pit.Out(0));
  ic.value = TicksToNs(50);
  EXPECT_FALSE(pit.Out(0));
  ic.value = TicksToNs(100);
  EXPECT_TRUE(pit.Out(0));
  ic.value = 0;
  int base = irqs.rises[0];
  RunToDeadline();  // falling edge
  EXPECT_EQ(ic.value, TicksToNs(50));
  EXPECT_FALSE(irqs.level[0]);
  RunToDeadline();  // rising edge
  EXPECT_EQ(ic.value, TicksToNs(100));
  EXPECT_EQ(irqs.rises[0], base + 1);
  RunToDeadline();
  RunToDeadline();
  EXPECT_EQ(irqs.rises[0], base + 2);
}

TEST_F(PitTest, CounterLatchFreezesTheReadValue) {
  Ctl(0x34);
  Counter(0, 0x00);
  Counter(0, 0x10);  // 4096
  ic.value = TicksToNs(96);
  Ctl(0x00);  // latch counter 0
  ic.value = TicksToNs(500);
  uint16_t v = static_cast<uint16_t>(Rd(0) | (Rd(0) << 8));
  EXPECT_EQ(v, 4096 - 96);
  uint16_t live = static_cast<uint16_t>(Rd(0) | (Rd(0) << 8));
  EXPECT_EQ(live, 4096 - 500) << "after the latch is read, reads follow the counter";
}

TEST_F(PitTest, LsbOnlyAndMsbOnlyAccess) {
  Ctl(0x54);  // counter 1, LSB only, mode 2
  Counter(1, 200);
  EXPECT_EQ(Rd(1), 200);
  pit.port61().Write(0, 1, 0x01);  // counter 2 counts only with its GATE high
  Ctl(0xa4);  // counter 2, MSB only, mode 2
  Counter(2, 0x02);
  EXPECT_EQ(Rd(2), 0x02);
  ic.value = TicksToNs(1);
  Ctl(0x80);  // latch counter 2
  EXPECT_EQ(Rd(2), 0x01) << "0x200 - 1 = 0x1ff: MSB 0x01";
}

TEST_F(PitTest, ReadBackStatusReportsOutModeAndNullCount) {
  Ctl(0x36);  // counter 0 mode 3 lobyte/hibyte
  Ctl(0xe2);  // read-back status only, counter 0
  EXPECT_EQ(Rd(0), 0x40 | 0x80 | 0x30 | 0x06) << "null count before a count is written";
  Counter(0, 100);
  Counter(0, 0);
  Ctl(0xe2);
  EXPECT_EQ(Rd(0), 0x80 | 0x30 | 0x06);
  // Read-back of status and count: status first, then the latched count.
  ic.value = TicksToNs(60);  // second half: OUT low
  Ctl(0xc2);
  EXPECT_EQ(Rd(0), 0x30 | 0x06);
  uint16_t v = static_cast<uint16_t>(Rd(0) | (Rd(0) << 8));
  EXPECT_EQ(v, 100 - (2 * 60) % 100);
}

TEST_F(PitTest, BcdCounting) {
  Ctl(0x35);  // counter 0 mode 2 BCD
  Counter(0, 0x00);
  Counter(0, 0x10);  // BCD 1000
  ic.value = TicksToNs(1);
  Ctl(0x00);
  EXPECT_EQ(Rd(0), 0x99);
  EXPECT_EQ(Rd(0), 0x09) << "999 in BCD";
  RunToDeadline();
  EXPECT_EQ(ic.value, TicksToNs(1000));
}

TEST_F(PitTest, Port61GatesCounter2AndShowsItsOut) {
  // Linux's pit_calibrate_tsc: gate high, speaker off, counter 2 mode 0, poll bit 5.
  EXPECT_EQ(pit.port61().Read(0, 1) & 0x01, 0u) << "gate 2 low at reset";
  pit.port61().Write(0, 1, 0x01);
  Ctl(0xb0);
  Counter(2, 0xe8);
  Counter(2, 0x03);  // 1000
  ic.value = TicksToNs(999);
  EXPECT_EQ(pit.port61().Read(0, 1) & 0x20, 0u);
  ic.value = TicksToNs(1000);
  EXPECT_EQ(pit.port61().Read(0, 1) & 0x20, 0x20u);
}

TEST_F(PitTest, RefreshBitToggles) {
  uint64_t a = pit.port61().Read(0, 1) & 0x10;
  ic.value = 15085;
  uint64_t b = pit.port61().Read(0, 1) & 0x10;
  EXPECT_NE(a, b);
}

TEST_F(PitTest, GateLowPausesMode0) {
  pit.port61().Write(0, 1, 0x01);
  Ctl(0xb0);
  Counter(2, 100);
  Counter(2, 0);
  ic.value = TicksToNs(40);
  pit.SetGate(2, false);
  ic.value = TicksToNs(500);
  EXPECT_FALSE(pit.Out(2)) << "paused at 40 ticks";
  Ctl(0x80);
  EXPECT_EQ(Rd(2) | (Rd(2) << 8), 60);
  pit.SetGate(2, true);
  ic.value = TicksToNs(500) + TicksToNs(59);
  EXPECT_FALSE(pit.Out(2));
  ic.value = TicksToNs(500) + TicksToNs(61);
  EXPECT_TRUE(pit.Out(2)) << "resumed: 40 + 60 ticks";
}

TEST_F(PitTest, GateRisingEdgeReloadsMode2AndTriggersMode1) {
  pit.port61().Write(0, 1, 0x01);
  Ctl(0xb4);  // counter 2 mode 2
  Counter(2, 100);
  Counter(2, 0);
  ic.value = TicksToNs(30);
  pit.SetGate(2, false);
  pit.SetGate(2, true);
  Ctl(0x80);
  EXPECT_EQ(Rd(2) | (Rd(2) << 8), 100) << "reloaded by the rising edge";
  Ctl(0xb2);  // counter 2 mode 1
  Counter(2, 50);
  Counter(2, 0);
  ic.value += TicksToNs(100);
  EXPECT_TRUE(pit.Out(2)) << "mode 1 waits for a trigger with OUT high";
  pit.SetGate(2, false);
  pit.SetGate(2, true);
  EXPECT_FALSE(pit.Out(2)) << "triggered: OUT low for the count";
}

TEST_F(PitTest, SaveMutateRestore) {
  Ctl(0x34);
  Counter(0, 0xa9);
  Counter(0, 0x04);
  int base = irqs.rises[0];
  test::ExpectSaveMutateRestore(pit, [&] {
    Ctl(0x70);
    Counter(1, 3);
    Ctl(0x00);
  });
  RunToDeadline();
  EXPECT_EQ(irqs.rises[0], base + 1);
  EXPECT_EQ(ic.value, TicksToNs(1193));
}

}  // namespace
}  // namespace vmrr
