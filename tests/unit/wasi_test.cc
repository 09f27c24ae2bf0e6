// brig::wasi::WasiContext driven as a guest would: arguments laid out in a fake linear
// memory, results read back from it.
#include <gtest/gtest.h>

#include <csetjmp>
#include <cstring>

#include "vfs/file_system.h"
#include "wasi/wasi_context.h"

// The extern "C" glue, compiled into this test with a brig_guest_exit that jumps back here.
static jmp_buf g_exit_jump;
static uint32_t g_exit_code;
extern "C" void brig_guest_exit(uint32_t code) {
  g_exit_code = code;
  longjmp(g_exit_jump, 1);
}
// Host-call bracketing counts depth here; the engine's version lives in runtime.c.
static int g_host_depth;
extern "C" void brig_host_enter(void) { ++g_host_depth; }
extern "C" void brig_host_leave(void) { --g_host_depth; }
#include "wasi/wasi_imports.cc"

namespace brig::wasi {
namespace {

// A guest: 1 MiB of linear memory and a bump allocator.
struct Guest {
  std::vector<uint8_t> bytes = std::vector<uint8_t>(1 << 20);
  GuestMemory mem{bytes.data(), bytes.size()};
  uint32_t next = 4096;

  uint32_t Alloc(uint32_t n) {
    uint32_t p = next;
    next += (n + 15) & ~15u;
    return p;
  }
  uint32_t Put(std::string_view s) {
    uint32_t p = Alloc(static_cast<uint32_t>(s.size()) + 1);
    std::memcpy(&bytes[p], s.data(), s.size());
    return p;
  }
  template <typename T>
  T Get(uint32_t p) const {
    T v;
    std::memcpy(&v, &bytes[p], sizeof v);
    return v;
  }
  template <typename T>
  void Set(uint32_t p, const T& v) {
    std::memcpy(&bytes[p], &v, sizeof v);
  }
  std::string Str(uint32_t p, uint32_t n) const { return std::string(reinterpret_cast<const char*>(&bytes[p]), n); }
  // One iovec over `len` bytes at `buf`.
  uint32_t Iov(uint32_t buf, uint32_t len) {
    uint32_t p = Alloc(8);
    Set(p, Iovec{buf, len});
    return p;
  }
};

class WasiTest : public ::testing::Test {
 protected:
  WasiTest() { Reset({}); }
  void Reset(WasiContext::Options o) {
    ctx.reset();
    if (!o.sleep) o.sleep = [this](uint64_t ns) { slept.push_back(ns); };
    ctx = std::make_unique<WasiContext>(fs, std::move(o));
  }
  // path_open relative to the preopen (fd 3); returns the errno, sets *fd.
  uint32_t Open(std::string_view path, uint32_t oflags, uint64_t rights, uint32_t* fd, uint32_t fdflags = 0) {
    uint32_t p = g.Put(path);
    uint32_t out = g.Alloc(4);
    uint32_t e = ctx->PathOpen(g.mem, 3, 0, p, static_cast<uint32_t>(path.size()), oflags, rights, rights::kAll,
                               fdflags, out);
    *fd = g.Get<uint32_t>(out);
    return e;
  }
  uint32_t Write(uint32_t fd, std::string_view data, uint32_t* n) {
    uint32_t buf = g.Put(data);
    uint32_t out = g.Alloc(4);
    uint32_t e = ctx->FdWrite(g.mem, fd, g.Iov(buf, static_cast<uint32_t>(data.size())), 1, out);
    *n = g.Get<uint32_t>(out);
    return e;
  }
  std::string Read(uint32_t fd, uint32_t max) {
    uint32_t buf = g.Alloc(max);
    uint32_t out = g.Alloc(4);
    EXPECT_EQ(ctx->FdRead(g.mem, fd, g.Iov(buf, max), 1, out), err::kSuccess);
    return g.Str(buf, g.Get<uint32_t>(out));
  }

