// Quotas and path limits of one FileSystem. All are enforced; exceeding a quota fails the
// operation with no partial effect.
#ifndef BRIG_VFS_LIMITS_H_
#define BRIG_VFS_LIMITS_H_

#include <algorithm>
#include <cstdint>

#include "names/path_rules.h"

namespace brig::vfs {

struct Limits {
  // Sum of the sizes of all writable files, including removed files still held open.
  // Exceeding it: Error::kNoSpc.
  uint64_t max_total_bytes = 256ull << 20;
  // Number of regular files in the writable mounts (a file counts from its creation until
  // it is unlinked or renamed over; a removed file still held open does not count). Creating
  // one more: Error::kNoSpc.
  uint64_t max_files = 10000;
  // Number of writable nodes: files (also removed ones still held open) and directories
  // (mount roots not counted). Bounds the memory the tree takes. Error::kNoSpc.
  uint64_t max_nodes = NodesFor(10000);
  // Size of one file. Exceeding it: Error::kFBig.
  uint64_t max_file_size = 100ull << 20;
  // Length in bytes of a path handed to any operation, and of the absolute path of any node
  // that gets created or that a rename moves a subtree to. Error::kNameTooLong.
  uint32_t max_path_length = names::kMaxPathBytes;
  // Length of one path component. Error::kNameTooLong.
  uint32_t max_name_length = names::kMaxNameBytes;
  // Components in the absolute path of any node that gets created, or that a rename moves
  // a subtree to. Error::kNameTooLong.
  uint32_t max_depth = names::kMaxDepth;
  // The defaults are the store's rules (names/path_rules.h): a name made here can be saved.
  // New names must also be UTF-8 without control characters (kIlSeq, kInval).

  // The node limit that goes with a file limit: the files plus as many directories (at
  // least kMinDirectories), so that directories never keep the file limit from being reached.
  static constexpr uint64_t kMinDirectories = 1000;
  static constexpr uint64_t NodesFor(uint64_t files) {
    const uint64_t dirs = std::max(files, kMinDirectories);
    return files > UINT64_MAX - dirs ? UINT64_MAX : files + dirs;
  }
  // Sets max_files to `files` and max_nodes to NodesFor(files).
  void SetFileLimit(uint64_t files) {
    max_files = files;
    max_nodes = NodesFor(files);
  }
};

}  // namespace brig::vfs

#endif
