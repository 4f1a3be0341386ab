// Time-travel figures (analysis::TimeTravel), measured in one run on one recording: a guest
// recorded in host-clock mode through RecordingSession for --record-seconds of wall time
// (default 60: the issue asks for a recording that took at least a minute), then, on one
// TimeTravel over that log, the figures the time-travel issue sets targets for:
//   reverse stepi       StepBackward at random positions               p99 <= 50 ms
//   goto                GoTo to random icounts                         p99 <= 1 s
//   reverse-continue    ContinueBackward to the last write of a watched guest variable about
//                       half a second of plain replay back             <= 1 s
//   continue speed      ContinueForward with a breakpoint that is never hit, over the whole
//                       recording, in instructions/s, over a plain ReplayMachine::RunTo's
//                       over the same span                             >= 0.5
//   checkpoint memory   checkpoints().bytes_held() (the most seen) against the budget
// Every figure is printed with its target and PASS or MISS (verdicts on wall time; latencies
// also give this thread's CPU time, and each reverse-continue the plain replay of the same
// distance timed right after it, to tell load on a shared host from the engine's own cost).
// Exit status 0 unless the engine misbehaved (a wrong position, a digest that differs from a
// plain replay's); missed targets are reported, not failed. Positions the engine reports are
// checked as they come (a step lands one instruction back, a reverse-continue at the write the
// forward search found), and a few positions' whole-machine digests are compared with an
// independent plain replay started from the log's own nearest snapshot.
//
// The guest is tests/guests/stress_forever.elf: stress.c's preemptive threads (PIT at
// 10 kHz) in rounds that never end, the main thread writing `rounds_done` once per round
// (seconds apart): the watched variable, found in the ELF's symbol table. The breakpoint is
// on `rt_exit`, which a healthy stress_forever never reaches.
//
// Usage: bench_timetravel [--record-seconds=S] [--samples=N] [--seed=N]
//                         [--checkpoint-memory-mib=M] [--log=PATH [--replay-only]] [--guest=ELF]
//   --record-seconds  wall time to record (default 60; a few seconds for a quick run)
//   --samples         random positions for the stepi and goto figures (default 200 each)
//   --log             write the recording there and keep it (default: a temporary file,
//                     removed at the end); with --replay-only, use that recording as it is
#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "analysis/time_travel.h"
#include "hv-hooks/host/live_environment.h"
#include "hv-hooks/machine/machine.h"
#include "hv-hooks/session/session_config.h"
#include "logformat/log_reader.h"
#include "recorder/recording_session.h"
#include "replayer/replay_machine.h"

namespace vmrr {
namespace {

using analysis::TimeTravel;
using analysis::TravelStop;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// This thread's CPU time: what load from other processes on the host does not inflate.
double CpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Options {
  double record_seconds = 60;
  int samples = 200;
  uint64_t seed = 1;
  size_t checkpoint_memory = analysis::CheckpointStore::kDefaultBudgetBytes;
  std::string log;
  bool replay_only = false;
  std::string guest = std::string(VMRR_GUEST_DIR) + "/stress_forever.elf";
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "bench_timetravel: %s\nusage: bench_timetravel [--record-seconds=S] [--samples=N] [--seed=N] "
               "[--checkpoint-memory-mib=M] [--log=PATH [--replay-only]] [--guest=ELF]\n",
               why);
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> std::optional<std::string> {
      const std::string prefix = std::string(name) + "=";
      if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
      if (a == name) {
        if (i + 1 >= argc) Usage((std::string(name) + " needs a value").c_str());
        return std::string(argv[++i]);
      }
      return std::nullopt;
    };
    try {
      if (auto v = value("--record-seconds")) {
        o.record_seconds = std::stod(*v);
        if (!(o.record_seconds > 0)) Usage("--record-seconds must be > 0");
      } else if (auto v2 = value("--samples")) {
        o.samples = std::max(1, std::stoi(*v2));
      } else if (auto v3 = value("--seed")) {
        o.seed = std::stoull(*v3);
      } else if (auto v4 = value("--checkpoint-memory-mib")) {
        o.checkpoint_memory = static_cast<size_t>(std::stoull(*v4)) << 20;
      } else if (auto v5 = value("--log")) {
        o.log = *v5;
      } else if (auto v6 = value("--guest")) {
        o.guest = *v6;
      } else if (a == "--replay-only") {
        o.replay_only = true;
      } else {
        Usage(("unknown argument '" + a + "'").c_str());
      }
    } catch (const std::logic_error&) {
      Usage(("bad number in '" + a + "'").c_str());
    }
  }
  if (o.replay_only && o.log.empty()) Usage("--replay-only needs --log=PATH");
  return o;
}

