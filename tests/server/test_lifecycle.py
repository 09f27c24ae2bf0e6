"""`brig serve`'s lifecycle (issue #10): SIGTERM lets a running execution finish, answers it,
saves it and exits 0; a new server on the same store sees the state. On SQLite and PostgreSQL.
"""
import concurrent.futures
import json
import shutil
import signal
import time
import unittest

import harness
from harness import SqliteStore, PostgresStore


class LifecycleCases:
    def setUp(self):
        self.home = harness.make_home(type(self).__name__)
        self.addCleanup(shutil.rmtree, self.home, True)
        self.store = self.make_store(self.home)

    def start(self, *flags):
        server = harness.BrigServer(self.store, self.home, flags=flags)
        self.addCleanup(server.kill)
        return server

    def wait_in_flight(self, server):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in server.request("GET", "/metrics").body.decode().splitlines():
                if line.startswith("brig_executions_in_flight ") and float(line.split()[1]) >= 1:
                    return
            time.sleep(0.02)
        self.fail("the execution never started")

    def test_sigterm_lets_the_running_execution_finish_and_save(self):
        server = self.start()
        r = server.execute("t", "x = 1\nopen('/home/user/f.txt', 'w').write('one')")
        self.assertEqual(r.status, 200, r)
        version = r.json()["session"]["version"]
        # Its answer is large (a MiB of stdout, six as JSON) and read late: the server must
        # wait for it to reach the client before it closes the connection.
        conn = server.connection()
        conn.request("POST", "/v1/sessions/t/execute",
                     json.dumps({"code": "import sys, time\ntime.sleep(2)\nx = 2\n"
                                         "open('/home/user/f.txt', 'w').write('two')\n"
                                         "sys.stdout.write('\\x01' * 1000000)\n'finished'"}),
                     {"Content-Type": "application/json"})
        self.wait_in_flight(server)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(3)
        res = conn.getresponse()
        body = res.read()
        conn.close()
        self.assertEqual(res.status, 200, body[:300])
        j = json.loads(body)
        self.assertEqual((j["ok"], j["result"]), (True, "'finished'"), j["error"])
        self.assertEqual(j["stdout"], "\x01" * 1000000)
        self.assertTrue(j["session"]["saved"])
        self.assertEqual(j["session"]["version"], version + 1)
        self.assertEqual(server.stop(), 0, server.stderr_text()[-2000:])
        text = server.stderr_text()
        self.assertIn("SIGTERM", text)
        self.assertIn("brig serve: stopped", text)
        # A new server on the same store continues from the saved state.
        again = self.start()
        r = again.execute("t", "x, open('/home/user/f.txt').read()")
        self.assertEqual(r.json()["result"], "(2, 'two')", r)
        self.assertEqual(r.json()["session"]["version"], version + 2)
        self.assertEqual(again.stop(), 0)

    def test_sigterm_saves_executions_answered_before_their_save(self):
        server = self.start()
        self.assertEqual(server.execute("d", "x = 1").status, 200)
        for i in range(2, 5):
            r = server.execute("d", "x = %d" % i, durable=False)
            self.assertEqual(r.status, 200, r)
            self.assertFalse(r.json()["session"]["saved"])
        self.assertEqual(server.stop(), 0, server.stderr_text()[-2000:])
        again = self.start()
        self.assertEqual(again.execute("d", "x").json()["result"], "4")
        self.assertEqual(again.stop(), 0)

    def test_sigterm_does_not_wait_past_the_grace(self):
        # In-process (--workers 0) a running execution cannot be stopped; the server answers it
        # 503 once --grace has passed and exits all the same, rather than wait 300 s for it.
        for workers in ("0", "1"):
            server = self.start("--workers", workers, "--grace", "1", "--timeout", "600")
            r = server.execute("g" + workers, "x = 1")
            self.assertEqual(r.status, 200, r)
            conn = server.connection(timeout=300)
            conn.request("POST", "/v1/sessions/g%s/execute" % workers,
                         json.dumps({"code": "import time\nx = 2\ntime.sleep(300)"}), {"Content-Type": "application/json"})
            self.wait_in_flight(server)
            server.proc.send_signal(signal.SIGTERM)
            # Bounded generously: without the bound the server takes the 300 s of the sleep.
            self.assertEqual(server.proc.wait(timeout=150), 0, server.stderr_text()[-2000:])
            res = conn.getresponse()
            body = json.loads(res.read())
            conn.close()
            self.assertEqual((res.status, body["error"]["code"]), (503, "unavailable"), body)
            self.assertIn("brig serve: stopped", server.stderr_text())
            # The session is as after its last saved execution.
            again = self.start("--workers", workers)
            r = again.execute("g" + workers, "x")
            self.assertEqual((r.status, r.json()["result"]), (200, "1"), r)
            self.assertEqual(again.stop(), 0)

    def test_sigterm_on_an_idle_server_exits_0_and_stops_listening(self):
        server = self.start()
        self.assertTrue(server.alive())
        port = server.port
        self.assertEqual(server.stop(), 0)
        with self.assertRaises(OSError):
            harness.socket.create_connection(("127.0.0.1", port), timeout=5).close()


