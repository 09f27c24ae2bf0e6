// Think like an attacker: brig's statvfs host calls (brig_fd_statvfs, brig_path_statvfs) with
// every guest value hostile: output pointers at and past the end of memory and wrapping
// around 2^32, path pointers and lengths outside memory, descriptors that are not open or
// not directories. Each bad call fails with its errno and writes nothing (no host byte past
// guest memory is touched, the output stays as it was); each is run with good arguments
// too, so a call that always failed would not pass. And the figures say nothing of the
// host: the session's quotas only.
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
constexpr uint32_t kOut = 1024;  // where a good call writes its 88 bytes
enum { kBsize, kFrsize, kBlocks, kBfree, kBavail, kFiles, kFfree, kFavail, kFsid, kFlag, kNamemax };

class StatvfsTest : public ::testing::Test {
 protected:
  StatvfsTest() : fs(Limits()), backing(kMemSize + kCanary, 0), mem(backing.data(), kMemSize) {
    std::memset(backing.data() + kMemSize, 0xA5, kCanary);
    EXPECT_EQ(fs.WriteFile("/tmp/f", std::string(10000, 'x')), vfs::Error::kOk);
    WasiContext::Options o;
    o.sleep = [](uint64_t) {};
    ctx = std::make_unique<WasiContext>(fs, o);
    std::memcpy(&backing[512], "tmp/f", 5);
    uint32_t e = ctx->PathOpen(mem, 3, 0, 512, 5, 0, rights::kFdRead, 0, 0, 600);
    EXPECT_EQ(e, err::kSuccess);
    std::memcpy(&file_fd, &backing[600], 4);
  }
  static vfs::FileSystem::Options Limits() {
    vfs::FileSystem::Options o;
    o.limits.max_total_bytes = 1 << 20;
    o.limits.SetFileLimit(50);
    return o;
  }
  void TearDown() override {
    for (uint32_t i = 0; i < kCanary; ++i) ASSERT_EQ(backing[kMemSize + i], 0xA5) << "host byte " << i << " hit";
  }
  uint64_t Field(int i) {
    uint64_t v;
    std::memcpy(&v, &backing[kOut + 8 * i], 8);
    return v;
  }
  uint32_t PathStatvfs(std::string_view path, uint32_t out = kOut) {
    std::memcpy(&backing[256], path.data(), path.size());
    return ctx->BrigPathStatvfs(mem, 3, 256, static_cast<uint32_t>(path.size()), out);
  }

  vfs::FileSystem fs;
  std::vector<uint8_t> backing;
  GuestMemory mem;
  std::unique_ptr<WasiContext> ctx;
  uint32_t file_fd = 0;
};

TEST_F(StatvfsTest, WritableTreesAnswerFromTheQuotas) {
  ASSERT_EQ(ctx->BrigFdStatvfs(mem, file_fd, kOut), err::kSuccess);
  EXPECT_EQ(Field(kBsize), 4096u);
  EXPECT_EQ(Field(kFrsize), 4096u);
  EXPECT_EQ(Field(kBlocks), 256u);                        // 1 MiB
  EXPECT_EQ(Field(kBfree), (uint64_t{1 << 20} - 10000) / 4096);  // 10,000 bytes used
  EXPECT_EQ(Field(kBavail), Field(kBfree));
  EXPECT_EQ(Field(kFiles), 50u);
  EXPECT_EQ(Field(kFfree), 49u);
  EXPECT_EQ(Field(kFlag), 0u);
  EXPECT_EQ(Field(kNamemax), 255u);
  std::vector<uint8_t> by_fd(&backing[kOut], &backing[kOut + 88]);
  ASSERT_EQ(PathStatvfs("tmp/f"), err::kSuccess);
  EXPECT_EQ(std::vector<uint8_t>(&backing[kOut], &backing[kOut + 88]), by_fd);
  ASSERT_EQ(PathStatvfs("home/user"), err::kSuccess);
  EXPECT_EQ(Field(kBlocks), 256u);
  EXPECT_EQ(Field(kFlag), 0u);
}

TEST_F(StatvfsTest, ReadOnlyPartsAndStdioSayNothingOfTheHost) {
  ASSERT_EQ(PathStatvfs("usr"), err::kSuccess);
  EXPECT_EQ(Field(kFlag), 1u);  // ST_RDONLY
  EXPECT_EQ(Field(kBlocks), 0u);
  EXPECT_EQ(Field(kFiles), 0u);
  for (uint32_t fd : {0u, 1u, 2u}) {
    ASSERT_EQ(ctx->BrigFdStatvfs(mem, fd, kOut), err::kSuccess) << fd;
    EXPECT_EQ(Field(kBlocks), 0u);
    EXPECT_EQ(Field(kFiles), 0u);
  }
}

TEST_F(StatvfsTest, OutputOutsideMemoryFaultsAndWritesNothing) {
  for (uint32_t out : {kMemSize, kMemSize - 87, kMemSize - 8, 0xfffffff8u, 0xffffffffu}) {
    EXPECT_EQ(ctx->BrigFdStatvfs(mem, file_fd, out), err::kFault) << out;
    EXPECT_EQ(PathStatvfs("tmp/f", out), err::kFault) << out;
  }
  // The last byte in memory is fine.
  EXPECT_EQ(ctx->BrigFdStatvfs(mem, file_fd, kMemSize - 88), err::kSuccess);
  for (uint32_t i = kMemSize - 88; i < kMemSize; ++i) backing[i] = 0;
}

TEST_F(StatvfsTest, BadDescriptorsPathsAndPointers) {
  std::memset(&backing[kOut], 0x5A, 88);
  for (uint32_t fd : {5u, 99u, 1024u, 0xffffffffu}) {
    EXPECT_EQ(ctx->BrigFdStatvfs(mem, fd, kOut), err::kBadF) << fd;
    EXPECT_EQ(ctx->BrigPathStatvfs(mem, fd, 256, 1, kOut), err::kBadF) << fd;
  }
  EXPECT_EQ(ctx->BrigPathStatvfs(mem, file_fd, 256, 1, kOut), err::kNotDir);
  EXPECT_EQ(PathStatvfs("tmp/missing"), err::kNoEnt);
  EXPECT_EQ(PathStatvfs(""), err::kNoEnt);
  for (auto [ptr, len] : {std::pair<uint32_t, uint32_t>{kMemSize, 1}, {kMemSize - 2, 5}, {0xfffffffeu, 5},
                          {256, 0xffffffffu}, {256, kMemSize}}) {
    uint32_t e = ctx->BrigPathStatvfs(mem, 3, ptr, len, kOut);
    EXPECT_TRUE(e == err::kFault || e == err::kNameTooLong) << ptr << " " << len << " " << e;
  }
  for (int i = 0; i < 88; ++i) EXPECT_EQ(backing[kOut + i], 0x5A) << "byte " << i << " written by a failed call";
}

}  // namespace
}  // namespace brig::wasi
