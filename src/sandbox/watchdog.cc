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
  pending_.emplace(std::make_pair(deadline, id), std::move(fn));
  if (deadline < sleeping_until_) wake_.notify_one();
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
      sleeping_until_ = Clock::time_point::max();
      wake_.wait(lock);
      continue;
    }
    auto first = pending_.begin();
    if (Clock::now() < first->first.first) {
      sleeping_until_ = first->first.first;
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
