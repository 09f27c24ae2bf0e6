#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "store/file_lock.h"
#include "store/migrations.h"
#include "store/store_internal.h"

namespace brig::store {
namespace {

using internal::SessionNotFound;

// Maps a SQLite result code to brig's Status kinds. `what` says what was being done.
Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return Status::AlreadyExists(msg);
      }
      if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return Status::NotFound(msg);
      return Status::InvalidArgument(msg);
    case SQLITE_TOOBIG:
    case SQLITE_FULL:
      return Status::ResourceExhausted(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
      return Status::Unavailable(msg);
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return Status::FailedPrecondition(msg);
    default:
      return Status::Internal(msg);
  }
}

// One prepared statement. Binds never copy: bound views must outlive the Step calls.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Int(int i, int64_t v) {
    Keep(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Stmt& Text(int i, std::string_view v) {
    Keep(sqlite3_bind_text(stmt_, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
    return *this;
  }
  // A non-null pointer even for empty data: a null one would bind SQL NULL.
  Stmt& Blob(int i, std::string_view v) {
    Keep(sqlite3_bind_blob64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC));
    return *this;
  }

  // SQLITE_ROW, SQLITE_DONE, or an error code (also a prepare or bind error).
  int Step() {
    if (rc_ != SQLITE_OK) return rc_;
    return sqlite3_step(stmt_);
  }
  // Runs to completion; OK iff it ended with SQLITE_DONE.
  Status Run(std::string_view what) {
    int rc;
    while ((rc = Step()) == SQLITE_ROW) {
    }
    return rc == SQLITE_DONE ? Status::Ok() : SqliteError(db_, rc, what);
  }

  int64_t ColInt(int c) { return sqlite3_column_int64(stmt_, c); }
  std::string ColText(int c) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, c)) : std::string();
  }
  std::string ColBlob(int c) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, c)) : std::string();
  }

 private:
  void Keep(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;  // first prepare/bind error, else SQLITE_OK
};

