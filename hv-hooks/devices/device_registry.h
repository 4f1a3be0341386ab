// DeviceRegistry: the devices of a machine in registration order, each with the bus windows it
// answers at, and every collective operation the run loop needs derived from that one list:
// mapping the windows, the next deadline, running timers, polling input, and saving/loading
// all device state in one section whose manifest (the devices' names) must match to load.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/state_io.h"

namespace vmrr {

// One address range a device answers at. target is the BusDevice the range reaches; null means
// the registered device itself (which must then be a BusDevice).
struct BusWindow {
  enum class Space : uint8_t { kPort, kMmio };
  Space space;
  uint64_t base;
  uint64_t length;
  BusDevice* target = nullptr;
};

inline BusWindow Port(uint64_t base, uint64_t length) {
  return {BusWindow::Space::kPort, base, length, nullptr};
}
inline BusWindow Port(uint64_t base, uint64_t length, BusDevice& target) {
  return {BusWindow::Space::kPort, base, length, &target};
}
inline BusWindow Mmio(uint64_t base, uint64_t length) {
  return {BusWindow::Space::kMmio, base, length, nullptr};
}
inline BusWindow Mmio(uint64_t base, uint64_t length, BusDevice& target) {
  return {BusWindow::Space::kMmio, base, length, &target};
}

class DeviceRegistry : public Stateful {
 public:
  static constexpr uint32_t kStateVersion = 1;
  static constexpr uint64_t kMaxDevices = 256;   // bounds a hostile manifest
  static constexpr uint64_t kMaxNameBytes = 64;

  DeviceRegistry() = default;
  DeviceRegistry(const DeviceRegistry&) = delete;
  DeviceRegistry& operator=(const DeviceRegistry&) = delete;

  // Registers device (which must outlive the registry) with its windows. Throws BusError if a
  // window is empty, wraps, or overlaps one already registered (naming both devices), and
  // std::logic_error if the name is taken or a window without a target names a device that is
  // not itself a BusDevice. The order of registration is the order of RunTimers and of the
  // saved state: interrupts raised at one instant reach the controllers in that order.
  template <std::derived_from<Device> D>
  void Add(D& device, std::initializer_list<BusWindow> windows = {}) {
    BusDevice* self = nullptr;
    if constexpr (std::is_base_of_v<BusDevice, D>) self = &device;
    AddEntry(device, self, windows);
  }

  // Inserts every window into its bus. Throws BusError (naming the device) if a bus already
  // has something in one of the ranges.
  void MapInto(PortBus& ports, MmioBus& mmio) const;

  // The earliest deadline of any device (kNoDeadline if none).
  uint64_t NextDeadlineNs() const;
  // Every device, in registration order.
  void RunTimers();
  void PollInputs();

  // Section "DEVS": the manifest (names, in order), then each device's own state in order.
  // LoadState refuses a manifest that differs from this registry's with a StateError naming
  // the difference, and loads all or nothing: if a device refuses its bytes, the devices loaded
  // before it are put back from a backup taken first.
  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

  size_t size() const { return entries_.size(); }
  // Names in registration order (the manifest).
  std::vector<std::string> names() const;

 private:
  struct Entry {
    Device* device;
    std::vector<BusWindow> windows;  // targets resolved
  };
  void AddEntry(Device& device, BusDevice* self, std::initializer_list<BusWindow> windows);
  void SaveDevices(StateWriter& out) const;
  void LoadDevices(StateReader& in);

  std::vector<Entry> entries_;  // registration order: never reordered, never pointer-keyed
};

}  // namespace vmrr
