// brig::Store: an open store, where sessions, their files and their interpreter state live
// between executions and across restarts of brig. Everything that manages sessions
// (brig::SessionManager, brig::FileService, brig::Sessions) works on one.
//
//   auto store = brig::Store::Open("sqlite:/var/lib/brig/brig.db");   // check store.ok()
//   brig::SessionManager sessions(*store.value());
//   brig::FileService files(sessions);
//
// Two backends, chosen by the URL:
//   sqlite:PATH (or sqlite://PATH)   embedded, the default; PATH's directory must exist and
//                                    be writable. Several processes may share the file.
//   postgresql://... (postgres://)   a PostgreSQL server (libpq URI; parameters such as
//                                    host=/socket/dir work), which several brig processes
//                                    and machines may share.
// Opening applies the schema migrations this brig knows, under a lock, so concurrent opens
// are safe.
//
// Thread-safety: a Store is safe for concurrent use from multiple threads; the objects made
// on it may be used from any thread. It must outlive every object that borrows it.
#ifndef BRIG_STORE_H_
#define BRIG_STORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "brig/status.h"

namespace brig {

namespace store {
class Store;
}
namespace internal {
struct Access;
}

struct StoreOptions {
  // PostgreSQL: connections kept by the pool, at most. Default 4. Session locks use their
  // own connections, outside the pool.
  int pool_size = 4;
  // PostgreSQL: statement_timeout set on every connection. Default 30 s. 0 = none.
  std::chrono::milliseconds statement_timeout{30'000};
  // PostgreSQL: how long to wait for a connection to be established (libpq connect_timeout,
  // whole seconds, at least 1) unless the URL says otherwise. Default 10 s.
  std::chrono::milliseconds connect_timeout{10'000};
  // SQLite: how long a statement waits for another process's write lock. Default 30 s.
  std::chrono::milliseconds busy_timeout{30'000};
  // Source of the created / accessed / modified stamps (microseconds since the Unix epoch).
  // Tests inject a fake clock (and give the SessionManager the same one). Default: the
  // system clock.
  std::function<int64_t()> clock;
  // Hands every execution's save to another process, which commits it, instead of writing
  // it on this store's own connection; everything else (reads, other writes, session locks)
  // stays here. Processes that write one SQLite file take turns on its write lock, each
  // holding it through its own flush; handed to one process, the saves of all of them
  // commit in one group, one flush (`brig serve`'s workers hand theirs to the supervisor).
  // save_relay gets a save's bytes, must have them applied by Store::ApplyRelayedSaves on a
  // store of the same database (in the other process), and returns the bytes that call
  // returned; it runs on the saving thread, from several threads at once. A save over 32
  // MiB (many files) is written here instead. Empty (the default): every save is written
  // here.
  std::function<std::string(std::string_view save)> save_relay;
};

class Store {
 public:
  // Opens (creating if needed) the store named by `url`. InvalidArgument for an unknown
  // scheme, an empty path or bad options (pool_size < 1); Unavailable if the file cannot be
  // opened or the server cannot be reached (the message says which and why);
  // FailedPrecondition if the store was migrated by a newer brig.
  static StatusOr<std::unique_ptr<Store>> Open(std::string_view url, const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // "sqlite" or "postgresql".
  std::string_view backend() const;

  // Asks the database something cheap: OK if it answers. For health checks; Unavailable
  // (or the store's error) otherwise.
  Status Ping();
  // Commits saves that stores opened with StoreOptions::save_relay handed over, together
  // (SQLite: one group, one flush), and returns, for each in order, the bytes its relay must
  // return (the new version, or the save's error: a Conflict, a missing session, a bad
  // file, all as if saved there); InvalidArgument, and nothing written, for bytes that are
  // not such a save: they come from another process and are checked. Thread-safe.
  std::vector<StatusOr<std::string>> ApplyRelayedSaves(const std::vector<std::string_view>& saves);

 private:
  friend struct internal::Access;
  explicit Store(std::unique_ptr<store::Store> backend);
  std::unique_ptr<store::Store> backend_;  // never null
};

// Microseconds since the Unix epoch, from the system clock: the unit of every timestamp in
// this API.
int64_t NowMicros();

}  // namespace brig

#endif  // BRIG_STORE_H_
