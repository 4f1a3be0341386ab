// Fuzz target: the replication link's stream parser (SecureChannel, as the shadow reads the
// primary) and the streamed-log parser behind it (GrowingLog). The first byte picks a mode:
//  0: the bytes are the stream, fed in pieces; also fed straight into a GrowingLog (the log
//     parser without the MAC in front of it);
//  1: a genuine primary hello first, then the bytes (past the handshake);
//  2: the bytes describe messages the genuine primary seals (type, length, payload), then bit
//     flips applied to the sealed stream: every message delivered must be one of the sealed
//     ones, in order, and none from the first damaged one on.
// Nothing may crash, hang or allocate beyond the format's limits; errors are refusals.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "logformat/error.h"
#include "replayer/following_replay.h"
#include "replication/channel.h"

namespace {

using vmrr::link::Message;
using vmrr::link::MessageType;
using vmrr::link::Role;
using vmrr::link::SecureChannel;

vmrr::link::Key FixedKey() {
  vmrr::link::Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i);
  return k;
}

SecureChannel::Nonce Fill(uint8_t v) {
  SecureChannel::Nonce n;
  n.fill(v);
  return n;
}

struct Receiver {
  SecureChannel::Nonce ns = Fill(0x22);
  SecureChannel shadow{FixedKey(), Role::kShadow, &ns};
  vmrr::GrowingLog log;
  bool log_refused = false;
  std::vector<Message> delivered;

  void Feed(const uint8_t* p, size_t n) {
    shadow.Feed(p, n);
    Message m;
    while (shadow.Next(&m) == SecureChannel::Status::kMessage) {
      if (m.type == MessageType::kLog && !log_refused) {
        try {
          log.Append(m.payload);
        } catch (const vmrr::log::LogError&) {
          log_refused = true;
        }
      }
      delivered.push_back(std::move(m));
    }
  }
};

void FeedInPieces(Receiver& r, const uint8_t* data, size_t size) {
  size_t pos = 0;
  while (pos < size) {
    const size_t n = std::min<size_t>(size - pos, 1 + (pos * 131 + size) % 251);
    r.Feed(data + pos, n);
    pos += n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 3;
  ++data;
  --size;
  Receiver r;
  if (mode == 0) {
    FeedInPieces(r, data, size);
    vmrr::GrowingLog direct;
    try {
      size_t pos = 0;
      while (pos < size) {
        const size_t n = std::min<size_t>(size - pos, 1 + (pos * 37 + size) % 97);
        direct.Append({data + pos, n});
        pos += n;
      }
    } catch (const vmrr::log::LogError&) {
    }
    return 0;
  }
  SecureChannel::Nonce np = Fill(0x11);
  SecureChannel primary(FixedKey(), Role::kPrimary, &np);
  const std::vector<uint8_t> hello = primary.Hello();
  r.Feed(hello.data(), hello.size());
  if (r.delivered.size() != 1) std::abort();  // the genuine hello must be accepted
  if (mode == 1) {
    FeedInPieces(r, data, size);
    return 0;
  }
  // Mode 2: the primary must have the shadow's hello to seal.
  {
    SecureChannel::Nonce ns = Fill(0x22);
    SecureChannel shadow_hello(FixedKey(), Role::kShadow, &ns);
    const std::vector<uint8_t> h = shadow_hello.Hello();
    primary.Feed(h.data(), h.size());
    Message m;
    if (primary.Next(&m) != SecureChannel::Status::kMessage) std::abort();
  }
  std::vector<std::vector<uint8_t>> sealed;
  std::vector<uint8_t> stream;
  std::vector<size_t> starts;
  size_t pos = 0;
  const size_t nmsg = size > 0 ? data[pos++] % 8 : 0;
  for (size_t i = 0; i < nmsg && pos + 2 <= size; ++i) {
    const uint8_t type = static_cast<uint8_t>(2 + data[pos] % 4);  // log, ack, heartbeat, bye
    const size_t len = std::min<size_t>(data[pos + 1], size - pos - 2);
    pos += 2;
    std::vector<uint8_t> payload(data + pos, data + pos + len);
    pos += len;
    sealed.push_back(primary.Seal(static_cast<MessageType>(type), i, pos, payload));
    starts.push_back(stream.size());
    stream.insert(stream.end(), sealed.back().begin(), sealed.back().end());
  }
  const std::vector<uint8_t> original = stream;
  for (; pos + 3 <= size && !stream.empty(); pos += 3) {
    const size_t at = (static_cast<size_t>(data[pos]) << 8 | data[pos + 1]) % stream.size();
    stream[at] ^= static_cast<uint8_t>(1u << (data[pos + 2] & 7));
  }
  // The first message whose bytes differ (flips of the same bit cancel out).
  size_t first_damaged = sealed.size();
  for (size_t at = 0; at < stream.size(); ++at) {
    if (stream[at] == original[at]) continue;
    size_t k = 0;
    while (k + 1 < starts.size() && starts[k + 1] <= at) ++k;
    first_damaged = k;
    break;
  }
  FeedInPieces(r, stream.data(), stream.size());
  // r.delivered[0] is the hello; then sealed messages in order, none from the damaged one on.
  if (r.delivered.size() - 1 > first_damaged) std::abort();
  for (size_t i = 1; i < r.delivered.size(); ++i) {
    const Message& m = r.delivered[i];
    const std::vector<uint8_t>& s = sealed[i - 1];
    if (m.payload.size() + vmrr::link::kMessageHeaderSize + vmrr::link::kMacSize != s.size()) std::abort();
    if (m.seq != i) std::abort();
  }
  if (first_damaged == sealed.size() && r.delivered.size() != sealed.size() + 1) std::abort();
  return 0;
}
