// Think like an attacker: every guest pointer and length of every WASI call aimed at the
// end of memory, straddling it, wrapping around 2^32, and huge counts. Each must fail with
// EFAULT (or EINVAL / ENAMETOOLONG for counts and lengths), touch nothing outside guest
// memory, and leave the host state as it was. Each call is also run with good arguments
// first, so a call that always failed would not pass.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <optional>

#include "vfs/file_system.h"
#include "wasi/wasi_context.h"

namespace brig::wasi {
namespace {

constexpr uint32_t kMemSize = 64 * 1024;  // what the guest may use
constexpr uint32_t kCanary = 4096;        // host bytes right after guest memory

class BoundsTest : public ::testing::Test {
 protected:
  BoundsTest() : backing(kMemSize + kCanary, 0), mem(backing.data(), kMemSize) {
    std::memset(backing.data() + kMemSize, 0xA5, kCanary);
    EXPECT_EQ(fs.WriteFile("/tmp/f", "contents"), vfs::Error::kOk);
    EXPECT_EQ(fs.MakeDirs("/tmp/d"), vfs::Error::kOk);
    WasiContext::Options o;
    o.args = {"python", "-c", "pass"};
    o.env = {"A=1"};
    o.sleep = [](uint64_t) {};
    ctx = std::make_unique<WasiContext>(fs, o);
    file_path = Put("tmp/f");
    dir_path = Put("tmp/d");
    data = Put("xyz");
    iov = Alloc(8);
    Set(iov, Iovec{data, 3});
    uint32_t out = Alloc(4);
    EXPECT_EQ(ctx->PathOpen(mem, 3, 0, file_path, 5, 0, rights::kFdRead | rights::kFdWrite | rights::kFdSeek,
                            0, 0, out),
              err::kSuccess);
    file_fd = Get<uint32_t>(out);
    EXPECT_EQ(ctx->PathOpen(mem, 3, 0, dir_path, 5, kOflagDirectory, rights::kFdReaddir, rights::kAll, 0, out),
              err::kSuccess);
    dir_fd = Get<uint32_t>(out);
    scratch = Alloc(1024);
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
  template <typename T>
  void Set(uint32_t p, const T& v) {
    std::memcpy(&backing[p], &v, sizeof v);
  }
  template <typename T>
  T Get(uint32_t p) {
    T v;
    std::memcpy(&v, &backing[p], sizeof v);
    return v;
  }

  // A call with one pointer (and maybe its length) under attack.
  struct Case {
    std::string name;
    bool has_len;  // the attacked argument is a (pointer, length) pair
    uint32_t good_ptr, good_len;
    std::function<uint32_t(uint32_t ptr, uint32_t len)> call;
    // When set, the exact errno of the good call, and of each bad one (given its arguments):
    // for calls whose good result is itself an error, "not EFAULT" would also let a call
    // that skipped its bounds checks pass.
    std::optional<uint32_t> good_errno = std::nullopt;
    std::function<uint32_t(uint32_t ptr, uint32_t len)> bad_errno = nullptr;
  };

  void Run(const std::vector<Case>& cases) {
    const std::vector<uint32_t> bad_ptrs = {kMemSize,        kMemSize - 1, kMemSize - 3, 0xFFFFFFF0u,
                                            0xFFFFFFFCu,     0xFFFFFFFFu,  0x80000000u};
    const std::vector<std::pair<uint32_t, uint32_t>> bad_ranges = {
        {kMemSize, 1}, {kMemSize - 2, 4}, {0xFFFFFFF0u, 0x20}, {1, 0xFFFFFFFFu}, {0xFFFFFFFFu, 1}, {kMemSize / 2, kMemSize}};
    for (const Case& c : cases) {
      uint32_t good = c.call(c.good_ptr, c.good_len);
      EXPECT_NE(good, err::kFault) << c.name << " fails even with good arguments";
      if (c.good_errno) EXPECT_EQ(good, *c.good_errno) << c.name << " with good arguments";
      if (c.has_len) {
        for (auto [p, l] : bad_ranges) {
          uint32_t e = c.call(p, l);
          if (c.bad_errno) {
            EXPECT_EQ(e, c.bad_errno(p, l)) << c.name << " ptr=" << std::hex << p << " len=" << l;
          } else {
            EXPECT_TRUE(e == err::kFault || e == err::kNameTooLong || e == err::kInval)
                << c.name << " ptr=" << std::hex << p << " len=" << l << " -> " << std::dec << e;
          }
        }
      } else {
        for (uint32_t p : bad_ptrs) EXPECT_EQ(c.call(p, 0), err::kFault) << c.name << " ptr=" << std::hex << p;
      }
    }
  }

  vfs::FileSystem fs;
  std::vector<uint8_t> backing;
  GuestMemory mem;
  std::unique_ptr<WasiContext> ctx;
  uint32_t next = 1024;
  uint32_t file_path, dir_path, data, iov, file_fd, dir_fd, scratch;
};

TEST_F(BoundsTest, OutputPointers) {
  uint32_t s = scratch;
  Run({
      {"args_sizes_get.argc", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->ArgsSizesGet(mem, p, s); }},
      {"args_sizes_get.size", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->ArgsSizesGet(mem, s, p); }},
      {"args_get.argv", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->ArgsGet(mem, p, s + 64); }},
      {"args_get.buf", false, s + 64, 0, [&](uint32_t p, uint32_t) { return ctx->ArgsGet(mem, s, p); }},
      {"environ_sizes_get", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->EnvironSizesGet(mem, p, s); }},
      {"environ_get.env", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->EnvironGet(mem, p, s + 64); }},
      {"environ_get.buf", false, s + 64, 0, [&](uint32_t p, uint32_t) { return ctx->EnvironGet(mem, s, p); }},
      {"clock_res_get", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->ClockResGet(mem, 1, p); }},
      {"clock_time_get", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->ClockTimeGet(mem, 0, 0, p); }},
      {"fd_fdstat_get", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->FdFdstatGet(mem, file_fd, p); }},
      {"fd_filestat_get", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->FdFilestatGet(mem, file_fd, p); }},
      {"fd_prestat_get", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->FdPrestatGet(mem, 3, p); }},
      {"fd_seek", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->FdSeek(mem, file_fd, 0, 0, p); }},
      {"fd_tell", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->FdTell(mem, file_fd, p); }},
      {"fd_read.nread", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->FdRead(mem, file_fd, iov, 1, p); }},
      {"fd_write.nwritten", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->FdWrite(mem, 1, iov, 1, p); }},
      {"fd_pread.nread", false, s, 0, [&](uint32_t p, uint32_t) { return ctx->FdPread(mem, file_fd, iov, 1, 0, p); }},
      {"fd_pwrite.nwritten", false, s, 0,
       [&](uint32_t p, uint32_t) { return ctx->FdPwrite(mem, file_fd, iov, 1, 0, p); }},
      {"fd_readdir.bufused", false, s, 0,
       [&](uint32_t p, uint32_t) { return ctx->FdReaddir(mem, dir_fd, s + 64, 100, 0, p); }},
      {"path_filestat_get.out", false, s, 0,
       [&](uint32_t p, uint32_t) { return ctx->PathFilestatGet(mem, 3, 0, file_path, 5, p); }},
      {"path_open.fd_out", false, s, 0,
       [&](uint32_t p, uint32_t) { return ctx->PathOpen(mem, 3, 0, file_path, 5, 0, rights::kFdRead, 0, 0, p); }},
      // The VFS has no symlinks: readlink of a file is EINVAL, so the good call is an error too.
      {"path_readlink.bufused", false, s, 0,
       [&](uint32_t p, uint32_t) { return ctx->PathReadlink(mem, 3, file_path, 5, s + 64, 10, p); }, err::kInval},
      {"poll_oneoff.nevents", false, s, 0, [&](uint32_t p, uint32_t) {
         Subscription sub{};
         sub.tag = kEventtypeClock;
         sub.u.clock.id = kClockMonotonic;
         Set(s + 128, sub);
         return ctx->PollOneoff(mem, s + 128, s + 256, 1, p);
       }},
  });
}

