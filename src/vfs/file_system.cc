#include "vfs/file_system.h"

#include <algorithm>
#include <ctime>
#include <cstring>
#include <functional>

#include "names/path_rules.h"

namespace brig::vfs {

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

const char* ErrorName(Error e) {
  switch (e) {
    case Error::kOk: return "OK";
    case Error::kNoEnt: return "ENOENT";
    case Error::kExist: return "EEXIST";
    case Error::kNotDir: return "ENOTDIR";
    case Error::kIsDir: return "EISDIR";
    case Error::kNotEmpty: return "ENOTEMPTY";
    case Error::kRoFs: return "EROFS";
    case Error::kXDev: return "EXDEV";
    case Error::kInval: return "EINVAL";
    case Error::kNoSpc: return "ENOSPC";
    case Error::kFBig: return "EFBIG";
    case Error::kNameTooLong: return "ENAMETOOLONG";
    case Error::kPerm: return "EPERM";
    case Error::kBusy: return "EBUSY";
    case Error::kBadF: return "EBADF";
    case Error::kNoMem: return "ENOMEM";
    case Error::kIlSeq: return "EILSEQ";
    case Error::kAcces: return "EACCES";
    case Error::kNoData: return "ENODATA";
    case Error::kRange: return "ERANGE";
    case Error::kTooBig: return "E2BIG";
    case Error::kNotSup: return "EOPNOTSUPP";
    case Error::kNxio: return "ENXIO";
  }
  return "E?";
}

// The result of walking all but the last component of a path.
struct FileSystem::Walked {
  // The directory holding `name`; when `name` is empty, the node the path names itself
  // ("/", ".", "..", "a/..").
  NodeRef dir;
  std::string_view name;
  bool trailing_slash = false;
};

FileSystem::FileSystem(Options options)
    : limits_(options.limits),
      stdlib_tree_(std::move(options.stdlib)),
      zoneinfo_tree_(std::move(options.zoneinfo)),
      quota_(std::make_shared<QuotaUsage>()) {
  const uint64_t now = NowNs();
  auto dir = [&](Node* parent, const char* name, bool writable, uint32_t mount) {
    auto n = std::make_shared<Node>(NodeType::kDirectory, writable, mount, next_ino_++);
    n->atime_ns = n->mtime_ns = n->ctime_ns = now;
    n->mount_root = true;  // nothing synthetic and no mount root can be removed or renamed
    if (parent) {
      n->parent = parent;
      n->path_bytes = parent->path_bytes + 1 + static_cast<uint32_t>(std::strlen(name));
      parent->children.emplace(name, n);
    }
    return n;
  };
  root_ = dir(nullptr, "", false, kSyntheticMount);
  auto home = dir(root_.get(), "home", false, kSyntheticMount);
  dir(home.get(), "user", true, kHomeMount);
  dir(root_.get(), "tmp", true, kTmpMount)->mode = 01777;  // as on Linux: sticky, anyone writes
  auto usr = dir(root_.get(), "usr", false, kSyntheticMount);
  auto local = dir(usr.get(), "local", false, kSyntheticMount);
  auto lib = dir(local.get(), "lib", false, kSyntheticMount);
  stdlib_parent_ = lib.get();
  if (stdlib_tree_) {
    stdlib_root_ = stdlib_tree_->root();  // shared; its parent stays nullptr (see ParentOf)
    lib->children.emplace("python3.11", stdlib_root_);
  } else {
    stdlib_root_ = dir(nullptr, "", false, kStdlibMount);
    lib->children.emplace("python3.11", stdlib_root_);
  }
  // Made last, so that the inode numbers above are those of a file system without it.
  if (zoneinfo_tree_) {
    auto share = dir(usr.get(), "share", false, kSyntheticMount);
    zoneinfo_parent_ = share.get();
    zoneinfo_root_ = zoneinfo_tree_->root();  // shared; its parent stays nullptr (see ParentOf)
    share->children.emplace("zoneinfo", zoneinfo_root_);
  }
  // Made after everything else, for the same reason: /dev holds only null (as on Linux, a
  // character device anyone may read and write: 0666).
  auto dev = dir(root_.get(), "dev", false, kSyntheticMount);
  auto null = std::make_shared<Node>(NodeType::kNullDevice, false, kSyntheticMount, next_ino_++);
  null->atime_ns = null->mtime_ns = null->ctime_ns = now;
  null->mount_root = true;  // cannot be removed or renamed
  null->mode = 0666;
  null->parent = dev.get();
  null->path_bytes = dev->path_bytes + 5;
  dev->children.emplace("null", null);
}

Node* FileSystem::ParentOf(const Node* n) const {
  if (n == root_.get()) return root_.get();
  if (n == stdlib_root_.get()) return stdlib_parent_;
  if (zoneinfo_root_ && n == zoneinfo_root_.get()) return zoneinfo_parent_;
  return n->parent;  // nullptr once removed
}

uint32_t FileSystem::Depth(const Node* n) const {
  uint32_t d = 0;
  while (n && n != root_.get()) {
    n = ParentOf(n);
    ++d;
  }
  return d;
}

Result<FileSystem::Walked> FileSystem::WalkToParent(const NodeRef& base, std::string_view path) const {
  if (path.empty()) return Error::kNoEnt;
  if (path.size() > limits_.max_path_length) return Error::kNameTooLong;
  if (path.find('\0') != std::string_view::npos) return Error::kInval;
  Node* cur = path.front() == '/' ? root_.get() : base.get();
  if (!cur) return Error::kNoEnt;
  if (!cur->is_dir()) return Error::kNotDir;

  Walked w;
  w.trailing_slash = path.back() == '/';
  size_t pos = 0;
  std::string_view pending;  // the component seen last, not yet stepped into
  bool have_pending = false;
  auto step = [&](std::string_view name) -> Error {
    if (name == ".") return Error::kOk;
    if (name == "..") {
      Node* p = ParentOf(cur);  // "/" is its own parent: ".." never leaves the tree
      if (!p) return Error::kNoEnt;
      cur = p;
      return Error::kOk;
    }
    auto it = cur->children.find(name);
    if (it == cur->children.end()) return Error::kNoEnt;
    if (!it->second->is_dir()) return Error::kNotDir;
    cur = it->second.get();
    return Error::kOk;
  };
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view name = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (name.empty()) continue;
    if (name.size() > limits_.max_name_length) return Error::kNameTooLong;
    if (have_pending) {
      if (Error e = step(pending); e != Error::kOk) return e;
    }
    pending = name;
    have_pending = true;
  }
  if (have_pending && (pending == "." || pending == "..")) {
    if (Error e = step(pending); e != Error::kOk) return e;
    have_pending = false;
  }
  if (!cur->linked) return Error::kNoEnt;
  w.dir = cur->shared_from_this();
  if (have_pending) w.name = pending;
  return w;
}

