// The supervisor of `brig serve`'s worker processes (worker_pool.h).
//
// One thread (Impl::Loop) owns the processes: it starts them, reads their sockets until they
// are ready, writes what Execute could not, waits for the dead, starts their replacements and
// keeps the heartbeat and shutdown deadlines. Execute only appends a frame under the lock (and
// writes it straight away when the socket is idle, saving the loop a wake-up). A ready
// worker's replies are read on Options::io's threads when there is one (Watch: the thread that
// wakes for a reply makes its callback, no hand-off), else by the loop. Everything that reads
// or changes a slot does so under the lock; callbacks run with it released.
#include "server/worker_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include "brig/result_json.h"
#include "brig/sandbox.h"
#include "server/worker_protocol.h"
#include "util/status_code.h"

extern char** environ;

namespace brig::server {
namespace {

using Clock = std::chrono::steady_clock;
using worker::FrameType;

// Bytes a worker may stream beyond Limits::output_bytes per stream: the truncation marker.
constexpr uint64_t kMarkerSlack = 256;
// Bytes read from one worker per round of the loop, so that one busy worker cannot starve
// the others.
constexpr size_t kReadBudget = 1u << 20;
// A worker that dies before it is ready is started again after this, doubling up to the max.
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{10'000};
// brig/session_manager.h: a thread_id is 1..255 bytes.
constexpr size_t kMaxThreadIdBytes = 255;

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::string DescribeExit(int status, bool known) {
  if (!known) return "ended (its exit status is unknown)";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "ended";
}

// One execution given to a worker.
struct Pending {
  std::string thread_id;
  Executor::OutputFn on_output;  // set only when streaming
  Executor::DoneFn on_done;
  std::function<void(ExecRequest::Rendered)> on_rendered;  // optional (ExecRequest::on_rendered)
  uint64_t streamed[2] = {0, 0};
};

// A callback to make once the lock is released.
struct Event {
  std::shared_ptr<Pending> pending;
  OutputStream stream = OutputStream::kStdout;
  std::string bytes;
  std::optional<StatusOr<SessionResult>> result;  // set: on_done
  std::optional<ExecRequest::Rendered> rendered;   // set: on_rendered; neither: on_output
};

}  // namespace

struct WorkerPool::Impl {
  struct Slot {
    pid_t pid = 0;  // 0: no process (waiting to restart)
    int fd = -1;
    bool ready = false;
    std::optional<Status> start_error;  // what a worker that could not start said
    std::string out;                    // frames not yet written
    size_t out_at = 0;
    worker::FrameReader in;
    std::unordered_map<uint64_t, std::shared_ptr<Pending>> pending;
    uint64_t live = 0;
    uint64_t stale_runs = 0;  // its worker's Sessions::StaleLiveRuns, as last heard
    // When the worker last sent a byte (or was started): a ready worker silent for
    // heartbeat_timeout is stuck and is killed.
    Clock::time_point heard{};
    int failed_starts = 0;  // deaths before ready in a row
    Clock::time_point respawn_at{};
    uint64_t generation = 0;  // one per process started in the slot
    bool watched = false;     // its socket is read on Options::io (see Watch)
    bool flush_posted = false;  // a FlushLater is queued on Options::io
  };

  // With Options::io, a ready worker's socket is read on the io_context's threads: its own
  // descriptor (a dup, so that Reap may close the slot's at any time; it reports the end of
  // file once the process is gone), one read outstanding at a time, so that one worker's
  // frames are handled one batch at a time and in order. A read, not a wait: asio's epoll
  // reactor is edge-triggered and only reads retry at once on readiness that came while
  // nothing was waiting.
  struct Watch {
    Watch(boost::asio::io_context& io, int fd, size_t slot, uint64_t generation)
        : sd(io, fd), slot(slot), generation(generation) {}
    boost::asio::posix::stream_descriptor sd;
    size_t slot;
    uint64_t generation;
    char buf[64 * 1024];
  };

  WorkerPoolOptions options;
  std::string config_frame;
  size_t capacity = 0;  // executions in flight at most

  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<Slot> slots;
  uint64_t next_id = 1;
  int64_t in_flight = 0;
  int64_t restarts = 0;
  int64_t retired_stale_runs = 0;  // those of workers that died (StaleLiveRuns)
  bool started = false;      // Start returned the pool (later start failures are retried)
  std::optional<Status> start_failure;
  bool stopping = false;     // Execute refuses
  bool terminating = false;  // workers were sent SIGTERM; none is restarted
  bool killed = false;       // and SIGKILL, at kill_at
  Clock::time_point kill_at{};
  bool loop_done = false;
  bool shutdown_done = false;
  int wake_fd = -1;
  std::thread loop;
  std::thread::id loop_id;

