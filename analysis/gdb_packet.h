// The gdb remote serial protocol's packet layer (gdb manual, "Remote Protocol" appendix,
// "Overview"): framing, checksums, binary escapes and run-length decoding of the bytes gdb
// sends, and the encoding of the stub's replies. It parses outside bytes: nothing here throws
// on bad input or allocates beyond the reader's maximum packet size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmrr::analysis {

struct GdbEvent {
  enum class Kind {
    kPacket,       // a complete packet, checksum verified; payload decoded
    kAck,          // '+'
    kNack,         // '-'
    kInterrupt,    // 0x03 outside a packet (Ctrl-C)
    kBadChecksum,  // a complete packet whose checksum did not match (answer '-')
    kOversized,    // a packet longer than the maximum (decoded); skipped
    kMalformed,    // a packet with a bad escape or run-length sequence; skipped
  };
  Kind kind;
  std::string payload;  // kPacket only

  bool operator==(const GdbEvent&) const = default;
};

// Fed raw bytes in arbitrary chunks; yields the events in the order their bytes arrived.
// Bytes outside packets other than '+', '-', 0x03 and '$' are skipped. Inside a packet '}'
// escapes the next byte (byte ^ 0x20) and '*' followed by a count byte c repeats the
// previous decoded byte c - 29 more times (c in ' '..'~', not '#' or '$'). A raw '$' inside
// a packet restarts it (as gdb does). After an oversized or malformed packet the reader skips
// to its '#' and two checksum bytes, or to the next '$', whichever comes first.
class GdbPacketReader {
 public:
  static constexpr size_t kDefaultMaxPacket = 64 * 1024;
  explicit GdbPacketReader(size_t max_packet = kDefaultMaxPacket);

  void Feed(std::span<const uint8_t> bytes);
  void Feed(std::string_view bytes);
  // The next event, or nullopt when the bytes fed so far hold no further complete event.
  std::optional<GdbEvent> Next();

  size_t max_packet() const { return max_; }

 private:
  enum class State { kIdle, kData, kEscape, kRepeat, kCsum1, kCsum2, kSkip, kSkipCsum1, kSkipCsum2 };
  void Byte(uint8_t b);
  void Fail(GdbEvent::Kind kind);  // drop the packet, emit kind, skip its remainder
  void FailAtHash();                // malformed, and this byte was the packet's '#'
  bool Append(uint8_t b, size_t count);

  size_t max_;
  State state_ = State::kIdle;
  std::string payload_;
  uint8_t sum_ = 0;     // sum of the raw bytes between '$' and '#'
  uint8_t csum_hi_ = 0; // the first checksum digit's value (0xff: not a hex digit)
  bool csum_bad_digit_ = false;
  std::deque<GdbEvent> events_;
};

// "$" + payload with '#', '$', '}' and '*' escaped + "#" + two lowercase hex digits.
std::string EncodeGdbPacket(std::string_view payload);

// Lowercase hex of each byte, two digits a byte.
std::string HexEncode(std::span<const uint8_t> bytes);
std::string HexEncode(std::string_view bytes);
// Refuses odd length and non-hex digits (either case accepted).
std::optional<std::vector<uint8_t>> HexDecode(std::string_view hex);

// A non-empty hex number that fits 64 bits (leading zeros allowed), nothing else.
std::optional<uint64_t> ParseHexU64(std::string_view s);
// Exactly `count` hex numbers separated by `sep`, e.g. "1000,4" of "m1000,4" or "0,401000,1"
// of "Z0,401000,1" (the caller strips the packet letter and any ";cond" suffix).
std::optional<std::vector<uint64_t>> ParseHexList(std::string_view s, size_t count, char sep = ',');

// "addr,length" (the arguments of m): the range must not run past the end of the 64-bit
// address space (addr + length <= 2^64).
struct GdbMemRange {
  uint64_t addr;
  uint64_t length;
  bool operator==(const GdbMemRange&) const = default;
};
std::optional<GdbMemRange> ParseGdbMemRange(std::string_view s);

}  // namespace vmrr::analysis
