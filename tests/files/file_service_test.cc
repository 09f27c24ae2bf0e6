// FileService on every backend: each TYPED_TEST runs on SQLite and on a real PostgreSQL
// (tests/store/pg_harness.h). Small quotas (4 files, 64 bytes) unless a test needs more.
#include <atomic>

#include <gtest/gtest.h>

#include "../store/backends.h"
#include "files/file_service.h"
#include "session/session_manager.h"
#include "store/store.h"

namespace brig::files {
namespace {

using store::testing::BackendNames;
using store::testing::PostgresBackend;
using store::testing::SqliteBackend;

constexpr int64_t kDay = session::kMicrosPerDay;

template <typename Backend>
class FileServiceTest : public store::testing::ClockedBackendTest<Backend> {
 protected:
  void SetUp() override {
    store::testing::ClockedBackendTest<Backend>::SetUp();
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
    options_.clock = this->Clock();
    options_.max_files_per_session = 4;
    options_.max_bytes_per_session = 64;
    options_.lock_timeout = std::chrono::milliseconds(300);
    Remake();
  }

  void Remake() {
    manager_ = std::make_unique<session::SessionManager>(*this->store_, options_);
    fs_ = std::make_unique<FileService>(*manager_);
  }

  void Write(const std::string& path, const std::string& content, const std::string& id = "t") {
    StatusOr<store::FileInfo> w = fs_->Write(id, path, content);
    ASSERT_TRUE(w.ok()) << path << ": " << w.status().ToString();
  }

  std::string Content(const std::string& path, const std::string& id = "t") {
    StatusOr<store::FileData> r = fs_->Read(id, path);
    return r.ok() ? r.value().content : "<" + r.status().ToString() + ">";
  }

  std::vector<std::string> Paths(const StatusOr<std::vector<store::FileInfo>>& files) {
    EXPECT_TRUE(files.ok()) << files.status().ToString();
    std::vector<std::string> out;
    if (files.ok()) {
      for (const auto& f : files.value()) out.push_back(f.path);
    }
    return out;
  }

  int64_t Version(const std::string& id = "t") {
    auto st = this->store_->GetState(id);
    EXPECT_TRUE(st.ok());
    return st.ok() && st.value() ? st.value()->version : 0;
  }

  session::SessionOptions options_;
  std::unique_ptr<session::SessionManager> manager_;
  std::unique_ptr<FileService> fs_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(FileServiceTest, Backends, BackendNames);

TYPED_TEST(FileServiceTest, WriteCreatesTheSessionAndReadsBack) {
  EXPECT_FALSE(this->manager_->Exists("t").value());
  StatusOr<store::FileInfo> w = this->fs_->Write("t", "/home/user/data.json", "{\"a\": 1}");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w.value().path, "/home/user/data.json");
  EXPECT_EQ(w.value().size, 8);
  EXPECT_EQ(w.value().content_type, "application/json");
  EXPECT_EQ(w.value().created_at, 1000 * kDay);
  StatusOr<store::SessionInfo> s = this->manager_->Get("t");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value().expires_at, (1000 + 180) * kDay);  // the default expiry
  EXPECT_EQ(this->Content("/home/user/data.json"), "{\"a\": 1}");
}

TYPED_TEST(FileServiceTest, ContentTypeFromMagicBytesOrGiven) {
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  StatusOr<store::FileInfo> w = this->fs_->Write("t", "/tmp/not-really.txt", png);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.value().content_type, "image/png");
  StatusOr<store::FileInfo> given = this->fs_->Write("t", "/tmp/x.bin", "abc", "text/x-custom");
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(given.value().content_type, "text/x-custom");
  EXPECT_EQ(this->fs_->Read("t", "/tmp/x.bin").value().info.content_type, "text/x-custom");
}

TYPED_TEST(FileServiceTest, ReplaceKeepsCreatedAtAndBytesMayHoldNul) {
  this->Write("/tmp/f", "one");
  this->now_ += kDay;
  const std::string binary("a\0b\xff", 4);
  this->Write("/tmp/f", binary);
  StatusOr<store::FileData> r = this->fs_->Read("t", "/tmp/f");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().content, binary);
  EXPECT_EQ(r.value().info.created_at, 1000 * kDay);
  EXPECT_EQ(r.value().info.modified_at, 1001 * kDay);
}

