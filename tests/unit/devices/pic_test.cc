// 8259A pair tests against the Intel 8259A datasheet (initialisation sequence, priorities,
// EOI forms, masking, cascade, poll, ELCR).
#include <gtest/gtest.h>

#include "hv-hooks/devices/pic8259.h"
#include "test_support.h"

namespace vmrr {
namespace {

class PicTest : public ::testing::Test {
 protected:
  void Cmd(int chip, uint8_t v) { (chip ? pic.slave_io() : pic.master_io()).Write(0, 1, v); }
  void Data(int chip, uint8_t v) { (chip ? pic.slave_io() : pic.master_io()).Write(1, 1, v); }
  uint8_t ReadCmd(int chip) {
    return static_cast<uint8_t>((chip ? pic.slave_io() : pic.master_io()).Read(0, 1));
  }
  uint8_t ReadData(int chip) {
    return static_cast<uint8_t>((chip ? pic.slave_io() : pic.master_io()).Read(1, 1));
  }
  // The BIOS/Linux initialisation: edge, cascade, ICW4 8086 mode, vectors 0x20 / 0x28.
  void InitPc(bool auto_eoi = false) {
    Cmd(0, 0x11); Data(0, 0x20); Data(0, 0x04); Data(0, auto_eoi ? 0x03 : 0x01);
    Cmd(1, 0x11); Data(1, 0x28); Data(1, 0x02); Data(1, 0x01);
    Data(0, 0x00);
    Data(1, 0x00);
  }
  void Pulse(unsigned irq) { pic.SetIrq(irq, true); pic.SetIrq(irq, false); }

