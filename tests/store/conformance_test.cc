// One suite, every backend: each TYPED_TEST runs once on SQLite and once on PostgreSQL
// (a real server started by pg_harness.h). A backend passes only if it behaves exactly
// like the other.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <thread>

#include <gtest/gtest.h>

#include "backends.h"
#include "store/store.h"

namespace brig::store {
namespace {

using testing::BackendNames;
using testing::PostgresBackend;
using testing::SqliteBackend;

constexpr int64_t kDay = int64_t{86'400} * 1'000'000;

template <typename Backend>
class StoreConformance : public testing::BackendTest<Backend> {
 protected:
  using testing::BackendTest<Backend>::url_;
  void SetUp() override {
    testing::BackendTest<Backend>::SetUp();
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
    options_.clock = [this] { return now_.load(); };
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }

  // Another Store on the same database: its own connection(s), as another process has.
  std::unique_ptr<Store> Open() {
    StatusOr<std::unique_ptr<Store>> s = OpenStore(url_, options_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s.value()) : nullptr;
  }

  void Create(const std::string& id, int64_t expires_at = 1000 * kDay) {
    ASSERT_TRUE(store_->CreateSession(id, expires_at, {{"owner", "test"}}).ok());
  }

  std::string Content(const std::string& id, const std::string& path) {
    StatusOr<FileData> f = store_->GetFile(id, path);
    EXPECT_TRUE(f.ok()) << path << ": " << f.status().ToString();
    return f.ok() ? f.value().content : "<missing>";
  }

  StoreOptions options_;
  std::atomic<int64_t> now_{100 * kDay};
  std::unique_ptr<Store> store_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(StoreConformance, Backends, BackendNames);

TYPED_TEST(StoreConformance, MigrationsAreRecordedAndIdempotent) {
  StatusOr<int> v = this->store_->SchemaVersion();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_GE(v.value(), 1);
  this->Create("keep");
  // Opening again (as a second process would) applies nothing and loses nothing.
  for (int i = 0; i < 2; ++i) {
    std::unique_ptr<Store> again = this->Open();
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->SchemaVersion().value(), v.value());
    EXPECT_TRUE(again->SessionExists("keep").value());
  }
}

TYPED_TEST(StoreConformance, ConcurrentFirstOpensMigrateOnce) {
  StatusOr<std::string> fresh = this->backend_.NewUrl();  // never opened yet
  ASSERT_TRUE(fresh.ok());
  constexpr int kOpeners = 4;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::vector<std::string> errors(kOpeners);
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      StatusOr<std::unique_ptr<Store>> s = OpenStore(fresh.value(), this->options_);
      if (s.ok() && s.value()->SchemaVersion().ok()) {
        ++ok;
      } else {
        errors[i] = s.status().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kOpeners) << errors[0] << errors[1] << errors[2] << errors[3];
}

TYPED_TEST(StoreConformance, ConcurrentFirstOpensFromProcesses) {
  StatusOr<std::string> fresh = this->backend_.NewUrl();  // never opened yet
  ASSERT_TRUE(fresh.ok());
  std::vector<pid_t> children;
  for (int i = 0; i < 4; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      StatusOr<std::unique_ptr<Store>> s = OpenStore(fresh.value());
      const bool ok = s.ok() && s.value()->CreateSession("p" + std::to_string(i), 0, {}).ok();
      _exit(ok ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "an opener process failed";
  }
  StatusOr<std::unique_ptr<Store>> s = OpenStore(fresh.value());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value()->ListSessions().value().size(), 4u);
}

TYPED_TEST(StoreConformance, SessionLifecycle) {
  Store& s = *this->store_;
  EXPECT_FALSE(s.SessionExists("t1").value());
  EXPECT_TRUE(s.GetSession("t1").status().IsNotFound());
  ASSERT_TRUE(s.CreateSession("t1", 200 * kDay, {{"agent", "a"}, {"n", 3}}).ok());
  EXPECT_TRUE(s.CreateSession("t1", 200 * kDay, {}).IsAlreadyExists());
  EXPECT_TRUE(s.SessionExists("t1").value());

  StatusOr<SessionInfo> info = s.GetSession("t1");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info.value().thread_id, "t1");
  EXPECT_EQ(info.value().created_at, 100 * kDay);
  EXPECT_EQ(info.value().last_accessed, 100 * kDay);
  EXPECT_EQ(info.value().expires_at, 200 * kDay);
  EXPECT_EQ(info.value().metadata, (nlohmann::json{{"agent", "a"}, {"n", 3}}));
  EXPECT_EQ(info.value().file_count, 0);

  this->now_ = 150 * kDay;
  ASSERT_TRUE(s.TouchSession("t1").ok());
  ASSERT_TRUE(s.SetSessionExpiry("t1", 400 * kDay).ok());
  ASSERT_TRUE(s.SetSessionMetadata("t1", {{"agent", "b"}}).ok());
  info = s.GetSession("t1");
  EXPECT_EQ(info.value().created_at, 100 * kDay);
  EXPECT_EQ(info.value().last_accessed, 150 * kDay);
  EXPECT_EQ(info.value().expires_at, 400 * kDay);
  EXPECT_EQ(info.value().metadata, (nlohmann::json{{"agent", "b"}}));

  EXPECT_TRUE(s.CreateSession("t2", kDay, nlohmann::json::array()).IsInvalidArgument());
  EXPECT_TRUE(s.SetSessionMetadata("t1", 5).IsInvalidArgument());
  EXPECT_TRUE(s.TouchSession("nope").IsNotFound());
  EXPECT_TRUE(s.SetSessionExpiry("nope", kDay).IsNotFound());

  ASSERT_TRUE(s.DeleteSession("t1").ok());
  EXPECT_FALSE(s.SessionExists("t1").value());
  EXPECT_TRUE(s.DeleteSession("t1").IsNotFound());
}

// A session's own quotas are stored with it, read back by Get and List, copied by
// CopySession, absent (all unset) when none were given, and checked.
TYPED_TEST(StoreConformance, SessionQuotasAreStoredAndCopied) {
  Store& s = *this->store_;
  SessionQuotas q;
  q.max_files = 3;
  q.max_total_bytes = 5000;
  q.max_file_bytes = 2000;
  ASSERT_TRUE(s.CreateSession("q", 200 * kDay, {}, q).ok());
  ASSERT_TRUE(s.CreateSession("plain", 200 * kDay, {}).ok());
  EXPECT_EQ(s.GetSession("q").value().quotas, q);
  EXPECT_TRUE(s.GetSession("plain").value().quotas.empty());
  std::vector<SessionInfo> all = s.ListSessions().value();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(all[0].quotas.empty());  // "plain"
  EXPECT_EQ(all[1].quotas, q);
  SessionQuotas only_files;
  only_files.max_files = 7;
  ASSERT_TRUE(s.CreateSession("one", 200 * kDay, {}, only_files).ok());
  EXPECT_EQ(s.GetSession("one").value().quotas, only_files);
  ASSERT_TRUE(s.CopySession("q", "q-copy", 0, 300 * kDay, {}, std::nullopt).ok());
  EXPECT_EQ(s.GetSession("q-copy").value().quotas, q);
  for (auto bad : {SessionQuotas{0, std::nullopt, std::nullopt}, SessionQuotas{std::nullopt, -1, std::nullopt},
                   SessionQuotas{std::nullopt, std::nullopt, kMaxFileBytes + 1}}) {
    EXPECT_TRUE(s.CreateSession("bad", 200 * kDay, {}, bad).IsInvalidArgument());
  }
  EXPECT_FALSE(s.SessionExists("bad").value());
}

TYPED_TEST(StoreConformance, UnicodeThreadIdRoundTrips) {
  const std::string id = "agent/\xc3\xa9t\xc3\xa9 \xf0\x9f\x90\x8d #1";  // "agent/été 🐍 #1"
  this->Create(id);
  EXPECT_EQ(this->store_->GetSession(id).value().thread_id, id);
  ASSERT_TRUE(this->store_->PutFile(id, {"/home/user/\xc3\xa9.txt", "x", ""}).ok());
  EXPECT_EQ(this->store_->ListFiles(id).value().at(0).path, "/home/user/\xc3\xa9.txt");
}

TYPED_TEST(StoreConformance, ListSessionsWithCountsAndExpired) {
  Store& s = *this->store_;
  this->Create("b", 50 * kDay);
  this->Create("a", 300 * kDay);
  this->Create("c", 101 * kDay);
  ASSERT_TRUE(s.PutFile("a", {"/x", std::string(10, 'x'), ""}).ok());
  ASSERT_TRUE(s.PutFile("a", {"/y", std::string(5, 'y'), ""}).ok());
  StatusOr<std::vector<SessionInfo>> all = s.ListSessions();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), 3u);
  EXPECT_EQ(all.value()[0].thread_id, "a");
  EXPECT_EQ(all.value()[0].file_count, 2);
  EXPECT_EQ(all.value()[0].total_bytes, 15);
  EXPECT_EQ(all.value()[1].thread_id, "b");
  EXPECT_EQ(all.value()[1].file_count, 0);
  EXPECT_EQ(s.ListExpiredSessions(100 * kDay).value(), std::vector<std::string>{"b"});
  EXPECT_EQ(s.ListExpiredSessions(101 * kDay).value(), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(s.ListExpiredSessions(0).value().empty());
}

TYPED_TEST(StoreConformance, FilesPutGetListDelete) {
  Store& s = *this->store_;
  this->Create("t");
  const std::string binary("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\0", 18);
  ASSERT_TRUE(s.PutFile("t", {"/home/user/img.dat", binary, ""}).ok());
  ASSERT_TRUE(s.PutFile("t", {"/home/user/a.csv", "x,y\n1,2\n", ""}).ok());
  ASSERT_TRUE(s.PutFile("t", {"/tmp/empty", "", "text/x-custom"}).ok());
  ASSERT_TRUE(s.PutFile("t", {"/home/user_2/z.json", "{}", ""}).ok());

  StatusOr<FileData> f = s.GetFile("t", "/home/user/img.dat");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f.value().content, binary);
  EXPECT_EQ(f.value().info.size, 18);
  EXPECT_EQ(f.value().info.content_type, "image/png");  // magic beats the unknown extension
  EXPECT_EQ(f.value().info.created_at, 100 * kDay);
  EXPECT_EQ(s.GetFile("t", "/home/user/a.csv").value().info.content_type, "text/csv");
  EXPECT_EQ(s.GetFile("t", "/tmp/empty").value().info.content_type, "text/x-custom");
  EXPECT_EQ(s.GetFile("t", "/tmp/empty").value().content, "");

