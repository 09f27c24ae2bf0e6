// GroupCommit: writes from many threads committed together, one transaction and one flush
// to disk for all the writes that queued up while the previous group was committing.
//
// Each write is a function that runs its statements on the group's connection. The first
// writer to find no group running becomes the leader: it begins a transaction, takes every
// write queued by then (its own included, up to max_batch), runs each inside a savepoint of
// its own, commits, and wakes the writers of the group; the next waiting writer then leads
// the next group. So:
//   - each write is atomic and isolated as if it ran alone: a write that fails is rolled back
//     to its savepoint and fails alone (a version conflict, a missing session, a constraint);
//     the others in its group commit. Writes in one group run one after another, in the order
//     they queued, each seeing those before it (two saves of one version: the second
//     conflicts, as it would after the first committed);
//   - Run returns once the group's COMMIT has returned, i.e. when the write is as durable as
//     the database makes a commit (SQLite synchronous=FULL, PostgreSQL synchronous_commit);
//   - if the database aborts the whole transaction after a failed write (SQLite does on some
//     I/O and memory errors), that write fails and the rest of the group is run again in a
//     new transaction; if BEGIN or COMMIT fails, every write of the group fails with that
//     error and nothing of it is kept.
// Nobody waits for company: a write that finds the database idle commits at once, alone.
// Groups form only while a commit is under way, so grouping costs no latency.
//
// Thread-safety: Run may be called from any number of threads. The Database hooks and the
// write functions are called on the leader's thread, one at a time, never concurrently.
#ifndef BRIG_STORE_GROUP_COMMIT_H_
#define BRIG_STORE_GROUP_COMMIT_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "brig/status.h"

namespace brig::store {

class GroupCommit {
 public:
  // What the leader does with its database connection. Implemented by each backend.
  class Database {
   public:
    virtual ~Database() = default;
    // Starts the group's transaction.
    virtual Status Begin() = 0;
    // Before each write: a savepoint to roll that write back to.
    virtual Status Savepoint() = 0;
    // After each write: release the savepoint, rolling back to it first unless `keep`.
    virtual Status EndSavepoint(bool keep) = 0;
    // True if the database has rolled back the whole transaction (checked after a write
    // failed).
    virtual bool Aborted() = 0;
    // Commits the transaction; on failure it is gone (rolled back).
    virtual Status Commit() = 0;
    // Rolls the transaction back (after a failed Begin, Savepoint or EndSavepoint).
    virtual void Rollback() = 0;
  };

  // Counters since construction, for tests and metrics.
  struct Stats {
    int64_t transactions = 0;  // groups committed
    int64_t writes = 0;        // writes they carried (committed or failed alone)
    int64_t queued = 0;        // writes waiting now, not yet taken by a leader
  };

  // Borrows `db`, which must outlive this object. REQUIRES: max_batch >= 1.
  explicit GroupCommit(Database* db, size_t max_batch = 256) : db_(db), max_batch_(max_batch) {}

  // Runs `write` in a group transaction and returns its status once the group committed;
  // or the group's BEGIN/COMMIT error (then the write is not kept). `write` may run more than
  // once (see above), so it must do nothing outside the database, and must set its outputs
  // on every run.
  Status Run(const std::function<Status()>& write);
  // Run for several writes at once, which join the same group (as many as max_batch allows;
  // the rest the next): their statuses, in order. For a caller that collected the writes of
  // several others (relayed saves), so that one thread, not one per write, waits for them.
  std::vector<Status> RunAll(const std::vector<const std::function<Status()>*>& writes);

  Stats stats() const;

 private:
  struct Write {
    const std::function<Status()>* fn = nullptr;
    Status result;
    bool done = false;
  };
  // Queues writes[0..n) and returns once all of them are done, leading groups when no other
  // thread does (Run: one write, nothing allocated; RunAll: several).
  void RunWrites(Write* writes, size_t n);
  // Runs one group as the leader. REQUIRES: called without mu_, as the only leader.
  void Lead(std::deque<Write*>& group);

  Database* const db_;
  const size_t max_batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Write*> queue_;  // GUARDED_BY(mu_)
  bool leading_ = false;      // GUARDED_BY(mu_): a leader is running a group
  Stats stats_;               // GUARDED_BY(mu_), except queued (computed)
};

}  // namespace brig::store

#endif  // BRIG_STORE_GROUP_COMMIT_H_
