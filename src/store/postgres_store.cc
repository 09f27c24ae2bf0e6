#include "store/postgres_store.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "store/migrations.h"
#include "store/pg_conn.h"
#include "store/pg_pool.h"
#include "store/store_internal.h"

namespace brig::store {
namespace {

using internal::SessionNotFound;
using pg::Params;
using pg::PooledConn;
using pg::Result;
using pg::Txn;

// pg_advisory_xact_lock key for migrations: "brigMIGR".
constexpr int64_t kMigrationLockKey = 0x627269674d494752;

constexpr const char* kSessionColumns =
    "SELECT s.thread_id, s.created_at, s.last_accessed, s.expires_at, s.metadata::text,"
    " (SELECT count(*) FROM brig_files f WHERE f.thread_id = s.thread_id AND f.content_type <> 'inode/directory')::bigint,"
    " (SELECT coalesce(sum(size), 0) FROM brig_files f WHERE f.thread_id = s.thread_id)::bigint,"
    " s.quotas::text"
    " FROM brig_sessions s ";

SessionInfo ReadSession(const Result& r, int row) {
  SessionInfo info;
  info.thread_id = r.Bytes(row, 0);
  info.created_at = r.Int(row, 1);
  info.last_accessed = r.Int(row, 2);
  info.expires_at = r.Int(row, 3);
  info.metadata = internal::ParseMetadata(r.Bytes(row, 4));
  info.file_count = r.Int(row, 5);
  info.total_bytes = r.Int(row, 6);
  info.quotas = internal::ParseQuotas(r.Bytes(row, 7));
  return info;
}

// The statistics of a cleanup, over five row sets its WITH clause names: doomed
// (thread_ids of expired sessions), orphan_files (size), orphan_states, orphan_fallbacks and
// orphan_deltas (bytes). The
// cascading deletes happen after the statement's snapshot, so the SELECT still sees the
// doomed sessions' files.
#define BRIG_CLEANUP_STATS                                                                      \
  " SELECT (SELECT count(*) FROM doomed)::bigint,"                                              \
  " ((SELECT count(*) FROM brig_files WHERE thread_id IN (SELECT thread_id FROM doomed))"       \
  "  + (SELECT count(*) FROM orphan_files))::bigint,"                                           \
  " ((SELECT coalesce(sum(size), 0) FROM brig_files"                                            \
  "   WHERE thread_id IN (SELECT thread_id FROM doomed))"                                       \
  "  + (SELECT coalesce(sum(octet_length(snapshot)), 0) FROM brig_session_state"                \
  "     WHERE thread_id IN (SELECT thread_id FROM doomed))"                                     \
  "  + (SELECT coalesce(sum(octet_length(fallback)), 0) FROM brig_session_fallback"             \
  "     WHERE thread_id IN (SELECT thread_id FROM doomed))"                                     \
  "  + (SELECT coalesce(sum(octet_length(delta)), 0) FROM brig_state_deltas"                    \
  "     WHERE thread_id IN (SELECT thread_id FROM doomed))"                                     \
  "  + (SELECT coalesce(sum(bytes), 0) FROM orphan_deltas)"                                     \
  "  + (SELECT coalesce(sum(size), 0) FROM orphan_files)"                                       \
  "  + (SELECT coalesce(sum(bytes), 0) FROM orphan_states)"                                     \
  "  + (SELECT coalesce(sum(bytes), 0) FROM orphan_fallbacks))::bigint"

constexpr const char* kCleanup =
    "WITH doomed AS (DELETE FROM brig_sessions WHERE expires_at <= $1 RETURNING thread_id),"
    " orphan_files AS (DELETE FROM brig_files f WHERE NOT EXISTS"
    "   (SELECT 1 FROM brig_sessions s WHERE s.thread_id = f.thread_id) RETURNING size),"
    " orphan_states AS (DELETE FROM brig_session_state st WHERE NOT EXISTS"
    "   (SELECT 1 FROM brig_sessions s WHERE s.thread_id = st.thread_id)"
    "   RETURNING octet_length(snapshot) AS bytes),"
    " orphan_fallbacks AS (DELETE FROM brig_session_fallback fb WHERE NOT EXISTS"
    "   (SELECT 1 FROM brig_sessions s WHERE s.thread_id = fb.thread_id)"
    "   RETURNING octet_length(fallback) AS bytes),"
    " orphan_deltas AS (DELETE FROM brig_state_deltas d WHERE NOT EXISTS"
    "   (SELECT 1 FROM brig_sessions s WHERE s.thread_id = d.thread_id)"
    "   RETURNING octet_length(delta) AS bytes)" BRIG_CLEANUP_STATS;

constexpr const char* kCleanupDryRun =
    "WITH doomed AS (SELECT thread_id FROM brig_sessions WHERE expires_at <= $1),"
    " orphan_files AS (SELECT size FROM brig_files f WHERE NOT EXISTS"
    "   (SELECT 1 FROM brig_sessions s WHERE s.thread_id = f.thread_id)),"
    " orphan_states AS (SELECT octet_length(snapshot) AS bytes FROM brig_session_state st"
    "   WHERE NOT EXISTS (SELECT 1 FROM brig_sessions s WHERE s.thread_id = st.thread_id)),"
    " orphan_fallbacks AS (SELECT octet_length(fallback) AS bytes FROM brig_session_fallback fb"
    "   WHERE NOT EXISTS (SELECT 1 FROM brig_sessions s WHERE s.thread_id = fb.thread_id)),"
    " orphan_deltas AS (SELECT octet_length(delta) AS bytes FROM brig_state_deltas d"
    "   WHERE NOT EXISTS (SELECT 1 FROM brig_sessions s WHERE s.thread_id = d.thread_id))"
    BRIG_CLEANUP_STATS;

#undef BRIG_CLEANUP_STATS

constexpr const char* kUpsertFile =
    "INSERT INTO brig_files (thread_id, path, content, content_type, size, created_at, modified_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (thread_id, path) DO UPDATE SET"
    " content = EXCLUDED.content, content_type = EXCLUDED.content_type,"
    " size = EXCLUDED.size, modified_at = EXCLUDED.modified_at";

// Connections for session locks (each lock holds one for as long as it lives), kept for the
// next lock once released: opening one costs a new server process and authentication, which
// measured 15 ms per execution (bench/save_path_bench). Shared with the locks, which may
// outlive the store.
//
// A lock's release is sent without waiting for the server's answer (Unlocking): the answer
// is read when the connection is next taken, long since there, so an execution does not
// wait a round trip for its unlock (bench/RESULTS.md, stop 31). The server applies the
// unlock in order, before anything sent after it on any connection can see it; a connection
// whose unlock did not answer true is closed, which releases whatever it held.
class LockConnections {
 public:
  LockConnections(std::string url, const StoreOptions& options) : url_(std::move(url)), options_(options) {}

