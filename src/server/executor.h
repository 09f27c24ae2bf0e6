// brig::server::Executor: where `brig serve` runs executions. The HTTP layer hands every
// execution to one Executor and never runs guest code itself, so that the process model
// (in-process threads, or worker processes that may die) is a choice made in one place.
//
// Two implementations:
//   - in-process (MakeInProcessExecutor): a thread pool over one brig::Sessions. For tests
//     and `--workers 0`; a crash of the guest host code takes the server with it.
//   - worker processes (WorkerPool::Start, worker_pool.h): the supervisor routes each
//     session to one worker by its thread_id, so that the worker keeps it live; a worker that
//     dies fails the executions it was running with Unavailable and is replaced.
//
// Thread-safety: Execute and the other calls may be made from any thread at once.
#ifndef BRIG_SERVER_EXECUTOR_H_
#define BRIG_SERVER_EXECUTOR_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "brig/sessions.h"
#include "brig/status.h"

namespace brig::server {

// Threads an executor runs per execution slot (--threads, Sessions::Options::max_running)
// on a store of `backend` ("sqlite" or "postgresql"). A durable execution waits for its
// commit without its slot: on SQLite that wait is the disk's flush, and more threads per slot
// keep the CPUs busy meanwhile (+14-48% durable executions/s on 2 cores, 2026-12-05); 3, not
// 4: as many executions/s with a shorter tail (32x64 at --threads 3: p99 17-21 ms against
// 20-26 ms at 4; stop 30). On PostgreSQL the database's own CPU is the limit, and the extra
// commits at once only made it slower (-7-23%), so one (bench/RESULTS.md).
inline int ThreadsPerRunSlot(std::string_view backend) { return backend == "sqlite" ? 3 : 1; }

struct ExecRequest {
  std::string thread_id;
  std::string code;
  std::optional<double> timeout_seconds;  // nullopt: the server's default
  std::optional<uint64_t> memory_bytes;   // nullopt: the server's default
  // Deliver stdout/stderr chunks to on_output as the guest writes them.
  bool stream = false;
  // Answer before the save (ExecuteOptions::deferred_save): the API's "durable": false.
  bool deferred_save = false;
  // Run nothing: have the process holding the session live write what it owes the store
  // (Sessions::SyncToStore), dropping it if kDrop. on_done gets an empty result.
  enum class Sync { kNone, kWrite, kDrop };
  Sync sync = Sync::kNone;
  // A result as the API's JSON text (brig::ToJson(thread_id, SessionResult), dumped as
  // api_json.h's Dump does) and its outcome for the metrics ("ok", "python_error", or the
  // failure's kind).
  struct Rendered {
    std::string json;
    std::string outcome;
  };
  // Optional. An executor that has a successful result as text already (a worker process
  // sends it so) calls this instead of on_done, with that text unchanged: the server answers
  // with it as is, instead of reading it into a SessionResult only to write the same JSON
  // again. Errors still go to on_done. Same thread rules as on_done.
  std::function<void(Rendered)> on_rendered;
};

using OutputStream = brig::OutputStream;  // brig/sandbox.h

class Executor {
 public:
  using OutputFn = std::function<void(OutputStream, std::string_view)>;
  using DoneFn = std::function<void(StatusOr<SessionResult>)>;

  virtual ~Executor() = default;

  // Runs the request asynchronously. on_output (only when request.stream) gets the guest's
  // stdout/stderr as written (ExecuteOptions::on_output: the pieces add up to the result's
  // text; never output of a rollback's replays), in order, from one thread at a time, before
  // on_done; on_done is called exactly once, from any thread, also when the executor is
  // shutting down (Unavailable). Neither may block for long: they run on an execution's
  // thread (in-process) or on the worker pool's one thread. Errors as Sessions::Execute
  // (timeout_seconds/memory_bytes are ExecuteOptions'), plus Unavailable when the process
  // running it died (the session is as after its last execution that saved: this one only
  // if it had finished saving before) and ResourceExhausted when too many are queued.
  virtual void Execute(ExecRequest request, OutputFn on_output, DoneFn on_done) = 0;

  // Runs `request` on the calling thread if that can be done at once and quickly: a
  // non-durable, non-streaming execution of a session live and idle in this process
  // (Sessions::TryExecuteLive, with `budget`). Its result, or nullopt when nothing ran (then
  // call Execute). Saves the hand-off to an execution thread and back; the caller's thread
  // is held for up to `budget` (plus a rollback). Default: never (nullopt).
  virtual std::optional<StatusOr<SessionResult>> TryRunHere(const ExecRequest& request, std::chrono::microseconds budget) {
    (void)request;
    (void)budget;
    return std::nullopt;
  }

  // Stops taking executions, lets running ones finish for up to `grace`, then fails the
  // rest with Unavailable; returns within about `grace` (plus the time to stop workers).
  // True if nothing of an execution still runs in this process; false if some execution
  // could not be stopped (in-process: its thread was left running, answering no one): the
  // Sessions it runs on must then never be destroyed (the process should just exit).
  // Idempotent (a later call returns the first one's answer).
  virtual bool Shutdown(std::chrono::milliseconds grace) = 0;

  // Executions running or queued now.
  virtual int64_t InFlight() const = 0;
  // Worker processes started again after one died (always 0 in-process).
  virtual int64_t WorkerRestarts() const = 0;
  // Sessions kept live (summed over workers; may lag by one execution).
  virtual int64_t LiveSessions() const = 0;
  // Executions run twice because a live copy turned out stale (Sessions::StaleLiveRuns,
  // summed over workers, those that died included; may lag by one execution).
  virtual int64_t StaleLiveRuns() const = 0;
  // Whether live sessions are held by other processes (workers): then the server asks them
  // (ExecRequest::sync) before it uses a stored session itself. In-process, the shared
  // Sessions sees those uses on its own.
  virtual bool SessionsElsewhere() const { return false; }
};

}  // namespace brig::server

#endif  // BRIG_SERVER_EXECUTOR_H_
