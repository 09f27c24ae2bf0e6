// Fuzz target: the store's name checks (store/validation.h) against the guest's file system.
//
// The property (issue 9, item 1: one set of path rules): a file path under /home/user or
// /tmp that ValidateFilePath accepts can be created in a vfs::FileSystem (WriteFile and,
// for a directory, MakeDirs), and one it refuses is refused by the VFS. The VFS also reads
// "." / ".." / "//" as path syntax; the converse is only asked of canonical paths (no such
// component, no trailing '/'), the names a file really gets.
//
// BRIG_FUZZ_LENIENT_PATH_RULES=1 reports each kind of disagreement once on stderr instead
// of aborting (fuzz_vfs_check.h): for looking at the differences while the rules differ.
// ValidateThreadId gets the same input: it must accept only 1..255 bytes.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_vfs_check.h"
#include "store/validation.h"
#include "vfs/file_system.h"

namespace {

bool Canonical(std::string_view p) {
  if (p.size() < 2 || p[0] != '/' || p.back() == '/') return false;
  size_t start = 1;
  while (true) {
    size_t end = p.find('/', start);
    std::string_view c = p.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (c.empty() || c == "." || c == "..") return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

void Disagree(const char* what, const std::string& path, const std::string& why) {
  std::string shown;
  for (unsigned char c : path.substr(0, 200)) {
    char buf[8];
    if (c >= 0x20 && c < 0x7f) {
      shown += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      shown += buf;
    }
  }
  brig::fuzz::PathRuleBroken(std::string(what) + ": " + why, "\"" + shown + "\" (" + std::to_string(path.size()) + " bytes)");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string tail(reinterpret_cast<const char*>(data) + 1, size - 1);

  brig::Status tid = brig::store::ValidateThreadId(tail);
  if (tid.ok()) FUZZ_CHECK(!tail.empty() && tail.size() <= brig::store::kMaxThreadIdBytes);

  // The first byte picks the mount and whether the name is a file or a directory.
  const std::string path = std::string((data[0] & 1) ? "/tmp/" : "/home/user/") + tail;
  const bool as_dir = data[0] & 2;
  brig::Status valid = brig::store::ValidateFilePath(path);
  if (valid.ok()) FUZZ_CHECK(path.size() <= brig::store::kMaxPathBytes);

  brig::vfs::FileSystem fs;
  const brig::vfs::Error made = as_dir ? fs.MakeDirs(path) : fs.WriteFile(path, "x");
  const bool canonical = Canonical(path);
  if (valid.ok() && canonical && made != brig::vfs::Error::kOk) {
    Disagree("the store accepts it, the VFS refuses it", path, brig::vfs::ErrorName(made));
  }
  if (!valid.ok() && canonical && made == brig::vfs::Error::kOk) {
    Disagree("the VFS makes it, the store refuses it", path, valid.message());
  }
  brig::fuzz::CheckQuota(fs, {});
  return 0;
}
