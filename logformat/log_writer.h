// LogWriter: appends records to a log, packing them into LZ4 frames that close by size or by
// age, splits snapshot blobs across frames, and at Finish writes the footer index and the
// trailer that mark the log as complete. Frames go to a ByteSink (a file descriptor for
// files and streaming, memory for tests) as soon as they close, so a recorder killed at any
// moment leaves every closed frame readable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "logformat/format.h"
#include "logformat/record.h"
#include "logformat/record_codec.h"

namespace vmrr::log {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  // Writes all bytes or throws LogError(kIo).
  virtual void Write(const uint8_t* data, size_t size) = 0;
  // Makes written bytes durable where that means something (fsync for files).
  virtual void Sync() {}
};

// Writes to a file descriptor; owns it (closes it) when `owned`.
class FdSink : public ByteSink {
 public:
  FdSink(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {}
  ~FdSink() override;
  void Write(const uint8_t* data, size_t size) override;
  void Sync() override;

 private:
  int fd_;
  bool owned_;
  std::string name_;
};

class VectorSink : public ByteSink {
 public:
  explicit VectorSink(std::vector<uint8_t>* out) : out_(out) {}
  void Write(const uint8_t* data, size_t size) override { out_->insert(out_->end(), data, data + size); }

 private:
  std::vector<uint8_t>* out_;
};

// 250 ms: fewer 48-byte frame headers than 100 ms (an idle guest's event stream ~2 KB per
// guest-second instead of ~2.4), and a killed recorder still loses at most the last frame.
inline constexpr uint64_t kDefaultMaxFrameAgeNs = 250'000'000;

struct WriterOptions {
  size_t max_frame_bytes = 256 * 1024;     // close a frame once its records reach this size
  // ... or once its first record is this old (0: never)
  uint64_t max_frame_age_ns = kDefaultMaxFrameAgeNs;
  bool compress = true;                    // LZ4; raw frames when off (or when LZ4 does not help)
  size_t snapshot_chunk_bytes = 1 << 20;   // snapshot blobs are split into chunks of this size
  // Host clock for frame age (the writer lives outside the machine; tests inject a clock).
  std::function<uint64_t()> clock;
};

class LogWriter {
 public:
  LogWriter(std::unique_ptr<ByteSink> sink, const LogHeader& header, WriterOptions options = {});
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Creates (or truncates) a log file; throws LogError(kIo) naming the path on failure.
  static std::unique_ptr<LogWriter> CreateFile(const std::string& path, const LogHeader& header,
                                               WriterOptions options = {});

  // Appends a record. icounts must never decrease (throws LogError(kInvalidArgument)).
  void Append(const Record& record);
  // Writes a snapshot blob as SnapshotChunk records (each frame holds at most one chunk and
  // no other record) followed by a Checkpoint record, and indexes it in the footer.
  void AppendSnapshot(uint64_t icount, uint64_t snapshot_id, std::span<const uint8_t> blob,
                      uint64_t state_digest);
  // Closes the open frame (if any) and writes it to the sink.
  void Flush();
  // Closes the open frame if it is older than max_frame_age_ns; call when idle.
  void Poll();
  // Appends the End record, flushes, writes the footer and trailer, syncs. No more appends.
  void Finish(uint64_t icount, const End& end);

  uint64_t bytes_written() const { return offset_; }
  uint64_t raw_bytes() const { return raw_bytes_; }
  size_t frames_written() const { return frames_.size(); }
  uint64_t records_written() const { return records_; }
  uint64_t last_icount() const { return last_icount_; }
  bool finished() const { return finished_; }

 private:
  void CloseFrame();
  void WriteOut(const uint8_t* data, size_t size);

  std::unique_ptr<ByteSink> sink_;
  WriterOptions options_;
  RecordEncoder encoder_;
  std::vector<uint8_t> raw_;         // records of the open frame
  std::vector<uint8_t> compressed_;  // scratch for LZ4
  std::vector<uint8_t> frame_buf_;   // header + payload of the frame being written
  uint32_t frame_records_ = 0;
  uint64_t frame_first_icount_ = 0;
  uint64_t frame_last_icount_ = 0;
  uint64_t frame_opened_ns_ = 0;
  uint64_t last_icount_ = 0;
  uint64_t offset_ = 0;
  uint64_t raw_bytes_ = 0;
  uint64_t records_ = 0;
  bool finished_ = false;
  std::vector<FrameInfo> frames_;
  std::vector<CheckpointInfo> checkpoints_;
};

}  // namespace vmrr::log
