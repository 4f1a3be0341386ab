// Whole recordings of hand-assembled guests replayed through VerifiedReplay / ReplaySession:
// idle waits with nothing scheduled replay their logged answer (IdleWake) even when the UART
// skips its console poll; a replay that fails (tampered entropy, a cut log, a tampered
// interrupt) stops at an instruction boundary with a consistent machine; Machine::RequestStop
// from another thread or a signal handler stops a busy guest at an instruction boundary.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "hv-hooks/machine/machine.h"
#include "hv-hooks/session/session_config.h"
#include "logformat/log_reader.h"
#include "logformat/log_writer.h"
#include "recorder/recording_environment.h"
#include "recorder/recording_session.h"
#include "replayer/replay_machine.h"
#include "replayer/replay_session.h"
#include "replayer/replaying_environment.h"
#include "replayer/verified_replay.h"
#include "tests/unit/machine/test_images.h"

namespace vmrr {
namespace {

constexpr uint64_t kBase = 0x100000;  // where CodeGuest loads and enters

// A scripted host: fixed time steps, queued console input, counter (or zero) entropy, waits
// answered by a callback. No host access.
class ScriptedHost : public Environment {
 public:
  int64_t SampleTime(uint64_t) override { return now_ns += 1000; }
  std::vector<uint8_t> PollConsoleInput(uint64_t, size_t max_bytes) override {
    std::vector<uint8_t> out;
    while (!console_in.empty() && out.size() < max_bytes) {
      out.push_back(console_in.front());
      console_in.pop_front();
    }
    return out;
  }
  bool PollNetFrame(uint64_t, std::vector<uint8_t>*) override { return false; }
  void GetEntropy(uint64_t, std::span<uint8_t> out) override {
    for (auto& b : out) b = zero_entropy ? 0 : next_entropy++;
  }
  void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) override {
    console_out.append(bytes.begin(), bytes.end());
    if (on_output) on_output(icount);
  }
  void NetFrameSent(uint64_t, std::span<const uint8_t>) override {}
  bool WaitForInput(uint64_t icount, int64_t deadline) override {
    ++waits;
    return on_wait ? on_wait(icount, deadline) : false;
  }

  int64_t now_ns = 1'700'000'000'000'000'000;
  std::deque<uint8_t> console_in;
  uint8_t next_entropy = 1;
  bool zero_entropy = false;
  std::string console_out;
  int waits = 0;
  std::function<bool(uint64_t, int64_t)> on_wait;
  std::function<void(uint64_t)> on_output;
};

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "vmrr_replay_stop_" + std::to_string(getpid()) + "_" + name;
}

