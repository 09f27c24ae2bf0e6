"""Helpers shared by the mayflower-compatible classes: session dicts, async calls."""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
from typing import Any, Callable, TypeVar

T = TypeVar("T")

_TIME_FIELDS = ("created_at", "last_accessed", "expires_at", "modified_at")


def parse_time(text: Any) -> Any:
    """'2026-05-21T10:00:00Z' -> an aware UTC datetime (anything else unchanged)."""
    if not isinstance(text, str):
        return text
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text


def session_record(j: dict[str, Any]) -> dict[str, Any]:
    """A session as mayflower-sandbox returns it: a dict with datetime timestamps."""
    out = dict(j)
    for k in _TIME_FIELDS:
        if k in out:
            out[k] = parse_time(out[k])
    return out


async def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a blocking brig call on the default executor (the engine releases the GIL)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))
