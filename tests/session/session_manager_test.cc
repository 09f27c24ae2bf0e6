// SessionManager on every backend: expiry, extend, quotas, reset, cleanup. Each TYPED_TEST
// runs once on SQLite and once on a real PostgreSQL (tests/store/pg_harness.h), with one
// fake clock shared by the manager and the store.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "../store/backends.h"
#include "session/session_manager.h"
#include "session/state_format.h"
#include "store/store.h"

namespace brig::session {
namespace {

using store::testing::BackendNames;
using store::testing::PostgresBackend;
using store::testing::SqliteBackend;

constexpr int64_t kDay = kMicrosPerDay;

template <typename Backend>
class SessionManagerTest : public store::testing::ClockedBackendTest<Backend> {
 protected:
  void SetUp() override {
    store::testing::ClockedBackendTest<Backend>::SetUp();
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
    options_.clock = this->Clock();
    options_.max_files_per_session = 3;
    options_.max_bytes_per_session = 100;
    manager_ = std::make_unique<SessionManager>(*this->store_, options_);
  }

  void Put(const std::string& id, const std::string& path, const std::string& content) {
    ASSERT_TRUE(this->store_->PutFile(id, {path, content, ""}).ok()) << path;
  }

  SessionOptions options_;
  std::unique_ptr<SessionManager> manager_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(SessionManagerTest, Backends, BackendNames);

TYPED_TEST(SessionManagerTest, GetOrCreateCreatesWithDefaultExpiryThenReturnsTheSame) {
  auto& m = *this->manager_;
  EXPECT_FALSE(m.Exists("s1").value());
  StatusOr<store::SessionInfo> a = m.GetOrCreate("s1");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a.value().thread_id, "s1");
  EXPECT_EQ(a.value().created_at, 1000 * kDay);
  EXPECT_EQ(a.value().expires_at, (1000 + 180) * kDay);
  EXPECT_TRUE(m.Exists("s1").value());

