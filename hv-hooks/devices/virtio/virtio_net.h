// virtio-net (device ID 1; queue 0 receive, queue 1 transmit) exchanging Ethernet frames with
// the Environment: transmitted frames (virtio_net_hdr stripped) go to NetFrameSent; frames
// are taken from PollNetFrame only when the driver has a receive buffer posted, at the
// machine's input points (PollInput). Offers MAC and STATUS (link up); no offloads, no
// mergeable buffers, so every buffer starts with a 12-byte header.
#pragma once

#include <array>

#include "hv-hooks/devices/virtio/virtio_mmio.h"
#include "hv-hooks/environment.h"

namespace vmrr {

class VirtioNet : public VirtioMmioDevice {
 public:
  static constexpr uint64_t kHeaderSize = 12;
  static constexpr uint64_t kMaxFrame = 65536 - kHeaderSize;

  VirtioNet(GuestMemory& mem, const VirtualClock& clock, IrqLine irq, Environment& env,
            std::array<uint8_t, 6> mac);

  std::string_view name() const override { return "virtio-net"; }

  // Moves received frames into posted receive buffers while both exist (at most one queue's
  // worth per call).
  void PollInput() override;
  bool WantsInput() const;

 protected:
  uint32_t device_id() const override { return 1; }
  uint64_t device_features() const override;
  uint8_t ReadConfig(uint64_t offset) const override;
  uint64_t config_size() const override { return 8; }
  void QueueNotified(unsigned index) override;
  void ResetDevice() override {}
  void SaveDevice(StateWriter& out) const override;
  void LoadDevice(StateReader& in) override;

 private:
  void Transmit();

  Environment& env_;
  std::array<uint8_t, 6> mac_;
};

}  // namespace vmrr
