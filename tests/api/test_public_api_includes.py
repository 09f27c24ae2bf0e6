"""The front ends (src/cli, src/server, src/mcp) and the public API test use only what
include/brig/ exports: no #include of brig's internal directories (src/store, src/session,
src/files, ...). Run by ctest as `api_includes`.

An include is refused when its first path component names a directory of src/ other than the
including front end's own (or is a relative path out of it). `brig/...`, the standard
library and third-party headers (CLI11, nlohmann, Boost) are fine, and so is the CLI
including the other front ends, which it starts (`brig serve`, `brig mcp`), and the server
including the MCP server, which it serves at POST /mcp; nothing else includes a front end.
"""
import os
import re
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FRONT_ENDS = ("cli", "server", "mcp")
# Front ends a front end may include besides its own directory.
MAY_START = {"cli": ("server", "mcp"), "server": ("mcp",)}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
SOURCES = (".cc", ".h", ".cpp", ".hpp")


def violations(root):
    """(file, line number, include) for every forbidden include under `root`."""
    src = os.path.join(root, "src")
    # src/util is a leaf of plain helpers with no brig concepts (base64, SHA-256/HMAC, byte
    # order), like a third-party library: the server's signed links use its HMAC.
    internal = {d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))} - set(FRONT_ENDS) - {"util"}
    checked = []  # (directory, the front end it may include from, relative includes allowed)
    for front in FRONT_ENDS:
        if os.path.isdir(os.path.join(src, front)):
            checked.append((os.path.join(src, front), front, False))
    checked.append((os.path.join(root, "tests", "api"), None, True))  # test harness: ../store/pg_harness.h
    found = []
    for directory, own, relative_ok in checked:
        if not os.path.isdir(directory):
            continue
        for dirpath, _, names in os.walk(directory):
            for name in sorted(names):
                if not name.endswith(SOURCES):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for m in INCLUDE.finditer(text):
                    inc = m.group(1)
                    first = inc.split("/", 1)[0]
                    bad = (first in internal or (first in FRONT_ENDS and first != own and first not in MAY_START.get(own, ()))  or
                           (first == ".." and not relative_ok) or
                           (first == ".." and relative_ok and inc.split("/")[1:2] != ["store"]))
                    if bad:
                        line = text.count("\n", 0, m.start()) + 1
                        found.append((os.path.relpath(path, root), line, inc))
    return found


class PublicApiIncludes(unittest.TestCase):
    def test_front_ends_include_only_the_public_api(self):
        found = violations(ROOT)
        self.assertEqual(found, [], "internal headers included by front ends (use include/brig/ instead):\n" +
                         "\n".join("%s:%d: #include \"%s\"" % v for v in found))

    def test_the_check_finds_an_internal_include(self):
        with tempfile.TemporaryDirectory() as root:
            for d in ("src/cli", "src/server", "src/store", "src/session", "src/names", "src/util", "tests/api"):
                os.makedirs(os.path.join(root, d))
            with open(os.path.join(root, "src/cli/a.cc"), "w") as f:
                f.write('#include <string>\n#include "brig/store.h"\n#include "cli/commands.h"\n'
                        '#include "store/store.h"\n#include "server/server.h"\n#include "names/utf8.h"\n'
                        '#include "util/base64.h"\n')
            with open(os.path.join(root, "src/server/b.h"), "w") as f:
                f.write('#include <boost/beast.hpp>\n  #  include <session/session_manager.h>\n'
                        '#include "../session/x.h"\n#include "server/ok.h"\n#include "cli/output.h"\n')
            with open(os.path.join(root, "tests/api/t.cc"), "w") as f:
                f.write('#include "../store/pg_harness.h"\n#include "../../src/store/store.h"\n')
            self.assertEqual(sorted(violations(root)), [
                ("src/cli/a.cc", 4, "store/store.h"),
                ("src/cli/a.cc", 6, "names/utf8.h"),
                ("src/server/b.h", 2, "session/session_manager.h"),
                ("src/server/b.h", 3, "../session/x.h"),
                ("src/server/b.h", 5, "cli/output.h"),
                ("tests/api/t.cc", 2, "../../src/store/store.h"),
            ])


if __name__ == "__main__":
    unittest.main()
