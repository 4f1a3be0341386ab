#include "analysis/time_travel.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <utility>
#include <variant>

namespace vmrr::analysis {

const char* TravelStopName(TravelStop::Kind kind) {
  switch (kind) {
    case TravelStop::Kind::kTarget: return "target";
    case TravelStop::Kind::kBreakpoint: return "breakpoint";
    case TravelStop::Kind::kWatchpoint: return "watchpoint";
    case TravelStop::Kind::kBegin: return "beginning of the recording";
    case TravelStop::Kind::kEnd: return "end of the recording";
    case TravelStop::Kind::kInterrupted: return "interrupted";
  }
  return "?";
}

namespace {

ReplayingEnvironmentOptions EnvOptions(const log::LogReader& reader) {
  ReplayingEnvironmentOptions o;
  o.log_complete = reader.complete();
  return o;
}

const log::CheckpointInfo& FirstCheckpoint(const log::LogReader& reader) {
  if (reader.checkpoints().empty())
    throw std::invalid_argument("log '" + reader.name() + "' holds no starting snapshot");
  return reader.checkpoints().front();
}

}  // namespace

TimeTravel::TimeTravel(const log::LogReader& reader, const SessionConfig& config,
                       const std::optional<std::string>& disk_path, TimeTravelOptions options)
    : reader_(reader), options_(options) {
  if (options_.checkpoint_interval == 0) options_.checkpoint_interval = 1;
  if (options_.slice == 0) options_.slice = 1;
  slice_ = options_.slice;
  rm_ = std::make_unique<ReplayMachine>(reader, config, disk_path, FirstCheckpoint(reader), EnvOptions(reader));
  store_ = std::make_unique<CheckpointStore>(options_.checkpoint_memory);
  begin_ = rm_->machine().icount();
  furthest_ = begin_;
  store_->Take(*rm_);
  // The recording's end: its End record (in the last frame that holds records), else the last
  // icount a cut log covers.
  end_ = reader.frames().empty() ? begin_ : reader.frames().back().header.last_icount;
  std::vector<log::Record> records;
  for (size_t i = reader.frames().size(); i-- > 0 && !end_record_;) {
    reader.ReadFrame(i, &records);
    for (const log::Record& r : records) {
      if (const auto* e = std::get_if<log::End>(&r.body)) {
        end_record_ = *e;
        end_ = r.icount;
      }
    }
    if (!records.empty()) break;
  }
  end_ = std::max(end_, begin_);
}

TimeTravel::~TimeTravel() = default;

uint64_t TimeTravel::icount() const { return rm_->machine().icount(); }
Machine& TimeTravel::machine() { return rm_->machine(); }

void TimeTravel::AddBreakpoint(uint64_t linear) { breakpoints_.insert(linear); }
void TimeTravel::RemoveBreakpoint(uint64_t linear) { breakpoints_.erase(linear); }
void TimeTravel::SetWatchpoints(std::vector<Watchpoint> watchpoints) { watchpoints_ = std::move(watchpoints); }

uint64_t TimeTravel::Linear() {
  const CpuState& s = rm_->machine().cpu().state();
  return s.seg[kCs].base + s.rip;  // as Machine's breakpoints compare
}

void TimeTravel::Arm(bool on, const std::vector<Watchpoint>& watches) {
  Machine& m = rm_->machine();
  m.ClearBreakpoints();
  if (on)
    for (uint64_t b : breakpoints_) m.AddBreakpoint(b);
  m.SetWatchpoints(on ? watches : std::vector<Watchpoint>{});
}

void TimeTravel::NoteStop(const MachineResult& r) {
  if (IsGuestEnd(r.stop)) {
    end_ = std::min(end_, r.icount);
    store_->NoteEnd(r);
  }
}

void TimeTravel::MaybeCheckpoint() {
  if (post_delivery_) return;  // checkpoints hold the state Run(icount) reaches, before deliveries
  const uint64_t ic = icount();
  if (ic % options_.checkpoint_interval != 0) return;
  if (store_->NearestAtOrBefore(ic) == ic) return;
  store_->Take(*rm_);
}

// Slices between two looks at the interrupt callback are sized by how long they take, so that
// a Ctrl-C is seen within ~10 ms however fast this build replays (a sanitizer build is ~10x
// slower). Where a slice ends changes nothing the replay does: stops are exact whatever the
// chunking, and checkpoints sit at fixed icounts.
TimeTravel::SliceTimer::SliceTimer(TimeTravel* tt)
    : tt_(tt), from_(tt->icount()), t0_(std::chrono::steady_clock::now()) {}
TimeTravel::SliceTimer::~SliceTimer() {
  constexpr double kTargetNs = 10e6;
  const uint64_t ran = tt_->icount() > from_ ? tt_->icount() - from_ : 0;
  const double ns = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::steady_clock::now() - t0_)
                                            .count());
  if (ran < tt_->slice_ / 2 || ns <= 0) return;  // a stop or a short slice says little
  const double want = static_cast<double>(ran) * kTargetNs / ns;
  tt_->slice_ = static_cast<uint64_t>(std::clamp(want, 10'000.0, static_cast<double>(tt_->options_.slice)));
}

void TimeTravel::RunQuiet(uint64_t target) {
  Arm(false, {});
  if (icount() < target) post_delivery_ = false;
  while (icount() < target) {
    const uint64_t from = icount();
    const uint64_t boundary = (from / options_.checkpoint_interval + 1) * options_.checkpoint_interval;
    const MachineResult r = rm_->RunTo(std::min(target, boundary));
    replayed_ += r.icount - from;
    furthest_ = std::max(furthest_, r.icount);
    if (r.stop != MachineStop::kTargetReached) {
      NoteStop(r);
      if (r.icount == from || r.stop != MachineStop::kExitRequested) return;
    }
    MaybeCheckpoint();
  }
}

std::optional<TimeTravel::Hit> TimeTravel::RunArmed(uint64_t target, bool check_first) {
  if (check_first && breakpoints_.count(Linear())) return Hit{TravelStop::Kind::kBreakpoint, icount(), {}, Linear()};
  const uint64_t from = icount();
  const MachineResult r = rm_->RunTo(target);
  replayed_ += r.icount - from;
  furthest_ = std::max(furthest_, r.icount);
  const Cpu& cpu = rm_->machine().cpu();
  // Run(target) stops before a delivery at target, so only a stop can leave the state after one.
  post_delivery_ = cpu.last_delivery_icount() == r.icount;
  switch (r.stop) {
    case MachineStop::kTargetReached:
    case MachineStop::kExitRequested:
      return std::nullopt;
    case MachineStop::kBreakpoint:
      return Hit{TravelStop::Kind::kBreakpoint, r.icount, {}, Linear(), post_delivery_};
    case MachineStop::kWatchpoint: {
      // Found going backwards, the position is just before the access: before the writing
      // instruction, which for a handler's first instruction is after the delivery at its
      // boundary; or before the delivery itself when the delivery wrote (its stack frame).
      const WatchHit& w = cpu.last_watch_hit();
      const bool by_handler_entry = r.icount == w.icount + 1 && cpu.last_delivery_icount() == w.icount;
      return Hit{TravelStop::Kind::kWatchpoint, r.icount, w, cpu.state().seg[kCs].base + w.rip, by_handler_entry};
    }
    case MachineStop::kGuestExit:
    case MachineStop::kPowerOff:
    case MachineStop::kReset:
    case MachineStop::kShutdown:
    case MachineStop::kHaltedForever:
    case MachineStop::kHostError:
      NoteStop(r);
      return Hit{TravelStop::Kind::kEnd, r.icount, {}};
  }
  return std::nullopt;
}

TravelStop TimeTravel::GoTo(uint64_t target) {
  target = std::clamp(target, begin_, end_);
  Arm(false, {});
  const uint64_t now = icount();
  undo_step_.reset();
  if (target != now || post_delivery_) {
    uint64_t from = store_->NearestAtOrBefore(target).value_or(begin_);
    // A checkpoint of the log's own between that one and the target (and here) is nearer:
    // restore it and keep it in the store.
    const log::CheckpointInfo* seed = LogCheckpointAtOrBefore(target);
    if (seed && seed->icount > from + options_.checkpoint_interval &&
        (target < now || seed->icount > now + options_.checkpoint_interval)) {
      rm_->SeekToCheckpoint(*seed);
      store_->Take(*rm_);
      ++seeded_;
      from = seed->icount;
    }
    // Run forward from here when no checkpoint lies between here and the target (and here is
    // the state Run(now) reaches).
    if (target < now || from > now || post_delivery_) store_->GoTo(*rm_, from);
    post_delivery_ = false;
    RunQuiet(target);
  }
  TravelStop s;
  s.kind = icount() == end_ && target == end_ ? TravelStop::Kind::kEnd
           : icount() == begin_ && target == begin_ ? TravelStop::Kind::kBegin
                                                     : TravelStop::Kind::kTarget;
  s.icount = icount();
  return s;
}

TravelStop TimeTravel::StepForward() {
  if (icount() >= end_) return TravelStop{TravelStop::Kind::kEnd, icount(), {}};
  // From the state after a delivery, a step back must return to it, not to the state before.
  std::optional<Hit> back;
  if (post_delivery_) back = Here();
  RunQuiet(icount() + 1);
  undo_step_ = back;
  return TravelStop{icount() >= end_ ? TravelStop::Kind::kEnd : TravelStop::Kind::kTarget, icount(), {}};
}

TravelStop TimeTravel::StepBackward() {
  if (icount() <= begin_ && !post_delivery_) return TravelStop{TravelStop::Kind::kBegin, icount(), {}};
  if (undo_step_ && undo_step_->icount + 1 == icount()) {
    const Hit back = *undo_step_;
    MoveTo(back);
    return TravelStop{TravelStop::Kind::kTarget, icount(), {}};
  }
  // From the state after a delivery, the step back is to the state before it.
  TravelStop s = GoTo(post_delivery_ ? icount() : icount() - 1);
  s.kind = TravelStop::Kind::kTarget;  // it moved: a step, wherever it landed
  return s;
}

TimeTravel::Hit TimeTravel::Here() {
  return Hit{TravelStop::Kind::kTarget, icount(), {}, Linear(), post_delivery_};
}

TravelStop TimeTravel::Found(const Hit& h) {
  TravelStop s;
  s.kind = h.kind;
  s.icount = h.icount;
  s.watch = h.watch;
  return s;
}

TravelStop TimeTravel::ContinueForward(const Interrupt& interrupt) {
  bool check_first = false;  // continuing from a breakpoint executes it
  for (;;) {
    if (icount() >= end_) {
      Arm(false, {});
      return TravelStop{TravelStop::Kind::kEnd, icount(), {}};
    }
    const uint64_t from = icount();
    const uint64_t boundary = (from / options_.checkpoint_interval + 1) * options_.checkpoint_interval;
    Arm(true, watchpoints_);
    const SliceTimer timer(this);
    const std::optional<Hit> h = RunArmed(std::min({end_, from + slice_, boundary}), check_first);
    Arm(false, {});
    check_first = true;  // a slice boundary on a breakpoint stops there
    MaybeCheckpoint();
    if (h) {
      if (h->kind == TravelStop::Kind::kEnd) return TravelStop{TravelStop::Kind::kEnd, icount(), {}};
      undo_step_.reset();
      return Found(*h);
    }
    if (icount() >= end_) continue;  // reports the end
    if (interrupt && interrupt()) return TravelStop{TravelStop::Kind::kInterrupted, icount(), {}};
  }
}

const log::CheckpointInfo* TimeTravel::LogCheckpointAtOrBefore(uint64_t icount) const {
  const auto& cks = reader_.checkpoints();
  auto it = std::upper_bound(cks.begin(), cks.end(), icount,
                             [](uint64_t ic, const log::CheckpointInfo& c) { return ic < c.icount; });
  return it == cks.begin() ? nullptr : &*std::prev(it);
}

std::optional<TimeTravel::Hit> TimeTravel::ScanBackward(const Hit& from, bool use_breakpoints,
                                                         const std::vector<Watchpoint>& watches,
                                                         const Interrupt& interrupt, bool* interrupted) {
  *interrupted = false;
  const std::set<uint64_t> saved_bps = breakpoints_;
  if (!use_breakpoints) breakpoints_.clear();
  struct Restore {
    std::set<uint64_t>& bps;
    const std::set<uint64_t>& saved;
    ~Restore() { bps = saved; }
  } restore_bps{breakpoints_, saved_bps};
  uint64_t hi = from.icount;
  // From the state after a delivery at hi, that delivery's own writes are before here too.
  bool include_delivery_at_hi = from.post_delivery;
  while (hi > begin_ || include_delivery_at_hi) {
    uint64_t lo = hi == begin_ ? begin_ : store_->NearestAtOrBefore(hi - 1).value_or(begin_);
    if (hi > begin_)
      if (const log::CheckpointInfo* c = LogCheckpointAtOrBefore(hi - 1)) lo = std::max(lo, c->icount);
    lo = std::min(lo, hi == begin_ ? begin_ : hi - 1);
    GoTo(lo);
    std::optional<Hit> last;
    bool check_first = true;  // a breakpoint at lo itself is before hi
    auto take = [&](Hit at) {
      if (at.kind == TravelStop::Kind::kWatchpoint) at.icount = at.watch.icount;  // before the access
      last = at;
    };
    while (icount() < hi) {
      const uint64_t at = icount();
      const uint64_t boundary = (at / options_.checkpoint_interval + 1) * options_.checkpoint_interval;
      Arm(true, watches);
      const SliceTimer timer(this);
      const std::optional<Hit> h = RunArmed(std::min({hi, at + slice_, boundary}), check_first);
      Arm(false, {});
      MaybeCheckpoint();
      if (h) {
        if (h->kind == TravelStop::Kind::kEnd) break;
        take(*h);
        // Go on past a breakpoint just found; after a watched access (which may have been a
        // delivery's, into a handler) a breakpoint where the replay now is still counts.
        check_first = h->kind != TravelStop::Kind::kBreakpoint;
        continue;
      }
      check_first = true;
      if (interrupt && interrupt()) {
        *interrupted = true;
        return std::nullopt;
      }
    }
    if (include_delivery_at_hi && icount() == hi) {
      // The delivery at hi (and only it: a stop after the instruction at hi is after here).
      Arm(true, watches);
      const std::optional<Hit> h = RunArmed(hi + 1, check_first);
      Arm(false, {});
      if (h && h->kind == TravelStop::Kind::kWatchpoint && h->icount == hi && h->watch.icount == hi) take(*h);
    }
    include_delivery_at_hi = false;
    if (last) return last;
    if (hi == begin_) break;
    hi = lo;
  }
  return std::nullopt;
}

TravelStop TimeTravel::ContinueBackward(const Interrupt& interrupt) {
  bool interrupted = false;
  undo_step_.reset();
  const std::optional<Hit> h = ScanBackward(Here(), true, watchpoints_, interrupt, &interrupted);
  if (interrupted) return TravelStop{TravelStop::Kind::kInterrupted, icount(), {}};
  if (!h) {
    GoTo(begin_);
    return TravelStop{TravelStop::Kind::kBegin, icount(), {}};
  }
  MoveTo(*h);
  return Found(*h);
}

void TimeTravel::MoveTo(const Hit& h) {
  GoTo(h.icount);
  if (!h.post_delivery) return;
  // The position is a handler's first instruction, entered by a delivery at this boundary;
  // GoTo reaches the state before the delivery: take it, with a breakpoint on that entry.
  const std::set<uint64_t> saved = breakpoints_;
  breakpoints_ = {h.linear};
  Arm(true, {});
  const std::optional<Hit> again = RunArmed(h.icount + 1, false);
  Arm(false, {});
  breakpoints_ = saved;
  if (!again || again->kind != TravelStop::Kind::kBreakpoint || icount() != h.icount)
    throw std::logic_error("time travel: the handler entry found at icount " + std::to_string(h.icount) +
                           " was not reached again there");
}

std::optional<WatchHit> TimeTravel::LastWriteBefore(uint64_t addr, uint64_t len, const Interrupt& interrupt) {
  const Hit here = Here();
  const std::optional<Hit> undo = undo_step_;
  bool interrupted = false;
  const std::optional<Hit> h =
      ScanBackward(here, false, {Watchpoint{addr, std::max<uint64_t>(len, 1), kWatchWrite}}, interrupt, &interrupted);
  MoveTo(here);
  undo_step_ = undo;
  if (!h) return std::nullopt;
  return h->watch;
}

}  // namespace vmrr::analysis
