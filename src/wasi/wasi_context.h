// brig::wasi::WasiContext: the WASI preview-1 host functions for one sandbox.
//
// One member per WASI import, taking the guest memory and the raw u32/u64 arguments exactly
// as the wasm import receives them, returning the WASI errno (err::*). Every guest pointer
// and length is bounds-checked before use (EFAULT, nothing changed); output pointers are
// checked before any side effect where the call has one. No member throws: a C++ exception
// inside a call becomes ENOMEM (bad_alloc) or EIO, because the callers are C frames.
//
// Descriptors: 0 stdin (always at EOF), 1 stdout and 2 stderr (captured, bounded), 3 the
// preopened directory "/" of the VFS, then files and directories the guest opens (the
// lowest free number first, at most Options::max_fds, else EMFILE). stdio report as
// character devices. Rights are accepted permissively (masked to what brig can grant);
// what is enforced: read needs FD_READ, write needs FD_WRITE (else EBADF), read-only parts
// of the VFS (EROFS), O_DIRECTORY, and that directories are not written.
// Paths are resolved in the VFS: absolute paths start at its root, ".." stops at "/",
// except under the mount points of Options::mounts (host directories, wasi/host_mount.h);
// there are no symlinks (path_symlink and path_link: EPERM; path_readlink: EINVAL).
// Sockets are never granted (sock_*: ENOTSUP).
// File modes: each VFS node has POSIX permission bits (vfs::Node::mode), reported in the
// filestat's padding (wasi_types.h: kFilestatModeFlag) and set with brig's own calls below;
// the guest is their owner and not root (vfs::FileSystem checks them).
//
// Thread-safety: not thread-safe; one guest calls it at a time. Lifetime: the FileSystem
// must outlive the context.
#ifndef BRIG_WASI_WASI_CONTEXT_H_
#define BRIG_WASI_WASI_CONTEXT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfs/file_system.h"
#include "wasi/guest_memory.h"
#include "wasi/host_mount.h"
#include "wasi/output_capture.h"
#include "wasi/event_counter.h"
#include "wasi/pipe_buffer.h"
#include "wasi/tape.h"

namespace brig::wasi {

class WasiContext {
 public:
  using u32 = uint32_t;
  using u64 = uint64_t;

  struct Options {
    std::vector<std::string> args;  // argv, argv[0] first
    std::vector<std::string> env;   // "NAME=value" strings
    uint64_t stdout_cap = 1 << 20;  // bytes kept; the rest dropped and counted
    uint64_t stderr_cap = 1 << 20;
    // Sleeps for the given ns (poll_oneoff clock subscriptions). Empty: nanosleep.
    std::function<void(uint64_t ns)> sleep;
    uint32_t max_fds = 1024;  // descriptor numbers 0 .. max_fds-1
    uint32_t max_random_per_call = 1 << 20;  // random_get longer than this: EINVAL
    // For making images: every clock reads a fixed start plus 1 µs per reading, and
    // random_get returns a pseudo-random stream (splitmix64) that only `random_seed` decides,
    // so that the same guest build started with the same seed ends in the same memory. The
    // image maker draws a fresh seed per image (the guest's string-hash secret comes from
    // this stream) and records it with the image.
    bool deterministic = false;
    uint64_t random_seed = 0;
    // Host directories shown at their mount points (wasi/host_mount.h); their points must
    // pass CheckMountPoints. A path that, taken lexically from the root (".." never above
    // "/"), reaches a mount point continues inside that mount, resolved there by the kernel.
    // Renames and links between a mount and anything else: EXDEV. Not listed in their parent
    // directories, which need not exist.
    std::vector<std::shared_ptr<HostMount>> mounts;
  };

  WasiContext(vfs::FileSystem& fs, Options options);
  ~WasiContext();
  WasiContext(const WasiContext&) = delete;
  WasiContext& operator=(const WasiContext&) = delete;

