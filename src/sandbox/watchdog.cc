#include "sandbox/watchdog.h"

namespace brig {

Watchdog& Watchdog::Instance() {
  // Leaked on purpose: a timer thread must not be joined during static destruction.
  static Watchdog* watchdog = new Watchdog();
  return *watchdog;
}

Watchdog::Watchdog() : thread_([this] { Loop(); }) { thread_.detach(); }

namespace {

// deadline + kSlack, saturating (a deadline may be far off).
Watchdog::Clock::time_point WithSlack(Watchdog::Clock::time_point deadline) {
  return deadline > Watchdog::Clock::time_point::max() - Watchdog::kSlack ? Watchdog::Clock::time_point::max()
                                                                          : deadline + Watchdog::kSlack;
}

}  // namespace

Watchdog::Id Watchdog::Arm(Clock::time_point deadline, std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  Id id = next_id_++;
  pending_.emplace(std::make_pair(deadline, id), std::move(fn));
  if (WithSlack(deadline) < sleeping_until_) wake_.notify_one();
  return id;
}

void Watchdog::Cancel(Id id) {
  std::unique_lock<std::mutex> lock(mu_);
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->first.second == id) {
      pending_.erase(it);
      break;
    }
  }
  finished_.wait(lock, [&] { return running_ != id; });
}

void Watchdog::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  bool idle_once = false;  // found nothing pending last time it looked
  for (;;) {
    const auto now = Clock::now();
    if (pending_.empty()) {
      // Executions come one after another: keep looking for one more slack period, during
      // which a new deadline needs no wake-up (Arm's never falls before it), then sleep.
      sleeping_until_ = idle_once ? Clock::time_point::max() : now + kSlack;
      idle_once = true;
      if (sleeping_until_ == Clock::time_point::max()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, sleeping_until_);
      }
      continue;
    }
    idle_once = false;
    auto first = pending_.begin();
    const auto deadline = first->first.first;
    if (now < deadline) {
      // Until the earliest deadline and its slack: Arm wakes it only for one that cannot wait.
      sleeping_until_ = WithSlack(deadline);
      wake_.wait_until(lock, sleeping_until_);
      continue;
    }
    sleeping_until_ = Clock::time_point::min();  // busy: it will look again before sleeping
    Id id = first->first.second;
    std::function<void()> fn = std::move(first->second);
    pending_.erase(first);
    running_ = id;
    lock.unlock();
    fn();
    lock.lock();
    running_ = 0;
    finished_.notify_all();
  }
}

}  // namespace brig