Result<NodeRef> FileSystem::Lookup(const NodeRef& base, std::string_view path) const {
  auto w = WalkToParent(base, path);
  if (!w) return w.error();
  if (w->name.empty()) return w->dir;
  auto it = w->dir->children.find(w->name);
  if (it == w->dir->children.end()) return Error::kNoEnt;
  if (w->trailing_slash && !it->second->is_dir()) return Error::kNotDir;
  return it->second;
}

Result<NodeRef> FileSystem::Parent(const NodeRef& node) const {
  Node* p = ParentOf(node.get());
  if (!p) return Error::kNoEnt;
  return p->shared_from_this();
}

Error FileSystem::CheckNewName(const Node* dir, std::string_view name, uint32_t below) const {
  switch (names::CheckName(name)) {
    case names::NameFault::kNone: break;
    case names::NameFault::kTooLong: return Error::kNameTooLong;
    case names::NameFault::kNotUtf8: return Error::kIlSeq;
    case names::NameFault::kControl: return Error::kInval;
    case names::NameFault::kEmpty:
    case names::NameFault::kDot: return Error::kInval;  // the walk never hands these out
  }
  if (name.size() > limits_.max_name_length) return Error::kNameTooLong;
  if (uint64_t{dir->path_bytes} + 1 + name.size() + below > limits_.max_path_length) return Error::kNameTooLong;
  return Error::kOk;
}

Error FileSystem::CheckCanCreate(const Node* dir, std::string_view name, NodeType type) const {
  if (!dir->writable) return Error::kRoFs;
  if (!dir->linked) return Error::kNoEnt;
  if (Error e = CheckNewName(dir, name, 0); e != Error::kOk) return e;
  if (Depth(dir) + 1 > limits_.max_depth) return Error::kNameTooLong;
  if (quota_->nodes >= limits_.max_nodes) return Error::kNoSpc;
  if (type == NodeType::kFile && quota_->files >= limits_.max_files) return Error::kNoSpc;
  return Error::kOk;
}

Error FileSystem::CheckDirWrite(const Node* dir) const {
  return (as_host_ || (dir->mode & 0200)) ? Error::kOk : Error::kAcces;
}

void FileSystem::Detach(Node* n) {
  if (n->counts_as_file()) --quota_->files;
  n->linked = false;
  n->parent = nullptr;
}

