// The shadow's end of the replication link (`vmrr shadow`): a thread that reads the primary's
// messages, authenticates them (SecureChannel), checks that log bytes arrive at the stream
// offset they claim, keeps the optional --log copy, acknowledges at once how far it holds the
// log (stream bytes, and the primary's sync icount), and sends heartbeats. The replay runs on
// the caller's thread and takes what arrived with Take: so acknowledgements never wait for a
// replay step (the log received is the commit condition, not the log replayed), and a replay
// slowed by a loaded host does not delay the primary's output.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "replication/channel.h"
#include "replication/link_figures.h"
#include "replication/transport.h"

namespace vmrr::cli {

class ShadowLink {
 public:
  struct Options {
    int heartbeat_ms = 20;
    int log_fd = -1;  // the received log bytes are also written here
    link::LinkFigures* figures = nullptr;
    // TCP: when the link breaks (a message refused, the connection closed) the primary's next
    // connection is accepted here, and after its hello this side says how much of the stream
    // it holds (Resume); the primary sends the rest again. Null (shm): a broken link stays
    // broken, and the primary looks silent.
    link::Listener* listener = nullptr;
  };
  // What arrived since the last Take.
  struct Received {
    struct Log {
      std::vector<uint8_t> bytes;
      uint64_t sync_icount;
    };
    std::vector<Log> logs;
    uint64_t released = 0;  // console bytes the primary has released (it only grows)
    uint64_t frames_released = 0;  // network frames the primary has released (it only grows)
    bool bye = false;       // the primary finished and released everything
    // Planned relocation: the primary stopped at relocate_icount and was acknowledged; nothing
    // more is read. relocate_stopped_ns: the primary's steady clock at its stop.
    bool relocate = false;
    uint64_t relocate_icount = 0;
    int64_t relocate_stopped_ns = 0;
  };

  // Sends this side's hello and starts the thread; throws link::LinkError if the hello cannot go.
  ShadowLink(std::unique_ptr<link::Transport> transport, const link::Key& key, Options options);
  ~ShadowLink();
  ShadowLink(const ShadowLink&) = delete;
  ShadowLink& operator=(const ShadowLink&) = delete;

  // Moves what arrived into *out (its logs are replaced; released and bye only grow).
  void Take(Received* out);
  // Waits at most timeout_ms for something new.
  void WaitForMore(int timeout_ms);
  // Steady-clock ns of the last valid message (the hello's sending before the first).
  int64_t last_heard_ns() const { return last_heard_ns_.load(); }
  // From now on what is held is acknowledged (before: heartbeats only). Called once the replay
  // has started: a shadow that cannot replay the log (another disk image) must never let the
  // primary release output.
  void EnableAcks() { acks_.store(true); }
  // The icount the shadow's replay has reached, carried by its heartbeats.
  void set_replayed_icount(uint64_t icount) { replayed_.store(icount); }
  // A message was refused (on this connection or an earlier one).
  bool refused() const { return refused_.load(); }
  // Connections accepted again after the link broke.
  uint64_t reconnects() const { return reconnects_.load(); }
  // The --log copy could not be written: the shadow cannot go on.
  std::string failure() const;
  std::string Describe() const { return describe_; }
  // Stops the thread (a takeover: nothing more is read or acknowledged).
  void Stop();

 private:
  void Loop();
  bool Handle(const link::Message& m);  // false: the link is no longer trusted
  // Link thread: a new connection from the listener, with this side's hello sent; false if
  // none came yet.
  bool Reaccept();

  std::unique_ptr<link::Transport> transport_;  // link thread only (after construction)
  std::unique_ptr<link::SecureChannel> channel_;
  link::Key key_;
  std::string describe_;
  Options options_;
  std::atomic<uint64_t> reconnects_{0};
  bool bye_ = false;  // link thread only: the primary said goodbye
  std::atomic<int64_t> last_heard_ns_{0};
  std::atomic<uint64_t> replayed_{0};
  std::atomic<bool> refused_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> acks_{false};
  uint64_t received_bytes_ = 0;  // link thread only
  uint64_t sync_icount_ = 0;     // link thread only
  bool report_often_ = false;    // link thread only: the primary prepares a relocation
  bool relocating_ = false;      // link thread only: a Relocate came, to publish once acknowledged
  uint64_t relocate_icount_ = 0;
  int64_t relocate_stopped_ns_ = 0;
  int64_t last_heartbeat_ns_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Received inbox_;
  std::string failure_;
  std::thread thread_;
};

}  // namespace vmrr::cli