  this->now_ += 5 * kDay;
  StatusOr<store::SessionInfo> b = m.GetOrCreate("s1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.value().created_at, 1000 * kDay);  // the same session, not a new one
  EXPECT_EQ(b.value().expires_at, (1000 + 180) * kDay);
  EXPECT_EQ(b.value().last_accessed, 1005 * kDay);
  EXPECT_EQ(m.Get("s1").value().last_accessed, 1005 * kDay);
}

TYPED_TEST(SessionManagerTest, DefaultExpiryIsConfigurable) {
  this->options_.default_expiry_days = 7;
  SessionManager m(*this->store_, this->options_);
  ASSERT_TRUE(m.GetOrCreate("short").ok());
  EXPECT_EQ(m.Get("short").value().expires_at, (1000 + 7) * kDay);
}

TYPED_TEST(SessionManagerTest, ConcurrentGetOrCreateMakesOneSession) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (this->manager_->GetOrCreate("race").ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(this->manager_->List().value().size(), 1u);
}

TYPED_TEST(SessionManagerTest, CreateWithCustomExpiryAndMetadata) {
  auto& m = *this->manager_;
  StatusOr<store::SessionInfo> s = m.Create("c", 3, {{"owner", "ada"}, {"n", 2}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s.value().expires_at, 1003 * kDay);
  EXPECT_EQ(s.value().metadata["owner"], "ada");
  EXPECT_EQ(m.Get("c").value().metadata["n"], 2);

  EXPECT_TRUE(m.Create("c").status().IsAlreadyExists());
  EXPECT_TRUE(m.Create("d", 0).status().IsInvalidArgument());
  EXPECT_TRUE(m.Create("d", -1).status().IsInvalidArgument());
  EXPECT_TRUE(m.Create("d", kMaxExpiryDays + 1).status().IsInvalidArgument());
  EXPECT_TRUE(m.Create("d", 1, nlohmann::json::array()).status().IsInvalidArgument());
  EXPECT_FALSE(m.Exists("d").value());  // nothing made by the failed calls
}

TYPED_TEST(SessionManagerTest, BadThreadIdsAreInvalidArgumentEverywhere) {
  auto& m = *this->manager_;
  for (const std::string& bad : {std::string(), std::string(256, 'x'), std::string("a\nb"), std::string("a\0b", 3),
                                 std::string("\xff\xfe")}) {
    EXPECT_TRUE(m.GetOrCreate(bad).status().IsInvalidArgument());
    EXPECT_TRUE(m.Create(bad).status().IsInvalidArgument());
    EXPECT_TRUE(m.Get(bad).status().IsInvalidArgument());
    EXPECT_TRUE(m.Exists(bad).status().IsInvalidArgument());
    EXPECT_TRUE(m.Extend(bad, 1).status().IsInvalidArgument());
    EXPECT_TRUE(m.Delete(bad).IsInvalidArgument());
    EXPECT_TRUE(m.Reset(bad).IsInvalidArgument());
  }
  EXPECT_TRUE(m.List().value().empty());
  // The longest valid id works.
  EXPECT_TRUE(m.GetOrCreate(std::string(255, 'y')).ok());
}

TYPED_TEST(SessionManagerTest, MissingSessionIsNotFound) {
  auto& m = *this->manager_;
  EXPECT_TRUE(m.Get("nope").status().IsNotFound());
  EXPECT_TRUE(m.Use("nope").status().IsNotFound());
  EXPECT_TRUE(m.Extend("nope", 1).status().IsNotFound());
  EXPECT_TRUE(m.Delete("nope").IsNotFound());
  EXPECT_TRUE(m.Reset("nope").IsNotFound());
  EXPECT_FALSE(m.Exists("nope").value());
}

TYPED_TEST(SessionManagerTest, ExpiredSessionIsAClearErrorUntilExtended) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.Create("old", 2).ok());
  this->Put("old", "/tmp/keep.txt", "kept");
  this->now_ += 2 * kDay;  // expires_at == now: expired
  const Status s = m.GetOrCreate("old").status();
  ASSERT_TRUE(s.IsFailedPrecondition()) << s.ToString();
  EXPECT_NE(s.message().find("expired at " + FormatTimestamp(1002 * kDay)), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("brig sessions extend old"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("brig cleanup"), std::string::npos) << s.message();
  EXPECT_TRUE(m.Use("old").status().IsFailedPrecondition());
  EXPECT_TRUE(m.Reset("old").IsFailedPrecondition());
  // Still visible to inspection.
  StatusOr<store::SessionInfo> info = m.Get("old");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(m.IsExpired(info.value()));

  // Extending an expired session counts from now (not from when it expired), and it is
  // usable again with its files.
  this->now_ += 5 * kDay;
  StatusOr<store::SessionInfo> ext = m.Extend("old", 10);
  ASSERT_TRUE(ext.ok()) << ext.status().ToString();
  EXPECT_EQ(ext.value().expires_at, this->now_.load() + 10 * kDay);
  EXPECT_TRUE(m.GetOrCreate("old").ok());
  EXPECT_EQ(this->store_->GetFile("old", "/tmp/keep.txt").value().content, "kept");
}

TYPED_TEST(SessionManagerTest, ExtendLiveSessionAddsToWhatIsLeft) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.Create("live", 30).ok());
  this->now_ += 10 * kDay;
  StatusOr<store::SessionInfo> ext = m.Extend("live", 5);
  ASSERT_TRUE(ext.ok());
  EXPECT_EQ(ext.value().expires_at, 1035 * kDay);
  EXPECT_EQ(m.Get("live").value().expires_at, 1035 * kDay);
  EXPECT_TRUE(m.Extend("live", 0).status().IsInvalidArgument());
  EXPECT_TRUE(m.Extend("live", kMaxExpiryDays + 1).status().IsInvalidArgument());
  EXPECT_EQ(m.Get("live").value().expires_at, 1035 * kDay);  // failed calls change nothing
}

// Two extends by 30 days add 60, however they interleave (each is one store statement).
TYPED_TEST(SessionManagerTest, ConcurrentExtendsAddUp) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.Create("ext", 30).ok());
  constexpr int kThreads = 8, kEach = 10;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < kEach; ++k) ok += m.Extend("ext", 30).ok();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ(m.Get("ext").value().expires_at, (1000 + 30 + kThreads * kEach * 30) * kDay);
}

