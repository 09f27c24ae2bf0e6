#include "cli/mount_option.h"

#include <filesystem>

namespace brig::cli {

bool ParseMountOption(std::string_view value, Mount* out, std::string* error) {
  std::string_view v = value;
  bool writable = false;
  if (v.ends_with(":ro") || v.ends_with(":rw")) {
    writable = v.ends_with(":rw");
    v.remove_suffix(3);
  }
  size_t colon = v.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == v.size()) {
    *error = "-v " + std::string(value) + ": a mount is HOST_DIR:GUEST_DIR[:ro|rw]";
    return false;
  }
  std::error_code ec;
  std::filesystem::path host = std::filesystem::absolute(std::string(v.substr(0, colon)), ec);
  if (ec) {
    *error = "-v " + std::string(value) + ": " + ec.message();
    return false;
  }
  out->host_dir = host.string();
  out->guest_dir = std::string(v.substr(colon + 1));
  out->writable = writable;
  return true;
}

}  // namespace brig::cli
