#!/usr/bin/python3.11
"""Builds the read-only stdlib image the guest sees at /usr/local/lib/python3.11.

Usage: pack_stdlib.py OUT.pack CPYTHON_OUT_DIR [--site=DIR] [EXTRA ...]
(CPYTHON_OUT_DIR is what guest/build-cpython.sh made: its Lib/ and the build's
_sysconfigdata module are packed.)

Every module of LIB_DIR (minus tests, GUIs and installers that cannot work in the sandbox)
goes in as source plus an unchecked-hash .pyc in __pycache__, so imports never compile or
stat-compare, and tracebacks still show source lines. EXTRAs are added at the top level: a
file as itself, a directory (a package: Pillow's PIL) with its whole tree.
--site=DIR packs DIR (guest/fetch-debian-packages.py's Debian packages) as site-packages/,
the same way, except that a directory NAME.zip/ in it becomes a zip file NAME.zip, deflate-
compressed, for zipimport: each module as source plus, when the source is at least
ZIP_PYC_MIN_SOURCE bytes, an unchecked-hash .pyc next to it (where zipimport looks).
Must run under Debian's python3.11 (the same 3.11 bytecode as the guest).

Pack format "BRIGPK02" (read in place by src/vfs/pack.cc; described in src/vfs/pack.h): a
header, a pre-built index (node records in breadth-first order, each directory's entries
sorted by name, and a name table) and then the file contents. The index lets brig look files
up by binary search over the mapped bytes, without parsing the pack or touching the
contents. write_pack() writes the same bytes as brig::vfs::BuildPack for the same files.
"""
import concurrent.futures
import importlib.util
import io
import os
import py_compile
import struct
import sys
import tempfile
import zipfile

EXCLUDED_DIRS = {
    "test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "ensurepip",
    "site-packages", "__pycache__", "venv",
}
EXCLUDED_FILES = {"turtle.py", "antigravity.py"}

# In a zip, modules with less source than this get no .pyc: compiling one takes microseconds,
# and its .pyc (larger than the source, and compressing worse) would grow the zip. plotly's
# 10,000 validators are such modules (18 MB instead of 26 MB).
ZIP_PYC_MIN_SOURCE = 2048
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # every member's, so that the pack is reproducible

# The modules of sys.stdlib_module_names the sandbox cannot have, and why. Each is packed as
# a stub that raises ModuleNotFoundError with this sentence (a subclass of ImportError, so
# `try: import x / except ImportError` fallbacks work as where the module is missing). The
# README lists the same modules.
_NO_PROCESSES = "the sandbox is one process: it cannot start others"
_NO_TERMINAL = "the sandbox has no terminal (its output is captured)"
_NO_GUI = "the sandbox has no display (Tk is not built for it)"
_WINDOWS = "it exists only on Windows"
UNAVAILABLE = {
    "_ctypes": "ctypes loads native code at run time, which WebAssembly cannot do",
    "_curses": _NO_TERMINAL,
    "_curses_panel": _NO_TERMINAL,
    "readline": _NO_TERMINAL,
    "_dbm": "the ndbm C library is not built for it; the dbm module uses dbm.dumb",
    "_gdbm": "the GNU dbm C library is not built for it; the dbm module uses dbm.dumb",
    "_ssl": "the sandbox has no network (OpenSSL is built in for hashlib, but TLS needs sockets)",
    "_multiprocessing": _NO_PROCESSES,
    "_posixshmem": _NO_PROCESSES + " or share memory",
    "_posixsubprocess": _NO_PROCESSES,
    "mmap": "WebAssembly cannot map files into memory",
    "_uuid": "libuuid is not built for it; uuid uses its own pure-Python code",
    "nis": "the sandbox has no network naming service",
    "spwd": "the sandbox has no shadow password database",
    "syslog": "the sandbox has no system log (write to stderr or a file)",
    "ossaudiodev": "the sandbox has no sound device",
    "_tkinter": _NO_GUI,
    "tkinter": _NO_GUI,
    "turtle": _NO_GUI,
    "turtledemo": _NO_GUI,
    "idlelib": _NO_GUI,
    "antigravity": "it opens a web browser, and the sandbox has none",
    "ensurepip": "pip is not shipped in the sandbox (no network, no PyPI)",
    "venv": "virtual environments need to start processes, and " + _NO_PROCESSES,
    "_scproxy": "it exists only on macOS",
    "nt": _WINDOWS, "msvcrt": _WINDOWS, "winreg": _WINDOWS, "winsound": _WINDOWS,
    "_winapi": _WINDOWS, "_overlapped": _WINDOWS, "_msi": _WINDOWS, "msilib": _WINDOWS,
}