TEST_F(BoundsTest, PointerLengthPairs) {
  uint32_t s = scratch;
  Run({
      {"fd_prestat_dir_name", true, s, 1, [&](uint32_t p, uint32_t l) { return ctx->FdPrestatDirName(mem, 3, p, l); }},
      {"fd_readdir.buf", true, s, 100,
       [&](uint32_t p, uint32_t l) { return ctx->FdReaddir(mem, dir_fd, p, l, 0, s + 512); }},
      {"random_get", true, s, 16, [&](uint32_t p, uint32_t l) { return ctx->RandomGet(mem, p, l); }},
      {"path_open.path", true, file_path, 5,
       [&](uint32_t p, uint32_t l) { return ctx->PathOpen(mem, 3, 0, p, l, 0, rights::kFdRead, 0, 0, s); }},
      {"path_create_directory", true, Put("tmp/newdir"), 10,
       [&](uint32_t p, uint32_t l) { return ctx->PathCreateDirectory(mem, 3, p, l); }},
      {"path_filestat_get.path", true, file_path, 5,
       [&](uint32_t p, uint32_t l) { return ctx->PathFilestatGet(mem, 3, 0, p, l, s); }},
      {"path_filestat_set_times", true, file_path, 5,
       [&](uint32_t p, uint32_t l) { return ctx->PathFilestatSetTimes(mem, 3, 0, p, l, 1, 1, kFstflagAtim); }},
      {"path_link.old", true, file_path, 5,
       [&](uint32_t p, uint32_t l) { return ctx->PathLink(mem, 3, 0, p, l, 3, dir_path, 5); }},
      {"path_link.new", true, Put("tmp/l"), 5,
       [&](uint32_t p, uint32_t l) { return ctx->PathLink(mem, 3, 0, file_path, 5, 3, p, l); }},
      // readlink of a file is EINVAL (the VFS has no symlinks), the same errno a call that
      // skipped its checks would give: these two must fail with exactly the bounds errno.
      {"path_readlink.path", true, file_path, 5,
       [&](uint32_t p, uint32_t l) { return ctx->PathReadlink(mem, 3, p, l, s, 10, s + 64); }, err::kInval,
       [&](uint32_t, uint32_t l) { return l > fs.limits().max_path_length ? err::kNameTooLong : err::kFault; }},
      {"path_readlink.buf", true, s, 10,
       [&](uint32_t p, uint32_t l) { return ctx->PathReadlink(mem, 3, file_path, 5, p, l, s + 64); }, err::kInval,
       [](uint32_t, uint32_t) { return err::kFault; }},
      {"path_remove_directory", true, Put("tmp/nodir"), 9,
       [&](uint32_t p, uint32_t l) { return ctx->PathRemoveDirectory(mem, 3, p, l); }},
      {"path_unlink_file", true, Put("tmp/nofile"), 10,
       [&](uint32_t p, uint32_t l) { return ctx->PathUnlinkFile(mem, 3, p, l); }},
      {"path_rename.old", true, Put("tmp/nofile"), 10,
       [&](uint32_t p, uint32_t l) { return ctx->PathRename(mem, 3, p, l, 3, file_path, 5); }},
      {"path_rename.new", true, file_path, 5,
       [&](uint32_t p, uint32_t l) { return ctx->PathRename(mem, 3, file_path, 5, 3, p, l); }},
      {"path_symlink.old", true, file_path, 5,
       [&](uint32_t p, uint32_t l) { return ctx->PathSymlink(mem, p, l, 3, dir_path, 5); }},
      {"path_symlink.new", true, Put("tmp/sl"), 6,
       [&](uint32_t p, uint32_t l) { return ctx->PathSymlink(mem, file_path, 5, 3, p, l); }},
  });
}

