#include "brig/wheels.h"

#include "api/access.h"
#include "wheels/installer.h"

namespace brig {

Wheels::Wheels(SessionManager& sessions)
    : impl_(std::make_unique<wheels::Installer>(internal::Access::Manager(sessions))) {}
Wheels::~Wheels() = default;

StatusOr<InstallResult> Wheels::Install(std::string_view thread_id, std::string_view wheel,
                                        std::string_view filename) {
  return impl_->Install(thread_id, wheel, filename);
}
StatusOr<InstallResult> Wheels::InstallFile(std::string_view thread_id, std::string_view path) {
  return impl_->InstallFile(thread_id, path);
}
StatusOr<std::vector<InstalledPackage>> Wheels::List(std::string_view thread_id) { return impl_->List(thread_id); }
StatusOr<InstalledPackage> Wheels::Uninstall(std::string_view thread_id, std::string_view name) {
  return impl_->Uninstall(thread_id, name);
}

}  // namespace brig
