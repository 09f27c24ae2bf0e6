// brig's own descriptor calls (brig_fd_pipe, brig_fd_dup, brig_fd_dup2, brig_fd_eventfd)
// attacked from the guest. Eventfds: bad flags and output pointers, short and straddling
// buffers, the count's bounds, and copies.  Pipes: out-of-bounds and
// straddling output pointers, a full descriptor table, a pipe filled past its bound, huge
// reads and writes, the wrong end, seeks; then the semantics single-threaded code relies on
// (EAGAIN instead of waiting forever, end of file, EPIPE) and copies for forks/checkpoints.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "vfs/file_system.h"
#include "wasi/wasi_context.h"

namespace brig::wasi {
namespace {

constexpr uint32_t kMemSize = 256 * 1024;
constexpr uint32_t kCanary = 4096;

class PipeTest : public ::testing::Test {
 protected:
  PipeTest() : backing(kMemSize + kCanary, 0), mem(backing.data(), kMemSize) {
    std::memset(backing.data() + kMemSize, 0xA5, kCanary);
    ctx = Make(fs, 1024);
  }
  static std::unique_ptr<WasiContext> Make(vfs::FileSystem& f, uint32_t max_fds) {
    WasiContext::Options o;
    o.sleep = [](uint64_t) {};
    o.max_fds = max_fds;
    return std::make_unique<WasiContext>(f, o);
  }
  void TearDown() override {
    for (uint32_t i = 0; i < kCanary; ++i) ASSERT_EQ(backing[kMemSize + i], 0xA5) << "host byte " << i << " hit";
  }
  uint32_t Get32(uint32_t p) {
    uint32_t v;
    std::memcpy(&v, &backing[p], 4);
    return v;
  }
  // A pipe through the host call; its ends in *r, *w.
  void Pipe(WasiContext& c, uint32_t* r, uint32_t* w) {
    ASSERT_EQ(c.BrigFdPipe(mem, kOut), err::kSuccess);
    *r = Get32(kOut);
    *w = Get32(kOut + 4);
  }
  // fd_write of `n` bytes from kData; the count in *done.
  uint32_t Write(WasiContext& c, uint32_t fd, uint32_t n, uint32_t* done) {
    Iovec v{kData, n};
    std::memcpy(&backing[kIov], &v, sizeof v);
    uint32_t e = c.FdWrite(mem, fd, kIov, 1, kOut);
    *done = Get32(kOut);
    return e;
  }
  uint32_t Read(WasiContext& c, uint32_t fd, uint32_t n, uint32_t* done) {
    Iovec v{kData, n};
    std::memcpy(&backing[kIov], &v, sizeof v);
    uint32_t e = c.FdRead(mem, fd, kIov, 1, kOut);
    *done = Get32(kOut);
    return e;
  }

  static constexpr uint32_t kOut = 16, kIov = 64, kData = 1024;  // kData..: 128 KiB free
  std::vector<uint8_t> backing;
  GuestMemory mem;
  vfs::FileSystem fs;
  std::unique_ptr<WasiContext> ctx;
};

TEST_F(PipeTest, BytesGoThroughInOrder) {
  uint32_t r, w, n;
  Pipe(*ctx, &r, &w);
  EXPECT_NE(r, w);
  std::memcpy(&backing[kData], "hello", 5);
  ASSERT_EQ(Write(*ctx, w, 5, &n), err::kSuccess);
  EXPECT_EQ(n, 5u);
  std::memset(&backing[kData], 0, 8);
  ASSERT_EQ(Read(*ctx, r, 3, &n), err::kSuccess);
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(&backing[kData]), 3), "hel");
  ASSERT_EQ(Read(*ctx, r, 100, &n), err::kSuccess);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(&backing[kData]), 2), "lo");
}

TEST_F(PipeTest, OutputPointerOutOfBoundsOpensNothing) {
  const size_t before = ctx->open_fd_count();
  for (uint32_t p : {kMemSize, kMemSize - 4, kMemSize - 7, 0xFFFFFFFCu, 0xFFFFFFFFu}) {
    EXPECT_EQ(ctx->BrigFdPipe(mem, p), err::kFault) << p;
    EXPECT_EQ(ctx->open_fd_count(), before) << p;
  }
  EXPECT_EQ(ctx->BrigFdPipe(mem, kMemSize - 8), err::kSuccess);  // the last 8 bytes: fine
  EXPECT_EQ(ctx->open_fd_count(), before + 2);
}

