// brig serve [--listen HOST:PORT] [--db URL] [--workers N] [--tokens FILE] ...
// Runs the HTTP server (src/server/server.h) until SIGTERM or SIGINT, then stops accepting,
// lets running executions finish (up to --grace seconds), and exits 0.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/output.h"
#include "server/server.h"

namespace brig::cli {

namespace {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string db;
  int workers = -1;  // -1: one per core
  // 3, not 4: on 2 cores the same durable rate or more with a shorter tail (fewer executions
  // share the CPUs at once; with 3 threads per place on SQLite, p99 20.6-20.9 ms against
  // 26.5-29.4 ms for 4 and 4; bench/RESULTS.md, stop 30).
  int threads = 3;
  int io_threads = -1;  // -1: one per two cores (bench/RESULTS.md, 2026-12-05 13:40)
  std::string tokens;
  std::string link_key;
  double cleanup_every = 0;
  double grace = 30;
  double worker_timeout = 10;
  double inline_ms = 2;
  bool inline_io = false;
  int execution_nice = 6;  // bench/RESULTS.md, stop 26
  double timeout = 30;
  uint64_t memory_mb = 256;
  int per_session = 4;
  size_t max_live = 1024;
  uint64_t max_live_mb = 0;  // 0: a quarter of the memory, shared by the workers
  // Not Sessions' 10 s: a compacted session's next execution pays ~3-4 ms to wake (on this
  // kind of virtual machine, mostly page faults), and agents come back after tens of
  // seconds; the memory of live sessions is bounded by --max-live-mb anyway. Measured: 2,500
  // sessions each used every ~10 s, 236 executions/s compacting after 10 s, 882/s without
  // (bench/RESULTS.md, 2026-12-06).
  double compact_after = 60;
  double header_timeout = 10;
  double body_timeout = 60;
  double idle_timeout = 30;
  uint64_t max_body_mb = 32;
  size_t max_connections = 1024;
  size_t max_queue = 256;
};

// "127.0.0.1:8080", "[::1]:8080", ":8080" (loopback). False if malformed.
bool SplitListen(const std::string& listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  std::string h = listen.substr(0, colon), p = listen.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) h = "127.0.0.1";
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  unsigned long n = std::stoul(p);
  if (n > 65535) return false;
  *host = h;
  *port = static_cast<uint16_t>(n);
  return true;
}

// The memory this machine has, or this process's cgroup (v2) if it is given less (systemd's
// MemoryMax=, a container's limit), in bytes; 0 if unknown.
uint64_t MemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  uint64_t bytes = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
  std::ifstream self("/proc/self/cgroup");  // "0::/system.slice/brig.service" on cgroup v2
  std::string line, path;
  while (std::getline(self, line)) {
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  }
  if (path.empty() || path.find("..") != std::string::npos) return bytes;
  std::ifstream limit("/sys/fs/cgroup" + (path == "/" ? "" : path) + "/memory.max");  // "max": none
  uint64_t cgroup = 0;
  if (limit >> cgroup && cgroup > 0 && (bytes == 0 || cgroup < bytes)) bytes = cgroup;
  return bytes;
}

// --max-live-mb's default, per worker: the live sessions of all workers together may hold a
// quarter of the memory (at least 256 MiB each).
uint64_t DefaultLiveBytes(int processes) {
  const uint64_t quarter = MemoryBytes() / 4 / static_cast<uint64_t>(processes);
  return std::max<uint64_t>(quarter, uint64_t{256} << 20);
}

