"""Agent tools: run Python and work with files in a sandbox, as plain functions.

Each :class:`Tool` has a ``name``, a ``description`` written for a model, a JSON Schema of
its arguments (``parameters``) and a function that takes those arguments as keywords and
returns text for the model. The five tools mayflower-sandbox offers (``python_run``,
``file_read``, ``file_write``, ``file_list``, ``file_delete``) plus ``file_edit``,
``file_glob`` and ``file_grep``::

    tools = brig.sandbox_tools(brig.Sandbox())                          # in-process sandbox
    tools = brig.sandbox_tools("http://127.0.0.1:8080", thread_id="t1")  # a session on a server
    by_name = {t.name: t for t in tools}
    print(by_name["python_run"](code="print(6 * 7)"))

Framework adapters import their framework only when called:
:func:`brig.integrations.openai.openai_tools` and
:func:`brig.integrations.langchain.langchain_tools`.

A Python exception in the sandbox is returned as text (with its traceback) so that the
model can correct itself; a misuse (a missing file, a bad path) is returned as
``"Error: ..."``, never raised.
"""

from __future__ import annotations

import ast
import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from .errors import BrigError
from .store import backend as _backend

__all__ = ["Tool", "sandbox_tools", "format_result"]

#: Output kept per stream in a tool's answer (a model's context is not a log file).
MAX_OUTPUT_CHARS = 20_000


@dataclass(frozen=True)
class Tool:
    """One agent tool: name, description, JSON Schema of the arguments, and the function."""

    name: str
    description: str
    parameters: dict[str, Any]
    func: Callable[..., str] = field(repr=False)

    def __call__(self, **kwargs: Any) -> str:
        """Calls the tool with its arguments as keywords; returns the text for the model."""
        return self.func(**kwargs)

    def call_json(self, arguments: str | dict[str, Any]) -> str:
        """Calls the tool with arguments as a model sends them (a JSON object or its text)."""
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError as e:
                return f"Error: the arguments are not valid JSON: {e}"
        if not isinstance(arguments, dict):
            return "Error: the arguments must be a JSON object"
        try:
            return self.func(**arguments)
        except TypeError as e:
            return f"Error: bad arguments for {self.name}: {e}"


