// A throwaway PostgreSQL server for tests: initdb in a temp dir, postgres listening only on
// a unix socket in that dir (no TCP port to collide with), fsync on, a fresh schema per
// store. Started lazily by the first test that asks (so SQLite-only runs never pay for it)
// and stopped at the end of the test process, also when tests fail or the process dies:
// a watchdog process, in its own session, waits for the test process's end of a pipe to
// close, then runs `pg_ctl stop -m fast` and removes the dir.
//
// Works as root (the usual CI case: PostgreSQL refuses to run as root, so initdb and
// pg_ctl run as the `postgres` user via runuser) and as an ordinary user. Binaries: the
// newest /usr/lib/postgresql/*/bin, else PATH; BRIG_PG_BIN overrides.
//
// Missing binaries are a test FAILURE with instructions, not a skip, unless
// BRIG_SKIP_POSTGRES=1 (then PostgreSQL tests skip).
#ifndef BRIG_TESTS_STORE_PG_HARNESS_H_
#define BRIG_TESTS_STORE_PG_HARNESS_H_

#include <fcntl.h>
#include <glob.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "brig/status.h"

namespace brig::store::testing {

inline bool SkipPostgres() {
  const char* v = std::getenv("BRIG_SKIP_POSTGRES");
  return v != nullptr && std::string(v) == "1";
}

class PgServer {
 public:
  static PgServer& Get() {
    static PgServer* server = new PgServer();  // leaked: stopped by Stop() or the watchdog
    return *server;
  }

