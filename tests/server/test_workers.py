"""`brig serve --workers N` (issue #10, item 4): executions run in worker processes; a worker
that dies (SIGKILL, SIGSEGV) or hangs (SIGSTOP: no heartbeat for --worker-timeout) costs the
request it was serving a 503 and nothing else, the server keeps answering, a new worker takes
over, and the session is as after its last successful execution. Real processes over loopback, on SQLite."""
import concurrent.futures
import os
import shutil
import signal
import subprocess
import threading
import time
import unittest

import harness


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return sorted(out)


class WorkersTest(unittest.TestCase):
    def setUp(self):
        self.home = harness.make_home("workers")
        self.addCleanup(shutil.rmtree, self.home, True)
        flags = ["--workers", "2", "--threads", "2"]
        if self._testMethodName == "test_a_hung_worker_is_killed_and_replaced":
            # Short, to find the stopped worker soon; the others keep the default (10 s), which
            # a loaded machine cannot mistake for a hang.
            flags += ["--worker-timeout", "3"]
        self.server = harness.BrigServer("sqlite:" + os.path.join(self.home, "brig.db"), self.home, flags=flags)

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0, self.server.stderr_text()[-2000:])

    def workers(self, replaced=()):
        """The 2 worker pids, once none of `replaced` is among them: a killed worker stays the
        server's child (a zombie) until the supervisor reaps it, so wait for that (bounded)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pids = children(self.server.proc.pid)
            if len(pids) == 2 and not set(pids) & set(replaced):
                return pids
            time.sleep(0.05)
        self.fail("brig serve --workers 2 has %r worker processes (replacing %r)"
                  % (children(self.server.proc.pid), list(replaced)))

    def restarts(self):
        for line in self.server.request("GET", "/metrics").body.decode().splitlines():
            if line.startswith("brig_worker_restarts_total "):
                return float(line.split()[1])
        self.fail("no brig_worker_restarts_total")

    def crash_during_execution(self, sig):
        s = self.server
        r = s.execute("w", "x = 1\nopen('/home/user/f.txt', 'w').write('one')")
        self.assertEqual(r.status, 200, r)
        before = self.workers()
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(s.execute, "w", "import time\nx = 2\ntime.sleep(30)")
            time.sleep(1.0)
            for pid in before:
                os.kill(pid, sig)
            # The server answers the whole time.
            self.assertEqual(s.request("GET", "/health").status, 200)
            r = running.result(timeout=60)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.error_code(), "unavailable", r)
        self.assertIn("worker", r.json()["error"]["message"])
        # New workers; the session as after its last successful execution.
        after = self.workers(replaced=before)
        self.assertFalse(set(before) & set(after), (before, after))
        r = s.execute("w", "x, open('/home/user/f.txt').read()")
        self.assertEqual((r.status, r.json()["result"]), (200, "(1, 'one')"), r)
        self.assertGreaterEqual(self.restarts(), 1)

    def test_a_worker_killed_mid_execution_costs_that_request_only(self):
        self.crash_during_execution(signal.SIGKILL)

    def test_a_worker_that_segfaults_costs_that_request_only(self):
        self.crash_during_execution(signal.SIGSEGV)

    def test_a_hung_worker_is_killed_and_replaced(self):
        # SIGSTOP: alive (its socket stays open) but silent. The supervisor hears no heartbeat
        # for --worker-timeout, kills it, answers its request 503 and starts a new worker.
        self.crash_during_execution(signal.SIGSTOP)
        self.server.wait_for_stderr("was killed as hung")

    def test_executions_and_files_through_workers(self):
        s = self.server
        self.assertEqual(s.execute("a", "y = 40").status, 200)
        r = s.execute("a", "y + 2")
        self.assertEqual(r.json()["result"], "42", r)
        r = s.request("GET", "/v1/sessions/a/execute", None)
        self.assertEqual(r.status, 405)
        r = s.request("POST", "/v1/sessions/a/execute", {"code": "print('hi')"}, headers={"Accept": "text/event-stream"})
        self.assertEqual(r.status, 200, r)
        body = r.body.decode()
        self.assertIn("event: stdout", body)
        self.assertLess(body.index("event: stdout"), body.index("event: result"))


if __name__ == "__main__":
    unittest.main()


class ServeFlagTest(unittest.TestCase):
    """A test of `brig serve` flags: a BRIG_HOME of its own, one-worker servers on SQLite
    databases in it, and flag values refused before anything starts."""
    home_name = "serve-flags"

    def setUp(self):
        self.home = harness.make_home(self.home_name)
        self.addCleanup(shutil.rmtree, self.home, True)

    def serve(self, db, flags):
        return harness.BrigServer("sqlite:" + os.path.join(self.home, db), self.home,
                                  flags=["--workers", "1"] + flags)

    def assert_refused(self, flag, bad):
        r = subprocess.run([harness.BRIG, "serve", "--listen", "127.0.0.1:0", flag, bad],
                           env=dict(os.environ, BRIG_HOME=self.home), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 2, (flag, bad, r.stderr))
        self.assertIn(flag.encode(), r.stderr)


class LiveBoundsTest(ServeFlagTest):
    """--max-live-mb: a worker keeps live sessions up to that much memory (as each one's last
    save counted it), the least recently used going first; the default (a quarter of the
    machine's memory) keeps both sessions here. A value that is no size is a usage error."""
    home_name = "live-bounds"

    def live_after_big_then_small(self, flags, db):
        server = self.serve(db, flags)
        try:
            self.assertEqual(server.execute("big", "blob = b'x' * (20 << 20)").status, 200)
            self.assertEqual(server.execute("small", "x = 1").status, 200)
            for line in server.request("GET", "/metrics").body.decode().splitlines():
                if line.startswith("brig_live_sessions "):
                    live = float(line.split()[1])
            r = server.execute("big", "len(blob)")
            self.assertEqual(r.json()["result"], str(20 << 20), r)  # pushed out or not, it is all there
            return live
        finally:
            self.assertEqual(server.stop(), 0, server.stderr_text()[-2000:])

    def test_the_memory_bound_pushes_out_the_least_recently_used(self):
        self.assertEqual(self.live_after_big_then_small(["--max-live-mb", "8"], "bounded.db"), 1)
        self.assertEqual(self.live_after_big_then_small([], "default.db"), 2)

    def test_a_bad_value_is_refused(self):
        for flag, bad in (("--max-live-mb", "-1"), ("--max-live-mb", "0"), ("--max-live-mb", "lots"),
                          ("--max-live-mb", str(1 << 40)), ("--max-live", "-1"), ("--compact-after", "0"),
                          ("--compact-after", "soon")):
            self.assert_refused(flag, bad)


def thread_nice_values(pid):
    """{thread id: nice value} of the process's threads (/proc stat field 19)."""
    out = {}
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, task)) as f:
            out[int(task)] = int(f.read().rsplit(")", 1)[1].split()[16])
    return out


