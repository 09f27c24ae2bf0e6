"""Pillow inside brig (issue 12, item 2): Debian's Pillow with zlib, libjpeg-turbo and FreeType,
built into the guest. The host writes a PNG with its own stdlib, the sandbox opens it, makes a
thumbnail, draws shapes, text (the shipped DejaVuSans.ttf) and a bar chart, and saves PNG and
JPEG to the session's files; the host reads them back and decodes them with its stdlib alone
(PNG fully, JPEG's markers), so the test fails if any piece is missing or wrong.
"""
import base64
import json
import os
import shutil
import struct
import subprocess
import tempfile
import textwrap
import unittest
import zlib

BRIG = os.environ.get("BRIG_BIN", os.path.join(os.path.dirname(__file__), "../../build/brig"))


def make_png(width, height, pixel):
    """An 8-bit RGB PNG, pixel(x, y) -> (r, g, b), written with zlib and struct only."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def read_png(data):
    """Decodes an 8-bit non-interlaced greyscale/RGB/RGBA PNG: (width, height, channels, rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc, = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = ihdr
    assert depth == 8 and interlace == 0, ihdr
    channels = {0: 1, 2: 3, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            else:
                assert ftype == 0, ftype
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def jpeg_size(data):
    """(width, height, components) from a baseline/progressive JPEG's SOF marker."""
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9", (data[:4], data[-4:])
    pos = 2
    while pos < len(data):
        assert data[pos] == 0xFF, pos
        marker = data[pos + 1]
        length, = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker in (0xC0, 0xC1, 0xC2):
            height, width, comps = struct.unpack(">HHB", data[pos + 5:pos + 10])
            return width, height, comps
        pos += 2 + length
    raise AssertionError("no SOF marker")


class PillowTest(unittest.TestCase):
    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="brig-pillow-home-")
        self.addCleanup(shutil.rmtree, self.home, True)
        self.env = dict(os.environ, BRIG_HOME=self.home)
        self.env.pop("BRIG_DB", None)

    def brig(self, *args, stdin=None):
        p = subprocess.run([BRIG, *args], input=stdin, capture_output=True, timeout=300, env=self.env)
        self.assertEqual(p.returncode, 0, "%s: %s %s" % (args[:3], p.stderr.decode(errors="replace"), p.stdout[-3000:]))
        return p.stdout

    def run_py(self, code, session):
        out = json.loads(self.brig("exec", "--json", "--session", session, "-c", textwrap.dedent(code)))
        self.assertIsNone(out.get("error"), out)
        return out["stdout"]

    def test_thumbnail_draw_text_save_png_and_jpeg(self):
        # 120x80: red left half, blue right half, a green band in rows 40..47.
        def pixel(x, y):
            if 40 <= y < 48:
                return (0, 200, 0)
            return (220, 20, 20) if x < 60 else (20, 20, 220)
        self.brig("files", "put", "--session", "p", "/home/user/in.png", stdin=make_png(120, 80, pixel))
        out = self.run_py("""
            import json
            from PIL import Image, ImageDraw, ImageFont, features
            im = Image.open("/home/user/in.png")
            facts = {"format": im.format, "size": im.size, "mode": im.mode,
                     "px": [im.getpixel((10, 10)), im.getpixel((100, 10)), im.getpixel((60, 44))]}
            im.thumbnail((60, 60))
            facts["thumb"] = im.size
            im.save("/home/user/thumb.png")
            canvas = Image.new("RGB", (200, 100), "white")
            canvas.paste(im, (0, 0))
            d = ImageDraw.Draw(canvas)
            d.rectangle((150, 10, 189, 49), fill=(255, 0, 0))
            d.ellipse((150, 60, 189, 89), fill=(0, 0, 255), outline=(0, 0, 0))
            d.line((0, 99, 199, 99), fill=(0, 0, 0), width=1)
            font = ImageFont.truetype("DejaVuSans.ttf", 16)
            d.text((64, 70), "Hi", font=font, fill=(0, 0, 0))
            facts["text_bbox"] = d.textbbox((64, 70), "Hi", font=font)
            facts["font"] = font.getname()
            d.text((64, 5), "bitmap", font=ImageFont.load_default(), fill=(0, 128, 0))
            canvas.save("/home/user/out.png")
            canvas.save("/home/user/out.jpg", quality=90)
            back = Image.open("/home/user/out.jpg")
            back.load()
            facts["jpeg_back"] = [back.format, back.size, back.getpixel((170, 30))]
            facts["features"] = {f: features.check(f) for f in ("jpg", "zlib", "freetype2")}
            print(json.dumps(facts))
        """, "p")
        facts = json.loads(out)
        self.assertEqual(facts["format"], "PNG")
        self.assertEqual(facts["size"], [120, 80])
        self.assertEqual(facts["mode"], "RGB")
        self.assertEqual(facts["px"], [[220, 20, 20], [20, 20, 220], [0, 200, 0]])
        self.assertEqual(facts["thumb"], [60, 40])
        self.assertEqual(facts["font"], ["DejaVu Sans", "Book"])
        left, top, right, bottom = facts["text_bbox"]
        self.assertTrue(64 <= left < right <= 100 and 70 <= top < bottom <= 95, facts["text_bbox"])
        self.assertEqual(facts["features"], {"jpg": True, "zlib": True, "freetype2": True})
        fmt, size, red = facts["jpeg_back"]
        self.assertEqual((fmt, size), ("JPEG", [200, 100]))
        self.assertTrue(red[0] > 230 and red[1] < 30 and red[2] < 30, red)

        # The files, read back on the host and decoded with its stdlib.
        w, h, ch, rows = read_png(self.brig("files", "cat", "--session", "p", "/home/user/thumb.png"))
        self.assertEqual((w, h, ch), (60, 40, 3))
        self.assertEqual(rows[5][3 * 5:3 * 6], bytes((220, 20, 20)))   # resized, still red
        self.assertEqual(rows[5][3 * 55:3 * 56], bytes((20, 20, 220)))  # and blue
        w, h, ch, rows = read_png(self.brig("files", "cat", "--session", "p", "/home/user/out.png"))
        self.assertEqual((w, h, ch), (200, 100, 3))
        at = lambda x, y: tuple(rows[y][3 * x:3 * x + 3])  # noqa: E731
        self.assertEqual(at(170, 30), (255, 0, 0))      # the rectangle
        self.assertEqual(at(170, 75), (0, 0, 255))      # the ellipse's inside
        self.assertEqual(at(120, 99), (0, 0, 0))        # the line
        self.assertEqual(at(120, 50), (255, 255, 255))  # background
        self.assertEqual(at(5, 5), (220, 20, 20))       # the pasted thumbnail
        # The glyphs: dark pixels inside the text's box, none just beside it.
        dark = [(x, y) for y in range(70, 95) for x in range(60, 100) if sum(at(x, y)) < 200]
        self.assertGreater(len(dark), 20)
        self.assertTrue(all(left <= x < right and top <= y < bottom for x, y in dark), dark[:5])
        self.assertTrue(any(at(x, y)[1] > 100 and at(x, y)[0] < 60 for y in range(5, 20) for x in range(64, 110)))
        jpg = self.brig("files", "cat", "--session", "p", "/home/user/out.jpg")
        self.assertEqual(jpeg_size(jpg), (200, 100, 3))
        self.assertIn(b"JFIF", jpg[:20])

    def test_bar_chart_png(self):
        out = self.run_py("""
            from PIL import Image, ImageDraw, ImageFont
            data = {"north": 12, "south": 30, "east": 21, "west": 7}
            im = Image.new("RGB", (320, 200), "white")
            d = ImageDraw.Draw(im)
            font = ImageFont.truetype("DejaVuSans.ttf", 11)
            top = max(data.values())
            for i, (name, value) in enumerate(data.items()):
                x = 20 + i * 75
                d.rectangle((x, 170 - value * 150 // top, x + 50, 170), fill=(40, 90, 200))
                d.text((x, 178), name, font=font, fill="black")
            d.line((10, 170, 310, 170), fill="black")
            im.save("/home/user/chart.png", optimize=True)
            print(im.size)
        """, "c")
        self.assertEqual(out, "(320, 200)\n")
        w, h, ch, rows = read_png(self.brig("files", "cat", "--session", "c", "/home/user/chart.png"))
        self.assertEqual((w, h, ch), (320, 200, 3))
        # Each bar's height in the decoded file matches its value.
        for i, value in enumerate((12, 30, 21, 7)):
            x = 20 + i * 75 + 25
            column = [tuple(rows[y][3 * x:3 * x + 3]) for y in range(h)]
            bar = [y for y, p in enumerate(column) if p == (40, 90, 200)]
            self.assertEqual((bar[0], bar[-1]), (170 - value * 150 // 30, 169), (i, value))

    def test_versions_and_bad_input(self):
        out = self.run_py("""
            import io, sys, PIL
            from PIL import Image, UnidentifiedImageError, features
            print(PIL.__version__, features.version("jpg"), features.version("freetype2"),
                  features.version("zlib"))
            try:
                Image.open(io.BytesIO(b"not an image at all"))
            except UnidentifiedImageError:
                print("unidentified")
            print(sorted(m for m in sys.modules if m.startswith("PIL._imaging")))
        """, "v")
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^9\.\d+\.\d+ (6\.2|8\.0|2\.\d+\.\d+|[\d.]+) 2\.\d+\.\d+ 1\.\d")
        self.assertEqual(lines[1], "unidentified")
        self.assertEqual(lines[2], "['PIL._imaging', 'PIL._imagingft']")

    def test_a_tour_of_the_c_methods(self):
        # Every method here goes through Pillow's C code; the ones that take no arguments
        # trapped ("invalid indirect call") before guest/patches/pillow/0003.
        out = self.run_py("""
            from PIL import (Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageMath,
                             ImageMorph, ImageOps, ImageStat)
            font = ImageFont.truetype("DejaVuSans.ttf", 20)
            bw = Image.new("1", (60, 30))
            ImageDraw.Draw(bw).text((2, 2), "Hi", font=font, fill=1)
            grey = Image.new("L", (60, 30))
            ImageDraw.Draw(grey).rectangle((10, 5, 29, 14), fill=200)
            rgb = Image.merge("RGB", (grey, grey.point(lambda v: v // 2), ImageChops.invert(grey)))
            print(bw.getbbox() is not None, grey.getbbox(), grey.getextrema(), rgb.getextrema())
            print([b.mode for b in rgb.split()], list(grey.im.getprojection()[0][8:12]), grey.im.isblock())
            print(Image.new("P", (2, 2)).im.getpalettemode(), ImageChops.invert(grey).getpixel((0, 0)))
            print(ImageMath.eval("a * 2 + 1", a=grey).getpixel((10, 5)))
            _, out = ImageMorph.MorphOp(op_name="erosion4").apply(grey.point(lambda v: 255 if v else 0))
            print(out.getbbox())
            print(rgb.filter(ImageFilter.GaussianBlur(2)).getpixel((20, 10)), ImageOps.grayscale(rgb).mode)
            print(round(ImageStat.Stat(grey).mean[0], 2), rgb.convert("P", palette=Image.ADAPTIVE).mode)
            print(rgb.rotate(90, expand=True).size, rgb.transpose(Image.FLIP_LEFT_RIGHT).getpixel((49, 5)))
            try:
                font.get_variation_names()
            except OSError as e:
                print("not a variable font")
        """, "t")
        self.assertEqual(out.splitlines(), [
            "True (10, 5, 30, 15) (0, 200) ((0, 200), (0, 100), (55, 255))",
            "['L', 'L', 'L'] [0, 0, 1, 1] False",
            "RGB 255",
            "401",
            "(11, 6, 29, 14)",
            out.splitlines()[5],
            "22.22 P",
            "(30, 60) (200, 100, 55)",
            "not a variable font",
        ])
        blurred, mode = out.splitlines()[5].rsplit(" ", 1)
        self.assertEqual(mode, "L")

    def test_a_corrupt_jpeg_ends_that_execution_only(self):
        # libjpeg's fatal errors longjmp, which the guest cannot: the execution traps (README),
        # the session is rolled back to before it and goes on; truncation still raises.
        self.run_py("""
            from PIL import Image
            Image.new("RGB", (64, 64), "red").save("a.jpg")
            d = bytearray(open("a.jpg", "rb").read())
            i = d.find(b"\\xff\\xc4")
            d[i + 2:i + 4] = b"\\x00\\x01"  # a Huffman table with a bogus length
            open("bad.jpg", "wb").write(d)
            kept = 42
        """, "j")
        p = subprocess.run([BRIG, "exec", "--session", "j", "-c",
                            "from PIL import Image\nImage.open('bad.jpg').load()"],
                           capture_output=True, text=True, timeout=300, env=self.env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no longjmp in WebAssembly", p.stderr)
        self.assertIn("trap", p.stderr)
        out = self.run_py("""
            import io
            from PIL import Image
            print(kept)
            try:
                Image.open(io.BytesIO(open("a.jpg", "rb").read()[:300])).load()
            except OSError as e:
                print("OSError:", e)
        """, "j")
        self.assertEqual(out, "42\nOSError: Truncated File Read\n")

    def test_make_a_thumbnail(self):
        # A 800x600 JPEG "photo" (a gradient), then a thumbnail of it in a later execution:
        # thumbnail() keeps the aspect ratio and lets libjpeg decode at 1/4 scale (draft).
        self.run_py("""
            from PIL import Image
            im = Image.linear_gradient("L").resize((800, 600)).convert("RGB")
            im.save("photo.jpg", quality=85)
        """, "th")
        out = self.run_py("""
            from PIL import Image
            with Image.open("photo.jpg") as im:
                im.thumbnail((128, 128))
                print(im.size, im.mode)
                im.save("thumb.jpg")
                im.save("thumb.png")
        """, "th")
        self.assertEqual(out, "(128, 96) RGB\n")
        self.assertEqual(jpeg_size(self.brig("files", "cat", "--session", "th", "thumb.jpg")), (128, 96, 3))
        w, h, ch, rows = read_png(self.brig("files", "cat", "--session", "th", "thumb.png"))
        self.assertEqual((w, h, ch), (128, 96, 3))
        # The gradient runs top (black) to bottom (white), and survived the round trip.
        self.assertLess(rows[2][3 * 64], 30)
        self.assertGreater(rows[93][3 * 64], 225)

    def test_show_a_pil_image_is_a_png_display(self):
        # brig.show() takes Jupyter's _repr_png_: the result carries the PNG, base64-encoded.
        out = json.loads(self.brig("exec", "--json", "-c", textwrap.dedent("""
            import brig
            from PIL import Image, ImageDraw
            im = Image.new("RGB", (40, 30), "white")
            ImageDraw.Draw(im).rectangle((10, 10, 19, 19), fill=(255, 0, 0))
            brig.show(im)
        """)))
        self.assertIsNone(out["error"], out)
        self.assertIsNone(out["display_note"], out)
        self.assertEqual(len(out["display"]), 1, out["display"])
        bundle = out["display"][0]
        self.assertIn("image/png", bundle)
        self.assertRegex(bundle["text/plain"], r"^<PIL\.Image\.Image image mode=RGB size=40x30")
        w, h, ch, rows = read_png(base64.b64decode(bundle["image/png"]))
        self.assertEqual((w, h, ch), (40, 30, 3))
        self.assertEqual(tuple(rows[15][3 * 15:3 * 16]), (255, 0, 0))
        self.assertEqual(tuple(rows[5][3 * 5:3 * 6]), (255, 255, 255))

    def test_hostile_images(self):
        # The decoders run inside the sandbox: a hostile image may fail, or at worst trap the
        # execution, never reach the host. Corrupt and truncated PNGs and truncated JPEGs
        # raise; a decompression bomb's header is refused by MAX_IMAGE_PIXELS before any
        # pixel is allocated; one under that limit but over the sandbox's memory is a
        # MemoryError; the session lives on after each.
        png = make_png(64, 48, lambda x, y: (x * 4, y * 5, 128))
        self.brig("files", "put", "--session", "h", "/home/user/ok.png", stdin=png)

        def header_only_png(width, height, colour=2):
            def chunk(kind, data):
                return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
            return (b"\x89PNG\r\n\x1a\n"
                    + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
        self.brig("files", "put", "--session", "h", "/home/user/bomb.png", stdin=header_only_png(20000, 20000))
        self.brig("files", "put", "--session", "h", "/home/user/warn.png", stdin=header_only_png(12000, 12000))
        self.brig("files", "put", "--session", "h", "/home/user/big.png", stdin=header_only_png(9000, 9000, 6))
        out = self.run_py("""
            import io, random, warnings, zlib
            from PIL import Image
            def attempt(data):
                try:
                    with Image.open(io.BytesIO(data)) as im:
                        im.load()
                    return "ok"
                except Exception as e:
                    return type(e).__name__
            ok = open("ok.png", "rb").read()
            print("ok", attempt(ok))
            print("truncated", sorted({attempt(ok[:n]) for n in (8, 20, 33, 40, 60, len(ok) // 2)}))
            bad_idat = bytearray(ok)
            i = bad_idat.find(b"IDAT") + 4
            bad_idat[i:i + 8] = b"\\xff" * 8
            print("bad IDAT", attempt(bytes(bad_idat)))
            rng = random.Random(12)
            kinds = set()
            # Random byte flips: each fails with an exception or decodes, none traps.
            # (OverflowError: a chunk length past the 32-bit guest's Py_ssize_t.)
            for _ in range(300):
                d = bytearray(ok)
                for _ in range(rng.randint(1, 8)):
                    d[rng.randrange(len(d))] = rng.randrange(256)
                kinds.add(attempt(bytes(d)))
            print("fuzzed", kinds <= {"ok", "UnidentifiedImageError", "OSError", "SyntaxError",
                                      "ValueError", "EOFError", "DecompressionBombError",
                                      "MemoryError", "OverflowError", "error"}, sorted(kinds))
            Image.open("ok.png").save("ok.jpg")
            jpg = open("ok.jpg", "rb").read()
            print("jpeg truncated", sorted({attempt(jpg[:n]) for n in (2, 10, 100, 300, len(jpg) - 10)}))
            print("bomb", attempt(open("bomb.png", "rb").read()))
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                print("warn", attempt(open("warn.png", "rb").read()))
            print("big", attempt(open("big.png", "rb").read()))
            Image.MAX_IMAGE_PIXELS = None  # the code may lift Pillow's limit: memory still holds
            print("bomb unchecked", attempt(open("bomb.png", "rb").read()))
            print("after", Image.new("RGB", (1000, 1000)).size)
        """, "h")
        lines = out.splitlines()
        self.assertEqual(lines[0], "ok ok", out)
        self.assertTrue(lines[1].startswith("truncated ["), lines[1])
        self.assertNotIn("'ok'", lines[1])
        self.assertRegex(lines[2], r"^bad IDAT (OSError|SyntaxError|error)$")
        self.assertTrue(lines[3].startswith("fuzzed True "), lines[3])
        self.assertTrue(lines[4].startswith("jpeg truncated ["), lines[4])
        self.assertNotIn("'ok'", lines[4])
        self.assertEqual(lines[5:], [
            "bomb DecompressionBombError",
            "warn DecompressionBombWarning",
            "big MemoryError",
            "bomb unchecked MemoryError",
            "after (1000, 1000)",
        ])
        # The session is intact: its files and a fresh execution.
        self.assertEqual(self.run_py("print(open('ok.png', 'rb').read()[:4])", "h"), "b'\\x89PNG'\n")

    def test_reportlab_puts_a_pil_image_in_a_pdf(self):
        # reportlab (guest/debian-packages.txt) reads bitmap images through Pillow.
        out = self.run_py("""
            from PIL import Image
            from reportlab.lib.utils import ImageReader
            from reportlab.pdfgen import canvas
            Image.new("RGB", (50, 40), "red").save("r.png")
            print(ImageReader("r.png").getSize())
            c = canvas.Canvas("o.pdf")
            c.drawImage("r.png", 10, 10, 50, 40)
            c.save()
        """, "rl")
        self.assertEqual(out, "(50, 40)\n")
        pdf = self.brig("files", "cat", "--session", "rl", "o.pdf")
        self.assertTrue(pdf.startswith(b"%PDF-"), pdf[:10])
        self.assertIn(b"/Subtype /Image", pdf)
        self.assertIn(b"/Width 50", pdf)

    def test_nothing_of_pillow_at_start_up(self):
        out = self.run_py("""
            import sys
            print([m for m in sys.modules if m == "PIL" or m.startswith("PIL.")])
        """, "s")
        self.assertEqual(out, "[]\n")


if __name__ == "__main__":
    unittest.main()
