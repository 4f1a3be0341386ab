// LiveEnvironment against the real host: console through pipes, UDP frames over loopback,
// getrandom, the host clock, and the blocking idle wait.
#include "hv-hooks/host/live_environment.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pty.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace vmrr {
namespace {

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
};

int BoundUdp(uint16_t* port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

uint16_t FreePort() {
  uint16_t port = 0;
  close(BoundUdp(&port));
  return port;
}

TEST(LiveEnvironment, ConsoleInputIsPolledWithoutBlockingAndBounded) {
  Pipe in, out;
  LiveEnvironmentOptions o;
  o.console_in_fd = in.r;
  o.console_out_fd = out.w;
  {
    LiveEnvironment env(o);
    EXPECT_TRUE(env.PollConsoleInput(0, 16).empty()) << "nothing typed: returns at once";
    ASSERT_EQ(write(in.w, "abc", 3), 3);
    std::vector<uint8_t> got = env.PollConsoleInput(0, 2);
    EXPECT_EQ(std::string(got.begin(), got.end()), "ab");
    got = env.PollConsoleInput(0, 16);
    EXPECT_EQ(std::string(got.begin(), got.end()), "c");
    const uint8_t msg[] = {'h', 'i'};
    env.ConsoleOutput(0, msg);
    char buf[4] = {};
    ASSERT_EQ(read(out.r, buf, sizeof buf), 2);
    EXPECT_EQ(std::string(buf, 2), "hi");
    EXPECT_NE(fcntl(in.r, F_GETFL) & O_NONBLOCK, 0);
  }
  EXPECT_EQ(fcntl(in.r, F_GETFL) & O_NONBLOCK, 0) << "stdin flags restored on destruction";
}

TEST(LiveEnvironment, TerminalWithNothingTypedIsNotAtItsEnd) {
  int master = -1, slave = -1;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  LiveEnvironmentOptions o;
  o.console_in_fd = slave;
  o.console_out_fd = -1;
  {
    LiveEnvironment env(o);  // raw mode on the terminal
    EXPECT_TRUE(env.PollConsoleInput(0, 16).empty()) << "nothing typed yet";
    ASSERT_EQ(write(master, "x", 1), 1);
    EXPECT_TRUE(env.WaitForInput(0, LiveEnvironment::HostNowNs() + 5'000'000'000));
    std::vector<uint8_t> got = env.PollConsoleInput(0, 16);
    EXPECT_EQ(std::string(got.begin(), got.end()), "x") << "a poll with nothing typed is not EOF";
  }
  close(slave);
  close(master);
}

TEST(LiveEnvironment, WaitForInputSleepsUntilDeadlineOrInput) {
  Pipe in;
  LiveEnvironmentOptions o;
  o.console_in_fd = in.r;
  o.console_out_fd = -1;
  LiveEnvironment env(o);
  int64_t t0 = LiveEnvironment::HostNowNs();
  EXPECT_FALSE(env.WaitForInput(0, t0 + 20'000'000));
  int64_t waited = LiveEnvironment::HostNowNs() - t0;
  EXPECT_GE(waited, 20'000'000);
  EXPECT_LT(waited, 2'000'000'000);
  ASSERT_EQ(write(in.w, "x", 1), 1);
  t0 = LiveEnvironment::HostNowNs();
  EXPECT_TRUE(env.WaitForInput(0, t0 + 5'000'000'000));
  EXPECT_LT(LiveEnvironment::HostNowNs() - t0, 1'000'000'000) << "input ends the wait early";
  EXPECT_FALSE(env.WaitForInput(0, t0 - 1)) << "a past deadline returns at once";
}

TEST(LiveEnvironment, ClosedConsoleIsNotPolledForever) {
  Pipe in;
  LiveEnvironmentOptions o;
  o.console_in_fd = in.r;
  o.console_out_fd = -1;
  LiveEnvironment env(o);
  close(in.w);
  in.w = -1;
  EXPECT_TRUE(env.PollConsoleInput(0, 8).empty());
  int64_t t0 = LiveEnvironment::HostNowNs();
  EXPECT_FALSE(env.WaitForInput(0, t0 + 10'000'000)) << "EOF must not count as input forever";
}

TEST(LiveEnvironment, NetworkFramesAreUdpDatagramsOnLoopback) {
  uint16_t peer_port = 0;
  int peer = BoundUdp(&peer_port);
  LiveEnvironmentOptions o;
  o.console_in_fd = -1;
  o.console_out_fd = -1;
  o.net_local_port = FreePort();
  o.net_peer_port = peer_port;
  LiveEnvironment env(o);
  std::vector<uint8_t> frame;
  EXPECT_FALSE(env.PollNetFrame(0, &frame));
  const uint8_t tx[] = {1, 2, 3, 4};
  env.NetFrameSent(0, tx);
  uint8_t buf[16];
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  ASSERT_EQ(recvfrom(peer, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl), 4);
  EXPECT_EQ(buf[3], 4);
  EXPECT_EQ(ntohs(from.sin_port), o.net_local_port);
  const uint8_t rx[] = {9, 8, 7};
  ASSERT_EQ(sendto(peer, rx, 3, 0, reinterpret_cast<sockaddr*>(&from), fl), 3);
  EXPECT_TRUE(env.WaitForInput(0, LiveEnvironment::HostNowNs() + 2'000'000'000));
  ASSERT_TRUE(env.PollNetFrame(0, &frame));
  EXPECT_EQ(frame, std::vector<uint8_t>({9, 8, 7}));
  close(peer);
}

TEST(LiveEnvironment, PortInUseIsATypedErrorNamingThePort) {
  uint16_t busy = 0;
  int holder = BoundUdp(&busy);
  LiveEnvironmentOptions o;
  o.console_in_fd = -1;
  o.console_out_fd = -1;
  o.net_local_port = busy;
  o.net_peer_port = 9;
  try {
    LiveEnvironment env(o);
    ADD_FAILURE() << "bind to a busy port succeeded";
  } catch (const EnvironmentError& e) {
    EXPECT_EQ(e.code(), EnvironmentError::Code::kNetBind);
    EXPECT_NE(std::string(e.what()).find(std::to_string(busy)), std::string::npos) << e.what();
  }
  close(holder);
}

TEST(LiveEnvironment, EntropyAndTime) {
  LiveEnvironmentOptions o;
  o.console_in_fd = -1;
  o.console_out_fd = -1;
  LiveEnvironment env(o);
  std::vector<uint8_t> a(64), b(64);
  env.GetEntropy(0, a);
  env.GetEntropy(0, b);
  EXPECT_NE(a, b);
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  EXPECT_LT(std::llabs(env.SampleTime(0) - now), 1'000'000'000LL) << "wall-clock time";
}

}  // namespace
}  // namespace vmrr
