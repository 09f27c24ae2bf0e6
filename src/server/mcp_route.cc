// POST /mcp: the MCP server (src/mcp) over streamable HTTP, one JSON-RPC message per POST,
// answered with application/json (202 and no body for a notification; text/event-stream
// when notifications precede the response: subscriptions/listen). The headers
// (MCP-Protocol-Version, Mcp-Method, Mcp-Name) are checked against the body first
// (mcp/http_headers.h). Stateless: no Mcp-Session-Id is issued or needed, GET (a
// server-to-client stream) is 405. The caller
// is the bearer token: tools refuse sessions the token may not use, and everything that
// writes for a read-only token. Executions go through the server's Executor like /v1's.
#include <ctime>
#include <algorithm>
#include <boost/asio/post.hpp>
#include <future>

#include "mcp/http_headers.h"
#include "mcp/mcp_server.h"
#include "server/server_internal.h"
#include "server/signed_link.h"

namespace brig::server {

using nlohmann::json;

namespace {

// How long a resource link of an MCP result stays valid.
constexpr int64_t kLinkSeconds = 24 * 3600;

class ExecutorBackend : public mcp::Backend {
 public:
  explicit ExecutorBackend(Server::Impl& s) : s_(s) {}
  StatusOr<SessionResult> Execute(const std::string& thread_id, const std::string& code,
                                  std::optional<double> timeout_s) override {
    // The bounds of /v1 executions (--max-per-session, the server's queue) apply here too.
    if (auto refused = s_.Admit(thread_id)) {
      return Status::ResourceExhausted(refused->second);
    }
    ExecRequest request;
    request.thread_id = thread_id;
    request.code = code;
    request.timeout_seconds = timeout_s;
    auto done = std::make_shared<std::promise<StatusOr<SessionResult>>>();
    auto future = done->get_future();
    auto start = std::chrono::steady_clock::now();
    s_.executor->Execute(std::move(request), nullptr, [done](StatusOr<SessionResult> r) { done->set_value(std::move(r)); });
    StatusOr<SessionResult> r = future.get();
    s_.Release(thread_id);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string outcome;
    if (!r.ok()) outcome = HttpStatusOf(r.status()).second;
    else if (r.value().execution.failure != Failure::kNone) outcome = FailureName(r.value().execution.failure);
    else outcome = r.value().execution.ok ? "ok" : "python_error";
    s_.metrics.ObserveExecution(outcome, seconds);  // the labels of /v1 executions
    return r;
  }
  Status Reset(const std::string& thread_id) override { return s_.manager->Reset(thread_id); }
  SessionManager& manager() override { return *s_.manager; }
  FileService& files() override { return *s_.files; }

 private:
  Server::Impl& s_;
};

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "127.0.0.1" || host == "[::1]" || host.starts_with("127.");
}

// The host of an Origin ("http://example.com:8080" -> "example.com").
std::string_view OriginHost(std::string_view origin) {
  size_t scheme = origin.find("://");
  if (scheme != std::string_view::npos) origin.remove_prefix(scheme + 3);
  if (!origin.empty() && origin[0] == '[') return origin.substr(0, origin.find(']') + 1);
  return origin.substr(0, origin.find(':'));
}

}  // namespace

void Server::Impl::AddMcpRoutes() {
  mcp_backend = std::make_unique<ExecutorBackend>(*this);
  mcp = std::make_unique<mcp::McpServer>(*mcp_backend);
  // Enough threads to keep every execution thread busy, plus a few for file tools.
  int threads = options.execution_threads * std::max(1, options.workers) + 4;
  mcp_pool = std::make_unique<boost::asio::thread_pool>(std::min(threads, 256));
  RouteSpec spec;
  spec.writes = false;  // each tool checks a read-only token itself
  spec.fn = [this](Call c) { Mcp(std::move(c)); };
  router.Add(http::verb::post, "/mcp", std::move(spec));
}

void Server::Impl::Mcp(Call call) {
  const Request& req = call.request();
  // DNS rebinding: a browser page may POST to a loopback server; a server without tokens
  // takes requests only from pages of loopback origins.
  auto origin_field = req[http::field::origin];
  std::string_view origin(origin_field.data(), origin_field.size());
  if (!origin.empty() && tokens.empty() && !IsLoopbackHost(OriginHost(origin)))
    return SendError(call, http::status::forbidden, "forbidden", "requests from this Origin are not accepted");
  mcp::Caller caller;
  if (call.token) {
    const Token* token = call.token;
    caller.may_use = [token](std::string_view id) { return token->MayUse(id); };
    caller.read_only = token->read_only;
    // New sessions of a token limited to "job-*" are "job-<random>".
    if (!token->all_threads()) {
      caller.new_session_prefix.clear();
      for (const auto& t : token->threads)
        if (t.ends_with('*')) {
          caller.new_session_prefix = t.substr(0, t.size() - 1);
          break;
        }
    }
  }
  std::string base = "http://" + std::string(req[http::field::host]);
  caller.file_link = [this, base](std::string_view thread_id, std::string_view path) {
    int64_t expires = static_cast<int64_t>(std::time(nullptr)) + kLinkSeconds;
    return base + MakeFileLink(link_key, thread_id, path, expires);
  };
  boost::asio::post(*mcp_pool, [this, call = std::move(call), caller = std::move(caller)] {
    // The body is parsed once, off the I/O thread; the headers are checked against it
    // before anything runs.
    const Request& req = call.request();
    json parse_error;
    std::optional<json> message = mcp->Parse(req.body(), &parse_error);
    if (!message) return SendJson(call, http::status::ok, parse_error);
    auto header = [&req](const char* name) {
      auto f = req[boost::beast::string_view(name)];
      return std::string_view(f.data(), f.size());
    };
    if (auto refused = mcp::CheckHttpHeaders(
            *message, {header("MCP-Protocol-Version"), header("Mcp-Method"), header("Mcp-Name")}))
      return SendJson(call, http::status::bad_request, *refused);
    mcp::Exchange ex = mcp->Process(*message, caller);
    if (!ex.response && ex.notifications.empty()) {
      auto res = MakeResponse(call.request(), http::status::accepted, "", "application/json");
      res.set("X-Request-Id", call.ctx->request_id);
      return call.out->Send(std::move(res));
    }
    auto status = static_cast<http::status>(ex.http_status);
    if (ex.notifications.empty()) {
      auto res = MakeResponse(call.request(), status, mcp::Dump(*ex.response) + "\n", "application/json");
      res.set("X-Request-Id", call.ctx->request_id);
      return call.out->Send(std::move(res));
    }
    // Notifications before the response (subscriptions/listen's acknowledgement): an SSE
    // stream scoped to this request, that the response ends.
    std::string body;
    auto event = [&body](const json& m) { body += "event: message\ndata: " + mcp::Dump(m) + "\n\n"; };
    for (const auto& n : ex.notifications) event(n);
    if (ex.response) event(*ex.response);
    auto res = MakeResponse(call.request(), status, body, "text/event-stream");
    res.set("X-Request-Id", call.ctx->request_id);
    res.set("Cache-Control", "no-cache");
    res.set("X-Accel-Buffering", "no");
    call.out->Send(std::move(res));
  });
}

}  // namespace brig::server
