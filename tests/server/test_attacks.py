"""Attacks on `brig serve`'s HTTP surface (issue #10): path traversal in every encoding,
oversized requests, slow clients, request smuggling, thread_ids that are not names, too many
executions and too many connections. After each, the server still answers.

Traversal runs on SQLite and PostgreSQL (it reaches the store); the HTTP bounds do not touch
the store and run on SQLite only.
"""
import concurrent.futures
import json
import socket
import time
import unittest
import urllib.parse

import harness
from harness import ServerClass, SqliteStore, PostgresStore, parse_response, read_until_closed, status_of

SECRET = b"TOPSECRET-of-the-victim"


class TraversalCases(ServerClass):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        for t, path, data in (("victim", "/home/user/secret.txt", SECRET), ("victim", "/tmp/secret.txt", SECRET),
                              ("att", "/home/user/a.txt", b"mine"), ("att", "/tmp/t.txt", b"mine too")):
            r = s.request("PUT", "/v1/sessions/%s/files%s" % (t, path), data)
            assert r.status == 200, r

    # Paths that try to leave session "att" (for the victim's files or the host's).
    ESCAPES = [
        "/../victim/home/user/secret.txt",
        "/home/user/../../../victim/home/user/secret.txt",
        "/home/../../victim/home/user/secret.txt",
        "/%2e%2e/victim/home/user/secret.txt",
        "/%2E%2E/%2E%2E/victim/home/user/secret.txt",
        "/home/user/%2e%2e/%2e%2e/%2e%2e/victim/home/user/secret.txt",
        "/..%2fvictim%2fhome%2fuser%2fsecret.txt",
        "/home/user/..%2f..%2f..%2fvictim/home/user/secret.txt",
        "/home%2fuser%2f..%2f..%2f..%2fvictim%2fhome%2fuser%2fsecret.txt",
        "/%2e%2e%2fvictim/home/user/secret.txt",
        "/.%2e/victim/home/user/secret.txt",
        "/home/user/a.txt%00/../../../victim/home/user/secret.txt",
        "/home/user/secret.txt%00",
        "/home/user/a.txt%00.png",
        "/%00/home/user/a.txt",
        "/home/user/./a.txt",
        "/home/user/%2e/a.txt",
        "//home/user/a.txt",
        "/home//user/a.txt",
        "/home/user/a.txt/",
        "/home/user/a.txt/..",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/home/user/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "/home/user/%ff%fe",
        "/home/user/%",
        "/home/user/%2",
        "/home/user/%zz",
    ]
    # Names, not escapes. Double encoding: decoded once, "%2e%2e" is an ordinary name of six
    # characters (a second decoding would make it ".."). A backslash is an ordinary character
    # (names/path_rules.h): "..\\x" is one name, not a step up.
    LITERAL = [
        ("/%252e%252e/victim/home/user/secret.txt", "/%2e%2e/victim/home/user/secret.txt"),
        ("/home/user/%252e%252e%252fvictim%252fsecret.txt", "/home/user/%2e%2e%2fvictim%2fsecret.txt"),
        ("/home/user/..%252f..%252fvictim", "/home/user/..%2f..%2fvictim"),
        ("/..\\..\\victim\\home\\user\\secret.txt", "/..\\..\\victim\\home\\user\\secret.txt"),
        ("/home/user/..%5c..%5c..%5cvictim%5chome%5cuser%5csecret.txt", "/home/user/..\\..\\..\\victim\\home\\user\\secret.txt"),
        ("/home/user/%5c..%5c..%5c/secret.txt", "/home/user/\\..\\..\\/secret.txt"),
    ]
    # Thread parts that try to name the victim through the attacker's prefix.
    THREAD_ESCAPES = ["att%2f..%2fvictim", "att%2f%2e%2e%2fvictim", "..%2fvictim", "%2e%2e", "att%00victim",
                      "att/..", "att%5c..%5cvictim", "%252e%252e%252fvictim", ".", "%2e"]

    def assert_refused(self, method, path, body=None):
        r = self.server.request(method, path, body)
        self.assertIn(r.status, (400, 404, 405), (method, path, r))
        self.assertNotIn(SECRET, r.body, (method, path))
        self.assertNotIn(b"root:", r.body, (method, path))
        if method != "HEAD":
            self.assertTrue(r.error_code(), (method, path, r))
        return r

    def test_traversal_in_the_file_server(self):
        # The session's own /etc/passwd (a path like any other) is not the host's.
        self.assertEqual(self.server.request("GET", "/files/att/etc/passwd").status, 404)
        for p in self.ESCAPES:
            self.assert_refused("GET", "/files/att" + p)
            self.assert_refused("HEAD", "/files/att" + p)
        for t in self.THREAD_ESCAPES:
            self.assert_refused("GET", "/files/%s/home/user/secret.txt" % t)
            self.assert_refused("GET", "/files/%s" % t)
        self.assertTrue(self.server.alive())

    def test_double_encoding_and_backslashes_are_names(self):
        for url_path, name in self.LITERAL:
            for prefix in ("/files/att", "/v1/sessions/att/files"):
                self.assert_refused("GET", prefix + url_path)  # 404: no such file in att
            r = self.server.request("PUT", "/v1/sessions/att/files" + url_path, b"literal")
            self.assertEqual((r.status, r.json()["path"]), (200, name), r)
            for prefix in ("/files/att", "/v1/sessions/att/files"):
                self.assertEqual(self.server.request("GET", prefix + url_path).body, b"literal")
            self.assertEqual(self.server.request("DELETE", "/v1/sessions/att/files" + url_path).status, 200)
        self.assertEqual(self.server.request("GET", "/files/victim/home/user/secret.txt").body, SECRET)
        self.assertEqual(self.server.request("GET", "/files/att").json(), ["/home/user/a.txt", "/tmp/t.txt"])

    def test_traversal_in_the_api(self):
        for p in self.ESCAPES:
            self.assert_refused("GET", "/v1/sessions/att/files" + p)
            self.assert_refused("PUT", "/v1/sessions/att/files" + p, b"overwritten")
            self.assert_refused("DELETE", "/v1/sessions/att/files" + p)
        for t in self.THREAD_ESCAPES:
            self.assert_refused("GET", "/v1/sessions/%s/files/home/user/secret.txt" % t)
            self.assert_refused("GET", "/v1/sessions/%s" % t)
            self.assert_refused("POST", "/v1/sessions/%s/files:read" % t, {"path": "/home/user/secret.txt"})
            self.assert_refused("DELETE", "/v1/sessions/%s" % t)
        # Paths inside JSON bodies go through the same rules.
        for p in ("../victim/home/user/secret.txt", "/home/user/../../victim/home/user/secret.txt", "/home/user/./a.txt",
                  "/home/user/a.txt\u0000", "..", "/", ""):
            self.assert_refused("POST", "/v1/sessions/att/files:read", {"path": p})
            self.assert_refused("POST", "/v1/sessions/att/files:write", {"path": p, "content": "overwritten"})
        for pattern in ("/**", "../**", "/../**", "/home/**/../../**"):
            r = self.server.request("POST", "/v1/sessions/att/files:glob", {"pattern": pattern})
            self.assertNotIn(b"secret", r.body, (pattern, r))
        r = self.server.request("POST", "/v1/sessions/att/files:grep", {"pattern": "TOPSECRET", "path_glob": "/**"})
        self.assertEqual(r.json()["files"], [], r)
        # The victim's files are as they were; the attacker's too.
        for t, path, data in (("victim", "/home/user/secret.txt", SECRET), ("att", "/home/user/a.txt", b"mine")):
            self.assertEqual(self.server.request("GET", "/files/%s%s" % (t, path)).body, data)
        listing = self.server.request("GET", "/files/att").json()
        self.assertEqual(listing, ["/home/user/a.txt", "/tmp/t.txt"])
        self.assertTrue(self.server.alive())

    def test_traversal_in_the_guest_cannot_reach_the_other_session(self):
        r = self.server.execute("att", "import os\n"
                                       "found = []\n"
                                       "for p in ['/home/user/../../victim/home/user/secret.txt', '/../victim/tmp/secret.txt',\n"
                                       "          '/tmp/../../../tmp/secret.txt']:\n"
                                       "    try:\n"
                                       "        found.append(open(p).read())\n"
                                       "    except OSError as e:\n"
                                       "        found.append(type(e).__name__)\n"
                                       "found")
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(b"TOPSECRET", r.body)

    def test_raw_targets_that_are_not_paths(self):
        for target in (b"*", b"files/att/home/user/a.txt", b"http://127.0.0.1/files/victim/home/user/secret.txt",
                       b"/files/att/home/user/a.txt#frag", b"/files/att/home/user/a.txt?%zz=1", b"/files/att/home/user/a%20b c",
                       b"/files/att/home/user/\x00", b"/files/att/home/user/\xff"):
            raw = self.server.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, _, body = parse_response(raw) if raw else (None, None, b"")
            self.assertIn(status, (400, 404, None), (target, raw[:300]))
            self.assertNotIn(SECRET, raw, target)
        self.assertTrue(self.server.alive())


