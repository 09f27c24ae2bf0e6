"""Tests of guest/_brig_snapshot.py (the portable namespace snapshot) on the native interpreter.

    /usr/bin/python3.11 -m unittest discover -s tests/guest -p 'test_snapshot.py'

Each test runs user code in a fresh module installed as __main__ (as brig's runner does),
dumps it, loads it into another fresh __main__ and checks what came back. The cross-process
tests do the same in separate interpreter processes.
"""
import abc
import builtins
import dataclasses
import importlib
import json
import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import textwrap
import types
import unittest

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"
sys.path.insert(0, str(GUEST))
import _brig_snapshot as snap  # noqa: E402

PYTHON = "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else sys.executable


def new_main():
    """A fresh namespace registered as __main__, like the guest's user namespace."""
    module = types.ModuleType("__main__")
    sys.modules["__main__"] = module
    return module.__dict__


def names_in(data):
    return sorted(name for names, _ in snap._parse(data) for name in names)


class SnapshotCase(unittest.TestCase):
    def setUp(self):
        self.addCleanup(sys.modules.__setitem__, "__main__", sys.modules["__main__"])

    def run_user(self, code, namespace=None):
        namespace = new_main() if namespace is None else namespace
        exec(compile(textwrap.dedent(code), "<exec>", "exec"), namespace)
        return namespace

    def roundtrip(self, code, expect_skipped=()):
        """Runs code, dumps, loads into a fresh __main__; returns (source, restored)."""
        src = self.run_user(code)
        data, skipped = snap.dumps(src)
        self.assertIsInstance(data, bytes)
        self.assertEqual(sorted(skipped), sorted(expect_skipped), skipped)
        dst = new_main()
        failed = snap.loads(data, dst)
        self.assertEqual(failed, {})
        return src, dst


class PlainData(SnapshotCase):
    def test_values_come_back_equal(self):
        src, dst = self.roundtrip("""
            i = 7; big = 2 ** 200; neg = -3; s = "héllo\\udcff"; b = b"\\x00\\xff"
            ba = bytearray(b"xy"); n = None; t = True; c = 1 + 2j
            lst = [1, [2, [3, {"k": (4, 5)}]]]; d = {"a": 1, 2: "b", (3, 4): [5]}
            st = {1, 2, 3}; fs = frozenset({"x"}); tup = (1, "two", 3.0)
            f = 1.5; inf = float("inf"); ninf = float("-inf")
        """)
        for name in ("i", "big", "neg", "s", "b", "ba", "n", "t", "c", "lst", "d", "st", "fs",
                     "tup", "f", "inf", "ninf"):
            self.assertEqual(dst[name], src[name], name)
            self.assertIs(type(dst[name]), type(src[name]), name)
        self.assertIsNot(dst["lst"], src["lst"])

    def test_nan(self):
        _, dst = self.roundtrip("nan = float('nan'); box = [nan]")
        self.assertNotEqual(dst["nan"], dst["nan"])
        self.assertIsInstance(dst["box"][0], float)

    def test_shared_references_and_cycles(self):
        _, dst = self.roundtrip("""
            a = [1]
            b = [a, a]
            c = a
            cyc = []
            cyc.append(cyc)
            d = {}
            d["self"] = d
            left = {"name": "left"}; right = {"name": "right", "peer": left}; left["peer"] = right
            unrelated = [1]
        """)
        self.assertIs(dst["b"][0], dst["b"][1])
        self.assertIs(dst["b"][0], dst["c"])
        self.assertIs(dst["a"], dst["c"])
        self.assertIs(dst["cyc"][0], dst["cyc"])
        self.assertIs(dst["d"]["self"], dst["d"])
        self.assertIs(dst["left"]["peer"]["peer"], dst["left"])
        self.assertIs(dst["right"]["peer"], dst["left"])
        dst["a"].append(2)
        self.assertEqual(dst["b"], [[1, 2], [1, 2]])
        self.assertEqual(dst["unrelated"], [1])

    def test_python_owned_names_are_not_saved(self):
        src = self.run_user("x = 1\n__annotations__ = {}\n")
        src["__file__"] = "/somewhere.py"
        src["__warningregistry__"] = {}
        data, skipped = snap.dumps(src)
        self.assertEqual(skipped, {})
        self.assertEqual(names_in(data), ["x"])
        dst = new_main()
        dst["__doc__"] = "the target's own doc"
        own_builtins = dst["__builtins__"] = builtins.__dict__
        self.assertEqual(snap.loads(data, dst), {})
        self.assertEqual(dst["__name__"], "__main__")
        self.assertEqual(dst["__doc__"], "the target's own doc")
        self.assertIs(dst["__builtins__"], own_builtins)
        self.assertNotIn("__file__", dst)
        self.assertEqual(dst["x"], 1)

    def test_module_annotations_are_saved_when_not_empty(self):
        _, dst = self.roundtrip("count: int = 5\n")
        self.assertEqual(dst["__annotations__"], {"count": int})
        self.assertEqual(dst["count"], 5)

    def test_loads_overwrites_and_keeps_other_names(self):
        data, _ = snap.dumps(self.run_user("x = 1"))
        dst = self.run_user("x = 'old'; other = 'kept'")
        self.assertEqual(snap.loads(data, dst), {})
        self.assertEqual((dst["x"], dst["other"]), (1, "kept"))

    def test_globals_itself(self):
        _, dst = self.roundtrip("g = globals(); x = 3")
        self.assertIs(dst["g"], dst)


