// brig::vfs::Xattrs: the extended attributes of one node (getxattr(2) and the rest, for the
// guest), and the rules for them, which are Linux's where the sandbox can follow them:
//   - names are "user.NAME" or "trusted.NAME" (NAME not empty); "security." and "system." are
//     not kept (kNotSup), nor is any other prefix. trusted.* needs privileges on Linux; the
//     sandbox's user owns everything and nothing reads them, so it may set them too.
//   - a name is 1..255 bytes with no NUL (kRange otherwise); a value at most kMaxValueBytes
//     (kTooBig); the names and values of one node at most kMaxNodeBytes together (kNoSpc).
// Their bytes count against the file system's byte quota like file contents.
#ifndef BRIG_VFS_XATTRS_H_
#define BRIG_VFS_XATTRS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "vfs/error.h"

namespace brig::vfs {

struct Xattrs {
  static constexpr size_t kMaxNameBytes = 255;       // Linux's XATTR_NAME_MAX
  static constexpr size_t kMaxValueBytes = 65536;    // XATTR_SIZE_MAX
  static constexpr size_t kMaxNodeBytes = 65536;     // names + values of one node
  static constexpr size_t kMaxListBytes = 65536;     // XATTR_LIST_MAX: a node's names never pass it

  std::map<std::string, std::string, std::less<>> values;
  // Bytes of every name and value (what the node is charged for them).
  uint64_t bytes = 0;

  // kOk for a name the sandbox keeps; kRange, kInval or kNotSup as above.
  static Error CheckName(std::string_view name);
};

}  // namespace brig::vfs

#endif  // BRIG_VFS_XATTRS_H_
