"""Agent tools (brig.tools) over an in-process sandbox, a local session and a server session,
and the framework adapters (imported lazily)."""

import subprocess
import sys
import types
import unittest

from support import ServerCase, TempHome, needs_native

import brig
from brig.integrations.openai import openai_tools, responses_tools, run_tool_call, tool_message

NAMES = ["python_run", "file_read", "file_write", "file_list", "file_delete", "file_edit", "file_glob", "file_grep"]


class ToolBehaviour:
    """The same checks for every kind of target; subclasses set self.tools."""

    def t(self, name, **kwargs):
        return {t.name: t for t in self.tools}[name](**kwargs)

    def test_names_and_schemas(self):
        self.assertEqual([t.name for t in self.tools], NAMES)
        for t in self.tools:
            self.assertTrue(t.description)
            self.assertEqual(t.parameters["type"], "object")
            for req in t.parameters["required"]:
                self.assertIn(req, t.parameters["properties"])

    def test_python_run(self):
        self.assertEqual(self.t("python_run", code="v = 20\nprint('out')\nv + 1"), "out\nResult: 21")
        self.assertEqual(self.t("python_run", code="v * 2"), "Result: 40")
        err = self.t("python_run", code="undefined_name")
        self.assertIn("Error:", err)
        self.assertIn("NameError", err)
        self.assertIn("Traceback", err)

    def test_files(self):
        self.assertIn("Wrote 13 bytes", self.t("file_write", path="/home/user/a.py", content="x = 1\ny = 22\n"))
        self.assertEqual(self.t("file_read", path="/home/user/a.py"), "x = 1\ny = 22\n")
        self.assertEqual(self.t("file_read", path="a.py", offset=6, limit=6), "y = 22")
        self.assertIn("/home/user/a.py (13 bytes)", self.t("file_list", prefix="/home/user/"))
        self.assertIn("Replaced 1 occurrence", self.t("file_edit", path="/home/user/a.py", old_text="22",
                                                      new_text="33"))
        self.assertIn("Error:", self.t("file_edit", path="/home/user/a.py", old_text="nothere", new_text="x"))
        self.t("file_write", path="/home/user/b.py", content="y = 1\ny = 2\n")
        self.assertIn("Error:", self.t("file_edit", path="/home/user/b.py", old_text="y =", new_text="z ="))
        self.assertIn("Replaced 2", self.t("file_edit", path="/home/user/b.py", old_text="y =", new_text="z =",
                                           replace_all=True))
        self.assertEqual(self.t("file_glob", pattern="/home/user/*.py"), "/home/user/a.py\n/home/user/b.py")
        self.assertEqual(self.t("file_grep", pattern=r"y = \d+"), "/home/user/a.py:2: y = 33")
        self.assertEqual(self.t("file_grep", pattern="Z =", case_insensitive=True, mode="count"),
                         "/home/user/b.py: 2")
        self.assertEqual(self.t("file_grep", pattern="=", mode="files_with_matches", path_glob="/home/user/b*"),
                         "/home/user/b.py")
        self.assertIn("Deleted", self.t("file_delete", path="/home/user/b.py"))
        self.assertIn("Error:", self.t("file_read", path="/home/user/b.py"))
        self.assertEqual(self.t("python_run", code="open('/home/user/a.py').read()"), r"Result: 'x = 1\ny = 33\n'")

    def test_bad_input_is_an_error_text_not_a_raise(self):
        tool = {t.name: t for t in self.tools}["file_read"]
        self.assertIn("Error:", tool.call_json("{not json"))
        self.assertIn("Error:", tool.call_json({"nope": 1}))
        self.assertIn("Error:", tool.call_json({"path": "/etc/passwd"}))


@needs_native
class SandboxToolsTest(ToolBehaviour, unittest.TestCase):
    def setUp(self):
        self.tools = brig.sandbox_tools(brig.Sandbox())


@needs_native
class LocalSessionToolsTest(ToolBehaviour, unittest.TestCase):
    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.close)
        self.tools = brig.sandbox_tools(self.home.url, thread_id="agent")


class RemoteSessionToolsTest(ToolBehaviour, ServerCase):
    def setUp(self):
        self.tools = brig.sandbox_tools(self.url, thread_id="agent-" + self._testMethodName)


class AdaptersTest(unittest.TestCase):
    def setUp(self):
        calls = []
        self.calls = calls
        self.tools = [brig.Tool("echo", "Echo.", {"type": "object", "properties": {"s": {"type": "string"}},
                                                  "required": ["s"]}, lambda s: calls.append(s) or s.upper())]

    def test_openai_formats(self):
        self.assertEqual(openai_tools(self.tools), [{"type": "function", "function": {
            "name": "echo", "description": "Echo.", "parameters": self.tools[0].parameters}}])
        self.assertEqual(responses_tools(self.tools)[0]["name"], "echo")
        call = {"id": "call_1", "type": "function", "function": {"name": "echo", "arguments": '{"s": "hi"}'}}
        self.assertEqual(tool_message(self.tools, call), {"role": "tool", "tool_call_id": "call_1", "content": "HI"})
        sdk_like = types.SimpleNamespace(id="c2", function=types.SimpleNamespace(name="echo", arguments='{"s":"x"}'))
        self.assertEqual(run_tool_call(self.tools, sdk_like), "X")
        self.assertIn("no tool named", run_tool_call(self.tools, {"name": "zzz", "arguments": "{}"}))

    def test_langchain_adapter_uses_base_tool(self):
        # A stand-in for langchain_core.tools (not installed here): the adapter must subclass
        # its BaseTool and route _run to the brig tool.
        fake = types.ModuleType("langchain_core.tools")

        class BaseTool:
            def invoke(self, args):
                return self._run(**args)

        fake.BaseTool = BaseTool
        saved = {k: sys.modules.get(k) for k in ("langchain_core", "langchain_core.tools")}
        sys.modules["langchain_core"] = types.ModuleType("langchain_core")
        sys.modules["langchain_core.tools"] = fake
        try:
            from brig.integrations.langchain import langchain_tools

            (lt,) = langchain_tools(self.tools)
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
        self.assertIsInstance(lt, BaseTool)
        self.assertEqual((lt.name, lt.description, lt.args_schema), ("echo", "Echo.", self.tools[0].parameters))
        self.assertEqual(lt.invoke({"s": "lc"}), "LC")

    def test_package_imports_without_frameworks(self):
        code = ("import sys, brig, brig.tools, brig.integrations.openai, brig.integrations.langchain\n"
                "bad = [m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'langchain', 'openai')]\n"
                "print(bad)")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONPATH": ":".join(p for p in sys.path if p)})
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "[]"), p.stderr)


if __name__ == "__main__":
    unittest.main()
