// VerifiedReplay: the replay loop with its checks.
#include "replayer/verified_replay.h"

#include <fmt/format.h>

#include <optional>

#include "hv-hooks/session/session_config.h"

namespace vmrr {
namespace {

bool IsVerification(const log::Record& r) {
  return std::holds_alternative<log::Digest>(r.body) || std::holds_alternative<log::Output>(r.body) ||
         std::holds_alternative<log::Checkpoint>(r.body) || std::holds_alternative<log::End>(r.body) ||
         std::holds_alternative<log::IrqDelivered>(r.body) || std::holds_alternative<log::Marker>(r.body);
}

std::string Describe(const log::Record& r) {
  std::string s = log::KindName(r.kind_number()) + " at icount " + std::to_string(r.icount);
  if (const auto* irq = std::get_if<log::IrqDelivered>(&r.body)) s += " (vector " + std::to_string(irq->vector) + ")";
  return s;
}

}  // namespace

VerifiedReplay::VerifiedReplay(const log::LogReader& reader, const SessionConfig& config,
                               const std::optional<std::string>& disk_path,
                               const log::CheckpointInfo& start, ReplayingEnvironmentOptions env_options,
                               std::optional<BitFlip> flip)
    : reader_(reader),
      config_(config),
      machine_(reader, config, disk_path, start,
               [&] {
                 env_options.stop_in_wait = [this](uint64_t icount) {
                   // The recording was stopped in an idle wait here once every input it
                   // logged at this icount had been taken, but for the IdleWake that wait
                   // itself logged (whose answer the stopping machine did not use).
                   if (!stopped_at_ || icount != *stopped_at_) return false;
                   ReplayingEnvironment& env = machine_.env();
                   const log::Record* next = env.PeekInput();
                   if (next && next->icount == icount) {
                     if (next->kind_number() != static_cast<uint8_t>(log::RecordKind::kIdleWake)) return false;
                     const log::Record* after = env.PeekInput(1);
                     if (after && after->icount == icount) return false;
                   }
                   machine_.machine().RequestStop();
                   return true;
                 };
                 return std::move(env_options);
               }(),
               flip),
      verification_(reader, PositionAfterCheckpoint(reader, start)),
      start_icount_(start.icount),
      last_match_(start.icount),
      last_full_match_(start.icount),
      last_checkpoint_(start) {
  machine_.machine().SetObserver(this);
}

VerifiedReplay::~VerifiedReplay() { machine_.machine().SetObserver(nullptr); }

bool VerifiedReplay::Fill() {
  log::Record r;
  while (!verification_done_) {
    if (!verification_.Next(&r)) {
      verification_done_ = true;
      return false;
    }
    if (const auto* m = std::get_if<log::Marker>(&r.body)) {
      const std::string prefix = kWallTimeMarkerPrefix;
      if (m->text.rfind(prefix, 0) == 0) {
        try {
          recording_wall_ns_ = std::stoull(m->text.substr(prefix.size()));
        } catch (const std::exception&) {
        }
      }
      continue;
    }
    if (!IsVerification(r)) continue;
    if (!config_.irq_records && std::holds_alternative<log::IrqDelivered>(r.body)) continue;
    ahead_.push_back(std::move(r));
    return true;
  }
  return false;
}

const log::Record* VerifiedReplay::NextNonIrq() {
  for (size_t i = 0;; ++i) {
    if (i >= ahead_.size() && !Fill()) return nullptr;
    if (!std::holds_alternative<log::IrqDelivered>(ahead_[i].body)) return &ahead_[i];
  }
}

void VerifiedReplay::OnInterrupt(uint64_t icount, uint8_t vector) {
  if (!config_.irq_records) return;
  if (ahead_.empty()) {
    try {
      Fill();
    } catch (...) {  // a damaged frame (LogError): reported, never unwound through the CPU
      machine_.Fail(std::current_exception());
      return;
    }
  }
  // Called from inside the CPU's interrupt acceptance: a difference is reported through the
  // replay machine, which stops at the boundary after the delivery and throws it from RunTo.
  auto diverged = [&](const std::string& what) {
    machine_.Fail(std::make_exception_ptr(Divergence(
        Divergence::Kind::kInterrupt, icount,
        "interrupt vector " + std::to_string(vector) + " accepted at icount " + std::to_string(icount) + what)));
  };
  if (ahead_.empty()) {
    if (!reader_.complete()) return;  // a cut log: nothing more to check against
    return diverged(" after the end of the log");
  }
  const log::Record& r = ahead_.front();
  const auto* irq = std::get_if<log::IrqDelivered>(&r.body);
  if (!irq || r.icount != icount || irq->vector != vector)
    return diverged(" but the log's next event is " + Describe(r));
  ahead_.pop_front();
  ++irqs_;
  last_match_ = icount;
}

void VerifiedReplay::Check(const log::Record& r) {
  Machine& m = machine_.machine();
  const uint64_t at = r.icount;
  if (const auto* d = std::get_if<log::Digest>(&r.body)) {
    uint64_t got = m.StateDigest(d->scope == log::DigestScope::kCpu ? DigestScope::kCpu : DigestScope::kFull);
    if (got != d->hash)
      throw Divergence(Divergence::Kind::kDigest, at,
                       fmt::format("{} state digest at icount {} is {:016x}, the log has {:016x}",
                                   d->scope == log::DigestScope::kCpu ? "CPU" : "whole-machine", at, got,
                                   d->hash));
    ++digests_;
    if (d->scope == log::DigestScope::kMachine) last_full_match_ = at;
  } else if (const auto* o = std::get_if<log::Output>(&r.body)) {
    OutputDigest want{o->total_bytes, o->digest};
    if (at == start_icount_) {
      machine_.env().set_output(o->channel, want);  // a replay from a checkpoint adopts it
    } else {
      const OutputDigest& got = machine_.env().output(o->channel);
      if (!(got == want))
        throw Divergence(Divergence::Kind::kOutput, at,
                         fmt::format("{} output differs by icount {}: {} bytes (digest {:016x}), the "
                                     "log has {} bytes (digest {:016x})",
                                     o->channel == log::OutputChannel::kConsole ? "console" : "network",
                                     at, got.total_bytes, got.digest, o->total_bytes, o->digest));
      ++outputs_;
    }
  } else if (const auto* c = std::get_if<log::Checkpoint>(&r.body)) {
    uint64_t got = m.StateDigest(DigestScope::kFull);
    if (got != c->state_digest)
      throw Divergence(Divergence::Kind::kDigest, at,
                       fmt::format("whole-machine state at checkpoint icount {} is {:016x}, the log has {:016x}",
                                   at, got, c->state_digest));
    ++digests_;
    last_full_match_ = at;
    for (const auto& info : reader_.checkpoints())
      if (info.snapshot_id == c->snapshot_id && info.icount == at) last_checkpoint_ = info;
  } else if (const auto* e = std::get_if<log::End>(&r.body)) {
    const log::Record* pending = machine_.env().PeekInput();
    if (e->reason == log::EndReason::kStopped && result_.stop == MachineStop::kTargetReached && pending &&
        pending->icount == at) {
      // Stopped while idle after taking inputs at this icount: run into the idle wait, where
      // the stop is repeated (stop_in_wait).
      result_ = machine_.RunTo(at + 1);
      if (result_.icount != at || result_.stop != MachineStop::kExitRequested)
        throw Divergence(Divergence::Kind::kEnd, at,
                         "the recording was stopped at icount " + std::to_string(at) + " but the replay went on (" +
                             MachineStopName(result_.stop) + " at icount " + std::to_string(result_.icount) + ")");
    }
    if (e->reason == log::EndReason::kShutdown && result_.stop == MachineStop::kTargetReached) {
      // The recording stopped at a triple fault (the faulting instruction does not retire)
      // or an endless halt: run on, the machine must stop by itself at this icount.
      try {
        result_ = machine_.RunTo(at + 1);
      } catch (const Divergence&) {
        result_.icount = m.icount();
      } catch (const LogExhausted&) {
        result_.icount = m.icount();
      }
      if (result_.icount != at || (result_.stop != MachineStop::kShutdown && result_.stop != MachineStop::kHaltedForever))
        throw Divergence(Divergence::Kind::kEnd, at,
                         "the recording ended by shutdown at icount " + std::to_string(at) +
                             " but the replay went on (" + MachineStopName(result_.stop) + " at icount " +
                             std::to_string(result_.icount) + ")");
    }
    const MachineResult& res = result_;
    bool ok = true;
    std::string why;
    // The ends the guest asks for through a device: the replay must stop the same way.
    auto requested_stop = [](log::EndReason reason) -> std::optional<MachineStop> {
      switch (reason) {
        case log::EndReason::kGuestExit: return MachineStop::kGuestExit;
        case log::EndReason::kPowerOff: return MachineStop::kPowerOff;
        case log::EndReason::kReset: return MachineStop::kReset;
        default: return std::nullopt;
      }
    };
    const std::optional<MachineStop> want = requested_stop(e->reason);
    const bool device_stop = res.stop == MachineStop::kGuestExit || res.stop == MachineStop::kPowerOff ||
                             res.stop == MachineStop::kReset;
    if (want) {
      if (res.stop != *want) {
        ok = false;
        why = std::string("the recording ended by ") + log::EndReasonName(e->reason) + ", the replay by " +
              MachineStopName(res.stop);
      } else if (res.stop == MachineStop::kGuestExit && (res.exit_status >> 1) != e->exit_code) {
        ok = false;
        why = "the guest exited with code " + std::to_string(res.exit_status >> 1) + ", the log has " +
              std::to_string(e->exit_code);
      }
    } else if (device_stop) {
      ok = false;
      why = std::string("the replay ended by ") + MachineStopName(res.stop) + " but the recording ended by " +
            log::EndReasonName(e->reason);
    }
    if (ok) {
      uint64_t got = m.StateDigest(DigestScope::kFull);
      if (got != e->final_digest) {
        ok = false;
        why = fmt::format("final whole-machine digest {:016x}, the log has {:016x}", got, e->final_digest);
      }
    }
    if (!ok) throw Divergence(Divergence::Kind::kEnd, at, "at the end (icount " + std::to_string(at) + "): " + why);
    end_ = *e;
  }
  last_match_ = at;
}

VerifiedReplay::Stop VerifiedReplay::Run(uint64_t until) {
  Machine& m = machine_.machine();
  for (;;) {
    const log::Record* next = NextNonIrq();
    if (!next) {
      // A cut log (a complete one ends with End): replay to its last whole frame.
      const uint64_t last = reader_.frames().empty() ? m.icount() : reader_.frames().back().header.last_icount;
      const uint64_t target = std::min(last, until);
      try {
        result_ = machine_.RunTo(target);
      } catch (const LogExhausted&) {
        result_.icount = m.icount();
        return Stop::kLogEnd;
      }
      return target == until && until < last ? Stop::kUntil : Stop::kLogEnd;
    }
    const uint64_t at = next->icount;
    // Read every record at this icount, to know whether the recording was stopped here.
    while (!verification_done_ && ahead_.back().icount <= at && Fill()) {
    }
    for (const log::Record& r : ahead_)
      if (const auto* e = std::get_if<log::End>(&r.body); e && e->reason == log::EndReason::kStopped)
        stopped_at_ = r.icount;
    if (at > until) {
      result_ = machine_.RunTo(until);
      if (result_.icount == until) {
        machine_.env().CheckNoInputBefore(until);
        return Stop::kUntil;
      }
    } else {
      result_ = machine_.RunTo(at);
    }
    if (result_.icount != at) {
      throw Divergence(Divergence::Kind::kEnd, result_.icount,
                       std::string("the machine stopped (") + MachineStopName(result_.stop) + ") at icount " +
                           std::to_string(result_.icount) + " but the log goes on (next: " + Describe(*next) + ")");
    }
    machine_.env().CheckNoInputBefore(at);
    const log::Record& front = ahead_.front();
    if (std::holds_alternative<log::IrqDelivered>(front.body))
      throw Divergence(Divergence::Kind::kMissedInterrupt, front.icount,
                       "the log's " + Describe(front) + " was not taken by the replay (it reached icount " +
                           std::to_string(at) + ")");
    log::Record r = std::move(ahead_.front());
    ahead_.pop_front();
    Check(r);
    if (std::holds_alternative<log::End>(r.body)) return Stop::kEnd;
  }
}

}  // namespace vmrr
