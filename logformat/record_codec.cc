// Byte layout of every record kind (FORMAT.md, "Records"): varint icount delta, a tag byte
// (kind << 3 | inline length 0..6, or 7 = varint length follows), then the payload.
#include "logformat/record_codec.h"

#include <cstring>
#include <type_traits>

#include "logformat/byte_order.h"
#include "logformat/format.h"
#include "logformat/varint.h"

namespace vmrr::log {
namespace {

constexpr unsigned kInlineLengthMax = 6;
constexpr unsigned kExplicitLength = 7;

bool GetU64(const uint8_t** p, const uint8_t* end, uint64_t* v) {
  if (end - *p < 8) return false;
  *v = LoadLe64(*p);
  *p += 8;
  return true;
}

bool GetU8(const uint8_t** p, const uint8_t* end, uint8_t* v) {
  if (*p >= end) return false;
  *v = *(*p)++;
  return true;
}

void PutBytes(std::vector<uint8_t>& out, const std::vector<uint8_t>& bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

}  // namespace

uint8_t Record::kind_number() const {
  return std::visit(
      [](const auto& b) -> uint8_t {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, TimeSample>) return uint8_t(RecordKind::kTimeSample);
        else if constexpr (std::is_same_v<T, ConsoleIn>) return uint8_t(RecordKind::kConsoleIn);
        else if constexpr (std::is_same_v<T, NetRx>) return uint8_t(RecordKind::kNetRx);
        else if constexpr (std::is_same_v<T, Entropy>) return uint8_t(RecordKind::kEntropy);
        else if constexpr (std::is_same_v<T, IrqDelivered>) return uint8_t(RecordKind::kIrqDelivered);
        else if constexpr (std::is_same_v<T, Output>) return uint8_t(RecordKind::kOutput);
        else if constexpr (std::is_same_v<T, Digest>) return uint8_t(RecordKind::kDigest);
        else if constexpr (std::is_same_v<T, Checkpoint>) return uint8_t(RecordKind::kCheckpoint);
        else if constexpr (std::is_same_v<T, SnapshotChunk>) return uint8_t(RecordKind::kSnapshotChunk);
        else if constexpr (std::is_same_v<T, Marker>) return uint8_t(RecordKind::kMarker);
        else if constexpr (std::is_same_v<T, End>) return uint8_t(RecordKind::kEnd);
        else if constexpr (std::is_same_v<T, IdleWake>) return uint8_t(RecordKind::kIdleWake);
        else return b.kind;
      },
      body);
}

std::string KindName(uint8_t kind) {
  switch (static_cast<RecordKind>(kind)) {
    case RecordKind::kTimeSample: return "TimeSample";
    case RecordKind::kConsoleIn: return "ConsoleIn";
    case RecordKind::kNetRx: return "NetRx";
    case RecordKind::kEntropy: return "Entropy";
    case RecordKind::kIrqDelivered: return "IrqDelivered";
    case RecordKind::kOutput: return "Output";
    case RecordKind::kDigest: return "Digest";
    case RecordKind::kCheckpoint: return "Checkpoint";
    case RecordKind::kSnapshotChunk: return "SnapshotChunk";
    case RecordKind::kMarker: return "Marker";
    case RecordKind::kEnd: return "End";
    case RecordKind::kIdleWake: return "IdleWake";
  }
  return "Unknown(" + std::to_string(kind) + ")";
}

uint8_t KindFromName(std::string_view name) {
  for (unsigned k = 1; k <= kMaxRecordKind; ++k)
    if (KindName(static_cast<uint8_t>(k)) == name) return static_cast<uint8_t>(k);
  return 0;
}

const char* EndReasonName(EndReason reason) {
  switch (reason) {
    case EndReason::kGuestExit: return "guest-exit";
    case EndReason::kShutdown: return "shutdown";
    case EndReason::kInstructionLimit: return "instruction-limit";
    case EndReason::kStopped: return "stopped";
    case EndReason::kError: return "error";
    case EndReason::kPowerOff: return "power-off";
    case EndReason::kReset: return "reset";
  }
  return "unknown";
}

void RecordEncoder::Reset(uint64_t frame_first_icount) {
  prev_icount_ = frame_first_icount;
  prev_time_ns_ = 0;
  prev_time_delta_ = 0;
}

void RecordEncoder::Encode(const Record& record, std::vector<uint8_t>& out) {
  std::vector<uint8_t>& s = scratch_;
  s.clear();
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, TimeSample>) {
          // Second-order delta: steady sampling intervals encode in one or two bytes.
          uint64_t ns = static_cast<uint64_t>(b.host_ns);
          uint64_t delta = ns - prev_time_ns_;
          PutVarint(s, ZigZag(static_cast<int64_t>(delta - prev_time_delta_)));
          prev_time_ns_ = ns;
          prev_time_delta_ = delta;
        } else if constexpr (std::is_same_v<T, ConsoleIn> || std::is_same_v<T, Entropy>) {
          PutBytes(s, b.bytes);
        } else if constexpr (std::is_same_v<T, NetRx>) {
          PutBytes(s, b.frame);
        } else if constexpr (std::is_same_v<T, IrqDelivered>) {
          PutVarint(s, b.vector);
        } else if constexpr (std::is_same_v<T, Output>) {
          s.push_back(static_cast<uint8_t>(b.channel));
          PutVarint(s, b.total_bytes);
          AppendLe(s, b.digest, 8);
        } else if constexpr (std::is_same_v<T, Digest>) {
          s.push_back(static_cast<uint8_t>(b.scope));
          AppendLe(s, b.hash, 8);
        } else if constexpr (std::is_same_v<T, Checkpoint>) {
          PutVarint(s, b.snapshot_id);
          PutVarint(s, b.snapshot_size);
          AppendLe(s, b.state_digest, 8);
        } else if constexpr (std::is_same_v<T, SnapshotChunk>) {
          PutVarint(s, b.snapshot_id);
          PutVarint(s, b.offset);
          PutVarint(s, b.total_size);
          PutBytes(s, b.bytes);
        } else if constexpr (std::is_same_v<T, Marker>) {
          s.insert(s.end(), b.text.begin(), b.text.end());
        } else if constexpr (std::is_same_v<T, End>) {
          s.push_back(static_cast<uint8_t>(b.reason));
          PutVarint(s, ZigZag(b.exit_code));
          AppendLe(s, b.final_digest, 8);
        } else if constexpr (std::is_same_v<T, IdleWake>) {
          s.push_back(b.input ? 1 : 0);
        } else {
          PutBytes(s, b.payload);
        }
      },
      record.body);

  uint8_t head[2 * kMaxVarintBytes + 1];
  size_t n = PutVarintRaw(head, record.icount - prev_icount_);
  prev_icount_ = record.icount;
  uint8_t kind = record.kind_number();
  if (s.size() <= kInlineLengthMax) {
    head[n++] = static_cast<uint8_t>(kind << 3 | s.size());
  } else {
    head[n++] = static_cast<uint8_t>(kind << 3 | kExplicitLength);
    n += PutVarintRaw(head + n, s.size());
  }
  out.insert(out.end(), head, head + n);
  out.insert(out.end(), s.begin(), s.end());
}

