#include "analysis/gdb_packet.h"

#include <algorithm>

namespace vmrr::analysis {
namespace {

int HexValue(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

GdbPacketReader::GdbPacketReader(size_t max_packet) : max_(max_packet) {}

void GdbPacketReader::Feed(std::span<const uint8_t> bytes) {
  for (uint8_t b : bytes) Byte(b);
}

void GdbPacketReader::Feed(std::string_view bytes) {
  for (char c : bytes) Byte(static_cast<uint8_t>(c));
}

std::optional<GdbEvent> GdbPacketReader::Next() {
  if (events_.empty()) return std::nullopt;
  GdbEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void GdbPacketReader::Fail(GdbEvent::Kind kind) {
  payload_.clear();
  events_.push_back(GdbEvent{kind, {}});
  state_ = State::kSkip;
}

void GdbPacketReader::FailAtHash() {
  Fail(GdbEvent::Kind::kMalformed);
  state_ = State::kSkipCsum1;  // the '#' was this byte: skip just the two checksum digits
}

bool GdbPacketReader::Append(uint8_t b, size_t count) {
  if (count > max_ - payload_.size()) {
    Fail(GdbEvent::Kind::kOversized);
    return false;
  }
  // Grow geometrically but never past the maximum, so a packet never holds more than max_.
  size_t need = payload_.size() + count;
  if (need > payload_.capacity()) payload_.reserve(std::min(max_, std::max(need, 2 * payload_.capacity())));
  payload_.append(count, static_cast<char>(b));
  return true;
}

void GdbPacketReader::Byte(uint8_t b) {
  // A raw '$' always starts a packet, wherever it appears (gdb restarts on it as well).
  // It cannot be a checksum digit, so in kCsum1/kCsum2 it also starts a new packet.
  if (b == '$') {
    payload_.clear();
    sum_ = 0;
    state_ = State::kData;
    return;
  }
  switch (state_) {
    case State::kIdle:
      if (b == '+') events_.push_back(GdbEvent{GdbEvent::Kind::kAck, {}});
      else if (b == '-') events_.push_back(GdbEvent{GdbEvent::Kind::kNack, {}});
      else if (b == 0x03) events_.push_back(GdbEvent{GdbEvent::Kind::kInterrupt, {}});
      return;  // anything else outside a packet is skipped
    case State::kData:
      if (b == '#') {
        state_ = State::kCsum1;
        return;
      }
      sum_ = static_cast<uint8_t>(sum_ + b);
      if (b == '}') {
        state_ = State::kEscape;
      } else if (b == '*') {
        if (payload_.empty()) return Fail(GdbEvent::Kind::kMalformed);
        state_ = State::kRepeat;
      } else {
        Append(b, 1);
      }
      return;
    case State::kEscape:
      if (b == '#') return FailAtHash();
      sum_ = static_cast<uint8_t>(sum_ + b);
      if (Append(static_cast<uint8_t>(b ^ 0x20), 1)) state_ = State::kData;
      return;
    case State::kRepeat:
      if (b == '#') return FailAtHash();
      if (b < ' ' || b > '~') return Fail(GdbEvent::Kind::kMalformed);
      sum_ = static_cast<uint8_t>(sum_ + b);
      if (Append(static_cast<uint8_t>(payload_.back()), static_cast<size_t>(b - 29)))
        state_ = State::kData;
      return;
    case State::kCsum1: {
      int v = HexValue(b);
      csum_bad_digit_ = v < 0;
      csum_hi_ = static_cast<uint8_t>(v < 0 ? 0 : v);
      state_ = State::kCsum2;
      return;
    }
    case State::kCsum2: {
      int v = HexValue(b);
      state_ = State::kIdle;
      if (csum_bad_digit_ || v < 0 || static_cast<uint8_t>(csum_hi_ * 16 + v) != sum_) {
        payload_.clear();
        events_.push_back(GdbEvent{GdbEvent::Kind::kBadChecksum, {}});
      } else {
        events_.push_back(GdbEvent{GdbEvent::Kind::kPacket, std::move(payload_)});
        payload_.clear();
      }
      return;
    }
    case State::kSkip:
      if (b == '#') state_ = State::kSkipCsum1;
      return;
    case State::kSkipCsum1:
      state_ = State::kSkipCsum2;
      return;
    case State::kSkipCsum2:
      state_ = State::kIdle;
      return;
  }
}

std::string EncodeGdbPacket(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 4);
  out.push_back('$');
  uint8_t sum = 0;
  auto put = [&](uint8_t c) {
    out.push_back(static_cast<char>(c));
    sum = static_cast<uint8_t>(sum + c);
  };
  for (char ch : payload) {
    uint8_t c = static_cast<uint8_t>(ch);
    if (c == '#' || c == '$' || c == '}' || c == '*') {
      put('}');
      put(static_cast<uint8_t>(c ^ 0x20));
    } else {
      put(c);
    }
  }
  out.push_back('#');
  out.push_back(kHexDigits[sum >> 4]);
  out.push_back(kHexDigits[sum & 0xf]);
  return out;
}

std::string HexEncode(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0xf]);
  }
  return out;
}

std::string HexEncode(std::string_view bytes) {
  return HexEncode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

std::optional<std::vector<uint8_t>> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::vector<uint8_t> out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(static_cast<uint8_t>(hex[i]));
    int lo = HexValue(static_cast<uint8_t>(hex[i + 1]));
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<uint8_t>(hi * 16 + lo));
  }
  return out;
}

std::optional<uint64_t> ParseHexU64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    int d = HexValue(static_cast<uint8_t>(c));
    if (d < 0) return std::nullopt;
    if (v >> 60 != 0) return std::nullopt;  // v * 16 would overflow
    v = v * 16 + static_cast<uint64_t>(d);
  }
  return v;
}

std::optional<std::vector<uint64_t>> ParseHexList(std::string_view s, size_t count, char sep) {
  std::vector<uint64_t> out;
  if (count == 0) {
    if (!s.empty()) return std::nullopt;
    return out;
  }
  for (size_t i = 0; i < count; ++i) {
    size_t end = i + 1 < count ? s.find(sep) : s.size();
    if (end == std::string_view::npos) return std::nullopt;
    auto v = ParseHexU64(s.substr(0, end));
    if (!v) return std::nullopt;
    out.push_back(*v);
    s.remove_prefix(i + 1 < count ? end + 1 : end);
  }
  return out;
}

std::optional<GdbMemRange> ParseGdbMemRange(std::string_view s) {
  auto v = ParseHexList(s, 2);
  if (!v) return std::nullopt;
  uint64_t addr = (*v)[0], length = (*v)[1];
  // addr + length <= 2^64, i.e. length <= 2^64 - addr (addr 0 allows any length).
  if (addr != 0 && length > (~uint64_t{0} - addr) + 1) return std::nullopt;
  return GdbMemRange{addr, length};
}

}  // namespace vmrr::analysis
