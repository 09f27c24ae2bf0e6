// brig::server::WorkerPool with real worker processes: this test binary is also the worker
// (its main runs WorkerMain for "__worker"), a fake worker that breaks the protocol on
// purpose ("__fake_worker MODE"), and a supervisor that a test kills ("__supervisor URL").
// Results equal those of the in-process executor; streaming; routing; a worker killed
// (SIGKILL, SIGSEGV) or stopped (SIGTERM) in the middle of an execution; malformed frames;
// shutdown; no leaked descriptors or zombies; workers die with their supervisor.
// Registered twice (tests/CMakeLists.txt): as is, the pool's thread reads the workers; with
// --pool-io (names io.*), io threads do (WorkerPoolOptions::io), as brig serve's.
#include "server/worker_pool.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../store/pg_harness.h"
#include "api/access.h"
#include "brig/result_json.h"
#include "brig/store.h"
#include "engine/image_file.h"
#include "sandbox/image_cache.h"
#include "sandbox/sandbox_impl.h"
#include "server/api_json.h"
#include "server/in_process_executor.h"
#include "server/worker_main.h"
#include "server/worker_protocol.h"
#include "util/little_endian.h"

namespace brig::server {
namespace {

using namespace std::chrono_literals;

bool g_pool_io = false;  // --pool-io: the pool reads ready workers on io threads

// ---- What an execution handed to an executor came to.

struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::optional<StatusOr<SessionResult>> result;
  std::vector<std::pair<OutputStream, std::string>> output;
  bool done_before_output = false;  // on_output after on_done: a broken contract
  std::optional<ExecRequest::Rendered> rendered;  // when the answer came through on_rendered

  // Waits for on_done (a guard of 5 minutes, so that a hang fails instead of blocking ctest).
  StatusOr<SessionResult> Wait() {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, 300s, [&] { return done; })) return Status::DeadlineExceeded("the test gave up waiting");
    return *result;
  }
  // Waits until the streamed stdout contains `text`.
  bool WaitForOutput(const std::string& text) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, 300s, [&] { return done || Stdout().find(text) != std::string::npos; }) &&
           Stdout().find(text) != std::string::npos;
  }
  std::string Stdout() const {
    std::string s;
    for (const auto& [stream, bytes] : output) {
      if (stream == OutputStream::kStdout) s += bytes;
    }
    return s;
  }
};

// rendered: asks for the result as text (ExecRequest::on_rendered); the Outcome's result is
// then that text read back, so that Wait works either way.
std::shared_ptr<Outcome> Submit(Executor& e, const std::string& thread_id, const std::string& code, bool stream = false,
                                std::optional<double> timeout = std::nullopt, std::optional<uint64_t> memory = std::nullopt,
                                bool rendered = false) {
  auto out = std::make_shared<Outcome>();
  ExecRequest r;
  if (rendered) {
    r.on_rendered = [out](ExecRequest::Rendered text) {
      std::lock_guard<std::mutex> lock(out->mu);
      EXPECT_FALSE(out->done) << "on_done called twice";
      out->done = true;
      std::string ignored;
      out->result.emplace(SessionResultFromJson(nlohmann::json::parse(text.json), &ignored));
      out->rendered = std::move(text);
      out->cv.notify_all();
    };
  }
  r.thread_id = thread_id;
  r.code = code;
  r.stream = stream;
  r.timeout_seconds = timeout;
  r.memory_bytes = memory;
  e.Execute(
      std::move(r),
      [out](OutputStream s, std::string_view bytes) {
        std::lock_guard<std::mutex> lock(out->mu);
        if (out->done) out->done_before_output = true;
        out->output.emplace_back(s, std::string(bytes));
        out->cv.notify_all();
      },
      [out](StatusOr<SessionResult> r) {
        std::lock_guard<std::mutex> lock(out->mu);
        EXPECT_FALSE(out->done) << "on_done called twice";
        out->done = true;
        out->result.emplace(std::move(r));
        out->cv.notify_all();
      });
  return out;
}

SessionResult MustRun(Executor& e, const std::string& thread_id, const std::string& code) {
  auto r = Submit(e, thread_id, code)->Wait();
  EXPECT_TRUE(r.ok()) << code << ": " << r.status().ToString();
  if (!r.ok()) return {};
  EXPECT_TRUE(r.value().execution.ok) << code << ": " << r.value().execution.stderr_text << r.value().execution.failure_message;
  return r.value();
}

// What a test can compare across executors: the JSON without the timing.
std::string Comparable(const std::string& thread_id, const StatusOr<SessionResult>& r) {
  if (!r.ok()) return r.status().ToString();
  nlohmann::json j = ToJson(thread_id, r.value());
  j.erase("duration_ms");
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// ---- Processes.

std::string Self() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

// Dead and waited for (or a zombie of a parent that is not us: gone as far as we can tell;
// or being reaped: 'X', briefly).
bool Gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && (line[close + 2] == 'Z' || line[close + 2] == 'X');
}

// Once gone, gone: not asked again (a second look could find the pid in use by another).
bool WaitGone(pid_t pid) {
  bool gone = Gone(pid);
  for (int i = 0; i < 3000 && !gone; i++) {
    std::this_thread::sleep_for(10ms);
    gone = Gone(pid);
  }
  return gone;
}

std::set<std::string> OpenFds(pid_t pid = 0) {
  std::set<std::string> fds;
  std::string dir = pid ? "/proc/" + std::to_string(pid) + "/fd" : "/proc/self/fd";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::error_code ec;
    fds.insert(e.path().filename().string() + " -> " + std::filesystem::read_symlink(e.path(), ec).string());
  }
  return fds;
}

// ---- The fixture: a store in a temp dir (or PostgreSQL), a pool of real workers.

class WorkerPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/brig-worker-pool-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    if (g_pool_io) {
      io_ = std::make_unique<boost::asio::io_context>();
      // Its reactor's own descriptors (epoll, timerfd, eventfd) now, not counted as the pool's.
      boost::asio::posix::stream_descriptor make_reactor(*io_);
      work_.emplace(io_->get_executor());
      for (int i = 0; i < 2; i++) io_threads_.emplace_back([this] { io_->run(); });
    }
  }
  void TearDown() override {
    pool_.reset();
    relay_.reset();  // after the pool, which commits on it
    if (io_) {
      work_.reset();
      io_->stop();
      for (std::thread& t : io_threads_) t.join();
      io_.reset();
    }
    std::system(("rm -rf " + dir_).c_str());
  }

  // On SQLite the workers relay their saves to the pool (as brig serve's), unless !relay.
  WorkerPoolOptions Options(const std::string& store = "", bool relay = true) {
    WorkerPoolOptions o;
    o.sessions.store_url = store.empty() ? "sqlite:" + dir_ + "/brig.db" : store;
    if (relay && store.empty()) {
      if (!relay_) {
        auto opened = brig::Store::Open(o.sessions.store_url);
        EXPECT_TRUE(opened.ok()) << opened.status().ToString();
        if (opened.ok()) relay_ = std::move(opened.value());
      }
      o.relay_store = relay_.get();
    }
    o.sessions.limits.timeout_seconds = 10;
    o.workers = 2;
    o.threads_per_worker = 2;
    o.executable = Self();
    o.term_timeout = 1s;
    o.io = io_.get();
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    };
    return o;
  }

  WorkerPool& Start(WorkerPoolOptions o) {
    auto pool = WorkerPool::Start(std::move(o));
    EXPECT_TRUE(pool.ok()) << pool.status().ToString();
    if (!pool.ok()) std::abort();
    pool_ = std::move(pool.value());
    return *pool_;
  }

  std::string Log() {
    std::lock_guard<std::mutex> lock(log_mu_);
    std::string all;
    for (const auto& l : log_) all += l + "\n";
    return all;
  }

  // A thread_id that the pool routes to slot `slot`.
  std::string IdOn(size_t slot, const std::string& prefix) {
    for (int i = 0;; i++) {
      std::string id = prefix + "-" + std::to_string(i);
      if (pool_->WorkerFor(id) == slot) return id;
    }
  }

  std::string dir_;
  // With --pool-io: where the pool reads ready workers, run by two threads.
  std::unique_ptr<boost::asio::io_context> io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  std::unique_ptr<brig::Store> relay_;  // where the workers' saves are committed (Options)
  std::unique_ptr<WorkerPool> pool_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

// The same executions through worker processes and through the in-process executor give
// the same results (timing aside).
TEST_F(WorkerPoolTest, ResultsEqualInProcessResults) {
  WorkerPool& pool = Start(Options());
  Sessions::Options local_options = Options().sessions;
  local_options.store_url = "sqlite:" + dir_ + "/local.db";
  auto local = Sessions::Open(local_options);
  ASSERT_TRUE(local.ok());
  auto in_process = MakeInProcessExecutor(*local.value(), 2, 16);
  struct Step {
    std::string thread_id, code;
    std::optional<double> timeout = std::nullopt;
    std::optional<uint64_t> memory = std::nullopt;
  };
  const std::vector<Step> steps = {
      {"alpha", "x = 41\ndef f(): return x + 1"},
      {"beta", "print('hello')\nimport sys; sys.stderr.write('warn\\n')\n[1, 2]"},
      {"alpha", "f()"},
      {"alpha", "open('/home/user/notes.txt', 'w').write('kept')"},
      {"beta", "1 / 0"},
      {"alpha", "import os\nos.remove('/home/user/notes.txt')\nprint(x)"},
      {"beta", "import sys\nsys.exit(3)"},
      {"beta", "import os\nos._exit(4)"},
      {"alpha", "x = 0\nwhile True: pass", 0.3},
      {"alpha", "x"},
      {"beta", "bytearray(100 << 20)", std::nullopt, 32ull << 20},
      {"beta", "print('\\xff'.encode('latin-1').decode('utf-8', 'replace'))"},
      {"bad id \x01", "1"},
  };
  for (const Step& s : steps) {
    auto a = Submit(pool, s.thread_id, s.code, false, s.timeout, s.memory)->Wait();
    auto b = Submit(*in_process, s.thread_id, s.code, false, s.timeout, s.memory)->Wait();
    EXPECT_EQ(Comparable(s.thread_id, a), Comparable(s.thread_id, b)) << s.code;
  }
  in_process->Shutdown(1s);
}

TEST_F(WorkerPoolTest, StreamsOutputInOrderBeforeTheResult) {
  WorkerPool& pool = Start(Options());
  auto out = Submit(pool, "streamer",
                    "import sys\n"
                    "for i in range(200):\n"
                    "    print('line', i, flush=True)\n"
                    "    if i % 50 == 0: sys.stderr.write('mark %d\\n' % i); sys.stderr.flush()\n"
                    "'end'",
                    /*stream=*/true);
  auto r = out->Wait();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().execution.result, "'end'");
  std::lock_guard<std::mutex> lock(out->mu);
  EXPECT_FALSE(out->done_before_output);
  std::string out_text, err_text, order;
  for (const auto& [stream, bytes] : out->output) {
    (stream == OutputStream::kStdout ? out_text : err_text) += bytes;
    order += (stream == OutputStream::kStdout ? "o" : "e");
  }
  EXPECT_EQ(out_text, r.value().execution.stdout_text);
  EXPECT_EQ(err_text, r.value().execution.stderr_text);
  // stderr pieces came between stdout pieces, as written (0, 50, 100, 150).
  EXPECT_NE(order.find("oe"), std::string::npos);
  EXPECT_NE(order.find("eo"), std::string::npos);
  // Without stream, no output callback.
  auto quiet = Submit(pool, "streamer", "print('not streamed')");
  ASSERT_TRUE(quiet->Wait().ok());
  EXPECT_TRUE(quiet->output.empty());
}

TEST_F(WorkerPoolTest, EachSessionStaysOnItsWorker) {
  WorkerPool& pool = Start(Options());
  const std::vector<pid_t> pids = pool.WorkerPids();
  ASSERT_EQ(pids.size(), 2u);
  EXPECT_NE(pids[0], pids[1]);
  std::set<size_t> slots;
  for (int round = 0; round < 3; round++) {
    std::vector<std::shared_ptr<Outcome>> all;
    for (int s = 0; s < 8; s++) all.push_back(Submit(pool, "sticky-" + std::to_string(s), "n = globals().get('n', 0) + 1\nn"));
    for (int s = 0; s < 8; s++) {
      auto r = all[s]->Wait();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r.value().execution.result, std::to_string(round + 1));
      // Live from the second execution on: the same process ran the first.
      EXPECT_EQ(r.value().restored_from, round == 0 ? "new" : "live") << "sticky-" << s;
      slots.insert(pool.WorkerFor("sticky-" + std::to_string(s)));
    }
  }
  EXPECT_EQ(slots.size(), 2u);  // both workers were used
  EXPECT_EQ(pool.WorkerPids(), pids);
  EXPECT_EQ(pool.LiveSessions(), 8);
  EXPECT_EQ(pool.WorkerRestarts(), 0);
  EXPECT_EQ(pool.InFlight(), 0);
}

// A worker killed in the middle of an execution: that execution fails with Unavailable, one
// on the other worker finishes, the worker is replaced, and the killed session goes on from
// its last saved execution.
class WorkerDeathTest : public WorkerPoolTest, public ::testing::WithParamInterface<std::tuple<int, bool>> {};

TEST_P(WorkerDeathTest, FailsOnlyItsExecutionsAndIsReplaced) {
  const auto [sig, postgres] = GetParam();
  std::string store;
  if (postgres) {
    if (store::testing::SkipPostgres()) GTEST_SKIP() << "BRIG_SKIP_POSTGRES=1";
    auto url = store::testing::PgServer::Get().NewUrl();
    ASSERT_TRUE(url.ok()) << url.status().message();
    store = url.value();
  }
  WorkerPool& pool = Start(Options(store));
  const std::string victim = IdOn(0, "victim");
  const std::string bystander = IdOn(1, "bystander");
  MustRun(pool, victim, "x = 1\nimport os\nopen('/home/user/f', 'w').write('one')");
  const pid_t old = pool.WorkerPids()[0];
  const pid_t other = pool.WorkerPids()[1];

  auto doomed = Submit(pool, victim, "x = 2\nopen('/home/user/f', 'w').write('two')\nprint('started', flush=True)\nwhile True: pass",
                       /*stream=*/true, /*timeout=*/120);
  ASSERT_TRUE(doomed->WaitForOutput("started"));
  auto beside = Submit(pool, bystander, "print('b', flush=True)\nimport time\ntime.sleep(0.5)\n'finished'", true);
  ASSERT_TRUE(beside->WaitForOutput("b"));
  ASSERT_EQ(kill(old, sig), 0);

  auto failed = doomed->Wait();
  ASSERT_TRUE(failed.status().IsUnavailable()) << failed.status().ToString();
  EXPECT_NE(failed.status().message().find("worker running this execution died"), std::string::npos);
  EXPECT_NE(failed.status().message().find("signal " + std::to_string(sig)), std::string::npos) << failed.status().message();
  EXPECT_TRUE(Gone(old));  // waited for before the failure was reported
  auto ok = beside->Wait();
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok.value().execution.result, "'finished'");

  EXPECT_EQ(pool.WorkerRestarts(), 1);
  const pid_t replacement = pool.WorkerPids()[0];
  EXPECT_NE(replacement, 0);
  EXPECT_NE(replacement, old);
  EXPECT_EQ(pool.WorkerPids()[1], other);
  SessionResult after = MustRun(pool, victim, "(x, open('/home/user/f').read())");
  EXPECT_EQ(after.execution.result, "(1, 'one')");
  EXPECT_EQ(after.restored_from, "pages");  // the new worker restored it from the store
  EXPECT_EQ(MustRun(pool, bystander, "'still live'").restored_from, "live");
}

INSTANTIATE_TEST_SUITE_P(Signals, WorkerDeathTest,
                         ::testing::Values(std::make_tuple(SIGKILL, false), std::make_tuple(SIGSEGV, false),
                                           std::make_tuple(SIGKILL, true)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == SIGKILL ? "Kill" : "Segv") +
                                  (std::get<1>(info.param) ? "Postgres" : "Sqlite");
                         });

