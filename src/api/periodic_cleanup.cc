#include "brig/periodic_cleanup.h"

#include "api/access.h"
#include "session/periodic_cleanup.h"

namespace brig {

PeriodicCleanup::PeriodicCleanup(SessionManager& manager, std::chrono::milliseconds interval, bool dry_run,
                                 Report report)
    : impl_(std::make_unique<session::PeriodicCleanup>(internal::Access::Manager(manager), interval, dry_run,
                                                       std::move(report))) {}
PeriodicCleanup::~PeriodicCleanup() = default;  // the internal job's destructor stops it
void PeriodicCleanup::Stop() { impl_->Stop(); }
uint64_t PeriodicCleanup::rounds_done() const { return impl_->rounds_done(); }

}  // namespace brig
