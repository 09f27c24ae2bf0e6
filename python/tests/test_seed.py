"""The seed's examples (mayflower-sandbox's documentation), verbatim but for the import and
the db_pool value, in both modes: a store opened in this process, and brig serve over HTTP.

Each test class runs the same examples: SeedLocalTest with db_pool = "sqlite:..." (the
engine in this process), SeedRemoteTest with db_pool = "http://127.0.0.1:PORT".
"""

import asyncio
import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import urllib.request

from support import HERE, ServerCase, TempHome, needs_native
import unittest

import brig
from brig.cleanup import CleanupJob
from brig.manager import SandboxManager
from brig.server import FileServer
from brig.session import StatefulExecutor

# What the seed says the three-step example prints (its "# Output:" comments), print by print.
SEED_PRINTS = "Sum: 142\n\nx is still 42\ncalculate() = 142\n\nx is now 50\ncalculate() = 150\n\n"


async def seed_stateful_example(db_pool):
    # Create stateful executor
    executor = StatefulExecutor(
        db_pool=db_pool,
        thread_id="user_123",
        allow_net=False,
        timeout_seconds=120.0
    )

    # First execution - define variables and functions
    result1 = await executor.execute("""
x = 42
y = 100

def calculate():
    return x + y

print(f"Sum: {calculate()}")
""")
    print(result1.stdout)  # Output: Sum: 142

    # Second execution - state persists!
    result2 = await executor.execute("""
print(f"x is still {x}")
print(f"calculate() = {calculate()}")
x = 50  # Modify state
""")
    print(result2.stdout)
    # Output:
    # x is still 42
    # calculate() = 142

    # Third execution - modified state persists
    result3 = await executor.execute("""
print(f"x is now {x}")
print(f"calculate() = {calculate()}")
""")
    print(result3.stdout)
    # Output:
    # x is now 50
    # calculate() = 150

    # Reset session to clear all state
    await executor.reset_session()
    return executor, (result1, result2, result3)


