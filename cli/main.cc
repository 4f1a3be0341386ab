// vmrr: one binary, one subcommand per use (inspect; run, record, replay, debug, shadow and
// analyze arrive with their issues).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/exit_codes.h"

int main(int argc, char** argv) {
  CLI::App app{
      "vmrr: deterministic record and replay of x86-64 virtual machines.\n"
      "Every nondeterministic input a guest receives is logged with the exact instruction\n"
      "count at which it took effect, so a replay re-executes the guest bit for bit.",
      "vmrr"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vmrr " VMRR_VERSION);
  int exit_code = vmrr::cli::kExitOk;
  vmrr::cli::AddInspectCommand(app, &exit_code);
  vmrr::cli::AddRunCommand(app, &exit_code);
  vmrr::cli::AddRecordCommand(app, &exit_code);
  vmrr::cli::AddReplayCommand(app, &exit_code);
  vmrr::cli::AddDebugCommand(app, &exit_code);
  vmrr::cli::AddShadowCommand(app, &exit_code);
  vmrr::cli::AddRelocateCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "vmrr: %s (see vmrr --help)\n", e.what());
    return vmrr::cli::kExitUsage;
  }
  return exit_code;
}
