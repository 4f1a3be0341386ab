// The virtio-mmio transport, register layout version 2 (virtio 1.x, section 4.2.2), shared by
// every virtio device: identification, feature negotiation (VIRTIO_F_VERSION_1 required),
// device status with reset, queue configuration, notification, the interrupt status/ACK pair
// driving a level-triggered IRQ line, and the device-specific configuration space at 0x100.
// A device whose queues the driver has corrupted is marked DEVICE_NEEDS_RESET (with a
// configuration-change interrupt) and does nothing more until the driver resets it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/devices/irq.h"
#include "hv-hooks/devices/virtio/virtqueue.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/guest_memory.h"
#include "hv-hooks/substrate/state_io.h"
#include "hv-hooks/substrate/virtual_clock.h"

namespace vmrr {

class VirtioMmioDevice : public BusDevice, public Device {
 public:
  static constexpr uint32_t kMagic = 0x74726976;      // "virt"
  static constexpr uint32_t kVendorId = 0x72726d76;   // "vmrr"
  static constexpr uint64_t kFeatureVersion1 = 1ull << 32;
  enum Status : uint8_t {
    kAcknowledge = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8, kNeedsReset = 64,
    kFailed = 128,
  };

  VirtioMmioDevice(GuestMemory& mem, const VirtualClock& clock, IrqLine irq, unsigned num_queues);

  uint64_t Read(uint64_t offset, unsigned size) override;
  void Write(uint64_t offset, unsigned size, uint64_t value) override;

  void SaveState(StateWriter& out) const final;
  void LoadState(StateReader& in) final;

  uint8_t status() const { return status_; }
  uint32_t interrupt_status() const { return interrupt_status_; }
  const Virtqueue& queue(unsigned i) const { return queues_[i]; }
  // Why the device asked for a reset (empty if it did not); for diagnostics and tests.
  const std::string& broken_reason() const { return broken_reason_; }
  // Processes a notification of queue `index` as if the driver wrote QueueNotify.
  void Notify(unsigned index);

 protected:
  virtual uint32_t device_id() const = 0;
  virtual uint64_t device_features() const = 0;  // without VERSION_1, which is added
  virtual uint8_t ReadConfig(uint64_t offset) const = 0;
  virtual uint64_t config_size() const = 0;
  virtual void QueueNotified(unsigned index) = 0;
  virtual void ResetDevice() = 0;
  virtual void SaveDevice(StateWriter& out) const = 0;
  virtual void LoadDevice(StateReader& in) = 0;  // may throw; called before any commit

  bool DriverOk() const { return (status_ & kDriverOk) && !(status_ & kNeedsReset); }
  // Pops a chain from queue `index`; a broken queue marks the device as needing reset.
  bool PopChain(unsigned index, VirtqChain* chain);
  // Returns a chain to the driver and raises the used-buffer interrupt unless suppressed.
  void Complete(unsigned index, uint16_t head, uint32_t written);
  void MarkNeedsReset(const std::string& why);

  GuestMemory& mem_;
  const VirtualClock& clock_;

 private:
  void SetInterrupt(uint32_t bits);
  void UpdateIrq();
  void Reset();

  IrqLine irq_;
  std::vector<Virtqueue> queues_;
  uint8_t status_ = 0;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t interrupt_status_ = 0;
  uint8_t irq_level_ = 0;
  std::string broken_reason_;
};

}  // namespace vmrr
