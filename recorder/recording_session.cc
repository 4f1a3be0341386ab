// RecordingSession: the record loop (digest points, checkpoints, end).
#include "recorder/recording_session.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "hv-hooks/session/image_hash.h"
#include "logformat/error.h"
#include "hv-hooks/session/session_config.h"

namespace vmrr {
namespace {

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string HostDescription() {
  utsname u{};
  if (uname(&u) != 0) return "unknown host";
  return std::string(u.nodename) + " " + u.sysname + " " + u.release + " " + u.machine;
}

}  // namespace

log::EndReason EndReasonFor(MachineStop stop) {
  switch (stop) {
    case MachineStop::kGuestExit: return log::EndReason::kGuestExit;
    case MachineStop::kPowerOff: return log::EndReason::kPowerOff;
    case MachineStop::kReset: return log::EndReason::kReset;
    case MachineStop::kShutdown:
    case MachineStop::kHaltedForever: return log::EndReason::kShutdown;
    case MachineStop::kTargetReached: return log::EndReason::kInstructionLimit;
    case MachineStop::kBreakpoint:
    case MachineStop::kWatchpoint:
    case MachineStop::kExitRequested: return log::EndReason::kStopped;
    case MachineStop::kHostError: return log::EndReason::kError;
  }
  return log::EndReason::kError;
}

class RecordingSession::IrqLogger : public MachineObserver {
 public:
  explicit IrqLogger(log::LogWriter& w) : writer_(w) {}
  void OnInterrupt(uint64_t icount, uint8_t vector) override {
    writer_.Append(log::Record{icount, log::IrqDelivered{vector}});
  }

