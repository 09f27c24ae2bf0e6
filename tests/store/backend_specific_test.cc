// What only one backend has: SQLite's WAL file and busy timeout, PostgreSQL's pool and
// statement timeout. The shared behaviour is in conformance_test.cc.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <thread>

#include <gtest/gtest.h>

#include "backends.h"
#include "store/migrations.h"
#include "store/store.h"

namespace brig::store {
namespace {

using testing::PgServer;
using testing::PostgresBackend;
using testing::SqliteBackend;
using std::chrono::milliseconds;

// A store made by the first schema (content before content_type and size, the snapshot
// before the state's version) is moved to the latest (blobs last) on open, with every file and
// state kept.
TEST(SqliteStore, MigratesAVersionOneStoreKeepingItsFilesAndStates) {
  SqliteBackend backend;
  const std::string url = backend.NewUrl().value();
  const std::string path = url.substr(7);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const std::string v1 = std::string(SqliteMigrations()[0].sql) +
                         "CREATE TABLE brig_schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);"
                         "INSERT INTO brig_schema_version VALUES (1, 0);"
                         "INSERT INTO brig_sessions VALUES ('t', 0, 0, 9000000000000000, '{}');"
                         "INSERT INTO brig_files VALUES ('t', '/tmp/a', x'616263', 'text/plain', 3, 1, 2);"
                         "INSERT INTO brig_session_state VALUES ('t', x'00ff01', 'pages', 'gb', 3, 7);";
  ASSERT_EQ(sqlite3_exec(db, v1.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
  StatusOr<std::unique_ptr<Store>> s = OpenStore(url);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s.value()->SchemaVersion().value(), SqliteMigrations().back().version);
  StatusOr<SessionInfo> old = s.value()->GetSession("t");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_TRUE(old.value().quotas.empty());  // a session from before quotas has none of its own
  StatusOr<FileData> f = s.value()->GetFile("t", "/tmp/a");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f.value().content, "abc");
  EXPECT_EQ(f.value().info.content_type, "text/plain");
  EXPECT_EQ(f.value().info.created_at, 1);
  EXPECT_EQ(f.value().info.modified_at, 2);
  EXPECT_EQ(s.value()->GetSession("t").value().file_count, 1);
  EXPECT_TRUE(s.value()->PutFile("t", {"/tmp/b", "xyz", ""}).ok());
  StatusOr<std::optional<SessionState>> state = s.value()->GetState("t");
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  ASSERT_TRUE(state.value().has_value());
  EXPECT_EQ(state.value()->snapshot, std::string("\x00\xff\x01", 3));
  EXPECT_EQ(state.value()->format, "pages");
  EXPECT_EQ(state.value()->guest_build_id, "gb");
  EXPECT_EQ(state.value()->version, 3);
  EXPECT_EQ(state.value()->snapshot_version, 3);
  EXPECT_EQ(state.value()->updated_at, 7);
  EXPECT_EQ(s.value()->GetStateVersion("t").value(), 3);
  StateWrite next;
  next.snapshot = "next";
  next.format = "pages";
  next.guest_build_id = "gb";
  StatusOr<int64_t> saved = s.value()->SaveExecution("t", 3, next, {}, {});
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved.value(), 4);
  EXPECT_EQ(s.value()->GetState("t").value()->snapshot, "next");
}

// The lock file of `thread_id` in the SQLite store at `path` (the store's naming).
std::string LockFilePath(const std::string& path, std::string_view thread_id) {
  char name[17];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(ThreadIdHash(thread_id)));
  return path + ".locks/" + name;
}

TEST(SqliteStore, UsesWalAndKeepsLockFilesBesideTheDatabase) {
  SqliteBackend backend;
  const std::string url = backend.NewUrl().value();
  const std::string path = url.substr(7);
  StatusOr<std::unique_ptr<Store>> s = OpenStore(url);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s.value()->backend(), "sqlite");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
  {
    StatusOr<std::unique_ptr<SessionLock>> lock = s.value()->LockSession("t");
    ASSERT_TRUE(lock.ok());
  }
  struct stat sb;
  EXPECT_EQ(stat(LockFilePath(path, "t").c_str(), &sb), 0) << LockFilePath(path, "t");
}

