// ACPI table generation (ACPI 6.0 specification: 5.2 tables, 20 AML encoding, 6.4 resource
// descriptors).
#include "hv-hooks/machine/acpi.h"

#include <cstring>
#include <stdexcept>

#include "logformat/byte_order.h"

namespace vmrr {

namespace {

using Bytes = std::vector<uint8_t>;

void Append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }
void AppendText(Bytes& out, const char* text, size_t n) {
  out.insert(out.end(), text, text + n);
}

// ---- table headers ---------------------------------------------------------------------

constexpr size_t kHeaderSize = 36;

// The common description header (5.2.6) with a zero length and checksum, fixed up by Finish.
Bytes Header(const char signature[4], uint8_t revision, const char oem_table_id[8]) {
  Bytes t;
  AppendText(t, signature, 4);
  AppendLe(t, 0, 4);  // length
  t.push_back(revision);
  t.push_back(0);  // checksum
  AppendText(t, "VMRR  ", 6);
  AppendText(t, oem_table_id, 8);
  AppendLe(t, 1, 4);  // OEM revision
  AppendText(t, "VMRR", 4);
  AppendLe(t, 1, 4);  // creator revision
  return t;
}

void Finish(Bytes& t) {
  StoreLe(t.data() + 4, t.size(), 4);
  t[9] = 0;
  t[9] = static_cast<uint8_t>(-AcpiChecksum(t.data(), t.size()));
}

// Generic Address Structure (5.2.3.2): one byte-wide register in system I/O space.
void AppendIoGas(Bytes& t, uint16_t port) {
  t.push_back(port ? 1 : 0);  // address space: system I/O
  t.push_back(port ? 8 : 0);  // register bit width
  t.push_back(0);             // bit offset
  t.push_back(port ? 1 : 0);  // access size: byte
  AppendLe(t, port, 8);
}

// ---- AML (20.2) ------------------------------------------------------------------------

constexpr uint8_t kNameOp = 0x08, kScopeOp = 0x10, kBufferOp = 0x11, kPackageOp = 0x12,
                  kStringPrefix = 0x0d, kBytePrefix = 0x0a, kWordPrefix = 0x0b,
                  kDWordPrefix = 0x0c, kExtOpPrefix = 0x5b, kDeviceOp = 0x82,
                  kRootChar = 0x5c;

// PkgLength (20.2.4) for a body of `body` bytes: the encoded length counts its own bytes.
Bytes PkgLength(size_t body) {
  for (size_t n = 1; n <= 4; ++n) {
    const size_t total = body + n;
    if (n == 1 && total < 0x40) return {static_cast<uint8_t>(total)};
    if (n > 1 && total < (size_t{1} << (4 + 8 * (n - 1)))) {
      Bytes b{static_cast<uint8_t>(((n - 1) << 6) | (total & 0xf))};
      for (size_t i = 1; i < n; ++i) b.push_back(static_cast<uint8_t>(total >> (4 + 8 * (i - 1))));
      return b;
    }
  }
  throw std::invalid_argument("ACPI: AML package too large");
}

// op [ext] PkgLength body
Bytes Package(std::initializer_list<uint8_t> op, const Bytes& body) {
  Bytes out(op);
  Append(out, PkgLength(body.size()));
  Append(out, body);
  return out;
}

Bytes NameSeg(const char* seg) {
  Bytes b;
  AppendText(b, seg, 4);
  return b;
}

Bytes Integer(uint64_t v) {
  if (v == 0) return {0x00};
  if (v == 1) return {0x01};
  Bytes b;
  if (v <= 0xff) {
    b.push_back(kBytePrefix);
    AppendLe(b, v, 1);
  } else if (v <= 0xffff) {
    b.push_back(kWordPrefix);
    AppendLe(b, v, 2);
  } else {
    b.push_back(kDWordPrefix);
    AppendLe(b, v, 4);
  }
  return b;
}

Bytes String(const char* s) {
  Bytes b{kStringPrefix};
  AppendText(b, s, std::strlen(s));
  b.push_back(0);
  return b;
}

Bytes Name(const Bytes& name, const Bytes& value) {
  Bytes b{kNameOp};
  Append(b, name);
  Append(b, value);
  return b;
}

Bytes Buffer(const Bytes& data) {
  Bytes body = Integer(data.size());
  Append(body, data);
  return Package({kBufferOp}, body);
}

// _CRS of a virtio-mmio transport: Memory32Fixed(ReadWrite, base, size) and
// Interrupt(ResourceConsumer, Level, ActiveHigh, Exclusive) {gsi}, then the end tag.
Bytes VirtioResources(const AcpiLayout::VirtioMmio& v) {
  Bytes r{0x86, 0x09, 0x00, 0x01};  // 32-bit fixed memory range descriptor, read-write
  AppendLe(r, v.base, 4);
  AppendLe(r, v.size, 4);
  r.insert(r.end(), {0x89, 0x06, 0x00, 0x01, 0x01});  // extended interrupt: consumer, level,
  AppendLe(r, v.gsi, 4);                               // active high, exclusive; one GSI
  r.insert(r.end(), {0x79, 0x00});                     // end tag, checksum 0 ("valid")
  return r;
}

// _CRS of an ISA device: IO (Decode16, port, port, 0, count) and IRQNoFlags () {irq}.
Bytes IsaResources(const AcpiLayout::IsaDevice& d) {
  Bytes r{0x47, 0x01};  // I/O port descriptor, 16-bit decode
  AppendLe(r, d.port, 2);
  AppendLe(r, d.port, 2);
  r.push_back(0x00);  // alignment
  r.push_back(d.port_count);
  r.push_back(0x22);  // IRQ descriptor without flags (edge, active high, exclusive)
  AppendLe(r, 1u << d.irq, 2);
  r.insert(r.end(), {0x79, 0x00});
  return r;
}

// EisaId ("PNP0501") as the 32-bit integer AML stores (20.2.3: three 5-bit letters, then the
// four hex digits, most significant byte first in memory).
Bytes EisaId(const std::string& id) {
  auto letter = [&](char c) { return static_cast<unsigned>(c - '@'); };
  const unsigned v = (letter(id[0]) << 10) | (letter(id[1]) << 5) | letter(id[2]);
  auto hex = [&](char c) { return static_cast<unsigned>(c <= '9' ? c - '0' : c - 'A' + 10); };
  Bytes b{kDWordPrefix, static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v & 0xff),
          static_cast<uint8_t>((hex(id[3]) << 4) | hex(id[4])),
          static_cast<uint8_t>((hex(id[5]) << 4) | hex(id[6]))};
  return b;
}

