#include "brig/store.h"

#include "api/access.h"
#include "store/relayed_saves.h"
#include "store/store.h"

namespace brig {

Store::Store(std::unique_ptr<store::Store> backend) : backend_(std::move(backend)) {}
Store::~Store() = default;

StatusOr<std::unique_ptr<Store>> Store::Open(std::string_view url, const StoreOptions& options) {
  StatusOr<std::unique_ptr<store::Store>> opened = store::OpenStore(url, options);
  if (!opened.ok()) return opened.status();
  return internal::Access::Wrap(std::move(opened.value()));
}

std::string_view Store::backend() const { return backend_->backend(); }

Status Store::Ping() { return backend_->SchemaVersion().status(); }

std::vector<StatusOr<std::string>> Store::ApplyRelayedSaves(const std::vector<std::string_view>& saves) {
  return store::ApplyRelayedSaves(*backend_, saves);
}

}  // namespace brig
