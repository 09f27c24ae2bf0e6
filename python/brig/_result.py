"""ExecutionResult: the native type when the extension is built, else a pure-Python twin."""

from __future__ import annotations

import base64
from typing import Any

from .errors import PythonError

try:
    from ._native import ExecutionResult  # type: ignore[attr-defined]
except ImportError:  # remote-only install: the same attributes, in Python

    class ExecutionResult:  # type: ignore[no-redef]
        """What an execution did: stdout, stderr, result, error, success, failure, duration_ms."""

        __slots__ = (
            "stdout", "stderr", "result", "error", "exit_code", "failure", "failure_message",
            "session", "duration_ms", "ok", "stdout_truncated", "stderr_truncated",
            "display", "display_note",
        )

        def __init__(self, *, stdout: str = "", stderr: str = "", result: str | None = None,
                     error: PythonError | None = None, exit_code: int | None = None,
                     failure: str | None = None, failure_message: str = "",
                     session: dict | None = None, duration_ms: float = 0.0, ok: bool = False,
                     stdout_truncated: bool = False, stderr_truncated: bool = False,
                     display: list | None = None, display_note: str | None = None) -> None:
            self.stdout, self.stderr, self.result, self.error = stdout, stderr, result, error
            self.exit_code, self.failure, self.failure_message = exit_code, failure, failure_message
            self.session, self.duration_ms, self.ok = session, duration_ms, ok
            self.stdout_truncated, self.stderr_truncated = stdout_truncated, stderr_truncated
            #: What the code showed with brig.show(obj): [{MIME type: bytes | str}], in order.
            self.display = [] if display is None else display
            self.display_note = display_note

        @property
        def outputs(self) -> list:
            """Same as display."""
            return self.display

        @property
        def success(self) -> bool:
            """True when the code ran to the end without an exception."""
            return self.ok

        @property
        def value(self) -> str | None:
            """Same as result."""
            return self.result

        def __repr__(self) -> str:
            if self.ok:
                return f"ExecutionResult(success=True, result={self.result!r}, stdout={self.stdout!r})"
            return (f"ExecutionResult(success=False, error={self.error!r}, failure={self.failure!r}, "
                    f"stdout={self.stdout!r})")


# MIME types whose data are bytes (base64 in the server's JSON); the others are text.
BINARY_DISPLAY_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})


def display_from_json(items: Any) -> list[dict[str, bytes | str]]:
    """The server's "display" list with image bytes decoded (the server checked them)."""
    out: list[dict[str, bytes | str]] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            out.append({str(k): base64.b64decode(v) if k in BINARY_DISPLAY_TYPES else str(v)
                        for k, v in item.items() if isinstance(v, str)})
    return out


_FAILURE_ERROR_TYPES = {"timeout": "TimeoutError", "exit": "SystemExit", "trap": "SandboxTrap"}


def result_from_json(j: dict[str, Any]) -> "ExecutionResult":
    """An ExecutionResult from the JSON `brig serve` (and `brig exec --json`) answers."""
    failure = j.get("failure") or None
    error = j.get("error")
    if error:
        err: PythonError | None = PythonError(str(error.get("type", "")), str(error.get("message", "")),
                                              str(error.get("traceback", "")))
    elif failure:
        kind = str(failure.get("kind", ""))
        err = PythonError(_FAILURE_ERROR_TYPES.get(kind, "SandboxError"), str(failure.get("message", "")))
    else:
        err = None
    exit_code = j.get("exit_code")
    return ExecutionResult(
        stdout=str(j.get("stdout", "")), stderr=str(j.get("stderr", "")),
        result=None if j.get("result") is None else str(j["result"]),
        error=err, exit_code=None if exit_code is None else int(exit_code),
        failure=str(failure["kind"]) if failure else None,
        failure_message=str(failure.get("message", "")) if failure else "",
        session=j.get("session"), duration_ms=float(j.get("duration_ms") or 0.0),
        ok=bool(j.get("ok")), stdout_truncated=bool(j.get("stdout_truncated")),
        stderr_truncated=bool(j.get("stderr_truncated")),
        display=display_from_json(j.get("display")),
        display_note=None if j.get("display_note") is None else str(j["display_note"]),
    )
