// VirtioBlock: request parsing, overlay I/O, deterministic completion.
#include "hv-hooks/devices/virtio/virtio_blk.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmrr {

namespace {
enum : uint32_t { kTypeIn = 0, kTypeOut = 1, kTypeFlush = 4, kTypeGetId = 8 };
enum : uint8_t { kStatusOk = 0, kStatusIoErr = 1, kStatusUnsupp = 2 };
constexpr uint64_t kFeatureRo = 1ull << 5;
constexpr uint64_t kFeatureBlkSize = 1ull << 6;
constexpr uint64_t kFeatureFlush = 1ull << 9;
constexpr uint64_t kFeatureSegMax = 1ull << 2;
}  // namespace

VirtioBlock::VirtioBlock(GuestMemory& mem, const VirtualClock& clock, IrqLine irq,
                         std::unique_ptr<DiskBackend> disk, const Options& options)
    : VirtioMmioDevice(mem, clock, irq, 1), disk_(std::move(disk)), options_(options) {
  capacity_sectors_ = disk_->size_bytes() / kSectorSize;
}

VirtioBlock::~VirtioBlock() = default;

bool VirtioBlock::HostOk(bool ok) {
  if (ok) return true;
  host_failed_ = true;
  if (!on_host_error_) throw std::logic_error("virtio-blk: " + disk_->error() + " (no host error handler)");
  on_host_error_(disk_->error());
  return false;
}

uint64_t VirtioBlock::device_features() const {
  return kFeatureFlush | kFeatureBlkSize | kFeatureSegMax | (options_.read_only ? kFeatureRo : 0);
}

uint8_t VirtioBlock::ReadConfig(uint64_t offset) const {
  // struct virtio_blk_config: capacity (le64) at 0, size_max at 8, seg_max at 12,
  // geometry at 16, blk_size at 20.
  if (offset < 8) return static_cast<uint8_t>(capacity_sectors_ >> (8 * offset));
  if (offset >= 12 && offset < 16) {
    uint32_t seg_max = Virtqueue::kMaxSize - 2;  // header and status take two descriptors
    return static_cast<uint8_t>(seg_max >> (8 * (offset - 12)));
  }
  if (offset >= 20 && offset < 24) {
    return static_cast<uint8_t>(static_cast<uint32_t>(kSectorSize) >> (8 * (offset - 20)));
  }
  return 0;
}

bool VirtioBlock::ReadDisk(uint64_t offset, uint8_t* out, uint64_t len) {
  while (len) {
    uint64_t block = offset / kOverlayBlock, in_block = offset % kOverlayBlock;
    uint64_t n = std::min(len, kOverlayBlock - in_block);
    auto it = overlay_.find(block);
    if (it != overlay_.end()) {
      std::memcpy(out, it->second.data() + in_block, n);
    } else if (!HostOk(disk_->Read(offset, out, n))) {
      return false;
    }
    out += n;
    offset += n;
    len -= n;
  }
  return true;
}

bool VirtioBlock::ExportImage(const std::string& path, std::string* error) const {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = path + ": cannot create: " + std::strerror(errno);
    return false;
  }
  const uint64_t size = disk_->size_bytes();
  std::vector<uint8_t> buf(kOverlayBlock);
  bool ok = true;
  for (uint64_t off = 0; ok && off < size; off += kOverlayBlock) {
    const uint64_t n = std::min<uint64_t>(kOverlayBlock, size - off);
    auto it = overlay_.find(off / kOverlayBlock);
    const uint8_t* p = buf.data();
    if (options_.write_through_base || it == overlay_.end()) {
      if (!disk_->Read(off, buf.data(), n)) {
        *error = "the disk image: " + disk_->error();
        ok = false;
        break;
      }
    } else {
      p = it->second.data();
    }
    for (uint64_t done = 0; done < n;) {
      const ssize_t w = ::write(fd, p + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        *error = path + ": write failed: " + std::strerror(errno);
        ok = false;
        break;
      }
      done += static_cast<uint64_t>(w);
    }
  }
  if (::close(fd) != 0 && ok) {
    *error = path + ": " + std::strerror(errno);
    ok = false;
  }
  return ok;
}

bool VirtioBlock::WriteDisk(uint64_t offset, const uint8_t* in, uint64_t len) {
  if (options_.write_through_base) return HostOk(disk_->Write(offset, in, len));
  while (len) {
    uint64_t block = offset / kOverlayBlock, in_block = offset % kOverlayBlock;
    uint64_t n = std::min(len, kOverlayBlock - in_block);
    auto it = overlay_.find(block);
    if (it == overlay_.end()) {
      std::vector<uint8_t> data(kOverlayBlock);
      if (!ReadDisk(block * kOverlayBlock, data.data(), kOverlayBlock)) return false;
      it = overlay_.emplace(block, std::move(data)).first;
    }
    std::memcpy(it->second.data() + in_block, in, n);
    in += n;
    offset += n;
    len -= n;
  }
  return true;
}

