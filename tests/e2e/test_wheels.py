"""End-to-end tests of `brig pip` (pure-Python wheels in a session's site-packages).

Wheels are built here with zipfile (no PyPI). Every brig command is a new process, so each
`brig exec` restores the session from the store: what is imported there was persisted. Runs
on SQLite and on a real PostgreSQL (pg_server.shared(); BRIG_SKIP_POSTGRES=1 skips it).
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import zipfile

import pg_server

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))
SITE = "/home/user/.local/lib/python3.11/site-packages"

_pg = None


def setUpModule():
    global _pg
    _pg = pg_server.shared()


def build_wheel(directory, name, version, files, tag="py3-none-any"):
    """A wheel as setuptools/pip would make it: files + dist-info (METADATA, WHEEL, RECORD)."""
    dist_info = "%s-%s.dist-info" % (name, version)
    contents = dict(files)
    contents[dist_info + "/METADATA"] = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version)
    contents[dist_info + "/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: %s\n" % tag
    record = ""
    for path, data in contents.items():
        data = data.encode() if isinstance(data, str) else data
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += "%s,sha256=%s,%d\n" % (path, digest, len(data))
    contents[dist_info + "/RECORD"] = record + dist_info + "/RECORD,,\n"
    path = os.path.join(directory, "%s-%s-%s.whl" % (name, version, tag))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, data in contents.items():
            z.writestr(p, data)
    return path


class WheelCases:
    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="brig-e2e-wheels-")
        self.addCleanup(shutil.rmtree, self.home, True)
        self.env = dict(os.environ, BRIG_HOME=self.home)
        self.env.pop("BRIG_DB", None)
        self.tmp = tempfile.mkdtemp(prefix="brig-e2e-wheels-src-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def brig(self, *args, timeout=120):
        return subprocess.run([BRIG, *args], capture_output=True, timeout=timeout, env=self.env)

    def ok(self, *args):
        p = self.brig(*args)
        self.assertEqual(p.returncode, 0, "%s: %s" % (args, p.stderr.decode(errors="replace")))
        return p.stdout.decode()

    def run_code(self, session, code):
        return self.ok("exec", "--session", session, "-c", code)

    def demo_wheel(self, version="1.0", value=42):
        return build_wheel(self.tmp, "demo_pkg", version, {
            "demo_pkg/__init__.py": "from .util import double\nVALUE = %d\n" % value,
            "demo_pkg/util.py": "def double(x):\n    return 2 * x\n",
        })

    def test_put_then_install_imports_in_the_next_execution_and_after_restarts(self):
        wheel = self.demo_wheel()
        # The session has run code that looked for a module before the install: the guest has
        # already searched (and missed) site-packages.
        self.assertEqual(self.run_code("w", "try:\n    import demo_pkg\nexcept ImportError:\n    print('absent')\n"),
                         "absent\n")
        self.ok("files", "put", "--session", "w", "demo_pkg-1.0-py3-none-any.whl", wheel)
        out = self.ok("pip", "install", "--session", "w", "demo_pkg-1.0-py3-none-any.whl", "--from-session")
        self.assertIn("Installed demo_pkg 1.0 in " + SITE, out)
        self.assertEqual(self.run_code("w", "import demo_pkg\nprint(demo_pkg.VALUE, demo_pkg.double(21))"), "42 42\n")
        # A new process restores the session from the store: still there, and it imports in a
        # fresh interpreter too (after a reset).
        self.assertEqual(self.run_code("w", "print(demo_pkg.__file__)"), SITE + "/demo_pkg/__init__.py\n")
        self.ok("sessions", "reset", "w")
        self.assertEqual(self.run_code("w", "import demo_pkg, sys\nprint(demo_pkg.VALUE, sys.path.index(%r) > 0)"
                                       % SITE), "42 True\n")
        listed = json.loads(self.ok("pip", "list", "--session", "w", "--json"))
        self.assertEqual([(p["name"], p["version"]) for p in listed], [("demo_pkg", "1.0")])
        # A fork has them too.
        self.ok("sessions", "fork", "w", "w2")
        self.assertEqual(self.run_code("w2", "import demo_pkg\nprint(demo_pkg.VALUE)"), "42\n")

    def test_install_from_a_local_file_and_uninstall(self):
        out = json.loads(self.ok("pip", "install", "--session", "l", self.demo_wheel(), "--json"))
        self.assertEqual((out["name"], out["version"], out["site_packages"]), ("demo_pkg", "1.0", SITE))
        self.assertEqual(self.run_code("l", "import demo_pkg\nprint(demo_pkg.VALUE)"), "42\n")
        # A new version replaces the old one (a fresh interpreter sees it).
        out = json.loads(self.ok("pip", "install", "--session", "l", self.demo_wheel("2.0", 7), "--json"))
        self.assertEqual(out["replaced_version"], "1.0")
        self.ok("sessions", "reset", "l")
        self.assertEqual(self.run_code("l", "import demo_pkg\nprint(demo_pkg.VALUE)"), "7\n")
        self.assertIn("Uninstalled demo_pkg 2.0", self.ok("pip", "uninstall", "--session", "l", "demo-pkg"))
        self.assertEqual(self.ok("files", "ls", "--session", "l", SITE + "/"), "")
        self.ok("sessions", "reset", "l")
        self.assertEqual(self.run_code("l", "try:\n    import demo_pkg\nexcept ImportError as e:\n    print(e.name)"),
                         "demo_pkg\n")
        p = self.brig("pip", "uninstall", "--session", "l", "demo_pkg")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"not installed", p.stderr)

    def test_compiled_wheel_is_refused_and_nothing_is_written(self):
        wheel = build_wheel(self.tmp, "fast", "1.0", {
            "fast/__init__.py": "from ._speed import go\n",
            "fast/_speed.cpython-311-x86_64-linux-gnu.so": b"\x7fELF\x02\x01\x01" + bytes(100),
        })
        self.ok("files", "put", "--session", "c", "/tmp/fast.whl", wheel)  # the name is not checked then
        before = self.ok("files", "ls", "--session", "c")
        for args in (["/tmp/fast.whl", "--from-session"], [wheel]):
            p = self.brig("pip", "install", "--session", "c", *args)
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 1, err)
            self.assertIn("compiled code", err)
            self.assertIn("fast/_speed.cpython-311-x86_64-linux-gnu.so", err)
        self.assertEqual(self.ok("files", "ls", "--session", "c"), before)
        # A platform tag alone is enough.
        tagged = build_wheel(self.tmp, "plat", "1.0", {"plat/__init__.py": ""}, tag="cp311-cp311-manylinux_2_17_x86_64")
        p = self.brig("pip", "install", "--session", "c", tagged)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"particular interpreter (cp311)", p.stderr)

    def test_zip_slip_is_refused(self):
        path = os.path.join(self.tmp, "evil-1.0-py3-none-any.whl")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("../../../../home/user/evil.py", "x = 1\n")
            z.writestr("evil-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        p = self.brig("pip", "install", "--session", "z", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"'..' component", p.stderr)
        p = self.brig("files", "ls", "--session", "z")
        self.assertNotIn(b"evil", p.stdout)


class SqliteWheelTest(WheelCases, unittest.TestCase):
    pass


class PostgresWheelTest(WheelCases, unittest.TestCase):
    def setUp(self):
        if _pg is None:
            self.skipTest("BRIG_SKIP_POSTGRES=1")
        super().setUp()
        self.env["BRIG_DB"] = _pg.database()


if __name__ == "__main__":
    unittest.main()