NodeRef FileSystem::NewNode(NodeType type, Node* dir, std::string_view name) {
  auto n = std::make_shared<Node>(type, /*writable=*/true, dir->mount_id, next_ino_++);
  const uint64_t now = ChangeTime();
  n->atime_ns = n->mtime_ns = n->ctime_ns = now;
  n->parent = dir;
  n->path_bytes = dir->path_bytes + 1 + static_cast<uint32_t>(name.size());
  dir->children.emplace(std::string(name), n);  // may throw: nothing charged yet
  n->quota = quota_;
  ++quota_->nodes;
  if (n->counts_as_file()) ++quota_->files;
  dir->mtime_ns = dir->ctime_ns = now;
  return n;
}

Result<NodeRef> FileSystem::Open(const NodeRef& base, std::string_view path, const OpenFlags& flags) {
  auto w = WalkToParent(base, path);
  if (!w) return w.error();
  NodeRef node;
  if (w->name.empty()) {
    if (flags.create && flags.exclusive) return Error::kExist;
    node = w->dir;
  } else {
    auto it = w->dir->children.find(w->name);
    if (it == w->dir->children.end()) {
      if (!flags.create) return Error::kNoEnt;
      if (w->trailing_slash) return Error::kIsDir;
      if (flags.directory) return Error::kInval;
      if (Error e = CheckCanCreate(w->dir.get(), w->name, NodeType::kFile); e != Error::kOk) return e;
      if (Error e = CheckDirWrite(w->dir.get()); e != Error::kOk) return e;
      NodeRef made = NewNode(NodeType::kFile, w->dir.get(), w->name);
      made->mode = flags.mode & 07777;  // the new file is open as asked, whatever its mode
      return made;
    }
    if (flags.create && flags.exclusive) return Error::kExist;
    node = it->second;
  }
  if (flags.read && !as_host_ && !(node->mode & 0400)) return Error::kAcces;
  if (node->is_dir()) {
    if (flags.write || flags.truncate) return Error::kIsDir;
    return node;
  }
  if (w->trailing_slash || flags.directory) return Error::kNotDir;
  if (node->type == NodeType::kNullDevice) return node;  // O_TRUNC and writes: nothing to change
  if (node->type == NodeType::kFifo) {
    // O_TRUNC does nothing to a named pipe (Linux ignores it); the WASI layer opens its ends.
    if (flags.write && !as_host_ && !(node->mode & 0200)) return Error::kAcces;
    return node;
  }
  if (flags.write || flags.truncate) {
    if (!node->writable) return Error::kRoFs;
    if (!as_host_ && !(node->mode & 0200)) return Error::kAcces;
    if (flags.truncate) {
      if (Error e = Resize(node.get(), 0); e != Error::kOk) return e;
    }
  }
  return node;
}

Error FileSystem::Mkdir(const NodeRef& base, std::string_view path, uint16_t mode) {
  auto w = WalkToParent(base, path);
  if (!w) return w.error();
  if (w->name.empty() || w->dir->children.count(w->name)) return Error::kExist;
  if (Error e = CheckCanCreate(w->dir.get(), w->name, NodeType::kDirectory); e != Error::kOk) return e;
  if (Error e = CheckDirWrite(w->dir.get()); e != Error::kOk) return e;
  NewNode(NodeType::kDirectory, w->dir.get(), w->name)->mode = mode & 07777;
  return Error::kOk;
}

Error FileSystem::MakeFifo(const NodeRef& base, std::string_view path, uint16_t mode) {
  auto w = WalkToParent(base, path);
  if (!w) return w.error();
  if (w->name.empty() || w->dir->children.count(w->name)) return Error::kExist;
  if (w->trailing_slash) return Error::kNoEnt;  // Linux: mkfifo("p/") of a missing p
  if (Error e = CheckCanCreate(w->dir.get(), w->name, NodeType::kFifo); e != Error::kOk) return e;
  if (Error e = CheckDirWrite(w->dir.get()); e != Error::kOk) return e;
  NewNode(NodeType::kFifo, w->dir.get(), w->name)->mode = mode & 07777;
  return Error::kOk;
}

Error FileSystem::Rmdir(const NodeRef& base, std::string_view path) {
  auto w = WalkToParent(base, path);
  if (!w) return w.error();
  if (w->name.empty()) return w->dir->mount_root ? Error::kBusy : Error::kInval;
  auto it = w->dir->children.find(w->name);
  if (it == w->dir->children.end()) return Error::kNoEnt;
  Node* n = it->second.get();
  if (!n->is_dir()) return Error::kNotDir;
  if (!w->dir->writable) return Error::kRoFs;
  if (n->mount_root) return Error::kBusy;
  if (Error e = CheckDirWrite(w->dir.get()); e != Error::kOk) return e;
  if (!n->children.empty()) return Error::kNotEmpty;
  Detach(n);
  w->dir->children.erase(it);
  w->dir->mtime_ns = w->dir->ctime_ns = ChangeTime();
  return Error::kOk;
}

