// The ACPI tables: every pointer, length and checksum by the ACPI 6.0 rules, the AML bytes of
// a small DSDT written out by hand from the spec's grammar, and iasl (ACPICA, an independent
// parser) disassembling every table without an error or a warning.
#include "hv-hooks/machine/acpi.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "logformat/byte_order.h"

namespace vmrr {
namespace {

AcpiLayout TestLayout() {
  AcpiLayout l;
  l.base = 0xe0000;
  l.lapic_base = 0xfee00000;
  l.ioapic_base = 0xfec00000;
  l.ioapic_id = 0;
  l.overrides = {{0, 2, 0}, {5, 5, kIntiActiveHighLevel}};
  l.virtio = {{0xfeb00000, 0x200, 5}, {0xfeb00200, 0x200, 6}, {0xfeb00400, 0x200, 7}};
  l.isa = {{"COM1", "PNP0501", 0x3f8, 8, 4}, {"RTC_", "PNP0B00", 0x70, 2, 8}};
  l.sleep_control_port = 0x600;
  l.sleep_status_port = 0x601;
  l.reset_port = 0x602;
  l.reset_value = 0x0f;
  l.s5_sleep_type = 5;
  l.fw_cfg_port = 0x510;
  l.fw_cfg_port_count = 12;
  return l;
}

const AcpiTables::Entry& Find(const AcpiTables& t, const std::string& sig) {
  for (const auto& e : t.tables) {
    if (e.signature == sig) return e;
  }
  ADD_FAILURE() << "no table " << sig;
  static const AcpiTables::Entry none;
  return none;
}

TEST(Acpi, PointersLengthsAndChecksums) {
  const AcpiLayout l = TestLayout();
  const AcpiTables t = BuildAcpiTables(l);
  const uint8_t* b = t.bytes.data();
  ASSERT_EQ(t.tables.size(), 6u);
  // RSDP: signature, both checksums, revision 2, length 36, RSDT and XSDT addresses.
  ASSERT_GE(t.bytes.size(), 36u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b), 8), "RSD PTR ");
  EXPECT_EQ(AcpiChecksum(b, 20), 0);
  EXPECT_EQ(AcpiChecksum(b, 36), 0);
  EXPECT_EQ(b[15], 2);
  EXPECT_EQ(LoadLe32(b + 20), 36u);
  EXPECT_EQ(LoadLe32(b + 16), l.base + Find(t, "RSDT").offset);
  EXPECT_EQ(LoadLe64(b + 24), l.base + Find(t, "XSDT").offset);
  for (const auto& e : t.tables) {
    SCOPED_TRACE(e.signature);
    ASSERT_LE(e.offset + e.length, t.bytes.size());
    EXPECT_EQ(e.offset % 16, 0u);
    if (e.signature == "RSD PTR ") continue;
    const uint8_t* p = b + e.offset;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(p), 4), e.signature);
    EXPECT_EQ(LoadLe32(p + 4), e.length);
    EXPECT_EQ(AcpiChecksum(p, e.length), 0);
  }
  // XSDT lists FACP then APIC; RSDT the same in 32 bits.
  const uint8_t* x = b + Find(t, "XSDT").offset;
  ASSERT_EQ(LoadLe32(x + 4), 36u + 16u);
  EXPECT_EQ(LoadLe64(x + 36), l.base + Find(t, "FACP").offset);
  EXPECT_EQ(LoadLe64(x + 44), l.base + Find(t, "APIC").offset);
  const uint8_t* r = b + Find(t, "RSDT").offset;
  EXPECT_EQ(LoadLe32(r + 36), l.base + Find(t, "FACP").offset);
  EXPECT_EQ(LoadLe32(r + 40), l.base + Find(t, "APIC").offset);
}

