// Think like an attacker: try to reach the host's files, write the read-only stdlib,
// escape the workspace, abuse descriptors, exhaust memory through the quota. Every attempt
// must fail with a clean errno and leave the host (and the VFS) as it was.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "vfs/file_system.h"
#include "vfs/pack.h"
#include "wasi/wasi_context.h"

namespace brig::wasi {
namespace {

const std::string& Pack() {
  static const std::string pack = vfs::BuildPack({{"os.py", "original"}, {"json/__init__.py", "j"}});
  return pack;
}

class EscapeTest : public ::testing::Test {
 protected:
  explicit EscapeTest(vfs::Limits limits = {}) : bytes(1 << 20), mem(bytes.data(), bytes.size()) {
    vfs::FileSystem::Options o;
    o.limits = limits;
    std::string error;
    o.stdlib = vfs::PackTree::Parse(Pack(), &error);
    fs = std::make_unique<vfs::FileSystem>(o);
    WasiContext::Options wo;
    wo.sleep = [](uint64_t) {};
    ctx = std::make_unique<WasiContext>(*fs, wo);
  }
  uint32_t Put(std::string_view s) {
    uint32_t p = next;
    std::memcpy(&bytes[p], s.data(), s.size());
    next += (static_cast<uint32_t>(s.size()) + 16) & ~15u;
    return p;
  }
  uint32_t Open(std::string_view path, uint32_t oflags, uint64_t rights, uint32_t* fd = nullptr, uint32_t dirfd = 3) {
    uint32_t p = Put(path);
    uint32_t e = ctx->PathOpen(mem, dirfd, 1, p, static_cast<uint32_t>(path.size()), oflags, rights, rights::kAll,
                               0, kOut);
    if (fd) std::memcpy(fd, &bytes[kOut], 4);
    return e;
  }
  uint32_t WriteAt(uint32_t fd, std::string_view data, std::optional<uint64_t> off) {
    uint32_t buf = Put(data);
    uint32_t iov = Put(std::string(8, '\0'));
    Iovec v{buf, static_cast<uint32_t>(data.size())};
    std::memcpy(&bytes[iov], &v, 8);
    return off ? ctx->FdPwrite(mem, fd, iov, 1, *off, kOut) : ctx->FdWrite(mem, fd, iov, 1, kOut);
  }
  std::pair<uint32_t, uint32_t> P(std::string_view s) { return {Put(s), static_cast<uint32_t>(s.size())}; }

