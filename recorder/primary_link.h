// The primary's end of the replication link: connects to the shadow, runs the handshake,
// streams the log's bytes as the writer closes its frames (ReplicatingSink, which also keeps
// writing the primary's own log file), and runs a thread that takes the shadow's
// acknowledgements (releasing held console output, output_commit.h) and heartbeats, and
// sends the primary's heartbeats. Over TCP a link that breaks (closed, a message refused, a
// send that fails) is opened again: a new connection and handshake, the shadow says how much
// of the stream it holds (Resume), and the stream is sent again from there (the bytes the
// shadow has not acknowledged are kept for that, up to kMaxResendBytes). A shadow that goes
// silent for shadow_timeout_ms (no reconnection within that time included), or whose link
// breaks when it cannot be opened again (shm, or too much unacknowledged), is lost: reported
// once on stderr, and then what ShadowLossPolicy says: hold output for good (the guest blocks once the output buffer is
// full; the safe answer, the default), or release it unprotected continue_after_ms later.
// The primary's own log is written in full either way.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "logformat/log_writer.h"
#include "recorder/output_commit.h"
#include "replication/channel.h"
#include "replication/link_figures.h"
#include "replication/transport.h"

namespace vmrr {

// --on-shadow-loss: what a primary does once its shadow is lost.
enum class ShadowLossPolicy {
  kHold,      // output stays held: nothing leaves that a failover could not reproduce
  kContinue,  // output is released unprotected (a failure of the primary may then lose it)
};

struct PrimaryLinkOptions {
  std::string url;
  link::Key key{};
  int connect_timeout_ms = 10'000;
  int heartbeat_ms = 20;
  int shadow_timeout_ms = 1'000;  // silence after which the shadow is reported lost
  int send_timeout_ms = 5'000;    // a send blocked this long (no room at the shadow) loses it
  ShadowLossPolicy on_loss = ShadowLossPolicy::kHold;
  int continue_after_ms = 0;  // kContinue: held output is released this long after the loss
};

// Parses "hold", "continue" or "continue:MS"; false (and *error) for anything else.
bool ParseShadowLossPolicy(const std::string& text, ShadowLossPolicy* policy, int* continue_after_ms,
                           std::string* error);

class PrimaryLink {
 public:
  // Connects and completes the handshake; throws link::LinkError.
  PrimaryLink(const PrimaryLinkOptions& options, ConsoleCommitter& console);
  ~PrimaryLink();
  PrimaryLink(const PrimaryLink&) = delete;
  PrimaryLink& operator=(const PrimaryLink&) = delete;

  // Machine thread: the next log bytes, and the sync icount they bring the shadow to.
  void SendLog(std::span<const uint8_t> bytes, uint64_t sync_icount);
  // Machine thread: an output at `icount` needs the shadow's sync icount there (every record
  // below it is in the stream). Sent at once as an empty Log message, unless one is still
  // waiting for its Ack: then the link thread sends the latest one when that Ack comes, so a
  // burst of console bytes costs about one message per round trip, not one per byte.
  void RequestMark(uint64_t icount);
  uint64_t stream_offset() const { return offset_.load(); }
  uint64_t sync_icount() const { return sync_.load(); }
  // Waits (at most timeout_ms, plus continue_after_ms under kContinue) until every held
  // console byte is released, then says goodbye. False if some output could not be released
  // (at once when the shadow is lost and output is held).
  bool Finish(int timeout_ms);
  bool lost() const { return lost_.load(); }
  // Planned relocation, machine thread, once the machine has stopped at `icount` and the log
  // writer was flushed (every record below icount is in the stream): sends Relocate, waits (at
  // most timeout_ms) until the shadow acknowledges the whole stream and every held console
  // byte is released, and from then on sends nothing (the shadow is the primary). False, with
  // *error, if the shadow is lost or does not acknowledge in time (the output stays held).
  bool Relocate(uint64_t icount, int64_t stopped_at_ns, int timeout_ms, std::string* error);
  bool relocated() const { return relocated_.load(); }
  // How far the shadow's replay has got, from its last heartbeat.
  uint64_t shadow_icount() const { return shadow_icount_.load(); }
  // A planned relocation is being prepared: heartbeats ask the shadow to report its replay's
  // progress every millisecond (instead of every heartbeat period); one goes at once.
  void set_preparing_relocation(bool on) {
    preparing_.store(on);
    heartbeat_now_.store(true);
  }
  std::string Describe() const { return describe_; }
  // Times the link was opened again after breaking.
  uint64_t reconnects() const { return reconnects_.load(); }
  // The unacknowledged stream kept for a reconnection; above this the link cannot be resumed.
  static constexpr uint64_t kMaxResendBytes = 256ull << 20;
  // What the link measured (bench/ft): "lag" (a Log message's send to the Ack covering it),
  // "heartbeat_interval", bytes and messages sent.
  link::LinkFigures& figures() { return figures_; }

