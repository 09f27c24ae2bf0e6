"""CleanupJob: mayflower-sandbox's cleanup of expired sessions and orphaned files, on brig."""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import threading
import time
from typing import Any, Awaitable, Generator

from ._compat import run_blocking
from .store import Backend, backend

__all__ = ["CleanupJob"]

logger = logging.getLogger(__name__)


class _Stopped:
    """What stop() returns: awaiting it waits for the background task to end; it need not
    be awaited (mayflower-sandbox's ``stop()`` is a coroutine, its docs call it bare)."""

    def __init__(self, task: "asyncio.Task[Any] | None") -> None:
        self._task = task

    def __await__(self) -> Generator[Any, None, None]:
        if self._task is not None:
            try:
                yield from asyncio.shield(self._task).__await__()
            except asyncio.CancelledError:
                pass


class CleanupJob:
    """Deletes expired sessions with their files and state, and orphaned files.

    ``db_pool`` as for :class:`brig.StatefulExecutor`: a store (in-process), or a server URL
    (remote: ``POST /v1/cleanup``, which needs a token for every session that is not
    read-only; a server can also run its own, ``brig serve --cleanup-every SECONDS``). ``interval_seconds``: the
    period of :meth:`start`. ``dry_run``: report what would be deleted, delete nothing.
    """

    def __init__(self, db_pool: Any = None, interval_seconds: float = 3600, dry_run: bool = False) -> None:
        self.backend: Backend = backend(db_pool)
        self.interval_seconds = interval_seconds
        self.dry_run = dry_run
        self._task: asyncio.Task[Any] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: The statistics of the last run (None before the first).
        self.last_stats: dict[str, Any] | None = None

    def _run_once_blocking(self) -> dict[str, Any]:
        start = time.monotonic()
        stats = self.backend.call("cleanup", "", dry_run=self.dry_run)
        out = {
            "timestamp": _dt.datetime.now().isoformat(),
            "elapsed_seconds": time.monotonic() - start,
            "sessions_deleted": int(stats["sessions_deleted"]),
            "files_deleted": int(stats["files_deleted"]),
            "bytes_freed": int(stats["bytes_freed"]),
        }
        self.last_stats = out
        logger.info("brig cleanup%s: %s", " (dry run)" if self.dry_run else "", out)
        return out

    async def run_once(self) -> dict[str, Any]:
        """Runs the cleanup once. Returns ``sessions_deleted``, ``files_deleted``,
        ``bytes_freed``, ``timestamp`` and ``elapsed_seconds``."""
        return await run_blocking(self._run_once_blocking)

    @property
    def running(self) -> bool:
        """Whether the periodic cleanup runs."""
        return self._task is not None or self._thread is not None

    def start(self) -> None:
        """Runs the cleanup now and then every ``interval_seconds``, in the background: an
        asyncio task when called inside a running event loop, else a daemon thread."""
        if self.running:
            logger.warning("cleanup job already running")
            return
        self._stop.clear()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._thread = threading.Thread(target=self._thread_loop, name="brig-cleanup", daemon=True)
            self._thread.start()
            return
        self._task = asyncio.get_running_loop().create_task(self._async_loop())

    async def _async_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
            except Exception:  # keep running: the next period may succeed (store back up)
                logger.exception("brig cleanup failed")
            await asyncio.sleep(self.interval_seconds)

    def _thread_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._run_once_blocking()
            except Exception:
                logger.exception("brig cleanup failed")
            self._stop.wait(self.interval_seconds)

    def stop(self) -> Awaitable[None]:
        """Stops the periodic cleanup. Returns an awaitable that waits for it to end (awaiting
        is optional; a background thread is joined before stop returns)."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        return _Stopped(task)
