"""End-to-end tests of `brig serve`'s API (issue #10): every endpoint of /v1, the file server
(/health, /files/...) and /metrics, against the real binary over loopback.

Each case runs four times: on SQLite and on PostgreSQL, without tokens and with a token for
every thread (BRIG_TOKENS). One server per class; each test uses thread_ids of its own.
"""
import base64
import hashlib
import io
import json
import os
import subprocess
import time
import unittest
import urllib.parse
import zipfile
from datetime import datetime, timedelta

import harness
from harness import ServerClass, SqliteStore, PostgresStore


def parse_events(body):
    """An event stream's events as (event, data as JSON)."""
    events = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        events.append((name, json.loads("\n".join(data))))
    return events


def metric(text, name):
    """The value of one sample line of a Prometheus page (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def key_shape(j):
    """The keys of a JSON object, recursively (for comparing with `brig exec --json`)."""
    if isinstance(j, dict):
        return {k: key_shape(v) for k, v in j.items()}
    return type(j).__name__ if j is not None else None


def when(stamp):
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")


class ApiCases(ServerClass):
    # ---- helpers

    def req(self, method, path, body=None, **kw):
        return self.server.request(method, path, body, **kw)

    def ok(self, method, path, body=None, status=200, **kw):
        r = self.req(method, path, body, **kw)
        self.assertEqual(r.status, status, r)
        return r

    def error(self, status, code, method, path, body=None, **kw):
        """Answers `status` with the API's error JSON, whose code is `code` (None: any)."""
        r = self.req(method, path, body, **kw)
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers["Content-Type"].startswith("application/json"), r.headers)
        err = r.json()["error"]
        self.assertIsInstance(err["message"], str)
        self.assertTrue(err["message"])
        if code:
            self.assertEqual(err["code"], code, r)
        return r

    def run_ok(self, thread_id, code, **extra):
        r = self.server.execute(thread_id, code, **extra)
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertTrue(j["ok"], j)
        return j

    def put(self, thread_id, path, data, content_type=None):
        headers = {"Content-Type": content_type} if content_type else {}
        return self.ok("PUT", "/v1/sessions/%s/files%s" % (thread_id, urllib.parse.quote(path)), data, headers=headers).json()

    # ---- per-session quotas

    def test_a_session_created_with_quotas_holds_to_them(self):
        t, other = self.tid(), self.tid("other")
        quotas = {"max_files": 2, "max_total_bytes": 1000, "max_file_bytes": 600}
        j = self.ok("POST", "/v1/sessions", {"thread_id": t, "quotas": quotas}, status=201).json()
        self.assertEqual(j["quotas"], quotas)
        self.assertEqual(self.ok("GET", "/v1/sessions/" + t).json()["quotas"], quotas)
        # Another session has the server's own quotas.
        self.ok("POST", "/v1/sessions", {"thread_id": other}, status=201)
        theirs = self.ok("GET", "/v1/sessions/" + other).json()["quotas"]
        self.assertEqual(theirs["max_files"], 1000)
        self.assertGreater(theirs["max_file_bytes"], 600)
        path = "/v1/sessions/%s/files/tmp/" % t
        # File writes: one file past max_file_bytes, a third file, a total past max_total_bytes.
        r = self.error(413, "quota_exceeded", "PUT", path + "big", b"x" * 601)
        self.assertIn("600", r.json()["error"]["message"])
        self.put(t, "/tmp/a", b"a" * 500)
        self.put(t, "/tmp/b", b"b" * 400)
        self.error(413, "quota_exceeded", "PUT", path + "c", b"c")
        self.error(413, "quota_exceeded", "PUT", path + "b", b"B" * 600)
        self.error(413, "quota_exceeded", "POST", "/v1/sessions/%s/files:write" % t, {"path": "/tmp/c", "content": "c"})
        # Nothing was lost.
        self.assertEqual(self.ok("GET", path + "a").body, b"a" * 500)
        self.assertEqual(self.ok("GET", path + "b").body, b"b" * 400)
        self.put(other, "/tmp/big", b"x" * 700)
        # Executions: the guest's write fails (ENOSPC), the session's files stay as they were.
        j = self.run_ok(t, "import errno\n"
                           "try:\n"
                           "    open('/tmp/c', 'w').write('z')\n"
                           "    out = 'written'\n"
                           "except OSError as e:\n"
                           "    out = errno.errorcode[e.errno]\n"
                           "out")
        self.assertEqual(j["result"], "'ENOSPC'", j)
        self.assertEqual(self.ok("GET", path + "a").body, b"a" * 500)
        self.assertEqual(self.ok("GET", path + "b").body, b"b" * 400)
        self.assertEqual(self.req("GET", path + "c").status, 404)
        # Deleting makes room again.
        self.ok("DELETE", path + "b")
        self.put(t, "/tmp/c", b"c" * 100)
        # Quotas only lower the server's; malformed ones are refused, and no session is made.
        bad = self.tid("bad")
        for q in ({"max_files": 5000}, {"max_total_bytes": 1 << 40}, {"max_file_bytes": 21 << 20}, {"max_files": 0},
                  {"max_files": "2"}, {"max_inodes": 2}, [2], "2"):
            self.error(400, "invalid_argument", "POST", "/v1/sessions", {"thread_id": bad, "quotas": q})
        self.error(404, "not_found", "GET", "/v1/sessions/" + bad)

    # ---- fork, snapshot export and import

    def test_fork_copies_state_and_files_then_diverges(self):
        src, dst = self.tid("fsrc"), self.tid("fdst")
        self.run_ok(src, "x = 5\nopen('/tmp/f.txt', 'w').write('one')")
        j = self.ok("POST", "/v1/sessions/%s/fork" % src, {"thread_id": dst, "metadata": {"from": src}}, status=201).json()
        self.assertEqual((j["thread_id"], j["metadata"], j["file_count"]), (dst, {"from": src}, 1))
        self.assertEqual(self.run_ok(dst, "x += 1\n(x, open('/tmp/f.txt').read())")["result"], "(6, 'one')")
        self.assertEqual(self.run_ok(src, "x")["result"], "5")  # apart afterwards
        self.error(409, "already_exists", "POST", "/v1/sessions/%s/fork" % src, {"thread_id": dst})
        self.error(404, "not_found", "POST", "/v1/sessions/%s/fork" % self.tid("nosuch"), {"thread_id": self.tid("x2")})
        self.error(400, "invalid_argument", "POST", "/v1/sessions/%s/fork" % src, {})

    def test_snapshot_export_import_round_trip(self):
        src, dst = self.tid("esrc"), self.tid("edst")
        self.run_ok(src, "def f(a): return a * 7\nopen('/home/user/data.bin', 'wb').write(bytes(range(256)))")
        r = self.ok("GET", "/v1/sessions/%s/snapshot" % src)
        self.assertEqual(r.headers["Content-Type"], "application/octet-stream")
        self.assertTrue(r.body.startswith(b"BRIGSNAP"), r.body[:16])
        j = self.ok("PUT", "/v1/sessions/%s/snapshot?expiry_days=3" % dst, r.body,
                    headers={"Content-Type": "application/octet-stream"}, status=201).json()
        self.assertEqual(j["session"]["thread_id"], dst)
        self.assertEqual(j["restored_from"], "pages")
        self.assertEqual(self.run_ok(dst, "f(6), open('/home/user/data.bin', 'rb').read() == bytes(range(256))")["result"],
                         "(42, True)")
        # The same bytes again: the session exists. Damaged bytes: refused, and no session made.
        self.error(409, "already_exists", "PUT", "/v1/sessions/%s/snapshot" % dst, r.body)
        damaged = bytearray(r.body)
        damaged[len(damaged) // 2] ^= 0x40
        bad = self.tid("ebad")
        self.error(400, "invalid_argument", "PUT", "/v1/sessions/%s/snapshot" % bad, bytes(damaged))
        self.error(400, "invalid_argument", "PUT", "/v1/sessions/%s/snapshot" % bad, r.body[:100])
        self.error(404, "not_found", "GET", "/v1/sessions/%s" % bad)
        self.error(400, "invalid_argument", "PUT", "/v1/sessions/%s/snapshot?expiry_days=0" % bad, r.body)
        self.error(404, "not_found", "GET", "/v1/sessions/%s/snapshot" % bad)

    # ---- sessions

    def test_session_create_get_list_extend_delete(self):
        t = self.tid()
        r = self.ok("POST", "/v1/sessions", {"thread_id": t, "expiry_days": 3, "metadata": {"owner": "ada", "n": 1}},
                    status=201)
        created = r.json()
        self.assertEqual(created["thread_id"], t)
        self.assertEqual(created["metadata"], {"owner": "ada", "n": 1})
        self.assertFalse(created["expired"])
        self.assertEqual((created["file_count"], created["total_bytes"]), (0, 0))
        self.assertEqual(when(created["expires_at"]) - when(created["created_at"]), timedelta(days=3))
        self.assertTrue(r.headers["X-Request-Id"])

        self.error(409, "already_exists", "POST", "/v1/sessions", {"thread_id": t})

        got = self.ok("GET", "/v1/sessions/" + t).json()
        self.assertEqual(got["expires_at"], created["expires_at"])
        self.assertEqual(got["metadata"], created["metadata"])
        listed = self.ok("GET", "/v1/sessions").json()["sessions"]
        self.assertIn(t, [s["thread_id"] for s in listed])

        first = self.ok("POST", "/v1/sessions/%s/extend" % t, {"days": 30}).json()
        second = self.ok("POST", "/v1/sessions/%s/extend" % t, {"days": 30}).json()
        self.assertEqual(when(first["expires_at"]) - when(created["expires_at"]), timedelta(days=30))
        self.assertEqual(when(second["expires_at"]) - when(created["expires_at"]), timedelta(days=60))
        self.assertEqual(self.ok("GET", "/v1/sessions/" + t).json()["expires_at"], second["expires_at"])

        r = self.ok("DELETE", "/v1/sessions/" + t).json()
        self.assertEqual(r, {"thread_id": t, "deleted": True})
        self.error(404, "not_found", "GET", "/v1/sessions/" + t)
        self.error(404, "not_found", "DELETE", "/v1/sessions/" + t)
        self.error(404, "not_found", "POST", "/v1/sessions/%s/extend" % t, {"days": 1})
        self.assertNotIn(t, [s["thread_id"] for s in self.ok("GET", "/v1/sessions").json()["sessions"]])

    def test_session_create_without_expiry_takes_the_default(self):
        t = self.tid()
        created = self.ok("POST", "/v1/sessions", {"thread_id": t}, status=201).json()
        self.assertEqual(when(created["expires_at"]) - when(created["created_at"]), timedelta(days=180))
        self.assertEqual(created["metadata"], {})

    def test_session_bad_input_is_400(self):
        t = self.tid()
        for body in [b"{", b"", b"[1, 2]", b'"thread"', b"null", b"\xff\xfe"]:
            self.error(400, "invalid_json", "POST", "/v1/sessions", body, headers={"Content-Type": "application/json"})
        for body in [{}, {"thread_id": None}, {"thread_id": 5}, {"thread_id": ["a"]},
                     {"thread_id": t, "expiry_days": "3"}, {"thread_id": t, "expiry_days": 0},
                     {"thread_id": t, "expiry_days": 1.5}, {"thread_id": t, "expiry_days": -1},
                     {"thread_id": t, "expiry_days": 10 ** 30}, {"thread_id": t, "metadata": "x"},
                     {"thread_id": t, "metadata": [1]}, {"thread_id": ""}, {"thread_id": "x" * 256},
                     {"thread_id": "a\nb"}]:
            self.error(400, "invalid_argument", "POST", "/v1/sessions", body)
        # Nothing was created by any of them.
        self.error(404, "not_found", "GET", "/v1/sessions/" + t)
        self.ok("POST", "/v1/sessions", {"thread_id": t}, status=201)
        for body in [{}, {"days": "1"}, {"days": 0}, {"days": -5}, {"days": 2.5}, {"days": None}]:
            self.error(400, "invalid_argument", "POST", "/v1/sessions/%s/extend" % t, body)
        self.error(400, "invalid_json", "POST", "/v1/sessions/%s/extend" % t, b"days=1")
        for body in [{}, {"code": 1}, {"code": None}, {"code": "1", "timeout_s": "1"}, {"code": "1", "timeout_s": 0},
                     {"code": "1", "timeout_s": -1}, {"code": "1", "memory_mb": 1}, {"code": "1", "memory_mb": "64"}]:
            self.error(400, "invalid_argument", "POST", "/v1/sessions/%s/execute" % t, body)
        self.error(400, "invalid_json", "POST", "/v1/sessions/%s/execute" % t, b"print(1)")
        # An unknown route and a known one with the wrong method.
        self.error(404, "no_route", "GET", "/v1/nosuch")
        self.error(405, "method_not_allowed", "PUT", "/v1/sessions/" + t)

    def test_deeply_nested_json_is_400_not_a_crash(self):
        t = self.tid()
        for n in (65, 10_000, 1_000_000):
            for path, head in (("/v1/sessions", b'{"thread_id": "%s", "metadata": {"a": ' % t.encode()),
                               ("/v1/sessions/%s/execute" % t, b'{"code": "1", "x": {"a": ')):
                body = head + b"[" * n + b"]" * n + b"}}"
                self.error(400, "invalid_json", "POST", path, body, headers={"Content-Type": "application/json"})
        # Brackets inside strings do not count; 60 levels of metadata are kept as they are.
        meta = {"s": "[[[[{{{{" * 100}
        inner = meta
        for _ in range(60):
            inner["n"] = {}
            inner = inner["n"]
        created = self.ok("POST", "/v1/sessions", {"thread_id": t, "metadata": meta}, status=201).json()
        self.assertEqual(created["metadata"], meta)
        self.assertTrue(self.server.alive())

    # ---- executions

    def test_execute_is_stateful(self):
        t = self.tid()
        first = self.run_ok(t, "x = 41\nprint('hello')\nx + 1")
        self.assertEqual((first["stdout"], first["stderr"], first["result"]), ("hello\n", "", "42"))
        self.assertIsNone(first["error"])
        self.assertIsNone(first["failure"])
        self.assertEqual(first["session"]["thread_id"], t)
        self.assertTrue(first["session"]["saved"])
        second = self.run_ok(t, "x += 10\ndef f(): return x * 2\nf()")
        self.assertEqual(second["result"], "102")
        self.assertEqual(second["session"]["version"], first["session"]["version"] + 1)
        third = self.run_ok(t, "f() + x")
        self.assertEqual(third["result"], "153")
        self.assertEqual(third["session"]["version"], first["session"]["version"] + 2)
        # The first execution made the session (default expiry).
        self.assertEqual(self.ok("GET", "/v1/sessions/" + t).json()["thread_id"], t)

    def test_execute_not_durable_answers_before_the_save(self):
        t = self.tid()
        first = self.run_ok(t, "n = 0")  # not live yet: saved the durable way
        self.assertTrue(first["session"]["saved"])
        for _ in range(3):
            j = self.run_ok(t, "n += 1\nopen('/home/user/n.txt', 'w').write(str(n))", durable=False)
            self.assertFalse(j["session"]["saved"], j)
            self.assertEqual(j["session"]["version"], first["session"]["version"])
        # The file endpoints see what the unsaved executions wrote (saved first).
        r = self.ok("GET", "/v1/sessions/%s/files/home/user/n.txt" % t)
        self.assertEqual(r.body, b"3")
        self.assertEqual(self.run_ok(t, "n")["result"], "3")
        self.error(400, None, "POST", "/v1/sessions/%s/execute" % t, {"code": "1", "durable": "no"})

    def test_execute_not_durable_past_the_quick_budget_counts_once(self):
        # A quick non-durable execution of a live session runs on the thread that read it;
        # one that runs past that budget (2 ms) is rolled back and run again on an execution
        # thread: its effects and output must be there once.
        t = self.tid()
        self.run_ok(t, "n = 0")
        self.run_ok(t, "n += 1", durable=False)
        slow = "n += 1\nprint(n)\nimport time\nt0 = time.monotonic()\nwhile time.monotonic() - t0 < 0.05: pass\nn"
        j = self.run_ok(t, slow, durable=False)
        self.assertEqual((j["result"], j["stdout"]), ("2", "2\n"), j)
        self.assertEqual(self.run_ok(t, "n")["result"], "2")

    def test_execute_answers_what_brig_exec_json_prints(self):
        t = self.tid()
        served = self.run_ok(t, "print('out')\n6 * 7")
        # The CLI on the same store, another session: the same fields, of the same types.
        env = dict(os.environ, BRIG_HOME=self.home)
        env.pop("BRIG_TOKENS", None)
        p = subprocess.run([harness.BRIG, "exec", "--json", "--session", t + "-cli", "--db", self.store_url,
                            "-c", "print('out')\n6 * 7"], capture_output=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        cli = json.loads(p.stdout)
        served["duration_ms"] = cli["duration_ms"] = 0
        shape_served, shape_cli = key_shape(served), key_shape(cli)
        shape_served["session"].pop("thread_id")
        shape_cli["session"].pop("thread_id")
        self.assertEqual(shape_served, shape_cli)
        for k in ("ok", "stdout", "stderr", "result", "error", "failure", "exit_code"):
            self.assertEqual(served[k], cli[k], k)

    def test_a_session_another_process_changed_runs_on_its_state_and_is_counted(self):
        # The server holds the session live and runs it without reading the store first; the
        # save finds the CLI's newer state, and the code runs again on it (counted).
        t = self.tid()
        self.run_ok(t, "x = 1")
        env = dict(os.environ, BRIG_HOME=self.home)
        env.pop("BRIG_TOKENS", None)
        p = subprocess.run([harness.BRIG, "exec", "--json", "--session", t, "--db", self.store_url, "-c", "x = 100"],
                           capture_output=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        before = metric(self.ok("GET", "/metrics").body.decode(), "brig_stale_live_runs_total")
        j = self.run_ok(t, "x += 1\nx")
        self.assertEqual(j["result"], "101", j)
        self.assertEqual(j["session"]["restored_from"], "pages", j)
        self.assertEqual(j["session"]["version"], 3, j)
        after = metric(self.ok("GET", "/metrics").body.decode(), "brig_stale_live_runs_total")
        self.assertEqual(after - before, 1)
        self.assertEqual(self.run_ok(t, "x")["session"]["restored_from"], "live")

    def test_execute_reports_files_saved_and_deleted(self):
        t = self.tid()
        j = self.run_ok(t, "open('/home/user/a.txt', 'w').write('A')\nopen('/tmp/b.bin', 'wb').write(b'\\0\\1')")
        self.assertEqual(sorted(j["session"]["files_saved"]), ["/home/user/a.txt", "/tmp/b.bin"])
        self.assertEqual(j["session"]["files_deleted"], [])
        j = self.run_ok(t, "import os\nos.remove('/home/user/a.txt')")
        self.assertEqual(j["session"]["files_deleted"], ["/home/user/a.txt"])
        self.assertEqual(j["session"]["files_saved"], [])
        files = [f["path"] for f in self.ok("GET", "/v1/sessions/%s/files" % t).json()["files"]]
        self.assertIn("/tmp/b.bin", files)
        self.assertNotIn("/home/user/a.txt", files)

    def test_python_exception_is_an_answer_and_keeps_what_ran(self):
        t = self.tid()
        r = self.server.execute(t, "y = 5\nprint('before')\n1 / 0")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertFalse(j["ok"])
        self.assertEqual(j["error"]["type"], "ZeroDivisionError")
        self.assertIn("division by zero", j["error"]["message"])
        self.assertIn("ZeroDivisionError", j["error"]["traceback"])
        self.assertIsNone(j["failure"])
        self.assertEqual(j["stdout"], "before\n")
        self.assertTrue(j["session"]["saved"])
        self.assertEqual(self.run_ok(t, "y")["result"], "5")

    def test_execute_timeout_s(self):
        t = self.tid()
        before = self.run_ok(t, "z = 1")["session"]["version"]
        r = self.server.execute(t, "z = 2\nwhile True: pass", timeout_s=1.5)
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertFalse(j["ok"])
        self.assertEqual(j["failure"]["kind"], "timeout")
        self.assertIn("1.5 s", j["failure"]["message"], "the limit of this call, not the server's default")
        self.assertFalse(j["session"]["saved"])
        self.assertEqual(j["session"]["version"], before)
        after = self.run_ok(t, "z")
        self.assertEqual(after["result"], "1")
        self.assertEqual(after["session"]["version"], before + 1)

    def test_execute_memory_mb(self):
        t = self.tid()
        r = self.server.execute(t, "x = bytearray(64 << 20)\nlen(x)", memory_mb=32)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["ok"], r.json()["error"]["type"]), (False, "MemoryError"))
        self.assertEqual(self.run_ok(t, "x = bytearray(64 << 20)\nlen(x)")["result"], str(64 << 20))
        # A session already holding more than the call's limit is refused, not cut short.
        self.error(409, "failed_precondition", "POST", "/v1/sessions/%s/execute" % t, {"code": "len(x)", "memory_mb": 32})
        self.assertEqual(self.run_ok(t, "len(x)")["result"], str(64 << 20))

    # ---- streaming

    def stream(self, thread_id, code):
        return self.req("POST", "/v1/sessions/%s/execute" % thread_id, {"code": code},
                        headers={"Accept": "text/event-stream"})

    def test_stream_ends_with_the_result_event(self):
        t = self.tid()
        r = self.stream(t, "print('a')\nimport sys\nprint('e', file=sys.stderr)\nprint('b')\n6 * 7")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["Content-Type"], "text/event-stream")
        events = parse_events(r.body)
        self.assertEqual(events[-1][0], "result", events)
        result = events[-1][1]
        self.assertEqual((result["ok"], result["result"], result["stdout"], result["stderr"]), (True, "42", "a\nb\n", "e\n"))
        self.assertEqual(result["session"]["thread_id"], t)
        # Whatever came before the result is output, in the order it was written.
        names = [e for e, _ in events[:-1]]
        self.assertTrue(set(names) <= {"stdout", "stderr"}, names)
        self.assertEqual("".join(d["text"] for e, d in events if e == "stdout"), "a\nb\n")
        self.assertEqual("".join(d["text"] for e, d in events if e == "stderr"), "e\n")
        # The state was saved as by a plain execution.
        self.assertEqual(self.run_ok(t, "6 * 7 + 1")["session"]["version"], result["session"]["version"] + 1)

    SHOW = ("import brig\n"
            "brig.show(b'\\x89PNG\\r\\n\\x1a\\n' + bytes(30))\n"
            "brig.show('<b>t</b>', mime='text/html')\n"
            "open('/home/user/out.csv', 'w').write('a,b\\n1,2\\n')\n")

    def test_execute_reports_shown_outputs_and_files_with_size_and_type(self):
        t = self.tid()
        j = self.run_ok(t, self.SHOW)
        self.assertEqual(len(j["display"]), 2, j)
        self.assertEqual(base64.b64decode(j["display"][0]["image/png"]), b"\x89PNG\r\n\x1a\n" + bytes(30))
        self.assertEqual(j["display"][1], {"text/html": "<b>t</b>"})
        self.assertIsNone(j["display_note"])
        self.assertEqual(j["session"]["files"], [{"path": "/home/user/out.csv", "size": 8, "content_type": "text/csv"}])
        # Nothing shown: an empty list.
        self.assertEqual(self.run_ok(t, "1")["display"], [])

    def test_stream_sends_display_events_before_the_result(self):
        t = self.tid()
        events = parse_events(self.stream(t, self.SHOW).body)
        names = [e for e, _ in events]
        self.assertEqual(names[-3:], ["display", "display", "result"], names)
        self.assertEqual(events[-2][1], {"data": {"text/html": "<b>t</b>"}})
        self.assertEqual(events[-1][1]["display"][1], {"text/html": "<b>t</b>"})

    def test_cleanup_route(self):
        r = self.req("POST", "/v1/cleanup", {"dry_run": True})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["dry_run"], True)
        self.assertEqual(self.req("POST", "/v1/cleanup", {"dry_run": "yes"}).status, 400)

    def test_stream_of_a_python_exception(self):
        t = self.tid()
        r = self.stream(t, "print('x')\nraise KeyError('k')")
        self.assertEqual(r.status, 200, r)
        events = parse_events(r.body)
        self.assertEqual(events[-1][0], "result")
        self.assertEqual(events[-1][1]["error"]["type"], "KeyError")

    def test_stream_sends_stdout_before_the_result(self):
        t = self.tid()
        conn = self.server.connection()
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if self.server.token:
            headers["Authorization"] = "Bearer " + self.server.token
        conn.request("POST", "/v1/sessions/%s/execute" % t,
                     json.dumps({"code": "import time\nprint('first', flush=True)\ntime.sleep(3)\nprint('second')\n'done'"}),
                     headers)
        res = conn.getresponse()
        self.assertEqual(res.status, 200)
        # Events, read one at a time, until "first\n" has come (a print may be several writes).
        events = []
        while "".join(d.get("text", "") for e, d in events if e == "stdout") != "first\n":
            block = b""
            while not block.endswith(b"\n\n"):
                line = res.readline()
                self.assertTrue(line, "the stream ended before 'first' came: %r" % events)
                block += line
            events += parse_events(block)
            self.assertEqual(events[-1][0], "stdout", events)
        # It came while the code was still running (it sleeps 3 s after the print).
        page = self.ok("GET", "/metrics").body.decode()
        self.assertGreaterEqual(metric(page, "brig_executions_in_flight"), 1, page)
        events += parse_events(res.read())
        conn.close()
        self.assertEqual(events[-1][0], "result", events)
        self.assertEqual({e for e, _ in events[:-1]}, {"stdout"}, events)
        self.assertEqual("".join(d["text"] for _, d in events[:-1]), "first\nsecond\n")
        result = events[-1][1]
        self.assertEqual((result["result"], result["stdout"]), ("'done'", "first\nsecond\n"))

    # ---- reset

    def test_reset_drops_variables_and_keeps_files(self):
        t = self.tid()
        self.run_ok(t, "v = 1\nopen('/home/user/keep.txt', 'w').write('kept')")
        self.assertEqual(self.ok("POST", "/v1/sessions/%s/reset" % t).json(), {"thread_id": t, "reset": True})
        r = self.server.execute(t, "v").json()
        self.assertFalse(r["ok"])
        self.assertEqual(r["error"]["type"], "NameError")
        self.assertEqual(self.run_ok(t, "open('/home/user/keep.txt').read()")["result"], "'kept'")
        self.error(404, "not_found", "POST", "/v1/sessions/%s/reset" % self.tid("-missing"))

    # ---- wheels

    @staticmethod
    def wheel(name, files, tag="py3-none-any"):
        """A wheel's bytes: files + dist-info (METADATA, WHEEL, RECORD with sha256)."""
        di = "%s-1.0.dist-info" % name
        contents = dict(files)
        contents[di + "/METADATA"] = "Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % name
        contents[di + "/WHEEL"] = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: %s\n" % tag
        record = ""
        for path, data in contents.items():
            data = data.encode() if isinstance(data, str) else data
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record += "%s,sha256=%s,%d\n" % (path, digest, len(data))
        contents[di + "/RECORD"] = record + di + "/RECORD,,\n"
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for path, data in contents.items():
                z.writestr(path, data)
        return out.getvalue()

    def test_pip_install_into_a_live_session(self):
        t = self.tid()
        # The session is live (in a worker, or here) and has already missed an import.
        self.run_ok(t, "try:\n    import hello_whl\nexcept ImportError:\n    pass\nx = 5")
        j = self.ok("POST", "/v1/sessions/%s/pip/install" % t,
                    self.wheel("hello_whl", {"hello_whl/__init__.py": "def f(v):\n    return 2 * v\n"})).json()
        self.assertEqual((j["name"], j["version"], j["replaced_version"], j["notes"]), ("hello_whl", "1.0", None, []))
        self.assertEqual(j["site_packages"], "/home/user/.local/lib/python3.11/site-packages")
        # The next execution keeps its variables and imports the package.
        self.assertEqual(self.run_ok(t, "import hello_whl\nhello_whl.f(x)")["result"], "10")
        packages = self.ok("GET", "/v1/sessions/%s/pip/packages" % t).json()["packages"]
        self.assertEqual([(p["name"], p["version"]) for p in packages], [("hello_whl", "1.0")])
        r = self.error(400, "invalid_argument", "POST", "/v1/sessions/%s/pip/install" % t,
                       self.wheel("fast", {"fast/_c.cpython-311-x86_64-linux-gnu.so": b"\x7fELF" + bytes(64)}))
        self.assertIn("compiled code", r.json()["error"]["message"])
        self.error(400, "invalid_argument", "POST", "/v1/sessions/%s/pip/install" % t, b"not a zip")
        self.assertEqual(self.ok("DELETE", "/v1/sessions/%s/pip/packages/hello-whl" % t).json()["name"], "hello_whl")
        self.error(404, "not_found", "DELETE", "/v1/sessions/%s/pip/packages/hello_whl" % t)
        self.assertEqual(self.ok("GET", "/v1/sessions/%s/pip/packages" % t).json(), {"packages": []})

    # ---- files under /v1

    def test_upload_and_download_raw_bytes(self):
        t = self.tid()
        data = bytes(range(256)) * 64 + b"\0\r\n\xff"
        info = self.put(t, "/tmp/blob.bin", data, "application/octet-stream")
        self.assertEqual((info["path"], info["size"]), ("/tmp/blob.bin", len(data)))
        r = self.ok("GET", "/v1/sessions/%s/files/tmp/blob.bin" % t)
        self.assertEqual(r.body, data)
        self.assertEqual(r.headers["Content-Type"], "application/octet-stream")
        self.assertEqual(int(r.headers["Content-Length"]), len(data))
        # A type the client gives is stored and served back; none is detected from the name.
        self.put(t, "/home/user/page.html", b"<p>hi</p>", "text/html; charset=utf-8")
        self.assertEqual(self.ok("GET", "/v1/sessions/%s/files/home/user/page.html" % t).headers["Content-Type"],
                         "text/html; charset=utf-8")
        self.assertEqual(self.put(t, "/home/user/data.csv", b"a,b\n1,2\n")["content_type"], "text/csv")
        # The guest sees the uploaded bytes.
        self.assertEqual(self.run_ok(t, "open('/tmp/blob.bin', 'rb').read() == bytes(range(256)) * 64 + b'\\0\\r\\n\\xff'")
                         ["result"], "True")
        # And the file the guest writes is downloaded as it wrote it.
        self.run_ok(t, "open('/home/user/out.bin', 'wb').write(bytes(range(255, -1, -1)))")
        self.assertEqual(self.ok("GET", "/v1/sessions/%s/files/home/user/out.bin" % t).body, bytes(range(255, -1, -1)))
        self.error(404, "not_found", "GET", "/v1/sessions/%s/files/home/user/nope" % t)
        self.error(404, "not_found", "GET", "/v1/sessions/%s/files/home/user/x" % self.tid("-missing"))

    def test_files_read_utf8_base64_offset_limit(self):
        t = self.tid()
        text = "héllo wörld\nline 2\n"
        self.put(t, "/home/user/notes.txt", text.encode())
        r = self.ok("POST", "/v1/sessions/%s/files:read" % t, {"path": "notes.txt"}).json()
        self.assertEqual(r["path"], "/home/user/notes.txt")
        self.assertEqual((r["encoding"], r["content"], r["size"], r["eof"]), ("utf-8", text, len(text.encode()), True))
        r = self.ok("POST", "/v1/sessions/%s/files:read" % t, {"path": "/home/user/notes.txt", "offset": 3, "limit": 4}).json()
        self.assertEqual((r["content"], r["offset"], r["bytes"], r["eof"]), ("llo ", 3, 4, False))
        r = self.ok("POST", "/v1/sessions/%s/files:read" % t, {"path": "notes.txt", "offset": 1000}).json()
        self.assertEqual((r["content"], r["bytes"], r["eof"]), ("", 0, True))
        binary = b"\x89PNG\r\n\x1a\n\0\xff\xfe" + bytes(range(200))
        self.put(t, "/tmp/pic.png", binary)
        r = self.ok("POST", "/v1/sessions/%s/files:read" % t, {"path": "/tmp/pic.png"}).json()
        self.assertEqual(r["encoding"], "base64")
        self.assertEqual(base64.b64decode(r["content"]), binary)
        self.assertEqual(r["content_type"], "image/png")
        r = self.ok("POST", "/v1/sessions/%s/files:read" % t, {"path": "/tmp/pic.png", "offset": 8, "limit": 3}).json()
        self.assertEqual(base64.b64decode(r["content"]), b"\0\xff\xfe")
        # A read cut in the middle of a UTF-8 character is base64 too: no byte is lost.
        r = self.ok("POST", "/v1/sessions/%s/files:read" % t, {"path": "notes.txt", "offset": 0, "limit": 2}).json()
        got = base64.b64decode(r["content"]) if r["encoding"] == "base64" else r["content"].encode()
        self.assertEqual(got, text.encode()[:2])
        self.error(404, "not_found", "POST", "/v1/sessions/%s/files:read" % t, {"path": "nope.txt"})
        for body in [{}, {"path": 1}, {"path": "notes.txt", "offset": -1}, {"path": "notes.txt", "limit": "2"},
                     {"path": "/home/user/../etc/passwd"}]:
            self.error(400, None, "POST", "/v1/sessions/%s/files:read" % t, body)

    def test_files_write_utf8_and_base64(self):
        t = self.tid()
        r = self.ok("POST", "/v1/sessions/%s/files:write" % t, {"path": "w.txt", "content": "ünïcode ✓"}).json()
        self.assertEqual((r["path"], r["size"]), ("/home/user/w.txt", len("ünïcode ✓".encode())))
        self.assertEqual(self.ok("GET", "/v1/sessions/%s/files/home/user/w.txt" % t).body, "ünïcode ✓".encode())
        blob = bytes(range(256))
        r = self.ok("POST", "/v1/sessions/%s/files:write" % t,
                    {"path": "/tmp/b.dat", "content": base64.b64encode(blob).decode(), "encoding": "base64",
                     "content_type": "application/x-test"}).json()
        self.assertEqual((r["size"], r["content_type"]), (256, "application/x-test"))
        got = self.ok("GET", "/v1/sessions/%s/files/tmp/b.dat" % t)
        self.assertEqual(got.body, blob)
        self.assertEqual(got.headers["Content-Type"], "application/x-test")
        self.assertEqual(self.run_ok(t, "open('/home/user/w.txt').read()")["result"], repr("ünïcode ✓"))
        for body in [{"path": "x"}, {"content": "x"}, {"path": "x", "content": 5},
                     {"path": "x", "content": "!!!", "encoding": "base64"},
                     {"path": "x", "content": "x", "encoding": "latin-1"}, {"path": "/a/./b", "content": "x"}]:
            self.error(400, None, "POST", "/v1/sessions/%s/files:write" % t, body)

    def test_files_edit(self):
        t = self.tid()
        self.put(t, "/home/user/e.txt", b"a b a c")
        edit = "/v1/sessions/%s/files:edit" % t
        r = self.ok("POST", edit, {"path": "e.txt", "old_text": "b", "new_text": "B"}).json()
        self.assertEqual(r, {"path": "/home/user/e.txt", "replacements": 1})
        self.error(409, None, "POST", edit, {"path": "e.txt", "old_text": "a", "new_text": "A"})
        self.assertEqual(self.ok("GET", "/v1/sessions/%s/files/home/user/e.txt" % t).body, b"a B a c")
        r = self.ok("POST", edit, {"path": "e.txt", "old_text": "a", "new_text": "A", "replace_all": True}).json()
        self.assertEqual(r["replacements"], 2)
        self.assertEqual(self.ok("GET", "/v1/sessions/%s/files/home/user/e.txt" % t).body, b"A B A c")
        self.error(404, "not_found", "POST", edit, {"path": "e.txt", "old_text": "zzz", "new_text": "y"})
        self.error(404, "not_found", "POST", edit, {"path": "none.txt", "old_text": "a", "new_text": "y"})
        self.error(400, None, "POST", edit, {"path": "e.txt", "old_text": "", "new_text": "y"})
        self.error(400, None, "POST", edit, {"path": "e.txt", "old_text": "A", "new_text": "y", "replace_all": "yes"})
        self.error(400, None, "POST", edit, {"path": "e.txt", "new_text": "y"})

    def test_files_glob_and_grep(self):
        t = self.tid()
        self.put(t, "/home/user/src/a.py", b"import os\nprint('needle')\n")
        self.put(t, "/home/user/src/b.py", b"x = 1\n")
        self.put(t, "/home/user/readme.md", b"a NEEDLE here\nand a needle there\n")
        glob = "/v1/sessions/%s/files:glob" % t
        paths = [f["path"] for f in self.ok("POST", glob, {"pattern": "src/*.py"}).json()["files"]]
        self.assertEqual(paths, ["/home/user/src/a.py", "/home/user/src/b.py"])
        paths = [f["path"] for f in self.ok("POST", glob, {"pattern": "/home/**/*.md"}).json()["files"]]
        self.assertEqual(paths, ["/home/user/readme.md"])
        self.assertEqual(self.ok("POST", glob, {"pattern": "/nothing/*"}).json()["files"], [])
        self.error(400, None, "POST", glob, {"pattern": 7})
        self.error(400, None, "POST", glob, {})

        grep = "/v1/sessions/%s/files:grep" % t
        r = self.ok("POST", grep, {"pattern": "needle"}).json()
        found = {f["path"]: [(l["line"], l["text"]) for l in f["lines"]] for f in r["files"]}
        self.assertEqual(found, {"/home/user/src/a.py": [(2, "print('needle')")],
                                 "/home/user/readme.md": [(2, "and a needle there")]})
        self.assertFalse(r["truncated"])
        r = self.ok("POST", grep, {"pattern": "needle", "case_insensitive": True, "mode": "count"}).json()
        self.assertEqual({f["path"]: f["count"] for f in r["files"]},
                         {"/home/user/src/a.py": 1, "/home/user/readme.md": 2})
        r = self.ok("POST", grep, {"pattern": "needle", "path_glob": "src/*.py", "mode": "files_with_matches"}).json()
        self.assertEqual([f["path"] for f in r["files"]], ["/home/user/src/a.py"])
        self.assertNotIn("lines", r["files"][0])
        self.error(400, None, "POST", grep, {"pattern": "needle", "mode": "everything"})
        self.error(400, None, "POST", grep, {"pattern": "("})
        self.error(400, None, "POST", grep, {"pattern": "x", "max_lines": 0})

    def test_files_list_by_prefix_and_delete(self):
        t = self.tid()
        self.put(t, "/tmp/t1", b"1")
        self.put(t, "/tmp/sub/t2", b"22")
        self.put(t, "/home/user/h", b"333")
        files = self.ok("GET", "/v1/sessions/%s/files" % t).json()["files"]
        self.assertEqual([(f["path"], f["size"]) for f in files], [("/home/user/h", 3), ("/tmp/sub/t2", 2), ("/tmp/t1", 1)])
        self.assertTrue(all({"content_type", "created_at", "modified_at"} <= set(f) for f in files))
        files = self.ok("GET", "/v1/sessions/%s/files?prefix=/tmp/" % t).json()["files"]
        self.assertEqual([f["path"] for f in files], ["/tmp/sub/t2", "/tmp/t1"])
        files = self.ok("GET", "/v1/sessions/%s/files?prefix=%%2Ftmp%%2Fsub" % t).json()["files"]
        self.assertEqual([f["path"] for f in files], ["/tmp/sub/t2"])
        self.error(400, None, "GET", "/v1/sessions/%s/files?prefix=tmp" % t)
        self.assertEqual(self.ok("DELETE", "/v1/sessions/%s/files/tmp/t1" % t).json(), {"path": "/tmp/t1", "deleted": True})
        self.error(404, "not_found", "GET", "/v1/sessions/%s/files/tmp/t1" % t)
        self.error(404, "not_found", "DELETE", "/v1/sessions/%s/files/tmp/t1" % t)
        self.assertEqual([f["path"] for f in self.ok("GET", "/v1/sessions/%s/files" % t).json()["files"]],
                         ["/home/user/h", "/tmp/sub/t2"])
        # The guest no longer sees it.
        self.assertEqual(self.run_ok(t, "import os\nos.path.exists('/tmp/t1'), os.path.exists('/tmp/sub/t2')")["result"],
                         "(False, True)")
        self.error(404, "not_found", "GET", "/v1/sessions/%s/files" % self.tid("-missing"))

    # ---- expiry

    def test_expired_session_is_410(self):
        t = self.tid()
        self.run_ok(t, "kept = 'yes'\nopen('/home/user/f.txt', 'w').write('f')")
        self.expire(t)
        r = self.error(410, "session_expired", "POST", "/v1/sessions/%s/execute" % t, {"code": "kept"})
        self.assertIn("expire", r.json()["error"]["message"])
        self.error(410, "session_expired", "POST", "/v1/sessions/%s/files:read" % t, {"path": "f.txt"})
        self.error(410, "session_expired", "GET", "/v1/sessions/%s/files/home/user/f.txt" % t)
        self.error(410, "session_expired", "GET", "/files/%s/home/user/f.txt" % t)
        self.error(410, "session_expired", "PUT", "/v1/sessions/%s/files/home/user/g.txt" % t, b"g")
        self.assertTrue(self.ok("GET", "/v1/sessions/" + t).json()["expired"])
        # Extending revives it, state and files intact.
        self.assertFalse(self.ok("POST", "/v1/sessions/%s/extend" % t, {"days": 1}).json()["expired"])
        self.assertEqual(self.run_ok(t, "kept, open('/home/user/f.txt').read()")["result"], "('yes', 'f')")

    # ---- the file server

    def test_health(self):
        r = self.server.request("GET", "/health", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "ok", "store": self.health_store()})

    def health_store(self):
        return self.store_name if self.store_name == "sqlite" else "postgresql"

    def test_file_server_lists_paths(self):
        t = self.tid()
        self.put(t, "/tmp/x.txt", b"x")
        self.put(t, "/home/user/a/b.txt", b"b")
        self.run_ok(t, "import os\nos.makedirs('/home/user/empty_dir')")
        r = self.ok("GET", "/files/" + t)
        self.assertEqual(r.json(), ["/home/user/a/b.txt", "/tmp/x.txt"])
        self.assertEqual(self.ok("GET", "/files/%s?prefix=/tmp/" % t).json(), ["/tmp/x.txt"])
        self.error(404, "not_found", "GET", "/files/" + self.tid("-missing"))

    def test_file_server_serves_with_the_stored_type_and_disposition(self):
        t = self.tid()
        self.put(t, "/home/user/report.json", b'{"a": 1}', "application/json")
        r = self.ok("GET", "/files/%s/home/user/report.json" % t)
        self.assertEqual(r.body, b'{"a": 1}')
        self.assertEqual(r.headers["Content-Type"], "application/json")
        self.assertEqual(r.headers["Content-Disposition"], "inline; filename*=UTF-8''report.json")
        r = self.ok("GET", "/files/%s/home/user/report.json?disposition=attachment" % t)
        self.assertEqual(r.headers["Content-Disposition"], "attachment; filename*=UTF-8''report.json")
        # A name with spaces and non-ASCII, percent-encoded in the URL and in the header.
        self.put(t, "/home/user/my r\u00e9sum\u00e9.txt", b"cv")
        r = self.ok("GET", "/files/%s/home/user/my%%20r%%C3%%A9sum%%C3%%A9.txt" % t)
        self.assertEqual(r.body, b"cv")
        self.assertEqual(r.headers["Content-Disposition"], "inline; filename*=UTF-8''my%20r%C3%A9sum%C3%A9.txt")

    def test_file_server_html_is_sandboxed(self):
        t = self.tid()
        page = b"<html><script>fetch('/v1/sessions').then(r => r.text()).then(alert)</script></html>"
        self.put(t, "/home/user/evil.html", page, "text/html")
        for path in ("/files/%s/home/user/evil.html" % t, "/v1/sessions/%s/files/home/user/evil.html" % t):
            r = self.ok("GET", path)
            self.assertEqual(r.body, page)
            self.assertEqual(r.headers["Content-Type"], "text/html")
            csp = [d.strip() for d in r.headers["Content-Security-Policy"].split(";")]
            self.assertIn("sandbox", csp)
            self.assertIn("default-src 'none'", csp)
            self.assertFalse(any(d.startswith("script-src") for d in csp), csp)
            self.assertEqual(r.headers["X-Content-Type-Options"], "nosniff")

    def test_file_server_range(self):
        t = self.tid()
        data = bytes((i * 7) % 251 for i in range(1000))
        self.put(t, "/tmp/r.bin", data)
        path = "/files/%s/tmp/r.bin" % t
        r = self.ok("GET", path, headers={"Range": "bytes=10-19"}, status=206)
        self.assertEqual((r.body, r.headers["Content-Range"]), (data[10:20], "bytes 10-19/1000"))
        self.assertEqual(r.headers["Content-Length"], "10")
        r = self.ok("GET", path, headers={"Range": "bytes=-5"}, status=206)
        self.assertEqual((r.body, r.headers["Content-Range"]), (data[-5:], "bytes 995-999/1000"))
        r = self.ok("GET", path, headers={"Range": "bytes=990-"}, status=206)
        self.assertEqual((r.body, r.headers["Content-Range"]), (data[990:], "bytes 990-999/1000"))
        r = self.ok("GET", path, headers={"Range": "bytes=995-5000"}, status=206)
        self.assertEqual((r.body, r.headers["Content-Range"]), (data[995:], "bytes 995-999/1000"))
        r = self.ok("GET", path, headers={"Range": "bytes=-5000"}, status=206)
        self.assertEqual(r.body, data)
        for bad in ("bytes=1000-1005", "bytes=5000-", "bytes=-0"):
            r = self.req("GET", path, headers={"Range": bad})
            self.assertEqual(r.status, 416, (bad, r))
            self.assertEqual(r.headers["Content-Range"], "bytes */1000")
        # Several ranges or another unit: the whole file.
        for whole in ("bytes=0-1,5-6", "items=0-1"):
            r = self.ok("GET", path, headers={"Range": whole})
            self.assertEqual(r.body, data)
        self.assertEqual(self.ok("GET", path).headers["Accept-Ranges"], "bytes")

    def test_file_server_etag_and_head(self):
        t = self.tid()
        self.put(t, "/tmp/e.txt", b"version one")
        path = "/files/%s/tmp/e.txt" % t
        full = self.ok("GET", path)
        etag = full.headers["ETag"]
        self.assertTrue(etag.startswith('"') and etag.endswith('"'), etag)
        r = self.ok("GET", path, headers={"If-None-Match": etag}, status=304)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers["ETag"], etag)
        self.ok("GET", path, headers={"If-None-Match": '"something-else"'})
        head = self.ok("HEAD", path)
        self.assertEqual(head.body, b"")
        self.assertEqual((head.headers["Content-Length"], head.headers["ETag"]), ("11", etag))
        self.assertEqual(head.headers["Content-Type"], full.headers["Content-Type"])
        self.assertEqual(head.headers["X-Content-Type-Options"], "nosniff")
        # A HEAD on keep-alive leaves the connection usable: the next answer is read whole.
        conn = self.server.connection()
        try:
            self.assertEqual(self.req("HEAD", path, conn=conn).status, 200)
            self.assertEqual(self.req("GET", path, conn=conn).body, b"version one")
        finally:
            conn.close()
        time.sleep(1.1)  # the ETag follows the modification time (microseconds); be sure it moves
        self.put(t, "/tmp/e.txt", b"version two")
        r = self.ok("GET", path, headers={"If-None-Match": etag})
        self.assertEqual(r.body, b"version two")
        self.assertNotEqual(r.headers["ETag"], etag)

    def test_large_file_downloads_intact(self):
        t = self.tid()
        size = 15 << 20
        data = hashlib.sha256(b"seed").digest() * (size // 32)
        data = bytes(b ^ (i & 0xFF) for i, b in enumerate(data[:1 << 16])) + data[1 << 16:]
        self.assertEqual(self.put(t, "/home/user/big.bin", data)["size"], size)
        for path in ("/files/%s/home/user/big.bin" % t, "/v1/sessions/%s/files/home/user/big.bin" % t):
            r = self.ok("GET", path)
            self.assertEqual(int(r.headers["Content-Length"]), size)
            self.assertEqual(len(r.body), size)
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), hashlib.sha256(data).hexdigest())
        # A range across several of the server's 1 MiB pieces.
        first, last = (1 << 20) - 7, 3 * (1 << 20) + 11
        r = self.ok("GET", "/files/%s/home/user/big.bin" % t, headers={"Range": "bytes=%d-%d" % (first, last)}, status=206)
        self.assertEqual(r.body, data[first:last + 1])

    def test_head_answers_have_no_body(self):
        # Two requests on one connection: were the HEAD answer followed by a body, those bytes
        # would be read as the start of the second answer.
        t = self.tid()
        self.put(t, "/tmp/h.txt", b"head body")
        auth = b"Authorization: Bearer %s\r\n" % self.server.token.encode() if self.server.token else b""
        for path in ("/health", "/v1/sessions", "/v1/sessions/" + t, "/files/" + t, "/files/%s/tmp/h.txt" % t,
                     "/files/%s/tmp/missing" % t, "/v1/sessions/%s/files/tmp/h.txt" % t, "/files/%s-missing/x" % t):
            raw = self.server.raw(b"HEAD %s HTTP/1.1\r\nHost: x\r\n%s\r\n"
                                  b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (path.encode(), auth))
            head, rest = raw.split(b"\r\n\r\n", 1)
            self.assertTrue(head.startswith(b"HTTP/1.1 "), raw[:300])
            self.assertIn(b"content-length: ", head.lower())
            self.assertTrue(rest.startswith(b"HTTP/1.1 200 OK\r\n"), (path, raw[:500]))
            self.assertTrue(rest.endswith(b'"status":"ok","store":"%s"}\n' % self.health_store().encode()), (path, rest[-200:]))

    def test_a_file_over_20_mib_is_413(self):
        t = self.tid()
        r = self.error(413, "quota_exceeded", "PUT", "/v1/sessions/%s/files/tmp/huge" % t, b"h" * ((20 << 20) + 1))
        self.assertIn("/tmp/huge", r.json()["error"]["message"])
        self.error(404, "not_found", "GET", "/v1/sessions/%s/files/tmp/huge" % t)

    # ---- metrics

    def test_metrics_count_executions(self):
        t = self.tid()
        before = self.ok("GET", "/metrics").body.decode()
        self.run_ok(t, "1")
        self.server.execute(t, "1 / 0")
        r = self.ok("GET", "/metrics")
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain"), r.headers)
        after = r.body.decode()
        for name, n in (('brig_executions_total{outcome="ok"}', 1), ('brig_executions_total{outcome="python_error"}', 1),
                        ("brig_execution_duration_seconds_count", 2)):
            self.assertEqual(metric(after, name) - metric(before, name), n, name)
        self.assertGreater(metric(after, 'brig_http_requests_total{class="2xx"}'),
                           metric(before, 'brig_http_requests_total{class="2xx"}'))
        for name in ("brig_live_sessions", "brig_executions_in_flight", "brig_worker_restarts_total",
                     "brig_open_connections", 'brig_execution_duration_seconds_bucket{le="+Inf"}',
                     "brig_store_duration_seconds_count", "brig_store_commit_duration_seconds_count",
                     "brig_store_committed_saves_total", "brig_stale_live_runs_total"):
            self.assertIn("\n" + name + " ", after)
        # On SQLite with worker processes this process commits the workers' saves: the one
        # execution that saved is counted there (the failed one saves nothing; an earlier
        # test's deferred save may land in between, hence at least).
        saves = metric(after, "brig_store_committed_saves_total") - metric(before, "brig_store_committed_saves_total")
        commits = (metric(after, "brig_store_commit_duration_seconds_count") -
                   metric(before, "brig_store_commit_duration_seconds_count"))
        if isinstance(self, SqliteStore) and not isinstance(self, InProcessMixin):
            self.assertGreaterEqual(saves, 1)
            self.assertGreaterEqual(commits, 1)
            self.assertLessEqual(commits, saves)
        else:
            self.assertEqual((saves, commits), (0, 0))
        self.assertIn("# TYPE brig_execution_duration_seconds histogram", after)


