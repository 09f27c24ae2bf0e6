// Executions of `x = 1` in many live sessions at once: worker processes (WorkerPool) against
// threads of one process (the in-process executor), plus what one durable execution costs,
// part by part (issue #10's targets: >= 20,000 non-durable and >= 3,000 durable executions/s
// with p99 < 25 ms on 2 cores).
//
//   build/bench/pool_bench [--sessions N] [--rounds R] [--workers W] [--threads T] [--store URL]
//                          [--parts-only 1]
//
// Figures, each the median of 3 interleaved runs (the machine is shared):
//   A. live sandboxes, no store (Sandbox::Execute on W*T threads): the non-durable ceiling;
//   B. Sessions::Execute (durable: every execution saved) through the in-process executor;
//   C. the same through WorkerPool (W worker processes x T threads);
//   D. WorkerPool with echo workers (answer at once, run nothing): the IPC hop alone;
//   E. the parts of one durable execution in a live session, single-threaded: the store's
//      lock, session row, state read, file list, the page diff, the portable snapshot, the
//      commit, the trim.
// The binary is also its own worker ("__worker") and echo worker ("__echo_worker").
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "brig/result_json.h"
#include "brig/sandbox.h"
#include "brig/sessions.h"
#include "server/in_process_executor.h"
#include "server/worker_main.h"
#include "server/worker_pool.h"
#include "server/worker_protocol.h"
#include "session/session_manager.h"
#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using brig::server::ExecRequest;
using brig::server::Executor;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "pool_bench: %s\n", what.c_str());
  std::exit(1);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

struct Load {
  double per_second = 0;
  double p50_ms = 0, p99_ms = 0;
  int errors = 0;
};

// `rounds` executions of `code` in each of `sessions` sessions, at most `concurrency` in
// flight, sessions taken round-robin (so one session rarely has two at once).
Load Drive(Executor& e, const std::string& prefix, int sessions, int rounds, int concurrency, const std::string& code) {
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::vector<double> latencies;
  latencies.reserve(static_cast<size_t>(sessions) * rounds);
  std::atomic<int> errors{0};
  auto start = Clock::now();
  for (int r = 0; r < rounds; r++) {
    for (int s = 0; s < sessions; s++) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return in_flight < concurrency; });
        in_flight++;
      }
      ExecRequest req;
      req.thread_id = prefix + std::to_string(s);
      req.code = code;
      auto sent = Clock::now();
      e.Execute(std::move(req), nullptr, [&, sent](brig::StatusOr<brig::SessionResult> result) {
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
        if (!result.ok() || !result.value().execution.ok) errors++;
        std::lock_guard<std::mutex> lock(mu);
        latencies.push_back(ms);
        in_flight--;
        cv.notify_all();
      });
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  Load l;
  l.per_second = static_cast<double>(latencies.size()) / seconds;
  l.p50_ms = Percentile(latencies, 0.5);
  l.p99_ms = Percentile(latencies, 0.99);
  l.errors = errors;
  return l;
}

