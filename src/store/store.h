// brig::store::Store: where sessions, their files and their interpreter state live between
// executions and across restarts of brig. One interface, two backends:
//   sqlite:PATH            embedded, the default (sqlite_store.h)
//   postgresql://...       a PostgreSQL server via libpq, shared by several brig nodes
//                          (postgres_store.h)
//
// Data model (schema: migrations.cc):
//   session  thread_id (key), created_at, last_accessed, expires_at, metadata (a JSON object)
//   file     (thread_id, path) (key), content (<= kMaxFileBytes), content_type, size,
//            created_at, modified_at. An empty directory of the guest is a file row with
//            content_type kDirectoryType and no content: saved and restored like a file,
//            never counted as one (file_count, GetFileUsage, quotas).
//   state    thread_id (key), snapshot bytes, format, guest_build_id, version, updated_at
//            snapshot_version: the version the snapshot bytes are of (<= version)
//   delta    (thread_id, version) (key), bytes, updated_at: what a save at `version` changed
//            since the state before it (StateWrite::delta), for each such save since
//            snapshot_version; a save of a whole state deletes them. (SQLite does not move
//            the state row's version for a delta: the state's version there is the greater
//            of the row's and its newest delta's. Callers see one version either way.)
//   fallback thread_id (key), bytes, version: a second form of the state that is expensive to
//            take (brig's portable snapshot), written with a save or after it (SaveFallback)
// Files and state belong to their session: deleting the session deletes them (the schema
// cascades). Every timestamp is int64 microseconds since the Unix epoch (UTC).
//
// The store is mechanism, not policy: it does not refuse an expired session (the session
// layer does) and does not apply per-session quotas (the session layer counts them with
// GetFileUsage before saving). It does refuse bad thread_ids and paths (validation.h) and
// files over kMaxFileBytes, the last both in C++ and in the schema.
//
// Versions. A session's state has a version: 0 before the first save, then +1 for each
// successful SaveExecution. SaveExecution with an expected version that is not the stored
// one changes nothing and returns Conflict: that is how a process holding a live session
// learns that another process saved a newer one.
//
// Group commit. Writes from different threads of one process are committed together: while
// one transaction commits (and waits for the disk), the writes that arrive queue up and then
// commit in the next transaction, each inside a savepoint of its own (SQLite; see
// group_commit.h). Each write stays atomic and isolated as if it ran alone (one that fails
// changes nothing and fails no other), and returns only once its transaction has committed:
// when it returns OK it is durable (SQLite: WAL with synchronous=FULL; PostgreSQL: its
// synchronous_commit). PostgreSQL groups the commits of concurrent connections itself.
//
// Thread-safety: a Store is safe for concurrent use from multiple threads without external
// synchronisation. Several processes may open the same store at once.
//
// Errors: every call returns a Status; none throws. InvalidArgument for a bad thread_id or
// path, NotFound for a missing session or file, ResourceExhausted for a file over 20 MiB,
// Conflict for a version mismatch, Unavailable when the database cannot be reached or used
// (retrying later may succeed), Internal otherwise. A failed call changes nothing.
#ifndef BRIG_STORE_STORE_H_
#define BRIG_STORE_STORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "brig/file_info.h"
#include "brig/session_info.h"
#include "brig/status.h"
#include "brig/store.h"
#include "store/validation.h"

