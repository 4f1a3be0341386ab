// LogReader: header parsing, footer index, frame scanning with crash recovery, frame
// decoding, seeking and snapshot reassembly. Log bytes are hostile: every size is checked
// against the file and the format's limits before use.
#include "logformat/log_reader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <lz4.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "logformat/byte_order.h"
#include "logformat/record_codec.h"
#include "logformat/varint.h"

namespace vmrr::log {
namespace {

bool GetBytes(const uint8_t** p, const uint8_t* end, size_t limit, std::string* out) {
  uint64_t n;
  if (!GetVarint(p, end, &n) || n > limit || n > static_cast<uint64_t>(end - *p)) return false;
  out->assign(reinterpret_cast<const char*>(*p), n);
  *p += n;
  return true;
}

}  // namespace

const char* TailStateName(TailState state) {
  switch (state) {
    case TailState::kComplete: return "complete";
    case TailState::kUnfinished: return "unfinished";
    case TailState::kCutMidFrame: return "cut-mid-frame";
    case TailState::kDamaged: return "damaged";
  }
  return "unknown";
}

size_t ParseHeader(std::span<const uint8_t> bytes, LogHeader* header) {
  if (bytes.empty()) throw LogError(ErrorCode::kNotALog, 0, "not a vmrr log (the file is empty)");
  if (bytes.size() < kFileMagic.size() ||
      std::memcmp(bytes.data(), kFileMagic.data(), kFileMagic.size()) != 0) {
    if (bytes.size() < kFileMagic.size() &&
        std::memcmp(bytes.data(), kFileMagic.data(), bytes.size()) == 0 && !bytes.empty())
      throw LogError(ErrorCode::kTruncated, bytes.size(), "the file ends inside the log header");
    throw LogError(ErrorCode::kNotALog, 0, "not a vmrr log (no VMRRLOG magic at offset 0)");
  }
  if (bytes.size() < kHeaderFixedSize)
    throw LogError(ErrorCode::kTruncated, bytes.size(), "the file ends inside the log header");
  const uint8_t* b = bytes.data();
  header->major = static_cast<uint16_t>(LoadLe(b + 8, 2));
  header->minor = static_cast<uint16_t>(LoadLe(b + 10, 2));
  if (header->major > kFormatMajor)
    throw LogError(ErrorCode::kNewerVersion, 8,
                   "log format " + std::to_string(header->major) + "." +
                       std::to_string(header->minor) + " is newer than this vmrr reads (" +
                       std::to_string(kFormatMajor) + ".x): use a newer vmrr");
  if (header->major == 0)
    throw LogError(ErrorCode::kDamaged, 8, "log header: format major version 0 is invalid");
  uint64_t body_size = LoadLe(b + 12, 4);
  if (body_size > kMaxHeaderBody)
    throw LogError(ErrorCode::kDamaged, 12,
                   "log header: body size " + std::to_string(body_size) + " exceeds the 1 MiB limit");
  size_t total = kHeaderFixedSize + body_size + 8;
  if (bytes.size() < total)
    throw LogError(ErrorCode::kTruncated, bytes.size(),
                   "the file ends at offset " + std::to_string(bytes.size()) +
                       " inside the log header, which claims " + std::to_string(total) + " bytes");
  uint64_t stored = LoadLe(b + kHeaderFixedSize + body_size, 8);
  uint64_t computed = XXH3_64bits(b, kHeaderFixedSize + body_size);
  if (stored != computed)
    throw LogError(ErrorCode::kDamaged, kHeaderFixedSize + body_size,
                   fmt::format("log header: checksum mismatch (stored {:#x}, computed {:#x})",
                               stored, computed));

  const uint8_t* p = b + kHeaderFixedSize;
  const uint8_t* end = p + body_size;
  auto bad = [&](const char* what) {
    return LogError(ErrorCode::kDamaged, static_cast<uint64_t>(p - b),
                    std::string("log header: ") + what);
  };
  std::string config;
  if (!GetBytes(&p, end, kMaxHeaderBody, &header->engine_version)) throw bad("bad engine version");
  if (!GetBytes(&p, end, kMaxHeaderBody, &header->host_description)) throw bad("bad host description");
  if (end - p < 8) throw bad("missing creation time");
  header->creation_time_unix_ns = LoadLe(p, 8);
  p += 8;
  if (!GetBytes(&p, end, kMaxHeaderBody, &config)) throw bad("bad machine configuration");
  header->machine_config.assign(config.begin(), config.end());
  uint64_t images;
  if (!GetVarint(&p, end, &images) || images > kMaxImageHashes) throw bad("bad image count");
  header->images.clear();
  for (uint64_t i = 0; i < images; ++i) {
    ImageHash image;
    if (!GetBytes(&p, end, kMaxHeaderBody, &image.name)) throw bad("bad image name");
    if (end - p < 24) throw bad("truncated image hash");
    image.size = LoadLe(p, 8);
    std::memcpy(image.xxh128.data(), p + 8, 16);
    p += 24;
    header->images.push_back(std::move(image));
  }
  // Bytes left in the body are fields of a newer minor version: skipped.
  return total;
}

std::string ParseFrameHeader(const uint8_t b[kFrameHeaderSize], FrameHeader* h) {
  if (std::memcmp(b, kFrameMagic.data(), 4) != 0) return "no frame magic (VFRM)";
  uint32_t stored = static_cast<uint32_t>(LoadLe(b + 44, 4));
  uint32_t computed = static_cast<uint32_t>(XXH3_64bits(b, 44) & 0xffffffffu);
  if (stored != computed)
    return fmt::format("frame header checksum mismatch (stored {:#x}, computed {:#x})", stored, computed);
  h->stored_size = static_cast<uint32_t>(LoadLe(b + 4, 4));
  h->raw_size = static_cast<uint32_t>(LoadLe(b + 8, 4));
  h->record_count = static_cast<uint32_t>(LoadLe(b + 12, 4));
  h->first_icount = LoadLe(b + 16, 8);
  h->last_icount = LoadLe(b + 24, 8);
  h->payload_checksum = LoadLe(b + 36, 8);
  if (b[32] > static_cast<uint8_t>(FrameCodec::kLz4)) return "unknown frame codec " + std::to_string(b[32]);
  h->codec = static_cast<FrameCodec>(b[32]);
  if (h->raw_size > kMaxFrameRawSize) return "frame raw size " + std::to_string(h->raw_size) + " exceeds the limit";
  if (h->stored_size > kMaxFrameStoredSize) return "frame stored size exceeds the limit";
  if (h->codec == FrameCodec::kRaw && h->stored_size != h->raw_size) return "raw frame with differing sizes";
  if (h->record_count == 0) return "frame with no records";
  // A record takes at least two bytes (icount delta and tag).
  if (h->record_count > h->raw_size / 2) return "frame record count exceeds what its size can hold";
  if (h->first_icount > h->last_icount) return "frame first icount is after its last icount";
  return "";
}

LogReader::LogReader(LogReader&& o) noexcept { *this = std::move(o); }

LogReader& LogReader::operator=(LogReader&& o) noexcept {
  if (this != &o) {
    if (mapping_) munmap(mapping_, size_);
    name_ = std::move(o.name_);
    bool owned = o.data_ == o.owned_.data();
    owned_ = std::move(o.owned_);
    data_ = owned ? owned_.data() : o.data_;
    size_ = o.size_;
    mapping_ = o.mapping_;
    o.mapping_ = nullptr;
    o.data_ = nullptr;
    o.size_ = 0;
    header_ = std::move(o.header_);
    header_size_ = o.header_size_;
    frames_ = std::move(o.frames_);
    checkpoints_ = std::move(o.checkpoints_);
    tail_ = std::move(o.tail_);
  }
  return *this;
}

LogReader::~LogReader() {
  if (mapping_) munmap(mapping_, size_);
}

LogReader LogReader::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw LogError(ErrorCode::kIo, 0, path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw LogError(ErrorCode::kIo, 0, path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw LogError(ErrorCode::kIo, 0, path + ": not a regular file");
  }
  LogReader r;
  r.name_ = path;
  r.size_ = static_cast<uint64_t>(st.st_size);
  if (r.size_ > 0) {
    void* m = mmap(nullptr, r.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw LogError(ErrorCode::kIo, 0, path + ": cannot map: " + std::strerror(e));
    }
    r.mapping_ = m;
    r.data_ = static_cast<const uint8_t*>(m);
  }
  ::close(fd);
  try {
    r.Load();
  } catch (LogError& e) {
    throw LogError(e.code(), e.offset(), path + ": " + e.what());
  }
  return r;
}

LogReader LogReader::FromBytes(std::vector<uint8_t> bytes, std::string name) {
  LogReader r;
  r.name_ = std::move(name);
  r.owned_ = std::move(bytes);
  r.data_ = r.owned_.data();
  r.size_ = r.owned_.size();
  r.Load();
  return r;
}

void LogReader::Load() {
  header_size_ = ParseHeader(std::span<const uint8_t>(data_, size_), &header_);
  if (!LoadFooter()) Scan();
}

bool LogReader::LoadFooter() {
  if (size_ < header_size_ + kTrailerSize + 20) return false;
  const uint8_t* t = data_ + size_ - kTrailerSize;
  if (std::memcmp(t + 24, kTrailerMagic.data(), 8) != 0) return false;
  uint64_t footer_offset = LoadLe(t, 8);
  uint64_t footer_size = LoadLe(t + 8, 8);
  uint64_t checksum = LoadLe(t + 16, 8);
  auto damaged = [&](uint64_t offset, const std::string& what) {
    frames_.clear();
    checkpoints_.clear();
    Scan();
    // The frames are all there (found by scanning), but the index is not to be trusted.
    if (tail_.state == TailState::kUnfinished || tail_.state == TailState::kComplete)
      tail_ = TailReport{TailState::kDamaged, offset, -1, "footer at offset " + std::to_string(offset) + ": " + what};
    return true;
  };
  if (footer_size > kMaxFooterSize || footer_offset < header_size_ ||
      footer_offset > size_ || footer_size != size_ - kTrailerSize - footer_offset)
    return damaged(size_ - kTrailerSize, "trailer does not point at a footer");
  const uint8_t* f = data_ + footer_offset;
  if (XXH3_64bits(f, footer_size) != checksum) return damaged(footer_offset, "checksum mismatch");
  if (footer_size < 20 || std::memcmp(f, kFooterMagic.data(), 4) != 0)
    return damaged(footer_offset, "no footer magic (VFTR)");
  uint64_t nframes = LoadLe(f + 4, 8);
  uint64_t nchecks = LoadLe(f + 12, 8);
  uint64_t room = footer_size - 20;
  if (nframes > room / kFooterFrameEntrySize ||
      nchecks > (room - nframes * kFooterFrameEntrySize) / kFooterCheckpointEntrySize ||
      nframes * kFooterFrameEntrySize + nchecks * kFooterCheckpointEntrySize != room)
    return damaged(footer_offset, "entry counts do not match its size");
  const uint8_t* p = f + 20;
  uint64_t expect = header_size_;
  uint64_t prev_last = 0;
  frames_.reserve(nframes);
  for (uint64_t i = 0; i < nframes; ++i, p += kFooterFrameEntrySize) {
    FrameInfo fi;
    fi.offset = LoadLe(p, 8);
    if (fi.offset != expect || fi.offset + kFrameHeaderSize > footer_offset)
      return damaged(footer_offset, "frame " + std::to_string(i) + " entry points at the wrong offset");
    std::string err = ParseFrameHeader(data_ + fi.offset, &fi.header);
    if (!err.empty()) {
      frames_.clear();
      checkpoints_.clear();
      Scan();
      return true;  // the scan stops at this frame and reports it
    }
    if (fi.end_offset() > footer_offset || fi.header.first_icount != LoadLe(p + 8, 8) ||
        fi.header.last_icount != LoadLe(p + 16, 8) || fi.header.record_count != LoadLe(p + 24, 4) ||
        fi.header.first_icount < prev_last)
      return damaged(footer_offset, "frame " + std::to_string(i) + " entry does not match the frame");
    prev_last = fi.header.last_icount;
    expect = fi.end_offset();
    frames_.push_back(fi);
  }
  if (expect != footer_offset) return damaged(footer_offset, "bytes between the last frame and the footer");
  for (uint64_t i = 0; i < nchecks; ++i, p += kFooterCheckpointEntrySize) {
    CheckpointInfo c{LoadLe(p, 8), LoadLe(p + 8, 8), LoadLe(p + 16, 8), LoadLe(p + 24, 8)};
    if (c.snapshot_size > kMaxSnapshotSize || c.first_chunk_frame_offset < header_size_ ||
        c.first_chunk_frame_offset >= footer_offset)
      return damaged(footer_offset, "checkpoint " + std::to_string(i) + " entry is out of range");
    checkpoints_.push_back(c);
  }
  tail_ = TailReport{TailState::kComplete, size_, -1, "complete"};
  return true;
}

void LogReader::Scan() {
  uint64_t pos = header_size_;
  uint64_t prev_last = 0;
  std::vector<Record> records;
  std::map<uint64_t, uint64_t> chunk_frames;  // snapshot id -> offset of its first chunk's frame
  while (true) {
    int64_t index = static_cast<int64_t>(frames_.size());
    uint64_t left = size_ - pos;
    if (left == 0) {
      tail_ = TailReport{TailState::kUnfinished, pos, -1,
                         "no footer: the recorder did not finish; " + std::to_string(frames_.size()) +
                             " whole frames end at offset " + std::to_string(pos)};
      return;
    }
    if (left >= 4 && std::memcmp(data_ + pos, kFooterMagic.data(), 4) == 0) {
      tail_ = TailReport{TailState::kUnfinished, pos, -1,
                         "footer at offset " + std::to_string(pos) + " is incomplete or damaged; " +
                             std::to_string(frames_.size()) + " whole frames"};
      return;
    }
    size_t prefix = static_cast<size_t>(std::min<uint64_t>(left, 4));
    if (left < 4 && std::memcmp(data_ + pos, kFooterMagic.data(), prefix) == 0 &&
        std::memcmp(data_ + pos, kFrameMagic.data(), prefix) != 0) {
      tail_ = TailReport{TailState::kUnfinished, pos, -1,
                         "the file ends at offset " + std::to_string(size_) + " inside the footer; " +
                             std::to_string(frames_.size()) + " whole frames"};
      return;
    }
    if (left < kFrameHeaderSize) {
      if (std::memcmp(data_ + pos, kFrameMagic.data(), prefix) == 0) {
        tail_ = TailReport{TailState::kCutMidFrame, size_, index,
                           "the file ends at offset " + std::to_string(size_) + " inside the header of frame " +
                               std::to_string(index) + " (starting at offset " + std::to_string(pos) + ")"};
      } else {
        tail_ = TailReport{TailState::kDamaged, pos, index,
                           "frame " + std::to_string(index) + " at offset " + std::to_string(pos) +
                               ": no frame magic (VFRM)"};
      }
      return;
    }
    FrameInfo fi;
    fi.offset = pos;
    std::string err = ParseFrameHeader(data_ + pos, &fi.header);
    if (err.empty() && fi.header.first_icount < prev_last)
      err = "frame icounts go backwards (first " + std::to_string(fi.header.first_icount) +
            " < previous last " + std::to_string(prev_last) + ")";
    if (!err.empty()) {
      tail_ = TailReport{TailState::kDamaged, pos, index,
                         "frame " + std::to_string(index) + " at offset " + std::to_string(pos) + ": " + err};
      return;
    }
    if (fi.header.stored_size > left - kFrameHeaderSize) {
      tail_ = TailReport{TailState::kCutMidFrame, size_, index,
                         "the file ends at offset " + std::to_string(size_) + " inside frame " +
                             std::to_string(index) + " (starting at offset " + std::to_string(pos) +
                             ", " + std::to_string(fi.end_offset() - size_) + " bytes missing)"};
      return;
    }
    frames_.push_back(fi);
    // Without a footer, frames are only trusted once fully decoded; that also rebuilds the
    // checkpoint index.
    try {
      ReadFrame(frames_.size() - 1, &records);
    } catch (const LogError& e) {
      frames_.pop_back();
      tail_ = TailReport{TailState::kDamaged, e.offset(), index, e.what()};
      return;
    }
    for (const Record& r : records) {
      if (const auto* c = std::get_if<SnapshotChunk>(&r.body); c && c->offset == 0)
        chunk_frames[c->snapshot_id] = pos;
      if (const auto* c = std::get_if<Checkpoint>(&r.body)) {
        auto it = chunk_frames.find(c->snapshot_id);
        if (it != chunk_frames.end())
          checkpoints_.push_back(CheckpointInfo{r.icount, c->snapshot_id, c->snapshot_size, it->second});
      }
    }
    prev_last = fi.header.last_icount;
    pos = fi.end_offset();
  }
}

void LogReader::FrameError(size_t index, const std::string& what) const {
  const FrameInfo& f = frames_[index];
  throw LogError(ErrorCode::kDamaged, f.offset,
                 "frame " + std::to_string(index) + " at offset " + std::to_string(f.offset) + ": " + what);
}

std::span<const uint8_t> LogReader::FramePayload(size_t index, std::vector<uint8_t>* scratch) const {
  const FrameInfo& f = frames_[index];
  const uint8_t* stored = data_ + f.offset + kFrameHeaderSize;
  uint64_t sum = XXH3_64bits(stored, f.header.stored_size);
  if (sum != f.header.payload_checksum)
    FrameError(index, fmt::format("payload checksum mismatch (stored {:#x}, computed {:#x})",
                                  f.header.payload_checksum, sum));
  if (f.header.codec == FrameCodec::kRaw) return {stored, f.header.stored_size};
  scratch->resize(f.header.raw_size);
  int n = LZ4_decompress_safe(reinterpret_cast<const char*>(stored), reinterpret_cast<char*>(scratch->data()),
                              static_cast<int>(f.header.stored_size), static_cast<int>(f.header.raw_size));
  if (n < 0 || static_cast<uint32_t>(n) != f.header.raw_size)
    FrameError(index, "LZ4 payload does not decompress to its stated " + std::to_string(f.header.raw_size) + " bytes");
  return {scratch->data(), f.header.raw_size};
}

void LogReader::ReadFrame(size_t index, std::vector<Record>* out) const {
  if (index >= frames_.size())
    throw LogError(ErrorCode::kInvalidArgument, 0, "frame index " + std::to_string(index) + " out of range");
  thread_local std::vector<uint8_t> scratch;
  std::span<const uint8_t> raw = FramePayload(index, &scratch);
  const FrameHeader& h = frames_[index].header;
  out->resize(h.record_count);
  RecordDecoder decoder(h.first_icount);
  const uint8_t* p = raw.data();
  const uint8_t* end = p + raw.size();
  std::string error;
  for (uint32_t i = 0; i < h.record_count; ++i) {
    if (!decoder.Decode(&p, end, &(*out)[i], &error))
      FrameError(index, "record " + std::to_string(i) + ": " + error);
  }
  if (p != end) FrameError(index, std::to_string(end - p) + " bytes after its last record");
  if ((*out)[0].icount != h.first_icount || out->back().icount != h.last_icount)
    FrameError(index, "records do not span the frame's icount range");
}

size_t DecodeFrame(std::span<const uint8_t> bytes, uint64_t offset, FrameHeader* h,
                   std::vector<Record>* out) {
  auto bad = [&](const std::string& what) {
    return LogError(ErrorCode::kDamaged, offset, "frame at stream offset " + std::to_string(offset) + ": " + what);
  };
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), kFrameMagic.data(), 4) != 0 &&
      std::memcmp(bytes.data(), kFooterMagic.data(), 4) != 0)
    throw bad("no frame magic (VFRM)");
  if (bytes.size() < kFrameHeaderSize) return 0;
  std::string err = ParseFrameHeader(bytes.data(), h);
  if (!err.empty()) throw bad(err);
  if (bytes.size() - kFrameHeaderSize < h->stored_size) return 0;
  const uint8_t* stored = bytes.data() + kFrameHeaderSize;
  uint64_t sum = XXH3_64bits(stored, h->stored_size);
  if (sum != h->payload_checksum) throw bad("payload checksum mismatch");
  std::vector<uint8_t> scratch;
  const uint8_t* p = stored;
  if (h->codec == FrameCodec::kLz4) {
    scratch.resize(h->raw_size);
    int n = LZ4_decompress_safe(reinterpret_cast<const char*>(stored), reinterpret_cast<char*>(scratch.data()),
                                static_cast<int>(h->stored_size), static_cast<int>(h->raw_size));
    if (n < 0 || static_cast<uint32_t>(n) != h->raw_size)
      throw bad("LZ4 payload does not decompress to its stated " + std::to_string(h->raw_size) + " bytes");
    p = scratch.data();
  }
  const uint8_t* end = p + h->raw_size;
  out->resize(h->record_count);
  RecordDecoder decoder(h->first_icount);
  std::string error;
  for (uint32_t i = 0; i < h->record_count; ++i)
    if (!decoder.Decode(&p, end, &(*out)[i], &error)) throw bad("record " + std::to_string(i) + ": " + error);
  if (p != end) throw bad(std::to_string(end - p) + " bytes after its last record");
  if ((*out)[0].icount != h->first_icount || out->back().icount != h->last_icount)
    throw bad("records do not span the frame's icount range");
  return kFrameHeaderSize + h->stored_size;
}

