// Fuzz target: sequences of vfs::FileSystem operations (the guest-facing ones and the host's)
// decoded from the input, on small limits so that every quota and path limit is reachable.
//
// After each operation: the quota counters equal the tree (plus removed nodes still held),
// no limit is passed, and an operation that failed left the tree exactly as it was
// ("a failed operation changes nothing", file_system.h). A few postconditions of successful
// operations are checked too (a made directory is there, an unlinked file is gone, ...).
// A "clone" step continues on FileSystem::Clone's copy, which must look the same.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_vfs_check.h"
#include "vfs/file_system.h"
#include "vfs/pack.h"

namespace {

using brig::fuzz::CheckQuota;
using brig::fuzz::CountTree;
using namespace brig::vfs;

const std::shared_ptr<const PackTree>& Stdlib() {
  static const std::string* bytes =
      new std::string(BuildPack({{"os.py", "import sys\n"}, {"json/__init__.py", "#\n"}, {"a/b/c.py", "x"}}));
  static const std::shared_ptr<const PackTree> tree = PackTree::Parse(*bytes, nullptr);
  return tree;
}

constexpr std::array<const char*, 20> kWords = {
    "a", "b", "c", "..", ".", "", "home", "user", "tmp", "usr", "local", "lib", "python3.11", "os.py",
    "json", "x:y", "report: final.txt", "d\xc3\xa9j\xc3\xa0", "a\x01", "\xff"};

std::string Path(FuzzedDataProvider& in, const Limits& limits) {
  switch (in.ConsumeIntegralInRange(0, 5)) {
    case 0: return in.ConsumeRandomLengthString(300);
    case 1: return std::string(in.ConsumeIntegralInRange<size_t>(0, limits.max_name_length + 2), 'n');
    default: break;
  }
  std::string p;
  const int kind = in.ConsumeIntegralInRange(0, 3);
  if (kind == 0) p = "/home/user";
  if (kind == 1) p = "/tmp";
  const int n = in.ConsumeIntegralInRange(0, 6);
  for (int i = 0; i < n; ++i) {
    if (!p.empty() || i > 0 || kind == 2) p += '/';
    if (in.ConsumeBool()) {
      p += kWords[in.ConsumeIntegralInRange<size_t>(0, kWords.size() - 1)];
    } else {
      p += in.ConsumeRandomLengthString(8);
    }
  }
  if (in.ConsumeIntegralInRange(0, 7) == 0) p += '/';
  return p;
}

struct State {
  std::unique_ptr<FileSystem> fs;
  std::vector<NodeRef> held;  // open "descriptors": refs the harness keeps
  NodeRef home, tmp;
};

NodeRef Base(FuzzedDataProvider& in, State& s) {
  const size_t pick = in.ConsumeIntegralInRange<size_t>(0, 3 + s.held.size());
  if (pick == 0) return s.fs->root();
  if (pick == 1 && s.home) return s.home;
  if (pick == 2 && s.tmp) return s.tmp;
  if (pick >= 4) return s.held[pick - 4];
  return s.fs->root();
}

NodeRef Held(FuzzedDataProvider& in, State& s) {
  if (s.held.empty()) return nullptr;
  return s.held[in.ConsumeIntegralInRange<size_t>(0, s.held.size() - 1)];
}

Limits MakeLimits(FuzzedDataProvider& in) {
  Limits l;
  if (in.ConsumeBool()) return l;  // the defaults
  l.max_total_bytes = in.ConsumeIntegralInRange<uint64_t>(0, 1 << 16);
  l.max_files = in.ConsumeIntegralInRange<uint64_t>(0, 16);
  l.max_nodes = in.ConsumeIntegralInRange<uint64_t>(0, 24);
  l.max_file_size = in.ConsumeIntegralInRange<uint64_t>(0, 1 << 14);
  l.max_path_length = in.ConsumeIntegralInRange<uint32_t>(12, 96);  // "/home/user" fits
  l.max_name_length = in.ConsumeIntegralInRange<uint32_t>(4, 16);  // "home", "user" fit
  l.max_depth = in.ConsumeIntegralInRange<uint32_t>(1, 8);
  return l;
}

void Keep(State& s, NodeRef n) {
  if (!n) return;
  if (s.held.size() < 8) {
    s.held.push_back(std::move(n));
  } else {
    s.held[s.held.size() - 1] = std::move(n);
  }
}

bool Exists(const FileSystem& fs, const NodeRef& base, std::string_view path) {
  return fs.Lookup(base, path).ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  State s;
  FileSystem::Options options;
  options.limits = MakeLimits(in);
  options.stdlib = in.ConsumeBool() ? Stdlib() : nullptr;
  s.fs = std::make_unique<FileSystem>(options);
  uint64_t fake_now = 1;
  s.fs->set_clock([&fake_now] { return fake_now++; });
  if (auto h = s.fs->Lookup(s.fs->root(), "/home/user")) s.home = *h;
  if (auto t = s.fs->Lookup(s.fs->root(), "/tmp")) s.tmp = *t;
  // (Tiny path limits may refuse even these: then paths start at the root.)
  const Limits limits = s.fs->limits();

  for (int step = 0; step < 64 && in.remaining_bytes() > 0; ++step) {
    FileSystem& fs = *s.fs;
    const int op = in.ConsumeIntegralInRange(0, 23);
    static const bool trace = std::getenv("BRIG_FUZZ_TRACE") != nullptr;
    if (trace) std::fprintf(stderr, "op %d (nodes %llu, held %zu)\n", op, (unsigned long long)fs.nodes_used(), s.held.size());
    const bool mutating = op != 0 && op != 7 && op != 8 && op != 9 && op != 13 && op != 15 && op != 16 &&
                          op != 17 && op != 22;
    const std::string before = mutating ? CountTree(fs, true).listing : std::string();
    Error e = Error::kOk;
    switch (op) {
      case 0: {  // Lookup
        NodeRef base = Base(in, s);
        auto r = fs.Lookup(base, Path(in, limits));
        if (r.ok() && in.ConsumeBool()) Keep(s, *r);
        break;
      }
      case 1: {  // Open
        NodeRef base = Base(in, s);
        std::string path = Path(in, limits);
        OpenFlags f;
        f.create = in.ConsumeBool();
        f.exclusive = in.ConsumeBool();
        f.truncate = in.ConsumeBool();
        f.directory = in.ConsumeBool();
        f.write = in.ConsumeBool();
        auto r = fs.Open(base, path, f);
        e = r.error();
        if (r.ok()) {
          FUZZ_CHECK(!f.directory || (*r)->is_dir());
          FUZZ_CHECK(!f.truncate || (*r)->is_dir() || (*r)->size() == 0);
          Keep(s, *r);
        }
        break;
      }
      case 2: {  // Mkdir
        NodeRef base = Base(in, s);
        std::string path = Path(in, limits);
        e = fs.Mkdir(base, path);
        if (e == Error::kOk) {
          auto r = fs.Lookup(base, path);
          FUZZ_CHECK(r.ok() && (*r)->is_dir(), "mkdir %s succeeded but lookup: %s", path.c_str(),
                     ErrorName(r.error()));
        }
        break;
      }
      case 3: {  // Rmdir
        NodeRef base = Base(in, s);
        std::string path = Path(in, limits);
        e = fs.Rmdir(base, path);
        if (e == Error::kOk) FUZZ_CHECK(!Exists(fs, base, path), "rmdir %s: still there", path.c_str());
        break;
      }
      case 4: {  // Unlink
        NodeRef base = Base(in, s);
        std::string path = Path(in, limits);
        e = fs.Unlink(base, path);
        if (e == Error::kOk) FUZZ_CHECK(!Exists(fs, base, path), "unlink %s: still there", path.c_str());
        break;
      }
      case 5: {  // Rename
        NodeRef ob = Base(in, s);
        std::string op_ = Path(in, limits);
        NodeRef nb = Base(in, s);
        std::string np = Path(in, limits);
        auto src = fs.Lookup(ob, op_);
        e = fs.Rename(ob, op_, nb, np);
        if (e == Error::kOk) {
          FUZZ_CHECK(src.ok());
          auto dst = fs.Lookup(nb, np);
          FUZZ_CHECK(dst.ok() && dst->get() == src->get(), "rename %s -> %s: target is not the source",
                     op_.c_str(), np.c_str());
        }
        break;
      }
      case 6: {  // Link / Symlink (never succeed)
        NodeRef ob = Base(in, s);
        std::string a = Path(in, limits);
        NodeRef nb = Base(in, s);
        std::string b = Path(in, limits);
        e = in.ConsumeBool() ? fs.Link(ob, a, nb, b) : fs.Symlink(a, nb, b);
        FUZZ_CHECK(e != Error::kOk, "a link was made");
        break;
      }
      case 7: {  // ReadLink (nothing is a link)
        NodeRef base = Base(in, s);
        FUZZ_CHECK(fs.ReadLink(base, Path(in, limits)) != Error::kOk);
        break;
      }
      case 8: {  // Parent of a held node
        if (NodeRef n = Held(in, s)) (void)fs.Parent(n);
        break;
      }
      case 9: {  // Read
        NodeRef n = Held(in, s);
        if (!n || n->is_dir()) break;
        std::vector<uint8_t> out(in.ConsumeIntegralInRange<size_t>(0, 1 << 12));
        const uint64_t offset = in.ConsumeBool() ? in.ConsumeIntegral<uint64_t>() : in.ConsumeIntegralInRange<uint64_t>(0, 1 << 12);
        size_t got = FileSystem::Read(*n, offset, out);
        FUZZ_CHECK(got <= out.size());
        FUZZ_CHECK(got == 0 || offset + got <= n->size());
        break;
      }
      case 10: {  // Write
        NodeRef n = Held(in, s);
        if (!n) break;
        const uint64_t offset = in.ConsumeIntegralInRange(0, 3) == 0 ? in.ConsumeIntegral<uint64_t>()
                                                                      : in.ConsumeIntegralInRange<uint64_t>(0, 1 << 15);
        const std::string bytes = in.ConsumeRandomLengthString(1 << 12);
        const uint64_t old_size = n->size();
        auto r = fs.Write(n, offset, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
        e = r.error();
        if (r.ok()) {
          FUZZ_CHECK(*r == bytes.size());
          FUZZ_CHECK(bytes.empty() || n->size() == std::max<uint64_t>(old_size, offset + bytes.size()));
        } else {
          FUZZ_CHECK(n->size() == old_size);
        }
        break;
      }
      case 11: {  // Truncate
        NodeRef n = Held(in, s);
        if (!n) break;
        const uint64_t size_ = in.ConsumeBool() ? in.ConsumeIntegral<uint64_t>() : in.ConsumeIntegralInRange<uint64_t>(0, 1 << 15);
        e = fs.Truncate(n, size_);
        if (e == Error::kOk) FUZZ_CHECK(n->size() == size_);
        break;
      }
      case 12: {  // Allocate
        NodeRef n = Held(in, s);
        if (!n) break;
        const uint64_t off = in.ConsumeBool() ? in.ConsumeIntegral<uint64_t>() : in.ConsumeIntegralInRange<uint64_t>(0, 1 << 15);
        const uint64_t len = in.ConsumeBool() ? in.ConsumeIntegral<uint64_t>() : in.ConsumeIntegralInRange<uint64_t>(0, 1 << 15);
        e = fs.Allocate(n, off, len);
        break;
      }
      case 13: {  // ReadDir
        NodeRef n = Held(in, s);
        if (!n) n = Base(in, s);
        auto r = fs.ReadDir(n);
        if (r.ok()) {
          for (size_t i = 1; i < r->size(); ++i) FUZZ_CHECK((*r)[i - 1].name < (*r)[i].name);
        }
        break;
      }
      case 14: {  // SetTimes
        NodeRef n = Held(in, s);
        if (!n) break;
        std::optional<uint64_t> a, m;
        if (in.ConsumeBool()) a = in.ConsumeIntegral<uint64_t>();
        if (in.ConsumeBool()) m = in.ConsumeIntegral<uint64_t>();
        e = fs.SetTimes(n, a, m);
        break;
      }
      case 15: (void)fs.ReadFile(Path(in, limits)); break;
      case 16: (void)fs.List(Path(in, limits)); break;
      case 17: (void)fs.StatPath(Path(in, limits)); break;
      case 18: {  // WriteFile (host)
        std::string path = Path(in, limits);
        std::string bytes = in.ConsumeRandomLengthString(1 << 12);
        e = fs.WriteFile(path, bytes);
        if (e == Error::kOk) {
          auto back = fs.ReadFile(path);
          FUZZ_CHECK(back && *back == bytes, "WriteFile %s: read back differs", path.c_str());
        }
        break;
      }
      case 19: {  // MakeDirs
        std::string path = Path(in, limits);
        e = fs.MakeDirs(path);
        if (e == Error::kOk) FUZZ_CHECK(fs.List(path).has_value(), "MakeDirs %s: no directory", path.c_str());
        break;
      }
      case 20: {  // Remove
        std::string path = Path(in, limits);
        e = fs.Remove(path);
        if (e == Error::kOk) FUZZ_CHECK(!fs.StatPath(path).ok(), "Remove %s: still there", path.c_str());
        break;
      }
      case 21: {  // Drop a held node
        if (!s.held.empty()) s.held.erase(s.held.begin() + in.ConsumeIntegralInRange<size_t>(0, s.held.size() - 1));
        break;
      }
      case 22: {  // Continue on a copy
        FileSystem::NodeMap map;
        std::unique_ptr<FileSystem> copy = fs.Clone(&map);
        const brig::fuzz::TreeCount a = CountTree(fs, true), b = CountTree(*copy, true);
        FUZZ_CHECK(a.listing == b.listing, "the copy differs");
        std::vector<NodeRef> held;
        for (const NodeRef& n : s.held) held.push_back(copy->CopyOf(n, &map));
        // Removed nodes still held are charged to the copy once copied (CopyOf); compared
        // before the original's are let go.
        FUZZ_CHECK(copy->bytes_used() == fs.bytes_used() && copy->nodes_used() == fs.nodes_used() &&
                   copy->files_used() == fs.files_used(), "copy: %llu bytes %llu nodes %llu files, original %llu %llu %llu",
                   (unsigned long long)copy->bytes_used(), (unsigned long long)copy->nodes_used(),
                   (unsigned long long)copy->files_used(), (unsigned long long)fs.bytes_used(),
                   (unsigned long long)fs.nodes_used(), (unsigned long long)fs.files_used());
        s.held = std::move(held);
        if (s.home) s.home = copy->CopyOf(s.home, &map);
        if (s.tmp) s.tmp = copy->CopyOf(s.tmp, &map);
        // The copy keeps counting its own time.
        copy->set_clock([&fake_now] { return fake_now++; });
        s.fs = std::move(copy);  // the original goes; its nodes held by no one are freed
        break;
      }
      case 23: {  // Stat of a held node
        if (NodeRef n = Held(in, s)) (void)FileSystem::GetStat(*n);
        break;
      }
    }
    CheckQuota(*s.fs, s.held);
    if (mutating && e != Error::kOk) {
      const std::string after = CountTree(*s.fs, true).listing;
      FUZZ_CHECK(after == before, "op %d failed (%s) but changed the tree:\n--- before\n%s--- after\n%s", op,
                 ErrorName(e), before.c_str(), after.c_str());
    }
  }
  s.held.clear();
  CheckQuota(*s.fs, s.held);
  return 0;
}