std::string WriteFile(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = TempPath(name);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

SessionConfig ConfigFor(const std::string& kernel_path) {
  SessionConfig c;
  c.machine.memory_bytes = 16ull << 20;
  c.kernel_path = kernel_path;
  return c;
}

// Records `kernel` (a file) with `host`; `setup` sees the session before it runs.
RecordSummary Record(const SessionConfig& config, ScriptedHost& host, const std::string& log_path,
                     log::WriterOptions wo = {},
                     const std::function<void(RecordingSession&)>& setup = {}) {
  RecordingSession session(config, host, log_path, "replay_stop_test", std::move(wo));
  if (setup) setup(session);
  return session.Run(0, {});
}

std::vector<log::Record> AllRecords(const log::LogReader& reader) {
  std::vector<log::Record> all, frame;
  for (size_t i = 0; i < reader.frames().size(); ++i) {
    reader.ReadFrame(i, &frame);
    all.insert(all.end(), frame.begin(), frame.end());
  }
  return all;
}

// Rewrites a log (every frame re-encoded, checksums valid) with `edit` applied to each
// ordinary record; edit returns false to drop the record. As tests/integration/log_tamper.cc.
void RewriteLog(const std::string& in_path, const std::string& out_path,
                const std::function<bool(log::Record&)>& edit,
                const std::function<void(log::End&)>& edit_end = {}) {
  log::LogReader in = log::LogReader::Open(in_path);
  auto out = log::LogWriter::CreateFile(out_path, in.header());
  std::vector<uint8_t> blob;
  std::vector<log::Record> records;
  for (size_t f = 0; f < in.frames().size(); ++f) {
    in.ReadFrame(f, &records);
    for (log::Record& r : records) {
      if (auto* c = std::get_if<log::SnapshotChunk>(&r.body)) {
        if (c->offset == 0) blob.clear();
        blob.insert(blob.end(), c->bytes.begin(), c->bytes.end());
        continue;
      }
      if (auto* cp = std::get_if<log::Checkpoint>(&r.body)) {
        out->AppendSnapshot(r.icount, cp->snapshot_id, blob, cp->state_digest);
        continue;
      }
      if (auto* e = std::get_if<log::End>(&r.body)) {
        if (edit_end) edit_end(*e);
        out->Finish(r.icount, *e);
        continue;
      }
      if (edit(r)) out->Append(r);
    }
  }
  if (!out->finished()) out->Flush();
}

ReplayingEnvironmentOptions OptionsFor(const log::LogReader& reader) {
  ReplayingEnvironmentOptions o;
  o.log_complete = reader.complete();
  return o;
}

// ---- 1. idle waits with nothing scheduled -----------------------------------------------

TEST(IdleWake, RecordingOfAForeverWaitLogsItsAnswerAndTheReplayConsumesIt) {
  ScriptedHost host;
  int answers = 0;
  host.on_wait = [&](uint64_t, int64_t) { return ++answers == 1; };
  std::vector<uint8_t> bytes;
  {
    log::LogWriter w(std::make_unique<log::VectorSink>(&bytes), log::LogHeader{});
    RecordingEnvironmentOptions eo;
    eo.max_idle_wait_ns = 0;
    RecordingEnvironment rec(host, w, eo);
    EXPECT_TRUE(rec.WaitForInput(7, Environment::kWaitForever));
    EXPECT_FALSE(rec.WaitForInput(9, 12345));  // a finite deadline: the answer is not an input
    EXPECT_FALSE(rec.WaitForInput(11, Environment::kWaitForever));
    EXPECT_EQ(rec.inputs_logged(), 2u);
    w.Finish(20, log::End{});
  }
  log::LogReader reader = log::LogReader::FromBytes(bytes);
  std::vector<log::Record> expect = {{7, log::IdleWake{true}}, {11, log::IdleWake{false}}, {20, log::End{}}};
  EXPECT_EQ(AllRecords(reader), expect);

  LogRecordSource source(reader, LogPosition{});
  ReplayingEnvironment rep(source);
  EXPECT_TRUE(rep.WaitForInput(7, Environment::kWaitForever));
  EXPECT_EQ(rep.inputs_consumed(), 1u);
  EXPECT_TRUE(rep.WaitForInput(9, 12345));  // not consumed
  EXPECT_FALSE(rep.WaitForInput(11, Environment::kWaitForever));
  EXPECT_EQ(rep.inputs_consumed(), 2u);
  EXPECT_EQ(rep.PeekInput(), nullptr);
  EXPECT_FALSE(rep.failure());
}

// Guests that enable interrupts and HLT forever with no timer armed (every wait is a
// kWaitForever wait), in the two UART states where the UART does not poll the console:
//  loopback:  mov dx,0x3fc; mov al,0x10; out dx,al   (MCR: loopback)
//  fifo full: mov dx,0x3fa; mov al,0x01; out dx,al   (FCR: FIFO on; the guest never reads it)
//  then:      sti; 1: hlt; jmp 1b
enum class UartState { kLoopback, kFifoFull };
std::vector<uint8_t> IdleGuest(UartState state) {
  std::vector<uint8_t> c = state == UartState::kLoopback
                               ? std::vector<uint8_t>{0x66, 0xba, 0xfc, 0x03, 0xb0, 0x10, 0xee}
                               : std::vector<uint8_t>{0x66, 0xba, 0xfa, 0x03, 0xb0, 0x01, 0xee};
  c.insert(c.end(), {0xfb, 0xf4, 0xeb, 0xfd});
  return test::CodeGuest(c);
}

TEST(IdleWake, AnIdleGuestWhoseUartDoesNotPollReplaysToWhereTheRecordingStopped) {
  for (UartState state : {UartState::kLoopback, UartState::kFifoFull}) {
    SCOPED_TRACE(state == UartState::kLoopback ? "loopback" : "fifo full");
    const std::string kernel = WriteFile("idle.elf", IdleGuest(state));
    const std::string log_path = TempPath("idle.vmrr");
    const SessionConfig config = ConfigFor(kernel);
    ScriptedHost host;
    if (state == UartState::kFifoFull) host.console_in.assign(20, 'x');  // more than the FIFO holds
    RecordingSession* session = nullptr;
    int wakes = 0;
    host.on_wait = [&](uint64_t, int64_t) {
      if (++wakes <= 4) return true;  // "input may be available", four times
      session->RequestStop();         // then the user stops the recording during a wait
      return false;
    };
    RecordSummary rs = Record(config, host, log_path, {}, [&](RecordingSession& s) { session = &s; });
    ASSERT_EQ(rs.result.stop, MachineStop::kExitRequested);
    const uint64_t stop_icount = rs.result.icount;
    EXPECT_EQ(stop_icount, 5u) << "three setup instructions, STI, HLT";

    log::LogReader reader = log::LogReader::Open(log_path);
    ASSERT_TRUE(reader.complete());
    std::vector<bool> idle_wakes;
    for (const log::Record& r : AllRecords(reader))
      if (const auto* w = std::get_if<log::IdleWake>(&r.body)) {
        EXPECT_EQ(r.icount, stop_icount);
        idle_wakes.push_back(w->input);
      }
    // Four wakes with input, then the wait the stop cut short, logged with its answer too.
    EXPECT_EQ(idle_wakes, (std::vector<bool>{true, true, true, true, false}));

    {
      const SessionConfig rc = DecodeSessionConfig(reader.header().machine_config);
      VerifiedReplay replay(reader, rc, std::nullopt, reader.checkpoints().front(), OptionsFor(reader));
      VerifiedReplay::Stop stop{};
      ASSERT_NO_THROW(stop = replay.Run(~uint64_t{0}));
      EXPECT_EQ(stop, VerifiedReplay::Stop::kEnd);
      EXPECT_EQ(replay.last_result().stop, MachineStop::kExitRequested) << "not halted forever";
      EXPECT_EQ(replay.last_result().icount, stop_icount);
      EXPECT_EQ(replay.replay().env().PeekInput(), nullptr) << "every IdleWake consumed";
    }
    ReplaySession rsession(log_path, ReplayOptions{});
    ReplaySummary sum = rsession.Run();
    EXPECT_EQ(sum.outcome, ReplaySummary::Outcome::kMatched)
        << (sum.divergence ? sum.divergence->message : std::string());
    EXPECT_EQ(sum.icount, stop_icount);
    std::remove(kernel.c_str());
    std::remove(log_path.c_str());
  }
}

// ---- 2. replay failures stop at an instruction boundary ---------------------------------

// rng guest (gas --64 -M intel):
//   0: mov ecx,10          b9 0a 00 00 00
//   5: dec ecx             ff c9
//   7: jne 5               75 fc
//   9: rdrand rax          48 0f c7 f0      <- icount 21
//   d: mov rbx,rax         48 89 c3
//  10: mov dx,0xf4         66 ba f4 00
//  14: mov eax,2           b8 02 00 00 00
//  19: out dx,eax          ef               exit status (2<<1)|1
//  1a: hlt                 f4
const std::vector<uint8_t> kRngCode = {0xb9, 0x0a, 0x00, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xfc,
                                       0x48, 0x0f, 0xc7, 0xf0, 0x48, 0x89, 0xc3, 0x66, 0xba,
                                       0xf4, 0x00, 0xb8, 0x02, 0x00, 0x00, 0x00, 0xef, 0xf4};
constexpr uint64_t kRdrandIcount = 21;
constexpr uint64_t kAfterRdrand = kBase + 0xd;

// The stopped machine `m` is consistent: its snapshot restores elsewhere to the same whole
// state, which runs on to the guest's exit at end_icount. Returns the restored run's result.
MachineResult ExpectResumesFromItsSnapshot(Machine& m, const MachineConfig& config, uint64_t digest,
                                           uint64_t end_icount, ScriptedHost& host) {
  const std::vector<uint8_t> snap = m.SaveSnapshot();
  Machine restored(config, host);
  restored.LoadSnapshot(snap);
  EXPECT_EQ(restored.StateDigest(DigestScope::kFull), digest);
  const MachineResult fin = restored.Run();
  EXPECT_EQ(fin.stop, MachineStop::kGuestExit);
  EXPECT_EQ(fin.icount, end_icount);
  // And into the stopped machine itself: LoadSnapshot clears the host error.
  m.LoadSnapshot(snap);
  EXPECT_TRUE(m.host_error().empty());
  return fin;
}

TEST(ReplayFailure, TamperedEntropyStopsRightAfterTheInstructionThatAsked) {
  const std::string kernel = WriteFile("rng.elf", test::CodeGuest(kRngCode));
  const std::string log_path = TempPath("rng.vmrr");
  const SessionConfig config = ConfigFor(kernel);
  ScriptedHost rec_host;
  RecordSummary rs = Record(config, rec_host, log_path);
  ASSERT_EQ(rs.result.stop, MachineStop::kGuestExit);
  const uint64_t end_icount = rs.result.icount;
  {
    log::LogReader reader = log::LogReader::Open(log_path);
    int entropy = 0;
    for (const log::Record& r : AllRecords(reader))
      if (std::holds_alternative<log::Entropy>(r.body)) {
        EXPECT_EQ(r.icount, kRdrandIcount);
        ++entropy;
      }
    ASSERT_EQ(entropy, 1);
  }
  // Zero entropy (the neutral answer) up to the instruction after RDRAND: what the stopped
  // replay machine must equal.
  ScriptedHost ref_host;
  ref_host.zero_entropy = true;
  Machine reference(config.machine, ref_host);
  reference.LoadKernel(kernel);
  ASSERT_EQ(reference.Run(kRdrandIcount + 1).icount, kRdrandIcount + 1);

  struct Case {
    const char* name;
    std::function<bool(log::Record&)> edit;
    Divergence::Kind kind;
  } cases[] = {
      {"shorter", [](log::Record& r) {
         if (auto* e = std::get_if<log::Entropy>(&r.body)) e->bytes.resize(4);
         return true;
       }, Divergence::Kind::kInputSize},
      {"missing", [](log::Record& r) { return !std::holds_alternative<log::Entropy>(r.body); },
       Divergence::Kind::kInput},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string tampered = TempPath(std::string("rng_") + c.name + ".vmrr");
    RewriteLog(log_path, tampered, c.edit);
    log::LogReader reader = log::LogReader::Open(tampered);
    ASSERT_TRUE(reader.complete());
    const SessionConfig rc = DecodeSessionConfig(reader.header().machine_config);
    VerifiedReplay replay(reader, rc, std::nullopt, reader.checkpoints().front(), OptionsFor(reader));
    try {
      replay.Run(~uint64_t{0});
      ADD_FAILURE() << "no divergence";
    } catch (const Divergence& d) {
      EXPECT_EQ(d.kind(), c.kind) << d.what();
      EXPECT_EQ(d.icount(), kRdrandIcount) << d.what();
      EXPECT_NE(std::string(d.what()).find("icount 21"), std::string::npos) << d.what();
    }
    Machine& m = replay.replay().machine();
    EXPECT_EQ(m.icount(), kRdrandIcount + 1) << "RDRAND completed, nothing after it ran";
    EXPECT_EQ(m.cpu().state().rip, kAfterRdrand);
    EXPECT_FALSE(m.host_error().empty());
    const uint64_t digest = m.StateDigest(DigestScope::kFull);
    EXPECT_EQ(digest, reference.StateDigest(DigestScope::kFull))
        << "the stopped machine is the one that got the neutral answer, whole";
    // Run again: kHostError at once, nothing executed.
    MachineResult again = m.Run();
    EXPECT_EQ(again.stop, MachineStop::kHostError);
    EXPECT_EQ(again.icount, kRdrandIcount + 1);
    EXPECT_EQ(m.StateDigest(DigestScope::kFull), digest);
    ScriptedHost host;
    EXPECT_EQ(ExpectResumesFromItsSnapshot(m, rc.machine, digest, end_icount, host).exit_status, (2 << 1) | 1);
    std::remove(tampered.c_str());
  }
  std::remove(kernel.c_str());
  std::remove(log_path.c_str());
}

// Checkpoints after the first are delta snapshots (the pages written since the one before):
// each must load, over its chain of bases, to the whole-machine state the recording had there,
// whether a replay starts at it or seeks to it, and replay on from there to the end.
TEST(Checkpoints, DeltaCheckpointsLoadToTheStateTheRecordingHadThere) {
  const std::string kernel = WriteFile("delta_timer.elf", test::TimerGuest(false));
  const std::string log_path = TempPath("delta_timer.vmrr");
  SessionConfig config = ConfigFor(kernel);
  config.digest_interval = 100'000;
  config.checkpoint_interval = 400'000;
  config.machine_digest_interval = 400'000;
  ScriptedHost host;
  const uint64_t end = Record(config, host, log_path).result.icount;  // the guest ends by itself
  ASSERT_GT(end, 3'500'000u);
  log::LogReader reader = log::LogReader::Open(log_path);
  ASSERT_TRUE(reader.complete());
  const auto& cps = reader.checkpoints();
  ASSERT_GE(cps.size(), 8u);
  std::map<uint64_t, uint64_t> digest_of;  // snapshot id -> the recorded whole-machine digest
  for (const log::Record& r : AllRecords(reader))
    if (const auto* c = std::get_if<log::Checkpoint>(&r.body)) digest_of[c->snapshot_id] = c->state_digest;
  const SessionConfig rc = DecodeSessionConfig(reader.header().machine_config);
  size_t deltas = 0;
  uint64_t full_bytes = 0, delta_bytes = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    SCOPED_TRACE("checkpoint at icount " + std::to_string(cps[i].icount));
    const std::vector<uint8_t> blob = reader.ReadSnapshot(cps[i]);
    const std::optional<uint64_t> base = Machine::SnapshotBase(blob);
    if (i == 0) {
      EXPECT_FALSE(base) << "a log's first snapshot is whole";
    }
    if (base) {
      ++deltas;
      EXPECT_EQ(*base, cps[i - 1].snapshot_id) << "a delta's base is the checkpoint before it";
      delta_bytes += blob.size();
    } else {
      full_bytes = blob.size();
    }
    ReplayMachine rm(reader, rc, std::nullopt, cps[i], OptionsFor(reader));
    EXPECT_EQ(rm.machine().icount(), cps[i].icount);
    EXPECT_EQ(rm.machine().StateDigest(DigestScope::kFull), digest_of.at(cps[i].snapshot_id));
  }
  EXPECT_GE(deltas, cps.size() - 1);
  EXPECT_LT(delta_bytes / deltas, full_bytes / 4) << "a delta holds what the guest wrote, not all RAM";

  // Seeking from the first checkpoint to the last (a delta) and back, then replaying on.
  ReplayMachine rm(reader, rc, std::nullopt, cps.front(), OptionsFor(reader));
  rm.SeekToCheckpoint(cps.back());
  EXPECT_EQ(rm.machine().StateDigest(DigestScope::kFull), digest_of.at(cps.back().snapshot_id));
  rm.SeekToCheckpoint(cps[1]);
  EXPECT_EQ(rm.machine().StateDigest(DigestScope::kFull), digest_of.at(cps[1].snapshot_id));
  rm.RunTo(cps[3].icount);
  EXPECT_EQ(rm.machine().StateDigest(DigestScope::kFull), digest_of.at(cps[3].snapshot_id));
  VerifiedReplay from_delta(reader, rc, std::nullopt, cps[2], OptionsFor(reader));
  EXPECT_NO_THROW(from_delta.Run(~uint64_t{0}));
  EXPECT_EQ(from_delta.replay().machine().icount(), end);
  std::remove(kernel.c_str());
  std::remove(log_path.c_str());
}

