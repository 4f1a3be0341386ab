// Every record kind of the vmrr log, in one place: the kind numbers (frozen on disk), one
// typed struct per kind, and the Record that carries a kind's struct with its icount.
// FORMAT.md gives the byte layout of each payload; record_codec.cc implements it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vmrr::log {

// On-disk kind numbers: never renumber. Kinds must stay below 32 (5 bits of the tag byte).
enum class RecordKind : uint8_t {
  kTimeSample = 1,
  kConsoleIn = 2,
  kNetRx = 3,
  kEntropy = 4,
  kIrqDelivered = 5,
  kOutput = 6,
  kDigest = 7,
  kCheckpoint = 8,
  kSnapshotChunk = 9,
  kMarker = 10,
  kEnd = 11,
  kIdleWake = 12,
};
inline constexpr unsigned kMaxRecordKind = 31;

// Host wall-clock time handed to the machine at a deterministic point.
struct TimeSample {
  int64_t host_ns = 0;
  bool operator==(const TimeSample&) const = default;
};
// Bytes typed on the guest console.
struct ConsoleIn {
  std::vector<uint8_t> bytes;
  bool operator==(const ConsoleIn&) const = default;
};
// One network frame received by the guest's NIC.
struct NetRx {
  std::vector<uint8_t> frame;
  bool operator==(const NetRx&) const = default;
};
// Host entropy handed to RDRAND/RDSEED or virtio-rng.
struct Entropy {
  std::vector<uint8_t> bytes;
  bool operator==(const Entropy&) const = default;
};
// What an idle wait with nothing scheduled reported: whether input may have arrived. The
// machine ends the run (halted forever) when it did not, so the answer is an input.
struct IdleWake {
  bool input = false;
  bool operator==(const IdleWake&) const = default;
};
// Verification: an interrupt vector the CPU accepted at this icount.
struct IrqDelivered {
  uint32_t vector = 0;
  bool operator==(const IrqDelivered&) const = default;
};
// Verification and output commit: running digest of everything a channel emitted so far.
enum class OutputChannel : uint8_t { kConsole = 0, kNet = 1 };
struct Output {
  OutputChannel channel = OutputChannel::kConsole;
  uint64_t total_bytes = 0;  // bytes emitted on the channel since power-on
  uint64_t digest = 0;       // running hash of those bytes
  bool operator==(const Output&) const = default;
};
// Verification: a hash of machine state.
enum class DigestScope : uint8_t { kCpu = 0, kMachine = 1 };
struct Digest {
  DigestScope scope = DigestScope::kCpu;
  uint64_t hash = 0;
  bool operator==(const Digest&) const = default;
};
// A machine snapshot taken at this icount; its bytes are the SnapshotChunks with this id,
// which precede the Checkpoint in the log.
struct Checkpoint {
  uint64_t snapshot_id = 0;
  uint64_t snapshot_size = 0;
  uint64_t state_digest = 0;
  bool operator==(const Checkpoint&) const = default;
};
// A piece of a snapshot blob; large blobs are split so that no frame exceeds its size limit.
struct SnapshotChunk {
  uint64_t snapshot_id = 0;
  uint64_t offset = 0;      // where these bytes go in the blob
  uint64_t total_size = 0;  // size of the whole blob
  std::vector<uint8_t> bytes;
  bool operator==(const SnapshotChunk&) const = default;
};
// A user annotation.
struct Marker {
  std::string text;
  bool operator==(const Marker&) const = default;
};
// Why and where a recording ended.
enum class EndReason : uint8_t {
  kGuestExit = 0,       // the guest wrote the debug-exit port
  kShutdown = 1,        // triple fault or power-off
  kInstructionLimit = 2,
  kStopped = 3,         // the user stopped the recording
  kError = 4,
  kPowerOff = 5,        // ACPI S5 (format 1.2)
  kReset = 6,           // the ACPI reset register (format 1.2)
};
struct End {
  EndReason reason = EndReason::kStopped;
  int32_t exit_code = 0;
  uint64_t final_digest = 0;
  bool operator==(const End&) const = default;
};
// A kind this build does not know (written by a newer minor version); kept so tools can
// show it, skipped by replay.
struct UnknownRecord {
  uint8_t kind = 0;
  std::vector<uint8_t> payload;
  bool operator==(const UnknownRecord&) const = default;
};

using RecordBody = std::variant<TimeSample, ConsoleIn, NetRx, Entropy, IrqDelivered, Output,
                                Digest, Checkpoint, SnapshotChunk, Marker, End, IdleWake,
                                UnknownRecord>;

struct Record {
  uint64_t icount = 0;
  RecordBody body;

  uint8_t kind_number() const;
  bool operator==(const Record&) const = default;
};

// The kinds that carry an input the machine consumes (the Environment's answers), as opposed to
// verification, snapshot and annotation records. The one list every reader uses.
inline constexpr bool IsInputKind(uint8_t kind) {
  switch (static_cast<RecordKind>(kind)) {
    case RecordKind::kTimeSample:
    case RecordKind::kConsoleIn:
    case RecordKind::kNetRx:
    case RecordKind::kEntropy:
    case RecordKind::kIdleWake:
      return true;
    default:
      return false;
  }
}

// "TimeSample", "ConsoleIn", ..., or "Unknown(kind)".
std::string KindName(uint8_t kind);
// Parses a kind name (as KindName prints it); 0 if unknown.
uint8_t KindFromName(std::string_view name);
const char* EndReasonName(EndReason reason);

}  // namespace vmrr::log
