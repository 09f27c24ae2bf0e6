// The subcommands of the `brig` binary. Each Add*Command registers its options on `app` and
// returns the function that runs it once the command line has been parsed; that function
// returns the process's exit status.
#ifndef BRIG_CLI_COMMANDS_H_
#define BRIG_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "brig/status.h"
#include "brig/store.h"

namespace brig::cli {

// Exit statuses shared by every command.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;      // the operation failed (not found, conflict, ...)
constexpr int kExitUsage = 2;        // bad command line or unreadable input
constexpr int kExitTimeout = 124;    // brig exec: the code ran past --timeout
constexpr int kExitSandbox = 125;    // brig exec: the sandbox failed (trap, guest error)

using Runner = std::function<int()>;

Runner AddExecCommand(CLI::App& app);
Runner AddSessionsCommand(CLI::App& app);
Runner AddFilesCommand(CLI::App& app);
Runner AddPipCommand(CLI::App& app);
Runner AddCleanupCommand(CLI::App& app);
Runner AddServeCommand(CLI::App& app);
Runner AddMcpCommand(CLI::App& app);

// $BRIG_HOME (default ~/.local/share/brig), created if missing. Unavailable if it cannot be.
StatusOr<std::string> BrigHomeDir();
// Where the store is: `--db URL` if given, else $BRIG_DB, else sqlite:$BRIG_HOME/brig.db
// ($BRIG_HOME defaults to ~/.local/share/brig and is created if missing).
std::string ResolveStoreUrl(const std::string& db_flag);
// Adds `--db URL` to `cmd`, stored in *url.
void AddStoreOption(CLI::App* cmd, std::string* url);
// PostgreSQL tuning from the environment: BRIG_DB_POOL_SIZE (connections, 1-256) and
// BRIG_DB_STATEMENT_TIMEOUT (seconds, 0 = none, at most a day) into *options; unset ones
// keep *options' values. InvalidArgument (naming the variable) for a malformed value.
Status StoreTuningFromEnv(StoreOptions* options);
// Opens the store that ResolveStoreUrl names, tuned by StoreTuningFromEnv; on failure
// prints "brig: ..." to stderr (InvalidArgument: a bad URL or tuning value).
StatusOr<std::unique_ptr<Store>> OpenConfiguredStore(const std::string& db_flag);

}  // namespace brig::cli

#endif  // BRIG_CLI_COMMANDS_H_