  // ---- The imports (names as in wasi_snapshot_preview1).
  u32 ArgsGet(GuestMemory& m, u32 argv, u32 argv_buf);
  u32 ArgsSizesGet(GuestMemory& m, u32 argc_out, u32 argv_buf_size_out);
  u32 EnvironGet(GuestMemory& m, u32 environ, u32 environ_buf);
  u32 EnvironSizesGet(GuestMemory& m, u32 count_out, u32 buf_size_out);
  // REALTIME and MONOTONIC are the host's; PROCESS/THREAD_CPUTIME count from the
  // context's creation. Other ids: EINVAL.
  u32 ClockResGet(GuestMemory& m, u32 id, u32 res_out);
  u32 ClockTimeGet(GuestMemory& m, u32 id, u64 precision, u32 time_out);
  u32 FdAdvise(GuestMemory& m, u32 fd, u64 offset, u64 len, u32 advice);
  u32 FdAllocate(GuestMemory& m, u32 fd, u64 offset, u64 len);
  u32 FdClose(GuestMemory& m, u32 fd);
  u32 FdDatasync(GuestMemory& m, u32 fd);
  u32 FdFdstatGet(GuestMemory& m, u32 fd, u32 stat_out);
  u32 FdFdstatSetFlags(GuestMemory& m, u32 fd, u32 flags);
  // Rights may only be dropped (ENOTCAPABLE otherwise).
  u32 FdFdstatSetRights(GuestMemory& m, u32 fd, u64 base, u64 inheriting);
  u32 FdFilestatGet(GuestMemory& m, u32 fd, u32 stat_out);
  u32 FdFilestatSetSize(GuestMemory& m, u32 fd, u64 size);
  u32 FdFilestatSetTimes(GuestMemory& m, u32 fd, u64 atim, u64 mtim, u32 fst_flags);
  u32 FdPread(GuestMemory& m, u32 fd, u32 iovs, u32 iovs_len, u64 offset, u32 nread_out);
  u32 FdPrestatGet(GuestMemory& m, u32 fd, u32 prestat_out);
  u32 FdPrestatDirName(GuestMemory& m, u32 fd, u32 path, u32 path_len);
  u32 FdPwrite(GuestMemory& m, u32 fd, u32 iovs, u32 iovs_len, u64 offset, u32 nwritten_out);
  u32 FdRead(GuestMemory& m, u32 fd, u32 iovs, u32 iovs_len, u32 nread_out);
  // Entries ".", "..", then the directory's entries by name; d_next of entry i is i + 1.
  // The last entry is cut off when the buffer is full (bufused == buf_len): the guest
  // retries from its cookie with a bigger buffer. The listing is taken at cookie 0.
  u32 FdReaddir(GuestMemory& m, u32 fd, u32 buf, u32 buf_len, u64 cookie, u32 bufused_out);
  u32 FdRenumber(GuestMemory& m, u32 fd, u32 to);
  u32 FdSeek(GuestMemory& m, u32 fd, u64 offset, u32 whence, u32 newoffset_out);
  u32 FdSync(GuestMemory& m, u32 fd);
  u32 FdTell(GuestMemory& m, u32 fd, u32 offset_out);
  // stdout/stderr: always succeeds (bytes past the cap are dropped). Files: ENOSPC/EFBIG
  // when nothing could be written, else a short count.
  u32 FdWrite(GuestMemory& m, u32 fd, u32 iovs, u32 iovs_len, u32 nwritten_out);
  u32 PathCreateDirectory(GuestMemory& m, u32 fd, u32 path, u32 path_len);
  u32 PathFilestatGet(GuestMemory& m, u32 fd, u32 flags, u32 path, u32 path_len, u32 stat_out);
  u32 PathFilestatSetTimes(GuestMemory& m, u32 fd, u32 flags, u32 path, u32 path_len, u64 atim, u64 mtim,
                           u32 fst_flags);
  u32 PathLink(GuestMemory& m, u32 old_fd, u32 old_flags, u32 old_path, u32 old_path_len, u32 new_fd,
               u32 new_path, u32 new_path_len);
  u32 PathOpen(GuestMemory& m, u32 fd, u32 dirflags, u32 path, u32 path_len, u32 oflags, u64 rights_base,
               u64 rights_inheriting, u32 fdflags, u32 fd_out);
  u32 PathReadlink(GuestMemory& m, u32 fd, u32 path, u32 path_len, u32 buf, u32 buf_len, u32 bufused_out);
  u32 PathRemoveDirectory(GuestMemory& m, u32 fd, u32 path, u32 path_len);
  u32 PathRename(GuestMemory& m, u32 fd, u32 old_path, u32 old_path_len, u32 new_fd, u32 new_path,
                 u32 new_path_len);
  u32 PathSymlink(GuestMemory& m, u32 old_path, u32 old_path_len, u32 fd, u32 new_path, u32 new_path_len);
  u32 PathUnlinkFile(GuestMemory& m, u32 fd, u32 path, u32 path_len);
  // Clock subscriptions: sleeps (through Options::sleep) for the smallest timeout unless
  // another subscription is ready. fd_read/fd_write on open descriptors are ready at once,
  // except on pipes (BrigFdPipe).
  u32 PollOneoff(GuestMemory& m, u32 in, u32 out, u32 nsubscriptions, u32 nevents_out);
  // Records the exit code only; the caller (wasi_imports.cc) leaves guest execution.
  void ProcExit(u32 code) noexcept;
  u32 RandomGet(GuestMemory& m, u32 buf, u32 buf_len);
  u32 SchedYield();
  u32 SockAccept(GuestMemory& m, u32 fd, u32 flags, u32 fd_out);
  u32 SockRecv(GuestMemory& m, u32 fd, u32 ri_data, u32 ri_data_len, u32 ri_flags, u32 ro_datalen_out,
               u32 ro_flags_out);
  u32 SockSend(GuestMemory& m, u32 fd, u32 si_data, u32 si_data_len, u32 si_flags, u32 so_datalen_out);
  u32 SockShutdown(GuestMemory& m, u32 fd, u32 how);

