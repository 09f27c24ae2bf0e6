/* Force-included into SQLite's amalgamation when it is built for the guest (build-deps.sh).
 *
 * SQLite's unix VFS locks a database in two layers: between connections of one process it
 * keeps the lock state itself (per inode), and towards other processes it takes fcntl()
 * record locks. WASI has no record locks, and a sandbox is one process whose session brig
 * locks while it runs: the second layer has nobody to exclude. So the record-lock calls
 * succeed here without doing anything, and the first layer still keeps two connections of
 * one sandbox from corrupting a database. No lock files are left behind by a timeout.
 * Every other fcntl() goes to wasi-libc. */
#ifndef BRIG_SQLITE_WASI_H
#define BRIG_SQLITE_WASI_H

#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#ifndef F_GETLK
#define F_GETLK 5
#define F_SETLK 6
#define F_SETLKW 7
#endif
#ifndef F_RDLCK
#define F_RDLCK 0
#define F_WRLCK 1
#define F_UNLCK 2
#endif

static int brig_sqlite_fcntl(int fd, int op, ...) {
  va_list ap;
  va_start(ap, op);
  if (op == F_GETLK) {
    struct flock *lk = va_arg(ap, struct flock *);
    va_end(ap);
    lk->l_type = F_UNLCK; /* nobody else holds a lock */
    return 0;
  }
  if (op == F_SETLK || op == F_SETLKW) {
    va_end(ap);
    return 0;
  }
  int arg = va_arg(ap, int);
  va_end(ap);
  return fcntl(fd, op, arg);
}
#define fcntl brig_sqlite_fcntl

/* Not in WASI: ownership, modes and the effective user (a sandbox has one user). */
static inline int brig_sqlite_fchown(int fd, unsigned uid, unsigned gid) {
  (void)fd; (void)uid; (void)gid;
  return 0;
}
static inline int brig_sqlite_fchmod(int fd, unsigned mode) {
  (void)fd; (void)mode;
  return 0;
}
static inline unsigned brig_sqlite_geteuid(void) { return 0; }
#define fchown brig_sqlite_fchown
#define geteuid brig_sqlite_geteuid
#define fchmod brig_sqlite_fchmod

#endif