  StatusOr<std::unique_ptr<pg::Conn>> Take() {
    while (true) {
      Kept k;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (idle_.empty()) break;
        k = std::move(idle_.back());
        idle_.pop_back();
      }
      if (k.unlock_pending) {
        StatusOr<Result> r = k.conn->Receive("unlock");
        if (!r.ok() || r.value().rows() != 1 || !r.value().Bool(0, 0)) continue;  // in doubt: closed
        if (!k.conn->healthy() || !k.conn->idle()) continue;
      }
      if (k.conn->StillOpenWhileIdle()) return std::move(k.conn);  // else closed by the server while kept
    }
    return pg::Conn::Open(url_, options_);
  }

  // `conn` holds no lock any more (checked by the caller).
  void Give(std::unique_ptr<pg::Conn> conn) {
    if (!conn->healthy() || !conn->idle()) return;
    Keep(Kept{std::move(conn), false});
  }

  // Sends the release of `key`, which `conn` holds, and keeps `conn` with the answer still to
  // read (Take reads it). If it cannot be sent, `conn` is closed, which releases the lock.
  void Unlocking(std::unique_ptr<pg::Conn> conn, int64_t key) {
    Params p;
    p.Int(key);
    if (!conn->Send("SELECT pg_advisory_unlock($1::bigint)", p, "unlock").ok()) return;
    Keep(Kept{std::move(conn), true});
  }

 private:
  struct Kept {
    std::unique_ptr<pg::Conn> conn;
    bool unlock_pending = false;  // an unlock sent, its answer not read yet
  };
  void Keep(Kept k) {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdle) idle_.push_back(std::move(k));
  }

  static constexpr size_t kMaxIdle = 64;
  const std::string url_;
  const StoreOptions options_;
  std::mutex mu_;
  std::vector<Kept> idle_;  // GUARDED_BY(mu_)
};

// A session lock: pg_advisory_lock(key) held on a connection of its own.
class AdvisoryLock final : public SessionLock {
 public:
  AdvisoryLock(std::shared_ptr<LockConnections> home, std::unique_ptr<pg::Conn> conn, int64_t key)
      : home_(std::move(home)), conn_(std::move(conn)), key_(key) {}
  // Unlocks explicitly (a closed connection's locks go only when its backend exits, a moment
  // later, and the next waiter should not pay for that), without waiting for the answer.
  ~AdvisoryLock() override { home_->Unlocking(std::move(conn_), key_); }

 private:
  const std::shared_ptr<LockConnections> home_;
  std::unique_ptr<pg::Conn> conn_;  // the session holding the lock
  const int64_t key_;
};

class PostgresStore final : public Store {
 public:
  PostgresStore(std::string url, const StoreOptions& options)
      : url_(std::move(url)),
        options_(options),
        pool_(url_, options),
        lock_connections_(std::make_shared<LockConnections>(url_, options)),
        clock_(internal::ClockOf(options)) {}

  std::string_view backend() const override { return "postgresql"; }

  Status Migrate() {
    StatusOr<PooledConn> c = pool_.Checkout();
    if (!c.ok()) return c.status();
    pg::Conn& conn = *c.value();
    Txn txn(conn);
    if (!txn.Begun().ok()) return txn.Begun();
    Params key;
    key.Int(kMigrationLockKey);
    if (Status s = conn.Exec("SELECT pg_advisory_xact_lock($1::bigint)", key, "cannot take the migration lock").status();
        !s.ok()) {
      return s;
    }
    if (Status s = conn.ExecScript("CREATE TABLE IF NOT EXISTS brig_schema_version"
                                   " (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
                                   "cannot create the schema version table");
        !s.ok()) {
      return s;
    }
    StatusOr<Result> r =
        conn.Exec("SELECT coalesce(max(version), 0)::bigint FROM brig_schema_version", "cannot read the schema version");
    if (!r.ok()) return r.status();
    const int64_t current = r.value().Int(0, 0);
    const auto migrations = PostgresMigrations();
    if (current > migrations.back().version) {
      return Status::FailedPrecondition("the PostgreSQL store is at schema version " + std::to_string(current) +
                                        ", newer than this brig knows (" +
                                        std::to_string(migrations.back().version) + "): upgrade brig");
    }
    for (const Migration& m : migrations) {
      if (m.version <= current) continue;
      if (Status s = conn.ExecScript(m.sql, "schema migration " + std::to_string(m.version) + " failed"); !s.ok()) {
        return s;
      }
      Params p;
      p.Int(m.version).Int(NowMicros());
      if (Status s = conn.Exec("INSERT INTO brig_schema_version (version, applied_at) VALUES ($1, $2)", p,
                               "cannot record the schema version")
                         .status();
          !s.ok()) {
        return s;
      }
    }
    return txn.Commit();
  }

  StatusOr<int> SchemaVersion() override {
    StatusOr<Result> r = Query("SELECT coalesce(max(version), 0)::bigint FROM brig_schema_version", Params(),
                               "cannot read the schema version");
    if (!r.ok()) return r.status();
    return static_cast<int>(r.value().Int(0, 0));
  }