TEST_F(BoundsTest, IovecArraysAndBuffers) {
  uint32_t n = scratch;
  using Fn = std::function<uint32_t(uint32_t iovs, uint32_t cnt)>;
  std::vector<std::pair<std::string, Fn>> calls = {
      {"fd_read", [&](uint32_t i, uint32_t c) { return ctx->FdRead(mem, file_fd, i, c, n); }},
      {"fd_pread", [&](uint32_t i, uint32_t c) { return ctx->FdPread(mem, file_fd, i, c, 0, n); }},
      {"fd_write.stdout", [&](uint32_t i, uint32_t c) { return ctx->FdWrite(mem, 1, i, c, n); }},
      {"fd_write.file", [&](uint32_t i, uint32_t c) { return ctx->FdWrite(mem, file_fd, i, c, n); }},
      {"fd_pwrite", [&](uint32_t i, uint32_t c) { return ctx->FdPwrite(mem, file_fd, i, c, 0, n); }},
  };
  uint32_t bad_iov = Alloc(8 * 6);
  std::vector<Iovec> bad_bufs = {{kMemSize, 1}, {kMemSize - 1, 2}, {0xFFFFFFF0u, 0x20}, {1, 0xFFFFFFFFu},
                                 {0xFFFFFFFFu, 1}};
  for (auto& [name, call] : calls) {
    EXPECT_EQ(call(iov, 1), err::kSuccess) << name;
    // The iovec array itself out of bounds or wrapping.
    for (auto [p, c] : std::vector<std::pair<uint32_t, uint32_t>>{
             {kMemSize, 1}, {kMemSize - 4, 1}, {0xFFFFFFF0u, 4}, {0xFFFFFFFFu, 1}, {kMemSize - 8 * 10, 1000}})
      EXPECT_EQ(call(p, c), err::kFault) << name << " iovs=" << std::hex << p;
    // Absurd counts.
    EXPECT_EQ(call(iov, 0xFFFFFFFFu), err::kInval) << name;
    EXPECT_EQ(call(iov, 0x20000000u), err::kInval) << name;
    // A good first iovec followed by a bad one: nothing happens at all.
    for (const Iovec& b : bad_bufs) {
      Set(bad_iov, Iovec{data, 3});
      Set(bad_iov + 8, b);
      std::string before_out = ctx->stdout_data();
      auto before_file = fs.ReadFile("/tmp/f");
      EXPECT_EQ(call(bad_iov, 2), err::kFault) << name << " buf=" << std::hex << b.buf;
      EXPECT_EQ(ctx->stdout_data(), before_out);
      EXPECT_EQ(fs.ReadFile("/tmp/f"), before_file);
    }
  }
}