class TokensMixin:
    """With tokens: BRIG_TOKENS holds one for every thread; the client sends it."""
    client_token = harness.ADMIN_TOKEN

    @classmethod
    def server_env(cls):
        return {"BRIG_TOKENS": "# the tests' admin\n%s name=admin\n" % harness.ADMIN_TOKEN}


class StoreUrl:
    @classmethod
    def make_store(cls, home):
        cls.store_url = super().make_store(home)
        return cls.store_url


class SqliteApiTest(ApiCases, StoreUrl, SqliteStore, unittest.TestCase):
    pass


class SqliteApiTokensTest(TokensMixin, ApiCases, StoreUrl, SqliteStore, unittest.TestCase):
    pass


class PostgresApiTest(ApiCases, StoreUrl, PostgresStore, unittest.TestCase):
    pass


class PostgresApiTokensTest(TokensMixin, ApiCases, StoreUrl, PostgresStore, unittest.TestCase):
    pass


class InProcessMixin:
    """Executions on threads of the server's own process (--workers 0); the other classes use
    the default, worker processes. Quick non-durable ones on the I/O threads (--inline-io)."""

    @classmethod
    def server_flags(cls):
        return ["--workers", "0", "--inline-io"]


class SqliteApiInProcessTest(InProcessMixin, ApiCases, StoreUrl, SqliteStore, unittest.TestCase):
    pass


class PostgresApiInProcessTokensTest(InProcessMixin, TokensMixin, ApiCases, StoreUrl, PostgresStore, unittest.TestCase):
    pass


if __name__ == "__main__":
    unittest.main()