// ACPI power-off and reset end a recording with their own End reason; the replay must end the
// same way, and a log whose End says otherwise is a divergence at the end.
TEST(ReplayEnd, PowerOffAndResetReplayAsWhatTheyAre) {
  struct Case {
    const char* name;
    uint8_t port_low, value;
    MachineStop stop;
    log::EndReason reason, other;
  } cases[] = {
      {"power-off", 0x00, (5 << 2) | 0x20, MachineStop::kPowerOff, log::EndReason::kPowerOff,
       log::EndReason::kReset},
      {"reset", 0x02, 0x01, MachineStop::kReset, log::EndReason::kReset, log::EndReason::kGuestExit},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    // rdrand rax (an input, so the log holds one); mov dx, 0x06XX; mov al, v; out dx, al; hlt
    const std::string kernel = WriteFile(std::string(c.name) + ".elf",
                                         test::CodeGuest({0x48, 0x0f, 0xc7, 0xf0, 0x66, 0xba, c.port_low,
                                                          0x06, 0xb0, c.value, 0xee, 0xf4}));
    const std::string log_path = TempPath(std::string(c.name) + ".vmrr");
    const SessionConfig config = ConfigFor(kernel);
    ScriptedHost rec_host;
    const RecordSummary rs = Record(config, rec_host, log_path);
    ASSERT_EQ(rs.result.stop, c.stop);
    EXPECT_EQ(rs.result.icount, 4u);
    EXPECT_EQ(rs.end_reason, c.reason);
    for (const log::EndReason end : {c.reason, c.other}) {
      SCOPED_TRACE(log::EndReasonName(end));
      const std::string path = TempPath(std::string(c.name) + "_end.vmrr");
      RewriteLog(log_path, path, [](log::Record&) { return true; },
                 [&](log::End& e) {
                   EXPECT_EQ(e.reason, c.reason);
                   EXPECT_EQ(e.exit_code, 0);
                   e.reason = end;
                 });
      log::LogReader reader = log::LogReader::Open(path);
      ASSERT_TRUE(reader.complete());
      ASSERT_EQ(reader.header().minor, log::kFormatMinor);
      const SessionConfig rc = DecodeSessionConfig(reader.header().machine_config);
      VerifiedReplay replay(reader, rc, std::nullopt, reader.checkpoints().front(), OptionsFor(reader));
      if (end == c.reason) {
        EXPECT_NO_THROW(replay.Run(~uint64_t{0}));
      } else {
        try {
          replay.Run(~uint64_t{0});
          ADD_FAILURE() << "no divergence";
        } catch (const Divergence& d) {
          EXPECT_EQ(d.kind(), Divergence::Kind::kEnd) << d.what();
          EXPECT_EQ(d.icount(), 4u);
        }
      }
      std::remove(path.c_str());
    }
    std::remove(kernel.c_str());
    std::remove(log_path.c_str());
  }
}

