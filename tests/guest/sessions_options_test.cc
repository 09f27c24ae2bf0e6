// brig::Sessions::Execute with ExecuteOptions: per-execution limits for live and restored
// sessions, streaming, the live-session count, and Options::max_running.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "brig/sessions.h"

namespace brig {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

class SessionsOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/brig-sessions-options-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    options_.store_url = "sqlite:" + dir_ + "/brig.db";
    options_.limits.timeout_seconds = 10;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::unique_ptr<Sessions> Open() {
    auto s = Sessions::Open(options_);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return std::move(s.value());
  }

  static SessionResult Run(Sessions& s, std::string_view id, std::string_view code, const ExecuteOptions& o = {}) {
    auto r = s.Execute(id, code, o);
    EXPECT_TRUE(r.ok()) << code << ": " << r.status().message();
    if (!r.ok()) return {};
    return std::move(r.value());
  }

  static ExecuteOptions Memory(uint64_t bytes) {
    ExecuteOptions o;
    o.memory_bytes = bytes;
    return o;
  }

  std::string dir_;
  Sessions::Options options_;
};

TEST_F(SessionsOptionsTest, LimitsOutOfRangeAreRefusedBeforeAnythingRuns) {
  auto s = Open();
  ExecuteOptions o;
  o.timeout_seconds = -1;
  EXPECT_TRUE(s->Execute("t", "x = 1", o).status().IsInvalidArgument());
  EXPECT_TRUE(s->Execute("t", "x = 1", Memory(1 * kMiB)).status().IsInvalidArgument());
  EXPECT_EQ(Run(*s, "t", "x = 1").version, 1);  // the first save: nothing before it
}

TEST_F(SessionsOptionsTest, TimeoutOfOneExecution) {
  auto s = Open();
  Run(*s, "t", "x = 1");
  ExecuteOptions quick;
  quick.timeout_seconds = 0.3;
  SessionResult r = Run(*s, "t", "x = 2\nwhile True: pass", quick);
  EXPECT_EQ(r.execution.failure, Failure::kTimeout);
  EXPECT_FALSE(r.saved);
  EXPECT_EQ(Run(*s, "t", "import time; time.sleep(0.5); x").execution.result, "1");
}

// A session grown under a larger memory limit than the default: later executions need that
// limit, live or restored in another process; a lower one is refused with a clear message and
// the session is unchanged (never loaded from its portable snapshot instead).
TEST_F(SessionsOptionsTest, MemoryOfOneExecutionLiveAndRestored) {
  options_.limits.memory_bytes = 128 * kMiB;
  auto s = Open();
  SessionResult grown = Run(*s, "t", "b = bytearray(150 << 20); b[-1] = 5", Memory(512 * kMiB));
  ASSERT_TRUE(grown.execution.ok) << grown.execution.stderr_text;
  EXPECT_EQ(grown.version, 1);
  auto live = s->Execute("t", "b[-1]");
  ASSERT_TRUE(live.status().IsFailedPrecondition()) << live.status().ToString();
  EXPECT_NE(live.status().message().find("higher memory limit"), std::string::npos) << live.status().message();
  EXPECT_EQ(Run(*s, "t", "b[-1]", Memory(512 * kMiB)).execution.result, "5");

  auto other = Open();  // another process: restores from the store
  auto restored = other->Execute("t", "b[-1]");
  ASSERT_TRUE(restored.status().IsFailedPrecondition()) << restored.status().ToString();
  EXPECT_NE(restored.status().message().find("higher memory limit"), std::string::npos);
  SessionResult r = Run(*other, "t", "b[-1] += 1\nb[-1]", Memory(512 * kMiB));
  EXPECT_EQ(r.restored_from, "pages");
  EXPECT_EQ(r.execution.result, "6");
  EXPECT_EQ(r.version, 3);  // 2 was the live execution above
  // A smaller limit than the default raises MemoryError in a session that fits it.
  SessionResult small = Run(*s, "u", "bytearray(100 << 20)", Memory(32 * kMiB));
  ASSERT_TRUE(small.execution.error.has_value());
  EXPECT_EQ(small.execution.error->type, "MemoryError");
}

