/* File modes and the file owner in the sandbox, for the guest's libc (Debian's wasi-libc),
 * which WASI preview 1 leaves without them: build-libc-perms.sh compiles this file into
 * libc-perms/perms.o, which CPython links (configure's LIBS) ahead of libc.a, so that
 * configure finds chmod, fchmod, fchmodat and umask, and so that fstat() and fstatat()
 * (stat, lstat) come from here, not from libc.a.
 *
 *   umask(mask)          the process's mask, kept here (in guest memory: it lives and is saved
 *                        with the sandbox like any other state); 022 at start.
 *   __brig_open/openat/mkdir/mkdirat(..., mode)
 *                        as open/openat/mkdir/mkdirat, with the mode that WASI's calls have no
 *                        argument for: told to the host (brig_create_mode) just before, for the
 *                        node the call creates. CPython's os.open, os.mkdir and io.FileIO use
 *                        them (CPython patch 0010); other creators get 0666/0777 less 022.
 *   chmod, fchmod, fchmodat
 *                        the host's brig_path_chmod / brig_fd_chmod. There are no symbolic
 *                        links, so AT_SYMLINK_NOFOLLOW changes nothing (as glibc's fchmodat on
 *                        a file that is not a link).
 *   fstat, fstatat       as wasi-libc's, plus the permission bits the host puts in the
 *                        filestat's padding (wasi/wasi_types.h: kFilestatModeFlag) and the
 *                        sandbox's single user (uid and gid 1000) as the owner of every file.
 *   statvfs, fstatvfs    the host's brig_path_statvfs / brig_fd_statvfs (the session's quotas;
 *                        guest/include/sys/statvfs.h, which wasi-libc lacks).
 *   eventfd, eventfd_read, eventfd_write
 *                        the host's brig_fd_eventfd (guest/include/sys/eventfd.h).
 *   mkfifo, mkfifoat     the host's brig_path_mkfifo: a named pipe in the sandbox's file system.
 *   getxattr, setxattr, removexattr, listxattr (and their l- and f- forms)
 *                        the host's brig_xattr (guest/include/sys/xattr.h; there are no symbolic
 *                        links, so the l- forms are the plain ones).
 *   strerror             as wasi-libc's, plus ENODATA (sys/xattr.h), which WASI lacks. CPython
 *                        links with --wrap=strerror (build-cpython.sh).
 *   select               as wasi-libc's, which refuses (ENOSYS) any descriptor in the
 *                        exceptional-condition set: in the sandbox none ever has one (that
 *                        needs sockets), so that set comes back empty, as Linux would leave it.
 *   an empty path        fails with ENOENT, as on Linux, in every call that takes a path
 *                        (the host's answer for ""): wasi-libc resolves "" to the working
 *                        directory. CPython links with
 *                        --wrap=__wasilibc_find_relpath_alloc (build-cpython.sh), so that
 *                        every path wasi-libc resolves goes through
 *                        __wrap___wasilibc_find_relpath_alloc here.
 *
 * The brig_* host calls are imported from the wasi_snapshot_preview1 module (brig's own
 * names there start with brig_), so that they reach the same host instance as WASI's calls.
 * Each returns a WASI errno. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <wasi/api.h>
#include <wasi/libc-find-relpath.h>
#include <wasi/libc-nocwd.h>
#include <wasi/libc.h>

#define BRIG_IMPORT(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))

/* The mode of the node the next create makes (07777), or kNoCreateMode: the host's default. */
uint16_t brig_create_mode_import(uint32_t mode) BRIG_IMPORT(brig_create_mode);
uint16_t brig_fd_chmod_import(uint32_t fd, uint32_t mode) BRIG_IMPORT(brig_fd_chmod);
uint16_t brig_fd_eventfd_import(uint32_t initval, uint32_t flags, uint32_t fd_out) BRIG_IMPORT(brig_fd_eventfd);
uint16_t brig_fd_statvfs_import(uint32_t fd, uint32_t out) BRIG_IMPORT(brig_fd_statvfs);
uint16_t brig_path_statvfs_import(uint32_t fd, uint32_t path, uint32_t path_len, uint32_t out)
    BRIG_IMPORT(brig_path_statvfs);
