// The JSON API under /v1 (docs/openapi.json): sessions, executions, files.
#include <algorithm>
#include <cmath>
#include <limits>

#include "brig/result_json.h"
#include "server/api_json.h"
#include "server/server_internal.h"
#include "server/signed_link.h"
#include "util/json_depth.h"
#include "brig/text.h"

namespace brig::server {

using nlohmann::json;
using http::verb;

std::optional<json> JsonBody(Server::Impl& s, const Call& call) {
  if (JsonNestsTooDeep(call.request().body())) {
    s.SendError(call, http::status::bad_request, "invalid_json",
                "the request body nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return std::nullopt;
  }
  json body = json::parse(call.request().body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    s.SendError(call, http::status::bad_request, "invalid_json", "the request body must be a JSON object");
    return std::nullopt;
  }
  return body;
}

namespace {

// Field readers: nullopt and an answer of 400 when a field has the wrong type.
struct Fields {
  Server::Impl& s;
  const Call& call;
  const json& body;
  bool failed = false;

  void Fail(const std::string& message) {
    if (!failed) s.SendError(call, http::status::bad_request, "invalid_argument", message);
    failed = true;
  }
  std::optional<std::string> String(const char* name, bool required) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) {
      if (required) Fail(std::string("'") + name + "' is required");
      return std::nullopt;
    }
    if (!it->is_string()) {
      Fail(std::string("'") + name + "' must be a string");
      return std::nullopt;
    }
    return it->get<std::string>();
  }
  std::optional<int64_t> Int(const char* name, int64_t lo, int64_t hi) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi) {
      Fail(std::string("'") + name + "' must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
      return std::nullopt;
    }
    return it->get<int64_t>();
  }
  std::optional<double> Number(const char* name, double lo, double hi) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() <= lo || it->get<double>() > hi) {
      Fail(std::string("'") + name + "' must be a number above " + std::to_string(lo) + " and at most " + std::to_string(hi));
      return std::nullopt;
    }
    return it->get<double>();
  }
  bool Bool(const char* name, bool absent = false) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) return absent;
    if (!it->is_boolean()) {
      Fail(std::string("'") + name + "' must be true or false");
      return false;
    }
    return it->get<bool>();
  }
};

// A file path from the API: relative ones are under /home/user, as in the guest.
std::string GuestPath(const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return "/home/user/" + p;
}

bool WantsEventStream(const Request& req) {
  return req[http::field::accept].find("text/event-stream") != std::string_view::npos;
}

std::string SseEvent(std::string_view event, const json& data) {
  return "event: " + std::string(event) + "\ndata: " + Dump(data) + "\n\n";
}

std::string OutcomeOf(const SessionResult& r) {
  if (r.execution.failure != Failure::kNone) return std::string(FailureName(r.execution.failure));
  return r.execution.ok ? "ok" : "python_error";
}

}  // namespace

void Server::Impl::BuildRoutes() {
  AddApiRoutes();
  AddFileRoutes();
  AddMcpRoutes();
}

