// The server backend: a PostgreSQL database via libpq, shared by any number of brig
// processes and nodes.
//
// Connections come from a pool (StoreOptions::pool_size, default 4), each with
// statement_timeout set (StoreOptions::statement_timeout, default 30 s). Every value
// travels as a statement parameter (bytes in binary); no SQL is built from values.
// Migrations run under pg_advisory_xact_lock, so concurrent opens apply each one once.
// SaveExecution locks the session row (FOR NO KEY UPDATE) before checking the version, so
// of two concurrent saves with the same expected version exactly one commits.
//
// Session locks are pg_advisory_lock(ThreadIdHash) held on a connection of their own (not
// from the pool); the server releases them if the holder dies. Released connections are
// kept for the next lock (opening one per execution cost ~15 ms). A release is sent by the
// lock's destructor without waiting for the answer (read when the connection is next
// taken): the server applies it as it reads it, and an execution saves a round trip.
//
// Commits: each write is its own transaction on a pooled connection. PostgreSQL flushes the
// WAL for all commits waiting at once (a backend's flush covers the others' commit records),
// so concurrent saves on different connections already share fsyncs; pool_size bounds how
// many can wait together (see bench/RESULTS.md, 2026-12-: group commit).
//
// Thread-safety: safe for concurrent use from multiple threads; up to pool_size calls run
// in parallel, the rest wait for a connection.
#ifndef BRIG_STORE_POSTGRES_STORE_H_
#define BRIG_STORE_POSTGRES_STORE_H_

#include <memory>
#include <string_view>

#include "store/store.h"

namespace brig::store {

// Connects (one connection, to fail early and clearly), migrates, and returns the store.
// Unavailable if the server cannot be reached (the message carries libpq's reason);
// InvalidArgument for a pool_size < 1; FailedPrecondition if the schema is newer than
// this brig.
StatusOr<std::unique_ptr<Store>> OpenPostgresStore(std::string_view url, const StoreOptions& options);

}  // namespace brig::store

#endif  // BRIG_STORE_POSTGRES_STORE_H_
