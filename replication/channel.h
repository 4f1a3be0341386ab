// SecureChannel: the authenticated message layer of the replication link, over any byte
// stream (transport.h). Each side opens with a Hello carrying a fresh random nonce; every
// later message is authenticated with a session key derived (keyed BLAKE2b, libsodium's
// crypto_generichash) from the shared key, the sender's role and both nonces, so that
// messages of an older session, or of the other direction, never verify. Every message
// carries a sequence number (0 for Hello, then 1, 2, ... per direction) and a MAC
// (HMAC-SHA-512-256, libsodium's crypto_auth) over its header and payload. The parser treats
// the stream as hostile: sizes are bounded before anything is allocated, and a forged,
// damaged, reordered, replayed or malformed message is refused; the channel then stays
// refused (the link must be torn down), so nothing after a refused message is ever used. Over
// TCP the two ends then open a new connection with a new handshake (new session keys) and the
// primary sends the stream again from where the shadow holds it (kResume).
//
// Wire format of a message (little-endian):
//   0  4  magic "VLNK"          4  1  version (1)        5  1  type (MessageType)
//   6  1  sender role (0 primary, 1 shadow)              7  1  zero
//   8  8  sequence number      16  8  icount             24  8  aux
//  32  4  payload length P (at most kMaxPayload)         36  4  zero
//  40  P  payload              40+P 32 MAC of bytes [0, 40+P)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "replication/key_file.h"

namespace vmrr::link {

enum class Role : uint8_t { kPrimary = 0, kShadow = 1 };
const char* RoleName(Role role);

enum class MessageType : uint8_t {
  kHello = 1,      // payload: the sender's 32-byte nonce
  kLog = 2,        // primary: log bytes (header, frames, footer); icount: the primary's sync
                   // icount (every record logged below it is in the stream so far); aux: the
                   // stream offset of the payload's first byte. An empty payload only moves
                   // the sync icount.
  kAck = 3,        // shadow: icount = sync icount it holds the log to; aux = stream bytes held
  kHeartbeat = 4,  // both: icount = the sender's icount; aux = primary: console bytes released;
                   // primary's payload: 8 bytes, the network frames released (empty: none)
  kBye = 5,        // primary: recording finished and every output released (aux, payload: as
                   // a heartbeat's)
  kRelocate = 6,   // primary: planned relocation. It stopped at an instruction boundary at
                   // icount (every record below it is in the stream: a sync icount); aux: the
                   // stream's length (nothing more follows); payload: 8 bytes, the primary's
                   // steady-clock ns at the stop (downtime figures on one host). The shadow
                   // acknowledges, replays to icount and goes live at once.
  kResume = 7,     // shadow, first after the hello of a new connection that replaces a broken
                   // one (TCP): icount = the sync icount it holds, aux = the stream bytes it
                   // holds; the primary sends the stream again from there. Not an Ack: it
                   // releases nothing.
};
const char* MessageTypeName(uint8_t type);

inline constexpr size_t kMessageHeaderSize = 40;
inline constexpr size_t kMacSize = 32;
inline constexpr size_t kNonceSize = 32;
// A log write is at most one frame (48-byte header + 9 MiB) or a footer; footers of very long
// logs are sent in pieces (the sender splits any write above this).
inline constexpr uint32_t kMaxPayload = 10u << 20;
inline constexpr std::array<uint8_t, 4> kLinkMagic = {'V', 'L', 'N', 'K'};
inline constexpr uint8_t kLinkVersion = 1;

struct Message {
  MessageType type = MessageType::kHeartbeat;
  uint64_t seq = 0;
  uint64_t icount = 0;
  uint64_t aux = 0;
  std::vector<uint8_t> payload;
};

class SecureChannel {
 public:
  using Nonce = std::array<uint8_t, kNonceSize>;
  // `nonce`: tests and the fuzz target fix it; otherwise it is random (randombytes_buf).
  SecureChannel(const Key& key, Role self, const Nonce* nonce = nullptr);
  ~SecureChannel();
  SecureChannel(const SecureChannel&) = delete;
  SecureChannel& operator=(const SecureChannel&) = delete;

  Role self() const { return self_; }
  // This side's Hello (sequence number 0), to send first.
  std::vector<uint8_t> Hello() const;
  // True once the peer's Hello has been accepted: Seal may be used from then on.
  bool established() const { return established_; }
  // A message from this side (next sequence number). Throws LinkError before the handshake,
  // for kHello, or for a payload above kMaxPayload.
  std::vector<uint8_t> Seal(MessageType type, uint64_t icount, uint64_t aux,
                            std::span<const uint8_t> payload = {});

  // Bytes received from the peer. The caller alternates Feed and Next (draining), so at most
  // one message plus one read is ever buffered.
  void Feed(const uint8_t* data, size_t size);
  enum class Status { kNeedMore, kMessage, kRefused };
  Status Next(Message* out);
  bool refused() const { return refused_; }
  // Why the channel was refused: the rule broken, with the sequence number and offset.
  const std::string& error() const { return error_; }
  uint64_t messages_received() const { return next_rx_; }
  uint64_t bytes_received() const { return consumed_; }

 private:
  Status Refuse(const std::string& why);
  std::vector<uint8_t> Build(MessageType type, uint64_t seq, uint64_t icount, uint64_t aux,
                             std::span<const uint8_t> payload, const uint8_t* mac_key) const;
  void DeriveSessionKeys();

  Key key_;
  Role self_;
  Role peer_;
  Nonce nonce_{};
  Nonce peer_nonce_{};
  std::array<uint8_t, 32> hello_key_{};
  std::array<uint8_t, 32> tx_key_{};
  std::array<uint8_t, 32> rx_key_{};
  bool established_ = false;
  uint64_t next_tx_ = 1;
  uint64_t next_rx_ = 0;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  uint64_t consumed_ = 0;
  bool refused_ = false;
  std::string error_;
};

}  // namespace vmrr::link
