// LiveEnvironment: the Environment backed by the real host. Time from clock_gettime, console
// input from stdin (non-blocking; raw mode if stdin is a terminal, restored on destruction),
// console output to stdout, network frames as UDP datagrams on loopback, entropy from
// getrandom. Host failures are EnvironmentError with a message naming what to fix.
#pragma once

#include <termios.h>

#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>

#include "hv-hooks/environment.h"

namespace vmrr {

class EnvironmentError : public std::runtime_error {
 public:
  enum class Code { kNetSocket, kNetBind, kNetConnect, kConsole, kEntropy };
  EnvironmentError(Code code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

struct LiveEnvironmentOptions {
  int console_in_fd = 0;   // stdin
  int console_out_fd = 1;  // stdout
  // Network: a UDP socket bound to 127.0.0.1:net_local_port and connected to
  // 127.0.0.1:net_peer_port; each datagram is one Ethernet frame. Port 0 = no network.
  uint16_t net_local_port = 0;
  uint16_t net_peer_port = 0;
};

class LiveEnvironment : public Environment {
 public:
  explicit LiveEnvironment(const LiveEnvironmentOptions& options);
  ~LiveEnvironment() override;
  LiveEnvironment(const LiveEnvironment&) = delete;
  LiveEnvironment& operator=(const LiveEnvironment&) = delete;

  int64_t SampleTime(uint64_t icount) override;
  std::vector<uint8_t> PollConsoleInput(uint64_t icount, size_t max_bytes) override;
  bool PollNetFrame(uint64_t icount, std::vector<uint8_t>* frame) override;
  void GetEntropy(uint64_t icount, std::span<uint8_t> out) override;
  void ConsoleOutput(uint64_t icount, std::span<const uint8_t> bytes) override;
  void NetFrameSent(uint64_t icount, std::span<const uint8_t> frame) override;
  bool WaitForInput(uint64_t icount, int64_t deadline_host_ns) override;

  // Monotonic-to-wall conversion is not needed: SampleTime and WaitForInput both use
  // CLOCK_REALTIME, so a deadline from VirtualClock::HostTimeForDeadline is directly usable.
  static int64_t HostNowNs();

 private:
  LiveEnvironmentOptions options_;
  int net_fd_ = -1;
  bool console_eof_ = false;
  bool restore_tty_ = false;
  int saved_in_flags_ = -1;
  termios saved_tty_{};
};

}  // namespace vmrr
