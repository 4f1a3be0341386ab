// `vmrr replay LOG [--until ICOUNT] [--console-out FILE] [--disk IMAGE]`: re-executes a
// recording from its log alone, checking every digest; prints a summary; exit 0 only if
// everything replayed matched (a cut log matches up to its last whole frame: exit 0 with a
// note), 11 on a divergence (with where it began), and the log errors' statuses when the log
// is refused up front.
#include <cinttypes>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/machine_options.h"
#include "logformat/error.h"
#include "replayer/replay_session.h"

namespace vmrr::cli {
namespace {

struct ReplayCliOptions {
  std::string log;
  uint64_t until = ~uint64_t{0};
  std::string console_out;
  std::string disk;
  std::string disk_out;
  std::string test_flip;
  bool no_search = false;
};

bool ParseFlip(const std::string& s, BitFlip* f) {
  unsigned long long icount, gpa;
  unsigned bit;
  if (std::sscanf(s.c_str(), "%llu:%lli:%u", &icount, reinterpret_cast<long long*>(&gpa), &bit) != 3 || bit > 7)
    return false;
  f->icount = icount;
  f->gpa = gpa;
  f->bit = bit;
  return true;
}

int Replay(const ReplayCliOptions& o) {
  ReplayOptions ro;
  if (!o.disk.empty()) ro.disk_override = o.disk;
  ro.until = o.until;
  ro.search = !o.no_search;
  int disk_status = kExitOk;
  if (!o.disk_out.empty())
    ro.at_end = [&](Machine& m) { disk_status = WriteDiskOut(m, o.disk_out, "replay", kExitOk); };
  if (!o.test_flip.empty()) {
    BitFlip f;
    if (!ParseFlip(o.test_flip, &f)) {
      std::fprintf(stderr, "vmrr replay: --test-flip-bit wants ICOUNT:GPA:BIT\n");
      return kExitUsage;
    }
    ro.test_flip = f;
  }
  FILE* console = nullptr;
  if (!o.console_out.empty()) {
    console = std::fopen(o.console_out.c_str(), "wb");
    if (!console) {
      std::fprintf(stderr, "vmrr replay: cannot write '%s'\n", o.console_out.c_str());
      return kExitIo;
    }
    ro.console_out = [console](uint64_t, std::span<const uint8_t> b) { std::fwrite(b.data(), 1, b.size(), console); };
  }
  auto close_console = [&] {
    if (console) std::fclose(console);
    console = nullptr;
  };
  try {
    ReplaySession session(o.log, ro);
    ReplaySummary s = session.Run();
    close_console();
    const char* what = "";
    switch (s.outcome) {
      case ReplaySummary::Outcome::kMatched: what = "matched the whole log"; break;
      case ReplaySummary::Outcome::kUntil: what = "matched up to --until"; break;
      case ReplaySummary::Outcome::kCutLog: what = "matched up to the end of a cut log"; break;
      case ReplaySummary::Outcome::kDiverged: what = "DIVERGED"; break;
    }
    std::printf("replay: %s\n", what);
    std::printf("  instructions: %" PRIu64 "\n", s.icount);
    std::printf("  events: %" PRIu64 " (inputs %" PRIu64 ", interrupts %" PRIu64 ", outputs %" PRIu64 ")\n",
                s.inputs + s.interrupts + s.outputs, s.inputs, s.interrupts, s.outputs);
    std::printf("  digests checked: %" PRIu64 "\n", s.digests);
    const double secs = static_cast<double>(s.wall_ns) / 1e9;
    std::printf("  wall time: %.3f s (%.1f M instructions/s)\n", secs,
                secs > 0 ? static_cast<double>(s.icount) / secs / 1e6 : 0.0);
    if (s.recording_wall_ns && *s.recording_wall_ns > 0 && s.wall_ns > 0)
      std::printf("  speed vs recording: %.2fx (recording took %.3f s)\n",
                  static_cast<double>(*s.recording_wall_ns) / static_cast<double>(s.wall_ns),
                  static_cast<double>(*s.recording_wall_ns) / 1e9);
    else
      std::printf("  speed vs recording: unknown (the log has no recording time)\n");
    if (s.end)
      std::printf("  end: %s, exit code %d\n", log::EndReasonName(s.end->reason), s.end->exit_code);
    if (s.outcome == ReplaySummary::Outcome::kCutLog)
      std::fprintf(stderr,
                   "vmrr replay: note: the log is cut (%s); replayed up to its last whole frame "
                   "(icount %" PRIu64 ")\n",
                   s.tail_note.c_str(), s.log_last_icount);
    if (s.divergence) {
      std::printf("%s", s.divergence->Describe().c_str());
      std::fflush(stdout);
      std::fprintf(stderr, "vmrr replay: divergence; first divergent icount %" PRIu64 "\n",
                   s.divergence->first_divergent_icount());
      return kExitDivergence;
    }
    return disk_status;
  } catch (...) {
    close_console();
    return ReportReplayError("replay");
  }
}

}  // namespace

int ReportReplayError(const char* command) {
  try {
    throw;
  } catch (const log::LogError& e) {
    std::fprintf(stderr, "vmrr %s: %s\n", command, e.what());
    return ExitCodeFor(e.code());
  } catch (const ReplayRefused& e) {
    std::fprintf(stderr, "vmrr %s: %s\n", command, e.what());
    switch (e.code()) {
      case ReplayRefused::Code::kImageMismatch: return kExitImageMismatch;
      case ReplayRefused::Code::kNoCheckpoint: return kExitTruncated;
      case ReplayRefused::Code::kConfig: return kExitDamaged;
    }
    return kExitFailure;
  } catch (const MachineError& e) {
    std::fprintf(stderr, "vmrr %s: %s\n", command, e.what());
    return e.code() == MachineError::Code::kSnapshot ? kExitDamaged : kExitFailure;
  }
}

void AddReplayCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ReplayCliOptions>();
  CLI::App* cmd = app.add_subcommand("replay", "Re-execute a recording from its log and verify it.");
  cmd->add_option("LOG", o->log, "log written by vmrr record")->required();
  cmd->add_option("--until", o->until, "stop at this icount");
  cmd->add_option("--console-out", o->console_out, "write the guest's console output to FILE");
  cmd->add_option("--disk", o->disk, "disk image to use instead of the recorded path (verified by hash)");
  AddDiskOutOption(cmd, &o->disk_out);
  cmd->add_flag("--no-search", o->no_search, "on divergence, do not search for its first instruction");
  cmd->add_option("--test-flip-bit", o->test_flip, "test only: ICOUNT:GPA:BIT")->group("");
  cmd->callback([o, exit_code] { *exit_code = Replay(*o); });
}

}  // namespace vmrr::cli
