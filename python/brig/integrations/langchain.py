"""brig's tools as LangChain tools (``langchain_core.tools.BaseTool``), for LangChain and
LangGraph agents. ``langchain_core`` is imported when :func:`langchain_tools` is called::

    from brig.integrations.langchain import langchain_tools
    tools = langchain_tools(brig.sandbox_tools("sqlite:/tmp/brig.db", thread_id="user_123"))
"""

from __future__ import annotations

from typing import Any, Iterable

from ..tools import Tool

__all__ = ["langchain_tools"]


def langchain_tools(tools: Iterable[Tool]) -> list[Any]:
    """A ``BaseTool`` per brig tool (name, description, the JSON Schema as ``args_schema``)."""
    try:
        from langchain_core.tools import BaseTool
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("langchain_tools needs langchain-core (pip install langchain-core)") from e

    made = []
    for t in tools:
        class _BrigTool(BaseTool):  # type: ignore[misc, valid-type]
            name: str = t.name
            description: str = t.description
            args_schema: Any = t.parameters

            def _run(self, *args: Any, _tool: Tool = t, **kwargs: Any) -> str:
                kwargs.pop("run_manager", None)
                return _tool(**kwargs)

            async def _arun(self, *args: Any, _tool: Tool = t, **kwargs: Any) -> str:
                import asyncio

                kwargs.pop("run_manager", None)
                return await asyncio.get_running_loop().run_in_executor(None, lambda: _tool(**kwargs))

        _BrigTool.__name__ = _BrigTool.__qualname__ = "Brig_" + t.name
        made.append(_BrigTool())
    return made
