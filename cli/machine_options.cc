// Parsing of the shared machine options.
#include "cli/machine_options.h"

#include <cctype>

#include "cli/exit_codes.h"
#include "hv-hooks/devices/virtio/virtio_blk.h"
#include "hv-hooks/machine/platform_devices.h"

namespace vmrr::cli {

void AddMachineOptions(CLI::App* cmd, MachineOptions* o) {
  cmd->add_option("KERNEL", o->kernel,
                  "guest kernel: Linux bzImage (e.g. /boot/vmlinuz-*), ELF64 test guest or Multiboot 1 image")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--initrd", o->initrd, "initial ramdisk for a Linux kernel (as QEMU's -initrd)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--append", o->append,
                  "kernel command line (Linux), or the Multiboot command line (as QEMU's -append)");
  cmd->add_option("--memory", o->memory, "guest RAM, e.g. 128M, 1G (default 128M)");
  cmd->add_option("--clock", o->clock, "guest time: icount (synthetic, default) or host (wall clock)")
      ->check(CLI::IsMember({"icount", "host"}));
  cmd->add_option("--sample-interval", o->sample_interval,
                  "instructions between input points / host time samples (default 1000000)")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  cmd->add_option("--epoch", o->epoch_ns, "icount mode: wall-clock ns guest time 0 corresponds to");
  cmd->add_option("--disk", o->disk, "virtio-blk image (writes go to an overlay)")->check(CLI::ExistingFile);
  cmd->add_flag("--disk-write-through", o->disk_write_through, "write guest disk writes to the image");
  AddDiskOutOption(cmd, &o->disk_out);
  cmd->add_option("--net", o->net, "virtio-net over UDP on loopback: udp:127.0.0.1:PEER_PORT[:LOCAL_PORT] or LOCAL_PORT:PEER_PORT");
  cmd->add_flag("--no-rng", o->no_rng, "no virtio-rng device");
  cmd->add_option("--max-instructions", o->max_instructions, "stop after this many instructions (exit 10)");
}

namespace {

bool ParsePorts(const std::string& s, uint16_t* local, uint16_t* peer) {
  size_t colon = s.find(':');
  if (colon == std::string::npos) return false;
  try {
    unsigned long a = std::stoul(s.substr(0, colon)), b = std::stoul(s.substr(colon + 1));
    if (a == 0 || b == 0 || a > 65535 || b > 65535) return false;
    *local = static_cast<uint16_t>(a);
    *peer = static_cast<uint16_t>(b);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}


}  // namespace

uint64_t ParseSize(const std::string& option, const std::string& s) {
  size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (const std::exception&) {
    throw CLI::ValidationError(option, "'" + s + "' is not a size (e.g. 128M)");
  }
  std::string suffix = s.substr(pos);
  uint64_t mult = 1;
  if (suffix == "K" || suffix == "k") mult = 1ull << 10;
  else if (suffix.empty()) mult = 1;
  else if (suffix == "M" || suffix == "m") mult = 1ull << 20;
  else if (suffix == "G" || suffix == "g") mult = 1ull << 30;
  else throw CLI::ValidationError(option, "unknown size suffix '" + suffix + "' (K, M or G)");
  return v * mult;
}

void AddDiskOutOption(CLI::App* cmd, std::string* path) {
  cmd->add_option("--disk-out", *path,
                  "at the end, write the disk as the guest left it (the image with its writes) to FILE")
      ->type_name("FILE");
}

int WriteDiskOut(Machine& machine, const std::string& path, const char* command, int status) {
  if (path.empty()) return status;
  std::string error = "the machine has no disk (--disk)";
  const VirtioBlock* blk = machine.devices().virtio_blk();
  if (blk && blk->ExportImage(path, &error)) return status;
  std::fprintf(stderr, "vmrr %s: --disk-out: %s\n", command, error.c_str());
  return kExitIo;
}

MachineConfig ToMachineConfig(const MachineOptions& o) {
  MachineConfig c;
  c.memory_bytes = ParseSize("--memory", o.memory);
  c.clock_mode = o.clock == "host" ? VirtualClock::Mode::kHost : VirtualClock::Mode::kIcount;
  c.sample_interval = o.sample_interval;
  c.icount_epoch_ns = o.epoch_ns;
  if (!o.disk.empty()) c.disk_image = o.disk;
  if (!o.disk_out.empty() && o.disk.empty()) throw CLI::ValidationError("--disk-out", "needs --disk");
  c.disk_write_through = o.disk_write_through;
  c.net = !o.net.empty();
  c.virtio_rng = !o.no_rng;
  if (c.net) {
    uint16_t a, b;
    if (!ParsePorts(o.net, &a, &b)) throw CLI::ValidationError("--net", "expected LOCAL_PORT:PEER_PORT");
  }
  return c;
}

LiveEnvironmentOptions ToLiveOptions(const MachineOptions& o) {
  LiveEnvironmentOptions l;
  if (!o.net.empty()) ParsePorts(o.net, &l.net_local_port, &l.net_peer_port);
  return l;
}

bool NormalizeNetOption(std::string* net, std::string* error) {
  if (net->rfind("udp:", 0) != 0) return true;
  const std::string rest = net->substr(4);
  const size_t c1 = rest.find(':');
  if (c1 == std::string::npos) {
    *error = "--net: expected udp:HOST:PEER_PORT[:LOCAL_PORT]";
    return false;
  }
  const std::string host = rest.substr(0, c1);
  if (host != "127.0.0.1" && host != "localhost") {
    *error = "--net: only loopback peers (127.0.0.1) are supported, not '" + host + "'";
    return false;
  }
  const std::string ports = rest.substr(c1 + 1);
  const size_t c2 = ports.find(':');
  auto parse = [](const std::string& s, unsigned long* v) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 5) return false;
    *v = std::stoul(s);
    return *v >= 1 && *v <= 65535;
  };
  unsigned long peer = 0, local = 0;
  if (!parse(ports.substr(0, c2), &peer) || (c2 != std::string::npos && !parse(ports.substr(c2 + 1), &local))) {
    *error = "--net: ports must be numbers 1..65535 in udp:HOST:PEER_PORT[:LOCAL_PORT]";
    return false;
  }
  if (c2 == std::string::npos) {
    if (peer == 65535) {
      *error = "--net: give LOCAL_PORT explicitly when PEER_PORT is 65535";
      return false;
    }
    local = peer + 1;
  }
  *net = std::to_string(local) + ":" + std::to_string(peer);
  return true;
}

int ExitStatusFor(const MachineError& e) {
  switch (e.code()) {
    case MachineError::Code::kConfig: return kExitUsage;
    case MachineError::Code::kDisk:
    case MachineError::Code::kNet:
    case MachineError::Code::kHost: return kExitIo;
    case MachineError::Code::kKernel: return kExitBadImage;
    case MachineError::Code::kSnapshot: return kExitFailure;
  }
  return kExitFailure;
}

int ExitStatusFor(const MachineResult& r) {
  switch (r.stop) {
    case MachineStop::kGuestExit: return r.exit_status;
    case MachineStop::kPowerOff: return kExitOk;
    case MachineStop::kReset: return kExitGuestReset;
    case MachineStop::kShutdown:
    case MachineStop::kHaltedForever: return kExitGuestFault;
    case MachineStop::kTargetReached: return kExitInstructionLimit;
    case MachineStop::kBreakpoint:
    case MachineStop::kWatchpoint:
    case MachineStop::kExitRequested: return kExitInterrupted;
    case MachineStop::kHostError: return kExitIo;
  }
  return kExitFailure;
}

}  // namespace vmrr::cli