void Server::Impl::AddApiRoutes() {
  using Sync = ExecRequest::Sync;
  // `sync`: what the worker holding the session live must do first (SyncThen).
  auto add = [this](verb method, std::string pattern, bool writes, void (Impl::*fn)(Call), bool all_threads = false,
                    Sync sync = Sync::kNone) {
    RouteSpec spec;
    spec.writes = writes;
    spec.needs_all_threads = all_threads;
    std::function<void(Call)> run = [this, fn](Call c) { (this->*fn)(std::move(c)); };
    if (sync == Sync::kNone) {
      spec.fn = std::move(run);
    } else {
      spec.fn = [this, sync, run](Call c) { SyncThen(sync, std::move(c), run); };
    }
    router.Add(method, std::move(pattern), std::move(spec));
  };
  const Sync read = Sync::kWrite, change = Sync::kDrop;
  add(verb::post, "/v1/sessions", true, &Impl::CreateSession);
  add(verb::get, "/v1/sessions", false, &Impl::ListSessions);
  add(verb::get, "/v1/sessions/{thread_id}", false, &Impl::GetSession);
  add(verb::delete_, "/v1/sessions/{thread_id}", true, &Impl::DeleteSession, false, change);
  add(verb::post, "/v1/sessions/{thread_id}/extend", true, &Impl::ExtendSession);
  add(verb::post, "/v1/sessions/{thread_id}/reset", true, &Impl::ResetSession, false, change);
  add(verb::post, "/v1/sessions/{thread_id}/fork", true, &Impl::ForkSession, false, read);
  add(verb::get, "/v1/sessions/{thread_id}/snapshot", false, &Impl::ExportSnapshot, false, read);
  add(verb::put, "/v1/sessions/{thread_id}/snapshot", true, &Impl::ImportSnapshot);
  add(verb::post, "/v1/sessions/{thread_id}/execute", true, &Impl::Execute);
  add(verb::get, "/v1/sessions/{thread_id}/files", false, &Impl::ListFiles, false, read);
  add(verb::get, "/v1/sessions/{thread_id}/files/{path...}", false, &Impl::DownloadFileApi, false, read);
  add(verb::put, "/v1/sessions/{thread_id}/files/{path...}", true, &Impl::UploadFile, false, change);
  add(verb::delete_, "/v1/sessions/{thread_id}/files/{path...}", true, &Impl::DeleteFile, false, change);
  // Operations on files, as JSON: reading and searching change nothing.
  add(verb::post, "/v1/sessions/{thread_id}/files:read", false, &Impl::ReadFile, false, read);
  add(verb::post, "/v1/sessions/{thread_id}/files:write", true, &Impl::WriteFile, false, change);
  add(verb::post, "/v1/sessions/{thread_id}/files:edit", true, &Impl::EditFile, false, change);
  add(verb::post, "/v1/sessions/{thread_id}/files:glob", false, &Impl::GlobFiles, false, read);
  add(verb::post, "/v1/sessions/{thread_id}/files:grep", false, &Impl::GrepFiles, false, read);
  // Pure-Python wheels in the session's site-packages (brig/wheels.h).
  add(verb::post, "/v1/sessions/{thread_id}/pip/install", true, &Impl::PipInstall, false, change);
  add(verb::get, "/v1/sessions/{thread_id}/pip/packages", false, &Impl::PipList, false, read);
  add(verb::delete_, "/v1/sessions/{thread_id}/pip/packages/{name}", true, &Impl::PipUninstall, false, change);
  add(verb::get, "/metrics", false, &Impl::MetricsPage, /*all_threads=*/true);
  // Deletes other callers' sessions: an administrator's token (every session, not read-only).
  add(verb::post, "/v1/cleanup", true, &Impl::CleanupNow, /*all_threads=*/true);
}

// ---- Sessions.

