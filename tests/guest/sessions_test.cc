// brig::Sessions in one process: live reuse versus another writer's newer version, reset,
// expiry, quotas and an unreachable store. (Across processes: tests/e2e/test_session_exec.py.)
#include "brig/sessions.h"

#include <gtest/gtest.h>

#include <chrono>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>

#include "store/store.h"

namespace brig {
namespace {

class SessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/brig-sessions-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    options_.store_url = "sqlite:" + dir_ + "/brig.db";
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::unique_ptr<Sessions> Open(Sessions::Options o) {
    auto s = Sessions::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return std::move(s.value());
  }
  std::unique_ptr<Sessions> Open() { return Open(options_); }

  static SessionResult Run(Sessions& s, std::string_view id, std::string_view code) {
    auto r = s.Execute(id, code);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return {};
    EXPECT_TRUE(r.value().execution.ok) << code << ": " << r.value().execution.stderr_text;
    return r.value();
  }

  // The version of the portable snapshot the store holds as `id`'s fallback (0: none), or
  // -1 if the state cannot be read.
  // REQUIRES: OpenReader() succeeded.
  int64_t FallbackVersion(const std::string& id) {
    auto st = reader_->GetState(id);
    return st.ok() && st.value() ? st.value()->fallback_version : -1;
  }
  // Waits (at most a minute) for the stored fallback of `id` to be `version`.
  bool AwaitFallback(const std::string& id, int64_t version) {
    for (int i = 0; i < 12'000 && FallbackVersion(id) != version; i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return FallbackVersion(id) == version;
  }
  bool OpenReader() {
    auto store = store::OpenStore(options_.store_url);
    if (store.ok()) reader_ = std::move(store.value());
    return store.ok();
  }

  std::string dir_;
  Sessions::Options options_;
  std::unique_ptr<store::Store> reader_;  // FallbackVersion's
};

TEST_F(SessionsTest, LiveUntilAnotherWriterSavesANewerVersion) {
  auto a = Open();
  auto b = Open();
  EXPECT_EQ(Run(*a, "t", "x = 1").restored_from, "new");
  EXPECT_EQ(Run(*a, "t", "x += 1").restored_from, "live");
  SessionResult other = Run(*b, "t", "x = 100");  // b restores version 2, saves 3
  EXPECT_EQ(other.restored_from, "pages");
  EXPECT_EQ(other.version, 3);
  EXPECT_EQ(b->StaleLiveRuns(), 0);
  SessionResult back = Run(*a, "t", "x");
  EXPECT_EQ(back.restored_from, "pages");  // a's live copy is stale: not used
  EXPECT_EQ(back.execution.result, "100");
  EXPECT_EQ(a->StaleLiveRuns(), 1);  // found at the save, and run again
  EXPECT_EQ(Run(*a, "t", "x").restored_from, "live");
}

// A session that alternates between two processes (nodes without affinity) is run twice
// once per process, not every time: after a stale copy, executions read the store first
// until one finds the live copy current; then they run unread again.
TEST_F(SessionsTest, ASessionAlternatingBetweenProcessesIsNotRunTwiceEachTime) {
  auto a = Open();
  auto b = Open();
  Run(*a, "t", "n = 0");
  Run(*b, "t", "n += 1");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Run(*a, "t", "n += 1").restored_from, "pages");
    EXPECT_EQ(Run(*b, "t", "n += 1").restored_from, "pages");
  }
  EXPECT_EQ(Run(*a, "t", "n").execution.result, "11");
  EXPECT_LE(a->StaleLiveRuns(), 1);
  EXPECT_LE(b->StaleLiveRuns(), 1);
  // Current again (a alone now): read first once, then unread with nothing run twice.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Run(*a, "t", "n += 1").restored_from, "live");
  const int64_t before = a->StaleLiveRuns();
  Run(*b, "t", "n += 100");
  EXPECT_EQ(Run(*a, "t", "n").execution.result, "114");
  EXPECT_EQ(a->StaleLiveRuns(), before + 1);
}