TEST_F(PipeTest, FullTableIsBoundedAndLeavesNoHalfPipe) {
  vfs::FileSystem small_fs;
  auto c = Make(small_fs, 9);  // 0-3 taken: room for 5
  uint32_t r, w;
  Pipe(*c, &r, &w);
  Pipe(*c, &r, &w);
  EXPECT_EQ(c->open_fd_count(), 8u);
  EXPECT_EQ(c->BrigFdPipe(mem, kOut), err::kMFile);  // one slot free: not enough
  EXPECT_EQ(c->open_fd_count(), 8u);
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(c->BrigFdPipe(mem, kOut), err::kMFile);
  EXPECT_EQ(c->open_fd_count(), 8u);
}

TEST_F(PipeTest, FilledPastItsBoundHoldsAtMostTheCapacity) {
  uint32_t r, w, n;
  Pipe(*ctx, &r, &w);
  // One write bigger than the buffer: a short write of what fits.
  ASSERT_EQ(Write(*ctx, w, 100000, &n), err::kSuccess);
  EXPECT_EQ(n, PipeBuffer::kCapacity);
  // Full: EAGAIN at once, in blocking mode too (nothing could drain it).
  EXPECT_EQ(Write(*ctx, w, 1, &n), err::kAgain);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(Write(*ctx, w, 65536, &n), err::kAgain);
  // A zero-length write to a full pipe is not an error.
  EXPECT_EQ(Write(*ctx, w, 0, &n), err::kSuccess);
  EXPECT_EQ(n, 0u);
  // Reading gives back exactly the capacity, then EAGAIN (write end still open).
  uint64_t total = 0;
  while (Read(*ctx, r, 4096, &n) == err::kSuccess) total += n;
  EXPECT_EQ(total, PipeBuffer::kCapacity);
  EXPECT_EQ(Read(*ctx, r, 1, &n), err::kAgain);
}

TEST_F(PipeTest, BadBuffersFault) {
  uint32_t r, w, n;
  Pipe(*ctx, &r, &w);
  Iovec v{kMemSize - 2, 4};  // straddles the end
  std::memcpy(&backing[kIov], &v, sizeof v);
  EXPECT_EQ(ctx->FdWrite(mem, w, kIov, 1, kOut), err::kFault);
  EXPECT_EQ(ctx->FdWrite(mem, w, kMemSize - 4, 1, kOut), err::kFault);  // the iovec itself
  EXPECT_EQ(ctx->FdWrite(mem, w, kIov, 1, kMemSize), err::kFault);      // the count
  v = Iovec{0xFFFFFFF0u, 0x20};                                          // wraps 2^32
  std::memcpy(&backing[kIov], &v, sizeof v);
  EXPECT_EQ(ctx->FdWrite(mem, w, kIov, 1, kOut), err::kFault);
  // Nothing went in.
  EXPECT_EQ(Read(*ctx, r, 10, &n), err::kAgain);
  std::memcpy(&backing[kData], "ab", 2);
  ASSERT_EQ(Write(*ctx, w, 2, &n), err::kSuccess);
  v = Iovec{kMemSize - 1, 2};
  std::memcpy(&backing[kIov], &v, sizeof v);
  EXPECT_EQ(ctx->FdRead(mem, r, kIov, 1, kOut), err::kFault);
  EXPECT_EQ(ctx->FdRead(mem, r, kIov, 1, 0xFFFFFFFFu), err::kFault);
  // Huge lengths in bounds are fine: they take what there is.
  ASSERT_EQ(Read(*ctx, r, kMemSize - kData, &n), err::kSuccess);
  EXPECT_EQ(n, 2u);
}

