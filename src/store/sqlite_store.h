// The embedded backend: one SQLite database file.
//
// The database runs in WAL mode with synchronous=FULL (a commit is on disk before the call
// returns: kill -9 or power loss keeps it), foreign_keys=ON (cascading deletes) and a
// busy_timeout (StoreOptions::busy_timeout) for other processes' write locks. Every write
// transaction starts with BEGIN IMMEDIATE, so two processes never deadlock upgrading a read.
//
// Writes go through one writer connection in group commits (group_commit.h): the writes of
// all threads that queue while a transaction commits share the next transaction and its one
// fsync, each in a savepoint of its own. Reads use a pool of read connections (opened as
// needed, PRAGMA query_only), so they run in parallel with each other and with a commit.
//
// Thread-safety: safe for concurrent use from multiple threads.
//
// Session locks are flock(2)s on files in PATH.locks/ (created on open), one file per
// 64-bit thread_id hash, named by its 16 hex digits.
#ifndef BRIG_STORE_SQLITE_STORE_H_
#define BRIG_STORE_SQLITE_STORE_H_

#include <memory>
#include <string_view>

#include "store/store.h"

namespace brig::store {

// Opens or creates the database at `path` and migrates it. Unavailable if the file or
// its lock directory cannot be created or opened (missing or unwritable directory);
// FailedPrecondition if the file is not a SQLite database or was migrated by a newer brig.
StatusOr<std::unique_ptr<Store>> OpenSqliteStore(std::string_view path, const StoreOptions& options);

}  // namespace brig::store

#endif  // BRIG_STORE_SQLITE_STORE_H_