  // Offset and limit.
  EXPECT_EQ(s.GetFile("t", "/home/user/a.csv", 2, 3).value().content, "y\n1");
  EXPECT_EQ(s.GetFile("t", "/home/user/a.csv", 4).value().content, "1,2\n");
  EXPECT_EQ(s.GetFile("t", "/home/user/a.csv", 0, 0).value().content, "");
  EXPECT_EQ(s.GetFile("t", "/home/user/a.csv", 100, 5).value().content, "");
  EXPECT_EQ(s.GetFile("t", "/home/user/a.csv", 100, 5).value().info.size, 8);
  EXPECT_TRUE(s.GetFile("t", "/home/user/a.csv", -1).status().IsInvalidArgument());

  // Upsert keeps created_at, moves modified_at.
  this->now_ = 101 * kDay;
  ASSERT_TRUE(s.PutFile("t", {"/home/user/a.csv", "new", ""}).ok());
  f = s.GetFile("t", "/home/user/a.csv");
  EXPECT_EQ(f.value().content, "new");
  EXPECT_EQ(f.value().info.size, 3);
  EXPECT_EQ(f.value().info.created_at, 100 * kDay);
  EXPECT_EQ(f.value().info.modified_at, 101 * kDay);

  // Prefix listing is a plain byte prefix, ordered.
  StatusOr<std::vector<FileInfo>> list = s.ListFiles("t", "/home/user/");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list.value().size(), 2u);
  EXPECT_EQ(list.value()[0].path, "/home/user/a.csv");
  EXPECT_EQ(list.value()[1].path, "/home/user/img.dat");
  EXPECT_EQ(list.value()[1].size, 18);
  EXPECT_EQ(s.ListFiles("t", "/home/user").value().size(), 3u);
  EXPECT_EQ(s.ListFiles("t").value().size(), 4u);
  EXPECT_TRUE(s.ListFiles("t", "/nothing").value().empty());

  StatusOr<FileUsage> usage = s.GetFileUsage("t");
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage.value().file_count, 4);
  EXPECT_EQ(usage.value().total_bytes, 18 + 3 + 0 + 2);

  ASSERT_TRUE(s.DeleteFile("t", "/home/user/a.csv").ok());
  EXPECT_TRUE(s.DeleteFile("t", "/home/user/a.csv").IsNotFound());
  EXPECT_TRUE(s.GetFile("t", "/home/user/a.csv").status().IsNotFound());
  EXPECT_EQ(s.GetFileUsage("t").value().file_count, 3);

  // A missing session is NotFound everywhere.
  EXPECT_TRUE(s.PutFile("ghost", {"/a", "x", ""}).IsNotFound());
  EXPECT_TRUE(s.GetFile("ghost", "/a").status().IsNotFound());
  EXPECT_TRUE(s.ListFiles("ghost").status().IsNotFound());
  EXPECT_TRUE(s.GetFileUsage("ghost").status().IsNotFound());
  EXPECT_TRUE(s.DeleteFile("ghost", "/a").IsNotFound());
}

TYPED_TEST(StoreConformance, PrefixHasNoWildcards) {
  Store& s = *this->store_;
  this->Create("t");
  for (const char* p : {"/a%b/1", "/a_b/2", "/aXb/3", "/a%/4"}) ASSERT_TRUE(s.PutFile("t", {p, "x", ""}).ok());
  StatusOr<std::vector<FileInfo>> l = s.ListFiles("t", "/a%");
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l.value().size(), 2u);
  EXPECT_EQ(l.value()[0].path, "/a%/4");
  EXPECT_EQ(l.value()[1].path, "/a%b/1");
  EXPECT_EQ(s.ListFiles("t", "/a_").value().size(), 1u);
}

TYPED_TEST(StoreConformance, DeletingASessionCascades) {
  Store& s = *this->store_;
  this->Create("t");
  this->Create("other");
  ASSERT_TRUE(s.SaveExecution("t", 0, StateWrite{"snap", "fmt", "build"}, {{"/f", "data", ""}}, {}).ok());
  ASSERT_TRUE(s.PutFile("other", {"/f", "keep", ""}).ok());
  ASSERT_TRUE(s.DeleteSession("t").ok());
  // Recreated under the same id: nothing of the old one comes back.
  this->Create("t");
  EXPECT_TRUE(s.ListFiles("t").value().empty());
  EXPECT_FALSE(s.GetState("t").value().has_value());
  EXPECT_EQ(this->Content("other", "/f"), "keep");
  // Nothing orphaned for cleanup to find.
  StatusOr<CleanupStats> c = s.Cleanup(0, /*dry_run=*/true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.value().files_deleted, 0);
}

TYPED_TEST(StoreConformance, StateVersionsAdvanceOnSave) {
  Store& s = *this->store_;
  this->Create("t");
  StatusOr<std::optional<SessionState>> st = s.GetState("t");
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st.value().has_value());
  EXPECT_TRUE(s.GetState("ghost").status().IsNotFound());

  const std::string snap("\0\1\2snapshot\xff", 12);
  StatusOr<int64_t> v = s.SaveExecution("t", 0, StateWrite{snap, "pages+zstd", "build-1"}, {}, {});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v.value(), 1);
  st = s.GetState("t");
  ASSERT_TRUE(st.value().has_value());
  EXPECT_EQ(st.value()->snapshot, snap);
  EXPECT_EQ(st.value()->format, "pages+zstd");
  EXPECT_EQ(st.value()->guest_build_id, "build-1");
  EXPECT_EQ(st.value()->version, 1);
  EXPECT_EQ(st.value()->updated_at, 100 * kDay);

  // Files only: the snapshot stays, the version still moves (live sessions must reload).
  this->now_ = 102 * kDay;
  v = s.SaveExecution("t", 1, std::nullopt, {{"/new", "n", ""}}, {});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v.value(), 2);
  st = s.GetState("t");
  EXPECT_EQ(st.value()->snapshot, snap);
  EXPECT_EQ(st.value()->version, 2);
  EXPECT_EQ(st.value()->updated_at, 102 * kDay);

  // A cleared state (reset) keeps the files.
  v = s.SaveExecution("t", 2, StateWrite{}, {}, {});
  ASSERT_TRUE(v.ok());
  st = s.GetState("t");
  EXPECT_TRUE(st.value()->cleared());
  EXPECT_EQ(st.value()->version, 3);
  EXPECT_EQ(this->Content("t", "/new"), "n");

  EXPECT_TRUE(s.SaveExecution("ghost", 0, StateWrite{}, {}, {}).status().IsNotFound());
}

