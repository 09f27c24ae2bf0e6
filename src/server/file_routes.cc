// The file server, compatible with mayflower-sandbox's: GET /health, GET /files/{thread_id}
// (the JSON array of paths), GET/HEAD /files/{thread_id}/{path} (the file, streamed, with
// Range, ETag and a Content-Security-Policy that keeps an HTML file from running scripts on
// the server's origin). GET /v1/sessions/{thread_id}/files/{path} answers the same way.
#include "server/api_json.h"
#include "server/server_internal.h"
#include "server/signed_link.h"

namespace brig::server {

using nlohmann::json;
using http::verb;

namespace {

// Bytes read from the store per piece of a download: memory per download stays bounded.
constexpr int64_t kDownloadChunk = 1 << 20;

// A file a browser opens must not act on the server's origin: no scripts, no plugins, its own
// unique origin (CSP sandbox), and no guessing of the type.
constexpr const char* kFileCsp = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'";

std::string ETagOf(const FileInfo& info) {
  char buf[64];
  snprintf(buf, sizeof buf, "\"%llx-%llx\"", static_cast<unsigned long long>(info.size),
           static_cast<unsigned long long>(info.modified_at));
  return buf;
}

// One "bytes=" range of a file of `size` bytes, as [first, last]. nullopt: no usable Range
// (absent, several ranges, another unit: the whole file is sent); {1, 0}: unsatisfiable.
std::optional<std::pair<int64_t, int64_t>> ParseRange(std::string_view header, int64_t size) {
  if (!header.starts_with("bytes=")) return std::nullopt;
  std::string_view spec = header.substr(6);
  if (spec.find(',') != std::string_view::npos) return std::nullopt;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view s, int64_t* out) {
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string_view::npos) return false;
    *out = std::stoll(std::string(s));
    return true;
  };
  int64_t first = 0, last = 0;
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  if (a.empty()) {  // the last b bytes
    if (!number(b, &last) || last == 0) return std::pair<int64_t, int64_t>{1, 0};
    if (size == 0) return std::pair<int64_t, int64_t>{1, 0};
    return std::pair<int64_t, int64_t>{std::max<int64_t>(0, size - last), size - 1};
  }
  if (!number(a, &first)) return std::nullopt;
  if (b.empty()) {
    last = size - 1;
  } else if (!number(b, &last) || last < first) {
    return std::nullopt;
  }
  if (first >= size) return std::pair<int64_t, int64_t>{1, 0};
  return std::pair<int64_t, int64_t>{first, std::min(last, size - 1)};
}

std::string BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

}  // namespace

void Server::Impl::AddFileRoutes() {
  RouteSpec health;
  health.auth = AuthKind::kNone;
  health.fn = [this](Call c) { Health(std::move(c)); };
  router.Add(verb::get, "/health", std::move(health));
  RouteSpec list;
  list.fn = [this](Call c) {
    SyncThen(ExecRequest::Sync::kWrite, std::move(c), [this](Call c2) { FileServerList(std::move(c2)); });
  };
  router.Add(verb::get, "/files/{thread_id}", std::move(list));
  RouteSpec file;
  file.auth = AuthKind::kTokenOrLink;
  file.fn = [this](Call c) {
    SyncThen(ExecRequest::Sync::kWrite, std::move(c), [this](Call c2) { DownloadFile(std::move(c2), true); });
  };
  router.Add(verb::get, "/files/{thread_id}/{path...}", std::move(file));
}

void Server::Impl::Health(Call call) {
  Blocking([this, call = std::move(call)] {
    auto start = std::chrono::steady_clock::now();
    Status ping = store->Ping();
    metrics.ObserveStore(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!ping.ok())
      return SendJson(call, http::status::service_unavailable,
                      {{"status", "unhealthy"}, {"store", std::string(store->backend())}, {"error", ping.message()}});
    SendJson(call, http::status::ok, {{"status", "ok"}, {"store", std::string(store->backend())}});
  });
}

void Server::Impl::FileServerList(Call call) {
  std::string prefix = call.query.contains("prefix") ? call.query["prefix"] : "";
  Blocking([this, call = std::move(call), prefix] {
    auto list = files->List(call.thread_id, prefix);
    if (!list.ok()) return SendStatus(call, list.status());
    json out = json::array();
    for (const auto& f : list.value())
      if (!f.is_directory()) out.push_back(f.path);
    SendJson(call, http::status::ok, out);
  });
}