  // URL of a new, empty store on the running server (started on first use), or why the
  // server could not be started. Each URL names its own schema (search_path) in the
  // `postgres` database: a CREATE SCHEMA is cheap, where each CREATE DATABASE would cost
  // a copy of the template, written to WAL and fsynced.
  StatusOr<std::string> NewUrl() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) {
      started_ = true;
      start_status_ = Start();
    }
    if (!start_status_.ok()) return start_status_;
    const std::string schema = "s" + std::to_string(getpid()) + "_" + std::to_string(++schemas_);
    // A generated identifier, not a value: CREATE SCHEMA takes no parameters.
    if (Status s = Exec(Url("postgres"), "CREATE SCHEMA " + schema); !s.ok()) return s;
    return Url("postgres") + "&options=-csearch_path%3D" + schema;
  }

  // URL of database `db` on the server. REQUIRES: a NewUrl call succeeded.
  std::string Url(const std::string& db) const {
    return "postgresql:///" + db + "?host=" + dir_ + "&port=5432&user=postgres";
  }

  // Stops the server and removes its dir; waits for that to finish.
  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    if (watchdog_pipe_ >= 0) {
      signal(SIGPIPE, SIG_IGN);  // a dead watchdog must not kill us at exit
      (void)!write(watchdog_pipe_, "stop\n", 5);
      close(watchdog_pipe_);  // the watchdog stops the server and removes the dir
      watchdog_pipe_ = -1;
      int status;
      waitpid(watchdog_pid_, &status, 0);
    }
  }

  // The first column of the first row of a parameterless query, as an integer.
  static StatusOr<int64_t> QueryInt(const std::string& url, const std::string& sql) {
    PGconn* c = PQconnectdb(url.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      PQfinish(c);
      return Status::Unavailable("cannot connect to the test server");
    }
    PGresult* r = PQexec(c, sql.c_str());
    StatusOr<int64_t> out = Status::Internal(sql + ": " + PQresultErrorMessage(r));
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) out = std::atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return out;
  }

  // Runs one parameterless SQL statement as the superuser (test setup only).
  static Status Exec(const std::string& url, const std::string& sql) {
    PGconn* c = PQconnectdb(url.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      Status s = Status::Unavailable(std::string("cannot connect to the test server: ") + PQerrorMessage(c));
      PQfinish(c);
      return s;
    }
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    Status s = ok ? Status::Ok() : Status::Internal(sql + ": " + PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return s;
  }

 private:
  PgServer() = default;

  static std::string FindBinDir() {
    if (const char* v = std::getenv("BRIG_PG_BIN")) return v;
    glob_t g{};
    std::string best;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &g) == 0) {
      std::vector<std::string> found(g.gl_pathv, g.gl_pathv + g.gl_pathc);
      // Highest major version: compare the version directory numerically.
      auto major = [](const std::string& p) { return std::atoi(p.c_str() + std::string("/usr/lib/postgresql/").size()); };
      std::sort(found.begin(), found.end(), [&](auto& a, auto& b) { return major(a) < major(b); });
      best = found.back().substr(0, found.back().size() - std::string("/initdb").size());
    }
    globfree(&g);
    if (!best.empty()) return best;
    std::stringstream path(std::getenv("PATH") ? std::getenv("PATH") : "");
    for (std::string dir; std::getline(path, dir, ':');) {
      if (access((dir + "/initdb").c_str(), X_OK) == 0 && access((dir + "/pg_ctl").c_str(), X_OK) == 0) return dir;
    }
    return "";
  }

  // Runs argv (as the server's user when we are root), output to the log; OK iff exit 0.
  Status Run(std::vector<std::string> argv, const std::string& what) {
    if (geteuid() == 0) argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
    const pid_t pid = fork();
    if (pid < 0) return Status::Internal("fork failed");
    if (pid == 0) {
      const int log = open((dir_ + "/harness.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (log >= 0) {
        dup2(log, 1);
        dup2(log, 2);
      }
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
    std::ifstream log(dir_ + "/harness.log");
    std::stringstream text;
    text << log.rdbuf();
    return Status::Unavailable(what + " failed (exit " + std::to_string(WEXITSTATUS(status)) + "); log:\n" +
                               text.str());
  }

  Status Start() {
    bin_ = FindBinDir();
    if (bin_.empty() || access((bin_ + "/initdb").c_str(), X_OK) != 0 || access((bin_ + "/pg_ctl").c_str(), X_OK) != 0) {
      return Status::FailedPrecondition(
          "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin or PATH: "
          "install the `postgresql` package (`make test` does), point BRIG_PG_BIN at them, or set "
          "BRIG_SKIP_POSTGRES=1 to skip the PostgreSQL tests");
    }
    struct passwd* pw = nullptr;
    if (geteuid() == 0 && (pw = getpwnam("postgres")) == nullptr) {
      return Status::FailedPrecondition(
          "running as root, but there is no `postgres` user to run the test server as "
          "(the postgresql package creates it); or set BRIG_SKIP_POSTGRES=1");
    }
    char tmpl[] = "/tmp/brig-pg-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Status::Unavailable("mkdtemp failed");
    dir_ = tmpl;
    if (pw != nullptr && chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return Status::Unavailable("cannot chown " + dir_ + " to postgres");
    }
    StartWatchdog();
    const std::string data = dir_ + "/data";
    // --no-sync only spares initdb's own fsyncs; the server runs with fsync=on.
    if (Status s = Run({bin_ + "/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--locale=C", "--no-sync"},
                       "initdb");
        !s.ok()) {
      return s;
    }
    if (Status s = Run({bin_ + "/pg_ctl", "-D", data, "-l", dir_ + "/postgres.log", "-w", "-t", "60", "-o",
                        "-k " + dir_ + " -c listen_addresses= -p 5432 -c fsync=on -c max_connections=200",
                        "start"},
                       "pg_ctl start");
        !s.ok()) {
      std::ifstream log(dir_ + "/postgres.log");
      std::stringstream text;
      text << log.rdbuf();
      return Status::Unavailable(s.message() + "\npostgres.log:\n" + text.str());
    }
    return Status::Ok();
  }

  // The watchdog: a shell in its own session reading the pipe. Stop() writes a line and
  // closes; our death closes without one, possibly while pg_ctl start is still on its way,
  // so then it stops twice, two seconds apart. pg_ctl stop with no server running fails
  // harmlessly. Then the dir goes.
  void StartWatchdog() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    const std::string stop = (geteuid() == 0 ? "runuser -u postgres -- " : std::string()) + bin_ +
                             "/pg_ctl -D " + dir_ + "/data -m fast -w stop >/dev/null 2>&1";
    const std::string script = "if read -r _; then " + stop + "; else " + stop + "; sleep 2; " + stop +
                               "; fi; rm -rf " + dir_;
    const pid_t pid = fork();
    if (pid == 0) {
      setsid();
      signal(SIGINT, SIG_IGN);
      signal(SIGTERM, SIG_IGN);
      dup2(fds[0], 0);  // dup2 clears CLOEXEC on fd 0; the write end closes on exec
      // Not holding the test's stdout/stderr: ctest waits for those to close.
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[0]);
    watchdog_pipe_ = fds[1];
    watchdog_pid_ = pid;
  }

  std::mutex mu_;
  bool started_ = false;
  Status start_status_;
  std::string bin_;
  std::string dir_;
  int schemas_ = 0;
  int watchdog_pipe_ = -1;  // write end; -1 when no watchdog runs
  pid_t watchdog_pid_ = -1;
};

// Stops the server when the test program ends normally.
class PgEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { PgServer::Get().Stop(); }
};

inline ::testing::Environment* const kPgEnvironment =
    ::testing::AddGlobalTestEnvironment(new PgEnvironment);

}  // namespace brig::store::testing

#endif  // BRIG_TESTS_STORE_PG_HARNESS_H_
