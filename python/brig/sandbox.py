"""brig.Sandbox: one isolated Python interpreter, in this process or on a server.

In-process (the default) the sandbox is the engine itself, linked into this process by the
extension module: a copy-on-write clone of a pre-initialised CPython (WebAssembly, compiled
ahead of time), created in tens of microseconds, with executions of a few microseconds and
no server::

    sb = brig.Sandbox()
    sb.execute("x = 6 * 7")
    sb.execute("x").result            # '42'
    other = sb.fork()                  # same variables and files, then apart
    data = sb.snapshot()               # bytes
    sb.reset(); sb.restore(data)       # back to x == 42

With ``server="http://host:port"`` the same API runs against ``brig serve`` (a
:class:`RemoteSandbox`, backed by a session of its own that closing it deletes).
"""

from __future__ import annotations

import uuid
from typing import Any

from ._result import ExecutionResult
from .client import Client
from .errors import BrigError

__all__ = ["Sandbox", "RemoteSandbox"]

try:
    from ._native import Sandbox as _NativeSandbox  # type: ignore[attr-defined]
except ImportError as _e:  # the extension is not built: only remote sandboxes
    _native_import_error: ImportError | None = _e

    class _NativeSandbox:  # type: ignore[no-redef]
        def __init__(self, **_: Any) -> None:
            raise ImportError(
                "brig's extension module is not available, so in-process sandboxes are not "
                f"either ({_native_import_error}); use brig.Sandbox(server='http://...')")
else:
    _native_import_error = None


class Sandbox(_NativeSandbox):
    """An isolated CPython 3.11 interpreter with its own files (/home/user, /tmp).

    Keyword arguments: ``timeout_seconds`` (default 30, per execution), ``memory_mb`` (16-4095,
    default 256), ``output_bytes`` (stdout/stderr kept per execution, default 1 MiB),
    ``cold`` (start CPython from scratch instead of cloning the image). ``server`` (and
    ``token``) make a :class:`RemoteSandbox` instead.

    Methods: ``execute(code, *, timeout=None) -> ExecutionResult`` (variables persist;
    a Python exception is a result with ``success`` False and ``error`` set, not a raise),
    ``reset()``, ``fork() -> Sandbox``, ``snapshot() -> bytes``, ``restore(bytes)``,
    ``read_file(path) -> bytes | None``, ``write_file(path, data)``, ``list_files()``.

    Thread-safety: calls on one sandbox are serialised (the GIL is released while the
    guest runs, so different sandboxes run in parallel on different threads).
    """

    __slots__ = ()

    def __new__(cls, *args: Any, server: str | Client | None = None, **kwargs: Any) -> Any:
        if server is not None:
            return RemoteSandbox(server, **kwargs)
        return super().__new__(cls)

    def __init__(self, *, timeout_seconds: float = 30.0, memory_mb: int = 256, output_bytes: int = 1 << 20,
                 cold: bool = False, server: None = None) -> None:
        super().__init__(timeout_seconds=timeout_seconds, memory_mb=memory_mb, output_bytes=output_bytes,
                         cold=cold)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __repr__(self) -> str:
        return "<brig.Sandbox in-process>"


class RemoteSandbox:
    """The :class:`Sandbox` API over ``brig serve``: a session of its own on the server.

    ``server`` is a URL or a :class:`brig.Client`; ``token`` as for Client. The session is
    named ``sandbox-<random>`` (or ``thread_id``) and expires after a day unless closed first:
    :meth:`close` (or leaving a ``with`` block) deletes it. Snapshots are the server's
    session snapshot format: they restore on any brig server, not into an in-process
    Sandbox.
    """

    def __init__(self, server: str | Client, *, token: str | None = None, timeout_seconds: float | None = None,
                 thread_id: str | None = None, memory_mb: int | None = None, **_ignored: Any) -> None:
        self._own_client = not isinstance(server, Client)
        self.client = server if isinstance(server, Client) else Client(server, token=token)
        self.timeout_seconds = timeout_seconds
        self.thread_id = thread_id or f"sandbox-{uuid.uuid4().hex}"
        self._owned = thread_id is None
        if self._owned:
            self.client.call("create", self.thread_id, expiry_days=1, metadata={"brig.Sandbox": True})
        self._closed = False

    def __repr__(self) -> str:
        return f"<brig.RemoteSandbox {self.thread_id!r} on {self.client.url}>"

    def execute(self, code: str, *, timeout: float | None = None) -> ExecutionResult:
        """Runs ``code``; variables persist between calls (see Sandbox.execute)."""
        return self.client.execute(self.thread_id, code, timeout if timeout is not None else self.timeout_seconds)

    def reset(self) -> None:
        """Back to a fresh interpreter (the server keeps the session's files)."""
        self.client.call("reset", self.thread_id)

    def fork(self) -> "RemoteSandbox":
        """A new remote sandbox in this one's state; the two then diverge."""
        child = RemoteSandbox.__new__(RemoteSandbox)
        child.client, child.timeout_seconds = self.client, self.timeout_seconds
        child.thread_id, child._owned, child._closed = f"sandbox-{uuid.uuid4().hex}", True, False
        child._own_client = False
        self.client.call("fork", self.thread_id, thread_id=child.thread_id, expiry_days=1)
        return child

    def snapshot(self) -> bytes:
        """The session (state and files) as bytes."""
        return self.client.export_snapshot(self.thread_id)

    def restore(self, data: bytes) -> None:
        """Puts this sandbox in the state ``data`` holds (a new session replaces the old)."""
        new_id = f"sandbox-{uuid.uuid4().hex}"
        self.client.import_snapshot(new_id, data)
        old, self.thread_id = self.thread_id, new_id
        if self._owned:
            try:
                self.client.call("delete", old)
            except BrigError:
                pass
        self._owned = True

    def read_file(self, path: str) -> bytes | None:
        """A file's bytes, or None if it does not exist."""
        try:
            return self.client.read_file(self.thread_id, path)[0]
        except LookupError:
            return None

    def write_file(self, path: str, data: bytes) -> None:
        """Creates or replaces a file."""
        self.client.write_file(self.thread_id, path, bytes(data))

    def list_files(self) -> list[tuple[str, int]]:
        """Every file with its size."""
        files = self.client.call("file_list", self.thread_id, prefix="")["files"]
        return [(f["path"], int(f["size"])) for f in files if f.get("content_type") != "inode/directory"]

    def close(self) -> None:
        """Deletes the server-side session (if this object made it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            try:
                self.client.call("delete", self.thread_id)
            except (BrigError, OSError):
                pass
        if self._own_client:
            self.client.close()

    def __enter__(self) -> "RemoteSandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
