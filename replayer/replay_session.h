// ReplaySession: `vmrr replay`. Opens a log and refuses up front what cannot be replayed
// (not a log, newer format, a damaged frame, a malformed configuration, a disk image whose
// hash differs); then replays it from its first checkpoint with every verification record
// checked (VerifiedReplay), and on a divergence searches where it began (divergence_search).
// A cut log (recorder killed) replays to its last whole frame.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include "logformat/log_reader.h"
#include "hv-hooks/session/session_config.h"
#include "replayer/divergence_search.h"
#include "replayer/replay_machine.h"

namespace vmrr {

// Why a log cannot be replayed (besides log::LogError from reading it).
class ReplayRefused : public std::runtime_error {
 public:
  enum class Code { kConfig, kImageMismatch, kNoCheckpoint };
  ReplayRefused(Code code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

struct ReplayOptions {
  std::optional<std::string> disk_override;  // image path instead of the recorded one
  uint64_t until = ~uint64_t{0};
  std::function<void(uint64_t icount, std::span<const uint8_t> bytes)> console_out;
  std::optional<BitFlip> test_flip;  // test-only fault injection
  bool search = true;                // look for the first divergent instruction
  // Called with the replayed machine where the replay stopped without diverging (the log's
  // end, --until, or the end of a cut log): `vmrr replay --disk-out` writes its disk there.
  std::function<void(Machine& machine)> at_end;
};

struct ReplaySummary {
  enum class Outcome {
    kMatched,  // the whole log matched, End included
    kUntil,    // matched up to --until
    kCutLog,   // matched up to the last whole frame of a cut log
    kDiverged,
  };
  Outcome outcome = Outcome::kMatched;
  uint64_t icount = 0;
  uint64_t log_last_icount = 0;
  uint64_t inputs = 0, interrupts = 0, outputs = 0, digests = 0;
  uint64_t wall_ns = 0;
  std::optional<uint64_t> recording_wall_ns;
  std::optional<log::End> end;
  std::string tail_note;  // for cut logs: what the reader found
  std::optional<DivergenceReport> divergence;
};

class ReplaySession {
 public:
  // Throws log::LogError (unreadable/not a log/newer/damaged) or ReplayRefused.
  ReplaySession(const std::string& log_path, ReplayOptions options);
  ReplaySummary Run();

  const log::LogReader& reader() const { return reader_; }
  const SessionConfig& config() const { return config_; }
  // The disk image the replay uses (checked against the log's hash), if the guest has one.
  const std::optional<std::string>& disk_path() const { return disk_path_; }

 private:
  log::LogReader reader_;
  ReplayOptions options_;
  SessionConfig config_;
  std::optional<std::string> disk_path_;
};

}  // namespace vmrr