// A live copy runs without a read of the store first; its save finds out when the store
// holds another session of that name now (deleted and made again, saved up to the same
// version), and the execution runs again on what the store holds.
TEST_F(SessionsTest, ALiveCopyOfASessionMadeAgainIsNotUsed) {
  auto a = Open();
  Run(*a, "t", "x = 1");
  EXPECT_EQ(Run(*a, "t", "x = 2").version, 2);
  ASSERT_TRUE(OpenReader());
  ASSERT_TRUE(reader_->DeleteSession("t").ok());
  auto b = Open();
  EXPECT_EQ(Run(*b, "t", "y = 5").restored_from, "new");
  EXPECT_EQ(Run(*b, "t", "y += 1").version, 2);
  auto r = a->Execute("t", "x");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r.value().execution.error.has_value());  // the session made again has no x
  EXPECT_EQ(r.value().execution.error->type, "NameError");
  EXPECT_EQ(r.value().restored_from, "pages");
  SessionResult y = Run(*a, "t", "y");
  EXPECT_EQ(y.execution.result, "6");
  EXPECT_EQ(y.restored_from, "live");
  EXPECT_EQ(y.version, 4);
}

// An execution that fails on a stale live copy (here: a timeout it would not have on the
// stored state) is not the answer: it runs again on what the store holds.
TEST_F(SessionsTest, AFailureOnAStaleLiveCopyIsRunAgainOnTheStoredState) {
  options_.limits.timeout_seconds = 0.5;
  auto a = Open();
  Run(*a, "t", "x = 1");
  auto b = Open();
  Run(*b, "t", "x = 2");
  auto r = a->Execute("t", "while x < 2: pass\nx");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r.value().execution.failure, Failure::kNone) << r.value().execution.failure_message;
  EXPECT_EQ(r.value().execution.result, "2");
  EXPECT_EQ(r.value().restored_from, "pages");
  EXPECT_EQ(r.value().version, 3);
}

// A session that expired in the store (its expiry moved by another process) is refused by a
// process that holds it live with a later expiry.
TEST_F(SessionsTest, ASessionExpiredElsewhereIsRefusedByItsLiveCopy) {
  auto a = Open();
  Run(*a, "t", "x = 1");
  ASSERT_TRUE(OpenReader());
  ASSERT_TRUE(reader_->SetSessionExpiry("t", store::NowMicros() - 1000).ok());
  auto r = a->Execute("t", "x = 2");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsFailedPrecondition()) << r.status().message();
  EXPECT_NE(r.status().message().find("expired"), std::string::npos) << r.status().message();
  auto st = reader_->GetState("t");
  ASSERT_TRUE(st.ok() && st.value());
  EXPECT_EQ(st.value()->version, 1);  // nothing of the refused execution was saved
}

