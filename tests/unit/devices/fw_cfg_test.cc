// Tests of FwCfg against QEMU's docs/specs/fw_cfg.rst: the selector and data ports, sequential
// reads and the end of an item, unknown keys, the file directory, the DMA interface, saved
// state. Expected bytes are written out from the specification, never read back from the
// device under test.
#include "hv-hooks/devices/fw_cfg.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "hv-hooks/machine/platform_layout.h"
#include "hv-hooks/substrate/bus.h"
#include "test_support.h"

namespace vmrr {
namespace {

constexpr uint16_t kSel = platform::kFwCfgBase, kData = platform::kFwCfgBase + 1,
                   kDmaHigh = platform::kFwCfgBase + 4, kDmaLow = platform::kFwCfgBase + 8;

class FwCfgTest : public ::testing::Test {
 protected:
  FwCfgTest()
      : mem(1 << 20),
        dev(mem,
            {{FwCfg::kRamSize, {0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00}},  // 128 MiB
             {FwCfg::kNbCpus, {0x01, 0x00}},
             {static_cast<uint16_t>(FwCfg::kArchLocal | 2), {0xaa}}},
            {{"opt/zz", {'z', 'z', 'z'}}, {"etc/boot-fail-wait", {0xff, 0xff, 0xff, 0xff}}}) {
    bus.Insert(dev, platform::kFwCfgBase, platform::kFwCfgPortCount);
  }
  void Select(uint16_t key) { bus.Write(kSel, 2, key); }
  std::vector<uint8_t> ReadData(size_t n) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(bus.Read(kData, 1)));
    return out;
  }
  // Writes the DMA address as a guest does on x86 (Linux: iowrite32be of each half).
  void StartDma(uint64_t access) {
    auto be32 = [](uint32_t v) {
      return uint64_t{(v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24)};
    };
    bus.Write(kDmaHigh, 4, be32(static_cast<uint32_t>(access >> 32)));
    bus.Write(kDmaLow, 4, be32(static_cast<uint32_t>(access)));
  }
  void PutBe(uint64_t gpa, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      uint8_t b = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
      mem.Write(gpa + i, &b, 1);
    }
  }
  void PutAccess(uint64_t gpa, uint32_t control, uint32_t length, uint64_t address) {
    PutBe(gpa, control, 4);
    PutBe(gpa + 4, length, 4);
    PutBe(gpa + 8, address, 8);
  }
  std::vector<uint8_t> Mem(uint64_t gpa, size_t n) {
    std::vector<uint8_t> out(n);
    EXPECT_TRUE(mem.Read(gpa, out.data(), n));
    return out;
  }
  uint32_t ControlAt(uint64_t gpa) {
    const std::vector<uint8_t> b = Mem(gpa, 4);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  }

  GuestMemory mem;
  FwCfg dev;
  PortBus bus;
};

TEST_F(FwCfgTest, SignatureThenZerosPastTheEnd) {
  EXPECT_EQ(dev.selector(), FwCfg::kSignature) << "reset selects the signature, as QEMU's";
  EXPECT_EQ(ReadData(4), (std::vector<uint8_t>{'Q', 'E', 'M', 'U'}));
  EXPECT_EQ(ReadData(3), (std::vector<uint8_t>{0, 0, 0})) << "past the end reads 0";
  EXPECT_EQ(dev.data_offset(), 4u) << "the offset stops at the end";
  Select(FwCfg::kSignature);
  EXPECT_EQ(ReadData(2), (std::vector<uint8_t>{'Q', 'E'})) << "selecting rewinds";
  Select(FwCfg::kSignature);
  EXPECT_EQ(ReadData(1), (std::vector<uint8_t>{'Q'}));
}

TEST_F(FwCfgTest, IdAdvertisesTraditionalAndDma) {
  Select(FwCfg::kId);
  EXPECT_EQ(ReadData(4), (std::vector<uint8_t>{0x03, 0x00, 0x00, 0x00}));
}