TYPED_TEST(SessionManagerTest, GetReportsFileCountAndBytes) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.GetOrCreate("f").ok());
  this->Put("f", "/tmp/a", "12345");
  this->Put("f", "/home/user/b", "xy");
  StatusOr<store::SessionInfo> s = m.Get("f");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value().file_count, 2);
  EXPECT_EQ(s.value().total_bytes, 7);
  StatusOr<std::vector<store::SessionInfo>> list = m.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list.value().size(), 1u);
  EXPECT_EQ(list.value()[0].total_bytes, 7);
}

TYPED_TEST(SessionManagerTest, DeleteRemovesStateAndFiles) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.GetOrCreate("del").ok());
  this->Put("del", "/tmp/x", "data");
  ASSERT_TRUE(this->store_->SaveExecution("del", 0, store::StateWrite{"snap", "fmt", "build"}, {}, {}).ok());
  ASSERT_TRUE(m.Delete("del").ok());
  EXPECT_FALSE(m.Exists("del").value());
  EXPECT_TRUE(this->store_->GetFile("del", "/tmp/x").status().IsNotFound());
  // A new session of the same name starts empty.
  ASSERT_TRUE(m.GetOrCreate("del").ok());
  EXPECT_FALSE(this->store_->GetState("del").value().has_value());
  EXPECT_EQ(m.Get("del").value().file_count, 0);
}

TYPED_TEST(SessionManagerTest, ListIsOrderedAndIncludesExpired) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.Create("b", 1).ok());
  ASSERT_TRUE(m.Create("a", 100).ok());
  this->now_ += 2 * kDay;
  StatusOr<std::vector<store::SessionInfo>> list = m.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list.value().size(), 2u);
  EXPECT_EQ(list.value()[0].thread_id, "a");
  EXPECT_FALSE(m.IsExpired(list.value()[0]));
  EXPECT_EQ(list.value()[1].thread_id, "b");
  EXPECT_TRUE(m.IsExpired(list.value()[1]));
}

TYPED_TEST(SessionManagerTest, ResetClearsStateKeepsFilesAndBumpsVersion) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.GetOrCreate("r").ok());
  StatusOr<int64_t> v = this->store_->SaveExecution("r", 0, store::StateWrite{"snapshot-bytes", "pages", "b1"},
                                                    {{"/home/user/data.csv", "a,b\n", ""}}, {});
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(m.Reset("r").ok());
  std::optional<store::SessionState> st = this->store_->GetState("r").value();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->cleared());
  EXPECT_EQ(st->version, v.value() + 1);  // a live holder notices
  EXPECT_EQ(this->store_->GetFile("r", "/home/user/data.csv").value().content, "a,b\n");
  // Reset of a session never saved also works (version 0 -> 1).
  ASSERT_TRUE(m.GetOrCreate("fresh").ok());
  ASSERT_TRUE(m.Reset("fresh").ok());
  EXPECT_EQ(this->store_->GetState("fresh").value()->version, 1);
}

