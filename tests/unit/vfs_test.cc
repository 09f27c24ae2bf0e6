// brig::vfs: mounts, read-only rules, quotas, rename/unlink/rmdir, paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "vfs/file_system.h"
#include "vfs/pack.h"

namespace brig::vfs {
namespace {

std::shared_ptr<const PackTree> MustParse(const std::string& bytes) {
  std::string error;
  auto tree = PackTree::Parse(bytes, &error);
  EXPECT_TRUE(tree) << error;
  return tree;
}

// A pack that lives for the whole test program (file nodes point into it).
const std::string& StdlibPack() {
  static const std::string pack = BuildPack({{"os.py", "import sys\n"},
                                             {"json/__init__.py", "# json\n"},
                                             {"json/decoder.py", "# decoder\n"},
                                             {"encodings/utf_8.py", "# utf8\n"}});
  return pack;
}

std::unique_ptr<FileSystem> MakeFs(Limits limits = {}) {
  FileSystem::Options o;
  o.limits = limits;
  o.stdlib = MustParse(StdlibPack());
  return std::make_unique<FileSystem>(o);
}

std::vector<std::string> Names(const std::vector<DirEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  return names;
}

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// ---- layout and mounts

TEST(FileSystemTest, RootListsOnlyMounts) {
  auto fs = MakeFs();
  EXPECT_EQ(Names(*fs->List("/")), (std::vector<std::string>{"dev", "home", "tmp", "usr"}));
  EXPECT_EQ(Names(*fs->List("/home")), (std::vector<std::string>{"user"}));
  EXPECT_EQ(Names(*fs->List("/usr/local/lib")), (std::vector<std::string>{"python3.11"}));
  EXPECT_EQ(Names(*fs->List("/usr/local/lib/python3.11")),
            (std::vector<std::string>{"encodings", "json", "os.py"}));
  EXPECT_EQ(fs->ReadFile("/usr/local/lib/python3.11/json/decoder.py"), "# decoder\n");
  EXPECT_FALSE(fs->ReadFile("/etc/passwd"));
}

TEST(FileSystemTest, WithoutPackTheStdlibDirIsEmpty) {
  FileSystem fs;
  auto l = fs.List("/usr/local/lib/python3.11");
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->empty());
  EXPECT_EQ(fs.Mkdir(fs.root(), "/usr/local/lib/python3.11/x"), Error::kRoFs);
}

TEST(FileSystemTest, DotDotIsClampedAtRoot) {
  auto fs = MakeFs();
  auto home = fs->Lookup(fs->root(), "home/user");
  ASSERT_TRUE(home);
  auto r = fs->Lookup(*home, "../../../../../..");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value(), fs->root());
  auto os = fs->Lookup(*home, "../../../../usr/local/lib/python3.11/os.py");
  ASSERT_TRUE(os);
  EXPECT_EQ(os.value()->contents(), "import sys\n");
  auto stdlib_parent = fs->Lookup(fs->root(), "usr/local/lib/python3.11/json/../..");
  ASSERT_TRUE(stdlib_parent);
  EXPECT_EQ(stdlib_parent.value(), fs->Lookup(fs->root(), "/usr/local/lib").value());
  EXPECT_EQ(fs->Lookup(fs->root(), "/..").value(), fs->root());
}

TEST(FileSystemTest, PathErrors) {
  auto fs = MakeFs();
  EXPECT_EQ(fs->Lookup(fs->root(), "").error(), Error::kNoEnt);
  EXPECT_EQ(fs->Lookup(fs->root(), "nope").error(), Error::kNoEnt);
  EXPECT_EQ(fs->Lookup(fs->root(), "usr/local/lib/python3.11/os.py/x").error(), Error::kNotDir);
  EXPECT_EQ(fs->Lookup(fs->root(), "usr/local/lib/python3.11/os.py/").error(), Error::kNotDir);
  EXPECT_EQ(fs->Lookup(fs->root(), std::string("tmp\0x", 5)).error(), Error::kInval);
  EXPECT_EQ(fs->Lookup(fs->root(), "tmp/" + std::string(256, 'a')).error(), Error::kNameTooLong);
  EXPECT_EQ(fs->Lookup(fs->root(), std::string(4097, '/')).error(), Error::kNameTooLong);
  EXPECT_TRUE(fs->Lookup(fs->root(), "//tmp///./").ok());
}