// rngloop guest: 3000 RDRANDs, so that every frame of a small-frame log holds entropy:
//   0: mov ecx,3000        b9 b8 0b 00 00
//   5: rdrand rax          48 0f c7 f0
//   9: add rbx,rax         48 01 c3
//   c: dec ecx             ff c9
//   e: jne 5               75 f5
//  10: mov dx,0xf4         66 ba f4 00
//  14: xor eax,eax         31 c0
//  16: out dx,eax          ef
//  17: hlt                 f4
const std::vector<uint8_t> kRngLoopCode = {0xb9, 0xb8, 0x0b, 0x00, 0x00, 0x48, 0x0f, 0xc7,
                                           0xf0, 0x48, 0x01, 0xc3, 0xff, 0xc9, 0x75, 0xf5,
                                           0x66, 0xba, 0xf4, 0x00, 0x31, 0xc0, 0xef, 0xf4};

TEST(ReplayFailure, ACutLogReplaysToItsLastWholeFrameAndStopsConsistentlyPastIt) {
  const std::string kernel = WriteFile("rngloop.elf", test::CodeGuest(kRngLoopCode));
  const std::string log_path = TempPath("rngloop.vmrr");
  const SessionConfig config = ConfigFor(kernel);
  ScriptedHost rec_host;
  log::WriterOptions wo;
  wo.max_frame_bytes = 600;
  wo.max_frame_age_ns = 0;
  RecordSummary rs = Record(config, rec_host, log_path, wo);
  ASSERT_EQ(rs.result.stop, MachineStop::kGuestExit);
  const uint64_t end_icount = rs.result.icount;
  std::vector<uint64_t> entropy_icounts;
  const std::vector<uint8_t> bytes = ReadFile(log_path);
  std::vector<log::FrameInfo> frames;
  {
    log::LogReader reader = log::LogReader::Open(log_path);
    frames = reader.frames();
    for (const log::Record& r : AllRecords(reader))
      if (std::holds_alternative<log::Entropy>(r.body)) entropy_icounts.push_back(r.icount);
  }
  ASSERT_EQ(entropy_icounts.size(), 3000u);
  ASSERT_GT(frames.size(), 10u);

  // Cut inside a frame header, inside a payload, in frames early and late.
  std::vector<uint64_t> cuts;
  for (size_t f : {frames.size() / 3, frames.size() / 2, frames.size() - 3}) {
    cuts.push_back(frames[f].offset + 7);
    cuts.push_back((frames[f].offset + frames[f + 1].offset) / 2);
  }
  for (uint64_t cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    const std::string cut_path = WriteFile("cut.vmrr", std::vector<uint8_t>(bytes.begin(), bytes.begin() + cut));
    log::LogReader reader = log::LogReader::Open(cut_path);
    ASSERT_FALSE(reader.complete());
    ASSERT_NE(reader.tail().state, log::TailState::kDamaged);
    ASSERT_FALSE(reader.frames().empty());
    const uint64_t last = reader.frames().back().header.last_icount;

    ReplaySession session(cut_path, ReplayOptions{});
    ReplaySummary sum = session.Run();
    EXPECT_EQ(sum.outcome, ReplaySummary::Outcome::kCutLog)
        << (sum.divergence ? sum.divergence->message : std::string());
    EXPECT_EQ(sum.icount, last) << "exactly the last whole frame's last icount";

    {  // VerifiedReplay: the same end, with the machine stopped by its target, not an error.
      const SessionConfig rc = DecodeSessionConfig(reader.header().machine_config);
      VerifiedReplay replay(reader, rc, std::nullopt, reader.checkpoints().front(), OptionsFor(reader));
      EXPECT_EQ(replay.Run(~uint64_t{0}), VerifiedReplay::Stop::kLogEnd);
      EXPECT_EQ(replay.replay().machine().icount(), last);
      EXPECT_TRUE(replay.replay().machine().host_error().empty());
    }

    // Past the end: the first RDRAND whose Entropy record was cut off gets the neutral
    // answer, completes, and the machine stops right after it; RunTo throws LogExhausted.
    size_t whole = 0;
    for (const log::Record& r : AllRecords(reader)) whole += std::holds_alternative<log::Entropy>(r.body);
    ASSERT_LT(whole, entropy_icounts.size());
    const uint64_t first_missing = entropy_icounts[whole];
    EXPECT_GE(first_missing, last);
    const SessionConfig rc = DecodeSessionConfig(reader.header().machine_config);
    ReplayMachine rm(reader, rc, std::nullopt, reader.checkpoints().front(), OptionsFor(reader));
    try {
      rm.RunTo(~uint64_t{0});
      ADD_FAILURE() << "ran past the end of a cut log";
    } catch (const LogExhausted& e) {
      EXPECT_EQ(e.icount(), first_missing) << e.what();
    }
    Machine& m = rm.machine();
    EXPECT_EQ(m.icount(), first_missing + 1);
    EXPECT_EQ(m.cpu().state().rip, kBase + 0x9) << "right after the RDRAND";
    const uint64_t digest = m.StateDigest(DigestScope::kFull);
    EXPECT_EQ(m.Run().stop, MachineStop::kHostError);
    EXPECT_EQ(m.icount(), first_missing + 1);
    ScriptedHost host;
    ExpectResumesFromItsSnapshot(m, rc.machine, digest, end_icount, host);
    std::remove(cut_path.c_str());
  }
  std::remove(kernel.c_str());
  std::remove(log_path.c_str());
}

