// The host-only public API (include/brig/) as an embedder sees it: this file includes only
// brig/*.h (the api_includes test checks it), and does what `brig sessions`, `brig files` and
// `brig cleanup` do, on SQLite and on a real PostgreSQL. Executions, fork of a live
// interpreter and snapshots: tests/guest/session_snapshot_test.cc.
#include <stdlib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../store/pg_harness.h"  // test infrastructure: a throwaway PostgreSQL server
#include "brig/file_info.h"
#include "brig/files.h"
#include "brig/grep.h"
#include "brig/periodic_cleanup.h"
#include "brig/session_info.h"
#include "brig/session_manager.h"
#include "brig/status.h"
#include "brig/store.h"
#include "brig/text.h"

namespace brig {
namespace {

enum class Backend { kSqlite, kPostgres };

class PublicApiTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres) {
      if (store::testing::SkipPostgres()) GTEST_SKIP() << "BRIG_SKIP_POSTGRES=1";
      StatusOr<std::string> url = store::testing::PgServer::Get().NewUrl();
      ASSERT_TRUE(url.ok()) << url.status().ToString();
      url_ = url.value();
    } else {
      char dir[] = "/tmp/brig-api-test-XXXXXX";
      ASSERT_NE(mkdtemp(dir), nullptr);
      dir_ = dir;
      url_ = "sqlite:" + dir_ + "/brig.db";
    }
    StoreOptions so;
    so.clock = [this] { return now_.load(); };
    StatusOr<std::unique_ptr<Store>> store = Store::Open(url_, so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store.value());
    SessionOptions options;
    options.clock = [this] { return now_.load(); };
    options.max_files_per_session = 5;
    options.max_bytes_per_session = 1000;
    manager_ = std::make_unique<SessionManager>(*store_, options);
    files_ = std::make_unique<FileService>(*manager_);
  }
  void TearDown() override {
    files_.reset();
    manager_.reset();
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string dir_, url_;
  std::atomic<int64_t> now_{int64_t{1000} * kMicrosPerDay};
  std::unique_ptr<Store> store_;
  std::unique_ptr<SessionManager> manager_;
  std::unique_ptr<FileService> files_;
};

INSTANTIATE_TEST_SUITE_P(Backends, PublicApiTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& info) { return info.param == Backend::kSqlite ? "SQLite" : "PostgreSQL"; });

TEST_P(PublicApiTest, StoreOpensByUrlAndAnswers) {
  EXPECT_EQ(store_->backend(), GetParam() == Backend::kSqlite ? "sqlite" : "postgresql");
  EXPECT_TRUE(store_->Ping().ok());
  EXPECT_TRUE(Store::Open("mysql://x").status().IsInvalidArgument());
  EXPECT_TRUE(Store::Open("sqlite:").status().IsInvalidArgument());
  EXPECT_TRUE(Store::Open("sqlite:/nonexistent-dir/brig.db").status().IsUnavailable());
  StoreOptions bad;
  bad.pool_size = 0;
  if (GetParam() == Backend::kPostgres) {
    EXPECT_TRUE(Store::Open(url_, bad).status().IsInvalidArgument());
  }
  // A second handle on the same store sees the same sessions (another process would).
  StatusOr<std::unique_ptr<Store>> again = Store::Open(url_);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(manager_->Create("shared").ok());
  SessionManager other(*again.value());
  EXPECT_TRUE(other.Exists("shared").value());
}

// StoreOptions::save_relay as an embedder with worker processes would use it: a store whose
// saves (here those of FileService::Write) go through a relay into another store's
// ApplyRelayedSaves; everything else stays on its own connections. Bytes that are no save
// are refused.
TEST_P(PublicApiTest, SavesGoThroughTheRelayToTheStoreThatAppliesThem) {
  std::atomic<int> relayed{0};
  StoreOptions so;
  so.clock = [this] { return now_.load(); };
  so.save_relay = [&](std::string_view save) {
    ++relayed;
    std::vector<StatusOr<std::string>> answers = store_->ApplyRelayedSaves({save});
    return answers.front().ok() ? answers.front().value() : std::string();
  };
  StatusOr<std::unique_ptr<Store>> relaying = Store::Open(url_, so);
  ASSERT_TRUE(relaying.ok()) << relaying.status().ToString();
  SessionManager manager(*relaying.value());
  FileService files(manager);
  ASSERT_TRUE(manager.Create("relayed").ok());
  EXPECT_EQ(relayed.load(), 0);
  ASSERT_TRUE(files.Write("relayed", "/tmp/a.txt", "through the relay").ok());
  EXPECT_EQ(relayed.load(), 1);
  EXPECT_EQ(files_->Read("relayed", "/tmp/a.txt").value().content, "through the relay");
  std::vector<StatusOr<std::string>> junk = store_->ApplyRelayedSaves({"not a save", ""});
  ASSERT_EQ(junk.size(), 2u);
  EXPECT_TRUE(junk[0].status().IsInvalidArgument());
  EXPECT_TRUE(junk[1].status().IsInvalidArgument());
}

