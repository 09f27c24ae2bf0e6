// brig::PeriodicCleanup: runs SessionManager::Cleanup again and again at a fixed interval,
// on a thread of its own: what a long-running process (`brig serve --cleanup-every`, `brig
// cleanup --every`) uses so that expired sessions and orphaned files go away without anyone
// asking.
//
//   brig::PeriodicCleanup job(manager, std::chrono::hours(1), /*dry_run=*/false,
//                             [](uint64_t round, const brig::StatusOr<brig::CleanupStats>& r) {...});
//
// A round that fails (store unavailable, ...) is reported and the next round runs on time:
// a passing outage does not stop the job. Rounds never overlap.
//
// Thread-safety: the methods may be called from any thread; `report` is called on the
// cleanup thread, one round at a time, and must not call Stop() or destroy the job.
#ifndef BRIG_PERIODIC_CLEANUP_H_
#define BRIG_PERIODIC_CLEANUP_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "brig/session_info.h"
#include "brig/session_manager.h"
#include "brig/status.h"

namespace brig {

namespace session {
class PeriodicCleanup;
}

class PeriodicCleanup {
 public:
  // What one round did (or why it failed), and its number (1, 2, ...).
  using Report = std::function<void(uint64_t round, const StatusOr<CleanupStats>& result)>;

  // Starts the thread; the first round runs at once, the next ones `interval` after the
  // previous one started (or at once, if a round took longer than that).
  // REQUIRES: interval > 0; `manager` outlives this object.
  PeriodicCleanup(SessionManager& manager, std::chrono::milliseconds interval, bool dry_run, Report report);
  PeriodicCleanup(const PeriodicCleanup&) = delete;
  PeriodicCleanup& operator=(const PeriodicCleanup&) = delete;
  ~PeriodicCleanup();  // Stop()

  // Ends the job: a round in progress finishes first (the store sees whole rounds only), no
  // round starts afterwards. Idempotent.
  void Stop();

  // Rounds finished so far.
  uint64_t rounds_done() const;

 private:
  std::unique_ptr<session::PeriodicCleanup> impl_;  // never null
};

}  // namespace brig

#endif  // BRIG_PERIODIC_CLEANUP_H_
