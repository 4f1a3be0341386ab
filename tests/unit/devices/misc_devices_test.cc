// Tests of the debug-exit port (QEMU isa-debug-exit encoding) and the PCI host bridge
// (configuration mechanism #1).
#include <gtest/gtest.h>

#include "hv-hooks/devices/debug_exit.h"
#include "hv-hooks/devices/pci_host.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/machine/platform_layout.h"
#include "test_support.h"

namespace vmrr {
namespace {

TEST(DebugExit, ExitStatusIsValueShiftedOrOne) {
  DebugExit dev;
  int seen = -1;
  dev.SetExitHandler([&](int s) { seen = s; });
  PortBus bus;
  bus.Insert(dev, platform::kDebugExitPort, platform::kDebugExitPortCount);
  EXPECT_FALSE(dev.exit_requested());
  bus.Write(platform::kDebugExitPort, 1, 0x10);
  EXPECT_TRUE(dev.exit_requested());
  EXPECT_EQ(dev.exit_status(), 0x21);
  EXPECT_EQ(seen, 0x21);
  bus.Write(platform::kDebugExitPort, 4, 0);
  EXPECT_EQ(dev.exit_status(), 1);
  // QEMU's debug_exit_write ignores the offset: every port of the window exits.
  bus.Write(platform::kDebugExitPort + 3, 1, 2);
  EXPECT_EQ(dev.exit_status(), 5);
  bus.Write(platform::kDebugExitPort + 2, 2, 0x7f);
  EXPECT_EQ(dev.exit_status(), 0xff);
  EXPECT_EQ(bus.Read(platform::kDebugExitPort, 1), 0xffu) << "no read handler";
}

TEST(DebugExit, SaveMutateRestore) {
  DebugExit dev;
  test::ExpectSaveMutateRestore(dev, [&] { dev.Write(0, 1, 3); });
  EXPECT_FALSE(dev.exit_requested());
}

class PciTest : public ::testing::Test {
 protected:
  PciTest() { bus.Insert(pci, platform::kPciConfigAddress, platform::kPciPortCount); }
  uint32_t Cfg(unsigned dev, unsigned reg, unsigned size = 4) {
    bus.Write(0xcf8, 4, 0x80000000u | (dev << 11) | (reg & 0xfc));
    return static_cast<uint32_t>(bus.Read(0xcfc + (reg & 3), size));
  }
  PortBus bus;
  PciHostBridge pci;
};

TEST_F(PciTest, HostBridgeAtZeroAndNothingElse) {
  EXPECT_EQ(Cfg(0, 0), 0x12378086u);
  EXPECT_EQ(Cfg(0, 0x08) >> 8, 0x060000u) << "class code: host bridge";
  EXPECT_EQ(Cfg(0, 0x0e, 1), 0x00u) << "header type 0";
  EXPECT_EQ(Cfg(1, 0, 2), 0xffffu) << "empty slot";
  EXPECT_EQ(Cfg(31, 0), 0xffffffffu);
  EXPECT_EQ(Cfg(0, 0x02, 2), 0x1237u) << "word read at offset 2 through 0xcfe";
  EXPECT_EQ(bus.Read(0xcf8, 4), 0x80000000u);
}

TEST_F(PciTest, DisabledConfigCycleReadsAllOnes) {
  bus.Write(0xcf8, 4, 0x00000000);
  EXPECT_EQ(bus.Read(0xcfc, 4), 0xffffffffu);
  bus.Write(0xcf8, 4, 0x80010000);  // bus 1
  EXPECT_EQ(bus.Read(0xcfc, 4), 0xffffffffu);
}

TEST_F(PciTest, CommandRegisterKeepsOnlyWritableBits) {
  bus.Write(0xcf8, 4, 0x80000004);
  bus.Write(0xcfc, 2, 0xffff);
  EXPECT_EQ(Cfg(0, 0x04, 2), 0x0007u);
  bus.Write(0xcf8, 4, 0x80000000);
  bus.Write(0xcfc, 4, 0);  // vendor/device are read-only
  EXPECT_EQ(Cfg(0, 0), 0x12378086u);
}

TEST_F(PciTest, SaveMutateRestore) {
  bus.Write(0xcf8, 4, 0x80000004);
  test::ExpectSaveMutateRestore(pci, [&] {
    bus.Write(0xcfc, 2, 0x3);
    bus.Write(0xcf8, 4, 0x80000800);
  });
}

}  // namespace
}  // namespace vmrr
