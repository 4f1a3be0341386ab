// The shadow's replay: a log that arrives as a stream (GrowingLog) replayed continuously a
// little behind the primary (FollowingReplay), and the switch from replaying to live at an
// instruction boundary when the primary is gone (GoLive).
//
// GrowingLog takes the stream's bytes in order (header, frames, footer), validates each whole
// frame as a LogReader would, and keeps the decoded records. It also knows how far the log
// is complete: every record with an icount below held_below() has arrived (below the last
// whole frame's last icount, or below the primary's sync icount, which the link carries: the
// primary closes a frame at every output and says at which icount it did).
//
// FollowingReplay builds the machine from the log's first checkpoint and then runs it, never
// beyond held_below(), so the machine never asks for an input the log may still be missing:
// the replay stops at such a boundary (Machine::Run returns at its target before any input
// point there) and continues when more arrives. It checks Digest, Checkpoint, Output and End
// records as it passes them (Divergence on a difference); IrqDelivered records are not checked
// yet. GoLive replays to the end of what was received and gives the machine a live
// Environment: from that instruction on the shadow is the primary.
#pragma once

#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hv-hooks/machine/machine.h"
#include "hv-hooks/session/output_digest.h"
#include "hv-hooks/session/session_config.h"
#include "logformat/format.h"
#include "logformat/record.h"
#include "replayer/record_source.h"
#include "replayer/replaying_environment.h"

namespace vmrr {

class BootEnvironment;  // boot_environment.h

class GrowingLog {
 public:
  // Appends the next stream bytes; parses the header and every frame now whole. Throws
  // log::LogError (not a log, newer version, damaged frame) naming the stream offset; the log
  // is then unusable past the frames before the damage.
  void Append(std::span<const uint8_t> bytes);
  // The primary's sync icount: every record it logged below `icount` is in the bytes so far.
  void SetSyncIcount(uint64_t icount) { sync_icount_ = std::max(sync_icount_, icount); }

  bool has_header() const { return header_size_ != 0; }
  const log::LogHeader& header() const { return header_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t frames() const { return frames_; }
  // Every record with a lower icount has arrived (and any record at it may still come).
  uint64_t held_below() const { return std::max(sync_icount_, last_frame_icount_); }
  // The footer began: the recording finished and every record has arrived.
  bool finished() const { return finished_; }

  // Records by absolute index (records_begin() <= i < records_end()).
  size_t records_begin() const { return base_; }
  size_t records_end() const { return base_ + records_.size(); }
  const log::Record& record(size_t i) const { return records_[i - base_]; }
  // Drops the records below `i` (every reader is past them).
  void TrimBefore(size_t i);

  // A reader of the records from an absolute index on; Next returns false at the end of what
  // has arrived, and more later (MayGrow).
  class Cursor : public RecordSource {
   public:
    Cursor(const GrowingLog& log, size_t index) : log_(log), index_(index) {}
    bool Next(log::Record* out) override;
    bool MayGrow() const override { return !log_.finished(); }
    size_t index() const { return index_; }

   private:
    const GrowingLog& log_;
    size_t index_;
  };

 private:
  std::vector<uint8_t> pending_;  // stream bytes not yet parsed (the header, or a frame's start)
  uint64_t bytes_ = 0;
  uint64_t parsed_ = 0;  // stream offset of pending_[0]
  log::LogHeader header_;
  size_t header_size_ = 0;
  uint64_t frames_ = 0;
  uint64_t last_frame_icount_ = 0;
  uint64_t sync_icount_ = 0;
  bool finished_ = false;
  std::deque<log::Record> records_;
  size_t base_ = 0;
};

class FollowingReplay {
 public:
  struct Options {
    // Console bytes the replayed guest writes, with the icount of the write.
    std::function<void(uint64_t icount, std::span<const uint8_t> bytes)> console_out;
    std::function<void(uint64_t icount, std::span<const uint8_t> frame)> net_out;  // frames sent
  };
  FollowingReplay(GrowingLog& log, Options options);
  ~FollowingReplay();

  // Builds the machine once the log's header and first checkpoint have arrived; false until
  // then. Throws SessionConfigError, log::LogError, MachineError, ReplayRefused (the disk
  // image at the recorded path is not the primary's base image).
  bool TryStart();
  bool started() const { return machine_ != nullptr; }
  // Replays at most `budget` instructions further, never past log.held_below(), checking the
  // verification records on the way. True if it got anywhere. Throws Divergence, LogError,
  // MachineError.
  bool Step(uint64_t budget);
  // The End record was reached and matched: the recording is over, replayed to its end.
  const std::optional<log::End>& end() const { return end_; }
  uint64_t icount() const;
  const SessionConfig& config() const { return config_; }
  const OutputDigest& console() const;
  const OutputDigest& net() const;
  // The guest's console output before the first checkpoint (its Output record there; not 0
  // when the log was written by a shadow that went live and replicates onward), once known:
  // before the replay produces any output.
  const std::optional<uint64_t>& console_base() const { return console_base_; }
  uint64_t digests_checked() const { return digests_; }
  // The replayed machine (null before TryStart succeeded).
  Machine* machine() { return machine_.get(); }

  // Replays to the end of what was received, then switches the machine to `live` at that
  // instruction boundary and returns it: the caller runs it as the new primary.
  Machine& GoLive(Environment& live);

 private:
  // The base image the primary recorded with, by hash (ReplayRefused otherwise).
  void CheckDiskImage(const std::string& path) const;
  MachineResult RunTo(uint64_t target);
  const log::Record* NextVerification();
  void Check(const log::Record& r);

  GrowingLog& log_;
  Options options_;
  SessionConfig config_;
  std::unique_ptr<BootEnvironment> boot_env_;
  std::unique_ptr<GrowingLog::Cursor> inputs_;
  std::unique_ptr<ReplayingEnvironment> env_;
  std::unique_ptr<Machine> machine_;
  size_t verify_index_ = 0;
  uint64_t start_icount_ = 0;
  std::optional<uint64_t> console_base_;
  std::exception_ptr failure_;
  std::optional<MachineResult> stopped_;  // the machine stopped by itself (exit, shutdown)
  std::optional<log::End> end_;
  uint64_t digests_ = 0;
};

}  // namespace vmrr
