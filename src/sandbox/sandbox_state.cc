// Sandbox's saved state: page snapshots (diffs against the process image), portable
// snapshots (guest/_brig_snapshot.py, run inside the guest) and host-side file access.
//
// Page snapshot format ("BRIGPG02"; "BRIGPG01" is still read), integers little-endian:
//   magic "BRIGPG02" | u32 header length | header (JSON) | u64 body length | body
//   header: {"guest_build_id", "image_digest" (hex), "memory_pages" (64 KiB pages),
//            "globals": [u64...], "page_count", "fds": [{fd, directory, path, offset,
//            fdflags, rights_base, rights_inheriting}...]}
//   body:   zstd frame of page_count u32 page indices (ascending), then one record per page:
//           a mask of 512 bits (8 u64, bit i = 8-byte word i of the page differs from the
//           image's), then the differing words XORed with the image's (zeros where the image
//           has none). A page of a small session differs from the image in a few dozen
//           words (reference counts, allocator state): recording only those made zstd's
//           input ~20x smaller than whole XORed pages (BRIGPG01: page_count pages of 4096
//           bytes), which was most of a durable execution's CPU (bench/save_path_bench).
// Page delta format ("BRIGPD01"): the same header with "page_count" the pages the delta
// changes and "dropped_count" those it drops, and a zstd frame of page_records.h's delta
// body. Frames written since 2026-12-05 carry zstd's content checksum (checked on reading). A snapshot comes back from the store: it is untrusted input and checked field by
// field.
#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "engine/page_snapshot.h"
#include "names/path_rules.h"
#include "sandbox/page_format.h"
#include "sandbox/page_records.h"
#include "sandbox/sandbox_impl.h"
#include "util/base64.h"
#include "util/differing_blocks.h"
#include "util/little_endian.h"

