// brig mcp [--db URL] [--timeout S] [--memory MB] [-v HOST_DIR:GUEST_DIR[:ro|rw]]...
// The MCP server on stdio (src/mcp): newline-delimited JSON-RPC on stdin/stdout, for agents
// that start brig as a local tool server (Claude Desktop, Cursor, ...; README: MCP).
// Sessions live in the store (--db, BRIG_DB, else $BRIG_HOME/brig.db), so a session made here
// is the same one `brig exec --session` and `brig serve` see. Exits 0 at the end of stdin.
#include <unistd.h>

#include "brig/sessions.h"
#include "cli/commands.h"
#include "cli/mount_option.h"
#include "cli/output.h"
#include "mcp/mcp_server.h"
#include "mcp/sessions_backend.h"
#include "mcp/stdio.h"

namespace brig::cli {

namespace {

struct McpOptions {
  std::string db;
  double timeout = 30;
  uint64_t memory_mb = 256;
  size_t max_output = 50'000;
  int threads = 4;
  std::vector<std::string> mounts;  // -v values: every session's sandbox gets them
};

int RunMcp(const McpOptions& opt) {
  auto store = OpenConfiguredStore(opt.db);
  if (!store.ok()) return store.status().IsInvalidArgument() ? kExitUsage : kExitFailure;
  Sessions::Options options;
  options.limits.timeout_seconds = opt.timeout;
  options.limits.memory_bytes = opt.memory_mb << 20;
  for (const std::string& v : opt.mounts) {
    Mount mount;
    std::string error;
    if (!ParseMountOption(v, &mount, &error)) {
      PrintError("mcp: " + error);
      return kExitUsage;
    }
    options.limits.mounts.push_back(std::move(mount));
  }
  if (Status valid = ValidateLimits(options.limits); !valid.ok()) {
    PrintError("mcp: " + valid.message());
    return kExitUsage;
  }
  auto sessions = Sessions::Open(*store.value(), options);
  if (!sessions.ok()) {
    PrintError(sessions.status().ToString());
    return kExitFailure;
  }
  mcp::SessionsBackend backend(*sessions.value());
  mcp::Options mcp_options;
  mcp_options.max_text_bytes = opt.max_output;
  mcp::McpServer server(backend, mcp_options);
  return mcp::ServeStdio(server, mcp::Caller{}, STDIN_FILENO, STDOUT_FILENO, opt.threads);
}

}  // namespace

Runner AddMcpCommand(CLI::App& app) {
  auto opt = std::make_shared<McpOptions>();
  CLI::App* cmd = app.add_subcommand("mcp", "Serve the Model Context Protocol on stdin/stdout (README: MCP)");
  AddStoreOption(cmd, &opt->db);
  cmd->add_option("--timeout", opt->timeout, "Default time limit of an execution, seconds")->check(CLI::Range(0.001, 3600.0));
  cmd->add_option("--memory", opt->memory_mb, "Memory limit of an execution, MiB")->check(CLI::Range(16, 4096));
  cmd->add_option("--max-output", opt->max_output, "Bytes of stdout, stderr and file text a tool result shows, each")
      ->check(CLI::Range(1000, 10'000'000));
  cmd->add_option("--threads", opt->threads, "Requests handled at once")->check(CLI::Range(1, 64));
  cmd->add_option("-v,--volume", opt->mounts,
                  "Show host directory HOST_DIR to every session's code at GUEST_DIR "
                  "(HOST_DIR:GUEST_DIR[:ro|rw], read-only by default; repeatable)");
  return [cmd, opt]() -> int {
    if (!cmd->parsed()) return -1;
    return RunMcp(*opt);
  };
}

}  // namespace brig::cli
