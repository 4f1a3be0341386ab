// PciHostBridge: config address decoding and the host bridge's config header.
#include "hv-hooks/devices/pci_host.h"

namespace vmrr {

namespace {
// Writable bits of the command register: I/O space, memory space, bus master.
constexpr uint16_t kCommandMask = 0x0007;
}  // namespace

PciHostBridge::PciHostBridge() = default;

int PciHostBridge::Selected(uint64_t data_offset) const {
  if (!(address_ & 0x80000000u)) return -1;
  uint32_t bus = (address_ >> 16) & 0xff, dev = (address_ >> 11) & 0x1f, fn = (address_ >> 8) & 7;
  if (bus != 0 || dev != 0 || fn != 0) return -1;
  return static_cast<int>((address_ & 0xfc) | (data_offset & 3));
}

uint64_t PciHostBridge::Read(uint64_t offset, unsigned size) {
  if (offset < 4) return (offset == 0 && size == 4) ? address_ : AllOnes(size);
  int reg = Selected(offset - 4);
  if (reg < 0) return AllOnes(size);
  uint64_t v = 0;
  for (unsigned i = 0; i < size; ++i) {
    unsigned r = static_cast<unsigned>(reg) + i;
    uint8_t byte = 0;
    switch (r) {
      case 0x00: byte = kVendorId & 0xff; break;
      case 0x01: byte = kVendorId >> 8; break;
      case 0x02: byte = kDeviceId & 0xff; break;
      case 0x03: byte = kDeviceId >> 8; break;
      case 0x04: byte = command_ & 0xff; break;
      case 0x05: byte = command_ >> 8; break;
      case 0x06: byte = 0x00; break;          // status
      case 0x07: byte = 0x02; break;          // DEVSEL medium
      case 0x08: byte = 0x02; break;          // revision
      case 0x0b: byte = 0x06; break;          // class: bridge
      case 0x0a: byte = 0x00; break;          // subclass: host bridge
      case 0x0e: byte = 0x00; break;          // header type 0, single function
      default: byte = 0; break;
    }
    v |= static_cast<uint64_t>(byte) << (8 * i);
  }
  return v;
}

void PciHostBridge::Write(uint64_t offset, unsigned size, uint64_t value) {
  if (offset < 4) {
    // Only a dword write at 0xcf8 is CONFIG_ADDRESS (byte writes at 0xcf9 are the reset
    // control register on real chipsets; not modelled).
    if (offset == 0 && size == 4) address_ = static_cast<uint32_t>(value) & 0x80fffffcu;
    return;
  }
  int reg = Selected(offset - 4);
  if (reg < 0) return;
  for (unsigned i = 0; i < size; ++i) {
    unsigned r = static_cast<unsigned>(reg) + i;
    uint8_t byte = static_cast<uint8_t>(value >> (8 * i));
    if (r == 0x04) command_ = static_cast<uint16_t>((command_ & 0xff00) | (byte & kCommandMask));
  }
}

void PciHostBridge::SaveState(StateWriter& out) const {
  out.Begin("PCIH", 1);
  out.U32(address_);
  out.U16(command_);
}

void PciHostBridge::LoadState(StateReader& in) {
  in.Begin("PCIH", 1);
  uint32_t address = in.U32();
  uint16_t command = in.U16();
  if (address & ~0x80fffffcu) in.Fail("PCI config address has reserved bits set");
  if (command & ~kCommandMask) in.Fail("PCI command register has read-only bits set");
  address_ = address;
  command_ = command;
}

}  // namespace vmrr
