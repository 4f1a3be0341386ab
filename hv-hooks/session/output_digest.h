// The running digest of a guest output channel (console, network) as Output records carry
// it: total bytes since power-on and a hash chained over every output call,
//     digest_0 = 0,  digest_n = XXH3_64(bytes of call n, seed = digest_{n-1}).
// Two 64-bit words are the whole state, so a replay that starts at a checkpoint picks it up
// from the Output records the recorder writes there.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <span>

namespace vmrr {

struct OutputDigest {
  uint64_t total_bytes = 0;
  uint64_t digest = 0;

  void Add(std::span<const uint8_t> bytes) {
    digest = XXH3_64bits_withSeed(bytes.data(), bytes.size(), digest);
    total_bytes += bytes.size();
  }
  bool operator==(const OutputDigest&) const = default;
};

}  // namespace vmrr
