// The deterministic software x86-64 CPU: architectural state, running to an exact
// instruction count, interrupt injection and save/load. The instruction semantics live in
// one file per instruction family next to this header; this header is the stable interface
// the machine, the recorder/replayer and the tests code against.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "hv-hooks/cpu/cpu_platform.h"
#include "hv-hooks/substrate/state_io.h"

namespace vmrr {

enum GprIndex : uint8_t {
  kRax, kRcx, kRdx, kRbx, kRsp, kRbp, kRsi, kRdi,
  kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15,
};
enum SegIndex : uint8_t { kEs, kCs, kSs, kDs, kFs, kGs };

// RFLAGS bits.
inline constexpr uint64_t kFlagCf = 1u << 0, kFlagPf = 1u << 2, kFlagAf = 1u << 4,
                          kFlagZf = 1u << 6, kFlagSf = 1u << 7, kFlagTf = 1u << 8,
                          kFlagIf = 1u << 9, kFlagDf = 1u << 10, kFlagOf = 1u << 11,
                          kFlagIopl = 3u << 12, kFlagNt = 1u << 14, kFlagRf = 1u << 16,
                          kFlagVm = 1u << 17, kFlagAc = 1u << 18, kFlagVif = 1u << 19,
                          kFlagVip = 1u << 20, kFlagId = 1u << 21;

// A segment register with its hidden part. attr packs descriptor bytes 5 and 6 without the
// limit bits (the VMX "access rights" layout): bits 0-3 type, 4 S, 5-6 DPL, 7 P, 12 AVL,
// 13 L, 14 D/B, 15 G. limit is the expanded byte limit.
struct Segment {
  uint16_t selector = 0;
  uint16_t attr = 0;
  uint32_t limit = 0;
  uint64_t base = 0;

  bool operator==(const Segment&) const = default;
};
inline constexpr uint16_t kSegAttrP = 1u << 7, kSegAttrS = 1u << 4, kSegAttrL = 1u << 13,
                          kSegAttrDb = 1u << 14, kSegAttrG = 1u << 15;

struct DescriptorTable {
  uint64_t base = 0;
  uint16_t limit = 0;

  bool operator==(const DescriptorTable&) const = default;
};

// One x87 data register: the 64-bit significand (bit 63 the explicit integer bit) and the
// sign (bit 15) with the 15-bit biased exponent. MMX register i is mant of physical register
// i; an MMX write also sets sign_exp to 0xffff (SDM 9.5.1).
struct X87Reg {
  uint64_t mant = 0;
  uint16_t sign_exp = 0;

  bool operator==(const X87Reg&) const = default;
};

// x87 control word after FNINIT, MXCSR after reset, and the MXCSR bits this CPU supports
// (MXCSR_MASK in the FXSAVE image: every bit 0-15, DAZ included).
inline constexpr uint16_t kFcwInit = 0x037f;
inline constexpr uint32_t kMxcsrInit = 0x1f80, kMxcsrMask = 0xffff;
// XCR0 components this CPU implements: x87 (bit 0) and SSE (bit 1).
inline constexpr uint64_t kXcr0Supported = 3;

// Every architectural register the CPU implements. Plain data: zero-initialised, copyable,
// compared with == in tests.
struct CpuState {
  uint64_t gpr[16] = {};
  uint64_t rip = 0;
  uint64_t rflags = 2;
  Segment seg[6] = {};
  Segment ldtr, tr;
  DescriptorTable gdtr, idtr;
  uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0, xcr0 = 1;
  uint64_t dr[8] = {};  // dr4/dr5 alias dr6/dr7 and are never stored
  // MSRs.
  uint64_t efer = 0, star = 0, lstar = 0, cstar = 0, sfmask = 0, kernel_gs_base = 0;
  uint64_t sysenter_cs = 0, sysenter_esp = 0, sysenter_eip = 0;
  uint64_t tsc_offset = 0, tsc_aux = 0, apic_base = 0, pat = 0, misc_enable = 0;
  uint64_t mtrr_def_type = 0;
  // x87 / MMX / SSE state. The default values are those FNINIT and reset give (the x87 part
  // of Reset uses the SDM's power-up values instead; see Reset in cpu.cc).
  X87Reg st[8] = {};     // physical registers R0-R7; ST(i) is st[(TOP + i) & 7]
  uint16_t fcw = kFcwInit;
  uint16_t fsw = 0;      // TOP in bits 11-13
  uint8_t ftw = 0;       // abridged tag word: bit i set = R(i) not empty (the full tag word of
                         // FSTENV/FSAVE is derived from it and the register contents)
  uint16_t fop = 0;      // last x87 opcode, 11 bits
  uint64_t fip = 0, fdp = 0;  // last x87 instruction and data pointers (offsets)
  uint16_t fcs = 0, fds = 0;  // their selectors (not saved by FXSAVE64 / REX.W forms)
  uint64_t xmm[16][2] = {};   // [i][0] bits 0-63, [i][1] bits 64-127
  uint32_t mxcsr = kMxcsrInit;
  uint8_t cpl = 0;
  bool halted = false;
  bool shutdown = false;  // triple fault: the CPU does nothing until Reset
  // Interrupts are inhibited until icount reaches this value (STI / MOV SS / POP SS shadow).
  uint64_t interrupt_shadow_until = 0;
  bool nmi_blocked = false;  // between NMI delivery and the next IRET