TEST_F(FwCfgTest, ItemsAreLittleEndianAsGiven) {
  Select(FwCfg::kRamSize);
  EXPECT_EQ(ReadData(9), (std::vector<uint8_t>{0x00, 0x00, 0x00, 0x08, 0, 0, 0, 0, 0}));
  Select(FwCfg::kNbCpus);
  EXPECT_EQ(ReadData(2), (std::vector<uint8_t>{0x01, 0x00}));
  Select(FwCfg::kArchLocal | 2);
  EXPECT_EQ(ReadData(2), (std::vector<uint8_t>{0xaa, 0x00}));
}

TEST_F(FwCfgTest, UnknownKeysReadZero) {
  for (uint16_t key : {uint16_t{0x0004}, uint16_t{0x0018}, uint16_t{0x0022}, uint16_t{0x003f},
                       uint16_t{0x0040}, uint16_t{0x1234}, uint16_t{0x3fff}, uint16_t{0x8000},
                       uint16_t{0x8003}, uint16_t{0xbfff}, uint16_t{0xffff}}) {
    Select(key);
    EXPECT_EQ(ReadData(5), std::vector<uint8_t>(5, 0)) << std::hex << key;
  }
}

TEST_F(FwCfgTest, WriteChannelBitReadsTheSameItem) {
  Select(FwCfg::kWriteChannel | FwCfg::kSignature);
  EXPECT_EQ(ReadData(4), (std::vector<uint8_t>{'Q', 'E', 'M', 'U'}));
  Select(0xc002);  // arch-local item 2 through the write channel
  EXPECT_EQ(ReadData(1), (std::vector<uint8_t>{0xaa}));
}

TEST_F(FwCfgTest, PortWidthsAsQemu) {
  // An 8-bit read of the selector port reads data too (one 2-port region in QEMU).
  EXPECT_EQ(bus.Read(kSel, 1), 'Q');
  EXPECT_EQ(bus.Read(kData, 1), 'E');
  // Byte writes are data writes, ignored: they neither select nor move the offset.
  bus.Write(kSel, 1, FwCfg::kId);
  bus.Write(kData, 1, 0x55);
  EXPECT_EQ(dev.selector(), FwCfg::kSignature);
  EXPECT_EQ(bus.Read(kData, 1), 'M');
  // Wider reads are not part of the interface: all-ones, and the offset does not move.
  EXPECT_EQ(bus.Read(kSel, 2), 0xffffu);
  EXPECT_EQ(bus.Read(kData, 1), 'U');
  // A 32-bit write to the selector is not a selection.
  bus.Write(kSel, 4, FwCfg::kId);
  EXPECT_EQ(dev.selector(), FwCfg::kSignature);
  // 0x512/0x513 hold nothing.
  EXPECT_EQ(bus.Read(kSel + 2, 1), 0xffu);
}

TEST_F(FwCfgTest, FileDirectorySortedByNameBigEndian) {
  Select(FwCfg::kFileDir);
  const std::vector<uint8_t> dir = ReadData(4 + 32 * 64);
  EXPECT_EQ(std::vector<uint8_t>(dir.begin(), dir.begin() + 4), (std::vector<uint8_t>{0, 0, 0, 2}));
  auto entry = [&](size_t i) { return std::vector<uint8_t>(dir.begin() + 4 + 64 * i, dir.begin() + 4 + 64 * (i + 1)); };
  std::vector<uint8_t> e0 = {0, 0, 0, 4, 0x00, 0x20, 0, 0};
  const std::string n0 = "etc/boot-fail-wait";
  e0.insert(e0.end(), n0.begin(), n0.end());
  e0.resize(64, 0);
  std::vector<uint8_t> e1 = {0, 0, 0, 3, 0x00, 0x21, 0, 0, 'o', 'p', 't', '/', 'z', 'z'};
  e1.resize(64, 0);
  EXPECT_EQ(entry(0), e0);
  EXPECT_EQ(entry(1), e1);
  EXPECT_EQ(entry(2), std::vector<uint8_t>(64, 0)) << "unused slots are zero";
  EXPECT_EQ(ReadData(1), std::vector<uint8_t>{0}) << "the directory holds 32 slots";
  Select(0x21);
  EXPECT_EQ(ReadData(4), (std::vector<uint8_t>{'z', 'z', 'z', 0}));
  Select(0x20);
  EXPECT_EQ(ReadData(4), (std::vector<uint8_t>{0xff, 0xff, 0xff, 0xff}));
}