  // ---- brig's own calls, for what WASI preview 1 lacks: file modes (the guest's libc,
  // guest/libc_perms.c). Imported from the wasi_snapshot_preview1 module under these names
  // (brig_imports.cc); same conventions as the WASI calls (a WASI errno, guest values checked).
  // brig_create_mode(mode): the permission bits (<= 07777) of the node that the next
  // path_open or path_create_directory creates (the guest applied its umask); 0xffffffff:
  // the defaults, 0644 for files and 0755 for directories. Other values: EINVAL. Every
  // path_open and path_create_directory uses it up. Not part of copied or saved state.
  u32 BrigCreateMode(GuestMemory& m, u32 mode);
  // chmod of an open descriptor / of a path (no symlinks: nothing to follow). `mode` > 07777:
  // EINVAL. EROFS in read-only parts, EPERM for stdio and inside host mounts (their modes are
  // the host's), EBADF, ENOENT, EFAULT as usual.
  u32 BrigFdChmod(GuestMemory& m, u32 fd, u32 mode);
  u32 BrigPathChmod(GuestMemory& m, u32 fd, u32 path, u32 path_len, u32 mode);

  // ---- brig's own calls, imported by the guest under wasi_snapshot_preview1 as brig_*.
  // brig_fd_pipe: a pipe inside the sandbox (os.pipe): writes the read end's and the write
  // end's numbers (two u32) at fds_out. EFAULT (nothing opened) if fds_out is out of
  // bounds; EMFILE if the table cannot hold both. The buffer holds PipeBuffer::kCapacity
  // bytes. The guest is one thread and no other process exists, so nothing ever waits: a read
  // of an empty pipe returns EAGAIN while a write end is open (0, end of file, once all are
  // closed), a write to a full pipe EAGAIN (else a short write of what fits), and a write
  // with no read end open EPIPE. Blocking and O_NONBLOCK ends behave alike. Not seekable
  // (ESPIPE), filetype unknown (WASI has no FIFO type), rights as stdio's. poll_oneoff: a read
  // end is ready when it holds bytes (nbytes), a write end when it has room (nbytes: the free
  // space), either with hangup once the other end is closed; otherwise not ready, and only
  // clocks can end the wait (no clock: poll_oneoff returns no events rather than waiting). Forks and checkpoints copy the bytes (CopyStateFrom); a session
  // saved to its store does not keep them (SaveFds skips pipes).
  u32 BrigFdPipe(GuestMemory& m, u32 fds_out);
  // brig_fd_dup: another descriptor, the lowest free number >= min_fd, for the same open
  // file (F_DUPFD): both share its offset, flags and rights, as POSIX's open file description;
  // closing one leaves the other open. Writes the number (u32) at fd_out. EFAULT if fd_out is
  // out of bounds, EBADF if fd is not open, EINVAL if min_fd >= max_fds, EMFILE if no number
  // from min_fd up is free. (WASI preview 1 has fd_renumber, which moves, but no dup.)
  u32 BrigFdDup(GuestMemory& m, u32 fd, u32 min_fd, u32 fd_out);
  // brig_fd_dup2: makes `to` a descriptor of fd's open file, closing what `to` was (dup2).
  // EBADF if fd is not open or to >= max_fds; fd == to does nothing.
  u32 BrigFdDup2(GuestMemory& m, u32 fd, u32 to);
  // brig_fd_statvfs / brig_path_statvfs: what statvfs(3) says of the file system holding an
  // open descriptor / a path (which must exist), as eleven u64 at `out` (kStatvfsBytes):
  // bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax. The
  // sandbox's own writable trees (/home/user, /tmp) answer from the session's quotas: blocks
  // of 4096 bytes up to max_total_bytes, those not used free; files up to max_files. A host
  // mount answers from its own write quota (blocks; no file count), the read-only parts (the
  // stdlib, /usr/share/zoneinfo, "/") as full and read-only (flag ST_RDONLY, 1); stdio and
  // pipes with zeros. Never the host's disk. EBADF, ENOENT, EFAULT (nothing written) as usual.
  static constexpr u32 kStatvfsBytes = 11 * 8;
  // brig_fd_eventfd: an eventfd inside the sandbox (os.eventfd) counting from `initval`;
  // writes its number (u32) at fd_out. flags: kEventfdSemaphore (EFD_SEMAPHORE) and
  // kFdflagNonblock (EFD_NONBLOCK: the guest's O_NONBLOCK); others EINVAL. A read takes 8
  // bytes, the count (1 in semaphore mode) and lowers it by that; a write of 8 bytes adds to
  // it; fewer bytes or a write of 2^64-1: EINVAL. As for pipes nothing waits: a read at 0
  // and a write past 2^64-2 answer EAGAIN at once, blocking or not. poll_oneoff: readable when
  // the count is not 0, writable below 2^64-2. Not seekable, filetype unknown. Forks and
  // checkpoints copy the count; a session saved to its store does not keep it (closed,
  // EBADF, in another process). EFAULT (nothing opened), EMFILE.
  static constexpr u32 kEventfdSemaphore = 1;
  u32 BrigFdEventfd(GuestMemory& m, u32 initval, u32 flags, u32 fd_out);
  u32 BrigFdStatvfs(GuestMemory& m, u32 fd, u32 out);
  u32 BrigPathStatvfs(GuestMemory& m, u32 fd, u32 path, u32 path_len, u32 out);
  // brig_path_mkfifo: mkfifo(3) of (fd, path) with permission bits `mode` (the guest applied
  // its umask; above 07777: EINVAL): a named pipe in the sandbox's file system (vfs::NodeType
  // kFifo). path_open of it gives an end of one pipe buffer shared by every descriptor open
  // on it (BrigFdPipe's rules: nothing ever waits), emptied once the last is closed: a read
  // end when opened for reading, a write end for writing. Opened for writing while no read end
  // is open: ENXIO (Linux's O_NONBLOCK answer; a blocking open would wait forever, as nothing
  // else can open it); for both (O_RDWR): EINVAL. fstat says S_IFIFO and the node's mode.
  // Inside a host mount: EPERM. Errors of mkdir otherwise (EEXIST, ENOENT, EROFS, ENOSPC...).
  // The node is saved with the session; what is in the pipe is not (as BrigFdPipe).
  u32 BrigPathMkfifo(GuestMemory& m, u32 fd, u32 path, u32 path_len, u32 mode);
  // brig_xattr: the extended-attribute calls (getxattr(2), setxattr, removexattr, listxattr)
  // on (fd, path), or with kXattrOnFd on descriptor fd itself (the f- forms). Names and rules:
  // vfs/xattrs.h and FileSystem::GetXattr. `name` is name_len bytes (more than 255: ERANGE).
  //   get:    copies the value to buf if buf_len > 0 (ERANGE if it does not fit); writes its
  //           size (u32) at size_out. ENODATA (err::kNoData) if it is not set.
  //   set:    the value is buf_len bytes at buf (more than 64 KiB: E2BIG); flags
  //           kXattrCreate (EEXIST if set) and kXattrReplace (ENODATA if not); others EINVAL.
  //   remove: ENODATA if it is not set.
  //   list:   every name, each followed by a NUL, to buf if buf_len > 0 (ERANGE if they do
  //           not fit); their size at size_out.
  // stdio, pipes, eventfds and anything in a host mount: ENOTSUP. EFAULT (nothing changed) for
  // a range outside guest memory, EINVAL for an unknown op.
  static constexpr u32 kXattrGet = 0, kXattrSet = 1, kXattrRemove = 2, kXattrList = 3;
  static constexpr u32 kXattrOnFd = 0x100;
  static constexpr u32 kXattrCreate = 1, kXattrReplace = 2;
  u32 BrigXattr(GuestMemory& m, u32 op, u32 fd, u32 path, u32 path_len, u32 name, u32 name_len, u32 buf,
                u32 buf_len, u32 flags, u32 size_out);

