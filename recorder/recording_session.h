// RecordingSession: records a guest. It builds the Machine behind a RecordingEnvironment that
// wraps the live host, writes the log header (session configuration, image hashes), the full
// snapshot of the starting state (Checkpoint at icount 0), then runs the machine to each
// multiple of the digest interval writing Digest{cpu} records (plus, every checkpoint
// interval, a full snapshot, Digest{machine} and Output records for both channels; every
// machine-digest interval a Digest{machine} alone), Output
// records when a channel's digest changed, IrqDelivered records as the CPU accepts
// interrupts, and at the end an End record with the final whole-machine digest.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hv-hooks/machine/machine.h"
#include "logformat/log_writer.h"
#include "recorder/recording_environment.h"
#include "hv-hooks/session/session_config.h"

namespace vmrr {

log::EndReason EndReasonFor(MachineStop stop);

struct RecordProgress {
  uint64_t icount = 0;
  uint64_t guest_ns = 0;
  uint64_t log_bytes = 0;
  uint64_t wall_ns = 0;
};

struct RecordSummary {
  MachineResult result;
  log::EndReason end_reason = log::EndReason::kStopped;
  uint64_t log_bytes = 0;
  uint64_t records = 0;
  uint64_t checkpoints = 0;
  uint64_t wall_ns = 0;
};

class RecordingSession {
 public:
  // Opens the log and the machine, loads the kernel, writes header and initial checkpoint.
  // Throws MachineError, log::LogError or std::runtime_error (unreadable image).
  // `wrap_sink`, if set, is given the log file's sink and returns the sink the writer uses
  // (replication: the file plus the link to the shadow).
  using SinkWrapper = std::function<std::unique_ptr<log::ByteSink>(std::unique_ptr<log::ByteSink>)>;
  RecordingSession(const SessionConfig& config, Environment& live, const std::string& log_path,
                   const std::string& engine_version, log::WriterOptions writer_options = {},
                   const SinkWrapper& wrap_sink = nullptr);
  // Records a machine that is already running (a shadow that went live and replicates
  // onward): no kernel is loaded; the log's header carries `config` and `images` (the original
  // recording's, so that a replay checks the same files), its first checkpoint is the machine's
  // state at its icount now, and its Output records continue from `console` and `net` (the
  // guest's output so far). `machine` must outlive the session.
  struct Adopted {
    Machine* machine = nullptr;
    std::vector<log::ImageHash> images;
    OutputDigest console, net;
  };
  RecordingSession(const SessionConfig& config, const Adopted& adopted, Environment& live,
                   const std::string& log_path, const std::string& engine_version,
                   log::WriterOptions writer_options = {}, const SinkWrapper& wrap_sink = nullptr);
  ~RecordingSession();

  // Runs until the guest exits or stops, `max_icount` (0: no limit) or RequestStop.
  // `progress` is called after every run chunk.
  RecordSummary Run(uint64_t max_icount, const std::function<void(const RecordProgress&)>& progress);
  // Async-signal-safe: the recording ends at the next instruction boundary (End reason
  // kStopped).
  void RequestStop();
  // Thread-safe: run chunks of at most `instructions` (0: up to the next digest, the default),
  // so that `progress` comes that often (a planned relocation closes a frame at each).
  void set_chunk_limit(uint64_t instructions) { chunk_limit_.store(instructions); }

  // Called once the machine has stopped for good, before the End record is written (planned
  // relocation hands the machine's state over to the shadow there).
  void set_on_stopped(std::function<void(const MachineResult&)> f) { on_stopped_ = std::move(f); }

  Machine& machine() { return *machine_; }
  log::LogWriter& writer() { return *writer_; }

 private:
  class IrqLogger;
  void WriteCheckpoint(uint64_t icount);
  void OpenLog(log::LogHeader header, Environment& live, const std::string& log_path,
               log::WriterOptions writer_options, const SinkWrapper& wrap_sink);
  void Begin();  // observer, first checkpoint

  SessionConfig config_;
  std::unique_ptr<log::LogWriter> writer_;
  std::unique_ptr<RecordingEnvironment> env_;
  std::unique_ptr<IrqLogger> irq_logger_;
  std::unique_ptr<Machine> owned_machine_;
  Machine* machine_ = nullptr;
  uint64_t next_snapshot_id_ = 0;
  uint64_t checkpoints_ = 0;
  // Checkpoints after the first are delta snapshots (the pages written since the checkpoint
  // before), until the deltas since the last full snapshot add up to twice its size: then a
  // full one, so that loading any checkpoint reads at most about three full snapshots' bytes.
  uint64_t full_snapshot_bytes_ = 0;
  uint64_t delta_bytes_since_full_ = 0;
  uint64_t start_ns_ = 0;
  std::function<void(const RecordProgress&)> progress_;
  std::function<void(const MachineResult&)> on_stopped_;
  std::atomic<uint64_t> chunk_limit_{0};
};

}  // namespace vmrr
