// brig::server::Server: `brig serve`. The JSON API under /v1 (docs/openapi.json), the
// mayflower-compatible file server (/health, /files/...), and /metrics, over one store.
// A thin shell: sessions, files and executions are brig::Sessions, SessionManager and
// FileService; executions run in an Executor (in-process threads or worker processes).
//
// Authentication (auth.h): with tokens, every route but /health needs a bearer token (or,
// for GET /files/..., a signed link, signed_link.h). Without tokens the server only listens
// on a loopback address: Start refuses any other (InvalidArgument).
//
// Lifecycle: Start binds and serves; Shutdown (SIGTERM in `brig serve`) stops accepting,
// lets running executions finish for up to shutdown_grace (they save as usual), answers
// those still running then with 503 (worker processes are stopped; in-process threads are
// left to the process's exit), then closes everything. Thread-safety: Start/Shutdown/port from one thread.
#ifndef BRIG_SERVER_SERVER_H_
#define BRIG_SERVER_SERVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "brig/sessions.h"
#include "brig/status.h"
#include "server/http_server.h"

namespace brig::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see Server::port)
  std::string store_url;
  // Worker processes running executions (0: threads of this process, no crash containment).
  int workers = 0;
  // Executions running at once per worker (or in this process with workers = 0).
  int execution_threads = 3;  // brig serve's --threads default (src/cli/serve_command.cc says why)
  // Executions waiting for a thread, in all; past it 429.
  size_t max_queued_executions = 256;
  // Executions of one session running or waiting at once; past it 429 (they would only
  // wait for the session's lock).
  int max_executions_per_session = 4;
  std::string tokens_file;            // empty: $BRIG_TOKENS (auth.h)
  std::string link_key_file;          // empty: $BRIG_LINK_KEY, else default_link_key_file
  std::string default_link_key_file;  // REQUIRES: set ($BRIG_HOME/link.key in brig serve)
  HttpLimits http;
  int io_threads = 2;
  // A non-durable execution ("durable": false, not streamed) of a session a worker process
  // holds live and idle runs on the thread that reads the worker's socket if it finishes
  // within this; one that runs longer is rolled back and handed to the worker's execution
  // threads (Sessions::TryExecuteLive). 0: always hand off.
  std::chrono::microseconds inline_budget{2000};
  // The same in this process (--workers 0), on the I/O thread that read the request. Off by
  // default: measured on the shared 2-core machine, no less CPU per execution and fewer
  // executions/s with a worse p99 (bench/RESULTS.md, 2026-12-05).
  bool inline_on_io_threads = false;
  // The nice value of the worker processes' execution threads (thread_nice.h), 0..19.
  int execution_nice = 6;
  // Threads for store and file operations, which block.
  int blocking_threads = 8;
  // The cleanup job (expired sessions, orphans) every this often; 0: never.
  std::chrono::seconds cleanup_every{0};
  std::chrono::milliseconds shutdown_grace{30'000};
  // A worker process silent this long (no heartbeat: stopped, stuck) is killed and
  // replaced; its executions get 503 (worker_pool.h).
  std::chrono::milliseconds worker_timeout{10'000};
  Sessions::Options sessions;
  // Where the one-line JSON logs go (default: stderr).
  std::function<void(const std::string&)> log_line;
};

class Server {
 public:
  // InvalidArgument (bad options, tokens or key; no tokens on a non-loopback address),
  // Unavailable (store unreachable, address in use).
  static StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();

  uint16_t port() const;
  // Stops as described above. Idempotent. False if an in-process execution was still
  // running when the grace ran out: it was answered 503 and its thread left running, so the
  // Sessions and store are leaked on purpose; the caller should exit the process soon
  // (brig serve does, with _exit, without running static destructors).
  bool Shutdown();

  // Every route the server answers: (method, pattern), e.g. ("GET", "/v1/sessions").
  static std::vector<std::pair<std::string, std::string>> Routes();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brig::server

#endif  // BRIG_SERVER_SERVER_H_
