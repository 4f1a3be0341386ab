// The Machine: wiring of CPU, memory, buses, devices and clock; the run loop; snapshots and
// digests.
#include "hv-hooks/machine/machine.h"

#include <lz4.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>

#include "hv-hooks/machine/platform_devices.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/machine/loader.h"
#include "logformat/byte_order.h"

namespace vmrr {

namespace {

constexpr uint32_t kMsrApicBase = 0x1b;
constexpr uint32_t kMsrTscDeadline = 0x6e0;
constexpr uint64_t kMinMemory = 2ull << 20;
constexpr uint64_t kMaxMemory = 3ull << 30;  // RAM stays below the 0xc0000000 PCI/MMIO hole
constexpr uint64_t kMaxKernelFile = 1ull << 30;
constexpr uint64_t kPagesPerChunk = 256;  // LZ4 chunk: 1 MiB of raw pages

// The devices keep a reference to the Environment they were built with; this forwarder is
// that reference, so that SetEnvironment (failover) swaps the real one underneath.
class EnvironmentForwarder final : public Environment {
 public:
  explicit EnvironmentForwarder(Environment* env) : env_(env) {}
  void set(Environment* env) { env_ = env; }
  Environment& get() { return *env_; }

  int64_t SampleTime(uint64_t icount) override { return env_->SampleTime(icount); }
  std::vector<uint8_t> PollConsoleInput(uint64_t icount, size_t max_bytes) override {
    return env_->PollConsoleInput(icount, max_bytes);
  }
  bool PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) override {
    return env_->PollNetFrame(icount, frame);
  }
  void GetEntropy(uint64_t icount, std::span<uint8_t> out) override { env_->GetEntropy(icount, out); }
  void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) override {
    env_->ConsoleOutput(icount, bytes);
  }
  void NetFrameSent(uint64_t icount, std::span<const uint8_t> frame) override {
    env_->NetFrameSent(icount, frame);
  }
  bool WaitForInput(uint64_t icount, int64_t deadline_host_ns) override {
    return env_->WaitForInput(icount, deadline_host_ns);
  }

 private:
  Environment* env_;
};

bool PageIsZero(const uint8_t* p) {
  uint64_t acc = 0;
  for (uint64_t i = 0; i < kGuestPageSize; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    acc |= v;
  }
  return acc == 0;
}

}  // namespace

const char* MachineStopName(MachineStop stop) {
  switch (stop) {
    case MachineStop::kGuestExit: return "guest exit";
    case MachineStop::kShutdown: return "shutdown (triple fault)";
    case MachineStop::kTargetReached: return "target reached";
    case MachineStop::kHaltedForever: return "halted forever (HLT with interrupts disabled)";
    case MachineStop::kBreakpoint: return "breakpoint";
    case MachineStop::kExitRequested: return "stop requested";
    case MachineStop::kWatchpoint: return "watchpoint";
    case MachineStop::kHostError: return "host error";
    case MachineStop::kPowerOff: return "power-off (ACPI S5)";
    case MachineStop::kReset: return "reset (ACPI reset register)";
  }
  return "unknown";
}

class Machine::Impl final : public CpuPlatform, public IcountSource {
 public:
  Impl(const MachineConfig& config, Environment& env)
      : env_fwd(&env), mem(config.memory_bytes), cpu(), clock(*this, config.clock_mode, config.sample_interval) {
    clock.Reset(config.clock_mode == VirtualClock::Mode::kIcount ? config.icount_epoch_ns
                                                                   : env.SampleTime(0));
    PlatformConfig pc;
    pc.virtio_rng = config.virtio_rng;
    pc.virtio_net = config.net;
    if (config.disk_image) {
      pc.disk = PlatformConfig::Disk{*config.disk_image, {.read_only = false,
                                                          .write_through_base = config.disk_write_through}};
    }
    try {
      devices = std::make_unique<PlatformDevices>(mem, clock, *this, env_fwd, pc);
    } catch (const BlockImageError& e) {
      throw MachineError(MachineError::Code::kDisk, e.what());
    }
    devices->MapInto(ports, mmio);
    devices->SetHostErrorHandler([this](const std::string& message) { HostError(message); });
    cpu = std::make_unique<Cpu>(*this);
    cpu->Reset();
    devices->interrupts().SetIntrLineCallback([this](bool level) { cpu->SetIntrLine(level); });
    devices->debug_exit().SetExitHandler([this](int) { cpu->RequestExit(); });
    devices->acpi_pm().SetRequestHandler([this] { cpu->RequestExit(); });
  }