TYPED_TEST(FileServiceTest, ReadWithOffsetAndLimit) {
  this->Write("/tmp/abc", "0123456789");
  auto read = [&](int64_t off, int64_t lim) {
    StatusOr<store::FileData> r = this->fs_->Read("t", "/tmp/abc", off, lim);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) {
      EXPECT_EQ(r.value().info.size, 10);  // the whole file's size
    }
    return r.ok() ? r.value().content : "<error>";
  };
  EXPECT_EQ(read(0, -1), "0123456789");
  EXPECT_EQ(read(3, 4), "3456");
  EXPECT_EQ(read(8, 100), "89");
  EXPECT_EQ(read(10, 5), "");
  EXPECT_EQ(read(50, -1), "");
  EXPECT_EQ(read(2, 0), "");
  EXPECT_TRUE(this->fs_->Read("t", "/tmp/abc", -1, 2).status().IsInvalidArgument());
}

// An empty directory the guest left is a row of kDirectoryType: not a file to read or to
// overwrite, and gone once a file is written into it.
TYPED_TEST(FileServiceTest, EmptyDirectoryRows) {
  ASSERT_TRUE(this->fs_->Write("t", "/tmp/f", "x").ok());
  ASSERT_TRUE(this->store_->PutFile("t", {"/tmp/empty", "", std::string(store::kDirectoryType)}).ok());
  EXPECT_TRUE(this->fs_->Read("t", "/tmp/empty").status().IsFailedPrecondition());
  EXPECT_TRUE(this->fs_->Write("t", "/tmp/empty", "x").status().IsFailedPrecondition());
  EXPECT_EQ(this->fs_->List("t").value().size(), 2u);
  ASSERT_TRUE(this->fs_->Write("t", "/tmp/empty/in", "y").ok());
  std::vector<std::string> paths;
  const auto listed = this->fs_->List("t");
  for (const auto& f : listed.value()) paths.push_back(f.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"/tmp/empty/in", "/tmp/f"}));
}

TYPED_TEST(FileServiceTest, BadPathsAreRefusedAndCreateNothing) {
  const std::vector<std::string> bad = {"",
                                        "relative.txt",
                                        "/",
                                        "/tmp/../etc/passwd",
                                        "/tmp/./x",
                                        "/tmp//x",
                                        "/tmp/x/",
                                        std::string("/tmp/a\0b", 8),
                                        "/tmp/a\nb",
                                        "/tmp/a\x7f",
                                        "/tmp/\xff\xfe",
                                        "/tmp/" + std::string(256, 'a'),
                                        "/" + std::string(4096, 'a'),
                                        [] {
                                          std::string deep;
                                          for (int i = 0; i < 65; ++i) deep += "/d";
                                          return deep;
                                        }()};
  for (const std::string& p : bad) {
    EXPECT_TRUE(this->fs_->Write("t", p, "x").status().IsInvalidArgument()) << p;
    EXPECT_TRUE(this->fs_->Read("t", p).status().IsInvalidArgument()) << p;
    EXPECT_TRUE(this->fs_->Edit("t", p, "a", "b").status().IsInvalidArgument()) << p;
    EXPECT_TRUE(this->fs_->Delete("t", p).IsInvalidArgument()) << p;
  }
  EXPECT_FALSE(this->manager_->Exists("t").value());  // no session made for a bad write
  EXPECT_TRUE(this->fs_->List("t", "tmp/").status().IsInvalidArgument());
}

TYPED_TEST(FileServiceTest, BadThreadIdsAreRefused) {
  for (const std::string& id : {std::string(), std::string(256, 'x'), std::string("a\tb"), std::string("\xc0\xaf")}) {
    EXPECT_TRUE(this->fs_->Write(id, "/tmp/a", "x").status().IsInvalidArgument());
    EXPECT_TRUE(this->fs_->Read(id, "/tmp/a").status().IsInvalidArgument());
    EXPECT_TRUE(this->fs_->Edit(id, "/tmp/a", "x", "y").status().IsInvalidArgument());
    EXPECT_TRUE(this->fs_->Delete(id, "/tmp/a").IsInvalidArgument());
    EXPECT_TRUE(this->fs_->List(id).status().IsInvalidArgument());
    EXPECT_TRUE(this->fs_->Glob(id, "/**").status().IsInvalidArgument());
    EXPECT_TRUE(this->fs_->Grep(id, "x").status().IsInvalidArgument());
  }
  EXPECT_TRUE(this->manager_->List().value().empty());
}