 private:
  void SendSealed(link::MessageType type, uint64_t icount, uint64_t aux, std::span<const uint8_t> payload);
  std::vector<uint8_t> FramesReleased() const;
  std::vector<uint8_t> HeartbeatPayload() const;
  void Lose(const std::string& why);
  // The link broke: over TCP (and while the stream can be resent) it is opened again by the
  // link thread, else the shadow is lost.
  void Break(const std::string& why);
  // Link thread: one attempt to open the link again and resend the stream; false to retry.
  enum class Resumed { kDone, kRetry, kImpossible };
  Resumed Reconnect(std::string* why);
  // The handshake on a new transport (throws link::LinkError).
  void Handshake(link::Transport& transport, link::SecureChannel& channel, int timeout_ms);
  // The stream kept since the shadow's last acknowledgement (under log_mu_).
  struct Chunk {
    uint64_t offset;
    std::vector<uint8_t> bytes;
    uint64_t sync;
  };
  void TrimResend(uint64_t acked);
  // Link thread, once lost: releases output when kContinue's time has come.
  void AfterLoss();
  void Loop();

  PrimaryLinkOptions options_;
  ConsoleCommitter& console_;
  std::unique_ptr<link::Transport> transport_;  // replaced by the link thread under send_mu_
  std::unique_ptr<link::SecureChannel> channel_;
  std::string describe_;
  const bool resumable_;  // tcp: a broken link is opened again
  std::deque<Chunk> resend_;  // under log_mu_
  uint64_t resend_bytes_ = 0;
  std::atomic<bool> resend_overflow_{false};
  std::atomic<bool> down_{false};  // broken, being opened again
  std::atomic<int64_t> down_since_ms_{0};
  std::mutex down_mu_;
  std::string down_why_;  // under down_mu_
  std::atomic<uint64_t> reconnects_{0};
  // A relocation sent (under log_mu_): sent again after a reconnection.
  bool relocating_ = false;
  uint64_t relocate_icount_ = 0, relocate_end_ = 0;
  std::array<uint8_t, 8> relocate_stamp_{};
  void SendLogLocked(std::span<const uint8_t> bytes, uint64_t sync_icount);
  // Link thread: an Ack for `icount` came; sends the pending mark if there is one.
  void MarkAcknowledged(uint64_t icount);

  std::mutex log_mu_;   // the log stream's order: offset, sync icount, marks (taken before send_mu_)
  std::mutex send_mu_;  // one message at a time on the transport
  uint64_t mark_in_flight_ = 0;  // icount of the mark sent and not yet acknowledged, 0: none
  uint64_t pending_mark_ = 0;    // the latest mark requested meanwhile, 0: none
  std::atomic<uint64_t> offset_{0};
  std::atomic<uint64_t> sync_{0};
  std::atomic<bool> lost_{false};
  std::atomic<bool> relocated_{false};
  std::atomic<uint64_t> acked_offset_{0};
  std::atomic<uint64_t> acked_icount_{0};
  std::atomic<uint64_t> shadow_icount_{0};
  std::atomic<bool> preparing_{false};
  std::atomic<bool> heartbeat_now_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> last_heard_ms_{0};
  std::atomic<int64_t> lost_at_ms_{0};
  link::LinkFigures figures_;
  std::mutex unacked_mu_;
  std::deque<std::pair<uint64_t, int64_t>> unacked_;
  bool acked_once_ = false;  // (stream offset after a Log message, sent at ns)
  std::thread thread_;
};

// A ByteSink that writes to the primary's own log (inner) and streams the same bytes to the
// shadow. A write that is a whole frame brings the shadow's sync icount to the frame's last
// icount; NoteIcount raises it further (output commit: the frame closed at an output at that
// icount holds every record logged before it).
class ReplicatingSink : public log::ByteSink {
 public:
  ReplicatingSink(std::unique_ptr<log::ByteSink> inner, PrimaryLink& link) : inner_(std::move(inner)), link_(link) {}
  void Write(const uint8_t* data, size_t size) override;
  void Sync() override { inner_->Sync(); }
  void NoteIcount(uint64_t icount) { noted_ = std::max(noted_, icount); }
  // After a relocation: the rest of the log (End, footer) goes to the file only.
  void Detach() { detached_ = true; }
  // Asks for a mark at the noted sync icount if no write carried it (an output with no record
  // since the last frame): PrimaryLink::RequestMark.
  void SendMark();

 private:
  std::unique_ptr<log::ByteSink> inner_;
  PrimaryLink& link_;
  uint64_t noted_ = 0;
  bool detached_ = false;
};

}  // namespace vmrr