class Functions(SnapshotCase):
    def test_seed_example_globals_are_the_restored_namespace(self):
        src, dst = self.roundtrip("""
            x = 42
            y = 100
            def calculate():
                return x + y
        """)
        calculate = dst["calculate"]
        self.assertIsNot(calculate, src["calculate"])
        self.assertIs(calculate.__globals__, dst)
        self.assertEqual(calculate(), 142)
        dst["x"] = 50
        self.assertEqual(calculate(), 150)
        src["x"] = 0  # the source namespace is not what it reads
        self.assertEqual(calculate(), 150)

    def test_function_attributes(self):
        _, dst = self.roundtrip('''
            class Unit: pass
            def f(a, b=2, *args, c, d=4, **kw) -> Unit:
                """Adds things."""
                return a + b + c + d + len(args) + len(kw)
            f.tag = "mine"
            f.__dict__["count"] = [1, 2]
            def outer():
                def inner(z: int = 3):
                    return z
                return inner
            inner = outer()
            square = lambda v, p=2: v ** p
        ''')
        f = dst["f"]
        self.assertEqual(f(1, c=3), 10)
        self.assertEqual(f(1, 1, 9, 9, c=0, d=0, extra=1), 5)
        self.assertEqual(f.__defaults__, (2,))
        self.assertEqual(f.__kwdefaults__, {"d": 4})
        self.assertEqual(f.__doc__, "Adds things.")
        self.assertEqual(f.__name__, "f")
        self.assertEqual(f.__qualname__, "f")
        self.assertEqual(f.__module__, "__main__")
        self.assertIs(f.__annotations__["return"], dst["Unit"])
        self.assertEqual((f.tag, f.count), ("mine", [1, 2]))
        self.assertEqual(dst["inner"].__qualname__, "outer.<locals>.inner")
        self.assertEqual(dst["inner"](), 3)
        self.assertEqual(dst["inner"].__annotations__, {"z": int})
        self.assertEqual(dst["square"](5), 25)
        self.assertEqual(dst["square"].__name__, "<lambda>")

    def test_closures(self):
        _, dst = self.roundtrip("""
            def make_counter(start):
                n = start
                def inc():
                    nonlocal n
                    n += 1
                    return n
                def get():
                    return n
                return inc, get
            inc, get = make_counter(10)
            inc()
            def outer():
                def fact(k):
                    return 1 if k < 2 else k * fact(k - 1)
                return fact
            fact = outer()
            def pair():
                def is_even(n):
                    return True if n == 0 else is_odd(n - 1)
                def is_odd(n):
                    return False if n == 0 else is_even(n - 1)
                return is_even, is_odd
            is_even, is_odd = pair()
            def unassigned():
                def f():
                    return later
                if False:
                    later = 1
                return f
            empty = unassigned()
            adders = [(lambda v, k=k: v + k) for k in range(3)]
        """)
        inc, get = dst["inc"], dst["get"]
        self.assertIs(inc.__closure__[0], get.__closure__[0])  # one cell, shared
        self.assertEqual(get(), 11)
        self.assertEqual(inc(), 12)
        self.assertEqual(get(), 12)
        self.assertEqual(dst["fact"](6), 720)
        self.assertIs(dst["fact"].__closure__[0].cell_contents, dst["fact"])
        self.assertTrue(dst["is_even"](10))
        self.assertTrue(dst["is_odd"](7))
        with self.assertRaises(NameError):
            dst["empty"]()
        self.assertEqual([add(10) for add in dst["adders"]], [10, 11, 12])

    def test_decorators_partial_and_wraps(self):
        _, dst = self.roundtrip('''
            import functools
            def twice(func):
                @functools.wraps(func)
                def wrapper(*args, **kwargs):
                    return 2 * func(*args, **kwargs)
                return wrapper
            @twice
            def plus_one(v):
                """Plus one."""
                return v + 1
            add3 = functools.partial(plus_one, 3)
            power = functools.partial(pow, exp=2)
            @functools.lru_cache(maxsize=None)
            def fib(n):
                return n if n < 2 else fib(n - 1) + fib(n - 2)
            fib(20)
        ''')
        plus_one = dst["plus_one"]
        self.assertEqual(plus_one(1), 4)
        self.assertEqual((plus_one.__name__, plus_one.__doc__), ("plus_one", "Plus one."))
        self.assertEqual(plus_one.__wrapped__(1), 2)
        self.assertEqual(dst["add3"](), 8)
        self.assertIs(dst["add3"].func, plus_one)
        self.assertEqual(dst["power"](7), 49)
        self.assertEqual(dst["fib"](60), 1548008755920)
        self.assertEqual(dst["fib"].__name__, "fib")

    def test_function_in_namespace_without_name(self):
        # exec(code, {}) style namespaces: no __name__, so classes say module 'builtins'
        src = self.run_user("""
            class Box:
                def __init__(self, v): self.v = v
            def unbox(b): return b.v * k
            k = 3
            item = Box(5)
        """, {})
        data, skipped = snap.dumps(src)
        self.assertEqual(skipped, {})
        dst = {}
        self.assertEqual(snap.loads(data, dst), {})
        self.assertEqual(dst["unbox"](dst["item"]), 15)
        self.assertIsNot(dst["Box"], src["Box"])
        self.assertIs(type(dst["item"]), dst["Box"])


