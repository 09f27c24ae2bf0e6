"""The on-disk image cache: a later brig process maps the image an earlier one saved, and
refuses a file it cannot trust (damaged, another binary's, writable by others, pointing
outside brig's code)."""
import glob
import os
import struct
import subprocess
import tempfile
import unittest

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))
CODE = "import random, json\nprint(json.dumps({'r': random.random()}))"


class ImageCacheTest(unittest.TestCase):
    def setUp(self):
        self.home = tempfile.TemporaryDirectory(prefix="brig-home-")
        self.env = dict(os.environ, BRIG_HOME=self.home.name, BRIG_DEBUG_IMAGE="1")
        self.env.pop("BRIG_IMAGE_CACHE", None)

    def tearDown(self):
        self.home.cleanup()

    def run_brig(self):
        p = subprocess.run([BRIG, "exec", "-c", CODE], capture_output=True, text=True, env=self.env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def image_file(self):
        files = glob.glob(os.path.join(self.home.name, "images", "*.img"))
        self.assertEqual(len(files), 1, files)
        return files[0]

    def test_second_process_loads_the_saved_image(self):
        first = self.run_brig()
        self.assertIn(": saved", first.stderr)
        self.assertEqual(os.stat(self.image_file()).st_mode & 0o777, 0o600)
        second = self.run_brig()
        self.assertIn(": loaded", second.stderr)
        third = self.run_brig()
        # Clones of one image still get their own random streams.
        self.assertNotEqual(second.stdout, third.stdout)

    def refused_then_rebuilt(self, why):
        p = self.run_brig()
        self.assertNotIn(": loaded", p.stderr, why)
        self.assertIn(": saved", p.stderr, why)  # replaced by a good one
        self.assertIn(": loaded", self.run_brig().stderr, why)

    def test_damaged_trailer_is_refused(self):
        self.run_brig()
        path = self.image_file()
        with open(path, "r+b") as f:
            f.seek(-16, os.SEEK_END)
            f.write(b"\xff" * 8)
        self.refused_then_rebuilt("damaged trailer offset")

    def test_truncated_file_is_refused(self):
        self.run_brig()
        path = self.image_file()
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size - 100)
        self.refused_then_rebuilt("truncated")

    def test_table_entry_outside_brig_code_is_refused(self):
        self.run_brig()
        path = self.image_file()
        with open(path, "r+b") as f:
            f.seek(-16, os.SEEK_END)
            trailer_at, _ = struct.unpack("<QQ", f.read(16))
            f.seek(trailer_at + 8)
            (key_len,) = struct.unpack("<I", f.read(4))
            # magic, key, memory_bytes, max_pages, g0, table_size, table max: then entries.
            first_entry = trailer_at + 8 + 4 + key_len + 4 + 4 + 4 + 4 + 4
            for i in range(64):  # the first entries with a function: point them far away
                at = first_entry + i * 13
                f.seek(at + 4)
                (offset,) = struct.unpack("<q", f.read(8))
                if offset != -(2 ** 63):
                    f.seek(at + 4)
                    f.write(struct.pack("<q", offset + (1 << 40)))
        self.refused_then_rebuilt("function pointer outside the executable")

    def test_file_writable_by_others_is_refused(self):
        self.run_brig()
        os.chmod(self.image_file(), 0o666)
        self.refused_then_rebuilt("world-writable")

    def test_cache_off(self):
        self.env["BRIG_IMAGE_CACHE"] = "off"
        self.run_brig()
        self.assertFalse(os.path.exists(os.path.join(self.home.name, "images")))


if __name__ == "__main__":
    unittest.main()
