// The Machine: the software CPU, guest memory, the port and MMIO buses, every platform device
// and the virtual clock, wired together behind one Environment, with the run loop that stops
// exactly where a device event or an input point is due, whole-machine snapshots and state
// digests. Everything the recorder, the replayer and the CLI do to a guest goes through here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "hv-hooks/cpu/cpu.h"
#include "hv-hooks/environment.h"
#include "hv-hooks/machine/machine_config.h"
#include "hv-hooks/substrate/guest_memory.h"
#include "hv-hooks/substrate/virtual_clock.h"

namespace vmrr {

class PlatformDevices;
class PortBus;
class MmioBus;
struct BootState;

// A host-side problem with the machine's configuration (bad memory size, disk image that
// cannot be opened, network port in use, malformed kernel). The message names what to fix.
class MachineError : public std::runtime_error {
 public:
  enum class Code { kConfig, kDisk, kNet, kKernel, kSnapshot, kHost };
  MachineError(Code code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

enum class MachineStop : uint8_t {
  kGuestExit,        // the guest wrote the debug-exit port; exit_status is set
  kShutdown,         // triple fault
  kTargetReached,    // Run's target icount reached
  kHaltedForever,    // HLT with interrupts disabled and no NMI source: nothing can wake it
  kBreakpoint,       // a CPU breakpoint
  kExitRequested,    // RequestStop() (signal handler, debugger)
  kHostError,        // StopForHostError(): the environment or a host backend could not answer
  kWatchpoint,       // an instruction touched a watched range (cpu().last_watch_hit()); it retired
  kPowerOff,         // ACPI S5: the guest wrote \_S5's sleep type with SLP_EN (AcpiPm)
  kReset,            // the guest wrote the FADT reset register (AcpiPm)
};
const char* MachineStopName(MachineStop stop);
// The guest ended the run itself (exit, power-off, reset, triple fault, endless halt): Run
// returns the same stop again at once, and a recording ends there.
inline bool IsGuestEnd(MachineStop stop) {
  return stop == MachineStop::kGuestExit || stop == MachineStop::kPowerOff ||
         stop == MachineStop::kReset || stop == MachineStop::kShutdown ||
         stop == MachineStop::kHaltedForever;
}

struct MachineResult {
  MachineStop stop = MachineStop::kTargetReached;
  uint64_t icount = 0;
  int exit_status = 0;  // for kGuestExit: (code << 1) | 1
};

// Observes what happens inside the machine, for verification records and analysis. Called on
// the machine's thread at deterministic points; must not touch the machine.
class MachineObserver {
 public:
  virtual ~MachineObserver() = default;
  // An external interrupt (or NMI, vector 2) was accepted by the CPU at this icount.
  virtual void OnInterrupt(uint64_t icount, uint8_t vector) { (void)icount, (void)vector; }
};

enum class DigestScope : uint8_t {
  kCpu = 0,   // architectural CPU state + icount (cheap; every N instructions)
  kFull = 1,  // CPU + every device + the virtual clock + all guest memory
};

class Machine {
 public:
  // Throws MachineError (bad config: memory outside 2 MiB..3 GiB or not 4 KiB-aligned; disk
  // image cannot be opened). The environment must outlive the machine. Host clock mode: the
  // constructor takes one env.SampleTime(0) as the clock's epoch.
  Machine(const MachineConfig& config, Environment& env);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Loads a kernel image (ELF64 test guest, Multiboot 1, or a Linux bzImage; see loader.h)
  // into memory and sets the CPU's entry state. `initrd_path` (Linux only; empty: none) and
  // `cmdline` mean what QEMU's -initrd and -append mean. A Linux kernel also gets the ACPI
  // tables of this machine's devices (acpi.h) at platform::kAcpiTablesBase. Throws
  // MachineError(kKernel) naming what is wrong with a file.
  void LoadKernel(const std::string& path, const std::string& initrd_path = {},
                  const std::string& cmdline = {});
  void LoadKernelBytes(std::span<const uint8_t> image, const std::string& name,
                       std::span<const uint8_t> initrd = {}, const std::string& cmdline = {});

  // Runs until the guest exits, shuts down, reaches target_icount (absolute), or another
  // stop. Resumable: calling Run again continues where it stopped (after kGuestExit it
  // returns kGuestExit at once).
  //
  // The loop runs the CPU to min(target, next input point, icount of the next device
  // deadline). Device timers and input are looked at only at the loop's own stop points: that
  // natural stop, after any port/MMIO/APIC-MSR access (the CPU exits after the instruction),
  // and after HLT — never because a target split the run, so any chunking of Run gives the same
  // execution and the same StateDigest at the same icount. Input points: every
  // sample_interval instructions (host mode: env.SampleTime then PollInputs; icount mode:
  // PollInputs), and, in icount mode, at every HLT before time jumps to the next deadline.
  // HLT: IF=0 -> kHaltedForever; icount mode with a deadline -> time jumps there; otherwise
  // env.WaitForInput(host time of the deadline, or kWaitForever if none), then an input point;
  // if that brought nothing and nothing is scheduled -> kHaltedForever.
  MachineResult Run(uint64_t target_icount = ~uint64_t{0});
  // Asks a running Run to return kExitRequested at the next instruction boundary; safe to
  // call from a signal handler or another thread (it only stores to lock-free atomics).
  void RequestStop();
  // Called on the machine's thread, from inside an Environment call or a host backend that
  // could not give an answer (a replay whose log says otherwise, a disk read the host failed):
  // the call returns its neutral answer, the current instruction completes, and Run returns
  // kHostError at that instruction boundary, with every device consistent. Only the first
  // message is kept; every later Run returns kHostError at once, until LoadSnapshot.
  void StopForHostError(const std::string& message);
  const std::string& host_error() const;

  uint64_t icount() const;
  const MachineConfig& config() const { return config_; }
  Cpu& cpu();
  GuestMemory& memory();
  PlatformDevices& devices();
  VirtualClock& clock();
  Environment& environment() { return *env_; }
  // Swaps the environment (failover: Replaying -> Live). Only between Run calls.
  void SetEnvironment(Environment& env);
  void SetObserver(MachineObserver* observer);

  // Breakpoints on linear RIP values: Run returns kBreakpoint before executing one (never on
  // the first instruction of a Run call, so that continuing makes progress). Use these, not
  // cpu().AddBreakpoint: the run loop enters the CPU many times per Run and checks the
  // boundaries between those entries itself.
  void AddBreakpoint(uint64_t linear_rip);
  void RemoveBreakpoint(uint64_t linear_rip);
  void ClearBreakpoints();
  // Debugger watchpoints (Cpu::SetWatchpoints): Run returns kWatchpoint after the instruction
  // that touched one; cpu().last_watch_hit() says which access.
  void SetWatchpoints(std::vector<Watchpoint> watchpoints);

  // Whole-machine snapshot (CPU, clock, devices, memory with zero pages elided). Restoring it
  // into a machine with the same MachineConfig gives byte-identical behaviour. LoadSnapshot
  // throws MachineError(kSnapshot) on malformed bytes and leaves the machine unchanged.
  std::vector<uint8_t> SaveSnapshot() const;
  // A delta snapshot: the whole CPU, clock and device state, and of memory only the pages
  // written since memory().ClearDirty() (zero or not). LoadSnapshot applies it over the state
  // of the snapshot taken at that ClearDirty, which the caller names with base_tag (a log's
  // snapshot id) and must have loaded first: SnapshotBase returns that tag.
  std::vector<uint8_t> SaveSnapshotDelta(uint64_t base_tag) const;
  // The base_tag of a delta snapshot, nullopt for a full one. Throws MachineError(kSnapshot)
  // on bytes whose checksum fails.
  static std::optional<uint64_t> SnapshotBase(std::span<const uint8_t> bytes);
  void LoadSnapshot(std::span<const uint8_t> bytes);
  // The same without guest RAM (CPU, clock, devices, run loop; no checksum), for checkpoint
  // stores that keep memory themselves (pages shared between checkpoints). LoadCoreState
  // leaves RAM as it is; it throws MachineError(kSnapshot) and changes nothing on bad bytes.
  std::vector<uint8_t> SaveCoreState() const;
  void LoadCoreState(std::span<const uint8_t> bytes);

  // 128-bit digest (XXH3) of the state in the given scope, folded to 64 bits for logs.
  uint64_t StateDigest(DigestScope scope) const;

 private:
  void SaveCore(StateWriter& w) const;
  void LoadSections(std::span<const uint8_t> body, bool with_memory);
  class Impl;
  MachineConfig config_;
  Environment* env_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmrr
