// Fuzz target: the stdlib pack parser (vfs::PackTree::Parse), fed the input as a whole pack.
// Kept thin on purpose (the format is being changed): whatever Parse accepts is mounted in
// a FileSystem and walked through its public interface, every file read whole.
#include <string>
#include <vector>

#include "fuzz_vfs_check.h"
#include "vfs/file_system.h"
#include "vfs/pack.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string error;
  std::shared_ptr<const brig::vfs::PackTree> tree = brig::vfs::PackTree::Parse(bytes, &error);
  if (!tree) {
    FUZZ_CHECK(!error.empty(), "refused without a reason");
    return 0;
  }
  brig::vfs::FileSystem::Options o;
  o.stdlib = tree;
  brig::vfs::FileSystem fs(o);
  uint64_t files = 0;
  std::vector<std::string> dirs = {"/usr/local/lib/python3.11"};
  while (!dirs.empty()) {
    std::string dir = std::move(dirs.back());
    dirs.pop_back();
    auto entries = fs.List(dir);
    FUZZ_CHECK(entries.has_value(), "cannot list %s", dir.c_str());
    for (const brig::vfs::DirEntry& e : *entries) {
      std::string path = dir + "/" + e.name;
      if (e.type == brig::vfs::NodeType::kDirectory) {
        dirs.push_back(path);
        continue;
      }
      ++files;
      auto content = fs.ReadFile(path);
      FUZZ_CHECK(content.has_value(), "cannot read %s", path.c_str());
      // Read-only: the guest cannot change it.
      FUZZ_CHECK(fs.WriteFile(path, "x") != brig::vfs::Error::kOk);
    }
  }
  FUZZ_CHECK(files == tree->file_count(), "%llu files listed, pack says %llu", (unsigned long long)files,
             (unsigned long long)tree->file_count());
  return 0;
}
