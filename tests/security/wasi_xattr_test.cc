// Think like an attacker: brig's extended-attribute and named-pipe host calls (brig_xattr,
// brig_path_mkfifo) with every guest value hostile: name, value, list and size pointers at and
// past the end of memory and wrapping around 2^32, lengths far past the limits, unknown
// operations and flags, descriptors that are not open or have no node, names outside the kept
// namespaces. Each bad call fails with its errno and changes nothing (no host byte past guest
// memory is touched, no attribute is set, the quota is as it was); the same calls with good
// arguments succeed, so a call that always failed would not pass. And the attributes are
// bounded: a value of 64 KiB at most, 64 KiB per node, and they count against the byte quota.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "vfs/file_system.h"
#include "wasi/wasi_context.h"

#include "brig_imports_glue.h"

namespace brig::wasi {
namespace {

constexpr uint32_t kMemSize = 256 * 1024;
constexpr uint32_t kCanary = 4096;
constexpr uint32_t kPath = 256;    // a path the test writes
constexpr uint32_t kName = 512;    // an attribute name
constexpr uint32_t kSize = 1000;   // where the size (u32) goes
constexpr uint32_t kBuf = 4096;    // values and lists, up to 128 KiB
using W = WasiContext;

class XattrTest : public ::testing::Test {
 protected:
  XattrTest() : fs(Limits()), backing(kMemSize + kCanary, 0), mem(backing.data(), kMemSize) {
    std::memset(backing.data() + kMemSize, 0xA5, kCanary);
    EXPECT_EQ(fs.WriteFile("/tmp/f", "contents"), vfs::Error::kOk);
    WasiContext::Options o;
    o.sleep = [](uint64_t) {};
    ctx = std::make_unique<WasiContext>(fs, o);
    file_fd = Open("tmp/f", rights::kFdRead);
  }
  static vfs::FileSystem::Options Limits() {
    vfs::FileSystem::Options o;
    o.limits.max_total_bytes = 200 * 1024;
    return o;
  }
  void TearDown() override {
    for (uint32_t i = 0; i < kCanary; ++i) ASSERT_EQ(backing[kMemSize + i], 0xA5) << "host byte " << i << " hit";
  }
  uint32_t Open(std::string_view path, uint64_t rights, uint32_t* error = nullptr) {
    std::memcpy(&backing[kPath], path.data(), path.size());
    uint32_t e = ctx->PathOpen(mem, 3, 0, kPath, static_cast<uint32_t>(path.size()), 0, rights, 0, 0, 600);
    if (error) *error = e;
    else EXPECT_EQ(e, err::kSuccess) << path;
    uint32_t fd = 0;
    std::memcpy(&fd, &backing[600], 4);
    return e == err::kSuccess ? fd : UINT32_MAX;
  }
  // One brig_xattr call on path "tmp/f" (or on `fd` with kXattrOnFd in op).
  uint32_t Call(uint32_t op, std::string_view name, uint32_t buf, uint32_t buf_len, uint32_t flags = 0,
                uint32_t size_out = kSize, uint32_t fd = 3, std::string_view path = "tmp/f") {
    std::memcpy(&backing[kPath], path.data(), path.size());
    std::memcpy(&backing[kName], name.data(), name.size());
    return ctx->BrigXattr(mem, op, fd, kPath, static_cast<uint32_t>(path.size()), kName,
                          static_cast<uint32_t>(name.size()), buf, buf_len, flags, size_out);
  }
  uint32_t Set(std::string_view name, std::string_view value, uint32_t flags = 0) {
    std::memcpy(&backing[kBuf], value.data(), value.size());
    return Call(W::kXattrSet, name, kBuf, static_cast<uint32_t>(value.size()), flags);
  }
  uint32_t Size() {
    uint32_t v;
    std::memcpy(&v, &backing[kSize], 4);
    return v;
  }
  std::string Bytes(uint32_t at, uint32_t n) { return std::string(reinterpret_cast<const char*>(&backing[at]), n); }
  const vfs::Node& File() { return *fs.Lookup(fs.root(), "/tmp/f").value(); }