class Classes(SnapshotCase):
    def test_classes_and_instances(self):
        src, dst = self.roundtrip("""
            import math
            from collections import OrderedDict
            class Shape:
                sides = 0
                registry = []
                def __init__(self, name):
                    self.name = name
                def describe(self):
                    return f"{self.name} with {self.sides} sides"
            class Square(Shape):
                sides = 4
                def __init__(self, side):
                    super().__init__("square")
                    self.side = side
                @property
                def area(self):
                    return self.side ** 2
                @area.setter
                def area(self, value):
                    self.side = math.sqrt(value)
                @staticmethod
                def unit():
                    return Square(1)
                @classmethod
                def named(cls):
                    return cls.__name__
                class Meta:
                    label = "inner"
            class Ordered(OrderedDict):
                def first(self):
                    return next(iter(self))
            sq = Square(3)
            shapes = [sq, Square(2), Shape("blob")]
            by_name = {"main": sq}
            od = Ordered(b=1, a=2)
        """)
        Square, Shape = dst["Square"], dst["Shape"]
        self.assertIsNot(Square, src["Square"])
        self.assertEqual(Square.__bases__, (Shape,))
        self.assertEqual(Square.__qualname__, "Square")
        self.assertEqual(Square.__module__, "__main__")
        sq = dst["sq"]
        self.assertIs(type(sq), Square)
        self.assertIs(dst["shapes"][0], sq)
        self.assertIs(dst["by_name"]["main"], sq)
        self.assertEqual(sq.describe(), "square with 4 sides")
        self.assertEqual(sq.area, 9)
        sq.area = 16
        self.assertEqual(sq.side, 4.0)
        self.assertEqual(Square.unit().side, 1)
        self.assertEqual(Square.named(), "Square")
        self.assertEqual(Square.Meta.label, "inner")
        self.assertEqual(Square.Meta.__qualname__, "Square.Meta")
        self.assertIsInstance(dst["shapes"][2], Shape)
        self.assertNotIsInstance(dst["shapes"][2], Square)
        self.assertEqual(list(dst["od"].items()), [("b", 1), ("a", 2)])
        self.assertEqual(dst["od"].first(), "b")
        self.assertIs(type(dst["od"]).__bases__[0], __import__("collections").OrderedDict)
        # a class created in the restored namespace uses the restored classes
        self.run_user("t = Square(5)\nok = isinstance(t, Shape) and t.area == 25", dst)
        self.assertTrue(dst["ok"])

    def test_slots_cycles_and_self_references(self):
        _, dst = self.roundtrip("""
            class Point:
                __slots__ = ("x", "__y")
                def __init__(self, x, y):
                    self.x = x
                    self.__y = y
                def y(self):
                    return self.__y
            class Node:
                def __init__(self, value):
                    self.value = value
                    self.peer = None
            class Config:
                pass
            Config.default = Config()
            Config.default.level = 3
            Config.cls = Config
            p = Point(1, 2)
            a = Node("a"); b = Node("b"); a.peer = b; b.peer = a
            nodes = [a, b]
            class Key:
                def __init__(self, k): self.k = k
                def __eq__(self, other): return isinstance(other, Key) and other.k == self.k
                def __hash__(self): return hash(self.k)
            table = {Key(1): "one"}
            keys = {Key(2)}
        """)
        p = dst["p"]
        self.assertEqual((p.x, p.y()), (1, 2))
        self.assertFalse(hasattr(p, "__dict__"))
        self.assertEqual(dst["Point"].__slots__, ("x", "__y"))
        a, b = dst["a"], dst["b"]
        self.assertIs(a.peer.peer, a)
        self.assertIs(dst["nodes"][1], b)
        Config = dst["Config"]
        self.assertIs(type(Config.default), Config)
        self.assertEqual(Config.default.level, 3)
        self.assertIs(Config.cls, Config)
        Key = dst["Key"]
        self.assertEqual(dst["table"][Key(1)], "one")
        self.assertIn(Key(2), dst["keys"])

    def test_metaclasses_and_abc(self):
        _, dst = self.roundtrip("""
            import abc
            class Registry(type):
                created = []
                def __new__(mcls, name, bases, ns):
                    cls = super().__new__(mcls, name, bases, ns)
                    mcls.created.append(name)
                    return cls
                def describe(cls):
                    return "registered " + cls.__name__
            class Plugin(metaclass=Registry):
                pass
            class Shape(abc.ABC):
                @abc.abstractmethod
                def area(self): ...
            class Circle(Shape):
                def __init__(self, r): self.r = r
                def area(self): return 3 * self.r ** 2
            c = Circle(2)
        """)
        self.assertIs(type(dst["Plugin"]), dst["Registry"])
        self.assertEqual(dst["Plugin"].describe(), "registered Plugin")
        self.assertIsInstance(dst["Shape"], abc.ABCMeta)
        with self.assertRaises(TypeError):
            dst["Shape"]()
        self.assertEqual(dst["c"].area(), 12)
        self.assertIsInstance(dst["c"], dst["Shape"])

    def test_dataclasses(self):
        _, dst = self.roundtrip("""
            import dataclasses
            from dataclasses import dataclass, field
            @dataclass(order=True)
            class Item:
                name: str
                price: float = 0.0
                tags: list = field(default_factory=list)
            @dataclass(frozen=True, slots=True)
            class Frozen:
                x: int
                y: int = 1
            item = Item("pen", 1.5, ["office"])
            frozen = Frozen(3)
        """)
        Item = dst["Item"]
        item = dst["item"]
        self.assertEqual(item, Item("pen", 1.5, ["office"]))
        self.assertEqual(repr(item), "Item(name='pen', price=1.5, tags=['office'])")
        self.assertEqual(Item("a").tags, [])
        self.assertIsNot(Item("a").tags, Item("b").tags)
        self.assertLess(Item("a"), Item("b"))
        self.assertEqual([f.name for f in dataclasses.fields(item)], ["name", "price", "tags"])
        self.assertEqual(dataclasses.asdict(item),
                         {"name": "pen", "price": 1.5, "tags": ["office"]})
        self.assertEqual(dataclasses.replace(item, price=2.0).price, 2.0)
        frozen = dst["frozen"]
        self.assertEqual((frozen.x, frozen.y), (3, 1))
        with self.assertRaises(dataclasses.FrozenInstanceError):
            frozen.x = 4
        self.assertEqual(dst["Frozen"](1, 2), dst["Frozen"](1, 2))

    def test_enums(self):
        _, dst = self.roundtrip("""
            import enum
            class Color(enum.Enum):
                RED = 1
                GREEN = 2
                CRIMSON = 1
                def describe(self):
                    return self.name.lower()
            class Level(enum.IntEnum):
                LOW = enum.auto()
                HIGH = enum.auto()
            class Perm(enum.Flag):
                R = 4
                W = 2
                X = 1
            class Planet(enum.Enum):
                EARTH = (5.976e24, 6.37814e6)
                MARS = (6.421e23, 3.3972e6)
                def __init__(self, mass, radius):
                    self.mass = mass
                    self.radius = radius
            favourite = Color.GREEN
            rw = Perm.R | Perm.W
            levels = [Level.HIGH, Level.LOW]
        """)
        Color, Perm, Level = dst["Color"], dst["Perm"], dst["Level"]
        self.assertEqual([c.name for c in Color], ["RED", "GREEN"])
        self.assertIs(Color.CRIMSON, Color.RED)
        self.assertIs(Color(2), Color.GREEN)
        self.assertIs(dst["favourite"], Color.GREEN)
        self.assertEqual(Color.RED.describe(), "red")
        self.assertEqual(Level.HIGH, 2)
        self.assertIs(dst["levels"][0], Level.HIGH)
        self.assertIs(dst["rw"], Perm.R | Perm.W)
        self.assertIn(Perm.W, dst["rw"])
        self.assertEqual(dst["Planet"].MARS.radius, 3.3972e6)

    def test_typing_namedtuples_and_generics(self):
        _, dst = self.roundtrip("""
            import typing
            from collections import namedtuple
            Pair = namedtuple("Pair", "left right")
            class Row(typing.NamedTuple):
                id: int
                label: str = "?"
            T = typing.TypeVar("T")
            class Stack(typing.Generic[T]):
                def __init__(self):
                    self.items: list[T] = []
                def push(self, item: T) -> None:
                    self.items.append(item)
            s = Stack[int]()
            s.push(1)
            pair = Pair(1, 2)
            row = Row(7)
        """)
        self.assertEqual(dst["pair"], (1, 2))
        self.assertEqual(dst["pair"].right, 2)
        self.assertEqual(dst["Pair"]._make([3, 4]).left, 3)
        self.assertEqual(dst["row"], (7, "?"))
        self.assertEqual(dst["Row"](1).label, "?")
        self.assertEqual(dst["s"].items, [1])
        self.assertEqual(dst["Stack"].__parameters__, (dst["T"],))
        self.assertIs(type(dst["s"]), dst["Stack"])

    def test_exceptions_and_cached_property(self):
        _, dst = self.roundtrip("""
            import functools
            class AppError(ValueError):
                pass
            try:
                raise AppError("bad input")
            except AppError as e:
                err = e
            class Lazy:
                def __init__(self): self.calls = 0
                @functools.cached_property
                def value(self):
                    self.calls += 1
                    return 42
        """)
        self.assertIsInstance(dst["err"], dst["AppError"])
        self.assertIsInstance(dst["err"], ValueError)
        self.assertEqual(str(dst["err"]), "bad input")
        lazy = dst["Lazy"]()
        self.assertEqual((lazy.value, lazy.value, lazy.calls), (42, 42, 1))


    def test_class_creation_hooks_and_odd_class_attributes(self):
        _, dst = self.roundtrip("""
            import enum
            class Plugin:
                registry = []
                def __init_subclass__(cls, kind, **kwargs):
                    super().__init_subclass__(**kwargs)
                    cls.kind = kind
                    Plugin.registry.append(cls)
            class CsvPlugin(Plugin, kind="csv"):
                pass
            class LooksLikeInt:
                @property
                def __class__(self):
                    return int
            fake = LooksLikeInt()
            class Loud(enum.Enum):
                A = "a"
                def __str__(self):
                    return super().__str__().upper()
        """, expect_skipped=["fake"])  # pickle itself refuses an instance lying about its class
        self.assertEqual(dst["CsvPlugin"].kind, "csv")
        self.assertEqual(dst["Plugin"].registry, [dst["CsvPlugin"]])
        fake = dst["LooksLikeInt"]()
        self.assertIsInstance(fake, int)  # through its __class__ property
        self.assertIs(type(fake), dst["LooksLikeInt"])
        self.assertEqual(str(dst["Loud"].A), "LOUD.A")
        # the base's hook is in place again for classes defined after the restore
        self.run_user("class JsonPlugin(Plugin, kind='json'): pass", dst)
        self.assertEqual([c.kind for c in dst["Plugin"].registry], ["csv", "json"])


