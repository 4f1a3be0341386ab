// ShadowLink: the shadow's link thread.
#include "cli/shadow_link.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "logformat/byte_order.h"

namespace vmrr::cli {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ShadowLink::ShadowLink(std::unique_ptr<link::Transport> transport, const link::Key& key, Options options)
    : transport_(std::move(transport)),
      channel_(std::make_unique<link::SecureChannel>(key, link::Role::kShadow)),
      key_(key),
      describe_(transport_->Describe()),
      options_(options) {
  const std::vector<uint8_t> hello = channel_->Hello();
  if (!transport_->Send(hello.data(), hello.size(), 5000)) throw link::LinkError("the primary did not take the hello");
  last_heard_ns_.store(NowNs());
  thread_ = std::thread([this] { Loop(); });
}

ShadowLink::~ShadowLink() { Stop(); }

void ShadowLink::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ShadowLink::Take(Received* out) {
  std::lock_guard<std::mutex> lock(mu_);
  out->logs = std::move(inbox_.logs);
  inbox_.logs.clear();
  out->released = std::max(out->released, inbox_.released);
  out->frames_released = std::max(out->frames_released, inbox_.frames_released);
  out->bye = out->bye || inbox_.bye;
  if (inbox_.relocate && !out->relocate) {
    out->relocate = true;
    out->relocate_icount = inbox_.relocate_icount;
    out->relocate_stopped_ns = inbox_.relocate_stopped_ns;
  }
}

void ShadowLink::WaitForMore(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
               [&] { return !inbox_.logs.empty() || inbox_.bye || inbox_.relocate || !failure_.empty(); });
}

std::string ShadowLink::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

bool ShadowLink::Handle(const link::Message& m) {
  switch (m.type) {
    case link::MessageType::kHello: break;  // the handshake
    case link::MessageType::kLog: {
      if (m.aux != received_bytes_) {
        std::fprintf(stderr,
                     "vmrr shadow: log bytes at stream offset %llu, expected %llu; the link is no longer trusted\n",
                     static_cast<unsigned long long>(m.aux), static_cast<unsigned long long>(received_bytes_));
        return false;
      }
      if (options_.log_fd >= 0 && !m.payload.empty()) {
        const uint8_t* p = m.payload.data();
        size_t n = m.payload.size();
        while (n > 0) {
          const ssize_t w = ::write(options_.log_fd, p, n);
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) {
            std::lock_guard<std::mutex> lock(mu_);
            failure_ = std::string("the log copy: write failed: ") + std::strerror(errno);
            cv_.notify_all();
            return false;
          }
          p += w;
          n -= static_cast<size_t>(w);
        }
      }
      received_bytes_ += m.payload.size();
      sync_icount_ = std::max(sync_icount_, m.icount);
      std::lock_guard<std::mutex> lock(mu_);
      inbox_.logs.push_back(Received::Log{m.payload, m.icount});
      cv_.notify_all();
      break;
    }
    case link::MessageType::kHeartbeat: {
      const int64_t ns = NowNs();
      if (options_.figures && last_heartbeat_ns_) options_.figures->Sample("heartbeat_gap", ns - last_heartbeat_ns_);
      last_heartbeat_ns_ = ns;
      std::lock_guard<std::mutex> lock(mu_);
      inbox_.released = std::max(inbox_.released, m.aux);
      if (m.payload.size() >= 8) inbox_.frames_released = std::max(inbox_.frames_released, LoadLe(m.payload.data(), 8));
      report_often_ = m.payload.size() >= 9 && (m.payload[8] & 1);
      break;
    }
    case link::MessageType::kBye: {
      bye_ = true;
      std::lock_guard<std::mutex> lock(mu_);
      inbox_.bye = true;
      inbox_.released = std::max(inbox_.released, m.aux);
      if (m.payload.size() == 8) inbox_.frames_released = std::max(inbox_.frames_released, LoadLe(m.payload.data(), 8));
      cv_.notify_all();
      break;
    }
    case link::MessageType::kRelocate: {
      if (m.aux != received_bytes_ || relocating_) {
        std::fprintf(stderr,
                     "vmrr shadow: relocation at stream offset %llu, the stream holds %llu; the link is no longer "
                     "trusted\n",
                     static_cast<unsigned long long>(m.aux), static_cast<unsigned long long>(received_bytes_));
        return false;
      }
      sync_icount_ = std::max(sync_icount_, m.icount);
      relocating_ = true;
      relocate_icount_ = m.icount;
      uint64_t ns = 0;
      for (size_t i = 0; i < 8 && i < m.payload.size(); ++i) ns |= uint64_t{m.payload[i]} << (8 * i);
      relocate_stopped_ns_ = static_cast<int64_t>(ns);
      break;
    }
    case link::MessageType::kAck:     // not the primary's to send
    case link::MessageType::kResume:
      break;
  }
  last_heard_ns_.store(NowNs());
  return true;
}