void Server::Impl::CreateSession(Call call) {
  auto body = JsonBody(*this, call);
  if (!body) return;
  Fields f{*this, call, *body};
  auto thread_id = f.String("thread_id", true);
  auto days = f.Int("expiry_days", 1, kMaxExpiryDays);
  json metadata = body->contains("metadata") ? (*body)["metadata"] : json::object();
  if (f.failed) return;
  if (!metadata.is_object()) return SendError(call, http::status::bad_request, "invalid_argument", "'metadata' must be a JSON object");
  // The session's own quotas (brig/session_info.h): each may only lower the server's.
  SessionQuotas quotas;
  if (auto q = body->find("quotas"); q != body->end() && !q->is_null()) {
    static const char* const kQuotaNames[] = {"max_files", "max_total_bytes", "max_file_bytes"};
    if (!q->is_object())
      return SendError(call, http::status::bad_request, "invalid_argument",
                       "'quotas' must be a JSON object (max_files, max_total_bytes, max_file_bytes)");
    for (const auto& item : q->items()) {
      if (std::find_if(std::begin(kQuotaNames), std::end(kQuotaNames), [&](const char* n) { return item.key() == n; }) ==
          std::end(kQuotaNames))
        return SendError(call, http::status::bad_request, "invalid_argument",
                         "unknown quota '" + item.key() + "' (known: max_files, max_total_bytes, max_file_bytes)");
    }
    Fields qf{*this, call, *q};
    quotas.max_files = qf.Int("max_files", 1, std::numeric_limits<int64_t>::max());
    quotas.max_total_bytes = qf.Int("max_total_bytes", 1, std::numeric_limits<int64_t>::max());
    quotas.max_file_bytes = qf.Int("max_file_bytes", 1, kMaxFileBytes);
    if (qf.failed) return;
  }
  call.thread_id = *thread_id;
  if (call.token && !call.token->MayUse(call.thread_id))
    return SendError(call, http::status::forbidden, "forbidden", "this token may not use that session");
  Blocking([this, call = std::move(call), days, metadata = std::move(metadata), quotas] {
    auto created = manager->Create(call.thread_id, days, metadata, quotas);
    if (!created.ok()) return SendStatus(call, created.status());
    SendJson(call, http::status::created, SessionInfoToJson(*manager, created.value()));
  });
}

// POST /v1/cleanup {"dry_run": false}: expired sessions and orphaned files, now (what
// `brig cleanup` and --cleanup-every do).
void Server::Impl::CleanupNow(Call call) {
  auto body = JsonBody(*this, call);
  if (!body) return;
  Fields f{*this, call, *body};
  const bool dry_run = f.Bool("dry_run", false);
  if (f.failed) return;
  Blocking([this, call = std::move(call), dry_run] {
    auto stats = manager->Cleanup(dry_run);
    if (!stats.ok()) return SendStatus(call, stats.status());
    SendJson(call, http::status::ok,
             {{"sessions_deleted", stats.value().sessions_deleted},
              {"files_deleted", stats.value().files_deleted},
              {"bytes_freed", stats.value().bytes_freed},
              {"dry_run", dry_run}});
  });
}

void Server::Impl::ListSessions(Call call) {
  Blocking([this, call = std::move(call)] {
    auto list = manager->List();
    if (!list.ok()) return SendStatus(call, list.status());
    json out = json::array();
    for (const auto& s : list.value())
      if (!call.token || call.token->MayUse(s.thread_id)) out.push_back(SessionInfoToJson(*manager, s));
    SendJson(call, http::status::ok, {{"sessions", std::move(out)}});
  });
}

void Server::Impl::GetSession(Call call) {
  Blocking([this, call = std::move(call)] {
    auto info = manager->Get(call.thread_id);
    if (!info.ok()) return SendStatus(call, info.status());
    SendJson(call, http::status::ok, SessionInfoToJson(*manager, info.value()));
  });
}

void Server::Impl::DeleteSession(Call call) {
  Blocking([this, call = std::move(call)] {
    if (Status st = manager->Delete(call.thread_id); !st.ok()) return SendStatus(call, st);
    SendJson(call, http::status::ok, {{"thread_id", call.thread_id}, {"deleted", true}});
  });
}

void Server::Impl::ExtendSession(Call call) {
  auto body = JsonBody(*this, call);
  if (!body) return;
  Fields f{*this, call, *body};
  auto days = f.Int("days", 1, kMaxExpiryDays);
  if (f.failed) return;
  if (!days) return SendError(call, http::status::bad_request, "invalid_argument", "'days' is required");
  Blocking([this, call = std::move(call), days = *days] {
    auto info = manager->Extend(call.thread_id, days);
    if (!info.ok()) return SendStatus(call, info.status());
    SendJson(call, http::status::ok, SessionInfoToJson(*manager, info.value()));
  });
}