// State deltas (StateWrite::delta): stored beside the state, read back in order with it,
// dropped by the next whole save; the version moves with each; a delta over no state is
// refused and changes nothing.
TYPED_TEST(StoreConformance, StateDeltasStackOnTheStateUntilAWholeSave) {
  Store& s = *this->store_;
  this->Create("t");
  StateWrite delta{"d", "", ""};
  delta.delta = true;
  // No state yet: nothing for a delta to apply to.
  EXPECT_TRUE(s.SaveExecution("t", 0, delta, {}, {}).status().IsFailedPrecondition());
  EXPECT_EQ(s.GetStateVersion("t").value(), 0);
  ASSERT_TRUE(s.SaveExecution("t", 0, StateWrite{"whole1", "fmt", "build"}, {}, {}).ok());
  this->now_ = 101 * kDay;
  delta.snapshot = "delta2";
  ASSERT_EQ(s.SaveExecution("t", 1, delta, {}, {}).value(), 2);
  this->now_ = 102 * kDay;
  delta.snapshot = std::string("delta3\0\xff", 8);
  ASSERT_EQ(s.SaveExecution("t", 2, delta, {{"/f", "file", ""}}, {}).value(), 3);
  EXPECT_EQ(s.GetStateVersion("t").value(), 3);
  auto st = s.GetState("t");
  ASSERT_TRUE(st.ok() && st.value());
  EXPECT_EQ(st.value()->snapshot, "whole1");
  EXPECT_EQ(st.value()->format, "fmt");
  EXPECT_EQ(st.value()->guest_build_id, "build");
  EXPECT_EQ(st.value()->snapshot_version, 1);
  EXPECT_EQ(st.value()->version, 3);
  EXPECT_EQ(st.value()->updated_at, 102 * kDay);
  ASSERT_EQ(st.value()->deltas.size(), 2u);
  EXPECT_EQ(st.value()->deltas[0], std::make_pair(int64_t{2}, std::string("delta2")));
  EXPECT_EQ(st.value()->deltas[1], std::make_pair(int64_t{3}, std::string("delta3\0\xff", 8)));
  // A stale writer's delta: Conflict, nothing added.
  EXPECT_TRUE(s.SaveExecution("t", 2, delta, {}, {}).status().IsConflict());
  EXPECT_EQ(s.GetState("t").value()->deltas.size(), 2u);
  // Files alone move the version and keep the deltas; a fallback of the newest version lands.
  ASSERT_EQ(s.SaveExecution("t", 3, std::nullopt, {{"/g", "g", ""}}, {}).value(), 4);
  delta.snapshot = "delta5";
  ASSERT_EQ(s.SaveExecution("t", 4, delta, {}, {}).value(), 5);
  EXPECT_TRUE(s.SaveFallback("t", 5, "fb5").value());
  st = s.GetState("t");
  EXPECT_EQ(st.value()->version, 5);
  EXPECT_EQ(st.value()->fallback_version, 5);
  ASSERT_EQ(st.value()->deltas.size(), 3u);
  EXPECT_EQ(st.value()->deltas[2].first, 5);
  // A whole save drops them.
  ASSERT_EQ(s.SaveExecution("t", 5, StateWrite{"whole6", "fmt", "build"}, {}, {}).value(), 6);
  st = s.GetState("t");
  EXPECT_EQ(st.value()->snapshot, "whole6");
  EXPECT_EQ(st.value()->snapshot_version, 6);
  EXPECT_TRUE(st.value()->deltas.empty());
  // After a reset (a cleared state) a delta has nothing to apply to again.
  delta.snapshot = "delta7";
  ASSERT_EQ(s.SaveExecution("t", 6, delta, {}, {}).value(), 7);
  ASSERT_EQ(s.SaveExecution("t", 7, StateWrite{}, {}, {}).value(), 8);
  EXPECT_TRUE(s.GetState("t").value()->deltas.empty());
  EXPECT_TRUE(s.SaveExecution("t", 8, delta, {}, {}).status().IsFailedPrecondition());
  EXPECT_EQ(s.GetStateVersion("t").value(), 8);
  // A new session cannot start from a delta.
  EXPECT_TRUE(s.CreateSessionWith("n", 1000 * kDay, nullptr, delta, {}).IsFailedPrecondition());
  EXPECT_FALSE(s.SessionExists("n").value());
  // Cleanup counts the deltas of the sessions it deletes.
  this->Create("gone", 50 * kDay);
  ASSERT_TRUE(s.SaveExecution("gone", 0, StateWrite{"w", "fmt", "build"}, {}, {}).ok());
  delta.snapshot = std::string(1000, 'd');
  ASSERT_TRUE(s.SaveExecution("gone", 1, delta, {}, {}).ok());
  auto stats = s.Cleanup(this->now_, /*dry_run=*/false);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats.value().sessions_deleted, 1);
  EXPECT_EQ(stats.value().bytes_freed, 1001);
  EXPECT_TRUE(s.GetState("gone").status().IsNotFound());
}

TYPED_TEST(StoreConformance, SaveWritesStateAndFilesTogether) {
  Store& s = *this->store_;
  this->Create("t");
  ASSERT_TRUE(s.SaveExecution("t", 0, StateWrite{"s1", "f", "b"}, {{"/a", "a1", ""}, {"/b", "b1", ""}}, {}).ok());
  StatusOr<int64_t> v = s.SaveExecution("t", 1, StateWrite{"s2", "f", "b"}, {{"/a", "a2", ""}, {"/c", "c2", ""}},
                                        {"/b", "/never-existed"});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(s.GetState("t").value()->snapshot, "s2");
  EXPECT_EQ(this->Content("t", "/a"), "a2");
  EXPECT_EQ(this->Content("t", "/c"), "c2");
  EXPECT_TRUE(s.GetFile("t", "/b").status().IsNotFound());
  // A path twice in one save is refused before anything is written.
  EXPECT_TRUE(s.SaveExecution("t", 2, StateWrite{"s3", "f", "b"}, {{"/a", "x", ""}}, {"/a"}).status().IsInvalidArgument());
  EXPECT_TRUE(
      s.SaveExecution("t", 2, StateWrite{}, {{"/a", "x", ""}, {"/a", "y", ""}}, {}).status().IsInvalidArgument());
  EXPECT_EQ(s.GetState("t").value()->version, 2);
}

