// TCP and shared-memory ring transports for the replication link.
#include "replication/transport.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <new>
#include <thread>

namespace vmrr::link {
namespace {

namespace bip = boost::interprocess;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// allow_zero: port 0, for a listener (the system picks a free port).
bool SplitHostPort(const std::string& rest, std::string* host, std::string* port, std::string* error,
                   bool allow_zero = false) {
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) {
    *error = "expected tcp:HOST:PORT";
    return false;
  }
  *host = rest.substr(0, colon);
  *port = rest.substr(colon + 1);
  for (char c : *port)
    if (c < '0' || c > '9') {
      *error = "the port of tcp:HOST:PORT is not a number";
      return false;
    }
  if (port->size() > 5 || (std::stoul(*port) == 0 && !allow_zero) || std::stoul(*port) > 65535) {
    *error = allow_zero ? "the port of tcp:HOST:PORT must be 0..65535" : "the port of tcp:HOST:PORT must be 1..65535";
    return false;
  }
  return true;
}

bool ValidShmName(const std::string& name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

// ---- TCP --------------------------------------------------------------------------------

class TcpTransport final : public Transport {
 public:
  TcpTransport(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~TcpTransport() override { ::close(fd_); }
  void Shutdown() override { ::shutdown(fd_, SHUT_RDWR); }

  bool Send(const uint8_t* data, size_t size, int timeout_ms) override {
    const int64_t deadline = NowMs() + timeout_ms;
    while (size > 0) {
      ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        data += n;
        size -= static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
      const int64_t left = deadline - NowMs();
      if (left <= 0) return false;
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) return false;
    }
    return true;
  }

  ssize_t Receive(uint8_t* data, size_t size, int timeout_ms) override {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0) return errno == EINTR ? 0 : -1;
    if (r == 0) return 0;
    ssize_t n = ::recv(fd_, data, size, MSG_DONTWAIT);
    if (n > 0) return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    return -1;
  }

  std::string Describe() const override { return "tcp:" + peer_; }

 private:
  int fd_;
  std::string peer_;
};

class TcpListener final : public Listener {
 public:
  explicit TcpListener(const std::string& url) : url_(url) {
    std::string host, port, error;
    if (!SplitHostPort(url.substr(4), &host, &port, &error, /*allow_zero=*/true))
      throw LinkError(url + ": " + error);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    if (int e = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); e != 0)
      throw LinkError(url + ": " + gai_strerror(e));
    std::string why = "no address";
    for (addrinfo* a = res; a; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1) == 0) {
        fd_ = fd;
        break;
      }
      why = std::strerror(errno);
      ::close(fd);
    }
    freeaddrinfo(res);
    if (fd_ < 0) throw LinkError(url + ": cannot listen: " + why);
    // Port 0: the port the system chose, so that Describe() names what a primary connects to.
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    char serv[NI_MAXSERV] = "";
    if (port == "0" && ::getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &len) == 0 &&
        getnameinfo(reinterpret_cast<sockaddr*>(&bound), len, nullptr, 0, serv, sizeof serv, NI_NUMERICSERV) == 0)
      url_ = "tcp:" + host + ":" + serv;
  }
  ~TcpListener() override { ::close(fd_); }

  std::unique_ptr<Transport> Accept(int timeout_ms) override {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return nullptr;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) return nullptr;
    char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
    getnameinfo(reinterpret_cast<sockaddr*>(&peer), len, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    return std::make_unique<TcpTransport>(fd, std::string(host) + ":" + serv);
  }
  std::string Describe() const override { return url_; }

 private:
  std::string url_;
  int fd_ = -1;
};

std::unique_ptr<Transport> TcpConnect(const std::string& url, int timeout_ms) {
  std::string host, port, error;
  if (!SplitHostPort(url.substr(4), &host, &port, &error)) throw LinkError(url + ": " + error);
  const int64_t deadline = NowMs() + timeout_ms;
  std::string why = "timed out";
  for (;;) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int e = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); e != 0) {
      why = gai_strerror(e);
    } else {
      for (addrinfo* a = res; a; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
          freeaddrinfo(res);
          return std::make_unique<TcpTransport>(fd, host + ":" + port);
        }
        why = std::strerror(errno);
        ::close(fd);
      }
      freeaddrinfo(res);
    }
    if (NowMs() >= deadline) throw LinkError(url + ": cannot connect to the shadow: " + why);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// ---- shared-memory ring ---------------------------------------------------------------

constexpr uint64_t kShmMagic = 0x32474e49524d4853ull;  // "SHMRING2" (ring 1 had no futex words)
constexpr uint64_t kRingBytes = 4u << 20;               // a power of two
static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "the rings need address-free atomics");
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "a futex word is a plain 32-bit integer");

