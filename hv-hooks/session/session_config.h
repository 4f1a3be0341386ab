// What a log's header carries in its (format-opaque) machine-configuration bytes: the
// MachineConfig the recording ran with (in its own encoding, machine_config.h), the kernel it booted and the recording parameters a
// replay needs to interpret the log (digest and checkpoint intervals, whether interrupt
// records were written). EncodeSessionConfig/DecodeSessionConfig own that byte encoding;
// the decoder treats its input as hostile (it comes from a log file).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "hv-hooks/machine/machine_config.h"

namespace vmrr {

struct SessionConfig {
  MachineConfig machine;
  std::string kernel_path;  // as given to the recorder (informative: the kernel is in the
                            // initial snapshot, a replay does not need the file)
  std::string initrd_path;  // --initrd, as given (informative, like kernel_path); empty: none
  std::string cmdline;      // --append: the kernel command line (at most 4096 bytes)
  uint64_t digest_interval = 1'000'000;       // Digest{cpu} every this many instructions
  uint64_t checkpoint_interval = 50'000'000;  // Checkpoint + Digest{machine} every this many
  bool irq_records = true;                    // IrqDelivered records written
  // Digest{machine} (CPU, devices, clock, all RAM) every this many instructions (a multiple
  // of digest_interval; checkpoints always carry one). Dense whole-machine digests let a
  // divergence search pin a bad logged input to its icount; they cost a RAM hash each.
  // Encoded after irq_records; logs without it use checkpoint_interval.
  uint64_t machine_digest_interval = 50'000'000;
  bool operator==(const SessionConfig&) const = default;
};

class SessionConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// 2: the machine configuration in MachineConfig's own encoding (one codec for snapshots and
// logs), and the state digests of the CPU state version that carries the TLB. Version 1
// logs are refused: their digests were computed over a different CPU state. 3: CPU state
// version 4 (x87/MMX/SSE registers) in snapshots and digests; version 2 logs are refused.
// 4: the platform gained the ACPI power registers (a device in every saved state and digest)
// and the CPU advertises x87/SSE; the initrd path and the kernel command line follow
// machine_digest_interval. Version 3 logs are refused. 5: the platform gained QEMU's fw_cfg
// (a device in every saved state and digest), isa-debug-exit answers on all four ports, and
// the Multiboot loader places its structures where the image leaves room. Version 4 logs
// are refused.
inline constexpr uint16_t kSessionConfigVersion = 5;

std::vector<uint8_t> EncodeSessionConfig(const SessionConfig& config);
// Throws SessionConfigError naming the field that is malformed or out of range. Bytes after
// the known fields (a newer minor encoding) are ignored.
SessionConfig DecodeSessionConfig(std::span<const uint8_t> bytes);

}  // namespace vmrr

namespace vmrr {

// The text of the Marker record written just before End: the recording's wall time, which
// replay uses to compare speeds.
inline constexpr const char* kWallTimeMarkerPrefix = "vmrr-record wall_ns=";

}  // namespace vmrr