  // Relayed saves (Options::relay_store): one thread commits them, all it has at once (one
  // group commit); those that arrive meanwhile wait for its next round. So a round costs one
  // wake-up, one commit and one send to each worker, however many saves it carries. Lock
  // order: mu, then save_mu.
  struct SaveJob {
    size_t slot;
    uint64_t generation;
    uint64_t id;
    std::string bytes;
  };
  std::mutex save_mu;
  std::condition_variable save_cv;
  std::vector<SaveJob> save_queue;  // GUARDED_BY(save_mu)
  std::thread committer;            // GUARDED_BY(save_mu): started by the first save
  bool committer_waiting = false;   // GUARDED_BY(save_mu)
  bool save_stop = false;           // GUARDED_BY(save_mu)

  void Wake() {
    uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);
  }

  void Log(const std::string& line) {
    if (options.log) options.log(line);
  }

  // ---- Processes (the loop's thread, lock held).

  // Starts the worker of slot i. On failure the slot waits to try again.
  void Spawn(size_t i) {
    Slot& s = slots[i];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return SpawnFailed(i, "socketpair: " + std::string(strerror(errno)));
    int child_end = sv[1];
    if (child_end <= worker::kWorkerFd) {
      // dup2 onto itself would keep close-on-exec: make sure it is not descriptor 3 already.
      int moved = fcntl(child_end, F_DUPFD_CLOEXEC, worker::kWorkerFd + 1);
      close(child_end);
      if (moved < 0) {
        close(sv[0]);
        return SpawnFailed(i, "fcntl: " + std::string(strerror(errno)));
      }
      child_end = moved;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&actions, child_end, worker::kWorkerFd);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    // Nothing else of this process: every other descriptor is closed in the child.
    posix_spawn_file_actions_addclosefrom_np(&actions, worker::kWorkerFd + 1);
    // Default signal handling and an empty mask, whatever the server set up for itself; a
    // process group of its own, so that a terminal's ^C goes to the supervisor only.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    std::vector<char*> argv;
    // argv[0]: this program's own name for /proc/self/exe (what ps shows), else the path.
    const bool self = options.executable == "/proc/self/exe";
    argv.push_back(self ? program_invocation_name : const_cast<char*>(options.executable.c_str()));
    for (const std::string& a : options.arguments) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, options.executable.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(child_end);
    if (rc != 0) {
      close(sv[0]);
      return SpawnFailed(i, "cannot start " + options.executable + ": " + strerror(rc));
    }
    (void)fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    s.pid = pid;
    s.fd = sv[0];
    s.ready = false;
    s.generation++;
    s.watched = false;
    s.heard = Clock::now();
    s.start_error.reset();
    s.in = worker::FrameReader();
    // The configuration first, then what was queued while the slot had no worker.
    s.out = config_frame + s.out.substr(s.out_at);
    s.out_at = 0;
    Flush(i);
  }

  void SpawnFailed(size_t i, const std::string& why) {
    Slot& s = slots[i];
    if (!started && !start_failure) start_failure = Status::Unavailable("cannot start a worker process: " + why);
    s.failed_starts++;
    s.respawn_at = Clock::now() + Backoff(s.failed_starts);
    Log("worker slot " + std::to_string(i) + ": " + why);
  }

  static std::chrono::milliseconds Backoff(int failures) {
    auto d = kFirstBackoff * (1 << std::min(failures - 1, 10));
    return std::min<std::chrono::milliseconds>(d, kMaxBackoff);
  }

  // Writes what slot i has queued, as far as the socket takes it. A broken socket is left to
  // the read side, which sees the end of file.
  void Flush(size_t i) {
    Slot& s = slots[i];
    while (s.fd >= 0 && s.out_at < s.out.size()) {
      ssize_t n = send(s.fd, s.out.data() + s.out_at, s.out.size() - s.out_at, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        s.out_at += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break;
      }
    }
    if (s.out_at == s.out.size()) {
      s.out.clear();
      s.out_at = 0;
    }
  }

