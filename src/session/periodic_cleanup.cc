#include "session/periodic_cleanup.h"

#include <utility>

namespace brig::session {

PeriodicCleanup::PeriodicCleanup(SessionManager& manager, std::chrono::milliseconds interval, bool dry_run,
                                 Report report)
    : manager_(manager),
      interval_(interval.count() > 0 ? interval : std::chrono::milliseconds(1)),
      dry_run_(dry_run),
      report_(std::move(report)),
      thread_([this] { Loop(); }) {}

PeriodicCleanup::~PeriodicCleanup() { Stop(); }

void PeriodicCleanup::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

uint64_t PeriodicCleanup::rounds_done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rounds_;
}

void PeriodicCleanup::Loop() {
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // steady_clock: a wall-clock jump neither skips rounds nor runs a burst of them.
      wake_.wait_until(lock, next, [this] { return stopping_; });
      if (stopping_) return;
    }
    next = std::chrono::steady_clock::now() + interval_;
    StatusOr<store::CleanupStats> result = manager_.Cleanup(dry_run_);
    uint64_t round;
    {
      std::lock_guard<std::mutex> lock(mu_);
      round = ++rounds_;
    }
    if (report_) report_(round, result);
  }
}

}  // namespace brig::session
