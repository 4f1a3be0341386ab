// Local APIC, I/O APIC and interrupt router tests against the Intel SDM vol. 3 ch. 11 and the
// 82093AA datasheet: priorities, EOI, timer modes, self IPI, redirection, remote IRR, and the
// PIC/APIC arbitration seen by the CPU.
#include <gtest/gtest.h>

#include "hv-hooks/devices/interrupt_router.h"
#include "hv-hooks/devices/local_apic.h"
#include "hv-hooks/devices/pic8259.h"
#include "test_support.h"

namespace vmrr {
namespace {

class ApicTest : public ::testing::Test {
 protected:
  ApicTest()
      : clock(ic, VirtualClock::Mode::kIcount),
        lapic(clock),
        ioapic(lapic),
        router(pic, ioapic, lapic) {
    clock.Reset(0);
    router.SetIntrLineCallback([this](bool level) { intr = level; });
  }
  void L(unsigned reg, uint32_t v) { lapic.Write(reg, 4, v); }
  uint32_t LR(unsigned reg) { return static_cast<uint32_t>(lapic.Read(reg, 4)); }
  void Redir(unsigned pin, uint64_t entry) {
    ioapic.Write(0, 4, 0x10 + 2 * pin);
    ioapic.Write(0x10, 4, entry & 0xffffffff);
    ioapic.Write(0, 4, 0x11 + 2 * pin);
    ioapic.Write(0x10, 4, entry >> 32);
  }
  uint32_t IoRead(unsigned reg) {
    ioapic.Write(0, 4, reg);
    return static_cast<uint32_t>(ioapic.Read(0x10, 4));
  }
  void EnableApic() { L(0xf0, 0x1ff); }  // SVR: enabled, spurious vector 0xff
  void InitPic() {
    for (auto [port, vals] : {std::pair{&pic.master_io(), std::array<uint8_t, 4>{0x11, 0x20, 4, 1}},
                              std::pair{&pic.slave_io(), std::array<uint8_t, 4>{0x11, 0x28, 2, 1}}}) {
      port->Write(0, 1, vals[0]);
      for (int i = 1; i < 4; ++i) port->Write(1, 1, vals[i]);
      port->Write(1, 1, 0);
    }
  }

