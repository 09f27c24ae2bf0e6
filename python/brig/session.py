"""StatefulExecutor: mayflower-sandbox's stateful execution, on brig.

The same names and behaviour as ``mayflower_sandbox.session.StatefulExecutor``: variables,
functions, classes and imports persist per ``thread_id`` across executions and across
restarts of the program (the state lives in the store), and ``reset_session()`` clears them.
Change one import::

    from brig.session import StatefulExecutor      # was: mayflower_sandbox.session

    executor = StatefulExecutor(db_pool="sqlite:/tmp/brig.db",   # or "http://host:8080", or None
                                thread_id="user_123", allow_net=False, timeout_seconds=120.0)
    result = await executor.execute("x = 42")
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from typing import Any

from ._compat import run_blocking
from ._result import ExecutionResult
from .errors import NotFoundError, PythonError
from .store import Backend, backend

__all__ = ["StatefulExecutor", "SessionExecutionResult"]


def _value(repr_text: str | None) -> Any:
    """The last expression's value: a literal (number, str, list, dict...) as that value, any
    other object as its repr() text."""
    if repr_text is None:
        return None
    try:
        return ast.literal_eval(repr_text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return repr_text


@dataclass
class SessionExecutionResult:
    """What one execution did (mayflower-sandbox's ExecutionResult fields, and brig's).

    ``success``: ran to the end without an exception. ``stdout``/``stderr``: the output.
    ``result``: the last expression's value (literals as values, other objects as their
    repr text; ``result_repr`` always the text), or None. ``error``: a
    :class:`brig.PythonError` (a str: ``"NameError: name 'x' is not defined"``, with
    ``.type``, ``.message``, ``.traceback``) or None. ``execution_time``: seconds.
    ``created_files``: session files this execution saved; ``files``: the same (regular
    files only) as dicts with ``path``, ``size`` and ``content_type``. ``display``: what the
    code showed with ``brig.show(obj)`` in the sandbox, in order: ``{MIME type: data}``
    dicts (bytes for PNG/JPEG/GIF, str otherwise). ``failure``: why the sandbox stopped the
    code (``"timeout"``...), else None.
    """

    success: bool
    stdout: str
    stderr: str
    result: Any = None
    error: PythonError | None = None
    execution_time: float = 0.0
    created_files: list[str] = field(default_factory=list)
    result_repr: str | None = None
    failure: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    display: list[dict[str, bytes | str]] = field(default_factory=list)
    raw: ExecutionResult | None = field(default=None, repr=False)


class StatefulExecutor:
    """Executes Python for one ``thread_id``, keeping its state between executions.

    ``db_pool``: where sessions live (see :func:`brig.store.backend`: a store URL, a server
    URL, a :class:`brig.Client`, or None for the default store). ``allow_net``: brig's guest
    has no network at all; True is accepted with a warning. ``timeout_seconds``: the limit of
    each execution (the sandbox stops the code; the session stays as it was before it).
    """

    def __init__(self, db_pool: Any = None, thread_id: str = "default", allow_net: bool = False,
                 timeout_seconds: float = 60.0, *, token: str | None = None) -> None:
        if not thread_id:
            raise ValueError("thread_id must not be empty")
        if allow_net:
            warnings.warn("brig's sandbox has no network: allow_net=True has no effect", RuntimeWarning,
                          stacklevel=2)
        self.thread_id = thread_id
        self.allow_net = allow_net
        self.timeout_seconds = float(timeout_seconds)
        self.backend: Backend = backend(db_pool, token=token)

    async def execute(self, code: str) -> SessionExecutionResult:
        """Runs ``code`` in the session (created on first use) and saves what it left."""
        r = await run_blocking(self.backend.execute, self.thread_id, code, self.timeout_seconds)
        session = r.session or {}
        return SessionExecutionResult(
            success=r.success, stdout=r.stdout, stderr=r.stderr, result=_value(r.result), error=r.error,
            execution_time=r.duration_ms / 1000.0, created_files=list(session.get("files_saved", [])),
            result_repr=r.result, failure=r.failure, files=list(session.get("files", [])),
            display=list(r.display), raw=r)

    async def reset_session(self) -> None:
        """Clears the session's variables, functions and imports (its files stay). The next
        ``execute("print(x)")`` raises NameError in the sandbox."""
        try:
            await run_blocking(self.backend.call, "reset", self.thread_id)
        except NotFoundError:
            pass  # nothing to clear