// The symbols (functions and objects, local ones included) of an ELF64 file's .symtab.
std::map<std::string, uint64_t> ElfSymbols(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  const std::vector<char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::map<std::string, uint64_t> out;
  Elf64_Ehdr eh;
  if (b.size() < sizeof eh) return out;
  std::memcpy(&eh, b.data(), sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64) return out;
  auto section = [&](size_t i, Elf64_Shdr* sh) {
    const uint64_t at = eh.e_shoff + i * uint64_t{eh.e_shentsize};
    if (eh.e_shentsize < sizeof *sh || at + sizeof *sh > b.size()) return false;
    std::memcpy(sh, b.data() + at, sizeof *sh);
    return sh->sh_offset + sh->sh_size <= b.size();
  };
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr symtab, strtab;
    if (!section(i, &symtab) || symtab.sh_type != SHT_SYMTAB || !section(symtab.sh_link, &strtab)) continue;
    for (uint64_t at = symtab.sh_offset; at + sizeof(Elf64_Sym) <= symtab.sh_offset + symtab.sh_size;
         at += sizeof(Elf64_Sym)) {
      Elf64_Sym s;
      std::memcpy(&s, b.data() + at, sizeof s);
      if (s.st_name >= strtab.sh_size) continue;
      const char* name = b.data() + strtab.sh_offset + s.st_name;
      const size_t max = strtab.sh_size - s.st_name;
      out[std::string(name, strnlen(name, max))] = s.st_value;
    }
  }
  return out;
}

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
  size_t n = 0;
};

// Nearest-rank percentiles.
Percentiles Summarize(std::vector<double> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) {
    const size_t r = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, r == 0 ? 0 : r - 1)];
  };
  p.p50 = rank(0.50);
  p.p90 = rank(0.90);
  p.p99 = rank(0.99);
  p.max = v.back();
  for (double x : v) p.mean += x;
  p.mean /= static_cast<double>(v.size());
  return p;
}

const char* Verdict(bool pass) { return pass ? "PASS" : "MISS"; }

int g_misses = 0;
int g_errors = 0;

void Check(bool pass) {
  if (!pass) ++g_misses;
}

void Error(const std::string& what) {
  ++g_errors;
  std::printf("ERROR %s\n", what.c_str());
  std::fflush(stdout);
}

// Records `o.guest` in host-clock mode for o.record_seconds of wall time.
void Record(const Options& o, const std::string& log_path) {
  SessionConfig config;
  config.machine.clock_mode = VirtualClock::Mode::kHost;
  config.kernel_path = o.guest;
  const int in = ::open("/dev/null", O_RDONLY), out = ::open("/dev/null", O_WRONLY);
  if (in < 0 || out < 0) throw std::runtime_error("cannot open /dev/null");
  RecordSummary s;
  {
    LiveEnvironmentOptions lo;
    lo.console_in_fd = in;    // no input: the guest reads none
    lo.console_out_fd = out;  // the guest's round lines
    LiveEnvironment live(lo);
    RecordingSession session(config, live, log_path, "bench_timetravel");
    const uint64_t limit_ns = static_cast<uint64_t>(o.record_seconds * 1e9);
    s = session.Run(0, [&](const RecordProgress& p) {
      if (p.wall_ns >= limit_ns) session.RequestStop();
    });
  }
  ::close(in);
  ::close(out);
  const double wall = static_cast<double>(s.wall_ns) * 1e-9;
  std::printf(
      "recording: guest=%s clock=host wall_s=%.1f instructions=%" PRIu64 " end=%s log_bytes=%" PRIu64
      " log_checkpoints=%" PRIu64 " record_instr_per_s=%.3gM\n",
      o.guest.c_str(), wall, s.result.icount, log::EndReasonName(s.end_reason), s.log_bytes, s.checkpoints,
      wall > 0 ? static_cast<double>(s.result.icount) / wall / 1e6 : 0.0);
  if (s.end_reason != log::EndReason::kStopped)
    std::printf("# note: the guest ended before --record-seconds (%s): the figures cover a shorter recording\n",
                log::EndReasonName(s.end_reason));
  std::fflush(stdout);
}

