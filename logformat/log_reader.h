// LogReader: opens a log (a file, mapped read-only, or bytes in memory), validates its header,
// finds its frames through the footer index or, for a log whose recorder never finished, by
// scanning, and decodes frames, seeks by icount and reassembles snapshots. Every size read
// from the file is bounded before anything is allocated; every failure names its offset.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "logformat/error.h"
#include "logformat/format.h"
#include "logformat/record.h"

namespace vmrr::log {

// How the log ends.
enum class TailState {
  kComplete,     // footer and trailer present and valid: the recorder finished
  kUnfinished,   // no footer, the file ends at a frame boundary (recorder killed between frames,
                 // or still recording)
  kCutMidFrame,  // the file ends inside a frame: every frame before it is whole
  kDamaged,      // a frame or the footer fails validation: frames before it are usable
};
const char* TailStateName(TailState state);

struct TailReport {
  TailState state = TailState::kComplete;
  uint64_t offset = 0;      // where the file ends or the damage is
  int64_t frame = -1;       // index of the frame concerned, -1 if none
  std::string message;      // what is wrong, for a user
};

// Parses a log header at the start of `bytes`; returns its total size (fixed part, body,
// checksum). Throws LogError(kNotALog / kNewerVersion / kTruncated / kDamaged).
size_t ParseHeader(std::span<const uint8_t> bytes, LogHeader* header);
// Parses and validates a frame header (magic, checksum, limits). Returns an empty string
// when valid, else the rule broken.
std::string ParseFrameHeader(const uint8_t bytes[kFrameHeaderSize], FrameHeader* header);

// Decodes the one frame at the start of `bytes` (a log being streamed: header, then payload),
// with every check ReadFrame makes. Returns the frame's size, or 0 when `bytes` holds only the
// start of a frame (more is to come); throws LogError(kDamaged) naming `offset` (where the
// frame starts in the stream) and the rule broken otherwise.
size_t DecodeFrame(std::span<const uint8_t> bytes, uint64_t offset, FrameHeader* header,
                   std::vector<Record>* out);

class LogReader {
 public:
  // Maps the file. Throws LogError for an unreadable file or an unusable header; a damaged or
  // cut-off body is not an error here but reported by tail().
  static LogReader Open(const std::string& path);
  static LogReader FromBytes(std::vector<uint8_t> bytes, std::string name = "<memory>");

  LogReader(LogReader&&) noexcept;
  LogReader& operator=(LogReader&&) noexcept;
  ~LogReader();

  const std::string& name() const { return name_; }
  const LogHeader& header() const { return header_; }
  uint64_t header_size() const { return header_size_; }
  uint64_t file_size() const { return size_; }
  // Every whole frame that passed validation, in file order.
  const std::vector<FrameInfo>& frames() const { return frames_; }
  const std::vector<CheckpointInfo>& checkpoints() const { return checkpoints_; }
  const TailReport& tail() const { return tail_; }
  bool complete() const { return tail_.state == TailState::kComplete; }

  // Decodes frame `index` into *out (resized to its record count). Verifies the payload
  // checksum, the decompressed size, every record and the frame's icount range; throws
  // LogError(kDamaged) naming the frame and offset otherwise.
  void ReadFrame(size_t index, std::vector<Record>* out) const;
  // Index of the first frame whose last icount is >= icount (frames().size() if none):
  // a binary search, O(log frames).
  size_t FindFrame(uint64_t icount) const;
  // Reassembles a snapshot blob from its chunks. Throws LogError(kDamaged) if incomplete.
  std::vector<uint8_t> ReadSnapshot(const CheckpointInfo& checkpoint) const;

 private:
  LogReader() = default;
  void Load();
  bool LoadFooter();  // true if a valid footer gave the index
  void Scan();
  std::span<const uint8_t> FramePayload(size_t index, std::vector<uint8_t>* scratch) const;
  [[noreturn]] void FrameError(size_t index, const std::string& what) const;

  std::string name_;
  std::vector<uint8_t> owned_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;  // munmap'ed on destruction
  LogHeader header_;
  uint64_t header_size_ = 0;
  std::vector<FrameInfo> frames_;
  std::vector<CheckpointInfo> checkpoints_;
  TailReport tail_;
};

}  // namespace vmrr::log
