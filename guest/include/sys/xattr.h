/* Extended attributes for the guest (Debian's wasi-libc has neither the header nor the
 * functions): glibc's declarations, implemented by guest/libc_perms.c over brig's brig_xattr
 * host call (the attributes live with the file in the sandbox's file system). build-libc-perms.sh
 * puts this header in the guest's sysroot, so that CPython's configure finds it and builds
 * os.getxattr and the rest (CPython patch 0014). */
#ifndef _SYS_XATTR_H
#define _SYS_XATTR_H

#include <errno.h>
#include <sys/types.h>

/* Linux's "no such attribute". WASI has no such errno: brig's host answers this number (one
 * past WASI's last, ENOTCAPABLE), and libc_perms.c's strerror names it. */
#ifndef ENODATA
#define ENODATA 77
#endif

#define XATTR_CREATE 0x1  /* fail with EEXIST if the attribute exists */
#define XATTR_REPLACE 0x2 /* fail with ENODATA if it does not */

/* Linux's limits (linux/limits.h). */
#define XATTR_NAME_MAX 255
#define XATTR_SIZE_MAX 65536
#define XATTR_LIST_MAX 65536

#ifdef __cplusplus
extern "C" {
#endif

ssize_t getxattr(const char*, const char*, void*, size_t);
ssize_t lgetxattr(const char*, const char*, void*, size_t);
ssize_t fgetxattr(int, const char*, void*, size_t);
ssize_t listxattr(const char*, char*, size_t);
ssize_t llistxattr(const char*, char*, size_t);
ssize_t flistxattr(int, char*, size_t);
int setxattr(const char*, const char*, const void*, size_t, int);
int lsetxattr(const char*, const char*, const void*, size_t, int);
int fsetxattr(int, const char*, const void*, size_t, int);
int removexattr(const char*, const char*);
int lremovexattr(const char*, const char*);
int fremovexattr(int, const char*);

#ifdef __cplusplus
}
#endif

#endif
