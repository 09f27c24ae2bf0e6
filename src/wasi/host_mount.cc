#include "wasi/host_mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "names/path_rules.h"
#include "wasi/wasi_types.h"

namespace brig::wasi {
namespace {

constexpr uint64_t kResolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

// glibc may lack the wrapper; the raw system call is the same.
int OpenAt2(int dir, const std::string& path, uint64_t flags, uint64_t mode) {
  open_how how{};
  how.flags = flags;
  how.mode = (flags & O_CREAT) ? mode : 0;  // openat2 refuses a mode without O_CREAT
  how.resolve = kResolve;
  for (;;) {
    long r = syscall(SYS_openat2, dir, path.c_str(), &how, sizeof how);
    if (r >= 0 || errno != EINTR) return static_cast<int>(r);
  }
}

uint32_t FromErrno(int e) {
  switch (e) {
    case ENOENT: return err::kNoEnt;
    case EEXIST: return err::kExist;
    case ENOTDIR: return err::kNotDir;
    case EISDIR: return err::kIsDir;
    case ENOTEMPTY: return err::kNotEmpty;
    case EROFS: return err::kRoFs;
    case EINVAL: return err::kInval;
    case ENOSPC: case EDQUOT: return err::kNoSpc;
    case EFBIG: return err::kFBig;
    case ENAMETOOLONG: return err::kNameTooLong;
    case EACCES: return err::kAcces;
    case EBUSY: return err::kBusy;
    case ENOMEM: return err::kNoMem;
    // openat2 refusing a symlink (ELOOP), an escape (EXDEV) or a mount crossing; and links.
    case ELOOP: case EXDEV: case EPERM: case EMLINK: return err::kPerm;
    case EAGAIN: return err::kAgain;
    default: return err::kIo;
  }
}

// The guest's path as a C string: a NUL inside would cut it short, so it is refused.
bool ToCString(std::string_view path, std::string* out) {
  if (path.find('\0') != std::string_view::npos) return false;
  out->assign(path);
  return true;
}

uint64_t Ns(const timespec& t) { return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + t.tv_nsec; }

// Only regular files with one name, and directories, are shown to the guest.
uint32_t Admit(const struct stat& st) {
  if (S_ISDIR(st.st_mode)) return err::kSuccess;
  if (!S_ISREG(st.st_mode) || st.st_nlink > 1) return err::kPerm;
  return err::kSuccess;
}

std::vector<std::string_view> Components(std::string_view p) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace

std::string CheckMountPoint(std::string_view g) {
  const std::string shown = "mount point \"" + std::string(g) + "\"";
  if (g.empty() || g[0] != '/') return shown + " must be an absolute path";
  if (g == "/") return shown + " cannot be / itself";
  if (g.size() > names::kMaxPathBytes) return shown + " is too long";
  auto parts = Components(g.substr(1));
  if (parts.size() > names::kMaxDepth) return shown + " is too deep";
  for (std::string_view c : parts) {
    if (names::NameFault f = names::CheckName(c); f != names::NameFault::kNone) {
      return shown + ": " + names::Explain(f);
    }
  }
  if (parts[0] == "usr" || parts[0] == "home" || parts[0] == "tmp") {
    return shown + " is inside the sandbox's own /" + std::string(parts[0]) +
           " (the stdlib and the session's persisted files); mount somewhere else, e.g. /mnt/data";
  }
  return "";
}

std::string CheckMountPoints(const std::vector<std::string>& points) {
  for (const auto& p : points) {
    if (std::string e = CheckMountPoint(p); !e.empty()) return e;
  }
  for (size_t i = 0; i < points.size(); ++i) {
    for (size_t j = 0; j < points.size(); ++j) {
      if (i == j) continue;
      const std::string& a = points[i];
      const std::string& b = points[j];
      if (a == b || (b.size() > a.size() && b.compare(0, a.size(), a) == 0 && b[a.size()] == '/')) {
        return "mount points \"" + a + "\" and \"" + b + "\" overlap";
      }
    }
  }
  return "";
}

std::shared_ptr<HostMount> HostMount::Open(const std::string& host_dir, const std::string& guest_dir, bool writable,
                                           Quota quota, std::string* error) {
  if (std::string e = CheckMountPoint(guest_dir); !e.empty()) {
    *error = e;
    return nullptr;
  }
  int root = open(host_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    *error = "cannot mount " + host_dir + ": " + std::strerror(errno);
    return nullptr;
  }
  std::shared_ptr<HostMount> m(new HostMount());
  m->root_ = root;
  // Probe: without openat2 there is no race-free confinement, so no mount at all.
  int probe = OpenAt2(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (probe < 0) {
    *error = errno == ENOSYS ? "cannot mount " + host_dir +
                                   ": this kernel has no openat2 (Linux 5.6 or later is needed to confine a mount)"
                             : "cannot mount " + host_dir + ": " + std::strerror(errno);
    return nullptr;
  }
  close(probe);
  struct stat st {};
  if (fstat(root, &st) != 0) {
    *error = "cannot mount " + host_dir + ": " + std::strerror(errno);
    return nullptr;
  }
  m->guest_dir_ = guest_dir;
  m->writable_ = writable;
  m->quota_ = quota;
  m->dev_ = (uint64_t{1} << 32) | static_cast<uint64_t>(st.st_dev);
  return m;
}

HostMount::~HostMount() {
  if (root_ >= 0) close(root_);
}

HostHandle::~HostHandle() {
  if (fd >= 0) close(fd);
}

uint32_t HostMount::OpenAt(int dir, std::string_view path, const OpenRequest& req, int* fd_out, bool* is_dir) {
  std::string p;
  if (!ToCString(path, &p)) return err::kInval;
  if (p.empty()) return err::kNoEnt;
  const bool changes = req.write || req.create || req.truncate;
  if (changes && !writable_) {
    // Say EROFS only for something that exists or could be made; a bad path says why first.
    int probe = OpenAt2(dir, p, O_PATH | O_CLOEXEC | O_NOFOLLOW, 0);
    if (probe >= 0) {
      close(probe);
      return err::kRoFs;
    }
    return errno == ENOENT && req.create ? err::kRoFs : FromErrno(errno);
  }
  uint64_t flags = O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;  // NONBLOCK: a FIFO never blocks the open
  if (req.directory) flags |= O_DIRECTORY;
  if (req.create) flags |= O_CREAT;
  if (req.create && req.exclusive) flags |= O_EXCL;
  // No O_TRUNC here: the file is checked (type, links) before anything in it changes.
  flags |= req.write ? (req.read ? O_RDWR : O_WRONLY) : O_RDONLY;
  int fd = OpenAt2(dir, p, flags, 0644);
  if (fd < 0) return FromErrno(errno);
  struct stat st {};
  if (fstat(fd, &st) != 0 || Admit(st) != err::kSuccess) {
    close(fd);
    return err::kPerm;
  }
  if (req.truncate && S_ISREG(st.st_mode) && st.st_size != 0 && ftruncate(fd, 0) != 0) {
    uint32_t e = FromErrno(errno);
    close(fd);
    return e;
  }
  *fd_out = fd;
  *is_dir = S_ISDIR(st.st_mode);
  return err::kSuccess;
}

uint32_t HostMount::StatFd(int fd, FileStat* out) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return FromErrno(errno);
  out->is_dir = S_ISDIR(st.st_mode);
  out->ino = st.st_ino;
  out->nlink = st.st_nlink;
  out->size = out->is_dir ? 0 : static_cast<uint64_t>(st.st_size);
  out->atim = Ns(st.st_atim);
  out->mtim = Ns(st.st_mtim);
  out->ctim = Ns(st.st_ctim);
  return err::kSuccess;
}

uint32_t HostMount::StatAt(int dir, std::string_view path, FileStat* out) {
  std::string p;
  if (!ToCString(path, &p)) return err::kInval;
  if (p.empty()) return err::kNoEnt;
  int fd = OpenAt2(dir, p, O_PATH | O_CLOEXEC | O_NOFOLLOW, 0);
  if (fd < 0) return FromErrno(errno);
  struct stat st {};
  uint32_t e = fstat(fd, &st) != 0 ? FromErrno(errno) : Admit(st);
  if (e == err::kSuccess) e = StatFd(fd, out);
  close(fd);
  return e;
}

uint32_t HostMount::Parent(int dir, std::string_view path, int* parent_fd, std::string* name) {
  std::string p;
  if (!ToCString(path, &p)) return err::kInval;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p.empty()) return err::kNoEnt;
  size_t slash = p.rfind('/');
  std::string parent = slash == std::string::npos ? "." : p.substr(0, slash);
  if (parent.empty()) parent = "/";  // absolute: openat2 refuses it below
  *name = slash == std::string::npos ? p : p.substr(slash + 1);
  if (*name == "." || *name == ".." || name->empty()) return err::kInval;
  int fd = OpenAt2(dir, parent, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) return FromErrno(errno);
  *parent_fd = fd;
  return err::kSuccess;
}

uint32_t HostMount::MkdirAt(int dir, std::string_view path) {
  int parent = -1;
  std::string name;
  if (uint32_t e = Parent(dir, path, &parent, &name)) return e;
  uint32_t e = err::kSuccess;
  if (!writable_) {
    struct stat st {};
    e = fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? err::kExist : err::kRoFs;
  } else if (mkdirat(parent, name.c_str(), 0755) != 0) {
    e = FromErrno(errno);
  }
  close(parent);
  return e;
}

uint32_t HostMount::UnlinkAt(int dir, std::string_view path, bool directory) {
  int parent = -1;
  std::string name;
  if (uint32_t e = Parent(dir, path, &parent, &name)) return e;
  uint32_t e = err::kSuccess;
  if (!writable_) {
    struct stat st {};
    e = fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? err::kRoFs : FromErrno(errno);
  } else if (unlinkat(parent, name.c_str(), directory ? AT_REMOVEDIR : 0) != 0) {
    e = FromErrno(errno);
  }
  close(parent);
  return e;
}

uint32_t HostMount::RenameAt(int old_dir, std::string_view old_path, int new_dir, std::string_view new_path) {
  int a = -1, b = -1;
  std::string na, nb;
  if (uint32_t e = Parent(old_dir, old_path, &a, &na)) return e;
  if (uint32_t e = Parent(new_dir, new_path, &b, &nb)) {
    close(a);
    return e;
  }
  uint32_t e = err::kSuccess;
  if (!writable_) {
    e = err::kRoFs;
  } else if (renameat(a, na.c_str(), b, nb.c_str()) != 0) {
    e = FromErrno(errno);
  }
  close(a);
  close(b);
  return e;
}

uint32_t HostMount::SetTimesFd(int fd, int64_t atim_ns, int64_t mtim_ns) {
  if (!writable_) return err::kRoFs;
  auto ts = [](int64_t ns) {
    timespec t{};
    if (ns == UTIME_OMIT || ns == UTIME_NOW) {
      t.tv_nsec = ns;
    } else {
      t.tv_sec = ns / 1000000000;
      t.tv_nsec = ns % 1000000000;
    }
    return t;
  };
  timespec times[2] = {ts(atim_ns), ts(mtim_ns)};
  return futimens(fd, times) == 0 ? err::kSuccess : FromErrno(errno);
}

uint32_t HostMount::SetTimesAt(int dir, std::string_view path, int64_t atim_ns, int64_t mtim_ns) {
  int fd = -1;
  bool is_dir = false;
  OpenRequest req;
  if (uint32_t e = OpenAt(dir, path, req, &fd, &is_dir)) return e;
  uint32_t e = SetTimesFd(fd, atim_ns, mtim_ns);
  close(fd);
  return e;
}

uint32_t HostMount::Read(int fd, uint64_t offset, uint8_t* out, size_t len, size_t* n) {
  *n = 0;
  if (offset > static_cast<uint64_t>(INT64_MAX)) return err::kInval;
  for (;;) {
    ssize_t r = pread(fd, out, len, static_cast<off_t>(offset));
    if (r >= 0) {
      *n = static_cast<size_t>(r);
      return err::kSuccess;
    }
    if (errno != EINTR) return FromErrno(errno);
  }
}

uint32_t HostMount::Charge(uint64_t bytes) {
  uint64_t cur = written_.load();
  do {
    if (bytes > quota_.max_bytes_written || cur > quota_.max_bytes_written - bytes) return err::kNoSpc;
  } while (!written_.compare_exchange_weak(cur, cur + bytes));
  return err::kSuccess;
}

uint32_t HostMount::Write(int fd, uint64_t offset, const uint8_t* in, size_t len, size_t* n) {
  *n = 0;
  if (!writable_) return err::kRoFs;
  if (offset >= quota_.max_file_size) return len == 0 ? err::kSuccess : err::kFBig;
  len = static_cast<size_t>(std::min<uint64_t>(len, quota_.max_file_size - offset));
  const uint64_t left = quota_.max_bytes_written - std::min(written_.load(), quota_.max_bytes_written);
  len = static_cast<size_t>(std::min<uint64_t>(len, left));
  if (len == 0) return err::kNoSpc;
  if (uint32_t e = Charge(len)) return e;
  for (;;) {
    ssize_t r = pwrite(fd, in, len, static_cast<off_t>(offset));
    if (r >= 0) {
      written_ -= len - static_cast<size_t>(r);  // give back what was not written
      *n = static_cast<size_t>(r);
      return err::kSuccess;
    }
    if (errno != EINTR) {
      written_ -= len;
      return FromErrno(errno);
    }
  }
}

uint32_t HostMount::Truncate(int fd, uint64_t size) {
  if (!writable_) return err::kRoFs;
  if (size > quota_.max_file_size) return err::kFBig;
  struct stat st {};
  if (fstat(fd, &st) != 0) return FromErrno(errno);
  const uint64_t old = static_cast<uint64_t>(st.st_size);
  if (size > old) {
    if (uint32_t e = Charge(size - old)) return e;
  }
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    if (size > old) written_ -= size - old;
    return FromErrno(errno);
  }
  return err::kSuccess;
}

uint32_t HostMount::List(int dir_fd, std::vector<Entry>* out) {
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FromErrno(errno);
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return FromErrno(errno);
  }
  out->clear();
  while (dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    if (Admit(st) != err::kSuccess) continue;  // symlinks, specials, hard-linked files
    out->push_back({std::string(name), S_ISDIR(st.st_mode), static_cast<uint64_t>(st.st_ino)});
  }
  closedir(d);
  std::sort(out->begin(), out->end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return err::kSuccess;
}

}  // namespace brig::wasi