namespace brig::store {

// The value types are the public API's (include/brig/), so that what the store returns is
// what callers of the API get, without a copy: NowMicros, StoreOptions (brig/store.h),
// SessionInfo, CleanupStats (brig/session_info.h), FileInfo, FileData and kDirectoryType
// (brig/file_info.h; a directory row has content_type kDirectoryType and no content).
using ::brig::CleanupStats;
using ::brig::FileData;
using ::brig::FileInfo;
using ::brig::kDirectoryType;
using ::brig::NowMicros;
using ::brig::SessionInfo;
using ::brig::SessionQuotas;
using ::brig::StoreOptions;

// A file to create or replace.
struct FileWrite {
  std::string path;
  std::string content;       // bytes
  std::string content_type;  // empty: DetectContentType(path, content)
};

struct FileUsage {
  int64_t file_count = 0;
  int64_t total_bytes = 0;
};

// What a save writes as the session's state. An empty snapshot with an empty format is a
// cleared state (what `reset` saves); a cleared state also clears the fallback.
struct StateWrite {
  std::string snapshot;  // bytes
  std::string format;
  std::string guest_build_id;
  // The fallback taken from the same state, stored with it (its version: the new one).
  // nullopt: the stored fallback stays, from an older version, until SaveFallback brings a
  // newer one.
  std::optional<std::string> fallback = std::nullopt;
  // `snapshot` is a delta: what changed since the stored state (which stays, with the deltas
  // saved since it), stored as a delta row of the new version. format and guest_build_id
  // are the stored state's. The store does not read the bytes; it refuses a delta over a
  // cleared or missing state (FailedPrecondition).
  bool delta = false;
};

// The session a save expects to find (Store::SaveExecution): the one made at created_at,
// expiring no earlier than expires_at (both as read when the saving process loaded its copy:
// an expiry moved later, as extend does, leaves the copy good; one moved earlier does not,
// since the copy's executions that do not save would go on trusting the later one).
struct ExpectedSession {
  int64_t created_at = 0;
  int64_t expires_at = 0;
};

// SaveExecution's arguments, owned (Store::SaveExecutions, relayed saves).
struct ExecutionSave {
  std::string thread_id;
  int64_t expected_version = 0;
  std::optional<ExpectedSession> expected_session;  // nullopt: not checked
  std::optional<StateWrite> state;
  std::vector<FileWrite> files_upserted;
  std::vector<std::string> files_deleted;
};

struct SessionState {
  std::string snapshot;
  std::string format;
  std::string guest_build_id;
  int64_t version = 0;
  int64_t updated_at = 0;
  // The newest fallback stored and the version it was taken at (<= version; 0 and empty if
  // none). Older than `version` when the state was saved without one since.
  std::string fallback;
  int64_t fallback_version = 0;
  // The version `snapshot` is of, and the deltas saved since it (StateWrite::delta), each
  // with its version, ascending (versions whose save kept the state have none). The state at
  // `version` is the snapshot with every delta applied in order.
  int64_t snapshot_version = 0;
  std::vector<std::pair<int64_t, std::string>> deltas;
  bool cleared() const { return snapshot.empty() && format.empty(); }
};

// What the group commit did since the store was opened (see Group commit above).
struct WriteStats {
  int64_t transactions = 0;  // transactions committed by this Store's writes
  int64_t writes = 0;        // writes they carried
  int64_t queued = 0;        // writes waiting for their transaction now
};

// Serialises executions in one session across threads and processes. Held while the object
// lives; released by its destructor (PostgreSQL: the release is sent then, and others get the
// lock as the server reads it, without the holder waiting for its answer), or by the
// operating system / the database server when the holding process dies. Not copyable or
// movable.
class SessionLock {
 public:
  SessionLock() = default;
  SessionLock(const SessionLock&) = delete;
  SessionLock& operator=(const SessionLock&) = delete;
  virtual ~SessionLock() = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite" or "postgresql".
  virtual std::string_view backend() const = 0;
  // The schema version this store is at after the migrations ran on open.
  virtual StatusOr<int> SchemaVersion() = 0;

  // ---- sessions ----
  // Creates a session expiring at `expires_at`, with its `quotas` (stored with it, read back
  // in SessionInfo::quotas). `metadata` must be a JSON object (or null, stored as {});
  // InvalidArgument otherwise, or for a quota out of range (internal::CheckQuotas).
  // AlreadyExists if the thread_id is taken.
  virtual Status CreateSession(std::string_view thread_id, int64_t expires_at, const nlohmann::json& metadata,
                               const SessionQuotas& quotas = {}) = 0;
  // NotFound if there is no such session.
  virtual StatusOr<SessionInfo> GetSession(std::string_view thread_id) = 0;
  virtual StatusOr<bool> SessionExists(std::string_view thread_id) = 0;
  // Sets last_accessed to the clock's now. NotFound if missing.
  virtual Status TouchSession(std::string_view thread_id) = 0;
  // Sets expires_at (to extend or shorten). NotFound if missing.
  virtual Status SetSessionExpiry(std::string_view thread_id, int64_t expires_at) = 0;
  // Sets expires_at to max(expires_at, now) + by in one statement, so that concurrent
  // extensions add up (two extensions by 30 days add 60), and returns the new expires_at.
  // NotFound if missing.
  virtual StatusOr<int64_t> ExtendSessionExpiry(std::string_view thread_id, int64_t now, int64_t by) = 0;
  // Replaces the metadata (a JSON object, or null for {}). NotFound if missing.
  virtual Status SetSessionMetadata(std::string_view thread_id, const nlohmann::json& metadata) = 0;
  // Deletes the session with its files and state. NotFound if missing.
  virtual Status DeleteSession(std::string_view thread_id) = 0;
  // Every session, ordered by thread_id, with file counts and bytes.
  virtual StatusOr<std::vector<SessionInfo>> ListSessions() = 0;
  // thread_ids of sessions with expires_at <= now, ordered.
  virtual StatusOr<std::vector<std::string>> ListExpiredSessions(int64_t now) = 0;

