#include "wasi/wasi_context.h"

#include <map>

#include <sched.h>
#include <sys/random.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <new>

namespace brig::wasi {
namespace {

constexpr uint32_t kMaxIovecs = 1024;                // like Linux IOV_MAX: EINVAL above
constexpr uint64_t kMaxTransfer = 0x7ffff000;        // per call, like Linux MAX_RW_COUNT
constexpr uint32_t kMaxSubscriptions = 4096;         // poll_oneoff: EINVAL above
constexpr std::string_view kPreopenName = "/";

// Runs one call; nothing may unwind into the wasm2c-generated C frames above us.
template <typename F>
uint32_t Guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return err::kNoMem;
  } catch (...) {
    return err::kIo;
  }
}

uint64_t ClockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void DefaultSleep(uint64_t ns) {
  timespec req{static_cast<time_t>(ns / 1000000000ull), static_cast<long>(ns % 1000000000ull)};
  timespec rem{};
  while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
}

uint8_t Filetype(vfs::NodeType type) {
  switch (type) {
    case vfs::NodeType::kDirectory: return kFiletypeDirectory;
    case vfs::NodeType::kFile: return kFiletypeRegularFile;
    case vfs::NodeType::kNullDevice: return kFiletypeCharacterDevice;
    case vfs::NodeType::kFifo: return kFiletypeUnknown;  // WASI has no FIFO type (kFilestatFifoFlag)
  }
  return kFiletypeUnknown;
}

uint8_t Filetype(const vfs::Node& n) { return Filetype(n.type); }

Filestat ToFilestat(const HostMount& mount, const HostMount::FileStat& st) {
  Filestat s{};
  s.dev = mount.dev();
  s.ino = st.ino;
  s.filetype = st.is_dir ? kFiletypeDirectory : kFiletypeRegularFile;
  s.nlink = st.nlink;
  s.size = st.size;
  s.atim = st.atim;
  s.mtim = st.mtim;
  s.ctim = st.ctim;
  return s;
}

// futimens(2) values for a WASI set-times call (flags already checked).
void HostTimes(uint64_t atim, uint64_t mtim, uint32_t fst, int64_t* a, int64_t* m) {
  *a = (fst & kFstflagAtimNow) ? UTIME_NOW : (fst & kFstflagAtim) ? static_cast<int64_t>(atim) : UTIME_OMIT;
  *m = (fst & kFstflagMtimNow) ? UTIME_NOW : (fst & kFstflagMtim) ? static_cast<int64_t>(mtim) : UTIME_OMIT;
}

uint64_t HostSize(int fd) {
  HostMount::FileStat st;
  return HostMount::StatFd(fd, &st) == err::kSuccess ? st.size : 0;
}

// The absolute path of a VFS node as components ("" for the root), from the names under
// which each ancestor holds the next; false for a node no longer in the tree.
bool NodeComponents(const vfs::Node* n, std::vector<std::string>* out) {
  out->clear();
  for (const vfs::Node* c = n; c->parent; c = c->parent) {
    bool named = false;
    for (const auto& [name, child] : c->parent->children) {
      if (child.get() == c) {
        out->emplace_back(name);
        named = true;
        break;
      }
    }
    if (!named) return false;
  }
  std::reverse(out->begin(), out->end());
  return true;
}


}  // namespace

uint32_t ToWasiErrno(vfs::Error e) {
  using vfs::Error;
  switch (e) {
    case Error::kOk: return err::kSuccess;
    case Error::kNoEnt: return err::kNoEnt;
    case Error::kExist: return err::kExist;
    case Error::kNotDir: return err::kNotDir;
    case Error::kIsDir: return err::kIsDir;
    case Error::kNotEmpty: return err::kNotEmpty;
    case Error::kRoFs: return err::kRoFs;
    case Error::kXDev: return err::kXDev;
    case Error::kInval: return err::kInval;
    case Error::kNoSpc: return err::kNoSpc;
    case Error::kFBig: return err::kFBig;
    case Error::kNameTooLong: return err::kNameTooLong;
    case Error::kPerm: return err::kPerm;
    case Error::kBusy: return err::kBusy;
    case Error::kBadF: return err::kBadF;
    case Error::kNoMem: return err::kNoMem;
    case Error::kIlSeq: return err::kIlSeq;
    case Error::kAcces: return err::kAcces;
    case Error::kNoData: return err::kNoData;
    case Error::kRange: return err::kRange;
    case Error::kTooBig: return err::k2Big;
    case Error::kNotSup: return err::kNotSup;
    case Error::kNxio: return err::kNxio;
  }
  return err::kIo;
}

struct WasiContext::Fd {
  // kPipeRead/kPipeWrite: the ends of a pipe (BrigFdPipe); kEventfd: an eventfd
  // (BrigFdEventfd). Like stdio, they have no node.
  enum class Kind { kStdin, kStdout, kStderr, kFile, kDir, kPipeRead, kPipeWrite, kEventfd };
  Kind kind;
  std::shared_ptr<PipeBuffer> pipe;  // kPipeRead / kPipeWrite
  std::shared_ptr<EventCounter> counter;  // kEventfd
  vfs::NodeRef node;  // kFile / kDir
  uint64_t offset = 0;
  uint16_t fdflags = 0;
  uint64_t rights_base = 0;
  uint64_t rights_inheriting = 0;
  bool preopen = false;
  std::shared_ptr<HostHandle> host;  // a file or directory in a host mount (node is null)
  // fd_readdir's listing, taken at cookie 0 so cookies stay stable across calls.
  std::vector<vfs::DirEntry> listing;
  bool listing_valid = false;

  // Not a file or directory: stdio or a pipe end (not seekable, no node).
  bool stdio() const { return kind != Kind::kFile && kind != Kind::kDir; }
  bool readable() const { return rights_base & rights::kFdRead; }
  bool writable() const { return rights_base & rights::kFdWrite; }
};

WasiContext::WasiContext(vfs::FileSystem& fs, Options options)
    : fs_(fs),
      options_(std::move(options)),
      stdout_(options_.stdout_cap),
      stderr_(options_.stderr_cap),
      created_ns_(ClockNs(CLOCK_MONOTONIC)) {
  if (options_.max_fds < 4) options_.max_fds = 4;
  fake_random_ = options_.random_seed;
  auto stdio = [](Fd::Kind k, uint64_t r) {
    auto f = std::make_unique<Fd>();
    f->kind = k;
    f->rights_base = r;
    return f;
  };
  fds_.push_back(stdio(Fd::Kind::kStdin, rights::kStdio & ~rights::kFdWrite));
  fds_.push_back(stdio(Fd::Kind::kStdout, rights::kStdio & ~rights::kFdRead));
  fds_.push_back(stdio(Fd::Kind::kStderr, rights::kStdio & ~rights::kFdRead));
  auto root = std::make_unique<Fd>();
  root->kind = Fd::Kind::kDir;
  root->node = fs_.root();
  root->rights_base = rights::kAll;
  root->rights_inheriting = rights::kAll;
  root->preopen = true;
  fds_.push_back(std::move(root));
}

WasiContext::~WasiContext() = default;

void WasiContext::ClearOutput() {
  stdout_.Clear();
  stderr_.Clear();
}

size_t WasiContext::open_fd_count() const {
  size_t n = 0;
  for (const auto& f : fds_) n += f != nullptr;
  return n;
}

WasiContext::Fd* WasiContext::GetFd(u32 fd) { return fd < fds_.size() ? fds_[fd].get() : nullptr; }

uint64_t WasiContext::MonotonicNs() const { return ClockNs(CLOCK_MONOTONIC); }

uint64_t WasiContext::ClockNow(u32 id) {
  uint64_t now;
  if (options_.deterministic) {
    constexpr uint64_t kFixedEpochNs = 1'700'000'000'000'000'000ull;  // 2023-11-14
    fake_clock_ns_ += 1000;
    now = id == kClockRealtime ? kFixedEpochNs + fake_clock_ns_ : fake_clock_ns_;
  } else {
    switch (id) {
      case kClockRealtime: now = ClockNs(CLOCK_REALTIME); break;
      case kClockMonotonic: now = ClockNs(CLOCK_MONOTONIC); break;
      default: now = MonotonicNs() - created_ns_;  // process and thread CPU time
    }
  }
  return tape_ ? tape_->Value(now) : now;
}

