"""The `make pytests` harness on a few small modules, in brig and natively (ctest pytests_quick).

BRIG_BUILD: the build directory (brig, cpython/source-dir.txt).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("BRIG_BUILD", os.path.join(HERE, "..", "..", "build"))
sys.path.insert(0, HERE)
import harness  # noqa: E402

FAKE_TEST = '''
import os, unittest
class T(unittest.TestCase):
    def test_pass(self): pass
    def test_fail(self): self.assertEqual(1, 2)
    def test_error(self): raise ValueError("boom")
    @unittest.skip("not today")
    def test_skip(self): pass
    def test_native_only(self):
        if os.uname().sysname == "wasi": self.fail("in the sandbox")
'''
FAKE_HANG = '''
import unittest
class T(unittest.TestCase):
    def test_forever(self):
        while True: pass
'''


def run_harness(*args):
    with tempfile.TemporaryDirectory(prefix="pytests-quick-") as d:
        out = os.path.join(d, "r.json")
        p = subprocess.run([sys.executable, os.path.join(HERE, "harness.py"), "--build", BUILD,
                            "--json", out, "--jobs", "2"] + list(args),
                           capture_output=True, text=True, timeout=900)
        with open(out) as f:
            return p, {r["module"]: r for r in json.load(f)}


class RealModules(unittest.TestCase):
    def test_both_sides_run_and_agree(self):
        p, res = run_harness("--modules", "test_textwrap,test_base64")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for m in ("test_textwrap", "test_base64"):
            for side in ("native", "brig"):
                self.assertEqual(res[m][side]["status"], "ok", (m, side))
                self.assertGreater(res[m][side]["summary"]["run"], 30)
            self.assertEqual(res[m]["brig"]["summary"]["platform"], "wasi")
            self.assertEqual(res[m]["native"]["summary"]["platform"], "linux")
        # textwrap is pure Python: everything passes on both sides, the same tests.
        self.assertEqual(res["test_textwrap"]["differences"], [])
        self.assertEqual(sorted(res["test_textwrap"]["brig"]["summary"]["passed"]),
                         sorted(res["test_textwrap"]["native"]["summary"]["passed"]))
        # base64's command-line tests need a subprocess: labelled, not unexplained.
        diffs = res["test_base64"]["differences"]
        self.assertTrue(diffs)
        self.assertEqual({d["category"] for d in diffs}, {"subprocesses"})
        self.assertIn("TOTAL", p.stdout)


class FakeModules(unittest.TestCase):
    """A source tree with a module whose outcomes are known, and one that hangs."""

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(BUILD, "cpython", "source-dir.txt")) as f:
            real = os.path.join(f.read().strip(), "Lib", "test")
        cls.src = tempfile.mkdtemp(prefix="pytests-fake-")
        t = os.path.join(cls.src, "Lib", "test")
        os.makedirs(t)
        shutil.copy(os.path.join(real, "__init__.py"), t)
        shutil.copytree(os.path.join(real, "support"), os.path.join(t, "support"))
        with open(os.path.join(t, "test_fake.py"), "w") as f:
            f.write(FAKE_TEST)
        with open(os.path.join(t, "test_hang.py"), "w") as f:
            f.write(FAKE_HANG)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.src)

    def test_outcomes_and_hang_are_reported(self):
        p, res = run_harness("--source", self.src, "--modules", "test_fake,test_hang",
                             "--timeout", "5")
        self.assertEqual(p.returncode, 1, p.stdout)
        for side in ("native", "brig"):
            s = res["test_fake"][side]["summary"]
            self.assertEqual(s["run"], 5)
            self.assertEqual([i for i, _ in s["errors"]], ["test.test_fake.T.test_error"])
            self.assertEqual([i for i, _ in s["skipped"]], ["test.test_fake.T.test_skip"])
            self.assertIn("ValueError: boom", s["errors"][0][1])
        self.assertEqual(len(res["test_fake"]["native"]["summary"]["failures"]), 1)
        self.assertEqual(len(res["test_fake"]["brig"]["summary"]["failures"]), 2)
        self.assertEqual([(d["test"], d["category"]) for d in res["test_fake"]["differences"]],
                         [("test.test_fake.T.test_native_only", "unexplained")])
        self.assertIn("test_native_only", p.stdout)
        # A hang is stopped by brig's timeout and names the test it was in.
        hang = res["test_hang"]["brig"]
        self.assertTrue(hang["status"].startswith("timeout"), hang)
        self.assertEqual(hang["last_test"], "test.test_hang.T.test_forever")
        self.assertEqual(res["test_hang"]["native"]["status"], "timeout")


if __name__ == "__main__":
    unittest.main()