  test::FakeIcount ic;
  VirtualClock clock;
  PicPair pic;
  LocalApic lapic;
  IoApic ioapic;
  InterruptRouter router;
  bool intr = false;
};

TEST_F(ApicTest, ResetStateIsVersionAndMaskedLvts) {
  EXPECT_EQ(LR(0x30), 0x00050014u);
  EXPECT_EQ(LR(0xf0), 0xffu) << "software-disabled, spurious vector 0xff";
  EXPECT_EQ(LR(0x320), 0x10000u);
  EXPECT_EQ(LR(0x350), 0x10000u);
  EXPECT_EQ(LR(0xe0), 0xffffffffu);
  EXPECT_EQ(IoRead(1), 0x00170011u) << "24 entries, version 0x11";
  EXPECT_EQ(IoRead(0x10), 0x10000u) << "redirection entries reset masked";
}

TEST_F(ApicTest, PicReachesCpuWhileApicSoftwareDisabled) {
  InitPic();
  router.SetIrq(1, true);
  router.SetIrq(1, false);
  EXPECT_TRUE(intr);
  EXPECT_EQ(router.Acknowledge(), 0x21);
  EXPECT_FALSE(intr);
}

TEST_F(ApicTest, EnabledApicBlocksPicUnlessLint0IsExtInt) {
  InitPic();
  EnableApic();
  router.SetIrq(1, true);
  router.SetIrq(1, false);
  EXPECT_FALSE(intr) << "LINT0 masked: the 8259 is cut off";
  L(0x350, 0x700);  // LINT0: ExtINT, unmasked (virtual wire)
  EXPECT_TRUE(intr);
  EXPECT_EQ(router.Acknowledge(), 0x21);
}

TEST_F(ApicTest, OneShotTimerFiresAtInitialCountTimesDivider) {
  EnableApic();
  L(0x3e0, 0x3);      // divide by 16
  L(0x320, 0x40);     // one-shot, vector 0x40
  L(0x380, 1000);
  EXPECT_EQ(lapic.NextDeadlineNs(), 16000u);
  ic.value = 8000;
  EXPECT_EQ(LR(0x390), 500u) << "current count halfway";
  ic.value = clock.IcountForDeadline(lapic.NextDeadlineNs());
  lapic.RunTimers();
  EXPECT_TRUE(intr);
  EXPECT_EQ(LR(0x390), 0u);
  EXPECT_EQ(LR(0x200 + 0x20), 1u) << "IRR bit for vector 0x40";
  EXPECT_EQ(router.Acknowledge(), 0x40);
  EXPECT_EQ(LR(0x100 + 0x20), 1u) << "now in service";
  EXPECT_EQ(LR(0xa0), 0x40u) << "PPR follows the in-service class";
  L(0xb0, 0);
  EXPECT_EQ(LR(0x100 + 0x20), 0u);
  EXPECT_EQ(lapic.NextDeadlineNs(), kNoDeadline);
}

TEST_F(ApicTest, PeriodicTimerReloads) {
  EnableApic();
  L(0x3e0, 0xb);  // divide by 1
  L(0x320, 0x20041);
  L(0x380, 500);
  for (int i = 1; i <= 3; ++i) {
    ic.value = clock.IcountForDeadline(lapic.NextDeadlineNs());
    EXPECT_EQ(ic.value, 500u * i);
    lapic.RunTimers();
    EXPECT_EQ(router.Acknowledge(), 0x41);
    L(0xb0, 0);
  }
}

TEST_F(ApicTest, TscDeadlineMode) {
  EnableApic();
  L(0x320, 0x40042);  // TSC-deadline, vector 0x42
  lapic.set_tsc_deadline(12345);
  L(0x380, 5);  // ignored in TSC-deadline mode
  EXPECT_EQ(lapic.NextDeadlineNs(), 12345u);
  ic.value = 12345;
  lapic.RunTimers();
  EXPECT_EQ(lapic.tsc_deadline(), 0u) << "the MSR clears when the timer fires";
  EXPECT_EQ(router.Acknowledge(), 0x42);
}

TEST_F(ApicTest, MaskedTimerDoesNotInterrupt) {
  EnableApic();
  L(0x3e0, 0xb);
  L(0x320, 0x10040);
  L(0x380, 10);
  ic.value = 10;
  lapic.RunTimers();
  EXPECT_FALSE(intr);
}

TEST_F(ApicTest, TprHoldsOffLowerPriorityClasses) {
  EnableApic();
  L(0x80, 0x50);
  L(0x300, 0x40045);  // self IPI, vector 0x45
  EXPECT_FALSE(intr) << "class 4 <= TPR class 5";
  L(0x300, 0x40065);
  EXPECT_TRUE(intr);
  EXPECT_EQ(router.Acknowledge(), 0x65);
  L(0x80, 0x00);
  EXPECT_FALSE(intr) << "0x45 is below the in-service 0x65";
  L(0xb0, 0);
  EXPECT_TRUE(intr);
  EXPECT_EQ(router.Acknowledge(), 0x45);
}

TEST_F(ApicTest, IllegalVectorSetsEsr) {
  EnableApic();
  L(0x300, 0x40005);
  L(0x280, 0);
  EXPECT_EQ(LR(0x280), 0x40u);
}

TEST_F(ApicTest, IoApicEdgeDelivery) {
  EnableApic();
  Redir(4, 0x34);  // edge, fixed, unmasked
  router.SetIrq(4, true);
  router.SetIrq(4, false);
  EXPECT_EQ(router.Acknowledge(), 0x34);
  L(0xb0, 0);
  router.SetIrq(4, true);
  EXPECT_TRUE(intr);
}

TEST_F(ApicTest, IoApicLevelRemoteIrrAndEoiRedelivery) {
  EnableApic();
  Redir(16, 0x8051);  // level, vector 0x51
  router.SetIrq(16, true);
  EXPECT_TRUE(IoRead(0x10 + 32) & (1u << 14)) << "remote IRR set on delivery";
  EXPECT_EQ(router.Acknowledge(), 0x51);
  EXPECT_EQ(LR(0x180 + 0x20) & (1u << 0x11), 1u << 0x11) << "TMR marks level";
  L(0xb0, 0);  // EOI while still asserted: delivered again
  EXPECT_TRUE(intr);
  EXPECT_EQ(router.Acknowledge(), 0x51);
  router.SetIrq(16, false);
  L(0xb0, 0);
  EXPECT_FALSE(IoRead(0x10 + 32) & (1u << 14));
  EXPECT_FALSE(intr);
}

TEST_F(ApicTest, MaskedIoApicLevelLineDeliversOnUnmask) {
  EnableApic();
  Redir(9, 0x18060);
  router.SetIrq(9, true);
  EXPECT_FALSE(intr);
  Redir(9, 0x8060);
  EXPECT_TRUE(intr);
}

TEST_F(ApicTest, SaveMutateRestore) {
  EnableApic();
  L(0x320, 0x20041);
  L(0x380, 1000);
  Redir(3, 0x33);
  test::ExpectSaveMutateRestore(lapic, [&] {
    L(0x80, 0x20);
    L(0x300, 0x40077);
    L(0x3e0, 0x1);
  });
  test::ExpectSaveMutateRestore(ioapic, [&] {
    Redir(3, 0x10033);
    router.SetIrq(5, true);
  });
  EXPECT_EQ(lapic.NextDeadlineNs(), 2000u) << "divide configuration 0 divides by 2";
}

}  // namespace
}  // namespace vmrr