  // Flush(i) once the io thread calling this has run what else is ready: the requests read in
  // the same pass of its event loop then go to the worker in one send (and wake it once),
  // not one each. REQUIRES: mu held, the caller runs on Options::io.
  static void FlushLater(const std::shared_ptr<Impl>& self, size_t i) {
    Slot& s = self->slots[i];
    if (s.flush_posted) return;
    s.flush_posted = true;
    boost::asio::post(*self->options.io, [self, i] {
      std::lock_guard<std::mutex> lock(self->mu);
      Slot& s = self->slots[i];
      s.flush_posted = false;
      if (s.fd < 0) return;  // the loop sends it to the next process
      self->Flush(i);
      if (s.out_at < s.out.size()) self->Wake();  // the socket is full: the loop waits for room
    });
  }

  // The process of slot i is gone (or is being killed): wait for it, fail what it was given,
  // and restart it unless the pool is stopping. `cause`: why, if the pool killed it.
  void Reap(size_t i, const std::string& cause, std::vector<Event>* events) {
    Slot& s = slots[i];
    int status = 0;
    bool known = false;
    if (s.pid > 0) {
      // It closed its socket, so it is exiting; if not (a broken worker), it is made to.
      (void)kill(s.pid, SIGKILL);
      pid_t r;
      do {
        r = waitpid(s.pid, &status, 0);
      } while (r < 0 && errno == EINTR);
      known = r == s.pid;
    }
    const pid_t old = s.pid;
    const bool was_ready = s.ready;
    std::string reason = cause.empty() ? DescribeExit(status, known) : cause;
    if (s.fd >= 0) close(s.fd);
    s.fd = -1;
    s.pid = 0;
    s.ready = false;
    s.watched = false;
    s.in = worker::FrameReader();
    s.out.clear();
    s.out_at = 0;
    std::string message;
    if (stopping) {
      message = "the server shut down before this execution finished (its worker " + reason +
                "); the session is as after its last saved execution";
    } else if (!was_ready) {
      message = "the worker for this session could not start (it " + reason + ")" +
                (s.start_error ? ": " + s.start_error->message() : std::string());
    } else {
      message = "the worker running this execution died (it " + reason +
                "); nothing was saved unless the execution had finished saving: the session is as after "
                "its last saved execution";
    }
    for (auto& [id, p] : s.pending) events->push_back({p, OutputStream::kStdout, "", Status::Unavailable(message), std::nullopt});
    in_flight -= static_cast<int64_t>(s.pending.size());
    s.pending.clear();
    s.live = 0;
    retired_stale_runs += static_cast<int64_t>(s.stale_runs);
    s.stale_runs = 0;
    if (old > 0) Log("worker slot " + std::to_string(i) + " (pid " + std::to_string(old) + ") " + reason);
    if (!started) {
      if (!start_failure) {
        start_failure = s.start_error ? *s.start_error
                                      : Status::Unavailable("a worker process " + reason + " before it was ready");
      }
      return;
    }
    // Off the pool's thread (an io thread saw the end of file): the loop has a process
    // fewer to restart or, shutting down, to wait for.
    if (std::this_thread::get_id() != loop_id) Wake();
    if (stopping) return;  // no execution will come for a replacement
    restarts++;
    if (was_ready) {
      s.failed_starts = 0;
      if (std::this_thread::get_id() == loop_id) {
        Spawn(i);
      } else {
        // On an io thread: workers are started on the pool's thread (PR_SET_PDEATHSIG
        // follows the thread that started them).
        s.respawn_at = Clock::now();
      }
    } else {
      s.failed_starts++;
      s.respawn_at = Clock::now() + Backoff(s.failed_starts);
    }
  }

  void Violation(size_t i, const std::string& why, std::vector<Event>* events) {
    Reap(i, "broke the protocol (" + why + ") and was killed", events);
  }

  // ---- Frames from workers (lock held). False (and *error) for a frame that breaks the protocol.