// A whole session in one transaction (snapshot import): the row, its state at version 1 and
// its files, or, on any error, nothing.
TYPED_TEST(StoreConformance, CreateSessionWithMakesTheWholeSessionOrNothing) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.CreateSessionWith("whole", 500 * kDay, {{"k", 1}}, StateWrite{"st", "fmt", "build"},
                                  {{"/home/user/a.txt", "aaa", ""}, {"/tmp/d", "", std::string(kDirectoryType)},
                                   {"/data/b.bin", std::string("\0\1", 2), "application/x-thing"}})
                  .ok());
  StatusOr<SessionInfo> info = s.GetSession("whole");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info.value().expires_at, 500 * kDay);
  EXPECT_EQ(info.value().created_at, 100 * kDay);
  EXPECT_EQ(info.value().metadata, nlohmann::json({{"k", 1}}));
  EXPECT_EQ(info.value().file_count, 2);  // the directory row is not a file
  std::optional<SessionState> st = s.GetState("whole").value();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->snapshot, "st");
  EXPECT_EQ(st->format, "fmt");
  EXPECT_EQ(st->guest_build_id, "build");
  EXPECT_EQ(st->version, 1);
  EXPECT_EQ(this->Content("whole", "/home/user/a.txt"), "aaa");
  EXPECT_EQ(s.GetFile("whole", "/home/user/a.txt").value().info.content_type, "text/plain");  // detected
  EXPECT_EQ(s.GetFile("whole", "/data/b.bin").value().info.content_type, "application/x-thing");
  EXPECT_TRUE(s.GetFile("whole", "/tmp/d").value().info.is_directory());
  // A session without a state has none.
  ASSERT_TRUE(s.CreateSessionWith("stateless", 500 * kDay, nullptr, std::nullopt, {}).ok());
  EXPECT_FALSE(s.GetState("stateless").value().has_value());
  EXPECT_EQ(s.GetSession("stateless").value().metadata, nlohmann::json::object());

  // Taken: AlreadyExists, and the existing session is untouched.
  Status taken = s.CreateSessionWith("whole", 900 * kDay, {}, StateWrite{"other", "f", "b"}, {{"/x", "x", ""}});
  EXPECT_TRUE(taken.IsAlreadyExists()) << taken.ToString();
  EXPECT_EQ(s.GetState("whole").value()->snapshot, "st");
  EXPECT_TRUE(s.GetFile("whole", "/x").status().IsNotFound());
  EXPECT_EQ(s.GetSession("whole").value().expires_at, 500 * kDay);

  // Refused before any write: bad paths, a path twice, a file over 20 MiB, bad metadata.
  const std::vector<std::vector<FileWrite>> bad_files = {
      {{"/ok", "1", ""}, {"relative", "2", ""}},
      {{"/ok", "1", ""}, {"/ok", "2", ""}},
      {{"/ok", "1", ""}, {"/big", std::string(kMaxFileBytes + 1, 'x'), ""}},
  };
  for (const auto& files : bad_files) {
    Status r = s.CreateSessionWith("bad", 500 * kDay, {}, StateWrite{"s", "f", "b"}, files);
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(r.IsInvalidArgument() || r.IsResourceExhausted()) << r.ToString();
    EXPECT_FALSE(s.SessionExists("bad").value());
  }
  EXPECT_TRUE(s.CreateSessionWith("bad", 500 * kDay, nlohmann::json::array(), std::nullopt, {}).IsInvalidArgument());
  EXPECT_TRUE(s.CreateSessionWith("", 500 * kDay, {}, std::nullopt, {}).IsInvalidArgument());
  EXPECT_FALSE(s.SessionExists("bad").value());
}

// A failure inside the database after the session row and some files were written (a trigger
// refuses one file) leaves no part of the session: not its row, state or other files.
TYPED_TEST(StoreConformance, CreateSessionWithFailingInTheMiddleLeavesNothing) {
  Store& s = *this->store_;
  ASSERT_TRUE(TypeParam::FailInsertsOf(this->url_, "/home/user/boom").ok());
  Status r = s.CreateSessionWith("half", 500 * kDay, {}, StateWrite{"st", "f", "b"},
                                 {{"/home/user/a", "a", ""}, {"/home/user/b", "b", ""}, {"/home/user/boom", "!", ""},
                                  {"/home/user/c", "c", ""}});
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(s.SessionExists("half").value());
  EXPECT_TRUE(s.GetState("half").status().IsNotFound());
  EXPECT_EQ(s.ListSessions().value().size(), 0u);
  // No orphaned rows either (a cleanup would count them).
  EXPECT_EQ(s.Cleanup(0, /*dry_run=*/true).value().files_deleted, 0);
  EXPECT_EQ(s.Cleanup(0, /*dry_run=*/true).value().bytes_freed, 0);
}

// Fork's copy: files (contents, types, times) and the given state, in one transaction that
// re-checks the source's state version.
TYPED_TEST(StoreConformance, CopySessionCopiesFilesWithTheGivenState) {
  Store& s = *this->store_;
  this->Create("src");
  ASSERT_TRUE(s.SaveExecution("src", 0, StateWrite{"s1", "f", "b"},
                              {{"/home/user/a", "aaa", ""}, {"/tmp/empty", "", std::string(kDirectoryType)},
                               {"/data/x.bin", std::string(3 << 20, 'x'), "application/x-thing"}},
                              {})
                  .ok());
  this->now_ = 200 * kDay;
  ASSERT_TRUE(s.CopySession("src", "dst", 1, 700 * kDay, {{"copy", true}}, StateWrite{"s1-reseeded", "f", "b"}).ok());
  SessionInfo dst = s.GetSession("dst").value();
  EXPECT_EQ(dst.created_at, 200 * kDay);
  EXPECT_EQ(dst.expires_at, 700 * kDay);
  EXPECT_EQ(dst.metadata, nlohmann::json({{"copy", true}}));
  EXPECT_EQ(dst.file_count, 2);
  EXPECT_EQ(dst.total_bytes, 3 + (3 << 20));
  std::vector<FileInfo> src_files = s.ListFiles("src").value(), dst_files = s.ListFiles("dst").value();
  ASSERT_EQ(src_files.size(), 3u);
  ASSERT_EQ(dst_files.size(), 3u);
  for (size_t i = 0; i < src_files.size(); ++i) {
    EXPECT_EQ(dst_files[i].path, src_files[i].path);
    EXPECT_EQ(dst_files[i].content_type, src_files[i].content_type);
    EXPECT_EQ(dst_files[i].size, src_files[i].size);
    EXPECT_EQ(dst_files[i].created_at, 100 * kDay);  // the files' own times, not the copy's
    EXPECT_EQ(dst_files[i].modified_at, 100 * kDay);
  }
  EXPECT_EQ(this->Content("dst", "/data/x.bin"), std::string(3 << 20, 'x'));
  std::optional<SessionState> st = s.GetState("dst").value();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->snapshot, "s1-reseeded");
  EXPECT_EQ(st->version, 1);
  // The two are apart: a save in one is not seen in the other.
  ASSERT_TRUE(s.SaveExecution("dst", 1, StateWrite{"d2", "f", "b"}, {{"/home/user/a", "changed", ""}}, {"/data/x.bin"}).ok());
  EXPECT_EQ(this->Content("src", "/home/user/a"), "aaa");
  EXPECT_EQ(this->Content("src", "/data/x.bin").size(), size_t{3} << 20);
  EXPECT_EQ(s.GetState("src").value()->snapshot, "s1");
  // Without a state: none (a source that never ran, or was reset).
  ASSERT_TRUE(s.CopySession("src", "no-state", 1, 700 * kDay, {}, std::nullopt).ok());
  EXPECT_FALSE(s.GetState("no-state").value().has_value());
  EXPECT_EQ(s.ListFiles("no-state").value().size(), 3u);
}

TYPED_TEST(StoreConformance, CopySessionErrorsLeaveNoCopy) {
  Store& s = *this->store_;
  this->Create("src");
  this->Create("taken");
  ASSERT_TRUE(s.SaveExecution("src", 0, StateWrite{"s1", "f", "b"}, {{"/home/user/a", "a", ""}}, {}).ok());
  EXPECT_TRUE(s.CopySession("missing", "dst", 0, 700 * kDay, {}, std::nullopt).IsNotFound());
  EXPECT_TRUE(s.CopySession("src", "taken", 1, 700 * kDay, {}, std::nullopt).IsAlreadyExists());
  EXPECT_TRUE(s.CopySession("src", "src", 1, 700 * kDay, {}, std::nullopt).IsAlreadyExists());
  EXPECT_EQ(s.ListFiles("taken").value().size(), 0u);
  // The source moved on since the caller read its state: Conflict, nothing made.
  Status stale = s.CopySession("src", "dst", 0, 700 * kDay, {}, StateWrite{"old", "f", "b"});
  EXPECT_TRUE(stale.IsConflict()) << stale.ToString();
  EXPECT_FALSE(s.SessionExists("dst").value());
  EXPECT_TRUE(s.CopySession("src", "dst", 1, 700 * kDay, nlohmann::json::array(), std::nullopt).IsInvalidArgument());
  EXPECT_TRUE(s.CopySession("src", "", 1, 700 * kDay, {}, std::nullopt).IsInvalidArgument());
  // A failure inside the database while copying: no copy at all.
  ASSERT_TRUE(TypeParam::FailInsertsOf(this->url_, "/home/user/a").ok());
  EXPECT_FALSE(s.CopySession("src", "dst", 1, 700 * kDay, {}, StateWrite{"s", "f", "b"}).ok());
  EXPECT_FALSE(s.SessionExists("dst").value());
  EXPECT_EQ(s.Cleanup(0, /*dry_run=*/true).value().bytes_freed, 0);
}

