// LEB128 varints and zigzag coding used by the record codec. Decoding is bounds-checked and
// rejects over-long or overflowing encodings, since log bytes are untrusted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vmrr::log {

inline constexpr size_t kMaxVarintBytes = 10;

inline void PutVarint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v) | 0x80);
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

// Writes into a buffer with at least kMaxVarintBytes free; returns bytes written.
inline size_t PutVarintRaw(uint8_t* out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<uint8_t>(v) | 0x80;
    v >>= 7;
  }
  out[n++] = static_cast<uint8_t>(v);
  return n;
}

inline size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Reads a varint from [*p, end). Returns false on truncation, on more than 10 bytes, or on a
// 10th byte carrying bits beyond 64.
inline bool GetVarint(const uint8_t** p, const uint8_t* end, uint64_t* out) {
  const uint8_t* q = *p;
  if (q < end && *q < 0x80) {  // fast path: one byte
    *out = *q;
    *p = q + 1;
    return true;
  }
  uint64_t v = 0;
  for (unsigned i = 0; i < kMaxVarintBytes; ++i) {
    if (q >= end) return false;
    uint8_t b = *q++;
    if (i == kMaxVarintBytes - 1 && b > 1) return false;
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *out = v;
      *p = q;
      return true;
    }
  }
  return false;
}

inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

}  // namespace vmrr::log