STUB = """\
# brig: {name} is not available in the sandbox (see brig's README).
raise ModuleNotFoundError({message!r}, name={name!r})
"""


def unavailable_stub(name, reason):
    message = f"No module named {name!r}: {name} is not available in the brig sandbox: {reason}"
    return STUB.format(name=name, message=message)


def debian_sysconfigdata_name(cpython_dir):
    """The name Debian's patched sysconfig imports: _sysconfigdata_{ABIFLAGS}_{MULTIARCH}
    (upstream puts the platform in it too, and the build writes upstream's name)."""
    found = {}
    with open(os.path.join(cpython_dir, "build", "Makefile")) as f:
        for line in f:
            for var in ("ABIFLAGS", "MULTIARCH"):
                if line.startswith(var + "=") or line.startswith(var + "\t"):
                    found[var] = line.split("=", 1)[1].strip()
    return f"_sysconfigdata_{found.get('ABIFLAGS', '')}_{found['MULTIARCH']}.py"


def wanted(rel):
    parts = rel.split("/")
    return not any(p in EXCLUDED_DIRS for p in parts[:-1]) and parts[-1] not in EXCLUDED_FILES


def compile_one(args):
    src, rel = args
    with tempfile.NamedTemporaryFile(suffix=".pyc", delete=False) as tmp:
        out = tmp.name
    try:
        py_compile.compile(src, cfile=out, dfile="/usr/local/lib/python3.11/" + rel, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        with open(out, "rb") as f:
            return f.read()
    except py_compile.PyCompileError:
        return None  # files that are not valid Python 3.11 (e.g. templates) ship as source only
    finally:
        os.unlink(out)


def main():
    if sys.version_info[:2] != (3, 11):
        sys.exit("pack_stdlib.py must run under python3.11")
    out_path, cpython_dir, extras = sys.argv[1], sys.argv[2], sys.argv[3:]
    sites = [a.split("=", 1)[1] for a in extras if a.startswith("--site=")]
    extras = [a for a in extras if not a.startswith("--site=")]
    with open(os.path.join(cpython_dir, "source-dir.txt")) as f:
        lib_dir = os.path.join(f.read().strip(), "Lib")
    with open(os.path.join(cpython_dir, "build", "pybuilddir.txt")) as f:
        builddir = os.path.join(cpython_dir, "build", f.read().strip())
    extras += [os.path.join(builddir, n) for n in sorted(os.listdir(builddir))
               if n.startswith("_sysconfigdata") and n.endswith(".py")]
    entries = {}
    sources = []
    archives = {}  # rel of a zip in the pack -> {member: bytes}
    archive_sources = []  # (source file, rel of the zip, member)
    for root, dirs, files in os.walk(lib_dir):
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS)
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, lib_dir).replace(os.sep, "/")
            if not wanted(rel) or name.endswith((".pyc", ".pyo", ".exe", ".whl")):
                continue
            with open(full, "rb") as f:
                entries[rel] = f.read()
            if name.endswith(".py"):
                sources.append((full, rel))
    for site in sites:
        for root, dirs, files in os.walk(site):
            dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS)
            for d in [d for d in dirs if d.endswith(".zip")]:
                dirs.remove(d)
                full = os.path.join(root, d)
                rel = "site-packages/" + os.path.relpath(full, site).replace(os.sep, "/")
                archives[rel] = collect_archive(full, rel, archive_sources)
            for name in sorted(files):
                full = os.path.join(root, name)
                rel = os.path.relpath(full, site).replace(os.sep, "/")
                if not wanted(rel) or name.endswith((".pyc", ".pyo", ".so")):
                    continue
                rel = "site-packages/" + rel
                with open(full, "rb") as f:
                    entries[rel] = f.read()
                if name.endswith(".py"):
                    sources.append((full, rel))
    generated = tempfile.TemporaryDirectory()
    for extra in extras:
        if os.path.isdir(extra):  # a package (Pillow's PIL/): its whole tree, at the top level
            base = os.path.dirname(extra)
            for root, dirs, files in os.walk(extra):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for name in sorted(files):
                    full = os.path.join(root, name)
                    rel = os.path.relpath(full, base).replace(os.sep, "/")
                    with open(full, "rb") as f:
                        entries[rel] = f.read()
                    if name.endswith(".py"):
                        sources.append((full, rel))
            continue
        rel = os.path.basename(extra)
        with open(extra, "rb") as f:
            entries[rel] = f.read()
        if rel.endswith(".py"):
            sources.append((extra, rel))
        if rel.startswith("_sysconfigdata") and rel.endswith(".py"):
            alias = debian_sysconfigdata_name(cpython_dir)
            if alias != rel:
                entries[alias] = entries[rel]
                sources.append((extra, alias))

    def add_generated(rel, text):
        path = os.path.join(generated.name, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        entries[rel] = text.encode("utf-8")
        sources.append((path, rel))

    for name, reason in sorted(UNAVAILABLE.items()):
        if name + ".py" not in entries and name + "/__init__.py" not in entries:
            add_generated(name + ".py", unavailable_stub(name, reason))

    # The IANA database (guest/build-tzdata.sh) as the `tzdata` package, laid out as PyPI's:
    # zoneinfo finds it there when no system zone directory exists (the sandbox has none).
    tz_dir = os.path.join(cpython_dir, "tzdata")
    with open(os.path.join(tz_dir, "iana-version.txt")) as f:
        iana = f.read().strip()
    add_generated("tzdata/__init__.py",
                  f'"""The IANA time zone database {iana}, from Debian\'s tzdata (brig)."""\n'
                  f'IANA_VERSION = {iana!r}\n__version__ = {iana!r}\n')
    with open(os.path.join(tz_dir, "zones"), "rb") as f:
        entries["tzdata/zones"] = f.read()
    zone_root = os.path.join(tz_dir, "zoneinfo")
    for root, dirs, files in os.walk(zone_root):
        dirs.sort()
        rel_dir = "tzdata/zoneinfo/" + os.path.relpath(root, zone_root).replace(os.sep, "/")
        rel_dir = rel_dir.rstrip(".").rstrip("/")
        add_generated(rel_dir + "/__init__.py", "")
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                entries[rel_dir + "/" + name] = f.read()

    with concurrent.futures.ProcessPoolExecutor() as pool:
        for (src, rel), data in zip(sources, pool.map(compile_one, sources, chunksize=32)):
            if data is None:
                continue
            head, name = os.path.split(rel)
            pyc = importlib.util.cache_from_source(name).replace(os.sep, "/")
            entries[(head + "/" if head else "") + pyc] = data
        jobs = [(src, archive + "/" + member) for src, archive, member in archive_sources]
        for (_, archive, member), data in zip(archive_sources,
                                              pool.map(compile_one, jobs, chunksize=32)):
            if data is not None:
                archives[archive][member + "c"] = data
    for rel, members in archives.items():
        entries[rel] = zip_bytes(members)

    generated.cleanup()
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        write_pack({rel.encode("utf-8"): data for rel, data in entries.items()}, f)
    os.replace(tmp, out_path)


def collect_archive(directory, rel, archive_sources):
    """The files of directory (a NAME.zip/ of --site) as {member: bytes}; adds the sources to
    compile to archive_sources."""
    members = {}
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS)
        for name in sorted(files):
            full = os.path.join(root, name)
            member = os.path.relpath(full, directory).replace(os.sep, "/")
            if not wanted(member) or name.endswith((".pyc", ".pyo", ".so")):
                continue
            with open(full, "rb") as f:
                members[member] = f.read()
            if name.endswith(".py") and len(members[member]) >= ZIP_PYC_MIN_SOURCE:
                archive_sources.append((full, rel, member))
    return members


