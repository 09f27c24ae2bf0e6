"""grp for the brig sandbox: the group database of a sandbox, which has one user ("user",
gid 1000) and root's group (files report owner 0). Unknown groups raise KeyError, as in
CPython's grp.
"""


class struct_group(tuple):
    """grp.struct_group: (gr_name, gr_passwd, gr_gid, gr_mem)."""
    n_sequence_fields = n_fields = 4
    n_unnamed_fields = 0
    __slots__ = ()

    def __new__(cls, seq):
        seq = tuple(seq)
        if len(seq) != 4:
            raise TypeError(f"grp.struct_group() takes a 4-sequence ({len(seq)}-sequence given)")
        return super().__new__(cls, seq)

    def __repr__(self):
        names = ("gr_name", "gr_passwd", "gr_gid", "gr_mem")
        return "grp.struct_group(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, self)) + ")"

    def __reduce__(self):
        return (struct_group, (tuple(self),))

    gr_name = property(lambda self: self[0])
    gr_passwd = property(lambda self: self[1])
    gr_gid = property(lambda self: self[2])
    gr_mem = property(lambda self: list(self[3]))


_ENTRIES = (
    struct_group(("root", "x", 0, ())),
    struct_group(("user", "x", 1000, ("user",))),
)


def getgrgid(id):
    """Return the group database entry for the given numeric group ID."""
    if not isinstance(id, int):
        raise TypeError(f"'{type(id).__name__}' object cannot be interpreted as an integer")
    for entry in _ENTRIES:
        if entry.gr_gid == id:
            return entry
    raise KeyError(f"getgrgid(): gid not found: {id}")


def getgrnam(name):
    """Return the group database entry for the given group name."""
    if not isinstance(name, str):
        raise TypeError(f"getgrnam() argument must be str, not {type(name).__name__}")
    for entry in _ENTRIES:
        if entry.gr_name == name:
            return entry
    raise KeyError(f"getgrnam(): name not found: {name!r}")


def getgrall():
    """Return a list of all available group database entries."""
    return list(_ENTRIES)
