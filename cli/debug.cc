// `vmrr debug LOG [--symbols ELF] [--port N] [--host ADDR] [--server-only]
// [--checkpoint-memory SIZE] [--disk IMAGE] [--gdb PROGRAM]`: time-travel debugging of a
// recording. A gdb remote-protocol server over the replay (analysis/gdb_server.h), and, unless
// --server-only, stock gdb started attached to it, as `rr replay` does: gdb can step, continue,
// break and watch forwards and backwards (reverse-stepi, reverse-continue, ...).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "analysis/gdb_server.h"
#include "analysis/time_travel.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/machine_options.h"
#include "replayer/replay_session.h"

namespace vmrr::cli {
namespace {

struct DebugCliOptions {
  std::string log;
  std::string symbols;
  std::string disk;
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port
  bool server_only = false;
  std::string checkpoint_memory = "256M";
  std::string gdb = "gdb";
};

// A listening TCP socket on host:port; returns -1 after printing why.
int Listen(const std::string& host, int port, uint16_t* bound) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "vmrr debug: --host '%s' is not an IPv4 address\n", host.c_str());
    return -1;
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::fprintf(stderr, "vmrr debug: socket: %s\n", std::strerror(errno));
    return -1;
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1) != 0) {
    std::fprintf(stderr, "vmrr debug: cannot listen on %s:%d: %s\n", host.c_str(), port, std::strerror(errno));
    close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *bound = ntohs(a.sin_port);
  return fd;
}

// Waits for gdb to connect; gives up when `child` (the gdb we started, or -1) exits first.
int Accept(int listen_fd, pid_t child) {
  for (;;) {
    pollfd p{listen_fd, POLLIN, 0};
    const int r = poll(&p, 1, 200);
    if (r > 0) {
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
      }
    }
    if (r < 0 && errno != EINTR) return -1;
    if (child > 0 && waitpid(child, nullptr, WNOHANG) == child) return -1;
  }
}

int Debug(const DebugCliOptions& o) {
  uint64_t budget = 0;
  try {
    budget = ParseSize("--checkpoint-memory", o.checkpoint_memory);
  } catch (const CLI::ValidationError& e) {
    std::fprintf(stderr, "vmrr debug: %s\n", e.what());
    return kExitUsage;
  }
  if (budget < (1u << 20)) {
    std::fprintf(stderr, "vmrr debug: --checkpoint-memory must be at least 1M\n");
    return kExitUsage;
  }
  if (o.port < 0 || o.port > 65535) {
    std::fprintf(stderr, "vmrr debug: --port must be 0..65535\n");
    return kExitUsage;
  }
  if (!o.symbols.empty() && access(o.symbols.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "vmrr debug: cannot read --symbols '%s': %s\n", o.symbols.c_str(), std::strerror(errno));
    return kExitIo;
  }
  ReplayOptions ro;
  if (!o.disk.empty()) ro.disk_override = o.disk;
  std::unique_ptr<ReplaySession> session;
  std::unique_ptr<analysis::TimeTravel> tt;
  try {
    session = std::make_unique<ReplaySession>(o.log, ro);  // refuses a bad log or disk up front
    analysis::TimeTravelOptions to;
    to.checkpoint_memory = budget;
    tt = std::make_unique<analysis::TimeTravel>(session->reader(), session->config(), session->disk_path(), to);
  } catch (...) {
    return ReportReplayError("debug");
  }
  uint16_t port = 0;
  const int lfd = Listen(o.host, o.port, &port);
  if (lfd < 0) return kExitIo;
  std::fprintf(stderr,
               "vmrr debug: %s: icount %" PRIu64 " to %" PRIu64 "; gdb server on %s:%u\n"
               "vmrr debug: in gdb: reverse-stepi, reverse-continue, watch; monitor help\n",
               o.log.c_str(), tt->begin_icount(), tt->end_icount(), o.host.c_str(), port);
  std::fflush(stderr);

  pid_t child = -1;
  if (!o.server_only) {
    const std::string target = "target remote " + o.host + ":" + std::to_string(port);
    std::vector<std::string> args = {o.gdb, "-q"};
    if (!o.symbols.empty()) args.push_back(o.symbols);
    args.insert(args.end(), {"-ex", target});
    child = fork();
    if (child < 0) {
      std::fprintf(stderr, "vmrr debug: fork: %s\n", std::strerror(errno));
      return kExitFailure;
    }
    if (child == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      std::fprintf(stderr, "vmrr debug: cannot run '%s': %s (use --server-only and attach a gdb yourself)\n",
                   o.gdb.c_str(), std::strerror(errno));
      _exit(127);
    }
    // Ctrl-C in the terminal reaches gdb, which sends it to us as 0x03; not a signal for us.
    signal(SIGINT, SIG_IGN);
  }
  const int fd = Accept(lfd, child);
  close(lfd);
  int status = kExitOk;
  if (fd >= 0) {
    analysis::GdbServer server(*tt);
    server.Serve(fd);
    close(fd);
  } else if (child < 0) {
    std::fprintf(stderr, "vmrr debug: accept: %s\n", std::strerror(errno));
    status = kExitIo;
  }
  if (child > 0) {
    int ws = 0;
    if (waitpid(child, &ws, 0) == child && WIFEXITED(ws) && WEXITSTATUS(ws) == 127) status = kExitFailure;
  }
  return status;
}

}  // namespace

void AddDebugCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<DebugCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "debug",
      "Debug a recording with gdb, forwards and backwards (reverse-stepi, reverse-continue,\n"
      "watchpoints of any number and length). Starts gdb attached to vmrr's gdb server\n"
      "unless --server-only; `monitor help` in gdb lists vmrr's own commands.");
  cmd->add_option("LOG", o->log, "log written by vmrr record")->required();
  cmd->add_option("--symbols", o->symbols, "ELF whose symbols gdb loads (e.g. the guest kernel)");
  cmd->add_option("--disk", o->disk, "disk image to use instead of the recorded path (verified by hash)");
  cmd->add_option("--host", o->host, "address the server listens on (default 127.0.0.1)");
  cmd->add_option("--port", o->port, "TCP port (default: any free one, printed on stderr)");
  cmd->add_flag("--server-only", o->server_only, "do not start gdb; wait for one to connect (target remote HOST:PORT)");
  cmd->add_option("--checkpoint-memory", o->checkpoint_memory,
                  "memory for replay checkpoints, e.g. 256M (default); more makes going back faster");
  cmd->add_option("--gdb", o->gdb, "the gdb to start (default: gdb on PATH)");
  cmd->callback([o, exit_code] { *exit_code = Debug(*o); });
}

}  // namespace vmrr::cli
