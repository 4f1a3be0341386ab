// `vmrr run KERNEL`: boots a guest live on this host (console on the terminal, network over
// loopback UDP), with no log, and exits with the guest's debug-exit status or a report of how
// the guest failed (triple fault, HLT forever, instruction limit).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/console_escape.h"
#include "cli/exit_codes.h"
#include "cli/machine_options.h"
#include "hv-hooks/machine/platform_devices.h"
#include "hv-hooks/host/live_environment.h"
#include "hv-hooks/machine/machine.h"
#include "replayer/disassemble.h"

namespace vmrr::cli {
namespace {

std::atomic<bool> g_stop{false};
Machine* g_machine = nullptr;

extern "C" void OnStopSignal(int) {
  g_stop.store(true);
  if (g_machine) g_machine->RequestStop();
}

// The live environment as `vmrr run` uses it: on a terminal Ctrl-A x stops the run (the escape
// `vmrr record` shares), and idle waits are cut into short slices so that a stop request ends a
// guest that sleeps in HLT.
class RunEnvironment final : public EscapeEnvironment {
 public:
  RunEnvironment(LiveEnvironment& live, bool escape)
      : EscapeEnvironment(live, escape, [] { OnStopSignal(0); }) {}

  bool WaitForInput(uint64_t icount, int64_t deadline_host_ns) override {
    constexpr int64_t kSliceNs = 50'000'000;
    for (;;) {
      const int64_t now = LiveEnvironment::HostNowNs();
      if (now >= deadline_host_ns || g_stop.load()) return false;
      const int64_t slice = deadline_host_ns - now > kSliceNs ? now + kSliceNs : deadline_host_ns;
      if (inner_.WaitForInput(icount, slice)) return true;
    }
  }
};

// The instruction at CS:RIP - back with its address and bytes, for the fault report.
std::string DescribeInstruction(Machine& m, uint64_t back = 0) {
  const Disassembly d = DisassembleAtRip(m, back);
  if (d.bytes.empty()) return fmt::format("{:#x}: <not mapped or not in RAM>", d.linear);
  if (d.decoded) return fmt::format("{:#x}: {}   [{:02x}]", d.linear, d.text, fmt::join(d.bytes, " "));
  const size_t shown = std::min<size_t>(d.bytes.size(), 4);
  return fmt::format("{:#x}: <undecodable: {:02x}>", d.linear,
                     fmt::join(d.bytes.begin(), d.bytes.begin() + shown, " "));
}

std::string Registers(Machine& m) {
  const CpuState& s = m.cpu().state();
  static const char* const kNames[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                         "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  std::string out;
  for (int i = 0; i < 16; ++i) {
    out += fmt::format("  {:<3} {:016x}{}", kNames[i], s.gpr[i], i % 4 == 3 ? "\n" : "");
  }
  out += fmt::format("  rip {:016x}  rflags {:08x}  cs {:04x}  ss {:04x}  cpl {}\n", s.rip,
                     s.rflags, s.seg[kCs].selector, s.seg[kSs].selector, unsigned{s.cpl});
  out += fmt::format("  cr0 {:08x}  cr2 {:016x}  cr3 {:016x}  cr4 {:08x}  efer {:x}\n", s.cr0, s.cr2,
                     s.cr3, s.cr4, s.efer);
  out += fmt::format("  idtr {:016x}/{:04x}  gdtr {:016x}/{:04x}\n", s.idtr.base, s.idtr.limit,
                     s.gdtr.base, s.gdtr.limit);
  return out;
}

std::string FaultReport(Machine& m, const char* what, const MachineResult& r) {
  std::string out = fmt::format("vmrr run: {} at icount {}\n", what, r.icount);
  out += Registers(m);
  const CpuState& s = m.cpu().state();
  uint64_t gpa;
  uint8_t prev = 0;
  if (s.halted && m.cpu().TranslateLinear(s.seg[kCs].base + s.rip - 1, &gpa) &&
      m.memory().Read(gpa, &prev, 1) && prev == 0xf4) {
    out += "  halted at " + DescribeInstruction(m, 1) + "\n";
  } else {
    out += "  instruction " + DescribeInstruction(m) + "\n";
  }
  return out;
}

int Fail(int status, const std::string& message) {
  std::fprintf(stderr, "vmrr run: error: %s\n", message.c_str());
  return status;
}

int RunRun(MachineOptions o) {
  std::string error;
  if (!NormalizeNetOption(&o.net, &error)) return Fail(kExitUsage, error);
  MachineConfig config;
  try {
    config = ToMachineConfig(o);
  } catch (const CLI::Error& e) {
    return Fail(kExitUsage, e.what());
  }
  const uint64_t limit = o.max_instructions ? o.max_instructions : ~uint64_t{0};

  std::unique_ptr<LiveEnvironment> live;
  try {
    live = std::make_unique<LiveEnvironment>(ToLiveOptions(o));
  } catch (const EnvironmentError& e) {
    return Fail(kExitIo, e.what());
  }
  RunEnvironment env(*live, isatty(0) == 1);
  std::unique_ptr<Machine> machine;
  try {
    machine = std::make_unique<Machine>(config, env);
    machine->LoadKernel(o.kernel, o.initrd, o.append);
  } catch (const MachineError& e) {
    live.reset();  // restore the terminal before printing
    return Fail(ExitStatusFor(e), e.what());
  }

  g_stop.store(false);
  g_machine = machine.get();
  struct sigaction sa {}, old_int{}, old_term{}, old_hup{};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);

  MachineResult r = machine->Run(limit);

  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  g_machine = nullptr;

  std::string report;
  int status = kExitFailure;
  switch (r.stop) {
    case MachineStop::kGuestExit:
      status = r.exit_status;
      break;
    case MachineStop::kPowerOff:
      status = kExitOk;
      break;
    case MachineStop::kReset:
      report = fmt::format("vmrr run: the guest asked for a reset at icount {}; vmrr ends the run "
                           "(status {})\n", r.icount, int{kExitGuestReset});
      status = kExitGuestReset;
      break;
    case MachineStop::kShutdown:
      report = FaultReport(*machine, "guest triple fault (shutdown)", r);
      status = kExitGuestFault;
      break;
    case MachineStop::kHaltedForever:
      report = FaultReport(*machine, "guest halted forever (HLT with interrupts disabled, or no "
                                     "interrupt source and no input left)", r);
      status = kExitGuestFault;
      break;
    case MachineStop::kTargetReached:
      report = FaultReport(*machine, "instruction limit (--max-instructions) reached", r);
      status = kExitInstructionLimit;
      break;
    case MachineStop::kExitRequested:
    case MachineStop::kBreakpoint:
    case MachineStop::kWatchpoint:
      report = fmt::format("vmrr run: stopped on request at icount {}\n", r.icount);
      status = kExitInterrupted;
      break;
    case MachineStop::kHostError:
      report = fmt::format("vmrr run: host error at icount {}, the machine was stopped: {}\n", r.icount,
                           machine->host_error());
      status = kExitIo;
      break;
  }
  status = WriteDiskOut(*machine, o.disk_out, "run", status);
  machine.reset();
  live.reset();  // terminal back to cooked mode before the report
  if (!report.empty()) std::fputs(report.c_str(), stderr);
  return status;
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto opt = std::make_shared<MachineOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Boot KERNEL (ELF64 test guest or Multiboot 1 image) live, without recording: the\n"
      "guest's COM1 is this terminal (raw mode on a tty; Ctrl-A x quits, Ctrl-A Ctrl-A sends\n"
      "Ctrl-A), virtio-net frames travel as UDP datagrams on 127.0.0.1.\n"
      "--net accepts udp:127.0.0.1:PEER_PORT[:LOCAL_PORT] (LOCAL_PORT defaults to PEER_PORT+1)\n"
      "or LOCAL_PORT:PEER_PORT.\n"
      "Exit status: the guest's debug-exit status (code << 1) | 1 (always odd); 2 bad option;\n"
      "3 disk image, network port or terminal unusable (a missing file is 2), or a host I/O error\n"
      "while running (the machine stops at that instruction); 4 malformed kernel;\n"
      "8 guest triple fault or HLT forever (report with registers and the instruction on\n"
      "stderr); 10 --max-instructions reached; 130 stopped by SIGINT/SIGTERM/Ctrl-A x.");
  AddMachineOptions(cmd, opt.get());
  cmd->callback([opt, exit_code] { *exit_code = RunRun(*opt); });
}

}  // namespace vmrr::cli