uint8_t VirtioBlock::Execute(const VirtqChain& chain, uint32_t* written) {
  // Layout: 16-byte header (readable), data, 1 status byte (the last writable byte).
  uint8_t header[16];
  if (Virtqueue::ReadFrom(mem_, chain, 0, header, 16) != 16) return kStatusIoErr;
  uint32_t type;
  uint64_t sector;
  std::memcpy(&type, header, 4);
  std::memcpy(&sector, header + 8, 8);
  uint64_t data_out = chain.readable_bytes - 16;          // OUT payload
  uint64_t data_in = chain.writable_bytes - 1;            // IN space before the status byte
  switch (type) {
    case kTypeIn: {
      if (data_in % kSectorSize || data_in > kMaxRequestBytes) return kStatusIoErr;
      if (sector > capacity_sectors_ || data_in / kSectorSize > capacity_sectors_ - sector) {
        return kStatusIoErr;
      }
      std::vector<uint8_t> buf(data_in);
      if (!ReadDisk(sector * kSectorSize, buf.data(), data_in)) return kStatusIoErr;
      Virtqueue::WriteTo(mem_, chain, 0, buf.data(), data_in);
      *written += static_cast<uint32_t>(data_in);
      return kStatusOk;
    }
    case kTypeOut: {
      if (options_.read_only) return kStatusIoErr;
      if (data_out % kSectorSize || data_out > kMaxRequestBytes) return kStatusIoErr;
      if (sector > capacity_sectors_ || data_out / kSectorSize > capacity_sectors_ - sector) {
        return kStatusIoErr;
      }
      std::vector<uint8_t> buf(data_out);
      Virtqueue::ReadFrom(mem_, chain, 16, buf.data(), data_out);
      return WriteDisk(sector * kSectorSize, buf.data(), data_out) ? kStatusOk : kStatusIoErr;
    }
    case kTypeFlush:
      // The overlay is memory and snapshots carry it; a write-through base is synced.
      if (options_.write_through_base) HostOk(disk_->Flush());
      return kStatusOk;
    case kTypeGetId: {
      static constexpr char kId[20] = "vmrr-virtio-blk";
      uint64_t n = std::min<uint64_t>(data_in, sizeof kId);
      Virtqueue::WriteTo(mem_, chain, 0, kId, n);
      *written += static_cast<uint32_t>(n);
      return kStatusOk;
    }
  }
  return kStatusUnsupp;
}

void VirtioBlock::QueueNotified(unsigned index) {
  VirtqChain chain;
  for (unsigned n = 0; n < Virtqueue::kMaxSize && PopChain(index, &chain); ++n) {
    if (chain.readable_bytes < 16 || chain.writable_bytes < 1) {
      // No header or no status byte: there is nowhere to report an error.
      MarkNeedsReset("virtio-blk request without header or status byte");
      return;
    }
    if (pending_.size() >= Virtqueue::kMaxSize) {
      // A driver cannot have more requests in flight than its queue holds; one that does is
      // reusing descriptors it has not got back.
      MarkNeedsReset("virtio-blk: more requests in flight than the queue size");
      return;
    }
    uint32_t written = 0;
    host_failed_ = false;
    uint8_t status = chain.bad_address ? static_cast<uint8_t>(kStatusIoErr) : Execute(chain, &written);
    // The host failed this request: it is never completed (the machine is stopping), so the
    // guest cannot see an error that a replay of the recording would not reproduce.
    if (host_failed_) return;
    // The status byte is the last writable byte of the chain.
    Virtqueue::WriteTo(mem_, chain, chain.writable_bytes - 1, &status, 1);
    written += 1;
    uint64_t bytes = chain.readable_bytes + chain.writable_bytes;
    uint64_t due = clock_.NowNs() + kLatencyNs + std::min<uint64_t>(bytes, kMaxRequestBytes);
    // Completions stay in submission order: a later request never overtakes an earlier one.
    if (!pending_.empty()) due = std::max(due, pending_.back().due_ns);
    pending_.push_back({due, chain.head, written});
  }
}

uint64_t VirtioBlock::NextDeadlineNs() const {
  return pending_.empty() ? kNoDeadline : pending_.front().due_ns;
}

void VirtioBlock::RunTimers() {
  uint64_t now = clock_.NowNs();
  while (!pending_.empty() && pending_.front().due_ns <= now) {
    Pending p = pending_.front();
    pending_.pop_front();
    if (DriverOk()) Complete(0, p.head, p.written);
  }
}

void VirtioBlock::SaveDevice(StateWriter& out) const {
  out.Begin("VBLK", 1);
  out.U64(capacity_sectors_);
  out.U32(static_cast<uint32_t>(pending_.size()));
  for (const Pending& p : pending_) {
    out.U64(p.due_ns);
    out.U16(p.head);
    out.U32(p.written);
  }
  out.U64(overlay_.size());
  for (const auto& [block, data] : overlay_) {
    out.U64(block);
    out.Bytes(data);
  }
}

void VirtioBlock::LoadDevice(StateReader& in) {
  in.Begin("VBLK", 1);
  if (in.U64() != capacity_sectors_) in.Fail("disk image size differs from the snapshot's");
  uint32_t npending = static_cast<uint32_t>(in.Bounded(in.U32(), Virtqueue::kMaxSize,
                                                       "virtio-blk pending requests"));
  std::deque<Pending> pending;
  for (uint32_t i = 0; i < npending; ++i) {
    Pending p;
    p.due_ns = in.U64();
    p.head = static_cast<uint16_t>(in.Bounded(in.U16(), Virtqueue::kMaxSize - 1, "request head"));
    p.written = in.U32();
    pending.push_back(p);
  }
  uint64_t max_blocks = (capacity_sectors_ * kSectorSize + kOverlayBlock - 1) / kOverlayBlock;
  uint64_t nblocks = in.Bounded(in.U64(), max_blocks, "virtio-blk overlay blocks");
  std::map<uint64_t, std::vector<uint8_t>> overlay;
  for (uint64_t i = 0; i < nblocks; ++i) {
    uint64_t block = in.Bounded(in.U64(), max_blocks - 1, "overlay block index");
    std::vector<uint8_t> data = in.Bytes(kOverlayBlock);
    if (data.size() != kOverlayBlock) in.Fail("overlay block has the wrong size");
    if (!overlay.emplace(block, std::move(data)).second) in.Fail("overlay block repeated");
  }
  pending_ = std::move(pending);
  overlay_ = std::move(overlay);
}

}  // namespace vmrr
