// brig::vfs::PackTree: the stdlib pack's pre-built index (format in src/vfs/pack.h), its
// validation, lazy directories, inode numbers, and the Python writer guest/pack_stdlib.py.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "vfs/file_system.h"
#include "vfs/pack.h"

namespace brig::vfs {
namespace {

std::shared_ptr<const PackTree> MustParse(std::string_view bytes) {
  std::string error;
  auto tree = PackTree::Parse(bytes, &error);
  EXPECT_TRUE(tree) << error;
  return tree;
}

std::string ParseError(std::string_view bytes) {
  std::string error;
  auto tree = PackTree::Parse(bytes, &error);
  EXPECT_FALSE(tree);
  EXPECT_NE(error.find("bad stdlib pack"), std::string::npos) << error;
  return error;
}

const std::map<std::string, std::string>& SmallFiles() {
  static const std::map<std::string, std::string> files = {{"os.py", "import sys\n"},
                                                           {"json/__init__.py", "# json\n"},
                                                           {"json/decoder.py", "# decoder\n"},
                                                           {"encodings/utf_8.py", "# utf8\n"}};
  return files;
}

// A pack that lives for the whole test program (file nodes point into it).
const std::string& SmallPack() {
  static const std::string pack = BuildPack(SmallFiles());
  return pack;
}

// Little-endian fields of a pack, for writing packs by hand.
void Put(std::string* p, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) (*p)[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t Get(const std::string& p, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(p[at + i])} << (8 * i);
  return v;
}
// Offsets of a record's fields.
size_t Rec(uint32_t i) { return 16 + 24 * size_t{i}; }
constexpr size_t kNameOffset = 0, kNameLength = 4, kKind = 6, kFirst = 8, kCount = 16;

// Records of SmallPack, breadth-first: 0 root, 1 encodings, 2 json, 3 os.py,
// 4 encodings/utf_8.py, 5 json/__init__.py, 6 json/decoder.py.
TEST(PackTest, LayoutIsBreadthFirstAndSorted) {
  const std::string& p = SmallPack();
  ASSERT_EQ(p.substr(0, 8), "BRIGPK02");
  EXPECT_EQ(Get(p, 8, 4), 7u);
  auto name = [&](uint32_t i) {
    size_t names = Rec(7);
    return p.substr(names + Get(p, Rec(i) + kNameOffset, 4), Get(p, Rec(i) + kNameLength, 2));
  };
  std::vector<std::string> names;
  for (uint32_t i = 0; i < 7; ++i) names.push_back(name(i));
  EXPECT_EQ(names, (std::vector<std::string>{"", "encodings", "json", "os.py", "utf_8.py", "__init__.py",
                                             "decoder.py"}));
  EXPECT_EQ(Get(p, Rec(0) + kFirst, 8), 1u);
  EXPECT_EQ(Get(p, Rec(0) + kCount, 8), 3u);
  EXPECT_EQ(Get(p, Rec(2) + kFirst, 8), 5u);
  EXPECT_EQ(Get(p, Rec(2) + kCount, 8), 2u);
}

TEST(PackTest, ParsesFilesAndImpliedDirectories) {
  auto tree = MustParse(SmallPack());
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->file_count(), 4u);
  EXPECT_EQ(tree->node_count(), 7u);  // root, json, encodings + 4 files
  const auto& json = tree->root()->children.at("json");
  EXPECT_TRUE(json->is_dir());
  EXPECT_FALSE(json->writable);
  EXPECT_EQ(json->mount_id, kStdlibMount);
  EXPECT_EQ(json->parent, tree->root().get());
  EXPECT_EQ(json->children.at("decoder.py")->contents(), "# decoder\n");
  EXPECT_EQ(json->children.at("decoder.py")->parent, json.get());
  EXPECT_EQ(tree->root()->parent, nullptr);
  EXPECT_TRUE(tree->root()->mount_root);
}

TEST(PackTest, FileContentsAreNotCopied) {
  const std::string& pack = SmallPack();
  auto tree = MustParse(pack);
  std::string_view data = tree->root()->children.at("os.py")->contents();
  EXPECT_GE(data.data(), pack.data());
  EXPECT_LT(data.data(), pack.data() + pack.size());
}

// The point of the index: opening the pack, looking files up, listing and stat-ing them never
// touch the file contents (20 MiB for the stdlib, page faults when mapped). Here they lie in
// pages that fault if touched.
TEST(PackTest, IndexIsUsableWithoutTouchingContents) {
  const std::string& pack = SmallPack();
  const size_t data_at = Rec(7) + Get(pack, 12, 4);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  ASSERT_LT(data_at, page);
  char* map = static_cast<char*>(mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(map, MAP_FAILED);
  char* start = map + page - data_at;  // the contents begin on the second page
  std::memcpy(start, pack.data(), pack.size());
  ASSERT_EQ(mprotect(map + page, 2 * page, PROT_NONE), 0);
  {
    std::string_view bytes(start, pack.size());
    FileSystem::Options o;
    o.stdlib = MustParse(bytes);
    ASSERT_TRUE(o.stdlib);
    FileSystem fs(o);
    auto entries = fs.List("/usr/local/lib/python3.11/json");
    ASSERT_TRUE(entries);
    ASSERT_EQ(entries->size(), 2u);
    EXPECT_EQ((*entries)[1].name, "decoder.py");
    auto st = fs.StatPath("/usr/local/lib/python3.11/json/decoder.py");
    ASSERT_TRUE(st);
    EXPECT_EQ(st->size, 10u);
    EXPECT_EQ(st->type, NodeType::kFile);
    EXPECT_EQ(fs.StatPath("/usr/local/lib/python3.11/nope.py").error(), Error::kNoEnt);
  }
  munmap(map, 3 * page);
}

TEST(PackTest, InodeNumbersAreTheRecordIndexPlusOne) {
  auto a = MustParse(SmallPack());
  auto b = MustParse(SmallPack());
  FileSystem::Options oa, ob;
  oa.stdlib = a;
  ob.stdlib = b;
  FileSystem fa(oa), fb(ob);
  const std::string lib = "/usr/local/lib/python3.11";
  EXPECT_EQ(fa.StatPath(lib)->ino, 1u);
  EXPECT_EQ(fa.StatPath(lib + "/encodings")->ino, 2u);
  EXPECT_EQ(fa.StatPath(lib + "/os.py")->ino, 4u);
  EXPECT_EQ(fa.StatPath(lib + "/json/decoder.py")->ino, 7u);
  // Whatever order directories are first used in, the numbers are the same.
  EXPECT_EQ(fb.StatPath(lib + "/json/decoder.py")->ino, 7u);
  EXPECT_EQ(fb.StatPath(lib + "/encodings/utf_8.py")->ino, 5u);
  auto entries = fb.List(lib);
  ASSERT_TRUE(entries);
  std::vector<uint64_t> inos;
  for (const DirEntry& e : *entries) inos.push_back(e.ino);
  EXPECT_EQ(inos, (std::vector<uint64_t>{2, 3, 4}));
}

TEST(PackTest, ManyFilesRoundTrip) {
  std::map<std::string, std::string> files;
  for (int i = 0; i < 3000; ++i)
    files["pkg" + std::to_string(i % 40) + "/sub" + std::to_string(i % 3) + "/m" + std::to_string(i) + ".pyc"] =
        std::string(i % 7, static_cast<char>('a' + i % 26));
  files["top.py"] = "";
  static std::string pack;  // must outlive the tree
  pack = BuildPack(files);
  auto tree = MustParse(pack);
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->file_count(), 3001u);
  EXPECT_EQ(tree->root()->children.size(), 41u);
  // Every file is found with its contents; walking the tree finds exactly the files, each
  // directory sorted, every inode number unique.
  FileSystem::Options o;
  o.stdlib = tree;
  FileSystem fs(o);
  for (const auto& [path, data] : files) EXPECT_EQ(fs.ReadFile("/usr/local/lib/python3.11/" + path), data) << path;
  std::map<std::string, std::string> found;
  std::set<uint64_t> inos;
  std::function<void(const Node&, const std::string&)> walk = [&](const Node& dir, const std::string& prefix) {
    EXPECT_TRUE(inos.insert(dir.ino).second);
    std::string last;
    for (const auto& [name, child] : dir.children) {
      EXPECT_LT(last, name);
      last = name;
      if (child->is_dir()) {
        walk(*child, prefix + name + "/");
      } else {
        EXPECT_TRUE(inos.insert(child->ino).second);
        found[prefix + name] = std::string(child->contents());
      }
    }
  };
  walk(*tree->root(), "");
  EXPECT_EQ(found, files);
  EXPECT_EQ(inos.size(), tree->node_count());
}

TEST(PackTest, EmptyPackIsValid) {
  static const std::string pack = BuildPack({});
  auto tree = MustParse(pack);
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->file_count(), 0u);
  EXPECT_EQ(tree->node_count(), 1u);
  EXPECT_TRUE(tree->root()->children.empty());
}