// Extending a session from another process (the API's extend, `brig sessions extend`) leaves
// it the same session: its live copy here runs on without a read, and once, not twice.
TEST_F(SessionsTest, ASessionExtendedElsewhereKeepsItsLiveCopy) {
  auto a = Open();
  Run(*a, "t", "x = 1");
  ASSERT_TRUE(OpenReader());
  auto info = reader_->GetSession("t");
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE(reader_->SetSessionExpiry("t", info.value().expires_at + 86'400'000'000).ok());
  SessionResult r = Run(*a, "t", "x += 1\nx");
  EXPECT_EQ(r.execution.result, "2");
  EXPECT_EQ(r.restored_from, "live");
  EXPECT_EQ(r.version, 2);
  EXPECT_EQ(a->StaleLiveRuns(), 0);
  EXPECT_EQ(reader_->GetSession("t").value().expires_at, info.value().expires_at + 86'400'000'000);
}

// A live session whose execution timed out is rolled back (its instance remade from a
// checkpoint): it must go on saving page snapshots, not fail every later save.
TEST_F(SessionsTest, LiveSessionKeepsSavingAfterARolledBackExecution) {
  options_.limits.timeout_seconds = 0.5;
  auto a = Open();
  Run(*a, "rb", "x = 1\nimport json\njson.marker = 'kept'");
  auto timed_out = a->Execute("rb", "x = 99\nwhile True: pass");
  ASSERT_TRUE(timed_out.ok()) << timed_out.status().message();
  EXPECT_EQ(timed_out.value().execution.failure, Failure::kTimeout);
  SessionResult next = Run(*a, "rb", "x += 1\nx");
  EXPECT_EQ(next.restored_from, "live");
  EXPECT_EQ(next.execution.result, "2");
  EXPECT_TRUE(next.saved);
  auto b = Open();  // another process: restores what a saved
  SessionResult back = Run(*b, "rb", "import json\n(x, json.marker)");
  EXPECT_EQ(back.restored_from, "pages");
  EXPECT_EQ(back.execution.result, "(2, 'kept')");
}

TEST_F(SessionsTest, IdleLiveSessionsAreCompactedAndStayLive) {
  options_.compact_idle_after = std::chrono::milliseconds(200);
  auto s = Open();
  Run(*s, "a", "import json\nd = {'k': list(range(100))}\njson.marker = 'a'");
  Run(*s, "b", "x = 5");
  EXPECT_EQ(s->CompactIdle(), 0u);  // not idle long enough yet
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_EQ(s->CompactIdle(), 2u);
  EXPECT_EQ(s->CompactIdle(), 0u);  // nothing left to do
  SessionResult a = Run(*s, "a", "import json\n(sum(d['k']), json.marker)");
  EXPECT_EQ(a.restored_from, "live");  // woken in place, not restored from the store
  EXPECT_EQ(a.execution.result, "(4950, 'a')");
  EXPECT_TRUE(a.saved);
  auto other = Open();  // what was saved after the wake-up is complete
  EXPECT_EQ(Run(*other, "a", "json.marker + str(len(d['k']))").execution.result, "'a100'");

  // With no delay, each execution compacts the sessions it leaves idle (itself included).
  options_.compact_idle_after = std::chrono::milliseconds(0);
  auto eager = Open();
  Run(*eager, "c", "y = 1");
  EXPECT_EQ(eager->CompactIdle(), 0u);
  SessionResult c = Run(*eager, "c", "y + 1");
  EXPECT_EQ(c.restored_from, "live");
  EXPECT_EQ(c.execution.result, "2");
}

// The portable snapshot is taken after Execute returns (Options::portable_in_background) and
// stored as the state's fallback, for the version just saved; ~Sessions writes any still
// pending.
TEST_F(SessionsTest, ThePortableSnapshotIsStoredAfterTheAnswer) {
  ASSERT_TRUE(OpenReader());
  {
    auto s = Open();
    EXPECT_EQ(Run(*s, "p", "x = 1").version, 1);
    // Written by the background thread while the Sessions lives.
    ASSERT_TRUE(AwaitFallback("p", 1));
    EXPECT_EQ(Run(*s, "p", "x = 2").version, 2);
  }
  EXPECT_EQ(FallbackVersion("p"), 2) << "~Sessions writes what is pending";

  // A session pushed out of the live ones with its portable snapshot pending gets it too.
  options_.max_live = 1;
  {
    auto s = Open();
    Run(*s, "q1", "a = 1");
    Run(*s, "q2", "b = 2");
    Run(*s, "q1", "a = 3");
  }
  EXPECT_EQ(FallbackVersion("q1"), 2);
  EXPECT_EQ(FallbackVersion("q2"), 1);

  // Saved inside the save instead: then the snapshot holds it and there is no fallback.
  options_.portable_in_background = false;
  {
    auto s = Open();
    SessionResult r = Run(*s, "sync", "gen = (i for i in range(3))");
    EXPECT_TRUE(r.not_portable.count("gen")) << "reported with the execution itself";
  }
  EXPECT_EQ(FallbackVersion("sync"), 0);
}

// Live sessions are bounded by the memory they hold (max_live_bytes) as well as by count: a
// session of 20 MiB pushes out the small ones past a 10 MiB bound, and is pushed out in turn
// once it is not the one just used; the one just used stays, whatever its size.
TEST_F(SessionsTest, LiveSessionsAreBoundedByTheirMemory) {
  options_.max_live = 100;
  options_.max_live_bytes = uint64_t{10} << 20;
  // Nothing owed after a save: a session pushed out goes at once (one owing a portable
  // snapshot waits for the background thread, and an execution coming first takes it back).
  options_.portable_in_background = false;
  auto s = Open();
  Run(*s, "a", "x = 1");
  Run(*s, "b", "y = 2");
  EXPECT_EQ(s->LiveSessions(), 2u) << "two small sessions fit";
  EXPECT_EQ(Run(*s, "a", "x").restored_from, "live");
  Run(*s, "big", "blob = b'x' * (20 << 20)");
  EXPECT_EQ(s->LiveSessions(), 1u) << "the big one alone is over the bound: the others went";
  EXPECT_EQ(Run(*s, "big", "len(blob)").restored_from, "live") << "the one just used stays";
  SessionResult a = Run(*s, "a", "x");
  EXPECT_EQ(a.restored_from, "pages");
  EXPECT_EQ(a.execution.result, "1");
  EXPECT_EQ(s->LiveSessions(), 1u) << "the big one went for the small one just used";
  SessionResult big = Run(*s, "big", "len(blob)");
  EXPECT_EQ(big.restored_from, "pages");
  EXPECT_EQ(big.execution.result, std::to_string(20 << 20));

  // Without the byte bound, the count alone: all three stay.
  options_.max_live_bytes = 0;
  auto unbounded = Open();
  for (const char* id : {"a", "b", "big", "a", "b", "big"}) Run(*unbounded, id, "1");
  EXPECT_EQ(unbounded->LiveSessions(), 3u);
}

// A session used again and again is idle portable_delay after each execution, but its
// portable snapshots are spaced by portable_min_interval: the first one is taken at once,
// the next one not before the interval (or portable_max_lag) has passed; ~Sessions still
// writes the one pending.
TEST_F(SessionsTest, PortableSnapshotsAreSpacedByTheMinimumInterval) {
  ASSERT_TRUE(OpenReader());
  options_.portable_delay = std::chrono::milliseconds(1);
  options_.portable_max_lag = std::chrono::hours(1);
  // Longer than the machine has been up (the steady clock starts at boot): the first one is
  // still taken at once (it once waited for the machine's uptime to pass the interval).
  options_.portable_min_interval = std::chrono::hours(24 * 365);
  {
    auto s = Open();
    EXPECT_EQ(Run(*s, "p", "x = 1").version, 1);
    ASSERT_TRUE(AwaitFallback("p", 1));
    EXPECT_EQ(Run(*s, "p", "x = 2").version, 2);
    EXPECT_EQ(Run(*s, "p", "x = 3").version, 3);
    // Idle for 300 times portable_delay: without the interval it would have been taken.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(FallbackVersion("p"), 1) << "taken again within portable_min_interval";
  }
  EXPECT_EQ(FallbackVersion("p"), 3) << "~Sessions writes what is pending";

  // Without the interval: taken once idle for portable_delay, after each execution.
  options_.portable_min_interval = std::chrono::milliseconds(0);
  {
    auto s = Open();
    EXPECT_EQ(Run(*s, "q", "x = 1").version, 1);
    ASSERT_TRUE(AwaitFallback("q", 1));
    EXPECT_EQ(Run(*s, "q", "x = 2").version, 2);
    ASSERT_TRUE(AwaitFallback("q", 2));
  }
}

// A different build (here: a page snapshot that cannot be restored) after brig stopped before
// writing the last portable snapshot: the session comes back from the older one, and the
// result says which versions it lacks.
TEST_F(SessionsTest, ARestoreFromAnOlderPortableSnapshotSaysWhatItLacks) {
  {
    auto s = Open();
    Run(*s, "t", "x = 1; y = 5\ndef f(): return x + y");
  }  // the portable snapshot of version 1 is stored
  // Version 2, saved without a portable snapshot, with a page snapshot that does not restore.
  auto store = store::OpenStore(options_.store_url);
  ASSERT_TRUE(store.ok());
  auto le64 = [](uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); };
  const std::string junk = "not a page snapshot";
  const std::string state = le64(junk.size()) + junk + le64(0) + "{\"not_portable\": {}}";
  ASSERT_EQ(store.value()->SaveExecution("t", 1, store::StateWrite{state, "brig-session/1", "other-build"}, {}, {})
                .value(),
            2);
  ASSERT_EQ(store.value()->GetState("t").value()->fallback_version, 1);
  auto s = Open();
  SessionResult r = Run(*s, "t", "f()");
  EXPECT_EQ(r.restored_from, "portable");
  EXPECT_EQ(r.execution.result, "6");
  ASSERT_TRUE(r.not_restored.count("<versions 2-2>")) << "the lost versions are named";
  EXPECT_NE(r.not_restored["<versions 2-2>"].find("version 1"), std::string::npos);
  EXPECT_EQ(r.version, 3);
}

TEST_F(SessionsTest, ResetClearsStateAndKeepsFiles) {
  auto s = Open();
  Run(*s, "r", "x = 1\nopen('/tmp/keep.txt', 'w').write('kept')");
  ASSERT_TRUE(s->Reset("r").ok());
  auto r = s->Execute("r", "print(x)");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.value().execution.error.has_value());
  EXPECT_EQ(r.value().execution.error->type, "NameError");
  EXPECT_EQ(Run(*s, "r", "open('/tmp/keep.txt').read()").execution.result, "'kept'");
}

TEST_F(SessionsTest, ExpiredSessionIsAClearError) {
  auto store = store::OpenStore(options_.store_url);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store.value()->CreateSession("old", store::NowMicros() - 1000, nullptr).ok());
  auto s = Open();
  auto r = s->Execute("old", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsFailedPrecondition()) << r.status().message();
  EXPECT_NE(r.status().message().find("expired"), std::string::npos) << r.status().message();
}