bool ShadowLink::Reaccept() {
  std::unique_ptr<link::Transport> t = options_.listener->Accept(20);
  if (!t) return false;
  auto channel = std::make_unique<link::SecureChannel>(key_, link::Role::kShadow);
  const std::vector<uint8_t> hello = channel->Hello();
  if (!t->Send(hello.data(), hello.size(), 100)) return false;
  transport_ = std::move(t);
  channel_ = std::move(channel);
  return true;
}

void ShadowLink::Loop() {
  std::vector<uint8_t> buf(64 * 1024);
  link::Message m;
  uint64_t acked_bytes = 0, acked_icount = 0;
  int64_t next_heartbeat = 0, last_heartbeat = 0;
  uint64_t reported = 0;  // the replayed icount the last heartbeat carried
  bool trusted = true;
  bool closed = false;
  bool resume_due = false;       // a new connection: Resume goes first after its hello
  int64_t accepted_ns = 0;
  while (!stop_.load()) {
    if ((!trusted || closed) && options_.listener && !bye_ && !relocating_) {
      // The link broke: closed at once, so that the primary sees it and connects again (or
      // it is dead, and the silence ends in a takeover).
      transport_.reset();
      if (!Reaccept()) continue;
      trusted = true;
      closed = false;
      resume_due = true;
      accepted_ns = NowNs();
      continue;
    }
    if (resume_due && !channel_->established() && NowNs() - accepted_ns > 1'000'000'000) {
      trusted = false;  // a connection that never says a valid hello: wait for another
      continue;
    }
    if (trusted && !closed && !relocating_) {
      const ssize_t n = transport_->Receive(buf.data(), buf.size(), 2);
      if (n < 0) closed = true;  // the primary's end is gone: nothing more comes on it
      if (n > 0) {
        channel_->Feed(buf.data(), static_cast<size_t>(n));
        for (;;) {
          const auto st = channel_->Next(&m);
          if (st == link::SecureChannel::Status::kNeedMore) break;
          if (st == link::SecureChannel::Status::kRefused) {
            std::fprintf(stderr, "vmrr shadow: %s; the link is no longer trusted%s\n", channel_->error().c_str(),
                         options_.listener ? ": waiting for the primary to connect again" : "");
            trusted = false;
            break;
          }
          if (!Handle(m)) {
            trusted = false;
            break;
          }
        }
        if (!trusted) refused_.store(true);
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (!relocating_ || !trusted) continue;  // a relocation still waits for its acknowledgement
    }
    if (!channel_->established()) continue;
    if (resume_due) {
      const auto r = channel_->Seal(link::MessageType::kResume, sync_icount_, received_bytes_);
      if (!transport_->Send(r.data(), r.size(), 100)) {
        closed = true;
        continue;
      }
      resume_due = false;
      acked_bytes = ~uint64_t{0};  // acknowledge again on this connection what is held
      reconnects_.fetch_add(1);
      if (options_.figures) options_.figures->Count("reconnects");
      std::fprintf(stderr, "vmrr shadow: the primary connected again; resuming the stream at byte %llu\n",
                   static_cast<unsigned long long>(received_bytes_));
    }
    // Acknowledge at once what is held; heartbeat.
    if (acks_.load() && (received_bytes_ != acked_bytes || sync_icount_ != acked_icount)) {
      acked_bytes = received_bytes_;
      acked_icount = sync_icount_;
      const auto a = channel_->Seal(link::MessageType::kAck, acked_icount, acked_bytes);
      transport_->Send(a.data(), a.size(), 100);
    }
    if (relocating_ && acks_.load()) {
      // Acknowledged (the primary releases its last output and stops): the replay may go live.
      std::lock_guard<std::mutex> lock(mu_);
      if (!inbox_.relocate) {
        inbox_.relocate = true;
        inbox_.relocate_icount = relocate_icount_;
        inbox_.relocate_stopped_ns = relocate_stopped_ns_;
        cv_.notify_all();
      }
      continue;
    }
    const int64_t now = NowNs();
    // A heartbeat carries the replayed icount. One goes early (at most every millisecond) when
    // the replay has caught up with everything held: a primary preparing a relocation waits
    // for exactly that, and a CPU-bound guest's shadow catches up about once per frame.
    const uint64_t replayed = replayed_.load();
    // While the primary prepares a relocation (its heartbeats say so) it goes every millisecond.
    const bool early = replayed != reported && (replayed >= sync_icount_ || report_often_) &&
                       now - last_heartbeat >= 1'000'000;
    if (now >= next_heartbeat || early) {
      const auto h = channel_->Seal(link::MessageType::kHeartbeat, replayed, 0);
      transport_->Send(h.data(), h.size(), 100);
      reported = replayed;
      last_heartbeat = now;
      next_heartbeat = now + int64_t{options_.heartbeat_ms} * 1'000'000;
    }
  }
}

}  // namespace vmrr::cli
