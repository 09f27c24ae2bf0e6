"""FileServer: mayflower-sandbox's file server (GET /health, GET /files/...), on brig.

It runs ``brig serve`` (the brig binary: ``$BRIG_BIN``, else ``brig`` on PATH) over the same
store, which answers mayflower's endpoints and brig's whole HTTP API:

- ``GET /health`` -> ``{"status": "ok", ...}``
- ``GET /files/{thread_id}/{file_path}`` -> the file, with its Content-Type
- ``GET /files/{thread_id}?prefix=/tmp/`` -> a JSON array of paths
"""

from __future__ import annotations

import json
import queue
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from typing import IO, Any

from .client import Client
from .errors import BrigError
from .store import LocalStore, default_store_url

__all__ = ["FileServer", "find_brig"]


def find_brig() -> str:
    """The brig binary: ``$BRIG_BIN``, else ``brig`` on PATH."""
    path = os.environ.get("BRIG_BIN") or shutil.which("brig")
    if not path:
        raise FileNotFoundError("the brig binary was not found: set BRIG_BIN or put brig on PATH")
    return path


class FileServer:
    """Serves a store's session files over HTTP (``brig serve`` in a child process).

    ``db_pool``: a store URL (or None: the default store; a LocalStore's URL is used).
    ``host``/``port``: where to listen (port 0: a free one, see :attr:`port` once started).
    ``args``: more ``brig serve`` options (e.g. ``["--tokens", "tokens.txt"]``). ``log``: where
    :meth:`start` sends the server's log (its stderr; default: discarded). :meth:`run` blocks
    until the server ends (Ctrl-C stops it); :meth:`start`/:meth:`stop` (or ``with``) run it
    in the background.
    """

    def __init__(self, db_pool: Any = None, host: str = "0.0.0.0", port: int = 8080, *,
                 args: list[str] | None = None, brig_bin: str | None = None, log: IO[str] | None = None) -> None:
        if isinstance(db_pool, LocalStore):
            db_pool = db_pool.url
        if isinstance(db_pool, Client) or (isinstance(db_pool, str) and db_pool.startswith(("http:", "https:"))):
            raise ValueError("FileServer serves a store (sqlite:... or postgresql://...), not a server")
        self.db_url = db_pool if db_pool is not None else default_store_url()
        self.host, self.port = host, int(port)
        self.args = list(args or [])
        self.brig_bin = brig_bin
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._first_line: "queue.Queue[str]" = queue.Queue()

    @property
    def url(self) -> str:
        """The server's base URL (``http://host:port``; 127.0.0.1 for a wildcard host)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self.port}"

    def _command(self) -> list[str]:
        return [self.brig_bin or find_brig(), "serve", "--listen", f"{self.host}:{self.port}",
                "--db", self.db_url, *self.args]

    def _drain(self, stream: IO[bytes]) -> None:
        first = True
        for raw in stream:
            line = raw.decode("utf-8", "replace")
            if first:
                self._first_line.put(line)
                first = False
            if self.log is not None:
                self.log.write(line)
        if first:
            self._first_line.put("")

    def start(self, ready_timeout: float = 60.0) -> "FileServer":
        """Starts the server and waits until GET /health answers."""
        if self.process is not None:
            return self
        self.process = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True).start()
        deadline = time.monotonic() + ready_timeout
        try:  # "brig serve: listening on http://H:P (store ...)": the port, when 0 was asked
            first = self._first_line.get(timeout=ready_timeout)
        except queue.Empty:
            first = ""
        if "listening on http://" in first:
            self.port = int(first.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
        while True:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise BrigError(f"brig serve exited with status {code} (see its stderr)")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200 and json.loads(resp.read()).get("status") == "ok":
                        return self
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise BrigError(f"brig serve did not answer on {self.url} within {ready_timeout} s")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        """Stops the server (SIGTERM: running executions get to finish), then waits."""
        proc, self.process = self.process, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def run(self) -> int:
        """Runs the server in the foreground until it exits or Ctrl-C; returns its status."""
        self.process = subprocess.Popen(self._command())
        try:
            return self.process.wait()
        except KeyboardInterrupt:
            self.stop()
            return 0
        finally:
            self.process = None

    def __enter__(self) -> "FileServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
