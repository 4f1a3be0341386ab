// ReplaySession: up-front checks, the replay, the summary.
#include "replayer/replay_session.h"

#include <fmt/format.h>
#include <time.h>

#include <vector>

#include "hv-hooks/session/image_hash.h"
#include "replayer/verified_replay.h"

namespace vmrr {
namespace {

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

ReplaySession::ReplaySession(const std::string& log_path, ReplayOptions options)
    : reader_(log::LogReader::Open(log_path)), options_(std::move(options)) {
  if (reader_.tail().state == log::TailState::kDamaged) {
    const auto& t = reader_.tail();
    throw log::LogError(log::ErrorCode::kDamaged, t.offset,
                        "log '" + log_path + "' is damaged at frame " + std::to_string(t.frame) +
                            " (offset " + std::to_string(t.offset) + "): " + t.message);
  }
  // Every frame is decoded once up front, so that damage is refused before replaying.
  std::vector<log::Record> scratch;
  for (size_t i = 0; i < reader_.frames().size(); ++i) reader_.ReadFrame(i, &scratch);
  try {
    config_ = DecodeSessionConfig(reader_.header().machine_config);
  } catch (const SessionConfigError& e) {
    throw ReplayRefused(ReplayRefused::Code::kConfig, e.what());
  }
  if (reader_.checkpoints().empty())
    throw ReplayRefused(ReplayRefused::Code::kNoCheckpoint,
                        "log '" + log_path + "' holds no starting snapshot (cut before its first checkpoint)");
  if (config_.machine.disk_image) {
    disk_path_ = options_.disk_override ? *options_.disk_override : *config_.machine.disk_image;
    const log::ImageHash* want = nullptr;
    for (const auto& img : reader_.header().images)
      if (img.name.rfind("disk:", 0) == 0) want = &img;
    if (!want)
      throw ReplayRefused(ReplayRefused::Code::kConfig, "the log uses a disk but names no disk image hash");
    log::ImageHash got;
    try {
      got = HashImageFile(want->name, *disk_path_);
    } catch (const std::runtime_error& e) {
      throw ReplayRefused(ReplayRefused::Code::kImageMismatch,
                          std::string("disk image: ") + e.what() + " (use --disk IMAGE)");
    }
    if (got.size != want->size || got.xxh128 != want->xxh128)
      throw ReplayRefused(ReplayRefused::Code::kImageMismatch,
                          fmt::format("disk image '{}' is not the one recorded: {} bytes, XXH128 {:02x}; "
                                      "the log wants {} bytes, XXH128 {:02x}",
                                      *disk_path_, got.size, fmt::join(got.xxh128, ""), want->size,
                                      fmt::join(want->xxh128, "")));
  }
}

ReplaySummary ReplaySession::Run() {
  ReplaySummary s;
  const uint64_t t0 = MonotonicNs();
  s.log_last_icount = reader_.frames().empty() ? 0 : reader_.frames().back().header.last_icount;
  if (!reader_.complete()) s.tail_note = std::string(log::TailStateName(reader_.tail().state)) + ": " + reader_.tail().message;
  ReplayingEnvironmentOptions eo;
  eo.console_out = options_.console_out;
  eo.log_complete = reader_.complete();
  const log::CheckpointInfo start = reader_.checkpoints().front();
  VerifiedReplay replay(reader_, config_, disk_path_, start, eo, options_.test_flip);
  auto fill = [&] {
    s.icount = replay.replay().machine().icount();
    s.inputs = replay.replay().env().inputs_consumed();
    s.interrupts = replay.interrupts_checked();
    s.outputs = replay.outputs_checked();
    s.digests = replay.digests_checked();
    s.recording_wall_ns = replay.recording_wall_ns();
    s.end = replay.end();
    s.wall_ns = MonotonicNs() - t0;
  };
  try {
    VerifiedReplay::Stop stop = replay.Run(options_.until);
    s.outcome = stop == VerifiedReplay::Stop::kEnd     ? ReplaySummary::Outcome::kMatched
                : stop == VerifiedReplay::Stop::kUntil ? ReplaySummary::Outcome::kUntil
                                                       : ReplaySummary::Outcome::kCutLog;
    fill();
    if (options_.at_end) options_.at_end(replay.replay().machine());
  } catch (const LogExhausted&) {
    s.outcome = ReplaySummary::Outcome::kCutLog;
    fill();
    if (options_.at_end) options_.at_end(replay.replay().machine());
  } catch (const Divergence& d) {
    fill();
    s.outcome = ReplaySummary::Outcome::kDiverged;
    SearchInputs in;
    in.reader = &reader_;
    in.config = &config_;
    in.disk_path = disk_path_;
    in.checkpoint = replay.last_checkpoint();
    in.detected_icount = d.icount();
    in.last_match_icount = replay.last_match_icount();
    in.kind = d.kind();
    in.message = d.what();
    in.disturbance = options_.test_flip;
    bool searched = false;
    if (options_.search) {
      try {
        s.divergence = SearchDivergence(in);
        searched = true;
      } catch (const std::exception& e) {
        // The search replays the log again; if that fails (a damaged snapshot, a machine
        // error), the divergence itself still stands.
        in.message += std::string(" (the search for its start failed: ") + e.what() + ")";
      }
    }
    if (!searched) {
      DivergenceReport r;
      r.kind = d.kind();
      r.detected_icount = d.icount();
      r.message = d.what();
      r.checkpoint_icount = in.checkpoint.icount;
      r.last_match_icount = in.last_match_icount;
      s.divergence = r;
    }
    s.wall_ns = MonotonicNs() - t0;
  }
  return s;
}

}  // namespace vmrr