  vfs::FileSystem fs;
  std::vector<uint8_t> backing;
  GuestMemory mem;
  std::unique_ptr<WasiContext> ctx;
  uint32_t file_fd = 0;
};

TEST_F(XattrTest, GoodCallsWorkAsOnLinux) {
  EXPECT_EQ(Call(W::kXattrGet, "user.a", kBuf, 100), err::kNoData);
  ASSERT_EQ(Set("user.a", "hello"), err::kSuccess);
  ASSERT_EQ(Set("trusted.b", ""), err::kSuccess);
  ASSERT_EQ(Call(W::kXattrGet, "user.a", kBuf, 0), err::kSuccess);  // the size only
  EXPECT_EQ(Size(), 5u);
  ASSERT_EQ(Call(W::kXattrGet | W::kXattrOnFd, "user.a", kBuf, 100, 0, kSize, file_fd), err::kSuccess);
  EXPECT_EQ(Bytes(kBuf, 5), "hello");
  ASSERT_EQ(Call(W::kXattrList, "", kBuf, 100), err::kSuccess);
  EXPECT_EQ(Bytes(kBuf, Size()), std::string("trusted.b\0user.a\0", 17));
  EXPECT_EQ(Set("user.a", "x", W::kXattrCreate), err::kExist);
  EXPECT_EQ(Set("user.c", "x", W::kXattrReplace), err::kNoData);
  EXPECT_EQ(Set("user.a", "x", W::kXattrCreate | W::kXattrReplace), err::kExist);
  EXPECT_EQ(Set("user.c", "x", W::kXattrCreate | W::kXattrReplace), err::kNoData);
  EXPECT_EQ(Set("user.a", "bye", W::kXattrReplace), err::kSuccess);
  EXPECT_EQ(Call(W::kXattrRemove, "user.a", 0, 0), err::kSuccess);
  EXPECT_EQ(Call(W::kXattrRemove, "user.a", 0, 0), err::kNoData);
  EXPECT_EQ(fs.bytes_used(), 8u + 9u);  // the file's bytes and "trusted.b"
}

TEST_F(XattrTest, PointersOutsideMemoryFaultAndChangeNothing) {
  ASSERT_EQ(Set("user.a", "hello"), err::kSuccess);
  const uint64_t used = fs.bytes_used();
  for (uint32_t bad : {kMemSize, kMemSize - 3, UINT32_MAX, UINT32_MAX - 2}) {
    // The size out of bounds: nothing done.
    EXPECT_EQ(Call(W::kXattrGet, "user.a", kBuf, 100, 0, bad), err::kFault);
    EXPECT_EQ(Call(W::kXattrSet, "user.b", kBuf, 5, 0, bad), err::kFault);
    // The value or list buffer out of bounds.
    EXPECT_EQ(Call(W::kXattrGet, "user.a", bad, 100), err::kFault);
    EXPECT_EQ(Call(W::kXattrSet, "user.b", bad, 5), err::kFault);
    EXPECT_EQ(Call(W::kXattrList, "", bad, 100), err::kFault);
    EXPECT_EQ(Call(W::kXattrGet, "user.a", kBuf, UINT32_MAX), err::kFault);
    // The name out of bounds.
    EXPECT_EQ(ctx->BrigXattr(mem, W::kXattrSet, 3, kPath, 5, bad, 6, kBuf, 1, 0, kSize), err::kFault);
    // The path out of bounds.
    EXPECT_EQ(ctx->BrigXattr(mem, W::kXattrSet, 3, bad, 5, kName, 6, kBuf, 1, 0, kSize), err::kFault);
  }
  EXPECT_EQ(File().xattrs.values.size(), 1u);
  EXPECT_EQ(fs.bytes_used(), used);
}

TEST_F(XattrTest, BadOperationsFlagsAndDescriptors) {
  EXPECT_EQ(Call(4, "user.a", kBuf, 1), err::kInval);
  EXPECT_EQ(Call(W::kXattrSet, "user.a", kBuf, 1, 4), err::kInval);
  EXPECT_EQ(Call(W::kXattrGet | W::kXattrOnFd, "user.a", kBuf, 1, 0, kSize, 99), err::kBadF);
  EXPECT_EQ(Call(W::kXattrSet | W::kXattrOnFd, "user.a", kBuf, 1, 0, kSize, 1), err::kNotSup);  // stdout
  EXPECT_EQ(Call(W::kXattrGet, "user.a", kBuf, 1, 0, kSize, 3, "tmp/missing"), err::kNoEnt);
  EXPECT_TRUE(File().xattrs.values.empty());
}

TEST_F(XattrTest, NamesOutsideTheKeptNamespacesAreRefused) {
  EXPECT_EQ(Set("security.selinux", "x"), err::kNotSup);
  EXPECT_EQ(Set("system.posix_acl_access", "x"), err::kNotSup);
  EXPECT_EQ(Set("other.x", "x"), err::kNotSup);
  EXPECT_EQ(Set("user.", "x"), err::kInval);
  EXPECT_EQ(Set("", "x"), err::kRange);
  EXPECT_EQ(Set(std::string("user.a\0b", 8), "x"), err::kRange);
  EXPECT_EQ(Set("user." + std::string(251, 'n'), "x"), err::kRange);  // 256 bytes
  EXPECT_EQ(Set("user." + std::string(250, 'n'), "x"), err::kSuccess);  // 255
  // A name length past the limit is refused before the name is read.
  EXPECT_EQ(ctx->BrigXattr(mem, W::kXattrGet, 3, kPath, 5, kName, UINT32_MAX, kBuf, 1, 0, kSize), err::kRange);
  EXPECT_EQ(File().xattrs.values.size(), 1u);
}

TEST_F(XattrTest, ValuesAndNodesAreBounded) {
  const std::string big(64 * 1024, 'v');
  EXPECT_EQ(Call(W::kXattrSet, "user.big", kBuf, 64 * 1024 + 1), err::k2Big);
  EXPECT_EQ(Call(W::kXattrSet, "user.big", kBuf, UINT32_MAX), err::kFault);  // not in memory
  EXPECT_EQ(Set("user.a", std::string(60 * 1024, 'v')), err::kSuccess);
  // 64 KiB of names and values per node.
  EXPECT_EQ(Set("user.b", std::string(5 * 1024, 'v')), err::kNoSpc);
  EXPECT_EQ(Set("user.b", std::string(4 * 1024 - 20, 'v')), err::kSuccess);
  // A value too large for the buffer: ERANGE, nothing written.
  std::memset(&backing[kBuf], 0, 16);
  EXPECT_EQ(Call(W::kXattrGet, "user.b", kBuf, 16), err::kRange);
  EXPECT_EQ(Bytes(kBuf, 16), std::string(16, '\0'));
  EXPECT_EQ(Call(W::kXattrList, "", kBuf, 6), err::kRange);
  EXPECT_EQ(fs.bytes_used(), 8u + File().xattrs.bytes);
}

TEST_F(XattrTest, AttributesCountAgainstTheByteQuota) {
  // 200 KiB quota: three files with 60 KiB of attributes each fill it.
  for (const char* f : {"/tmp/g", "/tmp/h", "/tmp/i"}) ASSERT_EQ(fs.WriteFile(f, ""), vfs::Error::kOk);
  const std::string value(60 * 1024, 'q');
  EXPECT_EQ(fs.SetXattrAt("/tmp/g", "user.q", value), vfs::Error::kOk);
  EXPECT_EQ(fs.SetXattrAt("/tmp/h", "user.q", value), vfs::Error::kOk);
  EXPECT_EQ(fs.SetXattrAt("/tmp/i", "user.q", value), vfs::Error::kOk);
  EXPECT_EQ(Set("user.q", std::string(30 * 1024, 'q')), err::kNoSpc);
  EXPECT_TRUE(File().xattrs.values.empty());
  const uint64_t full = fs.bytes_used();
  // Removing the file gives its attributes' bytes back.
  ASSERT_EQ(fs.Remove("/tmp/g"), vfs::Error::kOk);
  EXPECT_EQ(fs.bytes_used(), full - 6 - 60 * 1024);
}

TEST_F(XattrTest, ModesAndKindsAreChecked) {
  ASSERT_EQ(fs.SetMode(fs.Lookup(fs.root(), "/tmp/f").value(), 0400), vfs::Error::kOk);
  EXPECT_EQ(Set("user.a", "x"), err::kAcces);   // no write bit
  EXPECT_EQ(Set("trusted.a", "x"), err::kSuccess);  // not a user attribute
  ASSERT_EQ(fs.SetMode(fs.Lookup(fs.root(), "/tmp/f").value(), 0200), vfs::Error::kOk);
  EXPECT_EQ(Set("user.a", "x"), err::kSuccess);
  EXPECT_EQ(Call(W::kXattrGet, "user.a", kBuf, 10), err::kAcces);  // no read bit
  // Read-only nodes: nothing to read, nothing may be set.
  EXPECT_EQ(Call(W::kXattrSet, "user.a", kBuf, 1, 0, kSize, 3, "usr"), err::kRoFs);
  EXPECT_EQ(Call(W::kXattrGet, "user.a", kBuf, 1, 0, kSize, 3, "usr"), err::kNoData);
  // /dev/null holds no user attributes (Linux: EPERM to set, ENODATA to read).
  EXPECT_EQ(Call(W::kXattrGet, "user.a", kBuf, 1, 0, kSize, 3, "dev/null"), err::kNoData);
}

TEST_F(XattrTest, NamedPipes) {
  std::memcpy(&backing[kPath], "tmp/p", 5);
  EXPECT_EQ(ctx->BrigPathMkfifo(mem, 3, kPath, 5, 010000), err::kInval);
  EXPECT_EQ(ctx->BrigPathMkfifo(mem, 3, kMemSize - 2, 5, 0600), err::kFault);
  EXPECT_EQ(ctx->BrigPathMkfifo(mem, 3, kPath, UINT32_MAX, 0600), err::kNameTooLong);
  ASSERT_EQ(ctx->BrigPathMkfifo(mem, 3, kPath, 5, 0600), err::kSuccess);
  EXPECT_EQ(ctx->BrigPathMkfifo(mem, 3, kPath, 5, 0600), err::kExist);
  EXPECT_EQ(fs.files_used(), 1u);  // a named pipe is not a file
  std::memcpy(&backing[kPath], "usr/p", 5);
  EXPECT_EQ(ctx->BrigPathMkfifo(mem, 3, kPath, 5, 0600), err::kRoFs);
  // No reader: a writer cannot open it; a reader can, and then a writer.
  uint32_t e = 0;
  EXPECT_EQ(Open("tmp/p", rights::kFdWrite, &e), UINT32_MAX);
  EXPECT_EQ(e, err::kNxio);
  EXPECT_EQ(Open("tmp/p", rights::kFdRead | rights::kFdWrite, &e), UINT32_MAX);
  EXPECT_EQ(e, err::kInval);
  const uint32_t r = Open("tmp/p", rights::kFdRead);
  const uint32_t w = Open("tmp/p", rights::kFdWrite);
  ASSERT_NE(r, UINT32_MAX);
  ASSERT_NE(w, UINT32_MAX);
  // Bytes go through; the node holds none of them.
  std::memcpy(&backing[kBuf], "ping", 4);
  const uint32_t iov[2] = {kBuf, 4};
  std::memcpy(&backing[2000], iov, 8);
  ASSERT_EQ(ctx->FdWrite(mem, w, 2000, 1, kSize), err::kSuccess);
  EXPECT_EQ(fs.Lookup(fs.root(), "/tmp/p").value()->size(), 0u);
  const uint32_t iov2[2] = {kBuf + 100, 10};
  std::memcpy(&backing[2000], iov2, 8);
  ASSERT_EQ(ctx->FdRead(mem, r, 2000, 1, kSize), err::kSuccess);
  EXPECT_EQ(Size(), 4u);
  EXPECT_EQ(Bytes(kBuf + 100, 4), "ping");
  // user.* attributes: not on a named pipe.
  EXPECT_EQ(Call(W::kXattrSet, "user.a", kBuf, 1, 0, kSize, 3, "tmp/p"), err::kPerm);
  EXPECT_EQ(Call(W::kXattrSet | W::kXattrOnFd, "user.a", kBuf, 1, 0, kSize, r), err::kPerm);
  // The host never reads or writes it as a file.
  EXPECT_EQ(fs.ReadFile("/tmp/p"), std::nullopt);
  EXPECT_EQ(fs.WriteFile("/tmp/p", "x"), vfs::Error::kInval);
}

}  // namespace
}  // namespace brig::wasi
