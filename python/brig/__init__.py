"""brig: run untrusted Python in WebAssembly sandboxes, in this process or on a server.

In-process (the engine linked into this process by the extension module)::

    import brig
    sb = brig.Sandbox()
    r = sb.execute("import math\\nmath.pi * 2")
    r.success, r.result            # (True, '6.283185307179586')

Remote, against ``brig serve``: ``brig.Sandbox(server="http://127.0.0.1:8080")``.

mayflower-sandbox's API (async; sessions that persist in SQLite or PostgreSQL, or on a
server): :class:`StatefulExecutor`, :class:`SandboxManager`, :class:`CleanupJob`,
:class:`FileServer` (also as ``brig.session``, ``brig.manager``, ``brig.cleanup``,
``brig.server``, the module names mayflower uses). Agent tools: :func:`sandbox_tools`.
"""

from __future__ import annotations

import json as _json
from types import ModuleType

from . import errors
from .errors import *  # noqa: F401,F403
from .errors import PythonError, _from_status


def _native_module() -> ModuleType:
    """The extension module; ImportError (saying why) when it is not built."""
    from . import _native  # type: ignore[attr-defined]

    return _native


try:
    _native_module()._configure(_from_status, PythonError, _json.loads)
    HAVE_NATIVE = True
except ImportError:
    HAVE_NATIVE = False

from ._result import ExecutionResult  # noqa: E402
from .cleanup import CleanupJob  # noqa: E402
from .client import Client  # noqa: E402
from .manager import SandboxManager  # noqa: E402
from .sandbox import RemoteSandbox, Sandbox  # noqa: E402
from .server import FileServer  # noqa: E402
from .session import SessionExecutionResult, StatefulExecutor  # noqa: E402
from .store import LocalStore, backend  # noqa: E402
from .tools import Tool, sandbox_tools  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Sandbox", "RemoteSandbox", "ExecutionResult", "PythonError", "Client", "LocalStore", "backend",
    "StatefulExecutor", "SessionExecutionResult", "SandboxManager", "CleanupJob", "FileServer",
    "Tool", "sandbox_tools", "HAVE_NATIVE", "errors",
] + list(errors.__all__)
