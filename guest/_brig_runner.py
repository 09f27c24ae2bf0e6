"""Runs one piece of user code in __main__ and describes the outcome as JSON.

Called by brig_guest.c's brig_execute. Behaves like the REPL: if the code ends with an
expression, its repr is the result. Output goes to the real stdout/stderr (captured by the
host); a Python exception is printed to stderr as CPython prints it and also described in the
result. The host treats everything returned here as untrusted input.
"""
import json
import linecache
import os
import sys
import traceback

import _brig

_main = sys.modules["__main__"]
# The session's own site-packages, where `brig pip install` puts wheels (include/brig/wheels.h):
# session files, so writable and persisted. After the stdlib (which it cannot shadow), before
# the packages brig ships (so a wheel may bring a newer version of one).
USER_SITE = "/home/user/.local/lib/python3.11/site-packages"
sys.path.append(USER_SITE)
# The pure-Python packages from Debian, packed with the stdlib (guest/fetch-debian-packages.py).
# Last on the path, so they cannot shadow the stdlib; nothing is imported from there here.
sys.path.append(os.path.join(os.path.dirname(os.__file__), "site-packages"))
_RUNNER_FILE = __file__

try:
    os.chdir("/home/user")
except OSError:
    pass


class _AsyncioPatcher:
    """asyncio's selector loops wake themselves through a socketpair; the sandbox has no
    sockets (and no threads or signals that would need the wake-up), so once
    asyncio.selector_events is imported its self-pipe becomes a no-op. Patching on import
    keeps asyncio's import cost off executions that never use it."""

    TARGET = "asyncio.selector_events"

    def find_spec(self, name, path, target=None):
        if name != self.TARGET:
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            loop = module.BaseSelectorEventLoop
            loop._make_self_pipe = lambda self: setattr(self, "_ssock", None) or setattr(self, "_csock", None)
            loop._close_self_pipe = lambda self: None
            loop._write_to_self = lambda self: None

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AsyncioPatcher())


def _clean(text):
    """Text that is valid UTF-8 whatever it holds (lone surrogates become escapes)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# The interpreter's own stdout and stderr write through to the host (brig_guest.c sets
# buffered_stdio = 0: a TextIOWrapper with write_through over an unbuffered FileIO), so they
# never hold anything to flush; streams the user put in their place may.
_STDOUT, _STDERR = sys.stdout, sys.stderr


def _flush():
    for stream in (sys.stdout, sys.stderr):
        if stream is _STDOUT or stream is _STDERR:
            continue
        try:
            stream.flush()
        except Exception:
            pass


# The file-name rules of brig's file system and store (src/names/path_rules.h). The guest only
# gets an errno when a name breaks one; _explain_name says which, under the traceback.


def _name_fault(name):
    try:
        raw = os.fsencode(name)
        path = os.path.normpath(os.path.join(os.fsencode(os.getcwd()), raw))
    except Exception:
        return None
    for part in raw.split(b"/"):
        if len(part) > 255:
            return "a path component is longer than 255 bytes"
        try:
            text = part.decode("utf-8")
        except UnicodeDecodeError:
            return "a path component is not valid UTF-8"
        if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
            return "a path component contains a control character"
    if len(path) > 4096:
        return "the path is longer than 4096 bytes"
    if path.count(b"/") > 64:
        return "the path is deeper than 64 components"
    return None


def _explain_name(exc):
    """Adds a note naming the file-name rule an OSError's file name broke, if it broke one."""
    import errno

    if not isinstance(exc, OSError) or exc.errno not in (errno.EILSEQ, errno.EINVAL, errno.ENAMETOOLONG):
        return
    for name in (exc.filename, exc.filename2):
        why = None if name is None else _name_fault(name)
        if why:
            exc.add_note("brig: %s; file names in the sandbox are UTF-8 without control characters, at most "
                         "255 bytes per component, 64 components and 4096 bytes in all" % why)
            return


def _describe(exc):
    _explain_name(exc)
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == _RUNNER_FILE:
        tb = tb.tb_next  # the user sees their own frames, not the runner's
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except BaseException:  # e.g. MemoryError while formatting
        text = "%s\n" % type(exc).__name__
    try:
        message = str(exc)
    except BaseException:
        message = ""
    return {"type": type(exc).__name__, "message": _clean(message), "traceback": _clean(text)}


# Modules an image has imported already, so that sandboxes start with them warm.
IMAGE_MODULES = (
    "json", "re", "datetime", "collections", "math", "itertools", "functools", "dataclasses",
    "typing", "pickle", "io", "os", "sys", "random", "decimal", "statistics", "csv", "base64",
    "hashlib", "textwrap", "pathlib", "asyncio", "traceback", "linecache", "ast",
    # The portable snapshot's own module: imported by the first save of every session, it
    # left ~260 pages differing from the image in each page snapshot after (~100 KiB of
    # ~120, bench/save_path_bench).
    "_brig_snapshot",
)

_RESULT_NAME = _brig.RESULT_NAME

# True in an image: the first execution of each sandbox made from it reseeds what the
# interpreter seeded once at start-up (the image holds one state for all its clones).
_needs_reseed = False


