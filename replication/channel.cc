// SecureChannel: handshake, session keys, sealing and the hostile-input message parser.
#include "replication/channel.h"

#include <sodium.h>

#include <cstring>

#include "logformat/byte_order.h"

namespace vmrr::link {
namespace {

void InitSodium() {
  if (sodium_init() < 0) throw LinkError("libsodium could not be initialised");
}

// Keyed BLAKE2b-256 of a label and parts, keyed with the shared key.
std::array<uint8_t, 32> Derive(const Key& key, const char* label, std::span<const uint8_t> extra) {
  std::array<uint8_t, 32> out{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.data(), key.size(), out.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(label), std::strlen(label));
  crypto_generichash_update(&st, extra.data(), extra.size());
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

}  // namespace

const char* RoleName(Role role) { return role == Role::kPrimary ? "primary" : "shadow"; }

const char* MessageTypeName(uint8_t type) {
  switch (type) {
    case 1: return "hello";
    case 2: return "log";
    case 3: return "ack";
    case 4: return "heartbeat";
    case 5: return "bye";
    case 6: return "relocate";
    case 7: return "resume";
  }
  return "unknown";
}

SecureChannel::SecureChannel(const Key& key, Role self, const Nonce* nonce)
    : key_(key), self_(self), peer_(self == Role::kPrimary ? Role::kShadow : Role::kPrimary) {
  InitSodium();
  if (nonce) nonce_ = *nonce;
  else randombytes_buf(nonce_.data(), nonce_.size());
  hello_key_ = Derive(key_, "vmrr-link v1 hello", {});
}

SecureChannel::~SecureChannel() {
  sodium_memzero(key_.data(), key_.size());
  sodium_memzero(tx_key_.data(), tx_key_.size());
  sodium_memzero(rx_key_.data(), rx_key_.size());
  sodium_memzero(hello_key_.data(), hello_key_.size());
}

std::vector<uint8_t> SecureChannel::Build(MessageType type, uint64_t seq, uint64_t icount, uint64_t aux,
                                          std::span<const uint8_t> payload, const uint8_t* mac_key) const {
  std::vector<uint8_t> m;
  m.reserve(kMessageHeaderSize + payload.size() + kMacSize);
  m.insert(m.end(), kLinkMagic.begin(), kLinkMagic.end());
  m.push_back(kLinkVersion);
  m.push_back(static_cast<uint8_t>(type));
  m.push_back(static_cast<uint8_t>(self_));
  m.push_back(0);
  vmrr::AppendLe(m, seq, 8);
  vmrr::AppendLe(m, icount, 8);
  vmrr::AppendLe(m, aux, 8);
  vmrr::AppendLe(m, payload.size(), 4);
  vmrr::AppendLe(m, 0, 4);
  m.insert(m.end(), payload.begin(), payload.end());
  uint8_t mac[kMacSize];
  crypto_auth(mac, m.data(), m.size(), mac_key);
  m.insert(m.end(), mac, mac + kMacSize);
  return m;
}

std::vector<uint8_t> SecureChannel::Hello() const {
  return Build(MessageType::kHello, 0, 0, 0, nonce_, hello_key_.data());
}

void SecureChannel::DeriveSessionKeys() {
  // Both nonces in a fixed order (primary's first), then the sender's role.
  std::vector<uint8_t> material;
  const Nonce& np = self_ == Role::kPrimary ? nonce_ : peer_nonce_;
  const Nonce& ns = self_ == Role::kPrimary ? peer_nonce_ : nonce_;
  material.insert(material.end(), np.begin(), np.end());
  material.insert(material.end(), ns.begin(), ns.end());
  material.push_back(static_cast<uint8_t>(self_));
  tx_key_ = Derive(key_, "vmrr-link v1 session", material);
  material.back() = static_cast<uint8_t>(peer_);
  rx_key_ = Derive(key_, "vmrr-link v1 session", material);
  sodium_memzero(material.data(), material.size());
}

std::vector<uint8_t> SecureChannel::Seal(MessageType type, uint64_t icount, uint64_t aux,
                                         std::span<const uint8_t> payload) {
  if (!established_) throw LinkError("link: message sealed before the peer's hello");
  if (type == MessageType::kHello) throw LinkError("link: hello is sent once, by Hello()");
  if (payload.size() > kMaxPayload) throw LinkError("link: payload above the message size limit");
  return Build(type, next_tx_++, icount, aux, payload, tx_key_.data());
}

void SecureChannel::Feed(const uint8_t* data, size_t size) {
  if (refused_ || size == 0) return;
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), data, data + size);
}