  vfs::FileSystem fs;
  Guest g;
  std::vector<uint64_t> slept;
  std::unique_ptr<WasiContext> ctx;
};

constexpr uint64_t kRW = rights::kFdRead | rights::kFdWrite | rights::kFdSeek | rights::kFdTell;

TEST_F(WasiTest, OpenWriteSeekReadRoundTrip) {
  uint32_t fd = 0, n = 0;
  ASSERT_EQ(Open("home/user/f.txt", kOflagCreat | kOflagTrunc, kRW, &fd), err::kSuccess);
  EXPECT_EQ(fd, 4u);
  ASSERT_EQ(Write(fd, "hello world", &n), err::kSuccess);
  EXPECT_EQ(n, 11u);
  uint32_t off = g.Alloc(8);
  ASSERT_EQ(ctx->FdSeek(g.mem, fd, 6, kWhenceSet, off), err::kSuccess);
  EXPECT_EQ(g.Get<uint64_t>(off), 6u);
  EXPECT_EQ(Read(fd, 100), "world");
  EXPECT_EQ(Read(fd, 100), "");
  ASSERT_EQ(ctx->FdSeek(g.mem, fd, static_cast<uint64_t>(-5), kWhenceEnd, off), err::kSuccess);
  EXPECT_EQ(g.Get<uint64_t>(off), 6u);
  EXPECT_EQ(ctx->FdSeek(g.mem, fd, static_cast<uint64_t>(-100), kWhenceCur, off), err::kInval);
  EXPECT_EQ(ctx->FdSeek(g.mem, fd, 0, 3, off), err::kInval);
  ASSERT_EQ(ctx->FdTell(g.mem, fd, off), err::kSuccess);
  EXPECT_EQ(g.Get<uint64_t>(off), 6u);
  // Two iovecs in one read.
  ASSERT_EQ(ctx->FdSeek(g.mem, fd, 0, kWhenceSet, off), err::kSuccess);
  uint32_t a = g.Alloc(5), b = g.Alloc(6), iovs = g.Alloc(16), nread = g.Alloc(4);
  g.Set(iovs, Iovec{a, 5});
  g.Set(iovs + 8, Iovec{b, 6});
  ASSERT_EQ(ctx->FdRead(g.mem, fd, iovs, 2, nread), err::kSuccess);
  EXPECT_EQ(g.Get<uint32_t>(nread), 11u);
  EXPECT_EQ(g.Str(a, 5) + g.Str(b, 6), "hello world");
  // pread/pwrite leave the offset alone.
  uint32_t buf = g.Put("HELLO");
  ASSERT_EQ(ctx->FdPwrite(g.mem, fd, g.Iov(buf, 5), 1, 0, nread), err::kSuccess);
  uint32_t rb = g.Alloc(5);
  ASSERT_EQ(ctx->FdPread(g.mem, fd, g.Iov(rb, 5), 1, 0, nread), err::kSuccess);
  EXPECT_EQ(g.Str(rb, 5), "HELLO");
  ASSERT_EQ(ctx->FdTell(g.mem, fd, off), err::kSuccess);
  EXPECT_EQ(g.Get<uint64_t>(off), 11u);
  EXPECT_EQ(ctx->FdClose(g.mem, fd), err::kSuccess);
  EXPECT_EQ(ctx->FdClose(g.mem, fd), err::kBadF);
  EXPECT_EQ(fs.ReadFile("/home/user/f.txt"), "HELLO world");
}

TEST_F(WasiTest, AppendAndReadOnlyDescriptors) {
  ASSERT_EQ(fs.WriteFile("/tmp/log", "a"), vfs::Error::kOk);
  uint32_t fd = 0, n = 0;
  ASSERT_EQ(Open("tmp/log", 0, rights::kFdWrite, &fd, kFdflagAppend), err::kSuccess);
  ASSERT_EQ(Write(fd, "b", &n), err::kSuccess);
  ASSERT_EQ(Write(fd, "c", &n), err::kSuccess);
  EXPECT_EQ(fs.ReadFile("/tmp/log"), "abc");
  uint32_t ro = 0;
  ASSERT_EQ(Open("tmp/log", 0, rights::kFdRead, &ro), err::kSuccess);
  EXPECT_EQ(Write(ro, "x", &n), err::kBadF);
  uint32_t buf = g.Alloc(4), out = g.Alloc(4);
  EXPECT_EQ(ctx->FdRead(g.mem, fd, g.Iov(buf, 4), 1, out), err::kBadF);  // write-only
  EXPECT_EQ(ctx->FdFilestatSetSize(g.mem, ro, 0), err::kInval);
  EXPECT_EQ(ctx->FdFilestatSetSize(g.mem, fd, 1), err::kSuccess);
  EXPECT_EQ(fs.ReadFile("/tmp/log"), "a");
}

TEST_F(WasiTest, OpenFlagsAndErrors) {
  uint32_t fd = 0;
  EXPECT_EQ(Open("tmp/none", 0, kRW, &fd), err::kNoEnt);
  ASSERT_EQ(Open("tmp/x", kOflagCreat | kOflagExcl, kRW, &fd), err::kSuccess);
  EXPECT_EQ(Open("tmp/x", kOflagCreat | kOflagExcl, kRW, &fd), err::kExist);
  EXPECT_EQ(Open("tmp/x", kOflagDirectory, rights::kFdRead, &fd), err::kNotDir);
  EXPECT_EQ(Open("tmp", 0, kRW, &fd), err::kIsDir);
  EXPECT_EQ(Open("usr/local/lib/python3.11", kOflagCreat, kRW, &fd), err::kIsDir);
  EXPECT_EQ(Open("tmp/x", 0x10, kRW, &fd), err::kInval);
  EXPECT_EQ(Open("tmp/x", 0, kRW, &fd, 0x20), err::kInval);
  ASSERT_EQ(Open("tmp", kOflagDirectory, rights::kFdRead | rights::kFdReaddir, &fd), err::kSuccess);
  uint32_t st = g.Alloc(24);
  ASSERT_EQ(ctx->FdFdstatGet(g.mem, fd, st), err::kSuccess);
  EXPECT_EQ(g.Get<Fdstat>(st).filetype, kFiletypeDirectory);
  // Relative to a directory descriptor.
  uint32_t p = g.Put("x"), out = g.Alloc(4);
  EXPECT_EQ(ctx->PathOpen(g.mem, fd, 0, p, 1, 0, rights::kFdRead, 0, 0, out), err::kSuccess);
  EXPECT_EQ(ctx->PathOpen(g.mem, g.Get<uint32_t>(out), 0, p, 1, 0, rights::kFdRead, 0, 0, out), err::kNotDir);
}

TEST_F(WasiTest, ReaddirWithCookiesAndSmallBuffer) {
  ASSERT_EQ(fs.WriteFile("/tmp/b.txt", "1"), vfs::Error::kOk);
  ASSERT_EQ(fs.WriteFile("/tmp/a.txt", "22"), vfs::Error::kOk);
  ASSERT_EQ(fs.MakeDirs("/tmp/sub"), vfs::Error::kOk);
  uint32_t fd = 0;
  ASSERT_EQ(Open("tmp", kOflagDirectory, rights::kFdReaddir, &fd), err::kSuccess);

  // Read one entry at a time with a buffer that holds exactly one 24+name entry, like a
  // guest that restarts from d_next each time.
  std::vector<std::pair<std::string, uint8_t>> seen;
  uint64_t cookie = 0;
  uint32_t used = g.Alloc(4);
  for (int guard = 0; guard < 20; ++guard) {
    uint32_t buf = g.Alloc(64);
    ASSERT_EQ(ctx->FdReaddir(g.mem, fd, buf, 24 + 5, cookie, used), err::kSuccess);
    uint32_t n = g.Get<uint32_t>(used);
    if (n == 0) break;
    ASSERT_GE(n, 24u);
    Dirent d = g.Get<Dirent>(buf);
    ASSERT_LE(24 + d.d_namlen, n) << "entry cut: bigger buffer needed";
    seen.emplace_back(g.Str(buf + 24, d.d_namlen), d.d_type);
    EXPECT_EQ(d.d_next, cookie + 1);
    cookie = d.d_next;
  }
  std::vector<std::pair<std::string, uint8_t>> want = {{".", kFiletypeDirectory},
                                                       {"..", kFiletypeDirectory},
                                                       {"a.txt", kFiletypeRegularFile},
                                                       {"b.txt", kFiletypeRegularFile},
                                                       {"sub", kFiletypeDirectory}};
  EXPECT_EQ(seen, want);

  // A buffer too small for the last entry: filled completely (bufused == buf_len), the
  // entry cut off; the guest learns to retry from that entry's cookie.
  uint32_t buf = g.Alloc(256);
  ASSERT_EQ(ctx->FdReaddir(g.mem, fd, buf, 30, 2, used), err::kSuccess);
  EXPECT_EQ(g.Get<uint32_t>(used), 30u);
  Dirent d = g.Get<Dirent>(buf);
  EXPECT_EQ(d.d_namlen, 5u);
  EXPECT_EQ(g.Str(buf + 24, 5), "a.txt");
  // Whole listing in one call.
  ASSERT_EQ(ctx->FdReaddir(g.mem, fd, buf, 256, 0, used), err::kSuccess);
  EXPECT_EQ(g.Get<uint32_t>(used), 5 * 24 + 1 + 2 + 5 + 5 + 3);
  // Past the end.
  ASSERT_EQ(ctx->FdReaddir(g.mem, fd, buf, 256, 99, used), err::kSuccess);
  EXPECT_EQ(g.Get<uint32_t>(used), 0u);
  // The root: only the mounts and /dev (a character device's directory).
  ASSERT_EQ(ctx->FdReaddir(g.mem, 3, buf, 256, 2, used), err::kSuccess);
  EXPECT_EQ(g.Get<uint32_t>(used), 4 * 24 + 3 + 4 + 3 + 3);
  EXPECT_EQ(g.Str(buf + 24, 3), "dev");
  EXPECT_EQ(g.Str(buf + 24 + 3 + 24, 4), "home");
  // Not a directory.
  uint32_t f = 0;
  ASSERT_EQ(Open("tmp/a.txt", 0, rights::kFdRead, &f), err::kSuccess);
  EXPECT_EQ(ctx->FdReaddir(g.mem, f, buf, 256, 0, used), err::kNotDir);
}

TEST_F(WasiTest, Prestat) {
  uint32_t ps = g.Alloc(8);
  ASSERT_EQ(ctx->FdPrestatGet(g.mem, 3, ps), err::kSuccess);
  Prestat p = g.Get<Prestat>(ps);
  EXPECT_EQ(p.tag, kPreopentypeDir);
  EXPECT_EQ(p.name_len, 1u);
  uint32_t name = g.Alloc(8);
  ASSERT_EQ(ctx->FdPrestatDirName(g.mem, 3, name, 1), err::kSuccess);
  EXPECT_EQ(g.Str(name, 1), "/");
  EXPECT_EQ(ctx->FdPrestatDirName(g.mem, 3, name, 0), err::kNameTooLong);
  EXPECT_EQ(ctx->FdPrestatGet(g.mem, 4, ps), err::kBadF);  // ends wasi-libc's preopen scan
  EXPECT_EQ(ctx->FdPrestatGet(g.mem, 1, ps), err::kBadF);
}

TEST_F(WasiTest, ArgsAndEnviron) {
  WasiContext::Options o;
  o.args = {"python", "-c", "print(1)"};
  o.env = {"HOME=/home/user", "LANG=C.UTF-8"};
  Reset(o);
  uint32_t c = g.Alloc(4), s = g.Alloc(4);
  ASSERT_EQ(ctx->ArgsSizesGet(g.mem, c, s), err::kSuccess);
  EXPECT_EQ(g.Get<uint32_t>(c), 3u);
  EXPECT_EQ(g.Get<uint32_t>(s), 7u + 3 + 9);
  uint32_t argv = g.Alloc(12), buf = g.Alloc(19);
  ASSERT_EQ(ctx->ArgsGet(g.mem, argv, buf), err::kSuccess);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(&g.bytes[g.Get<uint32_t>(argv + 8)])), "print(1)");
  EXPECT_EQ(g.Get<uint32_t>(argv), buf);
  ASSERT_EQ(ctx->EnvironSizesGet(g.mem, c, s), err::kSuccess);
  EXPECT_EQ(g.Get<uint32_t>(c), 2u);
  uint32_t env = g.Alloc(8), ebuf = g.Alloc(g.Get<uint32_t>(s));
  ASSERT_EQ(ctx->EnvironGet(g.mem, env, ebuf), err::kSuccess);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(&g.bytes[g.Get<uint32_t>(env + 4)])), "LANG=C.UTF-8");
}