  static constexpr uint32_t kOut = 64;
  static constexpr uint64_t kRW = rights::kFdRead | rights::kFdWrite;
  std::vector<uint8_t> bytes;
  GuestMemory mem;
  std::unique_ptr<vfs::FileSystem> fs;
  std::unique_ptr<WasiContext> ctx;
  uint32_t next = 4096;
};

TEST_F(EscapeTest, HostFilesAreUnreachable) {
  for (const char* p : {"etc/passwd", "/etc/passwd", "../../etc/passwd", "home/user/../../../../etc/passwd",
                        "proc/self/environ", "/proc/self/mem", "dev/zero", "/dev/sda", "sys", "root", "usr/bin/python3",
                        "home/user/../../usr/local/lib/python3.11/../../../../../../etc/shadow"}) {
    EXPECT_EQ(Open(p, 0, rights::kFdRead), err::kNoEnt) << p;
    uint32_t st = next;
    auto [pp, pl] = P(p);
    EXPECT_EQ(ctx->PathFilestatGet(mem, 3, 0, pp, pl, st), err::kNoEnt) << p;
  }
  // /dev/null is the VFS's own device (no bytes, writes dropped), never the host's.
  EXPECT_EQ(fs->StatPath("/dev/null").value().type, vfs::NodeType::kNullDevice);
  EXPECT_EQ(fs->List("/dev").value().size(), 1u);
  // ".." out of a subdirectory descriptor lands on the VFS root, never the host's.
  uint32_t home = 0;
  ASSERT_EQ(Open("home/user", kOflagDirectory, rights::kFdReaddir, &home), err::kSuccess);
  EXPECT_EQ(Open("../../../../../../etc/passwd", 0, rights::kFdRead, nullptr, home), err::kNoEnt);
  EXPECT_EQ(Open("../../../../../../usr/local/lib/python3.11/os.py", 0, rights::kFdRead, nullptr, home),
            err::kSuccess);
}

TEST_F(EscapeTest, CreatedFilesNeverReachTheHost) {
  const std::string name = "brig_escape_probe_" + std::to_string(getpid());
  uint32_t fd = 0;
  ASSERT_EQ(Open("tmp/" + name, kOflagCreat, kRW, &fd), err::kSuccess);
  ASSERT_EQ(WriteAt(fd, "x", std::nullopt), err::kSuccess);
  EXPECT_NE(access(("/tmp/" + name).c_str(), F_OK), 0);
  EXPECT_EQ(fs->ReadFile("/tmp/" + name), "x");
}

TEST_F(EscapeTest, BadPathStrings) {
  EXPECT_EQ(Open(std::string("tmp/a\0/../../etc/passwd", 22), kOflagCreat, kRW), err::kInval);
  EXPECT_EQ(Open(std::string("\0", 1), 0, rights::kFdRead), err::kInval);
  EXPECT_EQ(Open("", 0, rights::kFdRead), err::kNoEnt);
  EXPECT_EQ(Open("tmp/" + std::string(256, 'a'), kOflagCreat, kRW), err::kNameTooLong);
  EXPECT_EQ(Open(std::string(5000, '/'), 0, rights::kFdRead), err::kNameTooLong);
  std::string dots;
  for (int i = 0; i < 1000; ++i) dots += "../";
  EXPECT_EQ(Open(dots + "tmp", kOflagDirectory, rights::kFdReaddir), err::kSuccess);
  // Deep trees stop at the depth limit, cleanly.
  std::string path = "tmp";
  uint32_t last = err::kSuccess;
  int made = 0;
  for (int i = 0; i < 100 && last == err::kSuccess; ++i) {
    path += "/d";
    auto [p, l] = P(path);
    last = ctx->PathCreateDirectory(mem, 3, p, l);
    if (last == err::kSuccess) ++made;
  }
  EXPECT_EQ(last, err::kNameTooLong);
  EXPECT_EQ(made, 63);  // "/tmp" is depth 1 of 64
  EXPECT_EQ(Open(path.substr(0, path.size() - 2) + "/f", kOflagCreat, kRW), err::kNameTooLong);
}

TEST_F(EscapeTest, NoSymlinksNoHardLinks) {
  auto [target, tl] = P("/etc/passwd");
  auto [link, ll] = P("home/user/passwd");
  EXPECT_EQ(ctx->PathSymlink(mem, target, tl, 3, link, ll), err::kPerm);
  EXPECT_EQ(Open("home/user/passwd", 0, rights::kFdRead), err::kNoEnt);
  auto [lib, libl] = P("usr/local/lib/python3.11/os.py");
  EXPECT_EQ(ctx->PathLink(mem, 3, 0, lib, libl, 3, link, ll), err::kPerm);
  EXPECT_EQ(Open("home/user/passwd", 0, rights::kFdRead), err::kNoEnt);
  uint32_t used = next;
  EXPECT_EQ(ctx->PathReadlink(mem, 3, lib, libl, next + 8, 100, used), err::kInval);
}

TEST_F(EscapeTest, StdlibIsReadOnly) {
  uint32_t fd = 0;
  EXPECT_EQ(Open("usr/local/lib/python3.11/os.py", 0, kRW), err::kRoFs);
  EXPECT_EQ(Open("usr/local/lib/python3.11/os.py", kOflagTrunc, rights::kFdRead), err::kRoFs);
  EXPECT_EQ(Open("usr/local/lib/python3.11/evil.py", kOflagCreat, kRW), err::kRoFs);
  EXPECT_EQ(Open("usr/local/lib/python3.11/json/__pycache__/x.pyc", kOflagCreat, kRW), err::kNoEnt);
  auto [d, dl] = P("usr/local/lib/python3.11/json/__pycache__");
  EXPECT_EQ(ctx->PathCreateDirectory(mem, 3, d, dl), err::kRoFs);
  auto [f, fl] = P("usr/local/lib/python3.11/os.py");
  EXPECT_EQ(ctx->PathUnlinkFile(mem, 3, f, fl), err::kRoFs);
  EXPECT_EQ(ctx->PathFilestatSetTimes(mem, 3, 0, f, fl, 0, 0, kFstflagMtim), err::kRoFs);
  auto [w, wl] = P("home/user/os.py");
  EXPECT_EQ(ctx->PathRename(mem, 3, f, fl, 3, w, wl), err::kRoFs);
  // Opened read-only: writing, truncating, allocating through the descriptor fail.
  ASSERT_EQ(Open("usr/local/lib/python3.11/os.py", 0, rights::kFdRead, &fd), err::kSuccess);
  EXPECT_EQ(WriteAt(fd, "pwned", std::nullopt), err::kBadF);
  EXPECT_EQ(WriteAt(fd, "pwned", 0), err::kBadF);
  EXPECT_EQ(ctx->FdFilestatSetSize(mem, fd, 0), err::kInval);
  EXPECT_EQ(ctx->FdAllocate(mem, fd, 0, 100), err::kBadF);
  EXPECT_EQ(ctx->FdFilestatSetTimes(mem, fd, 0, 0, kFstflagMtimNow), err::kRoFs);
  // Widening rights after the fact is refused.
  EXPECT_EQ(ctx->FdFdstatSetRights(mem, fd, rights::kFdRead | rights::kFdWrite, 0), err::kNotCapable);
  EXPECT_EQ(WriteAt(fd, "pwned", 0), err::kBadF);
  EXPECT_EQ(fs->ReadFile("/usr/local/lib/python3.11/os.py"), "original");
}

TEST_F(EscapeTest, NothingCreatedOutsideWritableMounts) {
  for (const char* p : {"evil", "/evil", "home/evil", "usr/evil", "usr/local/lib/evil"})
    EXPECT_EQ(Open(p, kOflagCreat, kRW), err::kRoFs) << p;
  auto [d, dl] = P("etc");
  EXPECT_EQ(ctx->PathCreateDirectory(mem, 3, d, dl), err::kRoFs);
  auto [t, tl] = P("tmp");
  EXPECT_EQ(ctx->PathRemoveDirectory(mem, 3, t, tl), err::kRoFs);
  auto [h, hl] = P("home/user");
  auto [h2, h2l] = P("home/other");
  EXPECT_EQ(ctx->PathRename(mem, 3, h, hl, 3, h2, h2l), err::kRoFs);
  auto [dot, dotl] = P("home/user/.");
  EXPECT_EQ(ctx->PathRemoveDirectory(mem, 3, dot, dotl), err::kBusy);
  EXPECT_EQ(fs->List("/").value().size(), 4u);  // dev, home, tmp, usr
}

TEST_F(EscapeTest, RenameOutOfWorkspace) {
  ASSERT_EQ(fs->WriteFile("/home/user/secret", "s"), vfs::Error::kOk);
  auto [a, al] = P("home/user/secret");
  for (const char* dst : {"tmp/secret", "secret", "usr/local/lib/python3.11/secret", "home/secret"}) {
    auto [b, bl] = P(dst);
    uint32_t e = ctx->PathRename(mem, 3, a, al, 3, b, bl);
    EXPECT_TRUE(e == err::kXDev || e == err::kRoFs) << dst << " -> " << e;
  }
  EXPECT_EQ(fs->ReadFile("/home/user/secret"), "s");
  ASSERT_EQ(fs->MakeDirs("/home/user/d/e"), vfs::Error::kOk);
  auto [d, dl] = P("home/user/d");
  auto [de, del] = P("home/user/d/e/inside");
  EXPECT_EQ(ctx->PathRename(mem, 3, d, dl, 3, de, del), err::kInval);
}

TEST_F(EscapeTest, BadDescriptors) {
  const uint32_t bad[] = {4, 5, 1023, 1024, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFFE};
  auto [p, pl] = P("tmp/x");
  uint32_t iov = Put(std::string(8, '\0'));
  for (uint32_t fd : bad) {
    SCOPED_TRACE(fd);
    EXPECT_EQ(ctx->FdRead(mem, fd, iov, 1, kOut), err::kBadF);
    EXPECT_EQ(ctx->FdWrite(mem, fd, iov, 1, kOut), err::kBadF);
    EXPECT_EQ(ctx->FdPread(mem, fd, iov, 1, 0, kOut), err::kBadF);
    EXPECT_EQ(ctx->FdPwrite(mem, fd, iov, 1, 0, kOut), err::kBadF);
    EXPECT_EQ(ctx->FdClose(mem, fd), err::kBadF);
    EXPECT_EQ(ctx->FdSeek(mem, fd, 0, 0, kOut), err::kBadF);
    EXPECT_EQ(ctx->FdTell(mem, fd, kOut), err::kBadF);
    EXPECT_EQ(ctx->FdSync(mem, fd), err::kBadF);
    EXPECT_EQ(ctx->FdDatasync(mem, fd), err::kBadF);
    EXPECT_EQ(ctx->FdAdvise(mem, fd, 0, 0, 0), err::kBadF);
    EXPECT_EQ(ctx->FdAllocate(mem, fd, 0, 1), err::kBadF);
    EXPECT_EQ(ctx->FdFdstatGet(mem, fd, kOut), err::kBadF);
    EXPECT_EQ(ctx->FdFdstatSetFlags(mem, fd, 0), err::kBadF);
    EXPECT_EQ(ctx->FdFdstatSetRights(mem, fd, 0, 0), err::kBadF);
    EXPECT_EQ(ctx->FdFilestatGet(mem, fd, kOut), err::kBadF);
    EXPECT_EQ(ctx->FdFilestatSetSize(mem, fd, 0), err::kBadF);
    EXPECT_EQ(ctx->FdFilestatSetTimes(mem, fd, 0, 0, 0), err::kBadF);
    EXPECT_EQ(ctx->FdPrestatGet(mem, fd, kOut), err::kBadF);
    EXPECT_EQ(ctx->FdPrestatDirName(mem, fd, kOut, 1), err::kBadF);
    EXPECT_EQ(ctx->FdReaddir(mem, fd, kOut, 8, 0, kOut + 16), err::kBadF);
    EXPECT_EQ(ctx->FdRenumber(mem, fd, 10), err::kBadF);
    EXPECT_EQ(ctx->FdRenumber(mem, 3, fd), fd < 1024 ? err::kSuccess : err::kBadF);
    if (fd < 1024) {
      ASSERT_EQ(ctx->FdRenumber(mem, fd, 3), err::kSuccess);  // put the preopen back
    }
    EXPECT_EQ(ctx->PathOpen(mem, fd, 0, p, pl, kOflagCreat, kRW, 0, 0, kOut), err::kBadF);
    EXPECT_EQ(ctx->PathCreateDirectory(mem, fd, p, pl), err::kBadF);
    EXPECT_EQ(ctx->PathUnlinkFile(mem, fd, p, pl), err::kBadF);
    EXPECT_EQ(ctx->PathRename(mem, 3, p, pl, fd, p, pl), err::kBadF);
  }
  // stdio and files are not directories for path calls.
  EXPECT_EQ(ctx->PathOpen(mem, 1, 0, p, pl, kOflagCreat, kRW, 0, 0, kOut), err::kNotDir);
  EXPECT_FALSE(fs->ReadFile("/tmp/x"));
  // Sockets are never granted.
  EXPECT_EQ(ctx->SockAccept(mem, 3, 0, kOut), err::kNotSup);
  EXPECT_EQ(ctx->SockRecv(mem, 0, iov, 1, 0, kOut, kOut + 4), err::kNotSup);
  EXPECT_EQ(ctx->SockSend(mem, 1, iov, 1, 0, kOut), err::kNotSup);
  EXPECT_EQ(ctx->SockShutdown(mem, 3, 0), err::kNotSup);
}

TEST_F(EscapeTest, DescriptorExhaustion) {
  uint32_t opened = 0;
  uint32_t e = err::kSuccess;
  while ((e = Open("tmp", kOflagDirectory, rights::kFdReaddir)) == err::kSuccess) ++opened;
  EXPECT_EQ(e, err::kMFile);
  EXPECT_EQ(opened, 1024u - 4);
  EXPECT_EQ(ctx->open_fd_count(), 1024u);
  EXPECT_EQ(ctx->FdClose(mem, 100), err::kSuccess);
  uint32_t fd = 0;
  EXPECT_EQ(Open("tmp", kOflagDirectory, rights::kFdReaddir, &fd), err::kSuccess);
  EXPECT_EQ(fd, 100u);  // the lowest free number is reused
}

TEST_F(EscapeTest, ReaddirOneByteBuffer) {
  uint32_t fd = 0;
  ASSERT_EQ(Open("usr/local/lib/python3.11", kOflagDirectory, rights::kFdReaddir, &fd), err::kSuccess);
  const uint32_t buf = 8000;
  std::memset(&bytes[buf], 0xEE, 64);
  ASSERT_EQ(ctx->FdReaddir(mem, fd, buf, 1, 0, kOut), err::kSuccess);
  uint32_t used;
  std::memcpy(&used, &bytes[kOut], 4);
  EXPECT_EQ(used, 1u);
  EXPECT_EQ(bytes[buf], 1);  // low byte of d_next of "."
  for (int i = 1; i < 64; ++i) ASSERT_EQ(bytes[buf + i], 0xEE) << i;
  ASSERT_EQ(ctx->FdReaddir(mem, fd, buf, 0, 0, kOut), err::kSuccess);
  std::memcpy(&used, &bytes[kOut], 4);
  EXPECT_EQ(used, 0u);
  EXPECT_EQ(ctx->FdReaddir(mem, fd, buf, 64, ~0ull, kOut), err::kSuccess);
}

class QuotaEscapeTest : public EscapeTest {
 protected:
  static vfs::Limits Small() {
    vfs::Limits l;
    l.max_total_bytes = 1 << 16;
    l.max_file_size = 1 << 15;
    return l;
  }
  QuotaEscapeTest() : EscapeTest(Small()) {}
};

TEST_F(QuotaEscapeTest, HugeOffsetsAreRefusedWithoutAllocating) {
  uint32_t fd = 0;
  ASSERT_EQ(Open("tmp/f", kOflagCreat, kRW | rights::kFdSeek, &fd), err::kSuccess);
  EXPECT_EQ(WriteAt(fd, "x", 1ull << 62), err::kFBig);
  EXPECT_EQ(WriteAt(fd, "x", ~0ull), err::kFBig);
  EXPECT_EQ(WriteAt(fd, "x", (1ull << 15)), err::kFBig);
  EXPECT_EQ(ctx->FdFilestatSetSize(mem, fd, 1ull << 62), err::kFBig);
  EXPECT_EQ(ctx->FdAllocate(mem, fd, ~0ull, 2), err::kFBig);
  ASSERT_EQ(ctx->FdSeek(mem, fd, (1ull << 62), kWhenceSet, kOut), err::kSuccess);
  EXPECT_EQ(WriteAt(fd, "x", std::nullopt), err::kFBig);
  EXPECT_EQ(ctx->FdSeek(mem, fd, ~0ull >> 1, kWhenceCur, kOut), err::kOverflow);
  EXPECT_EQ(fs->bytes_used(), 0u);
  EXPECT_EQ(fs->ReadFile("/tmp/f"), "");
}

TEST_F(QuotaEscapeTest, FillingTheQuotaFailsCleanly) {
  std::string chunk(4096, 'q');
  uint32_t e = err::kSuccess;
  int files = 0;
  uint64_t written = 0;
  while (e == err::kSuccess && files < 100) {
    uint32_t fd = 0;
    ASSERT_EQ(Open("home/user/f" + std::to_string(files++), kOflagCreat, kRW, &fd), err::kSuccess);
    for (int i = 0; i < 8; ++i) {
      e = WriteAt(fd, chunk, std::nullopt);
      if (e != err::kSuccess) break;
      written += chunk.size();
    }
    ASSERT_EQ(ctx->FdClose(mem, fd), err::kSuccess);
  }
  EXPECT_EQ(e, err::kNoSpc);
  EXPECT_EQ(written, 1u << 16);
  EXPECT_EQ(fs->bytes_used(), 1u << 16);
  // A sparse pwrite that would need more space fails too, and changes nothing.
  uint32_t fd = 0;
  ASSERT_EQ(Open("tmp/sparse", kOflagCreat, kRW, &fd), err::kSuccess);
  EXPECT_EQ(WriteAt(fd, "x", 1000), err::kNoSpc);
  EXPECT_EQ(fs->ReadFile("/tmp/sparse"), "");
  // Freeing space through the guest makes room again.
  auto [p, pl] = P("home/user/f0");
  ASSERT_EQ(ctx->PathUnlinkFile(mem, 3, p, pl), err::kSuccess);
  EXPECT_EQ(WriteAt(fd, "x", 1000), err::kSuccess);
}

TEST_F(QuotaEscapeTest, UnlinkedOpenFilesStillCount) {
  uint32_t fd = 0;
  ASSERT_EQ(Open("tmp/a", kOflagCreat, kRW, &fd), err::kSuccess);
  auto [p, pl] = P("tmp/a");
  ASSERT_EQ(ctx->PathUnlinkFile(mem, 3, p, pl), err::kSuccess);
  std::string chunk(1 << 14, 'z');
  EXPECT_EQ(WriteAt(fd, chunk, std::nullopt), err::kSuccess);
  EXPECT_EQ(WriteAt(fd, chunk, std::nullopt), err::kSuccess);
  EXPECT_EQ(WriteAt(fd, chunk, std::nullopt), err::kFBig);  // single-file limit
  uint32_t fd2 = 0;
  ASSERT_EQ(Open("tmp/b", kOflagCreat, kRW, &fd2), err::kSuccess);
  ASSERT_EQ(ctx->PathUnlinkFile(mem, 3, P("tmp/b").first, 5), err::kSuccess);
  EXPECT_EQ(WriteAt(fd2, chunk, std::nullopt), err::kSuccess);
  EXPECT_EQ(WriteAt(fd2, chunk, std::nullopt), err::kSuccess);
  uint32_t fd3 = 0;
  ASSERT_EQ(Open("tmp/c", kOflagCreat, kRW, &fd3), err::kSuccess);
  EXPECT_EQ(WriteAt(fd3, "x", std::nullopt), err::kNoSpc);  // both unlinked files still charged
  EXPECT_EQ(fs->bytes_used(), 1u << 16);
  EXPECT_EQ(ctx->FdClose(mem, fd), err::kSuccess);  // last reference: its bytes come back
  EXPECT_EQ(fs->bytes_used(), 1u << 15);
  EXPECT_EQ(WriteAt(fd3, "x", std::nullopt), err::kSuccess);
}

}  // namespace
}  // namespace brig::wasi
