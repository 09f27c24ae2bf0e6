#include "vfs/pack.h"

#include <cstring>
#include <mutex>
#include <vector>

#include "util/little_endian.h"

namespace brig::vfs {
namespace {

constexpr std::string_view kMagic = "BRIGPK02";
constexpr size_t kHeaderSize = 16;
constexpr size_t kRecordSize = 24;
constexpr uint16_t kKindDirectory = 0;
constexpr uint16_t kKindFile = 1;
constexpr uint32_t kMaxNameLength = 255;
// Leaves room for the mount prefix (usr/local/lib/python3.11) under the VFS depth limit.
constexpr uint32_t kMaxPackDepth = 60;

// One node record, decoded.
struct Record {
  uint32_t name_offset;
  uint16_t name_length;
  uint16_t kind;
  uint64_t first;
  uint64_t count;
};

}  // namespace

// The index of a checked pack. Only Parse makes one, after checking everything its accessors
// rely on: every record's name lies in the name table, every file's data in the data area,
// every directory's entries are records in range.
struct PackIndex {
  std::string_view bytes;
  uint32_t node_count = 0;
  const char* records = nullptr;
  const char* names = nullptr;
  uint64_t mtime_ns = 0;
  uint32_t mount_id = kStdlibMount;  // of every node made from this index (st_dev)
  std::vector<std::string> hidden;    // entry names left out of every directory (Subtree)

  bool Hidden(std::string_view name) const {
    for (const std::string& h : hidden)
      if (name == h) return true;
    return false;
  }

  Record At(uint32_t i) const {
    const char* r = records + static_cast<size_t>(i) * kRecordSize;
    return {brig_le_load32(r), brig_le_load16(r + 4), brig_le_load16(r + 6), brig_le_load64(r + 8),
            brig_le_load64(r + 16)};
  }
  std::string_view Name(const Record& r) const { return {names + r.name_offset, r.name_length}; }

  // A node for record `i`; a directory gets its entries on first use.
  std::shared_ptr<Node> MakeNode(uint32_t i, Node* parent, const std::shared_ptr<const PackIndex>& self) const {
    Record r = At(i);
    auto n = std::make_shared<Node>(r.kind == kKindDirectory ? NodeType::kDirectory : NodeType::kFile,
                                    /*writable=*/false, mount_id, uint64_t{i} + 1);
    n->atime_ns = n->mtime_ns = n->ctime_ns = mtime_ns;
    n->parent = parent;
    if (r.kind == kKindDirectory) {
      if (r.count > 0) n->children.SetPackSource(n.get(), self, i);
    } else {
      n->ro_data = bytes.substr(r.first, r.count);
    }
    return n;
  }
};

namespace {

// Pack directories fill in rarely (at most once each per process): one lock serves them all.
std::mutex& FillMutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace

void Children::Fill() const {
  std::lock_guard<std::mutex> lock(FillMutex());
  if (filled_.load(std::memory_order_relaxed)) return;
  Record dir = pack_->At(pack_dir_);
  Map entries;
  for (uint64_t i = dir.first; i < dir.first + dir.count; ++i) {
    const uint32_t child = static_cast<uint32_t>(i);
    if (pack_->Hidden(pack_->Name(pack_->At(child)))) continue;
    // Entries are sorted: each goes in at the end of the map.
    entries.emplace_hint(entries.end(), std::string(pack_->Name(pack_->At(child))),
                         pack_->MakeNode(child, owner_, pack_));
  }
  map_ = std::move(entries);
  filled_.store(true, std::memory_order_release);
}

std::shared_ptr<const PackTree> PackTree::Parse(std::string_view bytes, std::string* error,
                                                uint64_t mtime_ns) {
  auto fail = [&](std::string msg) -> std::shared_ptr<const PackTree> {
    if (error) *error = "bad stdlib pack: " + msg;
    return nullptr;
  };
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic)
    return fail("missing BRIGPK02 magic");
  if (bytes.size() < kHeaderSize) return fail("truncated header");
  const uint32_t n = brig_le_load32(bytes.data() + 8);
  const uint32_t names_size = brig_le_load32(bytes.data() + 12);
  if (n == 0) return fail("no root directory");
  // 64-bit sums of 32-bit values: no overflow.
  const uint64_t names_at = kHeaderSize + uint64_t{n} * kRecordSize;
  const uint64_t data_at = names_at + names_size;
  if (data_at > bytes.size()) return fail("node count " + std::to_string(n) + " or name table size exceeds the data");

