// Faults: a writer killed with SIGKILL in the middle of saving, and stores that cannot be
// reached or opened. Nothing may be half-written, nothing may crash.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "backends.h"
#include "store/store.h"

namespace brig::store {
namespace {

using testing::BackendNames;
using testing::PostgresBackend;
using testing::SqliteBackend;

constexpr int kFiles = 4;

// What save number n writes: a state and files that all say n, in sizes that change with n
// so that a torn write could not pass for a whole one.
std::string StateFor(int64_t n) {
  return "N=" + std::to_string(n) + ";" + std::string(static_cast<size_t>((n * 7919) % (512 * 1024)), 's');
}
std::string FileFor(int i, int64_t n) {
  std::string unit = "file" + std::to_string(i) + ":" + std::to_string(n) + ";";
  std::string out;
  const size_t size = 16 + static_cast<size_t>((n * 104'729 + i * 7'777) % (256 * 1024));
  while (out.size() < size) out += unit;
  return out;
}
std::string FilePath(int i) { return "/home/user/f" + std::to_string(i) + ".txt"; }

// The writer: saves n = version + 1, forever, until killed. Writes one byte to `ready`
// once the store is open, so the kill lands among saves rather than during the open.
[[noreturn]] void WriterLoop(const std::string& url, const std::string& tid, int ready) {
  StatusOr<std::unique_ptr<Store>> st = OpenStore(url);
  if (!st.ok()) _exit(2);
  if (write(ready, "R", 1) != 1) _exit(5);
  Store& s = *st.value();
  while (true) {
    StatusOr<std::optional<SessionState>> state = s.GetState(tid);
    if (!state.ok()) _exit(3);
    const int64_t v = state.value() ? state.value()->version : 0;
    const int64_t n = v + 1;
    std::vector<FileWrite> files;
    for (int i = 0; i < kFiles; ++i) files.push_back({FilePath(i), FileFor(i, n), ""});
    std::vector<std::string> deleted;
    // "/odd" exists exactly when the saved n is odd: deletes must be atomic too.
    if (n % 2 == 1) {
      files.push_back({"/odd", std::to_string(n), ""});
    } else {
      deleted.push_back("/odd");
    }
    StatusOr<int64_t> r = s.SaveExecution(tid, v, StateWrite{StateFor(n), "test", "build"}, files, deleted);
    // Conflict: the previous, killed writer's last COMMIT landed after we read the version.
    if (r.status().IsConflict()) continue;
    if (!r.ok() || r.value() != n) _exit(4);
  }
}

template <typename Backend>
class StoreFaults : public testing::BackendTest<Backend> {};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(StoreFaults, Backends, BackendNames);

TYPED_TEST(StoreFaults, KillNineDuringSaveLeavesOldOrNewNeverAMix) {
  const std::string tid = "victim";
  {
    StatusOr<std::unique_ptr<Store>> st = OpenStore(this->url_);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    ASSERT_TRUE(st.value()->CreateSession(tid, NowMicros() + 3'600'000'000, {}).ok());
  }  // closed: the children open their own connections
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_us(1'000, 80'000);
  int64_t last = 0;
  int advanced = 0;
  // 20 rounds, more while the writer has committed fewer than 5 times in between the kills
  // (a loaded machine or a sanitizer build makes each save slower than the delays).
  for (int round = 0; round < 20 || (advanced < 5 && round < 100); ++round) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) WriterLoop(TypeParam::WriterUrl(this->url_), tid, ready[1]);
    close(ready[1]);
    char byte;
    const bool opened = read(ready[0], &byte, 1) == 1;
    close(ready[0]);
    if (opened) std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "round " << round << ": the writer stopped by itself (exit " << WEXITSTATUS(status) << ")";
    Status gone = TypeParam::WaitForKilledWriters(this->url_);
    ASSERT_TRUE(gone.ok()) << gone.ToString();

    StatusOr<std::unique_ptr<Store>> st = OpenStore(this->url_);
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.status().ToString();
    Store& s = *st.value();
    StatusOr<std::optional<SessionState>> state = s.GetState(tid);
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    const int64_t n = state.value() ? state.value()->version : 0;
    SCOPED_TRACE("round " + std::to_string(round) + ", saved version " + std::to_string(n));
    ASSERT_GE(n, last) << "a committed save was lost";
    if (n > last) ++advanced;
    last = n;
    if (n == 0) {
      EXPECT_TRUE(s.ListFiles(tid).value().empty());
      continue;
    }
    EXPECT_TRUE(state.value()->snapshot == StateFor(n))
        << "the state is not from save " << n << "; it begins " << state.value()->snapshot.substr(0, 24);
    for (int i = 0; i < kFiles; ++i) {
      StatusOr<FileData> f = s.GetFile(tid, FilePath(i));
      ASSERT_TRUE(f.ok()) << FilePath(i) << ": " << f.status().ToString();
      // Not EXPECT_EQ: a mismatch would print hundreds of KiB.
      EXPECT_TRUE(f.value().content == FileFor(i, n))
          << FilePath(i) << " is not from save " << n << "; it begins " << f.value().content.substr(0, 24);
    }
    StatusOr<FileData> odd = s.GetFile(tid, "/odd");
    if (n % 2 == 1) {
      ASSERT_TRUE(odd.ok()) << odd.status().ToString();
      EXPECT_EQ(odd.value().content, std::to_string(n));
    } else {
      EXPECT_TRUE(odd.status().IsNotFound());
    }
    EXPECT_EQ(s.GetFileUsage(tid).value().file_count, kFiles + (n % 2));
  }
  // The test only means something if the writer got saves in between the kills.
  EXPECT_GE(advanced, 5) << "the writer rarely committed; the kills did not land during saves";
}

// Many threads of one writer process saving their own sessions at once (so on SQLite their
// saves share group commits), each reporting every save the store acknowledged through a
// pipe, killed with SIGKILL at random moments: no acknowledged save may be missing, and each
// session holds exactly one whole save (state and files from the same one).
constexpr int kGroupThreads = 8;

std::string GroupTag(int session, int64_t n) {
  return "g" + std::to_string(session) + ":" + std::to_string(n) + ";" +
         std::string(static_cast<size_t>((n * 7919 + session * 101) % 4096), 'x');
}

[[noreturn]] void GroupWriter(const std::string& url, int ready, int acks) {
  StatusOr<std::unique_ptr<Store>> st = OpenStore(url);
  if (!st.ok()) _exit(2);
  Store& s = *st.value();
  if (write(ready, "R", 1) != 1) _exit(5);
  std::vector<std::thread> threads;
  for (int i = 0; i < kGroupThreads; ++i) {
    threads.emplace_back([&s, acks, i] {
      std::string tid = "g";
      tid += std::to_string(i);  // not "g" + ...: GCC 12 warns there (-Wrestrict, a false positive)
      while (true) {
        StatusOr<int64_t> v0 = s.GetStateVersion(tid);
        if (!v0.ok()) _exit(3);
        const int64_t n = v0.value() + 1;
        StatusOr<int64_t> r = s.SaveExecution(tid, n - 1, StateWrite{GroupTag(i, n), "test", "build"},
                                              {{"/f", GroupTag(i, n), ""}}, {});
        if (r.status().IsConflict()) continue;  // the killed writer's last COMMIT landed late
        if (!r.ok() || r.value() != n) _exit(4);
        // Acknowledged: from here on the save must survive anything.
        char line[32];
        const int len = std::snprintf(line, sizeof line, "%d %lld\n", i, static_cast<long long>(n));
        if (write(acks, line, static_cast<size_t>(len)) != len) _exit(6);
      }
    });
  }
  for (auto& t : threads) t.join();
  _exit(7);
}

TYPED_TEST(StoreFaults, KillNineDuringGroupCommitsLosesNoAcknowledgedSave) {
  {
    StatusOr<std::unique_ptr<Store>> st = OpenStore(this->url_);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    for (int i = 0; i < kGroupThreads; ++i) {
      ASSERT_TRUE(st.value()->CreateSession("g" + std::to_string(i), NowMicros() + 3'600'000'000, {}).ok());
    }
  }
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_us(5'000, 120'000);
  std::vector<int64_t> acked(kGroupThreads, 0);
  int64_t total_acks = 0;
  for (int round = 0; round < 12 || (total_acks < 100 && round < 60); ++round) {
    int ready[2], acks[2];
    ASSERT_EQ(pipe(ready), 0);
    ASSERT_EQ(pipe(acks), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(acks[0]);
      GroupWriter(TypeParam::WriterUrl(this->url_), ready[1], acks[1]);
    }
    close(ready[1]);
    close(acks[1]);
    // Read the acknowledgements as they come (a full pipe would stall the writer).
    std::string received;
    std::thread reader([&] {
      char buf[4096];
      ssize_t n;
      while ((n = read(acks[0], buf, sizeof buf)) > 0) received.append(buf, static_cast<size_t>(n));
    });
    char byte;
    const bool opened = read(ready[0], &byte, 1) == 1;
    close(ready[0]);
    if (opened) std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    reader.join();  // the pipe's write end died with the child: everything it acknowledged is read
    close(acks[0]);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "round " << round << ": the writer stopped by itself (exit " << WEXITSTATUS(status) << ")";
    Status gone = TypeParam::WaitForKilledWriters(this->url_);
    ASSERT_TRUE(gone.ok()) << gone.ToString();
    std::istringstream lines(received);
    int session;
    long long n;
    while (lines >> session >> n) {
      ASSERT_TRUE(session >= 0 && session < kGroupThreads);
      acked[session] = std::max<int64_t>(acked[session], n);
      ++total_acks;
    }

    StatusOr<std::unique_ptr<Store>> st = OpenStore(this->url_);
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.status().ToString();
    for (int i = 0; i < kGroupThreads; ++i) {
      const std::string tid = "g" + std::to_string(i);
      StatusOr<std::optional<SessionState>> state = st.value()->GetState(tid);
      ASSERT_TRUE(state.ok()) << state.status().ToString();
      const int64_t v = state.value() ? state.value()->version : 0;
      SCOPED_TRACE("round " + std::to_string(round) + ", " + tid + " at version " + std::to_string(v));
      ASSERT_GE(v, acked[i]) << "an acknowledged save was lost";
      if (v == 0) continue;
      EXPECT_TRUE(state.value()->snapshot == GroupTag(i, v)) << "the state is not from save " << v;
      StatusOr<FileData> f = st.value()->GetFile(tid, "/f");
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      EXPECT_TRUE(f.value().content == GroupTag(i, v)) << "the file is not from save " << v;
    }
  }
  // Only meaningful if many saves were acknowledged in between the kills.
  EXPECT_GE(total_acks, 100) << "the writers rarely committed; the kills did not land among saves";
}

// The importer: makes sessions "made-<n>" whole (CreateSessionWith: a state and kFiles files
// that all say n), n = 1, 2, ..., until killed.
[[noreturn]] void CreatorLoop(const std::string& url, int ready) {
  StatusOr<std::unique_ptr<Store>> st = OpenStore(url);
  if (!st.ok()) _exit(2);
  if (write(ready, "R", 1) != 1) _exit(5);
  Store& s = *st.value();
  for (int64_t n = 1;; ++n) {
    std::vector<FileWrite> files;
    for (int i = 0; i < kFiles; ++i) files.push_back({FilePath(i), FileFor(i, n), ""});
    Status r = s.CreateSessionWith("made-" + std::to_string(n), NowMicros() + 3'600'000'000, {},
                                   StateWrite{StateFor(n), "test", "build"}, files);
    if (!r.ok()) _exit(4);
  }
}

// A process killed while it makes a session whole (a snapshot import) leaves each session
// either complete or absent: never a row without its state or with some of its files.
TYPED_TEST(StoreFaults, KillNineDuringCreateSessionWithLeavesWholeSessionsOnly) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_us(1'000, 80'000);
  int64_t made = 0;
  for (int round = 0; round < 10 || (made < 5 && round < 100); ++round) {
    // Each round starts afresh: the creator numbers its sessions from 1 again.
    {
      StatusOr<std::unique_ptr<Store>> st = OpenStore(this->url_);
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      StatusOr<std::vector<SessionInfo>> left = st.value()->ListSessions();
      ASSERT_TRUE(left.ok()) << left.status().ToString();
      for (const SessionInfo& info : left.value()) ASSERT_TRUE(st.value()->DeleteSession(info.thread_id).ok());
    }
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) CreatorLoop(TypeParam::WriterUrl(this->url_), ready[1]);
    close(ready[1]);
    char byte;
    const bool opened = read(ready[0], &byte, 1) == 1;
    close(ready[0]);
    if (opened) std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "round " << round << ": the creator stopped by itself (exit " << WEXITSTATUS(status) << ")";
    Status gone = TypeParam::WaitForKilledWriters(this->url_);
    ASSERT_TRUE(gone.ok()) << gone.ToString();

    StatusOr<std::unique_ptr<Store>> st = OpenStore(this->url_);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    Store& s = *st.value();
    std::vector<SessionInfo> sessions = s.ListSessions().value();
    made += static_cast<int64_t>(sessions.size());
    for (const SessionInfo& info : sessions) {
      SCOPED_TRACE("round " + std::to_string(round) + ", session " + info.thread_id);
      const int64_t n = std::stoll(info.thread_id.substr(5));
      StatusOr<std::optional<SessionState>> state = s.GetState(info.thread_id);
      ASSERT_TRUE(state.ok() && state.value().has_value()) << "a session without its state";
      EXPECT_TRUE(state.value()->snapshot == StateFor(n));
      ASSERT_EQ(info.file_count, kFiles) << "a session with some of its files";
      for (int i = 0; i < kFiles; ++i) EXPECT_TRUE(s.GetFile(info.thread_id, FilePath(i)).value().content == FileFor(i, n));
    }
    // Nothing of a half-made session outside the sessions either.
    EXPECT_EQ(s.Cleanup(0, /*dry_run=*/true).value().files_deleted, 0);
  }
  EXPECT_GE(made, 5) << "the creator rarely committed; the kills did not land during creations";
}

TEST(StoreUnavailable, UnknownSchemeAndEmptyPath) {
  StatusOr<std::unique_ptr<Store>> s = OpenStore("mysql://localhost/db");
  EXPECT_TRUE(s.status().IsInvalidArgument());
  EXPECT_NE(s.status().message().find("mysql"), std::string::npos) << s.status().message();
  EXPECT_TRUE(OpenStore("").status().IsInvalidArgument());
  EXPECT_TRUE(OpenStore("sqlite:").status().IsInvalidArgument());
}

TEST(StoreUnavailable, PostgresOnAClosedPortIsAClearError) {
  // Port 1 on loopback: nothing listens there; the connection is refused at once.
  const auto start = std::chrono::steady_clock::now();
  StatusOr<std::unique_ptr<Store>> s = OpenStore("postgresql://brig@127.0.0.1:1/brig");
  EXPECT_TRUE(s.status().IsUnavailable()) << s.status().ToString();
  EXPECT_NE(s.status().message().find("cannot connect to the PostgreSQL store"), std::string::npos);
  EXPECT_NE(s.status().message().find("127.0.0.1"), std::string::npos) << s.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(StoreUnavailable, PostgresUnreachableHostTimesOut) {
  // A socket directory with no server in it.
  StatusOr<std::unique_ptr<Store>> s = OpenStore("postgresql:///brig?host=/nonexistent-brig-dir&port=5432");
  EXPECT_TRUE(s.status().IsUnavailable()) << s.status().ToString();
}

TEST(StoreUnavailable, PostgresMissingDatabaseIsAClearError) {
  if (testing::SkipPostgres()) GTEST_SKIP() << "BRIG_SKIP_POSTGRES=1";
  StatusOr<std::string> url = testing::PgServer::Get().NewUrl();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  StatusOr<std::unique_ptr<Store>> s = OpenStore(testing::PgServer::Get().Url("no_such_db"));
  EXPECT_TRUE(s.status().IsUnavailable()) << s.status().ToString();
  EXPECT_NE(s.status().message().find("no_such_db"), std::string::npos) << s.status().message();
}

TEST(StoreUnavailable, SqliteInAMissingDirectory) {
  StatusOr<std::unique_ptr<Store>> s = OpenStore("sqlite:/nonexistent-brig-dir/sub/brig.db");
  EXPECT_TRUE(s.status().IsUnavailable()) << s.status().ToString();
  EXPECT_NE(s.status().message().find("/nonexistent-brig-dir/sub/brig.db"), std::string::npos);
}

TEST(StoreUnavailable, SqliteWhereNothingCanBeCreated) {
  // /proc refuses new files even to root (plain permissions would not stop root).
  StatusOr<std::unique_ptr<Store>> s = OpenStore("sqlite:/proc/brig-test.db");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsUnavailable()) << s.status().ToString();
}

TEST(StoreUnavailable, SqliteOnAFileThatIsNotADatabase) {
  char tmpl[] = "/tmp/brig-store-bad-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/brig.db";
  {
    std::ofstream f(path);
    f << std::string(8192, 'G') << "this is not a database";
  }
  StatusOr<std::unique_ptr<Store>> s = OpenStore("sqlite:" + path);
  EXPECT_TRUE(s.status().IsFailedPrecondition()) << s.status().ToString();
  EXPECT_NE(s.status().message().find("not a database"), std::string::npos) << s.status().message();
  // And the file is left as it was.
  std::ifstream f(path);
  std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content.size(), 8192u + 22u);
  std::filesystem::remove_all(tmpl);
}

TEST(StoreUnavailable, SqliteOnADirectory) {
  char tmpl[] = "/tmp/brig-store-dir-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  StatusOr<std::unique_ptr<Store>> s = OpenStore(std::string("sqlite:") + tmpl);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(s.status().IsInternal()) << s.status().ToString();
  std::filesystem::remove_all(tmpl);
}

TEST(StoreUnavailable, SqliteSchemaFromTheFutureIsRefused) {
  char tmpl[] = "/tmp/brig-store-future-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string url = std::string("sqlite:") + tmpl + "/brig.db";
  ASSERT_TRUE(OpenStore(url).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((std::string(tmpl) + "/brig.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO brig_schema_version VALUES (999, 0)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  StatusOr<std::unique_ptr<Store>> s = OpenStore(url);
  EXPECT_TRUE(s.status().IsFailedPrecondition()) << s.status().ToString();
  EXPECT_NE(s.status().message().find("999"), std::string::npos);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace brig::store