void WasiContext::CopyStateFrom(const WasiContext& other, vfs::FileSystem::NodeMap* map) {
  std::vector<std::shared_ptr<Fd>> fds;
  fds.reserve(other.fds_.size());
  // A pipe's bytes are copied once, and both ends in the copy share that copy; descriptors
  // that share one Fd (brig_fd_dup) share its copy.
  std::map<const PipeBuffer*, std::shared_ptr<PipeBuffer>> pipes;
  std::map<const EventCounter*, std::shared_ptr<EventCounter>> counters;
  std::map<const Fd*, std::shared_ptr<Fd>> copies;
  for (const auto& f : other.fds_) {
    if (!f) {
      fds.push_back(nullptr);
      continue;
    }
    if (f->host && std::find(options_.mounts.begin(), options_.mounts.end(), f->host->mount) ==
                       options_.mounts.end()) {
      fds.push_back(nullptr);  // a mount this copy does not have (a fork): closed in it
      continue;
    }
    if (auto it = copies.find(f.get()); it != copies.end()) {
      fds.push_back(it->second);
      continue;
    }
    auto copy = std::make_shared<Fd>(*f);
    copies[f.get()] = copy;
    if (!f->host) copy->node = fs_.CopyOf(f->node, map);
    if (f->pipe) {
      auto& mine = pipes[f->pipe.get()];
      if (!mine) mine = std::make_shared<PipeBuffer>(*f->pipe);
      copy->pipe = mine;
    }
    if (f->counter) {
      auto& mine = counters[f->counter.get()];
      if (!mine) mine = std::make_shared<EventCounter>(*f->counter);
      copy->counter = mine;
    }
    fds.push_back(std::move(copy));
  }
  fds_ = std::move(fds);
  created_ns_ = other.created_ns_;
  exit_code_ = other.exit_code_;
  fake_clock_ns_ = other.fake_clock_ns_;
  fake_random_ = other.fake_random_;
}

WasiContext::u32 WasiContext::AllocateFd(std::shared_ptr<Fd> entry, u32* out) {
  for (u32 i = 0; i < fds_.size(); ++i) {
    if (!fds_[i]) {
      fds_[i] = std::move(entry);
      *out = i;
      return err::kSuccess;
    }
  }
  if (fds_.size() >= options_.max_fds) return err::kMFile;
  fds_.push_back(std::move(entry));
  *out = static_cast<u32>(fds_.size() - 1);
  return err::kSuccess;
}

WasiContext::u32 WasiContext::ReadPath(GuestMemory& m, u32 ptr, u32 len, std::string* out) {
  return m.ReadString(ptr, len, fs_.limits().max_path_length, out);
}

WasiContext::u32 WasiContext::DirFd(u32 fd, vfs::NodeRef* dir) {
  Fd* f = GetFd(fd);
  if (!f) return err::kBadF;
  if (f->kind != Fd::Kind::kDir) return err::kNotDir;
  *dir = f->node;
  return err::kSuccess;
}

HostHandle* WasiContext::Host(u32 fd) {
  Fd* f = GetFd(fd);
  return f ? f->host.get() : nullptr;
}

WasiContext::u32 WasiContext::Resolve(GuestMemory& m, u32 fd, u32 ptr, u32 len, Target* t) {
  Fd* f = GetFd(fd);
  if (!f) return err::kBadF;
  if (f->kind != Fd::Kind::kDir) return err::kNotDir;
  if (u32 e = ReadPath(m, ptr, len, &t->path)) return e;
  if (f->host) {
    t->mount = f->host->mount;
    t->host_dir = f->host->fd;
    return err::kSuccess;
  }
  t->dir = f->node;
  if (options_.mounts.empty()) return err::kSuccess;
  // Walk the path lexically from the directory's own absolute path (the VFS has no links, so
  // this is where the VFS would go); at a mount point the rest is the mount's to resolve.
  std::vector<std::string> at;
  if (!NodeComponents(f->node.get(), &at)) return err::kSuccess;
  const std::string_view p = t->path;
  size_t i = 0;
  if (!p.empty() && p[0] == '/') at.clear();
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view c = p.substr(i, j - i);
    i = j + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!at.empty()) at.pop_back();
      continue;
    }
    at.emplace_back(c);
    std::string joined;
    for (const auto& a : at) joined += "/" + a;
    for (const auto& mount : options_.mounts) {
      if (mount->guest_dir() != joined) continue;
      t->mount = mount;
      t->host_dir = mount->root_fd();
      t->dir.reset();
      // The rest, relative to the mount's root ("a//b" is "a/b" there too).
      const size_t rest = i <= p.size() ? p.find_first_not_of('/', i) : std::string_view::npos;
      t->path = rest == std::string_view::npos ? "." : std::string(p.substr(rest));
      return err::kSuccess;
    }
  }
  return err::kSuccess;
}

WasiContext::u32 WasiContext::ReadIovecs(GuestMemory& m, u32 iovs, u32 iovs_len, std::vector<Iovec>* out) {
  if (iovs_len > kMaxIovecs) return err::kInval;
  if (!m.ArrayInBounds<Iovec>(iovs, iovs_len)) return err::kFault;
  out->resize(iovs_len);
  if (!m.CopyIn(iovs, out->data(), uint64_t{iovs_len} * sizeof(Iovec))) return err::kFault;
  for (const Iovec& v : *out) {
    if (!m.InBounds(v.buf, v.buf_len)) return err::kFault;
  }
  return err::kSuccess;
}

// ---- args / environ

namespace {

uint32_t SizesGet(GuestMemory& m, const std::vector<std::string>& list, uint32_t count_out, uint32_t size_out) {
  if (!m.InBounds(count_out, 4) || !m.InBounds(size_out, 4)) return err::kFault;
  uint64_t total = 0;
  for (const auto& s : list) total += s.size() + 1;
  if (total > UINT32_MAX) return err::kOverflow;
  if (!m.Write<uint32_t>(count_out, static_cast<uint32_t>(list.size())) ||
      !m.Write<uint32_t>(size_out, static_cast<uint32_t>(total)))
    return err::kFault;
  return err::kSuccess;
}

uint32_t ListGet(GuestMemory& m, const std::vector<std::string>& list, uint32_t ptrs, uint32_t buf) {
  uint64_t total = 0;
  for (const auto& s : list) total += s.size() + 1;
  if (!m.ArrayInBounds<uint32_t>(ptrs, list.size()) || !m.InBounds(buf, total)) return err::kFault;
  uint64_t off = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    // buf + off < size <= 2^32: fits in u32.
    if (!m.Write<uint32_t>(ptrs + 4ull * i, static_cast<uint32_t>(buf + off)) ||
        !m.CopyOut(buf + off, list[i].c_str(), list[i].size() + 1))
      return err::kFault;
    off += list[i].size() + 1;
  }
  return err::kSuccess;
}

}  // namespace

WasiContext::u32 WasiContext::ArgsGet(GuestMemory& m, u32 argv, u32 argv_buf) {
  return Guarded([&] { return ListGet(m, options_.args, argv, argv_buf); });
}
WasiContext::u32 WasiContext::ArgsSizesGet(GuestMemory& m, u32 argc_out, u32 size_out) {
  return Guarded([&] { return SizesGet(m, options_.args, argc_out, size_out); });
}
WasiContext::u32 WasiContext::EnvironGet(GuestMemory& m, u32 environ, u32 environ_buf) {
  return Guarded([&] { return ListGet(m, options_.env, environ, environ_buf); });
}
WasiContext::u32 WasiContext::EnvironSizesGet(GuestMemory& m, u32 count_out, u32 size_out) {
  return Guarded([&] { return SizesGet(m, options_.env, count_out, size_out); });
}

// ---- clocks, random, sched

WasiContext::u32 WasiContext::ClockResGet(GuestMemory& m, u32 id, u32 res_out) {
  return Guarded([&]() -> u32 {
    if (id > kClockThreadCputime) return err::kInval;
    timespec ts{};
    clock_getres(id == kClockRealtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
    uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
    if (ns == 0) ns = 1;
    return m.Write<uint64_t>(res_out, ns) ? err::kSuccess : err::kFault;
  });
}

WasiContext::u32 WasiContext::ClockTimeGet(GuestMemory& m, u32 id, u64 /*precision*/, u32 time_out) {
  return Guarded([&]() -> u32 {
    if (id != kClockRealtime && id != kClockMonotonic && id != kClockProcessCputime &&
        id != kClockThreadCputime) {
      return err::kInval;
    }
    return m.Write<uint64_t>(time_out, ClockNow(id)) ? err::kSuccess : err::kFault;
  });
}

WasiContext::u32 WasiContext::RandomGet(GuestMemory& m, u32 buf, u32 buf_len) {
  return Guarded([&]() -> u32 {
    if (buf_len > options_.max_random_per_call) return err::kInval;
    auto view = m.View(buf, buf_len);
    if (!view) return err::kFault;
    if (options_.deterministic) {
      for (size_t i = 0; i < view->size(); i++) {  // splitmix64, one byte per step
        uint64_t z = (fake_random_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        view->data()[i] = static_cast<uint8_t>(z ^ (z >> 31));
      }
      if (tape_) tape_->Bytes(view->data(), view->size());
      return err::kSuccess;
    }
    size_t done = 0;
    while (done < view->size()) {
      ssize_t r = getrandom(view->data() + done, view->size() - done, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        return err::kIo;
      }
      done += static_cast<size_t>(r);
    }
    if (tape_) tape_->Bytes(view->data(), view->size());
    return err::kSuccess;
  });
}

WasiContext::u32 WasiContext::SchedYield() {
  sched_yield();
  return err::kSuccess;
}

void WasiContext::ProcExit(u32 code) noexcept { exit_code_ = code; }

// ---- descriptors

WasiContext::u32 WasiContext::FdAdvise(GuestMemory&, u32 fd, u64, u64, u32 advice) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    if (advice > kAdviceMax) return err::kInval;
    if (f->stdio()) return err::kSPipe;
    return err::kSuccess;
  });
}