TEST(Acpi, FadtIsHardwareReducedWithSleepAndResetRegisters) {
  const AcpiLayout l = TestLayout();
  const AcpiTables t = BuildAcpiTables(l);
  const uint8_t* f = t.bytes.data() + Find(t, "FACP").offset;
  ASSERT_EQ(LoadLe32(f + 4), 276u);
  EXPECT_EQ(f[8], 6);                             // revision 6 (ACPI 6.0)
  EXPECT_EQ(LoadLe32(f + 36), 0u);                // no FACS
  EXPECT_EQ(LoadLe32(f + 40), 0u);                // DSDT only through X_DSDT
  EXPECT_EQ(LoadLe64(f + 132), 0u);               // X_FIRMWARE_CTRL
  EXPECT_EQ(LoadLe64(f + 140), l.base + Find(t, "DSDT").offset);
  const uint32_t flags = LoadLe32(f + 112);
  EXPECT_TRUE(flags & (1u << 20));                // HW_REDUCED_ACPI
  EXPECT_TRUE(flags & (1u << 10));                // RESET_REG_SUP
  EXPECT_EQ(LoadLe16(f + 109) & 0x2, 0);          // no 8042
  EXPECT_EQ(LoadLe16(f + 109) & 0x20, 0);         // the CMOS RTC is present
  // RESET_REG: system I/O, 8 bits, byte access, the port; RESET_VALUE.
  EXPECT_EQ(f[116], 1);
  EXPECT_EQ(f[117], 8);
  EXPECT_EQ(f[119], 1);
  EXPECT_EQ(LoadLe64(f + 120), 0x602u);
  EXPECT_EQ(f[128], 0x0f);
  EXPECT_EQ(f[244], 1);
  EXPECT_EQ(LoadLe64(f + 248), 0x600u);           // SLEEP_CONTROL_REG
  EXPECT_EQ(LoadLe64(f + 260), 0x601u);           // SLEEP_STATUS_REG
}

TEST(Acpi, MadtEntries) {
  const AcpiLayout l = TestLayout();
  const AcpiTables t = BuildAcpiTables(l);
  const auto& e = Find(t, "APIC");
  const uint8_t* m = t.bytes.data() + e.offset;
  EXPECT_EQ(LoadLe32(m + 36), 0xfee00000u);
  EXPECT_EQ(LoadLe32(m + 40), 1u);  // PCAT_COMPAT
  // Walk the entries: each is {type, length, ...}; lengths must tile the table exactly.
  std::vector<uint8_t> types;
  uint64_t at = 44;
  while (at < e.length) {
    ASSERT_GE(m[at + 1], 2);
    types.push_back(m[at]);
    if (m[at] == 0) {  // local APIC: UID 0, ID 0, enabled
      EXPECT_EQ(m[at + 3], 0);
      EXPECT_EQ(LoadLe32(m + at + 4), 1u);
    } else if (m[at] == 1) {
      EXPECT_EQ(LoadLe32(m + at + 4), 0xfec00000u);
      EXPECT_EQ(LoadLe32(m + at + 8), 0u);
    }
    at += m[at + 1];
  }
  EXPECT_EQ(at, e.length);
  EXPECT_EQ(types, (std::vector<uint8_t>{0, 1, 2, 2, 4}));
  // The second override: IRQ 5 -> GSI 5, level, active high.
  const uint8_t* iso = m + 44 + 8 + 12 + 10;
  EXPECT_EQ(iso[3], 5);
  EXPECT_EQ(LoadLe32(iso + 4), 5u);
  EXPECT_EQ(LoadLe16(iso + 8), 0x000du);
}

// The DSDT of a layout with one virtio device, byte for byte from the AML grammar (ACPI 6.0
// 20.2 and the resource descriptors of 6.4): written out by hand here, not by the builder.
TEST(Acpi, DsdtAmlBytes) {
  AcpiLayout l;
  l.base = 0x1000;
  l.virtio = {{0xfeb00000, 0x200, 16}};
  l.s5_sleep_type = 5;
  const AcpiTables t = BuildAcpiTables(l);
  const auto& e = Find(t, "DSDT");
  const std::vector<uint8_t> body(t.bytes.begin() + static_cast<long>(e.offset) + 36,
                                  t.bytes.begin() + static_cast<long>(e.offset + e.length));
  const std::vector<uint8_t> crs = {
      0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xb0, 0xfe, 0x00, 0x02, 0x00, 0x00,  // Memory32Fixed
      0x89, 0x06, 0x00, 0x01, 0x01, 0x10, 0x00, 0x00, 0x00,                    // Interrupt {16}
      0x79, 0x00};                                                             // EndTag
  std::vector<uint8_t> dev = {'V', 'R', '0', '0',
                              0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0',
                              '5', 0x00,
                              0x08, '_', 'U', 'I', 'D', 0x00,
                              0x08, '_', 'C', 'R', 'S', 0x11, 0x1a, 0x0a, 0x17};
  dev.insert(dev.end(), crs.begin(), crs.end());
  ASSERT_EQ(dev.size(), 4u + 15u + 6u + 32u);
  // Scope (\_SB): 65 body bytes need a 2-byte PkgLength (67 = 0x43: 0x40 | 0x3, 0x04).
  // Device: 57 body bytes, PkgLength 58 in one byte.
  std::vector<uint8_t> want = {0x10, 0x43, 0x04, 0x5c, '_', 'S', 'B', '_',
                               0x5b, 0x82, 0x3a};
  want.insert(want.end(), dev.begin(), dev.end());
  const std::vector<uint8_t> s5 = {0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
                                   0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00};
  want.insert(want.end(), s5.begin(), s5.end());
  EXPECT_EQ(body, want);
}

