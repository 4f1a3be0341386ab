// `vmrr record -o LOG [machine options] KERNEL`: runs the guest exactly as `vmrr run` does
// (console on this terminal, same exit status) while writing the log; a progress line on
// stderr when it is a terminal.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/console_escape.h"
#include "cli/control_socket.h"
#include "cli/exit_codes.h"
#include "cli/machine_options.h"
#include "hv-hooks/host/live_environment.h"
#include "logformat/error.h"
#include "logformat/log_writer.h"
#include "recorder/output_commit.h"
#include "recorder/primary_link.h"
#include "recorder/recording_session.h"
#include "replication/key_file.h"
#include "replication/transport.h"

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
  // Fault tolerance (issue 14): stream the log to a shadow, hold console output until it
  // has the log that produces it.
  std::string replicate;
  std::string key_file;
  std::string console_out;
  std::string output_buffer = "1M";
  uint64_t shadow_timeout_ms = 1000;
  std::string on_shadow_loss = "hold";
  std::string stats;
  std::string control;
  uint64_t relocate_catch_up_ms = 200;
};

RecordingSession* g_session = nullptr;
// Planned relocation: the primary runs on in chunks of kRelocateChunk instructions, closing a
// frame at each, until the shadow's replay (reported as it catches up) is within
// kRelocateLagInstructions of it (~1-2 ms of replay), or --relocate-catch-up ms have passed (a
// shadow that cannot gain on a busy primary must not delay the relocation: it replays the rest
// after the stop, as downtime), then stops.
// While the shadow is further behind, the primary throttles its guest (as QEMU's auto-converge
// throttles a migrating vCPU): after each chunk it waits up to kRelocateThrottleNs for the
// shadow, so that a shadow as fast as the primary gains on it instead of trailing it by its
// start-up delay for ever. The guest runs slower for at most --relocate-catch-up ms; it
// never stops for more than a throttle step there.
constexpr uint64_t kRelocateChunk = 100'000;
constexpr uint64_t kRelocateLagInstructions = 400'000;
constexpr int64_t kRelocateThrottleNs = 2'000'000;

int64_t MonotonicNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
ConsoleCommitter* g_committer = nullptr;

// A stop asked for before the session exists (SIGINT while the kernel loads) is kept and
// applied once it does: the handler sets the flag before it looks at g_session, the main
// thread sets g_session before it looks at the flag, so one of the two always asks.
std::atomic<bool> g_stop_pending{false};

