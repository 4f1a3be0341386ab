// LogWriter: frame packing, LZ4 compression, snapshot chunking, footer and trailer.
#include "logformat/log_writer.h"

#include <fcntl.h>
#include <lz4.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "logformat/byte_order.h"
#include "logformat/error.h"

namespace vmrr::log {

FdSink::~FdSink() {
  if (owned_ && fd_ >= 0) ::close(fd_);
}

void FdSink::Write(const uint8_t* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd_, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw LogError(ErrorCode::kIo, 0, name_ + ": write failed: " + std::strerror(errno));
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void FdSink::Sync() {
  // fsync fails with EINVAL on pipes and sockets, where there is nothing to make durable.
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS)
    throw LogError(ErrorCode::kIo, 0, name_ + ": fsync failed: " + std::strerror(errno));
}

LogWriter::LogWriter(std::unique_ptr<ByteSink> sink, const LogHeader& header, WriterOptions options)
    : sink_(std::move(sink)), options_(std::move(options)) {
  if (!options_.clock) {
    options_.clock = [] {
      return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now().time_since_epoch())
                                       .count());
    };
  }
  if (options_.max_frame_bytes == 0 || options_.max_frame_bytes > kMaxFrameRawSize / 2)
    throw LogError(ErrorCode::kInvalidArgument, 0, "max_frame_bytes must be in 1..4 MiB");
  if (options_.snapshot_chunk_bytes == 0 || options_.snapshot_chunk_bytes > kMaxFrameRawSize / 2)
    throw LogError(ErrorCode::kInvalidArgument, 0, "snapshot_chunk_bytes must be in 1..4 MiB");
  std::vector<uint8_t> bytes = EncodeHeader(header);
  WriteOut(bytes.data(), bytes.size());
  raw_.reserve(options_.max_frame_bytes + 4096);
}

LogWriter::~LogWriter() {
  // A writer dropped without Finish (an error path) still hands over its closed records, so the
  // log stays readable as an unfinished one; errors here have nowhere to go.
  if (!finished_) {
    try {
      Flush();
    } catch (const LogError&) {
    }
  }
}

std::unique_ptr<LogWriter> LogWriter::CreateFile(const std::string& path, const LogHeader& header,
                                                 WriterOptions options) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw LogError(ErrorCode::kIo, 0, path + ": cannot create log: " + std::strerror(errno));
  return std::make_unique<LogWriter>(std::make_unique<FdSink>(fd, true, path), header,
                                     std::move(options));
}

void LogWriter::WriteOut(const uint8_t* data, size_t size) {
  sink_->Write(data, size);
  offset_ += size;
}

void LogWriter::Append(const Record& record) {
  if (finished_) throw LogError(ErrorCode::kInvalidArgument, offset_, "append after Finish");
  if (record.icount < last_icount_)
    throw LogError(ErrorCode::kInvalidArgument, offset_,
                   "record icount " + std::to_string(record.icount) + " is below the previous " +
                       std::to_string(last_icount_));
  if (const auto* c = std::get_if<SnapshotChunk>(&record.body);
      c && (c->total_size > kMaxSnapshotSize || c->offset > c->total_size ||
            c->bytes.size() > c->total_size - c->offset))
    throw LogError(ErrorCode::kInvalidArgument, offset_, "snapshot chunk lies outside its snapshot");
  if (const auto* u = std::get_if<UnknownRecord>(&record.body);
      u && (u->kind == 0 || u->kind > kMaxRecordKind || u->kind <= uint8_t(RecordKind::kEnd)))
    throw LogError(ErrorCode::kInvalidArgument, offset_,
                   "unknown record kind " + std::to_string(u->kind) + " is reserved or out of range");
  if (frame_records_ == 0) {
    frame_first_icount_ = record.icount;
    encoder_.Reset(record.icount);
    frame_opened_ns_ = options_.max_frame_age_ns ? options_.clock() : 0;
  }
  size_t before = raw_.size();
  encoder_.Encode(record, raw_);
  if (raw_.size() - before > kMaxFrameRawSize / 2)
    throw LogError(ErrorCode::kInvalidArgument, offset_,
                   "a single " + KindName(record.kind_number()) + " record exceeds 4 MiB");
  ++frame_records_;
  ++records_;
  frame_last_icount_ = last_icount_ = record.icount;
  if (raw_.size() >= options_.max_frame_bytes) {
    CloseFrame();
  } else if (options_.max_frame_age_ns && options_.clock() - frame_opened_ns_ >= options_.max_frame_age_ns) {
    CloseFrame();
  }
}

