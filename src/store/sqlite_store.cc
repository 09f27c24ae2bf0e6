#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/file_lock.h"
#include "store/write_lock.h"
#include "store/group_commit.h"
#include "store/migrations.h"
#include "store/store_internal.h"

namespace brig::store {
namespace {

// The state's version for the thread_id bound to ?1: the greater of its row's and its newest
// delta's (a delta's save leaves the row alone; migration 5); 0 if it has none.
constexpr const char* kStateVersion =
    "max(coalesce((SELECT version FROM brig_session_state WHERE thread_id = ?1), 0),"
    " coalesce((SELECT max(version) FROM brig_state_deltas WHERE thread_id = ?1), 0))";

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

// One connection with its prepared statements, kept for reuse: preparing each statement
// anew was a sixth of a durable execution's CPU (perf over bench/save_path_bench). Used by
// one thread at a time. Owns the connection.
class Conn {
 public:
  explicit Conn(sqlite3* db) : db(db) {}
  ~Conn() {
    for (auto& [sql, st] : idle_) sqlite3_finalize(st);
    sqlite3_close_v2(db);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // A prepared statement for `sql` (a kept one if idle); *rc is SQLite's code.
  sqlite3_stmt* Take(const std::string& sql, int* rc) {
    auto it = idle_.find(sql);
    if (it != idle_.end()) {
      sqlite3_stmt* st = it->second;
      idle_.erase(it);
      *rc = SQLITE_OK;
      return st;
    }
    sqlite3_stmt* st = nullptr;
    *rc = sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
    return st;
  }
  // Back for the next Take, reset and unbound.
  void Give(const std::string& sql, sqlite3_stmt* st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!idle_.emplace(sql, st).second) sqlite3_finalize(st);  // the same SQL was in use twice
  }

  sqlite3* const db;

 private:
  std::unordered_map<std::string, sqlite3_stmt*> idle_;
};

// One prepared statement (from its connection's cache). Binds never copy: bound views must
// outlive the Step calls.
class Stmt {
 public:
  Stmt(Conn& conn, const std::string& sql) : conn_(conn), db_(conn.db), sql_(sql) { stmt_ = conn.Take(sql_, &rc_); }
  ~Stmt() {
    if (stmt_) conn_.Give(sql_, stmt_);
  }
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
  Conn& conn_;
  sqlite3* const db_;
  const std::string sql_;
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

// Opens one more connection to the store at `path` (which exists) for reads.
StatusOr<std::unique_ptr<Conn>> OpenReader(const std::string& path, std::chrono::milliseconds busy_timeout) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteError(db, rc, "cannot open SQLite store " + path);
    sqlite3_close_v2(db);
    return s;
  }
  auto conn = std::make_unique<Conn>(db);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));
  // Reads only: a write through this connection would bypass the group commit.
  if (Status s = Stmt(*conn, "PRAGMA query_only=1").Run("cannot configure SQLite store"); !s.ok()) return s;
  return conn;
}

class SqliteStore final : public Store, private GroupCommit::Database {
 public:
  SqliteStore(sqlite3* db, std::string path, const StoreOptions& options)
      : writer_(db),
        path_(path),
        lock_dir_(path + ".locks"),
        busy_timeout_(options.busy_timeout),
        clock_(internal::ClockOf(options)),
        group_(this) {}
  ~SqliteStore() override = default;

  Status Init(const StoreOptions& options) {
    sqlite3_extended_result_codes(writer_.db, 1);
    sqlite3_busy_timeout(writer_.db, static_cast<int>(options.busy_timeout.count()));
    // Switching to WAL needs a moment alone with the file; a concurrent opener may answer
    // BUSY without the busy handler being asked, hence the retry.
    const auto deadline = std::chrono::steady_clock::now() + options.busy_timeout;
    while (true) {
      Stmt st(writer_, "PRAGMA journal_mode=WAL");
      const int rc = st.Step();
      if (rc == SQLITE_ROW) {
        if (st.ColText(0) != "wal") return Status::Unavailable("SQLite store cannot use WAL mode");
        break;
      }
      if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) {
        return SqliteError(writer_.db, rc, "cannot open SQLite store");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
      if (Status s = Stmt(writer_, pragma).Run("cannot configure SQLite store"); !s.ok()) return s;
    }
    if (Status s = Migrate(); !s.ok()) return s;
    if (mkdir(lock_dir_.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::Unavailable("cannot create the session lock directory " + lock_dir_ + ": " +
                                 std::strerror(errno));
    }
    auto write_lock = WriteLock::Open(lock_dir_ + "/writer");
    if (!write_lock.ok()) return write_lock.status();
    write_lock_ = std::move(write_lock.value());
    return Status::Ok();
  }

  std::string_view backend() const override { return "sqlite"; }

  StatusOr<int> SchemaVersion() override {
    Reader r(this);
    if (!r.ok()) return r.status();
    Stmt st(r.conn(), "SELECT coalesce(max(version), 0) FROM brig_schema_version");
    const int rc = st.Step();
    if (rc != SQLITE_ROW) return SqliteError(r.db(), rc, "cannot read the schema version");
    return static_cast<int>(st.ColInt(0));
  }

  Status CreateSession(std::string_view thread_id, int64_t expires_at, const nlohmann::json& metadata,
                       const SessionQuotas& quotas) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    if (Status s = internal::CheckQuotas(quotas); !s.ok()) return s;
    const std::string meta = internal::MetadataText(metadata);
    return Write([&] { return InsertSession(thread_id, clock_(), expires_at, meta, internal::QuotasText(quotas)); });
  }