Error FileSystem::Unlink(const NodeRef& base, std::string_view path) {
  auto w = WalkToParent(base, path);
  if (!w) return w.error();
  if (w->name.empty()) return Error::kIsDir;
  auto it = w->dir->children.find(w->name);
  if (it == w->dir->children.end()) return Error::kNoEnt;
  Node* n = it->second.get();
  if (n->is_dir()) return Error::kIsDir;
  if (w->trailing_slash) return Error::kNotDir;
  if (!w->dir->writable) return Error::kRoFs;
  if (Error e = CheckDirWrite(w->dir.get()); e != Error::kOk) return e;
  const uint64_t now = ChangeTime();
  Detach(n);  // gives back the file count at once, even if the file stays open
  n->ctime_ns = now;
  // May destroy the node (n dangles after this); while open elsewhere it lives on and its
  // bytes stay charged.
  w->dir->children.erase(it);
  w->dir->mtime_ns = w->dir->ctime_ns = now;
  return Error::kOk;
}

Error FileSystem::Rename(const NodeRef& old_base, std::string_view old_path, const NodeRef& new_base,
                         std::string_view new_path) {
  auto from = WalkToParent(old_base, old_path);
  if (!from) return from.error();
  auto to = WalkToParent(new_base, new_path);
  if (!to) return to.error();
  if (from->name.empty()) return from->dir->mount_root ? Error::kBusy : Error::kInval;
  auto src_it = from->dir->children.find(from->name);
  if (src_it == from->dir->children.end()) return Error::kNoEnt;
  NodeRef src = src_it->second;
  if (from->trailing_slash && !src->is_dir()) return Error::kNotDir;
  if (to->name.empty()) return to->dir->mount_root ? Error::kBusy : Error::kInval;
  if (!from->dir->writable || !to->dir->writable) return Error::kRoFs;
  if (src->mount_root) return Error::kBusy;
  if (from->dir->mount_id != to->dir->mount_id) return Error::kXDev;
  if (!to->dir->linked) return Error::kNoEnt;
  if (Error e = CheckDirWrite(from->dir.get()); e != Error::kOk) return e;
  if (Error e = CheckDirWrite(to->dir.get()); e != Error::kOk) return e;
  // The longest path below the moved node, relative to it: the new paths must fit too.
  // One walk of a moved directory's subtree: its height (directories below it) for the
  // depth limit, and the longest path below it, relative to it, for the path-length limit.
  uint32_t below = 0, height = 0;
  if (src->is_dir()) {
    std::function<void(const Node*, uint32_t)> visit = [&](const Node* n, uint32_t level) {
      for (const auto& [name, c] : n->children) {
        below = std::max(below, c->path_bytes - src->path_bytes);
        if (c->is_dir()) {
          height = std::max(height, level + 1);
          visit(c.get(), level + 1);
        }
      }
    };
    visit(src.get(), 0);
  }
  if (Error e = CheckNewName(to->dir.get(), to->name, below); e != Error::kOk) return e;

  auto dst_it = to->dir->children.find(to->name);
  NodeRef dst = dst_it == to->dir->children.end() ? nullptr : dst_it->second;
  if (dst == src) return Error::kOk;  // same node: POSIX says do nothing
  if (src->is_dir()) {
    // The target directory must not lie inside the moved directory.
    for (Node* a = to->dir.get(); a && a != root_.get(); a = ParentOf(a)) {
      if (a == src.get()) return Error::kInval;
    }
    if (dst && !dst->is_dir()) return Error::kNotDir;
    if (dst && !dst->children.empty()) return Error::kNotEmpty;
    // The moved subtree must stay within the depth limit.
    if (Depth(to->dir.get()) + 1 + height > limits_.max_depth) return Error::kNameTooLong;
  } else {
    if (dst && dst->is_dir()) return Error::kIsDir;
    if (to->trailing_slash) return Error::kNotDir;
    if (Depth(to->dir.get()) + 1 > limits_.max_depth) return Error::kNameTooLong;
  }
  if (dst && dst->mount_root) return Error::kBusy;

  // Insert first (the only step that can throw), then detach: never half-done.
  if (dst) {
    Detach(dst.get());  // a file renamed over gives back its file count
    dst_it->second = src;
  } else {
    to->dir->children.emplace(std::string(to->name), src);
  }
  // src_it is still valid: map insertion does not invalidate iterators, and when the
  // target replaced an entry it was a different one.
  from->dir->children.erase(src_it);
  src->parent = to->dir.get();
  const uint32_t old_bytes = src->path_bytes;
  src->path_bytes = to->dir->path_bytes + 1 + static_cast<uint32_t>(to->name.size());
  if (src->is_dir() && src->path_bytes != old_bytes) {
    std::function<void(Node*)> shift = [&](Node* n) {
      for (auto& [name, c] : n->children) {
        c->path_bytes = c->path_bytes - old_bytes + src->path_bytes;
        if (c->is_dir()) shift(c.get());
      }
    };
    shift(src.get());
  }
  const uint64_t now = ChangeTime();
  src->ctime_ns = now;
  from->dir->mtime_ns = from->dir->ctime_ns = now;
  to->dir->mtime_ns = to->dir->ctime_ns = now;
  return Error::kOk;
}

