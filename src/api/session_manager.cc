#include "brig/session_manager.h"

#include "api/access.h"
#include "session/session_manager.h"

namespace brig {

SessionManager::SessionManager(Store& store, SessionOptions options)
    : impl_(std::make_unique<session::SessionManager>(internal::Access::Backend(store), std::move(options))) {}
SessionManager::~SessionManager() = default;

const SessionOptions& SessionManager::options() const { return impl_->options(); }
int64_t SessionManager::Now() const { return impl_->Now(); }
StatusOr<SessionInfo> SessionManager::GetOrCreate(std::string_view thread_id) { return impl_->GetOrCreate(thread_id); }
StatusOr<SessionInfo> SessionManager::Create(std::string_view thread_id, std::optional<int64_t> expiry_days,
                                             const nlohmann::json& metadata, const SessionQuotas& quotas) {
  return impl_->Create(thread_id, expiry_days, metadata, quotas);
}
SessionQuotas SessionManager::EffectiveQuotas(const SessionInfo& session) const {
  return impl_->EffectiveQuotas(session.quotas);
}
StatusOr<SessionInfo> SessionManager::Get(std::string_view thread_id) { return impl_->Get(thread_id); }
StatusOr<bool> SessionManager::Exists(std::string_view thread_id) { return impl_->Exists(thread_id); }
StatusOr<std::vector<SessionInfo>> SessionManager::List() { return impl_->List(); }
StatusOr<SessionInfo> SessionManager::Extend(std::string_view thread_id, int64_t days) {
  return impl_->Extend(thread_id, days);
}
Status SessionManager::Delete(std::string_view thread_id) { return impl_->Delete(thread_id); }
Status SessionManager::Reset(std::string_view thread_id) { return impl_->Reset(thread_id); }
StatusOr<SessionInfo> SessionManager::Fork(std::string_view src, std::string_view dst, const ForkOptions& options) {
  return impl_->Fork(src, dst, options);
}
StatusOr<CleanupStats> SessionManager::Cleanup(bool dry_run) { return impl_->Cleanup(dry_run); }
bool SessionManager::IsExpired(const SessionInfo& session) const { return impl_->IsExpired(session); }

}  // namespace brig
