// LiveEnvironment: host clock, stdin/stdout console, loopback UDP network, getrandom.
#include "hv-hooks/host/live_environment.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace vmrr {

namespace {
constexpr size_t kMaxFrame = 65536;

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}
}  // namespace

LiveEnvironment::LiveEnvironment(const LiveEnvironmentOptions& options) : options_(options) {
  if (options_.net_local_port != 0) {
    net_fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (net_fd_ < 0) {
      throw EnvironmentError(EnvironmentError::Code::kNetSocket,
                             std::string("network: cannot create a UDP socket: ") +
                                 std::strerror(errno));
    }
    sockaddr_in local = Loopback(options_.net_local_port);
    if (bind(net_fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      int e = errno;
      close(net_fd_);
      throw EnvironmentError(EnvironmentError::Code::kNetBind,
                             "network: cannot bind UDP 127.0.0.1:" +
                                 std::to_string(options_.net_local_port) + ": " +
                                 std::strerror(e) + " (is another vmrr using that port? choose "
                                 "another local port)");
    }
    sockaddr_in peer = Loopback(options_.net_peer_port);
    if (connect(net_fd_, reinterpret_cast<sockaddr*>(&peer), sizeof peer) != 0) {
      int e = errno;
      close(net_fd_);
      throw EnvironmentError(EnvironmentError::Code::kNetConnect,
                             "network: cannot connect UDP to 127.0.0.1:" +
                                 std::to_string(options_.net_peer_port) + ": " +
                                 std::strerror(e) + " (check the peer port)");
    }
  }
  int fd = options_.console_in_fd;
  if (fd >= 0) {
    saved_in_flags_ = fcntl(fd, F_GETFL);
    if (saved_in_flags_ >= 0) fcntl(fd, F_SETFL, saved_in_flags_ | O_NONBLOCK);
    if (isatty(fd) && tcgetattr(fd, &saved_tty_) == 0) {
      // Raw mode: the guest, not the host line discipline, sees every key (including ^C,
      // which a guest shell wants). Output processing stays on so host newlines render.
      termios raw = saved_tty_;
      raw.c_iflag &= ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR |
                                             ICRNL | IXON);
      raw.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
      raw.c_cflag |= CS8;
      // VMIN 1, not 0: with O_NONBLOCK a read with nothing typed then fails with EAGAIN, where
      // VMIN 0 returns 0, which PollConsoleInput would take for the end of the input.
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      if (tcsetattr(fd, TCSANOW, &raw) == 0) restore_tty_ = true;
    }
  }
}

LiveEnvironment::~LiveEnvironment() {
  int fd = options_.console_in_fd;
  if (restore_tty_) tcsetattr(fd, TCSANOW, &saved_tty_);
  if (saved_in_flags_ >= 0) fcntl(fd, F_SETFL, saved_in_flags_);
  if (net_fd_ >= 0) close(net_fd_);
}

int64_t LiveEnvironment::HostNowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

int64_t LiveEnvironment::SampleTime(uint64_t) { return HostNowNs(); }

std::vector<uint8_t> LiveEnvironment::PollConsoleInput(uint64_t, size_t max_bytes) {
  std::vector<uint8_t> out;
  if (options_.console_in_fd < 0 || console_eof_ || max_bytes == 0) return out;
  out.resize(max_bytes);
  ssize_t n = read(options_.console_in_fd, out.data(), max_bytes);
  if (n == 0) console_eof_ = true;  // stdin closed: stop polling it
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

bool LiveEnvironment::PollNetFrame(uint64_t, std::vector<uint8_t>* frame) {
  if (net_fd_ < 0) return false;
  frame->resize(kMaxFrame);
  ssize_t n = recv(net_fd_, frame->data(), frame->size(), 0);
  if (n < 0) {
    frame->clear();
    return false;  // EAGAIN, or ECONNREFUSED from an earlier send: no frame now
  }
  frame->resize(static_cast<size_t>(n));
  return true;
}

void LiveEnvironment::GetEntropy(uint64_t, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw EnvironmentError(EnvironmentError::Code::kEntropy,
                             std::string("entropy: getrandom failed: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
}

void LiveEnvironment::ConsoleOutput(uint64_t, std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size() && options_.console_out_fd >= 0) {
    ssize_t n = write(options_.console_out_fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{options_.console_out_fd, POLLOUT, 0};
        poll(&p, 1, 100);
        continue;
      }
      return;  // the console went away (closed pipe): the guest keeps running
    }
    done += static_cast<size_t>(n);
  }
}

void LiveEnvironment::NetFrameSent(uint64_t, std::span<const uint8_t> frame) {
  // A lost datagram is a lost frame, which Ethernet allows; no error for the guest.
  if (net_fd_ >= 0) (void)send(net_fd_, frame.data(), frame.size(), MSG_DONTWAIT);
}

bool LiveEnvironment::WaitForInput(uint64_t, int64_t deadline_host_ns) {
  pollfd fds[2];
  nfds_t n = 0;
  if (options_.console_in_fd >= 0 && !console_eof_) fds[n++] = {options_.console_in_fd, POLLIN, 0};
  if (net_fd_ >= 0) fds[n++] = {net_fd_, POLLIN, 0};
  for (;;) {
    int64_t left = deadline_host_ns - HostNowNs();
    if (left <= 0) return false;
    timespec ts{static_cast<time_t>(left / 1000000000LL), static_cast<long>(left % 1000000000LL)};
    int r = ppoll(fds, n, &ts, nullptr);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace vmrr