TYPED_TEST(FileServiceTest, MissingSessionOrFileIsNotFound) {
  EXPECT_TRUE(this->fs_->Read("none", "/tmp/a").status().IsNotFound());
  EXPECT_TRUE(this->fs_->Edit("none", "/tmp/a", "x", "y").status().IsNotFound());
  EXPECT_TRUE(this->fs_->Delete("none", "/tmp/a").IsNotFound());
  EXPECT_TRUE(this->fs_->List("none").status().IsNotFound());
  EXPECT_TRUE(this->fs_->Glob("none", "/**").status().IsNotFound());
  EXPECT_TRUE(this->fs_->Grep("none", "x").status().IsNotFound());
  EXPECT_FALSE(this->manager_->Exists("none").value());  // only a write creates
  this->Write("/tmp/present", "x");
  EXPECT_TRUE(this->fs_->Read("t", "/tmp/absent").status().IsNotFound());
  EXPECT_TRUE(this->fs_->Delete("t", "/tmp/absent").IsNotFound());
  EXPECT_TRUE(this->fs_->Edit("t", "/tmp/absent", "x", "y").status().IsNotFound());
}

TYPED_TEST(FileServiceTest, FileOf20MiBFitsAndOneByteMoreIsRefusedLosingNothing) {
  this->options_.max_bytes_per_session = int64_t{64} << 20;
  this->Remake();
  this->Write("/tmp/big", "previous");
  const std::string max(store::kMaxFileBytes, 'z');
  StatusOr<store::FileInfo> ok = this->fs_->Write("t", "/tmp/max", max);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok.value().size, store::kMaxFileBytes);
  const Status over = this->fs_->Write("t", "/tmp/big", std::string(store::kMaxFileBytes + 1, 'y')).status();
  ASSERT_TRUE(over.IsResourceExhausted()) << over.ToString();
  EXPECT_NE(over.message().find("/tmp/big"), std::string::npos) << over.message();
  EXPECT_EQ(this->Content("/tmp/big"), "previous");
  // An edit that would grow a file past 20 MiB is refused the same way.
  const Status grown = this->fs_->Edit("t", "/tmp/max", "zz", "zzz").status();
  EXPECT_TRUE(grown.IsFailedPrecondition()) << grown.ToString();  // not unique
  const Status grown_all = this->fs_->Edit("t", "/tmp/max", "z", "zz", true).status();
  EXPECT_TRUE(grown_all.IsResourceExhausted()) << grown_all.ToString();
  EXPECT_EQ(this->fs_->Read("t", "/tmp/max", 0, 0).value().info.size, store::kMaxFileBytes);
}

