"""Shared by the package's tests: the brig binary, temp stores, a brig serve to talk to."""

import atexit
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
BRIG = os.environ.get("BRIG_BIN") or os.path.join(SOURCE, "build", "brig")
os.environ["BRIG_BIN"] = BRIG
# Nothing of the tests lands in the user's ~/.local/share/brig (keys, default store).
_HOME = tempfile.mkdtemp(prefix="brig-pypkg-home-")
os.environ["BRIG_HOME"] = _HOME
os.environ.pop("BRIG_DB", None)
atexit.register(shutil.rmtree, _HOME, True)
if "brig" not in sys.modules and not any(os.path.isdir(os.path.join(p, "brig")) for p in sys.path if p):
    sys.path.insert(0, os.path.join(SOURCE, "build", "python"))

import brig  # noqa: E402
from brig.server import FileServer  # noqa: E402


if os.environ.get("BRIG_REQUIRE_NATIVE") == "1" and not brig.HAVE_NATIVE:
    raise ImportError("BRIG_REQUIRE_NATIVE=1 but brig's extension module does not import (brig from %s)"
                      % os.path.dirname(brig.__file__))


def needs_native(cls):
    """Skips the in-process tests where the extension is not built (never under ctest, which
    sets BRIG_REQUIRE_NATIVE=1)."""
    return unittest.skipUnless(brig.HAVE_NATIVE, "the extension module is not built")(cls)


class TempHome:
    """A temp BRIG_HOME with a SQLite store in it, removed at the end."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="brig-pypkg-")
        self.url = "sqlite:" + os.path.join(self.dir, "brig.db")

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class ServerCase(unittest.TestCase):
    """Runs one `brig serve` (in-process executions: --workers 0) for the class's tests."""

    @classmethod
    def setUpClass(cls):
        cls.home = TempHome()
        cls.log = open(os.path.join(cls.home.dir, "serve.log"), "w")
        cls.server = FileServer(cls.home.url, host="127.0.0.1", port=0, args=["--workers", "0"], log=cls.log)
        cls.server.start()
        cls.url = cls.server.url

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.log.close()
        cls.home.close()
