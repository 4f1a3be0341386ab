// The project's one little-endian load/store helper (log layouts, state images, boot data,
// virtio rings, tests). It lives in logformat/ but depends on nothing but the standard library
// and is its own header-only CMake target, vmrr_byte_order, so hv-hooks (which never includes
// the rest of logformat) may use it without breaking the layering; namespace vmrr, not log.
#pragma once

#include <cstdint>
#include <vector>

namespace vmrr {

// Stores the low `bytes` bytes of v at p, least significant first.
inline void StoreLe(uint8_t* p, uint64_t v, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
// Loads `bytes` bytes (at most 8) from p, least significant first.
inline uint64_t LoadLe(const uint8_t* p, unsigned bytes) {
  uint64_t v = 0;
  for (unsigned i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
inline void AppendLe(std::vector<uint8_t>& out, uint64_t v, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

inline uint16_t LoadLe16(const uint8_t* p) { return static_cast<uint16_t>(LoadLe(p, 2)); }
inline uint32_t LoadLe32(const uint8_t* p) { return static_cast<uint32_t>(LoadLe(p, 4)); }
inline uint64_t LoadLe64(const uint8_t* p) { return LoadLe(p, 8); }

}  // namespace vmrr