TYPED_TEST(StoreConformance, VersionConflictChangesNothing) {
  Store& s = *this->store_;
  this->Create("t");
  ASSERT_TRUE(s.SaveExecution("t", 0, StateWrite{"old", "f", "b"}, {{"/keep", "k", ""}, {"/gone\n", "", ""}}, {})
                  .status()
                  .IsInvalidArgument());  // a control character: nothing saved
  ASSERT_TRUE(s.SaveExecution("t", 0, StateWrite{"old", "f", "b"}, {{"/keep", "k", ""}, {"/del", "d", ""}}, {}).ok());
  this->now_ = 105 * kDay;
  for (int64_t wrong : {0, 2, 7}) {
    StatusOr<int64_t> v =
        s.SaveExecution("t", wrong, StateWrite{"new", "f2", "b2"}, {{"/keep", "changed", ""}, {"/added", "a", ""}},
                        {"/del"});
    ASSERT_TRUE(v.status().IsConflict()) << v.status().ToString();
    EXPECT_NE(v.status().message().find("version 1"), std::string::npos) << v.status().message();
  }
  StatusOr<std::optional<SessionState>> st = s.GetState("t");
  EXPECT_EQ(st.value()->snapshot, "old");
  EXPECT_EQ(st.value()->format, "f");
  EXPECT_EQ(st.value()->version, 1);
  EXPECT_EQ(st.value()->updated_at, 100 * kDay);
  EXPECT_EQ(this->Content("t", "/keep"), "k");
  EXPECT_EQ(this->Content("t", "/del"), "d");
  EXPECT_TRUE(s.GetFile("t", "/added").status().IsNotFound());
  EXPECT_EQ(s.GetFileUsage("t").value().file_count, 2);
}

TYPED_TEST(StoreConformance, FileOverTwentyMiBIsRefusedByBrigAndBySchema) {
  Store& s = *this->store_;
  this->Create("t");
  const std::string max(kMaxFileBytes, 'm');
  ASSERT_TRUE(s.PutFile("t", {"/max.bin", max, ""}).ok());
  EXPECT_EQ(s.GetFile("t", "/max.bin").value().info.size, kMaxFileBytes);
  EXPECT_EQ(s.GetFile("t", "/max.bin", kMaxFileBytes - 3).value().content, "mmm");

  const std::string over(kMaxFileBytes + 1, 'o');
  Status put = s.PutFile("t", {"/over.bin", over, ""});
  EXPECT_TRUE(put.IsResourceExhausted()) << put.ToString();
  EXPECT_NE(put.message().find("20 MiB"), std::string::npos);
  StatusOr<int64_t> save = s.SaveExecution("t", 0, StateWrite{"s", "f", "b"}, {{"/over.bin", over, ""}}, {});
  EXPECT_TRUE(save.status().IsResourceExhausted()) << save.status().ToString();
  EXPECT_FALSE(s.GetState("t").value().has_value());

  // Bypassing brig: the schema's CHECK refuses it too; the limit itself still fits.
  EXPECT_FALSE(TypeParam::InsertRawFile(this->url_, "t", "/raw-over", kMaxFileBytes + 1, false).ok());
  EXPECT_TRUE(TypeParam::InsertRawFile(this->url_, "t", "/raw-max", kMaxFileBytes, false).ok());
  EXPECT_TRUE(s.GetFile("t", "/raw-over").status().IsNotFound());
  EXPECT_EQ(s.GetFileUsage("t").value().file_count, 2);
}

TYPED_TEST(StoreConformance, BadThreadIdsAreRefusedEverywhere) {
  Store& s = *this->store_;
  const std::vector<std::string> bad = {"", std::string(256, 'a'), std::string("a\0b", 3), "tab\there",
                                        "new\nline", "del\x7f", "c1\xc2\x85", "bad\xff utf8", "\xc0\xaf"};
  for (const std::string& id : bad) {
    SCOPED_TRACE(::testing::PrintToString(id));
    EXPECT_TRUE(s.CreateSession(id, kDay, {}).IsInvalidArgument());
    EXPECT_TRUE(s.GetSession(id).status().IsInvalidArgument());
    EXPECT_TRUE(s.SessionExists(id).status().IsInvalidArgument());
    EXPECT_TRUE(s.TouchSession(id).IsInvalidArgument());
    EXPECT_TRUE(s.DeleteSession(id).IsInvalidArgument());
    EXPECT_TRUE(s.PutFile(id, {"/a", "x", ""}).IsInvalidArgument());
    EXPECT_TRUE(s.ListFiles(id).status().IsInvalidArgument());
    EXPECT_TRUE(s.GetState(id).status().IsInvalidArgument());
    EXPECT_TRUE(s.SaveExecution(id, 0, StateWrite{}, {}, {}).status().IsInvalidArgument());
    EXPECT_TRUE(s.LockSession(id, std::chrono::milliseconds(10)).status().IsInvalidArgument());
  }
  EXPECT_TRUE(s.CreateSession(std::string(255, 'a'), kDay, {}).ok());
  EXPECT_TRUE(s.ListSessions().value().size() == 1);
}

TYPED_TEST(StoreConformance, BadPathsAreRefusedEverywhere) {
  Store& s = *this->store_;
  this->Create("t");
  std::string deep;
  for (int i = 0; i < 65; ++i) deep += "/d";
  const std::vector<std::string> bad = {"",         "relative/x", "/",        "/a/../b", "/a/./b",  "/..",
                                        "/a//b",    "/a/",        "/a\0b",    "/a\nb",   "/a\x1b",  "/\xff\xfe",
                                        deep,       "/" + std::string(4096, 'x'), "/" + std::string(256, 'x')};
  for (std::string path : bad) {
    if (path == "/a\0b") path = std::string("/a\0b", 4);
    SCOPED_TRACE(::testing::PrintToString(path));
    EXPECT_TRUE(s.PutFile("t", {path, "x", ""}).IsInvalidArgument());
    EXPECT_TRUE(s.GetFile("t", path).status().IsInvalidArgument());
    EXPECT_TRUE(s.DeleteFile("t", path).IsInvalidArgument());
    EXPECT_TRUE(s.SaveExecution("t", 0, StateWrite{}, {{path, "x", ""}}, {}).status().IsInvalidArgument());
    EXPECT_TRUE(s.SaveExecution("t", 0, StateWrite{}, {}, {path}).status().IsInvalidArgument());
  }
  EXPECT_TRUE(s.ListFiles("t").value().empty());
  EXPECT_FALSE(s.GetState("t").value().has_value());
}

// The characters other systems refuse are ordinary names here (names/path_rules.h): the
// guest can make them, so the store holds them.
TYPED_TEST(StoreConformance, NamesAgentsWriteAreStored) {
  Store& s = *this->store_;
  this->Create("t");
  const std::vector<std::string> good = {"/tmp/12:00.log", "/home/user/report: final.txt", "/a<b>", "/a\"b",
                                         "/a|b", "/a?", "/a*", "/a\\b", "/tmp/" + std::string(255, 'x')};
  for (const std::string& path : good) {
    SCOPED_TRACE(path);
    ASSERT_TRUE(s.PutFile("t", {path, "x", ""}).ok());
    EXPECT_EQ(s.GetFile("t", path).value().content, "x");
  }
  EXPECT_EQ(s.ListFiles("t").value().size(), good.size());
}

