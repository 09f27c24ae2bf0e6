"""brig's exceptions: one class per kind of failure, the same in both modes.

In-process calls (brig's C++ API reports a status code) and calls to ``brig serve`` (its
JSON error codes) raise the same classes. Each also derives from the nearest built-in
exception, so ``except KeyError`` or ``except TimeoutError`` work as expected.

A Python exception raised by the *sandboxed* code is never raised here: it is part of the
execution's result (``result.error``, a :class:`PythonError`).
"""

from __future__ import annotations

__all__ = [
    "BrigError",
    "InvalidArgumentError",
    "NotFoundError",
    "SessionNotFoundError",
    "AlreadyExistsError",
    "FailedPreconditionError",
    "SessionExpiredError",
    "ResourceExhaustedError",
    "ConflictError",
    "UnavailableError",
    "DeadlineExceededError",
    "InternalError",
    "UnauthorizedError",
    "PythonError",
]


class BrigError(Exception):
    """Base of every error brig raises. ``code`` is the status code (e.g. ``"not_found"``)."""

    code = "internal"

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The HTTP status, for an error a server answered.
        self.status = status


class InvalidArgumentError(BrigError, ValueError):
    """A malformed argument: a bad thread_id, path, limit or pattern."""

    code = "invalid_argument"


class NotFoundError(BrigError, LookupError):
    """The session or file does not exist."""

    code = "not_found"


class SessionNotFoundError(NotFoundError):
    """The session does not exist (mayflower-sandbox's name)."""


class AlreadyExistsError(BrigError):
    """The session (or fork target) to create exists already."""

    code = "already_exists"


class FailedPreconditionError(BrigError):
    """The call needs another state (e.g. an expired session, a dead sandbox)."""

    code = "failed_precondition"


class SessionExpiredError(FailedPreconditionError):
    """The session has expired: extend it to use it again (mayflower-sandbox's name)."""

    code = "session_expired"


class ResourceExhaustedError(BrigError):
    """A quota or limit was reached (files per session, bytes, queue)."""

    code = "resource_exhausted"


class ConflictError(BrigError):
    """Someone else changed the data first; nothing was changed."""

    code = "conflict"


class UnavailableError(BrigError, ConnectionError):
    """The store or the server cannot be reached; retrying may help."""

    code = "unavailable"


class DeadlineExceededError(BrigError, TimeoutError):
    """A time limit passed (e.g. the session stayed locked by another execution)."""

    code = "deadline_exceeded"


class InternalError(BrigError):
    """A bug or a broken invariant in brig."""

    code = "internal"


class UnauthorizedError(BrigError, PermissionError):
    """The server refused the token (missing, unknown, or not allowed this)."""

    code = "unauthorized"


_BY_CODE: dict[str, type[BrigError]] = {
    "invalid_argument": InvalidArgumentError,
    "invalid_json": InvalidArgumentError,
    "bad_request": InvalidArgumentError,
    "not_found": SessionNotFoundError,
    "already_exists": AlreadyExistsError,
    "failed_precondition": FailedPreconditionError,
    "session_expired": SessionExpiredError,
    "resource_exhausted": ResourceExhaustedError,
    "too_many_requests": ResourceExhaustedError,
    "payload_too_large": ResourceExhaustedError,
    "conflict": ConflictError,
    "unavailable": UnavailableError,
    "deadline_exceeded": DeadlineExceededError,
    "timeout": DeadlineExceededError,
    "unauthorized": UnauthorizedError,
    "forbidden": UnauthorizedError,
    "internal": InternalError,
}


def _from_status(code: str, message: str, status: int | None = None) -> BrigError:
    """The exception for a status code (in-process) or a server's error code (remote)."""
    if code == "failed_precondition" and "expired" in message:
        code = "session_expired"
    cls = _BY_CODE.get(code, BrigError)
    if cls is SessionNotFoundError and "session" not in message.lower():
        cls = NotFoundError  # a missing file, not a missing session
    return cls(message, status=status)


class PythonError(str):
    """The exception the sandboxed code raised (or the sandbox's reason for stopping it).

    A ``str`` (``"ZeroDivisionError: division by zero"``), as mayflower-sandbox's
    ``result.error`` is, with the parts as attributes: ``type``, ``message`` and
    ``traceback`` (as CPython prints it; empty when the sandbox stopped the code, e.g.
    ``type == "TimeoutError"`` for a timeout).
    """

    type: str
    message: str
    traceback: str

    def __new__(cls, type: str, message: str, traceback: str = "") -> "PythonError":
        self = super().__new__(cls, f"{type}: {message}" if message else type)
        self.type = type
        self.message = message
        self.traceback = traceback
        return self

    def __reduce__(self):
        return (PythonError, (self.type, self.message, self.traceback))