TEST_F(SessionsTest, BadThreadIdsAreRefused) {
  auto s = Open();
  for (std::string bad : {std::string(), std::string(256, 'x'), std::string("a\nb")}) {
    auto r = s->Execute(bad, "1");
    EXPECT_TRUE(r.status().IsInvalidArgument()) << bad;
  }
}

TEST_F(SessionsTest, ByteQuotaFailsTheWriteInTheGuestAndKeepsTheRest) {
  Sessions::Options o = options_;
  o.max_bytes_per_session = 1 << 20;
  auto s = Open(o);
  SessionResult r = Run(*s, "q",
                        "x = 7\nopen('/tmp/a.bin', 'wb').write(b'a' * 1000)\n"
                        "try:\n    open('/tmp/b.bin', 'wb').write(b'b' * (2 << 20))\n"
                        "except OSError as e:\n    import errno\n    err = (e.errno == errno.ENOSPC, e.strerror)\nerr");
  EXPECT_EQ(r.execution.result, "(True, 'No space left on device')");
  EXPECT_TRUE(r.saved);
  auto s2 = Open(o);
  EXPECT_EQ(Run(*s2, "q", "(x, len(open('/tmp/a.bin','rb').read()))").execution.result, "(7, 1000)");
}

// Creates /home/user/d/e/n0, n1, ... until the guest refuses one; prints the refusal.
constexpr std::string_view kCreateUntilRefused = R"(import errno
made, err = [], None
for i in range(10):
    try:
        with open(f'/home/user/d/e/n{i}', 'w') as f:
            f.write(str(i))
    except OSError as e:
        print('refused:', e)
        err = (e.errno == errno.ENOSPC, e.strerror)
        break
    made.append(i)
