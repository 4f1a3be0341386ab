// `vmrr record -o LOG [machine options] KERNEL`: runs the guest exactly as `vmrr run` does
// (console on this terminal, same exit status) while writing the log; a progress line on
// stderr when it is a terminal.
#include <signal.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/console_escape.h"
#include "cli/exit_codes.h"
#include "cli/machine_options.h"
#include "hv-hooks/host/live_environment.h"
#include "logformat/error.h"
#include "logformat/log_writer.h"
#include "recorder/recording_session.h"

namespace vmrr::cli {
namespace {

struct RecordOptions {
  MachineOptions machine;
  std::string output;
  uint64_t frame_age_ms = log::kDefaultMaxFrameAgeNs / 1'000'000;
  uint64_t digest_interval = 1'000'000;
  uint64_t checkpoint_interval = 50'000'000;
  uint64_t machine_digest_interval = 0;  // 0: the checkpoint interval
  bool no_irq_records = false;
};

RecordingSession* g_session = nullptr;

void OnSignal(int) {
  if (g_session) g_session->RequestStop();
}

std::string Human(double v, const char* unit) {
  char b[48];
  if (v >= 1e9) std::snprintf(b, sizeof b, "%.2fG%s", v / 1e9, unit);
  else if (v >= 1e6) std::snprintf(b, sizeof b, "%.2fM%s", v / 1e6, unit);
  else if (v >= 1e3) std::snprintf(b, sizeof b, "%.1fk%s", v / 1e3, unit);
  else std::snprintf(b, sizeof b, "%.0f%s", v, unit);
  return b;
}

int Record(RecordOptions o) {
  SessionConfig config;
  if (o.machine.disk_write_through) {
    std::fprintf(stderr,
                 "vmrr record: --disk-write-through would change the disk image the log is verified "
                 "against; record with the overlay (the default)\n");
    return kExitUsage;
  }
  std::string net_error;
  if (!NormalizeNetOption(&o.machine.net, &net_error)) {
    std::fprintf(stderr, "vmrr record: %s\n", net_error.c_str());
    return kExitUsage;
  }
  try {
    config.machine = ToMachineConfig(o.machine);
  } catch (const CLI::ValidationError& e) {
    std::fprintf(stderr, "vmrr record: %s\n", e.what());
    return kExitUsage;
  }
  config.kernel_path = o.machine.kernel;
  config.initrd_path = o.machine.initrd;
  config.cmdline = o.machine.append;
  config.digest_interval = o.digest_interval;
  config.checkpoint_interval = o.checkpoint_interval;
  config.irq_records = !o.no_irq_records;
  config.machine_digest_interval = o.machine_digest_interval ? o.machine_digest_interval : o.checkpoint_interval;
  if (config.checkpoint_interval % config.digest_interval != 0 ||
      config.machine_digest_interval % config.digest_interval != 0) {
    std::fprintf(stderr,
                 "vmrr record: --checkpoint-interval and --machine-digest-interval must be multiples of "
                 "--digest-interval\n");
    return kExitUsage;
  }
  const bool tty = isatty(2);
  bool started = false;  // the log holds a starting snapshot: keep it whatever happens next
  const bool existed = ::access(o.output.c_str(), F_OK) == 0;
  auto fail = [&](int status, const char* what) {
    g_session = nullptr;
    if (!started && !existed) ::unlink(o.output.c_str());  // a log we began but never filled
    std::fprintf(stderr, "vmrr record: %s\n", what);
    return status;
  };
  try {
    LiveEnvironment live(ToLiveOptions(o.machine));
    // Frames close at least every --frame-age ms (also while the guest idles), so a recorder
    // killed at any moment loses at most the last frame. Shorter ages cost 48 header bytes
    // per frame: an idle timer guest's event stream is ~2.4 KB/s at 100 ms, ~2 KB/s at 250.
    log::WriterOptions wo;
    wo.max_frame_age_ns = o.frame_age_ms * 1'000'000;
    // Ctrl-A x on a terminal stops the recording as it stops `vmrr run`. The escape is filtered
    // below the recorder, so it is not logged, and the stop is requested from the progress
    // callback (between run chunks and idle slices), never inside an input point.
    EscapeEnvironment escape(live, isatty(0) == 1);
    RecordingSession session(config, escape, o.output, VMRR_VERSION, wo);
    g_session = &session;
    started = true;
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    uint64_t last_print = 0;
    auto progress = [&](const RecordProgress& p) {
      if (escape.quit_requested()) session.RequestStop();
      if (!tty || p.wall_ns - last_print < 250'000'000) return;
      last_print = p.wall_ns;
      double secs = static_cast<double>(p.wall_ns) / 1e9;
      std::fprintf(stderr, "\r[vmrr record] %s instr  guest %.3fs  log %s  %s/s   ",
                   Human(static_cast<double>(p.icount), "").c_str(), static_cast<double>(p.guest_ns) / 1e9,
                   Human(static_cast<double>(p.log_bytes), "B").c_str(),
                   Human(secs > 0 ? static_cast<double>(p.icount) / secs : 0, "instr").c_str());
    };
    RecordSummary s = session.Run(o.machine.max_instructions, progress);
    g_session = nullptr;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (tty) {
      std::fprintf(stderr, "\r[vmrr record] %" PRIu64 " instructions, %s, log %s, %" PRIu64
                           " records, %" PRIu64 " checkpoints, %.2fs         \n",
                   s.result.icount, log::EndReasonName(s.end_reason),
                   Human(static_cast<double>(s.log_bytes), "B").c_str(), s.records, s.checkpoints,
                   static_cast<double>(s.wall_ns) / 1e9);
    }
    return ExitStatusFor(s.result);
  } catch (const log::LogError& e) {
    return fail(ExitCodeFor(e.code()), e.what());
  } catch (const MachineError& e) {
    return fail(ExitStatusFor(e), e.what());
  } catch (const EnvironmentError& e) {
    return fail(kExitIo, e.what());
  } catch (const std::runtime_error& e) {
    return fail(kExitIo, e.what());
  }
}

}  // namespace

void AddRecordCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<RecordOptions>();
  CLI::App* cmd = app.add_subcommand(
      "record", "Run a guest like `vmrr run` while recording every input into a log.");
  cmd->add_option("-o,--output", o->output, "log file to write")->required();
  AddMachineOptions(cmd, &o->machine);
  cmd->add_option("--digest-interval", o->digest_interval,
                  "instructions between CPU state digests (default 1000000)")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  cmd->add_option("--checkpoint-interval", o->checkpoint_interval,
                  "instructions between full snapshots (default 50000000; a multiple of the digest interval)")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  cmd->add_option("--machine-digest-interval", o->machine_digest_interval,
                  "instructions between whole-machine digests (default: the checkpoint interval; "
                  "dense ones let a divergence search name a bad input)")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  cmd->add_flag("--no-irq-records", o->no_irq_records, "do not log interrupt deliveries");
  cmd->add_option("--frame-age", o->frame_age_ms,
                  "close a log frame at the latest this many ms after its first record "
                  "(default " + std::to_string(o->frame_age_ms) +
                      "): a recorder killed at any moment loses at most the last frame; "
                      "each frame costs 48 header bytes")
      ->check(CLI::Range(uint64_t{1}, uint64_t{60'000}));
  cmd->callback([o, exit_code] { *exit_code = Record(*o); });
}

}  // namespace vmrr::cli
