// PrimaryLink and ReplicatingSink: the primary's side of the replication link.
#include "recorder/primary_link.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "logformat/byte_order.h"
#include "logformat/format.h"

namespace vmrr {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

PrimaryLink::PrimaryLink(const PrimaryLinkOptions& options, ConsoleCommitter& console)
    : options_(options),
      console_(console),
      transport_(link::Connect(options.url, options.connect_timeout_ms)),
      channel_(std::make_unique<link::SecureChannel>(options.key, link::Role::kPrimary)),
      describe_(transport_->Describe()),
      resumable_(options.url.rfind("tcp:", 0) == 0) {
  Handshake(*transport_, *channel_, options_.connect_timeout_ms);
  last_heard_ms_.store(NowMs());
  thread_ = std::thread([this] { Loop(); });
}

void PrimaryLink::Handshake(link::Transport& transport, link::SecureChannel& channel, int timeout_ms) {
  const std::vector<uint8_t> hello = channel.Hello();
  if (!transport.Send(hello.data(), hello.size(), timeout_ms))
    throw link::LinkError(options_.url + ": the shadow did not take the hello");
  const int64_t deadline = NowMs() + timeout_ms;
  uint8_t byte;
  link::Message m;
  while (!channel.established()) {
    const int64_t left = deadline - NowMs();
    if (left <= 0) throw link::LinkError(options_.url + ": no hello from the shadow");
    // Read only what a hello can be, so that nothing after it is left in this buffer.
    const ssize_t n = transport.Receive(&byte, 1, static_cast<int>(left));
    if (n < 0) throw link::LinkError(options_.url + ": the shadow closed the link during the handshake");
    channel.Feed(&byte, static_cast<size_t>(n));
    const auto st = channel.Next(&m);
    if (st == link::SecureChannel::Status::kRefused)
      throw link::LinkError(options_.url + ": " + channel.error() + " (is the key the shadow's?)");
  }
}

PrimaryLink::~PrimaryLink() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

bool ParseShadowLossPolicy(const std::string& text, ShadowLossPolicy* policy, int* continue_after_ms,
                           std::string* error) {
  *continue_after_ms = 0;
  if (text == "hold") {
    *policy = ShadowLossPolicy::kHold;
    return true;
  }
  if (text == "continue") {
    *policy = ShadowLossPolicy::kContinue;
    return true;
  }
  if (text.rfind("continue:", 0) == 0) {
    const std::string ms = text.substr(9);
    if (!ms.empty() && ms.size() <= 7 && ms.find_first_not_of("0123456789") == std::string::npos) {
      *policy = ShadowLossPolicy::kContinue;
      *continue_after_ms = std::stoi(ms);
      return true;
    }
  }
  *error = "expected hold, continue or continue:MS (MS: 0 to 9999999), not '" + text + "'";
  return false;
}

void PrimaryLink::Lose(const std::string& why) {
  if (lost_.exchange(true)) return;
  lost_at_ms_.store(NowMs());
  if (options_.on_loss == ShadowLossPolicy::kHold) {
    std::fprintf(stderr,
                 "vmrr record: shadow lost (%s): console output is held from now on (--on-shadow-loss hold); "
                 "%" PRIu64 " bytes held, the guest blocks once the output buffer is full; the log is still "
                 "written in full; stop with SIGTERM or Ctrl-C\n",
                 why.c_str(), console_.held());
  } else {
    std::fprintf(stderr,
                 "vmrr record: shadow lost (%s): WARNING: console output will be released UNPROTECTED in %d ms "
                 "(--on-shadow-loss continue)\n",
                 why.c_str(), options_.continue_after_ms);
  }
}

void PrimaryLink::Break(const std::string& why) {
  if (lost_.load() || relocated_.load()) return;
  if (!resumable_ || resend_overflow_.load()) {
    Lose(why);
    return;
  }
  if (down_.exchange(true)) return;
  transport_->Shutdown();  // the shadow sees the break at once and waits for the new link
  down_since_ms_.store(NowMs());
  {
    std::lock_guard<std::mutex> lock(down_mu_);
    down_why_ = why;
  }
  std::fprintf(stderr, "vmrr record: the link to the shadow broke (%s); opening it again\n", why.c_str());
}

PrimaryLink::Resumed PrimaryLink::Reconnect(std::string* why) {
  auto channel = std::make_unique<link::SecureChannel>(options_.key, link::Role::kPrimary);
  std::unique_ptr<link::Transport> transport;
  link::Message m;
  try {
    transport = link::Connect(options_.url, 50);
    Handshake(*transport, *channel, 200);
    // The shadow's first message on a new connection says how much of the stream it holds.
    const int64_t deadline = NowMs() + 200;
    bool resumed = false;
    while (!resumed) {
      const int64_t left = deadline - NowMs();
      if (left <= 0) throw link::LinkError("no resume message from the shadow");
      uint8_t byte;
      const ssize_t n = transport->Receive(&byte, 1, static_cast<int>(left));
      if (n < 0) throw link::LinkError("the shadow closed the new link");
      channel->Feed(&byte, static_cast<size_t>(n));
      for (;;) {
        const auto st = channel->Next(&m);
        if (st == link::SecureChannel::Status::kNeedMore) break;
        if (st == link::SecureChannel::Status::kRefused) throw link::LinkError(channel->error());
        if (m.type == link::MessageType::kResume) {
          resumed = true;
          break;
        }
        if (m.type != link::MessageType::kHeartbeat)
          throw link::LinkError(std::string("a ") + link::MessageTypeName(static_cast<uint8_t>(m.type)) +
                                " message before the shadow's resume");
      }
    }
  } catch (const link::LinkError& e) {
    *why = e.what();
    return Resumed::kRetry;
  }
  // The stream again from the shadow's count, in order, before anything new (log_mu_ holds
  // the machine thread's writes back meanwhile).
  std::lock_guard<std::mutex> log_lock(log_mu_);
  const uint64_t held = m.aux, end = offset_.load();
  const uint64_t kept_from = resend_.empty() ? end : resend_.front().offset;
  if (held > end || held < kept_from || held < acked_offset_.load()) {
    *why = "the shadow holds " + std::to_string(held) + " stream bytes; this primary sent " + std::to_string(end) +
           " and keeps them from " + std::to_string(kept_from);
    return Resumed::kImpossible;
  }
  std::lock_guard<std::mutex> send_lock(send_mu_);
  transport_ = std::move(transport);
  channel_ = std::move(channel);
  auto send = [&](link::MessageType type, uint64_t icount, uint64_t aux, std::span<const uint8_t> payload) {
    const std::vector<uint8_t> out = channel_->Seal(type, icount, aux, payload);
    if (!transport_->Send(out.data(), out.size(), options_.send_timeout_ms)) return false;
    figures_.Count("link_bytes_sent", out.size());
    figures_.Count("messages_sent");
    return true;
  };
  uint64_t resent = 0;
  for (const Chunk& c : resend_) {
    if (c.offset + c.bytes.size() <= held) continue;
    const size_t skip = held > c.offset ? static_cast<size_t>(held - c.offset) : 0;
    if (!send(link::MessageType::kLog, c.sync, c.offset + skip, std::span<const uint8_t>(c.bytes).subspan(skip))) {
      *why = "cannot send to " + describe_;
      return Resumed::kRetry;
    }
    resent += c.bytes.size() - skip;
  }
  // The sync icount now (a mark may have been skipped while the link was down), and a
  // relocation that may not have arrived.
  if (!send(link::MessageType::kLog, sync_.load(), end, {}) ||
      (relocating_ && !send(link::MessageType::kRelocate, relocate_icount_, relocate_end_, relocate_stamp_))) {
    *why = "cannot send to " + describe_;
    return Resumed::kRetry;
  }
  figures_.Count("reconnects");
  figures_.Count("log_bytes_resent", resent);
  reconnects_.fetch_add(1);
  last_heard_ms_.store(NowMs());
  down_.store(false);
  *why = "resent " + std::to_string(resent) + " bytes from stream offset " + std::to_string(held);
  return Resumed::kDone;
}

void PrimaryLink::TrimResend(uint64_t acked) {
  while (!resend_.empty() && resend_.front().offset + resend_.front().bytes.size() <= acked) {
    resend_bytes_ -= resend_.front().bytes.size();
    resend_.pop_front();
  }
}

void PrimaryLink::AfterLoss() {
  if (options_.on_loss != ShadowLossPolicy::kContinue || console_.unprotected()) return;
  if (NowMs() - lost_at_ms_.load() < options_.continue_after_ms) return;
  const uint64_t held = console_.held();
  console_.ReleaseUnprotected();
  std::fprintf(stderr,
               "vmrr record: WARNING: no shadow: releasing console output UNPROTECTED from byte %" PRIu64
               " on (%" PRIu64 " bytes were held); if this primary fails now its output can be lost, and a "
               "shadow that is alive but cut off would take over as a second primary\n",
               console_.released() - held, held);
}

void PrimaryLink::SendSealed(link::MessageType type, uint64_t icount, uint64_t aux, std::span<const uint8_t> payload) {
  std::lock_guard<std::mutex> lock(send_mu_);
  // While the link is down the stream is kept (resend_) and sent again on reconnection.
  if (lost_.load() || relocated_.load() || down_.load()) return;
  const std::vector<uint8_t> m = channel_->Seal(type, icount, aux, payload);
  if (!transport_->Send(m.data(), m.size(), options_.send_timeout_ms)) {
    Break("cannot send to " + describe_);
    return;
  }
  figures_.Count("link_bytes_sent", m.size());
  figures_.Count("messages_sent");
}

void PrimaryLink::SendLog(std::span<const uint8_t> bytes, uint64_t sync_icount) {
  std::lock_guard<std::mutex> lock(log_mu_);
  SendLogLocked(bytes, sync_icount);
}

void PrimaryLink::RequestMark(uint64_t icount) {
  std::lock_guard<std::mutex> lock(log_mu_);
  if (icount <= sync_.load()) return;
  if (mark_in_flight_ != 0) {
    pending_mark_ = std::max(pending_mark_, icount);
    return;
  }
  SendLogLocked({}, icount);
  mark_in_flight_ = icount;
}

void PrimaryLink::MarkAcknowledged(uint64_t icount) {
  std::lock_guard<std::mutex> lock(log_mu_);
  TrimResend(acked_offset_.load());
  if (mark_in_flight_ == 0 || icount < mark_in_flight_) return;
  mark_in_flight_ = 0;
  if (pending_mark_ > sync_.load()) {
    SendLogLocked({}, pending_mark_);
    mark_in_flight_ = pending_mark_;
  }
  pending_mark_ = 0;
}

void PrimaryLink::SendLogLocked(std::span<const uint8_t> bytes, uint64_t sync_icount) {
  uint64_t sync = std::max(sync_.load(), sync_icount);
  do {
    const size_t n = std::min<size_t>(bytes.size(), link::kMaxPayload);
    if (n > 0 && !lost_.load()) {  // before the send: its Ack may come at once
      figures_.Count("log_bytes_sent", n);
      std::lock_guard<std::mutex> lock(unacked_mu_);
      if (unacked_.size() < 100'000) unacked_.emplace_back(offset_.load() + n, NowNs());
    }
    if (n > 0 && resumable_ && !resend_overflow_.load()) {
      if (resend_bytes_ + n > kMaxResendBytes) {  // the link can no longer be resumed
        resend_overflow_.store(true);
        resend_.clear();
        resend_bytes_ = 0;
      } else {
        resend_.push_back(Chunk{offset_.load(), std::vector<uint8_t>(bytes.begin(), bytes.begin() + n), sync});
        resend_bytes_ += n;
      }
    }
    SendSealed(link::MessageType::kLog, sync, offset_.load(), bytes.first(n));
    offset_.fetch_add(n);
    bytes = bytes.subspan(n);
  } while (!bytes.empty());
  sync_.store(sync);
}

void PrimaryLink::Loop() {
  uint8_t buf[64 * 1024];
  link::Message m;
  int64_t next_heartbeat = 0;
  int64_t last_heartbeat_ns = 0;
  while (!stop_.load()) {
    if (relocated_.load()) {  // the shadow is the primary now: nothing more to say or hear
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (lost_.load()) {
      AfterLoss();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (down_.load()) {
      std::string why;
      const Resumed r = Reconnect(&why);
      if (r == Resumed::kDone) {
        std::fprintf(stderr, "vmrr record: the link to the shadow is open again (%s)\n", why.c_str());
        next_heartbeat = 0;
      } else if (r == Resumed::kImpossible) {
        Lose("the link broke and cannot be resumed: " + why);
      } else if (NowMs() - down_since_ms_.load() > options_.shadow_timeout_ms) {
        std::lock_guard<std::mutex> lock(down_mu_);
        Lose("the link broke (" + down_why_ + ") and could not be opened again within " +
             std::to_string(options_.shadow_timeout_ms) + " ms: " + why);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      continue;
    }
    const int64_t now = NowMs();
    if (now >= next_heartbeat || heartbeat_now_.exchange(false)) {
      SendSealed(link::MessageType::kHeartbeat, sync_.load(), console_.released(), HeartbeatPayload());
      next_heartbeat = now + options_.heartbeat_ms;
      const int64_t ns = NowNs();
      if (last_heartbeat_ns) figures_.Sample("heartbeat_interval", ns - last_heartbeat_ns);
      last_heartbeat_ns = ns;
    }
    if (now - last_heard_ms_.load() > options_.shadow_timeout_ms)
      Lose("silent for more than " + std::to_string(options_.shadow_timeout_ms) + " ms");
    const ssize_t n = transport_->Receive(buf, sizeof buf, 5);
    if (n < 0) {
      Break(describe_ + " closed");
      continue;
    }
    if (n == 0) continue;
    channel_->Feed(buf, static_cast<size_t>(n));
    for (;;) {
      const auto st = channel_->Next(&m);
      if (st == link::SecureChannel::Status::kNeedMore) break;
      if (st == link::SecureChannel::Status::kRefused) {
        Break(channel_->error());
        break;
      }
      if (m.type == link::MessageType::kAck) {
        last_heard_ms_.store(NowMs());
        acked_offset_.store(std::max(acked_offset_.load(), m.aux));
        acked_icount_.store(std::max(acked_icount_.load(), m.icount));
        console_.Acknowledged(m.aux, m.icount);
        MarkAcknowledged(m.icount);
        const int64_t ns = NowNs();
        std::lock_guard<std::mutex> lock(unacked_mu_);
        while (!unacked_.empty() && unacked_.front().first <= m.aux) {
          // The shadow acknowledges nothing before its replay has started (the log's header and
          // first snapshot): the lag is measured from its first Ack on.
          if (acked_once_) figures_.Sample("lag", ns - unacked_.front().second);
          unacked_.pop_front();
        }
        acked_once_ = true;
      } else if (m.type == link::MessageType::kHeartbeat) {
        last_heard_ms_.store(NowMs());
        shadow_icount_.store(m.icount);
      } else {
        Lose(std::string("unexpected ") + link::MessageTypeName(static_cast<uint8_t>(m.type)) + " message from the shadow");
      }
    }
  }
}

// A heartbeat's and a goodbye's payload: the network frames released so far (8 bytes LE), so
// that a shadow taking over sends again only the frames after them.
std::vector<uint8_t> PrimaryLink::FramesReleased() const {
  std::vector<uint8_t> p(8);
  StoreLe(p.data(), console_.frames_released(), 8);
  return p;
}

// A heartbeat's payload: FramesReleased(), then a flags byte (bit 0: a relocation is being
// prepared: report the replay's progress often). A shadow that reads only the first 8 bytes
// ignores the flags.
std::vector<uint8_t> PrimaryLink::HeartbeatPayload() const {
  std::vector<uint8_t> p = FramesReleased();
  p.push_back(preparing_.load() ? uint8_t{1} : uint8_t{0});
  return p;
}

bool PrimaryLink::Finish(int timeout_ms) {
  const int64_t deadline =
      NowMs() + timeout_ms + (options_.on_loss == ShadowLossPolicy::kContinue ? options_.continue_after_ms : 0);
  while (!console_.WaitAllReleased(20)) {
    if (lost_.load() && options_.on_loss == ShadowLossPolicy::kHold) return false;
    if (NowMs() >= deadline) return false;
  }
  // A link being opened again: the goodbye goes once it is open (or the shadow is lost).
  while (down_.load() && !lost_.load() && NowMs() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  SendSealed(link::MessageType::kBye, sync_.load(), console_.released(), FramesReleased());  // nothing once lost
  return true;
}

bool PrimaryLink::Relocate(uint64_t icount, int64_t stopped_at_ns, int timeout_ms, std::string* error) {
  uint64_t end = 0;
  {
    std::lock_guard<std::mutex> lock(log_mu_);
    uint8_t stamp[8];
    for (int i = 0; i < 8; ++i) stamp[i] = static_cast<uint8_t>(static_cast<uint64_t>(stopped_at_ns) >> (8 * i));
    end = offset_.load();
    sync_.store(std::max(sync_.load(), icount));
    relocating_ = true;
    relocate_icount_ = icount;
    relocate_end_ = end;
    std::copy(std::begin(stamp), std::end(stamp), relocate_stamp_.begin());
    SendSealed(link::MessageType::kRelocate, icount, end, {stamp, sizeof stamp});
  }
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    if (lost_.load()) {
      *error = "the shadow was lost before it acknowledged the relocation";
      return false;
    }
    if (acked_offset_.load() >= end && acked_icount_.load() >= icount && console_.WaitAllReleased(1)) break;
    if (NowMs() >= deadline) {
      *error = "the shadow did not acknowledge the relocation within " + std::to_string(timeout_ms) + " ms";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  relocated_.store(true);
  return true;
}

void ReplicatingSink::Write(const uint8_t* data, size_t size) {
  inner_->Write(data, size);
  if (detached_) return;
  uint64_t sync = noted_;
  if (size >= log::kFrameHeaderSize && std::memcmp(data, log::kFrameMagic.data(), 4) == 0)
    sync = std::max(sync, LoadLe(data + 24, 8));
  link_.SendLog({data, size}, sync);
}

void ReplicatingSink::SendMark() {
  if (detached_) return;
  if (noted_ > link_.sync_icount()) link_.RequestMark(noted_);
}

}  // namespace vmrr