TEST(ReplayFailure, ATamperedInterruptStopsAtTheBoundaryAfterTheDelivery) {
  // test::TimerGuest(false): PIT IRQ0 every ~1 ms, ISR at 0x100080 prints 'T'; exits after 5.
  const std::string kernel = WriteFile("timer.elf", test::TimerGuest(false));
  const std::string log_path = TempPath("timer.vmrr");
  const SessionConfig config = ConfigFor(kernel);
  ASSERT_TRUE(config.irq_records);
  ScriptedHost rec_host;
  RecordSummary rs = Record(config, rec_host, log_path);
  ASSERT_EQ(rs.result.stop, MachineStop::kGuestExit);
  EXPECT_EQ(rec_host.console_out, "TTTTT");
  uint64_t irq_icount = 0, final_digest = 0;
  {
    log::LogReader reader = log::LogReader::Open(log_path);
    int irqs = 0;
    for (const log::Record& r : AllRecords(reader)) {
      if (const auto* i = std::get_if<log::IrqDelivered>(&r.body)) {
        if (irqs++ == 1) irq_icount = r.icount;  // the second delivery
        EXPECT_EQ(i->vector, 0x20);
      }
      if (const auto* e = std::get_if<log::End>(&r.body)) final_digest = e->final_digest;
    }
    ASSERT_EQ(irqs, 5);
  }
  const std::string tampered = TempPath("timer_tampered.vmrr");
  int seen = 0;
  RewriteLog(log_path, tampered, [&](log::Record& r) {
    if (auto* i = std::get_if<log::IrqDelivered>(&r.body); i && seen++ == 1) i->vector ^= 1;
    return true;
  });
  log::LogReader reader = log::LogReader::Open(tampered);
  const SessionConfig rc = DecodeSessionConfig(reader.header().machine_config);
  VerifiedReplay replay(reader, rc, std::nullopt, reader.checkpoints().front(), OptionsFor(reader));
  try {
    replay.Run(~uint64_t{0});
    ADD_FAILURE() << "no divergence";
  } catch (const Divergence& d) {
    EXPECT_EQ(d.kind(), Divergence::Kind::kInterrupt) << d.what();
    EXPECT_EQ(d.icount(), irq_icount) << d.what();
  }
  Machine& m = replay.replay().machine();
  EXPECT_EQ(m.icount(), irq_icount) << "a delivery retires nothing";
  EXPECT_EQ(m.cpu().state().rip, kBase + 0x80) << "stopped at the ISR's first instruction: delivery complete";
  EXPECT_EQ(replay.replay().env().output(log::OutputChannel::kConsole).total_bytes, 1u);
  const uint64_t digest = m.StateDigest(DigestScope::kFull);
  EXPECT_EQ(m.Run().stop, MachineStop::kHostError);
  EXPECT_EQ(m.icount(), irq_icount);
  // The machine is consistent: restored elsewhere, it finishes exactly as the recording did.
  std::vector<uint8_t> snap = m.SaveSnapshot();
  ScriptedHost host;
  Machine restored(rc.machine, host);
  restored.LoadSnapshot(snap);
  EXPECT_EQ(restored.StateDigest(DigestScope::kFull), digest);
  MachineResult fin = restored.Run();
  EXPECT_EQ(fin.stop, MachineStop::kGuestExit);
  EXPECT_EQ(fin.icount, rs.result.icount);
  EXPECT_EQ(host.console_out, "TTTT") << "the four interrupts after the stop";
  EXPECT_EQ(restored.StateDigest(DigestScope::kFull), final_digest);
  std::remove(tampered.c_str());
  std::remove(kernel.c_str());
  std::remove(log_path.c_str());
}

