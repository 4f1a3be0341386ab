// Encoders of the fixed-layout parts of the log: the file header and the frame header.
// (Their decoders live in log_reader.cc, next to the validation they need.)
#include "logformat/format.h"

#include <xxhash.h>

#include <cstring>

#include "logformat/byte_order.h"
#include "logformat/error.h"
#include "logformat/varint.h"

namespace vmrr::log {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kIo: return "io";
    case ErrorCode::kNotALog: return "not-a-log";
    case ErrorCode::kNewerVersion: return "newer-version";
    case ErrorCode::kTruncated: return "truncated";
    case ErrorCode::kDamaged: return "damaged";
    case ErrorCode::kInvalidArgument: return "invalid-argument";
  }
  return "unknown";
}

namespace {
void PutString(std::vector<uint8_t>& out, const void* data, size_t size) {
  PutVarint(out, size);
  const auto* p = static_cast<const uint8_t*>(data);
  out.insert(out.end(), p, p + size);
}
}  // namespace

std::vector<uint8_t> EncodeHeader(const LogHeader& header) {
  std::vector<uint8_t> body;
  PutString(body, header.engine_version.data(), header.engine_version.size());
  PutString(body, header.host_description.data(), header.host_description.size());
  AppendLe(body, header.creation_time_unix_ns, 8);
  PutString(body, header.machine_config.data(), header.machine_config.size());
  if (header.images.size() > kMaxImageHashes)
    throw LogError(ErrorCode::kInvalidArgument, 0, "too many image hashes for the log header");
  PutVarint(body, header.images.size());
  for (const ImageHash& image : header.images) {
    PutString(body, image.name.data(), image.name.size());
    AppendLe(body, image.size, 8);
    body.insert(body.end(), image.xxh128.begin(), image.xxh128.end());
  }
  if (body.size() > kMaxHeaderBody)
    throw LogError(ErrorCode::kInvalidArgument, 0,
                   "log header of " + std::to_string(body.size()) + " bytes exceeds the 1 MiB limit");

  std::vector<uint8_t> out(kFileMagic.begin(), kFileMagic.end());
  AppendLe(out, header.major, 2);
  AppendLe(out, header.minor, 2);
  AppendLe(out, body.size(), 4);
  out.insert(out.end(), body.begin(), body.end());
  AppendLe(out, XXH3_64bits(out.data(), out.size()), 8);
  return out;
}

void EncodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderSize]) {
  std::memcpy(out, kFrameMagic.data(), 4);
  StoreLe(out + 4, h.stored_size, 4);
  StoreLe(out + 8, h.raw_size, 4);
  StoreLe(out + 12, h.record_count, 4);
  StoreLe(out + 16, h.first_icount, 8);
  StoreLe(out + 24, h.last_icount, 8);
  out[32] = static_cast<uint8_t>(h.codec);
  out[33] = out[34] = out[35] = 0;
  StoreLe(out + 36, h.payload_checksum, 8);
  StoreLe(out + 44, XXH3_64bits(out, 44) & 0xffffffffu, 4);
}

}  // namespace vmrr::log
