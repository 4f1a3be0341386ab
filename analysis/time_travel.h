// TimeTravel: a replay that can be moved to any icount of its recording, forwards and
// backwards, and that stops at breakpoints and watchpoints in both directions: what `vmrr
// debug`'s gdb server and the forensic queries stand on.
//
// Positions are icounts: the state at icount N is the one a replay from the start reaches
// with Machine::Run(N) (after N retired instructions, before any event delivered at that
// boundary), and moving to it reproduces that state exactly. An icount with an event
// delivered at its boundary also has the state after the delivery (RIP at the handler, before
// its first instruction): breakpoints on handler entries stop there in both directions, and a
// write by a handler's first instruction is found there; GoTo and plain steps never land on it.
// The replay advances in slices, taking a checkpoint every `checkpoint_interval` instructions
// it reaches for the first time (into a memory-bounded CheckpointStore); going backwards
// restores the nearest checkpoint before the target and runs forward.
//
// Backwards searches (ReverseContinue, LastWriteBefore) run forward from successively earlier
// checkpoints over windows [checkpoint, upper) with the stops armed, remembering the last hit
// in each window, so they are exact whatever the distance.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "analysis/checkpoint_store.h"
#include "hv-hooks/cpu/cpu.h"
#include "hv-hooks/machine/machine.h"
#include "hv-hooks/session/session_config.h"
#include "logformat/log_reader.h"
#include "replayer/replay_machine.h"

namespace vmrr::analysis {

struct TimeTravelOptions {
  size_t checkpoint_memory = CheckpointStore::kDefaultBudgetBytes;
  uint64_t checkpoint_interval = 1'000'000;  // instructions between automatic checkpoints
  // At most this many instructions between two looks at the interrupt callback; fewer when
  // the replay is slow, so that the callback is looked at every ~10 ms.
  uint64_t slice = 500'000;
};

struct TravelStop {
  enum class Kind {
    kTarget,      // the requested position (a step, a goto)
    kBreakpoint,  // before an instruction at a breakpoint
    kWatchpoint,  // forwards: after the accessing instruction; backwards: before it
    kBegin,       // the recording's first position (going backwards found nothing)
    kEnd,         // the recording's last position (going forwards found nothing)
    kInterrupted, // the interrupt callback said stop
  };
  Kind kind = Kind::kTarget;
  uint64_t icount = 0;
  WatchHit watch;  // kWatchpoint
};
const char* TravelStopName(TravelStop::Kind kind);

class TimeTravel {
 public:
  // Throws what ReplayMachine's constructor throws (MachineError, LogError) and
  // std::invalid_argument for a log without a starting checkpoint.
  TimeTravel(const log::LogReader& reader, const SessionConfig& config,
             const std::optional<std::string>& disk_path, TimeTravelOptions options = {});
  ~TimeTravel();

  uint64_t icount() const;
  uint64_t begin_icount() const { return begin_; }
  // The recording's last position: its End record's icount (or the last icount a cut log
  // covers), lowered to where the replay stops if it stops earlier.
  uint64_t end_icount() const { return end_; }
  // The End record, when the log has one.
  const std::optional<log::End>& end_record() const { return end_record_; }

  Machine& machine();
  const CheckpointStore& checkpoints() const { return *store_; }
  const log::LogReader& reader() const { return reader_; }

  void AddBreakpoint(uint64_t linear);
  void RemoveBreakpoint(uint64_t linear);
  const std::set<uint64_t>& breakpoints() const { return breakpoints_; }
  void SetWatchpoints(std::vector<Watchpoint> watchpoints);
  const std::vector<Watchpoint>& watchpoints() const { return watchpoints_; }

  // Returns true when a running operation should stop (gdb's Ctrl-C); polled between slices.
  using Interrupt = std::function<bool()>;

  // Moves to `icount` clamped to [begin, end]; stops armed or not, it goes there.
  TravelStop GoTo(uint64_t icount);
  TravelStop StepForward();   // one instruction (kEnd at the end)
  TravelStop StepBackward();  // one instruction back (kBegin at the beginning)
  TravelStop ContinueForward(const Interrupt& interrupt = {});
  TravelStop ContinueBackward(const Interrupt& interrupt = {});
  // The last write (by an instruction, or an event delivery's stack push) to [addr, addr+len)
  // before the current position, found without moving: the position is unchanged afterwards.
  std::optional<WatchHit> LastWriteBefore(uint64_t addr, uint64_t len, const Interrupt& interrupt = {});

  // Everything the replay has executed so far is deterministic; these count work done, for
  // benchmarks and tests.
  uint64_t instructions_replayed() const { return replayed_; }
  // How many of the log's own checkpoints were restored to seed the store.
  uint64_t log_checkpoints_used() const { return seeded_; }

 private:
  struct Hit {
    TravelStop::Kind kind;
    uint64_t icount;
    WatchHit watch;
    uint64_t linear = 0;  // the linear RIP of the position (a breakpoint's address)
    // The position is the state after an event delivered at this icount's boundary (a
    // breakpoint on a handler's entry; a write by a handler's first instruction).
    bool post_delivery = false;
  };
  // Where the replay is, exactly: an icount and, for an icount with a delivery at its
  // boundary, which of its two states.
  Hit Here();
  // Runs to `target` (> icount) with nothing armed, taking checkpoints on the way.
  void RunQuiet(uint64_t target);
  // One armed slice to `target`: returns a stop, or nullopt when target was reached.
  std::optional<Hit> RunArmed(uint64_t target, bool check_first);
  void Arm(bool on, const std::vector<Watchpoint>& watches);
  void NoteStop(const MachineResult& r);
  void MaybeCheckpoint();
  const log::CheckpointInfo* LogCheckpointAtOrBefore(uint64_t icount) const;
  uint64_t Linear();
  // The last stop (armed with breakpoints if use_breakpoints, and `watches`) before `from`,
  // searching windows between checkpoints from hi downwards; the position afterwards is
  // somewhere in the last window searched.
  std::optional<Hit> ScanBackward(const Hit& from, bool use_breakpoints, const std::vector<Watchpoint>& watches,
                                  const Interrupt& interrupt, bool* interrupted);
  // Moves to a stop ScanBackward found: GoTo(h.icount), then, for a breakpoint on an event
  // handler's first instruction, into the delivery at that boundary.
  void MoveTo(const Hit& h);
  TravelStop Found(const Hit& h);

  const log::LogReader& reader_;
  TimeTravelOptions options_;
  std::unique_ptr<ReplayMachine> rm_;
  std::unique_ptr<CheckpointStore> store_;
  uint64_t begin_ = 0;
  uint64_t end_ = 0;
  std::optional<log::End> end_record_;
  uint64_t furthest_ = 0;  // the highest icount the replay has reached
  bool post_delivery_ = false;  // the current state is after a delivery at icount()
  uint64_t slice_ = 0;  // the current slice length (see SliceTimer)
  class SliceTimer {
   public:
    explicit SliceTimer(TimeTravel* tt);
    ~SliceTimer();

   private:
    TimeTravel* tt_;
    uint64_t from_;
    std::chrono::steady_clock::time_point t0_;
  };
  std::optional<Hit> undo_step_;  // StepForward from a post-delivery state: where StepBackward goes
  uint64_t replayed_ = 0;
  uint64_t seeded_ = 0;
  std::set<uint64_t> breakpoints_;
  std::vector<Watchpoint> watchpoints_;
};

}  // namespace vmrr::analysis
