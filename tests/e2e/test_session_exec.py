"""`brig exec --session`: state and files that survive across separate brig processes, on
the embedded SQLite store and on a real PostgreSQL server (started here, stopped after).

Every test runs each step in a NEW brig process: nothing may survive in memory.
"""
import json
import os
import random
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

import pg_server

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))

_pg = None


def setUpModule():
    global _pg
    _pg = pg_server.shared()


class SessionExecMixin:
    """The suite; subclasses say which store (self.db)."""

    def setUp(self):
        self.home = tempfile.TemporaryDirectory(prefix="brig-home-")
        self.env = dict(os.environ, BRIG_HOME=self.home.name)
        self.env.pop("BRIG_DB", None)

    def tearDown(self):
        self.home.cleanup()

    def brig(self, *args, stdin=None, timeout=120):
        argv = [BRIG] + list(args)
        if args and args[0] in ("exec", "sessions", "files", "cleanup") and self.db:
            argv += ["--db", self.db]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=self.env, timeout=timeout)

    def run_json(self, session, code, *extra):
        p = self.brig("exec", "--session", session, "--json", *extra, "-c", code)
        self.assertNotEqual(p.stdout, "", p.stderr)
        return p, json.loads(p.stdout)

    def test_seed_example_across_three_processes(self):
        first = self.brig("exec", "--session", "seed", "-c",
                          "x = 42; y = 100\ndef calculate(): return x + y\nprint(f'Sum: {calculate()}')")
        self.assertEqual((first.returncode, first.stdout), (0, "Sum: 142\n"), first.stderr)
        second = self.brig("exec", "--session", "seed", "-c", "print(calculate())\nx = 50")
        self.assertEqual((second.returncode, second.stdout), (0, "142\n"), second.stderr)
        p, third = self.run_json("seed", "calculate()")
        self.assertEqual(third["result"], "150")
        self.assertEqual(third["session"]["restored_from"], "pages")
        self.assertEqual(third["session"]["version"], 3)

    def test_everything_the_user_defined_survives(self):
        self.brig("exec", "--session", "all", "-c", """
import json, collections as col
class Point:
    def __init__(self, x, y): self.x, self.y = x, y
    def norm2(self): return self.x ** 2 + self.y ** 2
p = Point(3, 4)
square = lambda v: v * v
def counter():
    n = 0
    def step():
        nonlocal n
        n += 1
        return n
    return step
tick = counter(); tick()
gen = (i * 10 for i in range(5)); next(gen)
log = open('/tmp/log.txt', 'w'); log.write('one\\n'); log.flush()
""")
        p, out = self.run_json("all", "log.write('two\\n'); log.close()\n"
                               "(p.norm2(), square(6), tick(), next(gen), json.dumps(col.Counter('aab')), open('/tmp/log.txt').read())")
        self.assertTrue(out["ok"], out)
        self.assertEqual(out["result"], "(25, 36, 2, 10, '{\"a\": 2, \"b\": 1}', 'one\\ntwo\\n')")

    def test_files_persist_and_deletions_too(self):
        p, out = self.run_json("files", "import os\nos.makedirs('out', exist_ok=True)\n"
                               "open('/tmp/data.csv', 'w').write('a,b\\n1,2\\n')\n"
                               "open('/home/user/out/report.md', 'w').write('# Report')")
        self.assertEqual(sorted(out["session"]["files_saved"]), ["/home/user/out/report.md", "/tmp/data.csv"])
        p, out = self.run_json("files", "(open('/tmp/data.csv').read(), open('out/report.md').read())")
        self.assertEqual(out["result"], "('a,b\\n1,2\\n', '# Report')")
        self.assertEqual(out["session"]["files_saved"], [])  # nothing changed
        p, out = self.run_json("files", "import os\nos.remove('/tmp/data.csv')")
        self.assertEqual(out["session"]["files_deleted"], ["/tmp/data.csv"])
        p, out = self.run_json("files", "import os\n(os.path.exists('/tmp/data.csv'), os.listdir('out'))")
        self.assertEqual(out["result"], "(False, ['report.md'])")

    def test_names_agents_write_are_saved(self):
        p = self.brig("exec", "--session", "s1", "-c", 'x = 1; open("/tmp/12:00.log", "w").write("hi")')
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.brig("exec", "--session", "s1", "-c", 'print(x, open("/tmp/12:00.log").read())')
        self.assertEqual(p.stdout, "1 hi\n", p.stderr)
        self.assertEqual(self.brig("files", "cat", "--session", "s1", "/tmp/12:00.log").stdout, "hi")

    def test_a_name_the_store_cannot_hold_fails_in_the_guest_and_the_rest_is_saved(self):
        long_name = "/tmp/" + "a" * 300
        p = self.brig("files", "put", "--session", "s2", long_name, stdin="x")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("255", p.stderr)
        p, out = self.run_json("s2", "x = 1\nopen(%r, 'w')" % long_name)
        self.assertEqual(out["error"]["type"], "OSError")
        self.assertIn("[Errno 37] Filename too long", out["error"]["message"])
        self.assertIn("brig: a path component is longer than 255 bytes", out["error"]["traceback"])
        self.assertTrue(out["session"]["saved"])
        p, out = self.run_json("s2", "print(x); open('/tmp/\\udcff', 'w')")
        self.assertEqual(out["stdout"], "1\n")
        self.assertIn("not valid UTF-8", out["error"]["traceback"])
        self.assertEqual(self.brig("exec", "--session", "s2", "-c", "print(x + 1)").stdout, "2\n")

    def test_a_cold_start_saves_the_portable_snapshot_and_says_so(self):
        env = dict(self.env, BRIG_NO_IMAGE="1")
        argv = [BRIG, "exec", "--session", "s3", "--json"] + (["--db", self.db] if self.db else [])
        argv += ["-c", "x = 1\ndef f(): return x + 41"]
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertTrue(out["session"]["saved"])
        self.assertEqual(out["session"]["snapshot"], "portable")
        self.assertIn("cold", out["session"]["pages_unavailable"])
        p, out = self.run_json("s3", "f()")
        self.assertEqual(out["result"], "42")
        self.assertEqual(out["session"]["restored_from"], "portable")
        self.assertEqual(out["session"]["snapshot"], "pages")
        # What the portable snapshot cannot hold refuses the save, naming it; nothing changes.
        argv[-1] = "x = 2\ngen = (i for i in range(3))"
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("gen", p.stderr)
        self.assertIn("portable snapshot cannot hold", p.stderr)
        p, out = self.run_json("s3", "x")
        self.assertEqual(out["result"], "1")

    def test_empty_directories_are_saved_and_restored(self):
        p = self.brig("exec", "--session", "d", "-c",
                      "import os; os.makedirs('/tmp/a/b'); os.mkdir('/home/user/empty'); os.mkdir('/tmp/full');"
                      "open('/tmp/full/f', 'w').close()")
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = self.brig("files", "ls", "--session", "d").stdout
        self.assertIn("/tmp/a/b", listed)
        self.assertIn("/home/user/empty", listed)
        p = self.brig("exec", "--session", "d", "-c",
                      "import os; print(os.path.isdir('/tmp/a/b'), os.path.isdir('/home/user/empty'), os.listdir('/tmp/full'))")
        self.assertEqual(p.stdout, "True True ['f']\n", p.stderr)
        # Reset keeps files, and the empty directories with them.
        self.assertEqual(self.brig("sessions", "reset", "d").returncode, 0)
        p = self.brig("exec", "--session", "d", "-c",
                      "import os; print(os.path.isdir('/tmp/a/b')); os.rmdir('/tmp/a/b'); open('/home/user/empty/x', 'w').close()")
        self.assertEqual(p.stdout, "True\n", p.stderr)
        p = self.brig("exec", "--session", "d", "-c",
                      "import os; print(os.listdir('/tmp/a'), os.listdir('/home/user/empty'))")
        self.assertEqual(p.stdout, "[] ['x']\n", p.stderr)
        listed = self.brig("files", "ls", "--session", "d").stdout.split()
        self.assertIn("/tmp/a", listed)  # left empty by the rmdir: saved as a directory now
        self.assertNotIn("/tmp/a/b", listed)
        self.assertNotIn("/home/user/empty", listed)  # holds a file: no row of its own

    def test_timeout_and_trap_save_nothing(self):
        self.run_json("fail", "x = 1\nopen('/tmp/keep.txt', 'w').write('kept')")
        p, out = self.run_json("fail", "x = 2\nopen('/tmp/lost.txt', 'w').write('x')\nwhile True: pass", "--timeout", "1")
        self.assertEqual(p.returncode, 124)
        self.assertFalse(out["session"]["saved"])
        p, out = self.run_json("fail", "import os\n(x, open('/tmp/keep.txt').read(), os.path.exists('/tmp/lost.txt'))")
        self.assertEqual(out["result"], "(1, 'kept', False)")

    def test_memory_grown_to_its_very_limit_is_saved_and_restored(self):
        # Memory grown to exactly --memory once broke the checkpoint (a 0-byte mmap of the
        # growth's tail failed) and every later execution of the session with it.
        fill = ("l = []\nfor size in (4 << 20, 1 << 20, 64 << 10, 4 << 10, 256):\n"
                "    try:\n        while True: l.append(bytearray(size))\n"
                "    except MemoryError: pass\nprint(len(l) > 10)\ndel l\nkept = 7")
        p, out = self.run_json("full", fill, "--memory", "32")
        self.assertEqual((out["stdout"], out["failure"], out["session"]["not_portable"]), ("True\n", None, {}), out)
        for _ in range(2):
            p, out = self.run_json("full", "print(kept)", "--memory", "32")
            self.assertEqual((out["stdout"], out["failure"]), ("7\n", None), out)
            self.assertEqual(out["session"]["restored_from"], "pages")

    def test_exception_keeps_what_ran_before_it(self):
        p, out = self.run_json("exc", "x = 5\n1/0")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(out["session"]["saved"])
        p, out = self.run_json("exc", "x")
        self.assertEqual(out["result"], "5")

    def test_file_over_20_mib_fails_in_the_guest_and_nothing_else_is_lost(self):
        p, out = self.run_json("big", "x = 1\nopen('/tmp/small.txt', 'w').write('s')\n"
                               "try:\n    open('/tmp/big.bin', 'wb').write(b'0' * (20 * 1024 * 1024 + 1))\n"
                               "except OSError as e:\n    err = type(e).__name__ + ' ' + str(e.errno)\nerr")
        self.assertTrue(out["ok"], out)
        self.assertIn("OSError", out["result"])
        p, out = self.run_json("big", "import os\n(x, open('/tmp/small.txt').read(), os.path.getsize('/tmp/big.bin'))")
        self.assertEqual(out["result"], "(1, 's', 0)")

    def test_quota_flags_fail_the_write_in_the_guest_and_keep_the_rest(self):
        code = ("import errno\nmade = []\nfor i in range(4):\n    try:\n"
                "        open(f'/tmp/q{i}', 'w').write('x' * 600)\n        made.append(i)\n"
                "    except OSError as e:\n        made.append(errno.errorcode[e.errno])\nmade")
        p, out = self.run_json("quota", code, "--max-files", "2", "--expires-days", "2")
        self.assertEqual(out["result"], "[0, 1, 'ENOSPC', 'ENOSPC']", out)
        self.assertEqual(sorted(out["session"]["files_saved"]), ["/tmp/q0", "/tmp/q1"])
        shown = json.loads(self.brig("sessions", "show", "quota", "--json").stdout)
        self.assertEqual(shown["file_count"], 2)
        days = (time.mktime(time.strptime(shown["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) -
                time.mktime(time.strptime(shown["created_at"], "%Y-%m-%dT%H:%M:%SZ"))) / 86400
        self.assertAlmostEqual(days, 2, places=3)
        # A byte quota of 1 MiB: the third 400 KiB file does not fit; the state still saves.
        p, out = self.run_json("bytes", "x = 7\nfor i in range(3):\n    try:\n"
                               "        open(f'/tmp/b{i}', 'wb').write(b'0' * (400 << 10))\n"
                               "    except OSError as e:\n        err = errno_name = e.errno\n"
                               "import errno\nerrno.errorcode[err]", "--max-mib", "1")
        self.assertEqual(out["result"], "'ENOSPC'", out)
        p, out = self.run_json("bytes", "import os\n(x, sorted(os.listdir('/tmp')))", "--max-mib", "1")
        self.assertEqual(out["result"], "(7, ['b0', 'b1', 'b2'])", out)  # b2 exists, cut short
        for bad in (["--max-files", "0"], ["--max-mib", "-1"], ["--expires-days", "0"]):
            p = self.brig("exec", "--session", "quota", *bad, "-c", "1")
            self.assertEqual(p.returncode, 2, (bad, p.stderr))
        self.assertEqual(self.brig("exec", "--max-files", "3", "-c", "1").returncode, 2)

    def test_store_tuning_from_the_environment(self):
        env = dict(self.env, BRIG_DB_POOL_SIZE="2", BRIG_DB_STATEMENT_TIMEOUT="5")
        p = subprocess.run([BRIG, "exec", "--session", "tuned", "-c", "print(6 * 7)"] +
                           (["--db", self.db] if self.db else []),
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual((p.returncode, p.stdout), (0, "42\n"), p.stderr)
        for name, value in [("BRIG_DB_POOL_SIZE", "0"), ("BRIG_DB_POOL_SIZE", "2.5"),
                            ("BRIG_DB_STATEMENT_TIMEOUT", "soon"), ("BRIG_DB_STATEMENT_TIMEOUT", "-1")]:
            for args in (["exec", "--session", "tuned", "-c", "1"], ["sessions", "list"]):
                p = subprocess.run([BRIG] + args + (["--db", self.db] if self.db else []), capture_output=True,
                                   text=True, env=dict(self.env, **{name: value}), timeout=120)
                self.assertEqual(p.returncode, 2, (name, value, args, p.stderr))
                self.assertIn(name, p.stderr)

    def test_bad_thread_ids_are_refused(self):
        for bad in ["x" * 256, "a\x01b"]:
            p = self.brig("exec", "--session", bad, "-c", "1")
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertIn("thread_id", p.stderr)

    def test_kill_9_at_random_moments_leaves_state_and_files_consistent(self):
        self.run_json("kill", "n = 0\nopen('/tmp/n.txt', 'w').write('0')\nblob = ''")
        rng = random.Random(1234)
        argv = [BRIG, "exec", "--session", "kill", "-c",
                "n += 1\nopen('/tmp/n.txt', 'w').write(str(n))\nblob = 'x' * (n * 1000)"]
        if self.db:
            argv += ["--db", self.db]
        finished = 0
        for _ in range(25):
            p = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, 0.12))  # a whole run takes ~20-60 ms
            p.kill()  # SIGKILL: no clean-up of any kind
            if p.wait() == 0:
                finished += 1
        p, out = self.run_json("kill", "(n, int(open('/tmp/n.txt').read()), len(blob) == n * 1000)")
        self.assertTrue(out["ok"], out)
        n, in_file, blob_ok = eval(out["result"])
        self.assertEqual(n, in_file, "state and file from different executions")
        self.assertTrue(blob_ok)
        self.assertGreaterEqual(n, finished)
        self.assertLessEqual(n, 25)

    def test_two_processes_in_one_session_lose_no_update(self):
        self.run_json("race", "n = 0")
        errors = []

        def bump():
            for _ in range(5):
                p = self.brig("exec", "--session", "race", "-c", "n += 1")
                if p.returncode != 0:
                    errors.append(p.stderr)

        threads = [threading.Thread(target=bump) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        p, out = self.run_json("race", "n")
        self.assertEqual(out["result"], "10")


class SqliteSessionExecTest(SessionExecMixin, unittest.TestCase):
    db = None  # the default: sqlite in $BRIG_HOME

    def test_a_row_an_older_brig_accepted_never_stops_the_session_loading(self):
        self.run_json("old", "x = 1\nopen('/tmp/ok', 'w').write('ok')")
        # A name an older brig's store took but the sandbox cannot hold (a 300-byte component).
        bad = "/tmp/" + "a" * 300
        db = sqlite3.connect(os.path.join(self.home.name, "brig.db"))
        db.execute("INSERT INTO brig_files (thread_id, path, content, content_type, size, created_at, modified_at)"
                   " VALUES ('old', ?, x'6869', 'text/plain', 2, 0, 0)", (bad,))
        db.commit()
        db.close()
        p, out = self.run_json("old", "import os; print(x, open('/tmp/ok').read(), os.listdir('/tmp'))")
        self.assertEqual(out["stdout"], "1 ok ['ok']\n", p.stderr)
        self.assertIn(bad, out["session"]["not_restored"])
        self.assertIn("255", out["session"]["not_restored"][bad])
        self.assertTrue(out["session"]["saved"])

    def test_another_guest_build_falls_back_to_the_portable_snapshot(self):
        self.run_json("port", "x = 42\ndef calculate(): return x + 100\ngen = (i for i in range(3))")
        # Make the page snapshot look as if another image made it (as after an upgrade).
        db = sqlite3.connect(os.path.join(self.home.name, "brig.db"))
        (blob,) = db.execute("SELECT snapshot FROM brig_session_state WHERE thread_id='port'").fetchone()
        at = blob.index(b'"image_digest":"') + len(b'"image_digest":"')
        blob = blob[:at] + (b"0" if blob[at:at + 1] != b"0" else b"1") + blob[at + 1:]
        db.execute("UPDATE brig_session_state SET snapshot=? WHERE thread_id='port'", (blob,))
        db.commit()
        db.close()
        p, out = self.run_json("port", "calculate()")
        self.assertEqual(out["result"], "142")
        self.assertEqual(out["session"]["restored_from"], "portable")
        self.assertIn("gen", out["session"]["not_restored"])


@unittest.skipIf(os.environ.get("BRIG_SKIP_POSTGRES") == "1", "BRIG_SKIP_POSTGRES=1")
class PostgresSessionExecTest(SessionExecMixin, unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.db = _pg.database()

    def test_server_down_is_a_clear_error_and_loses_nothing(self):
        self.run_json("down", "x = 42; y = 100\ndef calculate(): return x + y\n"
                      "open('/tmp/d.txt', 'w').write('before')")
        _pg.pause()
        try:
            p = self.brig("exec", "--session", "down", "-c", "x = 0\nopen('/tmp/d.txt', 'w').write('lost')",
                          timeout=120)
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertEqual(p.stdout, "")
            self.assertTrue(p.stderr.startswith("brig: ") and p.stderr.count("\n") == 1, p.stderr)
            self.assertIn("connect", p.stderr.lower())
            for args in (["files", "cat", "--session", "down", "/tmp/d.txt"], ["sessions", "list"], ["cleanup"]):
                p = self.brig(*args)
                self.assertEqual(p.returncode, 1, (args, p.stderr))
                self.assertTrue(p.stderr.startswith("brig: "), p.stderr)
        finally:
            _pg.resume()
        p, out = self.run_json("down", "(calculate(), open('/tmp/d.txt').read())")
        self.assertEqual(out["result"], "(142, 'before')")
        self.assertEqual(out["session"]["version"], 2)


if __name__ == "__main__":
    unittest.main()