class ModulesAndStdlib(SnapshotCase):
    def test_modules_by_name_with_aliases(self):
        _, dst = self.roundtrip("""
            import math
            import collections as col
            import os.path
            import xml.etree.ElementTree as ET
            import json as j
            from math import sqrt
            from collections import OrderedDict
            from os.path import join
            from random import randint
            import sys
            out = sys.stdout
            env = os.environ
        """)
        self.assertIs(dst["math"], sys.modules["math"])
        self.assertIs(dst["col"], sys.modules["collections"])
        self.assertIs(dst["os"], sys.modules["os"])
        self.assertIs(dst["ET"], sys.modules["xml.etree.ElementTree"])
        self.assertIs(dst["j"], sys.modules["json"])
        self.assertNotIn("json", dst)
        self.assertIs(dst["sqrt"], __import__("math").sqrt)
        self.assertIs(dst["OrderedDict"], __import__("collections").OrderedDict)
        self.assertIs(dst["join"], os.path.join)
        self.assertIs(dst["randint"], __import__("random").randint)
        self.assertIs(dst["out"], sys.stdout)
        self.assertIs(dst["env"], os.environ)

    def test_stdlib_objects(self):
        src, dst = self.roundtrip(r"""
            import datetime, decimal, fractions, pathlib, re, uuid, io, http, random
            from collections import OrderedDict, defaultdict, deque, Counter
            when = datetime.datetime(2024, 5, 17, 12, 30, tzinfo=datetime.timezone.utc)
            day = datetime.date(2024, 1, 2)
            span = datetime.timedelta(hours=3)
            money = decimal.Decimal("1.10")
            third = fractions.Fraction(1, 3)
            od = OrderedDict([("z", 1), ("a", 2)])
            counts = defaultdict(lambda: 0)
            counts["seen"] += 2
            groups = defaultdict(list, {"x": [1]})
            window = deque([1, 2, 3], maxlen=3)
            tally = Counter("abracadabra")
            path = pathlib.Path("/tmp/data.csv")
            pure = pathlib.PurePosixPath("a/b")
            pattern = re.compile(r"\d+", re.IGNORECASE)
            ident = uuid.UUID(int=5)
            buffer = io.StringIO("line one\n")
            status = http.HTTPStatus.OK
            rng = random.Random(7)
        """)
        for name in ("when", "day", "span", "money", "third", "od", "groups", "window",
                     "tally", "path", "pure", "pattern", "ident", "status"):
            self.assertEqual(dst[name], src[name], name)
            self.assertIs(type(dst[name]), type(src[name]), name)
        self.assertEqual(str(dst["money"]), "1.10")
        self.assertEqual(dst["window"].maxlen, 3)
        self.assertEqual(dst["counts"]["seen"], 2)
        self.assertEqual(dst["counts"]["new"], 0)  # the user's lambda factory came back
        self.assertEqual(dst["tally"].most_common(1), [("a", 5)])
        self.assertEqual(dst["pattern"].findall("a12B34"), ["12", "34"])
        self.assertEqual(dst["buffer"].read(), "line one\n")
        self.assertEqual(dst["rng"].random(), src["rng"].random())

    def test_module_that_no_longer_imports(self):
        with tempfile.TemporaryDirectory() as tmp:
            modname = "brig_snapshot_vanishing_mod"
            pathlib.Path(tmp, modname + ".py").write_text("def helper():\n    return 'h'\n")
            sys.path.insert(0, tmp)
            try:
                src = self.run_user(f"""
                    import {modname} as vm
                    from {modname} import helper
                    keep = [1, 2]
                    both = [helper, keep]
                    def independent(): return 'fine'
                """)
                data, skipped = snap.dumps(src)
            finally:
                sys.path.remove(tmp)
                sys.modules.pop(modname, None)
                importlib.invalidate_caches()
        self.assertEqual(skipped, {})
        dst = new_main()
        failed = snap.loads(data, dst)
        self.assertEqual(sorted(failed), ["both", "helper", "keep", "vm"])  # keep shares with both
        self.assertIn("No module named", failed["vm"])
        self.assertNotIn("vm", dst)
        self.assertEqual(dst["independent"](), "fine")


