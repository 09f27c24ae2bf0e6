// Fuzz target: wheels (wheels::ParseWheel, over wheels::ReadZip), the whole input as the
// archive. Checks: whatever is accepted stays inside the bounds (entries, per-entry and total
// bytes) and every path it would install is relative, without "." or ".." components or
// backslashes, and unique; no accepted file looks like compiled code.
#include <set>
#include <string>

#include "fuzz_vfs_check.h"
#include "wheels/wheel.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view archive(reinterpret_cast<const char*>(data), size);
  brig::wheels::ZipLimits limits;
  limits.max_entries = 64;
  limits.max_entry_bytes = 1 << 20;
  limits.max_total_bytes = 4 << 20;
  brig::StatusOr<brig::wheels::Wheel> w = brig::wheels::ParseWheel(archive, "", limits);
  if (!w.ok()) return 0;
  std::set<std::string> seen;
  size_t total = 0;
  for (const brig::wheels::WheelFile& f : w.value().files) {
    const std::string& p = f.path;
    FUZZ_CHECK(!p.empty() && p[0] != '/', "path '%s' is not relative", p.c_str());
    FUZZ_CHECK(p.find('\\') == std::string::npos, "path '%s' holds a backslash", p.c_str());
    FUZZ_CHECK(("/" + p + "/").find("/../") == std::string::npos, "path '%s' climbs", p.c_str());
    FUZZ_CHECK(("/" + p + "/").find("/./") == std::string::npos, "path '%s' has '.'", p.c_str());
    FUZZ_CHECK(("/" + p + "/").find("//") == std::string::npos, "path '%s' has an empty component", p.c_str());
    FUZZ_CHECK(seen.insert(p).second, "path '%s' twice", p.c_str());
    FUZZ_CHECK(!p.ends_with(".so") && !p.ends_with(".pyd"), "compiled '%s' accepted", p.c_str());
    total += f.content.size();
  }
  // RECORD and INSTALLER are written by the parser; the rest came from the archive.
  FUZZ_CHECK(total <= static_cast<size_t>(limits.max_total_bytes) + (1 << 16), "%zu bytes accepted", total);
  return 0;
}
