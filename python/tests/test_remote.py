"""brig.Sandbox(server=...): the in-process API over brig serve's HTTP."""

import unittest

from support import ServerCase

import brig


class RemoteSandboxTest(ServerCase):
    def setUp(self):
        self.sb = brig.Sandbox(server=self.url)
        self.addCleanup(self.sb.close)

    def test_is_a_remote_sandbox(self):
        self.assertIsInstance(self.sb, brig.RemoteSandbox)
        self.assertTrue(self.sb.thread_id.startswith("sandbox-"))

    def test_execute_returns_the_same_result_shape(self):
        r = self.sb.execute("print('hi')\n6 * 7")
        self.assertTrue(r.success)
        self.assertEqual(r.stdout, "hi\n")
        self.assertEqual(r.result, "42")
        self.assertEqual(r.value, "42")
        self.assertIsNone(r.error)
        self.assertIsInstance(r, brig.ExecutionResult)
        self.assertEqual(r.session["thread_id"], self.sb.thread_id)

    def test_errors_and_timeouts(self):
        r = self.sb.execute("{}['k']")
        self.assertFalse(r.success)
        self.assertEqual(r.error.type, "KeyError")
        self.assertIn("Traceback", r.error.traceback)
        r = self.sb.execute("while True: pass", timeout=0.3)
        self.assertEqual(r.failure, "timeout")
        self.assertEqual(r.error.type, "TimeoutError")

    def test_state_reset_fork(self):
        self.sb.execute("a = [1]")
        child = self.sb.fork()
        self.addCleanup(child.close)
        child.execute("a.append(2)")
        self.assertEqual(child.execute("a").result, "[1, 2]")
        self.assertEqual(self.sb.execute("a").result, "[1]")
        self.sb.reset()
        self.assertEqual(self.sb.execute("a").error.type, "NameError")

    def test_snapshot_restore(self):
        self.sb.execute("v = 'saved'\nopen('/home/user/f.txt', 'w').write('file')")
        data = self.sb.snapshot()
        self.assertTrue(data.startswith(b"BRIGSNAP"))
        self.sb.execute("v = 'changed'")
        old_id = self.sb.thread_id
        self.sb.restore(data)
        self.assertNotEqual(self.sb.thread_id, old_id)
        self.assertEqual(self.sb.execute("v").result, "'saved'")
        self.assertEqual(self.sb.read_file("/home/user/f.txt"), b"file")
        with self.assertRaises(brig.InvalidArgumentError):
            self.sb.restore(b"not a snapshot")

    def test_files(self):
        self.sb.write_file("/home/user/in.bin", bytes(range(256)))
        self.assertEqual(self.sb.read_file("/home/user/in.bin"), bytes(range(256)))
        self.assertIn(("/home/user/in.bin", 256), self.sb.list_files())
        self.assertIsNone(self.sb.read_file("/home/user/missing"))

    def test_close_deletes_the_session(self):
        sb = brig.Sandbox(server=self.url)
        client = brig.Client(self.url)
        self.assertTrue(client.call("exists", sb.thread_id))
        sb.close()
        sb.close()
        self.assertFalse(client.call("exists", sb.thread_id))

    def test_unreachable_server(self):
        client = brig.Client("http://127.0.0.1:1")
        with self.assertRaises(brig.UnavailableError):
            client.execute("t", "1")
        with self.assertRaises(ValueError):
            brig.Client("ftp://x")


class ClientErrorsTest(ServerCase):
    def test_error_codes_map_to_exceptions(self):
        c = brig.Client(self.url)
        with self.assertRaises(brig.SessionNotFoundError) as cm:
            c.call("get", "nobody")
        self.assertEqual(cm.exception.status, 404)
        with self.assertRaises(brig.InvalidArgumentError):
            c.call("create", "bad\x01id")
        c.call("create", "twice")
        with self.assertRaises(brig.AlreadyExistsError):
            c.call("create", "twice")
        with self.assertRaises(brig.NotFoundError):
            c.read_file("twice", "/home/user/none.txt")


if __name__ == "__main__":
    unittest.main()