void OnSignal(int) {
  g_stop_pending.store(true);
  if (g_session) g_session->RequestStop();
  if (g_committer) g_committer->Interrupt();
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
  const bool replicate = !o.replicate.empty();
  if (!replicate && (!o.key_file.empty() || !o.console_out.empty() || o.on_shadow_loss != "hold" ||
                     !o.stats.empty() || !o.control.empty())) {
    std::fprintf(stderr,
                 "vmrr record: --key-file, --console-out, --on-shadow-loss, --stats and --control go with --replicate\n");
    return kExitUsage;
  }
  if (!o.control.empty()) {
    std::string path, error;
    if (!ParseControlUrl(o.control, &path, &error)) {
      std::fprintf(stderr, "vmrr record: --control: %s\n", error.c_str());
      return kExitUsage;
    }
  }
  ShadowLossPolicy on_loss = ShadowLossPolicy::kHold;
  int continue_after_ms = 0;
  {
    std::string error;
    if (!ParseShadowLossPolicy(o.on_shadow_loss, &on_loss, &continue_after_ms, &error)) {
      std::fprintf(stderr, "vmrr record: --on-shadow-loss: %s\n", error.c_str());
      return kExitUsage;
    }
  }
  if (replicate) {
    std::string error;
    if (!link::ValidLinkUrl(o.replicate, &error)) {
      std::fprintf(stderr, "vmrr record: --replicate %s: %s\n", o.replicate.c_str(), error.c_str());
      return kExitUsage;
    }
    if (o.key_file.empty()) {
      std::fprintf(stderr, "vmrr record: --replicate needs --key-file (the key the shadow has)\n");
      return kExitUsage;
    }
  }
  uint64_t output_buffer = 0;
  try {
    output_buffer = ParseSize("--output-buffer", o.output_buffer);
  } catch (const CLI::ValidationError& e) {
    std::fprintf(stderr, "vmrr record: %s\n", e.what());
    return kExitUsage;
  }
  int console_fd = -1;
  // Destroyed last: the link's thread writes released output to this file until it stops.
  struct CloseConsole {
    int fd = -1;
    ~CloseConsole() {
      g_committer = nullptr;
      if (fd >= 0) ::close(fd);
    }
  } close_console;
  std::unique_ptr<ConsoleCommitter> committer;
  std::unique_ptr<PrimaryLink> primary_link;
  try {
    if (replicate) {
      PrimaryLinkOptions lo;
      lo.url = o.replicate;
      lo.key = link::LoadKeyFile(o.key_file);
      lo.shadow_timeout_ms = static_cast<int>(o.shadow_timeout_ms);
      lo.on_loss = on_loss;
      lo.continue_after_ms = continue_after_ms;
      // The file is shared with the shadow: never truncated, written at absolute offsets.
      if (!o.console_out.empty()) {
        console_fd = ::open(o.console_out.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (console_fd < 0) {
          std::fprintf(stderr, "vmrr record: %s: cannot open: %s\n", o.console_out.c_str(), std::strerror(errno));
          return kExitIo;
        }
        close_console.fd = console_fd;
      }
      committer = std::make_unique<ConsoleCommitter>(console_fd >= 0 ? console_fd : 1, console_fd >= 0,
                                                     static_cast<size_t>(output_buffer));
      g_committer = committer.get();
      primary_link = std::make_unique<PrimaryLink>(lo, *committer);
      if (!o.stats.empty()) committer->set_figures(&primary_link->figures());
    }
  } catch (const link::LinkError& e) {
    g_committer = nullptr;
    std::fprintf(stderr, "vmrr record: %s\n", e.what());
    return kExitIo;
  }
  // From here on a signal stops the recording cleanly (End record, footer), also while the
  // session is still being set up.
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  try {
    LiveEnvironment live(ToLiveOptions(o.machine));
    // With a shadow, network frames are held like console bytes and sent from here once the
    // shadow holds the log that produced them (never after `live` is gone: the guard unsets it).
    struct UnsetSender {
      ConsoleCommitter* c;
      ~UnsetSender() {
        if (c) c->set_net_sender(nullptr);
      }
    } unset_sender{committer.get()};
    if (committer) committer->set_net_sender([&live](std::span<const uint8_t> f) { live.NetFrameSent(0, f); });
    // Frames close at least every --frame-age ms (also while the guest idles), so a recorder
    // killed at any moment loses at most the last frame. Shorter ages cost 48 header bytes
    // per frame: an idle timer guest's event stream is ~2.4 KB/s at 100 ms, ~2 KB/s at 250.
    log::WriterOptions wo;
    wo.max_frame_age_ns = o.frame_age_ms * 1'000'000;
    // Ctrl-A x on a terminal stops the recording as it stops `vmrr run`. The escape is filtered
    // below the recorder, so it is not logged, and the stop is requested from the progress
    // callback (between run chunks and idle slices), never inside an input point.
    EscapeEnvironment escape(live, isatty(0) == 1);
    // With a shadow: console output is held below the recorder until the shadow acknowledges
    // the frame closed at it (output commit); the log goes to the file and the link alike.
    RecordingSession* recording = nullptr;
    ReplicatingSink* sink = nullptr;
    std::unique_ptr<CommitEnvironment> commit;
    if (replicate) {
      commit = std::make_unique<CommitEnvironment>(escape, *committer, [&](uint64_t icount) {
        sink->NoteIcount(icount);
        recording->writer().Flush();
        sink->SendMark();
        return CommitEnvironment::Point{primary_link->stream_offset(), icount};
      });
    }
    RecordingSession::SinkWrapper wrap;
    if (replicate) {
      wrap = [&](std::unique_ptr<log::ByteSink> file) -> std::unique_ptr<log::ByteSink> {
        auto s = std::make_unique<ReplicatingSink>(std::move(file), *primary_link);
        sink = s.get();
        return s;
      };
    }
    RecordingSession session(config, replicate ? static_cast<Environment&>(*commit) : escape, o.output,
                             VMRR_VERSION, wo, wrap);
    recording = &session;
    g_session = &session;
    started = true;
    // Planned relocation (`vmrr relocate`): the control thread asks the machine to stop; once it
    // has stopped, before the End record, the shadow is handed the rest of the log and
    // acknowledges it, the last output is released, and the link falls silent; the End record
    // and footer go to this primary's own log only.
    struct Relocation {
      std::mutex mu;
      std::condition_variable cv;
      bool requested = false, over = false, done = false;
      std::string reply;
      std::atomic<bool> preparing{false};
      std::atomic<bool> stopping{false};  // catch-up over: no more throttling
      std::atomic<uint64_t> icount{0};  // the primary's, after each run chunk
      double catch_up_ms = 0;           // the request to the stop request (guest throttled)
    } reloc;
    bool relocated = false;
    bool relocate_failed = false;  // the handover itself failed (not: the guest ended first)
    uint64_t relocated_at = 0;
    const int relocate_timeout_ms = static_cast<int>(std::max<uint64_t>(o.shadow_timeout_ms * 5, 5000));
    session.set_on_stopped([&](const MachineResult& r) {
      {
        std::lock_guard<std::mutex> lock(reloc.mu);
        reloc.over = true;
        if (!reloc.requested) return;
      }
      std::string reply;
      if (r.stop != MachineStop::kExitRequested) {
        reply = std::string("error: the guest stopped by itself (") + MachineStopName(r.stop) + ") first";
      } else {
        const int64_t stopped_ns = MonotonicNowNs();
        session.writer().Flush();
        std::string error;
        if (primary_link->Relocate(r.icount, stopped_ns, relocate_timeout_ms, &error)) {
          sink->Detach();
          relocated = true;
          relocated_at = r.icount;
          char b[128];
          std::snprintf(b, sizeof b, "relocated icount=%" PRIu64 " catch_up_ms=%.1f handover_ms=%.3f", r.icount,
                        reloc.catch_up_ms, static_cast<double>(MonotonicNowNs() - stopped_ns) / 1e6);
          reply = b;
        } else {
          reply = "error: " + error;
          relocate_failed = true;
        }
      }
      std::lock_guard<std::mutex> lock(reloc.mu);
      reloc.done = true;
      reloc.reply = reply;
      reloc.cv.notify_all();
    });
    std::unique_ptr<ControlSocket> control;
    if (!o.control.empty()) {
      control = std::make_unique<ControlSocket>(o.control, [&](const std::string& command) -> std::string {
        if (command != "relocate") return "error: unknown command '" + command + "' (commands: relocate)";
        std::unique_lock<std::mutex> lock(reloc.mu);
        if (reloc.over) return "error: the recording is over";
        if (reloc.requested) return "error: a relocation is already under way";
        reloc.requested = true;
        // First let the shadow's replay come close (frames closed at every run chunk meanwhile,
        // so that it can): what it must still replay after the stop is the guest's downtime.
        reloc.preparing.store(true);
        session.set_chunk_limit(kRelocateChunk);
        primary_link->set_preparing_relocation(true);
        lock.unlock();
        const int64_t asked = MonotonicNowNs();
        const int64_t give_up = asked + static_cast<int64_t>(o.relocate_catch_up_ms) * 1'000'000;
        while (MonotonicNowNs() < give_up &&
               primary_link->shadow_icount() + kRelocateLagInstructions < reloc.icount.load())
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        reloc.stopping.store(true);
        lock.lock();
        reloc.catch_up_ms = static_cast<double>(MonotonicNowNs() - asked) / 1e6;
        session.RequestStop();
        if (!reloc.cv.wait_for(lock, std::chrono::milliseconds(relocate_timeout_ms + 10'000),
                               [&] { return reloc.done; }))
          return "error: the primary did not stop in time";
        primary_link->set_preparing_relocation(false);
        return reloc.reply;
      });
    }
    if (g_stop_pending.load()) session.RequestStop();
    uint64_t last_print = 0;
    auto progress = [&](const RecordProgress& p) {
      if (escape.quit_requested()) session.RequestStop();
      reloc.icount.store(p.icount);
      if (reloc.preparing.load()) {
        // The log holds every record up to this chunk's end: the shadow may replay to it.
        sink->NoteIcount(p.icount);
        session.writer().Flush();
        sink->SendMark();
        const int64_t until = MonotonicNowNs() + kRelocateThrottleNs;
        while (!reloc.stopping.load() && primary_link->shadow_icount() + kRelocateLagInstructions < p.icount &&
               MonotonicNowNs() < until)
          std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
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
    const bool disk_written = WriteDiskOut(session.machine(), o.machine.disk_out, "record", kExitOk) == kExitOk;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    const bool all_released =
        !primary_link || primary_link->Finish(static_cast<int>(std::max<uint64_t>(o.shadow_timeout_ms, 1000) * 5));
    if (primary_link && !o.stats.empty()) {
      link::LinkFigures& f = primary_link->figures();
      f.Set("console_bytes", committer->produced());
      f.Set("backpressure_waits", committer->backpressure_waits());
      f.Set("icount", s.result.icount);
      f.Set("wall_ns", s.wall_ns);
      f.Set("shadow_lost", primary_link->lost() ? 1 : 0);
      if (!f.Write(o.stats)) std::fprintf(stderr, "vmrr record: %s: cannot write the link figures\n", o.stats.c_str());
    }
    if (relocated) {
      std::fprintf(stderr,
                   "vmrr record: relocated: the shadow holds the log to icount %" PRIu64
                   " and runs the guest from there; this primary stops (status 0)\n",
                   relocated_at);
      return kExitOk;
    }
    if (relocate_failed) {
      std::fprintf(stderr, "vmrr record: relocation failed: %s\n", reloc.reply.c_str());
      return kExitIo;
    }
    if (!all_released) {
      std::fprintf(stderr,
                   "vmrr record: %" PRIu64 " of %" PRIu64 " console bytes were never acknowledged by the shadow "
                   "and were not released%s\n",
                   committer->held(), committer->produced(),
                   primary_link->lost() ? " (the shadow was lost; --on-shadow-loss hold)" : "");
      return kExitIo;
    }
    if (tty) {
      std::fprintf(stderr, "\r[vmrr record] %" PRIu64 " instructions, %s, log %s, %" PRIu64
                           " records, %" PRIu64 " checkpoints, %.2fs         \n",
                   s.result.icount, log::EndReasonName(s.end_reason),
                   Human(static_cast<double>(s.log_bytes), "B").c_str(), s.records, s.checkpoints,
                   static_cast<double>(s.wall_ns) / 1e9);
    }
    return disk_written ? ExitStatusFor(s.result) : kExitIo;
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
  cmd->add_option("--replicate", o->replicate,
                  "stream the log to a shadow (`vmrr shadow --listen URL`): tcp:HOST:PORT or shm:NAME; "
                  "console output then leaves only once the shadow holds the log that produces it");
  cmd->add_option("--key-file", o->key_file, "the key shared with the shadow (64 hex digits or 32 bytes)");
  cmd->add_option("--console-out", o->console_out,
                  "with --replicate: write the console to FILE at each byte's position in the guest's output "
                  "(shared with the shadow: a byte written twice lands on itself) instead of stdout");
  cmd->add_option("--output-buffer", o->output_buffer,
                  "console bytes held waiting for the shadow before the guest's output blocks (default 1M)");
  cmd->add_option("--shadow-timeout", o->shadow_timeout_ms,
                  "ms of silence after which the shadow is lost, a broken TCP link included until it is open again (default 1000; a closed shm link is lost at once)")
      ->check(CLI::Range(uint64_t{10}, uint64_t{3'600'000}));
  cmd->add_option("--on-shadow-loss", o->on_shadow_loss,
                  "what to do once the shadow is lost: hold (default, safe: console output stays held, the "
                  "guest blocks once --output-buffer is full, exit status 3 if it ends with output held) or "
                  "continue[:MS] (MS ms after the loss, default 0, release output UNPROTECTED and run on); "
                  "the log is written in full either way");
  cmd->add_option("--stats", o->stats,
                  "with --replicate: write what the link measured (replica lag, output-commit latency, bytes; "
                  "key=value lines, series in microseconds) to FILE at the end, for bench/ft");
  cmd->add_option("--control", o->control,
                  "with --replicate: answer `vmrr relocate unix:PATH` on this Unix socket (mode 0600): planned "
                  "relocation to the shadow, after which this primary exits with status 0");
  cmd->add_option("--relocate-catch-up", o->relocate_catch_up_ms,
                  "on `vmrr relocate`, run on at most this many ms (default 200) while the shadow's replay "
                  "comes within 400K instructions, the guest throttled meanwhile (it waits up to 2 ms per "
                  "100K instructions for a shadow further behind), then stop (0: stop at once); what the "
                  "shadow still has to replay after the stop is the guest's downtime")
      ->check(CLI::Range(uint64_t{0}, uint64_t{60'000}));
  cmd->callback([o, exit_code] { *exit_code = Record(*o); });
}

}  // namespace vmrr::cli
