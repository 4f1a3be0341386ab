// virtio-blk (device ID 2, one request queue) backed by a raw image file. Reads come from an
// overlay of written blocks over the base image; writes go to the overlay (kept in memory and
// saved in snapshots), so the base image is never changed unless opened with
// write_through_base. Requests are carried out when notified but complete (used ring +
// interrupt) at a deterministic guest time, kLatencyNs plus one ns per byte later, never when
// host I/O happens to finish. Supports IN, OUT, FLUSH and GET_ID; anything else is UNSUPP.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "hv-hooks/devices/virtio/virtio_mmio.h"

namespace vmrr {

class BlockImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class VirtioBlock : public VirtioMmioDevice {
 public:
  static constexpr uint64_t kSectorSize = 512;
  static constexpr uint64_t kOverlayBlock = 4096;
  static constexpr uint64_t kLatencyNs = 20000;
  static constexpr uint64_t kMaxRequestBytes = 1 << 20;  // larger requests fail with IOERR

  struct Options {
    std::string image_path;
    bool read_only = false;
    bool write_through_base = false;  // write to the image file itself
  };

  // Throws BlockImageError if the image cannot be opened.
  VirtioBlock(GuestMemory& mem, const VirtualClock& clock, IrqLine irq, const Options& options);
  ~VirtioBlock() override;

  uint64_t capacity_sectors() const { return capacity_sectors_; }
  uint64_t NextDeadlineNs() const override;
  void RunTimers() override;
  size_t overlay_blocks() const { return overlay_.size(); }
  std::string_view name() const override { return "virtio-blk"; }

 protected:
  uint32_t device_id() const override { return 2; }
  uint64_t device_features() const override;
  uint8_t ReadConfig(uint64_t offset) const override;
  uint64_t config_size() const override { return 0x24; }
  void QueueNotified(unsigned index) override;
  void ResetDevice() override { pending_.clear(); }
  void SaveDevice(StateWriter& out) const override;
  void LoadDevice(StateReader& in) override;

 private:
  struct Pending {
    uint64_t due_ns;
    uint16_t head;
    uint32_t written;
  };
  uint8_t Execute(const VirtqChain& chain, uint32_t* written);
  bool ReadDisk(uint64_t offset, uint8_t* out, uint64_t len);
  bool WriteDisk(uint64_t offset, const uint8_t* in, uint64_t len);

  Options options_;
  int fd_ = -1;
  uint64_t capacity_sectors_ = 0;
  std::map<uint64_t, std::vector<uint8_t>> overlay_;  // block index -> kOverlayBlock bytes
  std::deque<Pending> pending_;  // in submission order; due times never decrease
};

}  // namespace vmrr
