#include "sandbox/watchdog.h"

namespace brig {

Watchdog& Watchdog::Instance() {
  // Leaked on purpose: a timer thread must not be joined during static destruction.
  static Watchdog* watchdog = new Watchdog();
  return *watchdog;
}

Watchdog::Watchdog() : thread_([this] { Loop(); }) { thread_.detach(); }

Watchdog::Id Watchdog::Arm(Clock::time_point deadline, std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  Id id = next_id_++;
  bool earliest = pending_.empty() || deadline < pending_.begin()->first.first;
  pending_.emplace(std::make_pair(deadline, id), std::move(fn));
  if (earliest) wake_.notify_one();
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
  for (;;) {
    if (pending_.empty()) {
      wake_.wait(lock);
      continue;
    }
    auto first = pending_.begin();
    if (Clock::now() < first->first.first) {
      wake_.wait_until(lock, first->first.first);
      continue;
    }
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
