// `vmrr shadow --listen URL --key-file K [--log FILE] [--console-out FILE]`: a replica that
// follows a primary (`vmrr record --replicate URL`). It receives the primary's log as it is
// written, acknowledges how far it holds it (the primary releases console output only then),
// replays it continuously a little behind, and when the primary has been silent for
// --takeover-timeout ms replays to the end of what it received, switches its machine from
// replaying to live at that instruction boundary and carries on as the primary: the console
// goes to --console-out at each byte's absolute position (the file the primary wrote), so
// whatever the primary had already released is written again onto itself, nothing is lost.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/machine_options.h"
#include "hv-hooks/host/live_environment.h"
#include "hv-hooks/machine/machine.h"
#include "logformat/error.h"
#include "replayer/divergence.h"
#include "replayer/following_replay.h"
#include "replayer/replay_session.h"
#include "replication/channel.h"
#include "replication/key_file.h"
#include "replication/link_figures.h"
#include "replication/transport.h"
#include "cli/shadow_link.h"
#include "recorder/output_commit.h"
#include "recorder/primary_link.h"
#include "recorder/recording_session.h"

namespace vmrr::cli {
namespace {

struct ShadowOptions {
  std::string listen;
  std::string key_file;
  std::string log;
  std::string console_out;
  // 200 ms: ~5x the worst silence bench/ft measured between the primary's 20 ms heartbeats on
  // a loaded host (replayer/FT_NOTES.md, "Choosing the takeover timeout").
  uint64_t takeover_timeout_ms = 200;
  uint64_t heartbeat_ms = 20;
  int64_t accept_timeout_ms = -1;
  std::string stats;
  std::string net;  // --net: the primary's UDP endpoint, taken over when it dies
  std::string disk_out;  // --disk-out: the disk as the guest left it, at the end
  // Onward: once live, record the guest into live_log and, with replicate, stream that log to
  // a next shadow, holding output until it acknowledges (as `vmrr record --replicate` does).
  std::string live_log;
  std::string replicate;
  std::string output_buffer = "1M";
  uint64_t shadow_timeout_ms = 1000;
  std::string on_shadow_loss = "hold";
};

// Instructions replayed between looks at the link and the takeover clock: a few ms.
constexpr uint64_t kStepBudget = 500'000;

std::atomic<bool> g_stop{false};
Machine* g_live_machine = nullptr;
RecordingSession* g_live_session = nullptr;
ConsoleCommitter* g_live_committer = nullptr;

extern "C" void OnShadowSignal(int) {
  g_stop.store(true);
  if (g_live_machine) g_live_machine->RequestStop();
  if (g_live_session) g_live_session->RequestStop();
  if (g_live_committer) g_live_committer->Interrupt();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Console output: the file at absolute offsets, or stdout in order.
class ConsoleSink {
 public:
  ConsoleSink(int fd, bool positional) : fd_(fd), positional_(positional) {}
  void Write(uint64_t offset, const uint8_t* p, size_t n) {
    while (n > 0) {
      const ssize_t w = positional_ ? ::pwrite(fd_, p, n, static_cast<off_t>(offset)) : ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(std::string("console output: write failed: ") + std::strerror(errno));
      }
      p += w;
      n -= static_cast<size_t>(w);
      offset += static_cast<uint64_t>(w);
    }
  }

 private:
  int fd_;
  bool positional_;
};

// The live environment of the shadow once it is the primary: the host, with the console going
// on at the guest's output position where the replay left it.
class TakeoverEnvironment final : public Environment {
 public:
  TakeoverEnvironment(LiveEnvironment& live, ConsoleSink& console, uint64_t position)
      : live_(live), console_(console), position_(position) {}
  int64_t SampleTime(uint64_t icount) override { return live_.SampleTime(icount); }
  std::vector<uint8_t> PollConsoleInput(uint64_t icount, size_t max_bytes) override {
    return live_.PollConsoleInput(icount, max_bytes);
  }
  bool PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) override { return live_.PollNetFrame(icount, frame); }
  void GetEntropy(uint64_t icount, std::span<uint8_t> out) override { live_.GetEntropy(icount, out); }
  void ConsoleOutput(uint64_t, std::span<const uint8_t> bytes) override {
    console_.Write(position_, bytes.data(), bytes.size());
    position_ += bytes.size();
  }
  void NetFrameSent(uint64_t icount, std::span<const uint8_t> frame) override { live_.NetFrameSent(icount, frame); }
  bool WaitForInput(uint64_t icount, int64_t deadline_host_ns) override {
    constexpr int64_t kSliceNs = 50'000'000;
    for (;;) {
      const int64_t now = LiveEnvironment::HostNowNs();
      if (now >= deadline_host_ns || g_stop.load()) return false;
      const int64_t slice = deadline_host_ns - now > kSliceNs ? now + kSliceNs : deadline_host_ns;
      if (live_.WaitForInput(icount, slice)) return true;
    }
  }

