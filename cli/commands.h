// Registration of vmrr's subcommands with the CLI11 application; each lives in its own file.
#pragma once

#include <CLI/CLI.hpp>

namespace vmrr::cli {

// Adds `inspect` to the app; the handler stores its exit status in *exit_code.
void AddInspectCommand(CLI::App& app, int* exit_code);
// `record` and `replay` (recorder/, replayer/).
void AddRecordCommand(CLI::App& app, int* exit_code);
void AddReplayCommand(CLI::App& app, int* exit_code);
// `run`: a live boot without a log (cli/run.cc).
void AddRunCommand(CLI::App& app, int* exit_code);
// `debug`: gdb over a recording, forwards and backwards (cli/debug.cc).
void AddDebugCommand(CLI::App& app, int* exit_code);
// `shadow`: follow a primary over the replication link, take over when it dies (cli/shadow.cc).
void AddShadowCommand(CLI::App& app, int* exit_code);
// `relocate`: ask a primary's control socket to hand its guest to the shadow (cli/relocate.cc).
void AddRelocateCommand(CLI::App& app, int* exit_code);

// Inside a catch block of a command that opens a log for replay: prints the exception being
// handled as "vmrr COMMAND: message" and returns its exit status (the statuses of `vmrr
// replay`); rethrows what it does not know.
int ReportReplayError(const char* command);

}  // namespace vmrr::cli
