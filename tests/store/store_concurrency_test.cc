// Many writers at once through one Store, on every backend: what the group commit
// (store.h, "Group commit") must keep. Each save is whole and durable once acknowledged, and
// one that fails (a version conflict, a missing session, a constraint hit half-way through)
// changes nothing and fails no other save, whether or not they shared a transaction.
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

constexpr int64_t kFarFuture = int64_t{1} << 60;

template <typename Backend>
class StoreConcurrency : public testing::BackendTest<Backend> {
 protected:
  void SetUp() override {
    testing::BackendTest<Backend>::SetUp();
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
    StoreOptions options;
    options.pool_size = 8;
    StatusOr<std::unique_ptr<Store>> s = OpenStore(this->url_, options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s.value());
  }
  std::unique_ptr<Store> store_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(StoreConcurrency, Backends, BackendNames);

std::string Tag(int session, int64_t n) { return "s" + std::to_string(session) + "/n" + std::to_string(n); }

TYPED_TEST(StoreConcurrency, ManySessionsSavingAtOnceAreAllKeptWhole) {
  constexpr int kSessions = 16, kSaves = 24;  // even: the last save deletes /home/user/odd
  Store& s = *this->store_;
  for (int i = 0; i < kSessions; ++i) ASSERT_TRUE(s.CreateSession("c" + std::to_string(i), kFarFuture, {}).ok());
  const WriteStats before = s.GetWriteStats();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kSessions);
  for (int i = 0; i < kSessions; ++i) {
    threads.emplace_back([&, i] {
      const std::string tid = "c" + std::to_string(i);
      for (int64_t n = 1; n <= kSaves; ++n) {
        // A file that changes every time, one that comes and goes, and the state.
        std::vector<FileWrite> files = {{"/home/user/f", Tag(i, n), ""}};
        std::vector<std::string> deleted;
        if (n % 2 == 1) {
          files.push_back({"/home/user/odd", Tag(i, n), ""});
        } else {
          deleted.push_back("/home/user/odd");
        }
        StatusOr<int64_t> v = s.SaveExecution(tid, n - 1, StateWrite{Tag(i, n), "f", "b"}, files, deleted);
        if (!v.ok() || v.value() != n) {
          errors[i] = "save " + std::to_string(n) + ": " + v.status().ToString();
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kSessions; ++i) EXPECT_EQ(errors[i], "") << "session " << i;
  const WriteStats after = s.GetWriteStats();
  EXPECT_EQ(after.writes - before.writes, kSessions * kSaves);
  EXPECT_LE(after.transactions - before.transactions, kSessions * kSaves);
  // As another process sees it.
  StatusOr<std::unique_ptr<Store>> other = OpenStore(this->url_);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  for (int i = 0; i < kSessions; ++i) {
    const std::string tid = "c" + std::to_string(i);
    StatusOr<std::optional<SessionState>> st = other.value()->GetState(tid);
    ASSERT_TRUE(st.ok() && st.value()) << tid;
    EXPECT_EQ(st.value()->version, kSaves) << tid;
    EXPECT_EQ(st.value()->snapshot, Tag(i, kSaves)) << tid;
    EXPECT_EQ(other.value()->GetFile(tid, "/home/user/f").value().content, Tag(i, kSaves)) << tid;
    EXPECT_TRUE(other.value()->GetFile(tid, "/home/user/odd").status().IsNotFound()) << tid;
    EXPECT_EQ(other.value()->GetFileUsage(tid).value().file_count, 1) << tid;
  }
}

TYPED_TEST(StoreConcurrency, FailingSavesAmongConcurrentOnesChangeNothingAndFailNoOther) {
  constexpr int kSessions = 10, kRounds = 10;
  Store& s = *this->store_;
  // A file insert that fails after the save wrote its state and an earlier file.
  ASSERT_TRUE(TypeParam::ExecSql(this->url_, TypeParam::PoisonFileSql("/tmp/poison")).ok());
  for (int i = 0; i < kSessions; ++i) ASSERT_TRUE(s.CreateSession("c" + std::to_string(i), kFarFuture, {}).ok());
  std::barrier sync(kSessions);
  std::vector<std::string> errors(kSessions);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSessions; ++i) {
    threads.emplace_back([&, i] {
      const std::string tid = "c" + std::to_string(i);
      for (int64_t round = 1; round <= kRounds; ++round) {
        sync.arrive_and_wait();  // all saves of a round at once: they meet in groups
        std::vector<FileWrite> files = {{"/tmp/ok", Tag(i, round), ""}};
        StatusOr<int64_t> v = Status::Internal("unset");
        std::string want;
        if (i == 0) {  // fails half-way: its state and /tmp/ok were written first
          files.push_back({"/tmp/poison", "x", ""});
          v = s.SaveExecution(tid, 0, StateWrite{Tag(i, round), "f", "b"}, files, {});
          if (v.ok()) want = "the poisoned save succeeded";
        } else if (i == 1) {  // a version conflict
          v = s.SaveExecution(tid, 7, StateWrite{Tag(i, round), "f", "b"}, files, {});
          if (!v.status().IsConflict()) want = "not a conflict: " + v.status().ToString();
        } else if (i == 2) {  // a session that is not there
          v = s.SaveExecution("missing", 0, StateWrite{Tag(i, round), "f", "b"}, files, {});
          if (!v.status().IsNotFound()) want = "not NotFound: " + v.status().ToString();
        } else {
          v = s.SaveExecution(tid, round - 1, StateWrite{Tag(i, round), "f", "b"}, files, {});
          if (!v.ok() || v.value() != round) want = "save failed: " + v.status().ToString();
        }
        if (!want.empty() && errors[i].empty()) errors[i] = "round " + std::to_string(round) + ": " + want;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kSessions; ++i) EXPECT_EQ(errors[i], "") << "session " << i;
  for (int i = 0; i < 2; ++i) {
    const std::string tid = "c" + std::to_string(i);
    EXPECT_FALSE(s.GetState(tid).value().has_value()) << tid << ": a failed save left a state";
    EXPECT_TRUE(s.ListFiles(tid).value().empty()) << tid << ": a failed save left a file";
  }
  EXPECT_FALSE(s.SessionExists("missing").value());
  for (int i = 3; i < kSessions; ++i) {
    const std::string tid = "c" + std::to_string(i);
    StatusOr<std::optional<SessionState>> st = s.GetState(tid);
    ASSERT_TRUE(st.ok() && st.value()) << tid;
    EXPECT_EQ(st.value()->version, kRounds);
    EXPECT_EQ(st.value()->snapshot, Tag(i, kRounds));
    EXPECT_EQ(s.GetFile(tid, "/tmp/ok").value().content, Tag(i, kRounds));
  }
}

TYPED_TEST(StoreConcurrency, TwoSavesOfOneVersionThroughOneStoreExactlyOneWins) {
  // Through one Store both may land in one group transaction: the second then sees the
  // first's version, as it would after the first committed.
  Store& s = *this->store_;
  ASSERT_TRUE(s.CreateSession("t", kFarFuture, {}).ok());
  int64_t version = 0;
  for (int round = 0; round < 30; ++round) {
    std::barrier sync(2);
    StatusOr<int64_t> ra = Status::Internal("unset"), rb = Status::Internal("unset");
    auto save = [&](const std::string& who, StatusOr<int64_t>* out) {
      sync.arrive_and_wait();
      *out = s.SaveExecution("t", version, StateWrite{who + std::to_string(round), "f", "b"},
                             {{"/by", who + std::to_string(round), ""}}, {});
    };
    std::thread ta(save, "a", &ra);
    std::thread tb(save, "b", &rb);
    ta.join();
    tb.join();
    ASSERT_NE(ra.ok(), rb.ok()) << "round " << round << ": " << ra.status().ToString() << " / "
                                << rb.status().ToString();
    const bool a_won = ra.ok();
    EXPECT_TRUE((a_won ? rb : ra).status().IsConflict()) << (a_won ? rb : ra).status().ToString();
    ++version;
    const std::string winner = std::string(a_won ? "a" : "b") + std::to_string(round);
    EXPECT_EQ(s.GetState("t").value()->snapshot, winner);
    EXPECT_EQ(s.GetFile("t", "/by").value().content, winner);
  }
}

}  // namespace
}  // namespace brig::store