  bool Handle(size_t i, worker::Frame& f, std::vector<Event>* events, std::string* error) {
    Slot& s = slots[i];
    auto find = [&]() -> std::shared_ptr<Pending> {
      auto it = s.pending.find(f.id);
      if (it == s.pending.end()) *error = "a reply to execution " + std::to_string(f.id) + ", which it was not given";
      return it == s.pending.end() ? nullptr : it->second;
    };
    switch (f.type) {
      case FrameType::kReady:
        if (f.id != 0 || s.ready) return *error = "an unexpected ready frame", false;
        // Kept for the workers that replace this one (a path that names no image file in the
        // cache is not held: nothing else is done with it).
        if (!f.body.empty()) (void)Sandbox::HoldImageFile(f.body);
        s.ready = true;
        s.failed_starts = 0;
        return true;
      case FrameType::kOutput: {
        std::shared_ptr<Pending> p = find();
        if (!p) return false;
        if (!p->on_output) return *error = "output for an execution that did not stream", false;
        if (f.body.empty() || static_cast<uint8_t>(f.body[0]) > 1) return *error = "an output frame without a stream", false;
        int which = f.body[0];
        uint64_t n = f.body.size() - 1;
        p->streamed[which] += n;
        if (p->streamed[which] > options.sessions.limits.output_bytes + kMarkerSlack) {
          return *error = "more output than the output limit", false;
        }
        OutputStream stream = which == 0 ? OutputStream::kStdout : OutputStream::kStderr;
        // Pieces that arrived together go out as one (fewer callbacks, same bytes and order).
        if (!events->empty() && events->back().pending == p && !events->back().result && events->back().stream == stream) {
          events->back().bytes.append(f.body, 1);
        } else {
          events->push_back({p, stream, f.body.substr(1), std::nullopt, std::nullopt});
        }
        return true;
      }
      case FrameType::kResult:
      case FrameType::kError: {
        if (f.id == 0 && f.type == FrameType::kError) {
          auto reply = worker::DecodeReply(f.type, f.body);
          std::optional<Status> st = reply ? StatusFromCodeByte(reply->code, std::string(reply->rest)) : std::nullopt;
          if (s.ready || !st) return *error = "a malformed start-up error", false;
          s.start_error = *st;
          return true;
        }
        std::shared_ptr<Pending> p = find();
        if (!p) return false;
        auto reply = worker::DecodeReply(f.type, f.body);
        if (!reply) return *error = "a reply too short", false;
        std::optional<StatusOr<SessionResult>> outcome;
        std::optional<ExecRequest::Rendered> rendered;
        if (f.type == FrameType::kError) {
          std::optional<Status> st = StatusFromCodeByte(reply->code, std::string(reply->rest));
          if (!st) return *error = "an error with an unknown status code " + std::to_string(reply->code), false;
          outcome.emplace(*st);
        } else if (p->on_rendered) {
          // Checked (one JSON object, this session's), not rebuilt: passed on as it came.
          std::optional<worker::ResultSummary> summary = worker::SummarizeResult(reply->rest);
          if (!summary) return *error = "a result that is not JSON of a result", false;
          if (summary->thread_id != p->thread_id) return *error = "a result for another session", false;
          rendered.emplace(ExecRequest::Rendered{std::string(reply->rest), std::move(summary->outcome)});
        } else {
          nlohmann::json j = nlohmann::json::parse(reply->rest, nullptr, /*allow_exceptions=*/false);
          if (j.is_discarded()) return *error = "a result that is not JSON", false;
          std::string thread_id;
          auto result = SessionResultFromJson(j, &thread_id);
          if (!result.ok()) return *error = result.status().message(), false;
          if (thread_id != p->thread_id) return *error = "a result for another session", false;
          outcome.emplace(std::move(result.value()));
        }
        s.live = reply->live_sessions;
        s.stale_runs = reply->stale_runs;
        s.pending.erase(f.id);
        in_flight--;
        events->push_back({p, OutputStream::kStdout, "", std::move(outcome), std::move(rendered)});
        return true;
      }
      case FrameType::kHeartbeat:
        if (f.id != 0 || !f.body.empty() || !s.ready) return *error = "an unexpected heartbeat", false;
        return true;  // hearing it was the point (Service noted the time)
      case FrameType::kSave:
        if (!options.relay_store || f.id == 0 || !s.ready) return *error = "an unexpected save", false;
        QueueSave({i, s.generation, f.id, std::move(f.body)});
        return true;
      case FrameType::kConfig:
      case FrameType::kExecute:
      case FrameType::kSaved:
        break;
    }
    return *error = "a frame of type " + std::to_string(static_cast<int>(f.type)) + ", which only the supervisor sends", false;
  }

  // ---- Relayed saves.

