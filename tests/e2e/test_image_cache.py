"""The on-disk image cache: a later brig process maps the image an earlier one saved; each image
has its own string-hash secret; and a file or a directory that cannot be trusted (damaged,
another build's, a field that does not fit the module, writable or owned by others) is ignored
with one warning line, never run, and the image is made afresh."""
import glob
import json
import mmap
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import unittest

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))
CODE = "import random, json\nprint(json.dumps({'r': random.random(), 'h': hash('brig')}))"
MAGIC = 0x33474D4947495242  # "BRIGIMG3"
OLD_MAGIC = 0x32474D4947495242  # "BRIGIMG2": the format that held code addresses
# File systems on which a verification record is kept (src/engine/image_file.c): ext2/3/4,
# xfs, btrfs. Elsewhere every load hashes the memory.
RECORDING_FILE_SYSTEMS = {0xEF53, 0x58465342, 0x9123683E}
HASHED = "memory hashed"
RECORDED = "memory hashed, verification recorded"
TRUSTED = "memory verified by an earlier process"


def fs_type(path):
    """The f_type of the file system `path` is on (statfs)."""
    out = subprocess.run(["stat", "-f", "-c", "%t", path], capture_output=True, text=True, check=True).stdout
    return int(out, 16)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class Image:
    """An image file's trailer, to read and to rewrite field by field (src/engine/image_file.c)."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            data = f.read()
        self.trailer_at, magic = struct.unpack("<QQ", data[-16:])
        assert magic == MAGIC
        t = data[self.trailer_at:-16]
        at = 8
        (key_len,) = struct.unpack_from("<I", t, at)
        at += 4
        self.key = t[at:at + key_len]
        at += key_len
        self.memory_bytes, self.max_pages, self.g0, self.table_size, self.seed, warm_count = \
            struct.unpack_from("<IIIIQI", t, at)
        at += struct.calcsize("<IIIIQI")
        self.warm = [struct.unpack_from("<II", t, at + 8 * i) for i in range(warm_count)]
        at += 8 * warm_count
        (self.digest,) = struct.unpack_from("<Q", t, at)
        self.memory = data[:self.trailer_at]

    def fields(self):
        t = struct.pack("<QI", MAGIC, len(self.key)) + self.key
        t += struct.pack("<IIIIQI", self.memory_bytes, self.max_pages, self.g0, self.table_size, self.seed,
                         len(self.warm))
        t += b"".join(struct.pack("<II", *w) for w in self.warm)
        return t + struct.pack("<Q", self.digest)

    def write(self, checksum=True):
        t = self.fields()
        t += struct.pack("<Q", fnv1a64(t) if checksum else fnv1a64(t) ^ 1)
        with open(self.path, "wb") as f:
            f.write(self.memory + t + struct.pack("<QQ", self.trailer_at, MAGIC))


class ImageCacheTest(unittest.TestCase):
    def setUp(self):
        self.home = tempfile.TemporaryDirectory(prefix="brig-home-")
        self.env = dict(os.environ, BRIG_HOME=self.home.name)
        self.env.pop("BRIG_IMAGE_CACHE", None)
        self.env.pop("BRIG_DEBUG_IMAGE", None)

    def tearDown(self):
        for d, _, _ in os.walk(self.home.name):
            os.chmod(d, 0o700)
        self.home.cleanup()

    def run_brig(self, *args, debug=True, code=CODE):
        env = dict(self.env, BRIG_DEBUG_IMAGE="1") if debug else self.env
        argv = [BRIG, "exec"] + list(args) + ["-c", code]
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def image_file(self):
        files = glob.glob(os.path.join(self.env["BRIG_HOME"], "images", "*.img"))
        self.assertEqual(len(files), 1, files)
        return files[0]

    def test_second_process_loads_the_saved_image(self):
        first = self.run_brig()
        self.assertIn(": saved", first.stderr)
        self.assertEqual(os.stat(self.image_file()).st_mode & 0o777, 0o600)
        second = self.run_brig()
        self.assertIn(": loaded", second.stderr)
        self.assertNotIn("warning", second.stderr)
        third = self.run_brig()
        # Clones of one image still get their own random streams...
        self.assertNotEqual(json.loads(second.stdout)["r"], json.loads(third.stdout)["r"])
        # ... and share the image's string-hash secret, with the process that made it too.
        self.assertEqual({json.loads(p.stdout)["h"] for p in (first, second, third)},
                         {json.loads(first.stdout)["h"]})

    def test_each_image_has_its_own_hash_secret(self):
        first = json.loads(self.run_brig().stdout)["h"]
        seed = Image(self.image_file()).seed
        os.unlink(self.image_file())
        second = self.run_brig()
        self.assertIn(": saved", second.stderr)  # made afresh
        self.assertNotEqual(json.loads(second.stdout)["h"], first)
        self.assertNotEqual(Image(self.image_file()).seed, seed)  # the file records its seed

    def test_processes_starting_together_make_one_image(self):
        outs = []

        def run():
            outs.append(self.run_brig(debug=False))

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(outs), 3)
        # One made and saved it; the others waited for it and loaded it: one hash secret.
        self.assertEqual(len({json.loads(p.stdout)["h"] for p in outs}), 1, [p.stdout for p in outs])
        self.assertEqual(len({json.loads(p.stdout)["r"] for p in outs}), 3)

    def test_a_new_image_falls_back_to_portable_snapshots(self):
        def session(code):
            p = self.run_brig("--session", "s", "--json", debug=False, code=code)
            return json.loads(p.stdout)

        session("x = 41\ndef f(): return x + 1")
        self.assertEqual(session("f()")["session"]["restored_from"], "pages")  # same image
        os.unlink(self.image_file())  # the next process makes another image
        out = session("f()")
        self.assertEqual(out["result"], "42")
        self.assertEqual(out["session"]["restored_from"], "portable")

    def refused_then_rebuilt(self, reason, path=None):
        """The next execution warns once (naming `reason`), runs from a new image, saves it over
        the bad file; the one after loads that."""
        path = path or self.image_file()
        p = self.run_brig(debug=False)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertRegex(p.stderr, r"^brig: warning: cached image .* ignored \(.*%s.*\); making a new one\n$" % reason)
        self.assertIn('"r": ', p.stdout)
        again = self.run_brig()
        self.assertIn(": loaded", again.stderr, reason)
        self.assertNotIn("warning", again.stderr)
        self.assertEqual(Image(path).key, self.key)

    def made(self):
        self.run_brig()
        image = Image(self.image_file())
        self.key = image.key
        return image

    def test_damaged_trailer_offset_is_refused(self):
        self.made()
        with open(self.image_file(), "r+b") as f:
            f.seek(-16, os.SEEK_END)
            f.write(b"\xff" * 8)
        self.refused_then_rebuilt("damaged")

    def test_truncated_file_is_refused(self):
        self.made()
        path = self.image_file()
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 100)
        self.refused_then_rebuilt("damaged")

    def test_memory_changed_in_place_is_refused(self):
        # The trailer intact and its checksum right: only the memory differs from what was
        # saved. One byte, in a page with data, is enough to refuse the file.
        image = self.made()
        memory = bytearray(image.memory)
        at = next(i for i in range(len(memory) // 2, len(memory)) if memory[i])
        memory[at] ^= 0x01
        image.memory = bytes(memory)
        image.write()
        self.refused_then_rebuilt("does not match its digest")

    def flip_in_place(self, path, at):
        """Changes one byte of the file where it is (same inode, trailer untouched)."""
        with open(path, "r+b") as f:
            f.seek(at)
            old = f.read(1)[0]
            f.seek(at)
            f.write(bytes([old ^ 0x01]))

    def data_byte(self, image, start):
        """A non-zero byte of the image's memory at or after `start`."""
        return next(i for i in range(start, image.trailer_at) if image.memory[i])

    def test_one_byte_flipped_in_place_is_refused(self):
        # One byte of the memory part, written in place: first data page, middle, last.
        for where in ("first", "middle", "last"):
            image = self.made()
            if where == "first":
                at = self.data_byte(image, 0)
            elif where == "middle":
                at = self.data_byte(image, image.trailer_at // 2)
            else:
                at = len(image.memory.rstrip(b"\0")) - 1
            self.flip_in_place(image.path, at)
            self.refused_then_rebuilt("does not match its digest")

    def test_byte_written_into_a_hole_is_refused(self):
        # A page of zeros (a hole in the sparse file) that gets a byte is a data page now.
        image = self.made()
        at = next(i for i in range(0, image.trailer_at, 4096) if not any(image.memory[i:i + 4096]))
        self.flip_in_place(image.path, at + 100)
        self.refused_then_rebuilt("does not match its digest")

    def loaded_how(self, p):
        lines = [l for l in p.stderr.splitlines() if "image cache" in l]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertRegex(lines[0], r": loaded \(.*\)$")
        return lines[0].split(": loaded (", 1)[1][:-1]

    def records(self):
        return fs_type(self.image_file()) in RECORDING_FILE_SYSTEMS

    def settled(self):
        """Waits until the image file's last change is old enough to be recorded (over a second
        before a load), then loads it twice: the first load hashes and, where the file system
        allows, records that; the second then trusts the record. Returns the image."""
        image = Image(self.image_file())
        ctime = os.stat(image.path).st_ctime_ns
        while time.time_ns() < ctime + 1_300_000_000:
            time.sleep(0.1)
        first, second = self.loaded_how(self.run_brig()), self.loaded_how(self.run_brig())
        if self.records():
            self.assertEqual((first, second), (RECORDED, TRUSTED))
            self.assertTrue(os.path.exists(image.path + ".verified"))
        else:
            self.assertEqual((first, second), (HASHED, HASHED))
            self.assertFalse(os.path.exists(image.path + ".verified"))
        return image

    def test_load_right_after_a_save_hashes_and_records_nothing(self):
        # The file changed less than a second ago: a change in the same clock tick could leave
        # its ctime as it is, so the verification is not recorded yet.
        self.made()
        path = self.image_file()
        for _ in range(5):
            os.chmod(path, 0o600)  # changes the file's ctime to now
            ctime = os.stat(path).st_ctime_ns
            how = self.loaded_how(self.run_brig())
            if time.time_ns() - ctime < 900_000_000:  # else too slow to tell: again
                self.assertEqual(how, HASHED)
                self.assertFalse(os.path.exists(path + ".verified"))
                return
        self.fail("no load within a second of the file's last change")

    def test_byte_flipped_after_the_verification_was_recorded_is_refused(self):
        self.made()
        image = self.settled()
        self.flip_in_place(image.path, self.data_byte(image, image.trailer_at // 3))
        self.refused_then_rebuilt("does not match its digest")

    def test_byte_flipped_through_a_mapping_after_the_verification_was_recorded_is_refused(self):
        self.made()
        image = self.settled()
        at = self.data_byte(image, image.trailer_at // 3)
        with open(image.path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
            m[at] ^= 0x01
        self.refused_then_rebuilt("does not match its digest")

    def test_mapping_dirtied_before_the_record_cannot_change_the_file_unseen(self):
        # A writable mapping whose page is already dirty takes further writes without a fault,
        # and so without a new ctime. The load that records the verification first writes the
        # file's pages back (they are then write-protected again), so the later write is seen.
        image = self.made()
        at = self.data_byte(image, image.trailer_at // 3)
        with open(image.path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
            m[at] = m[at]  # dirty, unchanged
            self.settled()
            m[at] ^= 0x01  # the same page, still mapped
            self.refused_then_rebuilt("does not match its digest")

    def test_a_damaged_or_stale_record_is_not_trusted(self):
        self.made()
        image = self.settled()
        if not self.records():
            self.skipTest("no verification record on this file system (settled() checked that)")
        record = image.path + ".verified"
        with open(record, "r+b") as f:  # one byte of the recorded ctime
            f.seek(-20, os.SEEK_END)
            byte = f.read(1)
            f.seek(-20, os.SEEK_END)
            f.write(bytes([byte[0] ^ 1]))
        self.assertEqual(self.loaded_how(self.run_brig()), RECORDED)  # hashed, and recorded anew
        self.assertEqual(self.loaded_how(self.run_brig()), TRUSTED)
        os.chmod(record, 0o620)  # a record others can write is not one
        self.assertEqual(self.loaded_how(self.run_brig()), RECORDED)
        os.chmod(image.path, 0o400)  # a new ctime, the same content: hashed again
        self.assertEqual(self.loaded_how(self.run_brig()), HASHED)
        self.assertIn(": loaded", self.run_brig().stderr)

    def test_records_of_removed_images_are_pruned(self):
        self.made()
        stray = os.path.join(os.path.dirname(self.image_file()), "gone.img.verified")
        with open(stray, "wb") as f:
            f.write(b"x")
        os.unlink(self.image_file())
        self.assertIn(": saved", self.run_brig().stderr)
        self.assertFalse(os.path.exists(stray))

    def test_damaged_field_fails_the_checksum(self):
        image = self.made()
        image.seed ^= 1
        image.write(checksum=False)
        self.refused_then_rebuilt("checksum")

    def test_image_of_another_build_is_refused(self):
        image = self.made()
        # Another executable's build id (the key's last part), everything else intact.
        last = image.key[-1:]
        image.key = image.key[:-1] + (b"0" if last != b"0" else b"1")
        image.write()
        self.refused_then_rebuilt("another build")

    def test_function_table_of_another_size_is_refused(self):
        # The table is never in the file: clones get the module's own. Its size is, and must be
        # the module's (a table index past the module's table would otherwise be accepted).
        image = self.made()
        image.table_size += 1
        image.write()
        self.refused_then_rebuilt("function table size")

    def test_stack_pointer_not_the_modules_is_refused(self):
        image = self.made()
        image.g0 -= 16
        image.write()
        self.refused_then_rebuilt("stack pointer")

    def test_memory_past_the_modules_maximum_is_refused(self):
        image = self.made()
        image.max_pages += 1
        image.write()
        self.refused_then_rebuilt("memory size or maximum")

    def test_warm_pages_past_the_memory_are_refused(self):
        image = self.made()
        image.warm[-1] = (image.memory_bytes // 4096 - 1, 2)
        image.write()
        self.refused_then_rebuilt("warm pages")

    def test_old_format_with_code_addresses_is_refused(self):
        # The format before this one held the function table as offsets from a function of brig
        # (BRIGIMG2). Write one that points an entry inside brig's code at no function start and
        # gives another a func_type no function has: the file is refused as a whole, nothing of
        # it is read as a table.
        image = self.made()
        syms = {}
        for line in subprocess.run(["nm", BRIG], capture_output=True, text=True, check=True).stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "tT":
                syms[parts[2]] = int(parts[0], 16)
        anchor = syms["brig_python_image_load"]
        inside = syms["brig_python_image_save"] + 1  # brig's code, but no function starts there
        t = struct.pack("<QI", OLD_MAGIC, len(image.key)) + image.key
        t += struct.pack("<IIIII", image.memory_bytes, image.max_pages, image.g0, image.table_size, image.table_size)
        t += struct.pack("<Iqb", 0, -(2 ** 63), 0)
        t += struct.pack("<Iqb", 1, inside - anchor, 1)
        t += struct.pack("<Iqb", 0xFFFF, syms["brig_python_image_save"] - anchor, 1) * (image.table_size - 2)
        t += struct.pack("<I", 0) + struct.pack("<Q", image.digest)
        with open(image.path, "wb") as f:
            f.write(image.memory + t + struct.pack("<QQ", image.trailer_at, OLD_MAGIC))
        self.refused_then_rebuilt("damaged")

    def test_file_writable_by_others_is_refused(self):
        self.made()
        os.chmod(self.image_file(), 0o666)
        self.refused_then_rebuilt("writable by others")

    @unittest.skipUnless(os.geteuid() == 0, "needs root to give a file away")
    def test_file_of_another_user_is_refused(self):
        self.made()
        os.chown(self.image_file(), 65534, 65534)
        self.refused_then_rebuilt("not owned by this user")

    def test_symbolic_link_is_refused(self):
        self.made()
        path = self.image_file()
        os.rename(path, path + ".real")
        os.symlink(path + ".real", path)
        p = self.run_brig(debug=False)
        self.assertRegex(p.stderr, r"^brig: warning: cached image .* ignored \(a symbolic link\); making a new one\n$")
        self.assertFalse(os.path.islink(path))  # replaced by a good file

    def directory_refused(self, directory, reason):
        """The cache there is not used at all: one warning, a new image, nothing saved there."""
        path = self.image_file()
        before = os.stat(path)
        p = self.run_brig(debug=False)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertRegex(p.stderr, r"^brig: warning: image cache .* not used \(.*%s.*%s\)\n$" % (directory, reason))
        self.assertIn('"r": ', p.stdout)
        after = os.stat(path)
        self.assertEqual((before.st_ino, before.st_mtime_ns), (after.st_ino, after.st_mtime_ns))

    def test_images_directory_writable_by_others_is_not_used(self):
        self.made()
        images = os.path.join(self.home.name, "images")
        os.chmod(images, 0o777)
        self.directory_refused(images, "writable by its group or others")
        # The sticky bit, which makes /tmp safe above brig's own directories, does not make
        # them safe: others could still create files there.
        os.chmod(images, 0o1777)
        self.directory_refused(images, "writable by its group or others")
        os.chmod(images, 0o700)
        self.assertIn(": loaded", self.run_brig().stderr)

    def test_brig_home_writable_by_its_group_is_not_used(self):
        self.made()
        os.chmod(self.home.name, 0o1770)
        self.directory_refused(self.home.name, "writable by its group or others")

    def test_directory_above_brig_home_writable_by_others_is_not_used(self):
        # /tmp is writable by all but sticky: fine. A directory without the sticky bit is not.
        outer = os.path.join(self.home.name, "open")
        os.mkdir(outer)
        self.env["BRIG_HOME"] = os.path.join(outer, "home")
        self.made()
        os.chmod(outer, 0o777)
        self.directory_refused(outer, "writable by its group or others")
        os.chmod(outer, 0o1777)
        self.assertIn(": loaded", self.run_brig().stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to give a directory away")
    def test_images_directory_of_another_user_is_not_used(self):
        self.made()
        images = os.path.join(self.home.name, "images")
        os.chown(images, 65534, 65534)
        try:
            self.directory_refused(images, "belongs to another user")
        finally:
            os.chown(images, 0, 0)

    def test_cache_off(self):
        self.env["BRIG_IMAGE_CACHE"] = "off"
        self.run_brig()
        self.assertFalse(os.path.exists(os.path.join(self.home.name, "images")))


if __name__ == "__main__":
    unittest.main()
