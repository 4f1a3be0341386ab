// The state-coverage harness: checks that a component's SaveState/LoadState carry every piece
// of its live state without trusting SaveState to be the judge. For each piece (one field or
// a small group the public interface can only change together) it checks that
//  1. changing the piece changes SaveToBytes (else Save forgets it),
//  2. the piece is observable: a probe (register reads, time advancing to deadlines,
//     interrupt acknowledges, DMA, environment output) sees a difference (else the check
//     below would be vacuous),
//  3. a fresh component, and one that was driven elsewhere first, loaded from the bytes
//     behave exactly like the original under the same probe, step by step (else Load, or
//     Save, forgets it).
// COV_DUMP=1 in the environment prints the probe's trace of a piece the probe cannot see.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "hv-hooks/devices/irq.h"
#include "hv-hooks/substrate/state_io.h"

namespace vmrr::coverage {

// What a probe observed, in order: (what was looked at, the value seen).
class Trace {
 public:
  void operator()(std::string what, uint64_t value) { steps_.emplace_back(std::move(what), value); }
  size_t size() const { return steps_.size(); }
  std::string Dump() const {
    std::ostringstream o;
    for (const auto& [w, v] : steps_) o << w << " = 0x" << std::hex << v << "\n";
    return o.str();
  }
  void clear() { steps_.clear(); }
  bool operator==(const Trace&) const = default;

  // "" if equal, else the first step where a and b differ.
  static std::string FirstDifference(const Trace& a, const Trace& b) {
    const size_t n = std::min(a.steps_.size(), b.steps_.size());
    for (size_t i = 0; i < n; ++i) {
      if (a.steps_[i] != b.steps_[i]) {
        std::ostringstream o;
        o << "step " << i << ": original saw '" << a.steps_[i].first << "' = 0x" << std::hex
          << a.steps_[i].second << ", restored saw '" << b.steps_[i].first << "' = 0x"
          << b.steps_[i].second;
        return o.str();
      }
    }
    if (a.steps_.size() != b.steps_.size()) {
      std::ostringstream o;
      o << "original made " << a.steps_.size() << " observations, restored " << b.steps_.size();
      if (n < a.steps_.size()) o << "; next original: '" << a.steps_[n].first << "'";
      if (n < b.steps_.size()) o << "; next restored: '" << b.steps_[n].first << "'";
      return o.str();
    }
    return "";
  }

 private:
  std::vector<std::pair<std::string, uint64_t>> steps_;
};

// An interrupt sink that writes every line change into a trace.
class TracingIrqs : public IrqSink {
 public:
  explicit TracingIrqs(Trace* trace) : trace_(trace) {}
  void SetIrq(unsigned line, bool asserted) override {
    (*trace_)("irq line " + std::to_string(line), asserted);
  }

 private:
  Trace* trace_;
};

// A piece of live state: `setup` brings a component to the ground both variants share,
// `perturb` changes this one piece. `observable` is false only for state that no probe can
// see (with the reason in the name); such a piece still must reach the bytes.
template <class Rig>
struct Piece {
  std::string name;
  std::function<void(Rig&)> setup;
  std::function<void(Rig&)> perturb;
  bool observable = true;
};

// Rig requirements:
//   Rig();                                   // a fresh component and its surroundings
//   std::vector<uint8_t> Save();             // SaveToBytes of the component alone
//   Snapshot Snap();                         // the component plus what it stands on
//   void Restore(const Snapshot&);           //   (clock, icount, guest memory), and back
//   Trace Probe();                           // drive with fixed inputs, record outputs
template <class Rig>
void CheckPieces(const std::string& component, const std::vector<Piece<Rig>>& pieces) {
  ASSERT_FALSE(pieces.empty());
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece<Rig>& p = pieces[i];
    SCOPED_TRACE(component + " / " + p.name);
    auto base = std::make_unique<Rig>();
    auto a = std::make_unique<Rig>();
    if (p.setup) {
      p.setup(*base);
      p.setup(*a);
    }
    ASSERT_EQ(base->Save(), a->Save()) << component << ": setup is not deterministic";
    p.perturb(*a);
    const std::vector<uint8_t> bytes = a->Save();
    EXPECT_NE(base->Save(), bytes)
        << component << ": changing '" << p.name
        << "' does not change SaveState's bytes (a field SaveState forgets)";
    const auto snap = a->Snap();

    auto fresh = std::make_unique<Rig>();
    fresh->Restore(snap);
    // Loaded into a component that was driven into another state first, so that a field
    // LoadState forgets shows even where the original happens to hold the default value.
    auto dirty = std::make_unique<Rig>();
    const Piece<Rig>& other = pieces[(i + 1) % pieces.size()];
    if (other.setup) other.setup(*dirty);
    other.perturb(*dirty);
    dirty->Restore(snap);
    EXPECT_EQ(dirty->Save(), bytes) << component << ": load then save is not the identity";

    const Trace t_base = base->Probe();
    const Trace t_a = a->Probe();
    const Trace t_fresh = fresh->Probe();
    const Trace t_dirty = dirty->Probe();
    ASSERT_GT(t_a.size(), 0u);
    if (p.observable) {
      if (getenv("COV_DUMP") && t_base == t_a) std::cerr << t_a.Dump();
      EXPECT_NE(t_base, t_a) << component << ": the probe cannot see '" << p.name
                             << "' (the behaviour check for it would be vacuous)";
    }
    EXPECT_EQ(Trace::FirstDifference(t_a, t_fresh), "")
        << component << ": restored into a fresh one, '" << p.name
        << "' behaves differently (a field SaveState or LoadState forgets)";
    EXPECT_EQ(Trace::FirstDifference(t_a, t_dirty), "")
        << component << ": restored over a used one, '" << p.name
        << "' behaves differently (a field LoadState forgets)";
  }
}

}  // namespace vmrr::coverage
