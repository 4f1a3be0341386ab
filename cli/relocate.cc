// `vmrr relocate unix:PATH`: planned relocation of a running guest to its shadow. Asks the
// primary (`vmrr record --replicate URL --control unix:PATH`) to stop at an instruction boundary
// once its shadow holds the whole log; the shadow then goes live at that instruction with no
// takeover timeout, and the primary exits with status 0. Prints the primary's reply.
// Exit status: 0 relocated; 1 the primary refused or could not relocate (its reply says why);
// 3 no primary at that socket, or no reply in time.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "cli/commands.h"
#include "cli/control_socket.h"
#include "cli/exit_codes.h"

namespace vmrr::cli {

void AddRelocateCommand(CLI::App& app, int* exit_code) {
  struct Options {
    std::string control;
    int timeout_ms = 30'000;
    int wait_ms = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "relocate",
      "Hand a running guest to its shadow on purpose: the primary (`vmrr record --replicate URL\n"
      "--control unix:PATH`) stops at an instruction boundary once the shadow holds its whole log,\n"
      "the shadow goes live there at once, the primary exits 0.\n"
      "Exit status: 0 relocated; 1 the primary could not relocate (reply printed); 3 no primary\n"
      "at that socket or no reply in time.");
  cmd->add_option("control", o->control, "the primary's control socket: unix:PATH")->required();
  cmd->add_option("--timeout", o->timeout_ms, "ms to wait for the primary's reply (default 30000)")
      ->check(CLI::Range(100, 3'600'000));
  cmd->add_option("--wait", o->wait_ms,
                  "ms to keep trying while no primary listens at the socket yet (default 0: fail at once)")
      ->check(CLI::Range(0, 3'600'000));
  cmd->callback([o, exit_code] {
    try {
      const std::string reply = ControlRequest(o->control, "relocate", o->timeout_ms, o->wait_ms);
      if (reply.rfind("relocated", 0) == 0) {
        std::printf("%s\n", reply.c_str());
        *exit_code = kExitOk;
      } else {
        std::fprintf(stderr, "vmrr relocate: %s\n", reply.c_str());
        *exit_code = kExitFailure;
      }
    } catch (const std::runtime_error& e) {
      std::fprintf(stderr, "vmrr relocate: %s\n", e.what());
      *exit_code = kExitIo;
    }
  });
}

}  // namespace vmrr::cli