WasiContext::u32 WasiContext::FdAllocate(GuestMemory&, u32 fd, u64 offset, u64 len) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    if (f->kind != Fd::Kind::kFile || !f->writable()) return err::kBadF;
    if (f->host) {
      if (len > UINT64_MAX - offset) return err::kFBig;
      if (HostSize(f->host->fd) >= offset + len) return err::kSuccess;
      return f->host->mount->Truncate(f->host->fd, offset + len);
    }
    return ToWasiErrno(fs_.Allocate(f->node, offset, len));
  });
}

WasiContext::u32 WasiContext::FdClose(GuestMemory&, u32 fd) {
  return Guarded([&]() -> u32 {
    if (!GetFd(fd)) return err::kBadF;
    fds_[fd].reset();
    return err::kSuccess;
  });
}

WasiContext::u32 WasiContext::FdDatasync(GuestMemory&, u32 fd) { return GetFd(fd) ? err::kSuccess : err::kBadF; }
WasiContext::u32 WasiContext::FdSync(GuestMemory&, u32 fd) { return GetFd(fd) ? err::kSuccess : err::kBadF; }

// stdio is a pipe to the host, not a terminal: as a character device without seek rights it
// would make isatty() true, and guest programs would print terminal control codes and
// line-buffer their output. WASI has no pipe type; "unknown" is what a pipe looks like.
constexpr uint8_t kStdioFiletype = kFiletypeUnknown;

WasiContext::u32 WasiContext::FdFdstatGet(GuestMemory& m, u32 fd, u32 stat_out) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    Fdstat s{};
    s.filetype = f->stdio()  ? kStdioFiletype
                 : f->host ? (f->host->is_dir ? kFiletypeDirectory : kFiletypeRegularFile)
                           : Filetype(*f->node);
    s.flags = f->fdflags;
    s.rights_base = f->rights_base;
    s.rights_inheriting = f->rights_inheriting;
    return m.Write(stat_out, s) ? err::kSuccess : err::kFault;
  });
}

WasiContext::u32 WasiContext::FdFdstatSetFlags(GuestMemory&, u32 fd, u32 flags) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    if (flags & ~u32{kFdflagsAll}) return err::kInval;
    f->fdflags = static_cast<uint16_t>(flags);
    return err::kSuccess;
  });
}

WasiContext::u32 WasiContext::FdFdstatSetRights(GuestMemory&, u32 fd, u64 base, u64 inheriting) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    if ((base & ~f->rights_base) || (inheriting & ~f->rights_inheriting)) return err::kNotCapable;
    f->rights_base = base;
    f->rights_inheriting = inheriting;
    return err::kSuccess;
  });
}

WasiContext::u32 WasiContext::WriteFilestat(GuestMemory& m, const Fd* f, const vfs::NodeRef& node, u32 out) {
  Filestat s{};
  if (f && f->host) {
    HostMount::FileStat st;
    if (u32 e = HostMount::StatFd(f->host->fd, &st)) return e;
    s = ToFilestat(*f->host->mount, st);
  } else if (f && f->stdio() && !f->node) {
    s.filetype = kStdioFiletype;
    if (f->pipe) {
      const uint16_t mode = kFilestatModeFlag | kFilestatFifoFlag | 0600;  // Linux's pipe(2): 0600
      s.pad[1] = static_cast<uint8_t>(mode);
      s.pad[2] = static_cast<uint8_t>(mode >> 8);
    }
  } else {
    vfs::Stat st = vfs::FileSystem::GetStat(*node);
    s.dev = st.dev;
    s.ino = st.ino;
    s.filetype = Filetype(*node);
    s.nlink = st.nlink;
    s.size = st.size;
    s.atim = st.atime_ns;
    s.mtim = st.mtime_ns;
    s.ctim = st.ctime_ns;
    uint16_t mode = kFilestatModeFlag | static_cast<uint16_t>(st.mode & 07777);
    if (node->type == vfs::NodeType::kFifo) mode |= kFilestatFifoFlag;
    s.pad[1] = static_cast<uint8_t>(mode);
    s.pad[2] = static_cast<uint8_t>(mode >> 8);
  }
  return m.Write(out, s) ? err::kSuccess : err::kFault;
}

WasiContext::u32 WasiContext::FdFilestatGet(GuestMemory& m, u32 fd, u32 stat_out) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    return WriteFilestat(m, f, f->node, stat_out);
  });
}

WasiContext::u32 WasiContext::FdFilestatSetSize(GuestMemory&, u32 fd, u64 size) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    if (f->kind != Fd::Kind::kFile || !f->writable()) return err::kInval;
    if (f->host) return f->host->mount->Truncate(f->host->fd, size);
    return ToWasiErrno(fs_.Truncate(f->node, size));
  });
}

namespace {
uint32_t CheckTimeFlags(uint32_t fst) {
  if (fst & ~uint32_t{kFstflagsAll}) return err::kInval;
  if (((fst & kFstflagAtim) && (fst & kFstflagAtimNow)) || ((fst & kFstflagMtim) && (fst & kFstflagMtimNow)))
    return err::kInval;
  return err::kSuccess;
}

// Bytes the iovecs (already checked by ReadIovecs) name in all.
uint64_t TotalLength(const std::vector<Iovec>& iov) {
  uint64_t n = 0;
  for (const Iovec& v : iov) n += v.buf_len;
  return n;
}

// An eventfd's 8 bytes (native order) to or from the first 8 bytes the iovecs name.
// REQUIRES: TotalLength(iov) >= 8.
uint32_t CopyEventfdValue(GuestMemory& m, const std::vector<Iovec>& iov, uint64_t* value, bool to_guest) {
  uint8_t bytes[8];
  if (to_guest) std::memcpy(bytes, value, 8);
  uint64_t done = 0;
  for (const Iovec& v : iov) {
    const uint64_t n = std::min<uint64_t>(v.buf_len, 8 - done);
    if (n == 0) continue;
    auto span = m.View(v.buf, n);
    if (!span) return err::kFault;
    if (to_guest) {
      std::memcpy(span->data(), bytes + done, n);
    } else {
      std::memcpy(bytes + done, span->data(), n);
    }
    done += n;
    if (done == 8) break;
  }
  if (!to_guest) std::memcpy(value, bytes, 8);
  return err::kSuccess;
}
}  // namespace

WasiContext::u32 WasiContext::SetTimes(const vfs::NodeRef& node, u64 atim, u64 mtim, u32 fst) {
  if (u32 e = CheckTimeFlags(fst)) return e;
  const uint64_t now = tape_ ? tape_->Value(vfs::NowNs()) : vfs::NowNs();
  std::optional<uint64_t> a, mt;
  if (fst & kFstflagAtimNow) a = now;
  if (fst & kFstflagAtim) a = atim;
  if (fst & kFstflagMtimNow) mt = now;
  if (fst & kFstflagMtim) mt = mtim;
  return ToWasiErrno(fs_.SetTimes(node, a, mt));
}

WasiContext::u32 WasiContext::FdFilestatSetTimes(GuestMemory&, u32 fd, u64 atim, u64 mtim, u32 fst) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    if (f->stdio()) return (fst & ~u32{kFstflagsAll}) ? err::kInval : err::kSuccess;
    if (f->host) {
      if (u32 e = CheckTimeFlags(fst)) return e;
      int64_t a, mt;
      HostTimes(atim, mtim, fst, &a, &mt);
      return f->host->mount->SetTimesFd(f->host->fd, a, mt);
    }
    return SetTimes(f->node, atim, mtim, fst);
  });
}