// On SQLite the workers hand their saves to the pool, which commits them on its store: the
// sessions of both workers are saved there (its group commit counts their writes, none of
// which the workers made), and replacement workers restore them from it. Without the relay
// the pool's store writes nothing.
TEST_F(WorkerPoolTest, RelayedSavesAreCommittedByThePool) {
  std::atomic<size_t> committed{0}, commits{0};  // reported for /metrics; outlive the pools
  for (bool relay : {true, false}) {
    SCOPED_TRACE(relay ? "relay" : "no relay");
    pool_.reset();
    relay_.reset();
    committed = 0;
    commits = 0;
    WorkerPoolOptions options = Options("", relay);
    options.on_commit = [&](size_t saves, double seconds) {
      EXPECT_GE(seconds, 0.0);
      committed += saves;
      ++commits;
    };
    WorkerPool& pool = Start(std::move(options));
    auto opened = brig::Store::Open("sqlite:" + dir_ + "/brig.db");
    ASSERT_TRUE(opened.ok());
    brig::Store& committer = relay ? *relay_ : *opened.value();
    const int64_t before = internal::Access::Backend(committer).GetWriteStats().writes;
    const std::string prefix = relay ? "relay" : "direct";
    const std::string a = IdOn(0, prefix), b = IdOn(1, prefix);
    for (const std::string& id : {a, b}) {
      MustRun(pool, id, "n = 1\nopen('/home/user/n', 'w').write('1')");
      MustRun(pool, id, "n += 1\nopen('/home/user/n', 'w').write(str(n))");
    }
    const int64_t writes = internal::Access::Backend(committer).GetWriteStats().writes - before;
    if (relay) {
      EXPECT_GE(writes, 4);  // the four executions' saves (creating a session is the worker's)
      EXPECT_EQ(committed.load(), 4u) << "each save reported once";
      EXPECT_GE(commits.load(), 1u);
      EXPECT_LE(commits.load(), 4u);
    } else {
      EXPECT_EQ(writes, 0);
      EXPECT_EQ(commits.load(), 0u);
    }
    for (size_t slot : {0, 1}) {
      const pid_t old = pool.WorkerPids()[slot];
      ASSERT_EQ(kill(old, SIGKILL), 0);
      ASSERT_TRUE(WaitGone(old));
      for (int i = 0; i < 3000 && (pool.WorkerPids()[slot] == 0 || pool.WorkerPids()[slot] == old); i++) {
        std::this_thread::sleep_for(10ms);
      }
    }
    for (const std::string& id : {a, b}) {
      SessionResult after = MustRun(pool, id, "(n, open('/home/user/n').read())");
      EXPECT_EQ(after.execution.result, "(2, '2')") << id;
      EXPECT_EQ(after.restored_from, "pages") << id;
    }
  }
  pool_.reset();  // its committer reports to the counters above
}

// Workers on PostgreSQL make their image with the database's seed; on SQLite with none. Both
// on one image cache (one BRIG_HOME, or tests running side by side): the seeded image must not
// replace the other, or a SQLite worker started afterwards has another image than the one
// that saved its sessions, and cannot restore their pages (before the portable snapshot is
// taken: "the snapshot is from another image"). Failed before seeded images got files of
// their own.
TEST_F(WorkerPoolTest, ASeededImageDoesNotReplaceTheOneSqliteWorkersUse) {
  if (store::testing::SkipPostgres()) GTEST_SKIP() << "BRIG_SKIP_POSTGRES=1";
  const std::string cache = dir_ + "/images";
  const char* old_cache = std::getenv("BRIG_IMAGE_CACHE");
  const std::string restore = old_cache ? old_cache : "";
  ASSERT_EQ(setenv("BRIG_IMAGE_CACHE", cache.c_str(), 1), 0);  // the workers inherit it
  {
    WorkerPool& sqlite = Start(Options());
    const std::string id = IdOn(0, "seeded");
    MustRun(sqlite, id, "x = 41");
    auto url = store::testing::PgServer::Get().NewUrl();
    ASSERT_TRUE(url.ok()) << url.status().message();
    WorkerPoolOptions pg = Options(url.value());
    pg.workers = 1;
    auto other = WorkerPool::Start(std::move(pg));
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    MustRun(*other.value(), "on-postgres", "1");
    other.value()->Shutdown(std::chrono::milliseconds(0));
    // The SQLite worker holding the session dies; its replacement loads the cache.
    const pid_t old = sqlite.WorkerPids()[0];
    ASSERT_EQ(kill(old, SIGKILL), 0);
    ASSERT_TRUE(WaitGone(old));
    for (int i = 0; i < 3000 && (sqlite.WorkerPids()[0] == 0 || sqlite.WorkerPids()[0] == old); i++) {
      std::this_thread::sleep_for(10ms);
    }
    SessionResult after = MustRun(sqlite, id, "x + 1");
    EXPECT_EQ(after.execution.result, "42");
    EXPECT_EQ(after.restored_from, "pages");
  }
  if (old_cache) {
    setenv("BRIG_IMAGE_CACHE", restore.c_str(), 1);
  } else {
    unsetenv("BRIG_IMAGE_CACHE");
  }
}

// The image cache keeps the most recent few image files; other builds (or, here, other test
// binaries) saving theirs make older ones go. The one the workers use stays while they run: a
// worker replacing a crashed one loads it and restores its sessions from their pages. (It
// once went: the replacement made a new image and failed "the snapshot is from another image
// (and it has no portable snapshot)"; a full ctest run did that to this file's tests now and
// then.)
// BRIG_IMAGE_CACHE set to `dir` while it lives (the workers inherit it), as before after.
class ScopedImageCache {
 public:
  explicit ScopedImageCache(const std::string& dir) {
    if (const char* old = std::getenv("BRIG_IMAGE_CACHE")) old_ = old;
    setenv("BRIG_IMAGE_CACHE", dir.c_str(), 1);
  }
  ~ScopedImageCache() {
    if (old_) {
      setenv("BRIG_IMAGE_CACHE", old_->c_str(), 1);
    } else {
      unsetenv("BRIG_IMAGE_CACHE");
    }
  }
  ScopedImageCache(const ScopedImageCache&) = delete;
  ScopedImageCache& operator=(const ScopedImageCache&) = delete;