  PicPair pic;
};

TEST_F(PicTest, DeliversEdgeInterruptWithProgrammedVectorAndEoi) {
  InitPc();
  EXPECT_FALSE(pic.OutputPending());
  Pulse(1);
  EXPECT_TRUE(pic.OutputPending());
  EXPECT_EQ(pic.Acknowledge(), 0x21);
  EXPECT_FALSE(pic.OutputPending());
  Cmd(0, 0x0b);  // OCW3: read ISR
  EXPECT_EQ(ReadCmd(0), 0x02);
  Cmd(0, 0x20);  // non-specific EOI
  EXPECT_EQ(ReadCmd(0), 0x00);
}

TEST_F(PicTest, IrrReadShowsRequestsAndMaskBlocksThem) {
  InitPc();
  Data(0, 0x08);  // mask IRQ3
  Pulse(3);
  Cmd(0, 0x0a);  // OCW3: read IRR
  EXPECT_EQ(ReadCmd(0), 0x08);
  EXPECT_EQ(ReadData(0), 0x08) << "data port reads IMR";
  EXPECT_FALSE(pic.OutputPending());
  Data(0, 0x00);
  EXPECT_TRUE(pic.OutputPending());
  EXPECT_EQ(pic.Acknowledge(), 0x23);
}

TEST_F(PicTest, FullyNestedPriority) {
  InitPc();
  Pulse(5);
  Pulse(3);
  EXPECT_EQ(pic.Acknowledge(), 0x23) << "lower line number wins";
  // IRQ5 is lower priority than IRQ3 in service: held off until EOI.
  EXPECT_FALSE(pic.OutputPending());
  Pulse(0);
  EXPECT_TRUE(pic.OutputPending()) << "higher priority nests";
  EXPECT_EQ(pic.Acknowledge(), 0x20);
  Cmd(0, 0x20);  // EOI clears the highest in service: IRQ0
  EXPECT_FALSE(pic.OutputPending());
  Cmd(0, 0x20);  // clears IRQ3
  EXPECT_EQ(pic.Acknowledge(), 0x25);
}

TEST_F(PicTest, SpecificEoiAndRotation) {
  InitPc();
  Pulse(4);
  EXPECT_EQ(pic.Acknowledge(), 0x24);
  Cmd(0, 0x63);  // specific EOI for IRQ3 (not in service): IRQ4 stays
  Cmd(0, 0x0b);
  EXPECT_EQ(ReadCmd(0), 0x10);
  Cmd(0, 0x64);  // specific EOI for IRQ4
  EXPECT_EQ(ReadCmd(0), 0x00);
  // Set priority: IRQ4 lowest, so IRQ5 is now the highest.
  Cmd(0, 0xc4);
  Pulse(0);
  Pulse(5);
  EXPECT_EQ(pic.Acknowledge(), 0x25);
}

TEST_F(PicTest, RotateOnNonSpecificEoi) {
  InitPc();
  Pulse(0);
  EXPECT_EQ(pic.Acknowledge(), 0x20);
  Cmd(0, 0xa0);  // rotate on non-specific EOI: IRQ0 becomes lowest
  Pulse(0);
  Pulse(1);
  EXPECT_EQ(pic.Acknowledge(), 0x21);
}

TEST_F(PicTest, EdgeHeldHighDoesNotRetrigger) {
  InitPc();
  pic.SetIrq(4, true);
  EXPECT_EQ(pic.Acknowledge(), 0x24);
  Cmd(0, 0x20);
  EXPECT_FALSE(pic.OutputPending()) << "edge mode needs a new rising edge";
  pic.SetIrq(4, false);
  pic.SetIrq(4, true);
  EXPECT_TRUE(pic.OutputPending());
}

TEST_F(PicTest, LevelTriggeredViaElcrStaysPendingWhileAsserted) {
  InitPc();
  pic.elcr_io().Write(1, 1, 0x02);  // IRQ9 level
  EXPECT_EQ(pic.elcr_io().Read(1, 1), 0x02u);
  pic.SetIrq(9, true);
  EXPECT_EQ(pic.Acknowledge(), 0x29);
  Cmd(1, 0x20);
  Cmd(0, 0x20);
  EXPECT_TRUE(pic.OutputPending()) << "a level line still asserted requests again";
  pic.SetIrq(9, false);
  // The datasheet: an IR input that drops before INTA yields the default IR7 of that chip.
  // The master latched the cascade edge, so the CPU sees the slave's spurious IRQ15.
  EXPECT_EQ(pic.Acknowledge(), 0x2f);
  Cmd(1, 0x0b);
  EXPECT_EQ(ReadCmd(1), 0x00) << "a spurious IRQ15 sets no slave ISR bit";
  Cmd(0, 0x20);
  EXPECT_FALSE(pic.OutputPending());
}

TEST_F(PicTest, ElcrCannotMakeTimerKeyboardCascadeLevel) {
  pic.elcr_io().Write(0, 1, 0xff);
  pic.elcr_io().Write(1, 1, 0xff);
  EXPECT_EQ(pic.elcr_io().Read(0, 1), 0xf8u);
  EXPECT_EQ(pic.elcr_io().Read(1, 1), 0xdeu);
}

TEST_F(PicTest, SlaveCascadesThroughMasterIrq2) {
  InitPc();
  Pulse(12);
  EXPECT_TRUE(pic.OutputPending());
  EXPECT_EQ(pic.Acknowledge(), 0x2c);
  Cmd(1, 0x0b);
  EXPECT_EQ(ReadCmd(1), 0x10);
  Cmd(0, 0x0b);
  EXPECT_EQ(ReadCmd(0), 0x04) << "master has IRQ2 in service";
  Data(1, 0x10);  // masking a slave line hides it from the master too
  Cmd(1, 0x20);
  Cmd(0, 0x20);
  Pulse(12);
  EXPECT_FALSE(pic.OutputPending());
}

TEST_F(PicTest, SpuriousInterruptGivesIrq7Vector) {
  InitPc();
  EXPECT_EQ(pic.Acknowledge(), 0x27);
  Cmd(0, 0x0b);
  EXPECT_EQ(ReadCmd(0), 0x00) << "a spurious IRQ7 sets no ISR bit";
}

TEST_F(PicTest, PollCommandActsAsAcknowledge) {
  InitPc();
  Pulse(6);
  Cmd(0, 0x0c);  // OCW3 poll
  EXPECT_EQ(ReadCmd(0), 0x86);
  Cmd(0, 0x0b);
  EXPECT_EQ(ReadCmd(0), 0x40);
  Cmd(0, 0x0c);
  EXPECT_EQ(ReadCmd(0), 0x00) << "nothing pending: bit 7 clear";
}

TEST_F(PicTest, SpecialMaskModeLetsLowerPrioritiesThrough) {
  InitPc();
  Pulse(3);
  EXPECT_EQ(pic.Acknowledge(), 0x23);
  Data(0, 0x08);  // mask the line in service
  Cmd(0, 0x68);   // OCW3: set special mask
  Pulse(5);
  EXPECT_TRUE(pic.OutputPending());
  EXPECT_EQ(pic.Acknowledge(), 0x25);
}

TEST_F(PicTest, AutoEoiLeavesNothingInService) {
  InitPc(/*auto_eoi=*/true);
  Pulse(1);
  EXPECT_EQ(pic.Acknowledge(), 0x21);
  Cmd(0, 0x0b);
  EXPECT_EQ(ReadCmd(0), 0x00);
  Pulse(2 + 3);
  EXPECT_TRUE(pic.OutputPending());
}

TEST_F(PicTest, SaveMutateRestore) {
  InitPc();
  Pulse(3);
  test::ExpectSaveMutateRestore(pic, [&] {
    pic.Acknowledge();
    Data(0, 0x55);
    pic.elcr_io().Write(0, 1, 0x20);
  });
  EXPECT_EQ(pic.Acknowledge(), 0x23) << "restored state still has IRQ3 pending";
}

}  // namespace
}  // namespace vmrr
