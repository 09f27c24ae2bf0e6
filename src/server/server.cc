#include "server/server.h"

#include <unistd.h>

#include "brig/text.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "server/api_json.h"
#include "server/auth.h"
#include "server/executor.h"
#include "server/in_process_executor.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/server_internal.h"
#include "server/signed_link.h"
#include "server/worker_pool.h"

namespace brig::server {

namespace {

bool IsLoopback(const std::string& host) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

std::string NowIso() { return FormatTimestamp(NowMicros()); }

}  // namespace

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Shutdown(); }

uint16_t Server::port() const { return impl_->http->port(); }

StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  auto impl = std::make_unique<Impl>();
  Impl& s = *impl;
  s.options = std::move(options);
  if (!s.options.log_line) {
    s.default_log = std::make_unique<LogWriter>(STDERR_FILENO);
    s.options.log_line = [log = s.default_log.get()](const std::string& line) { log->Line(line); };
  }

  auto tokens = TokenSet::Load(s.options.tokens_file);
  if (!tokens.ok()) return tokens.status();
  s.tokens = std::move(tokens.value());
  if (s.tokens.empty() && !IsLoopback(s.options.host))
    return Status::InvalidArgument("refusing to listen on " + s.options.host +
                                   " without tokens: give --tokens FILE or BRIG_TOKENS (README: Authentication), "
                                   "or listen on 127.0.0.1");
  auto key = LoadLinkKey(s.options.link_key_file, s.options.default_link_key_file);
  if (!key.ok()) return key.status();
  s.link_key = std::move(key.value());

  StoreOptions store_options;
  store_options.pool_size = s.options.sessions.pool_size;
  store_options.statement_timeout = s.options.sessions.statement_timeout;
  auto store = Store::Open(s.options.store_url, store_options);
  if (!store.ok()) return store.status();
  s.store = std::move(store.value());
  // Without workers this process runs the executions: --threads of them at once.
  if (s.options.workers == 0) s.options.sessions.max_running = s.options.execution_threads;
  auto sessions = Sessions::Open(*s.store, s.options.sessions);
  if (!sessions.ok()) return sessions.status();
  s.sessions = std::move(sessions.value());
  s.manager = &s.sessions->manager();
  s.files = &s.sessions->files();
  s.wheels = std::make_unique<Wheels>(*s.manager);
  Impl* raw = impl.get();
  // Before the pool: workers' replies are read on its I/O threads.
  s.http = std::make_unique<HttpServer>(
      s.options.http, [raw](auto ctx, auto out) { raw->Handle(std::move(ctx), std::move(out)); },
      [raw](const RequestContext& ctx, unsigned status, uint64_t bytes) { raw->LogRequest(ctx, status, bytes); });
  if (s.options.workers > 0) {
    // Executions in worker processes (worker_pool.h); this process keeps its Sessions for
    // the session and file routes only.
    WorkerPoolOptions pool;
    pool.sessions = s.options.sessions;
    pool.sessions.store_url = s.options.store_url;
    pool.workers = s.options.workers;
    pool.threads_per_worker = s.options.execution_threads;
    pool.inline_budget = s.options.inline_budget;
    pool.execution_nice = s.options.execution_nice;
    pool.max_queue = s.options.max_queued_executions;
    pool.heartbeat_timeout = s.options.worker_timeout;
    pool.io = &s.http->io_context();
    // On SQLite the workers hand their saves to this process: one writer, whose group
    // commit takes the saves of all of them (worker_pool.h, "Relayed saves"). PostgreSQL
    // groups concurrent commits itself, and several nodes write it anyway.
    if (s.store->backend() == "sqlite") pool.relay_store = s.store.get();
    pool.on_commit = [raw](size_t saves, double seconds) { raw->metrics.ObserveCommit(saves, seconds); };
    pool.log = [log = s.options.log_line](const std::string& line) {
      log(Dump({{"ts", NowIso()}, {"event", "worker"}, {"message", line}}));
    };
    auto started = WorkerPool::Start(std::move(pool));
    if (!started.ok()) return started.status();
    s.executor = std::move(started.value());
  } else {
    s.executor = MakeInProcessExecutor(*s.sessions, s.options.execution_threads * ThreadsPerRunSlot(s.store->backend()),
                                       s.options.max_queued_executions);
  }
  s.max_in_flight = static_cast<int64_t>(s.options.max_queued_executions) +
                    int64_t{s.options.execution_threads} * std::max(1, s.options.workers);

  s.blocking = std::make_unique<boost::asio::thread_pool>(std::max(1, s.options.blocking_threads));
  s.BuildRoutes();
  if (Status st = s.http->Start(s.options.host, s.options.port, s.options.io_threads); !st.ok()) return st;
  if (s.options.cleanup_every.count() > 0) {
    s.cleanup = std::make_unique<PeriodicCleanup>(
        *s.manager, std::chrono::duration_cast<std::chrono::milliseconds>(s.options.cleanup_every), false,
        [raw](uint64_t round, const StatusOr<CleanupStats>& r) {
          nlohmann::json j = {{"ts", NowIso()}, {"event", "cleanup"}, {"round", round}, {"ok", r.ok()}};
          if (r.ok()) {
            j["sessions_deleted"] = r.value().sessions_deleted;
          } else {
            j["error"] = r.status().message();
          }
          raw->options.log_line(Dump(j));
        });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

bool Server::Shutdown() {
  Impl& s = *impl_;
  if (s.shut_down.exchange(true)) return s.clean_shutdown;
  if (s.http) s.http->StopAccepting();
  if (s.cleanup) s.cleanup->Stop();
  // Running executions finish (and save) within the grace; their responses go out. Past
  // it they are answered 503 and, in-process, left running (executor.h).
  if (s.executor) s.clean_shutdown = s.executor->Shutdown(s.options.shutdown_grace);
  if (s.blocking) s.blocking->join();
  if (s.mcp_pool) s.mcp_pool->join();
  // The answers to what finished are on their way: let them reach the clients.
  if (s.http) {
    s.http->Drain(std::chrono::seconds(5));
    s.http->Stop();
  }
  if (!s.clean_shutdown) {
    // A thread still runs an execution in these Sessions and their store: they are never
    // freed (the process is about to exit; brig serve exits at once).
    (void)s.sessions.release();
    (void)s.store.release();
  }
  // Every request's line is out before the caller says it stopped (or _exits).
  if (s.default_log) s.default_log->Flush();
  return s.clean_shutdown;
}

// ---- Dispatch: route, authenticate, authorize, then the route's handler.

void Server::Impl::Handle(std::shared_ptr<RequestContext> ctx, std::shared_ptr<Responder> out) {
  Call call;
  call.ctx = std::move(ctx);
  call.out = std::move(out);
  const Request& req = call.ctx->request;
  std::string_view target = Sv(req.target());
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  auto query = ParseQuery(q == std::string_view::npos ? std::string_view{} : target.substr(q + 1));
  if (!query) return SendError(call, http::status::bad_request, "bad_request", "malformed query string");
  call.query = std::move(*query);
  auto match = router.Find(req.method(), path);
  switch (match.outcome) {
    case RouterT::Outcome::kBadPath:
      return SendError(call, http::status::bad_request, "bad_request", "malformed path");
    case RouterT::Outcome::kNotFound:
      return SendError(call, http::status::not_found, "no_route", "no such endpoint");
    case RouterT::Outcome::kMethodNotAllowed:
      return SendError(call, http::status::method_not_allowed, "method_not_allowed", "method not allowed here");
    case RouterT::Outcome::kMatched: break;
  }
  const RouteSpec& spec = match.route->handler;
  call.params = std::move(match.params);
  if (auto it = call.params.find("thread_id"); it != call.params.end()) call.thread_id = it->second;

  // Authentication.
  if (spec.auth != AuthKind::kNone && !tokens.empty()) {
    std::string_view presented = BearerToken(Sv(req[http::field::authorization]));
    call.token = presented.empty() ? nullptr : tokens.Find(presented);
    if (call.token) {
      call.ctx->principal = call.token->name;
    } else if (spec.auth == AuthKind::kTokenOrLink && presented.empty() && call.query.contains("sig")) {
      if (!CheckSignedLink(call)) return;
      call.ctx->principal = "signed-link";
    } else {
      return SendError(call, http::status::unauthorized, "unauthorized",
                       presented.empty() ? "this endpoint needs 'Authorization: Bearer TOKEN'" : "unknown token");
    }
    // Authorization: the token's threads, and read-only.
    if (call.token) {
      if (spec.writes && call.token->read_only)
        return SendError(call, http::status::forbidden, "forbidden", "this token is read-only");
      // The same answer whether or not the thread exists: nothing about it leaks.
      if (!call.thread_id.empty() && !call.token->MayUse(call.thread_id))
        return SendError(call, http::status::forbidden, "forbidden", "this token may not use that session");
      if (spec.needs_all_threads && !call.token->all_threads())
        return SendError(call, http::status::forbidden, "forbidden", "this endpoint needs a token for every session");
    }
  }
  spec.fn(std::move(call));
}

bool Server::Impl::CheckSignedLink(Call& call) {
  auto sig = call.query.find("sig");
  auto exp = call.query.find("expires");
  int64_t expires = 0;
  bool parsed = exp != call.query.end() && !exp->second.empty() && exp->second.size() < 19 &&
                exp->second.find_first_not_of("0123456789") == std::string::npos;
  if (parsed) expires = std::stoll(exp->second);
  auto path = call.params.find("path");
  int64_t now = NowMicros() / 1'000'000;
  if (!parsed || path == call.params.end() ||
      !VerifyFileLink(link_key, call.thread_id, path->second, expires, sig->second, now)) {
    SendError(call, http::status::forbidden, "bad_link", "the link's signature is wrong or it has expired");
    return false;
  }
  return true;
}

// ---- Answers.

void Server::Impl::SendJson(const Call& call, http::status status, const nlohmann::json& body) {
  SendJsonText(call, status, Dump(body));
}

void Server::Impl::SendJsonText(const Call& call, http::status status, std::string json_text) {
  json_text += "\n";
  auto res = MakeResponse(call.ctx->request, status, std::move(json_text), "application/json");
  res.set("X-Request-Id", call.ctx->request_id);
  call.out->Send(std::move(res));
}

void Server::Impl::SendError(const Call& call, http::status status, std::string_view code, std::string_view message) {
  auto res = MakeResponse(call.ctx->request, status,
                          Dump({{"error", {{"code", code}, {"message", message}, {"request_id", call.ctx->request_id}}}}) + "\n",
                          "application/json");
  res.set("X-Request-Id", call.ctx->request_id);
  if (status == http::status::too_many_requests || status == http::status::service_unavailable) res.set(http::field::retry_after, "1");
  if (status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer");
  call.out->Send(std::move(res));
}

void Server::Impl::SendStatus(const Call& call, const Status& s) {
  // A session that exists but has expired is 410; FailedPrecondition means other things too
  // (a directory read as a file), so the session is looked at.
  if (s.IsFailedPrecondition() && !call.thread_id.empty()) {
    auto info = manager->Get(call.thread_id);
    if (info.ok() && manager->IsExpired(info.value()))
      return SendError(call, http::status::gone, "session_expired", s.message());
  }
  auto [status, code] = HttpStatusOf(s);
  SendError(call, status, code, s.message());
}

std::pair<http::status, std::string_view> HttpStatusOf(const Status& s) {
  if (s.IsInvalidArgument()) return {http::status::bad_request, "invalid_argument"};
  if (s.IsNotFound()) return {http::status::not_found, "not_found"};
  if (s.IsAlreadyExists()) return {http::status::conflict, "already_exists"};
  if (s.IsConflict()) return {http::status::conflict, "conflict"};
  if (s.IsFailedPrecondition()) return {http::status::conflict, "failed_precondition"};
  if (s.IsResourceExhausted()) return {http::status::payload_too_large, "quota_exceeded"};
  if (s.IsDeadlineExceeded()) return {http::status::too_many_requests, "session_busy"};
  if (s.IsUnavailable()) return {http::status::service_unavailable, "unavailable"};
  return {http::status::internal_server_error, "internal"};
}

void Server::Impl::SyncThen(ExecRequest::Sync kind, Call call, const std::function<void(Call)>& fn) {
  if (kind == ExecRequest::Sync::kNone || call.thread_id.empty() || !executor || !executor->SessionsElsewhere()) {
    return fn(std::move(call));
  }
  ExecRequest request;
  request.thread_id = call.thread_id;
  request.sync = kind;
  auto held = std::make_shared<Call>(std::move(call));
  // Whatever the worker answers (a sync that fails loses only what it owed; see
  // Sessions::SyncToStore), the request goes on; off the pool's thread.
  executor->Execute(std::move(request), nullptr, [this, held, fn](StatusOr<SessionResult>) {
    Blocking([held, fn] { fn(std::move(*held)); });
  });
}

void Server::Impl::Blocking(std::function<void()> fn) { boost::asio::post(*blocking, std::move(fn)); }

void Server::Impl::LogRequest(const RequestContext& ctx, unsigned status, uint64_t bytes) {
  metrics.CountRequest(status);
  std::string_view target = Sv(ctx.request.target());
  // The query is left out: a signed link's signature is a credential.
  std::string_view path = target.substr(0, target.find('?'));
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ctx.received).count();
  // Built by hand, not as a json object: one line per request, ~10 allocations fewer.
  std::string line;
  line.reserve(200 + path.size());
  line += "{\"ts\":";
  AppendJsonString(&line, NowIso());
  line += ",\"request_id\":";
  AppendJsonString(&line, ctx.request_id);
  line += ",\"remote\":";
  AppendJsonString(&line, ctx.remote);
  line += ",\"method\":";
  AppendJsonString(&line, Sv(ctx.request.method_string()));
  line += ",\"path\":";
  AppendJsonString(&line, path);
  char numbers[96];
  snprintf(numbers, sizeof numbers, ",\"status\":%u,\"bytes\":%llu,\"ms\":%.3f", status,
           static_cast<unsigned long long>(bytes), std::isfinite(ms) ? ms : 0.0);
  line += numbers;
  if (!ctx.principal.empty()) {
    line += ",\"principal\":";
    AppendJsonString(&line, ctx.principal);
  }
  line += '}';
  options.log_line(line);
}

std::vector<std::pair<std::string, std::string>> Server::Routes() {
  Impl impl;
  impl.BuildRoutes();
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : impl.router.routes()) out.emplace_back(std::string(http::to_string(r.method)), r.pattern);
  return out;
}

}  // namespace brig::server
