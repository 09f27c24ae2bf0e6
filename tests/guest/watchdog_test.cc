// The process-wide timer behind timeouts: an earlier deadline armed while the timer thread
// sleeps towards a later one still fires on time; cancelled callbacks never run.
#include "sandbox/watchdog.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace {

using brig::Watchdog;
using namespace std::chrono_literals;

TEST(Watchdog, EarlierDeadlineArmedLaterStillFiresFirst) {
  Watchdog& w = Watchdog::Instance();
  std::atomic<bool> far_fired{false}, near_fired{false};
  Watchdog::Id far = w.Arm(Watchdog::Clock::now() + 60s, [&] { far_fired = true; });
  std::this_thread::sleep_for(20ms);  // the timer thread now sleeps towards +60 s
  auto start = Watchdog::Clock::now();
  Watchdog::Id near = w.Arm(start + 50ms, [&] { near_fired = true; });
  while (!near_fired && Watchdog::Clock::now() - start < 10s) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(near_fired.load());
  EXPECT_FALSE(far_fired.load());
  w.Cancel(near);
  w.Cancel(far);
}

TEST(Watchdog, CancelledCallbacksNeverRun) {
  Watchdog& w = Watchdog::Instance();
  std::atomic<int> fired{0};
  for (int i = 0; i < 1000; ++i) {
    Watchdog::Id id = w.Arm(Watchdog::Clock::now() + 200ms, [&] { fired++; });
    w.Cancel(id);
  }
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(fired.load(), 0);
}

// The slack (kSlack) lets a callback run late, never early; and every one armed runs.
TEST(Watchdog, CallbacksRunAtOrAfterTheirDeadlineAndAllRun) {
  Watchdog& w = Watchdog::Instance();
  constexpr int kCount = 60;
  std::vector<Watchdog::Clock::time_point> deadlines(kCount), ran(kCount);
  std::atomic<int> done{0};
  std::vector<Watchdog::Id> ids;
  for (int i = 0; i < kCount; ++i) {
    deadlines[i] = Watchdog::Clock::now() + std::chrono::microseconds(500 * (i % 30));
    ids.push_back(w.Arm(deadlines[i], [&, i] {
      ran[i] = Watchdog::Clock::now();
      done++;
    }));
    if (i % 7 == 0) std::this_thread::sleep_for(1ms);  // some armed while the thread sleeps
  }
  auto start = Watchdog::Clock::now();
  while (done < kCount && Watchdog::Clock::now() - start < 20s) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(done.load(), kCount);
  for (int i = 0; i < kCount; ++i) EXPECT_GE(ran[i], deadlines[i]) << "callback " << i << " ran early";
  for (Watchdog::Id id : ids) w.Cancel(id);
}

TEST(Watchdog, CancelWaitsForARunningCallback) {
  Watchdog& w = Watchdog::Instance();
  std::atomic<bool> started{false}, finished{false};
  Watchdog::Id id = w.Arm(Watchdog::Clock::now(), [&] {
    started = true;
    std::this_thread::sleep_for(100ms);
    finished = true;
  });
  while (!started) std::this_thread::yield();
  w.Cancel(id);
  EXPECT_TRUE(finished.load());
}

}  // namespace
