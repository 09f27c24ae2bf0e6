"""brig.Sandbox in this process: the extension module and the engine."""

import threading
import time
import unittest

from support import needs_native

import brig


@needs_native
class InProcessSandboxTest(unittest.TestCase):
    def setUp(self):
        self.sb = brig.Sandbox()

    def test_execute_returns_output_value_and_success(self):
        r = self.sb.execute("import math\nprint('hi')\nmath.pi * 2")
        self.assertTrue(r.success)
        self.assertTrue(r.ok)
        self.assertEqual(r.stdout, "hi\n")
        self.assertEqual(r.stderr, "")
        self.assertEqual(r.result, "6.283185307179586")
        self.assertEqual(r.value, r.result)
        self.assertIsNone(r.error)
        self.assertIsNone(r.failure)
        self.assertIsInstance(r, brig.ExecutionResult)

    def test_state_persists_between_executions(self):
        self.sb.execute("x = 42\ndef f(): return x + 1")
        self.assertEqual(self.sb.execute("f()").result, "43")

    def test_python_exception_is_a_result_with_traceback(self):
        r = self.sb.execute("1 / 0")
        self.assertFalse(r.success)
        self.assertIsInstance(r.error, brig.PythonError)
        self.assertIsInstance(r.error, str)
        self.assertEqual(r.error.type, "ZeroDivisionError")
        self.assertEqual(r.error.message, "division by zero")
        self.assertIn("Traceback", r.error.traceback)
        self.assertEqual(str(r.error), "ZeroDivisionError: division by zero")

    def test_timeout_stops_the_code_and_keeps_the_state(self):
        self.sb.execute("y = 1")
        r = self.sb.execute("while True: y += 1", timeout=0.2)
        self.assertFalse(r.success)
        self.assertEqual(r.failure, "timeout")
        self.assertEqual(r.error.type, "TimeoutError")
        self.assertEqual(self.sb.execute("y").result, "1")  # rolled back

    def test_reset_forgets_variables(self):
        self.sb.execute("z = 5")
        self.sb.reset()
        r = self.sb.execute("z")
        self.assertEqual(r.error.type, "NameError")

    def test_fork_copies_state_then_diverges(self):
        self.sb.execute("items = [1]")
        child = self.sb.fork()
        self.assertIsInstance(child, brig.Sandbox)
        child.execute("items.append(2)")
        self.assertEqual(child.execute("items").result, "[1, 2]")
        self.assertEqual(self.sb.execute("items").result, "[1]")

    def test_snapshot_and_restore_bring_back_variables_and_files(self):
        self.sb.execute("k = {'a': 1}\nopen('/home/user/note.txt', 'w').write('kept')")
        data = self.sb.snapshot()
        self.assertIsInstance(data, bytes)
        self.sb.reset()
        self.sb.execute("k = 'other'")
        self.sb.restore(data)
        self.assertEqual(self.sb.execute("k").result, "{'a': 1}")
        self.assertEqual(self.sb.execute("open('/home/user/note.txt').read()").result, "'kept'")
        other = brig.Sandbox()
        other.restore(data)
        self.assertEqual(other.execute("k['a']").result, "1")

    def test_restore_rejects_damaged_bytes_and_keeps_state(self):
        self.sb.execute("w = 3")
        data = self.sb.snapshot()
        for bad in (b"", b"garbage", data[:-5], data[:20], b"BRIGSBX1" + b"\xff" * 16):
            with self.assertRaises(brig.BrigError, msg=repr(bad[:24])):
                self.sb.restore(bad)
        self.assertEqual(self.sb.execute("w").result, "3")

    def test_files_from_the_host_side(self):
        self.sb.write_file("/home/user/in.csv", b"a,b\n1,2\n")
        r = self.sb.execute("open('/home/user/in.csv').read().splitlines()[1]")
        self.assertEqual(r.result, "'1,2'")
        self.sb.execute("open('/tmp/out.txt', 'w').write('x' * 10)")
        self.assertEqual(self.sb.read_file("/tmp/out.txt"), b"x" * 10)
        self.assertIsNone(self.sb.read_file("/tmp/missing"))
        self.assertIn(("/tmp/out.txt", 10), self.sb.list_files())
        with self.assertRaises(brig.InvalidArgumentError):
            self.sb.write_file("/etc/passwd", b"no")

    def test_bad_arguments(self):
        with self.assertRaises(TypeError):
            self.sb.execute(b"bytes")
        with self.assertRaises(TypeError):
            self.sb.execute("1", bogus=1)
        with self.assertRaises(ValueError):
            brig.Sandbox(memory_mb=1)

    def test_gil_is_released_while_the_guest_runs(self):
        # Thread A's guest sleeps 2 s. Meanwhile this thread runs a quick execution in another
        # sandbox: it can finish first only if A gave up the GIL (held, this thread could not
        # even start it until A returned). An order, not a time, is checked.
        other = brig.Sandbox()
        finished = []
        entering = threading.Event()

        def run():
            entering.set()
            self.sb.execute("import time\ntime.sleep(2)")
            finished.append("sleeper")

        t = threading.Thread(target=run)
        t.start()
        entering.wait()
        time.sleep(0.2)  # gives A the GIL back, to enter its execution
        other.execute("1 + 1")
        finished.append("quick")
        t.join()
        self.assertEqual(finished, ["quick", "sleeper"])

    def test_threads_use_their_own_sandboxes(self):
        boxes = [brig.Sandbox() for _ in range(2)]
        results = [None, None]

        def run(i):
            boxes[i].execute(f"n = {i}")
            results[i] = boxes[i].execute("n * 10").result

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, ["0", "10"])

    def test_guest_cannot_reach_the_host(self):
        r = self.sb.execute("import socket\nsocket.create_connection(('127.0.0.1', 80))")
        self.assertFalse(r.success)
        r = self.sb.execute("open('/etc/passwd').read()")
        self.assertFalse(r.success)