// An ISA device node, byte for byte: EisaId("PNP0501") is 0x41D0 (P=16, N=14, P=16 in 5-bit
// letters) then 0x0501; IO (Decode16, 0x3F8, 0x3F8, 0, 8) and IRQNoFlags () {4}.
TEST(Acpi, IsaDeviceAmlBytes) {
  AcpiLayout l;
  l.base = 0x1000;
  l.isa = {{"COM1", "PNP0501", 0x3f8, 8, 4}};
  const AcpiTables t = BuildAcpiTables(l);
  const auto& e = Find(t, "DSDT");
  const std::vector<uint8_t> body(t.bytes.begin() + static_cast<long>(e.offset) + 36,
                                  t.bytes.begin() + static_cast<long>(e.offset) + 36 + 8 + 45);
  const std::vector<uint8_t> want = {
      0x10, 0x33, 0x5c, '_', 'S', 'B', '_',                      // Scope, PkgLength 51
      0x5b, 0x82, 0x2b, 'C', 'O', 'M', '1',                      // Device, PkgLength 43
      0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01,    // Name (_HID, EisaId)
      0x08, '_', 'U', 'I', 'D', 0x00,                            // Name (_UID, Zero)
      0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d,          // Name (_CRS, Buffer (13))
      0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08,            // IO
      0x22, 0x10, 0x00,                                          // IRQNoFlags {4}
      0x79, 0x00};                                               // EndTag
  EXPECT_EQ(std::vector<uint8_t>(body.begin(), body.begin() + static_cast<long>(want.size())), want);
}

// The fw_cfg node as QEMU's fw_cfg_add_acpi_dsdt writes it (with DMA: 12 ports), byte for
// byte: Name (_HID, "QEMU0002"), Name (_STA, 0x0B), IO (Decode16, 0x510, 0x510, 1, 12).
TEST(Acpi, FwCfgNodeAmlBytes) {
  AcpiLayout l;
  l.base = 0x1000;
  l.fw_cfg_port = 0x510;
  l.fw_cfg_port_count = 12;
  const AcpiTables t = BuildAcpiTables(l);
  const auto& e = Find(t, "DSDT");
  const std::vector<uint8_t> want = {
      0x10, 0x36, 0x5c, '_', 'S', 'B', '_',                                    // Scope, 54
      0x5b, 0x82, 0x2e, 'F', 'W', 'C', 'F',                                    // Device, 46
      0x08, '_', 'H', 'I', 'D', 0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '2', 0x00,
      0x08, '_', 'S', 'T', 'A', 0x0a, 0x0b,                                    // _STA 0x0B
      0x08, '_', 'C', 'R', 'S', 0x11, 0x0d, 0x0a, 0x0a,                        // Buffer (10)
      0x47, 0x01, 0x10, 0x05, 0x10, 0x05, 0x01, 0x0c,                          // IO
      0x79, 0x00};                                                             // EndTag
  ASSERT_GE(e.length, 36 + want.size());
  const std::vector<uint8_t> body(t.bytes.begin() + static_cast<long>(e.offset) + 36,
                                  t.bytes.begin() + static_cast<long>(e.offset + 36 + want.size()));
  EXPECT_EQ(body, want);
}