// The files' modes, attributes and named pipes are not the interpreter's: a reset keeps them
// in a "fresh" state (no pages, no portable snapshot, no fallback), and a reset of that keeps
// them again.
TYPED_TEST(SessionManagerTest, ResetKeepsTheFilesNodeExtrasOnly) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.GetOrCreate("n").ok());
  StoredState full;
  full.pages = "pages";
  full.portable = "portable";
  full.not_portable = {{"f", "a function"}};
  full.nodes = {{"/home/user/a", false, 0600, {{"user.k", "v"}}}, {"/tmp/p", true, 0640, {}}};
  store::StateWrite w{EncodeState(full), std::string(kStateFormat), "b1", EncodeState(full)};
  ASSERT_TRUE(this->store_->SaveExecution("n", 0, w, {{"/home/user/a", "x", ""}}, {}).ok());
  for (int round = 0; round < 2; round++) {
    ASSERT_TRUE(m.Reset("n").ok());
    std::optional<store::SessionState> st = this->store_->GetState("n").value();
    ASSERT_TRUE(st.has_value());
    EXPECT_FALSE(st->cleared());
    EXPECT_EQ(st->format, kStateFormat);
    EXPECT_TRUE(st->fallback.empty());
    std::optional<StoredState> kept = DecodeState(st->snapshot);
    ASSERT_TRUE(kept);
    EXPECT_TRUE(kept->fresh);
    EXPECT_TRUE(kept->pages.empty());
    EXPECT_TRUE(kept->portable.empty());
    EXPECT_TRUE(kept->not_portable.empty());
    ASSERT_EQ(kept->nodes.size(), 2u);
    EXPECT_EQ(kept->nodes[0].xattrs.at("user.k"), "v");
    EXPECT_TRUE(kept->nodes[1].named_pipe);
  }
  // Without attributes to keep, or with a state this brig cannot read: a cleared state.
  StoredState bare;
  bare.pages = "pages";
  int64_t v = this->store_->GetState("n").value()->version;
  ASSERT_TRUE(this->store_->SaveExecution("n", v, store::StateWrite{EncodeState(bare), std::string(kStateFormat), "b1"}, {}, {}).ok());
  ASSERT_TRUE(m.Reset("n").ok());
  EXPECT_TRUE(this->store_->GetState("n").value()->cleared());
  v = this->store_->GetState("n").value()->version;
  ASSERT_TRUE(this->store_->SaveExecution("n", v, store::StateWrite{"junk", "other/1", "b1"}, {}, {}).ok());
  ASSERT_TRUE(m.Reset("n").ok());
  EXPECT_TRUE(this->store_->GetState("n").value()->cleared());
}

TYPED_TEST(SessionManagerTest, ResetWaitsForTheSessionLockThenTimesOut) {
  this->options_.lock_timeout = std::chrono::milliseconds(200);
  SessionManager m(*this->store_, this->options_);
  ASSERT_TRUE(m.GetOrCreate("busy").ok());
  StatusOr<std::unique_ptr<store::SessionLock>> held = this->store_->LockSession("busy");
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(m.Reset("busy").IsDeadlineExceeded());
  EXPECT_FALSE(this->store_->GetState("busy").value().has_value());  // nothing saved
  held.value().reset();
  EXPECT_TRUE(m.Reset("busy").ok());
}

TYPED_TEST(SessionManagerTest, CleanupDryRunThenReal) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.Create("gone1", 1).ok());
  ASSERT_TRUE(m.Create("gone2", 2).ok());
  ASSERT_TRUE(m.Create("stays", 10).ok());
  this->Put("gone1", "/tmp/a", std::string(10, 'a'));
  this->Put("gone1", "/tmp/b", std::string(20, 'b'));
  this->Put("gone2", "/tmp/c", std::string(5, 'c'));
  this->Put("stays", "/tmp/d", std::string(7, 'd'));
  ASSERT_TRUE(this->store_->SaveExecution("gone2", 0, store::StateWrite{"12345678", "f", "b"}, {}, {}).ok());
  this->now_ += 3 * kDay;

  StatusOr<store::CleanupStats> dry = m.Cleanup(true);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry.value().sessions_deleted, 2);
  EXPECT_EQ(dry.value().files_deleted, 3);
  EXPECT_EQ(dry.value().bytes_freed, 10 + 20 + 5 + 8);
  EXPECT_EQ(m.List().value().size(), 3u);  // a dry run deletes nothing
  EXPECT_TRUE(this->store_->GetFile("gone1", "/tmp/a").ok());

  StatusOr<store::CleanupStats> real = m.Cleanup(false);
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(real.value().sessions_deleted, dry.value().sessions_deleted);
  EXPECT_EQ(real.value().files_deleted, dry.value().files_deleted);
  EXPECT_EQ(real.value().bytes_freed, dry.value().bytes_freed);
  StatusOr<std::vector<store::SessionInfo>> left = m.List();
  ASSERT_EQ(left.value().size(), 1u);
  EXPECT_EQ(left.value()[0].thread_id, "stays");
  EXPECT_EQ(this->store_->GetFile("stays", "/tmp/d").value().content, std::string(7, 'd'));

  StatusOr<store::CleanupStats> again = m.Cleanup(false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value().sessions_deleted, 0);
  EXPECT_EQ(again.value().files_deleted, 0);
  EXPECT_EQ(again.value().bytes_freed, 0);
  // A cleaned-up session can be started afresh.
  EXPECT_TRUE(m.GetOrCreate("gone1").ok());
  EXPECT_EQ(m.Get("gone1").value().file_count, 0);
}