TEST_F(FwCfgTest, DmaRegisterReadsSignature) {
  const std::string sig = "QEMU CFG";
  for (unsigned i = 0; i < 8; ++i) EXPECT_EQ(bus.Read(kDmaHigh + i, 1), uint8_t(sig[i])) << i;
  // A 32-bit IN returns the bytes in port order, as memory would hold them.
  EXPECT_EQ(bus.Read(kDmaHigh, 4), 0x554d4551u);
  EXPECT_EQ(bus.Read(kDmaLow, 4), 0x47464320u);
}

TEST_F(FwCfgTest, DmaSelectAndReadFillsZerosPastTheEnd) {
  std::vector<uint8_t> ones(8, 0x77);
  mem.Write(0x2000, ones.data(), ones.size());
  PutAccess(0x1000, (uint32_t{FwCfg::kSignature} << 16) | FwCfg::kDmaSelect | FwCfg::kDmaRead, 6, 0x2000);
  Select(FwCfg::kId);
  StartDma(0x1000);
  EXPECT_EQ(ControlAt(0x1000), 0u) << "control 0: done without error";
  EXPECT_EQ(Mem(0x2000, 8), (std::vector<uint8_t>{'Q', 'E', 'M', 'U', 0, 0, 0x77, 0x77}));
  EXPECT_EQ(dev.selector(), FwCfg::kSignature);
  EXPECT_EQ(dev.data_offset(), 4u);
}

TEST_F(FwCfgTest, DmaSkipThenPortRead) {
  PutAccess(0x1000, (uint32_t{0x21} << 16) | FwCfg::kDmaSelect | FwCfg::kDmaSkip, 2, 0);
  StartDma(0x1000);
  EXPECT_EQ(ControlAt(0x1000), 0u);
  EXPECT_EQ(ReadData(2), (std::vector<uint8_t>{'z', 0}));
  // Without select, the current item continues: a read from where the port left off.
  Select(FwCfg::kSignature);
  ReadData(1);
  PutAccess(0x1000, FwCfg::kDmaRead, 2, 0x3000);
  StartDma(0x1000);
  EXPECT_EQ(Mem(0x3000, 2), (std::vector<uint8_t>{'E', 'M'}));
}

TEST_F(FwCfgTest, DmaErrors) {
  // Every item is read-only: a write fails.
  PutAccess(0x1000, (uint32_t{FwCfg::kNbCpus} << 16) | FwCfg::kDmaSelect | FwCfg::kDmaWrite, 2, 0x2000);
  StartDma(0x1000);
  EXPECT_EQ(ControlAt(0x1000), FwCfg::kDmaError);
  // A read into memory outside RAM fails and writes nothing.
  PutAccess(0x1000, (uint32_t{FwCfg::kSignature} << 16) | FwCfg::kDmaSelect | FwCfg::kDmaRead, 4, 0xfffff);
  StartDma(0x1000);
  EXPECT_EQ(ControlAt(0x1000), FwCfg::kDmaError);
  // Past the end, zeros to outside RAM: the same.
  PutAccess(0x1000, FwCfg::kDmaRead, 0x100000, 0x1000);
  StartDma(0x1000);
  EXPECT_EQ(ControlAt(0x1000), FwCfg::kDmaError);
  // An access structure outside RAM is ignored, and the device keeps working.
  StartDma(0x7fff0000);
  StartDma(uint64_t{1} << 40);
  StartDma(0xffff8);  // straddles the end of RAM
  Select(FwCfg::kSignature);
  EXPECT_EQ(ReadData(1), std::vector<uint8_t>{'Q'});
  // No operation bit: nothing moves, control cleared.
  PutAccess(0x1000, 0, 4, 0x2000);
  StartDma(0x1000);
  EXPECT_EQ(ControlAt(0x1000), 0u);
  EXPECT_EQ(dev.data_offset(), 1u);
}

