// PlatformDevices: every device at its platform_layout.h address, end to end through the
// buses and the interrupt router, one snapshot of the whole set, and the registry's manifest
// refusing the state of another device set.
#include <gtest/gtest.h>

#include "hv-hooks/machine/loader.h"
#include "hv-hooks/machine/platform_devices.h"
#include "hv-hooks/machine/platform_layout.h"
#include "tests/unit/devices/test_support.h"

namespace vmrr {
namespace {

class PlatformTest : public ::testing::Test {
 protected:
  PlatformTest()
      : mem(1 << 20), clock(ic, VirtualClock::Mode::kIcount),
        devices(mem, clock, ic, env, Config()) {
    clock.Reset(VirtualClock::kDefaultIcountEpochNs);
    devices.MapInto(ports, mmio);
    devices.interrupts().SetIntrLineCallback([this](bool l) { intr = l; });
  }
  static PlatformConfig Config() {
    PlatformConfig c;
    c.virtio_net = true;
    return c;
  }
  void Out(uint16_t port, uint8_t v) { ports.Write(port, 1, v); }
  uint8_t In(uint16_t port) { return static_cast<uint8_t>(ports.Read(port, 1)); }
  void InitPic() {
    Out(0x20, 0x11); Out(0x21, 0x20); Out(0x21, 0x04); Out(0x21, 0x01);
    Out(0xa0, 0x11); Out(0xa1, 0x28); Out(0xa1, 0x02); Out(0xa1, 0x01);
    Out(0x21, 0x00); Out(0xa1, 0x00);
  }
  void RunToNextDeadline() {
    ic.value = clock.IcountForDeadline(devices.NextDeadlineNs());
    devices.RunTimers();
  }