  // REQUIRES: mu held (Handle).
  void QueueSave(SaveJob job) {
    std::lock_guard<std::mutex> lock(save_mu);
    if (save_stop) return;
    save_queue.push_back(std::move(job));
    if (!committer.joinable()) {
      committer = std::thread([this] { CommitLoop(); });
    } else if (committer_waiting) {
      save_cv.notify_one();
    }
  }

  void CommitLoop() {
    std::unique_lock<std::mutex> lock(save_mu);
    while (true) {
      if (save_queue.empty()) {
        if (save_stop) return;
        committer_waiting = true;
        save_cv.wait(lock, [&] { return !save_queue.empty() || save_stop; });
        committer_waiting = false;
        continue;
      }
      std::vector<SaveJob> round;
      round.swap(save_queue);
      lock.unlock();
      CommitRound(round);
      lock.lock();
    }
  }

  // Commits a round of relayed saves and answers each (kSaved), one send per worker; bytes
  // that are no save break the protocol.
  void CommitRound(std::vector<SaveJob>& round) {
    auto current = [&](const SaveJob& job) {
      const Slot& s = slots[job.slot];
      return s.fd >= 0 && s.generation == job.generation;
    };
    {
      // A worker that is gone failed its executions unsaved: its saves that have not begun
      // are not applied.
      std::lock_guard<std::mutex> lock(mu);
      round.erase(std::remove_if(round.begin(), round.end(), [&](const SaveJob& j) { return !current(j); }),
                  round.end());
    }
    if (round.empty()) return;
    std::vector<std::string_view> saves;
    saves.reserve(round.size());
    for (const SaveJob& j : round) saves.push_back(j.bytes);
    const auto began = std::chrono::steady_clock::now();
    std::vector<StatusOr<std::string>> answers = options.relay_store->ApplyRelayedSaves(saves);
    if (options.on_commit) {
      options.on_commit(saves.size(), std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
    }
    std::vector<Event> events;
    {
      std::lock_guard<std::mutex> lock(mu);
      std::vector<bool> answered(slots.size(), false);
      for (size_t k = 0; k < round.size(); ++k) {
        const SaveJob& job = round[k];
        if (!current(job)) continue;
        if (!answers[k].ok()) {
          Violation(job.slot, answers[k].status().message(), &events);
          continue;
        }
        worker::AppendFrame(&slots[job.slot].out, FrameType::kSaved, job.id, answers[k].value());
        answered[job.slot] = true;
      }
      for (size_t i = 0; i < slots.size(); ++i) {
        if (!answered[i] || slots[i].fd < 0) continue;
        Flush(i);
        if (slots[i].out_at < slots[i].out.size()) Wake();  // the socket is full: the loop waits for room
      }
    }
    Dispatch(events);
  }

  void StopSaves() {
    std::thread t;
    {
      std::lock_guard<std::mutex> lock(save_mu);
      save_stop = true;
      save_cv.notify_all();
      t.swap(committer);
    }
    if (t.joinable()) t.join();
  }

  // Slot i's socket is ready: write, read, handle the frames read; reap it if it closed.
  void Service(size_t i, short revents, std::vector<Event>* events) {
    Slot& s = slots[i];
    if (revents & POLLOUT) Flush(i);
    if (!(revents & (POLLIN | POLLHUP | POLLERR))) return;
    bool eof = false;
    size_t budget = kReadBudget;
    char buf[64 * 1024];
    while (budget > 0) {
      ssize_t n = read(s.fd, buf, sizeof buf);
      if (n > 0) {
        s.heard = Clock::now();
        s.in.Append(buf, static_cast<size_t>(n));
        budget -= std::min(budget, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        eof = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        break;
      }
    }
    Consume(i, eof, events);
  }

  // Handles the whole frames slot i has read; reaps it for a broken frame or, `eof`, for the
  // end of its socket.
  void Consume(size_t i, bool eof, std::vector<Event>* events) {
    Slot& s = slots[i];
    std::string error;
    while (true) {
      std::optional<worker::Frame> f = s.in.Next(&error);
      if (!f) break;
      if (!Handle(i, *f, events, &error)) break;
    }
    if (!error.empty()) return Violation(i, error, events);
    if (eof) Reap(i, "", events);
  }

  void Dispatch(std::vector<Event>& events) {
    for (Event& e : events) {
      // A callback that throws must not take the pool's thread with it.
      try {
        if (e.rendered) {
          e.pending->on_rendered(std::move(*e.rendered));
        } else if (e.result) {
          e.pending->on_done(std::move(*e.result));
        } else {
          e.pending->on_output(e.stream, e.bytes);
        }
      } catch (...) {
      }
    }
    events.clear();
  }

  // Starts reading slot i's socket on Options::io (lock held; the worker is ready).
  void StartWatch(const std::shared_ptr<Impl>& self, size_t i) {
    Slot& s = slots[i];
    int fd = fcntl(s.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return;  // the loop keeps reading it
    auto w = std::make_shared<Watch>(*options.io, fd, i, s.generation);
    s.watched = true;
    Arm(self, std::move(w));
  }

  static void Arm(std::shared_ptr<Impl> self, std::shared_ptr<Watch> w) {
    Watch& watch = *w;
    watch.sd.async_read_some(
        boost::asio::buffer(watch.buf),
        [self = std::move(self), w = std::move(w)](const boost::system::error_code& ec, size_t n) mutable {
          self->OnRead(std::move(self), std::move(w), ec, n);
        });
  }

  // An io thread: `n` bytes from the worker, or the end of its socket (`ec`). A watch of a
  // process that is gone, or whose io_context is going away, ends here, closing its
  // descriptor.
  void OnRead(std::shared_ptr<Impl> self, std::shared_ptr<Watch> w, const boost::system::error_code& ec, size_t n) {
    std::vector<Event> events;
    {
      std::lock_guard<std::mutex> lock(mu);
      Slot& s = slots[w->slot];
      if (s.fd < 0 || s.generation != w->generation || !s.watched) return;
      if (n > 0) {
        s.heard = Clock::now();
        s.in.Append(w->buf, n);
      }
      Consume(w->slot, /*eof=*/static_cast<bool>(ec), &events);
      if (s.fd < 0 || s.generation != w->generation) w.reset();
      if (stopping) cv.notify_all();  // Shutdown waits for in_flight to reach 0
    }
    Dispatch(events);
    if (w) Arm(std::move(self), std::move(w));
  }

  void Loop(std::shared_ptr<Impl> self) {
    std::unique_lock<std::mutex> lock(mu);
    for (size_t i = 0; i < slots.size(); i++) Spawn(i);
    std::vector<Event> events;
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    while (true) {
      Clock::time_point now = Clock::now();
      std::optional<Clock::time_point> until;
      auto earliest = [&](Clock::time_point t) { until = until ? std::min(*until, t) : t; };
      fds.assign(1, pollfd{wake_fd, POLLIN, 0});
      which.clear();
      bool any_process = false;
      for (size_t i = 0; i < slots.size(); i++) {
        Slot& s = slots[i];
        if (s.fd >= 0) {
          any_process = true;
          if (s.ready && !terminating) earliest(s.heard + options.heartbeat_timeout);
          const short out = s.out_at < s.out.size() ? POLLOUT : 0;
          if (s.watched && !out) continue;  // read on an I/O thread
          fds.push_back({s.fd, static_cast<short>(s.watched ? out : POLLIN | out), 0});
          which.push_back(i);
        } else if (!stopping && (started || !start_failure)) {
          earliest(s.respawn_at);
        }
      }
      if (terminating && !any_process) break;
      if (terminating && !killed) earliest(kill_at);
      int timeout = -1;
      if (until) {
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(*until - now).count();
        timeout = static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
      }
      cv.notify_all();  // Start and Shutdown wait for what the last round changed
      lock.unlock();
      int n = poll(fds.data(), fds.size(), timeout);
      lock.lock();
      if (n < 0 && errno != EINTR) n = 0;
      if (fds[0].revents) {
        uint64_t count;
        (void)!read(wake_fd, &count, sizeof count);
      }
      for (size_t k = 1; k < fds.size(); k++) {
        const size_t i = which[k - 1];
        if (!fds[k].revents || slots[i].fd != fds[k].fd) continue;
        if (slots[i].watched) {
          if (fds[k].revents & POLLOUT) Flush(i);  // the I/O thread's watch sees the rest
        } else {
          Service(i, fds[k].revents, &events);
        }
      }
      now = Clock::now();
      for (size_t i = 0; i < slots.size(); i++) {
        Slot& s = slots[i];
        if (s.fd >= 0 && s.out_at < s.out.size()) Flush(i);
        if (s.fd < 0 && !stopping && (started || !start_failure) && now >= s.respawn_at) Spawn(i);
        if (options.io && s.fd >= 0 && s.ready && !s.watched && !terminating) StartWatch(self, i);
        if (s.fd >= 0 && s.ready && !terminating && now >= s.heard + options.heartbeat_timeout) {
          // Alive (or its socket would be at end of file) but silent: stopped or stuck.
          Reap(i,
               "sent nothing, not even a heartbeat, for " +
                   std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now - s.heard).count()) +
                   " ms and was killed as hung",
               &events);
        }
      }
      if (terminating && !killed && now >= kill_at) {
        killed = true;
        for (size_t i = 0; i < slots.size(); i++) {
          Slot& s = slots[i];
          if (s.pid <= 0) continue;
          (void)kill(s.pid, SIGKILL);
          // The loop does not read a watched socket: wait for the process here, in case
          // io is no longer run.
          if (s.watched) Reap(i, "", &events);
        }
      }
      if (!events.empty()) {
        lock.unlock();
        Dispatch(events);
        lock.lock();
      }
    }
    loop_done = true;
    cv.notify_all();
  }
};

WorkerPool::WorkerPool(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

WorkerPool::~WorkerPool() { Shutdown(std::chrono::milliseconds(0)); }

StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Start(WorkerPoolOptions options) {
  if (options.workers < 1 || options.workers > 1024) return Status::InvalidArgument("workers must be 1..1024");
  if (options.threads_per_worker < 1 || options.threads_per_worker > 1024) {
    return Status::InvalidArgument("threads per worker must be 1..1024");
  }
  if (options.executable.empty()) return Status::InvalidArgument("no worker executable");
  if (options.heartbeat_timeout < 4 * std::chrono::milliseconds(worker::kHeartbeatIntervalMs)) {
    return Status::InvalidArgument("the worker heartbeat timeout must be at least " +
                                   std::to_string(4 * worker::kHeartbeatIntervalMs) + " ms");
  }
  // Workers must stay this process's children until it waits for them: with SIGCHLD ignored
  // the kernel would reap them, and a pid could name another process when it is signalled.
  struct sigaction chld {};
  if (sigaction(SIGCHLD, nullptr, &chld) == 0 && (chld.sa_handler == SIG_IGN || (chld.sa_flags & SA_NOCLDWAIT))) {
    return Status::FailedPrecondition("SIGCHLD is ignored in this process: its worker processes could not be waited for");
  }
  if (Status valid = ValidateLimits(options.sessions.limits); !valid.ok()) return valid;
  auto impl = std::make_shared<Impl>();
  Impl& p = *impl;
  p.options = std::move(options);
  worker::AppendFrame(&p.config_frame, FrameType::kConfig, 0,
                      worker::EncodeConfig(p.options.sessions, p.options.threads_per_worker, p.options.inline_budget,
                                           p.options.relay_store != nullptr, p.options.execution_nice));
  p.capacity = static_cast<size_t>(p.options.workers) * static_cast<size_t>(p.options.threads_per_worker) + p.options.max_queue;
  p.slots.resize(static_cast<size_t>(p.options.workers));
  p.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p.wake_fd < 0) return Status::Unavailable("eventfd: " + std::string(strerror(errno)));
  std::unique_ptr<WorkerPool> pool(new WorkerPool(std::move(impl)));
  // The loop holds the Impl as the io_context's waits do (they may outlive the pool).
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.loop = std::thread([self = pool->impl_] { self->Loop(self); });
    p.loop_id = p.loop.get_id();
  }
  std::optional<Status> failed;
  {
    std::unique_lock<std::mutex> lock(p.mu);
    bool in_time = p.cv.wait_for(lock, p.options.start_timeout, [&] {
      return p.start_failure.has_value() ||
             std::all_of(p.slots.begin(), p.slots.end(), [](const Impl::Slot& s) { return s.ready; });
    });
    if (p.start_failure) {
      failed = *p.start_failure;
    } else if (!in_time) {
      failed = Status::Unavailable("the worker processes were not ready within " +
                                   std::to_string(p.options.start_timeout.count()) + " ms");
    } else {
      p.started = true;
    }
  }
  if (failed) {
    pool->Shutdown(std::chrono::milliseconds(0));
    return *failed;
  }
  return pool;
}

void WorkerPool::Execute(ExecRequest request, OutputFn on_output, DoneFn on_done) {
  Impl& p = *impl_;
  Status refused;
  // The worker's Sessions checks the thread_id fully; its length bounds the frame here.
  if (request.thread_id.empty() || request.thread_id.size() > kMaxThreadIdBytes) {
    refused = Status::InvalidArgument("a thread_id must be 1..255 bytes, not " + std::to_string(request.thread_id.size()));
  } else if (request.code.size() > worker::kMaxFrame - 64 * 1024) {
    refused = Status::InvalidArgument("the code is too large (" + std::to_string(request.code.size()) + " bytes)");
  } else {
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.stopping) {
      refused = Status::Unavailable("the server is shutting down");
    } else if (static_cast<size_t>(p.in_flight) >= p.capacity) {
      refused = Status::ResourceExhausted("too many executions queued; try again later");
    } else {
      const uint64_t id = p.next_id++;
      const size_t i = WorkerFor(request.thread_id);
      Impl::Slot& s = p.slots[i];
      auto pending = std::make_shared<Pending>();
      pending->thread_id = request.thread_id;
      if (request.stream) pending->on_output = std::move(on_output);
      pending->on_done = std::move(on_done);
      pending->on_rendered = std::move(request.on_rendered);
      worker::ExecuteBody body;
      body.thread_id = std::move(request.thread_id);
      body.code = std::move(request.code);
      body.timeout_seconds = request.timeout_seconds;
      body.memory_bytes = request.memory_bytes;
      body.deferred_save = request.deferred_save;
      body.sync = request.sync != ExecRequest::Sync::kNone;
      body.sync_drop = request.sync == ExecRequest::Sync::kDrop;
      body.stream = static_cast<bool>(pending->on_output);
      const bool idle = s.out_at == s.out.size();
      worker::AppendFrame(&s.out, FrameType::kExecute, id, worker::EncodeExecute(body));
      s.pending.emplace(id, std::move(pending));
      p.in_flight++;
      if ((idle || s.flush_posted) && s.fd >= 0 && p.options.io && p.options.io->get_executor().running_in_this_thread()) {
        Impl::FlushLater(impl_, i);
        return;
      }
      if (idle && s.fd >= 0) p.Flush(i);  // straight to the worker, most of the time
      if (s.out_at < s.out.size() || s.fd < 0) p.Wake();
      return;
    }
  }
  on_done(refused);
}