  // ---- Host side.
  const std::string& stdout_data() const { return stdout_.data(); }
  bool stdout_truncated() const { return stdout_.truncated(); }
  uint64_t stdout_dropped() const { return stdout_.dropped(); }
  const std::string& stderr_data() const { return stderr_.data(); }
  bool stderr_truncated() const { return stderr_.truncated(); }
  uint64_t stderr_dropped() const { return stderr_.dropped(); }
  // Empties both capture buffers and their dropped counts.
  void ClearOutput();
  // Streaming: `sink` is called with each piece of stdout (fd 1) or stderr (fd 2) that the
  // capture keeps, as the guest writes it (bytes past the cap are dropped before it, so the
  // pieces add up to stdout_data()/stderr_data()). Never called while the tape replays. It runs
  // inside the guest call, in host code (a timeout waits for it to return); an exception
  // from it is swallowed and ends the calls to it until the next set_output_sink (the guest's
  // write succeeds either way). Empty: none (the default; costs one test per write).
  using OutputSink = std::function<void(u32 fd, std::string_view bytes)>;
  void set_output_sink(OutputSink sink) {
    sink_ = std::move(sink);
    sink_failed_ = false;
  }
  // The code passed to proc_exit, if the guest called it.
  std::optional<uint32_t> exit_code() const { return exit_code_; }
  void ClearExitCode() { exit_code_.reset(); }
  // Number of open descriptors (stdio and the preopen included).
  size_t open_fd_count() const;
  vfs::FileSystem& fs() { return fs_; }
  const Options& options() const { return options_; }

