// The parts of server.cc that the route files (api_routes.cc, file_routes.cc) share.
#ifndef BRIG_SERVER_SERVER_INTERNAL_H_
#define BRIG_SERVER_SERVER_INTERNAL_H_

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

#include "brig/files.h"
#include "brig/periodic_cleanup.h"
#include "brig/session_manager.h"
#include "brig/sessions.h"
#include "brig/store.h"
#include "brig/wheels.h"
#include "mcp/backend.h"
#include "mcp/mcp_server.h"
#include "server/auth.h"
#include "server/executor.h"
#include "server/log_writer.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/server.h"

namespace brig::server {

// One request on its way through a route.
struct Call {
  std::shared_ptr<RequestContext> ctx;
  std::shared_ptr<Responder> out;
  Params params;
  Params query;
  std::string thread_id;        // the route's {thread_id}, if it has one
  const Token* token = nullptr;  // null: no tokens configured, or a signed link
  const Request& request() const { return ctx->request; }
};

enum class AuthKind {
  kNone,         // anyone (GET /health)
  kToken,        // a bearer token, when the server has tokens
  kTokenOrLink,  // a bearer token or a signed link (GET /files/{thread_id}/{path...})
};

struct RouteSpec {
  AuthKind auth = AuthKind::kToken;
  bool writes = false;             // refused to read-only tokens
  bool needs_all_threads = false;  // refused to tokens limited to some threads
  std::function<void(Call)> fn;
};

using RouterT = Router<RouteSpec>;

// Status -> HTTP status and the API's stable error code.
std::pair<http::status, std::string_view> HttpStatusOf(const Status& s);

struct Server::Impl {
  // Where options.log_line writes unless the caller gave its own: first, so that it is
  // destroyed last (whatever logs goes before it).
  std::unique_ptr<LogWriter> default_log;
  ServerOptions options;
  TokenSet tokens;
  std::string link_key;
  std::unique_ptr<Store> store;
  // The store's sessions and files, through brig::Sessions (which owns no store here).
  std::unique_ptr<Sessions> sessions;
  SessionManager* manager = nullptr;
  FileService* files = nullptr;
  std::unique_ptr<Wheels> wheels;  // over *manager
  std::unique_ptr<Executor> executor;
  std::unique_ptr<boost::asio::thread_pool> blocking;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<PeriodicCleanup> cleanup;
  // POST /mcp (mcp_route.cc): the MCP server over the executor and this store.
  std::unique_ptr<mcp::Backend> mcp_backend;
  std::unique_ptr<mcp::McpServer> mcp;
  // MCP messages are handled here, not on `blocking`: a run_python waits for its execution,
  // and must not hold up the store and file routes.
  std::unique_ptr<boost::asio::thread_pool> mcp_pool;
  Metrics metrics;
  RouterT router;
  std::atomic<bool> shut_down{false};
  bool clean_shutdown = true;  // Shutdown left no execution running (executor.h)
  // Executions running or waiting, per session (max_executions_per_session).
  std::mutex per_session_mu;
  std::unordered_map<std::string, int> per_session;
  int64_t executions_in_flight = 0;  // guarded by per_session_mu
  int64_t max_in_flight = 0;         // running + queued, in all

  // Counts an execution of `thread_id` in, within max_in_flight and
  // max_executions_per_session, or says why not: {error code, message} (a 429 for /v1, a
  // tool error for MCP). Every admitted execution is Released once it is done.
  std::optional<std::pair<std::string, std::string>> Admit(const std::string& thread_id) {
    std::lock_guard lock(per_session_mu);
    if (executions_in_flight >= max_in_flight)
      return std::pair<std::string, std::string>{"too_many_requests", "the server is running " + std::to_string(executions_in_flight) +
                                                                          " executions; try again shortly"};
    int& n = per_session[thread_id];
    if (n >= options.max_executions_per_session) {
      std::string message = "this session already has " + std::to_string(n) + " executions running or waiting";
      if (n == 0) per_session.erase(thread_id);
      return std::pair<std::string, std::string>{"too_many_executions", std::move(message)};
    }
    ++n;
    ++executions_in_flight;
    return std::nullopt;
  }
  void Release(const std::string& thread_id) {
    std::lock_guard lock(per_session_mu);
    if (--per_session[thread_id] <= 0) per_session.erase(thread_id);
    --executions_in_flight;
  }

  ~Impl() {
    // Ordered: nothing that uses the store outlives it.
    cleanup.reset();
    executor.reset();  // fails MCP executions still waiting (Unavailable)
    if (blocking) blocking->join();
    if (mcp_pool) mcp_pool->join();
    http.reset();
  }

  void BuildRoutes();
  void AddApiRoutes();
  void AddFileRoutes();
  void AddMcpRoutes();
  void Handle(std::shared_ptr<RequestContext> ctx, std::shared_ptr<Responder> out);
  bool CheckSignedLink(Call& call);
  void LogRequest(const RequestContext& ctx, unsigned status, uint64_t bytes);

  void SendJson(const Call& call, http::status status, const nlohmann::json& body);
  // The same with the body's JSON text already written (as Dump writes it).
  void SendJsonText(const Call& call, http::status status, std::string json_text);
  void SendError(const Call& call, http::status status, std::string_view code, std::string_view message);
  // Maps `s` (not OK) to its HTTP status and code; an expired session is 410.
  // REQUIRES: on a blocking thread (it may ask the store).
  void SendStatus(const Call& call, const Status& s);
  // Runs `fn` on a thread that may block (store, files).
  void Blocking(std::function<void()> fn);

  // Route handlers (api_routes.cc, file_routes.cc).
  void CreateSession(Call call);
  void ListSessions(Call call);
  void CleanupNow(Call call);
  void GetSession(Call call);
  void DeleteSession(Call call);
  void ExtendSession(Call call);
  void ResetSession(Call call);
  void ForkSession(Call call);
  void ExportSnapshot(Call call);
  // Runs fn(call) once the worker holding call.thread_id live has written what it owes the
  // store (and dropped it, for kDrop): for the routes that use the stored session directly.
  void SyncThen(ExecRequest::Sync kind, Call call, const std::function<void(Call)>& fn);
  void ImportSnapshot(Call call);
  void Execute(Call call);
  void ListFiles(Call call);
  void DownloadFile(Call call, bool file_server);
  void DownloadFileApi(Call call);
  void UploadFile(Call call);
  void DeleteFile(Call call);
  void ReadFile(Call call);
  void WriteFile(Call call);
  void EditFile(Call call);
  void GlobFiles(Call call);
  void GrepFiles(Call call);
  void PipInstall(Call call);
  void PipList(Call call);
  void PipUninstall(Call call);
  void Health(Call call);
  void FileServerList(Call call);
  void MetricsPage(Call call);
  void Mcp(Call call);
};

// The request body as a JSON object, or an answer of 400 (and nullopt).
std::optional<nlohmann::json> JsonBody(Server::Impl& s, const Call& call);

}  // namespace brig::server

#endif  // BRIG_SERVER_SERVER_INTERNAL_H_
