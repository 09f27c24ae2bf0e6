#include "vfs/xattrs.h"

namespace brig::vfs {

Error Xattrs::CheckName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes || name.find('\0') != std::string_view::npos) return Error::kRange;
  for (std::string_view prefix : {std::string_view("user."), std::string_view("trusted.")}) {
    if (name.starts_with(prefix)) return name.size() == prefix.size() ? Error::kInval : Error::kOk;
  }
  return Error::kNotSup;  // security.*, system.* (ACLs) and unknown namespaces
}

}  // namespace brig::vfs