void RecordDecoder::Reset(uint64_t frame_first_icount) {
  prev_icount_ = frame_first_icount;
  prev_time_ns_ = 0;
  prev_time_delta_ = 0;
}

bool RecordDecoder::Decode(const uint8_t** p, const uint8_t* end, Record* out,
                           std::string* error) {
  uint64_t delta;
  if (!GetVarint(p, end, &delta)) {
    *error = "record icount delta is truncated or over-long";
    return false;
  }
  if (delta > UINT64_MAX - prev_icount_) {
    *error = "record icount overflows 64 bits";
    return false;
  }
  uint8_t tag;
  if (!GetU8(p, end, &tag)) {
    *error = "record tag is missing";
    return false;
  }
  uint8_t kind = tag >> 3;
  uint64_t length = tag & 7;
  if (length == kExplicitLength && !GetVarint(p, end, &length)) {
    *error = "record length is truncated or over-long";
    return false;
  }
  if (kind == 0) {
    *error = "record kind 0 is invalid";
    return false;
  }
  if (length > static_cast<uint64_t>(end - *p)) {
    *error = "record payload of " + std::to_string(length) + " bytes runs past the frame";
    return false;
  }
  const uint8_t* q = *p;
  const uint8_t* pend = q + length;
  *p = pend;
  prev_icount_ += delta;
  out->icount = prev_icount_;
  auto bytes = [&]() { return std::vector<uint8_t>(q, pend); };
  auto bad = [&](const char* what) {
    *error = KindName(kind) + " payload: " + what;
    return false;
  };

  switch (static_cast<RecordKind>(kind)) {
    case RecordKind::kTimeSample: {
      uint64_t zz;
      if (!GetVarint(&q, pend, &zz)) return bad("truncated time delta");
      uint64_t d = prev_time_delta_ + static_cast<uint64_t>(UnZigZag(zz));
      prev_time_ns_ += d;
      prev_time_delta_ = d;
      out->body.emplace<TimeSample>(TimeSample{static_cast<int64_t>(prev_time_ns_)});
      return true;
    }
    case RecordKind::kConsoleIn:
      out->body.emplace<ConsoleIn>(ConsoleIn{bytes()});
      return true;
    case RecordKind::kNetRx:
      out->body.emplace<NetRx>(NetRx{bytes()});
      return true;
    case RecordKind::kEntropy:
      out->body.emplace<Entropy>(Entropy{bytes()});
      return true;
    case RecordKind::kIrqDelivered: {
      uint64_t v;
      if (!GetVarint(&q, pend, &v) || v > UINT32_MAX) return bad("bad vector");
      out->body.emplace<IrqDelivered>(IrqDelivered{static_cast<uint32_t>(v)});
      return true;
    }
    case RecordKind::kOutput: {
      Output o;
      uint8_t ch;
      if (!GetU8(&q, pend, &ch) || ch > uint8_t(OutputChannel::kNet)) return bad("bad channel");
      o.channel = static_cast<OutputChannel>(ch);
      if (!GetVarint(&q, pend, &o.total_bytes) || !GetU64(&q, pend, &o.digest))
        return bad("truncated");
      out->body.emplace<Output>(o);
      return true;
    }
    case RecordKind::kDigest: {
      Digest d;
      uint8_t scope;
      if (!GetU8(&q, pend, &scope) || scope > uint8_t(DigestScope::kMachine))
        return bad("bad scope");
      d.scope = static_cast<DigestScope>(scope);
      if (!GetU64(&q, pend, &d.hash)) return bad("truncated hash");
      out->body.emplace<Digest>(d);
      return true;
    }
    case RecordKind::kCheckpoint: {
      Checkpoint c;
      if (!GetVarint(&q, pend, &c.snapshot_id) || !GetVarint(&q, pend, &c.snapshot_size) ||
          !GetU64(&q, pend, &c.state_digest))
        return bad("truncated");
      if (c.snapshot_size > kMaxSnapshotSize) return bad("snapshot size exceeds the limit");
      out->body.emplace<Checkpoint>(c);
      return true;
    }
    case RecordKind::kSnapshotChunk: {
      SnapshotChunk c;
      if (!GetVarint(&q, pend, &c.snapshot_id) || !GetVarint(&q, pend, &c.offset) ||
          !GetVarint(&q, pend, &c.total_size))
        return bad("truncated");
      uint64_t n = static_cast<uint64_t>(pend - q);
      if (c.total_size > kMaxSnapshotSize || c.offset > c.total_size ||
          n > c.total_size - c.offset)
        return bad("chunk lies outside its snapshot");
      c.bytes.assign(q, pend);
      out->body.emplace<SnapshotChunk>(std::move(c));
      return true;
    }
    case RecordKind::kMarker:
      out->body.emplace<Marker>(Marker{std::string(q, pend)});
      return true;
    case RecordKind::kEnd: {
      End e;
      uint8_t reason;
      uint64_t zz;
      if (!GetU8(&q, pend, &reason) || reason > uint8_t(EndReason::kReset))
        return bad("bad reason");
      e.reason = static_cast<EndReason>(reason);
      if (!GetVarint(&q, pend, &zz) || !GetU64(&q, pend, &e.final_digest))
        return bad("truncated");
      int64_t code = UnZigZag(zz);
      if (code < INT32_MIN || code > INT32_MAX) return bad("exit code out of range");
      e.exit_code = static_cast<int32_t>(code);
      out->body.emplace<End>(e);
      return true;
    }
    case RecordKind::kIdleWake: {
      uint8_t input;
      if (!GetU8(&q, pend, &input) || input > 1) return bad("not 0 or 1");
      out->body.emplace<IdleWake>(IdleWake{input == 1});
      return true;
    }
  }
  // A kind of a newer minor version: kept opaque, skipped by length.
  out->body.emplace<UnknownRecord>(UnknownRecord{kind, bytes()});
  return true;
}

}  // namespace vmrr::log