(made, err))";

TEST_F(SessionsTest, FileCountQuotaFailsTheCreationInTheGuestAndKeepsTheRest) {
  Sessions::Options o = options_;
  o.max_files_per_session = 5;
  {
    auto store = store::OpenStore(options_.store_url);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store.value()->CreateSession("n", store::NowMicros() + 86'400'000'000LL, nullptr).ok());
    // A file the guest does not see counts towards the quota too.
    ASSERT_TRUE(store.value()->PutFile("n", {"/data/outside.txt", "o", ""}).ok());
  }
  auto s = Open(o);
  // Directories do not count: 1 + 2 of 5 files used.
  Run(*s, "n", "import os\nos.makedirs('/home/user/d/e/f/g')\nopen('/tmp/old0', 'w').write('0')\n"
               "open('/tmp/old1', 'w').write('1')\nx = 1");
  SessionResult r = Run(*s, "n", std::string("x = 2\n") + std::string(kCreateUntilRefused));
  EXPECT_EQ(r.execution.result, "([0, 1], (True, 'No space left on device'))");
  EXPECT_NE(r.execution.stdout_text.find("refused: [Errno "), std::string::npos) << r.execution.stdout_text;
  EXPECT_NE(r.execution.stdout_text.find("No space left on device: '/home/user/d/e/n2'"), std::string::npos)
      << r.execution.stdout_text;
  EXPECT_TRUE(r.saved);
  EXPECT_EQ(r.files_saved, (std::vector<std::string>{"/home/user/d/e/n0", "/home/user/d/e/n1"}));

  // As a new process would see it: the variables and the files made before the refusal, and
  // the empty directory /home/user/d/e/f/g (saved like a file).
  auto s2 = Open(o);
  SessionResult back = Run(*s2, "n", "import os\n(x, made, sorted(os.listdir('/home/user/d/e')), "
                                     "open('/home/user/d/e/n1').read(), sorted(os.listdir('/tmp')))");
  EXPECT_NE(back.restored_from, "live");
  EXPECT_EQ(back.execution.result, "(2, [0, 1], ['f', 'n0', 'n1'], '1', ['old0', 'old1'])");
  // Deleting a file makes room for exactly one more (rewriting n0 and n1 needs none).
  r = Run(*s2, "n", "import os\nos.remove('/tmp/old0')\n" + std::string(kCreateUntilRefused));
  EXPECT_EQ(r.execution.result, "([0, 1, 2], (True, 'No space left on device'))");
  EXPECT_TRUE(r.saved);
  EXPECT_EQ(r.files_deleted, (std::vector<std::string>{"/tmp/old0"}));
  EXPECT_EQ(r.files_saved, (std::vector<std::string>{"/home/user/d/e/n0", "/home/user/d/e/n1", "/home/user/d/e/n2"}));
}

TEST_F(SessionsTest, SessionOverALoweredQuotaLoadsButItsSaveIsRefused) {
  Sessions::Options o = options_;
  o.max_files_per_session = 4;
  auto s = Open(o);
  Run(*s, "m", "x = 1\nfor i in range(4): open(f'/tmp/f{i}', 'w').write('.')");
  o.max_files_per_session = 2;
  auto lowered = Open(o);
  // It loads (its files fill its limit), and the save-time check refuses the save.
  auto r = lowered->Execute("m", "x = 2\ntry:\n    open('/tmp/new', 'w')\nexcept OSError as e:\n    err = e.strerror\nerr");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsResourceExhausted()) << r.status().message();
  EXPECT_NE(r.status().message().find("over its quota of 2 files"), std::string::npos) << r.status().message();
  // Back under the quota, it saves again; then, loaded anew, the quota is its limit.
  SessionResult ok = Run(*lowered, "m", "import os\nx = 3\nfor i in range(2): os.remove(f'/tmp/f{i}')");
  EXPECT_TRUE(ok.saved);
  EXPECT_EQ(ok.files_deleted, (std::vector<std::string>{"/tmp/f0", "/tmp/f1"}));
  SessionResult full = Run(*lowered, "m", "try:\n    open('/tmp/new', 'w')\nexcept OSError as e:\n    err = e.strerror\n(x, err)");
  EXPECT_NE(full.restored_from, "live");
  EXPECT_EQ(full.execution.result, "(3, 'No space left on device')");
  EXPECT_TRUE(full.saved);
  EXPECT_EQ(Run(*s, "m", "import os\n(x, sorted(os.listdir('/tmp')))").execution.result, "(3, ['f2', 'f3'])");
}