  // ---- Copies and replays (checkpoints, forks, rollback: src/sandbox/transaction.cc).

  // Makes this context's descriptors, clocks and exit code those of `other`, whose file system
  // was copied into this context's by FileSystem::Clone(map): each descriptor's node becomes
  // its copy. Captured output is not copied. REQUIRES: fs() is that copy.
  void CopyStateFrom(const WasiContext& other, vfs::FileSystem::NodeMap* map);
  // Clock readings and random bytes go through `tape` (null: none): see wasi/tape.h.
  void set_tape(Tape* tape) { tape_ = tape; }

  // ---- Saved state: the descriptors a guest holds open (open file objects), so that a
  // session restored in another process finds them as it left them. Only files and
  // directories under the writable mounts are described, by path; others (stdio, the
  // preopen, stdlib files, unlinked files) are not.
  struct SavedFd {
    u32 fd = 0;
    bool directory = false;
    std::string path;
    u64 offset = 0;
    uint16_t fdflags = 0;
    u64 rights_base = 0;
    u64 rights_inheriting = 0;
  };
  std::vector<SavedFd> SaveFds() const;
  // Opens each saved descriptor again at its number. REQUIRES: no descriptors above the
  // preopen are open. Returns those that could not be reopened (path gone, bad number).
  std::vector<u32> RestoreFds(const std::vector<SavedFd>& saved);