  test::FakeIcount ic;
  GuestMemory mem;
  VirtualClock clock;
  test::FakeEnvironment env;
  PlatformDevices devices;
  PortBus ports;
  MmioBus mmio;
  bool intr = false;
};

TEST_F(PlatformTest, PitTickReachesCpuThroughPic) {
  InitPic();
  Out(0x43, 0x34);
  Out(0x40, 0xa9);
  Out(0x40, 0x04);
  EXPECT_FALSE(intr) << "no tick before the first period ends";
  RunToNextDeadline();
  EXPECT_EQ(ic.value, 999848u) << "1193 ticks of 1.193182 MHz";
  EXPECT_TRUE(intr);
  EXPECT_EQ(devices.interrupts().Acknowledge(), 0x20);
}

TEST_F(PlatformTest, SerialOutputReachesEnvironment) {
  for (char c : std::string("ok\n")) Out(platform::kCom1Base, static_cast<uint8_t>(c));
  EXPECT_EQ(std::string(env.console_out.begin(), env.console_out.end()), "ok\n");
  env.console_in = {'k'};
  devices.PollInputs();
  EXPECT_EQ(In(platform::kCom1Base + 5) & 1, 1);
  EXPECT_EQ(In(platform::kCom1Base), 'k');
}

TEST_F(PlatformTest, EveryWindowAnswersAtItsAddress) {
  EXPECT_EQ(mmio.Read(platform::kVirtioRngBase, 4), 0x74726976u);
  EXPECT_EQ(mmio.Read(platform::kVirtioRngBase + 8, 4), 4u);
  EXPECT_EQ(mmio.Read(platform::kVirtioNetBase + 8, 4), 1u);
  EXPECT_EQ(mmio.Read(platform::kVirtioBlkBase, 4), 0xffffffffu) << "no disk configured";
  EXPECT_EQ(mmio.Read(platform::kLapicBase + 0x30, 4), 0x00050014u);
  mmio.Write(platform::kIoApicBase, 4, 1);
  EXPECT_EQ(mmio.Read(platform::kIoApicBase + 0x10, 4), 0x00170011u);
  Out(0x70, 0x0d);
  EXPECT_EQ(In(0x71), 0x80);
  ports.Write(0xcf8, 4, 0x80000000);
  EXPECT_EQ(ports.Read(0xcfc, 4), 0x12378086u);
  Out(platform::kDebugExitPort, 1);
  EXPECT_EQ(devices.debug_exit().exit_status(), 3);
}

TEST_F(PlatformTest, ApicTimerDeadlineIsThePlatformDeadline) {
  mmio.Write(platform::kLapicBase + 0xf0, 4, 0x1ff);
  mmio.Write(platform::kLapicBase + 0x3e0, 4, 0xb);
  mmio.Write(platform::kLapicBase + 0x320, 4, 0x30);
  mmio.Write(platform::kLapicBase + 0x380, 4, 5000);
  EXPECT_EQ(devices.NextDeadlineNs(), 5000u);
  RunToNextDeadline();
  EXPECT_TRUE(intr);
  EXPECT_EQ(devices.interrupts().Acknowledge(), 0x30);
}

TEST_F(PlatformTest, MappingTwiceIsAConfigurationError) {
  EXPECT_THROW(devices.MapInto(ports, mmio), BusError);
}

TEST_F(PlatformTest, SaveMutateRestoreWholePlatform) {
  InitPic();
  test::ExpectSaveMutateRestore(devices, [&] {
    Out(0x43, 0x34);
    Out(0x40, 0x10);
    Out(0x40, 0x00);
    Out(platform::kCom1Base + 7, 0x99);
    Out(0x70, 0x30);
    Out(0x71, 0x55);
    mmio.Write(platform::kLapicBase + 0x80, 4, 0x20);
  });
  EXPECT_EQ(In(platform::kCom1Base + 7), 0x00);
}

TEST_F(PlatformTest, RegistryHoldsEveryDeviceInTimerOrder) {
  // The relative order of the timed devices (PIT, RTC, local APIC, virtio-blk) is the order
  // RunTimers had before the registry: interrupts due at one instant keep their order.
  EXPECT_EQ(devices.registry().names(),
            (std::vector<std::string>{"pic8259", "pit8254", "rtc-cmos", "local-apic", "io-apic",
                                      "uart16550", "debug-exit", "pci-host", "acpi-pm", "fw-cfg",
                                      "virtio-rng", "virtio-net"}));
}

// fw_cfg at 0x510 as QEMU's pc machine fills it, from this machine's configuration: 1 MiB of
// RAM, one CPU, and the same memory map the Multiboot loader reports (loader.h MemoryMap).
TEST_F(PlatformTest, FwCfgReportsThisMachine) {
  auto select = [&](uint16_t key) { ports.Write(platform::kFwCfgBase, 2, key); };
  auto read = [&](size_t n) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < n; ++i) out.push_back(In(platform::kFwCfgBase + 1));
    return out;
  };
  select(0x0000);
  EXPECT_EQ(read(4), (std::vector<uint8_t>{'Q', 'E', 'M', 'U'}));
  select(0x0003);  // FW_CFG_RAM_SIZE: 1 MiB
  EXPECT_EQ(read(8), (std::vector<uint8_t>{0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00}));
  select(0x0005);  // FW_CFG_NB_CPUS
  EXPECT_EQ(read(2), (std::vector<uint8_t>{1, 0}));
  select(0x000f);  // FW_CFG_MAX_CPUS
  EXPECT_EQ(read(2), (std::vector<uint8_t>{1, 0}));
  select(0x0019);  // FW_CFG_FILE_DIR: two files
  const std::vector<uint8_t> dir = read(4 + 2 * 64);
  EXPECT_EQ(std::vector<uint8_t>(dir.begin(), dir.begin() + 4), (std::vector<uint8_t>{0, 0, 0, 2}));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(dir.data() + 4 + 64 + 8)), "etc/e820");
  const std::vector<MemoryRegion> map = MemoryMap(mem.size());
  const uint32_t e820_size = (uint32_t{dir[68]} << 24) | (uint32_t{dir[69]} << 16) |
                             (uint32_t{dir[70]} << 8) | dir[71];
  ASSERT_EQ(e820_size, 20 * map.size());
  select(static_cast<uint16_t>((dir[72] << 8) | dir[73]));
  const std::vector<uint8_t> e820 = read(e820_size);
  for (size_t i = 0; i < map.size(); ++i) {
    uint64_t base = 0, length = 0, type = 0;
    for (int b = 7; b >= 0; --b) base = (base << 8) | e820[20 * i + static_cast<size_t>(b)];
    for (int b = 7; b >= 0; --b) length = (length << 8) | e820[20 * i + 8 + static_cast<size_t>(b)];
    for (int b = 3; b >= 0; --b) type = (type << 8) | e820[20 * i + 16 + static_cast<size_t>(b)];
    EXPECT_EQ(base, map[i].base) << i;
    EXPECT_EQ(length, map[i].length) << i;
    EXPECT_EQ(type, map[i].type) << i;
  }
  EXPECT_EQ(map[0].base, 0u);
  EXPECT_EQ(map[0].length, 0xa0000u) << "640 KiB of low RAM";
}

TEST_F(PlatformTest, StateOfAnotherDeviceSetIsRefusedNamingItAndChangesNothing) {
  PlatformDevices without_net(mem, clock, ic, env, PlatformConfig{});
  const std::vector<uint8_t> theirs = SaveToBytes(without_net);
  InitPic();
  Out(platform::kCom1Base + 7, 0x42);
  const std::vector<uint8_t> ours = SaveToBytes(devices);
  try {
    LoadFromBytes(devices, theirs);
    FAIL() << "a snapshot without virtio-net loaded into a machine with it";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("only in this machine: virtio-net"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(SaveToBytes(devices), ours);
  EXPECT_EQ(In(platform::kCom1Base + 7), 0x42);
  EXPECT_THROW(LoadFromBytes(without_net, ours), StateError);
}

TEST_F(PlatformTest, PlatformStateVersion1IsRefused) {
  StateWriter w;
  w.Begin("PLAT", 1);
  w.U8(1);
  w.U8(0);
  w.U8(1);
  const std::vector<uint8_t> ours = SaveToBytes(devices);
  EXPECT_THROW(LoadFromBytes(devices, w.bytes()), StateError);
  EXPECT_EQ(SaveToBytes(devices), ours);
}

}  // namespace
}  // namespace vmrr