  Status CreateSession(std::string_view thread_id, int64_t expires_at, const nlohmann::json& metadata,
                       const SessionQuotas& quotas) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    if (Status s = internal::CheckQuotas(quotas); !s.ok()) return s;
    StatusOr<PooledConn> c = pool_.Checkout();
    if (!c.ok()) return c.status();
    Status s = InsertSession(*c.value(), thread_id, clock_(), expires_at, metadata, quotas);
    if (s.ok()) ++transactions_;
    return s;
  }

  StatusOr<SessionInfo> GetSession(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Params p;
    p.Text(thread_id);
    StatusOr<Result> r = Query((std::string(kSessionColumns) + "WHERE s.thread_id = $1").c_str(), p, "cannot read session");
    if (!r.ok()) return r.status();
    if (r.value().rows() == 0) return SessionNotFound(thread_id);
    return ReadSession(r.value(), 0);
  }

  StatusOr<std::pair<SessionInfo, int64_t>> GetSessionAndStateVersion(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    // kSessionColumns' layout without the file counts (store.h), with the state's version as
    // a ninth column: one round trip.
    static constexpr const char* sql =
        "SELECT s.thread_id, s.created_at, s.last_accessed, s.expires_at, s.metadata::text, 0::bigint, 0::bigint,"
        " s.quotas::text,"
        " coalesce((SELECT st.version FROM brig_session_state st WHERE st.thread_id = s.thread_id), 0)::bigint"
        " FROM brig_sessions s WHERE s.thread_id = $1";
    Params p;
    p.Text(thread_id);
    StatusOr<Result> r = Query(sql, p, "cannot read session");
    if (!r.ok()) return r.status();
    if (r.value().rows() == 0) return SessionNotFound(thread_id);
    return std::make_pair(ReadSession(r.value(), 0), r.value().Int(0, 8));
  }

  StatusOr<bool> SessionExists(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Params p;
    p.Text(thread_id);
    StatusOr<Result> r = Query("SELECT 1 FROM brig_sessions WHERE thread_id = $1", p, "cannot read session");
    if (!r.ok()) return r.status();
    return r.value().rows() > 0;
  }

  Status TouchSession(std::string_view thread_id) override {
    Params p;
    p.Text(thread_id).Int(clock_());
    return UpdateSession(thread_id, "UPDATE brig_sessions SET last_accessed = $2 WHERE thread_id = $1", p);
  }

  Status SetSessionExpiry(std::string_view thread_id, int64_t expires_at) override {
    Params p;
    p.Text(thread_id).Int(expires_at);
    return UpdateSession(thread_id, "UPDATE brig_sessions SET expires_at = $2 WHERE thread_id = $1", p);
  }

  StatusOr<int64_t> ExtendSessionExpiry(std::string_view thread_id, int64_t now, int64_t by) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Params p;
    p.Text(thread_id).Int(now).Int(by);
    // One statement: the row lock serialises concurrent extensions, each adding to the last.
    StatusOr<Result> r = WriteQuery(
        "UPDATE brig_sessions SET expires_at = GREATEST(expires_at, $2) + $3 WHERE thread_id = $1"
        " RETURNING expires_at",
        p, "cannot extend session");
    if (!r.ok()) return r.status();
    if (r.value().rows() == 0) return SessionNotFound(thread_id);
    return r.value().Int(0, 0);
  }

  Status SetSessionMetadata(std::string_view thread_id, const nlohmann::json& metadata) override {
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    Params p;
    p.Text(thread_id).Text(internal::MetadataText(metadata));
    return UpdateSession(thread_id, "UPDATE brig_sessions SET metadata = $2::jsonb WHERE thread_id = $1", p);
  }

  Status DeleteSession(std::string_view thread_id) override {
    Params p;
    p.Text(thread_id);
    return UpdateSession(thread_id, "DELETE FROM brig_sessions WHERE thread_id = $1", p);
  }

  StatusOr<std::vector<SessionInfo>> ListSessions() override {
    StatusOr<Result> r =
        Query((std::string(kSessionColumns) + "ORDER BY s.thread_id COLLATE \"C\"").c_str(), Params(), "cannot list sessions");
    if (!r.ok()) return r.status();
    std::vector<SessionInfo> out;
    for (int i = 0; i < r.value().rows(); ++i) out.push_back(ReadSession(r.value(), i));
    return out;
  }

  StatusOr<std::vector<std::string>> ListExpiredSessions(int64_t now) override {
    Params p;
    p.Int(now);
    StatusOr<Result> r = Query("SELECT thread_id FROM brig_sessions WHERE expires_at <= $1 ORDER BY thread_id COLLATE \"C\"",
                               p, "cannot list expired sessions");
    if (!r.ok()) return r.status();
    std::vector<std::string> out;
    for (int i = 0; i < r.value().rows(); ++i) out.push_back(r.value().Bytes(i, 0));
    return out;
  }

  Status PutFile(std::string_view thread_id, const FileWrite& file) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = internal::CheckFileWrite(file); !s.ok()) return s;
    const std::string type = internal::ContentTypeOf(file);
    Params p;
    p.Text(thread_id).Text(file.path).Bytes(file.content).Text(type);
    p.Int(static_cast<int64_t>(file.content.size())).Int(clock_());
    Status s = WriteQuery(kUpsertFile, p, "cannot write file '" + file.path + "'").status();
    if (s.IsNotFound()) return SessionNotFound(thread_id);  // the foreign key
    return s;
  }

  StatusOr<FileData> GetFile(std::string_view thread_id, std::string_view path, int64_t offset,
                             int64_t limit) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = ValidateFilePath(path); !s.ok()) return s;
    if (offset < 0) return Status::InvalidArgument("file offset is negative");
    // No file is longer than kMaxFileBytes: these bounds mean "to the end" and fit an int4.
    const int64_t len = limit < 0 ? kMaxFileBytes + 1 : std::min(limit, kMaxFileBytes + 1);
    Params p;
    p.Text(thread_id).Text(path).Int(std::min(offset, kMaxFileBytes + 1)).Int(len);
    StatusOr<Result> r = Query(
        "SELECT content_type, size, created_at, modified_at,"
        " substring(content FROM $3::int + 1 FOR $4::int)"
        " FROM brig_files WHERE thread_id = $1 AND path = $2",
        p, "cannot read file");
    if (!r.ok()) return r.status();
    if (r.value().rows() == 0) return MissingFile(thread_id, path);
    const Result& row = r.value();
    FileData data;
    data.info = FileInfo{std::string(path), row.Bytes(0, 0), row.Int(0, 1), row.Int(0, 2), row.Int(0, 3)};
    data.content = row.Bytes(0, 4);
    return data;
  }

  Status DeleteFile(std::string_view thread_id, std::string_view path) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = ValidateFilePath(path); !s.ok()) return s;
    Params p;
    p.Text(thread_id).Text(path);
    StatusOr<Result> r = WriteQuery("DELETE FROM brig_files WHERE thread_id = $1 AND path = $2", p, "cannot delete file");
    if (!r.ok()) return r.status();
    if (r.value().affected() == 0) return MissingFile(thread_id, path);
    return Status::Ok();
  }

  StatusOr<std::vector<FileInfo>> ListFiles(std::string_view thread_id, std::string_view prefix) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Params p;
    p.Text(thread_id).Text(prefix);
    // The session's existence and its files in one statement (one snapshot): a missing
    // session gives one row of NULLs marked by the flag.
    StatusOr<Result> r = Query(
        "SELECT f.path, f.content_type, f.size, f.created_at, f.modified_at, f.path IS NOT NULL"
        " FROM brig_sessions s LEFT JOIN brig_files f"
        "   ON f.thread_id = s.thread_id AND starts_with(f.path, $2)"
        " WHERE s.thread_id = $1 ORDER BY f.path COLLATE \"C\"",
        p, "cannot list files");
    if (!r.ok()) return r.status();
    const Result& rows = r.value();
    if (rows.rows() == 0) return SessionNotFound(thread_id);
    std::vector<FileInfo> out;
    for (int i = 0; i < rows.rows(); ++i) {
      if (!rows.Bool(i, 5)) continue;
      out.push_back(FileInfo{rows.Bytes(i, 0), rows.Bytes(i, 1), rows.Int(i, 2), rows.Int(i, 3), rows.Int(i, 4)});
    }
    return out;
  }

  StatusOr<FileUsage> GetFileUsage(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Params p;
    p.Text(thread_id);
    StatusOr<Result> r = Query(
        "SELECT (SELECT count(*) FROM brig_files f WHERE f.thread_id = s.thread_id AND f.content_type <> 'inode/directory')::bigint,"
        " (SELECT coalesce(sum(size), 0) FROM brig_files f WHERE f.thread_id = s.thread_id)::bigint"
        " FROM brig_sessions s WHERE s.thread_id = $1",
        p, "cannot count files");
    if (!r.ok()) return r.status();
    if (r.value().rows() == 0) return SessionNotFound(thread_id);
    return FileUsage{r.value().Int(0, 0), r.value().Int(0, 1)};
  }

  StatusOr<std::optional<SessionState>> GetState(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Params p;
    p.Text(thread_id);
    // One statement, so the session check, the state, its deltas and the fallback come from
    // one snapshot: the state's row first, then its deltas in order.
    StatusOr<Result> r = Query(
        "SELECT 0 AS k, st.snapshot, st.format, st.guest_build_id, st.version, st.updated_at, fb.fallback,"
        " fb.version, st.snapshot_version"
        " FROM brig_sessions s LEFT JOIN brig_session_state st ON st.thread_id = s.thread_id"
        " LEFT JOIN brig_session_fallback fb ON fb.thread_id = s.thread_id"
        " WHERE s.thread_id = $1"
        " UNION ALL SELECT 1, d.delta, NULL, NULL, d.version, NULL, NULL, NULL, NULL"
        " FROM brig_state_deltas d JOIN brig_session_state st ON st.thread_id = d.thread_id"
        " WHERE d.thread_id = $1 AND d.version > st.snapshot_version AND d.version <= st.version"
        " ORDER BY 1, 5",
        p, "cannot read state");
    if (!r.ok()) return r.status();
    const Result& row = r.value();
    if (row.rows() == 0) return SessionNotFound(thread_id);
    if (row.IsNull(0, 4)) return std::optional<SessionState>();
    SessionState state;
    state.snapshot = row.Bytes(0, 1);
    state.format = row.Bytes(0, 2);
    state.guest_build_id = row.Bytes(0, 3);
    state.version = row.Int(0, 4);
    state.updated_at = row.Int(0, 5);
    state.fallback = row.IsNull(0, 6) ? "" : row.Bytes(0, 6);
    state.fallback_version = row.Int(0, 7);
    state.snapshot_version = row.Int(0, 8);
    for (int i = 1; i < row.rows(); i++) state.deltas.emplace_back(row.Int(i, 4), row.Bytes(i, 1));
    return std::optional<SessionState>(std::move(state));
  }

  StatusOr<int64_t> GetStateVersion(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Params p;
    p.Text(thread_id);
    StatusOr<Result> r = Query(
        "SELECT coalesce(st.version, 0)::bigint FROM brig_sessions s"
        " LEFT JOIN brig_session_state st ON st.thread_id = s.thread_id WHERE s.thread_id = $1",
        p, "cannot read state version");
    if (!r.ok()) return r.status();
    if (r.value().rows() == 0) return SessionNotFound(thread_id);
    return r.value().Int(0, 0);
  }

  StatusOr<bool> SaveFallback(std::string_view thread_id, int64_t version, std::string_view fallback) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (version < 1) return Status::InvalidArgument("a fallback belongs to a saved version (>= 1)");
    Params p;
    p.Text(thread_id).Int(version).Bytes(fallback);
    // ON CONFLICT locks the row and checks the version against the latest one committed.
    StatusOr<Result> r = WriteQuery(
        "INSERT INTO brig_session_fallback (thread_id, version, fallback)"
        " SELECT $1, $2, $3 FROM brig_session_state WHERE thread_id = $1 AND version >= $2"
        " ON CONFLICT (thread_id) DO UPDATE SET version = EXCLUDED.version, fallback = EXCLUDED.fallback"
        " WHERE brig_session_fallback.version < EXCLUDED.version",
        p, "cannot save the fallback");
    if (!r.ok()) return r.status().IsNotFound() ? SessionNotFound(thread_id) : r.status();
    if (r.value().affected() > 0) return true;
    StatusOr<bool> exists = SessionExists(thread_id);
    if (!exists.ok()) return exists.status();
    if (!exists.value()) return SessionNotFound(thread_id);
    return false;
  }

  WriteStats GetWriteStats() const override {
    const int64_t n = transactions_.load();
    return WriteStats{n, n, 0};
  }

  using Store::SaveExecution;
  StatusOr<int64_t> SaveExecution(std::string_view thread_id, int64_t expected_version,
                                  const std::optional<ExpectedSession>& expected_session,
                                  const std::optional<StateWrite>& state,
                                  const std::vector<FileWrite>& files_upserted,
                                  const std::vector<std::string>& files_deleted) override {
    StatusOr<std::vector<std::string>> checked =
        internal::CheckSave(thread_id, expected_version, files_upserted, files_deleted);
    if (!checked.ok()) return checked.status();
    const std::vector<std::string>& types = checked.value();
    // The common save (a new state, no file changed, no fallback to write with it) is one
    // statement: one round trip instead of six.
    if (state && expected_version > 0 && !state->fallback &&
        (state->delta || !(state->snapshot.empty() && state->format.empty())) && files_upserted.empty() &&
        files_deleted.empty()) {
      return state->delta ? SaveDeltaOnly(thread_id, expected_version, expected_session, *state)
                          : SaveStateOnly(thread_id, expected_version, expected_session, *state);
    }
    StatusOr<PooledConn> c = pool_.Checkout();
    if (!c.ok()) return c.status();
    pg::Conn& conn = *c.value();
    Txn txn(conn);
    if (!txn.Begun().ok()) return txn.Begun();
    const int64_t now = clock_();
    Params id;
    id.Text(thread_id);
    Params touch;
    touch.Text(thread_id).Int(now);
    AddExpected(&touch, expected_session);
    // The touch locks the session row: concurrent saves of one session take turns; the second
    // then reads the first one's version (READ COMMITTED: each statement sees the latest
    // commits).
    StatusOr<Result> r = conn.Exec(
        "UPDATE brig_sessions SET last_accessed = $2 WHERE thread_id = $1"
        " AND ($3::bigint = 0 OR (created_at = $4::bigint AND expires_at >= $5::bigint))",
        touch, "cannot lock session");
    if (!r.ok()) return r.status();
    if (r.value().affected() == 0) {
      return expected_session ? internal::SessionChanged(thread_id) : SessionNotFound(thread_id);
    }
    r = conn.Exec("SELECT version, octet_length(format)::bigint, snapshot_version FROM brig_session_state"
                  " WHERE thread_id = $1",
                  id, "cannot read state version");
    if (!r.ok()) return r.status();
    const int64_t stored = r.value().rows() ? r.value().Int(0, 0) : 0;
    const bool stored_cleared = r.value().rows() == 0 || r.value().Int(0, 1) == 0;
    const int64_t stored_snapshot_version = r.value().rows() ? r.value().Int(0, 2) : 0;
    if (stored != expected_version) return internal::VersionConflict(thread_id, stored, expected_version);
    const int64_t version = expected_version + 1;
    {
      const StateWrite empty;
      const StateWrite& w = state ? *state : empty;
      if (state && w.delta) {
        if (stored_cleared) return internal::DeltaWithoutState(thread_id);
        Params p;
        p.Text(thread_id).Bytes(w.snapshot).Int(version).Int(now);
        if (Status s = conn.Exec("WITH up AS (UPDATE brig_session_state SET version = $3, updated_at = $4"
                                 " WHERE thread_id = $1)"
                                 " INSERT INTO brig_state_deltas (thread_id, version, updated_at, delta)"
                                 " VALUES ($1, $3, $4, $2)",
                                 p, "cannot save state")
                           .status();
            !s.ok()) {
          return s;
        }
      } else {
        Params p;
        p.Text(thread_id).Bytes(w.snapshot).Text(w.format).Text(w.guest_build_id).Int(version).Int(now);
        // Without a new state the snapshot stays; a first save without one stores a cleared state.
        const char* sql = state ? "INSERT INTO brig_session_state"
                                  " (thread_id, snapshot, format, guest_build_id, version, updated_at, snapshot_version)"
                                  " VALUES ($1, $2, $3, $4, $5, $6, $5) ON CONFLICT (thread_id) DO UPDATE SET"
                                  " snapshot = EXCLUDED.snapshot, format = EXCLUDED.format,"
                                  " guest_build_id = EXCLUDED.guest_build_id, version = EXCLUDED.version,"
                                  " updated_at = EXCLUDED.updated_at, snapshot_version = EXCLUDED.snapshot_version"
                                : "INSERT INTO brig_session_state"
                                  " (thread_id, snapshot, format, guest_build_id, version, updated_at, snapshot_version)"
                                  " VALUES ($1, $2, $3, $4, $5, $6, $5) ON CONFLICT (thread_id) DO UPDATE SET"
                                  " version = EXCLUDED.version, updated_at = EXCLUDED.updated_at";
        if (Status s = conn.Exec(sql, p, "cannot save state").status(); !s.ok()) return s;
        if (state) {  // a whole state: the deltas before it are of no use (as SaveStateOnly)
          Params d;
          d.Text(thread_id).Int(stored_snapshot_version);
          if (Status s = conn.Exec("DELETE FROM brig_state_deltas WHERE thread_id = $1 AND version > $2", d,
                                   "cannot save state")
                             .status();
              !s.ok()) {
            return s;
          }
        }
      }
      // A fallback saved with the state, or an empty one for a cleared state (so that none
      // taken before it can land after it).
      const bool cleared = state && !w.delta && w.snapshot.empty() && w.format.empty();
      if (state && (w.fallback || cleared)) {
        Params f;
        f.Text(thread_id).Int(version).Bytes(w.fallback && !cleared ? std::string_view(*w.fallback) : "");
        if (Status s = conn.Exec("INSERT INTO brig_session_fallback (thread_id, version, fallback) VALUES ($1, $2, $3)"
                                 " ON CONFLICT (thread_id) DO UPDATE SET version = EXCLUDED.version,"
                                 " fallback = EXCLUDED.fallback",
                                 f, "cannot save the fallback")
                           .status();
            !s.ok()) {
          return s;
        }
      }
    }
    for (size_t i = 0; i < files_upserted.size(); ++i) {
      const FileWrite& f = files_upserted[i];
      Params p;
      p.Text(thread_id).Text(f.path).Bytes(f.content).Text(types[i]);
      p.Int(static_cast<int64_t>(f.content.size())).Int(now);
      if (Status s = conn.Exec(kUpsertFile, p, "cannot write file '" + f.path + "'").status(); !s.ok()) return s;
    }
    for (const std::string& path : files_deleted) {
      Params p;
      p.Text(thread_id).Text(path);
      if (Status s = conn.Exec("DELETE FROM brig_files WHERE thread_id = $1 AND path = $2", p, "cannot delete file")
                         .status();
          !s.ok()) {
        return s;
      }
    }
    if (Status s = txn.Commit(); !s.ok()) return s;
    ++transactions_;
    return version;
  }

  Status CreateSessionWith(std::string_view thread_id, int64_t expires_at, const nlohmann::json& metadata,
                           const std::optional<StateWrite>& state, const std::vector<FileWrite>& files) override {
    StatusOr<std::vector<std::string>> checked = internal::CheckSave(thread_id, 0, files, {});
    if (!checked.ok()) return checked.status();
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    StatusOr<PooledConn> c = pool_.Checkout();
    if (!c.ok()) return c.status();
    pg::Conn& conn = *c.value();
    Txn txn(conn);
    if (!txn.Begun().ok()) return txn.Begun();
    const int64_t now = clock_();
    if (Status s = InsertSession(conn, thread_id, now, expires_at, metadata); !s.ok()) return s;
    if (state) {
      if (Status s = InsertState(conn, thread_id, *state, now); !s.ok()) return s;
    }
    for (size_t i = 0; i < files.size(); ++i) {
      const FileWrite& f = files[i];
      Params p;
      p.Text(thread_id).Text(f.path).Bytes(f.content).Text(checked.value()[i]);
      p.Int(static_cast<int64_t>(f.content.size())).Int(now);
      if (Status s = conn.Exec(kUpsertFile, p, "cannot write file '" + f.path + "'").status(); !s.ok()) return s;
    }
    return txn.Commit();
  }

  Status CopySession(std::string_view from, std::string_view to, int64_t from_version, int64_t expires_at,
                     const nlohmann::json& metadata, const std::optional<StateWrite>& state) override {
    if (Status s = ValidateThreadId(from); !s.ok()) return s;
    if (Status s = ValidateThreadId(to); !s.ok()) return s;
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    StatusOr<PooledConn> c = pool_.Checkout();
    if (!c.ok()) return c.status();
    pg::Conn& conn = *c.value();
    Txn txn(conn);
    if (!txn.Begun().ok()) return txn.Begun();
    Params id;
    id.Text(from);
    // FOR SHARE waits for a save of `from` in progress (it holds FOR NO KEY UPDATE) and keeps
    // the next one out until this commits: the version read and the files copied below are
    // of one moment (READ COMMITTED reads each statement afresh).
    StatusOr<Result> r = conn.Exec("SELECT 1 FROM brig_sessions WHERE thread_id = $1 FOR SHARE", id, "cannot lock session");
    if (!r.ok()) return r.status();
    if (r.value().rows() == 0) return SessionNotFound(from);
    r = conn.Exec("SELECT version FROM brig_session_state WHERE thread_id = $1", id, "cannot read state version");
    if (!r.ok()) return r.status();
    const int64_t stored = r.value().rows() ? r.value().Int(0, 0) : 0;
    if (stored != from_version) return internal::VersionConflict(from, stored, from_version);
    const int64_t now = clock_();
    if (Status s = InsertSession(conn, to, now, expires_at, metadata); !s.ok()) return s;
    if (state) {
      if (Status s = InsertState(conn, to, *state, now); !s.ok()) return s;
    }
    Params p;
    p.Text(from).Text(to);
    if (Status s = conn.Exec("INSERT INTO brig_files (thread_id, path, content, content_type, size, created_at, modified_at)"
                             " SELECT $2, path, content, content_type, size, created_at, modified_at FROM brig_files"
                             " WHERE thread_id = $1",
                             p, "cannot copy files")
                       .status();
        !s.ok()) {
      return s;
    }
    if (Status s = conn.Exec("UPDATE brig_sessions SET quotas = (SELECT quotas FROM brig_sessions WHERE thread_id = $1)"
                             " WHERE thread_id = $2",
                             p, "cannot copy quotas")
                       .status();
        !s.ok()) {
      return s;
    }
    return txn.Commit();
  }

  StatusOr<CleanupStats> Cleanup(int64_t now, bool dry_run) override {
    Params p;
    p.Int(now);
    // One statement: atomic on its own, and a session extended meanwhile is re-checked by
    // the DELETE and kept.
    StatusOr<Result> r = dry_run ? Query(kCleanupDryRun, p, "cleanup failed") : WriteQuery(kCleanup, p, "cleanup failed");
    if (!r.ok()) return r.status();
    return CleanupStats{r.value().Int(0, 0), r.value().Int(0, 1), r.value().Int(0, 2)};
  }

  StatusOr<uint64_t> SharedImageSeed(uint64_t proposed) override {
    Params p;
    p.Int(static_cast<int64_t>(proposed));
    // One statement: the SELECT does not see the CTE's insert, so one row comes back, the
    // inserted seed or the one already there.
    StatusOr<Result> r = WriteQuery(
        "WITH ins AS (INSERT INTO brig_image_seed (id, seed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING"
        " RETURNING seed)"
        " SELECT seed FROM ins UNION ALL SELECT seed FROM brig_image_seed WHERE id = 1",
        p, "cannot read the shared image seed");
    if (!r.ok()) return r.status();
    if (r.value().rows() < 1) {
      // Lost a race with another node's first insert: its row committed after this
      // statement's snapshot was taken, so read it afresh.
      r = Query("SELECT seed FROM brig_image_seed WHERE id = 1", Params(), "cannot read the shared image seed");
      if (!r.ok()) return r.status();
      if (r.value().rows() < 1) return Status::Internal("the shared image seed is missing");
    }
    return static_cast<uint64_t>(r.value().Int(0, 0));
  }

  StatusOr<std::unique_ptr<SessionLock>> LockSession(std::string_view thread_id,
                                                     std::chrono::milliseconds timeout) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    StatusOr<std::unique_ptr<pg::Conn>> c = lock_connections_->Take();
    if (!c.ok()) return c.status();
    const int64_t key = static_cast<int64_t>(ThreadIdHash(thread_id));
    Params p;
    p.Int(key);
    // A blocking pg_advisory_lock, bounded by lock_timeout (set in the same round trip; the
    // FROM clause runs first): the server wakes the waiter at the release, where polling
    // pg_try_advisory_lock with a backoff slept past it. statement_timeout, if shorter, cuts
    // the wait too. Either way the connection holds nothing after the error.
    p.Text(std::to_string(std::max<int64_t>(1, timeout.count())) + "ms");
    StatusOr<Result> r = c.value()->Exec(
        "SELECT pg_advisory_lock($1::bigint) FROM (SELECT set_config('lock_timeout', $2, false)) AS t", p,
        "cannot take session lock");
    if (!r.ok()) {
      if (!r.status().IsDeadlineExceeded()) return r.status();
      lock_connections_->Give(std::move(c.value()));
      return Status::DeadlineExceeded("session '" + std::string(thread_id) + "' is locked by another execution (waited " +
                                      std::to_string(timeout.count()) + " ms)");
    }
    return std::unique_ptr<SessionLock>(new AdvisoryLock(lock_connections_, std::move(c.value()), key));
  }

 private:
  // SaveExecution of a new state alone over an existing one, in ONE statement (its own
  // transaction). The touch takes the session row first, as every other save does (one lock
  // order); its version test reads the statement's snapshot, the state's UPDATE re-checks
  // the version on the latest row. Only if a concurrent save of the same session commits in
  // between does the touch land without the state (a save tried is a use of the session).
  StatusOr<int64_t> SaveStateOnly(std::string_view thread_id, int64_t expected_version,
                                  const std::optional<ExpectedSession>& expected_session, const StateWrite& w) {
    const int64_t version = expected_version + 1;
    Params p;
    p.Text(thread_id).Bytes(w.snapshot).Text(w.format).Text(w.guest_build_id).Int(expected_version).Int(clock_());
    AddExpected(&p, expected_session);
    StatusOr<Result> r = WriteQuery(
        "WITH touched AS (UPDATE brig_sessions SET last_accessed = $6 WHERE thread_id = $1"
        "   AND ($7::bigint = 0 OR (created_at = $8::bigint AND expires_at >= $9::bigint))"
        "   AND (SELECT version FROM brig_session_state WHERE thread_id = $1) = $5 RETURNING 1),"
        " saved AS (UPDATE brig_session_state SET snapshot = $2, format = $3, guest_build_id = $4,"
        "   version = $5 + 1, updated_at = $6, snapshot_version = $5 + 1"
        "   WHERE thread_id = $1 AND version = $5 AND EXISTS (SELECT 1 FROM touched) RETURNING 1),"
        // Only the deltas since the old snapshot exist (the earlier ones went with it); the
        // range keeps the index scan off the dead entries of earlier deletes (vacuum has not
        // always passed), which a scan of the whole thread_id visited every time.
        " dropped AS (DELETE FROM brig_state_deltas WHERE thread_id = $1"
        "   AND version > (SELECT snapshot_version FROM brig_session_state WHERE thread_id = $1)"
        "   AND EXISTS (SELECT 1 FROM saved))"
        " SELECT (SELECT count(*) FROM saved)::bigint",
        p, "cannot save state");
    if (!r.ok()) return r.status();
    if (r.value().Int(0, 0) == 1) return version;
    return WhyNotSaved(thread_id, expected_version, expected_session, /*delta=*/false);
  }

  // Three parameters: whether a session is expected, its created_at and its expires_at.
  static void AddExpected(Params* p, const std::optional<ExpectedSession>& e) {
    p->Int(e ? 1 : 0).Int(e ? e->created_at : 0).Int(e ? e->expires_at : 0);
  }

  // Why a one-statement save (SaveStateOnly, SaveDeltaOnly) changed nothing.
  StatusOr<int64_t> WhyNotSaved(std::string_view thread_id, int64_t expected_version,
                                const std::optional<ExpectedSession>& expected_session, bool delta) {
    StatusOr<std::pair<SessionInfo, int64_t>> both = GetSessionAndStateVersion(thread_id);
    if (!both.ok()) {
      return expected_session && both.status().IsNotFound() ? internal::SessionChanged(thread_id) : both.status();
    }
    const SessionInfo& info = both.value().first;
    if (expected_session &&
        (info.created_at != expected_session->created_at || info.expires_at < expected_session->expires_at)) {
      return internal::SessionChanged(thread_id);
    }
    const int64_t stored = both.value().second;
    if (delta && stored == expected_version) return internal::DeltaWithoutState(thread_id);
    return internal::VersionConflict(thread_id, stored, expected_version);
  }

  // SaveExecution of a delta alone (StateWrite::delta), in ONE statement, as SaveStateOnly:
  // the state's row keeps its snapshot (an UPDATE that leaves the out-of-line value as it
  // is), its version moves on, and the delta goes into a row of its own.
  StatusOr<int64_t> SaveDeltaOnly(std::string_view thread_id, int64_t expected_version,
                                  const std::optional<ExpectedSession>& expected_session, const StateWrite& w) {
    const int64_t version = expected_version + 1;
    Params p;
    p.Text(thread_id).Bytes(w.snapshot).Int(expected_version).Int(clock_());
    AddExpected(&p, expected_session);
    StatusOr<Result> r = WriteQuery(
        "WITH touched AS (UPDATE brig_sessions SET last_accessed = $4 WHERE thread_id = $1"
        "   AND ($5::bigint = 0 OR (created_at = $6::bigint AND expires_at >= $7::bigint))"
        "   AND (SELECT version FROM brig_session_state WHERE thread_id = $1) = $3 RETURNING 1),"
        " saved AS (UPDATE brig_session_state SET version = $3 + 1, updated_at = $4"
        "   WHERE thread_id = $1 AND version = $3 AND format <> '' AND EXISTS (SELECT 1 FROM touched)"
        "   RETURNING 1),"
        " added AS (INSERT INTO brig_state_deltas (thread_id, version, updated_at, delta)"
        "   SELECT $1, $3 + 1, $4, $2 WHERE EXISTS (SELECT 1 FROM saved) RETURNING 1)"
        " SELECT (SELECT count(*) FROM added)::bigint",
        p, "cannot save state");
    if (!r.ok()) return r.status();
    if (r.value().Int(0, 0) == 1) return version;
    return WhyNotSaved(thread_id, expected_version, expected_session, /*delta=*/true);
  }

  // One statement on a pooled connection, in its own implicit transaction.
  StatusOr<Result> Query(const char* sql, const Params& params, std::string_view what) {
    StatusOr<PooledConn> c = pool_.Checkout();
    if (!c.ok()) return c.status();
    return c.value()->Exec(sql, params, what);
  }

  // Query for a statement that writes: counted in GetWriteStats.
  StatusOr<Result> WriteQuery(const char* sql, const Params& params, std::string_view what) {
    StatusOr<Result> r = Query(sql, params, what);
    if (r.ok()) ++transactions_;
    return r;
  }

  Status UpdateSession(std::string_view thread_id, const char* sql, const Params& params) {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    StatusOr<Result> r = WriteQuery(sql, params, "cannot update session");
    if (!r.ok()) return r.status();
    if (r.value().affected() == 0) return SessionNotFound(thread_id);
    return Status::Ok();
  }

  // Inserts a session row on `conn`. AlreadyExists (naming it) if the thread_id is taken.
  static Status InsertSession(pg::Conn& conn, std::string_view thread_id, int64_t now, int64_t expires_at,
                              const nlohmann::json& metadata, const SessionQuotas& quotas = {}) {
    Params p;
    p.Text(thread_id).Int(now).Int(expires_at).Text(internal::MetadataText(metadata)).Text(internal::QuotasText(quotas));
    Status s = conn.Exec("INSERT INTO brig_sessions (thread_id, created_at, last_accessed, expires_at, metadata, quotas)"
                         " VALUES ($1, $2, $2, $3, $4::jsonb, $5::jsonb)",
                         p, "cannot create session")
                   .status();
    if (s.IsAlreadyExists()) return Status::AlreadyExists("session '" + std::string(thread_id) + "' already exists");
    return s;
  }

  // The first state of a new session, at version 1, with its fallback if it has one, on
  // `conn` (in a transaction).
  static Status InsertState(pg::Conn& conn, std::string_view thread_id, const StateWrite& w, int64_t now) {
    if (w.delta) return internal::DeltaWithoutState(thread_id);
    Params p;
    p.Text(thread_id).Bytes(w.snapshot).Text(w.format).Text(w.guest_build_id).Int(now);
    Status s = conn.Exec("INSERT INTO brig_session_state"
                     " (thread_id, snapshot, format, guest_build_id, version, updated_at, snapshot_version)"
                     " VALUES ($1, $2, $3, $4, 1, $5, 1)",
                     p, "cannot save state")
               .status();
    if (!s.ok() || !w.fallback) return s;
    Params f;
    f.Text(thread_id).Bytes(*w.fallback);
    return conn.Exec("INSERT INTO brig_session_fallback (thread_id, version, fallback) VALUES ($1, 1, $2)", f,
                     "cannot save the fallback")
        .status();
  }

  // NotFound naming whichever is missing, the session or the file.
  Status MissingFile(std::string_view thread_id, std::string_view path) {
    StatusOr<bool> exists = SessionExists(thread_id);
    if (!exists.ok()) return exists.status();
    return exists.value() ? internal::FileNotFound(thread_id, path) : SessionNotFound(thread_id);
  }

  const std::string url_;
  const StoreOptions options_;
  pg::Pool pool_;
  const std::shared_ptr<LockConnections> lock_connections_;
  const std::function<int64_t()> clock_;
  std::atomic<int64_t> transactions_{0};  // write transactions committed (one per write)
};

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenPostgresStore(std::string_view url, const StoreOptions& options) {
  if (options.pool_size < 1) return Status::InvalidArgument("PostgreSQL pool size must be at least 1");
  if (url.find('\0') != std::string_view::npos) return Status::InvalidArgument("store URL contains NUL");
  auto store = std::make_unique<PostgresStore>(std::string(url), options);
  if (Status s = store->Migrate(); !s.ok()) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace brig::store