TYPED_TEST(SessionManagerTest, CleanupRemovesOrphanedFiles) {
  ASSERT_TRUE(TypeParam::InsertRawFile(this->url_, "ghost", "/tmp/orphan", 11, /*orphan=*/true).ok());
  StatusOr<store::CleanupStats> dry = this->manager_->Cleanup(true);
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry.value().sessions_deleted, 0);
  EXPECT_EQ(dry.value().files_deleted, 1);
  EXPECT_EQ(dry.value().bytes_freed, 11);
  ASSERT_TRUE(this->manager_->Cleanup(false).ok());
  EXPECT_EQ(this->manager_->Cleanup(true).value().files_deleted, 0);
}

TYPED_TEST(SessionManagerTest, CheckQuotaNamesTheQuotaAndTheNumbers) {
  const SessionManager& m = *this->manager_;
  EXPECT_TRUE(m.CheckQuota("q", {}, {3, 100}).ok());  // at the limits is fine
  Status count = m.CheckQuota("q", {}, {4, 10});
  ASSERT_TRUE(count.IsResourceExhausted());
  EXPECT_NE(count.message().find("4 files"), std::string::npos) << count.message();
  EXPECT_NE(count.message().find("quota of 3 files"), std::string::npos) << count.message();
  EXPECT_NE(count.message().find("'q'"), std::string::npos) << count.message();
  Status bytes = m.CheckQuota("q", {}, {1, 101});
  ASSERT_TRUE(bytes.IsResourceExhausted());
  EXPECT_NE(bytes.message().find("101 bytes"), std::string::npos) << bytes.message();
  EXPECT_NE(bytes.message().find("quota of 100 bytes"), std::string::npos) << bytes.message();
  // Only growth is refused when the usage before is known.
  EXPECT_TRUE(m.CheckQuota("q", {}, {5, 500}, {5, 400}).ok());
  EXPECT_TRUE(m.CheckQuota("q", {}, {5, 500}, {4, 500}).ok());
  EXPECT_TRUE(m.CheckQuota("q", {}, {5, 500}, {6, 400}).IsResourceExhausted());
  EXPECT_TRUE(m.CheckQuota("q", {}, {2, 500}, {2, 501}).IsResourceExhausted());
  // The defaults are the issue's: 1000 files, 200 MiB.
  SessionOptions defaults;
  EXPECT_EQ(defaults.max_files_per_session, 1000);
  EXPECT_EQ(defaults.max_bytes_per_session, 200 << 20);
  EXPECT_EQ(defaults.default_expiry_days, 180);
  // A session's own quotas lower the manager's (3 files, 100 bytes here), never raise them.
  SessionQuotas own;
  own.max_files = 2;
  own.max_total_bytes = 50;
  Status lowered = m.CheckQuota("q", own, {3, 10});
  ASSERT_TRUE(lowered.IsResourceExhausted());
  EXPECT_NE(lowered.message().find("quota of 2 files"), std::string::npos) << lowered.message();
  EXPECT_TRUE(m.CheckQuota("q", own, {1, 51}).IsResourceExhausted());
  EXPECT_TRUE(m.CheckQuota("q", own, {2, 50}).ok());
  SessionQuotas high;
  high.max_files = 10;
  EXPECT_TRUE(m.CheckQuota("q", high, {4, 10}).IsResourceExhausted());
  own.max_file_bytes = 7;
  EXPECT_TRUE(m.CheckFileSize("q", own, "/tmp/f", 7).ok());
  EXPECT_TRUE(m.CheckFileSize("q", own, "/tmp/f", 8).IsResourceExhausted());
  EXPECT_TRUE(m.CheckFileSize("q", {}, "/tmp/f", kMaxFileBytes).ok());
}