TEST_F(WasiTest, Clocks) {
  uint32_t t = g.Alloc(8);
  ASSERT_EQ(ctx->ClockTimeGet(g.mem, kClockRealtime, 0, t), err::kSuccess);
  uint64_t real = g.Get<uint64_t>(t);
  EXPECT_GT(real, 1600000000ull * 1000000000ull);
  ASSERT_EQ(ctx->ClockTimeGet(g.mem, kClockMonotonic, 0, t), err::kSuccess);
  uint64_t m1 = g.Get<uint64_t>(t);
  ASSERT_EQ(ctx->ClockTimeGet(g.mem, kClockMonotonic, 0, t), err::kSuccess);
  EXPECT_GE(g.Get<uint64_t>(t), m1);
  ASSERT_EQ(ctx->ClockTimeGet(g.mem, kClockProcessCputime, 0, t), err::kSuccess);
  uint64_t cpu = g.Get<uint64_t>(t);
  EXPECT_LT(cpu, 60ull * 1000000000ull);  // counted from the context's creation
  EXPECT_EQ(ctx->ClockTimeGet(g.mem, 4, 0, t), err::kInval);
  ASSERT_EQ(ctx->ClockResGet(g.mem, kClockMonotonic, t), err::kSuccess);
  EXPECT_GE(g.Get<uint64_t>(t), 1u);
  EXPECT_EQ(ctx->ClockResGet(g.mem, 99, t), err::kInval);
}