// Files outside the guest's view count at every save (the quota backstop), by the figure
// counted when the session was loaded: one written through the API while the session is live
// makes it load again, so that figure and the guest's limits stay true.
TEST_F(SessionsTest, FilesOutsideTheGuestCountAtSaveAndAnApiWriteReloadsTheSession) {
  Sessions::Options o = options_;
  o.max_files_per_session = 4;
  {
    auto store = store::OpenStore(options_.store_url);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store.value()->CreateSession("o", store::NowMicros() + 86'400'000'000LL, nullptr).ok());
    ASSERT_TRUE(store.value()->PutFile("o", {"/data/a.txt", "a", ""}).ok());
    ASSERT_TRUE(store.value()->PutFile("o", {"/data/b.txt", "b", ""}).ok());
  }
  auto s = Open(o);
  SessionResult r = Run(*s, "o", "open('/tmp/g0', 'w').write('0')\nopen('/tmp/g1', 'w').write('1')\nx = 1");
  EXPECT_TRUE(r.saved);  // 2 outside + 2 in the guest: the quota of 4
  // Under a lower quota the session loads (its files fill its limit) and its save is refused:
  // counting the 2 files outside (the guest's 2 alone are within 3).
  o.max_files_per_session = 3;
  auto lowered = Open(o);
  auto refused = lowered->Execute("o", "x = 2");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("over its quota of 3 files"), std::string::npos)
      << refused.status().message();

  // Live, with room for two more files (2 in the guest, quota 4) ...
  {
    auto store = store::OpenStore(options_.store_url);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store.value()->CreateSession("p", store::NowMicros() + 86'400'000'000LL, nullptr).ok());
  }
  Sessions::Options four = options_;
  four.max_files_per_session = 4;
  auto u = Open(four);
  EXPECT_TRUE(Run(*u, "p", "open('/tmp/g0', 'w').write('0')\nopen('/tmp/g1', 'w').write('1')\nx = 1").saved);
  EXPECT_EQ(Run(*u, "p", "x").restored_from, "live");
  // ... then 2 files outside through the API: the next execution loads the session again and
  // its guest has no room left (the store's 4 files are the quota).
  ASSERT_TRUE(u->files().Write("p", "/data/c.txt", "c").ok());
  ASSERT_TRUE(u->files().Write("p", "/data/d.txt", "d").ok());
  SessionResult full = Run(*u, "p", "try:\n    open('/tmp/g2', 'w')\n    err = None\nexcept OSError as e:\n    err = e.strerror\nerr");
  EXPECT_NE(full.restored_from, "live");
  EXPECT_EQ(full.execution.result, "'No space left on device'");
  EXPECT_TRUE(full.saved);
}

TEST_F(SessionsTest, TimeoutSavesNothingAndTheSessionGoesOn) {
  Sessions::Options o = options_;
  o.limits.timeout_seconds = 0.5;
  auto s = Open(o);
  Run(*s, "t", "x = 1");
  auto r = s->Execute("t", "x = 2\nwhile True: pass");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().execution.failure, Failure::kTimeout);
  EXPECT_FALSE(r.value().saved);
  EXPECT_EQ(Run(*s, "t", "x").execution.result, "1");
}

