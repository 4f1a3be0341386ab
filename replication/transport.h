// Transports of the replication link: a reliable, ordered byte stream between the primary and
// its shadow. `tcp:HOST:PORT` (another host; the shadow listens, the primary connects) and
// `shm:NAME` (same host: two single-producer single-consumer byte rings in a POSIX
// shared-memory object made with Boost.Interprocess; the shadow creates it, one primary
// attaches). Neither end trusts the other's bytes: the channel (channel.h) authenticates them.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "replication/key_file.h"

namespace vmrr::link {

class Transport {
 public:
  virtual ~Transport() = default;
  // Writes all bytes, waiting at most timeout_ms in total for room; false if the peer is gone
  // or the time ran out (the link is then unusable: a partial message may have gone out).
  virtual bool Send(const uint8_t* data, size_t size, int timeout_ms) = 0;
  // Reads at most `size` bytes, waiting at most timeout_ms for the first one: the count, 0 on
  // timeout, -1 when the peer closed the stream or it failed.
  virtual ssize_t Receive(uint8_t* data, size_t size, int timeout_ms) = 0;
  virtual std::string Describe() const = 0;
  // Ends the stream for both sides now (TCP: the peer reads its end at once), from any
  // thread; later Sends and Receives fail. The shared-memory ring has no such signal.
  virtual void Shutdown() {}
};

class Listener {
 public:
  virtual ~Listener() = default;
  // Waits at most timeout_ms (-1: forever) for the primary; null on timeout.
  virtual std::unique_ptr<Transport> Accept(int timeout_ms) = 0;
  virtual std::string Describe() const = 0;
};

// Throws LinkError for a malformed URL or an endpoint that cannot be used.
std::unique_ptr<Listener> Listen(const std::string& url);
// Retries until timeout_ms (the shadow may start a little later); throws LinkError then.
std::unique_ptr<Transport> Connect(const std::string& url, int timeout_ms);
// True if `url` has a form this build knows (tcp:HOST:PORT, shm:NAME).
bool ValidLinkUrl(const std::string& url, std::string* error);

}  // namespace vmrr::link
