"""Authentication and authorization of `brig serve` (issue #10): bearer tokens from a file,
tokens limited to threads or to reading, signed file links, the request log, and the refusal
to listen beyond loopback without tokens. On SQLite and on PostgreSQL.
"""
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import time
import unittest

import harness
from harness import ADMIN_TOKEN, ServerClass, SqliteStore, PostgresStore

AGENT_TOKEN = "agent-token-aaaaaaaaaaaaaaaa"        # threads agent-a, job-*
READER_TOKEN = "reader-token-bbbbbbbbbbbbbbbb"      # agent-a, read-only
ALL_READER_TOKEN = "allreader-token-cccccccccccc"  # every thread, read-only
WRONG_TOKEN = "wrong-token-dddddddddddddddd"

TOKENS_FILE = """\
# brig serve tokens for the tests
{admin} name=admin
{agent}   threads=agent-a,job-* name=agent

{reader} threads=agent-a read-only name=reader
{allreader} read-only
""".format(admin=ADMIN_TOKEN, agent=AGENT_TOKEN, reader=READER_TOKEN, allreader=ALL_READER_TOKEN)

SECRET_THREAD = "secret-thread-9f3a"
SECRET_FILE = "/home/user/private-plans-7d1.txt"
SECRET_SIZE = 12345


def sign(key, thread_id, path, expires):
    """sig as src/server/signed_link.h documents it."""
    message = "brig-file-link-v1\n%s\n%s\n%d" % (thread_id, path, expires)
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def without_request_id(body):
    return re.sub(rb'"request_id":\s*"[^"]*"', b'"request_id":""', body)