class SqliteLifecycleTest(LifecycleCases, SqliteStore, unittest.TestCase):
    pass


class PostgresLifecycleTest(LifecycleCases, PostgresStore, unittest.TestCase):
    def setUp(self):
        if harness.postgres() is None:
            self.skipTest("BRIG_SKIP_POSTGRES=1")
        super().setUp()


class PostgresDownTest(unittest.TestCase):
    """/health checks the store: 503 while PostgreSQL is down, 200 again once it is back."""

    def test_health_follows_the_store(self):
        pg = harness.postgres()
        if pg is None:
            self.skipTest("BRIG_SKIP_POSTGRES=1")
        home = harness.make_home("pgdown")
        self.addCleanup(shutil.rmtree, home, True)
        server = harness.BrigServer(pg.database(), home)
        self.addCleanup(server.kill)
        self.assertEqual(server.request("GET", "/health").status, 200)
        pg.pause()
        try:
            r = server.request("GET", "/health")
            self.assertEqual(r.status, 503, r)
            self.assertEqual((r.json()["status"], r.json()["store"]), ("unhealthy", "postgresql"))
            self.assertTrue(r.json()["error"])
            r = server.execute("t", "1")
            self.assertEqual((r.status, r.error_code()), (503, "unavailable"), r)
        finally:
            pg.resume()
        deadline = time.monotonic() + 60
        while server.request("GET", "/health").status != 200:
            self.assertLess(time.monotonic(), deadline, "the server did not reconnect to PostgreSQL")
            time.sleep(0.2)
        # A pooled connection that died while idle is replaced before a call gets it
        # (src/store/pg_pool.h): the session works as before, at the first try.
        r = server.execute("t", "6 * 7")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["result"], "42")
        self.assertEqual(server.stop(), 0)

    def test_a_restart_between_two_calls_costs_neither(self):
        pg = harness.postgres()
        if pg is None:
            self.skipTest("BRIG_SKIP_POSTGRES=1")
        home = harness.make_home("pgrestart")
        self.addCleanup(shutil.rmtree, home, True)
        server = harness.BrigServer(pg.database(), home)
        self.addCleanup(server.kill)
        # Several pooled connections, in the server and in its workers, all idle at the restart.
        names = ["r%d" % i for i in range(4)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for r in pool.map(lambda t: server.execute(t, "x = %r" % t), names):
                self.assertEqual(r.status, 200, r)
        for t in names:
            self.assertEqual(server.request("GET", "/v1/sessions/" + t).status, 200)
        pg.pause()
        pg.resume()
        # No call in between: every first call after the restart succeeds.
        r = server.request("GET", "/health")
        self.assertEqual(r.status, 200, r)
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for t, r in zip(names, pool.map(lambda t: server.execute(t, "x"), names)):
                self.assertEqual((r.status, r.json().get("result")), (200, repr(t)), r)
        for t in names:
            r = server.request("GET", "/v1/sessions/" + t)
            self.assertEqual(r.status, 200, r)
            r = server.request("GET", "/v1/sessions/%s/files" % t)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(server.stop(), 0, server.stderr_text()[-2000:])


if __name__ == "__main__":
    unittest.main()
