"""fcntl for the brig sandbox, as far as it means anything there.

A sandbox is one process, and brig runs one execution of a session at a time: there is
nobody for a file lock to exclude. flock() and lockf() check the descriptor and succeed (as
SQLite's locks do in the sandbox). fcntl() knows the descriptor-flag calls: close-on-exec
means nothing without exec (F_GETFD answers 0, F_SETFD is accepted), and the blocking mode is
read and set through os. Record locks (F_GETLK, F_SETLK, F_SETLKW) succeed with nobody else
holding one. ioctl() fails with ENOTTY: there are no devices. Linux's constant values.
"""
import errno as _errno
import os as _os

FD_CLOEXEC = 1
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_GETLK64, F_SETLK64, F_SETLKW64 = 5, 6, 7
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
F_DUPFD_CLOEXEC = 1030
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8


def _fd(fd):
    if not isinstance(fd, int):
        fd = fd.fileno()
    if fd < 0:
        raise ValueError("file descriptor cannot be a negative integer (%d)" % fd)
    _os.fstat(fd)  # EBADF for a descriptor that is not open
    return fd


def fcntl(fd, cmd, arg=0):
    """Perform the operation `cmd` on file descriptor fd (see the module's doc)."""
    fd = _fd(fd)
    if cmd == F_GETFD:
        return 0
    if cmd == F_SETFD:
        return 0
    if cmd == F_GETFL:
        flags = getattr(_os, "O_RDWR", 0)
        if not _os.get_blocking(fd):
            flags |= _os.O_NONBLOCK
        return flags
    if cmd == F_SETFL:
        _os.set_blocking(fd, not (int(arg) & _os.O_NONBLOCK))
        return 0
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        raise OSError(_errno.EINVAL, "F_DUPFD is not available in the brig sandbox")
    if cmd in (F_SETLK, F_SETLKW):
        return arg
    if cmd == F_GETLK:
        return arg  # the caller's struct flock unchanged: no other process holds a lock
    raise OSError(_errno.EINVAL, _os.strerror(_errno.EINVAL))


def ioctl(fd, request, arg=0, mutate_flag=True):
    """No devices in the sandbox: fails with ENOTTY."""
    _fd(fd)
    raise OSError(_errno.ENOTTY, _os.strerror(_errno.ENOTTY))


def flock(fd, operation):
    """Succeeds: one process owns the sandbox, so there is nobody to exclude."""
    _fd(fd)
    if operation & ~LOCK_NB not in (LOCK_SH, LOCK_EX, LOCK_UN):
        raise OSError(_errno.EINVAL, _os.strerror(_errno.EINVAL))
    return None


def lockf(fd, cmd, len=0, start=0, whence=0):
    """Succeeds: one process owns the sandbox, so there is nobody to exclude."""
    _fd(fd)
    if cmd & ~LOCK_NB not in (LOCK_SH, LOCK_EX, LOCK_UN):
        raise ValueError("unrecognized lockf argument")
    return None