TEST(FileSystemTest, ReadOnlyPartsRefuseWrites) {
  auto fs = MakeFs();
  const auto& root = fs->root();
  OpenFlags w;
  w.write = true;
  EXPECT_EQ(fs->Open(root, "usr/local/lib/python3.11/os.py", w).error(), Error::kRoFs);
  OpenFlags c;
  c.create = true;
  EXPECT_EQ(fs->Open(root, "usr/local/lib/python3.11/new.py", c).error(), Error::kRoFs);
  EXPECT_EQ(fs->Open(root, "evil", c).error(), Error::kRoFs);
  EXPECT_EQ(fs->Mkdir(root, "etc"), Error::kRoFs);
  EXPECT_EQ(fs->Mkdir(root, "usr/local/lib/python3.11/json/x"), Error::kRoFs);
  EXPECT_EQ(fs->Unlink(root, "usr/local/lib/python3.11/os.py"), Error::kRoFs);
  EXPECT_EQ(fs->Rmdir(root, "usr/local/lib/python3.11/json"), Error::kRoFs);
  EXPECT_EQ(fs->Rmdir(root, "usr"), Error::kRoFs);
  EXPECT_EQ(fs->Rename(root, "usr/local/lib/python3.11/os.py", root, "usr/local/lib/python3.11/o.py"),
            Error::kRoFs);
  auto os = fs->Lookup(root, "usr/local/lib/python3.11/os.py");
  EXPECT_EQ(fs->Write(*os, 0, Bytes("x")).error(), Error::kRoFs);
  EXPECT_EQ(fs->Truncate(*os, 0), Error::kRoFs);
  EXPECT_EQ(fs->SetTimes(*os, 1, 1), Error::kRoFs);
  EXPECT_EQ(fs->WriteFile("/usr/local/lib/python3.11/os.py", "x"), Error::kRoFs);
  EXPECT_EQ(fs->WriteFile("/passwd", "x"), Error::kRoFs);
  EXPECT_EQ(fs->ReadFile("/usr/local/lib/python3.11/os.py"), "import sys\n");
  // Reading read-only files is fine.
  EXPECT_TRUE(fs->Open(root, "usr/local/lib/python3.11/os.py", OpenFlags{}).ok());
}

TEST(FileSystemTest, OpenCreateExclTruncDirectory) {
  auto fs = MakeFs();
  auto home = fs->Lookup(fs->root(), "/home/user").value();
  OpenFlags c;
  c.create = true;
  c.write = true;
  auto f = fs->Open(home, "a.txt", c);
  ASSERT_TRUE(f);
  ASSERT_TRUE(fs->Write(*f, 0, Bytes("hello")).ok());
  OpenFlags excl = c;
  excl.exclusive = true;
  EXPECT_EQ(fs->Open(home, "a.txt", excl).error(), Error::kExist);
  OpenFlags dir;
  dir.directory = true;
  EXPECT_EQ(fs->Open(home, "a.txt", dir).error(), Error::kNotDir);
  EXPECT_EQ(fs->Open(home, "a.txt/", OpenFlags{}).error(), Error::kNotDir);
  EXPECT_EQ(fs->Open(fs->root(), "tmp", c).error(), Error::kIsDir);
  OpenFlags t = c;
  t.truncate = true;
  ASSERT_TRUE(fs->Open(home, "a.txt", t));
  EXPECT_EQ(fs->ReadFile("/home/user/a.txt"), "");
  EXPECT_EQ(fs->bytes_used(), 0u);
}

TEST(FileSystemTest, SparseWriteZeroFillsAndCounts) {
  auto fs = MakeFs();
  ASSERT_EQ(fs->WriteFile("/tmp/s", ""), Error::kOk);
  auto f = fs->Lookup(fs->root(), "/tmp/s").value();
  ASSERT_TRUE(fs->Write(f, 10, Bytes("ab")).ok());
  EXPECT_EQ(fs->ReadFile("/tmp/s"), std::string(10, '\0') + "ab");
  EXPECT_EQ(fs->bytes_used(), 12u);
  uint8_t buf[8];
  EXPECT_EQ(FileSystem::Read(*f, 8, buf), 4u);
  EXPECT_EQ(FileSystem::Read(*f, 12, buf), 0u);
  EXPECT_EQ(FileSystem::Read(*f, ~0ull, buf), 0u);
}

TEST(FileSystemTest, ByteQuotaFailureLeavesFileUnchanged) {
  Limits l;
  l.max_total_bytes = 100;
  auto fs = MakeFs(l);
  ASSERT_EQ(fs->WriteFile("/home/user/a", std::string(60, 'a')), Error::kOk);
  ASSERT_EQ(fs->WriteFile("/tmp/b", std::string(30, 'b')), Error::kOk);  // quota spans both mounts
  auto a = fs->Lookup(fs->root(), "/home/user/a").value();
  EXPECT_EQ(fs->Write(a, 50, Bytes(std::string(30, 'x'))).error(), Error::kNoSpc);
  EXPECT_EQ(fs->ReadFile("/home/user/a"), std::string(60, 'a'));
  EXPECT_EQ(fs->bytes_used(), 90u);
  EXPECT_EQ(fs->Truncate(a, 71), Error::kNoSpc);
  EXPECT_EQ(fs->WriteFile("/home/user/a", std::string(71, 'z')), Error::kNoSpc);
  EXPECT_EQ(fs->ReadFile("/home/user/a"), std::string(60, 'a'));
  // Overwriting in place and growing up to the quota are fine.
  EXPECT_TRUE(fs->Write(a, 0, Bytes(std::string(70, 'y'))).ok());
  EXPECT_EQ(fs->bytes_used(), 100u);
  // Freeing space makes room again.
  EXPECT_EQ(fs->Unlink(fs->root(), "/tmp/b"), Error::kOk);
  EXPECT_EQ(fs->bytes_used(), 70u);
}

