// brig::SessionManager: sessions without executing code: create, inspect, extend, delete,
// reset, fork and clean them up. What `brig sessions` and `brig cleanup` run, and what a
// server's session endpoints call. Executions are brig::Sessions (brig/sessions.h), which
// holds one of these (Sessions::manager()); files are brig::FileService (brig/files.h).
//
//   auto store = brig::Store::Open("sqlite:/tmp/brig.db");
//   brig::SessionManager sessions(*store.value());
//   sessions.Create("agent-7", /*expiry_days=*/30, {{"owner", "me"}});
//   sessions.Fork("agent-7", "agent-7-try");      // same variables and files, then apart
//
// A session is named by a thread_id: 1..255 bytes of UTF-8 without control characters.
//
// Expiry. A session expires at expires_at (expired once expires_at <= now). An expired
// session still exists (Get, List, Extend and Delete work on it) but cannot be used:
// GetOrCreate, executions, file operations, Reset, Fork and snapshot export return
// FailedPrecondition saying when it expired and what to do, until it is extended (then it
// is usable again, with its state and files) or cleaned up (then it is gone, and
// GetOrCreate makes a fresh one). Extending adds N days to max(now, expires_at).
//
// Quotas. Per session at most SessionOptions::max_files_per_session files holding at most
// max_bytes_per_session bytes (each file also <= kMaxFileBytes, brig/file_info.h). A session
// may be created with lower quotas of its own (SessionQuotas, brig/session_info.h: stored
// with it, the same in every process and node); EffectiveQuotas says what applies. Every
// writer (executions, FileService, Fork, snapshot import) checks them before saving.
//
// Thread-safety: safe for concurrent use from multiple threads; several processes (and, on
// PostgreSQL, several machines) may manage the same store at once. Writes to one session
// (executions, file writes, Reset, Fork of it) are serialised by the store's session lock.
// Borrows the Store, which must outlive the manager.
//
// Errors: every call returns a Status; none throws. InvalidArgument for a bad thread_id or
// argument, NotFound for a missing session, FailedPrecondition for an expired one,
// AlreadyExists when the session to create exists, ResourceExhausted over a quota,
// DeadlineExceeded when the session's lock stayed taken past lock_timeout, and the store's
// errors (Unavailable when it cannot be reached: retrying may help; Internal). A failed call
// changes nothing (beyond, at most, the session's last_accessed).
#ifndef BRIG_SESSION_MANAGER_H_
#define BRIG_SESSION_MANAGER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "brig/session_info.h"
#include "brig/status.h"
#include "brig/store.h"

