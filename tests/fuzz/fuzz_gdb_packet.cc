// Fuzz target: the gdb remote protocol's packet reader (analysis/gdb_packet.h), fed hostile
// bytes in chunks whose sizes come from the input. The first byte picks the maximum packet
// size (small, so oversized packets are reached); the next bytes, one per chunk, give chunk
// lengths, interleaved with the chunks. Every decoded payload must be within the maximum, and
// Encode(payload) fed to a fresh reader, in one piece and byte by byte, must give back exactly
// that payload. Malformed input may produce any events but never a crash or an overlong packet.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "analysis/gdb_packet.h"

using vmrr::analysis::EncodeGdbPacket;
using vmrr::analysis::GdbEvent;
using vmrr::analysis::GdbPacketReader;

namespace {

void CheckRoundTrip(const std::string& payload, size_t max) {
  std::string enc = EncodeGdbPacket(payload);
  GdbPacketReader whole(max);
  whole.Feed(enc);
  auto e = whole.Next();
  if (!e || e->kind != GdbEvent::Kind::kPacket || e->payload != payload || whole.Next()) std::abort();
  GdbPacketReader bytewise(max);
  for (size_t i = 0; i < enc.size(); ++i) {
    bytewise.Feed(std::string_view(enc).substr(i, 1));
    if (i + 1 < enc.size() && bytewise.Next()) std::abort();  // nothing before the last byte
  }
  e = bytewise.Next();
  if (!e || e->kind != GdbEvent::Kind::kPacket || e->payload != payload) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // 0..255 bytes, or the 64 KiB default for 255.
  size_t max = data[0] == 255 ? GdbPacketReader::kDefaultMaxPacket : data[0];
  std::span<const uint8_t> in(data + 1, size - 1);
  GdbPacketReader reader(max);
  auto drain = [&] {
    while (auto e = reader.Next()) {
      if (e->kind != GdbEvent::Kind::kPacket) {
        if (!e->payload.empty()) std::abort();
        continue;
      }
      if (e->payload.size() > max) std::abort();
      CheckRoundTrip(e->payload, max);
    }
  };
  while (!in.empty()) {
    size_t n = in[0];
    in = in.subspan(1);
    n = std::min(n, in.size());
    reader.Feed(in.first(n));
    in = in.subspan(n);
    drain();
  }
  return 0;
}
