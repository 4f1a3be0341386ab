// virtio-rng (device ID 4, one request queue): fills each device-writable chain with entropy
// taken from Environment::GetEntropy, so that recording logs it and replay reproduces it. A
// request is served with at most kMaxBytesPerRequest bytes (the driver accepts short fills)
// so that one guest request cannot make the log grow by more than that.
#pragma once

#include "hv-hooks/devices/virtio/virtio_mmio.h"
#include "hv-hooks/environment.h"

namespace vmrr {

class VirtioRng : public VirtioMmioDevice {
 public:
  static constexpr uint32_t kMaxBytesPerRequest = 4096;

  VirtioRng(GuestMemory& mem, const VirtualClock& clock, IrqLine irq, Environment& env);

  std::string_view name() const override { return "virtio-rng"; }

 protected:
  uint32_t device_id() const override { return 4; }
  uint64_t device_features() const override { return 0; }
  uint8_t ReadConfig(uint64_t) const override { return 0; }
  uint64_t config_size() const override { return 0; }
  void QueueNotified(unsigned index) override;
  void ResetDevice() override {}
  void SaveDevice(StateWriter&) const override {}
  void LoadDevice(StateReader&) override {}

 private:
  Environment& env_;
};

}  // namespace vmrr
