// Typed errors of the log format: every failure to read or write a log names what went
// wrong, where (byte offset, frame), and carries a code the CLI maps to its exit status.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace vmrr::log {

enum class ErrorCode {
  kIo,              // the file could not be opened, read or written
  kNotALog,         // the bytes do not start with a vmrr log header
  kNewerVersion,    // a newer major format version than this build reads
  kTruncated,       // the file ends inside a frame or the header (recorder killed)
  kDamaged,         // a checksum or an invariant does not hold
  kInvalidArgument  // the caller asked for something the format cannot express
};

const char* ErrorCodeName(ErrorCode code);

class LogError : public std::runtime_error {
 public:
  LogError(ErrorCode code, uint64_t offset, const std::string& message)
      : std::runtime_error(message), code_(code), offset_(offset) {}
  ErrorCode code() const { return code_; }
  uint64_t offset() const { return offset_; }

 private:
  ErrorCode code_;
  uint64_t offset_;
};

}  // namespace vmrr::log