TYPED_TEST(FileServiceTest, FileCountQuotaRefusesTheExtraFileOnly) {
  for (int i = 0; i < 4; ++i) this->Write("/tmp/f" + std::to_string(i), "x");
  const Status s = this->fs_->Write("t", "/tmp/f4", "x").status();
  ASSERT_TRUE(s.IsResourceExhausted()) << s.ToString();
  EXPECT_NE(s.message().find("5 files"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("quota of 4 files"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("/tmp/f4"), std::string::npos) << s.message();
  EXPECT_TRUE(this->fs_->Read("t", "/tmp/f4").status().IsNotFound());
  // Nothing else lost, and replacing an existing file is still allowed at the quota.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(this->Content("/tmp/f" + std::to_string(i)), "x");
  this->Write("/tmp/f0", "replaced");
  EXPECT_EQ(this->Content("/tmp/f0"), "replaced");
  ASSERT_TRUE(this->fs_->Delete("t", "/tmp/f1").ok());
  this->Write("/tmp/f4", "now fits");
}

TYPED_TEST(FileServiceTest, ByteQuotaRefusesGrowthOnly) {
  this->Write("/tmp/a", std::string(40, 'a'));
  this->Write("/tmp/b", std::string(24, 'b'));  // 64: exactly the quota
  const Status s = this->fs_->Write("t", "/tmp/c", "1").status();
  ASSERT_TRUE(s.IsResourceExhausted()) << s.ToString();
  EXPECT_NE(s.message().find("65 bytes"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("quota of 64 bytes"), std::string::npos) << s.message();
  EXPECT_TRUE(this->fs_->Write("t", "/tmp/a", std::string(41, 'a')).status().IsResourceExhausted());
  EXPECT_EQ(this->Content("/tmp/a"), std::string(40, 'a'));
  EXPECT_TRUE(this->fs_->Edit("t", "/tmp/b", "b", "bb", true).status().IsResourceExhausted());
  EXPECT_EQ(this->Content("/tmp/b"), std::string(24, 'b'));
  // Shrinking works; then there is room again.
  this->Write("/tmp/a", std::string(30, 'a'));
  this->Write("/tmp/c", std::string(10, 'c'));
  StatusOr<store::SessionInfo> info = this->manager_->Get("t");
  EXPECT_EQ(info.value().total_bytes, 64);
  EXPECT_EQ(info.value().file_count, 3);
}

TYPED_TEST(FileServiceTest, OverAQuotaLoweredLaterShrinkingAndDeletingStillWork) {
  for (int i = 0; i < 4; ++i) this->Write("/tmp/f" + std::to_string(i), std::string(16, 'x'));
  this->options_.max_files_per_session = 2;
  this->options_.max_bytes_per_session = 10;
  this->Remake();
  this->Write("/tmp/f0", "small");  // replace and shrink: allowed
  ASSERT_TRUE(this->fs_->Edit("t", "/tmp/f1", std::string(16, 'x'), "y").ok());
  ASSERT_TRUE(this->fs_->Delete("t", "/tmp/f2").ok());
  EXPECT_TRUE(this->fs_->Write("t", "/tmp/new", "z").status().IsResourceExhausted());
}

TYPED_TEST(FileServiceTest, EditUniqueNotUniqueAbsentAndAll) {
  this->Write("/home/user/a.py", "x = 1\ny = 2\nx = 1\n");
  // Not unique: refused with the count, nothing changed.
  const Status twice = this->fs_->Edit("t", "/home/user/a.py", "x = 1", "x = 3").status();
  ASSERT_TRUE(twice.IsFailedPrecondition()) << twice.ToString();
  EXPECT_NE(twice.message().find("2 times"), std::string::npos) << twice.message();
  EXPECT_EQ(this->Content("/home/user/a.py"), "x = 1\ny = 2\nx = 1\n");
  // Absent.
  const Status absent = this->fs_->Edit("t", "/home/user/a.py", "zzz", "q").status();
  ASSERT_TRUE(absent.IsNotFound()) << absent.ToString();
  EXPECT_NE(absent.message().find("'zzz'"), std::string::npos) << absent.message();
  // Unique.
  StatusOr<int64_t> one = this->fs_->Edit("t", "/home/user/a.py", "y = 2", "y = 20");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one.value(), 1);
  EXPECT_EQ(this->Content("/home/user/a.py"), "x = 1\ny = 20\nx = 1\n");
  // All.
  StatusOr<int64_t> all = this->fs_->Edit("t", "/home/user/a.py", "x = 1", "x=9", true);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all.value(), 2);
  EXPECT_EQ(this->Content("/home/user/a.py"), "x=9\ny = 20\nx=9\n");
  // Non-overlapping, left to right; deletion with an empty replacement.
  this->Write("/tmp/aaa", "aaaaa");
  EXPECT_EQ(this->fs_->Edit("t", "/tmp/aaa", "aa", "", true).value(), 2);
  EXPECT_EQ(this->Content("/tmp/aaa"), "a");
  // Empty or unchanged text is a bad argument.
  EXPECT_TRUE(this->fs_->Edit("t", "/tmp/aaa", "", "x").status().IsInvalidArgument());
  EXPECT_TRUE(this->fs_->Edit("t", "/tmp/aaa", "a", "a").status().IsInvalidArgument());
}

TYPED_TEST(FileServiceTest, DeleteRemovesOnlyThatFile) {
  this->Write("/tmp/a", "1");
  this->Write("/tmp/ab", "2");
  ASSERT_TRUE(this->fs_->Delete("t", "/tmp/a").ok());
  EXPECT_TRUE(this->fs_->Read("t", "/tmp/a").status().IsNotFound());
  EXPECT_EQ(this->Content("/tmp/ab"), "2");
  EXPECT_TRUE(this->fs_->Delete("t", "/tmp/a").IsNotFound());
}

TYPED_TEST(FileServiceTest, WritesBumpTheStateVersionAndKeepTheSnapshot) {
  ASSERT_TRUE(this->manager_->GetOrCreate("t").ok());
  ASSERT_TRUE(this->store_->SaveExecution("t", 0, store::StateWrite{"snap", "pages", "b"}, {}, {}).ok());
  EXPECT_EQ(this->Version(), 1);
  this->Write("/tmp/a", "1");
  EXPECT_EQ(this->Version(), 2);
  ASSERT_TRUE(this->fs_->Edit("t", "/tmp/a", "1", "2").ok());
  EXPECT_EQ(this->Version(), 3);
  ASSERT_TRUE(this->fs_->Delete("t", "/tmp/a").ok());
  EXPECT_EQ(this->Version(), 4);
  EXPECT_EQ(this->store_->GetState("t").value()->snapshot, "snap");
  // Reads do not.
  (void)this->fs_->List("t");
  EXPECT_EQ(this->Version(), 4);
}

TYPED_TEST(FileServiceTest, AFileAndADirectoryCannotShareAPath) {
  this->Write("/home/user/out/report.md", "# r");
  const Status over_dir = this->fs_->Write("t", "/home/user/out", "x").status();
  ASSERT_TRUE(over_dir.IsFailedPrecondition()) << over_dir.ToString();
  EXPECT_NE(over_dir.message().find("is a directory"), std::string::npos) << over_dir.message();
  const Status under_file = this->fs_->Write("t", "/home/user/out/report.md/x", "x").status();
  ASSERT_TRUE(under_file.IsFailedPrecondition()) << under_file.ToString();
  EXPECT_NE(under_file.message().find("/home/user/out/report.md is a file"), std::string::npos);
  // A sibling whose name merely starts the same is fine.
  this->Write("/home/user/outer", "ok");
  this->Write("/home/user/out2/x", "ok");
}

TYPED_TEST(FileServiceTest, ExpiredSessionRefusesEveryOperation) {
  ASSERT_TRUE(this->manager_->Create("old", 1).ok());
  this->Write("/tmp/a", "keep", "old");
  this->now_ += 2 * kDay;
  EXPECT_TRUE(this->fs_->Write("old", "/tmp/b", "x").status().IsFailedPrecondition());
  EXPECT_TRUE(this->fs_->Read("old", "/tmp/a").status().IsFailedPrecondition());
  EXPECT_TRUE(this->fs_->Edit("old", "/tmp/a", "keep", "x").status().IsFailedPrecondition());
  EXPECT_TRUE(this->fs_->Delete("old", "/tmp/a").IsFailedPrecondition());
  EXPECT_TRUE(this->fs_->List("old").status().IsFailedPrecondition());
  EXPECT_TRUE(this->fs_->Glob("old", "/**").status().IsFailedPrecondition());
  const Status grep = this->fs_->Grep("old", "keep").status();
  ASSERT_TRUE(grep.IsFailedPrecondition());
  EXPECT_NE(grep.message().find("expired"), std::string::npos);
  EXPECT_EQ(this->store_->GetFile("old", "/tmp/a").value().content, "keep");
  ASSERT_TRUE(this->manager_->Extend("old", 1).ok());
  EXPECT_EQ(this->Content("/tmp/a", "old"), "keep");
}

TYPED_TEST(FileServiceTest, OperationsSetLastAccessed) {
  this->Write("/tmp/a", "x");
  this->now_ += kDay;
  ASSERT_TRUE(this->fs_->Read("t", "/tmp/a").ok());
  EXPECT_EQ(this->manager_->Get("t").value().last_accessed, 1001 * kDay);
}

TYPED_TEST(FileServiceTest, WritesWaitForTheSessionLock) {
  this->Write("/tmp/a", "x");
  StatusOr<std::unique_ptr<store::SessionLock>> held = this->store_->LockSession("t");
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(this->fs_->Write("t", "/tmp/a", "y").status().IsDeadlineExceeded());
  EXPECT_TRUE(this->fs_->Delete("t", "/tmp/a").IsDeadlineExceeded());
  EXPECT_EQ(this->Content("/tmp/a"), "x");  // reads do not wait
  held.value().reset();
  this->Write("/tmp/a", "y");
  EXPECT_EQ(this->Content("/tmp/a"), "y");
}

TYPED_TEST(FileServiceTest, ListByPrefix) {
  this->Write("/tmp/a", "1");
  this->Write("/tmp/b/c", "2");
  this->Write("/tmpfile", "3");
  this->Write("/home/user/x", "4");
  using V = std::vector<std::string>;
  EXPECT_EQ(this->Paths(this->fs_->List("t")), (V{"/home/user/x", "/tmp/a", "/tmp/b/c", "/tmpfile"}));
  EXPECT_EQ(this->Paths(this->fs_->List("t", "/")), (V{"/home/user/x", "/tmp/a", "/tmp/b/c", "/tmpfile"}));
  EXPECT_EQ(this->Paths(this->fs_->List("t", "/tmp/")), (V{"/tmp/a", "/tmp/b/c"}));
  EXPECT_EQ(this->Paths(this->fs_->List("t", "/tmp")), (V{"/tmp/a", "/tmp/b/c", "/tmpfile"}));
  EXPECT_EQ(this->Paths(this->fs_->List("t", "/nothing/")), V{});
  StatusOr<std::vector<store::FileInfo>> l = this->fs_->List("t", "/home/");
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l.value().size(), 1u);
  EXPECT_EQ(l.value()[0].size, 1);
  EXPECT_EQ(l.value()[0].content_type, "text/plain");
}