TEST_F(WasiTest, RandomGet) {
  uint32_t a = g.Alloc(64), b = g.Alloc(64);
  ASSERT_EQ(ctx->RandomGet(g.mem, a, 64), err::kSuccess);
  ASSERT_EQ(ctx->RandomGet(g.mem, b, 64), err::kSuccess);
  EXPECT_NE(g.Str(a, 64), g.Str(b, 64));
  EXPECT_NE(g.Str(a, 64), std::string(64, '\0'));
  EXPECT_EQ(ctx->RandomGet(g.mem, a, 0), err::kSuccess);
}

TEST_F(WasiTest, PollOneoffClockSleepsThroughHook) {
  uint32_t in = g.Alloc(2 * 48), out = g.Alloc(2 * 32), n = g.Alloc(4);
  Subscription s{};
  s.userdata = 7;
  s.tag = kEventtypeClock;
  s.u.clock.id = kClockMonotonic;
  s.u.clock.timeout = 5000000;
  g.Set(in, s);
  s.userdata = 8;
  s.u.clock.timeout = 9000000;
  g.Set(in + 48, s);
  ASSERT_EQ(ctx->PollOneoff(g.mem, in, out, 2, n), err::kSuccess);
  EXPECT_EQ(slept, std::vector<uint64_t>{5000000});
  ASSERT_EQ(g.Get<uint32_t>(n), 1u);
  Event e = g.Get<Event>(out);
  EXPECT_EQ(e.userdata, 7u);
  EXPECT_EQ(e.type, kEventtypeClock);
  EXPECT_EQ(e.error, 0);

  // Absolute deadline in the past: fires without sleeping.
  slept.clear();
  s.userdata = 9;
  s.u.clock.flags = kSubclockflagAbstime;
  s.u.clock.timeout = 1;
  g.Set(in, s);
  ASSERT_EQ(ctx->PollOneoff(g.mem, in, out, 1, n), err::kSuccess);
  EXPECT_TRUE(slept.empty());
  EXPECT_EQ(g.Get<uint32_t>(n), 1u);
  EXPECT_EQ(g.Get<Event>(out).userdata, 9u);

  // An fd subscription is ready at once: no sleep, the clock does not fire.
  Subscription rd{};
  rd.userdata = 10;
  rd.tag = kEventtypeFdWrite;
  rd.u.fd = 1;
  g.Set(in, rd);
  s.u.clock.flags = 0;
  s.u.clock.timeout = 1000000000;
  g.Set(in + 48, s);
  ASSERT_EQ(ctx->PollOneoff(g.mem, in, out, 2, n), err::kSuccess);
  EXPECT_TRUE(slept.empty());
  ASSERT_EQ(g.Get<uint32_t>(n), 1u);
  EXPECT_EQ(g.Get<Event>(out).userdata, 10u);
  EXPECT_EQ(g.Get<Event>(out).type, kEventtypeFdWrite);
  // A closed fd reports EBADF in its event.
  rd.u.fd = 77;
  g.Set(in, rd);
  ASSERT_EQ(ctx->PollOneoff(g.mem, in, out, 1, n), err::kSuccess);
  EXPECT_EQ(g.Get<Event>(out).error, err::kBadF);
  EXPECT_EQ(ctx->PollOneoff(g.mem, in, out, 0, n), err::kInval);
}

