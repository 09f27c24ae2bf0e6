// Runs the cleanup job (SessionManager::Cleanup) again and again at a fixed interval, on a
// thread of its own: what a long-running process (the server, `brig cleanup --every`) uses so
// that expired sessions and orphaned files go away without anyone asking.
//
// A round that fails (store unavailable, ...) is reported and the next round runs on time:
// a passing outage does not stop the job. Rounds never overlap.
//
// Thread-safety: the methods may be called from any thread; `report` is called on the
// cleanup thread, one round at a time.
#ifndef BRIG_SESSION_PERIODIC_CLEANUP_H_
#define BRIG_SESSION_PERIODIC_CLEANUP_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "brig/status.h"
#include "session/session_manager.h"
#include "store/store.h"

namespace brig::session {

class PeriodicCleanup {
 public:
  // What one round did (or why it failed), and its number (1, 2, ...).
  using Report = std::function<void(uint64_t round, const StatusOr<store::CleanupStats>& result)>;

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

  uint64_t rounds_done() const;

 private:
  void Loop();

  SessionManager& manager_;
  const std::chrono::milliseconds interval_;
  const bool dry_run_;
  const Report report_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  uint64_t rounds_ = 0;    // guarded by mu_
  std::thread thread_;     // last: starts after the members it uses exist
};

}  // namespace brig::session

#endif  // BRIG_SESSION_PERIODIC_CLEANUP_H_