class AuthCases(ServerClass):
    client_token = ADMIN_TOKEN

    @classmethod
    def server_flags(cls):
        path = os.path.join(cls.home, "tokens")
        with open(path, "w") as f:
            f.write(TOKENS_FILE)
        return ["--tokens", path]

    @classmethod
    def server_env(cls):
        # The link key is the one brig serve makes in $BRIG_HOME/link.key.
        return {"BRIG_LINK_KEY": "", "BRIG_TOKENS": "not-this-one-" + "x" * 20}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        for t in (SECRET_THREAD, "agent-a", "job-1", "other-thread"):
            r = s.request("POST", "/v1/sessions", {"thread_id": t, "metadata": {"who": "owner-of-" + t}})
            assert r.status == 201, r
        r = s.request("PUT", "/v1/sessions/%s/files%s" % (SECRET_THREAD, SECRET_FILE), b"s" * SECRET_SIZE)
        assert r.status == 200, r
        r = s.request("PUT", "/v1/sessions/agent-a/files/home/user/data.txt", b"needle in agent-a\n")
        assert r.status == 200, r
        r = s.execute("agent-a", "counter = 1")
        assert r.status == 200, r

    def req(self, method, path, body=None, token=None, **kw):
        return self.server.request(method, path, body, token=token, **kw)

    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.error_code(), code, r)
        self.assertTrue(r.headers["X-Request-Id"])

    # Every route that takes a thread, as (method, path, body, writes).
    def thread_routes(self, t):
        return [("GET", "/v1/sessions/" + t, None, False),
                ("DELETE", "/v1/sessions/" + t, None, True),
                ("POST", "/v1/sessions/%s/extend" % t, {"days": 1}, True),
                ("POST", "/v1/sessions/%s/reset" % t, None, True),
                ("POST", "/v1/sessions/%s/execute" % t, {"code": "1"}, True),
                ("POST", "/v1/sessions/%s/fork" % t, {"thread_id": "job-forked"}, True),
                ("GET", "/v1/sessions/%s/snapshot" % t, None, False),
                ("PUT", "/v1/sessions/%s/snapshot" % t, b"not a snapshot", True),
                ("GET", "/v1/sessions/%s/files" % t, None, False),
                ("GET", "/v1/sessions/%s/files%s" % (t, SECRET_FILE), None, False),
                ("HEAD", "/v1/sessions/%s/files%s" % (t, SECRET_FILE), None, False),
                ("PUT", "/v1/sessions/%s/files/tmp/x" % t, b"x", True),
                ("DELETE", "/v1/sessions/%s/files%s" % (t, SECRET_FILE), None, True),
                ("POST", "/v1/sessions/%s/files:read" % t, {"path": SECRET_FILE}, False),
                ("POST", "/v1/sessions/%s/files:write" % t, {"path": "/tmp/x", "content": "x"}, True),
                ("POST", "/v1/sessions/%s/files:edit" % t, {"path": SECRET_FILE, "old_text": "s", "new_text": "t"}, True),
                ("POST", "/v1/sessions/%s/files:glob" % t, {"pattern": "/**"}, False),
                ("POST", "/v1/sessions/%s/files:grep" % t, {"pattern": "s"}, False),
                ("GET", "/files/" + t, None, False),
                ("GET", "/files/%s%s" % (t, SECRET_FILE), None, False),
                ("HEAD", "/files/%s%s" % (t, SECRET_FILE), None, False)]

    def assert_secret_untouched(self):
        r = self.req("GET", "/v1/sessions/" + SECRET_THREAD, token=ADMIN_TOKEN)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["file_count"], r.json()["total_bytes"]), (1, SECRET_SIZE))
        r = self.req("GET", "/files/%s%s" % (SECRET_THREAD, SECRET_FILE), token=ADMIN_TOKEN)
        self.assertEqual(r.body, b"s" * SECRET_SIZE)

    # ---- 401

    def test_no_token_or_a_wrong_one_is_401(self):
        routes = self.thread_routes(SECRET_THREAD) + [("GET", "/v1/sessions", None, False),
                                                      ("POST", "/v1/sessions", {"thread_id": "new-one"}, True),
                                                      ("GET", "/metrics", None, False)]
        for headers in ({}, {"Authorization": "Bearer " + WRONG_TOKEN}, {"Authorization": "Bearer " + ADMIN_TOKEN + "x"},
                        {"Authorization": "Bearer " + ADMIN_TOKEN[:-1]}, {"Authorization": "Basic " + ADMIN_TOKEN},
                        {"Authorization": ADMIN_TOKEN}, {"Authorization": "Bearer"}, {"Authorization": "Bearer  "},
                        # BRIG_TOKENS holds this one, but --tokens FILE is what counts.
                        {"Authorization": "Bearer not-this-one-" + "x" * 20}):
            for method, path, body, _ in routes:
                r = self.req(method, path, body, headers=headers)
                self.assertEqual(r.status, 401, (method, path, headers, r))
                self.assertEqual(r.headers["WWW-Authenticate"], "Bearer")
                if method != "HEAD":
                    self.assertEqual(r.error_code(), "unauthorized")
                    self.assertNotIn(SECRET_THREAD.encode(), r.body)
        # None of it did anything.
        self.assert_secret_untouched()
        self.assertEqual(self.req("GET", "/v1/sessions/new-one", token=ADMIN_TOKEN).status, 404)
        # The scheme's name is case-insensitive (RFC 9110).
        self.assertEqual(self.req("GET", "/v1/sessions", headers={"Authorization": "bearer " + ADMIN_TOKEN}).status, 200)

    def test_health_needs_no_token(self):
        r = self.req("GET", "/health")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "ok")

    def test_cleanup_needs_an_administrators_token(self):
        # It deletes other callers' sessions: a token for every thread that may write.
        self.assert_error(self.req("POST", "/v1/cleanup", {}), 401, "unauthorized")
        for token in (AGENT_TOKEN, READER_TOKEN, ALL_READER_TOKEN):
            self.assert_error(self.req("POST", "/v1/cleanup", {"dry_run": True}, token=token), 403, "forbidden")
        r = self.req("POST", "/v1/cleanup", {"dry_run": True}, token=ADMIN_TOKEN)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json()), {"sessions_deleted", "files_deleted", "bytes_freed", "dry_run"})

    def test_metrics_needs_a_token_for_every_thread(self):
        self.assert_error(self.req("GET", "/metrics"), 401, "unauthorized")
        self.assert_error(self.req("GET", "/metrics", token=AGENT_TOKEN), 403, "forbidden")
        self.assert_error(self.req("GET", "/metrics", token=READER_TOKEN), 403, "forbidden")
        for token in (ADMIN_TOKEN, ALL_READER_TOKEN):
            r = self.req("GET", "/metrics", token=token)
            self.assertEqual(r.status, 200, r)
            self.assertIn(b"brig_executions_total", r.body)

    # ---- tokens limited to threads

    def test_a_token_for_other_threads_gets_403_that_leaks_nothing(self):
        missing = "no-such-thread-4c2e"
        for (method, path, body, _), (_, path2, body2, _) in zip(self.thread_routes(SECRET_THREAD), self.thread_routes(missing)):
            exists = self.req(method, path, body, token=AGENT_TOKEN)
            absent = self.req(method, path2, body2, token=AGENT_TOKEN)
            self.assertEqual(exists.status, 403, (method, path, exists))
            self.assertEqual(absent.status, 403, (method, path2, absent))
            self.assertEqual(without_request_id(exists.body), without_request_id(absent.body), (method, path))
            self.assertEqual(sorted(k for k in exists.headers.keys() if k.lower() not in ("date", "x-request-id", "content-length")),
                             sorted(k for k in absent.headers.keys() if k.lower() not in ("date", "x-request-id", "content-length")))
            for needle in (SECRET_THREAD, "private-plans", str(SECRET_SIZE), "owner-of", missing):
                self.assertNotIn(needle.encode(), exists.body + str(exists.headers).encode(), (method, path))
            if method != "HEAD":
                self.assertEqual(exists.error_code(), "forbidden")
        # Creating a session it may not use is refused too, and makes nothing.
        r = self.req("POST", "/v1/sessions", {"thread_id": "not-mine"}, token=AGENT_TOKEN)
        self.assert_error(r, 403, "forbidden")
        self.assertEqual(self.req("GET", "/v1/sessions/not-mine", token=ADMIN_TOKEN).status, 404)
        self.assert_secret_untouched()
        # Forking its own session into one it may not use is refused too.
        self.assert_error(self.req("POST", "/v1/sessions/agent-a/fork", {"thread_id": "not-mine-fork"}, token=AGENT_TOKEN),
                          403, "forbidden")
        self.assertEqual(self.req("GET", "/v1/sessions/not-mine-fork", token=ADMIN_TOKEN).status, 404)
        r = self.req("POST", "/v1/sessions/agent-a/fork", {"thread_id": "job-fork-ok"}, token=AGENT_TOKEN)
        self.assertEqual(r.status, 201, r)
        # Its own threads work: an exact one and one under its prefix.
        r = self.req("POST", "/v1/sessions/agent-a/files:read", {"path": "data.txt"}, token=AGENT_TOKEN)
        self.assertEqual((r.status, r.json()["content"]), (200, "needle in agent-a\n"))
        r = self.req("POST", "/v1/sessions/job-77/execute", {"code": "'job ran'"}, token=AGENT_TOKEN)
        self.assertEqual((r.status, r.json()["result"]), (200, "'job ran'"), r)
        # A prefix is a prefix, not a pattern: "job" alone and "jobs" are not "job-*".
        for t in ("job", "jo", "agent-ab", "agent-"):
            self.assert_error(self.req("GET", "/v1/sessions/" + t, token=AGENT_TOKEN), 403, "forbidden")

    def test_list_shows_only_the_threads_of_the_token(self):
        r = self.req("GET", "/v1/sessions", token=AGENT_TOKEN)
        self.assertEqual(r.status, 200, r)
        names = {s["thread_id"] for s in r.json()["sessions"]}
        self.assertIn("agent-a", names)
        self.assertIn("job-1", names)
        self.assertTrue(all(n == "agent-a" or n.startswith("job-") for n in names), names)
        self.assertNotIn(SECRET_THREAD.encode(), r.body)
        self.assertNotIn(b"other-thread", r.body)
        r = self.req("GET", "/v1/sessions", token=READER_TOKEN)
        self.assertEqual({s["thread_id"] for s in r.json()["sessions"]}, {"agent-a"})
        r = self.req("GET", "/v1/sessions", token=ADMIN_TOKEN)
        self.assertTrue({SECRET_THREAD, "agent-a", "job-1", "other-thread"} <= {s["thread_id"] for s in r.json()["sessions"]})

    # ---- read-only tokens

    def test_a_read_only_token_reads_and_changes_nothing(self):
        before = self.req("GET", "/v1/sessions/agent-a", token=ADMIN_TOKEN).json()
        version = self.req("POST", "/v1/sessions/agent-a/execute", {"code": "counter"}, token=ADMIN_TOKEN).json()
        for method, path, body, writes in self.thread_routes("agent-a"):
            path = path.replace(SECRET_FILE, "/home/user/data.txt")
            if isinstance(body, dict) and body.get("path") == SECRET_FILE:
                body = dict(body, path="/home/user/data.txt")
            r = self.req(method, path, body, token=READER_TOKEN)
            if writes:
                self.assertEqual(r.status, 403, (method, path, r))
                self.assertEqual(r.error_code(), "forbidden")
                self.assertIn("read-only", r.json()["error"]["message"])
            else:
                self.assertEqual(r.status, 200, (method, path, r))
        self.assert_error(self.req("POST", "/v1/sessions", {"thread_id": "agent-a"}, token=READER_TOKEN), 403, "forbidden")
        r = self.req("POST", "/v1/sessions/agent-a/files:grep", {"pattern": "needle"}, token=READER_TOKEN)
        self.assertEqual([f["path"] for f in r.json()["files"]], ["/home/user/data.txt"])
        r = self.req("POST", "/v1/sessions/agent-a/files:glob", {"pattern": "/home/**"}, token=READER_TOKEN)
        self.assertEqual([f["path"] for f in r.json()["files"]], ["/home/user/data.txt"])
        # Nothing changed: the same files, expiry and state version.
        after = self.req("GET", "/v1/sessions/agent-a", token=ADMIN_TOKEN).json()
        self.assertEqual((after["file_count"], after["expires_at"]), (before["file_count"], before["expires_at"]))
        again = self.req("POST", "/v1/sessions/agent-a/execute", {"code": "counter"}, token=ADMIN_TOKEN).json()
        self.assertEqual(again["result"], "1")
        self.assertEqual(again["session"]["version"], version["session"]["version"] + 1)
        # A read-only token for every thread may read any of them, and still write none.
        r = self.req("GET", "/files/%s%s" % (SECRET_THREAD, SECRET_FILE), token=ALL_READER_TOKEN)
        self.assertEqual(r.status, 200)
        self.assert_error(self.req("POST", "/v1/sessions/%s/execute" % SECRET_THREAD, {"code": "1"}, token=ALL_READER_TOKEN),
                          403, "forbidden")

    # ---- signed links

    def link_key(self):
        with open(os.path.join(self.home, "link.key")) as f:
            key = f.read().strip()
        self.assertGreaterEqual(len(key), 32)
        return key

    def test_signed_links(self):
        key = self.link_key()
        self.assertEqual(os.stat(os.path.join(self.home, "link.key")).st_mode & 0o777, 0o600)
        t, path = "agent-a", "/home/user/data.txt"
        expires = int(time.time()) + 600
        url = "/files/%s%s?expires=%d&sig=%s" % (t, path, expires, sign(key, t, path, expires))
        r = self.req("GET", url)
        self.assertEqual((r.status, r.body), (200, b"needle in agent-a\n"), r)
        self.assertEqual(self.req("HEAD", url).status, 200)
        r = self.req("GET", url, headers={"Range": "bytes=0-5"})
        self.assertEqual((r.status, r.body), (206, b"needle"))
        # The query's order and the disposition do not matter to the signature.
        r = self.req("GET", "/files/%s%s?disposition=attachment&sig=%s&expires=%d" % (t, path, sign(key, t, path, expires), expires))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["Content-Disposition"].startswith("attachment"))

        sig = sign(key, t, path, expires)
        flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
        past = int(time.time()) - 5
        bad = [
            "/files/%s%s?expires=%d&sig=%s" % (t, path, expires, flipped),                      # wrong sig
            "/files/%s%s?expires=%d&sig=%s" % (t, path, expires, sig.upper()),                  # not the hex it signs
            "/files/%s%s?expires=%d&sig=%s" % (t, path, expires, sig[:-2]),                     # short
            "/files/%s%s?expires=%d&sig=" % (t, path, expires),                                 # empty
            "/files/%s%s?expires=%d&sig=%s" % (t, path, expires + 1, sig),                      # another expiry
            "/files/%s%s?expires=%d&sig=%s" % (t, path, past, sign(key, t, path, past)),        # expired
            "/files/%s%s?sig=%s" % (t, path, sig),                                              # no expiry
            "/files/%s%s?expires=x&sig=%s" % (t, path, sig),
            "/files/%s%s?expires=-1&sig=%s" % (t, path, sign(key, t, path, -1)),
            "/files/%s%s?expires=%d&sig=%s" % (t, SECRET_FILE, expires, sig),                   # another path
            "/files/%s%s?expires=%d&sig=%s" % (SECRET_THREAD, path, expires, sig),              # another thread
            "/files/%s%s?expires=%d&sig=%s" % (SECRET_THREAD, SECRET_FILE, expires,
                                              sign("k" * 64, SECRET_THREAD, SECRET_FILE, expires)),  # another key
        ]
        for u in bad:
            r = self.req("GET", u)
            self.assertEqual(r.status, 403, (u, r))
            self.assertEqual(r.error_code(), "bad_link", u)
            self.assertNotIn(b"needle", r.body)
        # A link for one path opens no other route: not the listing, not the API.
        sig_dir = sign(key, t, "", expires)
        self.assert_error(self.req("GET", "/files/%s?expires=%d&sig=%s" % (t, expires, sig_dir)), 401, "unauthorized")
        self.assert_error(self.req("GET", "/v1/sessions/%s/files%s?expires=%d&sig=%s" % (t, path, expires, sig)),
                          401, "unauthorized")
        self.assert_error(self.req("PUT", "/files/%s%s?expires=%d&sig=%s" % (t, path, expires, sig), b"x"),
                          405, "method_not_allowed")
        # A link for a file of a thread that does not exist is a 404 once signed, 403 before.
        r = self.req("GET", "/files/nothing-here/x?expires=%d&sig=%s" % (expires, sign(key, "nothing-here", "/x", expires)))
        self.assertEqual(r.status, 404, r)

    def test_brig_files_link_makes_a_link_the_server_opens(self):
        def link(path, *flags):
            env = dict(os.environ, BRIG_HOME=self.home, BRIG_LINK_KEY="")
            return subprocess.run([harness.BRIG, "files", "link", "--session", "agent-a", path, "--db", self.server.store_url,
                                   "--base", "http://127.0.0.1:%d/" % self.server.port, *flags],
                                  env=env, capture_output=True, text=True, timeout=60)
        r = link("data.txt")  # relative: under /home/user
        self.assertEqual(r.returncode, 0, r.stderr)
        url = r.stdout.strip()
        self.assertTrue(url.startswith("http://127.0.0.1:%d/files/agent-a/home/user/data.txt?expires=" % self.server.port), url)
        got = self.req("GET", url.split(str(self.server.port), 1)[1])
        self.assertEqual((got.status, got.body), (200, b"needle in agent-a\n"), got)
        # A short link expires; a missing file gets no link.
        r = link("/home/user/data.txt", "--expires", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        time.sleep(2.2)
        self.assert_error(self.req("GET", r.stdout.strip().split(str(self.server.port), 1)[1]), 403, "bad_link")
        r = link("/home/user/nothing.txt")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("nothing.txt", r.stderr)

    def test_a_link_key_from_brig_link_key(self):
        # BRIG_LINK_KEY, when set, is the key (another node or the CLI signs with it).
        home = harness.make_home("linkkey")
        self.addCleanup(shutil.rmtree, home, True)
        env_key = "env-link-key-" + "e" * 40
        server = harness.BrigServer(self.make_other_store(home), home, env={"BRIG_LINK_KEY": env_key,
                                                                           "BRIG_TOKENS": ADMIN_TOKEN})
        try:
            r = server.request("PUT", "/v1/sessions/t/files/tmp/f", b"env", token=ADMIN_TOKEN)
            self.assertEqual(r.status, 200, r)
            expires = int(time.time()) + 60
            self.assertEqual(server.request("GET", "/files/t/tmp/f?expires=%d&sig=%s" % (expires, sign(env_key, "t", "/tmp/f", expires))).body, b"env")
            self.assertEqual(server.request("GET", "/files/t/tmp/f?expires=%d&sig=%s" % (expires, sign(harness.LINK_KEY, "t", "/tmp/f", expires))).status, 403)
            self.assertFalse(os.path.exists(os.path.join(home, "link.key")))
        finally:
            self.assertEqual(server.stop(), 0)

    # ---- the request log

    def test_the_request_log_has_one_line_per_request_and_no_secret(self):
        key = self.link_key()
        expires = int(time.time()) + 600
        sig = sign(key, "agent-a", "/home/user/data.txt", expires)
        made = [
            (self.req("GET", "/health"), "GET", "/health", None),
            (self.req("GET", "/v1/sessions", token=ADMIN_TOKEN), "GET", "/v1/sessions", "admin"),
            (self.req("GET", "/v1/sessions", token=WRONG_TOKEN), "GET", "/v1/sessions", None),
            (self.req("GET", "/v1/sessions/" + SECRET_THREAD, token=AGENT_TOKEN), "GET", "/v1/sessions/" + SECRET_THREAD, "agent"),
            (self.req("POST", "/v1/sessions/agent-a/execute", {"code": "counter"}, token=AGENT_TOKEN),
             "POST", "/v1/sessions/agent-a/execute", "agent"),
            (self.req("GET", "/files/agent-a/home/user/data.txt?expires=%d&sig=%s" % (expires, sig)),
             "GET", "/files/agent-a/home/user/data.txt", "signed-link"),
            (self.req("GET", "/files/agent-a/home/user/data.txt?expires=%d&sig=%s" % (expires, "0" * 64)),
             "GET", "/files/agent-a/home/user/data.txt", None),
            (self.req("GET", "/v1/sessions/agent-a", token=ALL_READER_TOKEN), "GET", "/v1/sessions/agent-a", "token-6"),
        ]
        ids = set()
        for r, method, path, principal in made:
            rid = r.headers["X-Request-Id"]
            self.assertTrue(rid)
            self.assertNotIn(rid, ids)
            ids.add(rid)
            line = self.server.wait_for_log(rid)
            self.assertEqual(sum(1 for l in self.server.log_lines() if l.get("request_id") == rid), 1)
            self.assertEqual((line["method"], line["path"], line["status"]), (method, path, r.status), line)
            self.assertEqual(line.get("principal"), principal, line)
            self.assertEqual(line["bytes"], len(r.body))
            self.assertTrue(line["remote"].startswith("127.0.0.1:"))
            self.assertIsInstance(line["ms"], (int, float))
            self.assertRegex(line["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        text = self.server.stderr_text()
        for secret in (ADMIN_TOKEN, AGENT_TOKEN, READER_TOKEN, ALL_READER_TOKEN, WRONG_TOKEN, sig, key, "sig="):
            self.assertNotIn(secret, text)
        # Every line after the first two (the URL and the curl hint) is one JSON object.
        for line in text.splitlines()[2:]:
            self.assertTrue(line.startswith("{") and line.endswith("}"), line)


class SqliteAuthTest(AuthCases, SqliteStore, unittest.TestCase):
    def make_other_store(self, home):
        return "sqlite:" + os.path.join(home, "brig.db")


class PostgresAuthTest(AuthCases, PostgresStore, unittest.TestCase):
    def make_other_store(self, home):
        return harness.postgres().database()


class ListenTest(unittest.TestCase):
    """Beyond loopback only with tokens; bad tokens are refused with the line, never the token."""

    def home(self, name):
        home = harness.make_home(name)
        self.addCleanup(shutil.rmtree, home, True)
        return home

    def serve(self, *args, env=None):
        home = self.home("listen")
        e = dict(os.environ, BRIG_HOME=home)
        e.pop("BRIG_TOKENS", None)
        e.update(env or {})
        return subprocess.run([harness.BRIG, "serve", "--db", "sqlite:" + home + "/brig.db", *args], env=e,
                              capture_output=True, timeout=120)

    def test_any_address_without_tokens_is_refused(self):
        for listen in ("0.0.0.0:0", "[::]:0", "192.0.2.1:0"):
            p = self.serve("--listen", listen)
            err = p.stderr.decode()
            self.assertNotEqual(p.returncode, 0, err)
            self.assertIn("without tokens", err)
            self.assertIn("--tokens", err)
            self.assertNotIn("listening on", err)

    def test_any_address_with_tokens_starts(self):
        home = self.home("listen-any")
        server = harness.BrigServer("sqlite:" + home + "/brig.db", home, listen="0.0.0.0:0", env={"BRIG_TOKENS": ADMIN_TOKEN})
        try:
            self.assertEqual(server.request("GET", "/v1/sessions", token=ADMIN_TOKEN).status, 200)
            self.assertEqual(server.request("GET", "/v1/sessions").status, 401)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_bad_tokens_are_refused_without_echoing_them(self):
        cases = [("short-token", "16 to 256"),
                 ("good-token-0123456789 threads=", "threads="),
                 ("good-token-0123456789 admin=yes", "unknown option"),
                 ("bad token char-0123456789\u00e9", ""),
                 ("dup-token-0123456789ab\ndup-token-0123456789ab", "twice")]
        for text, says in cases:
            p = self.serve("--listen", "127.0.0.1:0", env={"BRIG_TOKENS": text})
            err = p.stderr.decode()
            self.assertNotEqual(p.returncode, 0, (text, err))
            self.assertIn("BRIG_TOKENS line", err)
            self.assertIn(says, err)
            self.assertNotIn("0123456789", err, "the token's text is never printed")
        home = self.home("listen-empty")
        empty = os.path.join(home, "tokens")
        with open(empty, "w") as f:
            f.write("# nothing\n")
        p = self.serve("--listen", "127.0.0.1:0", "--tokens", empty)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("holds no token", p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