  // ---- IcountSource --------------------------------------------------------------------
  uint64_t icount() const override { return cpu ? cpu->icount() : 0; }

  // ---- CpuPlatform ---------------------------------------------------------------------
  GuestMemory& memory() override { return mem; }
  // Every device access may move a deadline or change an interrupt line: the CPU returns to
  // the run loop after the instruction so that the loop recomputes where to stop next.
  uint64_t MmioRead(uint64_t gpa, unsigned size) override {
    IoExit();
    return mmio.Read(gpa, size);
  }
  void MmioWrite(uint64_t gpa, unsigned size, uint64_t value) override {
    IoExit();
    mmio.Write(gpa, size, value);
  }
  uint32_t PortIn(uint16_t port, unsigned size) override {
    IoExit();
    return static_cast<uint32_t>(ports.Read(port, size));
  }
  void PortOut(uint16_t port, unsigned size, uint32_t value) override {
    IoExit();
    ports.Write(port, size, value);
  }
  uint64_t ReadTsc() override { return clock.NowNs(); }
  bool ReadRandom(uint64_t* value) override {
    uint8_t b[8];
    env_fwd.GetEntropy(cpu->icount(), b);  // may StopForHostError (which ends the block)
    *value = LoadLe64(b);
    return true;
  }
  bool ReadMsr(uint32_t msr, uint64_t* value) override {
    if (msr == kMsrTscDeadline) {
      const uint64_t d = devices->lapic().tsc_deadline();
      *value = d ? d + cpu->state().tsc_offset : 0;
      return true;
    }
    if (msr == kMsrApicBase) {
      *value = devices->lapic().apic_base_msr();
      return true;
    }
    return false;
  }
  bool WriteMsr(uint32_t msr, uint64_t value) override {
    if (msr == kMsrTscDeadline) {
      IoExit();
      // The guest's TSC is clock time plus its IA32_TSC offset; the LAPIC counts clock time.
      devices->lapic().set_tsc_deadline(value ? value - cpu->state().tsc_offset : 0);
      return true;
    }
    if (msr == kMsrApicBase) {
      if (value & ~uint64_t{0x000000fffffffd00ull}) return false;  // reserved bits: #GP
      IoExit();
      devices->lapic().set_apic_base_msr(value);
      return true;
    }
    return false;
  }
  uint8_t AckInterrupt() override {
    const uint8_t vector = devices->interrupts().Acknowledge();
    if (observer) observer->OnInterrupt(cpu->icount(), vector);
    return vector;
  }

  // ---- run loop helpers ----------------------------------------------------------------
  void HostError(const std::string& message) {
    if (!host_error_pending) host_error = message;
    host_error_pending = true;
    cpu->RequestExit();
  }
  void IoExit() {
    recheck = true;
    cpu->RequestExit();
  }
  void InputPoint() {
    if (clock.mode() == VirtualClock::Mode::kHost) {
      clock.Sample(env_fwd.SampleTime(cpu->icount()));
    } else {
      clock.MarkInputPoint();
    }
    devices->PollInputs();
  }

  // Declaration order is construction order: the clock asks icount() (hence cpu, still null)
  // while being built; the devices and the CPU are built in the constructor body.
  EnvironmentForwarder env_fwd;
  GuestMemory mem;
  PortBus ports;
  MmioBus mmio;
  std::unique_ptr<Cpu> cpu;
  VirtualClock clock;
  std::unique_ptr<PlatformDevices> devices;
  MachineObserver* observer = nullptr;
  std::atomic<bool> stop_requested{false};
  static_assert(std::atomic<bool>::is_always_lock_free, "RequestStop runs in signal handlers");
  // StopForHostError: set on the machine's thread only; cleared only by LoadSnapshot (the
  // machine cannot go on from an answer it did not get).
  bool host_error_pending = false;
  std::string host_error;
  // Run-loop state (saved in snapshots): the icount where the loop must next look at input
  // and timers, and whether something since the last look may have moved a deadline.
  uint64_t next_stop = 0;
  bool recheck = true;
  std::set<uint64_t> breakpoints;  // linear RIPs (also installed in the CPU)
};

