// MachineConfig: everything that fixes what machine is built (memory, clock, devices), and its
// one byte encoding, used by machine snapshots (section "MCFG") and carried in log headers
// inside the session configuration. The decoder treats its input as hostile.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "hv-hooks/substrate/guest_memory.h"
#include "hv-hooks/substrate/state_io.h"
#include "hv-hooks/substrate/virtual_clock.h"

namespace vmrr {

struct MachineConfig {
  uint64_t memory_bytes = 128ull << 20;
  VirtualClock::Mode clock_mode = VirtualClock::Mode::kIcount;
  uint64_t sample_interval = VirtualClock::kDefaultSampleInterval;
  // icount mode: the wall-clock time guest time 0 corresponds to (RTC date).
  int64_t icount_epoch_ns = VirtualClock::kDefaultIcountEpochNs;
  // virtio-blk backing image; absent = no disk. Writes go to an in-memory overlay unless
  // disk_write_through.
  std::optional<std::string> disk_image;
  bool disk_write_through = false;
  bool net = false;  // virtio-net present (frames through the Environment)
  bool virtio_rng = true;

  bool operator==(const MachineConfig&) const = default;
};

// The machines two configurations build are the same machine (the disk image's path may
// differ: a replay may find the image elsewhere; its contents are checked by hash).
bool SameMachine(const MachineConfig& a, const MachineConfig& b);
// What differs between two configurations that are not SameMachine, for messages.
std::string DescribeMachineDifference(const MachineConfig& a, const MachineConfig& b);

// Section "MCFG". LoadMachineConfig throws StateError naming the field that is malformed or
// out of range (memory above 1 TiB or not page-aligned, unknown clock mode, zero interval,
// a path longer than 4 KiB).
void SaveMachineConfig(StateWriter& out, const MachineConfig& config);
MachineConfig LoadMachineConfig(StateReader& in);

}  // namespace vmrr
