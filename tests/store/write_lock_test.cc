// The SQLite store's cross-process write lock (store/write_lock.h): it excludes, times out
// as a busy database, and a holder killed with SIGKILL does not wedge the others (also
// through the store itself, whose writes take it).
#include "store/write_lock.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <thread>

#include "store/sqlite_store.h"

namespace brig::store {
namespace {

class WriteLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/brig-write-lock-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }

  // A child process that takes `lock` (opened before the fork) and holds it until killed.
  // Returns once it holds it.
  void HoldInChild(WriteLock& lock) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      if (!lock.Lock(std::chrono::milliseconds(10'000)).ok()) _exit(3);
      char c = 1;
      (void)!write(ready[1], &c, 1);
      while (true) pause();
    }
    close(ready[1]);
    char c = 0;
    ASSERT_EQ(read(ready[0], &c, 1), 1) << "the child could not take the lock";
    close(ready[0]);
  }
  void KillChild() {
    kill(child_, SIGKILL);
    waitpid(child_, nullptr, 0);
    child_ = -1;
  }

  std::string dir_;
  pid_t child_ = -1;
};

TEST_F(WriteLockTest, ExcludesAnotherOpenOfTheSameFileAndTimesOut) {
  auto a = WriteLock::Open(dir_ + "/writer");
  auto b = WriteLock::Open(dir_ + "/writer");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE(a.value()->Lock(std::chrono::milliseconds(1000)).ok());
  Status waited;
  std::thread other([&] { waited = b.value()->Lock(std::chrono::milliseconds(50)); });
  other.join();
  EXPECT_TRUE(waited.IsUnavailable()) << waited.ToString();
  a.value()->Unlock();
  std::thread again([&] { waited = b.value()->Lock(std::chrono::milliseconds(10'000)); });
  again.join();
  EXPECT_TRUE(waited.ok()) << waited.ToString();
}

TEST_F(WriteLockTest, AHolderKilledMidWriteReleasesItToTheNext) {
  auto lock = WriteLock::Open(dir_ + "/writer");
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  HoldInChild(*lock.value());
  // Held by a live process: a short wait times out.
  EXPECT_TRUE(lock.value()->Lock(std::chrono::milliseconds(50)).IsUnavailable());
  KillChild();
  // Dead holder: the lock passes on (EOWNERDEAD), and goes on working after.
  ASSERT_TRUE(lock.value()->Lock(std::chrono::milliseconds(10'000)).ok());
  lock.value()->Unlock();
  ASSERT_TRUE(lock.value()->Lock(std::chrono::milliseconds(10'000)).ok());
  lock.value()->Unlock();
}

TEST_F(WriteLockTest, TheSqliteStoreWritesUnderItAndSurvivesAKilledHolder) {
  StoreOptions options;
  options.busy_timeout = std::chrono::milliseconds(100);
  auto store = OpenSqliteStore(dir_ + "/brig.db", options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  // Another process's writer, mid-transaction: the store's writes wait for it (and give up
  // after the busy timeout as for a locked database).
  auto other = WriteLock::Open(dir_ + "/brig.db.locks/writer");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  HoldInChild(*other.value());
  Status blocked = store.value()->CreateSession("one", NowMicros() + 3'600'000'000, nlohmann::json::object());
  EXPECT_TRUE(blocked.IsUnavailable()) << blocked.ToString();
  // Killed holding it: the next write goes through.
  KillChild();
  Status s = store.value()->CreateSession("two", NowMicros() + 3'600'000'000, nlohmann::json::object());
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(store.value()->GetSession("two").ok());
}

}  // namespace
}  // namespace brig::store
