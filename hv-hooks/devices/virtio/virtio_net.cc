// VirtioNet: transmit and receive paths.
#include "hv-hooks/devices/virtio/virtio_net.h"

#include <algorithm>
#include <vector>

namespace vmrr {

namespace {
constexpr uint64_t kFeatureMac = 1ull << 5;
constexpr uint64_t kFeatureStatus = 1ull << 16;
constexpr unsigned kRxQueue = 0, kTxQueue = 1;
}  // namespace

VirtioNet::VirtioNet(GuestMemory& mem, const VirtualClock& clock, IrqLine irq, Environment& env,
                     std::array<uint8_t, 6> mac)
    : VirtioMmioDevice(mem, clock, irq, 2), env_(env), mac_(mac) {}

uint64_t VirtioNet::device_features() const { return kFeatureMac | kFeatureStatus; }

uint8_t VirtioNet::ReadConfig(uint64_t offset) const {
  if (offset < 6) return mac_[offset];
  if (offset == 6) return 1;  // status: VIRTIO_NET_S_LINK_UP
  return 0;
}

void VirtioNet::QueueNotified(unsigned index) {
  if (index == kTxQueue) Transmit();
  // A receive-queue notification only says buffers were posted; frames arrive at input points.
}

void VirtioNet::Transmit() {
  VirtqChain chain;
  std::vector<uint8_t> frame;
  for (unsigned n = 0; n < Virtqueue::kMaxSize && PopChain(kTxQueue, &chain); ++n) {
    uint64_t len = chain.readable_bytes;
    // Frames without a header, oversize or in bad memory are dropped, as a NIC drops bad
    // frames; the buffer still goes back to the driver.
    if (!chain.bad_address && len > kHeaderSize && len - kHeaderSize <= kMaxFrame) {
      frame.resize(len - kHeaderSize);
      Virtqueue::ReadFrom(mem_, chain, kHeaderSize, frame.data(), frame.size());
      env_.NetFrameSent(clock_.icount(), frame);
    }
    Complete(kTxQueue, chain.head, 0);
  }
}

bool VirtioNet::WantsInput() const { return DriverOk() && queue(kRxQueue).HasAvailable(mem_); }

void VirtioNet::PollInput() {
  std::vector<uint8_t> frame;
  for (unsigned n = 0; n < Virtqueue::kMaxSize && WantsInput(); ++n) {
    if (!env_.PollNetFrame(clock_.icount(), &frame)) return;
    VirtqChain chain;
    if (!PopChain(kRxQueue, &chain)) return;  // cannot happen after WantsInput unless broken
    uint32_t written = 0;
    if (!chain.bad_address && chain.readable_bytes == 0) {
      uint8_t header[kHeaderSize] = {};
      header[10] = 1;  // num_buffers = 1
      uint64_t frame_len = std::min<uint64_t>(frame.size(), kMaxFrame);
      uint64_t n1 = Virtqueue::WriteTo(mem_, chain, 0, header, kHeaderSize);
      // A frame larger than the posted buffer is truncated (the driver sized it too small).
      uint64_t n2 = n1 == kHeaderSize
                        ? Virtqueue::WriteTo(mem_, chain, kHeaderSize, frame.data(), frame_len)
                        : 0;
      written = static_cast<uint32_t>(n1 + n2);
    }
    Complete(kRxQueue, chain.head, written);
  }
}

void VirtioNet::SaveDevice(StateWriter& out) const {
  out.Begin("VNET", 1);
  for (uint8_t b : mac_) out.U8(b);
}

void VirtioNet::LoadDevice(StateReader& in) {
  in.Begin("VNET", 1);
  for (uint8_t b : mac_) {
    if (in.U8() != b) in.Fail("virtio-net MAC differs from the snapshot's");
  }
}

}  // namespace vmrr