TYPED_TEST(FileServiceTest, GlobPatterns) {
  this->options_.max_files_per_session = 100;
  this->options_.max_bytes_per_session = 1000;
  this->Remake();
  for (const char* p : {"/home/user/a.py", "/home/user/b.py", "/home/user/lib/c.py", "/home/user/lib/deep/d.py",
                        "/home/user/.hidden.py", "/home/user/notes.txt", "/tmp/a.py", "/tmp/x1.csv",
                        "/tmp/x2.csv", "/tmp/xa.csv"}) {
    this->Write(p, "x");
  }
  using V = std::vector<std::string>;
  auto glob = [&](const char* pattern) { return this->Paths(this->fs_->Glob("t", pattern)); };
  EXPECT_EQ(glob("/home/user/*.py"), (V{"/home/user/.hidden.py", "/home/user/a.py", "/home/user/b.py"}));
  EXPECT_EQ(glob("/home/user/**/*.py"), (V{"/home/user/.hidden.py", "/home/user/a.py", "/home/user/b.py",
                                           "/home/user/lib/c.py", "/home/user/lib/deep/d.py"}));
  EXPECT_EQ(glob("/**/a.py"), (V{"/home/user/a.py", "/tmp/a.py"}));
  EXPECT_EQ(glob("/tmp/x?.csv"), (V{"/tmp/x1.csv", "/tmp/x2.csv", "/tmp/xa.csv"}));
  EXPECT_EQ(glob("/tmp/x[0-9].csv"), (V{"/tmp/x1.csv", "/tmp/x2.csv"}));
  EXPECT_EQ(glob("/tmp/x[!0-9].csv"), (V{"/tmp/xa.csv"}));
  EXPECT_EQ(glob("/*/*.py"), (V{"/tmp/a.py"}));
  EXPECT_EQ(glob("/home/user/notes.txt"), (V{"/home/user/notes.txt"}));
  EXPECT_EQ(glob("/home/user/lib/**"), (V{"/home/user/lib/c.py", "/home/user/lib/deep/d.py"}));
  EXPECT_EQ(glob("/nothing/**"), V{});
  EXPECT_TRUE(this->fs_->Glob("t", "relative/*.py").status().IsInvalidArgument());
  EXPECT_TRUE(this->fs_->Glob("t", "/tmp/[abc").status().IsInvalidArgument());
}

