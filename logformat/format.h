// The on-disk layout of a vmrr log: magics, version, limits, the header and the frame
// header. FORMAT.md is the byte-level specification; this file is its C++ mirror.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vmrr::log {

// Format version. Bump the minor version for additions an older reader can skip (new record
// kinds, new header fields at the end of the body); bump the major version for anything else.
inline constexpr uint16_t kFormatMajor = 1;
// 1: IdleWake records. 2: End reasons 5 (power-off) and 6 (reset); a 1.1 reader reports the
// End record of such a log as damaged (every record before it stays readable). 3: checkpoints
// after the first may hold delta snapshots (the pages written since the checkpoint before);
// a 1.2 reader replays such a log from its start but refuses to load those checkpoints.
inline constexpr uint16_t kFormatMinor = 3;

inline constexpr std::array<uint8_t, 8> kFileMagic = {'V', 'M', 'R', 'R', 'L', 'O', 'G', 0x1a};
inline constexpr std::array<uint8_t, 4> kFrameMagic = {'V', 'F', 'R', 'M'};
inline constexpr std::array<uint8_t, 4> kFooterMagic = {'V', 'F', 'T', 'R'};
inline constexpr std::array<uint8_t, 8> kTrailerMagic = {'V', 'M', 'R', 'R', 'E', 'N', 'D', '1'};

// Limits every reader enforces before it allocates anything.
inline constexpr uint32_t kMaxHeaderBody = 1u << 20;         // 1 MiB
inline constexpr uint32_t kMaxFrameRawSize = 8u << 20;       // 8 MiB uncompressed per frame
inline constexpr uint32_t kMaxFrameStoredSize = 9u << 20;    // >= LZ4_compressBound(8 MiB)
inline constexpr uint64_t kMaxFooterSize = 1ull << 30;       // 1 GiB of index
inline constexpr uint64_t kMaxSnapshotSize = 1ull << 40;     // 1 TiB blob (grown as chunks arrive)
inline constexpr size_t kMaxImageHashes = 4096;

inline constexpr size_t kHeaderFixedSize = 16;  // magic, major, minor, body size
inline constexpr size_t kFrameHeaderSize = 48;
inline constexpr size_t kTrailerSize = 32;
inline constexpr size_t kFooterFrameEntrySize = 28;
inline constexpr size_t kFooterCheckpointEntrySize = 32;

enum class FrameCodec : uint8_t { kRaw = 0, kLz4 = 1 };

// A disk image the recording depends on, named by its hash.
struct ImageHash {
  std::string name;                 // role and file name, e.g. "disk:rootfs.img"
  uint64_t size = 0;                // bytes
  std::array<uint8_t, 16> xxh128{};  // XXH3 128-bit digest of the whole image
  bool operator==(const ImageHash&) const = default;
};

struct LogHeader {
  uint16_t major = kFormatMajor;
  uint16_t minor = kFormatMinor;
  std::string engine_version;        // vmrr version that wrote the log
  std::string host_description;      // host name, kernel, CPU of the recording host
  uint64_t creation_time_unix_ns = 0;
  std::vector<uint8_t> machine_config;  // opaque to logformat: the machine's own encoding
  std::vector<ImageHash> images;
  bool operator==(const LogHeader&) const = default;
};

struct FrameHeader {
  uint32_t stored_size = 0;  // payload bytes in the file
  uint32_t raw_size = 0;     // payload bytes after decompression
  uint32_t record_count = 0;
  FrameCodec codec = FrameCodec::kLz4;
  uint64_t first_icount = 0;
  uint64_t last_icount = 0;
  uint64_t payload_checksum = 0;  // XXH3-64 of the stored payload
};

// Where a frame sits in the file, and what it holds.
struct FrameInfo {
  uint64_t offset = 0;  // of the frame header
  FrameHeader header;
  uint64_t end_offset() const { return offset + kFrameHeaderSize + header.stored_size; }
};

// Where a snapshot (checkpoint) sits: its icount and the frame holding its first chunk.
struct CheckpointInfo {
  uint64_t icount = 0;
  uint64_t snapshot_id = 0;
  uint64_t snapshot_size = 0;
  uint64_t first_chunk_frame_offset = 0;
  bool operator==(const CheckpointInfo&) const = default;
};

// Serialises the header (fixed part, body, checksum).
std::vector<uint8_t> EncodeHeader(const LogHeader& header);
// Serialises a frame header for a payload.
void EncodeFrameHeader(const FrameHeader& header, uint8_t out[kFrameHeaderSize]);

}  // namespace vmrr::log