namespace {
MachineConfig Validated(const MachineConfig& c) {
  if (c.memory_bytes < kMinMemory || c.memory_bytes > kMaxMemory) {
    throw MachineError(MachineError::Code::kConfig,
                       "memory size " + std::to_string(c.memory_bytes) +
                           " bytes is outside the supported range 2 MiB .. 3 GiB");
  }
  if (c.memory_bytes % kGuestPageSize) {
    throw MachineError(MachineError::Code::kConfig,
                       "memory size " + std::to_string(c.memory_bytes) +
                           " bytes is not a multiple of 4 KiB");
  }
  if (c.sample_interval == 0) {
    throw MachineError(MachineError::Code::kConfig, "sample interval must be at least 1");
  }
  return c;
}
}  // namespace

Machine::Machine(const MachineConfig& config, Environment& env)
    : config_(Validated(config)), env_(&env) {
  try {
    impl_ = std::make_unique<Impl>(config_, env);
  } catch (const std::bad_alloc&) {
    throw MachineError(MachineError::Code::kConfig,
                       "cannot allocate " + std::to_string(config_.memory_bytes >> 20) +
                           " MiB of guest memory");
  }
}

Machine::~Machine() = default;

namespace {

// The whole file, for a kernel or an initrd (`what` names it in messages).
std::vector<uint8_t> ReadBootFile(const std::string& what, const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) {
    throw MachineError(MachineError::Code::kKernel,
                       "cannot open " + what + " '" + path + "': " + std::strerror(errno));
  }
  const std::streamoff size = f.tellg();
  if (size < 0 || static_cast<uint64_t>(size) > kMaxKernelFile) {
    throw MachineError(MachineError::Code::kKernel,
                       what + " '" + path + "' is not a regular file of at most 1 GiB");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (!bytes.empty() && !f.read(reinterpret_cast<char*>(bytes.data()), size)) {
    throw MachineError(MachineError::Code::kKernel, "cannot read " + what + " '" + path + "'");
  }
  return bytes;
}

}  // namespace

void Machine::LoadKernel(const std::string& path, const std::string& initrd_path,
                         const std::string& cmdline) {
  const std::vector<uint8_t> bytes = ReadBootFile("kernel", path);
  const std::vector<uint8_t> initrd =
      initrd_path.empty() ? std::vector<uint8_t>{} : ReadBootFile("initrd", initrd_path);
  LoadKernelBytes(bytes, path, initrd, cmdline);
}

void Machine::LoadKernelBytes(std::span<const uint8_t> image, const std::string& name,
                              std::span<const uint8_t> initrd, const std::string& cmdline) {
  BootState boot;
  try {
    KernelArgs args{initrd, cmdline, 0};
    std::optional<AcpiTables> acpi;
    if (const KernelFormat f = DetectKernelFormat(image);
        f == KernelFormat::kLinuxBzImage || f == KernelFormat::kLinuxPvh) {
      acpi = BuildAcpiTables(impl_->devices->acpi_layout(platform::kAcpiTablesBase));
      if (acpi->bytes.size() > platform::kAcpiTablesMax) {
        throw LoaderError("the ACPI tables do not fit their area");
      }
      args.acpi_rsdp = platform::kAcpiTablesBase;
    }
    boot = LoadKernelImage(impl_->mem, image, args);
    // Written only once the kernel was accepted: a refused image leaves memory untouched.
    if (acpi) impl_->mem.Write(platform::kAcpiTablesBase, acpi->bytes.data(), acpi->bytes.size());
  } catch (const LoaderError& e) {
    throw MachineError(MachineError::Code::kKernel, "kernel '" + name + "': " + e.what());
  }
  CpuState s = impl_->cpu->state();
  ApplyBootState(boot, &s);
  impl_->cpu->SetState(s);
  impl_->recheck = true;
}