 private:
  LiveEnvironment& live_;
  ConsoleSink& console_;
  uint64_t position_;
};

int Fail(int status, const std::string& message) {
  std::fprintf(stderr, "vmrr shadow: %s\n", message.c_str());
  return status;
}

int RunShadow(const ShadowOptions& o) {
  std::string net = o.net;  // checked now, bound only at takeover
  if (std::string error; !NormalizeNetOption(&net, &error)) return Fail(kExitUsage, error);
  ShadowLossPolicy on_loss = ShadowLossPolicy::kHold;
  int continue_after_ms = 0;
  uint64_t output_buffer = 0;
  if (!o.replicate.empty()) {
    std::string error;
    if (!link::ValidLinkUrl(o.replicate, &error)) return Fail(kExitUsage, "--replicate " + o.replicate + ": " + error);
    if (o.live_log.empty())
      return Fail(kExitUsage, "--replicate needs --live-log FILE (the log this shadow records once live)");
    if (o.replicate == o.listen) return Fail(kExitUsage, "--replicate and --listen name the same link");
    if (!ParseShadowLossPolicy(o.on_shadow_loss, &on_loss, &continue_after_ms, &error))
      return Fail(kExitUsage, "--on-shadow-loss: " + error);
    try {
      output_buffer = ParseSize("--output-buffer", o.output_buffer);
    } catch (const CLI::ValidationError& e) {
      return Fail(kExitUsage, e.what());
    }
  }
  link::Key key;
  std::unique_ptr<link::Listener> listener;
  try {
    key = link::LoadKeyFile(o.key_file);
    listener = link::Listen(o.listen);
  } catch (const link::LinkError& e) {
    return Fail(kExitIo, e.what());
  }
  int log_fd = -1;
  if (!o.log.empty()) {
    log_fd = ::open(o.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) return Fail(kExitIo, o.log + ": cannot create: " + std::strerror(errno));
  }
  int console_fd = 1;
  if (!o.console_out.empty()) {
    console_fd = ::open(o.console_out.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (console_fd < 0) return Fail(kExitIo, o.console_out + ": cannot open: " + std::strerror(errno));
  }
  struct Closer {
    int a, b;
    ~Closer() {
      if (a >= 0) ::close(a);
      if (b > 2) ::close(b);
    }
  } closer{log_fd, console_fd};
  ConsoleSink console(console_fd, !o.console_out.empty());
  // Onward replication: the next shadow is listening already (as for `vmrr record
  // --replicate`); the link is idle (heartbeats) until this shadow goes live.
  std::unique_ptr<ConsoleCommitter> committer;
  std::unique_ptr<PrimaryLink> onward;
  if (!o.replicate.empty()) {
    try {
      PrimaryLinkOptions lo;
      lo.url = o.replicate;
      lo.key = link::LoadKeyFile(o.key_file);
      lo.shadow_timeout_ms = static_cast<int>(o.shadow_timeout_ms);
      lo.on_loss = on_loss;
      lo.continue_after_ms = continue_after_ms;
      committer = std::make_unique<ConsoleCommitter>(console_fd, !o.console_out.empty(),
                                                     static_cast<size_t>(output_buffer));
      onward = std::make_unique<PrimaryLink>(lo, *committer);
    } catch (const link::LinkError& e) {
      return Fail(kExitIo, "--replicate " + o.replicate + ": " + e.what());
    }
    std::fprintf(stderr, "vmrr shadow: replicating onward to %s once live\n", o.replicate.c_str());
  }
  // Whatever way this shadow ends without having gone live, the next one hears a goodbye.
  struct ByeOnward {
    PrimaryLink* link;
    ~ByeOnward() {
      if (link) link->Finish(1000);
    }
  } bye_onward{onward.get()};

  struct sigaction sa {};
  sa.sa_handler = OnShadowSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  std::fprintf(stderr, "vmrr shadow: listening on %s\n", listener->Describe().c_str());
  std::unique_ptr<link::Transport> transport;
  const int64_t accept_deadline = o.accept_timeout_ms < 0 ? INT64_MAX : NowMs() + o.accept_timeout_ms;
  while (!transport) {
    if (g_stop.load()) return kExitInterrupted;
    if (NowMs() >= accept_deadline) return Fail(kExitIo, "no primary connected");
    transport = listener->Accept(100);
  }
  GrowingLog log;
  // Console bytes the replay produced that the primary may not have released yet.
  std::string pending;
  uint64_t pending_base = 0;
  uint64_t released = 0;
  // A log written by a shadow that went live starts with the guest's output so far: its
  // console positions continue from there.
  FollowingReplay* following = nullptr;
  bool base_adopted = false;
  auto adopt_base = [&] {
    if (base_adopted || !following || !following->console_base()) return;
    pending_base = *following->console_base();
    base_adopted = true;
  };
  FollowingReplay::Options fo;
  fo.console_out = [&](uint64_t, std::span<const uint8_t> bytes) {
    adopt_base();
    pending.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (released > pending_base) {
      const uint64_t drop = std::min<uint64_t>(released - pending_base, pending.size());
      pending.erase(0, drop);
      pending_base += drop;
    }
  };
  // Network frames the replay produced that the primary may not have released yet: the first
  // is the guest's frame number frames_base. Sent (again) when this shadow goes live.
  std::deque<std::vector<uint8_t>> pending_frames;
  uint64_t frames_base = 0;
  uint64_t frames_released = 0;
  fo.net_out = [&](uint64_t, std::span<const uint8_t> frame) {
    pending_frames.emplace_back(frame.begin(), frame.end());
    while (!pending_frames.empty() && frames_base < frames_released) {
      pending_frames.pop_front();
      ++frames_base;
    }
  };
  FollowingReplay follower(log, fo);
  following = &follower;
  auto write_pending = [&] {
    adopt_base();
    console.Write(pending_base, reinterpret_cast<const uint8_t*>(pending.data()), pending.size());
    pending_base += pending.size();
    pending.clear();
  };

  link::LinkFigures figures;
  ShadowLink::Options so;
  so.heartbeat_ms = static_cast<int>(o.heartbeat_ms);
  so.log_fd = log_fd;
  so.figures = &figures;
  if (o.listen.rfind("tcp:", 0) == 0) so.listener = listener.get();  // a broken TCP link is resumed
  std::unique_ptr<ShadowLink> shadow_link;
  try {
    shadow_link = std::make_unique<ShadowLink>(std::move(transport), key, so);
  } catch (const link::LinkError& e) {
    return Fail(kExitIo, e.what());
  }
  ShadowLink& link = *shadow_link;
  auto write_figures = [&] {
    if (o.stats.empty()) return;
    figures.Set("log_bytes", log.bytes());
    figures.Set("frames", log.frames());
    figures.Set("replayed_icount", follower.icount());
    figures.Set("takeover_timeout_ms", o.takeover_timeout_ms);
    if (!figures.Write(o.stats)) std::fprintf(stderr, "vmrr shadow: %s: cannot write the link figures\n", o.stats.c_str());
  };
  ShadowLink::Received received;
  // What the link thread received goes into the log the replay reads.
  auto drain = [&] {
    link.Take(&received);
    for (const ShadowLink::Received::Log& l : received.logs) {
      log.Append(l.bytes);
      log.SetSyncIcount(l.sync_icount);
    }
    released = received.released;
    frames_released = received.frames_released;
    if (received.relocate) log.SetSyncIcount(received.relocate_icount);  // the whole log is here
    if (const std::string f = link.failure(); !f.empty()) throw std::runtime_error(f);
  };
  // The exit status for the exception being handled (called inside a catch block).
  auto fail_for_current = [&]() -> int {
    try {
      throw;
    } catch (const Divergence& e) {
      return Fail(kExitDivergence, std::string("divergence from the primary's log: ") + e.what());
    } catch (const log::LogError& e) {
      return Fail(ExitCodeFor(e.code()), std::string("the primary's log: ") + e.what());
    } catch (const link::LinkError& e) {
      return Fail(kExitIo, e.what());
    } catch (const MachineError& e) {
      return Fail(kExitFailure, e.what());
    } catch (const SessionConfigError& e) {
      return Fail(kExitDamaged, e.what());
    } catch (const ReplayRefused& e) {
      return Fail(e.code() == ReplayRefused::Code::kImageMismatch ? kExitImageMismatch : kExitDamaged, e.what());
    } catch (const LogExhausted& e) {
      // Never for an input below held_below(): the log said it held everything there.
      return Fail(kExitDivergence, std::string("the replay needed an input the primary never logged: ") + e.what());
    } catch (const std::runtime_error& e) {
      return Fail(kExitFailure, e.what());
    }
  };
  bool announced = false;
  try {
    for (;;) {
      if (g_stop.load()) return Fail(kExitInterrupted, "stopped");
      drain();
      // A planned relocation: the primary stopped and the whole log is here; go live now.
      if (received.relocate) break;
      // The link thread reads all the time, so a replay step that takes long (a loaded host)
      // is not the primary's silence. After its goodbye the primary is silent by right: the
      // shadow replays on to the end. "silence": what this comparison saw, the figure the
      // default timeout is chosen from.
      if (!received.bye) {
        const int64_t silence = NowNs() - link.last_heard_ns();
        figures.Sample("silence", silence);
        if (silence > static_cast<int64_t>(o.takeover_timeout_ms) * 1'000'000) break;
      }
      bool progressed = false;
      if (follower.TryStart()) {
        if (!announced) {
          announced = true;
          link.EnableAcks();  // the machine is built and the disk image checked: it can take over
          std::fprintf(stderr, "vmrr shadow: following %s from icount %llu\n", link.Describe().c_str(),
                       static_cast<unsigned long long>(follower.icount()));
        }
        progressed = follower.Step(kStepBudget);
        link.set_replayed_icount(follower.icount());
      } else if (received.bye) {
        // Everything the primary sent is here and holds no checkpoint (a shadow that
        // replicated onward finished without going live): nothing will come to follow.
        std::fprintf(stderr, "vmrr shadow: the primary said goodbye before its log's first checkpoint: "
                             "nothing to follow\n");
        return kExitOk;
      }
      if (follower.end() && received.bye) {
        std::fprintf(stderr,
                     "vmrr shadow: the primary finished; replayed its %llu frames to the end (icount %llu, %llu "
                     "digests matched)\n",
                     static_cast<unsigned long long>(log.frames()), static_cast<unsigned long long>(follower.icount()),
                     static_cast<unsigned long long>(follower.digests_checked()));
        write_figures();
        return WriteDiskOut(*follower.machine(), o.disk_out, "shadow", kExitOk);
      }
      if (!progressed) link.WaitForMore(2);
    }
  } catch (...) {
    return fail_for_current();
  }

  // The primary is gone: nothing more is read or acknowledged; what arrived is replayed.
  link.Stop();
  const int64_t silent = (NowNs() - link.last_heard_ns()) / 1'000'000;
  try {
    drain();
  } catch (const log::LogError& e) {
    return Fail(ExitCodeFor(e.code()), std::string("the primary's log: ") + e.what());
  } catch (const std::runtime_error& e) {
    return Fail(kExitIo, e.what());
  }
  figures.Set("takeover_decided_ns", static_cast<uint64_t>(NowNs()));
  // A first checkpoint that arrived in the last moments (or while this process was not
  // scheduled) still makes a machine to take over with.
  try {
    follower.TryStart();
  } catch (...) {
    return fail_for_current();
  }
  if (!follower.started())
    return Fail(kExitFailure, fmt::format("the primary went silent ({} ms) before the log's first checkpoint "
                                          "arrived: nothing to take over", silent));
  try {
    if (follower.end()) {
      // The recording had finished: its whole output is known; the primary may not have
      // released the end of it.
      write_pending();
      std::fprintf(stderr,
                   "vmrr shadow: the primary went silent after finishing (it had released %llu of %llu console "
                   "bytes); its output is complete\n",
                   static_cast<unsigned long long>(released), static_cast<unsigned long long>(pending_base));
      write_figures();
      return WriteDiskOut(*follower.machine(), o.disk_out, "shadow",
                          follower.end()->reason == log::EndReason::kGuestExit
                              ? static_cast<int>((follower.end()->exit_code << 1) | 1)
                              : kExitOk);
    }
    MachineOptions mo;
    mo.net = net;  // empty: no network
    LiveEnvironmentOptions lo = ToLiveOptions(mo);
    lo.console_in_fd = 0;
    lo.console_out_fd = -1;
    // The primary's UDP port is free once it is dead; a relocating primary frees it as it exits,
    // which can be a moment after its stop: a port still in use is tried again for 2 s.
    std::unique_ptr<LiveEnvironment> live_env;
    for (int attempt = 0;; ++attempt) {
      try {
        live_env = std::make_unique<LiveEnvironment>(lo);
        break;
      } catch (const EnvironmentError& e) {
        if (e.code() != EnvironmentError::Code::kNetBind || attempt >= 200)
          return Fail(kExitIo, std::string("cannot go live: ") + e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    LiveEnvironment& live = *live_env;
    uint64_t replayed_to = 0;
    std::unique_ptr<TakeoverEnvironment> env;
    // GoLive needs the environment; its console position is where the replay will end, known
    // only after the replay: the environment is built on the replay's final position below.
    class Deferred final : public Environment {
     public:
      Environment* target = nullptr;
      int64_t SampleTime(uint64_t i) override { return target->SampleTime(i); }
      std::vector<uint8_t> PollConsoleInput(uint64_t i, size_t n) override { return target->PollConsoleInput(i, n); }
      bool PollNetFrame(uint64_t i, std::vector<uint8_t>* f) override { return target->PollNetFrame(i, f); }
      void GetEntropy(uint64_t i, std::span<uint8_t> out) override { target->GetEntropy(i, out); }
      void ConsoleOutput(uint64_t i, std::span<const uint8_t> b) override { target->ConsoleOutput(i, b); }
      void NetFrameSent(uint64_t i, std::span<const uint8_t> f) override { target->NetFrameSent(i, f); }
      bool WaitForInput(uint64_t i, int64_t d) override { return target->WaitForInput(i, d); }
    } deferred;
    Machine& machine = follower.GoLive(deferred);
    replayed_to = machine.icount();
    write_pending();
    env = std::make_unique<TakeoverEnvironment>(live, console, pending_base);
    deferred.target = env.get();
    // Frames after the last ones the primary said it released: sent again (at least once).
    for (const std::vector<uint8_t>& f : pending_frames)
      if (frames_base++ >= frames_released) live.NetFrameSent(replayed_to, f);
    pending_frames.clear();
    const int64_t live_ns = NowNs();
    figures.Set("live_ns", static_cast<uint64_t>(live_ns));
    // The new primary runs the guest, with --live-log recording it (from a first checkpoint
    // here, its output continuing the guest's) and with --replicate streaming that log to the
    // next shadow, output held until it acknowledges.
    auto run_live = [&](Machine& m) -> int {
      if (o.live_log.empty()) {
        g_live_machine = &m;
        const MachineResult r = m.Run(~uint64_t{0});
        g_live_machine = nullptr;
        return WriteDiskOut(m, o.disk_out, "shadow", ExitStatusFor(r));
      }
      bye_onward.link = nullptr;  // the recording says goodbye itself, once its output is out
      RecordingSession::Adopted adopted;
      adopted.machine = &m;
      adopted.images = log.header().images;
      adopted.console = follower.console();
      adopted.net = follower.net();
      RecordingSession* recording = nullptr;
      ReplicatingSink* sink = nullptr;
      std::unique_ptr<CommitEnvironment> commit;
      struct UnsetSender {
        ConsoleCommitter* c;
        ~UnsetSender() {
          if (c) c->set_net_sender(nullptr);
        }
      } unset_sender{committer.get()};
      RecordingSession::SinkWrapper wrap;
      if (onward) {
        committer->set_console_base(pending_base);
        committer->set_net_sender([&live](std::span<const uint8_t> f) { live.NetFrameSent(0, f); });
        commit = std::make_unique<CommitEnvironment>(*env, *committer, [&](uint64_t icount) {
          sink->NoteIcount(icount);
          recording->writer().Flush();
          sink->SendMark();
          return CommitEnvironment::Point{onward->stream_offset(), icount};
        });
        wrap = [&](std::unique_ptr<log::ByteSink> file) -> std::unique_ptr<log::ByteSink> {
          auto s = std::make_unique<ReplicatingSink>(std::move(file), *onward);
          sink = s.get();
          return s;
        };
      }
      RecordSummary s;
      {
        RecordingSession session(follower.config(), adopted, commit ? static_cast<Environment&>(*commit) : *env,
                                 o.live_log, VMRR_VERSION, {}, wrap);
        recording = &session;
        g_live_committer = committer.get();
        g_live_session = &session;
        if (g_stop.load()) session.RequestStop();
        std::fprintf(stderr, "vmrr shadow: recording the guest from icount %llu into %s%s\n",
                     static_cast<unsigned long long>(m.icount()), o.live_log.c_str(),
                     onward ? (" and replicating it to " + o.replicate).c_str() : "");
        s = session.Run(0, nullptr);
        g_live_session = nullptr;
      }
      const int status = WriteDiskOut(m, o.disk_out, "shadow", ExitStatusFor(s.result));
      if (onward && !onward->Finish(static_cast<int>(std::max<uint64_t>(o.shadow_timeout_ms, 1000) * 5))) {
        g_live_committer = nullptr;
        std::fprintf(stderr,
                     "vmrr shadow: %llu of %llu console bytes were never acknowledged by the next shadow and were "
                     "not released%s\n",
                     static_cast<unsigned long long>(committer->held()),
                     static_cast<unsigned long long>(committer->produced() - pending_base),
                     onward->lost() ? " (it was lost; --on-shadow-loss hold)" : "");
        return kExitIo;
      }
      g_live_committer = nullptr;
      return status;
    };
    if (received.relocate) {
      figures.Set("relocate_stopped_ns", static_cast<uint64_t>(received.relocate_stopped_ns));
      write_figures();
      if (replayed_to != received.relocate_icount)
        return Fail(kExitDivergence, fmt::format("relocation: the primary stopped at icount {}, the replay reached {}",
                                                 received.relocate_icount, replayed_to));
      std::fprintf(stderr,
                   "vmrr shadow: relocated: the primary stopped at icount %llu and handed over; live from there "
                   "(%.3f ms after the primary's stop; %llu frames, %llu bytes received)\n",
                   static_cast<unsigned long long>(replayed_to),
                   static_cast<double>(live_ns - received.relocate_stopped_ns) / 1e6,
                   static_cast<unsigned long long>(log.frames()), static_cast<unsigned long long>(log.bytes()));
      return run_live(machine);
    }
    write_figures();
    std::fprintf(stderr,
                 "vmrr shadow: primary silent for %lld ms: taking over at icount %llu (%llu frames, %llu bytes "
                 "received; the primary had released %llu console bytes, the replay produced %llu)\n",
                 static_cast<long long>(silent), static_cast<unsigned long long>(replayed_to),
                 static_cast<unsigned long long>(log.frames()), static_cast<unsigned long long>(log.bytes()),
                 static_cast<unsigned long long>(released), static_cast<unsigned long long>(pending_base));
    if (follower.end()) {
      return WriteDiskOut(machine, o.disk_out, "shadow",
                          follower.end()->reason == log::EndReason::kGuestExit
                              ? static_cast<int>((follower.end()->exit_code << 1) | 1)
                              : kExitOk);
    }
    return run_live(machine);
  } catch (const Divergence& e) {
    return Fail(kExitDivergence, std::string("divergence from the primary's log: ") + e.what());
  } catch (const log::LogError& e) {
    return Fail(ExitCodeFor(e.code()), std::string("the primary's log: ") + e.what());
  } catch (const MachineError& e) {
    return Fail(kExitFailure, e.what());
  } catch (const EnvironmentError& e) {
    return Fail(kExitIo, e.what());
  } catch (const std::runtime_error& e) {
    return Fail(kExitIo, e.what());
  }
}

}  // namespace

void AddShadowCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ShadowOptions>();
  CLI::App* cmd = app.add_subcommand(
      "shadow",
      "Follow a primary (`vmrr record --replicate URL`): receive its log as it is written,\n"
      "replay it continuously, and take over when the primary goes silent.\n"
      "Exit status: 0 the primary finished and the replay matched it to the end; after a\n"
      "takeover, the guest's status as for `vmrr run`; 3 link or file unusable; 7 damaged log;\n"
      "11 divergence from the primary's log; 130 stopped by a signal.");
  cmd->add_option("--listen", o->listen, "where the primary connects: tcp:HOST:PORT (port 0: a free port, named in the "
                  "\"listening on\" line) or shm:NAME")->required();
  cmd->add_option("--key-file", o->key_file, "the key shared with the primary (64 hex digits or 32 bytes)")
      ->required();
  cmd->add_option("--log", o->log, "also keep the received log in FILE (a log `vmrr replay` reads)");
  cmd->add_option("--console-out", o->console_out,
                  "after a takeover, the console goes to FILE at each byte's position in the guest's output "
                  "(the primary's --console-out); default stdout");
  cmd->add_option("--takeover-timeout", o->takeover_timeout_ms,
                  "ms without a valid message from the primary after which the shadow takes over (default 200)")
      ->check(CLI::Range(uint64_t{10}, uint64_t{3'600'000}));
  cmd->add_option("--heartbeat", o->heartbeat_ms, "ms between the shadow's heartbeats (default 20)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{60'000}));
  cmd->add_option("--accept-timeout", o->accept_timeout_ms, "ms to wait for a primary (default: forever)");
  cmd->add_option("--net", o->net,
                  "the primary's network endpoint, udp:HOST:PEER_PORT[:LOCAL_PORT] as given to `vmrr record --net`: "
                  "bound when this shadow takes over, and the frames the primary may not have released are sent again");
  cmd->add_option("--stats", o->stats,
                  "write what the link measured (gaps between the primary's heartbeats, silence at each "
                  "takeover check, takeover times; key=value lines, series in microseconds) to FILE when the "
                  "primary finishes or at a takeover, for bench/ft");
  AddDiskOutOption(cmd, &o->disk_out);
  cmd->add_option("--live-log", o->live_log,
                  "once live (after a takeover or relocation), record the guest into FILE: a log that starts "
                  "with a checkpoint at the takeover, which `vmrr replay` reads");
  cmd->add_option("--replicate", o->replicate,
                  "once live, stream the --live-log recording to a next shadow (`vmrr shadow --listen URL`, "
                  "started first, same --key-file) and hold console output and network frames until it "
                  "acknowledges them, as `vmrr record --replicate` does: tcp:HOST:PORT or shm:NAME");
  cmd->add_option("--output-buffer", o->output_buffer,
                  "with --replicate: output bytes held before the guest blocks (default 1M)");
  cmd->add_option("--shadow-timeout", o->shadow_timeout_ms,
                  "with --replicate: ms of silence, or of a broken TCP link not opened again, after which the "
                  "next shadow is lost (default 1000)")
      ->check(CLI::Range(uint64_t{10}, uint64_t{3'600'000}));
  cmd->add_option("--on-shadow-loss", o->on_shadow_loss,
                  "with --replicate: hold (default) or continue[:MS], as for `vmrr record`");
  cmd->callback([o, exit_code] { *exit_code = RunShadow(*o); });
}

}  // namespace vmrr::cli
