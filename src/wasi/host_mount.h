// brig::wasi::HostMount: one host directory exposed to a guest at a mount point (a volume
// mount, `brig exec -v HOST:GUEST[:ro|rw]`), and the host descriptors opened inside it.
//
// Confinement: every path from the guest is resolved by the kernel with openat2(2) relative to
// a directory descriptor inside the mount (the mount's O_PATH root, or a directory the guest
// opened in it) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
// RESOLVE_NO_XDEV: "..", absolute paths, any symlink (in any component, pointing anywhere)
// and other file systems mounted inside are refused (EPERM) atomically, so a host process
// swapping a directory for a symlink between a check and a use gains nothing: there is no
// separate check. Operations on a last component (mkdir, unlink, rename) resolve the parent
// that way and then act on the name with the *at() call, which never follows it.
// What the guest sees: regular files and directories only. Symlinks, FIFOs, sockets and
// devices are neither listed nor opened (EPERM); a regular file with more than one hard link
// is refused too (EPERM), since its other names may be outside the mount. The guest cannot
// make links (path_link, path_symlink: EPERM) and path_readlink reveals nothing (EINVAL).
// A read-only mount refuses every change (EROFS).
// Quota (rw mounts): bytes written into the mount (pwrite and file growth by truncate or
// allocate) are counted for the mount's life and may not pass Quota::max_bytes_written
// (ENOSPC, a short write when some fit); no file may grow past Quota::max_file_size (EFBIG).
// Creating files and directories is not counted against the VFS's file counts.
//
// Thread-safety: a HostMount may be shared by the copies of one sandbox's WASI state
// (checkpoints); its counters are atomic. One guest calls it at a time.
#ifndef BRIG_WASI_HOST_MOUNT_H_
#define BRIG_WASI_HOST_MOUNT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace brig::wasi {

// What is wrong with `guest_dir` as a mount point, or "" when it is fine: absolute, no "."
// / ".." / empty components, no trailing '/', brig's name rules (names/path_rules.h), not
// "/", and not at, above or under /usr, /home or /tmp (the sandbox's own trees: the stdlib and
// the files persisted with the session). E.g. /mnt/data or /data.
std::string CheckMountPoint(std::string_view guest_dir);
// The same, and that no two of `points` are equal or one under the other.
std::string CheckMountPoints(const std::vector<std::string>& points);

class HostMount {
 public:
  struct Quota {
    uint64_t max_bytes_written = 256ull << 20;
    uint64_t max_file_size = 100ull << 20;
  };

  // Opens `host_dir` (which must be an existing directory; it may itself be reached through
  // symlinks: the host chose it) as the mount's root. Errors (a sentence in *error, null
  // returned): bad mount point, host_dir missing or not a directory, or openat2 not available
  // in this kernel (ENOSYS: mounts are refused rather than confined less strictly).
  static std::shared_ptr<HostMount> Open(const std::string& host_dir, const std::string& guest_dir, bool writable,
                                         Quota quota, std::string* error);
  ~HostMount();
  HostMount(const HostMount&) = delete;
  HostMount& operator=(const HostMount&) = delete;

  const std::string& guest_dir() const { return guest_dir_; }
  bool writable() const { return writable_; }
  int root_fd() const { return root_; }
  uint64_t bytes_written() const { return written_; }
  const Quota& quota() const { return quota_; }
  // st_dev reported to the guest for files in this mount.
  uint64_t dev() const { return dev_; }

  // ---- Guest operations. `dir` is root_fd() or a directory descriptor from OpenAt; `path`
  // is the guest's (untrusted) relative path. Results are WASI errnos (err::*).

  struct OpenRequest {
    bool create = false, exclusive = false, truncate = false, directory = false;
    bool read = true, write = false;
  };
  // *fd: a new host descriptor (the caller closes it), *is_dir: whether it is a directory.
  uint32_t OpenAt(int dir, std::string_view path, const OpenRequest& req, int* fd, bool* is_dir);

  struct FileStat {
    bool is_dir = false;
    uint64_t ino = 0, nlink = 0, size = 0, atim = 0, mtim = 0, ctim = 0;
  };
  uint32_t StatAt(int dir, std::string_view path, FileStat* out);
  static uint32_t StatFd(int fd, FileStat* out);
  uint32_t MkdirAt(int dir, std::string_view path);
  uint32_t UnlinkAt(int dir, std::string_view path, bool directory);
  // Both ends in this mount (the caller refuses others with EXDEV).
  uint32_t RenameAt(int old_dir, std::string_view old_path, int new_dir, std::string_view new_path);
  // UTIME_OMIT / UTIME_NOW / ns per futimens(2).
  uint32_t SetTimesAt(int dir, std::string_view path, int64_t atim_ns, int64_t mtim_ns);
  uint32_t SetTimesFd(int fd, int64_t atim_ns, int64_t mtim_ns);

  // Reads at `offset` into out; *n: bytes read (0 at EOF).
  static uint32_t Read(int fd, uint64_t offset, uint8_t* out, size_t len, size_t* n);
  // Writes at `offset` within the quota; *n: bytes written.
  uint32_t Write(int fd, uint64_t offset, const uint8_t* in, size_t len, size_t* n);
  uint32_t Truncate(int fd, uint64_t size);

  struct Entry {
    std::string name;
    bool is_dir = false;
    uint64_t ino = 0;
  };
  // A directory's regular files and directories (no ".", ".."), sorted by name.
  static uint32_t List(int dir_fd, std::vector<Entry>* out);

 private:
  HostMount() = default;
  // Splits `path` into its parent (resolved beneath `dir`, O_PATH) and last name.
  uint32_t Parent(int dir, std::string_view path, int* parent_fd, std::string* name);
  // Counts `bytes` against the quota, or ENOSPC.
  uint32_t Charge(uint64_t bytes);

  std::string guest_dir_;
  bool writable_ = false;
  int root_ = -1;
  uint64_t dev_ = 0;
  Quota quota_;
  std::atomic<uint64_t> written_{0};
};

// A host descriptor the guest holds (a file or directory opened in a mount); closed when the
// last copy of the guest's descriptor table that holds it goes away.
struct HostHandle {
  std::shared_ptr<HostMount> mount;
  int fd = -1;
  bool is_dir = false;
  HostHandle(std::shared_ptr<HostMount> m, int f, bool d) : mount(std::move(m)), fd(f), is_dir(d) {}
  ~HostHandle();
  HostHandle(const HostHandle&) = delete;
  HostHandle& operator=(const HostHandle&) = delete;
};

}  // namespace brig::wasi

#endif