  bool operator==(const CpuState&) const = default;
};

enum class StopReason : uint8_t {
  kTargetReached,   // icount() == target
  kHalted,          // HLT retired (or still halted) and no interrupt can wake the CPU
  kShutdown,        // triple fault; the CPU stays stopped until Reset()
  kBreakpoint,      // about to execute an instruction at a breakpoint (not retired)
  kExitRequested,   // RequestExit() was called by a platform callback or another thread
  kWatchpoint,      // an instruction that touched a watched range retired (or faulted)
};
const char* StopReasonName(StopReason reason);

struct RunResult {
  StopReason reason = StopReason::kTargetReached;
  uint64_t icount = 0;
};

// A host-side watchpoint on a range of linear addresses (a debugger's, not the guest's
// DR0-DR3): any number, any length.
inline constexpr uint8_t kWatchWrite = 1, kWatchRead = 2;
struct Watchpoint {
  uint64_t linear = 0;
  uint64_t length = 1;
  uint8_t kinds = kWatchWrite;  // kWatchWrite | kWatchRead

  bool operator==(const Watchpoint&) const = default;
};
// The first access an instruction made to a watched range.
struct WatchHit {
  uint64_t icount = 0;    // of the accessing instruction (before it retired)
  uint64_t rip = 0;       // its RIP
  uint64_t address = 0;   // the accessed linear address, clipped into the watched range
  uint8_t kind = kWatchWrite;  // kWatchWrite or kWatchRead
  Watchpoint watch;       // the watchpoint hit

  bool operator==(const WatchHit&) const = default;
};

struct CpuCore;

class Cpu final : public Stateful {
 public:
  // The platform must outlive the CPU. The CPU installs itself as the CodeWriteObserver of
  // platform.memory().
  explicit Cpu(CpuPlatform& platform);
  ~Cpu() override;
  Cpu(const Cpu&) = delete;
  Cpu& operator=(const Cpu&) = delete;

  // Power-on state: real mode, CS:IP = F000:FFF0 with CS base FFFF0000, icount 0.
  void Reset();

  const CpuState& state() const;
  // Replaces the whole architectural state (flushes TLB and decoded blocks). icount is kept.
  void SetState(const CpuState& state);

  // Executes until icount() == target_icount or another stop reason. Deterministic: the
  // same state, memory and platform answers give the same instructions and the same stop.
  RunResult Run(uint64_t target_icount);
  uint64_t icount() const;
  // Used by a replayer that starts from a snapshot taken elsewhere.
  void set_icount(uint64_t icount);

  // External interrupt line (level). When high and the CPU can accept an interrupt
  // (IF=1, no STI/MOV SS shadow), the CPU calls platform.AckInterrupt() at the next
  // instruction boundary and delivers that vector. Wakes a halted CPU.
  void SetIntrLine(bool high);
  bool intr_line() const;
  // Non-maskable interrupt, delivered at the next instruction boundary.
  void InjectNmi();
  // True if an external interrupt would be accepted at the current boundary.
  bool InterruptsAccepted() const;

  // Stops Run after the current instruction (a platform I/O callback calls this; the CPU's
  // own thread only).
  void RequestExit();
  // Stops Run at the next block boundary; async-signal-safe and callable from any thread (it
  // only stores to a lock-free atomic that Run polls once per block). A request made while
  // Run is not running makes the next Run return kExitRequested at once.
  void RequestExitAsync();

  // Host-side breakpoints on linear RIP values; Run stops before executing them, except for
  // the instruction a Run call starts at (so that continuing from a breakpoint makes
  // progress). An event delivered at that boundary moves RIP to the handler, whose breakpoint
  // does count.
  void AddBreakpoint(uint64_t linear_rip);
  void RemoveBreakpoint(uint64_t linear_rip);
  void ClearBreakpoints();

  // Host-side watchpoints (replaces the whole set). Only the pages holding a watched byte
  // leave the TLB's fast path: accesses to them take the checked slow path, everything else
  // runs at full speed. An instruction whose data access (read or write, of the kinds the
  // watchpoint names; instruction fetch excluded) overlaps a watched range finishes, then Run
  // returns kWatchpoint with last_watch_hit() describing the first such access. Watchpoints
  // are not CPU state: saving, loading and digests ignore them, and they never change what
  // the guest sees (the TLB keeps exactly the translations it would hold without them).
  void SetWatchpoints(std::vector<Watchpoint> watchpoints);
  const std::vector<Watchpoint>& watchpoints() const;
  const WatchHit& last_watch_hit() const;
  // The icount at which the CPU last delivered an event (interrupt, NMI or exception) since
  // Reset or LoadState (~0 if none). At a stop whose icount equals it, the state is the one
  // after that delivery: an icount with a delivery at its boundary has two states, before
  // and after it (Run(target) always stops before). Not CPU state: never saved.
  uint64_t last_delivery_icount() const;

  // Translation of a linear address through the guest's page tables without side effects
  // (no A/D updates, no faults); for debuggers and forensics.
  bool TranslateLinear(uint64_t linear, uint64_t* gpa) const;

  // Save/load of the whole CPU state including icount, pending events and the TLB (versioned
  // section "CPU0"). Saving has no side effects: a run that is saved (or digested) at any
  // point executes exactly like one that is not, and like one restored from the bytes. LoadState rejects malformed or inconsistent bytes with StateError and leaves the
  // CPU unchanged.
  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;
  std::vector<uint8_t> SaveBytes() const;
  void LoadBytes(std::span<const uint8_t> bytes);

  // Counters for benchmarks and tests.
  uint64_t blocks_decoded() const;
  uint64_t block_invalidations() const;
  uint64_t ops_flags_elided() const;  // decoded ops whose dead flag update is skipped

  // The fixed CPUID model name (leaf 0x80000002..4).
  static const char* ModelName();

 private:
  std::unique_ptr<CpuCore> core_;
};

}  // namespace vmrr