void Server::Impl::ResetSession(Call call) {
  Blocking([this, call = std::move(call)] {
    if (Status st = manager->Reset(call.thread_id); !st.ok()) return SendStatus(call, st);
    SendJson(call, http::status::ok, {{"thread_id", call.thread_id}, {"reset", true}});
  });
}

void Server::Impl::ForkSession(Call call) {
  auto body = JsonBody(*this, call);
  if (!body) return;
  Fields f{*this, call, *body};
  auto dst = f.String("thread_id", true);
  auto days = f.Int("expiry_days", 1, kMaxExpiryDays);
  if (f.failed) return;
  ForkOptions options;
  options.expiry_days = days;
  if (body->contains("metadata") && !(*body)["metadata"].is_null()) {
    if (!(*body)["metadata"].is_object())
      return SendError(call, http::status::bad_request, "invalid_argument", "'metadata' must be a JSON object");
    options.metadata = (*body)["metadata"];
  }
  // The new session is the token's too: it must be one the token may use.
  if (call.token && !call.token->MayUse(*dst))
    return SendError(call, http::status::forbidden, "forbidden", "this token may not use that session");
  Blocking([this, call = std::move(call), dst = *dst, options] {
    auto forked = manager->Fork(call.thread_id, dst, options);
    if (!forked.ok()) return SendStatus(call, forked.status());
    SendJson(call, http::status::created, SessionInfoToJson(*manager, forked.value()));
  });
}

void Server::Impl::ExportSnapshot(Call call) {
  Blocking([this, call = std::move(call)] {
    auto bytes = sessions->ExportSnapshot(call.thread_id);
    if (!bytes.ok()) return SendStatus(call, bytes.status());
    auto res = MakeResponse(call.request(), http::status::ok, std::move(bytes.value()), "application/octet-stream");
    res.set(http::field::content_disposition, "attachment; filename=\"" + PercentEncode(call.thread_id, false) + ".brig\"");
    res.set("X-Request-Id", call.ctx->request_id);
    call.out->Send(std::move(res));
  });
}

void Server::Impl::ImportSnapshot(Call call) {
  Sessions::ImportOptions options;
  if (auto it = call.query.find("expiry_days"); it != call.query.end()) {
    const std::string& v = it->second;
    if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos || std::stoll(v) < 1 ||
        std::stoll(v) > kMaxExpiryDays)
      return SendError(call, http::status::bad_request, "invalid_argument", "'expiry_days' must be a whole number of days from 1 to 36500");
    options.expiry_days = std::stoll(v);
  }
  Blocking([this, call = std::move(call), options] {
    auto imported = sessions->ImportSnapshot(call.thread_id, call.request().body(), options);
    if (!imported.ok()) return SendStatus(call, imported.status());
    const ImportResult& r = imported.value();
    SendJson(call, http::status::created,
             {{"session", SessionInfoToJson(*manager, r.session)},
              {"restored_from", r.restored_from},
              {"pages_dropped", r.pages_dropped.empty() ? json(nullptr) : json(r.pages_dropped)},
              {"not_restored", r.not_restored}});
  });
}

// ---- Executions.