int RunServe(const ServeOptions& opt) {
  server::ServerOptions options;
  if (!SplitListen(opt.listen, &options.host, &options.port)) {
    PrintError("--listen wants HOST:PORT, e.g. 127.0.0.1:8080");
    return kExitUsage;
  }
  auto home = BrigHomeDir();
  if (!home.ok()) return ReportFailure(home.status());
  options.store_url = ResolveStoreUrl(opt.db);
  options.workers = opt.workers >= 0 ? opt.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.execution_threads = opt.threads;
  // The workers run the executions; the HTTP side needs fewer threads than cores, and each
  // one more costs context switches (on 2 cores, 1 thread: ~20% less server CPU non-durable).
  options.io_threads = opt.io_threads > 0 ? opt.io_threads
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency() / 2));
  options.tokens_file = opt.tokens;
  options.link_key_file = opt.link_key;
  options.default_link_key_file = home.value() + "/link.key";
  options.cleanup_every = std::chrono::seconds(static_cast<int64_t>(opt.cleanup_every));
  options.shutdown_grace = std::chrono::milliseconds(static_cast<int64_t>(opt.grace * 1000));
  options.worker_timeout = std::chrono::milliseconds(static_cast<int64_t>(opt.worker_timeout * 1000));
  options.inline_budget = std::chrono::microseconds(static_cast<int64_t>(opt.inline_ms * 1000));
  options.inline_on_io_threads = opt.inline_io;
  options.execution_nice = opt.execution_nice;
  options.max_executions_per_session = opt.per_session;
  options.max_queued_executions = opt.max_queue;
  options.http.header_timeout = std::chrono::milliseconds(static_cast<int64_t>(opt.header_timeout * 1000));
  options.http.body_timeout = std::chrono::milliseconds(static_cast<int64_t>(opt.body_timeout * 1000));
  options.http.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(opt.idle_timeout * 1000));
  options.http.body_bytes = opt.max_body_mb << 20;
  options.http.max_connections = opt.max_connections;
  options.sessions.store_url = options.store_url;
  options.sessions.limits.timeout_seconds = opt.timeout;
  options.sessions.limits.memory_bytes = opt.memory_mb << 20;
  options.sessions.max_live = opt.max_live;
  options.sessions.compact_idle_after = std::chrono::milliseconds(static_cast<int64_t>(opt.compact_after * 1000));
  options.sessions.max_live_bytes =
      opt.max_live_mb ? opt.max_live_mb << 20 : DefaultLiveBytes(std::max(1, options.workers));
  StoreOptions tuning;
  if (Status st = StoreTuningFromEnv(&tuning); !st.ok()) return ReportFailure(st);
  options.sessions.pool_size = tuning.pool_size;
  options.sessions.statement_timeout = tuning.statement_timeout;

  // The signals are taken by sigwait below, in this thread only: block them before any
  // thread starts, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = server::Server::Start(options);
  if (!server.ok()) return ReportFailure(server.status());
  std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  std::string url = "http://" + host + ":" + std::to_string(server.value()->port());
  fprintf(stderr, "brig serve: listening on %s (store %s)\n", url.c_str(),
          options.store_url.starts_with("postgres") ? "postgresql" : options.store_url.c_str());
  fprintf(stderr, "try: curl -s %s/v1/sessions/demo/execute -d '{\"code\": \"x = 6 * 7\\nx\"}'\n", url.c_str());
  fflush(stderr);

  int sig = 0;
  sigwait(&signals, &sig);
  fprintf(stderr, "brig serve: %s: stopping (running executions get %.0f s to finish)\n",
          sig == SIGTERM ? "SIGTERM" : "SIGINT", opt.grace);
  if (!server.value()->Shutdown()) {
    // An in-process execution outlived --grace: its thread still runs guest code, so no
    // destructor may run now. Its client was answered 503; the store never saw a partial save.
    fprintf(stderr, "brig serve: stopped (an execution still running after the grace was abandoned)\n");
    fflush(stderr);
    _exit(kExitOk);
  }
  server.value().reset();
  fprintf(stderr, "brig serve: stopped\n");
  return kExitOk;
}

}  // namespace

