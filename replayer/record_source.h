// Where a replay takes its records from: a RecordSource yields records in log order. The
// log-backed source streams one decoded frame at a time from a LogReader, starting right
// after a given checkpoint (records at the checkpoint's icount that precede its Checkpoint
// record happened before the snapshot was taken); the vector source serves tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "logformat/log_reader.h"
#include "logformat/record.h"

namespace vmrr {

class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // The next record; false at the end of the stream (or, for a source that may grow, at the
  // end of what it holds so far).
  virtual bool Next(log::Record* out) = 0;
  // True for a log still being received (a shadow's): Next returning false is then not the
  // end, and a later Next may return more.
  virtual bool MayGrow() const { return false; }
};

class VectorRecordSource : public RecordSource {
 public:
  explicit VectorRecordSource(std::vector<log::Record> records) : records_(std::move(records)) {}
  bool Next(log::Record* out) override {
    if (pos_ >= records_.size()) return false;
    *out = records_[pos_++];
    return true;
  }

 private:
  std::vector<log::Record> records_;
  size_t pos_ = 0;
};

// A position in a log: record `record` of frame `frame`.
struct LogPosition {
  size_t frame = 0;
  size_t record = 0;
};

// The position just after the Checkpoint record of `checkpoint`. Throws LogError(kDamaged)
// if the log does not hold that Checkpoint record.
LogPosition PositionAfterCheckpoint(const log::LogReader& reader,
                                    const log::CheckpointInfo& checkpoint);

class LogRecordSource : public RecordSource {
 public:
  // Reads frames of `reader` (which must outlive this) from `start`. ReadFrame errors
  // (LogError kDamaged) propagate.
  LogRecordSource(const log::LogReader& reader, LogPosition start);
  bool Next(log::Record* out) override;
  // Where the next record comes from; Seek goes back (or forward) to such a position.
  LogPosition position() const { return LogPosition{frame_, record_}; }
  void Seek(LogPosition p) {
    if (p.frame != frame_) loaded_ = false;
    frame_ = p.frame;
    record_ = p.record;
  }

 private:
  const log::LogReader& reader_;
  size_t frame_;
  size_t record_;
  bool loaded_ = false;
  std::vector<log::Record> records_;
};

}  // namespace vmrr
