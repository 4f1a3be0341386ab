// Typed outcomes of a replay that departs from its log. Divergence: the replayed machine did
// something the recording did not (asked for an input at another icount or of another kind,
// skipped a logged input, produced other output, took another interrupt, reached another
// state). LogExhausted: the machine asked for an input the log does not hold because the log
// ends there (a recorder killed mid-run); it is the normal end of replaying a cut log.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace vmrr {

class Divergence : public std::runtime_error {
 public:
  enum class Kind {
    kInput,            // an input asked for at an icount/kind the log does not have next
    kMissedInput,      // a logged input was never asked for
    kInputSize,        // entropy/console sizes differ from the log
    kOutput,           // console or network output digest differs
    kInterrupt,        // an interrupt the log does not have (or another vector)
    kMissedInterrupt,  // a logged interrupt was not taken
    kDigest,           // a state digest differs
    kEnd,              // the run ended differently (reason, exit code, icount)
  };
  Divergence(Kind kind, uint64_t icount, const std::string& message)
      : std::runtime_error(message), kind_(kind), icount_(icount) {}
  Kind kind() const { return kind_; }
  // Where the replay noticed the divergence.
  uint64_t icount() const { return icount_; }

 private:
  Kind kind_;
  uint64_t icount_;
};

const char* DivergenceKindName(Divergence::Kind kind);

class LogExhausted : public std::runtime_error {
 public:
  LogExhausted(uint64_t icount, const std::string& message)
      : std::runtime_error(message), icount_(icount) {}
  uint64_t icount() const { return icount_; }

 private:
  uint64_t icount_;
};

}  // namespace vmrr
