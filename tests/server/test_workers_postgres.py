"""`brig serve --workers 2` on a real PostgreSQL (tests/e2e/pg_server.py; test_workers.py
has the same on SQLite): only the worker running the loop is killed (SIGKILL, SIGSEGV), its
execution costs a 503 and nothing else, the other worker keeps its sessions live, exactly one
restart is counted, and the session is restored from its pages as after its last saved
execution. SIGTERM stops the workers (waited for: no zombies) and exits 0.
"""
import concurrent.futures
import http.client
import os
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import pg_server  # noqa: E402
from test_nodes import Node  # noqa: E402


def children(pid):
    """The child processes of `pid` (its workers)."""
    kids = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            kids += [int(k) for k in f.read().split()]
    return kids


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def metric(node, name):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(name + " not in /metrics")


class WorkersCases:
    def db_url(self):
        raise NotImplementedError

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="brig-workers-")
        self.node = Node(self.db_url(), self.tmp.name, "--workers", "2", "--threads", "2")

    def tearDown(self):
        text = self.node.text()
        kids = children(self.node.proc.pid) if self.node.proc.poll() is None else []
        rc = self.node.stop()
        self.assertEqual(rc, 0, text[-3000:])
        for k in kids:  # waited for by the server: gone, not even zombies
            self.assertFalse(os.path.exists("/proc/%d" % k), k)
        self.tmp.cleanup()

    def test_a_session_stays_on_its_worker(self):
        status, r = self.node.execute("w1", "x = 41")
        self.assertEqual(status, 200, r)
        self.assertEqual(len(children(self.node.proc.pid)), 2)
        status, r = self.node.execute("w1", "x + 1")
        self.assertEqual((status, r["result"], r["session"]["restored_from"]), (200, "42", "live"), r)

    def kill_busy_worker(self, sig):
        self.assertEqual(self.node.execute("victim", "state = 'saved'")[0], 200)
        workers = children(self.node.proc.pid)
        before = {w: cpu_ticks(w) for w in workers}
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            running = pool.submit(self.node.execute, "victim", "state = 'lost'\nwhile True: pass", timeout_s=120)
            # The busy worker is the one whose CPU time grows.
            busy = None
            deadline = time.monotonic() + 60
            while busy is None and time.monotonic() < deadline:
                time.sleep(0.3)
                grown = [w for w in workers if cpu_ticks(w) - before[w] >= 20]
                busy = grown[0] if len(grown) == 1 else None
            self.assertIsNotNone(busy, "no worker ran the loop")
            os.kill(busy, sig)
            status, r = running.result(timeout=60)
        self.assertEqual(status, 503, r)
        self.assertEqual(r["error"]["code"], "unavailable")
        self.assertIn("worker running this execution died", r["error"]["message"])
        self.assertFalse(os.path.exists("/proc/%d" % busy))
        # The server answered all the while, and goes on: a replacement runs the session.
        status, r = self.node.execute("victim", "state")
        self.assertEqual((status, r["result"]), (200, "'saved'"), r)
        self.assertEqual(r["session"]["restored_from"], "pages")
        self.assertEqual(metric(self.node, "brig_worker_restarts_total"), 1)
        self.assertEqual(len(children(self.node.proc.pid)), 2)
        self.assertNotIn(busy, children(self.node.proc.pid))

    def test_a_worker_killed_mid_execution(self):
        self.kill_busy_worker(signal.SIGKILL)

    def test_a_worker_that_segfaults_mid_execution(self):
        self.kill_busy_worker(signal.SIGSEGV)


_pg = None


def setUpModule():
    global _pg
    _pg = pg_server.shared()


class PostgresWorkersTest(WorkersCases, unittest.TestCase):
    def db_url(self):
        return self.db

    def setUp(self):
        if _pg is None:
            self.skipTest("BRIG_SKIP_POSTGRES=1")
        self.db = _pg.database()
        WorkersCases.setUp(self)


if __name__ == "__main__":
    unittest.main()