TEST_F(WasiTest, StdoutCaptureAndTruncation) {
  WasiContext::Options o;
  o.stdout_cap = 8;
  Reset(o);
  uint32_t n = 0;
  ASSERT_EQ(Write(1, "hello ", &n), err::kSuccess);
  EXPECT_FALSE(ctx->stdout_truncated());
  ASSERT_EQ(Write(1, "world!", &n), err::kSuccess);
  EXPECT_EQ(n, 6u);  // the guest is told everything was written
  EXPECT_EQ(ctx->stdout_data(), "hello wo");
  EXPECT_TRUE(ctx->stdout_truncated());
  EXPECT_EQ(ctx->stdout_dropped(), 4u);
  ASSERT_EQ(Write(2, "err", &n), err::kSuccess);
  EXPECT_EQ(ctx->stderr_data(), "err");
  EXPECT_FALSE(ctx->stderr_truncated());
  EXPECT_EQ(Write(0, "x", &n), err::kBadF);
  EXPECT_EQ(Read(0, 16), "");  // stdin is at EOF
  uint32_t st = g.Alloc(24);
  ASSERT_EQ(ctx->FdFdstatGet(g.mem, 1, st), err::kSuccess);
  EXPECT_EQ(g.Get<Fdstat>(st).filetype, kFiletypeUnknown);  // a pipe, not a terminal: isatty() is false
  uint32_t off = g.Alloc(8);
  EXPECT_EQ(ctx->FdSeek(g.mem, 1, 0, kWhenceCur, off), err::kSPipe);
  ctx->ClearOutput();
  EXPECT_EQ(ctx->stdout_data(), "");
  EXPECT_FALSE(ctx->stdout_truncated());
}