TEST_F(PipeTest, WrongEndAndSeeksAreRefused) {
  uint32_t r, w, n;
  Pipe(*ctx, &r, &w);
  EXPECT_EQ(Write(*ctx, r, 1, &n), err::kBadF);
  EXPECT_EQ(Read(*ctx, w, 1, &n), err::kBadF);
  EXPECT_EQ(ctx->FdSeek(mem, r, 0, kWhenceSet, kOut), err::kSPipe);
  EXPECT_EQ(ctx->FdSeek(mem, w, 0, kWhenceCur, kOut), err::kSPipe);
  Iovec v{kData, 1};
  std::memcpy(&backing[kIov], &v, sizeof v);
  EXPECT_EQ(ctx->FdPwrite(mem, w, kIov, 1, 0, kOut), err::kSPipe);
  EXPECT_EQ(ctx->FdPread(mem, r, kIov, 1, 0, kOut), err::kSPipe);
  EXPECT_EQ(ctx->FdFilestatSetSize(mem, w, 0), err::kInval);
  EXPECT_EQ(ctx->FdReaddir(mem, r, kData, 100, 0, kOut), err::kNotDir);
  // fstat works and says "unknown" (WASI has no FIFO type), as for stdio, with brig's flag
  // in the padding that makes the guest's libc say S_IFIFO.
  EXPECT_EQ(ctx->FdFilestatGet(mem, r, kData), err::kSuccess);
  EXPECT_EQ(backing[kData + 16], kFiletypeUnknown);
  EXPECT_EQ(backing[kData + 18] | backing[kData + 19] << 8, kFilestatModeFlag | kFilestatFifoFlag | 0600);
  EXPECT_EQ(ctx->FdFdstatGet(mem, w, kData), err::kSuccess);
  EXPECT_EQ(backing[kData], kFiletypeUnknown);
  // Non-blocking mode can be set and read back.
  EXPECT_EQ(ctx->FdFdstatSetFlags(mem, r, kFdflagNonblock), err::kSuccess);
  ASSERT_EQ(ctx->FdFdstatGet(mem, r, kData), err::kSuccess);
  Fdstat s;
  std::memcpy(&s, &backing[kData], sizeof s);
  EXPECT_EQ(s.flags, kFdflagNonblock);
}

TEST_F(PipeTest, EndOfFileAndBrokenPipe) {
  uint32_t r, w, n;
  Pipe(*ctx, &r, &w);
  std::memcpy(&backing[kData], "xy", 2);
  ASSERT_EQ(Write(*ctx, w, 2, &n), err::kSuccess);
  ASSERT_EQ(ctx->FdClose(mem, w), err::kSuccess);
  ASSERT_EQ(Read(*ctx, r, 10, &n), err::kSuccess);  // what was written, then end of file
  EXPECT_EQ(n, 2u);
  ASSERT_EQ(Read(*ctx, r, 10, &n), err::kSuccess);
  EXPECT_EQ(n, 0u);

  Pipe(*ctx, &r, &w);
  ASSERT_EQ(ctx->FdClose(mem, r), err::kSuccess);
  EXPECT_EQ(Write(*ctx, w, 1, &n), err::kPipe);
}

TEST_F(PipeTest, PollReportsDataSpaceAndHangup) {
  uint32_t r, w, n;
  Pipe(*ctx, &r, &w);
  std::memcpy(&backing[kData], "abc", 3);
  ASSERT_EQ(Write(*ctx, w, 3, &n), err::kSuccess);
  Subscription subs[2]{};
  subs[0].tag = kEventtypeFdRead;
  subs[0].u.fd = r;
  subs[1].tag = kEventtypeFdWrite;
  subs[1].u.fd = w;
  constexpr uint32_t kSubs = 4096, kEvents = 8192;
  std::memcpy(&backing[kSubs], subs, sizeof subs);
  ASSERT_EQ(ctx->PollOneoff(mem, kSubs, kEvents, 2, kOut), err::kSuccess);
  ASSERT_EQ(Get32(kOut), 2u);
  Event ev[2];
  std::memcpy(ev, &backing[kEvents], sizeof ev);
  EXPECT_EQ(ev[0].error, 0);
  EXPECT_EQ(ev[0].nbytes, 3u);
  EXPECT_EQ(ev[0].flags, 0);
  EXPECT_EQ(ev[1].error, 0);
  EXPECT_EQ(ev[1].nbytes, PipeBuffer::kCapacity - 3);
  // Drained: the read end is not ready; only a clock ends the wait.
  ASSERT_EQ(Read(*ctx, r, 10, &n), err::kSuccess);
  Subscription two[2]{};
  two[0].tag = kEventtypeFdRead;
  two[0].u.fd = r;
  two[1].userdata = 7;
  two[1].tag = kEventtypeClock;
  two[1].u.clock.id = kClockMonotonic;
  two[1].u.clock.timeout = 1000;
  std::memcpy(&backing[kSubs], two, sizeof two);
  ASSERT_EQ(ctx->PollOneoff(mem, kSubs, kEvents, 2, kOut), err::kSuccess);
  ASSERT_EQ(Get32(kOut), 1u);
  std::memcpy(ev, &backing[kEvents], sizeof ev[0]);
  EXPECT_EQ(ev[0].userdata, 7u);
  ASSERT_EQ(ctx->PollOneoff(mem, kSubs, kEvents, 1, kOut), err::kSuccess);  // no clock: no wait
  EXPECT_EQ(Get32(kOut), 0u);
  // A full pipe's write end is not ready either.
  ASSERT_EQ(Write(*ctx, w, 100000, &n), err::kSuccess);
  two[0].tag = kEventtypeFdWrite;
  two[0].u.fd = w;
  std::memcpy(&backing[kSubs], two, sizeof two);
  ASSERT_EQ(ctx->PollOneoff(mem, kSubs, kEvents, 1, kOut), err::kSuccess);
  EXPECT_EQ(Get32(kOut), 0u);
  // Closed write end: the read end hangs up (ready).
  ASSERT_EQ(ctx->FdClose(mem, w), err::kSuccess);
  std::memcpy(&backing[kSubs], subs, sizeof subs[0]);
  ASSERT_EQ(ctx->PollOneoff(mem, kSubs, kEvents, 1, kOut), err::kSuccess);
  ASSERT_EQ(Get32(kOut), 1u);
  std::memcpy(ev, &backing[kEvents], sizeof ev[0]);
  EXPECT_EQ(ev[0].flags, kEventrwflagHangup);
}