  // ---- files ----
  // Creates or replaces one file (created_at is kept on replace). NotFound if the session
  // is missing; ResourceExhausted over kMaxFileBytes. Does not change the state version:
  // callers that must make live sessions notice use SaveExecution.
  virtual Status PutFile(std::string_view thread_id, const FileWrite& file) = 0;
  // Reads `limit` bytes from `offset` (limit < 0: to the end; offset past the end: empty).
  // NotFound if the session or the file is missing. REQUIRES: offset >= 0.
  virtual StatusOr<FileData> GetFile(std::string_view thread_id, std::string_view path,
                                     int64_t offset = 0, int64_t limit = -1) = 0;
  // NotFound if the file is missing.
  virtual Status DeleteFile(std::string_view thread_id, std::string_view path) = 0;
  // Files whose path starts with `prefix` (a plain string prefix: "/tmp/" lists under /tmp,
  // "" lists all), ordered by path, without content. NotFound if the session is missing.
  virtual StatusOr<std::vector<FileInfo>> ListFiles(std::string_view thread_id,
                                                    std::string_view prefix = "") = 0;
  // Count and bytes of a session's files. NotFound if the session is missing.
  virtual StatusOr<FileUsage> GetFileUsage(std::string_view thread_id) = 0;

  // ---- state ----
  // The stored state, or nullopt if never saved. NotFound if the session is missing.
  virtual StatusOr<std::optional<SessionState>> GetState(std::string_view thread_id) = 0;
  // In ONE transaction: checks that the stored version (0 if none) equals
  // `expected_version`, writes `state` (nullopt: keep the stored snapshot, still bump the
  // version because the files changed), upserts `files_upserted`, deletes
  // `files_deleted` (missing ones are ignored), sets the session's last_accessed to the
  // clock's now (a save is a use: no TouchSession needed), and returns the new version
  // (expected_version + 1). Conflict if the version differs; NotFound if the session is
  // missing; InvalidArgument / ResourceExhausted for a bad file. On any error nothing is
  // changed; a crash at any moment leaves either the old or the new state and files.
  // A path may not appear twice across files_upserted and files_deleted.
  // Concurrent calls (other sessions, other threads) commit together (Group commit above).
  // With `expected_session` the save also checks that the session is still that one: made
  // at its created_at (not deleted and made again), its expiry not moved earlier; if not it
  // changes nothing and returns Conflict (for a missing session too). A process that runs
  // its live copy of a session without reading the store first learns here that the copy is
  // stale (Sessions::Execute).
  virtual StatusOr<int64_t> SaveExecution(std::string_view thread_id, int64_t expected_version,
                                          const std::optional<ExpectedSession>& expected_session,
                                          const std::optional<StateWrite>& state,
                                          const std::vector<FileWrite>& files_upserted,
                                          const std::vector<std::string>& files_deleted) = 0;
  // The same without the session check.
  StatusOr<int64_t> SaveExecution(std::string_view thread_id, int64_t expected_version,
                                  const std::optional<StateWrite>& state, const std::vector<FileWrite>& files_upserted,
                                  const std::vector<std::string>& files_deleted) {
    return SaveExecution(thread_id, expected_version, std::nullopt, state, files_upserted, files_deleted);
  }

  // SaveExecution of each of `saves`, in one call: their outcomes, in order, each as if
  // saved alone (one failing fails no other). The saves commit together where the backend
  // groups commits (SQLite: one group, so one thread waits for all of them); the default
  // saves them one after another. They apply in order (a second save of one session expects
  // the version the first made).
  virtual std::vector<StatusOr<int64_t>> SaveExecutions(const std::vector<ExecutionSave>& saves) {
    std::vector<StatusOr<int64_t>> out;
    out.reserve(saves.size());
    for (const ExecutionSave& s : saves) {
      out.push_back(SaveExecution(s.thread_id, s.expected_version, s.expected_session, s.state, s.files_upserted,
                                  s.files_deleted));
    }
    return out;
  }

