// http_load: the load benchmark of `brig serve` (issue #10). Many sessions, each executing a
// small snippet again and again, over keep-alive connections to a server on loopback.
//
//   http_load URL [--connections N] [--sessions N] [--seconds S] [--warmup S] [--code CODE]
//                 [--token T] [--prefix P] [--path P] [--durable false] [--threads N]
//                 [--latency-log FILE]
//
// Each connection takes sessions round-robin (session i on connection i % N), so executions of
// one session never overlap. Prints executions/s, p50/p99 latency (ms) and errors (any answer
// but 200 with "ok": true counts). The server decides durability (every execution is saved
// before its answer, unless it runs with saving off); see bench/serve_load.py, which starts
// the servers and records both.
//
// Lean on purpose: it shares the machine's cores with the server it measures, so the figure
// must be the server's. One thread (--threads, default 1) drives all connections with epoll
// and non-blocking sockets; every request is built once, before the run; a response is
// parsed only as far as its status, Content-Length and the "ok" field. (It used one thread
// per connection and Beast's synchronous calls before: a context switch and a few
// allocations per request, on the server's cores.)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "8080";
  int connections = 32;
  int sessions = 256;
  int threads = 1;
  double seconds = 10;
  double warmup = 2;
  std::string code = "x = 1";
  std::string token;
  std::string prefix = "load";
  // --path P: GET P instead of executing (the HTTP layer's own cost; any status counts as ok).
  std::string path;
  // --durable false: executions answered before their save ("durable": false in the API).
  bool durable = true;
  // --latency-log FILE: one line per measured response, "END_MS LATENCY_MS" (END_MS: when it
  // came, from the start of the measured window), to see whether the slow ones come together.
  std::string latency_log;
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

// The whole request for one session (or the --path GET), ready to write.
std::string BuildRequest(const Options& o, int session) {
  std::string head, body;
  if (!o.path.empty()) {
    head = "GET " + o.path + " HTTP/1.1\r\n";
  } else {
    head = "POST /v1/sessions/" + o.prefix + "-" + std::to_string(session) + "/execute HTTP/1.1\r\n";
    body = "{\"code\": " + JsonString(o.code) + (o.durable ? "" : ", \"durable\": false") + "}";
  }
  head += "Host: " + o.host + "\r\n";
  if (!o.token.empty()) head += "Authorization: Bearer " + o.token + "\r\n";
  if (o.path.empty()) head += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  return head + "\r\n" + body;
}

struct Totals {
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::vector<std::pair<double, double>> ends_ms;  // --latency-log: (end, latency)
  Clock::time_point window;  // the measured window's start: set before `measuring`
  uint64_t errors = 0;
  std::string first_error;
};

struct Conn {
  int fd = -1;
  std::vector<const std::string*> requests;  // its sessions' requests, round-robin
  size_t next = 0;
  size_t sent = 0;  // bytes of the current request written
  std::string in;   // response bytes read so far
  Clock::time_point start;
  bool watching_out = false;  // EPOLLOUT is in its registration (a request only partly written)
};

// One response in `in`: 0 = incomplete, else its length in bytes; *status, *keep_alive set.
size_t ParseResponse(const std::string& in, int* status, bool* keep_alive, bool* ok_field) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  std::string_view head(in.data(), end + 2);
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return std::string::npos;
  *status = atoi(std::string(head.substr(9, 3)).c_str());
  size_t length = std::string::npos;
  *keep_alive = true;
  size_t at = head.find("\r\n") + 2;
  while (at < head.size()) {
    size_t eol = head.find("\r\n", at);
    std::string_view line = head.substr(at, eol - at);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name.size() == 14 && strncasecmp(name.data(), "content-length", 14) == 0) length = strtoull(std::string(value).c_str(), nullptr, 10);
      if (name.size() == 10 && strncasecmp(name.data(), "connection", 10) == 0 && value.size() >= 5 &&
          strncasecmp(value.data(), "close", 5) == 0)
        *keep_alive = false;
    }
    at = eol + 2;
  }
  if (length == std::string::npos) return std::string::npos;  // chunked or unframed: not ours
  if (in.size() < end + 4 + length) return 0;
  *ok_field = std::string_view(in).substr(end + 4, length).find("\"ok\":true") != std::string_view::npos;
  return end + 4 + length;
}

