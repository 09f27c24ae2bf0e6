// The stdlib pack: a read-only file tree parsed from a byte buffer without copying file
// contents.
//
// Format (all integers little-endian):
//   "BRIGPK01"                       8-byte magic
//   u32 count                        number of entries
//   count times:
//     u32 path_len, path bytes       relative, '/'-separated, e.g. "json/__init__.pyc"
//     u64 data_len, data bytes
// Directories are implied by the paths. Nothing may follow the last entry.
//
// Thread-safety: a PackTree is immutable after Parse and may be shared by any number of
// FileSystems on any threads (std::shared_ptr<const PackTree>).
#ifndef BRIG_VFS_PACK_H_
#define BRIG_VFS_PACK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "vfs/node.h"

namespace brig::vfs {

class PackTree {
 public:
  // Parses and fully validates `bytes`. On success returns the tree; on failure returns
  // nullptr and sets *error to a description (truncation, bad magic, a bad path: empty,
  // absolute, "." or "..", empty component, NUL byte, over-long name, duplicate entry,
  // file/directory conflict, trailing bytes).
  // REQUIRES: `bytes` stays valid and unchanged for the life of the returned tree (file
  // nodes point into it). Every node reports `mtime_ns` as its times.
  static std::shared_ptr<const PackTree> Parse(std::string_view bytes, std::string* error,
                                               uint64_t mtime_ns = 0);

  // The tree's root directory. Read-only (writable == false), parent == nullptr.
  const std::shared_ptr<Node>& root() const { return root_; }
  uint64_t file_count() const { return file_count_; }
  uint64_t node_count() const { return node_count_; }

 private:
  PackTree() = default;
  std::shared_ptr<Node> root_;
  uint64_t file_count_ = 0;
  uint64_t node_count_ = 0;
};

// Serialises files (path -> contents) in the pack format; for tests and for tools that
// build the stdlib pack. Does not validate the paths.
std::string BuildPack(const std::map<std::string, std::string>& files);

}  // namespace brig::vfs

#endif
