#include "vfs/pack.h"

#include <cstring>

#include "util/little_endian.h"

namespace brig::vfs {
namespace {

constexpr std::string_view kMagic = "BRIGPK01";
constexpr uint32_t kMaxNameLength = 255;
constexpr uint32_t kMaxPathLength = 4096;
// Leaves room for the mount prefix (usr/local/lib/python3.11) under the VFS depth limit.
constexpr uint32_t kMaxPackDepth = 60;

}  // namespace

std::shared_ptr<const PackTree> PackTree::Parse(std::string_view bytes, std::string* error,
                                                uint64_t mtime_ns) {
  auto fail = [&](std::string msg) -> std::shared_ptr<const PackTree> {
    if (error) *error = "bad stdlib pack: " + msg;
    return nullptr;
  };
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic)
    return fail("missing BRIGPK01 magic");
  LeReader r(bytes.substr(kMagic.size()));
  uint32_t count = 0;
  if (!r.U32(&count)) return fail("truncated entry count");
  // Each entry takes at least 13 bytes: a count larger than that is a lie, fail early.
  if (count > r.remaining() / 13) return fail("entry count " + std::to_string(count) + " exceeds the data");

  std::shared_ptr<PackTree> tree(new PackTree());
  uint64_t next_ino = 1;
  auto new_node = [&](NodeType t) {
    auto n = std::make_shared<Node>(t, /*writable=*/false, kStdlibMount, next_ino++);
    n->atime_ns = n->mtime_ns = n->ctime_ns = mtime_ns;
    return n;
  };
  tree->root_ = new_node(NodeType::kDirectory);
  tree->root_->mount_root = true;

  for (uint32_t i = 0; i < count; ++i) {
    // Error texts are made only on failure: this loop runs for every stdlib file at start-up.
    auto where = [i] { return "entry " + std::to_string(i); };
    uint32_t path_len = 0;
    std::string_view path;
    uint64_t data_len = 0;
    std::string_view data;
    if (!r.U32(&path_len)) return fail(where() + ": truncated path length");
    if (path_len == 0) return fail(where() + ": empty path");
    if (path_len > kMaxPathLength) return fail(where() + ": path longer than 4096 bytes");
    if (!r.Bytes(path_len, &path)) return fail(where() + ": truncated path");
    auto shown = [&path] { return std::string(path); };
    if (!r.U64(&data_len)) return fail(where() + " (" + shown() + "): truncated data length");
    if (!r.Bytes(data_len, &data)) return fail(where() + " (" + shown() + "): truncated data");
    if (path.find('\0') != std::string_view::npos) return fail(where() + ": NUL byte in path");
    if (path.front() == '/') return fail(where() + " (" + shown() + "): absolute path");

    Node* dir = tree->root_.get();
    uint32_t depth = 0;
    size_t start = 0;
    while (true) {
      size_t slash = path.find('/', start);
      std::string_view name = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
      if (name.empty()) return fail(where() + " (" + shown() + "): empty path component");
      if (name == "." || name == "..") return fail(where() + " (" + shown() + "): '.' or '..' component");
      if (name.size() > kMaxNameLength) return fail(where() + ": component longer than 255 bytes");
      if (++depth > kMaxPackDepth) return fail(where() + ": path too deep");
      const bool last = slash == std::string_view::npos;
      auto it = dir->children.find(name);
      if (last) {
        if (it != dir->children.end()) return fail(where() + " (" + shown() + "): duplicate path");
        auto f = new_node(NodeType::kFile);
        f->ro_data = data;
        f->parent = dir;
        dir->children.emplace(std::string(name), std::move(f));
        ++tree->file_count_;
        break;
      }
      if (it == dir->children.end()) {
        auto d = new_node(NodeType::kDirectory);
        d->parent = dir;
        it = dir->children.emplace(std::string(name), std::move(d)).first;
      } else if (!it->second->is_dir()) {
        return fail(where() + " (" + shown() + "): a file is used as a directory");
      }
      dir = it->second.get();
      start = slash + 1;
    }
  }
  if (r.remaining() != 0) return fail(std::to_string(r.remaining()) + " trailing bytes after the last entry");
  tree->node_count_ = next_ino - 1;
  return tree;
}

std::string BuildPack(const std::map<std::string, std::string>& files) {
  std::string out(kMagic);
  AppendLe32(&out, static_cast<uint32_t>(files.size()));
  for (const auto& [path, data] : files) {
    AppendLe32(&out, static_cast<uint32_t>(path.size()));
    out += path;
    AppendLe64(&out, data.size());
    out += data;
  }
  return out;
}

}  // namespace brig::vfs