ReplayMachine MakePlain(const log::LogReader& reader, const SessionConfig& config, const log::CheckpointInfo& start) {
  ReplayingEnvironmentOptions eo;
  eo.log_complete = reader.complete();
  return ReplayMachine(reader, config, std::nullopt, start, eo);
}

// The whole-machine digest at `icount` from an independent plain replay, started from the
// log's own nearest snapshot at or before it.
const log::CheckpointInfo& NearestLogCheckpoint(const log::LogReader& reader, uint64_t icount) {
  const log::CheckpointInfo* start = &reader.checkpoints().front();
  for (const log::CheckpointInfo& c : reader.checkpoints())
    if (c.icount <= icount && c.icount >= start->icount) start = &c;
  return *start;
}

uint64_t ReferenceDigest(const log::LogReader& reader, const SessionConfig& config, uint64_t icount) {
  ReplayMachine rm = MakePlain(reader, config, NearestLogCheckpoint(reader, icount));
  const MachineResult r = rm.RunTo(icount);
  if (r.icount != icount) throw std::runtime_error("reference replay stopped at " + std::to_string(r.icount));
  return rm.machine().StateDigest(DigestScope::kFull);
}

int Main(const Options& o) {
  std::string log_path = o.log;
  bool remove_log = false;
  if (log_path.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    log_path = std::string(tmp && *tmp ? tmp : "/tmp") + "/vmrr-bench-timetravel-" + std::to_string(getpid()) + ".vlog";
    remove_log = true;
  }
  struct Remove {
    const std::string& path;
    bool on;
    ~Remove() {
      if (on) std::remove(path.c_str());
    }
  } remove{log_path, remove_log};

  const std::map<std::string, uint64_t> syms = ElfSymbols(o.guest);
  if (!o.replay_only) Record(o, log_path);
  const log::LogReader reader = log::LogReader::Open(log_path);
  const SessionConfig config = DecodeSessionConfig(reader.header().machine_config);

  analysis::TimeTravelOptions tto;
  tto.checkpoint_memory = o.checkpoint_memory;
  TimeTravel tt(reader, config, std::nullopt, tto);
  const uint64_t begin = tt.begin_icount(), end = tt.end_icount();
  std::printf("log: %s bytes=%" PRIu64 " complete=%d frames=%zu log_snapshots=%zu begin=%" PRIu64 " end=%" PRIu64
              " checkpoint_interval=%" PRIu64 " slice=%" PRIu64 "\n",
              log_path.c_str(), reader.file_size(), reader.complete() ? 1 : 0, reader.frames().size(),
              reader.checkpoints().size(), begin, end, tto.checkpoint_interval, tto.slice);
  if (end <= begin + 1) {
    Error("the recording is empty");
    return 1;
  }
  const uint64_t span = end - begin;
  size_t peak_bytes = tt.checkpoints().bytes_held();
  auto note_peak = [&] { peak_bytes = std::max(peak_bytes, tt.checkpoints().bytes_held()); };

  // 1-2. Plain replay speed, and continue-to-breakpoint speed: ContinueForward with a
  // breakpoint on code that is never executed (`rt_exit`), over the same span (the whole
  // recording; the engine's first pass, so checkpoints are taken on the way). The span is cut
  // into chunks run alternately by a plain ReplayMachine (RunTo) and by the TimeTravel (its
  // ContinueForward interrupted at the chunk's end), so that load from other processes on the
  // host hits both alike; the speeds are totals over all chunks.
  uint64_t never = 1;
  if (auto it = syms.find("rt_exit"); it != syms.end()) never = it->second;
  double plain_rate = 0;
  {
    constexpr int kChunks = 16;
    ReplayMachine rm = MakePlain(reader, config, reader.checkpoints().front());
    tt.AddBreakpoint(never);
    double plain_s = 0, plain_cpu = 0, tt_s = 0, tt_cpu = 0;
    uint64_t plain_instr = 0, tt_instr = 0;
    std::vector<double> chunk_ratios;
    TravelStop last;
    for (int c = 1; c <= kChunks; ++c) {
      const uint64_t to = c == kChunks ? end : begin + span / kChunks * static_cast<uint64_t>(c);
      const uint64_t p0 = rm.machine().icount();
      double t0 = Now(), c0 = CpuNow();
      const MachineResult r = rm.RunTo(to);
      const double pdt = Now() - t0;
      plain_s += pdt;
      plain_cpu += CpuNow() - c0;
      plain_instr += r.icount - p0;
      if (r.icount != to) Error("plain replay stopped (" + std::string(MachineStopName(r.stop)) + ") at " +
                                std::to_string(r.icount));
      const uint64_t q0 = tt.icount();
      t0 = Now(), c0 = CpuNow();
      // The last chunk runs to the end of the recording (kEnd), uninterrupted.
      last = c == kChunks ? tt.ContinueForward() : tt.ContinueForward([&] { return tt.icount() >= to; });
      const double qdt = Now() - t0;
      tt_s += qdt;
      tt_cpu += CpuNow() - c0;
      tt_instr += tt.icount() - q0;
      note_peak();
      chunk_ratios.push_back((static_cast<double>(tt.icount() - q0) / qdt) /
                             (static_cast<double>(r.icount - p0) / pdt));
      if (last.kind != TravelStop::Kind::kInterrupted && last.kind != TravelStop::Kind::kEnd) break;
    }
    tt.RemoveBreakpoint(never);
    plain_rate = static_cast<double>(plain_instr) / plain_s;
    const double rate = static_cast<double>(tt_instr) / tt_s;
    const double ratio = rate / plain_rate;
    const double cpu_ratio = (static_cast<double>(tt_instr) / tt_cpu) / (static_cast<double>(plain_instr) / plain_cpu);
    std::printf("plain replay: ReplayMachine::RunTo over [%" PRIu64 ", %" PRIu64 "] in %d chunks: seconds=%.3f "
                "cpu_seconds=%.3f instr_per_s=%.4gM\n",
                begin, end, kChunks, plain_s, plain_cpu, plain_rate / 1e6);
    std::printf("continue: ContinueForward, breakpoint at 0x%" PRIx64 " never hit, over the same span in the same "
                "chunks (alternating with the plain replay): stop=%s at %" PRIu64 " seconds=%.3f cpu_seconds=%.3f "
                "instr_per_s=%.4gM chunk_ratio_min=%.3f chunk_ratio_median=%.3f cpu_time_ratio=%.3f "
                "continue/plain=%.3f target>=0.5 %s\n",
                never, analysis::TravelStopName(last.kind), tt.icount(), tt_s, tt_cpu, rate / 1e6,
                *std::min_element(chunk_ratios.begin(), chunk_ratios.end()), Summarize(chunk_ratios).p50, cpu_ratio,
                ratio, Verdict(ratio >= 0.5));
    Check(ratio >= 0.5);
    if (last.kind != TravelStop::Kind::kEnd || tt.icount() != end)
      Error(std::string("ContinueForward stopped (") + analysis::TravelStopName(last.kind) + ") at " +
            std::to_string(tt.icount()) + ", not at the end");
    const analysis::CheckpointStore& cs = tt.checkpoints();
    std::printf("checkpoints after the first pass: count=%zu bytes_held=%zu (%.1f MiB, %.1f KiB each) budget=%zu "
                "(%.0f MiB)\n",
                cs.size(), cs.bytes_held(), static_cast<double>(cs.bytes_held()) / (1 << 20),
                static_cast<double>(cs.bytes_held()) / 1024.0 / static_cast<double>(std::max<size_t>(cs.size(), 1)),
                cs.budget_bytes(), static_cast<double>(cs.budget_bytes()) / (1 << 20));
  }
  std::fflush(stdout);

  std::mt19937_64 rng(o.seed);
  auto random_position = [&] { return begin + 1 + rng() % span; };  // in (begin, end]
  std::vector<std::pair<uint64_t, uint64_t>> to_verify;               // (icount, digest)

  // 3. GoTo random icounts.
  {
    std::vector<double> ms, cpu_ms;  // wall and this thread's CPU time
    uint64_t replayed = 0;
    for (int k = 0; k < o.samples; ++k) {
      const uint64_t at = random_position();
      const uint64_t r0 = tt.instructions_replayed();
      const double t0 = Now(), c0 = CpuNow();
      const TravelStop s = tt.GoTo(at);
      ms.push_back((Now() - t0) * 1e3);
      cpu_ms.push_back((CpuNow() - c0) * 1e3);
      replayed += tt.instructions_replayed() - r0;
      note_peak();
      if (s.icount != at || tt.icount() != at)
        Error("GoTo(" + std::to_string(at) + ") landed at " + std::to_string(tt.icount()));
      if (k < 4) to_verify.emplace_back(at, tt.machine().StateDigest(DigestScope::kFull));
    }
    const Percentiles p = Summarize(ms);
    std::printf("goto: GoTo random icount, samples=%zu p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f "
                "mean_ms=%.2f (cpu time: p50_ms=%.2f p99_ms=%.2f) replayed_per_goto=%.3gM target_p99_ms<=1000 %s\n",
                p.n, p.p50, p.p90, p.p99, p.max, p.mean, Summarize(cpu_ms).p50, Summarize(cpu_ms).p99,
                static_cast<double>(replayed) / p.n / 1e6, Verdict(p.p99 <= 1000));
    Check(p.p99 <= 1000);
  }
  std::fflush(stdout);

  // 3b. What a restore alone costs: GoTo to the icount of a checkpoint the store holds (from a
  // random position elsewhere), nothing to replay. Informative (no target).
  {
    std::vector<double> ms;
    std::vector<uint64_t> held = tt.checkpoints().icounts();
    uint64_t replayed = 0;
    const int n = std::max(1, o.samples / 4);
    for (int k = 0; k < n && !held.empty(); ++k) {
      tt.GoTo(random_position());
      held = tt.checkpoints().icounts();
      const uint64_t at = held[rng() % held.size()];
      const uint64_t r0 = tt.instructions_replayed();
      const double t0 = Now();
      tt.GoTo(at);
      ms.push_back((Now() - t0) * 1e3);
      replayed += tt.instructions_replayed() - r0;
    }
    const Percentiles p = Summarize(ms);
    std::printf("restore: GoTo a held checkpoint's icount (restore only), samples=%zu p50_ms=%.2f p99_ms=%.2f "
                "max_ms=%.2f replayed=%" PRIu64 " (info)\n",
                p.n, p.p50, p.p99, p.max, replayed);
  }
  std::fflush(stdout);

  // 4. Reverse stepi at random positions (each reached by an untimed GoTo first).
  {
    std::vector<double> ms, cpu_ms;  // wall and this thread's CPU time
    uint64_t replayed = 0;
    for (int k = 0; k < o.samples; ++k) {
      const uint64_t at = random_position();
      tt.GoTo(at);
      const uint64_t r0 = tt.instructions_replayed();
      const double t0 = Now(), c0 = CpuNow();
      const TravelStop s = tt.StepBackward();
      ms.push_back((Now() - t0) * 1e3);
      cpu_ms.push_back((CpuNow() - c0) * 1e3);
      replayed += tt.instructions_replayed() - r0;
      note_peak();
      if (s.kind != TravelStop::Kind::kTarget || s.icount != at - 1 || tt.icount() != at - 1)
        Error("StepBackward from " + std::to_string(at) + " gave " + analysis::TravelStopName(s.kind) + " at " +
              std::to_string(tt.icount()));
      if (k < 4) to_verify.emplace_back(at - 1, tt.machine().StateDigest(DigestScope::kFull));
    }
    const Percentiles p = Summarize(ms);
    std::printf("reverse-stepi: StepBackward at random positions, samples=%zu p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f "
                "max_ms=%.2f mean_ms=%.2f (cpu time: p50_ms=%.2f p99_ms=%.2f) replayed_per_step=%.3gM "
                "target_p99_ms<=50 %s\n",
                p.n, p.p50, p.p90, p.p99, p.max, p.mean, Summarize(cpu_ms).p50, Summarize(cpu_ms).p99,
                static_cast<double>(replayed) / p.n / 1e6, Verdict(p.p99 <= 50));
    Check(p.p99 <= 50);
  }
  std::fflush(stdout);

  // 5. Reverse-continue to a watchpoint about half a second of plain replay back. The watched
  // variable's writes are found going forwards (ContinueForward with the watchpoint, from the
  // middle of the recording); for two consecutive writes w1 < w2 more than half a second
  // apart, the position is w1 + half a second, where the last write before it is w1.
  {
    const auto it = syms.find("rounds_done");
    if (it == syms.end()) {
      std::printf("reverse-continue: no 'rounds_done' symbol in %s: skipped MISS\n", o.guest.c_str());
      Check(false);
    } else {
      const uint64_t addr = it->second;
      const uint64_t back = static_cast<uint64_t>(plain_rate * 0.5);  // half a second of replay
      tt.SetWatchpoints({Watchpoint{addr, 8, kWatchWrite}});
      std::vector<WatchHit> writes;
      // The writes after `from`, up to 4; returns the search's seconds.
      auto find_writes = [&](uint64_t from, uint64_t* searched, uint64_t* replayed) {
        writes.clear();
        tt.GoTo(from);
        const uint64_t r0 = tt.instructions_replayed();
        const double t0 = Now();
        for (int k = 0; k < 4; ++k) {
          const TravelStop s = tt.ContinueForward();
          if (s.kind != TravelStop::Kind::kWatchpoint) break;
          writes.push_back(s.watch);
        }
        *searched = tt.icount() - from;
        *replayed = tt.instructions_replayed() - r0;
        return Now() - t0;
      };
      uint64_t from = begin + span / 2, searched = 0, replayed = 0;
      double forward_s = find_writes(from, &searched, &replayed);
      if (writes.size() < 2) {  // a short recording: from the beginning (the first write clears .bss)
        from = begin;
        forward_s = find_writes(from, &searched, &replayed);
      }
      note_peak();
      std::printf("watch: 8 bytes at 0x%" PRIx64 " (rounds_done), %zu writes found going forwards from %" PRIu64
                  ": ContinueForward %.3f s for %.4gM instructions (%.4gM instr/s armed; replayed %.4gM)\n",
                  addr, writes.size(), from, forward_s, static_cast<double>(searched) / 1e6,
                  static_cast<double>(searched) / forward_s / 1e6, static_cast<double>(replayed) / 1e6);
      std::vector<double> secs;
      for (size_t k = 0; k + 1 < writes.size(); ++k) {
        const uint64_t w1 = writes[k].icount, w2 = writes[k + 1].icount;
        if (w2 - w1 <= back + 1) continue;
        const uint64_t at = w1 + back;
        tt.GoTo(at);
        const uint64_t r1 = tt.instructions_replayed();
        const double t1 = Now();
        const TravelStop s = tt.ContinueBackward();
        const double dt = Now() - t1;
        note_peak();
        secs.push_back(dt);
        // The same distance replayed plainly right now (a ReplayMachine from the log's nearest
        // snapshot, untimed, to w1; then timed from w1 to the position), for a ratio that load
        // on the host does not move.
        ReplayMachine rm = MakePlain(reader, config, NearestLogCheckpoint(reader, w1));
        rm.RunTo(w1);
        const double t2 = Now();
        rm.RunTo(at);
        const double plain_dt = Now() - t2;
        std::printf("reverse-continue: from icount %" PRIu64 " to the write at %" PRIu64 " (%.4gM instructions, "
                    "%.3f s of plain replay back at the first pass's speed): stop=%s at %" PRIu64 " seconds=%.3f "
                    "replayed=%.4gM; plain replay of that distance now %.3f s (reverse/plain %.2f)\n",
                    at, w1, static_cast<double>(back) / 1e6, static_cast<double>(back) / plain_rate,
                    analysis::TravelStopName(s.kind), s.icount, dt,
                    static_cast<double>(tt.instructions_replayed() - r1) / 1e6, plain_dt, dt / plain_dt);
        if (s.kind != TravelStop::Kind::kWatchpoint || s.icount != w1 || tt.icount() != w1 ||
            s.watch.rip != writes[k].rip)
          Error("ContinueBackward from " + std::to_string(at) + " gave " + analysis::TravelStopName(s.kind) +
                " at " + std::to_string(s.icount) + ", the write is at " + std::to_string(w1));
      }
      tt.SetWatchpoints({});
      if (secs.empty()) {
        std::printf("reverse-continue: no two writes of rounds_done more than %.4gM instructions apart in the "
                    "recording (record longer): skipped MISS\n",
                    static_cast<double>(back) / 1e6);
        Check(false);
      } else {
        const Percentiles p = Summarize(secs);
        std::printf("reverse-continue: ContinueBackward to a watchpoint ~0.5 s of replay back, runs=%zu "
                    "median_s=%.3f max_s=%.3f target_max_s<=1 %s\n",
                    p.n, p.p50, p.max, Verdict(p.max <= 1.0));
        Check(p.max <= 1.0);
      }
    }
  }
  std::fflush(stdout);

  // 6. Checkpoint memory against its bound. The store may exceed its budget by one
  // checkpoint (it never evicts the newest one); the target allows that much.
  {
    const analysis::CheckpointStore& cs = tt.checkpoints();
    const size_t one = cs.bytes_held() / std::max<size_t>(cs.size(), 1);
    const bool pass = peak_bytes <= cs.budget_bytes() + one;
    std::printf("checkpoints: count=%zu bytes_held=%zu (%.1f MiB) peak_bytes_held=%zu (%.1f MiB) budget=%zu "
                "(%.0f MiB) used/budget=%.3f target: peak<=budget(+1 checkpoint) %s\n",
                cs.size(), cs.bytes_held(), static_cast<double>(cs.bytes_held()) / (1 << 20), peak_bytes,
                static_cast<double>(peak_bytes) / (1 << 20), cs.budget_bytes(),
                static_cast<double>(cs.budget_bytes()) / (1 << 20),
                static_cast<double>(peak_bytes) / static_cast<double>(cs.budget_bytes()), Verdict(pass));
    Check(pass);
  }

  // 7. Positions checked against an independent plain replay.
  {
    int bad = 0;
    for (const auto& [icount, digest] : to_verify) {
      if (ReferenceDigest(reader, config, icount) != digest) {
        ++bad;
        Error("the whole-machine digest at icount " + std::to_string(icount) + " differs from a plain replay's");
      }
    }
    std::printf("verify: %zu positions' whole-machine digests against a plain replay from the log's snapshots: "
                "%zu match\n",
                to_verify.size(), to_verify.size() - static_cast<size_t>(bad));
  }
  std::printf("summary: %s (%d target(s) missed, %d error(s)); engine instructions replayed in all: %.4gG\n",
              g_misses == 0 && g_errors == 0 ? "all targets met" : "NOT all targets met", g_misses, g_errors,
              static_cast<double>(tt.instructions_replayed()) / 1e9);
  return g_errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace vmrr

int main(int argc, char** argv) {
  const vmrr::Options o = vmrr::ParseArgs(argc, argv);
  try {
    return vmrr::Main(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_timetravel: %s\n", e.what());
    return 1;
  }
}
