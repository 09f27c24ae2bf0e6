// Session benchmarks (issue #3, items 4-6): the cost of transactional executions, rollback,
// fork, idle sessions' memory, and how creating fresh sandboxes scales on 2 cores with threads
// and with worker processes. Prints medians; the machine is shared, so run it more than once.
// Every timed execution is checked (ok, and values where the code has one): a benchmark that
// timed failures would report them as speed, so any failure exits with status 1.
//   build/bench/session_bench                 everything
//   build/bench/session_bench x1 fork idle    some parts: x1 rollback fork idle scaling
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "brig/sandbox.h"
#include "engine/memory_files.h"
#include "engine/page_snapshot.h"
#include "sandbox/sandbox_impl.h"
#include "sandbox/watchdog.h"

namespace {

using Clock = std::chrono::steady_clock;

double Us(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::unique_ptr<brig::Sandbox> Make(double timeout = 30) {
  brig::Limits limits;
  limits.timeout_seconds = timeout;
  auto s = brig::Sandbox::Create(limits);
  if (!s.ok()) {
    std::fprintf(stderr, "create: %s\n", s.status().message().c_str());
    std::exit(1);
  }
  return std::move(s.value());
}

// Exits unless `r`, the outcome of `code`, ran ok.
void MustBeOk(const brig::ExecutionResult& r, std::string_view code) {
  if (!r.ok) {
    std::fprintf(stderr, "failed: %.*s\n%s%s\n", static_cast<int>(code.size()), code.data(), r.stderr_text.c_str(),
                 r.failure_message.c_str());
    std::exit(1);
  }
}

void Must(brig::Sandbox& s, const std::string& code) { MustBeOk(s.Execute(code), code); }

// Exits unless `code` runs ok in `s` and its value's repr is `want`.
void MustEqual(brig::Sandbox& s, const std::string& code, const std::string& want) {
  brig::ExecutionResult r = s.Execute(code);
  MustBeOk(r, code);
  if (r.result.value_or("<none>") != want) {
    std::fprintf(stderr, "%s is %s, expected %s\n", code.c_str(), r.result.value_or("<none>").c_str(), want.c_str());
    std::exit(1);
  }
}

// A session holding ~50 MB of Python objects (200k small dicts plus their strings).
constexpr const char* kFiftyMegabytes =
    "rows = [{'id': i, 'name': 'name-%d' % i, 'tags': [i, i + 1]} for i in range(190000)]\n";

// ---- x = 1: the old execution path (Run under the watchdog) against the transactional one.

// What Sandbox::Execute did before executions were transactional.
// (The two below do not check the outcome: their callers do, outside the timed part.)
void PlainExecute(brig::Sandbox::Impl* impl, std::string_view code, brig::ExecutionResult* r) {
  *r = brig::ExecutionResult{};  // as Sandbox::Execute: nothing left from an earlier call
  impl->wasi->ClearOutput();
  brig_call_control_reset(&impl->control);
  auto deadline = Clock::now() + std::chrono::seconds(30);
  brig::Watchdog::Id alarm = brig::Watchdog::Instance().Arm(deadline, [impl] { impl->Interrupt(); });
  impl->Run(code, "<exec>", r);
  brig::Watchdog::Instance().Cancel(alarm);
  r->stdout_text = impl->wasi->stdout_data();
  r->stderr_text = impl->wasi->stderr_data();
  impl->wasi->ClearOutput();
}

// What Sandbox::Execute does now (minus the rollback, which a success never reaches).
void TransactionalExecute(brig::Sandbox::Impl* impl, std::string_view code, brig::ExecutionResult* r) {
  // A fresh result, as Sandbox::Execute's: the log's digest of a run covers its result, so one
  // left from an earlier call would make the run look different when a rollback replays it.
  *r = brig::ExecutionResult{};
  if (!impl->PrepareRun().ok()) std::exit(1);
  impl->RunRecorded(code, "<exec>", r);
  r->stdout_text = impl->wasi->stdout_data();
  r->stderr_text = impl->wasi->stderr_data();
  impl->wasi->ClearOutput();
}

std::unique_ptr<brig::Sandbox::Impl> MakeImpl() {
  auto made = brig::NewImpl(brig::Limits{});
  if (!made.ok() || !brig::StartGuest(made.value().get(), brig::Start::kFromImage).ok()) std::exit(1);
  return std::move(made.value());
}

void BenchX1() {
  std::printf("\n== x = 1 in a live session (us per execution; medians of 7 interleaved rounds of 3000)\n");
  auto plain = MakeImpl();
  auto tx = MakeImpl();
  auto big = MakeImpl();
  brig::ExecutionResult r;
  PlainExecute(plain.get(), "x = 0", &r);
  MustBeOk(r, "x = 0");
  TransactionalExecute(tx.get(), "x = 0", &r);
  MustBeOk(r, "x = 0");
  TransactionalExecute(big.get(), kFiftyMegabytes, &r);
  MustBeOk(r, kFiftyMegabytes);
  auto api = brig::Sandbox::Create();
  if (!api.ok() || !api.value()->Execute("x = 0").ok) std::exit(1);
  std::vector<double> p, t, b, a;
  for (int round = 0; round < 7; round++) {
    std::vector<double> one;
    for (int i = 0; i < 3000; i++) {  // the public API, as an embedder calls it
      auto start = Clock::now();
      brig::ExecutionResult rr = api.value()->Execute("x = 1");
      one.push_back(Us(start, Clock::now()));
      MustBeOk(rr, "x = 1");
    }
    a.push_back(Median(one));
    for (auto [impl, out, transactional] : {std::tuple{plain.get(), &p, false}, {tx.get(), &t, true}, {big.get(), &b, true}}) {
      std::vector<double> one;
      for (int i = 0; i < 3000; i++) {
        brig::ExecutionResult rr;
        auto a = Clock::now();
        if (transactional) TransactionalExecute(impl, "x = 1", &rr);
        else PlainExecute(impl, "x = 1", &rr);
        one.push_back(Us(a, Clock::now()));
        MustBeOk(rr, "x = 1");
      }
      out->push_back(Median(one));
    }
  }
  for (auto* impl : {plain.get(), tx.get(), big.get()}) {  // the timed assignments happened
    brig::ExecutionResult x;
    if (impl == plain.get()) PlainExecute(impl, "x", &x);
    else TransactionalExecute(impl, "x", &x);
    MustBeOk(x, "x");
    if (x.result != "1") {
      std::fprintf(stderr, "x is %s after the timed x = 1\n", x.result.value_or("<none>").c_str());
      std::exit(1);
    }
  }
  MustEqual(*api.value(), "x", "1");
  std::printf("  before (plain Run under the watchdog):        %6.1f us\n", Median(p));
  std::printf("  transactional (recorded, checkpoints):        %6.1f us\n", Median(t));
  std::printf("  transactional, session holding ~50 MB:        %6.1f us\n", Median(b));
  std::printf("  Sandbox::Execute (the public API, result returned): %6.1f us\n", Median(a));
  std::printf("  (last checkpoint cost: small session %.0f us, 50 MB session %.0f us; one is taken when the\n"
              "   executions since the last one took %llux that)\n",
              tx->tx.checkpoint_ns / 1e3, big->tx.checkpoint_ns / 1e3, 25ull);
}

// ---- Checkpoints and rollbacks.

void BenchRollback() {
  std::printf("\n== checkpoints and rollbacks (us, medians)\n");
  for (bool large : {false, true}) {
    auto impl = MakeImpl();
    brig::ExecutionResult r;
    TransactionalExecute(impl.get(), large ? kFiftyMegabytes : "d = {'a': 1, 'b': [1, 2, 3]}", &r);
    MustBeOk(r, "the session's data");
    TransactionalExecute(impl.get(), "x = 0", &r);
    MustBeOk(r, "x = 0");
    std::vector<double> cp;
    for (int i = 0; i < 9; i++) {
      TransactionalExecute(impl.get(), "x = 1", &r);
      MustBeOk(r, "x = 1");
      auto a = Clock::now();
      if (!impl->TakeCheckpoint().ok()) std::exit(1);
      cp.push_back(Us(a, Clock::now()));
    }
    size_t delta = brig_python_state_private_bytes(impl->tx.checkpoint->memory);
    std::printf("  %s: checkpoint %.0f us (keeps %zu KiB of differences)\n", large ? "session holding ~50 MB" : "small session",
                Median(cp), delta >> 10);
    int x = 1;
    for (int runs : {0, 10, 40}) {
      std::vector<double> rb;
      for (int i = 0; i < 7; i++) {
        if (!impl->TakeCheckpoint().ok()) std::exit(1);
        for (int k = 0; k < runs; k++) {
          TransactionalExecute(impl.get(), "x = x + 1", &r);
          MustBeOk(r, "x = x + 1");
        }
        x += runs;
        brig::ExecutionResult fail;
        TransactionalExecute(impl.get(), "import os\nos.abort()", &fail);
        if (fail.failure != brig::Failure::kTrap) {
          std::fprintf(stderr, "os.abort() did not trap: %s\n", fail.failure_message.c_str());
          std::exit(1);
        }
        auto a = Clock::now();
        impl->RollBack(&fail);
        rb.push_back(Us(a, Clock::now()));
        if (impl->dead != brig::Failure::kNone) {
          std::fprintf(stderr, "rollback failed: %s\n", fail.failure_message.c_str());
          std::exit(1);
        }
        // Rolled back to just before the failed execution.
        TransactionalExecute(impl.get(), "x", &r);
        MustBeOk(r, "x");
        if (r.result != std::to_string(x)) {
          std::fprintf(stderr, "after the rollback x is %s, expected %d\n", r.result.value_or("<none>").c_str(), x);
          std::exit(1);
        }
      }
      std::printf("    rollback after %2d executions since the checkpoint: %.0f us\n", runs, Median(rb));
    }
  }
  // Through the public API: a trap in a session that ran 30 executions.
  auto s = Make();
  Must(*s, "d = {'a': 1}");
  std::vector<double> whole;
  for (int i = 0; i < 7; i++) {
    for (int k = 0; k < 30; k++) Must(*s, "d['a'] += 1");
    auto a = Clock::now();
    brig::ExecutionResult r = s->Execute("import os\nos.abort()");
    whole.push_back(Us(a, Clock::now()));
    if (r.failure != brig::Failure::kTrap) std::exit(1);
  }
  MustEqual(*s, "d['a']", std::to_string(1 + 7 * 30));  // every rollback kept what came before
  std::printf("  Execute of a trapping call, rollback included (public API): %.0f us\n", Median(whole));
}

// ---- Forks.

void BenchFork() {
  std::printf("\n== fork (us, medians of 7)\n");
  for (bool large : {false, true}) {
    for (bool settled : {false, true}) {
      std::vector<double> first, second, child_exec, parent_exec;
      for (int i = 0; i < 7; i++) {
        auto s = Make();
        Must(*s, large ? kFiftyMegabytes : "d = {'a': 1, 'b': [1, 2, 3]}");
        if (settled) Must(*s, "x = 1");  // an execution since: its checkpoint froze the growth
        auto a = Clock::now();
        auto f1 = s->Fork();
        auto b = Clock::now();
        auto f2 = s->Fork();
        auto c = Clock::now();
        if (!f1.ok() || !f2.ok()) std::exit(1);
        first.push_back(Us(a, b));
        second.push_back(Us(b, c));
        auto d = Clock::now();
        Must(*f2.value(), "y = 1");
        child_exec.push_back(Us(d, Clock::now()));
        auto e = Clock::now();
        Must(*s, "y = 1");
        parent_exec.push_back(Us(e, Clock::now()));
        // Both forks hold the parent's data.
        for (auto* f : {f1.value().get(), f2.value().get()}) {
          MustEqual(*f, large ? "len(rows), rows[-1]['name']" : "d['b'][2]", large ? "(190000, 'name-189999')" : "3");
        }
      }
      std::printf("  %-24s %-27s first %6.0f  second %4.0f  next execution: fork's %5.0f, parent's %5.0f\n",
                  large ? "session holding ~50 MB," : "small session,",
                  settled ? "after one more execution:" : "right after building it:", Median(first), Median(second),
                  Median(child_exec), Median(parent_exec));
    }
  }
}

// ---- Idle sessions' memory.

std::map<std::string, uint64_t> SmapsRollup() {
  std::map<std::string, uint64_t> kb;
  std::ifstream in("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos || line.find("kB") == std::string::npos) continue;
    kb[line.substr(0, colon)] = std::strtoull(line.c_str() + colon + 1, nullptr, 10);
  }
  return kb;
}

void BenchIdle() {
  const int n = 1000;
  std::printf("\n== %d idle sessions, each holding a small dict (KiB per session, /proc/self/smaps_rollup deltas)\n", n);
  Make().reset();  // the image, outside the measurement
  auto before = SmapsRollup();
  std::vector<std::unique_ptr<brig::Sandbox>> sessions;
  for (int i = 0; i < n; i++) {
    auto s = Make();
    Must(*s, "d = {'id': " + std::to_string(i) + ", 'name': 'session', 'items': [1, 2, 3]}");
    sessions.push_back(std::move(s));
  }
  auto live = SmapsRollup();
  {
    // Of the private guest pages of one such session, how many still differ from the image
    // (the rest were written and came back, e.g. reference counts up and down again).
    auto impl = MakeImpl();
    brig::ExecutionResult r;
    TransactionalExecute(impl.get(), "d = {'id': 1, 'name': 'session', 'items': [1, 2, 3]}", &r);
    wasm_rt_memory_t* mem = brig_python_instance_memory(impl->instance);
    uint64_t private_pages = 0;
    brig_written_pages(mem->data, mem->size / BRIG_PAGE, [](void* c, uint64_t, uint64_t count) {
      *static_cast<uint64_t*>(c) += count;
      return 0;
    }, &private_pages);
    int64_t differ = brig_python_instance_diff(impl->base_image, impl->instance,
                                               [](void*, uint32_t, const uint8_t*, const uint8_t*) { return 0; }, nullptr);
    std::printf("  one live session: %llu private guest pages (%llu KiB), %lld of them differ from the image\n",
                (unsigned long long)private_pages, (unsigned long long)private_pages * 4, (long long)differ);
  }
  std::vector<double> trim;
  for (auto& s : sessions) {
    auto t0 = Clock::now();
    if (!s->Trim().ok()) std::exit(1);
    trim.push_back(Us(t0, Clock::now()));
  }
  auto trimmed = SmapsRollup();
  auto a = Clock::now();
  for (auto& s : sessions) {
    if (!s->Compact().ok()) std::exit(1);
  }
  double compact_us = Us(a, Clock::now()) / n;
  auto compacted = SmapsRollup();
  auto per = [&](const std::map<std::string, uint64_t>& after, const char* key) {
    return (static_cast<double>(after.at(key)) - static_cast<double>(before.at(key))) / n;
  };
  for (auto [name, snap] : {std::pair{"live", &live}, {"trimmed", &trimmed}, {"compacted", &compacted}}) {
    std::printf("  %-10s Pss %6.0f  Private_Dirty %6.0f  Anonymous %6.0f  Rss %6.0f\n", name, per(*snap, "Pss"),
                per(*snap, "Private_Dirty"), per(*snap, "Anonymous"), per(*snap, "Rss"));
  }
  std::vector<double> wake;
  for (int i = 0; i < 50; i++) {
    auto b = Clock::now();
    MustEqual(*sessions[i], "d['id']", std::to_string(i));
    wake.push_back(Us(b, Clock::now()));
  }
  std::printf("  Trim: %.0f us per session (median); Compact: %.0f us per session; first execution after it: %.0f us (median)\n",
              Median(trim), compact_us, Median(wake));
}

// ---- Fresh sandboxes per second: 1 vs 2 threads, 1 vs 2 processes.

uint64_t CreatePassDestroyFor(double seconds) {
  uint64_t count = 0;
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    auto s = brig::Sandbox::Create();
    if (!s.ok() || !s.value()->Execute("pass").ok) std::exit(1);
    count++;
  }
  return count;
}

// `x = 1` executions in a live sandbox of one's own, for `seconds`.
uint64_t WarmExecutionsFor(double seconds) {
  auto s = Make();
  Must(*s, "x = 0");
  uint64_t count = 0;
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    if (!s->Execute("x = 1").ok) std::exit(1);
    count++;
  }
  return count;
}

