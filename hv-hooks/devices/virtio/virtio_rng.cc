// VirtioRng: entropy requests.
#include "hv-hooks/devices/virtio/virtio_rng.h"

#include <algorithm>
#include <vector>

namespace vmrr {

VirtioRng::VirtioRng(GuestMemory& mem, const VirtualClock& clock, IrqLine irq, Environment& env)
    : VirtioMmioDevice(mem, clock, irq, 1), env_(env) {}

void VirtioRng::QueueNotified(unsigned index) {
  VirtqChain chain;
  // Bounded by the queue size: each iteration consumes one available entry.
  for (unsigned n = 0; n < Virtqueue::kMaxSize && PopChain(index, &chain); ++n) {
    uint32_t want = static_cast<uint32_t>(
        std::min<uint64_t>(chain.writable_bytes, kMaxBytesPerRequest));
    if (chain.bad_address || chain.readable_bytes != 0) want = 0;  // refuse malformed requests
    std::vector<uint8_t> bytes(want);
    if (want) env_.GetEntropy(clock_.icount(), bytes);
    uint64_t written = Virtqueue::WriteTo(mem_, chain, 0, bytes.data(), want);
    Complete(index, chain.head, static_cast<uint32_t>(written));
  }
}

}  // namespace vmrr
