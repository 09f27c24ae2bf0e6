// WriteLock: one lock shared by every process that opens the same embedded (SQLite) store,
// taken around each write transaction, so that a process waiting to write wakes the moment
// the holder releases it.
//
// Why not SQLite's own lock alone: a writer that finds the database locked sleeps in SQLite's
// busy handler, in steps that grow to 100 ms, and so sleeps well past the release; with
// several processes group-committing (brig serve's workers) they took turns at the lock with
// most of each turn lost to sleeping. SQLite's lock still guards the file; this one only
// orders brig's writers in front of it.
//
// What it is: a process-shared, robust pthread mutex in a small file mapped by every process
// (`<store>.locks/writer`). A waiter sleeps on the futex and is woken at unlock. Robust: when
// the holder dies (kill -9 in the middle of a commit), the kernel marks the mutex and the
// next locker takes it over (EOWNERDEAD; SQLite then rolls back the dead writer's journal on
// its own). A holder that is alive but stopped is waited for up to the lock timeout, then
// the write fails as a busy database does (Unavailable).
//
// The file is made and its mutex initialised under an flock of the file, once; it is never
// removed (two processes must map the same inode) nor truncated.
//
// Thread-safety: Lock/Unlock from any thread, but the thread that locks unlocks (a pthread
// mutex). Not recursive.
#ifndef BRIG_STORE_WRITE_LOCK_H_
#define BRIG_STORE_WRITE_LOCK_H_

#include <chrono>
#include <memory>
#include <string>

#include "brig/status.h"

namespace brig::store {

class WriteLock {
 public:
  // Opens (or makes) the lock file at `path` and maps it. Unavailable if it cannot.
  static StatusOr<std::unique_ptr<WriteLock>> Open(const std::string& path);
  ~WriteLock();
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

  // Waits up to `timeout` for the lock. Unavailable("database is locked ...") past it.
  // REQUIRES: the calling thread does not hold it.
  Status Lock(std::chrono::milliseconds timeout);
  // REQUIRES: the calling thread holds it.
  void Unlock();

 private:
  struct Shared;
  WriteLock(int fd, Shared* shared) : fd_(fd), shared_(shared) {}
  const int fd_;
  Shared* const shared_;  // the mapping
};

}  // namespace brig::store

#endif  // BRIG_STORE_WRITE_LOCK_H_