// A write transaction (BEGIN IMMEDIATE, or EXCLUSIVE for migrations); rolled back unless
// committed.
class Txn {
 public:
  Txn(sqlite3* db, const char* begin) : db_(db) { rc_ = sqlite3_exec(db, begin, nullptr, nullptr, nullptr); }
  ~Txn() {
    if (rc_ == SQLITE_OK && !done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Status Begun() const { return rc_ == SQLITE_OK ? Status::Ok() : SqliteError(db_, rc_, "cannot begin a transaction"); }
  Status Commit() {
    const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "commit failed");
    done_ = true;
    return Status::Ok();
  }

 private:
  sqlite3* db_;
  int rc_;
  bool done_ = false;
};

constexpr const char* kSessionColumns =
    "SELECT s.thread_id, s.created_at, s.last_accessed, s.expires_at, s.metadata,"
    " (SELECT count(*) FROM brig_files f WHERE f.thread_id = s.thread_id AND f.content_type <> 'inode/directory'),"
    " (SELECT coalesce(sum(size), 0) FROM brig_files f WHERE f.thread_id = s.thread_id), s.quotas"
    " FROM brig_sessions s ";

SessionInfo ReadSession(Stmt& st) {
  SessionInfo info;
  info.thread_id = st.ColText(0);
  info.created_at = st.ColInt(1);
  info.last_accessed = st.ColInt(2);
  info.expires_at = st.ColInt(3);
  info.metadata = internal::ParseMetadata(st.ColText(4));
  info.file_count = st.ColInt(5);
  info.total_bytes = st.ColInt(6);
  info.quotas = internal::ParseQuotas(st.ColText(7));
  return info;
}

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::string path, const StoreOptions& options)
      : db_(db), lock_dir_(path + ".locks"), clock_(internal::ClockOf(options)) {}
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  Status Init(const StoreOptions& options) {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(options.busy_timeout.count()));
    // Switching to WAL needs a moment alone with the file; a concurrent opener may answer
    // BUSY without the busy handler being asked, hence the retry.
    const auto deadline = std::chrono::steady_clock::now() + options.busy_timeout;
    while (true) {
      Stmt st(db_, "PRAGMA journal_mode=WAL");
      const int rc = st.Step();
      if (rc == SQLITE_ROW) {
        if (st.ColText(0) != "wal") return Status::Unavailable("SQLite store cannot use WAL mode");
        break;
      }
      if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) {
        return SqliteError(db_, rc, "cannot open SQLite store");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
      if (Status s = Stmt(db_, pragma).Run("cannot configure SQLite store"); !s.ok()) return s;
    }
    if (Status s = Migrate(); !s.ok()) return s;
    if (mkdir(lock_dir_.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::Unavailable("cannot create the session lock directory " + lock_dir_ + ": " +
                                 std::strerror(errno));
    }
    return Status::Ok();
  }

  std::string_view backend() const override { return "sqlite"; }

  StatusOr<int> SchemaVersion() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, "SELECT coalesce(max(version), 0) FROM brig_schema_version");
    const int rc = st.Step();
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot read the schema version");
    return static_cast<int>(st.ColInt(0));
  }

  Status CreateSession(std::string_view thread_id, int64_t expires_at, const nlohmann::json& metadata,
                       const SessionQuotas& quotas) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    if (Status s = internal::CheckQuotas(quotas); !s.ok()) return s;
    const std::string meta = internal::MetadataText(metadata);
    std::lock_guard<std::mutex> lock(mu_);
    return InsertSessionLocked(thread_id, clock_(), expires_at, meta, internal::QuotasText(quotas));
  }

  StatusOr<SessionInfo> GetSession(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, (std::string(kSessionColumns) + "WHERE s.thread_id = ?1").c_str());
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc == SQLITE_DONE) return SessionNotFound(thread_id);
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot read session");
    return ReadSession(st);
  }

  StatusOr<bool> SessionExists(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    return ExistsLocked(thread_id);
  }

  Status TouchSession(std::string_view thread_id) override {
    return UpdateSession(thread_id, "UPDATE brig_sessions SET last_accessed = ?2 WHERE thread_id = ?1",
                         [&](Stmt& st) { st.Int(2, clock_()); });
  }

  Status SetSessionExpiry(std::string_view thread_id, int64_t expires_at) override {
    return UpdateSession(thread_id, "UPDATE brig_sessions SET expires_at = ?2 WHERE thread_id = ?1",
                         [&](Stmt& st) { st.Int(2, expires_at); });
  }

  StatusOr<int64_t> ExtendSessionExpiry(std::string_view thread_id, int64_t now, int64_t by) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    // One statement: SQLite runs it under its write lock, so extensions never interleave.
    Stmt st(db_, "UPDATE brig_sessions SET expires_at = max(expires_at, ?2) + ?3 WHERE thread_id = ?1"
                 " RETURNING expires_at");
    st.Text(1, thread_id);
    st.Int(2, now);
    st.Int(3, by);
    const int rc = st.Step();
    if (rc == SQLITE_DONE) return SessionNotFound(thread_id);
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot extend session");
    return st.ColInt(0);
  }

  Status SetSessionMetadata(std::string_view thread_id, const nlohmann::json& metadata) override {
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    const std::string meta = internal::MetadataText(metadata);
    return UpdateSession(thread_id, "UPDATE brig_sessions SET metadata = ?2 WHERE thread_id = ?1",
                         [&](Stmt& st) { st.Text(2, meta); });
  }

  Status DeleteSession(std::string_view thread_id) override {
    return UpdateSession(thread_id, "DELETE FROM brig_sessions WHERE thread_id = ?1", [](Stmt&) {});
  }

  StatusOr<std::vector<SessionInfo>> ListSessions() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, (std::string(kSessionColumns) + "ORDER BY s.thread_id").c_str());
    std::vector<SessionInfo> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadSession(st));
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "cannot list sessions");
    return out;
  }

  StatusOr<std::vector<std::string>> ListExpiredSessions(int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, "SELECT thread_id FROM brig_sessions WHERE expires_at <= ?1 ORDER BY thread_id");
    st.Int(1, now);
    std::vector<std::string> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(st.ColText(0));
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "cannot list expired sessions");
    return out;
  }

  Status PutFile(std::string_view thread_id, const FileWrite& file) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = internal::CheckFileWrite(file); !s.ok()) return s;
    const std::string type = internal::ContentTypeOf(file);
    std::lock_guard<std::mutex> lock(mu_);
    Txn txn(db_, "BEGIN IMMEDIATE");
    if (Status s = txn.Begun(); !s.ok()) return s;
    if (Status s = RequireSessionLocked(thread_id); !s.ok()) return s;
    if (Status s = UpsertFileLocked(thread_id, file, type, clock_()); !s.ok()) return s;
    return txn.Commit();
  }

  StatusOr<FileData> GetFile(std::string_view thread_id, std::string_view path, int64_t offset,
                             int64_t limit) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = ValidateFilePath(path); !s.ok()) return s;
    if (offset < 0) return Status::InvalidArgument("file offset is negative");
    // No file is longer than kMaxFileBytes, so this limit means "to the end".
    const int64_t len = limit < 0 ? kMaxFileBytes + 1 : limit;
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_,
            "SELECT content_type, size, created_at, modified_at, substr(content, ?3 + 1, ?4)"
            " FROM brig_files WHERE thread_id = ?1 AND path = ?2");
    st.Text(1, thread_id).Text(2, path).Int(3, std::min(offset, kMaxFileBytes + 1)).Int(4, len);
    const int rc = st.Step();
    if (rc == SQLITE_DONE) return MissingFileLocked(thread_id, path);
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot read file");
    FileData data;
    data.info.path = std::string(path);
    data.info.content_type = st.ColText(0);
    data.info.size = st.ColInt(1);
    data.info.created_at = st.ColInt(2);
    data.info.modified_at = st.ColInt(3);
    data.content = st.ColBlob(4);
    return data;
  }

  Status DeleteFile(std::string_view thread_id, std::string_view path) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = ValidateFilePath(path); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, "DELETE FROM brig_files WHERE thread_id = ?1 AND path = ?2");
    st.Text(1, thread_id).Text(2, path);
    if (Status s = st.Run("cannot delete file"); !s.ok()) return s;
    if (sqlite3_changes(db_) == 0) return MissingFileLocked(thread_id, path);
    return Status::Ok();
  }

  StatusOr<std::vector<FileInfo>> ListFiles(std::string_view thread_id, std::string_view prefix) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    if (Status s = RequireSessionLocked(thread_id); !s.ok()) return s;
    // A byte-wise prefix test: LIKE and GLOB would give meaning to '%', '_', '*' in paths.
    Stmt st(db_,
            "SELECT path, content_type, size, created_at, modified_at FROM brig_files"
            " WHERE thread_id = ?1 AND substr(CAST(path AS BLOB), 1, length(CAST(?2 AS BLOB))) = CAST(?2 AS BLOB)"
            " ORDER BY CAST(path AS BLOB)");
    st.Text(1, thread_id).Text(2, prefix);
    std::vector<FileInfo> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      out.push_back(FileInfo{st.ColText(0), st.ColText(1), st.ColInt(2), st.ColInt(3), st.ColInt(4)});
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "cannot list files");
    return out;
  }

  StatusOr<FileUsage> GetFileUsage(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    if (Status s = RequireSessionLocked(thread_id); !s.ok()) return s;
    Stmt st(db_, "SELECT count(*) FILTER (WHERE content_type <> 'inode/directory'), coalesce(sum(size), 0)"
                 " FROM brig_files WHERE thread_id = ?1");
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot count files");
    return FileUsage{st.ColInt(0), st.ColInt(1)};
  }

  StatusOr<std::optional<SessionState>> GetState(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    // One statement, so the session check and the state come from one snapshot.
    Stmt st(db_,
            "SELECT st.snapshot, st.format, st.guest_build_id, st.version, st.updated_at"
            " FROM brig_sessions s LEFT JOIN brig_session_state st ON st.thread_id = s.thread_id"
            " WHERE s.thread_id = ?1");
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc == SQLITE_DONE) return SessionNotFound(thread_id);
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot read state");
    if (st.ColInt(3) == 0) return std::optional<SessionState>();
    return std::optional<SessionState>(
        SessionState{st.ColBlob(0), st.ColText(1), st.ColText(2), st.ColInt(3), st.ColInt(4)});
  }

  StatusOr<int64_t> SaveExecution(std::string_view thread_id, int64_t expected_version,
                                  const std::optional<StateWrite>& state,
                                  const std::vector<FileWrite>& files_upserted,
                                  const std::vector<std::string>& files_deleted) override {
    StatusOr<std::vector<std::string>> checked =
        internal::CheckSave(thread_id, expected_version, files_upserted, files_deleted);
    if (!checked.ok()) return checked.status();
    const std::vector<std::string>& types = checked.value();
    std::lock_guard<std::mutex> lock(mu_);
    Txn txn(db_, "BEGIN IMMEDIATE");
    if (Status s = txn.Begun(); !s.ok()) return s;
    if (Status s = RequireSessionLocked(thread_id); !s.ok()) return s;
    StatusOr<int64_t> version_read = StateVersionLocked(thread_id);
    if (!version_read.ok()) return version_read.status();
    const int64_t stored = version_read.value();
    if (stored != expected_version) return internal::VersionConflict(thread_id, stored, expected_version);
    const int64_t version = expected_version + 1;
    const int64_t now = clock_();
    {
      // Without a new state the snapshot stays; a first save without one stores a cleared state.
      Stmt st(db_,
              state ? "INSERT INTO brig_session_state"
                      " (thread_id, snapshot, format, guest_build_id, version, updated_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (thread_id) DO UPDATE SET"
                      " snapshot = excluded.snapshot, format = excluded.format,"
                      " guest_build_id = excluded.guest_build_id, version = excluded.version,"
                      " updated_at = excluded.updated_at"
                    : "INSERT INTO brig_session_state"
                      " (thread_id, snapshot, format, guest_build_id, version, updated_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (thread_id) DO UPDATE SET"
                      " version = excluded.version, updated_at = excluded.updated_at");
      const StateWrite empty;
      const StateWrite& w = state ? *state : empty;
      st.Text(1, thread_id).Blob(2, w.snapshot).Text(3, w.format).Text(4, w.guest_build_id);
      st.Int(5, version).Int(6, now);
      if (Status s = st.Run("cannot save state"); !s.ok()) return s;
    }
    for (size_t i = 0; i < files_upserted.size(); ++i) {
      if (Status s = UpsertFileLocked(thread_id, files_upserted[i], types[i], now); !s.ok()) return s;
    }
    for (const std::string& path : files_deleted) {
      Stmt st(db_, "DELETE FROM brig_files WHERE thread_id = ?1 AND path = ?2");
      st.Text(1, thread_id).Text(2, path);
      if (Status s = st.Run("cannot delete file"); !s.ok()) return s;
    }
    if (Status s = txn.Commit(); !s.ok()) return s;
    return version;
  }

  Status CreateSessionWith(std::string_view thread_id, int64_t expires_at, const nlohmann::json& metadata,
                           const std::optional<StateWrite>& state, const std::vector<FileWrite>& files) override {
    StatusOr<std::vector<std::string>> checked = internal::CheckSave(thread_id, 0, files, {});
    if (!checked.ok()) return checked.status();
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    const std::string meta = internal::MetadataText(metadata);
    std::lock_guard<std::mutex> lock(mu_);
    Txn txn(db_, "BEGIN IMMEDIATE");
    if (Status s = txn.Begun(); !s.ok()) return s;
    const int64_t now = clock_();
    if (Status s = InsertSessionLocked(thread_id, now, expires_at, meta); !s.ok()) return s;
    if (state) {
      if (Status s = InsertStateLocked(thread_id, *state, now); !s.ok()) return s;
    }
    for (size_t i = 0; i < files.size(); ++i) {
      if (Status s = UpsertFileLocked(thread_id, files[i], checked.value()[i], now); !s.ok()) return s;
    }
    return txn.Commit();
  }

  Status CopySession(std::string_view from, std::string_view to, int64_t from_version, int64_t expires_at,
                     const nlohmann::json& metadata, const std::optional<StateWrite>& state) override {
    if (Status s = ValidateThreadId(from); !s.ok()) return s;
    if (Status s = ValidateThreadId(to); !s.ok()) return s;
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    const std::string meta = internal::MetadataText(metadata);
    std::lock_guard<std::mutex> lock(mu_);
    // BEGIN IMMEDIATE takes SQLite's write lock: no save of `from` lands in between.
    Txn txn(db_, "BEGIN IMMEDIATE");
    if (Status s = txn.Begun(); !s.ok()) return s;
    if (Status s = RequireSessionLocked(from); !s.ok()) return s;
    StatusOr<int64_t> stored = StateVersionLocked(from);
    if (!stored.ok()) return stored.status();
    if (stored.value() != from_version) return internal::VersionConflict(from, stored.value(), from_version);
    const int64_t now = clock_();
    if (Status s = InsertSessionLocked(to, now, expires_at, meta); !s.ok()) return s;
    if (state) {
      if (Status s = InsertStateLocked(to, *state, now); !s.ok()) return s;
    }
    Stmt st(db_,
            "INSERT INTO brig_files (thread_id, path, content_type, size, created_at, modified_at, content)"
            " SELECT ?2, path, content_type, size, created_at, modified_at, content FROM brig_files"
            " WHERE thread_id = ?1");
    st.Text(1, from).Text(2, to);
    if (Status s = st.Run("cannot copy files"); !s.ok()) return s;
    Stmt quotas(db_, "UPDATE brig_sessions SET quotas = (SELECT quotas FROM brig_sessions WHERE thread_id = ?1) WHERE thread_id = ?2");
    quotas.Text(1, from).Text(2, to);
    if (Status s = quotas.Run("cannot copy quotas"); !s.ok()) return s;
    return txn.Commit();
  }

  StatusOr<CleanupStats> Cleanup(int64_t now, bool dry_run) override {
    std::lock_guard<std::mutex> lock(mu_);
    Txn txn(db_, "BEGIN IMMEDIATE");
    if (Status s = txn.Begun(); !s.ok()) return s;
    // Doomed rows: those of expired sessions, and those whose session is gone (orphans).
    constexpr const char* kDoomed =
        " WHERE thread_id IN (SELECT thread_id FROM brig_sessions WHERE expires_at <= ?1)"
        " OR thread_id NOT IN (SELECT thread_id FROM brig_sessions)";
    CleanupStats stats;
    {
      Stmt st(db_, "SELECT count(*) FROM brig_sessions WHERE expires_at <= ?1");
      st.Int(1, now);
      if (const int rc = st.Step(); rc != SQLITE_ROW) return SqliteError(db_, rc, "cleanup failed");
      stats.sessions_deleted = st.ColInt(0);
    }
    {
      Stmt st(db_, (std::string("SELECT count(*), coalesce(sum(size), 0) FROM brig_files") + kDoomed).c_str());
      st.Int(1, now);
      if (const int rc = st.Step(); rc != SQLITE_ROW) return SqliteError(db_, rc, "cleanup failed");
      stats.files_deleted = st.ColInt(0);
      stats.bytes_freed = st.ColInt(1);
    }
    {
      Stmt st(db_, (std::string("SELECT coalesce(sum(length(snapshot)), 0) FROM brig_session_state") + kDoomed).c_str());
      st.Int(1, now);
      if (const int rc = st.Step(); rc != SQLITE_ROW) return SqliteError(db_, rc, "cleanup failed");
      stats.bytes_freed += st.ColInt(0);
    }
    if (dry_run) return stats;  // the transaction rolls back
    for (const char* sql : {"DELETE FROM brig_files WHERE thread_id NOT IN (SELECT thread_id FROM brig_sessions)",
                            "DELETE FROM brig_session_state WHERE thread_id NOT IN (SELECT thread_id FROM brig_sessions)",
                            "DELETE FROM brig_sessions WHERE expires_at <= ?1"}) {
      Stmt st(db_, sql);
      if (std::string_view(sql).find("?1") != std::string_view::npos) st.Int(1, now);
      if (Status s = st.Run("cleanup failed"); !s.ok()) return s;
    }
    if (Status s = txn.Commit(); !s.ok()) return s;
    return stats;
  }

  StatusOr<std::unique_ptr<SessionLock>> LockSession(std::string_view thread_id,
                                                     std::chrono::milliseconds timeout) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    char name[17];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(ThreadIdHash(thread_id)));
    return LockFile(lock_dir_ + "/" + name, timeout);
  }

 private:
  Status Migrate() {
    std::lock_guard<std::mutex> lock(mu_);
    // EXCLUSIVE: a second process opening at the same moment waits here (busy_timeout),
    // then finds the migrations recorded and applies none.
    Txn txn(db_, "BEGIN EXCLUSIVE");
    if (Status s = txn.Begun(); !s.ok()) return s;
    if (Status s = Stmt(db_,
                        "CREATE TABLE IF NOT EXISTS brig_schema_version"
                        " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
                       .Run("cannot create the schema version table");
        !s.ok()) {
      return s;
    }
    int64_t current;
    {
      Stmt st(db_, "SELECT coalesce(max(version), 0) FROM brig_schema_version");
      const int rc = st.Step();
      if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot read the schema version");
      current = st.ColInt(0);
    }
    const auto migrations = SqliteMigrations();
    if (current > migrations.back().version) {
      return Status::FailedPrecondition("the SQLite store is at schema version " + std::to_string(current) +
                                        ", newer than this brig knows (" +
                                        std::to_string(migrations.back().version) + "): upgrade brig");
    }
    for (const Migration& m : migrations) {
      if (m.version <= current) continue;
      char* err = nullptr;
      if (sqlite3_exec(db_, m.sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        return Status::Internal("schema migration " + std::to_string(m.version) + " failed: " + msg);
      }
      Stmt st(db_, "INSERT INTO brig_schema_version (version, applied_at) VALUES (?1, ?2)");
      st.Int(1, m.version).Int(2, NowMicros());
      if (Status s = st.Run("cannot record the schema version"); !s.ok()) return s;
    }
    return txn.Commit();
  }

  // Inserts a session row. AlreadyExists (naming it) if the thread_id is taken.
  // REQUIRES: mu_ held.
  Status InsertSessionLocked(std::string_view thread_id, int64_t now, int64_t expires_at, const std::string& meta,
                             const std::string& quotas = "{}") {
    Stmt st(db_,
            "INSERT INTO brig_sessions (thread_id, created_at, last_accessed, expires_at, metadata, quotas)"
            " VALUES (?1, ?2, ?2, ?3, ?4, ?5)");
    st.Text(1, thread_id).Int(2, now).Int(3, expires_at).Text(4, meta).Text(5, quotas);
    Status s = st.Run("cannot create session");
    if (s.IsAlreadyExists()) {
      return Status::AlreadyExists("session '" + std::string(thread_id) + "' already exists");
    }
    return s;
  }

  // The first state of a new session, at version 1. REQUIRES: mu_ held, in a transaction.
  Status InsertStateLocked(std::string_view thread_id, const StateWrite& w, int64_t now) {
    Stmt st(db_,
            "INSERT INTO brig_session_state (thread_id, snapshot, format, guest_build_id, version, updated_at)"
            " VALUES (?1, ?2, ?3, ?4, 1, ?5)");
    st.Text(1, thread_id).Blob(2, w.snapshot).Text(3, w.format).Text(4, w.guest_build_id).Int(5, now);
    return st.Run("cannot save state");
  }

  // The session's state version, 0 if it has none. REQUIRES: mu_ held.
  StatusOr<int64_t> StateVersionLocked(std::string_view thread_id) {
    Stmt st(db_, "SELECT version FROM brig_session_state WHERE thread_id = ?1");
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc == SQLITE_ROW) return st.ColInt(0);
    if (rc == SQLITE_DONE) return int64_t{0};
    return SqliteError(db_, rc, "cannot read state version");
  }

  // OK if the session exists; NotFound if not; the read's error otherwise. REQUIRES: mu_ held.
  Status RequireSessionLocked(std::string_view thread_id) {
    StatusOr<bool> exists = ExistsLocked(thread_id);
    if (!exists.ok()) return exists.status();
    return exists.value() ? Status::Ok() : SessionNotFound(thread_id);
  }

  StatusOr<bool> ExistsLocked(std::string_view thread_id) {
    Stmt st(db_, "SELECT 1 FROM brig_sessions WHERE thread_id = ?1");
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, "cannot read session");
  }

  // NotFound naming whichever is missing, the session or the file. REQUIRES: mu_ held.
  Status MissingFileLocked(std::string_view thread_id, std::string_view path) {
    StatusOr<bool> exists = ExistsLocked(thread_id);
    if (!exists.ok()) return exists.status();
    return exists.value() ? internal::FileNotFound(thread_id, path) : SessionNotFound(thread_id);
  }

  // REQUIRES: mu_ held, inside a transaction, the session exists.
  Status UpsertFileLocked(std::string_view thread_id, const FileWrite& f, const std::string& type, int64_t now) {
    Stmt st(db_,
            "INSERT INTO brig_files"
            " (thread_id, path, content, content_type, size, created_at, modified_at)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (thread_id, path) DO UPDATE SET"
            " content = excluded.content, content_type = excluded.content_type,"
            " size = excluded.size, modified_at = excluded.modified_at");
    st.Text(1, thread_id).Text(2, f.path).Blob(3, f.content).Text(4, type);
    st.Int(5, static_cast<int64_t>(f.content.size())).Int(6, now);
    return st.Run("cannot write file '" + f.path + "'");
  }

  // One statement that must affect exactly one session row, else NotFound.
  template <typename BindFn>
  Status UpdateSession(std::string_view thread_id, const char* sql, BindFn bind) {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, sql);
    st.Text(1, thread_id);
    bind(st);
    if (Status s = st.Run("cannot update session"); !s.ok()) return s;
    if (sqlite3_changes(db_) == 0) return SessionNotFound(thread_id);
    return Status::Ok();
  }

  std::mutex mu_;
  sqlite3* const db_;  // GUARDED_BY(mu_); the only connection
  const std::string lock_dir_;
  const std::function<int64_t()> clock_;
};

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(std::string_view path, const StoreOptions& options) {
  if (path.empty()) return Status::InvalidArgument("sqlite: store URL has an empty path");
  const std::string p(path);
  if (p.find('\0') != std::string::npos) return Status::InvalidArgument("sqlite: path contains NUL");
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return Status::Unavailable("cannot open SQLite store " + p + ": " + why +
                               " (does the directory exist and is it writable?)");
  }
  auto store = std::make_unique<SqliteStore>(db, p, options);
  if (Status s = store->Init(options); !s.ok()) {
    return s.WithPrefix("SQLite store " + p + ": ");
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace brig::store
