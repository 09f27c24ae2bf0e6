// MakeInProcessExecutor (in_process_executor.h).
#include "server/in_process_executor.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace brig::server {
namespace {

class InProcessExecutor : public Executor {
 public:
  InProcessExecutor(Sessions& sessions, int threads, size_t max_queue) : sessions_(sessions), max_queue_(max_queue) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~InProcessExecutor() override { Shutdown(std::chrono::milliseconds(0)); }

  void Execute(ExecRequest request, OutputFn on_output, DoneFn on_done) override {
    Status refused;
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        refused = Status::Unavailable("the server is shutting down");
      } else if (queue_.size() >= max_queue_) {
        refused = Status::ResourceExhausted("too many executions queued; try again later");
      } else {
        queue_.push_back({std::move(request), std::move(on_output), std::move(on_done)});
        cv_.notify_one();
        return;
      }
    }
    on_done(refused);
  }

  void Shutdown(std::chrono::milliseconds grace) override {
    std::deque<Job> dropped;
    {
      std::unique_lock lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      cv_.notify_all();
      // Accepted executions, running or queued, get `grace` to finish; what is still queued
      // then fails.
      idle_.wait_for(lock, grace, [&] { return running_ == 0 && queue_.empty(); });
      dropped.swap(queue_);
    }
    for (Job& j : dropped) j.on_done(Status::Unavailable("the server is shutting down"));
    {
      std::unique_lock lock(mu_);
      idle_.wait_for(lock, grace, [&] { return running_ == 0; });
    }
    // Running executions cannot be stopped from outside: joining waits for them.
    for (auto& t : threads_) t.join();
  }

  int64_t InFlight() const override {
    std::lock_guard lock(mu_);
    return static_cast<int64_t>(queue_.size()) + running_;
  }
  int64_t WorkerRestarts() const override { return 0; }
  int64_t LiveSessions() const override { return static_cast<int64_t>(sessions_.LiveSessions()); }

 private:
  struct Job {
    ExecRequest request;
    OutputFn on_output;
    DoneFn on_done;
  };

  void Loop() {
    while (true) {
      Job job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        ++running_;
      }
      ExecuteOptions options;
      options.timeout_seconds = job.request.timeout_seconds;
      options.memory_bytes = job.request.memory_bytes;
      options.deferred_save = job.request.deferred_save;
      if (job.request.stream && job.on_output) options.on_output = job.on_output;
      StatusOr<SessionResult> result = SessionResult{};
      if (job.request.sync == ExecRequest::Sync::kNone) {
        result = sessions_.Execute(job.request.thread_id, job.request.code, options);
      } else {
        sessions_.SyncToStore(job.request.thread_id, job.request.sync == ExecRequest::Sync::kDrop);
      }
      job.on_done(std::move(result));
      std::lock_guard lock(mu_);
      --running_;
      if (running_ == 0 && queue_.empty()) idle_.notify_all();
    }
  }

  Sessions& sessions_;
  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_;
  std::deque<Job> queue_;
  int64_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

std::unique_ptr<Executor> MakeInProcessExecutor(Sessions& sessions, int threads, size_t max_queue) {
  return std::make_unique<InProcessExecutor>(sessions, threads, max_queue);
}

}  // namespace brig::server
