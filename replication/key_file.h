// The link's shared key: 32 bytes, read from --key-file (64 hex digits, optionally followed
// by a newline, or exactly 32 raw bytes). Anything else is refused: a short or ambiguous key
// file must never silently become a weak key.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace vmrr::link {

inline constexpr size_t kKeyBytes = 32;
using Key = std::array<uint8_t, kKeyBytes>;

class LinkError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws LinkError naming the file and what is wrong with it.
Key LoadKeyFile(const std::string& path);
// Parses the file's contents (exposed for tests).
Key ParseKey(const std::string& contents, const std::string& name);

}  // namespace vmrr::link
