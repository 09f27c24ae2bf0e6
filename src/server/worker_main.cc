// A `brig serve` worker process (worker_main.h).
#include "server/worker_main.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "brig/result_json.h"
#include "brig/sandbox.h"
#include "brig/sessions.h"
#include "brig/store.h"
#include "brig/text.h"
#include "server/executor.h"
#include "server/thread_nice.h"
#include "server/worker_protocol.h"

namespace brig::server {
namespace {

using worker::FrameType;

[[noreturn]] void Die(int status, const std::string& why) {
  std::fprintf(stderr, "brig worker %d: %s\n", static_cast<int>(getpid()), why.c_str());
  _exit(status);
}

class Worker {
 public:
  explicit Worker(int fd) : fd_(fd) {}

  // Writes one whole frame, after the answers the reading thread holds (Hold), in one send;
  // frames from several threads never interleave. A supervisor that is gone ends the process.
  void Send(FrameType type, uint64_t id, std::string_view body) {
    std::lock_guard<std::mutex> lock(write_mu_);
    held_.reserve(held_.size() + worker::kFrameHeader + body.size());
    worker::AppendFrame(&held_, type, id, body);
    SendHeldLocked();
  }

  // Queues a frame behind the held ones, to go out with the next send (SendHeld, or any
  // Send): the reading thread holds the answers of inline executions while more requests are
  // already read, so that a burst of them is answered with one send (a system call here costs
  // a few µs, and each wakes the supervisor's reader). At most kMaxHeld are held.
  void Hold(FrameType type, uint64_t id, std::string_view body) {
    std::lock_guard<std::mutex> lock(write_mu_);
    worker::AppendFrame(&held_, type, id, body);
    if (++held_count_ >= kMaxHeld) SendHeldLocked();
  }
  void SendHeld() {
    std::lock_guard<std::mutex> lock(write_mu_);
    SendHeldLocked();
  }
  // REQUIRES: write_mu_ held.
  void SendHeldLocked() {
    size_t at = 0;
    while (at < held_.size()) {
      ssize_t n = send(fd_, held_.data() + at, held_.size() - at, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) _exit(1);  // the supervisor is gone: so is this worker
      at += static_cast<size_t>(n);
    }
    held_.clear();
    if (held_.capacity() > (1u << 20)) std::string().swap(held_);  // after a large answer
    held_count_ = 0;
  }

  // The next frame from the supervisor; end of file or a malformed stream ends the process.
  worker::Frame Read() {
    std::string error;
    while (true) {
      if (auto f = reader_.Next(&error)) return std::move(*f);
      if (!error.empty()) Die(2, "malformed frame from the supervisor: " + error);
      SendHeld();  // nothing more to answer before waiting: what is held goes now
      char buf[64 * 1024];
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) _exit(1);  // the supervisor closed the socket or died
      reader_.Append(buf, static_cast<size_t>(n));
    }
  }

  void Run() {
    reader_thread_ = std::this_thread::get_id();
    worker::Frame config = Read();
    if (config.type != FrameType::kConfig || config.id != 0) Die(2, "the first frame is not the configuration");
    Sessions::Options options;
    int threads = 0;
    bool relay_saves = false;
    if (Status s = worker::DecodeConfig(config.body, &options, &threads, &inline_budget_, &relay_saves, &execution_nice_);
        !s.ok()) {
      Fail(s);
    }
    options.max_running = threads;  // --threads: executions doing CPU work at once
    StoreOptions store_options;
    store_options.pool_size = options.pool_size;
    store_options.statement_timeout = options.statement_timeout;
    // The saves go to the supervisor, which commits those of every worker together (one
    // writer, one flush: StoreOptions::save_relay); reads and locks stay here.
    if (relay_saves) store_options.save_relay = [this](std::string_view save) { return RelaySave(save); };
    auto store = Store::Open(options.store_url, store_options);
    if (!store.ok()) Fail(store.status());
    store_ = std::move(store.value());
    auto opened = Sessions::Open(*store_, options);
    if (!opened.ok()) Fail(opened.status());
    sessions_ = std::move(opened.value());
    // The process image, mapped (or made) now rather than by the first execution.
    (void)Sandbox::Create(options.limits);
    Send(FrameType::kReady, 0, Sandbox::ImageFile());  // the supervisor holds it for the next of us

    std::thread([this] { AwaitTerm(); }).detach();
    std::thread([this] {
      while (true) {
        std::this_thread::sleep_for(std::chrono::milliseconds(worker::kHeartbeatIntervalMs));
        Send(FrameType::kHeartbeat, 0, "");
      }
    }).detach();
    const int runners = threads * ThreadsPerRunSlot(sessions_->backend());
    for (int i = 0; i < runners; i++) runners_.emplace_back([this] { RunExecutions(); });
    while (true) {
      worker::Frame f = Read();
      if (f.type == FrameType::kSaved) {
        Saved(f.id, std::move(f.body));
        continue;
      }
      if (f.type != FrameType::kExecute || f.id == 0) Die(2, "unexpected frame type " + std::to_string(static_cast<int>(f.type)));
      auto body = worker::DecodeExecute(f.body);
      if (!body) Die(2, "malformed execute frame");
      // A quick non-durable execution of a session live here runs on this thread: no
      // hand-off to a runner and back (Sessions::TryExecuteLive). Later frames wait for it.
      if (body->deferred_save && !body->stream && !body->sync && inline_budget_.count() > 0) {
        bool stopping;
        {
          std::lock_guard<std::mutex> lock(mu_);
          stopping = stopping_;
          inline_running_ = !stopping;
        }
        if (!stopping) {
          ExecuteOptions options;
          options.timeout_seconds = body->timeout_seconds;
          options.memory_bytes = body->memory_bytes;
          options.deferred_save = true;
          auto done = sessions_->TryExecuteLive(body->thread_id, body->code, options, inline_budget_);
          if (done) Answer(f.id, body->thread_id, *done, /*hold=*/true);
          {
            std::lock_guard<std::mutex> lock(mu_);
            inline_running_ = false;
            inline_done_.notify_all();
          }
          if (done) continue;
        }
      }
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) {
        lock.unlock();
        Reply(f.id, Status::Unavailable("the worker is shutting down; the execution did not start"));
        continue;
      }
      queue_.push_back({f.id, std::move(*body)});
      cv_.notify_one();
    }
  }

