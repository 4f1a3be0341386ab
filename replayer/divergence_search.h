// Divergence search: after a replay noticed a divergence at icount D, find where it began.
//
// 1. A clean replay restarts from the last checkpoint C whose state matched and runs to D
//    with every verification. If it too diverges, the log and this host disagree
//    deterministically (a logged input that is not what the recording saw, or a host
//    difference). The whole machine was equal at the last matching Digest{machine} or
//    Checkpoint M; the machine is deterministic between inputs, so one of the logged inputs
//    from M to the detection is where the replay departed. They are listed; the one
//    reported as first divergent is the earliest at or after the last record of any kind
//    that matched (else the earliest). With dense machine digests
//    (--machine-digest-interval) the window usually holds one input, which pins a tampered
//    input exactly; with none in the window the detection icount is reported.
// 2. Otherwise the first replay was disturbed (a host fault; in tests, the injected bit
//    flip): the clean machine and a machine replaying with the disturbance are run side by
//    side from C, comparing whole-machine digests at geometrically refined steps (each level
//    divides the remaining window by 16, restoring from a saved position), down to the
//    single instruction after which the states first differ; then the same search with CPU
//    digests from there finds the first instruction whose CPU state differs. Both are
//    reported with register and memory differences and the instruction (Capstone).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "logformat/log_reader.h"
#include "hv-hooks/session/session_config.h"
#include "replayer/divergence.h"
#include "replayer/replay_machine.h"

namespace vmrr {

struct InstructionDifference {
  uint64_t icount = 0;                 // state after this many instructions differs
  uint64_t rip = 0;                    // of the instruction that retired at `icount`
  std::string instruction;             // its disassembly ("?" if unreadable)
  std::vector<std::string> registers;  // "rax: 0x.. (clean) vs 0x.. (diverged)"
  std::vector<std::string> memory;     // "gpa 0x...: 0x.. vs 0x.."
  bool other_state = false;            // devices/clock differ, CPU and RAM equal
};

struct DivergenceReport {
  Divergence::Kind kind = Divergence::Kind::kDigest;
  uint64_t detected_icount = 0;  // where the replay noticed
  std::string message;
  uint64_t checkpoint_icount = 0;  // search started here
  uint64_t last_match_icount = 0;  // last verification record that matched before detection
  bool reproducible = false;       // a clean replay from the checkpoint diverges too
  uint64_t last_full_match_icount = 0;  // last whole-machine digest that matched
  // reproducible: the first logged input after the last whole-machine match (its icount,
  // kind name): the earliest point at which the log can have told the replay something
  // other than what the recording saw.
  std::optional<uint64_t> first_input_icount;
  std::string first_input_kind;
  std::vector<std::string> candidate_inputs;  // "Kind@icount" of the inputs in that window
  uint64_t candidate_count = 0;
  // not reproducible: where the disturbed replay first departs from the clean one.
  std::optional<InstructionDifference> first_state_difference;
  std::optional<InstructionDifference> first_cpu_difference;
  // The icount reported as "first divergent instruction".
  uint64_t first_divergent_icount() const;
  std::string Describe() const;
};

struct SearchInputs {
  const log::LogReader* reader = nullptr;
  const SessionConfig* config = nullptr;
  std::optional<std::string> disk_path;
  log::CheckpointInfo checkpoint;  // last checkpoint whose state matched
  uint64_t detected_icount = 0;
  uint64_t last_match_icount = 0;
  Divergence::Kind kind = Divergence::Kind::kDigest;
  std::string message;
  std::optional<BitFlip> disturbance;  // what the diverged replay had that a clean one has not
};

DivergenceReport SearchDivergence(const SearchInputs& in);

}  // namespace vmrr