int Connect(const addrinfo* ai) {
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// Drives `conns` until `stop`: writes a request, reads its response, records it, repeats.
void Loop(const Options& o, const addrinfo* ai, std::vector<Conn>& conns, std::atomic<bool>& measuring,
          std::atomic<bool>& stop, Totals& totals) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<double> latencies;
  latencies.reserve(1 << 20);
  std::vector<std::pair<double, double>> ends;
  uint64_t errors = 0;
  std::string first_error;
  auto fail = [&](const std::string& why) {
    if (!measuring.load(std::memory_order_relaxed)) return;
    ++errors;
    if (first_error.empty()) first_error = why;
  };
  // Writes as much of c's current request as the socket takes; false on a broken socket.
  auto send_more = [&](Conn& c) {
    const std::string& req = *c.requests[c.next];
    while (c.sent < req.size()) {
      ssize_t n = send(c.fd, req.data() + c.sent, req.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
      }
    }
    return true;
  };
  // Registers (or drops) interest in writability; a system call only when that changes (a
  // request almost always goes out whole, so the registration stays EPOLLIN).
  auto watch_out = [&](Conn& c, bool out) {
    if (out == c.watching_out) return;
    epoll_event ev{};
    ev.data.ptr = &c;
    ev.events = EPOLLIN | (out ? static_cast<uint32_t>(EPOLLOUT) : 0u);
    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    c.watching_out = out;
  };
  auto begin = [&](Conn& c) {
    c.sent = 0;
    c.in.clear();
    c.start = Clock::now();
    const bool ok = send_more(c);
    watch_out(c, c.sent < c.requests[c.next]->size());
    return ok;
  };
  // Opens c's connection again and sends its current request (a new attempt each time the
  // send fails at once, until stop).
  auto reconnect = [&](Conn& c) {
    while (true) {
      if (c.fd >= 0) close(c.fd);
      c.fd = -1;
      while (!stop.load(std::memory_order_relaxed)) {
        c.fd = Connect(ai);
        if (c.fd >= 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (c.fd < 0) return;
      epoll_event ev{};
      ev.data.ptr = &c;
      ev.events = EPOLLIN;
      epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
      c.watching_out = false;
      if (begin(c)) return;
      fail("send failed");
    }
  };
  for (Conn& c : conns) reconnect(c);
  std::vector<epoll_event> events(std::max<size_t>(1, conns.size()));
  char buf[64 * 1024];
  while (!stop.load(std::memory_order_relaxed)) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      Conn& c = *static_cast<Conn*>(events[k].data.ptr);
      if (events[k].events & EPOLLOUT) {
        if (!send_more(c)) {
          fail("send failed");
          reconnect(c);
          continue;
        }
        if (c.sent == c.requests[c.next]->size()) watch_out(c, false);
      }
      if (!(events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      // One read per readiness: the registration is level-triggered, so bytes still waiting
      // (a response larger than buf) report the socket again. (Reading until EAGAIN cost a
      // second, empty recv for every response.)
      bool closed = false;
      ssize_t r;
      do {
        r = recv(c.fd, buf, sizeof buf, 0);
      } while (r < 0 && errno == EINTR);
      if (r > 0) {
        c.in.append(buf, static_cast<size_t>(r));
      } else {
        closed = r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
      }
      int status = 0;
      bool keep_alive = true, ok_field = false;
      size_t used = ParseResponse(c.in, &status, &keep_alive, &ok_field);
      if (used == 0) {
        if (closed) {
          fail("connection closed before the response");
          reconnect(c);
        }
        continue;
      }
      if (used == std::string::npos) {
        fail("a response this tool cannot frame: " + c.in.substr(0, 200));
        reconnect(c);
        continue;
      }
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - c.start).count();
      bool ok = !o.path.empty() || (status == 200 && ok_field);
      if (measuring.load(std::memory_order_relaxed)) {
        if (ok) {
          latencies.push_back(ms);
          if (!o.latency_log.empty()) ends.emplace_back(std::chrono::duration<double, std::milli>(Clock::now() - totals.window).count(), ms);
        } else {
          size_t body = c.in.find("\r\n\r\n");
          fail(std::to_string(status) + " " + c.in.substr(body == std::string::npos ? 0 : body + 4, 300));
        }
      }
      c.next = (c.next + 1) % c.requests.size();
      if (closed || !keep_alive || used != c.in.size()) {
        reconnect(c);
      } else if (!begin(c)) {
        fail("send failed");
        reconnect(c);
      }
    }
  }
  for (Conn& c : conns)
    if (c.fd >= 0) close(c.fd);
  close(ep);
  std::lock_guard lock(totals.mu);
  totals.latencies_ms.insert(totals.latencies_ms.end(), latencies.begin(), latencies.end());
  totals.ends_ms.insert(totals.ends_ms.end(), ends.begin(), ends.end());
  totals.errors += errors;
  if (totals.first_error.empty()) totals.first_error = first_error;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 2 || !ParseUrl(argv[1], &o)) {
    fprintf(stderr, "usage: http_load http://HOST:PORT [--connections N] [--sessions N] [--seconds S] [--warmup S] [--code CODE] [--token T] [--prefix P] [--path P] [--durable false] [--threads N] [--latency-log FILE]\n");
    return 2;
  }
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--connections") o.connections = std::max(1, atoi(value.c_str()));
    else if (flag == "--sessions") o.sessions = std::max(1, atoi(value.c_str()));
    else if (flag == "--threads") o.threads = std::max(1, atoi(value.c_str()));
    else if (flag == "--seconds") o.seconds = atof(value.c_str());
    else if (flag == "--warmup") o.warmup = atof(value.c_str());
    else if (flag == "--code") o.code = value;
    else if (flag == "--token") o.token = value;
    else if (flag == "--prefix") o.prefix = value;
    else if (flag == "--path") o.path = value;
    else if (flag == "--durable") o.durable = value != "false";
    else if (flag == "--latency-log") o.latency_log = value;
    else {
      fprintf(stderr, "http_load: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  addrinfo hints{}, *ai = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (int rc = getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &ai); rc != 0 || !ai) {
    fprintf(stderr, "http_load: cannot resolve %s:%s: %s\n", o.host.c_str(), o.port.c_str(), gai_strerror(rc));
    return 2;
  }
  std::vector<std::string> requests;
  for (int s = 0; s < o.sessions; ++s) requests.push_back(BuildRequest(o, s));
  // Connection i takes sessions i, i + N, ...; a connection with none (more connections than
  // sessions) is not opened.
  std::vector<Conn> all;
  for (int i = 0; i < std::min(o.connections, o.sessions); ++i) {
    Conn c;
    for (int s = i; s < o.sessions; s += o.connections) c.requests.push_back(&requests[static_cast<size_t>(s)]);
    all.push_back(std::move(c));
  }
  const int threads = std::min<int>(o.threads, static_cast<int>(all.size()));
  std::vector<std::vector<Conn>> shares(static_cast<size_t>(threads));
  for (size_t i = 0; i < all.size(); ++i) shares[i % shares.size()].push_back(std::move(all[i]));
  std::atomic<bool> measuring{false}, stop{false};
  Totals totals;
  std::vector<std::thread> workers;
  for (auto& share : shares) workers.emplace_back([&, &share = share] { Loop(o, ai, share, measuring, stop, totals); });
  // Warm-up: every session made and live before the measured window.
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup));
  totals.window = Clock::now();
  measuring = true;
  auto start = totals.window;
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  measuring = false;
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (auto& t : workers) t.join();
  freeaddrinfo(ai);
  auto& l = totals.latencies_ms;
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) { return l.empty() ? 0.0 : l[std::min(l.size() - 1, static_cast<size_t>(p * l.size()))]; };
  printf("executions/s %.0f  p50 %.2f ms  p99 %.2f ms  errors %llu  (connections %d, sessions %d, %.1f s)\n",
         l.size() / elapsed, pct(0.5), pct(0.99), static_cast<unsigned long long>(totals.errors), o.connections, o.sessions,
         elapsed);
  if (!totals.first_error.empty()) printf("first error: %s\n", totals.first_error.c_str());
  if (!o.latency_log.empty()) {
    FILE* f = fopen(o.latency_log.c_str(), "w");
    if (!f) {
      fprintf(stderr, "http_load: cannot write %s\n", o.latency_log.c_str());
      return 2;
    }
    std::sort(totals.ends_ms.begin(), totals.ends_ms.end());
    for (const auto& [end, ms] : totals.ends_ms) fprintf(f, "%.3f %.3f\n", end, ms);
    fclose(f);
  }
  return totals.errors == 0 ? 0 : 1;
}
