// brig::internal::Access: how the implementation reaches the internal objects behind the
// public handles of include/brig/ (the store behind a brig::Store, the policy behind a
// brig::SessionManager). The public headers name it only as a friend; nothing outside src/
// includes this file.
#ifndef BRIG_API_ACCESS_H_
#define BRIG_API_ACCESS_H_

#include "brig/session_manager.h"
#include "brig/store.h"
#include "session/session_manager.h"
#include "store/store.h"

namespace brig::internal {

struct Access {
  static store::Store& Backend(Store& store) { return *store.backend_; }
  static session::SessionManager& Manager(SessionManager& manager) { return *manager.impl_; }
  // A handle owning `backend`.
  static std::unique_ptr<Store> Wrap(std::unique_ptr<store::Store> backend) {
    return std::unique_ptr<Store>(new Store(std::move(backend)));
  }
};

}  // namespace brig::internal

#endif  // BRIG_API_ACCESS_H_
