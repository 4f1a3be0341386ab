// ControlSocket and ControlRequest: the primary's Unix control socket.
#include "cli/control_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace vmrr::cli {
namespace {

constexpr size_t kMaxLine = 256;

sockaddr_un Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool ParseControlUrl(const std::string& url, std::string* path, std::string* error) {
  if (url.rfind("unix:", 0) != 0 || url.size() == 5) {
    *error = "a control socket is unix:PATH, not '" + url + "'";
    return false;
  }
  *path = url.substr(5);
  if (path->size() >= sizeof(sockaddr_un{}.sun_path)) {
    *error = "the socket path is longer than " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes";
    return false;
  }
  return true;
}

ControlSocket::ControlSocket(const std::string& url, std::function<std::string(const std::string&)> handler)
    : handler_(std::move(handler)) {
  std::string error;
  if (!ParseControlUrl(url, &path_, &error)) throw std::runtime_error(error);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(url + ": " + std::strerror(errno));
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path_.c_str());  // a stale one
  const sockaddr_un a = Address(path_);
  const mode_t old = ::umask(077);
  const int b = ::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (b != 0 || ::listen(fd_, 4) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    throw std::runtime_error(url + ": cannot listen: " + why);
  }
  thread_ = std::thread([this] { Loop(); });
}

ControlSocket::~ControlSocket() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
  ::unlink(path_.c_str());
}

void ControlSocket::Loop() {
  while (!stop_.load()) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string line;
    const int64_t deadline = NowMs() + 2000;
    char ch = 0;
    while (line.size() < kMaxLine && NowMs() < deadline) {
      pollfd q{c, POLLIN, 0};
      if (::poll(&q, 1, 100) <= 0) continue;
      if (::read(c, &ch, 1) != 1 || ch == '\n') break;
      line.push_back(ch);
    }
    const std::string reply = handler_(line) + "\n";
    if (::send(c, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) {
      // the client went away: nothing to tell it
    }
    ::close(c);
  }
}

std::string ControlRequest(const std::string& url, const std::string& command, int timeout_ms,
                           int connect_wait_ms) {
  std::string path, error;
  if (!ParseControlUrl(url, &path, &error)) throw std::runtime_error(error);
  const sockaddr_un a = Address(path);
  const int64_t give_up = NowMs() + connect_wait_ms;
  int fd = -1;
  for (;;) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::strerror(errno));
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) break;
    const int e = errno;
    ::close(fd);
    if ((e == ENOENT || e == ECONNREFUSED) && NowMs() < give_up) {
      ::usleep(2000);
      continue;
    }
    throw std::runtime_error(url + ": cannot connect: " + std::strerror(e) + " (is a primary running with --control " +
                             url + "?)");
  }
  const std::string line = command + "\n";
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    ::close(fd);
    throw std::runtime_error(url + ": cannot send the request");
  }
  std::string reply;
  const int64_t deadline = NowMs() + timeout_ms;
  char buf[256];
  for (;;) {
    const int64_t left = deadline - NowMs();
    if (left <= 0) {
      ::close(fd);
      throw std::runtime_error(url + ": no reply within " + std::to_string(timeout_ms) + " ms");
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
    if (reply.find('\n') != std::string::npos || reply.size() > 4096) break;
  }
  ::close(fd);
  if (reply.empty()) throw std::runtime_error(url + ": the primary closed the connection without a reply");
  const size_t nl = reply.find('\n');
  return nl == std::string::npos ? reply : reply.substr(0, nl);
}

}  // namespace vmrr::cli