// A waiting side sleeps in the kernel on a futex word of the shared segment (a process-shared
// futex: the mapping is MAP_SHARED), woken by the other side when it moves an index: no
// polling, so two idle or busy link threads cost no CPU on a loaded host, and a wake-up is one
// system call away. Every wait is bounded: a peer that never wakes us (killed, or hostile)
// only makes us look again after at most kWaitSliceMs.
constexpr int kWaitSliceMs = 50;

struct WaitWord {
  alignas(64) std::atomic<uint32_t> seq;  // bumped by the side that makes progress
  std::atomic<uint32_t> waiters;          // sides asleep on seq (a wake is only sent to them)
};

struct Ring {
  alignas(64) std::atomic<uint64_t> head;  // bytes ever written (producer)
  alignas(64) std::atomic<uint64_t> tail;  // bytes ever read (consumer)
  alignas(64) std::atomic<uint32_t> closed;
  WaitWord data;   // the consumer waits here for head to move
  WaitWord space;  // the producer waits here for tail to move
  uint8_t data_bytes[kRingBytes];
};

struct Segment {
  uint64_t magic;
  std::atomic<uint32_t> state;  // 1: shadow listening, 2: a primary attached
  Ring to_shadow;
  Ring to_primary;
};

void Notify(WaitWord& w) {
  w.seq.fetch_add(1);
  if (w.waiters.load() != 0)
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&w.seq), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

// Sleeps until `w` is notified or timeout_ms passes, unless `ready()` is already true (checked
// after announcing the wait, so that a notification in between is never missed).
template <typename Ready>
void WaitOn(WaitWord& w, int timeout_ms, Ready ready) {
  const uint32_t seq = w.seq.load();
  w.waiters.fetch_add(1);
  if (!ready()) {
    const int ms = std::max(1, std::min(timeout_ms, kWaitSliceMs));
    timespec ts{ms / 1000, static_cast<long>(ms % 1000) * 1'000'000};
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&w.seq), FUTEX_WAIT, seq, &ts, nullptr, 0);
  }
  w.waiters.fetch_sub(1);
}

class ShmTransport final : public Transport {
 public:
  // The segment is the peer's as much as ours: every index read from it is checked.
  ShmTransport(std::shared_ptr<bip::mapped_region> region, Ring* tx, Ring* rx, std::string name)
      : region_(std::move(region)), tx_(tx), rx_(rx), name_(std::move(name)) {}
  ~ShmTransport() override {
    tx_->closed.store(1);
    Notify(tx_->data);   // a peer waiting for our bytes
    Notify(rx_->space);  // a peer waiting for room in the ring we read
  }

  bool Send(const uint8_t* data, size_t size, int timeout_ms) override {
    const int64_t deadline = NowMs() + timeout_ms;
    while (size > 0) {
      if (rx_->closed.load(std::memory_order_acquire)) return false;
      const uint64_t head = tx_->head.load(std::memory_order_relaxed);
      const uint64_t tail = tx_->tail.load(std::memory_order_acquire);
      if (head - tail > kRingBytes) return false;  // a corrupt index
      const uint64_t space = kRingBytes - (head - tail);
      if (space == 0) {
        const int64_t left = deadline - NowMs();
        if (left <= 0) return false;
        WaitOn(tx_->space, static_cast<int>(left),
               [&] { return tx_->tail.load() != tail || rx_->closed.load() != 0; });
        continue;
      }
      const uint64_t n = std::min<uint64_t>(space, size);
      for (uint64_t done = 0; done < n;) {
        const uint64_t at = (head + done) & (kRingBytes - 1);
        const uint64_t run = std::min<uint64_t>(n - done, kRingBytes - at);
        std::memcpy(tx_->data_bytes + at, data + done, run);
        done += run;
      }
      tx_->head.store(head + n);
      Notify(tx_->data);
      data += n;
      size -= n;
    }
    return true;
  }

  ssize_t Receive(uint8_t* data, size_t size, int timeout_ms) override {
    const int64_t deadline = NowMs() + timeout_ms;
    for (;;) {
      const uint64_t tail = rx_->tail.load(std::memory_order_relaxed);
      const uint64_t head = rx_->head.load(std::memory_order_acquire);
      if (head - tail > kRingBytes) return -1;  // a corrupt index
      if (head != tail) {
        const uint64_t n = std::min<uint64_t>(head - tail, size);
        for (uint64_t done = 0; done < n;) {
          const uint64_t at = (tail + done) & (kRingBytes - 1);
          const uint64_t run = std::min<uint64_t>(n - done, kRingBytes - at);
          std::memcpy(data + done, rx_->data_bytes + at, run);
          done += run;
        }
        rx_->tail.store(tail + n);
        Notify(rx_->space);
        return static_cast<ssize_t>(n);
      }
      if (rx_->closed.load(std::memory_order_acquire)) return -1;
      const int64_t left = deadline - NowMs();
      if (left <= 0 || timeout_ms <= 0) return 0;
      WaitOn(rx_->data, static_cast<int>(left),
             [&] { return rx_->head.load() != tail || rx_->closed.load() != 0; });
    }
  }