 private:
  std::optional<std::string> old_;
};

// An image of this test binary, saved at `path`, made without the cache (so that this process
// holds nothing in it).
void SaveProcessImage(const std::string& path) {
  ScopedImageCache off("off");
  std::string why;
  const brig_python_image* process = ProcessImage(&why);
  ASSERT_NE(process, nullptr) << why;
  ASSERT_EQ(brig_python_image_save(process, path.c_str()), 0);
}

// The one image file in `cache`.
std::string OnlyImageIn(const std::string& cache) {
  std::vector<std::string> images;
  for (const auto& e : std::filesystem::directory_iterator(cache)) {
    if (e.path().extension() == ".img") images.push_back(e.path().string());
  }
  EXPECT_EQ(images.size(), 1u) << "the workers' image";
  return images.empty() ? "" : images[0];
}

// Makes `image` older than eight other files in its cache, then saves an image (seed 7, made
// from `source`) through the cache, which prunes it: those eight stay, and older files go
// unless a process holds them.
void PruneAfterEightNewer(const std::string& cache, const std::string& image, const std::string& source) {
  namespace fs = std::filesystem;
  const auto now = fs::file_time_type::clock::now();
  fs::last_write_time(image, now - 1h);
  for (int i = 0; i < 8; i++) {
    const std::string other = cache + "/other-" + std::to_string(i) + ".img";
    std::ofstream(other) << "another build's image";
    fs::last_write_time(other, now - 10min);
  }
  brig_python_image* saved = image_cache::LoadOrMake(7, [&](bool* save) {
    *save = true;
    const char* refused = nullptr;
    return brig_python_image_load(source.c_str(), &refused, nullptr);
  });
  ASSERT_NE(saved, nullptr);
  brig_python_image_destroy(saved);
  EXPECT_FALSE(fs::exists(cache + "/other-0.img")) << "the cache was not pruned";
}

// Waits for the worker in slot 0 to be replaced after `old` died.
void AwaitReplacement(WorkerPool& pool, pid_t old) {
  for (int i = 0; i < 3000 && (pool.WorkerPids()[0] == 0 || pool.WorkerPids()[0] == old); i++) {
    std::this_thread::sleep_for(10ms);
  }
}

TEST_F(WorkerPoolTest, TheWorkersImageIsKeptWhenTheCacheIsPruned) {
  const std::string cache = dir_ + "/images", source = dir_ + "/source.img";
  SaveProcessImage(source);
  ScopedImageCache scoped(cache);
  WorkerPool& pool = Start(Options());
  const std::string id = IdOn(0, "pruned");
  MustRun(pool, id, "x = 41");
  const std::string image = OnlyImageIn(cache);
  ASSERT_FALSE(image.empty());
  PruneAfterEightNewer(cache, image, source);
  EXPECT_TRUE(std::filesystem::exists(image)) << "the image the workers use was removed";

  const pid_t old = pool.WorkerPids()[0];
  ASSERT_EQ(kill(old, SIGKILL), 0);
  ASSERT_TRUE(WaitGone(old));
  AwaitReplacement(pool, old);
  SessionResult after = MustRun(pool, id, "x + 1");
  EXPECT_EQ(after.execution.result, "42");
  EXPECT_EQ(after.restored_from, "pages");
}

// While no worker lives (the only one killed, its replacement slow to start), nothing maps the
// workers' image: the supervisor holds it (the worker named it when ready), so that a prune
// meanwhile leaves it for the replacement.
TEST_F(WorkerPoolTest, TheSupervisorHoldsTheWorkersImageWhileNoWorkerLives) {
  namespace fs = std::filesystem;
  const std::string cache = dir_ + "/images", source = dir_ + "/source.img";
  SaveProcessImage(source);
  ScopedImageCache scoped(cache);
  // The workers start through a script, so that the replacement can be made to wait.
  const std::string script = dir_ + "/worker.sh";
  auto write_script = [&](const std::string& first) {
    std::ofstream(script + ".new") << "#!/bin/sh\n" << first << "exec '" << Self() << "' \"$@\"\n";
    ASSERT_EQ(chmod((script + ".new").c_str(), 0700), 0);
    ASSERT_EQ(rename((script + ".new").c_str(), script.c_str()), 0);
  };
  write_script("");
  WorkerPoolOptions o = Options();
  o.workers = 1;
  o.executable = script;
  WorkerPool& pool = Start(std::move(o));
  const std::string id = IdOn(0, "alone");
  MustRun(pool, id, "x = 41");
  const std::string image = OnlyImageIn(cache);
  ASSERT_FALSE(image.empty());

  write_script("sleep 2\n");
  const pid_t old = pool.WorkerPids()[0];
  ASSERT_EQ(kill(old, SIGKILL), 0);
  ASSERT_TRUE(WaitGone(old));
  {
    const int probe = open(image.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(probe, 0);
    EXPECT_NE(flock(probe, LOCK_EX | LOCK_NB), 0) << "nothing holds the image while no worker lives";
    close(probe);
  }
  PruneAfterEightNewer(cache, image, source);
  EXPECT_TRUE(fs::exists(image)) << "the workers' image was removed while none lived";

  AwaitReplacement(pool, old);
  SessionResult after = MustRun(pool, id, "x + 1");
  EXPECT_EQ(after.execution.result, "42");
  EXPECT_EQ(after.restored_from, "pages");
}

// SIGTERM to a worker: it finishes what it runs (the result arrives), exits 0, is replaced.
TEST_F(WorkerPoolTest, SigtermLetsTheWorkerFinishAndExitZero) {
  WorkerPool& pool = Start(Options());
  const std::string id = IdOn(0, "term");
  auto running = Submit(pool, id, "print('started', flush=True)\nimport time\ntime.sleep(1)\nv = 'done'\nv", true);
  ASSERT_TRUE(running->WaitForOutput("started"));
  const pid_t old = pool.WorkerPids()[0];
  ASSERT_EQ(kill(old, SIGTERM), 0);
  auto r = running->Wait();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().execution.result, "'done'");
  EXPECT_TRUE(r.value().saved);
  ASSERT_TRUE(WaitGone(old));
  // Replaced once the pool has seen it go (an execution sent before that would reach the
  // exiting worker and fail with Unavailable).
  for (int i = 0; i < 3000 && (pool.WorkerPids()[0] == old || pool.WorkerPids()[0] == 0); i++) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(MustRun(pool, id, "v").execution.result, "'done'");
  EXPECT_NE(Log().find("(pid " + std::to_string(old) + ") exited with status 0"), std::string::npos) << Log();
  EXPECT_EQ(pool.WorkerRestarts(), 1);
}

