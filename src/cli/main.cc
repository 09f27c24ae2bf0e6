// The brig command line: a thin shell over the C++ API in include/brig/. Each subcommand
// lives in its own *_command.cc; see commands.h.
#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "cli/output.h"
#include "server/worker_main.h"

int main(int argc, char** argv) {
  // A worker process of `brig serve` (hidden: started by the server, never by people).
  if (argc >= 2 && std::string_view(argv[1]) == "__worker") return brig::server::WorkerMain(argc, argv);
  using namespace brig::cli;
  CLI::App app{"brig: run untrusted Python inside WebAssembly"};
  app.require_subcommand(1);
  // Registration: one line per subcommand. A runner returns -1 when its command was not the
  // one given.
  std::vector<Runner> runners;
  runners.push_back(AddExecCommand(app));
  runners.push_back(AddSessionsCommand(app));
  runners.push_back(AddFilesCommand(app));
  runners.push_back(AddPipCommand(app));
  runners.push_back(AddCleanupCommand(app));
  runners.push_back(AddServeCommand(app));
  runners.push_back(AddMcpCommand(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    PrintError(std::string(e.what()) + " (see brig --help)");
    return kExitUsage;
  }
  for (const Runner& run : runners) {
    if (int rc = run(); rc >= 0) return rc;
  }
  return kExitUsage;
}
