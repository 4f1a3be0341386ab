// ACPI tables for a hardware-reduced ACPI platform (ACPI 6.0 FADT with HW_REDUCED_ACPI), the
// way QEMU's microvm presents one: RSDP, XSDT, FADT, MADT and a DSDT, generated in code from
// the machine's layout so a guest's tables can never disagree with its devices.
//
// - FADT: hardware-reduced (no PM1/GPE blocks, no SCI, no FACS), a sleep control and a sleep
//   status register in I/O space and a reset register (RESET_REG_SUP);
// - MADT: one enabled local APIC (ID 0), the I/O APIC, interrupt source overrides and the
//   LINT1 NMI entry;
// - DSDT: \_S5 (the sleep type the sleep control register takes for power-off), one
//   LNRO0005 device (virtio-mmio, as the Linux driver's ACPI match table names it) per
//   transport with its MMIO window and its interrupt, and the legacy ISA devices (PNP IDs).
// Nothing here reads guest state; the bytes are a pure function of AcpiLayout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmrr {

struct AcpiLayout {
  uint64_t base = 0;  // guest-physical address of the blob (the RSDP, 16-byte aligned)
  uint32_t lapic_base = 0;
  uint32_t ioapic_base = 0;
  uint8_t ioapic_id = 0;
  struct SourceOverride {
    uint8_t isa_irq = 0;
    uint32_t gsi = 0;
    uint16_t flags = 0;  // MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2
  };
  std::vector<SourceOverride> overrides;
  struct VirtioMmio {
    uint32_t base = 0;
    uint32_t size = 0;
    uint32_t gsi = 0;  // level-triggered, active high
  };
  std::vector<VirtioMmio> virtio;
  // Legacy ISA devices an OS would otherwise only guess at (the 16550 at 0x3f8, the RTC), as
  // PNP nodes with their I/O ports and edge-triggered ISA IRQ: an OS without a legacy PIC
  // (hardware-reduced ACPI) routes their interrupts from these.
  struct IsaDevice {
    std::string name;     // 4-character ACPI name, e.g. "COM1"
    std::string eisa_id;  // e.g. "PNP0501"
    uint16_t port = 0;
    uint8_t port_count = 0;
    uint8_t irq = 0;
  };
  std::vector<IsaDevice> isa;
  uint16_t sleep_control_port = 0;  // 8-bit register: SLP_TYP in bits 4:2, SLP_EN bit 5
  uint16_t sleep_status_port = 0;   // 8-bit register: WAK_STS bit 7
  uint16_t reset_port = 0;          // 8-bit register
  uint8_t reset_value = 0;
  uint8_t s5_sleep_type = 0;        // SLP_TYP for \_S5
  bool pcat_compat = true;          // dual 8259s present (MADT flag PCAT_COMPAT)
  // QEMU's fw_cfg as QEMU describes it (hw/i386/fw_cfg.c fw_cfg_add_acpi_dsdt): Device (FWCF),
  // _HID "QEMU0002", _STA 0x0B, IO (Decode16, port, port, 1, count). Count 0: none.
  uint16_t fw_cfg_port = 0;
  uint8_t fw_cfg_port_count = 0;
};

// INTI flags for an override: active high, level triggered.
inline constexpr uint16_t kIntiActiveHighLevel = 0x1 | (0x3 << 2);

struct AcpiTables {
  std::vector<uint8_t> bytes;  // to be copied to guest memory at layout.base
  // Offsets of each table in `bytes` (for tests and reports), in the order XSDT lists them.
  struct Entry {
    std::string signature;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  std::vector<Entry> tables;  // RSDP first (signature "RSD PTR "), then XSDT, FACP, APIC, DSDT
};

// Builds the tables. Throws std::invalid_argument if the layout cannot be expressed (a base
// that is not 16-byte aligned or lies above 4 GiB, more than 64 virtio devices, an ISA device
// whose name is not 4 characters of [A-Z0-9_], whose EISA ID is not 3 letters and 4 hex
// digits, or whose IRQ is above 15).
AcpiTables BuildAcpiTables(const AcpiLayout& layout);

// The 8-bit checksum rule of every ACPI table: the bytes sum to 0 modulo 256.
uint8_t AcpiChecksum(const uint8_t* data, uint64_t length);

}  // namespace vmrr
