// The two store backends as test parameters: each makes a fresh, empty store URL per test
// and can write rows directly with SQL, bypassing brig, to prove what the schema itself
// enforces. Used by every typed store test (conformance, faults).
#ifndef BRIG_TESTS_STORE_BACKENDS_H_
#define BRIG_TESTS_STORE_BACKENDS_H_

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "brig/status.h"
#include "store/store.h"
#include "pg_harness.h"

namespace brig::store::testing {

class SqliteBackend {
 public:
  static constexpr const char* kName = "SQLite";
  static bool Skip() { return false; }
  // Writer processes use the URL as is; once killed, nothing of theirs lives on.
  static std::string WriterUrl(const std::string& url) { return url; }
  static Status WaitForKilledWriters(const std::string&) { return Status::Ok(); }

  ~SqliteBackend() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // A store in a new temp dir (removed with this object).
  StatusOr<std::string> NewUrl() {
    if (dir_.empty()) {
      char tmpl[] = "/tmp/brig-store-test-XXXXXX";
      if (mkdtemp(tmpl) == nullptr) return Status::Unavailable("mkdtemp failed");
      dir_ = tmpl;
    }
    return "sqlite:" + dir_ + "/brig" + std::to_string(++n_) + ".db";
  }

  // Runs SQL (no parameters) on the store's database, bypassing brig.
  static Status ExecSql(const std::string& url, const std::string& sql) {
    sqlite3* db = nullptr;
    if (sqlite3_open(url.substr(7).c_str(), &db) != SQLITE_OK) {
      sqlite3_close(db);
      return Status::Unavailable("open");
    }
    sqlite3_busy_timeout(db, 10'000);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    Status s = rc == SQLITE_OK ? Status::Ok() : Status::Internal(err ? err : "error");
    sqlite3_free(err);
    sqlite3_close(db);
    return s;
  }
  // A trigger that fails every insert of a file at `path` (a save that has already written
  // its state and earlier files then fails: it must leave nothing).
  static std::string PoisonFileSql(const std::string& path) {
    return "CREATE TRIGGER brig_test_poison BEFORE INSERT ON brig_files WHEN NEW.path = '" + path +
           "' BEGIN SELECT RAISE(ABORT, 'poisoned file'); END;";
  }

  // Inserts a file row of `size` zero bytes with plain SQL. With `orphan`, foreign keys
  // are off (SQLite's default for a connection), so the session need not exist.
  static Status InsertRawFile(const std::string& url, const std::string& thread_id, const std::string& path,
                              int64_t size, bool orphan) {
    sqlite3* db = nullptr;
    if (sqlite3_open(url.substr(7).c_str(), &db) != SQLITE_OK) {
      sqlite3_close(db);
      return Status::Unavailable("open");
    }
    sqlite3_busy_timeout(db, 10'000);
    if (!orphan) sqlite3_exec(db, "PRAGMA foreign_keys=ON", nullptr, nullptr, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db,
                       "INSERT INTO brig_files (thread_id, path, content, content_type, size, created_at,"
                       " modified_at) VALUES (?1, ?2, zeroblob(?3), 'application/octet-stream', ?3, 0, 0)",
                       -1, &st, nullptr);
    sqlite3_bind_text(st, 1, thread_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, path.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, size);
    const int rc = sqlite3_step(st);
    Status s = rc == SQLITE_DONE ? Status::Ok() : Status::InvalidArgument(sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return s;
  }

  // From now on, inserting a file row with this path fails inside the database (a trigger):
  // a failure in the middle of a transaction, after other rows were written.
  static Status FailInsertsOf(const std::string& url, const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open(url.substr(7).c_str(), &db) != SQLITE_OK) {
      sqlite3_close(db);
      return Status::Unavailable("open");
    }
    sqlite3_busy_timeout(db, 10'000);
    const std::string sql = "CREATE TRIGGER brig_test_fail BEFORE INSERT ON brig_files WHEN NEW.path = '" + path +
                            "' BEGIN SELECT RAISE(ABORT, 'injected failure'); END";
    char* err = nullptr;
    Status s = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK
                   ? Status::Ok()
                   : Status::Internal(err ? err : "trigger");
    sqlite3_free(err);
    sqlite3_close(db);
    return s;
  }

 private:
  std::string dir_;
  int n_ = 0;
};

class PostgresBackend {
 public:
  static constexpr const char* kName = "PostgreSQL";
  static bool Skip() { return SkipPostgres(); }

  // A new database on the harness's server.
  StatusOr<std::string> NewUrl() { return PgServer::Get().NewUrl(); }

  // Writer processes name their connections, so that the test can wait for the server
  // side of a killed writer: its backend may still be finishing a COMMIT that the client
  // sent just before it died (the commit is then whole, but lands a moment later).
  static std::string WriterUrl(const std::string& url) { return url + "&application_name=brig_writer"; }
  static Status WaitForKilledWriters(const std::string& url) {
    for (int i = 0; i < 1000; ++i) {
      StatusOr<int64_t> n =
          PgServer::QueryInt(url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'brig_writer'");
      if (!n.ok()) return n.status();
      if (n.value() == 0) return Status::Ok();
      usleep(10'000);
    }
    return Status::DeadlineExceeded("a killed writer's server backend is still running after 10 s");
  }

  static Status ExecSql(const std::string& url, const std::string& sql) { return PgServer::Exec(url, sql); }
  static std::string PoisonFileSql(const std::string& path) {
    return "CREATE FUNCTION brig_test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.path = '" + path +
           "' THEN RAISE EXCEPTION 'poisoned file'; END IF; RETURN NEW; END $$;"
           " CREATE TRIGGER brig_test_poison BEFORE INSERT ON brig_files FOR EACH ROW EXECUTE FUNCTION brig_test_poison();";
  }

  // As SqliteBackend::InsertRawFile; `orphan` turns off foreign-key triggers for the
  // connection (session_replication_role = replica; the harness connects as superuser).
  static Status InsertRawFile(const std::string& url, const std::string& thread_id, const std::string& path,
                              int64_t size, bool orphan) {
    PGconn* c = PQconnectdb(url.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      PQfinish(c);
      return Status::Unavailable("connect");
    }
    if (orphan) PQclear(PQexec(c, "SET session_replication_role = replica"));
    const std::string n = std::to_string(size);
    const char* values[] = {thread_id.c_str(), path.c_str(), n.c_str()};
    PGresult* r = PQexecParams(c,
                               "INSERT INTO brig_files (thread_id, path, content, content_type, size, created_at,"
                               " modified_at) VALUES ($1, $2, convert_to(repeat('x', $3::int), 'UTF8'),"
                               " 'application/octet-stream', $3::bigint, 0, 0)",
                               3, nullptr, values, nullptr, nullptr, 0);
    Status s = PQresultStatus(r) == PGRES_COMMAND_OK ? Status::Ok() : Status::InvalidArgument(PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return s;
  }

  // As SqliteBackend::FailInsertsOf.
  static Status FailInsertsOf(const std::string& url, const std::string& path) {
    return PgServer::Exec(url,
                          "CREATE FUNCTION brig_test_fail() RETURNS trigger AS $$ BEGIN IF NEW.path = '" + path +
                              "' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql;"
                              " CREATE TRIGGER brig_test_fail BEFORE INSERT ON brig_files"
                              " FOR EACH ROW EXECUTE FUNCTION brig_test_fail()");
  }
};

// Names typed tests "SQLite" / "PostgreSQL" instead of 0 / 1.
struct BackendNames {
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};

// A typed test fixture with one backend and a fresh store URL per test (skipped when the
// backend is, e.g. BRIG_SKIP_POSTGRES=1).
template <typename Backend>
class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Backend::Skip()) GTEST_SKIP() << "BRIG_SKIP_POSTGRES=1";
    StatusOr<std::string> url = backend_.NewUrl();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = url.value();
  }
  Backend backend_;
  std::string url_;
};

// A BackendTest whose store (store_) reads a fake clock (now_, microseconds) that the test
// moves; policies above the store (session expiry, cleanup) are given the same clock.
template <typename Backend>
class ClockedBackendTest : public BackendTest<Backend> {
 protected:
  void SetUp() override {
    BackendTest<Backend>::SetUp();
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
    StoreOptions so;
    so.clock = Clock();
    StatusOr<std::unique_ptr<Store>> s = OpenStore(this->url_, so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s.value());
  }
  std::function<int64_t()> Clock() {
    return [this] { return now_.load(); };
  }
  std::atomic<int64_t> now_{int64_t{1000} * 86'400'000'000};  // day 1000
  std::unique_ptr<Store> store_;
};

}  // namespace brig::store::testing

#endif  // BRIG_TESTS_STORE_BACKENDS_H_