// Waiters in one process queue for a session lock (woken by the release); another process's
// flock still keeps them out, and one that timed out leaves nothing held behind.
TEST(SqliteStore, SessionLockWaitersInOneProcessAndAnother) {
  SqliteBackend backend;
  const std::string url = backend.NewUrl().value();
  StatusOr<std::unique_ptr<Store>> s = OpenStore(url);
  ASSERT_TRUE(s.ok());
  Store& store = *s.value();
  {
    StatusOr<std::unique_ptr<SessionLock>> first = store.LockSession("t");
    ASSERT_TRUE(first.ok());
    std::atomic<bool> second_has_it{false};
    std::thread waiter([&] {
      StatusOr<std::unique_ptr<SessionLock>> second = store.LockSession("t", milliseconds(20'000));
      EXPECT_TRUE(second.ok()) << second.status().ToString();
      second_has_it = true;
    });
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_FALSE(second_has_it.load()) << "two holders of one session lock";
    EXPECT_TRUE(store.LockSession("t", milliseconds(10)).status().IsDeadlineExceeded());
    first.value().reset();
    waiter.join();
    EXPECT_TRUE(second_has_it.load());
  }
  // Another process holds the lock file: this one times out, then gets it once that ends.
  const std::string file = LockFilePath(url.substr(7), "t");
  int ready[2], done[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(done), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int fd = open(file.c_str(), O_RDWR);
    char c = fd >= 0 && flock(fd, LOCK_EX) == 0 ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    (void)!read(done[0], &c, 1);
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  EXPECT_TRUE(store.LockSession("t", milliseconds(200)).status().IsDeadlineExceeded());
  (void)!write(done[1], "x", 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  StatusOr<std::unique_ptr<SessionLock>> after = store.LockSession("t", milliseconds(5'000));
  EXPECT_TRUE(after.ok()) << after.status().ToString();
  // Released and taken again, through the descriptor this process keeps open (file_lock.cc):
  // still the file every process locks, so another process is kept out.
  after.value().reset();
  after = store.LockSession("t", milliseconds(5'000));
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  pid_t prober = fork();
  ASSERT_GE(prober, 0);
  if (prober == 0) {
    int fd = open(file.c_str(), O_RDWR);
    _exit(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK ? 0 : 1);
  }
  ASSERT_EQ(waitpid(prober, &status, 0), prober);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "another process took a held session lock";
  for (int fd : {ready[0], ready[1], done[0], done[1]}) close(fd);
}

TEST(SqliteStore, WriterBlockedByAnotherProcessGivesUpAfterBusyTimeout) {
  SqliteBackend backend;
  const std::string url = backend.NewUrl().value();
  StoreOptions options;
  options.busy_timeout = milliseconds(200);
  StatusOr<std::unique_ptr<Store>> s = OpenStore(url, options);
  ASSERT_TRUE(s.ok());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(url.substr(7).c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto start = std::chrono::steady_clock::now();
  Status st = s.value()->CreateSession("t", 0, {});
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
  EXPECT_GE(waited, milliseconds(150));
  EXPECT_LT(waited, milliseconds(5000));
  // Reads still work while another process writes (WAL).
  EXPECT_TRUE(s.value()->ListSessions().ok());
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_TRUE(s.value()->CreateSession("t", 0, {}).ok());
}

// The group commit, made to happen: another process holds the write lock, so the first save
// waits in BEGIN while the others queue behind it; all of them then share one transaction,
// and the ones that fail (a conflict, a missing session, a constraint hit after the state and
// a file were written) are rolled back to their savepoints alone.
TEST(SqliteStore, SavesQueuedDuringACommitShareItsTransactionAndFailAlone) {
  SqliteBackend backend;
  const std::string url = backend.NewUrl().value();
  StatusOr<std::unique_ptr<Store>> opened = OpenStore(url);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& s = *opened.value();
  constexpr int kGood = 6;
  for (int i = 0; i < kGood + 2; ++i) ASSERT_TRUE(s.CreateSession("c" + std::to_string(i), int64_t{1} << 60, {}).ok());
  ASSERT_TRUE(SqliteBackend::ExecSql(url, SqliteBackend::PoisonFileSql("/tmp/poison")).ok());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(url.substr(7).c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const WriteStats before = s.GetWriteStats();

  std::vector<StatusOr<int64_t>> results(kGood + 3, Status::Internal("unset"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kGood; ++i) {
    threads.emplace_back([&, i] {
      const std::string tid = "c" + std::to_string(i);
      results[i] = s.SaveExecution(tid, 0, StateWrite{tid, "f", "b"}, {{"/tmp/f", tid, ""}}, {});
    });
  }
  threads.emplace_back([&] {  // a version conflict
    results[kGood] = s.SaveExecution("c" + std::to_string(kGood), 3, StateWrite{"x", "f", "b"}, {}, {});
  });
  threads.emplace_back([&] {  // fails on its second file, after its state and first file
    results[kGood + 1] = s.SaveExecution("c" + std::to_string(kGood + 1), 0, StateWrite{"x", "f", "b"},
                                         {{"/tmp/f", "x", ""}, {"/tmp/poison", "x", ""}}, {});
  });
  threads.emplace_back([&] {  // no such session
    results[kGood + 2] = s.SaveExecution("missing", 0, StateWrite{"x", "f", "b"}, {}, {});
  });
  // Every save queued (the first one waits in BEGIN with its own still in the queue).
  while (s.GetWriteStats().queued < kGood + 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  for (auto& t : threads) t.join();

  const WriteStats after = s.GetWriteStats();
  EXPECT_EQ(after.writes - before.writes, kGood + 3);
  EXPECT_EQ(after.transactions - before.transactions, 1) << "the saves did not share one transaction";
  for (int i = 0; i < kGood; ++i) {
    const std::string tid = "c" + std::to_string(i);
    ASSERT_TRUE(results[i].ok()) << tid << ": " << results[i].status().ToString();
    EXPECT_EQ(results[i].value(), 1);
    EXPECT_EQ(s.GetState(tid).value()->snapshot, tid);
    EXPECT_EQ(s.GetFile(tid, "/tmp/f").value().content, tid);
  }
  EXPECT_TRUE(results[kGood].status().IsConflict()) << results[kGood].status().ToString();
  EXPECT_FALSE(results[kGood + 1].ok());
  EXPECT_TRUE(results[kGood + 2].status().IsNotFound()) << results[kGood + 2].status().ToString();
  for (int i = kGood; i < kGood + 2; ++i) {
    const std::string tid = "c" + std::to_string(i);
    EXPECT_FALSE(s.GetState(tid).value().has_value()) << tid << ": a failed save left its state";
    EXPECT_TRUE(s.ListFiles(tid).value().empty()) << tid << ": a failed save left a file";
  }
}

// Reads do not wait for a commit in progress (they have connections of their own).
TEST(SqliteStore, ReadsGoOnWhileAWriteWaitsForTheWriteLock) {
  SqliteBackend backend;
  const std::string url = backend.NewUrl().value();
  StatusOr<std::unique_ptr<Store>> opened = OpenStore(url);
  ASSERT_TRUE(opened.ok());
  Store& s = *opened.value();
  ASSERT_TRUE(s.CreateSession("t", int64_t{1} << 60, {}).ok());
  ASSERT_TRUE(s.SaveExecution("t", 0, StateWrite{"one", "f", "b"}, {{"/a", "a", ""}}, {}).ok());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(url.substr(7).c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::thread writer([&] { EXPECT_TRUE(s.TouchSession("t").ok()); });
  while (s.GetWriteStats().queued < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The writer holds the writer connection, waiting for the lock: reads answer all the same.
  EXPECT_EQ(s.GetState("t").value()->snapshot, "one");
  EXPECT_EQ(s.GetStateVersion("t").value(), 1);
  EXPECT_EQ(s.GetFile("t", "/a").value().content, "a");
  EXPECT_EQ(s.ListSessions().value().size(), 1u);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  writer.join();
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::SkipPostgres()) GTEST_SKIP() << "BRIG_SKIP_POSTGRES=1";
    StatusOr<std::string> url = backend_.NewUrl();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = url.value();
  }
  PostgresBackend backend_;
  std::string url_;
};

TEST_F(PostgresStoreTest, PoolSizeMustBePositive) {
  StoreOptions options;
  options.pool_size = 0;
  EXPECT_TRUE(OpenStore(url_, options).status().IsInvalidArgument());
}

TEST_F(PostgresStoreTest, OneConnectionServesManyThreads) {
  StoreOptions options;
  options.pool_size = 1;
  StatusOr<std::unique_ptr<Store>> s = OpenStore(url_, options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Store& store = *s.value();
  ASSERT_TRUE(store.CreateSession("t", int64_t{1} << 60, {}).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 20; ++k) {
        const std::string path = "/t" + std::to_string(i) + "/" + std::to_string(k);
        if (!store.PutFile("t", {path, path, ""}).ok()) ++failures;
        StatusOr<FileData> f = store.GetFile("t", path);
        if (!f.ok() || f.value().content != path) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store.GetFileUsage("t").value().file_count, 160);
}

TEST_F(PostgresStoreTest, StatementTimeoutCutsAStatementWaitingOnALock) {
  StoreOptions options;
  options.statement_timeout = milliseconds(300);
  StatusOr<std::unique_ptr<Store>> s = OpenStore(url_, options);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // Another client holds the sessions table; brig's statement waits, then is cancelled.
  PGconn* other = PQconnectdb(url_.c_str());
  ASSERT_EQ(PQstatus(other), CONNECTION_OK);
  PQclear(PQexec(other, "BEGIN"));
  PGresult* r = PQexec(other, "LOCK TABLE brig_sessions IN ACCESS EXCLUSIVE MODE");
  ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
  PQclear(r);
  const auto start = std::chrono::steady_clock::now();
  StatusOr<std::vector<SessionInfo>> list = s.value()->ListSessions();
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(list.status().IsDeadlineExceeded()) << list.status().ToString();
  EXPECT_GE(waited, milliseconds(250));
  EXPECT_LT(waited, milliseconds(10'000));
  PQclear(PQexec(other, "ROLLBACK"));
  PQfinish(other);
  // The connection that timed out is usable again.
  EXPECT_TRUE(s.value()->ListSessions().ok());
}

TEST_F(PostgresStoreTest, EveryStoreOnOneDatabaseGetsTheFirstImageSeed) {
  StatusOr<std::unique_ptr<Store>> a = OpenStore(url_);
  StatusOr<std::unique_ptr<Store>> b = OpenStore(url_);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a.value()->SharedImageSeed(0xfeedfacecafebeefull).value(), 0xfeedfacecafebeefull);
  EXPECT_EQ(b.value()->SharedImageSeed(7).value(), 0xfeedfacecafebeefull);
  EXPECT_EQ(a.value()->SharedImageSeed(8).value(), 0xfeedfacecafebeefull);
  // Nodes starting together on a new database: one proposal wins, all read it.
  StatusOr<std::string> fresh = backend_.NewUrl();
  ASSERT_TRUE(fresh.ok());
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < 6; ++i) {
    StatusOr<std::unique_ptr<Store>> s = OpenStore(fresh.value());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    stores.push_back(std::move(s.value()));
  }
  std::vector<uint64_t> got(stores.size());
  std::vector<std::thread> threads;
  std::barrier sync(static_cast<std::ptrdiff_t>(stores.size()));
  for (size_t i = 0; i < stores.size(); ++i) {
    threads.emplace_back([&, i] {
      sync.arrive_and_wait();
      StatusOr<uint64_t> seed = stores[i]->SharedImageSeed(100 + i);
      got[i] = seed.ok() ? seed.value() : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GE(got[0], 100u);
  EXPECT_LT(got[0], 106u);
  for (uint64_t g : got) EXPECT_EQ(g, got[0]);
}

TEST(SqliteStore, KeepsNoSharedImageSeed) {
  SqliteBackend backend;
  StatusOr<std::unique_ptr<Store>> s = OpenStore(backend.NewUrl().value());
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s.value()->SharedImageSeed(1).status().IsFailedPrecondition());
}

TEST_F(PostgresStoreTest, ValuesNeverBecomeSql) {
  StatusOr<std::unique_ptr<Store>> s = OpenStore(url_);
  ASSERT_TRUE(s.ok());
  const std::string evil = "x'); DROP TABLE brig_files; --";
  ASSERT_TRUE(s.value()->CreateSession(evil, 0, {{"q", "'; DELETE FROM brig_sessions; --"}}).ok());
  ASSERT_TRUE(s.value()->PutFile(evil, {"/a'b", "'; DROP TABLE brig_sessions; --", ""}).ok());
  EXPECT_EQ(s.value()->GetSession(evil).value().metadata["q"], "'; DELETE FROM brig_sessions; --");
  EXPECT_EQ(s.value()->GetFile(evil, "/a'b").value().content, "'; DROP TABLE brig_sessions; --");
  EXPECT_EQ(s.value()->ListSessions().value().size(), 1u);
}

TEST_F(PostgresStoreTest, AServerThatGoesAwayIsUnavailableNotACrash) {
  // A store pointed at a server that is stopped after open: calls fail cleanly. We cannot
  // stop the shared harness server, so terminate our backend connections instead.
  StatusOr<std::unique_ptr<Store>> s = OpenStore(url_);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s.value()->CreateSession("t", 0, {}).ok());
  ASSERT_TRUE(PgServer::Exec(PgServer::Get().Url("postgres"),
                             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
                  .ok());
  std::this_thread::sleep_for(milliseconds(100));
  Status first = s.value()->TouchSession("t");
  EXPECT_TRUE(first.ok() || first.IsUnavailable()) << first.ToString();
  // The broken connection was dropped; the next call reconnects.
  EXPECT_TRUE(s.value()->TouchSession("t").ok());
}

// A lock's release is sent without waiting for its answer (postgres_store.cc,
// LockConnections): another store takes the lock at once; the releasing store reads the
// answer when it takes the connection again, and reuses it; a connection that died with the
// answer unread is replaced, never reused.
TEST_F(PostgresStoreTest, AReleasedLockIsFreeAtOnceAndItsConnectionReusedOrReplaced) {
  StatusOr<std::unique_ptr<Store>> a = OpenStore(url_);
  StatusOr<std::unique_ptr<Store>> b = OpenStore(url_);
  ASSERT_TRUE(a.ok() && b.ok());
  // The backend holding the session's advisory lock now (0 if none holds it).
  auto holder = [&] {
    StatusOr<int64_t> pid =
        PgServer::QueryInt(url_, "SELECT coalesce(max(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND granted");
    return pid.ok() ? pid.value() : -1;
  };
  int64_t a_backend = 0;
  for (int i = 0; i < 20; ++i) {
    {
      StatusOr<std::unique_ptr<SessionLock>> held = a.value()->LockSession("t", milliseconds(5'000));
      ASSERT_TRUE(held.ok()) << held.status().ToString();
      const int64_t pid = holder();
      ASSERT_GT(pid, 0);
      if (i > 0) EXPECT_EQ(pid, a_backend) << "round " << i << ": the released connection was not reused";
      a_backend = pid;
    }
    // Released: b gets it without a doing anything more.
    StatusOr<std::unique_ptr<SessionLock>> other = b.value()->LockSession("t", milliseconds(2'000));
    ASSERT_TRUE(other.ok()) << "round " << i << ": " << other.status().ToString();
  }
  // a's connection dies while its last unlock's answer is unread: the next lock opens another.
  {
    StatusOr<std::unique_ptr<SessionLock>> held = a.value()->LockSession("t", milliseconds(5'000));
    ASSERT_TRUE(held.ok());
    ASSERT_EQ(holder(), a_backend);
  }
  ASSERT_TRUE(PgServer::QueryInt(url_, "SELECT count(*) FROM (SELECT pg_terminate_backend(" +
                                           std::to_string(a_backend) + ")) t")
                  .ok());
  // Until the backend is gone (its unlock answered or not, its locks go with it).
  const std::string alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(a_backend);
  for (int i = 0; i < 1000; ++i) {
    StatusOr<int64_t> n = PgServer::QueryInt(url_, alive);
    if (n.ok() && n.value() == 0) break;
    usleep(10'000);
  }
  StatusOr<std::unique_ptr<SessionLock>> after = a.value()->LockSession("t", milliseconds(5'000));
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  const int64_t now = holder();
  EXPECT_GT(now, 0);
  EXPECT_NE(now, a_backend);
  EXPECT_TRUE(b.value()->LockSession("t", milliseconds(100)).status().IsDeadlineExceeded());
}

}  // namespace
}  // namespace brig::store
