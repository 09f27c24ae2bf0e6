"""End-to-end tests of the real `brig` binary (BRIG_BIN, set by ctest)."""
import json
import os
import subprocess
import tempfile
import threading
import unittest

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))


def brig(*args, stdin=None, timeout=120):
    return subprocess.run([BRIG, *args], input=stdin, capture_output=True, timeout=timeout)


def brig_json(*args, **kw):
    p = brig("exec", "--json", *args, **kw)
    return p, json.loads(p.stdout)


class ExecTest(unittest.TestCase):
    def test_code_flag_prints_stdout_and_exits_zero(self):
        p = brig("exec", "-c", "print(6 * 7)")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"42\n")
        self.assertEqual(p.stderr, b"")

    def test_file_argument(self):
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write("import json\nprint(json.dumps({'a': 1}))\n")
        try:
            p = brig("exec", f.name)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b'{"a": 1}\n')
        finally:
            os.unlink(f.name)

    def test_code_on_stdin(self):
        p = brig("exec", "-", stdin=b"import sys\nprint(sys.platform)\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"wasi\n")

    def test_exception_exits_nonzero_with_cpython_traceback(self):
        p = brig("exec", "-c", "x = 1\nraise ValueError('boom')")
        self.assertEqual(p.returncode, 1)
        err = p.stderr.decode()
        self.assertIn("Traceback (most recent call last):", err)
        self.assertIn('File "<string>", line 2, in <module>', err)
        self.assertIn("ValueError: boom", err)

    def test_traceback_of_a_file_names_the_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write("def f():\n    return {}['missing']\nf()\n")
        try:
            p = brig("exec", f.name)
            self.assertEqual(p.returncode, 1)
            self.assertIn('File "%s", line 2, in f' % f.name, p.stderr.decode())
            self.assertIn("return {}['missing']", p.stderr.decode())
        finally:
            os.unlink(f.name)

    def test_sys_exit_code_is_the_exit_status(self):
        self.assertEqual(brig("exec", "-c", "import sys; sys.exit(4)").returncode, 4)
        self.assertEqual(brig("exec", "-c", "import sys; sys.exit(0)").returncode, 0)

    def test_json_fields_on_success(self):
        p, j = brig_json("-c", "print('out')\n40 + 2")
        self.assertEqual(p.returncode, 0)
        self.assertIs(j["ok"], True)
        self.assertEqual(j["stdout"], "out\n")
        self.assertEqual(j["stderr"], "")
        self.assertEqual(j["result"], "42")
        self.assertIsNone(j["error"])
        self.assertIsInstance(j["duration_ms"], (int, float))
        self.assertGreater(j["duration_ms"], 0)

    def test_json_has_what_the_code_showed(self):
        p, j = brig_json("-c", "import brig\nbrig.show({'k': [1]})\nbrig.show(b'GIF89a' + bytes(4))")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(j["display"][0], {"application/json": '{"k": [1]}', "text/plain": "{'k': [1]}"})
        self.assertEqual(j["display"][1], {"image/gif": "R0lGODlhAAAAAA=="})
        self.assertIsNone(j["display_note"])
        p, j = brig_json("-c", "import brig\nbrig._pending.append({'text/evil': 'x'})")
        self.assertEqual((j["display"], j["display_note"]),
                         ([], 'brig: 1 display output dropped: unsupported MIME type "text/evil"'))

    def test_json_fields_on_exception(self):
        p, j = brig_json("-c", "1/0")
        self.assertEqual(p.returncode, 1)
        self.assertIs(j["ok"], False)
        self.assertIsNone(j["result"])
        self.assertEqual(j["error"]["type"], "ZeroDivisionError")
        self.assertEqual(j["error"]["message"], "division by zero")
        self.assertIn("Traceback", j["error"]["traceback"])

    def test_json_result_is_null_without_final_expression(self):
        _, j = brig_json("-c", "x = 5")
        self.assertIsNone(j["result"])

    def test_unicode_round_trip(self):
        p, j = brig_json("-c", "s = 'żółw 🐢 日本'\nprint(s)\ns")
        self.assertEqual(j["stdout"], "żółw 🐢 日本\n")
        self.assertEqual(j["result"], "'żółw 🐢 日本'")
        self.assertEqual(brig("exec", "-c", "print('żółw 🐢')").stdout, "żółw 🐢\n".encode())

    def test_invalid_utf8_output_does_not_break_json(self):
        p, j = brig_json("-c", "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe end\\n')")
        self.assertEqual(p.returncode, 0)
        self.assertTrue(j["stdout"].startswith("ok "))

    def test_large_output_is_truncated_with_marker(self):
        p, j = brig_json("-c", "print('y' * (5 * 1024 * 1024))")
        self.assertTrue(j["stdout_truncated"])
        self.assertIn("[brig: output truncated", j["stdout"])
        self.assertLess(len(j["stdout"]), 2 * 1024 * 1024)

    def test_memory_limit_raises_memory_error(self):
        p, j = brig_json("--memory", "64", "-c", "b = bytearray(100 * 1024 * 1024)")
        self.assertEqual(j["error"]["type"], "MemoryError")
        p, j = brig_json("--memory", "256", "-c", "len(bytearray(100 * 1024 * 1024))")
        self.assertEqual(j["result"], str(100 * 1024 * 1024))

    def test_timeout_stops_the_code_and_exits_124(self):
        for code in ("print('tick')\nwhile True: pass", "sum(range(10**12))", "import time; time.sleep(60)"):
            p, j = brig_json("--timeout", "0.5", "-c", code, timeout=30)
            self.assertEqual(p.returncode, 124, code)
            self.assertEqual(j["failure"]["kind"], "timeout")
            self.assertIs(j["ok"], False)
        p, j = brig_json("--timeout", "0.5", "-c", "print('tick')\nwhile True: pass", timeout=30)
        self.assertEqual(j["stdout"], "tick\n")  # output from before the timeout is kept

    def test_trap_is_reported_and_host_survives(self):
        code = ("import sys\nsys.setrecursionlimit(10**7)\n"
                "class A:\n    def __getattr__(self, n):\n        return getattr(self, n)\nA().x\n")
        p, j = brig_json("-c", code)
        self.assertEqual(p.returncode, 125)
        self.assertEqual(j["failure"]["kind"], "trap")
        self.assertIs(j["ok"], False)

    def test_os_exit_ends_the_sandbox_not_brig(self):
        p, j = brig_json("-c", "print('a')\nimport os\nos._exit(9)")
        self.assertEqual(p.returncode, 9)
        self.assertEqual(j["failure"]["kind"], "exit")
        self.assertEqual(j["exit_code"], 9)

    def test_bad_command_lines(self):
        self.assertEqual(brig("exec").returncode, 2)
        self.assertEqual(brig("exec", "/nonexistent/file.py").returncode, 2)
        self.assertEqual(brig("exec", "--memory", "1", "-c", "pass").returncode, 2)
        self.assertEqual(brig("exec", "--timeout", "-1", "-c", "pass").returncode, 2)
        self.assertEqual(brig("frobnicate").returncode, 2)

    def test_escape_attempts_leave_the_host_untouched(self):
        marker = "/tmp/brig-e2e-escape-%d" % os.getpid()
        code = ("import os\n"
                "for p in ['%s', '../../..%s', '/home/user/../..%s']:\n"
                "    try:\n        open(p, 'w').write('pwned')\n    except OSError:\n        pass\n"
                "print(sorted(os.listdir('/tmp')))\n") % (marker, marker, marker)
        p = brig("exec", "-c", code)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(marker))

    def test_two_processes_at_once(self):
        results = {}

        def run(i):
            results[i] = brig("exec", "-c", "sum(range(%d))" % (i * 1000), "--json")

        threads = [threading.Thread(target=run, args=(i,)) for i in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in (1, 2):
            self.assertEqual(json.loads(results[i].stdout)["result"], str(sum(range(i * 1000))))


if __name__ == "__main__":
    unittest.main()
