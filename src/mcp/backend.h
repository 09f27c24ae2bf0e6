// brig::mcp::Backend: what the MCP server's tools run against. The MCP layer only turns
// JSON-RPC into calls of the public API (brig::Sessions results, SessionManager,
// FileService); where executions run is the front end's choice:
//   - `brig mcp` (stdio): brig::Sessions in this process (SessionsBackend, sessions_backend.h);
//   - `brig serve`'s POST /mcp: the server's Executor (in-process threads or worker
//     processes), so that MCP executions are contained and counted like /v1 ones.
//
// Caller: who is calling, for one message. The server fills it from the bearer token
// (its threads and read-only flag) and its signed-link key; stdio has one caller that may
// do everything.
//
// Thread-safety: a Backend is called from several threads at once.
#ifndef BRIG_MCP_BACKEND_H_
#define BRIG_MCP_BACKEND_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "brig/files.h"
#include "brig/session_manager.h"
#include "brig/sessions.h"
#include "brig/status.h"

namespace brig::mcp {

struct Caller {
  // Whether the caller may use the session `thread_id`. Empty: every session.
  std::function<bool(std::string_view thread_id)> may_use;
  // Refuse every tool that changes something (run_python, writes, reset, fork).
  bool read_only = false;
  // Session ids that run_python and fork_session make when none is given start with this
  // (a token limited to "job-*" gets "job-"), followed by 16 random hex digits.
  std::string new_session_prefix = "mcp-";
  // A URL a client can download the session's file from (a signed link), or "" for none:
  // the file is then named by a brig:// URI that resources/read serves.
  std::function<std::string(std::string_view thread_id, std::string_view path)> file_link;

  bool MayUse(std::string_view thread_id) const { return !may_use || may_use(thread_id); }
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Runs `code` in the session (created if missing), as Sessions::Execute; timeout_s
  // replaces the default limit for this execution. Errors as Sessions::Execute (nothing ran).
  virtual StatusOr<SessionResult> Execute(const std::string& thread_id, const std::string& code,
                                          std::optional<double> timeout_s) = 0;
  // Clears the session's interpreter state, keeping its files (SessionManager::Reset).
  virtual Status Reset(const std::string& thread_id) = 0;
  // Borrowed: valid as long as the Backend.
  virtual SessionManager& manager() = 0;
  virtual FileService& files() = 0;
};

}  // namespace brig::mcp

#endif  // BRIG_MCP_BACKEND_H_
