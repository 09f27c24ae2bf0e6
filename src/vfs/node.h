// A node of the in-memory tree: a directory, a regular file or a named pipe (there are no
// symlinks).
//
// Two kinds live in one type:
//   - read-only nodes (writable == false): the stdlib pack tree and the synthetic
//     directories above the mounts. Pack nodes are shared between FileSystems through an
//     immutable PackTree and are never modified once made (a pack directory's entries are
//     made on first use, see Children); every mutating path in FileSystem checks `writable`
//     first, which is what makes that sharing thread-safe.
//   - writable nodes: owned by one FileSystem; file bytes live in `data` and are charged
//     to a QuotaUsage for as long as the node exists (also while unlinked but open), as is
//     the node itself; a regular file also counts as a file while it is linked.
//
// Nodes are held by std::shared_ptr: a directory's children map owns its entries and an
// open descriptor shares ownership, so an unlinked file stays readable while open.
#ifndef BRIG_VFS_NODE_H_
#define BRIG_VFS_NODE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "vfs/xattrs.h"

namespace brig::vfs {

// A writable file's bytes, shared copy-on-write between copies of a file system (checkpoints,
// forks): copying a FileData shares the bytes; Mutable() gives this copy its own bytes first if
// another still shares them. Shared bytes are never changed, so copies may live on different
// threads.
class FileData {
 public:
  size_t size() const { return bytes_ ? bytes_->size() : 0; }
  std::string_view view() const { return bytes_ ? std::string_view(*bytes_) : std::string_view(); }
  // The bytes, for changing. May throw std::bad_alloc (then nothing changed).
  std::string& Mutable() {
    if (!bytes_) {
      bytes_ = std::make_shared<std::string>();
    } else if (bytes_.use_count() > 1) {
      bytes_ = std::make_shared<std::string>(*bytes_);
    } else {
      std::atomic_thread_fence(std::memory_order_acquire);  // the last other owner is done reading
    }
    return *bytes_;
  }
  // Replaces the bytes without copying the old ones. May throw std::bad_alloc.
  void Assign(std::string_view bytes) { bytes_ = std::make_shared<std::string>(bytes); }
  // True if another FileData shares these bytes.
  bool shared() const { return bytes_ && bytes_.use_count() > 1; }

 private:
  std::shared_ptr<std::string> bytes_;
};

// kNullDevice: /dev/null, the one device (reads are at EOF, writes are taken and dropped).
// kFifo: a named pipe (mkfifo). It holds no bytes: what is written through it lives in the
// WASI layer's pipe buffer while the pipe is open (wasi_context.h).
enum class NodeType : uint8_t { kDirectory, kFile, kNullDevice, kFifo };

struct Node;
struct PackIndex;

// A directory's entries by name, sorted (readdir order): a std::map, except that the entries
// of a stdlib pack directory are made from the pack's index the first time any of them is
// looked at (PackTree::Parse makes only the root). Filling in happens once per directory and
// process, under a lock, and is invisible to readers: every accessor, const ones included,
// sees the full map. Read-only pack directories are never changed after that, so they stay
// shareable between threads.
class Children {
 public:
  using Map = std::map<std::string, std::shared_ptr<Node>, std::less<>>;
  using iterator = Map::iterator;
  using const_iterator = Map::const_iterator;

  Children() = default;
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;

  iterator begin() { return map().begin(); }
  iterator end() { return map().end(); }
  const_iterator begin() const { return map().begin(); }
  const_iterator end() const { return map().end(); }
  iterator find(std::string_view name) { return map().find(name); }
  const_iterator find(std::string_view name) const { return map().find(name); }
  size_t count(std::string_view name) const { return map().count(name); }
  const std::shared_ptr<Node>& at(std::string_view name) const {
    auto it = map().find(name);
    if (it == map().end()) throw std::out_of_range("no such directory entry");
    return it->second;
  }
  size_t size() const { return map().size(); }
  bool empty() const { return map().empty(); }
  template <typename... Args>
  std::pair<iterator, bool> emplace(Args&&... args) { return map().emplace(std::forward<Args>(args)...); }
  iterator erase(iterator it) { return map().erase(it); }