void LogWriter::AppendSnapshot(uint64_t icount, uint64_t snapshot_id, std::span<const uint8_t> blob,
                               uint64_t state_digest) {
  if (blob.size() > kMaxSnapshotSize)
    throw LogError(ErrorCode::kInvalidArgument, offset_, "snapshot exceeds the 1 TiB limit");
  Flush();
  CheckpointInfo info{icount, snapshot_id, blob.size(), offset_};
  size_t chunk = options_.snapshot_chunk_bytes;
  uint64_t pos = 0;
  do {
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, blob.size() - pos));
    SnapshotChunk c{snapshot_id, pos, blob.size(),
                    std::vector<uint8_t>(blob.begin() + pos, blob.begin() + pos + n)};
    Append(Record{icount, std::move(c)});
    Flush();
    pos += n;
  } while (pos < blob.size());
  Append(Record{icount, Checkpoint{snapshot_id, blob.size(), state_digest}});
  checkpoints_.push_back(info);
}

void LogWriter::Flush() {
  if (frame_records_ > 0) CloseFrame();
}

void LogWriter::Poll() {
  if (frame_records_ > 0 && options_.max_frame_age_ns &&
      options_.clock() - frame_opened_ns_ >= options_.max_frame_age_ns)
    CloseFrame();
}

void LogWriter::CloseFrame() {
  FrameHeader h;
  h.raw_size = static_cast<uint32_t>(raw_.size());
  h.record_count = frame_records_;
  h.first_icount = frame_first_icount_;
  h.last_icount = frame_last_icount_;
  const uint8_t* payload = raw_.data();
  size_t payload_size = raw_.size();
  h.codec = FrameCodec::kRaw;
  if (options_.compress) {
    compressed_.resize(static_cast<size_t>(LZ4_compressBound(static_cast<int>(raw_.size()))));
    int n = LZ4_compress_default(reinterpret_cast<const char*>(raw_.data()),
                                 reinterpret_cast<char*>(compressed_.data()),
                                 static_cast<int>(raw_.size()), static_cast<int>(compressed_.size()));
    if (n > 0 && static_cast<size_t>(n) < raw_.size()) {
      payload = compressed_.data();
      payload_size = static_cast<size_t>(n);
      h.codec = FrameCodec::kLz4;
    }
  }
  h.stored_size = static_cast<uint32_t>(payload_size);
  h.payload_checksum = XXH3_64bits(payload, payload_size);
  uint8_t head[kFrameHeaderSize];
  EncodeFrameHeader(h, head);
  FrameInfo info{offset_, h};
  // One write per frame, so a file cut by a crash ends at a frame boundary far more often.
  frame_buf_.resize(kFrameHeaderSize + payload_size);
  std::memcpy(frame_buf_.data(), head, kFrameHeaderSize);
  std::memcpy(frame_buf_.data() + kFrameHeaderSize, payload, payload_size);
  WriteOut(frame_buf_.data(), frame_buf_.size());
  frames_.push_back(info);
  raw_bytes_ += raw_.size();
  raw_.clear();
  frame_records_ = 0;
}

void LogWriter::Finish(uint64_t icount, const End& end) {
  if (finished_) throw LogError(ErrorCode::kInvalidArgument, offset_, "Finish called twice");
  Append(Record{icount, end});
  Flush();
  std::vector<uint8_t> footer(kFooterMagic.begin(), kFooterMagic.end());
  AppendLe(footer, frames_.size(), 8);
  AppendLe(footer, checkpoints_.size(), 8);
  for (const FrameInfo& f : frames_) {
    AppendLe(footer, f.offset, 8);
    AppendLe(footer, f.header.first_icount, 8);
    AppendLe(footer, f.header.last_icount, 8);
    AppendLe(footer, f.header.record_count, 4);
  }
  for (const CheckpointInfo& c : checkpoints_) {
    AppendLe(footer, c.icount, 8);
    AppendLe(footer, c.snapshot_id, 8);
    AppendLe(footer, c.snapshot_size, 8);
    AppendLe(footer, c.first_chunk_frame_offset, 8);
  }
  uint64_t footer_offset = offset_;
  uint64_t checksum = XXH3_64bits(footer.data(), footer.size());
  AppendLe(footer, footer_offset, 8);
  AppendLe(footer, footer.size() - 8, 8);
  AppendLe(footer, checksum, 8);
  footer.insert(footer.end(), kTrailerMagic.begin(), kTrailerMagic.end());
  WriteOut(footer.data(), footer.size());
  sink_->Sync();
  finished_ = true;
}

}  // namespace vmrr::log