SecureChannel::Status SecureChannel::Refuse(const std::string& why) {
  refused_ = true;
  error_ = "refused " + std::string(RoleName(peer_)) + " message at stream offset " + std::to_string(consumed_) +
           ": " + why;
  buf_.clear();
  buf_.shrink_to_fit();
  pos_ = 0;
  return Status::kRefused;
}

SecureChannel::Status SecureChannel::Next(Message* out) {
  if (refused_) return Status::kRefused;
  const size_t avail = buf_.size() - pos_;
  if (avail == 0) return Status::kNeedMore;
  const uint8_t* b = buf_.data() + pos_;
  const size_t prefix = avail < kLinkMagic.size() ? avail : kLinkMagic.size();
  if (std::memcmp(b, kLinkMagic.data(), prefix) != 0) return Refuse("no VLNK magic (not a vmrr link, or damaged)");
  if (avail < kMessageHeaderSize) return Status::kNeedMore;
  if (b[4] != kLinkVersion) return Refuse("link version " + std::to_string(b[4]) + " (this vmrr speaks 1)");
  const uint8_t type = b[5];
  if (type < 1 || type > 7) return Refuse("unknown message type " + std::to_string(type));
  if (b[6] != static_cast<uint8_t>(peer_))
    return Refuse("sender role " + std::to_string(b[6]) + " is not the peer's (a reflected message?)");
  if (b[7] != 0 || vmrr::LoadLe(b + 36, 4) != 0) return Refuse("reserved header bytes are not zero");
  const uint64_t seq = vmrr::LoadLe(b + 8, 8);
  const uint64_t len = vmrr::LoadLe(b + 32, 4);
  if (len > kMaxPayload) return Refuse("payload length " + std::to_string(len) + " above the limit");
  const bool hello = type == static_cast<uint8_t>(MessageType::kHello);
  if (hello && len != kNonceSize) return Refuse("hello with a payload of " + std::to_string(len) + " bytes");
  if (!established_ && !hello) return Refuse(std::string(MessageTypeName(type)) + " message before the hello");
  if (established_ && hello) return Refuse("a second hello");
  const size_t total = kMessageHeaderSize + static_cast<size_t>(len) + kMacSize;
  if (avail < total) return Status::kNeedMore;
  const uint8_t* mac_key = hello ? hello_key_.data() : rx_key_.data();
  if (crypto_auth_verify(b + kMessageHeaderSize + len, b, kMessageHeaderSize + len, mac_key) != 0)
    return Refuse(std::string("forged or damaged ") + MessageTypeName(type) + " message (MAC does not verify), sequence " +
                  std::to_string(seq));
  if (seq != next_rx_)
    return Refuse(std::string(MessageTypeName(type)) + " message out of order or replayed: sequence " +
                  std::to_string(seq) + ", expected " + std::to_string(next_rx_));
  out->type = static_cast<MessageType>(type);
  out->seq = seq;
  out->icount = vmrr::LoadLe(b + 16, 8);
  out->aux = vmrr::LoadLe(b + 24, 8);
  out->payload.assign(b + kMessageHeaderSize, b + kMessageHeaderSize + len);
  ++next_rx_;
  pos_ += total;
  consumed_ += total;
  if (hello) {
    std::memcpy(peer_nonce_.data(), out->payload.data(), kNonceSize);
    DeriveSessionKeys();
    established_ = true;
  }
  return Status::kMessage;
}

}  // namespace vmrr::link