class SeedExamples:
    """The examples; subclasses set self.db_pool and self.home (a TempHome)."""

    db_pool = None

    def run_async(self, coro):
        return asyncio.run(coro)

    def expire(self, thread_id):
        with contextlib.closing(sqlite3.connect(self.home.url[len("sqlite:"):])) as db, db:
            self.assertEqual(db.execute("UPDATE brig_sessions SET expires_at = 0 WHERE thread_id = ?",
                                        (thread_id,)).rowcount, 1)

    def test_stateful_execution_prints_what_the_seed_says(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            executor, results = self.run_async(seed_stateful_example(self.db_pool))
        self.assertEqual(out.getvalue(), SEED_PRINTS)
        for r in results:
            self.assertTrue(r.success, r.error)
            self.assertEqual(r.stderr, "")
            self.assertIsNone(r.error)
        self.assertIsNone(results[0].result)

    def test_reset_then_name_error(self):
        async def example():
            executor = StatefulExecutor(db_pool=self.db_pool, thread_id="user_reset", allow_net=False,
                                        timeout_seconds=120.0)
            await executor.execute("x = 42")
            # Clear all state for this thread
            await executor.reset_session()

            # Next execution starts fresh
            return await executor.execute("print(x)")  # NameError: x is not defined

        r = self.run_async(example())
        self.assertFalse(r.success)
        self.assertEqual(r.error, "NameError: name 'x' is not defined")
        self.assertEqual(r.error.type, "NameError")
        self.assertIn("Traceback", r.error.traceback)

    def test_result_and_timeout(self):
        async def example():
            executor = StatefulExecutor(self.db_pool, "user_result", timeout_seconds=0.5)
            value = await executor.execute("[1, 2][1] + 40")
            obj = await executor.execute("object()")
            slow = await executor.execute("while True: pass")
            after = await executor.execute("'still here'")
            return value, obj, slow, after

        value, obj, slow, after = self.run_async(example())
        self.assertEqual(value.result, 42)
        self.assertTrue(obj.result.startswith("<object object at"))
        self.assertFalse(slow.success)
        self.assertEqual(slow.failure, "timeout")
        self.assertEqual(slow.error.type, "TimeoutError")
        self.assertEqual(after.result, "still here")

    def test_session_manager(self):
        async def example(db_pool):
            manager = SandboxManager(db_pool)

            # Create or get session (180 day expiration)
            await manager.get_or_create_session("user_123")

            # Create with custom expiration
            await manager.create_session(
                thread_id="user_456",
                expiration_days=30
            )

            # Check if session exists
            exists = await manager.session_exists("user_123")

            # Get session details
            session = await manager.get_session("user_123")
            print(f"Created: {session['created_at']}")
            print(f"Expires: {session['expires_at']}")

            # Extend session by 180 days from now
            await manager.extend_session("user_123", days=180)

            custom = await manager.get_session("user_456")
            extended = await manager.get_session("user_123")

            # Delete session and all associated files
            await manager.delete_session("user_123")
            gone = await manager.session_exists("user_123")
            return exists, session, custom, extended, gone

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exists, session, custom, extended, gone = self.run_async(example(self.db_pool))
        self.assertTrue(exists)
        self.assertFalse(gone)
        self.assertEqual(out.getvalue().splitlines()[0], f"Created: {session['created_at']}")
        days = lambda s: (s["expires_at"] - s["created_at"]).total_seconds() / 86400  # noqa: E731
        self.assertAlmostEqual(days(session), 180, delta=0.01)
        self.assertAlmostEqual(days(custom), 30, delta=0.01)
        self.assertAlmostEqual(days(extended), 360, delta=0.01)  # max(now, expiry) + 180

        async def errors():
            manager = SandboxManager(self.db_pool)
            with self.assertRaises(brig.SessionNotFoundError):
                await manager.get_session("user_123")
            self.assertFalse(await manager.delete_session("user_123"))
            with self.assertRaises(brig.AlreadyExistsError):
                await manager.create_session("user_456", expiration_days=1)
            self.expire("user_456")
            with self.assertRaises(brig.SessionExpiredError):
                await manager.get_session("user_456")
            with self.assertRaises(brig.SessionExpiredError):
                await manager.get_or_create_session("user_456")
            await manager.extend_session("user_456", days=1)
            self.assertEqual((await manager.get_session("user_456"))["thread_id"], "user_456")

        self.run_async(errors())

    def test_cleanup(self):
        async def make():
            manager = SandboxManager(self.db_pool)
            await manager.create_session("old", expiration_days=1)
            await StatefulExecutor(self.db_pool, "old").execute("open('/tmp/f.txt', 'w').write('12345')")
            await manager.create_session("young", expiration_days=1)

        self.run_async(make())
        self.expire("old")

        async def example(db_pool):
            # Create cleanup job
            cleanup = CleanupJob(db_pool)

            # Run cleanup once
            stats = await cleanup.run_once()
            print(f"Deleted {stats['sessions_deleted']} sessions")
            print(f"Deleted {stats['files_deleted']} files")
            return stats

        dry = self.run_async(CleanupJob(self.db_pool, dry_run=True).run_once())
        self.assertEqual(dry["sessions_deleted"], 1)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            stats = self.run_async(example(self.db_pool))
        self.assertEqual(out.getvalue(), "Deleted 1 sessions\nDeleted 1 files\n")
        self.assertGreaterEqual(stats["bytes_freed"], 5)
        manager = SandboxManager(self.db_pool)
        # Remote: the server's own store was cleaned (POST /v1/cleanup), not a local one.
        self.assertFalse(self.run_async(manager.session_exists("old")))
        self.assertTrue(self.run_async(manager.session_exists("young")))

    def test_shown_outputs_and_files_with_size_and_type(self):
        async def example():
            executor = StatefulExecutor(self.db_pool, "user_show")
            return await executor.execute(
                "import brig\n"
                "class Chart:\n"
                "    def _repr_png_(self): return b'\\x89PNG\\r\\n\\x1a\\n' + bytes(8)\n"
                "brig.show(Chart())\n"
                "brig.show('<b>x</b>', mime='text/html')\n"
                "open('/home/user/r.json', 'w').write('[1]')\n")

        r = self.run_async(example())
        self.assertTrue(r.success, r.error)
        self.assertEqual(len(r.display), 2)
        self.assertEqual(r.display[0]["image/png"], b"\x89PNG\r\n\x1a\n" + bytes(8))
        self.assertIsInstance(r.display[0]["text/plain"], str)
        self.assertEqual(r.display[1], {"text/html": "<b>x</b>"})
        self.assertEqual(r.raw.outputs, r.raw.display)
        self.assertIsNone(r.raw.display_note)
        self.assertEqual(r.files, [{"path": "/home/user/r.json", "size": 3, "content_type": "application/json"}])

    def test_file_server_endpoints(self):
        async def make_files():
            executor = StatefulExecutor(self.db_pool, "user_files")
            r = await executor.execute(
                "open('/tmp/data.csv', 'w').write('a,b\\n1,2\\n')\n"
                "open('/tmp/config.json', 'w').write('{}')\n"
                "open('/home/user/other.txt', 'w').write('no')")
            self.assertTrue(r.success, r.error)
            self.assertIn("/tmp/data.csv", r.created_files)

        self.run_async(make_files())
        # The seed's FileServer(db_pool=..., host=..., port=...), on a free port.
        server = FileServer(db_pool=self.home.url, host="127.0.0.1", port=0)
        with server:
            with urllib.request.urlopen(server.url + "/health") as resp:
                self.assertEqual(json.loads(resp.read())["status"], "ok")
            with urllib.request.urlopen(server.url + "/files/user_files/tmp/data.csv") as resp:
                self.assertEqual(resp.read(), b"a,b\n1,2\n")
                self.assertTrue(resp.headers["Content-Type"].startswith("text/csv"), resp.headers["Content-Type"])
            with urllib.request.urlopen(server.url + "/files/user_files?prefix=/tmp/") as resp:
                self.assertEqual(sorted(json.loads(resp.read())), ["/tmp/config.json", "/tmp/data.csv"])
        self.assertIsNone(server.process)


@needs_native
class SeedLocalTest(SeedExamples, unittest.TestCase):
    """db_pool is a SQLite store URL: the engine runs in this process."""

    def setUp(self):
        self.home = TempHome()
        self.db_pool = self.home.url

    def tearDown(self):
        self.home.close()

    def test_periodic_cleanup_start_stop(self):
        self.run_async(SandboxManager(self.db_pool).create_session("gone", expiration_days=1))
        self.expire("gone")

        async def example(db_pool):
            # Create cleanup job (runs every hour)
            cleanup = CleanupJob(
                db_pool=db_pool,
                interval_seconds=3600  # 1 hour
            )

            # Start periodic cleanup in background
            cleanup.start()
            self.assertTrue(cleanup.running)
            while cleanup.last_stats is None:
                await asyncio.sleep(0.01)

            # Later: stop cleanup
            cleanup.stop()
            self.assertFalse(cleanup.running)
            return cleanup.last_stats

        stats = self.run_async(example(self.db_pool))
        self.assertEqual(stats["sessions_deleted"], 1)
        # Outside an event loop: a background thread, joined by stop().
        job = CleanupJob(self.db_pool, interval_seconds=3600)
        job.start()
        job.stop()
        self.assertFalse(job.running)

    def test_state_survives_a_restart_of_the_program(self):
        # The three steps in three Python processes, as after restarts of an application.
        steps = ["x = 42\ny = 100\ndef calculate():\n    return x + y\nprint(f'Sum: {calculate()}')",
                 "print(calculate())\nx = 50", "print(calculate())"]
        outs = []
        for code in steps:
            prog = textwrap.dedent(f"""
                import asyncio, sys
                sys.path[:0] = {sys.path[:3]!r}
                from brig.session import StatefulExecutor
                r = asyncio.run(StatefulExecutor({self.db_pool!r}, "restarts").execute({code!r}))
                print(r.stdout, end="")
                """)
            p = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, cwd=HERE,
                               env=dict(os.environ), timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            outs.append(p.stdout)
        self.assertEqual(outs, ["Sum: 142\n", "142\n", "150\n"])

    def test_file_server_run_blocks_until_stopped(self):
        import socket
        import threading
        import time

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = FileServer(db_pool=self.db_pool, host="127.0.0.1", port=port)
        t = threading.Thread(target=server.run)
        t.start()
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                    self.assertEqual(json.loads(resp.read())["status"], "ok")
                    break
            except OSError:
                self.assertLess(time.monotonic(), deadline, "brig serve did not come up")
                self.assertTrue(t.is_alive(), "run() returned early")
                time.sleep(0.05)
        self.assertTrue(t.is_alive())  # run() blocks while the server runs
        server.stop()
        t.join(60)
        self.assertFalse(t.is_alive())

    def test_the_example_script(self):
        script = os.path.join(HERE, "..", "..", "examples", "seed_stateful.py")
        p = subprocess.run([sys.executable, script, self.db_pool], capture_output=True, text=True,
                           env=dict(os.environ), timeout=300)
        self.assertEqual((p.returncode, p.stdout), (0, SEED_PRINTS), p.stderr)

    def test_db_pool_must_be_a_url(self):
        with self.assertRaises(TypeError):
            StatefulExecutor(object(), "t")
        with self.assertWarns(RuntimeWarning):
            StatefulExecutor(self.db_pool, "t", allow_net=True)


class SeedRemoteTest(SeedExamples, ServerCase):
    """db_pool is the URL of a brig serve: every call goes over HTTP."""

    def setUp(self):
        self.db_pool = self.url

    def test_calls_go_to_the_server(self):
        self.assertIsInstance(StatefulExecutor(self.db_pool, "t").backend, brig.Client)

    def test_cleanup_runs_on_the_server(self):
        job = CleanupJob(self.db_pool, dry_run=True)
        self.assertIsInstance(job.backend, brig.Client)
        self.assertEqual(set(self.run_async(job.run_once())) >= {"sessions_deleted", "files_deleted"}, True)


if __name__ == "__main__":
    unittest.main()
