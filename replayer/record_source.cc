// LogRecordSource and checkpoint positions.
#include "replayer/record_source.h"

#include <string>

namespace vmrr {

LogPosition PositionAfterCheckpoint(const log::LogReader& reader,
                                    const log::CheckpointInfo& checkpoint) {
  const auto& frames = reader.frames();
  size_t f = 0;
  while (f < frames.size() && frames[f].offset < checkpoint.first_chunk_frame_offset) ++f;
  std::vector<log::Record> records;
  for (; f < frames.size(); ++f) {
    if (frames[f].header.first_icount > checkpoint.icount) break;
    reader.ReadFrame(f, &records);
    for (size_t r = 0; r < records.size(); ++r) {
      const auto* cp = std::get_if<log::Checkpoint>(&records[r].body);
      if (cp && cp->snapshot_id == checkpoint.snapshot_id && records[r].icount == checkpoint.icount) {
        if (r + 1 < records.size()) return LogPosition{f, r + 1};
        return LogPosition{f + 1, 0};
      }
    }
  }
  throw log::LogError(log::ErrorCode::kDamaged, checkpoint.first_chunk_frame_offset,
                      "the Checkpoint record of snapshot " + std::to_string(checkpoint.snapshot_id) +
                          " at icount " + std::to_string(checkpoint.icount) + " is missing");
}

LogRecordSource::LogRecordSource(const log::LogReader& reader, LogPosition start)
    : reader_(reader), frame_(start.frame), record_(start.record) {}

bool LogRecordSource::Next(log::Record* out) {
  for (;;) {
    if (frame_ >= reader_.frames().size()) return false;
    if (!loaded_) {
      reader_.ReadFrame(frame_, &records_);
      loaded_ = true;
    }
    if (record_ < records_.size()) {
      *out = std::move(records_[record_++]);
      return true;
    }
    ++frame_;
    record_ = 0;
    loaded_ = false;
  }
}

}  // namespace vmrr
