"""Backends of the session API: a store in this process, or a server.

:func:`backend` turns what mayflower-sandbox users pass as ``db_pool`` into one:

- ``"http://host:port"`` (or a :class:`brig.Client`): a ``brig serve`` (remote mode);
- ``"sqlite:/path/brig.db"`` or ``"postgresql://..."``: the store, used from this process
  through the extension module (in-process mode);
- ``None``: ``$BRIG_DB``, else ``sqlite:$BRIG_HOME/brig.db`` (``$BRIG_HOME`` defaults to
  ``~/.local/share/brig``), the store the ``brig`` command uses.

Both backends offer the same methods: ``execute``, ``call``, ``read_file``, ``write_file``,
``export_snapshot``, ``import_snapshot``.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Union

from ._result import ExecutionResult
from .client import Client

__all__ = ["LocalStore", "Backend", "backend", "default_store_url"]


def default_store_url() -> str:
    """``$BRIG_DB``, else ``sqlite:$BRIG_HOME/brig.db`` (the directory is created)."""
    if os.environ.get("BRIG_DB"):
        return os.environ["BRIG_DB"]
    home = os.environ.get("BRIG_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share", "brig")
    os.makedirs(home, mode=0o700, exist_ok=True)
    return "sqlite:" + os.path.join(home, "brig.db")


class LocalStore:
    """Sessions in a store opened by this process (the engine runs here, no server).

    ``timeout_seconds`` and ``memory_mb`` are the defaults of each execution;
    ``default_expiry_days`` the expiry of sessions made implicitly. Thread-safe; the GIL is
    released while the engine works.
    """

    def __init__(self, url: str, *, timeout_seconds: float = 30.0, memory_mb: int = 256,
                 default_expiry_days: int = 180, max_live: int = 64) -> None:
        from . import _native_module

        self.url = url
        self._s = _native_module().Sessions(url, timeout_seconds=timeout_seconds, memory_mb=memory_mb,
                                            default_expiry_days=default_expiry_days, max_live=max_live)

    def __repr__(self) -> str:
        return f"brig.LocalStore({self.url!r})"

    def execute(self, thread_id: str, code: str, timeout: float | None = None) -> ExecutionResult:
        """Runs ``code`` in the session (created if missing), saving its state and files."""
        return self._s.execute(thread_id, code, timeout=timeout)

    def call(self, op: str, thread_id: str, /, **a: Any) -> Any:
        """A session or file operation by name: get_or_create, create, get, exists, list,
        extend, delete, reset, fork, cleanup, file_edit, file_delete, file_list, file_glob,
        file_grep. Returns the JSON the server would answer (dicts and lists)."""
        return json.loads(self._s.call(op, thread_id, json.dumps(a)))

    def read_file(self, thread_id: str, path: str, offset: int = 0,
                  limit: int | None = None) -> tuple[bytes, dict[str, Any]]:
        """``limit`` bytes of a session file from ``offset`` (all by default), with its info."""
        data, info = self._s.read_file(thread_id, path, offset, -1 if limit is None else limit)
        return data, json.loads(info)

    def write_file(self, thread_id: str, path: str, data: bytes, content_type: str = "") -> dict[str, Any]:
        """Creates or replaces a session file."""
        return json.loads(self._s.write_file(thread_id, path, bytes(data), content_type))

    def export_snapshot(self, thread_id: str) -> bytes:
        """The session as snapshot bytes (the same format as a server's GET .../snapshot)."""
        return self._s.export_snapshot(thread_id)

    def import_snapshot(self, thread_id: str, data: bytes) -> dict[str, Any]:
        """Makes the new session ``thread_id`` from snapshot bytes."""
        j = json.loads(self._s.import_snapshot(thread_id, bytes(data)))
        return {"session": {k: v for k, v in j.items() if k not in ("restored_from", "not_restored")},
                "restored_from": j.get("restored_from"), "not_restored": j.get("not_restored", {})}


Backend = Union[LocalStore, Client]

_stores: dict[str, LocalStore] = {}
_clients: dict[str, Client] = {}
_stores_lock = threading.Lock()


def backend(db_pool: Any = None, **options: Any) -> Backend:
    """The backend for ``db_pool`` (see the module's doc). One LocalStore (or Client) per URL
    per process."""
    if isinstance(db_pool, (LocalStore, Client)):
        return db_pool
    if db_pool is None:
        db_pool = default_store_url()
    if not isinstance(db_pool, str):
        raise TypeError(
            "brig takes a store URL ('sqlite:PATH', 'postgresql://...'), a server URL "
            f"('http://host:port'), a brig.Client or None, not {type(db_pool).__name__} "
            "(brig opens the database itself: pass the URL, not a connection pool)")
    if db_pool.startswith(("http://", "https://")):
        key = db_pool + "\0" + str(options.get("token"))
        with _stores_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = Client(db_pool, token=options.get("token"))
            return client
    if db_pool.startswith("postgres://"):
        db_pool = "postgresql://" + db_pool[len("postgres://"):]
    with _stores_lock:
        store = _stores.get(db_pool)
        if store is None:
            store = LocalStore(db_pool, timeout_seconds=options.get("timeout_seconds", 30.0))
            _stores[db_pool] = store
        return store
