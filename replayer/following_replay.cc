// GrowingLog and FollowingReplay: the shadow's continuous replay of a streamed log.
#include "replayer/following_replay.h"

#include "replayer/boot_environment.h"

#include <fmt/format.h>

#include <cstring>

#include "logformat/error.h"
#include "hv-hooks/session/image_hash.h"
#include "logformat/log_reader.h"
#include "replayer/replay_session.h"

namespace vmrr {

// ---- GrowingLog -------------------------------------------------------------------------

void GrowingLog::Append(std::span<const uint8_t> bytes) {
  pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  bytes_ += bytes.size();
  if (finished_) return;  // the footer: nothing more to decode
  if (!has_header()) {
    try {
      header_size_ = log::ParseHeader(pending_, &header_);
    } catch (const log::LogError& e) {
      if (e.code() == log::ErrorCode::kTruncated) return;  // the rest of the header is coming
      throw;
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(header_size_));
    parsed_ = header_size_;
  }
  size_t pos = 0;
  std::vector<log::Record> records;
  while (pos < pending_.size()) {
    std::span<const uint8_t> rest(pending_.data() + pos, pending_.size() - pos);
    if (rest.size() >= 4 && std::memcmp(rest.data(), log::kFooterMagic.data(), 4) == 0) {
      if (records_end() == 0 || !std::holds_alternative<log::End>(record(records_end() - 1).body))
        throw log::LogError(log::ErrorCode::kDamaged, parsed_ + pos, "a footer before the End record");
      finished_ = true;
      break;
    }
    log::FrameHeader h;
    const size_t n = log::DecodeFrame(rest, parsed_ + pos, &h, &records);
    if (n == 0) break;
    if (h.first_icount < last_frame_icount_)
      throw log::LogError(log::ErrorCode::kDamaged, parsed_ + pos, "frame icounts go backwards");
    for (log::Record& r : records) records_.push_back(std::move(r));
    last_frame_icount_ = h.last_icount;
    ++frames_;
    pos += n;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(pos));
  parsed_ += pos;
}

void GrowingLog::TrimBefore(size_t i) {
  while (base_ < i && !records_.empty()) {
    records_.pop_front();
    ++base_;
  }
}

bool GrowingLog::Cursor::Next(log::Record* out) {
  if (index_ < log_.records_begin()) index_ = log_.records_begin();  // never: readers trim
  if (index_ >= log_.records_end()) return false;
  *out = log_.record(index_++);
  return true;
}

// ---- FollowingReplay --------------------------------------------------------------------

FollowingReplay::FollowingReplay(GrowingLog& log, Options options)
    : log_(log), options_(std::move(options)), boot_env_(std::make_unique<BootEnvironment>()) {}

FollowingReplay::~FollowingReplay() = default;

uint64_t FollowingReplay::icount() const { return machine_ ? machine_->icount() : 0; }

const OutputDigest& FollowingReplay::console() const {
  static const OutputDigest kNone;
  return env_ ? env_->output(log::OutputChannel::kConsole) : kNone;
}

const OutputDigest& FollowingReplay::net() const {
  static const OutputDigest kNone;
  return env_ ? env_->output(log::OutputChannel::kNet) : kNone;
}

void FollowingReplay::CheckDiskImage(const std::string& path) const {
  const log::ImageHash* want = nullptr;
  for (const auto& img : log_.header().images)
    if (img.name.rfind("disk:", 0) == 0) want = &img;
  if (!want) throw ReplayRefused(ReplayRefused::Code::kConfig, "the primary uses a disk but names no disk image hash");
  log::ImageHash got;
  try {
    got = HashImageFile(want->name, path);
  } catch (const std::runtime_error& e) {
    throw ReplayRefused(ReplayRefused::Code::kImageMismatch, std::string("disk image: ") + e.what());
  }
  if (got.size != want->size || got.xxh128 != want->xxh128)
    throw ReplayRefused(ReplayRefused::Code::kImageMismatch,
                        "disk image '" + path + "' is not the primary's base image (size or XXH128 differs)");
}

bool FollowingReplay::TryStart() {
  if (machine_) return true;
  if (!log_.has_header()) return false;
  // The first checkpoint: its chunks in order, then its Checkpoint record.
  std::vector<uint8_t> blob;
  std::optional<uint64_t> id;
  for (size_t i = log_.records_begin(); i < log_.records_end(); ++i) {
    const log::Record& r = log_.record(i);
    if (const auto* c = std::get_if<log::SnapshotChunk>(&r.body)) {
      if (!id) id = c->snapshot_id;
      if (c->snapshot_id != *id) continue;
      if (c->offset != blob.size())
        throw log::LogError(log::ErrorCode::kDamaged, 0, "the first snapshot's chunks are out of order");
      blob.insert(blob.end(), c->bytes.begin(), c->bytes.end());
    } else if (const auto* cp = std::get_if<log::Checkpoint>(&r.body); cp && id && cp->snapshot_id == *id) {
      if (blob.size() != cp->snapshot_size)
        throw log::LogError(log::ErrorCode::kDamaged, 0, "the first snapshot is incomplete");
      config_ = DecodeSessionConfig(log_.header().machine_config);
      if (config_.machine.disk_image) CheckDiskImage(*config_.machine.disk_image);
      MachineConfig mc = config_.machine;
      mc.disk_write_through = false;
      auto machine = std::make_unique<Machine>(mc, *boot_env_);
      machine->LoadSnapshot(blob);
      inputs_ = std::make_unique<GrowingLog::Cursor>(log_, i + 1);
      ReplayingEnvironmentOptions eo;
      eo.console_out = options_.console_out;
      eo.net_out = options_.net_out;
      eo.log_complete = false;
      eo.on_failure = [this](std::exception_ptr f) {
        if (failure_) return;
        failure_ = f;
        std::string what = "replay failed";
        try {
          std::rethrow_exception(f);
        } catch (const std::exception& e) {
          what = e.what();
        }
        machine_->StopForHostError(what);
      };
      env_ = std::make_unique<ReplayingEnvironment>(*inputs_, eo);
      machine_ = std::move(machine);
      machine_->SetEnvironment(*env_);
      verify_index_ = i + 1;
      start_icount_ = r.icount;
      return true;
    }
  }
  return false;
}

MachineResult FollowingReplay::RunTo(uint64_t target) {
  const MachineResult r = machine_->Run(target);
  if (failure_) std::rethrow_exception(failure_);
  if (r.stop == MachineStop::kHostError)
    throw MachineError(MachineError::Code::kHost, "host error during the replay at icount " + std::to_string(r.icount) +
                                                      ": " + machine_->host_error());
  if (r.stop != MachineStop::kTargetReached && r.stop != MachineStop::kExitRequested) stopped_ = r;
  return r;
}

const log::Record* FollowingReplay::NextVerification() {
  for (; verify_index_ < log_.records_end(); ++verify_index_) {
    const log::Record& r = log_.record(verify_index_);
    if (std::holds_alternative<log::Digest>(r.body) || std::holds_alternative<log::Output>(r.body) ||
        std::holds_alternative<log::Checkpoint>(r.body) || std::holds_alternative<log::End>(r.body))
      return &r;
  }
  return nullptr;
}

void FollowingReplay::Check(const log::Record& r) {
  const uint64_t at = r.icount;
  if (const auto* d = std::get_if<log::Digest>(&r.body)) {
    const uint64_t got =
        machine_->StateDigest(d->scope == log::DigestScope::kCpu ? DigestScope::kCpu : DigestScope::kFull);
    if (got != d->hash)
      throw Divergence(Divergence::Kind::kDigest, at,
                       fmt::format("{} state digest at icount {} is {:016x}, the primary's log has {:016x}",
                                   d->scope == log::DigestScope::kCpu ? "CPU" : "whole-machine", at, got, d->hash));
    ++digests_;
  } else if (const auto* c = std::get_if<log::Checkpoint>(&r.body)) {
    const uint64_t got = machine_->StateDigest(DigestScope::kFull);
    if (got != c->state_digest)
      throw Divergence(Divergence::Kind::kDigest, at,
                       fmt::format("whole-machine state at checkpoint icount {} is {:016x}, the log has {:016x}", at,
                                   got, c->state_digest));
    ++digests_;
  } else if (const auto* o = std::get_if<log::Output>(&r.body)) {
    const OutputDigest want{o->total_bytes, o->digest};
    if (at == start_icount_) {
      env_->set_output(o->channel, want);
      if (o->channel == log::OutputChannel::kConsole) console_base_ = o->total_bytes;
    } else if (!(env_->output(o->channel) == want)) {
      throw Divergence(Divergence::Kind::kOutput, at,
                       fmt::format("{} output differs by icount {}: {} bytes, the log has {}",
                                   o->channel == log::OutputChannel::kConsole ? "console" : "network", at,
                                   env_->output(o->channel).total_bytes, o->total_bytes));
    }
  } else if (const auto* e = std::get_if<log::End>(&r.body)) {
    // The recording's machine stopped here: a guest exit (the machine stops by itself at this
    // icount), a triple fault or endless halt (the faulting instruction does not retire: run on
    // and the machine must stop here), or a stop request (nothing to reproduce but the state).
    if (e->reason == log::EndReason::kShutdown && !stopped_) RunTo(at + 1);
    const bool exit = e->reason == log::EndReason::kGuestExit;
    if (exit && (!stopped_ || stopped_->stop != MachineStop::kGuestExit || (stopped_->exit_status >> 1) != e->exit_code))
      throw Divergence(Divergence::Kind::kEnd, at, "the recording's guest exited here, the replay did not (the same way)");
    if (machine_->icount() != at)
      throw Divergence(Divergence::Kind::kEnd, at,
                       "the recording ended at icount " + std::to_string(at) + ", the replay is at " +
                           std::to_string(machine_->icount()));
    if (e->reason != log::EndReason::kStopped && machine_->StateDigest(DigestScope::kFull) != e->final_digest)
      throw Divergence(Divergence::Kind::kEnd, at, "the final whole-machine digest differs from the recording's");
    end_ = *e;
  }
}

bool FollowingReplay::Step(uint64_t budget) {
  if (!machine_ || end_) return false;
  const uint64_t start = machine_->icount();
  const uint64_t limit = std::min(log_.held_below(), budget > ~start ? ~uint64_t{0} : start + budget);
  for (;;) {
    const log::Record* v = NextVerification();
    if (v && v->icount <= limit) {
      const uint64_t at = v->icount;
      if (at < machine_->icount())
        throw Divergence(Divergence::Kind::kEnd, machine_->icount(),
                         "the replay is past the log's " + log::KindName(v->kind_number()) + " at icount " +
                             std::to_string(at));
      if (!stopped_) RunTo(at);
      if (machine_->icount() != at && !std::holds_alternative<log::End>(v->body))
        throw Divergence(Divergence::Kind::kEnd, machine_->icount(),
                         std::string("the machine stopped (") + MachineStopName(stopped_->stop) + ") at icount " +
                             std::to_string(machine_->icount()) + " but the log goes on");
      env_->CheckNoInputBefore(at);
      const log::Record record = *v;
      ++verify_index_;
      Check(record);
      if (end_) break;
      continue;
    }
    if (!stopped_ && machine_->icount() < limit) RunTo(limit);
    break;
  }
  log_.TrimBefore(std::min(verify_index_, inputs_->index()));
  return machine_->icount() != start || end_.has_value();
}

Machine& FollowingReplay::GoLive(Environment& live) {
  while (Step(~uint64_t{0})) {
  }
  if (failure_) std::rethrow_exception(failure_);
  machine_->SetEnvironment(live);
  return *machine_;
}

}  // namespace vmrr