TEST_F(SessionsTest, ExecutionsInOneSessionAreSerialised) {
  auto s = Open();
  Run(*s, "c", "n = 0");
  auto bump = [&] {
    auto mine = Open();
    for (int i = 0; i < 10; i++) ASSERT_TRUE(mine->Execute("c", "n += 1").ok());
  };
  std::thread t1(bump), t2(bump);
  t1.join();
  t2.join();
  EXPECT_EQ(Run(*s, "c", "n").execution.result, "20");
}

// The background thread trims idle live sessions one at a time, the oldest first, with the
// sessions' lock released while it trims; executions meanwhile take sessions out of the live
// list and put them back at its front. It once kept an iterator that pointed through the
// entry next to the one it trimmed, which an execution had taken out: a crash (seen in a
// worker when PostgreSQL restarted under brig serve). Many idle sessions, then executions
// across them from the oldest, while they are being trimmed.
TEST_F(SessionsTest, ExecutionsWhileIdleSessionsAreTrimmedLoseNothing) {
  auto s = Open();
  constexpr int kSessions = 24;
  for (int i = 0; i < kSessions; i++) Run(*s, "trim" + std::to_string(i), "n = 0\nblob = bytes(200000)");
  for (int round = 0; round < 3; round++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // idle past the trim delay
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; t++) {
      threads.emplace_back([&, t] {
        for (int i = t; i < kSessions; i += 3) ASSERT_TRUE(s->Execute("trim" + std::to_string(i), "n += 1").ok());
      });
    }
    for (auto& t : threads) t.join();
  }
  for (int i = 0; i < kSessions; i++) EXPECT_EQ(Run(*s, "trim" + std::to_string(i), "n").execution.result, "3");
}

TEST_F(SessionsTest, UnreachableStoreIsUnavailable) {
  Sessions::Options o;
  o.store_url = "postgresql:///nope?host=/nonexistent-dir&connect_timeout=1";
  auto s = Sessions::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsUnavailable()) << s.status().message();
}