Error FileSystem::Link(const NodeRef& old_base, std::string_view old_path, const NodeRef& new_base,
                       std::string_view new_path) {
  auto src = Lookup(old_base, old_path);
  if (!src) return src.error();
  auto to = WalkToParent(new_base, new_path);
  if (!to) return to.error();
  if (to->name.empty() || to->dir->children.count(to->name)) return Error::kExist;
  if (!to->dir->writable) return Error::kRoFs;
  return Error::kPerm;
}

Error FileSystem::Symlink(std::string_view target, const NodeRef& base, std::string_view path) {
  if (target.find('\0') != std::string_view::npos) return Error::kInval;
  auto to = WalkToParent(base, path);
  if (!to) return to.error();
  if (to->name.empty() || to->dir->children.count(to->name)) return Error::kExist;
  if (!to->dir->writable) return Error::kRoFs;
  return Error::kPerm;
}

Error FileSystem::ReadLink(const NodeRef& base, std::string_view path) const {
  auto n = Lookup(base, path);
  return n ? Error::kInval : n.error();
}

Stat FileSystem::GetStat(const Node& n) {
  Stat s{};
  s.type = n.type;
  s.dev = n.mount_id;
  s.ino = n.ino;
  s.nlink = n.is_dir() ? 2 : (n.linked ? 1 : 0);
  s.size = n.is_dir() ? 0 : n.size();
  s.atime_ns = n.atime_ns;
  s.mtime_ns = n.mtime_ns;
  s.ctime_ns = n.ctime_ns;
  s.mode = n.mode;
  return s;
}

Error FileSystem::SetMode(const NodeRef& node, uint32_t mode) {
  if (!node->writable) return Error::kRoFs;
  node->mode = static_cast<uint16_t>(mode & 07777);
  node->ctime_ns = ChangeTime();
  return Error::kOk;
}

Error FileSystem::SetTimes(const NodeRef& node, std::optional<uint64_t> atime_ns,
                           std::optional<uint64_t> mtime_ns) {
  if (!node->writable) return Error::kRoFs;
  if (atime_ns) node->atime_ns = *atime_ns;
  if (mtime_ns) node->mtime_ns = *mtime_ns;
  node->ctime_ns = ChangeTime();
  return Error::kOk;
}

size_t FileSystem::Read(const Node& node, uint64_t offset, std::span<uint8_t> out) {
  std::string_view c = node.contents();
  if (offset >= c.size()) return 0;
  size_t n = std::min<uint64_t>(out.size(), c.size() - offset);
  if (n) std::memcpy(out.data(), c.data() + offset, n);  // out.data() may be null when empty
  return n;
}

// ---- Extended attributes.

namespace {

// user.* attributes live on regular files and directories only (Linux's rule).
bool HoldsUserXattrs(const Node& node) { return node.type == NodeType::kFile || node.type == NodeType::kDirectory; }

bool IsUserXattr(std::string_view name) { return name.starts_with("user."); }

}  // namespace

Result<std::string_view> FileSystem::GetXattr(const NodeRef& node, std::string_view name) const {
  if (Error e = Xattrs::CheckName(name); e != Error::kOk) return e;
  if (IsUserXattr(name)) {
    if (!HoldsUserXattrs(*node)) return Error::kNoData;
    if (!as_host_ && !(node->mode & 0400)) return Error::kAcces;
  }
  auto it = node->xattrs.values.find(name);
  if (it == node->xattrs.values.end()) return Error::kNoData;
  return std::string_view(it->second);
}

Error FileSystem::CheckXattrChange(const Node& node, std::string_view name) const {
  if (!node.writable) return Error::kRoFs;
  if (IsUserXattr(name)) {
    if (!HoldsUserXattrs(node)) return Error::kPerm;
    if (!as_host_ && !(node.mode & 0200)) return Error::kAcces;
  }
  return Error::kOk;
}

