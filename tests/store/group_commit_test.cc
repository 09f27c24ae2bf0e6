// GroupCommit against a scripted database: which writes share a transaction, what a failing
// write, a lost transaction and a failed BEGIN or COMMIT do to the others. Deterministic: the
// first leader is held in Begin() until the other writes have queued.
#include "store/group_commit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace brig::store {
namespace {

// Records what the leader does; "writes" append to `pending` and reach `committed` only at
// COMMIT (savepoints undo them), like a database would.
class FakeDatabase : public GroupCommit::Database {
 public:
  Status Begin() override {
    std::unique_lock<std::mutex> lock(mu_);
    log_.push_back("BEGIN");
    ++begins_;
    held_.wait(lock, [&] { return !hold_; });
    if (fail_begin_) return Status::Unavailable("begin refused");
    in_txn_ = true;
    pending_.clear();
    return Status::Ok();
  }
  Status Savepoint() override {
    std::lock_guard<std::mutex> lock(mu_);
    savepoint_ = pending_.size();
    return Status::Ok();
  }
  Status EndSavepoint(bool keep) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!keep) pending_.resize(savepoint_);
    return Status::Ok();
  }
  bool Aborted() override {
    std::lock_guard<std::mutex> lock(mu_);
    return !in_txn_;
  }
  Status Commit() override {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back("COMMIT");
    in_txn_ = false;
    if (fail_commit_) {
      pending_.clear();
      return Status::Unavailable("disk full");
    }
    ++commits_;
    committed_.insert(committed_.end(), pending_.begin(), pending_.end());
    pending_.clear();
    return Status::Ok();
  }
  void Rollback() override {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back("ROLLBACK");
    in_txn_ = false;
    pending_.clear();
  }

  // A write's statement: adds `what` to the transaction.
  void Put(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(what);
  }
  // What a database does on some I/O errors: drops the whole transaction.
  void AbortTransaction() {
    std::lock_guard<std::mutex> lock(mu_);
    in_txn_ = false;
    pending_.clear();
  }

  void Hold(bool hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = hold;
    held_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable held_;
  bool hold_ = false;
  bool fail_begin_ = false;
  bool fail_commit_ = false;
  bool in_txn_ = false;
  size_t savepoint_ = 0;
  int begins_ = 0;
  int commits_ = 0;
  std::vector<std::string> pending_;
  std::vector<std::string> committed_;
  std::vector<std::string> log_;
};

// Runs `writes` on threads of their own while the first leader is held in Begin(), so that
// all of them queue; then lets it go. Returns each write's status.
std::vector<Status> RunHeldGroup(GroupCommit& group, FakeDatabase& db,
                                 const std::vector<std::function<Status()>>& writes) {
  db.Hold(true);
  std::vector<Status> results(writes.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < writes.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = group.Run(writes[i]); });
  }
  // Every write queued (the leader takes the queue only after Begin returns).
  while (group.stats().queued < static_cast<int64_t>(writes.size())) std::this_thread::yield();
  db.Hold(false);
  for (auto& t : threads) t.join();
  return results;
}

std::function<Status()> Writes(FakeDatabase& db, const std::string& what) {
  return [&db, what] {
    db.Put(what);
    return Status::Ok();
  };
}

TEST(GroupCommit, WritesThatQueueDuringACommitShareOneTransaction) {
  FakeDatabase db;
  GroupCommit group(&db);
  std::vector<std::function<Status()>> writes;
  for (int i = 0; i < 8; ++i) writes.push_back(Writes(db, "w" + std::to_string(i)));
  std::vector<Status> results = RunHeldGroup(group, db, writes);
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(db.commits_, 1);
  EXPECT_EQ(db.committed_.size(), 8u);
  const GroupCommit::Stats stats = group.stats();
  EXPECT_EQ(stats.transactions, 1);
  EXPECT_EQ(stats.writes, 8);
  EXPECT_EQ(stats.queued, 0);
}

TEST(GroupCommit, AWriteAloneCommitsAtOnce) {
  FakeDatabase db;
  GroupCommit group(&db);
  EXPECT_TRUE(group.Run(Writes(db, "a")).ok());
  EXPECT_TRUE(group.Run(Writes(db, "b")).ok());
  EXPECT_EQ(db.commits_, 2);
  EXPECT_EQ(db.committed_, (std::vector<std::string>{"a", "b"}));
}

// One caller's several writes (relayed saves) go in one transaction, each with its own
// outcome, in order; the statements run in the order given.
TEST(GroupCommit, RunAllCommitsTheWritesOfOneCallerTogether) {
  FakeDatabase db;
  GroupCommit group(&db);
  std::vector<std::function<Status()>> writes = {Writes(db, "a"), [&db] {
                                                   db.Put("half");
                                                   return Status::Conflict("stale");
                                                 },
                                                 Writes(db, "c")};
  std::vector<const std::function<Status()>*> pointers;
  for (const auto& w : writes) pointers.push_back(&w);
  std::vector<Status> results = group.RunAll(pointers);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].IsConflict()) << results[1].ToString();
  EXPECT_TRUE(results[2].ok());
  EXPECT_EQ(db.commits_, 1);
  EXPECT_EQ(db.committed_, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(group.stats().transactions, 1);
  EXPECT_EQ(group.stats().writes, 3);
  EXPECT_TRUE(group.RunAll({}).empty());
}