// ---- Fork (host side: what is copied, and every refusal; with a real interpreter:
// tests/guest/session_snapshot_test.cc).

// A state in Sessions' format, as an execution would have saved it.
store::StateWrite SavedState(const std::string& pages, const std::string& portable) {
  StoredState st;
  st.pages = pages;
  st.portable = portable;
  st.not_portable = {{"gen", "a generator"}};
  return store::StateWrite{EncodeState(st), std::string(kStateFormat), "build-1"};
}

TYPED_TEST(SessionManagerTest, ForkCopiesStateAndFilesAndMarksTheForkToReseed) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.Create("src", 30, {{"owner", "me"}}).ok());
  ASSERT_TRUE(this->store_->SaveExecution("src", 0, SavedState("PAGES", "PORTABLE"),
                                          {{"/home/user/a.txt", "aa", ""}, {"/tmp/d", "", std::string(store::kDirectoryType)}},
                                          {})
                  .ok());
  this->now_ += 2 * kDay;
  StatusOr<store::SessionInfo> dst = m.Fork("src", "dst");
  ASSERT_TRUE(dst.ok()) << dst.status().ToString();
  EXPECT_EQ(dst.value().thread_id, "dst");
  EXPECT_EQ(dst.value().created_at, 1002 * kDay);
  EXPECT_EQ(dst.value().expires_at, (1002 + 180) * kDay);  // a new expiry: the default
  EXPECT_EQ(dst.value().metadata, nlohmann::json({{"owner", "me"}}));
  EXPECT_EQ(dst.value().file_count, 1);
  EXPECT_EQ(this->store_->GetFile("dst", "/home/user/a.txt").value().content, "aa");
  EXPECT_TRUE(this->store_->GetFile("dst", "/tmp/d").value().info.is_directory());
  std::optional<store::SessionState> st = this->store_->GetState("dst").value();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->version, 1);
  EXPECT_EQ(st->format, kStateFormat);
  EXPECT_EQ(st->guest_build_id, "build-1");
  std::optional<StoredState> decoded = DecodeState(st->snapshot);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->pages, "PAGES");
  EXPECT_EQ(decoded->portable, "PORTABLE");
  EXPECT_EQ(decoded->not_portable.at("gen"), "a generator");
  EXPECT_TRUE(decoded->reseed);  // the fork draws its own random numbers
  // The source is unchanged (and was used: last_accessed).
  std::optional<StoredState> source = DecodeState(this->store_->GetState("src").value()->snapshot);
  ASSERT_TRUE(source.has_value());
  EXPECT_FALSE(source->reseed);
  EXPECT_EQ(this->store_->GetState("src").value()->version, 1);
  EXPECT_EQ(m.Get("src").value().last_accessed, 1002 * kDay);
  EXPECT_EQ(m.Get("src").value().expires_at, (1000 + 30) * kDay);
}