TEST_F(WorkerPoolTest, ShutdownLetsRunningExecutionsFinishWithinTheGrace) {
  WorkerPool& pool = Start(Options());
  auto running = Submit(pool, "graceful", "print('started', flush=True)\nimport time\ntime.sleep(1)\n'done'", true);
  ASSERT_TRUE(running->WaitForOutput("started"));
  const std::vector<pid_t> pids = pool.WorkerPids();
  pool.Shutdown(60s);
  auto r = running->Wait();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().execution.result, "'done'");
  for (pid_t pid : pids) {
    EXPECT_TRUE(Gone(pid));
    EXPECT_NE(Log().find("(pid " + std::to_string(pid) + ") exited with status 0"), std::string::npos) << Log();
  }
  EXPECT_TRUE(Submit(pool, "graceful", "1")->Wait().status().IsUnavailable());
  pool.Shutdown(0s);  // idempotent
}

TEST_F(WorkerPoolTest, ShutdownPastTheGraceStopsWhatStillRuns) {
  WorkerPool& pool = Start(Options());
  auto spinning = Submit(pool, "spinner", "print('started', flush=True)\nwhile True: pass", true, 120);
  ASSERT_TRUE(spinning->WaitForOutput("started"));
  pool.Shutdown(200ms);  // then SIGTERM (the worker waits for the loop), SIGKILL after 1 s
  auto r = spinning->Wait();
  ASSERT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("shut down"), std::string::npos) << r.status().message();
  EXPECT_EQ(pool.InFlight(), 0);
}

TEST_F(WorkerPoolTest, QueueIsBounded) {
  WorkerPoolOptions o = Options();
  o.workers = 1;
  o.threads_per_worker = 1;
  o.max_queue = 1;
  WorkerPool& pool = Start(std::move(o));
  auto first = Submit(pool, "q1", "print('started', flush=True)\nimport time\ntime.sleep(0.5)", true);
  auto second = Submit(pool, "q2", "1");
  auto third = Submit(pool, "q3", "1");
  auto r = third->Wait();
  EXPECT_TRUE(r.status().IsResourceExhausted()) << r.status().ToString();
  EXPECT_TRUE(first->Wait().ok());
  EXPECT_TRUE(second->Wait().ok());
  EXPECT_TRUE(Submit(pool, "q3", "1")->Wait().ok());
  EXPECT_TRUE(Submit(pool, std::string(300, 'x'), "1")->Wait().status().IsInvalidArgument());
}

TEST_F(WorkerPoolTest, AWorkerThatCannotStartFailsStart) {
  WorkerPoolOptions o = Options("sqlite:" + dir_ + "/missing/dir/brig.db");
  const auto before = OpenFds();
  auto pool = WorkerPool::Start(std::move(o));
  ASSERT_FALSE(pool.ok());
  EXPECT_NE(pool.status().message().find("missing"), std::string::npos) << pool.status().ToString();
  EXPECT_EQ(OpenFds(), before);
}

// No descriptor of the server reaches a worker, none is left behind, and no zombie.
TEST_F(WorkerPoolTest, NoDescriptorLeaksAndNoZombies) {
  const auto before = OpenFds();
  // A descriptor without close-on-exec, as a careless library might leave one.
  int marker = open((dir_ + "/marker").c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(marker, 0);
  std::vector<pid_t> seen;
  {
    WorkerPool& pool = Start(Options());
    for (pid_t pid : pool.WorkerPids()) {
      seen.push_back(pid);
      for (const std::string& fd : OpenFds(pid)) EXPECT_EQ(fd.find("marker"), std::string::npos) << fd;
      EXPECT_EQ(OpenFds(pid).count("0 -> /dev/null"), 1u);
    }
    MustRun(pool, "fds", "x = 1");
    const pid_t victim = pool.WorkerPids()[pool.WorkerFor("fds")];
    auto spinning = Submit(pool, "fds", "print('started', flush=True)\nwhile True: pass", true, 120);
    ASSERT_TRUE(spinning->WaitForOutput("started"));
    kill(victim, SIGKILL);
    EXPECT_TRUE(spinning->Wait().status().IsUnavailable());
    for (pid_t pid : pool.WorkerPids()) seen.push_back(pid);
    pool_.reset();  // shutdown and destruction
    relay_.reset();  // the store the pool committed on (the test's, not the pool's)
  }
  close(marker);
  for (pid_t pid : seen) {
    EXPECT_TRUE(Gone(pid)) << pid;
    EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1) << pid;  // waited for: not even a zombie
  }
  // But one: the supervisor holds its workers' image file for good (Sandbox::HoldImageFile),
  // once, however many workers named it.
  auto without_images = [](std::set<std::string> fds) {
    std::erase_if(fds, [](const std::string& fd) { return fd.size() > 4 && fd.substr(fd.size() - 4) == ".img"; });
    return fds;
  };
  const auto after = OpenFds();
  EXPECT_EQ(without_images(after), without_images(before));
  EXPECT_LE(after.size(), before.size() + 1) << "the workers' image is held more than once";
}

