// Encoding and decoding of records inside one frame's uncompressed payload. Both sides keep
// per-frame state (previous icount, previous time sample) that starts afresh in every frame,
// so any frame decodes on its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "logformat/record.h"

namespace vmrr::log {

class RecordEncoder {
 public:
  explicit RecordEncoder(uint64_t frame_first_icount = 0) { Reset(frame_first_icount); }
  void Reset(uint64_t frame_first_icount);
  // Appends the record; its icount must not be below the previous one (the writer checks).
  void Encode(const Record& record, std::vector<uint8_t>& out);

 private:
  uint64_t prev_icount_ = 0;
  uint64_t prev_time_ns_ = 0;
  uint64_t prev_time_delta_ = 0;
  std::vector<uint8_t> scratch_;
};

class RecordDecoder {
 public:
  explicit RecordDecoder(uint64_t frame_first_icount = 0) { Reset(frame_first_icount); }
  void Reset(uint64_t frame_first_icount);
  // Decodes one record at *p and advances *p. On malformed bytes returns false and sets
  // *error to the rule broken; *p is then unspecified.
  bool Decode(const uint8_t** p, const uint8_t* end, Record* out, std::string* error);

 private:
  uint64_t prev_icount_ = 0;
  uint64_t prev_time_ns_ = 0;
  uint64_t prev_time_delta_ = 0;
};

}  // namespace vmrr::log