TYPED_TEST(SessionManagerTest, ForkWithExpiryAndMetadataAndWithoutState) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.Create("src", 30, {{"owner", "me"}}).ok());
  ForkOptions o;
  o.expiry_days = 3;
  o.metadata = nlohmann::json{{"branch", 2}};
  StatusOr<store::SessionInfo> dst = m.Fork("src", "dst", o);
  ASSERT_TRUE(dst.ok()) << dst.status().ToString();
  EXPECT_EQ(dst.value().expires_at, (1000 + 3) * kDay);
  EXPECT_EQ(dst.value().metadata, nlohmann::json({{"branch", 2}}));
  EXPECT_FALSE(this->store_->GetState("dst").value().has_value());  // src never ran
  // A reset source forks to a fresh interpreter too.
  ASSERT_TRUE(this->store_->SaveExecution("src", 0, SavedState("P", "Q"), {}, {}).ok());
  ASSERT_TRUE(m.Reset("src").ok());
  ASSERT_TRUE(m.Fork("src", "after-reset").ok());
  EXPECT_FALSE(this->store_->GetState("after-reset").value().has_value());
  // A state in a format this brig does not write is copied as it is.
  ASSERT_TRUE(m.Create("odd").ok());
  ASSERT_TRUE(this->store_->SaveExecution("odd", 0, store::StateWrite{"opaque", "future/9", "b"}, {}, {}).ok());
  ASSERT_TRUE(m.Fork("odd", "odd-fork").ok());
  EXPECT_EQ(this->store_->GetState("odd-fork").value()->snapshot, "opaque");
  EXPECT_EQ(this->store_->GetState("odd-fork").value()->format, "future/9");
}

TYPED_TEST(SessionManagerTest, ForkRefusalsLeaveNoFork) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.Create("src", 30).ok());
  ASSERT_TRUE(m.Create("taken", 30, {{"mine", true}}).ok());
  ASSERT_TRUE(this->store_->SaveExecution("src", 0, SavedState("P", "Q"), {{"/home/user/a", "a", ""}}, {}).ok());
  EXPECT_TRUE(m.Fork("missing", "dst").status().IsNotFound());
  Status taken = m.Fork("src", "taken").status();
  EXPECT_TRUE(taken.IsAlreadyExists()) << taken.ToString();
  EXPECT_EQ(m.Get("taken").value().metadata, nlohmann::json({{"mine", true}}));
  EXPECT_EQ(m.Get("taken").value().file_count, 0);
  EXPECT_TRUE(m.Fork("src", "src").status().IsAlreadyExists());
  EXPECT_TRUE(m.Fork("", "dst").status().IsInvalidArgument());
  EXPECT_TRUE(m.Fork("src", "bad\nid").status().IsInvalidArgument());
  ForkOptions days;
  days.expiry_days = 0;
  EXPECT_TRUE(m.Fork("src", "dst", days).status().IsInvalidArgument());
  days.expiry_days = kMaxExpiryDays + 1;
  EXPECT_TRUE(m.Fork("src", "dst", days).status().IsInvalidArgument());
  ForkOptions meta;
  meta.metadata = nlohmann::json::array();
  EXPECT_TRUE(m.Fork("src", "dst", meta).status().IsInvalidArgument());
  EXPECT_FALSE(m.Exists("dst").value());
  // Over dst's quotas (3 files, 100 bytes here): ResourceExhausted, naming the source.
  ASSERT_TRUE(this->store_->PutFile("src", {"/home/user/big", std::string(200, 'b'), ""}).ok());
  Status quota = m.Fork("src", "dst").status();
  ASSERT_TRUE(quota.IsResourceExhausted()) << quota.ToString();
  EXPECT_NE(quota.message().find("cannot fork 'src'"), std::string::npos) << quota.message();
  EXPECT_FALSE(m.Exists("dst").value());
  // An expired source: FailedPrecondition until extended.
  this->now_ += 31 * kDay;
  Status expired = m.Fork("taken", "dst").status();
  EXPECT_TRUE(expired.IsFailedPrecondition()) << expired.ToString();
  EXPECT_NE(expired.message().find("expired"), std::string::npos);
  EXPECT_FALSE(m.Exists("dst").value());
  ASSERT_TRUE(m.Extend("taken", 5).ok());
  EXPECT_TRUE(m.Fork("taken", "dst").ok());
}