uint16_t brig_path_chmod_import(uint32_t fd, uint32_t path, uint32_t path_len, uint32_t mode)
    BRIG_IMPORT(brig_path_chmod);
uint16_t brig_path_mkfifo_import(uint32_t fd, uint32_t path, uint32_t path_len, uint32_t mode)
    BRIG_IMPORT(brig_path_mkfifo);
/* op: kXattr* below. A path call names (fd, path); kXattrOnFd: descriptor fd itself. get and
 * list write at most buf_len bytes at buf and the full size at size_out; set reads buf_len. */
uint16_t brig_xattr_import(uint32_t op, uint32_t fd, uint32_t path, uint32_t path_len, uint32_t name,
                           uint32_t name_len, uint32_t buf, uint32_t buf_len, uint32_t flags, uint32_t size_out)
    BRIG_IMPORT(brig_xattr);

#define kNoCreateMode 0xffffffffu
#define kModeFlag 0x8000u /* wasi_types.h: the padding holds a mode */
#define kFifoFlag 0x4000u /* wasi_types.h: ... of a pipe */
#define kSandboxUser 1000
/* Linux's S_IFIFO: wasi-libc's equals its S_IFSOCK (0140000). CPython's _stat module uses this
 * value too (CPython patch 0014), so stat.S_ISFIFO and S_ISSOCK tell pipes from sockets. */
#define kLinuxIfifo 0010000
/* brig_xattr's operations (wasi_context.h, BrigXattr). */
#define kXattrGet 0u
#define kXattrSet 1u
#define kXattrRemove 2u
#define kXattrList 3u
#define kXattrOnFd 0x100u

static mode_t g_umask = 022;

mode_t umask(mode_t mask) {
  mode_t old = g_umask;
  g_umask = mask & 0777;
  return old;
}

/* A path's preopened directory and the path relative to it, as wasi-libc's posix.c finds
 * them (its find_relpath is static). */
static int find_relpath(const char* path, char** relative) {
  static char* buf = NULL;
  static size_t buf_len = 0;
  const char* abs;
  int fd = __wasilibc_find_relpath_alloc ? __wasilibc_find_relpath_alloc(path, &abs, &buf, &buf_len, 1)
                                         : __wasilibc_find_relpath(path, &abs, &buf, buf_len);
  *relative = buf;  /* assigned after the call, which may move it */
  return fd;
}

/* `path` as the host calls take it: a directory descriptor and a path relative to it. For
 * AT_FDCWD that is the preopen holding `path` (ENOENT when none does); any other `*fd` is
 * kept, with `path` as given. Returns 0, or -1 with errno set. */
static int resolve_at(int* fd, const char* path, const char** rel) {
  *rel = path;
  if (*fd != AT_FDCWD) return 0;
  char* found;
  *fd = find_relpath(path, &found);
  if (*fd == -1) {
    errno = ENOENT;
    return -1;
  }
  *rel = found;
  return 0;
}

static int set_errno(uint16_t e) {
  if (e == 0) return 0;
  errno = e;
  return -1;
}

static void create_mode(mode_t mode) { (void)brig_create_mode_import(mode & 07777 & ~g_umask); }
static void no_create_mode(void) { (void)brig_create_mode_import(kNoCreateMode); }

int __brig_open(const char* path, int oflag, mode_t mode) {
  if (!(oflag & O_CREAT)) return open(path, oflag);
  create_mode(mode);
  int fd = open(path, oflag, mode);
  no_create_mode();
  return fd;
}

int __brig_openat(int dirfd, const char* path, int oflag, mode_t mode) {
  if (!(oflag & O_CREAT)) return openat(dirfd, path, oflag);
  create_mode(mode);
  int fd = openat(dirfd, path, oflag, mode);
  no_create_mode();
  return fd;
}

int __brig_mkdir(const char* path, mode_t mode) {
  create_mode(mode);
  int r = mkdir(path, mode);
  no_create_mode();
  return r;
}