TEST(FileSystemTest, UnlinkedOpenFileStaysChargedUntilReleased) {
  Limits l;
  l.max_total_bytes = 100;
  auto fs = MakeFs(l);
  ASSERT_EQ(fs->WriteFile("/tmp/a", std::string(80, 'a')), Error::kOk);
  NodeRef held = fs->Lookup(fs->root(), "/tmp/a").value();
  ASSERT_EQ(fs->Unlink(fs->root(), "/tmp/a"), Error::kOk);
  EXPECT_EQ(fs->ReadFile("/tmp/a"), std::nullopt);
  EXPECT_EQ(fs->bytes_used(), 80u);
  EXPECT_EQ(fs->WriteFile("/tmp/b", std::string(30, 'b')), Error::kNoSpc);
  EXPECT_FALSE(fs->Lookup(fs->root(), "/tmp/b").ok());  // no empty file left behind
  EXPECT_EQ(FileSystem::GetStat(*held).nlink, 0u);
  held.reset();
  EXPECT_EQ(fs->bytes_used(), 0u);
  EXPECT_EQ(fs->nodes_used(), 0u);
  EXPECT_EQ(fs->WriteFile("/tmp/b", std::string(30, 'b')), Error::kOk);
}

TEST(FileSystemTest, FileSizeLimit) {
  Limits l;
  l.max_file_size = 10;
  auto fs = MakeFs(l);
  ASSERT_EQ(fs->WriteFile("/tmp/a", "12345"), Error::kOk);
  auto a = fs->Lookup(fs->root(), "/tmp/a").value();
  EXPECT_EQ(fs->Write(a, 8, Bytes("abc")).error(), Error::kFBig);
  EXPECT_EQ(fs->Write(a, ~0ull - 1, Bytes("abc")).error(), Error::kFBig);
  EXPECT_EQ(fs->Truncate(a, 11), Error::kFBig);
  EXPECT_EQ(fs->Allocate(a, ~0ull, ~0ull), Error::kFBig);
  EXPECT_EQ(fs->ReadFile("/tmp/a"), "12345");
}

TEST(FileSystemTest, NodeQuota) {
  Limits l;
  l.max_nodes = 3;
  auto fs = MakeFs(l);
  EXPECT_EQ(fs->Mkdir(fs->root(), "/tmp/d"), Error::kOk);
  EXPECT_EQ(fs->WriteFile("/tmp/d/a", "a"), Error::kOk);
  EXPECT_EQ(fs->WriteFile("/home/user/b", "b"), Error::kOk);
  EXPECT_EQ(fs->nodes_used(), 3u);
  EXPECT_EQ(fs->WriteFile("/tmp/c", "c"), Error::kNoSpc);
  EXPECT_EQ(fs->Mkdir(fs->root(), "/tmp/e"), Error::kNoSpc);
  EXPECT_FALSE(fs->Lookup(fs->root(), "/tmp/c").ok());
  EXPECT_EQ(fs->Remove("/home/user/b"), Error::kOk);
  EXPECT_EQ(fs->WriteFile("/tmp/c", "c"), Error::kOk);
}

TEST(FileSystemTest, FileQuotaCountsRegularFilesOnly) {
  Limits l;
  l.max_files = 2;
  auto fs = MakeFs(l);
  const auto& root = fs->root();
  // Directories do not count as files (only as nodes).
  for (std::string d : {"/tmp/a", "/tmp/a/b", "/home/user/c", "/home/user/c/d"}) {
    ASSERT_EQ(fs->Mkdir(root, d), Error::kOk) << d;
  }
  EXPECT_EQ(fs->files_used(), 0u);
  EXPECT_EQ(fs->nodes_used(), 4u);
  ASSERT_EQ(fs->WriteFile("/tmp/a/b/f1", "1"), Error::kOk);
  ASSERT_EQ(fs->WriteFile("/home/user/f2", "2"), Error::kOk);  // one quota for both mounts
  EXPECT_EQ(fs->files_used(), 2u);
  EXPECT_EQ(fs->nodes_used(), 6u);
  // A third file fails, through the guest's open and the host's WriteFile alike, and leaves
  // nothing behind.
  OpenFlags c;
  c.create = true;
  c.write = true;
  EXPECT_EQ(fs->Open(root, "/tmp/f3", c).error(), Error::kNoSpc);
  EXPECT_EQ(fs->WriteFile("/home/user/c/f3", "3"), Error::kNoSpc);
  EXPECT_FALSE(fs->Lookup(root, "/tmp/f3").ok());
  EXPECT_FALSE(fs->Lookup(root, "/home/user/c/f3").ok());
  EXPECT_EQ(fs->files_used(), 2u);
  EXPECT_EQ(fs->nodes_used(), 6u);
  // Directories can still be made; existing files can still be opened, truncated, rewritten.
  EXPECT_EQ(fs->Mkdir(root, "/tmp/more"), Error::kOk);
  OpenFlags trunc = c;
  trunc.truncate = true;
  ASSERT_TRUE(fs->Open(root, "/home/user/f2", trunc));
  EXPECT_EQ(fs->WriteFile("/tmp/a/b/f1", "rewritten"), Error::kOk);
  EXPECT_EQ(fs->ReadFile("/tmp/a/b/f1"), "rewritten");
  EXPECT_EQ(fs->files_used(), 2u);
}

