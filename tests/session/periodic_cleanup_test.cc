// PeriodicCleanup on every backend: rounds repeat, each deletes what expired since the last,
// a dry run deletes nothing, Stop is prompt and final.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../store/backends.h"
#include "session/periodic_cleanup.h"
#include "session/session_manager.h"
#include "store/store.h"

namespace brig::session {
namespace {

using namespace std::chrono_literals;
using store::testing::BackendNames;
using store::testing::PostgresBackend;
using store::testing::SqliteBackend;

constexpr int64_t kDay = kMicrosPerDay;

template <typename Backend>
class PeriodicCleanupTest : public store::testing::ClockedBackendTest<Backend> {
 protected:
  void SetUp() override {
    store::testing::ClockedBackendTest<Backend>::SetUp();
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
    SessionOptions options;
    options.clock = this->Clock();
    manager_ = std::make_unique<SessionManager>(*this->store_, options);
  }

  PeriodicCleanup::Report Recorder() {
    return [this](uint64_t round, const StatusOr<store::CleanupStats>& r) {
      std::lock_guard<std::mutex> lock(mu_);
      rounds_.push_back(round);
      if (r.ok()) deleted_ += r.value().sessions_deleted;
      else ++failures_;
    };
  }

  // Waits (up to 20 s: the machines are noisy) until `done` holds.
  template <typename F>
  bool WaitFor(F done) {
    for (auto end = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < end;) {
      if (done()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return done();
  }

  bool Exists(const std::string& id) { return this->manager_->Exists(id).value(); }

  std::unique_ptr<SessionManager> manager_;
  std::mutex mu_;
  std::vector<uint64_t> rounds_;
  int64_t deleted_ = 0;
  int failures_ = 0;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(PeriodicCleanupTest, Backends, BackendNames);

TYPED_TEST(PeriodicCleanupTest, FirstRoundRunsAtOnceAndLaterRoundsCatchWhatExpiresLater) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.Create("soon", 1).ok());
  ASSERT_TRUE(m.Create("later", 5).ok());
  ASSERT_TRUE(m.Create("live", 30).ok());
  this->now_ += 2 * kDay;  // "soon" has expired
  PeriodicCleanup job(m, 20ms, /*dry_run=*/false, this->Recorder());
  ASSERT_TRUE(this->WaitFor([&] { return !this->Exists("soon"); }));
  EXPECT_TRUE(this->Exists("later"));
  this->now_ += 4 * kDay;  // now "later" has too: a later round must see it
  ASSERT_TRUE(this->WaitFor([&] { return !this->Exists("later"); }));
  ASSERT_TRUE(this->WaitFor([&] { return job.rounds_done() >= 3; }));
  job.Stop();
  EXPECT_TRUE(this->Exists("live"));
  std::lock_guard<std::mutex> lock(this->mu_);
  EXPECT_EQ(this->deleted_, 2);
  EXPECT_EQ(this->failures_, 0);
  for (size_t i = 0; i < this->rounds_.size(); ++i) EXPECT_EQ(this->rounds_[i], i + 1);  // in order, none twice
}

TYPED_TEST(PeriodicCleanupTest, DryRunRoundsDeleteNothing) {
  auto& m = *this->manager_;
  ASSERT_TRUE(m.Create("old", 1).ok());
  this->now_ += 2 * kDay;
  std::atomic<int64_t> would_delete{0};
  PeriodicCleanup job(m, 10ms, /*dry_run=*/true, [&](uint64_t, const StatusOr<store::CleanupStats>& r) {
    if (r.ok()) would_delete = r.value().sessions_deleted;
  });
  ASSERT_TRUE(this->WaitFor([&] { return job.rounds_done() >= 3; }));
  job.Stop();
  EXPECT_EQ(would_delete.load(), 1);  // every round still finds it
  EXPECT_TRUE(this->Exists("old"));
}

TYPED_TEST(PeriodicCleanupTest, StopIsPromptDuringALongIntervalAndFinal) {
  auto& m = *this->manager_;
  auto job = std::make_unique<PeriodicCleanup>(m, std::chrono::hours(1), false, this->Recorder());
  ASSERT_TRUE(this->WaitFor([&] { return job->rounds_done() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  job->Stop();
  job->Stop();  // idempotent
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);  // not an hour: the wait is woken
  EXPECT_EQ(job->rounds_done(), 1u);
  ASSERT_TRUE(m.Create("old", 1).ok());
  this->now_ += 2 * kDay;
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(this->Exists("old"));  // no round after Stop
  job.reset();
}

}  // namespace
}  // namespace brig::session
