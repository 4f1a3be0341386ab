// Every device of the fixed PC platform (platform_layout.h): built, wired to the interrupt
// router, and registered with its windows in one DeviceRegistry, one line per device. The
// collective operations the machine's run loop needs (mapping, the next timed event, running
// due timers, polling host input at input points, saving/restoring all device state) are the
// registry's.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "hv-hooks/devices/acpi_pm.h"
#include "hv-hooks/machine/acpi.h"
#include "hv-hooks/machine/platform_layout.h"
#include "hv-hooks/devices/debug_exit.h"
#include "hv-hooks/devices/device_registry.h"
#include "hv-hooks/devices/fw_cfg.h"
#include "hv-hooks/devices/interrupt_router.h"
#include "hv-hooks/devices/local_apic.h"
#include "hv-hooks/devices/pci_host.h"
#include "hv-hooks/devices/pic8259.h"
#include "hv-hooks/devices/pit8254.h"
#include "hv-hooks/devices/rtc_cmos.h"
#include "hv-hooks/devices/uart16550.h"
#include "hv-hooks/devices/virtio/virtio_blk.h"
#include "hv-hooks/devices/virtio/virtio_net.h"
#include "hv-hooks/devices/virtio/virtio_rng.h"
#include "hv-hooks/environment.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/guest_memory.h"
#include "hv-hooks/substrate/virtual_clock.h"

namespace vmrr {

struct PlatformConfig {
  bool virtio_rng = true;
  // virtio-blk is present only with an image.
  struct Disk {
    std::string image_path;
    VirtioBlock::Options options;
  };
  std::optional<Disk> disk;
  bool virtio_net = false;
  std::array<uint8_t, 6> mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
};

class PlatformDevices : public Stateful {
 public:
  static constexpr uint32_t kStateVersion = 2;

  // Throws BlockImageError if the disk image cannot be opened.
  PlatformDevices(GuestMemory& mem, const VirtualClock& clock, const IcountSource& icount,
                  Environment& env, const PlatformConfig& config);

  // Maps every device at its platform address. Throws BusError if something already occupies
  // one of the ranges.
  void MapInto(PortBus& ports, MmioBus& mmio);
  // Where host backends (the disk) report a failure while the machine runs; the Machine stops
  // on it (StopForHostError).
  void SetHostErrorHandler(const std::function<void(const std::string&)>& handler);

  // The CPU side of interrupts: SetIntrLineCallback, InterruptPending, Acknowledge.
  InterruptRouter& interrupts() { return router_; }

  // Earliest guest time at which some device has a timed event (kNoDeadline if none). The run
  // loop converts it with VirtualClock::IcountForDeadline, runs the CPU to that icount and
  // calls RunTimers; after any device access or time sample it must ask again.
  uint64_t NextDeadlineNs() const;
  void RunTimers();
  // At an input point: console bytes into the UART, frames into virtio-net receive buffers.
  void PollInputs();

  PicPair& pic() { return pic_; }
  Pit8254& pit() { return pit_; }
  RtcCmos& rtc() { return rtc_; }
  Uart16550& com1() { return com1_; }
  DebugExit& debug_exit() { return debug_exit_; }
  AcpiPm& acpi_pm() { return acpi_pm_; }
  FwCfg& fw_cfg() { return fw_cfg_; }
  PciHostBridge& pci() { return pci_; }
  LocalApic& lapic() { return lapic_; }
  IoApic& ioapic() { return ioapic_; }
  VirtioRng* virtio_rng() { return rng_.get(); }
  VirtioBlock* virtio_blk() { return blk_.get(); }
  VirtioNet* virtio_net() { return net_.get(); }

  // The ACPI description of these devices (acpi.h) with its RSDP at `base`: the MADT's
  // APICs and overrides, the virtio-mmio transports present, the AcpiPm registers, fw_cfg.
  AcpiLayout acpi_layout(uint64_t base) const;

  // The registered devices, in registration order (the order of timers and of saved state).
  const DeviceRegistry& registry() const { return registry_; }

  // Section "PLAT" (version 2): the registry's section, whose manifest says which devices the
  // state is for. Version 1 (presence flags, hand-ordered devices) is refused.
  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

 private:
  PicPair pic_;
  LocalApic lapic_;
  IoApic ioapic_;
  InterruptRouter router_;
  Pit8254 pit_;
  RtcCmos rtc_;
  Uart16550 com1_;
  DebugExit debug_exit_;
  AcpiPm acpi_pm_{platform::kAcpiS5SleepType, platform::kAcpiResetValue};
  FwCfg fw_cfg_;
  PciHostBridge pci_;
  std::unique_ptr<VirtioRng> rng_;
  std::unique_ptr<VirtioBlock> blk_;
  std::unique_ptr<VirtioNet> net_;
  DeviceRegistry registry_;  // last: it points into the devices above, so it goes first
};

}  // namespace vmrr