Error FileSystem::SetXattr(const NodeRef& node, std::string_view name, std::string_view value, XattrMode mode) {
  if (Error e = Xattrs::CheckName(name); e != Error::kOk) return e;
  if (value.size() > Xattrs::kMaxValueBytes) return Error::kTooBig;
  if (Error e = CheckXattrChange(*node, name); e != Error::kOk) return e;
  Xattrs& x = node->xattrs;
  auto it = x.values.find(name);
  if (mode == XattrMode::kCreate && it != x.values.end()) return Error::kExist;
  if (mode == XattrMode::kReplace && it == x.values.end()) return Error::kNoData;
  const uint64_t old_bytes = it == x.values.end() ? 0 : name.size() + it->second.size();
  const uint64_t new_bytes = name.size() + value.size();
  if (x.bytes - old_bytes + new_bytes > Xattrs::kMaxNodeBytes) return Error::kNoSpc;
  if (node->quota && new_bytes > old_bytes &&
      new_bytes - old_bytes > limits_.max_total_bytes - std::min(quota_->bytes, limits_.max_total_bytes))
    return Error::kNoSpc;
  if (it == x.values.end()) {
    x.values.emplace(std::string(name), std::string(value));  // may throw: nothing charged yet
  } else {
    it->second.assign(value);
  }
  x.bytes = x.bytes - old_bytes + new_bytes;
  if (node->quota) node->quota->bytes = node->quota->bytes - old_bytes + new_bytes;
  node->ctime_ns = ChangeTime();
  return Error::kOk;
}

Error FileSystem::RemoveXattr(const NodeRef& node, std::string_view name) {
  if (Error e = Xattrs::CheckName(name); e != Error::kOk) return e;
  if (Error e = CheckXattrChange(*node, name); e != Error::kOk) return e;
  Xattrs& x = node->xattrs;
  auto it = x.values.find(name);
  if (it == x.values.end()) return Error::kNoData;
  const uint64_t bytes = it->first.size() + it->second.size();
  x.values.erase(it);
  x.bytes -= bytes;
  if (node->quota) node->quota->bytes -= bytes;
  node->ctime_ns = ChangeTime();
  return Error::kOk;
}

std::vector<std::string_view> FileSystem::ListXattrs(const Node& node) {
  std::vector<std::string_view> names;
  names.reserve(node.xattrs.values.size());
  for (const auto& [name, value] : node.xattrs.values) names.push_back(name);
  return names;
}

// Charges and applies a size change. The only allocation happens before anything is
// charged, so a throw (bad_alloc) leaves node and quota as they were.
Error FileSystem::Resize(Node* node, uint64_t size) {
  if (node->is_dir()) return Error::kIsDir;
  if (node->type == NodeType::kFifo) return Error::kInval;  // no bytes of its own
  if (!node->writable) return Error::kRoFs;
  if (size > limits_.max_file_size) return Error::kFBig;
  const uint64_t old = node->data.size();
  if (size > old && size - old > limits_.max_total_bytes - std::min(quota_->bytes, limits_.max_total_bytes))
    return Error::kNoSpc;
  std::string& bytes = node->data.Mutable();
  bytes.resize(size);
  if (size < old / 2) bytes.shrink_to_fit();
  quota_->bytes = quota_->bytes - old + size;
  node->mtime_ns = node->ctime_ns = ChangeTime();
  return Error::kOk;
}

Result<uint64_t> FileSystem::Write(const NodeRef& node, uint64_t offset, std::span<const uint8_t> in) {
  if (node->type == NodeType::kNullDevice) return in.size();  // taken and dropped
  if (node->is_dir()) return Error::kIsDir;
  if (node->type == NodeType::kFifo) return Error::kInval;  // written through the WASI layer's pipe
  if (!node->writable) return Error::kRoFs;
  if (in.empty()) return uint64_t{0};
  if (offset > limits_.max_file_size || in.size() > limits_.max_file_size - offset) return Error::kFBig;
  const uint64_t end = offset + in.size();
  if (end > node->data.size()) {
    if (Error e = Resize(node.get(), end); e != Error::kOk) return e;
  }
  std::memcpy(node->data.Mutable().data() + offset, in.data(), in.size());
  node->mtime_ns = node->ctime_ns = ChangeTime();
  return static_cast<uint64_t>(in.size());
}

Error FileSystem::Truncate(const NodeRef& node, uint64_t size) { return Resize(node.get(), size); }

Error FileSystem::Allocate(const NodeRef& node, uint64_t offset, uint64_t len) {
  if (node->is_dir()) return Error::kIsDir;
  if (node->type == NodeType::kFifo) return Error::kInval;
  if (!node->writable) return Error::kRoFs;
  if (offset > limits_.max_file_size || len > limits_.max_file_size - offset) return Error::kFBig;
  if (offset + len <= node->data.size()) return Error::kOk;
  return Resize(node.get(), offset + len);
}