Runner AddServeCommand(CLI::App& app) {
  auto opt = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve the HTTP API, the file server and /metrics");
  cmd->add_option("--listen", opt->listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
  AddStoreOption(cmd, &opt->db);
  cmd->add_option("--workers", opt->workers, "Worker processes running executions (default: one per core; 0: in this process)")
      ->check(CLI::Range(0, 256));
  cmd->add_option("--threads", opt->threads, "Executions doing CPU work at once (per worker; a durable one waiting for its commit gives its place; default 3)")->check(CLI::Range(1, 256));
  cmd->add_option("--io-threads", opt->io_threads, "Threads serving HTTP connections (default: one per two cores, at least 1)")->check(CLI::Range(1, 64));
  cmd->add_option("--tokens", opt->tokens, "File of bearer tokens (default $BRIG_TOKENS; README: Authentication)");
  cmd->add_option("--link-key", opt->link_key, "File holding the key of signed file links (default $BRIG_LINK_KEY, else $BRIG_HOME/link.key)");
  cmd->add_option("--cleanup-every", opt->cleanup_every, "Run the cleanup job every SECONDS (0: never)")
      ->check(CLI::Range(0.0, 1e7));
  cmd->add_option("--grace", opt->grace, "Seconds running executions get to finish on SIGTERM")->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--worker-timeout", opt->worker_timeout,
                  "Seconds a worker process may stay silent (no heartbeat: stopped, hung) before it is killed and replaced")
      ->check(CLI::Range(2.0, 3600.0));
  cmd->add_option("--inline-ms", opt->inline_ms,
                  "A worker runs a quick non-durable execution of a live session on the thread that read it if it "
                  "ends within this many ms (else it is rolled back and handed off); 0: always hand off")
      ->check(CLI::Range(0.0, 1000.0));
  cmd->add_option("--execution-nice", opt->execution_nice,
                  "Nice value (0-19) of the worker threads that run guest code: the server's own work goes first "
                  "(default 6)")
      ->check(CLI::Range(0, 19));
  cmd->add_flag("--inline-io", opt->inline_io,
                "With --workers 0: run those quick executions on the HTTP I/O threads too (default: hand them off)");
  cmd->add_option("--timeout", opt->timeout, "Default time limit of an execution, seconds")->check(CLI::Range(0.001, 3600.0));
  cmd->add_option("--memory", opt->memory_mb, "Default memory limit of an execution, MiB")->check(CLI::Range(16, 4096));
  cmd->add_option("--max-per-session", opt->per_session, "Executions of one session running or waiting at once")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--max-live", opt->max_live, "Sessions kept live in memory (per worker; 0: restore each time)")
      ->check(CLI::Range(0, 1'000'000));
  cmd->add_option("--max-live-mb", opt->max_live_mb,
                  "Memory the live sessions of a worker may hold, MiB (default: a quarter of the machine's, shared "
                  "by the workers, at least 256); past it or --max-live the least recently used go")
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--compact-after", opt->compact_after,
                  "Seconds a live session stays idle before it is compacted (~40 KiB instead of ~1 MiB; its next "
                  "execution then takes a few ms more)")
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--max-queue", opt->max_queue, "Executions waiting for a thread, in all (past it: 429)")
      ->check(CLI::Range(1, 1'000'000));
  cmd->add_option("--max-connections", opt->max_connections, "Open HTTP connections (past it: 503)")
      ->check(CLI::Range(1, 1'000'000));
  cmd->add_option("--max-body-mb", opt->max_body_mb, "Largest request body, MiB (past it: 413)")->check(CLI::Range(1, 1024));
  cmd->add_option("--header-timeout", opt->header_timeout, "Seconds a client has to send a request's headers")
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--body-timeout", opt->body_timeout, "Seconds a client has to send a request's body (and to read a response)")
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--idle-timeout", opt->idle_timeout, "Seconds an idle keep-alive connection stays open")
      ->check(CLI::Range(0.1, 3600.0));
  return [cmd, opt]() -> int {
    if (!cmd->parsed()) return -1;
    return RunServe(*opt);
  };
}

}  // namespace brig::cli