def zip_bytes(members):
    """A deflate-compressed zip of members ({name: bytes}), the same bytes for the same input."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, members[name], compresslevel=9)
    return buf.getvalue()


HEADER_SIZE = 16
RECORD = struct.Struct("<IHHQQ")  # name offset, name length, kind, first, count
KIND_DIRECTORY, KIND_FILE = 0, 1


def write_pack(files, f):
    """Writes files ({b"dir/name": bytes}) to f in the BRIGPK02 format."""
    root = {}  # name -> dict (directory) or bytes (file)
    for path, data in files.items():
        *dirs, name = path.split(b"/")
        d = root
        for part in dirs:
            d = d.setdefault(part, {})
        d[name] = data
    # Breadth-first, each directory's entries in byte order of their names.
    order = [(b"", root)]
    i = 0
    while i < len(order):
        node = order[i][1]
        if isinstance(node, dict):
            order.extend(sorted(node.items()))
        i += 1
    names = b"".join(name for name, _ in order)
    data_at = HEADER_SIZE + RECORD.size * len(order) + len(names)
    f.write(b"BRIGPK02" + struct.pack("<II", len(order), len(names)))
    name_at, data, next_entry = 0, data_at, 1
    for name, node in order:
        if isinstance(node, dict):
            f.write(RECORD.pack(name_at, len(name), KIND_DIRECTORY, next_entry if node else 0, len(node)))
            next_entry += len(node)
        else:
            f.write(RECORD.pack(name_at, len(name), KIND_FILE, data, len(node)))
            data += len(node)
        name_at += len(name)
    f.write(names)
    for _, node in order:
        if not isinstance(node, dict):
            f.write(node)


if __name__ == "__main__":
    main()