  StatusOr<SessionInfo> GetSession(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Reader r(this);
    if (!r.ok()) return r.status();
    Stmt st(r.conn(), (std::string(kSessionColumns) + "WHERE s.thread_id = ?1").c_str());
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc == SQLITE_DONE) return SessionNotFound(thread_id);
    if (rc != SQLITE_ROW) return SqliteError(r.db(), rc, "cannot read session");
    return ReadSession(st);
  }

  StatusOr<std::pair<SessionInfo, int64_t>> GetSessionAndStateVersion(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Reader r(this);
    if (!r.ok()) return r.status();
    // kSessionColumns' layout without the file counts (store.h), and the state's version.
    static const std::string sql =
        std::string("SELECT s.thread_id, s.created_at, s.last_accessed, s.expires_at, s.metadata, 0, 0, s.quotas, ") +
        kStateVersion + " FROM brig_sessions s WHERE s.thread_id = ?1";
    Stmt st(r.conn(), sql);
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc == SQLITE_DONE) return SessionNotFound(thread_id);
    if (rc != SQLITE_ROW) return SqliteError(r.db(), rc, "cannot read session");
    return std::make_pair(ReadSession(st), st.ColInt(8));
  }

  StatusOr<bool> SessionExists(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Reader r(this);
    if (!r.ok()) return r.status();
    return Exists(r.conn(), thread_id);
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
    int64_t expires_at = 0;
    // One statement: SQLite runs it under its write lock, so extensions never interleave.
    Status s = Write([&] {
      Stmt st(writer_, "UPDATE brig_sessions SET expires_at = max(expires_at, ?2) + ?3 WHERE thread_id = ?1"
                   " RETURNING expires_at");
      st.Text(1, thread_id);
      st.Int(2, now);
      st.Int(3, by);
      const int rc = st.Step();
      if (rc == SQLITE_DONE) return SessionNotFound(thread_id);
      if (rc != SQLITE_ROW) return SqliteError(writer_.db, rc, "cannot extend session");
      expires_at = st.ColInt(0);
      return st.Run("cannot extend session");  // to the end, or the update is not finished
    });
    if (!s.ok()) return s;
    return expires_at;
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
    Reader r(this);
    if (!r.ok()) return r.status();
    Stmt st(r.conn(), (std::string(kSessionColumns) + "ORDER BY s.thread_id").c_str());
    std::vector<SessionInfo> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadSession(st));
    if (rc != SQLITE_DONE) return SqliteError(r.db(), rc, "cannot list sessions");
    return out;
  }

  StatusOr<std::vector<std::string>> ListExpiredSessions(int64_t now) override {
    Reader r(this);
    if (!r.ok()) return r.status();
    Stmt st(r.conn(), "SELECT thread_id FROM brig_sessions WHERE expires_at <= ?1 ORDER BY thread_id");
    st.Int(1, now);
    std::vector<std::string> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(st.ColText(0));
    if (rc != SQLITE_DONE) return SqliteError(r.db(), rc, "cannot list expired sessions");
    return out;
  }

  Status PutFile(std::string_view thread_id, const FileWrite& file) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = internal::CheckFileWrite(file); !s.ok()) return s;
    const std::string type = internal::ContentTypeOf(file);
    return Write([&] {
      if (Status s = RequireSession(writer_, thread_id); !s.ok()) return s;
      return UpsertFile(thread_id, file, type, clock_());
    });
  }

  StatusOr<FileData> GetFile(std::string_view thread_id, std::string_view path, int64_t offset,
                             int64_t limit) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (Status s = ValidateFilePath(path); !s.ok()) return s;
    if (offset < 0) return Status::InvalidArgument("file offset is negative");
    // No file is longer than kMaxFileBytes, so this limit means "to the end".
    const int64_t len = limit < 0 ? kMaxFileBytes + 1 : limit;
    Reader r(this);
    if (!r.ok()) return r.status();
    Stmt st(r.conn(),
            "SELECT content_type, size, created_at, modified_at, substr(content, ?3 + 1, ?4)"
            " FROM brig_files WHERE thread_id = ?1 AND path = ?2");
    st.Text(1, thread_id).Text(2, path).Int(3, std::min(offset, kMaxFileBytes + 1)).Int(4, len);
    const int rc = st.Step();
    if (rc == SQLITE_DONE) return MissingFile(r.conn(), thread_id, path);
    if (rc != SQLITE_ROW) return SqliteError(r.db(), rc, "cannot read file");
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
    return Write([&] {
      Stmt st(writer_, "DELETE FROM brig_files WHERE thread_id = ?1 AND path = ?2");
      st.Text(1, thread_id).Text(2, path);
      if (Status s = st.Run("cannot delete file"); !s.ok()) return s;
      if (sqlite3_changes(writer_.db) == 0) return MissingFile(writer_, thread_id, path);
      return Status::Ok();
    });
  }

  StatusOr<std::vector<FileInfo>> ListFiles(std::string_view thread_id, std::string_view prefix) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Reader r(this);
    if (!r.ok()) return r.status();
    // One read transaction: the session check and the listing see one snapshot.
    ReadTxn txn(r.db());
    if (Status s = RequireSession(r.conn(), thread_id); !s.ok()) return s;
    // A byte-wise prefix test: LIKE and GLOB would give meaning to '%', '_', '*' in paths.
    Stmt st(r.conn(),
            "SELECT path, content_type, size, created_at, modified_at FROM brig_files"
            " WHERE thread_id = ?1 AND substr(CAST(path AS BLOB), 1, length(CAST(?2 AS BLOB))) = CAST(?2 AS BLOB)"
            " ORDER BY CAST(path AS BLOB)");
    st.Text(1, thread_id).Text(2, prefix);
    std::vector<FileInfo> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      out.push_back(FileInfo{st.ColText(0), st.ColText(1), st.ColInt(2), st.ColInt(3), st.ColInt(4)});
    }
    if (rc != SQLITE_DONE) return SqliteError(r.db(), rc, "cannot list files");
    return out;
  }

  StatusOr<FileUsage> GetFileUsage(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Reader r(this);
    if (!r.ok()) return r.status();
    ReadTxn txn(r.db());
    if (Status s = RequireSession(r.conn(), thread_id); !s.ok()) return s;
    Stmt st(r.conn(), "SELECT count(*) FILTER (WHERE content_type <> 'inode/directory'), coalesce(sum(size), 0)"
                    " FROM brig_files WHERE thread_id = ?1");
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc != SQLITE_ROW) return SqliteError(r.db(), rc, "cannot count files");
    return FileUsage{st.ColInt(0), st.ColInt(1)};
  }

  StatusOr<std::optional<SessionState>> GetState(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Reader r(this);
    if (!r.ok()) return r.status();
    // One statement, so the session check, the state, its deltas and the fallback come from
    // one snapshot: the state's row first, then its deltas in order.
    Stmt st(r.conn(),
            "SELECT 0, st.snapshot, st.format, st.guest_build_id, st.version, st.updated_at,"
            " fb.fallback, fb.version, st.snapshot_version"
            " FROM brig_sessions s LEFT JOIN brig_session_state st ON st.thread_id = s.thread_id"
            " LEFT JOIN brig_session_fallback fb ON fb.thread_id = s.thread_id"
            " WHERE s.thread_id = ?1"
            " UNION ALL SELECT 1, d.delta, NULL, NULL, d.version, d.updated_at, NULL, NULL, NULL"
            " FROM brig_state_deltas d JOIN brig_session_state st ON st.thread_id = d.thread_id"
            " WHERE d.thread_id = ?1 AND d.version > st.snapshot_version"
            " ORDER BY 1, 5");
    st.Text(1, thread_id);
    int rc = st.Step();
    if (rc == SQLITE_DONE) return SessionNotFound(thread_id);
    if (rc != SQLITE_ROW) return SqliteError(r.db(), rc, "cannot read state");
    if (st.ColInt(4) == 0) return std::optional<SessionState>();
    SessionState state;
    state.snapshot = st.ColBlob(1);
    state.format = st.ColText(2);
    state.guest_build_id = st.ColText(3);
    state.version = st.ColInt(4);
    state.updated_at = st.ColInt(5);
    state.fallback = st.ColBlob(6);
    state.fallback_version = st.ColInt(7);
    state.snapshot_version = st.ColInt(8);
    while ((rc = st.Step()) == SQLITE_ROW) {
      state.deltas.emplace_back(st.ColInt(4), st.ColBlob(1));
      // A delta's save leaves the state's row as it was (migration 5).
      if (st.ColInt(4) > state.version) {
        state.version = st.ColInt(4);
        state.updated_at = st.ColInt(5);
      }
    }
    if (rc != SQLITE_DONE) return SqliteError(r.db(), rc, "cannot read state");
    return std::optional<SessionState>(std::move(state));
  }

  StatusOr<int64_t> GetStateVersion(std::string_view thread_id) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    Reader r(this);
    if (!r.ok()) return r.status();
    Stmt st(r.conn(), (std::string("SELECT ") + kStateVersion + " FROM brig_sessions WHERE thread_id = ?1").c_str());
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc == SQLITE_DONE) return SessionNotFound(thread_id);
    if (rc != SQLITE_ROW) return SqliteError(r.db(), rc, "cannot read state version");
    return st.ColInt(0);
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
    int64_t version = 0;
    Status s = Write([&] {
      return SaveLocked(thread_id, expected_version, expected_session, state, files_upserted, files_deleted, types,
                        &version);
    });
    if (!s.ok()) return s;
    return version;
  }

  std::vector<StatusOr<int64_t>> SaveExecutions(const std::vector<ExecutionSave>& saves) override {
    std::vector<StatusOr<int64_t>> out(saves.size(), StatusOr<int64_t>(int64_t{0}));
    std::vector<std::vector<std::string>> types(saves.size());
    std::vector<int64_t> versions(saves.size(), 0);
    std::vector<std::function<Status()>> writes;
    std::vector<size_t> which;  // the save each write is of
    writes.reserve(saves.size());
    for (size_t i = 0; i < saves.size(); ++i) {
      const ExecutionSave& s = saves[i];
      StatusOr<std::vector<std::string>> checked =
          internal::CheckSave(s.thread_id, s.expected_version, s.files_upserted, s.files_deleted);
      if (!checked.ok()) {
        out[i] = checked.status();
        continue;
      }
      types[i] = std::move(checked.value());
      writes.push_back([this, &s, &t = types[i], &v = versions[i]] {
        return SaveLocked(s.thread_id, s.expected_version, s.expected_session, s.state, s.files_upserted,
                          s.files_deleted, t, &v);
      });
      which.push_back(i);
    }
    std::vector<const std::function<Status()>*> pointers;
    pointers.reserve(writes.size());
    for (const auto& w : writes) pointers.push_back(&w);
    std::vector<Status> results = group_.RunAll(pointers);
    for (size_t k = 0; k < results.size(); ++k) {
      const size_t i = which[k];
      out[i] = results[k].ok() ? StatusOr<int64_t>(versions[i]) : StatusOr<int64_t>(results[k]);
    }
    return out;
  }

  StatusOr<bool> SaveFallback(std::string_view thread_id, int64_t version, std::string_view fallback) override {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    if (version < 1) return Status::InvalidArgument("a fallback belongs to a saved version (>= 1)");
    bool written = false;
    Status s = Write([&] {
      written = false;
      if (Status e = RequireSession(writer_, thread_id); !e.ok()) return e;
      Stmt st(writer_,
              (std::string("INSERT INTO brig_session_fallback (thread_id, version, fallback)"
                           " SELECT ?1, ?2, ?3 WHERE ") +
               kStateVersion +
               " >= ?2"
               " ON CONFLICT (thread_id) DO UPDATE SET version = excluded.version, fallback = excluded.fallback"
               " WHERE brig_session_fallback.version < excluded.version")
                  .c_str());
      st.Text(1, thread_id).Int(2, version).Blob(3, fallback);
      if (Status e = st.Run("cannot save the fallback"); !e.ok()) return e;
      written = sqlite3_changes(writer_.db) > 0;
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return written;
  }

  WriteStats GetWriteStats() const override {
    const GroupCommit::Stats g = group_.stats();
    return WriteStats{g.transactions, g.writes, g.queued};
  }

  Status CreateSessionWith(std::string_view thread_id, int64_t expires_at, const nlohmann::json& metadata,
                           const std::optional<StateWrite>& state, const std::vector<FileWrite>& files) override {
    StatusOr<std::vector<std::string>> checked = internal::CheckSave(thread_id, 0, files, {});
    if (!checked.ok()) return checked.status();
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    const std::string meta = internal::MetadataText(metadata);
    return Write([&] {
      const int64_t now = clock_();
      if (Status s = InsertSession(thread_id, now, expires_at, meta); !s.ok()) return s;
      if (state) {
        if (Status s = InsertFirstState(thread_id, *state, now); !s.ok()) return s;
      }
      for (size_t i = 0; i < files.size(); ++i) {
        if (Status s = UpsertFile(thread_id, files[i], checked.value()[i], now); !s.ok()) return s;
      }
      return Status::Ok();
    });
  }

  Status CopySession(std::string_view from, std::string_view to, int64_t from_version, int64_t expires_at,
                     const nlohmann::json& metadata, const std::optional<StateWrite>& state) override {
    if (Status s = ValidateThreadId(from); !s.ok()) return s;
    if (Status s = ValidateThreadId(to); !s.ok()) return s;
    if (Status s = internal::CheckMetadata(metadata); !s.ok()) return s;
    const std::string meta = internal::MetadataText(metadata);
    // The group's transaction holds SQLite's write lock: no save of `from` lands in between.
    return Write([&] {
      if (Status s = RequireSession(writer_, from); !s.ok()) return s;
      StatusOr<int64_t> stored = StateVersion(writer_, from);
      if (!stored.ok()) return stored.status();
      if (stored.value() != from_version) return internal::VersionConflict(from, stored.value(), from_version);
      const int64_t now = clock_();
      if (Status s = InsertSession(to, now, expires_at, meta); !s.ok()) return s;
      if (state) {
        if (Status s = InsertFirstState(to, *state, now); !s.ok()) return s;
      }
      Stmt st(writer_,
              "INSERT INTO brig_files (thread_id, path, content_type, size, created_at, modified_at, content)"
              " SELECT ?2, path, content_type, size, created_at, modified_at, content FROM brig_files"
              " WHERE thread_id = ?1");
      st.Text(1, from).Text(2, to);
      if (Status s = st.Run("cannot copy files"); !s.ok()) return s;
      Stmt quotas(writer_,
                  "UPDATE brig_sessions SET quotas = (SELECT quotas FROM brig_sessions WHERE thread_id = ?1)"
                  " WHERE thread_id = ?2");
      quotas.Text(1, from).Text(2, to);
      return quotas.Run("cannot copy quotas");
    });
  }

  StatusOr<CleanupStats> Cleanup(int64_t now, bool dry_run) override {
    CleanupStats stats;
    if (dry_run) {
      Reader r(this);
      if (!r.ok()) return r.status();
      ReadTxn txn(r.db());
      if (Status s = CleanupStatsOf(r.conn(), now, &stats); !s.ok()) return s;
      return stats;
    }
    Status s = Write([&] {
      stats = CleanupStats{};
      if (Status e = CleanupStatsOf(writer_, now, &stats); !e.ok()) return e;
      for (const char* sql : {"DELETE FROM brig_files WHERE thread_id NOT IN (SELECT thread_id FROM brig_sessions)",
                              "DELETE FROM brig_session_state WHERE thread_id NOT IN (SELECT thread_id FROM brig_sessions)",
                              "DELETE FROM brig_session_fallback WHERE thread_id NOT IN (SELECT thread_id FROM brig_sessions)",
                              "DELETE FROM brig_state_deltas WHERE thread_id NOT IN (SELECT thread_id FROM brig_sessions)",
                              "DELETE FROM brig_sessions WHERE expires_at <= ?1"}) {
        Stmt st(writer_, sql);
        if (std::string_view(sql).find("?1") != std::string_view::npos) st.Int(1, now);
        if (Status e = st.Run("cleanup failed"); !e.ok()) return e;
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
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
  // A read connection, checked out of the pool for one call (several may read at once, also
  // while a group commit holds the writer; WAL lets readers see the last commit).
  class Reader {
   public:
    explicit Reader(SqliteStore* store) : store_(store) {
      {
        std::lock_guard<std::mutex> lock(store_->readers_mu_);
        if (!store_->readers_.empty()) {
          conn_ = std::move(store_->readers_.back());
          store_->readers_.pop_back();
          return;
        }
      }
      StatusOr<std::unique_ptr<Conn>> opened = OpenReader(store_->path_, store_->busy_timeout_);
      if (opened.ok()) {
        conn_ = std::move(opened.value());
      } else {
        status_ = opened.status();
      }
    }
    ~Reader() {
      if (!conn_) return;
      std::lock_guard<std::mutex> lock(store_->readers_mu_);
      store_->readers_.push_back(std::move(conn_));
    }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    bool ok() const { return conn_ != nullptr; }
    const Status& status() const { return status_; }
    Conn& conn() const { return *conn_; }
    sqlite3* db() const { return conn_->db; }

   private:
    SqliteStore* const store_;
    std::unique_ptr<Conn> conn_;
    Status status_;
  };

  // A read transaction (BEGIN DEFERRED): the statements in it read one snapshot.
  class ReadTxn {
   public:
    explicit ReadTxn(sqlite3* db) : db_(db) { begun_ = sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) == SQLITE_OK; }
    ~ReadTxn() {
      if (begun_ && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    }

   private:
    sqlite3* const db_;
    bool begun_;
  };

  // A write: runs `fn` on the writer connection inside a group transaction (GroupCommit).
  template <typename Fn>
  Status Write(Fn fn) {
    const std::function<Status()> write = fn;
    return group_.Run(write);
  }

  // ---- GroupCommit::Database, on the writer connection (the leader's thread only) ----
  Status Exec(const char* sql, std::string_view what) {
    const int rc = sqlite3_exec(writer_.db, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : SqliteError(writer_.db, rc, what);
  }
  // Each transaction holds the store's cross-process write lock (write_lock.h) from before
  // BEGIN to after COMMIT or ROLLBACK: a writer in another process waits on it and wakes at
  // its release, instead of in SQLite's busy handler.
  Status Begin() override {
    if (Status s = write_lock_->Lock(busy_timeout_); !s.ok()) return s;
    write_locked_ = true;
    Status s = Exec("BEGIN IMMEDIATE", "cannot begin a transaction");
    if (!s.ok()) ReleaseWriteLock();
    return s;
  }
  void ReleaseWriteLock() {
    if (!write_locked_) return;
    write_locked_ = false;
    write_lock_->Unlock();
  }
  Status Savepoint() override { return Exec("SAVEPOINT brig_write", "cannot make a savepoint"); }
  Status EndSavepoint(bool keep) override {
    if (!keep) {
      if (Status s = Exec("ROLLBACK TO brig_write", "cannot roll back to a savepoint"); !s.ok()) return s;
    }
    return Exec("RELEASE brig_write", "cannot release a savepoint");
  }
  bool Aborted() override { return sqlite3_get_autocommit(writer_.db) != 0; }
  Status Commit() override {
    Status s = Exec("COMMIT", "commit failed");
    if (!s.ok()) Rollback();  // a COMMIT that failed (BUSY, I/O) may leave the transaction open
    ReleaseWriteLock();
    return s;
  }
  void Rollback() override {
    if (!sqlite3_get_autocommit(writer_.db)) sqlite3_exec(writer_.db, "ROLLBACK", nullptr, nullptr, nullptr);
    ReleaseWriteLock();
  }

  Status Migrate() {
    // EXCLUSIVE: a second process opening at the same moment waits here (busy_timeout),
    // then finds the migrations recorded and applies none.
    Txn txn(writer_.db, "BEGIN EXCLUSIVE");
    if (Status s = txn.Begun(); !s.ok()) return s;
    if (Status s = Stmt(writer_,
                        "CREATE TABLE IF NOT EXISTS brig_schema_version"
                        " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
                       .Run("cannot create the schema version table");
        !s.ok()) {
      return s;
    }
    int64_t current;
    {
      Stmt st(writer_, "SELECT coalesce(max(version), 0) FROM brig_schema_version");
      const int rc = st.Step();
      if (rc != SQLITE_ROW) return SqliteError(writer_.db, rc, "cannot read the schema version");
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
      if (sqlite3_exec(writer_.db, m.sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        return Status::Internal("schema migration " + std::to_string(m.version) + " failed: " + msg);
      }
      Stmt st(writer_, "INSERT INTO brig_schema_version (version, applied_at) VALUES (?1, ?2)");
      st.Int(1, m.version).Int(2, NowMicros());
      if (Status s = st.Run("cannot record the schema version"); !s.ok()) return s;
    }
    return txn.Commit();
  }

  // Inserts a session row. AlreadyExists (naming it) if the thread_id is taken. REQUIRES: in a write.
  Status InsertSession(std::string_view thread_id, int64_t now, int64_t expires_at, const std::string& meta,
                       const std::string& quotas = "{}") {
    Stmt st(writer_,
            "INSERT INTO brig_sessions (thread_id, created_at, last_accessed, expires_at, metadata, quotas)"
            " VALUES (?1, ?2, ?2, ?3, ?4, ?5)");
    st.Text(1, thread_id).Int(2, now).Int(3, expires_at).Text(4, meta).Text(5, quotas);
    Status s = st.Run("cannot create session");
    if (s.IsAlreadyExists()) {
      return Status::AlreadyExists("session '" + std::string(thread_id) + "' already exists");
    }
    return s;
  }

  // The first state of a new session, at version 1, with its fallback if it has one.
  // REQUIRES: in a write.
  Status InsertFirstState(std::string_view thread_id, const StateWrite& w, int64_t now) {
    if (w.delta) return internal::DeltaWithoutState(thread_id);
    {
      Stmt st(writer_,
              "INSERT INTO brig_session_state"
              " (thread_id, snapshot, format, guest_build_id, version, updated_at, snapshot_version)"
              " VALUES (?1, ?2, ?3, ?4, 1, ?5, 1)");
      st.Text(1, thread_id).Blob(2, w.snapshot).Text(3, w.format).Text(4, w.guest_build_id).Int(5, now);
      if (Status s = st.Run("cannot save state"); !s.ok()) return s;
    }
    if (!w.fallback) return Status::Ok();
    Stmt st(writer_, "INSERT INTO brig_session_fallback (thread_id, version, fallback) VALUES (?1, 1, ?2)");
    st.Text(1, thread_id).Blob(2, *w.fallback);
    return st.Run("cannot save the fallback");
  }

  // The session's state version, 0 if it has none.
  static StatusOr<int64_t> StateVersion(Conn& c, std::string_view thread_id) {
    Stmt st(c, (std::string("SELECT ") + kStateVersion).c_str());
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc == SQLITE_ROW) return st.ColInt(0);
    if (rc == SQLITE_DONE) return int64_t{0};
    return SqliteError(c.db, rc, "cannot read state version");
  }

  // The body of SaveExecution, in a write. Sets *version on success.
  Status SaveLocked(std::string_view thread_id, int64_t expected_version,
                    const std::optional<ExpectedSession>& expected_session,
                    const std::optional<StateWrite>& state,
                    const std::vector<FileWrite>& files_upserted, const std::vector<std::string>& files_deleted,
                    const std::vector<std::string>& types, int64_t* version_out) {
    const int64_t now = clock_();
    {
      // The session's check and its touch in one statement.
      Stmt st(writer_,
              "UPDATE brig_sessions SET last_accessed = ?2 WHERE thread_id = ?1"
              " AND (?3 = 0 OR (created_at = ?4 AND expires_at >= ?5))");
      st.Text(1, thread_id).Int(2, now).Int(3, expected_session ? 1 : 0);
      st.Int(4, expected_session ? expected_session->created_at : 0).Int(5, expected_session ? expected_session->expires_at : 0);
      if (Status s = st.Run("cannot update session"); !s.ok()) return s;
      if (sqlite3_changes(writer_.db) == 0) {
        return expected_session ? internal::SessionChanged(thread_id) : SessionNotFound(thread_id);
      }
    }
    int64_t stored = 0;
    bool stored_cleared = true;
    {
      Stmt st(writer_,
              "SELECT version, format = '', (SELECT max(version) FROM brig_state_deltas WHERE thread_id = ?1)"
              " FROM brig_session_state WHERE thread_id = ?1");
      st.Text(1, thread_id);
      const int rc = st.Step();
      if (rc == SQLITE_ROW) {
        stored = std::max(st.ColInt(0), st.ColInt(2));
        stored_cleared = st.ColInt(1) != 0;
      } else if (rc != SQLITE_DONE) {
        return SqliteError(writer_.db, rc, "cannot read state version");
      }
    }
    if (stored != expected_version) return internal::VersionConflict(thread_id, stored, expected_version);
    const int64_t version = expected_version + 1;
    const StateWrite empty;
    const StateWrite& w = state ? *state : empty;
    if (state && w.delta) {
      if (stored_cleared) return internal::DeltaWithoutState(thread_id);
      // The state's row stays as it is (migration 5): the delta's row carries the version.
      Stmt st(writer_, "INSERT INTO brig_state_deltas (thread_id, version, updated_at, delta) VALUES (?1, ?2, ?3, ?4)");
      st.Text(1, thread_id).Int(2, version).Int(3, now).Blob(4, w.snapshot);
      if (Status s = st.Run("cannot save state"); !s.ok()) return s;
    } else {
      // Without a new state the snapshot stays; a first save without one stores a cleared state.
      Stmt st(writer_,
              state ? "INSERT INTO brig_session_state"
                      " (thread_id, snapshot, format, guest_build_id, version, updated_at, snapshot_version)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5) ON CONFLICT (thread_id) DO UPDATE SET"
                      " snapshot = excluded.snapshot, format = excluded.format,"
                      " guest_build_id = excluded.guest_build_id, version = excluded.version,"
                      " updated_at = excluded.updated_at, snapshot_version = excluded.snapshot_version"
                    : "INSERT INTO brig_session_state"
                      " (thread_id, snapshot, format, guest_build_id, version, updated_at, snapshot_version)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5) ON CONFLICT (thread_id) DO UPDATE SET"
                      " version = excluded.version, updated_at = excluded.updated_at");
      st.Text(1, thread_id).Blob(2, w.snapshot).Text(3, w.format).Text(4, w.guest_build_id);
      st.Int(5, version).Int(6, now);
      if (Status s = st.Run("cannot save state"); !s.ok()) return s;
      if (state) {  // a whole state: the deltas before it are of no use
        Stmt del(writer_, "DELETE FROM brig_state_deltas WHERE thread_id = ?1");
        del.Text(1, thread_id);
        if (Status s = del.Run("cannot save state"); !s.ok()) return s;
      }
    }
    // A fallback saved with the state, or an empty one for a cleared state (so that none
    // taken before it can land after it).
    const bool cleared = state && !w.delta && w.snapshot.empty() && w.format.empty();
    if (state && (w.fallback || cleared)) {
      Stmt st(writer_,
              "INSERT INTO brig_session_fallback (thread_id, version, fallback) VALUES (?1, ?2, ?3)"
              " ON CONFLICT (thread_id) DO UPDATE SET version = excluded.version, fallback = excluded.fallback");
      st.Text(1, thread_id).Int(2, version).Blob(3, w.fallback && !cleared ? std::string_view(*w.fallback) : "");
      if (Status s = st.Run("cannot save the fallback"); !s.ok()) return s;
    }
    for (size_t i = 0; i < files_upserted.size(); ++i) {
      if (Status s = UpsertFile(thread_id, files_upserted[i], types[i], now); !s.ok()) return s;
    }
    for (const std::string& path : files_deleted) {
      Stmt st(writer_, "DELETE FROM brig_files WHERE thread_id = ?1 AND path = ?2");
      st.Text(1, thread_id).Text(2, path);
      if (Status s = st.Run("cannot delete file"); !s.ok()) return s;
    }
    *version_out = version;
    return Status::Ok();
  }

  // What a cleanup at `now` deletes, read through `db` (in a transaction).
  static Status CleanupStatsOf(Conn& c, int64_t now, CleanupStats* stats) {
    // Doomed rows: those of expired sessions, and those whose session is gone (orphans).
    constexpr const char* kDoomed =
        " WHERE thread_id IN (SELECT thread_id FROM brig_sessions WHERE expires_at <= ?1)"
        " OR thread_id NOT IN (SELECT thread_id FROM brig_sessions)";
    {
      Stmt st(c, "SELECT count(*) FROM brig_sessions WHERE expires_at <= ?1");
      st.Int(1, now);
      if (const int rc = st.Step(); rc != SQLITE_ROW) return SqliteError(c.db, rc, "cleanup failed");
      stats->sessions_deleted = st.ColInt(0);
    }
    {
      Stmt st(c, (std::string("SELECT count(*), coalesce(sum(size), 0) FROM brig_files") + kDoomed).c_str());
      st.Int(1, now);
      if (const int rc = st.Step(); rc != SQLITE_ROW) return SqliteError(c.db, rc, "cleanup failed");
      stats->files_deleted = st.ColInt(0);
      stats->bytes_freed = st.ColInt(1);
    }
    for (const char* sql : {"SELECT coalesce(sum(length(snapshot)), 0) FROM brig_session_state",
                            "SELECT coalesce(sum(length(fallback)), 0) FROM brig_session_fallback",
                            "SELECT coalesce(sum(length(delta)), 0) FROM brig_state_deltas"}) {
      Stmt st(c, (std::string(sql) + kDoomed).c_str());
      st.Int(1, now);
      if (const int rc = st.Step(); rc != SQLITE_ROW) return SqliteError(c.db, rc, "cleanup failed");
      stats->bytes_freed += st.ColInt(0);
    }
    return Status::Ok();
  }

  // OK if the session exists; NotFound if not; the read's error otherwise.
  static Status RequireSession(Conn& c, std::string_view thread_id) {
    StatusOr<bool> exists = Exists(c, thread_id);
    if (!exists.ok()) return exists.status();
    return exists.value() ? Status::Ok() : SessionNotFound(thread_id);
  }

  static StatusOr<bool> Exists(Conn& c, std::string_view thread_id) {
    Stmt st(c, "SELECT 1 FROM brig_sessions WHERE thread_id = ?1");
    st.Text(1, thread_id);
    const int rc = st.Step();
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(c.db, rc, "cannot read session");
  }

  // NotFound naming whichever is missing, the session or the file.
  static Status MissingFile(Conn& c, std::string_view thread_id, std::string_view path) {
    StatusOr<bool> exists = Exists(c, thread_id);
    if (!exists.ok()) return exists.status();
    return exists.value() ? internal::FileNotFound(thread_id, path) : SessionNotFound(thread_id);
  }

  // REQUIRES: in a write, the session exists.
  Status UpsertFile(std::string_view thread_id, const FileWrite& f, const std::string& type, int64_t now) {
    Stmt st(writer_,
            "INSERT INTO brig_files"
            " (thread_id, path, content, content_type, size, created_at, modified_at)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (thread_id, path) DO UPDATE SET"
            " content = excluded.content, content_type = excluded.content_type,"
            " size = excluded.size, modified_at = excluded.modified_at");
    st.Text(1, thread_id).Text(2, f.path).Blob(3, f.content).Text(4, type);
    st.Int(5, static_cast<int64_t>(f.content.size())).Int(6, now);
    return st.Run("cannot write file '" + f.path + "'");
  }

  // One statement that must affect exactly one session row, else NotFound; a write.
  template <typename BindFn>
  Status UpdateSession(std::string_view thread_id, const char* sql, BindFn bind) {
    if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
    return Write([&] {
      Stmt st(writer_, sql);
      st.Text(1, thread_id);
      bind(st);
      if (Status s = st.Run("cannot update session"); !s.ok()) return s;
      if (sqlite3_changes(writer_.db) == 0) return SessionNotFound(thread_id);
      return Status::Ok();
    });
  }

  // The writer: used by Init (before the store is shared) and then only inside group_'s
  // transactions, which GroupCommit runs one at a time.
  Conn writer_;
  const std::string path_;
  const std::string lock_dir_;
  const std::chrono::milliseconds busy_timeout_;
  const std::function<int64_t()> clock_;
  // Taken around every write transaction (Begin .. Commit/Rollback, the group leader's
  // thread); write_locked_ says whether that thread holds it now.
  std::unique_ptr<WriteLock> write_lock_;
  bool write_locked_ = false;
  GroupCommit group_;
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Conn>> readers_;  // GUARDED_BY(readers_mu_): idle read connections
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
