// Quotas and path limits of one FileSystem. All are enforced; exceeding a quota fails the
// operation with no partial effect.
#ifndef BRIG_VFS_LIMITS_H_
#define BRIG_VFS_LIMITS_H_

#include <cstdint>

namespace brig::vfs {

struct Limits {
  // Sum of the sizes of all writable files, including removed files still held open.
  // Exceeding it: Error::kNoSpc.
  uint64_t max_total_bytes = 256ull << 20;
  // Number of writable files and directories (mount roots not counted). Error::kNoSpc.
  uint64_t max_nodes = 10000;
  // Size of one file. Exceeding it: Error::kFBig.
  uint64_t max_file_size = 100ull << 20;
  // Length in bytes of a path handed to any operation. Error::kNameTooLong.
  uint32_t max_path_length = 4096;
  // Length of one path component. Error::kNameTooLong.
  uint32_t max_name_length = 255;
  // Components in the absolute path of any node that gets created, or that a rename moves
  // a subtree to. Error::kNameTooLong.
  uint32_t max_depth = 64;
};

}  // namespace brig::vfs

#endif