TEST_F(PipeTest, CopiesForForksAndCheckpointsHaveTheirOwnBytes) {
  uint32_t r, w, n;
  Pipe(*ctx, &r, &w);
  std::memcpy(&backing[kData], "abcd", 4);
  ASSERT_EQ(Write(*ctx, w, 4, &n), err::kSuccess);
  vfs::FileSystem::NodeMap map;
  auto fs2 = fs.Clone(&map);
  auto copy = Make(*fs2, 1024);
  copy->CopyStateFrom(*ctx, &map);
  // The copy reads its own bytes; the original still has all four.
  ASSERT_EQ(Read(*copy, r, 2, &n), err::kSuccess);
  EXPECT_EQ(n, 2u);
  // Its two ends share one buffer: a write in the copy is read in the copy only.
  std::memcpy(&backing[kData], "Z", 1);
  ASSERT_EQ(Write(*copy, w, 1, &n), err::kSuccess);
  ASSERT_EQ(Read(*copy, r, 10, &n), err::kSuccess);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(&backing[kData]), n), "cdZ");
  ASSERT_EQ(Read(*ctx, r, 10, &n), err::kSuccess);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(&backing[kData]), n), "abcd");
  // Closing the copy's write end is not closing the original's.
  ASSERT_EQ(copy->FdClose(mem, w), err::kSuccess);
  EXPECT_EQ(Read(*ctx, r, 1, &n), err::kAgain);
  // Saved sessions do not describe pipes.
  for (const auto& s : ctx->SaveFds()) {
    EXPECT_NE(s.fd, r);
    EXPECT_NE(s.fd, w);
  }
}

TEST_F(PipeTest, DupSharesTheOffsetAndOutlivesTheOriginal) {
  ASSERT_EQ(fs.WriteFile("/tmp/f", "0123456789"), vfs::Error::kOk);
  std::memcpy(&backing[kData], "tmp/f", 5);
  ASSERT_EQ(ctx->PathOpen(mem, 3, 0, kData, 5, 0, rights::kFdRead | rights::kFdSeek, 0, 0, kOut), err::kSuccess);
  const uint32_t fd = Get32(kOut);
  ASSERT_EQ(ctx->BrigFdDup(mem, fd, 0, kOut), err::kSuccess);
  const uint32_t copy = Get32(kOut);
  EXPECT_EQ(copy, fd + 1);  // the lowest free number
  uint32_t n;
  ASSERT_EQ(Read(*ctx, fd, 4, &n), err::kSuccess);
  ASSERT_EQ(Read(*ctx, copy, 2, &n), err::kSuccess);  // goes on where the other stopped
  EXPECT_EQ(std::string(reinterpret_cast<char*>(&backing[kData]), 2), "45");
  ASSERT_EQ(ctx->FdClose(mem, fd), err::kSuccess);
  ASSERT_EQ(Read(*ctx, copy, 10, &n), err::kSuccess);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(&backing[kData]), n), "6789");
  // min_fd: the lowest free number from there.
  ASSERT_EQ(ctx->BrigFdDup(mem, copy, 50, kOut), err::kSuccess);
  EXPECT_EQ(Get32(kOut), 50u);
  // dup2 onto an open descriptor replaces it; onto itself does nothing.
  ASSERT_EQ(ctx->BrigFdDup2(mem, 1, 50), err::kSuccess);
  std::memcpy(&backing[kData], "out", 3);
  ASSERT_EQ(Write(*ctx, 50, 3, &n), err::kSuccess);
  EXPECT_EQ(ctx->stdout_data(), "out");
  EXPECT_EQ(ctx->BrigFdDup2(mem, 50, 50), err::kSuccess);
}