namespace brig {
using namespace page_format;
namespace {

constexpr size_t kWordsPerPage = BRIG_HOST_PAGE / 8;
constexpr size_t kMaskBytes = kRecordMaskBytes;
constexpr uint32_t kMaxGlobals = 16;

std::string Hex(uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}

// The reply of a host call (Execute under kHostFilename whose code ends with a call that
// returns a str): the text itself. Guest output: checked by the caller, never trusted.
std::optional<std::string> HostReply(const ExecutionResult& r) {
  if (!r.ok || r.failure != Failure::kNone || !r.result) return std::nullopt;
  return *r.result;
}

// The pages that differ from the image, with their records (page_records.h).
using DiffCollector = PageRecords;

// Buffers of SavePages kept per thread: a save's page data and its compressed form are
// hundreds of KiB, and new buffers that size cost their page faults (and growth copies)
// again every time: measured a fifth of a save.
struct SaveScratch {
  DiffCollector diff;
  std::string indices;  // or a delta's body
  std::string compressed;
};
SaveScratch& ThreadScratch() {
  thread_local SaveScratch scratch;
  // What one big session needed is not kept for good (a thread may save small ones after).
  constexpr size_t kKeep = size_t{16} << 20;
  if (scratch.diff.data.capacity() > kKeep || scratch.compressed.size() > kKeep || scratch.indices.capacity() > kKeep) {
    scratch = SaveScratch();
  }
  scratch.diff.clear();
  scratch.indices.clear();
  return scratch;
}

// A candidate page (brig_python_instance_candidates): its record if it differs from the image.
int CollectPage(void* ctx, uint32_t page, const uint8_t* bytes, const uint8_t* base) {
  static const uint64_t kZeros[kWordsPerPage] = {};
  auto* c = static_cast<DiffCollector*>(ctx);
  // Made on the stack, then appended: growing the string by a whole page first would zero
  // it (a tenth of a save) to keep a few dozen words.
  char record[kMaskBytes + BRIG_HOST_PAGE];
  char* out = record + kMaskBytes;
  uint64_t mask[kWordsPerPage / 64] = {};
  const uint8_t* img = base ? base : reinterpret_cast<const uint8_t*>(kZeros);
  // The differing 64-byte blocks first (most of a differing page is still the image's: a
  // few dozen words differ), then their words.
  for (uint64_t blocks = DifferingBlocks(bytes, img); blocks; blocks &= blocks - 1) {
    const size_t block = static_cast<size_t>(std::countr_zero(blocks));
    uint64_t now[8], was[8];
    std::memcpy(now, bytes + block * 64, 64);
    std::memcpy(was, img + block * 64, 64);
    for (int k = 0; k < 8; k++) {
      const uint64_t x = now[k] ^ was[k];
      if (!x) continue;
      const size_t word = block * 8 + static_cast<size_t>(k);
      mask[word / 64] |= uint64_t{1} << (word % 64);
      std::memcpy(out, &x, 8);
      out += 8;
    }
  }
  if (out == record + kMaskBytes) return 0;  // the image's bytes after all (written back)
  for (size_t k = 0; k < kWordsPerPage / 64; k++) brig_le_store64(record + k * 8, mask[k]);
  c->data.append(record, static_cast<size_t>(out - record));
  c->pages.push_back(page);
  c->offsets.push_back(c->data.size());
  return 0;
}

Status StateError(const std::string& why) { return Status::FailedPrecondition(why); }

}  // namespace

StatusOr<std::string> Sandbox::ImageDigest() {
  std::string why;
  const brig_python_image* image = ProcessImage(&why);
  if (!image) return Status::Unavailable("no process image: " + why);
  return Hex(brig_python_image_digest(image));
}

StatusOr<std::string> Sandbox::SavePages() {
  StatusOr<PagesSave> saved = SavePages(PagesSaveOptions{});
  if (!saved.ok()) return saved.status();
  return std::move(saved.value().snapshot);
}

StatusOr<Sandbox::PagesSave> Sandbox::SavePages(const PagesSaveOptions& options) {
  Impl& impl = *impl_;
  if (impl.dead != Failure::kNone) return StateError("the sandbox no longer runs code");
  // Forked, rolled back or compacted sandboxes still descend from the process image (tx.image);
  // only a cold-started one (own_image) has nothing to diff against.
  const brig_python_image* image = impl.base_image ? impl.base_image : impl.own_image ? nullptr : impl.tx.image;
  if (!image) return StateError("a cold-started sandbox has no image to diff against");
  // The last walk's candidates hold only while nothing but unfaulted executions came since.
  const bool unfaulted = impl.candidates_kept && impl.instance != nullptr;
  impl.ForgetCandidates();
  if (Status awake = impl.Wake(); !awake.ok()) return awake;
  if (!brig_python_instance_table_matches(image, impl.instance)) {
    return StateError("the guest changed its function table");
  }
  SaveScratch& scratch = ThreadScratch();
  DiffCollector& diff = scratch.diff;
  // Each candidate compared once, by CollectPage (which keeps only those that differ).
  int reused = 0;
  int64_t n = brig_python_instance_candidates(image, impl.instance, CollectPage, &diff, unfaulted ? 1 : 0, &reused);
  if (n < 0) return Status::Internal("cannot read this process's page map");
  impl.candidates_kept = true;
  impl.written_pages = static_cast<uint64_t>(n);
  impl.watched_executions = 0;

  nlohmann::json header;
  header["guest_build_id"] = std::string(GuestBuildId());
  header["image_digest"] = Hex(brig_python_image_digest(image));
  header["memory_pages"] = brig_python_instance_memory(impl.instance)->pages;
  uint64_t globals[kMaxGlobals];
  uint32_t count = brig_python_instance_get_globals(impl.instance, globals, kMaxGlobals);
  header["globals"] = std::vector<uint64_t>(globals, globals + std::min(count, kMaxGlobals));
  nlohmann::json fds = nlohmann::json::array();
  for (const auto& f : impl.wasi->SaveFds()) {
    fds.push_back({{"fd", f.fd}, {"directory", f.directory}, {"path", f.path}, {"offset", f.offset},
                   {"fdflags", f.fdflags}, {"rights_base", f.rights_base},
                   {"rights_inheriting", f.rights_inheriting}});
  }
  header["fds"] = std::move(fds);

  PagesSave out;
  out.delta = options.since != nullptr;
  out.candidates_reused = reused != 0;
  StatusOr<std::string> encoded = [&]() -> StatusOr<std::string> {
    if (options.since) {
      uint64_t changed = 0, dropped = 0;
      MakeDeltaBody(*options.since, diff, &scratch.indices, &changed, &dropped);
      header["page_count"] = changed;
      header["dropped_count"] = dropped;
      return EncodePages(kDeltaMagic, header, {scratch.indices}, &scratch.compressed);
    }
    // The body is the page indices then the records.
    header["page_count"] = diff.pages.size();
    for (uint32_t page : diff.pages) AppendLe32(&scratch.indices, page);
    return EncodePages(kPagesMagic, header, {scratch.indices, diff.data}, &scratch.compressed);
  }();
  if (!encoded.ok()) return encoded.status();
  out.snapshot = std::move(encoded.value());
  if (options.keep_records) out.records = std::make_shared<const PageRecords>(diff);
  return out;
}

Status Sandbox::RestorePages(std::string_view snapshot, std::shared_ptr<const PageRecords>* records_out) {
  Impl& impl = *impl_;
  impl.ForgetCandidates();
  if (!impl.base_image) return StateError("a cold-started sandbox cannot take a page snapshot");
  if (impl.wasi->open_fd_count() != 4) return StateError("the sandbox has files open");
  auto damaged = Damaged;

  LeReader r(snapshot);
  bool whole_pages = false;
  StatusOr<nlohmann::json> parsed = ReadPagesHeader(r, &whole_pages);
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& h = parsed.value();
  auto str = [&](const char* key) -> std::optional<std::string> {
    auto it = h.find(key);
    if (it == h.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto num = [&](const char* key) -> std::optional<uint64_t> {
    auto it = h.find(key);
    if (it == h.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<uint64_t>();
  };
  auto build = str("guest_build_id");
  auto digest = str("image_digest");
  auto memory_pages = num("memory_pages");
  auto page_count = num("page_count");
  auto globals_it = h.find("globals");
  auto fds_it = h.find("fds");
  if (!build || !digest || !memory_pages || !page_count || globals_it == h.end() ||
      !globals_it->is_array() || fds_it == h.end() || !fds_it->is_array()) {
    return damaged("header fields");
  }
  if (*build != GuestBuildId()) return StateError("the snapshot is from guest build " + *build);
  if (*digest != Hex(brig_python_image_digest(impl.base_image))) {
    return StateError("the snapshot is from another image (" + *digest + ")");
  }
  uint64_t image_pages = brig_python_image_memory_bytes(impl.base_image) / kWasmPage;
  uint64_t limit_pages = impl.limits.memory_bytes / kWasmPage;
  if (*memory_pages < image_pages || *memory_pages > 65536) return damaged("memory size");
  if (*memory_pages > limit_pages) {
    return Status::ResourceExhausted("the session holds " + std::to_string(*memory_pages * kWasmPage >> 20) +
                                     " MiB of memory, more than the " + std::to_string(impl.limits.memory_bytes >> 20) +
                                     " MiB limit");
  }
  uint64_t host_pages = *memory_pages * (kWasmPage / BRIG_HOST_PAGE);
  if (*page_count > host_pages) return damaged("page count");
  std::vector<uint64_t> globals;
  for (const auto& g : *globals_it) {
    if (!g.is_number_unsigned() || globals.size() >= kMaxGlobals) return damaged("globals");
    globals.push_back(g.get<uint64_t>());
  }
  std::vector<wasi::WasiContext::SavedFd> fds;
  for (const auto& f : *fds_it) {
    if (!f.is_object()) return damaged("fds");
    wasi::WasiContext::SavedFd s;
    try {
      s.fd = f.at("fd").get<uint32_t>();
      s.directory = f.at("directory").get<bool>();
      s.path = f.at("path").get<std::string>();
      s.offset = f.at("offset").get<uint64_t>();
      s.fdflags = f.at("fdflags").get<uint16_t>();
      s.rights_base = f.at("rights_base").get<uint64_t>();
      s.rights_inheriting = f.at("rights_inheriting").get<uint64_t>();
    } catch (const nlohmann::json::exception&) {
      return damaged("fds");
    }
    fds.push_back(std::move(s));
  }

  // The frame says how big it decompresses: within what page_count pages can take (checked
  // against the header's page count, itself bounded by the memory size, before allocating).
  const uint64_t indices_bytes = *page_count * sizeof(uint32_t);
  const uint64_t most = whole_pages ? *page_count * (sizeof(uint32_t) + BRIG_HOST_PAGE)
                                    : *page_count * (sizeof(uint32_t) + kMaskBytes + BRIG_HOST_PAGE);
  StatusOr<std::string> read = ReadBody(r, whole_pages ? most : indices_bytes + *page_count * kMaskBytes, most);
  if (!read.ok()) return read.status();
  const std::string& body = read.value();
  // BRIGPG02: every index and every mask's words checked against what is there.
  auto records = std::make_shared<PageRecords>();
  std::vector<uint32_t> whole_indices;
  if (!whole_pages) {
    if (!ParseWholeBody(body, *page_count, host_pages, records.get())) return damaged("page records");
  } else if (!ReadPageIndices(body, 0, *page_count, host_pages, &whole_indices)) {
    return damaged("page index");
  }
  const std::vector<uint32_t>& pages = whole_pages ? whole_indices : records->pages;

  // Everything checked: build the restored instance beside the current one, then swap.
  brig_python_instance* restored = brig_python_instance_clone(
      impl.base_image, impl.wasi.get(), static_cast<uint32_t>(limit_pages));
  if (!restored) return Status::ResourceExhausted("cannot map a new sandbox");
  if (brig_python_instance_grow_to(restored, static_cast<uint32_t>(*memory_pages)) != 0 ||
      brig_python_instance_set_globals(restored, globals.data(), static_cast<uint32_t>(globals.size())) != 0) {
    brig_python_instance_destroy(restored);
    return damaged("memory size or globals do not fit this guest");
  }
  uint8_t* memory = brig_python_instance_memory(restored)->data;
  const char* data = body.data() + indices_bytes;
  for (size_t i = 0; i < pages.size(); i++) {
    // The page holds the image's bytes (or zeros): XOR turns them into the saved ones.
    uint8_t* page = memory + static_cast<uint64_t>(pages[i]) * BRIG_HOST_PAGE;
    if (whole_pages) {
      const char* delta = data + i * BRIG_HOST_PAGE;
      for (size_t k = 0; k < BRIG_HOST_PAGE; k++) page[k] ^= static_cast<uint8_t>(delta[k]);
      continue;
    }
    const char* record = records->data.data() + records->offsets[i];
    const char* words = record + kMaskBytes;
    for (size_t k = 0; k < kMaskBytes / 8; k++) {
      for (uint64_t m = brig_le_load64(record + k * 8); m; m &= m - 1) {
        const size_t word = k * 64 + static_cast<size_t>(std::countr_zero(m));
        uint64_t now, x;
        std::memcpy(&now, page + word * 8, 8);
        std::memcpy(&x, words, 8);
        now ^= x;
        std::memcpy(page + word * 8, &now, 8);
        words += 8;
      }
    }
  }
  brig_python_instance_set_control(restored, &impl.control);
  brig_python_instance_destroy(impl.instance);
  impl.instance = restored;
  impl.wasi->RestoreFds(fds);  // a descriptor whose file is gone stays closed (EBADF)
  if (records_out) *records_out = whole_pages ? nullptr : std::move(records);
  return Status::Ok();
}

StatusOr<Sandbox::PortableSnapshot> Sandbox::SavePortable() {
  ExecutionResult r = Execute("__import__('_brig_runner').dump_portable()\n", kHostFilename);
  auto reply = HostReply(r);
  if (!reply) {
    std::string why = r.error ? r.error->type + ": " + r.error->message : r.failure_message;
    return Status::Internal("the portable snapshot failed in the guest: " + why);
  }
  // base64 of the snapshot, "\n", JSON {name: why skipped}.
  const size_t newline = reply->find('\n');
  if (newline == std::string::npos) return Status::Internal("malformed portable snapshot from the guest");
  auto data = Base64Decode(std::string_view(*reply).substr(0, newline));
  nlohmann::json skipped = nlohmann::json::parse(reply->begin() + static_cast<std::ptrdiff_t>(newline) + 1,
                                                 reply->end(), nullptr, false);
  if (!data || !skipped.is_object()) return Status::Internal("malformed portable snapshot from the guest");
  PortableSnapshot snapshot;
  snapshot.data = std::move(*data);
  for (const auto& [name, why] : skipped.items()) {
    snapshot.skipped[name] = why.is_string() ? why.get<std::string>() : "unknown";
  }
  return snapshot;
}

StatusOr<std::map<std::string, std::string>> Sandbox::LoadPortable(std::string_view data) {
  ExecutionResult r =
      Execute("__import__('_brig_runner').load_portable('" + Base64Encode(data) + "')\n", kHostFilename);
  if (r.error && r.error->type == "ValueError") {
    return Status::InvalidArgument("not a readable portable snapshot: " + r.error->message);
  }
  auto reply = HostReply(r);
  nlohmann::json j = reply ? nlohmann::json::parse(*reply, nullptr, false) : nlohmann::json();
  if (!j.is_object()) {
    std::string why = r.error ? r.error->type + ": " + r.error->message : r.failure_message;
    return Status::Internal("loading the portable snapshot failed in the guest: " + why);
  }
  std::map<std::string, std::string> failed;
  for (const auto& [name, why] : j.items()) failed[name] = why.is_string() ? why.get<std::string>() : "unknown";
  return failed;
}

namespace {

// Calls visit(path, node) for every node under /home/user and /tmp, walking the tree's own
// nodes (no lookup by path per node: a save lists them all).
void ForEachWritableNode(const vfs::FileSystem& fs,
                         const std::function<void(const std::string&, const vfs::Node&)>& visit) {
  std::vector<std::pair<std::string, const vfs::Node*>> dirs;
  for (const char* mount : {"/home/user", "/tmp"}) {
    auto root = fs.Lookup(fs.root(), mount);
    if (root && root.value()->is_dir()) dirs.emplace_back(mount, root.value().get());
  }
  while (!dirs.empty()) {
    auto [dir, node] = std::move(dirs.back());
    dirs.pop_back();
    for (const auto& [name, child] : node->children) {
      std::string path = dir + "/" + name;
      visit(path, *child);
      if (child->is_dir()) dirs.emplace_back(std::move(path), child.get());
    }
  }
}

}  // namespace

std::vector<Sandbox::FileEntry> Sandbox::ListFiles() const {
  std::vector<FileEntry> files;
  const vfs::FileSystem& fs = *impl_->fs;
  ForEachWritableNode(fs, [&](const std::string& path, const vfs::Node& n) {
    if (n.type != vfs::NodeType::kFile) return;  // directories, named pipes (ListNodeExtras)
    files.push_back({path, n.size(), {n.ino, n.ctime_ns}});
  });
  std::sort(files.begin(), files.end(), [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
  return files;
}

std::optional<std::string> Sandbox::ReadFile(std::string_view path) const { return impl_->fs->ReadFile(path); }

namespace {

bool InWritableMount(std::string_view path) {
  return (path.starts_with("/home/user/") || path.starts_with("/tmp/")) && path.find("/../") == std::string_view::npos &&
         !path.ends_with("/..") && path.find("/./") == std::string_view::npos &&
         path.find("//") == std::string_view::npos;
}

Status WriteError(vfs::Error e, std::string_view path) {
  switch (e) {
    case vfs::Error::kOk: return Status::Ok();
    case vfs::Error::kNoSpc:
    case vfs::Error::kFBig: return Status::ResourceExhausted("no room for " + std::string(path) + " in the sandbox");
    default: {
      std::string why = vfs::ErrorName(e);
      if (const char* fault = names::CheckPath(path)) why += std::string(" (") + fault + ")";
      return Status::InvalidArgument("cannot write " + std::string(path) + ": " + why);
    }
  }
}

}  // namespace

Status Sandbox::WriteFile(std::string_view path, std::string_view content) {
  impl_->ForgetCandidates();  // guest memory untouched, but only executions are watched
  if (!InWritableMount(path)) return Status::InvalidArgument("not under /home/user or /tmp: " + std::string(path));
  return WriteError(impl_->fs->WriteFile(path, content), path);
}

Status Sandbox::MakeDirectory(std::string_view path) {
  impl_->ForgetCandidates();
  if (!InWritableMount(path)) return Status::InvalidArgument("not under /home/user or /tmp: " + std::string(path));
  return WriteError(impl_->fs->MakeDirs(path), path);
}

std::vector<std::string> Sandbox::ListEmptyDirectories() const {
  std::vector<std::string> empty;
  const vfs::FileSystem& fs = *impl_->fs;
  ForEachWritableNode(fs, [&](const std::string& path, const vfs::Node& n) {
    if (n.is_dir() && n.children.empty()) empty.push_back(path);
  });
  std::sort(empty.begin(), empty.end());
  return empty;
}

std::vector<NodeExtras> Sandbox::ListNodeExtras() const {
  std::vector<NodeExtras> all;
  const vfs::FileSystem& fs = *impl_->fs;
  ForEachWritableNode(fs, [&](const std::string& path, const vfs::Node& n) {
    const uint16_t default_mode = n.is_dir() ? 0755 : 0644;
    const bool named_pipe = n.type == vfs::NodeType::kFifo;
    if (!named_pipe && n.mode == default_mode && n.xattrs.values.empty()) return;
    NodeExtras x;
    x.path = path;
    x.named_pipe = named_pipe;
    x.mode = n.mode;
    x.xattrs.insert(n.xattrs.values.begin(), n.xattrs.values.end());
    all.push_back(std::move(x));
  });
  std::sort(all.begin(), all.end(), [](const NodeExtras& a, const NodeExtras& b) { return a.path < b.path; });
  return all;
}

Status Sandbox::ApplyNodeExtras(const NodeExtras& extras) {
  impl_->ForgetCandidates();
  const std::string& path = extras.path;
  if (!InWritableMount(path)) return Status::InvalidArgument("not under /home/user or /tmp: " + path);
  vfs::FileSystem& fs = *impl_->fs;
  auto node = fs.Lookup(fs.root(), path);
  if (!node && extras.named_pipe) {
    if (vfs::Error e = fs.MakeFifoAt(path, extras.mode & 07777); e != vfs::Error::kOk) return WriteError(e, path);
    node = fs.Lookup(fs.root(), path);
  }
  if (!node) return Status::NotFound("cannot restore " + path + ": " + vfs::ErrorName(node.error()));
  if ((node.value()->type == vfs::NodeType::kFifo) != extras.named_pipe) {
    return Status::InvalidArgument("cannot restore " + path + ": another kind of node is there");
  }
  for (const auto& [name, value] : extras.xattrs) {
    if (vfs::Error e = fs.SetXattrAt(path, name, value); e != vfs::Error::kOk) return WriteError(e, path);
  }
  return WriteError(fs.SetMode(node.value(), extras.mode & 07777), path);
}

Sandbox::FileUsage Sandbox::GetFileUsage() const {
  return FileUsage{impl_->fs->files_used(), impl_->fs->bytes_used()};
}

}  // namespace brig
