"""SandboxManager: mayflower-sandbox's session lifecycle (expiry, extend, delete), on brig.

Sessions are dicts with ``thread_id``, ``created_at``, ``last_accessed``, ``expires_at``
(aware UTC datetimes), ``metadata``, ``expired``, ``file_count`` and ``total_bytes``.
"""

from __future__ import annotations

from typing import Any

from ._compat import run_blocking, session_record
from .errors import (AlreadyExistsError, NotFoundError, SessionExpiredError,  # noqa: F401 (re-exported)
                     SessionNotFoundError)
from .store import Backend, backend

__all__ = ["SandboxManager", "SessionNotFoundError", "SessionExpiredError"]


class SandboxManager:
    """Creates, inspects, extends and deletes sessions.

    ``db_pool`` as for :class:`brig.StatefulExecutor`; ``default_expiration_days`` is the
    expiry of sessions :meth:`get_or_create_session` makes (default 180).
    """

    def __init__(self, db_pool: Any = None, default_expiration_days: int = 180, *,
                 token: str | None = None) -> None:
        self.backend: Backend = backend(db_pool, token=token)
        self.default_expiration_days = default_expiration_days

    def _call(self, op: str, thread_id: str, **a: Any) -> Any:
        return self.backend.call(op, thread_id, **a)

    def _get_or_create(self, thread_id: str, metadata: dict | None) -> dict:
        if self._call("exists", thread_id):
            return session_record(self._call("get_or_create", thread_id))  # raises if expired
        try:
            return session_record(self._call("create", thread_id, expiry_days=self.default_expiration_days,
                                             metadata=metadata or {}))
        except AlreadyExistsError:  # made meanwhile by someone else
            return session_record(self._call("get_or_create", thread_id))

    async def get_or_create_session(self, thread_id: str, metadata: dict | None = None) -> dict:
        """The session, created (default expiry, ``metadata``) if missing; its last access is
        now. Raises SessionExpiredError if it exists and has expired."""
        return await run_blocking(self._get_or_create, thread_id, metadata)

    async def create_session(self, thread_id: str, expiration_days: int | None = None,
                             metadata: dict | None = None) -> dict:
        """Creates a session expiring in ``expiration_days`` (default: the manager's).
        Raises AlreadyExistsError if it exists."""
        days = expiration_days if expiration_days is not None else self.default_expiration_days
        return session_record(await run_blocking(self._call, "create", thread_id, expiry_days=days,
                                                 metadata=metadata or {}))

    async def session_exists(self, thread_id: str) -> bool:
        """Whether the session exists (expired or not)."""
        return bool(await run_blocking(self._call, "exists", thread_id))

    async def get_session(self, thread_id: str) -> dict:
        """The session. Raises SessionNotFoundError if missing, SessionExpiredError if expired."""
        s = session_record(await run_blocking(self._call, "get", thread_id))
        if s.get("expired"):
            raise SessionExpiredError(f"Session {thread_id} expired at {s['expires_at']}")
        return s

    async def extend_session(self, thread_id: str, days: int = 180) -> dict:
        """Moves the expiry to max(now, expires_at) + ``days``; works on an expired session."""
        return session_record(await run_blocking(self._call, "extend", thread_id, days=days))

    async def delete_session(self, thread_id: str) -> bool:
        """Deletes the session with its state and files. False if it did not exist."""
        try:
            await run_blocking(self._call, "delete", thread_id)
            return True
        except NotFoundError:
            return False

    async def update_last_accessed(self, thread_id: str) -> None:
        """Marks the session used now."""
        await run_blocking(self._call, "get_or_create", thread_id)

    async def list_active_sessions(self, limit: int = 100) -> list[dict]:
        """Sessions not expired, most recently used first."""
        sessions = [session_record(s) for s in await run_blocking(self._call, "list", "")
                    if not s.get("expired")]
        sessions.sort(key=lambda s: s["last_accessed"], reverse=True)
        return sessions[:limit]

    async def cleanup_expired_sessions(self) -> int:
        """Deletes expired sessions (with their files and state); returns how many."""
        stats = await run_blocking(self._call, "cleanup", "", dry_run=False)
        return int(stats["sessions_deleted"])