WasiContext::u32 WasiContext::DoRead(GuestMemory& m, Fd& f, u32 iovs, u32 iovs_len, std::optional<u64> offset,
                                     u32 nread_out) {
  if (!m.InBounds(nread_out, 4)) return err::kFault;
  if (f.kind == Fd::Kind::kDir) return err::kIsDir;
  if (!f.readable() || f.kind == Fd::Kind::kStdout || f.kind == Fd::Kind::kStderr ||
      f.kind == Fd::Kind::kPipeWrite)
    return err::kBadF;
  if (offset && f.stdio()) return err::kSPipe;
  std::vector<Iovec> iov;
  if (u32 e = ReadIovecs(m, iovs, iovs_len, &iov)) return e;
  uint64_t total = 0;
  if (f.kind == Fd::Kind::kEventfd) {
    // Linux's eventfd read: 8 bytes (native order), the count (1 in semaphore mode), which
    // goes to 0 (down by 1); EINVAL for a smaller buffer; at 0, EAGAIN at once in both modes,
    // as for pipes (nothing else could ever raise it while the guest waits).
    if (TotalLength(iov) < 8) return err::kInval;
    EventCounter& c = *f.counter;
    if (c.value == 0) return err::kAgain;
    uint64_t v = c.semaphore ? 1 : c.value;
    if (u32 e = CopyEventfdValue(m, iov, &v, /*to_guest=*/true)) return e;
    c.value -= v;
    total = 8;
  } else if (f.kind == Fd::Kind::kPipeRead) {
    PipeBuffer& p = *f.pipe;
    const uint64_t wanted = TotalLength(iov);
    // Empty with a writer open: no other thread or process could ever fill it, so a blocking
    // read would wait forever; both modes answer EAGAIN (BlockingIOError) at once instead.
    if (p.bytes.empty() && wanted > 0 && PipeEndOpen(f.pipe.get(), /*write_end=*/true)) return err::kAgain;
    for (const Iovec& v : iov) {
      const uint64_t n = std::min<uint64_t>(v.buf_len, p.bytes.size());
      if (n == 0) break;
      auto span = m.View(v.buf, n);
      if (!span) return err::kFault;
      std::copy_n(p.bytes.begin(), n, span->data());
      p.bytes.erase(p.bytes.begin(), p.bytes.begin() + static_cast<std::ptrdiff_t>(n));
      total += n;
    }
  } else if (f.host) {
    uint64_t pos = offset ? *offset : f.offset;
    for (const Iovec& v : iov) {
      uint64_t want = std::min<uint64_t>(v.buf_len, kMaxTransfer - total);
      auto span = m.View(v.buf, want);
      if (!span) return err::kFault;
      size_t n = 0;
      if (u32 e = HostMount::Read(f.host->fd, pos, span->data(), span->size(), &n)) {
        if (total == 0) return e;
        break;
      }
      pos += n;
      total += n;
      if (n < want || total >= kMaxTransfer) break;
    }
    if (!offset) f.offset = pos;
  } else if (f.kind == Fd::Kind::kFile) {
    uint64_t pos = offset ? *offset : f.offset;
    for (const Iovec& v : iov) {
      uint64_t want = std::min<uint64_t>(v.buf_len, kMaxTransfer - total);
      auto span = m.View(v.buf, want);
      if (!span) return err::kFault;
      size_t n = vfs::FileSystem::Read(*f.node, pos, *span);
      pos += n;
      total += n;
      if (n < want || total >= kMaxTransfer) break;
    }
    if (!offset) f.offset = pos;
  }  // stdin: always at end of file
  return m.Write<uint32_t>(nread_out, static_cast<uint32_t>(total)) ? err::kSuccess : err::kFault;
}

WasiContext::u32 WasiContext::DoWrite(GuestMemory& m, Fd& f, u32 iovs, u32 iovs_len, std::optional<u64> offset,
                                      u32 nwritten_out) {
  if (!m.InBounds(nwritten_out, 4)) return err::kFault;
  if (f.kind == Fd::Kind::kDir) return err::kIsDir;
  if (!f.writable() || f.kind == Fd::Kind::kStdin || f.kind == Fd::Kind::kPipeRead) return err::kBadF;
  if (offset && f.stdio()) return err::kSPipe;
  std::vector<Iovec> iov;
  if (u32 e = ReadIovecs(m, iovs, iovs_len, &iov)) return e;
  uint64_t total = 0;
  if (f.kind == Fd::Kind::kEventfd) {
    // Linux's eventfd write: 8 bytes added to the count; EINVAL for fewer or for
    // 0xffffffffffffffff; EAGAIN (at once, see DoRead) when the count would pass its maximum,
    // 0xfffffffffffffffe.
    if (TotalLength(iov) < 8) return err::kInval;
    uint64_t v = 0;
    if (u32 e = CopyEventfdValue(m, iov, &v, /*to_guest=*/false)) return e;
    if (v == UINT64_MAX) return err::kInval;
    EventCounter& c = *f.counter;
    if (v > EventCounter::kMax - c.value) return err::kAgain;
    c.value += v;
    total = 8;
  } else if (f.kind == Fd::Kind::kPipeWrite) {
    PipeBuffer& p = *f.pipe;
    // No reader: EPIPE, as Linux (CPython ignores SIGPIPE, so BrokenPipeError).
    if (!PipeEndOpen(f.pipe.get(), /*write_end=*/false)) return err::kPipe;
    const uint64_t wanted = TotalLength(iov);
    // Full: nothing could drain it while the guest waits, so EAGAIN in both modes (see
    // DoRead); otherwise a short write of what fits, as a non-blocking Linux pipe.
    if (p.space() == 0 && wanted > 0) return err::kAgain;
    for (const Iovec& v : iov) {
      const uint64_t n = std::min<uint64_t>(v.buf_len, p.space());
      if (n == 0) break;
      auto span = m.View(v.buf, n);
      if (!span) return err::kFault;
      p.bytes.insert(p.bytes.end(), span->data(), span->data() + n);
      total += n;
    }
  } else if (f.stdio()) {
    OutputCapture& out = f.kind == Fd::Kind::kStdout ? stdout_ : stderr_;
    for (const Iovec& v : iov) {
      uint64_t n = std::min<uint64_t>(v.buf_len, kMaxTransfer - total);
      auto span = m.View(v.buf, n);
      if (!span) return err::kFault;
      uint64_t kept = out.Append(*span);
      if (kept && sink_ && !sink_failed_ && !(tape_ && tape_->replaying())) {
        try {
          sink_(f.kind == Fd::Kind::kStdout ? 1 : 2,
                std::string_view(reinterpret_cast<const char*>(span->data()), kept));
        } catch (...) {
          sink_failed_ = true;  // the caller's bug: never into the guest's frames
        }
      }
      total += n;
    }
  } else if (f.host) {
    uint64_t pos = offset ? *offset : (f.fdflags & kFdflagAppend) ? HostSize(f.host->fd) : f.offset;
    for (const Iovec& v : iov) {
      uint64_t n = std::min<uint64_t>(v.buf_len, kMaxTransfer - total);
      if (n == 0) continue;
      auto span = m.View(v.buf, n);
      if (!span) return err::kFault;
      size_t done = 0;
      u32 e = f.host->mount->Write(f.host->fd, pos, span->data(), span->size(), &done);
      if (e != err::kSuccess) {
        if (total == 0) return e;
        break;
      }
      pos += done;
      total += done;
      if (done < n) break;
    }
    if (!offset) f.offset = pos;
  } else {
    uint64_t pos = offset ? *offset : (f.fdflags & kFdflagAppend) ? f.node->size() : f.offset;
    for (const Iovec& v : iov) {
      uint64_t n = std::min<uint64_t>(v.buf_len, kMaxTransfer - total);
      if (n == 0) continue;
      auto span = m.View(v.buf, n);
      if (!span) return err::kFault;
      auto r = fs_.Write(f.node, pos, *span);
      if (!r) {
        if (total == 0) return ToWasiErrno(r.error());
        break;  // short write: report what was written
      }
      pos += *r;
      total += *r;
    }
    if (!offset) f.offset = pos;
  }
  return m.Write<uint32_t>(nwritten_out, static_cast<uint32_t>(total)) ? err::kSuccess : err::kFault;
}

WasiContext::u32 WasiContext::FdRead(GuestMemory& m, u32 fd, u32 iovs, u32 iovs_len, u32 nread_out) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    return DoRead(m, *f, iovs, iovs_len, std::nullopt, nread_out);
  });
}

WasiContext::u32 WasiContext::FdPread(GuestMemory& m, u32 fd, u32 iovs, u32 iovs_len, u64 offset, u32 nread_out) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    return DoRead(m, *f, iovs, iovs_len, offset, nread_out);
  });
}

WasiContext::u32 WasiContext::FdWrite(GuestMemory& m, u32 fd, u32 iovs, u32 iovs_len, u32 nwritten_out) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    return DoWrite(m, *f, iovs, iovs_len, std::nullopt, nwritten_out);
  });
}

