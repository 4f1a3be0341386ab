// A minimal PCI host bridge: configuration mechanism #1 (CONFIG_ADDRESS at 0xcf8, CONFIG_DATA
// at 0xcfc-0xcff). Bus 0 holds one function, the host bridge at 00:00.0 (Intel 440FX IDs, so
// guests recognise it); every other function reads as absent (vendor 0xffff). The virtio
// devices sit on virtio-mmio, not PCI, so nothing else needs enumerating.
#pragma once

#include <cstdint>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/state_io.h"

namespace vmrr {

class PciHostBridge : public BusDevice, public Device {
 public:
  static constexpr uint16_t kVendorId = 0x8086;
  static constexpr uint16_t kDeviceId = 0x1237;

  PciHostBridge();

  std::string_view name() const override { return "pci-host"; }

  // offsets 0..3 CONFIG_ADDRESS (dword access only), 4..7 CONFIG_DATA.
  uint64_t Read(uint64_t offset, unsigned size) override;
  void Write(uint64_t offset, unsigned size, uint64_t value) override;

  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

 private:
  // Register offset into the host bridge's config space, or -1 if the current address
  // selects nothing (disabled, another bus/device/function).
  int Selected(uint64_t data_offset) const;

  uint32_t address_ = 0;
  uint16_t command_ = 0;
};

}  // namespace vmrr
