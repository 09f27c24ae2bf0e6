"""A `brig serve` under test: started on 127.0.0.1 with a free port, driven over HTTP
(http.client) or raw sockets, stopped with SIGTERM.

    server = harness.BrigServer(store_url, home, flags=["--header-timeout", "1"],
                                env={"BRIG_TOKENS": "..."}, token="...")
    r = server.request("POST", "/v1/sessions/t/execute", {"code": "1 + 1"})
    r.status, r.json()["result"], r.headers["X-Request-Id"]
    server.stop()  # SIGTERM; asserts nothing, returns the exit status

Its stderr (the URL line, then one JSON line per request) goes to a file in `home`, read by
log_lines(). Stores: SqliteStore and PostgresStore are mixins that a test class combines
with its cases (tests/e2e/test_sessions_files.py does the same for the CLI).
"""
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import pg_server  # noqa: E402

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/brig"))
# Where the servers' homes go: $BRIG_HOME (the build tree under ctest), else /tmp.
HOME_ROOT = os.environ.get("BRIG_HOME") or tempfile.gettempdir()

# Tokens of the format src/server/auth.h documents.
ADMIN_TOKEN = "admin-token-0123456789abcdef"
# The link key of every server here (BRIG_LINK_KEY), so that tests can sign links.
LINK_KEY = "test-link-key-" + "k" * 40

_UNSET = object()


def make_home(prefix):
    os.makedirs(HOME_ROOT, exist_ok=True)
    return tempfile.mkdtemp(prefix="brig-servertest-%s-" % prefix, dir=HOME_ROOT)


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage: case-insensitive
        self.body = body

    def json(self):
        return json.loads(self.body)

    def error_code(self):
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.reason, self.body[:300])