TEST_F(FwCfgTest, DmaLowHalfAloneUsesAZeroHighHalf) {
  // The address register is 0 after each operation: one 32-bit write suffices.
  bus.Write(kDmaHigh, 4, 0x01000000);  // high half 1: would be 4 GiB up
  PutAccess(0x1000, FwCfg::kDmaSelect | FwCfg::kDmaRead, 1, 0x2000);
  bus.Write(kDmaLow, 4, 0x00100000);  // 0x1000 big-endian
  // The access lies above 4 GiB, outside RAM: nothing happened at 0x1000.
  EXPECT_EQ(ControlAt(0x1000), FwCfg::kDmaSelect | FwCfg::kDmaRead);
  bus.Write(kDmaLow, 4, 0x00100000);
  EXPECT_EQ(ControlAt(0x1000), 0u);
  EXPECT_EQ(Mem(0x2000, 1), std::vector<uint8_t>{'Q'});
}

TEST_F(FwCfgTest, SaveMutateRestore) {
  test::ExpectSaveMutateRestore(dev, [&] {
    Select(0x20);
    ReadData(3);
    bus.Write(kDmaHigh, 4, 0x78563412);
  });
  EXPECT_EQ(dev.selector(), FwCfg::kSignature);
  EXPECT_EQ(dev.data_offset(), 0u);
  // The restored state carries on: a selected file at offset 3 reads its 4th byte next.
  Select(0x20);
  ReadData(3);
  const std::vector<uint8_t> saved = SaveToBytes(dev);
  Select(FwCfg::kSignature);
  LoadFromBytes(dev, saved);
  EXPECT_EQ(ReadData(2), (std::vector<uint8_t>{0xff, 0}));
}

TEST_F(FwCfgTest, LoadRefusesAnOffsetPastTheItem) {
  Select(FwCfg::kSignature);
  std::vector<uint8_t> saved = SaveToBytes(dev);
  // Section header: "FWCF", version (4 bytes), then selector (2), offset (4).
  const size_t at = saved.size() - 12;
  saved[at] = 5;  // offset 5 into the 4-byte signature
  EXPECT_THROW(LoadFromBytes(dev, saved), StateError);
  saved[at] = 4;
  EXPECT_NO_THROW(LoadFromBytes(dev, saved));
  EXPECT_EQ(dev.data_offset(), 4u);
}

TEST(FwCfg, RefusesItemsItCannotHold) {
  GuestMemory mem(1 << 16);
  using Items = std::map<uint16_t, std::vector<uint8_t>>;
  EXPECT_THROW(FwCfg(mem, Items{{FwCfg::kSignature, {1}}}, {}), std::invalid_argument);
  EXPECT_THROW(FwCfg(mem, Items{{FwCfg::kFileDir, {1}}}, {}), std::invalid_argument);
  EXPECT_THROW(FwCfg(mem, Items{{0x0020, {1}}}, {}), std::invalid_argument);
  EXPECT_THROW(FwCfg(mem, Items{{0x4003, {1}}}, {}), std::invalid_argument);
  EXPECT_THROW(FwCfg(mem, {}, {{"a", {}}, {"a", {}}}), std::invalid_argument);
  EXPECT_THROW(FwCfg(mem, {}, {{"", {}}}), std::invalid_argument);
  EXPECT_THROW(FwCfg(mem, {}, {{std::string(56, 'x'), {}}}), std::invalid_argument);
  EXPECT_NO_THROW(FwCfg(mem, {}, {{std::string(55, 'x'), {}}}));
  std::vector<FwCfg::File> many;
  for (int i = 0; i < 33; ++i) many.push_back({"f" + std::to_string(i), {}});
  EXPECT_THROW(FwCfg(mem, {}, many), std::invalid_argument);
  many.pop_back();
  EXPECT_NO_THROW(FwCfg(mem, {}, many));
}

}  // namespace
}  // namespace vmrr