  // No name holds a '/' or NUL: checked once for the whole table (names have no separators).
  const char* names = bytes.data() + names_at;
  if (std::memchr(names, '/', names_size) || std::memchr(names, '\0', names_size))
    return fail("'/' or NUL in the name table");

  auto index = std::make_shared<PackIndex>();
  index->bytes = bytes;
  index->node_count = n;
  index->records = bytes.data() + kHeaderSize;
  index->names = names;
  index->mtime_ns = mtime_ns;

  // One pass over the records, in order. `next` is where the next directory's entries must
  // start; depth[i] is record i's depth, known before i is reached (its directory comes first).
  std::vector<uint8_t> depth(n, 0);
  uint64_t next = 1;
  uint64_t files = 0;
  for (uint32_t i = 0; i < n; ++i) {
    // Error texts are made only on failure.
    auto where = [i] { return "record " + std::to_string(i); };
    Record r = index->At(i);
    if (uint64_t{r.name_offset} + r.name_length > names_size) return fail(where() + ": name out of bounds");
    std::string_view name = index->Name(r);
    if (i == 0) {
      if (r.kind != kKindDirectory || !name.empty()) return fail("record 0 is not an unnamed directory");
    } else {
      if (name.empty()) return fail(where() + ": empty name");
      if (name.size() > kMaxNameLength) return fail(where() + ": name longer than 255 bytes");
      if (name == "." || name == "..") return fail(where() + ": '.' or '..' as a name");
    }
    if (r.kind == kKindFile) {
      if (r.first < data_at || r.first > bytes.size() || r.count > bytes.size() - r.first)
        return fail(where() + " (" + std::string(name) + "): contents out of bounds");
      ++files;
      continue;
    }
    if (r.kind != kKindDirectory) return fail(where() + ": unknown kind " + std::to_string(r.kind));
    if (r.count == 0) continue;
    // Breadth-first: this directory's entries are the next records not yet claimed, and they
    // come after i itself (which also refuses a directory that no earlier one claimed).
    if (r.first != next || r.first <= i) return fail(where() + ": entries not where the layout puts them");
    if (r.count > n - r.first) return fail(where() + ": entries out of bounds");
    if (depth[i] + 1u > kMaxPackDepth) return fail(where() + ": too deep");
    std::string_view prev;
    for (uint64_t c = r.first; c < r.first + r.count; ++c) {
      const uint32_t child = static_cast<uint32_t>(c);
      depth[child] = static_cast<uint8_t>(depth[i] + 1);
      // The names of entries not checked yet may be out of bounds: check them here first.
      Record e = index->At(child);
      if (uint64_t{e.name_offset} + e.name_length > names_size)
        return fail("record " + std::to_string(child) + ": name out of bounds");
      std::string_view entry = index->Name(e);
      if (c > r.first && !(prev < entry))
        return fail(where() + ": entries not in strictly increasing name order (" + std::string(entry) + ")");
      prev = entry;
    }
    next = r.first + r.count;
  }
  if (next != n) return fail(std::to_string(n - next) + " records are in no directory");