if __name__ == "__main__":
    unittest.main()


@needs_native
class LocalStoreTest(unittest.TestCase):
    """brig.LocalStore: sessions of a store, in this process (what db_pool="sqlite:..." uses)."""

    def setUp(self):
        from support import TempHome

        self.home = TempHome()
        self.addCleanup(self.home.close)
        self.store = brig.LocalStore(self.home.url)

    def test_execute_fork_export_import(self):
        r = self.store.execute("s1", "v = [1, 2]\nopen('/tmp/a.txt', 'w').write('A')")
        self.assertTrue(r.success, r.error)
        self.assertEqual(r.session["thread_id"], "s1")
        self.assertIn("/tmp/a.txt", r.session["files_saved"])
        self.store.call("fork", "s1", thread_id="s2")
        self.store.execute("s2", "v.append(3)")
        self.assertEqual(self.store.execute("s1", "v").result, "[1, 2]")
        self.assertEqual(self.store.execute("s2", "v").result, "[1, 2, 3]")
        data = self.store.export_snapshot("s2")
        self.assertTrue(data.startswith(b"BRIGSNAP"))
        made = self.store.import_snapshot("s3", data)
        self.assertEqual(made["session"]["thread_id"], "s3")
        self.assertEqual(self.store.execute("s3", "v").result, "[1, 2, 3]")
        self.assertEqual(self.store.read_file("s3", "/tmp/a.txt")[0], b"A")
        with self.assertRaises(brig.InvalidArgumentError):
            self.store.import_snapshot("s4", data[:-1])

    def test_errors_are_brig_errors(self):
        with self.assertRaises(brig.InvalidArgumentError):
            self.store.execute("", "1")
        with self.assertRaises(brig.SessionNotFoundError):
            self.store.call("get", "missing")
        with self.assertRaises(brig.InvalidArgumentError):
            self.store.call("extend", "missing", days="many")
        with self.assertRaises(brig.UnavailableError):
            brig.LocalStore("sqlite:/nonexistent-dir/x/brig.db")
