// brig::vfs::FileSystem: one sandbox's in-memory file tree. Never touches the host's files.
//
// Layout (fixed):
//   /                               synthetic, read-only; lists only: dev, home, tmp, usr
//   /usr, /usr/local, /usr/local/lib, /home    synthetic, read-only
//   /usr/local/lib/python3.11       the stdlib PackTree, read-only (shared, not copied)
//   /usr/share (synthetic), /usr/share/zoneinfo   the tz database PackTree (a Subtree of the
//                                   stdlib pack), read-only, shared; only when one is given
//   /home/user                      read-write workspace (the guest's working directory)
//   /tmp                            read-write
//   /dev (synthetic), /dev/null     the null device: reads at EOF, writes succeed and are
//                                   dropped, O_TRUNC does nothing; mode 0666
// Writes to read-only parts fail with kRoFs. There are no symbolic or hard links: Symlink
// and Link always fail (kPerm after the usual existence checks), ReadLink of an existing
// path fails with kInval. ".." never goes above "/". Renames stay within one mount (kXDev).
// The writable mounts share one set of Limits (bytes, regular files, nodes); a failed
// operation changes nothing.
//
// Thread-safety: a FileSystem is not thread-safe; one sandbox uses it at a time. The stdlib
// PackTree it mounts is immutable and may be shared by many FileSystems on many threads.
// NodeRefs handed out keep their node alive; they must not outlive the FileSystem.
#ifndef BRIG_VFS_FILE_SYSTEM_H_
#define BRIG_VFS_FILE_SYSTEM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vfs/error.h"
#include "vfs/limits.h"
#include "vfs/node.h"
#include "vfs/pack.h"
#include "vfs/result.h"

namespace brig::vfs {

using NodeRef = std::shared_ptr<Node>;

struct Stat {
  NodeType type;
  uint64_t dev;    // mount id (kStdlibMount, kHomeMount, ...)
  uint64_t ino;    // unique within dev
  uint64_t nlink;  // files: 1, or 0 once unlinked; directories: 2
  uint64_t size;   // files: bytes; directories: 0
  uint64_t atime_ns, mtime_ns, ctime_ns;
  uint32_t mode;   // permission bits (07777), without the type
};

struct DirEntry {
  std::string name;
  NodeType type;
  uint64_t ino;
};

struct OpenFlags {
  bool create = false;     // create a regular file if missing
  bool exclusive = false;  // with create: fail with kExist if it exists
  bool truncate = false;   // truncate an existing file to 0 (needs a writable file)
  bool directory = false;  // the target must be a directory (kNotDir)
  bool write = false;      // the caller will write: the file must be writable (kRoFs);
                           // a directory fails with kIsDir
  bool read = false;       // the caller will read (only checked against the mode bits)
  // Permission bits of a file this call creates (07777; the caller applied its umask).
  uint16_t mode = 0644;
};

class FileSystem {
 public:
  struct Options {
    Limits limits;
    // Mounted at /usr/local/lib/python3.11; null mounts an empty read-only directory.
    std::shared_ptr<const PackTree> stdlib;
    // Mounted at /usr/share/zoneinfo (the system's IANA tz directory); null: no /usr/share.
    // Its nodes must not be the stdlib's (a PackTree::Subtree is a separate tree), so that
    // ".." from its root leads to /usr/share.
    std::shared_ptr<const PackTree> zoneinfo;
  };

  explicit FileSystem(Options options);
  FileSystem() : FileSystem(Options{}) {}
  FileSystem(const FileSystem&) = delete;
  FileSystem& operator=(const FileSystem&) = delete;

  // ---- Guest-facing operations. `base` is the directory relative paths start from (a
  // path starting with '/' starts at the root). Paths are byte strings: a NUL byte fails
  // with kInval, too long with kNameTooLong, empty with kNoEnt. A trailing '/' requires a
  // directory.
  // Permissions: the guest is the owner of every node and not root, so as on Linux, opening
  // an existing file to read needs its 0400 bit and to write (or truncate) its 0200 bit, and
  // adding, removing or renaming entries of a directory needs the directory's 0200 bit, else
  // kAcces. (Search permission, the x bits, is not checked.) The host-side API below is not
  // subject to modes.

  const NodeRef& root() const { return root_; }

  // The node `path` names. Errors: kNoEnt, kNotDir, kNameTooLong, kInval.
  Result<NodeRef> Lookup(const NodeRef& base, std::string_view path) const;
  // Opens (and per `flags` creates / truncates) the node `path` names. Creating needs a
  // writable, existing directory (kRoFs, kNoEnt) and quota (kNoSpc: the file or node limit).
  Result<NodeRef> Open(const NodeRef& base, std::string_view path, const OpenFlags& flags);
  // The directory containing `node` ("/" for "/"). kNoEnt if `node` was removed.
  Result<NodeRef> Parent(const NodeRef& node) const;