// ---- 3. RequestStop from another thread or a signal handler -----------------------------

// busy guest:
//   0: mov dx,0x3f8        66 ba f8 03
//   4: mov al,'G'          b0 47
//   6: out dx,al           ee              "started"
//   7: mov ecx,N           b9 NN NN NN NN
//   c: add rbx,rcx         48 01 cb
//   f: dec ecx             ff c9
//  11: jne c               75 f9
//  13: mov dx,0xf4         66 ba f4 00
//  17: xor eax,eax         31 c0
//  19: out dx,eax          ef
//  1a: hlt                 f4
std::vector<uint8_t> BusyGuest(uint32_t iterations) {
  std::vector<uint8_t> c = {0x66, 0xba, 0xf8, 0x03, 0xb0, 0x47, 0xee, 0xb9};
  for (int i = 0; i < 4; ++i) c.push_back(static_cast<uint8_t>(iterations >> (8 * i)));
  c.insert(c.end(), {0x48, 0x01, 0xcb, 0xff, 0xc9, 0x75, 0xf9, 0x66, 0xba, 0xf4, 0x00, 0x31, 0xc0, 0xef, 0xf4});
  return test::CodeGuest(c);
}

MachineConfig BusyConfig() {
  MachineConfig c;
  c.memory_bytes = 16ull << 20;
  // No input point during the run: only the asynchronous request can bring the CPU back.
  c.sample_interval = uint64_t{1} << 50;
  return c;
}