// An empty directory is a row of kDirectoryType: listed, never counted as a file.
TYPED_TEST(StoreConformance, DirectoryRowsAreListedButNotCounted) {
  Store& s = *this->store_;
  this->Create("t");
  ASSERT_TRUE(s.PutFile("t", {"/tmp/empty", "", std::string(kDirectoryType)}).ok());
  ASSERT_TRUE(s.PutFile("t", {"/tmp/f", "abc", ""}).ok());
  EXPECT_TRUE(s.PutFile("t", {"/tmp/bad", "x", std::string(kDirectoryType)}).IsInvalidArgument());
  auto files = s.ListFiles("t").value();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_TRUE(files[0].is_directory());
  EXPECT_FALSE(files[1].is_directory());
  EXPECT_EQ(s.GetFileUsage("t").value().file_count, 1);
  EXPECT_EQ(s.GetFileUsage("t").value().total_bytes, 3);
  EXPECT_EQ(s.GetSession("t").value().file_count, 1);
}

// Concurrent extensions add up: each is one statement, never a read then a write.
TYPED_TEST(StoreConformance, ConcurrentExtensionsAddUp) {
  this->Create("t");
  const int64_t before = this->store_->GetSession("t").value().expires_at;
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      // A store of its own per thread: another connection, as another process would have.
      auto store = OpenStore(this->url_);
      if (!store.ok()) {
        ++failed;
        return;
      }
      for (int k = 0; k < kEach; ++k) {
        if (!store.value()->ExtendSessionExpiry("t", 0, 30 * kDay).ok()) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(this->store_->GetSession("t").value().expires_at, before + kThreads * kEach * 30 * kDay);
  EXPECT_TRUE(this->store_->ExtendSessionExpiry("ghost", 0, kDay).status().IsNotFound());
  // From now when the session had already expired.
  EXPECT_EQ(this->store_->ExtendSessionExpiry("t", int64_t{1} << 60, kDay).value(), (int64_t{1} << 60) + kDay);
}

TYPED_TEST(StoreConformance, FallbacksAreWrittenAfterTheirSaveAndOnlyMoveForward) {
  Store& s = *this->store_;
  this->Create("t");
  EXPECT_EQ(s.GetStateVersion("t").value(), 0);
  EXPECT_FALSE(s.SaveFallback("t", 1, "early").value()) << "no state at version 1 yet";
  ASSERT_EQ(s.SaveExecution("t", 0, StateWrite{"s1", "f", "b"}, {}, {}).value(), 1);
  EXPECT_EQ(s.GetStateVersion("t").value(), 1);
  StatusOr<std::optional<SessionState>> st = s.GetState("t");
  EXPECT_EQ(st.value()->fallback, "");
  EXPECT_EQ(st.value()->fallback_version, 0);

  // After the save, for its version (bytes of any kind).
  const std::string p1("p1\0\xff", 4);
  EXPECT_TRUE(s.SaveFallback("t", 1, p1).value());
  st = s.GetState("t");
  EXPECT_EQ(st.value()->fallback, p1);
  EXPECT_EQ(st.value()->fallback_version, 1);
  EXPECT_EQ(st.value()->snapshot, "s1") << "the state is untouched";
  EXPECT_EQ(st.value()->version, 1) << "and so is its version";
  EXPECT_FALSE(s.SaveFallback("t", 1, "again").value()) << "not newer than the stored one";

  // A save without one keeps the older fallback; a save with one replaces it.
  ASSERT_EQ(s.SaveExecution("t", 1, StateWrite{"s2", "f", "b"}, {}, {}).value(), 2);
  st = s.GetState("t");
  EXPECT_EQ(st.value()->fallback, p1);
  EXPECT_EQ(st.value()->fallback_version, 1);
  StateWrite with_fallback{"s3", "f", "b"};
  with_fallback.fallback = "p3";
  ASSERT_EQ(s.SaveExecution("t", 2, with_fallback, {}, {}).value(), 3);
  st = s.GetState("t");
  EXPECT_EQ(st.value()->fallback, "p3");
  EXPECT_EQ(st.value()->fallback_version, 3);
  EXPECT_FALSE(s.SaveFallback("t", 2, "p2").value()) << "older than the stored fallback";
  EXPECT_FALSE(s.SaveFallback("t", 5, "p5").value()) << "for a version not saved yet";
  EXPECT_EQ(s.GetState("t").value()->fallback, "p3");
  ASSERT_EQ(s.SaveExecution("t", 3, StateWrite{"s4", "f", "b"}, {}, {}).value(), 4);
  EXPECT_TRUE(s.SaveFallback("t", 4, "p4").value());

  // A cleared state (reset) clears the fallback: none taken before it may land after it.
  ASSERT_EQ(s.SaveExecution("t", 4, StateWrite{}, {}, {}).value(), 5);
  st = s.GetState("t");
  EXPECT_TRUE(st.value()->cleared());
  EXPECT_EQ(st.value()->fallback, "");
  EXPECT_EQ(st.value()->fallback_version, 5);
  EXPECT_FALSE(s.SaveFallback("t", 4, "late").value());
  EXPECT_EQ(s.GetState("t").value()->fallback, "");
  // Files only: state and fallback stay.
  ASSERT_EQ(s.SaveExecution("t", 5, std::nullopt, {{"/f", "x", ""}}, {}).value(), 6);
  EXPECT_EQ(s.GetState("t").value()->fallback_version, 5);
  EXPECT_TRUE(s.SaveFallback("t", 6, "p6").value());
  EXPECT_EQ(s.GetState("t").value()->fallback, "p6");

  EXPECT_TRUE(s.SaveFallback("ghost", 1, "x").status().IsNotFound());
  EXPECT_TRUE(s.GetStateVersion("ghost").status().IsNotFound());
  EXPECT_TRUE(s.SaveFallback("", 1, "x").status().IsInvalidArgument());
  EXPECT_TRUE(s.SaveFallback("t", 0, "x").status().IsInvalidArgument());
  EXPECT_TRUE(s.GetStateVersion("").status().IsInvalidArgument());
}

TYPED_TEST(StoreConformance, FallbacksGoWithTheirSession) {
  Store& s = *this->store_;
  this->Create("old", 50 * kDay);
  StateWrite w{std::string(10, 's'), "f", "b"};
  w.fallback = std::string(100, 'p');
  ASSERT_TRUE(s.SaveExecution("old", 0, w, {}, {}).ok());
  StatusOr<CleanupStats> dry = s.Cleanup(100 * kDay, /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry.value().bytes_freed, 110) << "the fallback's bytes are freed too";
  EXPECT_EQ(s.Cleanup(100 * kDay, /*dry_run=*/false).value().bytes_freed, 110);
  // A new session of the same name starts without it.
  this->Create("old");
  ASSERT_TRUE(s.SaveExecution("old", 0, StateWrite{"new", "f", "b"}, {}, {}).ok());
  EXPECT_EQ(s.GetState("old").value()->fallback, "");
  EXPECT_EQ(s.GetState("old").value()->fallback_version, 0);
  // Deleting a session deletes its fallback (the schema cascades).
  ASSERT_TRUE(s.SaveFallback("old", 1, "p").value());
  ASSERT_TRUE(s.DeleteSession("old").ok());
  this->Create("old");
  EXPECT_EQ(s.SaveExecution("old", 0, StateWrite{"again", "f", "b"}, {}, {}).value(), 1);
  EXPECT_EQ(s.GetState("old").value()->fallback, "");
}

TYPED_TEST(StoreConformance, CleanupDeletesExpiredSessionsAndOrphans) {
  Store& s = *this->store_;
  this->Create("expired1", 50 * kDay);
  this->Create("expired2", 99 * kDay);
  this->Create("alive", 500 * kDay);
  ASSERT_TRUE(s.SaveExecution("expired1", 0, StateWrite{std::string(100, 's'), "f", "b"},
                              {{"/a", std::string(10, 'a'), ""}, {"/b", std::string(20, 'b'), ""}}, {})
                  .ok());
  ASSERT_TRUE(s.PutFile("expired2", {"/c", std::string(30, 'c'), ""}).ok());
  ASSERT_TRUE(s.SaveExecution("alive", 0, StateWrite{"live", "f", "b"}, {{"/keep", "kk", ""}}, {}).ok());
  // An orphan, as a client without foreign keys could leave.
  ASSERT_TRUE(TypeParam::InsertRawFile(this->url_, "vanished", "/o", 7, /*orphan=*/true).ok());

  StatusOr<CleanupStats> dry = s.Cleanup(100 * kDay, /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry.value().sessions_deleted, 2);
  EXPECT_EQ(dry.value().files_deleted, 4);
  EXPECT_EQ(dry.value().bytes_freed, 10 + 20 + 30 + 7 + 100);
  EXPECT_EQ(s.ListSessions().value().size(), 3u);  // dry run changed nothing
  EXPECT_EQ(s.GetFileUsage("expired1").value().file_count, 2);

  StatusOr<CleanupStats> done = s.Cleanup(100 * kDay, /*dry_run=*/false);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done.value().sessions_deleted, 2);
  EXPECT_EQ(done.value().files_deleted, 4);
  EXPECT_EQ(done.value().bytes_freed, 167);
  EXPECT_FALSE(s.SessionExists("expired1").value());
  EXPECT_FALSE(s.SessionExists("expired2").value());
  EXPECT_EQ(this->Content("alive", "/keep"), "kk");
  EXPECT_EQ(s.GetState("alive").value()->snapshot, "live");

  StatusOr<CleanupStats> again = s.Cleanup(100 * kDay, false);
  EXPECT_EQ(again.value().sessions_deleted, 0);
  EXPECT_EQ(again.value().files_deleted, 0);
  EXPECT_EQ(again.value().bytes_freed, 0);
}

