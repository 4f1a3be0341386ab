// The exit statuses of the vmrr binary, in one place, so that scripts can tell failures apart.
// A guest that ends through the debug-exit port makes vmrr exit with (code << 1) | 1, which is
// always odd; vmrr's own statuses for how a guest run ended are even (4, 8, 10, 130). The odd
// ones below (1, 3, 5, 7, 11) are host or log errors, never a guest's verdict.
#pragma once

#include "logformat/error.h"

namespace vmrr::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // an error of no more specific kind
  kExitUsage = 2,        // bad command line
  kExitIo = 3,           // a file could not be opened, read or written
  kExitNotALog = 4,      // the file is not a vmrr log
  kExitNewerVersion = 5, // the log was written by a newer major format version
  kExitTruncated = 6,    // the log ends early (recorder killed): whole frames are still usable
  kExitDamaged = 7,      // a checksum or invariant failed
  kExitBadImage = 4,     // run/record: the kernel image is malformed (same status as "not a log")
  kExitGuestFault = 8,   // run/record: guest triple fault, or HLT that nothing can wake
  kExitInstructionLimit = 10,  // run/record: --max-instructions reached
  kExitInterrupted = 130,      // run/record: stopped by SIGINT/SIGTERM/SIGHUP (or Ctrl-A x)
  kExitDivergence = 11,    // replay: the replayed machine departed from the log
  kExitImageMismatch = 12, // replay: a disk image is missing or its hash differs from the log's
};

inline int ExitCodeFor(log::ErrorCode code) {
  switch (code) {
    case log::ErrorCode::kIo: return kExitIo;
    case log::ErrorCode::kNotALog: return kExitNotALog;
    case log::ErrorCode::kNewerVersion: return kExitNewerVersion;
    case log::ErrorCode::kTruncated: return kExitTruncated;
    case log::ErrorCode::kDamaged: return kExitDamaged;
    case log::ErrorCode::kInvalidArgument: return kExitUsage;
  }
  return kExitFailure;
}

}  // namespace vmrr::cli