 private:
  struct Fd;
  Fd* GetFd(u32 fd);
  u32 AllocateFd(std::shared_ptr<Fd> entry, u32* out);
  // Makes *entry an end of named pipe `node` (BrigPathMkfifo): kind, pipe and rights.
  u32 OpenNamedPipe(const vfs::NodeRef& node, u64 rights_base, Fd* entry);
  // Whether a write end (else a read end) of `pipe` is open.
  bool PipeEndOpen(const PipeBuffer* pipe, bool write_end) const;
  u32 ReadPath(GuestMemory& m, u32 ptr, u32 len, std::string* out);
  u32 DirFd(u32 fd, vfs::NodeRef* dir);
  // Where (descriptor `fd`, `path`) leads: a VFS directory and the path in it, or a host
  // mount, a host directory descriptor in it and the path relative to that.
  struct Target {
    vfs::NodeRef dir;
    std::shared_ptr<HostMount> mount;  // non-null: in a mount
    int host_dir = -1;
    std::string path;
  };
  u32 Resolve(GuestMemory& m, u32 fd, u32 ptr, u32 len, Target* t);
  // The host descriptor of a mounted file or directory the guest opened; null for others.
  HostHandle* Host(u32 fd);
  // The two (directory, path) pairs of path_link and path_rename.
  u32 TwoPaths(GuestMemory& m, u32 fd_a, u32 ptr_a, u32 len_a, u32 fd_b, u32 ptr_b, u32 len_b, Target* a,
               Target* b);
  u32 ReadIovecs(GuestMemory& m, u32 iovs, u32 iovs_len, std::vector<Iovec>* out);
  u32 DoRead(GuestMemory& m, Fd& f, u32 iovs, u32 iovs_len, std::optional<u64> offset, u32 nread_out);
  u32 DoWrite(GuestMemory& m, Fd& f, u32 iovs, u32 iovs_len, std::optional<u64> offset, u32 nwritten_out);
  u32 SetTimes(const vfs::NodeRef& node, u64 atim, u64 mtim, u32 fst_flags);
  u32 WriteFilestat(GuestMemory& m, const Fd* f, const vfs::NodeRef& node, u32 out);
  // BrigFdStatvfs's answer for a node of the VFS (null: stdio or a pipe) or a host mount.
  u32 WriteStatvfs(GuestMemory& m, const vfs::Node* node, const HostMount* mount, u32 out);
  uint64_t MonotonicNs() const;
  // A clock reading: the host's, or the fixed sequence of Options::deterministic.
  uint64_t ClockNow(u32 id);

  vfs::FileSystem& fs_;
  Options options_;
  OutputCapture stdout_, stderr_;
  // Index = descriptor number; null = free. Descriptors made by brig_fd_dup share one Fd.
  std::vector<std::shared_ptr<Fd>> fds_;
  uint64_t created_ns_;                    // MONOTONIC at construction (CPU-time clocks)
  std::optional<uint32_t> exit_code_;
  uint64_t fake_clock_ns_ = 0;  // Options::deterministic: readings so far, in ns
  uint64_t fake_random_ = 0;    // Options::deterministic: splitmix64 state
  Tape* tape_ = nullptr;        // records or replays readings from outside; null: none
  OutputSink sink_;             // see set_output_sink
  bool sink_failed_ = false;    // the sink threw: not called again
  static constexpr u32 kDefaultCreateMode = 0xffffffff;
  u32 create_mode_ = kDefaultCreateMode;  // brig_create_mode, until the next create
  // The mode for a create now (the pending one or `fallback`); clears the pending one.
  uint16_t TakeCreateMode(uint16_t fallback);
};

// The WASI errno for a VFS error.
uint32_t ToWasiErrno(vfs::Error e);

}  // namespace brig::wasi

#endif
