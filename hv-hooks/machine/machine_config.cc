// MachineConfig's byte encoding and comparison.
#include "hv-hooks/machine/machine_config.h"

namespace vmrr {
namespace {
constexpr uint32_t kConfigVersion = 2;  // 2: the disk image path, write-through
constexpr uint64_t kMaxConfigMemory = 1ull << 40;
constexpr uint64_t kMaxPath = 4096;
}  // namespace

bool SameMachine(const MachineConfig& a, const MachineConfig& b) {
  MachineConfig x = a, y = b;
  if (x.disk_image && y.disk_image) x.disk_image = y.disk_image;
  return x == y;
}

std::string DescribeMachineDifference(const MachineConfig& a, const MachineConfig& b) {
  if (a.memory_bytes != b.memory_bytes)
    return "memory size (" + std::to_string(a.memory_bytes) + " vs " + std::to_string(b.memory_bytes) + " bytes)";
  if (a.clock_mode != b.clock_mode) return "clock mode";
  if (a.sample_interval != b.sample_interval) return "sample interval";
  if (a.icount_epoch_ns != b.icount_epoch_ns) return "icount epoch";
  if (a.disk_image.has_value() != b.disk_image.has_value() || a.disk_write_through != b.disk_write_through)
    return "disk configuration";
  if (a.net != b.net) return "network configuration";
  if (a.virtio_rng != b.virtio_rng) return "virtio-rng configuration";
  return "nothing";
}

void SaveMachineConfig(StateWriter& w, const MachineConfig& c) {
  w.Begin("MCFG", kConfigVersion);
  w.U64(c.memory_bytes);
  w.U8(static_cast<uint8_t>(c.clock_mode));
  w.U64(c.sample_interval);
  w.I64(c.icount_epoch_ns);
  w.Bool(c.disk_image.has_value());
  if (c.disk_image) {
    w.Bytes({reinterpret_cast<const uint8_t*>(c.disk_image->data()), c.disk_image->size()});
  }
  w.Bool(c.disk_write_through);
  w.Bool(c.net);
  w.Bool(c.virtio_rng);
}

MachineConfig LoadMachineConfig(StateReader& r) {
  r.Begin("MCFG", kConfigVersion);
  MachineConfig c;
  c.memory_bytes = r.U64();
  if (c.memory_bytes == 0 || c.memory_bytes > kMaxConfigMemory || c.memory_bytes % kGuestPageSize)
    r.Fail("MCFG: memory size is 0, above 1 TiB or not a multiple of 4 KiB");
  c.clock_mode = static_cast<VirtualClock::Mode>(r.Bounded(r.U8(), 1, "MCFG: clock mode"));
  c.sample_interval = r.U64();
  if (c.sample_interval == 0) r.Fail("MCFG: sample interval is 0");
  c.icount_epoch_ns = r.I64();
  if (r.Bool()) {
    const std::vector<uint8_t> path = r.Bytes(kMaxPath);
    c.disk_image = std::string(path.begin(), path.end());
  }
  c.disk_write_through = r.Bool();
  c.net = r.Bool();
  c.virtio_rng = r.Bool();
  return c;
}

}  // namespace vmrr
