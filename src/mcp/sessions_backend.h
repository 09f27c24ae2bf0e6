// brig::mcp::SessionsBackend: the MCP tools over a brig::Sessions in this process (what
// `brig mcp` on stdio uses). Thread-safe, as Sessions is.
#ifndef BRIG_MCP_SESSIONS_BACKEND_H_
#define BRIG_MCP_SESSIONS_BACKEND_H_

#include "mcp/backend.h"

namespace brig::mcp {

class SessionsBackend : public Backend {
 public:
  // Borrows `sessions`, which must outlive the backend.
  explicit SessionsBackend(Sessions& sessions) : sessions_(sessions) {}
  StatusOr<SessionResult> Execute(const std::string& thread_id, const std::string& code,
                                  std::optional<double> timeout_s) override {
    ExecuteOptions options;
    options.timeout_seconds = timeout_s;
    return sessions_.Execute(thread_id, code, options);
  }
  Status Reset(const std::string& thread_id) override { return sessions_.Reset(thread_id); }
  SessionManager& manager() override { return sessions_.manager(); }
  FileService& files() override { return sessions_.files(); }

 private:
  Sessions& sessions_;
};

}  // namespace brig::mcp

#endif  // BRIG_MCP_SESSIONS_BACKEND_H_
