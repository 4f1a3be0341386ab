// The save/load byte stream of device and machine state, and the one narrow interface every
// stateful component implements (Stateful). A stream is a run of tagged, versioned sections of
// little-endian fields. StateReader treats its input as hostile: every read is bounds-checked,
// every length is capped by the caller, and any failure is a StateError naming the offset.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "logformat/byte_order.h"

namespace vmrr {

class StateError : public std::runtime_error {
 public:
  StateError(uint64_t offset, const std::string& message);
  uint64_t offset() const { return offset_; }

 private:
  uint64_t offset_;
};

class StateWriter {
 public:
  // Starts a section: a 4-character tag naming the component and its state version.
  void Begin(std::string_view tag4, uint32_t version);
  void U8(uint8_t v) { bytes_.push_back(v); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  void U16(uint16_t v) { Le(v, 2); }
  void U32(uint32_t v) { Le(v, 4); }
  void U64(uint64_t v) { Le(v, 8); }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  // Length-prefixed byte string.
  void Bytes(std::span<const uint8_t> data);

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> Take() { return std::move(bytes_); }

 private:
  // One resize per value, not a push_back per byte (SaveBytes runs per slice in tests and
  // fuzzers; this keeps it cheap, under sanitizers too).
  void Le(uint64_t v, unsigned n) {
    const size_t at = bytes_.size();
    if (bytes_.capacity() - at < n) bytes_.reserve(std::max<size_t>(2 * bytes_.capacity(), 1024));
    bytes_.resize(at + n);
    uint8_t* p = bytes_.data() + at;
    for (unsigned i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
  }
  std::vector<uint8_t> bytes_;
};

class StateReader {
 public:
  explicit StateReader(std::span<const uint8_t> data) : data_(data) {}

  // Reads a section header; refuses a different tag or a version newer than max_version.
  // Returns the version found so that older layouts can still be read.
  uint32_t Begin(std::string_view tag4, uint32_t max_version);
  uint8_t U8();
  bool Bool();
  uint16_t U16() { return static_cast<uint16_t>(Le(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Le(4)); }
  uint64_t U64() { return Le(8); }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  // A length-prefixed byte string of at most max_len bytes (checked before allocating).
  std::vector<uint8_t> Bytes(uint64_t max_len);
  // A value that must be <= max (an index, a count, an enum).
  uint64_t Bounded(uint64_t value, uint64_t max, const char* what) const;

  // Fails if bytes are left over: a stream with trailing bytes is not the one we wrote.
  void ExpectEnd() const;
  uint64_t offset() const { return pos_; }
  bool AtEnd() const { return pos_ == data_.size(); }
  [[noreturn]] void Fail(const std::string& message) const;

 private:
  uint64_t Le(unsigned n);
  std::span<const uint8_t> data_;
  uint64_t pos_ = 0;
};

// Every component with state a snapshot must carry. LoadState either restores the complete
// state or throws StateError and leaves the component as it was.
class Stateful {
 public:
  virtual ~Stateful() = default;
  virtual void SaveState(StateWriter& out) const = 0;
  virtual void LoadState(StateReader& in) = 0;
};

// Convenience for tests and tools: one component to bytes and back.
std::vector<uint8_t> SaveToBytes(const Stateful& component);
void LoadFromBytes(Stateful& component, std::span<const uint8_t> bytes);

}  // namespace vmrr
