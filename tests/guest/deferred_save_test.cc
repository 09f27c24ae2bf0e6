// brig::Sessions executions with a deferred save (ExecuteOptions::deferred_save): they answer
// without the store, are saved later (idle, at ~Sessions, before any other use of the stored
// session), stay serialised with durable ones, and lose only what the documentation says
// (another writer's newer save wins).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "brig/sessions.h"
#include "store/store.h"

namespace brig {
namespace {

class DeferredSaveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/brig-deferred-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    options_.store_url = "sqlite:" + dir_ + "/brig.db";
    // Saved only when a test makes it happen (not by the clock), unless a test sets these.
    options_.save_delay = std::chrono::hours(1);
    options_.save_max_lag = std::chrono::hours(1);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::unique_ptr<Sessions> Open() {
    auto s = Sessions::Open(options_);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(s.value()) : nullptr;
  }
  static SessionResult Run(Sessions& s, std::string_view id, std::string_view code, bool deferred = false) {
    ExecuteOptions o;
    o.deferred_save = deferred;
    auto r = s.Execute(id, code, o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return {};
    EXPECT_TRUE(r.value().execution.ok) << code << ": " << r.value().execution.stderr_text;
    return r.value();
  }
  static std::string Eval(Sessions& s, std::string_view id, std::string_view code, bool deferred = false) {
    return Run(s, id, code, deferred).execution.result.value_or("<none>");
  }
  int64_t StoredVersion(const std::string& id) {
    auto store = store::OpenStore(options_.store_url);
    EXPECT_TRUE(store.ok());
    auto v = store.value()->GetStateVersion(id);
    return v.ok() ? v.value() : -1;
  }

  std::string dir_;
  Sessions::Options options_;
};

TEST_F(DeferredSaveTest, AnswersWithoutSavingThenSavesTheBurstOnceIdle) {
  options_.save_delay = std::chrono::milliseconds(50);
  auto s = Open();
  EXPECT_EQ(Run(*s, "t", "x = 0").version, 1);  // not live yet: the durable way
  for (int i = 0; i < 3; ++i) {
    SessionResult r = Run(*s, "t", "x += 1", /*deferred=*/true);
    EXPECT_FALSE(r.saved);
    EXPECT_EQ(r.restored_from, "live");
    EXPECT_EQ(r.version, 1) << "the version it builds on";
  }
  EXPECT_EQ(StoredVersion("t"), 1) << "nothing written before the answer";
  // Saved by the background thread once idle (the wait is bounded by the test's timeout).
  while (StoredVersion("t") != 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto other = Open();  // another process's view: the store only
  EXPECT_EQ(Eval(*other, "t", "x"), "3");
  EXPECT_EQ(s->DeferredSavesLost(), 0);
}

TEST_F(DeferredSaveTest, WrittenAtCloseAndBeforeReadsForksAndExports) {
  {
    auto s = Open();
    Run(*s, "t", "x = 0");
    Run(*s, "t", "x = 5", true);
  }  // ~Sessions writes it
  EXPECT_EQ(StoredVersion("t"), 2);
  auto s = Open();
  EXPECT_EQ(Eval(*s, "t", "x"), "5");

  // A file read sees what a deferred execution wrote.
  Run(*s, "t", "open('/home/user/a.txt', 'w').write('hi')", true);
  auto read = s->files().Read("t", "/home/user/a.txt");
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(read.value().content, "hi");

  // A fork copies the deferred state.
  Run(*s, "t", "x = 6", true);
  ASSERT_TRUE(s->manager().Fork("t", "f").ok());
  EXPECT_EQ(Eval(*s, "f", "x"), "6");

  // An export carries it.
  Run(*s, "t", "x = 7", true);
  auto bytes = s->ExportSnapshot("t");
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  ASSERT_TRUE(s->ImportSnapshot("i", bytes.value()).ok());
  EXPECT_EQ(Eval(*s, "i", "x"), "7");
}

TEST_F(DeferredSaveTest, FileWritesSaveItFirstAndResetDiscardsIt) {
  auto s = Open();
  Run(*s, "t", "x = 0");
  Run(*s, "t", "x = 8", true);
  // A file written through the API: the deferred state is saved first, then the live
  // interpreter (now behind the store) is dropped and the next execution loads both.
  ASSERT_TRUE(s->files().Write("t", "/home/user/b.txt", "from the API", "").ok());
  EXPECT_EQ(Eval(*s, "t", "(x, open('/home/user/b.txt').read())", true), "(8, 'from the API')");

  Run(*s, "t", "y = 1", true);
  ASSERT_TRUE(s->Reset("t").ok());
  EXPECT_EQ(Eval(*s, "t", "'y' in globals() or 'x' in globals()", true), "False");
  ASSERT_TRUE(s->manager().Reset("t").ok());  // through the manager too
  EXPECT_EQ(Eval(*s, "t", "z = 1", true), "<none>");
  ASSERT_TRUE(s->manager().Reset("t").ok());
  EXPECT_EQ(Eval(*s, "t", "'z' in globals()"), "False");
  EXPECT_EQ(s->DeferredSavesLost(), 0);
}

// Another process saves the session while this one holds deferred executions: its save wins,
// the deferred ones are counted as lost, and this process goes on from the store.
TEST_F(DeferredSaveTest, AnotherWritersSaveWinsAndTheLossIsCounted) {
  auto a = Open();
  auto b = Open();
  Run(*a, "t", "x = 1");
  Run(*a, "t", "x = 2", true);
  Run(*b, "t", "x = 100");
  EXPECT_EQ(Eval(*a, "t", "x"), "100");
  EXPECT_EQ(a->DeferredSavesLost(), 1);
}

// Deferred and durable executions of one session from many threads: serialised in this
// process (no update lost), and all of them in the store at the end.
TEST_F(DeferredSaveTest, ManyThreadsMixingDeferredAndDurableLoseNoUpdate) {
  options_.save_delay = std::chrono::milliseconds(1);
  auto s = Open();
  Run(*s, "n", "n = 0");
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        ExecuteOptions o;
        o.deferred_save = (i + t) % 3 != 0;
        auto r = s->Execute("n", "n += 1", o);
        EXPECT_TRUE(r.ok() && r.value().execution.ok);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Eval(*s, "n", "n"), std::to_string(kThreads * kEach));
  s.reset();
  auto fresh = Open();
  EXPECT_EQ(Eval(*fresh, "n", "n"), std::to_string(kThreads * kEach));
}

// The fast path honours expiry: a session that expired while live runs the durable way,
// which refuses it.
TEST_F(DeferredSaveTest, ASessionThatExpiredWhileLiveIsRefused) {
  auto s = Open();
  Run(*s, "t", "x = 1");
  {
    auto store = store::OpenStore(options_.store_url);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store.value()->SetSessionExpiry("t", store::NowMicros() + 300'000).ok());
  }
  Run(*s, "t", "x = 2");  // live again, with the expiry read now
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ExecuteOptions o;
  o.deferred_save = true;
  auto r = s->Execute("t", "x", o);
  EXPECT_TRUE(r.status().IsFailedPrecondition()) << r.status().ToString();
}

// TryExecuteLive: what a server runs on its I/O thread. Only a session live here and idle,
// only quick code; anything else runs nothing and changes nothing (the caller uses Execute).
TEST_F(DeferredSaveTest, TryExecuteLiveRunsQuickCodeOfALiveSessionOnly) {
  options_.limits.timeout_seconds = 30;
  auto s = Open();
  ExecuteOptions deferred;
  deferred.deferred_save = true;
  const auto budget = std::chrono::milliseconds(200);
  EXPECT_FALSE(s->TryExecuteLive("t", "x = 1", deferred, budget).has_value()) << "not live yet";
  EXPECT_EQ(Run(*s, "t", "x = 1").version, 1);
  ExecuteOptions durable;
  EXPECT_FALSE(s->TryExecuteLive("t", "x = 2", durable, budget).has_value()) << "durable executions are not for it";
  auto quick = s->TryExecuteLive("t", "x += 1\nx", deferred, budget);
  ASSERT_TRUE(quick.has_value());
  ASSERT_TRUE(quick->ok()) << quick->status().ToString();
  EXPECT_EQ(quick->value().execution.result.value_or(""), "2");
  EXPECT_FALSE(quick->value().saved);
  EXPECT_EQ(quick->value().restored_from, "live");
  EXPECT_EQ(quick->value().version, 1);
  // Past the budget (not the timeout): rolled back, as if it never ran.
  auto slow = s->TryExecuteLive("t", "y = 1\nx = 100\nwhile True: pass", deferred, budget);
  EXPECT_FALSE(slow.has_value());
  EXPECT_EQ(Eval(*s, "t", "x", /*deferred=*/true), "2");
  EXPECT_EQ(Eval(*s, "t", "'y' in dir()", /*deferred=*/true), "False");
  // Its own timeout within the budget is its own answer: a timeout, not a hand-off.
  ExecuteOptions short_timeout = deferred;
  short_timeout.timeout_seconds = 0.05;
  auto timed_out = s->TryExecuteLive("t", "while True: pass", short_timeout, budget);
  ASSERT_TRUE(timed_out.has_value());
  ASSERT_TRUE(timed_out->ok());
  EXPECT_EQ(timed_out->value().execution.failure, Failure::kTimeout);
  // What it ran is saved with the deferred ones, and another process sees it.
  s.reset();
  auto other = Open();
  EXPECT_EQ(Eval(*other, "t", "x"), "2");
}

}  // namespace
}  // namespace brig