  // The stored state's version (0 if never saved), without reading the snapshot: what a
  // process holding the session live checks before each execution. NotFound if the session
  // is missing.
  virtual StatusOr<int64_t> GetStateVersion(std::string_view thread_id) = 0;
  // The session (as GetSession, except that file_count and total_bytes may be left 0: an
  // execution does not use them, and counting them reads the session's files) and its
  // state's version (as GetStateVersion) in one read: what an execution reads before it
  // runs. NotFound if the session is missing.
  virtual StatusOr<std::pair<SessionInfo, int64_t>> GetSessionAndStateVersion(std::string_view thread_id) {
    StatusOr<SessionInfo> info = GetSession(thread_id);
    if (!info.ok()) return info.status();
    StatusOr<int64_t> version = GetStateVersion(thread_id);
    if (!version.ok()) return version.status();
    return std::make_pair(std::move(info.value()), version.value());
  }
  // Stores `fallback` as the fallback of the state saved at `version`, after that save (a
  // fallback that is slow to take is written once the save has answered). Written only if
  // the stored state's version is `version` or later and the stored fallback is from an
  // older version, so that fallbacks only move forward and one taken before a reset (or
  // before a save that brought its own) never lands after it; returns whether it was
  // written. Never changes the state or its version; never Conflict. NotFound if the
  // session is missing.
  virtual StatusOr<bool> SaveFallback(std::string_view thread_id, int64_t version, std::string_view fallback) = 0;

  // Counters of the group commit (see above).
  virtual WriteStats GetWriteStats() const = 0;

  // ---- whole sessions (fork, snapshot import) ----
  // Creates the session `thread_id` whole, in ONE transaction: the session row (expiring at
  // `expires_at`, with `metadata`: a JSON object or null), `files` and, if given, `state` at
  // version 1. AlreadyExists if the thread_id is taken; InvalidArgument / ResourceExhausted
  // for a bad file or metadata (checked before anything is written; a path may not appear
  // twice). On any error, a crash included, no part of the session exists.
  virtual Status CreateSessionWith(std::string_view thread_id, int64_t expires_at, const nlohmann::json& metadata,
                                   const std::optional<StateWrite>& state, const std::vector<FileWrite>& files) = 0;
  // Creates the session `to` in ONE transaction as a copy of `from`'s files (contents,
  // content types and timestamps) and quotas, with `state` (if given) as its state at version 1,
  // expiring at `expires_at`, with `metadata`. The same transaction checks that from's state
  // version is still `from_version` (0: none saved), so that the copy and the state the
  // caller read are of one moment: Conflict otherwise. NotFound if `from` is missing;
  // AlreadyExists if `to` exists. On any error, a crash included, no part of `to` exists.
  virtual Status CopySession(std::string_view from, std::string_view to, int64_t from_version, int64_t expires_at,
                             const nlohmann::json& metadata, const std::optional<StateWrite>& state) = 0;

  // ---- cleanup ----
  // Deletes sessions with expires_at <= now (with their files, state, deltas and fallback)
  // and orphaned files, states, deltas and fallbacks (rows whose session is gone, e.g.
  // written by a client without foreign keys).
  // With dry_run, changes nothing and returns what would be deleted.
  virtual StatusOr<CleanupStats> Cleanup(int64_t now, bool dry_run) = 0;

  // ---- the nodes' shared image seed ----
  // The seed that every node on this store makes its process image with, so that a page
  // snapshot saved by one node restores on the others of the same build (an image is a
  // function of the build and its seed). The first caller's `proposed` is stored and wins;
  // every later call, on any node, returns it. FailedPrecondition on a store that only one
  // machine uses (SQLite: the processes there share the image cache instead).
  virtual StatusOr<uint64_t> SharedImageSeed(uint64_t proposed) {
    (void)proposed;
    return Status::FailedPrecondition("this store keeps no shared image seed");
  }

  // ---- locking ----
  // Blocks until this caller holds the session's lock or `timeout` passes
  // (DeadlineExceeded). The session need not exist. Two different thread_ids may (rarely)
  // share a lock: they hash to 64 bits. Holding the lock does not block other Store calls;
  // it only excludes other LockSession holders.
  virtual StatusOr<std::unique_ptr<SessionLock>> LockSession(
      std::string_view thread_id,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(60'000)) = 0;
};

// Opens (creating if needed) the store named by `url` and applies pending migrations, under
// a lock so that concurrent opens are safe:
//   sqlite:PATH or sqlite://PATH (PATH's directory must exist and be writable),
//   postgresql://... or postgres://... (libpq URI; parameters such as host=/socket/dir work).
// InvalidArgument for an unknown scheme or an empty path; Unavailable if the file cannot be
// opened or the server cannot be reached (the message says which and why);
// FailedPrecondition if the store was migrated by a newer brig.
StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url, const StoreOptions& options = {});

// 64-bit FNV-1a of the thread_id: names session locks (lock file, advisory lock key).
uint64_t ThreadIdHash(std::string_view thread_id);

}  // namespace brig::store

#endif  // BRIG_STORE_STORE_H_