int __brig_mkdirat(int dirfd, const char* path, mode_t mode) {
  create_mode(mode);
  int r = mkdirat(dirfd, path, mode);
  no_create_mode();
  return r;
}

int fchmodat(int fd, const char* path, mode_t mode, int flag) {
  if (flag & ~AT_SYMLINK_NOFOLLOW) {
    errno = EINVAL;
    return -1;
  }
  const char* rel;
  if (resolve_at(&fd, path, &rel) != 0) return -1;
  return set_errno(brig_path_chmod_import((uint32_t)fd, (uint32_t)(uintptr_t)rel, strlen(rel), mode & 07777));
}

int chmod(const char* path, mode_t mode) { return fchmodat(AT_FDCWD, path, mode, 0); }

int fchmod(int fd, mode_t mode) { return set_errno(brig_fd_chmod_import((uint32_t)fd, mode & 07777)); }

/* wasi-libc's to_public_stat (cloudlibc's stat_impl.h), with the mode and the owner. */
static void to_public_stat(const __wasi_filestat_t* in, struct stat* out) {
  *out = (struct stat){
      .st_dev = in->dev,
      .st_ino = in->ino,
      .st_nlink = in->nlink,
      .st_size = in->size,
      .st_atim = {.tv_sec = in->atim / 1000000000, .tv_nsec = in->atim % 1000000000},
      .st_mtim = {.tv_sec = in->mtim / 1000000000, .tv_nsec = in->mtim % 1000000000},
      .st_ctim = {.tv_sec = in->ctim / 1000000000, .tv_nsec = in->ctim % 1000000000},
      .st_uid = kSandboxUser,
      .st_gid = kSandboxUser,
  };
  const unsigned char* pad = (const unsigned char*)&in->filetype;
  uint32_t extra = pad[2] | (uint32_t)pad[3] << 8; /* bytes 18-19 of the filestat */
  if (extra & kModeFlag) out->st_mode = extra & 07777;
  if ((extra & kModeFlag) && (extra & kFifoFlag)) out->st_mode |= kLinuxIfifo; /* a pipe */
  switch (in->filetype) {
    case __WASI_FILETYPE_BLOCK_DEVICE: out->st_mode |= S_IFBLK; break;
    case __WASI_FILETYPE_CHARACTER_DEVICE: out->st_mode |= S_IFCHR; break;
    case __WASI_FILETYPE_DIRECTORY: out->st_mode |= S_IFDIR; break;
    case __WASI_FILETYPE_REGULAR_FILE: out->st_mode |= S_IFREG; break;
    case __WASI_FILETYPE_SOCKET_DGRAM:
    case __WASI_FILETYPE_SOCKET_STREAM: out->st_mode |= S_IFSOCK; break;
    case __WASI_FILETYPE_SYMBOLIC_LINK: out->st_mode |= S_IFLNK; break;
  }
}

/* cloudlibc's errno_fixup_directory: ENOTCAPABLE on a descriptor that is not a directory. */
static int errno_fixup_directory(int fd, __wasi_errno_t error) {
  __wasi_fdstat_t fds;
  if (error == __WASI_ERRNO_NOTCAPABLE && __wasi_fd_fdstat_get(fd, &fds) == 0 &&
      fds.fs_filetype != __WASI_FILETYPE_DIRECTORY)
    return ENOTDIR;
  return error;
}

int fstat(int fildes, struct stat* buf) {
  __wasi_filestat_t internal_stat;
  __wasi_errno_t error = __wasi_fd_filestat_get(fildes, &internal_stat);
  if (error != 0) {
    errno = error;
    return -1;
  }
  to_public_stat(&internal_stat, buf);
  return 0;
}

int __wasilibc_nocwd_fstatat(int fd, const char* restrict path, struct stat* restrict buf, int flag) {
  __wasi_lookupflags_t lookup_flags = 0;
  if ((flag & AT_SYMLINK_NOFOLLOW) == 0) lookup_flags |= __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;
  __wasi_filestat_t internal_stat;
  __wasi_errno_t error = __wasi_path_filestat_get(fd, lookup_flags, path, &internal_stat);
  if (error != 0) {
    errno = errno_fixup_directory(fd, error);
    return -1;
  }
  to_public_stat(&internal_stat, buf);
  return 0;
}