TEST(FileSystemTest, UnlinkGivesTheFileCountBackEvenWhileOpen) {
  Limits l;
  l.max_files = 2;
  auto fs = MakeFs(l);
  const auto& root = fs->root();
  ASSERT_EQ(fs->WriteFile("/tmp/a", "a"), Error::kOk);
  ASSERT_EQ(fs->WriteFile("/tmp/b", "b"), Error::kOk);
  EXPECT_EQ(fs->WriteFile("/tmp/c", "c"), Error::kNoSpc);
  EXPECT_EQ(fs->Unlink(root, "/tmp/a"), Error::kOk);
  EXPECT_EQ(fs->files_used(), 1u);
  EXPECT_EQ(fs->WriteFile("/tmp/c", "c"), Error::kOk);
  // An open file removed gives its count back at once; its node and bytes stay charged
  // until it is closed.
  NodeRef held = fs->Lookup(root, "/tmp/b").value();
  EXPECT_EQ(fs->Remove("/tmp/b"), Error::kOk);
  EXPECT_EQ(fs->files_used(), 1u);
  EXPECT_EQ(fs->nodes_used(), 2u);
  EXPECT_EQ(fs->bytes_used(), 2u);
  EXPECT_EQ(fs->WriteFile("/tmp/d", "d"), Error::kOk);
  EXPECT_EQ(fs->files_used(), 2u);
  held.reset();
  EXPECT_EQ(fs->files_used(), 2u);  // not given back twice
  EXPECT_EQ(fs->nodes_used(), 2u);
  // Removing an empty directory changes no file count.
  ASSERT_EQ(fs->Mkdir(root, "/tmp/dir"), Error::kOk);
  EXPECT_EQ(fs->Rmdir(root, "/tmp/dir"), Error::kOk);
  EXPECT_EQ(fs->files_used(), 2u);
}

TEST(FileSystemTest, RenameOverAFileGivesTheFileCountBack) {
  Limits l;
  l.max_files = 3;
  auto fs = MakeFs(l);
  const auto& root = fs->root();
  ASSERT_EQ(fs->WriteFile("/home/user/a", "A"), Error::kOk);
  ASSERT_EQ(fs->WriteFile("/home/user/b", "B"), Error::kOk);
  ASSERT_EQ(fs->WriteFile("/home/user/d/c", "C"), Error::kOk);
  EXPECT_EQ(fs->files_used(), 3u);
  // Moving a file (or a directory holding one) to a new name changes no count.
  EXPECT_EQ(fs->Rename(root, "/home/user/a", root, "/home/user/a2"), Error::kOk);
  EXPECT_EQ(fs->Rename(root, "/home/user/d", root, "/home/user/d2"), Error::kOk);
  EXPECT_EQ(fs->files_used(), 3u);
  EXPECT_EQ(fs->WriteFile("/home/user/x", "X"), Error::kNoSpc);
  // Over an existing file, held open: the replaced file's count comes back at once.
  NodeRef held = fs->Lookup(root, "/home/user/b").value();
  EXPECT_EQ(fs->Rename(root, "/home/user/a2", root, "/home/user/b"), Error::kOk);
  EXPECT_EQ(fs->ReadFile("/home/user/b"), "A");
  EXPECT_EQ(fs->files_used(), 2u);
  EXPECT_EQ(fs->WriteFile("/home/user/x", "X"), Error::kOk);
  EXPECT_EQ(fs->files_used(), 3u);
  held.reset();
  EXPECT_EQ(fs->files_used(), 3u);
  // A file renamed onto itself changes nothing.
  EXPECT_EQ(fs->Rename(root, "/home/user/x", root, "/home/user/./x"), Error::kOk);
  EXPECT_EQ(fs->files_used(), 3u);
}

TEST(FileSystemTest, CopiesKeepTheFileCount) {
  Limits l;
  l.max_files = 3;
  auto fs = MakeFs(l);
  const auto& root = fs->root();
  ASSERT_EQ(fs->WriteFile("/home/user/d/a", "A"), Error::kOk);
  ASSERT_EQ(fs->WriteFile("/tmp/b", "B"), Error::kOk);
  ASSERT_EQ(fs->WriteFile("/tmp/gone", "G"), Error::kOk);
  NodeRef open_removed = fs->Lookup(root, "/tmp/gone").value();
  ASSERT_EQ(fs->Unlink(root, "/tmp/gone"), Error::kOk);  // removed, still open
  ASSERT_EQ(fs->files_used(), 2u);

  FileSystem::NodeMap map;
  auto copy = fs->Clone(&map);
  EXPECT_EQ(copy->limits().max_files, 3u);
  EXPECT_EQ(copy->files_used(), 2u);
  // The removed file comes along as a node (for its descriptor), not as a file.
  NodeRef copied = copy->CopyOf(open_removed, &map);
  ASSERT_TRUE(copied);
  EXPECT_FALSE(copied->linked);
  EXPECT_EQ(copy->files_used(), 2u);
  EXPECT_EQ(copy->nodes_used(), fs->nodes_used());
  // Each side counts on its own.
  EXPECT_EQ(copy->WriteFile("/tmp/c", "C"), Error::kOk);
  EXPECT_EQ(copy->WriteFile("/tmp/c2", "C"), Error::kNoSpc);
  EXPECT_EQ(copy->files_used(), 3u);
  EXPECT_EQ(fs->files_used(), 2u);
  EXPECT_EQ(fs->Unlink(root, "/tmp/b"), Error::kOk);
  EXPECT_EQ(fs->files_used(), 1u);
  EXPECT_EQ(copy->files_used(), 3u);
  EXPECT_EQ(copy->Remove("/home/user/d/a"), Error::kOk);
  EXPECT_EQ(copy->files_used(), 2u);
  EXPECT_EQ(fs->ReadFile("/home/user/d/a"), "A");
  // A copy of a copy too; dropping the held removed node gives back no file.
  copied.reset();
  FileSystem::NodeMap map2;
  auto copy2 = copy->Clone(&map2);
  EXPECT_EQ(copy2->files_used(), 2u);
  EXPECT_EQ(copy2->WriteFile("/tmp/e", "E"), Error::kOk);
  EXPECT_EQ(copy2->WriteFile("/tmp/f", "F"), Error::kNoSpc);
}