 private:
  log::LogWriter& writer_;
};

RecordingSession::RecordingSession(const SessionConfig& config, Environment& live,
                                   const std::string& log_path, const std::string& engine_version,
                                   log::WriterOptions writer_options, const SinkWrapper& wrap_sink)
    : config_(config) {
  log::LogHeader header;
  header.engine_version = engine_version;
  header.images.push_back(HashImageFile("kernel:" + BaseName(config_.kernel_path), config_.kernel_path));
  if (!config_.initrd_path.empty())
    header.images.push_back(HashImageFile("initrd:" + BaseName(config_.initrd_path), config_.initrd_path));
  if (config_.machine.disk_image)
    header.images.push_back(
        HashImageFile("disk:" + BaseName(*config_.machine.disk_image), *config_.machine.disk_image));
  OpenLog(std::move(header), live, log_path, std::move(writer_options), wrap_sink);
  owned_machine_ = std::make_unique<Machine>(config_.machine, *env_);
  machine_ = owned_machine_.get();
  machine_->LoadKernel(config_.kernel_path, config_.initrd_path, config_.cmdline);
  Begin();
}

RecordingSession::RecordingSession(const SessionConfig& config, const Adopted& adopted, Environment& live,
                                   const std::string& log_path, const std::string& engine_version,
                                   log::WriterOptions writer_options, const SinkWrapper& wrap_sink)
    : config_(config) {
  log::LogHeader header;
  header.engine_version = engine_version;
  header.images = adopted.images;
  OpenLog(std::move(header), live, log_path, std::move(writer_options), wrap_sink);
  env_->SeedOutputs(adopted.console, adopted.net);
  machine_ = adopted.machine;
  machine_->SetEnvironment(*env_);
  Begin();
}

void RecordingSession::OpenLog(log::LogHeader header, Environment& live, const std::string& log_path,
                               log::WriterOptions writer_options, const SinkWrapper& wrap_sink) {
  header.host_description = HostDescription();
  header.creation_time_unix_ns = RealtimeNs();
  header.machine_config = EncodeSessionConfig(config_);
  start_ns_ = MonotonicNs();
  if (wrap_sink) {
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      throw log::LogError(log::ErrorCode::kIo, 0, log_path + ": cannot create log: " + std::strerror(errno));
    writer_ = std::make_unique<log::LogWriter>(wrap_sink(std::make_unique<log::FdSink>(fd, true, log_path)), header,
                                               std::move(writer_options));
  } else {
    writer_ = log::LogWriter::CreateFile(log_path, header, std::move(writer_options));
  }
  RecordingEnvironmentOptions eo;
  eo.on_idle_slice = [this] {
    if (progress_ && machine_)
      progress_(RecordProgress{machine_->icount(), machine_->clock().NowNs(), writer_->bytes_written(),
                               MonotonicNs() - start_ns_});
  };
  env_ = std::make_unique<RecordingEnvironment>(live, *writer_, eo);
}

void RecordingSession::Begin() {
  if (config_.irq_records) {
    irq_logger_ = std::make_unique<IrqLogger>(*writer_);
    machine_->SetObserver(irq_logger_.get());
  }
  WriteCheckpoint(machine_->icount());
  writer_->Flush();
}

RecordingSession::~RecordingSession() {
  if (machine_) machine_->SetObserver(nullptr);
}

void RecordingSession::RequestStop() {
  if (machine_) machine_->RequestStop();
  if (env_) env_->InterruptWait();
}

void RecordingSession::WriteCheckpoint(uint64_t icount) {
  const bool full = checkpoints_ == 0 || delta_bytes_since_full_ >= 2 * full_snapshot_bytes_;
  std::vector<uint8_t> snapshot =
      full ? machine_->SaveSnapshot() : machine_->SaveSnapshotDelta(next_snapshot_id_ - 1);
  machine_->memory().ClearDirty();
  if (full) {
    full_snapshot_bytes_ = snapshot.size();
    delta_bytes_since_full_ = 0;
  } else {
    delta_bytes_since_full_ += snapshot.size();
  }
  uint64_t digest = machine_->StateDigest(DigestScope::kFull);
  writer_->AppendSnapshot(icount, next_snapshot_id_++, snapshot, digest);
  writer_->Append(log::Record{icount, log::Digest{log::DigestScope::kMachine, digest}});
  env_->AppendOutputRecords(icount, true);
  ++checkpoints_;
}

RecordSummary RecordingSession::Run(uint64_t max_icount,
                                    const std::function<void(const RecordProgress&)>& progress) {
  progress_ = progress;
  const uint64_t limit = max_icount ? max_icount : ~uint64_t{0};
  const uint64_t di = config_.digest_interval;
  const uint64_t ci = config_.checkpoint_interval;
  RecordSummary s;
  for (;;) {
    const uint64_t now = machine_->icount();
    const uint64_t next_digest = (now / di + 1) * di;
    uint64_t target = std::min(next_digest, limit);
    if (const uint64_t chunk = chunk_limit_.load(); chunk && chunk < target - now) target = now + chunk;
    MachineResult r = machine_->Run(target);
    writer_->Poll();
    if (progress) {
      RecordProgress p{r.icount, machine_->clock().NowNs(), writer_->bytes_written(),
                       MonotonicNs() - start_ns_};
      progress(p);
    }
    if (r.stop == MachineStop::kTargetReached && r.icount == next_digest) {
      writer_->Append(log::Record{r.icount, log::Digest{log::DigestScope::kCpu,
                                                        machine_->StateDigest(DigestScope::kCpu)}});
      env_->AppendOutputRecords(r.icount, false);
      if (r.icount % ci == 0) {
        WriteCheckpoint(r.icount);
      } else if (r.icount % config_.machine_digest_interval == 0) {
        writer_->Append(log::Record{r.icount, log::Digest{log::DigestScope::kMachine,
                                                          machine_->StateDigest(DigestScope::kFull)}});
      }
      if (r.icount < limit) continue;
    }
    if (r.stop == MachineStop::kTargetReached && r.icount < limit) continue;
    // The run is over.
    if (on_stopped_) on_stopped_(r);
    s.result = r;
    s.end_reason = EndReasonFor(r.stop);
    env_->AppendOutputRecords(r.icount, true);
    s.wall_ns = MonotonicNs() - start_ns_;
    writer_->Append(log::Record{r.icount, log::Marker{kWallTimeMarkerPrefix + std::to_string(s.wall_ns)}});
    log::End end;
    end.reason = s.end_reason;
    end.exit_code = r.stop == MachineStop::kGuestExit ? (r.exit_status >> 1) : 0;
    end.final_digest = machine_->StateDigest(DigestScope::kFull);
    writer_->Finish(r.icount, end);
    s.log_bytes = writer_->bytes_written();
    s.records = writer_->records_written();
    s.checkpoints = checkpoints_;
    return s;
  }
}

}  // namespace vmrr
