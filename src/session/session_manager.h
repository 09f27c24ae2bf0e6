// brig::session::SessionManager: the policy over the store's sessions; the public
// brig::SessionManager (include/brig/session_manager.h, whose contract this keeps) is a thin
// handle over it. The store keeps rows;
// this class decides what a session's life means: when it expires, how it is extended, what
// using an expired one does, how much it may hold (quotas), how it is reset and cleaned up.
// The CLI (`brig sessions`, `brig cleanup`), the file operations (files/file_service.h) and
// stateful execution all go through it, so the rules are the same wherever a session is used.
//
// Expiry. A session expires at expires_at (a session with expires_at <= now is expired).
// An expired session still exists (show, list, extend and delete work on it) but cannot be
// used: GetOrCreate, Use and everything built on them return FailedPrecondition saying when
// it expired and what to do, until it is extended (then it is usable again, with its state
// and files) or cleaned up (then it is gone, and GetOrCreate makes a fresh one).
//
// Extending adds N days to max(now, expires_at): extending a live session lengthens what it
// has left, extending an expired one gives it N days from now. Either way the session is
// then good for at least N days.
//
// Quotas. Per session at most `max_files_per_session` files holding at most
// `max_bytes_per_session` bytes (each file also <= store::kMaxFileBytes). The store does not
// enforce these; every writer asks CheckQuota before saving (the file operations do it under
// the session's lock, so their count is exact). Executions (brig::Sessions) also make them
// the limits of the guest's file system, so that the guest's write fails, not the save.
//
// Thread-safety: a SessionManager is safe for concurrent use from multiple threads (it holds
// no mutable state; the store is thread-safe). It borrows `store`, which must outlive it.
//
// Errors: every call returns a Status; none throws. InvalidArgument for a bad thread_id or
// argument, NotFound for a missing session, FailedPrecondition for an expired one,
// AlreadyExists from Create, ResourceExhausted from CheckQuota, and whatever the store
// reports (Unavailable, Internal). A failed call changes nothing (beyond, at most, the
// session's last_accessed).
#ifndef BRIG_SESSION_SESSION_MANAGER_H_
#define BRIG_SESSION_SESSION_MANAGER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "brig/session_manager.h"
#include "brig/status.h"
#include "brig/text.h"
#include "store/store.h"

namespace brig::session {

// The public API's (brig/session_manager.h, brig/text.h). kMaxExpiryDays keeps every
// timestamp far from int64 overflow.
using ::brig::FormatBytes;
using ::brig::FormatTimestamp;
using ::brig::ForkOptions;
using ::brig::kMaxExpiryDays;
using ::brig::kMicrosPerDay;
using ::brig::SessionOptions;

class SessionManager {
 public:
  // Borrows `store` for the manager's lifetime.
  explicit SessionManager(store::Store& store, SessionOptions options = {});

  const SessionOptions& options() const { return options_; }

  // What a holder of live sessions (brig::Sessions) must hear of before a session's stored
  // form is used outside its executions, so that the store has what it owes it (executions
  // run with a deferred save) and it drops what the use makes stale.
  enum class StoreUse {
    kRead,    // the stored state or files are read (fork, export, file reads)
    kChange,  // they are about to change (file writes); the caller holds the session's lock
    kGone,    // the state is cleared or the session deleted: what is owed is moot
  };
  using StoreUseHook = std::function<void(std::string_view thread_id, StoreUse use, bool lock_held)>;
  // Set once, before the manager is shared.
  void SetStoreUseHook(StoreUseHook hook) { store_use_hook_ = std::move(hook); }
  // Calls the hook, if any. REQUIRES: lock_held says whether the caller holds the session's
  // store lock (kChange: it must).
  void BeforeStoreUse(std::string_view thread_id, StoreUse use, bool lock_held) const {
    if (store_use_hook_) store_use_hook_(thread_id, use, lock_held);
  }
  store::Store& store() const { return store_; }
  // The clock's now, in microseconds.
  int64_t Now() const { return options_.clock(); }

  // The session, created with the default expiry and empty metadata if it does not exist;
  // its last_accessed is set to now, unless !touch (for a caller that saves next:
  // store.SaveExecution sets it, without a write of its own). FailedPrecondition if it
  // exists and is expired. Safe when several processes create the same session at once
  // (one creates, all get it).
  StatusOr<store::SessionInfo> GetOrCreate(std::string_view thread_id, bool touch = true);