class SqliteTraversalTest(TraversalCases, SqliteStore, unittest.TestCase):
    pass


class PostgresTraversalTest(TraversalCases, PostgresStore, unittest.TestCase):
    pass


def request_bytes(method, target, headers=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1"] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class HttpBoundsTest(ServerClass, SqliteStore, unittest.TestCase):
    """The bounds of src/server/http_server.h, on a server with small ones."""

    @classmethod
    def server_flags(cls):
        return ["--header-timeout", "1", "--body-timeout", "2", "--max-body-mb", "1", "--max-per-session", "1", "--timeout", "5"]

    def tearDown(self):
        self.assertTrue(self.server.alive(), "the server stopped answering")

    # ---- sizes

    def test_oversized_headers_are_431(self):
        for headers in (["X-Big: " + "a" * (20 << 10)], ["X-H%d: %s" % (i, "v" * 40) for i in range(600)],
                        ["Cookie: " + "c" * (40 << 10)]):
            raw = self.server.raw(request_bytes("GET", "/health", headers))
            self.assertEqual(status_of(raw), 431, raw[:200])
            self.assertIn(b"headers_too_large", raw)
        # Just under the bound is fine.
        raw = self.server.raw(request_bytes("GET", "/health", ["X-Big: " + "a" * (12 << 10), "Connection: close"]))
        self.assertEqual(status_of(raw), 200, raw[:200])

    def test_oversized_url_is_414(self):
        for target in ("/files/x/" + "a" * 9000, "/health?" + "q=1&" * 2500, "/v1/sessions/" + "%41" * 3000):
            raw = self.server.raw(request_bytes("GET", target))
            self.assertEqual(status_of(raw), 414, raw[:200])
        raw = self.server.raw(request_bytes("GET", "/health?" + "q" * 7000, ["Connection: close"]))
        self.assertEqual(status_of(raw), 200, raw[:200])

    def test_a_body_over_the_bound_is_413_before_it_is_sent(self):
        for extra in ([], ["Expect: 100-continue"]):
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            try:
                s.sendall(request_bytes("PUT", "/v1/sessions/big/files/tmp/big", ["Content-Length: %d" % (2 << 20)] + extra))
                # Nothing of the body is sent: the answer comes from the headers alone, then the close.
                raw = read_until_closed(s, 10)
            finally:
                s.close()
            self.assertEqual(status_of(raw), 413, raw[:200])
            self.assertIn(b"body_too_large", raw)
            self.assertNotIn(b"100 Continue", raw)
        # A chunked body that grows past the bound is cut off with 413 too.
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            s.sendall(request_bytes("PUT", "/v1/sessions/big/files/tmp/big", ["Transfer-Encoding: chunked"]))
            chunk = b"%x\r\n%s\r\n" % (64 << 10, b"z" * (64 << 10))
            try:
                for _ in range(40):
                    s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            raw = read_until_closed(s, 10)
        except ConnectionResetError:
            raw = b""
        finally:
            s.close()
        if raw:
            self.assertEqual(status_of(raw), 413, raw[:200])
        self.assertEqual(self.server.request("GET", "/v1/sessions/big/files/tmp/big").status, 404)
        # Just under the bound is stored.
        data = b"u" * ((1 << 20) - 100)
        self.assertEqual(self.server.request("PUT", "/v1/sessions/big/files/tmp/ok", data).status, 200)
        self.assertEqual(self.server.request("GET", "/v1/sessions/big/files/tmp/ok").body, data)

    def test_a_huge_chunk_size_is_413_not_a_closed_connection(self):
        # Past the body bound, past 2^64 (Beast cannot even parse it), and with leading zeros
        # (which are no size at all); each with the data of a first chunk before it.
        for size in (b"7fffffffffffffff", b"ffffffffffffffff", b"10000000000000000", b"f" * 40, b"0" * 30 + b"f" * 20):
            for first in (b"", b"3\r\nabc\r\n"):
                raw = self.server.raw(request_bytes("PUT", "/v1/sessions/huge/files/tmp/h", ["Transfer-Encoding: chunked"],
                                                    first + size + b"\r\nzzzz"))
                self.assertEqual(status_of(raw), 413, (size, first, raw[:200]))
                self.assertIn(b"body_too_large", raw)
        # A chunk-size that is not hex is a malformed body: 400, also said, not a silent close.
        raw = self.server.raw(request_bytes("PUT", "/v1/sessions/huge/files/tmp/h", ["Transfer-Encoding: chunked"], b"zz\r\nabc"))
        self.assertEqual(status_of(raw), 400, raw[:200])
        self.assertEqual(self.server.request("GET", "/v1/sessions/huge/files/tmp/h").status, 404)

    # ---- slow clients

    def test_slow_clients_are_cut_off_and_others_are_served_meanwhile(self):
        slow = []
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        idle = [socket.create_connection(("127.0.0.1", self.server.port), timeout=10) for _ in range(10)]
        # Each slow client sends a header byte now and then; the header timeout (1 s) counts
        # from the start of the request, so trickling does not extend it.
        closed_at = {}
        served = 0
        start = time.monotonic()
        while len(closed_at) < len(slow) + len(idle) and time.monotonic() - start < 8:
            for i, s in enumerate(slow + idle):
                if i in closed_at:
                    continue
                try:
                    if i < len(slow):
                        s.sendall(b"X")
                    s.setblocking(False)
                    try:
                        data = s.recv(4096)
                        if data == b"" or data.startswith(b"HTTP/"):
                            closed_at[i] = time.monotonic() - start
                    except BlockingIOError:
                        pass
                    finally:
                        s.setblocking(True)
                except (BrokenPipeError, ConnectionResetError):
                    closed_at[i] = time.monotonic() - start
            # Meanwhile an ordinary client is served.
            r = self.server.request("GET", "/health", timeout=5)
            self.assertEqual(r.status, 200)
            served += 1
            time.sleep(0.2)
        for s in slow + idle:
            s.close()
        self.assertEqual(len(closed_at), len(slow) + len(idle),
                         "connections still open after 8 s with --header-timeout 1: %d of %d"
                         % (len(slow) + len(idle) - len(closed_at), len(slow) + len(idle)))
        self.assertGreater(served, 0)

    def test_a_slow_body_is_cut_off(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            s.sendall(request_bytes("PUT", "/v1/sessions/slowbody/files/tmp/x", ["Content-Length: 1000"]) + b"abc")
            # Meanwhile the server answers others; after --body-timeout (2 s) it gives up on this one.
            self.assertTrue(self.server.alive())
            raw = read_until_closed(s, 8)
            self.assertIn(status_of(raw), (None, 408), raw[:200])
        finally:
            s.close()
        self.assertEqual(self.server.request("GET", "/v1/sessions/slowbody/files/tmp/x").status, 404)

    # ---- request smuggling

    def test_content_length_and_transfer_encoding_is_400_and_closed(self):
        smuggled = request_bytes("GET", "/health")
        raw = self.server.raw(request_bytes("POST", "/v1/sessions", ["Content-Length: %d" % (5 + len(smuggled)),
                                                                    "Transfer-Encoding: chunked"],
                                            b"0\r\n\r\n" + smuggled))
        self.assertEqual(status_of(raw), 400, raw[:300])
        self.assertEqual(raw.count(b"HTTP/1.1 "), 1, "one answer, then the connection is closed: %r" % raw)
        self.assertIn(b"connection: close", raw.lower())
        # The other order, and with the TE header spelled oddly.
        for headers in (["Transfer-Encoding: chunked", "Content-Length: 3"],
                        ["Content-Length: 3", "Transfer-Encoding: Chunked"],
                        ["Content-Length: 3", "transfer-encoding: chunked"]):
            raw = self.server.raw(request_bytes("POST", "/v1/sessions", headers, b"0\r\n\r\n"))
            self.assertEqual(status_of(raw), 400, (headers, raw[:300]))
            self.assertEqual(raw.count(b"HTTP/1.1 "), 1, raw)

    def test_transfer_encodings_other_than_chunked_are_400(self):
        for te in ("gzip", "gzip, chunked", "chunked, gzip", "identity", "chunked, chunked", "xchunked", "chunked;x=1"):
            raw = self.server.raw(request_bytes("POST", "/v1/sessions", ["Transfer-Encoding: " + te], b"0\r\n\r\n"))
            self.assertEqual(status_of(raw), 400, (te, raw[:300]))
            self.assertEqual(raw.count(b"HTTP/1.1 "), 1, raw)
        raw = self.server.raw(request_bytes("POST", "/v1/sessions", ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
                                            b"0\r\n\r\n"))
        self.assertEqual(status_of(raw), 400, raw[:300])

    def test_two_content_lengths_are_400(self):
        body = b'{"thread_id": "cl"}'
        for values in ((len(body), len(body) + 1), (len(body), len(body))):
            raw = self.server.raw(request_bytes("POST", "/v1/sessions", ["Content-Length: %d" % v for v in values], body))
            self.assertEqual(status_of(raw), 400, (values, raw[:300]))
            self.assertEqual(raw.count(b"HTTP/1.1 "), 1, raw)
        for cl in ("%d, %d" % (len(body), len(body)), "-1", "1x", "+19", "0x13", " "):
            raw = self.server.raw(request_bytes("POST", "/v1/sessions", ["Content-Length: " + cl], body))
            self.assertEqual(status_of(raw), 400, (cl, raw[:300]))
        self.assertEqual(self.server.request("GET", "/v1/sessions/cl").status, 404, "no request got through")

    def test_a_chunked_body_works(self):
        body = json.dumps({"path": "chunked.txt", "content": "sent in chunks"}).encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7)) + b"0\r\n\r\n"
        raw = self.server.raw(request_bytes("POST", "/v1/sessions/chunky/files:write",
                                            ["Transfer-Encoding: chunked", "Content-Type: application/json",
                                             "Connection: close"], chunks))
        self.assertEqual(status_of(raw), 200, raw[:300])
        binary = bytes(range(256)) * 10
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(binary[i:i + 1000]), binary[i:i + 1000])
                          for i in range(0, len(binary), 1000)) + b"0\r\n\r\n"
        raw = self.server.raw(request_bytes("PUT", "/v1/sessions/chunky/files/tmp/bin",
                                            ["Transfer-Encoding: chunked", "Connection: close"], chunks))
        self.assertEqual(status_of(raw), 200, raw[:300])
        self.assertEqual(self.server.request("GET", "/v1/sessions/chunky/files/home/user/chunked.txt").body, b"sent in chunks")
        self.assertEqual(self.server.request("GET", "/v1/sessions/chunky/files/tmp/bin").body, binary)

    def test_keep_alive_requests_on_one_connection_stay_apart(self):
        # Two requests in one write (pipelined): each is answered on its own, in order.
        first = request_bytes("POST", "/v1/sessions", ["Content-Length: 23", "Content-Type: application/json"],
                              b'{"thread_id": "pipe-1"}')
        second = request_bytes("GET", "/v1/sessions/pipe-1", ["Connection: close"])
        raw = self.server.raw(first + second)
        self.assertEqual(raw.count(b"HTTP/1.1 "), 2, raw)
        self.assertTrue(raw.startswith(b"HTTP/1.1 201"), raw[:200])
        self.assertIn(b"HTTP/1.1 200", raw)

    def test_garbage_is_400_not_a_crash(self):
        for junk in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET /health HTTP/1.1\r\nHost x\r\n\r\n",
                     b"GET /health HTTP/1.1\r\n: empty-name\r\n\r\n", b"GET /health HTTP/1.1\r\nX: \x00\r\n\r\n",
                     b"\r\n" * 1000, b"POST /v1/sessions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                     b"GET /health HTTP/1.1\r\n X-Folded: yes\r\n\r\n", b"G\xffT /health HTTP/1.1\r\n\r\n"):
            raw = self.server.raw(junk, timeout=10)
            # A malformed request is 400; one the parser reads leniently (a folded header) may be
            # answered; nothing crashes (tearDown checks the server).
            self.assertIn(status_of(raw), (200, 400, 404, None), (junk[:40], raw[:200]))

    # ---- names

    def test_a_thread_id_that_is_not_utf8_is_400(self):
        for t in ("%ff", "a%ffb", "%c0%ae", "%ed%a0%80", "%7f", "a%0ab", "%01"):
            for method, path, body in (("GET", "/v1/sessions/" + t, None),
                                       ("POST", "/v1/sessions/%s/execute" % t, {"code": "1"}),
                                       ("PUT", "/v1/sessions/%s/files/tmp/x" % t, b"x"),
                                       ("GET", "/v1/sessions/%s/files" % t, None),
                                       ("POST", "/v1/sessions/%s/files:read" % t, {"path": "/tmp/x"}),
                                       ("POST", "/v1/sessions/%s/extend" % t, {"days": 1}),
                                       ("GET", "/files/" + t, None),
                                       ("GET", "/files/%s/tmp/x" % t, None)):
                r = self.server.request(method, path, body)
                self.assertEqual(r.status, 400, (method, path, r))
                self.assertEqual(r.error_code(), "invalid_argument", (method, path, r))
        # Nor in a JSON body: invalid UTF-8 is not JSON.
        r = self.server.request("POST", "/v1/sessions", b'{"thread_id": "\xff"}', headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400, r)
        r = self.server.request("POST", "/v1/sessions", b'{"thread_id": "\\udcff"}', headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400, r)
        self.assertNotIn("/ff", [s["thread_id"] for s in self.server.request("GET", "/v1/sessions").json()["sessions"]])
        # Answered without harm: no worker died of one of these names (a file route's sync
        # of such a name once aborted its worker, whose other executions then failed).
        page = self.server.request("GET", "/metrics").body.decode()
        restarts = [float(l.split()[1]) for l in page.splitlines() if l.startswith("brig_worker_restarts_total ")]
        self.assertEqual(restarts, [0.0], "a worker died")

    def test_a_thread_id_over_255_bytes_is_400(self):
        for t in ("a" * 256, "\u00e9" * 128, "x" * 5000):
            q = "".join("%%%02X" % b for b in t.encode())
            for method, path, body in (("GET", "/v1/sessions/" + q, None),
                                       ("POST", "/v1/sessions/%s/execute" % q, {"code": "1"}),
                                       ("PUT", "/v1/sessions/%s/files/tmp/x" % q, b"x"),
                                       ("GET", "/files/%s/tmp/x" % q, None)):
                r = self.server.request(method, path, body)
                self.assertIn(r.status, (400, 414), (method, len(t), r))
                if r.status == 400:
                    self.assertEqual(r.error_code(), "invalid_argument")
            r = self.server.request("POST", "/v1/sessions", {"thread_id": t})
            self.assertEqual(r.status, 400, r)
        # 255 bytes is a name.
        r = self.server.execute("b" * 255, "'long name'")
        self.assertEqual((r.status, r.json()["result"]), (200, "'long name'"), r)
        r = self.server.execute(urllib.parse.quote("\u00e9" * 127 + "b"), "1")
        self.assertEqual(r.status, 200, r)

    # ---- executions

    def wait_in_flight(self, n):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            page = self.server.request("GET", "/metrics").body.decode()
            for line in page.splitlines():
                if line.startswith("brig_executions_in_flight ") and float(line.split()[1]) >= n:
                    return
            time.sleep(0.02)
        self.fail("no execution in flight")

    def test_max_per_session_is_429(self):
        t = "busy"
        self.assertEqual(self.server.execute(t, "import time").status, 200)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(self.server.execute, t, "time.sleep(2.5)\n'first'")
            self.wait_in_flight(1)
            second = self.server.execute(t, "'second'")
            self.assertEqual(second.status, 429, second)
            self.assertEqual(second.error_code(), "too_many_executions")
            self.assertEqual(second.headers["Retry-After"], "1")
            # Other sessions are not held up.
            self.assertEqual(self.server.execute(t + "-other", "'other'").status, 200)
            r = first.result(timeout=60)
        self.assertEqual((r.status, r.json()["result"]), (200, "'first'"), r)
        # The slot is free again.
        self.assertEqual(self.server.execute(t, "'third'").json()["result"], "'third'")

    def mcp_run(self, session_id, code):
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "run_python", "arguments": {"session_id": session_id, "code": code}}}
        r = self.server.request("POST", "/mcp", body, headers={"Accept": "application/json, text/event-stream"})
        self.assertEqual(r.status, 200, r)
        return r.json()["result"]

    def test_mcp_runs_count_towards_max_per_session(self):
        # MCP's run_python and /v1's execute share the bound (--max-per-session 1 here), both ways.
        t = "mcp-busy"
        self.assertEqual(self.server.execute(t, "import time").status, 200)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(self.server.execute, t, "time.sleep(2.5)\n'first'")
            self.wait_in_flight(1)
            refused = self.mcp_run(t, "'second'")
            self.assertTrue(refused["isError"], refused)
            self.assertIn("already has 1 executions running", refused["content"][0]["text"])
            self.assertEqual(first.result(timeout=60).json()["result"], "'first'")
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(self.mcp_run, t, "time.sleep(2.5)\n'mcp'")
            self.wait_in_flight(1)
            second = self.server.execute(t, "'second'")
            self.assertEqual((second.status, second.error_code()), (429, "too_many_executions"), second)
            self.assertFalse(first.result(timeout=60)["isError"])
        # The slots are free again.
        self.assertFalse(self.mcp_run(t, "'third'")["isError"])

    MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                   "io.modelcontextprotocol/clientCapabilities": {}}

    def test_mcp_headers_must_match_the_message(self):
        # 2026-07-28 (SEP-2243): MCP-Protocol-Version / Mcp-Method / Mcp-Name mirror the body;
        # a modern request must send them, and they must match (else 400, -32020 HeaderMismatch).
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": "list_sessions", "arguments": {}, "_meta": self.MODERN_META}}
        base = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28"}
        ok = dict(base, **{"Mcp-Method": "tools/call", "Mcp-Name": "list_sessions"})
        r = self.server.request("POST", "/mcp", body, headers=ok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["result"]["resultType"], "complete")
        for bad in ({}, {"Mcp-Method": "tools/call"}, {"Mcp-Method": "tools/list"},
                    {"Mcp-Method": "tools/call", "Mcp-Name": "run_python"},
                    {"Mcp-Method": "tools/call", "Mcp-Name": "list_sessions", "MCP-Protocol-Version": "2025-11-25"}):
            r = self.server.request("POST", "/mcp", body, headers=dict(base, **bad))
            self.assertEqual(r.status, 400, (bad, r))
            self.assertEqual((r.json()["id"], r.json()["error"]["code"]), (7, -32020), r)
        # Nothing ran for a refused request: no session was made by it (list_sessions is
        # read-only anyway; run_python refused the same way never executes).
        run = {"jsonrpc": "2.0", "id": 8, "method": "tools/call",
               "params": {"name": "run_python", "arguments": {"session_id": "hdr-refused", "code": "1"},
                          "_meta": self.MODERN_META}}
        r = self.server.request("POST", "/mcp", run, headers=dict(base, **{"Mcp-Method": "tools/call",
                                                                             "Mcp-Name": "list_sessions"}))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.server.request("GET", "/v1/sessions/hdr-refused").status, 404)
        # A legacy request (no _meta version) needs none of the headers.
        legacy = {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}
        self.assertEqual(self.server.request("POST", "/mcp", legacy, headers={"Accept": "application/json"}).status, 200)

    def test_mcp_modern_errors_have_their_http_status(self):
        hdrs = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28"}
        # Unsupported version (header): 400 and -32022 with the supported list.
        r = self.server.request("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                headers={"MCP-Protocol-Version": "1900-01-01", "Mcp-Method": "tools/list"})
        self.assertEqual((r.status, r.error_code()), (400, -32022), r)
        self.assertEqual(r.json()["error"]["data"]["requested"], "1900-01-01")
        self.assertIn("2026-07-28", r.json()["error"]["data"]["supported"])
        # Missing clientCapabilities: 400, -32602.
        r = self.server.request("POST", "/mcp", {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}, headers=dict(hdrs, **{"Mcp-Method": "tools/list"}))
        self.assertEqual((r.status, r.error_code()), (400, -32602), r)
        # An unknown method (ping is gone in 2026-07-28): 404, -32601.
        r = self.server.request("POST", "/mcp", {"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {
            "_meta": self.MODERN_META}}, headers=dict(hdrs, **{"Mcp-Method": "ping"}))
        self.assertEqual((r.status, r.error_code()), (404, -32601), r)
        # subscriptions/listen: an SSE stream with the acknowledgement, then the result.
        r = self.server.request("POST", "/mcp", {"jsonrpc": "2.0", "id": 4, "method": "subscriptions/listen", "params": {
            "_meta": self.MODERN_META, "notifications": {"toolsListChanged": True}}},
            headers=dict(hdrs, **{"Mcp-Method": "subscriptions/listen"}))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["Content-Type"].startswith("text/event-stream"), r.headers)
        events = [json.loads(line[len("data: "):]) for line in r.body.decode().splitlines() if line.startswith("data: ")]
        self.assertEqual([e.get("method") for e in events], ["notifications/subscriptions/acknowledged", None], events)
        self.assertEqual(events[0]["params"]["notifications"], {})
        self.assertEqual(events[1]["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 4)

    def test_the_server_timeout_fails_the_execution_and_keeps_the_session(self):
        t = "spin"
        version = self.server.execute(t, "z = 1").json()["session"]["version"]
        r = self.server.execute(t, "z = 2\nwhile True: pass")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertFalse(j["ok"])
        self.assertEqual(j["failure"]["kind"], "timeout")
        self.assertFalse(j["session"]["saved"])
        self.assertEqual(j["session"]["version"], version)
        after = self.server.execute(t, "z").json()
        self.assertEqual((after["result"], after["session"]["version"]), ("1", version + 1))


class ConnectionLimitTest(ServerClass, SqliteStore, unittest.TestCase):
    @classmethod
    def server_flags(cls):
        return ["--max-connections", "3", "--header-timeout", "60"]

    def test_too_many_connections_is_503(self):
        held = [socket.create_connection(("127.0.0.1", self.server.port), timeout=10) for _ in range(3)]
        try:
            # The server has accepted them (a request on each answers), and they stay open.
            for s in held:
                s.sendall(request_bytes("GET", "/health"))
                s.settimeout(10)
                self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200"))
            raw = self.server.raw(request_bytes("GET", "/health"))
            self.assertEqual(status_of(raw), 503, raw[:300])
            self.assertIn(b"retry-after: 1", raw.lower())
            self.assertIn(b'"busy"', raw)
        finally:
            for s in held:
                s.close()
        # Once they are closed, new ones are served.
        deadline = time.monotonic() + 30
        while True:
            raw = self.server.raw(request_bytes("GET", "/health", ["Connection: close"]))
            if status_of(raw) == 200:
                break
            self.assertLess(time.monotonic(), deadline, raw[:200])
            time.sleep(0.05)


if __name__ == "__main__":
    unittest.main()