// A: `x = 1` in live sandboxes on `threads` threads, no store.
double LiveSandboxes(int sessions, int rounds, int threads) {
  std::vector<std::unique_ptr<brig::Sandbox>> boxes;
  for (int s = 0; s < sessions; s++) {
    auto b = brig::Sandbox::Create();
    if (!b.ok()) Fail("Sandbox::Create: " + b.status().message());
    if (!b.value()->Execute("x = 0").ok) Fail("x = 0");
    boxes.push_back(std::move(b.value()));
  }
  std::atomic<int> errors{0};
  auto start = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) {
    pool.emplace_back([&, t] {
      for (int r = 0; r < rounds; r++) {
        for (int s = t; s < sessions; s += threads) {
          if (!boxes[s]->Execute("x = 1").ok) errors++;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  if (errors) Fail("x = 1 failed in a sandbox");
  return static_cast<double>(sessions) * rounds / std::chrono::duration<double>(Clock::now() - start).count();
}

// The page_count of a page snapshot's header (sandbox_state.cc: magic, u32 length, JSON).
int64_t PageCount(const std::string& snapshot) {
  if (snapshot.size() < 12) return -1;
  uint32_t n = 0;
  std::memcpy(&n, snapshot.data() + 8, 4);  // little-endian host
  if (12 + static_cast<size_t>(n) > snapshot.size()) return -1;
  auto header = nlohmann::json::parse(snapshot.substr(12, n), nullptr, false);
  return header.is_object() && header.contains("page_count") ? header["page_count"].get<int64_t>() : -1;
}

// E: the parts of a durable `x = 1` in a live session.
void SaveParts(const std::string& store_url, int reps) {
  auto store = brig::store::OpenStore(store_url);
  if (!store.ok()) Fail("OpenStore: " + store.status().message());
  brig::store::Store& st = *store.value();
  brig::session::SessionManager manager(st);
  const std::string id = "parts";
  if (!manager.GetOrCreate(id).ok()) Fail("GetOrCreate");
  auto made = brig::Sandbox::Create();
  if (!made.ok()) Fail("Sandbox::Create");
  brig::Sandbox& box = *made.value();
  if (!box.Execute("x = 0").ok) Fail("x = 0");
  int64_t version = 0;
  std::vector<double> lock_us, row_us, state_us, files_us, exec_us, pages_us, portable_us, commit_us, trim_us;
  size_t pages_bytes = 0, portable_bytes = 0;
  int64_t pages_count = 0;
  for (int i = 0; i < reps; i++) {
    auto t0 = Clock::now();
    auto lock = st.LockSession(id);
    if (!lock.ok()) Fail("LockSession");
    auto t1 = Clock::now();
    if (!manager.GetOrCreate(id).ok()) Fail("GetOrCreate");
    auto t2 = Clock::now();
    if (!st.GetState(id).ok()) Fail("GetState");
    auto t3 = Clock::now();
    if (!st.ListFiles(id).ok()) Fail("ListFiles");
    auto t4 = Clock::now();
    if (!box.Execute("x = 1").ok) Fail("x = 1");
    auto t5 = Clock::now();
    auto pages = box.SavePages();
    if (!pages.ok()) Fail("SavePages: " + pages.status().message());
    auto t6 = Clock::now();
    auto portable = box.SavePortable();
    if (!portable.ok()) Fail("SavePortable");
    auto t7 = Clock::now();
    std::string blob = pages.value() + portable.value().data;  // about what Sessions stores
    auto saved = st.SaveExecution(id, version, brig::store::StateWrite{blob, "bench", "bench"}, {}, {});
    if (!saved.ok()) Fail("SaveExecution: " + saved.status().message());
    version = saved.value();
    auto t8 = Clock::now();
    (void)box.Trim();
    auto t9 = Clock::now();
    lock.value().reset();
    pages_bytes = pages.value().size();
    pages_count = PageCount(pages.value());
    portable_bytes = portable.value().data.size();
    lock_us.push_back(Us(t1 - t0));
    row_us.push_back(Us(t2 - t1));
    state_us.push_back(Us(t3 - t2));
    files_us.push_back(Us(t4 - t3));
    exec_us.push_back(Us(t5 - t4));
    pages_us.push_back(Us(t6 - t5));
    portable_us.push_back(Us(t7 - t6));
    commit_us.push_back(Us(t8 - t7));
    trim_us.push_back(Us(t9 - t8));
  }
  std::printf("E. one durable x = 1 in a live session, medians of %d (us): lock %.0f, session row %.0f, "
              "state read %.0f, file list %.0f | execute %.0f | page diff %.0f (%lld pages, %zu B), portable %.0f (%zu B), "
              "commit %.0f, trim %.0f\n",
              reps, Median(lock_us), Median(row_us), Median(state_us), Median(files_us), Median(exec_us),
              Median(pages_us), static_cast<long long>(pages_count), pages_bytes, Median(portable_us), portable_bytes, Median(commit_us), Median(trim_us));
}

// An echo worker: ready at once, answers every execution with a fixed successful result.
int EchoWorker() {
  namespace w = brig::server::worker;
  const int fd = w::kWorkerFd;
  w::FrameReader reader;
  auto read_frame = [&]() {
    std::string error;
    while (true) {
      if (auto f = reader.Next(&error)) return *f;
      char buf[65536];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) _exit(0);
      reader.Append(buf, static_cast<size_t>(n));
    }
  };
  auto send_all = [&](const std::string& s) {
    size_t at = 0;
    while (at < s.size()) {
      ssize_t n = write(fd, s.data() + at, s.size() - at);
      if (n <= 0) _exit(0);
      at += static_cast<size_t>(n);
    }
  };
  read_frame();
  std::string out;
  w::AppendFrame(&out, w::FrameType::kReady, 0, "");
  send_all(out);
  brig::SessionResult result;
  result.execution.ok = true;
  result.restored_from = "live";
  result.snapshot = "pages";
  result.saved = true;
  while (true) {
    w::Frame f = read_frame();
    auto body = w::DecodeExecute(f.body);
    if (!body) _exit(2);
    out.clear();
    std::string json = brig::ToJson(body->thread_id, result).dump();
    w::AppendFrame(&out, w::FrameType::kResult, f.id, w::EncodeResult({}, json));
    send_all(out);
  }
}

std::string Self() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "__worker") == 0) return brig::server::WorkerMain(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "__echo_worker") == 0) return EchoWorker();
  int sessions = 64, rounds = 50, workers = 2, threads = 2;
  bool parts_only = false;
  std::string store_url;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--sessions") sessions = std::atoi(argv[i + 1]);
    else if (flag == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (flag == "--workers") workers = std::atoi(argv[i + 1]);
    else if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--store") store_url = argv[i + 1];
    else if (flag == "--parts-only") parts_only = std::atoi(argv[i + 1]) != 0;
    else Fail("unknown flag " + flag);
  }
  char dir[] = "/tmp/brig-pool-bench-XXXXXX";
  if (!mkdtemp(dir)) Fail("mkdtemp");
  const bool own_store = store_url.empty();
  if (own_store) store_url = std::string("sqlite:") + dir + "/brig.db";
  brig::Sandbox::Create().value().reset();  // the process image, made (or mapped) outside timing
  if (parts_only) {
    SaveParts(store_url, 200);
    if (own_store) std::filesystem::remove_all(dir);
    return 0;
  }

  brig::Sessions::Options so;
  so.store_url = store_url;
  so.max_live = static_cast<size_t>(sessions) * 2;
  auto local = brig::Sessions::Open(so);
  if (!local.ok()) Fail("Sessions::Open: " + local.status().message());
  const int concurrency = workers * threads * 2;
  auto in_process = brig::server::MakeInProcessExecutor(*local.value(), workers * threads, 4096);

  brig::server::WorkerPoolOptions po;
  po.sessions = so;
  po.workers = workers;
  po.threads_per_worker = threads;
  po.max_queue = 4096;
  po.executable = Self();
  auto pool = brig::server::WorkerPool::Start(po);
  if (!pool.ok()) Fail("WorkerPool::Start: " + pool.status().message());
  po.arguments = {"__echo_worker"};
  auto echo = brig::server::WorkerPool::Start(po);
  if (!echo.ok()) Fail("echo WorkerPool::Start: " + echo.status().message());

  // Sessions made (and live) before timing.
  if (Drive(*in_process, "in-", sessions, 1, concurrency, "x = 0").errors) Fail("in-process warm-up");
  if (Drive(*pool.value(), "pool-", sessions, 1, concurrency, "x = 0").errors) Fail("pool warm-up");

  std::printf("pool_bench: %d sessions x %d rounds of x = 1, %d in flight; %d workers x %d threads; store %s\n",
              sessions, rounds, concurrency, workers, threads, own_store ? "SQLite (temp dir)" : store_url.c_str());
  std::vector<double> a, b, c, d, b50, b99, c50, c99, d50, d99, single_in, single_pool, single_echo;
  for (int run = 0; run < 3; run++) {
    a.push_back(LiveSandboxes(sessions, rounds, workers * threads));
    Load lb = Drive(*in_process, "in-", sessions, rounds, concurrency, "x = 1");
    Load lc = Drive(*pool.value(), "pool-", sessions, rounds, concurrency, "x = 1");
    Load ld = Drive(*echo.value(), "echo-", sessions, rounds, concurrency, "x = 1");
    if (lb.errors || lc.errors || ld.errors) Fail("errors in a run");
    b.push_back(lb.per_second);
    c.push_back(lc.per_second);
    d.push_back(ld.per_second);
    b50.push_back(lb.p50_ms);
    b99.push_back(lb.p99_ms);
    c50.push_back(lc.p50_ms);
    c99.push_back(lc.p99_ms);
    d50.push_back(ld.p50_ms);
    d99.push_back(ld.p99_ms);
    // One at a time: the round trip of a single execution.
    single_in.push_back(Drive(*in_process, "in-", 1, 200, 1, "x = 1").p50_ms);
    single_pool.push_back(Drive(*pool.value(), "pool-", 1, 200, 1, "x = 1").p50_ms);
    single_echo.push_back(Drive(*echo.value(), "echo-", 1, 200, 1, "x = 1").p50_ms);
  }
  std::printf("A. live sandboxes, no store, %d threads: %.0f executions/s\n", workers * threads, Median(a));
  std::printf("B. durable, in-process executor: %.0f executions/s, p50 %.2f ms, p99 %.2f ms\n", Median(b), Median(b50), Median(b99));
  std::printf("C. durable, worker processes:    %.0f executions/s, p50 %.2f ms, p99 %.2f ms (C/B %.2f)\n", Median(c),
              Median(c50), Median(c99), Median(c) / Median(b));
  std::printf("D. echo workers (IPC only):      %.0f executions/s, p50 %.2f ms, p99 %.2f ms\n", Median(d), Median(d50), Median(d99));
  std::printf("one at a time, p50: in-process %.3f ms, worker %.3f ms, echo worker %.3f ms (the hop: %.3f ms)\n",
              Median(single_in), Median(single_pool), Median(single_echo), Median(single_pool) - Median(single_in));
  SaveParts(store_url, 200);
  pool.value()->Shutdown(std::chrono::seconds(10));
  echo.value()->Shutdown(std::chrono::seconds(10));
  in_process->Shutdown(std::chrono::seconds(10));
  if (own_store) std::filesystem::remove_all(dir);
  return 0;
}