double WarmThreads(int n, double seconds) {
  std::atomic<uint64_t> total{0};
  std::vector<std::thread> threads;
  auto a = Clock::now();
  for (int i = 0; i < n; i++) threads.emplace_back([&] { total += WarmExecutionsFor(seconds); });
  for (auto& t : threads) t.join();
  return total / (Us(a, Clock::now()) / 1e6);
}

double Threads(int n, double seconds) {
  std::atomic<uint64_t> total{0};
  std::vector<std::thread> threads;
  auto a = Clock::now();
  for (int i = 0; i < n; i++) threads.emplace_back([&] { total += CreatePassDestroyFor(seconds); });
  for (auto& t : threads) t.join();
  return total / (Us(a, Clock::now()) / 1e6);
}

double Processes(const char* self, int n, double seconds) {
  std::vector<std::pair<pid_t, int>> kids;
  for (int i = 0; i < n; i++) {
    int fds[2];
    if (pipe(fds) != 0) std::exit(1);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      std::string secs = std::to_string(seconds);
      execl(self, self, "--worker", secs.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    kids.push_back({pid, fds[0]});
  }
  double rate = 0;
  for (auto [pid, fd] : kids) {
    char buf[64] = {0};
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    double one = got > 0 ? std::atof(buf) : 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !(one > 0)) {
      std::fprintf(stderr, "a worker process failed (status %d, printed '%s')\n", status, buf);
      std::exit(1);
    }
    rate += one;
  }
  return rate;
}

