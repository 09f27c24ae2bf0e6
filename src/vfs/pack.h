// The stdlib pack: a read-only file tree read in place from a byte buffer (the binary's
// read-only data). Its index is built ahead of time (guest/pack_stdlib.py), so opening a pack
// checks the index and copies nothing; directory nodes are made from it the first time a
// directory is used, and file contents are never copied.
//
// Format "BRIGPK02" (all integers little-endian, all offsets from the start of the pack, so
// the pack is position-independent):
//   offset 0   "BRIGPK02"                  8-byte magic
//          8   u32 node_count (N >= 1)
//         12   u32 names_size (S)
//         16   N node records of 24 bytes:
//                u32 name_offset           into the name table
//                u16 name_length           0 for the root, else 1..255
//                u16 kind                  0 directory, 1 regular file
//                u64 first, u64 count      directory: its entries are the records
//                                          [first, first + count), sorted by name (bytes)
//                                          file: its contents are bytes [first, first + count)
//   16 + 24N   S bytes of names (no separators, no terminators)
//   16+24N+S   file contents (the "data area"), in any order
// Record 0 is the root directory. Records are in breadth-first order: each directory's
// entries follow those of the directory before it (in record order), starting at record 1,
// so every record except the root is the entry of exactly one directory with a smaller
// index, and the tree has no cycles. A record's inode number is its index + 1 (stable: the
// same pack gives the same numbers in every process).
//
// Validation: Parse checks the whole index once (about 27 KiB of records and 18 KiB of names
// for the stdlib, not the 20 MiB of contents): every offset and length within its table or
// the data area, the breadth-first layout, names (non-empty, at most 255 bytes, no '/' or NUL,
// not "." or ".."; the name table holds no '/' or NUL at all), strictly increasing names within each directory (so no duplicates), the
// depth. After that no access checks anything again.
//
// Thread-safety: a PackTree is immutable once made (directories fill in their entries on
// first use, once, under a lock; see Children in node.h) and may be shared by any number of
// FileSystems on any threads (std::shared_ptr<const PackTree>).
#ifndef BRIG_VFS_PACK_H_
#define BRIG_VFS_PACK_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vfs/node.h"

namespace brig::vfs {

// The checked index of a pack: what a directory node needs to make its entries. Shared by the
// PackTree and its directory nodes that are not filled in yet.
struct PackIndex;

class PackTree {
 public:
  // Checks the index of `bytes` (see Validation above). On success returns the tree; on
  // failure returns nullptr and sets *error to a description (truncation, bad magic, an
  // offset or length out of bounds, a bad name, names out of order or duplicated, a broken
  // tree layout, too deep).
  // REQUIRES: `bytes` stays valid and unchanged for as long as the tree or any of its nodes
  // lives (nodes point into it). Every node reports `mtime_ns` as its times.
  static std::shared_ptr<const PackTree> Parse(std::string_view bytes, std::string* error,
                                               uint64_t mtime_ns = 0);

  // A second, separate tree for the directory `path` ("a/b", relative to the root) of this
  // pack: the same bytes (nothing copied) with nodes of its own, every one with mount_id
  // `mount_id`, its root's parent nullptr (".." from it is wherever it is mounted, never
  // back into this pack). Inode numbers are the pack's. nullptr if `path` names no
  // directory. Entries named as one of `hidden` are left out of each of its directories
  // (with what is below them). Made once and shared like the pack it views.
  std::shared_ptr<const PackTree> Subtree(std::string_view path, uint32_t mount_id,
                                          const std::vector<std::string>& hidden = {}) const;

  // The tree's root directory. Read-only (writable == false), parent == nullptr.
  const std::shared_ptr<Node>& root() const { return root_; }
  uint64_t file_count() const { return file_count_; }
  uint64_t node_count() const { return node_count_; }

 private:
  PackTree() = default;
  std::shared_ptr<const PackIndex> index_;
  std::shared_ptr<Node> root_;
  uint64_t file_count_ = 0;
  uint64_t node_count_ = 0;
};

// Serialises files (path -> contents) in the pack format, making the directories their paths
// imply; for tests and for tools that build packs (guest/pack_stdlib.py writes the same
// bytes for the same files). Does not validate the paths: a bad one makes a pack that Parse
// refuses.
std::string BuildPack(const std::map<std::string, std::string>& files);

}  // namespace brig::vfs

#endif