class ExecutionNiceTest(ServeFlagTest):
    """--execution-nice: the worker threads that run guest code run at that nice value (default
    6); the thread reading the worker's socket (which also runs quick non-durable executions)
    and the supervisor stay at 0. Out of range is a usage error."""
    home_name = "execution-nice"

    def nice_values(self, flags, db):
        server = self.serve(db, flags)
        try:
            self.assertEqual(server.execute("t", "x = 1").status, 200)
            (worker,) = children(server.proc.pid)
            return thread_nice_values(worker), thread_nice_values(server.proc.pid), worker
        finally:
            self.assertEqual(server.stop(), 0, server.stderr_text()[-2000:])

    def test_execution_threads_run_at_the_nice_value(self):
        for flags, want in (([], 6), (["--execution-nice", "11"], 11), (["--execution-nice", "0"], 0)):
            in_worker, in_supervisor, worker = self.nice_values(flags, "nice%d.db" % want)
            self.assertEqual(sorted(set(in_worker.values())), sorted({0, want}), (flags, in_worker))
            self.assertEqual(in_worker[worker], 0, in_worker)  # the thread that reads the socket
            # --threads 3 (the default) on SQLite: 9 execution threads (3 per place), each at the
            # value (and the threads they start in passing, which inherit it: the sessions'
            # background thread).
            self.assertGreaterEqual(sum(1 for v in in_worker.values() if v == want), 9)
            self.assertEqual(set(in_supervisor.values()), {0}, in_supervisor)

    def test_out_of_range_is_refused(self):
        for bad in ("-1", "20", "-5", "low"):
            self.assert_refused("--execution-nice", bad)


class IoThreadsTest(ServeFlagTest):
    """--io-threads: the HTTP side's threads (default one per two cores); out of range is a
    usage error before anything starts."""
    home_name = "io-threads"

    def test_out_of_range_is_refused(self):
        for bad in ("0", "65", "two"):
            self.assert_refused("--io-threads", bad)

    def test_one_and_several_serve_concurrent_executions(self):
        for n in ("1", "3"):
            server = self.serve("io%s.db" % n, ["--io-threads", n])
            try:
                results = []

                def run(i):
                    r = server.execute("io-%d" % i, "x = %d\nx * 2" % i)
                    results.append((i, r.status, r.json().get("result")))

                threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                self.assertEqual(sorted(results), [(i, 200, str(i * 2)) for i in range(8)], n)
            finally:
                self.assertEqual(server.stop(), 0)