TYPED_TEST(StoreConformance, GetSessionAndStateVersionReadsBothAtOnce) {
  Store& s = *this->store_;
  EXPECT_TRUE(s.GetSessionAndStateVersion("missing").status().IsNotFound());
  this->Create("t");
  ASSERT_TRUE(s.PutFile("t", {"/a", "abc", ""}).ok());
  StatusOr<std::pair<SessionInfo, int64_t>> both = s.GetSessionAndStateVersion("t");
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both.value().second, 0);
  EXPECT_EQ(both.value().first.thread_id, "t");
  const SessionInfo full = s.GetSession("t").value();
  EXPECT_EQ(both.value().first.expires_at, full.expires_at);
  EXPECT_EQ(both.value().first.created_at, full.created_at);
  EXPECT_EQ(both.value().first.last_accessed, full.last_accessed);
  EXPECT_EQ(both.value().first.metadata, full.metadata);
  EXPECT_EQ(both.value().first.quotas, full.quotas);
  // The file counts are GetSession's to give (store.h): this read need not count them.
  EXPECT_EQ(full.file_count, 1);
  ASSERT_TRUE(s.SaveExecution("t", 0, StateWrite{"v1", "f", "b"}, {}, {}).ok());
  ASSERT_TRUE(s.SaveExecution("t", 1, StateWrite{"v2", "f", "b"}, {}, {}).ok());
  EXPECT_EQ(s.GetSessionAndStateVersion("t").value().second, 2);
  StateWrite delta{"d3", "", ""};
  delta.delta = true;
  ASSERT_TRUE(s.SaveExecution("t", 2, delta, {}, {}).ok());
  EXPECT_EQ(s.GetSessionAndStateVersion("t").value().second, 3);
}

// A save of a new state alone (no file changed): PostgreSQL writes it in one statement.
// A save that names the session it expects (its created_at and expiry) refuses another one
// of the same name (deleted and made again, even at the same version), a missing one and
// one whose expiry moved earlier, with Conflict, and changes nothing (one moved later saves): what a live copy run without
// reading the store first relies on (Sessions::Execute). Each kind of save: a whole state
// alone and a delta alone (PostgreSQL's one-statement paths), one with files (the general
// path), and a group.
TYPED_TEST(StoreConformance, SavesExpectingASessionRefuseAnotherOne) {
  Store& s = *this->store_;
  this->Create("t");
  const SessionInfo made = s.GetSession("t").value();
  const ExpectedSession first{made.created_at, made.expires_at};
  ASSERT_EQ(s.SaveExecution("t", 0, first, StateWrite{"v1", "f", "b"}, {}, {}).value(), 1);
  StateWrite delta{"d2", "f", "b"};
  delta.delta = true;
  ASSERT_EQ(s.SaveExecution("t", 1, first, delta, {}, {}).value(), 2);
  ASSERT_EQ(s.SaveExecution("t", 2, first, StateWrite{"v3", "f", "b"}, {{"/a", "a", ""}}, {}).value(), 3);

  // Deleted and made again a day later, with the same expiry, then saved up to the same version.
  ASSERT_TRUE(s.DeleteSession("t").ok());
  this->now_ = 101 * kDay;
  this->Create("t");
  const SessionInfo again = s.GetSession("t").value();
  ASSERT_NE(again.created_at, first.created_at);
  ASSERT_EQ(again.expires_at, first.expires_at);
  ASSERT_EQ(s.SaveExecution("t", 0, StateWrite{"n1", "f", "b"}, {}, {}).value(), 1);
  ASSERT_EQ(s.SaveExecution("t", 1, StateWrite{"n2", "f", "b"}, {}, {}).value(), 2);
  this->now_ = 102 * kDay;
  // A whole state alone, a delta alone and a state with a file (`path`), each of `t`
  // expecting `version`; then each answer must be a Conflict that says `why`.
  auto each_kind = [&](int64_t version, const ExpectedSession& expected, const std::string& path) {
    StateWrite delta{"stale-d", "f", "b"};
    delta.delta = true;
    return std::vector<StatusOr<int64_t>>{
        s.SaveExecution("t", version, expected, StateWrite{"stale", "f", "b"}, {}, {}),
        s.SaveExecution("t", version, expected, delta, {}, {}),
        s.SaveExecution("t", version, expected, StateWrite{"stale", "f", "b"}, {{path, "x", ""}}, {})};
  };
  auto expect_conflicts = [](const std::vector<StatusOr<int64_t>>& answers, const std::string& why) {
    for (size_t i = 0; i < answers.size(); ++i) {
      ASSERT_TRUE(answers[i].status().IsConflict()) << i << ": " << answers[i].status().ToString();
      EXPECT_NE(answers[i].status().message().find(why), std::string::npos) << answers[i].status().message();
    }
  };
  std::vector<StatusOr<int64_t>> refused = each_kind(2, first, "/b");
  refused.push_back(s.SaveExecution("t", 2, first, std::nullopt, {{"/b", "b", ""}}, {}));
  ExecutionSave grouped;
  grouped.thread_id = "t";
  grouped.expected_version = 2;
  grouped.expected_session = first;
  grouped.state = StateWrite{"stale", "f", "b"};
  refused.push_back(s.SaveExecutions({grouped}).at(0));
  refused.push_back(s.SaveExecution("missing", 0, first, StateWrite{"x", "f", "b"}, {}, {}));
  expect_conflicts(refused, "made again");
  StatusOr<std::optional<SessionState>> st = s.GetState("t");
  EXPECT_EQ(st.value()->snapshot, "n2");
  EXPECT_EQ(st.value()->version, 2);
  EXPECT_TRUE(st.value()->deltas.empty());
  EXPECT_EQ(s.GetSession("t").value().last_accessed, 101 * kDay);
  EXPECT_TRUE(s.GetFile("t", "/b").status().IsNotFound());
  EXPECT_FALSE(s.SessionExists("missing").value());

  // The session it is saves, also once its expiry moved later (extend); once it moved
  // earlier than the copy knows, even if still ahead, it does not (by any kind of save).
  const ExpectedSession second{again.created_at, again.expires_at};
  ASSERT_EQ(s.SaveExecution("t", 2, second, StateWrite{"n3", "f", "b"}, {}, {}).value(), 3);
  ASSERT_TRUE(s.SetSessionExpiry("t", again.expires_at + kDay).ok());
  StateWrite later_delta{"later-d", "f", "b"};
  later_delta.delta = true;
  ASSERT_EQ(s.SaveExecution("t", 3, second, later_delta, {}, {}).value(), 4);
  ASSERT_EQ(s.SaveExecution("t", 4, second, StateWrite{"n5", "f", "b"}, {{"/a", "a5", ""}}, {}).value(), 5);
  const int64_t last_use = s.GetSession("t").value().last_accessed;
  this->now_ = 103 * kDay;
  ASSERT_TRUE(s.SetSessionExpiry("t", again.expires_at - 1).ok());
  ASSERT_GT(again.expires_at - 1, this->now_.load());  // earlier, and still ahead
  expect_conflicts(each_kind(5, second, "/c"), "earlier expiry");
  EXPECT_EQ(s.GetState("t").value()->snapshot, "n5");
  EXPECT_EQ(s.GetState("t").value()->version, 5);
  EXPECT_EQ(s.GetSession("t").value().last_accessed, last_use);
  EXPECT_TRUE(s.GetFile("t", "/c").status().IsNotFound());
  const ExpectedSession shortened{again.created_at, again.expires_at - 1};
  StateWrite late_delta{"late-d", "f", "b"};
  late_delta.delta = true;
  EXPECT_EQ(s.SaveExecution("t", 5, shortened, late_delta, {}, {}).value(), 6);
  EXPECT_EQ(s.SaveExecution("t", 6, StateWrite{"unchecked", "f", "b"}, {}, {}).value(), 7);
}