// About 24 M instructions (some 0.4 s at the software CPU's speed); the stop comes 5-20 ms in.
constexpr uint32_t kBusyIterations = 8'000'000;

struct Unstopped {
  uint64_t icount;
  uint64_t digest;
};
const Unstopped& UnstoppedRun() {
  static const Unstopped u = [] {
    ScriptedHost host;
    Machine m(BusyConfig(), host);
    const std::vector<uint8_t> image = BusyGuest(kBusyIterations);
    m.LoadKernelBytes(image, "busy");
    MachineResult r = m.Run();
    EXPECT_EQ(r.stop, MachineStop::kGuestExit);
    return Unstopped{r.icount, m.StateDigest(DigestScope::kFull)};
  }();
  return u;
}

// The stopped machine is at an instruction boundary: it equals a machine run to that icount,
// and it resumes to the unstopped run's final state.
void ExpectStoppedAtABoundaryAndResumable(Machine& m, const MachineResult& r) {
  ASSERT_EQ(r.stop, MachineStop::kExitRequested);
  const Unstopped& u = UnstoppedRun();
  EXPECT_GT(r.icount, 3u);
  EXPECT_LT(r.icount, u.icount);
  {
    ScriptedHost host;
    Machine ref(BusyConfig(), host);
    const std::vector<uint8_t> image = BusyGuest(kBusyIterations);
    ref.LoadKernelBytes(image, "busy");
    ASSERT_EQ(ref.Run(r.icount).icount, r.icount);
    EXPECT_EQ(ref.cpu().state().rip, m.cpu().state().rip);
    EXPECT_EQ(ref.StateDigest(DigestScope::kCpu), m.StateDigest(DigestScope::kCpu));
  }
  MachineResult fin = m.Run();
  EXPECT_EQ(fin.stop, MachineStop::kGuestExit);
  EXPECT_EQ(fin.icount, u.icount);
  EXPECT_EQ(m.StateDigest(DigestScope::kFull), u.digest);
}

