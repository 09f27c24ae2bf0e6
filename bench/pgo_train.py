"""Training run for profile-guided optimisation of the generated guest C (see
bench/RESULTS.md for how it is used and what it measured).

Typical agent code, deliberately not the benchmark's own functions: imports, classes and
method calls, closures and generators, exceptions, string formatting, containers, json, re,
decimal, datetime, sorting, and a Pillow chart. It should cover the interpreter's hot paths, not any one test.
"""
import collections
import csv
import dataclasses
import datetime
import decimal
import functools
import io
import itertools
import json
import math
import random
import re
import statistics
import string
import textwrap


class Account:
    def __init__(self, owner, balance=0):
        self.owner = owner
        self.balance = balance
        self.history = []

    def deposit(self, amount):
        if amount <= 0:
            raise ValueError("amount must be positive")
        self.balance += amount
        self.history.append(("deposit", amount))

    @property
    def summary(self):
        return f"{self.owner}: {self.balance:.2f} ({len(self.history)} ops)"


@dataclasses.dataclass(order=True)
class Item:
    priority: int
    name: str = dataclasses.field(compare=False)


def accounts():
    rng = random.Random(7)
    out = []
    for i in range(3000):
        a = Account("user%d" % i)
        for _ in range(5):
            try:
                a.deposit(rng.randint(-2, 50))
            except ValueError:
                pass
        out.append(a.summary)
    return len(out)


def generators():
    def counter(n):
        for i in range(n):
            if i % 3:
                yield i * i

    total = sum(counter(60000))
    pairs = list(itertools.islice(itertools.permutations(range(8), 3), 2000))
    grouped = {k: len(list(g)) for k, g in itertools.groupby(sorted(pairs), key=lambda p: p[0])}
    return total + len(grouped)


def closures():
    @functools.lru_cache(maxsize=None)
    def ways(n):
        return 1 if n < 2 else ways(n - 1) + ways(n - 2)

    adders = [(lambda k: (lambda x: x + k))(k) for k in range(100)]
    return ways(80) + sum(f(1) for f in adders * 200)


def text():
    words = ["".join(random.Random(i).choices(string.ascii_lowercase, k=7)) for i in range(4000)]
    counts = collections.Counter(w[:2] for w in words)
    para = textwrap.fill(" ".join(words[:500]), width=72)
    found = re.findall(r"\b[a-m]\w{3}\b", para)
    csv_buf = io.StringIO()
    csv.writer(csv_buf).writerows([w, len(w), w.upper()] for w in words[:1000])
    rows = list(csv.reader(io.StringIO(csv_buf.getvalue())))
    return len(counts) + len(found) + len(rows) + len("%s-%d-%r" % ("a", 1, words[:3]))


def numbers():
    decimal.getcontext().prec = 40
    d = sum(decimal.Decimal(i) / decimal.Decimal(7) for i in range(2000))
    f = [math.sin(i) * math.sqrt(i) for i in range(20000)]
    stats = statistics.mean(f), statistics.pstdev(f[:2000])
    big = 3 ** 2000 % 1000003
    return int(d) + int(stats[0]) + big


def data():
    doc = [{"id": i, "when": (datetime.date(2024, 1, 1) + datetime.timedelta(days=i)).isoformat(),
            "items": [Item(i % 5, "n%d" % j).priority for j in range(4)]} for i in range(1500)]
    text = json.dumps(doc, indent=1)
    back = json.loads(text)
    heap = sorted(Item(random.Random(i).randint(0, 99), str(i)) for i in range(5000))
    by_day = collections.defaultdict(list)
    for d in back:
        by_day[d["when"][:7]].append(d["id"])
    return len(text) + len(heap) + len(by_day)


def small_executions():
    """What an agent's session mostly is: many small executions, each parsed, compiled and
    run by brig's runner (compile_repl, the result's repr and JSON, a traceback now and then)."""
    import contextlib
    import _brig_runner
    snippets = [b"x = 1", b"y = x + 2\ny", b"def f(a, b=2):\n    return a * b\nf(3)",
                b"import json\njson.dumps({'a': [1, 2], 'b': None})", b"[i * i for i in range(10)]",
                b"for i in range(3):\n    y += i\nprint(y)", b"class P:\n    def __init__(self, v):\n"
                b"        self.v = v\nP(1).v", b"s = 'hello world'\ns.split()", b"d = {'k': 1}\nd.get('k')",
                b"import math\nround(math.pi, 3)", b"total = sum(range(100))\ntotal"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for _ in range(400):
            for code in snippets:
                _brig_runner.execute(code, b"<exec>")
        for _ in range(20):
            _brig_runner.execute(b"def g():\n    return 1 / 0\ng()", b"<exec>")


def images():
    """Pillow (guest/build-pillow.sh): a thumbnail, shapes, text, a PNG and a JPEG, in memory."""
    from PIL import Image, ImageDraw, ImageFont
    im = Image.new("RGB", (400, 300), "white")
    d = ImageDraw.Draw(im)
    font = ImageFont.truetype("DejaVuSans.ttf", 14)
    for i, v in enumerate((12, 30, 21, 7, 18)):
        d.rectangle((20 + 70 * i, 280 - 8 * v, 70 + 70 * i, 280), fill=(40, 90, 200))
        d.text((20 + 70 * i, 285 - 8 * v - 20), str(v), font=font, fill="black")
    d.ellipse((300, 20, 380, 100), outline="red", width=3)
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        im.save(buf, fmt)
        Image.open(io.BytesIO(buf.getvalue())).thumbnail((100, 100))
    return im.getbbox()


for fn in (accounts, generators, closures, text, numbers, data, small_executions, images):
    for _ in range(3):
        fn()
print("trained")