MachineResult Machine::Run(uint64_t target_icount) {
  Impl& m = *impl_;
  Cpu& cpu = *m.cpu;
  PlatformDevices& dev = *m.devices;
  VirtualClock& clock = m.clock;
  auto result = [&](MachineStop stop) {
    MachineResult r;
    r.stop = stop;
    r.icount = cpu.icount();
    if (stop == MachineStop::kGuestExit) r.exit_status = dev.debug_exit().exit_status();
    return r;
  };
  bool first_cpu_run = true;
  for (;;) {
    if (m.host_error_pending) return result(MachineStop::kHostError);
    if (dev.debug_exit().exit_requested()) return result(MachineStop::kGuestExit);
    if (dev.acpi_pm().request() == AcpiPm::Request::kPowerOff) return result(MachineStop::kPowerOff);
    if (dev.acpi_pm().request() == AcpiPm::Request::kReset) return result(MachineStop::kReset);
    if (cpu.state().shutdown) return result(MachineStop::kShutdown);
    if (m.stop_requested.exchange(false)) return result(MachineStop::kExitRequested);
    const uint64_t now = cpu.icount();
    if (now >= target_icount) return result(MachineStop::kTargetReached);
    // Timers and input are looked at only at the machine's own stop points (the previous
    // natural stop, or any device access / HLT wake-up since), never because a caller's target
    // happened to split the run there: how Run is chunked must not change device state (the
    // RTC, for one, remembers when it was last looked at).
    if (m.recheck || now >= m.next_stop) {
      if (now >= clock.NextInputPointIcount()) m.InputPoint();
      dev.RunTimers();
      m.next_stop = std::min(clock.NextInputPointIcount(), clock.IcountForDeadline(dev.NextDeadlineNs()));
      m.recheck = false;
    }
    uint64_t stop = std::min(target_icount, m.next_stop);
    if (stop <= now) stop = now + 1;
    // The CPU does not check breakpoints on the first instruction of each Cpu::Run; this loop
    // calls Cpu::Run many times, so it checks machine breakpoints at those boundaries itself
    // (except at the very start of Machine::Run, so that continuing makes progress).
    if (m.host_error_pending) continue;  // an input point just failed
    if (!m.breakpoints.empty() && !first_cpu_run) {
      const CpuState& st = cpu.state();
      if (m.breakpoints.count(st.seg[kCs].base + st.rip)) return result(MachineStop::kBreakpoint);
    }
    first_cpu_run = false;
    const RunResult r = cpu.Run(stop);
    switch (r.reason) {
      case StopReason::kTargetReached:
      case StopReason::kExitRequested:
        continue;
      case StopReason::kShutdown:
        return result(MachineStop::kShutdown);
      case StopReason::kBreakpoint:
        return result(MachineStop::kBreakpoint);
      case StopReason::kWatchpoint:
        return result(MachineStop::kWatchpoint);
      case StopReason::kHalted:
        break;
    }
    // HLT: nothing to run until an interrupt. With IF=0 nothing can wake the CPU (the
    // platform has no NMI source).
    if (!(cpu.state().rflags & kFlagIf)) return result(MachineStop::kHaltedForever);
    if (m.stop_requested.load()) continue;
    const uint64_t next_ns = dev.NextDeadlineNs();
    if (clock.mode() == VirtualClock::Mode::kIcount && next_ns != kNoDeadline) {
      // An idle guest retires few instructions, so icount-spaced input points alone would
      // leave console/network input waiting for ages: every HLT is an input point too.
      m.InputPoint();
      if (!(cpu.intr_line() && cpu.InterruptsAccepted())) clock.AdvanceIdleTo(next_ns);
      m.recheck = true;
      continue;
    }
    const int64_t wake = next_ns == kNoDeadline ? Environment::kWaitForever : clock.HostTimeForDeadline(next_ns);
    const bool input = m.env_fwd.WaitForInput(cpu.icount(), wake);
    if (m.stop_requested.load()) continue;
    m.InputPoint();
    dev.RunTimers();
    m.recheck = true;
    if (!input && !m.host_error_pending && next_ns == kNoDeadline && !cpu.intr_line() &&
        dev.NextDeadlineNs() == kNoDeadline) {
      // Nothing arrived and nothing is scheduled: no input can ever wake this guest (input
      // closed, or a replay whose log has none left).
      return result(MachineStop::kHaltedForever);
    }
  }
}

void Machine::RequestStop() {
  impl_->stop_requested.store(true);
  impl_->cpu->RequestExitAsync();
}