def _cap(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return text[:MAX_OUTPUT_CHARS] + f"\n[output truncated: {len(text) - MAX_OUTPUT_CHARS} more characters]"


def format_result(r: Any) -> str:
    """An execution result as text for a model: stdout, stderr, the value, the error."""
    parts = []
    if r.stdout:
        parts.append(_cap(r.stdout).rstrip("\n"))
    if r.stderr:
        parts.append("stderr:\n" + _cap(r.stderr).rstrip("\n"))
    if r.result is not None:
        parts.append("Result: " + _cap(r.result))
    if r.error is not None:
        err = r.error
        tb = getattr(err, "traceback", "") or ""
        parts.append("Error:\n" + (_cap(tb).rstrip("\n") if tb else str(err)))
    if not parts:
        parts.append("(no output)")
    return "\n".join(parts)


class _Target(Protocol):
    def run(self, code: str, timeout: float | None) -> Any: ...
    def read(self, path: str, offset: int, limit: int | None) -> bytes: ...
    def write(self, path: str, data: bytes) -> None: ...
    def list(self, prefix: str) -> list[tuple[str, int]]: ...
    def delete(self, path: str) -> None: ...
    def edit(self, path: str, old: str, new: str, replace_all: bool) -> int: ...
    def glob(self, pattern: str) -> list[str]: ...
    def grep(self, pattern: str, path_glob: str, mode: str, case_insensitive: bool) -> str: ...


def _abs(path: str) -> str:
    return path if path.startswith("/") else "/home/user/" + path


# Runs inside the sandbox (it has the time limit): glob and grep over the sandbox's files,
# so that a model's regular expression never runs on the host.
_GUEST_GREP = r"""
def __brig_grep(pattern, path_glob, mode, ci):
    import fnmatch, os, re
    rx = re.compile(pattern, re.I if ci else 0)
    out, n = [], 0
    for root in ("/home/user", "/tmp"):
        for d, _, files in os.walk(root):
            for f in sorted(files):
                p = os.path.join(d, f)
                if path_glob and not fnmatch.fnmatch(p, path_glob):
                    continue
                try:
                    lines = open(p, encoding="utf-8", errors="replace").read().splitlines()
                except OSError:
                    continue
                hits = [(i + 1, l) for i, l in enumerate(lines) if rx.search(l)]
                if not hits:
                    continue
                if mode == "files_with_matches":
                    out.append(p)
                elif mode == "count":
                    out.append(f"{p}: {len(hits)}")
                else:
                    out.extend(f"{p}:{i}: {l[:2000]}" for i, l in hits)
    return "\n".join(out)
"""


class _SandboxTarget:
    """Tools over a brig.Sandbox or RemoteSandbox (its own files)."""

    def __init__(self, sandbox: Any) -> None:
        self.sb = sandbox

    def run(self, code: str, timeout: float | None) -> Any:
        return self.sb.execute(code, timeout=timeout)

    def read(self, path: str, offset: int, limit: int | None) -> bytes:
        data = self.sb.read_file(path)
        if data is None:
            raise FileNotFoundError(f"no file {path}")
        return data[offset:] if limit is None else data[offset:offset + limit]

    def write(self, path: str, data: bytes) -> None:
        self.sb.write_file(path, data)

    def list(self, prefix: str) -> list[tuple[str, int]]:
        return [(p, n) for p, n in self.sb.list_files() if p.startswith(prefix)]

    def _guest(self, code: str) -> str:
        r = self.sb.execute(code)
        if not r.success:
            raise BrigError(str(r.error))
        # The value comes back as repr() of a JSON string: two decodings, neither eval.
        return json.loads(ast.literal_eval(r.result)) if r.result else ""

    def delete(self, path: str) -> None:
        self._guest(f"import os as __o; __o.remove({path!r}); del __o")

    def edit(self, path: str, old: str, new: str, replace_all: bool) -> int:
        text = self.read(path, 0, None).decode("utf-8")
        n = text.count(old) if old else 0
        if n == 0:
            raise LookupError(f"the text to replace does not occur in {path}")
        if n > 1 and not replace_all:
            raise ValueError(f"the text to replace occurs {n} times in {path}: give more context or replace_all")
        self.write(path, text.replace(old, new, -1 if replace_all else 1).encode())
        return n if replace_all else 1

    def glob(self, pattern: str) -> list[str]:
        return [p for p, _ in self.sb.list_files() if fnmatch.fnmatchcase(p, pattern)]

    def grep(self, pattern: str, path_glob: str, mode: str, case_insensitive: bool) -> str:
        args = json.dumps([pattern, path_glob, mode, case_insensitive])
        return self._guest(_GUEST_GREP + f"\nimport json as __j\n__j.dumps(__brig_grep(*__j.loads({args!r})))")


class _SessionTarget:
    """Tools over a session of a store or a server (brig's file API, no execution needed)."""

    def __init__(self, backend: Any, thread_id: str, timeout: float | None) -> None:
        self.b, self.tid, self.timeout = backend, thread_id, timeout

    def run(self, code: str, timeout: float | None) -> Any:
        return self.b.execute(self.tid, code, timeout if timeout is not None else self.timeout)

    def read(self, path: str, offset: int, limit: int | None) -> bytes:
        return self.b.read_file(self.tid, path, offset, limit)[0]

    def write(self, path: str, data: bytes) -> None:
        self.b.write_file(self.tid, path, data)

    def list(self, prefix: str) -> list[tuple[str, int]]:
        files = self.b.call("file_list", self.tid, prefix=prefix)["files"]
        return [(f["path"], int(f["size"])) for f in files if f.get("content_type") != "inode/directory"]

    def delete(self, path: str) -> None:
        self.b.call("file_delete", self.tid, path=path)

    def edit(self, path: str, old: str, new: str, replace_all: bool) -> int:
        j = self.b.call("file_edit", self.tid, path=path, old_text=old, new_text=new, replace_all=replace_all)
        return int(j["replacements"])

    def glob(self, pattern: str) -> list[str]:
        return [f["path"] for f in self.b.call("file_glob", self.tid, pattern=pattern)["files"]]

    def grep(self, pattern: str, path_glob: str, mode: str, case_insensitive: bool) -> str:
        args: dict[str, Any] = {"pattern": pattern, "mode": mode, "case_insensitive": case_insensitive}
        if path_glob:
            args["path_glob"] = path_glob
        j = self.b.call("file_grep", self.tid, **args)
        out = []
        for f in j["files"]:
            if mode == "files_with_matches":
                out.append(f["path"])
            elif mode == "count":
                out.append(f"{f['path']}: {f['count']}")
            else:
                out.extend(f"{f['path']}:{l['line']}: {l['text']}" for l in f.get("lines", []))
        if j.get("truncated"):
            out.append(f"[search truncated: {j.get('truncated_reason')}]")
        return "\n".join(out)


def _guarded(fn: Callable[..., str]) -> Callable[..., str]:
    def call(**kwargs: Any) -> str:
        try:
            return fn(**kwargs)
        except (BrigError, OSError, LookupError, ValueError, UnicodeDecodeError) as e:
            return f"Error: {e}"
    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


_PATH = {"type": "string", "description": "Absolute path in the sandbox, e.g. /home/user/data.csv "
                                          "(relative paths are under /home/user)."}


def sandbox_tools(target: Any = None, thread_id: str | None = None, *, timeout_seconds: float | None = None,
                  token: str | None = None) -> list[Tool]:
    """The eight tools for ``target``.

    ``target``: a :class:`brig.Sandbox` or :class:`brig.RemoteSandbox` (its own files), or,
    with ``thread_id``, where a session lives (a store URL, a server URL, a
    :class:`brig.Client`, a LocalStore, or None for the default store): the tools then work
    on that persistent session, as mayflower-sandbox's do.
    """
    if thread_id is None:
        if target is None or not hasattr(target, "execute") or not hasattr(target, "read_file"):
            raise TypeError("sandbox_tools(sandbox) or sandbox_tools(db_or_server, thread_id=...)")
        t: Any = _SandboxTarget(target)
    else:
        t = _SessionTarget(_backend(target, token=token), thread_id, timeout_seconds)

    def python_run(code: str, timeout_s: float | None = None) -> str:
        """Run Python code."""
        return format_result(t.run(code, timeout_s))

    def file_read(path: str, offset: int = 0, limit: int | None = None) -> str:
        """Read a file."""
        data = t.read(_abs(path), offset, limit)
        try:
            return _cap(data.decode("utf-8"))
        except UnicodeDecodeError:
            return f"(binary file, {len(data)} bytes shown: not UTF-8 text)"

    def file_write(path: str, content: str) -> str:
        """Write a file."""
        data = content.encode("utf-8")
        t.write(_abs(path), data)
        return f"Wrote {len(data)} bytes to {_abs(path)}"

    def file_list(prefix: str = "/") -> str:
        """List files."""
        files = t.list(_abs(prefix) if prefix not in ("", "/") else "/")
        return "\n".join(f"{p} ({n} bytes)" for p, n in files) or "(no files)"

    def file_delete(path: str) -> str:
        """Delete a file."""
        t.delete(_abs(path))
        return f"Deleted {_abs(path)}"

    def file_edit(path: str, old_text: str, new_text: str, replace_all: bool = False) -> str:
        """Edit a file."""
        n = t.edit(_abs(path), old_text, new_text, replace_all)
        return f"Replaced {n} occurrence{'s' if n != 1 else ''} in {_abs(path)}"

    def file_glob(pattern: str) -> str:
        """Find files by pattern."""
        return "\n".join(t.glob(_abs(pattern))) or "(no match)"

    def file_grep(pattern: str, path_glob: str = "", mode: str = "content", case_insensitive: bool = False) -> str:
        """Search file contents."""
        return _cap(t.grep(pattern, _abs(path_glob) if path_glob else "", mode, case_insensitive)) or "(no match)"

    return [
        Tool("python_run",
             "Run Python 3.11 code in a sandbox that keeps its variables, functions, imports and files "
             "between calls (no network). Returns stdout, stderr, the value of the last expression, and "
             "the error with its traceback if the code raised. Files live under /home/user and /tmp.",
             _obj({"code": {"type": "string", "description": "Python source to run."},
                   "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600,
                                 "description": "Time limit in seconds (default: the sandbox's)."}}, ["code"]),
             _guarded(python_run)),
        Tool("file_read", "Read a text file from the sandbox, optionally `limit` bytes from byte `offset`.",
             _obj({"path": _PATH, "offset": {"type": "integer", "minimum": 0},
                   "limit": {"type": "integer", "minimum": 0}}, ["path"]),
             _guarded(file_read)),
        Tool("file_write", "Create or overwrite a text file in the sandbox (parent directories are made).",
             _obj({"path": _PATH, "content": {"type": "string", "description": "The whole new content."}},
                  ["path", "content"]),
             _guarded(file_write)),
        Tool("file_list", "List the sandbox's files (path and size) whose path starts with `prefix`.",
             _obj({"prefix": {"type": "string", "description": "e.g. /home/user/ (default: every file)."}}, []),
             _guarded(file_list)),
        Tool("file_delete", "Delete a file from the sandbox.", _obj({"path": _PATH}, ["path"]),
             _guarded(file_delete)),
        Tool("file_edit",
             "Replace `old_text` with `new_text` in a file: its only occurrence (fails if it occurs more "
             "than once; add context), or every occurrence with replace_all.",
             _obj({"path": _PATH, "old_text": {"type": "string", "minLength": 1}, "new_text": {"type": "string"},
                   "replace_all": {"type": "boolean"}}, ["path", "old_text", "new_text"]),
             _guarded(file_edit)),
        Tool("file_glob", "Find files whose path matches a shell pattern, e.g. /home/user/**/*.py.",
             _obj({"pattern": {"type": "string"}}, ["pattern"]), _guarded(file_glob)),
        Tool("file_grep",
             "Search the sandbox's files for lines matching a regular expression. mode: content "
             "(path:line: text), files_with_matches, or count.",
             _obj({"pattern": {"type": "string"}, "path_glob": {"type": "string"},
                   "mode": {"enum": ["content", "files_with_matches", "count"]},
                   "case_insensitive": {"type": "boolean"}}, ["pattern"]),
             _guarded(file_grep)),
    ]
