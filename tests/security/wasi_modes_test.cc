// Think like an attacker: brig's own host calls for file modes (brig_create_mode,
// brig_fd_chmod, brig_path_chmod) with every guest value hostile: pointers at and past the end
// of memory, wrapping around 2^32, huge lengths, modes with bits above 07777, descriptors that
// are not open, stdio, read-only parts. Each bad call fails with its errno and changes nothing
// (the mode stays as it was, no host byte past guest memory is touched); each is run with good
// arguments too, so a call that always failed would not pass. Then the permission rules the
// modes give the guest (the owner, not root), as Linux applies them.
#include <gtest/gtest.h>

#include <cstring>
#include <string_view>
#include <vector>

#include "vfs/file_system.h"
#include "wasi/wasi_context.h"

#include "brig_imports_glue.h"

namespace brig::wasi {
namespace {

constexpr uint32_t kMemSize = 64 * 1024;
constexpr uint32_t kCanary = 4096;
constexpr uint64_t kRw = rights::kFdRead | rights::kFdWrite | rights::kFdSeek;

class ModesTest : public ::testing::Test {
 protected:
  ModesTest() : backing(kMemSize + kCanary, 0), mem(backing.data(), kMemSize) {
    std::memset(backing.data() + kMemSize, 0xA5, kCanary);
    EXPECT_EQ(fs.WriteFile("/tmp/f", "contents"), vfs::Error::kOk);
    EXPECT_EQ(fs.MakeDirs("/tmp/d"), vfs::Error::kOk);
    WasiContext::Options o;
    o.sleep = [](uint64_t) {};
    ctx = std::make_unique<WasiContext>(fs, o);
    out = Alloc(64);
    file_fd = Open("tmp/f", 0, kRw);
  }
  void TearDown() override {
    for (uint32_t i = 0; i < kCanary; ++i) ASSERT_EQ(backing[kMemSize + i], 0xA5) << "host byte " << i << " hit";
  }
  uint32_t Alloc(uint32_t n) {
    uint32_t p = next;
    next += (n + 15) & ~15u;
    return p;
  }
  uint32_t Put(std::string_view s) {
    uint32_t p = Alloc(static_cast<uint32_t>(s.size()));
    std::memcpy(&backing[p], s.data(), s.size());
    return p;
  }
  uint32_t OpenErr(std::string_view path, uint32_t oflags, uint64_t rights_base, uint32_t* fd = nullptr) {
    uint32_t p = Put(path);
    uint32_t e = ctx->PathOpen(mem, 3, 0, p, static_cast<uint32_t>(path.size()), oflags, rights_base, 0, 0, out);
    if (e == err::kSuccess && fd) std::memcpy(fd, &backing[out], 4);
    return e;
  }
  uint32_t Open(std::string_view path, uint32_t oflags, uint64_t rights_base) {
    uint32_t fd = 0;
    EXPECT_EQ(OpenErr(path, oflags, rights_base, &fd), err::kSuccess) << path;
    return fd;
  }
  uint32_t Chmod(std::string_view path, uint32_t mode) {
    uint32_t p = Put(path);
    return ctx->BrigPathChmod(mem, 3, p, static_cast<uint32_t>(path.size()), mode);
  }
  // The mode the guest's stat would see (the filestat's padding), or -1 without the flag.
  int ModeSeen(std::string_view path) {
    uint32_t p = Put(path);
    EXPECT_EQ(ctx->PathFilestatGet(mem, 3, 0, p, static_cast<uint32_t>(path.size()), out), err::kSuccess);
    Filestat s;
    std::memcpy(&s, &backing[out], sizeof s);
    const uint16_t v = static_cast<uint16_t>(s.pad[1] | s.pad[2] << 8);
    return (v & kFilestatModeFlag) ? (v & 07777) : -1;
  }
  uint32_t Mode(std::string_view path) { return fs.StatPath(path).value().mode; }

  vfs::FileSystem fs;
  std::vector<uint8_t> backing;
  GuestMemory mem;
  std::unique_ptr<WasiContext> ctx;
  uint32_t next = 16;
  uint32_t out = 0;
  uint32_t file_fd = 0;
};

TEST_F(ModesTest, DefaultModesAreReportedInTheFilestat) {
  EXPECT_EQ(ModeSeen("tmp/f"), 0644);
  EXPECT_EQ(ModeSeen("tmp/d"), 0755);
  EXPECT_EQ(ModeSeen("tmp"), 01777);
  EXPECT_EQ(ModeSeen("home/user"), 0755);
  EXPECT_EQ(ModeSeen("usr"), 0755);
}

TEST_F(ModesTest, PathChmodSetsTheModeAndRefusesBadModes) {
  EXPECT_EQ(Chmod("tmp/f", 0600), err::kSuccess);
  EXPECT_EQ(Mode("/tmp/f"), 0600u);
  EXPECT_EQ(ModeSeen("tmp/f"), 0600);
  EXPECT_EQ(Chmod("tmp/d", 07555), err::kSuccess);
  EXPECT_EQ(Mode("/tmp/d"), 07555u);
  for (uint32_t bad : {010000u, 0170644u, 0x80000000u, 0xffffffffu}) {
    EXPECT_EQ(Chmod("tmp/f", bad), err::kInval) << bad;
    EXPECT_EQ(Mode("/tmp/f"), 0600u) << bad;
  }
}

TEST_F(ModesTest, PathChmodPointersAndLengthsOutsideMemoryFault) {
  const uint32_t good = Put("tmp/f");
  ASSERT_EQ(ctx->BrigPathChmod(mem, 3, good, 5, 0600), err::kSuccess);
  struct Bad {
    uint32_t ptr, len;
  };
  for (Bad b : {Bad{kMemSize, 1}, Bad{kMemSize - 2, 5}, Bad{0xfffffffe, 5}, Bad{0xffffffff, 0xffffffff},
                Bad{good, 0xffffffff}, Bad{good, kMemSize}}) {
    uint32_t e = ctx->BrigPathChmod(mem, 3, b.ptr, b.len, 0400);
    EXPECT_TRUE(e == err::kFault || e == err::kNameTooLong) << b.ptr << " " << b.len << " " << e;
    EXPECT_EQ(Mode("/tmp/f"), 0600u);
  }
}

TEST_F(ModesTest, PathChmodErrors) {
  const uint32_t p = Put("tmp/f");
  for (uint32_t fd : {99u, 1024u, 0xffffffffu}) EXPECT_EQ(ctx->BrigPathChmod(mem, fd, p, 5, 0600), err::kBadF) << fd;
  for (uint32_t fd : {0u, 1u, 2u, file_fd}) {
    EXPECT_EQ(ctx->BrigPathChmod(mem, fd, p, 5, 0600), err::kNotDir) << fd;  // not directories
  }
  EXPECT_EQ(Chmod("tmp/missing", 0600), err::kNoEnt);
  EXPECT_EQ(Chmod("", 0600), err::kNoEnt);
  EXPECT_EQ(Chmod("usr", 0700), err::kRoFs);
  EXPECT_EQ(Chmod(".", 0700), err::kRoFs);  // the preopen "/" itself
  EXPECT_EQ(Chmod(std::string("tmp/f\0x", 7), 0600), err::kInval);
  EXPECT_EQ(Mode("/tmp/f"), 0644u);
}

TEST_F(ModesTest, FdChmod) {
  EXPECT_EQ(ctx->BrigFdChmod(mem, file_fd, 0640), err::kSuccess);
  EXPECT_EQ(Mode("/tmp/f"), 0640u);
  EXPECT_EQ(ctx->BrigFdChmod(mem, file_fd, 010640), err::kInval);
  EXPECT_EQ(ctx->BrigFdChmod(mem, file_fd, 0xffffffff), err::kInval);
  EXPECT_EQ(Mode("/tmp/f"), 0640u);
  for (uint32_t fd : {99u, 1024u, 0xffffffffu}) EXPECT_EQ(ctx->BrigFdChmod(mem, fd, 0600), err::kBadF) << fd;
  for (uint32_t fd : {0u, 1u, 2u}) EXPECT_EQ(ctx->BrigFdChmod(mem, fd, 0600), err::kPerm) << fd;
  EXPECT_EQ(ctx->BrigFdChmod(mem, 3, 0700), err::kRoFs);
  // A file removed while open keeps its descriptor and takes a mode.
  EXPECT_EQ(fs.Remove("/tmp/f"), vfs::Error::kOk);
  EXPECT_EQ(ctx->BrigFdChmod(mem, file_fd, 0400), err::kSuccess);
}

TEST_F(ModesTest, CreateModeAppliesToTheNextCreateOnly) {
  for (uint32_t bad : {010000u, 0x7fffffffu, 0xfffffffeu}) EXPECT_EQ(ctx->BrigCreateMode(mem, bad), err::kInval);
  ASSERT_EQ(ctx->BrigCreateMode(mem, 0600), err::kSuccess);
  Open("tmp/new1", kOflagCreat, kRw);
  EXPECT_EQ(Mode("/tmp/new1"), 0600u);
  Open("tmp/new2", kOflagCreat, kRw);  // used up: the default
  EXPECT_EQ(Mode("/tmp/new2"), 0644u);
  ASSERT_EQ(ctx->BrigCreateMode(mem, 0700), err::kSuccess);
  const uint32_t p = Put("tmp/sub");
  ASSERT_EQ(ctx->PathCreateDirectory(mem, 3, p, 7), err::kSuccess);
  EXPECT_EQ(Mode("/tmp/sub"), 0700u);
  ASSERT_EQ(ctx->PathCreateDirectory(mem, 3, Put("tmp/sub2"), 8), err::kSuccess);
  EXPECT_EQ(Mode("/tmp/sub2"), 0755u);
  // Opening an existing file uses it up and leaves that file's mode alone.
  ASSERT_EQ(ctx->BrigCreateMode(mem, 0), err::kSuccess);
  Open("tmp/new1", kOflagCreat, kRw);
  EXPECT_EQ(Mode("/tmp/new1"), 0600u);
  Open("tmp/new3", kOflagCreat, kRw);
  EXPECT_EQ(Mode("/tmp/new3"), 0644u);
  // 0xffffffff: back to the defaults.
  ASSERT_EQ(ctx->BrigCreateMode(mem, 0400), err::kSuccess);
  ASSERT_EQ(ctx->BrigCreateMode(mem, 0xffffffff), err::kSuccess);
  Open("tmp/new4", kOflagCreat, kRw);
  EXPECT_EQ(Mode("/tmp/new4"), 0644u);
}

TEST_F(ModesTest, ANewFileIsOpenAsAskedWhateverItsMode) {
  ASSERT_EQ(ctx->BrigCreateMode(mem, 0444), err::kSuccess);
  Open("tmp/ro", kOflagCreat | kOflagExcl, kRw);  // as open(O_CREAT|O_RDWR, 0444) on Linux
  EXPECT_EQ(Mode("/tmp/ro"), 0444u);
  EXPECT_EQ(OpenErr("tmp/ro", 0, kRw), err::kAcces);  // but not again
}

TEST_F(ModesTest, TheOwnerBitsAreEnforcedAsForANonRootUser) {
  ASSERT_EQ(Chmod("tmp/f", 0444), err::kSuccess);
  EXPECT_EQ(OpenErr("tmp/f", 0, rights::kFdRead), err::kSuccess);
  EXPECT_EQ(OpenErr("tmp/f", 0, rights::kFdWrite), err::kAcces);
  EXPECT_EQ(OpenErr("tmp/f", kOflagTrunc, rights::kFdRead), err::kAcces);
  EXPECT_EQ(fs.ReadFile("/tmp/f"), "contents");
  ASSERT_EQ(Chmod("tmp/f", 0200), err::kSuccess);
  EXPECT_EQ(OpenErr("tmp/f", 0, rights::kFdRead), err::kAcces);
  EXPECT_EQ(OpenErr("tmp/f", 0, rights::kFdWrite), err::kSuccess);
  // A read-only directory: no entry may be added, removed or renamed in it.
  ASSERT_EQ(fs.WriteFile("/tmp/d/inside", "x"), vfs::Error::kOk);
  ASSERT_EQ(Chmod("tmp/d", 0555), err::kSuccess);
  EXPECT_EQ(OpenErr("tmp/d/new", kOflagCreat, kRw), err::kAcces);
  EXPECT_EQ(ctx->PathCreateDirectory(mem, 3, Put("tmp/d/sub"), 9), err::kAcces);
  EXPECT_EQ(ctx->PathUnlinkFile(mem, 3, Put("tmp/d/inside"), 12), err::kAcces);
  EXPECT_EQ(ctx->PathRename(mem, 3, Put("tmp/d/inside"), 12, 3, Put("tmp/out"), 7), err::kAcces);
  EXPECT_EQ(ctx->PathRename(mem, 3, Put("tmp/f"), 5, 3, Put("tmp/d/f"), 7), err::kAcces);
  EXPECT_EQ(fs.StatPath("/tmp/d/inside").ok(), true);
  // The read-only directory itself can still be removed from its writable parent once empty,
  // and the file in it written (its own mode allows it).
  EXPECT_EQ(OpenErr("tmp/d/inside", 0, kRw), err::kSuccess);
  // The host (brig files put) is not the guest: modes do not stop it.
  EXPECT_EQ(fs.WriteFile("/tmp/d/host", "h"), vfs::Error::kOk);
  EXPECT_EQ(fs.Remove("/tmp/d/host"), vfs::Error::kOk);
  ASSERT_EQ(Chmod("tmp/d", 0755), err::kSuccess);
  EXPECT_EQ(ctx->PathUnlinkFile(mem, 3, Put("tmp/d/inside"), 12), err::kSuccess);
}

TEST_F(ModesTest, ModesAreCopiedWithTheFileSystem) {
  ASSERT_EQ(Chmod("tmp/f", 0600), err::kSuccess);
  ASSERT_EQ(Chmod("tmp/d", 0700), err::kSuccess);
  ASSERT_EQ(Chmod("tmp", 0777), err::kSuccess);
  vfs::FileSystem::NodeMap map;
  auto copy = fs.Clone(&map);
  EXPECT_EQ(copy->StatPath("/tmp/f").value().mode, 0600u);
  EXPECT_EQ(copy->StatPath("/tmp/d").value().mode, 0700u);
  EXPECT_EQ(copy->StatPath("/tmp").value().mode, 0777u);
}

TEST_F(ModesTest, TheGuestsImportsReachTheContext) {
  wasm_rt_memory_t memory{backing.data(), 1, 1, kMemSize};
  Z_wasi_snapshot_preview1_instance_t inst{ctx.get(), &memory};
  const uint32_t p = Put("tmp/f");
  EXPECT_EQ(Z_wasi_snapshot_preview1Z_brig_path_chmod(&inst, 3, p, 5, 0604), err::kSuccess);
  EXPECT_EQ(Mode("/tmp/f"), 0604u);
  EXPECT_EQ(Z_wasi_snapshot_preview1Z_brig_path_chmod(&inst, 3, kMemSize - 1, 5, 0600), err::kFault);
  EXPECT_EQ(Z_wasi_snapshot_preview1Z_brig_fd_chmod(&inst, file_fd, 0660), err::kSuccess);
  EXPECT_EQ(Mode("/tmp/f"), 0660u);
  EXPECT_EQ(Z_wasi_snapshot_preview1Z_brig_fd_chmod(&inst, file_fd, 0x10000), err::kInval);
  EXPECT_EQ(Z_wasi_snapshot_preview1Z_brig_create_mode(&inst, 0x10000), err::kInval);
  EXPECT_EQ(Z_wasi_snapshot_preview1Z_brig_create_mode(&inst, 0640), err::kSuccess);
  Open("tmp/g", kOflagCreat, kRw);
  EXPECT_EQ(Mode("/tmp/g"), 0640u);
  EXPECT_EQ(g_host_depth, 0);
}

}  // namespace
}  // namespace brig::wasi