TEST_P(PublicApiTest, SessionLifecycle) {
  SessionManager& m = *manager_;
  StatusOr<SessionInfo> made = m.Create("s1", 30, {{"owner", "me"}});
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(made.value().expires_at, (1000 + 30) * kMicrosPerDay);
  EXPECT_EQ(made.value().metadata, nlohmann::json({{"owner", "me"}}));
  EXPECT_TRUE(m.Create("s1").status().IsAlreadyExists());
  EXPECT_TRUE(m.Create("s2", 0).status().IsInvalidArgument());
  EXPECT_TRUE(m.Create("s2", 1, nlohmann::json::array()).status().IsInvalidArgument());
  EXPECT_TRUE(m.Get("nope").status().IsNotFound());
  EXPECT_TRUE(m.GetOrCreate("s2").ok());
  EXPECT_EQ(m.GetOrCreate("s2").value().expires_at, (1000 + 180) * kMicrosPerDay);
  StatusOr<std::vector<SessionInfo>> list = m.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list.value().size(), 2u);
  EXPECT_EQ(list.value()[0].thread_id, "s1");

  now_ += 31 * kMicrosPerDay;
  EXPECT_TRUE(m.IsExpired(m.Get("s1").value()));
  EXPECT_TRUE(m.GetOrCreate("s1").status().IsFailedPrecondition());
  EXPECT_TRUE(m.Fork("s1", "f").status().IsFailedPrecondition());
  EXPECT_TRUE(files_->Read("s1", "/home/user/x").status().IsFailedPrecondition());
  StatusOr<SessionInfo> extended = m.Extend("s1", 10);
  ASSERT_TRUE(extended.ok());
  EXPECT_EQ(extended.value().expires_at, (1031 + 10) * kMicrosPerDay);
  EXPECT_FALSE(m.IsExpired(extended.value()));

  ASSERT_TRUE(files_->Write("s1", "/home/user/a.txt", "hello").ok());
  StatusOr<SessionInfo> fork = m.Fork("s1", "s1-fork", ForkOptions{7, nlohmann::json{{"fork", true}}});
  ASSERT_TRUE(fork.ok()) << fork.status().ToString();
  EXPECT_EQ(fork.value().file_count, 1);
  EXPECT_EQ(files_->Read("s1-fork", "/home/user/a.txt").value().content, "hello");
  ASSERT_TRUE(files_->Write("s1-fork", "/home/user/a.txt", "changed").ok());
  EXPECT_EQ(files_->Read("s1", "/home/user/a.txt").value().content, "hello");
  EXPECT_TRUE(m.Reset("s1").ok());
  EXPECT_EQ(files_->Read("s1", "/home/user/a.txt").value().content, "hello");  // files kept

  ASSERT_TRUE(m.Delete("s2").ok());
  EXPECT_TRUE(m.Delete("s2").IsNotFound());
  ASSERT_TRUE(m.Create("old", 1).ok());
  ASSERT_TRUE(files_->Write("old", "/tmp/x", std::string(100, 'x')).ok());
  now_ += 2 * kMicrosPerDay;
  StatusOr<CleanupStats> dry = m.Cleanup(/*dry_run=*/true);
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry.value().sessions_deleted, 1);
  EXPECT_EQ(dry.value().files_deleted, 1);
  EXPECT_TRUE(m.Exists("old").value());
  EXPECT_EQ(m.Cleanup(false).value().sessions_deleted, 1);
  EXPECT_FALSE(m.Exists("old").value());
}

TEST_P(PublicApiTest, FileOperations) {
  FileService& f = *files_;
  StatusOr<FileInfo> w = f.Write("s", "/home/user/notes.md", "# title\nTODO: one\nline\nTODO: two\n");
  ASSERT_TRUE(w.ok()) << w.status().ToString();  // creates the session
  EXPECT_EQ(w.value().content_type, "text/markdown");
  EXPECT_EQ(w.value().size, 33);
  EXPECT_EQ(f.Read("s", "/home/user/notes.md", 2, 5).value().content, "title");
  EXPECT_EQ(f.Read("s", "/home/user/notes.md", 2, 5).value().info.size, 33);
  EXPECT_TRUE(f.Read("s", "/home/user/nope").status().IsNotFound());
  EXPECT_TRUE(f.Read("s", "relative").status().IsInvalidArgument());
  EXPECT_EQ(f.Edit("s", "/home/user/notes.md", "TODO", "DONE", /*replace_all=*/true).value(), 2);
  EXPECT_TRUE(f.Edit("s", "/home/user/notes.md", "TODO", "x").status().IsNotFound());
  ASSERT_TRUE(f.Write("s", "/home/user/src/a.py", "def f():\n    return 1\n").ok());
  ASSERT_TRUE(f.Write("s", "/tmp/b.py", "import os\n").ok());
  EXPECT_EQ(f.List("s", "/home/user/").value().size(), 2u);
  StatusOr<std::vector<FileInfo>> py = f.Glob("s", "/**/*.py");
  ASSERT_TRUE(py.ok());
  ASSERT_EQ(py.value().size(), 2u);
  EXPECT_EQ(py.value()[0].path, "/home/user/src/a.py");
  GrepOptions g;
  g.path_glob = "/home/user/**";
  StatusOr<GrepResult> found = f.Grep("s", R"(^DONE: \w+)", g);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found.value().files.size(), 1u);
  ASSERT_EQ(found.value().files[0].lines.size(), 2u);
  EXPECT_EQ(found.value().files[0].lines[1].number, 4);
  EXPECT_EQ(found.value().files[0].lines[1].text, "DONE: two");
  g.mode = GrepMode::kCount;
  EXPECT_EQ(f.Grep("s", "DONE", g).value().files[0].count, 2);
  EXPECT_TRUE(f.Grep("s", "(a)\\1").status().IsInvalidArgument());
  // Quotas (5 files, 1000 bytes here) and the 20 MiB file limit.
  EXPECT_TRUE(f.Write("s", "/tmp/big", std::string(1000, 'b')).status().IsResourceExhausted());
  EXPECT_TRUE(f.Write("s", "/tmp/huge", std::string(kMaxFileBytes + 1, 'h')).status().IsResourceExhausted());
  ASSERT_TRUE(f.Delete("s", "/tmp/b.py").ok());
  EXPECT_TRUE(f.Delete("s", "/tmp/b.py").IsNotFound());
  EXPECT_EQ(manager_->Get("s").value().file_count, 2);
}

