/* statvfs for the guest (Debian's wasi-libc has neither the header nor the functions):
 * musl's layout, implemented by guest/libc_perms.c over brig's brig_fd_statvfs and
 * brig_path_statvfs host calls. build-libc-perms.sh puts this header in the guest's sysroot,
 * so that CPython's configure finds it and builds os.statvfs and os.fstatvfs. */
#ifndef _SYS_STATVFS_H
#define _SYS_STATVFS_H

#ifdef __cplusplus
extern "C" {
#endif

#define __NEED_fsblkcnt_t
#define __NEED_fsfilcnt_t
#include <bits/alltypes.h>

struct statvfs {
  unsigned long f_bsize, f_frsize;
  fsblkcnt_t f_blocks, f_bfree, f_bavail;
  fsfilcnt_t f_files, f_ffree, f_favail;
  unsigned long f_fsid;
  unsigned long f_flag, f_namemax;
  int __reserved[6];
};

int statvfs(const char* __restrict, struct statvfs* __restrict);
int fstatvfs(int, struct statvfs*);

#define ST_RDONLY 1
#define ST_NOSUID 2

#ifdef __cplusplus
}
#endif

#endif