TEST_F(WasiTest, PathOperations) {
  auto path = [&](std::string_view s) { return std::make_pair(g.Put(s), static_cast<uint32_t>(s.size())); };
  auto [d, dl] = path("home/user/dir");
  ASSERT_EQ(ctx->PathCreateDirectory(g.mem, 3, d, dl), err::kSuccess);
  EXPECT_EQ(ctx->PathCreateDirectory(g.mem, 3, d, dl), err::kExist);
  ASSERT_EQ(fs.WriteFile("/home/user/dir/f", "abc"), vfs::Error::kOk);
  auto [f, fl] = path("home/user/dir/f");
  uint32_t st = g.Alloc(64);
  ASSERT_EQ(ctx->PathFilestatGet(g.mem, 3, 0, f, fl, st), err::kSuccess);
  Filestat fst = g.Get<Filestat>(st);
  EXPECT_EQ(fst.size, 3u);
  EXPECT_EQ(fst.filetype, kFiletypeRegularFile);
  EXPECT_EQ(fst.nlink, 1u);
  ASSERT_EQ(ctx->PathFilestatSetTimes(g.mem, 3, 0, f, fl, 111, 222, kFstflagAtim | kFstflagMtim), err::kSuccess);
  ASSERT_EQ(ctx->PathFilestatGet(g.mem, 3, 0, f, fl, st), err::kSuccess);
  EXPECT_EQ(g.Get<Filestat>(st).atim, 111u);
  EXPECT_EQ(g.Get<Filestat>(st).mtim, 222u);
  EXPECT_EQ(ctx->PathFilestatSetTimes(g.mem, 3, 0, f, fl, 1, 1, kFstflagAtim | kFstflagAtimNow), err::kInval);
  auto [r, rl] = path("home/user/renamed");
  ASSERT_EQ(ctx->PathRename(g.mem, 3, f, fl, 3, r, rl), err::kSuccess);
  EXPECT_EQ(fs.ReadFile("/home/user/renamed"), "abc");
  EXPECT_EQ(ctx->PathRemoveDirectory(g.mem, 3, r, rl), err::kNotDir);
  EXPECT_EQ(ctx->PathUnlinkFile(g.mem, 3, d, dl), err::kIsDir);
  EXPECT_EQ(ctx->PathRemoveDirectory(g.mem, 3, d, dl), err::kSuccess);
  uint32_t buf = g.Alloc(64), used = g.Alloc(4);
  EXPECT_EQ(ctx->PathReadlink(g.mem, 3, r, rl, buf, 64, used), err::kInval);
  auto [l, ll] = path("home/user/link");
  EXPECT_EQ(ctx->PathSymlink(g.mem, r, rl, 3, l, ll), err::kPerm);
  EXPECT_EQ(ctx->PathLink(g.mem, 3, 0, r, rl, 3, l, ll), err::kPerm);
  EXPECT_EQ(ctx->PathUnlinkFile(g.mem, 3, r, rl), err::kSuccess);
  EXPECT_FALSE(fs.ReadFile("/home/user/renamed"));
}