  // kExist if present; kRoFs in read-only parts; kNoSpc over the node quota. `mode`: the new
  // directory's permission bits (07777).
  Error Mkdir(const NodeRef& base, std::string_view path, uint16_t mode = 0755);
  // kNotDir for a file, kNotEmpty, kBusy for a mount point, kInval for "." / "/".
  Error Rmdir(const NodeRef& base, std::string_view path);
  // kIsDir for a directory.
  Error Unlink(const NodeRef& base, std::string_view path);
  // POSIX rename: replaces an existing target (a file by a file, an empty directory by a
  // directory). kXDev across mounts, kInval moving a directory into its own subtree,
  // kBusy for mount points, kRoFs in read-only parts.
  Error Rename(const NodeRef& old_base, std::string_view old_path, const NodeRef& new_base,
               std::string_view new_path);
  // Hard links are not supported: after checking that the source exists and the target
  // does not (kNoEnt, kExist, kRoFs), fails with kPerm.
  Error Link(const NodeRef& old_base, std::string_view old_path, const NodeRef& new_base,
             std::string_view new_path);
  // Symbolic links are not supported: after checking the target name (kExist, kNoEnt,
  // kRoFs), fails with kPerm.
  Error Symlink(std::string_view target, const NodeRef& base, std::string_view path);
  // Nothing is a symlink: kInval if `path` exists, else the lookup error.
  Error ReadLink(const NodeRef& base, std::string_view path) const;

  // mkfifo: a named pipe at `path` with permission bits `mode` (07777; the caller applied its
  // umask). Errors as Mkdir, and kNoSpc over the node quota (a named pipe is not a file).
  Error MakeFifo(const NodeRef& base, std::string_view path, uint16_t mode);

  static Stat GetStat(const Node& node);
  // chmod: sets the permission bits to `mode` & 07777; ctime becomes now. kRoFs for
  // read-only nodes.
  Error SetMode(const NodeRef& node, uint32_t mode);
  // Sets the times given (others unchanged); ctime becomes now. kRoFs for read-only nodes.
  Error SetTimes(const NodeRef& node, std::optional<uint64_t> atime_ns, std::optional<uint64_t> mtime_ns);
  // ---- Extended attributes (xattrs.h says which names are kept and the limits). As on Linux:
  // the guest needs the node's 0400 bit to read a user.* attribute and its 0200 bit to set or
  // remove one; user.* attributes exist only on regular files and directories (a named pipe or
  // /dev/null: kNoData to read, kPerm to set). Read-only nodes have none (kRoFs to set).
  // The value of `name`: kNoData if it is not set, or the name's error (Xattrs::CheckName).
  Result<std::string_view> GetXattr(const NodeRef& node, std::string_view name) const;
  enum class XattrMode { kAny, kCreate, kReplace };
  // Sets `name` to `value`: kExist (kCreate, it is set), kNoData (kReplace, it is not),
  // kTooBig, kNoSpc (the node's allowance or the byte quota), kRoFs, kPerm, kAcces, or the
  // name's error. ctime becomes now. On failure nothing changed.
  Error SetXattr(const NodeRef& node, std::string_view name, std::string_view value, XattrMode mode);
  // kNoData if `name` is not set; otherwise as SetXattr.
  Error RemoveXattr(const NodeRef& node, std::string_view name);
  // The names set on `node`, in order.
  static std::vector<std::string_view> ListXattrs(const Node& node);

  // Copies up to out.size() bytes from `offset`; returns the count (0 at or past EOF).
  // REQUIRES: node is a file.
  static size_t Read(const Node& node, uint64_t offset, std::span<uint8_t> out);
  // Writes all of `in` at `offset`, zero-filling any gap; returns in.size(). kFBig past the
  // file size limit (also for offsets near 2^64), kNoSpc over the byte quota, kRoFs,
  // kIsDir. On failure the file is unchanged.
  Result<uint64_t> Write(const NodeRef& node, uint64_t offset, std::span<const uint8_t> in);
  // Sets the size (zero-fills growth). Same errors as Write.
  Error Truncate(const NodeRef& node, uint64_t size);
  // Grows the file to at least offset + len. Same errors as Write.
  Error Allocate(const NodeRef& node, uint64_t offset, uint64_t len);
  // Entries of a directory, sorted by name, without "." and "..". kNotDir.
  Result<std::vector<DirEntry>> ReadDir(const NodeRef& dir) const;

  // ---- Host-side API (for the sandbox owner, not the guest). Paths are absolute
  // (kInval otherwise); the same limits and read-only rules apply.

