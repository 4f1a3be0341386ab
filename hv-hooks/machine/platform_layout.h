// The fixed platform layout of a vmrr machine: I/O ports, MMIO windows and interrupt lines of
// every device. Test guests, loaders and the machine wiring all read their addresses here, so
// that a guest driver and the device it talks to can never disagree.
#pragma once

#include <cstdint>

namespace vmrr::platform {

// ---- I/O ports -------------------------------------------------------------------------
inline constexpr uint16_t kPicMasterBase = 0x20;  // 0x20 command, 0x21 data
inline constexpr uint16_t kPicSlaveBase = 0xa0;   // 0xa0 command, 0xa1 data
inline constexpr uint16_t kPicPortCount = 2;
inline constexpr uint16_t kElcrBase = 0x4d0;  // 0x4d0 master ELCR, 0x4d1 slave ELCR
inline constexpr uint16_t kElcrPortCount = 2;
inline constexpr uint16_t kPitBase = 0x40;  // 0x40..0x42 counters 0..2, 0x43 control word
inline constexpr uint16_t kPitPortCount = 4;
// System control port B: bit 0 gates PIT counter 2, bit 1 speaker data enable, bit 4 the
// refresh toggle (every 15.085 us), bit 5 counter 2's OUT (read-only). Linux uses it to
// calibrate the TSC against the PIT.
inline constexpr uint16_t kSystemControlPort = 0x61;
inline constexpr uint16_t kRtcBase = 0x70;  // 0x70 index (bit 7 = NMI disable), 0x71 data
inline constexpr uint16_t kRtcPortCount = 2;
inline constexpr uint16_t kCom1Base = 0x3f8;
inline constexpr uint16_t kUartPortCount = 8;
// Same encoding as QEMU's isa-debug-exit with iobase=0xf4,iosize=0x04 (QEMU's defaults are
// 0x501 and 2): a guest write of v to any of the four ports ends the run with host exit
// status (v << 1) | 1.
inline constexpr uint16_t kDebugExitPort = 0xf4;
inline constexpr uint16_t kDebugExitPortCount = 4;
// The hardware-reduced ACPI registers (AcpiPm): 0x600 sleep control, 0x601 sleep status,
// 0x602 reset; the FADT points at them, \_S5 names the sleep type, RESET_VALUE the value.
inline constexpr uint16_t kAcpiPmBase = 0x600;
inline constexpr uint16_t kAcpiPmPortCount = 3;
inline constexpr uint8_t kAcpiS5SleepType = 5;
inline constexpr uint8_t kAcpiResetValue = 0x01;
// QEMU's fw_cfg (FwCfg) as on x86: 0x510 selector (16-bit writes), 0x511 data (8-bit reads),
// 0x514..0x51b the big-endian DMA address; the DSDT describes it as QEMU0002 over all 12.
inline constexpr uint16_t kFwCfgBase = 0x510;
inline constexpr uint16_t kFwCfgPortCount = 12;
// What fw_cfg reports: one CPU (FW_CFG_NB_CPUS and FW_CFG_MAX_CPUS).
inline constexpr uint16_t kCpuCount = 1;
inline constexpr uint16_t kPciConfigAddress = 0xcf8;  // 32-bit CONFIG_ADDRESS
inline constexpr uint16_t kPciConfigData = 0xcfc;     // 0xcfc..0xcff CONFIG_DATA
inline constexpr uint16_t kPciPortCount = 8;          // 0xcf8..0xcff

// ---- MMIO ------------------------------------------------------------------------------
inline constexpr uint64_t kIoApicBase = 0xfec00000;
inline constexpr uint64_t kIoApicSize = 0x1000;
inline constexpr uint64_t kLapicBase = 0xfee00000;
inline constexpr uint64_t kLapicSize = 0x1000;
// virtio-mmio (register layout version 2) transports, one 0x200-byte window each.
inline constexpr uint64_t kVirtioMmioSize = 0x200;
inline constexpr uint64_t kVirtioRngBase = 0xfeb00000;
inline constexpr uint64_t kVirtioBlkBase = 0xfeb00200;
inline constexpr uint64_t kVirtioNetBase = 0xfeb00400;

// ---- Firmware tables ---------------------------------------------------------------------
// ACPI tables for Linux guests (acpi.h): in the reserved BIOS area, where an OS scans for the
// RSDP (0xE0000-0xFFFFF) even without boot_params.acpi_rsdp_addr.
inline constexpr uint64_t kAcpiTablesBase = 0xe0000;
inline constexpr uint64_t kAcpiTablesMax = 0x10000;

// ---- Interrupt lines (ISA IRQ numbers; identity-mapped to IOAPIC GSIs) -------------------
inline constexpr unsigned kPitIrq = 0;
inline constexpr unsigned kPicCascadeIrq = 2;
inline constexpr unsigned kCom1Irq = 4;
inline constexpr unsigned kVirtioRngIrq = 5;
inline constexpr unsigned kVirtioBlkIrq = 6;
inline constexpr unsigned kVirtioNetIrq = 7;
inline constexpr unsigned kRtcIrq = 8;
inline constexpr unsigned kIoApicPins = 24;

}  // namespace vmrr::platform
