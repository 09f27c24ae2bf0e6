"""CPU workload run both by native python3.11 and inside brig; prints one JSON line with the
best-of-N seconds per part (timed inside the interpreter, so start-up is not counted). Every
run of every part must return its known result, or the script exits with an error: a part
that went wrong fast would otherwise pass for a speed-up."""
import json
import random
import re
import sys
import time


def dict_str():
    d = {}
    for i in range(200_000):
        k = "key%d" % (i % 5000)
        d[k] = d.get(k, "")[:20] + str(i)
    return len("".join(sorted(d)))


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def json_roundtrip():
    doc = {"items": [{"id": i, "name": "item %d" % i, "tags": ["a", "b", "c"], "price": i * 1.5}
                     for i in range(2000)]}
    for _ in range(10):
        doc = json.loads(json.dumps(doc))
    return len(doc["items"])


def regex():
    text = " ".join("user%d@example%d.com some words 12345 more-words" % (i, i % 7) for i in range(5000))
    pattern = re.compile(r"(\w+)@(\w+)\.com")
    n = 0
    for _ in range(5):
        n += len(pattern.findall(text))
        n += len(re.sub(r"\d+", "#", text))
    return n


def sort():
    rng = random.Random(42)
    data = [rng.random() for _ in range(200_000)]
    words = ["%x" % rng.getrandbits(40) for _ in range(100_000)]
    return len(sorted(data)) + len(sorted(words, key=str.lower))


PARTS = {"dict_str": dict_str, "fib": lambda: fib(25), "json": json_roundtrip,
         "regex": regex, "sort": sort}
# What each part returns (the same under native python3.11 and in brig).
EXPECTED = {"dict_str": 33890, "fib": 75025, "json": 2000, "regex": 1099995, "sort": 300000}


def main(repeat=5):
    out = {}
    for name, fn in PARTS.items():
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            got = fn()
            best = min(best, time.perf_counter() - t)
            if got != EXPECTED[name]:
                sys.exit("cpu_workload: %s returned %r, expected %r" % (name, got, EXPECTED[name]))
        out[name] = best
    print(json.dumps(out))


main()
