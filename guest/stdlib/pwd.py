"""pwd for the brig sandbox: the password database of a sandbox, which has one user.

The guest runs as "user" (uid 1000, home /home/user, the HOME brig sets); files report
owner 0 (WASI has no owners), so root is listed too. Lookups of anything else raise KeyError,
as CPython's pwd does for an unknown user.
"""


class struct_passwd(tuple):
    """pwd.struct_passwd: (pw_name, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell)."""
    n_sequence_fields = n_fields = 7
    n_unnamed_fields = 0
    __slots__ = ()

    def __new__(cls, seq):
        seq = tuple(seq)
        if len(seq) != 7:
            raise TypeError(f"pwd.struct_passwd() takes a 7-sequence ({len(seq)}-sequence given)")
        return super().__new__(cls, seq)

    def __repr__(self):
        names = ("pw_name", "pw_passwd", "pw_uid", "pw_gid", "pw_gecos", "pw_dir", "pw_shell")
        return "pwd.struct_passwd(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, self)) + ")"

    def __reduce__(self):
        return (struct_passwd, (tuple(self),))

    pw_name = property(lambda self: self[0])
    pw_passwd = property(lambda self: self[1])
    pw_uid = property(lambda self: self[2])
    pw_gid = property(lambda self: self[3])
    pw_gecos = property(lambda self: self[4])
    pw_dir = property(lambda self: self[5])
    pw_shell = property(lambda self: self[6])


_ENTRIES = (
    struct_passwd(("root", "x", 0, 0, "root", "/root", "/bin/sh")),
    struct_passwd(("user", "x", 1000, 1000, "brig sandbox user", "/home/user", "/bin/sh")),
)


def getpwuid(uid):
    """Return the password database entry for the given numeric user ID."""
    if not isinstance(uid, int):
        raise TypeError(f"'{type(uid).__name__}' object cannot be interpreted as an integer")
    for entry in _ENTRIES:
        if entry.pw_uid == uid:
            return entry
    raise KeyError(f"getpwuid(): uid not found: {uid}")


def getpwnam(name):
    """Return the password database entry for the given user name."""
    if not isinstance(name, str):
        raise TypeError(f"getpwnam() argument must be str, not {type(name).__name__}")
    for entry in _ENTRIES:
        if entry.pw_name == name:
            return entry
    raise KeyError(f"getpwnam(): name not found: {name!r}")


def getpwall():
    """Return a list of all available password database entries."""
    return list(_ENTRIES)