  // The contents of a file, or nullopt if `path` is missing, a directory or a named pipe.
  std::optional<std::string> ReadFile(std::string_view path) const;
  // Creates or replaces a file, creating missing parent directories. On kNoSpc / kFBig the
  // existing file keeps its old contents. kInval for a named pipe.
  Error WriteFile(std::string_view path, std::string_view bytes);
  // mkdir -p. kExist if a component is a file.
  Error MakeDirs(std::string_view path);
  // A directory's entries, or nullopt if `path` is missing or not a directory.
  std::optional<std::vector<DirEntry>> List(std::string_view path) const;
  Result<Stat> StatPath(std::string_view path) const;
  // Removes a file or an empty directory.
  Error Remove(std::string_view path);
  // A named pipe at `path`, with missing parent directories (as MakeDirs); kExist if
  // anything is there.
  Error MakeFifoAt(std::string_view path, uint16_t mode);
  // SetXattr (XattrMode::kAny) on the node at `path`, without the guest's permission checks.
  Error SetXattrAt(std::string_view path, std::string_view name, std::string_view value);

  // ---- Copies (checkpoints, forks). A copy has the same tree, inode numbers, times and
  // quota use; file contents are shared copy-on-write (FileData), so a copy costs its nodes,
  // not its bytes; the stdlib pack is shared as ever. Nodes map from this file system's to the
  // copy's, for whoever holds nodes (open descriptors).
  using NodeMap = std::unordered_map<const Node*, NodeRef>;
  std::unique_ptr<FileSystem> Clone(NodeMap* map) const;
  // In a copy: the node `map` says `node` became; for a node of the source no longer in its
  // tree (removed while open), a copy of it, added to `map`; stdlib nodes are themselves.
  NodeRef CopyOf(const NodeRef& node, NodeMap* map);

  // Counts every change (a new value after any mutation): lets an owner notice changes made
  // behind its back.
  uint64_t generation() const { return generation_; }
  // Where file times come from (default: the wall clock, NowNs). For recording and replaying
  // executions exactly.
  void set_clock(std::function<uint64_t()> clock);

  const Limits& limits() const { return limits_; }
  // Bytes, nodes and (linked) regular files currently charged to the writable mounts.
  uint64_t bytes_used() const { return quota_->bytes; }
  uint64_t nodes_used() const { return quota_->nodes; }
  uint64_t files_used() const { return quota_->files; }

 private:
  struct Walked;
  Result<Walked> WalkToParent(const NodeRef& base, std::string_view path) const;
  Node* ParentOf(const Node* n) const;
  uint32_t Depth(const Node* n) const;
  // Whether `name` may be made in `dir` (names/path_rules.h): kNameTooLong, kIlSeq (not
  // UTF-8), kInval (a control character); `below` is the longest path under the node, for a
  // moved directory, so that every new absolute path stays within max_path_length.
  Error CheckNewName(const Node* dir, std::string_view name, uint32_t below) const;
  // kNoSpc when `type` would pass the node quota, or (files) the file quota.
  Error CheckCanCreate(const Node* dir, std::string_view name, NodeType type) const;
  // Takes `n` out of the tree's bookkeeping (linked = false, no parent) and gives back its
  // file count. The caller erases the directory entry.
  void Detach(Node* n);
  NodeRef NewNode(NodeType type, Node* dir, std::string_view name);
  Error Resize(Node* node, uint64_t size);
  Error SetContents(Node* node, std::string_view bytes);
  // kAcces when the guest may not change the entries of `dir` (its 0200 bit), unless the
  // host is the caller (as_host_).
  Error CheckDirWrite(const Node* dir) const;
  // Whether attribute `name` of `node` may be set or removed: kRoFs, kPerm (a user. one on a
  // node that holds none), kAcces (its 0200 bit, unless as_host_).
  Error CheckXattrChange(const Node& node, std::string_view name) const;
  // The time of a change being made now (the clock); counts the change in generation_.
  uint64_t ChangeTime();
  NodeRef CopyNode(const Node& src, Node* parent, NodeMap* map);
  void CopyInto(const Node& src, Node* dst, NodeMap* map);

  Limits limits_;
  std::shared_ptr<const PackTree> stdlib_tree_;
  std::shared_ptr<const PackTree> zoneinfo_tree_;
  std::shared_ptr<QuotaUsage> quota_;
  uint64_t next_ino_ = 1;
  NodeRef root_;
  NodeRef stdlib_root_;    // pack root (parent == nullptr) or an empty read-only dir
  Node* stdlib_parent_;    // /usr/local/lib
  NodeRef zoneinfo_root_;  // the tz tree's root (parent == nullptr), or null
  Node* zoneinfo_parent_ = nullptr;  // /usr/share
  uint64_t generation_ = 0;
  bool as_host_ = false;  // inside a host-side call: modes are not checked
  std::function<uint64_t()> clock_;  // empty: NowNs
};

// Current wall-clock time in ns since the epoch (used for file times).
uint64_t NowNs();

}  // namespace brig::vfs

#endif
