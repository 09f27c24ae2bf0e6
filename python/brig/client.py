"""Client: brig's API over `brig serve`'s HTTP (the routes of docs/openapi.json).

Standard library only (``http.client``). Keep-alive connections, pooled. Every
method mirrors an in-process call of :class:`brig.store.LocalStore` (both are *backends*
of the session API: :class:`brig.StatefulExecutor`, :class:`brig.SandboxManager`, the agent
tools); errors raise the classes of :mod:`brig.errors`.

    client = brig.Client("http://127.0.0.1:8080", token=os.environ.get("BRIG_TOKEN"))
    client.execute("agent-7", "1 + 1").result   # '2'
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import urllib.parse
from typing import Any

from ._result import ExecutionResult, result_from_json
from .errors import BrigError, SessionExpiredError, UnavailableError, _from_status

__all__ = ["Client"]


def _quote_path(path: str) -> str:
    """A sandbox path as the URL's {path}: without its leading '/', each segment quoted."""
    return "/".join(urllib.parse.quote(seg, safe="") for seg in path.lstrip("/").split("/"))


class Client:
    """A connection to one ``brig serve`` (``url``: ``http://host:port``).

    ``token`` (default ``$BRIG_TOKEN``) is sent as ``Authorization: Bearer``. ``timeout``
    bounds each request in seconds (an execution's own limit is separate). Thread-safe.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 300.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"brig server URL must be http(s)://host[:port], not {url!r}")
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self.token = token if token is not None else os.environ.get("BRIG_TOKEN") or None
        self.timeout = timeout
        self._idle: list[http.client.HTTPConnection] = []  # keep-alive connections not in use
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"brig.Client({self.url!r})"

    # ---- transport

    def _take(self) -> http.client.HTTPConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self.timeout)

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < 8:
                self._idle.append(conn)
                return
        conn.close()

    def request(self, method: str, path: str, body: Any = None, *, raw_body: bytes | None = None,
                query: dict[str, str] | None = None, raw: bool = False,
                content_type: str = "application/octet-stream") -> Any:
        """One request; returns the decoded JSON answer (or the bytes with ``raw``).

        Raises the :mod:`brig.errors` class of the server's error code.
        """
        url = self._base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data: bytes | None = None
        if raw_body is not None:
            data, headers["Content-Type"] = raw_body, content_type
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        for attempt in (0, 1):  # a kept-alive connection the server closed: once more, fresh
            conn = self._take()
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady) as e:
                conn.close()
                if attempt:
                    raise UnavailableError(f"{self.url}: {e}") from e
                continue
            except OSError as e:
                conn.close()
                raise UnavailableError(f"{self.url}: {e}") from e
            if resp.will_close:
                conn.close()
            else:
                self._give_back(conn)
            break
        if resp.status >= 400:
            code, message = "internal", payload.decode("utf-8", "replace")
            try:
                err = json.loads(payload)["error"]
                code, message = str(err.get("code", code)), str(err.get("message", message))
            except (ValueError, KeyError, TypeError):
                pass
            raise _from_status(code, message, status=resp.status)
        if raw:
            return payload
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError as e:
            raise BrigError(f"{self.url}: malformed JSON answer to {method} {path}") from e

    def close(self) -> None:
        """Closes the idle connections (the client stays usable: it reconnects)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ---- the backend interface (same as brig.store.LocalStore)

    def _s(self, thread_id: str) -> str:
        return "/v1/sessions/" + urllib.parse.quote(thread_id, safe="")

    def execute(self, thread_id: str, code: str, timeout: float | None = None) -> ExecutionResult:
        """Runs ``code`` in the session (created if missing); a result, never a raise for a
        Python exception."""
        body: dict[str, Any] = {"code": code}
        if timeout is not None:
            body["timeout_s"] = timeout
        return result_from_json(self.request("POST", self._s(thread_id) + "/execute", body))

    def call(self, op: str, thread_id: str, /, **a: Any) -> Any:
        """A session or file operation by name (see brig.store.LocalStore.call)."""
        s = self._s(thread_id)
        if op == "get_or_create":
            try:
                found = self.request("GET", s)
                if found.get("expired"):
                    raise SessionExpiredError(f"session {thread_id!r} expired at {found.get('expires_at')}: "
                                              "extend it to use it again")
                return found
            except LookupError:
                pass
            try:
                return self.request("POST", "/v1/sessions", {"thread_id": thread_id})
            except BrigError as e:
                if e.code != "already_exists":
                    raise
                return self.request("GET", s)
        if op == "create":
            body = {"thread_id": thread_id}
            if a.get("expiry_days") is not None:
                body["expiry_days"] = a["expiry_days"]
            if a.get("metadata") is not None:
                body["metadata"] = a["metadata"]
            return self.request("POST", "/v1/sessions", body)
        if op == "get":
            return self.request("GET", s)
        if op == "exists":
            try:
                self.request("GET", s)
                return True
            except LookupError:
                return False
        if op == "list":
            return self.request("GET", "/v1/sessions")["sessions"]
        if op == "extend":
            return self.request("POST", s + "/extend", {"days": a["days"]})
        if op == "delete":
            self.request("DELETE", s)
            return None
        if op == "reset":
            self.request("POST", s + "/reset", {})
            return None
        if op == "fork":
            body = {k: v for k, v in a.items() if v is not None}
            return self.request("POST", s + "/fork", body)
        if op == "cleanup":
            # POST /v1/cleanup: needs a token for every session, not read-only (or no tokens).
            return self.request("POST", "/v1/cleanup", {"dry_run": bool(a.get("dry_run"))})
        if op == "file_edit":
            return self.request("POST", s + "/files:edit", a)
        if op == "file_delete":
            self.request("DELETE", s + "/files/" + _quote_path(a["path"]))
            return None
        if op == "file_list":
            return self.request("GET", s + "/files", query={"prefix": a.get("prefix", "")})
        if op == "file_glob":
            return self.request("POST", s + "/files:glob", a)
        if op == "file_grep":
            return self.request("POST", s + "/files:grep", a)
        raise ValueError(f"unknown operation {op!r}")

    def read_file(self, thread_id: str, path: str, offset: int = 0,
                  limit: int | None = None) -> tuple[bytes, dict[str, Any]]:
        """``limit`` bytes of a session file from ``offset`` (all by default), with its info."""
        body: dict[str, Any] = {"path": path, "offset": offset}
        if limit is not None:
            body["limit"] = limit
        j = self.request("POST", self._s(thread_id) + "/files:read", body)
        content = j.get("content", "")
        data = base64.b64decode(content) if j.get("encoding") == "base64" else content.encode()
        info = {k: j[k] for k in ("path", "size", "content_type") if k in j}
        return data, info

    def write_file(self, thread_id: str, path: str, data: bytes, content_type: str = "") -> dict[str, Any]:
        """Creates or replaces a session file (the session is created if missing)."""
        body = {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}
        if content_type:
            body["content_type"] = content_type
        return self.request("POST", self._s(thread_id) + "/files:write", body)

    def export_snapshot(self, thread_id: str) -> bytes:
        """The session as snapshot bytes (PUT them to any brig serve to restore)."""
        return self.request("GET", self._s(thread_id) + "/snapshot", raw=True)

    def import_snapshot(self, thread_id: str, data: bytes) -> dict[str, Any]:
        """Makes the new session ``thread_id`` from snapshot bytes."""
        return self.request("PUT", self._s(thread_id) + "/snapshot", raw_body=bytes(data))
