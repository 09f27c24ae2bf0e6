// Hard limits seen through the public API: the timeout stops pure-Python loops, C-level loops
// and sleeps, promptly; the memory cap gives MemoryError; the file count gives ENOSPC; bad
// limits are refused.
#include <gtest/gtest.h>

#include <chrono>

#include "brig/sandbox.h"

namespace {

using Clock = std::chrono::steady_clock;

brig::ExecutionResult RunWithTimeout(const std::string& code, double seconds, double* elapsed) {
  brig::Limits limits;
  limits.timeout_seconds = seconds;
  auto sandbox = brig::Sandbox::Create(limits);
  EXPECT_TRUE(sandbox.ok());
  auto start = Clock::now();
  brig::ExecutionResult r = sandbox.value()->Execute(code);
  *elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

// Generous upper bounds: the point is "stopped", not a timing assertion.
constexpr double kStopBound = 10.0;

TEST(Timeout, StopsAPurePythonLoop) {
  double elapsed = 0;
  brig::ExecutionResult r = RunWithTimeout("print('started')\nwhile True:\n    pass\n", 0.5, &elapsed);
  EXPECT_EQ(r.failure, brig::Failure::kTimeout) << r.failure_message;
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.stdout_text, "started\n");  // output from before the timeout is kept
  EXPECT_GE(elapsed, 0.5);
  EXPECT_LT(elapsed, kStopBound);
}

TEST(Timeout, StopsACLevelLoop) {
  double elapsed = 0;
  brig::ExecutionResult r = RunWithTimeout("sum(range(10**12))", 0.5, &elapsed);
  EXPECT_EQ(r.failure, brig::Failure::kTimeout) << r.failure_message;
  EXPECT_LT(elapsed, kStopBound);
}

TEST(Timeout, StopsABlockingSleep) {
  double elapsed = 0;
  brig::ExecutionResult r = RunWithTimeout("import time\ntime.sleep(100)", 0.5, &elapsed);
  EXPECT_EQ(r.failure, brig::Failure::kTimeout) << r.failure_message;
  EXPECT_LT(elapsed, kStopBound);
}

TEST(Timeout, ShortWorkFinishesNormally) {
  double elapsed = 0;
  brig::ExecutionResult r = RunWithTimeout("import time\ntime.sleep(0.05)\n'done'", 5, &elapsed);
  EXPECT_TRUE(r.ok) << r.stderr_text;
  EXPECT_EQ(r.failure, brig::Failure::kNone);
  EXPECT_EQ(r.result.value_or(""), "'done'");
}

TEST(Timeout, ASandboxThatTimedOutRunsAgainInItsOldState) {
  brig::Limits limits;
  limits.timeout_seconds = 0.3;
  auto sandbox = brig::Sandbox::Create(limits);
  ASSERT_TRUE(sandbox.ok());
  EXPECT_EQ(sandbox.value()->Execute("while True: pass").failure, brig::Failure::kTimeout);
  brig::ExecutionResult again = sandbox.value()->Execute("1 + 1");
  EXPECT_EQ(again.failure, brig::Failure::kNone) << again.failure_message;
  EXPECT_TRUE(again.ok);
  EXPECT_EQ(again.result.value_or(""), "2");
}

TEST(Timeout, ManyShortExecutionsDoNotTripIt) {
  brig::Limits limits;
  limits.timeout_seconds = 2;
  auto sandbox = brig::Sandbox::Create(limits);
  ASSERT_TRUE(sandbox.ok());
  for (int i = 0; i < 200; ++i) {
    brig::ExecutionResult r = sandbox.value()->Execute("x = " + std::to_string(i));
    ASSERT_TRUE(r.ok) << i << " " << r.failure_message;
  }
}

TEST(Limits, InvalidLimitsAreRefused) {
  brig::Limits limits;
  limits.memory_bytes = 1 << 20;
  EXPECT_TRUE(brig::Sandbox::Create(limits).status().IsInvalidArgument());
  limits = {};
  limits.timeout_seconds = 0;
  EXPECT_TRUE(brig::Sandbox::Create(limits).status().IsInvalidArgument());
  limits.timeout_seconds = 1e300;
  EXPECT_TRUE(brig::Sandbox::Create(limits).status().IsInvalidArgument());
  limits = {};
  limits.output_bytes = 0;
  EXPECT_TRUE(brig::Sandbox::Create(limits).status().IsInvalidArgument());
}

TEST(Limits, MemoryCapGivesMemoryErrorAndTheSandboxGoesOn) {
  brig::Limits limits;
  limits.memory_bytes = 64ull << 20;
  auto sandbox = brig::Sandbox::Create(limits);
  ASSERT_TRUE(sandbox.ok());
  brig::ExecutionResult r = sandbox.value()->Execute("blocks = []\nwhile True:\n    blocks.append(bytearray(1 << 20))\n");
  ASSERT_TRUE(r.error.has_value()) << r.failure_message;
  EXPECT_EQ(r.error->type, "MemoryError");
  brig::ExecutionResult after = sandbox.value()->Execute("del blocks\nlen(bytearray(10 << 20))");
  EXPECT_TRUE(after.ok) << after.stderr_text;
  EXPECT_EQ(after.result.value_or(""), std::to_string(10 << 20));
}

TEST(Limits, FileCountFailsTheCreationWithENOSPCAndDirectoriesDoNotCount) {
  brig::Limits limits;
  limits.max_files = 3;
  auto sandbox = brig::Sandbox::Create(limits);
  ASSERT_TRUE(sandbox.ok());
  brig::ExecutionResult r = sandbox.value()->Execute(R"(import errno, os
for i in range(20):
    os.makedirs(f'/tmp/d{i}/e')
made, err = [], None
for i in range(5):
    try:
        open(f'/tmp/d{i}/e/f', 'w').close()
        made.append(i)
    except OSError as e:
        err = (e.errno == errno.ENOSPC, str(e))
        break
os.remove('/tmp/d0/e/f')
open('/tmp/again', 'w').close()
(made, err))");
  EXPECT_TRUE(r.ok) << r.stderr_text;
  EXPECT_EQ(r.result.value_or(""),
            "([0, 1, 2], (True, \"[Errno 51] No space left on device: '/tmp/d3/e/f'\"))");
}

}  // namespace