WasiContext::u32 WasiContext::FdPwrite(GuestMemory& m, u32 fd, u32 iovs, u32 iovs_len, u64 offset,
                                       u32 nwritten_out) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    return DoWrite(m, *f, iovs, iovs_len, offset, nwritten_out);
  });
}

WasiContext::u32 WasiContext::FdPrestatGet(GuestMemory& m, u32 fd, u32 prestat_out) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f || !f->preopen) return err::kBadF;
    Prestat p{};
    p.tag = kPreopentypeDir;
    p.name_len = static_cast<uint32_t>(kPreopenName.size());
    return m.Write(prestat_out, p) ? err::kSuccess : err::kFault;
  });
}

WasiContext::u32 WasiContext::FdPrestatDirName(GuestMemory& m, u32 fd, u32 path, u32 path_len) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f || !f->preopen) return err::kBadF;
    if (!m.InBounds(path, path_len)) return err::kFault;  // the whole buffer the guest named
    if (path_len < kPreopenName.size()) return err::kNameTooLong;
    return m.CopyOut(path, kPreopenName.data(), kPreopenName.size()) ? err::kSuccess : err::kFault;
  });
}

WasiContext::u32 WasiContext::FdReaddir(GuestMemory& m, u32 fd, u32 buf, u32 buf_len, u64 cookie, u32 bufused_out) {
  return Guarded([&]() -> u32 {
    if (!m.InBounds(bufused_out, 4) || !m.InBounds(buf, buf_len)) return err::kFault;
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    if (f->kind != Fd::Kind::kDir) return err::kNotDir;
    if (f->host && (cookie == 0 || !f->listing_valid)) {
      std::vector<HostMount::Entry> entries;
      if (u32 e = HostMount::List(f->host->fd, &entries)) return e;
      HostMount::FileStat self;
      if (u32 e = HostMount::StatFd(f->host->fd, &self)) return e;
      std::vector<vfs::DirEntry> listing;
      listing.reserve(entries.size() + 2);
      listing.push_back({".", vfs::NodeType::kDirectory, self.ino});
      listing.push_back({"..", vfs::NodeType::kDirectory, self.ino});
      for (auto& e : entries) {
        listing.push_back({std::move(e.name), e.is_dir ? vfs::NodeType::kDirectory : vfs::NodeType::kFile, e.ino});
      }
      f->listing = std::move(listing);
      f->listing_valid = true;
    } else if (cookie == 0 || !f->listing_valid) {
      auto entries = fs_.ReadDir(f->node);
      if (!entries) return ToWasiErrno(entries.error());
      auto parent = fs_.Parent(f->node);
      std::vector<vfs::DirEntry> listing;
      listing.reserve(entries->size() + 2);
      listing.push_back({".", vfs::NodeType::kDirectory, f->node->ino});
      listing.push_back({"..", vfs::NodeType::kDirectory, parent ? parent.value()->ino : f->node->ino});
      for (auto& e : *entries) listing.push_back(std::move(e));
      f->listing = std::move(listing);
      f->listing_valid = true;
    }
    std::string out;
    for (uint64_t i = cookie; i < f->listing.size() && out.size() < buf_len; ++i) {
      const vfs::DirEntry& e = f->listing[i];
      Dirent d{};
      d.d_next = i + 1;
      d.d_ino = e.ino;
      d.d_namlen = static_cast<uint32_t>(e.name.size());
      d.d_type = Filetype(e.type);
      out.append(reinterpret_cast<const char*>(&d), sizeof d);
      out.append(e.name);
    }
    if (out.size() > buf_len) out.resize(buf_len);  // the last entry is cut, as the spec says
    if (!m.CopyOut(buf, out.data(), out.size())) return err::kFault;
    return m.Write<uint32_t>(bufused_out, static_cast<uint32_t>(out.size())) ? err::kSuccess : err::kFault;
  });
}

WasiContext::u32 WasiContext::FdRenumber(GuestMemory&, u32 fd, u32 to) {
  return Guarded([&]() -> u32 {
    if (!GetFd(fd)) return err::kBadF;
    if (to >= options_.max_fds) return err::kBadF;
    if (fd == to) return err::kSuccess;
    if (to >= fds_.size()) fds_.resize(to + 1);
    fds_[to] = std::move(fds_[fd]);
    return err::kSuccess;
  });
}

WasiContext::u32 WasiContext::FdSeek(GuestMemory& m, u32 fd, u64 offset, u32 whence, u32 newoffset_out) {
  return Guarded([&]() -> u32 {
    if (!m.InBounds(newoffset_out, 8)) return err::kFault;
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    // An eventfd has no position, and Linux's lseek on one succeeds without moving (0).
    if (f->kind == Fd::Kind::kEventfd) return m.Write<uint64_t>(newoffset_out, 0) ? err::kSuccess : err::kFault;
    if (f->stdio()) return err::kSPipe;
    if (f->kind == Fd::Kind::kDir) return err::kIsDir;
    uint64_t base;
    switch (whence) {
      case kWhenceSet: base = 0; break;
      case kWhenceCur: base = f->offset; break;
      case kWhenceEnd: base = f->host ? HostSize(f->host->fd) : f->node->size(); break;
      default: return err::kInval;
    }
    const int64_t delta = static_cast<int64_t>(offset);
    uint64_t pos;
    if (delta < 0) {
      const uint64_t back = 0 - offset;  // magnitude, also right for INT64_MIN
      if (back > base) return err::kInval;
      pos = base - back;
    } else {
      if (offset > uint64_t{INT64_MAX} - base) return err::kOverflow;
      pos = base + offset;
    }
    f->offset = pos;
    return m.Write<uint64_t>(newoffset_out, pos) ? err::kSuccess : err::kFault;
  });
}

WasiContext::u32 WasiContext::FdTell(GuestMemory& m, u32 fd, u32 offset_out) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    if (f->stdio()) return err::kSPipe;
    return m.Write<uint64_t>(offset_out, f->offset) ? err::kSuccess : err::kFault;
  });
}

// ---- paths

WasiContext::u32 WasiContext::PathCreateDirectory(GuestMemory& m, u32 fd, u32 path, u32 path_len) {
  const uint16_t mode = TakeCreateMode(0755);
  return Guarded([&]() -> u32 {
    Target t;
    if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
    if (t.mount) return t.mount->MkdirAt(t.host_dir, t.path);
    return ToWasiErrno(fs_.Mkdir(t.dir, t.path, mode));
  });
}

WasiContext::u32 WasiContext::PathFilestatGet(GuestMemory& m, u32 fd, u32, u32 path, u32 path_len, u32 stat_out) {
  return Guarded([&]() -> u32 {
    if (!m.InBounds(stat_out, sizeof(Filestat))) return err::kFault;
    Target t;
    if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
    if (t.mount) {
      HostMount::FileStat st;
      if (u32 e = t.mount->StatAt(t.host_dir, t.path, &st)) return e;
      return m.Write(stat_out, ToFilestat(*t.mount, st)) ? err::kSuccess : err::kFault;
    }
    auto node = fs_.Lookup(t.dir, t.path);
    if (!node) return ToWasiErrno(node.error());
    return WriteFilestat(m, nullptr, node.value(), stat_out);
  });
}

WasiContext::u32 WasiContext::PathFilestatSetTimes(GuestMemory& m, u32 fd, u32, u32 path, u32 path_len, u64 atim,
                                                   u64 mtim, u32 fst) {
  return Guarded([&]() -> u32 {
    Target t;
    if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
    if (t.mount) {
      if (u32 e = CheckTimeFlags(fst)) return e;
      int64_t a, mt;
      HostTimes(atim, mtim, fst, &a, &mt);
      return t.mount->SetTimesAt(t.host_dir, t.path, a, mt);
    }
    auto node = fs_.Lookup(t.dir, t.path);
    if (!node) return ToWasiErrno(node.error());
    return SetTimes(node.value(), atim, mtim, fst);
  });
}

WasiContext::u32 WasiContext::TwoPaths(GuestMemory& m, u32 fd_a, u32 ptr_a, u32 len_a, u32 fd_b, u32 ptr_b,
                                       u32 len_b, Target* a, Target* b) {
  if (u32 e = Resolve(m, fd_a, ptr_a, len_a, a)) return e;
  return Resolve(m, fd_b, ptr_b, len_b, b);
}

WasiContext::u32 WasiContext::PathLink(GuestMemory& m, u32 old_fd, u32, u32 old_path, u32 old_len, u32 new_fd,
                                       u32 new_path, u32 new_len) {
  return Guarded([&]() -> u32 {
    Target a, b;
    if (u32 e = TwoPaths(m, old_fd, old_path, old_len, new_fd, new_path, new_len, &a, &b)) return e;
    if (a.mount || b.mount) return a.mount == b.mount ? err::kPerm : err::kXDev;  // no links in a mount
    return ToWasiErrno(fs_.Link(a.dir, a.path, b.dir, b.path));
  });
}