TYPED_TEST(StoreConformance, StateOnlySaveChecksTheVersionAndChangesNothingOnConflict) {
  Store& s = *this->store_;
  this->Create("t");
  EXPECT_TRUE(s.SaveExecution("missing", 1, StateWrite{"x", "f", "b"}, {}, {}).status().IsNotFound());
  ASSERT_EQ(s.SaveExecution("t", 0, StateWrite{"v1", "f", "b"}, {}, {}).value(), 1);
  ASSERT_EQ(s.SaveExecution("t", 1, StateWrite{"v2", "f", "b"}, {}, {}).value(), 2);
  EXPECT_TRUE(s.SaveExecution("missing", 2, StateWrite{"x", "f", "b"}, {}, {}).status().IsNotFound());
  this->now_ = 105 * kDay;
  for (int64_t wrong : {1, 3, 7}) {
    StatusOr<int64_t> v = s.SaveExecution("t", wrong, StateWrite{"new", "f2", "b2"}, {}, {});
    ASSERT_TRUE(v.status().IsConflict()) << v.status().ToString();
    EXPECT_NE(v.status().message().find("version 2"), std::string::npos) << v.status().message();
  }
  StatusOr<std::optional<SessionState>> st = s.GetState("t");
  EXPECT_EQ(st.value()->snapshot, "v2");
  EXPECT_EQ(st.value()->version, 2);
  EXPECT_EQ(st.value()->updated_at, 100 * kDay);
  EXPECT_EQ(s.GetSession("t").value().last_accessed, 100 * kDay);
  // The right version saves, and touches the session.
  ASSERT_EQ(s.SaveExecution("t", 2, StateWrite{"v3", "f3", "b3"}, {}, {}).value(), 3);
  st = s.GetState("t");
  EXPECT_EQ(st.value()->snapshot, "v3");
  EXPECT_EQ(st.value()->format, "f3");
  EXPECT_EQ(st.value()->guest_build_id, "b3");
  EXPECT_EQ(st.value()->updated_at, 105 * kDay);
  EXPECT_EQ(s.GetSession("t").value().last_accessed, 105 * kDay);
}

TYPED_TEST(StoreConformance, ConcurrentStateOnlySavesWithOneVersionExactlyOneWins) {
  this->Create("t");
  std::unique_ptr<Store> a = this->Open();
  std::unique_ptr<Store> b = this->Open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(this->store_->SaveExecution("t", 0, StateWrite{"first", "f", "b"}, {}, {}).ok());
  int64_t version = 1;
  for (int round = 0; round < 20; ++round) {
    std::barrier sync(2);
    StatusOr<int64_t> ra = Status::Internal("unset"), rb = Status::Internal("unset");
    auto save = [&](Store* store, const std::string& who, StatusOr<int64_t>* out) {
      sync.arrive_and_wait();
      *out = store->SaveExecution("t", version, StateWrite{who + std::to_string(round), "f", "b"}, {}, {});
    };
    std::thread ta(save, a.get(), "a", &ra);
    std::thread tb(save, b.get(), "b", &rb);
    ta.join();
    tb.join();
    ASSERT_NE(ra.ok(), rb.ok()) << "round " << round << ": " << ra.status().ToString() << " / "
                                << rb.status().ToString();
    const bool a_won = ra.ok();
    EXPECT_TRUE((a_won ? rb : ra).status().IsConflict()) << (a_won ? rb : ra).status().ToString();
    ++version;
    EXPECT_EQ((a_won ? ra : rb).value(), version);
    std::string winner = a_won ? "a" : "b";
    winner += std::to_string(round);
    EXPECT_EQ(this->store_->GetState("t").value()->snapshot, winner);
    EXPECT_EQ(this->store_->GetState("t").value()->version, version);
  }
}

TYPED_TEST(StoreConformance, ConcurrentSavesWithOneVersionExactlyOneWins) {
  this->Create("t");
  std::unique_ptr<Store> a = this->Open();
  std::unique_ptr<Store> b = this->Open();
  ASSERT_TRUE(a && b);
  int64_t version = 0;
  for (int round = 0; round < 20; ++round) {
    std::barrier sync(2);
    StatusOr<int64_t> ra = Status::Internal("unset"), rb = Status::Internal("unset");
    auto save = [&](Store* store, const std::string& who, StatusOr<int64_t>* out) {
      sync.arrive_and_wait();
      *out = store->SaveExecution("t", version, StateWrite{who + std::to_string(round), "f", "b"},
                                  {{"/by", who + std::to_string(round), ""}}, {});
    };
    std::thread ta(save, a.get(), "a", &ra);
    std::thread tb(save, b.get(), "b", &rb);
    ta.join();
    tb.join();
    ASSERT_NE(ra.ok(), rb.ok()) << "round " << round << ": " << ra.status().ToString() << " / "
                                << rb.status().ToString();
    const bool a_won = ra.ok();
    EXPECT_TRUE((a_won ? rb : ra).status().IsConflict()) << (a_won ? rb : ra).status().ToString();
    ++version;
    EXPECT_EQ((a_won ? ra : rb).value(), version);
    std::string winner = a_won ? "a" : "b";  // appended: GCC 12 warns falsely on "a" + to_string
    winner += std::to_string(round);
    // State and file come from the same winner.
    EXPECT_EQ(this->store_->GetState("t").value()->snapshot, winner);
    EXPECT_EQ(this->Content("t", "/by"), winner);
  }
}

TYPED_TEST(StoreConformance, SessionLockExcludesOtherHolders) {
  Store& s = *this->store_;
  StatusOr<std::unique_ptr<SessionLock>> first = s.LockSession("t");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // Another holder (even in this process, even through another Store) waits and times out.
  std::unique_ptr<Store> other = this->Open();
  StatusOr<std::unique_ptr<SessionLock>> second = other->LockSession("t", std::chrono::milliseconds(100));
  EXPECT_TRUE(second.status().IsDeadlineExceeded()) << second.status().ToString();
  EXPECT_TRUE(s.LockSession("t", std::chrono::milliseconds(50)).status().IsDeadlineExceeded());
  // A different session is independent.
  EXPECT_TRUE(other->LockSession("u", std::chrono::milliseconds(100)).ok());
  // A waiter gets the lock once it is released.
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    first.value().reset();
  });
  second = other->LockSession("t", std::chrono::milliseconds(5000));
  release.join();
  EXPECT_TRUE(second.ok()) << second.status().ToString();
}

TYPED_TEST(StoreConformance, SessionLockDiesWithItsProcess) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Only async-signal-safe-ish work and _exit: the child must not run gtest.
    close(ready[0]);
    StatusOr<std::unique_ptr<Store>> st = OpenStore(this->url_, this->options_);
    if (!st.ok()) _exit(2);
    StatusOr<std::unique_ptr<SessionLock>> lock = st.value()->LockSession("t");
    if (!lock.ok()) _exit(3);
    (void)!write(ready[1], "L", 1);
    while (true) pause();
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "child could not take the lock";
  close(ready[0]);
  EXPECT_TRUE(this->store_->LockSession("t", std::chrono::milliseconds(200)).status().IsDeadlineExceeded());
  kill(child, SIGKILL);
  int status;
  waitpid(child, &status, 0);
  StatusOr<std::unique_ptr<SessionLock>> lock = this->store_->LockSession("t", std::chrono::milliseconds(10'000));
  EXPECT_TRUE(lock.ok()) << lock.status().ToString();
}

}  // namespace
}  // namespace brig::store