void Machine::StopForHostError(const std::string& message) { impl_->HostError(message); }

const std::string& Machine::host_error() const { return impl_->host_error; }

uint64_t Machine::icount() const { return impl_->cpu->icount(); }
Cpu& Machine::cpu() { return *impl_->cpu; }
GuestMemory& Machine::memory() { return impl_->mem; }
PlatformDevices& Machine::devices() { return *impl_->devices; }
VirtualClock& Machine::clock() { return impl_->clock; }

void Machine::SetEnvironment(Environment& env) {
  env_ = &env;
  impl_->env_fwd.set(&env);
}

void Machine::SetObserver(MachineObserver* observer) { impl_->observer = observer; }

void Machine::AddBreakpoint(uint64_t linear_rip) {
  impl_->breakpoints.insert(linear_rip);
  impl_->cpu->AddBreakpoint(linear_rip);
}
void Machine::RemoveBreakpoint(uint64_t linear_rip) {
  impl_->breakpoints.erase(linear_rip);
  impl_->cpu->RemoveBreakpoint(linear_rip);
}
void Machine::ClearBreakpoints() {
  impl_->breakpoints.clear();
  impl_->cpu->ClearBreakpoints();
}
void Machine::SetWatchpoints(std::vector<Watchpoint> watchpoints) {
  impl_->cpu->SetWatchpoints(std::move(watchpoints));
}

// ---------------------------------------------------------------------------------------
// Snapshots

namespace {
constexpr uint32_t kMemoryVersion = 1;

void CheckConfig(StateReader& r, const MachineConfig& c) {
  const MachineConfig theirs = LoadMachineConfig(r);
  if (!SameMachine(theirs, c))
    r.Fail("snapshot was taken on a machine with a different " + DescribeMachineDifference(theirs, c));
}

// The memory section: "MEM0", every non-zero page (a page it does not list is zero); or, in a
// delta snapshot, "MEMD", every page written since the last GuestMemory::ClearDirty, zero or
// not (a page it does not list is as it was in the base snapshot). Same layout: page count,
// listed page count, the indices in increasing order, their contents in LZ4 chunks.
constexpr char kMemFull[] = "MEM0";
constexpr char kMemDelta[] = "MEMD";
// The section a delta snapshot starts with (before the machine configuration): the caller's
// tag for its base snapshot.
constexpr char kDeltaTag[] = "DLTA";

void SaveMemory(StateWriter& w, const GuestMemory& mem, bool delta) {
  w.Begin(delta ? kMemDelta : kMemFull, kMemoryVersion);
  std::vector<uint64_t> pages;
  for (uint64_t p = 0; p < mem.pages(); ++p) {
    if (delta ? mem.IsDirty(p) : mem.MayBeNonZero(p) && !PageIsZero(mem.data() + p * kGuestPageSize))
      pages.push_back(p);
  }
  w.U64(mem.pages());
  w.U64(pages.size());
  for (uint64_t p : pages) w.U64(p);
  std::vector<uint8_t> raw, packed;
  for (uint64_t i = 0; i < pages.size(); i += kPagesPerChunk) {
    const uint64_t n = std::min<uint64_t>(kPagesPerChunk, pages.size() - i);
    raw.resize(n * kGuestPageSize);
    for (uint64_t k = 0; k < n; ++k) {
      std::memcpy(raw.data() + k * kGuestPageSize, mem.data() + pages[i + k] * kGuestPageSize,
                  kGuestPageSize);
    }
    packed.resize(static_cast<size_t>(LZ4_compressBound(static_cast<int>(raw.size()))));
    const int len = LZ4_compress_default(reinterpret_cast<const char*>(raw.data()),
                                         reinterpret_cast<char*>(packed.data()),
                                         static_cast<int>(raw.size()), static_cast<int>(packed.size()));
    packed.resize(static_cast<size_t>(len));
    w.Bytes(packed);
  }
}

// Decodes the memory section into (page list, page contents) without touching RAM.
void ReadMemory(StateReader& r, const GuestMemory& mem, bool delta, std::vector<uint64_t>* pages,
                std::vector<uint8_t>* contents) {
  r.Begin(delta ? kMemDelta : kMemFull, kMemoryVersion);
  if (r.U64() != mem.pages()) r.Fail("memory page count differs from this machine's");
  const uint64_t n = r.Bounded(r.U64(), mem.pages(), "listed page count");
  pages->resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t p = r.U64();
    if (p >= mem.pages()) r.Fail("page index beyond guest RAM");
    if (i && p <= (*pages)[i - 1]) r.Fail("page indices not strictly increasing");
    (*pages)[i] = p;
  }
  contents->resize(n * kGuestPageSize);
  for (uint64_t i = 0; i < n; i += kPagesPerChunk) {
    const uint64_t k = std::min<uint64_t>(kPagesPerChunk, n - i);
    const uint64_t raw = k * kGuestPageSize;
    const std::vector<uint8_t> packed = r.Bytes(static_cast<uint64_t>(LZ4_compressBound(static_cast<int>(raw))));
    const int got = LZ4_decompress_safe(reinterpret_cast<const char*>(packed.data()),
                                        reinterpret_cast<char*>(contents->data() + i * kGuestPageSize),
                                        static_cast<int>(packed.size()), static_cast<int>(raw));
    if (got < 0 || static_cast<uint64_t>(got) != raw) r.Fail("corrupt LZ4 memory chunk");
  }
}