namespace brig {

namespace session {
class SessionManager;
}

inline constexpr int64_t kMicrosPerDay = int64_t{86'400} * 1'000'000;
// Longest expiry that Create, Extend and Fork accept, in days (100 years).
inline constexpr int64_t kMaxExpiryDays = 36'500;

struct SessionOptions {
  // Expiry of a session made by GetOrCreate (or by an execution), or by Create, Fork or a
  // snapshot import without an explicit one. Default 180 days. 1..kMaxExpiryDays.
  int64_t default_expiry_days = 180;
  // Files one session may hold. Default 1000.
  int64_t max_files_per_session = 1000;
  // Sum of the sizes of one session's files. Default 200 MiB.
  int64_t max_bytes_per_session = int64_t{200} << 20;
  // How long Reset, Fork, snapshot export and the file writes wait for the session's lock
  // while an execution (or another writer) holds it; then DeadlineExceeded. Default 60 s.
  std::chrono::milliseconds lock_timeout{60'000};
  // Microseconds since the Unix epoch; decides what is expired. Default: the system clock.
  // Tests inject a fake clock (give the Store the same one).
  std::function<int64_t()> clock;
};

// How Fork makes the new session.
struct ForkOptions {
  // Days until the new session expires (nullopt: SessionOptions::default_expiry_days).
  std::optional<int64_t> expiry_days;
  // The new session's metadata, a JSON object (nullopt: a copy of the source's).
  std::optional<nlohmann::json> metadata;
};

class SessionManager {
 public:
  // Borrows `store` for the manager's lifetime.
  explicit SessionManager(Store& store, SessionOptions options = {});
  ~SessionManager();
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;

  const SessionOptions& options() const;
  // The clock's now, in microseconds.
  int64_t Now() const;

  // The session, created with the default expiry and empty metadata if it does not exist;
  // its last_accessed is set to now. FailedPrecondition if it exists and is expired. Safe
  // when several processes create the same session at once (one creates, all get it).
  StatusOr<SessionInfo> GetOrCreate(std::string_view thread_id);

  // Creates a session expiring `expiry_days` from now (nullopt: the default) with
  // `metadata`, a JSON object (null means {}), and `quotas` of its own. AlreadyExists if the
  // thread_id is taken; InvalidArgument for days outside 1..kMaxExpiryDays, metadata that is
  // not an object, or a quota below 1 or above this manager's own (max_files_per_session,
  // max_bytes_per_session, kMaxFileBytes): a session's quotas only lower them.
  StatusOr<SessionInfo> Create(std::string_view thread_id, std::optional<int64_t> expiry_days = std::nullopt,
                               const nlohmann::json& metadata = nlohmann::json::object(),
                               const SessionQuotas& quotas = {});

  // The quotas that hold for `session`: each of its own, else this manager's (so every
  // field is set).
  SessionQuotas EffectiveQuotas(const SessionInfo& session) const;

  // The session as stored (expired or not; last_accessed unchanged). NotFound if missing.
  StatusOr<SessionInfo> Get(std::string_view thread_id);

  StatusOr<bool> Exists(std::string_view thread_id);

  // Every session (expired ones too), ordered by thread_id (bytewise).
  StatusOr<std::vector<SessionInfo>> List();

  // Moves expires_at to max(now, expires_at) + days and returns the updated session.
  // Concurrent extensions add up. InvalidArgument for days outside 1..kMaxExpiryDays;
  // NotFound if missing.
  StatusOr<SessionInfo> Extend(std::string_view thread_id, int64_t days);

  // Deletes the session with its interpreter state and files. NotFound if missing.
  Status Delete(std::string_view thread_id);

  // Clears the session's interpreter state and keeps its files, with their saved modes,
  // extended attributes and named pipes: its next execution starts from a fresh interpreter
  // (in every process: one holding the session live notices).
  // NotFound if missing, FailedPrecondition if expired, DeadlineExceeded if an execution
  // holds the session past options().lock_timeout.
  // REQUIRES: the calling thread holds no lock of this session (is not inside an execution
  // of it).
  Status Reset(std::string_view thread_id);

  // Makes `dst`, a new session holding `src`'s interpreter state, files and quotas (and, unless
  // options say otherwise, its metadata; the expiry is a new one). From then on the two
  // are apart: what one does, the other does not see, and the fork's `random` draws its own
  // numbers. Atomic: taken under src's session lock (so not in the middle of an execution
  // of src) and written in one store transaction; on any error no dst exists.
  // Returns dst. NotFound if src is missing; FailedPrecondition if src is expired;
  // AlreadyExists if dst exists (or src == dst); InvalidArgument for bad ids, days or
  // metadata; ResourceExhausted if src holds more than dst's quotas allow;
  // DeadlineExceeded if src stayed locked past options().lock_timeout.
  // REQUIRES: the calling thread holds no lock of src.
  StatusOr<SessionInfo> Fork(std::string_view src, std::string_view dst, const ForkOptions& options = {});

  // Deletes the sessions expired at now (with their state and files) and orphaned files
  // and states. With dry_run changes nothing and returns what would be deleted.
  StatusOr<CleanupStats> Cleanup(bool dry_run);

  // True iff `session` is expired at now.
  bool IsExpired(const SessionInfo& session) const;

 private:
  friend struct internal::Access;
  std::unique_ptr<session::SessionManager> impl_;  // never null
};

}  // namespace brig

#endif  // BRIG_SESSION_MANAGER_H_