Result<std::vector<DirEntry>> FileSystem::ReadDir(const NodeRef& dir) const {
  if (!dir->is_dir()) return Error::kNotDir;
  std::vector<DirEntry> out;
  out.reserve(dir->children.size());
  for (const auto& [name, n] : dir->children) out.push_back({name, n->type, n->ino});
  return out;
}

// ---- Host-side API.

std::optional<std::string> FileSystem::ReadFile(std::string_view path) const {
  if (path.empty() || path.front() != '/') return std::nullopt;
  auto n = Lookup(root_, path);
  if (!n || n.value()->is_dir() || n.value()->type == NodeType::kFifo) return std::nullopt;
  return std::string(n.value()->contents());
}

Error FileSystem::SetContents(Node* node, std::string_view bytes) {
  if (bytes.size() > limits_.max_file_size) return Error::kFBig;
  const uint64_t old = node->data.size();
  if (bytes.size() > old &&
      bytes.size() - old > limits_.max_total_bytes - std::min(quota_->bytes, limits_.max_total_bytes))
    return Error::kNoSpc;
  node->data.Assign(bytes);
  quota_->bytes = quota_->bytes - old + bytes.size();
  node->mtime_ns = node->ctime_ns = ChangeTime();
  return Error::kOk;
}

namespace {

// Marks a host-side call for its duration: modes are the guest's rules, not the host's.
class HostCall {
 public:
  explicit HostCall(bool* flag) : flag_(flag), was_(*flag) { *flag = true; }
  ~HostCall() { *flag_ = was_; }
  HostCall(const HostCall&) = delete;
  HostCall& operator=(const HostCall&) = delete;

 private:
  bool* flag_;
  bool was_;
};

// Removes, deepest first, the directories a failed MakeDirs or WriteFile made: a failed
// operation changes nothing.
void RemoveMade(FileSystem& fs, const std::vector<std::string_view>& made) {
  for (auto it = made.rbegin(); it != made.rend(); ++it) (void)fs.Rmdir(fs.root(), *it);
}

// mkdir -p; *made gets the directories it made, shallowest first.
Error MakeParents(FileSystem& fs, std::string_view path, std::vector<std::string_view>* made) {
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view prefix = path.substr(0, slash);
    pos = slash + 1;
    if (prefix.empty() || prefix.back() == '/') continue;
    auto n = fs.Lookup(fs.root(), prefix);
    if (n) {
      if (!n.value()->is_dir()) return Error::kExist;
      continue;
    }
    if (n.error() != Error::kNoEnt) return n.error();
    if (Error e = fs.Mkdir(fs.root(), prefix); e != Error::kOk) return e;
    made->push_back(prefix);
  }
  return Error::kOk;
}

}  // namespace

Error FileSystem::MakeDirs(std::string_view path) {
  HostCall host(&as_host_);
  if (path.empty() || path.front() != '/') return Error::kInval;
  if (path.size() > limits_.max_path_length) return Error::kNameTooLong;
  std::vector<std::string_view> made;
  Error e = MakeParents(*this, path, &made);
  if (e != Error::kOk) RemoveMade(*this, made);
  return e;
}

Error FileSystem::WriteFile(std::string_view path, std::string_view bytes) {
  HostCall host(&as_host_);
  if (path.empty() || path.front() != '/') return Error::kInval;
  if (path.size() > limits_.max_path_length) return Error::kNameTooLong;
  std::vector<std::string_view> made;
  size_t slash = path.find_last_of('/');
  if (slash > 0) {
    if (Error e = MakeParents(*this, path.substr(0, slash), &made); e != Error::kOk) {
      RemoveMade(*this, made);
      return e;
    }
  }
  const bool existed = Lookup(root_, path).ok();
  OpenFlags f;
  f.create = true;
  f.write = true;
  auto n = Open(root_, path, f);
  Error e = !n ? n.error() : n.value()->type == NodeType::kFifo ? Error::kInval : SetContents(n.value().get(), bytes);
  if (e != Error::kOk) {
    if (n && !existed) (void)Unlink(root_, path);  // leave no empty file behind
    RemoveMade(*this, made);
  }
  return e;
}

std::optional<std::vector<DirEntry>> FileSystem::List(std::string_view path) const {
  if (path.empty() || path.front() != '/') return std::nullopt;
  auto n = Lookup(root_, path);
  if (!n) return std::nullopt;
  auto entries = ReadDir(n.value());
  if (!entries) return std::nullopt;
  return std::move(entries.value());
}