// The supervisor dies (SIGKILL, no chance to clean up): its workers die too.
TEST_F(WorkerPoolTest, WorkersDieWithTheirSupervisor) {
  std::string command = "exec " + Self() + " __supervisor sqlite:" + dir_ + "/brig.db";
  FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char line[256] = {};
  ASSERT_NE(fgets(line, sizeof line, p), nullptr);
  std::istringstream in(line);
  pid_t supervisor = 0, a = 0, b = 0;
  in >> supervisor >> a >> b;
  ASSERT_GT(supervisor, 0);
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  EXPECT_FALSE(Gone(a));
  ASSERT_EQ(kill(supervisor, SIGKILL), 0);
  pclose(p);
  EXPECT_TRUE(WaitGone(a));
  EXPECT_TRUE(WaitGone(b));
}

// ---- A worker that breaks the protocol, one way per mode (the fake worker below).

class MalformedWorkerTest : public WorkerPoolTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(MalformedWorkerTest, IsKilledAndItsExecutionFails) {
  // A save is a protocol error only where the pool takes none.
  WorkerPoolOptions o = Options("", /*relay=*/GetParam() != "save-unasked");
  o.workers = 1;
  o.arguments = {"__fake_worker", GetParam()};
  WorkerPool& pool = Start(std::move(o));
  // Both ways of taking a result: read into a SessionResult, and checked then passed on as
  // text (ExecRequest::on_rendered).
  for (bool rendered : {false, true}) {
    // With io, a worker reaped on an io thread is started again by the pool's thread a moment
    // later (its slot says 0 until then).
    pid_t fake = 0;
    for (int i = 0; i < 5000 && (fake = pool.WorkerPids()[0]) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_NE(fake, 0);
    auto r = Submit(pool, "t", "1", /*stream=*/GetParam() == "too-much-output", std::nullopt, std::nullopt, rendered)->Wait();
    ASSERT_TRUE(r.status().IsUnavailable()) << rendered << " " << r.status().ToString();
    EXPECT_NE(r.status().message().find("broke the protocol"), std::string::npos) << r.status().message();
    EXPECT_TRUE(Gone(fake));
    EXPECT_EQ(pool.WorkerRestarts(), rendered ? 2 : 1);
    EXPECT_NE(pool.WorkerPids()[0], fake);
  }
}

// A result taken as text is the worker's JSON unchanged: the bytes the server would write
// from the SessionResult, with the outcome the metrics would give it.
TEST_F(WorkerPoolTest, RenderedResultsAreTheJsonOfTheResult) {
  WorkerPool& pool = Start(Options());
  struct Case {
    std::string code;
    std::string outcome;
  };
  for (const Case& c : {Case{"x = 6 * 7\nprint(x)\nx", "ok"}, Case{"1 / 0", "python_error"},
                        Case{"while True: pass", "timeout"}}) {
    auto out = Submit(pool, "rendered", c.code, false, /*timeout=*/0.5, std::nullopt, /*rendered=*/true);
    auto r = out->Wait();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(out->rendered) << c.code;
    EXPECT_EQ(out->rendered->outcome, c.outcome) << c.code;
    EXPECT_EQ(out->rendered->json, Dump(ToJson("rendered", r.value()))) << c.code;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, MalformedWorkerTest,
                         ::testing::Values("short-length", "huge-length", "unknown-type", "not-json", "wrong-session",
                                           "missing-field", "unknown-id", "output-not-asked", "bad-status",
                                           "too-much-output", "supervisor-frame", "short-reply", "save-unasked",
                                           "save-malformed", "save-answer-frame"),
                         [](const auto& info) {
                           std::string name;
                           for (char c : info.param) name += c == '-' ? '_' : c;
                           return name;
                         });

// Where the callbacks run: with io, on its threads (the reply is read where it is answered);
// without, on the pool's own thread. Never on the caller's. Output, result, rendered result.
TEST_F(WorkerPoolTest, CallbacksRunOnTheIoThreadsWhenGivenOne) {
  WorkerPool& pool = Start(Options());
  for (bool rendered : {false, true}) {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::thread::id> seen;
    bool done = false;
    auto note = [&](bool last) {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(std::this_thread::get_id());
      if (last) done = true;
      cv.notify_all();
    };
    ExecRequest r;
    r.thread_id = "where";
    r.code = "print('out', flush=True)\n1";
    r.stream = true;
    if (rendered) r.on_rendered = [&](ExecRequest::Rendered) { note(true); };
    pool.Execute(std::move(r), [&](OutputStream, std::string_view) { note(false); }, [&](StatusOr<SessionResult>) { note(true); });
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 300s, [&] { return done; }));
    ASSERT_GE(seen.size(), 2u);  // the output, then the result
    for (std::thread::id id : seen) {
      EXPECT_NE(id, std::this_thread::get_id());
      const bool on_io = std::any_of(io_threads_.begin(), io_threads_.end(), [&](const std::thread& t) { return t.get_id() == id; });
      EXPECT_EQ(on_io, io_ != nullptr) << rendered;
    }
  }
}

