// /usr/share/zoneinfo: a second, read-only view (PackTree::Subtree) of the stdlib pack's
// tzdata/zoneinfo directory, mounted by FileSystem::Options::zoneinfo.
#include <gtest/gtest.h>

#include "vfs/file_system.h"
#include "vfs/pack.h"

namespace brig::vfs {
namespace {

// A pack that lives for the whole test program (file nodes point into it).
const std::string& Pack() {
  static const std::string pack = BuildPack({{"os.py", "import sys\n"},
                                             {"tzdata/__init__.py", "# tzdata\n"},
                                             {"tzdata/zones", "Europe/Berlin\nUTC\n"},
                                             {"tzdata/zoneinfo/UTC", "TZif2-utc"},
                                             {"tzdata/zoneinfo/__init__.py", ""},
                                             {"tzdata/zoneinfo/__pycache__/__init__.pyc", "pyc"},
                                             {"tzdata/zoneinfo/Europe/__init__.py", ""},
                                             {"tzdata/zoneinfo/Europe/Berlin", "TZif2-berlin"},
                                             {"tzdata/zoneinfo/Europe/Paris", "TZif2-paris"}});
  return pack;
}

const std::shared_ptr<const PackTree>& Stdlib() {
  static const std::shared_ptr<const PackTree> tree = [] {
    std::string error;
    auto t = PackTree::Parse(Pack(), &error);
    EXPECT_TRUE(t) << error;
    return t;
  }();
  return tree;
}

std::shared_ptr<const PackTree> View() {
  return Stdlib()->Subtree("tzdata/zoneinfo", kZoneinfoMount, {"__init__.py", "__pycache__"});
}

std::unique_ptr<FileSystem> MakeFs(bool with_view = true) {
  FileSystem::Options o;
  o.stdlib = Stdlib();
  if (with_view) o.zoneinfo = View();
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

TEST(ZoneinfoViewTest, SubtreeFindsOnlyDirectories) {
  auto view = View();
  ASSERT_TRUE(view);
  EXPECT_EQ(view->file_count(), 3u);
  EXPECT_EQ(view->node_count(), 5u);  // root, Europe, UTC, Berlin, Paris
  EXPECT_EQ(view->root()->mount_id, kZoneinfoMount);
  EXPECT_EQ(view->root()->parent, nullptr);
  EXPECT_FALSE(view->root()->writable);
  EXPECT_FALSE(Stdlib()->Subtree("tzdata/missing", kZoneinfoMount));
  EXPECT_FALSE(Stdlib()->Subtree("tzdata/zones", kZoneinfoMount));  // a file
  EXPECT_FALSE(Stdlib()->Subtree("tzdata//zoneinfo", kZoneinfoMount));
  EXPECT_FALSE(Stdlib()->Subtree("tzdata/zoneinfo/Europe/Berlin", kZoneinfoMount));
  auto europe = Stdlib()->Subtree("tzdata/zoneinfo/Europe", kZoneinfoMount);
  ASSERT_TRUE(europe);
  EXPECT_EQ(europe->file_count(), 3u);  // nothing hidden: __init__.py, Berlin, Paris
  EXPECT_EQ(europe->root()->children.count("__init__.py"), 1u);
  // Its own nodes: not the stdlib's (whose ".." must stay in the pack).
  auto in_stdlib = Stdlib()->root()->children.at("tzdata")->children.at("zoneinfo");
  EXPECT_NE(in_stdlib.get(), view->root().get());
  EXPECT_EQ(in_stdlib->ino, view->root()->ino);
  EXPECT_EQ(in_stdlib->mount_id, kStdlibMount);
}

TEST(ZoneinfoViewTest, MountedAtUsrShareZoneinfo) {
  auto fs = MakeFs();
  EXPECT_EQ(Names(*fs->List("/")), (std::vector<std::string>{"dev", "home", "tmp", "usr"}));
  EXPECT_EQ(Names(*fs->List("/usr")), (std::vector<std::string>{"local", "share"}));
  EXPECT_EQ(Names(*fs->List("/usr/share")), (std::vector<std::string>{"zoneinfo"}));
  EXPECT_EQ(Names(*fs->List("/usr/share/zoneinfo")), (std::vector<std::string>{"Europe", "UTC"}));
  EXPECT_EQ(Names(*fs->List("/usr/share/zoneinfo/Europe")), (std::vector<std::string>{"Berlin", "Paris"}));
  // The package's files are hidden in the view only.
  EXPECT_EQ(fs->StatPath("/usr/share/zoneinfo/__init__.py").error(), Error::kNoEnt);
  EXPECT_EQ(fs->StatPath("/usr/share/zoneinfo/__pycache__").error(), Error::kNoEnt);
  EXPECT_TRUE(fs->StatPath("/usr/local/lib/python3.11/tzdata/zoneinfo/__init__.py"));
  EXPECT_TRUE(fs->StatPath("/usr/local/lib/python3.11/tzdata/zoneinfo/Europe/__init__.py"));
  // The same bytes as the pack's (not a copy: the same memory).
  EXPECT_EQ(fs->ReadFile("/usr/share/zoneinfo/Europe/Berlin"), "TZif2-berlin");
  auto a = fs->Lookup(fs->root(), "/usr/share/zoneinfo/Europe/Berlin").value();
  auto b = fs->Lookup(fs->root(), "/usr/local/lib/python3.11/tzdata/zoneinfo/Europe/Berlin").value();
  EXPECT_EQ(a->contents().data(), b->contents().data());
  auto st = fs->StatPath("/usr/share/zoneinfo/Europe/Berlin");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->type, NodeType::kFile);
  EXPECT_EQ(st->dev, kZoneinfoMount);
  EXPECT_EQ(st->size, 12u);
  EXPECT_EQ(fs->StatPath("/usr/share/zoneinfo")->type, NodeType::kDirectory);
  EXPECT_EQ(fs->StatPath("/usr/share")->dev, kSyntheticMount);
  // The inode numbers of the rest are those of a file system without the view.
  auto plain = MakeFs(false);
  for (const char* p : {"/", "/home/user", "/tmp", "/usr", "/usr/local/lib", "/usr/local/lib/python3.11"})
    EXPECT_EQ(fs->StatPath(p)->ino, plain->StatPath(p)->ino) << p;
}

TEST(ZoneinfoViewTest, WithoutAViewThereIsNoUsrShare) {
  auto fs = MakeFs(false);
  EXPECT_EQ(Names(*fs->List("/usr")), (std::vector<std::string>{"local"}));
  EXPECT_EQ(fs->StatPath("/usr/share/zoneinfo").error(), Error::kNoEnt);
}

TEST(ZoneinfoViewTest, DotDotLeadsToUsrShareNeverIntoThePack) {
  auto fs = MakeFs();
  const NodeRef& root = fs->root();
  auto share = fs->Lookup(root, "/usr/share").value();
  auto zi = fs->Lookup(root, "/usr/share/zoneinfo").value();
  auto europe = fs->Lookup(root, "/usr/share/zoneinfo/Europe").value();
  EXPECT_EQ(fs->Lookup(root, "/usr/share/zoneinfo/..").value(), share);
  EXPECT_EQ(fs->Lookup(europe, "..").value(), zi);
  EXPECT_EQ(fs->Lookup(europe, "../..").value(), share);
  EXPECT_EQ(fs->Lookup(europe, "../../../../../../..").value(), root);
  EXPECT_EQ(fs->Parent(zi).value(), share);
  // The pack's tzdata directory (the view's parent in the pack) is not reachable by "..".
  EXPECT_EQ(fs->Lookup(zi, "../__init__.py").error(), Error::kNoEnt);
  EXPECT_EQ(fs->Lookup(zi, "../zones").error(), Error::kNoEnt);
  EXPECT_EQ(fs->Lookup(europe, "../../zones").error(), Error::kNoEnt);
  // And the stdlib's own zoneinfo directory still has tzdata as its parent.
  auto tzdata = fs->Lookup(root, "/usr/local/lib/python3.11/tzdata").value();
  EXPECT_EQ(fs->Lookup(root, "/usr/local/lib/python3.11/tzdata/zoneinfo/..").value(), tzdata);
  EXPECT_EQ(fs->Lookup(root, "/usr/share/zoneinfo/../../local/lib/python3.11/tzdata").value(), tzdata);
}

TEST(ZoneinfoViewTest, EverythingInItIsReadOnly) {
  auto fs = MakeFs();
  const NodeRef& root = fs->root();
  const std::string zi = "/usr/share/zoneinfo";
  OpenFlags write;
  write.write = true;
  OpenFlags create;
  create.create = true;
  OpenFlags truncate;
  truncate.truncate = true;
  EXPECT_EQ(fs->Open(root, zi + "/Europe/Berlin", write).error(), Error::kRoFs);
  EXPECT_EQ(fs->Open(root, zi + "/Europe/Berlin", truncate).error(), Error::kRoFs);
  EXPECT_EQ(fs->Open(root, zi + "/Europe/Rome", create).error(), Error::kRoFs);
  EXPECT_EQ(fs->Open(root, "/usr/share/new", create).error(), Error::kRoFs);
  EXPECT_EQ(fs->Mkdir(root, zi + "/Asia"), Error::kRoFs);
  EXPECT_EQ(fs->Mkdir(root, "/usr/share/other"), Error::kRoFs);
  EXPECT_EQ(fs->Unlink(root, zi + "/UTC"), Error::kRoFs);
  EXPECT_NE(fs->Rmdir(root, zi + "/Europe"), Error::kOk);
  EXPECT_NE(fs->Rmdir(root, zi), Error::kOk);
  EXPECT_NE(fs->Rmdir(root, "/usr/share"), Error::kOk);
  EXPECT_NE(fs->Rename(root, zi + "/UTC", root, zi + "/GMT"), Error::kOk);
  EXPECT_NE(fs->Rename(root, zi + "/UTC", root, "/tmp/UTC"), Error::kOk);
  EXPECT_NE(fs->Rename(root, zi, root, "/tmp/zi"), Error::kOk);
  ASSERT_EQ(fs->WriteFile("/tmp/x", "x"), Error::kOk);
  EXPECT_NE(fs->Rename(root, "/tmp/x", root, zi + "/UTC"), Error::kOk);
  EXPECT_NE(fs->Rename(root, "/tmp/x", root, zi + "/x"), Error::kOk);
  EXPECT_NE(fs->Link(root, "/tmp/x", root, zi + "/x"), Error::kOk);
  EXPECT_NE(fs->Symlink("/etc/passwd", root, zi + "/x"), Error::kOk);
  EXPECT_EQ(fs->ReadLink(root, zi + "/UTC"), Error::kInval);  // nothing is a symlink
  auto utc = fs->Lookup(root, zi + "/UTC").value();
  EXPECT_EQ(fs->Write(utc, 0, Bytes("evil")).error(), Error::kRoFs);
  EXPECT_EQ(fs->Truncate(utc, 0), Error::kRoFs);
  EXPECT_EQ(fs->Allocate(utc, 0, 100), Error::kRoFs);
  EXPECT_EQ(fs->SetTimes(utc, 1, 1), Error::kRoFs);
  EXPECT_NE(fs->WriteFile(zi + "/UTC", "evil"), Error::kOk);
  EXPECT_NE(fs->WriteFile(zi + "/New", "evil"), Error::kOk);
  EXPECT_NE(fs->MakeDirs(zi + "/a/b"), Error::kOk);
  EXPECT_NE(fs->MakeDirs("/usr/share/x"), Error::kOk);
  EXPECT_NE(fs->Remove(zi + "/UTC"), Error::kOk);
  // Nothing changed, here or in the pack another file system shares.
  EXPECT_EQ(fs->ReadFile(zi + "/UTC"), "TZif2-utc");
  EXPECT_EQ(Names(*fs->List(zi)), (std::vector<std::string>{"Europe", "UTC"}));
  EXPECT_EQ(Names(*fs->List("/usr/share")), (std::vector<std::string>{"zoneinfo"}));
  EXPECT_EQ(MakeFs()->ReadFile(zi + "/UTC"), "TZif2-utc");
  EXPECT_EQ(fs->nodes_used(), 1u);  // /tmp/x only: the view costs no quota
}

TEST(ZoneinfoViewTest, CopiesShareTheView) {
  auto fs = MakeFs();
  auto berlin = fs->Lookup(fs->root(), "/usr/share/zoneinfo/Europe/Berlin").value();
  FileSystem::NodeMap map;
  auto copy = fs->Clone(&map);
  EXPECT_EQ(copy->Lookup(copy->root(), "/usr/share/zoneinfo/Europe/Berlin").value(), berlin);
  EXPECT_EQ(copy->CopyOf(berlin, &map), berlin);
  auto zi = copy->Lookup(copy->root(), "/usr/share/zoneinfo").value();
  EXPECT_EQ(copy->Lookup(zi, "..").value(), copy->Lookup(copy->root(), "/usr/share").value());
  EXPECT_EQ(copy->nodes_used(), 0u);
}

}  // namespace
}  // namespace brig::vfs