TEST_F(SessionsOptionsTest, StreamingSeesOnlyThisExecutionsOutput) {
  auto s = Open();
  Run(*s, "t", "print('earlier')\nx = 1");
  std::string streamed;
  ExecuteOptions o;
  o.timeout_seconds = 0.3;
  o.on_output = [&streamed](OutputStream stream, std::string_view bytes) {
    streamed += (stream == OutputStream::kStdout ? "out:" : "err:") + std::string(bytes);
  };
  // Fails: the sandbox rolls back by replaying the earlier execution, silently.
  SessionResult failed = Run(*s, "t", "print('mine', flush=True)\nwhile True: pass", o);
  EXPECT_EQ(failed.execution.failure, Failure::kTimeout);
  EXPECT_EQ(streamed, "out:mineout:\n");  // print writes the text, then the newline
  streamed.clear();
  SessionResult ok = Run(*s, "t", "import sys\nprint(x)\nsys.stderr.write('e')", o);
  EXPECT_EQ(ok.restored_from, "live");
  EXPECT_EQ(streamed, "out:1out:\nerr:e");
  EXPECT_EQ(ok.execution.stdout_text, "1\n");
  // Restored in another process (portable snapshot and page restore): silent too.
  auto other = Open();
  streamed.clear();
  SessionResult again = Run(*other, "t", "x", o);
  EXPECT_EQ(again.restored_from, "pages");
  EXPECT_EQ(streamed, "");
}

TEST_F(SessionsOptionsTest, LiveSessionsCountsWhatIsKept) {
  options_.max_live = 2;
  auto s = Open();
  EXPECT_EQ(s->LiveSessions(), 0u);
  Run(*s, "a", "x = 1");
  EXPECT_EQ(s->LiveSessions(), 1u);
  Run(*s, "b", "x = 1");
  Run(*s, "c", "x = 1");
  EXPECT_EQ(s->LiveSessions(), 2u);
  ASSERT_TRUE(s->Reset("c").ok());
  EXPECT_EQ(s->LiveSessions(), 1u);
}

TEST_F(SessionsOptionsTest, MaxRunningMustNotBeNegative) {
  options_.max_running = -1;
  EXPECT_TRUE(Sessions::Open(options_).status().IsInvalidArgument());
}

// With one slot, a second execution (another session) waits for the first to end: `b`
// answers after `a`, whose spin ends only at its timeout. Without the gate `b` takes
// milliseconds while `a` spins for its whole timeout. `a` is known to hold the slot once
// its first output arrives.
TEST_F(SessionsOptionsTest, MaxRunningOneRunsOneExecutionAtATime) {
  options_.max_running = 1;
  auto s = Open();
  std::promise<void> started;
  std::atomic<bool> once{false};
  ExecuteOptions spin;
  spin.timeout_seconds = 2;
  spin.on_output = [&](OutputStream, std::string_view) {
    if (!once.exchange(true)) started.set_value();
  };
  std::atomic<bool> a_done{false};
  std::thread a([&] {
    SessionResult r = Run(*s, "a", "print('spinning', flush=True)\nwhile True: pass", spin);
    EXPECT_EQ(r.execution.failure, Failure::kTimeout);
    a_done = true;
  });
  started.get_future().wait();
  SessionResult b = Run(*s, "b", "x = 1");
  EXPECT_TRUE(a_done.load()) << "b ran while a held the only slot";
  EXPECT_EQ(b.version, 1);
  a.join();
}

// Slots are given back on every path (durable saves, deferred ones, failures, sessions made
// by the execution): many threads over few slots and shared sessions all finish.
TEST_F(SessionsOptionsTest, MaxRunningEveryPathGivesItsSlotBack) {
  options_.max_running = 2;
  auto s = Open();
  std::vector<std::thread> threads;
  std::atomic<int> answered{0};
  for (int t = 0; t < 6; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; i++) {
        ExecuteOptions o;
        o.deferred_save = (t + i) % 2 == 0;
        const std::string code = i == 3 ? "raise ValueError('no')" : "x = globals().get('x', 0) + 1";
        auto r = s->Execute("s" + std::to_string(t % 3), code, o);
        if (r.ok()) answered++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(answered.load(), 30);
  EXPECT_EQ(Run(*s, "s0", "x = 1").execution.failure, Failure::kNone);
}

}  // namespace
}  // namespace brig
