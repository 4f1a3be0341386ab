// Generators of differential test cases: templated instruction sequences (instruction forms
// from a table, operands and values chosen at random with edge cases, memory operands aimed
// at the data region, undefined flags tracked per instruction) and filtered random byte
// strings (any single instruction whose memory accesses stay inside the data region).
#pragma once

#include <cstdint>

#include "tests/unit/cpu_diff/diff_harness.h"

namespace vmrr::testing {

// splitmix64: small, fast, and identical on every host.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  uint64_t Below(uint64_t n) { return n ? Next() % n : 0; }
  bool Chance(unsigned percent) { return Below(100) < percent; }

 private:
  uint64_t state_;
};

// A value of the given size (bytes) biased toward edge cases: 0, 1, -1, sign boundaries,
// small numbers, single bits.
uint64_t EdgeValue(Rng& rng, unsigned size);

// The number of instruction templates (for coverage reports).
unsigned TemplateCount();
const char* TemplateName(unsigned index);

// Fills c (code, registers, memory, flag mask) with a sequence of 1..max_items templated
// instruction groups. Returns false if no valid case could be built (caller retries).
bool GenerateTemplated(Rng& rng, FlatMode mode, unsigned max_items, DiffCase* c,
                       unsigned* first_template = nullptr);

// A single instruction from random bytes, filtered to instructions both emulators can run
// here: general-purpose ISA, no control transfer or system/I/O instruction, every memory
// access inside the data region or stack. Returns false if the bytes were rejected.
bool GenerateRandomBytes(Rng& rng, FlatMode mode, DiffCase* c);

}  // namespace vmrr::testing