TEST_F(WasiTest, FdRenumberAndFdCap) {
  WasiContext::Options o;
  o.max_fds = 6;
  Reset(o);
  uint32_t a = 0, b = 0, c = 0;
  ASSERT_EQ(Open("tmp", kOflagDirectory, rights::kFdReaddir, &a), err::kSuccess);
  ASSERT_EQ(Open("tmp", kOflagDirectory, rights::kFdReaddir, &b), err::kSuccess);
  EXPECT_EQ(Open("tmp/new", kOflagCreat, kRW, &c), err::kMFile);
  EXPECT_FALSE(fs.ReadFile("/tmp/new"));  // nothing created when no descriptor is left
  ASSERT_EQ(ctx->FdRenumber(g.mem, b, a), err::kSuccess);
  EXPECT_EQ(ctx->FdClose(g.mem, b), err::kBadF);
  EXPECT_EQ(ctx->FdRenumber(g.mem, a, 6), err::kBadF);
  EXPECT_EQ(ctx->open_fd_count(), 5u);
}

TEST_F(WasiTest, ProcExitThroughTheGlue) {
  wasm_rt_memory_t memory{g.bytes.data(), 16, 16, static_cast<uint32_t>(g.bytes.size())};
  Z_wasi_snapshot_preview1_instance_t inst{ctx.get(), &memory};
  // A guest call through the C entry points.
  uint32_t buf = g.Put("via glue"), out = g.Alloc(4);
  EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(&inst, 1, g.Iov(buf, 8), 1, out), err::kSuccess);
  EXPECT_EQ(ctx->stdout_data(), "via glue");
  EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(&inst, 1, 0xFFFFFFF0u, 1, out), err::kFault);
  EXPECT_EQ(g_host_depth, 0);  // every import leaves the host section it entered
  if (setjmp(g_exit_jump) == 0) {
    Z_wasi_snapshot_preview1Z_proc_exit(&inst, 3);
    FAIL() << "proc_exit returned";
  }
  EXPECT_EQ(g_exit_code, 3u);
  EXPECT_EQ(ctx->exit_code(), 3u);
}

}  // namespace
}  // namespace brig::wasi