TEST(FileSystemTest, CopiesKeepAttributesAndNamedPipesAndChargeThemApart) {
  auto fs = MakeFs();
  const auto& root = fs->root();
  ASSERT_EQ(fs->WriteFile("/tmp/a", "A"), Error::kOk);
  ASSERT_EQ(fs->SetXattrAt("/tmp/a", "user.k", "value"), Error::kOk);
  ASSERT_EQ(fs->SetXattrAt("/home/user", "user.root", "r"), Error::kOk);  // a mount root: no quota
  ASSERT_EQ(fs->MakeFifo(root, "/tmp/p", 0600), Error::kOk);
  EXPECT_EQ(fs->bytes_used(), 1u + 6u + 5u);
  EXPECT_EQ(fs->files_used(), 1u);  // the named pipe is a node, not a file
  FileSystem::NodeMap map;
  auto copy = fs->Clone(&map);
  EXPECT_EQ(copy->bytes_used(), fs->bytes_used());
  EXPECT_EQ(copy->GetXattr(copy->Lookup(root, "/tmp/a").value(), "user.k").value(), "value");
  EXPECT_EQ(copy->GetXattr(copy->root(), "user.root").error(), Error::kNoData);  // "/" holds none
  EXPECT_EQ(copy->GetXattr(copy->Lookup(copy->root(), "/home/user").value(), "user.root").value(), "r");
  EXPECT_EQ(copy->Lookup(copy->root(), "/tmp/p").value()->type, NodeType::kFifo);
  // Each side changes its own.
  ASSERT_EQ(copy->RemoveXattr(copy->Lookup(copy->root(), "/tmp/a").value(), "user.k"), Error::kOk);
  EXPECT_EQ(copy->bytes_used(), 1u);
  EXPECT_EQ(fs->GetXattr(fs->Lookup(root, "/tmp/a").value(), "user.k").value(), "value");
  // A named pipe holds no bytes and is no file for the host.
  EXPECT_EQ(fs->ReadFile("/tmp/p"), std::nullopt);
  EXPECT_EQ(fs->WriteFile("/tmp/p", "x"), Error::kInval);
  EXPECT_EQ(fs->Truncate(fs->Lookup(root, "/tmp/p").value(), 10), Error::kInval);
  EXPECT_EQ(fs->MakeFifoAt("/tmp/new/dir/p2", 0644), Error::kOk);  // with its parents
  EXPECT_EQ(fs->MakeFifoAt("/tmp/a", 0644), Error::kExist);
  EXPECT_EQ(fs->MakeFifoAt("/usr/p", 0644), Error::kRoFs);
}

TEST(FileSystemTest, FileLimitComesWithRoomForDirectories) {
  EXPECT_EQ(Limits::NodesFor(5), 1005u);
  EXPECT_EQ(Limits::NodesFor(10000), 20000u);
  EXPECT_EQ(Limits::NodesFor(~0ull), ~0ull);
  Limits l;
  EXPECT_EQ(l.max_nodes, Limits::NodesFor(l.max_files));
  l.SetFileLimit(2);
  EXPECT_EQ(l.max_files, 2u);
  EXPECT_EQ(l.max_nodes, 1002u);
  auto fs = MakeFs(l);
  for (int i = 0; i < 999; i++) ASSERT_EQ(fs->Mkdir(fs->root(), "/tmp/d" + std::to_string(i)), Error::kOk) << i;
  EXPECT_EQ(fs->WriteFile("/tmp/d0/a", "a"), Error::kOk);
  EXPECT_EQ(fs->WriteFile("/tmp/d1/b", "b"), Error::kOk);
  EXPECT_EQ(fs->nodes_used(), 1001u);
  EXPECT_EQ(fs->WriteFile("/tmp/d2/c", "c"), Error::kNoSpc);  // the file limit (a node is left)
  EXPECT_EQ(fs->Mkdir(fs->root(), "/tmp/x"), Error::kOk);
  EXPECT_EQ(fs->Mkdir(fs->root(), "/tmp/y"), Error::kNoSpc);  // the node limit
  EXPECT_EQ(fs->files_used(), 2u);
}

TEST(FileSystemTest, DepthLimit) {
  Limits l;
  l.max_depth = 5;  // "/tmp" is depth 1
  auto fs = MakeFs(l);
  EXPECT_EQ(fs->MakeDirs("/tmp/a/b/c/d"), Error::kOk);
  EXPECT_EQ(fs->Mkdir(fs->root(), "/tmp/a/b/c/d/e"), Error::kNameTooLong);
  EXPECT_EQ(fs->WriteFile("/tmp/a/b/c/d/f", "x"), Error::kNameTooLong);
  // A rename may not move a subtree past the limit either.
  EXPECT_EQ(fs->MakeDirs("/tmp/x/y"), Error::kOk);
  EXPECT_EQ(fs->Rename(fs->root(), "/tmp/x", fs->root(), "/tmp/a/b/c/x"), Error::kNameTooLong);
  EXPECT_EQ(fs->Rename(fs->root(), "/tmp/x", fs->root(), "/tmp/a/b/x"), Error::kOk);
}

