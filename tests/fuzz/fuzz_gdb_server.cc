// Fuzz target: the gdb server (analysis/gdb_server.h) over a real replay. The input is the
// byte stream a hostile gdb would send; it goes through GdbPacketReader and every packet is
// handled by a fresh GdbServer on a TimeTravel over a small recorded guest (a PIT-interrupted
// loop, recorded once per process), returned to its start for each input. Running commands
// are interrupted after three slices of 400 instructions, so every input costs a bounded
// (and small: the CPU under coverage instrumentation is most of an input's time) replay. Nothing
// may crash, hang, over-allocate or change the recording (writes are refused).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "analysis/gdb_packet.h"
#include "analysis/gdb_server.h"
#include "analysis/time_travel.h"
#include "recorder/recording_session.h"
#include "tests/unit/machine/test_images.h"

namespace {

struct Fixture {
  std::string kernel, log;
  std::unique_ptr<vmrr::log::LogReader> reader;
  vmrr::SessionConfig config;
  std::unique_ptr<vmrr::analysis::TimeTravel> tt;

  Fixture() {
    const std::string base = "/tmp/vmrr_fuzz_gdb_server_" + std::to_string(getpid());
    kernel = base + ".elf";
    log = base + ".vmrr";
    // The timer guest with a short PIT period: five interrupts in ~400k instructions.
    const std::vector<uint8_t> code = vmrr::test::TimerCode(false, 0x40);
    const std::vector<uint8_t> elf =
        vmrr::test::MakeElf64(0x100000, {{0x100000, code}, {0x200000, vmrr::test::IdtWithTimerVector(0x100080)}});
    std::ofstream(kernel, std::ios::binary).write(reinterpret_cast<const char*>(elf.data()),
                                                  static_cast<std::streamsize>(elf.size()));
    config.machine.memory_bytes = 4ull << 20;
    config.kernel_path = kernel;
    vmrr::test::FakeEnvironment host;
    vmrr::RecordingSession session(config, host, log, "fuzz_gdb_server", vmrr::log::WriterOptions{});
    session.Run(0, {});
    reader = std::make_unique<vmrr::log::LogReader>(vmrr::log::LogReader::Open(log));
    config = vmrr::DecodeSessionConfig(reader->header().machine_config);
    vmrr::analysis::TimeTravelOptions o;
    o.checkpoint_interval = 20000;
    o.slice = 400;  // a running command is interrupted after ~1200 instructions
    o.checkpoint_memory = 8u << 20;
    tt = std::make_unique<vmrr::analysis::TimeTravel>(*reader, config, std::nullopt, o);
    std::remove(kernel.c_str());
    std::remove(log.c_str());  // the reader keeps its mapping
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  vmrr::analysis::TimeTravel& tt = *f.tt;
  tt.GoTo(tt.begin_icount());
  for (uint64_t b : std::vector<uint64_t>(tt.breakpoints().begin(), tt.breakpoints().end())) tt.RemoveBreakpoint(b);
  tt.SetWatchpoints({});
  // The whole machine's digest (CPU, devices, clock, every non-zero RAM page): as exact a
  // check as comparing snapshots, without building two 4 MiB copies per input.
  const uint64_t before = tt.machine().StateDigest(vmrr::DigestScope::kFull);

  vmrr::analysis::GdbServer server(tt);
  vmrr::analysis::GdbPacketReader reader(4096);
  reader.Feed(std::span<const uint8_t>(data, size));
  int polls = 0;
  const vmrr::analysis::TimeTravel::Interrupt interrupt = [&] { return ++polls % 3 == 0; };
  int packets = 0;
  while (auto e = reader.Next()) {
    if (e->kind != vmrr::analysis::GdbEvent::Kind::kPacket) continue;
    if (++packets > 64) break;
    const std::optional<std::string> reply = server.Handle(e->payload, interrupt);
    if (reply && reply->size() > 64 * 1024) std::abort();  // PacketSize is 16 KiB of payload
    if (server.detached()) break;
  }
  // Whatever gdb asked, the recording itself is unchanged: back at the start, the same state.
  tt.GoTo(tt.begin_icount());
  if (tt.machine().StateDigest(vmrr::DigestScope::kFull) != before) std::abort();
  return 0;
}
