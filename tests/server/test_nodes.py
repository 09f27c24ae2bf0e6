"""Several `brig serve` nodes on one PostgreSQL (issue #10, item 6): what one node executes the
other sees; concurrent executions of one session on both nodes are serialised and none is
lost; a node killed in the middle of an execution leaves the session usable on the other.

Real processes, a real PostgreSQL (tests/e2e/pg_server.py), HTTP over loopback.
"""
import concurrent.futures
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import pg_server  # noqa: E402

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))


class Node:
    """One `brig serve` on 127.0.0.1 with a free port."""

    def __init__(self, db_url, home, *flags):
        self.home = home
        # "a+": the child's stderr shares this file's offset; O_APPEND keeps its writes at the
        # end while text() seeks to 0 to read, or a line would overwrite the first one.
        self.log = open(os.path.join(home, "serve-%d.log" % time.monotonic_ns()), "a+")
        env = dict(os.environ, BRIG_HOME=home, BRIG_LINK_KEY="k" * 40)
        self.proc = subprocess.Popen([BRIG, "serve", "--listen", "127.0.0.1:0", "--db", db_url,
                                      "--max-per-session", "64", *flags],
                                     env=env, stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline and self.port is None:
            self.log.seek(0)
            for line in self.log:
                if "listening on http://" in line:
                    self.port = int(line.split("http://")[1].split()[0].rsplit(":", 1)[1])
            if self.proc.poll() is not None:
                raise AssertionError("brig serve exited: " + self.text())
            time.sleep(0.05)
        if self.port is None:
            raise AssertionError("brig serve did not start: " + self.text())

    def text(self):
        self.log.seek(0)
        return self.log.read()

    def request(self, method, path, body=None, timeout=120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            res = conn.getresponse()
            raw = res.read()
            return res.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def execute(self, thread_id, code, **extra):
        return self.request("POST", "/v1/sessions/%s/execute" % thread_id, dict(code=code, **extra))

    def stop(self):
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    return self.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    raise
            return self.proc.returncode
        finally:
            self.log.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait()


_pg = None


def setUpModule():
    global _pg
    _pg = pg_server.shared()


class TwoNodesTest(unittest.TestCase):
    def setUp(self):
        if _pg is None:
            self.skipTest("BRIG_SKIP_POSTGRES=1: no PostgreSQL for the two-node test")
        self.db = _pg.database()
        self.tmp = tempfile.TemporaryDirectory(prefix="brig-nodes-")
        # Separate homes: the nodes share nothing but the database (as on two machines).
        os.makedirs(self.tmp.name + "/a")
        os.makedirs(self.tmp.name + "/b")
        self.a = Node(self.db, self.tmp.name + "/a")
        self.b = Node(self.db, self.tmp.name + "/b")

    def tearDown(self):
        for node in (self.a, self.b):
            text = node.text()
            rc = node.stop()
            self.assertIn(rc, (0, -9), text[-2000:])
        self.tmp.cleanup()

    def test_an_execution_on_one_node_is_seen_by_the_next_on_the_other(self):
        status, r = self.a.execute("shared", "x = 1\ndef f(): return x * 10")
        self.assertEqual(status, 200, r)
        status, r = self.b.execute("shared", "x += 1\nf()")
        self.assertEqual(status, 200, r)
        self.assertEqual(r["result"], "20")
        # A holds the session live at version 1; it must notice B's version 2.
        status, r = self.a.execute("shared", "x")
        self.assertEqual((status, r["result"]), (200, "2"), r)
        self.assertEqual(r["session"]["version"], 3)
        # Files too.
        status, _ = self.b.request("POST", "/v1/sessions/shared/files:write", {"path": "n.txt", "content": "from b"})
        self.assertEqual(status, 200)
        status, r = self.a.execute("shared", "open('/home/user/n.txt').read()")
        self.assertEqual(r["result"], "'from b'", r)

    def test_concurrent_executions_of_one_session_on_both_nodes_are_serialised(self):
        self.assertEqual(self.a.execute("counter", "n = 0; log = []")[0], 200)
        rounds = 24

        def bump(i):
            node = self.a if i % 2 == 0 else self.b
            # Read, yield the CPU, write: two overlapping executions would lose an increment.
            return node.execute("counter", "import time\nv = n\ntime.sleep(0.01)\nn = v + 1\nlog.append(%d)" % i)

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(bump, range(rounds)))
        for status, r in results:
            self.assertEqual(status, 200, r)
            self.assertTrue(r["ok"], r)
        status, r = self.b.execute("counter", "(n, sorted(log) == list(range(%d)))" % rounds)
        self.assertEqual(r["result"], "(%d, True)" % rounds, r)
        versions = sorted(r2["session"]["version"] for _, r2 in results)
        self.assertEqual(versions, list(range(2, rounds + 2)), "every execution saved once, in turn")

    def test_a_page_snapshot_saved_by_one_node_restores_on_the_other(self):
        # The nodes' images share the seed stored in the database: equal images (same build),
        # so B restores A's page snapshot, not the portable one (which A takes after the answer).
        status, r = self.a.execute("pages", "x = 41\nclass K: pass\nk = K()")
        self.assertEqual(status, 200, r)
        status, r = self.b.execute("pages", "x + 1, type(k).__name__")
        self.assertEqual(status, 200, r)
        self.assertEqual(r["result"], "(42, 'K')", r)
        self.assertEqual(r["session"]["restored_from"], "pages", r)

    def test_nodes_with_different_seeds_fall_back_to_the_portable_snapshot(self):
        status, r = self.a.execute("seeds", "x = 41")
        self.assertEqual(status, 200, r)
        # SIGTERM writes the portable snapshot still pending (taken after the answer).
        self.a.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.a.proc.wait(timeout=60), 0, self.a.text()[-2000:])
        # A node whose image has another seed (here: the database's seed changed under it).
        db = self.db.split("///")[1].split("?")[0]
        _pg._run([_pg.bin + "/psql", "-h", _pg.dir, "-p", "5432", "-U", "postgres", "-q",
                  "-c", "UPDATE brig_image_seed SET seed = seed + 1", db])
        os.makedirs(self.tmp.name + "/c")
        c = Node(self.db, self.tmp.name + "/c")
        try:
            status, r = c.execute("seeds", "x + 1")
            self.assertEqual(status, 200, r)
            self.assertEqual(r["result"], "42", r)
            self.assertEqual(r["session"]["restored_from"], "portable", r)
            self.assertFalse(any(k.startswith("<versions") for k in r["session"]["not_restored"]), r)
        finally:
            self.assertEqual(c.stop(), 0)

    def test_a_node_killed_mid_execution_leaves_the_session_usable_on_the_other(self):
        self.assertEqual(self.a.execute("k", "state = 'before'")[0], 200)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(self.a.execute, "k", "import time\nstate = 'during'\ntime.sleep(60)")
            time.sleep(1.5)  # A holds the session's lock now
            self.a.kill()
            with self.assertRaises(Exception):
                running.result(timeout=30)
        start = time.monotonic()
        status, r = self.b.execute("k", "state")
        self.assertEqual(status, 200, r)
        self.assertEqual(r["result"], "'before'", "the killed execution saved nothing")
        # The lock died with A's connections: B did not wait out a lock timeout (60 s).
        self.assertLess(time.monotonic() - start, 30)
        status, r = self.b.execute("k", "state = 'after'; state")
        self.assertEqual(r["result"], "'after'")


if __name__ == "__main__":
    unittest.main()