class BrigServer:
    def __init__(self, store_url, home, flags=(), env=None, token=None, listen="127.0.0.1:0"):
        self.home = home
        self.token = token  # sent by request() unless told otherwise
        self.log_path = os.path.join(home, "serve-%d.log" % time.monotonic_ns())
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ, BRIG_HOME=home, BRIG_LINK_KEY=LINK_KEY)
        for name in ("BRIG_TOKENS", "BRIG_DB"):
            full_env.pop(name, None)
        full_env.update(env or {})
        argv = [BRIG, "serve", "--listen", listen]
        self.store_url = store_url
        if store_url:
            argv += ["--db", store_url]
        self.proc = subprocess.Popen(argv + list(flags), env=full_env, stdout=subprocess.DEVNULL, stderr=self._log)
        self.port = None
        deadline = time.monotonic() + 120
        while self.port is None:
            lines = self.stderr_text().splitlines()
            if lines:
                # The first line says where it listens: "brig serve: listening on http://H:P (store ...)".
                first = lines[0]
                if "listening on http://" not in first:
                    self.kill()
                    raise AssertionError("unexpected first line of brig serve: %r" % self.stderr_text())
                self.host, port = first.split("http://", 1)[1].split()[0].rsplit(":", 1)
                self.port = int(port)
                break
            if self.proc.poll() is not None:
                raise AssertionError("brig serve exited with %d: %s" % (self.proc.returncode, self.stderr_text()))
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("brig serve did not start: " + self.stderr_text())
            time.sleep(0.02)

    # ---- output

    def stderr_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        """The JSON request log: every stderr line that is a JSON object."""
        out = []
        for line in self.stderr_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait_for_stderr(self, text, timeout=30):
        """Waits for `text` on stderr, which the server writes in batches (up to 50 ms late)."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr_text():
            if time.monotonic() > deadline:
                raise AssertionError("%r not on stderr: %r" % (text, self.stderr_text()[-3000:]))
            time.sleep(0.02)

    def wait_for_log(self, request_id, timeout=30):
        """The log line of `request_id` (it is written once the answer is on the wire)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                if line.get("request_id") == request_id:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError("no log line for request %s in %r" % (request_id, self.stderr_text()[-3000:]))
            time.sleep(0.02)

    # ---- HTTP

    def connection(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, token=_UNSET, timeout=120, conn=None):
        """One request on a new connection (or `conn`). body: dict/list (JSON), bytes or str."""
        hdrs = {}
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        token = self.token if token is _UNSET else token
        if token:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        own = conn is None
        if own:
            conn = self.connection(timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            res = conn.getresponse()
            raw = res.read()
            return Response(res.status, res.reason, res.headers, raw)
        finally:
            if own:
                conn.close()

    def execute(self, thread_id, code, **extra):
        return self.request("POST", "/v1/sessions/%s/execute" % thread_id, dict(code=code, **extra))

    def raw(self, data, timeout=10, read=True):
        """Sends bytes on a new socket and reads until the server closes it (or `timeout`)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            if data:
                s.sendall(data)
            if not read:
                return b""
            return read_until_closed(s, timeout)
        finally:
            s.close()

    def alive(self):
        """The server still answers an ordinary request (after an attack)."""
        r = self.request("GET", "/health", token=None, timeout=30)
        return r.status == 200 and r.json()["status"] == "ok"

    # ---- lifecycle

    def stop(self, timeout=60):
        """SIGTERM, then the exit status (the process is killed if it does not exit in time)."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.kill()
                    raise AssertionError("brig serve did not exit on SIGTERM: " + self.stderr_text()[-3000:])
            return self.proc.returncode
        finally:
            self._log.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def read_until_closed(sock, timeout):
    """Everything the peer sends until it closes the connection; raises socket.timeout if it
    does not close within `timeout`."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("the server did not close the connection; got %r" % b"".join(chunks)[:500])
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def parse_response(raw):
    """(status, headers dict with lower-case names, body) of the first response in `raw`."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def status_of(raw):
    if not raw.startswith(b"HTTP/1."):
        return None
    return int(raw.split(b" ", 2)[1])


# ---- stores

_pg = None


def postgres():
    """The shared PostgreSQL of this process (None when BRIG_SKIP_POSTGRES=1)."""
    global _pg
    if _pg is None:
        _pg = pg_server.shared()
    return _pg


class SqliteStore:
    """Mixin: the embedded SQLite store, a file in the server's home."""
    store_name = "sqlite"

    @classmethod
    def make_store(cls, home):
        cls.sqlite_path = os.path.join(home, "brig.db")
        return "sqlite:" + cls.sqlite_path

    @classmethod
    def expire(cls, thread_id):
        """Moves the session's expiry into the past, behind the running server's back."""
        db = sqlite3.connect(cls.sqlite_path, timeout=30)
        try:
            with db:
                n = db.execute("UPDATE brig_sessions SET expires_at = 0 WHERE thread_id = ?", (thread_id,)).rowcount
        finally:
            db.close()
        assert n == 1, "no session %r to expire" % thread_id


class PostgresStore:
    """Mixin: a fresh database on the shared PostgreSQL (skipped when BRIG_SKIP_POSTGRES=1)."""
    store_name = "postgres"

    @classmethod
    def make_store(cls, home):
        pg = postgres()
        if pg is None:
            raise unittest.SkipTest("BRIG_SKIP_POSTGRES=1")
        cls.pg_url = pg.database()
        return cls.pg_url

    @classmethod
    def expire(cls, thread_id):
        pg = postgres()
        db = cls.pg_url.split("///", 1)[1].split("?", 1)[0]
        p = subprocess.run([pg.bin + "/psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", pg.dir, "-p", "5432",
                            "-U", "postgres", "-d", db, "-c",
                            "UPDATE brig_sessions SET expires_at = 0 WHERE thread_id = '%s' RETURNING 1"
                            % thread_id.replace("'", "''")],
                           check=True, capture_output=True, timeout=60)
        assert p.stdout.strip() == b"1", "no session %r to expire: %r" % (thread_id, p.stdout)


class ServerClass:
    """Mixin for a TestCase class with one server for all its tests.

    A subclass sets flags / tokens (server_flags(), server_env(), client_token) and mixes in
    a store. setUpClass starts the server; tearDownClass stops it with SIGTERM and checks
    that it exited 0."""
    client_token = None

    @classmethod
    def server_flags(cls):
        return []

    @classmethod
    def server_env(cls):
        return {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.home = make_home(cls.__name__)
        try:
            cls.server = BrigServer(cls.make_store(cls.home), cls.home, flags=cls.server_flags(),
                                    env=cls.server_env(), token=cls.client_token)
        except BaseException:
            shutil.rmtree(cls.home, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        text = cls.server.stderr_text()
        super().tearDownClass()
        if rc != 0:
            raise AssertionError("brig serve exited with %r on SIGTERM: %s" % (rc, text[-3000:]))
        shutil.rmtree(cls.home, ignore_errors=True)

    def tid(self, suffix=""):
        """A thread_id of its own for each test (the tests of a class share one server)."""
        return (self._testMethodName[5:] + suffix).replace("_", "-")[:200]