void ApplyMemory(GuestMemory& mem, bool delta, const std::vector<uint64_t>& pages,
                 const std::vector<uint8_t>& contents) {
  if (delta) {  // the listed pages only
    for (size_t i = 0; i < pages.size(); ++i) {
      uint8_t* dst = mem.data() + pages[i] * kGuestPageSize;
      const uint8_t* src = contents.data() + i * kGuestPageSize;
      if (std::memcmp(dst, src, kGuestPageSize) == 0) continue;
      std::memcpy(dst, src, kGuestPageSize);
      mem.NoteWrite(pages[i] * kGuestPageSize, kGuestPageSize);
    }
    return;
  }
  size_t next = 0;
  for (uint64_t p = 0; p < mem.pages(); ++p) {
    uint8_t* dst = mem.data() + p * kGuestPageSize;
    if (next < pages.size() && pages[next] == p) {
      const uint8_t* src = contents.data() + next * kGuestPageSize;
      ++next;
      if (std::memcmp(dst, src, kGuestPageSize) == 0) continue;
      std::memcpy(dst, src, kGuestPageSize);
    } else {
      if (!mem.MayBeNonZero(p) || PageIsZero(dst)) continue;
      std::memset(dst, 0, kGuestPageSize);
    }
    mem.NoteWrite(p * kGuestPageSize, kGuestPageSize);
  }
}
}  // namespace

void Machine::SaveCore(StateWriter& w) const {
  SaveMachineConfig(w, config_);
  impl_->clock.SaveState(w);
  impl_->cpu->SaveState(w);
  impl_->devices->SaveState(w);
  w.Begin("LOOP", 1);
  w.U64(impl_->next_stop);
  w.Bool(impl_->recheck);
}

namespace {
std::vector<uint8_t> Checksummed(StateWriter& w) {
  std::vector<uint8_t> bytes = w.Take();
  const uint64_t sum = XXH3_64bits(bytes.data(), bytes.size());
  AppendLe(bytes, sum, 8);
  return bytes;
}

// The body of a snapshot (without its checksum), checked; throws MachineError otherwise.
std::span<const uint8_t> SnapshotBody(std::span<const uint8_t> bytes) {
  if (bytes.size() < 8) {
    throw MachineError(MachineError::Code::kSnapshot, "bad snapshot: shorter than its checksum");
  }
  const std::span<const uint8_t> body = bytes.first(bytes.size() - 8);
  const uint64_t sum = LoadLe64(bytes.data() + body.size());
  if (sum != XXH3_64bits(body.data(), body.size())) {
    throw MachineError(MachineError::Code::kSnapshot, "bad snapshot: checksum mismatch (damaged or truncated)");
  }
  return body;
}

bool StartsWithDeltaTag(std::span<const uint8_t> body) {
  return body.size() >= 4 && std::memcmp(body.data(), kDeltaTag, 4) == 0;
}
}  // namespace

std::vector<uint8_t> Machine::SaveSnapshot() const {
  StateWriter w;
  SaveCore(w);
  SaveMemory(w, impl_->mem, false);
  return Checksummed(w);
}