TEST(PackTest, RejectsBadMagic) {
  std::string old = SmallPack();
  old[7] = '1';  // the format before the index
  EXPECT_NE(ParseError(old).find("magic"), std::string::npos);
  EXPECT_NE(ParseError("BRIG").find("magic"), std::string::npos);
  EXPECT_NE(ParseError("").find("magic"), std::string::npos);
}

TEST(PackTest, RejectsEveryTruncation) {
  const std::string& pack = SmallPack();
  for (size_t n = 0; n < pack.size(); ++n) ParseError(std::string_view(pack).substr(0, n));
}

TEST(PackTest, RejectsOutOfBoundsOffsets) {
  auto mutated = [](size_t at, uint64_t v, int bytes) {
    std::string p = SmallPack();
    Put(&p, at, v, bytes);
    return p;
  };
  const size_t data_at = Rec(7) + Get(SmallPack(), 12, 4);
  EXPECT_NE(ParseError(mutated(8, 1000000, 4)).find("exceeds"), std::string::npos);  // node count
  EXPECT_NE(ParseError(mutated(8, 0, 4)).find("root"), std::string::npos);
  EXPECT_NE(ParseError(mutated(12, 0xffffffff, 4)).find("exceeds"), std::string::npos);  // names size
  EXPECT_NE(ParseError(mutated(Rec(3) + kNameOffset, 0xfffffff0, 4)).find("name out of bounds"), std::string::npos);
  EXPECT_NE(ParseError(mutated(Rec(6) + kNameLength, 300, 2)).find("name out of bounds"), std::string::npos);
  // File contents: past the end, wrapping around, or inside the index.
  EXPECT_NE(ParseError(mutated(Rec(3) + kCount, 1000, 8)).find("contents out of bounds"), std::string::npos);
  EXPECT_NE(ParseError(mutated(Rec(3) + kFirst, ~0ull - 2, 8)).find("contents out of bounds"), std::string::npos);
  EXPECT_NE(ParseError(mutated(Rec(3) + kCount, ~0ull, 8)).find("contents out of bounds"), std::string::npos);
  EXPECT_NE(ParseError(mutated(Rec(3) + kFirst, data_at - 1, 8)).find("contents out of bounds"), std::string::npos);
  EXPECT_NE(ParseError(mutated(Rec(3) + kFirst, 0, 8)).find("contents out of bounds"), std::string::npos);
  // Directory entries: past the last record, huge counts.
  EXPECT_FALSE(PackTree::Parse(mutated(Rec(2) + kCount, 3, 8), nullptr));
  EXPECT_FALSE(PackTree::Parse(mutated(Rec(2) + kCount, ~0ull, 8), nullptr));
  EXPECT_FALSE(PackTree::Parse(mutated(Rec(2) + kFirst, ~0ull, 8), nullptr));
  EXPECT_NE(ParseError(mutated(Rec(6) + kKind, 7, 2)).find("unknown kind"), std::string::npos);
}

