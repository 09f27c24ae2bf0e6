// Sandboxes on different threads of one process execute at the same time, each correct, and a
// trap on one thread does not disturb the other (trap state is per thread).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "brig/sandbox.h"

namespace {

TEST(Concurrency, TwoSandboxesOnTwoThreadsBothCorrect) {
  constexpr int kThreads = 2;
  constexpr int kRounds = 5;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures, &ready] {
      auto sandbox = brig::Sandbox::Create();
      // Both threads execute only once both sandboxes exist, so their rounds overlap.
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      if (!sandbox.ok()) {
        failures[t] = sandbox.status().message();
        return;
      }
      for (int i = 0; i < kRounds; ++i) {
        // Distinct work per thread: a mix-up between instances would show in the numbers.
        std::string code = "acc = globals().get('acc', 0) + sum(range(" + std::to_string((t + 1) * 100000) +
                           "))\nimport json\njson.dumps({'t': " + std::to_string(t) + ", 'acc': acc})";
        brig::ExecutionResult r = sandbox.value()->Execute(code);
        long long per = 0;
        for (long long k = 0; k < (t + 1) * 100000LL; ++k) per += k;
        std::string want = "'{\"t\": " + std::to_string(t) + ", \"acc\": " + std::to_string(per * (i + 1)) + "}'";
        if (!r.ok || r.result.value_or("") != want) {
          failures[t] = "round " + std::to_string(i) + ": got " + r.result.value_or("<none>") + " want " + want +
                        " stderr " + r.stderr_text;
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
}

// Clean executions on one thread, traps (C stack exhaustion) on another, made to overlap:
// before each trap the trapping thread waits for a clean execution that finished after the
// last trap, so clean executions demonstrably run between the first and the last trap (and,
// a trap taking far longer than a clean run, usually during them too).
TEST(Concurrency, TrapOnOneThreadWhileAnotherRuns) {
  constexpr int kTraps = 3;
  std::atomic<bool> stop{false}, runner_done{false};
  std::atomic<int> clean_runs{0};
  std::string clean_failure;
  std::thread runner([&] {
    auto sandbox = brig::Sandbox::Create();
    if (!sandbox.ok()) {
      clean_failure = sandbox.status().message();
    } else {
      while (!stop.load()) {
        brig::ExecutionResult r = sandbox.value()->Execute("sum(i * i for i in range(2000))");
        if (!r.ok || r.result.value_or("") != "2664667000") {
          clean_failure = r.stderr_text + r.failure_message;
          break;
        }
        clean_runs.fetch_add(1);
      }
    }
    runner_done = true;
  });
  // Waits until a clean execution finishes after `seen` did; false if the runner stopped.
  auto next_clean_run = [&](int seen) {
    while (clean_runs.load() == seen) {
      if (runner_done.load()) return false;
      std::this_thread::yield();
    }
    return true;
  };
  int traps = 0, after_first = 0, before_last = 0;
  for (int i = 0; i < kTraps; ++i) {
    if (!next_clean_run(i == 0 ? 0 : clean_runs.load())) break;
    if (i == kTraps - 1) before_last = clean_runs.load();
    auto sandbox = brig::Sandbox::Create();
    ASSERT_TRUE(sandbox.ok());
    brig::ExecutionResult r = sandbox.value()->Execute(
        "import sys\nsys.setrecursionlimit(10**7)\nclass A:\n    def __getattr__(self, n):\n"
        "        return getattr(self, n)\nA().x\n");
    EXPECT_EQ(r.failure, brig::Failure::kTrap) << r.failure_message;
    traps += r.failure == brig::Failure::kTrap;
    if (i == 0) after_first = clean_runs.load();
  }
  stop = true;
  runner.join();
  EXPECT_EQ(clean_failure, "");
  EXPECT_EQ(traps, kTraps);
  // A clean execution finished between each two traps.
  EXPECT_GE(before_last - after_first, kTraps - 1);
}

}  // namespace