bool ValidIsa(const AcpiLayout::IsaDevice& d) {
  if (d.name.size() != 4 || d.eisa_id.size() != 7 || d.irq > 15) return false;
  for (char c : d.name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  if (d.name[0] >= '0' && d.name[0] <= '9') return false;
  for (int i = 0; i < 3; ++i) {
    if (d.eisa_id[i] < 'A' || d.eisa_id[i] > 'Z') return false;
  }
  for (int i = 3; i < 7; ++i) {
    const char c = d.eisa_id[i];
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

constexpr char kHex[] = "0123456789ABCDEF";

Bytes BuildDsdt(const AcpiLayout& layout) {
  Bytes t = Header("DSDT", 2, "VMRRDSDT");
  Bytes sb_body{kRootChar};
  Append(sb_body, NameSeg("_SB_"));
  for (size_t i = 0; i < layout.virtio.size(); ++i) {
    const char name[5] = {'V', 'R', kHex[(i >> 4) & 0xf], kHex[i & 0xf], 0};
    Bytes dev = NameSeg(name);
    Append(dev, Name(NameSeg("_HID"), String("LNRO0005")));
    Append(dev, Name(NameSeg("_UID"), Integer(i)));
    Append(dev, Name(NameSeg("_CRS"), Buffer(VirtioResources(layout.virtio[i]))));
    Append(sb_body, Package({kExtOpPrefix, kDeviceOp}, dev));
  }
  for (size_t i = 0; i < layout.isa.size(); ++i) {
    const AcpiLayout::IsaDevice& d = layout.isa[i];
    Bytes dev = NameSeg(d.name.c_str());
    Append(dev, Name(NameSeg("_HID"), EisaId(d.eisa_id)));
    Append(dev, Name(NameSeg("_UID"), Integer(i)));
    Append(dev, Name(NameSeg("_CRS"), Buffer(IsaResources(d))));
    Append(sb_body, Package({kExtOpPrefix, kDeviceOp}, dev));
  }
  if (layout.fw_cfg_port_count) {
    Bytes dev = NameSeg("FWCF");
    Append(dev, Name(NameSeg("_HID"), String("QEMU0002")));
    Append(dev, Name(NameSeg("_STA"), Integer(0x0b)));  // present, enabled, not shown in UI
    Bytes r{0x47, 0x01};  // I/O port descriptor, 16-bit decode
    AppendLe(r, layout.fw_cfg_port, 2);
    AppendLe(r, layout.fw_cfg_port, 2);
    r.push_back(0x01);  // alignment
    r.push_back(layout.fw_cfg_port_count);
    r.insert(r.end(), {0x79, 0x00});
    Append(dev, Name(NameSeg("_CRS"), Buffer(r)));
    Append(sb_body, Package({kExtOpPrefix, kDeviceOp}, dev));
  }
  Append(t, Package({kScopeOp}, sb_body));
  // Name (\_S5, Package (4) {SLP_TYPa, SLP_TYPb, 0, 0})
  Bytes s5{kRootChar};
  Append(s5, NameSeg("_S5_"));
  Bytes pkg{0x04};
  Append(pkg, Integer(layout.s5_sleep_type));
  Append(pkg, Integer(layout.s5_sleep_type));
  Append(pkg, Integer(0));
  Append(pkg, Integer(0));
  Bytes s5_name{kNameOp};
  Append(s5_name, s5);
  Append(s5_name, Package({kPackageOp}, pkg));
  Append(t, s5_name);
  Finish(t);
  return t;
}

// FADT revision 6 (ACPI 6.0, 5.2.9): 276 bytes.
Bytes BuildFadt(const AcpiLayout& layout, uint64_t dsdt_addr) {
  Bytes t = Header("FACP", 6, "VMRRFACP");
  t.resize(276, 0);
  // FIRMWARE_CTRL, DSDT (32-bit), SCI_INT, SMI_CMD, all PM/GPE blocks: 0 (hardware-reduced,
  // no FACS: X_DSDT carries the DSDT).
  constexpr uint16_t kBootArchVgaNotPresent = 1u << 2, kBootArchMsiNotSupported = 1u << 3,
                     kBootArchPcieAspmControls = 1u << 4;
  StoreLe(t.data() + 109,
          kBootArchVgaNotPresent | kBootArchMsiNotSupported | kBootArchPcieAspmControls, 2);
  constexpr uint32_t kWbinvd = 1u << 0, kPwrButton = 1u << 4, kSlpButton = 1u << 5,
                     kResetRegSup = 1u << 10, kHwReducedAcpi = 1u << 20;
  StoreLe(t.data() + 112,
          kWbinvd | kPwrButton | kSlpButton | (layout.reset_port ? kResetRegSup : 0) |
              kHwReducedAcpi,
          4);
  Bytes gas;
  AppendIoGas(gas, layout.reset_port);
  std::memcpy(t.data() + 116, gas.data(), gas.size());
  t[128] = layout.reset_value;
  t[131] = 0;  // FADT minor version: ACPI 6.0
  StoreLe(t.data() + 140, dsdt_addr, 8);  // X_DSDT
  gas.clear();
  AppendIoGas(gas, layout.sleep_control_port);
  std::memcpy(t.data() + 244, gas.data(), gas.size());
  gas.clear();
  AppendIoGas(gas, layout.sleep_status_port);
  std::memcpy(t.data() + 256, gas.data(), gas.size());
  std::memcpy(t.data() + 268, "vmrr\0\0\0\0", 8);  // hypervisor vendor identity
  Finish(t);
  return t;
}

// MADT revision 4 (ACPI 6.0, 5.2.12).
Bytes BuildMadt(const AcpiLayout& layout) {
  Bytes t = Header("APIC", 4, "VMRRAPIC");
  AppendLe(t, layout.lapic_base, 4);
  AppendLe(t, layout.pcat_compat ? 1 : 0, 4);
  // Processor local APIC: UID 0, APIC ID 0, enabled.
  t.insert(t.end(), {0, 8, 0, 0});
  AppendLe(t, 1, 4);
  // I/O APIC, GSI base 0.
  t.insert(t.end(), {1, 12, layout.ioapic_id, 0});
  AppendLe(t, layout.ioapic_base, 4);
  AppendLe(t, 0, 4);
  for (const AcpiLayout::SourceOverride& o : layout.overrides) {
    t.insert(t.end(), {2, 10, 0, o.isa_irq});  // bus 0 (ISA)
    AppendLe(t, o.gsi, 4);
    AppendLe(t, o.flags, 2);
  }
  // Local APIC NMI: every processor, LINT1, flags as the bus conforms.
  t.insert(t.end(), {4, 6, 0xff, 0, 0, 1});
  Finish(t);
  return t;
}

Bytes BuildSdt(const char signature[4], const char oem_table_id[8],
               const std::vector<uint64_t>& entries, unsigned entry_bytes) {
  Bytes t = Header(signature, 1, oem_table_id);
  for (uint64_t e : entries) AppendLe(t, e, entry_bytes);
  Finish(t);
  return t;
}

void Align(Bytes& b, size_t alignment) {
  while (b.size() % alignment) b.push_back(0);
}

}  // namespace

uint8_t AcpiChecksum(const uint8_t* data, uint64_t length) {
  uint8_t sum = 0;
  for (uint64_t i = 0; i < length; ++i) sum = static_cast<uint8_t>(sum + data[i]);
  return sum;
}

AcpiTables BuildAcpiTables(const AcpiLayout& layout) {
  if (layout.base % 16 != 0 || layout.base >= (uint64_t{1} << 32)) {
    throw std::invalid_argument("ACPI: the RSDP must be 16-byte aligned below 4 GiB");
  }
  if (layout.virtio.size() > 64) throw std::invalid_argument("ACPI: more than 64 virtio devices");
  for (const AcpiLayout::IsaDevice& d : layout.isa) {
    if (!ValidIsa(d)) throw std::invalid_argument("ACPI: bad ISA device '" + d.name + "'");
  }

  // Layout: RSDP (36 bytes) | RSDT | XSDT | FADT | MADT | DSDT, each 16-byte aligned. The
  // pointers are known before the bytes, because every table's size depends only on the layout.
  const Bytes dsdt = BuildDsdt(layout);
  const Bytes madt = BuildMadt(layout);
  constexpr size_t kRsdpSize = 36, kFadtSize = 276;
  auto aligned = [](size_t n) { return (n + 15) & ~size_t{15}; };
  const size_t rsdt_off = aligned(kRsdpSize);
  const size_t rsdt_size = kHeaderSize + 2 * 4;
  const size_t xsdt_off = aligned(rsdt_off + rsdt_size);
  const size_t xsdt_size = kHeaderSize + 2 * 8;
  const size_t fadt_off = aligned(xsdt_off + xsdt_size);
  const size_t madt_off = aligned(fadt_off + kFadtSize);
  const size_t dsdt_off = aligned(madt_off + madt.size());
  const uint64_t b = layout.base;

  const Bytes fadt = BuildFadt(layout, b + dsdt_off);
  const Bytes rsdt = BuildSdt("RSDT", "VMRRRSDT", {b + fadt_off, b + madt_off}, 4);
  const Bytes xsdt = BuildSdt("XSDT", "VMRRXSDT", {b + fadt_off, b + madt_off}, 8);

  // RSDP (5.2.5.3), revision 2.
  Bytes rsdp;
  AppendText(rsdp, "RSD PTR ", 8);
  rsdp.push_back(0);  // checksum of the first 20 bytes
  AppendText(rsdp, "VMRR  ", 6);
  rsdp.push_back(2);
  AppendLe(rsdp, b + rsdt_off, 4);
  AppendLe(rsdp, kRsdpSize, 4);
  AppendLe(rsdp, b + xsdt_off, 8);
  rsdp.push_back(0);  // extended checksum
  rsdp.insert(rsdp.end(), 3, 0);
  rsdp[8] = static_cast<uint8_t>(-AcpiChecksum(rsdp.data(), 20));
  rsdp[32] = static_cast<uint8_t>(-AcpiChecksum(rsdp.data(), kRsdpSize));

  AcpiTables out;
  auto place = [&](const char* sig, size_t off, const Bytes& table) {
    Align(out.bytes, 16);
    if (out.bytes.size() != off) throw std::logic_error("ACPI: table layout mismatch");
    out.tables.push_back({sig, off, table.size()});
    Append(out.bytes, table);
  };
  place("RSD PTR ", 0, rsdp);
  place("RSDT", rsdt_off, rsdt);
  place("XSDT", xsdt_off, xsdt);
  place("FACP", fadt_off, fadt);
  place("APIC", madt_off, madt);
  place("DSDT", dsdt_off, dsdt);
  return out;
}

}  // namespace vmrr
