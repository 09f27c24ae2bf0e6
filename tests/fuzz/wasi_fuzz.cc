// Fuzz target: the WASI preview-1 imports (wasi::WasiContext, what wasi_imports.cc forwards
// every guest call to) over a fake guest memory. The input picks the memory's size and
// contents, then a sequence of calls with their arguments: pointers into the memory, at its
// end, past it or anywhere in the u32 range, lengths small or huge, descriptors open or not.
// Between calls the input may also poke bytes into memory (to build iovecs, paths and
// subscriptions), as a guest would.
//
// The memory is a heap block of exactly its size, so AddressSanitizer reports any access
// past it. After each call: the errno is a WASI errno, the captured output is within its cap,
// and the VFS quota counters agree with the tree (exactly once every descriptor is closed).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_vfs_check.h"
#include "vfs/file_system.h"
#include "wasi/wasi_context.h"

namespace {

using brig::wasi::GuestMemory;
using brig::wasi::WasiContext;
using u32 = uint32_t;
using u64 = uint64_t;

struct Args {
  FuzzedDataProvider& in;
  u32 size;

  u32 Ptr() {
    switch (in.ConsumeIntegralInRange(0, 7)) {
      case 0: return in.ConsumeIntegral<u32>();
      case 1: return size - in.ConsumeIntegralInRange<u32>(0, 64);  // near the end (may wrap)
      case 2: return size + in.ConsumeIntegralInRange<u32>(0, 64);  // just past it
      default: return in.ConsumeIntegralInRange<u32>(0, size);
    }
  }
  u32 Len() {
    switch (in.ConsumeIntegralInRange(0, 7)) {
      case 0: return in.ConsumeIntegral<u32>();
      case 1: return in.ConsumeIntegralInRange<u32>(0, size + 16);
      default: return in.ConsumeIntegralInRange<u32>(0, 64);
    }
  }
  u32 Fd() { return in.ConsumeIntegralInRange(0, 15) == 0 ? in.ConsumeIntegral<u32>() : in.ConsumeIntegralInRange<u32>(0, 9); }
  u32 Small() { return in.ConsumeIntegralInRange(0, 7) == 0 ? in.ConsumeIntegral<u32>() : in.ConsumeIntegralInRange<u32>(0, 31); }
  u64 Big() {
    switch (in.ConsumeIntegralInRange(0, 3)) {
      case 0: return in.ConsumeIntegral<u64>();
      case 1: return ~u64{0} - in.ConsumeIntegralInRange<u64>(0, 4096);
      default: return in.ConsumeIntegralInRange<u64>(0, 1 << 16);
    }
  }
  u64 Rights() { return in.ConsumeBool() ? ~u64{0} : in.ConsumeIntegral<u64>(); }
};

const std::shared_ptr<const brig::vfs::PackTree>& Stdlib() {
  static const std::string* bytes = new std::string(brig::vfs::BuildPack({{"os.py", "import sys\n"}, {"json/__init__.py", "#\n"}}));
  static const std::shared_ptr<const brig::vfs::PackTree> tree = brig::vfs::PackTree::Parse(*bytes, nullptr);
  return tree;
}

bool IsWasiErrno(u32 e) { return e <= 76; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  brig::vfs::FileSystem::Options fo;
  if (in.ConsumeBool()) {  // small limits, so that quotas are reached
    fo.limits.max_total_bytes = 1 << 14;
    fo.limits.max_file_size = 1 << 12;
    fo.limits.SetFileLimit(8);
    fo.limits.max_nodes = 16;
    fo.limits.max_path_length = 128;
    fo.limits.max_depth = 8;
  }
  fo.stdlib = Stdlib();
  auto fs_owner = std::make_unique<brig::vfs::FileSystem>(fo);
  uint64_t fake_now = 1;
  fs_owner->set_clock([&fake_now] { return fake_now++; });
  FUZZ_CHECK(fs_owner->WriteFile("/home/user/f", "contents") == brig::vfs::Error::kOk);
  FUZZ_CHECK(fs_owner->MakeDirs("/tmp/d/e") == brig::vfs::Error::kOk);

  WasiContext::Options o;
  o.args = {"python", "-c", "pass"};
  o.env = {"A=1", "HOME=/home/user"};
  o.sleep = [](uint64_t) {};
  o.stdout_cap = 1 << 10;
  o.stderr_cap = 1 << 10;
  o.max_fds = in.ConsumeBool() ? 16 : 1024;
  o.max_random_per_call = 1 << 12;
  o.deterministic = true;  // no host clock or entropy: runs replay exactly
  auto ctx_owner = std::make_unique<WasiContext>(*fs_owner, o);

  // Memory: 0..64 KiB, mostly whole pages; its start is filled from the input.
  u32 mem_size = in.ConsumeIntegralInRange<u32>(0, 16) * 4096;
  if (in.ConsumeIntegralInRange(0, 7) == 0) mem_size += in.ConsumeIntegralInRange<u32>(0, 4095);
  std::unique_ptr<uint8_t[]> backing(new uint8_t[mem_size ? mem_size : 1]());
  GuestMemory mem(mem_size ? backing.get() : nullptr, mem_size);

  // Two descriptors open before the input's calls: fd 4 the file, fd 5 a directory.
  if (mem_size >= 64) {
    std::memcpy(backing.get(), "home/user/f\0tmp/d", 17);
    u32 out = 32;
    (void)ctx_owner->PathOpen(mem, 3, 0, 0, 11, 0, ~u64{0}, ~u64{0}, 0, out);
    (void)ctx_owner->PathOpen(mem, 3, 0, 12, 5, brig::wasi::kOflagDirectory, ~u64{0}, ~u64{0}, 0, out);
  }
  {
    std::vector<uint8_t> init = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, mem_size));
    if (!init.empty()) std::memcpy(backing.get(), init.data(), init.size());
  }

  Args a{in, mem_size};
  for (int step = 0; step < 48 && in.remaining_bytes() > 0; ++step) {
    brig::vfs::FileSystem& fs = *fs_owner;
    WasiContext& ctx = *ctx_owner;
    u32 r = 0;
    switch (in.ConsumeIntegralInRange(0, 51)) {
      case 0: r = ctx.ArgsGet(mem, a.Ptr(), a.Ptr()); break;
      case 1: r = ctx.ArgsSizesGet(mem, a.Ptr(), a.Ptr()); break;
      case 2: r = ctx.EnvironGet(mem, a.Ptr(), a.Ptr()); break;
      case 3: r = ctx.EnvironSizesGet(mem, a.Ptr(), a.Ptr()); break;
      case 4: r = ctx.ClockResGet(mem, a.Small(), a.Ptr()); break;
      case 5: { u32 id = a.Small(); u64 p = a.Big(); r = ctx.ClockTimeGet(mem, id, p, a.Ptr()); break; }
      case 6: { u32 fd = a.Fd(); u64 off = a.Big(), len = a.Big(); r = ctx.FdAdvise(mem, fd, off, len, a.Small()); break; }
      case 7: { u32 fd = a.Fd(); u64 off = a.Big(); r = ctx.FdAllocate(mem, fd, off, a.Big()); break; }
      case 8: r = ctx.FdClose(mem, a.Fd()); break;
      case 9: r = ctx.FdDatasync(mem, a.Fd()); break;
      case 10: { u32 fd = a.Fd(); r = ctx.FdFdstatGet(mem, fd, a.Ptr()); break; }
      case 11: { u32 fd = a.Fd(); r = ctx.FdFdstatSetFlags(mem, fd, a.Small()); break; }
      case 12: { u32 fd = a.Fd(); u64 b = a.Rights(); r = ctx.FdFdstatSetRights(mem, fd, b, a.Rights()); break; }
      case 13: { u32 fd = a.Fd(); r = ctx.FdFilestatGet(mem, fd, a.Ptr()); break; }
      case 14: { u32 fd = a.Fd(); r = ctx.FdFilestatSetSize(mem, fd, a.Big()); break; }
      case 15: { u32 fd = a.Fd(); u64 at = a.Big(), mt = a.Big(); r = ctx.FdFilestatSetTimes(mem, fd, at, mt, a.Small()); break; }
      case 16: { u32 fd = a.Fd(), iovs = a.Ptr(), n = a.Len(); u64 off = a.Big(); r = ctx.FdPread(mem, fd, iovs, n, off, a.Ptr()); break; }
      case 17: { u32 fd = a.Fd(); r = ctx.FdPrestatGet(mem, fd, a.Ptr()); break; }
      case 18: { u32 fd = a.Fd(), p = a.Ptr(); r = ctx.FdPrestatDirName(mem, fd, p, a.Len()); break; }
      case 19: { u32 fd = a.Fd(), iovs = a.Ptr(), n = a.Len(); u64 off = a.Big(); r = ctx.FdPwrite(mem, fd, iovs, n, off, a.Ptr()); break; }
      case 20: { u32 fd = a.Fd(), iovs = a.Ptr(), n = a.Len(); r = ctx.FdRead(mem, fd, iovs, n, a.Ptr()); break; }
      case 21: { u32 fd = a.Fd(), buf = a.Ptr(), n = a.Len(); u64 cookie = a.Big(); r = ctx.FdReaddir(mem, fd, buf, n, cookie, a.Ptr()); break; }
      case 22: { u32 fd = a.Fd(); r = ctx.FdRenumber(mem, fd, a.Fd()); break; }
      case 23: { u32 fd = a.Fd(); u64 off = a.Big(); u32 wh = a.Small(); r = ctx.FdSeek(mem, fd, off, wh, a.Ptr()); break; }
      case 24: r = ctx.FdSync(mem, a.Fd()); break;
      case 25: { u32 fd = a.Fd(); r = ctx.FdTell(mem, fd, a.Ptr()); break; }
      case 26: { u32 fd = a.Fd(), iovs = a.Ptr(), n = a.Len(); r = ctx.FdWrite(mem, fd, iovs, n, a.Ptr()); break; }
      case 27: { u32 fd = a.Fd(), p = a.Ptr(); r = ctx.PathCreateDirectory(mem, fd, p, a.Len()); break; }
      case 28: { u32 fd = a.Fd(), fl = a.Small(), p = a.Ptr(), n = a.Len(); r = ctx.PathFilestatGet(mem, fd, fl, p, n, a.Ptr()); break; }
      case 29: {
        u32 fd = a.Fd(), fl = a.Small(), p = a.Ptr(), n = a.Len();
        u64 at = a.Big(), mt = a.Big();
        r = ctx.PathFilestatSetTimes(mem, fd, fl, p, n, at, mt, a.Small());
        break;
      }
      case 30: {
        u32 ofd = a.Fd(), ofl = a.Small(), op = a.Ptr(), on = a.Len(), nfd = a.Fd(), np = a.Ptr();
        r = ctx.PathLink(mem, ofd, ofl, op, on, nfd, np, a.Len());
        break;
      }
      case 31: {
        u32 fd = a.Fd(), dfl = a.Small(), p = a.Ptr(), n = a.Len(), ofl = a.Small();
        u64 rb = a.Rights(), ri = a.Rights();
        u32 fdfl = a.Small();
        r = ctx.PathOpen(mem, fd, dfl, p, n, ofl, rb, ri, fdfl, a.Ptr());
        break;
      }
      case 32: {
        u32 fd = a.Fd(), p = a.Ptr(), n = a.Len(), buf = a.Ptr(), bl = a.Len();
        r = ctx.PathReadlink(mem, fd, p, n, buf, bl, a.Ptr());
        break;
      }
      case 33: { u32 fd = a.Fd(), p = a.Ptr(); r = ctx.PathRemoveDirectory(mem, fd, p, a.Len()); break; }
      case 34: {
        u32 fd = a.Fd(), op = a.Ptr(), on = a.Len(), nfd = a.Fd(), np = a.Ptr();
        r = ctx.PathRename(mem, fd, op, on, nfd, np, a.Len());
        break;
      }
      case 35: {
        u32 op = a.Ptr(), on = a.Len(), fd = a.Fd(), np = a.Ptr();
        r = ctx.PathSymlink(mem, op, on, fd, np, a.Len());
        break;
      }
      case 36: { u32 fd = a.Fd(), p = a.Ptr(); r = ctx.PathUnlinkFile(mem, fd, p, a.Len()); break; }
      case 37: { u32 i = a.Ptr(), o_ = a.Ptr(), n = a.Len(); r = ctx.PollOneoff(mem, i, o_, n, a.Ptr()); break; }
      case 38: ctx.ProcExit(a.Small()); break;
      case 39: { u32 p = a.Ptr(); r = ctx.RandomGet(mem, p, a.Len()); break; }
      case 40: r = ctx.SchedYield(); break;
      case 41: { u32 fd = a.Fd(), fl = a.Small(); r = ctx.SockAccept(mem, fd, fl, a.Ptr()); break; }
      case 42: {
        u32 fd = a.Fd(), d = a.Ptr(), n = a.Len(), fl = a.Small(), o1 = a.Ptr();
        r = ctx.SockRecv(mem, fd, d, n, fl, o1, a.Ptr());
        break;
      }
      case 43: { u32 fd = a.Fd(), d = a.Ptr(), n = a.Len(), fl = a.Small(); r = ctx.SockSend(mem, fd, d, n, fl, a.Ptr()); break; }
      case 44: { u32 fd = a.Fd(); r = ctx.SockShutdown(mem, fd, a.Small()); break; }
      case 45: {  // poke a u32 into memory (iovec fields, lengths, pointers)
        u32 at = a.Ptr(), v = in.ConsumeBool() ? a.Ptr() : a.Len();
        (void)mem.Write(at, v);
        break;
      }
      case 46: {  // poke a string (a path)
        u32 at = a.Ptr();
        std::string s = in.ConsumeRandomLengthString(64);
        (void)mem.CopyOut(at, s.data(), s.size());
        break;
      }
      case 47: ctx.ClearOutput(); break;
      case 48: {  // a checkpoint: go on in a copy of the file system and the descriptors
        brig::vfs::FileSystem::NodeMap map;
        std::unique_ptr<brig::vfs::FileSystem> copy = fs.Clone(&map);
        copy->set_clock([&fake_now] { return fake_now++; });
        auto copy_ctx = std::make_unique<WasiContext>(*copy, o);
        copy_ctx->CopyStateFrom(ctx, &map);
        FUZZ_CHECK(copy_ctx->open_fd_count() == ctx.open_fd_count());
        ctx_owner = std::move(copy_ctx);  // the old context goes before its file system
        fs_owner = std::move(copy);
        break;
      }
      // brig's own calls (pipes and dup).
      case 49: r = ctx.BrigFdPipe(mem, a.Ptr()); break;
      case 50: { u32 fd = a.Fd(), min = a.Fd(); r = ctx.BrigFdDup(mem, fd, min, a.Ptr()); break; }
      case 51: { u32 fd = a.Fd(); r = ctx.BrigFdDup2(mem, fd, a.Fd()); break; }
    }
    brig::vfs::FileSystem& fs_now = *fs_owner;
    WasiContext& ctx_now = *ctx_owner;
    FUZZ_CHECK(IsWasiErrno(r), "errno %u", r);
    FUZZ_CHECK(ctx_now.stdout_data().size() <= o.stdout_cap && ctx_now.stderr_data().size() <= o.stderr_cap);
    FUZZ_CHECK(ctx_now.open_fd_count() <= ctx_now.options().max_fds);
    // Removed files still open are charged too: only lower bounds hold while any may be.
    const brig::fuzz::TreeCount c = brig::fuzz::CountTree(fs_now);
    if (!c.unlistable) {
      FUZZ_CHECK(fs_now.files_used() == c.files);
      FUZZ_CHECK(fs_now.nodes_used() >= c.nodes && fs_now.bytes_used() >= c.bytes);
    }
    FUZZ_CHECK(fs_now.nodes_used() <= fs_now.limits().max_nodes && fs_now.bytes_used() <= fs_now.limits().max_total_bytes);
  }
  brig::vfs::FileSystem& fs = *fs_owner;
  WasiContext& ctx = *ctx_owner;
  // Saved descriptors describe open files by path; restoring them must be safe too.
  std::vector<WasiContext::SavedFd> saved = ctx.SaveFds();
  for (u32 fd = 0; fd < ctx.options().max_fds; ++fd) (void)ctx.FdClose(mem, fd);
  FUZZ_CHECK(ctx.open_fd_count() == 0, "%zu descriptors left", ctx.open_fd_count());
  brig::fuzz::CheckQuota(fs, {});
  (void)ctx.RestoreFds(saved);
  return 0;
}
