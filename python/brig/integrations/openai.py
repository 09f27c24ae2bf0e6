"""brig's tools in the OpenAI tool-calling format (Chat Completions and Responses APIs).

Plain dicts: the ``openai`` package is not needed (nor imported) here::

    tools = brig.sandbox_tools(brig.Sandbox())
    resp = client.chat.completions.create(model=..., messages=msgs, tools=openai_tools(tools))
    for call in resp.choices[0].message.tool_calls or []:
        msgs.append(tool_message(tools, call))
"""

from __future__ import annotations

from typing import Any, Iterable

from ..tools import Tool

__all__ = ["openai_tools", "responses_tools", "tool_message", "run_tool_call"]


def openai_tools(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    """Chat Completions ``tools=``: ``{"type": "function", "function": {...}}`` each."""
    return [{"type": "function",
             "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in tools]


def responses_tools(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    """Responses API ``tools=``: ``{"type": "function", "name": ..., ...}`` each."""
    return [{"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
            for t in tools]


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def run_tool_call(tools: Iterable[Tool], call: Any) -> str:
    """Runs one tool call (an SDK object or a dict: ``function.name`` and
    ``function.arguments``, or Responses' ``name`` and ``arguments``); returns the text."""
    fn = _field(call, "function") or call
    name, arguments = _field(fn, "name"), _field(fn, "arguments")
    by_name = {t.name: t for t in tools}
    if name not in by_name:
        return f"Error: no tool named {name!r}"
    return by_name[name].call_json(arguments if arguments is not None else {})


def tool_message(tools: Iterable[Tool], call: Any) -> dict[str, Any]:
    """The Chat Completions ``{"role": "tool", ...}`` message answering ``call``."""
    return {"role": "tool", "tool_call_id": _field(call, "id"), "content": run_tool_call(tools, call)}