// A worker that says it is ready and then falls silent (no heartbeat: as if stopped) is
// killed as hung; its execution fails with Unavailable and a new worker takes the slot.
TEST_F(WorkerPoolTest, AWorkerThatFallsSilentIsKilledAndReplaced) {
  WorkerPoolOptions o = Options();
  o.workers = 1;
  o.heartbeat_timeout = 2s;
  o.arguments = {"__fake_worker", "silent"};
  WorkerPool& pool = Start(std::move(o));
  const pid_t fake = pool.WorkerPids()[0];
  auto r = Submit(pool, "t", "1", /*stream=*/false)->Wait();
  ASSERT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("hung"), std::string::npos) << r.status().message();
  EXPECT_TRUE(Gone(fake));
  EXPECT_EQ(pool.WorkerRestarts(), 1);
  EXPECT_NE(pool.WorkerPids()[0], fake);
}

TEST_F(WorkerPoolTest, AHeartbeatTimeoutShorterThanFourBeatsIsRefused) {
  WorkerPoolOptions o = Options();
  o.heartbeat_timeout = 1s;
  auto pool = WorkerPool::Start(std::move(o));
  EXPECT_TRUE(pool.status().IsInvalidArgument()) << pool.status().ToString();
}

// ---- The other roles of this binary.

void SendRaw(int fd, const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + at, bytes.size() - at);
    if (n <= 0) _exit(1);
    at += static_cast<size_t>(n);
  }
}

worker::Frame ReadFrame(int fd, worker::FrameReader& reader) {
  std::string error;
  while (true) {
    if (auto f = reader.Next(&error)) return *f;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) _exit(1);
    reader.Append(buf, static_cast<size_t>(n));
  }
}

int FakeWorker(const std::string& mode) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  const int fd = worker::kWorkerFd;
  worker::FrameReader reader;
  ReadFrame(fd, reader);  // the config
  std::string ready;
  worker::AppendFrame(&ready, worker::FrameType::kReady, 0, "");
  SendRaw(fd, ready);
  worker::Frame exec = ReadFrame(fd, reader);
  auto body = worker::DecodeExecute(exec.body);
  if (!body) _exit(1);
  SessionResult good;
  good.execution.ok = true;
  std::string good_json = ToJson(body->thread_id, good).dump();
  std::string out;
  auto frame = [&](worker::FrameType t, uint64_t id, std::string_view b) { worker::AppendFrame(&out, t, id, b); };
  if (mode == "short-length") {
    AppendLe32(&out, 3);
    out += "abc";
  } else if (mode == "huge-length") {
    AppendLe32(&out, worker::kMaxFrame + 1);
  } else if (mode == "unknown-type") {
    AppendLe32(&out, 9);
    out.push_back(77);
    AppendLe64(&out, exec.id);
  } else if (mode == "not-json") {
    frame(worker::FrameType::kResult, exec.id, worker::EncodeResult({}, "{not json"));
  } else if (mode == "wrong-session") {
    frame(worker::FrameType::kResult, exec.id, worker::EncodeResult({}, ToJson("someone-else", good).dump()));
  } else if (mode == "missing-field") {
    nlohmann::json j = ToJson(body->thread_id, good);
    j.erase("ok");
    frame(worker::FrameType::kResult, exec.id, worker::EncodeResult({}, j.dump()));
  } else if (mode == "unknown-id") {
    frame(worker::FrameType::kResult, exec.id + 1000, worker::EncodeResult({}, good_json));
  } else if (mode == "output-not-asked") {
    frame(worker::FrameType::kOutput, exec.id, std::string(1, '\0') + "hi");
  } else if (mode == "bad-status") {
    std::string b;
    AppendLe64(&b, 0);
    b.push_back(static_cast<char>(200));
    b += "nope";
    frame(worker::FrameType::kError, exec.id, b);
  } else if (mode == "too-much-output") {
    // More than the 1 MiB output limit in one stream.
    for (int i = 0; i < 3; i++) frame(worker::FrameType::kOutput, exec.id, std::string(1, '\0') + std::string(600 << 10, 'x'));
  } else if (mode == "supervisor-frame") {
    frame(worker::FrameType::kExecute, exec.id, worker::EncodeExecute(*body));
  } else if (mode == "short-reply") {
    frame(worker::FrameType::kResult, exec.id, "abc");
  } else if (mode == "save-unasked") {
    frame(worker::FrameType::kSave, 1, "any");
  } else if (mode == "save-malformed") {
    frame(worker::FrameType::kSave, 1, "not the bytes of a save");
  } else if (mode == "save-answer-frame") {
    frame(worker::FrameType::kSaved, 1, "");
  }
  SendRaw(fd, out);
  pause();  // the supervisor kills it
  return 0;
}

// Starts a pool, prints "SUPERVISOR_PID WORKER_PID WORKER_PID", and waits to be killed.
int Supervisor(const std::string& store_url) {
  WorkerPoolOptions o;
  o.sessions.store_url = store_url;
  o.workers = 2;
  o.threads_per_worker = 1;
  o.executable = Self();
  auto pool = WorkerPool::Start(std::move(o));
  if (!pool.ok()) return 1;
  std::vector<pid_t> pids = pool.value()->WorkerPids();
  std::printf("%d %d %d\n", static_cast<int>(getpid()), static_cast<int>(pids[0]), static_cast<int>(pids[1]));
  std::fflush(stdout);
  while (true) pause();
}

}  // namespace
}  // namespace brig::server

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "__worker") return brig::server::WorkerMain(argc, argv);
  if (argc >= 3 && std::string(argv[1]) == "__fake_worker") return brig::server::FakeWorker(argv[2]);
  if (argc >= 3 && std::string(argv[1]) == "__supervisor") return brig::server::Supervisor(argv[2]);
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; i++) {
    if (std::string(argv[i]) == "--pool-io") brig::server::g_pool_io = true;
  }
  return RUN_ALL_TESTS();
}