  // The existing, unexpired session, with last_accessed set to now: for operations that
  // must not create one (reading files). NotFound if missing, FailedPrecondition if expired.
  StatusOr<store::SessionInfo> Use(std::string_view thread_id);

  // Creates a session expiring `expiry_days` from now (nullopt: the default). `metadata`:
  // a JSON object (null means {}). AlreadyExists if the thread_id is taken; InvalidArgument
  // for days outside 1..kMaxExpiryDays or metadata that is not an object.
  // `quotas` as brig::SessionManager::Create.
  StatusOr<store::SessionInfo> Create(std::string_view thread_id, std::optional<int64_t> expiry_days = std::nullopt,
                                      const nlohmann::json& metadata = nlohmann::json::object(),
                                      const store::SessionQuotas& quotas = {});

  // Each of `own` (a session's quotas), else the options' own: every field set.
  store::SessionQuotas EffectiveQuotas(const store::SessionQuotas& own) const;

  StatusOr<bool> Exists(std::string_view thread_id);

  // The session as stored (expired or not; last_accessed unchanged). NotFound if missing.
  StatusOr<store::SessionInfo> Get(std::string_view thread_id);

  // Moves expires_at to max(now, expires_at) + days and returns the updated session.
  // InvalidArgument for days outside 1..kMaxExpiryDays; NotFound if missing.
  StatusOr<store::SessionInfo> Extend(std::string_view thread_id, int64_t days);

  // Deletes the session with its state and files. NotFound if missing.
  Status Delete(std::string_view thread_id);

  // Every session (expired ones too), ordered by thread_id.
  StatusOr<std::vector<store::SessionInfo>> List();

  // Clears the session's interpreter state and keeps its files, with their saved modes,
  // extended attributes and named pipes: the next execution starts from a fresh interpreter.
  // Saves a cleared state (or a fresh one holding only those, state_format.h) with
  // store.SaveExecution (so a process holding the session live notices the new version and
  // drops its interpreter), under the session's lock. NotFound if missing,
  // FailedPrecondition if expired, DeadlineExceeded if an execution holds the lock past
  // options().lock_timeout.
  // REQUIRES: the calling thread does not hold the session's lock.
  Status Reset(std::string_view thread_id);

  // As brig::SessionManager::Fork: under src's lock, reads its state (marked to reseed
  // `random`) and copies it with src's files into a new dst in one store transaction
  // (Store::CopySession, which re-checks src's state version).
  StatusOr<store::SessionInfo> Fork(std::string_view src, std::string_view dst, const ForkOptions& options = {});

  // Deletes the sessions expired at now (with their state and files) and orphaned files and
  // states. With dry_run changes nothing and returns what would be deleted.
  StatusOr<store::CleanupStats> Cleanup(bool dry_run);

  // True iff `session` is expired at now.
  bool IsExpired(const store::SessionInfo& session) const { return session.expires_at <= Now(); }
  // OK if `session` is usable now, else FailedPrecondition saying when it expired and how to
  // revive it (brig sessions extend) or drop it (brig cleanup).
  Status CheckNotExpired(const store::SessionInfo& session) const;

  // OK iff a session with quotas `own` (its SessionInfo::quotas) whose files would total
  // `after` is within its effective quotas; else ResourceExhausted naming the quota, the
  // numbers and the thread_id.
  Status CheckQuota(std::string_view thread_id, const store::SessionQuotas& own, const store::FileUsage& after) const;
  // As above, but only growth is refused: a count (or byte total) that is over its quota but
  // not larger than `before` passes, so deleting or shrinking files in a session that is
  // over a (since lowered) quota still works.
  Status CheckQuota(std::string_view thread_id, const store::SessionQuotas& own, const store::FileUsage& before,
                    const store::FileUsage& after) const;
  // ResourceExhausted if one file of `size` bytes is over the session's max_file_bytes.
  Status CheckFileSize(std::string_view thread_id, const store::SessionQuotas& own, std::string_view path,
                       int64_t size) const;

 private:
  Status CheckDays(int64_t days) const;

  store::Store& store_;
  const SessionOptions options_;
  StoreUseHook store_use_hook_;
};

}  // namespace brig::session

#endif  // BRIG_SESSION_SESSION_MANAGER_H_