TEST_F(BoundsTest, PollOneoffArrays) {
  uint32_t s = scratch;
  Subscription sub{};
  sub.tag = kEventtypeFdRead;
  sub.u.fd = file_fd;
  Set(s, sub);
  EXPECT_EQ(ctx->PollOneoff(mem, s, s + 64, 1, s + 200), err::kSuccess);
  EXPECT_EQ(ctx->PollOneoff(mem, kMemSize - 48, s + 64, 2, s + 200), err::kFault);
  EXPECT_EQ(ctx->PollOneoff(mem, s, kMemSize - 32, 2, s + 200), err::kFault);
  EXPECT_EQ(ctx->PollOneoff(mem, 0xFFFFFFF0u, s + 64, 1, s + 200), err::kFault);
  EXPECT_EQ(ctx->PollOneoff(mem, s, 0xFFFFFFF0u, 1, s + 200), err::kFault);
  EXPECT_EQ(ctx->PollOneoff(mem, s, s + 64, 0xFFFFFFFFu, s + 200), err::kInval);
  EXPECT_EQ(ctx->PollOneoff(mem, 0, 0, 4096, s + 200), err::kFault);  // 4096*48 > 64 KiB
}

TEST_F(BoundsTest, ZeroSizedAndNullMemory) {
  GuestMemory none(nullptr, 0);
  EXPECT_EQ(ctx->FdWrite(none, 1, 0, 1, 0), err::kFault);
  EXPECT_EQ(ctx->ClockTimeGet(none, 0, 0, 0), err::kFault);
  EXPECT_EQ(ctx->RandomGet(none, 0, 1), err::kFault);
  EXPECT_EQ(ctx->RandomGet(none, 0, 0), err::kSuccess);
  GuestMemory gm(backing.data(), kMemSize);
  EXPECT_TRUE(gm.InBounds(kMemSize, 0));
  EXPECT_FALSE(gm.InBounds(kMemSize, 1));
  EXPECT_FALSE(gm.InBounds(~0ull, 2));
  EXPECT_FALSE(gm.ArrayInBounds<Iovec>(0, ~0ull / 4));
}

}  // namespace
}  // namespace brig::wasi