WasiContext::u32 WasiContext::PathOpen(GuestMemory& m, u32 fd, u32, u32 path, u32 path_len, u32 oflags,
                                       u64 rights_base, u64 rights_inheriting, u32 fdflags, u32 fd_out) {
  const uint16_t create_mode = TakeCreateMode(0644);
  return Guarded([&]() -> u32 {
    if (!m.InBounds(fd_out, 4)) return err::kFault;
    Target t;
    if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
    if ((oflags & ~u32{kOflagsAll}) || (fdflags & ~u32{kFdflagsAll})) return err::kInval;
    // Refuse before creating anything when no descriptor is left.
    if (open_fd_count() >= options_.max_fds) return err::kMFile;
    vfs::OpenFlags flags;
    flags.create = oflags & kOflagCreat;
    flags.exclusive = oflags & kOflagExcl;
    flags.truncate = oflags & kOflagTrunc;
    flags.directory = oflags & kOflagDirectory;
    flags.write = (rights_base & rights::kWriteIntent) || flags.truncate || (fdflags & kFdflagAppend);
    flags.read = rights_base & rights::kFdRead;
    flags.mode = create_mode;
    auto entry = std::make_unique<Fd>();
    if (t.mount) {
      HostMount::OpenRequest req;
      req.create = flags.create;
      req.exclusive = flags.exclusive;
      req.truncate = flags.truncate;
      req.directory = flags.directory;
      req.write = flags.write;
      req.read = (rights_base & rights::kFdRead) || !flags.write;
      int host_fd = -1;
      bool is_dir = false;
      if (u32 e = t.mount->OpenAt(t.host_dir, t.path, req, &host_fd, &is_dir)) return e;
      entry->host = std::make_shared<HostHandle>(t.mount, host_fd, is_dir);
      entry->kind = is_dir ? Fd::Kind::kDir : Fd::Kind::kFile;
    } else {
      auto node = fs_.Open(t.dir, t.path, flags);
      if (!node) return ToWasiErrno(node.error());
      if (node.value()->type == vfs::NodeType::kFifo) {
        if (u32 e = OpenNamedPipe(node.value(), rights_base, entry.get())) return e;
        rights_base = entry->rights_base;
      } else {
        entry->kind = node.value()->is_dir() ? Fd::Kind::kDir : Fd::Kind::kFile;
      }
      entry->node = node.value();
    }
    entry->fdflags = static_cast<uint16_t>(fdflags);
    entry->rights_base = rights_base & rights::kAll;
    entry->rights_inheriting = rights_inheriting & rights::kAll;
    u32 newfd = 0;
    if (u32 e = AllocateFd(std::move(entry), &newfd)) return e;
    if (!m.Write<uint32_t>(fd_out, newfd)) {  // checked above; kept for safety
      fds_[newfd].reset();
      return err::kFault;
    }
    return err::kSuccess;
  });
}

WasiContext::u32 WasiContext::PathReadlink(GuestMemory& m, u32 fd, u32 path, u32 path_len, u32 buf, u32 buf_len,
                                           u32 bufused_out) {
  return Guarded([&]() -> u32 {
    if (!m.InBounds(buf, buf_len) || !m.InBounds(bufused_out, 4)) return err::kFault;
    Target t;
    if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
    if (t.mount) return err::kInval;  // a link's target is never shown
    return ToWasiErrno(fs_.ReadLink(t.dir, t.path));
  });
}

WasiContext::u32 WasiContext::PathRemoveDirectory(GuestMemory& m, u32 fd, u32 path, u32 path_len) {
  return Guarded([&]() -> u32 {
    Target t;
    if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
    if (t.mount) return t.mount->UnlinkAt(t.host_dir, t.path, /*directory=*/true);
    return ToWasiErrno(fs_.Rmdir(t.dir, t.path));
  });
}

WasiContext::u32 WasiContext::PathRename(GuestMemory& m, u32 fd, u32 old_path, u32 old_len, u32 new_fd,
                                         u32 new_path, u32 new_len) {
  return Guarded([&]() -> u32 {
    Target a, b;
    if (u32 e = TwoPaths(m, fd, old_path, old_len, new_fd, new_path, new_len, &a, &b)) return e;
    if (a.mount != b.mount) return err::kXDev;
    if (a.mount) return a.mount->RenameAt(a.host_dir, a.path, b.host_dir, b.path);
    return ToWasiErrno(fs_.Rename(a.dir, a.path, b.dir, b.path));
  });
}

WasiContext::u32 WasiContext::PathSymlink(GuestMemory& m, u32 old_path, u32 old_len, u32 fd, u32 new_path,
                                          u32 new_len) {
  return Guarded([&]() -> u32 {
    std::string target;
    if (u32 e = ReadPath(m, old_path, old_len, &target)) return e;
    Target t;
    if (u32 e = Resolve(m, fd, new_path, new_len, &t)) return e;
    if (t.mount) return t.mount->writable() ? err::kPerm : err::kRoFs;  // no links in a mount
    return ToWasiErrno(fs_.Symlink(target, t.dir, t.path));
  });
}

WasiContext::u32 WasiContext::PathUnlinkFile(GuestMemory& m, u32 fd, u32 path, u32 path_len) {
  return Guarded([&]() -> u32 {
    Target t;
    if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
    if (t.mount) return t.mount->UnlinkAt(t.host_dir, t.path, /*directory=*/false);
    return ToWasiErrno(fs_.Unlink(t.dir, t.path));
  });
}

// ---- poll

WasiContext::u32 WasiContext::PollOneoff(GuestMemory& m, u32 in, u32 out, u32 nsubs, u32 nevents_out) {
  return Guarded([&]() -> u32 {
    if (nsubs == 0 || nsubs > kMaxSubscriptions) return err::kInval;
    if (!m.ArrayInBounds<Subscription>(in, nsubs) || !m.ArrayInBounds<Event>(out, nsubs) ||
        !m.InBounds(nevents_out, 4))
      return err::kFault;
    std::vector<Subscription> subs(nsubs);
    if (!m.CopyIn(in, subs.data(), uint64_t{nsubs} * sizeof(Subscription))) return err::kFault;

    std::vector<Event> ready;
    std::vector<std::pair<size_t, uint64_t>> clocks;  // subscription index, relative timeout
    for (size_t i = 0; i < subs.size(); ++i) {
      const Subscription& s = subs[i];
      Event ev{};
      ev.userdata = s.userdata;
      ev.type = s.tag;
      if (s.tag == kEventtypeClock) {
        const SubscriptionClock& c = s.u.clock;
        if (c.id != kClockRealtime && c.id != kClockMonotonic && c.id != kClockProcessCputime &&
            c.id != kClockThreadCputime) {
          ev.error = static_cast<uint16_t>(err::kInval);
          ready.push_back(ev);
          continue;
        }
        uint64_t now = ClockNow(c.id);
        uint64_t rel = c.timeout;
        if (c.flags & kSubclockflagAbstime) rel = c.timeout > now ? c.timeout - now : 0;
        clocks.emplace_back(i, rel);
      } else if (s.tag == kEventtypeFdRead || s.tag == kEventtypeFdWrite) {
        Fd* f = GetFd(s.u.fd);
        if (!f) {
          ev.error = static_cast<uint16_t>(err::kBadF);
        } else if (s.tag == kEventtypeFdRead) {
          if (f->kind == Fd::Kind::kFile) {
            uint64_t size = f->host ? HostSize(f->host->fd) : f->node->size();
            ev.nbytes = size > f->offset ? size - f->offset : 0;
          } else if (f->kind == Fd::Kind::kStdin) {
            ev.flags = kEventrwflagHangup;  // stdin is always at end of file
          } else if (f->kind == Fd::Kind::kPipeRead) {
            ev.nbytes = f->pipe->bytes.size();
            if (!PipeEndOpen(f->pipe.get(), /*write_end=*/true)) {
              ev.flags = kEventrwflagHangup;
            } else if (ev.nbytes == 0) {
              continue;  // empty, a writer open: not ready (a clock may still fire)
            }
          } else if (f->kind == Fd::Kind::kEventfd) {
            if (f->counter->value == 0) continue;  // not readable until written
            ev.nbytes = 8;
          } else if (f->kind == Fd::Kind::kDir) {
            ev.error = static_cast<uint16_t>(err::kIsDir);
          } else {
            ev.error = static_cast<uint16_t>(err::kBadF);
          }
        } else if (f->kind == Fd::Kind::kDir || f->kind == Fd::Kind::kStdin || f->kind == Fd::Kind::kPipeRead) {
          ev.error = static_cast<uint16_t>(err::kBadF);
        } else if (f->kind == Fd::Kind::kEventfd) {
          if (f->counter->value == EventCounter::kMax) continue;  // full: not writable
          ev.nbytes = 8;
        } else if (f->kind == Fd::Kind::kPipeWrite) {
          ev.nbytes = f->pipe->space();
          if (!PipeEndOpen(f->pipe.get(), /*write_end=*/false)) {
            ev.flags = kEventrwflagHangup;
          } else if (ev.nbytes == 0) {
            continue;  // full, a reader open: not ready
          }
        }
        ready.push_back(ev);
      } else {
        ev.error = static_cast<uint16_t>(err::kInval);
        ready.push_back(ev);
      }
    }
    uint64_t min_timeout = UINT64_MAX;
    bool due = false;
    for (const auto& [i, rel] : clocks) {
      min_timeout = std::min(min_timeout, rel);
      due |= rel == 0;
    }
    // Sleep only when nothing is ready yet; then every clock with the smallest timeout
    // fires. Otherwise only clocks already due fire.
    const bool sleep = ready.empty() && !due && !clocks.empty();
    if (sleep) {
      if (options_.sleep) {
        options_.sleep(min_timeout);
      } else {
        DefaultSleep(min_timeout);
      }
    }
    for (const auto& [i, rel] : clocks) {
      if (sleep ? rel == min_timeout : rel == 0) {
        Event ev{};
        ev.userdata = subs[i].userdata;
        ev.type = kEventtypeClock;
        ready.push_back(ev);
      }
    }
    for (size_t i = 0; i < ready.size(); ++i) {
      if (!m.Write(out + i * sizeof(Event), ready[i])) return err::kFault;
    }
    return m.Write<uint32_t>(nevents_out, static_cast<uint32_t>(ready.size())) ? err::kSuccess : err::kFault;
  });
}