class Skipped(SnapshotCase):
    def test_unportable_values_are_skipped_with_reasons(self):
        path = pathlib.Path(tempfile.mkdtemp()) / "f.txt"
        path.write_text("data")
        self.addCleanup(path.unlink)
        src = self.run_user(f"""
            import socket, sys, threading
            gen = (i for i in range(3))
            def countdown(n):
                while n:
                    yield n
                    n -= 1
            running = countdown(3)
            next(running)
            async def job(): return 1
            coro = job()
            handle = open({str(path)!r})
            raw = open({str(path)!r}, "rb", buffering=0)
            sock = socket.socket()
            frame = sys._getframe()
            try:
                1 / 0
            except ZeroDivisionError as exc:
                tb = exc.__traceback__
            lock = threading.Lock()
            in_list = [1, (i for i in [])]
            class Bad:
                def __reduce__(self): raise RuntimeError("no way")
            bad = Bad()
            import weakref
            ref = weakref.ref(Bad)
            deep = []
            level = deep
            for _ in range(100000):
                level.append([])
                level = level[0]
            del level
            x = 42
            def uses_handle(): return handle.read()
        """)
        try:
            data, skipped = snap.dumps(src)
        finally:
            src["coro"].close()
            src["handle"].close()
            src["raw"].close()
            src["sock"].close()
        self.assertEqual(skipped["gen"], "generator objects cannot be saved portably")
        self.assertEqual(skipped["running"], "generator objects cannot be saved portably")
        self.assertEqual(skipped["coro"], "coroutine objects cannot be saved portably")
        self.assertEqual(skipped["handle"], "open file objects cannot be saved portably")
        self.assertEqual(skipped["raw"], "open file objects cannot be saved portably")
        self.assertEqual(skipped["sock"], "sockets cannot be saved portably")
        self.assertEqual(skipped["frame"], "frame objects cannot be saved portably")
        self.assertEqual(skipped["tb"], "traceback objects cannot be saved portably")
        self.assertIn("lock", skipped["lock"])
        self.assertEqual(skipped["in_list"], "generator objects cannot be saved portably")
        self.assertIn("RuntimeError: no way", skipped["bad"])
        self.assertIn("weakref", skipped["ref"])
        self.assertIn("RecursionError", skipped["deep"])
        self.assertEqual(sorted(skipped), sorted(
            ["gen", "running", "coro", "handle", "raw", "sock", "frame", "tb", "lock",
             "in_list", "bad", "ref", "deep"]))
        for reason in skipped.values():
            self.assertIsInstance(reason, str)
            self.assertLessEqual(len(reason), 200)
        dst = new_main()
        self.assertEqual(snap.loads(data, dst), {})
        self.assertEqual(dst["x"], 42)
        self.assertIn("countdown", dst)  # the generator function itself is fine
        self.assertEqual(list(dst["countdown"](2)), [2, 1])
        self.assertNotIn("gen", dst)
        with self.assertRaises(NameError):
            dst["uses_handle"]()


