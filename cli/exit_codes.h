// The exit statuses of the vmrr binary, in one place, so that scripts can tell failures apart.
// A guest that ends through the debug-exit port makes `vmrr run` and `vmrr record` exit with
// (code << 1) | 1, as QEMU's isa-debug-exit does, which is always odd: the even statuses below
// are never a guest's. Of the odd ones, run and record can return 1 and 3 themselves (an
// unexpected failure; a disk image, port, terminal or log file that cannot be used), which are
// also the statuses of guest codes 0 and 1; vmrr prints a message on stderr ("vmrr run: ...",
// "vmrr record: ...") before exiting with either, a guest's exit prints none, and a recording's
// End record names the reason (`vmrr inspect --records`). 5, 7 and 11 come only from inspect
// and replay, which never exit with a guest's status.
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
  kExitGuestReset = 16,       // run/record: the guest asked for a reset (ACPI reset register)
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