TEST(Acpi, LongPackagesUseMultiBytePkgLength) {
  AcpiLayout l = TestLayout();
  l.virtio.clear();
  for (uint32_t i = 0; i < 40; ++i) l.virtio.push_back({0xd0000000 + i * 0x200, 0x200, 16 + i % 8});
  const AcpiTables t = BuildAcpiTables(l);
  const auto& e = Find(t, "DSDT");
  const uint8_t* d = t.bytes.data() + e.offset + 36;
  ASSERT_EQ(d[0], 0x10);  // ScopeOp
  const unsigned follow = d[1] >> 6;
  ASSERT_GE(follow, 1u);  // 40 devices of 59 bytes need a multi-byte PkgLength
  uint64_t len = d[1] & 0xf;
  for (unsigned i = 0; i < follow; ++i) len |= uint64_t{d[2 + i]} << (4 + 8 * i);
  // The scope spans from its PkgLength to just before Name (\_S5): 15 bytes at the end.
  EXPECT_EQ(1 + len + 15, e.length - 36);
}

TEST(Acpi, RefusesBadLayouts) {
  AcpiLayout l = TestLayout();
  l.base = 0xe0008;
  EXPECT_THROW(BuildAcpiTables(l), std::invalid_argument);
  l.base = uint64_t{1} << 32;
  EXPECT_THROW(BuildAcpiTables(l), std::invalid_argument);
  l = TestLayout();
  l.virtio.resize(65);
  EXPECT_THROW(BuildAcpiTables(l), std::invalid_argument);
  for (const AcpiLayout::IsaDevice& bad :
       {AcpiLayout::IsaDevice{"COM", "PNP0501", 0x3f8, 8, 4}, {"1COM", "PNP0501", 0x3f8, 8, 4},
        {"CoM1", "PNP0501", 0x3f8, 8, 4}, {"COM1", "PNP050", 0x3f8, 8, 4},
        {"COM1", "pNP0501", 0x3f8, 8, 4}, {"COM1", "PNP05G1", 0x3f8, 8, 4},
        {"COM1", "PNP0501", 0x3f8, 8, 16}}) {
    l = TestLayout();
    l.isa = {bad};
    EXPECT_THROW(BuildAcpiTables(l), std::invalid_argument) << bad.name << " " << bad.eisa_id;
  }
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ACPICA's disassembler reads each table as firmware would hand it to an OS; any error or
// warning it reports is a defect in the tables.
TEST(Acpi, IaslDisassemblesEveryTableCleanly) {
  ASSERT_EQ(std::system("command -v iasl >/dev/null 2>&1"), 0)
      << "iasl is missing: install acpica-tools (.ci/setup does)";
  const AcpiTables t = BuildAcpiTables(TestLayout());
  const auto dir = std::filesystem::temp_directory_path() /
                   ("vmrr-acpi-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const auto& e : t.tables) {
    SCOPED_TRACE(e.signature);
    // iasl (20200925) refuses a lone RSDP file ("does not contain a valid ACPI table"): the
    // RSDP is checked field by field in PointersLengthsAndChecksums instead.
    if (e.signature == "RSD PTR ") continue;
    const std::string& name = e.signature;
    const auto bin = dir / (name + ".dat");
    {
      std::ofstream out(bin, std::ios::binary);
      out.write(reinterpret_cast<const char*>(t.bytes.data() + e.offset),
                static_cast<std::streamsize>(e.length));
    }
    const auto log = dir / (name + ".log");
    const std::string cmd = "cd '" + dir.string() + "' && iasl -d '" + bin.string() + "' > '" +
                            log.string() + "' 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadFile(log);
    const std::string out = ReadFile(log);
    EXPECT_EQ(out.find("Warning"), std::string::npos) << out;
    EXPECT_EQ(out.find("Error"), std::string::npos) << out;
    EXPECT_EQ(out.find("Remark"), std::string::npos) << out;
    const std::string dsl = ReadFile(dir / (name + ".dsl"));
    EXPECT_FALSE(dsl.empty());
    if (e.signature == "DSDT") {
      EXPECT_NE(dsl.find("Name (_HID, \"LNRO0005\")"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("0xFEB00400,         // Address Base"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive, ,, )"),
                std::string::npos) << dsl;
      EXPECT_NE(dsl.find("Name (\\_S5, Package (0x04)"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("Name (_HID, EisaId (\"PNP0501\")"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("Name (_HID, EisaId (\"PNP0B00\")"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("IRQNoFlags ()\n                    {4}"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("Device (FWCF)"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("Name (_HID, \"QEMU0002\")"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("Name (_STA, 0x0B)"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("IO (Decode16,\n                    0x0510,"), std::string::npos) << dsl;
    }
    if (e.signature == "FACP") {
      EXPECT_NE(dsl.find("Hardware Reduced (V5) : 1"), std::string::npos) << dsl;
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vmrr