/* The host's eleven u64 (wasi_context.h, BrigFdStatvfs) into musl's struct statvfs. */
static void to_statvfs(const uint64_t in[11], struct statvfs* out) {
  memset(out, 0, sizeof *out);
  out->f_bsize = (unsigned long)in[0];
  out->f_frsize = (unsigned long)in[1];
  out->f_blocks = in[2];
  out->f_bfree = in[3];
  out->f_bavail = in[4];
  out->f_files = in[5];
  out->f_ffree = in[6];
  out->f_favail = in[7];
  out->f_fsid = (unsigned long)in[8];
  out->f_flag = (unsigned long)in[9];
  out->f_namemax = (unsigned long)in[10];
}

int fstatvfs(int fd, struct statvfs* buf) {
  uint64_t v[11];
  if (set_errno(brig_fd_statvfs_import((uint32_t)fd, (uint32_t)(uintptr_t)v)) != 0) return -1;
  to_statvfs(v, buf);
  return 0;
}

int statvfs(const char* restrict path, struct statvfs* restrict buf) {
  int dirfd = AT_FDCWD;
  const char* relative;
  if (resolve_at(&dirfd, path, &relative) != 0) return -1;
  uint64_t v[11];
  if (set_errno(brig_path_statvfs_import((uint32_t)dirfd, (uint32_t)(uintptr_t)relative, (uint32_t)strlen(relative),
                                         (uint32_t)(uintptr_t)v)) != 0)
    return -1;
  to_statvfs(v, buf);
  return 0;
}

/* Every path wasi-libc resolves (open, stat, mkdir, access, opendir, ...), and ours, comes
 * here first (--wrap): "" is no file, as on Linux, instead of the working directory. Failing
 * here would not do (wasi-libc's callers then say ENOTCAPABLE, not ENOENT): "" goes to the host
 * as itself, relative to "/", and the host answers ENOENT for an empty path. */
int __real___wasilibc_find_relpath_alloc(const char* path, const char** abs, char** relative, size_t* relative_len,
                                         int can_realloc);
int __wrap___wasilibc_find_relpath_alloc(const char* path, const char** abs, char** relative, size_t* relative_len,
                                         int can_realloc) {
  if (path[0] == '\0') {
    int fd = __real___wasilibc_find_relpath_alloc("/", abs, relative, relative_len, can_realloc);
    if (fd != -1) (*relative)[0] = '\0'; /* "." in a buffer of at least 2 bytes */
    return fd;
  }
  return __real___wasilibc_find_relpath_alloc(path, abs, relative, relative_len, can_realloc);
}

int eventfd(unsigned int initval, int flags) {
  if (flags & ~(EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK)) {
    errno = EINVAL;
    return -1;
  }
  uint32_t fd;
  if (set_errno(brig_fd_eventfd_import(initval, (uint32_t)(flags & (EFD_SEMAPHORE | EFD_NONBLOCK)),
                                       (uint32_t)(uintptr_t)&fd)) != 0)
    return -1;
  return (int)fd;
}

int eventfd_read(int fd, eventfd_t* value) { return read(fd, value, sizeof *value) == sizeof *value ? 0 : -1; }

int eventfd_write(int fd, eventfd_t value) { return write(fd, &value, sizeof value) == sizeof value ? 0 : -1; }

int select(int nfds, fd_set* restrict readfds, fd_set* restrict writefds, fd_set* restrict errorfds,
           struct timeval* restrict timeout) {
  if (errorfds != NULL) {
    /* Each descriptor there must still be open, as Linux checks. */
    for (size_t i = 0; i < errorfds->__nfds; ++i) {
      __wasi_fdstat_t st;
      const int fd = errorfds->__fds[i];
      if (fd < nfds && __wasi_fd_fdstat_get((__wasi_fd_t)fd, &st) != 0) {
        errno = EBADF;
        return -1;
      }
    }
  }
  struct timespec ts;
  if (timeout != NULL) {
    if (timeout->tv_sec < 0 || timeout->tv_usec < 0 || timeout->tv_usec >= 1000000) {
      errno = EINVAL;
      return -1;
    }
    ts.tv_sec = timeout->tv_sec;
    ts.tv_nsec = (long)timeout->tv_usec * 1000;
  }
  int n = pselect(nfds, readfds, writefds, NULL, timeout != NULL ? &ts : NULL, NULL);
  if (n >= 0 && errorfds != NULL) FD_ZERO(errorfds);
  return n;
}

