// http_load: the load benchmark of `brig serve` (issue #10). Many sessions, each executing a
// small snippet again and again, over keep-alive connections to a server on loopback.
//
//   http_load URL [--connections N] [--sessions N] [--seconds S] [--code CODE] [--token T] [--durable false]
//
// Each connection takes sessions round-robin (session i on connection i % N), so executions of
// one session never overlap. Prints executions/s, p50/p99 latency (ms) and errors (any answer
// but 200 with "ok": true counts). The server decides durability (every execution is saved
// before its answer, unless it runs with saving off); see bench/serve_load.py, which starts
// the servers and records both.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "8080";
  int connections = 32;
  int sessions = 256;
  double seconds = 10;
  double warmup = 2;
  std::string code = "x = 1";
  std::string token;
  std::string prefix = "load";
  // --path P: GET P instead of executing (the HTTP layer's own cost; any status counts as ok).
  std::string path;
  // --durable false: executions answered before their save ("durable": false in the API).
  bool durable = true;
};

bool ParseUrl(const std::string& url, Options* o) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return false;
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  if (slash != std::string::npos) rest = rest.substr(0, slash);
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return false;
  o->host = rest.substr(0, colon);
  o->port = rest.substr(colon + 1);
  return true;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

struct Totals {
  std::mutex mu;
  std::vector<double> latencies_ms;
  uint64_t errors = 0;
  std::string first_error;
};

void Worker(const Options& o, int index, std::atomic<bool>& measuring, std::atomic<bool>& stop, Totals& totals) {
  std::vector<int> mine;
  for (int s = index; s < o.sessions; s += o.connections) mine.push_back(s);
  if (mine.empty()) return;
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  auto connect = [&] {
    beast::error_code ec;
    stream.socket().close(ec);
    stream.connect(resolver.resolve(o.host, o.port));
  };
  connect();
  std::vector<double> latencies;
  uint64_t errors = 0;
  std::string first_error;
  beast::flat_buffer buffer;
  const std::string body =
      "{\"code\": " + JsonString(o.code) + (o.durable ? "" : ", \"durable\": false") + "}";
  for (size_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
    int session = mine[i % mine.size()];
    http::request<http::string_body> req{http::verb::post, "/v1/sessions/" + o.prefix + "-" + std::to_string(session) + "/execute", 11};
    if (!o.path.empty()) {
      req.method(http::verb::get);
      req.target(o.path);
    }
    req.set(http::field::host, o.host);
    req.set(http::field::content_type, "application/json");
    if (!o.token.empty()) req.set(http::field::authorization, "Bearer " + o.token);
    if (o.path.empty()) req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);
    auto start = std::chrono::steady_clock::now();
    http::response<http::string_body> res;
    beast::error_code ec;
    http::write(stream, req, ec);
    if (!ec) http::read(stream, buffer, res, ec);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    bool ok = !ec && (!o.path.empty() || (res.result() == http::status::ok && res.body().find("\"ok\":true") != std::string::npos));
    if (measuring.load(std::memory_order_relaxed)) {
      if (ok) {
        latencies.push_back(ms);
      } else {
        ++errors;
        if (first_error.empty())
          first_error = ec ? ec.message() : std::to_string(res.result_int()) + " " + res.body().substr(0, 300);
      }
    }
    if (ec || !res.keep_alive()) {
      try {
        connect();
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  std::lock_guard lock(totals.mu);
  totals.latencies_ms.insert(totals.latencies_ms.end(), latencies.begin(), latencies.end());
  totals.errors += errors;
  if (totals.first_error.empty()) totals.first_error = first_error;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 2 || !ParseUrl(argv[1], &o)) {
    fprintf(stderr, "usage: http_load http://HOST:PORT [--connections N] [--sessions N] [--seconds S] [--warmup S] [--code CODE] [--token T] [--prefix P] [--path P] [--durable false]\n");
    return 2;
  }
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--connections") o.connections = std::max(1, atoi(value.c_str()));
    else if (flag == "--sessions") o.sessions = std::max(1, atoi(value.c_str()));
    else if (flag == "--seconds") o.seconds = atof(value.c_str());
    else if (flag == "--warmup") o.warmup = atof(value.c_str());
    else if (flag == "--code") o.code = value;
    else if (flag == "--token") o.token = value;
    else if (flag == "--prefix") o.prefix = value;
    else if (flag == "--path") o.path = value;
    else if (flag == "--durable") o.durable = value != "false";
    else {
      fprintf(stderr, "http_load: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  std::atomic<bool> measuring{false}, stop{false};
  Totals totals;
  std::vector<std::thread> threads;
  for (int i = 0; i < o.connections; ++i)
    threads.emplace_back([&, i] {
      try {
        Worker(o, i, measuring, stop, totals);
      } catch (const std::exception& e) {
        std::lock_guard lock(totals.mu);
        ++totals.errors;
        if (totals.first_error.empty()) totals.first_error = e.what();
      }
    });
  // Warm-up: every session made and live before the measured window.
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup));
  measuring = true;
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  measuring = false;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stop = true;
  for (auto& t : threads) t.join();
  auto& l = totals.latencies_ms;
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) { return l.empty() ? 0.0 : l[std::min(l.size() - 1, static_cast<size_t>(p * l.size()))]; };
  printf("executions/s %.0f  p50 %.2f ms  p99 %.2f ms  errors %llu  (connections %d, sessions %d, %.1f s)\n",
         l.size() / elapsed, pct(0.5), pct(0.99), static_cast<unsigned long long>(totals.errors), o.connections, o.sessions,
         elapsed);
  if (!totals.first_error.empty()) printf("first error: %s\n", totals.first_error.c_str());
  return totals.errors == 0 ? 0 : 1;
}