void Server::Impl::Execute(Call call) {
  auto body = JsonBody(*this, call);
  if (!body) return;
  Fields f{*this, call, *body};
  auto code = f.String("code", true);
  auto timeout = f.Number("timeout_s", 0, 3600);
  auto memory_mb = f.Int("memory_mb", 16, 4096);
  const bool durable = f.Bool("durable", true);
  if (f.failed) return;
  // Bounded here, not by the executor's queue, so that "too many" is always a 429 (the
  // executor's ResourceExhausted would read as a quota).
  if (auto refused = Admit(call.thread_id))
    return SendError(call, http::status::too_many_requests, refused->first, refused->second);
  ExecRequest request;
  request.thread_id = call.thread_id;
  request.code = std::move(*code);
  request.timeout_seconds = timeout;
  if (memory_mb) request.memory_bytes = static_cast<uint64_t>(*memory_mb) << 20;
  request.stream = WantsEventStream(call.request());
  request.deferred_save = !durable;

  // The answer: JSON, or (streaming) an event stream opened at the first output.
  struct State {
    std::mutex mu;
    bool started = false;
  };
  auto state = std::make_shared<State>();
  auto start = std::chrono::steady_clock::now();
  auto shared_call = std::make_shared<Call>(std::move(call));
  auto open_stream = [this, shared_call, state] {
    if (state->started) return;
    state->started = true;
    http::response<http::empty_body> header{http::status::ok, shared_call->request().version()};
    header.set(http::field::content_type, "text/event-stream");
    header.set(http::field::cache_control, "no-store");
    header.set("X-Request-Id", shared_call->ctx->request_id);
    header.set("X-Content-Type-Options", "nosniff");
    shared_call->out->StartStream(std::move(header), std::nullopt);
  };
  Executor::OutputFn on_output = [shared_call, state, open_stream](OutputStream stream, std::string_view bytes) {
    std::lock_guard lock(state->mu);
    open_stream();
    shared_call->out->Write(SseEvent(stream == OutputStream::kStdout ? "stdout" : "stderr", json{{"text", bytes}}));
  };
  Executor::DoneFn on_done = [this, shared_call, state, open_stream, start](StatusOr<SessionResult> result) {
    Release(shared_call->thread_id);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const Call& c = *shared_call;
    if (!result.ok()) {
      metrics.ObserveExecution(std::string(HttpStatusOf(result.status()).second), seconds);
      std::lock_guard lock(state->mu);
      if (state->started) {
        auto [status, code] = HttpStatusOf(result.status());
        c.out->Write(SseEvent("error", {{"error", {{"code", code}, {"message", result.status().message()}}}}));
        c.out->Finish();
        return;
      }
      Status st = result.status();
      Blocking([this, shared_call, st] { SendStatus(*shared_call, st); });
      return;
    }
    metrics.ObserveExecution(OutcomeOf(result.value()), seconds);
    json j = ExecutionJson(c.thread_id, result.value());
    if (c.request()[http::field::accept].find("text/event-stream") != std::string_view::npos) {
      std::lock_guard lock(state->mu);
      open_stream();
      // Each shown output as its own event, in order, then the result (which holds them too).
      for (const json& shown : j["display"]) c.out->Write(SseEvent("display", {{"data", shown}}));
      c.out->Write(SseEvent("result", j));
      c.out->Finish();
      return;
    }
    SendJson(c, http::status::ok, j);
  };
  if (!request.stream) {
    // A worker's result goes out as the worker wrote it (executor.h): the bytes SendJson
    // would write after reading it in and out again.
    request.on_rendered = [this, shared_call, start](ExecRequest::Rendered r) {
      Release(shared_call->thread_id);
      metrics.ObserveExecution(r.outcome, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      SendJsonText(*shared_call, http::status::ok, std::move(r.json));
    };
  }
  bool stream = request.stream;
  // A quick non-durable execution of a session live here runs on this (I/O) thread: no
  // hand-off to an execution thread and back (executor.h).
  if (!stream && options.inline_on_io_threads && options.inline_budget.count() > 0) {
    if (auto done = executor->TryRunHere(request, options.inline_budget)) return on_done(std::move(*done));
  }
  executor->Execute(std::move(request), stream ? std::move(on_output) : nullptr, std::move(on_done));
}

// ---- Files.

void Server::Impl::ListFiles(Call call) {
  std::string prefix = call.query.contains("prefix") ? call.query["prefix"] : "";
  Blocking([this, call = std::move(call), prefix] {
    auto list = files->List(call.thread_id, prefix);
    if (!list.ok()) return SendStatus(call, list.status());
    json out = json::array();
    for (const auto& f : list.value()) out.push_back(FileInfoJson(f));
    SendJson(call, http::status::ok, {{"files", std::move(out)}});
  });
}

void Server::Impl::DownloadFileApi(Call call) { DownloadFile(std::move(call), false); }

void Server::Impl::UploadFile(Call call) {
  std::string path = call.params["path"];
  std::string content_type(call.request()[http::field::content_type]);
  // A client that says nothing in particular gets the type detected from the name and bytes.
  if (content_type == "application/octet-stream" || content_type == "application/x-www-form-urlencoded") content_type.clear();
  Blocking([this, call = std::move(call), path, content_type] {
    std::string content = call.request().body();
    auto info = files->Write(call.thread_id, path, std::move(content), content_type);
    if (!info.ok()) return SendStatus(call, info.status());
    SendJson(call, http::status::ok, FileInfoJson(info.value()));
  });
}

void Server::Impl::DeleteFile(Call call) {
  std::string path = call.params["path"];
  Blocking([this, call = std::move(call), path] {
    if (Status st = files->Delete(call.thread_id, path); !st.ok()) return SendStatus(call, st);
    SendJson(call, http::status::ok, {{"path", path}, {"deleted", true}});
  });
}

void Server::Impl::ReadFile(Call call) {
  auto body = JsonBody(*this, call);
  if (!body) return;
  Fields f{*this, call, *body};
  auto path = f.String("path", true);
  auto offset = f.Int("offset", 0, int64_t{1} << 40);
  auto limit = f.Int("limit", 0, int64_t{1} << 40);
  if (f.failed) return;
  Blocking([this, call = std::move(call), path = GuestPath(*path), offset = offset.value_or(0), limit = limit.value_or(-1)] {
    auto data = files->Read(call.thread_id, path, offset, limit);
    if (!data.ok()) return SendStatus(call, data.status());
    const auto& d = data.value();
    bool text = IsValidUtf8(d.content);
    json j = {{"path", d.info.path},
              {"size", d.info.size},
              {"content_type", d.info.content_type},
              {"offset", offset},
              {"bytes", d.content.size()},
              {"eof", offset + static_cast<int64_t>(d.content.size()) >= d.info.size},
              {"encoding", text ? "utf-8" : "base64"},
              {"content", text ? d.content : Base64Encode(d.content)}};
    SendJson(call, http::status::ok, j);
  });
}

void Server::Impl::WriteFile(Call call) {
  auto body = JsonBody(*this, call);
  if (!body) return;
  Fields f{*this, call, *body};
  auto path = f.String("path", true);
  auto content = f.String("content", true);
  auto encoding = f.String("encoding", false);
  auto content_type = f.String("content_type", false);
  if (f.failed) return;
  std::string bytes;
  if (!encoding || *encoding == "utf-8") {
    bytes = std::move(*content);
  } else if (*encoding == "base64") {
    auto decoded = Base64Decode(*content);
    if (!decoded) return SendError(call, http::status::bad_request, "invalid_argument", "'content' is not valid base64");
    bytes = std::move(*decoded);
  } else {
    return SendError(call, http::status::bad_request, "invalid_argument", "'encoding' must be \"utf-8\" or \"base64\"");
  }
  Blocking([this, call = std::move(call), path = GuestPath(*path), bytes = std::move(bytes),
            type = content_type.value_or("")]() mutable {
    auto info = files->Write(call.thread_id, path, std::move(bytes), type);
    if (!info.ok()) return SendStatus(call, info.status());
    SendJson(call, http::status::ok, FileInfoJson(info.value()));
  });
}

void Server::Impl::EditFile(Call call) {
  auto body = JsonBody(*this, call);
  if (!body) return;
  Fields f{*this, call, *body};
  auto path = f.String("path", true);
  auto old_text = f.String("old_text", true);
  auto new_text = f.String("new_text", true);
  bool all = f.Bool("replace_all");
  if (f.failed) return;
  Blocking([this, call = std::move(call), path = GuestPath(*path), old_text = *old_text, new_text = *new_text, all] {
    auto n = files->Edit(call.thread_id, path, old_text, new_text, all);
    if (!n.ok()) return SendStatus(call, n.status());
    SendJson(call, http::status::ok, {{"path", path}, {"replacements", n.value()}});
  });
}

void Server::Impl::GlobFiles(Call call) {
  auto body = JsonBody(*this, call);
  if (!body) return;
  Fields f{*this, call, *body};
  auto pattern = f.String("pattern", true);
  if (f.failed) return;
  Blocking([this, call = std::move(call), pattern = GuestPath(*pattern)] {
    auto list = files->Glob(call.thread_id, pattern);
    if (!list.ok()) return SendStatus(call, list.status());
    json out = json::array();
    for (const auto& fi : list.value()) out.push_back(FileInfoJson(fi));
    SendJson(call, http::status::ok, {{"files", std::move(out)}});
  });
}

void Server::Impl::GrepFiles(Call call) {
  auto body = JsonBody(*this, call);
  if (!body) return;
  Fields f{*this, call, *body};
  auto pattern = f.String("pattern", true);
  auto glob = f.String("path_glob", false);
  auto mode = f.String("mode", false);
  bool ignore_case = f.Bool("case_insensitive");
  auto max_lines = f.Int("max_lines", 1, 10'000);
  if (f.failed) return;
  GrepOptions g;
  if (!mode || *mode == "content") {
    g.mode = GrepMode::kContent;
  } else if (*mode == "files_with_matches") {
    g.mode = GrepMode::kFilesWithMatches;
  } else if (*mode == "count") {
    g.mode = GrepMode::kCount;
  } else {
    return SendError(call, http::status::bad_request, "invalid_argument",
                     "'mode' must be \"content\", \"files_with_matches\" or \"count\"");
  }
  g.case_insensitive = ignore_case;
  if (glob) g.path_glob = GuestPath(*glob);
  if (max_lines) g.max_lines = *max_lines;
  Blocking([this, call = std::move(call), pattern = *pattern, g] {
    auto r = files->Grep(call.thread_id, pattern, g);
    if (!r.ok()) return SendStatus(call, r.status());
    SendJson(call, http::status::ok, GrepResultJson(r.value(), g.mode));
  });
}

void Server::Impl::MetricsPage(Call call) {
  Metrics::Gauges g;
  g.live_sessions = executor->LiveSessions();
  g.stale_live_runs = executor->StaleLiveRuns();
  g.executions_in_flight = executor->InFlight();
  g.worker_restarts = executor->WorkerRestarts();
  g.open_connections = static_cast<int64_t>(http->open_connections());
  auto res = MakeResponse(call.request(), http::status::ok, metrics.Render(g), "text/plain; version=0.0.4");
  call.out->Send(std::move(res));
}

// ---- Wheels.

void Server::Impl::PipInstall(Call call) {
  Blocking([this, call = std::move(call)] {
    auto r = wheels->Install(call.thread_id, call.request().body());
    if (!r.ok()) return SendStatus(call, r.status());
    SendJson(call, http::status::ok, ToJson(r.value()));
  });
}

void Server::Impl::PipList(Call call) {
  Blocking([this, call = std::move(call)] {
    auto r = wheels->List(call.thread_id);
    if (!r.ok()) return SendStatus(call, r.status());
    json out = json::array();
    for (const InstalledPackage& p : r.value()) out.push_back(ToJson(p));
    SendJson(call, http::status::ok, {{"packages", out}});
  });
}

void Server::Impl::PipUninstall(Call call) {
  std::string name = call.params["name"];
  Blocking([this, call = std::move(call), name] {
    auto r = wheels->Uninstall(call.thread_id, name);
    if (!r.ok()) return SendStatus(call, r.status());
    SendJson(call, http::status::ok, ToJson(r.value()));
  });
}

}  // namespace brig::server
