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
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      auto sandbox = brig::Sandbox::Create();
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

TEST(Concurrency, TrapOnOneThreadWhileAnotherRuns) {
  std::atomic<bool> stop{false};
  std::atomic<int> clean_runs{0};
  std::string clean_failure;
  std::thread runner([&] {
    auto sandbox = brig::Sandbox::Create();
    ASSERT_TRUE(sandbox.ok());
    while (!stop.load()) {
      brig::ExecutionResult r = sandbox.value()->Execute("sum(i * i for i in range(2000))");
      if (!r.ok || r.result.value_or("") != "2664667000") {
        clean_failure = r.stderr_text + r.failure_message;
        return;
      }
      clean_runs.fetch_add(1);
    }
  });
  for (int i = 0; i < 3; ++i) {
    auto sandbox = brig::Sandbox::Create();
    ASSERT_TRUE(sandbox.ok());
    brig::ExecutionResult r = sandbox.value()->Execute(
        "import sys\nsys.setrecursionlimit(10**7)\nclass A:\n    def __getattr__(self, n):\n"
        "        return getattr(self, n)\nA().x\n");
    EXPECT_EQ(r.failure, brig::Failure::kTrap) << r.failure_message;
  }
  stop = true;
  runner.join();
  EXPECT_EQ(clean_failure, "");
  EXPECT_GT(clean_runs.load(), 0);
}

}  // namespace
