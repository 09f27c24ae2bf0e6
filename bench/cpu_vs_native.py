#!/usr/bin/python3.11
"""CPU benchmark: the same workload (cpu_workload.py) under Debian's native python3.11 and
inside brig. Prints each part's ratio brig/native and their geometric mean, plus the median
wall time of `brig exec -c pass` against `python3.11 -c pass`.

Usage: cpu_vs_native.py BRIG_BINARY [RUNS_FOR_STARTUP]   (BRIG_BENCH_ROUNDS=N rounds, default 5)"""
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "cpu_workload.py")
NATIVE = "/usr/bin/python3.11"
# Interleaved rounds (the machine is shared: more rounds, steadier best-of figures).
ROUNDS = int(os.environ.get("BRIG_BENCH_ROUNDS", "5"))


PARTS = {"dict_str", "fib", "json", "regex", "sort"}


def timings(argv):
    """The workload's seconds per part. It checks each part's result itself and exits non-zero
    on a wrong one: that, or any other failure, stops the benchmark here."""
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("cpu_vs_native: %s failed (%d):\n%s" % (argv, out.returncode, out.stderr))
    parts = json.loads(out.stdout)
    if set(parts) != PARTS or not all(isinstance(v, float) and v > 0 for v in parts.values()):
        sys.exit("cpu_vs_native: %s printed %r" % (argv, out.stdout))
    return parts


def run_native():
    return timings([NATIVE, "-S", WORKLOAD])


def run_brig(brig):
    return timings([brig, "exec", "--timeout", "600", WORKLOAD])


def median_wall(cmd, runs):
    """Median wall time of `cmd` (a `-c pass`: it must succeed and print nothing)."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True)
        times.append(time.perf_counter() - t)
        if p.returncode != 0 or p.stdout or p.stderr:
            sys.exit("cpu_vs_native: %s: exit %d, stdout %r, stderr %r" % (cmd, p.returncode, p.stdout, p.stderr))
    return statistics.median(times)


def main():
    brig = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    # Interleaved rounds, best per part: load from elsewhere on the machine hits both sides.
    native, inside = {}, {}
    for _ in range(ROUNDS):
        for side, run in ((native, run_native), (inside, lambda: run_brig(brig))):
            for part, seconds in run().items():
                side[part] = min(seconds, side.get(part, seconds))
    ratios = {k: inside[k] / native[k] for k in native}
    print("part        native_ms   brig_ms   ratio")
    for k in native:
        print("%-10s %10.1f %9.1f %7.2fx" % (k, native[k] * 1e3, inside[k] * 1e3, ratios[k]))
    geo = math.exp(sum(math.log(r) for r in ratios.values()) / len(ratios))
    print("geometric mean ratio brig/native: %.2fx" % geo)
    pass_native = median_wall([NATIVE, "-c", "pass"], runs)
    pass_brig = median_wall([brig, "exec", "-c", "pass"], runs)
    print("median wall `-c pass`: native %.1f ms, brig %.1f ms (ratio %.2fx, %d runs)"
          % (pass_native * 1e3, pass_brig * 1e3, pass_brig / pass_native, runs))


if __name__ == "__main__":
    main()
