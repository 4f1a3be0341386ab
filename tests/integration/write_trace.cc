// write_trace LOG ADDR [LEN]: the test oracle for `vmrr debug`'s watchpoints. Replays LOG with
// a plain ReplayMachine (no TimeTravel, no watchpoints, no breakpoints) and prints, for every
// instruction after which the LEN (default 8) bytes at linear ADDR differ from before it, one
// line "ICOUNT RIP" (the instruction's icount and linear RIP, in hex after 0x). The replay
// runs in chunks; a chunk whose end value differs is replayed again one instruction at a time
// from a saved position, so the trace is instruction-exact and independent of the CPU's
// watchpoint code. (A write of the value already there is invisible to it: use it on locations
// every write changes, like counters.)
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "hv-hooks/session/session_config.h"
#include "logformat/log_reader.h"
#include "replayer/replay_machine.h"

namespace {

using vmrr::Machine;
using vmrr::MachineStop;

bool ReadLinear(Machine& m, uint64_t lin, uint64_t len, std::vector<uint8_t>* out) {
  out->assign(len, 0);
  for (uint64_t i = 0; i < len; ++i) {
    uint64_t gpa;
    if (!m.cpu().TranslateLinear(lin + i, &gpa) || !m.memory().Read(gpa, &(*out)[i], 1)) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: write_trace LOG ADDR [LEN]\n");
    return 2;
  }
  const uint64_t addr = std::strtoull(argv[2], nullptr, 0);
  const uint64_t len = argc == 4 ? std::strtoull(argv[3], nullptr, 0) : 8;
  try {
    vmrr::log::LogReader reader = vmrr::log::LogReader::Open(argv[1]);
    const vmrr::SessionConfig config = vmrr::DecodeSessionConfig(reader.header().machine_config);
    vmrr::ReplayingEnvironmentOptions o;
    o.log_complete = reader.complete();
    vmrr::ReplayMachine rm(reader, config, config.machine.disk_image, reader.checkpoints().front(), o);
    Machine& m = rm.machine();
    constexpr uint64_t kChunk = 20000;
    std::vector<uint8_t> before, after;
    ReadLinear(m, addr, len, &before);
    for (;;) {
      const uint64_t from = m.icount();
      const vmrr::ReplayMachine::Saved saved = rm.Save();
      vmrr::MachineResult r = rm.RunTo(from + kChunk);
      ReadLinear(m, addr, len, &after);
      if (after != before) {
        rm.Restore(saved);
        std::vector<uint8_t> cur = before;
        while (m.icount() < r.icount || (m.icount() == r.icount && cur != after)) {
          const uint64_t ic = m.icount();
          const vmrr::CpuState& st = m.cpu().state();
          const uint64_t rip = st.seg[vmrr::kCs].base + st.rip;
          const vmrr::MachineResult s = rm.RunTo(ic + 1);
          std::vector<uint8_t> now;
          ReadLinear(m, addr, len, &now);
          if (now != cur) std::printf("%" PRIu64 " 0x%" PRIx64 "\n", ic, rip);
          cur = now;
          if (s.icount == ic) break;  // the replay's own end
        }
        before = after;
      }
      if (r.stop != MachineStop::kTargetReached) break;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_trace: %s\n", e.what());
    return 1;
  }
  return 0;
}