  std::string Describe() const override { return "shm:" + name_; }

 private:
  std::shared_ptr<bip::mapped_region> region_;
  Ring* tx_;
  Ring* rx_;
  std::string name_;
};

std::string ShmObjectName(const std::string& name) { return "vmrr-link-" + name; }

class ShmListener final : public Listener {
 public:
  explicit ShmListener(const std::string& name) : name_(name), object_name_(ShmObjectName(name)) {
    if (!ValidShmName(name)) throw LinkError("shm:" + name + ": the name may hold only A-Z a-z 0-9 . _ -");
    bip::shared_memory_object::remove(object_name_.c_str());  // a stale one of a dead shadow
    try {
      bip::shared_memory_object shm(bip::create_only, object_name_.c_str(), bip::read_write);
      shm.truncate(sizeof(Segment));
      region_ = std::make_shared<bip::mapped_region>(shm, bip::read_write);
    } catch (const bip::interprocess_exception& e) {
      throw LinkError("shm:" + name + ": cannot create the shared-memory ring: " + e.what());
    }
    seg_ = new (region_->get_address()) Segment{};
    seg_->magic = kShmMagic;
    seg_->state.store(1, std::memory_order_release);
  }
  ~ShmListener() override { bip::shared_memory_object::remove(object_name_.c_str()); }

  std::unique_ptr<Transport> Accept(int timeout_ms) override {
    const int64_t deadline = timeout_ms < 0 ? INT64_MAX : NowMs() + timeout_ms;
    while (seg_->state.load(std::memory_order_acquire) != 2) {
      if (NowMs() >= deadline) return nullptr;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (accepted_) return nullptr;  // one primary per ring
    accepted_ = true;
    return std::make_unique<ShmTransport>(region_, &seg_->to_primary, &seg_->to_shadow, name_);
  }
  std::string Describe() const override { return "shm:" + name_; }

 private:
  std::string name_;
  std::string object_name_;
  std::shared_ptr<bip::mapped_region> region_;
  Segment* seg_ = nullptr;
  bool accepted_ = false;
};

std::unique_ptr<Transport> ShmConnect(const std::string& name, int timeout_ms) {
  if (!ValidShmName(name)) throw LinkError("shm:" + name + ": the name may hold only A-Z a-z 0-9 . _ -");
  const int64_t deadline = NowMs() + timeout_ms;
  std::string why;
  for (;;) {
    try {
      bip::shared_memory_object shm(bip::open_only, ShmObjectName(name).c_str(), bip::read_write);
      bip::offset_t size = 0;
      if (shm.get_size(size) && static_cast<uint64_t>(size) >= sizeof(Segment)) {
        auto region = std::make_shared<bip::mapped_region>(shm, bip::read_write, 0, sizeof(Segment));
        auto* seg = static_cast<Segment*>(region->get_address());
        uint32_t listening = 1;
        if (seg->magic == kShmMagic && seg->state.compare_exchange_strong(listening, 2))
          return std::make_unique<ShmTransport>(region, &seg->to_shadow, &seg->to_primary, name);
        why = seg->magic == kShmMagic && listening == 2 ? "another primary is attached to this shadow"
                                                         : "not a vmrr ring";
        if (listening == 2) throw LinkError("shm:" + name + ": " + why);
      } else {
        why = "the ring is being created";
      }
    } catch (const bip::interprocess_exception& e) {
      why = std::string("no shadow listening (") + e.what() + ")";
    }
    if (NowMs() >= deadline) throw LinkError("shm:" + name + ": cannot attach: " + why);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

bool ValidLinkUrl(const std::string& url, std::string* error) {
  if (url.rfind("tcp:", 0) == 0) {
    std::string host, port;
    return SplitHostPort(url.substr(4), &host, &port, error);
  }
  if (url.rfind("shm:", 0) == 0) {
    if (ValidShmName(url.substr(4))) return true;
    *error = "shm:NAME: the name may hold only A-Z a-z 0-9 . _ - (1 to 200 characters)";
    return false;
  }
  *error = "a link is tcp:HOST:PORT or shm:NAME";
  return false;
}

std::unique_ptr<Listener> Listen(const std::string& url) {
  if (url.rfind("tcp:", 0) == 0) return std::make_unique<TcpListener>(url);  // checks HOST:PORT (0 allowed)
  std::string error;
  if (!ValidLinkUrl(url, &error)) throw LinkError(url + ": " + error);
  return std::make_unique<ShmListener>(url.substr(4));
}

std::unique_ptr<Transport> Connect(const std::string& url, int timeout_ms) {
  std::string error;
  if (!ValidLinkUrl(url, &error)) throw LinkError(url + ": " + error);
  if (url.rfind("tcp:", 0) == 0) return TcpConnect(url, timeout_ms);
  return ShmConnect(url.substr(4), timeout_ms);
}

}  // namespace vmrr::link
