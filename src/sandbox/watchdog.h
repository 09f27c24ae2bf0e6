// Watchdog: one process-wide timer thread that runs a callback at a deadline unless it is
// cancelled first. Sandboxes use it for execution timeouts: arming and cancelling cost a
// mutex and a map insert/erase, no thread per execution.
//
// A callback runs at its deadline or up to kSlack after it, never before. The slack is what
// keeps the timer thread asleep: most executions end long before their deadline, and without
// it the thread woke at each one's stale deadline: ~1,000 times a second per `brig serve`
// worker under load, whose quick executions are armed with a 2 ms budget (bench/RESULTS.md,
// 2026-12-05).
//
// Thread-safety: all members are safe to call from any thread.
#ifndef BRIG_SANDBOX_WATCHDOG_H_
#define BRIG_SANDBOX_WATCHDOG_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace brig {

class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;
  using Id = uint64_t;

  // The process's watchdog (started on first use, never destroyed).
  static Watchdog& Instance();

  static constexpr std::chrono::milliseconds kSlack{5};

  // Runs `fn` on the watchdog thread at `deadline` or up to kSlack after it (at once if it
  // has passed), unless Cancel(id) is called first. `fn` must be quick and must not call Arm
  // or Cancel.
  Id Arm(Clock::time_point deadline, std::function<void()> fn);
  // After Cancel returns, the callback of `id` is not running and never will.
  void Cancel(Id id);

 private:
  Watchdog();
  void Loop();

  std::mutex mu_;
  std::condition_variable wake_;      // a new earliest deadline, or a cancellation
  std::condition_variable finished_;  // a callback finished running
  std::map<std::pair<Clock::time_point, Id>, std::function<void()>> pending_;  // GUARDED_BY(mu_)
  Id next_id_ = 1;       // GUARDED_BY(mu_)
  Id running_ = 0;       // id whose callback runs now, 0 if none. GUARDED_BY(mu_)
  // When the timer thread will next look at pending_ by itself (max: not before a notify).
  // Arm wakes it only when a callback could not wait that long, slack included: a wake-up
  // per execution would cost a thread switch. GUARDED_BY(mu_)
  Clock::time_point sleeping_until_ = Clock::time_point::max();
  std::thread thread_;
};

}  // namespace brig

#endif  // BRIG_SANDBOX_WATCHDOG_H_
