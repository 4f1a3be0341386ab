// StateWriter / StateReader: the bounded, versioned byte stream of snapshots.
#include "hv-hooks/substrate/state_io.h"

#include <cstring>

namespace vmrr {

StateError::StateError(uint64_t offset, const std::string& message)
    : std::runtime_error("device state at byte " + std::to_string(offset) + ": " + message +
                         " (the snapshot is damaged or from an incompatible vmrr build)"),
      offset_(offset) {}

void StateWriter::Begin(std::string_view tag4, uint32_t version) {
  for (size_t i = 0; i < 4; ++i) U8(i < tag4.size() ? static_cast<uint8_t>(tag4[i]) : ' ');
  U32(version);
}

void StateWriter::Bytes(std::span<const uint8_t> data) {
  U64(data.size());
  bytes_.insert(bytes_.end(), data.begin(), data.end());
}

void StateReader::Fail(const std::string& message) const { throw StateError(pos_, message); }

uint64_t StateReader::Le(unsigned n) {
  if (data_.size() - pos_ < n) Fail("truncated: needs " + std::to_string(n) + " more bytes");
  const uint64_t v = LoadLe(data_.data() + pos_, n);
  pos_ += n;
  return v;
}

uint8_t StateReader::U8() { return static_cast<uint8_t>(Le(1)); }

bool StateReader::Bool() {
  uint8_t v = U8();
  if (v > 1) Fail("boolean field holds " + std::to_string(v));
  return v != 0;
}

uint32_t StateReader::Begin(std::string_view tag4, uint32_t max_version) {
  uint64_t at = pos_;
  char tag[4];
  for (char& c : tag) c = static_cast<char>(U8());
  std::string want(tag4.substr(0, 4));
  want.resize(4, ' ');
  if (std::memcmp(tag, want.data(), 4) != 0) {
    throw StateError(at, "expected section '" + want + "', found '" + std::string(tag, 4) + "'");
  }
  uint32_t version = U32();
  if (version == 0 || version > max_version) {
    throw StateError(at, "section '" + want + "' has version " + std::to_string(version) +
                             ", this build reads 1.." + std::to_string(max_version));
  }
  return version;
}

std::vector<uint8_t> StateReader::Bytes(uint64_t max_len) {
  uint64_t len = U64();
  if (len > max_len) Fail("byte string of " + std::to_string(len) + " bytes exceeds limit " +
                          std::to_string(max_len));
  if (data_.size() - pos_ < len) Fail("truncated byte string");
  std::vector<uint8_t> out(data_.begin() + static_cast<ptrdiff_t>(pos_),
                           data_.begin() + static_cast<ptrdiff_t>(pos_ + len));
  pos_ += len;
  return out;
}

uint64_t StateReader::Bounded(uint64_t value, uint64_t max, const char* what) const {
  if (value > max) {
    Fail(std::string(what) + " = " + std::to_string(value) + " exceeds " + std::to_string(max));
  }
  return value;
}

void StateReader::ExpectEnd() const {
  if (pos_ != data_.size()) Fail(std::to_string(data_.size() - pos_) + " trailing bytes");
}

std::vector<uint8_t> SaveToBytes(const Stateful& component) {
  StateWriter w;
  component.SaveState(w);
  return w.Take();
}

void LoadFromBytes(Stateful& component, std::span<const uint8_t> bytes) {
  StateReader r(bytes);
  component.LoadState(r);
  r.ExpectEnd();
}

}  // namespace vmrr