class Format(SnapshotCase):
    def good(self):
        return snap.dumps(self.run_user("x = 42\ny = [1, 2]\ndef f(): return x"))[0]

    def test_header(self):
        data = self.good()
        self.assertTrue(data.startswith(snap.MAGIC))
        self.assertEqual(struct.unpack(">H", data[8:10])[0], snap.VERSION)

    def test_garbage_raises_value_error(self):
        data = self.good()
        bad_version = data[:8] + struct.pack(">H", snap.VERSION + 1) + data[10:]
        other_python = data[:10] + bytes([3, 99]) + data[12:]
        flipped = bytearray(data)
        flipped[-5] ^= 0x40
        for garbage in (b"", b"garbage", b"\x80\x05K\x01.", snap.MAGIC, snap.MAGIC + b"\0" * 40,
                        data[:-1], data + b"x", bytes(flipped), bad_version, other_python,
                        "not bytes", None):
            with self.subTest(garbage=garbage[:20] if garbage else garbage):
                with self.assertRaises(ValueError):
                    snap.loads(garbage, {})

    def test_good_data_loads_from_bytearray_and_memoryview(self):
        data = self.good()
        for form in (bytearray(data), memoryview(data)):
            dst = new_main()
            self.assertEqual(snap.loads(form, dst), {})
            self.assertEqual(dst["f"](), 42)

    def test_seed_snapshot_is_small(self):
        src = self.run_user("x = 42\ny = 100\ndef calculate():\n    return x + y\n")
        data, _ = snap.dumps(src)
        self.assertLess(len(data), 2048)