// New names follow names/path_rules.h, the store's rules: what the guest makes can be saved.
TEST(FileSystemTest, NewNamesFollowTheStoresRules) {
  auto fs = MakeFs();
  const auto& root = fs->root();
  EXPECT_EQ(fs->WriteFile("/tmp/12:00.log", "x"), Error::kOk);
  EXPECT_EQ(fs->WriteFile("/tmp/a<b>|c?*\\\"", "x"), Error::kOk);
  EXPECT_EQ(fs->WriteFile("/tmp/a\xff", "x"), Error::kIlSeq);
  EXPECT_EQ(fs->Mkdir(root, "/tmp/\xed\xa0\x80"), Error::kIlSeq);
  EXPECT_EQ(fs->WriteFile("/tmp/a\nb", "x"), Error::kInval);
  EXPECT_EQ(fs->Mkdir(root, "/tmp/\xc2\x9b"), Error::kInval);
  EXPECT_EQ(fs->Rename(root, "/tmp/12:00.log", root, "/tmp/\x01"), Error::kInval);
  EXPECT_EQ(fs->Rename(root, "/tmp/12:00.log", root, "/tmp/\xfe"), Error::kIlSeq);
  // Existing names are still found whatever they hold (lookups are not refused).
  EXPECT_EQ(fs->Lookup(root, "/tmp/a\xff").error(), Error::kNoEnt);
}

TEST(FileSystemTest, AbsolutePathLengthLimit) {
  auto fs = MakeFs();
  const auto& root = fs->root();
  // "/tmp" is 4 bytes; 15 components of 1 + 255 bytes bring it to 3844.
  std::string dir = "/tmp";
  for (int i = 0; i < 15; ++i) dir += "/" + std::string(255, 'a' + i);
  ASSERT_EQ(fs->MakeDirs(dir), Error::kOk);
  EXPECT_EQ(fs->WriteFile(dir + "/" + std::string(4096 - 3844 - 1, 'z'), "x"), Error::kOk);  // 4096 bytes
  EXPECT_EQ(fs->WriteFile(dir + "/" + std::string(4096 - 3844, 'z'), "x"), Error::kNameTooLong);
  // A relative path from deep inside is short; the node it would make is not.
  auto deep = fs->Lookup(root, dir);
  ASSERT_TRUE(deep);
  OpenFlags create;
  create.create = true;
  EXPECT_EQ(fs->Open(deep.value(), std::string(253, 'q'), create).error(), Error::kNameTooLong);
  EXPECT_EQ(fs->Mkdir(deep.value(), std::string(253, 'q')), Error::kNameTooLong);
  // A directory moved under a long name takes its longest path along.
  ASSERT_EQ(fs->MakeDirs("/tmp/m/" + std::string(255, 'k')), Error::kOk);
  const std::string under = "/tmp/" + std::string(255, 'a') + "/" + std::string(255, 'b');  // 516 bytes
  ASSERT_EQ(fs->MakeDirs(under), Error::kOk);
  EXPECT_EQ(fs->Rename(root, "/tmp/m", root, dir + "/m"), Error::kNameTooLong);
  EXPECT_EQ(fs->Rename(root, "/tmp/m", root, under + "/m"), Error::kOk);
  // The moved nodes know their new length: growing them checks it.
  EXPECT_EQ(fs->WriteFile(under + "/m/" + std::string(255, 'k') + "/" + std::string(255, 'f'), "x"), Error::kOk);
}

TEST(FileSystemTest, RmdirUnlinkRules) {
  auto fs = MakeFs();
  const auto& root = fs->root();
  ASSERT_EQ(fs->WriteFile("/tmp/d/f", "x"), Error::kOk);
  EXPECT_EQ(fs->Rmdir(root, "/tmp/d"), Error::kNotEmpty);
  EXPECT_EQ(fs->Rmdir(root, "/tmp/d/f"), Error::kNotDir);
  EXPECT_EQ(fs->Unlink(root, "/tmp/d"), Error::kIsDir);
  EXPECT_EQ(fs->Unlink(root, "/tmp/d/nope"), Error::kNoEnt);
  EXPECT_EQ(fs->Rmdir(root, "/tmp/d/."), Error::kInval);
  EXPECT_EQ(fs->Rmdir(root, "/tmp"), Error::kRoFs);  // "/" is read-only
  EXPECT_EQ(fs->Rmdir(root, "/tmp/."), Error::kBusy);
  EXPECT_EQ(fs->Rmdir(root, "/home/user"), Error::kRoFs);  // /home is read-only
  EXPECT_EQ(fs->Unlink(root, "/tmp/d/f"), Error::kOk);
  NodeRef d = fs->Lookup(root, "/tmp/d").value();
  EXPECT_EQ(fs->Rmdir(root, "/tmp/d"), Error::kOk);
  // A removed directory accepts nothing new, even through a held reference.
  EXPECT_EQ(fs->Mkdir(d, "x"), Error::kNoEnt);
  OpenFlags c;
  c.create = true;
  EXPECT_EQ(fs->Open(d, "x", c).error(), Error::kNoEnt);
  EXPECT_EQ(fs->Lookup(d, "..").error(), Error::kNoEnt);
}