bool WorkerPool::Shutdown(std::chrono::milliseconds grace) {
  Impl& p = *impl_;
  std::vector<Event> events;
  {
    std::unique_lock<std::mutex> lock(p.mu);
    if (p.stopping) {
      // Another call does it (or did): wait for it to end.
      p.cv.wait(lock, [&] { return p.shutdown_done; });
      return true;
    }
    p.stopping = true;
    p.cv.wait_for(lock, grace, [&] { return p.in_flight == 0; });
    p.terminating = true;
    p.kill_at = Clock::now() + p.options.term_timeout;
    for (size_t i = 0; i < p.slots.size(); i++) {
      Impl::Slot& s = p.slots[i];
      if (s.pid > 0) {
        (void)kill(s.pid, SIGTERM);
      } else {
        p.Reap(i, "was not running", &events);  // waiting to restart: fails what it was given
      }
    }
  }
  p.Dispatch(events);
  p.Wake();
  if (p.loop.joinable()) p.loop.join();
  // Only now: workers that stop save what they owe, through the relay.
  p.StopSaves();
  std::lock_guard<std::mutex> lock(p.mu);
  if (p.wake_fd >= 0) close(p.wake_fd);
  p.wake_fd = -1;
  p.shutdown_done = true;
  p.cv.notify_all();
  return true;
}

int64_t WorkerPool::InFlight() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->in_flight;
}

int64_t WorkerPool::WorkerRestarts() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->restarts;
}

int64_t WorkerPool::StaleLiveRuns() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  int64_t n = impl_->retired_stale_runs;
  for (const Impl::Slot& s : impl_->slots) n += static_cast<int64_t>(s.stale_runs);
  return n;
}

int64_t WorkerPool::LiveSessions() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  int64_t n = 0;
  for (const Impl::Slot& s : impl_->slots) n += static_cast<int64_t>(s.live);
  return n;
}

size_t WorkerPool::WorkerFor(std::string_view thread_id) const {
  return static_cast<size_t>(Fnv1a(thread_id) % impl_->slots.size());
}

std::vector<pid_t> WorkerPool::WorkerPids() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<pid_t> pids;
  for (const Impl::Slot& s : impl_->slots) pids.push_back(s.pid);
  return pids;
}

}  // namespace brig::server
