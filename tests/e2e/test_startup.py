"""Start-up of the real `brig` binary (issue #9): what it links, and the stdlib mount read
from the pack's pre-built index as the guest sees it. No timings here: those are in
bench/startup.py and bench/RESULTS.md."""
import json
import os
import subprocess
import unittest

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))
LIB = "/usr/local/lib/python3.11"


def cache_value(name):
    """The build's CMake setting `name` (the binary sits in the build directory)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(BRIG)), "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split("=", 1)[1].strip()
    raise AssertionError(name + " is not in CMakeCache.txt")


def run_json(code):
    p = subprocess.run([BRIG, "exec", "-c", code], capture_output=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(p.stderr.decode())
    return json.loads(p.stdout)


class LinkTest(unittest.TestCase):
    def test_shared_libraries_and_relocations(self):
        out = subprocess.run(["readelf", "-dW", BRIG], capture_output=True, text=True, check=True).stdout
        needed = {line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}
        if cache_value("BRIG_STATIC_DEPS") == "ON":
            # libpq is loaded only when a PostgreSQL store is used.
            self.assertLessEqual(needed, {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"})
            self.assertIn("(RELR)", out)
        else:
            self.assertIn("libsqlite3.so.0", needed)
        self.assertIn("PIE", out)  # FLAGS_1: ASLR stays
        self.assertNotIn("libpq.so.5", needed)


class StdlibMountTest(unittest.TestCase):
    def test_listing_is_sorted_and_stats_are_stable_across_processes(self):
        code = (
            "import os, json\n"
            "names = os.listdir(%r)\n"
            "st = [os.stat(%r + '/' + p) for p in ('', 'os.py', 'json', 'json/decoder.py', "
            "'encodings/__pycache__')]\n"
            "print(json.dumps({'names': names, 'st': [[s.st_dev, s.st_ino, s.st_size, s.st_mode >> 12] "
            "for s in st]}))" % (LIB, LIB))
        first, second = run_json(code), run_json(code)
        self.assertEqual(first, second)
        names = first["names"]
        self.assertEqual(names, sorted(names, key=lambda n: n.encode()))
        self.assertIn("os.py", names)
        self.assertIn("json", names)
        devs = {s[0] for s in first["st"]}
        self.assertEqual(len(devs), 1)  # one mount
        inos = [s[1] for s in first["st"]]
        self.assertEqual(len(set(inos)), len(inos))
        self.assertEqual(inos[0], 1)  # the pack's root
        self.assertGreater(first["st"][1][2], 1000)  # os.py has its size
        self.assertEqual([s[3] for s in first["st"]], [4, 8, 4, 8, 4])  # dir, file, dir, file, dir

    def test_contents_and_read_only(self):
        code = (
            "import os, errno, json\n"
            "p = %r + '/json/decoder.py'\n"
            "data = open(p, 'rb').read()\n"
            "out = {'size_matches': len(data) == os.stat(p).st_size, 'text': b'JSONDecodeError' in data}\n"
            "for op in (lambda: open(p, 'w'), lambda: os.mkdir(%r + '/x'), lambda: os.remove(p)):\n"
            "    try:\n"
            "        op()\n"
            "        out.setdefault('errors', []).append(None)\n"
            "    except OSError as e:\n"
            "        out.setdefault('errors', []).append(e.errno == errno.EROFS)\n"
            "import email.mime.text, xml.dom.minidom\n"
            "out['deep_import'] = email.mime.text.MIMEText('x').get_payload() == 'x'\n"
            "print(json.dumps(out))" % (LIB, LIB))
        out = run_json(code)
        self.assertEqual(out, {"size_matches": True, "text": True, "errors": [True, True, True],
                               "deep_import": True})


if __name__ == "__main__":
    unittest.main()