 private:
  struct Job {
    uint64_t id;
    worker::ExecuteBody request;
  };

  [[noreturn]] void Fail(const Status& s) {
    Send(FrameType::kError, 0, worker::EncodeError({}, s));
    Die(1, "cannot start: " + s.ToString());
  }

  worker::WorkerCounts Live() const {
    if (!sessions_) return {};
    return {sessions_->LiveSessions(), static_cast<uint64_t>(sessions_->StaleLiveRuns())};
  }

  // StoreOptions::save_relay: sends the save to the supervisor and waits for its answer,
  // which this process's reading thread (Run) hands over (Saved). Never called on that
  // thread: it runs only executions that do not save (TryExecuteLive).
  std::string RelaySave(std::string_view save) {
    // That thread would wait for an answer only it can read: a bug, said rather than hung
    // (its heartbeats would go on, so nothing else would notice).
    if (std::this_thread::get_id() == reader_thread_) Die(3, "a save on the thread that reads the supervisor's frames");
    SaveWait wait;
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(saves_mu_);
      id = next_save_id_++;
      saves_.emplace(id, &wait);
    }
    Send(FrameType::kSave, id, save);
    std::unique_lock<std::mutex> lock(saves_mu_);
    wait.cv.wait(lock, [&] { return wait.done; });
    return std::move(wait.answer);
  }

  // The supervisor's answer to save `id`; one to a save not sent (or answered) breaks the
  // protocol.
  void Saved(uint64_t id, std::string answer) {
    std::lock_guard<std::mutex> lock(saves_mu_);
    auto it = saves_.find(id);
    if (it == saves_.end()) Die(2, "an answer to save " + std::to_string(id) + ", which it did not send");
    SaveWait& wait = *it->second;
    saves_.erase(it);
    wait.answer = std::move(answer);
    wait.done = true;
    wait.cv.notify_one();
  }

  // Answers carry the live-session count, and the supervisor keeps the last one it reads: each
  // count is taken under answer_mu_ with its frame's send, so that an answer counted before
  // another session went back live is never the last one sent.
  void Reply(uint64_t id, const Status& s) {
    std::lock_guard<std::mutex> lock(answer_mu_);
    ReplyLocked(id, s);
  }
  // REQUIRES: answer_mu_ held.
  void ReplyLocked(uint64_t id, const Status& s) { Send(FrameType::kError, id, worker::EncodeError(Live(), s)); }

  // SIGTERM (blocked in every thread, taken here): no new executions, the running ones
  // finish (and save), then exit 0.
  void AwaitTerm() {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    int sig = 0;
    while (sigwait(&term, &sig) != 0) {
    }
    std::deque<Job> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      dropped.swap(queue_);
      cv_.notify_all();
    }
    for (const Job& j : dropped) Reply(j.id, Status::Unavailable("the worker is shutting down; the execution did not start"));
    for (std::thread& t : runners_) t.join();
    {
      // An execution running on the reading thread (Run) finishes too.
      std::unique_lock<std::mutex> lock(mu_);
      inline_done_.wait(lock, [&] { return !inline_running_; });
    }
    SendHeld();  // its answer may still be held
    // ~Sessions writes what the live sessions still owe the store (deferred saves, portable
    // snapshots) before the worker goes.
    sessions_.reset();
    _exit(0);
  }

  void RunExecutions() {
    SetThisThreadNice(execution_nice_);  // the reading thread (inline executions) stays as it is
    while (true) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      Execute(job);
    }
  }

  void Execute(const Job& job) {
    const worker::ExecuteBody& e = job.request;
    ExecuteOptions options;
    options.timeout_seconds = e.timeout_seconds;
    options.memory_bytes = e.memory_bytes;
    options.deferred_save = e.deferred_save;
    if (e.stream) {
      const uint64_t id = job.id;
      options.on_output = [this, id](OutputStream stream, std::string_view bytes) {
        std::string body;
        body.reserve(1 + bytes.size());
        body.push_back(stream == OutputStream::kStdout ? 0 : 1);
        body.append(bytes);
        Send(FrameType::kOutput, id, body);
      };
    }
    if (e.sync) {
      // A name that is not UTF-8 is no session's, and a result cannot carry it (JSON would
      // replace its bytes, and the supervisor takes a result for another name as a broken
      // worker): an error instead. It once aborted the worker (dump() threw).
      if (!IsValidUtf8(e.thread_id)) return Reply(job.id, Status::InvalidArgument("a thread_id must be UTF-8"));
      sessions_->SyncToStore(e.thread_id, e.sync_drop);
      std::lock_guard<std::mutex> lock(answer_mu_);
      return Send(FrameType::kResult, job.id, worker::EncodeResult(Live(), ToJsonText(e.thread_id, SessionResult{})));
    }
    Answer(job.id, e.thread_id, sessions_->Execute(e.thread_id, e.code, options));
  }

  // Sends execution `id`'s outcome to the supervisor (`hold`: with the next send, Hold).
  void Answer(uint64_t id, const std::string& thread_id, const StatusOr<SessionResult>& result, bool hold = false) {
    if (!result.ok()) return Reply(id, result.status());
    std::string json = ToJsonText(thread_id, result.value());
    std::lock_guard<std::mutex> lock(answer_mu_);
    std::string body = worker::EncodeResult(Live(), json);
    if (body.size() + 9 > worker::kMaxFrame) {
      return ReplyLocked(id, Status::Internal("the execution's result (" + std::to_string(json.size()) +
                                        " bytes of JSON) is too large to pass to the server" +
                                        (result.value().saved ? "; the session was saved" : "")));
    }
    if (hold) return Hold(FrameType::kResult, id, body);
    Send(FrameType::kResult, id, body);
  }

  static constexpr int kMaxHeld = 4;

  const int fd_;
  std::mutex write_mu_;
  std::string held_;     // GUARDED_BY(write_mu_): whole frames not yet sent (Hold)
  int held_count_ = 0;   // GUARDED_BY(write_mu_)
  std::mutex answer_mu_;  // a live-session count and the answer carrying it (Reply)
  worker::FrameReader reader_;
  std::thread::id reader_thread_;  // Run's: the only one that reads the socket
  int execution_nice_ = 0;          // the config's: RunExecutions' threads
  std::unique_ptr<Store> store_;  // before sessions_, which borrows it
  std::unique_ptr<Sessions> sessions_;

  // Saves sent to the supervisor (RelaySave), by id, each waited for by its thread.
  struct SaveWait {
    std::condition_variable cv;
    std::string answer;
    bool done = false;
  };
  std::mutex saves_mu_;
  std::unordered_map<uint64_t, SaveWait*> saves_;  // GUARDED_BY(saves_mu_)
  uint64_t next_save_id_ = 1;                      // GUARDED_BY(saves_mu_)
  std::chrono::microseconds inline_budget_{0};  // from the configuration

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  // The reading thread runs an execution itself (TryExecuteLive); AwaitTerm waits for it.
  bool inline_running_ = false;
  std::condition_variable inline_done_;
  std::vector<std::thread> runners_;
};

}  // namespace

int WorkerMain(int argc, char** argv) {
  (void)argc;
  (void)argv;
  // Die with the supervisor. (If it died before this line, the socket is at end of file.)
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);  // inherited by every thread made below
  if (fcntl(worker::kWorkerFd, F_GETFD) < 0) {
    std::fprintf(stderr, "brig __worker: started by brig serve only (no socket on descriptor 3)\n");
    return 2;
  }
  Worker w(worker::kWorkerFd);
  w.Run();
  return 0;
}

}  // namespace brig::server