int Worker(double seconds) {
  Make().reset();  // the image (from the disk cache, or made), outside the measurement
  auto a = Clock::now();
  uint64_t n = CreatePassDestroyFor(seconds);
  std::printf("%f\n", n / (Us(a, Clock::now()) / 1e6));
  return 0;
}

void BenchScaling(const char* self) {
  const double seconds = 2.0;
  std::printf("\n== fresh sandbox + pass + destroy, per second (medians of 3 runs of %.0f s)\n", seconds);
  Make().reset();
  std::vector<double> t1, t2, p1, p2;
  for (int i = 0; i < 3; i++) {
    t1.push_back(Threads(1, seconds));
    t2.push_back(Threads(2, seconds));
    p1.push_back(Processes(self, 1, seconds));
    p2.push_back(Processes(self, 2, seconds));
  }
  std::printf("  threads:   1: %6.0f/s   2: %6.0f/s   (%.2fx)\n", Median(t1), Median(t2), Median(t2) / Median(t1));
  std::printf("  processes: 1: %6.0f/s   2: %6.0f/s   (%.2fx)\n", Median(p1), Median(p2), Median(p2) / Median(p1));
  std::vector<double> w1, w2;
  for (int i = 0; i < 3; i++) {
    w1.push_back(WarmThreads(1, seconds));
    w2.push_back(WarmThreads(2, seconds));
  }
  std::printf("  x = 1 in live sandboxes, threads: 1: %6.0f/s   2: %6.0f/s   (%.2fx)\n", Median(w1), Median(w2),
              Median(w2) / Median(w1));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--worker") == 0) return Worker(std::atof(argv[2]));
  std::vector<std::string> parts(argv + 1, argv + argc);
  if (parts.empty()) parts = {"x1", "rollback", "fork", "idle", "scaling"};
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Make().reset();  // the process image
  for (const std::string& part : parts) {
    if (part == "x1") BenchX1();
    else if (part == "rollback") BenchRollback();
    else if (part == "fork") BenchFork();
    else if (part == "idle") BenchIdle();
    else if (part == "scaling") BenchScaling(argv[0]);
    else {
      std::fprintf(stderr, "unknown part %s (x1 rollback fork idle scaling)\n", part.c_str());
      return 2;
    }
  }
  return 0;
}
