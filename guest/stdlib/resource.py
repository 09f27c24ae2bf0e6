"""resource for the brig sandbox, as far as it means anything there.

brig sets a sandbox's limits (memory, time, files) from outside; the guest can read them
as "unlimited" from here but not change them: setrlimit() fails with EPERM, as it does for
an unprivileged process that raises a hard limit. getrusage() reports the CPU time of this
sandbox (time.process_time()); the other fields are 0. Linux's constant values.
"""
import errno as _errno
import time as _time


class error(OSError):
    pass


RLIM_INFINITY = -1
RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE = 0, 1, 2, 3, 4
RLIMIT_RSS, RLIMIT_NPROC, RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_AS = 5, 6, 7, 8, 9
RLIMIT_OFILE = RLIMIT_NOFILE
RUSAGE_SELF, RUSAGE_CHILDREN = 0, -1
_KNOWN = range(0, 10)


class struct_rusage(tuple):
    """resource.struct_rusage: ru_utime, ru_stime, ru_maxrss, ... ru_nivcsw (16 fields)."""
    _names = ("ru_utime", "ru_stime", "ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss",
              "ru_minflt", "ru_majflt", "ru_nswap", "ru_inblock", "ru_oublock", "ru_msgsnd",
              "ru_msgrcv", "ru_nsignals", "ru_nvcsw", "ru_nivcsw")
    n_sequence_fields = n_fields = 16
    n_unnamed_fields = 0
    __slots__ = ()

    def __new__(cls, seq):
        return super().__new__(cls, tuple(seq))

    def __getattr__(self, name):
        try:
            return self[self._names.index(name)]
        except ValueError:
            raise AttributeError(name) from None

    def __repr__(self):
        return "resource.struct_rusage(" + ", ".join(
            f"{n}={v!r}" for n, v in zip(self._names, self)) + ")"


def getrlimit(resource):
    """brig sets the limits from outside: (RLIM_INFINITY, RLIM_INFINITY) for each."""
    if resource not in _KNOWN:
        raise ValueError("invalid resource specified")
    return (RLIM_INFINITY, RLIM_INFINITY)


def setrlimit(resource, limits):
    """Fails with EPERM: the sandbox's limits are brig's to set."""
    if resource not in _KNOWN:
        raise ValueError("invalid resource specified")
    soft, hard = limits
    raise error(_errno.EPERM, "resource limits are set by brig, not inside the sandbox")


def prlimit(pid, resource, limits=None):
    if limits is not None:
        setrlimit(resource, limits)
    return getrlimit(resource)


def getrusage(who):
    """The sandbox's CPU time in ru_utime; other fields 0."""
    if who not in (RUSAGE_SELF, RUSAGE_CHILDREN):
        raise ValueError("invalid who parameter")
    used = _time.process_time() if who == RUSAGE_SELF else 0.0
    return struct_rusage((used, 0.0) + (0,) * 14)


def getpagesize():
    return 65536  # a WebAssembly page