void Server::Impl::DownloadFile(Call call, bool file_server) {
  (void)file_server;
  Blocking([this, call = std::make_shared<Call>(std::move(call))] {
    const std::string path = call->params["path"];
    // The first piece comes with the file's info; a file of one piece is read once.
    auto first = files->Read(call->thread_id, path, 0, kDownloadChunk);
    if (!first.ok()) return SendStatus(*call, first.status());
    const FileInfo info = first.value().info;
    const Request& req = call->request();
    std::string etag = ETagOf(info);
    auto common = [&](http::response<http::empty_body>& h) {
      h.set(http::field::etag, etag);
      h.set(http::field::cache_control, "private, no-cache");
      h.set("X-Content-Type-Options", "nosniff");
      h.set("Content-Security-Policy", kFileCsp);
      h.set("X-Request-Id", call->ctx->request_id);
      h.set(http::field::accept_ranges, "bytes");
    };
    if (auto inm = req[http::field::if_none_match]; !inm.empty() && (inm == etag || inm == "*")) {
      http::response<http::empty_body> h{http::status::not_modified, req.version()};
      common(h);
      call->out->StartStream(std::move(h), 0);
      call->out->Finish();
      return;
    }
    int64_t begin = 0, end = info.size;  // [begin, end)
    http::status status = http::status::ok;
    http::response<http::empty_body> h{status, req.version()};
    common(h);
    if (auto range_header = req[http::field::range]; !range_header.empty()) {
      auto range = ParseRange(Sv(range_header), info.size);
      if (range && range->first > range->second) {
        http::response<http::string_body> r = MakeResponse(req, http::status::range_not_satisfiable, "", "text/plain");
        r.set(http::field::content_range, "bytes */" + std::to_string(info.size));
        call->out->Send(std::move(r));
        return;
      }
      if (range) {
        begin = range->first;
        end = range->second + 1;
        h.result(http::status::partial_content);
        h.set(http::field::content_range, "bytes " + std::to_string(begin) + "-" + std::to_string(end - 1) + "/" +
                                              std::to_string(info.size));
      }
    }
    h.set(http::field::content_type, info.content_type.empty() ? "application/octet-stream" : info.content_type);
    std::string disposition = call->query.contains("disposition") && call->query["disposition"] == "attachment"
                                  ? "attachment"
                                  : "inline";
    h.set(http::field::content_disposition,
          disposition + "; filename*=UTF-8''" + PercentEncode(BaseName(info.path), false));
    call->out->StartStream(std::move(h), static_cast<uint64_t>(end - begin));
    if (req.method() == verb::head || begin == end) return call->out->Finish();
    // Pieces, each read when the previous one is on the wire. A file that changes while it
    // is sent ends the connection early: the client sees a short body, not a mixed one.
    auto piece = std::make_shared<std::function<void(int64_t, std::string)>>();
    *piece = [this, call, info, end, piece](int64_t at, std::string bytes) {
      int64_t next = at + static_cast<int64_t>(bytes.size());
      bool more = next < end;
      call->out->Write(std::move(bytes), [this, call, info, end, next, more, piece](bool ok) {
        if (!ok) {
          *piece = nullptr;  // breaks the cycle
          return;
        }
        if (!more) {
          *piece = nullptr;
          return call->out->Finish();
        }
        Blocking([this, call, info, end, next, piece] {
          auto data = files->Read(call->thread_id, info.path, next, std::min(kDownloadChunk, end - next));
          if (!data.ok() || data.value().info.modified_at != info.modified_at || data.value().content.empty()) {
            *piece = nullptr;
            return call->out->Abort();
          }
          (*piece)(next, std::move(data.value().content));
        });
      });
    };
    std::string content = std::move(first.value().content);
    if (begin == 0 && static_cast<int64_t>(content.size()) >= end) {
      content.resize(static_cast<size_t>(end));
      return (*piece)(0, std::move(content));
    }
    auto data = files->Read(call->thread_id, path, begin, std::min(kDownloadChunk, end - begin));
    if (!data.ok() || data.value().info.modified_at != info.modified_at) return call->out->Abort();
    (*piece)(begin, std::move(data.value().content));
  });
}

}  // namespace brig::server
