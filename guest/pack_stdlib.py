#!/usr/bin/python3.11
"""Builds the read-only stdlib image the guest sees at /usr/local/lib/python3.11.

Usage: pack_stdlib.py OUT.pack CPYTHON_OUT_DIR [EXTRA_FILE ...]
(CPYTHON_OUT_DIR is what guest/build-cpython.sh made: its Lib/ and the build's
_sysconfigdata module are packed.)

Every module of LIB_DIR (minus tests, GUIs and installers that cannot work in the sandbox)
goes in as source plus an unchecked-hash .pyc in __pycache__, so imports never compile or
stat-compare, and tracebacks still show source lines. EXTRA_FILEs are added at the top level.
Must run under Debian's python3.11 (the same 3.11 bytecode as the guest).

Pack format "BRIGPK02" (read in place by src/vfs/pack.cc; described in src/vfs/pack.h): a
header, a pre-built index (node records in breadth-first order, each directory's entries
sorted by name, and a name table) and then the file contents. The index lets brig look files
up by binary search over the mapped bytes, without parsing the pack or touching the
contents. write_pack() writes the same bytes as brig::vfs::BuildPack for the same files.
"""
import concurrent.futures
import importlib.util
import os
import py_compile
import struct
import sys
import tempfile

EXCLUDED_DIRS = {
    "test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "ensurepip",
    "lib2to3", "site-packages", "__pycache__", "venv", "distutils", "pydoc_data",
}
EXCLUDED_FILES = {"turtle.py", "antigravity.py", "this.py"}


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
    with open(os.path.join(cpython_dir, "source-dir.txt")) as f:
        lib_dir = os.path.join(f.read().strip(), "Lib")
    with open(os.path.join(cpython_dir, "build", "pybuilddir.txt")) as f:
        builddir = os.path.join(cpython_dir, "build", f.read().strip())
    extras += [os.path.join(builddir, n) for n in sorted(os.listdir(builddir))
               if n.startswith("_sysconfigdata") and n.endswith(".py")]
    entries = {}
    sources = []
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
    for extra in extras:
        rel = os.path.basename(extra)
        with open(extra, "rb") as f:
            entries[rel] = f.read()
        if rel.endswith(".py"):
            sources.append((extra, rel))

    with concurrent.futures.ProcessPoolExecutor() as pool:
        for (src, rel), data in zip(sources, pool.map(compile_one, sources, chunksize=32)):
            if data is None:
                continue
            head, name = os.path.split(rel)
            pyc = importlib.util.cache_from_source(name).replace(os.sep, "/")
            entries[(head + "/" if head else "") + pyc] = data

    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        write_pack({rel.encode("utf-8"): data for rel, data in entries.items()}, f)
    os.replace(tmp, out_path)


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