// A live session's durable saves store deltas (store.h) until they outgrow the whole state,
// and everything that reads the stored state reads it whole: another process's load, a
// fork, an export imported elsewhere, a reset that keeps the files' attributes.
TEST_F(SessionsTest, DurableSavesOfALiveSessionAreDeltasThatEveryReaderAppliesInOrder) {
  options_.state_deltas = true;  // SQLite's default is whole states
  auto a = Open();
  Run(*a, "d", "x = 0\nhistory = []");
  auto store = store::OpenStore(options_.store_url);
  ASSERT_TRUE(store.ok());
  int64_t most_deltas = 0;
  bool compacted = false;
  for (int i = 1; i <= 12; i++) {
    SessionResult r = Run(*a, "d", "x += 1\nhistory.append(x)");
    EXPECT_EQ(r.restored_from, "live");
    auto st = store.value()->GetState("d");
    ASSERT_TRUE(st.ok() && st.value());
    EXPECT_EQ(st.value()->version, r.version);
    const int64_t deltas = static_cast<int64_t>(st.value()->deltas.size());
    if (deltas == 0 && most_deltas > 0) compacted = true;
    most_deltas = std::max(most_deltas, deltas);
    if (deltas > 0) {
      EXPECT_EQ(st.value()->deltas.back().first, r.version);
      EXPECT_LT(st.value()->deltas.back().second.size(), st.value()->snapshot.size());
    }
  }
  EXPECT_GT(most_deltas, 0) << "no save was a delta";
  EXPECT_TRUE(compacted) << "the deltas were never folded into a whole save";
  // Leave the session on a delta, then read it everywhere.
  SessionResult last;
  for (int i = 0; i < 3; i++) {
    last = Run(*a, "d", "x += 1\nhistory.append(x)");
    auto st = store.value()->GetState("d");
    if (!st.value()->deltas.empty()) break;
  }
  ASSERT_FALSE(store.value()->GetState("d").value()->deltas.empty());
  const std::string expected = Run(*a, "d", "(x, history[-3:], len(history))").execution.result.value_or("?");
  auto b = Open();
  SessionResult other = Run(*b, "d", "(x, history[-3:], len(history))");
  EXPECT_EQ(other.restored_from, "pages");
  EXPECT_EQ(other.execution.result, expected);
  // b saved from its own load: a delta against the state it read, which a reads back.
  SessionResult more = Run(*b, "d", "x += 100");
  EXPECT_EQ(Run(*a, "d", "x").execution.result, std::to_string(std::stoi(expected.substr(1)) + 100));
  (void)more;
  ASSERT_TRUE(a->manager().Fork("d", "d-fork").ok());
  EXPECT_EQ(Run(*a, "d-fork", "len(history)").execution.result, Run(*a, "d", "len(history)").execution.result);
  auto exported = a->ExportSnapshot("d");
  ASSERT_TRUE(exported.ok()) << exported.status().message();
  auto imported = b->ImportSnapshot("d-imported", exported.value());
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  EXPECT_EQ(Run(*b, "d-imported", "x").execution.result, Run(*a, "d", "x").execution.result);
}

// Without state_deltas set, SQLite stores whole states (its commits of deltas measured
// slower); a process that does store deltas there is read by one that does not.
TEST_F(SessionsTest, OnSQLiteTheDefaultIsWholeStatesAndDeltasFromElsewhereAreRead) {
  auto a = Open();
  for (int i = 0; i < 5; i++) Run(*a, "w", i == 0 ? "x = 0" : "x += 1");
  auto store = store::OpenStore(options_.store_url);
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE(store.value()->GetState("w").value()->deltas.empty());
  options_.state_deltas = true;
  auto b = Open();
  Run(*b, "w", "x += 1");
  Run(*b, "w", "x += 1");
  EXPECT_FALSE(store.value()->GetState("w").value()->deltas.empty());
  SessionResult read = Run(*a, "w", "x");
  EXPECT_EQ(read.restored_from, "pages");
  EXPECT_EQ(read.execution.result, "6");
  EXPECT_TRUE(store.value()->GetState("w").value()->deltas.empty());  // a saved it whole
}

// A delta that does not apply (damaged in the store) makes the state unreadable, named; it
// is never restored as if the deltas were not there.
TEST_F(SessionsTest, ADamagedDeltaIsAClearErrorNotAnOlderState) {
  options_.state_deltas = true;
  auto a = Open();
  Run(*a, "bad", "x = 0");
  for (int i = 0; i < 3; i++) Run(*a, "bad", "x += 1");
  auto store = store::OpenStore(options_.store_url);
  ASSERT_TRUE(store.ok());
  auto st = store.value()->GetState("bad");
  ASSERT_TRUE(st.ok() && st.value());
  ASSERT_FALSE(st.value()->deltas.empty());
  a.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/brig.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE brig_state_deltas SET delta = substr(delta, 1, 40)", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto b = Open();
  auto r = b->Execute("bad", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unreadable"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace brig
