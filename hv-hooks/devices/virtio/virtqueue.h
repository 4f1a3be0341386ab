// One split virtqueue (virtio 1.x, section 2.7) seen from the device: popping descriptor chains
// from the available ring, pushing them to the used ring, and copying bytes in and out of a
// chain's buffers. All ring memory is guest RAM and hostile: every index, address and length
// is checked, every walk is bounded by the queue size, nothing is allocated in proportion to
// a guest-supplied length, and a structural violation reports Broken so that the device can
// set DEVICE_NEEDS_RESET instead of trusting the queue again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hv-hooks/substrate/guest_memory.h"
#include "hv-hooks/substrate/state_io.h"

namespace vmrr {

struct VirtqBuffer {
  uint64_t addr = 0;
  uint32_t len = 0;
  bool device_writable = false;
};

struct VirtqChain {
  uint16_t head = 0;
  std::vector<VirtqBuffer> buffers;  // at most queue-size entries
  uint64_t readable_bytes = 0;      // sum of device-readable lengths
  uint64_t writable_bytes = 0;
  // Some buffer lies (partly) outside guest RAM: the chain is well-formed, so the device can
  // complete it with its error status, but no data moves through that buffer.
  bool bad_address = false;
};

class Virtqueue {
 public:
  static constexpr uint16_t kMaxSize = 256;

  enum class PopResult { kChain, kEmpty, kBroken };

  // Registers written by the driver through the transport.
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc_addr = 0;
  uint64_t avail_addr = 0;
  uint64_t used_addr = 0;
  // Device-side progress.
  uint16_t next_avail = 0;
  uint16_t next_used = 0;

  void Reset() { *this = Virtqueue{}; }

  // The queue's configuration is usable: size a power of two <= kMaxSize, rings aligned
  // (16/2/4) and wholly inside RAM. why (if non-null) says what is wrong.
  bool Valid(const GuestMemory& mem, std::string* why) const;
  // The driver has made a chain available that the device has not taken yet (false if the
  // queue is invalid or the ring index is corrupt).
  bool HasAvailable(const GuestMemory& mem) const;
  PopResult Pop(const GuestMemory& mem, VirtqChain* chain, std::string* why);
  // Returns the chain to the driver with the number of bytes written into it.
  bool PushUsed(GuestMemory& mem, uint16_t head, uint32_t written);
  // The driver asked not to be interrupted (VIRTQ_AVAIL_F_NO_INTERRUPT; no EVENT_IDX).
  bool InterruptSuppressed(const GuestMemory& mem) const;

  // Copies up to len bytes starting at byte `offset` of the chain's readable (or writable)
  // part; returns the bytes copied. Buffers outside RAM are skipped (the chain is flagged).
  static uint64_t ReadFrom(const GuestMemory& mem, const VirtqChain& chain, uint64_t offset,
                           void* out, uint64_t len);
  static uint64_t WriteTo(GuestMemory& mem, const VirtqChain& chain, uint64_t offset,
                          const void* in, uint64_t len);

  void Save(StateWriter& out) const;
  void Load(StateReader& in);
};

}  // namespace vmrr
