// brig::NodeExtras: what a node of a sandbox's writable mounts (/home/user, /tmp) has beyond
// its contents: permission bits other than the default (0644 for a file or a named pipe, 0755
// for a directory), extended attributes (os.setxattr), or being a named pipe (os.mkfifo;
// neither a file nor a directory). A session's file rows hold names and contents only; its
// stored state holds these (Sandbox::ListNodeExtras, Sandbox::ApplyNodeExtras), so that they
// are there after a restart.
#ifndef BRIG_NODE_EXTRAS_H_
#define BRIG_NODE_EXTRAS_H_

#include <cstdint>
#include <map>
#include <string>

namespace brig {

struct NodeExtras {
  std::string path;  // absolute
  bool named_pipe = false;
  uint16_t mode = 0644;                       // permission bits, 07777
  std::map<std::string, std::string> xattrs;  // name -> value (bytes)
};

}  // namespace brig

#endif  // BRIG_NODE_EXTRAS_H_