TEST(FileSystemTest, RenameRules) {
  auto fs = MakeFs();
  const auto& root = fs->root();
  ASSERT_EQ(fs->WriteFile("/home/user/a", "A"), Error::kOk);
  ASSERT_EQ(fs->WriteFile("/home/user/b", "B"), Error::kOk);
  ASSERT_EQ(fs->MakeDirs("/home/user/d/sub"), Error::kOk);
  ASSERT_EQ(fs->MakeDirs("/home/user/e"), Error::kOk);
  EXPECT_EQ(fs->Rename(root, "/home/user/a", root, "/tmp/a"), Error::kXDev);
  EXPECT_EQ(fs->Rename(root, "/home/user/a", root, "/a"), Error::kRoFs);
  EXPECT_EQ(fs->Rename(root, "/home/user/a", root, "/usr/local/lib/python3.11/a"), Error::kRoFs);
  EXPECT_EQ(fs->Rename(root, "/home/user/d", root, "/home/user/d/sub/d2"), Error::kInval);
  EXPECT_EQ(fs->Rename(root, "/home/user/d", root, "/home/user/d/d2"), Error::kInval);
  EXPECT_EQ(fs->Rename(root, "/home/user/d", root, "/home/user/a"), Error::kNotDir);
  EXPECT_EQ(fs->Rename(root, "/home/user/a", root, "/home/user/e"), Error::kIsDir);
  EXPECT_EQ(fs->Rename(root, "/home/user/e", root, "/home/user/d"), Error::kNotEmpty);
  EXPECT_EQ(fs->Rename(root, "/tmp", root, "/home/user/t"), Error::kRoFs);
  EXPECT_EQ(fs->Rename(root, "/home/user/nope", root, "/home/user/x"), Error::kNoEnt);
  // File over file replaces it and frees the old node.
  uint64_t nodes = fs->nodes_used();
  EXPECT_EQ(fs->Rename(root, "/home/user/a", root, "/home/user/b"), Error::kOk);
  EXPECT_EQ(fs->ReadFile("/home/user/b"), "A");
  EXPECT_FALSE(fs->ReadFile("/home/user/a"));
  EXPECT_EQ(fs->nodes_used(), nodes - 1);
  EXPECT_EQ(fs->bytes_used(), 1u);
  // Directory onto an empty directory; same node is a no-op.
  EXPECT_EQ(fs->Rename(root, "/home/user/d", root, "/home/user/e"), Error::kOk);
  EXPECT_TRUE(fs->Lookup(root, "/home/user/e/sub").ok());
  EXPECT_EQ(fs->Rename(root, "/home/user/b", root, "/home/user/./b"), Error::kOk);
  EXPECT_EQ(fs->ReadFile("/home/user/b"), "A");
  // The parent link follows a moved directory.
  EXPECT_EQ(fs->Lookup(root, "/home/user/e/sub/../..").value(), fs->Lookup(root, "/home/user").value());
}

TEST(FileSystemTest, NoLinks) {
  auto fs = MakeFs();
  const auto& root = fs->root();
  ASSERT_EQ(fs->WriteFile("/tmp/a", "A"), Error::kOk);
  EXPECT_EQ(fs->Symlink("/etc/passwd", root, "/tmp/l"), Error::kPerm);
  EXPECT_EQ(fs->Symlink("x", root, "/tmp/a"), Error::kExist);
  EXPECT_EQ(fs->Symlink("x", root, "/l"), Error::kRoFs);
  EXPECT_EQ(fs->Link(root, "/tmp/a", root, "/tmp/b"), Error::kPerm);
  EXPECT_EQ(fs->Link(root, "/tmp/nope", root, "/tmp/b"), Error::kNoEnt);
  EXPECT_EQ(fs->ReadLink(root, "/tmp/a"), Error::kInval);
  EXPECT_EQ(fs->ReadLink(root, "/tmp/l"), Error::kNoEnt);
  EXPECT_FALSE(fs->Lookup(root, "/tmp/l").ok());
  EXPECT_FALSE(fs->Lookup(root, "/tmp/b").ok());
}

TEST(FileSystemTest, StatAndTimes) {
  auto fs = MakeFs();
  ASSERT_EQ(fs->WriteFile("/tmp/a", "abc"), Error::kOk);
  auto st = fs->StatPath("/tmp/a");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->type, NodeType::kFile);
  EXPECT_EQ(st->size, 3u);
  EXPECT_EQ(st->nlink, 1u);
  EXPECT_EQ(st->dev, kTmpMount);
  EXPECT_GT(st->mtime_ns, 0u);
  auto lib = fs->StatPath("/usr/local/lib/python3.11/os.py");
  EXPECT_EQ(lib->dev, kStdlibMount);
  EXPECT_NE(st->ino, fs->StatPath("/tmp").value().ino);
  auto a = fs->Lookup(fs->root(), "/tmp/a").value();
  EXPECT_EQ(fs->SetTimes(a, 5, std::nullopt), Error::kOk);
  EXPECT_EQ(fs->StatPath("/tmp/a")->atime_ns, 5u);
  EXPECT_EQ(fs->StatPath("/tmp/a")->mtime_ns, st->mtime_ns);
}

