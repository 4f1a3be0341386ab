// virtio-blk (device ID 2, one request queue) on a DiskBackend (the host side of the image).
// Reads come from an overlay of written blocks over the base image; writes go to the overlay
// (kept in memory and saved in snapshots), so the base image is never changed unless
// write_through_base. A backend failure is a host error (on_host_error): the request is
// dropped, never completed with an error the guest would see, and the machine stops there.
// Requests are carried out when notified but complete (used ring + interrupt) at a
// deterministic guest time, kLatencyNs plus one ns per byte later, never when host I/O
// happens to finish. Supports IN, OUT, FLUSH and GET_ID; anything else is UNSUPP.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <map>
#include <string>
#include <vector>

#include "hv-hooks/devices/virtio/disk_backend.h"
#include "hv-hooks/devices/virtio/virtio_mmio.h"

namespace vmrr {

class VirtioBlock : public VirtioMmioDevice {
 public:
  static constexpr uint64_t kSectorSize = 512;
  static constexpr uint64_t kOverlayBlock = 4096;
  static constexpr uint64_t kLatencyNs = 20000;
  static constexpr uint64_t kMaxRequestBytes = 1 << 20;  // larger requests fail with IOERR

  struct Options {
    bool read_only = false;
    bool write_through_base = false;  // write to the image itself (the backend must be writable)
  };

  VirtioBlock(GuestMemory& mem, const VirtualClock& clock, IrqLine irq,
              std::unique_ptr<DiskBackend> disk, const Options& options);
  ~VirtioBlock() override;
  // Called on the machine's thread when the backend fails, with its message; the board stops
  // the machine (Machine::StopForHostError). Without one, a failure is a logic_error.
  void set_host_error_handler(std::function<void(const std::string&)> handler) {
    on_host_error_ = std::move(handler);
  }

  uint64_t capacity_sectors() const { return capacity_sectors_; }
  uint64_t NextDeadlineNs() const override;
  void RunTimers() override;
  size_t overlay_blocks() const { return overlay_.size(); }
  // The disk as the guest sees it now (the base image with the overlay's blocks), all
  // size_bytes() of it, written to `path` (created or truncated). The machine is not touched;
  // false and *error (naming the file or the image) if a read or write fails.
  bool ExportImage(const std::string& path, std::string* error) const;
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

  // false after reporting the backend's failure.
  bool HostOk(bool ok);

  std::unique_ptr<DiskBackend> disk_;
  Options options_;
  std::function<void(const std::string&)> on_host_error_;
  bool host_failed_ = false;
  uint64_t capacity_sectors_ = 0;
  std::map<uint64_t, std::vector<uint8_t>> overlay_;  // block index -> kOverlayBlock bytes
  std::deque<Pending> pending_;  // in submission order; due times never decrease
};

}  // namespace vmrr
