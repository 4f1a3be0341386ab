// The machine options shared by `vmrr run` and `vmrr record` (memory, clock, disk, network,
// entropy, instruction limit), their parsing into a MachineConfig and the live environment's
// options, and the host exit status a finished run maps to.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "hv-hooks/host/live_environment.h"
#include "hv-hooks/machine/machine.h"

namespace vmrr::cli {

struct MachineOptions {
  std::string kernel;
  std::string initrd;   // --initrd (Linux)
  std::string append;   // --append: the kernel (or Multiboot) command line
  std::string memory = "128M";
  std::string clock = "icount";
  uint64_t sample_interval = VirtualClock::kDefaultSampleInterval;
  int64_t epoch_ns = VirtualClock::kDefaultIcountEpochNs;
  std::string disk;
  bool disk_write_through = false;
  std::string disk_out;  // --disk-out: the disk as the guest left it, written at the end
  std::string net;  // LOCAL_PORT:PEER_PORT (UDP on 127.0.0.1)
  bool no_rng = false;
  uint64_t max_instructions = 0;  // 0: no limit
};

// Adds the options (and the KERNEL positional) to a subcommand.
void AddMachineOptions(CLI::App* cmd, MachineOptions* o);
// Throws CLI::ValidationError naming the option on a malformed value.
MachineConfig ToMachineConfig(const MachineOptions& o);
// "128M", "1G", "4096": bytes; throws CLI::ValidationError naming `option` otherwise.
uint64_t ParseSize(const std::string& option, const std::string& s);
LiveEnvironmentOptions ToLiveOptions(const MachineOptions& o);

// --net udp:HOST:PEER_PORT[:LOCAL_PORT] (HOST loopback, LOCAL defaults to PEER + 1) ->
// the LOCAL_PORT:PEER_PORT form; other forms are left as they are. False and *error set on
// a malformed udp: form.
bool NormalizeNetOption(std::string* net, std::string* error);

// --disk-out FILE, at the end of a run, replay or takeover: writes the machine's disk as the
// guest left it (the image with the guest's writes, which vmrr keeps in an overlay) to FILE.
// Returns `status`, or kExitIo after printing "vmrr COMMAND: ..." if it cannot be written (or
// the machine has no disk). An empty path writes nothing.
int WriteDiskOut(Machine& machine, const std::string& path, const char* command, int status);
// Adds --disk-out to a subcommand that takes no machine options (replay, shadow).
void AddDiskOutOption(CLI::App* cmd, std::string* path);

// Host exit status for how a run ended (boot contract): guest exit -> (code << 1) | 1,
// triple fault / halted forever -> 8, instruction limit -> 10, stopped by a signal -> 130.
int ExitStatusFor(const MachineResult& r);
// Exit status for a machine that could not be built (bad memory size 2, disk or network
// unusable 3, malformed kernel 4, else 1).
int ExitStatusFor(const MachineError& e);

}  // namespace vmrr::cli
