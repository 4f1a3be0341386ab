// The instruction at the guest's CS:RIP, disassembled with Capstone in the CPU's current mode:
// the one disassembler behind vmrr's reports (divergence search, vmrr run's fault report).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hv-hooks/machine/machine.h"

namespace vmrr {

struct Disassembly {
  // The instruction's linear address, as the CPU fetches it: RIP - back in 64-bit mode (CS's
  // base is ignored there), (CS.base + RIP - back) mod 2^32 in every other mode.
  uint64_t linear = 0;
  bool decoded = false;
  std::string text;            // "mnemonic operands" when decoded
  std::vector<uint8_t> bytes;  // the instruction's bytes when decoded, else what could be read
                               // (up to 15; empty: not mapped or not in RAM)
};

// back: bytes before RIP (1 to show the HLT a halted CPU has retired).
Disassembly DisassembleAtRip(Machine& m, uint64_t back = 0);

}  // namespace vmrr