TYPED_TEST(FileServiceTest, GrepModes) {
  this->options_.max_bytes_per_session = 10'000;
  this->Remake();
  this->Write("/home/user/a.py", "import os\ndef f():\n    return os.getcwd()\n# TODO: more\n");
  this->Write("/home/user/b.txt", "todo list\nnothing\nTODO again\n");
  this->Write("/tmp/c.bin", std::string("TODO\0binary\nTODO\n", 17));
  this->Write("/tmp/none.txt", "no match here");

  GrepOptions content;
  StatusOr<GrepResult> r = this->fs_->Grep("t", "TODO", content);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().files_searched, 4);
  EXPECT_FALSE(r.value().truncated);
  ASSERT_EQ(r.value().files.size(), 3u);
  EXPECT_EQ(r.value().files[0].path, "/home/user/a.py");
  ASSERT_EQ(r.value().files[0].lines.size(), 1u);
  EXPECT_EQ(r.value().files[0].lines[0].number, 4);
  EXPECT_EQ(r.value().files[0].lines[0].text, "# TODO: more");
  EXPECT_EQ(r.value().files[1].path, "/home/user/b.txt");
  ASSERT_EQ(r.value().files[1].lines.size(), 1u);
  EXPECT_EQ(r.value().files[1].lines[0].number, 3);
  EXPECT_EQ(r.value().files[2].path, "/tmp/c.bin");
  EXPECT_TRUE(r.value().files[2].binary);
  EXPECT_TRUE(r.value().files[2].lines.empty());
  EXPECT_EQ(r.value().files[2].count, 2);

  GrepOptions ci;
  ci.case_insensitive = true;
  ci.mode = GrepMode::kCount;
  r = this->fs_->Grep("t", "todo", ci);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.value().files.size(), 3u);
  EXPECT_EQ(r.value().files[0].count, 1);
  EXPECT_EQ(r.value().files[1].count, 2);
  EXPECT_TRUE(r.value().files[1].lines.empty());

  GrepOptions files_only;
  files_only.mode = GrepMode::kFilesWithMatches;
  files_only.path_glob = "/home/**";
  r = this->fs_->Grep("t", R"(^\s+return\b)", files_only);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.value().files.size(), 1u);
  EXPECT_EQ(r.value().files[0].path, "/home/user/a.py");
  EXPECT_EQ(r.value().files_searched, 2);

  EXPECT_TRUE(this->fs_->Grep("t", "(unclosed").status().IsInvalidArgument());
  EXPECT_TRUE(this->fs_->Grep("t", R"((a)\1)").status().IsInvalidArgument());
  GrepOptions bad_glob;
  bad_glob.path_glob = "no-slash";
  EXPECT_TRUE(this->fs_->Grep("t", "x", bad_glob).status().IsInvalidArgument());
}