TEST(PackTest, RejectsBrokenTreeLayouts) {
  auto mutated = [](std::initializer_list<std::tuple<size_t, uint64_t, int>> changes) {
    std::string p = SmallPack();
    for (auto [at, v, bytes] : changes) Put(&p, at, v, bytes);
    return p;
  };
  // A directory that holds itself, or the root (cycles).
  ParseError(mutated({{Rec(2) + kFirst, 2, 8}}));
  ParseError(mutated({{Rec(2) + kFirst, 0, 8}}));
  // Two directories claiming the same records.
  ParseError(mutated({{Rec(2) + kFirst, 4, 8}, {Rec(2) + kCount, 1, 8}}));
  // Records in no directory.
  EXPECT_NE(ParseError(mutated({{Rec(2) + kCount, 1, 8}})).find("in no directory"), std::string::npos);
  // A file as the root; a named root.
  ParseError(mutated({{Rec(0) + kKind, 1, 2}}));
  ParseError(mutated({{Rec(0) + kNameLength, 1, 2}}));
  // A directory turned into a file: its entries belong to no directory.
  ParseError(mutated({{Rec(1) + kKind, 1, 2}, {Rec(1) + kFirst, Rec(7) + Get(SmallPack(), 12, 4), 8}, {Rec(1) + kCount, 0, 8}}));
}

