#include "store/group_commit.h"

#include <vector>

namespace brig::store {

Status GroupCommit::Run(const std::function<Status()>& write) {
  Write w;
  w.fn = &write;
  RunWrites(&w, 1);
  return std::move(w.result);
}

std::vector<Status> GroupCommit::RunAll(const std::vector<const std::function<Status()>*>& writes) {
  std::vector<Write> mine(writes.size());
  for (size_t i = 0; i < writes.size(); ++i) mine[i].fn = writes[i];
  RunWrites(mine.data(), mine.size());
  std::vector<Status> results;
  results.reserve(mine.size());
  for (Write& w : mine) results.push_back(std::move(w.result));
  return results;
}

void GroupCommit::RunWrites(Write* writes, size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  for (size_t i = 0; i < n; ++i) queue_.push_back(&writes[i]);
  auto all_done = [&] {
    for (size_t i = 0; i < n; ++i) {
      if (!writes[i].done) return false;
    }
    return true;
  };
  while (!all_done()) {
    if (leading_) {
      cv_.wait(lock);
      continue;
    }
    leading_ = true;
    lock.unlock();
    // Begin first, then take the queue: writes that arrive while BEGIN waits for the
    // database (another process's write lock) join this group.
    const Status begun = db_->Begin();
    lock.lock();
    std::deque<Write*> group;
    while (!queue_.empty() && group.size() < max_batch_) {
      group.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    if (begun.ok()) {
      Lead(group);
    } else {
      for (Write* x : group) x->result = begun;
    }
    lock.lock();
    for (Write* x : group) x->done = true;
    stats_.writes += static_cast<int64_t>(group.size());
    if (begun.ok()) ++stats_.transactions;
    leading_ = false;
    cv_.notify_all();
  }
}

void GroupCommit::Lead(std::deque<Write*>& group) {
  std::vector<Write*> todo(group.begin(), group.end());
  while (!todo.empty()) {
    std::vector<Write*> kept;   // succeeded so far: commit with the group
    std::vector<Write*> again;  // to run in a new transaction: the whole one was lost
    bool lost = false;
    for (size_t i = 0; i < todo.size(); ++i) {
      Write* x = todo[i];
      Status step = db_->Savepoint();
      if (step.ok()) {
        x->result = (*x->fn)();
        const bool ok = x->result.ok();
        if (!ok && db_->Aborted()) {
          step = x->result;  // the database dropped the transaction: this write fails alone
        } else {
          step = db_->EndSavepoint(ok);
          if (!step.ok()) x->result = step;
        }
      } else {
        x->result = step;
      }
      if (step.ok()) {
        // A write that failed alone was rolled back to its savepoint: its error is final.
        if (x->result.ok()) kept.push_back(x);
        continue;
      }
      // The transaction is lost (or cannot go on): `x` has its error; what ran before it
      // and what has not run yet go again.
      again = kept;
      again.insert(again.end(), todo.begin() + static_cast<std::ptrdiff_t>(i) + 1, todo.end());
      kept.clear();
      lost = true;
      break;
    }
    if (!lost) {
      const Status committed = db_->Commit();
      if (!committed.ok()) {
        for (Write* x : kept) x->result = committed;
      }
      return;
    }
    db_->Rollback();
    if (again.empty()) return;
    const Status begun = db_->Begin();
    if (!begun.ok()) {
      for (Write* x : again) x->result = begun;
      return;
    }
    todo = std::move(again);
  }
}

GroupCommit::Stats GroupCommit::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.queued = static_cast<int64_t>(queue_.size());
  return s;
}

}  // namespace brig::store