# --- across processes ---

PRELUDE = """
import json, sys, types
sys.path.insert(0, {guest!r})
import _brig_snapshot
main = types.ModuleType("__main__")
sys.modules["__main__"] = main
ns = main.__dict__
failed = None
try:
    with open({state!r}, "rb") as f:
        failed = _brig_snapshot.loads(f.read(), ns)
except FileNotFoundError:
    pass
exec(compile({code!r}, "<exec>", "exec"), ns)
data, skipped = _brig_snapshot.dumps(ns)
with open({state!r}, "wb") as f:
    f.write(data)
print("REPORT", json.dumps({{"failed": failed, "skipped": skipped}}))
"""


class CrossProcess(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.state = os.path.join(self.dir.name, "state.bin")

    def step(self, code):
        """Runs code in a new interpreter that restores the state first and saves it after;
        returns (user output lines, report)."""
        script = PRELUDE.format(guest=str(GUEST), state=self.state, code=textwrap.dedent(code))
        proc = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True,
                              timeout=60, cwd=self.dir.name)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        report = json.loads(lines[-1][len("REPORT "):])
        return lines[:-1], report

    def test_seed_example_across_three_processes(self):
        out, report = self.step("""
            x = 42
            y = 100
            def calculate():
                return x + y
            print(f"Sum: {calculate()}")
        """)
        self.assertEqual(out, ["Sum: 142"])
        self.assertEqual(report, {"failed": None, "skipped": {}})
        out, report = self.step("print(calculate())\nx = 50\n")
        self.assertEqual(out, ["142"])
        self.assertEqual(report, {"failed": {}, "skipped": {}})
        out, report = self.step("print(calculate())\n")
        self.assertEqual(out, ["150"])
        self.assertEqual(report["failed"], {})

    def test_rich_state_across_processes(self):
        out, report = self.step("""
            import math, dataclasses, enum, functools
            import collections as col
            from fractions import Fraction
            class Animal:
                def __init__(self, name): self.name = name
                def speak(self): return f"{self.name} makes a sound"
            class Dog(Animal):
                def speak(self): return super().speak() + ": woof"
            @dataclasses.dataclass
            class Pos:
                x: int
                y: int = 0
            class Mode(enum.Enum):
                ON = "on"
                OFF = "off"
            def make_acc():
                total = 0
                def add(v):
                    nonlocal total
                    total += v
                    return total
                return add
            acc = make_acc()
            acc(5)
            pets = [Dog("rex"), Animal("cat")]
            where = Pos(1)
            mode = Mode.ON
            half = Fraction(1, 2)
            scale = functools.partial(math.ldexp, 1)
            counter = col.Counter("hello")
            gen = (i for i in range(2))
            fh = open("notes.txt", "w")
        """)
        self.assertEqual(report["skipped"], {
            "gen": "generator objects cannot be saved portably",
            "fh": "open file objects cannot be saved portably"})
        out, report = self.step("""
            print(pets[0].speak())
            print(isinstance(pets[0], Animal), type(pets[0]) is Dog)
            print(where, Pos(2, 3) == Pos(2, 3))
            print(mode is Mode.ON, Mode("off"))
            print(acc(1), acc(1))
            print(half + 1, scale(3), math.pi > 3, counter["l"])
            print(col.__name__, "gen" in globals(), "fh" in globals())
        """)
        self.assertEqual(report["failed"], {})
        self.assertEqual(out, [
            "rex makes a sound: woof",
            "True True",
            "Pos(x=1, y=0) True",
            "True Mode.OFF",
            "6 7",
            "3/2 8.0 True 2",
            "collections False False",
        ])
        out, _ = self.step("print(acc(0), where.x)")
        self.assertEqual(out, ["7 1"])


if __name__ == "__main__":
    unittest.main()
