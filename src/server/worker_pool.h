// brig::server::WorkerPool: the Executor of `brig serve --workers N`. A supervisor in the
// server's process starts N worker processes (worker_main.h) and hands each execution to
// one of them over a socket (worker_protocol.h).
//
// Routing. The worker of an execution is fixed by its thread_id (FNV-1a hash modulo N, the
// same in every run), so the worker that ran a session keeps it live for the next
// execution; a replacement worker restores it from the store. Each worker runs up to
// threads_per_worker executions at once (those of one session one after another: its lock).
//
// Failures. A worker that dies (SIGKILL, SIGSEGV, ...), breaks the protocol, or falls silent
// for heartbeat_timeout (hung: stopped, deadlocked; then it is killed) fails exactly the
// executions it was given with Unavailable, and is replaced at
// once (WorkerRestarts counts it; a worker that dies before it is ready is restarted after
// a pause that doubles up to 10 s). Sessions save transactionally, so a session is as after
// its last execution that saved. Everything a worker sends is checked before use.
//
// Processes and descriptors. Workers are started with posix_spawn from the pool's own
// thread: /proc/self/exe (or Options::executable) with Options::arguments, descriptor 3 the
// socket, stdin /dev/null, stdout/stderr inherited, no other descriptor, default signal
// handling. A worker dies with the supervisor (PR_SET_PDEATHSIG, and end of file on the
// socket). Every worker is waited for: no zombies, and the pool closes all it opened.
//
// Reading replies. Without Options::io the pool's thread reads every worker's socket. With
// it, a ready worker's socket is read on that io_context's threads (the HTTP server's): the
// thread that wakes for a reply checks it and makes the callback, with no hand-off to the
// pool's thread. The pool's thread still starts, waits for and restarts processes, reads a
// worker until it is ready, and enforces heartbeat_timeout and Shutdown's deadlines.
//
// Relayed saves. With Options::relay_store the workers hand every execution's save to the
// pool (StoreOptions::save_relay, worker_protocol.h kSave). One committer thread of the
// pool commits all the saves queued at once on that store (one group) and answers them,
// while the next ones queue. On SQLite this makes one writer of all the workers: their saves
// commit in one group, one flush, instead of the workers taking turns on the file's write
// lock. A save of a worker that is gone is applied only if its round had begun (as a save
// the worker made itself would have been).
//
// Thread-safety: every call may be made from any thread. on_output, on_rendered and on_done
// are called on the pool's thread or (Options::io) on a thread running io: for one worker
// one batch at a time, in order for each execution. They must not block (post the work
// elsewhere) and must not call Shutdown. An execution refused at once (shutting down, queue
// full, bad request) gets on_done on the caller's thread.
#ifndef BRIG_SERVER_WORKER_POOL_H_
#define BRIG_SERVER_WORKER_POOL_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "brig/sessions.h"
#include "brig/status.h"
#include "brig/store.h"
#include "server/executor.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace brig::server {

struct WorkerPoolOptions {
  // What each worker opens its brig::Sessions with (store, limits, quotas, live sessions).
  Sessions::Options sessions;
  int workers = 2;             // at least 1
  int threads_per_worker = 4;  // executions at once in one worker; at least 1
  // A worker runs a quick non-durable execution of a session it holds live on the thread
  // that reads its socket, within this (ServerOptions::inline_budget); 0: never.
  std::chrono::microseconds inline_budget{0};
  // The nice value of the workers' execution threads (thread_nice.h), 0..19.
  int execution_nice = 0;
  // Executions accepted beyond workers * threads_per_worker, waiting in the workers;
  // past it Execute answers ResourceExhausted.
  size_t max_queue = 256;
  // The worker program and its arguments (argv[1..]): brig's own binary by default. Tests
  // give a binary of theirs whose main calls WorkerMain.
  std::string executable = "/proc/self/exe";
  std::vector<std::string> arguments = {"__worker"};
  // How long Start waits for every worker to be ready (open its store, map the image).
  std::chrono::milliseconds start_timeout{120'000};
  // After Shutdown's grace, how long workers get to exit after SIGTERM before SIGKILL.
  std::chrono::milliseconds term_timeout{2'000};
  // A ready worker that sends nothing for this long (it sends a heartbeat every
  // worker::kHeartbeatIntervalMs, worker_protocol.h) is taken as hung (SIGSTOP, a
  // deadlock): it is killed, its executions fail with Unavailable, and it is replaced, as
  // for a worker that died. At least 4 heartbeat intervals.
  std::chrono::milliseconds heartbeat_timeout{10'000};
  // Where ready workers' replies are read (see "Reading replies" above); null: the pool's
  // thread. REQUIRES: it outlives Shutdown (the pool's waits hold what they use, so it
  // may be stopped, or outlive the pool, with waits outstanding), and threads run it while
  // executions are given: a worker whose replies are not read within heartbeat_timeout is
  // taken as hung.
  boost::asio::io_context* io = nullptr;
  // Where the workers' saves are committed (see "Relayed saves" above); null: each worker
  // writes its own. REQUIRES: a store of the same database as sessions.store_url, which
  // outlives Shutdown.
  Store* relay_store = nullptr;
  // Called after each commit of relayed saves, on the committer thread, with how many saves
  // it held and how long it took (for /metrics). Empty: none.
  std::function<void(size_t saves, double seconds)> on_commit;
  // Events worth a log line (a worker died, was replaced, broke the protocol), called on
  // the pool's thread or an io thread with the pool's lock held: it must not call the pool.
  // Empty: none.
  std::function<void(const std::string&)> log;
};

class WorkerPool : public Executor {
 public:
  // Starts the workers and waits until each is ready. The error of a worker that could not
  // start (InvalidArgument for bad options, Unavailable for a store it cannot reach, ...), or
  // Unavailable if they cannot be started or are not ready within start_timeout.
  static StatusOr<std::unique_ptr<WorkerPool>> Start(WorkerPoolOptions options);
  // Shutdown(0) if it was not called.
  ~WorkerPool() override;

  // Executor. Besides the errors of Sessions::Execute: Unavailable when the worker died or
  // the pool is shutting down; ResourceExhausted past max_queue; InvalidArgument for a
  // thread_id the store refuses or code too large to send.
  void Execute(ExecRequest request, OutputFn on_output, DoneFn on_done) override;
  bool SessionsElsewhere() const override { return true; }
  // Stops taking executions; lets those given to workers finish for up to `grace`; then
  // SIGTERM (workers finish what runs and exit 0), SIGKILL after term_timeout; executions
  // not finished by then fail with Unavailable. Returns when every worker was waited for.
  // Idempotent; REQUIRES: not called from on_output/on_done.
  // Always true: every worker was waited for.
  bool Shutdown(std::chrono::milliseconds grace) override;
  int64_t InFlight() const override;
  int64_t WorkerRestarts() const override;
  int64_t LiveSessions() const override;
  int64_t StaleLiveRuns() const override;

  // The worker slot (0..workers-1) that runs `thread_id`'s executions, and the process now
  // in each slot (0 while a slot waits to restart its worker). For tests and diagnostics.
  size_t WorkerFor(std::string_view thread_id) const;
  std::vector<pid_t> WorkerPids() const;

  struct Impl;

 private:
  explicit WorkerPool(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with the loop and io's waits
};

}  // namespace brig::server

#endif  // BRIG_SERVER_WORKER_POOL_H_