int mkfifoat(int fd, const char* path, mode_t mode) {
  const char* rel;
  if (resolve_at(&fd, path, &rel) != 0) return -1;
  return set_errno(
      brig_path_mkfifo_import((uint32_t)fd, (uint32_t)(uintptr_t)rel, strlen(rel), mode & 07777 & ~g_umask));
}

int mkfifo(const char* path, mode_t mode) { return mkfifoat(AT_FDCWD, path, mode); }

/* One brig_xattr call: on `fd` itself when path is NULL, else on path (relative to the working
 * directory). Returns the size the host reported (get, list), 0 (set, remove), or -1. */
static ssize_t xattr_call(uint32_t op, int fd, const char* path, const char* name, const void* buf, size_t len,
                          int flags) {
  const char* rel = "";
  if (path != NULL) {
    fd = AT_FDCWD;
    if (resolve_at(&fd, path, &rel) != 0) return -1;
  } else {
    op |= kXattrOnFd;
  }
  uint32_t size = 0;
  uint16_t e = brig_xattr_import(op, (uint32_t)fd, (uint32_t)(uintptr_t)rel, strlen(rel), (uint32_t)(uintptr_t)name,
                                 name != NULL ? strlen(name) : 0, (uint32_t)(uintptr_t)buf, (uint32_t)len,
                                 (uint32_t)flags, (uint32_t)(uintptr_t)&size);
  if (set_errno(e) != 0) return -1;
  return (ssize_t)size;
}

ssize_t getxattr(const char* path, const char* name, void* value, size_t size) {
  return xattr_call(kXattrGet, -1, path, name, value, size, 0);
}
ssize_t lgetxattr(const char* path, const char* name, void* value, size_t size) {
  return xattr_call(kXattrGet, -1, path, name, value, size, 0);
}
ssize_t fgetxattr(int fd, const char* name, void* value, size_t size) {
  return xattr_call(kXattrGet, fd, NULL, name, value, size, 0);
}
ssize_t listxattr(const char* path, char* list, size_t size) {
  return xattr_call(kXattrList, -1, path, NULL, list, size, 0);
}
ssize_t llistxattr(const char* path, char* list, size_t size) {
  return xattr_call(kXattrList, -1, path, NULL, list, size, 0);
}
ssize_t flistxattr(int fd, char* list, size_t size) { return xattr_call(kXattrList, fd, NULL, NULL, list, size, 0); }
int setxattr(const char* path, const char* name, const void* value, size_t size, int flags) {
  return (int)xattr_call(kXattrSet, -1, path, name, value, size, flags);
}
int lsetxattr(const char* path, const char* name, const void* value, size_t size, int flags) {
  return (int)xattr_call(kXattrSet, -1, path, name, value, size, flags);
}
int fsetxattr(int fd, const char* name, const void* value, size_t size, int flags) {
  return (int)xattr_call(kXattrSet, fd, NULL, name, value, size, flags);
}
int removexattr(const char* path, const char* name) { return (int)xattr_call(kXattrRemove, -1, path, name, NULL, 0, 0); }
int lremovexattr(const char* path, const char* name) {
  return (int)xattr_call(kXattrRemove, -1, path, name, NULL, 0, 0);
}
int fremovexattr(int fd, const char* name) { return (int)xattr_call(kXattrRemove, fd, NULL, name, NULL, 0, 0); }

char* __real_strerror(int e);
char* __wrap_strerror(int e) {
  if (e == ENODATA) return (char*)"No data available"; /* Linux's text */
  return __real_strerror(e);
}