TYPED_TEST(SessionManagerTest, ForkWaitsForTheSourcesLockThenTimesOut) {
  this->options_.lock_timeout = std::chrono::milliseconds(200);
  SessionManager m(*this->store_, this->options_);
  ASSERT_TRUE(m.Create("busy").ok());
  StatusOr<std::unique_ptr<store::SessionLock>> held = this->store_->LockSession("busy");
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(m.Fork("busy", "dst").status().IsDeadlineExceeded());
  EXPECT_FALSE(m.Exists("dst").value());
  held.value().reset();
  EXPECT_TRUE(m.Fork("busy", "dst").ok());
}

// The stored state's "nodes" (file modes, extended attributes, named pipes) round-trip, and a
// stored entry that EncodeState could not have written is dropped, not trusted.
// A reset's state says so; any "fresh" but a boolean true is not one (the bytes are untrusted).
TEST(StateFormatTest, FreshRoundTripsAndOnlyATrueBooleanIsFresh) {
  std::optional<StoredState> back = DecodeState(EncodeState(FreshState({{"/tmp/p", true, 0640, {}}})));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->fresh);
  EXPECT_TRUE(back->pages.empty());
  ASSERT_EQ(back->nodes.size(), 1u);
  StoredState plain;
  plain.portable = "p";
  EXPECT_FALSE(DecodeState(EncodeState(plain))->fresh);
  std::string bytes = EncodeState(plain);
  bytes.resize(bytes.size() - std::string_view(R"({"not_portable":{}})").size());
  for (const char* tail : {R"({"not_portable":{},"fresh":"yes"})", R"({"not_portable":{},"fresh":1})",
                           R"({"not_portable":{},"fresh":false})", R"({"not_portable":{},"fresh":null})"}) {
    back = DecodeState(bytes + tail);
    ASSERT_TRUE(back) << tail;
    EXPECT_FALSE(back->fresh) << tail;
  }
}

TEST(StateFormatTest, NodesRoundTripAndMalformedOnesAreDropped) {
  StoredState st;
  st.portable = "p";
  st.nodes = {{"/home/user/a", false, 0600, {{"user.k", std::string("v\0\xff", 3)}}}, {"/tmp/p", true, 0640, {}}};
  std::optional<StoredState> back = DecodeState(EncodeState(st));
  ASSERT_TRUE(back);
  ASSERT_EQ(back->nodes.size(), 2u);
  EXPECT_EQ(back->nodes[0].mode, 0600);
  EXPECT_EQ(back->nodes[0].xattrs.at("user.k"), std::string("v\0\xff", 3));
  EXPECT_TRUE(back->nodes[1].named_pipe);
  // The JSON tail with one good entry among bad ones.
  StoredState empty;
  empty.portable = "p";
  std::string bytes = EncodeState(empty);
  bytes.resize(bytes.size() - std::string_view(R"({"not_portable":{}})").size());
  bytes += R"({"not_portable":{},"nodes":[)"
           R"({"path":"/tmp/ok","mode":420},)"
           R"({"path":"/tmp/m","mode":4096},)"
           R"({"path":"/tmp/n","mode":-1},)"
           R"({"path":7,"mode":420},)"
           R"({"path":"/tmp/x","mode":420,"xattrs":[["!!","AA=="]]},)"
           R"({"path":"/tmp/y","mode":420,"named_pipe":"yes"},)"
           R"({"path":"/tmp/z","mode":420,"other":1},)"
           R"("not an object"]})";
  back = DecodeState(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->portable, "p");
  ASSERT_EQ(back->nodes.size(), 1u);
  EXPECT_EQ(back->nodes[0].path, "/tmp/ok");
  EXPECT_EQ(back->nodes[0].mode, 0644);
}

TEST(FormatTest, TimestampsAndBytes) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTimestamp(int64_t{1'700'000'000} * 1'000'000 + 999'999), "2023-11-14T22:13:20Z");
  EXPECT_EQ(FormatTimestamp(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(int64_t{200} << 20), "200.0 MiB");
}

}  // namespace
}  // namespace brig::session