// ---- sockets: never granted

WasiContext::u32 WasiContext::SockAccept(GuestMemory&, u32, u32, u32) { return err::kNotSup; }
WasiContext::u32 WasiContext::SockRecv(GuestMemory&, u32, u32, u32, u32, u32, u32) { return err::kNotSup; }
WasiContext::u32 WasiContext::SockSend(GuestMemory&, u32, u32, u32, u32, u32) { return err::kNotSup; }
WasiContext::u32 WasiContext::SockShutdown(GuestMemory&, u32, u32) { return err::kNotSup; }

// ---- Saved state ----

std::vector<WasiContext::SavedFd> WasiContext::SaveFds() const {
  std::vector<SavedFd> saved;
  for (u32 i = 0; i < fds_.size(); ++i) {
    const Fd* f = fds_[i].get();
    if (!f || f->stdio() || f->preopen || !f->node) continue;
    const vfs::Node* n = f->node.get();
    if (n->mount_id != vfs::kHomeMount && n->mount_id != vfs::kTmpMount) continue;
    // The path, from the names under which each ancestor holds the next.
    std::vector<std::string_view> names;
    bool named = n->linked;
    for (const vfs::Node* c = n; named && c->parent; c = c->parent) {
      named = false;
      for (const auto& [name, child] : c->parent->children) {
        if (child.get() == c) {
          names.push_back(name);
          named = true;
          break;
        }
      }
    }
    if (!named || names.empty()) continue;
    SavedFd s;
    s.fd = i;
    s.directory = f->kind == Fd::Kind::kDir;
    for (auto it = names.rbegin(); it != names.rend(); ++it) s.path += "/" + std::string(*it);
    s.offset = f->offset;
    s.fdflags = f->fdflags;
    s.rights_base = f->rights_base;
    s.rights_inheriting = f->rights_inheriting;
    saved.push_back(std::move(s));
  }
  return saved;
}

std::vector<WasiContext::u32> WasiContext::RestoreFds(const std::vector<SavedFd>& saved) {
  std::vector<u32> failed;
  for (const SavedFd& s : saved) {
    auto node = fs_.Lookup(fs_.root(), s.path);
    bool ok = s.fd >= 4 && s.fd < options_.max_fds && node.ok() &&
              (s.fd >= fds_.size() || !fds_[s.fd]) && node.value()->is_dir() == s.directory;
    if (!ok) {
      failed.push_back(s.fd);
      continue;
    }
    auto f = std::make_unique<Fd>();
    f->kind = s.directory ? Fd::Kind::kDir : Fd::Kind::kFile;
    f->node = node.value();
    f->offset = s.offset;
    f->fdflags = s.fdflags;
    // Never more than a descriptor of this kind could have been granted.
    f->rights_base = s.rights_base & rights::kAll;
    f->rights_inheriting = s.rights_inheriting & rights::kAll;
    if (fds_.size() <= s.fd) fds_.resize(s.fd + 1);
    fds_[s.fd] = std::move(f);
  }
  return failed;
}

// ---- brig's own calls: file modes.

uint16_t WasiContext::TakeCreateMode(uint16_t fallback) {
  const u32 mode = create_mode_;
  create_mode_ = kDefaultCreateMode;
  return mode == kDefaultCreateMode ? fallback : static_cast<uint16_t>(mode);
}

WasiContext::u32 WasiContext::BrigCreateMode(GuestMemory&, u32 mode) {
  if (mode != kDefaultCreateMode && mode > 07777) return err::kInval;
  create_mode_ = mode;
  return err::kSuccess;
}

WasiContext::u32 WasiContext::BrigFdChmod(GuestMemory&, u32 fd, u32 mode) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    if (mode > 07777) return err::kInval;
    if (f->stdio() || f->host) return err::kPerm;
    return ToWasiErrno(fs_.SetMode(f->node, mode));
  });
}

WasiContext::u32 WasiContext::BrigPathChmod(GuestMemory& m, u32 fd, u32 path, u32 path_len, u32 mode) {
  return Guarded([&]() -> u32 {
    Target t;
    if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
    if (mode > 07777) return err::kInval;
    if (t.mount) return err::kPerm;
    auto node = fs_.Lookup(t.dir, t.path);
    if (!node) return ToWasiErrno(node.error());
    return ToWasiErrno(fs_.SetMode(node.value(), mode));
  });
}

// ---- brig's own descriptor calls (not WASI preview 1)

WasiContext::u32 WasiContext::OpenNamedPipe(const vfs::NodeRef& node, u64 rights_base, Fd* entry) {
  const bool read = rights_base & rights::kFdRead;
  const bool write = rights_base & rights::kFdWrite;
  if (read == write) return err::kInval;  // both ends in one descriptor (O_RDWR) is not kept
  std::shared_ptr<PipeBuffer> buffer;
  for (const auto& f : fds_) {
    if (f && f->pipe && f->node == node) {
      buffer = f->pipe;  // the pipe is open: this descriptor is another end of it
      break;
    }
  }
  // No reader could ever come while a blocking open waited: Linux's O_NONBLOCK answer.
  if (write && (!buffer || !PipeEndOpen(buffer.get(), /*write_end=*/false))) return err::kNxio;
  if (!buffer) buffer = std::make_shared<PipeBuffer>();
  entry->kind = read ? Fd::Kind::kPipeRead : Fd::Kind::kPipeWrite;
  entry->pipe = std::move(buffer);
  entry->rights_base = rights::kStdio & ~(read ? rights::kFdWrite : rights::kFdRead);
  return err::kSuccess;
}

WasiContext::u32 WasiContext::BrigPathMkfifo(GuestMemory& m, u32 fd, u32 path, u32 path_len, u32 mode) {
  return Guarded([&]() -> u32 {
    Target t;
    if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
    if (mode > 07777) return err::kInval;
    if (t.mount) return err::kPerm;  // no special files in a host directory
    return ToWasiErrno(fs_.MakeFifo(t.dir, t.path, static_cast<uint16_t>(mode)));
  });
}

