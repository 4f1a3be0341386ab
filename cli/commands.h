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

}  // namespace vmrr::cli
