// MakeInProcessExecutor (in_process_executor.h).
#include "server/in_process_executor.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace brig::server {
namespace {

// The callbacks of one accepted execution. Shutdown may give up on a running execution
// (past its grace): it then answers it itself and clears both callbacks, so that the
// thread that still runs it can never reach the caller (whose connection and server may be
// gone by then). Calls hold the mutex: on_output is short by contract.
struct Callbacks {
  std::mutex mu;
  Executor::OutputFn on_output;  // GUARDED_BY(mu)
  Executor::DoneFn on_done;      // GUARDED_BY(mu); empty once called

  void Output(OutputStream stream, std::string_view bytes) {
    std::lock_guard lock(mu);
    if (on_output) on_output(stream, bytes);
  }
  // Calls on_done if nobody did yet, then drops both callbacks (and what they hold).
  void Done(StatusOr<SessionResult> result) {
    Executor::DoneFn done;
    Executor::OutputFn output;
    {
      std::lock_guard lock(mu);
      done = std::move(on_done);
      output = std::move(on_output);
      on_done = nullptr;
      on_output = nullptr;
    }
    if (done) done(std::move(result));
  }
};

struct Job {
  ExecRequest request;
  std::shared_ptr<Callbacks> callbacks;
};

// What the threads share with the executor. Owned jointly, so that a thread that outlives
// Shutdown (its execution ran past the grace) never touches freed memory of the executor.
struct State {
  explicit State(Sessions& s, size_t q) : sessions(s), max_queue(q) {}
  Sessions& sessions;
  const size_t max_queue;
  std::mutex mu;
  std::condition_variable cv;
  std::condition_variable idle;
  std::deque<Job> queue;                                // GUARDED_BY(mu)
  std::vector<std::shared_ptr<Callbacks>> running;      // GUARDED_BY(mu)
  bool stopping = false;                                // GUARDED_BY(mu)
};

void Loop(std::shared_ptr<State> st) {
  while (true) {
    Job job;
    {
      std::unique_lock lock(st->mu);
      st->cv.wait(lock, [&] { return st->stopping || !st->queue.empty(); });
      if (st->queue.empty()) return;
      job = std::move(st->queue.front());
      st->queue.pop_front();
      st->running.push_back(job.callbacks);
    }
    ExecuteOptions options;
    options.timeout_seconds = job.request.timeout_seconds;
    options.memory_bytes = job.request.memory_bytes;
    if (job.request.stream) {
      options.on_output = [cb = job.callbacks](OutputStream stream, std::string_view bytes) { cb->Output(stream, bytes); };
    }
    options.deferred_save = job.request.deferred_save;
    StatusOr<SessionResult> result = SessionResult{};
    if (job.request.sync == ExecRequest::Sync::kNone) {
      result = st->sessions.Execute(job.request.thread_id, job.request.code, options);
    } else {
      st->sessions.SyncToStore(job.request.thread_id, job.request.sync == ExecRequest::Sync::kDrop);
    }
    job.callbacks->Done(std::move(result));
    std::lock_guard lock(st->mu);
    std::erase(st->running, job.callbacks);
    if (st->running.empty() && st->queue.empty()) st->idle.notify_all();
  }
}

class InProcessExecutor : public Executor {
 public:
  InProcessExecutor(Sessions& sessions, int threads, size_t max_queue)
      : state_(std::make_shared<State>(sessions, max_queue)) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([st = state_] { Loop(st); });
  }
  ~InProcessExecutor() override { Shutdown(std::chrono::milliseconds(0)); }

  void Execute(ExecRequest request, OutputFn on_output, DoneFn on_done) override {
    Status refused;
    {
      std::lock_guard lock(state_->mu);
      if (state_->stopping) {
        refused = Status::Unavailable("the server is shutting down");
      } else if (state_->queue.size() >= state_->max_queue) {
        refused = Status::ResourceExhausted("too many executions queued; try again later");
      } else {
        auto cb = std::make_shared<Callbacks>();
        cb->on_output = std::move(on_output);
        cb->on_done = std::move(on_done);
        state_->queue.push_back({std::move(request), std::move(cb)});
        state_->cv.notify_one();
        return;
      }
    }
    on_done(refused);
  }

  std::optional<StatusOr<SessionResult>> TryRunHere(const ExecRequest& request, std::chrono::microseconds budget) override {
    if (!request.deferred_save || request.stream || request.sync != ExecRequest::Sync::kNone) return std::nullopt;
    {
      std::lock_guard lock(state_->mu);
      if (state_->stopping) return std::nullopt;  // Execute answers
    }
    ExecuteOptions options;
    options.timeout_seconds = request.timeout_seconds;
    options.memory_bytes = request.memory_bytes;
    options.deferred_save = true;
    return state_->sessions.TryExecuteLive(request.thread_id, request.code, options, budget);
  }

  bool Shutdown(std::chrono::milliseconds grace) override {
    std::deque<Job> dropped;
    std::vector<std::shared_ptr<Callbacks>> abandoned;
    {
      std::unique_lock lock(state_->mu);
      if (threads_.empty()) return clean_;
      state_->stopping = true;
      state_->cv.notify_all();
      // Accepted executions, running or queued, get `grace` to finish; what is still queued
      // then fails, and so does what still runs (below).
      state_->idle.wait_for(lock, grace, [&] { return state_->running.empty() && state_->queue.empty(); });
      dropped.swap(state_->queue);
      abandoned = state_->running;
    }
    for (Job& j : dropped) j.callbacks->Done(Status::Unavailable("the server is shutting down"));
    // A running execution cannot be stopped from outside: its thread is left to finish (or
    // reach its own timeout) on its own, answering no one; it never saves a later state than
    // what its client is told below (it saves as usual or not at all).
    for (auto& cb : abandoned) {
      cb->Done(Status::Unavailable(
          "the server shut down before this execution finished (the grace period ran out); the session is as "
          "after its last saved execution, or this one if it still completes its save"));
    }
    clean_ = abandoned.empty();
    for (auto& t : threads_) {
      if (clean_) {
        t.join();
      } else {
        t.detach();
      }
    }
    threads_.clear();
    return clean_;
  }

  int64_t InFlight() const override {
    std::lock_guard lock(state_->mu);
    return static_cast<int64_t>(state_->queue.size() + state_->running.size());
  }
  int64_t WorkerRestarts() const override { return 0; }
  int64_t LiveSessions() const override { return static_cast<int64_t>(state_->sessions.LiveSessions()); }
  int64_t StaleLiveRuns() const override { return state_->sessions.StaleLiveRuns(); }

 private:
  std::shared_ptr<State> state_;
  std::vector<std::thread> threads_;  // empty once Shutdown ran
  bool clean_ = true;                 // Shutdown left no execution running
};

}  // namespace

std::unique_ptr<Executor> MakeInProcessExecutor(Sessions& sessions, int threads, size_t max_queue) {
  return std::make_unique<InProcessExecutor>(sessions, threads, max_queue);
}

}  // namespace brig::server
