// Fuzz target: the bytes of an exported session (session::DecodeSnapshot), which `brig
// sessions import` and the server's import read from anywhere. The input is taken as the
// snapshot; half the time its checksum is recomputed first, so that the checks behind it are
// reached. Checks: no crash or sanitizer report; an accepted snapshot keeps the limits, its
// files follow the path rules and are unique, and it encodes and decodes back to itself.
#include <set>
#include <string>

#include "brig/file_info.h"
#include "fuzz_vfs_check.h"
#include "session/snapshot_format.h"
#include "store/validation.h"
#include "util/hmac_sha256.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) && bytes.size() >= 32) {
    const brig::util::Sha256Digest sum = brig::util::Sha256(std::string_view(bytes).substr(0, bytes.size() - 32));
    bytes.replace(bytes.size() - 32, 32, reinterpret_cast<const char*>(sum.data()), sum.size());
  }
  brig::session::SnapshotLimits limits;
  limits.max_files = 8;
  limits.max_bytes = 1 << 16;
  limits.max_directories = 8;
  brig::StatusOr<brig::session::SessionSnapshot> got = brig::session::DecodeSnapshot(bytes, limits);
  if (!got.ok()) {
    FUZZ_CHECK(got.status().IsInvalidArgument() || got.status().IsResourceExhausted(), "%s",
               got.status().ToString().c_str());
    return 0;
  }
  const brig::session::SessionSnapshot& s = got.value();
  int64_t files = 0, dirs = 0, total = 0;
  std::set<std::string> paths;
  for (const auto& f : s.files) {
    FUZZ_CHECK(brig::store::ValidateFilePath(f.path).ok(), "path '%s' accepted", f.path.c_str());
    FUZZ_CHECK(paths.insert(f.path).second, "path '%s' twice", f.path.c_str());
    if (f.content_type == brig::kDirectoryType) {
      FUZZ_CHECK(f.content.empty(), "directory %s with content", f.path.c_str());
      ++dirs;
    } else {
      ++files;
      total += static_cast<int64_t>(f.content.size());
    }
  }
  FUZZ_CHECK(files <= limits.max_files && dirs <= limits.max_directories && total <= limits.max_bytes,
             "limits: %lld files, %lld dirs, %lld bytes", static_cast<long long>(files),
             static_cast<long long>(dirs), static_cast<long long>(total));
  FUZZ_CHECK(s.has_state || (s.pages.empty() && s.portable.empty()), "state without has_state");
  brig::StatusOr<brig::session::SessionSnapshot> again =
      brig::session::DecodeSnapshot(brig::session::EncodeSnapshot(s), limits);
  FUZZ_CHECK(again.ok(), "re-encoded snapshot refused: %s", again.status().ToString().c_str());
  FUZZ_CHECK(again.value().pages == s.pages && again.value().portable == s.portable &&
                 again.value().files.size() == s.files.size() && again.value().metadata == s.metadata,
             "round trip changed the snapshot");
  return 0;
}