TEST(PackTest, RejectsBadNames) {
  for (const std::string& bad : {std::string(""), std::string("/abs"), std::string("a/../b"), std::string("../x"),
                                 std::string("a//b"), std::string("a/"), std::string("./a"), std::string("a/."),
                                 std::string("a\0b", 3), std::string(256, 'n'), std::string("d/") + std::string(256, 'n')}) {
    std::string pack = BuildPack({{bad, "x"}});
    std::string error;
    EXPECT_FALSE(PackTree::Parse(pack, &error)) << "path '" << bad << "'";
    EXPECT_NE(error.find("bad stdlib pack"), std::string::npos);
  }
  // A '/' inside a name (written by hand: BuildPack splits on it).
  std::string p = SmallPack();
  p[Rec(7) + Get(p, Rec(3) + kNameOffset, 4) + 4] = '/';  // "os.p/": still in order
  EXPECT_NE(ParseError(p).find("'/' or NUL in the name table"), std::string::npos);
}

TEST(PackTest, RejectsDuplicatesUnsortedEntriesAndFileDirectoryConflicts) {
  // json/__init__.py and json/decoder.py: make the second name equal to, then less than, the first.
  std::string p = SmallPack();
  Put(&p, Rec(6) + kNameOffset, Get(p, Rec(5) + kNameOffset, 4), 4);
  Put(&p, Rec(6) + kNameLength, Get(p, Rec(5) + kNameLength, 2), 2);
  EXPECT_NE(ParseError(p).find("increasing"), std::string::npos);
  p = SmallPack();
  Put(&p, Rec(5) + kNameOffset, Get(SmallPack(), Rec(6) + kNameOffset, 4), 4);
  Put(&p, Rec(5) + kNameLength, Get(SmallPack(), Rec(6) + kNameLength, 2), 2);
  Put(&p, Rec(6) + kNameOffset, Get(SmallPack(), Rec(5) + kNameOffset, 4), 4);
  Put(&p, Rec(6) + kNameLength, Get(SmallPack(), Rec(5) + kNameLength, 2), 2);
  EXPECT_NE(ParseError(p).find("increasing"), std::string::npos);
  ParseError(BuildPack({{"a", "1"}, {"a/b", "2"}}));
}

TEST(PackTest, RejectsTooDeep) {
  std::string deep;
  for (int i = 0; i < 60; ++i) deep += "d/";
  static const std::string ok = BuildPack({{deep.substr(0, deep.size() - 1), "x"}});  // 60 components
  EXPECT_TRUE(MustParse(ok));
  EXPECT_NE(ParseError(BuildPack({{deep + "f", "x"}})).find("too deep"), std::string::npos);
}

// Directories fill in their entries on first use; threads racing to do it see one set of nodes.
TEST(PackTest, DirectoriesFillInOnceAcrossThreads) {
  for (int round = 0; round < 20; ++round) {
    auto tree = MustParse(SmallPack());
    std::vector<std::thread> threads;
    std::vector<const Node*> seen(4);
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        const auto& json = tree->root()->children.at("json");
        seen[t] = json->children.at("decoder.py").get();
      });
    }
    for (auto& th : threads) th.join();
    for (int t = 1; t < 4; ++t) EXPECT_EQ(seen[t], seen[0]);
  }
}

// guest/pack_stdlib.py writes the stdlib pack: it must write exactly what BuildPack writes.
TEST(PackTest, PythonWriterMatchesBuildPack) {
  const std::string script = std::string(BRIG_CASES_DIR) + "/../../../guest/pack_stdlib.py";
  ASSERT_TRUE(std::ifstream(script).good()) << script;
  char tmpl[] = "/tmp/brig-pack-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string out = std::string(tmpl) + "/out.pack";
  std::map<std::string, std::string> files = SmallFiles();
  files["pkg/sub/deep/x.pyc"] = std::string("\0\1\2", 3);
  files["pkg/a-b.py"] = "";
  files["pkg/a.py"] = "a";
  files["zz\xc3\xa9.txt"] = "utf-8 name";
  // The files go to Python as a repr of bytes keys and values.
  auto repr = [](const std::string& s) {
    std::string r = "b'";
    char buf[8];
    for (unsigned char c : s) {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      r += buf;
    }
    return r + "'";
  };
  std::string dict = "{";
  for (const auto& [path, data] : files) dict += repr(path) + ": " + repr(data) + ", ";
  dict += "}";
  const std::string cmd = "/usr/bin/python3.11 -c \"import sys; sys.path.insert(0, sys.argv[1]); import pack_stdlib; "
                          "pack_stdlib.write_pack(" + dict + ", open(sys.argv[2], 'wb'))\" " +
                          script.substr(0, script.rfind('/')) + " " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out, std::ios::binary);
  std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(out.c_str());
  rmdir(tmpl);
  EXPECT_EQ(written, BuildPack(files));
}

}  // namespace
}  // namespace brig::vfs