  std::shared_ptr<PackTree> tree(new PackTree());
  tree->index_ = index;
  tree->root_ = index->MakeNode(0, nullptr, index);
  tree->root_->mount_root = true;
  tree->file_count_ = files;
  tree->node_count_ = n;
  return tree;
}

std::shared_ptr<const PackTree> PackTree::Subtree(std::string_view path, uint32_t mount_id,
                                                  const std::vector<std::string>& hidden) const {
  // Found through the index, not the nodes: the full tree's directories stay unfilled.
  uint32_t at = 0;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view name = path.substr(start, slash - start);
    start = slash + 1;
    if (name.empty()) return nullptr;
    const Record dir = index_->At(at);
    if (dir.kind != kKindDirectory) return nullptr;
    bool found = false;
    for (uint64_t c = dir.first; c < dir.first + dir.count; ++c) {
      if (index_->Name(index_->At(static_cast<uint32_t>(c))) == name) {
        at = static_cast<uint32_t>(c);
        found = true;
        break;
      }
    }
    if (!found) return nullptr;
  }
  if (index_->At(at).kind != kKindDirectory) return nullptr;
  // Its own index (the same bytes and records) so that its nodes carry `mount_id`.
  auto index = std::make_shared<PackIndex>(*index_);
  index->mount_id = mount_id;
  index->hidden = hidden;
  std::shared_ptr<PackTree> tree(new PackTree());
  tree->index_ = index;
  tree->root_ = index->MakeNode(at, nullptr, index);
  tree->root_->mount_root = true;
  // Counted by walking the records below it (ordered breadth-first: a directory's entries
  // are a contiguous run, so the subtree is a set of runs).
  std::vector<uint32_t> todo = {at};
  uint64_t files = 0, nodes = 1;
  while (!todo.empty()) {
    const Record r = index->At(todo.back());
    todo.pop_back();
    if (r.kind != kKindDirectory) continue;
    for (uint64_t c = r.first; c < r.first + r.count; ++c) {
      if (index->Hidden(index->Name(index->At(static_cast<uint32_t>(c))))) continue;
      ++nodes;
      if (index->At(static_cast<uint32_t>(c)).kind == kKindFile) ++files;
      else todo.push_back(static_cast<uint32_t>(c));
    }
  }
  tree->file_count_ = files;
  tree->node_count_ = nodes;
  return tree;
}

std::string BuildPack(const std::map<std::string, std::string>& files) {
  // The tree the paths imply; std::map keeps each directory's entries in byte order.
  struct Dir {
    std::map<std::string, Dir> dirs;
    std::map<std::string, const std::string*> files;
  };
  Dir root;
  for (const auto& [path, data] : files) {
    Dir* d = &root;
    size_t start = 0;
    for (size_t slash; (slash = path.find('/', start)) != std::string::npos; start = slash + 1)
      d = &d->dirs[path.substr(start, slash - start)];
    d->files[path.substr(start)] = &data;
  }
  // Records in breadth-first order; within a directory, files and directories merged by name.
  struct Entry {
    std::string_view name;
    const Dir* dir;             // or
    const std::string* data;
  };
  std::vector<Entry> order = {{"", &root, nullptr}};
  for (size_t i = 0; i < order.size(); ++i) {
    if (!order[i].dir) continue;
    std::map<std::string_view, Entry> merged;
    for (const auto& [name, sub] : order[i].dir->dirs) merged[name] = {name, &sub, nullptr};
    for (const auto& [name, data] : order[i].dir->files) merged[name] = {name, nullptr, data};
    for (const auto& [name, e] : merged) order.push_back(e);
  }
  std::string names;
  for (const Entry& e : order) names += e.name;
  const uint64_t data_at = kHeaderSize + order.size() * kRecordSize + names.size();

  std::string out(kMagic);
  auto put = [&out](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(order.size(), 4);
  put(names.size(), 4);
  uint64_t name_at = 0, data = data_at, next = 1;
  for (const Entry& e : order) {
    put(name_at, 4);
    put(e.name.size(), 2);
    name_at += e.name.size();
    if (e.dir) {
      const uint64_t count = e.dir->dirs.size() + e.dir->files.size();
      put(kKindDirectory, 2);
      put(count ? next : 0, 8);
      put(count, 8);
      next += count;
    } else {
      put(kKindFile, 2);
      put(data, 8);
      put(e.data->size(), 8);
      data += e.data->size();
    }
  }
  out += names;
  for (const Entry& e : order)
    if (!e.dir) out += *e.data;
  return out;
}

}  // namespace brig::vfs