// More writes than a group takes: the caller leads again until all of them are done.
TEST(GroupCommit, RunAllPastTheBatchBoundTakesSeveralGroups) {
  FakeDatabase db;
  GroupCommit group(&db, /*max_batch=*/2);
  std::vector<std::function<Status()>> writes;
  for (int i = 0; i < 5; ++i) writes.push_back(Writes(db, "w" + std::to_string(i)));
  std::vector<const std::function<Status()>*> pointers;
  for (const auto& w : writes) pointers.push_back(&w);
  std::vector<Status> results = group.RunAll(pointers);
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(db.commits_, 3);
  EXPECT_EQ(db.committed_, (std::vector<std::string>{"w0", "w1", "w2", "w3", "w4"}));
}

TEST(GroupCommit, AFailingWriteIsRolledBackAloneAndTheOthersCommit) {
  FakeDatabase db;
  GroupCommit group(&db);
  std::vector<std::function<Status()>> writes;
  writes.push_back(Writes(db, "ok1"));
  // Half-done, then fails (a constraint on its second statement): its first statement must go.
  writes.push_back([&db] {
    db.Put("half");
    return Status::Conflict("version conflict");
  });
  writes.push_back(Writes(db, "ok2"));
  std::vector<Status> results = RunHeldGroup(group, db, writes);
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].IsConflict()) << results[1].ToString();
  EXPECT_TRUE(results[2].ok());
  EXPECT_EQ(db.commits_, 1);
  std::vector<std::string> committed = db.committed_;
  std::sort(committed.begin(), committed.end());
  EXPECT_EQ(committed, (std::vector<std::string>{"ok1", "ok2"}));
}

TEST(GroupCommit, ALostTransactionFailsOnlyTheWriteThatLostItAndTheRestRunAgain) {
  FakeDatabase db;
  GroupCommit group(&db);
  std::atomic<int> runs{0};
  std::vector<std::function<Status()>> writes;
  for (int i = 0; i < 3; ++i) {
    writes.push_back([&db, &runs, i] {
      ++runs;
      db.Put("w" + std::to_string(i));
      return Status::Ok();
    });
  }
  writes.push_back([&db] {
    db.AbortTransaction();
    return Status::Unavailable("disk I/O error");
  });
  for (int i = 3; i < 5; ++i) writes.push_back(Writes(db, "w" + std::to_string(i)));
  std::vector<Status> results = RunHeldGroup(group, db, writes);
  int failed = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (i == 3) {
      EXPECT_TRUE(results[i].IsUnavailable()) << results[i].ToString();
      ++failed;
    } else {
      EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].ToString();
    }
  }
  EXPECT_EQ(failed, 1);
  std::vector<std::string> committed = db.committed_;
  std::sort(committed.begin(), committed.end());
  EXPECT_EQ(committed, (std::vector<std::string>{"w0", "w1", "w2", "w3", "w4"}))
      << "every write but the failing one committed exactly once";
  EXPECT_GE(db.begins_, 2) << "the rest ran in a new transaction";
}

TEST(GroupCommit, AFailedCommitFailsTheWholeGroupAndKeepsNothing) {
  FakeDatabase db;
  GroupCommit group(&db);
  db.fail_commit_ = true;
  std::vector<std::function<Status()>> writes;
  for (int i = 0; i < 4; ++i) writes.push_back(Writes(db, "w" + std::to_string(i)));
  std::vector<Status> results = RunHeldGroup(group, db, writes);
  for (const Status& s : results) EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_TRUE(db.committed_.empty());
  db.fail_commit_ = false;
  EXPECT_TRUE(group.Run(Writes(db, "after")).ok()) << "the next group commits again";
  EXPECT_EQ(db.committed_, (std::vector<std::string>{"after"}));
}

TEST(GroupCommit, AFailedBeginFailsTheGroupWithoutRunningIt) {
  FakeDatabase db;
  GroupCommit group(&db);
  db.fail_begin_ = true;
  std::atomic<int> ran{0};
  std::vector<std::function<Status()>> writes;
  for (int i = 0; i < 3; ++i) {
    writes.push_back([&ran] {
      ++ran;
      return Status::Ok();
    });
  }
  std::vector<Status> results = RunHeldGroup(group, db, writes);
  for (const Status& s : results) EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_EQ(ran.load(), 0);
}

TEST(GroupCommit, ManyThreadsEveryWriteCommittedOnceAndGrouped) {
  FakeDatabase db;
  GroupCommit group(&db);
  constexpr int kThreads = 16, kEach = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (!group.Run(Writes(db, std::to_string(t) + ":" + std::to_string(i))).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<std::string> committed = db.committed_;
  std::sort(committed.begin(), committed.end());
  EXPECT_EQ(committed.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(std::unique(committed.begin(), committed.end()), committed.end()) << "a write committed twice";
  EXPECT_EQ(group.stats().writes, kThreads * kEach);
  EXPECT_EQ(group.stats().transactions, db.commits_);
}

}  // namespace
}  // namespace brig::store
