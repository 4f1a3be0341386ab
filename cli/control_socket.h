// The primary's control socket (`vmrr record --control unix:PATH`) and its client (`vmrr
// relocate unix:PATH`): a Unix stream socket, mode 0600 (only the user who runs the primary may
// command it), one request per connection: a command line in, one reply line out.
// Commands: "relocate" (planned relocation to the shadow; the reply says where it stopped).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace vmrr::cli {

// "unix:PATH" -> PATH; false (and *error) for anything else.
bool ParseControlUrl(const std::string& url, std::string* path, std::string* error);

class ControlSocket {
 public:
  // Listens on `url` (a stale socket file there is replaced) and answers each request with
  // handler(command) on its own thread. Throws std::runtime_error if it cannot listen.
  ControlSocket(const std::string& url, std::function<std::string(const std::string&)> handler);
  ~ControlSocket();  // stops answering and removes the socket file
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

 private:
  void Loop();

  std::string path_;
  std::function<std::string(const std::string&)> handler_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Sends `command` to the control socket at `url` and returns the reply line (without its
// newline). A socket not there yet (or refusing) is tried again for connect_wait_ms. Throws
// std::runtime_error if the socket cannot be reached or gives no reply within timeout_ms.
std::string ControlRequest(const std::string& url, const std::string& command, int timeout_ms,
                           int connect_wait_ms = 0);

}  // namespace vmrr::cli