TEST(FileSystemTest, HostApi) {
  auto fs = MakeFs();
  EXPECT_EQ(fs->WriteFile("/home/user/deep/er/file.txt", "data"), Error::kOk);
  EXPECT_EQ(fs->ReadFile("/home/user/deep/er/file.txt"), "data");
  EXPECT_EQ(Names(*fs->List("/home/user/deep")), std::vector<std::string>{"er"});
  EXPECT_EQ(fs->WriteFile("relative", "x"), Error::kInval);
  EXPECT_EQ(fs->WriteFile("/home/user/deep/er/file.txt/x", "x"), Error::kExist);
  EXPECT_FALSE(fs->List("/home/user/deep/er/file.txt"));
  EXPECT_FALSE(fs->ReadFile("/home/user/deep"));
  EXPECT_EQ(fs->Remove("/home/user/deep"), Error::kNotEmpty);
}

TEST(FileSystemTest, OnePackSharedByManyFileSystemsOnThreads) {
  auto tree = MustParse(StdlibPack());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        FileSystem::Options o;
        o.stdlib = tree;
        FileSystem fs(o);
        if (fs.ReadFile("/usr/local/lib/python3.11/json/decoder.py") != "# decoder\n") ++failures;
        if (fs.WriteFile("/tmp/t" + std::to_string(t), "x") != Error::kOk) ++failures;
        if (fs.Lookup(fs.root(), "/usr/local/lib/python3.11/json/..").value() !=
            fs.Lookup(fs.root(), "/usr/local/lib/python3.11").value())
          ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(tree.use_count(), 1);
}

// Found by tests/fuzz/vfs_fuzz: WriteFile made the missing parents, then failed (the name
// was a directory, or over a quota) and left them behind.
TEST(FileSystemTest, FailedWriteFileOrMakeDirsLeavesNoDirectories) {
  FileSystem fs;
  EXPECT_EQ(fs.WriteFile("/home/user/a/b/", "x"), Error::kIsDir);
  EXPECT_FALSE(fs.StatPath("/home/user/a").ok());
  Limits small;
  small.max_nodes = 2;
  FileSystem tight(FileSystem::Options{small, nullptr});
  EXPECT_EQ(tight.WriteFile("/tmp/a/b/c", "x"), Error::kNoSpc);
  EXPECT_EQ(tight.MakeDirs("/tmp/a/b/c"), Error::kNoSpc);
  EXPECT_FALSE(tight.StatPath("/tmp/a").ok());
  EXPECT_EQ(tight.nodes_used(), 0u);
  EXPECT_EQ(tight.WriteFile("/tmp/a/c", "x"), Error::kOk);
}


// ---- modes and /dev/null

TEST(FileSystemTest, ModesAreKeptAndCheckedForTheGuestOnly) {
  auto fs = MakeFs();
  ASSERT_EQ(fs->WriteFile("/tmp/f", "x"), Error::kOk);
  OpenFlags create;
  create.create = true;
  create.mode = 0400;
  auto made = fs->Open(fs->root(), "/tmp/new", create);
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(fs->StatPath("/tmp/new").value().mode, 0400u);
  ASSERT_EQ(fs->Mkdir(fs->root(), "/tmp/d", 0500), Error::kOk);
  EXPECT_EQ(fs->StatPath("/tmp/d").value().mode, 0500u);
  OpenFlags w;
  w.write = true;
  EXPECT_EQ(fs->Open(fs->root(), "/tmp/new", w).error(), Error::kAcces);
  EXPECT_EQ(fs->Mkdir(fs->root(), "/tmp/d/sub"), Error::kAcces);
  EXPECT_EQ(fs->SetMode(fs->Lookup(fs->root(), "/tmp/f").value(), 0170000 | 0600), Error::kOk);
  EXPECT_EQ(fs->StatPath("/tmp/f").value().mode, 0600u);  // only the permission bits
  EXPECT_EQ(fs->SetMode(fs->Lookup(fs->root(), "/usr").value(), 0700), Error::kRoFs);
  // The host API is not the guest.
  EXPECT_EQ(fs->WriteFile("/tmp/new", "host"), Error::kOk);
  EXPECT_EQ(fs->WriteFile("/tmp/d/sub/f", "host"), Error::kOk);
  EXPECT_EQ(fs->Remove("/tmp/d/sub/f"), Error::kOk);
}

TEST(FileSystemTest, DevNullReadsNothingAndDropsWrites) {
  auto fs = MakeFs();
  OpenFlags w;
  w.write = true;
  w.truncate = true;
  auto null = fs->Open(fs->root(), "/dev/null", w);
  ASSERT_TRUE(null.ok());
  EXPECT_EQ(fs->Write(null.value(), 0, Bytes("dropped")).value(), 7u);
  uint8_t buf[4];
  EXPECT_EQ(FileSystem::Read(*null.value(), 0, buf), 0u);
  Stat st = fs->StatPath("/dev/null").value();
  EXPECT_EQ(st.type, NodeType::kNullDevice);
  EXPECT_EQ(st.size, 0u);
  EXPECT_EQ(st.mode, 0666u);
  EXPECT_EQ(fs->bytes_used(), 0u);
  EXPECT_EQ(fs->Unlink(fs->root(), "/dev/null"), Error::kRoFs);
  EXPECT_EQ(fs->Open(fs->root(), "/dev/other", OpenFlags{.create = true}).error(), Error::kRoFs);
}

}  // namespace
}  // namespace brig::vfs