TEST_F(PipeTest, DupRefusesBadDescriptorsPointersAndNumbers) {
  const size_t before = ctx->open_fd_count();
  for (uint32_t fd : {4u, 1023u, 1024u, 0x7FFFFFFFu, 0xFFFFFFFFu}) {
    EXPECT_EQ(ctx->BrigFdDup(mem, fd, 0, kOut), err::kBadF) << fd;
    EXPECT_EQ(ctx->BrigFdDup2(mem, fd, 10), err::kBadF) << fd;
  }
  for (uint32_t p : {kMemSize, kMemSize - 3, 0xFFFFFFFFu}) EXPECT_EQ(ctx->BrigFdDup(mem, 1, 0, p), err::kFault) << p;
  EXPECT_EQ(ctx->BrigFdDup(mem, 1, 1024, kOut), err::kInval);
  EXPECT_EQ(ctx->BrigFdDup(mem, 1, 0xFFFFFFFFu, kOut), err::kInval);
  EXPECT_EQ(ctx->BrigFdDup2(mem, 1, 1024), err::kBadF);
  EXPECT_EQ(ctx->BrigFdDup2(mem, 1, 0xFFFFFFFFu), err::kBadF);
  EXPECT_EQ(ctx->open_fd_count(), before);
}

TEST_F(PipeTest, DupCannotGrowTheTablePastItsBound) {
  vfs::FileSystem small_fs;
  auto c = Make(small_fs, 16);
  uint32_t n = 0;
  while (c->BrigFdDup(mem, 1, 0, kOut) == err::kSuccess) ++n;
  EXPECT_EQ(n, 12u);
  EXPECT_EQ(c->BrigFdDup(mem, 1, 0, kOut), err::kMFile);
  EXPECT_EQ(c->BrigFdDup(mem, 1, 15, kOut), err::kMFile);
  EXPECT_EQ(c->open_fd_count(), 16u);
  // Closing the duplicates leaves stdout open.
  for (uint32_t fd = 4; fd < 16; ++fd) ASSERT_EQ(c->FdClose(mem, fd), err::kSuccess);
  std::memcpy(&backing[kData], "k", 1);
  ASSERT_EQ(Write(*c, 1, 1, &n), err::kSuccess);
  EXPECT_EQ(c->stdout_data(), "k");
  EXPECT_EQ(c->open_fd_count(), 4u);
}

TEST_F(PipeTest, DuplicatesStayDuplicatesInCopies) {
  ASSERT_EQ(fs.WriteFile("/tmp/f", "abcdef"), vfs::Error::kOk);
  std::memcpy(&backing[kData], "tmp/f", 5);
  ASSERT_EQ(ctx->PathOpen(mem, 3, 0, kData, 5, 0, rights::kFdRead | rights::kFdSeek, 0, 0, kOut), err::kSuccess);
  const uint32_t fd = Get32(kOut);
  ASSERT_EQ(ctx->BrigFdDup(mem, fd, 0, kOut), err::kSuccess);
  const uint32_t copy = Get32(kOut);
  vfs::FileSystem::NodeMap map;
  auto fs2 = fs.Clone(&map);
  auto c = Make(*fs2, 1024);
  c->CopyStateFrom(*ctx, &map);
  uint32_t n;
  ASSERT_EQ(Read(*c, fd, 2, &n), err::kSuccess);
  ASSERT_EQ(Read(*c, copy, 2, &n), err::kSuccess);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(&backing[kData]), n), "cd");
  ASSERT_EQ(Read(*ctx, copy, 2, &n), err::kSuccess);  // the original's offset did not move
  EXPECT_EQ(std::string(reinterpret_cast<char*>(&backing[kData]), n), "ab");
}

// ---- eventfd

