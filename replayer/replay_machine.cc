// ReplayMachine: restore from a checkpoint, run with the log's inputs.
#include "replayer/replay_machine.h"

#include "replayer/boot_environment.h"


namespace vmrr {

void LoadCheckpoint(const log::LogReader& reader, const log::CheckpointInfo& checkpoint, Machine& machine) {
  // From the checkpoint back to the full snapshot its chain starts from: each delta names its
  // base by snapshot id, an earlier one (so the walk ends, and reads each blob once).
  std::vector<std::vector<uint8_t>> chain;
  const log::CheckpointInfo* at = &checkpoint;
  for (;;) {
    chain.push_back(reader.ReadSnapshot(*at));
    const std::optional<uint64_t> base = Machine::SnapshotBase(chain.back());
    if (!base) break;
    const log::CheckpointInfo* found = nullptr;
    for (const log::CheckpointInfo& c : reader.checkpoints())
      if (c.snapshot_id == *base && c.snapshot_id < at->snapshot_id && c.icount <= at->icount) found = &c;
    if (!found)
      throw MachineError(MachineError::Code::kSnapshot,
                         "bad snapshot: the checkpoint at icount " + std::to_string(at->icount) +
                             " is a delta of snapshot " + std::to_string(*base) +
                             ", which is not an earlier checkpoint of the log");
    at = found;
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) machine.LoadSnapshot(*it);
}

ReplayMachine::ReplayMachine(const log::LogReader& reader, const SessionConfig& config,
                             const std::optional<std::string>& disk_path,
                             const log::CheckpointInfo& start, ReplayingEnvironmentOptions env_options,
                             std::optional<BitFlip> flip)
    : reader_(reader),
      boot_env_(std::make_unique<BootEnvironment>()),
      inputs_(reader, PositionAfterCheckpoint(reader, start)),
      env_(inputs_, [&] {
        env_options.on_failure = [this](std::exception_ptr failure) { Fail(failure); };
        return std::move(env_options);
      }()),
      flip_(flip) {
  MachineConfig mc = config.machine;
  mc.disk_image = disk_path;
  mc.disk_write_through = false;  // a replay never writes the image
  machine_ = std::make_unique<Machine>(mc, *boot_env_);
  LoadCheckpoint(reader, start, *machine_);
  machine_->SetEnvironment(env_);
  if (flip_ && flip_->icount < machine_->icount()) flip_done_ = true;
}

ReplayMachine::~ReplayMachine() = default;

void ReplayMachine::Fail(std::exception_ptr failure) {
  if (failure_) return;
  failure_ = failure;
  std::string what = "replay failed";
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  machine_->StopForHostError(what);
}

MachineResult ReplayMachine::Run(uint64_t target) {
  const MachineResult r = machine_->Run(target);
  if (failure_) std::rethrow_exception(failure_);
  if (r.stop == MachineStop::kHostError) {  // not the log's: the host failed (a disk read)
    throw MachineError(MachineError::Code::kHost, "host error during the replay at icount " +
                                                      std::to_string(r.icount) + ": " + machine_->host_error());
  }
  return r;
}

MachineResult ReplayMachine::RunTo(uint64_t target) {
  if (flip_ && !flip_done_ && flip_->icount <= target) {
    MachineResult r = Run(flip_->icount);
    if (r.icount != flip_->icount) return r;
    uint8_t b = 0;
    if (machine_->memory().Read(flip_->gpa, &b, 1)) {
      b ^= static_cast<uint8_t>(1u << (flip_->bit & 7));
      machine_->memory().Write(flip_->gpa, &b, 1);
    }
    flip_done_ = true;
  }
  return Run(target);
}

ReplayMachine::Saved ReplayMachine::Save() const {
  return Saved{machine_->SaveSnapshot(), env_.SaveState(), inputs_.position(), flip_pending()};
}

void ReplayMachine::SeekToCheckpoint(const log::CheckpointInfo& checkpoint) {
  const LogPosition after = PositionAfterCheckpoint(reader_, checkpoint);
  LoadCheckpoint(reader_, checkpoint, *machine_);
  env_.LoadState(ReplayingEnvironment::State{});  // as a replay constructed here starts
  inputs_.Seek(after);
  failure_ = nullptr;
  if (flip_) flip_done_ = flip_->icount < machine_->icount();
}

ReplayMachine::SavedCore ReplayMachine::SaveCore() const {
  return SavedCore{machine_->SaveCoreState(), env_.SaveState(), inputs_.position(), flip_pending()};
}

void ReplayMachine::RestoreCore(const SavedCore& s) {
  machine_->LoadCoreState(s.core);
  env_.LoadState(s.env);
  inputs_.Seek(s.position);
  failure_ = nullptr;
  if (flip_) flip_done_ = !s.flip_pending;
}

void ReplayMachine::Restore(const Saved& s) {
  machine_->LoadSnapshot(s.snapshot);
  env_.LoadState(s.env);
  inputs_.Seek(s.position);
  failure_ = nullptr;
  if (flip_) flip_done_ = !s.flip_pending;
}

}  // namespace vmrr
