// Volume mounts, attacked from the guest's side of WasiContext: a host directory is shown at
// /mnt/data; every way out of it (symlinks, "..", links, renames, a host racing the guest)
// must fail and leave the host's other files unread and unchanged.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "vfs/file_system.h"
#include "wasi/host_mount.h"
#include "wasi/wasi_context.h"

namespace brig::wasi {
namespace {

namespace fsys = std::filesystem;

void WriteHost(const fsys::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }
std::string ReadHost(const fsys::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class MountTest : public ::testing::Test {
 protected:
  MountTest() : bytes(8 << 20), mem(bytes.data(), bytes.size()) {
    char tmpl[] = "/tmp/brig-mount-test-XXXXXX";
    top = mkdtemp(tmpl);
    fsys::create_directories(top / "shared" / "sub");
    fsys::create_directories(top / "outside");
    WriteHost(top / "outside" / "secret", "OUTSIDE");
    WriteHost(top / "shared" / "hello.txt", "hello from the host");
  }
  ~MountTest() override { fsys::remove_all(top); }

  // Mounts top/shared at /mnt/data.
  void Mount(bool writable, HostMount::Quota quota = {}) {
    fs = std::make_unique<vfs::FileSystem>();
    std::string error;
    auto m = HostMount::Open((top / "shared").string(), "/mnt/data", writable, quota, &error);
    ASSERT_TRUE(m) << error;
    WasiContext::Options wo;
    wo.sleep = [](uint64_t) {};
    wo.mounts.push_back(m);
    ctx = std::make_unique<WasiContext>(*fs, wo);
  }
  uint32_t Put(std::string_view s) {
    uint32_t p = next;
    std::memcpy(&bytes[p], s.data(), s.size());
    next += (static_cast<uint32_t>(s.size()) + 16) & ~15u;
    if (next > bytes.size() - (4 << 20)) next = 4096;  // reuse: the tests' strings are short-lived
    return p;
  }
  std::pair<uint32_t, uint32_t> P(std::string_view s) { return {Put(s), static_cast<uint32_t>(s.size())}; }
  uint32_t Open(std::string_view path, uint32_t oflags, uint64_t rights, uint32_t* fd = nullptr, uint32_t dirfd = 3) {
    auto [p, l] = P(path);
    uint32_t e = ctx->PathOpen(mem, dirfd, 0, p, l, oflags, rights, rights::kAll, 0, kOut);
    if (fd) std::memcpy(fd, &bytes[kOut], 4);
    return e;
  }
  uint32_t Write(uint32_t fd, std::string_view data, uint32_t* n) {
    uint32_t buf = Put(data);
    uint32_t iov = Put(std::string(8, '\0'));
    Iovec v{buf, static_cast<uint32_t>(data.size())};
    std::memcpy(&bytes[iov], &v, 8);
    uint32_t e = ctx->FdWrite(mem, fd, iov, 1, kOut);
    std::memcpy(n, &bytes[kOut], 4);
    return e;
  }
  // Reads up to `len` bytes at the descriptor's offset.
  uint32_t Read(uint32_t fd, uint32_t len, std::string* out) {
    constexpr uint32_t kBuf = 4 << 20;  // above the strings Put makes
    uint32_t iov = 128;
    Iovec v{kBuf, len};
    std::memcpy(&bytes[iov], &v, 8);
    uint32_t e = ctx->FdRead(mem, fd, iov, 1, kOut);
    uint32_t n = 0;
    std::memcpy(&n, &bytes[kOut], 4);
    out->assign(reinterpret_cast<const char*>(&bytes[kBuf]), e == err::kSuccess ? n : 0);
    return e;
  }
  std::string Contents(std::string_view path) {
    uint32_t fd = 0;
    if (Open(path, 0, rights::kFdRead, &fd) != err::kSuccess) return "<error>";
    std::string all, chunk;
    while (Read(fd, 1000, &chunk) == err::kSuccess && !chunk.empty()) all += chunk;
    ctx->FdClose(mem, fd);
    return all;
  }
  uint32_t Stat(std::string_view path) {
    auto [p, l] = P(path);
    return ctx->PathFilestatGet(mem, 3, 0, p, l, 256);
  }

  static constexpr uint32_t kOut = 64;
  fsys::path top;
  std::vector<uint8_t> bytes;
  GuestMemory mem;
  std::unique_ptr<vfs::FileSystem> fs;
  std::unique_ptr<WasiContext> ctx;
  uint32_t next = 4096;
};

TEST_F(MountTest, ReadsTheHostDirectory) {
  Mount(false);
  EXPECT_EQ(Contents("mnt/data/hello.txt"), "hello from the host");
  EXPECT_EQ(Contents("/mnt/data/./sub/../hello.txt"), "hello from the host");
  EXPECT_EQ(Contents("home/user/../../mnt/data/hello.txt"), "hello from the host");
  EXPECT_EQ(Stat("mnt/data"), err::kSuccess);
  EXPECT_EQ(Stat("mnt/data/sub"), err::kSuccess);
  // The VFS is still there, and the mount point's parent is not.
  EXPECT_EQ(Stat("home/user"), err::kSuccess);
  EXPECT_EQ(Stat("mnt"), err::kNoEnt);
  EXPECT_EQ(Stat("mnt/database"), err::kNoEnt);  // a name that only starts like the mount point
}

TEST_F(MountTest, SymlinksPointingOutAreRefused) {
  fsys::create_symlink("../outside/secret", top / "shared" / "rel");
  fsys::create_symlink((top / "outside" / "secret").string(), top / "shared" / "abs");
  fsys::create_directory_symlink(top / "outside", top / "shared" / "dirlink");
  fsys::create_symlink("hello.txt", top / "shared" / "inside");  // even one staying inside
  Mount(true);
  for (const char* p : {"mnt/data/rel", "mnt/data/abs", "mnt/data/dirlink/secret", "mnt/data/inside",
                        "mnt/data/dirlink"}) {
    EXPECT_EQ(Open(p, 0, rights::kFdRead), err::kPerm) << p;
    EXPECT_EQ(Open(p, kOflagCreat | kOflagTrunc, rights::kFdWrite), err::kPerm) << p;
    EXPECT_EQ(Stat(p), err::kPerm) << p;
  }
  auto [p, l] = P("mnt/data/dirlink/new");
  EXPECT_EQ(ctx->PathCreateDirectory(mem, 3, p, l), err::kPerm);
  auto [q, ql] = P("mnt/data/dirlink/secret");
  EXPECT_EQ(ctx->PathUnlinkFile(mem, 3, q, ql), err::kPerm);
  auto [r, rl] = P("mnt/data/abs");
  EXPECT_EQ(ctx->PathReadlink(mem, 3, r, rl, 512, 64, kOut), err::kInval);  // the target is not shown
  EXPECT_EQ(ReadHost(top / "outside" / "secret"), "OUTSIDE");
  EXPECT_FALSE(fsys::exists(top / "outside" / "new"));
}

TEST_F(MountTest, DotDotCannotLeave) {
  Mount(true);
  uint32_t dir = 0;
  ASSERT_EQ(Open("mnt/data/sub", kOflagDirectory, rights::kFdReaddir, &dir), err::kSuccess);
  for (const char* p : {"../outside/secret", "../../outside/secret", "..", "/etc/passwd"}) {
    EXPECT_NE(Open(p, 0, rights::kFdRead, nullptr, dir), err::kSuccess) << p;
  }
  // Past the mount point, ".." belongs to the host and is refused.
  EXPECT_EQ(Open("mnt/data/sub/../../outside/secret", 0, rights::kFdRead), err::kPerm);
  EXPECT_EQ(Open("mnt/data/../outside/secret", 0, rights::kFdRead), err::kPerm);  // in the mount at "data"
  auto [p, l] = P("mnt/data/sub/../../outside/x");
  EXPECT_EQ(ctx->PathCreateDirectory(mem, 3, p, l), err::kPerm);
  EXPECT_FALSE(fsys::exists(top / "outside" / "x"));
}

TEST_F(MountTest, RenamesAcrossTheEdgeAreRefused) {
  Mount(true);
  ASSERT_EQ(fs->WriteFile("/tmp/vfs.txt", "vfs"), vfs::Error::kOk);
  auto [a, al] = P("mnt/data/hello.txt");
  auto [b, bl] = P("tmp/moved.txt");
  EXPECT_EQ(ctx->PathRename(mem, 3, a, al, 3, b, bl), err::kXDev);
  auto [c, cl] = P("tmp/vfs.txt");
  auto [d, dl] = P("mnt/data/vfs.txt");
  EXPECT_EQ(ctx->PathRename(mem, 3, c, cl, 3, d, dl), err::kXDev);
  EXPECT_EQ(ReadHost(top / "shared" / "hello.txt"), "hello from the host");
  EXPECT_FALSE(fsys::exists(top / "shared" / "vfs.txt"));
  EXPECT_TRUE(fs->ReadFile("/tmp/vfs.txt").has_value());
  // Within the mount a rename works.
  auto [e, el] = P("mnt/data/sub/renamed.txt");
  EXPECT_EQ(ctx->PathRename(mem, 3, a, al, 3, e, el), err::kSuccess);
  EXPECT_EQ(ReadHost(top / "shared" / "sub" / "renamed.txt"), "hello from the host");
  // But not out of it by "..".
  auto [f, fl] = P("mnt/data/sub/../../outside/stolen");
  EXPECT_EQ(ctx->PathRename(mem, 3, e, el, 3, f, fl), err::kPerm);
  EXPECT_FALSE(fsys::exists(top / "outside" / "stolen"));
}

TEST_F(MountTest, NoLinksInAMount) {
  // A hard link the host made to a file outside: refused, its contents never read.
  ASSERT_EQ(link((top / "outside" / "secret").c_str(), (top / "shared" / "hard").c_str()), 0);
  Mount(true);
  EXPECT_EQ(Open("mnt/data/hard", 0, rights::kFdRead), err::kPerm);
  EXPECT_EQ(Open("mnt/data/hard", kOflagTrunc, rights::kFdWrite), err::kPerm);
  EXPECT_EQ(ReadHost(top / "outside" / "secret"), "OUTSIDE");
  // The guest makes none.
  auto [a, al] = P("mnt/data/hello.txt");
  auto [b, bl] = P("mnt/data/hl");
  EXPECT_EQ(ctx->PathLink(mem, 3, 0, a, al, 3, b, bl), err::kPerm);
  auto [t, tl] = P("/etc/passwd");
  EXPECT_EQ(ctx->PathSymlink(mem, t, tl, 3, b, bl), err::kPerm);
  auto [c, cl] = P("tmp/x");
  EXPECT_EQ(ctx->PathLink(mem, 3, 0, a, al, 3, c, cl), err::kXDev);
  EXPECT_FALSE(fsys::exists(fsys::symlink_status(top / "shared" / "hl")));
  struct stat st {};
  ASSERT_EQ(stat((top / "shared" / "hello.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(MountTest, ReadOnlyRefusesWrites) {
  Mount(false);
  uint32_t fd = 0;
  EXPECT_EQ(Open("mnt/data/hello.txt", 0, rights::kFdRead | rights::kFdWrite), err::kRoFs);
  EXPECT_EQ(Open("mnt/data/hello.txt", kOflagTrunc, rights::kFdRead), err::kRoFs);
  EXPECT_EQ(Open("mnt/data/new.txt", kOflagCreat, rights::kFdWrite), err::kRoFs);
  ASSERT_EQ(Open("mnt/data/hello.txt", 0, rights::kFdRead, &fd), err::kSuccess);
  uint32_t n = 0;
  EXPECT_EQ(Write(fd, "x", &n), err::kBadF);  // opened for reading only
  EXPECT_EQ(ctx->FdFilestatSetSize(mem, fd, 0), err::kInval);
  auto [a, al] = P("mnt/data/hello.txt");
  auto [b, bl] = P("mnt/data/sub2");
  auto [c, cl] = P("mnt/data/sub/x.txt");
  EXPECT_EQ(ctx->PathUnlinkFile(mem, 3, a, al), err::kRoFs);
  EXPECT_EQ(ctx->PathCreateDirectory(mem, 3, b, bl), err::kRoFs);
  EXPECT_EQ(ctx->PathRename(mem, 3, a, al, 3, c, cl), err::kRoFs);
  EXPECT_EQ(ctx->PathFilestatSetTimes(mem, 3, 0, a, al, 0, 0, kFstflagMtim), err::kRoFs);
  EXPECT_EQ(ReadHost(top / "shared" / "hello.txt"), "hello from the host");
  EXPECT_FALSE(fsys::exists(top / "shared" / "new.txt"));
  EXPECT_FALSE(fsys::exists(top / "shared" / "sub2"));
}

TEST_F(MountTest, WritableMountWritesTheHost) {
  Mount(true);
  uint32_t fd = 0, n = 0;
  ASSERT_EQ(Open("mnt/data/sub/out.txt", kOflagCreat | kOflagTrunc, rights::kFdWrite, &fd), err::kSuccess);
  EXPECT_EQ(Write(fd, "written by the guest", &n), err::kSuccess);
  EXPECT_EQ(n, 20u);
  EXPECT_EQ(ReadHost(top / "shared" / "sub" / "out.txt"), "written by the guest");
  auto [d, dl] = P("mnt/data/newdir");
  EXPECT_EQ(ctx->PathCreateDirectory(mem, 3, d, dl), err::kSuccess);
  EXPECT_TRUE(fsys::is_directory(top / "shared" / "newdir"));
  EXPECT_EQ(ctx->PathRemoveDirectory(mem, 3, d, dl), err::kSuccess);
  auto [u, ul] = P("mnt/data/sub/out.txt");
  EXPECT_EQ(ctx->PathUnlinkFile(mem, 3, u, ul), err::kSuccess);
  EXPECT_FALSE(fsys::exists(top / "shared" / "sub" / "out.txt"));
}

TEST_F(MountTest, QuotaLimitsBytesWritten) {
  HostMount::Quota q;
  q.max_bytes_written = 1000;
  q.max_file_size = 5000;
  Mount(true, q);
  uint32_t fd = 0, n = 0;
  ASSERT_EQ(Open("mnt/data/big", kOflagCreat, rights::kFdWrite, &fd), err::kSuccess);
  EXPECT_EQ(Write(fd, std::string(600, 'a'), &n), err::kSuccess);
  EXPECT_EQ(n, 600u);
  EXPECT_EQ(Write(fd, std::string(600, 'b'), &n), err::kSuccess);
  EXPECT_EQ(n, 400u);  // short: what fit
  EXPECT_EQ(Write(fd, "c", &n), err::kNoSpc);
  // Rewriting the same bytes counts again (bytes written, not the file's size).
  EXPECT_EQ(ctx->FdFilestatSetSize(mem, fd, 0), err::kSuccess);
  EXPECT_EQ(Write(fd, "d", &n), err::kNoSpc);
  EXPECT_EQ(ctx->FdFilestatSetSize(mem, fd, 100000), err::kFBig);
  EXPECT_EQ(fsys::file_size(top / "shared" / "big"), 0u);
}

TEST_F(MountTest, BigFileReadInChunks) {
  std::string big;
  for (int i = 0; i < 300000; ++i) big += std::to_string(i % 10);
  big += std::string(3 << 20, 'z');
  WriteHost(top / "shared" / "big.bin", big);
  Mount(false);
  uint32_t fd = 0;
  ASSERT_EQ(Open("mnt/data/big.bin", 0, rights::kFdRead, &fd), err::kSuccess);
  std::string all, chunk;
  int chunks = 0;
  while (Read(fd, 65536, &chunk) == err::kSuccess && !chunk.empty()) {
    all += chunk;
    ++chunks;
  }
  EXPECT_EQ(all.size(), big.size());
  EXPECT_TRUE(all == big);
  EXPECT_GT(chunks, 50);
}

TEST_F(MountTest, ListsRegularFilesAndDirectoriesOnly) {
  fsys::create_symlink("hello.txt", top / "shared" / "alink");
  ASSERT_EQ(mkfifo((top / "shared" / "fifo").c_str(), 0600), 0);
  Mount(false);
  EXPECT_EQ(Open("mnt/data/fifo", 0, rights::kFdRead), err::kPerm);  // and does not block
  uint32_t dir = 0;
  ASSERT_EQ(Open("mnt/data", kOflagDirectory, rights::kFdReaddir, &dir), err::kSuccess);
  constexpr uint32_t kBuf = 8192;
  ASSERT_EQ(ctx->FdReaddir(mem, dir, kBuf, 4096, 0, kOut), err::kSuccess);
  uint32_t used = 0;
  std::memcpy(&used, &bytes[kOut], 4);
  std::vector<std::string> names;
  for (uint32_t off = 0; off + sizeof(Dirent) <= used;) {
    Dirent d;
    std::memcpy(&d, &bytes[kBuf + off], sizeof d);
    names.emplace_back(reinterpret_cast<const char*>(&bytes[kBuf + off + sizeof d]), d.d_namlen);
    off += sizeof d + d.d_namlen;
  }
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "hello.txt", "sub"}));
}

// A host thread swaps a directory for a symlink to outside and back as fast as it can while
// the guest opens a file under it: every open either fails or reads the inside file.
TEST_F(MountTest, RaceSwappingDirectoryForSymlink) {
  fsys::create_directory(top / "shared" / "d");
  WriteHost(top / "shared" / "d" / "secret", "inside");
  fsys::create_directory_symlink(top / "outside", top / "shared" / "swap");
  Mount(false);
  std::atomic<bool> stop{false};
  std::atomic<int> swaps{0};
  std::thread swapper([&] {
    const std::string a = (top / "shared" / "d").string(), b = (top / "shared" / "swap").string();
    while (!stop) {
      if (renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) swaps++;
    }
  });
  int inside = 0, refused = 0, outside = 0;
  for (int i = 0; i < 20000 || swaps < 100; ++i) {
    uint32_t fd = 0;
    if (Open("mnt/data/d/secret", 0, rights::kFdRead, &fd) != err::kSuccess) {
      ++refused;
      continue;
    }
    std::string s;
    Read(fd, 100, &s);
    ctx->FdClose(mem, fd);
    (s == "inside" ? inside : outside)++;
  }
  stop = true;
  swapper.join();
  EXPECT_EQ(outside, 0);
  EXPECT_GT(inside, 0);
  EXPECT_GT(refused, 0);  // the symlink was met, and refused
}

TEST(MountPoints, Rules) {
  EXPECT_EQ(CheckMountPoint("/mnt/data"), "");
  EXPECT_EQ(CheckMountPoint("/data"), "");
  for (const char* bad : {"", "mnt", "/", "/mnt/", "/mnt//x", "/mnt/./x", "/mnt/../etc", "/usr", "/usr/x", "/home",
                          "/home/user/data", "/tmp/x", "/tmp", "/usr/share", "/usr/share/zoneinfo",
                          "/usr/share/zoneinfo/x"}) {
    EXPECT_NE(CheckMountPoint(bad), "") << bad;
  }
  EXPECT_NE(CheckMountPoint(std::string("/mnt/a\nb")), "");
  EXPECT_NE(CheckMountPoints({"/mnt/a", "/mnt/a/b"}), "");
  EXPECT_NE(CheckMountPoints({"/mnt/a", "/mnt/a"}), "");
  EXPECT_EQ(CheckMountPoints({"/mnt/a", "/mnt/ab"}), "");
  std::string error;
  EXPECT_EQ(HostMount::Open("/nonexistent-brig-dir", "/mnt/x", false, {}, &error), nullptr);
  EXPECT_NE(error, "");
}

}  // namespace
}  // namespace brig::wasi
