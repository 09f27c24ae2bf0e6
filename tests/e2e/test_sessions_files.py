"""End-to-end tests of `brig sessions`, `brig files` and `brig cleanup` (BRIG_BIN, set by ctest).

Every test runs twice: on the embedded SQLite store (its own BRIG_HOME temp dir) and on a
real PostgreSQL server (pg_server.shared(): one per test process) with a fresh database per
test. BRIG_SKIP_POSTGRES=1 skips the PostgreSQL half.
"""
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import time
import unittest

import pg_server

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))
MAX_FILE = 20 << 20


_pg = None


def setUpModule():
    global _pg
    _pg = pg_server.shared()


class CliCases:
    """The cases; a subclass says which store the brig processes use (self.env)."""

    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="brig-e2e-home-")
        self.addCleanup(shutil.rmtree, self.home, True)
        self.env = dict(os.environ, BRIG_HOME=self.home)
        self.env.pop("BRIG_DB", None)

    def brig(self, *args, stdin=None, timeout=120):
        return subprocess.run([BRIG, *args], input=stdin, capture_output=True, timeout=timeout, env=self.env)

    def ok(self, *args, stdin=None):
        p = self.brig(*args, stdin=stdin)
        self.assertEqual(p.returncode, 0, "%s: %s" % (args, p.stderr.decode(errors="replace")))
        return p

    def json(self, *args, stdin=None):
        return json.loads(self.ok(*args, "--json", stdin=stdin).stdout)

    def fails(self, code, *args, stdin=None, says=None):
        p = self.brig(*args, stdin=stdin)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, code, "%s: stdout %r stderr %r" % (args, p.stdout[:200], err))
        self.assertTrue(err.startswith("brig: "), err)
        self.assertEqual(err.count("\n"), 1, "one line: %r" % err)
        if says:
            self.assertIn(says, err)
        return err

    def usage_error(self, *args, stdin=None):
        """A command line the parser itself refuses: exit 2 (its message is CLI11's)."""
        p = self.brig(*args, stdin=stdin)
        self.assertEqual(p.returncode, 2, "%s: %r" % (args, p.stderr))
        self.assertEqual(p.stdout, b"")

    # ---- files ----

    def test_put_cat_ls_round_trip(self):
        p = self.ok("files", "put", "--session", "s1", "/home/user/data.csv", stdin=b"a,b\n1,2\n")
        self.assertIn(b"/home/user/data.csv: 8 bytes, text/csv", p.stdout)
        self.assertEqual(self.ok("files", "cat", "--session", "s1", "/home/user/data.csv").stdout, b"a,b\n1,2\n")
        # Relative paths are under /home/user, the sandbox's working directory.
        self.assertEqual(self.ok("files", "cat", "--session", "s1", "data.csv").stdout, b"a,b\n1,2\n")
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
        self.addCleanup(os.unlink, f.name)
        info = self.json("files", "put", "--session", "s1", "/tmp/pic.dat", f.name)
        self.assertEqual(info["content_type"], "image/png")
        self.assertEqual(info["size"], 16)
        listing = self.json("files", "ls", "--session", "s1")
        self.assertEqual([x["path"] for x in listing], ["/home/user/data.csv", "/tmp/pic.dat"])
        self.assertEqual([x["path"] for x in self.json("files", "ls", "--session", "s1", "/tmp/")], ["/tmp/pic.dat"])
        text = self.ok("files", "ls", "--session", "s1").stdout.decode()
        self.assertIn("text/csv  /home/user/data.csv", text)

    def test_cat_offset_limit_and_json_encodings(self):
        self.ok("files", "put", "--session", "s", "/tmp/d", stdin=b"0123456789")
        self.assertEqual(self.ok("files", "cat", "--session", "s", "/tmp/d", "--offset", "3", "--limit", "4").stdout,
                         b"3456")
        self.assertEqual(self.ok("files", "cat", "--session", "s", "/tmp/d", "--offset", "8").stdout, b"89")
        j = self.json("files", "cat", "--session", "s", "/tmp/d", "--limit", "2")
        self.assertEqual((j["content"], j["encoding"], j["size"]), ("01", "utf-8", 10))
        self.ok("files", "put", "--session", "s", "/tmp/bin", stdin=b"\xff\x00\xfe")
        j = self.json("files", "cat", "--session", "s", "/tmp/bin")
        self.assertEqual((j["content"], j["encoding"]), ("/wD+", "base64"))
        self.usage_error("files", "cat", "--session", "s", "/tmp/d", "--offset", "-1")

    def test_edit_unique_ambiguous_absent_all(self):
        self.ok("files", "put", "--session", "s", "/home/user/a.py", stdin=b"x = 1\ny = 2\nx = 1\n")
        self.fails(1, "files", "edit", "--session", "s", "a.py", "x = 1", "x = 3", says="occurs 2 times")
        self.fails(1, "files", "edit", "--session", "s", "a.py", "nope", "z", says="does not occur")
        self.assertEqual(self.ok("files", "cat", "--session", "s", "a.py").stdout, b"x = 1\ny = 2\nx = 1\n")
        self.assertEqual(self.json("files", "edit", "--session", "s", "a.py", "y = 2", "y = 5")["replacements"], 1)
        p = self.ok("files", "edit", "--session", "s", "a.py", "x = 1", "x = 0", "--all")
        self.assertIn(b"2 replacements", p.stdout)
        self.assertEqual(self.ok("files", "cat", "--session", "s", "a.py").stdout, b"x = 0\ny = 5\nx = 0\n")
        self.fails(2, "files", "edit", "--session", "s", "a.py", "", "q", says="empty")

    def test_rm(self):
        self.ok("files", "put", "--session", "s", "/tmp/a", stdin=b"1")
        self.ok("files", "put", "--session", "s", "/tmp/b", stdin=b"2")
        self.ok("files", "rm", "--session", "s", "/tmp/a")
        self.fails(1, "files", "cat", "--session", "s", "/tmp/a", says="does not exist")
        self.fails(1, "files", "rm", "--session", "s", "/tmp/a", says="does not exist")
        self.assertEqual(self.ok("files", "cat", "--session", "s", "/tmp/b").stdout, b"2")

    def test_glob_and_grep(self):
        files = {"/home/user/a.py": b"import os\n# TODO one\n", "/home/user/lib/b.py": b"def f():\n    return 1\n",
                 "/home/user/notes.md": b"todo: TODO\nTODO twice\n", "/tmp/x.csv": b"1,2\n"}
        for path, content in files.items():
            self.ok("files", "put", "--session", "g", path, stdin=content)
        out = self.ok("files", "glob", "--session", "g", "/home/user/**/*.py").stdout.decode().split()
        self.assertEqual(out, ["/home/user/a.py", "/home/user/lib/b.py"])
        self.assertEqual(self.ok("files", "glob", "--session", "g", "*.md").stdout, b"/home/user/notes.md\n")
        self.assertEqual(self.ok("files", "glob", "--session", "g", "/nothing/*").stdout, b"")
        self.assertEqual(self.ok("files", "grep", "--session", "g", "TODO").stdout.decode().splitlines(),
                         ["/home/user/a.py:2:# TODO one", "/home/user/notes.md:1:todo: TODO",
                          "/home/user/notes.md:2:TODO twice"])
        self.assertEqual(self.ok("files", "grep", "--session", "g", "-l", "TODO").stdout.decode().split(),
                         ["/home/user/a.py", "/home/user/notes.md"])
        self.assertEqual(self.ok("files", "grep", "--session", "g", "-c", "-i", "todo").stdout.decode().split(),
                         ["/home/user/a.py:1", "/home/user/notes.md:2"])
        self.assertEqual(self.ok("files", "grep", "--session", "g", r"^\s+return\b", "/home/user/**/*.py").stdout,
                         b"/home/user/lib/b.py:2:    return 1\n")
        j = self.json("files", "grep", "--session", "g", "TODO", "*.md")
        self.assertEqual(j["files_searched"], 1)
        self.assertEqual(j["files"][0]["lines"][1], {"line": 2, "text": "TODO twice", "text_truncated": False})
        self.assertIs(j["truncated"], False)
        self.assertEqual(self.ok("files", "grep", "--session", "g", "absent").stdout, b"")
        self.fails(2, "files", "grep", "--session", "g", "(a", says="missing ')'")
        self.fails(2, "files", "grep", "--session", "g", r"(a)\1", says="back-references")
        self.usage_error("files", "grep", "--session", "g", "-l", "-c", "x")
        self.usage_error("files", "grep", "g", "x")  # no --session

    def test_pathological_regex_does_not_hang(self):
        self.ok("files", "put", "--session", "r", "/tmp/a", stdin=b"a" * 100000 + b"!\n")
        start = time.monotonic()
        self.assertEqual(self.ok("files", "grep", "--session", "r", "(a+)+$").stdout, b"")
        self.assertLess(time.monotonic() - start, 20)

    def test_file_of_20_mib_and_one_byte_more(self):
        self.ok("files", "put", "--session", "big", "/tmp/keep", stdin=b"previous")
        self.ok("files", "put", "--session", "big", "/tmp/max", stdin=b"z" * MAX_FILE)
        self.assertEqual(self.json("files", "ls", "--session", "big", "/tmp/max")[0]["size"], MAX_FILE)
        self.fails(1, "files", "put", "--session", "big", "/tmp/keep", stdin=b"y" * (MAX_FILE + 1),
                   says="larger than")
        self.assertEqual(self.ok("files", "cat", "--session", "big", "/tmp/keep").stdout, b"previous")

    def test_bad_paths_and_thread_ids_are_usage_errors(self):
        for path in ["/tmp/../etc/passwd", "/tmp/x/", "/tmp/a\x01b", "/" + "a" * 5000, "/tmp/" + "a" * 256,
                     "/tmp" + "/d" * 64]:
            self.fails(2, "files", "put", "--session", "s", path, stdin=b"x")
        for tid in ["", "x" * 256, "a\nb"]:
            self.fails(2, "files", "put", "--session", tid, "/tmp/a", stdin=b"x")
            self.fails(2, "sessions", "show", tid)
        self.assertEqual(self.json("sessions", "list"), [])  # nothing was created

    def test_names_the_guest_can_make_are_accepted(self):
        # The same rules as the guest's file system (names/path_rules.h): ':' '*' '?' are fine.
        for path in ["/tmp/12:00.log", "/home/user/report: final.txt", "/tmp/a*b?", "/tmp/" + "a" * 255]:
            self.ok("files", "put", "--session", "s", path, stdin=b"x")
        p = self.brig("exec", "--session", "s", "-c",
                      "import os; print(sorted(n[:9] for n in os.listdir('/tmp')), open('/home/user/report: final.txt').read())")
        self.assertEqual(p.stdout, b"['12:00.log', 'a*b?', 'aaaaaaaaa'] x\n", p.stderr)

    def test_missing_session_is_an_error_except_for_put(self):
        self.fails(1, "files", "ls", "--session", "ghost", says="session 'ghost' does not exist")
        self.fails(1, "files", "cat", "--session", "ghost", "/tmp/a", says="does not exist")
        self.fails(1, "sessions", "show", "ghost", says="does not exist")
        self.fails(1, "sessions", "extend", "ghost", "3")
        self.fails(1, "sessions", "delete", "ghost")
        self.fails(1, "sessions", "reset", "ghost")
        self.ok("files", "put", "--session", "ghost", "/tmp/a", stdin=b"x")
        self.assertEqual(self.json("sessions", "show", "ghost")["file_count"], 1)

    def test_file_and_directory_cannot_share_a_path(self):
        self.ok("files", "put", "--session", "s", "/home/user/out/r.md", stdin=b"r")
        self.fails(1, "files", "put", "--session", "s", "/home/user/out", stdin=b"x", says="is a directory")

    # ---- sessions ----

    def test_sessions_create_show_list_extend_delete(self):
        j = self.json("sessions", "create", "agent-1", "--expires-days", "3", "--metadata", '{"owner": "ada"}')
        self.assertEqual(j["metadata"], {"owner": "ada"})
        self.assertIs(j["expired"], False)
        self.fails(1, "sessions", "create", "agent-1", says="already exists")
        self.fails(2, "sessions", "create", "agent-2", "--metadata", "[1]", says="JSON object")
        self.fails(2, "sessions", "create", "agent-2", "--expires-days", "0")
        self.ok("files", "put", "--session", "agent-2", "/tmp/f", stdin=b"12345")
        shown = self.json("sessions", "show", "agent-2")
        self.assertEqual((shown["file_count"], shown["total_bytes"]), (1, 5))
        created = shown["created_at"]
        expires = shown["expires_at"]
        self.assertGreater(expires, created)
        listed = self.json("sessions", "list")
        self.assertEqual([s["thread_id"] for s in listed], ["agent-1", "agent-2"])
        text = self.ok("sessions", "list").stdout.decode()
        self.assertIn("THREAD_ID", text)
        self.assertIn("agent-2", text)
        extended = self.json("sessions", "extend", "agent-1", "10")
        self.assertGreater(extended["expires_at"], j["expires_at"])
        self.fails(2, "sessions", "extend", "agent-1", "0")
        self.usage_error("sessions", "extend", "agent-1", "abc")
        self.assertEqual(self.json("sessions", "delete", "agent-2"), {"thread_id": "agent-2", "deleted": True})
        self.fails(1, "files", "cat", "--session", "agent-2", "/tmp/f")
        self.assertEqual([s["thread_id"] for s in self.json("sessions", "list")], ["agent-1"])

    def test_expired_session_is_refused_until_extended_and_cleanup_counts(self):
        self.ok("files", "put", "--session", "old", "/tmp/a", stdin=b"x" * 10)
        self.ok("files", "put", "--session", "old", "/tmp/b", stdin=b"y" * 20)
        self.ok("files", "put", "--session", "young", "/tmp/c", stdin=b"z" * 7)
        self.expire("old")
        err = self.fails(1, "files", "cat", "--session", "old", "/tmp/a", says="expired at")
        self.assertIn("brig sessions extend old", err)
        self.fails(1, "files", "put", "--session", "old", "/tmp/n", stdin=b"n", says="expired")
        self.assertIs(self.json("sessions", "show", "old")["expired"], True)
        self.assertIn("expired", self.ok("sessions", "list").stdout.decode())
        # Extending makes it usable again, with its files.
        self.ok("sessions", "extend", "old", "1")
        self.assertEqual(self.ok("files", "cat", "--session", "old", "/tmp/a").stdout, b"x" * 10)
        # Expire again; cleanup: a dry run counts and keeps, a real run deletes.
        self.expire("old")
        dry = self.json("cleanup", "--dry-run")
        self.assertEqual(dry, {"dry_run": True, "sessions_deleted": 1, "files_deleted": 2, "bytes_freed": 30})
        self.assertEqual(len(self.json("sessions", "list")), 2)
        self.assertIn(b"would delete 1 expired session(s), 2 file(s), freeing 30 bytes",
                      self.ok("cleanup", "--dry-run").stdout)
        real = self.json("cleanup")
        self.assertEqual(real, {"dry_run": False, "sessions_deleted": 1, "files_deleted": 2, "bytes_freed": 30})
        self.assertEqual([s["thread_id"] for s in self.json("sessions", "list")], ["young"])
        self.assertEqual(self.ok("files", "cat", "--session", "young", "/tmp/c").stdout, b"z" * 7)
        self.assertEqual(self.json("cleanup")["sessions_deleted"], 0)

    def test_cleanup_every_runs_rounds_until_signalled(self):
        self.ok("files", "put", "--session", "first", "/tmp/a", stdin=b"a" * 5)
        self.ok("files", "put", "--session", "second", "/tmp/b", stdin=b"b" * 9)
        self.ok("files", "put", "--session", "kept", "/tmp/c", stdin=b"c")
        self.expire("first")
        job = subprocess.Popen([BRIG, "cleanup", "--every", "0.1", "--json"], env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            first = json.loads(job.stdout.readline())  # the first round runs at once
            self.assertEqual(first, {"dry_run": False, "sessions_deleted": 1, "files_deleted": 1, "bytes_freed": 5})
            # What expires while the job runs goes in a later round, without asking.
            self.expire("second")
            deadline = time.monotonic() + 60
            while True:
                line = job.stdout.readline()
                if not line:
                    self.fail("the job stopped: %r" % job.stderr.read())
                if json.loads(line)["sessions_deleted"]:
                    self.assertEqual(json.loads(line)["bytes_freed"], 9)
                    break
                self.assertLess(time.monotonic(), deadline)
            job.terminate()  # SIGTERM: stops after the round in progress, exit 0
            self.assertEqual(job.wait(timeout=60), 0)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
            job.stdout.close()
            job.stderr.close()
        self.assertEqual([s["thread_id"] for s in self.json("sessions", "list")], ["kept"])
        # --rounds ends it by itself; --dry-run rounds delete nothing.
        self.expire("kept")
        p = self.ok("cleanup", "--every", "0.05", "--rounds", "3", "--dry-run")
        self.assertEqual(p.stdout.decode().splitlines(),
                         ["would delete 1 expired session(s), 1 file(s), freeing 1 bytes"] * 3)
        self.assertEqual(len(self.json("sessions", "list")), 1)
        self.usage_error("cleanup", "--rounds", "2")
        self.usage_error("cleanup", "--every", "0")
        self.usage_error("cleanup", "--every", "soon")

    def test_reset_keeps_files(self):
        self.ok("files", "put", "--session", "r", "/tmp/a", stdin=b"kept")
        self.assertEqual(self.json("sessions", "reset", "r"), {"thread_id": "r", "reset": True})
        self.assertEqual(self.ok("files", "cat", "--session", "r", "/tmp/a").stdout, b"kept")

    def test_files_meet_stateful_execution(self):
        self.ok("files", "put", "--session", "x", "data.csv", stdin=b"a,b\n")
        p = self.ok("exec", "--session", "x", "-c",
                    "x = 42\nprint(open('data.csv').read().strip())\nopen('/tmp/out.txt', 'w').write('from guest')")
        self.assertEqual(p.stdout, b"a,b\n")
        self.assertEqual(self.ok("files", "cat", "--session", "x", "/tmp/out.txt").stdout, b"from guest")
        self.ok("files", "edit", "--session", "x", "data.csv", "a,b", "c,d")
        self.assertEqual(self.ok("exec", "--session", "x", "-c", "print(open('data.csv').read(), x)").stdout,
                         b"c,d\n 42\n")
        self.ok("sessions", "reset", "x")
        p = self.brig("exec", "--session", "x", "-c", "print(open('/tmp/out.txt').read())\nprint(x)")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"from guest\n")
        self.assertIn(b"NameError", p.stderr)

    # ---- fork, export, import ----

    def test_sessions_fork(self):
        self.ok("exec", "--session", "src", "-c",
                "x = 1\ndef f(): return x * 10\nopen('/home/user/a.txt', 'w').write('from src')")
        p = self.ok("sessions", "fork", "src", "dst")
        self.assertIn(b"forked session 'src' into 'dst' (1 file; expires ", p.stdout)
        p = self.ok("exec", "--session", "dst", "-c", "x += 1\nprint(f(), open('a.txt').read())")
        self.assertEqual(p.stdout, b"20 from src\n")
        self.ok("files", "put", "--session", "dst", "a.txt", stdin=b"from dst")
        # The source is as it was.
        p = self.ok("exec", "--session", "src", "-c", "print(f(), open('a.txt').read())")
        self.assertEqual(p.stdout, b"10 from src\n")
        j = self.json("sessions", "fork", "src", "third", "--expires-days", "3", "--metadata", '{"branch": 3}')
        self.assertEqual(j["thread_id"], "third")
        self.assertEqual(j["metadata"], {"branch": 3})
        self.assertEqual(j["file_count"], 1)
        self.assertFalse(j["expired"])
        self.fails(1, "sessions", "fork", "nope", "x", says="'nope' does not exist")
        self.fails(1, "sessions", "fork", "src", "dst", says="'dst' already exists")
        self.fails(2, "sessions", "fork", "src", "y", "--metadata", "[1]", says="--metadata must be a JSON object")
        self.fails(2, "sessions", "fork", "src", "bad\nid", says="thread_id")
        self.expire("src")
        self.fails(1, "sessions", "fork", "src", "z", says="expired")
        self.fails(1, "sessions", "show", "z")  # nothing was made

    def test_sessions_create_with_quotas(self):
        j = self.json("sessions", "create", "q", "--max-files", "1", "--max-total-bytes", "100", "--max-file-bytes", "60")
        self.assertEqual(j["quotas"], {"max_files": 1, "max_total_bytes": 100, "max_file_bytes": 60})
        self.assertIn(b"quotas:         1 files, 100 B in all, 60 B per file (its own)",
                      self.ok("sessions", "show", "q").stdout)
        self.fails(1, "files", "put", "--session", "q", "/tmp/big", stdin=b"x" * 61, says="quota")
        self.ok("files", "put", "--session", "q", "/tmp/a", stdin=b"a" * 50)
        self.fails(1, "files", "put", "--session", "q", "/tmp/b", stdin=b"b", says="quota of 1 files")
        p = self.ok("exec", "--session", "q", "-c",
                    "try:\n    open('/tmp/b', 'w').write('b')\nexcept OSError as e:\n    import errno\n    print(e.errno == errno.ENOSPC)")
        self.assertEqual(p.stdout, b"True\n")
        self.assertEqual(self.ok("files", "cat", "--session", "q", "/tmp/a").stdout, b"a" * 50)
        # Only lower than the defaults (1000 files); then no session is made.
        self.fails(2, "sessions", "create", "r", "--max-files", "5000", says="max_files")
        self.fails(1, "sessions", "show", "r")
        # A fork keeps the quotas.
        self.ok("sessions", "fork", "q", "q2")
        self.assertEqual(self.json("sessions", "show", "q2")["quotas"]["max_files"], 1)

    def test_sessions_export_import_round_trip(self):
        j = self.json("exec", "--session", "src", "-c",
                      "import os\nx = 41\nclass P:\n    def v(self): return x + 1\np = P()\n"
                      "os.makedirs('/home/user/empty')\nopen('/tmp/data.bin', 'wb').write(bytes(range(256)))")
        # The state was saved as pages (not only portably: a sandbox without an image says why).
        self.assertEqual(j["session"]["snapshot"], "pages", j["session"])
        self.ok("files", "put", "--session", "src", "/data/outside.csv", stdin=b"a,b\n")
        self.ok("sessions", "create", "meta", "--metadata", '{"owner": "me"}')
        snap = os.path.join(self.home, "src.brigsnap")
        p = self.ok("sessions", "export", "src", snap)
        self.assertIn(b"exported session 'src' to " + snap.encode(), p.stdout)
        self.assertEqual(os.stat(snap).st_mode & 0o777, 0o600)  # a snapshot holds the whole session
        with open(snap, "rb") as f:
            self.assertEqual(f.read(8), b"BRIGSNAP")
        j = self.json("sessions", "import", "copy", snap)
        self.assertEqual(j["restored_from"], "pages", j)  # pages_dropped says why not
        self.assertIsNone(j["pages_dropped"])
        self.assertEqual(j["not_restored"], {})
        self.assertEqual(j["session"]["thread_id"], "copy")
        self.assertEqual(j["session"]["file_count"], 2)
        self.assertEqual(j["source"]["thread_id"], "src")
        p = self.ok("exec", "--session", "copy", "-c",
                    "print(x, p.v(), open('/tmp/data.bin','rb').read() == bytes(range(256)), os.listdir('/home/user'))")
        self.assertEqual(p.stdout, b"41 42 True ['empty']\n")
        self.assertEqual(self.ok("files", "cat", "--session", "copy", "/data/outside.csv").stdout, b"a,b\n")
        # Through a pipe: export to stdout, import from stdin, into another store.
        other = tempfile.mkdtemp(prefix="brig-e2e-other-")
        self.addCleanup(shutil.rmtree, other, True)
        exported = self.ok("sessions", "export", "src", "-").stdout
        self.assertEqual(exported[:8], b"BRIGSNAP")
        p = self.ok("sessions", "import", "moved", "-", "--db", "sqlite:" + other + "/b.db", stdin=exported)
        self.assertIn(b"imported session 'moved' from a snapshot of 'src'", p.stdout)
        p = self.ok("exec", "--session", "moved", "--db", "sqlite:" + other + "/b.db", "-c", "print(p.v())")
        self.assertEqual(p.stdout, b"42\n")
        # Metadata travels; --expires-days and --metadata replace what the snapshot says.
        meta = self.ok("sessions", "export", "meta", "-").stdout
        self.assertEqual(self.json("sessions", "import", "m1", "-", stdin=meta)["session"]["metadata"], {"owner": "me"})
        j = self.json("sessions", "import", "m2", "-", "--metadata", '{"moved": true}', "--expires-days", "2", stdin=meta)
        self.assertEqual(j["session"]["metadata"], {"moved": True})
        self.assertEqual(j["restored_from"], "new")

    def test_import_refusals_leave_no_session(self):
        self.ok("exec", "--session", "src", "-c", "x = 1")
        self.ok("exec", "--session", "taken", "-c", "x = 'mine'")
        snap = self.ok("sessions", "export", "src", "-").stdout
        self.fails(1, "sessions", "import", "taken", "-", stdin=snap, says="'taken' already exists")
        self.assertEqual(self.ok("exec", "--session", "taken", "-c", "print(x)").stdout, b"mine\n")
        self.fails(2, "sessions", "import", "new", "-", stdin=snap[:-1], says="checksum does not match")
        self.fails(2, "sessions", "import", "new", "-", stdin=snap[: len(snap) // 2], says="damaged snapshot")
        self.fails(2, "sessions", "import", "new", "-", stdin=b"PK\x03\x04", says="not a brig session snapshot")
        self.fails(2, "sessions", "import", "new", os.path.join(self.home, "missing"), says="cannot open")
        self.fails(1, "sessions", "show", "new")
        # Export errors: nothing written.
        out = os.path.join(self.home, "never.brigsnap")
        self.fails(1, "sessions", "export", "nope", out, says="'nope' does not exist")
        self.assertFalse(os.path.exists(out))
        self.fails(2, "sessions", "export", "src", "-", "--json", says="--json cannot be used")
        self.expire("src")
        self.fails(1, "sessions", "export", "src", out, says="expired")

    def test_snapshot_from_another_guest_build_uses_its_portable_part(self):
        self.ok("exec", "--session", "src", "-c", "x = 41\ndef f(): return x + 1\ng = (i for i in range(3))")
        snap = self.ok("sessions", "export", "src", "-").stdout
        foreign = _with_other_build(snap, "cpython-3.11.2-from-elsewhere", keep_portable=True)
        j = self.json("sessions", "import", "moved", "-", stdin=foreign)
        self.assertEqual(j["restored_from"], "portable")
        self.assertIn("cpython-3.11.2-from-elsewhere", j["pages_dropped"])
        self.assertIn("g", j["not_restored"])  # a generator: only a page snapshot holds it
        p = self.brig("exec", "--session", "moved", "--json", "-c", "f()")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["result"], "42")
        self.assertEqual(out["session"]["restored_from"], "portable")
        self.assertIn("g", out["session"]["not_restored"])
        # Without a portable part there is nothing this build can restore: refused, by name.
        pages_only = _with_other_build(snap, "cpython-3.11.2-from-elsewhere", keep_portable=False)
        err = self.fails(1, "sessions", "import", "moved-2", "-", stdin=pages_only, says="no portable part")
        self.assertIn("cpython-3.11.2-from-elsewhere", err)
        self.fails(1, "sessions", "show", "moved-2")

    def test_db_flag_overrides_the_environment(self):
        self.env["BRIG_DB"] = "nosuchscheme:x"
        self.fails(2, "sessions", "list", says="unknown store URL scheme")
        other = tempfile.mkdtemp(prefix="brig-e2e-db-")
        self.addCleanup(shutil.rmtree, other, True)
        self.ok("files", "put", "--session", "s", "/tmp/a", "--db", "sqlite:" + other + "/x.db", stdin=b"1")
        self.assertEqual(self.ok("sessions", "list", "--db", "sqlite:" + other + "/x.db").stdout.count(b"\n"), 2)


def _with_other_build(snapshot, build, keep_portable):
    """`snapshot` (brig sessions export bytes) as another guest build would have written it:
    its page snapshot's header and its own name `build`; without its portable part unless
    `keep_portable`. The layout is session/snapshot_format.h's."""
    assert snapshot[:8] == b"BRIGSNAP"
    version, hlen = struct.unpack_from("<II", snapshot, 8)
    header = json.loads(snapshot[16:16 + hlen])
    rest = snapshot[16 + hlen:-32]
    pages = rest[:header["pages_bytes"]]
    portable = rest[header["pages_bytes"]:header["pages_bytes"] + header["portable_bytes"]]
    files = rest[header["pages_bytes"] + header["portable_bytes"]:]
    assert pages[:8] == b"BRIGPG02"
    (plen,) = struct.unpack_from("<I", pages, 8)
    page_header = json.loads(pages[12:12 + plen])
    page_header["guest_build_id"] = build
    text = json.dumps(page_header).encode()
    pages = pages[:8] + struct.pack("<I", len(text)) + text + pages[12 + plen:]
    if not keep_portable:
        portable = b""
        header["not_portable"] = {}
    header.update(guest_build_id=build, pages_bytes=len(pages), portable_bytes=len(portable))
    text = json.dumps(header).encode()
    body = b"BRIGSNAP" + struct.pack("<II", version, len(text)) + text + pages + portable + files
    return body + hashlib.sha256(body).digest()


class SqliteCliTest(CliCases, unittest.TestCase):
    def expire(self, thread_id):
        db = sqlite3.connect(os.path.join(self.home, "brig.db"))
        with db:
            db.execute("UPDATE brig_sessions SET expires_at = 0 WHERE thread_id = ?", (thread_id,))
        db.close()


class PostgresCliTest(CliCases, unittest.TestCase):
    def setUp(self):
        if _pg is None:
            self.skipTest("BRIG_SKIP_POSTGRES=1")
        super().setUp()
        self.env["BRIG_DB"] = _pg.database()

    def expire(self, thread_id):
        db = self.env["BRIG_DB"].split("///", 1)[1].split("?", 1)[0]
        subprocess.run([_pg.bin + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", _pg.dir, "-p", "5432",
                        "-U", "postgres", "-d", db, "-c",
                        "UPDATE brig_sessions SET expires_at = 0 WHERE thread_id = '%s'" % thread_id],
                       check=True, capture_output=True, timeout=60)


if __name__ == "__main__":
    unittest.main()