std::vector<uint8_t> Machine::SaveSnapshotDelta(uint64_t base_tag) const {
  StateWriter w;
  w.Begin(kDeltaTag, 1);
  w.U64(base_tag);
  SaveCore(w);
  SaveMemory(w, impl_->mem, true);
  return Checksummed(w);
}

std::optional<uint64_t> Machine::SnapshotBase(std::span<const uint8_t> bytes) {
  const std::span<const uint8_t> body = SnapshotBody(bytes);
  if (!StartsWithDeltaTag(body)) return std::nullopt;
  try {
    StateReader r(body);
    r.Begin(kDeltaTag, 1);
    return r.U64();
  } catch (const StateError& e) {
    throw MachineError(MachineError::Code::kSnapshot, std::string("bad snapshot: ") + e.what());
  }
}

std::vector<uint8_t> Machine::SaveCoreState() const {
  StateWriter w;
  SaveCore(w);
  return w.Take();
}

void Machine::LoadSections(std::span<const uint8_t> body, bool with_memory) {
  Impl& m = *impl_;
  // Everything is parsed and checked before anything changes: component sections are loaded
  // into the live components only after a backup of them was taken, and restored from it if a
  // later section fails; memory is decoded to a side buffer and applied last.
  StateWriter backup;
  m.clock.SaveState(backup);
  m.cpu->SaveState(backup);
  m.devices->SaveState(backup);
  const std::vector<uint8_t> saved = backup.Take();
  std::vector<uint64_t> pages;
  std::vector<uint8_t> contents;
  uint64_t next_stop = 0;
  bool recheck = true;
  const bool delta = with_memory && StartsWithDeltaTag(body);
  try {
    StateReader r(body);
    if (delta) {
      r.Begin(kDeltaTag, 1);
      (void)r.U64();  // the base's tag: the caller's to check (SnapshotBase)
    }
    CheckConfig(r, config_);
    m.clock.LoadState(r);
    m.cpu->LoadState(r);
    m.devices->LoadState(r);
    r.Begin("LOOP", 1);
    next_stop = r.U64();
    recheck = r.Bool();
    if (with_memory) ReadMemory(r, m.mem, delta, &pages, &contents);
    r.ExpectEnd();
  } catch (const StateError& e) {
    StateReader undo(saved);
    m.clock.LoadState(undo);
    m.cpu->LoadState(undo);
    m.devices->LoadState(undo);
    throw MachineError(MachineError::Code::kSnapshot, std::string("bad snapshot: ") + e.what());
  }
  if (with_memory) ApplyMemory(m.mem, delta, pages, contents);
  m.next_stop = next_stop;
  m.recheck = recheck;
  m.stop_requested.store(false);
  m.host_error_pending = false;  // the failure belonged to the state just replaced
  m.host_error.clear();
}

void Machine::LoadSnapshot(std::span<const uint8_t> bytes) { LoadSections(SnapshotBody(bytes), true); }

void Machine::LoadCoreState(std::span<const uint8_t> bytes) { LoadSections(bytes, false); }

uint64_t Machine::StateDigest(DigestScope scope) const {
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  StateWriter w;
  impl_->cpu->SaveState(w);
  if (scope == DigestScope::kFull) {
    impl_->clock.SaveState(w);
    impl_->devices->SaveState(w);
    w.U64(impl_->next_stop);
    w.Bool(impl_->recheck);
  }
  XXH3_128bits_update(st, w.bytes().data(), w.bytes().size());
  if (scope == DigestScope::kFull) {
    // Every non-zero page with its number: zero pages (most of a fresh machine's RAM) add
    // nothing, whether or not anything ever wrote them, so the digest is a function of the
    // contents alone.
    const GuestMemory& mem = impl_->mem;
    for (uint64_t p = 0; p < mem.pages(); ++p) {
      const uint8_t* page = mem.data() + p * kGuestPageSize;
      if (!mem.MayBeNonZero(p) || PageIsZero(page)) continue;
      XXH3_128bits_update(st, &p, sizeof p);
      XXH3_128bits_update(st, page, kGuestPageSize);
    }
  }
  const XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  return h.low64 ^ h.high64;
}

}  // namespace vmrr