TEST_F(PipeTest, EventfdRefusesBadFlagsAndPointersAndOpensNothing) {
  for (uint32_t flags : {2u, 8u, 0x100u, 0xffffffffu}) EXPECT_EQ(ctx->BrigFdEventfd(mem, 0, flags, kOut), err::kInval) << flags;
  for (uint32_t out : {kMemSize, kMemSize - 3, 0xfffffffeu}) EXPECT_EQ(ctx->BrigFdEventfd(mem, 0, 0, out), err::kFault) << out;
  // Nothing was opened by the failures: the next descriptor is the first free one.
  ASSERT_EQ(ctx->BrigFdEventfd(mem, 7, WasiContext::kEventfdSemaphore | kFdflagNonblock, kOut), err::kSuccess);
  const uint32_t fd = Get32(kOut);
  ASSERT_EQ(ctx->BrigFdPipe(mem, kOut), err::kSuccess);
  EXPECT_EQ(Get32(kOut), fd + 1);
  // A full table: EMFILE.
  auto small = Make(fs, 4);
  EXPECT_EQ(small->BrigFdEventfd(mem, 0, 0, kOut), err::kMFile);
}

TEST_F(PipeTest, EventfdCountsWithinItsBounds) {
  ASSERT_EQ(ctx->BrigFdEventfd(mem, 5, 0, kOut), err::kSuccess);
  const uint32_t fd = Get32(kOut);
  uint32_t n;
  auto put = [&](uint64_t v) {
    std::memcpy(&backing[kData], &v, 8);
    return Write(*ctx, fd, 8, &n);
  };
  auto get = [&](uint64_t* v) {
    uint32_t e = Read(*ctx, fd, 8, &n);
    std::memcpy(v, &backing[kData], 8);
    return e;
  };
  uint64_t v = 0;
  ASSERT_EQ(get(&v), err::kSuccess);
  EXPECT_EQ(v, 5u);
  EXPECT_EQ(n, 8u);
  EXPECT_EQ(get(&v), err::kAgain);  // 0: would wait forever on Linux
  EXPECT_EQ(put(UINT64_MAX), err::kInval);
  ASSERT_EQ(put(UINT64_MAX - 1), err::kSuccess);  // the maximum
  EXPECT_EQ(put(1), err::kAgain);                 // past it
  EXPECT_EQ(Read(*ctx, fd, 7, &n), err::kInval);  // fewer than 8 bytes
  EXPECT_EQ(Write(*ctx, fd, 4, &n), err::kInval);
  // Buffers outside memory fault and change nothing.
  Iovec bad{kMemSize - 4, 8};
  std::memcpy(&backing[kIov], &bad, sizeof bad);
  EXPECT_EQ(ctx->FdRead(mem, fd, kIov, 1, kOut), err::kFault);
  EXPECT_EQ(ctx->FdWrite(mem, fd, kIov, 1, kOut), err::kFault);
  ASSERT_EQ(get(&v), err::kSuccess);
  EXPECT_EQ(v, UINT64_MAX - 1);
  // Eight bytes across two iovecs read as one value.
  uint64_t three = 3;
  std::memcpy(&backing[kData], &three, 8);
  Iovec two[2] = {{kData, 3}, {kData + 3, 5}};
  std::memcpy(&backing[kIov], two, sizeof two);
  ASSERT_EQ(ctx->FdWrite(mem, fd, kIov, 2, kOut), err::kSuccess);
  ASSERT_EQ(get(&v), err::kSuccess);
  EXPECT_EQ(v, 3u);
}

TEST_F(PipeTest, EventfdCopiesHaveTheirOwnCountAndAreNotSaved) {
  ASSERT_EQ(ctx->BrigFdEventfd(mem, 9, 0, kOut), err::kSuccess);
  const uint32_t fd = Get32(kOut);
  vfs::FileSystem::NodeMap map;
  auto fs2 = fs.Clone(&map);
  auto copy = Make(*fs2, 1024);
  copy->CopyStateFrom(*ctx, &map);
  uint32_t n;
  uint64_t v = 0;
  ASSERT_EQ(Read(*copy, fd, 8, &n), err::kSuccess);
  std::memcpy(&v, &backing[kData], 8);
  EXPECT_EQ(v, 9u);
  EXPECT_EQ(Read(*copy, fd, 8, &n), err::kAgain);
  ASSERT_EQ(Read(*ctx, fd, 8, &n), err::kSuccess);  // the original's count was not taken
  std::memcpy(&v, &backing[kData], 8);
  EXPECT_EQ(v, 9u);
  for (const auto& s : ctx->SaveFds()) EXPECT_NE(s.fd, fd);
}

}  // namespace
}  // namespace brig::wasi