TYPED_TEST(FileServiceTest, GrepBoundsItsWorkAndOutput) {
  this->options_.max_bytes_per_session = int64_t{4} << 20;
  this->Remake();
  // A classic catastrophic-backtracking case, on one long line: linear here.
  this->Write("/tmp/long", std::string(1 << 20, 'a') + "!");
  GrepOptions opt;
  StatusOr<GrepResult> r = this->fs_->Grep("t", "(a+)+$", opt);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().files.empty());  // the line ends in '!'
  EXPECT_FALSE(r.value().truncated);
  r = this->fs_->Grep("t", "(a+)+!$", opt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().files.size(), 1u);
  opt.max_time = std::chrono::milliseconds(0);
  r = this->fs_->Grep("t", "(a|aa)*b", opt);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().truncated);
  EXPECT_NE(r.value().truncated_reason.find("ran out of time"), std::string::npos);

  std::string many;
  for (int i = 0; i < 50; ++i) many += "hit " + std::to_string(i) + "\n";
  this->Write("/tmp/many", many);
  GrepOptions few;
  few.max_lines = 5;
  few.path_glob = "/tmp/many";
  r = this->fs_->Grep("t", "hit", few);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().truncated);
  ASSERT_EQ(r.value().files.size(), 1u);
  EXPECT_EQ(r.value().files[0].lines.size(), 5u);
  EXPECT_EQ(r.value().files[0].lines[4].text, "hit 4");
}

}  // namespace
}  // namespace brig::files