// A session's own quotas (lower than the manager's 5 files / 1000 bytes) hold for its file
// writes; they cannot raise the manager's; a fork keeps them.
TEST_P(PublicApiTest, PerSessionQuotas) {
  SessionQuotas q;
  q.max_files = 2;
  q.max_total_bytes = 300;
  q.max_file_bytes = 200;
  StatusOr<SessionInfo> made = manager_->Create("q", std::nullopt, nlohmann::json::object(), q);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(made.value().quotas, q);
  EXPECT_EQ(manager_->EffectiveQuotas(made.value()), q);
  SessionQuotas defaults = manager_->EffectiveQuotas(manager_->GetOrCreate("plain").value());
  EXPECT_EQ(defaults.max_files, 5);
  EXPECT_EQ(defaults.max_total_bytes, 1000);
  EXPECT_EQ(defaults.max_file_bytes, kMaxFileBytes);
  FileService& f = *files_;
  StatusOr<FileInfo> w = f.Write("q", "/tmp/big", std::string(201, 'b'));
  EXPECT_TRUE(w.status().IsResourceExhausted()) << w.status().ToString();
  ASSERT_TRUE(f.Write("q", "/tmp/a", std::string(200, 'a')).ok());
  EXPECT_TRUE(f.Write("q", "/tmp/b", std::string(101, 'b')).status().IsResourceExhausted());  // 301 bytes
  ASSERT_TRUE(f.Write("q", "/tmp/b", std::string(100, 'b')).ok());
  EXPECT_TRUE(f.Write("q", "/tmp/c", "c").status().IsResourceExhausted());  // a third file
  EXPECT_TRUE(f.Write("plain", "/tmp/c", std::string(500, 'c')).ok());  // others keep the defaults
  EXPECT_EQ(f.Read("q", "/tmp/a").value().content, std::string(200, 'a'));
  // Only lower: above the manager's own is refused, and nothing is made.
  SessionQuotas high;
  high.max_files = 6;
  EXPECT_TRUE(manager_->Create("high", std::nullopt, nlohmann::json::object(), high).status().IsInvalidArgument());
  EXPECT_FALSE(manager_->Exists("high").value());
  ASSERT_TRUE(manager_->Fork("q", "q2").ok());
  EXPECT_EQ(manager_->Get("q2").value().quotas, q);
  EXPECT_TRUE(f.Write("q2", "/tmp/c", "c").status().IsResourceExhausted());
}

TEST_P(PublicApiTest, PeriodicCleanupRunsRoundsAndStops) {
  ASSERT_TRUE(manager_->Create("gone", 1).ok());
  now_ += 2 * kMicrosPerDay;
  std::mutex mu;
  int64_t deleted = 0;
  PeriodicCleanup job(*manager_, std::chrono::milliseconds(10), /*dry_run=*/false,
                      [&](uint64_t, const StatusOr<CleanupStats>& r) {
                        std::lock_guard<std::mutex> lock(mu);
                        if (r.ok()) deleted += r.value().sessions_deleted;
                      });
  for (int i = 0; i < 2000 && job.rounds_done() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  job.Stop();
  EXPECT_GE(job.rounds_done(), 3u);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(deleted, 1);
  EXPECT_FALSE(manager_->Exists("gone").value());
}

TEST(PublicText, TimestampsBytesUtf8AndBase64) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_TRUE(IsValidUtf8("héllo ✓"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));  // overlong '/'
  EXPECT_EQ(Base64Encode(std::string("\0\xff", 2)), "AP8=");
  EXPECT_EQ(Base64Decode("AP8=").value(), std::string("\0\xff", 2));
  EXPECT_FALSE(Base64Decode("AP9=").has_value());  // non-zero padding bits
}

}  // namespace
}  // namespace brig