  // For pack.cc: `owner` (this map's node) is directory `index` of `pack`, its entries not
  // made yet. REQUIRES: called once, before the node is shared.
  void SetPackSource(Node* owner, std::shared_ptr<const PackIndex> pack, uint32_t index) {
    owner_ = owner;
    pack_ = std::move(pack);
    pack_dir_ = index;
    filled_.store(false, std::memory_order_relaxed);
  }

 private:
  Map& map() const {
    if (!filled_.load(std::memory_order_acquire)) Fill();
    return map_;
  }
  // Makes the entries from the pack (defined in pack.cc). May throw std::bad_alloc; then
  // nothing changed and the next access tries again.
  void Fill() const;

  mutable Map map_;
  mutable std::atomic<bool> filled_{true};
  Node* owner_ = nullptr;
  std::shared_ptr<const PackIndex> pack_;
  uint32_t pack_dir_ = 0;
};

// Bytes, nodes and files charged against a FileSystem's Limits. Shared by the FileSystem and
// its writable nodes so a node can give back its share when it is destroyed. `bytes` and
// `nodes` are charged for as long as a node exists; `files` counts the writable regular
// files that are linked into the tree (a file gives it back when unlinked or renamed over,
// even while still open).
struct QuotaUsage {
  uint64_t bytes = 0;
  uint64_t nodes = 0;
  uint64_t files = 0;
};

// Mount identifiers; reported to the guest as st_dev.
inline constexpr uint32_t kSyntheticMount = 1;  // "/", "/usr", ...: read-only, synthetic
inline constexpr uint32_t kStdlibMount = 2;     // /usr/local/lib/python3.11 (pack)
inline constexpr uint32_t kHomeMount = 3;       // /home/user (read-write)
inline constexpr uint32_t kTmpMount = 4;        // /tmp (read-write)
inline constexpr uint32_t kZoneinfoMount = 5;   // /usr/share/zoneinfo (a view of the pack's tzdata)

struct Node : std::enable_shared_from_this<Node> {
  Node(NodeType t, bool w, uint32_t mount, uint64_t inode)
      : type(t), writable(w), mount_id(mount), ino(inode), mode(t == NodeType::kDirectory ? 0755 : 0644) {}
  ~Node() {
    if (quota) {
      quota->bytes -= data.size() + xattrs.bytes;
      quota->nodes -= 1;
      if (counts_as_file()) quota->files -= 1;
    }
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  bool is_dir() const { return type == NodeType::kDirectory; }
  // Whether this node is charged to quota->files: a writable regular file still linked.
  bool counts_as_file() const { return quota && type == NodeType::kFile && linked; }
  uint64_t size() const { return writable ? data.size() : ro_data.size(); }
  std::string_view contents() const { return writable ? data.view() : ro_data; }

  const NodeType type;
  const bool writable;
  const uint32_t mount_id;
  const uint64_t ino;
  // True for the root directory of a mount (and "/"): cannot be removed or renamed.
  bool mount_root = false;
  // False once unlinked / removed; a removed directory accepts no new entries. Only
  // FileSystem::Detach clears it for a charged node (it gives back the file count).
  bool linked = true;
  // Containing directory; nullptr for "/", for a pack tree's root (the FileSystem knows
  // where it is mounted) and for removed nodes. Not owning: the parent owns us.
  Node* parent = nullptr;
  uint64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
  // POSIX permission bits (07777; the type is `type`). The sandbox's one user owns every
  // node: FileSystem checks the owner bits (0400 read, 0200 write) for the guest. Read-only
  // nodes keep their default (0644 files, 0755 directories).
  uint16_t mode;
  // Bytes in this node's absolute path ("/home/user" 10, "/" 0), so that the path-length rule
  // is checked without walking names. Kept for nodes of the writable mounts and their
  // ancestors; not meaningful for the stdlib pack.
  uint32_t path_bytes = 0;
  // Directories: entries by name, sorted (readdir order). A stdlib pack directory makes
  // its entries on first use.
  Children children;
  // Writable files: the bytes (size charged to `quota`), shared with copies of this node.
  FileData data;
  // Extended attributes (writable nodes only; their bytes charged to `quota` if it is set).
  Xattrs xattrs;
  // Read-only pack files: the bytes inside the pack buffer (not copied).
  std::string_view ro_data;
  // Non-null for writable nodes other than mount roots.
  std::shared_ptr<QuotaUsage> quota;
};

}  // namespace brig::vfs

#endif