WasiContext::u32 WasiContext::BrigXattr(GuestMemory& m, u32 op, u32 fd, u32 path, u32 path_len, u32 name,
                                        u32 name_len, u32 buf, u32 buf_len, u32 flags, u32 size_out) {
  return Guarded([&]() -> u32 {
    const u32 action = op & ~kXattrOnFd;
    if (action > kXattrList) return err::kInval;
    if (!m.InBounds(size_out, 4) || !m.InBounds(buf, buf_len)) return err::kFault;
    vfs::NodeRef node;
    if (op & kXattrOnFd) {
      Fd* f = GetFd(fd);
      if (!f) return err::kBadF;
      // stdio, pipes and eventfds have no node; a host mount's attributes are the host's.
      if (f->host || !f->node) return err::kNotSup;
      node = f->node;
    } else {
      Target t;
      if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
      if (t.mount) return err::kNotSup;
      auto found = fs_.Lookup(t.dir, t.path);
      if (!found) return ToWasiErrno(found.error());
      node = found.value();
    }
    auto write_size = [&](size_t n) { return m.Write<uint32_t>(size_out, static_cast<uint32_t>(n)) ? err::kSuccess : err::kFault; };
    if (action == kXattrList) {
      std::string names;
      for (std::string_view n : vfs::FileSystem::ListXattrs(*node)) {
        names.append(n);
        names.push_back('\0');
      }
      if (buf_len != 0) {  // 0: the size only
        if (names.size() > buf_len) return err::kRange;
        if (!m.CopyOut(buf, names.data(), names.size())) return err::kFault;
      }
      return write_size(names.size());
    }
    std::string key;
    if (m.ReadString(name, name_len, vfs::Xattrs::kMaxNameBytes, &key) != err::kSuccess) {
      return name_len > vfs::Xattrs::kMaxNameBytes ? err::kRange : err::kFault;
    }
    if (action == kXattrGet) {
      auto value = fs_.GetXattr(node, key);
      if (!value) return ToWasiErrno(value.error());
      if (buf_len != 0) {
        if (value->size() > buf_len) return err::kRange;
        if (!m.CopyOut(buf, value->data(), value->size())) return err::kFault;
      }
      return write_size(value->size());
    }
    if (action == kXattrRemove) return ToWasiErrno(fs_.RemoveXattr(node, key));
    // kXattrSet. Both flags: EEXIST if it is set, ENODATA if not (Linux checks CREATE first).
    if (flags & ~(kXattrCreate | kXattrReplace)) return err::kInval;
    using Mode = vfs::FileSystem::XattrMode;
    Mode mode = Mode::kAny;
    if (flags == (kXattrCreate | kXattrReplace)) {
      mode = node->xattrs.values.count(key) ? Mode::kCreate : Mode::kReplace;
    } else if (flags == kXattrCreate) {
      mode = Mode::kCreate;
    } else if (flags == kXattrReplace) {
      mode = Mode::kReplace;
    }
    if (buf_len > vfs::Xattrs::kMaxValueBytes) return err::k2Big;
    auto value = m.View(buf, buf_len);
    if (!value) return err::kFault;
    const std::string copy(reinterpret_cast<const char*>(value->data()), value->size());
    return ToWasiErrno(fs_.SetXattr(node, key, copy, mode));
  });
}

bool WasiContext::PipeEndOpen(const PipeBuffer* pipe, bool write_end) const {
  const Fd::Kind end = write_end ? Fd::Kind::kPipeWrite : Fd::Kind::kPipeRead;
  for (const auto& f : fds_) {
    if (f && f->kind == end && f->pipe.get() == pipe) return true;
  }
  return false;
}

WasiContext::u32 WasiContext::BrigFdPipe(GuestMemory& m, u32 fds_out) {
  return Guarded([&]() -> u32 {
    if (!m.ArrayInBounds<uint32_t>(fds_out, 2)) return err::kFault;
    auto buffer = std::make_shared<PipeBuffer>();
    auto end = [&](Fd::Kind kind, uint64_t rights) {
      auto f = std::make_unique<Fd>();
      f->kind = kind;
      f->pipe = buffer;
      f->rights_base = rights;
      return f;
    };
    u32 r = 0, w = 0;
    if (u32 e = AllocateFd(end(Fd::Kind::kPipeRead, rights::kStdio & ~rights::kFdWrite), &r)) return e;
    if (u32 e = AllocateFd(end(Fd::Kind::kPipeWrite, rights::kStdio & ~rights::kFdRead), &w)) {
      fds_[r].reset();  // the table is full: no half pipe left behind
      return e;
    }
    if (!m.Write<uint32_t>(fds_out, r) || !m.Write<uint32_t>(fds_out + 4, w)) return err::kFault;
    return err::kSuccess;
  });
}

WasiContext::u32 WasiContext::BrigFdDup(GuestMemory& m, u32 fd, u32 min_fd, u32 fd_out) {
  return Guarded([&]() -> u32 {
    if (!m.InBounds(fd_out, 4)) return err::kFault;
    if (!GetFd(fd)) return err::kBadF;
    if (min_fd >= options_.max_fds) return err::kInval;
    u32 to = min_fd;
    while (to < fds_.size() && fds_[to]) ++to;
    if (to >= options_.max_fds) return err::kMFile;
    if (to >= fds_.size()) fds_.resize(to + 1);
    fds_[to] = fds_[fd];
    return m.Write<uint32_t>(fd_out, to) ? err::kSuccess : err::kFault;
  });
}

WasiContext::u32 WasiContext::BrigFdDup2(GuestMemory&, u32 fd, u32 to) {
  return Guarded([&]() -> u32 {
    if (!GetFd(fd) || to >= options_.max_fds) return err::kBadF;
    if (fd == to) return err::kSuccess;
    if (to >= fds_.size()) fds_.resize(to + 1);
    fds_[to] = fds_[fd];  // closes what `to` was, as dup2
    return err::kSuccess;
  });
}

WasiContext::u32 WasiContext::WriteStatvfs(GuestMemory& m, const vfs::Node* node, const HostMount* mount, u32 out) {
  constexpr uint64_t kBlock = 4096;
  constexpr uint64_t kReadOnly = 1;  // ST_RDONLY
  uint64_t v[11] = {kBlock, kBlock, 0, 0, 0, 0, 0, 0, 0, 0, fs_.limits().max_name_length};
  enum { kBlocks = 2, kBfree, kBavail, kFiles, kFfree, kFavail, kFsid, kFlag };
  if (mount) {
    const uint64_t max = mount->quota().max_bytes_written, used = std::min(mount->bytes_written(), max);
    v[kBlocks] = max / kBlock;
    v[kBfree] = v[kBavail] = (max - used) / kBlock;
    v[kFsid] = mount->dev();
    if (!mount->writable()) v[kFlag] = kReadOnly;
  } else if (node) {
    v[kFsid] = node->mount_id;
    if (node->writable || node->mount_id == vfs::kHomeMount || node->mount_id == vfs::kTmpMount) {
      const vfs::Limits& l = fs_.limits();
      const uint64_t bytes = std::min(fs_.bytes_used(), l.max_total_bytes);
      const uint64_t files = std::min(fs_.files_used(), l.max_files);
      v[kBlocks] = l.max_total_bytes / kBlock;
      v[kBfree] = v[kBavail] = (l.max_total_bytes - bytes) / kBlock;
      v[kFiles] = l.max_files;
      v[kFfree] = v[kFavail] = l.max_files - files;
    } else {
      v[kFlag] = kReadOnly;
    }
  }
  if (!m.InBounds(out, kStatvfsBytes)) return err::kFault;
  for (int i = 0; i < 11; ++i) {
    if (!m.Write<uint64_t>(out + 8 * i, v[i])) return err::kFault;
  }
  return err::kSuccess;
}

WasiContext::u32 WasiContext::BrigFdStatvfs(GuestMemory& m, u32 fd, u32 out) {
  return Guarded([&]() -> u32 {
    Fd* f = GetFd(fd);
    if (!f) return err::kBadF;
    return WriteStatvfs(m, f->node.get(), f->host ? f->host->mount.get() : nullptr, out);
  });
}

WasiContext::u32 WasiContext::BrigPathStatvfs(GuestMemory& m, u32 fd, u32 path, u32 path_len, u32 out) {
  return Guarded([&]() -> u32 {
    Target t;
    if (u32 e = Resolve(m, fd, path, path_len, &t)) return e;
    if (t.mount) {
      HostMount::FileStat st;
      if (u32 e = t.mount->StatAt(t.host_dir, t.path, &st)) return e;
      return WriteStatvfs(m, nullptr, t.mount.get(), out);
    }
    auto node = fs_.Lookup(t.dir, t.path);
    if (!node) return ToWasiErrno(node.error());
    return WriteStatvfs(m, node.value().get(), nullptr, out);
  });
}

WasiContext::u32 WasiContext::BrigFdEventfd(GuestMemory& m, u32 initval, u32 flags, u32 fd_out) {
  return Guarded([&]() -> u32 {
    if (!m.InBounds(fd_out, 4)) return err::kFault;
    if (flags & ~(kEventfdSemaphore | kFdflagNonblock)) return err::kInval;
    auto f = std::make_shared<Fd>();
    f->kind = Fd::Kind::kEventfd;
    f->counter = std::make_shared<EventCounter>();
    f->counter->value = initval;
    f->counter->semaphore = flags & kEventfdSemaphore;
    f->fdflags = (flags & kFdflagNonblock) ? kFdflagNonblock : 0;
    f->rights_base = rights::kStdio;
    u32 fd = 0;
    if (u32 e = AllocateFd(std::move(f), &fd)) return e;
    if (!m.Write<uint32_t>(fd_out, fd)) {
      fds_[fd].reset();
      return err::kFault;
    }
    return err::kSuccess;
  });
}

}  // namespace brig::wasi
