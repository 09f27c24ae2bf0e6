// An exclusive flock(2) on a file: the embedded store's session lock. flock belongs to the
// open file description, so two opens in one process exclude each other like two processes
// do, and the kernel drops the lock when the holder dies (kill -9 included).
#ifndef BRIG_STORE_FILE_LOCK_H_
#define BRIG_STORE_FILE_LOCK_H_

#include <chrono>
#include <memory>
#include <string>

#include "store/store.h"

namespace brig::store {

// Waiters in this process queue on the path first and are woken the moment the holder here
// releases it; flock, polled, decides between processes.
//
// Creates `path` if needed (the file is left behind on release: removing it would let two
// holders lock two different inodes) and blocks until it is locked or `timeout` passes
// (DeadlineExceeded). Unavailable if the file cannot be opened.
StatusOr<std::unique_ptr<SessionLock>> LockFile(const std::string& path,
                                                std::chrono::milliseconds timeout);

}  // namespace brig::store

#endif  // BRIG_STORE_FILE_LOCK_H_