using Clock = std::chrono::steady_clock;

TEST(RequestStop, FromAnotherThreadStopsABusyGuestPromptly) {
  UnstoppedRun();
  ScriptedHost host;
  std::atomic<bool> started{false};
  host.on_output = [&](uint64_t) { started.store(true); };
  Machine m(BusyConfig(), host);
  const std::vector<uint8_t> image = BusyGuest(kBusyIterations);
  m.LoadKernelBytes(image, "busy");
  Clock::time_point requested;
  std::thread stopper([&] {
    while (!started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    requested = Clock::now();
    m.RequestStop();
  });
  MachineResult r = m.Run();
  const Clock::time_point returned = Clock::now();
  stopper.join();
  EXPECT_LT(returned - requested, std::chrono::seconds(2));
  ExpectStoppedAtABoundaryAndResumable(m, r);
}

Machine* g_signal_machine = nullptr;
void StopFromSignal(int) { g_signal_machine->RequestStop(); }

class SignalHandler {
 public:
  explicit SignalHandler(int sig) : sig_(sig) {
    struct sigaction sa {};
    sa.sa_handler = StopFromSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(sig_, &sa, &old_);
  }
  ~SignalHandler() { sigaction(sig_, &old_, nullptr); }

 private:
  int sig_;
  struct sigaction old_ {};
};

TEST(RequestStop, FromATimerSignalHandlerStopsABusyGuestPromptly) {
  UnstoppedRun();
  ScriptedHost host;
  Machine m(BusyConfig(), host);
  const std::vector<uint8_t> image = BusyGuest(kBusyIterations);
  m.LoadKernelBytes(image, "busy");
  g_signal_machine = &m;
  SignalHandler handler(SIGALRM);
  Clock::time_point armed;
  host.on_output = [&](uint64_t) {  // the guest is running: SIGALRM in 20 ms
    itimerval t{};
    t.it_value.tv_usec = 20'000;
    armed = Clock::now();
    setitimer(ITIMER_REAL, &t, nullptr);
  };
  MachineResult r = m.Run();
  const Clock::time_point returned = Clock::now();
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  g_signal_machine = nullptr;
  EXPECT_LT(returned - armed, std::chrono::seconds(2));
  ExpectStoppedAtABoundaryAndResumable(m, r);
}

TEST(RequestStop, RaisedInsideADeviceAccessStopsAfterThatInstruction) {
  ScriptedHost host;
  Machine m(BusyConfig(), host);
  const std::vector<uint8_t> image = BusyGuest(kBusyIterations);
  m.LoadKernelBytes(image, "busy");
  g_signal_machine = &m;
  SignalHandler handler(SIGUSR1);
  host.on_output = [&](uint64_t) { raise(SIGUSR1); };  // during the OUT of 'G'
  MachineResult r = m.Run();
  g_signal_machine = nullptr;
  EXPECT_EQ(r.stop, MachineStop::kExitRequested);
  EXPECT_EQ(r.icount, 3u) << "right after the OUT";
  EXPECT_EQ(m.cpu().state().rip, kBase + 7);
  host.on_output = nullptr;
  MachineResult fin = m.Run();
  EXPECT_EQ(fin.stop, MachineStop::kGuestExit);
  EXPECT_EQ(m.StateDigest(DigestScope::kFull), UnstoppedRun().digest);
}

}  // namespace
}  // namespace vmrr