Result<Stat> FileSystem::StatPath(std::string_view path) const {
  if (path.empty() || path.front() != '/') return Error::kInval;
  auto n = Lookup(root_, path);
  if (!n) return n.error();
  return GetStat(*n.value());
}

Error FileSystem::Remove(std::string_view path) {
  HostCall host(&as_host_);
  if (path.empty() || path.front() != '/') return Error::kInval;
  auto n = Lookup(root_, path);
  if (!n) return n.error();
  return n.value()->is_dir() ? Rmdir(root_, path) : Unlink(root_, path);
}

Error FileSystem::MakeFifoAt(std::string_view path, uint16_t mode) {
  HostCall host(&as_host_);
  if (path.empty() || path.front() != '/') return Error::kInval;
  if (path.size() > limits_.max_path_length) return Error::kNameTooLong;
  std::vector<std::string_view> made;
  const size_t slash = path.find_last_of('/');
  Error e = slash > 0 ? MakeParents(*this, path.substr(0, slash), &made) : Error::kOk;
  if (e == Error::kOk) e = MakeFifo(root_, path, mode);
  if (e != Error::kOk) RemoveMade(*this, made);
  return e;
}

Error FileSystem::SetXattrAt(std::string_view path, std::string_view name, std::string_view value) {
  HostCall host(&as_host_);
  if (path.empty() || path.front() != '/') return Error::kInval;
  auto n = Lookup(root_, path);
  if (!n) return n.error();
  return SetXattr(n.value(), name, value, XattrMode::kAny);
}

uint64_t FileSystem::ChangeTime() {
  ++generation_;
  return clock_ ? clock_() : NowNs();
}

void FileSystem::set_clock(std::function<uint64_t()> clock) { clock_ = std::move(clock); }

// ---- Copies.

NodeRef FileSystem::CopyNode(const Node& src, Node* parent, NodeMap* map) {
  auto n = std::make_shared<Node>(src.type, /*writable=*/true, src.mount_id, src.ino);
  n->linked = src.linked;
  n->parent = parent;
  n->atime_ns = src.atime_ns;
  n->mtime_ns = src.mtime_ns;
  n->ctime_ns = src.ctime_ns;
  n->mode = src.mode;
  n->path_bytes = src.path_bytes;
  n->data = src.data;  // shared until one side writes
  n->xattrs = src.xattrs;
  n->quota = quota_;
  ++quota_->nodes;
  if (n->counts_as_file()) ++quota_->files;  // removed files still open are not counted
  quota_->bytes += n->data.size() + n->xattrs.bytes;
  (*map)[&src] = n;
  for (const auto& [name, child] : src.children) n->children.emplace(name, CopyNode(*child, n.get(), map));
  return n;
}

// Copies what `src` (a node of another file system) holds below it into `dst`, the node at
// the same place here: synthetic directories and mount roots exist in both (the constructor
// makes the same ones), writable entries are copied, the shared stdlib is shared.
void FileSystem::CopyInto(const Node& src, Node* dst, NodeMap* map) {
  dst->atime_ns = src.atime_ns;
  dst->mtime_ns = src.mtime_ns;
  dst->ctime_ns = src.ctime_ns;
  dst->mode = src.mode;
  if (dst->writable) dst->xattrs = src.xattrs;  // a mount root's (never charged: no quota)
  (*map)[&src] = dst->shared_from_this();
  for (const auto& [name, child] : src.children) {
    auto here = dst->children.find(name);
    if (here != dst->children.end()) {
      if (here->second.get() == child.get()) {
        (*map)[child.get()] = child;  // the stdlib pack: one tree for every file system
      } else {
        CopyInto(*child, here->second.get(), map);
      }
    } else if (child->writable) {
      dst->children.emplace(name, CopyNode(*child, dst, map));
    }
  }
}

std::unique_ptr<FileSystem> FileSystem::Clone(NodeMap* map) const {
  Options options;
  options.limits = limits_;
  options.stdlib = stdlib_tree_;
  options.zoneinfo = zoneinfo_tree_;
  auto copy = std::make_unique<FileSystem>(std::move(options));
  copy->CopyInto(*root_, copy->root_.get(), map);
  copy->next_ino_ = next_ino_;
  copy->generation_ = generation_;
  return copy;
}

NodeRef FileSystem::CopyOf(const NodeRef& node, NodeMap* map) {
  if (!node) return node;
  auto it = map->find(node.get());
  if (it != map->end()) return it->second;
  if (!node->writable) return node;  // the stdlib pack, shared
  return CopyNode(*node, nullptr, map);  // removed from the tree but still open
}

}  // namespace brig::vfs
