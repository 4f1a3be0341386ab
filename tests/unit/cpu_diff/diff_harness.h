// Runs one instruction sequence on vmrr's software CPU and on Unicorn (QEMU's TCG CPU) from
// the same registers and memory, and compares GPRs, RIP, the defined flags, the data region
// and the stack; a mismatch is described as a self-contained reproducer.
#pragma once

#include <unicorn/unicorn.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hv-hooks/cpu/cpu.h"
#include "tests/unit/cpu/flat_machine.h"

namespace vmrr::testing {

// Status flags plus DF: what the diff compares (minus flags undefined for the sequence).
inline constexpr uint64_t kComparedFlags =
    kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagOf | kFlagDf;

struct DiffCase {
  FlatMode mode = FlatMode::kLong64;  // kLong64 or kProt32
  std::vector<uint8_t> code;          // without the trailing HLT
  uint64_t gpr[16] = {};
  uint64_t rflags = 2;
  std::vector<uint8_t> data;   // kDataSize bytes at kDataBase
  std::vector<uint8_t> stack;  // kStackSize bytes at kStackBase
  uint64_t flag_mask = kComparedFlags;  // flags compared at the end
  uint32_t ignored_regs = 0;            // GPRs whose final value is architecturally undefined
  bool single_step = false;             // run vmrr with Run(icount + 1) per instruction
  std::string origin;                   // generator name, for the report
  // FP/SIMD cases (fp_generator.h): data offsets of the FXRSTOR image the case's prologue
  // loads and of the FXSAVE image its epilogue stores (-1: none). The output image is
  // compared field by field (FIP/FDP/FOP masked, see kFxMaskedBegin) and both are shown in
  // the report.
  int fx_in = -1, fx_out = -1;
  uint16_t fsw_ignore = 0;  // FSW bits not compared (condition codes the SDM leaves undefined)
  // RCPPS/RCPSS/RSQRTPS/RSQRTSS: the float lanes (bit mask) of XMM approx_xmm hold
  // approximations, which differ between implementations: checked against the SDM bound
  // by the test instead of bit for bit.
  int approx_xmm = -1;
  uint8_t approx_lanes = 0;
  bool approx_rsqrt = false;
};

// FXSAVE bytes 6-23 (FOP, FIP, FCS/FDP, FDS) are not compared: QEMU 5 (Unicorn 2.0.1) stores
// zeros there, the host stores host addresses, and vmrr's FIP/FDP/FOP updates are item 4
// of FPU_NOTES.md "What remains".
inline constexpr int kFxMaskedBegin = 6, kFxMaskedEnd = 24;

inline constexpr unsigned kUnknownVector = 0x100;

struct DiffOutcome {
  bool faulted = false;
  unsigned vector = 0;
  std::string error;  // the emulator could not run the case (not a guest fault)
  uint64_t gpr[16] = {};
  uint64_t rip = 0;
  uint64_t rflags = 0;
  uint64_t retired = 0;  // vmrr only: instructions retired
  std::vector<uint8_t> data, stack;
};

class VmrrSide {
 public:
  // fp: CR0.MP|NE (EM=TS=0) and CR4.OSFXSR|OSXMMEXCPT, the state an SSE-enabled OS sets.
  explicit VmrrSide(FlatMode mode, bool fp = false);
  DiffOutcome Run(const DiffCase& c);
  Cpu& cpu() { return cpu_; }

 private:
  TestPlatform platform_;
  Cpu cpu_;
  CpuState base_;
};

class UnicornSide {
 public:
  explicit UnicornSide(FlatMode mode, bool fp = false);
  ~UnicornSide();
  UnicornSide(const UnicornSide&) = delete;
  UnicornSide& operator=(const UnicornSide&) = delete;
  DiffOutcome Run(const DiffCase& c);

 private:
  static void OnInterrupt(uc_engine* uc, uint32_t intno, void* user);
  FlatMode mode_;
  uc_engine* uc_ = nullptr;
  uc_context* clean_ = nullptr;  // CPU context right after setup, restored before every case
  uc_hook hook_ = 0;
  int vector_ = -1;
};

// Empty if the outcomes agree; otherwise a reproducer: mode, code bytes (hex and
// disassembly), initial registers and both results.
// Names the sides in the report ("vmrr", "unicorn" by default; "host" for the FP oracle).
std::string CompareOutcomes(const DiffCase& c, const DiffOutcome& vmrr, const DiffOutcome& uc,
                            const char* other_name = "unicorn");

// A readable dump of a 512-byte FXSAVE image (FCW/FSW/FTW/MXCSR, ST/MM, XMM).
std::string FxImageText(const uint8_t* img, unsigned xmm_count);

void TakePushedFlags(FlatMode mode, DiffOutcome* o);

// Disassembly of code in the case's mode (one instruction per line), for reports.
std::string Disassemble(FlatMode mode, const std::vector<uint8_t>& code, uint64_t address);

}  // namespace vmrr::testing