def prepare_image():
    """Called once in the interpreter that becomes an image (see src/sandbox/image.cc)."""
    global _needs_reseed
    import gc
    for name in IMAGE_MODULES:
        __import__(name)
    # The portable snapshot's code, run a few times here: CPython specialises bytecode in
    # place as it runs, so its first runs in a session would otherwise rewrite those code
    # objects' pages, and every page snapshot of the session would carry them (~120 pages
    # measured, bench/save_path_bench).
    import _brig_snapshot
    sample = {"__name__": "__main__"}  # what a session's namespace holds: by value, by reference
    exec("import json\nx = 42\ny = [1, 'a', {'k': 2.5}, (None, True), b'b']\n"
         "def f(a, b=1):\n    return a + b + x\n"
         "class C:\n    n = 1\n    def m(self):\n        return self.n\n"
         "c = C()\ng = (i for i in range(3))\n", sample)
    for _ in range(3):
        dump_portable()
        _brig_snapshot.dumps(sample)
    del sample
    for name in [n for n in linecache.cache if n.startswith("<")]:
        del linecache.cache[name]  # the preparing code's own lines
    gc.collect()
    gc.freeze()  # keeps later collections from touching (and so copying) the image's objects
    _needs_reseed = True


def _reseed():
    global _needs_reseed
    _needs_reseed = False
    import random
    # 32 bytes of the host's random_get: differs per sandbox. (random.seed() would read 2496
    # bytes, ten random_get calls of at most 256 bytes each: a sixth of a fresh sandbox's time.)
    random.seed(int.from_bytes(os.urandom(32), "little"))  # an int: no sha512 of it


# Code the host runs for itself (src/sandbox/sandbox_state.cc) under this file name gets
# its final value back as it is, when that is a str: "H" + the text instead of a JSON outcome
# with the value's repr (a large reply would be escaped, copied and parsed twice).
HOST_FILENAME = "<brig-host>"


def dump_portable():
    """For the host: a portable snapshot of __main__ (see _brig_snapshot) as base64, a newline,
    then JSON of the names it skipped and why."""
    import base64
    import _brig_snapshot
    data, skipped = _brig_snapshot.dumps(_main.__dict__)
    return (base64.b64encode(data).decode("ascii") + "\n" +
            json.dumps({str(k): str(v) for k, v in skipped.items()}))


def load_portable(text):
    """For the host: loads a portable snapshot into __main__; returns JSON of the names that
    failed and why."""
    import base64
    import _brig_snapshot
    failed = _brig_snapshot.loads(base64.b64decode(text, validate=True), _main.__dict__)
    return json.dumps({str(k): str(v) for k, v in failed.items()})


def _take_display():
    """The outputs brig.show() gathered in this execution (see guest/stdlib/brig.py), cleared
    for the next: [bundles], dropped count. The user's code may have replaced any of it, so
    only lists of str -> str dicts pass (the host checks the rest)."""
    module = sys.modules.get("brig")
    if module is None:
        return None, 0
    try:
        names = module.__dict__
        pending, dropped = names.get("_pending"), names.get("_dropped")
        names["_pending"], names["_dropped"], names["_total"] = [], 0, 0
        bundles = []
        if type(pending) is list:
            for bundle in pending[:64]:
                if type(bundle) is dict:
                    bundles.append({_clean(k): _clean(v) for k, v in bundle.items() if type(k) is str and type(v) is str})
        return bundles, (dropped if type(dropped) is int and 0 <= dropped < 2**31 else 0) + max(0, len(pending) - 64)
    except BaseException:
        return None, 0


def execute(source_bytes, filename_bytes):
    """Returns the outcome as JSON, or "" for the common case (no error, no value to show)."""
    if _needs_reseed:
        _reseed()
    # An import that missed while USER_SITE did not exist (in the image, or before the first
    # install) cached None for it: drop that so that packages installed since are found.
    # (A FileFinder already there notices new files by the directory's mtime.)
    if sys.path_importer_cache.get(USER_SITE, 0) is None:
        del sys.path_importer_cache[USER_SITE]
    if "brig" in sys.modules:
        _take_display()  # nothing shown by an earlier execution carries over
    filename = "<exec>" if filename_bytes == b"<exec>" else (filename_bytes.decode("utf-8", "replace") or "<exec>")
    namespace = _main.__dict__
    outcome = None  # made only when there is something to report
    try:
        source = source_bytes.decode("utf-8")
        # Lets tracebacks show the user's lines, as they do for a file.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        # A final expression's value lands in namespace[_RESULT_NAME] (see brig_guest.c).
        code, has_value = _brig.compile_repl(source, filename)
        exec(code, namespace)
        if has_value:
            value = namespace.pop(_RESULT_NAME, None)
            if filename == HOST_FILENAME and type(value) is str:
                return "H" + _clean(value)
            if value is not None:
                outcome = {"ok": True, "result": _clean(repr(value)), "error": None, "exit_code": None}
    except SystemExit as exc:
        outcome = {"ok": True, "result": None, "error": None, "exit_code": None}
        code = exc.code
        if code is None or code is True or code is False or isinstance(code, int):
            outcome["exit_code"] = int(code or 0)
        else:
            print(code, file=sys.stderr)
            outcome["exit_code"] = 1
        if outcome["exit_code"] != 0:
            outcome["ok"] = False
            outcome["error"] = _describe(exc)
    except BaseException as exc:
        outcome = {"ok": False, "result": None, "error": _describe(exc), "exit_code": None}
        try:
            sys.stderr.write(outcome["error"]["traceback"])
        except BaseException:
            pass
    finally:
        namespace.pop(_RESULT_NAME, None)  # also when the code failed after storing it
        if sys.stdout is not _STDOUT or sys.stderr is not _STDERR:
            _flush()
    if "brig" in sys.modules:
        shown, dropped = _take_display()
        if shown or dropped:
            if outcome is None:
                outcome = {"ok": True, "result": None, "error": None, "exit_code": None}
            outcome["display"] = shown or []
            outcome["display_dropped"] = dropped
    return "" if outcome is None else json.dumps(outcome)