size_t LogReader::FindFrame(uint64_t icount) const {
  auto it = std::lower_bound(frames_.begin(), frames_.end(), icount,
                             [](const FrameInfo& f, uint64_t ic) { return f.header.last_icount < ic; });
  return static_cast<size_t>(it - frames_.begin());
}

std::vector<uint8_t> LogReader::ReadSnapshot(const CheckpointInfo& cp) const {
  auto it = std::lower_bound(frames_.begin(), frames_.end(), cp.first_chunk_frame_offset,
                             [](const FrameInfo& f, uint64_t off) { return f.offset < off; });
  if (it == frames_.end() || it->offset != cp.first_chunk_frame_offset)
    throw LogError(ErrorCode::kDamaged, cp.first_chunk_frame_offset,
                   "snapshot " + std::to_string(cp.snapshot_id) + ": no frame at its first chunk's offset");
  std::vector<uint8_t> blob;
  std::vector<Record> records;
  for (size_t i = static_cast<size_t>(it - frames_.begin()); i < frames_.size(); ++i) {
    ReadFrame(i, &records);
    for (const Record& r : records) {
      const auto* c = std::get_if<SnapshotChunk>(&r.body);
      if (!c || c->snapshot_id != cp.snapshot_id) continue;
      // Chunks must arrive in order, so the blob grows only by bytes actually present.
      if (c->offset != blob.size() || c->total_size != cp.snapshot_size)
        throw LogError(ErrorCode::kDamaged, frames_[i].offset,
                       "snapshot " + std::to_string(cp.snapshot_id) + ": chunk out of order in frame " +
                           std::to_string(i));
      blob.insert(blob.end(), c->bytes.begin(), c->bytes.end());
      if (blob.size() == cp.snapshot_size) return blob;
    }
  }
  if (cp.snapshot_size == 0) return blob;
  throw LogError(ErrorCode::kDamaged, cp.first_chunk_frame_offset,
                 "snapshot " + std::to_string(cp.snapshot_id) + " is incomplete (" + std::to_string(blob.size()) +
                     " of " + std::to_string(cp.snapshot_size) + " bytes)");
}

}  // namespace vmrr::log
