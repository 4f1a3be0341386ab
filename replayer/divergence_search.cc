// SearchDivergence: clean re-run, then side-by-side refinement down to one instruction.
#include "replayer/divergence_search.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "hv-hooks/substrate/guest_memory.h"
#include "replayer/disassemble.h"
#include "replayer/verified_replay.h"

namespace vmrr {
namespace {

void Diff(std::vector<std::string>* out, const char* name, uint64_t clean, uint64_t bad) {
  if (clean != bad) out->push_back(fmt::format("{}: {:#x} (clean) vs {:#x} (diverged)", name, clean, bad));
}

std::vector<std::string> RegisterDiffs(const CpuState& a, const CpuState& b) {
  static const char* kGpr[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                 "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  static const char* kSeg[6] = {"es", "cs", "ss", "ds", "fs", "gs"};
  std::vector<std::string> d;
  for (int i = 0; i < 16; ++i) Diff(&d, kGpr[i], a.gpr[i], b.gpr[i]);
  Diff(&d, "rip", a.rip, b.rip);
  Diff(&d, "rflags", a.rflags, b.rflags);
  for (int i = 0; i < 6; ++i) {
    Diff(&d, (std::string(kSeg[i]) + ".selector").c_str(), a.seg[i].selector, b.seg[i].selector);
    Diff(&d, (std::string(kSeg[i]) + ".base").c_str(), a.seg[i].base, b.seg[i].base);
  }
  Diff(&d, "cr0", a.cr0, b.cr0);
  Diff(&d, "cr2", a.cr2, b.cr2);
  Diff(&d, "cr3", a.cr3, b.cr3);
  Diff(&d, "cr4", a.cr4, b.cr4);
  Diff(&d, "cr8", a.cr8, b.cr8);
  Diff(&d, "efer", a.efer, b.efer);
  Diff(&d, "cpl", a.cpl, b.cpl);
  Diff(&d, "halted", a.halted, b.halted);
  return d;
}

std::vector<std::string> MemoryDiffs(const GuestMemory& a, const GuestMemory& b, bool* any) {
  std::vector<std::string> d;
  *any = false;
  const uint64_t n = std::min(a.size(), b.size());
  for (uint64_t page = 0; page < n; page += kGuestPageSize) {
    if (std::memcmp(a.data() + page, b.data() + page, kGuestPageSize) == 0) continue;
    *any = true;
    for (uint64_t i = page; i < page + kGuestPageSize && d.size() < 16; ++i)
      if (a.data()[i] != b.data()[i])
        d.push_back(fmt::format("gpa {:#x}: {:#x} (clean) vs {:#x} (diverged)", i, a.data()[i], b.data()[i]));
    if (d.size() >= 16) break;
  }
  return d;
}

// Two replays side by side: `clean` without the disturbance, `bad` with it.
class Pair {
 public:
  Pair(const SearchInputs& in)
      : clean_(*in.reader, *in.config, in.disk_path, in.checkpoint, {}),
        bad_(*in.reader, *in.config, in.disk_path, in.checkpoint, {}, in.disturbance) {}

  // Runs both to `target`; true when they differ there in `scope` (or the disturbed one
  // departs from the log on the way).
  bool AdvanceDiffers(uint64_t target, DigestScope scope) {
    MachineResult a, b;
    try {
      a = clean_.RunTo(target);
    } catch (const std::exception&) {
      clean_failed_ = true;
      throw;
    }
    try {
      b = bad_.RunTo(target);
    } catch (const Divergence&) {
      return true;
    } catch (const LogExhausted&) {
      return true;
    }
    if (a.icount != b.icount || a.stop != b.stop) return true;
    return clean_.machine().StateDigest(scope) != bad_.machine().StateDigest(scope);
  }
  uint64_t icount() { return clean_.machine().icount(); }
  void Save() { saved_ = {clean_.Save(), bad_.Save()}; }
  void Restore() {
    clean_.Restore(saved_.first);
    bad_.Restore(saved_.second);
  }
  ReplayMachine& clean() { return clean_; }
  ReplayMachine& bad() { return bad_; }
  bool clean_failed_ = false;

 private:
  ReplayMachine clean_, bad_;
  std::pair<ReplayMachine::Saved, ReplayMachine::Saved> saved_;
};

// Finds the first icount in (lo, hi] at which the pair differs in `scope`, the pair being
// at `lo` and equal there. Leaves the pair at the found icount; nullopt if none up to hi.
std::optional<InstructionDifference> Refine(Pair& p, uint64_t lo, uint64_t hi, DigestScope scope) {
  p.Save();
  uint64_t base = lo;  // where the saved position is
  for (;;) {
    if (lo >= hi) return std::nullopt;
    const uint64_t step = std::max<uint64_t>(1, (hi - lo + 15) / 16);
    InstructionDifference at_step;
    bool found = false;
    uint64_t prev = lo;
    for (uint64_t i = std::min(lo + step, hi);; i = std::min(i + step, hi)) {
      if (step == 1) {
        Machine& m = p.clean().machine();
        const Disassembly d = DisassembleAtRip(m);
        at_step.instruction = d.decoded ? d.text : "?";
        at_step.rip = m.cpu().state().rip;
      }
      if (p.AdvanceDiffers(i, scope)) {
        found = true;
        hi = i;
        lo = prev;
        at_step.icount = i;
        break;
      }
      prev = i;
      if (i == hi) return std::nullopt;
    }
    if (!found) return std::nullopt;
    if (step == 1) return at_step;
    // Back to the last equal point, then refine within (lo, hi].
    p.Restore();
    if (lo > base) {
      p.AdvanceDiffers(lo, scope);
      p.Save();
      base = lo;
    }
  }
}

void Describe(const InstructionDifference& d, const std::string& title, std::string* out) {
  *out += title + " icount " + std::to_string(d.icount) + " (instruction retired there: " + d.instruction +
          " at rip " + fmt::format("{:#x}", d.rip) + ")\n";
  for (const auto& r : d.registers) *out += "    register " + r + "\n";
  for (const auto& m : d.memory) *out += "    memory " + m + "\n";
  if (d.registers.empty() && d.memory.empty() && d.other_state)
    *out += "    CPU and RAM equal: device or clock state differs\n";
}

}  // namespace

uint64_t DivergenceReport::first_divergent_icount() const {
  if (first_state_difference) return first_state_difference->icount;
  if (first_input_icount) return *first_input_icount;
  return detected_icount;
}

std::string DivergenceReport::Describe() const {
  std::string s = "divergence (" + std::string(DivergenceKindName(kind)) + ") detected at icount " +
                  std::to_string(detected_icount) + ": " + message + "\n";
  s += "  last matching record at icount " + std::to_string(last_match_icount) +
       "; searched from checkpoint at icount " + std::to_string(checkpoint_icount) + "\n";
  if (reproducible) {
    s += "  a clean replay from the checkpoint diverges the same way: the log and this replay "
         "disagree deterministically\n";
    s += "  whole machine last equal at icount " + std::to_string(last_full_match_icount) + "\n";
    if (first_input_icount) {
      s += "  logged inputs since then (" + std::to_string(candidate_count) + "):";
      for (const auto& c : candidate_inputs) s += " " + c;
      s += candidate_count > candidate_inputs.size() ? " ...\n" : "\n";
      s += "  first suspect input (the earliest at or after the last matching record): " +
           first_input_kind + " at icount " + std::to_string(*first_input_icount) + "\n";
    }
    else
      s += "  no logged input between then and the detection\n";
  } else if (first_state_difference) {
    s += "  a clean replay from the checkpoint matches the log: this replay was disturbed\n";
    ::vmrr::Describe(*first_state_difference, "  machine state first differs after", &s);
    if (first_cpu_difference)
      ::vmrr::Describe(*first_cpu_difference, "  first instruction whose CPU state differs:", &s);
  } else {
    s += "  a clean replay from the checkpoint matches the log, but no state difference was "
         "found side by side\n";
  }
  s += "  first divergent icount: " + std::to_string(first_divergent_icount()) + "\n";
  return s;
}

// The record kind whose check found a divergence of this kind, where one record does.
static std::optional<log::RecordKind> DetectingRecordKind(Divergence::Kind kind) {
  switch (kind) {
    case Divergence::Kind::kDigest: return log::RecordKind::kDigest;
    case Divergence::Kind::kOutput: return log::RecordKind::kOutput;
    case Divergence::Kind::kInterrupt: return log::RecordKind::kIrqDelivered;
    default: return std::nullopt;
  }
}

DivergenceReport SearchDivergence(const SearchInputs& in) {
  DivergenceReport rep;
  rep.kind = in.kind;
  rep.detected_icount = in.detected_icount;
  rep.message = in.message;
  rep.checkpoint_icount = in.checkpoint.icount;
  rep.last_match_icount = in.last_match_icount;

  // 1. Clean replay from the checkpoint.
  bool clean_diverges = false;
  uint64_t clean_last_match = in.last_match_icount;
  uint64_t clean_last_full = in.checkpoint.icount;
  {
    VerifiedReplay clean(*in.reader, *in.config, in.disk_path, in.checkpoint, {});
    try {
      clean.Run(in.detected_icount + 1);  // inputs asked at the detection icount come after it
    } catch (const Divergence& d) {
      clean_diverges = true;
      clean_last_match = clean.last_match_icount();
      clean_last_full = clean.last_full_match_icount();
    } catch (const LogExhausted&) {
    }
  }
  if (clean_diverges || !in.disturbance) {
    rep.reproducible = clean_diverges;
    rep.last_match_icount = clean_last_match;
    rep.last_full_match_icount = clean_last_full;
    // The logged inputs since the whole machine was last equal, up to the detection, in log
    // order: an input logged at the icount of the last equal whole-machine digest but before
    // it was covered by it, and one logged at the detection icount but after the detecting
    // record (the replay consumes it after the check) cannot be the cause.
    const std::optional<log::RecordKind> detecting = DetectingRecordKind(in.kind);
    bool past_full = clean_last_full == in.checkpoint.icount;  // the checkpoint is the match
    LogRecordSource source(*in.reader, PositionAfterCheckpoint(*in.reader, in.checkpoint));
    log::Record r;
    while (source.Next(&r) && r.icount <= in.detected_icount) {
      const auto kind = static_cast<log::RecordKind>(r.kind_number());
      if (detecting && kind == *detecting && r.icount == in.detected_icount) break;
      if (kind == log::RecordKind::kDigest && r.icount == clean_last_full) past_full = true;
      if (!log::IsInputKind(r.kind_number())) continue;
      if (r.icount < clean_last_full || (r.icount == clean_last_full && !past_full)) continue;
      if (rep.candidate_inputs.size() < 16)
        rep.candidate_inputs.push_back(log::KindName(r.kind_number()) + "@" + std::to_string(r.icount));
      ++rep.candidate_count;
      // The earliest input at or after the last record that matched (anything before it
      // agreed with the recording at least that far), else the earliest of all.
      if (!rep.first_input_icount || (*rep.first_input_icount < clean_last_match && r.icount >= clean_last_match)) {
        rep.first_input_icount = r.icount;
        rep.first_input_kind = log::KindName(r.kind_number());
      }
    }
    return rep;
  }

  // 2. Side by side: clean vs disturbed.
  Pair p(in);
  const uint64_t start = in.checkpoint.icount;
  const uint64_t end = in.detected_icount;
  std::optional<InstructionDifference> first;
  if (p.AdvanceDiffers(start, DigestScope::kFull)) {
    first = InstructionDifference{start};
  } else {
    first = Refine(p, start, end, DigestScope::kFull);
  }
  if (!first) return rep;
  CpuState a = p.clean().machine().cpu().state(), b = p.bad().machine().cpu().state();
  first->registers = RegisterDiffs(a, b);
  bool mem_differs = false;
  first->memory = MemoryDiffs(p.clean().machine().memory(), p.bad().machine().memory(), &mem_differs);
  first->other_state = first->registers.empty() && !mem_differs;
  rep.first_state_difference = first;
  // 3. The first instruction whose CPU state differs, from there on.
  std::optional<InstructionDifference> cpu;
  if (!first->registers.empty()) {
    cpu = first;
  } else {
    cpu = Refine(p, first->icount, end, DigestScope::kCpu);
    if (cpu) {
      a = p.clean().machine().cpu().state();
      b = p.bad().machine().cpu().state();
      cpu->registers = RegisterDiffs(a, b);
    }
  }
  rep.first_cpu_difference = cpu;
  return rep;
}

}  // namespace vmrr
